package dev.ferry.zfs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.engine.EngineContext;
import dev.ferry.engine.EngineSnapshot;
import dev.ferry.engine.LiveJobs;
import dev.ferry.engine.VolumeReader;
import dev.ferry.job.Cancellation;
import dev.ferry.job.CancelledException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The ZFS engine working for a job, on a real pool: temporary read clones carry their owner and only leftovers
 * are destroyed; a cancel ends {@code zfs send} reads and snapshot reads within seconds and leaves no clone.
 */
class ZfsJobTest {
    static final int MiB = 1 << 20;
    static final String BOOT = "11111111-2222-3333-4444-555555555555";
    @TempDir
    static Path tmp;
    static TestPool pool;
    static CloneOwner.Node me;

    @BeforeAll
    static void createPool() throws Exception {
        pool = TestPool.create(tmp);
        me = new CloneOwner.Node("node-a", BOOT, CloneOwner.Node.of(Map.of()).pidNamespace());
    }

    @AfterAll
    static void destroyPool() throws Exception {
        if (pool != null) {
            pool.close();
        }
    }

    /** A daemon that runs the node's jobs, of which only {@code live} run. */
    record Daemon(Set<String> live) implements LiveJobs {
        @Override
        public boolean isLive(String jobId) {
            return live.contains(jobId);
        }

        @Override
        public boolean runsTheNodesJobs() {
            return true;
        }
    }

    private static int datasets;

    /** A dataset with vol.img of {@code size} random bytes and its snapshot {@code s1}; returns the dataset. */
    static String datasetWithSnapshot(int size) throws Exception {
        String ds = pool.filesystem("j" + (++datasets));
        byte[] data = new byte[size];
        new Random(datasets).nextBytes(data);
        Files.write(pool.mountpoint(ds).resolve("vol.img"), data);
        pool.zfs.snapshot(ds, "s1", "test-repository");
        return ds;
    }

    private static List<String> clones() throws Exception {
        return List.of(TestPool.cmd("zfs", "list", "-H", "-o", "name", "-r", pool.name).split("\n")).stream()
                .filter(n -> n.startsWith(pool.name + "/" + ZfsEngine.READ_CLONE_PREFIX)).toList();
    }

    /** A read clone of {@code snap} as a job would have left it, with owner {@code owner} (and a PID namespace). */
    private static String clone(String snap, String name, String owner, String pidNs) throws Exception {
        String c = pool.name + "/" + ZfsEngine.READ_CLONE_PREFIX + name;
        Map<String, String> props = new java.util.LinkedHashMap<>();
        props.put("readonly", "on");
        props.put("mountpoint", "none");
        props.put(CloneOwner.PROPERTY, owner);
        if (pidNs != null) {
            props.put(CloneOwner.PIDNS_PROPERTY, pidNs);
        }
        pool.zfs.clone(snap, c, props);
        return c;
    }

    private static long deadPid() throws Exception {
        Process p = new ProcessBuilder("true").start();
        p.waitFor(10, TimeUnit.SECONDS);
        return p.pid();
    }

    @Test
    void onlyLeftoverClonesOfThisNodeAreDestroyed() throws Exception {
        String ds = datasetWithSnapshot(MiB);
        String snap = ds + "@s1";
        String ns = me.pidNamespace();
        String live = clone(snap, "live", "node-a/" + BOOT + "/job-live", null);
        String dead = clone(snap, "dead", "node-a/" + BOOT + "/job-dead", null);
        String rebooted = clone(snap, "rebooted", "node-a/99999999-0000-0000-0000-000000000000/job-live", null);
        String otherNode = clone(snap, "othernode", "node-b/99999999-0000-0000-0000-000000000000/job-x", null);
        String otherNodeSameBoot = clone(snap, "othernode2", "node-b/" + BOOT + "/job-dead", null);
        String cliAlive = clone(snap, "clialive", "node-a/" + BOOT + "/pid-" + ProcessHandle.current().pid(), ns);
        String cliDead = clone(snap, "clidead", "node-a/" + BOOT + "/pid-" + deadPid(), ns);
        String cliOtherNs = clone(snap, "cliotherns", "node-a/" + BOOT + "/pid-" + deadPid(), "123");
        String legacy = pool.name + "/" + ZfsEngine.READ_CLONE_PREFIX + "1-abcdef";
        pool.zfs.clone(snap, legacy, Map.of("readonly", "on", "mountpoint", "none"));

        // a command-line run owns none of the node's jobs: daemon jobs' clones are not its to judge
        ZfsEngine cli = new ZfsEngine(pool.zfs, me).forJob(EngineContext.standalone(new Cancellation()));
        cli.destroyStaleClones(pool.name);
        assertEquals(Set.of(live, dead, otherNode, otherNodeSameBoot, cliAlive, cliOtherNs, legacy),
                Set.copyOf(clones()), "a CLI run destroys the clones of an earlier boot and of dead CLI runs");

        // the node's daemon, in which job-live runs
        ZfsEngine daemon = new ZfsEngine(pool.zfs, me).forJob(
                EngineContext.of(new Cancellation(), "job-now", new Daemon(Set.of("job-live", "job-now"))));
        daemon.destroyStaleClones(pool.name);
        assertEquals(Set.of(live, otherNode, otherNodeSameBoot, cliAlive, cliOtherNs, legacy), Set.copyOf(clones()));

        // on the next boot every clone of this node is a leftover, another node's never
        ZfsEngine afterReboot = new ZfsEngine(pool.zfs, new CloneOwner.Node("node-a", "another-boot", ns))
                .forJob(EngineContext.of(new Cancellation(), "job-live", new Daemon(Set.of("job-live"))));
        afterReboot.destroyStaleClones(pool.name);
        assertEquals(Set.of(otherNode, otherNodeSameBoot, legacy), Set.copyOf(clones()));
        for (String c : List.of(otherNode, otherNodeSameBoot, legacy)) {
            pool.zfs.destroy(c, true);
        }
    }

    @Test
    void aReadCloneNamesItsJobAndIsGoneAfterTheRead() throws Exception {
        String ds = datasetWithSnapshot(MiB);
        ZfsEngine engine = new ZfsEngine(pool.zfs, me).forJob(
                EngineContext.of(new Cancellation(), "job-42", new Daemon(Set.of("job-42"))));
        EngineSnapshot s = engine.listSnapshots(ds + "#vol.img").get(0);
        try (VolumeReader r = engine.open(s)) {
            List<String> c = clones();
            assertEquals(1, c.size(), "zfs-fuse has no .zfs/snapshot: the read goes through a clone");
            String owner = TestPool.cmd("zfs", "get", "-H", "-o", "value", CloneOwner.PROPERTY, c.get(0)).strip();
            assertEquals("node-a/" + BOOT + "/job-42", owner);
            byte[] b = new byte[4096];
            assertEquals(4096, r.read(0, b, 0, b.length));
        }
        assertTrue(clones().isEmpty());
        assertThrows(IllegalArgumentException.class,
                () -> EngineContext.of(new Cancellation(), "pid-42", LiveJobs.NONE));
        assertThrows(IllegalArgumentException.class,
                () -> EngineContext.of(new Cancellation(), "job/42", LiveJobs.NONE));
    }

    @Test
    void cancelEndsAReadThroughACloneAndTheCloneIsDestroyed() throws Exception {
        String ds = datasetWithSnapshot(4 * MiB);
        Cancellation c = new Cancellation();
        ZfsEngine engine = new ZfsEngine(pool.zfs, me).forJob(EngineContext.of(c, "job-cancel", LiveJobs.NONE));
        EngineSnapshot s = engine.listSnapshots(ds + "#vol.img").get(0);
        VolumeReader r = engine.open(s);
        byte[] b = new byte[MiB];
        assertEquals(MiB, r.read(0, b, 0, b.length));
        assertEquals(1, clones().size());
        c.cancel("cancelled by the user");
        assertThrows(CancelledException.class, () -> r.read(MiB, b, 0, b.length));
        long t0 = System.nanoTime();
        r.close(); // the clone is destroyed with a zfs that the cancel does not stop
        assertTrue((System.nanoTime() - t0) / 1_000_000 < 30_000);
        assertTrue(clones().isEmpty(), "left " + clones());
        // and a cancelled job starts no zfs command
        assertThrows(CancelledException.class, () -> engine.listSnapshots(ds + "#vol.img"));
    }

    @Test
    void cancelEndsABlockedZfsSendReadAndKillsIt() throws Exception {
        String ds = datasetWithSnapshot(24 * MiB);
        Cancellation c = new Cancellation();
        ZfsEngine engine = new ZfsEngine(pool.zfs, me).forJob(EngineContext.of(c, "job-send", LiveJobs.NONE));
        InputStream in = engine.zfs().send(null, ds + "@s1");
        byte[] first = in.readNBytes(4096);
        assertEquals(4096, first.length);
        // the reader stops reading (the job is busy elsewhere); zfs send blocks on the full pipe
        Thread.sleep(500);
        List<ProcessHandle> sends = ProcessHandle.current().descendants()
                .filter(h -> h.info().commandLine().orElse("").contains("send")).toList();
        assertFalse(sends.isEmpty(), "zfs send runs");
        CompletableFuture<Throwable> reader = CompletableFuture.supplyAsync(() -> {
            byte[] b = new byte[1 << 16];
            try {
                while (in.read(b) >= 0) {
                    Thread.sleep(50); // slower than zfs send: the read keeps waiting on it, until the cancel
                }
                return null;
            } catch (Throwable e) {
                return e;
            }
        });
        Thread.sleep(300);
        long t0 = System.nanoTime();
        c.cancel("cancelled by the user");
        Throwable e = reader.get(10, TimeUnit.SECONDS);
        assertTrue((System.nanoTime() - t0) / 1_000_000 < 5_000);
        assertInstanceOf(CancelledException.class, e);
        for (ProcessHandle h : sends) {
            h.onExit().get(5, TimeUnit.SECONDS);
            assertFalse(h.isAlive());
        }
        in.close();
    }
}
