package dev.ferry.block;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.progress.ProgressListener;
import dev.ferry.repo.BlobType;
import dev.ferry.repo.ChunkId;
import dev.ferry.repo.IndexFile;
import dev.ferry.repo.Repository;
import dev.ferry.repo.RepositoryException;
import dev.ferry.repo.RepositoryWriter;
import dev.ferry.repo.Snapshots;
import dev.ferry.repo.Verifier;
import dev.ferry.store.LocalStore;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Writer sessions: concurrent jobs on one repository, failures kept apart, deduplication, checkpoints. */
class RepositoryWriterTest {
    static final int CHUNK = 64 << 10;

    @TempDir
    Path dir;
    LocalStore store;
    Repository repo;

    @BeforeEach
    void setUp() throws Exception {
        store = new LocalStore(dir.resolve("repo"));
        Fixtures.init(store);
        repo = Fixtures.open(store);
    }

    private static byte[] chunk(Random rnd) {
        byte[] b = new byte[CHUNK];
        rnd.nextBytes(b);
        return b;
    }

    private int packs() throws IOException {
        return store.list("data/").size();
    }

    @Test
    void aFailingWriterFailsAloneAndTheOtherCommitsAndVerifies() throws Exception {
        Path volume = dir.resolve("vol");
        Fixtures.writeVolume(volume, 6L << 20, 1 << 20, 3);
        RepositoryWriter failing = repo.newWriter(FailingStore.puts(store, n -> n.startsWith("data/")), "failing job");
        CompletableFuture<Void> bad = CompletableFuture.runAsync(() -> {
            Random rnd = new Random(11);
            try {
                for (int i = 0; i < 64; i++) { // 4 MiB: several packs, each refused by its store
                    failing.save(BlobType.DATA, chunk(rnd));
                }
                failing.flush();
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
        // a block backup through the default writer, at the same time, on the same repository and index
        CompletableFuture<BlockBackup.Result> good = CompletableFuture.supplyAsync(() -> {
            try {
                return Fixtures.backup(repo, volume, CHUNK, null, null);
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
        ExecutionException e = assertThrows(ExecutionException.class, () -> bad.get(120, TimeUnit.SECONDS));
        assertTrue(String.valueOf(e.getCause()).contains("killed before storing data/"), String.valueOf(e.getCause()));
        BlockBackup.Result r = good.get(120, TimeUnit.SECONDS);
        // figures are per writer: the failing one counted its own chunks, the backup only its own
        assertEquals(repo.chunksAdded(), repo.defaultWriter().chunksAdded());
        assertTrue(failing.chunksAdded() > 0 && failing.packsStored() == 0);
        assertTrue(repo.defaultWriter().packsStored() > 0);
        Verifier.Report report = new Verifier(Fixtures.open(store), m -> { }).verify(true, 2);
        assertTrue(report.ok(), report.errors().toString());
        Path restored = dir.resolve("restored");
        Repository fresh = Fixtures.open(store);
        Fixtures.restore(fresh, new Snapshots(fresh).load(r.snapshot().id()), restored, true, ProgressListener.NONE);
        assertTrue(Fixtures.sameContent(volume, restored));
    }

    @Test
    void aChunkAnotherWriterIsStoringIsBorrowedAndStoredOnce() throws Exception {
        RepositoryWriter a = repo.newWriter();
        RepositoryWriter b = repo.newWriter();
        byte[] shared = chunk(new Random(1));
        ChunkId id = a.save(BlobType.DATA, shared);
        assertFalse(b.saveWithId(BlobType.DATA, id, shared, 0, shared.length), "stored twice");
        assertEquals(1, a.chunksAdded());
        assertEquals(0, b.chunksAdded());
        // b's data is durable only once a's pack holding the chunk is stored: b's flush sees to it
        b.flush();
        assertEquals(1, packs());
        assertTrue(Fixtures.open(store).contains(id), "the borrowed chunk is not indexed after the borrower's flush");
        a.flush();
        assertEquals(1, packs());
    }

    @Test
    void aBorrowedChunkThatItsWriterFailsToStoreFailsTheBorrowersFlush() throws Exception {
        RepositoryWriter a = repo.newWriter(FailingStore.puts(store, n -> n.startsWith("data/")), "failing job");
        RepositoryWriter b = repo.newWriter();
        byte[] shared = chunk(new Random(2));
        ChunkId id = a.save(BlobType.DATA, shared);
        assertFalse(b.saveWithId(BlobType.DATA, id, shared, 0, shared.length));
        RepositoryException e = assertThrows(RepositoryException.class, b::flush);
        assertTrue(e.getMessage().contains("shares with another job"), e.getMessage());
        assertFalse(repo.contains(id));
        // the next attempt stores it itself
        RepositoryWriter c = repo.newWriter();
        assertTrue(c.saveWithId(BlobType.DATA, id, shared, 0, shared.length));
        c.flush();
        assertTrue(Fixtures.open(store).contains(id));
    }

    /**
     * A long writer writes index checkpoints; killed (abandoned, no commit), it leaves its packs indexed, and the
     * next run finds those chunks present and stores none of them again.
     */
    @Test
    void checkpointedPacksOfAnAbandonedWriterAreReusedByTheNextRun() throws Exception {
        repo.setCheckpoints(Repository.Checkpoints.fromEnv(Map.of(Repository.Checkpoints.SECONDS_ENV, "3600",
                Repository.Checkpoints.BYTES_ENV, String.valueOf(2L << 20))));
        RepositoryWriter w = repo.newWriter();
        Random rnd = new Random(5);
        List<byte[]> data = new ArrayList<>();
        for (int i = 0; i < 96; i++) { // 6 MiB: five or six 1 MiB packs, a checkpoint every 2 MiB
            data.add(chunk(rnd));
            w.save(BlobType.DATA, data.get(i));
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (w.indexFilesWritten() < 2 && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertTrue(w.indexFilesWritten() >= 2, "no checkpoint was written: " + w.indexFilesWritten());
        w.abandon(); // killed: no flush, no snapshot
        assertTrue(store.list("snapshots/").isEmpty());
        int indexFiles = (int) store.list(IndexFile.PREFIX).stream().count();
        assertTrue(indexFiles >= 2);

        Repository next = Fixtures.open(store);
        RepositoryWriter again = next.newWriter();
        int present = 0;
        for (byte[] d : data) {
            if (next.contains(next.masterKey().chunkId(d, 0, d.length))) {
                present++;
            }
        }
        assertTrue(present >= 32, "only " + present + " chunks were indexed by checkpoints");
        for (byte[] d : data) {
            again.save(BlobType.DATA, d);
        }
        again.flush();
        assertEquals(data.size() - present, again.chunksAdded(), "checkpointed chunks were stored again");
        assertTrue(again.bytesStored() < (long) data.size() * CHUNK / 2 + (2 << 20));
        Verifier.Report report = new Verifier(Fixtures.open(store), m -> { }).verify(true, 2);
        assertTrue(report.ok(), report.errors().toString());
    }

    @Test
    void checkpointSettingsComeFromTheEnvironmentOrDefaults() {
        Repository.Checkpoints d = Repository.Checkpoints.fromEnv(Map.of());
        assertEquals(Duration.ofMinutes(5), d.interval());
        assertEquals(4L << 30, d.bytes());
        Repository.Checkpoints c = Repository.Checkpoints.fromEnv(Map.of(Repository.Checkpoints.SECONDS_ENV, "30"));
        assertEquals(Duration.ofSeconds(30), c.interval());
        assertThrows(IllegalArgumentException.class, () -> Repository.Checkpoints.fromEnv(
                Map.of(Repository.Checkpoints.BYTES_ENV, "4G")));
    }

    @Test
    void anAbandonedWriterStoresNothingMoreAndLeavesNoSpoolFiles() throws Exception {
        RepositoryWriter w = repo.newWriter();
        Random rnd = new Random(9);
        for (int i = 0; i < 8; i++) {
            w.save(BlobType.DATA, chunk(rnd));
        }
        w.abandon();
        assertThrows(IOException.class, () -> w.save(BlobType.DATA, chunk(rnd)));
        Path staging = store.stagingDirectory();
        if (staging != null && Files.isDirectory(staging)) {
            try (var s = Files.list(staging)) {
                assertEquals(0, s.filter(p -> p.getFileName().toString().startsWith("pack-")).count());
            }
        }
        // another writer on the same repository is not affected
        RepositoryWriter other = repo.newWriter();
        other.save(BlobType.DATA, chunk(rnd));
        other.flush();
        assertEquals(1, packs());
    }
}
