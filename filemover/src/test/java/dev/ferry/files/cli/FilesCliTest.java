package dev.ferry.files.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.cli.ExitCodes;
import dev.ferry.cli.Main;
import dev.ferry.files.RawNames;
import dev.ferry.repo.Json;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code ferry backup files} and {@code ferry restore files} through the command line, in-process. */
class FilesCliTest {
    @TempDir
    Path tmp;
    final Map<String, String> env = new HashMap<>();

    record Run(int code, String out, String err) {
        JsonNode json() throws IOException {
            return Json.MAPPER.readTree(out);
        }

        @Override
        public String toString() {
            return "exit " + code + "\n--- out\n" + out + "--- err\n" + err;
        }
    }

    Run ferry(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.execute(args, env, new PrintWriter(out, true), new PrintWriter(err, true), null);
        return new Run(code, out.toString(), err.toString());
    }

    @BeforeEach
    void init() {
        env.put("FERRY_REPOSITORY", tmp.resolve("repo").toString());
        env.put("FERRY_PASSWORD", "secret");
        env.put("FERRY_HOSTNAME", "node-1");
        env.put("FERRY_STATE_DIR", tmp.resolve("state").toString());
        Run r = ferry("init", "--kdf-memory", "1", "--kdf-iterations", "1");
        assertEquals(0, r.code(), r.toString());
    }

    private Path tree() throws IOException {
        Path src = Files.createDirectories(tmp.resolve("src/app/data"));
        byte[] big = new byte[3 << 20];
        new Random(1).nextBytes(big);
        Files.write(src.resolve("db.bin"), big);
        Files.write(tmp.resolve("src/app/config.yaml"), "a: 1\n".getBytes(StandardCharsets.UTF_8));
        Files.write(tmp.resolve("src/debug.log"), "noise\n".getBytes(StandardCharsets.UTF_8));
        return tmp.resolve("src");
    }

    @Test
    void backupRestoreMarkerSnapshotsForgetPruneVerify() throws Exception {
        Path src = tree();
        Run b = ferry("backup", "files", src.toString(), "--exclude", "*.log", "--tag", "app=db", "--json");
        assertEquals(0, b.code(), b.toString());
        JsonNode j = b.json();
        assertEquals(2, j.get("files_new").asInt());
        assertEquals((3 << 20) + 5, j.get("bytes_read").asLong());
        for (String f : new String[] {"snapshot_id", "parent", "source", "bytes_total", "bytes_new", "chunks_new",
                "files_changed", "files_unchanged", "duration_s", "warnings"}) {
            assertTrue(j.has(f), f + " missing in " + j);
        }

        Files.write(tmp.resolve("src/app/config.yaml"), "a: 2\n".getBytes(StandardCharsets.UTF_8));
        Run inc = ferry("backup", "files", src.toString(), "--parent", "latest", "--json");
        assertEquals(0, inc.code(), inc.toString());
        assertEquals(j.get("snapshot_id").asText(), inc.json().get("parent").asText());
        assertEquals(5 + 6, inc.json().get("bytes_read").asLong()); // config.yaml, and debug.log, not excluded now
        assertEquals(1, inc.json().get("files_unchanged").asInt());

        Run table = ferry("snapshots");
        assertEquals(0, table.code(), table.toString());
        assertTrue(table.out().lines().anyMatch(l -> l.contains(" files ") && l.contains("3.0 MiB")), table.out());
        Run list = ferry("snapshots", "--json");
        assertEquals(0, list.code(), list.toString());
        assertEquals("files", list.json().get(0).get("kind").asText());
        assertEquals(2, list.json().size());

        Path target = tmp.resolve("target");
        Run r = ferry("restore", "files", "latest", target.toString(), "--marker", "restore-1", "--json");
        assertEquals(0, r.code(), r.toString());
        assertTrue(Files.exists(target.resolve(".ferry/restore-1")));
        // counted as the backup counted: app and app/data, not the target, nor the marker's directory made after
        assertEquals(List.of(3, 2), List.of(r.json().get("files").asInt(), r.json().get("dirs").asInt()));
        assertEquals(inc.json().get("bytes_total").asLong(), r.json().get("bytes_total").asLong());
        assertEquals(2, inc.json().get("dirs").asInt());
        // a backup of the restored tree holds the marker's directory like any other, and so does its restore
        Run again0 = ferry("backup", "files", target.toString(), "--json");
        assertEquals(List.of(4, 3), List.of(again0.json().get("files_new").asInt(), again0.json().get("dirs").asInt()));
        // 'latest' of two volumes (the source and the restored tree) is refused until one is named
        Run amb = ferry("restore", "files", "latest", tmp.resolve("target0").toString());
        assertEquals(ExitCodes.ERROR, amb.code(), amb.toString());
        assertTrue(amb.err().contains("'latest' is ambiguous"), amb.toString());
        assertFalse(Files.exists(tmp.resolve("target0")));
        Run r0 = ferry("restore", "files", "latest", tmp.resolve("target0").toString(), "--json", "--volume",
                target.toString());
        assertEquals(List.of(4, 3), List.of(r0.json().get("files").asInt(), r0.json().get("dirs").asInt()));
        assertEquals(again0.json().get("bytes_total").asLong(), r0.json().get("bytes_total").asLong());
        assertArrayEquals(Files.readAllBytes(src.resolve("app/data/db.bin")),
                Files.readAllBytes(target.resolve("app/data/db.bin")));
        assertEquals("a: 2\n", Files.readString(target.resolve("app/config.yaml")));

        // a failed restore (existing files, no --overwrite) writes no marker
        Run again = ferry("restore", "files", "latest", target.toString(), "--marker", "restore-2", "--volume",
                src.toString());
        assertEquals(ExitCodes.ERROR, again.code(), again.toString());
        assertTrue(again.err().contains("--overwrite"), again.err());
        assertFalse(Files.exists(target.resolve(".ferry/restore-2")));
        Run over = ferry("restore", "files", "latest", target.toString(), "--overwrite", "--marker", "restore-2",
                "--volume", src.toString());
        assertEquals(0, over.code(), over.toString());
        assertTrue(Files.exists(target.resolve(".ferry/restore-2")));

        Path one = tmp.resolve("one");
        Run inc1 = ferry("restore", "files", j.get("snapshot_id").asText().substring(0, 8), one.toString(),
                "--include", "app/config.yaml");
        assertEquals(0, inc1.code(), inc1.toString());
        assertEquals("a: 1\n", Files.readString(one.resolve("app/config.yaml")));
        assertFalse(Files.exists(one.resolve("app/data")));

        Run block = ferry("restore", "block", "latest", tmp.resolve("img").toString());
        assertEquals(ExitCodes.ERROR, block.code(), block.toString());

        Run forget = ferry("forget", j.get("snapshot_id").asText().substring(0, 8), "--prune");
        assertEquals(0, forget.code(), forget.toString());
        Run verify = ferry("verify", "--read-data");
        assertEquals(0, verify.code(), verify.toString());
        Path after = tmp.resolve("after");
        Run r2 = ferry("restore", "files", "latest", after.toString(), "--volume", src.toString());
        assertEquals(0, r2.code(), r2.toString());
        assertArrayEquals(Files.readAllBytes(src.resolve("app/data/db.bin")),
                Files.readAllBytes(after.resolve("app/data/db.bin")));
    }

    private static int run(String... cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .start();
        return p.waitFor(30, TimeUnit.SECONDS) ? p.exitValue() : -1;
    }

    /**
     * A file even root cannot read: a write-only sysfs attribute bind-mounted into the tree. The backup stores
     * what it could read and exits with the partial code.
     */
    @Test
    void unreadableFileMakesAPartialBackup() throws Exception {
        Assumptions.assumeTrue("root".equals(System.getProperty("user.name")), "needs root to bind-mount");
        Path uevent;
        try (Stream<Path> s = Files.list(Path.of("/sys/bus"))) {
            uevent = s.map(d -> d.resolve("uevent")).filter(Files::exists).findFirst().orElse(null);
        }
        Assumptions.assumeTrue(uevent != null, "no /sys/bus/*/uevent here");
        Path src = tree();
        Path bad = Files.write(src.resolve("unreadable"), new byte[0]);
        Assumptions.assumeTrue(run("mount", "--bind", uevent.toString(), bad.toString()) == 0, "bind mount failed");
        try {
            Run b = ferry("backup", "files", src.toString(), "--json");
            assertEquals(ExitCodes.PARTIAL, b.code(), b.toString());
            assertTrue(b.json().get("partial").asBoolean());
            assertTrue(b.json().get("unreadable").get(0).asText().startsWith("unreadable"), b.out());
            Path target = tmp.resolve("target");
            Run r = ferry("restore", "files", "latest", target.toString());
            assertEquals(0, r.code(), r.toString());
            assertTrue(Files.exists(target.resolve("app/config.yaml")));
            assertFalse(Files.exists(target.resolve("unreadable")));
        } finally {
            run("umount", bad.toString());
        }
    }

    @Test
    void lsListsAFilesSnapshot() throws Exception {
        Path src = tree();
        Files.createSymbolicLink(src.resolve("app/current"), Path.of("data/db.bin"));
        Files.write(RawNames.resolve(src, new byte[] {'x', (byte) 0xff}), new byte[4]);
        Run b = ferry("backup", "files", src.toString(), "--json");
        assertEquals(0, b.code(), b.toString());
        String id = b.json().get("snapshot_id").asText().substring(0, 8);

        Run all = ferry("ls", "latest");
        assertEquals(0, all.code(), all.toString());
        List<String> expected = List.of("/app", "/app/config.yaml", "/app/current", "/app/data", "/app/data/db.bin",
                "/debug.log");
        if (RawNames.exact()) {
            expected = new java.util.ArrayList<>(expected);
            expected.add("/x\\xff");
        }
        assertEquals(expected, all.out().lines().toList());

        Run file = ferry("ls", id, "app/data/db.bin", "--long");
        assertEquals(0, file.code(), file.toString());
        List<String> lines = file.out().lines().toList();
        assertEquals(1, lines.size(), file.out());
        assertTrue(lines.get(0).startsWith("-rw") && lines.get(0).contains(" " + (3 << 20) + " ")
                && lines.get(0).endsWith(" /app/data/db.bin"), lines.get(0));
        Run link = ferry("ls", id, "/app/current", "-l");
        assertTrue(link.out().startsWith("lrwxrwxrwx") && link.out().strip().endsWith("/app/current -> data/db.bin"),
                link.toString());

        Run json = ferry("ls", "latest", "app", "--json");
        assertEquals(0, json.code(), json.toString());
        List<JsonNode> objects = new java.util.ArrayList<>();
        for (String l : json.out().lines().toList()) {
            objects.add(Json.MAPPER.readTree(l));
        }
        assertEquals(List.of("/app", "/app/config.yaml", "/app/current", "/app/data", "/app/data/db.bin"),
                objects.stream().map(o -> o.get("path").asText()).toList());
        assertEquals(3 << 20, objects.get(4).get("size").asLong());
        assertEquals("dir", objects.get(0).get("type").asText());
        assertEquals("data/db.bin", objects.get(2).get("target").asText());

        Run missing = ferry("ls", "latest", "app/nope");
        assertEquals(ExitCodes.ERROR, missing.code(), missing.toString());
        assertEquals("", missing.out());
        assertTrue(missing.err().contains("has no /app/nope"), missing.err());
        Run notDir = ferry("ls", "latest", "debug.log/x");
        assertEquals(ExitCodes.ERROR, notDir.code(), notDir.toString());
        assertTrue(notDir.err().contains("/debug.log is a file, not a directory"), notDir.err());
    }
}
