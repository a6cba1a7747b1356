package dev.ferry.repo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.crypto.Hashes;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;

class IndexProperties {

    static PackId randomPack(Random rnd) {
        return PackId.of(TestRepos.random(rnd, 32));
    }

    static PackEntry randomEntry(Random rnd, long offset) {
        return new PackEntry(rnd.nextBoolean() ? BlobType.DATA : BlobType.METADATA, offset, 1 + rnd.nextInt(1 << 22),
                rnd.nextInt(1 << 22), ChunkId.of(TestRepos.random(rnd, 32)));
    }

    @Property(tries = 30)
    void chunkIndexAgreesWithAMapModel(@ForAll long seed, @ForAll @IntRange(min = 0, max = 20_000) int n) {
        Random rnd = new Random(seed);
        ChunkIndex index = new ChunkIndex();
        Map<ChunkId, ChunkIndex.Location> model = new HashMap<>();
        List<PackId> packs = List.of(randomPack(rnd), randomPack(rnd), randomPack(rnd));
        for (int i = 0; i < n; i++) {
            PackId pack = packs.get(rnd.nextInt(packs.size()));
            PackEntry e = randomEntry(rnd, rnd.nextInt(1 << 30));
            boolean added = index.add(pack, e);
            assertEquals(!model.containsKey(e.id()), added);
            model.putIfAbsent(e.id(), new ChunkIndex.Location(pack, e));
            if (i % 7 == 0 && !model.isEmpty()) {
                // re-adding a known id in another pack keeps the first place
                ChunkIndex.Location first = model.get(e.id());
                assertFalse(index.add(packs.get(0), new PackEntry(BlobType.DATA, 1, 2, 3, e.id())));
                assertEquals(first, index.lookup(e.id()).orElseThrow());
            }
        }
        assertEquals(model.size(), index.size());
        for (Map.Entry<ChunkId, ChunkIndex.Location> m : model.entrySet()) {
            assertEquals(m.getValue(), index.lookup(m.getKey()).orElseThrow());
        }
        assertFalse(index.contains(ChunkId.of(TestRepos.random(rnd, 32))));
        int[] visited = {0};
        index.forEach((p, e) -> {
            assertEquals(model.get(e.id()), new ChunkIndex.Location(p, e));
            visited[0]++;
        });
        assertEquals(model.size(), visited[0]);
    }

    @Property(tries = 50)
    void indexFilesRoundTrip(@ForAll long seed, @ForAll @IntRange(min = 0, max = 5) int nPacks,
                             @ForAll @IntRange(min = 0, max = 3) int nSupersedes) {
        Random rnd = new Random(seed);
        Map<PackId, List<PackEntry>> packs = new LinkedHashMap<>();
        for (int p = 0; p < nPacks; p++) {
            List<PackEntry> es = new ArrayList<>();
            int n = rnd.nextInt(100);
            for (int i = 0; i < n; i++) {
                es.add(randomEntry(rnd, i * 1000L));
            }
            packs.put(randomPack(rnd), es);
        }
        List<String> sup = new ArrayList<>();
        for (int i = 0; i < nSupersedes; i++) {
            sup.add(Hashes.hex(TestRepos.random(rnd, 32)));
        }
        IndexFile f = new IndexFile(sup, packs);
        assertEquals(f, IndexFile.decode(f.encode()));
    }

    @Property(tries = 50)
    void truncatedOrExtendedIndexPlaintextIsRejected(@ForAll long seed, @ForAll @IntRange(min = 1, max = 500) int cut) {
        Random rnd = new Random(seed);
        Map<PackId, List<PackEntry>> packs = new LinkedHashMap<>();
        packs.put(randomPack(rnd), List.of(randomEntry(rnd, 0), randomEntry(rnd, 100)));
        byte[] plain = new IndexFile(List.of(), packs).encode();
        int keep = Math.max(0, plain.length - cut);
        assertThrows(IllegalArgumentException.class, () -> IndexFile.decode(java.util.Arrays.copyOf(plain, keep)));
        assertThrows(IllegalArgumentException.class,
                () -> IndexFile.decode(java.util.Arrays.copyOf(plain, plain.length + cut)));
    }

    @Property(tries = 20)
    void sealedIndexChecksNameAndContent(@ForAll long seed, @ForAll @IntRange(min = 1, max = 200) int cut)
            throws Exception {
        Random rnd = new Random(seed);
        MasterKey key = MasterKey.generate();
        Map<PackId, List<PackEntry>> packs = new LinkedHashMap<>();
        packs.put(randomPack(rnd), List.of(randomEntry(rnd, 0)));
        IndexFile f = new IndexFile(List.of(), packs);
        byte[] sealed = f.seal(key.aead(), new Envelope(3));
        String name = IndexFile.objectName(sealed);
        assertEquals(f, IndexFile.open(name, sealed, key.aead()));
        byte[] truncated = java.util.Arrays.copyOf(sealed, Math.max(0, sealed.length - cut));
        RepositoryException.Damaged e = assertThrows(RepositoryException.Damaged.class,
                () -> IndexFile.open(name, truncated, key.aead()));
        assertTrue(e.getMessage().contains("does not match its name"), e.getMessage());
        // a file renamed to match its new content still fails authentication
        assertThrows(RepositoryException.Damaged.class,
                () -> IndexFile.open(IndexFile.objectName(truncated), truncated, key.aead()));
        assertThrows(RepositoryException.Damaged.class,
                () -> IndexFile.open(name, sealed, MasterKey.generate().aead()));
    }
}
