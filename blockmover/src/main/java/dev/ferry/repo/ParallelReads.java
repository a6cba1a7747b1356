package dev.ferry.repo;

import dev.ferry.store.NoSuchObjectException;
import dev.ferry.store.Store;
import dev.ferry.util.Threads;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;

/** Fetches and opens many small repository objects (index files, snapshots), several at a time. */
final class ParallelReads {
    private static final int AT_ONCE = 8;

    private ParallelReads() {
    }

    /** Opens the bytes of one object; throws {@link RepositoryException} for damage. */
    @FunctionalInterface
    interface Opener<T> {
        T open(String name, byte[] bytes) throws IOException;
    }

    /**
     * Fetches and opens {@code names}, keyed by name in the order given. With {@code errors == null} the first
     * damaged object fails the call; otherwise damage is appended to {@code errors} and the rest is still read.
     * An object that vanished after it was listed is skipped when {@code skipMissing}, else its
     * {@link NoSuchObjectException} is thrown.
     */
    static <T> Map<String, T> openAll(Store store, List<String> names, Opener<T> opener,
                                      List<RepositoryException> errors, boolean skipMissing) throws IOException {
        Map<String, T> out = new LinkedHashMap<>();
        if (names.isEmpty()) {
            return out;
        }
        ExecutorService pool = Threads.pool(Math.min(AT_ONCE, names.size()), "ferry-read");
        try {
            List<Future<T>> futures = new ArrayList<>();
            for (String name : names) {
                futures.add(pool.submit(() -> opener.open(name, store.get(name))));
            }
            for (int i = 0; i < futures.size(); i++) {
                try {
                    out.put(names.get(i), futures.get(i).get());
                } catch (ExecutionException e) {
                    Throwable c = e.getCause();
                    if (c instanceof Error err) {
                        throw err; // out of memory is not damage
                    }
                    if (c instanceof NoSuchObjectException gone) {
                        if (skipMissing) {
                            continue;
                        }
                        throw gone;
                    }
                    RepositoryException re = c instanceof RepositoryException r ? r
                            : new RepositoryException("cannot read " + names.get(i) + ": " + c.getMessage(), c);
                    if (errors == null) {
                        throw re;
                    }
                    errors.add(re);
                }
            }
            return out;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while reading " + names.size() + " objects");
        } finally {
            pool.shutdownNow();
        }
    }
}
