package dev.ferry.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.repo.Json;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Snapshots belong to a volume: 'latest' never reaches into another volume's snapshots, a parent of another
 * volume is refused, a change list that does not fit the volume is refused, and the figures a backup prints are
 * those of the volume.
 */
class VolumeSafetyCliTest {
    static final int MIB = 1 << 20;

    @TempDir
    Path dir;
    final CliRunner cli = new CliRunner();

    @BeforeEach
    void setUp() {
        cli.env.put("FERRY_REPOSITORY", dir.resolve("repo").toString());
        cli.env.put("FERRY_PASSWORD", "pw");
        cli.env.put("FERRY_STATE_DIR", dir.resolve("state").toString());
        cli.env.put("FERRY_HOSTNAME", "node-1");
        ok(CliTest.concat(new String[] {"init", "--pack-size", "1"}, CliTest.CHEAP));
    }

    private CliRunner.Result ok(String... args) {
        CliRunner.Result r = cli.run(args);
        assertEquals(0, r.exitCode(), r.toString());
        return r;
    }

    private CliRunner.Result fails(int code, String... args) {
        CliRunner.Result r = cli.run(args);
        assertEquals(code, r.exitCode(), r.toString());
        return r;
    }

    private static JsonNode json(CliRunner.Result r) throws Exception {
        return Json.MAPPER.readTree(r.out());
    }

    /** A volume of {@code mib} MiB of random data from {@code seed}, with the MiB blocks in {@code zeros} zero. */
    private Path volume(String name, int mib, long seed, int... zeros) throws Exception {
        byte[] data = new byte[mib * MIB];
        new Random(seed).nextBytes(data);
        for (int z : zeros) {
            java.util.Arrays.fill(data, z * MIB, (z + 1) * MIB, (byte) 0);
        }
        Path p = dir.resolve(name);
        Files.write(p, data);
        return p;
    }

    private static void write(Path p, long off, byte[] b) throws Exception {
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
            f.seek(off);
            f.write(b);
        }
    }

    private int snapshotCount() throws Exception {
        return json(ok("snapshots", "--json")).size();
    }

    @Test
    void latestResolvesWithinOneVolumeAndRefusesToGuess() throws Exception {
        Path a = volume("a.img", 2, 1);
        Path b = volume("b.img", 3, 2);
        String aId = json(ok("backup", "block", a.toString(), "--json")).get("snapshot_id").asText();
        String bId = json(ok("backup", "block", b.toString(), "--volume", "pv-b", "--json", "--tag", "app=db"))
                .get("snapshot_id").asText();

        // a bare 'latest' with two volumes is refused, naming both, and writes nothing
        Path target = dir.resolve("target.img");
        CliRunner.Result amb = fails(ExitCodes.ERROR, "restore", "block", "latest", target.toString());
        assertTrue(amb.err().contains("'latest' is ambiguous"), amb.toString());
        assertTrue(amb.err().contains("volume 'pv-b'") && amb.err().contains(aId.substring(0, 8))
                && amb.err().contains(bId.substring(0, 8)) && amb.err().contains(a + "' on host node-1"), amb.toString());
        assertFalse(Files.exists(target));
        // an existing device-like target keeps its data too (--force does not make 'latest' less ambiguous)
        Path precious = volume("precious.img", 1, 9);
        byte[] before = Files.readAllBytes(precious);
        fails(ExitCodes.ERROR, "restore", "block", "latest", precious.toString(), "--force");
        assertTrue(java.util.Arrays.equals(before, Files.readAllBytes(precious)));

        // filters pick one volume: by name, by source (unnamed), by tag
        ok("restore", "block", "latest", target.toString(), "--volume", "pv-b");
        assertEquals(-1L, Files.mismatch(b, target));
        Path t2 = dir.resolve("t2.img");
        ok("restore", "block", "latest", t2.toString(), "--volume", a.toString(), "--host", "node-1");
        assertEquals(-1L, Files.mismatch(a, t2));
        Path t3 = dir.resolve("t3.img");
        ok("restore", "block", "latest", t3.toString(), "--tag", "app=db");
        assertEquals(-1L, Files.mismatch(b, t3));
        CliRunner.Result none = fails(ExitCodes.ERROR, "restore", "block", "latest", dir.resolve("t4").toString(),
                "--volume", "pv-b", "--host", "node-2");
        assertTrue(none.err().contains("no block snapshots of volume 'pv-b' from host node-2"), none.toString());
        // an id must match the filters given with it
        CliRunner.Result mismatch = fails(ExitCodes.ERROR, "restore", "block", aId.substring(0, 8),
                dir.resolve("t5").toString(), "--volume", "pv-b");
        assertTrue(mismatch.err().contains("is not one of the block snapshots of volume 'pv-b'"), mismatch.toString());

        // the same path on another host is another volume
        cli.env.put("FERRY_HOSTNAME", "node-2");
        Path a2 = volume("a.img", 2, 3); // same path, other content, other host
        ok("backup", "block", a2.toString());
        CliRunner.Result sameName = fails(ExitCodes.ERROR, "restore", "block", "latest", dir.resolve("t6").toString(),
                "--volume", a.toString());
        assertTrue(sameName.err().contains("on host node-1") && sameName.err().contains("on host node-2"),
                sameName.toString());
        Path t7 = dir.resolve("t7.img");
        ok("restore", "block", "latest", t7.toString(), "--volume", a.toString(), "--host", "node-2");
        assertEquals(-1L, Files.mismatch(a2, t7));

        // snapshots filters
        assertEquals(1, json(ok("snapshots", "--json", "--volume", "pv-b")).size());
        assertEquals(2, json(ok("snapshots", "--json", "--host", "node-1")).size());
        assertEquals(1, json(ok("snapshots", "--json", "--tag", "app=db")).size());
        assertEquals(0, json(ok("snapshots", "--json", "--kind", "files")).size());
        assertEquals("pv-b", json(ok("snapshots", "--json", "--volume", "pv-b")).get(0).get("volume_name").asText());
        fails(ExitCodes.USAGE, "snapshots", "--kind", "tape");

        // forget latest: ambiguous is refused and forgets nothing; with a volume it forgets that one only
        fails(ExitCodes.ERROR, "forget", "latest");
        assertEquals(3, snapshotCount());
        ok("forget", "latest", "--volume", "pv-b");
        JsonNode left = json(ok("snapshots", "--json"));
        assertEquals(2, left.size());
        for (JsonNode s : left) {
            assertFalse(s.get("id").asText().equals(bId), "the snapshot of pv-b is the one forgotten");
        }
    }

    @Test
    void aParentMustBeOfTheSameVolume() throws Exception {
        Path a = volume("a.img", 4, 1);
        Path b = volume("b.img", 4, 2);
        String aId = json(ok("backup", "block", a.toString(), "--json")).get("snapshot_id").asText();
        Path changes = dir.resolve("changes.txt");
        Files.writeString(changes, "0 4096\n");

        // the incremental on top of another file's snapshot would restore the other file's data: refused
        CliRunner.Result foreign = fails(ExitCodes.ERROR, "backup", "block", b.toString(), "--parent",
                aId.substring(0, 8), "--changed-ranges", changes.toString());
        assertTrue(foreign.err().contains("a parent must be a snapshot of the same volume"), foreign.toString());
        assertTrue(foreign.err().contains(a.toString()) && foreign.err().contains(b.toString()), foreign.toString());
        assertEquals(1, snapshotCount(), "nothing stored for the refused backup");

        // named volumes: the name is the identity, whatever path the volume is read from
        Path snap1 = volume("snap-1.img", 4, 5);
        String n1 = json(ok("backup", "block", snap1.toString(), "--volume", "pvc-7", "--json")).get("snapshot_id")
                .asText();
        Path snap2 = dir.resolve("snap-2.img");
        Files.copy(snap1, snap2);
        byte[] change = new byte[8192];
        new Random(6).nextBytes(change);
        write(snap2, 3 * MIB + 4096, change);
        Files.writeString(changes, (3 * MIB + 4096) + " 8192\n");
        JsonNode inc = json(ok("backup", "block", snap2.toString(), "--volume", "pvc-7", "--parent", "latest",
                "--changed-ranges", changes.toString(), "--json"));
        assertEquals(n1, inc.get("parent").asText(), "latest parent found by the volume name, not the path");
        assertEquals("pvc-7", inc.get("volume_name").asText());
        assertEquals(MIB, inc.get("bytes_read").asLong(), "only the changed block was read");
        Path out = dir.resolve("out.img");
        ok("restore", "block", inc.get("snapshot_id").asText(), out.toString());
        assertEquals(-1L, Files.mismatch(snap2, out));

        // a named backup refuses an unnamed parent and one of another name
        fails(ExitCodes.ERROR, "backup", "block", a.toString(), "--volume", "pvc-7", "--parent", aId.substring(0, 8));
        fails(ExitCodes.ERROR, "backup", "block", snap2.toString(), "--volume", "pvc-8", "--parent",
                n1.substring(0, 8));
        // and 'latest' of a name without snapshots is a full backup, not another volume's data
        CliRunner.Result fresh = ok("backup", "block", snap2.toString(), "--volume", "pvc-9", "--parent", "latest",
                "--json");
        assertTrue(fresh.err().contains("no earlier block snapshot of volume 'pvc-9'"), fresh.toString());
        assertEquals(4 * MIB, json(fresh).get("bytes_read").asLong());

        // the same source on another host is another volume
        cli.env.put("FERRY_HOSTNAME", "node-2");
        CliRunner.Result otherHost = fails(ExitCodes.ERROR, "backup", "block", a.toString(), "--parent",
                aId.substring(0, 8));
        assertTrue(otherHost.err().contains("on host node-1") && otherHost.err().contains("on host node-2"),
                otherHost.toString());
        assertEquals(4, snapshotCount());
    }

    @Test
    void changeListsMustFitTheVolumeAndSizeChangesFollowTheRule() throws Exception {
        Path v = volume("v.img", 4, 1, 1);
        ok("backup", "block", v.toString(), "--volume", "pv");
        Path changes = dir.resolve("changes.txt");
        Files.writeString(changes, "0 4096\n" + (4L * MIB - 10) + " 11\n"); // one byte past the end
        CliRunner.Result past = fails(ExitCodes.ERROR, "backup", "block", v.toString(), "--volume", "pv", "--parent",
                "latest", "--changed-ranges", changes.toString());
        assertTrue(past.err().contains("beyond the end of"), past.toString());
        assertTrue(past.err().contains("(" + 4L * MIB + " bytes)"), past.toString());
        assertEquals(1, snapshotCount());

        // the volume grew by 1.5 MiB: the change list covers the old part; the new tail is read as well
        byte[] tail = new byte[3 * MIB / 2];
        new Random(7).nextBytes(tail);
        byte[] change = new byte[100];
        new Random(8).nextBytes(change);
        write(v, 2 * MIB + 10, change);
        write(v, 4L * MIB, tail);
        Files.writeString(changes, (2 * MIB + 10) + " 100\n");
        JsonNode grown = json(ok("backup", "block", v.toString(), "--volume", "pv", "--parent", "latest",
                "--changed-ranges", changes.toString(), "--json"));
        assertEquals(4L * MIB + tail.length, grown.get("bytes_total").asLong());
        // block 2 (changed) and blocks 4..5 (the new tail, the last one half a block) are read
        assertEquals(MIB + tail.length, grown.get("bytes_read").asLong());
        Path out = dir.resolve("grown.out");
        ok("restore", "block", grown.get("snapshot_id").asText(), out.toString());
        assertEquals(-1L, Files.mismatch(v, out));

        // the volume shrank to 2.5 MiB: blocks past the new end go, the rest comes from the parent
        try (RandomAccessFile f = new RandomAccessFile(v.toFile(), "rw")) {
            f.setLength(5L * MIB / 2);
        }
        Files.writeString(changes, "");
        JsonNode shrunk = json(ok("backup", "block", v.toString(), "--volume", "pv", "--parent", "latest",
                "--changed-ranges", changes.toString(), "--json"));
        assertEquals(5L * MIB / 2, shrunk.get("bytes_total").asLong());
        assertEquals(MIB / 2, shrunk.get("bytes_read").asLong(), "only the block where the new end is");
        Path out2 = dir.resolve("shrunk.out");
        ok("restore", "block", shrunk.get("snapshot_id").asText(), out2.toString());
        assertEquals(-1L, Files.mismatch(v, out2));
    }

    @Test
    void zeroBlocksAreThoseOfTheVolumeInEveryKindOfBackup() throws Exception {
        // 8 blocks of 1 MiB, blocks 1, 2 and 6 zero
        Path v = volume("z.img", 8, 1, 1, 2, 6);
        JsonNode full = json(ok("backup", "block", v.toString(), "--json"));
        assertEquals(3, full.get("zero_blocks").asLong());
        assertTrue(ok("backup", "block", v.toString(), "--parent", "latest").out()
                .contains("8.0 MiB, blocks of 1.0 MiB, 3 zero blocks"));

        // a change list naming blocks 0 and 1: block 0 becomes zero, block 1 gets data; blocks 2 and 6 stay zero
        write(v, 0, new byte[MIB]);
        byte[] data = new byte[4096];
        new Random(3).nextBytes(data);
        write(v, MIB + 4096, data);
        Path changes = dir.resolve("c.txt");
        Files.writeString(changes, "0 " + (MIB + 8192) + "\n");
        CliRunner.Result inc = ok("backup", "block", v.toString(), "--parent", "latest", "--changed-ranges",
                changes.toString(), "--json");
        JsonNode j = json(inc);
        assertEquals(2 * MIB, j.get("bytes_read").asLong());
        assertEquals(3, j.get("zero_blocks").asLong(), "zeros: blocks 0, 2, 6");
        // and the next incremental (nothing changed) carries the figure on
        Files.writeString(changes, "");
        CliRunner.Result text = ok("backup", "block", v.toString(), "--parent", "latest", "--changed-ranges",
                changes.toString());
        assertTrue(text.out().contains("3 zero blocks"), text.toString());
        // a restore counts the same zeros
        JsonNode restored = json(ok("restore", "block", j.get("snapshot_id").asText(),
                dir.resolve("z.out").toString(), "--json"));
        assertEquals(3, restored.get("zero_blocks").asLong());
    }
}
