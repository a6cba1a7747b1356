package dev.ferry.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.repo.Json;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a restic user expects of a command line: global options anywhere, exit code 2 for usage errors, a
 * version, errors that name what failed. Help on every command is tested on the whole tree in deploy/.
 */
class HelpAndOptionsTest {
    @TempDir
    Path dir;
    final CliRunner cli = new CliRunner();

    @Test
    void globalOptionsWorkBeforeAndAfterTheSubcommand() throws Exception {
        Path repo = dir.resolve("repo");
        Path pw = dir.resolve("pw");
        Files.writeString(pw, "secret\n");
        Path vol = dir.resolve("v.img");
        Files.write(vol, new byte[1 << 20]);
        assertEquals(0, cli.run(CliTest.concat(new String[] {"init", "-r", repo.toString(), "--password-file",
                pw.toString()}, CliTest.CHEAP)).exitCode());
        CliRunner.Result b = cli.run("backup", "block", vol.toString(), "--json", "--repo", repo.toString(),
                "--password-file", pw.toString(), "-v");
        assertEquals(0, b.exitCode(), b.toString());
        assertTrue(Json.MAPPER.readTree(b.out()).get("snapshot_id").asText().matches("[0-9a-f]{64}"), b.toString());
        CliRunner.Result before = cli.run("--json", "-r", repo.toString(), "--password-file", pw.toString(),
                "snapshots");
        CliRunner.Result after = cli.run("snapshots", "-r", repo.toString(), "--password-file", pw.toString(),
                "--json");
        assertEquals(0, before.exitCode(), before.toString());
        assertEquals(before.out(), after.out());
        assertEquals(1, Json.MAPPER.readTree(after.out()).size());

        Path keyFile = dir.resolve("node.key");
        byte[] secret = new byte[32];
        new java.util.Random(7).nextBytes(secret);
        Files.write(keyFile, secret);
        assertEquals(0, cli.run("key", "add", "--new-key-file", keyFile.toString(), "-r", repo.toString(),
                "--password-file", pw.toString()).exitCode());
        CliRunner.Result withKey = cli.run("key", "list", "--key-file", keyFile.toString(), "-r", repo.toString());
        assertEquals(0, withKey.exitCode(), withKey.toString());
        assertTrue(withKey.out().contains("*"), withKey.toString());
        CliRunner.Result verbose = cli.run("snapshots", "-r", repo.toString(), "--password-file", pw.toString(),
                "-vv");
        assertEquals(0, verbose.exitCode(), verbose.toString());
    }

    @Test
    void verbosityCountsEveryDashVWhereverItStands() {
        String[][] cases = {{"snapshots"}, {"-v", "snapshots"}, {"snapshots", "-v"}, {"-v", "snapshots", "-v"},
                {"-vv", "snapshots"}, {"-v", "-v", "snapshots", "-vv"}, {"--verbose", "key", "list", "-vv"}};
        int[] expected = {0, 1, 1, 2, 2, 4, 3};
        for (int i = 0; i < cases.length; i++) {
            Main main = new Main(java.util.Map.of(), new java.io.PrintWriter(new java.io.StringWriter()),
                    new java.io.PrintWriter(new java.io.StringWriter()), null);
            main.commandLine().parseArgs(cases[i]);
            assertEquals(expected[i], main.verbosity, String.join(" ", cases[i]));
        }
    }

    @Test
    void usageErrorsExitTwoAndVersionPrintsTheBuildsVersion() {
        cli.env.put("FERRY_REPOSITORY", dir.resolve("repo").toString());
        cli.env.put("FERRY_PASSWORD", "pw");
        String[][] usage = {
                {"init", "--pack-size", "0"},
                {"backup", "block", "x", "--threads", "0"},
                {"backup", "block", "x", "--block-size", "3K"},
                {"backup", "block", "x", "--block-size", "lots"},
                {"backup", "block", "x", "--tag", "=v"},
                {"backup", "block", "x", "--changed-ranges", "c.txt"},
                {"backup", "block", "x", "--volume", " padded "},
                {"backup", "block"},
                {"backup", "block", "x", "--no-such-option"},
                {"restore", "block", "latest"},
                {"prune", "--repack-share", "101"},
                {"verify", "--threads", "0"},
                {"snapshots", "--kind", "tape"},
                {"key", "add", "--new-password-file", "a", "--new-key-file", "b"},
                {"frobnicate"},
        };
        for (String[] args : usage) {
            CliRunner.Result r = cli.run(args);
            assertEquals(ExitCodes.USAGE, r.exitCode(), String.join(" ", args) + ": " + r);
            assertFalse(r.err().isBlank(), String.join(" ", args) + ": " + r);
        }
        cli.env.remove("FERRY_REPOSITORY");
        CliRunner.Result noRepo = cli.run("snapshots");
        assertEquals(ExitCodes.USAGE, noRepo.exitCode(), noRepo.toString());
        assertTrue(noRepo.err().contains("no repository given") && noRepo.err().contains("ferry snapshots --help"),
                noRepo.toString());

        for (String[] args : new String[][] {{"--version"}, {"-V"}, {"backup", "block", "--version"}}) {
            CliRunner.Result v = cli.run(args);
            assertEquals(0, v.exitCode(), v.toString());
            // the version Maven built, never a placeholder
            assertTrue(v.out().matches("(?s)ferry \\d+\\.\\d+\\.\\d+[-.\\w]*\\nJava .*"), v.toString());
        }
    }

    @Test
    void fileSystemErrorsNameTheFileAndWhatWentWrong() {
        assertEquals("/x/y: no such file or directory",
                Main.message(new java.nio.file.NoSuchFileException("/x/y")));
        assertEquals("/dev/sdz: permission denied", Main.message(new java.nio.file.AccessDeniedException("/dev/sdz")));
        assertEquals("/a -> /b: already exists",
                Main.message(new java.nio.file.FileAlreadyExistsException("/a", "/b", null)));
        assertEquals("/ro/f: Read-only file system",
                Main.message(new java.nio.file.FileSystemException("/ro/f", null, "Read-only file system")));
        assertEquals("/t: file system error", Main.message(new java.nio.file.FileSystemException("/t")));
        assertEquals("/q: no such file or directory",
                Main.message(new java.io.IOException(new java.nio.file.NoSuchFileException("/q"))
                {
                    @Override
                    public String getMessage() {
                        return null;
                    }
                }));
        assertEquals("interrupted", Main.message(new java.io.InterruptedIOException()));
    }
}
