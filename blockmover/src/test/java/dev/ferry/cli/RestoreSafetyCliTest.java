package dev.ferry.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What a block restore refuses to write, and where it writes nothing. */
class RestoreSafetyCliTest {
    @TempDir
    Path dir;
    Path repo;
    Path vol;
    final CliRunner cli = new CliRunner();

    @BeforeEach
    void setUp() throws Exception {
        repo = dir.resolve("repo");
        cli.env.put("FERRY_REPOSITORY", repo.toString());
        cli.env.put("FERRY_PASSWORD", "restore pw");
        cli.env.put("FERRY_STATE_DIR", dir.resolve("state").toString());
        cli.env.put("FERRY_HOSTNAME", "node-1");
        CliRunner.Result init = cli.run(CliTest.concat(new String[] {"init", "--pack-size", "1"}, CliTest.CHEAP));
        assertEquals(0, init.exitCode(), init.toString());
        vol = dir.resolve("vol.img");
        byte[] data = new byte[2 << 20];
        new Random(3).nextBytes(data);
        Files.write(vol, data);
    }

    private CliRunner.Result ok(String... args) {
        CliRunner.Result r = cli.run(args);
        assertEquals(0, r.exitCode(), r.toString());
        return r;
    }

    /** Every file of the repository with its content. */
    static Map<String, byte[]> contents(Path repo) throws Exception {
        Map<String, byte[]> m = new TreeMap<>();
        try (var s = Files.walk(repo)) {
            for (Path p : s.toList()) {
                m.put(repo.relativize(p).toString(), Files.isRegularFile(p) ? Files.readAllBytes(p) : new byte[0]);
            }
        }
        return m;
    }

    static void assertSame(Map<String, byte[]> before, Map<String, byte[]> after) {
        assertEquals(before.keySet(), after.keySet());
        for (String k : before.keySet()) {
            assertArrayEquals(before.get(k), after.get(k), k);
        }
    }

    @Test
    void aTargetInsideTheRepositoryIsRefusedForcedOrNot() throws Exception {
        ok("backup", "block", vol.toString());
        Path pack;
        try (var s = Files.walk(repo.resolve("data"))) {
            pack = s.filter(Files::isRegularFile).findFirst().orElseThrow();
        }
        Path link = Files.createSymbolicLink(dir.resolve("link.img"), repo.resolve("config"));
        Path dangling = Files.createSymbolicLink(dir.resolve("dangling.img"), repo.resolve("snapshots/new.img"));
        Path linkedDir = Files.createSymbolicLink(dir.resolve("repo-alias"), repo);
        Path hardLink = Files.createLink(dir.resolve("hard.img"), repo.resolve("config"));
        Map<String, byte[]> before = contents(repo);
        for (Path target : new Path[] {repo.resolve("config"), pack, repo.resolve("data").resolve("ff/new.img"),
                repo.resolve("snapshots/new.img"), link, dangling, linkedDir.resolve("config"), hardLink,
                repo.resolve("snapshots/../config")}) {
            for (boolean force : new boolean[] {false, true}) {
                CliRunner.Result r = force ? cli.run("restore", "block", "latest", target.toString(), "--force")
                        : cli.run("restore", "block", "latest", target.toString());
                assertEquals(ExitCodes.ERROR, r.exitCode(), target + "\n" + r);
                assertTrue(r.err().contains("inside the repository " + repo), r.toString());
                assertTrue(r.err().contains("a restore never writes into its own repository"), r.toString());
            }
        }
        assertSame(before, contents(repo));
        assertFalse(Files.exists(dangling));
        CliRunner.Result verify = ok("verify", "--read-data");
        assertTrue(verify.out().contains("no errors"), verify.toString());
        assertFalse(Files.exists(dir.resolve("state")), "no restore note was written");
        // a name beside the repository is fine
        ok("restore", "block", "latest", dir.resolve("repo.img").toString());
        assertEquals(-1L, Files.mismatch(vol, dir.resolve("repo.img")));
    }
}
