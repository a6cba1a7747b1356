package dev.ferry.block;

import dev.ferry.engine.VolumeWriter;
import dev.ferry.util.Threads;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.EnumSet;
import java.util.Set;

/**
 * A volume in a regular file or a block device, read and written with positional NIO calls (no shared file
 * position, so any number of threads may use it at once).
 */
public final class FileVolume implements VolumeWriter {
    private static final int ZERO_BYTES = 1 << 20;
    /**
     * Written bytes after which a background flush starts, so the disk writes while the restore goes on instead
     * of all at the final sync (the kernel would otherwise hold gigabytes of dirty pages until then).
     */
    static final long WRITEBACK_BYTES = 64L << 20;
    private static final byte[] ZEROS = new byte[ZERO_BYTES];

    private final Path path;
    private final FileChannel channel;
    private final long size;
    private final boolean device;
    private final boolean knownZero;
    private final java.util.concurrent.atomic.AtomicLong dirty = new java.util.concurrent.atomic.AtomicLong();
    private final java.util.concurrent.atomic.AtomicBoolean flushing = new java.util.concurrent.atomic.AtomicBoolean();
    private volatile Thread flusher;
    private volatile IOException flushFailure;

    private FileVolume(Path path, FileChannel channel, long size, boolean device, boolean knownZero) {
        this.path = path;
        this.channel = channel;
        this.size = size;
        this.device = device;
        this.knownZero = knownZero;
    }

    /** Opens a file or block device for reading. */
    public static FileVolume openForReading(Path path) throws IOException {
        if (!Files.exists(path)) {
            throw new NoSuchFileException(path.toString(), null, "no such file or device");
        }
        if (Files.isDirectory(path)) {
            throw new IOException(path + " is a directory; a block backup reads a file or a block device");
        }
        // before open(): opening a FIFO for reading would wait for a writer forever
        boolean device = checkType(path, "a block backup reads");
        FileChannel ch = FileChannel.open(path, StandardOpenOption.READ);
        try {
            return new FileVolume(path, ch, device ? deviceSize(path, ch) : ch.size(), device, false);
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
    }

    /**
     * Opens a restore target of {@code size} bytes. A regular file that does not exist, or is {@code truncate}d,
     * becomes a sparse file of that size that is known to read as zeros; an existing file is resized to
     * {@code size}; a block device must be at least that large.
     */
    public static FileVolume openForWriting(Path path, long size, boolean truncate) throws IOException {
        if (Files.isDirectory(path)) {
            throw new IOException(path + " is a directory; a block restore writes a file or a block device");
        }
        boolean exists = Files.exists(path);
        boolean device = exists && checkType(path, "a block restore writes");
        Set<StandardOpenOption> opts = EnumSet.of(StandardOpenOption.READ, StandardOpenOption.WRITE);
        if (!device) {
            opts.add(StandardOpenOption.CREATE);
        }
        FileChannel ch = FileChannel.open(path, opts);
        try {
            if (device) {
                long devSize = deviceSize(path, ch);
                if (devSize < size) {
                    throw new IOException(path + " is a device of " + devSize + " bytes, smaller than the volume ("
                            + size + " bytes)");
                }
                return new FileVolume(path, ch, size, true, false);
            }
            boolean fresh = !exists || truncate || ch.size() == 0;
            if (truncate) {
                ch.truncate(0);
            }
            if (ch.size() > size) {
                ch.truncate(size);
            } else if (ch.size() < size) {
                // extend without writing data: the file stays sparse
                try {
                    ch.write(ByteBuffer.wrap(new byte[1]), size - 1);
                } catch (IOException e) {
                    throw new IOException("cannot extend " + path + " to " + size + " bytes: " + e.getMessage(), e);
                }
            }
            return new FileVolume(path, ch, size, false, fresh);
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
    }

    private static final int S_IFMT = 0170000;
    private static final int S_IFREG = 0100000;
    private static final int S_IFBLK = 0060000;

    /**
     * Whether {@code path} (links followed) is a block device; refuses everything but a regular file or a block
     * device (a FIFO, a socket, a character device) with an error that names the path and its type.
     */
    static boolean checkType(Path path, String purpose) throws IOException {
        int mode;
        try {
            mode = (Integer) Files.getAttribute(path, "unix:mode");
        } catch (UnsupportedOperationException | IllegalArgumentException e) {
            return !Files.isRegularFile(path); // no unix view: trust the open to fail where it must
        }
        int type = mode & S_IFMT;
        if (type == S_IFREG) {
            return false;
        }
        if (type == S_IFBLK) {
            return true;
        }
        String what = switch (type) {
            case 0010000 -> "a FIFO (named pipe)";
            case 0020000 -> "a character device";
            case 0140000 -> "a socket";
            case 0040000 -> "a directory";
            default -> "of file type 0" + Integer.toOctalString(type);
        };
        throw new IOException(path + " is " + what + "; " + purpose + " only a regular file or a block device");
    }

    /** Size of a block device, from sysfs, else by seeking its channel to the end. */
    static long deviceSize(Path dev, FileChannel ch) throws IOException {
        Path real = dev.toRealPath();
        Path sys = Path.of("/sys/class/block", real.getFileName().toString(), "size");
        if (Files.isReadable(sys)) {
            return Long.parseLong(Files.readString(sys).strip()) * 512;
        }
        long s = ch.size();
        if (s > 0) {
            return s;
        }
        throw new IOException("cannot tell the size of " + dev + " (not a regular file, no " + sys + ")");
    }

    public Path path() {
        return path;
    }

    public boolean isDevice() {
        return device;
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public boolean knownZero() {
        return knownZero;
    }

    @Override
    public int read(long offset, byte[] buf, int off, int len) throws IOException {
        int want = (int) Math.min(len, Math.max(0, size - offset));
        ByteBuffer b = ByteBuffer.wrap(buf, off, want);
        while (b.hasRemaining()) {
            int n = channel.read(b, offset + b.position() - off);
            if (n < 0) {
                throw new EOFException(path + " ended at " + (offset + b.position() - off) + " bytes, before its "
                        + "expected size of " + size + " (did it shrink while being read?)");
            }
        }
        return want;
    }

    @Override
    public void write(long offset, byte[] buf, int off, int len) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(buf, off, len);
        try {
            while (b.hasRemaining()) {
                channel.write(b, offset + b.position() - off);
            }
        } catch (java.nio.channels.ClosedChannelException e) {
            throw e;
        } catch (IOException e) {
            // "No space left on device" alone names nothing: say which target, and where
            throw new IOException("cannot write " + path + " at offset " + (offset + b.position() - off) + ": "
                    + e.getMessage(), e);
        }
        if (dirty.addAndGet(len) >= WRITEBACK_BYTES && flushing.compareAndSet(false, true)) {
            dirty.set(0);
            Thread t = Threads.daemon("ferry-writeback").newThread(() -> {
                try {
                    channel.force(false);
                } catch (IOException e) {
                    flushFailure = e;
                } finally {
                    flushing.set(false);
                }
            });
            flusher = t;
            t.start();
        }
    }

    @Override
    public void zero(long offset, int len) throws IOException {
        // portable: write zeros (Java has no hole punching); a sparse new file never gets here
        for (int done = 0; done < len; done += ZERO_BYTES) {
            write(offset + done, ZEROS, 0, Math.min(ZERO_BYTES, len - done));
        }
    }

    @Override
    public void sync() throws IOException {
        Thread t = flusher;
        if (t != null) {
            try {
                t.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new java.io.InterruptedIOException("interrupted while syncing " + path);
            }
        }
        if (flushFailure != null) {
            throw new IOException("writing " + path + " failed: " + flushFailure.getMessage(), flushFailure);
        }
        try {
            channel.force(true);
        } catch (IOException e) {
            throw new IOException("cannot sync " + path + " to disk: " + e.getMessage(), e);
        }
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
