package dev.ferry.block;

import java.util.Arrays;

/** Detection of all-zero blocks, which backups store as holes instead of data. */
public final class Zeros {
    private static final int REFERENCE_BYTES = 64 << 10;
    private static final byte[] REFERENCE = new byte[REFERENCE_BYTES];

    private Zeros() {
    }

    /**
     * Whether {@code len} bytes of {@code buf} from {@code off} are all zero. Compares against a zero array with
     * {@link Arrays#mismatch}, which the JIT vectorizes, in 64 KiB steps.
     */
    public static boolean isZero(byte[] buf, int off, int len) {
        int end = off + len;
        for (int p = off; p < end; p += REFERENCE_BYTES) {
            int n = Math.min(REFERENCE_BYTES, end - p);
            if (Arrays.mismatch(buf, p, p + n, REFERENCE, 0, n) >= 0) {
                return false;
            }
        }
        return true;
    }
}
