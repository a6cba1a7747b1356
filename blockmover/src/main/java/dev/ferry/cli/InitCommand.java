package dev.ferry.cli;

import dev.ferry.repo.KeySource;
import dev.ferry.repo.Repository;
import dev.ferry.repo.RepositoryConfig;
import dev.ferry.store.Store;
import java.time.Clock;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

@Command(name = "init", description = "Create a new repository with its own random master key.")
final class InitCommand implements Callable<Integer> {
    @ParentCommand
    Main main;

    @Mixin
    Main.KdfOptions kdf;

    @Option(names = "--pack-size", paramLabel = "MiB",
            description = "Target size of pack files in MiB, 1..1024 (default: ${DEFAULT-VALUE}).")
    int packSizeMiB = (int) (RepositoryConfig.DEFAULT_PACK_SIZE >> 20);

    @Override
    public Integer call() throws Exception {
        if (packSizeMiB < 1 || packSizeMiB > 1024) {
            throw new UsageException("--pack-size must be between 1 and 1024 MiB, got " + packSizeMiB);
        }
        dev.ferry.repo.KdfParams params = kdf.params(); // a usage error before any password is asked for
        try (Store store = main.openStore()) {
            KeySource key = main.credentials().forNewRepository(main.passwordFile, main.keyFile);
            Repository repo = Repository.init(store, key, params, (long) packSizeMiB << 20, Clock.systemUTC());
            main.out.println("created repository " + repo.config().id().substring(0, 16) + " at " + store.location());
            main.out.println(key instanceof KeySource.KeyFile
                    ? "keep the key file safe: without it the data cannot be read"
                    : "keep the password safe: without it the data cannot be read");
        }
        return ExitCodes.OK;
    }
}
