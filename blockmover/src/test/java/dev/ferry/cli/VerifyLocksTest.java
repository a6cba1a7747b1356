package dev.ferry.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.repo.Json;
import dev.ferry.repo.RepositoryLock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code ferry verify} says when stale locks are in the repository, and how to remove them. */
class VerifyLocksTest {
    @TempDir
    Path dir;

    @Test
    void verifyMentionsStaleLocksAndHowToRemoveThem() throws Exception {
        Path repo = dir.resolve("repo");
        CliRunner cli = new CliRunner();
        cli.env.put("FERRY_REPOSITORY", repo.toString());
        cli.env.put("FERRY_PASSWORD", "s3cret");
        assertEquals(0, cli.run("init", "--kdf-memory", "1", "--kdf-iterations", "1").exitCode());
        CliRunner.Result clean = cli.run("verify");
        assertEquals(0, clean.exitCode(), clean.toString());
        assertFalse(clean.out().contains("stale lock"), clean.toString());

        String old = Instant.now().minus(Duration.ofHours(2)).toString();
        String now = Instant.now().toString();
        Files.createDirectories(repo.resolve("locks"));
        Files.write(repo.resolve("locks").resolve("ab".repeat(16)), Json.MAPPER.writeValueAsBytes(
                new RepositoryLock.Info("backup", "gone-node", 42, old, old, null, null, null, null)));
        Files.write(repo.resolve("locks").resolve("cd".repeat(16)), Json.MAPPER.writeValueAsBytes(
                new RepositoryLock.Info("backup", "busy-node", 43, now, now, null, null, null, null)));
        CliRunner.Result r = cli.run("verify");
        assertEquals(0, r.exitCode(), "a stale lock is no damage: " + r);
        assertTrue(r.out().contains("warning: 1 stale lock(s)"), r.toString());
        assertTrue(r.out().contains("gone-node"), r.toString());
        assertFalse(r.out().contains("busy-node"), "a live lock is not stale: " + r);
        assertTrue(r.out().contains("'ferry unlock' removes them"), r.toString());

        assertEquals(0, cli.run("unlock").exitCode());
        CliRunner.Result after = cli.run("verify");
        assertFalse(after.out().contains("stale lock"), after.toString());
    }
}
