package dev.ferry.zfs.cli;

import dev.ferry.block.BlockRestore;
import dev.ferry.block.EngineBackup;
import dev.ferry.cli.ExitCodes;
import dev.ferry.cli.JobOptions;
import dev.ferry.cli.Main;
import dev.ferry.cli.Summaries;
import dev.ferry.engine.RestoreTarget;
import dev.ferry.progress.ProgressReporter;
import dev.ferry.repo.Repository;
import dev.ferry.repo.Snapshot;
import dev.ferry.repo.Snapshots;
import dev.ferry.store.Store;
import dev.ferry.zfs.Zfs;
import dev.ferry.zfs.ZfsEngine;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "zfs", mixinStandardHelpOptions = true, description = {
        "Restore a block snapshot into a new zvol TARGET, or into a file of the filesystem dataset TARGET",
        "(--file; the dataset is created if missing). An existing target is only overwritten with --force."})
final class ZfsRestoreCommand implements Callable<Integer> {
    private final Main main;

    @Parameters(index = "0", paramLabel = "ID|latest",
            description = "Snapshot id (prefix), or 'latest': the newest ZFS backup (of --from if given).")
    String snapshot;

    @Parameters(index = "1", paramLabel = "TARGET", description = "The zvol or filesystem dataset to restore into.")
    String target;

    @Option(names = "--file", paramLabel = "RELPATH", description = "Restore into this file inside TARGET.")
    String file;

    @Option(names = "--from", paramLabel = "DATASET", description = "With 'latest': the dataset that was backed up.")
    String from;

    @Option(names = "--force", description = "Overwrite an existing target.")
    boolean force;

    @Mixin
    JobOptions job;

    ZfsRestoreCommand(Main main) {
        this.main = main;
    }

    @Override
    public Integer call() throws Exception {
        int threads = job.threads();
        Zfs.checkName(target);
        ZfsEngine engine = new ZfsEngine(Zfs.fromEnvironment(main.env()));
        try (Store store = main.openStore()) {
            Repository repo = main.openRepository(store, true);
            Snapshots.Stored snap = new Snapshots(repo).find(snapshot, s -> {
                Map<String, String> e = s.engine();
                return Snapshot.KIND_BLOCK.equals(s.kind()) && (!"latest".equals(snapshot) || e != null
                        && engine.name().equals(e.get(EngineBackup.ENGINE))
                        && (from == null || from.equals(e.get(ZfsEngine.DATASET))));
            });
            long size = snap.snapshot().volume().size();
            Map<String, String> options = new LinkedHashMap<>();
            options.put("force", Boolean.toString(force));
            if (file != null) {
                options.put(ZfsEngine.FILE, file);
            }
            BlockRestore.Result r;
            try (RestoreTarget t = engine.prepareRestore(target, size, options)) {
                try (ProgressReporter progress = main.progress("restore", size)) {
                    r = new BlockRestore(repo, snap, t.writer(), threads).run(progress);
                }
                t.finish(true);
            }
            String where = file == null ? target : target + " (" + file + ")";
            if (job.json()) {
                Map<String, Object> m = Summaries.restoreJson(r, snap, where);
                m.put("dataset", target);
                m.put("file", file);
                main.printJson(m);
            } else {
                Summaries.printRestore(main.out(), r, snap, where, false);
            }
        }
        return ExitCodes.OK;
    }
}
