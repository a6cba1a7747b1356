package dev.ferry.block;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * A node-local lock on one engine volume, held for the whole of a backup through the engine: two backups of
 * one volume at a time would each take a snapshot and could delete the other's while it is being read. The
 * lock is an exclusive POSIX record lock (fcntl) on a file in {@link #directory()}; the operating system drops
 * it when the process ends, however it ends, so a killed backup leaves no stale lock.
 */
public final class VolumeLock implements AutoCloseable {
    /** Environment variable naming the directory of the lock files. */
    public static final String DIRECTORY_ENV = "FERRY_LOCK_DIR";

    private final FileChannel channel;
    private final FileLock lock;

    private VolumeLock(FileChannel channel, FileLock lock) {
        this.channel = channel;
        this.lock = lock;
    }

    /**
     * Takes the lock of {@code engine}'s {@code volume}, or fails at once if another process (or another job of
     * this one) holds it, naming the holder's process id.
     */
    public static VolumeLock acquire(String engine, String volume) throws IOException {
        Path dir = directory();
        Files.createDirectories(dir);
        Path file = dir.resolve(engine + "-" + digest(engine + "\0" + volume) + ".lock");
        FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ,
                StandardOpenOption.WRITE);
        FileLock l;
        try {
            l = ch.tryLock();
        } catch (OverlappingFileLockException e) {
            l = null;
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
        if (l == null) {
            String holder = holder(ch);
            ch.close();
            throw new IOException("another backup of " + engine + " volume " + volume + " is running on this node"
                    + (holder.isEmpty() ? "" : " (" + holder + ")") + "; try again when it has finished (lock file "
                    + file + ")");
        }
        try {
            ch.truncate(0);
            ch.write(ByteBuffer.wrap(("pid " + ProcessHandle.current().pid() + ", " + volume + "\n")
                    .getBytes(StandardCharsets.UTF_8)), 0);
        } catch (IOException e) {
            l.release();
            ch.close();
            throw e;
        }
        return new VolumeLock(ch, l);
    }

    /** {@code $FERRY_LOCK_DIR}, else {@code /run/lock/ferry} where {@code /run/lock} is writable, else a temp dir. */
    public static Path directory() {
        String env = System.getenv(DIRECTORY_ENV);
        if (env != null && !env.isBlank()) {
            return Path.of(env);
        }
        Path run = Path.of("/run/lock");
        if (Files.isDirectory(run) && Files.isWritable(run)) {
            return run.resolve("ferry");
        }
        return Path.of(System.getProperty("java.io.tmpdir"), "ferry-locks-" + System.getProperty("user.name", "user"));
    }

    private static String holder(FileChannel ch) {
        try {
            ByteBuffer b = ByteBuffer.allocate(512);
            int n = ch.read(b, 0);
            return n <= 0 ? "" : new String(b.array(), 0, n, StandardCharsets.UTF_8).lines().findFirst().orElse("");
        } catch (IOException e) {
            return "";
        }
    }

    private static String digest(String s) {
        try {
            byte[] d = MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(d, 0, 12);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public void close() throws IOException {
        try {
            lock.release();
        } finally {
            channel.close();
        }
    }
}
