package dev.ferry.files;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The native calls java.nio lacks: their errors come back as errno values with names. */
class PosixTest {
    @TempDir
    Path dir;

    @Test
    void xattrErrorsAreErrnoValuesWithNames() throws Exception {
        Path missing = dir.resolve("missing");
        int err = Posix.setXattr(missing, "user.x", new byte[] {1});
        assertEquals(2, err, "ENOENT");
        assertTrue(Posix.errnoText(err).startsWith("ENOENT ("), Posix.errnoText(err));
        assertNull(Posix.xattrs(missing));
        assertEquals("errno 100000", Posix.errnoText(100000));
    }

    @Test
    void xattrsRoundTripOnThisFileSystemWhereItHasThem() throws Exception {
        Path f = Files.writeString(dir.resolve("f"), "x");
        assertNull(Posix.xattrs(f), "a new file has none");
        int err = Posix.setXattr(f, "user.ferry", "v".getBytes(StandardCharsets.UTF_8));
        org.junit.jupiter.api.Assumptions.assumeTrue(err == 0, "no user xattrs here: " + Posix.errnoText(err));
        Map<String, byte[]> x = Posix.xattrs(f);
        assertEquals(java.util.Set.of("user.ferry"), x.keySet());
        assertArrayEquals("v".getBytes(StandardCharsets.UTF_8), x.get("user.ferry"));
    }
}
