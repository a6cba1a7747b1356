package dev.ferry.zfs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** $FERRY_ZFS_TIMEOUT bounds every zfs command, and a hung one is killed with what it started (no ZFS needed). */
class ZfsTimeoutTest {
    @TempDir
    Path tmp;

    @Test
    void aHungZfsCommandIsKilledAfterFerryZfsTimeout() throws Exception {
        Path script = tmp.resolve("zfs");
        Files.writeString(script, "#!/bin/sh\necho 'zfs: thinking' >&2\nsleep 64 &\nwait\n");
        Files.setPosixFilePermissions(script, PosixFilePermissions.fromString("rwx------"));
        Zfs zfs = Zfs.fromEnvironment(Map.of("FERRY_ZFS", script.toString(), "FERRY_ZFS_TIMEOUT", "1"));
        assertEquals(Duration.ofSeconds(1), zfs.timeout());
        long t0 = System.nanoTime();
        IOException e = assertThrows(IOException.class, () -> zfs.run("list", "-H"));
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(ms < 6_000, "took " + ms + " ms");
        assertTrue(e.getMessage().contains(script + " list -H' did not finish within 1 s")
                && e.getMessage().contains("zfs: thinking"), e.getMessage());
        Thread.sleep(200);
        assertTrue(ProcessHandle.allProcesses().noneMatch(h -> h.info().commandLine().orElse("").equals("sleep 64")));
    }

    @Test
    void aFailedZfsCommandIsNamedWithItsStatusAndStderr() throws Exception {
        Path script = tmp.resolve("zfs");
        Files.writeString(script, "#!/bin/sh\necho \"cannot open '$2': dataset does not exist\" >&2\nexit 1\n");
        Files.setPosixFilePermissions(script, PosixFilePermissions.fromString("rwx------"));
        Zfs zfs = Zfs.fromEnvironment(Map.of("FERRY_ZFS", script.toString()));
        ZfsException e = assertThrows(ZfsException.class, () -> zfs.run("get", "tank/x"));
        assertTrue(e.notFound());
        assertEquals(1, e.exitCode());
        assertTrue(e.getMessage().contains("get tank/x' failed (exit 1): cannot open 'tank/x'"), e.getMessage());
        assertEquals(null, zfs.get("tank/x"));
        assertThrows(IllegalArgumentException.class, () -> Zfs.fromEnvironment(Map.of("FERRY_ZFS_TIMEOUT", "soon")));
        IOException missing = assertThrows(IOException.class,
                () -> Zfs.fromEnvironment(Map.of("FERRY_ZFS", tmp.resolve("none").toString())).run("list"));
        assertTrue(missing.getMessage().contains("set FERRY_ZFS"), missing.getMessage());
    }
}
