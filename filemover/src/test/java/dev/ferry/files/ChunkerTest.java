package dev.ferry.files;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
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

    /** The two-bytes-a-step loop must cut exactly where the plain definition (one byte a step) does. */
    @Test
    void cutPointsMatchTheDefinition() {
        long[] gear = Chunker.gearTable(MasterKey.generate());
        Chunker c = new Chunker(gear);
        Random rnd = new Random(4);
        for (int round = 0; round < 40; round++) {
            byte[] data = new byte[Chunker.MIN_SIZE + rnd.nextInt(Chunker.MAX_SIZE)];
            rnd.nextBytes(data);
            int off = 0;
            while (off < data.length) {
                int n = c.cut(data, off, data.length - off);
                assertEquals(reference(gear, data, off, data.length - off), n);
                off += n;
            }
        }
    }

    private static int reference(long[] g, byte[] buf, int off, int len) {
        int n = Math.min(len, Chunker.MAX_SIZE);
        if (n <= Chunker.MIN_SIZE) {
            return n;
        }
        long h = 0;
        for (int i = Chunker.MIN_SIZE; i < n; i++) {
            h = (h << 1) + g[buf[off + i] & 0xff];
            int bits = i < Chunker.AVG_SIZE ? Chunker.BITS_SMALL : Chunker.BITS_LARGE;
            if ((h & (-1L << (64 - bits))) == 0) {
                return i + 1;
            }
        }
        return n;
    }

    @Test
    void gearTableDependsOnTheKeyAndIsStable() {
        MasterKey k = MasterKey.generate();
        assertArrayEquals(Chunker.gearTable(k), Chunker.gearTable(MasterKey.fromMaterial(k.material())));
        assertNotEquals(Chunker.gearTable(k)[0], Chunker.gearTable(MasterKey.generate())[0]);
    }

    @Test
    void largePageAlignedFilesGetTheBlocksOfABlockBackup() {
        assertEquals(dev.ferry.block.BlockBackup.DEFAULT_BLOCK_SIZE, Chunker.FIXED_SIZE);
        assertTrue(Chunker.fixedPieces(64L << 20));
        assertTrue(Chunker.fixedPieces((64L << 20) + 4096));
        assertTrue(Chunker.fixedPieces(10L << 30));
        assertFalse(Chunker.fixedPieces((64L << 20) - 4096), "under the minimum");
        assertFalse(Chunker.fixedPieces((64L << 20) + 512), "not a multiple of 4 KiB: a text or archive file");
        assertFalse(Chunker.fixedPieces((1L << 30) + 1));
        assertFalse(Chunker.fixedPieces(4096));
    }
}
