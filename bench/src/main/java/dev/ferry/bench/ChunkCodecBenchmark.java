package dev.ferry.bench;

import dev.ferry.repo.BlobType;
import dev.ferry.repo.ChunkId;
import dev.ferry.repo.Envelope;
import dev.ferry.repo.MasterKey;
import java.nio.charset.StandardCharsets;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The per-chunk hot path of the repository: keyed hash (chunk id), compression and encryption when writing,
 * decryption and decompression when reading.
 * Run: {@code java -jar bench/target/benchmarks.jar ChunkCodec}. Throughput is reported per 1 MiB chunk.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 3)
@Fork(1)
public class ChunkCodecBenchmark {
    @Param({"random", "text", "zero"})
    public String content;

    private final MasterKey key = MasterKey.generate();
    private final Envelope envelope = new Envelope(3);
    private byte[] chunk;
    private ChunkId id;
    private byte[] sealed;

    @Setup
    public void setUp() {
        chunk = new byte[1 << 20];
        switch (content) {
            case "random" -> new Random(1).nextBytes(chunk);
            case "text" -> {
                byte[] line = "2026-11-23T18:00:00Z INFO request served in 12 ms path=/api/v1/items\n"
                        .getBytes(StandardCharsets.US_ASCII);
                for (int i = 0; i < chunk.length; i++) {
                    chunk[i] = line[i % line.length];
                }
            }
            default -> {
            }
        }
        id = key.chunkId(chunk);
        sealed = envelope.seal(key.aead(), aad(), chunk, 0, chunk.length, true);
    }

    @Benchmark
    public ChunkId hash() {
        return key.chunkId(chunk);
    }

    @Benchmark
    public byte[] compressAndEncrypt() {
        return envelope.seal(key.aead(), aad(), chunk, 0, chunk.length, true);
    }

    @Benchmark
    public byte[] encryptOnly() {
        return envelope.seal(key.aead(), aad(), chunk, 0, chunk.length, false);
    }

    /** Restore's side: authenticate, decrypt and decompress one stored chunk. */
    @Benchmark
    public byte[] decryptAndDecompress() throws Exception {
        return Envelope.open(key.aead(), aad(), sealed, 0, sealed.length);
    }

    private byte[] aad() {
        return Envelope.chunkAad(BlobType.DATA, id);
    }
}
