package dev.ferry.engine;

import java.io.IOException;

/**
 * A volume being restored by an engine: Ferry writes the data through {@link #writer()}, then calls
 * {@link #finish(boolean)}. An engine uses {@code finish(true)} to make the volume usable (for cStor: connect
 * the replicas to the target only now that every copy is complete) and {@code finish(false)} to clean up.
 */
public interface RestoreTarget extends AutoCloseable {
    VolumeWriter writer();

    void finish(boolean success) throws IOException;

    /** Same as {@code finish(false)} if neither finish was called; releases what the target holds. */
    @Override
    void close() throws IOException;
}
