package dev.ferry.repo;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.crypto.Aead;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/** Lengths and counts in pack headers are u32 (docs/FORMAT.md): damage names them as such, never negative. */
class PackHeaderTest {
    private static final Aead AEAD = MasterKey.generate().aead();

    @Test
    void aHeaderLengthWithTheTopBitSetIsPrintedUnsigned() {
        byte[] pack = new byte[4096];
        ByteBuffer.wrap(pack, pack.length - 4, 4).order(ByteOrder.LITTLE_ENDIAN).putInt(0xFFFFFFF0);
        RepositoryException e = assertThrows(RepositoryException.Damaged.class, () -> Pack.readHeader("data/ab/ab",
                pack.length, (off, len) -> Arrays.copyOfRange(pack, (int) off, (int) off + len), AEAD));
        assertTrue(e.getMessage().contains("pack trailer names a header of 4294967280 bytes in a pack of 4096 bytes"),
                e.getMessage());
    }

    @Test
    void entryCountsAndLengthsArePrintedUnsigned() {
        byte[] header = new byte[9];
        System.arraycopy(Pack.HEADER_MAGIC, 0, header, 0, 4);
        header[4] = (byte) Pack.HEADER_VERSION;
        ByteBuffer.wrap(header, 5, 4).order(ByteOrder.LITTLE_ENDIAN).putInt(-1);
        IllegalArgumentException count = assertThrows(IllegalArgumentException.class, () -> Pack.decodeHeader(header));
        assertTrue(count.getMessage().contains("announces 4294967295 entries"), count.getMessage());

        byte[] entry = new byte[PackEntry.SERIALIZED_BYTES];
        ByteBuffer b = ByteBuffer.wrap(entry).order(ByteOrder.LITTLE_ENDIAN);
        b.put((byte) BlobType.DATA.code()).putLong(0).putInt(0x80000000).putInt(7);
        IllegalArgumentException length = assertThrows(IllegalArgumentException.class,
                () -> PackEntry.readFrom(ByteBuffer.wrap(entry).order(ByteOrder.LITTLE_ENDIAN)));
        assertTrue(length.getMessage().contains("length 2147483648, raw length 7"), length.getMessage());
    }
}
