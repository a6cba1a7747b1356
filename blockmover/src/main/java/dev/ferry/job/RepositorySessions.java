package dev.ferry.job;

/**
 * Repositories kept open between jobs: a daemon opens a repository (store, keys, index) for its first job and
 * lets later jobs on the same repository, with the same key, share it. A command-line run has none.
 *
 * <p>Placeholder of the job layer's API: sharing is filled in with the job layer.
 */
public final class RepositorySessions implements AutoCloseable {
    @Override
    public void close() {
    }
}
