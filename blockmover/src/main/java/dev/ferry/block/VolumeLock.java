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
import java.util.HashMap;
import java.util.HexFormat;
import java.util.Map;

/**
 * A node-local lock on one engine volume, held for the whole of a backup through the engine: two backups of
 * one volume at a time would each take a snapshot and could delete the other's while it is being read. The
 * lock is an exclusive POSIX record lock (fcntl) on a file in {@link #directory()}; the operating system drops
 * it when the process ends, however it ends, so a killed backup leaves no stale lock.
 *
 * <p>Record locks belong to the process, not to a descriptor: closing any descriptor of the lock file drops
 * every lock the process holds on it. So a second attempt within the process must never open the file; it is
 * refused from {@link #HELD}, the process's own list of held volume locks, naming the holder, and the first
 * holder's lock stays.
 */
public final class VolumeLock implements AutoCloseable {
    /** Environment variable naming the directory of the lock files. */
    public static final String DIRECTORY_ENV = "FERRY_LOCK_DIR";

    /**
     * The lock files this process holds a lock on, by absolute path, with their holder's description. It is
     * static on purpose, the one piece of mutable static state here: the record locks it guards are themselves
     * per process (whatever object opened them), so any registry that two parts of one process could each own
     * would let one of them close a descriptor and drop the other's lock. Guarded by itself; entries are
     * removed when a lock is closed, so it holds at most one entry per volume being locked.
     */
    private static final Map<Path, String> HELD = new HashMap<>();

    private final FileChannel channel;
    private final FileLock lock;
    private final Path file;
    private boolean closed; // guarded by this

    private VolumeLock(FileChannel channel, FileLock lock, Path file) {
        this.channel = channel;
        this.lock = lock;
        this.file = file;
    }

    /**
     * Takes the lock of {@code engine}'s {@code volume}, or fails at once if another process (or another job of
     * this one) holds it, naming the holder's process id.
     */
    public static VolumeLock acquire(String engine, String volume) throws IOException {
        return acquire(engine, volume, "a backup");
    }

    /**
     * Takes the lock of {@code engine}'s {@code volume} for {@code holder} (what holds it, in words: "backup job
     * 42"), or fails at once if another process or another holder in this process holds it, naming that holder.
     * A refusal within this process leaves the holder's lock untouched.
     */
    public static VolumeLock acquire(String engine, String volume, String holder) throws IOException {
        Path dir = directory();
        Files.createDirectories(dir);
        Path file = dir.resolve(engine + "-" + digest(engine + "\0" + volume) + ".lock").toAbsolutePath().normalize();
        String self = holder + " (pid " + ProcessHandle.current().pid() + ")";
        synchronized (HELD) {
            String other = HELD.putIfAbsent(file, self);
            if (other != null) {
                throw new IOException("another backup of " + engine + " volume " + volume + " is running on this node"
                        + " (" + other + ", in this process); try again when it has finished (lock file " + file
                        + ")");
            }
        }
        try {
            return lockFile(engine, volume, file, self);
        } catch (IOException | RuntimeException | Error e) {
            synchronized (HELD) {
                HELD.remove(file);
            }
            throw e;
        }
    }

    private static VolumeLock lockFile(String engine, String volume, Path file, String self) throws IOException {
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
            ch.write(ByteBuffer.wrap(("pid " + ProcessHandle.current().pid() + ", " + self + ", " + volume + "\n")
                    .getBytes(StandardCharsets.UTF_8)), 0);
        } catch (IOException e) {
            l.release();
            ch.close();
            throw e;
        }
        return new VolumeLock(ch, l, file);
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
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
        }
        try {
            lock.release();
        } finally {
            try {
                channel.close();
            } finally {
                synchronized (HELD) { // only now may another holder in this process open the file
                    HELD.remove(file);
                }
            }
        }
    }
}
