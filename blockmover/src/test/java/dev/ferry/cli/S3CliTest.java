package dev.ferry.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.repo.BlobType;
import dev.ferry.repo.KeySource;
import dev.ferry.repo.Repository;
import dev.ferry.store.S3ProxyExtension;
import dev.ferry.store.S3Store;
import dev.ferry.store.StoreObject;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** The command line against a real S3 server on loopback, with credentials from the SDK's default chain. */
class S3CliTest {
    @RegisterExtension
    static final S3ProxyExtension s3 = S3ProxyExtension.withSdkCredentials();
    final CliRunner cli = new CliRunner();
    String bucket;

    @BeforeEach
    void env() {
        bucket = "cli-" + Long.toHexString(new Random().nextLong() & Long.MAX_VALUE);
        cli.env.put("AWS_ENDPOINT_URL", s3.server().endpoint().toString());
        cli.env.put("AWS_REGION", "us-east-1");
        cli.env.put("FERRY_PASSWORD", "s3 password");
        cli.env.put("FERRY_REPOSITORY", "s3://" + bucket + "/team/volumes");
    }

    @Test
    void initVerifyAndDamageOnS3() throws Exception {
        CliRunner.Result init = cli.run(CliTest.concat(new String[] {"init"}, CliTest.CHEAP));
        assertEquals(0, init.exitCode(), init.toString());
        assertTrue(init.out().contains("s3://" + bucket + "/team/volumes"), init.toString());

        // real data through the same store the CLI uses
        try (S3Store store = new S3Store(s3.server().settings(bucket, "team/volumes"))) {
            Repository repo = Repository.open(store, new KeySource.Password("s3 password".toCharArray()));
            Random rnd = new Random(3);
            for (int i = 0; i < 30; i++) {
                byte[] b = new byte[100_000];
                rnd.nextBytes(b);
                repo.save(BlobType.DATA, b);
            }
            repo.flush();
        }
        CliRunner.Result verify = cli.run("verify", "--read-data");
        assertEquals(0, verify.exitCode(), verify.toString());
        assertTrue(verify.out().contains("30 chunk(s), 0 snapshot(s), read 2.9 MiB"), verify.toString());

        CliRunner.Result wrong;
        cli.env.put("FERRY_PASSWORD", "nope");
        wrong = cli.run("verify");
        assertEquals(ExitCodes.WRONG_KEY, wrong.exitCode(), wrong.toString());
        cli.env.put("FERRY_PASSWORD", "s3 password");

        // flip one byte of the pack in the bucket
        try (S3Store store = new S3Store(s3.server().settings(bucket, "team/volumes"))) {
            StoreObject pack = store.list("data/").get(0);
            byte[] bytes = store.get(pack.name());
            bytes[bytes.length / 2] ^= 0x40;
            store.put(pack.name(), bytes);
        }
        CliRunner.Result damaged = cli.run("verify", "--read-data");
        assertEquals(ExitCodes.DAMAGE, damaged.exitCode(), damaged.toString());
        assertTrue(damaged.out().contains("does not decrypt"), damaged.toString());
    }

    @Test
    void aMissingBucketOrRepositoryOnS3IsAClearError() {
        CliRunner.Result noBucket = cli.run("info");
        assertEquals(ExitCodes.ERROR, noBucket.exitCode(), noBucket.toString());
        assertTrue(noBucket.err().contains("NoSuchBucket") && noBucket.err().contains(bucket), noBucket.toString());

        s3.server().createBucket(bucket);
        CliRunner.Result noRepo = cli.run("info");
        assertEquals(ExitCodes.ERROR, noRepo.exitCode(), noRepo.toString());
        assertTrue(noRepo.err().contains("no Ferry repository at s3://" + bucket + "/team/volumes"),
                noRepo.toString());
    }

    @Test
    void blockBackupIncrementalAndRestoreOnS3() throws Exception {
        java.nio.file.Path dir = java.nio.file.Files.createTempDirectory("ferry-s3-block");
        try {
            assertEquals(0, cli.run(CliTest.concat(new String[] {"init", "--pack-size", "1"}, CliTest.CHEAP)).exitCode());
            java.nio.file.Path vol = dir.resolve("vol.img");
            byte[] data = new byte[5 << 20];
            new Random(9).nextBytes(data);
            java.util.Arrays.fill(data, 1 << 20, 2 << 20, (byte) 0);
            java.nio.file.Files.write(vol, data);
            CliRunner.Result full = cli.run("backup", "block", vol.toString(), "--block-size", "256K", "--json");
            assertEquals(0, full.exitCode(), full.toString());
            // change 100 bytes and list them
            try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(vol.toFile(), "rw")) {
                f.seek(3_000_000);
                f.write(new byte[100]);
            }
            java.nio.file.Path changes = dir.resolve("changes");
            java.nio.file.Files.writeString(changes, "3000000 100\n");
            CliRunner.Result inc = cli.run("backup", "block", vol.toString(), "--parent", "latest",
                    "--changed-ranges", changes.toString(), "--json");
            assertEquals(0, inc.exitCode(), inc.toString());
            assertEquals(256 << 10, BlockCliTest.json(inc).get("bytes_read").asLong());
            java.nio.file.Path out = dir.resolve("out.img");
            CliRunner.Result restore = cli.run("restore", "block", "latest", out.toString(), "--json");
            assertEquals(0, restore.exitCode(), restore.toString());
            assertEquals(-1L, java.nio.file.Files.mismatch(vol, out));
            CliRunner.Result verify = cli.run("verify", "--read-data");
            assertEquals(0, verify.exitCode(), verify.toString());
        } finally {
            try (var s = java.nio.file.Files.walk(dir)) {
                s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }

    /**
     * An endpoint that refuses connections, and one that accepts them and never answers: the command fails within
     * the time limit set in the environment, with exit code 1 and a message naming the endpoint, the attempts and
     * what they met.
     */
    @Test
    void anUnreachableEndpointFailsWithinTheTimeLimit() throws Exception {
        cli.env.put("FERRY_S3_TIMEOUT", "2");
        cli.env.put("FERRY_S3_ATTEMPT_TIMEOUT", "1");
        cli.env.put("FERRY_S3_MAX_ATTEMPTS", "2");
        InetAddress loopback = InetAddress.getLoopbackAddress();
        int closedPort;
        try (ServerSocket socket = new ServerSocket(0, 1, loopback)) {
            closedPort = socket.getLocalPort();
        }
        List<Socket> accepted = new CopyOnWriteArrayList<>();
        try (ServerSocket silent = new ServerSocket(0, 50, loopback)) {
            Thread acceptor = new Thread(() -> {
                try {
                    while (true) {
                        accepted.add(silent.accept());
                    }
                } catch (IOException closed) {
                    // the test is over
                }
            }, "silent-s3");
            acceptor.setDaemon(true);
            acceptor.start();
            for (int port : List.of(closedPort, silent.getLocalPort())) {
                String endpoint = "http://127.0.0.1:" + port;
                cli.env.put("AWS_ENDPOINT_URL", endpoint);
                long start = System.nanoTime();
                CliRunner.Result dead = cli.run("-r", "s3://bucket/x", "snapshots");
                double seconds = (System.nanoTime() - start) / 1e9;
                assertEquals(ExitCodes.ERROR, dead.exitCode(), dead.toString());
                assertTrue(seconds < 2 + 5, "failed within the 2 s limit (and a margin): " + seconds + " s, " + dead);
                String message = dead.err().trim();
                assertTrue(message.startsWith("ferry: S3 GetObject of s3://bucket/x/config failed: the S3 endpoint "
                        + endpoint + " "), dead.toString());
                assertTrue(message.contains(port == closedPort ? "refused the connection" : "no answer"),
                        dead.toString());
                assertTrue(message.matches("(?s).*\\([12] attempts? in \\d+\\.\\d s.*"), dead.toString());
                assertFalse(message.contains("Exception") || message.contains("Acquire"), dead.toString());
            }
            assertFalse(accepted.isEmpty(), "the silent server was reached");
        } finally {
            for (Socket socket : accepted) {
                socket.close();
            }
        }

        cli.env.put("FERRY_S3_TIMEOUT", "soon");
        CliRunner.Result invalid = cli.run("-r", "s3://bucket/x", "snapshots");
        assertNotEquals(ExitCodes.OK, invalid.exitCode(), invalid.toString());
        assertTrue(invalid.err().contains("invalid FERRY_S3_TIMEOUT 'soon'"), invalid.toString());
    }
}
