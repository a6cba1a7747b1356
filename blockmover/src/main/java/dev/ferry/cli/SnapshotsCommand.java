package dev.ferry.cli;

import dev.ferry.repo.Repository;
import dev.ferry.repo.Snapshot;
import dev.ferry.repo.Snapshots;
import dev.ferry.store.Store;
import dev.ferry.util.Sizes;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

@Command(name = "snapshots", description = "List the snapshots in the repository, oldest first.")
final class SnapshotsCommand implements Callable<Integer> {
    @ParentCommand
    Main main;

    @Option(names = "--json", description = "Print a JSON array instead of a table.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        try (Store store = main.openStore()) {
            Repository repo = main.openRepository(store, false);
            List<Snapshots.Stored> all = new Snapshots(repo).list();
            if (json) {
                List<Map<String, Object>> out = new ArrayList<>();
                for (Snapshots.Stored st : all) {
                    Snapshot s = st.snapshot();
                    Map<String, Object> m = new LinkedHashMap<>();
                    m.put("id", st.id());
                    m.put("short_id", st.shortId());
                    m.put("time", s.time());
                    m.put("kind", s.kind());
                    m.put("hostname", s.hostname());
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
                    out.add(m);
                }
                main.printJson(out);
                return ExitCodes.OK;
            }
            main.out.printf("%-8s  %-19s  %-5s  %-12s  %10s  %s%n", "ID", "TIME (UTC)", "KIND", "HOST", "SIZE", "SOURCE  [TAGS]");
            for (Snapshots.Stored st : all) {
                Snapshot s = st.snapshot();
                String tags = s.tags() == null || s.tags().isEmpty() ? "" : "  " + s.tags();
                String time = s.time().length() >= 19 ? s.time().substring(0, 19).replace('T', ' ') : s.time();
                main.out.printf("%-8s  %-19s  %-5s  %-12s  %10s  %s%s%n", st.shortId(), time, s.kind(),
                        s.hostname(), size(s), s.source(), tags);
            }
            main.out.printf("%d snapshot(s)%n", all.size());
        }
        return ExitCodes.OK;
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
