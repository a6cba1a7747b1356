package dev.ferry.cli;

import dev.ferry.repo.Pruner;
import dev.ferry.repo.Repository;
import dev.ferry.repo.Snapshot;
import dev.ferry.repo.Snapshots;
import dev.ferry.store.Store;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

@Command(name = "forget", description = {
        "Remove snapshots from the repository.",
        "Their data stays until prune removes what no snapshot uses."})
final class ForgetCommand implements Callable<Integer> {
    @ParentCommand
    Main main;

    @ArgGroup(multiplicity = "1")
    Which which;

    static final class Which {
        @Parameters(paramLabel = "ID", arity = "1..*", description = "Snapshot ids (prefixes) to forget.")
        List<String> ids;

        @Option(names = "--keep-last", paramLabel = "N", description = {
                "Keep the newest N snapshots of each source (same kind, host and source), forget the rest."})
        Integer keepLast;
    }

    @Mixin
    FilterOptions filter;

    @Option(names = "--prune", description = "Run prune afterwards.")
    boolean prune;

    @Option(names = "--dry-run", description = "Only say which snapshots would be forgotten.")
    boolean dryRun;

    @Override
    public Integer call() throws Exception {
        if (which.keepLast != null && which.keepLast < 1) {
            throw new UsageException("--keep-last must be at least 1 (forget snapshots by id to remove all)");
        }
        try (Store store = main.openStore()) {
            Repository repo = main.openRepository(store, prune);
            Snapshots snaps = new Snapshots(repo);
            Set<Snapshots.Stored> forget = new LinkedHashSet<>();
            if (which.ids != null) {
                for (String id : which.ids) {
                    forget.add(snaps.resolve(id, filter.filter(null)));
                }
            } else {
                Map<List<String>, List<Snapshots.Stored>> groups = new LinkedHashMap<>();
                for (Snapshots.Stored s : snaps.list()) {
                    Snapshot x = s.snapshot();
                    groups.computeIfAbsent(List.of(x.kind(), String.valueOf(x.hostname()), String.valueOf(x.source())),
                            k -> new ArrayList<>()).add(s);
                }
                for (List<Snapshots.Stored> g : groups.values()) { // oldest first
                    forget.addAll(g.subList(0, Math.max(0, g.size() - which.keepLast)));
                }
            }
            for (Snapshots.Stored s : forget) {
                if (!dryRun) {
                    snaps.delete(s.id());
                }
                main.out.printf("%s %s  %s  %s%n", dryRun ? "would forget" : "forgot", s.shortId(),
                        s.snapshot().time(), s.snapshot().source());
            }
            main.out.printf("%d snapshot(s) %s%n", forget.size(), dryRun ? "would be forgotten" : "forgotten");
            if (prune) {
                PruneCommand.report(main, new Pruner(repo, main.clock(), Pruner.DEFAULT_REPACK_SHARE)
                        .run(main.hostname(), dryRun));
            }
        }
        return ExitCodes.OK;
    }
}
