package dev.ferry.cli;

import dev.ferry.repo.KdfParams;
import dev.ferry.repo.KeySlot;
import dev.ferry.repo.KeySource;
import dev.ferry.repo.Repository;
import dev.ferry.store.Store;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

@Command(name = "key", description = "Manage key slots: each opens the same master key; data is never re-encrypted.",
        subcommands = {KeyCommand.ListKeys.class, KeyCommand.Add.class, KeyCommand.Remove.class})
final class KeyCommand {
    @ParentCommand
    Main main;

    @Command(name = "list", description = "List key slots; '*' marks the one that opened the repository.")
    static final class ListKeys implements Callable<Integer> {
        @ParentCommand
        KeyCommand key;

        @Override
        public Integer call() throws Exception {
            Main main = key.main;
            try (Store store = main.openStore()) {
                Repository repo = main.openRepository(store, false);
                main.out.printf(" %-16s  %-8s  %-11s  %-20s  %s%n", "ID", "KIND", "KDF", "CREATED", "USER@HOST");
                for (Repository.Slot s : repo.keySlots()) {
                    KeySlot k = s.slot();
                    if (k == null) {
                        main.out.printf(" %-16s  damaged: %s%n", s.id().substring(0, 16), s.damage());
                        continue;
                    }
                    main.out.printf("%s%-16s  %-8s  %-11s  %-20s  %s@%s%n",
                            s.name().equals(repo.keySlotName()) ? "*" : " ", s.id().substring(0, 16), k.kind(),
                            k.kdf().algorithm(), toSeconds(k.created()), k.username(), k.hostname());
                }
            }
            return ExitCodes.OK;
        }
    }

    /** An RFC 3339 time shortened to whole seconds for display; other text is shown as it is. */
    static String toSeconds(String time) {
        try {
            return java.time.Instant.parse(time).truncatedTo(java.time.temporal.ChronoUnit.SECONDS).toString();
        } catch (java.time.format.DateTimeParseException e) {
            return time;
        }
    }

    @Command(name = "add", description = "Add a key slot opened by a new password or a key file.")
    static final class Add implements Callable<Integer> {
        @ParentCommand
        KeyCommand key;

        @Mixin
        Main.KdfOptions kdf;

        @Option(names = "--new-password-file", paramLabel = "FILE",
                description = "Read the new password from FILE (default: $FERRY_NEW_PASSWORD, then a prompt).")
        Path newPasswordFile;

        @Option(names = "--new-key-file", paramLabel = "FILE",
                description = "Add a slot opened by this key file (at least 16 random bytes, e.g. a Kubernetes Secret).")
        Path newKeyFile;

        @Override
        public Integer call() throws Exception {
            Main main = key.main;
            if (newPasswordFile != null && newKeyFile != null) {
                throw new UsageException("give --new-password-file or --new-key-file, not both");
            }
            KdfParams params = kdf.params(); // a usage error before any password is asked for
            try (Store store = main.openStore()) {
                Repository repo = main.openRepository(store, false);
                KeySource source = main.credentials().newSlot(newPasswordFile, newKeyFile);
                Repository.Slot slot = repo.addKeySlot(source, params, main.clock(), main.hostname());
                main.out.println("added " + slot.slot().kind() + " key slot " + slot.id().substring(0, 16));
            }
            return ExitCodes.OK;
        }
    }

    @Command(name = "remove", description = "Remove a key slot (not the one in use, never the last one).")
    static final class Remove implements Callable<Integer> {
        @ParentCommand
        KeyCommand key;

        @Parameters(paramLabel = "ID", description = "Key slot id, or a unique prefix of it (as 'key list' shows).")
        String id;

        @Override
        public Integer call() throws Exception {
            Main main = key.main;
            if (!id.matches("[0-9a-f]{4,64}")) {
                throw new UsageException("a key slot id is 4 to 64 lower-case hex digits (as 'key list' shows), not '"
                        + id + "'");
            }
            try (Store store = main.openStore()) {
                Repository repo = main.openRepository(store, false);
                Repository.Slot removed = repo.removeKeySlot(id, main.clock(), main.hostname());
                main.out.println("removed " + (removed.slot() == null ? "damaged" : removed.slot().kind())
                        + " key slot " + removed.id().substring(0, 16));
            }
            return ExitCodes.OK;
        }
    }
}
