package dev.ferry.repo;

import dev.ferry.crypto.Aead;
import dev.ferry.crypto.Hashes;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * An index file ({@code index/<sha256 of the stored bytes>}): lists packs and the chunks each holds. Plaintext,
 * little-endian:
 * <pre>
 * "FRIX" | version u8 (1) | supersedes u32 | supersedes x 32-byte index ids
 *        | packs u32 | per pack: pack id (32 bytes) | entries u32 | entries x {@link PackEntry}
 * </pre>
 * stored sealed as an {@link Envelope} with associated data {@code "ferry:index:v1"}.
 *
 * @param supersedes index files whose content this one fully contains (written by prune); readers ignore them
 * @param packs      chunk entries per pack
 */
public record IndexFile(List<String> supersedes, Map<PackId, List<PackEntry>> packs) {
    public static final String PREFIX = "index/";
    static final byte[] MAGIC = "FRIX".getBytes(StandardCharsets.US_ASCII);
    static final int VERSION = 1;

    public int chunkCount() {
        return packs.values().stream().mapToInt(List::size).sum();
    }

    public byte[] encode() {
        int size = 4 + 1 + 4 + supersedes.size() * 32 + 4;
        for (List<PackEntry> es : packs.values()) {
            size += 32 + 4 + es.size() * PackEntry.SERIALIZED_BYTES;
        }
        ByteBuffer buf = ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
        buf.put(MAGIC).put((byte) VERSION).putInt(supersedes.size());
        for (String s : supersedes) {
            buf.put(Hashes.unhex(s));
        }
        buf.putInt(packs.size());
        for (Map.Entry<PackId, List<PackEntry>> p : packs.entrySet()) {
            buf.put(Hashes.unhex(p.getKey().hex())).putInt(p.getValue().size());
            for (PackEntry e : p.getValue()) {
                e.writeTo(buf);
            }
        }
        return buf.array();
    }

    public static IndexFile decode(byte[] plain) {
        ByteBuffer buf = ByteBuffer.wrap(plain).order(ByteOrder.LITTLE_ENDIAN);
        try {
            byte[] magic = new byte[4];
            buf.get(magic);
            if (!Arrays.equals(magic, MAGIC)) {
                throw new IllegalArgumentException("index has the wrong magic");
            }
            int version = buf.get() & 0xFF;
            if (version != VERSION) {
                throw new IllegalArgumentException("index version " + version + " is not supported");
            }
            int nSup = checkedCount(buf, 32);
            List<String> supersedes = new ArrayList<>(nSup);
            for (int i = 0; i < nSup; i++) {
                byte[] id = new byte[32];
                buf.get(id);
                supersedes.add(Hashes.hex(id));
            }
            int nPacks = checkedCount(buf, 36);
            Map<PackId, List<PackEntry>> packs = new LinkedHashMap<>();
            for (int p = 0; p < nPacks; p++) {
                byte[] packId = new byte[32];
                buf.get(packId);
                int n = checkedCount(buf, PackEntry.SERIALIZED_BYTES);
                List<PackEntry> entries = new ArrayList<>(n);
                for (int i = 0; i < n; i++) {
                    entries.add(PackEntry.readFrom(buf));
                }
                packs.merge(PackId.of(packId), entries, (a, b) -> {
                    List<PackEntry> all = new ArrayList<>(a);
                    all.addAll(b);
                    return all;
                });
            }
            if (buf.hasRemaining()) {
                throw new IllegalArgumentException("index has " + buf.remaining() + " trailing bytes");
            }
            return new IndexFile(supersedes, packs);
        } catch (java.nio.BufferUnderflowException e) {
            throw new IllegalArgumentException("index ends early");
        }
    }

    private static int checkedCount(ByteBuffer buf, int itemBytes) {
        int n = buf.getInt();
        if (n < 0 || (long) n * itemBytes > buf.remaining()) {
            throw new IllegalArgumentException("index announces " + n + " items but holds only " + buf.remaining()
                    + " more bytes");
        }
        return n;
    }

    /** Seals an index for storage. */
    public byte[] seal(Aead aead, Envelope envelope) {
        byte[] plain = encode();
        return envelope.seal(aead, Envelope.AAD_INDEX, plain, 0, plain.length, true);
    }

    /** Opens a stored index; checks its name against its hash first. */
    public static IndexFile open(String name, byte[] stored, Aead aead) throws RepositoryException {
        String expected = name.substring(PREFIX.length());
        if (!Hashes.sha256Hex(stored).equals(expected)) {
            throw new RepositoryException.Damaged(name, "content does not match its name (SHA-256 "
                    + Hashes.sha256Hex(stored).substring(0, 16) + "...; " + stored.length + " bytes): damaged or truncated");
        }
        try {
            return decode(Envelope.open(aead, Envelope.AAD_INDEX, stored, 0, stored.length));
        } catch (Aead.AuthenticationException e) {
            throw new RepositoryException.Damaged(name, "index does not decrypt: " + e.getMessage());
        } catch (IllegalArgumentException e) {
            throw new RepositoryException.Damaged(name, e.getMessage());
        }
    }

    /**
     * The index files that count: those not named in the {@code supersedes} list of another (readable) index
     * file. Keys are store names ({@code index/<id>}); the order of {@code files} is kept.
     */
    public static Map<String, IndexFile> current(Map<String, IndexFile> files) {
        Set<String> superseded = new HashSet<>();
        for (IndexFile f : files.values()) {
            for (String s : f.supersedes()) {
                superseded.add(PREFIX + s);
            }
        }
        Map<String, IndexFile> out = new LinkedHashMap<>(files);
        out.keySet().removeAll(superseded);
        return out;
    }

    /**
     * Of the damaged index files in {@code errors}, those that no readable file in {@code read} supersedes: the
     * ones whose loss makes the index incomplete (a superseded file's content is in its successor).
     */
    public static List<RepositoryException> unreplacedDamage(Map<String, IndexFile> read,
                                                             List<RepositoryException> errors) {
        Set<String> superseded = new HashSet<>();
        for (IndexFile f : read.values()) {
            for (String s : f.supersedes()) {
                superseded.add(PREFIX + s);
            }
        }
        List<RepositoryException> out = new ArrayList<>();
        for (RepositoryException e : errors) {
            if (!(e instanceof RepositoryException.Damaged d) || !superseded.contains(d.objectName())) {
                out.add(e);
            }
        }
        return out;
    }

    /** The store name of a damaged index file, or null if the error does not name one. */
    public static String damagedName(RepositoryException e) {
        return e instanceof RepositoryException.Damaged d ? d.objectName() : null;
    }

    /** "index file index/ab… cannot be read (cause)" for one or several damaged files. */
    public static String describeDamage(List<RepositoryException> damage) {
        List<String> parts = new ArrayList<>();
        for (RepositoryException e : damage) {
            parts.add(e.getMessage());
        }
        return (damage.size() == 1 ? "index file " : damage.size() + " index files ") + "cannot be read ("
                + String.join("; ", parts) + ")";
    }

    public static String objectName(byte[] stored) {
        return PREFIX + Hashes.sha256Hex(stored);
    }

    public static boolean isIndexName(String name) {
        return name.matches("index/[0-9a-f]{64}");
    }
}
