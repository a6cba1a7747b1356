package dev.ferry.cli;

import dev.ferry.block.BlockRestore;
import dev.ferry.block.FileVolume;
import dev.ferry.crypto.Hashes;
import dev.ferry.progress.ProgressReporter;
import dev.ferry.repo.Json;
import dev.ferry.repo.Repository;
import dev.ferry.repo.RepositoryLock;
import dev.ferry.repo.Snapshot;
import dev.ferry.repo.Snapshots;
import dev.ferry.store.Store;
import dev.ferry.util.Sizes;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.Set;
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

        @Option(names = "--keep-going", description = {
                "Go on past damaged or missing data: every other block is restored, the damaged ranges are left",
                "unwritten and listed, and the exit code is 3. Without it the restore stops at the first."})
        boolean keepGoing;

        @Option(names = "--mode", paramLabel = "OCTAL", description = {
                "Permissions of a TARGET file the restore creates (default 0600: a volume's data is readable",
                "only by its owner, whatever the umask); an existing file gets them only when this is given."})
        String mode;

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
            Set<PosixFilePermission> perms = permissions(mode);
            if (Files.isDirectory(abs)) {
                throw new IllegalArgumentException(abs + " is a directory; a block restore writes a file or a device");
            }
            try (Store store = main.openStore()) {
                RestoreTargets.check(store, abs, false);
                Repository repo = main.openRepository(store, true);
                try (RepositoryLock shared = repo.lockShared("restore")) { // prune deletes nothing while it is held
                    repo.refreshIndex(); // read the index prune keeps, now that prune respects our lock
                    Snapshots.Stored snap = new Snapshots(repo, main::warn).resolve(snapshot,
                            filter.filter(Snapshot.KIND_BLOCK));
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
                        if (!exists) { // never readable by others, not even for a moment
                            Files.createFile(abs, PosixFilePermissions.asFileAttribute(
                                    EnumSet.of(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE)));
                            Files.setPosixFilePermissions(abs, perms == null ? PRIVATE : perms);
                        } else if (perms != null && !device) {
                            Files.setPosixFilePermissions(abs, perms);
                        }
                        target = FileVolume.openForWriting(abs, size, exists && !device && !resume);
                    } catch (IOException | RuntimeException e) {
                        if (!resume) { // nothing was written: no restore to resume
                            Files.deleteIfExists(note);
                        }
                        if (!exists) {
                            Files.deleteIfExists(abs);
                        }
                        throw e;
                    }
                    BlockRestore.Result r;
                    try (FileVolume out = target;
                         ProgressReporter progress = main.progress("restore", size)) {
                        r = new BlockRestore(repo, snap, out, threads, keepGoing).run(progress);
                    }
                    print(main, snap, abs, resume, r);
                    if (!r.damaged().isEmpty()) {
                        // the note stays: run again (after 'ferry repair' or with the data back) to fetch only these
                        main.err.println("ferry: " + r.damaged().size() + " range(s) of " + abs + " (" + r.bytesDamaged()
                                + " bytes) were not restored because their data in the repository is damaged or "
                                + "missing; the rest of the volume is restored");
                        return ExitCodes.DAMAGE;
                    }
                    Files.deleteIfExists(note);
                }
            }
            return ExitCodes.OK;
        }

        private static final Set<PosixFilePermission> PRIVATE = PosixFilePermissions.fromString("rw-------");

        /** The permissions --mode asks for, or {@code null} when it is not given. */
        static Set<PosixFilePermission> permissions(String mode) {
            if (mode == null) {
                return null;
            }
            if (!mode.matches("0?[0-7]{3}")) {
                throw new UsageException("--mode takes permissions in octal such as 0600 or 0644, not '" + mode + "'");
            }
            int bits = Integer.parseInt(mode, 8);
            Set<PosixFilePermission> perms = EnumSet.noneOf(PosixFilePermission.class);
            PosixFilePermission[] order = {PosixFilePermission.OTHERS_EXECUTE, PosixFilePermission.OTHERS_WRITE,
                    PosixFilePermission.OTHERS_READ, PosixFilePermission.GROUP_EXECUTE, PosixFilePermission.GROUP_WRITE,
                    PosixFilePermission.GROUP_READ, PosixFilePermission.OWNER_EXECUTE, PosixFilePermission.OWNER_WRITE,
                    PosixFilePermission.OWNER_READ};
            for (int i = 0; i < order.length; i++) {
                if ((bits & (1 << i)) != 0) {
                    perms.add(order[i]);
                }
            }
            return perms;
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
