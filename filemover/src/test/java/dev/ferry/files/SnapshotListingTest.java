package dev.ferry.files;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.progress.ProgressListener;
import dev.ferry.repo.KdfParams;
import dev.ferry.repo.KeySource;
import dev.ferry.repo.Repository;
import dev.ferry.repo.RepositoryException;
import dev.ferry.repo.Snapshots;
import dev.ferry.repo.Tree;
import dev.ferry.store.LocalStore;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Clock;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The entries {@code ferry ls} lists and how it prints them, on a tree whose content is known. */
class SnapshotListingTest {
    static final byte[] ODD = {'/', 'n', (byte) 0xff, (byte) 0xfe, '.', 'b', 'i', 'n'};
    static final long MTIME_NS = 1_600_000_000_123_456_789L; // 2020-09-13T12:26:40.123456789Z

    @TempDir
    Path tmp;
    Repository repo;
    Snapshots.Stored snap;

    @BeforeEach
    void backUpAKnownTree() throws Exception {
        Assumptions.assumeTrue(RawNames.exact(), "raw names need --add-opens java.base/sun.nio.fs");
        Path src = Files.createDirectories(tmp.resolve("src"));
        Path a = Files.write(src.resolve("a.txt"), "hello".getBytes(StandardCharsets.UTF_8));
        Files.setAttribute(a, "unix:mode", 0640);
        Files.setLastModifiedTime(a, FileTime.from(java.time.Instant.EPOCH.plusNanos(MTIME_NS)));
        Path dir = Files.createDirectories(src.resolve("dir/sub"));
        Files.write(src.resolve("dir/b.bin"), new byte[] {1, 2, 3});
        Files.createSymbolicLink(src.resolve("dir/link"), Path.of("../a.txt"));
        Files.write(RawNames.resolve(src, java.util.Arrays.copyOfRange(ODD, 1, ODD.length)), new byte[7]);
        Files.write(src.resolve("back\\slash"), new byte[1]);
        Files.write(src.resolve("line\nbreak"), new byte[2]);
        if ("root".equals(System.getProperty("user.name"))) {
            Files.setAttribute(a, "unix:uid", 1234);
            Files.setAttribute(a, "unix:gid", 5678);
        }
        repo = Repository.init(new LocalStore(tmp.resolve("repo")), new KeySource.Password("pw".toCharArray()),
                new KdfParams(1024, 1, 1), 4 << 20, Clock.systemUTC());
        snap = new FileBackup(repo, new FileBackup.Request(src, "src", null, List.of(), false, Map.of(), 1, null))
                .run(ProgressListener.NONE, Clock.systemUTC(), "h").snapshot();
        repo.flush();
        assertTrue(Files.isDirectory(dir));
    }

    private List<SnapshotListing.Entry> list(String path) throws Exception {
        List<SnapshotListing.Entry> out = new ArrayList<>();
        SnapshotListing.list(repo, snap, path, out::add);
        return out;
    }

    private static List<String> text(List<SnapshotListing.Entry> entries) {
        return entries.stream().map(e -> SnapshotListing.escape(e.path())).toList();
    }

    @Test
    void listsEverythingDepthFirstInNameOrderWithNamesThatAreNotUtf8() throws Exception {
        List<SnapshotListing.Entry> all = list(null);
        assertEquals(List.of("/a.txt", "/back\\\\slash", "/dir", "/dir/b.bin", "/dir/link", "/dir/sub",
                "/line\\x0abreak", "/n\\xff\\xfe.bin"), text(all));
        assertArrayEquals(ODD, all.get(7).path());
        assertArrayEquals(ODD, SnapshotListing.unescape(text(all).get(7)), "the bytes come back from the text");
        assertArrayEquals("/line\nbreak".getBytes(StandardCharsets.UTF_8), SnapshotListing.unescape(text(all).get(6)));
        assertEquals(text(all), text(list("/")));
        assertEquals(text(all), text(list("")));
    }

    @Test
    void aDirectoryPathListsItAndEverythingBelowAFilePathItself() throws Exception {
        assertEquals(List.of("/dir", "/dir/b.bin", "/dir/link", "/dir/sub"), text(list("dir")));
        assertEquals(List.of("/dir", "/dir/b.bin", "/dir/link", "/dir/sub"), text(list("/dir/")));
        assertEquals(List.of("/dir/sub"), text(list("dir/sub")));
        List<SnapshotListing.Entry> file = list("/dir/b.bin");
        assertEquals(List.of("/dir/b.bin"), text(file));
        assertEquals(3L, file.get(0).node().size());
    }

    @Test
    void aMissingPathIsAClearError() {
        RepositoryException missing = assertThrows(RepositoryException.class, () -> list("dir/nope"));
        assertEquals("snapshot " + snap.shortId() + " has no /dir/nope", missing.getMessage());
        RepositoryException throughFile = assertThrows(RepositoryException.class, () -> list("a.txt/x"));
        assertTrue(throughFile.getMessage().contains("/a.txt is a file, not a directory"), throughFile.getMessage());
        assertThrows(IllegalArgumentException.class, () -> list("dir/../a.txt"));
    }

    @Test
    void longLinesAndJson() throws Exception {
        List<SnapshotListing.Entry> all = list(null);
        String a = SnapshotListing.longLine(all.get(0));
        if ("root".equals(System.getProperty("user.name"))) { // the owner was set
            assertEquals("-rw-r-----  1234  5678            5 2020-09-13 12:26:40 /a.txt", a);
        }
        assertTrue(a.startsWith("-rw-r----- ") && a.endsWith("            5 2020-09-13 12:26:40 /a.txt"), a);
        String link = SnapshotListing.longLine(all.get(4));
        assertTrue(link.startsWith("lrwxrwxrwx ") && link.contains("            8 ") // the target's length
                && link.endsWith(" /dir/link -> ../a.txt"), link);
        assertTrue(SnapshotListing.longLine(all.get(2)).startsWith("drwx"), SnapshotListing.longLine(all.get(2)));

        Map<String, Object> ja = SnapshotListing.json(all.get(0));
        assertEquals("/a.txt", ja.get("path"));
        assertEquals("a.txt", ja.get("name"));
        assertEquals("file", ja.get("type"));
        assertEquals(0640, ja.get("mode"));
        assertEquals("-rw-r-----", ja.get("permissions"));
        assertEquals(5L, ja.get("size"));
        assertEquals("2020-09-13T12:26:40.123456789Z", ja.get("mtime"));
        assertEquals(MTIME_NS, ja.get("mtime_ns"));
        Map<String, Object> odd = SnapshotListing.json(all.get(7));
        assertEquals(Base64.getEncoder().encodeToString(ODD), odd.get("path_b64"));
        assertEquals(Base64.getEncoder().encodeToString(java.util.Arrays.copyOfRange(ODD, 1, ODD.length)),
                odd.get("name_b64"));
        assertTrue(!odd.containsKey("path") && !odd.containsKey("name"), odd.toString());
        assertEquals("../a.txt", SnapshotListing.json(all.get(4)).get("target"));
        assertEquals("symlink", SnapshotListing.json(all.get(4)).get("type"));
    }

    @Test
    void permissionsAsLsShowsThem() {
        assertEquals("-rwsr-xr-x", SnapshotListing.permissions(node(Tree.FILE, 04755)));
        assertEquals("-rw-r-Sr--", SnapshotListing.permissions(node(Tree.FILE, 02644)));
        assertEquals("drwxrwxrwt", SnapshotListing.permissions(node(Tree.DIR, 01777)));
        assertEquals("drwxr-x--T", SnapshotListing.permissions(node(Tree.DIR, 01750)));
        assertEquals("prw-r-----", SnapshotListing.permissions(node(Tree.FIFO, 0640)));
        assertEquals("c---------", SnapshotListing.permissions(node(Tree.CHAR, 0)));
    }

    private static Tree.Node node(String type, int mode) {
        return new Tree.Node("x", null, type, mode, 0, 0, 0, null, null, null, null, null, null, null, null, null,
                null, null);
    }

    @Test
    void escapeKeepsUtf8AndEscapesTheRest() {
        assertEquals("/caf\u00e9/\u65e5\u672c", SnapshotListing.escape("/caf\u00e9/\u65e5\u672c"
                .getBytes(StandardCharsets.UTF_8)));
        assertEquals("a\\x09b\\x7f\\xc2\\x85", SnapshotListing.escape("a\tb\u007f\u0085"
                .getBytes(StandardCharsets.UTF_8)));
        assertEquals("\\xe6\\x97", SnapshotListing.escape(new byte[] {(byte) 0xe6, (byte) 0x97})); // cut short
        assertEquals("\\xc0\\xaf", SnapshotListing.escape(new byte[] {(byte) 0xc0, (byte) 0xaf})); // overlong '/'
    }
}
