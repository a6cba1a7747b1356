package dev.ferry.cli;

import picocli.CommandLine.Option;

/** Options shared by the commands that move data (backup, restore): worker threads. */
public final class JobOptions {
    @Option(names = "--threads", paramLabel = "N", description = "Worker threads (default: one per core).")
    int threads = Runtime.getRuntime().availableProcessors();

    /** The thread count, checked. */
    public int threads() {
        if (threads < 1 || threads > 256) {
            throw new UsageException("--threads must be 1..256, got " + threads);
        }
        return threads;
    }
}
