package dev.ferry.cli;

import java.nio.file.Path;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;

/**
 * For command-line tests on a repository in a directory: {@link #cli} names the repository {@link #repoDir} (not
 * created yet) and the password {@code s3cret} in its environment, and {@link #init()} creates it.
 */
abstract class LocalRepositoryCliBase {
    @TempDir
    Path dir;
    Path repoDir;
    final CliRunner cli = new CliRunner();

    @BeforeEach
    void setUpRepositoryEnvironment() {
        repoDir = dir.resolve("repo");
        cli.env.put("FERRY_REPOSITORY", repoDir.toString());
        cli.env.put("FERRY_PASSWORD", "s3cret");
    }

    /** {@code ferry init} with the cheapest key derivation. */
    CliRunner.Result init() {
        return cli.run(CliTest.concat(new String[] {"init"}, CliTest.CHEAP));
    }
}
