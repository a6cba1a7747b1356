package dev.ferry.util;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.job.Cancellation;
import dev.ferry.job.CancelledException;
import java.io.IOException;
import java.io.InputStream;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Child processes run by Ferry end when they should: on timeout, on cancel, with their whole process tree. */
class ChildProcessTest {
    /** Waits until {@code h} has at least {@code n} descendants; returns them. */
    private static List<ProcessHandle> descendants(ProcessHandle h, int n) throws InterruptedException {
        for (int i = 0; i < 200; i++) {
            List<ProcessHandle> d = h.descendants().toList();
            if (d.size() >= n) {
                return d;
            }
            Thread.sleep(25);
        }
        throw new AssertionError("process " + h.pid() + " did not start " + n + " children");
    }

    private static void assertDead(ProcessHandle h) throws Exception {
        try {
            h.onExit().get(5, TimeUnit.SECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            throw new AssertionError("process " + h.pid() + " " + h.info().commandLine().orElse("") + " still runs");
        }
        assertFalse(h.isAlive());
    }

    @Test
    void returnsOutputAndExitStatus() throws Exception {
        ChildProcess.Result r = ChildProcess.of("sh", "-c", "echo hello; echo oops >&2; exit 3").run();
        assertEquals(3, r.exitCode());
        assertEquals("hello\n", r.stdoutText());
        assertEquals("oops\n", r.stderrTail());
        ChildProcess.Failed f = assertThrows(ChildProcess.Failed.class, r::requireSuccess);
        assertTrue(f.getMessage().contains("sh -c") && f.getMessage().contains("exit 3")
                && f.getMessage().contains("oops"), f.getMessage());
    }

    @Test
    void timeoutKillsTheCommandAndSaysSo() throws Exception {
        long t0 = System.nanoTime();
        IOException e = assertThrows(IOException.class,
                () -> ChildProcess.of("sleep", "60").timeout(Duration.ofMillis(500)).run());
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(ms < 5_000, "took " + ms + " ms");
        assertTrue(e.getMessage().contains("'sleep 60' did not finish within 0.5 s"), e.getMessage());
        // no 'sleep 60' of this JVM is left
        assertTrue(ProcessHandle.current().children()
                .noneMatch(h -> h.info().commandLine().orElse("").contains("sleep 60")));
    }

    @Test
    void timeoutKillsGrandchildrenHoldingTheOutputOpen() throws Exception {
        long t0 = System.nanoTime();
        // the shell waits for a grandchild that holds stdout: killing the shell alone would leave run() blocked
        assertThrows(IOException.class, () -> ChildProcess.of("sh", "-c", "sleep 61 & wait")
                .timeout(Duration.ofMillis(500)).run());
        assertTrue((System.nanoTime() - t0) / 1_000_000 < 8_000);
        Thread.sleep(200);
        assertTrue(ProcessHandle.allProcesses().noneMatch(h -> h.info().commandLine().orElse("").equals("sleep 61")));
    }

    @Test
    void stderrTailIsBounded() throws Exception {
        // 100 000 lines on stderr, then a last one: only the end is kept, the last line in full
        ChildProcess.Result r = ChildProcess.of("sh", "-c",
                "i=0; while [ $i -lt 20000 ]; do echo \"line $i of noise\" >&2; i=$((i+1)); done; "
                        + "echo 'the real reason' >&2; exit 1").run();
        assertEquals(1, r.exitCode());
        assertTrue(r.stderrTail().length() <= ChildProcess.STDERR_TAIL_BYTES, "kept " + r.stderrTail().length());
        assertTrue(r.stderrTail().length() > ChildProcess.STDERR_TAIL_BYTES / 2);
        assertTrue(r.stderrTail().startsWith("..."));
        assertTrue(r.stderrTail().strip().endsWith("the real reason"));
        assertFalse(r.stderrTail().contains("line 0 of noise\n"));
    }

    @Test
    void cancelEndsABlockedStreamReadAndKillsChildAndGrandchild() throws Exception {
        Cancellation c = new Cancellation();
        // prints a little, then waits on a grandchild that keeps the pipe open and never writes
        ChildProcess.Output out = ChildProcess.of("sh", "-c", "printf start; sleep 62 & wait")
                .cancellation(c).stream();
        byte[] b = new byte[5];
        assertEquals(5, out.readNBytes(b, 0, 5));
        List<ProcessHandle> tree = descendants(out.handle(), 1);
        CompletableFuture<Throwable> reader = CompletableFuture.supplyAsync(() -> {
            try {
                out.read(new byte[100]);
                return null;
            } catch (Throwable e) {
                return e;
            }
        });
        Thread.sleep(300);
        assertFalse(reader.isDone(), "the read should block until the cancel");
        long t0 = System.nanoTime();
        c.cancel("stop now");
        Throwable e = reader.get(5, TimeUnit.SECONDS);
        assertTrue((System.nanoTime() - t0) / 1_000_000 < 5_000);
        assertInstanceOf(CancelledException.class, e);
        assertEquals("stop now", e.getMessage());
        assertDead(out.handle());
        for (ProcessHandle h : tree) {
            assertDead(h);
        }
        out.close();
    }

    @Test
    void cancelStopsAnEndlessProducer() throws Exception {
        Cancellation c = new Cancellation();
        ChildProcess.Output out = ChildProcess.of("sh", "-c", "yes ferry & wait").cancellation(c).stream();
        List<ProcessHandle> tree = descendants(out.handle(), 1);
        CompletableFuture<Long> reader = CompletableFuture.supplyAsync(() -> {
            long n = 0;
            byte[] buf = new byte[65536];
            try (InputStream in = out) {
                for (int r; (r = in.read(buf)) >= 0; ) {
                    n += r;
                }
                throw new AssertionError("the endless output ended after " + n + " bytes");
            } catch (CancelledException e) {
                return n;
            } catch (IOException e) {
                throw new AssertionError(e);
            }
        });
        Thread.sleep(500);
        long t0 = System.nanoTime();
        c.cancel("cancelled by the user");
        long read = reader.get(5, TimeUnit.SECONDS);
        assertTrue((System.nanoTime() - t0) / 1_000_000 < 5_000);
        assertTrue(read > 0);
        assertDead(out.handle());
        for (ProcessHandle h : tree) {
            assertDead(h);
        }
    }

    @Test
    void streamTimeoutEndsAReadThatWaitsTooLong() throws Exception {
        ChildProcess.Output out = ChildProcess.of("sh", "-c", "sleep 63 & wait")
                .timeout(Duration.ofMillis(600)).stream();
        List<ProcessHandle> tree = descendants(out.handle(), 1);
        long t0 = System.nanoTime();
        IOException e = assertThrows(IOException.class, () -> out.read(new byte[10]));
        assertTrue((System.nanoTime() - t0) / 1_000_000 < 5_000);
        assertTrue(e.getMessage().contains("did not finish within 0.6 s"), e.getMessage());
        for (ProcessHandle h : tree) {
            assertDead(h);
        }
        out.close();
    }

    @Test
    void streamReportsAFailureAtItsEnd() throws Exception {
        try (ChildProcess.Output out = ChildProcess.of("sh", "-c", "printf data; echo 'no such pool' >&2; exit 2")
                .stream()) {
            assertEquals("data", new String(out.readNBytes(4)));
            ChildProcess.Failed f = assertThrows(ChildProcess.Failed.class, out::read);
            assertEquals(2, f.exitCode());
            assertTrue(f.getMessage().contains("no such pool"), f.getMessage());
        }
    }

    @Test
    void anAlreadyCancelledJobStartsNothing() {
        Cancellation c = new Cancellation();
        c.cancel("gone");
        assertThrows(CancelledException.class, () -> ChildProcess.of("true").cancellation(c).run());
    }
}
