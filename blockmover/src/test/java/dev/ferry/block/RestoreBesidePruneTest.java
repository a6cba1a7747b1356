package dev.ferry.block;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.progress.ProgressListener;
import dev.ferry.repo.Pruner;
import dev.ferry.repo.Repository;
import dev.ferry.repo.RepositoryLock;
import dev.ferry.repo.Snapshots;
import dev.ferry.store.LocalStore;
import dev.ferry.store.Store;
import dev.ferry.store.StoreObject;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Path;
import java.time.Clock;
import java.util.HashSet;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A restore in progress while a prune repacks the packs it reads: the restore's shared lock keeps prune from
 * deleting them, and a restore that takes its lock after a prune reads the index again and finds the new packs.
 */
class RestoreBesidePruneTest {
    static final int BS = 64 << 10;
    static final long SIZE = 8L << 20;

    @TempDir
    Path dir;
    LocalStore store;
    Path volume;
    Snapshots.Stored kept;

    /**
     * Two snapshots of one volume, the second changing three blocks in four; the first is forgotten, so every
     * pack of the first holds a quarter still used by the second: prune rewrites those packs and deletes them.
     */
    @BeforeEach
    void setUp() throws Exception {
        store = new LocalStore(dir.resolve("repo"));
        Repository repo = Fixtures.init(store);
        volume = dir.resolve("vol");
        Random rnd = new Random(7);
        byte[] block = new byte[BS];
        try (RandomAccessFile f = new RandomAccessFile(volume.toFile(), "rw")) {
            for (long off = 0; off < SIZE; off += BS) {
                rnd.nextBytes(block);
                f.write(block);
            }
        }
        Snapshots.Stored first = Fixtures.backup(repo, volume, BS, null, null).snapshot();
        for (long off = 0; off < SIZE; off += BS) {
            if ((off / BS) % 4 != 0) {
                Fixtures.change(volume, off, BS, rnd, null);
            }
        }
        kept = Fixtures.backup(repo, volume, BS, null, null).snapshot();
        new Snapshots(repo).delete(first.id());
    }

    private Pruner.Result prune() throws IOException {
        return new Pruner(Fixtures.open(store), Clock.systemUTC(), Pruner.DEFAULT_REPACK_SHARE).run("test-host", false);
    }

    private Set<String> packs() throws IOException {
        Set<String> out = new HashSet<>();
        for (StoreObject o : store.list("data/")) {
            out.add(o.name());
        }
        return out;
    }

    /** A restore that pauses after its first pack read until {@code go}, and says when it paused. */
    private CompletableFuture<BlockRestore.Result> pausedRestore(Repository repo, Path target,
                                                                 CountDownLatch paused, CountDownLatch go) {
        return CompletableFuture.supplyAsync(() -> {
            try {
                return Fixtures.restore(repo, new Snapshots(repo).load(kept.id()), target, true,
                        ProgressListener.NONE);
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
    }

    private static Store pausing(Store inner, CountDownLatch paused, CountDownLatch go) {
        AtomicInteger reads = new AtomicInteger();
        return new DelegatingStore(inner) {
            private void maybePause(String name) throws IOException {
                if (name.startsWith("data/") && reads.incrementAndGet() >= 2) {
                    paused.countDown();
                    try {
                        if (!go.await(60, TimeUnit.SECONDS)) {
                            throw new IOException("test never let the restore go on");
                        }
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        throw new java.io.InterruptedIOException();
                    }
                }
            }

            @Override
            public byte[] getRange(String name, long offset, int length) throws IOException {
                maybePause(name);
                return inner.getRange(name, offset, length);
            }

            @Override
            public void readRange(String name, long offset, byte[] into, int length) throws IOException {
                maybePause(name);
                inner.readRange(name, offset, into, length);
            }
        };
    }

    /** Runs a restore paused in mid-read while a prune runs; returns the restore's outcome. */
    private CompletableFuture<BlockRestore.Result> restoreAcrossPrune(boolean sharedLock, Path target,
                                                                      Pruner.Result[] pruned) throws Exception {
        CountDownLatch paused = new CountDownLatch(1);
        CountDownLatch go = new CountDownLatch(1);
        Repository reader = Fixtures.open(pausing(store, paused, go));
        RepositoryLock lock = sharedLock ? reader.lockShared("restore") : null;
        try {
            if (sharedLock) {
                reader.refreshIndex();
            }
            CompletableFuture<BlockRestore.Result> restore = pausedRestore(reader, target, paused, go);
            assertTrue(paused.await(60, TimeUnit.SECONDS), "the restore never read a pack");
            pruned[0] = prune();
            go.countDown();
            try {
                restore.get(120, TimeUnit.SECONDS);
            } catch (ExecutionException e) {
                // outcome checked by the caller
            }
            return restore;
        } finally {
            go.countDown();
            if (lock != null) {
                lock.close();
            }
        }
    }

    @Test
    void aRestoreHoldingItsSharedLockCompletesWhilePruneRepacksItsPacks() throws Exception {
        Set<String> before = packs();
        Path target = dir.resolve("restored");
        Pruner.Result[] pruned = new Pruner.Result[1];
        CompletableFuture<BlockRestore.Result> restore = restoreAcrossPrune(true, target, pruned);
        assertFalse(restore.isCompletedExceptionally(), () -> "restore failed: " + restore.handle((r, e) -> e).join());
        assertTrue(restore.get().damaged().isEmpty());
        assertTrue(Fixtures.sameContent(volume, target), "restored volume differs");
        // prune did repack beside the restore, and kept every old pack for it
        assertTrue(pruned[0].packsRepacked() > 0, pruned[0].summary().toString());
        assertEquals(0, pruned[0].packsDeleted());
        assertTrue(pruned[0].runningLocks().stream().anyMatch(l -> l.startsWith("restore")), pruned[0].runningLocks()
                .toString());
        assertTrue(packs().containsAll(before), "a pack the restore could read was deleted");
        // with the restore gone, the next prune deletes what it deferred, and the snapshot still restores
        Pruner.Result later = prune();
        assertTrue(later.packsDeleted() > 0);
        Path again = dir.resolve("again");
        Fixtures.restore(Fixtures.open(store), new Snapshots(Fixtures.open(store)).load(kept.id()), again, true,
                ProgressListener.NONE);
        assertTrue(Fixtures.sameContent(volume, again));
    }

    /** The race itself: without the shared lock, prune deletes the packs under the running restore. */
    @Test
    void withoutTheSharedLockPruneDeletesPacksUnderARunningRestore() throws Exception {
        Pruner.Result[] pruned = new Pruner.Result[1];
        CompletableFuture<BlockRestore.Result> restore = restoreAcrossPrune(false, dir.resolve("restored"), pruned);
        assertTrue(pruned[0].packsDeleted() > 0);
        ExecutionException e = assertThrows(ExecutionException.class, restore::get);
        assertTrue(String.valueOf(e.getCause()).contains("data/"), String.valueOf(e.getCause()));
    }

    /**
     * A restore that loaded the index before a prune rewrote it, then takes its shared lock: it reads the index
     * again and finds its chunks in the packs prune wrote, though the packs it first knew are gone.
     */
    @Test
    void aReaderRefreshingItsIndexAfterTakingTheLockFindsRepackedChunks() throws Exception {
        Repository reader = Fixtures.open(store); // index loaded now
        Pruner.Result pruned = prune();
        assertTrue(pruned.packsRepacked() > 0 && pruned.packsDeleted() > 0, pruned.summary().toString());
        try (RepositoryLock lock = reader.lockShared("restore")) {
            reader.refreshIndex();
            Path target = dir.resolve("restored");
            BlockRestore.Result r = Fixtures.restore(reader, new Snapshots(reader).load(kept.id()), target, true,
                    ProgressListener.NONE);
            assertTrue(r.damaged().isEmpty());
            assertTrue(Fixtures.sameContent(volume, target));
        }
    }
}
