package dev.ferry.progress;

/**
 * Receives progress from a long operation (a backup or a restore). Called from worker threads, so
 * implementations must be thread-safe and cheap.
 */
@FunctionalInterface
public interface ProgressListener {
    /** {@code bytes} more of the volume were handled (read, or found unchanged, or written). */
    void advance(long bytes);

    ProgressListener NONE = bytes -> {
    };
}
