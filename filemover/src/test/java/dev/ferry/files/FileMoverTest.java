package dev.ferry.files;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.progress.ProgressListener;
import dev.ferry.repo.BlobType;
import dev.ferry.repo.ChunkId;
import dev.ferry.repo.KdfParams;
import dev.ferry.repo.KeySource;
import dev.ferry.repo.Pruner;
import dev.ferry.repo.Repository;
import dev.ferry.repo.RepositoryException;
import dev.ferry.repo.Snapshot;
import dev.ferry.repo.Snapshots;
import dev.ferry.repo.Tree;
import dev.ferry.repo.Verifier;
import dev.ferry.store.LocalStore;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.UserDefinedFileAttributeView;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.Collections;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import jnr.posix.POSIXFactory;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Backups and restores of real directory trees on a loop-mounted ext4 file system. */
class FileMoverTest {
    static final KeySource KEY = new KeySource.Password("pw".toCharArray());
    static Ext4 fs;
    Path work;
    Repository repo;

    @BeforeAll
    static void mountFs() throws Exception {
        fs = Ext4.mount(512);
    }

    @AfterAll
    static void unmountFs() throws Exception {
        if (fs != null) {
            fs.close();
        }
    }

    @BeforeEach
    void setUp() throws Exception {
        Assumptions.assumeTrue(fs != null, "needs root to loop-mount an ext4 image");
        work = Files.createTempDirectory(fs.mount, "t");
        repo = Repository.init(new LocalStore(Files.createDirectory(work.resolve("repo"))), KEY,
                new KdfParams(1024, 1, 1), 4 << 20, Clock.systemUTC());
    }

    @AfterEach
    void tearDown() throws Exception {
        if (work != null) {
            Ext4.deleteTree(work);
        }
    }

    static byte[] random(long seed, int n) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    static void setMtime(Path p, long ns) throws IOException {
        if (Files.readAttributes(p, "unix:mode", LinkOption.NOFOLLOW_LINKS).get("mode") instanceof Integer m
                && (m & Posix.S_IFMT) == Posix.S_IFIFO) {
            assertEquals(0, Posix.lutimens(p, ns)); // java.nio would open the FIFO, and wait for a writer
            return;
        }
        Files.getFileAttributeView(p, java.nio.file.attribute.BasicFileAttributeView.class, LinkOption.NOFOLLOW_LINKS)
                .setTimes(FileTime.from(ns, TimeUnit.NANOSECONDS), null, null);
    }

    /** A tree with every kind of entry and metadata the file mover keeps. */
    static Path makeTree(Path root) throws Exception {
        Files.createDirectories(root);
        Path sub = Files.createDirectories(root.resolve("sub/deeper"));
        Files.write(root.resolve("small.txt"), "hello\n".getBytes(StandardCharsets.UTF_8));
        Files.write(root.resolve("sub/big.bin"), random(1, 5 << 20));
        Files.write(root.resolve("empty"), new byte[0]);
        Files.createDirectories(root.resolve("emptydir"));
        Files.write(sub.resolve("a.txt"), "deep".getBytes(StandardCharsets.UTF_8));
        Files.createSymbolicLink(root.resolve("link-rel"), Path.of("sub/deeper/a.txt"));
        Files.createSymbolicLink(root.resolve("link-abs"), Path.of("/etc/hostname"));
        Files.write(root.resolve("hard1"), "linked".getBytes(StandardCharsets.UTF_8));
        Files.createLink(root.resolve("sub/hard2"), root.resolve("hard1"));
        Path x = Files.write(root.resolve("xattr.txt"), "x".getBytes(StandardCharsets.UTF_8));
        UserDefinedFileAttributeView v = Files.getFileAttributeView(x, UserDefinedFileAttributeView.class);
        v.write("ferry.test", ByteBuffer.wrap(new byte[] {1, 2, 0, (byte) 0xff}));
        Files.getFileAttributeView(root.resolve("sub"), UserDefinedFileAttributeView.class)
                .write("dir.attr", ByteBuffer.wrap("d".getBytes(StandardCharsets.UTF_8)));
        try (FileChannel ch = FileChannel.open(root.resolve("sparse"), StandardOpenOption.CREATE_NEW,
                StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(random(2, 1 << 20)), 0);
            ch.write(ByteBuffer.wrap(random(3, 4096)), 64L << 20);
            ch.write(ByteBuffer.wrap(new byte[] {7}), (100L << 20) - 1); // ends with a hole before the last byte
        }
        Path odd = RawNames.resolve(root, new byte[] {'n', (byte) 0xff, (byte) 0xfe, '.', 'b', 'i', 'n'});
        Files.write(odd, "not utf-8".getBytes(StandardCharsets.UTF_8));
        assertEquals(0, Posix.mknod(root.resolve("fifo"), Posix.S_IFIFO | 0640, 0));
        Path suid = Files.write(root.resolve("suid"), "s".getBytes(StandardCharsets.UTF_8));
        Files.setAttribute(root.resolve("small.txt"), "unix:uid", 1234);
        Files.setAttribute(root.resolve("small.txt"), "unix:gid", 5678);
        Files.setAttribute(root.resolve("link-rel"), "unix:uid", 4321, LinkOption.NOFOLLOW_LINKS);
        Files.setAttribute(suid, "unix:mode", 04750);
        Files.setAttribute(root.resolve("emptydir"), "unix:mode", 01777);
        Files.setAttribute(root.resolve("sub/deeper"), "unix:mode", 0500);
        long t = 1_600_000_000_123_456_789L;
        try (Stream<Path> s = Files.walk(root)) {
            List<Path> all = new ArrayList<>(s.toList());
            java.util.Collections.reverse(all); // children before their directories
            for (Path p : all) {
                setMtime(p, t += 1_000_001);
            }
        }
        // symlinks' own times: java.nio sets them with microseconds, so nanoseconds prove Ferry's restore
        assertEquals(0, Posix.lutimens(root.resolve("link-abs"), 1_500_000_000_987_654_321L));
        return root;
    }

    /** Everything the file mover promises to keep, per relative path (names as ISO-8859-1 to keep their bytes). */
    static Map<String, String> describe(Path root) throws Exception {
        Map<String, String> out = new TreeMap<>();
        Map<Object, String> inodes = new java.util.HashMap<>();
        try (Stream<Path> s = Files.walk(root)) {
            for (Path p : s.toList()) {
                if (p.equals(root)) {
                    continue;
                }
                StringBuilder rel = new StringBuilder();
                for (Path part : root.relativize(p)) {
                    rel.append('/').append(new String(RawNames.bytes(part), StandardCharsets.ISO_8859_1));
                }
                Map<String, Object> a = Files.readAttributes(p, "unix:mode,uid,gid,lastModifiedTime,ino,nlink,size",
                        LinkOption.NOFOLLOW_LINKS);
                StringBuilder d = new StringBuilder();
                int mode = (Integer) a.get("mode");
                d.append(Integer.toOctalString(mode)).append(' ').append(a.get("uid")).append(':').append(a.get("gid"))
                        .append(" mtime=").append(((FileTime) a.get("lastModifiedTime")).to(TimeUnit.NANOSECONDS));
                if ((mode & Posix.S_IFMT) == Posix.S_IFLNK) {
                    d.append(" -> ").append(new String(RawNames.bytes(Files.readSymbolicLink(p)),
                            StandardCharsets.ISO_8859_1));
                } else if ((mode & Posix.S_IFMT) == Posix.S_IFREG) {
                    d.append(" sha=").append(dev.ferry.crypto.Hashes.sha256Hex(Files.readAllBytes(p)));
                    if (java.util.Arrays.equals(RawNames.bytes(p), p.toString().getBytes(StandardCharsets.UTF_8))) {
                        // (jnr-posix takes paths as text: only for names that are valid UTF-8)
                        long blocks = POSIXFactory.getNativePOSIX().lstat(p.toString()).blocks();
                        d.append(" blocks=").append(blocks <= 8 ? "<=8" : blocks); // small files: allocation varies
                    }
                    if ((Integer) a.get("nlink") > 1) {
                        Object ino = a.get("ino");
                        String first = inodes.putIfAbsent(ino, rel.toString());
                        d.append(" link=").append(first == null ? "first" : first);
                    }
                }
                if ((mode & Posix.S_IFMT) == Posix.S_IFREG || (mode & Posix.S_IFMT) == Posix.S_IFDIR) {
                    Map<String, String> x = FileBackup.xattrs(p);
                    if (x != null) {
                        d.append(" xattrs=").append(x);
                    }
                }
                out.put(rel.toString(), d.toString());
            }
        }
        return out;
    }

    FileBackup.Result backup(Path dir, Snapshots.Stored parent, List<String> excludes) throws IOException {
        FileBackup b = new FileBackup(repo, new FileBackup.Request(dir, dir.toString(), parent, excludes, false,
                Map.of(), 2, null));
        FileBackup.Result r = b.run(ProgressListener.NONE, Clock.systemUTC(), "test");
        repo.flush();
        return r;
    }

    FileRestore.Result restore(Snapshots.Stored s, Path target, String include, boolean overwrite) throws IOException {
        return new FileRestore(repo, s, 2, overwrite).run(target, include, ProgressListener.NONE);
    }

    /**
     * The end of a restore flushes its target's file system only (syncfs on the target), not every file system of
     * the node (sync): seen with strace on the thread that runs the restore.
     */
    @Test
    void restoreFlushesOnlyTheTargetsFileSystem() throws Exception {
        Assumptions.assumeTrue(Files.isExecutable(Path.of("/usr/bin/strace")), "needs strace");
        Path src = Files.createDirectories(work.resolve("src"));
        Files.write(src.resolve("a.bin"), random(7, 1 << 20));
        FileBackup.Result r = backup(src, null, List.of());
        Path dst = work.resolve("dst");
        Path log = Files.createTempFile("ferry-strace", ".log");
        // this thread's id (strace follows one thread): the restore's syncing is done on the calling thread
        String tid = Files.readSymbolicLink(Path.of("/proc/thread-self")).getFileName().toString();
        Process strace = new ProcessBuilder("strace", "-y", "-e", "trace=sync,syncfs", "-o", log.toString(),
                "-p", tid).redirectErrorStream(true).start();
        try {
            java.io.BufferedReader err = new java.io.BufferedReader(new java.io.InputStreamReader(
                    strace.getInputStream(), StandardCharsets.UTF_8));
            String line = err.readLine(); // "Process N attached"
            Assumptions.assumeTrue(line != null && line.contains("attached"), "strace cannot attach: " + line);
            restore(r.snapshot(), dst, null, false);
        } finally {
            strace.destroy(); // SIGTERM: strace detaches and writes its log
            assertTrue(strace.waitFor(30, TimeUnit.SECONDS));
        }
        String calls = Files.readString(log);
        Files.delete(log);
        assertFalse(calls.contains("sync()"), "a global sync(2): " + calls);
        assertTrue(calls.matches("(?s).*syncfs\\(\\d+<" + java.util.regex.Pattern.quote(dst.toRealPath().toString())
                + ">\\) = 0.*"), "no syncfs on the target: " + calls);
    }

    @Test
    void roundTripKeepsContentAndMetadata() throws Exception {
        Assumptions.assumeTrue(RawNames.exact(), "raw names need --add-opens java.base/sun.nio.fs");
        Path src = makeTree(work.resolve("src"));
        Map<String, String> before = describe(src);
        assertEquals(16, before.size(), before.toString());
        assertTrue(before.get("/xattr.txt").contains("user.ferry.test"), before.toString());
        assertTrue(before.get("/sub").contains("user.dir.attr"), before.toString());
        assertTrue(before.keySet().contains("/n\u00ff\u00fe.bin"), before.keySet().toString());
        assertTrue(before.get("/suid").startsWith("104750"), before.get("/suid"));
        FileBackup.Result r = backup(src, null, List.of());
        assertTrue(r.errors().isEmpty(), r.errors().toString());
        assertEquals(List.of(), r.warnings());
        Path dst = work.resolve("dst");
        FileRestore.Result rr = restore(r.snapshot(), dst, null, false);
        assertEquals(List.of(), rr.warnings());
        Map<String, String> after = describe(dst);
        assertEquals(before, after);
        // the sparse file really is sparse: 100 MiB long, about 1 MiB allocated
        long blocks = POSIXFactory.getNativePOSIX().lstat(dst.resolve("sparse").toString()).blocks();
        assertTrue(blocks * 512 < (3L << 20), "restored sparse file allocates " + blocks * 512 + " bytes");
        assertEquals(100L << 20, Files.size(dst.resolve("sparse")));
        // holes are recorded as holes, not stored
        assertTrue(r.bytesNew() < (10L << 20), "stored " + r.bytesNew());
        Map<String, Object> a = Files.readAttributes(dst.resolve("hard1"), "unix:ino");
        Map<String, Object> b = Files.readAttributes(dst.resolve("sub/hard2"), "unix:ino");
        assertEquals(a.get("ino"), b.get("ino"));
        // the root directory's own metadata is restored too
        assertEquals(Files.getLastModifiedTime(src), Files.getLastModifiedTime(dst));

        Verifier.Report v = new Verifier(repo, m -> { }).verify(true, 2);
        assertTrue(v.ok(), v.errors().toString());
        assertEquals(1, v.snapshots());
    }

    /** Sets and reads extended attributes with Python's os module: a view of them that is not Ferry's own. */
    static String python(String script, Path... paths) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("python3", "-c", script));
        for (Path p : paths) {
            cmd.add(p.toString());
        }
        Process pr = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(pr.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, pr.waitFor(), out);
        return out;
    }

    static final String DUMP_XATTRS = "import os, sys\n"
            + "for p in sys.argv[1:]:\n"
            + "    print(sorted((n, os.getxattr(p, n, follow_symlinks=False).hex()) "
            + "for n in os.listxattr(p, follow_symlinks=False)))\n";

    @Test
    void everyXattrNamespaceAndPosixAclsRoundTrip() throws Exception {
        Path src = Files.createDirectories(work.resolve("src"));
        Path file = Files.write(src.resolve("acl.txt"), "acl".getBytes(StandardCharsets.UTF_8));
        Path dir = Files.createDirectories(src.resolve("shared"));
        // a POSIX ACL (user 1000 may read; default ACL on the directory), and trusted./security. attributes,
        // which java.nio cannot see at all
        python("import os, struct, sys\n"
                + "def acl(*e): return struct.pack('<I', 2) + b''.join(struct.pack('<HHI', *x) for x in e)\n"
                + "A = acl((1, 6, 0xffffffff), (2, 4, 1000), (4, 4, 0xffffffff), (0x10, 4, 0xffffffff), (0x20, 0, 0xffffffff))\n"
                + "f, d = sys.argv[1], sys.argv[2]\n"
                + "os.setxattr(f, 'system.posix_acl_access', A)\n"
                + "os.setxattr(f, 'trusted.ferry', b'\\x00t')\n"
                + "os.setxattr(f, 'security.ferry', b's')\n"
                + "os.setxattr(f, 'user.plain', b'u')\n"
                + "os.setxattr(d, 'system.posix_acl_access', A)\n"
                + "os.setxattr(d, 'system.posix_acl_default', A)\n", file, dir);
        String before = python(DUMP_XATTRS, file, dir);
        for (String name : List.of("system.posix_acl_access", "system.posix_acl_default", "trusted.ferry",
                "security.ferry", "user.plain")) {
            assertTrue(before.contains(name), name + " set: " + before);
        }
        Object mode = Files.getAttribute(file, "unix:mode");
        FileBackup.Result r = backup(src, null, List.of());
        assertEquals(List.of(), r.warnings());
        Path dst = work.resolve("dst");
        FileRestore.Result rr = restore(r.snapshot(), dst, null, false);
        assertEquals(List.of(), rr.warnings());
        assertEquals(before, python(DUMP_XATTRS, dst.resolve("acl.txt"), dst.resolve("shared")));
        assertEquals(mode, Files.getAttribute(dst.resolve("acl.txt"), "unix:mode"), "mode and ACL agree");
    }

    @Test
    void incrementalReadsOnlyChangedFiles() throws Exception {
        Path src = Files.createDirectories(work.resolve("src"));
        for (int i = 0; i < 20; i++) {
            Files.write(src.resolve("f" + i), random(i, 10_000 + i));
        }
        Files.write(src.resolve("big"), random(99, 3 << 20));
        FileBackup.Result full = backup(src, null, List.of());
        assertEquals(21, full.filesNew());
        assertEquals(20 * 10_000 + 190 + (3 << 20), full.bytesRead());

        Files.write(src.resolve("f3"), random(1000, 777));
        Files.write(src.resolve("new"), random(1001, 555));
        FileBackup.Result inc = backup(src, full.snapshot(), List.of());
        assertEquals(777 + 555, inc.bytesRead());
        assertEquals(19 + 1, inc.filesUnchanged());
        assertEquals(1, inc.filesChanged());
        assertEquals(1, inc.filesNew());
        Path dst = work.resolve("dst");
        restore(inc.snapshot(), dst, null, false);
        assertArrayEquals(Files.readAllBytes(src.resolve("big")), Files.readAllBytes(dst.resolve("big")));
        assertArrayEquals(random(1000, 777), Files.readAllBytes(dst.resolve("f3")));
        assertArrayEquals(random(1001, 555), Files.readAllBytes(dst.resolve("new")));
    }

    private Snapshots.Stored hostile(String... names) throws IOException {
        ChunkId empty = new Tree(Tree.VERSION, List.of(), null).save(repo);
        ChunkId data = repo.save(BlobType.DATA, "owned".getBytes(StandardCharsets.UTF_8));
        List<Tree.Node> nodes = new ArrayList<>();
        for (String n : names) {
            boolean dir = n.endsWith("#dir");
            String name = dir ? n.substring(0, n.length() - 4) : n;
            nodes.add(new Tree.Node(name, null, dir ? Tree.DIR : Tree.FILE, 0644, 0, 0, 0, null, null, null,
                    dir ? null : 5L, dir ? null : List.of(new Tree.Piece(data.hex(), 5)), dir ? empty.hex() : null,
                    null, null, null, null, null));
        }
        ChunkId root = new Tree(Tree.VERSION, nodes, null).save(repo);
        repo.flush();
        return new Snapshots(repo).save(new Snapshot(Snapshot.VERSION, Snapshot.KIND_FILES, "2026-01-01T00:00:00Z",
                "h", "/x", Map.of(), null, null, Map.of(), null, root.hex()));
    }

    @Test
    void hostileNamesAreRefused() throws Exception {
        for (String bad : List.of("..", "../escaped", "/tmp/escaped", "a/b", ".", "")) {
            Path dst = work.resolve("dst" + Math.abs(bad.hashCode()));
            Snapshots.Stored s = hostile("aaa", bad);
            RepositoryException e = assertThrows(RepositoryException.class, () -> restore(s, dst, null, false), bad);
            assertTrue(e.getMessage().contains("refusing"), e.getMessage());
        }
        assertFalse(Files.exists(work.resolve("escaped")));
        assertFalse(Files.exists(Path.of("/tmp/escaped")));
        // a symlink out of the target, then a directory of the same name: never written through
        Path outside = Files.createDirectories(work.resolve("outside"));
        ChunkId empty = new Tree(Tree.VERSION, List.of(new Tree.Node("victim", null, Tree.FILE, 0644, 0, 0, 0, null,
                null, null, 0L, List.of(), null, null, null, null, null, null)), null).save(repo);
        List<Tree.Node> nodes = List.of(
                new Tree.Node("x", null, Tree.SYMLINK, 0777, 0, 0, 0, null, null, null, null, null, null,
                        outside.toString(), null, null, null, null),
                new Tree.Node("x", null, Tree.DIR, 0755, 0, 0, 0, null, null, null, null, null, empty.hex(), null, null,
                        null, null, null));
        ChunkId root = new Tree(Tree.VERSION, nodes, null).save(repo);
        repo.flush();
        Snapshots.Stored s = new Snapshots(repo).save(new Snapshot(Snapshot.VERSION, Snapshot.KIND_FILES,
                "2026-01-01T00:00:00Z", "h", "/x", Map.of(), null, null, Map.of(), null, root.hex()));
        assertThrows(RepositoryException.class, () -> restore(s, work.resolve("dst-link"), null, true));
        assertFalse(Files.exists(outside.resolve("victim")));
    }

    @Test
    void includeOverwriteAndExcludes() throws Exception {
        Path src = Files.createDirectories(work.resolve("src/a/b"));
        Files.write(src.resolve("keep.txt"), "keep".getBytes(StandardCharsets.UTF_8));
        Files.write(src.resolve("skip.log"), "log".getBytes(StandardCharsets.UTF_8));
        Files.createDirectories(work.resolve("src/cache/x"));
        Files.write(work.resolve("src/cache/x/y"), "c".getBytes(StandardCharsets.UTF_8));
        Files.write(work.resolve("src/top.txt"), "top".getBytes(StandardCharsets.UTF_8));
        FileBackup.Result r = backup(work.resolve("src"), null, List.of("*.log", "cache"));
        Path dst = work.resolve("dst");
        restore(r.snapshot(), dst, null, false);
        assertTrue(Files.exists(dst.resolve("a/b/keep.txt")));
        assertFalse(Files.exists(dst.resolve("a/b/skip.log")));
        assertFalse(Files.exists(dst.resolve("cache")));

        // an existing file is not replaced without --overwrite
        Files.write(dst.resolve("top.txt"), "changed".getBytes(StandardCharsets.UTF_8));
        assertThrows(java.nio.file.FileAlreadyExistsException.class, () -> restore(r.snapshot(), dst, null, false));
        assertEquals("changed", Files.readString(dst.resolve("top.txt")));
        restore(r.snapshot(), dst, null, true);
        assertEquals("top", Files.readString(dst.resolve("top.txt")));

        Path one = work.resolve("one");
        restore(r.snapshot(), one, "a/b/keep.txt", false);
        assertEquals("keep", Files.readString(one.resolve("a/b/keep.txt")));
        try (Stream<Path> s = Files.walk(one)) {
            assertEquals(4, s.count()); // one, a, a/b, a/b/keep.txt
        }
        assertThrows(IllegalArgumentException.class, () -> restore(r.snapshot(), work.resolve("two"), "a/nope", false));
    }

    @Test
    void oneFileSystemKeepsMountPointsEmpty() throws Exception {
        Path src = Files.createDirectories(work.resolve("src/mnt"));
        Files.write(work.resolve("src/here"), "here".getBytes(StandardCharsets.UTF_8));
        Assumptions.assumeTrue(Ext4.run("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", src.toString()) == 0,
                "cannot mount a tmpfs");
        try {
            Files.write(src.resolve("elsewhere"), "other fs".getBytes(StandardCharsets.UTF_8));
            FileBackup b = new FileBackup(repo, new FileBackup.Request(work.resolve("src"), "src", null, List.of(),
                    true, Map.of(), 2, null));
            FileBackup.Result one = b.run(ProgressListener.NONE, Clock.systemUTC(), "test");
            FileBackup.Result all = backup(work.resolve("src"), null, List.of());
            restore(one.snapshot(), work.resolve("one"), null, false);
            restore(all.snapshot(), work.resolve("all"), null, false);
            assertTrue(Files.isDirectory(work.resolve("one/mnt")));
            assertFalse(Files.exists(work.resolve("one/mnt/elsewhere")));
            assertEquals("here", Files.readString(work.resolve("one/here")));
            assertEquals("other fs", Files.readString(work.resolve("all/mnt/elsewhere")));
        } finally {
            Ext4.run("umount", src.toString());
        }
    }

    @Test
    void vanishedAndUnreadableFilesAreReportedNotFatal() throws Exception {
        Path src = Files.createDirectories(work.resolve("src"));
        Files.write(src.resolve("ok"), "ok".getBytes(StandardCharsets.UTF_8));
        Files.write(src.resolve("gone"), "gone".getBytes(StandardCharsets.UTF_8));
        Files.write(src.resolve("secret"), "secret".getBytes(StandardCharsets.UTF_8));
        FileBackup b = new FileBackup(repo, new FileBackup.Request(src, src.toString(), null, List.of(), false,
                Map.of(), 2, null));
        Files.write(src.resolve("growing"), "start".getBytes(StandardCharsets.UTF_8));
        b.opener = p -> {
            if (p.getFileName().toString().equals("growing")) { // written to while being read
                FileChannel ch = FileChannel.open(p, StandardOpenOption.READ);
                Files.write(p, "more".getBytes(StandardCharsets.UTF_8), StandardOpenOption.APPEND);
                return ch;
            }
            if (p.getFileName().toString().equals("gone")) {
                Files.delete(p); // deleted between the directory listing and the read
            }
            if (p.getFileName().toString().equals("secret")) {
                throw new AccessDeniedException(p.toString());
            }
            return FileChannel.open(p, StandardOpenOption.READ);
        };
        FileBackup.Result r = b.run(ProgressListener.NONE, Clock.systemUTC(), "test");
        assertTrue(r.partial());
        assertEquals(1, r.errors().size(), r.errors().toString());
        assertTrue(r.errors().get(0).startsWith("secret"), r.errors().toString());
        assertEquals(2, r.warnings().size(), r.warnings().toString());
        assertTrue(r.warnings().get(0).startsWith("gone") && r.warnings().get(0).contains("vanished"),
                r.warnings().toString());
        assertTrue(r.warnings().get(1).startsWith("growing") && r.warnings().get(1).contains("changed while being read"),
                r.warnings().toString());
        Path dst = work.resolve("dst");
        restore(r.snapshot(), dst, null, false);
        assertEquals("ok", Files.readString(dst.resolve("ok")));
        assertFalse(Files.exists(dst.resolve("secret")));
    }

    @Test
    void pruneAfterForgetKeepsFileSnapshotsRestorable() throws Exception {
        Path src = Files.createDirectories(work.resolve("src"));
        Files.write(src.resolve("stays"), random(5, 2 << 20));
        Files.write(src.resolve("goes"), random(6, 3 << 20));
        FileBackup.Result first = backup(src, null, List.of());
        Files.delete(src.resolve("goes"));
        Files.write(src.resolve("later"), random(7, 1 << 20));
        FileBackup.Result second = backup(src, first.snapshot(), List.of());
        new Snapshots(repo).delete(first.snapshot().id());
        long before = repo.store().list("data/").stream().mapToLong(o -> o.size()).sum();
        Pruner.Result p = new Pruner(repo, Clock.systemUTC(), Pruner.DEFAULT_REPACK_SHARE).run("test", false);
        long after = repo.store().list("data/").stream().mapToLong(o -> o.size()).sum();
        assertTrue(p.bytesDeleted() > 0 || p.packsRepacked() > 0, p.toString());
        assertTrue(before - after > (2L << 20), "prune freed only " + (before - after) + " bytes");
        Repository reopened = Repository.open(repo.store(), KEY);
        Verifier.Report v = new Verifier(reopened, m -> { }).verify(true, 2);
        assertTrue(v.ok(), v.errors().toString());
        Path dst = work.resolve("dst");
        new FileRestore(reopened, second.snapshot(), 2, false).run(dst, null, ProgressListener.NONE);
        assertArrayEquals(random(5, 2 << 20), Files.readAllBytes(dst.resolve("stays")));
        assertArrayEquals(random(7, 1 << 20), Files.readAllBytes(dst.resolve("later")));
        assertFalse(Files.exists(dst.resolve("goes")));
    }

    @Test
    void verifyFindsAMissingContentChunk() throws Exception {
        Path src = Files.createDirectories(work.resolve("src"));
        Files.write(src.resolve("f"), random(8, 100_000));
        backup(src, null, List.of());
        ChunkId bogus = ChunkId.parse("ab".repeat(32));
        ChunkId root = new Tree(Tree.VERSION, List.of(new Tree.Node("g", null, Tree.FILE, 0644, 0, 0, 0, null, null,
                null, 10L, List.of(new Tree.Piece(bogus.hex(), 10)), null, null, null, null, null, null)), null)
                .save(repo);
        repo.flush();
        new Snapshots(repo).save(new Snapshot(Snapshot.VERSION, Snapshot.KIND_FILES, "2026-01-01T00:00:00Z", "h",
                "/x", Map.of(), null, null, Map.of(), null, root.hex()));
        Verifier.Report v = new Verifier(repo, m -> { }).verify(false, 2);
        assertFalse(v.ok());
        assertTrue(v.errors().stream().anyMatch(e -> e.contains(bogus.shortHex())), v.errors().toString());
        assertNotEquals(0, v.snapshots());
    }

    /** What a backup or a restore reports to progress. */
    static final class Recorder implements ProgressListener {
        final AtomicLong bytes = new AtomicLong();
        final AtomicLong files = new AtomicLong();
        final List<List<Long>> totals = Collections.synchronizedList(new ArrayList<>());
        final CountDownLatch totalKnown = new CountDownLatch(1);

        @Override
        public void advance(long n) {
            bytes.addAndGet(n);
        }

        @Override
        public void total(long b, long f) {
            totals.add(List.of(b, f));
            totalKnown.countDown();
        }

        @Override
        public void filesDone(long n) {
            files.addAndGet(n);
        }

        List<Long> last() {
            return totals.get(totals.size() - 1);
        }
    }

    /** Chunk ids a files snapshot uses: its trees and its content. */
    private Set<ChunkId> chunksOf(Snapshots.Stored s) throws IOException {
        Set<ChunkId> out = new HashSet<>();
        Tree.forEachChunk(repo::load, s.snapshot().tree(), new HashSet<>(), out::add);
        return out;
    }

    /** Stored bytes and count of the chunks {@code s} uses that {@code before} did not hold, read from the index. */
    private long[] added(Set<ChunkId> before, Snapshots.Stored s) throws IOException {
        long[] sum = new long[2];
        for (ChunkId id : chunksOf(s)) {
            if (!before.contains(id)) {
                sum[0] += repo.lookup(id).orElseThrow().entry().length();
                sum[1]++;
            }
        }
        return sum;
    }

    /**
     * Bytes a restore writes into the files under {@code dir}, found from their content: each file once (hard
     * links), its 4 KiB pages that are not all zero, and one byte for a file that ends in zeros (its length).
     */
    private static long bytesToWrite(Path dir) throws IOException {
        long sum = 0;
        Set<Object> seen = new HashSet<>();
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.filter(f -> Files.isRegularFile(f, LinkOption.NOFOLLOW_LINKS)).toList()) {
                if (!seen.add(Files.getAttribute(p, "unix:ino"))) {
                    continue;
                }
                byte[] b = Files.readAllBytes(p);
                long end = 0;
                for (int off = 0; off < b.length; off += 4096) {
                    int n = Math.min(4096, b.length - off);
                    if (!dev.ferry.block.Zeros.isZero(b, off, n)) {
                        sum += n;
                        end = off + n;
                    }
                }
                sum += end < b.length ? 1 : 0;
            }
        }
        return sum;
    }

    private static long count(Path dir, java.util.function.Predicate<Path> what) throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            return s.filter(p -> !p.equals(dir)).filter(what).count();
        }
    }

    /**
     * Every figure of a backup's and a restore's summary is the true one, and both count alike: checked on a tree
     * whose counts are known by construction, with what summaries are prone to count wrongly (the root, excluded
     * entries, a mount point with one-file-system, an unreadable file, hard links, holes, other entry types).
     */
    @Test
    void summaryFiguresAreTrueAndBackupAndRestoreCountAlike() throws Exception {
        Path src = Files.createDirectories(work.resolve("src"));
        Files.write(src.resolve("a.txt"), random(1, 100));
        Files.write(src.resolve("b.bin"), random(2, 200_000));
        Files.write(src.resolve("c"), new byte[0]);
        Files.write(src.resolve("hard1"), random(3, 5000));
        Path deeper = Files.createDirectories(src.resolve("sub/deeper"));
        Files.createLink(src.resolve("sub/hard2"), src.resolve("hard1"));
        Files.write(deeper.resolve("d.txt"), random(4, 300));
        Files.createDirectories(src.resolve("emptydir"));
        Files.createSymbolicLink(src.resolve("link"), Path.of("a.txt"));
        assertEquals(0, Posix.mknod(src.resolve("fifo"), Posix.S_IFIFO | 0644, 0));
        Files.write(Files.createDirectories(src.resolve("excluded")).resolve("x"), random(5, 999));
        Files.write(src.resolve("skip.log"), random(6, 10));
        Files.write(src.resolve("unreadable"), random(7, 777));
        try (FileChannel ch = FileChannel.open(src.resolve("sparse"), StandardOpenOption.CREATE_NEW,
                StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(random(8, 4096)), 0);
            ch.write(ByteBuffer.wrap(random(9, 4096)), 2 << 20);
        }
        try (var f = new java.io.RandomAccessFile(src.resolve("sparse").toFile(), "rw")) {
            f.setLength(3 << 20); // ends in a hole
        }
        Path mnt = Files.createDirectories(src.resolve("mnt"));
        Assumptions.assumeTrue(Ext4.run("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt.toString()) == 0,
                "cannot mount a tmpfs");
        try {
            Files.write(mnt.resolve("elsewhere"), random(10, 1234));
            // the snapshot holds 7 files (a.txt, b.bin, c, hard1, sub/hard2, sub/deeper/d.txt, sparse) and 4
            // directories (sub, sub/deeper, emptydir, mnt); not the root, excluded/, skip.log, unreadable, mnt/*
            long sizes = 100 + 200_000 + 5000 * 2 + 300 + (3 << 20);
            FileBackup.Opener opener = p -> {
                if (p.getFileName().toString().equals("unreadable")) {
                    throw new AccessDeniedException(p.toString());
                }
                return FileChannel.open(p, StandardOpenOption.READ);
            };
            List<String> excludes = List.of("excluded", "*.log");
            FileBackup b = new FileBackup(repo, new FileBackup.Request(src, "src", null, excludes, true, Map.of(), 2,
                    null));
            b.opener = opener;
            Recorder progress = new Recorder();
            FileBackup.Result full = b.run(progress, Clock.systemUTC(), "test");
            repo.flush();
            assertEquals(1, full.errors().size(), full.errors().toString());
            assertEquals(List.of(7L, 0L, 0L, 4L), List.of(full.filesNew(), full.filesChanged(), full.filesUnchanged(),
                    full.dirs()));
            assertEquals(sizes, full.bytesTotal());
            assertEquals(100 + 200_000 + 5000 + 300 + (3 << 20), full.bytesRead()); // each inode read once
            long[] fullAdded = added(Set.of(), full.snapshot());
            assertEquals(fullAdded[0], full.bytesNew());
            assertEquals(fullAdded[1], full.chunksNew());
            Map<String, Object> summary = full.snapshot().snapshot().summary();
            assertEquals(List.of(sizes, 7L, 4L), List.of(((Number) summary.get("bytes_total")).longValue(),
                    ((Number) summary.get("files_new")).longValue(), ((Number) summary.get("dirs")).longValue()));
            // progress: the scan's total counts what the backup tries to read, the unreadable file too
            assertEquals(List.of(List.of(sizes + 777, 8L)), progress.totals);
            assertEquals(sizes, progress.bytes.get());
            assertEquals(8, progress.files.get());

            Files.write(src.resolve("a.txt"), random(11, 150));
            Files.write(src.resolve("new.txt"), random(12, 50));
            FileBackup ib = new FileBackup(repo, new FileBackup.Request(src, "src", full.snapshot(), excludes, true,
                    Map.of(), 2, null));
            ib.opener = opener;
            Recorder incProgress = new Recorder();
            FileBackup.Result inc = ib.run(incProgress, Clock.systemUTC(), "test");
            repo.flush();
            long incSizes = sizes - 100 + 150 + 50;
            assertEquals(List.of(1L, 1L, 6L, 4L), List.of(inc.filesNew(), inc.filesChanged(), inc.filesUnchanged(),
                    inc.dirs()));
            assertEquals(incSizes, inc.bytesTotal());
            assertEquals(150 + 50, inc.bytesRead());
            long[] incAdded = added(chunksOf(full.snapshot()), inc.snapshot());
            assertEquals(incAdded[0], inc.bytesNew());
            assertEquals(incAdded[1], inc.chunksNew());
            // an incremental's total is the parent's figures (no scan)
            assertEquals(List.of(List.of(sizes, 7L)), incProgress.totals);
            assertEquals(incSizes, incProgress.bytes.get());

            Path dst = work.resolve("dst");
            Recorder restoreProgress = new Recorder();
            FileRestore.Result r = new FileRestore(repo, inc.snapshot(), 2, false).run(dst, null, restoreProgress);
            assertEquals(inc.filesNew() + inc.filesChanged() + inc.filesUnchanged(), r.files());
            assertEquals(inc.dirs(), r.dirs());
            assertEquals(inc.bytesTotal(), r.bytesTotal());
            // the same figures counted on the restored tree, without Ferry
            assertEquals(r.files(), count(dst, p -> Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)));
            assertEquals(r.dirs(), count(dst, p -> Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)));
            long written = bytesToWrite(dst);
            assertEquals(150 + 200_000 + 5000 + 300 + 50 + 4096 * 2 + 1, written);
            assertEquals(written, r.bytesWritten());
            assertEquals(List.of(List.of(r.bytesTotal(), r.files())), restoreProgress.totals);
            assertEquals(r.bytesTotal(), restoreProgress.bytes.get());
            assertEquals(r.files(), restoreProgress.files.get());

            // a part of the snapshot: its total comes from the trees below the path
            Recorder partProgress = new Recorder();
            FileRestore.Result part = new FileRestore(repo, inc.snapshot(), 2, false).run(work.resolve("part"), "sub",
                    partProgress);
            assertEquals(List.of(2L, 2L, 5300L), List.of(part.files(), part.dirs(), part.bytesTotal()));
            assertEquals(List.of(List.of(5300L, 2L)), partProgress.totals);
            assertEquals(5300L, partProgress.bytes.get());
        } finally {
            Ext4.run("umount", mnt.toString());
        }
    }

    /** The scan runs beside the backup: the total is known while files are still being read. */
    @Test
    void progressTotalArrivesWhileTheBackupReads() throws Exception {
        Path src = Files.createDirectories(work.resolve("src"));
        long bytes = 0;
        for (int i = 0; i < 40; i++) {
            Path d = Files.createDirectories(src.resolve("d" + i % 4));
            Files.write(d.resolve("f" + i), random(i, 1000 + i));
            bytes += 1000 + i;
        }
        Recorder progress = new Recorder();
        java.util.concurrent.atomic.AtomicBoolean knownDuringRead = new java.util.concurrent.atomic.AtomicBoolean();
        FileBackup b = new FileBackup(repo, new FileBackup.Request(src, "src", null, List.of(), false, Map.of(), 1,
                null));
        java.util.concurrent.atomic.AtomicBoolean first = new java.util.concurrent.atomic.AtomicBoolean(true);
        b.opener = p -> {
            try { // the first file read waits for the total (only it: a backup without a scan fails in 30 s)
                if (first.getAndSet(false) && progress.totalKnown.await(30, TimeUnit.SECONDS)) {
                    knownDuringRead.set(true);
                }
            } catch (InterruptedException e) {
                throw new java.io.InterruptedIOException();
            }
            return FileChannel.open(p, StandardOpenOption.READ);
        };
        FileBackup.Result r = b.run(progress, Clock.systemUTC(), "test");
        assertTrue(knownDuringRead.get(), "no total while the backup was reading");
        assertEquals(List.of(List.of(bytes, 40L)), progress.totals);
        assertEquals(bytes, r.bytesTotal());
        assertEquals(bytes, progress.bytes.get());
        assertEquals(40, progress.files.get());
    }

    /**
     * A volume image backed up by a block backup and then, inside a directory, by a files backup is stored once:
     * a large file whose size is a multiple of 4 KiB is cut into the 1 MiB blocks of a block backup, and both
     * leave all-zero blocks out.
     */
    @Test
    void largeImageFileDeduplicatesWithABlockBackupOfIt() throws Exception {
        Path src = Files.createDirectories(work.resolve("src"));
        Path img = src.resolve("disk.img");
        long size = (64L << 20) + 12288; // a multiple of 4 KiB, not of 1 MiB: the last block is short
        try (FileChannel ch = FileChannel.open(img, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(random(21, 6 << 20)), 0); // blocks 0-5
            ch.write(ByteBuffer.wrap(new byte[2 << 20]), 6L << 20); // zeros written: blocks 6-7; a hole to 60
            ch.write(ByteBuffer.wrap(random(22, (4 << 20) + 12288)), 60L << 20); // blocks 60-64
        }
        assertEquals(size, Files.size(img));
        Files.write(src.resolve("notes.txt"), "small".getBytes(StandardCharsets.UTF_8));
        dev.ferry.block.BlockBackup.Result blocks;
        try (dev.ferry.block.FileVolume v = dev.ferry.block.FileVolume.openForReading(img)) {
            blocks = new dev.ferry.block.BlockBackup(repo, new dev.ferry.block.BlockBackup.Request(v, img.toString(),
                    null, null, null, Map.of(), null, 2, null)).run(ProgressListener.NONE, Clock.systemUTC(), "test");
        }
        repo.flush();
        assertTrue(blocks.bytesNew() > (10L << 20), "block backup stored " + blocks.bytesNew());

        FileBackup.Result files = backup(src, null, List.of());
        // new: the small file and the root tree; every block of the image was stored by the block backup
        assertEquals(2, files.chunksNew());
        assertTrue(files.bytesNew() < (64 << 10), "stored " + files.bytesNew());
        Tree root = Tree.load(repo, ChunkId.parse(files.snapshot().snapshot().tree()));
        Tree.Node node = root.nodes().stream().filter(n -> "disk.img".equals(n.name())).findFirst().orElseThrow();
        List<String> perBlock = new ArrayList<>();
        for (Tree.Piece piece : node.content()) {
            if (piece.hole()) {
                assertEquals(0, piece.size() % (1 << 20), "a hole of whole blocks");
                for (long i = 0; i < piece.size() >> 20; i++) {
                    perBlock.add(null);
                }
            } else {
                assertTrue(piece.size() == 1 << 20 || perBlock.size() == 64 && piece.size() == 12288, "" + piece);
                perBlock.add(piece.id());
            }
        }
        Snapshot.Volume vol = blocks.snapshot().snapshot().volume();
        dev.ferry.block.ManifestPage page = dev.ferry.block.ManifestPage.load(repo, ChunkId.parse(vol.pages().get(0)),
                65);
        List<String> manifest = new ArrayList<>();
        for (int i = 0; i < page.count(); i++) {
            manifest.add(page.isZero(i) ? null : page.get(i).hex());
        }
        assertEquals(manifest, perBlock);
        assertEquals(54, manifest.stream().filter(java.util.Objects::isNull).count()); // blocks 6-59
        Path dst = work.resolve("dst");
        restore(files.snapshot(), dst, null, false);
        assertEquals(dev.ferry.crypto.Hashes.sha256Hex(Files.readAllBytes(img)),
                dev.ferry.crypto.Hashes.sha256Hex(Files.readAllBytes(dst.resolve("disk.img"))));
    }
}
