package dev.ferry.block;

import dev.ferry.repo.BlobType;
import dev.ferry.repo.ChunkId;
import dev.ferry.repo.Repository;
import dev.ferry.repo.RepositoryException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * One page of a volume manifest: a chunk id per block, 32 zero bytes for a zero block. Stored as a metadata
 * chunk whose plaintext is {@code "FRMP" | version u8 (1) | count u32 LE | count x 32-byte id}.
 */
public final class ManifestPage {
    /** Blocks per page: 4096 ids (128 KiB) cover 4 GiB of a volume in 1 MiB blocks. */
    public static final int DEFAULT_PAGE_BLOCKS = 4096;
    static final byte[] MAGIC = "FRMP".getBytes(StandardCharsets.US_ASCII);
    static final int VERSION = 1;
    static final int HEADER = 9;
    private static final byte[] ZERO_ID = new byte[ChunkId.BYTES];

    private final byte[] ids; // count * 32

    public ManifestPage(int count) {
        this.ids = new byte[count * ChunkId.BYTES];
    }

    private ManifestPage(byte[] ids) {
        this.ids = ids;
    }

    public int count() {
        return ids.length / ChunkId.BYTES;
    }

    public boolean isZero(int i) {
        return Arrays.equals(ids, i * ChunkId.BYTES, (i + 1) * ChunkId.BYTES, ZERO_ID, 0, ChunkId.BYTES);
    }

    /** The chunk of entry {@code i}, or null for a zero block. */
    public ChunkId get(int i) {
        return isZero(i) ? null : ChunkId.of(ids, i * ChunkId.BYTES);
    }

    /** Sets entry {@code i}; null marks a zero block. */
    public void set(int i, ChunkId id) {
        if (id == null) {
            Arrays.fill(ids, i * ChunkId.BYTES, (i + 1) * ChunkId.BYTES, (byte) 0);
        } else {
            id.copyTo(ids, i * ChunkId.BYTES);
        }
    }

    /** Copies entries {@code [0, n)} from {@code other}. */
    public void copyFrom(ManifestPage other, int n) {
        System.arraycopy(other.ids, 0, ids, 0, n * ChunkId.BYTES);
    }

    /** Entries that are zero blocks. */
    public int zeroCount() {
        int n = 0;
        for (int i = 0; i < count(); i++) {
            if (isZero(i)) {
                n++;
            }
        }
        return n;
    }

    public boolean allZero() {
        for (int i = 0; i < count(); i++) {
            if (!isZero(i)) {
                return false;
            }
        }
        return true;
    }

    public byte[] encode() {
        ByteBuffer b = ByteBuffer.allocate(HEADER + ids.length).order(ByteOrder.LITTLE_ENDIAN);
        b.put(MAGIC).put((byte) VERSION).putInt(count()).put(ids);
        return b.array();
    }

    /** Parses a page's plaintext; {@link IllegalArgumentException} if it is not a valid page. */
    public static ManifestPage decode(byte[] plain) {
        ByteBuffer b = ByteBuffer.wrap(plain).order(ByteOrder.LITTLE_ENDIAN);
        if (plain.length < HEADER || !Arrays.equals(plain, 0, 4, MAGIC, 0, 4)) {
            throw new IllegalArgumentException("not a manifest page");
        }
        b.position(4);
        int version = b.get() & 0xFF;
        if (version != VERSION) {
            throw new IllegalArgumentException("manifest page version " + version + " is not supported");
        }
        long count = Integer.toUnsignedLong(b.getInt());
        if (count * ChunkId.BYTES != plain.length - HEADER) {
            throw new IllegalArgumentException("manifest page announces " + count + " entries in "
                    + (plain.length - HEADER) + " bytes");
        }
        return new ManifestPage(Arrays.copyOfRange(plain, HEADER, plain.length));
    }

    /** Stores the page as a metadata chunk (deduplicated like any chunk) and returns its id. */
    public ChunkId save(Repository repo) throws IOException {
        return repo.save(BlobType.METADATA, encode());
    }

    /** Loads page {@code id}, which must describe {@code expectedCount} blocks. */
    public static ManifestPage load(Repository repo, ChunkId id, int expectedCount) throws IOException {
        ManifestPage p;
        try {
            p = decode(repo.load(id));
        } catch (IllegalArgumentException e) {
            throw new RepositoryException("manifest page " + id.shortHex() + " is damaged: " + e.getMessage());
        }
        if (p.count() != expectedCount) {
            throw new RepositoryException("manifest page " + id.shortHex() + " has " + p.count()
                    + " entries where the manifest expects " + expectedCount);
        }
        return p;
    }
}
