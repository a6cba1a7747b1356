package dev.ferry.files;

import dev.ferry.repo.ChunkId;
import dev.ferry.repo.Repository;
import dev.ferry.repo.RepositoryException;
import dev.ferry.repo.Snapshot;
import dev.ferry.repo.Snapshots;
import dev.ferry.repo.Tree;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * What {@code ferry ls} shows: the entries of a files snapshot, at and below a path, depth first in the order of
 * the trees (names sorted by their bytes), each with its path below the snapshot's root ({@code /app/config.yaml})
 * and its tree node; and the three ways to print one (a path, a long line, a JSON object).
 *
 * <p>Trees are read one directory at a time as the listing goes, so a listing of any size starts at once and
 * holds only the trees of the directories it is in.
 */
public final class SnapshotListing {
    private static final DateTimeFormatter LONG_TIME = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss", Locale.ROOT)
            .withZone(ZoneOffset.UTC);

    private SnapshotListing() {
    }

    /**
     * One entry.
     *
     * @param path the path's bytes: '/' and the names from the snapshot's root down to the entry, joined by '/'
     * @param node the entry's tree node
     */
    public record Entry(byte[] path, Tree.Node node) {
    }

    /** Receives the entries of a listing, in order. */
    @FunctionalInterface
    public interface Visitor {
        void accept(Entry entry) throws IOException;
    }

    /**
     * Lists the entry at {@code path} (names joined by '/'; leading and trailing '/' do not matter) and, if it
     * is a directory, everything below it. An empty path or "/" lists everything in the snapshot (its root, the
     * backed-up directory itself, is not an entry).
     *
     * @throws RepositoryException when the snapshot has no entry at {@code path}, or a name on the way is not a
     *                             directory; or when a tree is damaged
     */
    public static void list(Repository repo, Snapshots.Stored snapshot, String path, Visitor visitor)
            throws IOException {
        if (!Snapshot.KIND_FILES.equals(snapshot.snapshot().kind()) || snapshot.snapshot().tree() == null) {
            throw new RepositoryException("snapshot " + snapshot.shortId() + " is a " + snapshot.snapshot().kind()
                    + " snapshot; only files snapshots have entries to list");
        }
        Tree root = Tree.load(repo, ChunkId.parse(snapshot.snapshot().tree()));
        String[] parts = parts(path);
        if (parts.length == 0) {
            listTree(repo, root, new byte[0], visitor);
            return;
        }
        Tree.Node n = find(repo, root, path, snapshot.shortId());
        byte[] p = ("/" + String.join("/", parts)).getBytes(StandardCharsets.UTF_8);
        visitor.accept(new Entry(p, n));
        if (n.isDir()) {
            listTree(repo, Tree.load(repo, ChunkId.parse(n.subtree())), p, visitor);
        }
    }

    /** The node at {@code path} below {@code root} (see {@link #list}); the path must name an entry. */
    static Tree.Node find(Repository repo, Tree root, String path) throws IOException {
        return find(repo, root, path, "");
    }

    private static Tree.Node find(Repository repo, Tree root, String path, String shortId) throws IOException {
        String[] parts = parts(path);
        if (parts.length == 0) {
            throw new IllegalArgumentException("the root of a snapshot is not an entry");
        }
        String in = shortId.isEmpty() ? "the snapshot" : "snapshot " + shortId;
        Tree tree = root;
        StringBuilder rel = new StringBuilder();
        for (int i = 0; ; i++) {
            byte[] want = parts[i].getBytes(StandardCharsets.UTF_8);
            rel.append('/').append(parts[i]);
            Tree.Node found = tree.child(want);
            if (found == null) {
                throw new RepositoryException(in + " has no " + rel);
            }
            if (i == parts.length - 1) {
                return found;
            }
            if (!found.isDir()) {
                throw new RepositoryException("in " + in + ", " + rel + " is a " + found.type()
                        + ", not a directory: it has no " + rel + "/" + parts[i + 1]);
            }
            tree = Tree.load(repo, ChunkId.parse(found.subtree()));
        }
    }

    private static String[] parts(String path) {
        String p = path == null ? "" : path.replaceAll("^/+", "").replaceAll("/+$", "");
        if (p.isEmpty() || p.equals(".")) {
            return new String[0];
        }
        String[] parts = p.split("/+");
        for (String s : parts) {
            if (s.equals(".") || s.equals("..")) {
                throw new IllegalArgumentException("a path in a snapshot names entries from its root, without '.' "
                        + "or '..': '" + path + "'");
            }
        }
        return parts;
    }

    private static void listTree(Repository repo, Tree tree, byte[] dir, Visitor visitor) throws IOException {
        byte[] previous = null;
        String where = dir.length == 0 ? "" : RawNames.show(Arrays.copyOfRange(dir, 1, dir.length));
        for (Tree.Node n : tree.nodes()) {
            byte[] name = n.nameBytes();
            FileRestore.checkName(name, where);
            if (previous != null && Tree.compareNames(previous, name) >= 0) {
                throw new RepositoryException("the tree of '" + (where.isEmpty() ? "/" : where) + "' names '"
                        + RawNames.show(name) + "' twice or out of order; the snapshot is damaged");
            }
            previous = name;
            byte[] p = Arrays.copyOf(dir, dir.length + 1 + name.length);
            p[dir.length] = '/';
            System.arraycopy(name, 0, p, dir.length + 1, name.length);
            visitor.accept(new Entry(p, n));
            if (n.isDir()) {
                listTree(repo, Tree.load(repo, ChunkId.parse(n.subtree())), p, visitor);
            }
        }
    }

    /**
     * Bytes as one line of text: UTF-8 shown as it is, except that a backslash is written {@code \\}, and control
     * characters and bytes that are not valid UTF-8 are written {@code \xNN} (lower-case hex). Nothing is lost:
     * the bytes can be read back from the text, and a name with a newline is still one line.
     */
    public static String escape(byte[] bytes) {
        StringBuilder b = new StringBuilder(bytes.length + 8);
        CharsetDecoder strict = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        int i = 0;
        while (i < bytes.length) {
            int c = bytes[i] & 0xff;
            int len = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
                    : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
            String text = null;
            if (len == 1) {
                text = String.valueOf((char) c);
            } else if (len > 1 && i + len <= bytes.length) {
                try {
                    text = strict.decode(ByteBuffer.wrap(bytes, i, len)).toString();
                } catch (CharacterCodingException e) {
                    text = null;
                }
            }
            if (text == null) {
                hex(b, c);
                i++;
                continue;
            }
            int cp = text.codePointAt(0);
            if (cp == '\\') {
                b.append("\\\\");
            } else if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) {
                for (int k = i; k < i + len; k++) {
                    hex(b, bytes[k] & 0xff);
                }
            } else {
                b.append(text);
            }
            i += len;
        }
        return b.toString();
    }

    private static void hex(StringBuilder b, int v) {
        b.append("\\x").append(Character.forDigit(v >> 4, 16)).append(Character.forDigit(v & 15, 16));
    }

    /** {@code -rw-r--r--}: the type and permission bits as {@code ls -l} shows them. */
    public static String permissions(Tree.Node n) {
        char type = switch (n.type()) {
            case Tree.DIR -> 'd';
            case Tree.SYMLINK -> 'l';
            case Tree.FIFO -> 'p';
            case Tree.CHAR -> 'c';
            case Tree.BLOCK -> 'b';
            case Tree.SOCKET -> 's';
            default -> '-';
        };
        int m = n.mode();
        char[] c = new char[10];
        c[0] = type;
        for (int who = 0; who < 3; who++) {
            int bits = m >> (6 - 3 * who);
            c[1 + 3 * who] = (bits & 4) != 0 ? 'r' : '-';
            c[2 + 3 * who] = (bits & 2) != 0 ? 'w' : '-';
            boolean x = (bits & 1) != 0;
            boolean special = (m & (04000 >> who)) != 0; // set-uid, set-gid, sticky
            char on = who == 2 ? 't' : 's';
            c[3 + 3 * who] = special ? (x ? on : Character.toUpperCase(on)) : x ? 'x' : '-';
        }
        return new String(c);
    }

    /** The size {@code -l} shows: a file's length, a symlink target's length, else 0. */
    private static long size(Tree.Node n) {
        if (n.isFile()) {
            return n.size() == null ? 0 : n.size();
        }
        if (Tree.SYMLINK.equals(n.type())) {
            return n.targetBytes().length;
        }
        return 0;
    }

    /**
     * A line of {@code ls -l}: permissions, uid, gid, size, modification time (UTC, to the second), path, and for
     * a symlink its target: {@code -rw-r--r--  1000  1000      5 2026-12-01 08:00:00 /app/config.yaml}.
     */
    public static String longLine(Entry e) {
        Tree.Node n = e.node();
        String line = String.format(Locale.ROOT, "%s %5d %5d %12d %s %s", permissions(n), n.uid(), n.gid(), size(n),
                LONG_TIME.format(Instant.EPOCH.plusNanos(n.mtimeNs())), escape(e.path()));
        return Tree.SYMLINK.equals(n.type()) ? line + " -> " + escape(n.targetBytes()) : line;
    }

    /**
     * The JSON object of an entry: {@code path} (or {@code path_b64} when its bytes are not valid UTF-8, as in the
     * tree format), {@code name} / {@code name_b64}, {@code type}, {@code mode} (decimal), {@code permissions},
     * {@code uid}, {@code gid}, {@code mtime} (ISO-8601 UTC with nanoseconds), {@code mtime_ns}, and where they
     * apply {@code size}, {@code target} / {@code target_b64}, {@code rdev}, {@code link}.
     */
    public static Map<String, Object> json(Entry e) {
        Tree.Node n = e.node();
        Map<String, Object> m = new LinkedHashMap<>();
        put(m, "path", e.path());
        if (n.name() != null) {
            m.put("name", n.name());
        } else {
            m.put("name_b64", n.nameB64());
        }
        m.put("type", n.type());
        m.put("mode", n.mode());
        m.put("permissions", permissions(n));
        m.put("uid", n.uid());
        m.put("gid", n.gid());
        m.put("mtime", Instant.EPOCH.plusNanos(n.mtimeNs()).toString());
        m.put("mtime_ns", n.mtimeNs());
        if (n.isFile()) {
            m.put("size", n.size() == null ? 0 : n.size());
        }
        if (Tree.SYMLINK.equals(n.type())) {
            put(m, "target", n.targetBytes());
        }
        if (n.rdev() != null) {
            m.put("rdev", n.rdev());
        }
        if (n.link() != null) {
            m.put("link", n.link());
        }
        return m;
    }

    private static void put(Map<String, Object> m, String field, byte[] bytes) {
        String[] f = Tree.nameFields(bytes);
        if (f[0] != null) {
            m.put(field, f[0]);
        } else {
            m.put(field + "_b64", f[1]);
        }
    }

    /** The bytes of a path written by {@link #escape} (for tests and tools that read the text back). */
    static byte[] unescape(String text) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (int i = 0; i < text.length(); ) {
            char c = text.charAt(i);
            if (c == '\\' && i + 1 < text.length() && text.charAt(i + 1) == '\\') {
                out.write('\\');
                i += 2;
            } else if (c == '\\' && i + 3 < text.length() && text.charAt(i + 1) == 'x') {
                out.write(Integer.parseInt(text.substring(i + 2, i + 4), 16));
                i += 4;
            } else {
                int cp = text.codePointAt(i);
                out.writeBytes(new String(Character.toChars(cp)).getBytes(StandardCharsets.UTF_8));
                i += Character.charCount(cp);
            }
        }
        return out.toByteArray();
    }
}
