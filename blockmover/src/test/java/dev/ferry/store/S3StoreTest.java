package dev.ferry.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.EOFException;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Function;
import java.util.stream.Collectors;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

import com.sun.net.httpserver.HttpServer;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.core.async.AsyncRequestBody;
import software.amazon.awssdk.core.checksums.RequestChecksumCalculation;
import software.amazon.awssdk.core.checksums.ResponseChecksumValidation;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3AsyncClient;

/**
 * {@link S3Store} against S3Proxy over HTTP with the real SDK client, against a scripted HTTP endpoint for error
 * handling, and {@link S3Settings} parsing.
 */
class S3StoreTest {

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

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private static byte[] md5Bytes(byte[] data) {
        try {
            return MessageDigest.getInstance("MD5").digest(data);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static String md5(byte[] data) {
        return Base64.getEncoder().encodeToString(md5Bytes(data));
    }

    private static String md5Hex(byte[] data) {
        return HexFormat.of().formatHex(md5Bytes(data));
    }

    @Test
    void roundTrip() throws IOException {
        try (S3Store store = new S3Store(s3.server().newBucketSettings(""))) {
            byte[] data = random(10_000, 1);
            assertFalse(store.exists("keys/a"));

            store.put("keys/a", data);
            assertTrue(store.exists("keys/a"));
            assertEquals(10_000, store.size("keys/a"));
            assertArrayEquals(data, store.get("keys/a"));
            assertArrayEquals(Arrays.copyOfRange(data, 100, 350), store.getRange("keys/a", 100, 250));
            assertArrayEquals(Arrays.copyOfRange(data, 9_000, 10_000),
                    store.getRange("keys/a", 9_000, 1_000));
            assertEquals(0, store.getRange("keys/a", 10_000, 0).length);

            store.put("keys/a", utf8("replaced"));
            assertArrayEquals(utf8("replaced"), store.get("keys/a"));

            store.put("empty", new byte[0]);
            assertEquals(0, store.size("empty"));
            assertEquals(0, store.get("empty").length);

            Path file = tmp.resolve("small");
            Files.write(file, data);
            store.put("index/small", file);
            assertArrayEquals(data, store.get("index/small"));
            assertTrue(Files.exists(file), "the source file is left in place");

            store.delete("keys/a");
            assertFalse(store.exists("keys/a"));
            store.delete("keys/a");
            store.delete("never-existed");
            assertNull(store.stagingDirectory());
        }
    }

    @Test
    void rangesPastTheEndAreEofErrors() throws IOException {
        try (S3Store store = new S3Store(s3.server().newBucketSettings("repo"))) {
            store.put("obj", random(1000, 2));
            EOFException partial = assertThrows(EOFException.class, () -> store.getRange("obj", 900, 200));
            assertTrue(partial.getMessage().contains("obj"), partial.getMessage());
            EOFException beyond = assertThrows(EOFException.class, () -> store.getRange("obj", 1000, 1));
            assertTrue(beyond.getMessage().contains("obj"), beyond.getMessage());
            assertThrows(EOFException.class, () -> store.getRange("obj", 5000, 10));
            assertThrows(EOFException.class, () -> store.getRange("obj", 1001, 0));
        }
    }

    @Test
    void missingObjects() throws IOException {
        try (S3Store store = new S3Store(s3.server().newBucketSettings("repo"))) {
            NoSuchObjectException get = assertThrows(NoSuchObjectException.class, () -> store.get("data/ab/cd"));
            assertEquals("data/ab/cd", get.objectName());
            assertTrue(get.getMessage().contains(store.location()), get.getMessage());
            assertThrows(NoSuchObjectException.class, () -> store.getRange("data/ab/cd", 0, 10));
            assertThrows(NoSuchObjectException.class, () -> store.getRange("data/ab/cd", 0, 0));
            assertThrows(NoSuchObjectException.class, () -> store.size("data/ab/cd"));
            assertFalse(store.exists("data/ab/cd"));
        }
    }

    @Test
    void missingBucketIsAnErrorNamingTheBucket() throws IOException {
        try (S3Store store = new S3Store(s3.server().settings("no-such-bucket", "repo"))) {
            IOException e = assertThrows(IOException.class, () -> store.get("config"));
            assertFalse(e instanceof NoSuchObjectException);
            assertTrue(e.getMessage().contains("no-such-bucket") && e.getMessage().contains("NoSuchBucket"),
                    e.getMessage());
            IOException put = assertThrows(IOException.class, () -> store.put("config", utf8("x")));
            assertTrue(put.getMessage().contains("s3://no-such-bucket/repo/config"), put.getMessage());
        }
    }

    @Test
    void largeFileIsUploadedInParts() throws Exception {
        S3Settings settings = s3.server().newBucketSettings("repo");
        byte[] data = random((int) (12 * MIB + 12345), 3);
        Path file = tmp.resolve("big");
        Files.write(file, data);
        try (S3Store store = new S3Store(settings)) {
            store.put("data/big", file);
            assertArrayEquals(data, store.get("data/big"));
            assertEquals(data.length, store.size("data/big"));
            assertArrayEquals(Arrays.copyOfRange(data, (int) (5 * MIB - 10), (int) (5 * MIB + 10)),
                    store.getRange("data/big", 5 * MIB - 10, 20));
        }
        assertArrayEquals(data, Files.readAllBytes(file), "the source file is untouched");
        assertMultipart(settings.bucket(), "repo/data/big", 3);
    }

    @Test
    void largeArrayIsUploadedInParts() throws Exception {
        S3Settings settings = s3.server().newBucketSettings("");
        byte[] data = random((int) (12 * MIB), 4);
        try (S3Store store = new S3Store(settings)) {
            store.put("data/big", data);
            assertArrayEquals(data, store.get("data/big"));
            // exactly one part size: a single PUT
            store.put("data/one-part", Arrays.copyOf(data, (int) S3ProxyServer.TEST_PART_SIZE));
            assertEquals(S3ProxyServer.TEST_PART_SIZE, store.size("data/one-part"));
        }
        assertMultipart(settings.bucket(), "data/big", 3);
        assertFalse(s3.server().blobStore().blobMetadata(settings.bucket(), "data/one-part").getETag().contains("-"));
    }

    private static void assertMultipart(String bucket, String key, int parts) {
        String etag = s3.server().blobStore().blobMetadata(bucket, key).getETag().replace("\"", "");
        assertTrue(etag.endsWith("-" + parts), "ETag of a " + parts + "-part upload: " + etag);
        assertTrue(s3.server().blobStore().listMultipartUploads(bucket).isEmpty(), "no upload left open");
    }

    @Test
    void partSizeKeepsEveryObjectUnderTheMaximumPartCount() {
        long sixteen = 16 * MIB;
        assertEquals(sixteen, S3Store.partSizeFor(sixteen, 0));
        assertEquals(sixteen, S3Store.partSizeFor(sixteen, 10_000 * sixteen));
        assertEquals(17 * MIB, S3Store.partSizeFor(sixteen, 10_000 * sixteen + 1));
        long fiveTiB = 5L * 1024 * 1024 * MIB;
        long part = S3Store.partSizeFor(sixteen, fiveTiB);
        assertEquals(0, part % MIB);
        assertTrue((fiveTiB + part - 1) / part <= S3Store.MAX_PARTS);
    }

    @Test
    void listingPaginatesAndStaysInsideThePrefix() throws Exception {
        S3Settings settings = s3.server().newBucketSettings("repo");
        int count = 1100;
        Map<String, Long> expected = new HashMap<>();
        for (int i = 0; i < count; i++) {
            expected.put(String.format("data/%02x/%05d", i % 256, i), (long) (i % 7));
        }
        try (S3Store store = new S3Store(settings);
                S3Store outside = new S3Store(settings.withPrefix("other"));
                S3Store root = new S3Store(settings.withPrefix(""))) {
            ExecutorService pool = Executors.newFixedThreadPool(32);
            try {
                List<Future<?>> uploads = new ArrayList<>();
                for (Map.Entry<String, Long> e : expected.entrySet()) {
                    uploads.add(pool.submit(() -> {
                        store.put(e.getKey(), new byte[e.getValue().intValue()]);
                        return null;
                    }));
                }
                for (Future<?> upload : uploads) {
                    upload.get();
                }
            } finally {
                pool.shutdownNow();
            }
            store.put("index/1", utf8("index"));
            store.put("config", utf8("config"));
            outside.put("data/00/outside", utf8("x"));
            root.put("repo-sibling/data/x", utf8("x"));
            root.put("repodata/x", utf8("x"));

            List<StoreObject> data = store.list("data/");
            assertEquals(count, data.size());
            assertEquals(expected, data.stream().collect(Collectors.toMap(StoreObject::name, StoreObject::size)));

            List<StoreObject> all = store.list("");
            assertEquals(count + 2, all.size());
            assertTrue(all.contains(new StoreObject("config", 6)));
            assertTrue(all.contains(new StoreObject("index/1", 5)));

            assertEquals(List.of(new StoreObject("data/00/outside", 1)), outside.list("data/"));
            assertEquals(List.of(), store.list("nothing/"));
        }
    }

    @Test
    void prefixedStoreKeepsNamesRelative() throws IOException {
        S3Settings settings = s3.server().newBucketSettings("/backups/cluster-1/");
        assertEquals("backups/cluster-1", settings.prefix());
        try (S3Store store = new S3Store(settings)) {
            assertEquals("s3://" + settings.bucket() + "/backups/cluster-1", store.location());
            store.put("config", utf8("cfg"));
            store.put("keys/k1", utf8("key"));
            try (var in = s3.server().blobStore().getBlob(settings.bucket(), "backups/cluster-1/config")
                    .getPayload().openStream()) {
                assertArrayEquals(utf8("cfg"), in.readAllBytes());
            }
            List<StoreObject> listed = store.list("");
            assertEquals(List.of(new StoreObject("config", 3), new StoreObject("keys/k1", 3)),
                    listed.stream().sorted(Comparator.comparing(StoreObject::name)).toList());
            assertEquals(List.of(new StoreObject("keys/k1", 3)), store.list("keys/"));
        }
        try (S3Store rootStore = new S3Store(settings.withPrefix(""))) {
            assertEquals("s3://" + settings.bucket(), rootStore.location());
            assertArrayEquals(utf8("cfg"), rootStore.get("backups/cluster-1/config"));
        }
    }

    @Test
    void abandonedMultipartUploadsUnderThePrefixAreAbortedByAge() throws Exception {
        S3Settings settings = s3.server().newBucketSettings("repo");
        String bucket = settings.bucket();
        try (S3Store store = new S3Store(settings); S3AsyncClient raw = rawClient()) {
            String mine = raw.createMultipartUpload(r -> r.bucket(bucket).key("repo/data/ab/abandoned")).join()
                    .uploadId();
            String other = raw.createMultipartUpload(r -> r.bucket(bucket).key("repo-sibling/data/x")).join()
                    .uploadId();
            raw.uploadPart(r -> r.bucket(bucket).key("repo/data/ab/abandoned").uploadId(mine).partNumber(1),
                    AsyncRequestBody.fromBytes(random(1000, 3))).join();
            store.put("config", utf8("cfg"));

            assertEquals(0, store.removeAbandonedStaging(Duration.ZERO), "prune keeps uploads younger than a day");
            assertEquals(0, store.abortUploadsBegunBefore(Duration.ofHours(1)), "a young upload may still be running");
            assertEquals(2, raw.listMultipartUploads(r -> r.bucket(bucket)).join().uploads().size());

            assertEquals(1, store.abortUploadsBegunBefore(Duration.ZERO));
            List<String> left = raw.listMultipartUploads(r -> r.bucket(bucket)).join().uploads().stream()
                    .map(u -> u.uploadId()).toList();
            assertEquals(List.of(other), left, "only uploads under the store's prefix are its business");
            assertArrayEquals(utf8("cfg"), store.get("config"), "objects are untouched");
        }
    }

    private static S3AsyncClient rawClient() {
        return S3AsyncClient.builder().endpointOverride(s3.server().endpoint()).region(Region.of(S3ProxyServer.REGION))
                .credentialsProvider(StaticCredentialsProvider.create(AwsBasicCredentials.create(
                        S3ProxyServer.ACCESS_KEY, S3ProxyServer.SECRET_KEY)))
                .requestChecksumCalculation(RequestChecksumCalculation.WHEN_REQUIRED) // as S3Store: S3Proxy
                .responseChecksumValidation(ResponseChecksumValidation.WHEN_REQUIRED)
                .forcePathStyle(true).build();
    }

    @Test
    void createBucketIfMissingIsIdempotent() throws IOException {
        S3Settings settings = s3.server().settings("fresh-bucket-" + System.nanoTime(), "repo");
        try (S3Store store = new S3Store(settings)) {
            store.createBucketIfMissing();
            store.createBucketIfMissing();
            store.put("config", utf8("x"));
            store.createBucketIfMissing();
            assertArrayEquals(utf8("x"), store.get("config"));
        }
    }

    @Test
    void closeIsIdempotentAndFinal() throws IOException {
        S3Store store = new S3Store(s3.server().newBucketSettings(""));
        store.put("config", utf8("x"));
        store.close();
        store.close();
        IOException e = assertThrows(IOException.class, () -> store.get("config"));
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
        new S3Store(s3.server().newBucketSettings("")).close();
    }

    /** Against a scripted HTTP endpoint: retries, error responses and aborted multipart uploads. */
    @Nested
    @TestInstance(TestInstance.Lifecycle.PER_CLASS)
    class ScriptedEndpoint {
        /** A request as the endpoint saw it. */
        record Request(int number, String method, String path, String query, byte[] body, String contentMd5) {
            boolean md5Matches() {
                return contentMd5 != null && contentMd5.equals(md5(body));
            }
        }

        /** A response: status, headers and body. */
        record Response(int status, Map<String, String> headers, byte[] body) {
            static Response ok(String body) {
                return new Response(200, Map.of("ETag", "\"" + md5Hex(utf8(body)) + "\""), utf8(body));
            }

            static Response error(int status, String code, String message) {
                return new Response(status, Map.of("Content-Type", "application/xml"),
                        utf8("<Error><Code>" + code + "</Code><Message>" + message + "</Message></Error>"));
            }
        }

        private HttpServer server;
        private final List<Request> requests = new CopyOnWriteArrayList<>();
        private volatile Function<Request, Response> script;

        @BeforeAll
        void start() throws IOException {
            server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
            server.createContext("/", exchange -> {
                try (exchange) {
                    Request request = new Request(requests.size() + 1, exchange.getRequestMethod(),
                            exchange.getRequestURI().getPath(), exchange.getRequestURI().getQuery(),
                            exchange.getRequestBody().readAllBytes(),
                            exchange.getRequestHeaders().getFirst("Content-MD5"));
                    requests.add(request);
                    Response response = script.apply(request);
                    response.headers().forEach((k, v) -> exchange.getResponseHeaders().add(k, v));
                    exchange.sendResponseHeaders(response.status(),
                            response.body().length == 0 ? -1 : response.body().length);
                    if (response.body().length > 0) {
                        exchange.getResponseBody().write(response.body());
                    }
                }
            });
            server.start();
        }

        @AfterAll
        void stop() {
            server.stop(0);
        }

        private S3Store store(int maxAttempts, Function<Request, Response> script) {
            this.script = script;
            requests.clear();
            URI endpoint = URI.create("http://127.0.0.1:" + server.getAddress().getPort());
            return new S3Store(s3.server().settings("scripted", "repo").toBuilder()
                    .endpoint(endpoint).maxAttempts(maxAttempts)
                    .retryBackoff(Duration.ofMillis(50), Duration.ofMillis(200)).build());
        }

        private static Response internalError() {
            return Response.error(500, "InternalError", "We encountered an internal error. Please try again.");
        }

        @Test
        void serverErrorsAreRetried() throws IOException {
            try (S3Store store = store(3, r -> r.number() <= 2 ? internalError() : Response.ok("hello"))) {
                assertArrayEquals(utf8("hello"), store.get("obj"));
            }
            assertEquals(3, requests.size());
        }

        @Test
        void throttlingIsRetried() throws IOException {
            try (S3Store store = store(3, r -> r.number() == 1
                    ? Response.error(503, "SlowDown", "Please reduce your request rate.")
                    : r.number() == 2 ? Response.error(429, "TooManyRequests", "Slow down.")
                    : Response.ok("hello"))) {
                assertArrayEquals(utf8("hello"), store.get("obj"));
            }
            assertEquals(3, requests.size());
        }

        @Test
        void failuresAfterTheLastAttemptNameTheObjectAndTheError() throws IOException {
            try (S3Store store = store(2, r -> internalError())) {
                IOException e = assertThrows(IOException.class, () -> store.get("obj"));
                assertTrue(e.getMessage().contains("s3://scripted/repo/obj"), e.getMessage());
                assertTrue(e.getMessage().contains("InternalError"), e.getMessage());
                assertTrue(e.getMessage().contains("We encountered an internal error."), e.getMessage());
                assertTrue(e.getMessage().matches("S3 GetObject of .*\\(2 attempts in \\d+\\.\\d s; the most "
                        + "attempts allowed, see FERRY_S3_MAX_ATTEMPTS\\)"), e.getMessage());
            }
            assertEquals(2, requests.size());
        }

        @Test
        void clientErrorsAreNotRetried() throws IOException {
            try (S3Store store = store(3, r -> r.path().endsWith("/missing")
                    ? Response.error(404, "NoSuchKey", "The specified key does not exist.")
                    : Response.error(403, "AccessDenied", "Access Denied"))) {
                assertThrows(NoSuchObjectException.class, () -> store.get("missing"));
                assertEquals(1, requests.size());
                IOException denied = assertThrows(IOException.class, () -> store.get("secret"));
                assertTrue(denied.getMessage().contains("AccessDenied"), denied.getMessage());
                assertEquals(2, requests.size());
            }
        }

        @Test
        void retriedUploadsResendTheWholeBody() throws IOException {
            byte[] data = random(100_000, 5);
            Path file = Files.write(tmp.resolve("upload"), data);
            Function<Request, Response> failTwice =
                    r -> r.number() <= 2 ? internalError() : Response.ok("");
            for (Object content : List.of(data, file, new byte[0])) {
                try (S3Store store = store(3, failTwice)) {
                    if (content instanceof byte[] bytes) {
                        store.put("obj", bytes);
                    } else {
                        store.put("obj", (Path) content);
                    }
                }
                assertEquals(3, requests.size());
                int expectedLength = content instanceof byte[] bytes ? bytes.length : data.length;
                for (Request request : requests) {
                    assertEquals(expectedLength, request.body().length);
                    assertTrue(request.md5Matches(), "Content-MD5 of the body");
                }
            }
        }

        @Test
        void failedMultipartUploadIsAborted() throws IOException {
            String initiated = "<InitiateMultipartUploadResult><Bucket>scripted</Bucket><Key>repo/big</Key>"
                    + "<UploadId>upload-1</UploadId></InitiateMultipartUploadResult>";
            try (S3Store store = store(2, r -> {
                String query = r.query() == null ? "" : r.query();
                if (r.method().equals("POST") && query.startsWith("uploads")) {
                    return new Response(200, Map.of("Content-Type", "application/xml"), utf8(initiated));
                }
                if (r.method().equals("PUT") && query.contains("partNumber=2")) {
                    return Response.error(400, "BadDigest", "The Content-MD5 you specified did not match.");
                }
                if (r.method().equals("DELETE")) {
                    return new Response(204, Map.of(), new byte[0]);
                }
                return Response.ok("");
            })) {
                byte[] data = random((int) (12 * MIB), 6);
                IOException e = assertThrows(IOException.class, () -> store.put("big", data));
                assertTrue(e.getMessage().contains("BadDigest") && e.getMessage().contains("s3://scripted/repo/big"),
                        e.getMessage());
            }
            List<String> calls = requests.stream().map(r -> r.method() + " " + r.query()).toList();
            Request last = requests.get(requests.size() - 1);
            assertEquals("DELETE", last.method(), calls.toString());
            assertEquals("uploadId=upload-1", last.query(), calls.toString());
            assertTrue(requests.stream().noneMatch(r -> r.method().equals("POST") && r.query().contains("uploadId")),
                    "never completed: " + calls);
            assertTrue(requests.stream().filter(r -> r.method().equals("PUT")).allMatch(Request::md5Matches));
        }
    }

    @Nested
    class Tls {
        @Test
        void trustsTheCertificatesOfTheCaFile(@TempDir Path dir) throws Exception {
            try (S3ProxyServer tls = S3ProxyServer.startTls(dir)) {
                S3Settings settings = tls.newBucketSettings("repo");
                try (S3Store store = new S3Store(settings)) {
                    store.put("config", utf8("over tls"));
                    assertArrayEquals(utf8("over tls"), store.get("config"));
                }
                S3Settings untrusted = settings.toBuilder().caFile(null).maxAttempts(1).build();
                try (S3Store store = new S3Store(untrusted)) {
                    IOException e = assertThrows(IOException.class, () -> store.get("config"));
                    assertFalse(e instanceof NoSuchObjectException);
                }
            }
        }

        @Test
        void unusableCaFilesAreNamed() throws IOException {
            S3Settings settings = s3.server().newBucketSettings("");
            Path empty = Files.writeString(tmp.resolve("empty.pem"), "# no certificates here\n");
            Path missing = tmp.resolve("missing.pem");
            Path garbage = Files.writeString(tmp.resolve("garbage.pem"),
                    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
            for (Path caFile : List.of(empty, missing, garbage)) {
                try (S3Store store = new S3Store(settings.toBuilder().caFile(caFile).build())) {
                    IOException e = assertThrows(IOException.class, () -> store.get("config"));
                    assertFalse(e instanceof NoSuchObjectException);
                    assertTrue(e.getMessage().contains(caFile.toString()), e.getMessage());
                }
            }
        }
    }

    /** {@link S3Settings#fromUrl}: parsing and environment variables. */
    /** A failure's description never stops at "null": it names the root cause's class. */
    @Test
    void causesWithoutAMessageAreNamed() {
        IOException silent = new IOException((String) null);
        String text = S3Store.describe(software.amazon.awssdk.core.exception.SdkClientException.builder()
                .message("Unable to execute HTTP request: null").cause(silent).build());
        assertEquals("Unable to execute HTTP request (java.io.IOException)", text);
        assertEquals("IOException", S3Store.describe(silent));
        assertEquals("Unable to execute HTTP request: ConnectException: Connection refused",
                S3Store.describe(new IOException("Unable to execute HTTP request",
                        new java.net.ConnectException("Connection refused"))));
    }

    @Nested
    class SettingsFromUrl {
        @Test
        void defaultsForAws() {
            S3Settings settings = S3Settings.fromUrl("s3://my-bucket/backups/prod/", Map.of());
            assertEquals("my-bucket", settings.bucket());
            assertEquals("backups/prod", settings.prefix());
            assertNull(settings.endpoint());
            assertEquals("us-east-1", settings.region());
            assertFalse(settings.pathStyle());
            assertNull(settings.caFile());
            assertEquals(16 * MIB, settings.partSize());
            assertEquals(100, settings.maxAttempts());
            assertEquals(Duration.ofMinutes(2), settings.timeout());
            assertEquals(Duration.ofSeconds(60), settings.attemptTimeout());
            assertEquals(Duration.ofMinutes(15), settings.retryTimeout());
            assertEquals(Duration.ofMillis(500), settings.retryBackoff());
            assertEquals(Duration.ofSeconds(30), settings.maxRetryBackoff());
            assertNull(settings.credentialsProvider());
            assertEquals("s3://my-bucket/backups/prod", settings.url());
        }

        @Test
        void bucketOnly() {
            assertEquals("", S3Settings.fromUrl("s3://my.bucket-1", Map.of()).prefix());
            assertEquals("", S3Settings.fromUrl("s3://my.bucket-1/", Map.of()).prefix());
            assertEquals("s3://my.bucket-1", S3Settings.fromUrl("s3://my.bucket-1/", Map.of()).url());
            assertEquals("a/b", S3Settings.fromUrl("s3://abc//a//b//", Map.of()).prefix());
        }

        @Test
        void customEndpointDefaultsToPathStyle() {
            S3Settings settings = S3Settings.fromUrl("s3://bucket/p", Map.of(
                    "AWS_ENDPOINT_URL", "http://minio.local:9000",
                    "AWS_REGION", "eu-west-3",
                    "AWS_DEFAULT_REGION", "ignored-1"));
            assertEquals(URI.create("http://minio.local:9000"), settings.endpoint());
            assertEquals("eu-west-3", settings.region());
            assertTrue(settings.pathStyle());
        }

        @Test
        void serviceSpecificEndpointAndRegionFallbacks() {
            S3Settings settings = S3Settings.fromUrl("s3://bucket", Map.of(
                    "AWS_ENDPOINT_URL", "http://generic:1",
                    "AWS_ENDPOINT_URL_S3", "https://s3.example.com",
                    "AWS_REGION", "",
                    "AWS_DEFAULT_REGION", "ap-south-1"));
            assertEquals(URI.create("https://s3.example.com"), settings.endpoint());
            assertEquals("ap-south-1", settings.region());
        }

        @Test
        void pathStyleOverride() {
            assertFalse(S3Settings.fromUrl("s3://bucket", Map.of(
                    "AWS_ENDPOINT_URL_S3", "https://s3.example.com", "FERRY_S3_PATH_STYLE", "false")).pathStyle());
            assertTrue(S3Settings.fromUrl("s3://bucket", Map.of("FERRY_S3_PATH_STYLE", "TRUE")).pathStyle());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> S3Settings.fromUrl("s3://bucket", Map.of("FERRY_S3_PATH_STYLE", "yes")));
            assertTrue(e.getMessage().contains("FERRY_S3_PATH_STYLE"), e.getMessage());
        }

        @Test
        void caFile() {
            assertEquals(Path.of("/etc/ferry/ca.pem"), S3Settings.fromUrl("s3://bucket", Map.of(
                    "FERRY_S3_CA_FILE", "/etc/ferry/ca.pem", "AWS_CA_BUNDLE", "/etc/ssl/aws.pem")).caFile());
            assertEquals(Path.of("/etc/ssl/aws.pem"), S3Settings.fromUrl("s3://bucket", Map.of(
                    "AWS_CA_BUNDLE", "/etc/ssl/aws.pem")).caFile());
        }

        @Test
        void timeLimitsAndAttemptsFromTheEnvironment() {
            S3Settings set = S3Settings.fromUrl("s3://bucket", Map.of("FERRY_S3_TIMEOUT", "2.5",
                    "FERRY_S3_ATTEMPT_TIMEOUT", "0.75", "FERRY_S3_MAX_ATTEMPTS", "3"));
            assertEquals(Duration.ofMillis(2500), set.timeout());
            assertEquals(Duration.ofMillis(750), set.attemptTimeout());
            assertEquals(3, set.maxAttempts());
            assertEquals(S3Settings.DEFAULT_RETRY_TIMEOUT, set.retryTimeout());
            assertEquals(Duration.ofSeconds(600), S3Settings.fromUrl("s3://bucket", Map.of(
                    "FERRY_S3_RETRY_TIMEOUT", "600")).retryTimeout());
            assertEquals(Duration.ZERO, S3Settings.fromUrl("s3://bucket", Map.of(
                    "FERRY_S3_RETRY_TIMEOUT", "0")).retryTimeout());
            assertEquals(Duration.ofHours(24), S3Settings.fromUrl("s3://bucket", Map.of("FERRY_S3_TIMEOUT", "86400",
                    "FERRY_S3_ATTEMPT_TIMEOUT", "", "FERRY_S3_MAX_ATTEMPTS", " ")).timeout());

            // an attempt cannot outlast its request: the default and a larger value are lowered to it
            assertEquals(Duration.ofSeconds(10), S3Settings.fromUrl("s3://bucket", Map.of(
                    "FERRY_S3_TIMEOUT", "10")).attemptTimeout());
            assertEquals(Duration.ofSeconds(10), S3Settings.fromUrl("s3://bucket", Map.of(
                    "FERRY_S3_TIMEOUT", "10", "FERRY_S3_ATTEMPT_TIMEOUT", "30")).attemptTimeout());
            assertEquals(Duration.ofSeconds(5), S3Settings.builder("bucket").timeout(Duration.ofSeconds(5)).build()
                    .attemptTimeout());
        }

        @Test
        void invalidTimeLimitsAndAttemptsAreRejectedByName() {
            for (String variable : List.of("FERRY_S3_TIMEOUT", "FERRY_S3_ATTEMPT_TIMEOUT", "FERRY_S3_RETRY_TIMEOUT")) {
                for (String value : List.of("0", "0.0", "-1", "soon", "1e3", "2m", "1.2345", "86401", "1,5")) {
                    if (variable.equals("FERRY_S3_RETRY_TIMEOUT") && value.startsWith("0")) {
                        continue; // no retries
                    }
                    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                            () -> S3Settings.fromUrl("s3://bucket", Map.of(variable, value)), variable + "=" + value);
                    assertTrue(e.getMessage().contains(variable + " '" + value + "'")
                            && e.getMessage().contains("seconds"), e.getMessage());
                }
            }
            for (String value : List.of("0", "10001", "-3", "2.5", "many")) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> S3Settings.fromUrl("s3://bucket", Map.of("FERRY_S3_MAX_ATTEMPTS", value)), value);
                assertTrue(e.getMessage().contains("FERRY_S3_MAX_ATTEMPTS '" + value + "'"), e.getMessage());
            }
        }

        @Test
        void invalidUrlsAreRejected() {
            for (String url : List.of("s3://", "s3:///prefix", "s3://ab", "s3://Upper-Case", "s3://under_score/x",
                    "s3://-leading", "s3://" + "a".repeat(64), "http://bucket/prefix", "bucket/prefix")) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> S3Settings.fromUrl(url, Map.of()), url);
                assertTrue(e.getMessage().contains(url), e.getMessage());
            }
        }

        @Test
        void invalidEndpointsAreRejected() {
            for (String endpoint : List.of("not a uri", "minio:9000", "ftp://host", "http://")) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> S3Settings.fromUrl("s3://bucket", Map.of("AWS_ENDPOINT_URL", endpoint)), endpoint);
                assertTrue(e.getMessage().contains("AWS_ENDPOINT_URL") && e.getMessage().contains("endpoint"),
                        e.getMessage());
            }
        }

        @Test
        void builderValidation() {
            assertThrows(IllegalArgumentException.class, () -> S3Settings.builder("bucket").partSize(MIB).build());
            assertThrows(IllegalArgumentException.class, () -> S3Settings.builder("bucket").maxAttempts(0).build());
            assertThrows(IllegalArgumentException.class,
                    () -> S3Settings.builder("bucket").maxAttempts(10_001).build());
            assertThrows(IllegalArgumentException.class,
                    () -> S3Settings.builder("bucket").retryTimeout(Duration.ofSeconds(-1)).build());
            assertThrows(IllegalArgumentException.class,
                    () -> S3Settings.builder("bucket").retryBackoff(Duration.ZERO, Duration.ofSeconds(1)).build());
            assertThrows(IllegalArgumentException.class, () -> S3Settings.builder("bucket")
                    .retryBackoff(Duration.ofSeconds(2), Duration.ofSeconds(1)).build());
            assertEquals(Duration.ZERO, S3Settings.builder("bucket").retryTimeout(Duration.ZERO).build()
                    .retryTimeout());
            assertThrows(IllegalArgumentException.class,
                    () -> S3Settings.builder("bucket").timeout(Duration.ZERO).build());
            assertThrows(IllegalArgumentException.class,
                    () -> S3Settings.builder("bucket").timeout(Duration.ofSeconds(-1)).build());
            assertThrows(IllegalArgumentException.class,
                    () -> S3Settings.builder("bucket").timeout(Duration.ofDays(2)).build());
            assertThrows(IllegalArgumentException.class,
                    () -> S3Settings.builder("bucket").attemptTimeout(Duration.ofMillis(-5)).build());
            assertThrows(IllegalArgumentException.class, () -> S3Settings.builder("bucket").prefix("a/../b").build());
            assertThrows(IllegalArgumentException.class, () -> S3Settings.builder("B").build());
            S3Settings settings = S3Settings.builder("bucket").prefix("x").build();
            assertEquals(settings, settings.toBuilder().build());
            assertEquals("y/z", settings.withPrefix("/y/z/").prefix());
        }
    }
}
