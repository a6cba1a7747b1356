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

    /** Whether a file or directory may have extended attributes: llistxattr(2) by path says how many bytes of
     * names it has, without opening the file as java.nio does. True when unsure. */
    static boolean mayHaveXattrs(Path p) {
        String t = textOrNull(p);
        if (t == null) {
            return true;
        }
        try {
            return libc().llistxattr(t, null, 0) != 0;
        } catch (RuntimeException | LinkageError e) {
            return true;
        }
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

        void sync();

        long llistxattr(String path, byte[] list, long size);
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

    /** sync(2): every file system's dirty data reaches its disk (Linux waits for it). */
    static void sync() {
        libc().sync();
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
