package dev.ferry.zfs.stream;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * ZFS's fletcher-4 checksum, computed incrementally: four 64-bit sums over the data taken as 32-bit words in
 * the byte order of the stream (a send stream is checksummed in its sender's native order). Every update
 * must cover a multiple of 4 bytes, which send-stream records and payloads always are.
 */
public final class Fletcher4 {
    private long a;
    private long b;
    private long c;
    private long d;

    /** Starts over (a send stream's checksum restarts at each BEGIN record). */
    public void reset() {
        a = b = c = d = 0;
    }

    /** Adds {@code buf}'s remaining bytes, read in {@code buf}'s byte order; leaves its position unchanged. */
    public void update(ByteBuffer buf) {
        int len = buf.remaining();
        if ((len & 3) != 0) {
            throw new IllegalArgumentException("fletcher-4 covers whole 32-bit words, not " + len + " bytes");
        }
        int p = buf.position();
        int end = p + len;
        long a0 = a, b0 = b, c0 = c, d0 = d;
        for (; p < end; p += 4) {
            a0 += buf.getInt(p) & 0xFFFFFFFFL;
            b0 += a0;
            c0 += b0;
            d0 += c0;
        }
        a = a0;
        b = b0;
        c = c0;
        d = d0;
    }

    /** Adds {@code len} bytes of {@code bytes} from {@code off}, as 32-bit words of {@code order}. */
    public void update(byte[] bytes, int off, int len, ByteOrder order) {
        update(ByteBuffer.wrap(bytes, off, len).slice().order(order));
    }

    /** The current checksum: words 0..3 as ZFS stores a {@code zio_cksum_t}. */
    public long[] value() {
        return new long[] {a, b, c, d};
    }

    /** Whether the checksum equals the four words {@code w}. */
    public boolean matches(long[] w) {
        return w[0] == a && w[1] == b && w[2] == c && w[3] == d;
    }
}
