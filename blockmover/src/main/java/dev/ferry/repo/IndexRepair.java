package dev.ferry.repo;

import dev.ferry.progress.ProgressListener;
import dev.ferry.store.NoSuchObjectException;
import dev.ferry.store.Store;
import dev.ferry.store.StoreObject;
import java.io.IOException;
import java.time.Clock;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Rebuilds the index from pack headers ({@code ferry repair index}): the header of every pack lists its chunks,
 * which is all an index file says about it. In this order, so that a kill at any point leaves the repository
 * at least as readable as before:
 * <ol>
 *   <li>take a lock and refuse if any other process holds a live one (the repository must be left alone);</li>
 *   <li>read every index file, noting the damaged ones; list {@code data/};</li>
 *   <li>read the header of every pack that no intact current index file names (of every pack with
 *       {@code readAllPacks});</li>
 *   <li>store one index file naming those packs' chunks, whose {@code supersedes} list holds the damaged files
 *       (with {@code readAllPacks}, every file read): readers ignore them from then on;</li>
 *   <li>delete the files it supersedes.</li>
 * </ol>
 */
public final class IndexRepair {
    private static final Logger log = LoggerFactory.getLogger(IndexRepair.class);

    /**
     * What the repair found and did.
     *
     * @param indexFiles     index files listed
     * @param damaged        the damaged ones, each with its cause
     * @param packs          packs listed in {@code data/}
     * @param packsRead      packs whose header was read
     * @param unreadable     packs whose header could not be read, each with its cause: their chunks stay unindexed
     * @param written        the index file stored, or null if nothing needed one
     * @param packsIndexed   packs it names
     * @param chunksIndexed  chunk entries it holds
     * @param removed        index files deleted (superseded by the new one)
     */
    public record Result(int indexFiles, List<String> damaged, int packs, int packsRead, List<String> unreadable,
                         String written, int packsIndexed, int chunksIndexed, int removed) {
        public Result {
            damaged = List.copyOf(damaged);
            unreadable = List.copyOf(unreadable);
        }

        public boolean ok() {
            return unreadable.isEmpty();
        }
    }

    private final Repository repo;
    private final Store store;
    private final Clock clock;
    private final ProgressListener progress;

    public IndexRepair(Repository repo, Clock clock, ProgressListener progress) {
        this.repo = repo;
        this.store = repo.store();
        this.clock = clock;
        this.progress = java.util.Objects.requireNonNull(progress, "progress");
    }

    public Result run(String hostname, boolean readAllPacks) throws IOException {
        try (RepositoryLock lock = repo.lock("repair", hostname, clock)) {
            // any live lock, an unreadable one included
            lock.refuseBeside(f -> true, f -> "another process is using the repository: " + f.describe()
                    + "; repair index needs it to itself: try again when it has finished (or remove a lock "
                    + "you know to be dead with 'ferry unlock')");
            return repair(readAllPacks);
        }
    }

    private Result repair(boolean readAllPacks) throws IOException {
        progress.phase("reading index files", 0, "files");
        List<RepositoryException> errors = new ArrayList<>();
        Map<String, IndexFile> read = repo.readIndexFiles(errors);
        progress.advance(read.size() + errors.size());
        List<String> damagedNames = new ArrayList<>();
        List<String> damaged = new ArrayList<>();
        for (RepositoryException e : errors) {
            String name = IndexFile.damagedName(e);
            if (name == null) {
                throw e; // a failed read, not damage: nothing to repair, and nothing may be deleted
            }
            damagedNames.add(name);
            damaged.add(e.getMessage());
            log.warn("damaged index file: {}", e.getMessage());
        }
        Map<String, IndexFile> current = IndexFile.current(read);

        progress.phase("listing", 0, "objects");
        Map<PackId, Long> listed = new TreeMap<>();
        for (StoreObject o : store.list("data/")) {
            PackId id = PackId.fromObjectName(o.name());
            if (id != null) {
                listed.put(id, o.size());
            }
        }
        progress.advance(listed.size());
        Map<PackId, List<PackEntry>> indexedNow = new LinkedHashMap<>();
        for (IndexFile f : current.values()) {
            f.packs().forEach((p, es) -> indexedNow.computeIfAbsent(p, k -> new ArrayList<>()).addAll(es));
        }
        List<PackId> toRead = new ArrayList<>();
        for (PackId p : listed.keySet()) {
            if (readAllPacks || !indexedNow.containsKey(p)) {
                toRead.add(p);
            }
        }

        progress.phase("reading pack headers", toRead.size(), "packs");
        Map<PackId, List<PackEntry>> packs = new LinkedHashMap<>();
        List<String> unreadable = new ArrayList<>();
        int packsRead = 0;
        for (PackId p : toRead) {
            String name = p.objectName();
            try {
                packs.put(p, Pack.readHeader(name, listed.get(p), (off, len) -> store.getRange(name, off, len),
                        repo.masterKey().aead()));
                packsRead++;
            } catch (NoSuchObjectException gone) {
                log.debug("pack {} vanished while repairing", name);
            } catch (RepositoryException | java.io.EOFException e) {
                unreadable.add(e.getMessage().startsWith(name) ? e.getMessage() : name + ": " + e.getMessage());
                if (readAllPacks && indexedNow.containsKey(p)) {
                    packs.put(p, indexedNow.get(p)); // the intact index still says where its chunks are
                }
            }
            progress.advance(1);
        }

        Set<String> replaced = new LinkedHashSet<>(damagedNames);
        if (readAllPacks) {
            replaced.addAll(read.keySet());
        }
        String written = null;
        int chunks = 0;
        for (List<PackEntry> es : packs.values()) {
            chunks += es.size();
        }
        if (!packs.isEmpty() || !replaced.isEmpty()) {
            // first the new file, then the deletions: killed in between, the old files are superseded and ignored
            List<String> supersedes = replaced.stream().map(n -> n.substring(IndexFile.PREFIX.length())).toList();
            written = repo.storeIndexFile(new IndexFile(supersedes, packs));
            log.info("stored index {} naming {} chunks in {} packs", written, chunks, packs.size());
        }
        int removed = 0;
        for (String n : replaced) {
            try {
                store.delete(n);
                removed++;
            } catch (NoSuchObjectException gone) {
                // already gone
            }
        }
        return new Result(read.size() + errors.size(), damaged, listed.size(), packsRead, unreadable, written,
                packs.size(), chunks, removed);
    }
}
