package dev.ferry.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.roaringbitmap.RoaringBitmap;

class ChangedRangesTest {
    @TempDir
    Path dir;

    @Test
    void rangesBecomeEveryBlockTheyTouchClippedToTheVolume() {
        ChangedRanges r = new ChangedRanges()
                .add(0, 1)              // block 0
                .add(4095, 2)           // blocks 0 and 1 (4 KiB blocks)
                .add(8192, 4096)        // exactly block 2
                .add(20_000, 0)         // empty: nothing
                .add(40_000, 1 << 20);  // 9 .. end of a 48 KiB volume (block 11)
        assertEquals(RoaringBitmap.bitmapOf(0, 1, 2, 9, 10, 11), r.toBlocks(4096, 48 << 10));
        assertEquals(RoaringBitmap.bitmapOf(0), r.toBlocks(1 << 20, 48 << 10), "one 1 MiB block holds it all");
        assertTrue(new ChangedRanges().toBlocks(4096, 1 << 20).isEmpty());
        assertThrows(IllegalArgumentException.class, () -> new ChangedRanges().add(-1, 5));
        assertThrows(IllegalArgumentException.class, () -> new ChangedRanges().add(Long.MAX_VALUE, 5));
        // "from here to the end" as engines say it (ZFS FREE with length -1): no overflow, clipped to the volume
        assertEquals(RoaringBitmap.bitmapOf(10, 11),
                new ChangedRanges().add(40_960, Long.MAX_VALUE - 40_960).toBlocks(4096, 48 << 10));
    }

    @Test
    void parsesTheFileFormatAndNamesTheBadLine() throws Exception {
        Path f = dir.resolve("c");
        Files.writeString(f, "# comment\n\n  0 10 \n4096\t4096\n");
        assertEquals(RoaringBitmap.bitmapOf(0, 1), ChangedRanges.parse(f).toBlocks(4096, 1 << 20));
        Files.writeString(f, "0 10\n1 2 3\n");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ChangedRanges.parse(f));
        assertTrue(e.getMessage().contains("line 2"), e.getMessage());
        Files.writeString(f, "10 -1\n");
        assertThrows(IllegalArgumentException.class, () -> ChangedRanges.parse(f));
    }
}
