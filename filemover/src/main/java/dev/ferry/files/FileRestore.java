package dev.ferry.files;

import dev.ferry.block.Zeros;
import dev.ferry.progress.ProgressListener;
import dev.ferry.repo.ChunkId;
import dev.ferry.repo.ChunkIndex;
import dev.ferry.repo.Envelope;
import dev.ferry.repo.PackEntry;
import dev.ferry.repo.Repository;
import dev.ferry.repo.RepositoryException;
import dev.ferry.repo.Snapshot;
import dev.ferry.repo.Snapshots;
import dev.ferry.repo.Tree;
import dev.ferry.util.Threads;
import dev.ferry.store.NoSuchObjectException;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributeView;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Restores a files snapshot into a target directory: the tree with its metadata (mode, owner, mtime, xattrs),
 * symlinks, hard links, FIFOs and devices; holes stay holes.
 *
 * <p>Nothing is written outside the target: an entry whose name is empty, {@code .}, {@code ..}, or holds a
 * {@code /} or NUL, and a tree naming an entry twice, are refused as a damaged or hostile snapshot; every
 * entry is created in a directory this restore made or checked (with lstat) to be a real directory, never
 * through a symlink. Existing files are replaced only with {@code overwrite}; existing directories are merged.
 *
 * <p>File contents are fetched and written by {@code threads} workers, one chunk at a time at its offset. The
 * restored data is on disk (syncfs(2) of the target's file system) before {@link #run} returns.
 *
 * <p>Damaged or missing data does not stop the restore: a file with a chunk that cannot be read (missing pack,
 * failed authentication, not in the index) is not restored, and not left in place with a hole where the chunk
 * should be: it is removed (every name of a hard-linked file), listed in {@link Result#damaged()} with the offset
 * of the chunk, and every other file is restored. A directory whose listing cannot be read is left empty and
 * listed. Bad names in a tree and errors of the target (no space, permissions) still stop the restore.
 *
 * <p>Progress counts the bytes of the files restored, holes and every name of a hard-linked file included, and
 * the files; its total comes from the snapshot's summary, or for {@code --include} from the trees below the
 * included path, read beside the restore.
 */
public final class FileRestore {
    private static final int PAGE = 4096;
    private static final int MAX_OPEN_FILES = 256;
    /** A batch of small files handed to one worker: at most this many files, or this much data. */
    static final int BATCH_FILES = 64;
    static final long BATCH_BYTES = 4 << 20;
    /** Chunks of a batch in one pack are fetched in one read across gaps up to this, spans up to that. */
    private static final long READ_GAP = 256 << 10;
    private static final long READ_SPAN = 8 << 20;
    /** How long the end of a restore waits for the thread that sums the total to end. */
    private static final long TOTALS_STOP_MILLIS = 10_000;

    /**
     * What a restore did, counted the way a backup counts the snapshot it made.
     *
     * @param files        regular files restored (each name of a hard-linked file)
     * @param dirs         directories of the snapshot restored (not the target, nor directories made only to
     *                     hold an included path)
     * @param bytesTotal   sum of the sizes of the files restored (each name)
     * @param bytesWritten bytes written into files: data, without the zero pages left as holes, and without
     *                     the other names of a hard-linked file
     */
    public record Result(long files, long dirs, long bytesTotal, long bytesWritten, List<String> warnings,
                         double durationS, List<Damage> damaged) {
        public Result {
            damaged = List.copyOf(damaged);
        }
    }

    /**
     * A file (or directory) not restored because its data is damaged or missing: {@code length} bytes at
     * {@code offset} of it are the chunk (or tree) {@code object}, which cannot be read, for {@code cause}.
     */
    public record Damage(String path, long offset, long length, String object, String cause) {
        @Override
        public String toString() {
            return path + ": " + length + " bytes at offset " + offset + " (" + object + "): " + cause;
        }
    }

    private final Repository repo;
    private final Snapshots.Stored snapshot;
    private final int threads;
    private final boolean overwrite;
    private final List<String> warnings = Collections.synchronizedList(new ArrayList<>());
    private final AtomicLong files = new AtomicLong();
    private final AtomicLong dirs = new AtomicLong();
    private final AtomicLong bytesWritten = new AtomicLong();
    private final AtomicLong bytesTotal = new AtomicLong();
    private final AtomicReference<Throwable> failure = new AtomicReference<>();
    private final Map<String, Path> linked = new HashMap<>();
    /** Guards the names of hard-linked files made so far, and the link groups found damaged. */
    private final Object links = new Object();
    private final Map<String, List<Map.Entry<Path, String>>> linkNames = new HashMap<>();
    private final Map<String, Damage> damagedLinks = new HashMap<>();
    private final List<Damage> damaged = Collections.synchronizedList(new ArrayList<>());
    /** Directories whose metadata is set last, deepest first, once nothing more is written into them. */
    private final List<Map.Entry<Path, Tree.Node>> dirMeta = new ArrayList<>();
    private ExecutorService workers;
    private final List<SmallFile> batch = new ArrayList<>(); // the walker's
    private long batchBytes;
    private Semaphore openFiles;
    private ProgressListener progress = ProgressListener.NONE;

    public FileRestore(Repository repo, Snapshots.Stored snapshot, int threads, boolean overwrite)
            throws RepositoryException {
        if (!Snapshot.KIND_FILES.equals(snapshot.snapshot().kind()) || snapshot.snapshot().tree() == null) {
            throw new RepositoryException("snapshot " + snapshot.shortId() + " is a " + snapshot.snapshot().kind()
                    + " snapshot, not a files snapshot");
        }
        this.repo = repo;
        this.snapshot = snapshot;
        this.threads = Math.max(1, threads);
        this.overwrite = overwrite;
    }

    /**
     * Restores the snapshot, or only the entry at {@code include} (a path relative to the snapshot's root, with
     * '/' between names; the entry keeps that path under the target), into {@code target}.
     */
    public Result run(Path target, String include, ProgressListener progress) throws IOException {
        this.progress = progress;
        long start = System.nanoTime();
        Files.createDirectories(target);
        if (!Files.isDirectory(target, LinkOption.NOFOLLOW_LINKS)) {
            throw new IOException(target + " is not a directory");
        }
        Tree root = Tree.load(repo, ChunkId.parse(snapshot.snapshot().tree()));
        boolean whole = include == null || include.isEmpty() || include.equals(".") || include.equals("/");
        // file creation and small writes wait on the file system more than on the CPU: more workers than cores
        workers = Threads.pool(Math.min(64, threads * 4), "ferry-restore-worker");
        openFiles = new Semaphore(MAX_OPEN_FILES);
        AtomicBoolean stop = new AtomicBoolean();
        Thread totals = progress == ProgressListener.NONE ? null : startTotals(root, whole ? null : include, stop);
        try {
            if (whole) {
                restoreDir(target, root, "");
                if (root.root() != null) {
                    dirMeta.add(Map.entry(target, root.root()));
                }
            } else {
                restoreOne(target, root, include);
            }
            flushBatch();
        } catch (Throwable e) {
            failure.compareAndSet(null, e);
        } finally {
            if (failure.get() != null) {
                stop.set(true);
            }
            Threads.drain(workers, failure, "restore");
        }
        if (totals != null) {
            try { // it reads a part of the trees the restore has read: done by now, or soon
                totals.join(TOTALS_STOP_MILLIS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                failure.compareAndSet(null, new java.io.InterruptedIOException("restore interrupted"));
            } finally {
                stop.set(true);
            }
        }
        Threads.rethrow(failure.get());
        for (int i = dirMeta.size() - 1; i >= 0; i--) {
            applyMeta(dirMeta.get(i).getKey(), dirMeta.get(i).getValue());
        }
        // durable before success is reported (and before a marker tells an init container to go on): one syncfs
        // of the target's file system instead of an fsync per file, which would cost a disk flush for each of
        // thousands of small files; not sync(2), which would flush every file system of the node
        Posix.syncfs(target);
        List<String> w = new ArrayList<>(warnings);
        Collections.sort(w);
        List<Damage> d = new ArrayList<>(damaged);
        d.sort(java.util.Comparator.comparing(Damage::path).thenComparingLong(Damage::offset));
        return new Result(files.get(), dirs.get(), bytesTotal.get(), bytesWritten.get(), w,
                (System.nanoTime() - start) / 1e9, d);
    }

    /**
     * Gives progress its total: for a whole snapshot from its summary (a backup counts what a restore counts),
     * else (or for a snapshot without those figures) by reading the trees below {@code include} on a thread of
     * its own, beside the restore.
     */
    private Thread startTotals(Tree root, String include, AtomicBoolean stop) {
        TreeScan.Totals recorded = include == null ? TreeScan.Totals.ofSummary(snapshot.snapshot().summary()) : null;
        if (recorded != null) {
            progress.total(recorded.bytes(), recorded.files());
            return null;
        }
        Thread t = Threads.daemon("ferry-restore-total").newThread(() -> {
            try {
                long[] sum = new long[2];
                if (include == null) {
                    sumTree(root, sum, stop);
                } else {
                    Tree.Node n = SnapshotListing.find(repo, root, include);
                    if (n.isDir()) {
                        sumTree(Tree.load(repo, ChunkId.parse(n.subtree())), sum, stop);
                    } else if (n.isFile()) {
                        sum[0]++;
                        sum[1] += n.size() == null ? 0 : n.size();
                    }
                }
                if (!stop.get()) {
                    progress.total(sum[1], sum[0]);
                }
            } catch (IOException | RuntimeException e) {
                // progress only: the restore meets the same trees and reports what is wrong with them
            }
        });
        t.start();
        return t;
    }

    private void sumTree(Tree tree, long[] sum, AtomicBoolean stop) throws IOException {
        for (Tree.Node n : tree.nodes()) {
            if (stop.get()) {
                return;
            }
            if (n.isDir()) {
                sumTree(Tree.load(repo, ChunkId.parse(n.subtree())), sum, stop);
            } else if (n.isFile()) {
                sum[0]++;
                sum[1] += n.size() == null ? 0 : n.size();
            }
        }
    }

    /** Restores the single entry at {@code include}, creating the directories above it. */
    private void restoreOne(Path target, Tree root, String include) throws Exception {
        String[] parts = include.replaceAll("^/+", "").replaceAll("/+$", "").split("/+");
        Tree tree = root;
        Path dir = target;
        String rel = "";
        for (int i = 0; i < parts.length; i++) {
            byte[] want = parts[i].getBytes(StandardCharsets.UTF_8);
            checkName(want, rel);
            Tree.Node found = tree.child(want);
            if (found == null) {
                throw new IllegalArgumentException("--include " + include + ": the snapshot has no "
                        + (rel.isEmpty() ? parts[i] : rel + "/" + parts[i]));
            }
            rel = rel.isEmpty() ? parts[i] : rel + "/" + parts[i];
            if (i == parts.length - 1) {
                restoreNode(dir, found, rel);
            } else {
                if (!found.isDir()) {
                    throw new IllegalArgumentException("--include " + include + ": " + rel + " is not a directory");
                }
                dir = directory(dir, want, rel);
                tree = Tree.load(repo, ChunkId.parse(found.subtree()));
            }
        }
    }

    /** Refuses names that could leave the directory they are created in. */
    static void checkName(byte[] name, String rel) throws RepositoryException {
        boolean bad = name.length == 0 || (name.length == 1 && name[0] == '.')
                || (name.length == 2 && name[0] == '.' && name[1] == '.');
        for (byte b : name) {
            bad |= b == '/' || b == 0;
        }
        if (bad) {
            throw new RepositoryException("refusing to restore an entry named '" + RawNames.show(name) + "' in '"
                    + (rel.isEmpty() ? "." : rel) + "': a name that is empty, '.', '..', or holds '/' or NUL would "
                    + "write outside its directory; the snapshot is damaged or was made to attack the restore");
        }
    }

    private void restoreDir(Path dir, Tree tree, String rel) throws Exception {
        byte[] previous = null;
        for (Tree.Node n : tree.nodes()) {
            if (failure.get() != null) {
                return;
            }
            byte[] name = n.nameBytes();
            checkName(name, rel);
            if (previous != null && Tree.compareNames(previous, name) >= 0) {
                throw new RepositoryException("refusing to restore '" + (rel.isEmpty() ? "." : rel) + "': its tree "
                        + "names '" + RawNames.show(name) + "' twice or out of order; the snapshot is damaged");
            }
            previous = name;
            restoreNode(dir, n, rel.isEmpty() ? RawNames.show(name) : rel + "/" + RawNames.show(name));
        }
    }

    /** A real directory {@code dir/name}, created if missing; an existing symlink or file there is refused. */
    private Path directory(Path dir, byte[] name, String rel) throws IOException {
        Path p = RawNames.resolve(dir, name);
        if (Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
            return p;
        }
        if (Files.exists(p, LinkOption.NOFOLLOW_LINKS)) {
            if (!overwrite) {
                throw new FileAlreadyExistsException(p.toString(), null, "exists and is not a directory; use "
                        + "--overwrite to replace it");
            }
            deleteTree(p);
        }
        Files.createDirectory(p);
        return p;
    }

    private void restoreNode(Path dir, Tree.Node n, String rel) throws Exception {
        byte[] name = n.nameBytes();
        if (n.isDir()) {
            Path p = directory(dir, name, rel);
            dirs.incrementAndGet();
            Tree sub;
            try {
                sub = Tree.load(repo, ChunkId.parse(n.subtree()));
            } catch (IOException e) {
                if (!isDamage(e)) {
                    throw e;
                }
                damaged.add(new Damage(rel + "/", 0, 0, "tree " + n.subtree().substring(0, 16),
                        "its listing cannot be read (" + e.getMessage() + "); the directory is left empty"));
                dirMeta.add(Map.entry(p, n));
                return;
            }
            restoreDir(p, sub, rel);
            dirMeta.add(Map.entry(p, n));
            return;
        }
        Path p = RawNames.resolve(dir, name);
        if (Files.exists(p, LinkOption.NOFOLLOW_LINKS)) {
            if (!overwrite) {
                throw new FileAlreadyExistsException(p.toString(), null, "exists; use --overwrite to replace it");
            }
            deleteTree(p);
        }
        switch (n.type()) {
            case Tree.FILE -> restoreFile(p, n, rel);
            case Tree.SYMLINK -> {
                Files.createSymbolicLink(p, RawNames.path(p, n.targetBytes()));
                applyMeta(p, n);
            }
            case Tree.FIFO, Tree.CHAR, Tree.BLOCK -> {
                int kind = switch (n.type()) {
                    case Tree.FIFO -> Posix.S_IFIFO;
                    case Tree.CHAR -> Posix.S_IFCHR;
                    default -> Posix.S_IFBLK;
                };
                int err;
                try {
                    err = Posix.mknod(p, kind | (n.mode() & 07777), n.rdev() == null ? 0 : n.rdev());
                } catch (UnsupportedOperationException e) {
                    err = -1;
                }
                if (err != 0) {
                    warnings.add(rel + ": " + n.type() + " could not be created: " + Posix.errnoText(err));
                } else {
                    applyMeta(p, n);
                }
            }
            default -> warnings.add(rel + ": " + n.type() + " entries are not restored");
        }
    }

    private void restoreFile(Path p, Tree.Node n, String rel) throws Exception {
        files.incrementAndGet();
        long size = n.size() == null ? 0 : n.size();
        bytesTotal.addAndGet(size);
        if (n.link() != null) {
            Path first = linked.get(n.link());
            if (first != null) {
                synchronized (links) {
                    Damage d = damagedLinks.get(n.link());
                    if (d != null) {
                        files.decrementAndGet();
                        damaged.add(new Damage(rel, d.offset(), d.length(), d.object(), d.cause()));
                    } else {
                        Files.createLink(p, first);
                        linkNames.get(n.link()).add(Map.entry(p, rel));
                    }
                }
                progress.advance(size);
                progress.filesDone(1);
                return;
            }
            linked.put(n.link(), p);
            synchronized (links) {
                linkNames.put(n.link(), new ArrayList<>(List.of(Map.entry(p, rel))));
            }
        }
        List<Tree.Piece> pieces = n.content() == null ? List.of() : n.content();
        long sum = 0;
        for (Tree.Piece piece : pieces) {
            sum += piece.size();
        }
        if (sum != size) {
            throw new RepositoryException("file " + rel + " is " + size + " bytes but its content pieces add up to "
                    + sum + "; the snapshot is damaged");
        }
        int dataPieces = 0;
        for (Tree.Piece piece : pieces) {
            dataPieces += piece.hole() ? 0 : 1;
        }
        if (n.link() == null && dataPieces <= 1) {
            // a small file: made, written and finished by a worker with a batch of others, so that file
            // creations (slow on many file systems) run in parallel instead of one after the other in the walk,
            // and neighbouring chunks in a pack are fetched in one read
            Tree.Piece data = null;
            for (Tree.Piece piece : pieces) {
                data = piece.hole() ? data : piece;
            }
            batch.add(new SmallFile(p, n, data, size, rel));
            batchBytes += data == null ? 0 : data.size();
            if (batch.size() >= BATCH_FILES || batchBytes >= BATCH_BYTES) {
                flushBatch();
            }
            return;
        }
        openFiles.acquire();
        FileChannel ch;
        try {
            ch = FileChannel.open(p, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE,
                    LinkOption.NOFOLLOW_LINKS);
        } catch (IOException | RuntimeException e) {
            openFiles.release();
            throw e;
        }
        List<long[]> data = new ArrayList<>(); // offset, piece index
        long off = 0;
        long holes = 0;
        for (int i = 0; i < pieces.size(); i++) {
            if (!pieces.get(i).hole()) {
                data.add(new long[] {off, i});
            } else {
                holes += pieces.get(i).size();
            }
            off += pieces.get(i).size();
        }
        progress.advance(holes);
        AtomicInteger remaining = new AtomicInteger(data.size() + 1);
        AtomicReference<Damage> firstDamage = new AtomicReference<>();
        Runnable done = () -> {
            if (remaining.decrementAndGet() == 0) {
                try {
                    try (ch) {
                        if (ch.size() < size && firstDamage.get() == null) {
                            ch.write(ByteBuffer.wrap(new byte[1]), size - 1); // the length, after a final hole
                            bytesWritten.incrementAndGet();
                        }
                    }
                    if (firstDamage.get() != null) {
                        removeDamaged(p, rel, n, firstDamage.get());
                        progress.filesDone(1);
                    } else if (failure.get() == null) {
                        applyMeta(p, n);
                        progress.filesDone(1);
                    }
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                } finally {
                    openFiles.release();
                }
            }
        };
        for (long[] d : data) {
            Tree.Piece piece = pieces.get((int) d[1]);
            long at = d[0];
            workers.execute(() -> {
                try {
                    if (failure.get() == null) {
                        byte[] bytes;
                        try {
                            bytes = repo.load(ChunkId.parse(piece.id()));
                            if (bytes.length != piece.size()) {
                                throw new RepositoryException("the chunk is " + bytes.length + " bytes, the tree says "
                                        + piece.size());
                            }
                        } catch (IOException e) {
                            if (!isDamage(e)) {
                                throw e;
                            }
                            Damage lost = new Damage(rel, at, piece.size(), "chunk " + piece.id().substring(0, 16),
                                    e.getMessage());
                            damaged.add(lost);
                            firstDamage.compareAndSet(null, lost);
                            progress.advance(piece.size());
                            return;
                        }
                        if (firstDamage.get() == null) { // a file that will be removed needs no more data
                            bytesWritten.addAndGet(writeSparse(ch, bytes, bytes.length, at));
                        }
                        progress.advance(bytes.length);
                    }
                } catch (Throwable e) { // an Error too: a piece left unwritten would be silent zeros
                    failure.compareAndSet(null, e);
                } finally {
                    done.run();
                }
            });
        }
        done.run();
    }

    /** A file of at most one data piece, waiting in {@link #batch}. */
    private record SmallFile(Path path, Tree.Node node, Tree.Piece data, long size, String rel) {
    }

    /** Hands the waiting small files to a worker. Called by the walker only. */
    private void flushBatch() throws InterruptedException {
        if (batch.isEmpty()) {
            return;
        }
        List<SmallFile> jobs = new ArrayList<>(batch);
        batch.clear();
        batchBytes = 0;
        openFiles.acquire(); // bounds the batches waiting for a worker
        workers.execute(() -> {
            try {
                if (failure.get() == null) {
                    writeBatch(jobs);
                }
            } catch (Throwable e) { // an Error too: the restore must not report success
                failure.compareAndSet(null, e);
            } finally {
                openFiles.release();
            }
        });
    }

    /** Writes a batch of small files: their chunks read pack by pack, neighbours in one ranged read. */
    private void writeBatch(List<SmallFile> jobs) throws IOException {
        record Located(SmallFile file, ChunkIndex.Location loc) {
        }
        List<Located> located = new ArrayList<>(jobs.size());
        for (SmallFile f : jobs) {
            if (f.data() == null) {
                writeSmall(f, null, 0);
                continue;
            }
            ChunkIndex.Location loc = repo.lookup(ChunkId.parse(f.data().id())).orElse(null);
            if (loc == null) {
                smallDamaged(f, "the chunk is not in the repository index");
            } else if (loc.entry().rawLength() != f.data().size()) {
                smallDamaged(f, "the chunk is " + loc.entry().rawLength() + " bytes, the tree says " + f.data().size());
            } else {
                located.add(new Located(f, loc));
            }
        }
        located.sort(java.util.Comparator.comparing((Located l) -> l.loc().pack().hex())
                .thenComparingLong(l -> l.loc().entry().offset()));
        int i = 0;
        while (i < located.size() && failure.get() == null) {
            PackEntry first = located.get(i).loc().entry();
            String pack = located.get(i).loc().pack().objectName();
            long start = first.offset();
            long end = first.end();
            int j = i + 1;
            while (j < located.size() && located.get(j).loc().pack().objectName().equals(pack)
                    && located.get(j).loc().entry().offset() >= end
                    && located.get(j).loc().entry().offset() - end <= READ_GAP
                    && located.get(j).loc().entry().end() - start <= READ_SPAN) {
                end = located.get(j).loc().entry().end();
                j++;
            }
            byte[] buf;
            try {
                buf = repo.store().getRange(pack, start, Math.toIntExact(end - start));
            } catch (IOException ex) {
                if (!isDamage(ex)) {
                    throw ex;
                }
                for (int k = i; k < j; k++) {
                    smallDamaged(located.get(k).file(), ex.getMessage());
                }
                i = j;
                continue;
            }
            for (int k = i; k < j; k++) {
                PackEntry e = located.get(k).loc().entry();
                Envelope.Scratch plain;
                try {
                    plain = repo.openChunkInScratch(pack, e, buf, Math.toIntExact(e.offset() - start));
                } catch (RepositoryException ex) {
                    smallDamaged(located.get(k).file(), ex.getMessage());
                    continue;
                }
                writeSmall(located.get(k).file(), plain.out(), e.rawLength());
            }
            i = j;
        }
    }

    /** Whether a read failed because the repository lacks or holds damaged data, not for a passing reason. */
    private static boolean isDamage(IOException e) {
        return e instanceof RepositoryException || e instanceof NoSuchObjectException || e instanceof EOFException;
    }

    /** A small file whose one chunk cannot be had: listed, never created. */
    private void smallDamaged(SmallFile f, String cause) {
        damaged.add(new Damage(f.rel(), offsetOf(f), f.data().size(), "chunk " + f.data().id().substring(0, 16),
                cause));
        files.decrementAndGet();
        progress.advance(f.size());
        progress.filesDone(1);
    }

    /** Offset of a small file's data piece in the file. */
    private static long offsetOf(SmallFile f) {
        long at = 0;
        for (Tree.Piece piece : f.node().content()) {
            if (piece == f.data()) {
                break;
            }
            at += piece.size();
        }
        return at;
    }

    /**
     * Removes a file that lacks some of its data, so that nothing damaged is left looking restored: every name
     * of it made so far when it is hard-linked, and the names still to come are listed instead of linked.
     */
    private void removeDamaged(Path p, String rel, Tree.Node n, Damage d) throws IOException {
        synchronized (links) {
            List<Map.Entry<Path, String>> names = n.link() == null ? List.of(Map.entry(p, rel))
                    : linkNames.getOrDefault(n.link(), List.of(Map.entry(p, rel)));
            if (n.link() != null) {
                damagedLinks.put(n.link(), d);
            }
            for (Map.Entry<Path, String> name : names) {
                Files.deleteIfExists(name.getKey());
                files.decrementAndGet();
                if (!name.getKey().equals(p)) {
                    damaged.add(new Damage(name.getValue(), d.offset(), d.length(), d.object(), d.cause()));
                }
            }
        }
    }

    /** Creates one small file with {@code len} bytes of data (or none), its length, and its metadata. */
    private void writeSmall(SmallFile f, byte[] data, int len) throws IOException {
        try (FileChannel ch = FileChannel.open(f.path(), StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE,
                LinkOption.NOFOLLOW_LINKS)) {
            if (data != null) {
                bytesWritten.addAndGet(writeSparse(ch, data, len, offsetOf(f)));
            }
            if (ch.size() < f.size()) {
                ch.write(ByteBuffer.wrap(new byte[1]), f.size() - 1); // the length, after a final hole
                bytesWritten.incrementAndGet();
            }
        }
        applyMeta(f.path(), f.node());
        progress.advance(f.size()); // its data and its holes
        progress.filesDone(1);
    }

    /**
     * Writes {@code bytes[0, length)} at {@code at}, skipping whole zero pages so that they stay holes in a new
     * file; returns the number of bytes written.
     */
    private static long writeSparse(FileChannel ch, byte[] bytes, int length, long at) throws IOException {
        long written = 0;
        int i = 0;
        while (i < length) {
            // align pages to the file offset
            int pageEnd = (int) Math.min(length, i + (PAGE - ((at + i) % PAGE)));
            if (Zeros.isZero(bytes, i, pageEnd - i)) {
                i = pageEnd;
                continue;
            }
            int j = pageEnd;
            while (j < length) {
                int next = Math.min(length, j + PAGE);
                if (Zeros.isZero(bytes, j, next - j)) {
                    break;
                }
                j = next;
            }
            ByteBuffer b = ByteBuffer.wrap(bytes, i, j - i);
            long pos = at + i;
            while (b.hasRemaining()) {
                pos += ch.write(b, pos);
            }
            written += j - i;
            i = j;
        }
        return written;
    }

    /** Owner, then xattrs and mode (chown clears set-uid bits), then the modification time. */
    private void applyMeta(Path p, Tree.Node n) {
        boolean link = Tree.SYMLINK.equals(n.type());
        String text = n.xattrs() == null || n.xattrs().isEmpty() ? Posix.textOrNull(p) : null;
        if (text != null) { // the common case, by path, without opening the file again
            int err = Posix.setMeta(text, link, (int) n.uid(), (int) n.gid(), n.mode() & 07777, n.mtimeNs());
            if (err == 0) {
                return;
            }
        }
        // FIFOs and devices are never opened (java.nio opens a file to change its mode): set through their path
        boolean special = Tree.FIFO.equals(n.type()) || Tree.CHAR.equals(n.type()) || Tree.BLOCK.equals(n.type());
        try {
            Files.setAttribute(p, "unix:uid", (int) n.uid(), LinkOption.NOFOLLOW_LINKS);
            Files.setAttribute(p, "unix:gid", (int) n.gid(), LinkOption.NOFOLLOW_LINKS);
        } catch (IOException | UnsupportedOperationException e) {
            warnings.add(p + ": owner not restored: " + e.getMessage());
        }
        if (!link) {
            if (!special && n.xattrs() != null && !n.xattrs().isEmpty()) {
                // after the owner (chown drops security.capability), before the mode, which chmod also writes
                // into a POSIX ACL: the ACL restored here then agrees with the mode set next
                for (Map.Entry<String, String> x : n.xattrs().entrySet()) {
                    try {
                        int err = Posix.setXattr(p, x.getKey(), Base64.getDecoder().decode(x.getValue()));
                        if (err != 0) {
                            throw new IOException(Posix.errnoText(err));
                        }
                    } catch (IOException | RuntimeException e) {
                        warnings.add(p + ": extended attribute " + x.getKey() + " not restored: " + e.getMessage());
                    }
                }
            }
            try {
                if (special) {
                    int err = Posix.chmod(p, n.mode() & 07777);
                    if (err != 0) {
                        throw new IOException("chmod: " + Posix.errnoText(err));
                    }
                } else {
                    Files.setAttribute(p, "unix:mode", n.mode() & 07777, LinkOption.NOFOLLOW_LINKS);
                }
            } catch (IOException | UnsupportedOperationException e) {
                warnings.add(p + ": mode not restored: " + e.getMessage());
            }
        }
        FileTime mtime = FileTime.from(n.mtimeNs(), TimeUnit.NANOSECONDS);
        try {
            if (link || special) {
                int err = Posix.lutimens(p, n.mtimeNs());
                if (err != 0) {
                    throw new IOException("utimensat: " + Posix.errnoText(err));
                }
            } else {
                Files.getFileAttributeView(p, BasicFileAttributeView.class, LinkOption.NOFOLLOW_LINKS)
                        .setTimes(mtime, null, null);
            }
        } catch (IOException | RuntimeException e) {
            warnings.add(p + ": modification time not restored: " + e.getMessage());
        }
    }

    /** Deletes a file, symlink or directory tree without following symlinks. */
    private static void deleteTree(Path p) throws IOException {
        if (!Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
            Files.delete(p);
            return;
        }
        Files.walkFileTree(p, new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
                Files.delete(file);
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult postVisitDirectory(Path d, IOException e) throws IOException {
                if (e != null) {
                    throw e;
                }
                Files.delete(d);
                return FileVisitResult.CONTINUE;
            }
        });
    }
}
