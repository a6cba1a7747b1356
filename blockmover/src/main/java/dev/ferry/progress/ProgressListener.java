package dev.ferry.progress;

/**
 * Receives progress from a long operation (a backup, a restore, a verify, a prune). Called from worker threads, so
 * implementations must be thread-safe and cheap.
 *
 * <p>An operation in several steps (prune: listing, reading snapshots, repacking, deleting) announces each with
 * {@link #phase}; {@link #advance} then counts toward that phase's total, in bytes or in items (packs,
 * snapshots). An operation of one step (a backup) never calls {@code phase} and counts bytes.
 */
@FunctionalInterface
public interface ProgressListener {
    /** {@code amount} more was handled: bytes (read, found unchanged, written), or items in an item phase. */
    void advance(long amount);

    /** A phase that counts bytes begins; {@code totalBytes} is 0 when not known. */
    default void phase(String label, long totalBytes) {
        phase(label, totalBytes, null);
    }

    /**
     * A phase begins: from now on {@link #advance} counts toward {@code total} (0: not known), in bytes when
     * {@code items} is null, else in items named by the plural noun {@code items} ("packs"). Called between
     * phases, once every advance of the phase before has been made.
     */
    default void phase(String label, long total, String items) {
    }

    /**
     * For operations that learn their size once under way (a file backup scans its tree while it reads it):
     * {@code bytes} in all, and {@code files} in all (0 when the operation counts no files). May be called
     * again with a better figure.
     */
    default void total(long bytes, long files) {
    }

    /** {@code files} more files were handled, for operations that count files. */
    default void filesDone(long files) {
    }

    ProgressListener NONE = amount -> {
    };
}
