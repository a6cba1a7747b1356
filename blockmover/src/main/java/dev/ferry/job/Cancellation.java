package dev.ferry.job;

import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The cancellation of one job: asked once (by a user, a daemon client, a shutting-down daemon), seen by every
 * part of the job. Cooperative: loops call {@link #check()} between units of work, and whatever blocks (a child
 * process's output, a queue hand-off, an S3 request, a worker pool) registers an action with {@link #onCancel}
 * that ends the wait (destroys the process, interrupts the job's threads, cancels the request). Thread-safe.
 */
public final class Cancellation {
    private static final Logger log = LoggerFactory.getLogger(Cancellation.class);

    /** An action registered with {@link #onCancel}; closing it removes the action. */
    @FunctionalInterface
    public interface Registration extends AutoCloseable {
        @Override
        void close();
    }

    private final List<Runnable> actions = new ArrayList<>(); // guarded by this
    private volatile String reason;                           // null until cancelled

    /** Asks the job to stop; {@code reason} is told in the job's error ("cancelled by the user"). Idempotent. */
    public void cancel(String reason) {
        List<Runnable> todo;
        synchronized (this) {
            if (this.reason != null) {
                return;
            }
            this.reason = reason == null || reason.isBlank() ? "cancelled" : reason;
            todo = new ArrayList<>(actions);
            actions.clear();
        }
        for (Runnable r : todo) {
            run(r);
        }
    }

    public boolean isCancelled() {
        return reason != null;
    }

    /** Why the job was cancelled, or null. */
    public String reason() {
        return reason;
    }

    /** Throws {@link CancelledException} once the job is cancelled. */
    public void check() throws CancelledException {
        String r = reason;
        if (r != null) {
            throw new CancelledException(r);
        }
    }

    /**
     * Runs {@code action} when the job is cancelled, or at once (on this thread) if it already is. Close the
     * returned registration once the blocking call it guards is over, so that long jobs do not collect actions.
     */
    public Registration onCancel(Runnable action) {
        synchronized (this) {
            if (reason == null) {
                actions.add(action);
                return () -> {
                    synchronized (Cancellation.this) {
                        actions.remove(action);
                    }
                };
            }
        }
        run(action);
        return () -> {
        };
    }

    private static void run(Runnable r) {
        try {
            r.run();
        } catch (RuntimeException e) {
            log.warn("cancel action failed: {}", e.toString());
        }
    }
}
