package dev.ferry.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.repo.KeySource;
import dev.ferry.repo.Repository;
import dev.ferry.repo.Snapshot;
import dev.ferry.repo.Snapshots;
import dev.ferry.store.LocalStore;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A snapshot that decrypts fine (stored through the repository's own save path) but whose volume manifest has a
 * block size or page size of 0: every command reports it as an error, none divides by it.
 */
class CraftedSnapshotCliTest {
    @TempDir
    Path dir;

    @Test
    void aBlockSizeOrPageSizeOfZeroIsAnErrorInEveryCommand() throws Exception {
        Path repoDir = dir.resolve("repo");
        CliRunner cli = new CliRunner();
        cli.env.put("FERRY_REPOSITORY", repoDir.toString());
        cli.env.put("FERRY_PASSWORD", "s3cret");
        assertEquals(0, cli.run(CliTest.concat(new String[] {"init"}, CliTest.CHEAP)).exitCode());
        Path vol = dir.resolve("vol.img");
        byte[] data = new byte[1 << 20];
        new Random(3).nextBytes(data);
        Files.write(vol, data);
        CliRunner.Result backup = cli.run("backup", "block", vol.toString());
        assertEquals(0, backup.exitCode(), backup.toString());

        LocalStore store = new LocalStore(repoDir);
        Repository repo = Repository.open(store, new KeySource.Password("s3cret".toCharArray()));
        Snapshots snapshots = new Snapshots(repo);
        Snapshot good = snapshots.list().get(0).snapshot();
        for (String field : new String[] {"block_size", "page_blocks"}) {
            // the snapshot's JSON with one field set to 0, sealed and stored as Snapshots.save stores snapshots
            com.fasterxml.jackson.databind.node.ObjectNode json = dev.ferry.repo.Json.MAPPER.valueToTree(good);
            ((com.fasterxml.jackson.databind.node.ObjectNode) json.get("volume")).put(field, 0);
            byte[] plain = dev.ferry.repo.Json.MAPPER.writeValueAsBytes(json);
            byte[] sealed = new dev.ferry.repo.Envelope(Repository.DEFAULT_ZSTD_LEVEL).seal(repo.masterKey().aead(),
                    "ferry:snapshot:v1".getBytes(java.nio.charset.StandardCharsets.US_ASCII), plain, 0, plain.length,
                    true);
            String id = dev.ferry.crypto.Hashes.sha256Hex(sealed);
            store.put(Snapshots.PREFIX + id, sealed);
            String what = field + " 0";

            Path target = dir.resolve("restored-" + field + ".img");
            CliRunner.Result[] results = {
                cli.run("restore", "block", id, target.toString()),
                cli.run("verify"),
                cli.run("snapshots"),
                cli.run("forget", "--keep-last", "1", "--dry-run"),
                cli.run("prune", "--dry-run"),
                cli.run("backup", "block", vol.toString(), "--parent", id),
            };
            for (CliRunner.Result r : results) {
                assertFalse(r.err().contains("ArithmeticException") || r.err().contains("unexpected error"),
                        what + ": " + r);
            }
            assertNotEquals(0, results[0].exitCode(), what + ": " + results[0]);
            assertTrue(results[0].err().contains("snapshots/" + id + ": snapshot holds invalid volume manifest: "),
                    what + ": " + results[0]);
            assertFalse(Files.exists(target), what + ": restore wrote a target");
            assertNotEquals(0, results[1].exitCode(), what + ": " + results[1]);
            assertNotEquals(0, results[5].exitCode(), what + ": " + results[5]);

            // forget by id removes the crafted snapshot, and the repository is whole again
            CliRunner.Result forget = cli.run("forget", id);
            assertFalse(forget.err().contains("ArithmeticException") || forget.err().contains("unexpected error"),
                    what + ": " + forget);
            assertEquals(0, forget.exitCode(), what + ": " + forget);
            assertFalse(store.exists(Snapshots.PREFIX + id), what + ": forget left the crafted snapshot");
            CliRunner.Result verify = cli.run("verify");
            assertEquals(0, verify.exitCode(), verify.toString());
        }
    }
}
