package dev.ferry.repo;

import dev.ferry.crypto.Aead;
import dev.ferry.crypto.Hashes;
import dev.ferry.store.NoSuchObjectException;
import dev.ferry.store.Store;
import dev.ferry.store.StoreObject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An open, unlocked repository: content-addressed, compressed, encrypted chunks in pack files, found through
 * index files. See docs/FORMAT.md for the layout.
 *
 * <p>Adding data takes no lock: each writer writes packs and index files of its own, named by the SHA-256 of
 * their content, so writers never collide. A pack is stored before the index file that names it, so a chunk
 * that an index names is always there; a writer killed in between leaves an unreferenced pack that prune
 * removes. This class is safe for use by several threads.
 */
public final class Repository implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(Repository.class);
    /** Flush an index file once this many chunks are waiting for one (about 10 MB of plaintext index). */
    static final int INDEX_FLUSH_ENTRIES = 200_000;
    public static final int DEFAULT_ZSTD_LEVEL = 3;

    private final Store store;
    private final RepositoryConfig config;
    private final MasterKey key;
    private final String keySlotName;
    private final Envelope envelope = new Envelope(DEFAULT_ZSTD_LEVEL);
    private final ChunkIndex index = new ChunkIndex();
    private int indexFileCount;

    // writer state, guarded by this
    private Pack.Writer pack;
    private final Set<ChunkId> pending = new HashSet<>();
    private final Map<PackId, List<PackEntry>> unindexed = new LinkedHashMap<>();
    private int unindexedCount;
    private final AtomicLong chunksAdded = new AtomicLong();
    private final AtomicLong bytesAdded = new AtomicLong();

    private Repository(Store store, RepositoryConfig config, MasterKey key, String keySlotName) {
        this.store = store;
        this.config = config;
        this.key = key;
        this.keySlotName = keySlotName;
    }

    /**
     * Creates a new repository in an empty store: a random master key, one key slot opened by {@code source},
     * and the config. Refuses a store that already holds a repository or any repository objects, and a local
     * directory with other content (see {@link Store#prepareForNewRepository()}).
     */
    public static Repository init(Store store, KeySource source, KdfParams kdf, long packSize, Clock clock)
            throws IOException {
        if (store.exists(RepositoryConfig.OBJECT_NAME)) {
            throw new RepositoryException("a repository already exists at " + store.location()
                    + "; nothing was changed");
        }
        store.prepareForNewRepository();
        for (String prefix : List.of(KeySlot.PREFIX, IndexFile.PREFIX, "data/")) {
            if (!store.list(prefix).isEmpty()) {
                throw new RepositoryException(store.location() + " has no config but already holds objects under '"
                        + prefix + "' (an interrupted init or a damaged repository?); refusing to initialize over them");
            }
        }
        byte[] idBytes = new byte[32];
        new SecureRandom().nextBytes(idBytes);
        Instant now = clock.instant();
        RepositoryConfig config = RepositoryConfig.create(Hashes.hex(idBytes), now, packSize);
        MasterKey master = MasterKey.generate();
        byte[] slot = KeySlot.create(master, source, kdf, config.id(), now).toJson();
        String slotName = KeySlot.objectName(slot);
        // the key first: a config without a key would be a repository nobody can open
        store.put(slotName, slot);
        store.put(RepositoryConfig.OBJECT_NAME, config.toJson());
        log.info("created repository {} at {}", config.id(), store.location());
        return new Repository(store, config, master, slotName);
    }

    /** Opens a repository and loads its index; a damaged index file is an error, never skipped. */
    public static Repository open(Store store, KeySource source) throws IOException {
        Repository repo = openKeyOnly(store, source);
        repo.loadIndex();
        return repo;
    }

    /** Reads the config and unlocks the master key, without reading the index (for verify and key commands). */
    public static Repository openKeyOnly(Store store, KeySource source) throws IOException {
        byte[] configBytes;
        try {
            configBytes = store.get(RepositoryConfig.OBJECT_NAME);
        } catch (NoSuchObjectException e) {
            throw new RepositoryException("no Ferry repository at " + store.location()
                    + " (no 'config' object); create one with 'ferry init'");
        }
        RepositoryConfig config = RepositoryConfig.parse(store.location(), configBytes);
        List<StoreObject> slots = store.list(KeySlot.PREFIX);
        if (slots.isEmpty()) {
            throw new RepositoryException.WrongKey(store.location() + " has no key slots; it cannot be opened");
        }
        int sameKind = 0;
        List<String> damaged = new ArrayList<>();
        for (StoreObject o : slots) {
            KeySlot slot;
            try {
                slot = KeySlot.parse(o.name(), store.get(o.name()));
            } catch (RepositoryException e) {
                damaged.add(e.getMessage());
                log.warn("skipping key slot: {}", e.getMessage());
                continue;
            }
            if (!slot.kind().equals(source.kind())) {
                continue;
            }
            sameKind++;
            Optional<MasterKey> key = slot.open(source, config.id());
            if (key.isPresent()) {
                log.debug("opened {} with key slot {}", store.location(), o.name());
                return new Repository(store, config, key.get(), o.name());
            }
        }
        String what = source instanceof KeySource.Password ? "password" : "key file";
        if (sameKind == 0) {
            throw new RepositoryException.WrongKey(store.location() + " has no " + source.kind()
                    + " key slot, so a " + what + " cannot open it" + (damaged.isEmpty() ? "" : " (damaged slots: "
                    + String.join("; ", damaged) + ")"));
        }
        throw new RepositoryException.WrongKey("wrong " + what + ": none of the " + sameKind + " " + source.kind()
                + " key slot(s) of " + store.location() + " opens with it");
    }

    /** Reads and merges every index file. Index files superseded by another index file are skipped. */
    void loadIndex() throws IOException {
        Map<String, IndexFile> files = IndexFile.current(readIndexFiles(null));
        synchronized (this) {
            for (IndexFile f : files.values()) {
                for (Map.Entry<PackId, List<PackEntry>> p : f.packs().entrySet()) {
                    for (PackEntry e : p.getValue()) {
                        index.add(p.getKey(), e);
                    }
                }
            }
            indexFileCount = files.size();
        }
        log.debug("loaded {} index files: {} chunks in {} packs", files.size(), index.size(), index.packCount());
    }

    /**
     * Fetches and opens every index file, several at a time, keyed by object name. With {@code errors == null}
     * the first damaged file fails the call; otherwise damage is appended to {@code errors} and the rest is
     * still read.
     */
    public Map<String, IndexFile> readIndexFiles(List<RepositoryException> errors) throws IOException {
        Aead aead = key.aead();
        List<String> names = new ArrayList<>();
        for (StoreObject o : store.list(IndexFile.PREFIX)) {
            if (IndexFile.isIndexName(o.name())) {
                names.add(o.name());
            } else {
                log.warn("ignoring unexpected object {} in index/", o.name());
            }
        }
        ExecutorService pool = Executors.newFixedThreadPool(Math.max(1, Math.min(8, names.size())));
        try {
            List<Future<IndexFile>> futures = new ArrayList<>();
            for (String name : names) {
                futures.add(pool.submit(() -> IndexFile.open(name, store.get(name), aead)));
            }
            Map<String, IndexFile> out = new LinkedHashMap<>();
            for (int i = 0; i < futures.size(); i++) {
                try {
                    out.put(names.get(i), futures.get(i).get());
                } catch (ExecutionException e) {
                    Throwable c = e.getCause();
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
            throw new java.io.InterruptedIOException("interrupted while reading the index");
        } finally {
            pool.shutdownNow();
        }
    }

    /** A key slot and its store name. */
    public record Slot(String name, KeySlot slot) {
        public String id() {
            return name.substring(KeySlot.PREFIX.length());
        }
    }

    /** Every key slot; a damaged slot is an error here (use verify to list damage). */
    public List<Slot> keySlots() throws IOException {
        List<Slot> out = new ArrayList<>();
        for (StoreObject o : store.list(KeySlot.PREFIX)) {
            out.add(new Slot(o.name(), KeySlot.parse(o.name(), store.get(o.name()))));
        }
        out.sort(java.util.Comparator.comparing((Slot s) -> s.slot().created()).thenComparing(Slot::name));
        return out;
    }

    /** Adds a key slot for {@code source}; the data is not re-encrypted. Returns the new slot. */
    public Slot addKeySlot(KeySource source, KdfParams kdf, Clock clock) throws IOException {
        KeySlot slot = KeySlot.create(key, source, kdf, config.id(), clock.instant());
        byte[] json = slot.toJson();
        String name = KeySlot.objectName(json);
        store.put(name, json);
        // read back: a slot that does not open would be a trap for whoever relies on it
        if (KeySlot.parse(name, store.get(name)).open(source, config.id()).isEmpty()) {
            store.delete(name);
            throw new RepositoryException("the new key slot " + name + " did not open after writing; it was removed");
        }
        return new Slot(name, slot);
    }

    /**
     * Removes the key slot whose id starts with {@code idPrefix}. Refuses an ambiguous prefix, the slot this
     * repository was opened with, and the last slot.
     */
    public Slot removeKeySlot(String idPrefix) throws IOException {
        if (!idPrefix.matches("[0-9a-f]{4,64}")) {
            throw new IllegalArgumentException("a key slot id is 4 to 64 lower-case hex digits: '" + idPrefix + "'");
        }
        List<StoreObject> all = store.list(KeySlot.PREFIX);
        List<StoreObject> matching = all.stream()
                .filter(o -> o.name().startsWith(KeySlot.PREFIX + idPrefix)).toList();
        if (matching.isEmpty()) {
            throw new RepositoryException("no key slot with id " + idPrefix + " in " + store.location());
        }
        if (matching.size() > 1) {
            throw new RepositoryException("key slot id " + idPrefix + " is ambiguous: " + matching.size()
                    + " slots start with it; give more digits");
        }
        String name = matching.get(0).name();
        if (name.equals(keySlotName)) {
            throw new RepositoryException("key slot " + idPrefix + " is the one this command was opened with; "
                    + "open with another password or key file to remove it");
        }
        if (all.size() == 1) {
            throw new RepositoryException("refusing to remove the last key slot: the repository could never be opened again");
        }
        Slot removed = new Slot(name, KeySlot.parse(name, store.get(name)));
        store.delete(name);
        return removed;
    }

    public Store store() {
        return store;
    }

    public RepositoryConfig config() {
        return config;
    }

    public MasterKey masterKey() {
        return key;
    }

    /** Store name of the key slot this repository was opened with. */
    public String keySlotName() {
        return keySlotName;
    }

    public synchronized int indexedChunks() {
        return index.size();
    }

    public synchronized int indexedPacks() {
        return index.packCount();
    }

    public synchronized int indexFileCount() {
        return indexFileCount;
    }

    public synchronized Optional<ChunkIndex.Location> lookup(ChunkId id) {
        return index.lookup(id);
    }

    public synchronized boolean contains(ChunkId id) {
        return index.contains(id) || pending.contains(id);
    }

    /** Chunks this process added to the repository (new ones only, not deduplicated ones). */
    public long chunksAdded() {
        return chunksAdded.get();
    }

    /** Stored (sealed) bytes of the chunks this process added. */
    public long bytesAdded() {
        return bytesAdded.get();
    }

    /**
     * Stores a chunk unless the repository already has it, and returns its id. Hashing, compression and
     * encryption run in the calling thread, so callers get parallelism by calling from several threads.
     */
    public ChunkId save(BlobType type, byte[] data, int off, int len) throws IOException {
        if (len > Envelope.MAX_PLAINTEXT) {
            throw new IllegalArgumentException("chunk of " + len + " bytes exceeds the maximum of "
                    + Envelope.MAX_PLAINTEXT);
        }
        ChunkId id = key.chunkId(data, off, len);
        if (contains(id)) {
            return id;
        }
        byte[] sealed = envelope.seal(key.aead(), Envelope.chunkAad(type, id), data, off, len, true);
        synchronized (this) {
            if (contains(id)) { // again: another thread may have stored it while this one sealed it
                return id;
            }
            if (pack == null) {
                Path spool = store.stagingDirectory() != null ? store.stagingDirectory()
                        : Path.of(System.getProperty("java.io.tmpdir"), "ferry-spool");
                pack = new Pack.Writer(spool, key.aead(), envelope);
            }
            pack.add(type, id, sealed, len);
            pending.add(id);
            chunksAdded.incrementAndGet();
            bytesAdded.addAndGet(sealed.length);
            if (pack.size() >= config.packSize()) {
                finishPack();
            }
        }
        return id;
    }

    public ChunkId save(BlobType type, byte[] data) throws IOException {
        return save(type, data, 0, data.length);
    }

    /** Stores the pack being built, then (once enough entries wait) an index file naming it. */
    private void finishPack() throws IOException {
        Pack.Writer w = pack;
        pack = null;
        try (w) {
            if (w.count() == 0) {
                return;
            }
            PackId id = w.finish();
            store.put(id.objectName(), w.file());
            List<PackEntry> entries = w.entries();
            for (PackEntry e : entries) {
                index.add(id, e);
                pending.remove(e.id());
            }
            unindexed.computeIfAbsent(id, k -> new ArrayList<>()).addAll(entries);
            unindexedCount += entries.size();
            log.debug("stored pack {} ({} chunks, {} bytes)", id.shortHex(), entries.size(), w.size());
        } finally {
            // chunks of a pack that failed to store are not in the repository: forget them, and the spool file
            pending.clear();
            Files.deleteIfExists(w.file());
        }
        if (unindexedCount >= INDEX_FLUSH_ENTRIES) {
            writeIndex();
        }
    }

    private void writeIndex() throws IOException {
        if (unindexed.isEmpty()) {
            return;
        }
        IndexFile file = new IndexFile(List.of(), new LinkedHashMap<>(unindexed));
        byte[] sealed = file.seal(key.aead(), envelope);
        String name = IndexFile.objectName(sealed);
        store.put(name, sealed);
        indexFileCount++;
        log.debug("stored index {} ({} chunks)", name, unindexedCount);
        unindexed.clear();
        unindexedCount = 0;
    }

    /** Stores the pack being built and the index for everything stored so far. Data is durable on return. */
    public synchronized void flush() throws IOException {
        if (pack != null) {
            finishPack();
        }
        writeIndex();
    }

    /** Reads a chunk and checks it: authentication, decompression, and its id against its content. */
    public byte[] load(ChunkId id) throws IOException {
        ChunkIndex.Location loc = lookup(id).orElseThrow(() -> new RepositoryException(
                "chunk " + id.shortHex() + " is not in the repository index"));
        String name = loc.pack().objectName();
        byte[] sealed = store.getRange(name, loc.entry().offset(), loc.entry().length());
        return openChunk(name, loc.entry(), sealed, 0);
    }

    /** Opens one sealed chunk read from {@code buf} at {@code off} and checks it against its entry. */
    public byte[] openChunk(String packName, PackEntry e, byte[] buf, int off) throws RepositoryException {
        byte[] plain;
        try {
            plain = Envelope.open(key.aead(), Envelope.chunkAad(e.type(), e.id()), buf, off, e.length());
        } catch (Aead.AuthenticationException ex) {
            throw new RepositoryException.Damaged(packName, "chunk " + e.id().shortHex() + " at offset " + e.offset()
                    + " does not decrypt: " + ex.getMessage());
        }
        if (plain.length != e.rawLength()) {
            throw new RepositoryException.Damaged(packName, "chunk " + e.id().shortHex() + " is " + plain.length
                    + " bytes, its entry says " + e.rawLength());
        }
        if (!key.chunkId(plain).equals(e.id())) {
            throw new RepositoryException.Damaged(packName, "chunk " + e.id().shortHex()
                    + " does not hash to its id");
        }
        return plain;
    }

    /** Flushes what was added, then releases nothing else: the store stays open for its owner. */
    @Override
    public void close() throws IOException {
        flush();
    }
}
