package dev.ferry.repo;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.progress.PhaseRecorder;
import dev.ferry.progress.ProgressReporter;
import dev.ferry.store.LocalStore;
import dev.ferry.store.StoreObject;
import java.io.ByteArrayOutputStream;
import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The progress verify reports: phases, and for a read-back the bytes it reads against a total known up front. */
class VerifierTest {
    @TempDir
    Path dir;

    /** A repository of several packs of random chunks, and one more pack that no index names. */
    private LocalStore repositoryOfKnownSize() throws Exception {
        LocalStore store = new LocalStore(dir.resolve("repo"));
        Repository repo = TestRepos.init(store);
        Random rnd = new Random(3);
        for (int i = 0; i < 40; i++) {
            repo.save(BlobType.DATA, TestRepos.random(rnd, 50_000 + rnd.nextInt(100_000)));
        }
        repo.flush();
        return store;
    }

    private static long packBytes(LocalStore store) throws Exception {
        return store.list("data/").stream().mapToLong(StoreObject::size).sum();
    }

    private void storeUnindexedPack(LocalStore store, Repository repo) throws Exception {
        byte[] lost = TestRepos.random(new Random(4), 100_000);
        ChunkId id = repo.masterKey().chunkId(lost);
        try (Pack.Writer w = new Pack.Writer(dir.resolve("spool"), repo.masterKey().aead(), new Envelope(3))) {
            w.add(BlobType.DATA, id, new Envelope(3).seal(repo.masterKey().aead(),
                    Envelope.chunkAad(BlobType.DATA, id), lost, 0, lost.length, true), lost.length);
            store.put(w.finish().objectName(), w.file());
        }
    }

    @Test
    void readDataCountsTheBytesItReadsTowardTheSizeOfTheIndexedPacksAndReachesIt() throws Exception {
        LocalStore store = repositoryOfKnownSize();
        long indexed = packBytes(store);
        int packs = store.list("data/").size();
        assertTrue(packs >= 4, packs + " packs");
        Repository repo = Repository.open(store, TestRepos.PASSWORD);
        storeUnindexedPack(store, repo);
        assertTrue(packBytes(store) > indexed);

        long[] now = {0};
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        PrintWriter out = new PrintWriter(new OutputStreamWriter(bytes, UTF_8), true);
        ProgressReporter progress = new ProgressReporter("verify", 0, out, true, Duration.ofSeconds(10),
                () -> now[0]);
        Verifier.Report report = new Verifier(repo, m -> { }, progress).verify(true, 2);
        assertTrue(report.ok(), report.errors().toString());
        assertEquals(1, report.warnings().size(), "the unindexed pack is a warning, and is not read");
        assertEquals(indexed, report.bytesRead());
        assertEquals("reading packs", progress.phaseLabel());
        assertEquals(indexed, progress.totalBytes(), "the total, known before reading, is what is read");
        assertEquals(indexed, progress.bytesDone());
        now[0] = Duration.ofSeconds(2).toNanos();
        progress.close();
        String text = bytes.toString(UTF_8);
        String last = text.substring(text.lastIndexOf('\r') + 1);
        assertTrue(last.matches("verify reading packs \\[#{22}] 100% (.+)/\\1 .+/s took 2s\\R"), last);
    }

    @Test
    void everyPhaseOfAStructureCheckIsCountedToItsTotal() throws Exception {
        LocalStore store = repositoryOfKnownSize();
        int packs = store.list("data/").size();
        int indexFiles = store.list(IndexFile.PREFIX).size();
        PhaseRecorder phases = new PhaseRecorder();
        Verifier.Report report = new Verifier(Repository.open(store, TestRepos.PASSWORD), m -> { }, phases)
                .verify(false, 2);
        assertTrue(report.ok(), report.errors().toString());
        assertEquals(List.of(new PhaseRecorder.Phase("reading index files", 0, "files", indexFiles),
                new PhaseRecorder.Phase("reading snapshot objects", 0, "snapshots", 0),
                new PhaseRecorder.Phase("checking snapshots", 0, "snapshots", 0),
                new PhaseRecorder.Phase("checking pack headers", packs, "packs", packs)), phases.phases());
    }
}
