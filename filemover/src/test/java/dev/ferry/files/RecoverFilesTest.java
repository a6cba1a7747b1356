package dev.ferry.files;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.progress.ProgressListener;
import dev.ferry.repo.KdfParams;
import dev.ferry.repo.KeySource;
import dev.ferry.repo.Repository;
import dev.ferry.store.LocalStore;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * docs/FORMAT.md describes files snapshots precisely enough to restore them without Ferry: docs/recover.py,
 * written from the spec, restores a files snapshot with its content and metadata.
 */
class RecoverFilesTest {
    static final Path READER = Path.of("..", "docs", "recover.py").toAbsolutePath().normalize();
    static Ext4 fs;

    @BeforeAll
    static void mountFs() throws Exception {
        fs = Ext4.mount(256);
    }

    @AfterAll
    static void unmountFs() throws Exception {
        if (fs != null) {
            fs.close();
        }
    }

    @Test
    void anIndependentReaderRestoresAFilesSnapshot() throws Exception {
        Assumptions.assumeTrue(fs != null, "needs root to loop-mount an ext4 image");
        Assumptions.assumeTrue(RawNames.exact(), "raw names need --add-opens java.base/sun.nio.fs");
        Path work = Files.createTempDirectory(fs.mount, "r");
        Repository repo = Repository.init(new LocalStore(work.resolve("repo")),
                new KeySource.Password("pw".toCharArray()), new KdfParams(1024, 1, 1), 4 << 20, Clock.systemUTC());
        Path src = FileMoverTest.makeTree(work.resolve("src"));
        String id = new FileBackup(repo, new FileBackup.Request(src, "src", null, List.of(), false, Map.of(), 2,
                null)).run(ProgressListener.NONE, Clock.systemUTC(), "h").snapshot().id();
        repo.flush();
        Path out = work.resolve("out");
        ProcessBuilder pb = new ProcessBuilder("/usr/bin/python3", READER.toString(), work.resolve("repo").toString(),
                "restore-files", id, out.toString()).redirectErrorStream(true);
        pb.environment().put("FERRY_PASSWORD", "pw");
        Process p = pb.start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), output);
        assertEquals(withoutBlocks(FileMoverTest.describe(src)), withoutBlocks(FileMoverTest.describe(out)));
        Ext4.deleteTree(work);
    }

    /** The reader writes whole chunks, zero pages too: allocation is Ferry's restore's business, not the spec's. */
    private static Map<String, String> withoutBlocks(Map<String, String> d) {
        Map<String, String> out = new TreeMap<>();
        d.forEach((k, v) -> out.put(k, v.replaceAll(" blocks=\\S+", "")));
        return out;
    }
}
