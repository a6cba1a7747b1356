package dev.ferry.engine;

import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.roaringbitmap.RoaringBitmap;

/**
 * Byte ranges of a volume that changed since a base snapshot. Engines add ranges as they find them, in any
 * order and overlapping; the block engine turns them into the set of blocks to read for its block size.
 */
public final class ChangedRanges {
    private long[] starts = new long[64];
    private long[] ends = new long[64];
    private int count;

    /** Adds {@code length} bytes at {@code offset}. */
    public ChangedRanges add(long offset, long length) {
        if (offset < 0 || length < 0 || offset + length < offset) {
            throw new IllegalArgumentException("invalid range " + offset + "+" + length);
        }
        if (length == 0) {
            return this;
        }
        if (count == starts.length) {
            starts = Arrays.copyOf(starts, count * 2);
            ends = Arrays.copyOf(ends, count * 2);
        }
        starts[count] = offset;
        ends[count] = offset + length;
        count++;
        return this;
    }

    /** Number of ranges added. */
    public int rangeCount() {
        return count;
    }

    /** The end of the last byte any range names (0 for no ranges). */
    public long end() {
        long e = 0;
        for (int i = 0; i < count; i++) {
            e = Math.max(e, ends[i]);
        }
        return e;
    }

    /**
     * These ranges cut at {@code size}. For an engine whose change list may run past the end of the volume (a
     * ZFS FREE record frees to the end of the object, 2^63-1); a change list given by a user is checked
     * against the volume's size instead, where a range past the end means it describes another volume.
     */
    public ChangedRanges clip(long size) {
        ChangedRanges out = new ChangedRanges();
        for (int i = 0; i < count; i++) {
            long e = Math.min(ends[i], size);
            if (starts[i] < e) {
                out.add(starts[i], e - starts[i]);
            }
        }
        return out;
    }

    /** Blocks of {@code blockSize} bytes touched by any range, for a volume of {@code volumeSize} bytes. */
    public RoaringBitmap toBlocks(int blockSize, long volumeSize) {
        long blocks = (volumeSize + blockSize - 1) / blockSize;
        RoaringBitmap out = new RoaringBitmap();
        for (int i = 0; i < count; i++) {
            long first = starts[i] / blockSize;
            long end = Math.min(blocks, ends[i] / blockSize + (ends[i] % blockSize == 0 ? 0 : 1)); // no overflow near 2^63
            if (first < end) {
                out.add(first, end);
            }
        }
        return out;
    }

    /**
     * Reads a change list file: one {@code OFFSET LENGTH} pair of decimal byte counts per line; blank lines
     * and lines starting with {@code #} are skipped. A malformed line is an error naming the line.
     */
    public static ChangedRanges parse(Path file) throws IOException {
        ChangedRanges out = new ChangedRanges();
        try (BufferedReader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            String line;
            int n = 0;
            while ((line = r.readLine()) != null) {
                n++;
                String t = line.strip();
                if (t.isEmpty() || t.startsWith("#")) {
                    continue;
                }
                String[] f = t.split("\\s+");
                try {
                    if (f.length != 2) {
                        throw new NumberFormatException();
                    }
                    out.add(Long.parseLong(f[0]), Long.parseLong(f[1]));
                } catch (IllegalArgumentException e) {
                    throw new IllegalArgumentException(file + " line " + n + ": expected 'OFFSET LENGTH' in bytes "
                            + "(two non-negative decimal numbers), got '" + t + "'");
                }
            }
        }
        return out;
    }
}
