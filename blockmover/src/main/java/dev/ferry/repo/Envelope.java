package dev.ferry.repo;

import com.github.luben.zstd.Zstd;
import dev.ferry.crypto.Aead;
import java.nio.charset.StandardCharsets;

/**
 * The sealed form shared by chunks, pack headers and index files: AES-256-GCM over
 * {@code encoding byte || body}, where encoding 0 means the body is the data as is and encoding 1 means the body
 * is one zstd frame (with its content size) of the data. Compression is kept only when it makes the data smaller,
 * and not tried on large data whose samples do not compress.
 */
public final class Envelope {
    public static final int RAW = 0;
    public static final int ZSTD = 1;
    /** Largest plaintext Ferry will decompress into: guards against a damaged or hostile size field. */
    public static final int MAX_PLAINTEXT = 256 << 20;

    static final byte[] AAD_PACK_HEADER = "ferry:pack-header:v1".getBytes(StandardCharsets.US_ASCII);
    static final byte[] AAD_INDEX = "ferry:index:v1".getBytes(StandardCharsets.US_ASCII);

    private final int zstdLevel;

    public Envelope(int zstdLevel) {
        this.zstdLevel = zstdLevel;
    }

    /** Associated data of a chunk: {@code "ferry:chunk:v1:" || type byte || 32-byte id}. */
    public static byte[] chunkAad(BlobType type, ChunkId id) {
        byte[] prefix = "ferry:chunk:v1:".getBytes(StandardCharsets.US_ASCII);
        byte[] aad = new byte[prefix.length + 1 + ChunkId.BYTES];
        System.arraycopy(prefix, 0, aad, 0, prefix.length);
        aad[prefix.length] = (byte) type.code();
        id.copyTo(aad, prefix.length + 1);
        return aad;
    }

    /** Data at least this large is sampled before a full compression attempt. */
    static final int SAMPLE_ABOVE = 128 << 10;
    static final int SAMPLE_PIECE = 16 << 10;

    /**
     * Whether compressing looks worthwhile: large data is judged by compressing three 16 KiB pieces (start,
     * middle, end) at zstd's fastest level, which costs a few percent of a full attempt; already compressed or
     * encrypted data then goes straight to encryption.
     */
    static boolean worthCompressing(byte[] data, int off, int len) {
        if (len < SAMPLE_ABOVE) {
            return true;
        }
        byte[] dst = new byte[(int) Zstd.compressBound(SAMPLE_PIECE)];
        long in = 0;
        long out = 0;
        for (int start : new int[] {off, off + len / 2 - SAMPLE_PIECE / 2, off + len - SAMPLE_PIECE}) {
            long n = Zstd.compressByteArray(dst, 0, dst.length, data, start, SAMPLE_PIECE, 1);
            if (Zstd.isError(n)) {
                return true;
            }
            in += SAMPLE_PIECE;
            out += n;
        }
        return out < in * 0.97;
    }

    /** Compresses when it pays, then encrypts. */
    public byte[] seal(Aead aead, byte[] aad, byte[] data, int off, int len, boolean tryCompress) {
        if (tryCompress && len > 64 && worthCompressing(data, off, len)) {
            byte[] plain = new byte[1 + (int) Zstd.compressBound(len)];
            long n = Zstd.compressByteArray(plain, 1, plain.length - 1, data, off, len, zstdLevel);
            if (Zstd.isError(n)) {
                throw new IllegalStateException("zstd compression failed: " + Zstd.getErrorName(n));
            }
            if (n < len) {
                plain[0] = ZSTD;
                return aead.seal(aad, plain, 0, 1 + (int) n);
            }
        }
        return aead.seal(aad, prefixed(RAW, data, off, len));
    }

    private static byte[] prefixed(int encoding, byte[] data, int off, int len) {
        byte[] plain = new byte[len + 1];
        plain[0] = (byte) encoding;
        System.arraycopy(data, off, plain, 1, len);
        return plain;
    }

    /**
     * Authenticates, decrypts and decompresses.
     *
     * @throws Aead.AuthenticationException on any damage, including an unknown encoding or a bad zstd frame
     */
    public static byte[] open(Aead aead, byte[] aad, byte[] sealed, int off, int len)
            throws Aead.AuthenticationException {
        byte[] plain = aead.open(aad, sealed, off, len);
        if (plain.length == 0) {
            throw new Aead.AuthenticationException("sealed object has no encoding byte");
        }
        switch (plain[0]) {
            case RAW:
                return java.util.Arrays.copyOfRange(plain, 1, plain.length);
            case ZSTD: {
                long size = Zstd.getFrameContentSize(plain, 1, plain.length - 1);
                if (size < 0 || size > MAX_PLAINTEXT) {
                    throw new Aead.AuthenticationException("zstd frame has no valid content size (" + size + ")");
                }
                byte[] out = new byte[(int) size];
                long n = Zstd.decompressByteArray(out, 0, out.length, plain, 1, plain.length - 1);
                if (Zstd.isError(n) || n != size) {
                    throw new Aead.AuthenticationException("zstd frame does not decode: " + Zstd.getErrorName(n));
                }
                return out;
            }
            default:
                throw new Aead.AuthenticationException("unknown encoding " + (plain[0] & 0xFF));
        }
    }
}
