package dev.ferry.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * File backups through the distribution jar: the file mover's commands are registered through the merged
 * CliExtension service file, and the jar's manifest opens what keeps file names that are not UTF-8 intact.
 */
class FilesPackagedIT {
    @TempDir
    Path dir;

    record Run(int code, String out, String err) {
        @Override
        public String toString() {
            return "exit " + code + "\n--- out\n" + out + "--- err\n" + err;
        }
    }

    private Run run(List<String> cmd) throws IOException, InterruptedException {
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().keySet().removeIf(k -> k.startsWith("FERRY_") || k.startsWith("AWS_"));
        pb.environment().put("FERRY_PASSWORD", "packaged password");
        pb.environment().put("FERRY_REPOSITORY", dir.resolve("repo").toString());
        pb.environment().put("LC_ALL", "C");
        Path out = dir.resolve("out.txt");
        Path err = dir.resolve("err.txt");
        pb.redirectOutput(out.toFile()).redirectError(err.toFile()).redirectInput(ProcessBuilder.Redirect.PIPE);
        Process p = pb.start();
        p.getOutputStream().close();
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError(cmd + " did not finish in 120 s");
        }
        return new Run(p.exitValue(), Files.readString(out, StandardCharsets.ISO_8859_1),
                Files.readString(err, StandardCharsets.ISO_8859_1));
    }

    private Run ferry(String... args) throws IOException, InterruptedException {
        Path jar = Path.of(System.getProperty("ferry.jar", "target/ferry.jar"));
        assertTrue(Files.isRegularFile(jar), "the distribution jar exists: " + jar);
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx256m", "-jar", jar.toString()));
        cmd.addAll(List.of(args));
        return run(cmd);
    }

    @Test
    void filesBackupAndRestoreKeepNamesThatAreNotUtf8() throws Exception {
        Path src = Files.createDirectories(dir.resolve("src/sub"));
        Files.writeString(src.resolve("plain.txt"), "plain");
        // a name with the bytes 0xff and 0xfe, made by the shell: Java would need the raw-name access under test
        Run mk = run(List.of("/bin/sh", "-c", "printf odd > \"$(printf '%s/n\\377\\376' \"$0\")\"", src.toString()));
        assertEquals(0, mk.code(), mk.toString());

        Run init = ferry("init", "--kdf-memory", "8", "--kdf-iterations", "1");
        assertEquals(0, init.code(), init.toString());
        Run backup = ferry("backup", "files", dir.resolve("src").toString(), "--json");
        assertEquals(0, backup.code(), backup.toString());
        assertEquals("", backup.err(), "quiet by default: " + backup);
        assertTrue(backup.out().contains("\"files_new\" : 2"), backup.toString());

        Path target = dir.resolve("target");
        Run restore = ferry("restore", "files", "latest", target.toString(), "--marker", "done");
        assertEquals(0, restore.code(), restore.toString());
        assertTrue(Files.exists(target.resolve(".ferry/done")));

        Run before = run(List.of("ls", "-1b", src.toString()));
        Run after = run(List.of("ls", "-1b", target.resolve("sub").toString()));
        assertTrue(before.out().contains("n\\377\\376"), before.toString());
        assertEquals(before.out(), after.out());
        Run cmp = run(List.of("/bin/sh", "-c", "cat \"$0\"/n*", target.resolve("sub").toString()));
        assertTrue(cmp.out().contains("odd"), cmp.toString());
    }
}
