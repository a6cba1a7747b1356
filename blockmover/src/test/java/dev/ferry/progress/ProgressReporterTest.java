package dev.ferry.progress;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class ProgressReporterTest {
    private static final long MIB = 1 << 20;
    private static final long GIB = 1 << 30;
    private static final String NL = System.lineSeparator();

    private long now;
    private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    private final PrintWriter out = new PrintWriter(new java.io.OutputStreamWriter(bytes, UTF_8), true);

    private ProgressReporter reporter(long total, boolean terminal) {
        return reporter(total, terminal, Duration.ofSeconds(10));
    }

    private ProgressReporter reporter(long total, boolean terminal, Duration interval) {
        return new ProgressReporter("backup", total, out, terminal, interval, () -> now);
    }

    private void at(double seconds) {
        now = Math.round(seconds * 1e9);
    }

    private String output() {
        return bytes.toString(UTF_8);
    }

    @Test
    void plainLineShowsPercentSizesRateAndEta() {
        ProgressReporter r = reporter(2 * GIB, false);
        r.advance(1000 * MIB);
        at(10);
        r.tick();
        // 1048 MiB left at 100 MiB/s
        assertEquals("backup: 48% 1000.0 MiB of 2.0 GiB, 100.0 MiB/s, ETA 10s" + NL, output());
    }

    @Test
    void plainLinesComeOnlyEveryInterval() {
        ProgressReporter r = reporter(10 * GIB, false);
        List<Integer> printedAt = new ArrayList<>();
        for (int s = 1; s <= 25; s++) {
            at(s);
            r.advance(10 * MIB);
            int before = output().length();
            r.tick();
            if (output().length() > before) {
                printedAt.add(s);
            }
        }
        assertEquals(List.of(10, 20), printedAt);
        assertFalse(output().contains("\r"));
        assertFalse(output().contains("["));
    }

    @Test
    void plainIntervalIsConfigurable() {
        ProgressReporter r = reporter(10 * GIB, false, Duration.ofSeconds(3));
        List<Integer> printedAt = new ArrayList<>();
        for (int s = 1; s <= 10; s++) {
            at(s);
            int before = output().length();
            r.tick();
            if (output().length() > before) {
                printedAt.add(s);
            }
        }
        assertEquals(List.of(3, 6, 9), printedAt);
    }

    @Test
    void rateCoversOnlyTheLastFewSeconds() {
        ProgressReporter r = reporter(10 * GIB, false);
        for (int s = 1; s <= 30; s++) {
            at(s);
            r.advance(s <= 20 ? 10 * MIB : 100 * MIB);
            r.tick();
            if (s == 22) {
                // since the sample at 17 s: 3 s at 10 MiB/s and 2 s at 100 MiB/s
                assertTrue(r.render().contains(", 46.0 MiB/s,"), r.render());
            }
        }
        // the average since the start would be 40 MiB/s
        assertTrue(r.render().contains(", 100.0 MiB/s,"), r.render());
    }

    @Test
    void etaFollowsRemainingBytesOverRate() {
        ProgressReporter r = reporter(66 * MIB, false);
        r.advance(MIB);
        at(1);
        assertEquals("backup: 1% 1.0 MiB of 66.0 MiB, 1.0 MiB/s, ETA 1m05s", r.render());
    }

    @Test
    void etaIsUnknownBeforeTimePassesAndWhileStalled() {
        ProgressReporter r = reporter(GIB, false);
        assertEquals("backup: 0% 0 B of 1.0 GiB, --/s, ETA --", r.render());
        at(10);
        assertEquals("backup: 0% 0 B of 1.0 GiB, 0 B/s, ETA --", r.render());
    }

    @Test
    void durations() {
        assertEquals("0s", ProgressReporter.duration(0));
        assertEquals("59s", ProgressReporter.duration(59));
        assertEquals("1m00s", ProgressReporter.duration(60));
        assertEquals("1m05s", ProgressReporter.duration(65));
        assertEquals("59m59s", ProgressReporter.duration(3599));
        assertEquals("1h00m", ProgressReporter.duration(3600));
        assertEquals("2h03m", ProgressReporter.duration(2 * 3600 + 3 * 60 + 59));
        assertEquals("3d04h", ProgressReporter.duration(3 * 86400 + 4 * 3600 + 1));
    }

    @Test
    void terminalRedrawsOneLineAndClearsWhatAShorterLineLeaves() {
        ProgressReporter r = reporter(GIB, true);
        r.advance(100 * MIB);
        at(1);
        r.tick();
        String first = "backup [##....................]   9% 100.0 MiB/1.0 GiB 100.0 MiB/s ETA 9s";
        assertEquals("\r" + first, output());

        r.advance(924 * MIB);
        at(2);
        r.tick();
        String second = "backup [######################] 100% 1.0 GiB/1.0 GiB 512.0 MiB/s ETA 0s";
        assertEquals(first.length() - 2, second.length());
        assertEquals("\r" + first + "\r" + second + "  ", output());

        r.close();
        String last = "backup [######################] 100% 1.0 GiB/1.0 GiB 512.0 MiB/s took 2s";
        assertEquals("\r" + first + "\r" + second + "  " + "\r" + last + NL, output());
    }

    @Test
    void terminalDrawsOnEveryTick() {
        ProgressReporter r = reporter(GIB, true);
        for (int i = 1; i <= 5; i++) {
            at(i * 0.2);
            r.tick();
        }
        assertEquals(5, output().chars().filter(c -> c == '\r').count());
        assertFalse(output().contains("\n"));
    }

    @Test
    void terminalCloseDrawsFinalStateOnceAndEndsTheLine() {
        ProgressReporter r = reporter(4 * MIB, true);
        r.advance(MIB);
        at(3);
        r.close();
        String expected = "\rbackup [#####.................]  25% 1.0 MiB/4.0 MiB 341.3 KiB/s took 3s" + NL;
        assertEquals(expected, output());
        r.close();
        r.tick();
        assertEquals(expected, output());
    }

    @Test
    void plainCloseIsQuietAfterAShortRun() {
        ProgressReporter r = reporter(GIB, false);
        r.advance(GIB);
        at(9);
        r.tick();
        r.close();
        assertEquals("", output());
    }

    @Test
    void plainCloseAddsAFinalLineAfterPeriodicOnes() {
        ProgressReporter r = reporter(GIB, false);
        r.advance(1000 * MIB);
        at(10);
        r.tick();
        r.advance(24 * MIB);
        at(16);
        r.close();
        r.close();
        assertEquals("backup: 97% 1000.0 MiB of 1.0 GiB, 100.0 MiB/s, ETA 1s" + NL
                + "backup: 100% 1.0 GiB of 1.0 GiB, 64.0 MiB/s, took 16s" + NL, output());
    }

    @Test
    void zeroTotalShowsBytesOnly() {
        ProgressReporter plain = reporter(0, false);
        ProgressReporter term = reporter(0, true);
        assertEquals("backup: 0 B, --/s", plain.render());
        plain.advance(5 * MIB);
        at(1);
        assertEquals("backup: 5.0 MiB, 5.0 MiB/s", plain.render());

        term.advance(5 * MIB);
        at(2);
        term.tick();
        term.close();
        assertEquals("\rbackup 5.0 MiB 2.5 MiB/s\rbackup 5.0 MiB 2.5 MiB/s took 2s" + NL, output());
    }

    @Test
    void totalCanBeSetOnceKnown() {
        ProgressReporter r = reporter(0, false);
        r.advance(5 * MIB);
        at(1);
        r.setTotal(10 * MIB);
        assertEquals(10 * MIB, r.totalBytes());
        assertEquals("backup: 50% 5.0 MiB of 10.0 MiB, 5.0 MiB/s, ETA 1s", r.render());
        assertThrows(IllegalArgumentException.class, () -> r.setTotal(-1));
    }


    @Test
    void filesAreShownOnceCountedWithTheirTotalWhenKnown() {
        ProgressReporter plain = reporter(0, false);
        ProgressReporter term = reporter(0, true);
        at(1);
        plain.advance(5 * MIB);
        plain.filesDone(3);
        assertEquals("backup: 5.0 MiB, 3 files, 5.0 MiB/s", plain.render());
        plain.total(10 * MIB, 12);
        plain.filesDone(1);
        assertEquals(4, plain.filesDone());
        assertEquals(12, plain.totalFiles());
        assertEquals("backup: 50% 5.0 MiB of 10.0 MiB, 4 of 12 files, 5.0 MiB/s, ETA 1s", plain.render());
        term.total(10 * MIB, 12);
        term.advance(5 * MIB);
        term.filesDone(4);
        assertEquals("backup [###########...........]  50% 5.0 MiB/10.0 MiB 4/12 files 5.0 MiB/s ETA 1s",
                term.render());
        assertThrows(IllegalArgumentException.class, () -> plain.total(1, -1));
    }
    @Test
    void moreBytesThanTheTotalStopAtAFullBar() {
        ProgressReporter r = reporter(MIB, true);
        r.advance(2 * MIB);
        at(1);
        assertEquals("backup [######################] 100% 2.0 MiB/1.0 MiB 2.0 MiB/s ETA 0s", r.render());
    }

    @Test
    void concurrentAdvancesSumExactly() throws Exception {
        ProgressReporter r = reporter(GIB, true);
        int threads = 8;
        int perThread = 100_000;
        CountDownLatch go = new CountDownLatch(1);
        List<Thread> workers = new ArrayList<>();
        for (int i = 0; i < threads; i++) {
            Thread t = new Thread(() -> {
                try {
                    go.await();
                } catch (InterruptedException e) {
                    throw new IllegalStateException(e);
                }
                for (int n = 0; n < perThread; n++) {
                    r.advance(3);
                }
            });
            t.start();
            workers.add(t);
        }
        go.countDown();
        for (int i = 0; i < 50; i++) {
            r.tick(); // drawing while the workers count must not disturb the count
        }
        for (Thread t : workers) {
            t.join();
        }
        assertEquals(3L * threads * perThread, r.bytesDone());
    }

    @Test
    void closeNeverThrows() {
        OutputStream broken = new OutputStream() {
            @Override
            public void write(int b) {
                throw new UncheckedIOException(new java.io.IOException("gone"));
            }
        };
        ProgressReporter r = new ProgressReporter("restore", GIB, new PrintWriter(broken), true,
                Duration.ofSeconds(10), () -> now);
        assertThrows(UncheckedIOException.class, r::tick);
        assertDoesNotThrow(r::close);

        long[] calls = {0};
        ProgressReporter badClock = new ProgressReporter("restore", GIB, out, true, Duration.ofSeconds(10), () -> {
            if (calls[0]++ > 0) {
                throw new IllegalStateException("clock");
            }
            return 0;
        });
        assertDoesNotThrow(badClock::close);
    }

    @Test
    void rejectsBadArguments() {
        assertThrows(IllegalArgumentException.class, () -> reporter(-1, false));
        assertThrows(IllegalArgumentException.class, () -> reporter(1, false, Duration.ZERO));
        assertThrows(IllegalArgumentException.class, () -> reporter(1, false, Duration.ofSeconds(-1)));
    }

    private ProgressReporter prune(boolean terminal) {
        return new ProgressReporter("prune", 0, out, terminal, Duration.ofSeconds(10), () -> now);
    }

    @Test
    void aPhaseCountsItemsTowardItsOwnTotal() {
        ProgressReporter r = prune(false);
        r.phase("deleting", 40, "packs");
        r.advance(20);
        at(4);
        assertEquals("prune deleting: 50% 20 of 40 packs, 5.0 packs/s, ETA 4s", r.render());
        assertEquals("deleting", r.phaseLabel());
        assertEquals(20, r.bytesDone());
        assertEquals(40, r.totalBytes());
    }

    @Test
    void aNewPhaseCountsFromZeroWithItsOwnTotalRateAndEta() {
        ProgressReporter r = prune(false);
        r.phase("repacking 2 packs", 10 * MIB);
        r.advance(5 * MIB);
        at(1);
        assertEquals("prune repacking 2 packs: 50% 5.0 MiB of 10.0 MiB, 5.0 MiB/s, ETA 1s", r.render());
        r.phase("deleting", 4, "packs");
        at(3);
        r.advance(2);
        // the rate counts only the 2 s of this phase, not the bytes of the one before
        assertEquals("prune deleting: 50% 2 of 4 packs, 1.0 packs/s, ETA 2s", r.render());
        assertEquals(2, r.bytesDone());
    }

    @Test
    void aPhaseWithoutTotalShowsItsCountAndRate() {
        ProgressReporter r = prune(false);
        ProgressReporter t = prune(true);
        r.phase("listing", 0, "objects");
        t.phase("listing", 0, "objects");
        r.advance(1200);
        t.advance(1200);
        at(4);
        assertEquals("prune listing: 1200 objects, 300 objects/s", r.render());
        assertEquals("prune listing 1200 objects 300 objects/s", t.render());
    }

    @Test
    void terminalEndsEachDrawnPhaseWithItsFinalLineAndLeavesNoneForPhasesNeverDrawn() {
        ProgressReporter r = prune(true);
        at(0.2);
        r.tick(); // before the first phase: nothing counted yet
        at(0.3);
        r.phase("listing", 0, "objects");
        r.advance(5);
        at(0.5);
        r.tick();
        at(1.5);
        r.phase("reading snapshots", 3, "snapshots");
        r.advance(3);
        at(1.6);
        r.phase("deleting", 2, "packs"); // the snapshots were read between two draws: no line for them
        r.advance(2);
        at(2.6);
        r.close();
        assertEquals("\rprune 0 B 0 B/s"
                + "\rprune listing 5 objects 25 objects/s"
                + "\rprune listing 5 objects 4.2 objects/s took 1s" + NL
                + "\rprune deleting [######################] 100% 2/2 packs 2.0 packs/s took 1s" + NL, output());
    }

    @Test
    void plainEndsAPhaseWithAFinalLineOnlyAfterLinesOfThatPhase() {
        ProgressReporter r = prune(false);
        r.phase("reading snapshots", 100, "snapshots");
        r.advance(50);
        at(10);
        r.tick();
        r.advance(50);
        at(12);
        r.phase("deleting", 3, "packs");
        r.advance(3);
        at(13);
        r.tick();
        r.close();
        assertEquals("prune reading snapshots: 50% 50 of 100 snapshots, 5.0 snapshots/s, ETA 10s" + NL
                + "prune reading snapshots: 100% 100 of 100 snapshots, 8.3 snapshots/s, took 12s" + NL, output());
    }

    @Test
    void phasesCheckTheirArgumentsAndEndWithTheReporter() {
        ProgressReporter r = prune(false);
        assertThrows(IllegalArgumentException.class, () -> r.phase("x", -1, "packs"));
        assertThrows(NullPointerException.class, () -> r.phase(null, 1, "packs"));
        r.close();
        r.phase("deleting", 4, "packs");
        assertEquals(null, r.phaseLabel(), "a closed reporter starts no phase");
        assertEquals("", output());
    }

    @Test
    void startedReporterRunsADaemonThreadThatCloseStops() throws Exception {
        ProgressReporter r = ProgressReporter.start("backup", GIB, out, false, Duration.ofHours(1));
        Thread worker = r.worker();
        assertNotNull(worker);
        assertTrue(worker.isDaemon());
        assertTrue(worker.isAlive());
        r.advance(MIB);
        r.close();
        worker.join(TimeUnit.SECONDS.toMillis(30));
        assertFalse(worker.isAlive());
        assertEquals("", output()); // no line is due within the hour, so a short run prints nothing
    }

    @Test
    void startedTerminalReporterEndsWithTheFinalLine() throws Exception {
        ProgressReporter r = ProgressReporter.start("restore", MIB, out, true);
        Thread worker = r.worker();
        r.advance(MIB);
        r.close();
        worker.join(TimeUnit.SECONDS.toMillis(30));
        assertFalse(worker.isAlive());
        String text = output();
        assertTrue(text.endsWith(NL), text);
        text = text.substring(0, text.length() - NL.length());
        String last = text.substring(text.lastIndexOf('\r') + 1);
        assertTrue(last.matches("restore \\[#{22}] 100% 1\\.0 MiB/1\\.0 MiB .+/s took \\d+s *"), last);
    }
}
