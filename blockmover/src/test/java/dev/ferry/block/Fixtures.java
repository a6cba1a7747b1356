package dev.ferry.block;

import dev.ferry.engine.ChangedRanges;
import dev.ferry.progress.ProgressListener;
import dev.ferry.repo.KdfParams;
import dev.ferry.repo.KeySource;
import dev.ferry.repo.Repository;
import dev.ferry.repo.RepositoryLock;
import dev.ferry.repo.Snapshots;
import dev.ferry.store.Store;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.Map;
import java.util.Random;

/** Volumes and repositories for block engine tests. */
final class Fixtures {
    static final KeySource PASSWORD = new KeySource.Password("volume test".toCharArray());

    private Fixtures() {
    }

    static Repository init(Store store) throws IOException {
        return Repository.init(store, PASSWORD, new KdfParams(1024, 1, 1), 1 << 20, Clock.systemUTC());
    }

    static Repository open(Store store) throws IOException {
        return Repository.open(store, PASSWORD);
    }

    /**
     * Writes a volume of {@code size} bytes made of regions of {@code region} bytes that are, in turn, zero,
     * random, text-like and random again, so that it has holes, incompressible and compressible blocks.
     */
    static void writeVolume(Path file, long size, int region, long seed) throws IOException {
        Random rnd = new Random(seed);
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.setLength(0);
            byte[] buf = new byte[region];
            long pos = 0;
            for (int k = 0; pos < size; k++, pos += region) {
                int n = (int) Math.min(region, size - pos);
                switch (k % 4) {
                    case 0 -> java.util.Arrays.fill(buf, (byte) 0);
                    case 2 -> fillText(rnd, buf);
                    default -> rnd.nextBytes(buf);
                }
                f.write(buf, 0, n);
            }
        }
    }

    static void fillText(Random rnd, byte[] buf) {
        String[] words = {"volume", "block", "ferry", "snapshot", "replica", "pool", "zfs", "send", "stream", "ok"};
        StringBuilder sb = new StringBuilder(buf.length + 32);
        while (sb.length() < buf.length) {
            sb.append(words[rnd.nextInt(words.length)]).append(' ').append(rnd.nextInt(100000)).append('\n');
        }
        byte[] t = sb.toString().getBytes(StandardCharsets.US_ASCII);
        System.arraycopy(t, 0, buf, 0, buf.length);
    }

    /** Overwrites {@code len} bytes at {@code off} with random data and records the range. */
    static void change(Path file, long off, int len, Random rnd, ChangedRanges ranges) throws IOException {
        byte[] b = new byte[len];
        rnd.nextBytes(b);
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.seek(off);
            f.write(b);
        }
        if (ranges != null) {
            ranges.add(off, len);
        }
    }

    static BlockBackup.Result backup(Repository repo, Path file, Integer blockSize, Snapshots.Stored parent,
                                     ChangedRanges changed) throws IOException {
        return backup(repo, file, blockSize, parent, changed, ProgressListener.NONE, null);
    }

    static BlockBackup.Result backup(Repository repo, Path file, Integer blockSize, Snapshots.Stored parent,
                                     ChangedRanges changed, ProgressListener progress, RepositoryLock lock)
            throws IOException {
        try (FileVolume v = FileVolume.openForReading(file)) {
            BlockBackup b = new BlockBackup(repo, new BlockBackup.Request(v, file.toString(), blockSize, parent,
                    changed, Map.of("test", "yes"), null, 2, lock));
            return b.run(progress, Clock.systemUTC(), "test-host");
        }
    }

    static BlockRestore.Result restore(Repository repo, Snapshots.Stored snap, Path target, boolean truncate,
                                       ProgressListener progress) throws IOException {
        try (FileVolume out = FileVolume.openForWriting(target, snap.snapshot().volume().size(), truncate)) {
            return new BlockRestore(repo, snap, out, 2).run(progress);
        }
    }

    /** Bytes the file occupies on disk (st_blocks * 512), from stat(1). */
    static long allocated(Path file) throws IOException, InterruptedException {
        Process p = new ProcessBuilder("stat", "--format=%b %B", file.toString()).redirectErrorStream(true).start();
        String[] out = new String(p.getInputStream().readAllBytes(), StandardCharsets.US_ASCII).strip().split(" ");
        if (p.waitFor() != 0) {
            throw new IOException("stat failed: " + String.join(" ", out));
        }
        return Long.parseLong(out[0]) * Long.parseLong(out[1]);
    }

    static boolean sameContent(Path a, Path b) throws IOException {
        return Files.mismatch(a, b) == -1;
    }
}
