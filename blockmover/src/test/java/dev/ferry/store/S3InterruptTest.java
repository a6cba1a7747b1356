package dev.ferry.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InterruptedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * A job's thread interrupted (what a cancel does to the threads of a job) in the middle of an S3 transfer over a
 * slow link: the call ends within seconds, the request is abandoned, and a multipart upload is aborted, leaving no
 * parts behind.
 */
class S3InterruptTest {
    private static final long MIB = S3Settings.MIB;

    @RegisterExtension
    static final S3ProxyExtension s3 = new S3ProxyExtension();

    @TempDir
    Path tmp;

    private static byte[] random(int size, long seed) {
        byte[] data = new byte[size];
        new Random(seed).nextBytes(data);
        return data;
    }

    /** Runs {@code call} on a thread of its own, interrupts it after {@code afterMillis}, returns what it threw. */
    private static Throwable interruptAfter(long afterMillis, StoreCall call) throws Exception {
        AtomicReference<Thread> worker = new AtomicReference<>();
        CompletableFuture<Throwable> ended = new CompletableFuture<>();
        Thread t = new Thread(() -> {
            try {
                call.run();
                ended.complete(null);
            } catch (Throwable e) {
                ended.complete(e);
            }
        }, "s3-interrupt-test");
        worker.set(t);
        t.start();
        Thread.sleep(afterMillis);
        assertFalse(ended.isDone(), "the transfer ended before the interrupt: the link is not slow enough");
        long start = System.nanoTime();
        t.interrupt();
        Throwable e = ended.get(10, TimeUnit.SECONDS);
        long ms = (System.nanoTime() - start) / 1_000_000;
        assertTrue(ms < 5_000, "the interrupted call took " + ms + " ms to end");
        t.join(5_000);
        return e;
    }

    @FunctionalInterface
    interface StoreCall {
        void run() throws Exception;
    }

    @Test
    void interruptedMultipartUploadEndsPromptlyAndIsAborted() throws Exception {
        S3Settings direct = s3.server().newBucketSettings("repo");
        Path file = tmp.resolve("big");
        Files.write(file, random((int) (24 * MIB), 1)); // several parts, about 12 s over the link
        try (FaultInjectingProxy link = new FaultInjectingProxy(s3.server().endpoint().getPort(),
                FaultInjectingProxy.Link.throttled(2 * 1024 * 1024));
             S3Store store = new S3Store(direct.toBuilder().endpoint(link.endpoint()).build())) {
            Throwable e = interruptAfter(1500, () -> store.put("data/aa/big", file));
            assertInstanceOf(InterruptedIOException.class, e, String.valueOf(e));
            assertEquals(0, e.getSuppressed().length, "the abort failed: " + java.util.Arrays.toString(e.getSuppressed()));
            assertFalse(store.exists("data/aa/big"));
        }
        // the abort went out before the call returned: no upload and no part is left
        assertTrue(s3.server().blobStore().listMultipartUploads(direct.bucket()).isEmpty(),
                "multipart uploads left: " + s3.server().blobStore().listMultipartUploads(direct.bucket()));
    }

    @Test
    void interruptedSinglePutAndGetEndPromptly() throws Exception {
        S3Settings direct = s3.server().newBucketSettings("repo");
        byte[] data = random((int) S3ProxyServer.TEST_PART_SIZE, 2); // one PUT, about 2.5 s over the link
        try (S3Store fast = new S3Store(direct)) {
            fast.put("data/aa/one", data);
        }
        try (FaultInjectingProxy link = new FaultInjectingProxy(s3.server().endpoint().getPort(),
                FaultInjectingProxy.Link.throttled(1024 * 1024));
             S3Store store = new S3Store(direct.toBuilder().endpoint(link.endpoint()).build())) {
            Throwable put = interruptAfter(800, () -> store.put("data/aa/two", data));
            assertInstanceOf(InterruptedIOException.class, put, String.valueOf(put));
            Throwable get = interruptAfter(800, () -> store.get("data/aa/one"));
            assertInstanceOf(InterruptedIOException.class, get, String.valueOf(get));
            // the store still works for the next job
            assertArrayEquals(data, store.get("data/aa/one"));
        }
    }
}
