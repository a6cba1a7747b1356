package dev.ferry.bench;

import dev.ferry.repo.BlobType;
import dev.ferry.repo.ChunkId;
import dev.ferry.repo.Envelope;
import dev.ferry.repo.MasterKey;
import dev.ferry.repo.Pack;
import dev.ferry.repo.PackId;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The cost per pack of the spool step: {@link Pack.Writer} appending 32 already sealed 1 MiB chunks (random data,
 * stored uncompressed) to a spool file and finishing it (sealed header, trailer, SHA-256 pack id). Sealing the
 * chunks is not measured here (see {@link ChunkCodecBenchmark}); neither is uploading the pack.
 *
 * <p>The spool file is written through the page cache and never synced, so the figure is the CPU and copy cost
 * of writing and hashing 32 MiB, not the device's write speed. The spool directory is a fresh temporary
 * directory under {@code java.io.tmpdir}, or under the directory given with {@code -p spoolParent=DIR}.
 *
 * <p>Run: {@code java -jar bench/target/benchmarks.jar PackWrite}. Reported as milliseconds per 32 MiB pack;
 * MiB/s = 32 * 1000 / (ms/op).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 3)
@Fork(1)
public class PackWriteBenchmark {
    private static final int CHUNK = 1 << 20;
    private static final int CHUNKS_PER_PACK = 32;

    /** Parent of the temporary spool directory; empty means {@code java.io.tmpdir}. */
    @Param({""})
    public String spoolParent;

    private final MasterKey key = MasterKey.generate();
    private final Envelope envelope = new Envelope(3);
    private final ChunkId[] ids = new ChunkId[CHUNKS_PER_PACK];
    private final byte[][] sealed = new byte[CHUNKS_PER_PACK][];
    private Path spoolDir;
    private Path lastPack;

    @Setup(Level.Trial)
    public void setUp() throws IOException {
        spoolDir = spoolParent.isEmpty()
                ? Files.createTempDirectory("ferry-bench-spool-")
                : Files.createTempDirectory(Path.of(spoolParent), "ferry-bench-spool-");
        Random random = new Random(1);
        byte[] chunk = new byte[CHUNK];
        for (int i = 0; i < CHUNKS_PER_PACK; i++) {
            random.nextBytes(chunk);
            ids[i] = key.chunkId(chunk);
            sealed[i] = envelope.seal(key.aead(), Envelope.chunkAad(BlobType.DATA, ids[i]), chunk, 0, CHUNK, false);
        }
    }

    @Benchmark
    public PackId writePack() throws IOException {
        try (Pack.Writer writer = new Pack.Writer(spoolDir, key.aead(), envelope)) {
            for (int i = 0; i < CHUNKS_PER_PACK; i++) {
                writer.add(BlobType.DATA, ids[i], sealed[i], CHUNK);
            }
            lastPack = writer.file();
            return writer.finish();
        }
    }

    /** Each invocation takes tens of milliseconds, so a per-invocation tear-down does not distort the timing. */
    @TearDown(Level.Invocation)
    public void deletePack() throws IOException {
        if (lastPack != null) {
            Files.deleteIfExists(lastPack);
            lastPack = null;
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() throws IOException {
        try (Stream<Path> files = Files.walk(spoolDir)) {
            for (Path p : (Iterable<Path>) files.sorted(Comparator.reverseOrder())::iterator) {
                Files.deleteIfExists(p);
            }
        }
    }
}
