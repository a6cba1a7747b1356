package dev.ferry.files.cli;

import dev.ferry.cli.ExitCodes;
import dev.ferry.cli.FilterOptions;
import dev.ferry.cli.Main;
import dev.ferry.files.SnapshotListing;
import dev.ferry.repo.Json;
import dev.ferry.repo.Repository;
import dev.ferry.repo.Snapshot;
import dev.ferry.repo.Snapshots;
import dev.ferry.store.Store;
import com.fasterxml.jackson.databind.ObjectWriter;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.PrintWriter;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "ls", description = {
        "List the contents of a files snapshot.",
        "One path per line, from the snapshot's root ('/app/config.yaml'), depth first in name order. With PATH,",
        "that entry and, for a directory, everything below it. In text, a backslash is written '\\\\', and control",
        "characters and bytes that are not UTF-8 '\\xNN'. With --json, one JSON object per line: path (or",
        "path_b64), name, type, mode, permissions, uid, gid, mtime, mtime_ns, and size, target, rdev, link where",
        "they apply."})
public final class LsCommand implements Callable<Integer> {
    private final Main main;

    @Parameters(index = "0", paramLabel = "ID|latest",
            description = "Files snapshot id (prefix), or 'latest': the newest files snapshot of the volume chosen.")
    String snapshot;

    @Parameters(index = "1", paramLabel = "PATH", arity = "0..1",
            description = "A file or directory inside the snapshot (default: everything).")
    String path;

    @Option(names = {"-l", "--long"}, description = "Also permissions, uid, gid, size and mtime (UTC), as ls -l.")
    boolean longFormat;

    @Mixin
    FilterOptions filter;

    public LsCommand(Main main) {
        this.main = main;
    }

    @Override
    public Integer call() throws Exception {
        PrintWriter out = main.out();
        ObjectWriter lines = Json.MAPPER.writer().without(SerializationFeature.INDENT_OUTPUT);
        try (Store store = main.openStore()) {
            Repository repo = main.openRepository(store, true);
            Snapshots.Stored snap = new Snapshots(repo, main::warn).resolve(snapshot,
                    filter.filter(Snapshot.KIND_FILES));
            SnapshotListing.list(repo, snap, path, e -> out.println(main.json() ? lines.writeValueAsString(
                    SnapshotListing.json(e)) : longFormat ? SnapshotListing.longLine(e)
                    : SnapshotListing.escape(e.path())));
        } finally {
            out.flush();
        }
        return ExitCodes.OK;
    }
}
