package dev.ferry.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.block.BlockBackup;
import dev.ferry.block.EngineBackup;
import dev.ferry.block.BlockRestore;
import dev.ferry.progress.ProgressListener;
import dev.ferry.repo.KdfParams;
import dev.ferry.repo.KeySource;
import dev.ferry.repo.Repository;
import dev.ferry.store.LocalStore;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.roaringbitmap.RoaringBitmap;

/** The engine SPI end to end with an engine found by ServiceLoader, as the ZFS and cStor adapters will be. */
class EngineSpiTest {
    @TempDir
    Path dir;

    @AfterEach
    void clear() {
        System.clearProperty("ferry.test.engine.root");
    }

    @Test
    void enginesAreFoundByNameAndUnknownNamesAreExplained() {
        assertTrue(Engines.all().stream().anyMatch(e -> e.name().equals("dir-test")));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Engines.named("nope"));
        assertTrue(e.getMessage().contains("dir-test"), e.getMessage());
    }

    @Test
    void incrementalBackupThroughAnEngineReadsWhatTheEngineSaysChanged() throws Exception {
        Path vols = Files.createDirectories(dir.resolve("vols"));
        System.setProperty("ferry.test.engine.root", vols.toString());
        byte[] data = new byte[2 << 20];
        new Random(1).nextBytes(data);
        Files.write(vols.resolve("pv1"), data);
        Engine engine = Engines.named("dir-test");
        Repository repo = Repository.init(new LocalStore(dir.resolve("repo")),
                new KeySource.Password("x".toCharArray()), new KdfParams(1024, 1, 1), 1 << 20, Clock.systemUTC());

        EngineSnapshot s1 = engine.createSnapshot("pv1", "one", "repo-id");
        BlockBackup.Result full;
        try (VolumeReader r = engine.open(s1)) {
            full = new BlockBackup(repo, new BlockBackup.Request(r, "dir-test:pv1", 64 << 10, null, null, Map.of(),
                    Map.of("engine", "dir-test", "snapshot", s1.name()), 2, null))
                    .run(ProgressListener.NONE, Clock.systemUTC(), "h");
        }
        try (RandomAccessFile f = new RandomAccessFile(vols.resolve("pv1").toFile(), "rw")) {
            f.seek(700_000);
            f.write(new byte[] {1, 2, 3});
        }
        EngineSnapshot s2 = engine.createSnapshot("pv1", "two", "repo-id");
        ChangedRanges changed = engine.changedRanges(s1, s2).orElseThrow();
        RoaringBitmap blocks = changed.toBlocks(64 << 10, 2 << 20);
        assertEquals(RoaringBitmap.bitmapOf(10), blocks, "700000 lies in 64 KiB block 10");
        BlockBackup.Result inc;
        try (VolumeReader r = engine.open(s2)) {
            inc = new BlockBackup(repo, new BlockBackup.Request(r, "dir-test:pv1", null, full.snapshot(), changed,
                    Map.of(), Map.of("engine", "dir-test", "snapshot", s2.name()), 2, null))
                    .run(ProgressListener.NONE, Clock.systemUTC(), "h");
        }
        assertEquals(64 << 10, inc.bytesRead());
        assertEquals("two", inc.snapshot().snapshot().engine().get("snapshot"));
        engine.deleteSnapshot(s1);
        assertEquals(1, engine.listSnapshots("pv1").size());

        try (RestoreTarget t = engine.prepareRestore("pv1-restored", 2 << 20, Map.of())) {
            new BlockRestore(repo, inc.snapshot(), t.writer(), 2).run(ProgressListener.NONE);
            assertFalse(Files.exists(vols.resolve("pv1-restored")), "not usable before finish");
            t.finish(true);
        }
        assertEquals(-1L, Files.mismatch(vols.resolve("pv1"), vols.resolve("pv1-restored")));
    }

    @Test
    void anEngineBackupGoesOnBesideADamagedSnapshotAndNamesIt() throws Exception {
        Path vols = Files.createDirectories(dir.resolve("vols"));
        System.setProperty("ferry.test.engine.root", vols.toString());
        byte[] data = new byte[1 << 20];
        new Random(2).nextBytes(data);
        Files.write(vols.resolve("pv1"), data);
        Engine engine = Engines.named("dir-test");
        Path repoDir = dir.resolve("repo");
        Repository repo = Repository.init(new LocalStore(repoDir), new KeySource.Password("x".toCharArray()),
                new KdfParams(1024, 1, 1), 1 << 20, Clock.systemUTC());
        EngineBackup.Request req = new EngineBackup.Request(engine, "pv1", 1, 64 << 10, Map.of(), 2, null,
                Clock.systemUTC(), "h");
        java.util.function.LongFunction<dev.ferry.progress.ProgressReporter> quiet = total ->
                new dev.ferry.progress.ProgressReporter("backup", total, new java.io.PrintWriter(
                        java.io.Writer.nullWriter()), false, java.time.Duration.ofHours(1), System::nanoTime);
        String first = new EngineBackup(repo, req).run(quiet).backup().snapshot().id();
        Path object = repoDir.resolve("snapshots").resolve(first);
        byte[] b = Files.readAllBytes(object);
        b[b.length / 2] ^= 1;
        Files.write(object, b);

        EngineBackup.Result second = new EngineBackup(repo, req).run(quiet);
        assertTrue(second.warnings().stream().anyMatch(w -> w.contains("snapshots/" + first)
                && w.contains("cannot be read")), second.warnings().toString());
        assertEquals(data.length, second.backup().bytesRead());
    }
}
