package dev.ferry.repo;

import java.io.IOException;
import java.util.HashSet;
import java.util.Set;

/**
 * How every backup stores its snapshot beside prunes (docs/FORMAT.md, "Locks"): a backup never stores a
 * snapshot that refers to a pack it has not confirmed present since its lock was last confirmed valid.
 *
 * <p>Begun with {@link RepositoryWriter#beginCommit} before the backup adds data, it notes the packs the snapshot will
 * rely on: those the repository stores meanwhile, and those of chunks found already indexed (deduplicated).
 * While it is open, the repository stores no pack once the lock is known lost, and no index file unless the
 * lock is confirmed and the packs it names are present. {@link #prepare} flushes, confirms the lock, makes sure
 * every chunk of the snapshot is indexed (when a prune rewrote the index meanwhile, every chunk's pack is checked
 * too) and that every pack relied on is present; {@link #store} stores the snapshot, then checks lock and packs
 * again and removes the snapshot if either no longer holds: a prune that judged the lock stale after that second
 * check lists snapshots after it, so it sees this one and keeps its packs.
 *
 * <p>A backup that holds no lock (null) gets the pack checks only.
 */
public final class SnapshotCommit implements AutoCloseable {
    private final RepositoryWriter writer;
    private final Repository repo;
    private final RepositoryLock lock;
    private final Set<PackId> relied = new HashSet<>(); // guarded by repo
    private Set<PackId> prepared;

    SnapshotCommit(RepositoryWriter writer, RepositoryLock lock) {
        this.writer = writer;
        this.repo = writer.repository();
        this.lock = lock;
    }

    /** Notes a pack the snapshot relies on; called by the repository, under its monitor. */
    void relyOn(PackId pack) {
        relied.add(pack);
    }

    /** Fails at once if the lock is known lost, without reading the store. */
    void checkLock() throws IOException {
        if (lock != null) {
            try {
                lock.check();
            } catch (IOException e) {
                throw aborted(e);
            }
        }
    }

    /** Fails unless the lock is valid as the store shows it (see {@link RepositoryLock#confirm()}). */
    void confirmLock() throws IOException {
        if (lock != null) {
            try {
                lock.confirm();
            } catch (IOException e) {
                throw aborted(e);
            }
        }
    }

    static RepositoryException aborted(IOException e) {
        return new RepositoryException("backup aborted, no snapshot stored: " + e.getMessage()
                + "; run the backup again", e);
    }

    /**
     * Makes the data of a snapshot durable and safe to refer to: stores what is waiting, confirms the lock,
     * names again chunks a prune dropped from the index (see {@link Repository#ensureIndexed}), and checks that
     * every pack the snapshot relies on is present. Returns the number of chunks named again.
     *
     * @param refs enumerates the snapshot's chunks; called only when another process rewrote the index
     */
    public int prepare(Repository.ChunkRefs refs) throws IOException {
        writer.flush();
        confirmLock();
        Set<PackId> walked = new HashSet<>();
        int again = writer.ensureIndexed(refs, walked);
        Set<PackId> needed;
        synchronized (repo) {
            needed = new HashSet<>(relied);
        }
        needed.addAll(walked);
        try {
            repo.requirePresent(needed, "that the new snapshot uses");
        } catch (IOException e) {
            throw aborted(e);
        }
        prepared = needed;
        return again;
    }

    /**
     * Stores the snapshot after {@link #prepare}, then confirms the lock and the packs once more; if either no
     * longer holds, the snapshot is removed again and this fails.
     */
    public Snapshots.Stored store(Snapshot snapshot) throws IOException {
        if (prepared == null) {
            throw new IllegalStateException("prepare() comes before store()");
        }
        if (repo.isStopping() || writer.isAbandoned()) {
            throw new java.io.InterruptedIOException("the process is stopping: no snapshot is stored");
        }
        confirmLock();
        Snapshots snapshots = new Snapshots(repo);
        Snapshots.Stored stored = snapshots.save(snapshot);
        try {
            confirmLock();
            repo.requirePresent(prepared, "that the new snapshot uses");
        } catch (IOException | RuntimeException e) {
            try {
                snapshots.delete(stored.id());
            } catch (IOException | RuntimeException d) {
                e.addSuppressed(d);
                throw new RepositoryException("snapshot " + stored.id() + " was stored, but " + e.getMessage()
                        + "; removing it failed (" + d.getMessage() + "): forget it with 'ferry forget "
                        + stored.id() + "'", e);
            }
            throw new RepositoryException("backup aborted, snapshot " + stored.shortId() + " removed again: "
                    + e.getMessage().replaceFirst("^backup aborted, no snapshot stored: ", ""), e);
        }
        return stored;
    }

    @Override
    public void close() {
        writer.endCommit(this);
    }
}
