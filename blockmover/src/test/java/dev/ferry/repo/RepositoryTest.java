package dev.ferry.repo;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.store.LocalStore;
import dev.ferry.store.StoreObject;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RepositoryTest {
    @TempDir
    Path dir;

    @Test
    void chunksRoundTripAcrossReopenAndDeduplicate() throws Exception {
        LocalStore store = new LocalStore(dir.resolve("repo"));
        Repository repo = TestRepos.init(store);
        Random rnd = new Random(7);
        Map<ChunkId, byte[]> saved = new HashMap<>();
        for (int i = 0; i < 50; i++) {
            byte[] data = i % 5 == 0 ? "text ".repeat(20_000).getBytes(StandardCharsets.US_ASCII)
                    : TestRepos.random(rnd, 1 + rnd.nextInt(100_000));
            saved.put(repo.save(i % 2 == 0 ? BlobType.DATA : BlobType.METADATA, data), data);
        }
        // 10 copies of the same text chunk: stored once
        assertEquals(41, saved.size());
        assertEquals(41, repo.chunksAdded());
        repo.flush();
        assertTrue(store.list("data/").size() >= 2, "1 MiB pack size splits ~2 MiB of chunks into several packs");

        Repository reopened = Repository.open(store, TestRepos.PASSWORD);
        assertEquals(41, reopened.indexedChunks());
        for (Map.Entry<ChunkId, byte[]> e : saved.entrySet()) {
            assertArrayEquals(e.getValue(), reopened.load(e.getKey()));
        }
        // saving known content again adds nothing
        for (byte[] data : saved.values()) {
            reopened.save(BlobType.DATA, data);
        }
        reopened.flush();
        assertEquals(0, reopened.chunksAdded());
        assertEquals(store.list("data/").size(), reopened.indexedPacks());
    }

    @Test
    void aFailedPackUploadIsAnErrorAndLeavesNoSpoolFile() throws Exception {
        LocalStore store = new LocalStore(dir.resolve("repo"));
        Repository repo = TestRepos.init(store);
        repo.save(BlobType.DATA, TestRepos.random(new Random(6), 10_000));
        // the data/ directory cannot be created: a file is in its way
        Files.writeString(store.root().resolve("data"), "in the way");
        java.io.IOException e = assertThrows(java.io.IOException.class, repo::flush);
        assertTrue(e.getMessage().startsWith("cannot store " + store.root().resolve("data")), e.getMessage());
        try (var s = Files.list(store.stagingDirectory())) {
            assertEquals(0, s.count(), "spool file removed");
        }
        assertEquals(List.of(), store.list("index/"), "no index names a pack that was not stored");
    }

    @Test
    void compressibleDataIsStoredCompressedAndRandomDataIsNot() throws Exception {
        LocalStore store = new LocalStore(dir.resolve("repo"));
        Repository repo = TestRepos.init(store);
        repo.save(BlobType.DATA, "abc".repeat(100_000).getBytes(StandardCharsets.US_ASCII));
        long text = repo.bytesAdded();
        assertTrue(text < 10_000, "300 KB of repeated text stored in " + text + " bytes");
        repo.save(BlobType.DATA, TestRepos.random(new Random(3), 300_000));
        assertEquals(300_000 + 29, repo.bytesAdded() - text);
    }

    @Test
    void severalWritersAddToOneRepositoryAtOnce() throws Exception {
        LocalStore store = new LocalStore(dir.resolve("repo"));
        TestRepos.init(store).flush();
        int writers = 4;
        ExecutorService pool = Executors.newFixedThreadPool(writers);
        List<Future<Map<ChunkId, byte[]>>> results = new ArrayList<>();
        for (int w = 0; w < writers; w++) {
            int seed = w;
            Callable<Map<ChunkId, byte[]>> job = () -> {
                // each writer is its own process-like repository instance on the same directory
                Repository r = Repository.open(new LocalStore(dir.resolve("repo")), TestRepos.PASSWORD);
                Random own = new Random(seed);
                Random shared = new Random(99);
                Map<ChunkId, byte[]> m = new HashMap<>();
                for (int i = 0; i < 40; i++) {
                    byte[] d = TestRepos.random(i % 2 == 0 ? own : shared, 50_000);
                    m.put(r.save(BlobType.DATA, d), d);
                }
                r.flush();
                return m;
            };
            results.add(pool.submit(job));
        }
        Map<ChunkId, byte[]> all = new HashMap<>();
        for (Future<Map<ChunkId, byte[]>> f : results) {
            all.putAll(f.get());
        }
        pool.shutdown();
        assertEquals(4 * 20 + 20, all.size());
        Repository reader = Repository.open(store, TestRepos.PASSWORD);
        for (Map.Entry<ChunkId, byte[]> e : all.entrySet()) {
            assertArrayEquals(e.getValue(), reader.load(e.getKey()));
        }
        assertEquals(writers, store.list("index/").size(), "one index file per writer");
        Verifier.Report report = new Verifier(reader, s -> { }).verify(true, 2);
        assertTrue(report.ok(), report.errors().toString());
        assertEquals(all.size(), report.chunks());
    }

    @Test
    void aPackWithoutIndexLeavesTheRepositoryValid() throws Exception {
        LocalStore store = new LocalStore(dir.resolve("repo"));
        Repository repo = TestRepos.init(store);
        byte[] kept = TestRepos.random(new Random(1), 10_000);
        ChunkId keptId = repo.save(BlobType.DATA, kept);
        repo.flush();
        // a writer that stored a pack and died before its index
        byte[] lost = TestRepos.random(new Random(2), 10_000);
        Repository dying = Repository.open(store, TestRepos.PASSWORD);
        ChunkId lostId = dying.save(BlobType.DATA, lost);
        Path packFile;
        try (Pack.Writer w = new Pack.Writer(dir.resolve("spool"), dying.masterKey().aead(), new Envelope(3))) {
            w.add(BlobType.DATA, lostId, new Envelope(3).seal(dying.masterKey().aead(),
                    Envelope.chunkAad(BlobType.DATA, lostId), lost, 0, lost.length, true), lost.length);
            PackId id = w.finish();
            store.put(id.objectName(), w.file());
            packFile = w.file();
        }
        assertTrue(Files.exists(packFile));

        Repository after = Repository.open(store, TestRepos.PASSWORD);
        assertArrayEquals(kept, after.load(keptId));
        assertFalse(after.contains(lostId), "an unindexed pack is not part of the repository");
        Verifier.Report report = new Verifier(after, s -> { }).verify(true, 1);
        assertTrue(report.ok(), report.errors().toString());
        assertEquals(1, report.warnings().size());
        assertTrue(report.warnings().get(0).contains("pack is in no index and no snapshot uses its chunks (left by an "
                + "interrupted backup); prune will remove it"), report.warnings().get(0));
        // the next writer stores the chunk again rather than relying on the unindexed pack
        after.save(BlobType.DATA, lost);
        after.flush();
        assertArrayEquals(lost, Repository.open(store, TestRepos.PASSWORD).load(lostId));
    }

    @Test
    void readDataVerifiesPacksInBoundedWindowsAndFindsDamageAnywhere() throws Exception {
        LocalStore store = new LocalStore(dir.resolve("repo"));
        Repository repo = TestRepos.init(store);
        Random rnd = new Random(8);
        for (int i = 0; i < 30; i++) {
            repo.save(BlobType.DATA, TestRepos.random(rnd, 30_000 + rnd.nextInt(20_000)));
        }
        repo.flush();
        StoreObject pack = store.list("data/").get(0);
        long total = store.list("data/").stream().mapToLong(StoreObject::size).sum();
        int window = 64 * 1024; // several chunks per read, many reads per pack
        Verifier.Report clean = new Verifier(repo, s -> { }, window).verify(true, 1);
        assertTrue(clean.ok(), clean.errors().toString());
        assertEquals(total, clean.bytesRead(), "every byte of every pack is read exactly once");

        Path file = store.root().resolve(pack.name());
        byte[] original = Files.readAllBytes(file);
        for (long where : new long[] {original.length / 2, original.length - 20}) {
            byte[] bytes = original.clone();
            bytes[(int) where] ^= 0x10;
            Files.write(file, bytes);
            Verifier.Report damaged = new Verifier(repo, s -> { }, window).verify(true, 1);
            assertFalse(damaged.ok(), "flip at " + where + " found");
            String expected = where == original.length / 2 ? "does not match its name" : "pack header does not decrypt";
            assertTrue(damaged.errors().stream().anyMatch(e -> e.startsWith(pack.name()) && e.contains(expected)),
                    damaged.errors().toString());
        }
        Files.write(file, original);
    }

    @Test
    void initRefusesAnExistingRepositoryAndLeavesItIntact() throws Exception {
        LocalStore store = new LocalStore(dir.resolve("repo"));
        Repository repo = TestRepos.init(store);
        byte[] config = store.get("config");
        List<StoreObject> keys = store.list("keys/");
        RepositoryException e = assertThrows(RepositoryException.class, () -> TestRepos.init(store));
        assertTrue(e.getMessage().contains("already exists"), e.getMessage());
        assertArrayEquals(config, store.get("config"));
        assertEquals(keys, store.list("keys/"));
        assertEquals(repo.config().id(), Repository.open(store, TestRepos.PASSWORD).config().id());
    }

    @Test
    void newerFormatVersionIsRefusedBeforeAnyKeyIsTried() throws Exception {
        LocalStore store = new LocalStore(dir.resolve("repo"));
        TestRepos.init(store);
        String json = new String(store.get("config"), StandardCharsets.UTF_8).replace("\"version\" : 1",
                "\"version\" : 2");
        store.put("config", json.getBytes(StandardCharsets.UTF_8));
        RepositoryException.UnsupportedFormat e = assertThrows(RepositoryException.UnsupportedFormat.class,
                () -> Repository.open(store, new KeySource.Password("whatever".toCharArray())));
        assertTrue(e.getMessage().contains("format version 2, newer than this Ferry understands (up to 1)"),
                e.getMessage());
    }

    @Test
    void missingRepositoryIsAClearError() {
        LocalStore store = new LocalStore(dir.resolve("nothing-here"));
        RepositoryException e = assertThrows(RepositoryException.class,
                () -> Repository.open(store, TestRepos.PASSWORD));
        assertTrue(e.getMessage().contains("no Ferry repository"), e.getMessage());
    }

    @Test
    void aTruncatedIndexFileIsReportedWithItsNameAndTheRestStaysReadable() throws Exception {
        LocalStore store = new LocalStore(dir.resolve("repo"));
        Repository repo = TestRepos.init(store);
        ChunkId lost = repo.save(BlobType.DATA, TestRepos.random(new Random(4), 5000));
        repo.flush();
        String index = store.list("index/").get(0).name();
        ChunkId kept = repo.save(BlobType.DATA, TestRepos.random(new Random(5), 5000));
        repo.flush();
        byte[] bytes = store.get(index);
        Files.write(store.root().resolve(index), java.util.Arrays.copyOf(bytes, bytes.length / 2));
        Repository reopened = Repository.open(store, TestRepos.PASSWORD);
        assertEquals(1, reopened.indexDamage().size());
        assertTrue(reopened.indexDamage().get(0).getMessage().startsWith(index), reopened.indexDamage().toString());
        assertTrue(reopened.contains(kept));
        assertEquals(5000, reopened.load(kept).length);
        RepositoryException e = assertThrows(RepositoryException.class, () -> reopened.load(lost));
        assertTrue(e.getMessage().contains(lost.shortHex()) && e.getMessage().contains(index)
                && e.getMessage().contains("ferry repair index"), e.getMessage());
    }

    @Test
    void supersededIndexFilesAreIgnored() throws Exception {
        LocalStore store = new LocalStore(dir.resolve("repo"));
        Repository repo = TestRepos.init(store);
        ChunkId a = repo.save(BlobType.DATA, TestRepos.random(new Random(5), 5000));
        repo.flush();
        String old = store.list("index/").get(0).name();
        IndexFile oldFile = IndexFile.open(old, store.get(old), repo.masterKey().aead());
        // a replacement index that supersedes the old one and, as prune would, drops nothing
        IndexFile replacement = new IndexFile(List.of(old.substring(6)), oldFile.packs());
        byte[] sealed = replacement.seal(repo.masterKey().aead(), new Envelope(3));
        store.put(IndexFile.objectName(sealed), sealed);
        Repository reopened = Repository.open(store, TestRepos.PASSWORD);
        assertEquals(1, reopened.indexFileCount());
        assertTrue(reopened.contains(a));
    }
}
