package dev.ferry.zfs;

import java.nio.file.Path;
import java.util.OptionalLong;
import jnr.constants.platform.OpenFlags;
import jnr.ffi.LibraryLoader;
import jnr.ffi.annotations.Out;
import jnr.ffi.types.u_int64_t;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A file's inode generation, read with the {@code FS_IOC_GETVERSION} ioctl. OpenZFS on Linux answers with the
 * low 32 bits of the znode's generation (the transaction group that created the file), whatever the znode
 * layout (legacy or system attributes): a file deleted and made again under the same object number has a new
 * generation. File systems without the ioctl (zfs-fuse among them) give no answer, never a guess.
 */
final class InodeGeneration {
    private static final Logger log = LoggerFactory.getLogger(InodeGeneration.class);
    /** {@code _IOR('v', 1, long)} on 64-bit Linux. */
    private static final long FS_IOC_GETVERSION = 0x80087601L;
    /** Linux on an architecture whose ioctl numbers use the generic encoding that value is made with. */
    private static final boolean SUPPORTED = "Linux".equals(System.getProperty("os.name"))
            && java.util.Set.of("amd64", "x86_64", "aarch64", "riscv64").contains(System.getProperty("os.arch"));

    /** The libc calls used; loaded once, on first use. */
    public interface LibC {
        int open(String path, int flags);

        int ioctl(int fd, @u_int64_t long request, @Out int[] arg);

        int close(int fd);
    }

    private static volatile LibC libc;
    private static volatile boolean unavailable;

    private InodeGeneration() {
    }

    /** The generation of the regular file {@code path}, or empty where the file system does not say. */
    static OptionalLong of(Path path) {
        LibC c = SUPPORTED ? libc() : null;
        if (c == null) {
            return OptionalLong.empty();
        }
        int fd = c.open(path.toString(), OpenFlags.O_RDONLY.intValue() | OpenFlags.O_NOFOLLOW.intValue()
                | OpenFlags.O_CLOEXEC.intValue());
        if (fd < 0) {
            return OptionalLong.empty();
        }
        try {
            int[] out = new int[2]; // the kernel writes 4 bytes (an int) though the request is declared for a long
            if (c.ioctl(fd, FS_IOC_GETVERSION, out) != 0) {
                return OptionalLong.empty();
            }
            return OptionalLong.of(Integer.toUnsignedLong(out[0]));
        } finally {
            c.close(fd);
        }
    }

    private static LibC libc() {
        if (libc == null && !unavailable) {
            synchronized (InodeGeneration.class) {
                if (libc == null && !unavailable) {
                    try {
                        libc = LibraryLoader.create(LibC.class).load("c");
                    } catch (RuntimeException | LinkageError e) {
                        log.debug("libc not loadable: {}; file generations are unknown", e.getMessage());
                        unavailable = true;
                    }
                }
            }
        }
        return libc;
    }
}
