package dev.ferry.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.ferry.store.LocalStore;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A full filesystem (a 2 MiB tmpfs, mounted as root; skipped otherwise): every "No space left on device" names
 * the file it happened to.
 */
class NoSpaceCliTest {
    private static final String ENOSPC = "No space left on device";

    @TempDir
    Path dir;

    private static boolean root() {
        return "root".equals(System.getProperty("user.name"));
    }

    private static void run(String... command) throws Exception {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), String.join(" ", command) + " did not finish");
        assertEquals(0, p.exitValue(), String.join(" ", command) + ": " + out);
    }

    @Test
    void noSpaceErrorsNameThePath() throws Exception {
        assumeTrue(root(), "mounting a small tmpfs needs root");
        Path small = dir.resolve("small");
        Files.createDirectories(small);
        run("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", small.toString());
        try {
            byte[] data = new byte[4 << 20];
            new Random(9).nextBytes(data); // incompressible: it cannot fit
            Path vol = dir.resolve("vol.img");
            Files.write(vol, data);

            // the store itself
            LocalStore store = new LocalStore(small.resolve("store"));
            IOException put = org.junit.jupiter.api.Assertions.assertThrows(IOException.class,
                    () -> store.put("data/ab/ab01", data));
            assertTrue(put.getMessage().contains(small.resolve("store").toString()) && put.getMessage().contains(ENOSPC),
                    put.getMessage());
            run("rm", "-rf", small.resolve("store").toString());

            // a backup into a repository on the full filesystem
            CliRunner onSmall = new CliRunner();
            onSmall.env.put("FERRY_REPOSITORY", small.resolve("repo").toString());
            onSmall.env.put("FERRY_PASSWORD", "s3cret");
            assertEquals(0, onSmall.run(CliTest.concat(new String[] {"init"}, CliTest.CHEAP)).exitCode());
            CliRunner.Result backup = onSmall.run("backup", "block", vol.toString());
            assertNotEquals(0, backup.exitCode(), backup.toString());
            assertTrue(backup.err().contains(ENOSPC) && backup.err().contains(small.resolve("repo").toString()),
                    backup.toString());
            run("rm", "-rf", small.resolve("repo").toString());

            // a restore onto the full filesystem
            CliRunner cli = new CliRunner();
            cli.env.put("FERRY_REPOSITORY", dir.resolve("repo").toString());
            cli.env.put("FERRY_PASSWORD", "s3cret");
            assertEquals(0, cli.run(CliTest.concat(new String[] {"init"}, CliTest.CHEAP)).exitCode());
            assertEquals(0, cli.run("backup", "block", vol.toString()).exitCode());
            Path target = small.resolve("restored.img");
            CliRunner.Result restore = cli.run("restore", "block", "latest", target.toString());
            assertNotEquals(0, restore.exitCode(), restore.toString());
            assertTrue(restore.err().contains(ENOSPC) && restore.err().contains(target.toString()), restore.toString());
        } finally {
            run("umount", small.toString());
        }
    }
}
