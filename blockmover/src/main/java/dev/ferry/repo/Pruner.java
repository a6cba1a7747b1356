package dev.ferry.repo;

import dev.ferry.block.BlockBackup;
import dev.ferry.store.Store;
import dev.ferry.store.StoreObject;
import java.io.IOException;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Removes data that no snapshot refers to, safely beside running backups. The steps, in this order:
 * <ol>
 *   <li>list {@code data/}; read every snapshot and collect the chunks they use; read the current index;</li>
 *   <li>packs whose chunks are all unused are garbage; packs with at least {@code repackShare} of their bytes
 *       unused have their used chunks copied (still sealed) into new packs and become garbage too;</li>
 *   <li>store one index file naming every kept pack that supersedes the index files read, and delete those;</li>
 *   <li>if a backup holds a lock, stop: its packs, and packs whose chunks it may have deduplicated against,
 *       must stay; the garbage is now unindexed and goes in a later prune;</li>
 *   <li>otherwise read the index and the snapshots again: a pack some index names now is kept, and chunks of
 *       snapshots that appeared meanwhile are named again; then delete garbage packs and unindexed packs
 *       (left by killed backups) that were listed in step 1.</li>
 * </ol>
 * A backup takes its lock before reading the index and checks, before storing its snapshot, that every chunk
 * it refers to is still indexed ({@link Repository#ensureIndexed}), so no snapshot ever points at a deleted
 * pack.
 */
public final class Pruner {
    private static final Logger log = LoggerFactory.getLogger(Pruner.class);
    public static final double DEFAULT_REPACK_SHARE = 0.25;

    /** What prune found and did. */
    public record Result(int snapshots, int packsBefore, long bytesBefore, int packsDeleted, long bytesDeleted,
                         int packsRepacked, long bytesRewritten, int packsDeferred, long bytesDeferred,
                         int indexFilesReplaced, int locksRemoved, int chunksNamedAgain, List<String> runningLocks,
                         boolean dryRun) {
    }

    private final Repository repo;
    private final Store store;
    private final Clock clock;
    private final double repackShare;
    /** Trees already walked by this prune: snapshots of one source share most of them. */
    private final Set<ChunkId> seenTrees = new HashSet<>();

    public Pruner(Repository repo, Clock clock, double repackShare) {
        if (repackShare <= 0 || repackShare > 1) {
            throw new IllegalArgumentException("the repack share is above 0 and at most 1, not " + repackShare);
        }
        this.repo = repo;
        this.store = repo.store();
        this.clock = clock;
        this.repackShare = repackShare;
    }

    /** Runs prune while holding a prune lock; refuses if another prune runs. */
    public Result run(String hostname, boolean dryRun) throws IOException {
        try (RepositoryLock lock = RepositoryLock.acquire(store, "prune", hostname, clock)) {
            for (RepositoryLock.Found f : RepositoryLock.list(store)) {
                if (!f.name().equals(lock.name()) && !f.isStale(clock.instant(), lock.processes())
                        && f.info() != null && "prune".equals(f.info().operation())) {
                    throw new RepositoryException("another prune is running: " + f.describe() + "; try again later");
                }
            }
            return prune(lock, dryRun);
        }
    }

    private Result prune(RepositoryLock lock, boolean dryRun) throws IOException {
        // 1. what is there, and what is used
        Map<PackId, Long> listed = new HashMap<>();
        for (StoreObject o : store.list("data/")) {
            PackId id = PackId.fromObjectName(o.name());
            if (id != null) {
                listed.put(id, o.size());
            }
        }
        Snapshots snapshots = new Snapshots(repo);
        List<Snapshots.Stored> snaps = snapshots.list();
        ChunkIdSet used = new ChunkIdSet();
        for (Snapshots.Stored s : snaps) {
            collect(s, used::add);
        }
        Map<String, IndexFile> read = repo.readIndexFiles(null);
        Map<String, IndexFile> current = IndexFile.current(read);
        Map<PackId, Map<ChunkId, PackEntry>> indexed = new LinkedHashMap<>();
        for (IndexFile f : current.values()) {
            f.packs().forEach((p, es) -> {
                Map<ChunkId, PackEntry> m = indexed.computeIfAbsent(p, k -> new LinkedHashMap<>());
                es.forEach(e -> m.putIfAbsent(e.id(), e));
            });
        }

        // 2. classify packs
        Set<PackId> garbage = new HashSet<>();
        List<PackId> repack = new ArrayList<>();
        long bytesBefore = 0;
        for (Map.Entry<PackId, Map<ChunkId, PackEntry>> p : indexed.entrySet()) {
            Long size = listed.get(p.getKey());
            if (size == null) {
                throw new RepositoryException("pack " + p.getKey().objectName() + " is named by the index but missing "
                        + "from the store; prune stops so as not to make things worse (run 'ferry verify')");
            }
            bytesBefore += size;
            long usedBytes = 0;
            int usedCount = 0;
            for (PackEntry e : p.getValue().values()) {
                if (used.contains(e.id())) {
                    usedBytes += e.length();
                    usedCount++;
                }
            }
            if (usedCount == 0) {
                garbage.add(p.getKey());
            } else if (usedCount < p.getValue().size() && size - usedBytes >= repackShare * size) {
                repack.add(p.getKey());
            }
        }
        Set<PackId> unindexed = new HashSet<>(listed.keySet());
        unindexed.removeAll(indexed.keySet());
        for (IndexFile f : read.values()) { // superseded files still name packs that may be in use by nobody...
            unindexed.removeAll(f.packs().keySet()); // ...but be conservative: only packs no index file names
        }
        if (dryRun) {
            long garbageBytes = garbage.stream().mapToLong(listed::get).sum()
                    + unindexed.stream().mapToLong(listed::get).sum();
            return new Result(snaps.size(), listed.size(), bytesBefore, garbage.size() + unindexed.size(),
                    garbageBytes, repack.size(), 0, 0, 0, 0, 0, 0, List.of(), true);
        }

        // copy used chunks out of packs worth repacking
        long rewritten = 0;
        for (PackId p : repack) {
            String name = p.objectName();
            for (PackEntry e : indexed.get(p).values()) {
                if (!used.contains(e.id())) {
                    continue;
                }
                byte[] sealed = store.getRange(name, e.offset(), e.length());
                repo.openChunk(name, e, sealed, 0); // never copy damage
                repo.copySealed(e.type(), e.id(), sealed, e.rawLength());
                rewritten += sealed.length;
            }
            garbage.add(p);
        }
        repo.flush();

        // 3. one index file for every kept pack, replacing the ones read
        Map<PackId, List<PackEntry>> kept = new LinkedHashMap<>();
        indexed.forEach((p, es) -> {
            if (!garbage.contains(p)) {
                kept.put(p, new ArrayList<>(es.values()));
            }
        });
        if (!read.isEmpty() && (!garbage.isEmpty() || read.size() > 1)) {
            List<String> supersedes = read.keySet().stream().map(n -> n.substring(IndexFile.PREFIX.length())).toList();
            repo.storeIndexFile(new IndexFile(supersedes, kept));
            for (String n : read.keySet()) {
                store.delete(n);
            }
        }
        int replaced = read.size();

        // 4. a running backup keeps every pack where it is
        Instant now = clock.instant();
        List<String> running = new ArrayList<>();
        int locksRemoved = 0;
        for (RepositoryLock.Found f : RepositoryLock.list(store)) {
            if (f.name().equals(lock.name())) {
                continue;
            }
            RepositoryLock.Staleness staleness = f.staleness(now, lock.processes());
            if (staleness.stale()) {
                store.delete(f.name());
                locksRemoved++;
                log.info("removed stale lock {}: {}", f.describe(), staleness.reason());
            } else {
                running.add(f.describe());
            }
        }
        Set<PackId> deletable = new HashSet<>(garbage);
        deletable.addAll(unindexed);
        long deletableBytes = deletable.stream().mapToLong(listed::get).sum();
        if (!running.isEmpty()) {
            log.info("{} packs ({} bytes) are no longer indexed but stay until a prune runs with no backup running",
                    deletable.size(), deletableBytes);
            return new Result(snaps.size(), listed.size(), bytesBefore, 0, 0, repack.size(), rewritten,
                    deletable.size(), deletableBytes, replaced, locksRemoved, 0, running, false);
        }

        // 5. look again: whatever is indexed now stays; snapshots stored meanwhile keep what they use
        ChunkIndex now2 = new ChunkIndex();
        for (IndexFile f : IndexFile.current(repo.readIndexFiles(null)).values()) {
            f.packs().forEach((p, es) -> {
                deletable.remove(p);
                es.forEach(e -> now2.add(p, e));
            });
            repo.learn(f); // so that pages of snapshots stored meanwhile can be read
        }
        Set<String> seen = new HashSet<>();
        snaps.forEach(s -> seen.add(s.id()));
        seenTrees.clear(); // new snapshots' trees must be walked against the new index
        Map<PackId, List<PackEntry>> again = new LinkedHashMap<>();
        ChunkIdSet namedAgain = new ChunkIdSet();
        for (Snapshots.Stored s : snapshots.list()) {
            if (seen.contains(s.id())) {
                continue;
            }
            collect(s, id -> {
                if (!now2.contains(id) && namedAgain.add(id)) {
                    ChunkIndex.Location loc = repo.lookup(id).orElseThrow(() -> new RepositoryException("chunk "
                            + id.shortHex() + " of new snapshot " + s.shortId() + " is in no index"));
                    deletable.remove(loc.pack());
                    again.computeIfAbsent(loc.pack(), k -> new ArrayList<>()).add(loc.entry());
                }
            });
        }
        if (!again.isEmpty()) {
            repo.storeIndexFile(new IndexFile(List.of(), again));
        }
        long deletedBytes = 0;
        for (PackId p : deletable) {
            store.delete(p.objectName());
            deletedBytes += listed.get(p);
        }
        try {
            int removed = store.removeAbandonedStaging(RepositoryLock.STALE);
            if (removed > 0) {
                log.info("removed {} unfinished writes of processes that died", removed);
            }
        } catch (IOException e) { // the data pruned stays pruned; the leftovers wait for the next prune
            log.warn("could not remove unfinished writes from {}: {}", store.location(), e.getMessage());
        }
        log.info("prune deleted {} packs ({} bytes), repacked {}", deletable.size(), deletedBytes, repack.size());
        return new Result(snaps.size(), listed.size(), bytesBefore, deletable.size(), deletedBytes, repack.size(),
                rewritten, 0, 0, replaced, locksRemoved, namedAgain.size(), List.of(), false);
    }

    /** Adds every chunk a snapshot refers to. Refuses kinds this code cannot read: their data must not go. */
    private void collect(Snapshots.Stored s, Repository.IoConsumer<ChunkId> action) throws IOException {
        if (Snapshot.KIND_BLOCK.equals(s.snapshot().kind()) && s.snapshot().volume() != null) {
            BlockBackup.forEachChunk(repo, s.snapshot().volume(), action);
        } else if (Snapshot.KIND_FILES.equals(s.snapshot().kind()) && s.snapshot().tree() != null) {
            // trees shared with a snapshot already walked were collected with everything under them
            Tree.forEachChunk(repo::load, s.snapshot().tree(), seenTrees, action);
        } else {
            throw new RepositoryException("snapshot " + s.shortId() + " is of kind '" + s.snapshot().kind()
                    + "', which this Ferry cannot read; prune stops rather than delete its data");
        }
    }
}
