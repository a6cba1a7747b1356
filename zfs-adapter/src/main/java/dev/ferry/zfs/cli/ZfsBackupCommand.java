package dev.ferry.zfs.cli;

import dev.ferry.block.EngineBackup;
import dev.ferry.cli.BlockOptions;
import dev.ferry.cli.ExitCodes;
import dev.ferry.cli.JobOptions;
import dev.ferry.cli.Main;
import dev.ferry.cli.Summaries;
import dev.ferry.cli.VolumeOption;
import dev.ferry.repo.Repository;
import dev.ferry.repo.RepositoryLock;
import dev.ferry.store.Store;
import dev.ferry.zfs.Zfs;
import dev.ferry.zfs.ZfsEngine;
import dev.ferry.zfs.ZfsVolume;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "zfs", description = {
        "Back up a zvol, or a volume image file in a filesystem dataset, from a new ZFS snapshot.",
        "With --file, the volume is an image file inside the filesystem dataset DATASET.",
        "Takes DATASET@ferry-<UTC time>; if an earlier Ferry snapshot of DATASET is backed up in the repository,",
        "reads only the blocks 'zfs send -i' says changed since then. Afterwards Ferry's older snapshots of",
        "DATASET are deleted (--keep-local keeps more); snapshots Ferry did not make are never touched."})
final class ZfsBackupCommand implements Callable<Integer> {
    private final Main main;

    @Parameters(paramLabel = "DATASET", description = "The zvol, or with --file the filesystem dataset.")
    String dataset;

    @Option(names = "--file", paramLabel = "RELPATH",
            description = "Volume image file inside DATASET, relative to its mountpoint.")
    String file;

    @Option(names = "--keep-local", paramLabel = "N",
            description = "Ferry snapshots of DATASET to keep after the backup, the new one included (default: 1).")
    int keepLocal = 1;

    @Mixin
    BlockOptions block;

    @Mixin
    VolumeOption volumeName;

    @Mixin
    JobOptions job;

    ZfsBackupCommand(Main main) {
        this.main = main;
    }

    @Override
    public Integer call() throws Exception {
        Map<String, String> tagMap = block.tags();
        String name = volumeName.name();
        Integer bs = block.blockSize();
        int threads = job.threads();
        ZfsVolume volume = new ZfsVolume(dataset, file);
        ZfsEngine engine = new ZfsEngine(main.env());
        try (Store store = main.openStore()) {
            Repository repo = main.openRepository(store, false);
            try (RepositoryLock lock = repo.lock("backup", main.hostname(), main.clock())) {
                repo.loadIndex();
                EngineBackup.Result r;
                try {
                    r = new EngineBackup(repo, new EngineBackup.Request(engine, volume.name(), keepLocal, bs, tagMap,
                            threads, lock, main.clock(), main.hostname(), name)).run(total -> main.progress("backup", total));
                } finally {
                    repo.close();
                }
                for (String w : r.warnings()) {
                    main.err().println("ferry: warning: " + w);
                }
                if (main.json()) {
                    Map<String, Object> m = Summaries.backupJson(r.backup(), r.parent());
                    m.put("zfs_snapshot", volume.dataset() + "@" + r.snapshot().name());
                    m.put("base_snapshot", r.base() == null ? null : volume.dataset() + "@" + r.base().name());
                    m.put("change_list", r.changeList());
                    m.put("deleted_snapshots", r.deleted());
                    m.put("warnings", r.warnings());
                    main.printJson(m);
                } else {
                    Summaries.printBackup(main.out(), r.backup(), r.parent());
                    main.out().printf("  zfs     %s@%s%s%n", volume.dataset(), r.snapshot().name(), r.base() == null
                            ? " (full read)" : (r.changeList() ? " (changes since " : " (everything read; base ")
                            + r.base().name() + ")");
                }
            }
        }
        return ExitCodes.OK;
    }
}
