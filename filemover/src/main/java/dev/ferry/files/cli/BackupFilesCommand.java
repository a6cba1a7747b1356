package dev.ferry.files.cli;

import dev.ferry.cli.ExitCodes;
import dev.ferry.cli.JobOptions;
import dev.ferry.cli.Main;
import dev.ferry.cli.Summaries;
import dev.ferry.cli.VolumeOption;
import dev.ferry.files.FileBackup;
import dev.ferry.progress.ProgressReporter;
import dev.ferry.repo.Repository;
import dev.ferry.repo.RepositoryLock;
import dev.ferry.repo.Snapshot;
import dev.ferry.repo.Snapshots;
import dev.ferry.store.Store;
import dev.ferry.util.Sizes;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "files", description = {
        "Back up a directory tree file by file.",
        "For volumes whose engine has no snapshots (hostpath, Jiva, NFS, emptyDir). Content is cut into content-defined chunks that deduplicate with everything in the",
        "repository; metadata, symlinks, hard links, xattrs and holes are kept. With --parent, files whose",
        "size, mtime, ctime and inode did not change are taken from the parent without being read.",
        "Exit code 5: the snapshot was stored but some files could not be read (listed)."})
public final class BackupFilesCommand implements Callable<Integer> {
    private final Main main;

    @Parameters(paramLabel = "DIR", description = "Directory to back up.")
    Path dir;

    @Option(names = "--parent", paramLabel = "ID|latest",
            description = {"Files snapshot to build on: an id (prefix) or 'latest', the newest files snapshot of the same",
                    "volume (--volume, or without it the same DIR on this host)."})
    String parent;

    @Mixin
    VolumeOption volume;

    @Option(names = "--exclude", paramLabel = "PATTERN", description = {
            "Leave out entries matching a glob (repeatable). With a '/', matched against the path relative",
            "to DIR ('cache/**', 'data/*.tmp'); without, against names at any depth ('*.log', 'lost+found')."})
    List<String> excludes = List.of();

    @Option(names = {"-x", "--one-file-system"},
            description = "Do not descend into other file systems mounted below DIR (their mount points stay, empty).")
    boolean oneFileSystem;

    @Option(names = "--tag", paramLabel = "KEY=VALUE", description = "Tag the snapshot (repeatable).")
    List<String> tags = List.of();

    @Mixin
    JobOptions job;

    public BackupFilesCommand(Main main) {
        this.main = main;
    }

    @Override
    public Integer call() throws Exception {
        FileBackup.warmUp(); // native bindings load while the repository opens
        Map<String, String> tagMap = Main.parseTags(tags);
        String volumeName = volume.name();
        int threads = job.threads();
        Path abs = dir.toAbsolutePath().normalize();
        if (!Files.isDirectory(abs)) {
            throw new IllegalArgumentException(abs + " is not a directory");
        }
        String sourceName = abs.toString();
        FileBackup.Result r;
        Snapshots.Stored parentSnap = null;
        try (Store store = main.openStore()) {
            Repository repo = main.openRepository(store, false);
            try (RepositoryLock lock = repo.lock("backup", main.hostname(), main.clock())) {
                repo.loadIndex();
                if (parent != null) {
                    parentSnap = findParent(repo, sourceName, volumeName);
                }
                FileBackup backup = new FileBackup(repo, new FileBackup.Request(abs, sourceName, parentSnap, excludes,
                        oneFileSystem, tagMap, threads, lock, volumeName));
                try (ProgressReporter progress = main.progress("backup", 0)) {
                    r = backup.run(progress, main.clock(), main.hostname());
                } finally {
                    repo.close();
                }
            }
        }
        print(r, parentSnap);
        return r.partial() ? ExitCodes.PARTIAL : ExitCodes.OK;
    }

    private Snapshots.Stored findParent(Repository repo, String sourceName, String volumeName) throws Exception {
        Snapshots.Stored found = new Snapshots(repo, main::warn).parent(parent, Snapshot.KIND_FILES, volumeName,
                sourceName, main.hostname());
        if (found == null) {
            main.err().println("ferry: no earlier files snapshot of " + (volumeName != null ? "volume '" + volumeName
                    + "'" : sourceName + " on this host") + "; reading every file");
        }
        return found;
    }

    private void print(FileBackup.Result r, Snapshots.Stored parentSnap) throws Exception {
        if (main.json()) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("snapshot_id", r.snapshot().id());
            m.put("parent", parentSnap == null ? null : parentSnap.id());
            m.put("source", r.snapshot().snapshot().source());
            m.put("volume_name", r.snapshot().snapshot().volumeName());
            m.put("bytes_total", r.bytesTotal());
            m.put("bytes_read", r.bytesRead());
            m.put("bytes_new", r.bytesNew());
            m.put("chunks_new", r.chunksNew());
            m.put("files_new", r.filesNew());
            m.put("files_changed", r.filesChanged());
            m.put("files_unchanged", r.filesUnchanged());
            m.put("dirs", r.dirs());
            m.put("duration_s", Main.round3(r.durationS()));
            m.put("partial", r.partial());
            m.put("warnings", r.warnings());
            m.put("unreadable", r.errors());
            main.printJson(m);
            return;
        }
        PrintWriter out = main.out();
        out.printf("snapshot %s saved%s%n", r.snapshot().shortId(),
                parentSnap == null ? " (full)" : " (parent " + parentSnap.shortId() + ")");
        out.printf("  files   %d new, %d changed, %d unchanged, %d directories, %s in all%n", r.filesNew(),
                r.filesChanged(), r.filesUnchanged(), r.dirs(), Sizes.human(r.bytesTotal()));
        Summaries.printReadStored(out, r.bytesRead(), r.durationS(), r.bytesNew(), r.chunksNew());
        for (String w : r.warnings()) {
            main.err().println("ferry: warning: " + w);
        }
        for (String e : r.errors()) {
            main.err().println("ferry: not backed up: " + e);
        }
        if (r.partial()) {
            main.err().println("ferry: the snapshot is partial: " + r.errors().size() + " entries could not be read");
        }
    }
}
