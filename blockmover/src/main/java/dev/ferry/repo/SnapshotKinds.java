package dev.ferry.repo;

import java.util.Collection;
import java.util.Map;
import java.util.Optional;
import java.util.ServiceLoader;
import java.util.Set;
import java.util.TreeMap;

/** The snapshot kinds this Ferry can read, by their {@code kind} field (see {@link SnapshotKind}). Immutable. */
public final class SnapshotKinds {
    private final Map<String, SnapshotKind> byKind;

    public SnapshotKinds(Collection<? extends SnapshotKind> kinds) {
        Map<String, SnapshotKind> m = new TreeMap<>();
        for (SnapshotKind k : kinds) {
            SnapshotKind other = m.putIfAbsent(k.kind(), k);
            if (other != null && other.getClass() != k.getClass()) {
                throw new IllegalStateException("two implementations of snapshot kind '" + k.kind() + "': "
                        + other.getClass().getName() + " and " + k.getClass().getName());
            }
        }
        this.byKind = Map.copyOf(m);
    }

    /** The kinds registered with {@link ServiceLoader} in the class path of this class. */
    public static SnapshotKinds load() {
        return load(SnapshotKind.class.getClassLoader());
    }

    public static SnapshotKinds load(ClassLoader loader) {
        return new SnapshotKinds(ServiceLoader.load(SnapshotKind.class, loader).stream()
                .map(ServiceLoader.Provider::get).toList());
    }

    public Optional<SnapshotKind> find(String kind) {
        return kind == null ? Optional.empty() : Optional.ofNullable(byKind.get(kind));
    }

    /** The kind of {@code s}, or an error saying that this Ferry cannot read it and that {@code consequence}. */
    public SnapshotKind require(Snapshots.Stored s, String consequence) throws RepositoryException {
        return find(s.snapshot().kind()).orElseThrow(() -> new RepositoryException("snapshot " + s.shortId()
                + " is of kind '" + s.snapshot().kind() + "', which this Ferry cannot read (it knows "
                + String.join(", ", names()) + "); " + consequence));
    }

    /** The kinds known, sorted. */
    public Set<String> names() {
        return new java.util.TreeSet<>(byKind.keySet());
    }
}
