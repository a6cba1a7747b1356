package dev.ferry.engine;

import java.io.Closeable;
import java.io.IOException;

/** Reads the content of a volume or of one of its snapshots. Safe for use by several threads at once. */
public interface VolumeReader extends Closeable {
    /** Size of the volume in bytes. */
    long size();

    /**
     * Reads {@code len} bytes at {@code offset} into {@code buf}; fewer only where the volume ends. Returns the
     * number of bytes read.
     */
    int read(long offset, byte[] buf, int off, int len) throws IOException;
}
