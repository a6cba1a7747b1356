package dev.ferry.block;

import dev.ferry.engine.ChangedRanges;
import dev.ferry.engine.VolumeReader;
import dev.ferry.progress.ProgressListener;
import dev.ferry.repo.BlobType;
import dev.ferry.repo.ChunkId;
import dev.ferry.repo.Repository;
import dev.ferry.repo.RepositoryException;
import dev.ferry.repo.RepositoryLock;
import dev.ferry.repo.SnapshotCommit;
import dev.ferry.repo.Snapshot;
import dev.ferry.repo.Snapshots;
import dev.ferry.util.Threads;
import java.io.EOFException;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.time.Clock;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.roaringbitmap.PeekableIntIterator;
import org.roaringbitmap.RoaringBitmap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Backs up a volume into a block snapshot: a synthetic full whose manifest maps every block to a chunk or to
 * zero. With a parent and a change list only the changed blocks are read and every other block reference is
 * copied from the parent; manifest pages without a changed block are reused as they are.
 *
 * <p>One thread reads the volume in block-sized sequential reads; worker threads detect zero blocks, hash,
 * compress and encrypt; the repository stores full packs in the background. A fixed pool of block buffers
 * bounds memory whatever the volume size.
 */
public final class BlockBackup {
    private static final Logger log = LoggerFactory.getLogger(BlockBackup.class);
    public static final int DEFAULT_BLOCK_SIZE = 1 << 20;
    public static final int MIN_BLOCK_SIZE = 4 << 10;
    public static final int MAX_BLOCK_SIZE = 64 << 20;

    /**
     * What to back up.
     *
     * @param source     the volume
     * @param sourceName recorded as the snapshot's source
     * @param blockSize  block size for a first backup, or null for the default (an incremental uses its parent's)
     * @param parent     the snapshot to build on, or null for a full backup
     * @param changed    ranges changed since the parent, or null to read everything (requires a parent)
     * @param tags       user tags
     * @param engine     engine facts to record, or null
     * @param threads    worker threads (hash, compress, encrypt)
     * @param lock       the repository lock this backup holds, checked before the snapshot is stored; or null
     * @param volumeName the volume's name (a PV name) recorded in the snapshot, or null: the volume is then known
     *                   by {@code sourceName} on the backup's host
     */
    public record Request(VolumeReader source, String sourceName, Integer blockSize, Snapshots.Stored parent,
                          ChangedRanges changed, Map<String, String> tags, Map<String, String> engine, int threads,
                          RepositoryLock lock, String volumeName) {
        /** A request for a volume without a name. */
        public Request(VolumeReader source, String sourceName, Integer blockSize, Snapshots.Stored parent,
                       ChangedRanges changed, Map<String, String> tags, Map<String, String> engine, int threads,
                       RepositoryLock lock) {
            this(source, sourceName, blockSize, parent, changed, tags, engine, threads, lock, null);
        }
    }

    /**
     * What a backup did. {@code bytesNew} counts stored (compressed, encrypted) bytes added to the repository;
     * {@code zeroBlocks} the zero blocks of the whole volume (read now, or taken over from the parent).
     */
    public record Result(Snapshots.Stored snapshot, long bytesTotal, long bytesRead, long bytesNew, long chunksNew,
                         long zeroBlocks, long blocksRead, double durationS) {
    }

    private final Repository repo;
    private final Request req;
    private final Snapshot.Volume parentVolume;
    private final int blockSize;
    private final int pageBlocks;
    private final long size;
    private final long blocks;
    private final RoaringBitmap toRead;

    public BlockBackup(Repository repo, Request req) throws RepositoryException {
        this.repo = repo;
        this.req = req;
        Snapshot parent = req.parent() == null ? null : req.parent().snapshot();
        if (parent != null) {
            checkVolume(req.parent());
        }
        if (req.changed() != null && parent == null) {
            throw new IllegalArgumentException("a change list needs a parent snapshot (--parent): changes are "
                    + "relative to it, and without one every block must be read");
        }
        parentVolume = parent == null ? null : parent.volume();
        if (parentVolume != null) {
            if (req.blockSize() != null && req.blockSize() != parentVolume.blockSize()) {
                throw new IllegalArgumentException("the block size is fixed by the first backup of a volume: the "
                        + "parent uses " + parentVolume.blockSize() + " bytes, not " + req.blockSize());
            }
            blockSize = parentVolume.blockSize();
            pageBlocks = parentVolume.pageBlocks();
        } else {
            blockSize = req.blockSize() == null ? DEFAULT_BLOCK_SIZE : req.blockSize();
            pageBlocks = ManifestPage.DEFAULT_PAGE_BLOCKS;
        }
        if (blockSize < MIN_BLOCK_SIZE || blockSize > MAX_BLOCK_SIZE || blockSize % MIN_BLOCK_SIZE != 0) {
            throw new IllegalArgumentException("block size must be a multiple of 4 KiB from 4 KiB to 64 MiB, not "
                    + blockSize);
        }
        size = req.source().size();
        blocks = (size + blockSize - 1) / blockSize;
        if (blocks > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("a volume of " + size + " bytes has too many blocks of " + blockSize
                    + " bytes; use a larger --block-size");
        }
        toRead = plan();
    }

    private RoaringBitmap plan() {
        RoaringBitmap r = new RoaringBitmap();
        if (parentVolume == null || req.changed() == null) {
            r.add(0L, blocks);
            return r;
        }
        long end = req.changed().end();
        if (end > size) {
            throw new IllegalArgumentException("the change list names bytes up to " + end + ", beyond the end of "
                    + req.sourceName() + " (" + size + " bytes): it is not a change list of this volume");
        }
        r = req.changed().toBlocks(blockSize, size);
        if (size != parentVolume.size()) {
            // the volume grew or shrank: its new tail, and the block where the old end was, are read
            r.add(Math.min(size, parentVolume.size()) / blockSize, blocks);
        }
        return r;
    }

    /** Bytes this backup will read from the volume. */
    public long bytesToRead() {
        long n = (long) toRead.getCardinality() * blockSize;
        if (blocks > 0 && toRead.contains((int) (blocks - 1))) {
            n -= blockSize - blockLength(blocks - 1);
        }
        return n;
    }

    public int blockSize() {
        return blockSize;
    }

    private int blockLength(long b) {
        return (int) Math.min(blockSize, size - b * blockSize);
    }

    private int blocksInPage(int p) {
        return (int) Math.min(pageBlocks, blocks - (long) p * pageBlocks);
    }

    /** Runs the backup and stores the snapshot (through a {@link SnapshotCommit}, safe beside prunes). */
    public Result run(ProgressListener progress, Clock clock, String hostname) throws IOException {
        try (SnapshotCommit commit = repo.beginCommit(req.lock())) {
            return run(commit, progress, clock, hostname);
        }
    }

    private Result run(SnapshotCommit commit, ProgressListener progress, Clock clock, String hostname)
            throws IOException {
        if (req.parent() != null) {
            Snapshots.checkSameVolume(req.parent(), req.volumeName(), req.sourceName(), hostname);
        }
        long start = System.nanoTime();
        String time = clock.instant().truncatedTo(java.time.temporal.ChronoUnit.MILLIS).toString();
        long bytesBefore = repo.bytesAdded();
        long chunksBefore = repo.chunksAdded();
        int pages = (int) ((blocks + pageBlocks - 1) / pageBlocks);
        String[] pageIds = new String[pages];
        AtomicReference<Throwable> failure = new AtomicReference<>();
        // zero blocks of the volume: the parent's, corrected page by page where pages change
        AtomicLong zeroBlocks = new AtomicLong(parentVolume == null ? 0 : parentZeroBlocks());
        AtomicLong bytesRead = new AtomicLong();
        // pages begun but not stored: a page left out would read as all zeros, so it must fail the backup
        AtomicInteger pagesUnsaved = new AtomicInteger();
        int threads = Math.max(1, req.threads());
        BlockingQueue<byte[]> buffers = new ArrayBlockingQueue<>(threads * 2 + 2);
        AtomicInteger allocated = new AtomicInteger();
        int maxBuffers = threads * 2 + 2;
        ExecutorService workers = Threads.pool(threads, "ferry-backup-worker");
        try {
            for (int p = 0; p < pages && failure.get() == null; p++) {
                long first = (long) p * pageBlocks;
                int count = blocksInPage(p);
                int reads = (int) toRead.rangeCardinality(first, first + count);
                boolean parentHasPage = parentVolume != null && p < parentVolume.pages().size();
                if (reads == 0 && parentHasPage && parentVolume.blocksInPage(p) == count) {
                    pageIds[p] = parentVolume.pages().get(p); // nothing changed in these blocks
                    continue;
                }
                ManifestPage page = new ManifestPage(count);
                if (parentHasPage && parentVolume.pages().get(p) != null) {
                    int parentCount = parentVolume.blocksInPage(p);
                    ManifestPage old = ManifestPage.load(repo, ChunkId.parse(parentVolume.pages().get(p)), parentCount);
                    page.copyFrom(old, Math.min(count, parentCount));
                    zeroBlocks.addAndGet(-old.zeroCount());
                } else if (parentHasPage) {
                    zeroBlocks.addAndGet(-parentVolume.blocksInPage(p)); // an all-zero page of the parent
                }
                int pageIndex = p;
                AtomicInteger remaining = new AtomicInteger(reads + 1);
                pagesUnsaved.incrementAndGet();
                Runnable pageDone = () -> {
                    if (remaining.decrementAndGet() == 0 && failure.get() == null) {
                        try {
                            zeroBlocks.addAndGet(page.zeroCount());
                            pageIds[pageIndex] = page.allZero() ? null : page.save(repo).hex();
                            pagesUnsaved.decrementAndGet();
                        } catch (Throwable e) { // an Error too: a page left unsaved must fail the backup
                            failure.compareAndSet(null, e);
                        }
                    }
                };
                PeekableIntIterator it = toRead.getIntIterator();
                it.advanceIfNeeded((int) first);
                while (it.hasNext() && failure.get() == null) {
                    int b = it.next();
                    if (b >= first + count) {
                        break;
                    }
                    byte[] buf = buffers.poll();
                    if (buf == null && allocated.get() < maxBuffers) {
                        allocated.incrementAndGet();
                        buf = new byte[blockSize];
                    } else if (buf == null) {
                        buf = buffers.take();
                    }
                    int len = blockLength(b);
                    int n = req.source().read((long) b * blockSize, buf, 0, len);
                    if (n != len) {
                        throw new EOFException(req.sourceName() + " ended at " + ((long) b * blockSize + n)
                                + " bytes, before its size of " + size + " (did it shrink during the backup?)");
                    }
                    bytesRead.addAndGet(len);
                    byte[] block = buf;
                    int entry = (int) (b - first);
                    workers.execute(() -> {
                        try {
                            if (failure.get() == null) {
                                if (Zeros.isZero(block, 0, len)) {
                                    page.set(entry, null);
                                } else {
                                    ChunkId id = repo.masterKey().chunkId(block, 0, len);
                                    repo.saveWithId(BlobType.DATA, id, block, 0, len);
                                    page.set(entry, id);
                                }
                                progress.advance(len);
                            }
                        } catch (Throwable e) { // an Error too: a block left unset would read as zero
                            failure.compareAndSet(null, e);
                        } finally {
                            buffers.offer(block);
                            pageDone.run();
                        }
                    });
                }
                pageDone.run(); // the reader's own count: the page is done once every block and the reader are
            }
            if (parentVolume != null) { // a volume that shrank: the zeros of the parent's pages past its end go
                for (int p = pages; p < parentVolume.pages().size() && failure.get() == null; p++) {
                    zeroBlocks.addAndGet(-parentPageZeros(p));
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            failure.compareAndSet(null, new InterruptedIOException("backup interrupted"));
        } catch (IOException | RuntimeException e) {
            failure.compareAndSet(null, e);
        } finally {
            Threads.drain(workers, failure, "backup");
        }
        if (failure.get() == null && pagesUnsaved.get() != 0) {
            failure.set(new IllegalStateException(pagesUnsaved.get() + " manifest pages were not stored"));
        }
        repo.flushThenRethrow(failure.get()); // what was stored stays: the next run deduplicates against it
        Snapshot.Volume volume = new Snapshot.Volume(size, blockSize, pageBlocks, Arrays.asList(pageIds));
        int again = commit.prepare(action -> forEachChunk(repo, volume, action));
        if (again > 0) {
            log.info("{} chunks of this backup were named again after a concurrent prune", again);
        }
        double duration = (System.nanoTime() - start) / 1e9;
        long bytesNew = repo.bytesAdded() - bytesBefore;
        long chunksNew = repo.chunksAdded() - chunksBefore;
        Map<String, Object> summary = new LinkedHashMap<>();
        summary.put("bytes_total", size);
        summary.put("bytes_read", bytesRead.get());
        summary.put("bytes_new", bytesNew);
        summary.put("chunks_new", chunksNew);
        summary.put("zero_blocks", zeroBlocks.get());
        summary.put("blocks_read", toRead.getLongCardinality());
        summary.put("duration_s", Math.round(duration * 1000) / 1000.0);
        Snapshot snap = new Snapshot(Snapshot.VERSION, Snapshot.KIND_BLOCK, time, hostname, req.sourceName(),
                req.tags() == null ? Map.of() : req.tags(), req.parent() == null ? null : req.parent().id(), volume,
                summary, req.engine(), null, req.volumeName());
        Snapshots.Stored stored = commit.store(snap);
        log.info("snapshot {}: read {} of {} bytes, {} new bytes stored", stored.shortId(), bytesRead.get(), size,
                bytesNew);
        return new Result(stored, size, bytesRead.get(), bytesNew, chunksNew, zeroBlocks.get(),
                toRead.getLongCardinality(), duration);
    }

    /**
     * The zero blocks of the parent's volume: its summary's figure where that counts the whole volume (backups
     * that read every block, and those that record {@code blocks_read}, which count zeros taken over from their
     * parent too); otherwise (an incremental of an older Ferry, which counted only the blocks it read) counted
     * from its manifest.
     */
    private long parentZeroBlocks() throws IOException {
        Map<String, Object> sum = req.parent().snapshot().summary();
        if (sum != null && sum.get("zero_blocks") instanceof Number z && (sum.containsKey("blocks_read")
                || sum.get("bytes_read") instanceof Number read && read.longValue() == parentVolume.size())) {
            return z.longValue();
        }
        long zeros = 0;
        for (int p = 0; p < parentVolume.pages().size(); p++) {
            zeros += parentPageZeros(p);
        }
        return zeros;
    }

    /** The zero blocks of the parent's page {@code p}: all of an all-zero page, else counted in the page. */
    private int parentPageZeros(int p) throws IOException {
        String id = parentVolume.pages().get(p);
        return id == null ? parentVolume.blocksInPage(p)
                : ManifestPage.load(repo, ChunkId.parse(id), parentVolume.blocksInPage(p)).zeroCount();
    }

    /** Every chunk a block snapshot refers to: its manifest pages and, through them, its data chunks. */
    public static void forEachChunk(Repository repo, Snapshot.Volume volume, Repository.IoConsumer<ChunkId> action)
            throws IOException {
        for (int p = 0; p < volume.pages().size(); p++) {
            String pageId = volume.pages().get(p);
            if (pageId == null) {
                continue;
            }
            ChunkId id = ChunkId.parse(pageId);
            action.accept(id);
            ManifestPage page = ManifestPage.load(repo, id, volume.blocksInPage(p));
            for (int i = 0; i < page.count(); i++) {
                ChunkId c = page.get(i);
                if (c != null) {
                    action.accept(c);
                }
            }
        }
    }

    /** Checks that a snapshot's manifest is consistent with its volume size, before anything relies on it. */
    public static void checkVolume(Snapshots.Stored s) throws RepositoryException {
        Snapshot.Volume v = s.snapshot().volume();
        if (!Snapshot.KIND_BLOCK.equals(s.snapshot().kind()) || v == null) {
            throw new RepositoryException("snapshot " + s.shortId() + " is a " + s.snapshot().kind()
                    + " snapshot, not a block snapshot");
        }
        if (v.size() < 0 || v.blockSize() < MIN_BLOCK_SIZE || v.blockSize() > MAX_BLOCK_SIZE || v.pageBlocks() < 1
                || v.pages() == null || v.blockCount() > Integer.MAX_VALUE
                || v.pages().size() != (v.blockCount() + v.pageBlocks() - 1) / v.pageBlocks()) {
            throw new RepositoryException.Damaged(Snapshots.PREFIX + s.id(), "inconsistent volume manifest (size "
                    + v.size() + ", block size " + v.blockSize() + ", " + (v.pages() == null ? 0 : v.pages().size())
                    + " pages)");
        }
        for (String page : v.pages()) {
            if (page != null && !page.matches("[0-9a-f]{64}")) {
                throw new RepositoryException.Damaged(Snapshots.PREFIX + s.id(), "invalid page id '" + page + "'");
            }
        }
    }
}
