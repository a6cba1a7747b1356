package dev.ferry.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link S3Store}'s time limits. Against endpoints on 127.0.0.1 that never answer (a closed port, a server that
 * accepts connections and stays silent, a server that never accepts them) every request ends within its limit,
 * every time, with a message naming the endpoint, the attempts and what they met. Against S3Proxy, directly and
 * through a slow link, the same short limits leave real transfers alone.
 */
class S3TimeoutTest {

    private static final int ATTEMPTS = 2;
    private static final Duration TIMEOUT = Duration.ofSeconds(2);
    private static final Duration ATTEMPT_TIMEOUT = Duration.ofSeconds(1);
    private static final Duration RETRY_TIMEOUT = Duration.ofSeconds(2);
    private static final Duration LONGEST_PAUSE = Duration.ofMillis(500);
    /** How much later than its limit a failure may come: slow test machines, backoff jitter, thread start. */
    private static final Duration MARGIN = Duration.ofSeconds(5);
    private static final int RUNS = 10;
    private static final long MIB = S3Settings.MIB;

    private static final InetAddress LOOPBACK = InetAddress.getLoopbackAddress();
    /** What a message says when the attempts were counted: "(2 attempts in 2.0 s". */
    private static final Pattern TRIED = Pattern.compile("\\([12] attempts? in \\d+\\.\\d s");

    @RegisterExtension
    static final S3ProxyExtension s3 = new S3ProxyExtension();

    @TempDir
    Path tmp;

    /** Settings with short limits for an endpoint on 127.0.0.1. */
    private static S3Settings shortLimits(S3Settings settings) {
        return settings.toBuilder()
                .maxAttempts(ATTEMPTS)
                .timeout(TIMEOUT)
                .attemptTimeout(ATTEMPT_TIMEOUT)
                .retryTimeout(RETRY_TIMEOUT)
                .retryBackoff(Duration.ofMillis(200), LONGEST_PAUSE)
                .build();
    }

    private static S3Settings deadEndpoint(int port) {
        return shortLimits(s3.server().settings("bucket", "repo").toBuilder()
                .endpoint(URI.create("http://127.0.0.1:" + port)).build());
    }

    /** A request of a kind the store makes, and the bytes it carries. */
    private record Operation(String name, long bytes, StoreCall call) {
    }

    @FunctionalInterface
    private interface StoreCall {
        void run(S3Store store) throws IOException;
    }

    private List<Operation> operations() throws IOException {
        Path file = Files.write(tmp.resolve("upload"), new byte[2000]);
        return List.of(
                new Operation("get", 0, store -> store.get("config")),
                new Operation("put", 1000, store -> store.put("data/ab/x", new byte[1000])),
                new Operation("list", 0, store -> store.list("keys/")),
                new Operation("size", 0, store -> store.size("index/a")),
                new Operation("getRange", 4096, store -> store.getRange("data/ab/p", 0, 4096)),
                new Operation("put file", 2000, store -> store.put("snapshots/s", file)),
                new Operation("exists", 0, store -> store.exists("locks/l")),
                new Operation("delete", 0, store -> store.delete("locks/l")),
                new Operation("multipart put", 0, store -> store.put("data/cd/big", new byte[(int) (6 * MIB)])),
                new Operation("abort abandoned uploads", 0, store -> store.removeAbandonedStaging(Duration.ZERO)));
    }

    /**
     * Runs every operation in turn, {@value #RUNS} runs in all, each with a new store, against {@code port}, and
     * checks that each fails within its limit with a message that names the endpoint, the attempts and
     * {@code cause}. Returns the slowest failure, in seconds.
     */
    private double failsInTime(String mode, int port, Pattern cause) throws Exception {
        List<Operation> operations = operations();
        ExecutorService runner = Executors.newSingleThreadExecutor();
        double slowest = 0;
        StringBuilder times = new StringBuilder();
        try {
            for (int run = 0; run < RUNS; run++) {
                Operation op = operations.get(run % operations.size());
                // each attempt within its limit, and a pause between them
                Duration bound = TIMEOUT.plus(S3Store.transferAllowance(op.bytes())).multipliedBy(ATTEMPTS)
                        .plus(LONGEST_PAUSE).plus(MARGIN);
                try (S3Store store = new S3Store(deadEndpoint(port))) {
                    long start = System.nanoTime();
                    Future<?> result = runner.submit(() -> {
                        op.call().run(store);
                        return null;
                    });
                    Throwable failure;
                    try {
                        result.get(bound.toMillis(), TimeUnit.MILLISECONDS);
                        failure = null;
                    } catch (TimeoutException e) {
                        result.cancel(true);
                        fail(mode + ", " + op.name() + ", run " + run + ": still waiting after " + bound.toSeconds()
                                + " s");
                        return slowest;
                    } catch (ExecutionException e) {
                        failure = e.getCause();
                    }
                    double seconds = (System.nanoTime() - start) / 1e9;
                    slowest = Math.max(slowest, seconds);
                    times.append(String.format(java.util.Locale.ROOT, " %.2f", seconds));
                    String where = mode + ", " + op.name() + ", run " + run + " (" + seconds + " s): ";
                    assertTrue(failure instanceof IOException, where + "expected an IOException, got " + failure);
                    assertFalse(failure instanceof NoSuchObjectException, where + failure);
                    String message = failure.getMessage();
                    assertTrue(message.contains("http://127.0.0.1:" + port), where + "names the endpoint: " + message);
                    assertTrue(TRIED.matcher(message).find(), where + "tells the attempts and time: " + message);
                    assertTrue(cause.matcher(message).find(), where + "tells what the attempts met: " + message);
                    for (String jargon : List.of("Acquire operation", "Exception", "software.amazon", "SDK ")) {
                        assertFalse(message.contains(jargon), where + "no SDK jargon (" + jargon + "): " + message);
                    }
                }
            }
        } finally {
            runner.shutdownNow();
            assertTrue(runner.awaitTermination(10, TimeUnit.SECONDS), "the runner thread ended");
            System.out.println(mode + ": failures after (s)" + times);
        }
        return slowest;
    }

    /**
     * The three kinds of dead endpoint, {@value #RUNS} requests each, side by side (each request with a store of
     * its own): a closed port refuses at once; a server that accepts and stays silent lets each attempt wait for
     * an answer; a server that never accepts has the kernel complete the first connections into its backlog
     * (which then wait for an answer in vain) and, once the backlog is full, leaves further connection requests
     * unanswered (or, on some kernels, refuses them).
     */
    @Test
    void deadEndpointsFailWithinTheirLimitEveryTime() throws Exception {
        int closedPort;
        try (ServerSocket socket = new ServerSocket(0, 1, LOOPBACK)) {
            closedPort = socket.getLocalPort();
        }
        List<Socket> accepted = new CopyOnWriteArrayList<>();
        ExecutorService modes = Executors.newFixedThreadPool(3);
        try (ServerSocket silent = new ServerSocket(0, 50, LOOPBACK);
                ServerSocket neverAccepting = new ServerSocket(0, 1, LOOPBACK)) {
            Thread acceptor = new Thread(() -> {
                try {
                    while (true) {
                        accepted.add(silent.accept()); // and never a byte back
                    }
                } catch (IOException closed) {
                    // the test is over
                }
            }, "silent-s3");
            acceptor.setDaemon(true);
            acceptor.start();

            List<Future<Double>> results = List.of(
                    modes.submit(() -> failsInTime("closed port", closedPort,
                            Pattern.compile("S3 endpoint \\S+ refused the connection[ ,]"))),
                    modes.submit(() -> failsInTime("silent server", silent.getLocalPort(),
                            Pattern.compile("accepted the request but sent no answer within 1 s"
                                    + "|no answer from the S3 endpoint"))),
                    modes.submit(() -> failsInTime("server that never accepts", neverAccepting.getLocalPort(),
                            Pattern.compile("accepted the request but sent no answer within 1 s"
                                    + "|no answer from the S3 endpoint"
                                    + "|could not be reached within 1 s \\(connection timed out\\)"
                                    + "|refused the connection"))));
            List<Throwable> failures = new java.util.ArrayList<>();
            for (Future<Double> result : results) {
                try {
                    result.get(RUNS * (ATTEMPTS * TIMEOUT.toSeconds() + 1 + MARGIN.toSeconds()) + 30, TimeUnit.SECONDS);
                } catch (ExecutionException e) {
                    failures.add(e.getCause());
                }
            }
            if (!failures.isEmpty()) {
                AssertionError error = new AssertionError(failures.size() + " kind(s) of dead endpoint failed: "
                        + failures.get(0).getMessage(), failures.get(0));
                failures.stream().skip(1).forEach(error::addSuppressed);
                throw error;
            }
            assertTrue(accepted.size() >= RUNS, "the requests reached the silent server: " + accepted.size());
        } finally {
            modes.shutdownNow();
            for (Socket socket : accepted) {
                socket.close();
            }
        }
    }

    @Test
    void shortLimitsLeaveRealTransfersAlone() throws Exception {
        S3Settings settings = shortLimits(s3.server().newBucketSettings("repo"));
        byte[] big = random((int) (12 * MIB + 7), 1);
        Path file = Files.write(tmp.resolve("big"), big);
        try (S3Store store = new S3Store(settings)) {
            store.put("data/aa/array", big); // multipart: 3 parts
            store.put("data/bb/file", file);
            store.put("config", new byte[] {1, 2, 3});
            assertArrayEquals(big, store.get("data/aa/array"));
            assertArrayEquals(big, store.get("data/bb/file"));
            assertArrayEquals(Arrays.copyOfRange(big, (int) (5 * MIB), (int) (7 * MIB)),
                    store.getRange("data/bb/file", 5 * MIB, (int) (2 * MIB)));
            assertEquals(3, store.list("").size());
            assertEquals(big.length, store.size("data/bb/file"));
            store.delete("config");
            assertFalse(store.exists("config"));
        }
    }

    /**
     * Through a link of about 2 MiB/s, a 5 MiB upload and download each take longer than the 2 s limit of an
     * attempt: the allowance for the data they carry keeps them going, and the attempt timeout (2 s without
     * progress) never fires because data keeps moving.
     */
    @Test
    void slowButMovingTransfersOutlastTheRequestTimeout() throws Exception {
        S3Settings direct = s3.server().newBucketSettings("repo");
        byte[] data = random((int) S3ProxyServer.TEST_PART_SIZE, 2); // one PUT
        try (FaultInjectingProxy link = new FaultInjectingProxy(s3.server().endpoint().getPort(),
                        FaultInjectingProxy.Link.throttled(2 * 1024 * 1024));
                S3Store store = new S3Store(shortLimits(direct.toBuilder()
                        .endpoint(link.endpoint()).build()).toBuilder()
                        .attemptTimeout(TIMEOUT).build())) {
            long start = System.nanoTime();
            store.put("data/aa/slow", data);
            double putSeconds = (System.nanoTime() - start) / 1e9;
            start = System.nanoTime();
            byte[] back = store.get("data/aa/slow");
            double getSeconds = (System.nanoTime() - start) / 1e9;
            assertArrayEquals(data, back);
            assertTrue(putSeconds > TIMEOUT.toSeconds() && getSeconds > TIMEOUT.toSeconds(),
                    "the link is slow enough to matter: put " + putSeconds + " s, get " + getSeconds + " s");
        }
    }

    @Test
    void dataGetsOneMinutePerMib() {
        assertEquals(Duration.ZERO, S3Store.transferAllowance(0));
        assertEquals(Duration.ofSeconds(30), S3Store.transferAllowance(MIB / 2));
        assertEquals(Duration.ofMinutes(16), S3Store.transferAllowance(16 * MIB));
        assertEquals(Duration.ofMinutes(5L * 1024 * 1024), S3Store.transferAllowance(5L * 1024 * 1024 * MIB));
    }

    private static byte[] random(int size, long seed) {
        byte[] data = new byte[size];
        new Random(seed).nextBytes(data);
        return data;
    }
}
