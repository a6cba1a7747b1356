package dev.ferry.files;

import dev.ferry.block.BlockBackup;
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
 *
 * <p>Large page-structured files are not cut by content: a file of at least {@link #FIXED_MIN_FILE} bytes whose
 * size is a multiple of {@link #FIXED_ALIGN} ({@link #fixedPieces}) is cut every {@link #FIXED_SIZE} bytes from
 * offset 0, exactly where a block backup with the default block size cuts a volume. Such files are volume images
 * and database files, which are updated in place rather than shifted by insertions, so content-defined cuts buy
 * them nothing (they cost more: a write into a long zero run changes a chunk of up to 8 MiB); and their chunks
 * are then the same chunks as those of a block backup of the same bytes, so the two deduplicate.
 */
public final class Chunker {
    public static final int MIN_SIZE = 512 << 10;
    public static final int AVG_SIZE = 1 << 20;
    public static final int MAX_SIZE = 8 << 20;
    /** Files at least this large (and {@link #FIXED_ALIGN}-aligned in size) get {@link #FIXED_SIZE} pieces. */
    public static final long FIXED_MIN_FILE = 64L << 20;
    /** The size of such files is a multiple of this: the page or sector size of images and database files. */
    public static final int FIXED_ALIGN = 4096;
    /** The piece of such files: a block backup's default block, so that the chunks are the same. */
    public static final int FIXED_SIZE = BlockBackup.DEFAULT_BLOCK_SIZE;
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

    /**
     * Whether a file of {@code size} bytes is cut into {@link #FIXED_SIZE} pieces at offsets 0, 1 MiB, 2 MiB...
     * (the last one shorter) instead of content-defined chunks.
     */
    public static boolean fixedPieces(long size) {
        return size >= FIXED_MIN_FILE && size % FIXED_ALIGN == 0;
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
