package dev.ferry.zfs.cli;

import dev.ferry.block.BlockRestore;
import dev.ferry.block.EngineBackup;
import dev.ferry.cli.ExitCodes;
import dev.ferry.cli.FilterOptions;
import dev.ferry.cli.JobOptions;
import dev.ferry.cli.Main;
import dev.ferry.cli.RestoreTargets;
import dev.ferry.cli.Summaries;
import dev.ferry.engine.RestoreTarget;
import dev.ferry.progress.ProgressReporter;
import dev.ferry.repo.Repository;
import dev.ferry.repo.RepositoryLock;
import dev.ferry.repo.Snapshot;
import dev.ferry.repo.SnapshotFilter;
import dev.ferry.repo.Snapshots;
import dev.ferry.store.Store;
import dev.ferry.zfs.Zfs;
import dev.ferry.zfs.ZfsEngine;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "zfs", description = {
        "Restore a block snapshot into a zvol, or into a file of a filesystem dataset.",
        "TARGET is a new zvol, or with --file a filesystem dataset (created if missing). An existing target is",
        "only overwritten with --force."})
final class ZfsRestoreCommand implements Callable<Integer> {
    private final Main main;

    @Parameters(index = "0", paramLabel = "ID|latest", description = {
            "Snapshot id (prefix), or 'latest': the newest ZFS backup of one volume (--from, --volume, --host",
            "say which where the repository holds several)."})
    String snapshot;

    @Parameters(index = "1", paramLabel = "TARGET", description = "The zvol or filesystem dataset to restore into.")
    String target;

    @Option(names = "--file", paramLabel = "RELPATH", description = "Restore into this file inside TARGET.")
    String file;

    @Option(names = "--from", paramLabel = "DATASET", description = "With 'latest': the dataset that was backed up.")
    String from;

    @Mixin
    FilterOptions filter;

    @Option(names = "--force", description = "Overwrite an existing target.")
    boolean force;

    @Option(names = "--keep-going", description = {
            "Go on past damaged or missing data: every other block is restored, the damaged ranges are left",
            "unwritten and listed, and the exit code is 3. Without it the restore stops at the first."})
    boolean keepGoing;

    @Mixin
    JobOptions job;

    ZfsRestoreCommand(Main main) {
        this.main = main;
    }

    @Override
    public Integer call() throws Exception {
        int threads = job.threads();
        Zfs.checkName(target);
        ZfsEngine engine = new ZfsEngine(main.env());
        try (Store store = main.openStore()) {
            if (file != null) {
                Path where = fileTarget(engine.zfs(), target, file);
                if (where != null) {
                    RestoreTargets.check(store, where, false);
                }
            }
            Repository repo = main.openRepository(store, true);
            try (RepositoryLock shared = repo.lockShared("restore")) { // prune deletes nothing while it is held
                repo.refreshIndex(); // read the index prune keeps, now that prune respects our lock
                SnapshotFilter f = filter.filter(Snapshot.KIND_BLOCK).withEngineFact(EngineBackup.ENGINE, engine.name());
                if (from != null) {
                    f = f.withEngineFact(ZfsEngine.DATASET, from);
                }
                Snapshots.Stored snap = new Snapshots(repo, main::warn).resolve(snapshot, "latest".equals(snapshot) ? f
                        : filter.filter(Snapshot.KIND_BLOCK));
                long size = snap.snapshot().volume().size();
                Map<String, String> options = new LinkedHashMap<>();
                options.put("force", Boolean.toString(force));
                if (file != null) {
                    options.put(ZfsEngine.FILE, file);
                }
                BlockRestore.Result r;
                try (RestoreTarget t = engine.prepareRestore(target, size, options)) {
                    try (ProgressReporter progress = main.progress("restore", size)) {
                        r = new BlockRestore(repo, snap, t.writer(), threads, keepGoing).run(progress);
                    }
                    t.finish(true);
                }
                String where = file == null ? target : target + " (" + file + ")";
                if (main.json()) {
                    Map<String, Object> m = Summaries.restoreJson(r, snap, where);
                    m.put("dataset", target);
                    m.put("file", file);
                    main.printJson(m);
                } else {
                    Summaries.printRestore(main.out(), r, snap, where, false);
                }
                if (!r.damaged().isEmpty()) {
                    main.err().println("ferry: " + r.damaged().size() + " range(s) of " + where + " (" + r.bytesDamaged()
                            + " bytes) were not restored because their data in the repository is damaged or missing; "
                            + "the rest of the volume is restored");
                    return ExitCodes.DAMAGE;
                }
            }
        }
        return ExitCodes.OK;
    }

    /**
     * Where {@code file} of {@code dataset} will be: below the dataset's mountpoint, or for a dataset still to be
     * created, below the mountpoint it will inherit from its nearest existing parent; {@code null} when that
     * cannot be told (no mountpoint).
     */
    static Path fileTarget(Zfs zfs, String dataset, String file) throws IOException {
        String name = dataset;
        String below = "";
        while (true) {
            Zfs.Dataset ds = zfs.get(name);
            if (ds != null) {
                if (ds.mountpoint() == null || !ds.mountpoint().startsWith("/")) {
                    return null;
                }
                Path mount = Path.of(ds.mountpoint());
                return (below.isEmpty() ? mount : mount.resolve(below)).resolve(file);
            }
            int slash = name.lastIndexOf('/');
            if (slash < 0) {
                return null;
            }
            below = name.substring(slash + 1) + (below.isEmpty() ? "" : "/" + below);
            name = name.substring(0, slash);
        }
    }
}
