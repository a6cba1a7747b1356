package dev.ferry.block;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.ferry.engine.ChangedRanges;
import dev.ferry.progress.ProgressListener;
import dev.ferry.repo.Json;
import dev.ferry.repo.ProcessTable;
import dev.ferry.repo.Pruner;
import dev.ferry.repo.Repository;
import dev.ferry.repo.RepositoryLock;
import dev.ferry.repo.Snapshots;
import dev.ferry.repo.Verifier;
import dev.ferry.store.LocalStore;
import dev.ferry.store.Store;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A backup whose lock was lost while it ran (back-dated so a prune takes it as stale, removed by an operator)
 * while a prune deleted its packs and those of its forgotten parent must not store a snapshot.
 */
class LockLossTest {
    static final int BS = 64 << 10;

    @TempDir
    Path dir;
    LocalStore store;

    @BeforeEach
    void setUp() throws Exception {
        store = new LocalStore(dir.resolve("repo"));
        Fixtures.init(store);
    }

    /**
     * A store that holds every pack upload after the first one stored, until released; or, with {@code
     * "snapshots/"}, holds the snapshot's write until released.
     */
    static final class PausingStore extends DelegatingStore {
        final String prefix;
        final CountDownLatch paused = new CountDownLatch(1);
        final CountDownLatch resume = new CountDownLatch(1);
        final AtomicBoolean first = new AtomicBoolean(true);

        PausingStore(Store inner) {
            this(inner, "data/");
        }

        PausingStore(Store inner, String prefix) {
            super(inner);
            this.prefix = prefix;
        }

        private void pauseAround(String name, IoRunnable put) throws IOException {
            if (!name.startsWith(prefix)) {
                put.run();
                return;
            }
            if (prefix.equals(Snapshots.PREFIX)) {
                paused.countDown();
                await();
                put.run();
                return;
            }
            boolean isFirst = first.compareAndSet(true, false);
            if (!isFirst) {
                await();
            }
            put.run();
            if (isFirst) {
                paused.countDown();
                await();
            }
        }

        private void await() throws IOException {
            try {
                if (!resume.await(120, TimeUnit.SECONDS)) {
                    throw new IOException("the test never resumed the backup");
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new java.io.InterruptedIOException();
            }
        }

        interface IoRunnable {
            void run() throws IOException;
        }

        @Override
        public void put(String name, byte[] data) throws IOException {
            pauseAround(name, () -> inner.put(name, data));
        }

        @Override
        public void put(String name, Path file) throws IOException {
            pauseAround(name, () -> inner.put(name, file));
        }
    }

    /** How the running backup's lock is lost while it is paused. */
    enum Loss {
        /** Back-dated past the stale window, as a prune on a host whose clock runs ahead judges it: prune removes it. */
        BACK_DATED,
        /** Removed by {@code ferry unlock --remove-all}. */
        REMOVED,
        /**
         * Removed by a prune and then written again, as a refresh under way at that moment would: the lock looks
         * valid, so only the check of the packs can notice.
         */
        WRITTEN_AGAIN
    }

    private Path volume() throws IOException {
        Path a = dir.resolve("vol.img");
        Fixtures.writeVolume(a, 8L << 20, 256 << 10, 21);
        return a;
    }

    /** Changes the second half of {@code b}: new data, written in new packs. */
    private static ChangedRanges changeSecondHalf(Path b) throws IOException {
        ChangedRanges changed = new ChangedRanges();
        Random rnd = new Random(22);
        for (long off = 4L << 20; off < 8L << 20; off += BS) {
            Fixtures.change(b, off, BS, rnd, changed);
        }
        return changed;
    }

    private CompletableFuture<BlockBackup.Result> start(PausingStore paused, Path b, Snapshots.Stored parent,
                                                       ChangedRanges changed, RepositoryLock lock)
            throws IOException {
        Repository writer = Fixtures.open(paused);
        Snapshots.Stored parentSeen = new Snapshots(writer).load(parent.id());
        return CompletableFuture.supplyAsync(() -> {
            try {
                return Fixtures.backup(writer, b, BS, parentSeen, changed, ProgressListener.NONE, lock);
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
    }

    /** Waits until the backup stored its first pack and is held; fails at once if it ended instead. */
    private static void awaitPaused(PausingStore paused, CompletableFuture<BlockBackup.Result> running)
            throws Exception {
        CompletableFuture<Object> held = CompletableFuture.runAsync(() -> {
            try {
                paused.paused.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }).thenApply(x -> "paused");
        Object first = CompletableFuture.anyOf(held, running).get(60, TimeUnit.SECONDS);
        assertEquals("paused", first, "the backup ended before it stored its first pack: " + first);
    }

    private Pruner.Result prune() throws IOException {
        return new Pruner(Fixtures.open(store), Clock.systemUTC(), Pruner.DEFAULT_REPACK_SHARE).run("prune-host", false);
    }

    @ParameterizedTest
    @EnumSource(Loss.class)
    void aBackupWhoseLockWasLostWhilePrunedStoresNoSnapshot(Loss loss) throws Exception {
        Path vol = volume();
        Snapshots.Stored parent = Fixtures.backup(Fixtures.open(store), vol, BS, null, null).snapshot();
        ChangedRanges changed = changeSecondHalf(vol);

        PausingStore paused = new PausingStore(store);
        RepositoryLock lock = RepositoryLock.acquire(paused, "backup", "writer", Clock.systemUTC());
        try {
            CompletableFuture<BlockBackup.Result> running = start(paused, vol, parent, changed, lock);
            awaitPaused(paused, running);

            new Snapshots(Fixtures.open(store)).delete(parent.id()); // its parent forgotten
            RepositoryLock.Info info = Json.MAPPER.readValue(store.get(lock.name()), RepositoryLock.Info.class);
            switch (loss) {
                case BACK_DATED -> {
                    String old = Instant.now().minus(Duration.ofHours(1)).toString();
                    store.put(lock.name(), Json.MAPPER.writeValueAsBytes(new RepositoryLock.Info(info.operation(),
                            info.hostname(), info.pid(), info.created(), old, info.bootId(), info.pidNamespace(),
                            info.timeNamespace(), info.startTicks())));
                }
                case REMOVED -> RepositoryLock.unlock(store, Instant.now(), ProcessTable.local("test-host"), true,
                        false);
                case WRITTEN_AGAIN -> store.delete(lock.name());
            }
            Pruner.Result p = prune();
            assertTrue(p.packsDeleted() > 0, "the prune took the backup for gone and deleted packs: " + p);
            assertFalse(store.exists(lock.name()));
            if (loss == Loss.WRITTEN_AGAIN) {
                store.put(lock.name(), Json.MAPPER.writeValueAsBytes(info));
            }
            paused.resume.countDown();

            try {
                BlockBackup.Result r = running.get(60, TimeUnit.SECONDS);
                fail("the backup stored snapshot " + r.snapshot().id() + " after its lock was lost");
            } catch (ExecutionException e) {
                String m = String.valueOf(e.getCause().getMessage());
                assertTrue(m.contains("backup aborted"), m);
                assertTrue(loss == Loss.WRITTEN_AGAIN ? m.contains("are gone from") : m.contains("lock"), m);
            }
        } finally {
            paused.resume.countDown();
            lock.close();
        }
        Repository after = Fixtures.open(store);
        assertTrue(new Snapshots(after).list().isEmpty(), "no snapshot is listed");
        Verifier.Report report = new Verifier(after, m -> { }).verify(false, 2);
        assertTrue(report.ok(), report.errors().toString());
    }

    @Test
    void aSnapshotWrittenAfterItsLockWasLostIsRemovedAgain() throws Exception {
        // the lock is removed and a prune deletes packs after the backup's last check, before its snapshot lands
        Path vol = volume();
        Snapshots.Stored parent = Fixtures.backup(Fixtures.open(store), vol, BS, null, null).snapshot();
        ChangedRanges changed = changeSecondHalf(vol);
        PausingStore paused = new PausingStore(store, Snapshots.PREFIX);
        RepositoryLock lock = RepositoryLock.acquire(paused, "backup", "writer", Clock.systemUTC());
        try {
            CompletableFuture<BlockBackup.Result> running = start(paused, vol, parent, changed, lock);
            awaitPaused(paused, running);
            new Snapshots(Fixtures.open(store)).delete(parent.id());
            store.delete(lock.name());
            Pruner.Result p = prune();
            assertTrue(p.packsDeleted() > 0, p.toString());
            paused.resume.countDown();
            ExecutionException e = org.junit.jupiter.api.Assertions.assertThrows(ExecutionException.class,
                    () -> running.get(60, TimeUnit.SECONDS));
            String m = String.valueOf(e.getCause().getMessage());
            assertTrue(m.contains("removed again") && m.contains("was removed while this process held it"), m);
        } finally {
            paused.resume.countDown();
            lock.close();
        }
        Repository after = Fixtures.open(store);
        assertTrue(new Snapshots(after).list().isEmpty(), "the snapshot was removed again");
        Verifier.Report report = new Verifier(after, m -> { }).verify(false, 2);
        assertTrue(report.ok(), report.errors().toString());
    }

    @Test
    void aBackupWithALiveLockStillCommitsBesideAPrune() throws Exception {
        Path vol = volume();
        Snapshots.Stored parent = Fixtures.backup(Fixtures.open(store), vol, BS, null, null).snapshot();
        ChangedRanges changed = changeSecondHalf(vol);

        PausingStore paused = new PausingStore(store);
        BlockBackup.Result r;
        try (RepositoryLock lock = RepositoryLock.acquire(paused, "backup", "writer", Clock.systemUTC())) {
            CompletableFuture<BlockBackup.Result> running = start(paused, vol, parent, changed, lock);
            awaitPaused(paused, running);
            new Snapshots(Fixtures.open(store)).delete(parent.id());
            Pruner.Result p = prune();
            assertEquals(0, p.packsDeleted(), "nothing goes while the backup's lock is live: " + p);
            assertTrue(p.packsDeferred() > 0, p.toString());
            paused.resume.countDown();
            r = running.get(60, TimeUnit.SECONDS);
            assertTrue(store.exists(lock.name()), "the lock stays until the backup releases it");
        } finally {
            paused.resume.countDown();
        }
        Repository after = Fixtures.open(store);
        assertEquals(List.of(r.snapshot().id()), new Snapshots(after).list().stream().map(Snapshots.Stored::id)
                .toList());
        Path out = dir.resolve("out.img");
        Fixtures.restore(after, new Snapshots(after).load(r.snapshot().id()), out, false, x -> { });
        assertTrue(Fixtures.sameContent(vol, out), "the snapshot restores");
        Verifier.Report report = new Verifier(after, m -> { }).verify(true, 2);
        assertTrue(report.ok(), report.errors().toString());
    }
}
