package dev.ferry.repo;

import com.fasterxml.jackson.annotation.JsonInclude;
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
import java.util.Comparator;
import java.util.List;
import java.util.function.Function;
import java.util.function.Predicate;
import java.util.Objects;
import java.util.OptionalLong;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A lock object {@code locks/<random id>}: announces a running backup or prune. Locks never exclude writers
 * from each other; they tell prune that a backup is running, so prune deletes no pack while one could still
 * need it (see docs/FORMAT.md). The holder rewrites its lock every {@link #REFRESH} so it stays fresh. A lock
 * is stale (its holder died; prune and {@code ferry unlock} remove it) when it was not refreshed for
 * {@link #STALE}, or at once when it names a process of our own process table (same host, boot and pid
 * namespace) that is gone or whose pid now belongs to a process that started at another time.
 */
public final class RepositoryLock implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(RepositoryLock.class);
    public static final String PREFIX = "locks/";
    public static final Duration REFRESH = Duration.ofMinutes(2);
    public static final Duration STALE = Duration.ofMinutes(15);
    /** The operation of the lock a key change (key add, key remove) holds, exclusive among key changes. */
    public static final String KEY_CHANGE = "key change";

    /**
     * The content of a lock object (plain JSON). The holder's process facts ({@code bootId}, {@code pidNamespace},
     * {@code timeNamespace}, {@code startTicks}; see {@link ProcessTable}) are absent where they were not known
     * and in locks of Ferry versions before them.
     */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Info(String operation, String hostname, long pid, String created, String refreshed,
                       String bootId, Long pidNamespace, Long timeNamespace, Long startTicks) {
        Instant refreshedAt() {
            return Instant.parse(refreshed);
        }

        Info withRefreshed(String time) {
            return new Info(operation, hostname, pid, created, time, bootId, pidNamespace, timeNamespace, startTicks);
        }

        /** Whether the holder ran in {@code table}, so its pid can be looked up there. */
        boolean ranIn(ProcessTable table) {
            ProcessTable.Identity id = table.identity();
            return id != null && table.canLookUp() && startTicks != null && bootId != null && pidNamespace != null
                    && id.hostname().equals(hostname) && id.bootId().equals(bootId)
                    && id.pidNamespace() == pidNamespace && Objects.equals(id.timeNamespace(), timeNamespace);
        }
    }

    /** Whether a lock is stale, and why, in words for the user. */
    public record Staleness(boolean stale, String reason) {
    }

    /** A lock found in the store; {@code info} is null for a lock that cannot be read (counted as live). */
    public record Found(String name, Info info) {
        /** Whether the lock is readable and its operation is one {@code operation} accepts. */
        public boolean heldFor(Predicate<String> operation) {
            return info != null && info.operation() != null && operation.test(info.operation());
        }

        /** Whether the lock is stale at {@code now}, judged from {@code local}, the process table we see. */
        public boolean isStale(Instant now, ProcessTable local) {
            return staleness(now, local).stale();
        }

        /**
         * The one rule for stale locks (docs/FORMAT.md, "Locks"): unreadable locks are live; a lock not refreshed
         * for {@link #STALE} is stale; a lock whose holder ran in {@code local} is stale at once when its pid is
         * gone or belongs to a process with another start time. A holder that cannot be looked up keeps the
         * 15-minute rule.
         */
        public Staleness staleness(Instant now, ProcessTable local) {
            if (info == null) {
                return new Staleness(false, "unreadable, so it counts as running; if no backup or prune runs, remove "
                        + "it with 'ferry unlock --remove-all'");
            }
            Instant staleAt = info.refreshedAt().plus(STALE);
            if (staleAt.isBefore(now)) {
                return new Staleness(true, "not refreshed since " + info.refreshed() + " (more than "
                        + STALE.toMinutes() + " minutes)");
            }
            String fresh = "refreshed " + info.refreshed() + ", stale after " + staleAt + " unless refreshed";
            if (!info.ranIn(local)) {
                if (!Objects.equals(info.hostname(), local.hostname())) {
                    return new Staleness(false, "other host " + info.hostname() + ": " + fresh);
                }
                if (info.startTicks() == null) {
                    return new Staleness(false, "no process facts in the lock (older Ferry): " + fresh);
                }
                if (local.identity() == null || !local.canLookUp()) {
                    return new Staleness(false, "processes of this host cannot be looked up here: " + fresh);
                }
                return new Staleness(false, "another boot or pid namespace of host " + info.hostname() + ": "
                        + fresh);
            }
            OptionalLong started;
            try {
                started = local.startTicks(info.pid());
            } catch (IOException | RuntimeException e) {
                return new Staleness(false, "pid " + info.pid() + " cannot be looked up (" + e.getMessage() + "): "
                        + fresh);
            }
            if (started.isEmpty()) {
                return new Staleness(true, "its process (pid " + info.pid() + ") is gone from this host");
            }
            if (started.getAsLong() != info.startTicks()) {
                return new Staleness(true, "pid " + info.pid() + " of this host is now another process (started at "
                        + "tick " + started.getAsLong() + ", the holder at tick " + info.startTicks() + ")");
            }
            return new Staleness(false, "live on this host: pid " + info.pid() + " since " + info.created());
        }

        public String describe() {
            return info == null
                    ? name + " (unreadable; if no backup or prune runs, 'ferry unlock --remove-all' removes it)"
                    : info.operation() + " on " + info.hostname() + " (pid " + info.pid() + "), refreshed "
                    + info.refreshed();
        }
    }

    private final Store store;
    private final String name;
    private final Clock clock;
    private final Info base;
    private final ProcessTable processes;
    private final ScheduledExecutorService refresher;
    private volatile IOException refreshFailure;
    /** Why this lock can no longer be trusted (removed, or unrefreshed past {@link #STALE}); sticky once set. */
    private volatile String lost;
    private volatile Instant writtenAt;     // the holder's clock at the last write that succeeded
    private volatile long writtenNanos;     // System.nanoTime() then: a pause of the process shows here too
    private boolean closed;                 // guarded by this

    private RepositoryLock(Store store, String name, Clock clock, Info base, ProcessTable processes) {
        this.store = store;
        this.name = name;
        this.clock = clock;
        this.base = base;
        this.processes = processes;
        this.refresher = Executors.newSingleThreadScheduledExecutor(Threads.daemon("ferry-lock-refresh"));
    }

    /** Writes a lock for {@code operation} and keeps it fresh until {@link #close()}. */
    public static RepositoryLock acquire(Store store, String operation, String hostname, Clock clock)
            throws IOException {
        return acquire(store, operation, hostname, clock, ProcessTable.local(hostname));
    }

    /**
     * Writes a lock for {@code operation}, with the facts {@code processes} knows about this process, and keeps it
     * fresh until {@link #close()}.
     */
    public static RepositoryLock acquire(Store store, String operation, String hostname, Clock clock,
                                         ProcessTable processes) throws IOException {
        byte[] id = new byte[16];
        new SecureRandom().nextBytes(id);
        String now = clock.instant().toString();
        ProcessTable.Identity self = processes.identity();
        Info info = self == null || !hostname.equals(self.hostname())
                ? new Info(operation, hostname, processes.selfPid(), now, now, null, null, null, null)
                : new Info(operation, hostname, processes.selfPid(), now, now, self.bootId(), self.pidNamespace(),
                        self.timeNamespace(), processes.selfStartTicks());
        RepositoryLock lock = new RepositoryLock(store, PREFIX + Hashes.hex(id), clock, info, processes);
        lock.write(now);
        long period = REFRESH.toSeconds();
        lock.refresher.scheduleAtFixedRate(lock::refresh, period, period, TimeUnit.SECONDS);
        return lock;
    }

    /**
     * Writes a lock for {@code operation} and refuses (removing it again) while another live lock of the same
     * operation is in the store: of two processes that start at once, at least one sees the other's lock, so at
     * most one goes on. Unreadable and stale locks do not count.
     */
    public static RepositoryLock acquireExclusive(Store store, String operation, String hostname, Clock clock)
            throws IOException {
        RepositoryLock lock = acquire(store, operation, hostname, clock);
        try {
            lock.refuseBeside(f -> f.heldFor(operation::equals), f -> "another " + operation + " is running: "
                    + f.describe() + "; nothing was changed, try again later (if it died, 'ferry unlock' removes "
                    + "its lock)");
        } catch (IOException | RuntimeException e) {
            try {
                lock.close();
            } catch (IOException closing) {
                e.addSuppressed(closing);
            }
            throw e;
        }
        return lock;
    }

    public String name() {
        return name;
    }

    /**
     * Fails with {@code refusal}'s message if another live lock that {@code conflicts} accepts is in the store:
     * how an operation that must not run beside others (prune beside prune, a repair, a key change) refuses
     * after writing its own lock, so that of two starting at once at least one sees the other.
     */
    public void refuseBeside(Predicate<Found> conflicts, Function<Found, String> refusal) throws IOException {
        for (Found f : list(store)) {
            if (!f.name().equals(name) && conflicts.test(f) && !f.isStale(clock.instant(), processes)) {
                throw new RepositoryException(refusal.apply(f));
            }
        }
    }

    /** The process table this lock's holder sees: the one other locks are judged from. */
    public ProcessTable processes() {
        return processes;
    }

    private void write(String refreshed) throws IOException {
        long nanos = System.nanoTime();
        try {
            store.put(name, Json.MAPPER.writeValueAsBytes(base.withRefreshed(refreshed)));
        } catch (JacksonException e) {
            throw new IllegalStateException(e);
        }
        writtenAt = Instant.parse(refreshed);
        writtenNanos = nanos;
    }

    /**
     * Rewrites the lock, unless it can no longer be trusted: a lock that was removed (by {@code ferry unlock
     * --remove-all}, or by a prune that judged it stale) or that went unrefreshed for {@link #STALE} is not
     * written again, since a prune may have deleted packs in the meantime that the holder still needs; the
     * holder finds out at its next {@link #check()}.
     */
    synchronized void refresh() {
        if (closed || lost != null) {
            return;
        }
        try {
            checkAge();
            if (!store.exists(name)) {
                lost = removed();
                log.warn(lost);
                return;
            }
            write(clock.instant().toString());
            refreshFailure = null;
        } catch (IOException | RuntimeException e) {
            if (lost != null) {
                return;
            }
            log.warn("could not refresh lock {}: {}", name, e.toString());
            refreshFailure = e instanceof IOException io ? io : new IOException(e);
        }
    }

    /** Marks the lock lost once its last write is {@link #STALE} old, by the clock or by the process's own time. */
    private void checkAge() throws IOException {
        String why = lost;
        if (why != null) {
            throw new RepositoryException(why);
        }
        Duration sinceNanos = Duration.ofNanos(System.nanoTime() - writtenNanos);
        Duration sinceClock = Duration.between(writtenAt, clock.instant());
        Duration since = sinceNanos.compareTo(sinceClock) > 0 ? sinceNanos : sinceClock;
        if (since.compareTo(STALE) > 0) {
            IOException f = refreshFailure;
            lost = "the repository lock " + name + " was last written " + writtenAt + ", more than "
                    + STALE.toMinutes() + " minutes ago" + (f == null ? " (was this process paused?)"
                    : " (refreshing failed: " + f.getMessage() + ")") + "; others may have taken it as stale, and a "
                    + "prune may have deleted data this process relies on";
            throw new RepositoryException(lost);
        }
    }

    /**
     * Fails if this lock can no longer be trusted: it was removed from the store, or it was not written for
     * {@link #STALE} (its refreshes failed, or the process was paused), so a prune may have judged it stale.
     * Looks at what this process knows; {@link #confirm()} also reads the lock object.
     */
    public void check() throws IOException {
        checkAge();
    }

    /**
     * Confirms that the lock is still valid as others see it: {@link #check()}, then the lock object is read
     * from the store and must be there, not stale by its {@code refreshed} time. From the moment this returns,
     * a prune that starts deleting has seen the lock (or takes it as stale at least {@link #STALE} later); see
     * docs/FORMAT.md, "Locks".
     */
    public void confirm() throws IOException {
        checkAge();
        byte[] bytes;
        try {
            bytes = store.get(name);
        } catch (NoSuchObjectException gone) {
            synchronized (this) {
                if (closed) {
                    throw new RepositoryException("the repository lock " + name + " was released");
                }
                lost = removed();
                throw new RepositoryException(lost);
            }
        }
        Info info;
        try {
            info = Json.MAPPER.readValue(bytes, Info.class);
            info.refreshedAt();
        } catch (IOException | RuntimeException e) {
            throw new RepositoryException("the repository lock " + name + " cannot be read back: " + e);
        }
        Instant now = clock.instant();
        if (info.refreshedAt().plus(STALE).isBefore(now)) {
            lost = "the repository lock " + name + " says it was refreshed " + info.refreshed() + ", more than "
                    + STALE.toMinutes() + " minutes before " + now + ": others take it as stale, and a prune may "
                    + "have deleted data this process relies on";
            throw new RepositoryException(lost);
        }
    }

    private String removed() {
        return "the repository lock " + name + " was removed while this process held it (by 'ferry unlock "
                + "--remove-all', or by a prune that judged it stale); a prune may have deleted data this process "
                + "relies on";
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

    /** One lock as {@link #unlock} found it: whether it is (or, in a dry run, would be) removed, and why. */
    public record Unlocked(Found lock, Staleness staleness, boolean removed) {
    }

    /**
     * Removes the stale locks, judged from {@code local} at {@code now}, or every lock with {@code removeAll};
     * a dry run removes nothing. Returns every lock found, by name.
     */
    public static List<Unlocked> unlock(Store store, Instant now, ProcessTable local, boolean removeAll,
                                        boolean dryRun) throws IOException {
        return unlock(store, now, local, removeAll, dryRun, null);
    }

    /** As {@link #unlock(Store, Instant, ProcessTable, boolean, boolean)}, leaving out the lock {@code own}. */
    static List<Unlocked> unlock(Store store, Instant now, ProcessTable local, boolean removeAll, boolean dryRun,
                                 RepositoryLock own) throws IOException {
        List<Found> found = new ArrayList<>(list(store));
        if (own != null) {
            found.removeIf(f -> f.name().equals(own.name()));
        }
        found.sort(Comparator.comparing(Found::name));
        List<Unlocked> out = new ArrayList<>();
        for (Found f : found) {
            Staleness s = f.staleness(now, local);
            boolean remove = removeAll || s.stale();
            if (remove && !dryRun) {
                store.delete(f.name());
                log.info("removed lock {}: {}", f.describe(), s.reason());
            }
            out.add(new Unlocked(f, s, remove));
        }
        return out;
    }

    /** Whether {@link #close()} was called. */
    public synchronized boolean isClosed() {
        return closed;
    }

    /**
     * Stops refreshing and deletes the lock object. Safe to call more than once and from another thread (a
     * shutdown hook): once a refresh under way has ended, nothing writes the lock again.
     */
    @Override
    public void close() throws IOException {
        synchronized (this) { // waits for a refresh under way; none starts after
            if (closed) {
                return;
            }
            closed = true;
            refresher.shutdownNow();
        }
        store.delete(name);
    }
}
