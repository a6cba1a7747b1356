package dev.ferry.cli;

import dev.ferry.progress.ProgressReporter;
import dev.ferry.repo.Repository;
import dev.ferry.repo.Verifier;
import dev.ferry.store.Store;
import dev.ferry.util.Sizes;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

@Command(name = "verify", description = {
        "Check the repository for damage.",
        "Checks its structure: key slots, index files, that every indexed chunk is in its pack, and that every",
        "chunk a snapshot uses is indexed.",
        "With --read-data, also download every pack and decrypt and re-hash every chunk."})
final class VerifyCommand implements Callable<Integer> {
    @ParentCommand
    Main main;

    @Option(names = "--read-data", description = "Read back and check every chunk (downloads the whole repository).")
    boolean readData;

    @Option(names = "--threads", paramLabel = "N", description = "Packs checked at once (default: ${DEFAULT-VALUE}).")
    int threads = 4;

    @Override
    public Integer call() throws Exception {
        if (threads < 1 || threads > 64) {
            throw new UsageException("--threads must be 1..64, got " + threads);
        }
        try (Store store = main.openStore()) {
            Repository repo = main.openRepository(store, false);
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
