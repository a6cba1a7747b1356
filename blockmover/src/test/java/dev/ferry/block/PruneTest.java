package dev.ferry.block;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.ferry.engine.ChangedRanges;
import dev.ferry.repo.Json;
import dev.ferry.repo.ProcessTable;
import dev.ferry.progress.PhaseRecorder;
import dev.ferry.progress.ProgressListener;
import dev.ferry.repo.BlobType;
import dev.ferry.repo.ChunkId;
import dev.ferry.repo.Envelope;
import dev.ferry.repo.IndexFile;
import dev.ferry.repo.Pack;
import dev.ferry.repo.PackEntry;
import dev.ferry.repo.PackId;
import dev.ferry.repo.Pruner;
import dev.ferry.repo.Repository;
import dev.ferry.repo.RepositoryException;
import dev.ferry.repo.RepositoryLock;
import dev.ferry.repo.Snapshots;
import dev.ferry.repo.Verifier;
import dev.ferry.store.LocalStore;
import dev.ferry.store.StoreObject;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PruneTest {
    static final int BS = 64 << 10;

    @TempDir
    Path dir;
    LocalStore store;
    Repository repo;

    @BeforeEach
    void setUp() throws Exception {
        store = new LocalStore(dir.resolve("repo"));
        repo = Fixtures.init(store);
    }

    private Set<String> packs() throws Exception {
        Set<String> out = new HashSet<>();
        for (StoreObject o : store.list("data/")) {
            out.add(o.name());
        }
        return out;
    }

    private long packBytes() throws Exception {
        return store.list("data/").stream().mapToLong(StoreObject::size).sum();
    }

    private Pruner.Result prune(Repository r) throws Exception {
        return new Pruner(r, Clock.systemUTC(), Pruner.DEFAULT_REPACK_SHARE).run("test-host", false);
    }

    private Pruner.Result prune(boolean dryRun, ProgressListener progress) throws Exception {
        return new Pruner(Fixtures.open(store), Clock.systemUTC(), Pruner.DEFAULT_REPACK_SHARE, progress)
                .run("test-host", dryRun);
    }

    /** Every object under {@code prefix} with its size, as listed by the store. */
    private Map<String, Long> listing(String prefix) throws Exception {
        Map<String, Long> out = new TreeMap<>();
        for (StoreObject o : store.list(prefix)) {
            out.put(o.name(), o.size());
        }
        return out;
    }

    /** The chunks of a pack as its own header lists them, read from the store. */
    private List<PackEntry> header(Repository r, String pack, long size) throws Exception {
        return Pack.readHeader(pack, size, (off, len) -> store.getRange(pack, off, len), r.masterKey().aead());
    }

    /** Every chunk the snapshots in the store use. */
    private static Set<ChunkId> usedChunks(Repository r) throws Exception {
        Set<ChunkId> used = new HashSet<>();
        for (Snapshots.Stored s : new Snapshots(r).list()) {
            BlockBackup.forEachChunk(r, s.snapshot().volume(), used::add);
        }
        return used;
    }

    private static void writeRandom(Path file, int size, long seed) throws Exception {
        byte[] b = new byte[size];
        new Random(seed).nextBytes(b);
        Files.write(file, b);
    }

    /** Stores a real pack of one chunk and no index file naming it, as a backup killed before its index leaves. */
    private String storeUnindexedPack(Repository r, long seed) throws Exception {
        byte[] data = new byte[200_000];
        new Random(seed).nextBytes(data);
        ChunkId id = r.masterKey().chunkId(data);
        Envelope envelope = new Envelope(3);
        try (Pack.Writer w = new Pack.Writer(dir.resolve("spool"), r.masterKey().aead(), envelope)) {
            w.add(BlobType.DATA, id, envelope.seal(r.masterKey().aead(), Envelope.chunkAad(BlobType.DATA, id), data,
                    0, data.length, true), data.length);
            PackId pack = w.finish();
            store.put(pack.objectName(), w.file());
            Files.delete(w.file());
            return pack.objectName();
        }
    }

    /** The figures of a result with its dry-run flag left out, so that a dry run and a real run compare. */
    private static Map<String, Object> figures(Pruner.Result r) {
        Map<String, Object> m = new LinkedHashMap<>(r.json());
        assertEquals(r.dryRun(), m.remove("dry_run"));
        return m;
    }

    private static final Pattern NUMBER = Pattern.compile("\\d+(\\.\\d+)?");

    /** The numbers of a summary, in order: a dry run's text must show the real run's. */
    private static List<String> numbers(List<String> lines) {
        List<String> out = new ArrayList<>();
        for (String line : lines) {
            Matcher m = NUMBER.matcher(line);
            while (m.find()) {
                out.add(m.group());
            }
        }
        return out;
    }

    private static long sum(Map<String, Long> sizes, Set<String> names) {
        return names.stream().mapToLong(sizes::get).sum();
    }

    @Test
    void aDryRunShowsTheFiguresOfTheRealRunAndEachIsWhatTheStoreShows() throws Exception {
        // a: forgotten as a whole, so its packs are wholly unused
        Path a = dir.resolve("a.img");
        writeRandom(a, 3 << 20, 11);
        BlockBackup.Result ra = Fixtures.backup(repo, a, BS, null, null);
        // b: after the change, half the blocks of its first 4 MiB and 1 in 16 of the rest are old versions
        Path b = dir.resolve("b.img");
        writeRandom(b, 8 << 20, 12);
        BlockBackup.Result full = Fixtures.backup(repo, b, BS, null, null);
        ChangedRanges ch = new ChangedRanges();
        Random rnd = new Random(13);
        for (long blk = 0; blk < 128; blk++) {
            if (blk < 64 ? blk % 2 == 0 : blk % 16 == 0) {
                Fixtures.change(b, blk * BS, BS, rnd, ch);
            }
        }
        BlockBackup.Result inc = Fixtures.backup(repo, b, null, full.snapshot(), ch);
        Snapshots snaps = new Snapshots(repo);
        snaps.delete(ra.snapshot().id());
        snaps.delete(full.snapshot().id());
        String orphan = storeUnindexedPack(repo, 14);
        RepositoryLock dead = RepositoryLock.acquire(store, "backup", "gone",
                Clock.fixed(Instant.now().minus(Duration.ofHours(2)), ZoneOffset.UTC));

        // what the store holds, classified here from the packs' own headers and the snapshots' chunks
        Repository r0 = Fixtures.open(store);
        Set<ChunkId> used = usedChunks(r0);
        Map<String, Long> before = listing("data/");
        Map<String, Long> indexBefore = listing("index/");
        Map<String, Long> locksBefore = listing("locks/");
        Set<String> unused = new HashSet<>();
        Set<String> rewrite = new HashSet<>();
        Map<String, Long> unusedStaying = new HashMap<>();
        Map<ChunkId, Integer> toCopy = new HashMap<>();
        Map<String, List<PackEntry>> headers = new HashMap<>();
        for (Map.Entry<String, Long> p : before.entrySet()) {
            if (p.getKey().equals(orphan)) {
                continue;
            }
            List<PackEntry> h = header(r0, p.getKey(), p.getValue());
            headers.put(p.getKey(), h);
            long usedBytes = h.stream().filter(e -> used.contains(e.id())).mapToLong(PackEntry::length).sum();
            long unusedBytes = h.stream().filter(e -> !used.contains(e.id())).mapToLong(PackEntry::length).sum();
            if (usedBytes == 0) {
                unused.add(p.getKey());
            } else if (unusedBytes > 0 && p.getValue() - usedBytes >= 0.25 * p.getValue()) {
                rewrite.add(p.getKey());
            } else if (unusedBytes > 0) {
                unusedStaying.put(p.getKey(), unusedBytes);
            }
        }
        for (String p : rewrite) {
            headers.get(p).stream().filter(e -> used.contains(e.id())).forEach(e -> toCopy.put(e.id(), e.length()));
        }
        headers.forEach((p, h) -> {
            if (!unused.contains(p) && !rewrite.contains(p)) {
                h.forEach(e -> toCopy.remove(e.id()));
            }
        });
        long bytesToCopy = toCopy.values().stream().mapToLong(Integer::longValue).sum();
        assertTrue(unused.size() >= 3 && rewrite.size() >= 2 && unusedStaying.size() >= 2,
                "the repository has every kind of pack: " + unused + " " + rewrite + " " + unusedStaying);

        PhaseRecorder dryPhases = new PhaseRecorder();
        Pruner.Result dry = prune(true, dryPhases);
        assertTrue(dry.dryRun());
        assertEquals(before, listing("data/"), "a dry run deletes and writes no pack");
        assertEquals(indexBefore, listing("index/"), "a dry run replaces no index file");
        assertEquals(locksBefore, listing("locks/"), "a dry run removes no lock, and its own is gone");

        PhaseRecorder realPhases = new PhaseRecorder();
        Pruner.Result real = prune(false, realPhases);
        assertFalse(real.dryRun());
        assertEquals(figures(real), figures(dry), "the dry run said what the real run did");
        assertEquals(numbers(real.summary()), numbers(dry.summary()), dry.summary() + " / " + real.summary());

        // each figure against the store
        Map<String, Long> after = listing("data/");
        Set<String> gone = new HashSet<>(before.keySet());
        gone.removeAll(after.keySet());
        Set<String> expectedGone = new HashSet<>(unused);
        expectedGone.addAll(rewrite);
        expectedGone.add(orphan);
        assertEquals(expectedGone, gone, "deleted: the unused packs, the rewritten ones and the one in no index");
        assertEquals(1, real.snapshots());
        assertEquals(before.size(), real.packsBefore());
        assertEquals(sum(before, before.keySet()), real.bytesBefore());
        assertEquals(gone.size(), real.packsDeleted());
        assertEquals(sum(before, gone), real.bytesDeleted());
        assertEquals(unused.size(), real.unusedPacks());
        assertEquals(rewrite.size(), real.repackedPacks());
        assertEquals(1, real.unindexedPacks());
        assertEquals(rewrite.size(), real.packsRepacked());
        assertEquals(0, real.packsDeferred());
        assertEquals(0, real.bytesDeferred());
        assertEquals(0, real.packsUsedMeanwhile());
        assertEquals(0, real.chunksNamedAgain());

        Repository r1 = Fixtures.open(store);
        Set<String> created = new HashSet<>(after.keySet());
        created.removeAll(before.keySet());
        Map<ChunkId, Integer> copied = new HashMap<>();
        for (String p : created) {
            header(r1, p, after.get(p)).forEach(e -> assertEquals(null, copied.put(e.id(), e.length()),
                    "each chunk is copied once"));
        }
        assertEquals(toCopy, copied, "the new packs hold the used chunks of the rewritten ones, each once");
        assertEquals(bytesToCopy, real.bytesRewritten());

        Set<String> indexGone = new HashSet<>(indexBefore.keySet());
        indexGone.removeAll(listing("index/").keySet());
        assertEquals(indexBefore.size(), indexGone.size());
        assertEquals(indexGone.size(), real.indexFilesReplaced());

        // what stays unused: the packs under the threshold, and nothing else
        Set<ChunkId> usedAfter = usedChunks(r1);
        assertEquals(used, usedAfter);
        Map<String, Long> unusedAfter = new HashMap<>();
        for (Map.Entry<String, Long> p : after.entrySet()) {
            long n = header(r1, p.getKey(), p.getValue()).stream().filter(e -> !usedAfter.contains(e.id()))
                    .mapToLong(PackEntry::length).sum();
            if (n > 0) {
                unusedAfter.put(p.getKey(), n);
                assertTrue(n < 0.25 * p.getValue(), p.getKey() + " keeps " + n + " unused bytes of " + p.getValue());
            }
        }
        assertEquals(unusedStaying, unusedAfter);
        assertEquals(unusedAfter.size(), real.packsWithUnused());
        assertEquals(unusedAfter.values().stream().mapToLong(Long::longValue).sum(), real.bytesUnused());
        assertTrue(real.summary().contains(String.format("%s unused in %d pack(s) stay: under the 25%% repack "
                + "threshold", dev.ferry.util.Sizes.human(real.bytesUnused()), real.packsWithUnused())),
                real.summary().toString());
        assertTrue(dry.summary().contains(String.format("would delete %d pack(s) of %s: %d unused, %d rewritten, "
                + "1 in no index", gone.size(), dev.ferry.util.Sizes.human(sum(before, gone)), unused.size(),
                rewrite.size())), dry.summary().toString());

        assertEquals(1, real.locksRemoved());
        assertEquals(List.of(), store.list(RepositoryLock.PREFIX), "the stale lock is gone, and prune's own");
        dead.close();

        // progress: the phases of each run, each counted to its total
        assertEquals(List.of("listing", "reading snapshots", "reading index files"), dryPhases.labels());
        String repacking = "repacking " + rewrite.size() + " packs";
        assertEquals(List.of("listing", "reading snapshots", "reading index files", repacking,
                "checking for new snapshots", "deleting"), realPhases.labels());
        assertEquals(new PhaseRecorder.Phase("listing", 0, "objects", before.size() + 1), realPhases.get("listing"));
        assertEquals(new PhaseRecorder.Phase("reading snapshots", 1, "snapshots", 1),
                realPhases.get("reading snapshots"));
        assertEquals(new PhaseRecorder.Phase(repacking, bytesToCopy, null, bytesToCopy), realPhases.get(repacking));
        assertEquals(new PhaseRecorder.Phase("deleting", gone.size(), "packs", gone.size()),
                realPhases.get("deleting"));

        // and the data that stays restores
        Path out = dir.resolve("out.img");
        Fixtures.restore(r1, new Snapshots(r1).load(inc.snapshot().id()), out, false, x -> { });
        assertTrue(Fixtures.sameContent(b, out));
        Verifier.Report v = new Verifier(r1, m -> { }).verify(true, 2);
        assertTrue(v.ok(), v.errors().toString());
        assertTrue(v.warnings().isEmpty(), v.warnings().toString());
    }

    @Test
    void aDryRunBesideARunningBackupSaysWhatStaysAsTheRealRunDoes() throws Exception {
        Path a = dir.resolve("a.img");
        writeRandom(a, 3 << 20, 21);
        BlockBackup.Result ra = Fixtures.backup(repo, a, BS, null, null);
        Set<String> ofA = listing("data/").keySet();
        Path b = dir.resolve("b.img");
        writeRandom(b, 2 << 20, 22);
        Fixtures.backup(repo, b, BS, null, null);
        new Snapshots(repo).delete(ra.snapshot().id());
        String orphan = storeUnindexedPack(repo, 23);
        Map<String, Long> before = listing("data/");
        Set<String> noLongerUsed = new HashSet<>(ofA);
        noLongerUsed.add(orphan);

        RepositoryLock running = RepositoryLock.acquire(store, "backup", "busy-node", Clock.systemUTC());
        Pruner.Result dry = prune(true, ProgressListener.NONE);
        Pruner.Result real = prune(false, ProgressListener.NONE);
        assertEquals(figures(real), figures(dry));
        assertEquals(numbers(real.summary()), numbers(dry.summary()));
        assertEquals(before, listing("data/"), "nothing is deleted while a backup runs");
        assertEquals(0, real.packsDeleted());
        assertEquals(noLongerUsed.size(), real.packsDeferred());
        assertEquals(sum(before, noLongerUsed), real.bytesDeferred());
        assertEquals(ofA.size(), real.unusedPacks());
        assertEquals(1, real.unindexedPacks());
        assertEquals(1, real.runningLocks().size());
        assertTrue(real.runningLocks().get(0).contains("busy-node"), real.runningLocks().toString());
        assertTrue(dry.summary().stream().anyMatch(l -> l.startsWith(noLongerUsed.size() + " pack(s) of "
                + dev.ferry.util.Sizes.human(real.bytesDeferred()) + " (" + ofA.size() + " unused, 0 rewritten, "
                + "1 in no index) are no longer used but would stay while a backup runs: backup on busy-node")),
                dry.summary().toString());
        running.close();

        // the next prune deletes them: they are in no index now
        Pruner.Result dry2 = prune(true, ProgressListener.NONE);
        Pruner.Result real2 = prune(false, ProgressListener.NONE);
        assertEquals(figures(real2), figures(dry2));
        Set<String> gone = new HashSet<>(before.keySet());
        gone.removeAll(listing("data/").keySet());
        assertEquals(noLongerUsed, gone);
        assertEquals(gone.size(), real2.packsDeleted());
        assertEquals(sum(before, gone), real2.bytesDeleted());
        assertEquals(gone.size(), real2.unindexedPacks());
        assertEquals(0, real2.packsDeferred());
    }

    @Test
    void packsASnapshotStoredDuringPruneUsesStayAndAreCounted() throws Exception {
        Path a = dir.resolve("a.img");
        writeRandom(a, 3 << 20, 31);
        BlockBackup.Result ra = Fixtures.backup(repo, a, BS, null, null);
        Map<String, Long> ofA = listing("data/");
        Path b = dir.resolve("b.img");
        writeRandom(b, 1 << 20, 32);
        Fixtures.backup(repo, b, BS, null, null);
        new Snapshots(repo).delete(ra.snapshot().id());
        String orphan = storeUnindexedPack(repo, 33);
        // a writer that read the index before prune rewrote it backs a up again after prune looked for locks
        Repository writer = Fixtures.open(store);
        List<BlockBackup.Result> meanwhile = new ArrayList<>();
        ProgressListener hook = new ProgressListener() {
            @Override
            public void advance(long amount) {
            }

            @Override
            public void phase(String label, long total, String items) {
                if (label.equals("checking for new snapshots")) {
                    try {
                        meanwhile.add(Fixtures.backup(writer, a, BS, null, null));
                    } catch (IOException e) {
                        throw new UncheckedIOException(e);
                    }
                }
            }
        };
        Pruner.Result p = prune(false, hook);
        assertEquals(1, meanwhile.size());
        assertEquals(ofA.size(), p.packsUsedMeanwhile(), p.toString());
        assertEquals(1, p.packsDeleted());
        assertEquals(1, p.unindexedPacks());
        assertEquals(0, p.unusedPacks());
        assertFalse(store.exists(orphan));
        assertTrue(listing("data/").keySet().containsAll(ofA.keySet()), "a's packs stay");
        assertTrue(p.summary().contains(ofA.size() + " pack(s) stay after all: snapshots stored while prune ran "
                + "use them"), p.summary().toString());
        Repository after = Fixtures.open(store);
        Path out = dir.resolve("out.img");
        Fixtures.restore(after, new Snapshots(after).load(meanwhile.get(0).snapshot().id()), out, false, x -> { });
        assertTrue(Fixtures.sameContent(a, out));
    }

    @Test
    void forgottenDataGoesAndWhatIsLeftStillRestores() throws Exception {
        Path a = dir.resolve("a.img");
        Path b = dir.resolve("b.img");
        Fixtures.writeVolume(a, 6L << 20, 512 << 10, 1);
        Fixtures.writeVolume(b, 3L << 20, 512 << 10, 2);
        BlockBackup.Result ra = Fixtures.backup(repo, a, BS, null, null);
        BlockBackup.Result rb = Fixtures.backup(repo, b, BS, null, null);
        long before = packBytes();
        new Snapshots(repo).delete(ra.snapshot().id());

        Repository r = Fixtures.open(store);
        Pruner.Result p = prune(r);
        assertTrue(p.packsDeleted() > 0, p.toString());
        assertTrue(packBytes() < before / 2, "most of a's data must go: " + packBytes() + " of " + before);
        assertEquals(0, p.packsDeferred());

        Repository after = Fixtures.open(store);
        Path out = dir.resolve("out.img");
        Fixtures.restore(after, new Snapshots(after).load(rb.snapshot().id()), out, false, x -> { });
        assertTrue(Fixtures.sameContent(b, out));
        Verifier.Report v = new Verifier(after, m -> { }).verify(true, 2);
        assertTrue(v.ok(), v.errors().toString());
        assertTrue(v.warnings().isEmpty(), "no unreferenced packs are left: " + v.warnings());
    }

    @Test
    void packsMixingUsedAndUnusedChunksAreRewritten() throws Exception {
        Path a = dir.resolve("a.img");
        Fixtures.writeVolume(a, 4L << 20, 256 << 10, 3);
        BlockBackup.Result full = Fixtures.backup(repo, a, BS, null, null);
        // change half of the blocks: the old versions of those blocks become garbage inside mixed packs
        ChangedRanges ch = new ChangedRanges();
        Random rnd = new Random(4);
        for (long blk = 0; blk < 64; blk += 2) {
            Fixtures.change(a, blk * BS, BS, rnd, ch);
        }
        BlockBackup.Result inc = Fixtures.backup(repo, a, null, full.snapshot(), ch);
        new Snapshots(repo).delete(full.snapshot().id());
        long before = packBytes();
        Pruner.Result p = prune(Fixtures.open(store));
        assertTrue(p.packsRepacked() > 0, p.toString());
        assertTrue(p.bytesRewritten() > 0);
        assertTrue(packBytes() < before, packBytes() + " >= " + before);
        Repository after = Fixtures.open(store);
        Path out = dir.resolve("out.img");
        Fixtures.restore(after, new Snapshots(after).load(inc.snapshot().id()), out, false, x -> { });
        assertTrue(Fixtures.sameContent(a, out));
        assertTrue(new Verifier(after, m -> { }).verify(true, 2).ok());
    }

    @Test
    void aBackupRunningDuringPruneKeepsItsPacksAndTheChunksItDeduplicatedAgainst() throws Exception {
        // a: forgotten before the prune; b shares half of a's blocks, so b deduplicates against a's chunks
        Path a = dir.resolve("a.img");
        Fixtures.writeVolume(a, 8L << 20, 256 << 10, 5);
        BlockBackup.Result ra = Fixtures.backup(repo, a, BS, null, null);
        Path b = dir.resolve("b.img");
        Files.copy(a, b);
        Random rnd = new Random(6);
        for (long off = 4L << 20; off < 8L << 20; off += BS) {
            Fixtures.change(b, off, BS, rnd, null); // second half is new data
        }
        new Snapshots(repo).delete(ra.snapshot().id());

        Repository writer = Fixtures.open(store);
        RepositoryLock lock = RepositoryLock.acquire(store, "backup", "writer", Clock.systemUTC());
        CountDownLatch paused = new CountDownLatch(1);
        CountDownLatch resume = new CountDownLatch(1);
        AtomicLong done = new AtomicLong();
        CompletableFuture<BlockBackup.Result> running = CompletableFuture.supplyAsync(() -> {
            try {
                return Fixtures.backup(writer, b, BS, null, null, bytes -> {
                    if (done.addAndGet(bytes) == 6L << 20) { // after the shared half and some new packs
                        paused.countDown();
                        try {
                            resume.await();
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                        }
                    }
                }, lock);
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        });
        assertTrue(paused.await(60, TimeUnit.SECONDS));
        Set<String> packsWhilePaused = packs();
        Pruner.Result p = prune(Fixtures.open(store));
        assertEquals(0, p.packsDeleted(), "nothing is deleted while a backup holds a lock: " + p);
        assertTrue(p.packsDeferred() > 0, "a's packs are garbage for now: " + p);
        assertEquals(1, p.runningLocks().size());
        assertTrue(packs().containsAll(packsWhilePaused), "no pack disappeared under the running backup");
        resume.countDown();
        BlockBackup.Result rb = running.get(60, TimeUnit.SECONDS);
        lock.close();

        // the backup named the chunks it shared with a again, so they survive the next prune too
        Pruner.Result p2 = prune(Fixtures.open(store));
        assertEquals(0, p2.packsDeferred());
        Repository after = Fixtures.open(store);
        Path out = dir.resolve("out.img");
        Fixtures.restore(after, new Snapshots(after).load(rb.snapshot().id()), out, false, x -> { });
        assertTrue(Fixtures.sameContent(b, out), "the snapshot written during prune restores");
        Verifier.Report v = new Verifier(after, m -> { }).verify(true, 2);
        assertTrue(v.ok(), v.errors().toString());
    }

    @Test
    void unindexedPacksOfAKilledBackupGoOnlyWhenNoBackupRuns() throws Exception {
        Path a = dir.resolve("a.img");
        Fixtures.writeVolume(a, 2L << 20, 256 << 10, 7);
        Fixtures.backup(repo, a, BS, null, null);
        // a pack nobody indexed, as a killed writer leaves it
        String orphan = "data/ab/ab" + "0".repeat(62);
        store.put(orphan, "not really a pack".getBytes(StandardCharsets.US_ASCII));
        RepositoryLock lock = RepositoryLock.acquire(store, "backup", "other-node", Clock.systemUTC());
        prune(Fixtures.open(store));
        assertTrue(store.exists(orphan), "it may belong to the running backup");
        lock.close();
        prune(Fixtures.open(store));
        assertFalse(store.exists(orphan));
    }

    @Test
    void staleLocksOfDeadProcessesAreIgnoredAndRemoved() throws Exception {
        Clock past = Clock.fixed(Instant.now().minus(Duration.ofHours(2)), ZoneOffset.UTC);
        RepositoryLock dead = RepositoryLock.acquire(store, "backup", "gone", past);
        String orphan = "data/cd/cd" + "1".repeat(62);
        store.put(orphan, new byte[10]);
        Pruner.Result p = prune(Fixtures.open(store));
        assertEquals(1, p.locksRemoved());
        assertFalse(store.exists(dead.name()));
        assertFalse(store.exists(orphan));
    }

    @Test
    void aLockLeftByABackupKilledWithSigkillHoldsNothingBack() throws Exception {
        ProcessTable here = ProcessTable.local("test-host");
        assumeTrue(here.canLookUp(), "needs a readable Linux /proc");
        Path a = dir.resolve("a.img");
        Fixtures.writeVolume(a, 2L << 20, 256 << 10, 8);
        new Snapshots(repo).delete(Fixtures.backup(repo, a, BS, null, null).snapshot().id());
        // a backup process of this host, with the lock it wrote
        Process backup = new ProcessBuilder("sleep", "600").start();
        try {
            ProcessTable.Identity id = here.identity();
            String now = Instant.now().toString();
            String lock = RepositoryLock.PREFIX + "5e".repeat(16);
            store.put(lock, Json.MAPPER.writeValueAsBytes(new RepositoryLock.Info("backup", "test-host",
                    backup.pid(), now, now, id.bootId(), id.pidNamespace(), id.timeNamespace(),
                    here.startTicks(backup.pid()).getAsLong())));
            Pruner.Result running = prune(Fixtures.open(store));
            assertEquals(0, running.packsDeleted(), running.toString());
            assertTrue(running.packsDeferred() > 0, running.toString());
            assertTrue(running.runningLocks().get(0).contains("pid " + backup.pid()), running.toString());

            backup.destroyForcibly(); // SIGKILL: the lock stays behind, fresh
            assertTrue(backup.waitFor(30, TimeUnit.SECONDS));
            assertTrue(store.exists(lock));
            Pruner.Result after = prune(Fixtures.open(store));
            assertEquals(1, after.locksRemoved(), after.toString());
            assertFalse(store.exists(lock));
            assertEquals(running.packsDeferred(), after.packsDeleted(), "deleted at once, not in 15 minutes");
            assertEquals(0, after.packsDeferred());
            assertTrue(packs().isEmpty(), "no snapshot is left, so no pack is: " + packs());
        } finally {
            backup.destroyForcibly();
        }
    }

    @Test
    void onlyOnePruneAtATime() throws Exception {
        RepositoryLock other = RepositoryLock.acquire(store, "prune", "elsewhere", Clock.systemUTC());
        RepositoryException e = assertThrows(RepositoryException.class, () -> prune(Fixtures.open(store)));
        assertTrue(e.getMessage().contains("another prune is running"), e.getMessage());
        other.close();
        List<StoreObject> locks = store.list(RepositoryLock.PREFIX);
        assertTrue(locks.isEmpty(), "the refused prune removed its own lock: " + locks);
    }

    /** Every chunk entry of the current index files, counted per chunk. */
    private static Map<ChunkId, Integer> indexEntries(Repository r) throws Exception {
        Map<ChunkId, Integer> out = new HashMap<>();
        for (IndexFile f : IndexFile.current(r.readIndexFiles(null)).values()) {
            f.packs().values().forEach(es -> es.forEach(e -> out.merge(e.id(), 1, Integer::sum)));
        }
        return out;
    }

    private static void copyTree(Path from, Path to) throws IOException {
        try (var files = Files.walk(from)) {
            for (Path p : (Iterable<Path>) files::iterator) {
                Path t = to.resolve(from.relativize(p).toString());
                if (Files.isDirectory(p)) {
                    Files.createDirectories(t);
                } else {
                    Files.copy(p, t);
                }
            }
        }
    }

    @Test
    void twoConcurrentBackupsOfTheSameDataStoreItTwiceAndPruneKeepsOneCopy() throws Exception {
        Path a = dir.resolve("a.img");
        Fixtures.writeVolume(a, 8L << 20, 256 << 10, 31);
        // one copy: the same backup into a repository of its own
        LocalStore single = new LocalStore(dir.resolve("single"));
        Fixtures.backup(Fixtures.init(single), a, BS, null, null);
        long oneCopy = single.list("data/").stream().mapToLong(StoreObject::size).sum();

        // two backups that each read the index before the other stored anything, each under its own lock
        Repository r1 = Fixtures.open(store);
        Repository r2 = Fixtures.open(store);
        CountDownLatch start = new CountDownLatch(1);
        List<CompletableFuture<BlockBackup.Result>> runs = new ArrayList<>();
        for (Repository r : List.of(r1, r2)) {
            runs.add(CompletableFuture.supplyAsync(() -> {
                try (RepositoryLock lock = RepositoryLock.acquire(store, "backup", "node", Clock.systemUTC())) {
                    start.await();
                    return Fixtures.backup(r, a, BS, null, null, ProgressListener.NONE, lock);
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            }));
        }
        start.countDown();
        BlockBackup.Result first = runs.get(0).get(60, TimeUnit.SECONDS);
        BlockBackup.Result second = runs.get(1).get(60, TimeUnit.SECONDS);
        assertTrue(packBytes() > oneCopy * 19 / 10, packBytes() + " vs one copy of " + oneCopy);
        assertTrue(indexEntries(Fixtures.open(store)).values().stream().allMatch(n -> n == 2),
                "every chunk is stored twice");

        Map<String, Long> before = listing("data/");
        Pruner.Result dry = new Pruner(Fixtures.open(store), Clock.systemUTC(), Pruner.DEFAULT_REPACK_SHARE)
                .run("test-host", true);
        Pruner.Result p = prune(Fixtures.open(store));
        assertEquals(figures(dry), figures(p));
        assertTrue(p.duplicateCopies() > 0, p.toString());
        assertTrue(p.summary().stream().anyMatch(l -> l.contains("stored more than once")), p.summary().toString());
        long config = 1 << 20; // the test repositories' pack size
        assertTrue(packBytes() <= oneCopy + config, packBytes() + " left for one copy of " + oneCopy);
        Map<String, Long> left = listing("data/");
        left.keySet().retainAll(before.keySet());
        assertEquals(p.bytesBefore() - p.bytesDeleted(), left.values().stream().mapToLong(Long::longValue).sum(),
                "the figures are what the store shows");
        assertTrue(p.duplicateBytes() > 0 && p.duplicateBytes() < p.bytesBefore() / 2, p.toString());

        Repository after = Fixtures.open(store);
        Map<ChunkId, Integer> entries = indexEntries(after);
        assertTrue(entries.values().stream().allMatch(n -> n == 1), "prune's index names each chunk once");
        assertEquals(usedChunks(after), entries.keySet());
        Verifier.Report v = new Verifier(after, m -> { }).verify(true, 2);
        assertTrue(v.ok(), v.errors().toString());
        assertTrue(v.warnings().isEmpty(), v.warnings().toString());
        for (BlockBackup.Result r : List.of(first, second)) {
            Path out = dir.resolve("out-" + r.snapshot().id() + ".img");
            Fixtures.restore(after, new Snapshots(after).load(r.snapshot().id()), out, false, x -> { });
            assertTrue(Fixtures.sameContent(a, out));
        }
        Pruner.Result again = prune(after);
        assertEquals(0, again.duplicateCopies());
        assertEquals(0, again.packsDeleted());
    }

    @Test
    void whatAPruneKilledAfterItsRepackIndexLeavesGoesWithTheNextPrune() throws Exception {
        Path a = dir.resolve("a.img");
        Fixtures.writeVolume(a, 4L << 20, 256 << 10, 41);
        BlockBackup.Result full = Fixtures.backup(repo, a, BS, null, null);
        ChangedRanges ch = new ChangedRanges();
        Random rnd = new Random(42);
        for (long blk = 0; blk < 64; blk += 2) {
            Fixtures.change(a, blk * BS, BS, rnd, ch);
        }
        BlockBackup.Result inc = Fixtures.backup(repo, a, null, full.snapshot(), ch);
        new Snapshots(repo).delete(full.snapshot().id());

        // a clean prune of the same repository, for comparison
        Path cleanDir = dir.resolve("clean");
        copyTree(store.root(), cleanDir);
        LocalStore clean = new LocalStore(cleanDir);
        Pruner.Result cleanRun = prune(Fixtures.open(clean));
        assertTrue(cleanRun.packsRepacked() > 0, cleanRun.toString());
        long cleanSize = clean.list("data/").stream().mapToLong(StoreObject::size).sum();

        // killed at two points: before its index replacing the others (the copies are indexed beside the chunks
        // they copy: duplicates), and at its first deletion (the new index is stored, nothing deleted)
        Path original = dir.resolve("original");
        copyTree(store.root(), original);
        int[] indexPuts = {0};
        List<java.util.function.Function<LocalStore, dev.ferry.store.Store>> kills = List.of(
                s -> FailingStore.puts(s, n -> n.startsWith(IndexFile.PREFIX) && ++indexPuts[0] == 2),
                s -> FailingStore.deletes(s, n -> !n.startsWith(RepositoryLock.PREFIX)));
        for (int k = 0; k < kills.size(); k++) {
            LocalStore target = new LocalStore(dir.resolve("killed-" + k));
            copyTree(original, target.root());
            dev.ferry.store.Store failing = kills.get(k).apply(target);
            assertThrows(IOException.class, () -> prune(Fixtures.open(failing)));
            long left = target.list("data/").stream().mapToLong(StoreObject::size).sum();
            assertTrue(left > cleanSize, "kill " + k + ": the copies are there beside the packs they came from");
            if (k == 0) {
                Repository r = Fixtures.open(target);
                Map<ChunkId, Integer> entries = indexEntries(r);
                assertTrue(entries.values().stream().anyMatch(n -> n > 1), "the copies are indexed twice");
            }

            Pruner.Result next = prune(Fixtures.open(target));
            assertTrue(next.packsDeleted() > 0, next.toString());
            long size = target.list("data/").stream().mapToLong(StoreObject::size).sum();
            assertTrue(Math.abs(size - cleanSize) <= (1 << 20) / 4, "kill " + k + ": " + size
                    + " after the next prune, " + cleanSize + " after a clean one");
            Repository after = Fixtures.open(target);
            assertTrue(indexEntries(after).values().stream().allMatch(n -> n == 1));
            Verifier.Report v = new Verifier(after, m -> { }).verify(true, 2);
            assertTrue(v.ok(), v.errors().toString());
            assertTrue(v.warnings().isEmpty(), v.warnings().toString());
            Path out = dir.resolve("out-" + k + ".img");
            Fixtures.restore(after, new Snapshots(after).load(inc.snapshot().id()), out, false, x -> { });
            assertTrue(Fixtures.sameContent(a, out));
        }
    }
}
