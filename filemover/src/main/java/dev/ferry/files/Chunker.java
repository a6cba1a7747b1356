package dev.ferry.files;

import dev.ferry.repo.MasterKey;
import java.nio.charset.StandardCharsets;

/**
 * Content-defined chunking (FastCDC with normalized chunking, level 2): a cut point depends only on the 64
 * bytes before it, so inserting or deleting bytes moves the cut points near the change and leaves the others
 * where they were, and unchanged parts of a file deduplicate.
 *
 * <p>Sizes: no cut before {@link #MIN_SIZE} bytes; between the minimum and {@link #AVG_SIZE} a cut needs the
 * {@value #BITS_SMALL} top bits of the gear hash to be zero, after it the {@value #BITS_LARGE} top bits; a cut is
 * forced at {@link #MAX_SIZE}. The gear hash is {@code h = (h << 1) + gear[byte]} (64-bit, wrapping), started
 * at zero at the minimum size.
 *
 * <p>The gear table is derived from the repository's id key: {@code gear[i]} is the little-endian u64 of the
 * first 8 bytes of {@code HMAC-SHA-256(id key, "ferry:gear:v1" || i)} ({@code i} one byte). A table known to
 * everyone would let whoever sees the chunk sizes in a repository test guesses about the content; this one
 * differs between repositories (see docs/FORMAT.md).
 */
public final class Chunker {
    public static final int MIN_SIZE = 512 << 10;
    public static final int AVG_SIZE = 1 << 20;
    public static final int MAX_SIZE = 8 << 20;
    static final int BITS_SMALL = 22;
    static final int BITS_LARGE = 18;
    private static final long MASK_SMALL = -1L << (64 - BITS_SMALL);
    private static final long MASK_LARGE = -1L << (64 - BITS_LARGE);

    private final long[] gear;

    public Chunker(long[] gear) {
        if (gear.length != 256) {
            throw new IllegalArgumentException("a gear table has 256 entries");
        }
        this.gear = gear.clone();
    }

    /** The chunker of a repository: its gear table comes from the repository's id key. */
    public static Chunker forKey(MasterKey key) {
        return new Chunker(gearTable(key));
    }

    /** {@code gear[i] = u64le(HMAC-SHA-256(id key, "ferry:gear:v1" || i)[0..8))}. */
    public static long[] gearTable(MasterKey key) {
        byte[] prefix = "ferry:gear:v1".getBytes(StandardCharsets.US_ASCII);
        byte[] msg = new byte[prefix.length + 1];
        System.arraycopy(prefix, 0, msg, 0, prefix.length);
        long[] g = new long[256];
        for (int i = 0; i < 256; i++) {
            msg[prefix.length] = (byte) i;
            byte[] mac = key.chunkId(msg).toBytes(); // chunk ids are HMAC-SHA-256 under the id key
            long v = 0;
            for (int b = 7; b >= 0; b--) {
                v = (v << 8) | (mac[b] & 0xff);
            }
            g[i] = v;
        }
        return g;
    }

    /**
     * The length of the chunk that starts at {@code buf[off]}, given {@code len} bytes available there. The
     * caller passes at least {@link #MAX_SIZE} bytes unless the data ends sooner, in which case a chunk may be
     * cut at the end of the data.
     */
    public int cut(byte[] buf, int off, int len) {
        int n = Math.min(len, MAX_SIZE);
        if (n <= MIN_SIZE) {
            return n;
        }
        int normal = Math.min(AVG_SIZE, n);
        long h = 0;
        long[] g = gear;
        int i = MIN_SIZE;
        for (; i < normal; i++) {
            h = (h << 1) + g[buf[off + i] & 0xff];
            if ((h & MASK_SMALL) == 0) {
                return i + 1;
            }
        }
        for (; i < n; i++) {
            h = (h << 1) + g[buf[off + i] & 0xff];
            if ((h & MASK_LARGE) == 0) {
                return i + 1;
            }
        }
        return n;
    }
}
