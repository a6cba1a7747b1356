package dev.ferry.files;

import dev.ferry.block.Zeros;
import dev.ferry.progress.ProgressListener;
import dev.ferry.repo.BlobType;
import dev.ferry.repo.ChunkId;
import dev.ferry.repo.Repository;
import dev.ferry.repo.RepositoryException;
import dev.ferry.repo.RepositoryLock;
import dev.ferry.repo.SnapshotCommit;
import dev.ferry.repo.Snapshot;
import dev.ferry.repo.Snapshots;
import dev.ferry.repo.Tree;
import dev.ferry.util.Threads;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.time.Clock;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Backs up a directory tree into a files snapshot: files as chunks ({@link Chunker}: content-defined, or the
 * fixed 1 MiB blocks of a block backup for large page-structured files such as volume images), holes (all-zero
 * chunks) as holes, directories as {@link Tree} objects with their metadata.
 *
 * <p>One thread walks the tree (directory listings and lstat); files are read by {@code threads} reader
 * threads, and the chunks of large files are hashed, compressed and encrypted by another {@code threads}
 * workers, so one large file uses every core. With a parent snapshot, a file whose size, mtime, ctime and inode
 * are the parent's is taken from the parent without being read. Progress gets its total from the parent's
 * figures, or without a parent from a {@link TreeScan} that counts the files and bytes ahead of the walk.
 *
 * <p>Files that vanish or change while being read become warnings; files that cannot be read are listed as
 * errors and left out, and the snapshot is still stored (a partial backup).
 *
 * <p>The figures of the {@link Result} describe the snapshot as stored: files and directories are entries of
 * the snapshot (the backed-up directory itself is not counted; neither is anything left out), and
 * {@code bytesTotal} is the sum of the sizes of its files, every name of a hard-linked file counted, as a
 * restore of the snapshot counts them.
 */
public final class FileBackup {
    private static final Logger log = LoggerFactory.getLogger(FileBackup.class);
    /** Files at least this large have their chunks processed by the worker pool instead of their reader. */
    static final long LARGE_FILE = 16L << 20;
    private static final String STAT = "unix:mode,ino,dev,uid,gid,ctime,nlink,rdev,size,lastModifiedTime";
    /** How long the end of a backup waits for its scan to stop (it stops at its next entry). */
    private static final long SCAN_STOP_MILLIS = 10_000;
    private static final int NEW = 0;
    private static final int CHANGED = 1;
    private static final int UNCHANGED = 2;

    /**
     * What to back up.
     *
     * @param root           the directory
     * @param sourceName     recorded as the snapshot's source
     * @param parent         a files snapshot to take unchanged files from, or null
     * @param excludes       glob patterns: with a '/', matched against the path relative to the root; without,
     *                       against the name at any depth. A matching directory is left out with its content.
     * @param oneFileSystem  do not descend into directories on another file system (they are kept, empty)
     * @param tags           user tags
     * @param threads        reader threads, and as many hashing workers
     * @param lock           the repository lock, checked before the snapshot is stored; or null
     * @param volumeName     the volume's name (a PV name) recorded in the snapshot, or null: the volume is then
     *                       known by {@code sourceName} on the backup's host
     */
    public record Request(Path root, String sourceName, Snapshots.Stored parent, List<String> excludes,
                          boolean oneFileSystem, Map<String, String> tags, int threads, RepositoryLock lock,
                          String volumeName) {
        /** A request for a volume without a name. */
        public Request(Path root, String sourceName, Snapshots.Stored parent, List<String> excludes,
                       boolean oneFileSystem, Map<String, String> tags, int threads, RepositoryLock lock) {
            this(root, sourceName, parent, excludes, oneFileSystem, tags, threads, lock, null);
        }
    }

    /**
     * What a backup did; {@code errors} lists files left out because they could not be read.
     *
     * @param bytesTotal     sum of the sizes of the snapshot's files (each name of a hard-linked file)
     * @param bytesRead      bytes read from files (files taken from the parent are not read)
     * @param bytesNew       stored (compressed, encrypted) bytes of the chunks this backup added, trees included
     * @param chunksNew      chunks this backup added
     * @param filesNew       files of the snapshot with no file of that name in the parent
     * @param filesChanged   files of the snapshot whose parent entry differs in size, mtime, ctime or inode
     * @param filesUnchanged files of the snapshot taken from the parent's entry of that name without being read
     * @param dirs           directories in the snapshot, below the backed-up one
     */
    public record Result(Snapshots.Stored snapshot, long bytesTotal, long bytesRead, long bytesNew, long chunksNew,
                         long filesNew, long filesChanged, long filesUnchanged, long dirs, List<String> warnings,
                         List<String> errors, double durationS) {
        public boolean partial() {
            return !errors.isEmpty();
        }
    }

    /** Starts loading the native bindings in the background (call before opening the repository). */
    public static void warmUp() {
        Posix.warmUp();
    }

    /** Opens a file for reading; replaced by tests to simulate files that cannot be read. */
    interface Opener {
        FileChannel open(Path p) throws IOException;
    }

    private final Repository repo;
    private final Request req;
    private final Chunker chunker;
    private final Excludes excludes;
    Opener opener = p -> FileChannel.open(p, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS);

    private final List<String> warnings = Collections.synchronizedList(new ArrayList<>());
    private final List<String> errors = Collections.synchronizedList(new ArrayList<>());
    private final AtomicLong bytesTotal = new AtomicLong();
    private final AtomicLong bytesRead = new AtomicLong();
    private final AtomicLong filesNew = new AtomicLong();
    private final AtomicLong filesChanged = new AtomicLong();
    private final AtomicLong filesUnchanged = new AtomicLong();
    private final AtomicLong dirs = new AtomicLong();
    private final AtomicReference<Throwable> failure = new AtomicReference<>();
    private final Map<String, Future<Outcome>> hardLinks = new HashMap<>();
    private ExecutorService readers;
    private ExecutorService workers;
    private Semaphore inFlight;
    private ProgressListener progress = ProgressListener.NONE;
    private long rootDevice;

    public FileBackup(Repository repo, Request req) throws RepositoryException {
        this.repo = repo;
        this.req = req;
        if (req.parent() != null && !Snapshot.KIND_FILES.equals(req.parent().snapshot().kind())) {
            throw new RepositoryException("snapshot " + req.parent().shortId() + " is a "
                    + req.parent().snapshot().kind() + " snapshot; the parent of a files backup is a files snapshot");
        }
        this.chunker = Chunker.forKey(repo.masterKey());
        this.excludes = new Excludes(req.excludes());
    }

    /** A file's content, or why there is none. */
    private record Outcome(List<Tree.Piece> content, long size, String warning, String error, boolean vanished) {
    }

    /** A directory entry found by the walk, waiting for its content; {@code category} of a file: NEW... */
    private record Pending(byte[] name, Map<String, Object> stat, Tree.Node parentNode, Future<Outcome> content,
                           String subtree, byte[] target, Map<String, String> xattrs, String rel, int category) {
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
        this.progress = progress;
        long start = System.nanoTime();
        String time = clock.instant().truncatedTo(java.time.temporal.ChronoUnit.MILLIS).toString();
        long bytesBefore = repo.bytesAdded();
        long chunksBefore = repo.chunksAdded();
        Path root = req.root();
        Map<String, Object> rootStat = Files.readAttributes(root, STAT, LinkOption.NOFOLLOW_LINKS);
        if (type(rootStat) != Posix.S_IFDIR) {
            throw new IllegalArgumentException(root + " is not a directory; a files backup reads a directory tree");
        }
        rootDevice = ((Number) rootStat.get("dev")).longValue();
        Tree parentRoot = null;
        if (req.parent() != null) { // before any thread starts: a failure here leaves nothing running
            parentRoot = Tree.load(repo, ChunkId.parse(req.parent().snapshot().tree()));
        }
        int threads = Math.max(1, req.threads());
        readers = Threads.pool(threads, "ferry-file-reader");
        workers = Threads.pool(threads, "ferry-file-worker");
        // bounds the chunks waiting for a worker: memory stays bounded whatever the file sizes
        inFlight = new Semaphore(threads * 2 + 2);
        TreeScan scan = null;
        if (progress != ProgressListener.NONE && !parentTotals()) {
            scan = new TreeScan(root, excludes, req.oneFileSystem(), rootDevice);
        }
        Thread scanner = scan == null ? null : startScan(scan);
        String rootId;
        try {
            Tree.Node rootMeta = node(new byte[0], rootStat, null, null, null, xattrs(root));
            rootId = backupDir(root, "", parentRoot, rootMeta);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            failure.compareAndSet(null, new InterruptedIOException("backup interrupted"));
            rootId = null;
        } catch (Throwable e) {
            failure.compareAndSet(null, e);
            rootId = null;
        } finally {
            if (scan != null) {
                scan.cancel();
            }
            Threads.drain(readers, failure, "backup");
            Threads.drain(workers, failure, "backup");
        }
        if (scanner != null) {
            try {
                scanner.join(SCAN_STOP_MILLIS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                failure.compareAndSet(null, new InterruptedIOException("backup interrupted"));
            }
        }
        repo.flushThenRethrow(failure.get()); // what was stored stays: the next run deduplicates against it
        String treeId = rootId;
        int again = commit.prepare(action -> Tree.forEachChunk(repo::load, treeId, new HashSet<>(), action));
        if (again > 0) {
            log.info("{} chunks of this backup were named again after a concurrent prune", again);
        }
        double duration = (System.nanoTime() - start) / 1e9;
        long bytesNew = repo.bytesAdded() - bytesBefore;
        long chunksNew = repo.chunksAdded() - chunksBefore;
        List<String> w = new ArrayList<>(warnings);
        List<String> e = new ArrayList<>(errors);
        Collections.sort(w);
        Collections.sort(e);
        Map<String, Object> summary = new LinkedHashMap<>();
        summary.put("bytes_total", bytesTotal.get());
        summary.put("bytes_read", bytesRead.get());
        summary.put("bytes_new", bytesNew);
        summary.put("chunks_new", chunksNew);
        summary.put("files_new", filesNew.get());
        summary.put("files_changed", filesChanged.get());
        summary.put("files_unchanged", filesUnchanged.get());
        summary.put("dirs", dirs.get());
        summary.put("warnings", w.size());
        summary.put("unreadable", e.size());
        summary.put("duration_s", Math.round(duration * 1000) / 1000.0);
        Snapshot snap = new Snapshot(Snapshot.VERSION, Snapshot.KIND_FILES, time, hostname, req.sourceName(),
                req.tags() == null ? Map.of() : req.tags(), req.parent() == null ? null : req.parent().id(), null,
                summary, null, rootId, req.volumeName());
        Snapshots.Stored stored = commit.store(snap);
        log.info("snapshot {}: {} files read ({} bytes), {} unchanged, {} new bytes stored", stored.shortId(),
                filesNew.get() + filesChanged.get(), bytesRead.get(), filesUnchanged.get(), bytesNew);
        return new Result(stored, bytesTotal.get(), bytesRead.get(), bytesNew, chunksNew, filesNew.get(),
                filesChanged.get(), filesUnchanged.get(), dirs.get(), w, e, duration);
    }

    /**
     * Gives an incremental backup's progress its total: the parent's figures, the same tree a backup ago. They
     * are off by what changed since, and cost nothing, where a scan would lstat every entry a second time while
     * the backup itself mostly compares entries with the parent's (docs/PERFORMANCE.md: a sixth longer for a tree
     * of unchanged small files). Returns false when the parent has no figures.
     */
    private boolean parentTotals() {
        TreeScan.Totals t = req.parent() == null ? null : TreeScan.Totals.ofSummary(req.parent().snapshot().summary());
        if (t == null || t.bytes() == 0 && t.files() == 0) {
            return false;
        }
        progress.total(t.bytes(), t.files());
        return true;
    }

    /** Starts the scan that gives progress its total when the backup has no parent to take it from. */
    private Thread startScan(TreeScan scan) {
        Thread t = Threads.daemon("ferry-file-scan").newThread(() -> {
            try {
                TreeScan.Totals totals = scan.run();
                if (totals != null) {
                    progress.total(totals.bytes(), totals.files());
                }
            } catch (IOException | RuntimeException e) {
                log.debug("the scan for progress stopped: {}", e.toString()); // the backup reports what it meets
            }
        });
        t.start();
        return t;
    }

    private static int type(Map<String, Object> stat) {
        return ((Number) stat.get("mode")).intValue() & Posix.S_IFMT;
    }

    private static long mtimeNs(Map<String, Object> stat) {
        return ((FileTime) stat.get("lastModifiedTime")).to(TimeUnit.NANOSECONDS);
    }

    private static long ctimeNs(Map<String, Object> stat) {
        return ((FileTime) stat.get("ctime")).to(TimeUnit.NANOSECONDS);
    }

    /** For a file with more than one name: the id its names share in the snapshot, else null. */
    private static String linkId(Map<String, Object> stat) {
        return num(stat, "nlink") > 1 ? num(stat, "dev") + ":" + num(stat, "ino") : null;
    }

    private static long num(Map<String, Object> stat, String key) {
        return ((Number) stat.get(key)).longValue();
    }

    /** Backs up one directory (depth first) and stores its tree; returns the tree's id. */
    private String backupDir(Path dir, String rel, Tree parent, Tree.Node self) throws Exception {
        List<Path> children = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
            for (Path p : ds) {
                children.add(p);
            }
        } catch (NoSuchFileException e) {
            warnings.add((rel.isEmpty() ? "." : rel) + ": directory vanished during the backup");
        } catch (IOException e) {
            errors.add((rel.isEmpty() ? "." : rel) + ": directory cannot be read: " + e.getMessage());
        }
        List<byte[]> names = new ArrayList<>(children.size());
        Map<String, Path> byName = new HashMap<>();
        for (Path p : children) {
            byte[] name = RawNames.bytes(p.getFileName());
            names.add(name);
            byName.put(new String(name, StandardCharsets.ISO_8859_1), p);
        }
        names.sort(Tree::compareNames);
        Map<String, Tree.Node> parentNodes = new HashMap<>();
        if (parent != null) {
            for (Tree.Node n : parent.nodes()) {
                parentNodes.put(new String(n.nameBytes(), StandardCharsets.ISO_8859_1), n);
            }
        }
        List<Pending> pending = new ArrayList<>(names.size());
        for (byte[] name : names) {
            if (failure.get() != null) {
                break;
            }
            String key = new String(name, StandardCharsets.ISO_8859_1);
            Path p = byName.get(key);
            String childRel = rel.isEmpty() ? RawNames.show(name) : rel + "/" + RawNames.show(name);
            if (excludes.excluded(childRel, name)) {
                continue;
            }
            Map<String, Object> st;
            try {
                st = Files.readAttributes(p, STAT, LinkOption.NOFOLLOW_LINKS);
            } catch (NoSuchFileException e) {
                warnings.add(childRel + ": vanished during the backup");
                continue;
            } catch (IOException e) {
                errors.add(childRel + ": cannot be read: " + e.getMessage());
                continue;
            }
            Tree.Node old = parentNodes.get(key);
            int type = type(st);
            if (type == Posix.S_IFDIR) {
                Tree sub = null;
                if (old != null && old.isDir()) {
                    sub = Tree.load(repo, ChunkId.parse(old.subtree()));
                }
                String subtree;
                if (req.oneFileSystem() && num(st, "dev") != rootDevice) {
                    subtree = new Tree(Tree.VERSION, List.of(), null).save(repo).hex(); // a mount point: kept empty
                } else {
                    subtree = backupDir(p, childRel, sub, null);
                }
                pending.add(new Pending(name, st, old, null, subtree, null, xattrs(p), childRel, NEW));
            } else if (type == Posix.S_IFREG) {
                Future<Outcome> content;
                String link = linkId(st);
                Future<Outcome> earlier = link == null ? null : hardLinks.get(link);
                // each name is compared with the parent's entry of that name, whoever reads the content
                boolean same = unchanged(old, st);
                int category = same ? UNCHANGED : old != null && old.isFile() ? CHANGED : NEW;
                if (earlier != null) {
                    content = earlier; // another name of a file already read
                    progress.advance(num(st, "size"));
                    progress.filesDone(1);
                } else if (same) {
                    progress.advance(num(st, "size"));
                    progress.filesDone(1);
                    content = java.util.concurrent.CompletableFuture.completedFuture(
                            new Outcome(old.content(), old.size(), null, null, false));
                } else {
                    Map<String, Object> stat = st;
                    content = readers.submit(() -> {
                        try {
                            return readFile(p, childRel, stat);
                        } finally {
                            progress.filesDone(1);
                        }
                    });
                }
                if (link != null) {
                    hardLinks.putIfAbsent(link, content);
                }
                pending.add(new Pending(name, st, old, content, null, null, xattrs(p), childRel, category));
            } else if (type == Posix.S_IFLNK) {
                byte[] target;
                try {
                    target = RawNames.bytes(Files.readSymbolicLink(p));
                } catch (NoSuchFileException e) {
                    warnings.add(childRel + ": vanished during the backup");
                    continue;
                } catch (IOException e) {
                    errors.add(childRel + ": symlink cannot be read: " + e.getMessage());
                    continue;
                }
                pending.add(new Pending(name, st, old, null, null, target, null, childRel, NEW));
            } else {
                pending.add(new Pending(name, st, old, null, null, null, null, childRel, NEW));
            }
        }
        List<Tree.Node> nodes = new ArrayList<>(pending.size());
        for (Pending e : pending) {
            List<Tree.Piece> content = null;
            Long size = null;
            if (e.content() != null) {
                Outcome o;
                try {
                    o = e.content().get();
                } catch (ExecutionException ex) {
                    failure.compareAndSet(null, ex.getCause());
                    break;
                }
                if (o.vanished()) {
                    warnings.add(e.rel() + ": vanished during the backup");
                    continue;
                }
                if (o.error() != null) {
                    errors.add(e.rel() + ": " + o.error());
                    continue;
                }
                if (o.warning() != null) {
                    warnings.add(e.rel() + ": " + o.warning());
                }
                content = o.content();
                size = o.size();
            }
            Tree.Node n = node(e.name(), e.stat(), size, content, e, e.xattrs());
            nodes.add(n);
            count(n, e.category()); // what the snapshot holds, counted once its content is known
        }
        if (failure.get() != null) {
            Threads.rethrow(failure.get());
        }
        return new Tree(Tree.VERSION, nodes, self).save(repo).hex();
    }

    private void count(Tree.Node n, int category) {
        if (n.isDir()) {
            dirs.incrementAndGet();
        } else if (n.isFile()) {
            bytesTotal.addAndGet(n.size());
            (category == UNCHANGED ? filesUnchanged : category == CHANGED ? filesChanged : filesNew)
                    .incrementAndGet();
        }
    }

    private boolean unchanged(Tree.Node old, Map<String, Object> st) throws IOException {
        if (old == null || !old.isFile() || old.size() == null || old.content() == null || old.ctimeNs() == null
                || old.inode() == null) {
            return false;
        }
        if (old.size() != num(st, "size") || old.mtimeNs() != mtimeNs(st) || old.ctimeNs() != ctimeNs(st)
                || old.inode() != num(st, "ino")) {
            return false;
        }
        for (Tree.Piece piece : old.content()) {
            if (piece.id() != null && !repo.contains(ChunkId.parse(piece.id()))) {
                return false; // pruned meanwhile: read it again
            }
        }
        return true;
    }

    private Tree.Node node(byte[] name, Map<String, Object> st, Long size, List<Tree.Piece> content, Pending e,
                           Map<String, String> xattrs) {
        String[] nf = Tree.nameFields(name);
        int type = type(st);
        String t = switch (type) {
            case Posix.S_IFDIR -> Tree.DIR;
            case Posix.S_IFREG -> Tree.FILE;
            case Posix.S_IFLNK -> Tree.SYMLINK;
            case Posix.S_IFIFO -> Tree.FIFO;
            case Posix.S_IFCHR -> Tree.CHAR;
            case Posix.S_IFBLK -> Tree.BLOCK;
            default -> Tree.SOCKET;
        };
        String[] tf = e == null || e.target() == null ? new String[2] : Tree.nameFields(e.target());
        Long rdev = type == Posix.S_IFCHR || type == Posix.S_IFBLK ? num(st, "rdev") : null;
        String link = type == Posix.S_IFREG ? linkId(st) : null;
        return new Tree.Node(nf[0], nf[1], t, ((Number) st.get("mode")).intValue() & 07777, num(st, "uid"),
                num(st, "gid"), mtimeNs(st), ctimeNs(st), num(st, "ino"), num(st, "dev"), size, content,
                e == null ? null : e.subtree(), tf[0], tf[1], rdev, link, xattrs);
    }

    /**
     * Extended attributes of a file or directory, every namespace the kernel lists (full name to base64 of the
     * value); null when there are none or the file system has none.
     */
    static Map<String, String> xattrs(Path p) {
        Map<String, byte[]> raw = Posix.xattrs(p);
        if (raw == null) {
            return null; // none here (or the file went away: the read reports that)
        }
        Map<String, String> out = new TreeMap<>();
        raw.forEach((name, value) -> out.put(name, Base64.getEncoder().encodeToString(value)));
        return out;
    }

    /** Reads and chunks one file. Runs on a reader thread. */
    private Outcome readFile(Path p, String rel, Map<String, Object> before) throws Exception {
        if (failure.get() != null) {
            return new Outcome(null, 0, null, "not read: the backup failed", false);
        }
        FileChannel ch;
        try {
            ch = opener.open(p);
        } catch (NoSuchFileException e) {
            return new Outcome(null, 0, null, null, true);
        } catch (AccessDeniedException e) {
            return new Outcome(null, 0, null, "permission denied", false);
        } catch (IOException e) {
            return new Outcome(null, 0, null, "cannot be opened: " + e.getMessage(), false);
        }
        List<Tree.Piece> pieces = new ArrayList<>();
        List<Future<?>> chunkTasks = new ArrayList<>();
        long size = 0;
        try (ch) {
            long expected = num(before, "size");
            boolean large = expected >= LARGE_FILE;
            // the rule is decided by the size before reading, so a file is cut one way from start to end
            boolean fixed = Chunker.fixedPieces(expected);
            int cutAfter = fixed ? Chunker.FIXED_SIZE : Chunker.MAX_SIZE;
            // a large file's chunks are hashed and stored by workers straight out of two read buffers that take
            // turns: no chunk is copied, and the garbage collector sees no chunk-sized arrays
            ReadBuffer[] ring = large ? new ReadBuffer[] {new ReadBuffer(2 * Chunker.MAX_SIZE),
                    new ReadBuffer(2 * Chunker.MAX_SIZE)} : null;
            int current = 0;
            byte[] buf = large ? ring[0].data
                    : new byte[(int) Math.min(2L * Chunker.MAX_SIZE, Math.max(expected + 1, 4096))];
            int start = 0;
            int end = 0;
            boolean eof = false;
            while (true) {
                while (!eof && end < buf.length) {
                    int n = ch.read(ByteBuffer.wrap(buf, end, buf.length - end));
                    if (n < 0) {
                        eof = true;
                    } else {
                        end += n;
                        bytesRead.addAndGet(n);
                    }
                }
                if (!eof && buf.length < 2 * Chunker.MAX_SIZE && end == buf.length) {
                    buf = Arrays.copyOf(buf, (int) Math.min(2L * Chunker.MAX_SIZE, buf.length * 2L)); // it grew
                    continue;
                }
                while (end - start > 0 && (eof || end - start >= cutAfter)) {
                    int n = fixed ? Math.min(Chunker.FIXED_SIZE, end - start) : chunker.cut(buf, start, end - start);
                    addChunk(large ? ring[current] : null, buf, start, n, pieces, chunkTasks);
                    size += n;
                    start += n;
                }
                if (eof) {
                    break;
                }
                if (large) { // the rest moves to the other buffer once its chunks are done
                    current ^= 1;
                    ring[current].awaitFree();
                    System.arraycopy(buf, start, ring[current].data, 0, end - start);
                    buf = ring[current].data;
                } else {
                    System.arraycopy(buf, start, buf, 0, end - start);
                }
                end -= start;
                start = 0;
            }
        } catch (IOException e) {
            awaitQuietly(chunkTasks); // they hold read buffers and in-flight permits until they end
            if (failure.get() != null) {
                throw e;
            }
            return new Outcome(null, 0, null, "read failed: " + e.getMessage(), false);
        }
        for (Future<?> f : chunkTasks) {
            f.get();
        }
        String warning = null;
        try {
            Map<String, Object> after = Files.readAttributes(p, STAT, LinkOption.NOFOLLOW_LINKS);
            if (num(after, "size") != size || mtimeNs(after) != mtimeNs(before) || ctimeNs(after) != ctimeNs(before)) {
                warning = "changed while being read; the snapshot holds what was read (" + size + " bytes)";
            }
        } catch (NoSuchFileException e) {
            warning = "deleted while being read; the snapshot holds what was read (" + size + " bytes)";
        }
        List<Tree.Piece> merged = mergeHoles(pieces);
        return new Outcome(merged, size, warning, null, false);
    }

    /** Waits for every task to end, whatever its outcome (a failure is already recorded by the task). */
    private static void awaitQuietly(List<Future<?>> tasks) {
        boolean interrupted = false;
        for (Future<?> f : tasks) {
            while (true) {
                try {
                    f.get();
                    break;
                } catch (InterruptedException e) {
                    interrupted = true;
                } catch (java.util.concurrent.ExecutionException | java.util.concurrent.CancellationException e) {
                    break;
                }
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    /** A read buffer of a large file and how many chunk tasks still read from it. */
    private static final class ReadBuffer {
        final byte[] data;
        private int users;

        ReadBuffer(int size) {
            data = new byte[size];
        }

        synchronized void retain() {
            users++;
        }

        synchronized void release() {
            if (--users == 0) {
                notifyAll();
            }
        }

        synchronized void awaitFree() throws java.io.InterruptedIOException {
            while (users > 0) {
                try {
                    wait();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new java.io.InterruptedIOException("interrupted while reading");
                }
            }
        }
    }

    /**
     * Records one chunk: a hole if all zero, else its id. The chunk of a large file ({@code from} not null) is
     * hashed and stored by a worker straight out of {@code from}, which it holds until then.
     */
    private void addChunk(ReadBuffer from, byte[] buf, int off, int len, List<Tree.Piece> pieces,
                          List<Future<?>> tasks) throws IOException, InterruptedException {
        if (Zeros.isZero(buf, off, len)) {
            pieces.add(new Tree.Piece(null, len));
            progress.advance(len);
            return;
        }
        if (from == null) {
            ChunkId id = repo.masterKey().chunkId(buf, off, len);
            repo.saveWithId(BlobType.DATA, id, buf, off, len);
            pieces.add(new Tree.Piece(id.hex(), len));
            progress.advance(len);
            return;
        }
        int index = pieces.size();
        pieces.add(null);
        inFlight.acquire();
        from.retain();
        try {
            tasks.add(workers.submit(() -> {
                try {
                    ChunkId id = repo.masterKey().chunkId(buf, off, len);
                    repo.saveWithId(BlobType.DATA, id, buf, off, len);
                    synchronized (pieces) {
                        pieces.set(index, new Tree.Piece(id.hex(), len));
                    }
                    progress.advance(len);
                } catch (Throwable e) { // an Error too: a piece left unset would lose data
                    failure.compareAndSet(null, e);
                    throw e;
                } finally {
                    from.release();
                    inFlight.release();
                }
                return null;
            }));
        } catch (RuntimeException e) { // not submitted: nothing else gives these back
            from.release();
            inFlight.release();
            throw e;
        }
    }

    private static List<Tree.Piece> mergeHoles(List<Tree.Piece> pieces) {
        List<Tree.Piece> out = new ArrayList<>(pieces.size());
        synchronized (pieces) {
            for (Tree.Piece p : pieces) {
                if (p == null) {
                    throw new IllegalStateException("a chunk of a file was not stored");
                }
                if (p.hole() && !out.isEmpty() && out.get(out.size() - 1).hole()) {
                    out.set(out.size() - 1, new Tree.Piece(null, out.get(out.size() - 1).size() + p.size()));
                } else {
                    out.add(p);
                }
            }
        }
        return out;
    }
}
