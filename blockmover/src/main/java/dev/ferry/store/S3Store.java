package dev.ferry.store;

import java.io.ByteArrayInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.ConnectException;
import java.net.NoRouteToHostException;
import java.net.UnknownHostException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.cert.Certificate;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import javax.net.ssl.SSLException;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import software.amazon.awssdk.auth.credentials.AwsCredentialsProvider;
import software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider;
import io.netty.channel.ChannelOption;
import io.netty.channel.ConnectTimeoutException;
import io.netty.handler.ssl.SslHandshakeTimeoutException;
import io.netty.handler.timeout.ReadTimeoutException;
import io.netty.handler.timeout.WriteTimeoutException;
import software.amazon.awssdk.awscore.AwsRequestOverrideConfiguration;
import software.amazon.awssdk.awscore.exception.AwsErrorDetails;
import software.amazon.awssdk.awscore.exception.AwsServiceException;
import software.amazon.awssdk.awscore.retry.AwsRetryStrategy;
import software.amazon.awssdk.core.ResponseBytes;
import software.amazon.awssdk.core.async.AsyncRequestBody;
import software.amazon.awssdk.core.async.AsyncResponseTransformer;
import software.amazon.awssdk.core.async.SdkPublisher;
import software.amazon.awssdk.core.checksums.RequestChecksumCalculation;
import software.amazon.awssdk.core.checksums.ResponseChecksumValidation;
import software.amazon.awssdk.core.exception.ApiCallAttemptTimeoutException;
import software.amazon.awssdk.core.exception.ApiCallTimeoutException;
import software.amazon.awssdk.core.interceptor.Context;
import software.amazon.awssdk.core.interceptor.ExecutionAttribute;
import software.amazon.awssdk.core.interceptor.ExecutionAttributes;
import software.amazon.awssdk.core.interceptor.ExecutionInterceptor;
import software.amazon.awssdk.http.SdkHttpRequest;
import software.amazon.awssdk.http.async.AsyncExecuteRequest;
import software.amazon.awssdk.http.async.SdkAsyncHttpClient;
import software.amazon.awssdk.http.nio.netty.NettyNioAsyncHttpClient;
import software.amazon.awssdk.http.nio.netty.SdkEventLoopGroup;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.retries.api.RetryStrategy;
import software.amazon.awssdk.services.s3.S3AsyncClient;
import software.amazon.awssdk.services.s3.S3AsyncClientBuilder;
import software.amazon.awssdk.services.s3.model.CompletedPart;
import software.amazon.awssdk.services.s3.model.GetObjectResponse;
import software.amazon.awssdk.services.s3.model.ListMultipartUploadsResponse;
import software.amazon.awssdk.services.s3.model.ListObjectsV2Response;
import software.amazon.awssdk.services.s3.model.MultipartUpload;
import software.amazon.awssdk.services.s3.model.PutObjectRequest;
import software.amazon.awssdk.services.s3.model.S3Object;
import software.amazon.awssdk.services.s3.model.UploadPartRequest;
import software.amazon.awssdk.services.s3.model.UploadPartResponse;

/**
 * A {@link Store} in an S3 bucket (AWS or any S3-compatible service), under an optional key prefix.
 *
 * <p>An object named {@code n} is stored under the key {@code prefix/n}, or {@code n} when the prefix is empty.
 * Objects up to {@link S3Settings#partSize()} bytes are written with a single PUT, larger ones with a multipart
 * upload of at most {@value #MAX_PARTS} parts, a few parts at a time; S3 makes either kind of write visible
 * atomically once it has completed. A failed multipart upload is aborted so that it leaves no parts behind.
 *
 * <p>Every upload carries a {@code Content-MD5} header, so the service rejects a body damaged on the way. The
 * SDK's newer flexible checksums are only used where an operation requires them, as many S3-compatible services do
 * not support them.
 *
 * <p>A request whose attempt fails in a way that may pass is tried again, patiently: no connection (refused,
 * reset, unreachable), no answer or an answer that stops halfway (the attempt timeout), throttling (429,
 * {@code SlowDown}...) and server errors (5xx). The pauses between attempts grow exponentially from
 * {@link S3Settings#retryBackoff()} (0.5 s) to at most {@link S3Settings#maxRetryBackoff()} (30 s), each drawn at
 * random between half that and that, and no attempt starts more than {@link S3Settings#retryTimeout()} (15
 * minutes) after the request's first failure, nor beyond {@link S3Settings#maxAttempts()} attempts. Other
 * failures (403, 404, a bad request, an untrusted certificate) end the request at once. Each pause is told at
 * warning level: the operation, the object, what the attempt met, the pause, the attempt and the time waited of
 * the budget. A read is retried whole: a GET of a range asks for the same range again. The retries are Ferry's,
 * not the SDK's (whose own are off), so that they span minutes, are said, and end at once when the waiting thread
 * is interrupted or the store is closed.
 *
 * <p>All methods are safe to call from several threads at once. The S3 client is created on first use and released
 * by {@link #close()}, which ends the requests under way.
 *
 * <p>Every request has a bounded time, so that an endpoint that does not answer is an error, not a hang:
 * <ul>
 *   <li>an attempt is abandoned (and retried) when it goes {@link S3Settings#attemptTimeout()} without progress:
 *       to connect (at most {@value #CONNECT_TIMEOUT_SECONDS} s), to finish the TLS handshake (as long), to hand
 *       the connection the next piece of a body, or to receive the next bytes of the answer. These limits follow
 *       progress rather than the clock, so an upload over a slow link is not cut off while it moves; for that, a
 *       body goes out in small pieces and the socket send buffer is kept to {@value #SEND_BUFFER_BYTES} bytes
 *       (the wait for the answer starts once the last piece is in that buffer);</li>
 *   <li>an attempt also has a wall-clock limit, as a backstop for an answer that trickles in:
 *       {@link S3Settings#timeout()}, plus {@link #TRANSFER_ALLOWANCE_PER_MIB} per MiB the request carries; a
 *       whole-object GET, whose size is known only once the answer begins, gets the allowance from then on;</li>
 *   <li>the whole request thus ends within two attempts' limits and the retry budget;</li>
 *   <li>Ferry's own waits end with these limits (a few seconds later where the client is to end the attempt),
 *       cancelling the request.</li>
 * </ul>
 * A failed request is reported with the operation, the object and the cause: an error answer from S3 with its
 * code and message; a request without an answer with the endpoint and what its attempts met (connection refused,
 * no connection, no answer, an answer cut short, a TLS failure...); both with how many attempts were made in how
 * long and why the retries stopped.
 */
public final class S3Store implements Store {

    /** Age after which prune takes an unfinished multipart upload for abandoned. */
    static final Duration ABANDONED_UPLOAD_AGE = Duration.ofHours(24);
    /** Largest number of parts S3 accepts in one multipart upload. */
    public static final int MAX_PARTS = 10_000;

    /** How many parts of one multipart upload are sent at the same time. */
    static final int PARTS_IN_FLIGHT = 4;

    private static final Logger log = LoggerFactory.getLogger(S3Store.class);

    /**
     * Time a request gets beyond its limits per MiB it carries: one minute, so that a transfer is cut off by the
     * clock only below about 17 KiB/s (stalls are caught sooner, by the attempt timeout).
     */
    public static final Duration TRANSFER_ALLOWANCE_PER_MIB = Duration.ofMinutes(1);

    /** Longest time to open a TCP connection, and again to finish a TLS handshake, if the attempt timeout is longer. */
    static final int CONNECT_TIMEOUT_SECONDS = 5;

    /** How long Ferry waits for a request beyond its own time limit, in case the client fails to end it. */
    static final Duration GRACE = Duration.ofSeconds(5);

    private static final int MAX_CONNECTIONS = 64;
    /** Size of the pieces an upload from memory is handed to the connection in. */
    private static final int BODY_CHUNK = 64 * 1024;
    /**
     * Socket send buffer of a connection. The client starts waiting for the answer, with the attempt timeout, once
     * the last byte of a body is in this buffer, so the link must drain it within that time: left to the kernel,
     * the buffer grows to several MiB, which a slow link takes minutes to send. 1 MiB (about 2 MiB in flight, as
     * the kernel doubles it) still allows about 20 MiB/s per connection at 100 ms round trip.
     */
    static final int SEND_BUFFER_BYTES = 1024 * 1024;
    /** The header the SDK gives every attempt of one request (the same for all its attempts). */
    private static final String INVOCATION_ID = "amz-sdk-invocation-id";
    /** The {@link Call} a request belongs to, set on the request for {@link CallTracking}. */
    private static final ExecutionAttribute<Call> CALL = new ExecutionAttribute<>("dev.ferry.store.S3Store.Call");
    private static final Pattern PEM_CERTIFICATE = Pattern.compile(
            "-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\\s]*?)-----END CERTIFICATE-----");

    private final S3Settings settings;
    private final String bucket;
    private final String keyPrefix;
    private final String location;
    private final Object clientLock = new Object();
    private S3AsyncClient client; // guarded by clientLock, created on first use
    private SdkAsyncHttpClient httpClient; // guarded by clientLock, created with the client
    /** Ends attempts that go past their time limit, and pauses between attempts; created with the client. */
    private ScheduledThreadPoolExecutor timers; // guarded by clientLock
    private boolean closed; // guarded by clientLock
    /** Requests with an attempt under way, by invocation id, so that the HTTP layer can note what attempts meet. */
    private final Map<String, Call> calls = new ConcurrentHashMap<>();
    /** Requests under way, to end when the store is closed. */
    private final java.util.Set<Retrying<?>> live = ConcurrentHashMap.newKeySet();

    /**
     * Creates a store. Nothing is read and no request is made until the store is used: the S3 client is created,
     * and the CA file of the settings loaded, by the first operation, which fails with an {@link IOException}
     * naming the CA file if it cannot be read or holds no certificate.
     */
    public S3Store(S3Settings settings) {
        this.settings = Objects.requireNonNull(settings, "settings");
        this.bucket = settings.bucket();
        this.keyPrefix = settings.prefix().isEmpty() ? "" : settings.prefix() + "/";
        this.location = settings.url();
    }

    private S3AsyncClient client() throws IOException {
        synchronized (clientLock) {
            if (closed) {
                throw new IOException("the S3 store " + location + " is closed");
            }
            if (client == null) {
                TrustManager[] trustManagers = settings.caFile() == null ? null : trustManagers(settings.caFile());
                httpClient = new AttemptRecordingHttpClient(buildHttpClient(settings, trustManagers), calls);
                client = buildClient(settings, httpClient, new CallTracking(calls));
                timers = new ScheduledThreadPoolExecutor(1, runnable -> {
                    Thread thread = new Thread(runnable, "ferry-s3-timer");
                    thread.setDaemon(true);
                    return thread;
                });
                timers.setRemoveOnCancelPolicy(true);
            }
            return client;
        }
    }

    /** Starts a request: its first attempt now, the others as {@link Retrying} decides. */
    private <T> Retrying<T> start(Call call, Function<S3AsyncClient, CompletableFuture<T>> request)
            throws IOException {
        S3AsyncClient s3;
        ScheduledExecutorService scheduler;
        synchronized (clientLock) {
            try {
                s3 = client();
            } catch (IOException e) { // closed, or the CA file cannot be used
                throw new IOException("S3 " + call.operation + " of " + target(call) + " failed: " + e.getMessage(),
                        e);
            }
            scheduler = timers;
        }
        return new Retrying<>(call, s3, scheduler, request).start();
    }

    /** Runs a request and waits for its outcome (see {@link #await(Retrying, boolean)}). */
    private <T> T run(Call call, Function<S3AsyncClient, CompletableFuture<T>> request,
            boolean missingIsNoSuchObject) throws IOException {
        return await(start(call, request), missingIsNoSuchObject);
    }

    private IOException closedDuring(Call call) {
        return new StoreClosedException("S3 " + call.operation + " of " + target(call) + " failed: the S3 store "
                + location + " was closed meanwhile");
    }

    /**
     * Netty event loops (daemon threads) shared by all stores for the life of the JVM. Closing a store closes its
     * connections but leaves the loops running, so that close() returns at once, without the quiet period
     * (seconds) that stopping an event loop group takes.
     */
    private static final class SharedEventLoops {
        static final SdkEventLoopGroup GROUP = SdkEventLoopGroup.builder().build();
    }

    /** Time to open a TCP connection, and again to finish a TLS handshake. */
    static Duration connectTimeout(S3Settings settings) {
        Duration max = Duration.ofSeconds(CONNECT_TIMEOUT_SECONDS);
        return settings.attemptTimeout().compareTo(max) < 0 ? settings.attemptTimeout() : max;
    }

    /**
     * Time for an attempt to get a connection: to open one (TCP, then TLS) and a second more. No more, because the
     * Netty client can lose a connection request: when the first connection of a pool fails at once (refused, or
     * an unknown host) on the event loop that negotiates the protocol, the request waits on a promise nobody
     * completes until this timeout ends it (it was two minutes, and users saw refused connections hang that long);
     * the attempt is then retried. Waiting for a free connection also counts, but Ferry uses far fewer than
     * {@value #MAX_CONNECTIONS} at once.
     */
    static Duration acquireTimeout(S3Settings settings) {
        return connectTimeout(settings).multipliedBy(2).plusSeconds(1);
    }

    /**
     * The Netty HTTP client. Its read and write timeouts are idle timeouts (no byte received, or a write not
     * finished, for that long), so they bound a stalled attempt without bounding a slow transfer.
     */
    private static SdkAsyncHttpClient buildHttpClient(S3Settings settings, TrustManager[] trustManagers) {
        Duration idle = settings.attemptTimeout();
        NettyNioAsyncHttpClient.Builder http = NettyNioAsyncHttpClient.builder()
                .eventLoopGroup(SharedEventLoops.GROUP)
                .maxConcurrency(MAX_CONNECTIONS)
                .connectionAcquisitionTimeout(acquireTimeout(settings))
                .connectionTimeout(connectTimeout(settings))
                .tlsNegotiationTimeout(connectTimeout(settings))
                .readTimeout(idle)
                .writeTimeout(idle)
                .putChannelOption(ChannelOption.SO_SNDBUF, SEND_BUFFER_BYTES)
                .tcpKeepAlive(true);
        if (trustManagers != null) {
            http.tlsTrustManagersProvider(() -> trustManagers);
        }
        return http.build();
    }

    private static S3AsyncClient buildClient(S3Settings settings, SdkAsyncHttpClient http,
            ExecutionInterceptor callTracking) {

        // Ferry retries itself (see Retrying), with a budget of minutes rather than attempts, and says so while
        // it waits; each SDK call is one attempt.
        RetryStrategy retryStrategy = AwsRetryStrategy.doNotRetry();

        AwsCredentialsProvider credentials = settings.credentialsProvider() != null
                ? settings.credentialsProvider()
                : DefaultCredentialsProvider.create();

        S3AsyncClientBuilder builder = S3AsyncClient.builder()
                .httpClient(http)
                .region(Region.of(settings.region()))
                .credentialsProvider(credentials)
                .forcePathStyle(settings.pathStyle())
                // Flexible checksums (CRC trailers, x-amz-checksum-mode) only where an operation requires them:
                // many S3-compatible services reject them. Uploads carry a Content-MD5 instead, which every
                // implementation verifies and which also satisfies Object Lock buckets.
                .requestChecksumCalculation(RequestChecksumCalculation.WHEN_REQUIRED)
                .responseChecksumValidation(ResponseChecksumValidation.WHEN_REQUIRED)
                // Every request sets its own limits (see Call); these defaults bound any that would not.
                .overrideConfiguration(o -> o.retryStrategy(retryStrategy)
                        .apiCallTimeout(settings.timeout())
                        .apiCallAttemptTimeout(settings.timeout())
                        .addExecutionInterceptor(new NoExpectContinueWithoutBody())
                        .addExecutionInterceptor(callTracking));
        if (settings.endpoint() != null) {
            builder.endpointOverride(settings.endpoint());
        }
        return builder.build();
    }

    /**
     * Drops the {@code Expect: 100-continue} header the SDK puts on every PutObject and UploadPart when the body is
     * empty. There is nothing to hold back then, and a server that answers at once without a {@code 100 Continue}
     * can leave the Netty client's connection in a state where its next request fails ("Duplicate handler name").
     */
    private static final class NoExpectContinueWithoutBody implements ExecutionInterceptor {
        @Override
        public SdkHttpRequest modifyHttpRequest(Context.ModifyHttpRequest context,
                ExecutionAttributes executionAttributes) {
            SdkHttpRequest request = context.httpRequest();
            Long length = null;
            if (context.request() instanceof PutObjectRequest put) {
                length = put.contentLength();
            } else if (context.request() instanceof UploadPartRequest part) {
                length = part.contentLength();
            }
            if (length != null && length == 0 && request.firstMatchingHeader("Expect").isPresent()) {
                return request.toBuilder().removeHeader("Expect").build();
            }
            return request;
        }
    }

    /**
     * One request as Ferry sees it: what it is for (for messages), its time limits, its retry budget, and what its
     * attempts met. Each attempt is one call of the SDK (whose own retries are off); {@link Retrying} runs them.
     * The SDK names the endpoint it reached through {@link CallTracking}; the HTTP layer notes why an attempt
     * failed through {@link AttemptRecordingHttpClient}, so that an attempt stopped by its time limit can still
     * say what it met.
     */
    private final class Call {
        final String operation;
        final String name;
        final String key;
        /** Bytes the request carries, known in advance; -1 for a download of unknown size. */
        final long bytes;
        final long startNanos = System.nanoTime();
        /** Attempts started. */
        final AtomicInteger attempts = new AtomicInteger();
        /** What the attempts met, in order and each once ("refused the connection"...). */
        private final java.util.Set<String> met = new java.util.LinkedHashSet<>(); // guarded by itself
        /** How long after the first failure the request is still retried. */
        volatile Duration retryBudget = settings.retryTimeout();
        /** Size of the answer of a download of unknown size, once its headers have come. */
        volatile long answerBytes = -1;
        volatile String endpointSeen;
        volatile String invocationId;
        volatile long firstFailureNanos = -1;
        /** Why the retries stopped, if they did for lack of budget or attempts: for the final message. */
        volatile String retriesEnded;
        // The current attempt, or the pause before the next one.
        volatile long attemptStartNanos = System.nanoTime();
        volatile long pauseEndNanos = -1;
        /** Whether the current attempt got as far as sending (the SDK resolved credentials and signed it). */
        volatile boolean transmitted;
        /** Whether the current attempt got the headers of an answer. */
        volatile boolean answerStarted;
        /** What the HTTP layer saw end the current attempt, if it failed there. */
        volatile Throwable httpFailure;

        /** A request carrying {@code bytes} bytes of data: 0 for none, -1 for a download of unknown size. */
        Call(String operation, String name, String key, long bytes) {
            this.operation = operation;
            this.name = name;
            this.key = key;
            this.bytes = bytes;
        }

        /** This request with a retry budget of at most {@code budget}. */
        Call atMostRetrying(Duration budget) {
            if (budget.compareTo(retryBudget) < 0) {
                retryBudget = budget;
            }
            return this;
        }

        /**
         * The time limit of one attempt: the settings' timeout plus the allowance for the data it carries. A
         * download of unknown size has the plain timeout until its answer tells its size, then that size's
         * allowance on top.
         */
        Duration attemptLimit() {
            return settings.timeout().plus(transferAllowance(Math.max(bytes, answerBytes)));
        }

        /**
         * Puts this request's limits and identity on the SDK request. The client's limits cannot grow once a
         * request is under way, so a download of unknown size is given only the per-attempt idle timeouts there,
         * and its whole time is bounded by {@link Retrying}, which cancels it.
         */
        void configure(AwsRequestOverrideConfiguration.Builder o) {
            if (bytes < 0) {
                o.apiCallTimeout(S3Settings.MAX_TIMEOUT).apiCallAttemptTimeout(S3Settings.MAX_TIMEOUT);
            } else {
                o.apiCallTimeout(attemptLimit()).apiCallAttemptTimeout(attemptLimit());
            }
            o.putExecutionAttribute(CALL, this);
        }

        /** The GET's transformer, noting that the answer began, and its size, as soon as its headers come. */
        <T> AsyncResponseTransformer<GetObjectResponse, T> sized(
                AsyncResponseTransformer<GetObjectResponse, T> transformer) {
            return new AsyncResponseTransformer<>() {
                @Override
                public CompletableFuture<T> prepare() {
                    return transformer.prepare();
                }

                @Override
                public void onResponse(GetObjectResponse response) {
                    answerStarted = true;
                    if (bytes < 0 && response.contentLength() != null) {
                        answerBytes = response.contentLength();
                    }
                    transformer.onResponse(response);
                }

                @Override
                public void onStream(SdkPublisher<ByteBuffer> publisher) {
                    transformer.onStream(publisher);
                }

                @Override
                public void exceptionOccurred(Throwable error) {
                    transformer.exceptionOccurred(error);
                }
            };
        }

        void attemptStarting() {
            attempts.incrementAndGet();
            transmitted = false;
            answerStarted = false;
            httpFailure = null;
            attemptStartNanos = System.nanoTime();
            pauseEndNanos = -1;
        }

        /**
         * When Ferry ends the current attempt if it is still going: at its limit for a download of unknown size,
         * {@link #GRACE} later for the others, which the client is to end itself.
         */
        long attemptDeadlineNanos() {
            return attemptStartNanos + attemptLimit().toNanos() + (bytes < 0 ? 0 : GRACE.toNanos());
        }

        /** Notes why an attempt failed; returns what it met, said of the endpoint, or {@code null} if unknown. */
        String attemptFailed(Throwable failure) {
            String problem = transportProblem(failure, this);
            Throwable seen = httpFailure;
            if (seen != null && (problem == null || isTimeLimit(failure))) {
                String underneath = transportProblem(seen, this);
                problem = underneath != null ? underneath : problem;
            }
            if (problem != null) {
                synchronized (met) {
                    met.add(problem);
                }
            }
            return problem;
        }

        List<String> met() {
            synchronized (met) {
                return List.copyOf(met);
            }
        }

        /**
         * The pause before the next attempt after {@code failure}, in nanoseconds, or -1 if there is to be none:
         * the failure cannot pass, or the attempts or the retry budget are spent. The pause doubles with each
         * attempt from {@link S3Settings#retryBackoff()} up to {@link S3Settings#maxRetryBackoff()}, is drawn at
         * random between half that and that, and ends no later than the budget.
         */
        long pauseBeforeRetry(Throwable failure) {
            if (!transmitted && !isTimeLimit(failure) || !retryable(failure)) {
                return -1;
            }
            long now = System.nanoTime();
            if (firstFailureNanos < 0) {
                firstFailureNanos = now;
            }
            int tried = attempts.get();
            if (tried >= settings.maxAttempts()) {
                retriesEnded = "; the most attempts allowed, see FERRY_S3_MAX_ATTEMPTS";
                return -1;
            }
            long left = firstFailureNanos + retryBudget.toNanos() - now;
            if (left <= 0) {
                retriesEnded = retryBudget.isZero() ? "; retries are off, see FERRY_S3_RETRY_TIMEOUT"
                        : "; retried for " + S3Settings.seconds(retryBudget) + ", see FERRY_S3_RETRY_TIMEOUT";
                return -1;
            }
            long longest = settings.maxRetryBackoff().toNanos();
            long nominal = settings.retryBackoff().toNanos();
            for (int i = 1; i < tried && nominal < longest; i++) {
                nominal *= 2;
            }
            nominal = Math.min(nominal, longest);
            long pause = nominal / 2 + java.util.concurrent.ThreadLocalRandom.current().nextLong(nominal / 2 + 1);
            return Math.min(pause, left);
        }

        void pausing(long pauseNanos) {
            pauseEndNanos = System.nanoTime() + pauseNanos;
        }

        /**
         * Time left before Ferry stops waiting for the current step of this request: {@link #GRACE} after the
         * current attempt's deadline, or after the current pause. Each attempt and each pause moves it on.
         */
        long remainingNanos() {
            long pauseEnd = pauseEndNanos;
            long end = pauseEnd >= 0 ? pauseEnd : attemptDeadlineNanos();
            return Math.max(0, end + GRACE.toNanos() - System.nanoTime());
        }

        /** The longest this request can take, all attempts and pauses included, with margins. */
        Duration longest() {
            Duration attempt = attemptLimit().plus(GRACE.multipliedBy(2));
            return attempt.multipliedBy(2).plus(retryBudget).plus(GRACE);
        }

        void finished() {
            String id = invocationId;
            if (id != null) {
                calls.remove(id, this);
            }
        }

        String endpoint() {
            if (endpointSeen != null) {
                return endpointSeen;
            }
            return settings.endpoint() != null ? settings.endpoint().toString()
                    : "of AWS in " + settings.region();
        }

        String elapsed() {
            return secondsSince(startNanos);
        }
    }

    private static String secondsSince(long startNanos) {
        long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNanos);
        return String.format(java.util.Locale.ROOT, "%.1f s", millis / 1000.0);
    }

    /** An attempt that Ferry ended because it went past its time limit. */
    private static final class AttemptTimeLimitException extends TimeoutException {
        private static final long serialVersionUID = 1L;

        AttemptTimeLimitException(Duration limit) {
            super("the attempt did not end within its limit of " + S3Settings.seconds(limit));
        }
    }

    /** A request ended because its store was closed. */
    private static final class StoreClosedException extends IOException {
        private static final long serialVersionUID = 1L;

        StoreClosedException(String message) {
            super(message);
        }
    }

    /**
     * Runs the attempts of one request: starts each (a fresh SDK request, with a fresh body), ends one that goes
     * past its time limit, and after a failure that may pass, pauses (saying so at warning level) and tries
     * again, within the attempts and retry budget of its {@link Call}. Its {@link #result} ends with the first
     * success or the last failure. Cancelling the result (Ferry's wait was interrupted) or closing the store ends
     * the current attempt or pause at once.
     */
    private final class Retrying<T> {
        final Call call;
        final CompletableFuture<T> result = new CompletableFuture<>();
        private final S3AsyncClient s3;
        private final ScheduledExecutorService timers;
        private final Function<S3AsyncClient, CompletableFuture<T>> request;
        private final Object lock = new Object();
        private CompletableFuture<T> attempt; // guarded by lock
        private ScheduledFuture<?> timer; // guarded by lock: the attempt's time limit, or the end of a pause
        private boolean attemptTimedOut; // guarded by lock
        private boolean lastAttempt; // guarded by lock
        private Throwable lastFailure; // guarded by lock

        Retrying(Call call, S3AsyncClient s3, ScheduledExecutorService timers,
                Function<S3AsyncClient, CompletableFuture<T>> request) {
            this.call = call;
            this.s3 = s3;
            this.timers = timers;
            this.request = request;
        }

        Retrying<T> start() {
            live.add(this);
            result.whenComplete((value, error) -> {
                live.remove(this);
                call.finished();
                CompletableFuture<T> current;
                ScheduledFuture<?> pending;
                synchronized (lock) {
                    current = attempt;
                    pending = timer;
                }
                if (pending != null) {
                    pending.cancel(false);
                }
                if (current != null && !current.isDone()) {
                    current.cancel(true);
                }
            });
            next();
            return this;
        }

        /**
         * Lets the current attempt be the last: a request whose result no longer matters (another part of its
         * upload failed) ends with its current attempt, or at once if it is pausing.
         */
        void stopRetrying() {
            Throwable failure;
            synchronized (lock) {
                lastAttempt = true;
                failure = call.pauseEndNanos >= 0 ? lastFailure : null;
            }
            if (failure != null) {
                result.completeExceptionally(failure);
            }
        }

        private void next() {
            if (result.isDone()) {
                return;
            }
            call.attemptStarting();
            CompletableFuture<T> started;
            try {
                started = request.apply(s3);
            } catch (RuntimeException e) {
                started = CompletableFuture.failedFuture(e);
            }
            synchronized (lock) {
                attempt = started;
                attemptTimedOut = false;
                timer = null;
            }
            limit(started);
            CompletableFuture<T> current = started;
            started.whenComplete((value, error) -> ended(current, value, error));
            if (result.isDone()) {
                started.cancel(true);
            }
        }

        /** Ends the attempt if it is still going at its deadline (which grows once a download's size is known). */
        private void limit(CompletableFuture<T> current) {
            schedule(() -> {
                if (current.isDone()) {
                    return;
                }
                if (call.attemptDeadlineNanos() > System.nanoTime()) {
                    limit(current);
                    return;
                }
                synchronized (lock) {
                    if (attempt != current) {
                        return;
                    }
                    attemptTimedOut = true;
                }
                current.cancel(true);
            }, call.attemptDeadlineNanos() - System.nanoTime());
        }

        private void schedule(Runnable task, long delayNanos) {
            try {
                ScheduledFuture<?> scheduled = timers.schedule(task, Math.max(0, delayNanos), TimeUnit.NANOSECONDS);
                synchronized (lock) {
                    timer = scheduled;
                }
            } catch (java.util.concurrent.RejectedExecutionException e) {
                result.completeExceptionally(closedDuring(call));
            }
        }

        private void ended(CompletableFuture<T> current, T value, Throwable error) {
            boolean timedOut;
            boolean last;
            ScheduledFuture<?> pending;
            synchronized (lock) {
                if (attempt != current) {
                    return;
                }
                timedOut = attemptTimedOut;
                last = lastAttempt;
                pending = timer;
                timer = null;
            }
            if (pending != null) {
                pending.cancel(false);
            }
            if (error == null) {
                result.complete(value);
                return;
            }
            if (result.isDone()) {
                return;
            }
            Throwable failure = unwrap(error);
            if (timedOut) {
                failure = new AttemptTimeLimitException(call.attemptLimit());
            } else if (failure instanceof CancellationException) {
                result.completeExceptionally(failure);
                return;
            }
            String problem = call.attemptFailed(failure);
            long pause = last ? -1 : call.pauseBeforeRetry(failure);
            if (pause < 0) {
                result.completeExceptionally(failure);
                return;
            }
            synchronized (lock) {
                lastFailure = failure;
            }
            if (log.isWarnEnabled()) {
                String cause = problem != null ? "the S3 endpoint " + call.endpoint() + " " + problem
                        : failure instanceof AwsServiceException s ? serviceError(s) : describe(failure);
                log.warn("S3 {} of {}: {}; retrying in {} (attempt {}, waited {} of budget {})", call.operation,
                        target(call), cause, String.format(java.util.Locale.ROOT, "%.1f s", pause / 1e9),
                        call.attempts.get(), secondsSince(call.firstFailureNanos),
                        S3Settings.seconds(call.retryBudget));
            }
            call.pausing(pause);
            schedule(this::next, pause);
        }
    }

    private static Throwable unwrap(Throwable error) {
        Throwable t = error;
        while ((t instanceof CompletionException || t instanceof ExecutionException) && t.getCause() != null) {
            t = t.getCause();
        }
        return t;
    }

    /** Whether an attempt ended on a time limit of its own (the SDK's or Ferry's). */
    private static boolean isTimeLimit(Throwable failure) {
        return failure instanceof AttemptTimeLimitException || failure instanceof ApiCallAttemptTimeoutException
                || failure instanceof ApiCallTimeoutException;
    }

    /** S3 error codes that say to slow down, or that the service had a passing problem. */
    private static final java.util.Set<String> PASSING_ERROR_CODES = java.util.Set.of(
            "SlowDown", "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
            "RequestThrottledException", "TooManyRequestsException", "RequestLimitExceeded",
            "BandwidthLimitExceeded", "LimitExceededException", "ProvisionedThroughputExceededException",
            "PriorRequestNotComplete", "RequestTimeout", "RequestTimeoutException", "IncompleteBody", "InternalError",
            "ServiceUnavailable", "OperationAborted");

    /**
     * Whether a failed attempt may succeed when tried again: throttling (429, SlowDown...), server errors (5xx but
     * 501), the S3 codes for passing problems, and network failures (no connection, a connection closed or reset,
     * no answer or an answer cut short, a time limit). Not: other error answers (403, 404, a bad request...), an
     * untrusted certificate, a local file that cannot be read, a cancelled request.
     */
    static boolean retryable(Throwable failure) {
        if (failure instanceof AwsServiceException s) {
            int status = s.statusCode();
            return status == 429 || status >= 500 && status != 501 || PASSING_ERROR_CODES.contains(errorCode(s))
                    || s.isThrottlingException();
        }
        if (failure instanceof CancellationException) {
            return false;
        }
        for (Throwable c = failure; c != null; c = c.getCause()) {
            if (c instanceof java.security.cert.CertificateException
                    || c instanceof javax.net.ssl.SSLHandshakeException && !(c instanceof SslHandshakeTimeoutException)
                    || c instanceof java.nio.file.FileSystemException) {
                return false;
            }
            if (c.getCause() == c) {
                break;
            }
        }
        for (Throwable c = failure; c != null; c = c.getCause()) {
            if (c instanceof IOException || c instanceof TimeoutException
                    || c instanceof io.netty.channel.ChannelException || isTimeLimit(c)) {
                return true;
            }
            if (c.getCause() == c) {
                break;
            }
        }
        return false;
    }

    /** Extra time for a request that carries {@code bytes} bytes: {@link #TRANSFER_ALLOWANCE_PER_MIB} per MiB. */
    static Duration transferAllowance(long bytes) {
        long perMib = TRANSFER_ALLOWANCE_PER_MIB.toMillis();
        long b = Math.max(bytes, 0);
        return Duration.ofMillis(b / S3Settings.MIB * perMib + (b % S3Settings.MIB) * perMib / S3Settings.MIB);
    }

    /** Notes the endpoint and invocation id of each attempt, for {@link Call}. */
    private static final class CallTracking implements ExecutionInterceptor {
        private final Map<String, Call> calls;

        CallTracking(Map<String, Call> calls) {
            this.calls = calls;
        }

        @Override
        public void beforeTransmission(Context.BeforeTransmission context, ExecutionAttributes executionAttributes) {
            Call call = executionAttributes.getAttribute(CALL);
            if (call == null) {
                return;
            }
            call.transmitted = true;
            SdkHttpRequest request = context.httpRequest();
            boolean defaultPort = request.port() == ("https".equals(request.protocol()) ? 443 : 80);
            call.endpointSeen = request.protocol() + "://" + request.host() + (defaultPort ? "" : ":" + request.port());
            request.firstMatchingHeader(INVOCATION_ID).ifPresent(id -> {
                call.invocationId = id;
                calls.put(id, call);
            });
        }

        @Override
        public void afterExecution(Context.AfterExecution context, ExecutionAttributes executionAttributes) {
            finished(executionAttributes);
        }

        @Override
        public void onExecutionFailure(Context.FailedExecution context, ExecutionAttributes executionAttributes) {
            finished(executionAttributes);
        }

        private static void finished(ExecutionAttributes executionAttributes) {
            Call call = executionAttributes.getAttribute(CALL);
            if (call != null) {
                call.finished();
            }
        }
    }

    /** The HTTP client, noting why each failed attempt failed on the {@link Call} it belongs to. */
    private static final class AttemptRecordingHttpClient implements SdkAsyncHttpClient {
        private final SdkAsyncHttpClient delegate;
        private final Map<String, Call> calls;

        AttemptRecordingHttpClient(SdkAsyncHttpClient delegate, Map<String, Call> calls) {
            this.delegate = delegate;
            this.calls = calls;
        }

        @Override
        public CompletableFuture<Void> execute(AsyncExecuteRequest request) {
            Call call = request.request().firstMatchingHeader(INVOCATION_ID).map(calls::get).orElse(null);
            CompletableFuture<Void> attempt = delegate.execute(request);
            if (call != null) {
                attempt.whenComplete((ok, failure) -> {
                    Throwable t = failure == null ? null : unwrap(failure);
                    if (t != null && !(t instanceof CancellationException)) {
                        call.httpFailure = t;
                    }
                });
            }
            return attempt;
        }

        @Override
        public String clientName() {
            return delegate.clientName();
        }

        @Override
        public void close() {
            delegate.close();
        }
    }
    /** The settings this store was created with. */
    public S3Settings settings() {
        return settings;
    }

    @Override
    public String location() {
        return location;
    }

    @Override
    public boolean exists(String name) throws IOException {
        try {
            size(name);
            return true;
        } catch (NoSuchObjectException e) {
            return false;
        }
    }

    @Override
    public long size(String name) throws IOException {
        String key = key(name);
        Call call = new Call("HeadObject", name, key, 0);
        return run(call, s3 -> s3.headObject(r -> r.bucket(bucket).key(key).overrideConfiguration(call::configure)),
                true).contentLength();
    }

    @Override
    public byte[] get(String name) throws IOException {
        String key = key(name);
        Call call = new Call("GetObject", name, key, -1);
        ResponseBytes<GetObjectResponse> bytes = run(call,
                s3 -> s3.getObject(r -> r.bucket(bucket).key(key).overrideConfiguration(call::configure),
                        call.sized(AsyncResponseTransformer.toBytes())),
                true);
        return bytes.asByteArrayUnsafe();
    }

    @Override
    public byte[] getRange(String name, long offset, int length) throws IOException {
        String key = key(name);
        if (offset < 0 || length < 0) {
            throw new IllegalArgumentException("negative offset or length: " + offset + ", " + length);
        }
        if (length == 0) {
            long size = size(name);
            if (size < offset) {
                throw shortObject(name, offset, length, size);
            }
            return new byte[0];
        }
        long last = offset + length - 1;
        ResponseBytes<GetObjectResponse> response;
        try {
            Call call = new Call("GetObject", name, key, length);
            response = run(call,
                    s3 -> s3.getObject(r -> r.bucket(bucket).key(key).range("bytes=" + offset + "-" + last)
                                    .overrideConfiguration(call::configure),
                            call.sized(AsyncResponseTransformer.toBytes())),
                    true);
        } catch (IOException e) {
            if (e.getCause() instanceof AwsServiceException s && s.statusCode() == 416) {
                throw shortObject(name, offset, length, -1);
            }
            throw e;
        }
        byte[] data = response.asByteArrayUnsafe();
        if (data.length == length) {
            return data;
        }
        if (data.length > length && response.response().contentRange() == null) {
            // The server ignored the Range header and sent the whole object.
            if (data.length - offset < length) {
                throw shortObject(name, offset, length, data.length);
            }
            return Arrays.copyOfRange(data, (int) offset, (int) offset + length);
        }
        if (data.length < length) {
            throw shortObject(name, offset, length, offset + data.length);
        }
        throw new IOException("S3 GetObject of " + describe(key) + " returned " + data.length + " bytes for range "
                + offset + "-" + last + " (Content-Range: " + response.response().contentRange() + ")");
    }

    private EOFException shortObject(String name, long offset, int length, long size) {
        return new EOFException("object '" + name + "' in " + location + " is shorter than the "
                + length + " bytes requested at offset " + offset + (size >= 0 ? " (size " + size + ")" : ""));
    }

    @Override
    public void put(String name, byte[] data) throws IOException {
        String key = key(name);
        Objects.requireNonNull(data, "data");
        PartSource source = new ArrayPartSource(data);
        if (data.length <= settings.partSize()) {
            putObject(name, key, source, data.length);
        } else {
            multipartUpload(name, key, data.length, source);
        }
    }

    @Override
    public void put(String name, Path file) throws IOException {
        String key = key(name);
        Objects.requireNonNull(file, "file");
        long size = Files.size(file);
        PartSource source = new FilePartSource(file);
        if (size <= settings.partSize()) {
            putObject(name, key, source, size);
        } else {
            multipartUpload(name, key, size, source);
        }
    }

    private void putObject(String name, String key, PartSource source, long size) throws IOException {
        String md5 = source.md5(0, size);
        log.debug("PutObject {} ({} bytes)", describe(key), size);
        Call call = new Call("PutObject", name, key, size);
        run(call, s3 -> s3.putObject(r -> r.bucket(bucket).key(key).contentLength(size).contentMD5(md5)
                        .overrideConfiguration(call::configure),
                source.body(0, size)), false);
    }

    /**
     * Content to upload, read on demand by range: the body of a request, and the MD5 digest that S3 checks it
     * against. A body can be read more than once, for retries.
     */
    private interface PartSource {
        AsyncRequestBody body(long offset, long length);

        String md5(long offset, long length) throws IOException;
    }

    private record ArrayPartSource(byte[] data) implements PartSource {
        /**
         * The range in pieces of {@link #BODY_CHUNK} bytes, as a file body is read: the write timeout applies to
         * each piece the client hands to the connection, so one piece of many MiB would need a fast link to be
         * written in time.
         */
        @Override
        public AsyncRequestBody body(long offset, long length) {
            int start = Math.toIntExact(offset);
            int end = Math.toIntExact(offset + length);
            ByteBuffer[] pieces = new ByteBuffer[Math.max(1, (end - start + BODY_CHUNK - 1) / BODY_CHUNK)];
            for (int i = 0; i < pieces.length; i++) {
                int from = start + i * BODY_CHUNK;
                pieces[i] = ByteBuffer.wrap(data, from, Math.min(BODY_CHUNK, end - from));
            }
            return AsyncRequestBody.fromRemainingByteBuffersUnsafe(pieces);
        }

        @Override
        public String md5(long offset, long length) {
            MessageDigest md5 = md5Digest();
            md5.update(data, Math.toIntExact(offset), Math.toIntExact(length));
            return Base64.getEncoder().encodeToString(md5.digest());
        }
    }

    private record FilePartSource(Path file) implements PartSource {
        @Override
        public AsyncRequestBody body(long offset, long length) {
            return AsyncRequestBody.fromFile(c -> c.path(file).position(offset).numBytesToRead(length));
        }

        @Override
        public String md5(long offset, long length) throws IOException {
            MessageDigest md5 = md5Digest();
            ByteBuffer buffer = ByteBuffer.allocate(256 * 1024);
            try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
                long position = offset;
                long end = offset + length;
                while (position < end) {
                    buffer.clear().limit((int) Math.min(buffer.capacity(), end - position));
                    int n = channel.read(buffer, position);
                    if (n < 0) {
                        throw new EOFException(file + " became shorter than " + end + " bytes while uploading it");
                    }
                    buffer.flip();
                    md5.update(buffer);
                    position += n;
                }
            }
            return Base64.getEncoder().encodeToString(md5.digest());
        }
    }

    private static MessageDigest md5Digest() {
        try {
            return MessageDigest.getInstance("MD5");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("MD5 is not available in this JVM; S3 uploads need it for Content-MD5",
                    e);
        }
    }

    /**
     * Part size for an object of {@code size} bytes: the configured part size, or more (whole MiB) when the
     * object would otherwise need more than {@value #MAX_PARTS} parts.
     */
    static long partSizeFor(long configuredPartSize, long size) {
        long minimum = (size + MAX_PARTS - 1) / MAX_PARTS;
        long minimumInMib = (minimum + S3Settings.MIB - 1) / S3Settings.MIB * S3Settings.MIB;
        return Math.max(configuredPartSize, minimumInMib);
    }

    private void multipartUpload(String name, String key, long size, PartSource source) throws IOException {
        long partSize = partSizeFor(settings.partSize(), size);
        int partCount = Math.toIntExact((size + partSize - 1) / partSize);
        Call create = new Call("CreateMultipartUpload", name, key, 0);
        String uploadId = run(create, s3 -> s3.createMultipartUpload(r -> r.bucket(bucket).key(key)
                .overrideConfiguration(create::configure)), false).uploadId();
        log.debug("multipart upload {} of {} ({} bytes, {} parts of {} bytes)",
                uploadId, describe(key), size, partCount, partSize);

        List<Retrying<UploadPartResponse>> requests = new ArrayList<>(partCount);
        try {
            Semaphore inFlight = new Semaphore(PARTS_IN_FLIGHT);
            // every part ends within its own limits, so a slot frees up within those of the largest part
            Duration slotWait = new Call("UploadPart", name, key, partSize).longest();
            AtomicBoolean failed = new AtomicBoolean();
            for (int i = 0; i < partCount && !failed.get(); i++) {
                acquire(inFlight, slotWait, key);
                if (failed.get()) {
                    inFlight.release();
                    break;
                }
                int partNumber = i + 1;
                long offset = i * partSize;
                long length = Math.min(partSize, size - offset);
                String md5 = source.md5(offset, length);
                Call call = new Call("UploadPart #" + partNumber, name, key, length);
                Retrying<UploadPartResponse> request;
                try {
                    request = start(call, s3 -> s3.uploadPart(r -> r.bucket(bucket).key(key)
                                    .uploadId(uploadId).partNumber(partNumber).contentLength(length).contentMD5(md5)
                                    .overrideConfiguration(call::configure),
                            source.body(offset, length)));
                } catch (IOException | RuntimeException e) {
                    inFlight.release();
                    throw e;
                }
                requests.add(request);
                request.result.whenComplete((response, error) -> {
                    if (error != null) {
                        failed.set(true);
                    }
                    inFlight.release();
                });
            }

            List<CompletedPart> parts = new ArrayList<>(partCount);
            for (Retrying<UploadPartResponse> request : requests) {
                UploadPartResponse response = await(request, false);
                parts.add(CompletedPart.builder().partNumber(parts.size() + 1).eTag(response.eTag()).build());
            }
            if (parts.size() != partCount) {
                throw new IOException("S3 multipart upload of " + describe(key) + " stopped after " + parts.size()
                        + " of " + partCount + " parts");
            }
            // S3 may take long to assemble a large object (it keeps the connection alive meanwhile)
            Call complete = new Call("CompleteMultipartUpload", name, key, size);
            run(complete, s3 -> s3.completeMultipartUpload(r -> r.bucket(bucket).key(key).uploadId(uploadId)
                    .multipartUpload(m -> m.parts(parts)).overrideConfiguration(complete::configure)), false);
            log.debug("multipart upload {} of {} completed", uploadId, describe(key));
        } catch (IOException | RuntimeException | Error e) {
            // Let the parts still in flight end their current attempt, without retrying (or cancel them when
            // interrupted), so that the abort, which frees the parts already stored, also covers them.
            for (Retrying<UploadPartResponse> request : requests) {
                if (e instanceof InterruptedIOException) {
                    request.result.cancel(true);
                } else {
                    request.stopRetrying();
                }
            }
            if (!(e instanceof InterruptedIOException)) {
                for (Retrying<UploadPartResponse> request : requests) {
                    settle(request); // the first failure is the one reported
                }
            }
            abort(name, key, uploadId, e);
            throw e;
        }
    }

    private void acquire(Semaphore semaphore, Duration wait, String key) throws IOException {
        try {
            if (!semaphore.tryAcquire(wait.toNanos(), TimeUnit.NANOSECONDS)) {
                throw new IOException("S3 multipart upload of " + describe(key) + " failed: no part finished within "
                        + S3Settings.seconds(wait));
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted during S3 multipart upload of " + describe(key));
        }
    }

    /** Retry budget of the abort of a failed multipart upload, whose failure has already been waited for. */
    private static final Duration ABORT_RETRY_BUDGET = Duration.ofSeconds(30);

    /**
     * How long the abort of a multipart upload whose thread was interrupted (its job cancelled) is waited for: the
     * caller is to return within seconds; an abort that takes longer is given up, and the upload left to prune
     * ({@link #removeAbandonedStaging}).
     */
    static final Duration INTERRUPTED_ABORT_WAIT = Duration.ofSeconds(3);

    private void abort(String name, String key, String uploadId, Throwable cause) {
        log.debug("aborting multipart upload {} of {}", uploadId, describe(key));
        Call call = new Call("AbortMultipartUpload", name, key, 0).atMostRetrying(ABORT_RETRY_BUDGET);
        Throwable failure;
        // the SDK refuses to start a request on an interrupted thread: the abort is sent all the same, and the
        // interrupt kept for the caller
        boolean interrupted = Thread.interrupted();
        try {
            Retrying<?> request = start(call, s3 -> s3.abortMultipartUpload(r -> r.bucket(bucket).key(key)
                    .uploadId(uploadId).overrideConfiguration(call::configure)));
            failure = settle(request, interrupted ? System.nanoTime() + INTERRUPTED_ABORT_WAIT.toNanos() : Long.MAX_VALUE);
        } catch (IOException | RuntimeException e) {
            failure = e;
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
        if (failure != null) {
            IOException reason = failure instanceof IOException io ? io
                    : failure(failure, call, false, failure instanceof TimeoutException);
            cause.addSuppressed(new IOException("could not abort S3 multipart upload " + uploadId + " of "
                    + describe(key) + "; its parts may remain until a bucket lifecycle rule removes them: "
                    + reason.getMessage(), reason));
        }
    }

    /**
     * Waits, even when interrupted (the interrupt is kept for the caller), until a request ends or its time is up,
     * and returns its failure: the request's exception, a {@link TimeoutException} (the request is then
     * cancelled), or {@code null} if it succeeded.
     */
    private static Throwable settle(Retrying<?> request) {
        return settle(request, Long.MAX_VALUE);
    }

    /** {@link #settle(Retrying)}, waiting at most until {@code deadline} ({@link System#nanoTime()}). */
    private static Throwable settle(Retrying<?> request, long deadline) {
        Call call = request.call;
        boolean interrupted = false;
        try {
            while (true) {
                long left = deadline == Long.MAX_VALUE ? Long.MAX_VALUE : Math.max(deadline - System.nanoTime(), 0);
                try {
                    request.result.get(Math.min(call.remainingNanos(), left), TimeUnit.NANOSECONDS);
                    return null;
                } catch (InterruptedException e) {
                    interrupted = true;
                } catch (TimeoutException e) {
                    if (call.remainingNanos() == 0 || deadline != Long.MAX_VALUE && deadline - System.nanoTime() <= 0) {
                        // else the request moved on to a pause or another attempt
                        request.result.cancel(true);
                        return e;
                    }
                } catch (ExecutionException | CancellationException e) {
                    return e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
                }
            }
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    @Override
    public List<StoreObject> list(String prefix) throws IOException {
        Objects.requireNonNull(prefix, "prefix");
        if (prefix.startsWith("/")) {
            throw new IllegalArgumentException("store names never start with '/': " + prefix);
        }
        String listPrefix = keyPrefix + prefix;
        List<StoreObject> objects = new ArrayList<>();
        String token = null;
        do {
            String continuationToken = token;
            Call call = new Call("ListObjectsV2", prefix, listPrefix, 0);
            ListObjectsV2Response page = run(call, s3 -> s3.listObjectsV2(r -> r.bucket(bucket)
                            .prefix(listPrefix.isEmpty() ? null : listPrefix)
                            .continuationToken(continuationToken)
                            .overrideConfiguration(call::configure)),
                    false);
            for (S3Object object : page.contents()) {
                String objectKey = object.key();
                if (!objectKey.startsWith(keyPrefix) || objectKey.endsWith("/")) {
                    continue; // directory placeholders are not store objects
                }
                objects.add(new StoreObject(objectKey.substring(keyPrefix.length()), object.size()));
            }
            token = Boolean.TRUE.equals(page.isTruncated()) ? page.nextContinuationToken() : null;
            if (Boolean.TRUE.equals(page.isTruncated()) && token == null) {
                throw new IOException("S3 ListObjectsV2 of " + describe(listPrefix)
                        + " returned a truncated page without a continuation token");
            }
            if (token != null && token.equals(continuationToken)) { // would list the same page forever
                throw new IOException("S3 ListObjectsV2 of " + describe(listPrefix)
                        + " returned the continuation token it was given, " + token);
            }
        } while (token != null);
        log.debug("listed {} objects under {}", objects.size(), describe(listPrefix));
        return objects;
    }

    /**
     * Aborts the multipart uploads under this store's prefix that began more than {@code olderThan}, and at least
     * {@link #ABANDONED_UPLOAD_AGE}, ago: the unfinished writes of processes that died, whose parts cost storage
     * like objects though no listing shows them. S3 tells when an upload began, not when it last sent a part, so
     * the margin is wide: prune runs beside backups, and a live upload must never be cut off.
     */
    @Override
    public int removeAbandonedStaging(Duration olderThan) throws IOException {
        return abortUploadsBegunBefore(olderThan.compareTo(ABANDONED_UPLOAD_AGE) > 0 ? olderThan : ABANDONED_UPLOAD_AGE);
    }

    /** Aborts the multipart uploads under the prefix begun more than {@code age} ago; an upload without a start is kept. */
    int abortUploadsBegunBefore(Duration age) throws IOException {
        int aborted = 0;
        String keyMarker = null;
        String uploadIdMarker = null;
        boolean more;
        do {
            String km = keyMarker;
            String um = uploadIdMarker;
            Call call = new Call("ListMultipartUploads", "", keyPrefix, 0);
            ListMultipartUploadsResponse page = run(call, s3 -> s3.listMultipartUploads(r -> r.bucket(bucket)
                            .prefix(keyPrefix.isEmpty() ? null : keyPrefix).keyMarker(km).uploadIdMarker(um)
                            .overrideConfiguration(call::configure)),
                    false);
            java.time.Instant cutoff = java.time.Instant.now().minus(age); // taken after the answer
            for (MultipartUpload u : page.uploads()) {
                if (u.key() == null || !u.key().startsWith(keyPrefix) || u.initiated() == null
                        || u.initiated().isAfter(cutoff)) {
                    continue;
                }
                log.info("aborting the multipart upload {} of {}, begun {} and never finished", u.uploadId(),
                        describe(u.key()), u.initiated());
                try {
                    Call abort = new Call("AbortMultipartUpload", u.key().substring(keyPrefix.length()), u.key(), 0);
                    run(abort, s3 -> s3.abortMultipartUpload(r -> r.bucket(bucket).key(u.key())
                            .uploadId(u.uploadId()).overrideConfiguration(abort::configure)), true);
                    aborted++;
                } catch (NoSuchObjectException e) {
                    // finished or aborted meanwhile
                }
            }
            more = Boolean.TRUE.equals(page.isTruncated());
            keyMarker = page.nextKeyMarker();
            uploadIdMarker = page.nextUploadIdMarker();
            if (more && keyMarker == null && uploadIdMarker == null) {
                throw new IOException("S3 ListMultipartUploads of " + describe(keyPrefix)
                        + " returned a truncated page without a marker");
            }
            if (more && Objects.equals(keyMarker, km) && Objects.equals(uploadIdMarker, um)) {
                throw new IOException("S3 ListMultipartUploads of " + describe(keyPrefix)
                        + " returned the markers it was given, " + km + " / " + um);
            }
        } while (more);
        return aborted;
    }

    @Override
    public void delete(String name) throws IOException {
        String key = key(name);
        try {
            Call call = new Call("DeleteObject", name, key, 0);
            run(call, s3 -> s3.deleteObject(r -> r.bucket(bucket).key(key).overrideConfiguration(call::configure)),
                    true);
        } catch (NoSuchObjectException e) {
            // Some S3-compatible services answer 404 for a missing key; it is already gone.
        }
    }

    /** Creates the bucket if it does not exist. */
    @Override
    public void prepareForNewRepository() throws IOException {
        createBucketIfMissing();
    }

    /**
     * Creates the bucket unless it already exists (and is accessible with these credentials). Outside
     * {@code us-east-1} the bucket is created in the configured region.
     */
    public void createBucketIfMissing() throws IOException {
        try {
            Call call = new Call("HeadBucket", bucket, "", 0);
            run(call, s3 -> s3.headBucket(r -> r.bucket(bucket).overrideConfiguration(call::configure)), false);
            return;
        } catch (IOException e) {
            if (e.getCause() instanceof AwsServiceException s && s.statusCode() == 403) {
                throw new IOException("no access to the S3 bucket '" + bucket + "': it belongs to another account "
                        + "or these credentials lack s3:ListBucket on it (" + e.getMessage() + ")", e);
            }
            if (!(e.getCause() instanceof AwsServiceException s) || s.statusCode() != 404) {
                throw e;
            }
        }
        log.debug("creating bucket {}", bucket);
        String region = settings.region();
        try {
            Call call = new Call("CreateBucket", bucket, "", 0);
            run(call, s3 -> s3.createBucket(r -> {
                r.bucket(bucket).overrideConfiguration(call::configure);
                if (!region.equals(S3Settings.DEFAULT_REGION)) {
                    r.createBucketConfiguration(c -> c.locationConstraint(region));
                }
            }), false);
        } catch (IOException e) {
            if (e.getCause() instanceof AwsServiceException s
                    && "BucketAlreadyOwnedByYou".equals(errorCode(s))) {
                return; // created concurrently by ourselves
            }
            throw e;
        }
    }

    @Override
    public void close() {
        S3AsyncClient clientToClose;
        SdkAsyncHttpClient httpToClose;
        ScheduledThreadPoolExecutor timersToStop;
        synchronized (clientLock) {
            closed = true;
            clientToClose = client;
            httpToClose = httpClient;
            timersToStop = timers;
            client = null;
            httpClient = null;
            timers = null;
        }
        // requests under way, in an attempt or a pause, end now (and cancel their attempt)
        for (Retrying<?> request : List.copyOf(live)) {
            request.result.completeExceptionally(closedDuring(request.call));
        }
        if (timersToStop != null) {
            timersToStop.shutdownNow();
        }
        if (clientToClose != null) {
            clientToClose.close();
        }
        if (httpToClose != null) {
            httpToClose.close(); // given to the client ready-made, so the client leaves it open
        }
    }

    @Override
    public String toString() {
        return "S3Store[" + location + "]";
    }

    private String key(String name) {
        Objects.requireNonNull(name, "name");
        if (name.isEmpty() || name.startsWith("/")) {
            throw new IllegalArgumentException("invalid store object name '" + name + "'");
        }
        return keyPrefix + name;
    }

    private String describe(String key) {
        return "s3://" + bucket + "/" + key;
    }

    /**
     * Waits for an S3 request, at most until its current attempt or pause is over (see
     * {@link Call#remainingNanos()}; each one moves that on), and turns its failure into an {@link IOException}
     * naming the object and what went wrong (see {@link #failure}). With {@code missingIsNoSuchObject}, a 404 for
     * the key becomes a {@link NoSuchObjectException}. An interrupt cancels the request.
     */
    private <T> T await(Retrying<T> request, boolean missingIsNoSuchObject) throws IOException {
        Call call = request.call;
        try {
            while (true) {
                try {
                    return request.result.get(call.remainingNanos(), TimeUnit.NANOSECONDS);
                } catch (TimeoutException e) {
                    if (call.remainingNanos() == 0) { // else the request moved on, or the answer's size came
                        throw e;
                    }
                }
            }
        } catch (InterruptedException e) {
            request.result.cancel(true);
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted during S3 " + call.operation + " of " + target(call));
        } catch (TimeoutException e) {
            request.result.cancel(true); // the client failed to end an attempt
            throw failure(e, call, missingIsNoSuchObject, true);
        } catch (ExecutionException | CancellationException e) {
            throw failure(e, call, missingIsNoSuchObject, false);
        }
    }

    private String target(Call call) {
        return call.key.isEmpty() ? "s3://" + bucket : describe(call.key);
    }

    /** An S3 error answer: its code, HTTP status and message. */
    private static String serviceError(AwsServiceException s) {
        String code = errorCode(s);
        AwsErrorDetails details = s.awsErrorDetails();
        String message = details != null && details.errorMessage() != null ? details.errorMessage() : "";
        return (code == null ? "HTTP " + s.statusCode() : code + " (HTTP " + s.statusCode() + ")")
                + (message.isEmpty() ? "" : ": " + message);
    }

    /**
     * An {@link IOException} for a failed request, always naming the operation, the object and the cause. An error
     * answer from S3 gives its code, message and request id. A request that got no answer names the endpoint and
     * what its attempts met (connection refused, no connection, no answer, an answer cut short, a TLS failure...).
     * Both say how many attempts were made in how long, and why the retries stopped (the budget, see
     * FERRY_S3_RETRY_TIMEOUT, or the attempts, see FERRY_S3_MAX_ATTEMPTS); {@code outOfTime} says Ferry's own
     * wait for it ran out.
     */
    private IOException failure(Throwable error, Call call, boolean missingIsNoSuchObject, boolean outOfTime) {
        Throwable t = unwrap(error);
        String failed = "S3 " + call.operation + " of " + target(call) + " failed: ";
        if (t instanceof StoreClosedException closedStore) {
            return new IOException(closedStore.getMessage(), closedStore);
        }
        int attempts = call.attempts.get();
        String ended = call.retriesEnded;
        String tried = attempts + (attempts == 1 ? " attempt" : " attempts") + " in " + call.elapsed()
                + (ended == null ? "" : ended);
        if (t instanceof AwsServiceException s) {
            String code = errorCode(s);
            if (missingIsNoSuchObject && s.statusCode() == 404 && !"NoSuchBucket".equals(code)) {
                NoSuchObjectException missing = new NoSuchObjectException(location, call.name);
                missing.initCause(s);
                return missing;
            }
            String requestId = s.requestId() == null ? "" : ", request id " + s.requestId();
            return new IOException(failed + serviceError(s) + requestId + " [endpoint "
                    + (settings.endpoint() == null ? "AWS " + settings.region() : settings.endpoint()) + "]"
                    + (attempts > 1 ? " (" + tried + ")" : ""), s);
        }
        if (t instanceof CancellationException && !outOfTime) {
            return new InterruptedIOException("S3 " + call.operation + " of " + target(call) + " was cancelled");
        }
        List<String> met = call.met();
        String endpoint = "the S3 endpoint " + call.endpoint();
        String problem;
        if (!met.isEmpty()) {
            problem = endpoint + " " + String.join(", then ", met);
        } else if (outOfTime) {
            problem = "no answer from " + endpoint;
        } else if (attempts == 0 || !call.transmitted && !retryable(t)) {
            return new IOException(failed + describe(t), t); // nothing was sent (credentials, a local file...)
        } else {
            problem = "error talking to " + endpoint + ": " + describe(t);
        }
        return new IOException(failed + problem + " (" + tried
                + (outOfTime ? "; Ferry stopped waiting for it" : "") + ")", t);
    }

    /**
     * What went wrong, never just "null": the exception's message (or its class when it has none), and the root
     * cause's class and message when they add something.
     */
    static String describe(Throwable t) {
        String message = t.getMessage();
        if (message != null && message.endsWith(": null")) {
            message = message.substring(0, message.length() - ": null".length());
        }
        StringBuilder text = new StringBuilder(message == null || message.isBlank() || message.equals("null")
                ? t.getClass().getSimpleName() : message);
        Throwable root = t;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        if (root != t) {
            String rootMessage = root.getMessage();
            if (rootMessage == null || rootMessage.isBlank()) {
                text.append(" (").append(root.getClass().getName()).append(')');
            } else if (!text.toString().contains(rootMessage)) {
                text.append(": ").append(root.getClass().getSimpleName()).append(": ").append(rootMessage);
            }
        }
        return text.toString();
    }

    /**
     * What an attempt that got no (whole) answer met, said of the endpoint ("refused the connection", "accepted
     * the request but sent no answer within 30 s", "stopped sending the answer for 30 s"...); {@code null} if the
     * failure is none of the known network failures.
     */
    private String transportProblem(Throwable failure, Call call) {
        String idle = S3Settings.seconds(settings.attemptTimeout());
        String connect = S3Settings.seconds(connectTimeout(settings));
        for (Throwable c = failure; c != null; c = c.getCause()) {
            String message = c.getMessage() == null ? "" : c.getMessage();
            if (c instanceof ConnectTimeoutException) {
                return "could not be reached within " + connect + " (connection timed out)";
            }
            if (c instanceof ConnectException) {
                return message.toLowerCase(java.util.Locale.ROOT).contains("refused") ? "refused the connection"
                        : "could not be reached: " + message;
            }
            if (c instanceof NoRouteToHostException) {
                return "could not be reached: no route to host";
            }
            if (c instanceof UnknownHostException) {
                return "could not be reached: unknown host " + message;
            }
            if (c instanceof SslHandshakeTimeoutException) {
                return "did not finish the TLS handshake within " + connect;
            }
            if (c instanceof SSLException) {
                return "failed the TLS handshake: " + message;
            }
            if (c instanceof ReadTimeoutException) {
                return call.answerStarted ? "stopped sending the answer for " + idle + " (read timed out)"
                        : "accepted the request but sent no answer within " + idle;
            }
            if (c instanceof WriteTimeoutException) {
                return "stopped taking data for " + idle + " (write timed out)";
            }
            if (c instanceof TimeoutException && message.contains("Acquire operation")) {
                return "gave no connection within " + S3Settings.seconds(acquireTimeout(settings));
            }
            if (isTimeLimit(c)) {
                return "did not finish answering within " + S3Settings.seconds(call.attemptLimit())
                        + " (see FERRY_S3_TIMEOUT)";
            }
            if (c instanceof ClosedChannelException) {
                return call.answerStarted ? "closed the connection in the middle of the answer"
                        : "closed the connection before answering";
            }
            if (c.getCause() == c) {
                break;
            }
        }
        for (Throwable c = failure; c != null; c = c.getCause()) {
            String message = c.getMessage() == null ? "" : c.getMessage().toLowerCase(java.util.Locale.ROOT);
            if (c instanceof IOException && (message.contains("reset") || message.contains("closed")
                    || message.contains("complete response") || message.contains("premature"))) {
                return "closed the connection " + (call.answerStarted ? "in the middle of the answer"
                        : "before answering") + " (" + c.getMessage() + ")";
            }
            if (c.getCause() == c) {
                break;
            }
        }
        return null;
    }

    private static String errorCode(AwsServiceException e) {
        AwsErrorDetails details = e.awsErrorDetails();
        return details == null ? null : details.errorCode();
    }

    /**
     * Trust managers that accept exactly the CA certificates of a PEM file.
     *
     * @throws IOException if the file cannot be read, holds no certificate or an invalid one
     */
    static TrustManager[] trustManagers(Path caFile) throws IOException {
        String pem;
        try {
            pem = Files.readString(caFile, StandardCharsets.ISO_8859_1);
        } catch (IOException e) {
            throw new IOException("cannot read the S3 CA certificate file " + caFile + ": " + e, e);
        }
        try {
            CertificateFactory factory = CertificateFactory.getInstance("X.509");
            KeyStore keyStore = KeyStore.getInstance(KeyStore.getDefaultType());
            keyStore.load(null, null);
            Matcher matcher = PEM_CERTIFICATE.matcher(pem);
            int count = 0;
            while (matcher.find()) {
                count++;
                Certificate certificate;
                try {
                    byte[] der = Base64.getMimeDecoder().decode(matcher.group(1));
                    certificate = factory.generateCertificate(new ByteArrayInputStream(der));
                } catch (IllegalArgumentException | CertificateException e) {
                    throw new IOException("invalid certificate #" + count + " in the S3 CA certificate file "
                            + caFile + ": " + e.getMessage(), e);
                }
                keyStore.setCertificateEntry("ca-" + count, certificate);
            }
            if (count == 0) {
                throw new IOException("no PEM certificate (-----BEGIN CERTIFICATE-----) in the S3 CA certificate "
                        + "file " + caFile);
            }
            TrustManagerFactory trustManagerFactory =
                    TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            trustManagerFactory.init(keyStore);
            return trustManagerFactory.getTrustManagers();
        } catch (GeneralSecurityException e) {
            throw new IOException("cannot load the S3 CA certificate file " + caFile + ": " + e.getMessage(), e);
        }
    }
}
