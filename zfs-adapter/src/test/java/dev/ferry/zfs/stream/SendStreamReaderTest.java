package dev.ferry.zfs.stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;
import org.roaringbitmap.RoaringBitmap;

/**
 * The reader on streams built here: both byte orders, modern per-record checksums, compressed and embedded
 * writes, spill blocks, deduplicated writes, huge FREEOBJECTS ranges and {@code -R} packages. Real streams from
 * ZFS are covered by {@code SendStreamRealTest}.
 */
class SendStreamReaderTest {
    static final long OBJ = 7;

    static byte[] sample(ByteOrder order, boolean modern) {
        byte[] data = new byte[8192];
        for (int i = 0; i < data.length; i++) {
            data[i] = (byte) (i * 31);
        }
        return new StreamBuilder(order, modern)
                .begin(1, 1L << 17 | 1L << 16, 0xAAAA, 0xBBBB, "pool/fs@b", new byte[0])
                .freeObjects(0, 1)
                .object(OBJ, 8192, new byte[] {1, 2, 3, 4, 5})
                .write(OBJ, 0, 8192, data, null)
                .write(OBJ, 8192 * 4, 8192, null, new byte[1024])  // compressed: payload is 1 KiB
                .embedded(OBJ, 8192 * 9, 8192, 60)
                .byRef(OBJ, 8192 * 12, 8192)
                .spill(OBJ, 512)
                .free(OBJ, 8192 * 20, -1)
                .write(OBJ + 1, 0, 8192, data, null)
                .freeObjects(OBJ + 2, 422_212_465_065_952L)
                .end(0xAAAA)
                .bytes();
    }

    static ObjectChanges collect(byte[] s, long object) throws IOException {
        return ObjectChanges.collect(new SendStreamReader(new ByteArrayInputStream(s)), object);
    }

    @ParameterizedTest
    @ValueSource(strings = {"LE-old", "LE-modern", "BE-old", "BE-modern"})
    void decodesEveryRecordTypeInBothByteOrders(String variant) throws IOException {
        ByteOrder order = variant.startsWith("LE") ? ByteOrder.LITTLE_ENDIAN : ByteOrder.BIG_ENDIAN;
        byte[] s = sample(order, variant.endsWith("modern"));
        SendStreamReader r = new SendStreamReader(new ByteArrayInputStream(s));
        List<SendRecord> all = new ArrayList<>();
        for (SendRecord rec; (rec = r.next()) != null; ) {
            all.add(rec);
        }
        assertEquals(order, r.order());
        assertEquals(12, all.size());
        SendRecord.Begin b = (SendRecord.Begin) all.get(0);
        assertEquals(0xAAAA, b.toGuid());
        assertEquals(0xBBBB, b.fromGuid());
        assertEquals("pool/fs@b", b.toName());
        assertEquals(1L << 17 | 1L << 16, b.features());
        SendRecord.ObjectRecord o = (SendRecord.ObjectRecord) all.get(2);
        assertEquals(5, o.bonusLength());
        assertArrayEquals(new byte[] {1, 2, 3, 4, 5, 0, 0, 0}, o.bonus());
        SendRecord.Write compressed = (SendRecord.Write) all.get(4);
        assertEquals(8192, compressed.logicalSize());
        assertEquals(1024, compressed.payloadSize());
        assertEquals(422_212_465_065_952L, ((SendRecord.FreeObjects) all.get(10)).count());
        assertEquals(s.length, r.position());

        ObjectChanges c = collect(s, OBJ);
        RoaringBitmap blocks = c.ranges().toBlocks(8192, 8192 * 30);
        RoaringBitmap expected = RoaringBitmap.bitmapOf(0, 4, 9, 12);
        expected.add(20L, 30L);
        assertEquals(expected, blocks);
        assertFalse(c.objectFreed());
        assertTrue(collect(s, 1_000_000_000L).objectFreed(), "inside the huge FREEOBJECTS range");
        assertFalse(collect(s, OBJ + 1).objectFreed());
    }

    @Test
    void aRecordChecksumCatchesDamageWhereItHappens() {
        byte[] s = sample(ByteOrder.LITTLE_ENDIAN, true);
        s[312 * 3 + 30] ^= 1; // inside the OBJECT record's header area? no: in the third record
        SendStreamException e = assertThrows(SendStreamException.class, () -> collect(s, OBJ));
        assertTrue(e.getMessage().contains("checksum mismatch"), e.getMessage());
    }

    @Test
    void damageInAnOldStreamIsCaughtAtEnd() {
        byte[] s = sample(ByteOrder.BIG_ENDIAN, false);
        s[312 * 4 + 8 + 100] ^= 0x40; // inside the first WRITE's payload
        SendStreamException e = assertThrows(SendStreamException.class, () -> collect(s, OBJ));
        assertTrue(e.getMessage().contains("checksum mismatch at END"), e.getMessage());
    }

    @Test
    void compoundPackagesAndConcatenatedSubstreams() throws IOException {
        byte[] nv = new byte[64];
        StreamBuilder b = new StreamBuilder(ByteOrder.LITTLE_ENDIAN, true)
                .begin(2, 0, 0, 0, "pool/fs@b", nv).end(0);
        b.begin(1, 0, 0x11, 0, "pool/fs@a", new byte[0]).object(OBJ, 4096, new byte[0])
                .write(OBJ, 0, 4096, new byte[4096], null).end(0x11);
        b.begin(1, 0, 0x22, 0x11, "pool/fs@b", new byte[0]).write(OBJ, 4096, 4096, new byte[4096], null).end(0x22);
        byte[] s = b.packageEnd().bytes();
        SendStreamReader r = new SendStreamReader(new ByteArrayInputStream(s));
        SendRecord.Begin pkg = (SendRecord.Begin) r.next();
        assertEquals(SendRecord.Begin.COMPOUND, pkg.headerType());
        assertEquals(64, pkg.payload().length);
        int begins = 0;
        int ends = 0;
        for (SendRecord rec; (rec = r.next()) != null; ) {
            begins += rec instanceof SendRecord.Begin ? 1 : 0;
            ends += rec instanceof SendRecord.End ? 1 : 0;
        }
        assertEquals(2, begins);
        assertEquals(4, ends, "package header END, two substream ENDs, the final END");
        assertNull(r.next());

        // -I style: two substreams back to back, no package
        StreamBuilder two = new StreamBuilder(ByteOrder.BIG_ENDIAN, false);
        two.begin(1, 0, 0x11, 0, "p/f@a", new byte[0]).write(OBJ, 0, 4096, new byte[4096], null).end(0x11);
        two.begin(1, 0, 0x22, 0x11, "p/f@b", new byte[0]).write(OBJ, 8192, 4096, new byte[4096], null).end(0x22);
        ObjectChanges c = collect(two.bytes(), OBJ);
        assertEquals(RoaringBitmap.bitmapOf(0, 2), c.ranges().toBlocks(4096, 4096 * 4));
        assertEquals(0x22, c.endGuid());
    }

    @Test
    void unknownRecordTypesAndFeaturesAreRefused() {
        byte[] unknownType = new StreamBuilder(ByteOrder.LITTLE_ENDIAN, false)
                .begin(1, 0, 1, 0, "p/f@a", new byte[0]).raw(42).end(1).bytes();
        SendStreamException e = assertThrows(SendStreamException.class, () -> collect(unknownType, OBJ));
        assertTrue(e.getMessage().contains("unknown record type 42"), e.getMessage());

        byte[] unknownFeature = new StreamBuilder(ByteOrder.LITTLE_ENDIAN, false)
                .begin(1, 1L << 5, 1, 0, "p/f@a", new byte[0]).end(1).bytes();
        e = assertThrows(SendStreamException.class, () -> collect(unknownFeature, OBJ));
        assertTrue(e.getMessage().contains("features this reader does not know"), e.getMessage());
    }

    @Test
    void aRecordAfterTheLastEndOrBeforeABeginIsDamage() {
        byte[] s = new StreamBuilder(ByteOrder.LITTLE_ENDIAN, false)
                .begin(1, 0, 1, 0, "p/f@a", new byte[0]).end(1).free(OBJ, 0, 10).bytes();
        SendStreamException e = assertThrows(SendStreamException.class, () -> collect(s, OBJ));
        assertTrue(e.getMessage().contains("expected a BEGIN"), e.getMessage());
    }

    @Test
    void fletcher4MatchesItsDefinition() {
        Fletcher4 f = new Fletcher4();
        byte[] b = new byte[64];
        for (int i = 0; i < b.length; i++) {
            b[i] = (byte) (0xF0 + i);
        }
        f.update(b, 0, 32, ByteOrder.LITTLE_ENDIAN);
        f.update(b, 32, 32, ByteOrder.LITTLE_ENDIAN);
        long a = 0, bb = 0, c = 0, d = 0;
        java.nio.ByteBuffer buf = java.nio.ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < 64; i += 4) {
            a += buf.getInt(i) & 0xFFFFFFFFL;
            bb += a;
            c += bb;
            d += c;
        }
        assertArrayEquals(new long[] {a, bb, c, d}, f.value());
        assertThrows(IllegalArgumentException.class, () -> f.update(b, 0, 6, ByteOrder.LITTLE_ENDIAN));
    }
}
