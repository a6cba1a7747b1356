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
import java.util.function.Predicate;

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
     * Finds a snapshot by an id prefix (at least 4 hex digits) or {@code latest} (the newest one accepted by
     * {@code filter}). Refuses an ambiguous prefix.
     */
    public Stored find(String ref, Predicate<Snapshot> filter) throws IOException {
        if ("latest".equals(ref)) {
            Stored newest = newest(filter);
            if (newest == null) {
                throw new RepositoryException("no matching snapshot in " + repo.store().location() + " for 'latest'");
            }
            return newest;
        }
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
        Stored s = load(matching.get(0));
        if (!filter.test(s.snapshot())) {
            throw new RepositoryException("snapshot " + s.shortId() + " is a " + s.snapshot().kind()
                    + " snapshot, not one this command can use");
        }
        return s;
    }

    /** The newest snapshot accepted by {@code filter}, or null when there is none. */
    public Stored newest(Predicate<Snapshot> filter) throws IOException {
        List<Stored> all = list();
        for (int i = all.size() - 1; i >= 0; i--) {
            if (filter.test(all.get(i).snapshot())) {
                return all.get(i);
            }
        }
        return null;
    }

    /** Deletes a snapshot object (its data stays until prune). */
    public void delete(String id) throws IOException {
        repo.store().delete(PREFIX + id);
    }
}
