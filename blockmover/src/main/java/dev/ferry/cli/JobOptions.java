package dev.ferry.cli;

import picocli.CommandLine.Option;

/** Options shared by the commands that move data (backup, restore): worker threads and a JSON summary. */
public final class JobOptions {
    @Option(names = "--threads", paramLabel = "N", description = "Worker threads (default: one per core).")
    int threads = Runtime.getRuntime().availableProcessors();

    @Option(names = "--json", description = "Print a JSON summary instead of text.")
    boolean json;

    /** Whether a JSON summary was asked for. */
    public boolean json() {
        return json;
    }

    /** The thread count, checked. */
    public int threads() {
        if (threads < 1 || threads > 256) {
            throw new IllegalArgumentException("--threads must be 1..256, got " + threads);
        }
        return threads;
    }
}
