package dev.ferry.block;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.engine.ChangedRanges;
import dev.ferry.repo.Repository;
import dev.ferry.repo.RepositoryException;
import dev.ferry.repo.Snapshots;
import dev.ferry.repo.Verifier;
import dev.ferry.store.LocalStore;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BlockBackupTest {
    static final int BS = 64 << 10;

    @TempDir
    Path dir;
    LocalStore store;
    Repository repo;
    Path vol;

    @BeforeEach
    void setUp() throws IOException {
        store = new LocalStore(dir.resolve("repo"));
        repo = Fixtures.init(store);
        vol = dir.resolve("vol.img");
    }

    @Test
    void fullBackupRestoresByteIdenticalAndSparse() throws Exception {
        // 8 MiB + a partial block: zero, random, text and random regions of 512 KiB
        long size = (8L << 20) + 12_345;
        Fixtures.writeVolume(vol, size, 512 << 10, 1);
        BlockBackup.Result r = Fixtures.backup(repo, vol, BS, null, null);
        assertEquals(size, r.bytesTotal());
        assertEquals(size, r.bytesRead());
        // regions 0, 4, 8, 12 (8 blocks each) and the short region 16 (the partial last block) are zero
        long zeroBytes = 4L * 8 * BS + 12_345;
        assertEquals(4 * 8 + 1, r.zeroBlocks());
        assertTrue(r.bytesNew() > 0 && r.bytesNew() < size, "stored " + r.bytesNew());

        Repository reopened = Fixtures.open(store);
        Snapshots.Stored snap = new Snapshots(reopened).load(r.snapshot().id());
        Path out = dir.resolve("out.img");
        BlockRestore.Result rr = Fixtures.restore(reopened, snap, out, false, b -> { });
        assertTrue(Fixtures.sameContent(vol, out));
        assertEquals(size - zeroBytes, rr.bytesWritten());
        assertEquals(33, rr.zeroBlocks());
        assertTrue(Fixtures.allocated(out) <= size - zeroBytes + BS,
                "zero blocks must stay holes: " + Fixtures.allocated(out) + " bytes allocated");
        assertTrue(new Verifier(reopened, m -> { }).verify(true, 2).ok());
    }

    @Test
    void incrementalWithChangeListReadsOnlyChangedBlocksAndEveryVersionRestores() throws Exception {
        long size = 6L << 20;
        Fixtures.writeVolume(vol, size, 256 << 10, 2);
        BlockBackup.Result full = Fixtures.backup(repo, vol, BS, null, null);
        Path v1 = dir.resolve("v1.img");
        Files.copy(vol, v1);

        ChangedRanges changes = new ChangedRanges();
        Random rnd = new Random(3);
        Fixtures.change(vol, 100, 10, rnd, changes);                   // block 0
        Fixtures.change(vol, 3 * BS - 5, 10, rnd, changes);            // straddles blocks 2 and 3
        Fixtures.change(vol, 40L * BS, BS, rnd, changes);              // exactly block 40
        Fixtures.change(vol, size - 1, 1, rnd, changes);               // last byte
        BlockBackup.Result inc = Fixtures.backup(repo, vol, null, full.snapshot(), changes);
        assertEquals(5L * BS, inc.bytesRead(), "blocks 0, 2, 3, 40 and the last one are read, nothing else");
        assertEquals(full.snapshot().id(), inc.snapshot().snapshot().parent());
        // 5 new data chunks and one rewritten manifest page
        assertEquals(6, inc.chunksNew());

        Repository reopened = Fixtures.open(store);
        Snapshots snaps = new Snapshots(reopened);
        Path out1 = dir.resolve("out1.img");
        Path out2 = dir.resolve("out2.img");
        Fixtures.restore(reopened, snaps.load(full.snapshot().id()), out1, false, b -> { });
        Fixtures.restore(reopened, snaps.load(inc.snapshot().id()), out2, false, b -> { });
        assertTrue(Fixtures.sameContent(v1, out1), "the full backup restores the first version");
        assertTrue(Fixtures.sameContent(vol, out2), "the incremental restores the second version on its own");
    }

    @Test
    void aChangeMissingFromTheListIsNotSeenWhichIsWhyTheListMustBeASuperset() throws Exception {
        Fixtures.writeVolume(vol, 2L << 20, 256 << 10, 4);
        BlockBackup.Result full = Fixtures.backup(repo, vol, BS, null, null);
        Fixtures.change(vol, 5L * BS, 100, new Random(5), null); // not listed
        ChangedRanges listed = new ChangedRanges().add(0, 10);
        Fixtures.change(vol, 0, 10, new Random(6), null);
        BlockBackup.Result inc = Fixtures.backup(repo, vol, null, full.snapshot(), listed);
        assertEquals(BS, inc.bytesRead());
        Path out = dir.resolve("out.img");
        Fixtures.restore(repo, inc.snapshot(), out, false, b -> { });
        assertNotEquals(-1L, Files.mismatch(vol, out), "the unlisted change cannot be in the backup");
    }

    @Test
    void incrementalWithoutChangeListReadsAllButStoresOnlyNewChunks() throws Exception {
        Fixtures.writeVolume(vol, 4L << 20, 256 << 10, 7);
        BlockBackup.Result full = Fixtures.backup(repo, vol, BS, null, null);
        Fixtures.change(vol, 10L * BS + 7, 3, new Random(8), null);
        BlockBackup.Result inc = Fixtures.backup(repo, vol, null, full.snapshot(), null);
        assertEquals(4L << 20, inc.bytesRead());
        assertEquals(2, inc.chunksNew(), "one data chunk and one page");
        Path out = dir.resolve("out.img");
        Fixtures.restore(repo, inc.snapshot(), out, false, b -> { });
        assertTrue(Fixtures.sameContent(vol, out));
    }

    @Test
    void unchangedManifestPagesAreReusedNotRewritten() throws Exception {
        // 4 KiB blocks, 40 MiB: 10240 blocks = 3 manifest pages of 4096
        int bs = 4096;
        long size = 40L << 20;
        Fixtures.writeVolume(vol, size, 1 << 20, 9);
        BlockBackup.Result full = Fixtures.backup(repo, vol, bs, null, null);
        assertEquals(3, full.snapshot().snapshot().volume().pages().size());
        ChangedRanges changes = new ChangedRanges();
        Fixtures.change(vol, 9000L * bs, 100, new Random(1), changes); // in page 2
        BlockBackup.Result inc = Fixtures.backup(repo, vol, null, full.snapshot(), changes);
        assertEquals(bs, inc.bytesRead());
        var before = full.snapshot().snapshot().volume().pages();
        var after = inc.snapshot().snapshot().volume().pages();
        assertEquals(before.get(0), after.get(0));
        assertEquals(before.get(1), after.get(1));
        assertNotEquals(before.get(2), after.get(2));
        assertEquals(2, inc.chunksNew(), "one block and one page, whatever the volume size");
    }

    @Test
    void volumeThatGrowsOrShrinksBetweenBackups() throws Exception {
        Fixtures.writeVolume(vol, 1_000_000, 100_000, 10);
        BlockBackup.Result a = Fixtures.backup(repo, vol, BS, null, null);
        // grow: new tail is read even though the change list does not mention it
        try (RandomAccessFile f = new RandomAccessFile(vol.toFile(), "rw")) {
            f.seek(1_000_000);
            byte[] tail = new byte[777_777];
            new Random(11).nextBytes(tail);
            f.write(tail);
        }
        BlockBackup.Result b = Fixtures.backup(repo, vol, null, a.snapshot(), new ChangedRanges());
        Path grown = dir.resolve("grown.img");
        Files.copy(vol, grown);
        // shrink to a size inside a block
        try (RandomAccessFile f = new RandomAccessFile(vol.toFile(), "rw")) {
            f.setLength(300_001);
        }
        BlockBackup.Result c = Fixtures.backup(repo, vol, null, b.snapshot(), new ChangedRanges());
        Path out = dir.resolve("out.img");
        Fixtures.restore(repo, b.snapshot(), out, false, x -> { });
        assertTrue(Fixtures.sameContent(grown, out));
        Path out2 = dir.resolve("out2.img");
        Fixtures.restore(repo, c.snapshot(), out2, false, x -> { });
        assertTrue(Fixtures.sameContent(vol, out2));
        assertEquals(300_001, Files.size(out2));
    }

    @Test
    void allZeroVolumeStoresNoDataAndNoPages() throws Exception {
        try (RandomAccessFile f = new RandomAccessFile(vol.toFile(), "rw")) {
            f.setLength(3L << 20);
        }
        BlockBackup.Result r = Fixtures.backup(repo, vol, BS, null, null);
        assertEquals(0, r.chunksNew());
        assertEquals(48, r.zeroBlocks());
        assertNull(r.snapshot().snapshot().volume().pages().get(0));
        Path out = dir.resolve("out.img");
        Fixtures.restore(repo, r.snapshot(), out, false, x -> { });
        assertEquals(3L << 20, Files.size(out));
        assertTrue(Fixtures.sameContent(vol, out));
    }

    @Test
    void emptyVolume() throws Exception {
        Files.write(vol, new byte[0]);
        BlockBackup.Result r = Fixtures.backup(repo, vol, BS, null, null);
        assertEquals(0, r.bytesTotal());
        Path out = dir.resolve("out.img");
        Fixtures.restore(repo, r.snapshot(), out, false, x -> { });
        assertEquals(0, Files.size(out));
    }

    @Test
    void badRequestsAreRefusedWithReasons() throws Exception {
        Fixtures.writeVolume(vol, 1 << 20, 1 << 16, 12);
        IllegalArgumentException noParent = assertThrows(IllegalArgumentException.class,
                () -> Fixtures.backup(repo, vol, BS, null, new ChangedRanges()));
        assertTrue(noParent.getMessage().contains("needs a parent"), noParent.getMessage());
        BlockBackup.Result full = Fixtures.backup(repo, vol, BS, null, null);
        IllegalArgumentException size = assertThrows(IllegalArgumentException.class,
                () -> Fixtures.backup(repo, vol, 2 * BS, full.snapshot(), null));
        assertTrue(size.getMessage().contains("fixed by the first backup"), size.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Fixtures.backup(repo, vol, 1000, null, null));
        assertThrows(IllegalArgumentException.class, () -> Fixtures.backup(repo, vol, 128 << 20, null, null));
    }

    @Test
    void interruptedRestoreResumesAndSkipsWhatIsInPlace() throws Exception {
        long size = 4L << 20;
        Fixtures.writeVolume(vol, size, 256 << 10, 13);
        BlockBackup.Result r = Fixtures.backup(repo, vol, BS, null, null);
        Path out = dir.resolve("out.img");
        AtomicLong seen = new AtomicLong();
        RuntimeException stop = new RuntimeException("simulated crash");
        assertThrows(RuntimeException.class, () -> Fixtures.restore(repo, r.snapshot(), out, false, b -> {
            if (seen.addAndGet(b) > size / 2) {
                throw stop;
            }
        }));
        assertNotEquals(-1L, Files.mismatch(vol, out), "the first run stopped half way");
        BlockRestore.Result again = Fixtures.restore(repo, r.snapshot(), out, false, b -> { });
        assertTrue(Fixtures.sameContent(vol, out));
        assertTrue(again.bytesAlreadyThere() > 0, "blocks written by the first run are checked and kept");
        assertTrue(again.bytesWritten() < size - again.bytesAlreadyThere() + 1);
    }

    @Test
    void restoreOverOtherDataZeroesWhatMustBeZero() throws Exception {
        long size = 2L << 20;
        Fixtures.writeVolume(vol, size, 256 << 10, 14);
        BlockBackup.Result r = Fixtures.backup(repo, vol, BS, null, null);
        Path out = dir.resolve("out.img");
        byte[] junk = new byte[(int) size];
        new Random(15).nextBytes(junk);
        Files.write(out, junk);
        BlockRestore.Result rr = Fixtures.restore(repo, r.snapshot(), out, false, b -> { });
        assertTrue(Fixtures.sameContent(vol, out), "junk in zero blocks must be overwritten with zeros");
        assertEquals(size, rr.bytesWritten());
    }

    @Test
    void damagedChunkFailsTheRestoreWithAClearError() throws Exception {
        Fixtures.writeVolume(vol, 1 << 20, 256 << 10, 16);
        BlockBackup.Result r = Fixtures.backup(repo, vol, BS, null, null);
        Path pack;
        try (var s = Files.walk(dir.resolve("repo/data"))) {
            pack = s.filter(Files::isRegularFile).findFirst().orElseThrow();
        }
        byte[] b = Files.readAllBytes(pack);
        b[100] ^= 1;
        Path tmp = dir.resolve("p.tmp");
        Files.write(tmp, b);
        Files.move(tmp, pack, StandardCopyOption.REPLACE_EXISTING);
        RepositoryException e = assertThrows(RepositoryException.class,
                () -> Fixtures.restore(Fixtures.open(store), r.snapshot(), dir.resolve("out.img"), false, x -> { }));
        assertTrue(e.getMessage().contains("does not decrypt"), e.getMessage());
    }

    @Test
    void blocksLargerThanOneRangedReadRoundTrip() throws Exception {
        // 16 MiB blocks: each chunk is larger than the restore's usual ranged read
        long size = (40L << 20) + 3;
        Fixtures.writeVolume(vol, size, 4 << 20, 17);
        BlockBackup.Result r = Fixtures.backup(repo, vol, 16 << 20, null, null);
        Path out = dir.resolve("out.img");
        Fixtures.restore(Fixtures.open(store), r.snapshot(), out, false, x -> { });
        assertTrue(Fixtures.sameContent(vol, out));
    }

    @Test
    void anErrorInAWorkerFailsTheBackupAndTheRestoreInsteadOfLeavingABlockOut() throws Exception {
        Fixtures.writeVolume(vol, 2L << 20, 256 << 10, 18);
        // an Error (as OutOfMemoryError would be) thrown where block work is reported
        Error boom = new Error("simulated out of memory");
        Error e = assertThrows(Error.class, () -> Fixtures.backup(repo, vol, BS, null, null, b -> {
            throw boom;
        }, null));
        assertEquals(boom, e);
        assertTrue(new dev.ferry.repo.Snapshots(repo).list().isEmpty(), "no snapshot with a missing block");

        BlockBackup.Result ok = Fixtures.backup(repo, vol, BS, null, null);
        Path out = dir.resolve("out.img");
        java.util.concurrent.atomic.AtomicInteger calls = new java.util.concurrent.atomic.AtomicInteger();
        assertThrows(Error.class, () -> Fixtures.restore(repo, ok.snapshot(), out, false, b -> {
            if (calls.incrementAndGet() == 3) {
                throw boom;
            }
        }));
    }
}
