package dev.ferry.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * One snapshot object that cannot be read strands nothing else: {@code snapshots} lists the others and names it,
 * {@code restore latest} and {@code --parent latest} of another volume work, {@code forget ID} removes it,
 * a forget policy leaves it alone, {@code prune} refuses (its data is unknown) until {@code repair snapshots}
 * has removed it, and {@code repair snapshots --dry-run} removes nothing. A store that fails to return an
 * object is not damage: every command fails and nothing is removed.
 */
class DamagedSnapshotCliTest {
    @TempDir
    Path dir;
    Path repo;
    Path volA;
    Path volB;
    final CliRunner cli = new CliRunner();
    /** The one snapshot of volume pv-a, and of volume pv-b (made after it). */
    String idA;
    String idB;

    @BeforeEach
    void setUp() throws Exception {
        repo = dir.resolve("repo");
        cli.env.put("FERRY_REPOSITORY", repo.toString());
        cli.env.put("FERRY_PASSWORD", "pw");
        cli.env.put("FERRY_STATE_DIR", dir.resolve("state").toString());
        cli.env.put("FERRY_HOSTNAME", "node-1");
        ok(CliTest.concat(new String[] {"init", "--pack-size", "1"}, CliTest.CHEAP));
        volA = volume("a.img", 1);
        volB = volume("b.img", 2);
        idA = BlockCliTest.json(ok("backup", "block", volA.toString(), "--volume", "pv-a", "--json"))
                .get("snapshot_id").asText();
        idB = BlockCliTest.json(ok("backup", "block", volB.toString(), "--volume", "pv-b", "--json"))
                .get("snapshot_id").asText();
    }

    private Path volume(String name, long seed) throws IOException {
        byte[] data = new byte[2 << 20];
        new Random(seed).nextBytes(data);
        Path p = dir.resolve(name);
        Files.write(p, data);
        return p;
    }

    private CliRunner.Result ok(String... args) {
        CliRunner.Result r = cli.run(args);
        assertEquals(0, r.exitCode(), r.toString());
        return r;
    }

    private Path snapshotFile(String id) {
        return repo.resolve("snapshots").resolve(id);
    }

    /** Flips one byte in the middle of a snapshot object, as bit rot would. */
    private void damage(String id) throws IOException {
        byte[] b = Files.readAllBytes(snapshotFile(id));
        b[b.length / 2] ^= 0x40;
        Files.write(snapshotFile(id), b);
    }

    private Set<Path> packFiles() throws IOException {
        try (var files = Files.walk(repo.resolve("data"))) {
            return files.filter(Files::isRegularFile).collect(Collectors.toSet());
        }
    }

    @Test
    void aDamagedSnapshotIsNamedLeftOutOfLatestBlocksPruneAndIsRemovedByRepair() throws Exception {
        damage(idB);
        String nameB = "snapshots/" + idB;

        CliRunner.Result list = cli.run("snapshots");
        assertEquals(ExitCodes.DAMAGE, list.exitCode(), list.toString());
        assertTrue(list.out().contains(idA.substring(0, 8)), list.toString());
        assertFalse(list.out().contains(idB.substring(0, 8)), list.toString());
        assertTrue(list.out().contains("1 snapshot(s); 1 cannot be read"), list.toString());
        assertTrue(list.err().contains(nameB) && list.err().contains("ferry repair snapshots"), list.toString());
        CliRunner.Result listJson = cli.run("snapshots", "--json");
        assertEquals(ExitCodes.DAMAGE, listJson.exitCode(), listJson.toString());
        JsonNode array = BlockCliTest.json(listJson);
        assertEquals(1, array.size(), listJson.toString());
        assertEquals(idA, array.get(0).get("id").asText());
        assertTrue(listJson.err().contains(nameB), listJson.toString());

        // the intact volume restores as 'latest', and backs up on top of its latest snapshot
        Path out = dir.resolve("out.img");
        CliRunner.Result restored = ok("restore", "block", "latest", "--volume", "pv-a", out.toString());
        assertEquals(-1L, Files.mismatch(volA, out));
        assertTrue(restored.err().contains("warning: snapshot " + idB.substring(0, 8) + " (" + nameB
                + ") cannot be read"), restored.toString());
        CliRunner.Result inc = ok("backup", "block", volA.toString(), "--volume", "pv-a", "--parent", "latest",
                "--json");
        assertEquals(idA, BlockCliTest.json(inc).get("parent").asText(), inc.toString());
        assertTrue(inc.err().contains(nameB), inc.toString());

        // prune cannot know what the damaged snapshot uses: it refuses and deletes nothing
        Set<Path> packs = packFiles();
        for (String[] args : new String[][] {{"prune"}, {"prune", "--dry-run"}}) {
            CliRunner.Result refused = cli.run(args);
            assertEquals(ExitCodes.ERROR, refused.exitCode(), refused.toString());
            assertTrue(refused.err().contains("prune stops: 1 snapshot(s) cannot be read"), refused.toString());
            assertTrue(refused.err().contains(nameB), refused.toString());
            assertTrue(refused.err().contains("'ferry repair snapshots'"), refused.toString());
        }
        assertEquals(packs, packFiles());

        // verify names it as damage and says how to remove it
        CliRunner.Result verify = cli.run("verify");
        assertEquals(ExitCodes.DAMAGE, verify.exitCode(), verify.toString());
        assertTrue((verify.out() + verify.err()).contains(nameB + ") cannot be read: content does not match its name"),
                verify.toString());
        assertTrue(verify.out().contains("; remove it with 'ferry repair snapshots' (or 'ferry forget "
                + idB.substring(0, 8) + "')"), verify.toString());

        // a dry run lists it and removes nothing
        CliRunner.Result dry = ok("repair", "snapshots", "--dry-run");
        assertTrue(dry.out().contains("would remove " + nameB + ": content does not match its name"), dry.toString());
        assertTrue(dry.out().contains("1 damaged snapshot(s) would be removed; 2 snapshot(s) can be read"),
                dry.toString());
        JsonNode dryJson = BlockCliTest.json(ok("repair", "snapshots", "--dry-run", "--json"));
        assertEquals(1, dryJson.get("would_remove").asInt(), dryJson.toString());
        assertEquals(idB, dryJson.get("damaged").get(0).get("id").asText());
        assertEquals("would_remove", dryJson.get("damaged").get(0).get("action").asText());
        assertTrue(Files.exists(snapshotFile(idB)));
        assertEquals(ExitCodes.DAMAGE, cli.run("snapshots").exitCode());

        JsonNode repaired = BlockCliTest.json(ok("repair", "snapshots", "--json"));
        assertEquals(1, repaired.get("removed").asInt(), repaired.toString());
        assertEquals(2, repaired.get("readable").asInt(), repaired.toString());
        assertEquals("removed", repaired.get("damaged").get(0).get("action").asText());
        assertFalse(Files.exists(snapshotFile(idB)));
        assertEquals(1, repaired.get("damaged").size());
        assertTrue(ok("repair", "snapshots").out().contains("no damaged snapshots; 2 snapshot(s) can be read"));

        CliRunner.Result listed = ok("snapshots");
        assertTrue(listed.out().contains("2 snapshot(s)") && listed.err().isEmpty(), listed.toString());
        CliRunner.Result pruned = ok("prune");
        assertTrue(pruned.out().contains("deleted "), pruned.toString());
        assertEquals(0, cli.run("verify", "--read-data").exitCode());
        Path out2 = dir.resolve("out2.img");
        ok("restore", "block", "latest", "--volume", "pv-a", out2.toString());
        assertEquals(-1L, Files.mismatch(volA, out2));
    }

    @Test
    void forgetRemovesADamagedSnapshotByItsIdAndAPolicyLeavesItAlone() throws Exception {
        damage(idB);
        String nameB = "snapshots/" + idB;

        CliRunner.Result policy = ok("forget", "--keep-last", "1");
        assertTrue(policy.out().contains("0 snapshot(s) forgotten"), policy.toString());
        assertTrue(policy.err().contains(nameB) && policy.err().contains("the policy leaves it alone"),
                policy.toString());
        assertTrue(Files.exists(snapshotFile(idB)));

        // with a filter, whether the damaged snapshot is one of those meant cannot be known
        CliRunner.Result filtered = cli.run("forget", "--volume", "pv-b", idB.substring(0, 8));
        assertEquals(ExitCodes.ERROR, filtered.exitCode(), filtered.toString());
        assertTrue(filtered.err().contains(nameB) && filtered.err().contains("name it without a filter"),
                filtered.toString());
        assertTrue(Files.exists(snapshotFile(idB)));

        CliRunner.Result dry = ok("forget", idB.substring(0, 8), "--dry-run");
        assertTrue(dry.out().contains("would forget " + idB.substring(0, 8) + "  (cannot be read: "), dry.toString());
        assertTrue(Files.exists(snapshotFile(idB)));

        JsonNode forgot = BlockCliTest.json(ok("forget", idB.substring(0, 8), "--json"));
        assertEquals(idB, forgot.get("forgotten").get(0).asText(), forgot.toString());
        assertEquals(idB, forgot.get("damaged").get(0).get("id").asText(), forgot.toString());
        assertTrue(forgot.get("damaged").get(0).get("forgotten").asBoolean(), forgot.toString());
        assertFalse(Files.exists(snapshotFile(idB)));
        JsonNode left = BlockCliTest.json(ok("snapshots", "--json"));
        assertEquals(1, left.size());
        assertEquals(idA, left.get(0).get("id").asText());
        ok("prune");
    }

    @Test
    void aStoreThatFailsToReturnASnapshotIsNotDamage() throws Exception {
        // reading /proc/self/mem from its start fails with an I/O error: a store that does not answer
        Path failing = Path.of("/proc/self/mem");
        boolean fails;
        try {
            Files.readAllBytes(failing);
            fails = false;
        } catch (IOException e) {
            fails = true;
        }
        assumeTrue(fails, "needs a file whose reading fails");
        Path kept = dir.resolve("kept");
        Files.move(snapshotFile(idB), kept);
        Files.createSymbolicLink(snapshotFile(idB), failing);
        Set<Path> packs = packFiles();

        CliRunner.Result list = cli.run("snapshots");
        assertEquals(ExitCodes.ERROR, list.exitCode(), list.toString());
        assertTrue(list.out().isEmpty(), list.toString());
        assertTrue(list.err().contains("snapshots/" + idB), list.toString());
        for (String[] args : new String[][] {{"repair", "snapshots"}, {"forget", "--keep-last", "1"},
                {"forget", idB.substring(0, 8)}, {"prune"}, {"restore", "block", "latest", "--volume", "pv-a",
                dir.resolve("out.img").toString()}}) {
            CliRunner.Result r = cli.run(args);
            assertEquals(ExitCodes.ERROR, r.exitCode(), r.toString());
            assertTrue(Files.isSymbolicLink(snapshotFile(idB)), "nothing is removed: " + r);
        }
        assertEquals(packs, packFiles());

        Files.delete(snapshotFile(idB));
        Files.move(kept, snapshotFile(idB));
        assertTrue(ok("snapshots").out().contains("2 snapshot(s)"));
    }

    @Test
    void repairRemovesNothingWhenNoSnapshotOpensThoughEachIsIntact() throws Exception {
        // snapshots sealed with another repository's key, each stored as written: the key is at fault, not them
        Path other = dir.resolve("other");
        cli.env.put("FERRY_REPOSITORY", other.toString());
        ok(CliTest.concat(new String[] {"init", "--pack-size", "1"}, CliTest.CHEAP));
        String o1 = BlockCliTest.json(ok("backup", "block", volA.toString(), "--json")).get("snapshot_id").asText();
        String o2 = BlockCliTest.json(ok("backup", "block", volB.toString(), "--json")).get("snapshot_id").asText();
        cli.env.put("FERRY_REPOSITORY", repo.toString());
        Files.delete(snapshotFile(idA));
        Files.delete(snapshotFile(idB));
        for (String id : new String[] {o1, o2}) {
            Files.copy(other.resolve("snapshots").resolve(id), snapshotFile(id));
        }
        for (String[] args : new String[][] {{"repair", "snapshots"}, {"repair", "snapshots", "--dry-run"}}) {
            CliRunner.Result refused = cli.run(args);
            assertEquals(ExitCodes.ERROR, refused.exitCode(), refused.toString());
            assertTrue(refused.err().contains("none of the 2 snapshots opens with this repository's key"),
                    refused.toString());
        }
        assertTrue(Files.exists(snapshotFile(o1)) && Files.exists(snapshotFile(o2)));
        CliRunner.Result list = cli.run("snapshots");
        assertEquals(ExitCodes.DAMAGE, list.exitCode(), list.toString());
        assertTrue(list.err().contains("snapshot does not decrypt"), list.toString());
        ok("forget", o1.substring(0, 8));
        assertFalse(Files.exists(snapshotFile(o1)));
    }
}
