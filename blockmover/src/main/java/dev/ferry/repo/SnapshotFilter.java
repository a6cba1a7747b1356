package dev.ferry.repo;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Which snapshots a command means: of a kind, of a volume, made on a host, carrying tags. A null field (or no
 * tags) matches every snapshot.
 *
 * @param kind   {@link Snapshot#KIND_BLOCK}, {@link Snapshot#KIND_FILES}, or null
 * @param volume a volume name given at backup; for snapshots without a name, their source
 * @param host   the host name recorded in the snapshot
 * @param tags   tags the snapshot must all carry, with these values
 * @param engine engine facts the snapshot must all record, with these values (e.g. {@code engine=zfs})
 */
public record SnapshotFilter(String kind, String volume, String host, Map<String, String> tags,
                             Map<String, String> engine) {
    /** Every snapshot. */
    public static final SnapshotFilter ALL = new SnapshotFilter(null, null, null, Map.of(), Map.of());

    public SnapshotFilter {
        tags = tags == null ? Map.of() : Map.copyOf(tags);
        engine = engine == null ? Map.of() : Map.copyOf(engine);
    }

    /** A filter without engine facts. */
    public SnapshotFilter(String kind, String volume, String host, Map<String, String> tags) {
        this(kind, volume, host, tags, Map.of());
    }

    /** Snapshots of one kind. */
    public static SnapshotFilter ofKind(String kind) {
        return new SnapshotFilter(kind, null, null, Map.of());
    }

    /** This filter, for snapshots of {@code kind} only. */
    public SnapshotFilter withKind(String newKind) {
        return new SnapshotFilter(newKind, volume, host, tags, engine);
    }

    /** This filter, for snapshots that also record the engine fact {@code key=value}. */
    public SnapshotFilter withEngineFact(String key, String value) {
        Map<String, String> e = new java.util.TreeMap<>(engine);
        e.put(key, value);
        return new SnapshotFilter(kind, volume, host, tags, e);
    }

    public boolean test(Snapshot s) {
        if (kind != null && !kind.equals(s.kind())) {
            return false;
        }
        if (volume != null && !(s.volumeName() != null ? volume.equals(s.volumeName()) : volume.equals(s.source()))) {
            return false;
        }
        if (host != null && !host.equals(s.hostname())) {
            return false;
        }
        for (Map.Entry<String, String> t : tags.entrySet()) {
            if (s.tags() == null || !Objects.equals(s.tags().get(t.getKey()), t.getValue())) {
                return false;
            }
        }
        for (Map.Entry<String, String> e : engine.entrySet()) {
            if (s.engine() == null || !Objects.equals(s.engine().get(e.getKey()), e.getValue())) {
                return false;
            }
        }
        return true;
    }

    /** Whether this filter narrows anything down besides the kind. */
    public boolean narrows() {
        return volume != null || host != null || !tags.isEmpty() || !engine.isEmpty();
    }

    /** The filter in words, for messages: {@code block snapshots of volume 'pv1' on host n1 with tags {a=b}}. */
    public String describe() {
        List<String> parts = new ArrayList<>();
        parts.add(kind == null ? "snapshots" : kind + " snapshots");
        if (volume != null) {
            parts.add("of volume '" + volume + "'");
        }
        if (host != null) {
            parts.add("from host " + host);
        }
        if (!tags.isEmpty()) {
            parts.add("tagged " + new java.util.TreeMap<>(tags));
        }
        if (!engine.isEmpty()) {
            parts.add("recording " + new java.util.TreeMap<>(engine));
        }
        return String.join(" ", parts);
    }
}
