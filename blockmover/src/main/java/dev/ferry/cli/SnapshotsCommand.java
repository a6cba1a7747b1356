package dev.ferry.cli;

import dev.ferry.repo.Repository;
import dev.ferry.repo.Snapshot;
import dev.ferry.repo.SnapshotFilter;
import dev.ferry.repo.Snapshots;
import dev.ferry.store.Store;
import dev.ferry.util.Sizes;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

@Command(name = "snapshots", description = {
        "List the snapshots in the repository, oldest first.",
        "VOLUME is the name given with 'backup --volume', or '-' for a snapshot known by its SOURCE on its HOST.",
        "A snapshot that cannot be read (damaged) is named on stderr, the others are listed, and the exit code",
        "is 3; 'ferry repair snapshots' removes such snapshots."})
final class SnapshotsCommand implements Callable<Integer> {
    @ParentCommand
    Main main;

    @Mixin
    FilterOptions filter;

    @Option(names = "--kind", paramLabel = "KIND", description = "Only snapshots of this kind: block or files.")
    String kind;

    @Override
    public Integer call() throws Exception {
        if (kind != null && !List.of(Snapshot.KIND_BLOCK, Snapshot.KIND_FILES).contains(kind)) {
            throw new UsageException("--kind is block or files, not '" + kind + "'");
        }
        SnapshotFilter f = filter.filter(kind);
        try (Store store = main.openStore()) {
            Repository repo = main.openRepository(store, false);
            Snapshots.Listing listing = new Snapshots(repo, main::warn).readAll();
            List<Snapshots.Stored> all = listing.snapshots().stream().filter(s -> f.test(s.snapshot())).toList();
            // a damaged snapshot may be one of those asked for: named on stderr whatever the filter, and the exit
            // code says the list is incomplete; stdout stays the list of what can be read
            for (Snapshots.Unreadable d : listing.damaged()) {
                main.err.println("ferry: " + d.describe() + "; remove it with 'ferry repair snapshots' or "
                        + "'ferry forget " + d.shortId() + "'");
            }
            int exit = listing.damaged().isEmpty() ? ExitCodes.OK : ExitCodes.DAMAGE;
            if (main.json()) {
                List<Map<String, Object>> out = new ArrayList<>();
                for (Snapshots.Stored st : all) {
                    out.add(json(st));
                }
                main.printJson(out);
                return exit;
            }
            main.out.printf("%-8s  %-19s  %-5s  %-12s  %-16s  %10s  %s%n", "ID", "TIME (UTC)", "KIND", "HOST", "VOLUME",
                    "SIZE", "SOURCE  [TAGS]");
            for (Snapshots.Stored st : all) {
                Snapshot s = st.snapshot();
                String tags = s.tags() == null || s.tags().isEmpty() ? "" : "  " + s.tags();
                String time = displayTime(s.time());
                main.out.printf("%-8s  %-19s  %-5s  %-12s  %-16s  %10s  %s%s%n", st.shortId(), time, s.kind(),
                        s.hostname(), s.volumeName() == null ? "-" : s.volumeName(), size(s), s.source(), tags);
            }
            main.out.printf("%d snapshot(s)%s%s%n", all.size(), f.narrows() || kind != null ? " (" + f.describe() + ")"
                    : "", listing.damaged().isEmpty() ? "" : "; " + listing.damaged().size() + " cannot be read");
            return exit;
        }
    }

    private static Map<String, Object> json(Snapshots.Stored st) {
        Snapshot s = st.snapshot();
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("id", st.id());
        m.put("short_id", st.shortId());
        m.put("time", s.time());
        m.put("kind", s.kind());
        m.put("hostname", s.hostname());
        m.put("volume_name", s.volumeName());
        m.put("source", s.source());
        m.put("tags", s.tags());
        m.put("parent", s.parent());
        if (s.volume() != null) {
            m.put("size", s.volume().size());
            m.put("block_size", s.volume().blockSize());
        }
        m.put("summary", s.summary());
        if (s.engine() != null) {
            m.put("engine", s.engine());
        }
        return m;
    }

    /** A snapshot's time as the table shows it: UTC to the second, {@code 2026-12-03 18:28:22}. */
    static String displayTime(String time) {
        return time.length() >= 19 ? time.substring(0, 19).replace('T', ' ') : time;
    }

    /** A block snapshot's volume size; a files snapshot's total file size, from its summary. */
    private static String size(Snapshot s) {
        if (s.volume() != null) {
            return Sizes.human(s.volume().size());
        }
        if (s.summary() != null && s.summary().get("bytes_total") instanceof Number n) {
            return Sizes.human(n.longValue());
        }
        return "";
    }
}
