package dev.ferry.files;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.repo.MasterKey;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

class ChunkerTest {
    private static List<String> chunks(Chunker c, byte[] data, List<Integer> sizes) throws Exception {
        List<String> out = new ArrayList<>();
        java.security.MessageDigest md = java.security.MessageDigest.getInstance("SHA-256");
        int off = 0;
        while (off < data.length) {
            int n = c.cut(data, off, data.length - off);
            sizes.add(n);
            md.update(data, off, n);
            out.add(java.util.HexFormat.of().formatHex(md.digest()));
            off += n;
        }
        return out;
    }

    @Test
    void sizesStayWithinBoundsAndCoverTheData() throws Exception {
        Chunker c = Chunker.forKey(MasterKey.generate());
        byte[] data = new byte[48 << 20];
        new Random(1).nextBytes(data);
        List<Integer> sizes = new ArrayList<>();
        chunks(c, data, sizes);
        long sum = 0;
        for (int i = 0; i < sizes.size(); i++) {
            int s = sizes.get(i);
            sum += s;
            assertTrue(s <= Chunker.MAX_SIZE, "chunk over the maximum: " + s);
            if (i < sizes.size() - 1) {
                assertTrue(s >= Chunker.MIN_SIZE, "chunk under the minimum: " + s);
            }
        }
        assertEquals(data.length, sum);
        double avg = (double) data.length / sizes.size();
        assertTrue(avg > Chunker.MIN_SIZE && avg < 2.5 * Chunker.AVG_SIZE, "average chunk " + avg);
    }

    @Test
    void boundariesSurviveAnInsertionAtTheStart() throws Exception {
        Chunker c = Chunker.forKey(MasterKey.generate());
        byte[] data = new byte[40 << 20];
        new Random(2).nextBytes(data);
        byte[] shifted = new byte[data.length + 1000];
        new Random(3).nextBytes(shifted);
        System.arraycopy(data, 0, shifted, 1000, data.length);
        List<String> a = chunks(c, data, new ArrayList<>());
        Set<String> b = new HashSet<>(chunks(c, shifted, new ArrayList<>()));
        long shared = a.stream().filter(b::contains).count();
        assertTrue(shared >= a.size() - 2, shared + " of " + a.size() + " chunks shared after inserting 1000 bytes");
    }

    @Test
    void gearTableDependsOnTheKeyAndIsStable() {
        MasterKey k = MasterKey.generate();
        assertArrayEquals(Chunker.gearTable(k), Chunker.gearTable(MasterKey.fromMaterial(k.material())));
        assertNotEquals(Chunker.gearTable(k)[0], Chunker.gearTable(MasterKey.generate())[0]);
    }
}
