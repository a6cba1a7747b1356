package dev.ferry.files.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.cli.ExitCodes;
import dev.ferry.cli.Main;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Random;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Where {@code ferry restore files} refuses to write, and what it does with damaged data. */
class RestoreFilesSafetyTest {
    @TempDir
    Path tmp;
    Path repo;
    final Map<String, String> env = new HashMap<>();

    FilesCliTest.Run ferry(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.execute(args, env, new PrintWriter(out, true), new PrintWriter(err, true), null);
        return new FilesCliTest.Run(code, out.toString(), err.toString());
    }

    FilesCliTest.Run ok(String... args) {
        FilesCliTest.Run r = ferry(args);
        assertEquals(0, r.code(), r.toString());
        return r;
    }

    @BeforeEach
    void init() {
        repo = tmp.resolve("store/repo");
        env.put("FERRY_REPOSITORY", repo.toString());
        env.put("FERRY_PASSWORD", "secret");
        env.put("FERRY_HOSTNAME", "node-1");
        env.put("FERRY_STATE_DIR", tmp.resolve("state").toString());
        ok("init", "--kdf-memory", "1", "--kdf-iterations", "1", "--pack-size", "1");
    }

    static Map<String, byte[]> contents(Path dir) throws Exception {
        Map<String, byte[]> m = new TreeMap<>();
        try (var s = Files.walk(dir)) {
            for (Path p : s.toList()) {
                m.put(dir.relativize(p).toString(), Files.isRegularFile(p) ? Files.readAllBytes(p) : new byte[0]);
            }
        }
        return m;
    }

    @Test
    void aTargetInsideOrAroundTheRepositoryIsRefused() throws Exception {
        Path src = Files.createDirectories(tmp.resolve("src"));
        // names a restore into the repository's root or its parent would meet
        Files.writeString(src.resolve("config"), "not a repository config", StandardCharsets.UTF_8);
        Files.createDirectories(src.resolve("repo/snapshots"));
        Files.writeString(src.resolve("repo/config"), "nor this", StandardCharsets.UTF_8);
        ok("backup", "files", src.toString());
        Path link = Files.createSymbolicLink(tmp.resolve("alias"), repo.resolve("snapshots"));
        Path dangling = Files.createSymbolicLink(tmp.resolve("dangling"), repo.resolve("data/new"));
        Map<String, byte[]> before = contents(repo);
        for (Path target : new Path[] {repo, repo.resolve("snapshots"), repo.resolve("data/00/x"), repo.getParent(),
                tmp, link, dangling, repo.resolve("keys/../snapshots")}) {
            for (boolean overwrite : new boolean[] {false, true}) {
                FilesCliTest.Run r = overwrite ? ferry("restore", "files", "latest", target.toString(), "--overwrite")
                        : ferry("restore", "files", "latest", target.toString());
                assertEquals(ExitCodes.ERROR, r.code(), target + "\n" + r);
                assertTrue(r.err().contains("refusing to restore into " + target.normalize()), r.toString());
                assertTrue(r.err().contains("repository " + repo), r.toString());
            }
        }
        Map<String, byte[]> after = contents(repo);
        assertEquals(before.keySet(), after.keySet());
        for (String k : before.keySet()) {
            assertArrayEquals(before.get(k), after.get(k), k);
        }
        assertFalse(Files.exists(repo.resolve("data/new")));
        assertFalse(Files.exists(tmp.resolve("config")));
        assertTrue(ok("verify", "--read-data").out().contains("no errors"));
        // beside the repository is fine
        ok("restore", "files", "latest", tmp.resolve("store/out").toString());
        assertEquals("nor this", Files.readString(tmp.resolve("store/out/repo/config")));
    }

    private java.util.Set<Path> packs() throws IOException {
        if (!Files.isDirectory(repo.resolve("data"))) {
            return new java.util.HashSet<>();
        }
        try (var s = Files.walk(repo.resolve("data"))) {
            return s.filter(Files::isRegularFile).collect(java.util.stream.Collectors.toSet());
        }
    }

    /** Backs up {@code src} and returns the largest pack the backup added: the one with the new file data. */
    private Path backupAndNewDataPack(Path src) throws IOException {
        java.util.Set<Path> before = packs();
        ok("backup", "files", src.toString());
        java.util.Set<Path> added = packs();
        added.removeAll(before);
        return added.stream().max(java.util.Comparator.comparingLong(p -> p.toFile().length())).orElseThrow();
    }

    private static void flip(Path pack) throws IOException {
        byte[] b = Files.readAllBytes(pack);
        b[100] ^= 1; // inside the pack's first chunk
        Files.write(pack, b);
    }

    @Test
    void damagedFilesAreListedAndLeftOutEverythingElseIsRestored() throws Exception {
        Random rnd = new Random(5);
        Path src = Files.createDirectories(tmp.resolve("src"));
        byte[] lonely = new byte[10_000];
        rnd.nextBytes(lonely);
        Files.write(src.resolve("lonely.bin"), lonely);
        Path smallPack = backupAndNewDataPack(src); // holds only lonely.bin's data
        byte[] linked = new byte[300_000];
        rnd.nextBytes(linked);
        Files.write(src.resolve("linked.bin"), linked);
        Files.createLink(src.resolve("linked2.bin"), src.resolve("linked.bin"));
        Path linkedPack = backupAndNewDataPack(src); // holds only linked.bin's data
        byte[] big = new byte[3 << 20];
        rnd.nextBytes(big);
        Files.write(src.resolve("big.bin"), big);
        Files.createDirectories(src.resolve("dir"));
        for (int i = 0; i < 10; i++) {
            Files.writeString(src.resolve("dir/f" + i + ".txt"), "file " + i + "\n".repeat(i + 1));
        }
        ok("backup", "files", src.toString());
        flip(smallPack);
        flip(linkedPack);

        Path out = tmp.resolve("out");
        FilesCliTest.Run r = ferry("restore", "files", "latest", out.toString(), "--marker", "done", "--json");
        assertEquals(ExitCodes.DAMAGE, r.code(), r.toString());
        var j = r.json();
        List<String> paths = new ArrayList<>();
        for (var d : j.get("damaged")) {
            paths.add(d.get("path").asText());
            assertEquals(0, d.get("offset").asLong(), d.toString());
            assertTrue(d.get("object").asText().matches("chunk [0-9a-f]{16}"), d.toString());
            assertTrue(d.get("cause").asText().contains("does not decrypt"), d.toString());
        }
        assertEquals(List.of("linked.bin", "linked2.bin", "lonely.bin"), paths, j.toString());
        assertEquals(10_000, j.get("damaged").get(2).get("length").asLong());
        assertTrue(r.err().contains("3 damaged file(s)"), r.toString());
        assertFalse(Files.exists(out.resolve("lonely.bin"), java.nio.file.LinkOption.NOFOLLOW_LINKS));
        assertFalse(Files.exists(out.resolve("linked.bin"), java.nio.file.LinkOption.NOFOLLOW_LINKS));
        assertFalse(Files.exists(out.resolve("linked2.bin"), java.nio.file.LinkOption.NOFOLLOW_LINKS));
        assertFalse(Files.exists(out.resolve(".ferry/done")), "no marker for a restore that left files out");
        assertEquals(-1L, Files.mismatch(src.resolve("big.bin"), out.resolve("big.bin")));
        for (int i = 0; i < 10; i++) {
            assertEquals(-1L, Files.mismatch(src.resolve("dir/f" + i + ".txt"), out.resolve("dir/f" + i + ".txt")));
        }
        assertEquals(11, j.get("files").asLong(), "the files restored: big.bin and the ten in dir");

        FilesCliTest.Run text = ferry("restore", "files", "latest", tmp.resolve("out2").toString());
        assertEquals(ExitCodes.DAMAGE, text.code(), text.toString());
        assertTrue(text.err().contains("damaged, not restored: linked2.bin: 300000 bytes at offset 0 (chunk "),
                text.toString());
    }
}
