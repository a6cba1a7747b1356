package dev.ferry.files;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.block.BlockBackup;
import dev.ferry.block.FileVolume;
import dev.ferry.crypto.Hashes;
import dev.ferry.progress.ProgressListener;
import dev.ferry.repo.KdfParams;
import dev.ferry.repo.KeySource;
import dev.ferry.repo.Repository;
import dev.ferry.repo.Snapshot;
import dev.ferry.repo.Snapshots;
import dev.ferry.store.LocalStore;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Clock;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * docs/FORMAT.md describes files snapshots precisely enough to restore them without Ferry: docs/recover.py,
 * written from the spec, restores a files snapshot with its content and metadata (a large image file cut into
 * a block backup's blocks among them), and the block snapshot of that image, both named by the short ids
 * {@code ferry snapshots} prints.
 */
class RecoverFilesTest {
    static final Path READER = Path.of("..", "docs", "recover.py").toAbsolutePath().normalize();
    static Ext4 fs;

    @BeforeAll
    static void mountFs() throws Exception {
        fs = Ext4.mount(384);
    }

    @AfterAll
    static void unmountFs() throws Exception {
        if (fs != null) {
            fs.close();
        }
    }

    record Run(int code, String output) {
    }

    private static Run python(Path repo, String... args) throws Exception {
        List<String> cmd = new java.util.ArrayList<>(List.of("/usr/bin/python3", READER.toString(), repo.toString()));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        pb.environment().put("FERRY_PASSWORD", "pw");
        Process p = pb.start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS));
        return new Run(p.exitValue(), output);
    }

    @Test
    void anIndependentReaderRestoresAFilesSnapshotAndABlockSnapshotByShortIds() throws Exception {
        Assumptions.assumeTrue(fs != null, "needs root to loop-mount an ext4 image");
        Assumptions.assumeTrue(RawNames.exact(), "raw names need --add-opens java.base/sun.nio.fs");
        Path work = Files.createTempDirectory(fs.mount, "r");
        Path repoDir = work.resolve("repo");
        Repository repo = Repository.init(new LocalStore(repoDir), new KeySource.Password("pw".toCharArray()),
                new KdfParams(1024, 1, 1), 4 << 20, Clock.systemUTC());
        Path src = FileMoverTest.makeTree(work.resolve("src"));
        // a volume image: cut into 1 MiB blocks, holes among them, the last block short
        Path img = src.resolve("sub/disk.img");
        try (FileChannel ch = FileChannel.open(img, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(FileMoverTest.random(31, 3 << 20)), 0);
            ch.write(ByteBuffer.wrap(FileMoverTest.random(32, (1 << 20) + 12288)), 63L << 20);
        }
        assertTrue(Chunker.fixedPieces(Files.size(img)));
        String blockId;
        try (FileVolume v = FileVolume.openForReading(img)) {
            blockId = new BlockBackup(repo, new BlockBackup.Request(v, img.toString(), null, null, null, Map.of(), null,
                    2, null)).run(ProgressListener.NONE, Clock.systemUTC(), "h").snapshot().id();
        }
        String id = new FileBackup(repo, new FileBackup.Request(src, "src", null, List.of(), false, Map.of(), 2,
                null)).run(ProgressListener.NONE, Clock.systemUTC(), "h").snapshot().id();
        repo.flush();

        Path out = work.resolve("out");
        Run files = python(repoDir, "restore-files", id.substring(0, 8), out.toString());
        assertEquals(0, files.code(), files.output());
        assertEquals(withoutBlocks(FileMoverTest.describe(src)), withoutBlocks(FileMoverTest.describe(out)));
        Path volume = work.resolve("volume.img");
        Run block = python(repoDir, "restore-block", blockId.substring(0, 8), volume.toString());
        assertEquals(0, block.code(), block.output());
        assertEquals(Hashes.sha256Hex(Files.readAllBytes(img)), Hashes.sha256Hex(Files.readAllBytes(volume)));

        // a prefix of two snapshots, and one of none, are refused with a clear message
        Snapshots snaps = new Snapshots(repo);
        Set<Character> firsts = new HashSet<>(List.of(id.charAt(0), blockId.charAt(0)));
        String shared = id.charAt(0) == blockId.charAt(0) ? id.substring(0, 1) : null;
        for (int k = 0; shared == null; k++) { // at most 16 more: two then share their first digit
            String more = snaps.save(new Snapshot(Snapshot.VERSION, Snapshot.KIND_FILES, "2026-01-01T00:00:" + (10 + k)
                    + "Z", "h", "other", Map.of(), null, null, Map.of(), null, id)).id();
            if (!firsts.add(more.charAt(0))) {
                shared = more.substring(0, 1);
            }
        }
        Run ambiguous = python(repoDir, "restore-files", shared, work.resolve("amb").toString());
        assertNotEquals(0, ambiguous.code(), ambiguous.output());
        assertTrue(ambiguous.output().contains("snapshot id " + shared + " is ambiguous"), ambiguous.output());
        assertTrue(!ambiguous.output().contains("Traceback"), ambiguous.output());
        String none = null;
        for (int i = 0; none == null; i++) {
            String candidate = String.format("%02x", i);
            if (snaps.ids().stream().noneMatch(s -> s.startsWith(candidate))) {
                none = candidate;
            }
        }
        Run missing = python(repoDir, "restore-block", none, work.resolve("none.img").toString());
        assertNotEquals(0, missing.code(), missing.output());
        assertTrue(missing.output().contains("no snapshot id starts with " + none), missing.output());
        Run notHex = python(repoDir, "restore-files", "latest", work.resolve("x").toString());
        assertNotEquals(0, notHex.code(), notHex.output());
        assertTrue(notHex.output().contains("a snapshot id is hex digits"), notHex.output());
        Ext4.deleteTree(work);
    }

    /** The reader writes whole chunks, zero pages too: allocation is Ferry's restore's business, not the spec's. */
    private static Map<String, String> withoutBlocks(Map<String, String> d) {
        Map<String, String> out = new TreeMap<>();
        d.forEach((k, v) -> out.put(k, v.replaceAll(" blocks=\\S+", "")));
        return out;
    }
}
