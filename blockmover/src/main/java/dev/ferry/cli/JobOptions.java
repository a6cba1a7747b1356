package dev.ferry.cli;

import picocli.CommandLine.Option;

/** Options shared by the commands that move data (backup, restore): worker threads and a JSON summary. */
final class JobOptions {
    @Option(names = "--threads", paramLabel = "N", description = "Worker threads (default: one per core).")
    int threads = Runtime.getRuntime().availableProcessors();

    @Option(names = "--json", description = "Print a JSON summary instead of text.")
    boolean json;

    /** The thread count, checked. */
    int threads() {
        if (threads < 1 || threads > 256) {
            throw new IllegalArgumentException("--threads must be 1..256, got " + threads);
        }
        return threads;
    }
}
