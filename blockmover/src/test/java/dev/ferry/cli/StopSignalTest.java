package dev.ferry.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A {@code ferry} process stopped by SIGTERM (what Kubernetes sends) leaves no lock and no spool file behind. */
class StopSignalTest {
    @TempDir
    Path dir;

    private static List<Path> files(Path d) throws IOException {
        if (!Files.isDirectory(d)) {
            return List.of();
        }
        try (Stream<Path> s = Files.walk(d)) {
            return s.filter(Files::isRegularFile).toList();
        }
    }

    /** Has a lock, and a pack being written in its spool file. */
    private static boolean midway(Path repo) throws IOException {
        return !files(repo.resolve("locks")).isEmpty() && files(repo.resolve("tmp")).stream()
                .anyMatch(p -> p.getFileName().toString().startsWith("pack-"));
    }

    private static void signal(Process p, String sig) throws Exception {
        Process kill = new ProcessBuilder("kill", "-" + sig, Long.toString(p.pid())).inheritIO().start();
        assertTrue(kill.waitFor(30, TimeUnit.SECONDS));
        assertEquals(0, kill.exitValue(), "kill -" + sig);
    }

    @Test
    void aBackupStoppedWithSigtermRemovesItsLockAndSpoolFiles() throws Exception {
        Path repo = dir.resolve("repo");
        CliRunner cli = new CliRunner();
        cli.env.put("FERRY_REPOSITORY", repo.toString());
        cli.env.put("FERRY_PASSWORD", "s3cret");
        CliRunner.Result init = cli.run("init", "--kdf-memory", "1", "--kdf-iterations", "1", "--pack-size", "4");
        assertEquals(0, init.exitCode(), init.toString());
        // sparse-ish: 512 MiB with a MiB of data every 4 MiB, so the backup takes a while
        Path vol = dir.resolve("vol.img");
        Random rnd = new Random(31);
        byte[] mib = new byte[1 << 20];
        try (RandomAccessFile f = new RandomAccessFile(vol.toFile(), "rw")) {
            f.setLength(512L << 20);
            for (long off = 0; off < 512L << 20; off += 4L << 20) {
                rnd.nextBytes(mib);
                f.seek(off);
                f.write(mib);
            }
        }

        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Path err = dir.resolve("child.err");
        ProcessBuilder pb = new ProcessBuilder(java.toString(), "-cp", System.getProperty("java.class.path"),
                Main.class.getName(), "backup", "block", "--threads", "1", vol.toString())
                .redirectOutput(dir.resolve("child.out").toFile()).redirectError(err.toFile());
        pb.environment().put("FERRY_REPOSITORY", repo.toString());
        pb.environment().put("FERRY_PASSWORD", "s3cret");
        Process child = pb.start();
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
            while (!midway(repo)) {
                if (!child.isAlive() || System.nanoTime() > deadline) {
                    fail("the backup never was midway: " + Files.readString(err, StandardCharsets.UTF_8));
                }
                Thread.sleep(5);
            }
            signal(child, "STOP"); // hold it where it is, then look again
            assertTrue(midway(repo), "the stopped backup holds a lock and a spool file");
            signal(child, "TERM");
            signal(child, "CONT");
            assertTrue(child.waitFor(60, TimeUnit.SECONDS), "the backup ended after SIGTERM");
            String childErr = Files.readString(err, StandardCharsets.UTF_8);
            assertEquals(143, child.exitValue(), "ended by SIGTERM: " + childErr);
            assertEquals(List.of(), files(repo.resolve("locks")), "no lock is left: " + childErr);
            assertEquals(List.of(), files(repo.resolve("tmp")), "no spool file is left: " + childErr);
            assertTrue(childErr.contains("ferry: stopped;"), childErr);
        } finally {
            child.destroyForcibly();
        }

        // and the next backup runs as if nothing happened
        CliRunner.Result again = cli.run("backup", "block", vol.toString());
        assertEquals(0, again.exitCode(), again.toString());
        CliRunner.Result verify = cli.run("verify");
        assertEquals(0, verify.exitCode(), verify.toString());
        CliRunner.Result unlock = cli.run("unlock", "--dry-run");
        assertTrue(unlock.out().contains("no locks in the repository"), unlock.toString());
    }
}
