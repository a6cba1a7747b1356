package dev.ferry.util;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

/** Worker threads of the data path: named daemon threads, and the end of a batch of tasks that may fail. */
public final class Threads {
    private Threads() {
    }

    /** Daemon threads called {@code name}: a worker must never keep a finished command's JVM alive. */
    public static ThreadFactory daemon(String name) {
        return r -> {
            Thread t = new Thread(r, name);
            t.setDaemon(true);
            return t;
        };
    }

    public static ExecutorService pool(int threads, String name) {
        return Executors.newFixedThreadPool(threads, daemon(name));
    }

    /**
     * Shuts {@code pool} down and waits until its queued tasks have run (tasks are expected to stop early
     * once {@code failure} is set), so that nothing works behind the caller's back. An interrupt stops the
     * tasks and is recorded in {@code failure}.
     */
    public static void drain(ExecutorService pool, AtomicReference<Throwable> failure, String what) {
        pool.shutdown();
        try {
            while (!pool.awaitTermination(1, TimeUnit.MINUTES)) {
                Thread.yield(); // a slow store: keep waiting
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            pool.shutdownNow();
            failure.compareAndSet(null, new InterruptedIOException(what + " interrupted"));
        }
    }

    /** Throws a failure recorded by tasks (an IOException or a RuntimeException); returns if there is none. */
    public static void rethrow(Throwable failure) throws IOException {
        if (failure instanceof IOException io) {
            throw io;
        }
        if (failure instanceof RuntimeException re) {
            throw re;
        }
        if (failure instanceof Error err) {
            throw err;
        }
        if (failure != null) {
            throw new IOException(failure.toString(), failure);
        }
    }
}
