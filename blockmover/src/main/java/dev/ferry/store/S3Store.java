package dev.ferry.store;

import java.io.ByteArrayInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
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
import java.util.Objects;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import software.amazon.awssdk.auth.credentials.AwsCredentialsProvider;
import software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider;
import software.amazon.awssdk.awscore.exception.AwsErrorDetails;
import software.amazon.awssdk.awscore.exception.AwsServiceException;
import software.amazon.awssdk.awscore.retry.AwsRetryStrategy;
import software.amazon.awssdk.core.ResponseBytes;
import software.amazon.awssdk.core.async.AsyncRequestBody;
import software.amazon.awssdk.core.async.AsyncResponseTransformer;
import software.amazon.awssdk.core.checksums.RequestChecksumCalculation;
import software.amazon.awssdk.core.checksums.ResponseChecksumValidation;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.core.interceptor.Context;
import software.amazon.awssdk.core.interceptor.ExecutionAttributes;
import software.amazon.awssdk.core.interceptor.ExecutionInterceptor;
import software.amazon.awssdk.http.SdkHttpRequest;
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
 * <p>Requests are retried with exponential backoff and jitter on throttling, server errors and I/O errors, up to
 * {@link S3Settings#maxAttempts()} attempts. All methods are safe to call from several threads at once. The S3
 * client is created on first use and released by {@link #close()}.
 */
public final class S3Store implements Store {

    /** Age after which prune takes an unfinished multipart upload for abandoned. */
    static final Duration ABANDONED_UPLOAD_AGE = Duration.ofHours(24);
    /** Largest number of parts S3 accepts in one multipart upload. */
    public static final int MAX_PARTS = 10_000;

    /** How many parts of one multipart upload are sent at the same time. */
    static final int PARTS_IN_FLIGHT = 4;

    private static final Logger log = LoggerFactory.getLogger(S3Store.class);

    private static final int MAX_CONNECTIONS = 64;
    private static final Duration CONNECTION_ACQUISITION_TIMEOUT = Duration.ofMinutes(2);
    private static final Duration CONNECTION_TIMEOUT = Duration.ofSeconds(10);
    private static final Duration READ_WRITE_TIMEOUT = Duration.ofSeconds(60);
    private static final Pattern PEM_CERTIFICATE = Pattern.compile(
            "-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\\s]*?)-----END CERTIFICATE-----");

    private final S3Settings settings;
    private final String bucket;
    private final String keyPrefix;
    private final String location;
    private final Object clientLock = new Object();
    private S3AsyncClient client; // guarded by clientLock, created on first use
    private boolean closed; // guarded by clientLock

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
                client = buildClient(settings, trustManagers);
            }
            return client;
        }
    }

    /**
     * Netty event loops (daemon threads) shared by all stores for the life of the JVM. Closing a store closes its
     * connections but leaves the loops running, so that close() returns at once, without the quiet period
     * (seconds) that stopping an event loop group takes.
     */
    private static final class SharedEventLoops {
        static final SdkEventLoopGroup GROUP = SdkEventLoopGroup.builder().build();
    }

    private static S3AsyncClient buildClient(S3Settings settings, TrustManager[] trustManagers) {
        NettyNioAsyncHttpClient.Builder http = NettyNioAsyncHttpClient.builder()
                .eventLoopGroup(SharedEventLoops.GROUP)
                .maxConcurrency(MAX_CONNECTIONS)
                .connectionAcquisitionTimeout(CONNECTION_ACQUISITION_TIMEOUT)
                .connectionTimeout(CONNECTION_TIMEOUT)
                .readTimeout(READ_WRITE_TIMEOUT)
                .writeTimeout(READ_WRITE_TIMEOUT)
                .tcpKeepAlive(true);
        if (trustManagers != null) {
            http.tlsTrustManagersProvider(() -> trustManagers);
        }

        // Standard mode: exponential backoff with full jitter; retries throttling errors, 5xx responses, the
        // transient S3 error codes and I/O errors. The client-side circuit breaker is off: a backup is a
        // long batch job where every request matters, and each request keeps its own bounded attempts.
        RetryStrategy retryStrategy = AwsRetryStrategy.standardRetryStrategy().toBuilder()
                .maxAttempts(settings.maxAttempts())
                .circuitBreakerEnabled(false)
                .build();

        AwsCredentialsProvider credentials = settings.credentialsProvider() != null
                ? settings.credentialsProvider()
                : DefaultCredentialsProvider.create();

        S3AsyncClientBuilder builder = S3AsyncClient.builder()
                .httpClientBuilder(http)
                .region(Region.of(settings.region()))
                .credentialsProvider(credentials)
                .forcePathStyle(settings.pathStyle())
                // Flexible checksums (CRC trailers, x-amz-checksum-mode) only where an operation requires them:
                // many S3-compatible services reject them. Uploads carry a Content-MD5 instead, which every
                // implementation verifies and which also satisfies Object Lock buckets.
                .requestChecksumCalculation(RequestChecksumCalculation.WHEN_REQUIRED)
                .responseChecksumValidation(ResponseChecksumValidation.WHEN_REQUIRED)
                .overrideConfiguration(o -> o.retryStrategy(retryStrategy)
                        .addExecutionInterceptor(new NoExpectContinueWithoutBody()));
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
        return await(client().headObject(r -> r.bucket(bucket).key(key)), "HeadObject", name, key, true)
                .contentLength();
    }

    @Override
    public byte[] get(String name) throws IOException {
        String key = key(name);
        ResponseBytes<GetObjectResponse> bytes = await(
                client().getObject(r -> r.bucket(bucket).key(key), AsyncResponseTransformer.toBytes()),
                "GetObject", name, key, true);
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
            response = await(
                    client().getObject(r -> r.bucket(bucket).key(key).range("bytes=" + offset + "-" + last),
                            AsyncResponseTransformer.toBytes()),
                    "GetObject", name, key, true);
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
        await(client().putObject(r -> r.bucket(bucket).key(key).contentLength(size).contentMD5(md5),
                source.body(0, size)), "PutObject", name, key, false);
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
        @Override
        public AsyncRequestBody body(long offset, long length) {
            return AsyncRequestBody.fromRemainingByteBufferUnsafe(
                    ByteBuffer.wrap(data, Math.toIntExact(offset), Math.toIntExact(length)));
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
        S3AsyncClient s3 = client();
        long partSize = partSizeFor(settings.partSize(), size);
        int partCount = Math.toIntExact((size + partSize - 1) / partSize);
        String uploadId = await(s3.createMultipartUpload(r -> r.bucket(bucket).key(key)),
                "CreateMultipartUpload", name, key, false).uploadId();
        log.debug("multipart upload {} of {} ({} bytes, {} parts of {} bytes)",
                uploadId, describe(key), size, partCount, partSize);

        List<CompletableFuture<UploadPartResponse>> requests = new ArrayList<>(partCount);
        try {
            Semaphore inFlight = new Semaphore(PARTS_IN_FLIGHT);
            AtomicBoolean failed = new AtomicBoolean();
            for (int i = 0; i < partCount && !failed.get(); i++) {
                acquire(inFlight);
                if (failed.get()) {
                    break;
                }
                int partNumber = i + 1;
                long offset = i * partSize;
                long length = Math.min(partSize, size - offset);
                String md5 = source.md5(offset, length);
                CompletableFuture<UploadPartResponse> request = s3.uploadPart(r -> r.bucket(bucket).key(key)
                                .uploadId(uploadId).partNumber(partNumber).contentLength(length).contentMD5(md5),
                        source.body(offset, length));
                requests.add(request);
                request.whenComplete((response, error) -> {
                    if (error != null) {
                        failed.set(true);
                    }
                    inFlight.release();
                });
            }

            List<CompletedPart> parts = new ArrayList<>(partCount);
            for (int i = 0; i < requests.size(); i++) {
                UploadPartResponse response = await(requests.get(i), "UploadPart #" + (i + 1), name, key, false);
                parts.add(CompletedPart.builder().partNumber(i + 1).eTag(response.eTag()).build());
            }
            if (parts.size() != partCount) {
                throw new IOException("S3 multipart upload of " + describe(key) + " stopped after " + parts.size()
                        + " of " + partCount + " parts");
            }
            await(s3.completeMultipartUpload(r -> r.bucket(bucket).key(key).uploadId(uploadId)
                    .multipartUpload(m -> m.parts(parts))), "CompleteMultipartUpload", name, key, false);
            log.debug("multipart upload {} of {} completed", uploadId, describe(key));
        } catch (IOException | RuntimeException | Error e) {
            // Let the parts still in flight finish (or cancel them when interrupted) so that the abort, which
            // frees the parts already stored, also covers them.
            for (CompletableFuture<UploadPartResponse> request : requests) {
                if (e instanceof InterruptedIOException) {
                    request.cancel(true);
                } else {
                    try {
                        request.join();
                    } catch (CompletionException | CancellationException ignored) {
                        // the first failure is the one reported
                    }
                }
            }
            abort(s3, key, uploadId, e);
            throw e;
        }
    }

    private static void acquire(Semaphore semaphore) throws InterruptedIOException {
        try {
            semaphore.acquire();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while uploading to S3");
        }
    }

    private void abort(S3AsyncClient s3, String key, String uploadId, Throwable cause) {
        log.debug("aborting multipart upload {} of {}", uploadId, describe(key));
        try {
            s3.abortMultipartUpload(r -> r.bucket(bucket).key(key).uploadId(uploadId)).join();
        } catch (CompletionException | CancellationException e) {
            Throwable reason = e.getCause() != null ? e.getCause() : e;
            cause.addSuppressed(new IOException("could not abort S3 multipart upload " + uploadId + " of "
                    + describe(key) + "; its parts may remain until a bucket lifecycle rule removes them", reason));
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
            ListObjectsV2Response page = await(client().listObjectsV2(r -> r.bucket(bucket)
                            .prefix(listPrefix.isEmpty() ? null : listPrefix)
                            .continuationToken(continuationToken)),
                    "ListObjectsV2", prefix, listPrefix, false);
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
            ListMultipartUploadsResponse page = await(client().listMultipartUploads(r -> r.bucket(bucket)
                            .prefix(keyPrefix.isEmpty() ? null : keyPrefix).keyMarker(km).uploadIdMarker(um)),
                    "ListMultipartUploads", "", keyPrefix, false);
            java.time.Instant cutoff = java.time.Instant.now().minus(age); // taken after the answer
            for (MultipartUpload u : page.uploads()) {
                if (u.key() == null || !u.key().startsWith(keyPrefix) || u.initiated() == null
                        || u.initiated().isAfter(cutoff)) {
                    continue;
                }
                log.info("aborting the multipart upload {} of {}, begun {} and never finished", u.uploadId(),
                        describe(u.key()), u.initiated());
                try {
                    await(client().abortMultipartUpload(r -> r.bucket(bucket).key(u.key()).uploadId(u.uploadId())),
                            "AbortMultipartUpload", u.key().substring(keyPrefix.length()), u.key(), true);
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
        } while (more);
        return aborted;
    }

    @Override
    public void delete(String name) throws IOException {
        String key = key(name);
        try {
            await(client().deleteObject(r -> r.bucket(bucket).key(key)), "DeleteObject", name, key, true);
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
            await(client().headBucket(r -> r.bucket(bucket)), "HeadBucket", bucket, "", false);
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
            await(client().createBucket(r -> {
                r.bucket(bucket);
                if (!region.equals(S3Settings.DEFAULT_REGION)) {
                    r.createBucketConfiguration(c -> c.locationConstraint(region));
                }
            }), "CreateBucket", bucket, "", false);
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
        synchronized (clientLock) {
            closed = true;
            clientToClose = client;
            client = null;
        }
        if (clientToClose != null) {
            clientToClose.close();
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
     * Waits for an S3 request and turns its failure into an {@link IOException} naming the object, the S3 error
     * code and message. With {@code missingIsNoSuchObject}, a 404 for the key becomes a
     * {@link NoSuchObjectException}.
     */
    private <T> T await(CompletableFuture<T> request, String operation, String name, String key,
            boolean missingIsNoSuchObject) throws IOException {
        try {
            return request.get();
        } catch (InterruptedException e) {
            request.cancel(true);
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted during S3 " + operation + " of " + describe(key));
        } catch (ExecutionException | CompletionException | CancellationException e) {
            throw failure(e, operation, name, key, missingIsNoSuchObject);
        }
    }

    private IOException failure(Throwable error, String operation, String name, String key,
            boolean missingIsNoSuchObject) {
        Throwable t = error;
        while ((t instanceof CompletionException || t instanceof ExecutionException) && t.getCause() != null) {
            t = t.getCause();
        }
        String target = key.isEmpty() ? "s3://" + bucket : describe(key);
        if (t instanceof AwsServiceException s) {
            String code = errorCode(s);
            if (missingIsNoSuchObject && s.statusCode() == 404 && !"NoSuchBucket".equals(code)) {
                NoSuchObjectException missing = new NoSuchObjectException(location, name);
                missing.initCause(s);
                return missing;
            }
            AwsErrorDetails details = s.awsErrorDetails();
            String message = details != null && details.errorMessage() != null ? details.errorMessage() : "";
            String requestId = s.requestId() == null ? "" : ", request id " + s.requestId();
            return new IOException("S3 " + operation + " of " + target + " failed: "
                    + (code == null ? "HTTP " + s.statusCode() : code + " (HTTP " + s.statusCode() + ")")
                    + (message.isEmpty() ? "" : ": " + message) + requestId + " [endpoint "
                    + (settings.endpoint() == null ? "AWS " + settings.region() : settings.endpoint()) + "]", s);
        }
        if (t instanceof CancellationException) {
            return new InterruptedIOException("S3 " + operation + " of " + target + " was cancelled");
        }
        String message = t.getMessage() == null ? t.getClass().getSimpleName() : t.getMessage();
        if (t instanceof SdkException && t.getCause() != null && t.getCause().getMessage() != null
                && !message.contains(t.getCause().getMessage())) {
            message = message + ": " + t.getCause().getMessage();
        }
        return new IOException("S3 " + operation + " of " + target + " failed: " + message, t);
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
