package dev.ferry.job;

/**
 * What the caller of a job gives it: the CLI one per process, a daemon one per job.
 *
 * @param cancellation asks the job to stop
 * @param listener     receives the job's progress and warnings
 * @param sessions     repositories kept open between jobs (a daemon's), or null to open and close per job
 */
public record JobContext(Cancellation cancellation, JobListener listener, RepositorySessions sessions) {
    /** A context for a run of its own: never cancelled except through {@code cancellation}, no shared sessions. */
    public static JobContext standalone() {
        return new JobContext(new Cancellation(), JobListener.NONE, null);
    }
}
