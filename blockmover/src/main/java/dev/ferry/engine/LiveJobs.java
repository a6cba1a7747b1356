package dev.ferry.engine;

/**
 * What a process knows of the jobs running on its node, for engines that must tell what they left behind from
 * what another job still uses (ZFS's temporary read clones). A daemon that runs the node's jobs implements it;
 * a command-line run knows only itself ({@link #NONE}).
 */
public interface LiveJobs {
    /** Whether the job {@code jobId} runs in this process now. */
    boolean isLive(String jobId);

    /**
     * Whether this process runs every job of the node, so that a job id it does not know as live belongs to a
     * job that has ended (true for the node's daemon, false for a command-line run).
     */
    boolean runsTheNodesJobs();

    /** A process that knows of no job but its own and owns none of the node's. */
    LiveJobs NONE = new LiveJobs() {
        @Override
        public boolean isLive(String jobId) {
            return false;
        }

        @Override
        public boolean runsTheNodesJobs() {
            return false;
        }
    };
}
