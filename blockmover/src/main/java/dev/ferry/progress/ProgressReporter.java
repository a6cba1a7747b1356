package dev.ferry.progress;

import dev.ferry.util.Sizes;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Locale;
import java.util.Objects;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.LongSupplier;

/**
 * Shows how far a long operation (a backup, a restore, a verify, a prune) has got.
 *
 * <p>On a terminal it redraws one line about every 200 ms:
 * <pre>backup [#########.............]  45% 920.0 MiB/2.0 GiB 210.3 MiB/s ETA 5s</pre>
 * and on {@link #close()} draws the final state and ends the line. Elsewhere (a log, a pipe) it prints a plain line
 * every interval (10 s by default):
 * <pre>backup: 45% 920.0 MiB of 2.0 GiB, 210.3 MiB/s, ETA 5s</pre>
 * and a final line at close only if it printed at least one before, so short runs in scripts stay quiet.
 *
 * <p>The rate is measured over the last {@value #RATE_WINDOW_SECONDS} seconds; the final line shows the average
 * over the whole run (or phase, below) and how long it took. A total of 0 means "not known": the line then shows only bytes and rate.
 *
 * <p>An operation in steps announces each with {@link #phase}: the line then names the phase, and counts bytes
 * or items from zero toward the phase's total, with its own rate and ETA:
 * <pre>prune deleting: 50% 20 of 40 packs, 8.0 packs/s, ETA 3s</pre>
 * Each phase ends as a whole run does: its final line is drawn (terminal) or printed (after plain lines of that
 * phase) before the next phase's line begins; a phase too short to have been shown leaves no line.
 * Operations that count files ({@link #filesDone}, {@link #total(long, long)}) add them after the bytes:
 * {@code 1234/50000 files} on a terminal, {@code 1234 of 50000 files} otherwise.
 *
 * <p>{@link #start} reports from a daemon thread. The public constructor starts no thread; whoever builds a reporter
 * that way calls {@link #tick()} when it wants a line drawn.
 */
public final class ProgressReporter implements ProgressListener, AutoCloseable {
    /** Interval between plain (non-terminal) lines, unless given. */
    public static final Duration DEFAULT_INTERVAL = Duration.ofSeconds(10);

    static final int RATE_WINDOW_SECONDS = 5;
    static final int BAR_WIDTH = 22;
    private static final long RATE_WINDOW_NANOS = TimeUnit.SECONDS.toNanos(RATE_WINDOW_SECONDS);
    private static final long TERMINAL_TICK_NANOS = TimeUnit.MILLISECONDS.toNanos(200);
    /** Plain mode samples the rate at least this often, between the lines it prints. */
    private static final long MAX_PLAIN_TICK_NANOS = TimeUnit.SECONDS.toNanos(1);
    private static final long MAX_ETA_SECONDS = TimeUnit.DAYS.toSeconds(100);

    private final String action;
    private final PrintWriter out;
    private final boolean terminal;
    private final long intervalNanos;
    private final long tickNanos;
    private final LongSupplier nanoTime;
    private final LongAdder done = new LongAdder();
    private final LongAdder files = new LongAdder();
    private volatile long total;
    /** The phase's name, or null before the first phase. */
    private volatile String label;
    /** What the phase counts: null for bytes, else a plural noun ("packs"). */
    private volatile String items;
    private volatile long totalFiles;

    // guarded by this
    private final ArrayDeque<Sample> samples = new ArrayDeque<>();
    private long phaseStartNanos;
    private long lastLineNanos;
    /** Plain lines printed in the current phase. */
    private int plainLines;
    /** Whether the current phase's line was drawn on the terminal. */
    private boolean drawn;
    private int drawnWidth;
    private boolean closed;
    private ScheduledExecutorService scheduler;
    private volatile Thread worker;

    private record Sample(long nanos, long bytes) {
    }

    /**
     * A reporter that starts no thread: nothing is printed except by {@link #tick()} and {@link #close()}.
     *
     * @param interval time between plain lines when not on a terminal
     * @param nanoTime the clock, in nanoseconds ({@code System::nanoTime})
     */
    public ProgressReporter(String action, long totalBytes, PrintWriter out, boolean terminal, Duration interval,
                            LongSupplier nanoTime) {
        this.action = Objects.requireNonNull(action, "action");
        this.out = Objects.requireNonNull(out, "out");
        this.nanoTime = Objects.requireNonNull(nanoTime, "nanoTime");
        if (interval.isNegative() || interval.isZero()) {
            throw new IllegalArgumentException("interval must be positive: " + interval);
        }
        this.terminal = terminal;
        this.intervalNanos = interval.toNanos();
        this.tickNanos = terminal ? TERMINAL_TICK_NANOS : Math.min(intervalNanos, MAX_PLAIN_TICK_NANOS);
        this.total = checkTotal(totalBytes);
        this.phaseStartNanos = nanoTime.getAsLong();
        this.lastLineNanos = phaseStartNanos;
        samples.add(new Sample(phaseStartNanos, 0));
    }

    /** Starts reporting from a daemon thread, with plain lines every {@link #DEFAULT_INTERVAL}. */
    public static ProgressReporter start(String action, long totalBytes, PrintWriter out, boolean terminal) {
        return start(action, totalBytes, out, terminal, DEFAULT_INTERVAL);
    }

    /** Starts reporting from a daemon thread, with plain lines every {@code interval} when not on a terminal. */
    public static ProgressReporter start(String action, long totalBytes, PrintWriter out, boolean terminal,
                                         Duration interval) {
        ProgressReporter r = new ProgressReporter(action, totalBytes, out, terminal, interval, System::nanoTime);
        r.startThread();
        return r;
    }

    private synchronized void startThread() {
        scheduler = Executors.newSingleThreadScheduledExecutor(task -> {
            Thread t = new Thread(task, "ferry-progress-" + action);
            t.setDaemon(true);
            worker = t;
            return t;
        });
        scheduler.scheduleAtFixedRate(this::tickQuietly, tickNanos, tickNanos, TimeUnit.NANOSECONDS);
    }

    private void tickQuietly() {
        try {
            tick();
        } catch (RuntimeException e) {
            // a progress line is not worth stopping the reporting, let alone the operation, for
        }
    }

    @Override
    public void advance(long amount) {
        done.add(amount);
    }

    /**
     * Ends the current phase (its final line, if it was shown) and starts counting {@code label} from zero toward
     * {@code total} (0: not known), in bytes when {@code items} is null, else in {@code items}. Does nothing once
     * closed.
     */
    @Override
    public synchronized void phase(String label, long total, String items) {
        Objects.requireNonNull(label, "label");
        long checked = checkTotal(total);
        if (closed) {
            return;
        }
        long now = nanoTime.getAsLong();
        try {
            endPhase(now);
        } catch (RuntimeException e) {
            // as in close(): a progress line is not worth failing the operation for
        }
        this.label = label;
        this.items = items;
        this.total = checked;
        done.reset();
        samples.clear();
        samples.add(new Sample(now, 0));
        phaseStartNanos = now;
        plainLines = 0;
        drawn = false;
    }

    /** Replaces the total, for operations that learn their size once under way; 0 means not known. */
    public void setTotal(long totalBytes) {
        total = checkTotal(totalBytes);
    }

    @Override
    public void total(long bytes, long files) {
        total = checkTotal(bytes);
        totalFiles = checkTotal(files);
    }

    @Override
    public void filesDone(long n) {
        files.add(n);
    }

    public long filesDone() {
        return files.sum();
    }

    public long totalFiles() {
        return totalFiles;
    }

    /** What the current phase (or the whole run, without phases) has counted: bytes, or items. */
    public long bytesDone() {
        return done.sum();
    }

    /** The current phase's total (or the whole run's, without phases); 0 when not known. */
    public long totalBytes() {
        return total;
    }

    /** The current phase's name, or null if no phase was announced. */
    public String phaseLabel() {
        return label;
    }

    /**
     * Samples the rate and prints a line if one is due: on a terminal every call redraws the line; otherwise a plain
     * line is printed once {@code interval} has passed since the last one (or the start). Does nothing once closed.
     */
    public synchronized void tick() {
        if (closed) {
            return;
        }
        long now = nanoTime.getAsLong();
        long bytes = done.sum();
        long total = this.total;
        double rate = windowRate(now, bytes);
        if (terminal) {
            draw(line(bytes, total, rate, eta(bytes, total, rate)));
            drawn = true;
        } else if (now - lastLineNanos >= intervalNanos - tickNanos / 2) {
            // the slack absorbs scheduling jitter, which would otherwise make a tick land just short of the interval
            out.println(line(bytes, total, rate, eta(bytes, total, rate)));
            out.flush();
            lastLineNanos = now;
            plainLines++;
        }
    }

    /** The line as it stands now (terminal or plain style, without {@code \r} or padding); samples the rate. */
    synchronized String render() {
        long now = nanoTime.getAsLong();
        long bytes = done.sum();
        long total = this.total;
        double rate = windowRate(now, bytes);
        return line(bytes, total, rate, eta(bytes, total, rate));
    }

    /**
     * Stops the thread, if any, and prints the final state: on a terminal always (then ends the line), otherwise only
     * if a plain line was printed before. Idempotent; never throws.
     */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            if (scheduler != null) {
                scheduler.shutdown();
            }
            if (!terminal && plainLines == 0) {
                return;
            }
            finalLine(nanoTime.getAsLong());
        } catch (RuntimeException e) {
            // the operation's own outcome matters more than its last progress line
        }
    }

    /**
     * Ends the line of the phase that is over: as {@link #close()} does, but on a terminal only if the phase was
     * drawn, and not for the nameless start of a run in phases where nothing was counted (the next phase's line
     * simply draws over it).
     */
    private void endPhase(long now) {
        if (terminal ? drawn && (label != null || done.sum() > 0) : plainLines > 0) {
            finalLine(now);
        }
    }

    /** The phase's (or run's) last line: its count, average rate and duration. */
    private void finalLine(long now) {
        long elapsed = now - phaseStartNanos;
        long bytes = done.sum();
        String line = line(bytes, total, rate(bytes, elapsed), "took " + duration(Math.round(elapsed / 1e9)));
        if (terminal) {
            draw(line);
            out.println();
            drawnWidth = 0;
        } else {
            out.println(line);
        }
        out.flush();
    }

    /** The reporting thread, if {@link #start} made one. */
    Thread worker() {
        return worker;
    }

    private void draw(String line) {
        StringBuilder b = new StringBuilder(Math.max(line.length(), drawnWidth) + 1).append('\r').append(line);
        for (int i = line.length(); i < drawnWidth; i++) {
            b.append(' ');
        }
        drawnWidth = line.length();
        out.print(b);
        out.flush();
    }

    /** Bytes per second since the last sample at least {@value #RATE_WINDOW_SECONDS} s old; NaN if no time passed. */
    private double windowRate(long now, long bytes) {
        if (samples.size() > 1 && samples.peekLast().nanos() == now) {
            samples.pollLast();
        }
        samples.addLast(new Sample(now, bytes));
        long cutoff = now - RATE_WINDOW_NANOS;
        while (samples.size() > 1) {
            Sample oldest = samples.pollFirst();
            if (samples.peekFirst().nanos() > cutoff) {
                samples.addFirst(oldest);
                break;
            }
        }
        Sample from = samples.peekFirst();
        return rate(bytes - from.bytes(), now - from.nanos());
    }

    private static double rate(long bytes, long nanos) {
        return nanos <= 0 ? Double.NaN : Math.max(0, bytes) * 1e9 / nanos;
    }

    private String line(long bytes, long total, double rate, String timing) {
        String items = this.items;
        String unit = items == null ? "" : " " + items;
        String rateText = (Double.isNaN(rate) ? "--" : items == null ? Sizes.human(Math.round(rate)) : count(rate))
                + unit + "/s";
        String label = this.label;
        StringBuilder b = new StringBuilder(80).append(action);
        if (label != null) {
            b.append(' ').append(label);
        }
        if (terminal) {
            if (total > 0) {
                double fraction = Math.min(1, Math.max(0, (double) bytes / total));
                int filled = (int) (fraction * BAR_WIDTH);
                b.append(" [").append("#".repeat(filled)).append(".".repeat(BAR_WIDTH - filled)).append("] ")
                        .append(String.format(Locale.ROOT, "%3d%%", (int) (fraction * 100))).append(' ')
                        .append(amount(bytes)).append('/').append(amount(total)).append(unit);
            } else {
                b.append(' ').append(amount(bytes)).append(unit);
            }
            String f = files("/");
            if (f != null) {
                b.append(' ').append(f);
            }
            b.append(' ').append(rateText);
            if (timing != null) {
                b.append(' ').append(timing);
            }
        } else {
            b.append(": ");
            if (total > 0) {
                double fraction = Math.min(1, Math.max(0, (double) bytes / total));
                b.append((int) (fraction * 100)).append("% ")
                        .append(amount(bytes)).append(" of ").append(amount(total)).append(unit);
            } else {
                b.append(amount(bytes)).append(unit);
            }
            String f = files(" of ");
            if (f != null) {
                b.append(", ").append(f);
            }
            b.append(", ").append(rateText);
            if (timing != null) {
                b.append(", ").append(timing);
            }
        }
        return b.toString();
    }

    /** Bytes as a size ("1.5 MiB"), items as a number. */
    private String amount(long n) {
        return items == null ? Sizes.human(n) : Long.toString(n);
    }

    /** An item rate: one decimal below 10 a second ("2.5"), whole numbers above ("42"). */
    private static String count(double rate) {
        return rate < 10 ? String.format(Locale.ROOT, "%.1f", rate) : Long.toString(Math.round(rate));
    }

    /** "12 files", "12/40 files" or "12 of 40 files"; null for an operation that counts no files. */
    private String files(String of) {
        long n = files.sum();
        long all = totalFiles;
        if (n == 0 && all == 0) {
            return null;
        }
        return all > 0 ? n + of + all + " files" : n + " files";
    }

    /** "ETA 1m05s", "ETA --" while the rate is unknown or zero, or null when the total is not known. */
    private static String eta(long bytes, long total, double rate) {
        if (total <= 0) {
            return null;
        }
        long remaining = total - bytes;
        if (remaining <= 0) {
            return "ETA 0s";
        }
        if (Double.isNaN(rate) || rate <= 0) {
            return "ETA --";
        }
        double seconds = remaining / rate;
        return seconds >= MAX_ETA_SECONDS ? "ETA --" : "ETA " + duration(Math.max(1, Math.round(seconds)));
    }

    /** "42s", "1m05s", "2h03m", "3d04h". */
    static String duration(long seconds) {
        if (seconds < 60) {
            return seconds + "s";
        }
        if (seconds < 3600) {
            return String.format(Locale.ROOT, "%dm%02ds", seconds / 60, seconds % 60);
        }
        if (seconds < 86400) {
            return String.format(Locale.ROOT, "%dh%02dm", seconds / 3600, seconds % 3600 / 60);
        }
        return String.format(Locale.ROOT, "%dd%02dh", seconds / 86400, seconds % 86400 / 3600);
    }

    private static long checkTotal(long totalBytes) {
        if (totalBytes < 0) {
            throw new IllegalArgumentException("total must not be negative: " + totalBytes);
        }
        return totalBytes;
    }
}
