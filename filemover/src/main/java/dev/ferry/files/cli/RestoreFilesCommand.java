package dev.ferry.files.cli;

import dev.ferry.cli.ExitCodes;
import dev.ferry.cli.FilterOptions;
import dev.ferry.cli.UsageException;
import dev.ferry.cli.JobOptions;
import dev.ferry.cli.Main;
import dev.ferry.cli.RestoreTargets;
import dev.ferry.files.FileBackup;
import dev.ferry.files.FileRestore;
import dev.ferry.progress.ProgressReporter;
import dev.ferry.repo.Repository;
import dev.ferry.repo.RepositoryLock;
import dev.ferry.repo.Snapshot;
import dev.ferry.repo.Snapshots;
import dev.ferry.store.Store;
import dev.ferry.util.Sizes;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "files", description = {
        "Restore a files snapshot into a directory, with its metadata.",
        "Nothing is written outside TARGET; existing directories are merged, existing files are replaced only",
        "with --overwrite. 'latest' is the newest files snapshot of one volume: where the repository holds",
        "several, name it with --volume (and --host).",
        "Damaged or missing data does not stop the restore: a file that lacks some of its data is not restored",
        "(none of its names), every other file is, the damaged files are listed with the offset of the data",
        "they lack, and the exit code is 3. TARGET must not lie inside the repository, nor hold it."})
public final class RestoreFilesCommand implements Callable<Integer> {
    private final Main main;

    @Parameters(index = "0", paramLabel = "ID|latest",
            description = "Snapshot id (prefix), or 'latest': the newest files snapshot of the volume chosen.")
    String snapshot;

    @Parameters(index = "1", paramLabel = "TARGET", description = "Directory to restore into (created if missing).")
    Path target;

    @Option(names = "--include", paramLabel = "PATH",
            description = "Restore only this file or directory (a path inside the snapshot); it keeps its path under TARGET.")
    String include;

    @Option(names = "--marker", paramLabel = "ID", description = {
            "After a successful restore, write TARGET/.ferry/ID (what an init container waits for).",
            "Never written when the restore fails or leaves damaged files out."})
    String marker;

    @Option(names = "--overwrite", description = "Replace files that already exist in TARGET.")
    boolean overwrite;

    @Mixin
    FilterOptions filter;

    @Mixin
    JobOptions job;

    public RestoreFilesCommand(Main main) {
        this.main = main;
    }

    @Override
    public Integer call() throws Exception {
        FileBackup.warmUp(); // native bindings load while the repository opens
        int threads = job.threads();
        if (marker != null && !marker.matches("[A-Za-z0-9][A-Za-z0-9._-]{0,127}")) {
            throw new UsageException("--marker is a plain name (letters, digits, '.', '_', '-'), not '"
                    + marker + "'");
        }
        Path abs = target.toAbsolutePath().normalize();
        FileRestore.Result r;
        Snapshots.Stored snap;
        try (Store store = main.openStore()) {
            RestoreTargets.check(store, abs, true);
            Repository repo = main.openRepository(store, true);
            try (RepositoryLock shared = repo.lockShared("restore")) { // prune deletes nothing while it is held
                repo.refreshIndex(); // read the index prune keeps, now that prune respects our lock
                snap = new Snapshots(repo, main::warn).resolve(snapshot, filter.filter(Snapshot.KIND_FILES));
                try (ProgressReporter progress = main.progress("restore", 0)) {
                    r = new FileRestore(repo, snap, threads, overwrite).run(abs, include, progress);
                }
            }
        }
        if (marker != null && r.damaged().isEmpty()) {
            Path dir = abs.resolve(".ferry");
            if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
                Files.createDirectory(dir);
            }
            Path tmp = dir.resolve("." + marker + ".tmp");
            Files.deleteIfExists(tmp);
            Files.write(tmp, (snap.id() + "\n").getBytes(StandardCharsets.UTF_8));
            Files.move(tmp, dir.resolve(marker), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        }
        if (main.json()) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("snapshot_id", snap.id());
            m.put("target", abs.toString());
            m.put("files", r.files());
            m.put("dirs", r.dirs());
            m.put("bytes_total", r.bytesTotal());
            m.put("bytes_written", r.bytesWritten());
            m.put("duration_s", Main.round3(r.durationS()));
            m.put("warnings", r.warnings());
            m.put("damaged", r.damaged()); // records: path, offset, length, object, cause
            main.printJson(m);
        } else {
            main.out().printf("restored snapshot %s into %s: %d files, %d directories, %s in files (%s written) in "
                    + "%.2f s%n", snap.shortId(), abs, r.files(), r.dirs(), Sizes.human(r.bytesTotal()),
                    Sizes.human(r.bytesWritten()), r.durationS());
            for (String w : r.warnings()) {
                main.err().println("ferry: warning: " + w);
            }
            for (FileRestore.Damage d : r.damaged()) {
                main.err().println("ferry: damaged, not restored: " + d);
            }
        }
        if (!r.damaged().isEmpty()) {
            main.err().println("ferry: " + r.damaged().size() + " damaged file(s) or director(ies) of snapshot "
                    + snap.shortId() + " were left out because their data in the repository is damaged or missing"
                    + (marker != null ? "; no marker was written" : "") + "; everything else is restored");
            return ExitCodes.DAMAGE;
        }
        return ExitCodes.OK;
    }
}
