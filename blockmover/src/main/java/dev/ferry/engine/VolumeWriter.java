package dev.ferry.engine;

import java.io.IOException;

/** Where a restore writes a volume: a file, a block device, or an engine's restore target. Thread-safe. */
public interface VolumeWriter extends VolumeReader {
    /**
     * Whether every byte of the target is known to read as zero (a new sparse file), so that zero blocks need
     * no writing and nothing already there needs checking.
     */
    boolean knownZero();

    /** Writes {@code len} bytes from {@code buf} at {@code offset}. */
    void write(long offset, byte[] buf, int off, int len) throws IOException;

    /** Makes {@code len} bytes at {@code offset} read as zeros (a hole where the target supports one). */
    void zero(long offset, int len) throws IOException;

    /** Makes everything written durable. */
    void sync() throws IOException;
}
