package dev.ferry.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.repo.Json;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
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

    @Test
    void keepGoingRestoresAllButTheDamagedBlockListsItAndExitsNonZero() throws Exception {
        ok("backup", "block", vol.toString(), "--block-size", "64K");
        Path pack;
        try (var s = Files.walk(repo.resolve("data"))) { // a pack of volume data, not of manifest pages
            pack = s.filter(Files::isRegularFile).max(java.util.Comparator.comparingLong(p -> p.toFile().length()))
                    .orElseThrow();
        }
        byte[] good = Files.readAllBytes(pack);
        byte[] bad = good.clone();
        bad[100] ^= 1; // inside the pack's first chunk
        Files.write(pack, bad);

        Path out = dir.resolve("out.img");
        CliRunner.Result stopped = cli.run("restore", "block", "latest", out.toString());
        assertEquals(ExitCodes.ERROR, stopped.exitCode(), stopped.toString());
        assertTrue(stopped.err().matches("(?s).*cannot restore 65536 bytes at offset \\d+ of the volume \\(chunk [0-9a-f]{16}\\).*"
                + "--keep-going.*"), stopped.toString());

        CliRunner.Result r = cli.run("restore", "block", "latest", out.toString(), "--force", "--keep-going", "--json");
        assertEquals(ExitCodes.DAMAGE, r.exitCode(), r.toString());
        JsonNode j = Json.MAPPER.readTree(r.out());
        assertEquals(1, j.get("damaged").size(), j.toString());
        JsonNode d = j.get("damaged").get(0);
        long off = d.get("offset").asLong();
        assertEquals(65536, d.get("length").asLong());
        assertEquals(0, off % 65536);
        assertTrue(d.get("object").asText().matches("chunk [0-9a-f]{16}"), d.toString());
        assertTrue(d.get("cause").asText().contains("does not decrypt"), d.toString());
        assertEquals(65536, j.get("bytes_damaged").asLong());
        assertTrue(r.err().contains("1 range(s) of " + out + " (65536 bytes) were not restored"), r.toString());

        byte[] want = Files.readAllBytes(vol);
        byte[] got = Files.readAllBytes(out);
        assertEquals(want.length, got.length);
        for (int i = 0; i < want.length; i++) {
            if (i >= off && i < off + 65536) {
                assertEquals(0, got[i], "the damaged block is left a hole, at " + i);
            } else if (want[i] != got[i]) {
                assertEquals(want[i], got[i], "every other block is restored exactly, at " + i);
            }
        }
        CliRunner.Result text = cli.run("restore", "block", "latest", dir.resolve("out2.img").toString(),
                "--keep-going");
        assertEquals(ExitCodes.DAMAGE, text.exitCode(), text.toString());
        assertTrue(text.out().contains("damaged  64.0 KiB in 1 range(s) not restored"), text.toString());
        assertTrue(text.out().contains("offset " + off + ", 65536 bytes (chunk "), text.toString());

        // the restore note stays: with the data back, running again fetches only the block that was missing
        Files.write(pack, good);
        JsonNode again = Json.MAPPER.readTree(ok("restore", "block", "latest", out.toString(), "--json").out());
        assertTrue(again.get("resumed").asBoolean(), again.toString());
        assertEquals(65536, again.get("bytes_written").asLong(), again.toString());
        assertEquals(0, again.get("damaged").size());
        assertEquals(-1L, Files.mismatch(vol, out));
    }

    @Test
    void aNewTargetFileIsPrivateUnlessAModeIsAsked() throws Exception {
        ok("backup", "block", vol.toString());
        Path out = dir.resolve("private.img");
        ok("restore", "block", "latest", out.toString());
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(out)));
        assertEquals(-1L, Files.mismatch(vol, out));
        Path shared = dir.resolve("shared.img");
        ok("restore", "block", "latest", shared.toString(), "--mode", "0644");
        assertEquals("rw-r--r--", PosixFilePermissions.toString(Files.getPosixFilePermissions(shared)));
        // an existing file keeps its permissions unless --mode is given
        Files.setPosixFilePermissions(out, PosixFilePermissions.fromString("rw-rw----"));
        ok("restore", "block", "latest", out.toString(), "--force");
        assertEquals("rw-rw----", PosixFilePermissions.toString(Files.getPosixFilePermissions(out)));
        ok("restore", "block", "latest", out.toString(), "--force", "--mode", "600");
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(out)));
        CliRunner.Result bad = cli.run("restore", "block", "latest", dir.resolve("x.img").toString(), "--mode", "rw");
        assertEquals(ExitCodes.USAGE, bad.exitCode(), bad.toString());
        assertTrue(bad.err().contains("--mode takes permissions in octal"), bad.toString());
        assertFalse(Files.exists(dir.resolve("x.img")));
    }
}
