package dev.ferry.cli;

import dev.ferry.progress.ProgressReporter;
import dev.ferry.repo.Pruner;
import dev.ferry.repo.Repository;
import dev.ferry.repo.Retention;
import dev.ferry.repo.Snapshot;
import dev.ferry.repo.SnapshotFilter;
import dev.ferry.repo.Snapshots;
import dev.ferry.store.Store;
import java.time.DateTimeException;
import java.time.Instant;
import java.time.ZoneId;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

@Command(name = "forget", description = {
        "Remove snapshots from the repository.",
        "Either name them (ids, or 'latest' of one volume), or give a policy (--keep-*), which is applied to",
        "each group of snapshots of one kind, volume and host on its own, as restic's forget does: a snapshot",
        "is kept if any rule keeps it. --dry-run lists what would be kept and forgotten, and why. Data stays",
        "until prune removes what no snapshot uses (--prune runs it afterwards). Hours, days, weeks (ISO),",
        "months and years are those of the local time zone ($TZ).",
        "A snapshot that cannot be read (damaged) is forgotten when named by its id; a policy leaves it alone",
        "with a warning ('ferry repair snapshots' removes every such snapshot)."})
final class ForgetCommand implements Callable<Integer> {
    @ParentCommand
    Main main;

    @Parameters(paramLabel = "ID|latest", arity = "0..*",
            description = "Snapshots to forget: ids (prefixes), or 'latest' (the newest of one volume).")
    List<String> ids = List.of();

    @Option(names = "--keep-last", paramLabel = "N", description = "Keep the newest N snapshots (-1: all).")
    int last;

    @Option(names = "--keep-hourly", paramLabel = "N",
            description = "Keep the newest snapshot of each of the last N hours that have one (-1: all).")
    int hourly;

    @Option(names = "--keep-daily", paramLabel = "N",
            description = "Keep the newest snapshot of each of the last N days that have one (-1: all).")
    int daily;

    @Option(names = "--keep-weekly", paramLabel = "N",
            description = "Keep the newest snapshot of each of the last N ISO weeks that have one (-1: all).")
    int weekly;

    @Option(names = "--keep-monthly", paramLabel = "N",
            description = "Keep the newest snapshot of each of the last N months that have one (-1: all).")
    int monthly;

    @Option(names = "--keep-yearly", paramLabel = "N",
            description = "Keep the newest snapshot of each of the last N years that have one (-1: all).")
    int yearly;

    @Option(names = "--keep-within", paramLabel = "DURATION", description = {
            "Keep every snapshot newer than the group's newest minus DURATION: years, months, days, hours,",
            "minutes, e.g. 1y6m, 7d, 36h, 90min."})
    String within;

    @Option(names = "--keep-tag", paramLabel = "KEY=VALUE[,KEY=VALUE]", description = {
            "Keep every snapshot with all these tags (repeatable: any of them keeps; '' keeps untagged ones)."})
    List<String> keepTags = List.of();

    @Mixin
    FilterOptions filter;

    @Option(names = "--prune", description = "Run prune afterwards.")
    boolean prune;

    @Option(names = "--dry-run", description = "Only say which snapshots would be kept and forgotten, and why.")
    boolean dryRun;

    @Override
    public Integer call() throws Exception {
        Retention.Policy policy = policy();
        if (!ids.isEmpty() && !policy.isEmpty()) {
            throw new UsageException("give snapshot ids or a policy (--keep-*), not both");
        }
        if (ids.isEmpty() && policy.isEmpty()) {
            throw new UsageException("give snapshot ids to forget, or a policy of what to keep: --keep-last, "
                    + "--keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, --keep-yearly, --keep-within, "
                    + "--keep-tag");
        }
        SnapshotFilter f = filter.filter(null);
        try (Store store = main.openStore()) {
            Repository repo = main.openRepository(store, prune);
            Snapshots snaps = new Snapshots(repo, main::warn);
            List<Map<String, Object>> groups = new ArrayList<>();
            Set<Snapshots.Stored> forget = new LinkedHashSet<>();
            // damaged snapshot objects: forgotten when named by id, left alone by a policy
            Map<String, Snapshots.Unreadable> damagedForgotten = new LinkedHashMap<>();
            List<Snapshots.Unreadable> damagedKept = new ArrayList<>();
            if (!ids.isEmpty()) {
                for (String id : ids) {
                    Snapshots.Read r = snaps.resolveRead(id, f);
                    if (r.stored() != null) {
                        forget.add(r.stored());
                    } else {
                        damagedForgotten.put(r.id(), r.unreadable());
                    }
                }
            } else {
                Retention retention = new Retention(policy, zone(), main.clock().instant());
                Snapshots.Listing listing = snaps.readAll();
                for (Snapshots.Unreadable d : listing.damaged()) {
                    damagedKept.add(d);
                    main.warn(d.describe() + "; the policy leaves it alone: remove it with 'ferry repair snapshots' "
                            + "or 'ferry forget " + d.shortId() + "'");
                }
                for (List<Snapshots.Stored> group : groups(listing.snapshots().stream()
                        .filter(s -> f.test(s.snapshot())).toList())) {
                    Snapshot first = group.get(0).snapshot();
                    String name = first.kind() + " snapshots of " + first.describeVolume()
                            + (first.volumeName() == null ? "" : " on host " + first.hostname());
                    List<Retention.Decision<Snapshots.Stored>> decisions;
                    try {
                        decisions = retention.apply(group, s -> Instant.parse(s.snapshot().time()),
                                s -> s.snapshot().tags(), Comparator.comparing(Snapshots.Stored::id));
                    } catch (IllegalArgumentException e) {
                        throw new IllegalArgumentException(name + ": " + e.getMessage(), e);
                    }
                    groups.add(report(name, first, decisions));
                    for (Retention.Decision<Snapshots.Stored> d : decisions) {
                        if (!d.keep()) {
                            forget.add(d.item());
                        }
                    }
                }
            }
            for (Snapshots.Stored s : forget) {
                if (!dryRun) {
                    snaps.delete(s.id());
                }
                if (ids.isEmpty() || main.json()) {
                    continue; // listed with the reasons, or in the JSON
                }
                main.out.printf("%s %s  %s  %s%n", dryRun ? "would forget" : "forgot", s.shortId(),
                        s.snapshot().time(), s.snapshot().describeVolume());
            }
            for (Snapshots.Unreadable d : damagedForgotten.values()) {
                if (!dryRun) {
                    snaps.delete(d.id());
                }
                if (!main.json()) {
                    main.out.printf("%s %s  (cannot be read: %s)%n", dryRun ? "would forget" : "forgot", d.shortId(),
                            d.cause());
                }
            }
            Set<String> forgotten = new LinkedHashSet<>();
            forget.forEach(s -> forgotten.add(s.id()));
            forgotten.addAll(damagedForgotten.keySet());
            if (!main.json()) {
                main.out.printf("%d snapshot(s) %s%n", forgotten.size(), dryRun ? "would be forgotten" : "forgotten");
            }
            Pruner.Result pruned = null;
            if (prune) {
                try (ProgressReporter progress = main.progress("prune", 0)) {
                    Pruner pruner = new Pruner(repo, main.clock(), Pruner.DEFAULT_REPACK_SHARE, progress);
                    // a dry run forgot nothing: prune's figures are those after the forget it listed
                    pruned = dryRun ? pruner.dryRunAfterForget(main.hostname(), forgotten)
                            : pruner.run(main.hostname(), false);
                }
                if (!main.json()) {
                    PruneCommand.report(main, pruned);
                }
            }
            if (main.json()) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("dry_run", dryRun);
                if (ids.isEmpty()) {
                    m.put("policy", policy.describe());
                    m.put("groups", groups);
                }
                m.put("forgotten", List.copyOf(forgotten));
                List<Map<String, Object>> damaged = new ArrayList<>();
                damagedForgotten.values().forEach(d -> damaged.add(damagedJson(d, true)));
                damagedKept.forEach(d -> damaged.add(damagedJson(d, false)));
                m.put("damaged", damaged);
                if (pruned != null) {
                    m.put("prune", pruned.json());
                }
                main.printJson(m);
            }
        }
        return ExitCodes.OK;
    }

    /** A damaged snapshot object as {@code --json} lists it: its id, what is wrong, and whether it was forgotten. */
    private static Map<String, Object> damagedJson(Snapshots.Unreadable d, boolean forgotten) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("id", d.id());
        m.put("cause", d.cause());
        m.put("forgotten", forgotten);
        return m;
    }

    private Retention.Policy policy() {
        try {
            Retention.Policy p = new Retention.Policy(last, hourly, daily, weekly, monthly, yearly, List.of(),
                    within == null ? null : Retention.Within.parse(within));
            for (String t : keepTags) {
                p = p.withKeepTag(Retention.Policy.parseKeepTag(t));
            }
            return p;
        } catch (IllegalArgumentException e) {
            throw new UsageException(e.getMessage());
        }
    }

    /** The zone whose hours, days and weeks the policy counts: $TZ of the command's environment, else the JVM's. */
    private ZoneId zone() {
        String tz = main.env().get("TZ");
        if (tz != null && !tz.isBlank()) {
            try {
                return ZoneId.of(tz.startsWith(":") ? tz.substring(1) : tz);
            } catch (DateTimeException e) {
                main.err.println("ferry: TZ='" + tz + "' is not a time zone Java knows; using "
                        + ZoneId.systemDefault());
            }
        }
        return ZoneId.systemDefault();
    }

    /** Snapshots grouped by kind, volume and host, as the policy is applied. */
    private static List<List<Snapshots.Stored>> groups(List<Snapshots.Stored> all) {
        Map<List<Object>, List<Snapshots.Stored>> groups = new LinkedHashMap<>();
        for (Snapshots.Stored s : all) {
            Snapshot x = s.snapshot();
            groups.computeIfAbsent(java.util.Arrays.asList(x.kind(), x.volumeKey(), x.hostname()),
                    k -> new ArrayList<>()).add(s);
        }
        return new ArrayList<>(groups.values());
    }

    /** Prints (as text) or returns (for JSON) one group's decisions, newest first, each with its reasons. */
    private Map<String, Object> report(String name, Snapshot first, List<Retention.Decision<Snapshots.Stored>> ds) {
        Map<String, Object> g = new LinkedHashMap<>();
        g.put("kind", first.kind());
        g.put("volume_name", first.volumeName());
        g.put("source", first.volumeName() == null ? first.source() : null);
        g.put("hostname", first.hostname());
        List<Map<String, Object>> list = new ArrayList<>();
        if (!main.json()) {
            long kept = ds.stream().filter(Retention.Decision::keep).count();
            main.out.printf("%s: keep %d, %s %d%n", name, kept, dryRun ? "would forget" : "forget", ds.size() - kept);
        }
        for (Retention.Decision<Snapshots.Stored> d : ds) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("id", d.item().id());
            m.put("time", d.item().snapshot().time());
            m.put("keep", d.keep());
            m.put("reasons", d.reasons());
            list.add(m);
            if (!main.json()) {
                main.out.printf("  %-6s  %s  %s  %s%n", d.keep() ? "keep" : "forget", d.item().shortId(),
                        SnapshotsCommand.displayTime(d.item().snapshot().time()), d.why());
            }
        }
        g.put("snapshots", list);
        return g;
    }
}
