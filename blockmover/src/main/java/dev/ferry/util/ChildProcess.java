package dev.ferry.util;

import dev.ferry.job.Cancellation;
import dev.ferry.job.CancelledException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Collectors;

/**
 * A command Ferry runs as a child process, with the limits every such call needs: a timeout (default
 * {@link #DEFAULT_TIMEOUT}), an optional job {@link Cancellation}, and the last {@value #STDERR_TAIL_BYTES} bytes
 * of its stderr for the error message. A timeout, a cancel or an interrupt kills the whole process tree (the
 * child's descendants first, found before the child dies and they are handed to init), so that no grandchild keeps
 * a pipe open and a read blocked.
 *
 * <p>{@link #run()} collects stdout (at most {@link #maxOutput(int)} bytes) and returns the exit status;
 * {@link #stream()} hands stdout over as an {@link InputStream} for long outputs ({@code zfs send}): there the
 * timeout is the longest a read may wait for the next bytes, and a cancel makes a blocked read throw
 * {@link CancelledException} as soon as the killed tree has closed the pipe.
 *
 * <p>Immutable: the {@code with} methods return a changed copy.
 */
public final class ChildProcess {
    public static final Duration DEFAULT_TIMEOUT = Duration.ofMinutes(5);
    /** How much of the end of stderr is kept for error messages. */
    public static final int STDERR_TAIL_BYTES = 8 << 10;
    /** Default limit of the stdout {@link #run()} collects. */
    public static final int DEFAULT_MAX_OUTPUT = 64 << 20;
    /** How long a killed tree is given to close its pipes before a read or wait gives up. */
    private static final long KILL_GRACE_MILLIS = 5_000;

    private final List<String> command;
    private final Duration timeout;
    private final Cancellation cancellation;
    private final Map<String, String> environment;
    private final int maxOutput;

    private ChildProcess(List<String> command, Duration timeout, Cancellation cancellation,
                         Map<String, String> environment, int maxOutput) {
        if (command.isEmpty()) {
            throw new IllegalArgumentException("no command");
        }
        if (timeout.isNegative() || timeout.isZero()) {
            throw new IllegalArgumentException("timeout must be positive: " + timeout);
        }
        this.command = List.copyOf(command);
        this.timeout = timeout;
        this.cancellation = cancellation;
        this.environment = Map.copyOf(environment);
        this.maxOutput = maxOutput;
    }

    public static ChildProcess of(List<String> command) {
        return new ChildProcess(command, DEFAULT_TIMEOUT, null, Map.of(), DEFAULT_MAX_OUTPUT);
    }

    public static ChildProcess of(String... command) {
        return of(List.of(command));
    }

    public ChildProcess timeout(Duration t) {
        return new ChildProcess(command, t, cancellation, environment, maxOutput);
    }

    /** The job's cancellation (null: none); its cancel kills the process tree. */
    public ChildProcess cancellation(Cancellation c) {
        return new ChildProcess(command, timeout, c, environment, maxOutput);
    }

    /** Variables added to (or replacing those of) the inherited environment. */
    public ChildProcess environment(Map<String, String> env) {
        return new ChildProcess(command, timeout, cancellation, env, maxOutput);
    }

    /** Most stdout bytes {@link #run()} accepts; a command that prints more is killed and fails. */
    public ChildProcess maxOutput(int bytes) {
        return new ChildProcess(command, timeout, cancellation, environment, bytes);
    }

    public List<String> command() {
        return command;
    }

    public Duration timeout() {
        return timeout;
    }

    /** The command as it would be typed (arguments with spaces or quotes quoted). */
    public String describe() {
        return command.stream().map(ChildProcess::quote).collect(Collectors.joining(" "));
    }

    private static String quote(String a) {
        return !a.isEmpty() && a.matches("[A-Za-z0-9_./:=@%+,-]+") ? a : "'" + a.replace("'", "'\\''") + "'";
    }

    /** What a finished command did. */
    public record Result(String command, int exitCode, byte[] stdout, String stderrTail) {
        public String stdoutText() {
            return new String(stdout, StandardCharsets.UTF_8);
        }

        public boolean succeeded() {
            return exitCode == 0;
        }

        /** This result if the command exited with 0, else its {@link Failed} error. */
        public Result requireSuccess() throws Failed {
            if (exitCode != 0) {
                throw new Failed(command, exitCode, stderrTail);
            }
            return this;
        }
    }

    /** A command could not be started (not found, not executable). */
    public static final class NotStarted extends IOException {
        public NotStarted(String message, IOException cause) {
            super(message, cause);
        }
    }

    /** A command exited with a non-zero status; the message names it, its status and the end of its stderr. */
    public static class Failed extends IOException {
        private final String command;
        private final int exitCode;
        private final String stderrTail;

        public Failed(String command, int exitCode, String stderrTail) {
            this(message(command, exitCode, stderrTail), command, exitCode, stderrTail);
        }

        protected Failed(String message, String command, int exitCode, String stderrTail) {
            super(message);
            this.command = command;
            this.exitCode = exitCode;
            this.stderrTail = stderrTail;
        }

        public static String message(String command, int exitCode, String stderrTail) {
            String err = stderrTail.strip().replace('\n', ' ');
            return "'" + command + "' failed (exit " + exitCode + "): " + (err.isEmpty() ? "no message" : err);
        }

        public String command() {
            return command;
        }

        public int exitCode() {
            return exitCode;
        }

        public String stderrTail() {
            return stderrTail;
        }
    }

    /**
     * Runs the command to its end and returns its status, stdout and stderr tail, whatever the status. Throws when
     * it cannot start, runs past the timeout, prints more than the output limit, is cancelled
     * ({@link CancelledException}) or the calling thread is interrupted ({@link InterruptedIOException}); in each
     * case the process tree is killed first.
     */
    public Result run() throws IOException {
        Started s = start();
        Drain out = new Drain(s.process.getInputStream(), maxOutput, false, "out");
        try (Cancellation.Registration ignored = s.registerCancel()) {
            long deadline = System.nanoTime() + timeout.toNanos();
            boolean exited;
            try {
                exited = s.process.waitFor(timeout.toNanos(), TimeUnit.NANOSECONDS);
            } catch (InterruptedException e) {
                s.kill();
                Thread.currentThread().interrupt();
                throw new InterruptedIOException("interrupted while running '" + describe() + "'");
            }
            if (!exited) {
                s.timedOut.set(true);
                s.kill();
            }
            s.checkCancelled();
            long left = Math.max(TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime()), 0) + KILL_GRACE_MILLIS;
            if (!out.await(left) || !s.stderr.await(KILL_GRACE_MILLIS)) {
                s.kill(); // a descendant still holds a pipe
                throw new IOException("'" + describe() + "' left its output open: a process it started still runs");
            }
            s.checkCancelled();
            if (s.timedOut.get()) {
                throw s.timeoutError();
            }
            if (out.overflow) {
                throw new IOException("'" + describe() + "' printed more than " + maxOutput + " bytes");
            }
            return new Result(describe(), s.process.exitValue(), out.bytes(), s.stderr.text());
        } finally {
            if (s.process.isAlive()) {
                s.kill(); // nothing of it stays behind, whatever happened
            }
        }
    }

    /** {@link #run()} that throws {@link Failed} on a non-zero exit. */
    public Result check() throws IOException {
        return run().requireSuccess();
    }

    /**
     * Starts the command and returns its stdout. A read waits at most the timeout for the next bytes; at the end
     * of the output the exit status is checked (a non-zero status is a {@link Failed} from that read). Closing the
     * stream kills the process tree if it still runs.
     */
    public Output stream() throws IOException {
        return new Output(start());
    }

    /** The stdout of a {@link #stream()}ed command. */
    public final class Output extends InputStream {
        private final Started started;
        private final InputStream in;
        private final Cancellation.Registration registration;
        private final Thread watchdog;
        private volatile long readingSince; // System.nanoTime() when a read began to wait, 0 when none waits
        private volatile boolean closed;
        private boolean ended;

        private Output(Started s) {
            this.started = s;
            this.in = s.process.getInputStream();
            this.registration = s.registerCancel();
            this.watchdog = new Thread(this::watch, "ferry-child-watchdog-" + s.process.pid());
            watchdog.setDaemon(true);
            watchdog.start();
        }

        /** The child's process id. */
        public long pid() {
            return started.process.pid();
        }

        public ProcessHandle handle() {
            return started.process.toHandle();
        }

        /** Kills the child when a read waits longer than the timeout for its next bytes. */
        private void watch() {
            long tick = Math.max(Math.min(timeout.toMillis() / 4, 1000), 10);
            try {
                while (!closed && !started.process.waitFor(tick, TimeUnit.MILLISECONDS)) {
                    long since = readingSince;
                    if (since != 0 && System.nanoTime() - since > timeout.toNanos()) {
                        started.timedOut.set(true);
                        started.kill();
                        return;
                    }
                }
            } catch (InterruptedException e) {
                // closed
            }
        }

        @Override
        public int read() throws IOException {
            byte[] b = new byte[1];
            int n = read(b, 0, 1);
            return n < 0 ? -1 : b[0] & 0xff;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            if (closed) {
                throw new IOException("output of '" + describe() + "' is closed");
            }
            started.checkCancelled();
            if (len == 0) {
                return 0;
            }
            int n;
            readingSince = System.nanoTime();
            try {
                n = in.read(b, off, len);
            } catch (IOException e) {
                started.checkCancelled();
                if (started.timedOut.get()) {
                    throw started.timeoutError();
                }
                throw e;
            } finally {
                readingSince = 0;
            }
            if (n < 0) {
                started.checkCancelled();
                if (started.timedOut.get()) {
                    throw started.timeoutError();
                }
                end();
            }
            return n;
        }

        @Override
        public int available() throws IOException {
            return closed ? 0 : in.available();
        }

        /** At the end of the output: the exit status, a non-zero one thrown as {@link Failed}. */
        private void end() throws IOException {
            if (ended) {
                return;
            }
            ended = true;
            try {
                if (!started.process.waitFor(timeout.toNanos(), TimeUnit.NANOSECONDS)) {
                    started.timedOut.set(true);
                    started.kill();
                    throw started.timeoutError();
                }
            } catch (InterruptedException e) {
                started.kill();
                Thread.currentThread().interrupt();
                throw new InterruptedIOException("interrupted while waiting for '" + describe() + "' to end");
            }
            started.stderr.await(KILL_GRACE_MILLIS);
            int code = started.process.exitValue();
            if (code != 0) {
                throw new Failed(describe(), code, started.stderr.text());
            }
        }

        /** The end of stderr so far. */
        public String stderrTail() {
            return started.stderr.text();
        }

        @Override
        public void close() throws IOException {
            if (closed) {
                return;
            }
            closed = true;
            registration.close();
            started.kill();
            watchdog.interrupt();
            in.close();
        }
    }

    private Started start() throws IOException {
        if (cancellation != null) {
            cancellation.check();
        }
        ProcessBuilder pb = new ProcessBuilder(command);
        pb.environment().putAll(environment);
        Process p;
        try {
            p = pb.start();
        } catch (IOException e) {
            throw new NotStarted("cannot run '" + command.get(0) + "': " + e.getMessage(), e);
        }
        try {
            p.getOutputStream().close();
        } catch (IOException e) {
            // it exited already
        }
        return new Started(p, new Drain(p.getErrorStream(), STDERR_TAIL_BYTES, true, "err"));
    }

    /** A running child with its stderr drain. */
    private final class Started {
        final Process process;
        final Drain stderr;
        final AtomicBoolean timedOut = new AtomicBoolean();

        Started(Process process, Drain stderr) {
            this.process = process;
            this.stderr = stderr;
        }

        Cancellation.Registration registerCancel() {
            return cancellation == null ? () -> { } : cancellation.onCancel(this::kill);
        }

        void checkCancelled() throws CancelledException {
            if (cancellation != null) {
                cancellation.check();
            }
        }

        IOException timeoutError() {
            String err = stderr.text().strip().replace('\n', ' ');
            return new IOException("'" + describe() + "' did not finish within " + seconds(timeout)
                    + " and was killed" + (err.isEmpty() ? "" : "; it printed: " + err));
        }

        /** Kills the child and every descendant (found while the child still runs, so none is missed by reparenting). */
        void kill() {
            for (int pass = 0; pass < 2; pass++) { // a second pass for any started while the first one killed
                List<ProcessHandle> tree = new ArrayList<>();
                try {
                    process.descendants().forEach(tree::add);
                } catch (RuntimeException e) {
                    // the process table could not be read: the child alone is killed
                }
                for (ProcessHandle h : tree) {
                    h.destroyForcibly();
                }
                if (tree.isEmpty() && !process.isAlive()) {
                    return;
                }
            }
            process.destroyForcibly();
        }
    }

    private static String seconds(Duration d) {
        return d.toMillis() % 1000 == 0 ? d.toSeconds() + " s" : d.toMillis() / 1000.0 + " s";
    }

    /** Reads a pipe to its end on a thread of its own: everything up to a limit, or only the last bytes. */
    private static final class Drain {
        private final int limit;
        private final boolean tail;
        private final Thread thread;
        private final ByteArrayOutputStream buf = new ByteArrayOutputStream(); // guarded by this
        private byte[] ring;                                                 // tail mode, guarded by this
        private long total;                                                  // guarded by this
        volatile boolean overflow;

        Drain(InputStream in, int limit, boolean tail, String name) {
            this.limit = limit;
            this.tail = tail;
            this.ring = tail ? new byte[limit] : null;
            this.thread = new Thread(() -> pump(in), "ferry-child-std" + name);
            thread.setDaemon(true);
            thread.start();
        }

        private void pump(InputStream in) {
            byte[] b = new byte[8192];
            try (in) {
                for (int n; (n = in.read(b)) >= 0; ) {
                    synchronized (this) {
                        if (tail) {
                            for (int i = 0; i < n; i++) {
                                ring[(int) ((total + i) % limit)] = b[i];
                            }
                        } else if (buf.size() + n <= limit) {
                            buf.write(b, 0, n);
                        } else {
                            overflow = true;
                        }
                        total += n;
                    }
                }
            } catch (IOException e) {
                // the pipe was closed under it: what was read is kept
            }
        }

        boolean await(long millis) {
            try {
                thread.join(Math.max(millis, 1));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return !thread.isAlive();
        }

        synchronized byte[] bytes() {
            return buf.toByteArray();
        }

        /** The bytes kept, as text (in tail mode, the last {@code limit} bytes, starting at a line where possible). */
        synchronized String text() {
            if (!tail) {
                return buf.toString(StandardCharsets.UTF_8);
            }
            int n = (int) Math.min(total, limit);
            byte[] out = new byte[n];
            long start = total - n;
            for (int i = 0; i < n; i++) {
                out[i] = ring[(int) ((start + i) % limit)];
            }
            String s = new String(out, StandardCharsets.UTF_8);
            if (total > limit) {
                int nl = s.indexOf('\n');
                s = "..." + s.substring(nl >= 0 && nl < s.length() - 1 ? nl + 1 : Math.min(3, s.length()));
            }
            return s;
        }
    }
}
