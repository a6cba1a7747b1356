package dev.ferry.files;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import jnr.posix.POSIX;
import jnr.posix.POSIXFactory;

/**
 * The few calls java.nio lacks, through jnr-posix: making FIFOs and device nodes, and setting a symlink's
 * own times with nanoseconds. Paths whose names are not valid UTF-8 cannot be passed as text; those calls fail
 * and are reported by the caller.
 */
final class Posix {
    static final int S_IFMT = 0170000;
    static final int S_IFSOCK = 0140000;
    static final int S_IFLNK = 0120000;
    static final int S_IFREG = 0100000;
    static final int S_IFBLK = 0060000;
    static final int S_IFDIR = 0040000;
    static final int S_IFCHR = 0020000;
    static final int S_IFIFO = 0010000;
    private static final int AT_FDCWD = -100;
    private static final int AT_SYMLINK_NOFOLLOW = 0x100;
    private static final long UTIME_OMIT = (1L << 30) - 2;

    private static volatile POSIX posix;

    private Posix() {
    }

    private static POSIX posix() {
        POSIX p = posix;
        if (p == null) {
            synchronized (Posix.class) {
                if (posix == null) {
                    posix = POSIXFactory.getNativePOSIX();
                }
                p = posix;
            }
        }
        return p;
    }

    /** The path as text when its bytes are valid UTF-8 (jnr passes text), else null. */
    static String textOrNull(Path p) {
        byte[] b = RawNames.bytes(p);
        String s = new String(b, StandardCharsets.UTF_8);
        return java.util.Arrays.equals(s.getBytes(StandardCharsets.UTF_8), b) && s.indexOf('\uFFFD') < 0 ? s : null;
    }

    /** lchown(2), chmod(2) (skipped for symlinks, whose mode Linux ignores) and utimensat(2) without following
     * a final symlink, all by path: java.nio would open every file twice more. Returns 0 or the first errno. */
    static int setMeta(String path, boolean symlink, int uid, int gid, int mode, long mtimeNs) {
        POSIX x = posix();
        if (x.lchown(path, uid, gid) != 0) {
            return x.errno();
        }
        if (!symlink && x.chmod(path, mode) != 0) {
            return x.errno();
        }
        long[] atime = {0, UTIME_OMIT};
        long[] mtime = {Math.floorDiv(mtimeNs, 1_000_000_000L), Math.floorMod(mtimeNs, 1_000_000_000L)};
        if (x.utimensat(AT_FDCWD, path, atime, mtime, AT_SYMLINK_NOFOLLOW) != 0) {
            return x.errno();
        }
        return 0;
    }

    private static final int ERANGE = 34;

    /**
     * Every extended attribute of {@code p} the kernel lists to this process, in any namespace ({@code user.},
     * {@code trusted.}, {@code security.}, {@code system.posix_acl_*}), without following a final symlink and
     * without opening the file: full name to value. Null when there are none, the file system has none or the
     * file went away. Names that are not valid UTF-8 are left out.
     */
    static java.util.Map<String, byte[]> xattrs(Path p) {
        byte[] path = cPath(p);
        LibC c = libc();
        byte[] list = null;
        for (int attempt = 0; attempt < 5 && list == null; attempt++) { // ERANGE: a name was added meanwhile
            long size = c.llistxattr(path, null, 0);
            if (size <= 0) {
                return null;
            }
            byte[] buf = new byte[(int) size];
            long got = c.llistxattr(path, buf, size);
            if (got >= 0) {
                list = java.util.Arrays.copyOf(buf, (int) got);
            } else if (errno(c) != ERANGE) {
                return null;
            }
        }
        if (list == null) {
            return null;
        }
        java.util.Map<String, byte[]> out = new java.util.TreeMap<>();
        int start = 0;
        for (int i = 0; i < list.length; i++) {
            if (list[i] != 0) {
                continue;
            }
            byte[] name = java.util.Arrays.copyOfRange(list, start, i + 1); // with its NUL
            start = i + 1;
            String text = new String(name, 0, name.length - 1, StandardCharsets.UTF_8);
            if (name.length == 1 || !java.util.Arrays.equals(text.getBytes(StandardCharsets.UTF_8),
                    java.util.Arrays.copyOf(name, name.length - 1))) {
                continue;
            }
            byte[] value = xattr(c, path, name);
            if (value != null) {
                out.put(text, value);
            }
        }
        return out.isEmpty() ? null : out;
    }

    private static byte[] xattr(LibC c, byte[] path, byte[] name) {
        for (int attempt = 0; attempt < 5; attempt++) {
            long size = c.lgetxattr(path, name, null, 0);
            if (size < 0) {
                return null; // removed meanwhile
            }
            byte[] v = new byte[(int) size];
            long got = c.lgetxattr(path, name, v, size);
            if (got >= 0) {
                return got == size ? v : java.util.Arrays.copyOf(v, (int) got);
            }
            if (errno(c) != ERANGE) {
                return null;
            }
        }
        return null;
    }

    /** lsetxattr(2): sets extended attribute {@code name} of {@code p} (not following a symlink); 0 or an errno. */
    static int setXattr(Path p, String name, byte[] value) {
        LibC c = libc();
        return c.lsetxattr(cPath(p), cString(name.getBytes(StandardCharsets.UTF_8)), value, value.length, 0) == 0
                ? 0 : errno(c);
    }

    /** The path's bytes with a terminating NUL: names that are not UTF-8 pass unchanged. */
    private static byte[] cPath(Path p) {
        return cString(RawNames.bytes(p));
    }

    /** Bytes with a terminating NUL, as C takes a string. */
    private static byte[] cString(byte[] b) {
        return java.util.Arrays.copyOf(b, b.length + 1);
    }

    /** An errno as its name and text, e.g. {@code EPERM (Operation not permitted)}. */
    static String errnoText(int errno) {
        jnr.constants.platform.Errno e = jnr.constants.platform.Errno.valueOf(errno);
        return e == null || !e.defined() ? "errno " + errno : e.name() + " (" + e.description() + ")";
    }

    private static int errno(LibC c) {
        return jnr.ffi.LastError.getLastError(jnr.ffi.Runtime.getRuntime(c));
    }

    private static String text(Path p) {
        byte[] b = RawNames.bytes(p);
        String s = new String(b, StandardCharsets.UTF_8);
        if (!java.util.Arrays.equals(s.getBytes(StandardCharsets.UTF_8), b)) {
            throw new UnsupportedOperationException("path is not valid UTF-8: " + p);
        }
        return s;
    }

    /** The C library's mknod, which jnr-posix does not wrap. */
    public interface LibC {
        int mknod(String path, int mode, long dev);

        int syncfs(int fd);

        int open(byte[] path, int flags, int mode);

        int close(int fd);

        long llistxattr(byte[] path, byte[] list, long size);

        long lgetxattr(byte[] path, byte[] name, byte[] value, long size);

        int lsetxattr(byte[] path, byte[] name, byte[] value, long size, int flags);
    }

    private static volatile LibC libc;

    /** mknod(2) for a FIFO, character or block device; returns 0 or an errno. */
    static int mknod(Path p, int mode, long rdev) {
        if ((mode & S_IFMT) == S_IFIFO) {
            int r = posix().mkfifo(text(p), mode & 07777);
            return r == 0 ? 0 : posix().errno();
        }
        int r = libc().mknod(text(p), mode, rdev);
        return r == 0 ? 0 : posix().errno();
    }

    /**
     * Loads the native bindings on a daemon thread: jnr-posix and jnr-ffi take a few hundred milliseconds to
     * start (a native library, generated classes), which can overlap with opening the repository.
     */
    static void warmUp() {
        Thread t = new Thread(() -> {
            try {
                libc();
                posix();
            } catch (RuntimeException | LinkageError e) {
                // the first real call meets the same problem and reports it
            }
        }, "ferry-posix-warm-up");
        t.setDaemon(true);
        t.start();
    }

    private static synchronized LibC libcSlow() {
        if (libc == null) {
            libc = jnr.ffi.LibraryLoader.create(LibC.class).load("c");
        }
        return libc;
    }

    private static LibC libc() {
        LibC c = libc;
        return c != null ? c : libcSlow();
    }

    private static final int O_RDONLY = 0;
    private static final int O_CLOEXEC = 02000000; // the same on every Linux architecture Ferry runs on

    /**
     * syncfs(2) on the file system holding {@code dir}: that file system's dirty data reaches its disk (Linux waits
     * for it), and no other's, unlike sync(2), which flushes every file system of the node.
     */
    static void syncfs(Path dir) throws java.io.IOException {
        LibC c = libc();
        int fd = c.open(cPath(dir), O_RDONLY | O_CLOEXEC, 0);
        if (fd < 0) {
            throw new java.io.IOException("cannot open " + dir + " to flush its file system: " + errnoText(errno(c)));
        }
        try {
            if (c.syncfs(fd) != 0) {
                throw new java.io.IOException("syncfs of the file system of " + dir + " failed: "
                        + errnoText(errno(c)));
            }
        } finally {
            c.close(fd);
        }
    }

    /** chmod(2) by path (for FIFOs and devices, which must not be opened); returns 0 or an errno. */
    static int chmod(Path p, int mode) {
        int r = posix().chmod(text(p), mode);
        return r == 0 ? 0 : posix().errno();
    }

    /** utimensat(2) without following a final symlink: sets only the modification time. */
    static int lutimens(Path p, long mtimeNs) {
        long[] atime = {0, UTIME_OMIT};
        long[] mtime = {Math.floorDiv(mtimeNs, 1_000_000_000L), Math.floorMod(mtimeNs, 1_000_000_000L)};
        int r = posix().utimensat(AT_FDCWD, text(p), atime, mtime, AT_SYMLINK_NOFOLLOW);
        return r == 0 ? 0 : posix().errno();
    }
}
