package dev.ferry.repo;

import java.nio.ByteBuffer;

/**
 * Where one chunk lies inside a pack. Serialized in 49 bytes, little-endian:
 * {@code type u8 | offset u64 | length u32 | raw_length u32 | chunk id (32 bytes)}.
 *
 * @param offset    byte offset of the sealed chunk in the pack file
 * @param length    length of the sealed chunk (nonce + ciphertext + tag)
 * @param rawLength length of the chunk's plaintext after decompression
 */
public record PackEntry(BlobType type, long offset, int length, int rawLength, ChunkId id) {
    public static final int SERIALIZED_BYTES = 1 + 8 + 4 + 4 + ChunkId.BYTES;

    public long end() {
        return offset + length;
    }

    void writeTo(ByteBuffer buf) {
        buf.put((byte) type.code());
        buf.putLong(offset);
        buf.putInt(length);
        buf.putInt(rawLength);
        byte[] idBytes = new byte[ChunkId.BYTES];
        id.copyTo(idBytes, 0);
        buf.put(idBytes);
    }

    /** Reads one entry; throws IllegalArgumentException on values no writer produces. */
    static PackEntry readFrom(ByteBuffer buf) {
        BlobType type = BlobType.fromCode(buf.get() & 0xFF);
        long offset = buf.getLong();
        int length = buf.getInt();
        int rawLength = buf.getInt();
        byte[] idBytes = new byte[ChunkId.BYTES];
        buf.get(idBytes);
        if (offset < 0 || length <= 0 || rawLength < 0) {
            // lengths are u32: print them so, not as the negative ints Java reads
            throw new IllegalArgumentException("invalid entry (offset " + Long.toUnsignedString(offset) + ", length "
                    + Integer.toUnsignedString(length) + ", raw length " + Integer.toUnsignedString(rawLength) + ")");
        }
        return new PackEntry(type, offset, length, rawLength, ChunkId.of(idBytes));
    }
}
