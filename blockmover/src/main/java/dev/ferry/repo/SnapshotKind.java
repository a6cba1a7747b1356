package dev.ferry.repo;

import java.io.IOException;
import java.util.Set;
import java.util.function.Consumer;
import java.util.function.Predicate;

/**
 * One kind of snapshot (block, files, ...), as the repository core sees it: which chunks a snapshot of this kind
 * references, and what verify checks in its structure. The core (prune, verify) knows no snapshot format; each
 * kind is found through {@link SnapshotKinds} (a {@link java.util.ServiceLoader} service, listed in
 * {@code META-INF/services/dev.ferry.repo.SnapshotKind}). A snapshot whose kind no implementation claims is
 * never pruned around: prune refuses, and verify reports it.
 */
public interface SnapshotKind {
    /** The value of the snapshot's {@code kind} field this implementation reads ("block", "files"). */
    String kind();

    /**
     * Reports every chunk the snapshot references to {@code action}, its own metadata chunks (manifest pages,
     * trees) included, reading those through {@code reader}. {@code visited} is shared by the walks of one pass
     * over several snapshots: a kind whose snapshots share structure adds the metadata chunks it walked and skips
     * those already in it, with everything under them. Fails (never skips) when a chunk it must read cannot be.
     */
    void forEachChunk(Snapshots.Stored stored, Reader reader, Set<ChunkId> visited, Repository.IoConsumer<ChunkId> action)
            throws IOException;

    /**
     * Verify's check of a snapshot: its structure is consistent and every chunk it references
     * is one that {@code indexed} accepts. Problems go to {@code errors}, one message each (a few per snapshot at
     * most); a pack that is missing is reported by verify with the packs, not here.
     */
    default void check(Snapshots.Stored stored, Reader reader, Set<ChunkId> visited,
                       Predicate<ChunkId> indexed, Consumer<String> errors) throws IOException {
        String name = Snapshots.PREFIX + stored.id();
        int[] missing = {0};
        try {
            forEachChunk(stored, reader, visited, id -> {
                if (!indexed.test(id) && missing[0]++ < 10) {
                    errors.accept(name + ": chunk " + id.shortHex() + " is used but in no index file");
                }
            });
        } catch (dev.ferry.store.NoSuchObjectException e) {
            errors.accept(name + ": a pack it reads is missing: " + e.getMessage());
        } catch (RepositoryException | IllegalArgumentException e) {
            errors.accept(name + ": cannot be read: " + e.getMessage());
        }
        if (missing[0] > 10) {
            errors.accept(name + ": " + (missing[0] - 10) + " more chunks are used but in no index file");
        }
    }

    /** Reads the plaintext of a chunk (authenticated and checked against its id). */
    @FunctionalInterface
    interface Reader {
        byte[] load(ChunkId id) throws IOException;
    }
}
