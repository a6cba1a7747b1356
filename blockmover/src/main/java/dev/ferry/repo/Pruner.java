package dev.ferry.repo;

import dev.ferry.progress.ProgressListener;
import dev.ferry.store.Store;
import dev.ferry.store.StoreObject;
import dev.ferry.util.Sizes;
import java.io.IOException;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.time.Clock;
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
 *   <li>list {@code data/}; read every snapshot and collect the chunks they use; read the current index, and
 *       refuse if an index file cannot be read (the packs it names would look unused);</li>
 *   <li>of a used chunk several packs hold, one copy counts and the others are unused ({@link #chooseCopies});
 *       packs whose chunks are all unused are garbage; packs with at least {@code repackShare} of their bytes
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
 *
 * <p>A dry run makes the same plan from the same look at the repository (steps 1 and 2) and reports what the
 * real run would do with it, figure for figure, without writing or deleting anything: the packs it would delete
 * (unused, rewritten, in no index) or leave while a backup runs, the bytes it would copy, the index files it
 * would replace, and the unused bytes that stay in packs below the repack threshold. The two differ only if
 * the repository changes in between.
 *
 * <p>Progress goes to a {@link ProgressListener} in phases: "listing" (objects), "reading snapshots"
 * (snapshots), "reading index files" (files), then in a real run "repacking N packs" (bytes to copy), "checking
 * for new snapshots" (snapshots) and "deleting" (packs), the last two only when no backup runs.
 */
public final class Pruner {
    private static final Logger log = LoggerFactory.getLogger(Pruner.class);
    public static final double DEFAULT_REPACK_SHARE = 0.25;

    /**
     * What prune found and did, or in a dry run would do; the figures mean the same in both.
     *
     * @param snapshots          snapshots read
     * @param packsBefore        packs listed in {@code data/} at the start (indexed or not)
     * @param bytesBefore        their size
     * @param packsDeleted       packs deleted (0 while a backup runs)
     * @param bytesDeleted       their size
     * @param packsRepacked      packs whose used chunks were copied into new packs (they are then deleted or
     *                           deferred with the others)
     * @param bytesRewritten     bytes copied: the sealed chunks still in use, each once, unless a kept pack has it
     * @param packsDeferred      packs no longer needed that stay because a backup runs
     * @param bytesDeferred      their size
     * @param unusedPacks        of the packs deleted or deferred, those no snapshot used any chunk of
     * @param repackedPacks      of them, those rewritten
     * @param unindexedPacks     of them, those no index file names (left by killed backups)
     * @param packsUsedMeanwhile packs prune meant to delete but kept: snapshots stored while it ran use them
     * @param indexFilesReplaced index files replaced by one that supersedes them
     * @param locksRemoved       stale locks of processes that died, removed
     * @param chunksNamedAgain   chunks of snapshots stored while prune ran, named again in a new index file
     * @param runningLocks       the live locks that made prune defer deleting
     * @param packsWithUnused    kept packs that hold unused chunks: under the repack threshold
     * @param bytesUnused        the size of those unused chunks, which stay
     * @param repackShare        the repack threshold: the share of a pack's bytes unused at which it is rewritten
     * @param dryRun             whether nothing was changed
     * @param duplicateCopies    copies of used chunks beyond the one that counts (several packs held the chunk),
     *                           which are then unused: dropped from the index, deleted with their packs or kept
     *                           among the unused bytes below the threshold
     * @param duplicateBytes     their size
     */
    public record Result(int snapshots, int packsBefore, long bytesBefore, int packsDeleted, long bytesDeleted,
                         int packsRepacked, long bytesRewritten, int packsDeferred, long bytesDeferred,
                         int unusedPacks, int repackedPacks, int unindexedPacks, int packsUsedMeanwhile,
                         int indexFilesReplaced, int locksRemoved, int chunksNamedAgain, List<String> runningLocks,
                         int packsWithUnused, long bytesUnused, double repackShare, boolean dryRun,
                         int duplicateCopies, long duplicateBytes) {
        public Result {
            runningLocks = List.copyOf(runningLocks);
        }

        /**
         * The summary as lines of text: the same lines in a dry run and a real one, with "would" where nothing
         * was done, so that both show the same figures in the same places.
         */
        public List<String> summary() {
            List<String> out = new ArrayList<>();
            out.add(String.format("%d snapshot(s); %d pack(s) of %s in the repository", snapshots, packsBefore,
                    Sizes.human(bytesBefore)));
            if (duplicateCopies > 0) {
                out.add(String.format("%d extra cop%s of chunks stored more than once (%s) %s unused",
                        duplicateCopies, duplicateCopies == 1 ? "y" : "ies", Sizes.human(duplicateBytes),
                        dryRun ? "would count as" : "counted as"));
            }
            if (packsRepacked > 0) {
                out.add(String.format("%s %d pack(s) with unused chunks: %s %s still in use into new packs",
                        dryRun ? "would rewrite" : "rewrote", packsRepacked, dryRun ? "copy" : "copied",
                        Sizes.human(bytesRewritten)));
            }
            String why = String.format("%d unused, %d rewritten, %d in no index", unusedPacks, repackedPacks,
                    unindexedPacks);
            out.add(String.format("%s %d pack(s) of %s%s", dryRun ? "would delete" : "deleted", packsDeleted,
                    Sizes.human(bytesDeleted), packsDeleted > 0 ? ": " + why : ""));
            if (packsDeferred > 0) {
                out.add(String.format("%d pack(s) of %s (%s) are no longer used but %s while a backup runs: %s",
                        packsDeferred, Sizes.human(bytesDeferred), why, dryRun ? "would stay" : "stay",
                        String.join("; ", runningLocks)));
                out.add("run prune again when no backup is running to delete them");
            }
            if (packsUsedMeanwhile > 0) {
                out.add(String.format("%d pack(s) stay after all: snapshots stored while prune ran use them",
                        packsUsedMeanwhile));
            }
            if (indexFilesReplaced > 0) {
                out.add(String.format("%s %d index file(s) with one", dryRun ? "would replace" : "replaced",
                        indexFilesReplaced));
            }
            if (packsWithUnused > 0) {
                out.add(String.format("%s unused in %d pack(s) %s: under the %s%% repack threshold",
                        Sizes.human(bytesUnused), packsWithUnused, dryRun ? "would stay" : "stay",
                        percent(repackShare)));
            }
            if (locksRemoved > 0) {
                out.add(String.format("%s %d stale lock(s) of processes that died",
                        dryRun ? "would remove" : "removed", locksRemoved));
            }
            return out;
        }

        /** The figures of {@link #summary()}, under snake_case keys, for {@code --json}. */
        public Map<String, Object> json() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("dry_run", dryRun);
            m.put("snapshots", snapshots);
            m.put("packs_before", packsBefore);
            m.put("bytes_before", bytesBefore);
            m.put("packs_rewritten", packsRepacked);
            m.put("bytes_copied", bytesRewritten);
            m.put("packs_deleted", packsDeleted);
            m.put("bytes_deleted", bytesDeleted);
            m.put("packs_deferred", packsDeferred);
            m.put("bytes_deferred", bytesDeferred);
            m.put("running_locks", runningLocks);
            m.put("unused_packs", unusedPacks);
            m.put("rewritten_packs", repackedPacks);
            m.put("unindexed_packs", unindexedPacks);
            m.put("packs_used_meanwhile", packsUsedMeanwhile);
            m.put("chunks_named_again", chunksNamedAgain);
            m.put("index_files_replaced", indexFilesReplaced);
            m.put("packs_with_unused_kept", packsWithUnused);
            m.put("bytes_unused_kept", bytesUnused);
            m.put("repack_threshold_percent", new BigDecimal(percent(repackShare)));
            m.put("stale_locks_removed", locksRemoved);
            m.put("duplicate_copies", duplicateCopies);
            m.put("duplicate_bytes", duplicateBytes);
            return m;
        }

        /** 0.25 as "25", 0.125 as "12.5". */
        private static String percent(double share) {
            return BigDecimal.valueOf(share * 100).setScale(2, RoundingMode.HALF_UP).stripTrailingZeros()
                    .toPlainString();
        }
    }

    /** A used chunk of a pack being rewritten, to be copied into a new pack. */
    private record Copy(PackId pack, PackEntry entry) {
    }

    private final Repository repo;
    private final Store store;
    private final Clock clock;
    private final SnapshotKinds kinds;
    private final double repackShare;
    private final ProgressListener progress;
    /** Trees already walked by this prune: snapshots of one source share most of them. */
    private final Set<ChunkId> seenTrees = new HashSet<>();

    public Pruner(Repository repo, Clock clock, double repackShare) {
        this(repo, clock, repackShare, ProgressListener.NONE);
    }

    /** A prune that reports its phases (see the class comment) to {@code progress}. */
    public Pruner(Repository repo, Clock clock, double repackShare, ProgressListener progress) {
        this(repo, clock, repackShare, progress, SnapshotKinds.load());
    }

    /** A prune that reads snapshots of the {@code kinds} given, and refuses to run beside any other kind. */
    public Pruner(Repository repo, Clock clock, double repackShare, ProgressListener progress, SnapshotKinds kinds) {
        this.kinds = java.util.Objects.requireNonNull(kinds, "kinds");
        if (repackShare <= 0 || repackShare > 1) {
            throw new IllegalArgumentException("the repack share is above 0 and at most 1, not " + repackShare);
        }
        this.repo = repo;
        this.store = repo.store();
        this.clock = clock;
        this.repackShare = repackShare;
        this.progress = java.util.Objects.requireNonNull(progress, "progress");
    }

    /** Runs prune while holding a prune lock; refuses if another prune runs. */
    public Result run(String hostname, boolean dryRun) throws IOException {
        return run(hostname, dryRun, Set.of());
    }

    /**
     * A dry run that takes the snapshots {@code forgotten} as gone: what prune would do after a forget that a
     * dry run of forget only listed.
     */
    public Result dryRunAfterForget(String hostname, Set<String> forgotten) throws IOException {
        return run(hostname, true, forgotten);
    }

    private Result run(String hostname, boolean dryRun, Set<String> forgotten) throws IOException {
        try (RepositoryLock lock = repo.lock("prune", hostname, clock)) {
            lock.refuseBeside(f -> f.heldFor("prune"::equals),
                    f -> "another prune is running: " + f.describe() + "; try again later");
            return prune(lock, dryRun, forgotten);
        }
    }

    /** Prune itself; {@code forgotten}: snapshots a dry run takes as gone (see {@link #dryRunAfterForget}). */
    private Result prune(RepositoryLock lock, boolean dryRun, Set<String> forgotten) throws IOException {
        // 1. what is there, and what is used
        progress.phase("listing", 0, "objects");
        Map<PackId, Long> listed = new HashMap<>();
        long bytesBefore = 0;
        for (StoreObject o : store.list("data/")) {
            PackId id = PackId.fromObjectName(o.name());
            if (id != null) {
                listed.put(id, o.size());
                bytesBefore += o.size();
            }
        }
        progress.advance(listed.size());
        // the index loaded when the repository was opened already tells of damage: say so before reading snapshots,
        // whose manifests may live in the packs the damaged file named (read again below, before anything is written)
        refuseIncompleteIndex(Map.of(), repo.indexDamage());
        Snapshots snapshots = new Snapshots(repo);
        // a snapshot that cannot be read uses data nobody knows: prune refuses rather than delete it
        List<Snapshots.Stored> snaps = snapshots.readAll().requireAllReadable("prune", forgotten).stream()
                .filter(x -> !forgotten.contains(x.id())).toList();
        progress.advance(snaps.size());
        progress.phase("reading snapshots", snaps.size(), "snapshots");
        ChunkIdSet used = new ChunkIdSet();
        for (Snapshots.Stored s : snaps) {
            collect(s, used::add);
            progress.advance(1);
        }
        progress.phase("reading index files", 0, "files");
        List<RepositoryException> indexErrors = new ArrayList<>();
        Map<String, IndexFile> read = repo.readIndexFiles(indexErrors);
        progress.advance(read.size() + indexErrors.size());
        refuseIncompleteIndex(read, indexErrors);
        // damaged files that a readable one supersedes lost nothing: they go with the files they were replaced with
        Set<String> damagedSuperseded = new HashSet<>();
        indexErrors.forEach(e -> damagedSuperseded.add(IndexFile.damagedName(e)));
        Map<String, IndexFile> current = IndexFile.current(read);
        Map<PackId, Map<ChunkId, PackEntry>> indexed = new LinkedHashMap<>();
        for (IndexFile f : current.values()) {
            f.packs().forEach((p, es) -> {
                Map<ChunkId, PackEntry> m = indexed.computeIfAbsent(p, k -> new LinkedHashMap<>());
                es.forEach(e -> m.putIfAbsent(e.id(), e));
            });
        }

        // 2. one copy of each used chunk counts: where several packs hold it (concurrent writers, or a prune
        // killed after copying), the others are unused like any other chunk no snapshot refers to
        Map<ChunkId, PackId> owner = chooseCopies(indexed, listed, used);
        int duplicateCopies = 0;
        long duplicateBytes = 0;
        for (Map.Entry<PackId, Map<ChunkId, PackEntry>> p : indexed.entrySet()) {
            for (PackEntry e : p.getValue().values()) {
                if (used.contains(e.id()) && !p.getKey().equals(owner.get(e.id()))) {
                    duplicateCopies++;
                    duplicateBytes += e.length();
                }
            }
        }
        // classify packs: wholly unused (garbage), worth rewriting, or kept (counting what stays unused in them)
        Set<PackId> garbage = new HashSet<>();
        List<PackId> repack = new ArrayList<>();
        List<PackId> keptWithUnused = new ArrayList<>();
        for (Map.Entry<PackId, Map<ChunkId, PackEntry>> p : indexed.entrySet()) {
            Long size = listed.get(p.getKey());
            if (size == null) {
                throw new RepositoryException("pack " + p.getKey().objectName() + " is named by the index but missing "
                        + "from the store; prune stops so as not to make things worse (run 'ferry verify')");
            }
            long usedBytes = 0;
            int usedCount = 0;
            for (PackEntry e : p.getValue().values()) {
                if (p.getKey().equals(owner.get(e.id()))) {
                    usedBytes += e.length();
                    usedCount++;
                }
            }
            if (usedCount == 0) {
                garbage.add(p.getKey());
            } else if (usedCount < p.getValue().size() && size - usedBytes >= repackShare * size) {
                repack.add(p.getKey());
            } else if (usedCount < p.getValue().size()) {
                keptWithUnused.add(p.getKey());
            }
        }
        // only packs that no current index file names are unindexed: a pack that only superseded files name was
        // dropped from the index by a prune that did not get to delete it (and every backup that may still use
        // it holds a lock, so nothing is deleted while it runs, and names its chunks again before it commits)
        Set<PackId> unindexed = new HashSet<>(listed.keySet());
        unindexed.removeAll(indexed.keySet());
        Set<PackId> wholly = Set.copyOf(garbage);
        Set<PackId> rewrite = Set.copyOf(repack);
        // what rewriting copies: each used chunk once, and none that a kept pack holds as well (that copy is
        // then the one that counts)
        Map<ChunkId, Copy> copies = new LinkedHashMap<>();
        for (PackId p : repack) {
            for (PackEntry e : indexed.get(p).values()) {
                if (p.equals(owner.get(e.id()))) {
                    copies.putIfAbsent(e.id(), new Copy(p, e));
                }
            }
        }
        if (!copies.isEmpty()) {
            for (Map.Entry<PackId, Map<ChunkId, PackEntry>> p : indexed.entrySet()) {
                if (!garbage.contains(p.getKey()) && !rewrite.contains(p.getKey())) {
                    for (ChunkId id : p.getValue().keySet()) {
                        if (copies.remove(id) != null) {
                            owner.put(id, p.getKey());
                        }
                    }
                }
            }
        }
        // unused bytes that stay in kept packs below the threshold (duplicate copies included)
        int packsWithUnused = 0;
        long bytesUnused = 0;
        for (PackId p : keptWithUnused) {
            long unusedBytes = 0;
            for (PackEntry e : indexed.get(p).values()) {
                if (!p.equals(owner.get(e.id()))) {
                    unusedBytes += e.length();
                }
            }
            if (unusedBytes > 0) {
                packsWithUnused++;
                bytesUnused += unusedBytes;
            }
        }
        long bytesToCopy = copies.values().stream().mapToLong(c -> c.entry().length()).sum();
        boolean replaceIndex = !read.isEmpty() && (!garbage.isEmpty() || !repack.isEmpty() || read.size() > 1
                || duplicateCopies > 0 || !damagedSuperseded.isEmpty());
        int replaced = replaceIndex ? read.size() + damagedSuperseded.size() : 0;
        if (dryRun) {
            Set<PackId> deletable = new HashSet<>(garbage);
            deletable.addAll(repack);
            deletable.addAll(unindexed);
            long deletableBytes = deletable.stream().mapToLong(listed::get).sum();
            int[] why = reasons(deletable, wholly, rewrite, unindexed);
            LockView locks = lookAtLocks(lock, false);
            boolean defer = !locks.running().isEmpty();
            return new Result(snaps.size(), listed.size(), bytesBefore, defer ? 0 : deletable.size(),
                    defer ? 0 : deletableBytes, repack.size(), bytesToCopy, defer ? deletable.size() : 0,
                    defer ? deletableBytes : 0, why[0], why[1], why[2], 0, replaced, locks.stale(), 0,
                    locks.running(), packsWithUnused, bytesUnused, repackShare, true, duplicateCopies, duplicateBytes);
        }

        // copy used chunks out of packs worth repacking
        long rewritten = 0;
        if (!repack.isEmpty()) {
            progress.phase("repacking " + repack.size() + " packs", bytesToCopy);
        }
        RepositoryWriter copier = repo.newWriter(store, "prune"); // its own packs, beside writers of this process
        try {
            for (Copy c : copies.values()) {
                String name = c.pack().objectName();
                PackEntry e = c.entry();
                byte[] sealed = store.getRange(name, e.offset(), e.length());
                repo.openChunk(name, e, sealed, 0); // never copy damage
                copier.copySealed(e.type(), e.id(), sealed, e.rawLength());
                rewritten += sealed.length;
                progress.advance(sealed.length);
            }
            copier.flush();
        } catch (IOException | RuntimeException e) {
            copier.abandon();
            throw e;
        }
        copier.close();
        garbage.addAll(repack);

        // 3. one index file for every kept pack, replacing the ones read; it names each chunk once: the copy that
        // counts for used chunks, the first one met for unused ones
        Map<PackId, List<PackEntry>> kept = new LinkedHashMap<>();
        ChunkIdSet named = new ChunkIdSet();
        indexed.forEach((p, es) -> {
            if (!garbage.contains(p)) {
                List<PackEntry> entries = new ArrayList<>();
                for (PackEntry e : es.values()) {
                    if (p.equals(owner.get(e.id()))) {
                        entries.add(e);
                        named.add(e.id());
                    }
                }
                kept.put(p, entries);
            }
        });
        indexed.forEach((p, es) -> {
            if (!garbage.contains(p)) {
                for (PackEntry e : es.values()) {
                    if (!used.contains(e.id()) && named.add(e.id())) {
                        kept.get(p).add(e);
                    }
                }
            }
        });
        if (replaceIndex) {
            Set<String> replacedNames = new java.util.LinkedHashSet<>(read.keySet());
            replacedNames.addAll(damagedSuperseded);
            List<String> supersedes = replacedNames.stream().map(n -> n.substring(IndexFile.PREFIX.length()))
                    .toList();
            repo.storeIndexFile(new IndexFile(supersedes, kept));
            for (String n : replacedNames) {
                store.delete(n);
            }
        }

        // 4. a running backup keeps every pack where it is
        LockView locks = lookAtLocks(lock, true);
        List<String> running = locks.running();
        int locksRemoved = locks.stale();
        Set<PackId> deletable = new HashSet<>(garbage);
        deletable.addAll(unindexed);
        long deletableBytes = deletable.stream().mapToLong(listed::get).sum();
        if (!running.isEmpty()) {
            log.info("{} packs ({} bytes) are no longer indexed but stay until a prune runs with no backup running",
                    deletable.size(), deletableBytes);
            int[] why = reasons(deletable, wholly, rewrite, unindexed);
            return new Result(snaps.size(), listed.size(), bytesBefore, 0, 0, repack.size(), rewritten,
                    deletable.size(), deletableBytes, why[0], why[1], why[2], 0, replaced, locksRemoved, 0, running,
                    packsWithUnused, bytesUnused, repackShare, false, duplicateCopies, duplicateBytes);
        }

        // 5. look again: whatever is indexed now stays; snapshots stored meanwhile keep what they use
        int planned = deletable.size();
        progress.phase("checking for new snapshots", 0, "snapshots");
        ChunkIndex now2 = new ChunkIndex();
        List<RepositoryException> againErrors = new ArrayList<>();
        Map<String, IndexFile> readAgain = repo.readIndexFiles(againErrors);
        refuseIncompleteIndex(readAgain, againErrors); // it may name packs: delete nothing
        for (IndexFile f : IndexFile.current(readAgain).values()) {
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
        for (Snapshots.Stored s : snapshots.readAll().requireAllReadable("prune", Set.of())) {
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
            progress.advance(1);
        }
        if (!again.isEmpty()) {
            repo.storeIndexFile(new IndexFile(List.of(), again));
        }
        progress.phase("deleting", deletable.size(), "packs");
        long deletedBytes = 0;
        for (PackId p : deletable) {
            store.delete(p.objectName());
            deletedBytes += listed.get(p);
            progress.advance(1);
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
        int[] why = reasons(deletable, wholly, rewrite, unindexed);
        return new Result(snaps.size(), listed.size(), bytesBefore, deletable.size(), deletedBytes, repack.size(),
                rewritten, 0, 0, why[0], why[1], why[2], planned - deletable.size(), replaced, locksRemoved,
                namedAgain.size(), List.of(), packsWithUnused, bytesUnused, repackShare, false, duplicateCopies,
                duplicateBytes);
    }

    /**
     * Refuses to go on while an index file that nothing replaces cannot be read: the packs it names would look
     * unindexed, and prune would delete chunks that snapshots use.
     */
    private static void refuseIncompleteIndex(Map<String, IndexFile> read, List<RepositoryException> errors)
            throws RepositoryException {
        for (RepositoryException e : errors) {
            if (!(e instanceof RepositoryException.Damaged)) {
                throw e;
            }
        }
        List<RepositoryException> damage = IndexFile.unreplacedDamage(read, errors);
        if (!damage.isEmpty()) {
            throw new RepositoryException("prune refuses to run: " + IndexFile.describeDamage(damage)
                    + ", so it cannot tell which packs hold chunks that snapshots use; run 'ferry repair index' "
                    + "to rebuild the index from the packs, then prune again");
        }
    }

    /**
     * For each used chunk, the pack whose copy counts. A chunk only one pack holds is there; of several copies,
     * the one in a pack that holds a used chunk no other pack holds (a pack that stays anyway) is preferred, else
     * the one in the pack with the largest share of used bytes, so that the fewest packs are kept or rewritten.
     * Ties go to the lowest pack id, so a dry run and the real run choose alike.
     */
    private static Map<ChunkId, PackId> chooseCopies(Map<PackId, Map<ChunkId, PackEntry>> indexed,
                                                     Map<PackId, Long> listed, ChunkIdSet used) {
        Map<ChunkId, PackId> owner = new HashMap<>();
        Map<ChunkId, List<PackId>> holders = new HashMap<>();
        Map<PackId, Long> usedBytes = new HashMap<>();
        for (Map.Entry<PackId, Map<ChunkId, PackEntry>> p : indexed.entrySet()) {
            for (PackEntry e : p.getValue().values()) {
                if (!used.contains(e.id())) {
                    continue;
                }
                usedBytes.merge(p.getKey(), (long) e.length(), Long::sum);
                PackId first = owner.putIfAbsent(e.id(), p.getKey());
                if (first != null) {
                    holders.computeIfAbsent(e.id(), k -> new ArrayList<>(List.of(first))).add(p.getKey());
                }
            }
        }
        if (holders.isEmpty()) {
            return owner;
        }
        Set<PackId> anchored = new HashSet<>();
        owner.forEach((id, p) -> {
            if (!holders.containsKey(id)) {
                anchored.add(p);
            }
        });
        java.util.Comparator<PackId> better = java.util.Comparator
                .comparing((PackId p) -> !anchored.contains(p))
                .thenComparing(p -> -(double) usedBytes.getOrDefault(p, 0L) / Math.max(1L, listed.getOrDefault(p, 1L)))
                .thenComparing(java.util.Comparator.naturalOrder());
        List<ChunkId> ids = new ArrayList<>(holders.keySet());
        ids.sort(null);
        for (ChunkId id : ids) {
            PackId chosen = holders.get(id).stream().min(better).orElseThrow();
            owner.put(id, chosen);
            anchored.add(chosen);
        }
        return owner;
    }

    /** How many of {@code packs} are wholly unused, rewritten, and in no index. */
    private static int[] reasons(Set<PackId> packs, Set<PackId> wholly, Set<PackId> rewrite, Set<PackId> unindexed) {
        int[] n = new int[3];
        for (PackId p : packs) {
            if (wholly.contains(p)) {
                n[0]++;
            } else if (rewrite.contains(p)) {
                n[1]++;
            } else if (unindexed.contains(p)) {
                n[2]++;
            } else {
                throw new IllegalStateException("pack " + p.shortHex() + " is to go for no reason");
            }
        }
        return n;
    }

    /** Locks as step 4 finds them: the live ones that defer deleting, and the stale. */
    private record LockView(List<String> running, int stale) {
    }

    /**
     * The other locks, judged as step 4 judges them: live ones (a backup or prune running), and stale ones,
     * which a real run ({@code remove}) deletes and a dry run only counts.
     */
    private LockView lookAtLocks(RepositoryLock lock, boolean remove) throws IOException {
        List<String> running = new ArrayList<>();
        int stale = 0;
        for (RepositoryLock.Unlocked u : RepositoryLock.unlock(store, clock.instant(), lock.processes(), false,
                !remove, lock)) {
            if (u.removed()) {
                stale++;
            } else {
                running.add(u.lock().describe());
            }
        }
        return new LockView(running, stale);
    }

    /**
     * Adds every chunk a snapshot refers to, as its kind says (see {@link SnapshotKind}). Refuses kinds this
     * Ferry cannot read: the data they use must not go.
     */
    private void collect(Snapshots.Stored s, Repository.IoConsumer<ChunkId> action) throws IOException {
        SnapshotKind kind = kinds.require(s, "prune stops rather than delete data it may use");
        // structure shared with a snapshot already walked (trees) was collected with everything under it
        kind.forEachChunk(s, repo::load, seenTrees, action);
    }
}
