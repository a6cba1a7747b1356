package dev.ferry.engine;

import dev.ferry.job.Cancellation;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * The job an engine works for (see {@link Engine#forJob}): its cancellation, which ends the engine's child
 * processes and waits, its id, which marks what the engine leaves on the node while the job runs (ZFS read
 * clones), and what the process knows of the node's live jobs, to tell leftovers from what others still use.
 *
 * <p>Job ids are made of {@code [A-Za-z0-9._:-]} (at most 128 characters). Ids starting with {@code pid-} are
 * those of command-line runs ({@link #standalone}: {@code pid-<process id>}); a daemon's job ids
 * ({@link #of}) may not start with it.
 */
public record EngineContext(Cancellation cancellation, String jobId, LiveJobs liveJobs) {
    private static final Pattern JOB_ID = Pattern.compile("[A-Za-z0-9._:-]{1,128}");
    /** Prefix of the job ids of command-line runs. */
    public static final String PID_PREFIX = "pid-";

    public EngineContext {
        Objects.requireNonNull(cancellation, "cancellation");
        Objects.requireNonNull(liveJobs, "liveJobs");
        checkJobId(jobId);
        if (jobId.startsWith(PID_PREFIX) && !jobId.substring(PID_PREFIX.length()).matches("[0-9]{1,19}")) {
            throw new IllegalArgumentException("a job id starting with " + PID_PREFIX + " names a process: " + jobId);
        }
    }

    /** The context of a daemon's job {@code jobId} (not starting with {@code pid-}). */
    public static EngineContext of(Cancellation cancellation, String jobId, LiveJobs liveJobs) {
        checkJobId(jobId);
        if (jobId.startsWith(PID_PREFIX)) {
            throw new IllegalArgumentException("a daemon's job id may not start with '" + PID_PREFIX + "': " + jobId);
        }
        return new EngineContext(cancellation, jobId, liveJobs);
    }

    /** The context of a command-line run: the job is this process ({@code pid-<pid>}), which owns no other job. */
    public static EngineContext standalone(Cancellation cancellation) {
        return new EngineContext(cancellation, PID_PREFIX + ProcessHandle.current().pid(), LiveJobs.NONE);
    }

    /** Whether this is a command-line run's context. */
    public boolean isStandalone() {
        return jobId.startsWith(PID_PREFIX);
    }

    /** Refuses a job id that is not 1 to 128 of {@code [A-Za-z0-9._:-]}. */
    public static void checkJobId(String jobId) {
        if (jobId == null || !JOB_ID.matcher(jobId).matches()) {
            throw new IllegalArgumentException("a job id is 1 to 128 of A-Z a-z 0-9 . _ : -, not '" + jobId + "'");
        }
    }
}
