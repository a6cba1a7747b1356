package dev.ferry.zfs;

import dev.ferry.job.Cancellation;
import dev.ferry.util.ChildProcess;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The one place Ferry runs the {@code zfs} command (through {@link ChildProcess}): every call has a timeout
 * ($FERRY_ZFS_TIMEOUT), ends when the job it runs for is cancelled, captures the end of stderr into the error
 * it throws, and asks for parsable output ({@code -H -p}). Capabilities differ between ZFS builds (zfs-fuse
 * has no zvols, no {@code .zfs/snapshot} directory and no holds) and are probed here, not assumed.
 */
public final class Zfs {
    /** User property Ferry sets on the snapshots it makes; it only ever deletes snapshots that carry it. */
    public static final String MANAGED_PROPERTY = "dev.ferry:managed";
    /** User property with the id of the repository a Ferry snapshot was taken for. */
    public static final String REPOSITORY_PROPERTY = "dev.ferry:repository";

    private final String command;
    private final Duration timeout;
    private final Cancellation cancellation; // null: calls end only by their timeout
    private Boolean holds;                   // guarded by this

    public Zfs(String command, Duration timeout) {
        this(command, timeout, null, null);
    }

    private Zfs(String command, Duration timeout, Cancellation cancellation, Boolean holds) {
        this.command = command;
        this.timeout = timeout;
        this.cancellation = cancellation;
        this.holds = holds;
    }

    /** This zfs for one job: its commands (and reads of {@link #send}) end when {@code c} is cancelled. */
    public synchronized Zfs withCancellation(Cancellation c) {
        return new Zfs(command, timeout, c, holds);
    }

    /** This zfs without a job's cancellation, for cleanups that must run after a cancel. */
    public synchronized Zfs withoutCancellation() {
        return cancellation == null ? this : new Zfs(command, timeout, null, holds);
    }

    public Duration timeout() {
        return timeout;
    }

    /** The {@code zfs} on the PATH ($FERRY_ZFS overrides), with a timeout of $FERRY_ZFS_TIMEOUT seconds (300). */
    public static Zfs fromEnvironment(Map<String, String> env) {
        String cmd = env.getOrDefault("FERRY_ZFS", "zfs");
        String t = env.getOrDefault("FERRY_ZFS_TIMEOUT", "300");
        long secs;
        try {
            secs = Long.parseLong(t.strip());
        } catch (NumberFormatException e) {
            secs = -1;
        }
        if (secs <= 0) {
            throw new IllegalArgumentException("FERRY_ZFS_TIMEOUT is a number of seconds above 0, not '" + t + "'");
        }
        return new Zfs(cmd, Duration.ofSeconds(secs));
    }

    /** A dataset, zvol or snapshot as {@code zfs get} describes it. */
    public record Dataset(String name, String type, String mountpoint, boolean mounted, String guid, long createtxg,
                          long creation, long volsize, String origin, Map<String, String> userProperties) {
        public boolean isVolume() {
            return "volume".equals(type);
        }

        public boolean isSnapshot() {
            return "snapshot".equals(type);
        }

        /** The part after {@code @} of a snapshot's name. */
        public String snapshotName() {
            int at = name.indexOf('@');
            return at < 0 ? null : name.substring(at + 1);
        }
    }

    private static final String PROPS = "type,mountpoint,mounted,guid,createtxg,creation,volsize,origin,"
            + MANAGED_PROPERTY + "," + REPOSITORY_PROPERTY;

    /** The dataset, zvol or snapshot {@code name}, or null if it does not exist. */
    public Dataset get(String name) throws IOException {
        checkName(name);
        try {
            List<Dataset> l = parse(run("get", "-H", "-p", "-o", "name,property,value", PROPS, name));
            return l.isEmpty() ? null : l.get(0);
        } catch (ZfsException e) {
            if (e.notFound()) {
                return null;
            }
            throw e;
        }
    }

    /** The snapshots of {@code dataset}, oldest first (by creation transaction group). */
    public List<Dataset> snapshots(String dataset) throws IOException {
        checkName(dataset);
        List<Dataset> all = parse(run("get", "-H", "-p", "-r", "-d", "1", "-o", "name,property,value", PROPS, dataset));
        List<Dataset> snaps = new ArrayList<>();
        for (Dataset d : all) {
            if (d.name().startsWith(dataset + "@")) {
                snaps.add(d);
            }
        }
        snaps.sort((a, b) -> a.createtxg() != b.createtxg() ? Long.compare(a.createtxg(), b.createtxg())
                : a.name().compareTo(b.name()));
        return snaps;
    }

    private static List<Dataset> parse(String out) {
        Map<String, Map<String, String>> rows = new LinkedHashMap<>();
        for (String line : out.split("\n")) {
            if (line.isEmpty()) {
                continue;
            }
            String[] f = line.split("\t", 3);
            if (f.length == 3) {
                rows.computeIfAbsent(f[0], k -> new LinkedHashMap<>()).put(f[1], f[2]);
            }
        }
        List<Dataset> l = new ArrayList<>();
        rows.forEach((name, p) -> {
            Map<String, String> user = new LinkedHashMap<>();
            for (String u : List.of(MANAGED_PROPERTY, REPOSITORY_PROPERTY)) {
                String v = p.get(u);
                if (v != null && !"-".equals(v)) { // "-": not set
                    user.put(u, v);
                }
            }
            l.add(new Dataset(name, p.getOrDefault("type", "-"), p.getOrDefault("mountpoint", "-"),
                    "yes".equals(p.get("mounted")), guid(p.get("guid")), num(p.get("createtxg")), num(p.get("creation")),
                    num(p.get("volsize")), p.getOrDefault("origin", "-"), user));
        });
        return l;
    }

    /** A guid as an unsigned decimal string (guids use all 64 bits), or null when ZFS has none. */
    private static String guid(String v) {
        if (v == null || v.isEmpty() || "-".equals(v)) {
            return null;
        }
        try {
            return Long.toUnsignedString(Long.parseUnsignedLong(v));
        } catch (NumberFormatException e) {
            return null;
        }
    }

    private static long num(String v) {
        if (v == null || v.isEmpty() || "-".equals(v)) {
            return -1;
        }
        try {
            return Long.parseLong(v);
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /** Takes snapshot {@code dataset@name}, marked as Ferry's own, taken for the repository {@code repository}. */
    public void snapshot(String dataset, String name, String repository) throws IOException {
        checkName(dataset);
        if (!repository.matches("[0-9A-Za-z_.:-]{1,200}")) {
            throw new IllegalArgumentException("not a repository id: " + repository);
        }
        run("snapshot", "-o", MANAGED_PROPERTY + "=true", "-o", REPOSITORY_PROPERTY + "=" + repository,
                dataset + "@" + name);
    }

    /** Destroys a dataset or snapshot (not recursively); {@code force} unmounts a busy filesystem first. */
    public void destroy(String name, boolean force) throws IOException {
        checkName(name);
        if (force) {
            run("destroy", "-f", name);
        } else {
            run("destroy", name);
        }
    }

    /** Clones {@code snapshot} as {@code target} with properties {@code props}. */
    public void clone(String snapshot, String target, Map<String, String> props) throws IOException {
        checkName(snapshot);
        checkName(target);
        List<String> args = new ArrayList<>(List.of("clone"));
        props.forEach((k, v) -> {
            args.add("-o");
            args.add(k + "=" + v);
        });
        args.add(snapshot);
        args.add(target);
        run(args.toArray(String[]::new));
    }

    /** Creates a filesystem dataset (and its missing parents). */
    public void createFilesystem(String dataset, Map<String, String> props) throws IOException {
        createDataset(dataset, props, null);
    }

    /** Creates a zvol of {@code size} bytes. */
    public void createVolume(String dataset, long size, Map<String, String> props) throws IOException {
        if (!zvolsSupported()) {
            throw new IOException("this ZFS cannot create zvols (zfs-fuse has none); restore into a file in a "
                    + "filesystem dataset with --file");
        }
        createDataset(dataset, props, size);
    }

    private void createDataset(String dataset, Map<String, String> props, Long volsize) throws IOException {
        checkName(dataset);
        List<String> args = new ArrayList<>(List.of("create", "-p"));
        props.forEach((k, v) -> {
            args.add("-o");
            args.add(k + "=" + v);
        });
        if (volsize != null) {
            args.add("-V");
            args.add(Long.toString(volsize));
        }
        args.add(dataset);
        run(args.toArray(String[]::new));
    }

    /** Whether this ZFS makes zvols with device nodes (kernel ZFS does; zfs-fuse does not). */
    public boolean zvolsSupported() {
        return Files.isDirectory(Path.of("/dev/zvol"));
    }

    /** The device node of zvol {@code name} ({@code /dev/zvol/<name>}). */
    public static Path zvolDevice(String name) {
        return Path.of("/dev/zvol", name);
    }

    /** Where snapshot {@code snap} of a mounted filesystem can be read without a clone, or null. */
    public Path snapshotDirectory(Dataset fs, String snap) {
        if (fs.isVolume() || !fs.mounted() || fs.mountpoint() == null || !fs.mountpoint().startsWith("/")) {
            return null;
        }
        Path p = Path.of(fs.mountpoint(), ".zfs", "snapshot", snap);
        return Files.isDirectory(p) ? p : null;
    }

    /**
     * Whether this ZFS supports snapshot holds: {@code zfs hold} on a snapshot that does not exist answers
     * "does not exist" where it does (zfs-fuse can hold and release, though it cannot list holds).
     */
    public synchronized boolean holdsSupported() {
        if (holds == null) {
            try {
                run("hold", "dev.ferry", "nonexistent-ferry-probe@x");
                holds = true;
            } catch (IOException e) {
                holds = e instanceof ZfsException z && z.notFound();
            }
        }
        return holds;
    }

    /**
     * Starts {@code zfs send [-i base] snapshot} and returns its output; closing it stops the command. The
     * command's failure (exit code, stderr) is thrown from the read that reaches the end of the stream. A read
     * waits at most the timeout for the next bytes; a cancel of the job kills the command and ends a blocked read
     * with {@link dev.ferry.job.CancelledException}.
     */
    public InputStream send(String base, String snapshot) throws IOException {
        checkName(snapshot);
        List<String> args = new ArrayList<>(List.of(command, "send"));
        if (base != null) {
            checkName(base);
            args.add("-i");
            args.add(base);
        }
        args.add(snapshot);
        ChildProcess.Output out;
        try {
            out = start(args).stream();
        } catch (ChildProcess.NotStarted e) {
            throw notStarted(e);
        }
        return new FilterInputStream(out) {
            @Override
            public int read(byte[] b, int off, int len) throws IOException {
                try {
                    return super.read(b, off, len);
                } catch (ChildProcess.Failed e) {
                    throw failure(e.command(), e.exitCode(), e.stderrTail());
                }
            }

            @Override
            public int read() throws IOException {
                try {
                    return super.read();
                } catch (ChildProcess.Failed e) {
                    throw failure(e.command(), e.exitCode(), e.stderrTail());
                }
            }
        };
    }

    /** Runs {@code zfs ARGS}; returns its stdout; a non-zero exit is a {@link ZfsException} with stderr. */
    public String run(String... args) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add(command);
        cmd.addAll(List.of(args));
        ChildProcess.Result r;
        try {
            r = start(cmd).run();
        } catch (ChildProcess.NotStarted e) {
            throw notStarted(e);
        }
        if (!r.succeeded()) {
            throw failure(r.command(), r.exitCode(), r.stderrTail());
        }
        return r.stdoutText();
    }

    /** The command with this Zfs's timeout and cancellation; a missing command is told with a hint. */
    private ChildProcess start(List<String> cmd) {
        return ChildProcess.of(cmd).timeout(timeout).cancellation(cancellation);
    }

    private static IOException notStarted(IOException e) {
        return new IOException(e.getMessage() + " (is ZFS installed? set FERRY_ZFS to the zfs command)", e);
    }

    private static ZfsException failure(String what, int code, String stderr) {
        String msg = stderr.strip();
        String hint = msg.contains("connect") || msg.contains("Connection refused")
                ? " (is the ZFS daemon running? zfs-fuse must be started first)" : "";
        return new ZfsException(ChildProcess.Failed.message(what, code, stderr) + hint, code, msg);
    }

    /**
     * Rejects names that are not ZFS dataset or snapshot names, so that nothing a user types reaches the
     * {@code zfs} command as an option.
     */
    public static void checkName(String name) {
        if (name == null || name.isEmpty() || name.startsWith("-") || name.startsWith("/")
                || !name.matches("[A-Za-z0-9_.:/@ -]+") || name.contains("//") || name.endsWith("/")
                || name.indexOf('@') != name.lastIndexOf('@')) {
            throw new IllegalArgumentException("not a ZFS dataset or snapshot name: '" + name + "'");
        }
    }
}
