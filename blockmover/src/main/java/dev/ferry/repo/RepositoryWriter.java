package dev.ferry.repo;

import dev.ferry.store.Store;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One writer session on a {@link Repository} (one backup job, or a prune's repacking): its own open pack, its
 * own pack uploads, its own figures, its own index files and its own {@link SnapshotCommit}s. Several writers
 * share one repository and its in-memory index at once; a failed upload fails only the writer whose pack it was.
 *
 * <p>Deduplication across writers: a chunk that is indexed, or that any writer has in its open pack or in a pack
 * being stored, is not stored again. A writer that finds a chunk on its way into another writer's pack
 * <em>borrows</em> it: before this writer's data counts as durable ({@link #flush()}), it has the other writer
 * send its open pack off, waits until the borrowed chunk is stored, and names it in an index file of its own as
 * well (the other writer may die before writing one). If the other writer fails or is abandoned
 * before storing it, the flush fails with an error saying so (the chunk was stored by nobody, so no snapshot may
 * name it; the next run stores it). A chunk is thus never stored twice by concurrent writers, and never lost.
 *
 * <p>Index checkpoints: the stored packs' index entries are written to an index file once
 * {@link Repository#INDEX_FLUSH_ENTRIES} entries, {@link Repository.Checkpoints#bytes()} bytes of packs or
 * {@link Repository.Checkpoints#interval()} have gathered since the last one, so a writer killed after hours has
 * its packs indexed and a later run reuses them. {@link #abandon()} (a cancelled job) stores nothing more and
 * leaves the repository valid: packs stored so far stay, indexed if a checkpoint named them, and no snapshot.
 *
 * <p>Lock order: this writer's {@code packLock}, then its {@code indexWrite}, then the repository's monitor,
 * which guards the fields marked so. Safe for use by several threads.
 */
public final class RepositoryWriter implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(RepositoryWriter.class);
    /** How long a flush waits for another writer to store a chunk this one borrowed. */
    static final long BORROW_WAIT_MINUTES = 60;

    private final Repository repo;
    private final Store store;
    private final String name;
    private final Object packLock = new Object();
    private final Object indexWrite = new Object();
    private Pack.Writer pack;                                              // guarded by packLock
    private final Set<Pack.Writer> spooled = new HashSet<>();              // guarded by repo
    private final Map<PackId, List<PackEntry>> unindexed = new LinkedHashMap<>(); // guarded by repo
    private int unindexedCount;                                            // guarded by repo
    private long unindexedBytes;                                           // guarded by repo
    private long lastIndexNanos = System.nanoTime();                       // guarded by repo
    private final Set<ChunkId> borrowed = new HashSet<>();                 // guarded by repo
    private final List<Future<?>> uploads = new ArrayList<>();             // guarded by repo
    private final Semaphore uploadSlots = new Semaphore(Repository.UPLOADS_IN_FLIGHT);
    private volatile IOException uploadFailure;
    private volatile boolean abandoned;
    private final List<SnapshotCommit> commits = new CopyOnWriteArrayList<>();
    private final AtomicLong chunksAdded = new AtomicLong();
    private final AtomicLong bytesAdded = new AtomicLong();
    private final AtomicLong bytesStored = new AtomicLong();
    private final AtomicLong packsStored = new AtomicLong();
    private final AtomicLong indexFilesWritten = new AtomicLong();

    private final Set<String> knownIndexFiles;                             // guarded by repo

    RepositoryWriter(Repository repo, Store store, String name, Set<String> knownIndexFiles) {
        this.repo = repo;
        this.store = store;
        this.name = name;
        this.knownIndexFiles = knownIndexFiles;
    }

    /** An index file this process read or wrote. Under the repository's monitor. */
    void noteKnownIndexFile(String file) {
        knownIndexFiles.add(file);
    }

    /** What this writer is, in words (for logs and errors). */
    public String name() {
        return name;
    }

    public Repository repository() {
        return repo;
    }

    /** Chunks this writer added (new ones only, not deduplicated ones). */
    public long chunksAdded() {
        return chunksAdded.get();
    }

    /** Sealed bytes of the chunks this writer added. */
    public long bytesAdded() {
        return bytesAdded.get();
    }

    /** Bytes of the packs this writer stored (written to the store). */
    public long bytesStored() {
        return bytesStored.get();
    }

    /** Packs this writer stored. */
    public long packsStored() {
        return packsStored.get();
    }

    /** Index files this writer stored (checkpoints and flushes). */
    public long indexFilesWritten() {
        return indexFilesWritten.get();
    }

    /** Whether {@link #abandon()} was called. */
    public boolean isAbandoned() {
        return abandoned;
    }

    /**
     * Stores a chunk unless the repository already has it (or another writer is storing it), and returns its id.
     * Hashing, compression and encryption run in the calling thread; a full pack is stored by a background thread
     * while callers go on; a caller waits only when {@value Repository#UPLOADS_IN_FLIGHT} of this writer's packs
     * are already waiting to be stored.
     */
    public ChunkId save(BlobType type, byte[] data, int off, int len) throws IOException {
        if (len > Envelope.MAX_PLAINTEXT) {
            throw new IllegalArgumentException("chunk of " + len + " bytes exceeds the maximum of "
                    + Envelope.MAX_PLAINTEXT);
        }
        ChunkId id = repo.masterKey().chunkId(data, off, len);
        saveWithId(type, id, data, off, len);
        return id;
    }

    public ChunkId save(BlobType type, byte[] data) throws IOException {
        return save(type, data, 0, data.length);
    }

    /** As {@link #save(BlobType, byte[], int, int)} with the id already computed; returns true if it was new. */
    public boolean saveWithId(BlobType type, ChunkId id, byte[] data, int off, int len) throws IOException {
        checkUsable();
        if (known(id)) {
            return false;
        }
        Envelope.Scratch s = Envelope.Scratch.local();
        int n = repo.envelope().sealInto(repo.masterKey().aead(), Envelope.chunkAad(type, id), data, off, len, true,
                s);
        return append(type, id, s.sealed(), n, len, true);
    }

    /**
     * Writes a chunk that is already sealed into a new pack even though the index knows it in another pack:
     * prune copies the chunks still in use out of packs it is about to delete. Indexed at the next flush.
     */
    public void copySealed(BlobType type, ChunkId id, byte[] sealed, int rawLength) throws IOException {
        checkUsable();
        append(type, id, sealed, sealed.length, rawLength, false);
    }

    private void checkUsable() throws IOException {
        if (abandoned || repo.isStopping()) {
            throw new InterruptedIOException("the " + name + " was stopped: nothing more is stored");
        }
        IOException f = uploadFailure;
        if (f != null) {
            throw new IOException("an earlier pack could not be stored: " + f.getMessage(), f);
        }
    }

    /**
     * Whether the chunk is indexed or on its way into a pack (this writer's or another's, then borrowed). A
     * snapshot being committed through this writer learns the pack of an indexed chunk, which it then relies on.
     */
    private boolean known(ChunkId id) {
        synchronized (repo) {
            RepositoryWriter owner = repo.pendingOwner(id);
            if (owner != null) {
                if (owner != this) {
                    borrowed.add(id);
                }
                return true;
            }
            Optional<ChunkIndex.Location> loc = repo.lookupLocked(id);
            if (loc.isEmpty()) {
                return false;
            }
            for (SnapshotCommit c : commits) {
                c.relyOn(loc.get().pack());
            }
            return true;
        }
    }

    private boolean append(BlobType type, ChunkId id, byte[] sealed, int sealedLen, int len, boolean dedup)
            throws IOException {
        Pack.Writer full = null;
        synchronized (packLock) {
            synchronized (repo) {
                // again: another thread or writer may have taken it while this one sealed it
                if (dedup && known(id)) {
                    return false;
                }
                if (!repo.claimPending(id, this)) {
                    return false;
                }
            }
            try {
                if (pack == null) {
                    checkUsable();
                    Path spool = store.stagingDirectory() != null ? store.stagingDirectory()
                            : Path.of(System.getProperty("java.io.tmpdir"), "ferry-spool");
                    pack = new Pack.Writer(spool, repo.masterKey().aead(), repo.envelope());
                    synchronized (repo) {
                        spooled.add(pack);
                    }
                }
                pack.add(type, id, sealed, 0, sealedLen, len);
            } catch (IOException | RuntimeException e) {
                synchronized (repo) {
                    repo.releasePending(id, this);
                }
                throw e;
            }
            chunksAdded.incrementAndGet();
            bytesAdded.addAndGet(sealedLen);
            if (pack.size() >= repo.config().packSize()) {
                full = pack;
                pack = null;
            }
        }
        if (full != null) {
            storePack(full);
        }
        return true;
    }

    /** Sends the open pack off to be stored now (another writer waits for a chunk in it). */
    void shipOpenPack() throws IOException {
        Pack.Writer open;
        synchronized (packLock) {
            open = pack;
            pack = null;
        }
        if (open != null) {
            if (open.count() > 0) {
                storePack(open);
            } else {
                dropPack(open);
            }
        }
    }

    /** Hands a full pack to the upload threads; waits while too many of this writer's packs are waiting. */
    private void storePack(Pack.Writer w) throws IOException {
        try {
            if (!uploadSlots.tryAcquire(Repository.UPLOAD_SLOT_WAIT_MINUTES, TimeUnit.MINUTES)) {
                dropPack(w);
                throw new IOException("no pack upload of the " + name + " finished in "
                        + Repository.UPLOAD_SLOT_WAIT_MINUTES + " minutes; giving up");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            dropPack(w);
            throw new InterruptedIOException("interrupted while waiting to store a pack");
        }
        Future<?> f;
        try {
            f = repo.uploader().submit(() -> {
                try {
                    finishPack(w);
                } catch (Throwable e) {
                    log.debug("storing a pack of the {} failed", name, e);
                    uploadFailure = e instanceof IOException io ? io : new IOException(e.toString(), e);
                } finally {
                    uploadSlots.release();
                }
            });
        } catch (RuntimeException e) { // rejected: the repository is closed
            uploadSlots.release();
            dropPack(w);
            throw new IOException("cannot store a pack: " + e, e);
        }
        synchronized (repo) {
            uploads.removeIf(Future::isDone);
            uploads.add(f);
        }
    }

    /** Forgets the chunks of a pack that will not be stored, and its spool file. */
    private void dropPack(Pack.Writer w) throws IOException {
        synchronized (repo) {
            for (PackEntry e : w.entries()) {
                repo.releasePending(e.id(), this);
            }
            spooled.remove(w);
            repo.notifyAll(); // writers that borrowed these chunks find them gone
        }
        w.close();
        Files.deleteIfExists(w.file());
    }

    /** Stores a pack, then (at a checkpoint) an index file naming the packs stored. Runs on an upload thread. */
    private void finishPack(Pack.Writer w) throws IOException {
        boolean stored = false;
        try (w) {
            if (abandoned || repo.isStopping()) {
                throw new InterruptedIOException("the " + name + " was stopped: the pack is not stored");
            }
            for (SnapshotCommit c : commits) {
                c.checkLock(); // no use storing more for a backup whose lock was lost
            }
            PackId id = w.finish();
            long size = Files.size(w.file()); // before the store may move the file into place
            store.put(id.objectName(), w.file());
            stored = true;
            bytesStored.addAndGet(size);
            packsStored.incrementAndGet();
            List<PackEntry> entries = w.entries();
            synchronized (repo) {
                for (SnapshotCommit c : commits) {
                    c.relyOn(id);
                }
                for (PackEntry e : entries) {
                    repo.indexStored(id, e);
                    repo.releasePending(e.id(), this);
                }
                unindexed.computeIfAbsent(id, k -> new ArrayList<>()).addAll(entries);
                unindexedCount += entries.size();
                unindexedBytes += size;
                repo.notifyAll();
            }
            log.debug("{} stored pack {} ({} chunks, {} bytes)", name, id.shortHex(), entries.size(), size);
        } finally {
            if (!stored) {
                dropPack(w); // chunks of a pack that failed to store are not in the repository
            }
            Files.deleteIfExists(w.file());
            synchronized (repo) {
                spooled.remove(w);
            }
        }
        if (checkpointDue()) {
            writeIndex();
        }
    }

    private boolean checkpointDue() {
        Repository.Checkpoints cp = repo.checkpoints();
        synchronized (repo) {
            return unindexedCount > 0 && (unindexedCount >= Repository.INDEX_FLUSH_ENTRIES
                    || unindexedBytes >= cp.bytes()
                    || System.nanoTime() - lastIndexNanos >= cp.interval().toNanos());
        }
    }

    /** Stores an index file for every pack this writer stored that none names yet. */
    private void writeIndex() throws IOException {
        synchronized (indexWrite) { // one at a time, so no pack is named twice
            Map<PackId, List<PackEntry>> packs;
            int count;
            synchronized (repo) {
                if (unindexed.isEmpty()) {
                    return;
                }
                packs = new LinkedHashMap<>();
                unindexed.forEach((k, v) -> packs.put(k, List.copyOf(v)));
                count = unindexedCount;
            }
            if (!commits.isEmpty()) { // an index file never names a pack that a prune deleted under a lost lock
                for (SnapshotCommit c : commits) {
                    c.confirmLock();
                }
                try {
                    repo.requirePresent(packs.keySet(), "to be indexed");
                } catch (RepositoryException e) {
                    throw SnapshotCommit.aborted(e);
                }
            }
            String file = repo.storeIndexFile(new IndexFile(List.of(), packs));
            indexFilesWritten.incrementAndGet();
            synchronized (repo) { // only now: until the file is stored, its packs count as unindexed
                packs.forEach((k, v) -> {
                    List<PackEntry> left = unindexed.get(k);
                    if (left != null) {
                        left.subList(0, Math.min(v.size(), left.size())).clear();
                        if (left.isEmpty()) {
                            unindexed.remove(k);
                        }
                    }
                });
                unindexedCount -= count;
                unindexedBytes = 0;
                lastIndexNanos = System.nanoTime();
            }
            log.debug("{} stored index {} ({} chunks)", name, file, count);
        }
    }

    /**
     * After a backup failed with {@code failure} (nothing happens when it is null): stores what was already
     * packed, so the next run deduplicates against it, then rethrows the failure (a failing flush is added to it
     * as suppressed).
     */
    public void flushThenRethrow(Throwable failure) throws IOException {
        if (failure == null) {
            return;
        }
        try {
            flush();
        } catch (IOException | RuntimeException e) {
            failure.addSuppressed(e);
        }
        dev.ferry.util.Threads.rethrow(failure);
    }

    /**
     * Stores the pack being built, waits for this writer's pack uploads and for the chunks it borrowed from other
     * writers, and stores the index for everything stored so far. This writer's data is durable on return.
     */
    public void flush() throws IOException {
        shipOpenPack();
        List<Future<?>> waiting;
        synchronized (repo) {
            waiting = new ArrayList<>(uploads);
        }
        for (Future<?> f : waiting) {
            try {
                f.get(Repository.UPLOAD_SLOT_WAIT_MINUTES, TimeUnit.MINUTES);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new InterruptedIOException("interrupted while storing packs");
            } catch (ExecutionException e) {
                throw new IOException("storing a pack failed: " + e.getCause(), e.getCause());
            } catch (TimeoutException e) {
                throw new IOException("storing a pack of the " + name + " took more than "
                        + Repository.UPLOAD_SLOT_WAIT_MINUTES + " minutes; giving up");
            }
        }
        IOException failed = uploadFailure;
        if (failed != null) {
            throw new IOException(failed.getMessage(), failed);
        }
        awaitBorrowed();
        writeIndex();
    }

    /** Waits until every chunk borrowed from another writer is stored; fails if one never will be. */
    private void awaitBorrowed() throws IOException {
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(BORROW_WAIT_MINUTES);
        while (true) {
            Set<RepositoryWriter> owners = new HashSet<>();
            List<ChunkId> lost = new ArrayList<>();
            synchronized (repo) {
                for (java.util.Iterator<ChunkId> it = borrowed.iterator(); it.hasNext(); ) {
                    ChunkId id = it.next();
                    RepositoryWriter owner = repo.pendingOwner(id);
                    if (owner == this) {
                        it.remove();
                    } else if (owner != null) {
                        owners.add(owner);
                    } else {
                        Optional<ChunkIndex.Location> loc = repo.lookupLocked(id);
                        if (loc.isPresent()) {
                            for (SnapshotCommit c : commits) {
                                c.relyOn(loc.get().pack());
                            }
                            // named in this writer's own index file too: the other writer may die before it
                            // writes its own, and a chunk a snapshot uses must never be in an unindexed pack
                            unindexed.computeIfAbsent(loc.get().pack(), k -> new ArrayList<>()).add(loc.get().entry());
                            unindexedCount++;
                        } else {
                            lost.add(id);
                        }
                        it.remove();
                    }
                }
            }
            if (!lost.isEmpty()) {
                throw new RepositoryException(lost.size() + " chunk(s) this " + name + " shares with another job "
                        + "(" + lost.get(0).shortHex() + (lost.size() > 1 ? " and more" : "") + ") were not "
                        + "stored: that job failed or was stopped before storing them; nothing refers to them, run "
                        + "this one again");
            }
            if (owners.isEmpty()) {
                return;
            }
            for (RepositoryWriter o : owners) {
                o.shipOpenPack();
            }
            synchronized (repo) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    throw new IOException("chunks this " + name + " shares with another job were not stored in "
                            + BORROW_WAIT_MINUTES + " minutes; giving up");
                }
                try {
                    repo.wait(Math.max(1, Math.min(TimeUnit.NANOSECONDS.toMillis(left), 1000)));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new InterruptedIOException("interrupted while waiting for another job's chunks");
                }
            }
        }
    }

    /** See {@link Repository#ensureIndexed(Repository.ChunkRefs)}; flushes this writer first. */
    public int ensureIndexed(Repository.ChunkRefs refs) throws IOException {
        return ensureIndexed(refs, new HashSet<>());
    }

    int ensureIndexed(Repository.ChunkRefs refs, Set<PackId> relied) throws IOException {
        flush();
        return repo.nameAgain(refs, relied, knownIndexFiles);
    }

    /**
     * Starts the commit of one backup's snapshot through this writer (see {@link SnapshotCommit}): the packs it
     * stores and those of chunks found indexed are noted as packs the snapshot relies on.
     */
    public SnapshotCommit beginCommit(RepositoryLock lock) {
        SnapshotCommit c = new SnapshotCommit(this, lock);
        commits.add(c);
        return c;
    }

    void endCommit(SnapshotCommit c) {
        commits.remove(c);
    }

    /**
     * Cancels this writer: nothing more is stored (its threads adding data fail), packs not yet stored are
     * dropped with their spool files, and no index file is written. Packs already stored stay, indexed if a
     * checkpoint named them; prune removes the others. Other writers are not affected. Safe to call from another
     * thread, and more than once.
     */
    public void abandon() {
        abandoned = true;
        Pack.Writer open;
        synchronized (packLock) {
            open = pack;
            pack = null;
        }
        List<Pack.Writer> files;
        synchronized (repo) {
            files = new ArrayList<>(spooled);
            if (open != null) {
                files.add(open);
            }
            repo.releaseAllPending(this);
            spooled.clear();
            repo.notifyAll();
        }
        for (Pack.Writer w : files) {
            try {
                w.close();
            } catch (IOException | RuntimeException e) {
                log.debug("closing a pack: {}", e.toString());
            }
            try {
                Files.deleteIfExists(w.file());
            } catch (IOException e) {
                log.warn("could not remove spool file {}: {}", w.file(), e.toString());
            }
        }
        repo.forget(this);
    }

    /** Flushes what was added; the writer stays usable. */
    @Override
    public void close() throws IOException {
        if (!abandoned) {
            flush();
        }
        repo.forget(this);
    }
}
