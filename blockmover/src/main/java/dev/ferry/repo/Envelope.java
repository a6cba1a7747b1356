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
    static boolean worthCompressing(byte[] data, int off, int len, Scratch s) {
        if (len < SAMPLE_ABOVE) {
            return true;
        }
        s.sample = Scratch.ensure(s.sample, (int) Zstd.compressBound(SAMPLE_PIECE));
        com.github.luben.zstd.ZstdCompressCtx ctx = s.compressor(1);
        long in = 0;
        long out = 0;
        for (int start : new int[] {off, off + len / 2 - SAMPLE_PIECE / 2, off + len - SAMPLE_PIECE}) {
            out += ctx.compressByteArray(s.sample, 0, s.sample.length, data, start, SAMPLE_PIECE);
            in += SAMPLE_PIECE;
        }
        return out < in * 0.97;
    }

    /**
     * Reusable buffers for {@link #sealInto} and {@link #openInto}, one per thread: sealing and opening 1 MiB
     * chunks with fresh arrays each time made the garbage collector a visible part of a backup's cost.
     */
    public static final class Scratch {
        byte[] plain = new byte[0];
        byte[] sealed = new byte[0];
        byte[] out = new byte[0];
        byte[] sample = new byte[0];
        private com.github.luben.zstd.ZstdCompressCtx cctx;

        com.github.luben.zstd.ZstdCompressCtx compressor(int level) {
            if (cctx == null) {
                cctx = new com.github.luben.zstd.ZstdCompressCtx();
                cctx.setContentSize(true);
            }
            cctx.setLevel(level);
            return cctx;
        }


        private static final ThreadLocal<Scratch> LOCAL = ThreadLocal.withInitial(Scratch::new);

        /** This thread's scratch buffers. */
        public static Scratch local() {
            return LOCAL.get();
        }

        static byte[] ensure(byte[] b, int n) {
            return b.length >= n ? b : new byte[Math.max(n, b.length + b.length / 4)];
        }

        /** The sealed bytes of the last {@link #sealInto}. */
        public byte[] sealed() {
            return sealed;
        }

        /** The plaintext of the last {@link #openInto}. */
        public byte[] out() {
            return out;
        }
    }

    /**
     * Compresses when it pays, then encrypts into {@code s.sealed()}; returns the sealed length. Allocates
     * nothing once the scratch buffers have grown to the chunk size.
     */
    public int sealInto(Aead aead, byte[] aad, byte[] data, int off, int len, boolean tryCompress, Scratch s) {
        s.plain = Scratch.ensure(s.plain, 1 + (int) Zstd.compressBound(len));
        int plainLen = -1;
        if (tryCompress && len > 64 && worthCompressing(data, off, len, s)) {
            int n = s.compressor(zstdLevel).compressByteArray(s.plain, 1, s.plain.length - 1, data, off, len);
            if (n < len) {
                s.plain[0] = ZSTD;
                plainLen = 1 + (int) n;
            }
        }
        if (plainLen < 0) {
            s.plain[0] = RAW;
            System.arraycopy(data, off, s.plain, 1, len);
            plainLen = 1 + len;
        }
        s.sealed = Scratch.ensure(s.sealed, plainLen + Aead.OVERHEAD);
        return aead.sealInto(aad, s.plain, 0, plainLen, s.sealed, 0);
    }

    /**
     * Authenticates, decrypts and decompresses into {@code s.out()}; returns the plaintext length. Data larger
     * than {@code maxLength} is refused as damage.
     */
    public static int openInto(Aead aead, byte[] aad, byte[] sealed, int off, int len, int maxLength, Scratch s)
            throws Aead.AuthenticationException {
        s.plain = Scratch.ensure(s.plain, Math.max(0, len - Aead.OVERHEAD));
        int n = aead.openInto(aad, sealed, off, len, s.plain, 0);
        return decode(s.plain, n, maxLength, s);
    }

    /** One zstd decompression context per thread, reused. */
    private static final ThreadLocal<com.github.luben.zstd.ZstdDecompressCtx> DECOMPRESSOR =
            ThreadLocal.withInitial(com.github.luben.zstd.ZstdDecompressCtx::new);

    /** Decodes {@code encoding byte || body} ({@code plain[0, n)}) into {@code s.out}; returns its length. */
    private static int decode(byte[] plain, int n, int maxLength, Scratch s) throws Aead.AuthenticationException {
        if (n == 0) {
            throw new Aead.AuthenticationException("sealed object has no encoding byte");
        }
        switch (plain[0]) {
            case RAW:
                if (n - 1 > maxLength) {
                    throw new Aead.AuthenticationException("data of " + (n - 1) + " bytes exceeds " + maxLength);
                }
                s.out = Scratch.ensure(s.out, n - 1);
                System.arraycopy(plain, 1, s.out, 0, n - 1);
                return n - 1;
            case ZSTD: {
                long size = Zstd.getFrameContentSize(plain, 1, n - 1);
                if (size < 0 || size > maxLength) {
                    throw new Aead.AuthenticationException("zstd frame has no valid content size (" + size + ")");
                }
                s.out = Scratch.ensure(s.out, (int) size);
                int got;
                try {
                    got = DECOMPRESSOR.get().decompressByteArray(s.out, 0, (int) size, plain, 1, n - 1);
                } catch (com.github.luben.zstd.ZstdException e) {
                    throw new Aead.AuthenticationException("zstd frame does not decode: " + e.getMessage());
                }
                if (got != size) {
                    throw new Aead.AuthenticationException("zstd frame decodes to " + got + " bytes, not " + size);
                }
                return (int) size;
            }
            default:
                throw new Aead.AuthenticationException("unknown encoding " + (plain[0] & 0xFF));
        }
    }

    /** Compresses when it pays, then encrypts. */
    public byte[] seal(Aead aead, byte[] aad, byte[] data, int off, int len, boolean tryCompress) {
        Scratch s = Scratch.local();
        int n = sealInto(aead, aad, data, off, len, tryCompress, s);
        return java.util.Arrays.copyOf(s.sealed, n);
    }

    /**
     * Authenticates, decrypts and decompresses.
     *
     * @throws Aead.AuthenticationException on any damage, including an unknown encoding or a bad zstd frame
     */
    public static byte[] open(Aead aead, byte[] aad, byte[] sealed, int off, int len)
            throws Aead.AuthenticationException {
        byte[] plain = aead.open(aad, sealed, off, len);
        Scratch exact = new Scratch(); // its output buffer is allocated at exactly the decoded size
        int n = decode(plain, plain.length, MAX_PLAINTEXT, exact);
        return exact.out.length == n ? exact.out : java.util.Arrays.copyOf(exact.out, n);
    }
}
