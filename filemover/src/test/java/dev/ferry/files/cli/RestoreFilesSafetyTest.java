package dev.ferry.files.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.cli.ExitCodes;
import dev.ferry.cli.Main;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Where {@code ferry restore files} refuses to write, and what it does with damaged data. */
class RestoreFilesSafetyTest {
    @TempDir
    Path tmp;
    Path repo;
    final Map<String, String> env = new HashMap<>();

    FilesCliTest.Run ferry(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.execute(args, env, new PrintWriter(out, true), new PrintWriter(err, true), null);
        return new FilesCliTest.Run(code, out.toString(), err.toString());
    }

    FilesCliTest.Run ok(String... args) {
        FilesCliTest.Run r = ferry(args);
        assertEquals(0, r.code(), r.toString());
        return r;
    }

    @BeforeEach
    void init() {
        repo = tmp.resolve("store/repo");
        env.put("FERRY_REPOSITORY", repo.toString());
        env.put("FERRY_PASSWORD", "secret");
        env.put("FERRY_HOSTNAME", "node-1");
        env.put("FERRY_STATE_DIR", tmp.resolve("state").toString());
        ok("init", "--kdf-memory", "1", "--kdf-iterations", "1", "--pack-size", "1");
    }

    static Map<String, byte[]> contents(Path dir) throws Exception {
        Map<String, byte[]> m = new TreeMap<>();
        try (var s = Files.walk(dir)) {
            for (Path p : s.toList()) {
                m.put(dir.relativize(p).toString(), Files.isRegularFile(p) ? Files.readAllBytes(p) : new byte[0]);
            }
        }
        return m;
    }

    @Test
    void aTargetInsideOrAroundTheRepositoryIsRefused() throws Exception {
        Path src = Files.createDirectories(tmp.resolve("src"));
        // names a restore into the repository's root or its parent would meet
        Files.writeString(src.resolve("config"), "not a repository config", StandardCharsets.UTF_8);
        Files.createDirectories(src.resolve("repo/snapshots"));
        Files.writeString(src.resolve("repo/config"), "nor this", StandardCharsets.UTF_8);
        ok("backup", "files", src.toString());
        Path link = Files.createSymbolicLink(tmp.resolve("alias"), repo.resolve("snapshots"));
        Path dangling = Files.createSymbolicLink(tmp.resolve("dangling"), repo.resolve("data/new"));
        Map<String, byte[]> before = contents(repo);
        for (Path target : new Path[] {repo, repo.resolve("snapshots"), repo.resolve("data/00/x"), repo.getParent(),
                tmp, link, dangling, repo.resolve("keys/../snapshots")}) {
            for (boolean overwrite : new boolean[] {false, true}) {
                FilesCliTest.Run r = overwrite ? ferry("restore", "files", "latest", target.toString(), "--overwrite")
                        : ferry("restore", "files", "latest", target.toString());
                assertEquals(ExitCodes.ERROR, r.code(), target + "\n" + r);
                assertTrue(r.err().contains("refusing to restore into " + target.normalize()), r.toString());
                assertTrue(r.err().contains("repository " + repo), r.toString());
            }
        }
        Map<String, byte[]> after = contents(repo);
        assertEquals(before.keySet(), after.keySet());
        for (String k : before.keySet()) {
            assertArrayEquals(before.get(k), after.get(k), k);
        }
        assertFalse(Files.exists(repo.resolve("data/new")));
        assertFalse(Files.exists(tmp.resolve("config")));
        assertTrue(ok("verify", "--read-data").out().contains("no errors"));
        // beside the repository is fine
        ok("restore", "files", "latest", tmp.resolve("store/out").toString());
        assertEquals("nor this", Files.readString(tmp.resolve("store/out/repo/config")));
    }
}
