package dev.ferry.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.repo.Json;
import dev.ferry.repo.KeySource;
import dev.ferry.repo.Repository;
import dev.ferry.repo.Snapshot;
import dev.ferry.repo.Snapshots;
import dev.ferry.store.LocalStore;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code forget} with a retention policy: applied per kind, volume and host; a dry run says what it would
 * keep and forget and why; ids and policies exclude each other. The rules themselves are tested against a
 * table of times in RetentionTest.
 */
class ForgetCliTest {
    @TempDir
    Path dir;
    final CliRunner cli = new CliRunner();
    Snapshots snapshots;
    /** Snapshot ids by "volume host time". */
    final java.util.Map<String, String> ids = new java.util.HashMap<>();

    @BeforeEach
    void setUp() throws Exception {
        cli.env.put("FERRY_REPOSITORY", dir.resolve("repo").toString());
        cli.env.put("FERRY_PASSWORD", "pw");
        cli.env.put("TZ", "UTC");
        assertEquals(0, cli.run(CliTest.concat(new String[] {"init"}, CliTest.CHEAP)).exitCode());
        Repository repo = Repository.open(new LocalStore(dir.resolve("repo")), new KeySource.Password("pw".toCharArray()));
        snapshots = new Snapshots(repo);
        // volume pv-a (named) from two hosts: the policy groups per volume and host, so these are two groups
        for (String day : List.of("01", "02", "03", "04")) {
            save("pv-a", null, "n1", "2026-11-" + day + "T10:00:00Z", Map.of());
            save("pv-a", null, "n1", "2026-11-" + day + "T20:00:00Z", day.equals("02") ? Map.of("keep", "yes") : Map.of());
        }
        save("pv-a", null, "n2", "2026-11-01T12:00:00Z", Map.of());
        save("pv-a", null, "n2", "2026-11-02T12:00:00Z", Map.of());
        // an unnamed volume known by its path on n1
        save(null, "/data", "n1", "2026-10-01T00:00:00Z", Map.of());
        save(null, "/data", "n1", "2026-10-02T00:00:00Z", Map.of());
    }

    private void save(String volumeName, String source, String host, String time, Map<String, String> tags)
            throws Exception {
        Snapshot s = new Snapshot(Snapshot.VERSION, Snapshot.KIND_BLOCK, time, host,
                source == null ? "/dev/" + volumeName + "-" + time : source, tags, null,
                new Snapshot.Volume(0, 1 << 20, 4096, List.of()), Map.of(), null, null, volumeName);
        ids.put((volumeName == null ? source : volumeName) + " " + host + " " + time, snapshots.save(s).id());
    }

    private Set<String> remaining() throws Exception {
        Set<String> out = new HashSet<>();
        for (Snapshots.Stored s : snapshots.list()) {
            out.add(s.id());
        }
        return out;
    }

    private String id(String key) {
        return ids.get(key);
    }

    @Test
    void aPolicyIsAppliedPerVolumeAndHostAndADryRunSaysWhy() throws Exception {
        Set<String> before = remaining();
        assertEquals(12, before.size());
        CliRunner.Result dry = cli.run("forget", "--keep-daily", "2", "--keep-tag", "keep=yes", "--dry-run");
        assertEquals(0, dry.exitCode(), dry.toString());
        assertEquals(before, remaining(), "a dry run forgets nothing");
        String out = dry.out();
        // pv-a on n1: the newest of the last 2 days (04 20:00, 03 20:00) and the tagged 02 20:00 stay
        assertTrue(out.contains("block snapshots of volume 'pv-a' on host n1: keep 3, would forget 5"), out);
        assertTrue(out.contains("block snapshots of volume 'pv-a' on host n2: keep 2, would forget 0"), out);
        assertTrue(out.contains("block snapshots of '/data' on host n1: keep 2, would forget 0"), out);
        assertTrue(out.contains("  keep    " + id("pv-a n1 2026-11-04T20:00:00Z").substring(0, 8)
                + "  2026-11-04 20:00:00  daily snapshot (2026-11-04, 1 of 2)"), out);
        assertTrue(out.contains("  keep    " + id("pv-a n1 2026-11-02T20:00:00Z").substring(0, 8)
                + "  2026-11-02 20:00:00  ") && out.contains("tag keep=yes"), out);
        assertTrue(out.contains("  forget  " + id("pv-a n1 2026-11-04T10:00:00Z").substring(0, 8)
                + "  2026-11-04 10:00:00  day 2026-11-04 has a newer snapshot"), out);
        assertTrue(out.contains("5 snapshot(s) would be forgotten"), out);

        CliRunner.Result json = cli.run("forget", "--keep-daily", "2", "--keep-tag", "keep=yes", "--json");
        assertEquals(0, json.exitCode(), json.toString());
        JsonNode j = Json.MAPPER.readTree(json.out());
        assertEquals(3, j.get("groups").size());
        assertEquals(5, j.get("forgotten").size());
        Set<String> expected = new HashSet<>(before);
        for (JsonNode f : j.get("forgotten")) {
            expected.remove(f.asText());
        }
        assertEquals(expected, remaining(), "exactly the listed snapshots are gone");
        for (String t : List.of("01T10", "01T20", "02T10", "03T10", "04T10")) {
            assertTrue(!remaining().contains(id("pv-a n1 2026-11-" + t + ":00:00Z")), t);
        }
    }

    @Test
    void filtersNarrowThePolicyAndBadPoliciesAreUsageErrors() throws Exception {
        CliRunner.Result r = cli.run("forget", "--keep-last", "1", "--volume", "pv-a", "--host", "n2");
        assertEquals(0, r.exitCode(), r.toString());
        Set<String> left = remaining();
        assertEquals(11, left.size());
        assertTrue(!left.contains(id("pv-a n2 2026-11-01T12:00:00Z")) && left.contains(id("pv-a n2 2026-11-02T12:00:00Z")));

        List<String[]> usage = new ArrayList<>();
        usage.add(new String[] {"forget"});
        usage.add(new String[] {"forget", "--keep-last", "0"});
        usage.add(new String[] {"forget", "--keep-daily", "-2"});
        usage.add(new String[] {"forget", "--keep-within", "7 days"});
        usage.add(new String[] {"forget", "--keep-tag", "novalue"});
        usage.add(new String[] {"forget", "latest", "--keep-last", "1"});
        for (String[] args : usage) {
            CliRunner.Result u = cli.run(args);
            assertEquals(ExitCodes.USAGE, u.exitCode(), String.join(" ", args) + ": " + u);
        }
        // a policy of tags only would forget whole groups: refused, nothing forgotten
        CliRunner.Result all = cli.run("forget", "--keep-tag", "keep=yes");
        assertEquals(ExitCodes.ERROR, all.exitCode(), all.toString());
        assertEquals(left, remaining());
        // keep-within counts back from each group's newest snapshot, not from now
        CliRunner.Result within = cli.run("forget", "--keep-within", "1d", "--dry-run", "--volume", "pv-a",
                "--host", "n1");
        assertEquals(0, within.exitCode(), within.toString());
        assertTrue(within.out().contains("keep 2, would forget 6"), within.toString()); // 04T10 and 04T20
    }
}
