package dev.ferry.repo;

import dev.ferry.crypto.Hashes;
import java.util.Arrays;

/** A chunk id: HMAC-SHA-256 of the chunk's plaintext under the repository's id key (32 bytes). */
public final class ChunkId implements Comparable<ChunkId> {
    public static final int BYTES = 32;

    private final byte[] bytes;

    private ChunkId(byte[] bytes) {
        this.bytes = bytes;
    }

    /** Wraps a copy of 32 bytes. */
    public static ChunkId of(byte[] bytes) {
        return of(bytes, 0);
    }

    public static ChunkId of(byte[] buf, int off) {
        if (buf.length - off < BYTES) {
            throw new IllegalArgumentException("a chunk id is 32 bytes");
        }
        return new ChunkId(Arrays.copyOfRange(buf, off, off + BYTES));
    }

    public static ChunkId parse(String hex) {
        if (hex.length() != 2 * BYTES) {
            throw new IllegalArgumentException("a chunk id is 64 hex digits: " + hex);
        }
        return new ChunkId(Hashes.unhex(hex));
    }

    /** A copy of the 32 bytes. */
    public byte[] toBytes() {
        return bytes.clone();
    }

    /** Writes the 32 bytes into {@code buf} at {@code off}. */
    public void copyTo(byte[] buf, int off) {
        System.arraycopy(bytes, 0, buf, off, BYTES);
    }

    /** Byte {@code i} of the id. */
    public byte byteAt(int i) {
        return bytes[i];
    }

    /** The {@code i}-th 64-bit word of the id, big-endian (i in 0..3). */
    long word(int i) {
        long v = 0;
        for (int k = 0; k < 8; k++) {
            v = (v << 8) | (bytes[i * 8 + k] & 0xFF);
        }
        return v;
    }

    static ChunkId ofWords(long w0, long w1, long w2, long w3) {
        byte[] b = new byte[BYTES];
        long[] w = {w0, w1, w2, w3};
        for (int i = 0; i < 4; i++) {
            for (int k = 7; k >= 0; k--) {
                b[i * 8 + k] = (byte) w[i];
                w[i] >>>= 8;
            }
        }
        return new ChunkId(b);
    }

    public String hex() {
        return Hashes.hex(bytes);
    }

    public String shortHex() {
        return hex().substring(0, 16);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ChunkId other && Arrays.equals(bytes, other.bytes);
    }

    @Override
    public int hashCode() {
        // ids are uniformly distributed: the first bytes are a good hash
        return (bytes[0] & 0xFF) << 24 | (bytes[1] & 0xFF) << 16 | (bytes[2] & 0xFF) << 8 | (bytes[3] & 0xFF);
    }

    @Override
    public int compareTo(ChunkId o) {
        return Arrays.compareUnsigned(bytes, o.bytes);
    }

    @Override
    public String toString() {
        return hex();
    }
}
