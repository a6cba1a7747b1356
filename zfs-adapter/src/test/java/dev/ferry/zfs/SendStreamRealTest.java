package dev.ferry.zfs;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.zfs.stream.ObjectChanges;
import dev.ferry.zfs.stream.SendRecord;
import dev.ferry.zfs.stream.SendStreamException;
import dev.ferry.zfs.stream.SendStreamReader;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.roaringbitmap.RoaringBitmap;

/**
 * The send-stream reader on streams that real ZFS produced in this run: full and incremental, after writing
 * a few records, truncating a file and deleting another; the decoded extents are checked against what the
 * test changed, and damaged or cut streams are rejected.
 */
class SendStreamRealTest {
    static final int RECORD = 16 << 10;
    static final int SIZE = 4 << 20;
    @TempDir
    static Path tmp;
    static TestPool pool;
    static String ds;
    static byte[] full;
    static byte[] incremental;
    static byte[] truncation;
    static long volObject;
    static long otherObject;

    @BeforeAll
    static void streams() throws Exception {
        pool = TestPool.create(tmp);
        ds = pool.filesystem("streams", "recordsize=16K");
        Path mnt = pool.mountpoint(ds);
        Path vol = mnt.resolve("vol.img");
        Path other = mnt.resolve("other.dat");
        byte[] data = new byte[SIZE];
        new Random(1).nextBytes(data);
        Files.write(vol, data);
        Files.write(other, new byte[100_000]);
        volObject = (Long) Files.getAttribute(vol, "unix:ino");
        otherObject = (Long) Files.getAttribute(other, "unix:ino");
        TestPool.cmd("zfs", "snapshot", ds + "@a");
        try (RandomAccessFile f = new RandomAccessFile(vol.toFile(), "rw")) {
            byte[] b = new byte[4096];
            new Random(2).nextBytes(b);
            f.seek(5 * RECORD + 100); // inside record 5
            f.write(b);
            f.seek(200 * RECORD); // record 200 exactly
            f.write(b);
        }
        Files.delete(other);
        TestPool.cmd("zfs", "snapshot", ds + "@b");
        try (RandomAccessFile f = new RandomAccessFile(vol.toFile(), "rw")) {
            f.setLength(SIZE / 2 + 1000);
        }
        TestPool.cmd("zfs", "snapshot", ds + "@c");
        full = send(null, ds + "@a");
        incremental = send(ds + "@a", ds + "@b");
        truncation = send(ds + "@b", ds + "@c");
    }

    static byte[] send(String from, String to) throws IOException {
        try (InputStream in = pool.zfs.send(from, to)) {
            return in.readAllBytes();
        }
    }

    @AfterAll
    static void destroy() throws Exception {
        if (pool != null) {
            pool.close();
        }
    }

    static ObjectChanges changes(byte[] stream, long object) throws IOException {
        return ObjectChanges.collect(new SendStreamReader(new ByteArrayInputStream(stream)), object);
    }

    @Test
    void fullStreamWritesTheWholeFile() throws IOException {
        ObjectChanges c = changes(full, volObject);
        assertFalse(c.begin().incremental());
        assertEquals(ds + "@a", c.begin().toName());
        assertEquals(pool.zfs.get(ds + "@a").guid(), Long.toUnsignedString(c.begin().toGuid()));
        assertEquals(c.begin().toGuid(), c.endGuid());
        RoaringBitmap records = c.ranges().toBlocks(RECORD, SIZE);
        assertEquals(SIZE / RECORD, records.getCardinality(), "every record of the file is written");
        assertEquals(SIZE, c.bytesWritten());
        assertEquals(RECORD, c.objectRecord().blockSize());
        assertEquals(full.length, c.streamBytes());
    }

    @Test
    void incrementalNamesExactlyTheChangedRecordsAndTheDeletedFile() throws IOException {
        ObjectChanges c = changes(incremental, volObject);
        assertTrue(c.begin().incremental());
        assertEquals(pool.zfs.get(ds + "@a").guid(), Long.toUnsignedString(c.begin().fromGuid()));
        RoaringBitmap records = c.ranges().toBlocks(RECORD, SIZE);
        // record 5 (written inside) and record 200; 5*RECORD+100+4096 stays inside record 5
        assertEquals(RoaringBitmap.bitmapOf(5, 200), records);
        assertEquals(RoaringBitmap.bitmapOf(5, 200), c.written().toBlocks(RECORD, SIZE));
        assertTrue(c.freed().toBlocks(RECORD, SIZE).isEmpty(), "nothing inside the file was freed");
        assertEquals(2L * RECORD, c.bytesWritten());
        assertFalse(c.objectFreed());
        assertTrue(changes(incremental, otherObject).objectFreed(), "the deleted file's object is freed");
    }

    @Test
    void truncationFreesTheTail() throws IOException {
        ObjectChanges c = changes(truncation, volObject);
        RoaringBitmap records = c.ranges().toBlocks(RECORD, SIZE);
        int keep = (SIZE / 2 + 1000) / RECORD; // the record holding the new end
        for (int r = keep + 1; r < SIZE / RECORD; r++) {
            assertTrue(records.contains(r), "record " + r + " past the new end is freed");
        }
        for (int r = 0; r < keep; r++) {
            assertFalse(records.contains(r), "record " + r + " before the new end is untouched");
        }
        assertTrue(c.freeRecords() > 0);
        assertTrue(c.written().toBlocks(RECORD, SIZE).getCardinality() <= 1, "at most the record of the new end "
                + "is rewritten");
        assertEquals(records, RoaringBitmap.or(c.freed().toBlocks(RECORD, SIZE), c.written().toBlocks(RECORD, SIZE)));
    }

    @Test
    void everyByteOfAStreamIsCheckedSoAFlippedBitIsFound() {
        Random rnd = new Random(3);
        for (int i = 0; i < 20; i++) {
            byte[] damaged = incremental.clone();
            int at = rnd.nextInt(damaged.length);
            damaged[at] ^= (byte) (1 << rnd.nextInt(8));
            IOException e = assertThrows(IOException.class, () -> changes(damaged, volObject), "flip at " + at);
            assertTrue(e instanceof SendStreamException, e.toString());
        }
    }

    @Test
    void aCutStreamIsTruncatedNotShort() {
        for (int cut : new int[] {0, 100, 312, 312 * 3 + 17, incremental.length / 2, incremental.length - 312}) {
            byte[] part = java.util.Arrays.copyOf(incremental, cut);
            SendStreamException e = assertThrows(SendStreamException.class, () -> changes(part, volObject));
            assertTrue(e.getMessage().contains("truncated") || e.getMessage().contains("empty")
                    || e.getMessage().contains("not a ZFS send stream"), e.getMessage());
        }
    }

    @Test
    void somethingElseIsNotAStream() {
        SendStreamException e = assertThrows(SendStreamException.class,
                () -> changes(new byte[4096], volObject));
        assertTrue(e.getMessage().contains("not a ZFS send stream"), e.getMessage());
    }

    @Test
    void recordsComeOutInOrderWithPayloadsReadable() throws IOException {
        SendStreamReader r = new SendStreamReader(new ByteArrayInputStream(incremental));
        SendRecord first = r.next();
        assertTrue(first instanceof SendRecord.Begin);
        byte[] written = null;
        for (SendRecord rec; (rec = r.next()) != null; ) {
            if (rec instanceof SendRecord.Write w && w.object() == volObject && w.offset() == 200L * RECORD) {
                written = new byte[(int) w.payloadSize()];
                int n = 0;
                for (int k; (k = r.readPayload(written, n, written.length - n)) > 0; ) {
                    n += k;
                }
                assertEquals(written.length, n);
            }
        }
        byte[] expected = new byte[4096];
        new Random(2).nextBytes(expected);
        assertArrayEquals(expected, java.util.Arrays.copyOf(written, 4096), "the WRITE payload is the new data");
    }
}
