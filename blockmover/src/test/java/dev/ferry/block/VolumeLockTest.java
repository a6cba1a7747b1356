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

    /**
     * A refused second attempt within a process must not drop the first holder's record lock: closing any
     * descriptor of the lock file would release every lock the process holds on it. Another process checks it.
     */
    @Test
    void aRefusedSecondAttemptInTheSameProcessKeepsTheFirstLock() throws Exception {
        String volume = "pool/" + UUID.randomUUID();
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Process holder = new ProcessBuilder(java.toString(), "-cp", System.getProperty("java.class.path"),
                Holder.class.getName(), volume, "second").redirectError(ProcessBuilder.Redirect.INHERIT).start();
        try {
            BufferedReader out = new BufferedReader(new InputStreamReader(holder.getInputStream(), StandardCharsets.UTF_8));
            assertEquals("held", out.readLine());
            String refusal = out.readLine();
            assertTrue(refusal.startsWith("refused: ") && refusal.contains("job one"), refusal);
            // the holder's lock is still in force for everybody else on the node
            IOException e = assertThrows(IOException.class, () -> VolumeLock.acquire("test", volume, "job two"));
            assertTrue(e.getMessage().contains("pid " + holder.pid()), e.getMessage());
        } finally {
            holder.destroyForcibly();
            holder.waitFor(30, TimeUnit.SECONDS);
        }
    }

    @Test
    void aSecondHolderInTheProcessIsRefusedByName() throws IOException {
        String volume = "pool/" + UUID.randomUUID();
        try (VolumeLock a = VolumeLock.acquire("test", volume, "restore job r1")) {
            IOException e = assertThrows(IOException.class, () -> VolumeLock.acquire("test", volume, "job r2"));
            assertTrue(e.getMessage().contains("restore job r1"), e.getMessage());
            a.close();
            a.close(); // a second close changes nothing
            VolumeLock.acquire("test", volume, "job r2").close();
        }
    }

    /**
     * Holds the lock of volume {@code args[0]} until killed; with a second argument, then tries the same lock once
     * more as another holder and prints the refusal.
     */
    public static final class Holder {
        public static void main(String[] args) throws Exception {
            VolumeLock l = VolumeLock.acquire("test", args[0], "job one");
            System.out.println("held");
            System.out.flush();
            if (args.length > 1) {
                try {
                    VolumeLock.acquire("test", args[0], "job two").close();
                    System.out.println("not refused");
                } catch (IOException e) {
                    System.out.println("refused: " + e.getMessage());
                }
                System.out.flush();
            }
            Thread.sleep(TimeUnit.MINUTES.toMillis(5));
            l.close();
        }
    }
}
