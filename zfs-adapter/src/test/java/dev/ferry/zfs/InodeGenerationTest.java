package dev.ferry.zfs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.OptionalLong;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A file's generation through FS_IOC_GETVERSION: stable for one file, new for a file made again. */
class InodeGenerationTest {
    @TempDir
    Path dir;

    @Test
    void aFileMadeAgainHasANewGeneration() throws Exception {
        Path f = Files.writeString(dir.resolve("vol.img"), "one");
        OptionalLong g1 = InodeGeneration.of(f);
        Assumptions.assumeTrue(g1.isPresent(), "the file system of " + dir + " has no FS_IOC_GETVERSION");
        Files.writeString(f, "changed in place");
        assertEquals(g1, InodeGeneration.of(f), "writing a file keeps its generation");
        Files.delete(f);
        Files.writeString(f, "two");
        OptionalLong g2 = InodeGeneration.of(f);
        assertTrue(g2.isPresent());
        assertNotEquals(g1.getAsLong(), g2.getAsLong());
    }

    @Test
    void noAnswerIsNoGuess() throws Exception {
        assertEquals(OptionalLong.empty(), InodeGeneration.of(dir.resolve("missing")));
        Files.createSymbolicLink(dir.resolve("link"), Files.writeString(dir.resolve("target"), "x"));
        assertEquals(OptionalLong.empty(), InodeGeneration.of(dir.resolve("link")), "symbolic links are not followed");
    }
}
