package dev.ferry.repo;

import dev.ferry.crypto.Aead;
import dev.ferry.crypto.Hashes;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Pack files: {@code sealed chunk* || sealed header || header length (u32 LE)}. The header lists every chunk
 * in the pack (see {@link PackEntry}), so a pack can be read, and an index rebuilt, from the pack alone.
 */
public final class Pack {
    static final byte[] HEADER_MAGIC = "FRPK".getBytes(StandardCharsets.US_ASCII);
    static final int HEADER_VERSION = 1;
    /** Upper bound for a header's sealed length: no writer makes a header this large. */
    static final int MAX_HEADER_BYTES = 64 << 20;

    private Pack() {
    }

    /** The header's plaintext: {@code "FRPK" | version u8 | count u32 | entries}. */
    static byte[] encodeHeader(List<PackEntry> entries) {
        ByteBuffer buf = ByteBuffer.allocate(4 + 1 + 4 + entries.size() * PackEntry.SERIALIZED_BYTES)
                .order(ByteOrder.LITTLE_ENDIAN);
        buf.put(HEADER_MAGIC).put((byte) HEADER_VERSION).putInt(entries.size());
        for (PackEntry e : entries) {
            e.writeTo(buf);
        }
        return buf.array();
    }

    static List<PackEntry> decodeHeader(byte[] plain) {
        ByteBuffer buf = ByteBuffer.wrap(plain).order(ByteOrder.LITTLE_ENDIAN);
        byte[] magic = new byte[4];
        if (plain.length < 9) {
            throw new IllegalArgumentException("pack header is too short");
        }
        buf.get(magic);
        if (!Arrays.equals(magic, HEADER_MAGIC)) {
            throw new IllegalArgumentException("pack header has the wrong magic");
        }
        int version = buf.get() & 0xFF;
        if (version != HEADER_VERSION) {
            throw new IllegalArgumentException("pack header version " + version + " is not supported");
        }
        long count = Integer.toUnsignedLong(buf.getInt()); // u32, as FORMAT.md says
        if (count * PackEntry.SERIALIZED_BYTES != buf.remaining()) {
            throw new IllegalArgumentException("pack header announces " + count + " entries but holds "
                    + buf.remaining() + " bytes of entries");
        }
        List<PackEntry> entries = new ArrayList<>((int) count);
        for (int i = 0; i < count; i++) {
            entries.add(PackEntry.readFrom(buf));
        }
        return entries;
    }

    /**
     * Reads the header from the last bytes of a pack given its total size, using {@code reader} for ranged
     * reads. Checks that every entry lies inside the data part of the pack.
     */
    public static List<PackEntry> readHeader(String name, long packSize, RangeReader reader, Aead aead)
            throws IOException {
        if (packSize < 4 + Aead.OVERHEAD) {
            throw new RepositoryException.Damaged(name, "pack is " + packSize + " bytes, too short to hold a header");
        }
        byte[] tail = reader.read(packSize - 4, 4);
        // u32 little-endian: a length with the top bit set is large, never negative
        long headerLen = Integer.toUnsignedLong(ByteBuffer.wrap(tail).order(ByteOrder.LITTLE_ENDIAN).getInt());
        if (headerLen < Aead.OVERHEAD || headerLen > MAX_HEADER_BYTES || headerLen > packSize - 4) {
            throw new RepositoryException.Damaged(name, "pack trailer names a header of " + headerLen
                    + " bytes in a pack of " + packSize + " bytes");
        }
        byte[] sealed = reader.read(packSize - 4 - headerLen, (int) headerLen);
        return parseHeader(name, sealed, 0, (int) headerLen, packSize - 4 - headerLen, aead);
    }

    private static List<PackEntry> parseHeader(String name, byte[] sealed, int off, int len, long dataEnd, Aead aead)
            throws RepositoryException {
        List<PackEntry> entries;
        try {
            entries = decodeHeader(Envelope.open(aead, Envelope.AAD_PACK_HEADER, sealed, off, len));
        } catch (Aead.AuthenticationException e) {
            throw new RepositoryException.Damaged(name, "pack header does not decrypt: " + e.getMessage());
        } catch (IllegalArgumentException e) {
            throw new RepositoryException.Damaged(name, e.getMessage());
        }
        for (PackEntry e : entries) {
            if (e.end() > dataEnd) {
                throw new RepositoryException.Damaged(name, "pack header places chunk " + e.id().shortHex()
                        + " at " + e.offset() + "+" + e.length() + ", past the data end " + dataEnd);
            }
        }
        return entries;
    }

    /** Ranged reads from a pack. */
    @FunctionalInterface
    public interface RangeReader {
        byte[] read(long offset, int length) throws IOException;
    }

    /**
     * Builds one pack in a local spool file. Not thread-safe. {@link #finish()} appends the header and returns
     * the pack's id (SHA-256 of the file); the caller stores the file and deletes it.
     */
    public static final class Writer implements AutoCloseable {
        private final Path file;
        private final OutputStream out;
        private final MessageDigest sha = Hashes.sha256();
        private final List<PackEntry> entries = new ArrayList<>();
        private final Aead aead;
        private final Envelope envelope;
        private long size;
        private boolean finished;

        public Writer(Path spoolDir, Aead aead, Envelope envelope) throws IOException {
            Files.createDirectories(spoolDir);
            this.file = Files.createTempFile(spoolDir, "pack-", ".tmp");
            this.out = new java.io.BufferedOutputStream(
                    Files.newOutputStream(file, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING),
                    1 << 20);
            this.aead = aead;
            this.envelope = envelope;
        }

        /** Appends an already sealed chunk. */
        public PackEntry add(BlobType type, ChunkId id, byte[] sealed, int rawLength) throws IOException {
            return add(type, id, sealed, 0, sealed.length, rawLength);
        }

        /** Appends the sealed chunk in {@code buf[off, off+len)}. */
        public PackEntry add(BlobType type, ChunkId id, byte[] buf, int off, int len, int rawLength)
                throws IOException {
            PackEntry e = new PackEntry(type, size, len, rawLength, id);
            try {
                out.write(buf, off, len);
            } catch (IOException x) {
                throw spoolFailure(x);
            }
            size += len;
            entries.add(e);
            return e;
        }

        private void write(byte[] b) throws IOException {
            try {
                out.write(b);
            } catch (IOException x) {
                throw spoolFailure(x);
            }
            size += b.length;
        }

        /** A write error of the spool file with its path ("No space left on device" alone names nothing). */
        private IOException spoolFailure(IOException x) {
            return new IOException("cannot write pack spool file " + file + ": " + x.getMessage(), x);
        }

        public long size() {
            return size;
        }

        public int count() {
            return entries.size();
        }

        public List<PackEntry> entries() {
            return List.copyOf(entries);
        }

        public Path file() {
            return file;
        }

        /**
         * Writes header and trailer, closes the spool and returns the pack id, the SHA-256 of the spool file. The
         * file is hashed here, reading it back from the page cache, rather than while chunks are added, so that
         * callers adding chunks under a lock do not hash under it.
         */
        public PackId finish() throws IOException {
            byte[] header = encodeHeader(entries);
            byte[] sealed = envelope.seal(aead, Envelope.AAD_PACK_HEADER, header, 0, header.length, true);
            write(sealed);
            write(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(sealed.length).array());
            try {
                out.close(); // flushes the buffer: where a full disk usually shows
            } catch (IOException x) {
                throw spoolFailure(x);
            }
            finished = true;
            try (java.io.InputStream in = Files.newInputStream(file)) {
                byte[] buf = new byte[1 << 20];
                long total = 0;
                for (int n; (n = in.read(buf)) > 0; ) {
                    sha.update(buf, 0, n);
                    total += n;
                }
                if (total != size) {
                    throw new IOException("pack spool " + file + " holds " + total + " bytes, " + size + " were written");
                }
            }
            return PackId.of(sha.digest());
        }

        /** Closes the spool; deletes it if the pack was never finished. */
        @Override
        public void close() throws IOException {
            out.close();
            if (!finished) {
                Files.deleteIfExists(file);
            }
        }
    }
}
