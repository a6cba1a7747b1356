package dev.ferry.cli;

import dev.ferry.repo.ProcessTable;
import dev.ferry.repo.RepositoryLock;
import dev.ferry.store.Store;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

@Command(name = "unlock", description = {
        "Remove stale locks.",
        "Stale locks are those not refreshed for 15 minutes, and those of processes of this host that are",
        "gone. Locks of running backups and prunes stay unless --remove-all."})
final class UnlockCommand implements Callable<Integer> {
    @ParentCommand
    Main main;

    @Option(names = "--remove-all", description = {
            "Remove every lock, also those of running backups and prunes: a prune then may delete data",
            "they still need."})
    boolean removeAll;

    @Option(names = "--dry-run", description = "Only say which locks would be removed.")
    boolean dryRun;

    @Override
    public Integer call() throws Exception {
        try (Store store = main.openStore()) {
            main.openRepository(store, false);
            List<RepositoryLock.Unlocked> locks = RepositoryLock.unlock(store, main.clock().instant(),
                    ProcessTable.local(main.hostname()), removeAll, dryRun);
            if (locks.isEmpty()) {
                main.out.println("no locks in the repository");
                return ExitCodes.OK;
            }
            int removed = 0;
            boolean liveRemoved = false;
            for (RepositoryLock.Unlocked u : locks) {
                String what = u.removed() ? (dryRun ? "would remove" : "removed") : "kept";
                main.out.printf("%s %s%s%n    %s%n", what, u.lock().name(),
                        u.lock().info() == null ? "" : ": " + u.lock().describe(), u.staleness().reason());
                removed += u.removed() ? 1 : 0;
                liveRemoved |= u.removed() && !u.staleness().stale();
            }
            main.out.printf("%d lock(s) %s, %d kept%n", removed, dryRun ? "would be removed" : "removed",
                    locks.size() - removed);
            if (liveRemoved) {
                main.err.println("ferry: warning: --remove-all " + (dryRun ? "would remove" : "removed")
                        + " locks that may belong to running backups or prunes: a prune run now may delete data "
                        + "they still need");
            }
        }
        return ExitCodes.OK;
    }
}
