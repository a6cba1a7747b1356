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
import java.util.Set;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Stores, lists, finds and deletes snapshot objects ({@code snapshots/<sha256 of the stored bytes>}).
 *
 * <p>A snapshot object that cannot be read (its bytes do not match its name, it does not decrypt, or it is not
 * a snapshot's JSON) is {@link Unreadable damaged}. {@link #readAll} returns the readable snapshots and names the
 * damaged ones, so that one damaged object does not hide the others: {@code latest} and {@code --parent latest}
 * are chosen among the readable ones (with a warning naming the damaged ones), forget policies skip them, a
 * damaged snapshot can be forgotten by its id, and {@code ferry repair snapshots} removes them. A store that
 * fails to answer (an I/O error talking to S3) is not damage: it fails the call, whatever the caller.
 */
public final class Snapshots {
    private static final Logger log = LoggerFactory.getLogger(Snapshots.class);
    public static final String PREFIX = "snapshots/";
    static final byte[] AAD = "ferry:snapshot:v1".getBytes(StandardCharsets.US_ASCII);

    private final Repository repo;
    private final Consumer<String> warnings;

    /** Snapshots of {@code repo}; warnings (damaged snapshots left out of {@code latest}) go to the log. */
    public Snapshots(Repository repo) {
        this(repo, w -> log.warn("{}", w));
    }

    /** Snapshots of {@code repo}; warnings (damaged snapshots left out of {@code latest}) go to {@code warnings}. */
    public Snapshots(Repository repo, Consumer<String> warnings) {
        this.repo = repo;
        this.warnings = java.util.Objects.requireNonNull(warnings, "warnings");
    }

    /**
     * A snapshot object that cannot be read: its bytes do not match its name, it does not decrypt, or its
     * content is not a snapshot. Its data is unknown.
     *
     * @param id     the object's name under {@code snapshots/}
     * @param cause  what is wrong with it, in words
     * @param intact whether its content matches its name: it is stored as it was written, and was damaged
     *               before, or sealed with another key
     */
    public record Unreadable(String id, String cause, boolean intact) {
        public String objectName() {
            return PREFIX + id;
        }

        public String shortId() {
            return id.substring(0, 8);
        }

        /** {@code snapshot 1a2b3c4d (snapshots/1a2b...) cannot be read: CAUSE}. */
        public String describe() {
            return "snapshot " + shortId() + " (" + objectName() + ") cannot be read: " + cause;
        }

        static Unreadable of(String id, byte[] sealed, RepositoryException.Damaged d) {
            String m = d.getMessage();
            String prefix = d.objectName() + ": ";
            return new Unreadable(id, m != null && m.startsWith(prefix) ? m.substring(prefix.length()) : m,
                    Hashes.sha256Hex(sealed).equals(id));
        }
    }

    /** One snapshot object as read: either {@code stored} or {@code unreadable} is null. */
    public record Read(Stored stored, Unreadable unreadable) {
        public String id() {
            return stored != null ? stored.id() : unreadable.id();
        }
    }

    /**
     * Every snapshot object: the readable snapshots, oldest first, and the damaged ones, by id.
     *
     * @param snapshots the snapshots that could be read
     * @param damaged   the snapshot objects that cannot be read
     */
    public record Listing(List<Stored> snapshots, List<Unreadable> damaged) {
        public Listing {
            snapshots = List.copyOf(snapshots);
            damaged = List.copyOf(damaged);
        }

        /**
         * The readable snapshots, provided no snapshot is damaged but those in {@code except}: for a command that
         * must know every snapshot's data (prune), a damaged one is a refusal that names it and says what to do.
         */
        public List<Stored> requireAllReadable(String operation, Set<String> except) throws RepositoryException {
            List<Unreadable> left = damaged.stream().filter(d -> !except.contains(d.id())).toList();
            if (left.isEmpty()) {
                return snapshots;
            }
            StringBuilder b = new StringBuilder(operation + " stops: " + left.size() + " snapshot(s) cannot be read, "
                    + "so the data they use is unknown and would be taken for unused:");
            for (Unreadable d : left) {
                b.append("\n  ").append(d.describe());
            }
            b.append("\nremove them with 'ferry repair snapshots' (or 'ferry forget ID'), then run ")
                    .append(operation).append(" again");
            throw new RepositoryException(b.toString());
        }
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

    /**
     * Reads one snapshot by its full id: the snapshot, or, when the object is damaged, what is wrong with it.
     * A snapshot that is missing, of a newer format, or that the store fails to return fails the call.
     */
    public Read read(String id) throws IOException {
        Read r = readIfPresent(id);
        if (r == null) {
            throw new RepositoryException("no snapshot " + id + " in " + repo.store().location());
        }
        return r;
    }

    /**
     * Reads snapshot {@code id} (as {@code ferry repair snapshots} does again before removing it): null when it is
     * gone, else the snapshot or what is wrong with it. A store that fails to return it fails the call.
     */
    public Read readIfPresent(String id) throws IOException {
        byte[] sealed;
        try {
            sealed = repo.store().get(PREFIX + id);
        } catch (NoSuchObjectException e) {
            return null;
        }
        return openRead(id, sealed);
    }

    /** The snapshot in {@code sealed}, or what is wrong with it; other failures (a newer format) are thrown. */
    private Read openRead(String id, byte[] sealed) throws RepositoryException {
        try {
            return new Read(open(id, sealed), null);
        } catch (RepositoryException.Damaged d) {
            return new Read(null, Unreadable.of(id, sealed, d));
        }
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


    /**
     * Every snapshot object, read several at a time: the readable snapshots, oldest first, and the damaged ones
     * (that do not match their name, decrypt or parse). A snapshot of a newer format, or a store that fails to
     * return an object, fails the call: neither says anything about the object's content.
     */
    public Listing readAll() throws IOException {
        List<String> names = ids().stream().map(id -> PREFIX + id).toList();
        // only damage is caught here: any other failure of the opener or the store fails openAll
        java.util.Map<String, Read> read = ParallelReads.openAll(repo.store(), names,
                (name, bytes) -> openRead(name.substring(PREFIX.length()), bytes),
                null, true); // a snapshot forgotten while we listed is simply gone
        List<Stored> ok = new ArrayList<>();
        List<Unreadable> damaged = new ArrayList<>();
        for (Read r : read.values()) {
            if (r.stored() != null) {
                ok.add(r.stored());
            } else {
                damaged.add(r.unreadable());
            }
        }
        ok.sort(OLDEST_FIRST);
        damaged.sort(Comparator.comparing(Unreadable::id));
        return new Listing(ok, damaged);
    }

    /** The readable snapshots, with a warning for each damaged one, which {@code what} does not consider. */
    private List<Stored> readable(String what) throws IOException {
        Listing l = readAll();
        for (Unreadable d : l.damaged()) {
            warnings.accept(d.describe() + "; " + what + " is chosen among the others ('ferry repair snapshots' "
                    + "removes it)");
        }
        return l.snapshots();
    }

    private static final Comparator<Stored> OLDEST_FIRST = Comparator.comparing((Stored s) -> s.snapshot().time(),
            Comparator.nullsFirst(Comparator.naturalOrder())).thenComparing(Stored::id);

    /**
     * Every snapshot, oldest first, read several at a time. A damaged snapshot fails the call (see
     * {@link #readAll}, which names damaged snapshots instead).
     */
    public List<Stored> list() throws IOException {
        List<String> names = ids().stream().map(id -> PREFIX + id).toList();
        // a snapshot forgotten while we listed is simply gone
        List<Stored> out = new ArrayList<>(ParallelReads.openAll(repo.store(), names,
                (name, bytes) -> open(name.substring(PREFIX.length()), bytes), null, true).values());
        out.sort(OLDEST_FIRST);
        return out;
    }

    /**
     * The snapshot a command means by {@code ref}: an id prefix (at least 4 hex digits), or {@code latest}: the
     * newest snapshot that {@code filter} accepts, provided they all belong to one volume. Where snapshots of
     * several volumes match, {@code latest} is refused with a list of them, so that a restore never picks
     * another volume's data. A snapshot named by id must match the filter too. Damaged snapshot objects are left
     * out of {@code latest}, each with a warning.
     */
    public Stored resolve(String ref, SnapshotFilter filter) throws IOException {
        if ("latest".equals(ref)) {
            List<Stored> matching = readable("'latest'").stream().filter(s -> filter.test(s.snapshot())).toList();
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
        return checkFilter(byId(ref), filter);
    }

    /**
     * What {@code ref} names, as {@link #resolve} finds it, except that an id (prefix) of a damaged snapshot
     * object yields that object as {@link Unreadable}: what forget needs to remove it. Whether a damaged snapshot
     * is one of those {@code filter} accepts cannot be known, so with a filter that narrows, it is refused.
     */
    public Read resolveRead(String ref, SnapshotFilter filter) throws IOException {
        if ("latest".equals(ref)) {
            return new Read(resolve(ref, filter), null);
        }
        Read r = read(fullId(ref));
        if (r.stored() != null) {
            return new Read(checkFilter(r.stored(), filter), null);
        }
        if (filter.kind() != null || filter.narrows()) {
            throw new RepositoryException(r.unreadable().describe() + "; whether it is one of the "
                    + filter.describe() + " is unknown: name it without a filter");
        }
        return r;
    }

    /** {@code s}, if {@code filter} accepts it; otherwise a refusal that says why. */
    private static Stored checkFilter(Stored s, SnapshotFilter filter) throws RepositoryException {
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
     * volume's data would store a wrong image). Damaged snapshot objects are left out of {@code latest}, each with
     * a warning.
     */
    public Stored parent(String ref, String kind, String volumeName, String source, String host) throws IOException {
        if ("latest".equals(ref)) {
            List<Stored> all = readable("the parent ('latest')");
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
        return load(fullId(ref));
    }

    /**
     * The full id of the one snapshot object whose id starts with {@code ref} (at least 4 hex digits), found by
     * listing: the object is not read, so a damaged snapshot has an id too.
     */
    public String fullId(String ref) throws IOException {
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
        return matching.get(0);
    }

    /** Deletes a snapshot object (its data stays until prune). */
    public void delete(String id) throws IOException {
        repo.store().delete(PREFIX + id);
    }
}
