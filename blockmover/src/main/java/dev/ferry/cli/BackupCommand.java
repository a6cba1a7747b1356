package dev.ferry.cli;

import dev.ferry.util.Sizes;
import dev.ferry.block.BlockBackup;
import dev.ferry.block.FileVolume;
import dev.ferry.engine.ChangedRanges;
import dev.ferry.progress.ProgressReporter;
import dev.ferry.repo.Repository;
import dev.ferry.repo.RepositoryLock;
import dev.ferry.repo.Snapshot;
import dev.ferry.repo.Snapshots;
import dev.ferry.store.Store;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

@Command(name = "backup", description = "Back up a volume into the repository.",
        subcommands = {BackupCommand.Block.class})
final class BackupCommand {
    @ParentCommand
    Main main;

    @Command(name = "block", description = {
            "Back up a file or block device as a block snapshot.",
            "The snapshot is a full image whose manifest maps every block to a chunk or to zero. With --parent,",
            "only new blocks are stored; with --changed-ranges as well, only the listed ranges are read and every",
            "other block is taken from the parent. A parent must be a snapshot of the same volume (--volume)."})
    static final class Block implements Callable<Integer> {
        @ParentCommand
        BackupCommand backup;

        @Parameters(paramLabel = "SOURCE", description = "File or block device to back up (ideally a snapshot of it).")
        Path source;

        @Option(names = "--parent", paramLabel = "ID|latest", description = {
                "Snapshot to build on: an id (prefix) or 'latest', the newest block snapshot of the same volume",
                "(--volume, or without it the same SOURCE on this host).",
                "Without --changed-ranges every block is still read, but only new chunks are stored."})
        String parent;

        @Option(names = "--changed-ranges", paramLabel = "FILE", description = {
                "Byte ranges changed since the parent, one 'OFFSET LENGTH' line each (decimal bytes).",
                "Only these are read; a range missing from the file is a block taken from the parent. A range",
                "past the end of SOURCE is an error. Where the volume grew, its new tail is read as well."})
        Path changedRanges;

        @Mixin
        VolumeOption volume;

        @Mixin
        BlockOptions block;

        @Mixin
        JobOptions job;

        @Override
        public Integer call() throws Exception {
            Main main = backup.main;
            Map<String, String> tagMap = block.tags();
            Integer bs = block.blockSize();
            int threads = job.threads();
            String volumeName = volume.name();
            if (changedRanges != null && parent == null) {
                throw new UsageException("--changed-ranges needs --parent: the ranges say what changed "
                        + "since a parent snapshot");
            }
            ChangedRanges changes = changedRanges == null ? null : ChangedRanges.parse(changedRanges);
            String sourceName = source.toAbsolutePath().normalize().toString();
            try (Store store = main.openStore();
                 FileVolume reader = FileVolume.openForReading(source)) {
                Repository repo = main.openRepository(store, false);
                try (RepositoryLock lock = repo.lock("backup", main.hostname(), main.clock())) {
                    repo.loadIndex();
                    Snapshots.Stored parentSnap = null;
                    if (parent != null) {
                        parentSnap = findParent(main, repo, sourceName, volumeName);
                    }
                    BlockBackup backupJob = new BlockBackup(repo, new BlockBackup.Request(reader, sourceName, bs,
                            parentSnap, parentSnap == null ? null : changes, tagMap, null, threads, lock, volumeName));
                    BlockBackup.Result r;
                    try (ProgressReporter progress = main.progress("backup", backupJob.bytesToRead())) {
                        r = backupJob.run(progress, main.clock(), main.hostname());
                    } finally {
                        repo.close();
                    }
                    print(main, r, parentSnap);
                }
            }
            return ExitCodes.OK;
        }

        private Snapshots.Stored findParent(Main main, Repository repo, String sourceName, String volumeName)
                throws Exception {
            Snapshots.Stored found = new Snapshots(repo, main::warn).parent(parent, Snapshot.KIND_BLOCK, volumeName,
                    sourceName, main.hostname());
            if (found != null) {
                return found;
            }
            String what = volumeName != null ? "volume '" + volumeName + "'" : sourceName + " on this host";
            if (changedRanges != null) {
                throw new IllegalArgumentException("--parent latest: there is no earlier block snapshot of " + what
                        + ", so the change list has nothing to apply to; run a full backup first");
            }
            main.err.println("ferry: no earlier block snapshot of " + what + "; making a full backup");
            return null;
        }

        private void print(Main main, BlockBackup.Result r, Snapshots.Stored parentSnap) throws Exception {
            if (main.json()) {
                main.printJson(Summaries.backupJson(r, parentSnap));
            } else {
                Summaries.printBackup(main.out, r, parentSnap);
            }
        }
    }
}
