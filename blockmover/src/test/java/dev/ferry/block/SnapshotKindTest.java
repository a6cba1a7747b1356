package dev.ferry.block;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.progress.ProgressListener;
import dev.ferry.repo.ChunkId;
import dev.ferry.repo.FilesKind;
import dev.ferry.repo.IndexFile;
import dev.ferry.repo.Pruner;
import dev.ferry.repo.Repository;
import dev.ferry.repo.RepositoryException;
import dev.ferry.repo.Snapshot;
import dev.ferry.repo.SnapshotKinds;
import dev.ferry.repo.Snapshots;
import dev.ferry.repo.Verifier;
import dev.ferry.store.LocalStore;
import dev.ferry.store.StoreObject;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Snapshot kinds: the core reads snapshots only through them, and refuses to prune beside a kind it lacks. */
class SnapshotKindTest {
    @TempDir
    Path dir;
    LocalStore store;
    Repository repo;
    Snapshots.Stored block;

    @BeforeEach
    void setUp() throws Exception {
        store = new LocalStore(dir.resolve("repo"));
        repo = Fixtures.init(store);
        Path volume = dir.resolve("vol");
        Fixtures.writeVolume(volume, 3L << 20, 256 << 10, 4);
        block = Fixtures.backup(repo, volume, 64 << 10, null, null).snapshot();
    }

    @Test
    void theBlockAndFilesKindsAreFoundThroughTheServiceLoader() {
        SnapshotKinds kinds = SnapshotKinds.load();
        assertEquals(Set.of(Snapshot.KIND_BLOCK, Snapshot.KIND_FILES), kinds.names());
        assertInstanceOf(BlockKind.class, kinds.find(Snapshot.KIND_BLOCK).orElseThrow());
        assertInstanceOf(FilesKind.class, kinds.find(Snapshot.KIND_FILES).orElseThrow());
        assertTrue(kinds.find("zfs-stream").isEmpty());
    }

    /** The core (dev.ferry.repo) must not know any snapshot format: no class of it names a block class. */
    @Test
    void noClassOfTheCoreReferencesTheBlockPackage() throws Exception {
        Path classes = Path.of(Repository.class.getProtectionDomain().getCodeSource().getLocation().toURI())
                .resolve("dev/ferry/repo");
        List<String> offenders = new ArrayList<>();
        int scanned = 0;
        try (Stream<Path> files = Files.list(classes)) {
            for (Path c : files.filter(f -> f.toString().endsWith(".class")).toList()) {
                scanned++;
                // class names sit in the constant pool in internal form (dev/ferry/block/...), as UTF-8
                String pool = new String(Files.readAllBytes(c), StandardCharsets.ISO_8859_1);
                for (String other : List.of("dev/ferry/block/", "dev/ferry/files/", "dev/ferry/zfs/")) {
                    if (pool.contains(other)) {
                        offenders.add(c.getFileName() + " -> " + other);
                    }
                }
            }
        }
        assertTrue(scanned > 20, "scanned only " + scanned + " classes in " + classes);
        assertEquals(List.of(), offenders);
    }

    @Test
    void theBlockKindReportsEveryChunkOfTheSnapshotPagesIncluded() throws Exception {
        Set<ChunkId> reported = new HashSet<>();
        new BlockKind().forEachChunk(block, repo::load, new HashSet<>(), reported::add);
        // the repository holds this one snapshot: every indexed chunk is one of its blocks or pages
        Set<ChunkId> indexed = new HashSet<>();
        for (IndexFile f : IndexFile.current(repo.readIndexFiles(null)).values()) {
            f.packs().values().forEach(es -> es.forEach(e -> indexed.add(e.id())));
        }
        assertEquals(indexed, reported);
        for (String page : block.snapshot().volume().pages()) {
            if (page != null) {
                assertTrue(reported.contains(ChunkId.parse(page)), "page " + page + " not reported");
            }
        }
    }

    @Test
    void anUnknownKindMakesPruneRefuseAndVerifyReportIt() throws Exception {
        Snapshot foreign = new Snapshot(Snapshot.VERSION, "zfs-stream", "2026-01-01T00:00:00Z", "host", "pool/a",
                Map.of(), null, null, Map.of(), null, null, "pool/a");
        new Snapshots(repo).save(foreign);
        // a forgotten snapshot's data would go if prune ran: it must not
        Path other = dir.resolve("other");
        Fixtures.writeVolume(other, 1L << 20, 128 << 10, 9);
        Snapshots.Stored gone = Fixtures.backup(repo, other, 64 << 10, null, null).snapshot();
        new Snapshots(repo).delete(gone.id());
        Set<String> before = names("data/");
        Set<String> indexBefore = names(IndexFile.PREFIX);
        RepositoryException e = assertThrows(RepositoryException.class, () -> new Pruner(Fixtures.open(store),
                Clock.systemUTC(), Pruner.DEFAULT_REPACK_SHARE).run("test-host", false));
        assertTrue(e.getMessage().contains("'zfs-stream'") && e.getMessage().contains("prune stops"),
                e.getMessage());
        assertEquals(before, names("data/"));
        assertEquals(indexBefore, names(IndexFile.PREFIX));

        Verifier.Report r = new Verifier(Fixtures.open(store), m -> { }).verify(false, 2);
        assertFalse(r.ok());
        assertTrue(r.errors().stream().anyMatch(x -> x.contains("unknown kind 'zfs-stream'")), r.errors().toString());
    }

    @Test
    void aRegistryWithoutTheBlockKindTreatsBlockSnapshotsAsUnknown() throws Exception {
        SnapshotKinds filesOnly = new SnapshotKinds(List.of(new FilesKind()));
        RepositoryException e = assertThrows(RepositoryException.class, () -> new Pruner(Fixtures.open(store),
                Clock.systemUTC(), Pruner.DEFAULT_REPACK_SHARE, ProgressListener.NONE, filesOnly)
                .run("test-host", false));
        assertTrue(e.getMessage().contains("'block'") && e.getMessage().contains("it knows files"), e.getMessage());
        Verifier.Report r = new Verifier(Fixtures.open(store), m -> { }, ProgressListener.NONE, filesOnly)
                .verify(false, 2);
        assertTrue(r.errors().stream().anyMatch(x -> x.contains("unknown kind 'block'")), r.errors().toString());
        Verifier.Report ok = new Verifier(Fixtures.open(store), m -> { }).verify(true, 2);
        assertTrue(ok.ok(), ok.errors().toString());
    }

    private Set<String> names(String prefix) throws Exception {
        Set<String> out = new HashSet<>();
        for (StoreObject o : store.list(prefix)) {
            out.add(o.name());
        }
        return out;
    }
}
