package dev.ferry.repo;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.store.LocalStore;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * docs/FORMAT.md is precise enough to recover data without Ferry: docs/recover.py, written from the spec with
 * stock Python libraries, reads back every chunk Ferry wrote, by password and by key file, and restores block
 * snapshots from their manifests.
 */
class FormatSpecTest {
    static final Path READER = Path.of("..", "docs", "recover.py").toAbsolutePath().normalize();

    @TempDir
    Path dir;

    @Test
    void anIndependentReaderRecoversEveryChunk() throws Exception {
        LocalStore store = new LocalStore(dir.resolve("repo"));
        Repository repo = TestRepos.init(store);
        Random rnd = new Random(21);
        Map<String, byte[]> saved = new HashMap<>();
        for (int i = 0; i < 60; i++) {
            byte[] data = switch (i % 3) {
                case 0 -> TestRepos.random(rnd, 1 + rnd.nextInt(200_000));
                case 1 -> ("line " + i + " of some text\n").repeat(1 + rnd.nextInt(5000)).getBytes(StandardCharsets.UTF_8);
                default -> new byte[rnd.nextInt(70_000)];
            };
            saved.put(repo.save(i % 4 == 0 ? BlobType.METADATA : BlobType.DATA, data).hex(), data);
        }
        repo.flush();
        assertTrue(store.list("data/").size() > 1, "several packs");
        byte[] secret = TestRepos.random(rnd, 32);
        Path keyFile = dir.resolve("k");
        Files.write(keyFile, secret);
        repo.addKeySlot(new KeySource.KeyFile(secret, "k"), TestRepos.CHEAP_KDF, Clock.systemUTC());

        Path out = dir.resolve("out");
        String result = python(List.of("dump", out.toString()), null);
        assertTrue(result.contains(saved.size() + " chunks written"), result);
        try (var files = Files.list(out)) {
            assertEquals(saved.size(), files.count());
        }
        for (Map.Entry<String, byte[]> e : saved.entrySet()) {
            assertArrayEquals(e.getValue(), Files.readAllBytes(out.resolve(e.getKey())), e.getKey());
        }

        String listing = python(List.of("chunks"), keyFile);
        assertEquals(saved.size(), listing.lines().count());
    }

    @Test
    void anIndependentReaderRestoresBlockSnapshots() throws Exception {
        LocalStore store = new LocalStore(dir.resolve("repo"));
        Repository repo = TestRepos.init(store);
        Path vol = dir.resolve("vol.img");
        Random rnd = new Random(5);
        byte[] data = new byte[(3 << 20) + 777];
        rnd.nextBytes(data);
        java.util.Arrays.fill(data, 1 << 20, 2 << 20, (byte) 0);
        Files.write(vol, data);
        dev.ferry.repo.Snapshots.Stored full;
        try (var v = dev.ferry.block.FileVolume.openForReading(vol)) {
            full = new dev.ferry.block.BlockBackup(repo, new dev.ferry.block.BlockBackup.Request(v, vol.toString(),
                    64 << 10, null, null, Map.of(), null, 2, null))
                    .run(dev.ferry.progress.ProgressListener.NONE, Clock.systemUTC(), "h").snapshot();
        }
        // an incremental: the reader must see the merged manifest, not a chain
        data[10] ^= 1;
        Files.write(vol, data);
        dev.ferry.repo.Snapshots.Stored inc;
        try (var v = dev.ferry.block.FileVolume.openForReading(vol)) {
            inc = new dev.ferry.block.BlockBackup(repo, new dev.ferry.block.BlockBackup.Request(v, vol.toString(),
                    null, full, new dev.ferry.engine.ChangedRanges().add(10, 1), Map.of(), null, 2, null))
                    .run(dev.ferry.progress.ProgressListener.NONE, Clock.systemUTC(), "h").snapshot();
        }
        String listing = python(List.of("snapshots"), null);
        assertTrue(listing.contains(full.id()) && listing.contains(inc.id()), listing);
        Path out = dir.resolve("out.img");
        python(List.of("restore-block", inc.id(), out.toString()), null);
        assertArrayEquals(data, Files.readAllBytes(out));
    }

    private String python(List<String> args, Path keyFile) throws Exception {
        assertTrue(Files.isExecutable(Path.of("/usr/bin/python3")),
                "the spec check needs /usr/bin/python3 with python3-cryptography, python3-zstandard and "
                        + "python3-argon2 (scripts/test-prerequisites installs them)");
        List<String> cmd = new ArrayList<>(List.of("/usr/bin/python3", READER.toString()));
        if (keyFile != null) {
            cmd.addAll(List.of("--key-file", keyFile.toString()));
        }
        cmd.add(dir.resolve("repo").toString());
        cmd.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        pb.environment().put("FERRY_PASSWORD", "correct horse");
        Process p = pb.start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "reader finished");
        assertEquals(0, p.exitValue(), output);
        return output;
    }
}
