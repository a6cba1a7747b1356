package dev.ferry.cli;

import dev.ferry.block.BlockRestore;
import dev.ferry.block.FileVolume;
import dev.ferry.crypto.Hashes;
import dev.ferry.progress.ProgressReporter;
import dev.ferry.repo.Json;
import dev.ferry.repo.Repository;
import dev.ferry.repo.Snapshot;
import dev.ferry.repo.Snapshots;
import dev.ferry.store.Store;
import dev.ferry.util.Sizes;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

@Command(name = "restore", description = "Restore a snapshot.", subcommands = {RestoreCommand.Block.class})
final class RestoreCommand {
    @ParentCommand
    Main main;

    @Command(name = "block", description = {
            "Restore a block snapshot into a file or block device.",
            "A new file stays sparse where the volume has zero blocks. An interrupted restore resumes when run",
            "again with the same snapshot and target: blocks already in place are checked against their hashes",
            "and skipped. 'latest' is the newest block snapshot of one volume: where the repository holds",
            "several, name it with --volume (and --host)."})
    static final class Block implements Callable<Integer> {
        @ParentCommand
        RestoreCommand restore;

        @Parameters(index = "0", paramLabel = "ID|latest",
                description = "Snapshot id (prefix), or 'latest': the newest block snapshot of the volume chosen.")
        String snapshot;

        @Parameters(index = "1", paramLabel = "TARGET", description = "File or block device to write.")
        Path target;

        @Option(names = "--force", description = "Overwrite a TARGET that already holds data.")
        boolean force;

        @Mixin
        FilterOptions filter;

        @Mixin
        JobOptions job;

        /** The note of a restore in progress, kept in the state directory until the restore succeeds. */
        record InProgress(String target, String repository, String snapshot, String started) {
        }

        @Override
        public Integer call() throws Exception {
            Main main = restore.main;
            int threads = job.threads();
            Path abs = target.toAbsolutePath().normalize();
            if (Files.isDirectory(abs)) {
                throw new IllegalArgumentException(abs + " is a directory; a block restore writes a file or a device");
            }
            try (Store store = main.openStore()) {
                RestoreTargets.check(store, abs, false);
                Repository repo = main.openRepository(store, true);
                Snapshots.Stored snap = new Snapshots(repo).resolve(snapshot, filter.filter(Snapshot.KIND_BLOCK));
                Path note = main.stateDir().resolve("restore-"
                        + Hashes.sha256Hex(abs.toString().getBytes(StandardCharsets.UTF_8)).substring(0, 32) + ".json");
                InProgress earlier = readNote(note);
                boolean resume = earlier != null && earlier.target().equals(abs.toString())
                        && earlier.repository().equals(repo.config().id()) && earlier.snapshot().equals(snap.id());
                boolean exists = Files.exists(abs);
                boolean device = exists && !Files.isRegularFile(abs);
                boolean holdsData = exists && (device || Files.size(abs) > 0);
                if (!force && !resume) {
                    if (earlier != null && earlier.target().equals(abs.toString())) {
                        throw new IllegalArgumentException("an interrupted restore of snapshot "
                                + earlier.snapshot().substring(0, 8) + " into " + abs + " was never finished; restore "
                                + "that snapshot to resume it, or use --force to write snapshot " + snap.shortId()
                                + " over it");
                    }
                    if (holdsData) {
                        throw new IllegalArgumentException(abs + " already exists and holds data; use --force to "
                                + "overwrite it");
                    }
                }
                writeNote(note, new InProgress(abs.toString(), repo.config().id(), snap.id(),
                        main.clock().instant().toString()));
                if (resume) {
                    main.err.println("ferry: resuming the interrupted restore of " + snap.shortId() + " into " + abs
                            + "; blocks already in place are checked and skipped");
                }
                long size = snap.snapshot().volume().size();
                FileVolume target;
                try {
                    target = FileVolume.openForWriting(abs, size, exists && !device && !resume);
                } catch (IOException | RuntimeException e) {
                    if (!resume) { // nothing was written: no restore to resume
                        Files.deleteIfExists(note);
                    }
                    throw e;
                }
                BlockRestore.Result r;
                try (FileVolume out = target;
                     ProgressReporter progress = main.progress("restore", size)) {
                    r = new BlockRestore(repo, snap, out, threads).run(progress);
                }
                Files.deleteIfExists(note);
                print(main, snap, abs, resume, r);
            }
            return ExitCodes.OK;
        }

        private static InProgress readNote(Path note) throws IOException {
            if (!Files.exists(note)) {
                return null;
            }
            try {
                return Json.MAPPER.readValue(Files.readAllBytes(note), InProgress.class);
            } catch (IOException e) {
                throw new IOException("cannot read the restore note " + note + " (" + e.getMessage()
                        + "); remove it and use --force", e);
            }
        }

        private static void writeNote(Path note, InProgress p) throws IOException {
            Files.createDirectories(note.getParent());
            Path tmp = note.resolveSibling(note.getFileName() + ".tmp");
            Files.write(tmp, Json.MAPPER.writeValueAsBytes(p));
            Files.move(tmp, note, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        }

        private void print(Main main, Snapshots.Stored snap, Path abs, boolean resumed, BlockRestore.Result r)
                throws IOException {
            if (main.json()) {
                Map<String, Object> m = Summaries.restoreJson(r, snap, abs.toString());
                m.put("resumed", resumed);
                main.printJson(m);
            } else {
                Summaries.printRestore(main.out, r, snap, abs.toString(), resumed);
            }
        }
    }
}
