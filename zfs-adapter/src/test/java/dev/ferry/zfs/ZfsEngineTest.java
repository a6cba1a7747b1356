package dev.ferry.zfs;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.block.BlockRestore;
import dev.ferry.block.EngineBackup;
import dev.ferry.block.FileVolume;
import dev.ferry.block.VolumeLock;
import dev.ferry.engine.ChangedRanges;
import dev.ferry.engine.Engine;
import dev.ferry.engine.EngineSnapshot;
import dev.ferry.engine.RestoreTarget;
import dev.ferry.engine.VolumeReader;
import dev.ferry.progress.ProgressListener;
import dev.ferry.progress.ProgressReporter;
import dev.ferry.repo.KdfParams;
import dev.ferry.repo.KeySource;
import dev.ferry.repo.Repository;
import dev.ferry.repo.Snapshots;
import dev.ferry.store.LocalStore;
import dev.ferry.store.Store;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.RandomAccessFile;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Backups through the ZFS engine on a real pool: full, then incremental after a few records changed, a file
 * deleted and the volume truncated; each restore is byte-identical to its snapshot; the snapshot lifecycle;
 * a failed backup keeping its base.
 */
class ZfsEngineTest {
    static final KeySource KEY = new KeySource.Password("zfs test".toCharArray());
    static final int MiB = 1 << 20;
    @TempDir
    static Path tmp;
    static TestPool pool;
    static ZfsEngine engine;
    static int datasets;

    @BeforeAll
    static void createPool() throws Exception {
        pool = TestPool.create(tmp);
        engine = new ZfsEngine(pool.zfs);
    }

    @AfterAll
    static void destroyPool() throws Exception {
        if (pool != null) {
            pool.close();
        }
    }

    /** A new dataset with records of 16 KiB holding vol.img of {@code size} bytes of seeded data. */
    static String dataset(long size, long seed) throws Exception {
        String ds = pool.filesystem("d" + (++datasets), "recordsize=16K");
        byte[] data = new byte[(int) size];
        new Random(seed).nextBytes(data);
        for (int i = 0; i < data.length; i += 3 * MiB) { // a zero MiB now and then
            java.util.Arrays.fill(data, i, Math.min(data.length, i + MiB), (byte) 0);
        }
        Files.write(pool.mountpoint(ds).resolve("vol.img"), data);
        return ds;
    }

    static Store store(String name) throws IOException {
        Path dir = tmp.resolve("repo-" + name);
        if (!Files.exists(dir)) {
            Files.createDirectories(dir);
            try (Store s = new LocalStore(dir)) {
                Repository.init(s, KEY, new KdfParams(1024, 1, 1), 4 * MiB, Clock.systemUTC()).close();
            }
        }
        return new LocalStore(dir);
    }

    static EngineBackup.Result backup(String repoName, Engine e, String volume, int keep) throws IOException {
        try (Store s = store(repoName)) {
            Repository repo = Repository.open(s, KEY);
            try {
                return new EngineBackup(repo, new EngineBackup.Request(e, volume, keep, null, Map.of(), 2, null,
                        Clock.systemUTC(), "test-host")).run(total -> ProgressReporter.start("backup", total,
                        new PrintWriter(new StringWriter()), false));
            } finally {
                repo.close();
            }
        }
    }

    static byte[] restore(String repoName, Snapshots.Stored snap) throws IOException {
        Path out = Files.createTempFile(tmp, "restore", ".img");
        Files.delete(out);
        try (Store s = store(repoName); FileVolume v = FileVolume.openForWriting(out, snap.snapshot().volume().size(), false)) {
            Repository repo = Repository.open(s, KEY);
            new BlockRestore(repo, snap, v, 2).run(ProgressListener.NONE);
        }
        return Files.readAllBytes(out);
    }

    static List<String> snapshotNames(String ds) throws IOException {
        return pool.zfs.snapshots(ds).stream().map(Zfs.Dataset::snapshotName).toList();
    }

    static void writeAt(Path file, long offset, int len, long seed) throws IOException {
        byte[] b = new byte[len];
        new Random(seed).nextBytes(b);
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.seek(offset);
            f.write(b);
        }
    }

    @Test
    void fullThenIncrementalsReadOnlyWhatChangedAndRestoreByteIdentical() throws Exception {
        String ds = dataset(24L * MiB, 1);
        Path vol = pool.mountpoint(ds).resolve("vol.img");
        Files.write(pool.mountpoint(ds).resolve("other.dat"), new byte[300_000]);
        String volume = ds + "#vol.img";

        EngineBackup.Result full = backup("a", engine, volume, 1);
        byte[] v1 = Files.readAllBytes(vol);
        assertNull(full.base());
        assertEquals(24L * MiB, full.backup().bytesRead());
        Map<String, String> recorded = full.backup().snapshot().snapshot().engine();
        assertEquals("zfs", recorded.get(EngineBackup.ENGINE));
        assertEquals(full.snapshot().name(), recorded.get(EngineBackup.SNAPSHOT));
        assertEquals(pool.zfs.get(ds + "@" + full.snapshot().name()).guid(),
                recorded.get(EngineBackup.GUID));
        assertEquals(ds, recorded.get(ZfsEngine.DATASET));

        writeAt(vol, 3L * MiB + 5000, 4096, 2);      // in 1 MiB block 3
        writeAt(vol, 17L * MiB, 100, 3);             // block 17
        writeAt(vol, 17L * MiB + 40_000, 100, 4);    // block 17 again
        Files.delete(pool.mountpoint(ds).resolve("other.dat"));
        EngineBackup.Result inc = backup("a", engine, volume, 1);
        byte[] v2 = Files.readAllBytes(vol);
        assertEquals(full.snapshot().name(), inc.base().name());
        assertTrue(inc.changeList());
        assertEquals(full.backup().snapshot().id(), inc.parent().id());
        assertEquals(2L * MiB, inc.backup().bytesRead(), "two 1 MiB blocks hold every changed record");
        assertEquals(List.of(full.snapshot().name()), inc.deleted());
        assertEquals(List.of(inc.snapshot().name()), snapshotNames(ds));

        try (RandomAccessFile f = new RandomAccessFile(vol.toFile(), "rw")) {
            f.setLength(10L * MiB + 5000);
        }
        EngineBackup.Result cut = backup("a", engine, volume, 1);
        byte[] v3 = Files.readAllBytes(vol);
        assertTrue(cut.changeList());
        assertEquals(10L * MiB + 5000, cut.backup().bytesTotal());
        assertTrue(cut.backup().bytesRead() <= MiB, "only the block holding the new end: " + cut.backup().bytesRead());

        assertArrayEquals(v1, restore("a", full.backup().snapshot()));
        assertArrayEquals(v2, restore("a", inc.backup().snapshot()));
        assertArrayEquals(v3, restore("a", cut.backup().snapshot()));
        assertFalse(TestPool.cmd("zfs", "list", "-H", "-o", "name").contains(ZfsEngine.READ_CLONE_PREFIX),
                "every temporary clone is destroyed");
    }

    @Test
    void lifecycleKeepsForeignSnapshotsAndAsManyOfItsOwnAsAsked() throws Exception {
        String ds = dataset(2L * MiB, 5);
        String volume = ds + "#vol.img";
        TestPool.cmd("zfs", "snapshot", ds + "@mine");
        TestPool.cmd("zfs", "snapshot", ds + "@ferry-looks-like-ours"); // no Ferry mark: not Ferry's
        EngineBackup.Result b1 = backup("b", engine, volume, 2);
        Thread.sleep(5); // snapshot names carry milliseconds
        EngineBackup.Result b2 = backup("b", engine, volume, 2);
        Thread.sleep(5);
        EngineBackup.Result b3 = backup("b", engine, volume, 2);
        assertEquals(List.of("mine", "ferry-looks-like-ours", b2.snapshot().name(), b3.snapshot().name()),
                snapshotNames(ds));
        assertEquals(List.of(b1.snapshot().name()), b3.deleted());
        assertEquals(b2.snapshot().name(), b3.base().name());
        assertThrows(IOException.class, () -> engine.deleteSnapshot(new EngineSnapshot(volume, "mine", null, null,
                Map.of())), "the engine refuses to delete a snapshot it did not make");
        assertTrue(snapshotNames(ds).contains("mine"));
    }

    @Test
    void twoRepositoriesBackingUpOneDatasetEachKeepTheirOwnBase() throws Exception {
        String ds = dataset(4L * MiB, 9);
        String volume = ds + "#vol.img";
        EngineBackup.Result a1 = backup("g1", engine, volume, 1);
        Thread.sleep(5);
        EngineBackup.Result b1 = backup("g2", engine, volume, 1);
        assertEquals(List.of(), b1.deleted(), "a backup into g2 leaves the base of g1 alone");
        assertEquals(List.of(a1.snapshot().name(), b1.snapshot().name()), snapshotNames(ds));
        writeAt(pool.mountpoint(ds).resolve("vol.img"), 100, 10, 11);
        Thread.sleep(5);
        EngineBackup.Result a2 = backup("g1", engine, volume, 1);
        assertEquals(a1.snapshot().name(), a2.base().name(), "g1 is still incremental from its own base");
        assertTrue(a2.changeList());
        assertEquals(MiB, a2.backup().bytesRead());
        assertEquals(List.of(a1.snapshot().name()), a2.deleted());
        assertEquals(List.of(b1.snapshot().name(), a2.snapshot().name()), snapshotNames(ds));
        try (Store s = store("g1"); Repository repo = Repository.open(s, KEY)) {
            assertEquals(repo.config().id(), pool.zfs.get(ds + "@" + a2.snapshot().name()).userProperties()
                    .get(Zfs.REPOSITORY_PROPERTY));
        }
    }

    @Test
    void aSecondBackupOfAVolumeBeingBackedUpIsRefusedAndTakesNoSnapshot() throws Exception {
        String ds = dataset(2L * MiB, 10);
        String volume = ds + "#vol.img";
        try (VolumeLock held = VolumeLock.acquire(engine.name(), volume)) {
            IOException e = assertThrows(IOException.class, () -> backup("h", engine, volume, 1));
            assertTrue(e.getMessage().startsWith("another backup of zfs volume " + volume + " is running on this node"),
                    e.getMessage());
            assertEquals(List.of(), snapshotNames(ds));
        }
        EngineBackup.Result r = backup("h", engine, volume, 1);
        assertEquals(List.of(r.snapshot().name()), snapshotNames(ds), "the lock is free again once released");
    }

    @Test
    void aNewGenerationOfTheVolumeFileMeansEverythingIsRead() throws Exception {
        String ds = dataset(2L * MiB, 12);
        String volume = ds + "#vol.img";
        EngineBackup.Result b1 = backup("i", engine, volume, 2);
        writeAt(pool.mountpoint(ds).resolve("vol.img"), 100, 10, 13);
        EngineSnapshot next = engine.createSnapshot(volume, "ferry-next", "test-repository");
        Map<String, String> base = b1.snapshot().properties();
        assertEquals(InodeGeneration.of(pool.mountpoint(ds).resolve("vol.img")).isPresent(),
                base.containsKey(ZfsEngine.GENERATION), "recorded exactly when the file system tells it");
        assertTrue(engine.changedRanges(withGeneration(b1.snapshot(), base, "7"), withGeneration(next, base, "7"))
                .isPresent(), "same generation: the stream's extents are used");
        assertTrue(engine.changedRanges(withGeneration(b1.snapshot(), base, null), withGeneration(next, base, "8"))
                .isPresent(), "a generation known on one side only tells nothing");
        assertEquals(java.util.Optional.empty(), engine.changedRanges(withGeneration(b1.snapshot(), base, "7"),
                withGeneration(next, base, "8")), "a new generation: the file was made again, read it whole");
        engine.deleteSnapshot(next);
    }

    /** {@code s} with the reader facts of {@code facts} and generation {@code gen} (none if null). */
    private static EngineSnapshot withGeneration(EngineSnapshot s, Map<String, String> facts, String gen) {
        Map<String, String> p = new java.util.LinkedHashMap<>(facts);
        p.remove(ZfsEngine.GENERATION);
        if (gen != null) {
            p.put(ZfsEngine.GENERATION, gen);
        }
        return new EngineSnapshot(s.volume(), s.name(), s.guid(), s.created(), p);
    }

    @Test
    void aFailedBackupLeavesTheBaseSoTheNextIsStillIncremental() throws Exception {
        String ds = dataset(4L * MiB, 6);
        String volume = ds + "#vol.img";
        EngineBackup.Result b1 = backup("c", engine, volume, 1);
        Engine failing = new FailingOpen(engine);
        IOException e = assertThrows(IOException.class, () -> backup("c", failing, volume, 1));
        assertEquals("disk pulled", e.getMessage());
        assertEquals(List.of(b1.snapshot().name()), snapshotNames(ds), "the failed backup's snapshot is gone, "
                + "the base stays");
        writeAt(pool.mountpoint(ds).resolve("vol.img"), 100, 10, 7);
        EngineBackup.Result b2 = backup("c", engine, volume, 1);
        assertEquals(b1.snapshot().name(), b2.base().name());
        assertTrue(b2.changeList());
        assertEquals(MiB, b2.backup().bytesRead());
    }

    @Test
    void aDamagedSendStreamFailsTheBackupAndKeepsTheBase() throws Exception {
        String ds = dataset(4L * MiB, 13);
        String volume = ds + "#vol.img";
        EngineBackup.Result b1 = backup("f", engine, volume, 1);
        writeAt(pool.mountpoint(ds).resolve("vol.img"), 2L * MiB, 5000, 14);
        // a zfs whose send output has one bit flipped in the middle
        Path script = tmp.resolve("zfs-flipping-send");
        Files.writeString(script, String.join("\n", "#!/bin/bash",
                "if [ \"$1\" = send ]; then",
                "  zfs \"$@\" | python3 -c 'import sys; d = bytearray(sys.stdin.buffer.read()); "
                        + "d[len(d) // 2] ^= 4; sys.stdout.buffer.write(d)'",
                "  exit ${PIPESTATUS[0]}",
                "fi",
                "exec zfs \"$@\"", ""));
        script.toFile().setExecutable(true);
        ZfsEngine damaging = new ZfsEngine(new Zfs(script.toString(), java.time.Duration.ofSeconds(60)));
        IOException e = assertThrows(IOException.class, () -> backup("f", damaging, volume, 1));
        assertTrue(e.getMessage().contains("ZFS send stream"), e.getMessage());
        assertEquals(List.of(b1.snapshot().name()), snapshotNames(ds), "the base stays, the new snapshot is gone");
        EngineBackup.Result b2 = backup("f", engine, volume, 1);
        assertTrue(b2.changeList());
        assertEquals(b1.snapshot().name(), b2.base().name());
    }

    @Test
    void aReplacedVolumeFileIsReadWhole() throws Exception {
        String ds = dataset(3L * MiB, 8);
        Path vol = pool.mountpoint(ds).resolve("vol.img");
        String volume = ds + "#vol.img";
        backup("d", engine, volume, 1);
        byte[] other = new byte[3 * MiB];
        new Random(9).nextBytes(other);
        Path fresh = vol.resolveSibling("vol.new");
        Files.write(fresh, other);
        Files.move(fresh, vol, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        EngineBackup.Result b2 = backup("d", engine, volume, 1);
        assertFalse(b2.changeList(), "a new inode: the stream of the old object says nothing about this one");
        assertEquals(3L * MiB, b2.backup().bytesRead());
        assertArrayEquals(other, restore("d", b2.backup().snapshot()));
    }

    @Test
    void restoreTargetsAreCreatedAndNeverOverwrittenUnlessForced() throws Exception {
        String target = pool.name + "/restored";
        try (RestoreTarget t = engine.prepareRestore(target, 3 * MiB, Map.of(ZfsEngine.FILE, "sub/disk.img"))) {
            byte[] b = new byte[4096];
            java.util.Arrays.fill(b, (byte) 7);
            t.writer().write(0, b, 0, b.length);
            t.finish(true);
        }
        Path file = pool.mountpoint(target).resolve("sub/disk.img");
        assertEquals(3L * MiB, Files.size(file));
        assertEquals(7, Files.readAllBytes(file)[4095]);
        IOException e = assertThrows(IOException.class,
                () -> engine.prepareRestore(target, MiB, Map.of(ZfsEngine.FILE, "sub/disk.img")));
        assertTrue(e.getMessage().contains("--force"), e.getMessage());
        assertEquals(7, Files.readAllBytes(file)[4095], "refused: nothing written");
        engine.prepareRestore(target, MiB, Map.of(ZfsEngine.FILE, "sub/disk.img", "force", "true")).close();
        assertEquals(MiB, Files.size(file));
        if (!pool.zfs.zvolsSupported()) {
            IOException z = assertThrows(IOException.class, () -> engine.prepareRestore(pool.name + "/zv", MiB, Map.of()));
            assertTrue(z.getMessage().contains("zvols"), z.getMessage());
        }
        assertThrows(IllegalArgumentException.class,
                () -> engine.prepareRestore(target, MiB, Map.of(ZfsEngine.FILE, "../escape.img")));
    }

    @Test
    void capabilitiesAreProbedNotAssumed() throws Exception {
        String ds = dataset(MiB, 12);
        TestPool.cmd("zfs", "snapshot", ds + "@probe");
        boolean holdWorks;
        try {
            TestPool.cmd("zfs", "hold", "probe", ds + "@probe");
            TestPool.cmd("zfs", "release", "probe", ds + "@probe");
            holdWorks = true;
        } catch (IOException e) {
            holdWorks = false;
        }
        assertEquals(holdWorks, pool.zfs.holdsSupported());
        Zfs.Dataset fs = pool.zfs.get(ds);
        assertEquals(Files.isDirectory(Path.of(fs.mountpoint(), ".zfs", "snapshot", "probe")),
                pool.zfs.snapshotDirectory(fs, "probe") != null);
        // whatever this ZFS has, a backup works: through .zfs/snapshot or a temporary clone
        EngineBackup.Result r = backup("e", engine, ds + "#vol.img", 1);
        assertEquals(MiB, r.backup().bytesRead());
    }

    /** The ZFS engine, except that opening a snapshot fails (after the snapshot was taken). */
    record FailingOpen(Engine inner) implements Engine {
        public String name() {
            return inner.name();
        }

        public List<EngineSnapshot> listSnapshots(String v) throws IOException {
            return inner.listSnapshots(v);
        }

        public EngineSnapshot createSnapshot(String v, String n, String repository) throws IOException {
            return inner.createSnapshot(v, n, repository);
        }

        public void deleteSnapshot(EngineSnapshot s) throws IOException {
            inner.deleteSnapshot(s);
        }

        public VolumeReader open(EngineSnapshot s) throws IOException {
            throw new IOException("disk pulled");
        }

        public Optional<ChangedRanges> changedRanges(EngineSnapshot b, EngineSnapshot t) throws IOException {
            return inner.changedRanges(b, t);
        }

        public RestoreTarget prepareRestore(String t, long size, Map<String, String> o) throws IOException {
            return inner.prepareRestore(t, size, o);
        }
    }
}
