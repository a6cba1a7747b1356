package dev.ferry.repo;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.ObjectReader;
import com.fasterxml.jackson.databind.ObjectWriter;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Base64;
import java.util.Deque;
import java.util.List;
import java.util.Map;

/**
 * A directory of a files snapshot: one metadata chunk (type 2) whose plaintext is UTF-8 JSON listing the
 * directory's entries, sorted by the bytes of their names. Files list the chunks of their content, directories
 * name the tree of their own entries. Part of the repository format (docs/FORMAT.md, "Files snapshots"): prune
 * and verify follow trees to find every chunk a files snapshot uses.
 *
 * @param version {@link #VERSION}
 * @param nodes   the entries, sorted by name bytes (unsigned), each name at most once
 * @param root    only in a snapshot's root tree: the backed-up directory's own metadata (name {@code ""},
 *                type {@code dir}, no subtree); null elsewhere
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record Tree(int version, List<Node> nodes, Node root) {
    public static final int VERSION = 1;
    public static final String FILE = "file";
    public static final String DIR = "dir";
    public static final String SYMLINK = "symlink";
    public static final String FIFO = "fifo";
    public static final String CHAR = "char";
    public static final String BLOCK = "block";
    public static final String SOCKET = "socket";

    private static final ObjectWriter WRITER = Json.MAPPER.writerFor(Tree.class)
            .without(SerializationFeature.INDENT_OUTPUT);
    private static final ObjectReader READER = Json.MAPPER.readerFor(Tree.class);

    /**
     * One directory entry.
     *
     * @param name      the name, when its bytes are valid UTF-8; else null and {@code nameB64} holds the bytes
     * @param nameB64   the name's bytes in base64 when they are not valid UTF-8
     * @param type      {@code file, dir, symlink, fifo, char, block, socket}
     * @param mode      permission bits with set-uid, set-gid and sticky (mode & 07777)
     * @param uid       owner
     * @param gid       group
     * @param mtimeNs   modification time, nanoseconds since 1970-01-01T00:00Z
     * @param ctimeNs   status change time (informational: incremental backups compare it)
     * @param inode     inode number (informational: incremental backups compare it)
     * @param device    device number of the file system (informational)
     * @param size      a file's length in bytes
     * @param content   a file's content in order: pieces that together are exactly {@code size} bytes
     * @param subtree   a directory's tree: chunk id hex of its {@link Tree}
     * @param target    a symlink's target, when valid UTF-8
     * @param targetB64 a symlink's target bytes in base64 when not valid UTF-8
     * @param rdev      a device's device number
     * @param link      for a file with more than one hard link: an id shared by every name of that file in the
     *                  snapshot ({@code "<device>:<inode>"}); the first such node in depth-first order holds the
     *                  content, and the later ones are restored as hard links to it
     * @param xattrs    extended attributes: name to base64 of the value
     */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Node(String name, String nameB64, String type, int mode, long uid, long gid, long mtimeNs,
                       Long ctimeNs, Long inode, Long device, Long size, List<Piece> content, String subtree,
                       String target, String targetB64, Long rdev, String link, Map<String, String> xattrs) {

        /** The name's bytes. */
        public byte[] nameBytes() {
            return bytesOf(name, nameB64, "name");
        }

        /** A symlink target's bytes. */
        public byte[] targetBytes() {
            return bytesOf(target, targetB64, "target");
        }

        public boolean isDir() {
            return DIR.equals(type);
        }

        public boolean isFile() {
            return FILE.equals(type);
        }
    }

    /**
     * A piece of a file's content: {@code size} bytes, held by chunk {@code id} (a data chunk whose plaintext is
     * exactly those bytes), or a hole of {@code size} zero bytes when {@code id} is null.
     */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Piece(String id, long size) {
        public boolean hole() {
            return id == null;
        }
    }

    /** The JSON plaintext of this tree. */
    /** The entry of this directory named {@code name} (its bytes), or null when there is none. */
    public Node child(byte[] name) {
        for (Node n : nodes) {
            if (java.util.Arrays.equals(n.nameBytes(), name)) {
                return n;
            }
        }
        return null;
    }

    public byte[] encode() {
        try {
            return WRITER.writeValueAsBytes(this);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Parses a tree's plaintext; damage is a {@link RepositoryException}. */
    public static Tree decode(byte[] json) throws RepositoryException {
        Tree t;
        try {
            t = READER.readValue(json);
        } catch (IOException e) {
            throw new RepositoryException("tree object is not valid JSON: " + e.getMessage());
        }
        if (t.version() > VERSION) {
            throw new RepositoryException.UnsupportedFormat("tree version " + t.version()
                    + " is newer than this Ferry understands");
        }
        if (t.nodes() == null) {
            throw new RepositoryException("tree object has no 'nodes'");
        }
        for (Node n : t.nodes()) {
            if (n.type() == null || (n.name() == null) == (n.nameB64() == null)) {
                throw new RepositoryException("tree entry without a type or with neither or both of name and name_b64");
            }
            if (n.isDir() && (n.subtree() == null || !n.subtree().matches("[0-9a-f]{64}"))) {
                throw new RepositoryException("directory entry '" + n.name() + "' has no valid subtree id");
            }
            if (n.content() != null) {
                for (Piece p : n.content()) {
                    if (p.size() < 0 || (p.id() != null && !p.id().matches("[0-9a-f]{64}"))) {
                        throw new RepositoryException("file entry '" + n.name() + "' has an invalid content piece");
                    }
                }
            }
        }
        return t;
    }

    /** Stores this tree as a metadata chunk; returns its id. */
    public ChunkId save(Repository repo) throws IOException {
        return repo.save(BlobType.METADATA, encode());
    }

    /** Reads a tree from the repository (authenticated and re-hashed like every chunk). */
    public static Tree load(Repository repo, ChunkId id) throws IOException {
        return decode(repo.load(id));
    }

    /** Reads the plaintext of a chunk. */
    @FunctionalInterface
    public interface Loader {
        byte[] load(ChunkId id) throws IOException;
    }

    /**
     * Every chunk a files snapshot uses: its trees and the content chunks of its files. A tree already in
     * {@code seenTrees} is skipped with everything under it (snapshots of one source share most trees), so
     * callers walking several snapshots pass one set.
     */
    public static void forEachChunk(Loader loader, String rootHex, java.util.Set<ChunkId> seenTrees,
                                    Repository.IoConsumer<ChunkId> action) throws IOException {
        Deque<ChunkId> todo = new ArrayDeque<>();
        todo.push(ChunkId.parse(rootHex));
        while (!todo.isEmpty()) {
            ChunkId id = todo.pop();
            if (!seenTrees.add(id)) {
                continue;
            }
            action.accept(id);
            Tree t = decode(loader.load(id));
            for (Node n : t.nodes()) {
                if (n.isDir()) {
                    todo.push(ChunkId.parse(n.subtree()));
                } else if (n.content() != null) {
                    for (Piece p : n.content()) {
                        if (p.id() != null) {
                            action.accept(ChunkId.parse(p.id()));
                        }
                    }
                }
            }
        }
    }

    /** The name fields for some bytes: {@code [name, null]} when valid UTF-8, else {@code [null, base64]}. */
    public static String[] nameFields(byte[] bytes) {
        try {
            String s = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes)).toString();
            return new String[] {s, null};
        } catch (CharacterCodingException e) {
            return new String[] {null, Base64.getEncoder().encodeToString(bytes)};
        }
    }

    private static byte[] bytesOf(String text, String b64, String what) {
        if (text != null) {
            return text.getBytes(StandardCharsets.UTF_8);
        }
        if (b64 != null) {
            return Base64.getDecoder().decode(b64);
        }
        throw new IllegalStateException("entry has no " + what);
    }

    /** Compares names as unsigned bytes: the order of nodes in a tree. */
    public static int compareNames(byte[] a, byte[] b) {
        return Arrays.compareUnsigned(a, b);
    }
}
