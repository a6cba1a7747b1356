package dev.ferry.repo;

import dev.ferry.crypto.Hashes;
import dev.ferry.progress.ProgressListener;
import dev.ferry.store.NoSuchObjectException;
import dev.ferry.store.Store;
import dev.ferry.store.StoreObject;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

/**
 * Checks a repository. Structure: key slots parse and match their names, every index file decrypts and
 * matches its name, every pack an index names exists, and its header lists each indexed chunk at the indexed
 * place. Packs no index names have their headers read: those holding chunks snapshots use are errors (an
 * index file was lost or damaged: {@link IndexRepair} indexes them again), the others are leftovers of
 * interrupted backups. With {@code readData}: every pack is downloaded, checked against its SHA-256 name, and every chunk
 * is decrypted, decompressed and re-hashed against its id.
 *
 * <p>Progress goes two ways: short messages naming each step (for {@code -v}), and a {@link ProgressListener} that
 * hears the phases "reading index files" (files), "reading snapshot objects" and "checking snapshots"
 * (snapshots), then either "reading packs" (bytes, toward the listed size of every indexed pack: what the
 * read-back of a healthy repository reads) or "checking pack headers" (packs).
 */
public final class Verifier {
    private static final int MAX_ERRORS_PER_PACK = 10;
    /** Largest ranged read when reading packs back. */
    static final int READ_WINDOW = 8 << 20;

    private final Repository repo;
    private final Store store;
    private final Consumer<String> progress;
    private final ProgressListener listener;
    private final int readWindow;
    private final SnapshotKinds kinds;
    private final java.util.Set<ChunkId> verifiedTrees = java.util.concurrent.ConcurrentHashMap.newKeySet();

    public Verifier(Repository repo, Consumer<String> progress) {
        this(repo, progress, ProgressListener.NONE);
    }

    /**
     * @param progress a message at each step
     * @param listener hears the phases and how far each has got (see the class comment)
     */
    public Verifier(Repository repo, Consumer<String> progress, ProgressListener listener) {
        this(repo, progress, listener, READ_WINDOW);
    }

    Verifier(Repository repo, Consumer<String> progress, int readWindow) {
        this(repo, progress, ProgressListener.NONE, readWindow);
    }

    Verifier(Repository repo, Consumer<String> progress, ProgressListener listener, int readWindow) {
        this(repo, progress, listener, readWindow, SnapshotKinds.load());
    }

    /** A verify that checks snapshots of the {@code kinds} given and reports any other kind as an error. */
    public Verifier(Repository repo, Consumer<String> progress, ProgressListener listener, SnapshotKinds kinds) {
        this(repo, progress, listener, READ_WINDOW, kinds);
    }

    Verifier(Repository repo, Consumer<String> progress, ProgressListener listener, int readWindow,
             SnapshotKinds kinds) {
        this.kinds = java.util.Objects.requireNonNull(kinds, "kinds");
        this.repo = repo;
        this.store = repo.store();
        this.progress = progress;
        this.listener = listener;
        this.readWindow = readWindow;
    }

    /** What verify found. Errors are damage; warnings are leftovers that do not lose data. */
    public record Report(int keySlots, int indexFiles, int packs, long chunks, int snapshots, long bytesRead,
                         List<String> errors, List<String> warnings) {
        public boolean ok() {
            return errors.isEmpty();
        }
    }

    public Report verify(boolean readData, int threads) throws IOException {
        List<String> errors = Collections.synchronizedList(new ArrayList<>());
        List<String> warnings = Collections.synchronizedList(new ArrayList<>());
        AtomicLong bytesRead = new AtomicLong();

        progress.accept("checking key slots");
        List<StoreObject> slots = store.list(KeySlot.PREFIX);
        for (StoreObject o : slots) {
            try {
                byte[] json = store.get(o.name());
                if (!KeySlot.objectName(json).equals(o.name())) {
                    errors.add(o.name() + ": content does not match its name");
                }
                KeySlot.parse(o.name(), json);
            } catch (RepositoryException e) {
                errors.add(e.getMessage());
            }
        }

        progress.accept("checking index files");
        listener.phase("reading index files", 0, "files");
        List<RepositoryException> indexErrors = new ArrayList<>();
        Map<String, IndexFile> indexFiles = repo.readIndexFiles(indexErrors);
        listener.advance(indexFiles.size() + indexErrors.size());
        List<RepositoryException> lost = IndexFile.unreplacedDamage(indexFiles, indexErrors);
        for (RepositoryException e : indexErrors) {
            if (lost.contains(e)) {
                errors.add(e.getMessage() + " (its chunks cannot be found; 'ferry repair index' rebuilds the index "
                        + "from the packs)");
            } else {
                warnings.add(e.getMessage() + " (superseded by a readable index file, so nothing is lost; prune "
                        + "removes it)");
            }
        }
        Map<PackId, Map<ChunkId, PackEntry>> expected = new TreeMap<>();
        // distinct chunks: concurrent writers may each have stored the same chunk in a pack of their own
        ChunkIndex distinct = new ChunkIndex();
        for (IndexFile f : IndexFile.current(indexFiles).values()) {
            for (Map.Entry<PackId, List<PackEntry>> p : f.packs().entrySet()) {
                Map<ChunkId, PackEntry> m = expected.computeIfAbsent(p.getKey(), k -> new HashMap<>());
                for (PackEntry e : p.getValue()) {
                    m.putIfAbsent(e.id(), e);
                    distinct.add(p.getKey(), e);
                }
            }
        }

        progress.accept("listing packs");
        Map<PackId, Long> stored = new HashMap<>();
        for (StoreObject o : store.list("data/")) {
            PackId id = PackId.fromObjectName(o.name());
            if (id == null) {
                warnings.add(o.name() + ": unexpected object in data/ (not a pack name)");
            } else {
                stored.put(id, o.size());
            }
        }
        // packs no index names: their headers say whether snapshots need their chunks (an index file that was
        // lost or damaged) or nothing does (a backup killed before it wrote its index)
        List<PackId> unindexedPacks = new ArrayList<>();
        for (PackId id : new TreeMap<>(stored).keySet()) {
            if (!expected.containsKey(id)) {
                unindexedPacks.add(id);
            }
        }
        ChunkIndex orphans = new ChunkIndex();
        java.util.Set<PackId> headerRead = new java.util.HashSet<>();
        for (PackId id : unindexedPacks) {
            String name = id.objectName();
            try {
                for (PackEntry e : Pack.readHeader(name, stored.get(id), (off, len) -> store.getRange(name, off, len),
                        repo.masterKey().aead())) {
                    orphans.add(id, e);
                }
                headerRead.add(id);
            } catch (NoSuchObjectException e) {
                // deleted meanwhile (a prune): nothing to say about it
            } catch (RepositoryException | java.io.EOFException e) {
                warnings.add(name + ": pack is in no index and its header cannot be read (" + e.getMessage()
                        + "); prune will remove it");
            }
        }

        progress.accept("checking snapshots");
        listener.phase("reading snapshot objects", 0, "snapshots");
        // damage is reported; a store that fails to return a snapshot fails verify, as it says nothing of the data
        Snapshots.Listing listing = new Snapshots(repo).readAll();
        List<Snapshots.Stored> snaps = listing.snapshots();
        listener.advance(snaps.size() + listing.damaged().size());
        listing.damaged().forEach(d -> errors.add(d.describe() + "; remove it with 'ferry repair snapshots' (or "
                + "'ferry forget " + d.shortId() + "')"));
        int snapshotCount = snaps.size() + listing.damaged().size();
        listener.phase("checking snapshots", snaps.size(), "snapshots");
        java.util.Set<PackId> needed = new java.util.HashSet<>();
        Lookup lookup = new Lookup(distinct, orphans, needed);
        for (Snapshots.Stored s : snaps) {
            checkSnapshot(s, lookup, errors);
            listener.advance(1);
        }
        for (PackId id : unindexedPacks) {
            if (needed.contains(id)) {
                errors.add(id.objectName() + ": pack is in no index, but snapshots use its chunks: run 'ferry "
                        + "repair index' to index it again");
            } else if (headerRead.contains(id) && !lost.isEmpty()) {
                warnings.add(id.objectName() + ": pack is in no readable index (a damaged index file may have named "
                        + "it: 'ferry repair index' indexes it again); no snapshot needs its chunks from it");
            } else if (headerRead.contains(id)) {
                warnings.add(id.objectName() + ": pack is in no index and no snapshot uses its chunks (left by an "
                        + "interrupted backup); prune will remove it");
            }
        }

        progress.accept((readData ? "reading all data of " : "checking headers of ") + expected.size() + " packs");
        if (readData) {
            long toRead = 0;
            for (PackId id : expected.keySet()) {
                toRead += stored.getOrDefault(id, 0L); // a missing pack is reported, not read
            }
            listener.phase("reading packs", toRead);
        } else {
            listener.phase("checking pack headers", expected.size(), "packs");
        }
        ExecutorService pool = Executors.newFixedThreadPool(Math.max(1, threads));
        try {
            List<Future<?>> futures = new ArrayList<>();
            AtomicLong done = new AtomicLong();
            for (Map.Entry<PackId, Map<ChunkId, PackEntry>> p : expected.entrySet()) {
                futures.add(pool.submit(() -> {
                    checkPack(p.getKey(), stored.get(p.getKey()), p.getValue(), readData, errors, bytesRead);
                    if (!readData) {
                        listener.advance(1);
                    }
                    long n = done.incrementAndGet();
                    if (n % 50 == 0) {
                        progress.accept(n + "/" + expected.size() + " packs checked");
                    }
                    return null;
                }));
            }
            for (Future<?> f : futures) {
                f.get();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new java.io.InterruptedIOException("verify interrupted");
        } catch (ExecutionException e) {
            throw new IOException("verify failed: " + e.getCause().getMessage(), e.getCause());
        } finally {
            pool.shutdownNow();
        }
        List<String> sortedErrors = new ArrayList<>(errors);
        Collections.sort(sortedErrors);
        List<String> sortedWarnings = new ArrayList<>(warnings);
        Collections.sort(sortedWarnings);
        return new Report(slots.size(), indexFiles.size() + indexErrors.size(), expected.size(), distinct.size(),
                snapshotCount, bytesRead.get(), sortedErrors, sortedWarnings);
    }

    /**
     * Checks that a snapshot's manifest is consistent and that every chunk it uses (pages and blocks) is
     * indexed; pages are read and authenticated, data chunks are checked with the packs.
     */
    private void checkSnapshot(Snapshots.Stored s, Lookup index, List<String> errors) throws IOException {
        java.util.Optional<SnapshotKind> kind = kinds.find(s.snapshot().kind());
        if (kind.isEmpty()) {
            errors.add(Snapshots.PREFIX + s.id() + ": snapshot of unknown kind '" + s.snapshot().kind()
                    + "', which this Ferry cannot read (it knows " + String.join(", ", kinds.names())
                    + "); prune refuses to run while it is there");
            return;
        }
        SnapshotKind.Reader reader = id -> {
            var loc = index.lookup(id);
            if (loc.isEmpty()) {
                throw new RepositoryException("chunk " + id.shortHex() + " is in no index file");
            }
            return readIndexed(loc.get());
        };
        kind.get().check(s, reader, verifiedTrees, index::contains, errors::add);
    }

    /**
     * Finds chunks for the snapshot checks: in the index, else in the headers of packs no index names, which
     * are then {@code needed} (the pack's error says so once, instead of an error per chunk).
     */
    private record Lookup(ChunkIndex index, ChunkIndex orphans, java.util.Set<PackId> needed) {
        java.util.Optional<ChunkIndex.Location> lookup(ChunkId id) {
            var loc = index.lookup(id);
            if (loc.isPresent()) {
                return loc;
            }
            loc = orphans.lookup(id);
            loc.ifPresent(l -> needed.add(l.pack()));
            return loc;
        }

        boolean contains(ChunkId id) {
            return lookup(id).isPresent();
        }
    }

    /** Reads and opens the chunk at {@code loc}, a location from the index this verify built. */
    private byte[] readIndexed(ChunkIndex.Location loc) throws IOException {
        String pack = loc.pack().objectName();
        byte[] sealed = store.getRange(pack, loc.entry().offset(), loc.entry().length());
        return repo.openChunk(pack, loc.entry(), sealed, 0);
    }

    /**
     * Reads a pack front to back in windows of at most {@code readWindow} bytes (or one chunk, if a chunk is
     * larger), hashing every byte against the pack's name and opening every chunk. Memory stays bounded
     * whatever the pack size, and S3 sees a few large ranged GETs per pack.
     */
    private void readWholePack(PackId id, long size, List<PackEntry> header, List<String> packErrors,
                               AtomicLong bytesRead) throws IOException {
        String name = id.objectName();
        List<PackEntry> sorted = new ArrayList<>(header);
        sorted.sort(java.util.Comparator.comparingLong(PackEntry::offset));
        java.security.MessageDigest sha = Hashes.sha256();
        long pos = 0;
        int i = 0;
        while (i < sorted.size()) {
            if (sorted.get(i).offset() < pos) {
                packErrors.add(name + ": chunk " + sorted.get(i).id().shortHex() + " overlaps the chunk before it");
                i++;
                continue;
            }
            long start = pos;
            long end = sorted.get(i).end();
            int j = i + 1;
            while (j < sorted.size() && sorted.get(j).offset() >= end && sorted.get(j).end() - start <= readWindow) {
                end = sorted.get(j).end();
                j++;
            }
            byte[] buf = store.getRange(name, start, Math.toIntExact(end - start));
            sha.update(buf);
            bytesRead.addAndGet(buf.length);
            listener.advance(buf.length);
            for (int k = i; k < j; k++) {
                PackEntry e = sorted.get(k);
                try {
                    repo.openChunk(name, e, buf, Math.toIntExact(e.offset() - start));
                } catch (RepositoryException ex) {
                    packErrors.add(ex.getMessage());
                }
            }
            pos = end;
            i = j;
        }
        while (pos < size) { // header and trailer
            int n = (int) Math.min(readWindow, size - pos);
            byte[] buf = store.getRange(name, pos, n);
            sha.update(buf);
            bytesRead.addAndGet(n);
            listener.advance(n);
            pos += n;
        }
        String actual = Hashes.hex(sha.digest());
        if (!actual.equals(id.hex())) {
            packErrors.add(name + ": content does not match its name (SHA-256 " + actual.substring(0, 16) + "...)");
        }
    }

    private void checkPack(PackId id, Long size, Map<ChunkId, PackEntry> indexed, boolean readData,
                           List<String> errors, AtomicLong bytesRead) throws IOException {
        String name = id.objectName();
        if (size == null) {
            errors.add(name + ": pack is missing, " + indexed.size() + " indexed chunk(s) are lost");
            return;
        }
        List<String> packErrors = new ArrayList<>();
        try {
            List<PackEntry> header = Pack.readHeader(name, size, (off, len) -> store.getRange(name, off, len),
                    repo.masterKey().aead());
            Map<ChunkId, PackEntry> inHeader = new HashMap<>();
            header.forEach(e -> inHeader.put(e.id(), e));
            for (PackEntry e : indexed.values()) {
                PackEntry h = inHeader.get(e.id());
                if (h == null) {
                    packErrors.add(name + ": indexed chunk " + e.id().shortHex() + " is not in the pack");
                } else if (!h.equals(e)) {
                    packErrors.add(name + ": chunk " + e.id().shortHex() + " is at " + h.offset() + "+" + h.length()
                            + " in the pack but at " + e.offset() + "+" + e.length() + " in the index");
                }
            }
            if (readData) {
                readWholePack(id, size, header, packErrors, bytesRead);
            }
        } catch (NoSuchObjectException e) {
            packErrors.add(name + ": pack disappeared while verifying (deleted by a concurrent prune?)");
        } catch (RepositoryException e) {
            packErrors.add(e.getMessage());
        } catch (java.io.EOFException e) {
            packErrors.add(name + ": pack is shorter than listed: " + e.getMessage());
        }
        if (packErrors.size() > MAX_ERRORS_PER_PACK) {
            int more = packErrors.size() - MAX_ERRORS_PER_PACK;
            packErrors = new ArrayList<>(packErrors.subList(0, MAX_ERRORS_PER_PACK));
            packErrors.add(name + ": ... and " + more + " more error(s) in this pack");
        }
        errors.addAll(packErrors);
    }
}
