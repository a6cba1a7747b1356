package dev.ferry.block;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.ferry.engine.ChangedRanges;
import dev.ferry.repo.Json;
import dev.ferry.repo.ProcessTable;
import dev.ferry.repo.Pruner;
import dev.ferry.repo.Repository;
import dev.ferry.repo.RepositoryException;
import dev.ferry.repo.RepositoryLock;
import dev.ferry.repo.Snapshots;
import dev.ferry.repo.Verifier;
import dev.ferry.store.LocalStore;
import dev.ferry.store.StoreObject;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PruneTest {
    static final int BS = 64 << 10;

    @TempDir
    Path dir;
    LocalStore store;
    Repository repo;

    @BeforeEach
    void setUp() throws Exception {
        store = new LocalStore(dir.resolve("repo"));
        repo = Fixtures.init(store);
    }

    private Set<String> packs() throws Exception {
        Set<String> out = new HashSet<>();
        for (StoreObject o : store.list("data/")) {
            out.add(o.name());
        }
        return out;
    }

    private long packBytes() throws Exception {
        return store.list("data/").stream().mapToLong(StoreObject::size).sum();
    }

    private Pruner.Result prune(Repository r) throws Exception {
        return new Pruner(r, Clock.systemUTC(), Pruner.DEFAULT_REPACK_SHARE).run("test-host", false);
    }

    @Test
    void forgottenDataGoesAndWhatIsLeftStillRestores() throws Exception {
        Path a = dir.resolve("a.img");
        Path b = dir.resolve("b.img");
        Fixtures.writeVolume(a, 6L << 20, 512 << 10, 1);
        Fixtures.writeVolume(b, 3L << 20, 512 << 10, 2);
        BlockBackup.Result ra = Fixtures.backup(repo, a, BS, null, null);
        BlockBackup.Result rb = Fixtures.backup(repo, b, BS, null, null);
        long before = packBytes();
        new Snapshots(repo).delete(ra.snapshot().id());

        Repository r = Fixtures.open(store);
        Pruner.Result p = prune(r);
        assertTrue(p.packsDeleted() > 0, p.toString());
        assertTrue(packBytes() < before / 2, "most of a's data must go: " + packBytes() + " of " + before);
        assertEquals(0, p.packsDeferred());

        Repository after = Fixtures.open(store);
        Path out = dir.resolve("out.img");
        Fixtures.restore(after, new Snapshots(after).load(rb.snapshot().id()), out, false, x -> { });
        assertTrue(Fixtures.sameContent(b, out));
        Verifier.Report v = new Verifier(after, m -> { }).verify(true, 2);
        assertTrue(v.ok(), v.errors().toString());
        assertTrue(v.warnings().isEmpty(), "no unreferenced packs are left: " + v.warnings());
    }

    @Test
    void packsMixingUsedAndUnusedChunksAreRewritten() throws Exception {
        Path a = dir.resolve("a.img");
        Fixtures.writeVolume(a, 4L << 20, 256 << 10, 3);
        BlockBackup.Result full = Fixtures.backup(repo, a, BS, null, null);
        // change half of the blocks: the old versions of those blocks become garbage inside mixed packs
        ChangedRanges ch = new ChangedRanges();
        Random rnd = new Random(4);
        for (long blk = 0; blk < 64; blk += 2) {
            Fixtures.change(a, blk * BS, BS, rnd, ch);
        }
        BlockBackup.Result inc = Fixtures.backup(repo, a, null, full.snapshot(), ch);
        new Snapshots(repo).delete(full.snapshot().id());
        long before = packBytes();
        Pruner.Result p = prune(Fixtures.open(store));
        assertTrue(p.packsRepacked() > 0, p.toString());
        assertTrue(p.bytesRewritten() > 0);
        assertTrue(packBytes() < before, packBytes() + " >= " + before);
        Repository after = Fixtures.open(store);
        Path out = dir.resolve("out.img");
        Fixtures.restore(after, new Snapshots(after).load(inc.snapshot().id()), out, false, x -> { });
        assertTrue(Fixtures.sameContent(a, out));
        assertTrue(new Verifier(after, m -> { }).verify(true, 2).ok());
    }

    @Test
    void aBackupRunningDuringPruneKeepsItsPacksAndTheChunksItDeduplicatedAgainst() throws Exception {
        // a: forgotten before the prune; b shares half of a's blocks, so b deduplicates against a's chunks
        Path a = dir.resolve("a.img");
        Fixtures.writeVolume(a, 8L << 20, 256 << 10, 5);
        BlockBackup.Result ra = Fixtures.backup(repo, a, BS, null, null);
        Path b = dir.resolve("b.img");
        Files.copy(a, b);
        Random rnd = new Random(6);
        for (long off = 4L << 20; off < 8L << 20; off += BS) {
            Fixtures.change(b, off, BS, rnd, null); // second half is new data
        }
        new Snapshots(repo).delete(ra.snapshot().id());

        Repository writer = Fixtures.open(store);
        RepositoryLock lock = RepositoryLock.acquire(store, "backup", "writer", Clock.systemUTC());
        CountDownLatch paused = new CountDownLatch(1);
        CountDownLatch resume = new CountDownLatch(1);
        AtomicLong done = new AtomicLong();
        CompletableFuture<BlockBackup.Result> running = CompletableFuture.supplyAsync(() -> {
            try {
                return Fixtures.backup(writer, b, BS, null, null, bytes -> {
                    if (done.addAndGet(bytes) == 6L << 20) { // after the shared half and some new packs
                        paused.countDown();
                        try {
                            resume.await();
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                        }
                    }
                }, lock);
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        });
        assertTrue(paused.await(60, TimeUnit.SECONDS));
        Set<String> packsWhilePaused = packs();
        Pruner.Result p = prune(Fixtures.open(store));
        assertEquals(0, p.packsDeleted(), "nothing is deleted while a backup holds a lock: " + p);
        assertTrue(p.packsDeferred() > 0, "a's packs are garbage for now: " + p);
        assertEquals(1, p.runningLocks().size());
        assertTrue(packs().containsAll(packsWhilePaused), "no pack disappeared under the running backup");
        resume.countDown();
        BlockBackup.Result rb = running.get(60, TimeUnit.SECONDS);
        lock.close();

        // the backup named the chunks it shared with a again, so they survive the next prune too
        Pruner.Result p2 = prune(Fixtures.open(store));
        assertEquals(0, p2.packsDeferred());
        Repository after = Fixtures.open(store);
        Path out = dir.resolve("out.img");
        Fixtures.restore(after, new Snapshots(after).load(rb.snapshot().id()), out, false, x -> { });
        assertTrue(Fixtures.sameContent(b, out), "the snapshot written during prune restores");
        Verifier.Report v = new Verifier(after, m -> { }).verify(true, 2);
        assertTrue(v.ok(), v.errors().toString());
    }

    @Test
    void unindexedPacksOfAKilledBackupGoOnlyWhenNoBackupRuns() throws Exception {
        Path a = dir.resolve("a.img");
        Fixtures.writeVolume(a, 2L << 20, 256 << 10, 7);
        Fixtures.backup(repo, a, BS, null, null);
        // a pack nobody indexed, as a killed writer leaves it
        String orphan = "data/ab/ab" + "0".repeat(62);
        store.put(orphan, "not really a pack".getBytes(StandardCharsets.US_ASCII));
        RepositoryLock lock = RepositoryLock.acquire(store, "backup", "other-node", Clock.systemUTC());
        prune(Fixtures.open(store));
        assertTrue(store.exists(orphan), "it may belong to the running backup");
        lock.close();
        prune(Fixtures.open(store));
        assertFalse(store.exists(orphan));
    }

    @Test
    void staleLocksOfDeadProcessesAreIgnoredAndRemoved() throws Exception {
        Clock past = Clock.fixed(Instant.now().minus(Duration.ofHours(2)), ZoneOffset.UTC);
        RepositoryLock dead = RepositoryLock.acquire(store, "backup", "gone", past);
        String orphan = "data/cd/cd" + "1".repeat(62);
        store.put(orphan, new byte[10]);
        Pruner.Result p = prune(Fixtures.open(store));
        assertEquals(1, p.locksRemoved());
        assertFalse(store.exists(dead.name()));
        assertFalse(store.exists(orphan));
    }

    @Test
    void aLockLeftByABackupKilledWithSigkillHoldsNothingBack() throws Exception {
        ProcessTable here = ProcessTable.local("test-host");
        assumeTrue(here.canLookUp(), "needs a readable Linux /proc");
        Path a = dir.resolve("a.img");
        Fixtures.writeVolume(a, 2L << 20, 256 << 10, 8);
        new Snapshots(repo).delete(Fixtures.backup(repo, a, BS, null, null).snapshot().id());
        // a backup process of this host, with the lock it wrote
        Process backup = new ProcessBuilder("sleep", "600").start();
        try {
            ProcessTable.Identity id = here.identity();
            String now = Instant.now().toString();
            String lock = RepositoryLock.PREFIX + "5e".repeat(16);
            store.put(lock, Json.MAPPER.writeValueAsBytes(new RepositoryLock.Info("backup", "test-host",
                    backup.pid(), now, now, id.bootId(), id.pidNamespace(), id.timeNamespace(),
                    here.startTicks(backup.pid()).getAsLong())));
            Pruner.Result running = prune(Fixtures.open(store));
            assertEquals(0, running.packsDeleted(), running.toString());
            assertTrue(running.packsDeferred() > 0, running.toString());
            assertTrue(running.runningLocks().get(0).contains("pid " + backup.pid()), running.toString());

            backup.destroyForcibly(); // SIGKILL: the lock stays behind, fresh
            assertTrue(backup.waitFor(30, TimeUnit.SECONDS));
            assertTrue(store.exists(lock));
            Pruner.Result after = prune(Fixtures.open(store));
            assertEquals(1, after.locksRemoved(), after.toString());
            assertFalse(store.exists(lock));
            assertEquals(running.packsDeferred(), after.packsDeleted(), "deleted at once, not in 15 minutes");
            assertEquals(0, after.packsDeferred());
            assertTrue(packs().isEmpty(), "no snapshot is left, so no pack is: " + packs());
        } finally {
            backup.destroyForcibly();
        }
    }

    @Test
    void onlyOnePruneAtATime() throws Exception {
        RepositoryLock other = RepositoryLock.acquire(store, "prune", "elsewhere", Clock.systemUTC());
        RepositoryException e = assertThrows(RepositoryException.class, () -> prune(Fixtures.open(store)));
        assertTrue(e.getMessage().contains("another prune is running"), e.getMessage());
        other.close();
        List<StoreObject> locks = store.list(RepositoryLock.PREFIX);
        assertTrue(locks.isEmpty(), "the refused prune removed its own lock: " + locks);
    }
}
