package dev.ferry.cli;

import dev.ferry.progress.ProgressReporter;
import dev.ferry.repo.IndexRepair;
import dev.ferry.repo.Repository;
import dev.ferry.store.Store;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

@Command(name = "index", description = {
        "Rebuild the index from pack headers.",
        "Reads the header of every pack that no intact index file names, stores an index file naming their",
        "chunks, then deletes the damaged index files. Needs the repository to itself: refuses while another",
        "process holds a lock."})
final class RepairIndexCommand implements Callable<Integer> {
    @ParentCommand
    RepairCommand repair;

    @Option(names = "--read-all-packs", description = "Read the header of every pack and replace every index file.")
    boolean readAllPacks;

    @Override
    public Integer call() throws Exception {
        Main main = repair.main;
        try (Store store = main.openStore()) {
            Repository repo = main.openRepository(store, false);
            IndexRepair.Result r;
            try (ProgressReporter progress = main.progress("repair index", 0)) {
                r = new IndexRepair(repo, main.clock(), progress).run(main.hostname(), readAllPacks);
            }
            if (main.json()) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("index_files", r.indexFiles());
                m.put("damaged_index_files", r.damaged());
                m.put("packs", r.packs());
                m.put("packs_read", r.packsRead());
                m.put("unreadable_packs", r.unreadable());
                m.put("index_written", r.written());
                m.put("packs_indexed", r.packsIndexed());
                m.put("chunks_indexed", r.chunksIndexed());
                m.put("index_files_removed", r.removed());
                main.printJson(m);
            } else {
                for (String d : r.damaged()) {
                    main.out.println("damaged index file: " + d);
                }
                for (String u : r.unreadable()) {
                    main.out.println("error: pack header cannot be read, its chunks stay unindexed: " + u);
                }
                main.out.printf("%d index file(s), %d damaged; %d pack(s), read the header of %d%n", r.indexFiles(),
                        r.damaged().size(), r.packs(), r.packsRead());
                if (r.written() == null) {
                    main.out.println("the index is complete: nothing to repair");
                } else {
                    main.out.printf("stored %s naming %d chunk(s) in %d pack(s); removed %d index file(s)%n",
                            r.written(), r.chunksIndexed(), r.packsIndexed(), r.removed());
                }
            }
            return r.ok() ? ExitCodes.OK : ExitCodes.DAMAGE;
        }
    }
}
