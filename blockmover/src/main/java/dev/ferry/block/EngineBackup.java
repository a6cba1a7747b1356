package dev.ferry.block;

import dev.ferry.engine.ChangedRanges;
import dev.ferry.engine.Engine;
import dev.ferry.engine.EngineSnapshot;
import dev.ferry.engine.VolumeReader;
import dev.ferry.progress.ProgressReporter;
import dev.ferry.repo.Repository;
import dev.ferry.repo.RepositoryLock;
import dev.ferry.repo.Snapshot;
import dev.ferry.repo.Snapshots;
import java.io.IOException;
import java.time.Clock;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.LongFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A backup through an engine, for any engine: take a snapshot, find the newest earlier snapshot of the
 * volume that the repository holds a backup of (the base), read only what the engine says changed since
 * then, store the block snapshot with the engine's facts, and delete the engine snapshots Ferry made that are
 * no longer needed as a base.
 *
 * <p>A failed backup deletes only the snapshot it took, so the previous base stays and the next run is still
 * incremental. Snapshots Ferry did not make ({@link #MANAGED} not {@code "true"}) are never deleted, nor are
 * those taken for another repository ({@link #REPOSITORY}): each repository backing up a volume keeps its own
 * base. Backups of one volume on one node run one at a time ({@link VolumeLock}).
 */
public final class EngineBackup {
    private static final Logger log = LoggerFactory.getLogger(EngineBackup.class);
    /** Prefix of the snapshots Ferry takes; the rest of the name is the UTC time. */
    public static final String SNAPSHOT_PREFIX = "ferry-";
    /** Engine snapshot property an engine sets to "true" on the snapshots Ferry made. */
    public static final String MANAGED = "managed";
    /** Engine snapshot property: the id of the repository Ferry took the snapshot for. */
    public static final String REPOSITORY = "repository";
    /** Keys of a block snapshot's {@code engine} map written by every engine backup. */
    public static final String ENGINE = "engine", VOLUME = "volume", SNAPSHOT = "snapshot", GUID = "guid";
    private static final DateTimeFormatter NAME_TIME =
            DateTimeFormatter.ofPattern("yyyyMMdd'T'HHmmss.SSS'Z'").withZone(ZoneOffset.UTC);

    /**
     * @param keepLocal engine snapshots of Ferry's to keep after success, the new one included (at least 1)
     * @param blockSize block size of a first backup, or null for the default
     * @param volumeName the volume's name recorded in the snapshot (a PV name), or null: then it is known by the
     *                  engine's volume on this host
     */
    public record Request(Engine engine, String volume, int keepLocal, Integer blockSize, Map<String, String> tags,
                          int threads, RepositoryLock lock, Clock clock, String hostname, String volumeName) {
        /** A request for a volume without a name. */
        public Request(Engine engine, String volume, int keepLocal, Integer blockSize, Map<String, String> tags,
                       int threads, RepositoryLock lock, Clock clock, String hostname) {
            this(engine, volume, keepLocal, blockSize, tags, threads, lock, clock, hostname, null);
        }
    }

    /**
     * @param snapshot the engine snapshot taken and backed up
     * @param base     the engine snapshot the backup was incremental from, or null for a full read
     * @param parent   the repository snapshot it built on, or null
     * @param changeList whether the engine's change list was used (false: every block was read)
     * @param deleted  engine snapshots deleted afterwards
     * @param warnings what went wrong without failing the backup (a snapshot that could not be deleted)
     */
    public record Result(BlockBackup.Result backup, EngineSnapshot snapshot, EngineSnapshot base,
                         Snapshots.Stored parent, boolean changeList, List<String> deleted, List<String> warnings) {
    }

    private final Repository repo;
    private final Request req;

    public EngineBackup(Repository repo, Request req) {
        if (req.keepLocal() < 1) {
            throw new IllegalArgumentException("--keep-local must be at least 1: the newest snapshot is the base "
                    + "of the next incremental");
        }
        this.repo = repo;
        this.req = req;
    }

    /** Runs the backup; {@code progress} makes the reporter once the number of bytes to read is known. */
    public Result run(LongFunction<ProgressReporter> progress) throws IOException {
        try (VolumeLock ignored = VolumeLock.acquire(req.engine().name(), req.volume())) {
            return runLocked(progress);
        }
    }

    private Result runLocked(LongFunction<ProgressReporter> progress) throws IOException {
        Engine engine = req.engine();
        String repositoryId = repo.config().id();
        List<String> damaged = new ArrayList<>();
        Map<String, Snapshots.Stored> backedUp = backedUpByGuid(damaged);
        List<EngineSnapshot> before = engine.listSnapshots(req.volume());
        String name = SNAPSHOT_PREFIX + NAME_TIME.format(req.clock().instant());
        EngineSnapshot snap = engine.createSnapshot(req.volume(), name, repositoryId);
        boolean ok = false;
        try {
            EngineSnapshot base = null;
            Snapshots.Stored parent = null;
            for (int i = before.size() - 1; i >= 0 && base == null; i--) {
                EngineSnapshot s = before.get(i);
                Snapshots.Stored p = s.guid() == null ? null : backedUp.get(s.guid());
                if (p != null && isManaged(s)) {
                    base = s;
                    parent = p;
                }
            }
            Result r;
            try (VolumeReader reader = engine.open(snap)) {
                EngineSnapshot target = withProperties(snap, reader.properties());
                ChangedRanges changes = null;
                if (base != null) {
                    EngineSnapshot recordedBase = withProperties(base, parent.snapshot().engine());
                    Optional<ChangedRanges> c = engine.changedRanges(recordedBase, target);
                    // an engine may name frees past the end of the volume (ZFS frees to the end of an object)
                    changes = c.map(ranges -> ranges.clip(reader.size())).orElse(null);
                    if (changes == null) {
                        log.info("{} cannot tell what changed since {}; reading the whole volume (only new data is "
                                + "stored)", engine.name(), base.name());
                    }
                }
                Map<String, String> facts = new LinkedHashMap<>(target.properties());
                facts.remove(MANAGED);
                facts.remove(REPOSITORY); // the repository the facts are stored in
                facts.put(ENGINE, engine.name());
                facts.put(VOLUME, req.volume());
                facts.put(SNAPSHOT, snap.name());
                if (snap.guid() != null) {
                    facts.put(GUID, snap.guid());
                }
                BlockBackup job = new BlockBackup(repo, new BlockBackup.Request(reader, source(),
                        req.blockSize(), parent, changes, req.tags(), facts, req.threads(), req.lock(),
                        req.volumeName()));
                BlockBackup.Result br;
                try (ProgressReporter p = progress.apply(job.bytesToRead())) {
                    br = job.run(p, req.clock(), req.hostname());
                }
                r = new Result(br, target, base, parent, changes != null, new ArrayList<>(), damaged);
            }
            ok = true;
            cleanUp(before, snap, repositoryId, r);
            return r;
        } finally {
            if (!ok) {
                try {
                    engine.deleteSnapshot(snap);
                } catch (IOException | RuntimeException e) {
                    log.warn("could not delete snapshot {} of the failed backup: {}", snap.name(), e.getMessage());
                }
            }
        }
    }

    /**
     * Deletes the older snapshots Ferry took of the volume for this repository beyond the newest
     * {@code keepLocal} (the new one counts).
     */
    private void cleanUp(List<EngineSnapshot> before, EngineSnapshot snap, String repositoryId, Result r) {
        List<EngineSnapshot> mine = new ArrayList<>();
        for (EngineSnapshot s : before) {
            if (isManaged(s) && repositoryId.equals(s.properties().get(REPOSITORY)) && !s.name().equals(snap.name())) {
                mine.add(s);
            }
        }
        int keepOlder = req.keepLocal() - 1;
        for (int i = 0; i < mine.size() - keepOlder; i++) {
            EngineSnapshot s = mine.get(i);
            try {
                req.engine().deleteSnapshot(s);
                r.deleted().add(s.name());
            } catch (IOException | RuntimeException e) {
                r.warnings().add("could not delete old snapshot " + s.volume() + "@" + s.name() + ": " + e.getMessage());
            }
        }
    }

    /** Whether Ferry made this snapshot: its name and the engine's mark say so. */
    public static boolean isManaged(EngineSnapshot s) {
        return s.name().startsWith(SNAPSHOT_PREFIX) && "true".equals(s.properties().get(MANAGED));
    }

    /** The source recorded in the snapshot: {@code engine:volume}. */
    private String source() {
        return req.engine().name() + ":" + req.volume();
    }

    /**
     * Backups of this volume (by its name, or unnamed, by its source on this host) by the guid they read. A
     * snapshot object that cannot be read is left out (its engine snapshot is then no base) and named in
     * {@code warnings}.
     */
    private Map<String, Snapshots.Stored> backedUpByGuid(List<String> warnings) throws IOException {
        Map<String, Snapshots.Stored> m = new HashMap<>();
        Snapshots.Listing listing = new Snapshots(repo).readAll();
        for (Snapshots.Unreadable d : listing.damaged()) {
            warnings.add(d.describe() + "; the base is chosen among the others ('ferry repair snapshots' removes it)");
        }
        for (Snapshots.Stored s : listing.snapshots()) {
            Map<String, String> e = s.snapshot().engine();
            if (Snapshot.KIND_BLOCK.equals(s.snapshot().kind()) && e != null
                    && s.snapshot().sameVolume(req.volumeName(), source(), req.hostname())
                    && req.engine().name().equals(e.get(ENGINE)) && req.volume().equals(e.get(VOLUME))
                    && e.get(GUID) != null) {
                m.put(e.get(GUID), s); // oldest first: the newest backup of a guid wins
            }
        }
        return m;
    }

    /** {@code s} with {@code more} added to its properties (what its reader reported, what its backup recorded). */
    private static EngineSnapshot withProperties(EngineSnapshot s, Map<String, String> more) {
        Map<String, String> p = new LinkedHashMap<>(s.properties());
        if (more != null) {
            p.putAll(more);
        }
        return new EngineSnapshot(s.volume(), s.name(), s.guid(), s.created(), p);
    }
}
