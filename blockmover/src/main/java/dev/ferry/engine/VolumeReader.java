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

    /**
     * Facts about what is being read that a backup records with the engine's (a file's object number...).
     * Engines pass them back to {@link Engine#changedRanges} through the base snapshot's properties.
     */
    default java.util.Map<String, String> properties() {
        return java.util.Map.of();
    }
}
