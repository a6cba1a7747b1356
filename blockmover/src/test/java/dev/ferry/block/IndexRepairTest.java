package dev.ferry.block;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.progress.ProgressListener;
import dev.ferry.repo.IndexFile;
import dev.ferry.repo.IndexRepair;
import dev.ferry.repo.Pruner;
import dev.ferry.repo.Repository;
import dev.ferry.repo.RepositoryException;
import dev.ferry.repo.RepositoryLock;
import dev.ferry.repo.Snapshots;
import dev.ferry.repo.Verifier;
import dev.ferry.store.LocalStore;
import dev.ferry.store.StoreObject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeMap;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** One damaged index file: what still works, what refuses, and how {@link IndexRepair} rebuilds the index. */
class IndexRepairTest {
    static final int BS = 64 << 10;

    @TempDir
    Path dir;
    LocalStore store;
    Repository repo;
    Path a;
    Path b;
    BlockBackup.Result snapA;
    BlockBackup.Result snapB;
    /** The index file naming b's chunks, the one that gets damaged. */
    String damaged;

    @BeforeEach
    void setUp() throws Exception {
        store = new LocalStore(dir.resolve("repo"));
        repo = Fixtures.init(store);
        a = dir.resolve("a.img");
        b = dir.resolve("b.img");
        Fixtures.writeVolume(a, 2L << 20, 256 << 10, 21);
        Fixtures.writeVolume(b, 2L << 20, 256 << 10, 22);
        snapA = Fixtures.backup(repo, a, BS, null, null);
        Set<String> before = names("index/");
        snapB = Fixtures.backup(repo, b, BS, null, null);
        Set<String> after = names("index/");
        after.removeAll(before);
        assertEquals(1, after.size(), after.toString());
        damaged = after.iterator().next();
    }

    private Set<String> names(String prefix) throws IOException {
        Set<String> out = new HashSet<>();
        for (StoreObject o : store.list(prefix)) {
            out.add(o.name());
        }
        return out;
    }

    private TreeMap<String, Long> packs() throws IOException {
        TreeMap<String, Long> out = new TreeMap<>();
        for (StoreObject o : store.list("data/")) {
            out.put(o.name(), o.size());
        }
        return out;
    }

    private void flipAByte(String name) throws IOException {
        Path p = store.root().resolve(name);
        byte[] bytes = Files.readAllBytes(p);
        bytes[bytes.length / 2] ^= 0x40;
        Files.write(p, bytes);
    }

    private void restoresIntact(Repository r, BlockBackup.Result snap, Path original) throws IOException {
        Path out = dir.resolve("out-" + original.getFileName());
        Files.deleteIfExists(out);
        Fixtures.restore(r, new Snapshots(r).load(snap.snapshot().id()), out, false, ProgressListener.NONE);
        assertTrue(Fixtures.sameContent(original, out), "restore of " + original + " differs");
    }

    private static Pruner.Result prune(Repository r) throws IOException {
        return new Pruner(r, Clock.systemUTC(), Pruner.DEFAULT_REPACK_SHARE).run("test-host", false);
    }

    @Test
    void aFlippedByteInAnIndexFileIsReportedRefusedByPruneAndRepairedFromPackHeaders() throws Exception {
        flipAByte(damaged);
        TreeMap<String, Long> packsBefore = packs();

        // what the intact index names still restores; what only the damaged file named fails, saying why
        Repository opened = Fixtures.open(store);
        assertEquals(1, opened.indexDamage().size());
        restoresIntact(opened, snapA, a);
        RepositoryException missing = assertThrows(RepositoryException.class,
                () -> restoresIntact(opened, snapB, b));
        assertTrue(missing.getMessage().contains("chunk ") && missing.getMessage().contains(damaged)
                && missing.getMessage().contains("ferry repair index"), missing.getMessage());

        // verify fails, names the file, and does not call the packs b needs leftovers for prune to remove
        Verifier.Report v = new Verifier(opened, m -> { }).verify(false, 2);
        assertFalse(v.ok());
        assertTrue(v.errors().stream().anyMatch(e -> e.startsWith(damaged) && e.contains("repair index")),
                v.errors().toString());
        assertTrue(v.errors().stream().anyMatch(e -> e.contains("pack is in no index, but snapshots use its chunks")
                && e.contains("ferry repair index")), v.errors().toString());
        assertTrue(v.warnings().stream().noneMatch(w -> w.contains("prune will remove it")), v.warnings().toString());

        // prune refuses, and neither a dry run nor a real one changes anything
        for (boolean dryRun : new boolean[] {true, false}) {
            RepositoryException refused = assertThrows(RepositoryException.class,
                    () -> new Pruner(opened, Clock.systemUTC(), Pruner.DEFAULT_REPACK_SHARE).run("h", dryRun));
            assertTrue(refused.getMessage().contains(damaged) && refused.getMessage().contains("ferry repair index"),
                    refused.getMessage());
            assertTrue(refused.getMessage().startsWith("prune refuses to run"), refused.getMessage());
        }
        assertEquals(packsBefore, packs());
        assertTrue(store.exists(damaged));

        // repair: the packs b's backup wrote are indexed again from their headers, the damaged file goes
        IndexRepair.Result r = new IndexRepair(Fixtures.open(store), Clock.systemUTC(), ProgressListener.NONE)
                .run("test-host", false);
        assertEquals(List.of(damaged), r.damaged().stream().map(d -> d.substring(0, damaged.length())).toList());
        assertNotNull(r.written());
        assertTrue(r.ok(), r.unreadable().toString());
        assertTrue(r.packsRead() > 0 && r.packsRead() < packsBefore.size(), r.toString());
        assertFalse(store.exists(damaged));
        assertTrue(names("locks/").isEmpty());

        Repository repaired = Fixtures.open(store);
        assertTrue(repaired.indexDamage().isEmpty());
        restoresIntact(repaired, snapA, a);
        restoresIntact(repaired, snapB, b);
        Verifier.Report clean = new Verifier(repaired, m -> { }).verify(true, 2);
        assertTrue(clean.ok(), clean.errors().toString());
        assertTrue(clean.warnings().isEmpty(), clean.warnings().toString());
        Pruner.Result p = prune(repaired);
        assertEquals(0, p.packsDeleted(), p.toString());
        Repository pruned = Fixtures.open(store);
        restoresIntact(pruned, snapA, a);
        restoresIntact(pruned, snapB, b);
        assertEquals(packsBefore, packs());

        // nothing left to repair
        IndexRepair.Result again = new IndexRepair(pruned, Clock.systemUTC(), ProgressListener.NONE).run("h", false);
        assertEquals(null, again.written());
        assertEquals(0, again.packsRead());
    }

    @Test
    void aRepairKilledAfterItsIndexIsStoredLeavesARepositoryThatReadsAndTheNextPruneTidiesUp() throws Exception {
        flipAByte(damaged);
        // the deletion of the damaged file fails, as if the repair were killed just after storing its index
        FailingStore failing = FailingStore.deletes(store, n -> n.startsWith(IndexFile.PREFIX));
        assertThrows(IOException.class, () -> new IndexRepair(Fixtures.open(failing), Clock.systemUTC(),
                ProgressListener.NONE).run("test-host", false));
        assertTrue(store.exists(damaged));
        for (String lock : names("locks/")) {
            store.delete(lock); // the killed repair's lock
        }

        Repository r = Fixtures.open(store);
        assertTrue(r.indexDamage().isEmpty(), "a superseded damaged file loses nothing");
        restoresIntact(r, snapB, b);
        Verifier.Report v = new Verifier(r, m -> { }).verify(false, 2);
        assertTrue(v.ok(), v.errors().toString());
        assertTrue(v.warnings().stream().anyMatch(w -> w.startsWith(damaged) && w.contains("superseded")),
                v.warnings().toString());
        prune(r);
        assertFalse(store.exists(damaged));
        Repository after = Fixtures.open(store);
        restoresIntact(after, snapA, a);
        restoresIntact(after, snapB, b);
        assertTrue(new Verifier(after, m -> { }).verify(false, 2).warnings().isEmpty());
    }

    @Test
    void readAllPacksRebuildsTheWholeIndexFromHeadersButNotBesideARunningBackup() throws Exception {
        Set<String> old = names("index/");
        try (RepositoryLock backup = RepositoryLock.acquire(store, "backup", "other-node", Clock.systemUTC())) {
            RepositoryException busy = assertThrows(RepositoryException.class, () -> new IndexRepair(
                    Fixtures.open(store), Clock.systemUTC(), ProgressListener.NONE).run("test-host", true));
            assertTrue(busy.getMessage().contains("backup") && busy.getMessage().contains("other-node"),
                    busy.getMessage());
            assertEquals(old, names("index/"));
            assertEquals(Set.of(backup.name()), names("locks/"));
        }
        IndexRepair.Result r = new IndexRepair(Fixtures.open(store), Clock.systemUTC(), ProgressListener.NONE)
                .run("test-host", true);
        assertEquals(packs().size(), r.packsRead());
        assertEquals(old.size(), r.removed());
        Set<String> now = names("index/");
        assertEquals(1, now.size());
        assertFalse(now.stream().anyMatch(old::contains));
        Repository rebuilt = Fixtures.open(store);
        restoresIntact(rebuilt, snapA, a);
        restoresIntact(rebuilt, snapB, b);
        assertTrue(new Verifier(rebuilt, m -> { }).verify(false, 2).ok());
    }
}
