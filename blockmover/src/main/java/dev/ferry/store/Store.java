package dev.ferry.store;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * Where repository objects live: a flat namespace of names such as {@code config}, {@code keys/<id>},
 * {@code index/<id>} and {@code data/<xx>/<id>}. Names use '/' as separator and never start with '/'.
 *
 * <p>Every implementation keeps the same guarantees, which the repository relies on:
 * <ul>
 *   <li>{@code put} is atomic: a reader sees either no object or the whole new object, never a part of it;
 *       a crash during {@code put} leaves no object under that name.</li>
 *   <li>{@code put} returns only once the object is durable (fsync on a local directory, a completed PUT on S3).</li>
 *   <li>Implementations are safe for use by several threads at once.</li>
 * </ul>
 */
public interface Store extends AutoCloseable {

    /** Where this store points, for messages: a directory path or {@code s3://bucket/prefix}. */
    String location();

    /** Whether an object of that name exists. */
    boolean exists(String name) throws IOException;

    /** Size in bytes of an object; {@link NoSuchObjectException} if it does not exist. */
    long size(String name) throws IOException;

    /** The whole content of an object; {@link NoSuchObjectException} if it does not exist. */
    byte[] get(String name) throws IOException;

    /**
     * {@code length} bytes of an object starting at {@code offset}. Throws {@link java.io.EOFException} if the
     * object is shorter than {@code offset + length}, {@link NoSuchObjectException} if it does not exist.
     */
    byte[] getRange(String name, long offset, int length) throws IOException;

    /**
     * Reads {@code length} bytes at {@code offset} into {@code into} (from index 0), like {@link #getRange};
     * stores that can read into a caller's buffer avoid an allocation per read.
     */
    default void readRange(String name, long offset, byte[] into, int length) throws IOException {
        System.arraycopy(getRange(name, offset, length), 0, into, 0, length);
    }

    /** Stores {@code data} under {@code name}, atomically and durably, replacing any previous object. */
    void put(String name, byte[] data) throws IOException;

    /**
     * Stores the content of a local file under {@code name}, atomically and durably. The file is left in place
     * unless it lies in {@link #stagingDirectory()}, in which case the store may move it.
     */
    void put(String name, Path file) throws IOException;

    /**
     * Every object whose name starts with {@code prefix} (for example {@code "data/"}), at any depth, with its
     * size. Order is unspecified. Objects being written (temporary files, incomplete uploads) are not listed.
     */
    List<StoreObject> list(String prefix) throws IOException;

    /** Removes an object. Removing a missing object is not an error. */
    void delete(String name) throws IOException;

    /**
     * Makes the store ready to receive a new repository, or refuses with a clear message: a local store
     * creates its directory and refuses one that holds unrelated files; an S3 store creates the bucket if it
     * does not exist. Called by {@code init} before anything is written.
     */
    default void prepareForNewRepository() throws IOException {
    }

    /**
     * A local directory where callers may prepare files they are about to {@link #put(String, Path)}, so that
     * a local store can move them into place instead of copying; {@code null} when the store has no such place.
     */
    default Path stagingDirectory() {
        return null;
    }

    /**
     * Removes files in {@link #stagingDirectory()} older than {@code olderThan}: writes of processes that died.
     * Called by prune when no writer runs. Returns how many were removed.
     */
    default int removeAbandonedStaging(java.time.Duration olderThan) throws IOException {
        return 0;
    }

    /**
     * Whether {@code path}, once its symbolic links are resolved (a dangling link too: where a file created
     * through it would land), is this store's directory or lies inside it, or is a hard link to one of its
     * files: a restore must never write there. Always false for a store that is not a local directory.
     */
    default boolean contains(Path path) throws IOException {
        return false;
    }

    /**
     * Whether this store's directory is {@code dir} or lies inside it (symbolic links resolved): a restore of
     * files into {@code dir} could write around, or over, the repository. Always false for a store that is not
     * a local directory.
     */
    default boolean isInside(Path dir) throws IOException {
        return false;
    }

    @Override
    void close() throws IOException;
}
