package dev.ferry.repo;

import com.fasterxml.jackson.core.JacksonException;
import dev.ferry.crypto.Aead;
import dev.ferry.crypto.Hashes;
import dev.ferry.store.NoSuchObjectException;
import dev.ferry.store.StoreObject;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/** Stores, lists, finds and deletes snapshot objects ({@code snapshots/<sha256 of the stored bytes>}). */
public final class Snapshots {
    public static final String PREFIX = "snapshots/";
    static final byte[] AAD = "ferry:snapshot:v1".getBytes(StandardCharsets.US_ASCII);

    private final Repository repo;

    public Snapshots(Repository repo) {
        this.repo = repo;
    }

    /** A snapshot with its id (the hex name under {@code snapshots/}). */
    public record Stored(String id, Snapshot snapshot) {
        public String shortId() {
            return id.substring(0, 8);
        }
    }

    /** Seals and stores a snapshot; returns it with its id. */
    public Stored save(Snapshot s) throws IOException {
        byte[] json;
        try {
            json = Json.MAPPER.writeValueAsBytes(s);
        } catch (JacksonException e) {
            throw new IllegalStateException(e);
        }
        byte[] sealed = new Envelope(Repository.DEFAULT_ZSTD_LEVEL).seal(repo.masterKey().aead(), AAD, json, 0,
                json.length, true);
        String id = Hashes.sha256Hex(sealed);
        repo.store().put(PREFIX + id, sealed);
        return new Stored(id, s);
    }

    /** Reads one snapshot by its full id; checks the name against the content. */
    public Stored load(String id) throws IOException {
        String name = PREFIX + id;
        byte[] sealed;
        try {
            sealed = repo.store().get(name);
        } catch (NoSuchObjectException e) {
            throw new RepositoryException("no snapshot " + id + " in " + repo.store().location());
        }
        return open(id, sealed);
    }

    Stored open(String id, byte[] sealed) throws RepositoryException {
        String name = PREFIX + id;
        if (!Hashes.sha256Hex(sealed).equals(id)) {
            throw new RepositoryException.Damaged(name, "content does not match its name: damaged or truncated");
        }
        Snapshot s;
        try {
            byte[] json = Envelope.open(repo.masterKey().aead(), AAD, sealed, 0, sealed.length);
            s = Json.MAPPER.readValue(json, Snapshot.class);
        } catch (Aead.AuthenticationException e) {
            throw new RepositoryException.Damaged(name, "snapshot does not decrypt: " + e.getMessage());
        } catch (com.fasterxml.jackson.databind.exc.ValueInstantiationException e) {
            // valid JSON with values no writer makes (e.g. a block size of 0): say which, without parser noise
            throw new RepositoryException.Damaged(name, "snapshot holds " + (e.getCause() != null
                    ? e.getCause().getMessage() : e.getOriginalMessage()));
        } catch (IOException e) {
            throw new RepositoryException.Damaged(name, "snapshot is not valid JSON: " + e.getMessage());
        }
        if (s.version() > Snapshot.VERSION) {
            throw new RepositoryException.UnsupportedFormat(name + " has snapshot version " + s.version()
                    + ", newer than this Ferry understands");
        }
        return new Stored(id, s);
    }

    /** Ids of every snapshot object, without reading them. */
    public List<String> ids() throws IOException {
        List<String> out = new ArrayList<>();
        for (StoreObject o : repo.store().list(PREFIX)) {
            String id = o.name().substring(PREFIX.length());
            if (id.matches("[0-9a-f]{64}")) {
                out.add(id);
            }
        }
        return out;
    }

    /** Every snapshot, oldest first. A damaged snapshot fails the call. */
    public List<Stored> list() throws IOException {
        return list(null);
    }

    /**
     * Every snapshot, oldest first, read several at a time. With {@code errors != null}, damaged snapshots
     * are added to it and skipped; otherwise the first one fails the call.
     */
    public List<Stored> list(List<RepositoryException> errors) throws IOException {
        List<String> ids = ids();
        List<String> names = ids.stream().map(id -> PREFIX + id).toList();
        // a snapshot forgotten while we listed is simply gone
        List<Stored> out = new ArrayList<>(ParallelReads.openAll(repo.store(), names,
                (name, bytes) -> open(name.substring(PREFIX.length()), bytes), errors, true).values());
        out.sort(Comparator.comparing((Stored s) -> s.snapshot().time()).thenComparing(Stored::id));
        return out;
    }

    /**
     * The snapshot a command means by {@code ref}: an id prefix (at least 4 hex digits), or {@code latest}: the
     * newest snapshot that {@code filter} accepts, provided they all belong to one volume. Where snapshots of
     * several volumes match, {@code latest} is refused with a list of them, so that a restore never picks
     * another volume's data. A snapshot named by id must match the filter too.
     */
    public Stored resolve(String ref, SnapshotFilter filter) throws IOException {
        if ("latest".equals(ref)) {
            List<Stored> matching = list().stream().filter(s -> filter.test(s.snapshot())).toList();
            if (matching.isEmpty()) {
                throw new RepositoryException("'latest': there are no " + filter.describe() + " in "
                        + repo.store().location());
            }
            List<List<Stored>> volumes = byVolume(matching);
            if (volumes.size() > 1) {
                throw new RepositoryException.Ambiguous("'latest' is ambiguous: " + filter.describe() + " of "
                        + volumes.size() + " volumes match; say which with --volume (and --host for volumes "
                        + "known by their path) or give a snapshot id:" + candidates(volumes));
            }
            return matching.get(matching.size() - 1);
        }
        Stored s = byId(ref);
        Snapshot x = s.snapshot();
        if (filter.kind() != null && !filter.kind().equals(x.kind())) {
            throw new RepositoryException("snapshot " + s.shortId() + " is a " + x.kind() + " snapshot, not a "
                    + filter.kind() + " snapshot");
        }
        if (!filter.test(x)) {
            throw new RepositoryException("snapshot " + s.shortId() + " of " + x.describeVolume()
                    + (x.tags() == null || x.tags().isEmpty() ? "" : " tagged " + new java.util.TreeMap<>(x.tags()))
                    + " is not one of the " + filter.describe());
        }
        return s;
    }

    /**
     * The parent of a backup of {@code kind} that will record {@code volumeName} (or null), {@code source} and
     * {@code host}: {@code latest} is the newest snapshot of that same volume, or null when there is none; an id
     * must name a snapshot of that volume and kind, or the backup is refused (an incremental on top of another
     * volume's data would store a wrong image).
     */
    public Stored parent(String ref, String kind, String volumeName, String source, String host) throws IOException {
        if ("latest".equals(ref)) {
            List<Stored> all = list();
            for (int i = all.size() - 1; i >= 0; i--) {
                Snapshot x = all.get(i).snapshot();
                if (kind.equals(x.kind()) && x.sameVolume(volumeName, source, host)) {
                    return all.get(i);
                }
            }
            return null;
        }
        Stored p = resolve(ref, SnapshotFilter.ofKind(kind));
        checkSameVolume(p, volumeName, source, host);
        return p;
    }

    /** Refuses a parent that is not of the volume being backed up. */
    public static void checkSameVolume(Stored parent, String volumeName, String source, String host)
            throws RepositoryException {
        Snapshot x = parent.snapshot();
        if (!x.sameVolume(volumeName, source, host)) {
            throw new RepositoryException("snapshot " + parent.shortId() + " is of " + x.describeVolume()
                    + ", but this backup is of " + Snapshot.describeVolume(volumeName, source, host) + ": a parent must be a snapshot of the same volume"
                    + (volumeName == null ? " (give the volume a name with --volume to keep it when its path "
                    + "or host changes)" : ""));
        }
    }

    /** Snapshots grouped by volume, each group oldest first, groups in order of their newest snapshot. */
    public static List<List<Stored>> byVolume(List<Stored> snapshots) {
        java.util.Map<List<String>, List<Stored>> groups = new java.util.LinkedHashMap<>();
        for (Stored s : snapshots) {
            groups.computeIfAbsent(s.snapshot().volumeKey(), k -> new ArrayList<>()).add(s);
        }
        List<List<Stored>> out = new ArrayList<>(groups.values());
        out.sort(Comparator.comparing((List<Stored> g) -> g.get(g.size() - 1).snapshot().time()));
        return out;
    }

    private static String candidates(List<List<Stored>> volumes) {
        StringBuilder b = new StringBuilder();
        for (List<Stored> g : volumes) {
            Stored newest = g.get(g.size() - 1);
            b.append("\n  ").append(newest.snapshot().describeVolume()).append(": ").append(g.size())
                    .append(" snapshot(s), newest ").append(newest.shortId()).append(" at ")
                    .append(newest.snapshot().time());
        }
        return b.toString();
    }

    /** A snapshot by a unique id prefix of at least 4 hex digits. */
    private Stored byId(String ref) throws IOException {
        if (!ref.matches("[0-9a-f]{4,64}")) {
            throw new IllegalArgumentException("a snapshot id is 4 to 64 lower-case hex digits or 'latest': '"
                    + ref + "'");
        }
        List<String> matching = ids().stream().filter(id -> id.startsWith(ref)).toList();
        if (matching.isEmpty()) {
            throw new RepositoryException("no snapshot " + ref + " in " + repo.store().location());
        }
        if (matching.size() > 1) {
            throw new RepositoryException("snapshot id " + ref + " is ambiguous: " + matching.size()
                    + " snapshots start with it; give more digits");
        }
        return load(matching.get(0));
    }

    /** Deletes a snapshot object (its data stays until prune). */
    public void delete(String id) throws IOException {
        repo.store().delete(PREFIX + id);
    }
}
