package dev.ferry.files;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * A loop-mounted ext4 image for tests that need a real file system's behaviour (xattrs, hard links, holes,
 * device nodes), whatever the temporary directory is (tmpfs, overlay). Needs root; tests skip without it.
 */
final class Ext4 implements AutoCloseable {
    final Path dir;
    final Path mount;

    private Ext4(Path dir, Path mount) {
        this.dir = dir;
        this.mount = mount;
    }

    static boolean root() {
        return "root".equals(System.getProperty("user.name"));
    }

    /** Makes and mounts an image of {@code mib} MiB; returns null when that is not possible here. */
    static Ext4 mount(int mib) throws IOException, InterruptedException {
        if (!root()) {
            return null;
        }
        Path dir = Files.createTempDirectory("ferry-ext4-");
        Path img = dir.resolve("fs.img");
        Path mnt = Files.createDirectory(dir.resolve("mnt"));
        try (var f = new java.io.RandomAccessFile(img.toFile(), "rw")) {
            f.setLength((long) mib << 20);
        }
        if (run("mkfs.ext4", "-q", "-F", img.toString()) != 0
                || run("mount", "-o", "loop", img.toString(), mnt.toString()) != 0) {
            deleteTree(dir);
            return null;
        }
        return new Ext4(dir, mnt);
    }

    static int run(String... cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .start();
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            return -1;
        }
        return p.exitValue();
    }

    static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        try (Stream<Path> s = Files.walk(p)) {
            List<Path> all = s.sorted(Comparator.reverseOrder()).toList();
            for (Path x : all) {
                Files.deleteIfExists(x);
            }
        }
    }

    @Override
    public void close() throws IOException, InterruptedException {
        if (run("umount", mount.toString()) != 0) {
            run("umount", "-l", mount.toString());
        }
        deleteTree(dir);
    }
}
