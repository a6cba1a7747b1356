package dev.ferry.repo;

import java.io.IOException;
import java.util.Set;

/**
 * Files snapshots: a root tree ({@link Tree}) whose nodes name subtrees and the content chunks of files. Trees
 * already in the walk's {@code visited} set are skipped with everything under them (snapshots of one source share
 * most trees).
 */
public final class FilesKind implements SnapshotKind {
    @Override
    public String kind() {
        return Snapshot.KIND_FILES;
    }

    @Override
    public void forEachChunk(Snapshots.Stored stored, Reader reader, Set<ChunkId> visited,
                             Repository.IoConsumer<ChunkId> action) throws IOException {
        Snapshot snapshot = stored.snapshot();
        String root = snapshot.tree();
        if (root == null || !root.matches("[0-9a-f]{64}")) {
            throw new RepositoryException("files snapshot without a valid root tree id");
        }
        Tree.forEachChunk(reader::load, root, visited, action);
    }
}
