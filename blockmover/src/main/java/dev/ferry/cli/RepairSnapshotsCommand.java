package dev.ferry.cli;

import dev.ferry.repo.Repository;
import dev.ferry.repo.RepositoryException;
import dev.ferry.repo.RepositoryLock;
import dev.ferry.repo.Snapshots;
import dev.ferry.store.Store;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

@Command(name = "snapshots", description = {
        "Remove the snapshot objects that cannot be read.",
        "Those are objects whose content does not match their name, that do not decrypt, or that are not a",
        "snapshot. Their data is unknown, so prune refuses to run while they",
        "exist; once they are gone, prune deletes the data that only they used.",
        "Each is read a second time just before it is removed, and a store that fails to answer stops the",
        "command: only damage is removed. Snapshots of a newer format than this Ferry knows stop it too, and",
        "so does a repository where no snapshot opens though each is stored as written (a wrong key).",
        "Runs under a lock, not beside a prune or another repair."})
final class RepairSnapshotsCommand implements Callable<Integer> {
    @ParentCommand
    RepairCommand repair;

    @Option(names = "--dry-run", description = "Only list the snapshots that would be removed.")
    boolean dryRun;

    /** One damaged snapshot object and what became of it. */
    private record Outcome(Snapshots.Unreadable snapshot, String action) {
    }

    @Override
    public Integer call() throws Exception {
        Main main = repair.main;
        try (Store store = main.openStore()) {
            Repository repo = main.openRepository(store, false);
            try (RepositoryLock lock = repo.lock("repair snapshots", main.hostname(),
                    main.clock())) {
                lock.refuseBeside(f -> f.heldFor(op -> op.equals("prune") || op.startsWith("repair")),
                        f -> "another prune or repair is running: " + f.describe() + "; try again later");
                Snapshots snaps = new Snapshots(repo, main::warn);
                Snapshots.Listing listing = snaps.readAll();
                if (listing.snapshots().isEmpty() && listing.damaged().size() > 1
                        && listing.damaged().stream().allMatch(Snapshots.Unreadable::intact)) {
                    // each is stored as written, yet none opens: the key is more likely at fault than them all
                    throw new RepositoryException("none of the " + listing.damaged().size() + " snapshots opens "
                            + "with this repository's key, though each is stored as it was written: the key or "
                            + "the repository's config, not every snapshot, may be at fault; nothing was removed "
                            + "('ferry forget ID' removes one)");
                }
                List<Outcome> outcomes = new ArrayList<>();
                for (Snapshots.Unreadable d : listing.damaged()) {
                    if (dryRun) {
                        outcomes.add(new Outcome(d, "would remove"));
                        continue;
                    }
                    // read it again: a read cut short on the way is not damage of the object
                    Snapshots.Read again = snaps.readIfPresent(d.id());
                    if (again == null) {
                        outcomes.add(new Outcome(d, "gone"));
                    } else if (again.stored() != null) {
                        outcomes.add(new Outcome(d, "kept"));
                    } else {
                        snaps.delete(d.id());
                        outcomes.add(new Outcome(again.unreadable(), "removed"));
                    }
                }
                print(main, listing, outcomes);
            }
        }
        return ExitCodes.OK;
    }

    private void print(Main main, Snapshots.Listing listing, List<Outcome> outcomes) throws Exception {
        long removed = outcomes.stream().filter(o -> o.action().equals("removed")
                || o.action().equals("would remove")).count();
        if (main.json()) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("dry_run", dryRun);
            m.put("readable", listing.snapshots().size());
            List<Map<String, Object>> damaged = new ArrayList<>();
            for (Outcome o : outcomes) {
                Map<String, Object> d = new LinkedHashMap<>();
                d.put("id", o.snapshot().id());
                d.put("cause", o.snapshot().cause());
                d.put("action", o.action().replace(' ', '_'));
                damaged.add(d);
            }
            m.put("damaged", damaged);
            m.put(dryRun ? "would_remove" : "removed", removed);
            main.printJson(m);
            return;
        }
        for (Outcome o : outcomes) {
            Snapshots.Unreadable d = o.snapshot();
            switch (o.action()) {
                case "kept" -> main.out.printf("kept %s: it can be read after all (the first read found: %s)%n",
                        d.objectName(), d.cause());
                case "gone" -> main.out.printf("%s is gone already%n", d.objectName());
                default -> main.out.printf("%s %s: %s%n", o.action(), d.objectName(), d.cause());
            }
        }
        if (outcomes.isEmpty()) {
            main.out.printf("no damaged snapshots; %d snapshot(s) can be read%n", listing.snapshots().size());
            return;
        }
        main.out.printf("%d damaged snapshot(s) %s; %d snapshot(s) can be read%n", removed,
                dryRun ? "would be removed" : "removed", listing.snapshots().size());
        if (removed > 0) {
            main.out.printf("prune %s the data that only %s used%n", dryRun ? "would then delete" : "now deletes",
                    removed == 1 ? "it" : "they");
        }
    }
}
