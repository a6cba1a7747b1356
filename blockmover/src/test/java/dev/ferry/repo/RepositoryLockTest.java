package dev.ferry.repo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.store.LocalStore;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RepositoryLockTest {
    static final String HOST = "node-1";

    @TempDir
    Path dir;
    LocalStore store;
    ProcessTable local;

    @BeforeEach
    void setUp() throws Exception {
        store = new LocalStore(dir.resolve("repo"));
        local = ProcessTable.local(HOST);
    }

    /** A lock as a process with these facts writes it, refreshed at {@code refreshed}. */
    static RepositoryLock.Info lockOf(ProcessTable.Identity id, long pid, Long startTicks, Instant refreshed) {
        return new RepositoryLock.Info("backup", id.hostname(), pid, refreshed.toString(), refreshed.toString(),
                id.bootId(), id.pidNamespace(), id.timeNamespace(), startTicks);
    }

    private RepositoryLock.Found find(String name) throws Exception {
        return RepositoryLock.list(store).stream().filter(f -> f.name().equals(name)).findFirst().orElseThrow();
    }

    private String put(String name, RepositoryLock.Info info) throws Exception {
        store.put(RepositoryLock.PREFIX + name, Json.MAPPER.writeValueAsBytes(info));
        return RepositoryLock.PREFIX + name;
    }

    /** Starts {@code sleep}: a process of this host whose pid and start we know. */
    static Process sleeper() throws Exception {
        return new ProcessBuilder("sleep", "600").redirectErrorStream(true).start();
    }

    /** Kills {@code p} with SIGKILL and waits until it is reaped, so its pid is gone. */
    static void kill(Process p) throws Exception {
        p.destroyForcibly();
        assertTrue(p.waitFor(30, TimeUnit.SECONDS), "the killed process ended");
        assertEquals(137, p.exitValue(), "it died of SIGKILL");
    }

    @Test
    void aLockRecordsItsHoldersProcessAndIsLiveWhileItRuns() throws Exception {
        assumeTrue(local.canLookUp(), "needs a readable Linux /proc");
        long self = ProcessHandle.current().pid();
        try (RepositoryLock lock = RepositoryLock.acquire(store, "backup", HOST, Clock.systemUTC())) {
            JsonNode json = Json.MAPPER.readTree(store.get(lock.name()));
            assertEquals(Files.readString(Path.of("/proc/sys/kernel/random/boot_id")).strip(),
                    json.get("boot_id").asText(), json.toString());
            String ns = Files.readSymbolicLink(Path.of("/proc/self/ns/pid")).toString();
            assertEquals(ns, "pid:[" + json.get("pid_namespace").asLong() + "]");
            assertEquals(self, json.get("pid").asLong());
            String stat = Files.readString(Path.of("/proc/self/stat"));
            String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            assertEquals(Long.parseLong(fields[19]), json.get("start_ticks").asLong(), stat);

            // judged by this process and by a fresh look at the table: live, at once and until stale by time
            RepositoryLock.Found found = find(lock.name());
            for (ProcessTable t : List.of(local, ProcessTable.local(HOST), lock.processes())) {
                RepositoryLock.Staleness s = found.staleness(Instant.now(), t);
                assertFalse(s.stale(), s.reason());
                assertTrue(s.reason().startsWith("live on this host: pid " + self + " since "), s.reason());
            }
            assertTrue(found.isStale(Instant.now().plus(Duration.ofMinutes(16)), local),
                    "an alive holder that stopped refreshing is stale after 15 minutes, as before");

            // another process that now has our pid started at another time: the holder is gone
            ProcessTable.Identity id = local.identity();
            String reused = put("reused", lockOf(id, self, local.selfStartTicks() - 1, Instant.now()));
            RepositoryLock.Staleness s = find(reused).staleness(Instant.now(), local);
            assertTrue(s.stale(), s.reason());
            assertTrue(s.reason().contains("is now another process"), s.reason());
        }
    }

    @Test
    void aHolderKilledWithSigkillIsStaleAtOnce() throws Exception {
        assumeTrue(local.canLookUp(), "needs a readable Linux /proc");
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Process holder = new ProcessBuilder(java.toString(), "-cp", System.getProperty("java.class.path"),
                LockHolder.class.getName(), dir.resolve("repo").toString(), HOST)
                .redirectError(dir.resolve("holder.err").toFile()).start();
        try {
            BufferedReader out = new BufferedReader(new InputStreamReader(holder.getInputStream(),
                    StandardCharsets.UTF_8));
            String name = CompletableFuture.supplyAsync(() -> {
                try {
                    String line;
                    do { // past any log lines
                        line = out.readLine();
                    } while (line != null && !line.startsWith(RepositoryLock.PREFIX));
                    return line;
                } catch (java.io.IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            }).get(60, TimeUnit.SECONDS);
            assertNotNull(name, () -> "the holder stored no lock: " + read(dir.resolve("holder.err")));
            RepositoryLock.Found found = find(name);
            assertEquals(holder.pid(), found.info().pid());
            assertEquals(local.startTicks(holder.pid()).getAsLong(), found.info().startTicks(),
                    "the holder recorded its start as we read it");
            RepositoryLock.Staleness live = found.staleness(Instant.now(), local);
            assertFalse(live.stale(), live.reason());
            assertTrue(live.reason().contains("live on this host: pid " + holder.pid()), live.reason());
            List<RepositoryLock.Unlocked> kept = RepositoryLock.unlock(store, Instant.now(), local, false, false);
            assertEquals(1, kept.size());
            assertFalse(kept.get(0).removed(), kept.toString());
            assertTrue(store.exists(name));

            kill(holder);
            RepositoryLock.Staleness dead = find(name).staleness(Instant.now(), local);
            assertTrue(dead.stale(), "a fresh lock of a killed holder is stale without waiting: " + dead.reason());
            assertEquals("its process (pid " + holder.pid() + ") is gone from this host", dead.reason());
            List<RepositoryLock.Unlocked> removed = RepositoryLock.unlock(store, Instant.now(), local, false, false);
            assertTrue(removed.get(0).removed(), removed.toString());
            assertFalse(store.exists(name));
        } finally {
            holder.destroyForcibly();
        }
    }

    private static String read(Path p) {
        try {
            return Files.readString(p);
        } catch (java.io.IOException e) {
            return e.toString();
        }
    }

    @Test
    void aLiveChildIsLiveAndAReusedPidIsNot() throws Exception {
        assumeTrue(local.canLookUp(), "needs a readable Linux /proc");
        Process child = sleeper();
        try {
            long ticks = local.startTicks(child.pid()).getAsLong();
            Instant now = Instant.now();
            String live = put("live", lockOf(local.identity(), child.pid(), ticks, now));
            String reused = put("reused", lockOf(local.identity(), child.pid(), ticks + 1, now));
            assertFalse(find(live).isStale(now, local), find(live).staleness(now, local).reason());
            assertTrue(find(reused).isStale(now, local), "same pid, another start: another process");
            kill(child);
            assertEquals(OptionalLong.empty(), local.startTicks(child.pid()));
            assertTrue(find(live).isStale(now, local), "its process is gone");
        } finally {
            child.destroyForcibly();
        }
    }

    @Test
    void locksOfOtherHostsBootsNamespacesAndOlderVersionsKeepTheFifteenMinuteRule() throws Exception {
        assumeTrue(local.canLookUp(), "needs a readable Linux /proc");
        Process child = sleeper();
        long ticks = local.startTicks(child.pid()).getAsLong();
        kill(child); // a pid that is gone here
        ProcessTable.Identity id = local.identity();
        Instant t = Instant.parse("2026-11-23T19:17:14.320Z");
        Map<String, RepositoryLock.Info> locks = Map.of(
                "here", lockOf(id, child.pid(), ticks, t),
                "other-host", lockOf(new ProcessTable.Identity("node-2", id.bootId(), id.pidNamespace(),
                        id.timeNamespace()), child.pid(), ticks, t),
                "other-boot", lockOf(new ProcessTable.Identity(HOST, "6a1b7e1c-0000-4000-8000-000000000000",
                        id.pidNamespace(), id.timeNamespace()), child.pid(), ticks, t),
                "other-pid-ns", lockOf(new ProcessTable.Identity(HOST, id.bootId(), id.pidNamespace() + 1,
                        id.timeNamespace()), child.pid(), ticks, t),
                "other-time-ns", lockOf(new ProcessTable.Identity(HOST, id.bootId(), id.pidNamespace(),
                        id.timeNamespace() == null ? 7L : id.timeNamespace() + 1), child.pid(), ticks, t));
        for (Map.Entry<String, RepositoryLock.Info> e : locks.entrySet()) {
            put(e.getKey(), e.getValue());
        }
        // a lock as Ferry wrote it before locks named their process
        store.put(RepositoryLock.PREFIX + "older", ("{ \"operation\" : \"backup\", \"hostname\" : \"" + HOST
                + "\", \"pid\" : " + child.pid() + ", \"created\" : \"" + t + "\", \"refreshed\" : \"" + t + "\" }")
                .getBytes(StandardCharsets.UTF_8));

        Instant within = t.plus(Duration.ofMinutes(14));
        Instant after = t.plus(Duration.ofMinutes(15)).plusMillis(1);
        Map<String, RepositoryLock.Found> found = RepositoryLock.list(store).stream()
                .collect(Collectors.toMap(f -> f.name().substring(RepositoryLock.PREFIX.length()), f -> f));
        assertEquals(6, found.size());
        assertNull(found.get("older").info().startTicks());
        assertTrue(found.get("here").isStale(within, local), "only a holder of our own table is looked up");
        assertFalse(found.get("here").isStale(within, ProcessTable.unknown(HOST)), "where /proc tells nothing");
        for (String name : List.of("other-host", "other-boot", "other-pid-ns", "other-time-ns", "older")) {
            RepositoryLock.Staleness s = found.get(name).staleness(within, local);
            assertFalse(s.stale(), name + ": " + s.reason());
            assertTrue(s.reason().contains("refreshed " + t), s.reason());
            assertTrue(found.get(name).isStale(after, local), name);
        }
        assertTrue(found.get("other-host").staleness(within, local).reason().startsWith("other host node-2"));
        assertTrue(found.get("here").isStale(after, ProcessTable.unknown(HOST)));
    }

    @Test
    void unlockRemovesStaleLocksOnlyAndRemoveAllRemovesEvery() throws Exception {
        Instant now = Instant.now();
        RepositoryLock own = RepositoryLock.acquire(store, "backup", HOST, Clock.systemUTC(), local);
        String fresh = put("fresh", lockOf(new ProcessTable.Identity("node-2", "b", 1, null), 12, 34L, now));
        String old = put("old", lockOf(new ProcessTable.Identity("node-2", "b", 1, null), 12, 34L,
                now.minus(Duration.ofMinutes(16))));
        String unreadable = RepositoryLock.PREFIX + "unreadable";
        store.put(unreadable, "{ not json".getBytes(StandardCharsets.UTF_8));
        try {
            List<RepositoryLock.Unlocked> dry = RepositoryLock.unlock(store, now, local, false, true);
            assertEquals(List.of(fresh, old, own.name(), unreadable).stream().sorted().toList(),
                    dry.stream().map(u -> u.lock().name()).toList());
            assertEquals(List.of(old), dry.stream().filter(RepositoryLock.Unlocked::removed)
                    .map(u -> u.lock().name()).toList());
            assertEquals(4, store.list(RepositoryLock.PREFIX).size(), "a dry run removes nothing");

            List<RepositoryLock.Unlocked> done = RepositoryLock.unlock(store, now, local, false, false);
            assertEquals(1, done.stream().filter(RepositoryLock.Unlocked::removed).count(), done.toString());
            assertFalse(store.exists(old));
            assertTrue(store.exists(fresh) && store.exists(own.name()) && store.exists(unreadable));
            RepositoryLock.Unlocked bad = done.stream().filter(u -> u.lock().name().equals(unreadable))
                    .findFirst().orElseThrow();
            assertNull(bad.lock().info());
            assertTrue(bad.staleness().reason().contains("ferry unlock --remove-all"), bad.staleness().reason());

            List<RepositoryLock.Unlocked> all = RepositoryLock.unlock(store, now, local, true, false);
            assertEquals(3, all.size());
            assertTrue(all.stream().allMatch(RepositoryLock.Unlocked::removed));
            assertTrue(store.list(RepositoryLock.PREFIX).isEmpty());
            assertTrue(RepositoryLock.unlock(store, now, local, false, false).isEmpty());
        } finally {
            own.close();
        }
    }

    @Test
    void theProcessTableIsReadFromProcAndDistrustedWhereItMisleads() throws Exception {
        assertEquals(4711, ProcessTable.startTicks("42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 "
                + "1 0 4711 12345 67 18446744073709551615"), "the command name may hold spaces and parentheses");

        Path proc = dir.resolve("proc");
        Files.createDirectories(proc.resolve("sys/kernel/random"));
        Files.createDirectories(proc.resolve("self/ns"));
        Files.createDirectories(proc.resolve("77"));
        Files.writeString(proc.resolve("sys/kernel/random/boot_id"), "3f0c9a4e-5d2b-4b8e-9a51-7c2d0e6f1a23\n");
        Files.createSymbolicLink(proc.resolve("self/ns/pid"), Path.of("pid:[4026532210]"));
        Files.writeString(proc.resolve("self/stat"), "9 (java) S 1 9 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 30 0 555 1 1\n");
        Files.writeString(proc.resolve("77/stat"), "77 (sleep 1) S 9 77 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 901 1 1\n");
        Files.writeString(proc.resolve("self/status"), "Name:\tjava\nNSpid:\t9\n");
        String mount = "21 26 0:20 / /proc rw,nosuid - proc proc rw";
        Files.writeString(proc.resolve("self/mountinfo"), "20 1 8:1 / / rw - ext4 /dev/sda1 rw\n" + mount + "\n");

        ProcessTable t = ProcessTable.at(proc, HOST, 9);
        assertEquals(new ProcessTable.Identity(HOST, "3f0c9a4e-5d2b-4b8e-9a51-7c2d0e6f1a23", 4026532210L, null),
                t.identity());
        assertEquals(555L, t.selfStartTicks());
        assertTrue(t.canLookUp());
        assertEquals(OptionalLong.of(901), t.startTicks(77));
        assertEquals(OptionalLong.empty(), t.startTicks(78));

        Files.createSymbolicLink(proc.resolve("self/ns/time"), Path.of("time:[4026531834]"));
        assertEquals(4026531834L, ProcessTable.at(proc, HOST, 9).identity().timeNamespace());

        Files.writeString(proc.resolve("self/mountinfo"), mount + " hidepid=invisible\n");
        assertFalse(ProcessTable.at(proc, HOST, 9).canLookUp(), "hidepid hides live processes of other users");
        Files.writeString(proc.resolve("self/mountinfo"), mount + ",hidepid=2\n");
        assertFalse(ProcessTable.at(proc, HOST, 9).canLookUp());
        Files.writeString(proc.resolve("self/mountinfo"), mount + ",hidepid=0\n");
        assertTrue(ProcessTable.at(proc, HOST, 9).canLookUp());

        Files.writeString(proc.resolve("self/status"), "Name:\tjava\nNSpid:\t3120\t9\n");
        ProcessTable outer = ProcessTable.at(proc, HOST, 9);
        assertFalse(outer.canLookUp(), "a /proc of a parent pid namespace numbers processes otherwise");
        assertNotNull(outer.identity(), "our own facts are still true, for others to judge");

        Files.delete(proc.resolve("sys/kernel/random/boot_id"));
        ProcessTable none = ProcessTable.at(proc, HOST, 9);
        assertNull(none.identity());
        assertFalse(none.canLookUp());
    }
}
