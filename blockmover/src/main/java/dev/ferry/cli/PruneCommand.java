package dev.ferry.cli;

import dev.ferry.progress.ProgressReporter;
import dev.ferry.repo.Pruner;
import dev.ferry.repo.Repository;
import dev.ferry.store.Store;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

@Command(name = "prune", description = {
        "Delete data no snapshot refers to.",
        "Safe while backups run: packs a running backup may need stay until a later prune. Packs with at",
        "least --repack-share of unused bytes are rewritten. A chunk stored more than once (concurrent backups",
        "of the same data) is kept once. Refuses while an index file cannot be read: see 'ferry repair index'.",
        "A dry run prints the same figures the real run would, with 'would'."})
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
            Pruner.Result r;
            try (ProgressReporter progress = main.progress("prune", 0)) {
                r = new Pruner(repo, main.clock(), repackPercent / 100.0, progress).run(main.hostname(), dryRun);
            }
            if (main.json()) {
                main.printJson(r.json());
            } else {
                report(main, r);
            }
        }
        return ExitCodes.OK;
    }

    static void report(Main main, Pruner.Result r) {
        r.summary().forEach(main.out::println);
    }
}
