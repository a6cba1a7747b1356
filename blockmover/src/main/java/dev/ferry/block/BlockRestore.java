package dev.ferry.block;

import dev.ferry.engine.VolumeWriter;
import dev.ferry.progress.ProgressListener;
import dev.ferry.repo.ChunkId;
import dev.ferry.repo.ChunkIndex;
import dev.ferry.repo.PackEntry;
import dev.ferry.repo.PackId;
import dev.ferry.repo.Repository;
import dev.ferry.repo.RepositoryException;
import dev.ferry.repo.Snapshot;
import dev.ferry.repo.Snapshots;
import dev.ferry.util.Threads;
import dev.ferry.store.NoSuchObjectException;
import java.io.EOFException;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Restores a block snapshot into a {@link VolumeWriter}. Works one manifest page (4 GiB of 1 MiB blocks) at a
 * time, so memory does not grow with the volume: the page's chunks are grouped by pack and fetched as ranged
 * reads of neighbouring chunks (one read serves every block that shares a chunk), several at once; each chunk
 * is authenticated and checked against its id before it is written at its blocks' offsets.
 *
 * <p>On a target that is not known to be all zeros (an existing file being resumed, a block device) every
 * block is read first: a block that already holds the right data is skipped (that is what makes an
 * interrupted restore resumable), a zero block that holds data is zeroed. The target is synced before the
 * restore reports success.
 *
 * <p>A damaged or missing chunk (or manifest page) stops the restore with an error naming the block's offset and
 * the chunk, unless the restore is told to keep going: then the range is left unwritten (a hole in a new file;
 * an existing target keeps what it held there), reported in {@link Result#damaged()}, and every other block is
 * restored. Nothing damaged is ever written as if it were good, and a resumed restore fetches those ranges
 * again, as they do not hold their data.
 */
public final class BlockRestore {
    private static final Logger log = LoggerFactory.getLogger(BlockRestore.class);
    /** Neighbouring chunks of a pack are fetched in one read up to this size... */
    static final int MAX_READ = 4 << 20;
    /** ...as long as the gap between them is at most this. */
    static final int MAX_GAP = 1 << 20;

    /**
     * One range buffer per fetch thread, reused and grown on demand: ranges are up to {@link #MAX_READ} bytes,
     * or one chunk when a chunk (a block of up to 64 MiB) is larger.
     */
    private static final ThreadLocal<byte[]> RANGE = ThreadLocal.withInitial(() -> new byte[0]);

    /** What a restore did. */
    public record Result(long bytesTotal, long bytesWritten, long bytesAlreadyThere, long zeroBlocks,
                         double durationS, List<Damage> damaged) {
        public Result {
            damaged = List.copyOf(damaged);
        }

        /** Bytes of the volume left unrestored because their data is damaged or missing. */
        public long bytesDamaged() {
            long n = 0;
            for (Damage d : damaged) {
                n += d.length();
            }
            return n;
        }
    }

    /**
     * A range of the volume that could not be restored: {@code length} bytes at {@code offset}, whose data is
     * the chunk (or manifest page) {@code object}, and why.
     */
    public record Damage(long offset, long length, String object, String cause) {
        @Override
        public String toString() {
            return "offset " + offset + ", " + length + " bytes (" + object + "): " + cause;
        }
    }

    private final Repository repo;
    private final Snapshots.Stored snapshot;
    private final Snapshot.Volume volume;
    private final VolumeWriter target;
    private final int threads;
    private final boolean keepGoing;
    private final List<Damage> damaged = Collections.synchronizedList(new ArrayList<>());

    public BlockRestore(Repository repo, Snapshots.Stored snapshot, VolumeWriter target, int threads)
            throws RepositoryException {
        this(repo, snapshot, target, threads, false);
    }

    /**
     * @param keepGoing go on past damaged or missing data, leaving its ranges unwritten and listing them in the
     *                  result, instead of stopping at the first
     */
    public BlockRestore(Repository repo, Snapshots.Stored snapshot, VolumeWriter target, int threads,
                        boolean keepGoing) throws RepositoryException {
        BlockBackup.checkVolume(snapshot);
        this.keepGoing = keepGoing;
        this.repo = repo;
        this.snapshot = snapshot;
        this.volume = snapshot.snapshot().volume();
        this.target = target;
        this.threads = Math.max(1, threads);
        if (target.size() < volume.size()) {
            throw new IllegalArgumentException("the target holds " + target.size() + " bytes, less than the volume's "
                    + volume.size());
        }
    }

    private record Work(PackEntry entry, List<Long> blocks) {
    }

    public Result run(ProgressListener progress) throws IOException {
        long start = System.nanoTime();
        AtomicLong written = new AtomicLong();
        AtomicLong already = new AtomicLong();
        AtomicLong zeros = new AtomicLong();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        int fetchers = Math.max(4, threads * 2);
        ExecutorService pool = Threads.pool(fetchers, "ferry-restore");
        Semaphore inFlight = new Semaphore(fetchers);
        int bs = volume.blockSize();
        try {
            for (int p = 0; p < volume.pages().size() && failure.get() == null; p++) {
                long first = (long) p * volume.pageBlocks();
                int count = volume.blocksInPage(p);
                String pageId = volume.pages().get(p);
                ManifestPage page;
                try {
                    page = pageId == null ? new ManifestPage(count)
                            : ManifestPage.load(repo, ChunkId.parse(pageId), count);
                } catch (IOException e) {
                    if (!isDamage(e)) {
                        throw e;
                    }
                    List<Long> all = new ArrayList<>(count);
                    for (int i = 0; i < count; i++) {
                        all.add(first + i);
                    }
                    damaged(all, "manifest page " + ChunkId.parse(pageId).shortHex(), e, progress);
                    continue;
                }
                boolean[] skip = new boolean[count];
                if (!target.knownZero()) {
                    compareExisting(pool, page, first, skip, written, already, zeros, progress, failure);
                }
                // chunk -> blocks that need it, then chunk -> its place, grouped by pack
                Map<ChunkId, List<Long>> byChunk = new LinkedHashMap<>();
                for (int i = 0; i < count; i++) {
                    if (skip[i]) {
                        continue;
                    }
                    ChunkId id = page.get(i);
                    if (id == null) {
                        zeros.incrementAndGet();
                        progress.advance(volume.blockLength(first + i));
                        continue;
                    }
                    byChunk.computeIfAbsent(id, k -> new ArrayList<>(1)).add(first + i);
                }
                Map<PackId, List<Work>> byPack = new HashMap<>();
                for (Map.Entry<ChunkId, List<Long>> e : byChunk.entrySet()) {
                    ChunkIndex.Location loc = repo.lookup(e.getKey()).orElse(null);
                    if (loc == null) {
                        damaged(e.getValue(), "chunk " + e.getKey().shortHex(), repo.notIndexed("the chunk"), progress);
                        continue;
                    }
                    byPack.computeIfAbsent(loc.pack(), k -> new ArrayList<>()).add(new Work(loc.entry(), e.getValue()));
                }
                for (Map.Entry<PackId, List<Work>> e : byPack.entrySet()) {
                    List<Work> works = e.getValue();
                    works.sort(Comparator.comparingLong(w -> w.entry().offset()));
                    int i = 0;
                    while (i < works.size() && failure.get() == null) {
                        int j = i + 1;
                        long rangeStart = works.get(i).entry().offset();
                        long rangeEnd = works.get(i).entry().end();
                        while (j < works.size() && works.get(j).entry().offset() - rangeEnd <= MAX_GAP
                                && works.get(j).entry().end() - rangeStart <= MAX_READ) {
                            rangeEnd = Math.max(rangeEnd, works.get(j).entry().end());
                            j++;
                        }
                        List<Work> batch = works.subList(i, j);
                        long from = rangeStart;
                        int len = (int) (rangeEnd - rangeStart);
                        String packName = e.getKey().objectName();
                        inFlight.acquire();
                        pool.execute(() -> {
                            try {
                                if (failure.get() == null) {
                                    byte[] bytes = RANGE.get();
                                    if (bytes.length < len) {
                                        bytes = new byte[len];
                                        RANGE.set(bytes);
                                    }
                                    try {
                                        repo.store().readRange(packName, from, bytes, len);
                                    } catch (IOException ex) {
                                        if (!isDamage(ex)) {
                                            throw ex;
                                        }
                                        for (Work w : batch) {
                                            damaged(w.blocks(), "chunk " + w.entry().id().shortHex(), ex, progress);
                                        }
                                        return;
                                    }
                                    for (Work w : batch) {
                                        byte[] plain;
                                        try {
                                            plain = repo.openChunkInScratch(packName, w.entry(), bytes,
                                                    (int) (w.entry().offset() - from)).out();
                                        } catch (RepositoryException ex) {
                                            damaged(w.blocks(), "chunk " + w.entry().id().shortHex(), ex, progress);
                                            continue;
                                        }
                                        int plainLength = w.entry().rawLength();
                                        for (long b : w.blocks()) {
                                            int blen = volume.blockLength(b);
                                            if (plainLength != blen) {
                                                damaged(List.of(b), "chunk " + w.entry().id().shortHex(),
                                                        new RepositoryException("the chunk is " + plainLength
                                                                + " bytes but the block is " + blen
                                                                + ": the manifest is damaged"), progress);
                                                continue;
                                            }
                                            target.write(b * bs, plain, 0, blen);
                                            written.addAndGet(blen);
                                            progress.advance(blen);
                                        }
                                    }
                                }
                            } catch (Throwable ex) { // an Error too: a block left unwritten must fail the restore
                                failure.compareAndSet(null, ex);
                            } finally {
                                inFlight.release();
                            }
                        });
                        i = j;
                    }
                }
                // finish this page before the next one so that memory stays bounded by one page's plan
                inFlight.acquire(fetchers);
                inFlight.release(fetchers);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            failure.compareAndSet(null, new InterruptedIOException("restore interrupted"));
        } catch (IOException | RuntimeException e) {
            failure.compareAndSet(null, e);
        } finally {
            Threads.drain(pool, failure, "restore");
        }
        Threads.rethrow(failure.get());
        target.sync();
        double duration = (System.nanoTime() - start) / 1e9;
        log.info("restored snapshot {}: {} bytes written, {} already in place, {} zero blocks", snapshot.shortId(),
                written.get(), already.get(), zeros.get());
        List<Damage> d = new ArrayList<>(damaged);
        d.sort(Comparator.comparingLong(Damage::offset));
        if (!d.isEmpty()) {
            log.warn("snapshot {}: {} range(s) of the volume left unrestored: their data is damaged or missing",
                    snapshot.shortId(), d.size());
        }
        return new Result(volume.size(), written.get(), already.get(), zeros.get(), duration, d);
    }

    /** Whether a read failed because the repository lacks or holds damaged data, not for a passing reason. */
    private static boolean isDamage(IOException e) {
        return e instanceof RepositoryException || e instanceof NoSuchObjectException || e instanceof EOFException;
    }

    /**
     * Blocks whose data cannot be had: listed (neighbouring blocks as one range) when the restore keeps going,
     * else the restore stops with an error that names the first of them.
     */
    private void damaged(List<Long> blocks, String object, IOException cause, ProgressListener progress)
            throws RepositoryException {
        List<Long> sorted = new ArrayList<>(blocks);
        sorted.sort(null);
        int bs = volume.blockSize();
        List<Damage> ranges = new ArrayList<>();
        long start = -1;
        long end = -1;
        for (long b : sorted) {
            long off = b * bs;
            if (off != end) {
                if (start >= 0) {
                    ranges.add(new Damage(start, end - start, object, cause.getMessage()));
                }
                start = off;
            }
            end = off + volume.blockLength(b);
        }
        if (start >= 0) {
            ranges.add(new Damage(start, end - start, object, cause.getMessage()));
        }
        if (!keepGoing) {
            Damage d = ranges.get(0);
            throw new RepositoryException("cannot restore " + d.length() + " bytes at offset " + d.offset()
                    + " of the volume (" + object + "): " + cause.getMessage() + "; the repository is damaged (run "
                    + "'ferry verify --read-data'); restore with --keep-going to restore everything else and list "
                    + "what is damaged", cause);
        }
        for (Damage d : ranges) {
            log.warn("snapshot {}: not restored: {}", snapshot.shortId(), d);
            damaged.add(d);
            progress.advance(d.length());
        }
    }

    /**
     * Reads every block of a page from the target, in parallel: marks blocks that already hold their data
     * (or are zero and should be) as done, and zeroes zero blocks that hold something else.
     */
    private void compareExisting(ExecutorService pool, ManifestPage page, long first, boolean[] skip,
                                 AtomicLong written, AtomicLong already, AtomicLong zeros, ProgressListener progress,
                                 AtomicReference<Throwable> failure) throws InterruptedException {
        int bs = volume.blockSize();
        int parts = threads;
        Semaphore done = new Semaphore(0);
        for (int t = 0; t < parts; t++) {
            int part = t;
            pool.execute(() -> {
                byte[] buf = new byte[bs];
                try {
                    for (int i = part; i < skip.length && failure.get() == null; i += parts) {
                        long b = first + i;
                        int len = volume.blockLength(b);
                        target.read(b * bs, buf, 0, len);
                        ChunkId want = page.get(i);
                        if (want == null) {
                            if (!Zeros.isZero(buf, 0, len)) {
                                target.zero(b * bs, len);
                                written.addAndGet(len);
                            }
                            zeros.incrementAndGet();
                            skip[i] = true;
                            progress.advance(len);
                        } else if (repo.masterKey().chunkId(buf, 0, len).equals(want)) {
                            already.addAndGet(len);
                            skip[i] = true;
                            progress.advance(len);
                        }
                    }
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                } finally {
                    done.release();
                }
            });
        }
        done.acquire(parts);
    }
}
