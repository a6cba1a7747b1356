package dev.ferry.block;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The node-local volume lock, within one process and between two. */
class VolumeLockTest {
    @Test
    void oneHolderPerVolumeWithinAProcess() throws IOException {
        String volume = "pool/" + UUID.randomUUID();
        try (VolumeLock a = VolumeLock.acquire("test", volume)) {
            IOException e = assertThrows(IOException.class, () -> VolumeLock.acquire("test", volume));
            assertTrue(e.getMessage().contains("another backup of test volume " + volume), e.getMessage());
            assertTrue(e.getMessage().contains("pid " + ProcessHandle.current().pid()), e.getMessage());
            try (VolumeLock other = VolumeLock.acquire("test", volume + "-other");
                 VolumeLock otherEngine = VolumeLock.acquire("test2", volume)) {
                // other volumes, and the same name in another engine, are other locks
            }
        }
        VolumeLock.acquire("test", volume).close(); // free once released
    }

    @Test
    void aLockHeldByAnotherProcessRefusesUntilThatProcessEnds() throws Exception {
        String volume = "pool/" + UUID.randomUUID();
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Process holder = new ProcessBuilder(java.toString(), "-cp", System.getProperty("java.class.path"),
                Holder.class.getName(), volume).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        try {
            BufferedReader out = new BufferedReader(new InputStreamReader(holder.getInputStream(), StandardCharsets.UTF_8));
            assertEquals("held", out.readLine());
            IOException e = assertThrows(IOException.class, () -> VolumeLock.acquire("test", volume));
            assertTrue(e.getMessage().contains("pid " + holder.pid()), e.getMessage());
            holder.destroyForcibly(); // however the holder ends, the lock goes with it
            assertTrue(holder.waitFor(30, TimeUnit.SECONDS));
            VolumeLock.acquire("test", volume).close();
        } finally {
            holder.destroyForcibly();
        }
    }

    /** Holds the lock of volume {@code args[0]} until killed. */
    public static final class Holder {
        public static void main(String[] args) throws Exception {
            VolumeLock l = VolumeLock.acquire("test", args[0]);
            System.out.println("held");
            System.out.flush();
            Thread.sleep(TimeUnit.MINUTES.toMillis(5));
            l.close();
        }
    }
}
