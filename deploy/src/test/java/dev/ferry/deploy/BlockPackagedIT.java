package dev.ferry.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Block backups and restores through the distribution jar in separate JVMs: a small heap that does not grow
 * with the volume, and a restore killed with SIGKILL that resumes when run again.
 */
class BlockPackagedIT {
    @TempDir
    Path dir;

    private Process start(String heap, String... args) throws Exception {
        Path jar = Path.of(System.getProperty("ferry.jar", "target/ferry.jar"));
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                heap, "-jar", jar.toString()));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().keySet().removeIf(k -> k.startsWith("FERRY_") || k.startsWith("AWS_"));
        pb.environment().put("FERRY_REPOSITORY", dir.resolve("repo").toString());
        pb.environment().put("FERRY_PASSWORD", "it");
        pb.environment().put("FERRY_STATE_DIR", dir.resolve("state").toString());
        pb.redirectErrorStream(true).redirectOutput(dir.resolve("log-" + System.nanoTime()).toFile());
        return pb.start();
    }

    private void run(String heap, String... args) throws Exception {
        Process p = start(heap, args);
        assertTrue(p.waitFor(180, TimeUnit.SECONDS), "finished: " + String.join(" ", args));
        assertEquals(0, p.exitValue(), "ferry " + String.join(" ", args) + " failed; logs in " + dir);
    }

    private static long allocated(Path f) throws Exception {
        Process p = new ProcessBuilder("stat", "--format=%b", f.toString()).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.US_ASCII).strip();
        p.waitFor();
        return Long.parseLong(out) * 512;
    }

    @Test
    void aVolumeMuchLargerThanTheHeapBacksUpAndRestoresAndAKilledRestoreResumes() throws Exception {
        // 640 MiB volume, 384 MiB of it random data, with a 64 MiB heap
        Path vol = dir.resolve("vol.img");
        Random rnd = new Random(3);
        byte[] buf = new byte[1 << 20];
        try (RandomAccessFile f = new RandomAccessFile(vol.toFile(), "rw")) {
            for (int mib = 0; mib < 640; mib++) {
                if (mib % 5 < 3) {
                    rnd.nextBytes(buf);
                    f.seek((long) mib << 20);
                    f.write(buf);
                }
            }
            f.setLength(640L << 20);
        }
        run("-Xmx64m", "init", "--kdf-memory", "8", "--kdf-iterations", "1");
        run("-Xmx64m", "backup", "block", vol.toString());

        Path out = dir.resolve("out.img");
        Process restore = start("-Xmx64m", "restore", "block", "latest", out.toString());
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (restore.isAlive() && (!Files.exists(out) || allocated(out) < (64L << 20))
                && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        assertTrue(restore.isAlive(), "the restore was still running when it was killed");
        restore.destroyForcibly(); // SIGKILL: no shutdown hooks, no cleanup
        restore.waitFor();
        assertTrue(Files.mismatch(vol, out) != -1, "the killed restore had not finished");

        Process again = start("-Xmx64m", "restore", "block", "latest", out.toString(), "--json");
        assertTrue(again.waitFor(180, TimeUnit.SECONDS));
        assertEquals(0, again.exitValue());
        assertEquals(-1L, Files.mismatch(vol, out), "the resumed restore is byte-identical");
        try (var logs = Files.list(dir)) {
            String json = null;
            for (Path p : logs.filter(p -> p.getFileName().toString().startsWith("log-")).sorted().toList()) {
                String text = Files.readString(p);
                if (text.contains("\"resumed\"")) {
                    json = text;
                }
            }
            assertTrue(json != null && json.contains("\"resumed\" : true") || json != null && json.contains("\"resumed\":true"),
                    "the second run resumed: " + json);
            long already = Long.parseLong(json.replaceAll("(?s).*\"bytes_already_there\"\\s*:\\s*(\\d+).*", "$1"));
            assertTrue(already > 0, "blocks written before the kill were kept: " + json);
        }
    }
}
