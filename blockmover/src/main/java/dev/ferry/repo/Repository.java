package dev.ferry.repo;

import dev.ferry.crypto.Aead;
import dev.ferry.crypto.Hashes;
import dev.ferry.store.NoSuchObjectException;
import dev.ferry.store.Store;
import dev.ferry.store.StoreObject;
import dev.ferry.util.Threads;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
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
    /** Finished packs that may wait for, or be in, an upload at once; a writer that would exceed it waits. */
    static final int UPLOADS_IN_FLIGHT = 3;
    private static final int UPLOAD_THREADS = 2;
    /** Packs that may wait for an upload thread, across all writers, before a writer stores its pack itself. */
    private static final int UPLOAD_QUEUE = 64;
    /** How long a writer waits for one of its pack uploads before giving up. */
    static final long UPLOAD_SLOT_WAIT_MINUTES = 30;
    /**
     * zstd level for everything Ferry stores: level 1 compresses text-like volume data about 4x, within a few
     * percent of level 3, at a third more speed (docs/PERFORMANCE.md).
     */
    public static final int DEFAULT_ZSTD_LEVEL = 1;

    private final Store store;
    private final RepositoryConfig config;
    private final MasterKey key;
    private final String keySlotName;
    private final Envelope envelope = new Envelope(DEFAULT_ZSTD_LEVEL);
    private ChunkIndex index = new ChunkIndex(); // guarded by this; replaced by refreshIndex()
    private int indexFileCount;
    private List<RepositoryException> indexDamage = List.of(); // guarded by this

    // writers. Lock order: a writer's locks before this. `this` guards index, pending, knownIndexFiles, writers.
    private final Map<ChunkId, RepositoryWriter> pending = new HashMap<>(); // chunks in a writer's pack not yet stored
    private final Set<String> knownIndexFiles = new HashSet<>(); // index files loaded or written by this process
    private final Set<RepositoryWriter> writers = new HashSet<>();
    private RepositoryWriter defaultWriter;
    private ExecutorService uploader;
    private volatile Checkpoints checkpoints = Checkpoints.DEFAULT;
    // when the process is told to stop: see abandon()
    private volatile boolean stopping;
    private final Object lockGuard = new Object();
    private final List<RepositoryLock> locks = new ArrayList<>(); // guarded by lockGuard

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
        int tried = 0;
        List<String> damaged = new ArrayList<>();
        List<MasterKey> unverified = new ArrayList<>();
        // every slot is read first, so that damage is reported whichever slot opens
        Map<String, KeySlot> readable = new LinkedHashMap<>();
        for (StoreObject o : slots) {
            KeySlot slot;
            try {
                slot = KeySlot.parse(o.name(), store.get(o.name()));
            } catch (NoSuchObjectException gone) {
                continue; // removed while we listed
            } catch (RepositoryException.UnsupportedFormat e) {
                damaged.add(e.getMessage());
                log.warn("skipping key slot {}: {}", slotId(o.name()), e.getMessage());
                continue;
            } catch (RepositoryException e) {
                String why = e instanceof RepositoryException.Damaged d ? damageOf(d) : e.getMessage();
                damaged.add("key slot " + slotId(o.name()) + " is damaged: " + why);
                log.warn("skipping key slot {}, it is damaged: {}", slotId(o.name()), why);
                continue;
            }
            readable.put(o.name(), slot);
        }
        for (Map.Entry<String, KeySlot> e : readable.entrySet()) {
            KeySlot slot = e.getValue();
            if (!slot.kind().equals(source.kind())) {
                continue;
            }
            KeySlot.Attempt attempt;
            try {
                attempt = slot.attempt(source, config.id());
            } catch (RepositoryException x) {
                damaged.add("key slot " + slotId(e.getKey()) + " is damaged: " + x.getMessage());
                log.warn("skipping key slot {}, it is damaged: {}", slotId(e.getKey()), x.getMessage());
                continue;
            }
            tried++;
            if (attempt.key().isPresent()) {
                log.debug("opened {} with key slot {}", store.location(), e.getKey());
                return new Repository(store, config, attempt.key().get(), e.getKey());
            }
            if (attempt.unverified() != null) {
                unverified.add(attempt.unverified());
            }
        }
        String what = source instanceof KeySource.Password ? "password" : "key file";
        String damage = damaged.isEmpty() ? "" : "; " + String.join("; ", damaged);
        if (tried == 0) {
            throw new RepositoryException.WrongKey(store.location() + " has no " + (damaged.isEmpty() ? "" : "usable ")
                    + source.kind()
                    + " key slot, so a " + what + " cannot open it" + damage);
        }
        String changedConfig = configIdChanged(store, unverified);
        if (changedConfig != null) {
            throw new RepositoryException("the config of " + store.location() + " was changed: the " + what
                    + " is right (it decrypts " + changedConfig + "), but the key slots were sealed for another "
                    + "repository id than the config's " + config.id().substring(0, 16) + "...; restore the "
                    + "original config object" + damage);
        }
        throw new RepositoryException.WrongKey("wrong " + what + ": none of the " + tried + " " + source.kind()
                + " key slot(s) of " + store.location() + " opens with it (a slot whose sealed data was altered "
                + "fails the same way)" + damage);
    }

    private static String slotId(String name) {
        String id = name.substring(KeySlot.PREFIX.length());
        return id.length() > 16 ? id.substring(0, 16) : id;
    }

    private static String damageOf(RepositoryException.Damaged d) {
        String prefix = d.objectName() + ": ";
        return d.getMessage().startsWith(prefix) ? d.getMessage().substring(prefix.length()) : d.getMessage();
    }

    /**
     * Whether one of the {@code candidates} (a slot's content decrypted without authentication, see
     * {@link KeySlot.Attempt}) authenticates an index file: then the key was right and only the config's id
     * differs from the one the slots were sealed for. Returns the index file it opened, or null.
     */
    private static String configIdChanged(Store store, List<MasterKey> candidates) {
        if (candidates.isEmpty()) {
            return null;
        }
        try {
            for (StoreObject o : store.list(IndexFile.PREFIX)) {
                if (!IndexFile.isIndexName(o.name())) {
                    continue;
                }
                byte[] sealed = store.get(o.name());
                for (MasterKey k : candidates) {
                    try {
                        Envelope.open(k.aead(), Envelope.AAD_INDEX, sealed, 0, sealed.length);
                        return o.name();
                    } catch (Aead.AuthenticationException | IllegalArgumentException e) {
                        // not this key
                    }
                }
                return null; // one index file decides: every file is sealed with the same master key
            }
        } catch (IOException e) {
            log.debug("cannot check whether the config was changed: {}", e.toString());
        }
        return null;
    }

    /**
     * Reads and merges every index file. Index files superseded by another index file are skipped. A damaged
     * index file is reported (a warning naming it and the cause) and the rest is read: the chunks of intact files
     * stay readable, and {@link #indexDamage()} says that the index is known to be incomplete until
     * {@code ferry repair index} rebuilds it. A damaged file that a readable one supersedes is no loss.
     */
    public void loadIndex() throws IOException {
        List<RepositoryException> errors = new ArrayList<>();
        Map<String, IndexFile> read = readIndexFiles(errors);
        for (RepositoryException e : errors) {
            if (!(e instanceof RepositoryException.Damaged)) {
                throw e; // a failed read is not damage: going on would only hide it
            }
        }
        Map<String, IndexFile> files = IndexFile.current(read);
        List<RepositoryException> damage = IndexFile.unreplacedDamage(read, errors);
        for (RepositoryException e : damage) {
            log.warn("index file damaged, its chunks cannot be found until 'ferry repair index' runs: {}",
                    e.getMessage());
        }
        synchronized (this) {
            for (IndexFile f : files.values()) {
                for (Map.Entry<PackId, List<PackEntry>> p : f.packs().entrySet()) {
                    for (PackEntry e : p.getValue()) {
                        index.add(p.getKey(), e);
                    }
                }
            }
            indexFileCount = files.size();
            files.keySet().forEach(this::noteKnown);
            for (RepositoryException e : errors) { // seen, though unreadable: not another writer's new file
                noteKnown(((RepositoryException.Damaged) e).objectName());
            }
            indexDamage = List.copyOf(damage);
        }
        log.debug("loaded {} index files: {} chunks in {} packs", files.size(), index.size(), index.packCount());
    }

    /**
     * The index files that could not be read when the index was loaded (and no readable file replaces): while
     * there are any, the index is known to be incomplete.
     */
    public synchronized List<RepositoryException> indexDamage() {
        return indexDamage;
    }

    /**
     * The error for a chunk the index lacks; {@code what} names it ("chunk 1a2b3c4d of block 7"). When index
     * files could not be read, it names them and says how to rebuild the index.
     */
    public RepositoryException notIndexed(String what) {
        List<RepositoryException> damage = indexDamage();
        if (damage.isEmpty()) {
            return new RepositoryException(what + " is in no index file: the repository is damaged (run 'ferry verify')");
        }
        return new RepositoryException(what + " is in no readable index file; " + IndexFile.describeDamage(damage)
                + ": run 'ferry repair index' to rebuild the index from the packs");
    }

    /**
     * Fetches and opens every index file, several at a time, keyed by object name. With {@code errors == null}
     * the first damaged file fails the call; otherwise damage is appended to {@code errors} and the rest is
     * still read.
     */
    public Map<String, IndexFile> readIndexFiles(List<RepositoryException> errors) throws IOException {
        for (int attempt = 1; ; attempt++) {
            try {
                return readIndexFilesOnce(errors);
            } catch (NoSuchObjectException e) {
                // a prune replaced index files while we read them: its superseding file is there now
                if (attempt == 5) {
                    throw new RepositoryException("index files keep disappearing while being read (" + e.getMessage()
                            + "); is a prune running in a loop?");
                }
                log.debug("index file vanished while reading ({}); reading the index again", e.getMessage());
            }
        }
    }

    private Map<String, IndexFile> readIndexFilesOnce(List<RepositoryException> errors) throws IOException {
        Aead aead = key.aead();
        List<String> names = new ArrayList<>();
        for (StoreObject o : store.list(IndexFile.PREFIX)) {
            if (IndexFile.isIndexName(o.name())) {
                names.add(o.name());
            } else {
                log.warn("ignoring unexpected object {} in index/", o.name());
            }
        }
        return ParallelReads.openAll(store, names, (name, bytes) -> IndexFile.open(name, bytes, aead), errors, false);
    }

    /** Adds the entries of an index file to the in-memory index (one read after this process opened it). */
    public synchronized void learn(IndexFile f) {
        f.packs().forEach((p, es) -> es.forEach(e -> index.add(p, e)));
    }

    /**
     * A key slot and its store name; {@code slot} is null for a slot that cannot be read, and {@code damage}
     * then says why.
     */
    public record Slot(String name, KeySlot slot, String damage) {
        public Slot(String name, KeySlot slot) {
            this(name, slot, null);
        }

        public String id() {
            return name.substring(KeySlot.PREFIX.length());
        }
    }

    /** Every key slot; a damaged one is listed with its damage (verify reports damage too). */
    public List<Slot> keySlots() throws IOException {
        List<Slot> out = new ArrayList<>();
        for (StoreObject o : store.list(KeySlot.PREFIX)) {
            try {
                out.add(new Slot(o.name(), KeySlot.parse(o.name(), store.get(o.name()))));
            } catch (NoSuchObjectException gone) {
                // removed while we listed
            } catch (RepositoryException e) {
                out.add(new Slot(o.name(), null, e instanceof RepositoryException.Damaged d ? damageOf(d)
                        : e.getMessage()));
            }
        }
        out.sort(java.util.Comparator.comparing((Slot s) -> s.slot() == null ? "" : s.slot().created())
                .thenComparing(Slot::name));
        return out;
    }

    /** Adds a key slot for {@code source}; the data is not re-encrypted. Returns the new slot. */
    public Slot addKeySlot(KeySource source, KdfParams kdf, Clock clock) throws IOException {
        return addKeySlot(source, kdf, clock, defaultHostname());
    }

    /**
     * Adds a key slot for {@code source} while holding the key-change lock (see {@link #keyChangeLock}); the
     * data is not re-encrypted. Returns the new slot.
     */
    public Slot addKeySlot(KeySource source, KdfParams kdf, Clock clock, String hostname) throws IOException {
        KeySlot slot = KeySlot.create(key, source, kdf, config.id(), clock.instant());
        byte[] json = slot.toJson();
        String name = KeySlot.objectName(json);
        try (RepositoryLock lock = keyChangeLock(clock, hostname)) {
            store.put(name, json);
            // read back: a slot that does not open would be a trap for whoever relies on it
            if (KeySlot.parse(name, store.get(name)).open(source, config.id()).isEmpty()) {
                store.delete(name);
                throw new RepositoryException("the new key slot " + name + " did not open after writing; it was removed");
            }
        }
        return new Slot(name, slot);
    }

    /**
     * Removes the key slot whose id starts with {@code idPrefix}. Refuses an ambiguous prefix, the slot this
     * repository was opened with, and the last slot.
     */
    public Slot removeKeySlot(String idPrefix) throws IOException {
        return removeKeySlot(idPrefix, Clock.systemUTC(), defaultHostname());
    }

    /**
     * Removes the key slot whose id starts with {@code idPrefix}, holding the key-change lock. Refuses an
     * ambiguous prefix, the slot this repository was opened with, and the last slot. After the removal it checks
     * that the slot this repository was opened with is still there; if a key change that did not respect the
     * lock (an older Ferry) removed it meanwhile, the removed slot is put back and the removal refused, so the
     * repository never loses its last slot. A damaged slot can be removed.
     */
    public Slot removeKeySlot(String idPrefix, Clock clock, String hostname) throws IOException {
        if (!idPrefix.matches("[0-9a-f]{4,64}")) {
            throw new IllegalArgumentException("a key slot id is 4 to 64 lower-case hex digits: '" + idPrefix + "'");
        }
        try (RepositoryLock lock = keyChangeLock(clock, hostname)) {
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
            if (all.stream().noneMatch(o -> o.name().equals(keySlotName))) {
                throw new RepositoryException("key slot " + slotId(keySlotName) + ", which opened the repository, "
                        + "is gone (removed by another key change?); refusing to remove " + idPrefix
                        + ": it may be the last slot");
            }
            byte[] bytes;
            try {
                bytes = store.get(name);
            } catch (NoSuchObjectException e) {
                throw new RepositoryException("key slot " + idPrefix + " was removed by another key change meanwhile");
            }
            Slot removed;
            try {
                removed = new Slot(name, KeySlot.parse(name, bytes));
            } catch (RepositoryException e) {
                removed = new Slot(name, null, e.getMessage());
            }
            store.delete(name);
            // re-check: the slot that opened us must still be there, else the one just removed goes back
            if (!store.exists(keySlotName)) {
                store.put(name, bytes);
                throw new RepositoryException("key slot " + slotId(keySlotName) + ", which opened the repository, "
                        + "was removed by another key change meanwhile; key slot " + slotId(name)
                        + " was put back so the repository keeps a slot; nothing was removed");
            }
            return removed;
        }
    }

    /**
     * The lock every key change holds: refuses while another key change runs (a live {@code key} lock), so two
     * removals cannot each take the other's slot. Backups and prunes touch no key slot and do not wait for it.
     */
    private RepositoryLock keyChangeLock(Clock clock, String hostname) throws IOException {
        return lockExclusive(RepositoryLock.KEY_CHANGE, hostname, clock);
    }

    private static String defaultHostname() {
        try {
            return java.net.InetAddress.getLocalHost().getHostName();
        } catch (IOException e) {
            String h = System.getenv("HOSTNAME");
            return h == null ? "unknown" : h;
        }
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
        return index.contains(id) || pending.containsKey(id);
    }

    /** Chunks the default writer added (new ones only, not deduplicated ones); see {@link RepositoryWriter}. */
    public long chunksAdded() {
        return defaultWriter().chunksAdded();
    }

    /** Stored (sealed) bytes of the chunks the default writer added. */
    public long bytesAdded() {
        return defaultWriter().bytesAdded();
    }

    /** Through the default writer: see {@link RepositoryWriter#save(BlobType, byte[], int, int)}. */
    public ChunkId save(BlobType type, byte[] data, int off, int len) throws IOException {
        return defaultWriter().save(type, data, off, len);
    }

    public ChunkId save(BlobType type, byte[] data) throws IOException {
        return defaultWriter().save(type, data);
    }

    /** Through the default writer: see {@link RepositoryWriter#saveWithId}. */
    public boolean saveWithId(BlobType type, ChunkId id, byte[] data, int off, int len) throws IOException {
        return defaultWriter().saveWithId(type, id, data, off, len);
    }

    /** Through the default writer: see {@link RepositoryWriter#copySealed}. */
    public void copySealed(BlobType type, ChunkId id, byte[] sealed, int rawLength) throws IOException {
        defaultWriter().copySealed(type, id, sealed, rawLength);
    }

    /** Through the default writer: see {@link RepositoryWriter#beginCommit}. */
    public SnapshotCommit beginCommit(RepositoryLock lock) {
        return defaultWriter().beginCommit(lock);
    }

    /**
     * The writer that {@link #save}, {@link #flush()} and the other writing methods of this class use: one
     * process, one job. Concurrent jobs each take their own with {@link #newWriter()}.
     */
    public synchronized RepositoryWriter defaultWriter() {
        if (defaultWriter == null) {
            defaultWriter = newWriter();
        }
        return defaultWriter;
    }

    /** A new writer session of its own (see {@link RepositoryWriter}), storing through this repository's store. */
    public RepositoryWriter newWriter() {
        return newWriter(store, "writer");
    }

    /**
     * A new writer session storing its packs and index files through {@code through}, a view of this repository's
     * store (the same objects, with limits or faults of its own); {@code name} says what it is in errors.
     */
    public synchronized RepositoryWriter newWriter(Store through, String name) {
        RepositoryWriter w = new RepositoryWriter(this, through, name, new HashSet<>(knownIndexFiles));
        writers.add(w);
        return w;
    }

    /** Drops a closed or abandoned writer from the ones {@link #abandon()} stops. */
    synchronized void forget(RepositoryWriter w) {
        if (w != defaultWriter) {
            writers.remove(w);
        }
    }

    /** The writer storing {@code id} now, or null. Under this monitor. */
    RepositoryWriter pendingOwner(ChunkId id) {
        return pending.get(id);
    }

    /** Claims {@code id} for {@code w}; false if some writer is storing it already. Under this monitor. */
    boolean claimPending(ChunkId id, RepositoryWriter w) {
        return pending.putIfAbsent(id, w) == null;
    }

    /** Releases {@code w}'s claim on {@code id}. Under this monitor. */
    void releasePending(ChunkId id, RepositoryWriter w) {
        pending.remove(id, w);
    }

    /** Releases every claim of {@code w}. Under this monitor. */
    void releaseAllPending(RepositoryWriter w) {
        pending.values().removeIf(o -> o == w);
    }

    /** Adds a stored chunk to the in-memory index. Under this monitor. */
    void indexStored(PackId pack, PackEntry e) {
        index.add(pack, e);
    }

    /** {@link #lookup} for a caller already holding this monitor. */
    Optional<ChunkIndex.Location> lookupLocked(ChunkId id) {
        return index.lookup(id);
    }

    Envelope envelope() {
        return envelope;
    }

    /**
     * The threads storing packs, shared by every writer: at most {@value #UPLOAD_THREADS}, which exit after a
     * minute idle. Each writer bounds its own packs waiting ({@value #UPLOADS_IN_FLIGHT}); the queue is bounded
     * too, and a pack that finds it full is stored by the thread that filled it.
     */
    synchronized java.util.concurrent.ExecutorService uploader() {
        if (uploader == null) {
            java.util.concurrent.ThreadPoolExecutor pool = new java.util.concurrent.ThreadPoolExecutor(UPLOAD_THREADS,
                    UPLOAD_THREADS, 1, java.util.concurrent.TimeUnit.MINUTES,
                    new java.util.concurrent.ArrayBlockingQueue<>(UPLOAD_QUEUE),
                    Threads.daemon("ferry-pack-upload"), new java.util.concurrent.ThreadPoolExecutor.CallerRunsPolicy());
            pool.allowCoreThreadTimeOut(true);
            uploader = pool;
        }
        return uploader;
    }

    /** When writers write index checkpoints: after {@code interval}, or after {@code bytes} of packs stored. */
    public record Checkpoints(java.time.Duration interval, long bytes) {
        public static final Checkpoints DEFAULT = new Checkpoints(java.time.Duration.ofMinutes(5), 4L << 30);
        /** Environment variables that override the defaults (see {@link #fromEnv}). */
        public static final String SECONDS_ENV = "FERRY_INDEX_CHECKPOINT_SECONDS";
        public static final String BYTES_ENV = "FERRY_INDEX_CHECKPOINT_BYTES";

        public Checkpoints {
            if (interval.isNegative() || bytes < 0) {
                throw new IllegalArgumentException("index checkpoints need a positive interval and size");
            }
        }

        /** The defaults, overridden by {@value #SECONDS_ENV} and {@value #BYTES_ENV} where they are set. */
        public static Checkpoints fromEnv(Map<String, String> env) {
            java.time.Duration interval = DEFAULT.interval();
            long bytes = DEFAULT.bytes();
            String s = env.get(SECONDS_ENV);
            String b = env.get(BYTES_ENV);
            try {
                if (s != null && !s.isBlank()) {
                    interval = java.time.Duration.ofSeconds(Long.parseLong(s.trim()));
                }
                if (b != null && !b.isBlank()) {
                    bytes = Long.parseLong(b.trim());
                }
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(SECONDS_ENV + " and " + BYTES_ENV + " take a whole number, not '"
                        + (s != null ? s : "") + "' / '" + (b != null ? b : "") + "'");
            }
            return new Checkpoints(interval, bytes);
        }
    }

    /** Sets when writers write index checkpoints (default {@link Checkpoints#DEFAULT}). */
    public void setCheckpoints(Checkpoints c) {
        checkpoints = java.util.Objects.requireNonNull(c);
    }

    public Checkpoints checkpoints() {
        return checkpoints;
    }

    /**
     * Fails unless every one of {@code packs} is in the store: one listing of {@code data/xx/} per two-digit
     * prefix the packs have, or of all {@code data/} when that takes fewer requests (about one per thousand packs).
     */
    void requirePresent(java.util.Collection<PackId> packs, String what) throws IOException {
        if (packs.isEmpty()) {
            return;
        }
        Set<String> prefixes = new java.util.TreeSet<>();
        for (PackId p : packs) {
            prefixes.add(p.directory());
        }
        Set<String> present = new HashSet<>();
        List<String> listings = prefixes.size() > 1 + indexedPacks() / 1000 ? List.of("data/") : List.copyOf(prefixes);
        for (String prefix : listings) {
            for (StoreObject o : store.list(prefix)) {
                present.add(o.name());
            }
        }
        List<PackId> missing = new ArrayList<>();
        for (PackId p : packs) {
            if (!present.contains(p.objectName())) {
                missing.add(p);
            }
        }
        if (!missing.isEmpty()) {
            java.util.Collections.sort(missing);
            throw new RepositoryException(missing.size() + " of the " + packs.size() + " pack(s) " + what
                    + " are gone from " + store.location() + " (" + missing.get(0).objectName()
                    + (missing.size() > 1 ? " and " + (missing.size() - 1) + " more" : "")
                    + "): a prune deleted them while this process's lock was stale or removed");
        }
    }

    private static java.io.InterruptedIOException stoppingError() {
        return new java.io.InterruptedIOException("the process is stopping: nothing more is stored");
    }

    /**
     * Writes a lock for {@code operation} (see {@link RepositoryLock#acquire}) that {@link #abandon()} releases
     * if the process is stopped before its owner closes it.
     */
    public RepositoryLock lock(String operation, String hostname, Clock clock) throws IOException {
        return track(() -> RepositoryLock.acquire(store, operation, hostname, clock));
    }

    /**
     * As {@link #lock}, through {@link RepositoryLock#acquireExclusive}: refused while another lock of
     * {@code operation} is live.
     */
    public RepositoryLock lockExclusive(String operation, String hostname, Clock clock) throws IOException {
        return track(() -> RepositoryLock.acquireExclusive(store, operation, hostname, clock));
    }

    private RepositoryLock track(IoSupplier<RepositoryLock> acquire) throws IOException {
        synchronized (lockGuard) { // abandon() waits for a lock being written, so none is left behind
            if (stopping) {
                throw stoppingError();
            }
            RepositoryLock lock = acquire.get();
            locks.removeIf(RepositoryLock::isClosed);
            locks.add(lock);
            return lock;
        }
    }

    /**
     * Writes a shared lock for {@code operation} ("restore", "verify"): it excludes nobody but prune, which
     * deletes no pack while a live lock is in the store (docs/FORMAT.md, "Locks"). A reader takes it, then calls
     * {@link #refreshIndex()}, so it reads only packs that the current index names and that prune keeps.
     */
    public RepositoryLock lockShared(String operation) throws IOException {
        return lock(operation, defaultHostname(), Clock.systemUTC());
    }

    /**
     * Reads the index files again and makes them what lookups find first: after a prune repacked chunks, a
     * reader finds them in the packs the current index names. Chunks the current index lacks (entries of packs a
     * writer of this process stored, or of chunks no snapshot used when a prune looked) keep their earlier
     * place, so writers under way are not disturbed.
     */
    public void refreshIndex() throws IOException {
        List<RepositoryException> errors = new ArrayList<>();
        Map<String, IndexFile> read = readIndexFiles(errors);
        for (RepositoryException e : errors) {
            if (!(e instanceof RepositoryException.Damaged)) {
                throw e;
            }
        }
        Map<String, IndexFile> files = IndexFile.current(read);
        ChunkIndex fresh = new ChunkIndex();
        for (IndexFile f : files.values()) {
            f.packs().forEach((p, es) -> es.forEach(e -> fresh.add(p, e)));
        }
        synchronized (this) {
            index.forEach(fresh::add); // kept only where the current index has nothing
            index = fresh;
            indexFileCount = files.size();
            indexDamage = List.copyOf(IndexFile.unreplacedDamage(read, errors));
        }
        log.debug("index refreshed: {} files, {} chunks", files.size(), fresh.size());
    }

    /**
     * For a process that is being stopped (SIGTERM, SIGINT) while it may still be writing: from now on nothing
     * more is stored (every writer is abandoned, see {@link RepositoryWriter#abandon()}), and the locks taken with
     * {@link #lock} are released. Packs already stored stay: prune removes them if no index names them. Safe to
     * call from another thread, and more than once.
     */
    public void abandon() {
        stopping = true;
        List<RepositoryLock> held;
        synchronized (lockGuard) {
            held = new ArrayList<>(locks);
            locks.clear();
        }
        List<RepositoryWriter> all;
        synchronized (this) {
            all = new ArrayList<>(writers);
        }
        for (RepositoryWriter w : all) {
            w.abandon();
        }
        for (RepositoryLock l : held) {
            try {
                l.close();
            } catch (IOException | RuntimeException e) {
                log.warn("could not remove lock {}: {}", l.name(), e.toString());
            }
        }
    }

    /** Whether {@link #abandon()} was called: nothing more is stored. */
    public boolean isStopping() {
        return stopping;
    }

    /** Seals and stores an index file; returns its name. */
    String storeIndexFile(IndexFile file) throws IOException {
        if (stopping) {
            throw stoppingError();
        }
        byte[] sealed = file.seal(key.aead(), envelope);
        String name = IndexFile.objectName(sealed);
        store.put(name, sealed);
        synchronized (this) {
            indexFileCount++;
            noteKnown(name);
        }
        return name;
    }

    /** An index file this process read or wrote: not another process's news to any writer. Under this monitor. */
    private void noteKnown(String name) {
        knownIndexFiles.add(name);
        for (RepositoryWriter w : writers) {
            w.noteKnownIndexFile(name);
        }
    }

    /** Through the default writer: see {@link RepositoryWriter#flushThenRethrow}. */
    public void flushThenRethrow(Throwable failure) throws IOException {
        defaultWriter().flushThenRethrow(failure);
    }

    /** Stores what the default writer added so far: see {@link RepositoryWriter#flush()}. */
    public void flush() throws IOException {
        RepositoryWriter w;
        synchronized (this) {
            w = defaultWriter;
        }
        if (w != null) {
            w.flush();
        }
    }

    /**
     * Makes sure every chunk a new snapshot refers to is still named by the repository's current index, just
     * before the snapshot is stored. A prune running beside this writer may have dropped index entries of
     * chunks that no snapshot referred to when it looked, including chunks this writer deduplicated against or
     * wrote itself; their packs still exist (prune deletes no pack while a writer holds a lock), so this writer
     * names them again in an index file of its own. Costs one listing of {@code index/} when nothing changed.
     *
     * @param refs enumerates the snapshot's chunks; called only when another process rewrote the index
     * @return the number of chunks named again
     */
    public int ensureIndexed(ChunkRefs refs) throws IOException {
        return defaultWriter().ensureIndexed(refs);
    }


    /**
     * The second half of {@link RepositoryWriter#ensureIndexed}: names again, in an index file, chunks of
     * {@code refs} that the current index lacks when another process rewrote the index since the writer (whose
     * {@code knownIndexFiles} these are, guarded by this monitor) began.
     */

    int nameAgain(ChunkRefs refs, Set<PackId> relied, Set<String> knownIndexFiles) throws IOException {
        Set<String> names = new HashSet<>();
        for (StoreObject o : store.list(IndexFile.PREFIX)) {
            if (IndexFile.isIndexName(o.name())) {
                names.add(o.name());
            }
        }
        boolean rewritten;
        Set<String> fresh;
        synchronized (this) {
            rewritten = !names.containsAll(knownIndexFiles);
            fresh = new HashSet<>(names);
            fresh.removeAll(knownIndexFiles);
        }
        if (!rewritten) {
            for (String name : fresh) { // another writer's new index file, or a prune's superseding one?
                try {
                    if (!IndexFile.open(name, store.get(name), key.aead()).supersedes().isEmpty()) {
                        rewritten = true;
                        break;
                    }
                } catch (NoSuchObjectException | RepositoryException.Damaged gone) {
                    rewritten = true; // read the index again, and name again whatever it lacks
                    break;
                }
                synchronized (this) {
                    knownIndexFiles.add(name);
                }
            }
        }
        if (!rewritten) {
            return 0;
        }
        ChunkIndex now = new ChunkIndex();
        // a damaged index file only makes more chunks look missing here, and those are named again: no harm
        Map<String, IndexFile> current = IndexFile.current(readIndexFiles(new ArrayList<>()));
        for (IndexFile f : current.values()) {
            f.packs().forEach((p, es) -> es.forEach(e -> now.add(p, e)));
        }
        Map<PackId, List<PackEntry>> again = new LinkedHashMap<>();
        Set<ChunkId> seen = new HashSet<>();
        refs.forEach(id -> {
            ChunkIndex.Location known = lookup(id).orElse(null);
            if (known != null) {
                relied.add(known.pack());
            }
            if (!now.contains(id) && seen.add(id)) {
                ChunkIndex.Location loc = Optional.ofNullable(known).orElseThrow(() -> new RepositoryException(
                        "chunk " + id.shortHex() + " of the new snapshot is in no index"));
                again.computeIfAbsent(loc.pack(), k -> new ArrayList<>()).add(loc.entry());
            }
        });
        synchronized (this) {
            knownIndexFiles.clear();
            knownIndexFiles.addAll(current.keySet());
        }
        if (!again.isEmpty()) {
            requirePresent(again.keySet(), "whose chunks are to be named again");
            String name = storeIndexFile(new IndexFile(List.of(), again));
            log.info("named {} chunks again in {} after a concurrent prune", seen.size(), name);
        }
        return seen.size();
    }

    /** Enumerates chunk ids (of a snapshot); may read from the repository. */
    @FunctionalInterface
    public interface ChunkRefs {
        void forEach(IoConsumer<ChunkId> action) throws IOException;
    }

    @FunctionalInterface
    private interface IoSupplier<T> {
        T get() throws IOException;
    }

    public interface IoConsumer<T> {
        void accept(T t) throws IOException;
    }

    /** Reads a chunk and checks it: authentication, decompression, and its id against its content. */
    public byte[] load(ChunkId id) throws IOException {
        ChunkIndex.Location loc = lookup(id).orElseThrow(() -> notIndexed("chunk " + id.shortHex()));
        String name = loc.pack().objectName();
        byte[] sealed = store.getRange(name, loc.entry().offset(), loc.entry().length());
        return openChunk(name, loc.entry(), sealed, 0);
    }

    /**
     * Opens one sealed chunk read from {@code buf} at {@code off} into this thread's scratch buffer and checks
     * it against its entry; the plaintext is {@code scratch().out()[0, entry.rawLength())} until this thread's
     * next chunk.
     */
    public Envelope.Scratch openChunkInScratch(String packName, PackEntry e, byte[] buf, int off)
            throws RepositoryException {
        Envelope.Scratch s = Envelope.Scratch.local();
        int n;
        try {
            n = Envelope.openInto(key.aead(), Envelope.chunkAad(e.type(), e.id()), buf, off, e.length(),
                    Envelope.MAX_PLAINTEXT, s);
        } catch (Aead.AuthenticationException ex) {
            throw new RepositoryException.Damaged(packName, "chunk " + e.id().shortHex() + " at offset " + e.offset()
                    + " does not decrypt: " + ex.getMessage());
        }
        if (n != e.rawLength()) {
            throw new RepositoryException.Damaged(packName, "chunk " + e.id().shortHex() + " is " + n
                    + " bytes, its entry says " + e.rawLength());
        }
        if (!key.chunkId(s.out(), 0, n).equals(e.id())) {
            throw new RepositoryException.Damaged(packName, "chunk " + e.id().shortHex()
                    + " does not hash to its id");
        }
        return s;
    }

    /** Opens one sealed chunk read from {@code buf} at {@code off} and checks it against its entry. */
    public byte[] openChunk(String packName, PackEntry e, byte[] buf, int off) throws RepositoryException {
        return java.util.Arrays.copyOf(openChunkInScratch(packName, e, buf, off).out(), e.rawLength());
    }

    /** Flushes what the default writer added; the store stays open for its owner. */
    @Override
    public void close() throws IOException {
        try {
            flush();
        } finally {
            synchronized (this) {
                if (uploader != null) {
                    uploader.shutdown();
                }
            }
        }
    }
}
