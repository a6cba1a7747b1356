package dev.ferry.repo;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.OptionalLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The process table this process sees, read from Linux's {@code /proc}: which host, kernel boot and pid
 * namespace it is, and when the process with a given pid started. A lock records these facts about its holder
 * so that a holder that died on the same host is known at once (see {@link RepositoryLock}); a pid means
 * something only within one boot and one pid namespace (two pods on one node each have a pid 1).
 *
 * <p>Start times are field 22 of {@code /proc/<pid>/stat}, clock ticks since boot: the same figure, to the tick,
 * for the holder reading its own and for anyone reading it later, unlike a wall-clock start time, which depends
 * on the boot time the kernel reports at the moment it is read.
 *
 * <p>Where {@code /proc} is missing or incomplete (not Linux, a restricted container) the table has no
 * {@link #identity()}; where the {@code /proc} mount is not of this process's pid namespace, or hides other
 * users' processes ({@code hidepid}), it cannot {@link #canLookUp() look up} other processes. Either way locks
 * fall back to the 15-minute rule.
 */
public final class ProcessTable {
    private static final Logger log = LoggerFactory.getLogger(ProcessTable.class);

    /**
     * What makes a pid meaningful: the host name Ferry records, the kernel's boot id, the inode of the pid
     * namespace and the inode of the time namespace ({@code null} on kernels without time namespaces; clock
     * ticks since boot read in another time namespace differ).
     */
    public record Identity(String hostname, String bootId, long pidNamespace, Long timeNamespace) {
    }

    private final Path proc;
    private final String hostname;
    private final long selfPid;
    private final Identity identity;
    private final Long selfStartTicks;
    private final boolean canLookUp;

    private ProcessTable(Path proc, String hostname, long selfPid, Identity identity, Long selfStartTicks,
                         boolean canLookUp) {
        this.proc = proc;
        this.hostname = hostname;
        this.selfPid = selfPid;
        this.identity = identity;
        this.selfStartTicks = selfStartTicks;
        this.canLookUp = canLookUp;
    }

    /** The table of this process, whose locks carry {@code hostname}. Never fails: missing facts stay unknown. */
    public static ProcessTable local(String hostname) {
        return at(Path.of("/proc"), hostname, ProcessHandle.current().pid());
    }

    /** A table about which nothing is known: every lock keeps the 15-minute rule. */
    public static ProcessTable unknown(String hostname) {
        return new ProcessTable(null, hostname, ProcessHandle.current().pid(), null, null, false);
    }

    /** The table seen through the proc file system mounted at {@code proc}, by the process {@code selfPid}. */
    static ProcessTable at(Path proc, String hostname, long selfPid) {
        Identity identity;
        long ticks;
        try {
            String bootId = Files.readString(proc.resolve("sys/kernel/random/boot_id"), StandardCharsets.US_ASCII)
                    .strip();
            long pidNs = namespace(proc.resolve("self/ns/pid"), "pid");
            Path timeLink = proc.resolve("self/ns/time");
            Long timeNs = Files.exists(timeLink, java.nio.file.LinkOption.NOFOLLOW_LINKS)
                    ? namespace(timeLink, "time") : null;
            ticks = startTicks(Files.readString(proc.resolve("self/stat"), StandardCharsets.ISO_8859_1));
            if (bootId.isEmpty()) {
                throw new IOException("empty boot id");
            }
            identity = new Identity(hostname, bootId, pidNs, timeNs);
        } catch (IOException | RuntimeException e) {
            log.debug("no process facts from {}: {}", proc, e.toString());
            return new ProcessTable(proc, hostname, selfPid, null, null, false);
        }
        String why = lookupProblem(proc, selfPid);
        if (why != null) {
            log.debug("other processes are not looked up in {}: {}", proc, why);
        }
        return new ProcessTable(proc, hostname, selfPid, identity, ticks, why == null);
    }

    /**
     * Why pids of this namespace cannot be looked up in this {@code /proc}, or null if they can: its mount must
     * belong to our pid namespace (our NSpid has one entry, our pid) and show every process (no hidepid).
     */
    private static String lookupProblem(Path proc, long selfPid) {
        try {
            String nsPid = null;
            for (String line : Files.readAllLines(proc.resolve("self/status"), StandardCharsets.UTF_8)) {
                if (line.startsWith("NSpid:")) {
                    nsPid = line.substring("NSpid:".length()).strip();
                }
            }
            if (nsPid == null || !nsPid.equals(Long.toString(selfPid))) {
                return "the proc mount is not of this pid namespace (NSpid: " + nsPid + ", pid " + selfPid + ")";
            }
            String[] procMount = null;
            for (String line : Files.readAllLines(proc.resolve("self/mountinfo"), StandardCharsets.UTF_8)) {
                String[] f = line.split(" ");
                int dash = List.of(f).indexOf("-");
                if (f.length > 4 && "/proc".equals(f[4]) && dash > 0 && dash + 1 < f.length
                        && "proc".equals(f[dash + 1])) {
                    procMount = f; // the last one mounted at /proc is the one seen
                }
            }
            if (procMount == null) {
                return "no proc file system mounted at /proc";
            }
            for (String field : procMount) {
                for (String option : field.split(",")) {
                    if (option.startsWith("hidepid=") && !option.equals("hidepid=0") && !option.equals("hidepid=off")) {
                        return "/proc is mounted with " + option;
                    }
                }
            }
            return null;
        } catch (IOException | RuntimeException e) {
            return e.toString();
        }
    }

    /** The inode in a namespace link's target, e.g. {@code pid:[4026531836]}. */
    private static long namespace(Path link, String type) throws IOException {
        String target = Files.readSymbolicLink(link).toString();
        String prefix = type + ":[";
        if (!target.startsWith(prefix) || !target.endsWith("]")) {
            throw new IOException("unexpected namespace link " + link + " -> " + target);
        }
        return Long.parseLong(target.substring(prefix.length(), target.length() - 1));
    }

    /**
     * Field 22 (starttime) of a {@code /proc/<pid>/stat} line. Field 2 is the command name in parentheses, which
     * may itself hold spaces and parentheses, so fields are counted after the last ')'.
     */
    static long startTicks(String stat) throws IOException {
        int close = stat.lastIndexOf(')');
        String[] f = close < 0 ? new String[0] : stat.substring(close + 1).strip().split(" ");
        if (f.length < 20) { // f[0] is field 3 (state), so field 22 is f[19]
            throw new IOException("unexpected /proc stat line: " + stat.strip());
        }
        return Long.parseLong(f[19]);
    }

    public String hostname() {
        return hostname;
    }

    public long selfPid() {
        return selfPid;
    }

    /** The host, boot and namespaces of this process; null where {@code /proc} does not tell. */
    public Identity identity() {
        return identity;
    }

    /** This process's start in clock ticks since boot; null where unknown. */
    public Long selfStartTicks() {
        return selfStartTicks;
    }

    /** Whether {@link #startTicks(long)} answers for every process of this namespace. */
    public boolean canLookUp() {
        return canLookUp;
    }

    /**
     * When the process {@code pid} of this namespace started, in clock ticks since boot; empty if no such
     * process exists.
     *
     * @throws IOException if the table cannot be searched or the process's entry cannot be read
     */
    public OptionalLong startTicks(long pid) throws IOException {
        if (!canLookUp) {
            throw new IOException("processes cannot be looked up here");
        }
        if (pid <= 0) {
            return OptionalLong.empty();
        }
        String stat;
        try {
            stat = Files.readString(proc.resolve(Long.toString(pid)).resolve("stat"), StandardCharsets.ISO_8859_1);
        } catch (NoSuchFileException gone) {
            return OptionalLong.empty();
        } catch (IOException e) {
            // a process that exits while its entry is read fails with ESRCH: gone is gone
            if (!Files.exists(proc.resolve(Long.toString(pid)))) {
                return OptionalLong.empty();
            }
            throw e;
        }
        return OptionalLong.of(startTicks(stat));
    }
}
