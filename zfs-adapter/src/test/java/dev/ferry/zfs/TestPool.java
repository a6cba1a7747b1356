package dev.ferry.zfs;

import static org.junit.jupiter.api.Assertions.fail;

import dev.ferry.util.ChildProcess;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Assumptions;

/**
 * A real ZFS pool in a sparse file, with a unique name, for one test class; {@link #close} destroys it.
 * Needs a running ZFS (the test command installs and starts zfs-fuse). Without ZFS the tests are skipped on a
 * developer machine and fail under CI, where ZFS must be there.
 */
final class TestPool implements AutoCloseable {
    final String name;
    final Path dir;
    final Path mount;
    final Zfs zfs = new Zfs("zfs", Duration.ofSeconds(120));

    private TestPool(String name, Path dir) {
        this.name = name;
        this.dir = dir;
        this.mount = dir.resolve("mnt");
    }

    static TestPool create(Path dir) throws IOException, InterruptedException {
        requireZfs();
        String name = "ferrytest" + HexFormat.of().formatHex(new SecureRandom().generateSeed(4));
        Path img = dir.resolve(name + ".img");
        try (var f = new java.io.RandomAccessFile(img.toFile(), "rw")) {
            f.setLength(192L << 20);
        }
        destroyOrphans();
        TestPool p = new TestPool(name, dir);
        // never in the cache file: a restarted daemon must not import a pool whose file a killed run left behind
        cmd("zpool", "create", "-o", "cachefile=none", "-m", p.mount.toString(), name, img.toString());
        return p;
    }

    /** Creates filesystem {@code pool/child} with the given {@code -o} properties; returns its full name. */
    String filesystem(String child, String... props) throws IOException, InterruptedException {
        String ds = name + "/" + child;
        List<String> args = new java.util.ArrayList<>(List.of("zfs", "create"));
        for (String p : props) {
            args.add("-o");
            args.add(p);
        }
        args.add(ds);
        cmd(args.toArray(String[]::new));
        return ds;
    }

    Path mountpoint(String dataset) throws IOException {
        return Path.of(zfs.get(dataset).mountpoint());
    }

    static void requireZfs() {
        boolean ok;
        try {
            ok = run(List.of("zpool", "list")) == 0;
        } catch (IOException | InterruptedException e) {
            ok = false;
        }
        if (!ok) {
            if ("true".equals(System.getenv("CI"))) {
                fail("ZFS is not running: the test command (bin/test) installs and starts zfs-fuse");
            }
            Assumptions.abort("no running ZFS here (start zfs-fuse, or run bin/test which does)");
        }
    }

    static String cmd(String... args) throws IOException, InterruptedException {
        ChildProcess.Result r = ChildProcess.of(args).timeout(Duration.ofSeconds(120)).run();
        if (r.exitCode() != 0) {
            throw new IOException(String.join(" ", args) + " failed: " + r.stdoutText() + r.stderrTail());
        }
        return r.stdoutText();
    }

    private static int run(List<String> args) throws IOException, InterruptedException {
        return ChildProcess.of(args).timeout(Duration.ofSeconds(60)).run().exitCode();
    }

    /** Test pools of runs that were killed, whose files are gone: they would fault forever. */
    private static void destroyOrphans() throws IOException, InterruptedException {
        for (String line : cmd("zpool", "list", "-H", "-o", "name,health").split("\n")) {
            String[] f = line.split("\t");
            if (f.length == 2 && f[0].startsWith("ferrytest") && !"ONLINE".equals(f[1])) {
                cmd("zpool", "destroy", "-f", f[0]);
            }
        }
    }

    @Override
    public void close() throws IOException, InterruptedException {
        IOException last = null;
        for (int attempt = 0; attempt < 5; attempt++) { // a dataset can stay busy for a moment after a close
            try {
                cmd("zpool", "destroy", "-f", name);
                last = null;
                break;
            } catch (IOException e) {
                last = e;
                Thread.sleep(500);
            }
        }
        if (last != null) {
            throw last;
        }
        Files.deleteIfExists(dir.resolve(name + ".img"));
    }
}
