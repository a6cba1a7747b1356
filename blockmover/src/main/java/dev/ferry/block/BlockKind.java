package dev.ferry.block;

import dev.ferry.repo.ChunkId;
import dev.ferry.repo.Repository;
import dev.ferry.repo.RepositoryException;
import dev.ferry.repo.Snapshot;
import dev.ferry.repo.SnapshotKind;
import dev.ferry.repo.Snapshots;
import dev.ferry.store.NoSuchObjectException;
import java.io.IOException;
import java.util.Set;
import java.util.function.Consumer;
import java.util.function.Predicate;

/**
 * Block snapshots: a volume whose manifest pages ({@link ManifestPage}) name one chunk (or none, for zeros) per
 * block. The pages are chunks of the snapshot too.
 */
public final class BlockKind implements SnapshotKind {
    @Override
    public String kind() {
        return Snapshot.KIND_BLOCK;
    }

    @Override
    public void forEachChunk(Snapshots.Stored stored, Reader reader, Set<ChunkId> visited,
                             Repository.IoConsumer<ChunkId> action) throws IOException {
        Snapshot snapshot = stored.snapshot();
        Snapshot.Volume volume = snapshot.volume();
        if (volume == null) {
            throw new RepositoryException("block snapshot without a volume");
        }
        for (int p = 0; p < volume.pages().size(); p++) {
            String pageId = volume.pages().get(p);
            if (pageId == null) {
                continue;
            }
            ChunkId id = ChunkId.parse(pageId);
            action.accept(id);
            ManifestPage page = ManifestPage.decode(reader.load(id));
            if (page.count() != volume.blocksInPage(p)) {
                throw new RepositoryException("manifest page " + p + " has " + page.count() + " entries, not "
                        + volume.blocksInPage(p));
            }
            for (int i = 0; i < page.count(); i++) {
                ChunkId c = page.get(i);
                if (c != null) {
                    action.accept(c);
                }
            }
        }
    }

    /** Checks that the manifest is consistent and that every chunk it uses (pages and blocks) is indexed. */
    @Override
    public void check(Snapshots.Stored stored, Reader reader, Set<ChunkId> visited,
                      Predicate<ChunkId> indexed, Consumer<String> errors) throws IOException {
        String name = Snapshots.PREFIX + stored.id();
        try {
            BlockBackup.checkVolume(stored);
        } catch (RepositoryException e) {
            errors.accept(e.getMessage());
            return;
        }
        Snapshot.Volume v = stored.snapshot().volume();
        int missing = 0;
        for (int p = 0; p < v.pages().size(); p++) {
            if (v.pages().get(p) == null) {
                continue;
            }
            ChunkId pageId = ChunkId.parse(v.pages().get(p));
            if (!indexed.test(pageId)) {
                errors.accept(name + ": manifest page " + p + " (" + pageId.shortHex() + ") is in no index file");
                continue;
            }
            ManifestPage page;
            try {
                page = ManifestPage.decode(reader.load(pageId));
            } catch (RepositoryException | IllegalArgumentException e) {
                errors.accept(name + ": manifest page " + p + " cannot be read: " + e.getMessage());
                continue;
            } catch (NoSuchObjectException e) {
                continue; // the missing pack is reported with the packs
            }
            if (page.count() != v.blocksInPage(p)) {
                errors.accept(name + ": manifest page " + p + " has " + page.count() + " entries, not "
                        + v.blocksInPage(p));
                continue;
            }
            for (int i = 0; i < page.count(); i++) {
                ChunkId c = page.get(i);
                if (c != null && !indexed.test(c) && missing++ < 10) {
                    errors.accept(name + ": block " + ((long) p * v.pageBlocks() + i) + " uses chunk " + c.shortHex()
                            + ", which is in no index file");
                }
            }
        }
        if (missing > 10) {
            errors.accept(name + ": " + (missing - 10) + " more blocks use chunks that are in no index file");
        }
    }
}
