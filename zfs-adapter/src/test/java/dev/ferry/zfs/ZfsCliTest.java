package dev.ferry.zfs;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.cli.Main;
import dev.ferry.repo.Json;
import java.io.PrintWriter;
import java.io.RandomAccessFile;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code ferry backup zfs}, {@code restore zfs} and {@code clone zfs} as users run them, on a real pool. */
class ZfsCliTest {
    @TempDir
    static Path tmp;
    static TestPool pool;
    static Map<String, String> env;

    record Run(int code, String out, String err) {
        JsonNode json() throws Exception {
            return Json.MAPPER.readTree(out);
        }
    }

    static Run ferry(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.execute(args, env, new PrintWriter(out, true), new PrintWriter(err, true), null);
        return new Run(code, out.toString(), err.toString());
    }

    @BeforeAll
    static void setUp() throws Exception {
        pool = TestPool.create(tmp);
        env = new HashMap<>();
        env.put("FERRY_REPOSITORY", tmp.resolve("repo").toString());
        env.put("FERRY_PASSWORD", "cli zfs test");
        env.put("FERRY_HOSTNAME", "node-a");
        env.put("FERRY_STATE_DIR", tmp.resolve("state").toString());
        Run init = ferry("init", "--kdf-memory", "8", "--kdf-iterations", "1");
        assertEquals(0, init.code(), init.err());
    }

    @AfterAll
    static void tearDown() throws Exception {
        if (pool != null) {
            pool.close();
        }
    }

    @Test
    void backupTwiceRestoreAndClone() throws Exception {
        String ds = pool.filesystem("app", "recordsize=16K");
        Path vol = pool.mountpoint(ds).resolve("disk.img");
        byte[] data = new byte[6 << 20];
        new Random(11).nextBytes(data);
        java.util.Arrays.fill(data, 2 << 20, 3 << 20, (byte) 0); // block 2 is zero
        Files.write(vol, data);

        Run first = ferry("backup", "zfs", ds, "--file", "disk.img", "--tag", "app=db", "--json");
        assertEquals(0, first.code(), first.err());
        JsonNode j1 = first.json();
        assertTrue(j1.get("zfs_snapshot").asText().startsWith(ds + "@ferry-"));
        assertTrue(j1.get("base_snapshot").isNull());
        assertEquals(6 << 20, j1.get("bytes_read").asLong());

        try (RandomAccessFile f = new RandomAccessFile(vol.toFile(), "rw")) {
            f.seek(4 << 20);
            f.write(new byte[] {1, 2, 3});
        }
        Run second = ferry("backup", "zfs", ds, "--file", "disk.img", "--json");
        assertEquals(0, second.code(), second.err());
        JsonNode j2 = second.json();
        assertEquals(j1.get("zfs_snapshot").asText(), j2.get("base_snapshot").asText());
        assertEquals(j1.get("snapshot_id").asText(), j2.get("parent").asText());
        assertEquals(1 << 20, j2.get("bytes_read").asLong(), "one 1 MiB block changed");
        assertEquals(1, j1.get("zero_blocks").asLong());
        assertEquals(1, j2.get("zero_blocks").asLong(), "the zero block not read is counted too");
        byte[] v2 = Files.readAllBytes(vol);

        Run restore = ferry("restore", "zfs", "latest", pool.name + "/copy", "--file", "vm/disk.img", "--json");
        assertEquals(0, restore.code(), restore.err());
        Path restored = pool.mountpoint(pool.name + "/copy").resolve("vm/disk.img");
        assertArrayEquals(v2, Files.readAllBytes(restored));

        Run again = ferry("restore", "zfs", j1.get("snapshot_id").asText(), pool.name + "/copy", "--file", "vm/disk.img");
        assertEquals(1, again.code());
        assertTrue(again.err().contains("--force"), again.err());
        assertArrayEquals(v2, Files.readAllBytes(restored), "a refused restore writes nothing");
        Run forced = ferry("restore", "zfs", j1.get("snapshot_id").asText(), pool.name + "/copy", "--file",
                "vm/disk.img", "--force");
        assertEquals(0, forced.code(), forced.err());
        assertArrayEquals(data, Files.readAllBytes(restored));

        String snap = j2.get("zfs_snapshot").asText();
        Run clone = ferry("clone", "zfs", snap, pool.name + "/instant", "--json");
        assertEquals(0, clone.code(), clone.err());
        assertEquals(snap, clone.json().get("origin").asText());
        assertArrayEquals(v2, Files.readAllBytes(Path.of(clone.json().get("mountpoint").asText(), "disk.img")));

        Run snapshots = ferry("snapshots", "--json");
        assertEquals(0, snapshots.code(), snapshots.err());
        assertTrue(snapshots.out().contains("zfs:" + ds + "#disk.img"), snapshots.out());

        // a volume name is an identity of its own: its first backup has no parent, its second builds on it
        Run named = ferry("backup", "zfs", ds, "--file", "disk.img", "--volume", "pv-app", "--json");
        assertEquals(0, named.code(), named.err());
        assertTrue(named.json().get("parent").isNull(), named.out());
        assertEquals(6 << 20, named.json().get("bytes_read").asLong());
        Run named2 = ferry("backup", "zfs", ds, "--file", "disk.img", "--volume", "pv-app", "--json");
        assertEquals(0, named2.code(), named2.err());
        assertEquals(named.json().get("snapshot_id").asText(), named2.json().get("parent").asText());
        assertEquals(0, named2.json().get("bytes_read").asLong(), "nothing changed, nothing read");
        assertEquals(1, named2.json().get("zero_blocks").asLong());
        // 'latest' of this dataset now means two volumes: refused until one is named
        Run amb = ferry("restore", "zfs", "latest", pool.name + "/copy2", "--file", "disk.img", "--from", ds);
        assertEquals(1, amb.code(), amb.err());
        assertTrue(amb.err().contains("'latest' is ambiguous") && amb.err().contains("volume 'pv-app'"), amb.err());
        assertNull(pool.zfs.get(pool.name + "/copy2"), "a refused restore creates nothing");
        Run picked = ferry("restore", "zfs", "latest", pool.name + "/copy2", "--file", "disk.img", "--volume",
                "pv-app", "--json");
        assertEquals(0, picked.code(), picked.err());
        assertEquals(named2.json().get("snapshot_id").asText(), picked.json().get("snapshot_id").asText());
        assertArrayEquals(v2, Files.readAllBytes(pool.mountpoint(pool.name + "/copy2").resolve("disk.img")));
    }

    @Test
    void badInputIsAClearErrorAndTakesNoSnapshot() throws Exception {
        String ds = pool.filesystem("plain");
        Run noFile = ferry("backup", "zfs", ds);
        assertEquals(1, noFile.code());
        assertTrue(noFile.err().contains("--file"), noFile.err());
        Run missing = ferry("backup", "zfs", pool.name + "/nope", "--file", "x.img");
        assertEquals(1, missing.code());
        assertTrue(missing.err().contains("no ZFS dataset"), missing.err());
        Run notThere = ferry("backup", "zfs", ds, "--file", "absent.img");
        assertEquals(1, notThere.code());
        assertTrue(notThere.err().contains("absent.img"), notThere.err());
        Run option = ferry("backup", "zfs", "-oops", "--file", "x");
        assertEquals(2, option.code(), option.err());
        Run escape = ferry("backup", "zfs", ds, "--file", "../../etc/passwd");
        assertEquals(1, escape.code());
        assertTrue(escape.err().contains("inside"), escape.err());
        Run badClone = ferry("clone", "zfs", ds, pool.name + "/c2");
        assertEquals(2, badClone.code(), "a malformed snapshot name is a usage error");
        assertTrue(badClone.err().contains("DATASET@SNAPSHOT"), badClone.err());
        assertTrue(pool.zfs.snapshots(ds).isEmpty(), "no snapshot was left behind");
        assertFalse(TestPool.cmd("zfs", "list", "-H", "-o", "name").contains(pool.name + "/c2"));
        assertNull(pool.zfs.get(pool.name + "/nope"));
    }
}
