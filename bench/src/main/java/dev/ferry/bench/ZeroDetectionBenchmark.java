package dev.ferry.bench;

import dev.ferry.block.Zeros;
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
 * Zero-block detection over one 1 MiB block: {@link Zeros#isZero} against a plain byte loop. Both contents make
 * each method scan the whole block: {@code zero} is all zeros, {@code lastByte} has only its last byte set, the
 * worst case for a block that is not zero. The block stays in the CPU caches, so the figures are the scan's own
 * speed, not memory bandwidth.
 * Run: {@code java -jar bench/target/benchmarks.jar ZeroDetection}. Throughput is reported per 1 MiB block, so
 * ops/s = MiB/s.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 3)
@Fork(1)
public class ZeroDetectionBenchmark {
    private static final int BLOCK = 1 << 20;

    @Param({"zero", "lastByte"})
    public String content;

    private byte[] block;

    @Setup
    public void setUp() {
        block = new byte[BLOCK];
        if (content.equals("lastByte")) {
            block[BLOCK - 1] = 1;
        }
    }

    @Benchmark
    public boolean isZero() {
        return Zeros.isZero(block, 0, block.length);
    }

    /** The obvious loop, for comparison: one byte at a time, stopping at the first non-zero byte. */
    @Benchmark
    public boolean byteLoop() {
        byte[] b = block;
        for (int i = 0; i < b.length; i++) {
            if (b[i] != 0) {
                return false;
            }
        }
        return true;
    }
}
