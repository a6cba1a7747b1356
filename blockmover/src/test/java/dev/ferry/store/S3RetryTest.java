package dev.ferry.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.slf4j.LoggerFactory;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;

/**
 * {@link S3Store}'s patience, through a {@link FaultInjectingProxy} in front of S3Proxy: an endpoint that goes away
 * for seconds is waited out, saying so; an answer that stops halfway is asked for again; and once the time for
 * retries is spent, the error names the operation, the object and the cause. The budgets and pauses are short
 * here, so that the tests take seconds; the defaults are minutes.
 */
class S3RetryTest {

    @RegisterExtension
    static final S3ProxyExtension s3 = new S3ProxyExtension();

    private FaultInjectingProxy proxy;
    private ListAppender<ILoggingEvent> warnings;
    private final Logger storeLog = (Logger) LoggerFactory.getLogger(S3Store.class);

    @BeforeEach
    void startProxy() throws IOException {
        proxy = new FaultInjectingProxy(s3.server().endpoint().getPort());
        warnings = new ListAppender<>();
        warnings.start();
        storeLog.addAppender(warnings);
    }

    @AfterEach
    void stopProxy() throws IOException {
        storeLog.detachAppender(warnings);
        proxy.close();
    }

    /**
     * Settings for {@code bucket} through the proxy: an attempt gives up after 1 s without progress (3 s in all),
     * failed requests are retried for {@code retryTimeout}, after pauses from {@code firstPause} doubling up to
     * {@code longestPause}.
     */
    private S3Settings throughProxy(String bucket, Duration retryTimeout, Duration firstPause, Duration longestPause) {
        return s3.server().settings(bucket, "repo").toBuilder()
                .endpoint(proxy.endpoint())
                .maxAttempts(S3Settings.DEFAULT_MAX_ATTEMPTS)
                .attemptTimeout(Duration.ofSeconds(1))
                .timeout(Duration.ofSeconds(3))
                .retryTimeout(retryTimeout)
                .retryBackoff(firstPause, longestPause)
                .build();
    }

    private List<String> warningMessages() {
        return warnings.list.stream().filter(e -> e.getLevel().isGreaterOrEqual(Level.WARN))
                .map(ILoggingEvent::getFormattedMessage).toList();
    }

    private static byte[] random(int size, long seed) {
        byte[] data = new byte[size];
        new Random(seed).nextBytes(data);
        return data;
    }

    /**
     * The endpoint goes away for 6 s (connections refused, open ones reset) in the middle of a series of writes and
     * reads, a multipart upload among them: every request waits it out and succeeds once the endpoint is back,
     * and the wait is told at warning level (operation, object, cause, pause, attempt and budget).
     */
    @Test
    void anEndpointDownForSixSecondsIsWaitedOut() throws Exception {
        String bucket = s3.server().newBucket();
        S3Settings settings = throughProxy(bucket, Duration.ofSeconds(30), Duration.ofMillis(200),
                Duration.ofSeconds(1));
        byte[] big = random((int) (2 * S3ProxyServer.TEST_PART_SIZE + 1000), 7); // three parts
        ExecutorService writer = Executors.newSingleThreadExecutor();
        try (S3Store store = new S3Store(settings);
                S3Store direct = new S3Store(s3.server().settings(bucket, "repo"))) {
            for (int i = 0; i < 3; i++) {
                store.put("data/00/obj-" + i, random(1000 + i, i));
            }
            proxy.down();
            Future<byte[]> work = writer.submit(() -> {
                for (int i = 3; i < 8; i++) {
                    store.put("data/00/obj-" + i, random(1000 + i, i));
                }
                store.put("data/01/big", big);
                assertEquals(9, store.list("data/").size());
                return store.getRange("data/00/obj-1", 10, 500);
            });
            TimeUnit.SECONDS.sleep(6); // the outage
            assertFalse(work.isDone(), "the writes waited for the endpoint");
            proxy.up();
            byte[] range = work.get(60, TimeUnit.SECONDS);

            assertArrayEquals(Arrays.copyOfRange(random(1001, 1), 10, 510), range);
            for (int i = 0; i < 8; i++) {
                assertArrayEquals(random(1000 + i, i), direct.get("data/00/obj-" + i), "obj-" + i);
            }
            assertArrayEquals(big, direct.get("data/01/big"));
        } finally {
            writer.shutdownNow();
        }
        List<String> said = warningMessages();
        Pattern waiting = Pattern.compile("S3 PutObject of s3://" + bucket + "/repo/data/00/obj-3: the S3 endpoint "
                + Pattern.quote(proxy.endpoint().toString()) + " (refused the connection|closed the connection"
                + "|gave no connection|did not finish answering).*; retrying in \\d+(\\.\\d+)? s \\(attempt (\\d+), waited \\d+(\\.\\d+)? s of budget 30 s\\)");
        List<Integer> attempts = new ArrayList<>();
        for (String message : said) {
            Matcher m = waiting.matcher(message);
            if (m.matches()) {
                attempts.add(Integer.parseInt(m.group(3)));
            }
        }
        // at least two pauses fit in the 6 s even when the SDK's pool loses a refused connection's request and an
        // attempt waits out its 3 s acquire limit; usually there are more
        assertTrue(attempts.size() >= 2, "each pause of the first write after the outage began is told: " + said);
        for (int i = 0; i < attempts.size(); i++) {
            assertEquals(i + 1, attempts.get(i), "attempts are counted: " + said);
        }
    }

    /**
     * An answer that stops halfway, the connection left open and silent: the attempt ends after its 1 s without
     * progress and the read is tried again, for a range (as restore and verify read packs) and for a whole object.
     */
    @Test
    void anAnswerThatGoesSilentHalfwayIsReadAgain() throws Exception {
        String bucket = s3.server().newBucket();
        byte[] pack = random(300_000, 3);
        try (S3Store direct = new S3Store(s3.server().settings(bucket, "repo"))) {
            direct.put("data/aa/pack", pack);
        }
        S3Settings settings = throughProxy(bucket, Duration.ofSeconds(20), Duration.ofMillis(100),
                Duration.ofMillis(500));

        proxy.stallConnections(1, 8192); // the headers and the start of the body, then silence
        try (S3Store store = new S3Store(settings)) {
            assertArrayEquals(Arrays.copyOfRange(pack, 1000, 251_000), store.getRange("data/aa/pack", 1000, 250_000));
        }
        assertEquals(1, proxy.stalled(), "the answer stopped once");

        proxy.stallConnections(1, 8192);
        try (S3Store store = new S3Store(settings)) {
            assertArrayEquals(pack, store.get("data/aa/pack"));
        }
        assertEquals(2, proxy.stalled(), "the answer stopped again");

        List<String> said = warningMessages();
        assertEquals(2, said.stream().filter(m -> m.startsWith("S3 GetObject of s3://" + bucket
                + "/repo/data/aa/pack: ") && m.contains("; retrying in ")).count(), said.toString());
        assertTrue(said.stream().noneMatch(m -> m.contains("null")), said.toString());
    }

    /**
     * Once the time for retries is spent, the request fails with a message naming the operation, the object and
     * what the attempts met (never "null"), and how long it kept trying.
     */
    @Test
    void whenTheBudgetIsSpentTheErrorNamesOperationObjectAndCause() throws Exception {
        String bucket = s3.server().newBucket();
        S3Settings settings = throughProxy(bucket, Duration.ofMillis(1500), Duration.ofMillis(100),
                Duration.ofMillis(400));
        Pattern tried = Pattern.compile("\\((\\d+) attempts in \\d+\\.\\d s; retried for 1\\.5 s, see "
                + "FERRY_S3_RETRY_TIMEOUT\\)");

        proxy.down();
        try (S3Store store = new S3Store(settings)) {
            long start = System.nanoTime();
            IOException e = assertThrows(IOException.class, () -> store.put("data/ab/x", new byte[100]));
            Duration took = Duration.ofNanos(System.nanoTime() - start);
            String message = e.getMessage();
            assertTrue(message.startsWith("S3 PutObject of s3://" + bucket + "/repo/data/ab/x failed: the S3 endpoint "
                    + proxy.endpoint() + " "), message);
            assertTrue(message.contains(" refused the connection"), message);
            Matcher m = tried.matcher(message);
            assertTrue(m.find(), message);
            // retried until the budget was spent: more than one attempt, and no earlier than the budget's end. How
            // many attempts fit depends on the SDK's pool, which at times loses the request of a refused first
            // connection and lets that attempt wait out its connection-acquire limit (3 s here)
            assertTrue(Integer.parseInt(m.group(1)) >= 2, "retried: " + message);
            assertTrue(took.compareTo(Duration.ofMillis(1500)) >= 0, "gave up after " + took + ": " + message);
        }

        proxy.up();
        try (S3Store direct = new S3Store(s3.server().settings(bucket, "repo"))) {
            direct.put("data/aa/pack", random(100_000, 4));
        }
        proxy.stallConnections(1000, 8192); // every answer stops halfway
        try (S3Store store = new S3Store(settings)) {
            IOException e = assertThrows(IOException.class, () -> store.getRange("data/aa/pack", 0, 90_000));
            String message = e.getMessage();
            assertTrue(message.startsWith("S3 GetObject of s3://" + bucket + "/repo/data/aa/pack failed: the S3 "
                    + "endpoint " + proxy.endpoint() + " stopped sending the answer for 1 s"), message);
            assertTrue(tried.matcher(message).find(), message);
            assertFalse(message.contains("null"), message);
        }
    }

    /** A request waiting to retry ends at once when its store is closed or its thread is interrupted. */
    @Test
    void closingTheStoreOrInterruptingEndsTheWait() throws Exception {
        String bucket = s3.server().newBucket();
        // pauses of 10 to 20 s, far longer than the ends looked for below
        S3Settings settings = throughProxy(bucket, Duration.ofMinutes(5), Duration.ofSeconds(20),
                Duration.ofSeconds(20));
        proxy.down();

        S3Store closed = new S3Store(settings);
        S3Store interrupted = new S3Store(settings);
        AtomicReference<Throwable> closedFailure = new AtomicReference<>();
        AtomicReference<Throwable> interruptedFailure = new AtomicReference<>();
        AtomicReference<Boolean> stillInterrupted = new AtomicReference<>();
        Thread first = new Thread(() -> {
            try {
                closed.put("data/ab/closed", new byte[10]);
            } catch (Throwable t) {
                closedFailure.set(t);
            }
        });
        Thread second = new Thread(() -> {
            try {
                interrupted.put("data/ab/interrupted", new byte[10]);
            } catch (Throwable t) {
                interruptedFailure.set(t);
                stillInterrupted.set(Thread.currentThread().isInterrupted());
            }
        });
        try {
            first.start();
            second.start();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (warningMessages().stream().filter(m -> m.contains("; retrying in ")).count() < 2
                    && System.nanoTime() < deadline) {
                TimeUnit.MILLISECONDS.sleep(20);
            }
            assertEquals(2, warningMessages().stream().filter(m -> m.contains("; retrying in ")).count(),
                    "both requests are waiting: " + warningMessages());

            closed.close();
            second.interrupt();
            first.join(5000);
            second.join(5000);
            assertFalse(first.isAlive() || second.isAlive(), "the waits ended");
            assertTrue(closedFailure.get() instanceof IOException
                    && closedFailure.get().getMessage().contains("closed"), String.valueOf(closedFailure.get()));
            assertTrue(closedFailure.get().getMessage().contains("s3://" + bucket + "/repo/data/ab/closed"),
                    closedFailure.get().getMessage());
            assertTrue(interruptedFailure.get() instanceof InterruptedIOException,
                    String.valueOf(interruptedFailure.get()));
            assertEquals(Boolean.TRUE, stillInterrupted.get(), "the interrupt is kept");
        } finally {
            first.interrupt();
            second.interrupt();
            closed.close();
            interrupted.close();
        }
    }
}
