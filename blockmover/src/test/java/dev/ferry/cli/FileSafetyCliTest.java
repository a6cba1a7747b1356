package dev.ferry.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Credential files, volume file types and usage errors on the command line. */
class FileSafetyCliTest extends LocalRepositoryCliBase {
    @Test
    void keyFilesWithoutRandomnessAreRefused() throws Exception {
        assertEquals(0, init().exitCode());
        for (byte b : new byte[] {0, (byte) 0xff, 'a'}) {
            Path key = dir.resolve("key-" + (b & 0xff));
            byte[] bytes = new byte[32];
            java.util.Arrays.fill(bytes, b);
            Files.write(key, bytes);
            Files.setPosixFilePermissions(key, PosixFilePermissions.fromString("rw-------"));
            CliRunner.Result add = cli.run("key", "add", "--new-key-file", key.toString());
            assertEquals(ExitCodes.ERROR, add.exitCode(), add.toString());
            assertTrue(add.err().contains("key file " + key + " holds 32 bytes that are all 0x"
                    + String.format("%02x", b & 0xff) + ": it has no randomness"), add.toString());
        }
        assertEquals(1, Files.list(repoDir.resolve("keys")).count());
    }

    @Test
    void credentialFilesReadableByOthersGetAWarning() throws Exception {
        Path password = dir.resolve("password");
        Files.writeString(password, "s3cret\n");
        Files.setPosixFilePermissions(password, PosixFilePermissions.fromString("rw-r--r--"));
        cli.env.remove("FERRY_PASSWORD");
        cli.env.put("FERRY_PASSWORD_FILE", password.toString());
        CliRunner.Result init = init();
        assertEquals(0, init.exitCode(), init.toString());
        assertTrue(init.err().contains("warning: password file " + password + " is readable by its group and "
                + "others (mode rw-r--r--)"), init.toString());

        Path key = dir.resolve("key");
        byte[] random = new byte[32];
        new Random(1).nextBytes(random);
        Files.write(key, random);
        Files.setPosixFilePermissions(key, PosixFilePermissions.fromString("rw-r-----"));
        CliRunner.Result add = cli.run("key", "add", "--new-key-file", key.toString());
        assertEquals(0, add.exitCode(), add.toString());
        assertTrue(add.err().contains("warning: key file " + key + " is readable by its group (mode rw-r-----)"),
                add.toString());

        // private files: no warning
        Files.setPosixFilePermissions(password, PosixFilePermissions.fromString("rw-------"));
        Files.setPosixFilePermissions(key, PosixFilePermissions.fromString("r--------"));
        CliRunner.Result list = cli.run("key", "list");
        assertEquals(0, list.exitCode(), list.toString());
        CliRunner.Result viaKey = cli.run("--key-file", key.toString(), "key", "list");
        assertEquals(0, viaKey.exitCode(), viaKey.toString());
        assertFalse(list.err().contains("warning") || viaKey.err().contains("warning"), list + "\n" + viaKey);
    }

    @Test
    void aBlockBackupOfAFifoIsRefusedWithoutOpeningIt() throws Exception {
        assertEquals(0, init().exitCode());
        Path fifo = dir.resolve("pipe");
        Process mkfifo = new ProcessBuilder("mkfifo", fifo.toString()).inheritIO().start();
        assertTrue(mkfifo.waitFor(30, TimeUnit.SECONDS) && mkfifo.exitValue() == 0, "mkfifo failed");
        // a run in the background so that a regression (open() waiting for a writer) fails instead of hanging
        CompletableFuture<CliRunner.Result> backup = CompletableFuture.supplyAsync(
                () -> cli.run("backup", "block", fifo.toString()));
        CliRunner.Result r;
        try {
            r = backup.get(60, TimeUnit.SECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            // let the stuck open() return, then fail
            try (var w = Files.newOutputStream(fifo)) {
                w.write(0);
            }
            throw new AssertionError("backup block of a FIFO hangs in open()");
        }
        assertEquals(ExitCodes.ERROR, r.exitCode(), r.toString());
        assertTrue(r.err().contains(fifo + " is a FIFO (named pipe); a block backup reads only a regular file or "
                + "a block device"), r.toString());
        assertFalse(Files.exists(repoDir.resolve("snapshots")) && Files.list(repoDir.resolve("snapshots")).count() > 0);

        // a restore onto a FIFO is refused the same way
        Path image = dir.resolve("image");
        Files.write(image, new byte[1 << 16]);
        CliRunner.Result ok = cli.run("backup", "block", image.toString());
        assertEquals(0, ok.exitCode(), ok.toString());
        CompletableFuture<CliRunner.Result> restore = CompletableFuture.supplyAsync(
                () -> cli.run("restore", "block", "latest", fifo.toString(), "--force"));
        CliRunner.Result rr = restore.get(60, TimeUnit.SECONDS);
        assertEquals(ExitCodes.ERROR, rr.exitCode(), rr.toString());
        assertTrue(rr.err().contains(fifo + " is a FIFO (named pipe)"), rr.toString());
    }

    @Test
    void usageErrorsExit2WithAClearMessage() throws Exception {
        assertEquals(0, init().exitCode());
        record Case(String env, String value, String[] args, String message) {
        }
        String[] list = {"snapshots"};
        Case[] cases = {
            new Case("FERRY_S3_MAX_ATTEMPTS", "many", list, "invalid FERRY_S3_MAX_ATTEMPTS 'many'"),
            new Case("FERRY_S3_TIMEOUT", "-3", list, "FERRY_S3_TIMEOUT"),
            new Case("FERRY_S3_PATH_STYLE", "maybe", list, "invalid FERRY_S3_PATH_STYLE 'maybe'"),
            new Case("AWS_ENDPOINT_URL", "ftp://x", list, "invalid S3 endpoint 'ftp://x'"),
            new Case(null, null, new String[] {"-r", "s3://Bad_Bucket/x", "snapshots"}, "invalid S3"),
            new Case(null, null, new String[] {"-r", "gopher://x/y", "snapshots"}, "unsupported repository URL"),
            new Case(null, null, new String[] {"key", "remove", "../config"}, "a key slot id is 4 to 64"),
            new Case(null, null, new String[] {"key", "add", "--kdf-iterations", "0"},
                    "--kdf-iterations: Argon2id iterations must be 1..100, got 0"),
            new Case(null, null, new String[] {"key", "add", "--kdf-memory", "0"}, "--kdf-memory is 1 to 4096 MiB"),
            new Case(null, null, new String[] {"-r", "/nonexistent/new", "init", "--kdf-iterations", "101"},
                    "--kdf-iterations: Argon2id iterations must be 1..100, got 101"),
            new Case(null, null, new String[] {"key", "remove"}, "Missing required parameter"),
            new Case(null, null, new String[] {"snapshots", "--no-such-option"}, "Unknown option"),
        };
        for (Case c : cases) {
            CliRunner runner = new CliRunner();
            runner.env.putAll(cli.env);
            runner.env.put("FERRY_NEW_PASSWORD", "another");
            if (c.env() != null && c.env().startsWith("FERRY_S3") || "AWS_ENDPOINT_URL".equals(c.env())) {
                runner.env.put("FERRY_REPOSITORY", "s3://bucket/p");
            }
            if (c.env() != null) {
                runner.env.put(c.env(), c.value());
            }
            CliRunner.Result r = runner.run(c.args());
            assertEquals(ExitCodes.USAGE, r.exitCode(), c + ": " + r);
            assertTrue(r.err().contains(c.message()), c + ": " + r);
        }
        assertEquals(1, Files.list(repoDir.resolve("keys")).count());
    }
}
