package dev.ferry.zfs;

import dev.ferry.block.EngineBackup;
import dev.ferry.block.FileVolume;
import dev.ferry.engine.ChangedRanges;
import dev.ferry.engine.Engine;
import dev.ferry.engine.EngineContext;
import dev.ferry.engine.EngineSnapshot;
import dev.ferry.engine.RestoreTarget;
import dev.ferry.engine.VolumeReader;
import dev.ferry.engine.VolumeWriter;
import dev.ferry.job.Cancellation;
import dev.ferry.job.CancelledException;
import dev.ferry.zfs.stream.ObjectChanges;
import dev.ferry.zfs.stream.SendRecord;
import dev.ferry.zfs.stream.SendStreamReader;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The ZFS engine: snapshots with {@code zfs snapshot}, change lists parsed out of {@code zfs send -i} streams,
 * reads through the snapshot's device or {@code .zfs/snapshot} directory where ZFS has one and through a
 * temporary read-only clone otherwise, restores into a new zvol or into a file of a filesystem dataset.
 *
 * <p>Volume names are {@code pool/zvol} or {@code pool/fs#relative/path/of/image} (see {@link ZfsVolume}).
 */
public final class ZfsEngine implements Engine {
    private static final Logger log = LoggerFactory.getLogger(ZfsEngine.class);
    /**
     * Prefix of the temporary clones made to read a snapshot; {@code <prefix><random>}, marked with their owner
     * ({@link CloneOwner}).
     */
    static final String READ_CLONE_PREFIX = "ferry-read-";
    /** Properties recorded with a backup. */
    public static final String OBJECT = "object", DATASET = "dataset", FILE = "file", CREATETXG = "createtxg";
    /** Reader property: the volume file's inode generation, where the file system tells it (FS_IOC_GETVERSION). */
    public static final String GENERATION = "generation";
    /** Legacy (pre-SA) ZPL bonus type, whose znode_phys_t holds the file's generation at byte 64. */
    static final int DMU_OT_ZNODE = 17;
    /** Tag of the hold Ferry puts on its snapshots where ZFS has holds. */
    static final String HOLD_TAG = "dev.ferry";
    /** zvol data is this object. */
    static final long ZVOL_OBJECT = 1;

    private final Zfs zfs;        // the job's: its commands end when the job is cancelled
    private final Zfs cleanupZfs; // for what must be undone after a cancel (destroying a read clone)
    private final CloneOwner.Node node;
    private final EngineContext context;

    /** The engine found through the SPI: the {@code zfs} command and the node's name from the environment. */
    public ZfsEngine() {
        this(System.getenv());
    }

    public ZfsEngine(Map<String, String> env) {
        this(Zfs.fromEnvironment(env), CloneOwner.Node.of(env));
    }

    public ZfsEngine(Zfs zfs) {
        this(zfs, CloneOwner.Node.of(System.getenv()));
    }

    ZfsEngine(Zfs zfs, CloneOwner.Node node) {
        this(zfs, node, EngineContext.standalone(new Cancellation()));
    }

    private ZfsEngine(Zfs zfs, CloneOwner.Node node, EngineContext context) {
        this.zfs = zfs;
        this.cleanupZfs = zfs.withoutCancellation();
        this.node = node;
        this.context = context;
    }

    /** This engine for one job: its {@code zfs} commands and reads end on the job's cancel, its clones are the job's. */
    @Override
    public ZfsEngine forJob(EngineContext context) {
        return new ZfsEngine(zfs.withCancellation(context.cancellation()), node, context);
    }

    public Zfs zfs() {
        return zfs;
    }

    @Override
    public String name() {
        return "zfs";
    }

    @Override
    public List<EngineSnapshot> listSnapshots(String volume) throws IOException {
        ZfsVolume v = ZfsVolume.parse(volume);
        List<Zfs.Dataset> snaps;
        try {
            snaps = zfs.snapshots(v.dataset());
        } catch (ZfsException e) {
            if (e.notFound()) {
                throw new IOException("no ZFS dataset or zvol named " + v.dataset(), e);
            }
            throw e;
        }
        List<EngineSnapshot> l = new ArrayList<>();
        for (Zfs.Dataset d : snaps) {
            l.add(toEngine(v, d));
        }
        return l;
    }

    private static EngineSnapshot toEngine(ZfsVolume v, Zfs.Dataset d) {
        Map<String, String> p = new LinkedHashMap<>();
        p.put(EngineBackup.MANAGED, Boolean.toString("true".equals(d.userProperties().get(Zfs.MANAGED_PROPERTY))));
        String repository = d.userProperties().get(Zfs.REPOSITORY_PROPERTY);
        if (repository != null) {
            p.put(EngineBackup.REPOSITORY, repository);
        }
        p.put(DATASET, v.dataset());
        if (v.isFile()) {
            p.put(FILE, v.file());
        }
        p.put(CREATETXG, Long.toString(d.createtxg()));
        return new EngineSnapshot(v.name(), d.snapshotName(), d.guid(),
                d.creation() < 0 ? null : Instant.ofEpochSecond(d.creation()), p);
    }

    @Override
    public EngineSnapshot createSnapshot(String volume, String name, String repository) throws IOException {
        ZfsVolume v = ZfsVolume.parse(volume);
        Zfs.Dataset ds = requireVolume(v);
        if (v.isFile()) {
            Path live = Path.of(ds.mountpoint(), v.file());
            if (!Files.isRegularFile(live, LinkOption.NOFOLLOW_LINKS)) {
                throw new IOException(v.file() + " is not a regular file in " + v.dataset() + " (mounted at "
                        + ds.mountpoint() + ")");
            }
        }
        zfs.snapshot(v.dataset(), name, repository);
        if (zfs.holdsSupported()) { // others' 'zfs destroy' cannot take the next base away; released before delete
            zfs.run("hold", HOLD_TAG, v.dataset() + "@" + name);
        }
        Zfs.Dataset snap = zfs.get(v.dataset() + "@" + name);
        if (snap == null) {
            throw new IOException("snapshot " + v.dataset() + "@" + name + " vanished right after it was taken");
        }
        return toEngine(v, snap);
    }

    private Zfs.Dataset requireVolume(ZfsVolume v) throws IOException {
        Zfs.Dataset ds = zfs.get(v.dataset());
        if (ds == null) {
            throw new IOException("no ZFS dataset or zvol named " + v.dataset());
        }
        if (v.isFile() && ds.isVolume()) {
            throw new IOException(v.dataset() + " is a zvol; --file names a file inside a filesystem dataset");
        }
        if (!v.isFile() && !ds.isVolume()) {
            throw new IOException(v.dataset() + " is a filesystem, not a zvol; name the volume image file inside it "
                    + "with --file");
        }
        if (v.isFile() && (!ds.mounted() || !ds.mountpoint().startsWith("/"))) {
            throw new IOException(v.dataset() + " is not mounted (mountpoint " + ds.mountpoint() + ")");
        }
        return ds;
    }

    @Override
    public void deleteSnapshot(EngineSnapshot snapshot) throws IOException {
        ZfsVolume v = ZfsVolume.parse(snapshot.volume());
        String full = v.dataset() + "@" + snapshot.name();
        Zfs.Dataset d = zfs.get(full);
        if (d == null) {
            return;
        }
        if (!"true".equals(d.userProperties().get(Zfs.MANAGED_PROPERTY))) {
            throw new IOException("refusing to delete " + full + ": Ferry did not make it");
        }
        if (zfs.holdsSupported()) {
            try {
                zfs.run("release", HOLD_TAG, full);
            } catch (ZfsException e) {
                log.debug("no hold to release on {}: {}", full, e.getMessage());
            }
        }
        zfs.destroy(full, false);
    }

    @Override
    public VolumeReader open(EngineSnapshot snapshot) throws IOException {
        ZfsVolume v = ZfsVolume.parse(snapshot.volume());
        Zfs.Dataset ds = requireVolume(v);
        String snapName = v.dataset() + "@" + snapshot.name();
        if (v.isFile()) {
            Path dir = zfs.snapshotDirectory(ds, snapshot.name());
            if (dir != null) {
                return openReader(dir.resolve(v.file()), v, snapName, null, null);
            }
        } else {
            Path dev = Zfs.zvolDevice(snapName);
            if (Files.exists(dev)) {
                return openReader(dev, v, snapName, null, null);
            }
        }
        return openThroughClone(v, snapName);
    }

    private VolumeReader openThroughClone(ZfsVolume v, String snapName) throws IOException {
        destroyStaleClones(v.pool());
        String clone = v.pool() + "/" + READ_CLONE_PREFIX + random();
        Path mount = null;
        Map<String, String> props = new LinkedHashMap<>();
        props.put("readonly", "on");
        props.put(CloneOwner.PROPERTY, new CloneOwner(node.name(), node.bootId(), context.jobId()).value());
        if (context.isStandalone() && !node.pidNamespace().isEmpty()) {
            props.put(CloneOwner.PIDNS_PROPERTY, node.pidNamespace());
        }
        if (v.isFile()) {
            mount = Files.createTempDirectory("ferry-zfs-read-");
            props.put("mountpoint", mount.toString());
        }
        boolean ok = false;
        try {
            zfs.clone(snapName, clone, props);
            Path path;
            if (v.isFile()) {
                Zfs.Dataset c = zfs.get(clone);
                if (c == null || !c.mounted()) {
                    zfs.run("mount", clone);
                }
                path = mount.resolve(v.file());
            } else {
                path = waitForDevice(Zfs.zvolDevice(clone));
            }
            VolumeReader r = openReader(path, v, snapName, clone, mount);
            ok = true;
            return r;
        } finally {
            if (!ok) {
                destroyClone(clone, mount);
            }
        }
    }

    private Path waitForDevice(Path dev) throws IOException {
        for (int i = 0; i < 300 && !Files.exists(dev); i++) {
            context.cancellation().check();
            try {
                Thread.sleep(100);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new java.io.InterruptedIOException("interrupted waiting for " + dev);
            }
        }
        if (!Files.exists(dev)) {
            throw new IOException(dev + " did not appear within 30 s of creating the clone");
        }
        return dev;
    }

    /**
     * Destroys the read clones of {@code pool} that their owners left behind (a process killed in the middle of
     * a backup, a job of a daemon that was restarted, anything from before the node's last boot); see
     * {@link CloneOwner#stale}. Clones of other nodes, of live jobs and of owners that cannot be judged from here
     * are kept; so are clones without an owner (made by Ferry before owners were recorded), which are told.
     */
    void destroyStaleClones(String pool) throws CancelledException {
        try {
            String out = zfs.run("list", "-H", "-o", "name," + CloneOwner.PROPERTY + "," + CloneOwner.PIDNS_PROPERTY,
                    "-r", "-d", "1", pool);
            for (String line : out.split("\n")) {
                String[] f = line.split("\t");
                if (f.length < 3 || !f[0].startsWith(pool + "/" + READ_CLONE_PREFIX)) {
                    continue;
                }
                String name = f[0];
                CloneOwner owner = CloneOwner.parse("-".equals(f[1]) ? null : f[1]);
                if (owner == null) {
                    log.warn("{} looks like a temporary read clone of Ferry but names no owner ({}): it is kept; "
                            + "destroy it with 'zfs destroy {}' once no backup reads it", name, CloneOwner.PROPERTY, name);
                    continue;
                }
                if (!owner.stale(node, "-".equals(f[2]) ? null : f[2], context.liveJobs(),
                        pid -> ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false))) {
                    continue;
                }
                log.info("destroying {}, a read clone left by {} (job {} on {}, boot {})", name,
                        owner.bootId().equals(node.bootId()) ? "a job that has ended" : "an earlier boot",
                        owner.jobId(), owner.node(), owner.bootId());
                try {
                    zfs.destroy(name, true);
                } catch (ZfsException e) {
                    if (!e.notFound()) { // else another job of this daemon destroyed it first
                        log.warn("could not destroy {}: {}", name, e.getMessage());
                    }
                }
            }
        } catch (CancelledException e) {
            throw e;
        } catch (IOException e) {
            log.warn("could not look for stale read clones in {}: {}", pool, e.getMessage());
        }
    }

    void destroyClone(String clone, Path mount) {
        IOException last = null;
        for (int attempt = 0; attempt < 10; attempt++) {
            try {
                if (cleanupZfs.get(clone) != null) {
                    cleanupZfs.destroy(clone, true);
                }
                last = null;
                break;
            } catch (IOException e) {
                last = e;
                try {
                    Thread.sleep(200L * (attempt + 1));
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
        }
        if (last != null) {
            log.warn("could not destroy the temporary clone {}: {}; the next backup of this pool removes it",
                    clone, last.getMessage());
        }
        if (mount != null) {
            try {
                Files.deleteIfExists(mount);
            } catch (IOException e) {
                log.debug("could not remove {}: {}", mount, e.getMessage());
            }
        }
    }

    private static String random() {
        byte[] b = new byte[8];
        new SecureRandom().nextBytes(b);
        return HexFormat.of().formatHex(b);
    }

    private VolumeReader openReader(Path path, ZfsVolume v, String snapName, String clone, Path mount)
            throws IOException {
        if (v.isFile() && !Files.isRegularFile(path, LinkOption.NOFOLLOW_LINKS)) {
            throw new IOException(v.file() + " is not a regular file in " + snapName);
        }
        Map<String, String> props = new LinkedHashMap<>();
        props.put(DATASET, v.dataset());
        if (v.isFile()) {
            props.put(FILE, v.file());
            props.put(OBJECT, Long.toString(((Number) Files.getAttribute(path, "unix:ino",
                    LinkOption.NOFOLLOW_LINKS)).longValue()));
            InodeGeneration.of(path).ifPresent(g -> props.put(GENERATION, Long.toString(g)));
        } else {
            props.put(OBJECT, Long.toString(ZVOL_OBJECT));
        }
        return new SnapshotReader(FileVolume.openForReading(path), props, clone, mount);
    }

    /** A snapshot's volume opened for reading; closing destroys the clone it was read through, if any. */
    private final class SnapshotReader implements VolumeReader {
        private final FileVolume volume;
        private final Map<String, String> properties;
        private final String clone;
        private final Path mount;

        private SnapshotReader(FileVolume volume, Map<String, String> properties, String clone, Path mount) {
            this.volume = volume;
            this.properties = properties;
            this.clone = clone;
            this.mount = mount;
        }

        @Override
        public long size() {
            return volume.size();
        }

        @Override
        public int read(long offset, byte[] buf, int off, int len) throws IOException {
            context.cancellation().check();
            return volume.read(offset, buf, off, len);
        }

        @Override
        public Map<String, String> properties() {
            return properties;
        }

        @Override
        public void close() throws IOException {
            try {
                volume.close();
            } finally {
                if (clone != null) {
                    destroyClone(clone, mount);
                }
            }
        }
    }

    @Override
    public Optional<ChangedRanges> changedRanges(EngineSnapshot base, EngineSnapshot target) throws IOException {
        ZfsVolume v = ZfsVolume.parse(target.volume());
        long object = v.isFile() ? Long.parseLong(target.properties().getOrDefault(OBJECT, "-1")) : ZVOL_OBJECT;
        if (v.isFile() && !Long.toString(object).equals(base.properties().get(OBJECT))) {
            log.info("{} is object {} now and was {} in {}: the file was replaced, so everything is read", v.file(),
                    object, base.properties().get(OBJECT), base.name());
            return Optional.empty();
        }
        String baseGen = base.properties().get(GENERATION), targetGen = target.properties().get(GENERATION);
        if (v.isFile() && baseGen != null && targetGen != null && !baseGen.equals(targetGen)) {
            log.info("{} has generation {} now and had {} in {}: the file was deleted and made again under the same "
                    + "object number, so everything is read", v.file(), targetGen, baseGen, base.name());
            return Optional.empty();
        }
        String from = v.dataset() + "@" + base.name();
        String to = v.dataset() + "@" + target.name();
        ObjectChanges c;
        SendStreamReader reader;
        try (InputStream in = zfs.send(from, to)) {
            reader = new SendStreamReader(new java.io.BufferedInputStream(in, 1 << 20));
            c = ObjectChanges.collect(reader, object);
        }
        SendRecord.Begin b = c.begin();
        if (base.guid() != null && !Long.toUnsignedString(b.fromGuid()).equals(base.guid())
                || target.guid() != null && !Long.toUnsignedString(b.toGuid()).equals(target.guid())) {
            throw new IOException("zfs send -i " + from + " " + to + " produced a stream from guid "
                    + Long.toUnsignedString(b.fromGuid()) + " to " + Long.toUnsignedString(b.toGuid())
                    + ", not between the snapshots asked for");
        }
        if (c.objectFreed()) {
            log.info("object {} does not exist in {}: everything is read", object, to);
            return Optional.empty();
        }
        if (recreatedSince(c.objectRecord(), reader.order(), base)) {
            log.info("object {} was created after {}: everything is read", object, from);
            return Optional.empty();
        }
        log.info("zfs send -i {} {}: {} bytes of stream, {} write records ({} bytes) and {} free records for object {}",
                from, to, c.streamBytes(), c.writeRecords(), c.bytesWritten(), c.freeRecords(), object);
        return Optional.of(c.ranges());
    }

    /**
     * Whether the object's generation (the txg that created it, in a legacy znode bonus buffer) is newer than
     * the base snapshot: the file was deleted and made again under the same object number, and blocks the
     * stream does not mention may hold stale data of the old file. Unknown for SA bonus buffers, where the
     * file's {@link #GENERATION} as the kernel reports it tells the same.
     */
    static boolean recreatedSince(SendRecord.ObjectRecord o, java.nio.ByteOrder order, EngineSnapshot base) {
        String txg = base.properties().get(CREATETXG);
        if (o == null || o.bonusType() != DMU_OT_ZNODE || o.bonus().length < 72 || txg == null) {
            return false;
        }
        long gen = ByteBuffer.wrap(o.bonus()).order(order).getLong(64);
        return Long.compareUnsigned(gen, Long.parseUnsignedLong(txg)) > 0;
    }

    @Override
    public RestoreTarget prepareRestore(String target, long size, Map<String, String> options) throws IOException {
        boolean force = "true".equals(options.get("force"));
        String file = options.get(FILE);
        ZfsVolume v = new ZfsVolume(target, file);
        Zfs.Dataset ds = zfs.get(v.dataset());
        FileVolume volume;
        if (v.isFile()) {
            if (ds == null) {
                zfs.createFilesystem(v.dataset(), Map.of());
                ds = zfs.get(v.dataset());
            }
            if (ds == null || ds.isVolume()) {
                throw new IOException(v.dataset() + " is a zvol; --file names a file inside a filesystem dataset");
            }
            if (!ds.mounted()) {
                zfs.run("mount", v.dataset());
                ds = zfs.get(v.dataset());
            }
            Path path = Path.of(ds.mountpoint(), v.file());
            if (Files.exists(path, LinkOption.NOFOLLOW_LINKS) && !force) {
                throw new IOException(path + " (" + v.file() + " in " + v.dataset() + ") exists; restore with --force to "
                        + "overwrite it");
            }
            Files.createDirectories(path.getParent());
            if (!Files.exists(path, LinkOption.NOFOLLOW_LINKS)) { // a volume's data: readable by its owner only
                Files.createFile(path, java.nio.file.attribute.PosixFilePermissions.asFileAttribute(
                        java.nio.file.attribute.PosixFilePermissions.fromString("rw-------")));
            }
            volume = FileVolume.openForWriting(path, size, false);
        } else {
            if (ds != null && !force) {
                throw new IOException(v.dataset() + " exists; restore with --force to overwrite it");
            }
            if (ds == null) {
                zfs.createVolume(v.dataset(), size, Map.of());
            } else if (!ds.isVolume()) {
                throw new IOException(v.dataset() + " is a filesystem; restore a zvol's backup into a new zvol, or "
                        + "into a file with --file");
            } else if (ds.volsize() < size) {
                throw new IOException("zvol " + v.dataset() + " has " + ds.volsize() + " bytes, fewer than the "
                        + "backup's " + size);
            }
            volume = FileVolume.openForWriting(waitForDevice(Zfs.zvolDevice(v.dataset())), size, false);
        }
        return new RestoreTarget() {
            @Override
            public VolumeWriter writer() {
                return volume;
            }

            @Override
            public void finish(boolean success) throws IOException {
                if (success) {
                    volume.sync();
                }
            }

            @Override
            public void close() throws IOException {
                volume.close();
            }
        };
    }
}
