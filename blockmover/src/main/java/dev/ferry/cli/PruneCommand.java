package dev.ferry.cli;

import dev.ferry.repo.Pruner;
import dev.ferry.repo.Repository;
import dev.ferry.store.Store;
import dev.ferry.util.Sizes;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

@Command(name = "prune", description = {
        "Delete data no snapshot refers to.",
        "Safe while backups run: packs a running backup may need stay until a later prune. Packs with at",
        "least --repack-share of unused bytes are rewritten."})
final class PruneCommand implements Callable<Integer> {
    @ParentCommand
    Main main;

    @Option(names = "--dry-run", description = "Only say what would be deleted.")
    boolean dryRun;

    @Option(names = "--repack-share", paramLabel = "PERCENT",
            description = "Rewrite packs with at least this share of unused bytes (default: ${DEFAULT-VALUE}).")
    int repackPercent = (int) (Pruner.DEFAULT_REPACK_SHARE * 100);

    @Override
    public Integer call() throws Exception {
        if (repackPercent < 1 || repackPercent > 100) {
            throw new UsageException("--repack-share is a percentage from 1 to 100, not " + repackPercent);
        }
        try (Store store = main.openStore()) {
            Repository repo = main.openRepository(store, true);
            report(main, new Pruner(repo, main.clock(), repackPercent / 100.0).run(main.hostname(), dryRun));
        }
        return ExitCodes.OK;
    }

    static void report(Main main, Pruner.Result r) {
        main.out.printf("%d snapshot(s) refer to data in %d pack(s) of %s%n", r.snapshots(), r.packsBefore(),
                Sizes.human(r.bytesBefore()));
        if (r.dryRun()) {
            main.out.printf("would delete %d pack(s) (%s) and rewrite %d%n", r.packsDeleted(),
                    Sizes.human(r.bytesDeleted()), r.packsRepacked());
            return;
        }
        main.out.printf("deleted %d pack(s) (%s); rewrote %d pack(s) (%s copied); replaced %d index file(s)%n",
                r.packsDeleted(), Sizes.human(r.bytesDeleted()), r.packsRepacked(), Sizes.human(r.bytesRewritten()),
                r.indexFilesReplaced());
        if (r.packsDeferred() > 0) {
            main.out.printf("%d pack(s) (%s) are no longer used but stay while a backup runs: %s%n",
                    r.packsDeferred(), Sizes.human(r.bytesDeferred()), String.join("; ", r.runningLocks()));
            main.out.println("run prune again when no backup is running to delete them");
        }
        if (r.locksRemoved() > 0) {
            main.out.printf("removed %d stale lock(s) of processes that died%n", r.locksRemoved());
        }
    }
}
