package dev.ferry.cli;

import dev.ferry.progress.ProgressReporter;
import dev.ferry.repo.ProcessTable;
import dev.ferry.repo.Repository;
import dev.ferry.repo.RepositoryLock;
import dev.ferry.repo.Verifier;
import dev.ferry.store.Store;
import dev.ferry.util.Sizes;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

@Command(name = "verify", description = {
        "Check the repository for damage.",
        "Checks its structure: key slots, index files, that every indexed chunk is in its pack, and that every",
        "chunk a snapshot uses is indexed.",
        "With --read-data, also download every pack and decrypt and re-hash every chunk.",
        "Stale locks (of processes that died) are mentioned; 'ferry unlock' removes them."})
final class VerifyCommand implements Callable<Integer> {
    @ParentCommand
    Main main;

    @Option(names = "--read-data", description = "Read back and check every chunk (downloads the whole repository).")
    boolean readData;

    @Option(names = "--threads", paramLabel = "N", description = "Packs checked at once (default: ${DEFAULT-VALUE}).")
    int threads = 4;

    /** The stale locks in words, or null if there are none (see {@link RepositoryLock.Found#staleness}). */
    private String staleLocks(Store store) throws java.io.IOException {
        Instant now = main.clock().instant();
        ProcessTable local = ProcessTable.local(main.hostname());
        List<String> stale = new ArrayList<>();
        for (RepositoryLock.Found f : RepositoryLock.list(store)) {
            RepositoryLock.Staleness s = f.staleness(now, local);
            if (s.stale()) {
                stale.add(f.describe() + ": " + s.reason());
            }
        }
        if (stale.isEmpty()) {
            return null;
        }
        return stale.size() + " stale lock(s) of processes that died (" + String.join("; ", stale)
                + "); they hold back nothing, and 'ferry unlock' removes them";
    }

    @Override
    public Integer call() throws Exception {
        if (threads < 1 || threads > 64) {
            throw new UsageException("--threads must be 1..64, got " + threads);
        }
        try (Store store = main.openStore()) {
            Repository repo = main.openRepository(store, false);
            try (RepositoryLock shared = repo.lockShared("verify")) { // prune deletes nothing while it is held; the
                // index is read by the verifier after this
                Verifier.Report r;
                try (ProgressReporter progress = main.progress("verify", 0)) {
                    r = new Verifier(repo, msg -> {
                        if (main.progress()) {
                            main.err.println(msg);
                        }
                    }, progress).verify(readData, threads);
                }
                for (String w : r.warnings()) {
                    main.out.println("warning: " + w);
                }
                String stale = staleLocks(store);
                if (stale != null) {
                    main.out.println("warning: " + stale);
                }
                for (String e : r.errors()) {
                    main.out.println("error: " + e);
                }
                main.out.printf("checked %s: %d key slot(s), %d index file(s), %d pack(s), %d chunk(s), %d snapshot(s)%s%n",
                        store.location(), r.keySlots(), r.indexFiles(), r.packs(), r.chunks(), r.snapshots(),
                        readData ? ", read " + Sizes.human(r.bytesRead()) : "");
                if (r.ok()) {
                    main.out.println("no errors were found");
                    return ExitCodes.OK;
                }
                main.out.println(r.errors().size() + " error(s) found: the repository is damaged");
                return ExitCodes.DAMAGE;
            }
        }
    }
}
