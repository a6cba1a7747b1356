package dev.ferry.job;

/** Receives a job's {@link JobEvent}s. Called from the job's threads: implementations are thread-safe and cheap. */
@FunctionalInterface
public interface JobListener {
    void event(JobEvent e);

    JobListener NONE = e -> {
    };
}
