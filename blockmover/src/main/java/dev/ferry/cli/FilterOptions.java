package dev.ferry.cli;

import dev.ferry.repo.SnapshotFilter;
import java.util.List;
import picocli.CommandLine.Option;

/** Options that pick snapshots: {@code --volume}, {@code --host}, {@code --tag}. */
public final class FilterOptions {
    @Option(names = "--volume", paramLabel = "NAME", description = {
            "Only snapshots of this volume: the name given with 'backup --volume', or for snapshots made without",
            "one, their source (a path, or e.g. zfs:pool/dataset)."})
    String volume;

    @Option(names = "--host", paramLabel = "HOST", description = "Only snapshots made on this host.")
    String host;

    @Option(names = "--tag", paramLabel = "KEY=VALUE", description = "Only snapshots with this tag (repeatable: all must match).")
    List<String> tags = List.of();

    /** The filter these options describe, for snapshots of {@code kind} (null: any kind). */
    public SnapshotFilter filter(String kind) {
        return new SnapshotFilter(kind, volume, host, Main.parseTags(tags));
    }
}
