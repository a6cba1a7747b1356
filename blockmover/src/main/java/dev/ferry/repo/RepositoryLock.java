package dev.ferry.repo;

import com.fasterxml.jackson.core.JacksonException;
import dev.ferry.crypto.Hashes;
import dev.ferry.store.NoSuchObjectException;
import dev.ferry.store.Store;
import dev.ferry.store.StoreObject;
import dev.ferry.util.Threads;
import java.io.IOException;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A lock object {@code locks/<random id>}: announces a running backup or prune. Locks never exclude writers
 * from each other; they tell prune that a backup is running, so prune deletes no pack while one could still
 * need it (see docs/FORMAT.md). The holder rewrites its lock every {@link #REFRESH} so it stays fresh; a lock
 * not refreshed for {@link #STALE} belongs to a process that died and is ignored (and removed by prune).
 */
public final class RepositoryLock implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(RepositoryLock.class);
    public static final String PREFIX = "locks/";
    public static final Duration REFRESH = Duration.ofMinutes(2);
    public static final Duration STALE = Duration.ofMinutes(15);

    /** The content of a lock object (plain JSON). */
    public record Info(String operation, String hostname, long pid, String created, String refreshed) {
        Instant refreshedAt() {
            return Instant.parse(refreshed);
        }
    }

    /** A lock found in the store; {@code info} is null for a lock that cannot be read (counted as live). */
    public record Found(String name, Info info) {
        public boolean isStale(Instant now) {
            return info != null && info.refreshedAt().plus(STALE).isBefore(now);
        }

        public String describe() {
            return info == null ? name + " (unreadable; remove it by hand if no backup or prune runs)"
                    : info.operation() + " on " + info.hostname() + " (pid " + info.pid() + "), refreshed "
                    + info.refreshed();
        }
    }

    private final Store store;
    private final String name;
    private final Clock clock;
    private final Info base;
    private final ScheduledExecutorService refresher;
    private volatile IOException refreshFailure;

    private RepositoryLock(Store store, String name, Clock clock, Info base) {
        this.store = store;
        this.name = name;
        this.clock = clock;
        this.base = base;
        this.refresher = Executors.newSingleThreadScheduledExecutor(Threads.daemon("ferry-lock-refresh"));
    }

    /** Writes a lock for {@code operation} and keeps it fresh until {@link #close()}. */
    public static RepositoryLock acquire(Store store, String operation, String hostname, Clock clock)
            throws IOException {
        byte[] id = new byte[16];
        new SecureRandom().nextBytes(id);
        String now = clock.instant().toString();
        Info info = new Info(operation, hostname, ProcessHandle.current().pid(), now, now);
        RepositoryLock lock = new RepositoryLock(store, PREFIX + Hashes.hex(id), clock, info);
        lock.write(now);
        long period = REFRESH.toSeconds();
        lock.refresher.scheduleAtFixedRate(lock::refresh, period, period, TimeUnit.SECONDS);
        return lock;
    }

    public String name() {
        return name;
    }

    private void write(String refreshed) throws IOException {
        Info i = new Info(base.operation(), base.hostname(), base.pid(), base.created(), refreshed);
        try {
            store.put(name, Json.MAPPER.writeValueAsBytes(i));
        } catch (JacksonException e) {
            throw new IllegalStateException(e);
        }
    }

    private void refresh() {
        try {
            write(clock.instant().toString());
        } catch (IOException | RuntimeException e) {
            log.warn("could not refresh lock {}: {}", name, e.toString());
            refreshFailure = e instanceof IOException io ? io : new IOException(e);
        }
    }

    /**
     * Fails if the lock could not be refreshed in time: past {@link #STALE}, a prune may have taken this
     * process for dead.
     */
    public void check() throws IOException {
        IOException f = refreshFailure;
        if (f != null) {
            throw new IOException("the repository lock " + name + " could not be refreshed: " + f.getMessage(), f);
        }
    }

    /** Every lock in the store; an unreadable one has no info. */
    public static List<Found> list(Store store) throws IOException {
        List<Found> out = new ArrayList<>();
        for (StoreObject o : store.list(PREFIX)) {
            Info info;
            try {
                info = Json.MAPPER.readValue(store.get(o.name()), Info.class);
                info.refreshedAt();
            } catch (NoSuchObjectException gone) {
                continue; // released while we listed
            } catch (IOException | RuntimeException e) {
                log.warn("unreadable lock {}: {}", o.name(), e.toString());
                info = null;
            }
            out.add(new Found(o.name(), info));
        }
        return out;
    }

    @Override
    public void close() throws IOException {
        refresher.shutdownNow();
        store.delete(name);
    }
}
