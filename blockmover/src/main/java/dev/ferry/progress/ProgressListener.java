package dev.ferry.progress;

/**
 * Receives progress from a long operation (a backup or a restore). Called from worker threads, so
 * implementations must be thread-safe and cheap.
 */
@FunctionalInterface
public interface ProgressListener {
    /** {@code bytes} more of the volume were handled (read, or found unchanged, or written). */
    void advance(long bytes);

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

    ProgressListener NONE = bytes -> {
    };
}
