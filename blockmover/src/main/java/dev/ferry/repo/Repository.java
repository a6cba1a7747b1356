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
    private final ChunkIndex index = new ChunkIndex();
    private int indexFileCount;
    private List<RepositoryException> indexDamage = List.of(); // guarded by this

    // writer state. Lock order: packLock before this. `this` guards index, pending, unindexed, knownIndexFiles.
    private final Object packLock = new Object();
    private Pack.Writer pack;                               // guarded by packLock
    private final Set<ChunkId> pending = new HashSet<>();   // chunks in the open pack or in a pack being stored
    private final Map<PackId, List<PackEntry>> unindexed = new LinkedHashMap<>();
    private int unindexedCount;
    private final Set<String> knownIndexFiles = new HashSet<>(); // index files loaded or written by this process
    private final AtomicLong chunksAdded = new AtomicLong();
    private final AtomicLong bytesAdded = new AtomicLong();
    // pack uploads run beside the writers; the semaphore bounds packs waiting on disk (backpressure)
    private final Semaphore uploadSlots = new Semaphore(UPLOADS_IN_FLIGHT);
    private final List<Future<?>> uploads = new ArrayList<>();
    private ExecutorService uploader;
    private volatile IOException uploadFailure;
    // backups storing their snapshot through this repository; each learns the packs it relies on
    private final List<SnapshotCommit> commits = new java.util.concurrent.CopyOnWriteArrayList<>();
    // when the process is told to stop: see abandon()
    private volatile boolean stopping;
    private final Set<Pack.Writer> spooled = new HashSet<>();    // guarded by this: spool files not yet stored
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
            knownIndexFiles.addAll(files.keySet());
            for (RepositoryException e : errors) { // seen, though unreadable: not another writer's new file
                knownIndexFiles.add(((RepositoryException.Damaged) e).objectName());
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
     * encryption run in the calling thread, so callers get parallelism by calling from several threads. A full
     * pack is stored by a background thread while callers go on; a caller waits only when
     * {@value #UPLOADS_IN_FLIGHT} packs are already waiting to be stored.
     */
    public ChunkId save(BlobType type, byte[] data, int off, int len) throws IOException {
        if (len > Envelope.MAX_PLAINTEXT) {
            throw new IllegalArgumentException("chunk of " + len + " bytes exceeds the maximum of "
                    + Envelope.MAX_PLAINTEXT);
        }
        ChunkId id = key.chunkId(data, off, len);
        saveWithId(type, id, data, off, len);
        return id;
    }

    public ChunkId save(BlobType type, byte[] data) throws IOException {
        return save(type, data, 0, data.length);
    }

    /**
     * Like {@link #save(BlobType, byte[], int, int)} for a caller that has already computed the chunk id with
     * {@link MasterKey#chunkId}. Returns true if the chunk was new.
     */
    public boolean saveWithId(BlobType type, ChunkId id, byte[] data, int off, int len) throws IOException {
        checkUploads();
        if (known(id)) {
            return false;
        }
        Envelope.Scratch s = Envelope.Scratch.local();
        int n = envelope.sealInto(key.aead(), Envelope.chunkAad(type, id), data, off, len, true, s);
        return append(type, id, s.sealed(), n, len, true);
    }


    /**
     * Writes a chunk that is already sealed into a new pack even though the index knows it in another pack:
     * prune copies the chunks still in use out of packs it is about to delete. The new place is indexed at the
     * next flush.
     */
    public void copySealed(BlobType type, ChunkId id, byte[] sealed, int rawLength) throws IOException {
        checkUploads();
        append(type, id, sealed, sealed.length, rawLength, false);
    }

    private boolean append(BlobType type, ChunkId id, byte[] sealed, int sealedLen, int len, boolean dedup)
            throws IOException {
        Pack.Writer full = null;
        synchronized (packLock) {
            synchronized (this) {
                // again: another thread may have stored it while this one sealed it
                if ((dedup && known(id)) || !pending.add(id)) {
                    return false;
                }
            }
            try {
                if (pack == null) {
                    if (stopping) {
                        throw stoppingError();
                    }
                    Path spool = store.stagingDirectory() != null ? store.stagingDirectory()
                            : Path.of(System.getProperty("java.io.tmpdir"), "ferry-spool");
                    pack = new Pack.Writer(spool, key.aead(), envelope);
                    synchronized (this) {
                        spooled.add(pack);
                    }
                }
                pack.add(type, id, sealed, 0, sealedLen, len);
            } catch (IOException | RuntimeException e) {
                synchronized (this) {
                    pending.remove(id);
                }
                throw e;
            }
            chunksAdded.incrementAndGet();
            bytesAdded.addAndGet(sealedLen);
            if (pack.size() >= config.packSize()) {
                full = pack;
                pack = null;
            }
        }
        if (full != null) {
            storePack(full);
        }
        return true;
    }

    /**
     * Whether the chunk is indexed or on its way into a pack of this process; a backup storing its snapshot
     * through this repository learns the pack of an indexed chunk, which its snapshot will then rely on.
     */
    private synchronized boolean known(ChunkId id) {
        if (pending.contains(id)) {
            return true;
        }
        if (commits.isEmpty()) {
            return index.contains(id);
        }
        Optional<ChunkIndex.Location> loc = index.lookup(id);
        if (loc.isEmpty()) {
            return false;
        }
        for (SnapshotCommit c : commits) {
            c.relyOn(loc.get().pack());
        }
        return true;
    }

    /**
     * Starts the commit of one backup's snapshot: from now until it is closed, the packs this repository stores
     * and the packs of chunks found already indexed are noted as packs the snapshot relies on, and no index file
     * is written unless {@code lock} (null: none held) is still valid and those packs are present. See
     * {@link SnapshotCommit}.
     */
    public SnapshotCommit beginCommit(RepositoryLock lock) {
        SnapshotCommit c = new SnapshotCommit(this, lock);
        commits.add(c);
        return c;
    }

    void endCommit(SnapshotCommit c) {
        commits.remove(c);
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
     * For a process that is being stopped (SIGTERM, SIGINT) while it may still be writing: from now on nothing
     * more is stored (threads still adding data fail), the spool files of packs not yet stored are deleted, and
     * the locks taken with {@link #lock} are released. Packs already stored stay: prune removes them if no index
     * names them. Safe to call from another thread, and more than once.
     */
    public void abandon() {
        stopping = true;
        List<RepositoryLock> held;
        synchronized (lockGuard) {
            held = new ArrayList<>(locks);
            locks.clear();
        }
        List<Pack.Writer> files;
        Pack.Writer open;
        synchronized (packLock) { // waits for a chunk being added; no pack is begun after
            open = pack;
            pack = null;
            synchronized (this) {
                files = new ArrayList<>(spooled);
                spooled.clear();
            }
        }
        if (open != null) {
            try {
                open.close();
            } catch (IOException | RuntimeException e) {
                log.debug("closing the open pack: {}", e.toString());
            }
        }
        for (Pack.Writer w : files) {
            try {
                Files.deleteIfExists(w.file());
            } catch (IOException e) {
                log.warn("could not remove spool file {}: {}", w.file(), e.toString());
            }
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

    private void checkUploads() throws IOException {
        IOException f = uploadFailure;
        if (f != null) {
            throw new IOException("an earlier pack could not be stored: " + f.getMessage(), f);
        }
    }

    /** Hands a full pack to the upload threads; waits while too many packs are waiting already. */
    private void storePack(Pack.Writer w) throws IOException {
        try {
            uploadSlots.acquire();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            dropPack(w);
            throw new java.io.InterruptedIOException("interrupted while waiting to store a pack");
        }
        synchronized (this) {
            if (uploader == null) {
                uploader = Threads.pool(UPLOAD_THREADS, "ferry-pack-upload");
            }
            uploads.removeIf(Future::isDone);
            uploads.add(uploader.submit(() -> {
                try {
                    finishPack(w);
                } catch (Throwable e) {
                    log.debug("storing a pack failed", e);
                    uploadFailure = e instanceof IOException io ? io : new IOException(e.toString(), e);
                } finally {
                    uploadSlots.release();
                }
            }));
        }
    }

    /** Forgets the chunks of a pack that will not be stored, and its spool file. */
    private void dropPack(Pack.Writer w) throws IOException {
        synchronized (this) {
            for (PackEntry e : w.entries()) {
                pending.remove(e.id());
            }
            spooled.remove(w);
        }
        w.close();
        Files.deleteIfExists(w.file());
    }

    /** Stores a pack, then (once enough entries wait) an index file naming it. Runs on an upload thread. */
    private void finishPack(Pack.Writer w) throws IOException {
        boolean stored = false;
        try (w) {
            for (SnapshotCommit c : commits) {
                c.checkLock(); // no use storing more for a backup whose lock was lost
            }
            PackId id = w.finish();
            store.put(id.objectName(), w.file());
            stored = true;
            List<PackEntry> entries = w.entries();
            synchronized (this) {
                for (SnapshotCommit c : commits) {
                    c.relyOn(id);
                }
                for (PackEntry e : entries) {
                    index.add(id, e);
                    pending.remove(e.id());
                }
                unindexed.computeIfAbsent(id, k -> new ArrayList<>()).addAll(entries);
                unindexedCount += entries.size();
            }
            log.debug("stored pack {} ({} chunks, {} bytes)", id.shortHex(), entries.size(), w.size());
        } finally {
            if (!stored) {
                // chunks of a pack that failed to store are not in the repository: forget them
                dropPack(w);
            }
            Files.deleteIfExists(w.file());
            synchronized (this) {
                spooled.remove(w);
            }
        }
        boolean flushIndex;
        synchronized (this) {
            flushIndex = unindexedCount >= INDEX_FLUSH_ENTRIES;
        }
        if (flushIndex) {
            writeIndex();
        }
    }

    /** Stores an index file for every stored pack not yet named by one. */
    private void writeIndex() throws IOException {
        Map<PackId, List<PackEntry>> packs;
        int count;
        synchronized (this) {
            if (unindexed.isEmpty()) {
                return;
            }
            packs = new LinkedHashMap<>(unindexed);
            count = unindexedCount;
            unindexed.clear();
            unindexedCount = 0;
        }
        try {
            if (!commits.isEmpty()) { // an index file never names a pack that a prune deleted under a lost lock
                for (SnapshotCommit c : commits) {
                    c.confirmLock();
                }
                try {
                    requirePresent(packs.keySet(), "to be indexed");
                } catch (RepositoryException e) {
                    throw SnapshotCommit.aborted(e);
                }
            }
            String name = storeIndexFile(new IndexFile(List.of(), packs));
            log.debug("stored index {} ({} chunks)", name, count);
        } catch (IOException | RuntimeException e) {
            synchronized (this) { // keep them for the next attempt
                packs.forEach((k, v) -> unindexed.computeIfAbsent(k, x -> new ArrayList<>()).addAll(v));
                unindexedCount += count;
            }
            throw e;
        }
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
            knownIndexFiles.add(name);
        }
        return name;
    }

    /**
     * After a backup failed with {@code failure} (nothing happens when it is null): stores what was already
     * packed, so the next run deduplicates against it, then rethrows the failure (a failing flush is added to it
     * as suppressed).
     */
    public void flushThenRethrow(Throwable failure) throws IOException {
        if (failure == null) {
            return;
        }
        try {
            flush();
        } catch (IOException | RuntimeException e) {
            failure.addSuppressed(e);
        }
        dev.ferry.util.Threads.rethrow(failure);
    }

    /**
     * Stores the pack being built, waits for every pack upload, and stores the index for everything stored so
     * far. Data is durable on return.
     */
    public void flush() throws IOException {
        Pack.Writer last;
        synchronized (packLock) {
            last = pack;
            pack = null;
        }
        if (last != null) {
            if (last.count() > 0) {
                storePack(last);
            } else {
                dropPack(last);
            }
        }
        List<Future<?>> waiting;
        synchronized (this) {
            waiting = new ArrayList<>(uploads);
        }
        for (Future<?> f : waiting) {
            try {
                f.get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new java.io.InterruptedIOException("interrupted while storing packs");
            } catch (ExecutionException e) {
                throw new IOException("storing a pack failed: " + e.getCause(), e.getCause());
            }
        }
        IOException failed = uploadFailure;
        if (failed != null) {
            throw new IOException(failed.getMessage(), failed);
        }
        writeIndex();
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
        return ensureIndexed(refs, new HashSet<>());
    }

    /**
     * As {@link #ensureIndexed(ChunkRefs)}; when another process rewrote the index, the packs of every chunk of
     * the snapshot are added to {@code relied}, and those named again must be present.
     */
    int ensureIndexed(ChunkRefs refs, Set<PackId> relied) throws IOException {
        flush();
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

    /** Flushes what was added, then releases nothing else: the store stays open for its owner. */
    @Override
    public void close() throws IOException {
        try {
            flush();
        } finally {
            synchronized (this) {
                if (uploader != null) {
                    uploader.shutdownNow();
                }
            }
        }
    }
}
