package dev.ferry.zfs;

import dev.ferry.engine.EngineContext;
import dev.ferry.engine.LiveJobs;
import java.io.IOException;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.function.LongPredicate;

/**
 * Who made a temporary read clone, recorded in its user property {@value #PROPERTY} as
 * {@code <node>/<boot id>/<job id>}: the job id is a daemon's job or {@code pid-<N>} for a command-line run,
 * whose clones also carry the PID namespace in {@value #PIDNS_PROPERTY} (a PID means something only there).
 * Unlike a PID alone, this survives PID namespaces, daemon restarts and reboots, and tells which node a clone is
 * from when a pool moves between nodes.
 */
record CloneOwner(String node, String bootId, String jobId) {
    static final String PROPERTY = "dev.ferry:owner";
    static final String PIDNS_PROPERTY = "dev.ferry:pidns";

    CloneOwner {
        if (node.isEmpty() || node.contains("/") || bootId.isEmpty() || bootId.contains("/")) {
            throw new IllegalArgumentException("bad clone owner " + node + "/" + bootId);
        }
        EngineContext.checkJobId(jobId);
    }

    String value() {
        return node + "/" + bootId + "/" + jobId;
    }

    /** The owner a property value names, or null if it is not one. */
    static CloneOwner parse(String value) {
        if (value == null) {
            return null;
        }
        String[] f = value.split("/", -1);
        if (f.length != 3) {
            return null;
        }
        try {
            return new CloneOwner(f[0], f[1], f[2]);
        } catch (IllegalArgumentException e) {
            return null;
        }
    }

    /** This node as clone owners name it: its name, its current boot, and the PID namespace of this process. */
    record Node(String name, String bootId, String pidNamespace) {
        /**
         * The node's name from $FERRY_HOSTNAME (in Kubernetes: the node's name, from the downward API, as a pod's
         * host name is the pod's), else the host name; the boot id from {@code /proc/sys/kernel/random/boot_id}.
         */
        static Node of(Map<String, String> env) {
            String name = env.get("FERRY_HOSTNAME");
            if (name == null || name.isBlank()) {
                name = read(Path.of("/proc/sys/kernel/hostname"));
            }
            if (name == null || name.isBlank()) {
                try {
                    name = InetAddress.getLocalHost().getHostName();
                } catch (IOException e) {
                    name = "unknown";
                }
            }
            String boot = read(Path.of("/proc/sys/kernel/random/boot_id"));
            String ns;
            try {
                ns = Files.readSymbolicLink(Path.of("/proc/self/ns/pid")).toString().replaceAll("[^0-9]", "");
            } catch (IOException | UnsupportedOperationException e) {
                ns = "";
            }
            return new Node(name.strip().replaceAll("[^A-Za-z0-9._:-]", "_"),
                    boot == null || boot.isBlank() ? "unknown" : boot.strip(), ns);
        }

        private static String read(Path p) {
            try {
                return Files.readString(p, StandardCharsets.UTF_8);
            } catch (IOException e) {
                return null;
            }
        }
    }

    /**
     * Whether a clone of this owner is a leftover that {@code me} may destroy. Never one of another node. One of
     * an earlier boot of this node (no job survives a reboot). In this boot: a command-line run's clone once its
     * process is gone (judged only from its own PID namespace: {@code pidNamespace} is what the clone recorded,
     * and elsewhere the PID cannot be looked up), and a daemon job's clone only when this process runs the
     * node's jobs and that job is not live in it.
     */
    boolean stale(Node me, String pidNamespace, LiveJobs live, LongPredicate pidAlive) {
        if (!node.equals(me.name())) {
            return false;
        }
        if ("unknown".equals(me.bootId())) {
            return false; // cannot tell a reboot
        }
        if (!bootId.equals(me.bootId())) {
            return true;
        }
        if (jobId.startsWith(EngineContext.PID_PREFIX)) {
            if (pidNamespace == null || pidNamespace.isEmpty() || !pidNamespace.equals(me.pidNamespace())) {
                return false;
            }
            long pid = Long.parseLong(jobId.substring(EngineContext.PID_PREFIX.length()));
            return !pidAlive.test(pid);
        }
        return live.runsTheNodesJobs() && !live.isLive(jobId);
    }
}
