package dev.ferry.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.repo.Json;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The block commands as users and the controller run them: backup, restore, snapshots, forget, prune. */
class BlockCliTest {
    @TempDir
    Path dir;
    Path vol;
    final CliRunner cli = new CliRunner();

    @BeforeEach
    void setUp() throws Exception {
        cli.env.put("FERRY_REPOSITORY", dir.resolve("repo").toString());
        cli.env.put("FERRY_PASSWORD", "block pw");
        cli.env.put("FERRY_STATE_DIR", dir.resolve("state").toString());
        cli.env.put("FERRY_HOSTNAME", "node-7");
        CliRunner.Result init = cli.run(CliTest.concat(new String[] {"init", "--pack-size", "1"}, CliTest.CHEAP));
        assertEquals(0, init.exitCode(), init.toString());
        vol = dir.resolve("vol.img");
        byte[] data = new byte[3 << 20];
        new Random(1).nextBytes(data);
        java.util.Arrays.fill(data, 0, 1 << 20, (byte) 0);
        Files.write(vol, data);
    }

    static JsonNode json(CliRunner.Result r) throws Exception {
        return Json.MAPPER.readTree(r.out());
    }

    private CliRunner.Result ok(String... args) {
        CliRunner.Result r = cli.run(args);
        assertEquals(0, r.exitCode(), r.toString());
        return r;
    }

    private java.util.Set<Path> packFiles() throws Exception {
        try (var files = Files.walk(dir.resolve("repo").resolve("data"))) {
            return files.filter(Files::isRegularFile).collect(java.util.stream.Collectors.toSet());
        }
    }

    private void overwrite(long off, int len, long seed) throws Exception {
        byte[] b = new byte[len];
        new Random(seed).nextBytes(b);
        try (RandomAccessFile f = new RandomAccessFile(vol.toFile(), "rw")) {
            f.seek(off);
            f.write(b);
        }
    }

    @Test
    void backupIncrementalRestoreAndListWithJson() throws Exception {
        JsonNode full = json(ok("backup", "block", vol.toString(), "--block-size", "128K", "--tag", "app=db", "--json"));
        assertEquals(3 << 20, full.get("bytes_total").asLong());
        assertEquals(3 << 20, full.get("bytes_read").asLong());
        assertTrue(full.get("bytes_new").asLong() >= 2 << 20, full.toString());
        assertTrue(full.get("duration_s").isNumber());
        String fullId = full.get("snapshot_id").asText();
        assertTrue(fullId.matches("[0-9a-f]{64}"));

        Path v1 = dir.resolve("v1.img");
        Files.copy(vol, v1);
        overwrite(2_000_000, 50, 2);
        Path changes = dir.resolve("changes.txt");
        Files.writeString(changes, "# offset length\n2000000 50\n\n");
        JsonNode inc = json(ok("backup", "block", vol.toString(), "--parent", "latest", "--changed-ranges",
                changes.toString(), "--json"));
        assertEquals(128 << 10, inc.get("bytes_read").asLong(), "one 128 KiB block is read");
        assertEquals(fullId, inc.get("parent").asText());
        assertTrue(inc.get("bytes_new").asLong() < 200_000, inc.toString());

        JsonNode list = json(ok("snapshots", "--json"));
        assertEquals(2, list.size());
        assertEquals("block", list.get(0).get("kind").asText());
        assertEquals("node-7", list.get(0).get("hostname").asText());
        assertEquals("db", list.get(0).get("tags").get("app").asText());
        assertEquals(fullId, list.get(1).get("parent").asText());
        assertTrue(ok("snapshots").out().contains(fullId.substring(0, 8)));

        Path out1 = dir.resolve("out1.img");
        JsonNode r1 = json(ok("restore", "block", fullId.substring(0, 10), out1.toString(), "--json"));
        assertEquals(2L << 20, r1.get("bytes_written").asLong(), "the zero MiB is a hole, not written");
        assertEquals(-1L, Files.mismatch(v1, out1));
        Path out2 = dir.resolve("out2.img");
        ok("restore", "block", "latest", out2.toString());
        assertEquals(-1L, Files.mismatch(vol, out2));
        assertEquals(0, cli.run("verify", "--read-data").exitCode());
    }

    @Test
    void restoreRefusesToOverwriteUnlessForced() throws Exception {
        ok("backup", "block", vol.toString());
        Path out = dir.resolve("out.img");
        Files.writeString(out, "precious");
        CliRunner.Result refused = cli.run("restore", "block", "latest", out.toString());
        assertEquals(ExitCodes.ERROR, refused.exitCode());
        assertTrue(refused.err().contains("already exists and holds data; use --force"), refused.toString());
        assertEquals("precious", Files.readString(out));
        ok("restore", "block", "latest", out.toString(), "--force");
        assertEquals(-1L, Files.mismatch(vol, out));
    }

    @Test
    void anInterruptedRestoreResumesWhenRunAgain() throws Exception {
        ok("backup", "block", vol.toString(), "--block-size", "64K");
        // make the restore fail part way: hide one of the packs
        List<Path> packs = new ArrayList<>();
        try (var s = Files.walk(dir.resolve("repo/data"))) {
            s.filter(Files::isRegularFile).sorted().forEach(packs::add);
        }
        assertTrue(packs.size() >= 2, "pack size 1 MiB gives several packs: " + packs);
        Path hidden = dir.resolve("hidden");
        Files.move(packs.get(0), hidden);
        Path out = dir.resolve("out.img");
        CliRunner.Result failed = cli.run("restore", "block", "latest", out.toString());
        assertEquals(ExitCodes.ERROR, failed.exitCode(), failed.toString());
        Files.move(hidden, packs.get(0));

        JsonNode resumed = json(ok("restore", "block", "latest", out.toString(), "--json"));
        assertTrue(resumed.get("resumed").asBoolean());
        // whatever the first run managed is checked and kept; the rest is written (skipping is shown in detail
        // by BlockBackupTest, where the interruption point is exact)
        assertEquals(2L << 20, resumed.get("bytes_already_there").asLong() + resumed.get("bytes_written").asLong(),
                resumed.toString());
        assertEquals(-1L, Files.mismatch(vol, out));
        try (var s = Files.list(dir.resolve("state"))) {
            assertEquals(0, s.count(), "the note of the interrupted restore is gone once it succeeded");
        }
    }

    @Test
    void forgetKeepLastAndPrune() throws Exception {
        for (int i = 0; i < 3; i++) {
            overwrite(1_500_000, 600_000, 10 + i);
            ok("backup", "block", vol.toString());
        }
        Path other = dir.resolve("other.img");
        Files.write(other, new byte[1 << 20]);
        ok("backup", "block", other.toString());
        CliRunner.Result dry = ok("forget", "--keep-last", "1", "--dry-run");
        assertTrue(dry.out().contains("2 snapshot(s) would be forgotten"), dry.toString());
        assertEquals(4, json(ok("snapshots", "--json")).size());
        // the dry run's prune figures are those of the prune after the forget it lists, not before it
        JsonNode dryJson = json(ok("forget", "--keep-last", "1", "--prune", "--dry-run", "--json"));
        assertEquals(2, dryJson.get("forgotten").size());
        assertEquals(4, json(ok("snapshots", "--json")).size());
        JsonNode realJson = json(ok("forget", "--keep-last", "1", "--prune", "--json"));
        assertEquals(dryJson.get("forgotten"), realJson.get("forgotten"));
        assertTrue(realJson.get("prune").get("packs_deleted").asInt() > 0, realJson.toString());
        for (String figure : List.of("snapshots", "packs_deleted", "bytes_deleted", "packs_rewritten", "bytes_copied",
                "index_files_replaced", "bytes_unused_kept")) {
            assertEquals(realJson.get("prune").get(figure), dryJson.get("prune").get(figure), figure);
        }
        JsonNode left = json(ok("snapshots", "--json"));
        assertEquals(2, left.size(), "the newest of each source stays");
        Path out = dir.resolve("out.img");
        ok("restore", "block", left.get(0).get("source").asText().equals(vol.toString())
                ? left.get(0).get("id").asText() : left.get(1).get("id").asText(), out.toString());
        assertEquals(-1L, Files.mismatch(vol, out));
        assertEquals(0, cli.run("verify", "--read-data").exitCode());
        CliRunner.Result again = ok("prune");
        assertTrue(again.out().contains("deleted 0 pack(s)"), again.toString());
    }

    @Test
    void pruneDryRunShowsTheFiguresOfTheRealRunInTextAndJson() throws Exception {
        for (int i = 0; i < 3; i++) {
            overwrite(1_000_000 + 500_000L * i, 700_000, 20 + i);
            ok("backup", "block", vol.toString());
        }
        ok("forget", "--keep-last", "1");
        java.util.Set<Path> before = packFiles();
        JsonNode dry = json(ok("prune", "--dry-run", "--json"));
        CliRunner.Result dryText = ok("prune", "--dry-run");
        JsonNode real = json(ok("prune", "--json"));
        assertTrue(dry.get("dry_run").asBoolean());
        assertFalse(real.get("dry_run").asBoolean());
        ((com.fasterxml.jackson.databind.node.ObjectNode) dry).remove("dry_run");
        ((com.fasterxml.jackson.databind.node.ObjectNode) real).remove("dry_run");
        assertEquals(real, dry, "the dry run's figures are the real run's");
        java.util.Set<Path> gone = new java.util.HashSet<>(before);
        gone.removeAll(packFiles());
        int deleted = real.get("packs_deleted").asInt();
        assertTrue(deleted > 0, real.toString());
        assertEquals(before.size(), real.get("packs_before").asInt());
        assertEquals(gone.size(), deleted, real.toString());
        assertEquals(deleted, real.get("unused_packs").asInt() + real.get("rewritten_packs").asInt()
                + real.get("unindexed_packs").asInt());
        assertEquals(25, real.get("repack_threshold_percent").asInt());
        assertTrue(dryText.out().contains("would delete " + deleted + " pack(s) of "
                + dev.ferry.util.Sizes.human(real.get("bytes_deleted").asLong()) + ": "
                + real.get("unused_packs").asInt() + " unused"), dryText.toString());
        CliRunner.Result again = ok("prune", "--dry-run");
        assertTrue(again.out().contains("would delete 0 pack(s) of 0 B"), again.toString());
    }

    @Test
    void badInputGetsClearErrors() throws Exception {
        CliRunner.Result noParent = cli.run("backup", "block", vol.toString(), "--changed-ranges", vol.toString());
        assertEquals(ExitCodes.USAGE, noParent.exitCode());
        assertTrue(noParent.err().contains("--changed-ranges needs --parent"), noParent.toString());

        CliRunner.Result latestNone = cli.run("backup", "block", vol.toString(), "--parent", "latest",
                "--changed-ranges", vol.toString());
        assertEquals(ExitCodes.ERROR, latestNone.exitCode());

        ok("backup", "block", vol.toString());
        Path bad = dir.resolve("bad.txt");
        Files.writeString(bad, "0 10\n12 x\n");
        CliRunner.Result badList = cli.run("backup", "block", vol.toString(), "--parent", "latest",
                "--changed-ranges", bad.toString());
        assertEquals(ExitCodes.ERROR, badList.exitCode());
        assertTrue(badList.err().contains("line 2"), badList.toString());
        Files.writeString(bad, "-5 10\n");
        assertEquals(ExitCodes.ERROR, cli.run("backup", "block", vol.toString(), "--parent", "latest",
                "--changed-ranges", bad.toString()).exitCode());

        CliRunner.Result missing = cli.run("backup", "block", dir.resolve("nope.img").toString());
        assertEquals(ExitCodes.ERROR, missing.exitCode());
        assertTrue(missing.err().contains("nope.img"), missing.toString());
        assertEquals(ExitCodes.ERROR, cli.run("backup", "block", dir.toString()).exitCode());
        assertEquals(ExitCodes.USAGE, cli.run("backup", "block", vol.toString(), "--block-size", "3000").exitCode());
        assertEquals(ExitCodes.USAGE, cli.run("backup", "block", vol.toString(), "--tag", "novalue").exitCode());
        assertEquals(ExitCodes.ERROR, cli.run("restore", "block", "ffff", dir.resolve("x").toString()).exitCode());
        assertEquals(ExitCodes.ERROR, cli.run("restore", "block", "latest", dir.toString()).exitCode());
        CliRunner.Result noDir = cli.run("restore", "block", "latest", dir.resolve("no/such/dir/out.img").toString());
        assertEquals(ExitCodes.ERROR, noDir.exitCode());
        assertTrue(noDir.err().contains(dir.resolve("no/such/dir/out.img") + ": no such file or directory"),
                noDir.toString());
        try (var notes = Files.list(dir.resolve("state"))) {
            assertEquals(0, notes.count(), "a restore that wrote nothing leaves no note to resume");
        }
        assertEquals(ExitCodes.USAGE, cli.run("forget").exitCode());
        assertEquals(1, json(ok("snapshots", "--json")).size(), "nothing bad input did changed the repository");
        assertFalse(Files.exists(dir.resolve("x")));
    }

    @Test
    void latestParentWithoutEarlierSnapshotMakesAFullBackup() throws Exception {
        CliRunner.Result r = ok("backup", "block", vol.toString(), "--parent", "latest", "--json");
        assertTrue(r.err().contains("making a full backup"), r.toString());
        assertEquals(3 << 20, json(r).get("bytes_read").asLong());
    }

    @Test
    void verifyFindsSnapshotsWhoseDataIsNoLongerIndexed() throws Exception {
        ok("backup", "block", vol.toString());
        CliRunner.Result good = ok("verify");
        assertTrue(good.out().contains("1 snapshot(s)"), good.toString());
        try (var s = Files.list(dir.resolve("repo/index"))) {
            for (Path p : s.toList()) {
                Files.delete(p);
            }
        }
        CliRunner.Result bad = cli.run("verify");
        assertEquals(ExitCodes.DAMAGE, bad.exitCode(), bad.toString());
        assertTrue(bad.out().contains("pack is in no index, but snapshots use its chunks: run 'ferry repair index'"),
                bad.toString());
        assertFalse(bad.out().contains("prune will remove it"), bad.toString());

        CliRunner.Result repaired = ok("repair", "index");
        assertTrue(repaired.out().contains("stored index/"), repaired.toString());
        assertTrue(ok("verify").out().contains("no errors were found"));
        Path out = dir.resolve("out.img");
        ok("restore", "block", "latest", out.toString());
        assertEquals(-1, Files.mismatch(vol, out));
    }

    @Test
    void aFlippedByteInAnIndexFileIsRepairedWithRepairIndex() throws Exception {
        ok("backup", "block", vol.toString());
        Path index;
        try (var s = Files.list(dir.resolve("repo/index"))) {
            index = s.findFirst().orElseThrow();
        }
        String name = "index/" + index.getFileName();
        byte[] bytes = Files.readAllBytes(index);
        bytes[bytes.length / 3] ^= 1;
        Files.write(index, bytes);
        CliRunner.Result verify = cli.run("verify");
        assertEquals(ExitCodes.DAMAGE, verify.exitCode(), verify.toString());
        assertTrue(verify.out().contains("error: " + name), verify.toString());
        assertTrue(verify.out().contains("snapshots use its chunks: run 'ferry repair index'"), verify.toString());
        assertFalse(verify.out().contains("prune will remove it"), verify.toString());
        CliRunner.Result restore = cli.run("restore", "block", "latest", dir.resolve("lost.img").toString());
        assertEquals(ExitCodes.ERROR, restore.exitCode(), restore.toString());
        assertTrue(restore.err().contains("ferry repair index"), restore.toString());

        // a backup still works; it cannot deduplicate against what the damaged file named, so it stores it again
        ok("backup", "block", vol.toString());
        java.util.Set<Path> packs = packFiles();
        CliRunner.Result prune = cli.run("prune");
        assertEquals(ExitCodes.ERROR, prune.exitCode(), prune.toString());
        assertTrue(prune.err().contains(name) && prune.err().contains("ferry repair index"), prune.toString());
        assertTrue(prune.err().contains("prune refuses to run"), prune.toString());
        assertEquals(packs, packFiles());

        CliRunner.Result repair = ok("repair", "index", "--json");
        assertEquals(1, json(repair).get("damaged_index_files").size(), repair.toString());
        assertEquals(1, json(repair).get("index_files_removed").asInt(), repair.toString());
        assertFalse(Files.exists(index));
        assertTrue(ok("verify").out().contains("no errors were found"));
        // both snapshots hold the same data: prune keeps one copy of it
        JsonNode pruned = json(ok("prune", "--json"));
        assertTrue(pruned.get("duplicate_copies").asInt() > 0, pruned.toString());
        assertTrue(pruned.get("packs_deleted").asInt() > 0, pruned.toString());
        assertTrue(ok("verify", "--read-data").out().contains("no errors were found"));
        for (JsonNode s : json(ok("snapshots", "--json"))) {
            Path out = dir.resolve("out-" + s.get("id").asText() + ".img");
            ok("restore", "block", s.get("id").asText(), out.toString());
            assertEquals(-1, Files.mismatch(vol, out));
        }
    }
}
