package dev.ferry.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.store.S3ProxyServer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The distribution jar as users run it: a separate JVM, configuration from the environment, exit codes as
 * documented. Catches what in-process tests cannot: missing classes or merged service files in the jar, log
 * noise on the terminal, and the S3 client as packaged (HTTP and TLS with a custom CA).
 */
class PackagedCliIT {
    @TempDir
    Path dir;
    final Map<String, String> env = new HashMap<>();

    record Run(int code, String out, String err) {
        @Override
        public String toString() {
            return "exit " + code + "\n--- out\n" + out + "--- err\n" + err;
        }
    }

    @BeforeEach
    void baseEnv() {
        env.put("FERRY_PASSWORD", "packaged password");
    }

    Run ferry(String... args) throws IOException, InterruptedException {
        Path jar = Path.of(System.getProperty("ferry.jar", "target/ferry.jar"));
        assertTrue(Files.isRegularFile(jar), "the distribution jar exists: " + jar);
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx256m", "-jar", jar.toString()));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().keySet().removeIf(k -> k.startsWith("FERRY_") || k.startsWith("AWS_"));
        pb.environment().putAll(env);
        Path out = dir.resolve("out.txt");
        Path err = dir.resolve("err.txt");
        pb.redirectOutput(out.toFile()).redirectError(err.toFile()).redirectInput(ProcessBuilder.Redirect.PIPE);
        Process p = pb.start();
        p.getOutputStream().close();
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("ferry " + String.join(" ", args) + " did not finish in 120 s");
        }
        return new Run(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8),
                Files.readString(err, StandardCharsets.UTF_8));
    }

    @Test
    void directoryRepositoryLifecycle() throws Exception {
        env.put("FERRY_REPOSITORY", dir.resolve("repo").toString());
        Run init = ferry("init", "--kdf-memory", "8", "--kdf-iterations", "1");
        assertEquals(0, init.code(), init.toString());
        assertEquals("", init.err(), "quiet by default: " + init);

        Run info = ferry("info");
        assertEquals(0, info.code(), info.toString());
        assertTrue(info.out().contains("format version: 1"), info.toString());

        Run list = ferry("key", "list");
        assertEquals(0, list.code(), list.toString());
        assertTrue(list.out().lines().anyMatch(l -> l.startsWith("*") && l.contains("argon2id")), list.toString());

        Run verify = ferry("verify", "--read-data");
        assertEquals(0, verify.code(), verify.toString());
        assertTrue(verify.out().contains("no errors were found"), verify.toString());

        env.put("FERRY_PASSWORD", "wrong");
        Run wrong = ferry("verify");
        assertEquals(4, wrong.code(), wrong.toString());
        assertTrue(wrong.err().startsWith("ferry: wrong password"), wrong.toString());

        Run usage = ferry("verify", "--bogus");
        assertEquals(2, usage.code(), usage.toString());

        Run version = ferry("--version");
        assertEquals(0, version.code(), version.toString());
        assertTrue(version.out().startsWith("ferry "), version.toString());
    }

    @Test
    void s3RepositoryOverHttp() throws Exception {
        try (S3ProxyServer server = S3ProxyServer.start()) {
            s3Env(server);
            env.put("FERRY_REPOSITORY", "s3://packaged-http/repo");
            Run init = ferry("init", "--kdf-memory", "8", "--kdf-iterations", "1");
            assertEquals(0, init.code(), init.toString());
            assertEquals("", init.err(), init.toString());
            Run verify = ferry("verify", "--read-data");
            assertEquals(0, verify.code(), verify.toString());
            assertTrue(verify.out().contains("checked s3://packaged-http/repo: 1 key slot(s)"), verify.toString());
        }
    }

    @Test
    void s3RepositoryOverTlsWithACustomCa() throws Exception {
        try (S3ProxyServer server = S3ProxyServer.startTls(dir)) {
            s3Env(server);
            env.put("FERRY_REPOSITORY", "s3://packaged-tls/repo");
            // without the CA the certificate is not trusted: a clear error, nothing created
            Run untrusted = ferry("init", "--kdf-memory", "8", "--kdf-iterations", "1");
            assertEquals(1, untrusted.code(), untrusted.toString());
            assertTrue(untrusted.err().startsWith("ferry: "), untrusted.toString());

            env.put("AWS_CA_BUNDLE", server.caFile().toString());
            Run init = ferry("init", "--kdf-memory", "8", "--kdf-iterations", "1");
            assertEquals(0, init.code(), init.toString());
            Run verify = ferry("verify");
            assertEquals(0, verify.code(), verify.toString());
        }
    }

    private void s3Env(S3ProxyServer server) {
        env.put("AWS_ENDPOINT_URL", server.endpoint().toString());
        env.put("AWS_ACCESS_KEY_ID", server.accessKey());
        env.put("AWS_SECRET_ACCESS_KEY", server.secretKey());
        env.put("AWS_REGION", "us-east-1");
        // keep the SDK from looking for profile files or instance metadata on the build machine
        env.put("AWS_EC2_METADATA_DISABLED", "true");
        env.put("AWS_CONFIG_FILE", dir.resolve("no-aws-config").toString());
        env.put("AWS_SHARED_CREDENTIALS_FILE", dir.resolve("no-aws-credentials").toString());
    }
}
