package dev.ferry.zfs;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.cli.Main;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code ferry restore zfs --file} never writes into the repository it reads, even one kept in a dataset, and the
 * file it makes is readable by its owner only.
 */
class ZfsRestoreTargetTest {
    @TempDir
    Path tmp;

    @Test
    void aFileTargetInsideTheRepositoryIsRefused() throws Exception {
        TestPool pool = TestPool.create(tmp);
        try {
            String store = pool.filesystem("store");
            Path repo = pool.mountpoint(store).resolve("child/repo"); // a directory, not yet a dataset
            Map<String, String> env = new HashMap<>();
            env.put("FERRY_REPOSITORY", repo.toString());
            env.put("FERRY_PASSWORD", "zfs target");
            env.put("FERRY_HOSTNAME", "node-a");
            env.put("FERRY_STATE_DIR", tmp.resolve("state").toString());
            assertEquals(0, run(env, "init", "--kdf-memory", "8", "--kdf-iterations", "1").code);
            String ds = pool.filesystem("app");
            byte[] data = new byte[1 << 20];
            new Random(2).nextBytes(data);
            Files.write(pool.mountpoint(ds).resolve("disk.img"), data);
            Result backup = run(env, "backup", "zfs", ds, "--file", "disk.img");
            assertEquals(0, backup.code, backup.err);
            Map<String, byte[]> before = contents(repo);

            // the repository's config through the dataset that holds it, and through one still to be made
            for (String[] t : new String[][] {{store, "child/repo/config"}, {store + "/child", "repo/config"},
                    {store, "child/repo/snapshots/new.img"}}) {
                Result r = run(env, "restore", "zfs", "latest", t[0], "--file", t[1], "--force");
                assertEquals(1, r.code, String.join(" ", t) + "\n" + r.err);
                assertTrue(r.err.contains("inside the repository " + repo), r.err);
            }
            assertNull(pool.zfs.get(store + "/child"), "no dataset was made for a refused restore");
            Map<String, byte[]> after = contents(repo);
            assertEquals(before.keySet(), after.keySet());
            for (String k : before.keySet()) {
                assertArrayEquals(before.get(k), after.get(k), k);
            }
            assertTrue(run(env, "verify", "--read-data").out.contains("no errors"));
            Result ok = run(env, "restore", "zfs", "latest", pool.name + "/copy", "--file", "disk.img");
            assertEquals(0, ok.code, ok.err);
            Path restored = pool.mountpoint(pool.name + "/copy").resolve("disk.img");
            assertArrayEquals(data, Files.readAllBytes(restored));
            assertEquals("rw-------", java.nio.file.attribute.PosixFilePermissions.toString(
                    Files.getPosixFilePermissions(restored)), "a restored image is readable by its owner only");
        } finally {
            pool.close();
        }
    }

    private record Result(int code, String out, String err) {
    }

    private static Result run(Map<String, String> env, String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.execute(args, env, new PrintWriter(out, true), new PrintWriter(err, true), null);
        return new Result(code, out.toString(), err.toString());
    }

    private static Map<String, byte[]> contents(Path dir) throws Exception {
        Map<String, byte[]> m = new TreeMap<>();
        try (var s = Files.walk(dir)) {
            for (Path p : s.toList()) {
                m.put(dir.relativize(p).toString(), Files.isRegularFile(p) ? Files.readAllBytes(p) : new byte[0]);
            }
        }
        return m;
    }
}
