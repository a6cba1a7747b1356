package dev.ferry.store;

import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.gaul.s3proxy.AuthenticationType;
import org.gaul.s3proxy.S3Proxy;
import org.jclouds.ContextBuilder;
import org.jclouds.blobstore.BlobStore;
import org.jclouds.blobstore.BlobStoreContext;

import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.AwsCredentialsProvider;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;

/**
 * An in-process S3 server for tests: S3Proxy over an in-memory jclouds blob store, listening on a free port of
 * 127.0.0.1 and checking AWS signatures (v2 or v4) made with {@link #ACCESS_KEY} / {@link #SECRET_KEY}.
 *
 * <p>Typical use: start one server per test class ({@code s3 = S3ProxyServer.start()} in a {@code @BeforeAll}
 * method, {@code s3.close()} in an {@code @AfterAll} method), and give each test a bucket of its own:
 * <pre>{@code
 * try (S3Store store = new S3Store(s3.newBucketSettings("repo"))) {
 *     ...
 * }
 * }</pre>
 *
 * <p>{@link #startTls(Path)} starts the same server behind HTTPS with a freshly generated self-signed certificate,
 * whose PEM form is {@link #caFile()}.
 */
public final class S3ProxyServer implements AutoCloseable {

    /** Access key id the server accepts. */
    public static final String ACCESS_KEY = "ferry-test-access-key";
    /** Secret key the server accepts. */
    public static final String SECRET_KEY = "ferry-test-secret-key";
    /** Region used in the settings handed out. */
    public static final String REGION = "us-east-1";
    /** Part size in the settings handed out: the smallest S3 accepts, to keep multipart tests small. */
    public static final long TEST_PART_SIZE = S3Settings.MIN_PART_SIZE;

    private static final AtomicInteger BUCKETS = new AtomicInteger();

    private final BlobStoreContext context;
    private final S3Proxy proxy;
    private final URI endpoint;
    private final Path caFile;

    private S3ProxyServer(BlobStoreContext context, S3Proxy proxy, URI endpoint, Path caFile) {
        this.context = context;
        this.proxy = proxy;
        this.endpoint = endpoint;
        this.caFile = caFile;
    }

    /** Starts a server on {@code http://127.0.0.1:<free port>}. */
    public static S3ProxyServer start() throws Exception {
        BlobStoreContext context = newBlobStoreContext();
        S3Proxy proxy = S3Proxy.builder()
                .blobStore(context.getBlobStore())
                .endpoint(URI.create("http://127.0.0.1:0"))
                .awsAuthentication(AuthenticationType.AWS_V2_OR_V4, ACCESS_KEY, SECRET_KEY)
                .build();
        return started(context, proxy, false, null);
    }

    /**
     * Starts a server on {@code https://127.0.0.1:<free port>} with a self-signed certificate for 127.0.0.1,
     * generated with the JDK's keytool into {@code directory}.
     */
    public static S3ProxyServer startTls(Path directory) throws Exception {
        Path keyStore = directory.resolve("s3proxy.p12");
        Path caFile = directory.resolve("s3proxy-ca.pem");
        String password = "s3proxy-test";
        keytool("-genkeypair", "-alias", "s3proxy", "-keyalg", "RSA", "-keysize", "2048", "-validity", "2",
                "-dname", "CN=127.0.0.1", "-ext", "SAN=ip:127.0.0.1", "-storetype", "PKCS12",
                "-keystore", keyStore.toString(), "-storepass", password, "-keypass", password);
        keytool("-exportcert", "-rfc", "-alias", "s3proxy", "-keystore", keyStore.toString(),
                "-storepass", password, "-file", caFile.toString());

        BlobStoreContext context = newBlobStoreContext();
        S3Proxy proxy = S3Proxy.builder()
                .blobStore(context.getBlobStore())
                .secureEndpoint(URI.create("https://127.0.0.1:0"))
                .keyStore(keyStore.toString(), password)
                .awsAuthentication(AuthenticationType.AWS_V2_OR_V4, ACCESS_KEY, SECRET_KEY)
                .build();
        return started(context, proxy, true, caFile);
    }

    private static BlobStoreContext newBlobStoreContext() {
        return ContextBuilder.newBuilder("transient")
                .credentials(ACCESS_KEY, SECRET_KEY)
                .build(BlobStoreContext.class);
    }

    private static S3ProxyServer started(BlobStoreContext context, S3Proxy proxy, boolean tls, Path caFile)
            throws Exception {
        try {
            proxy.start();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (!"STARTED".equals(proxy.getState())) {
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("S3Proxy did not start: " + proxy.getState());
                }
                Thread.sleep(5);
            }
            int port = tls ? proxy.getSecurePort() : proxy.getPort();
            URI endpoint = URI.create((tls ? "https" : "http") + "://127.0.0.1:" + port);
            return new S3ProxyServer(context, proxy, endpoint, caFile);
        } catch (Exception | Error e) {
            try {
                proxy.stop();
            } catch (Exception suppressed) {
                e.addSuppressed(suppressed);
            }
            context.close();
            throw e;
        }
    }

    private static void keytool(String... args) throws IOException, InterruptedException {
        Path keytool = Path.of(System.getProperty("java.home"), "bin", "keytool");
        List<String> command = new ArrayList<>();
        command.add(keytool.toString());
        command.addAll(List.of(args));
        Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
        String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!process.waitFor(60, TimeUnit.SECONDS) || process.exitValue() != 0) {
            process.destroyForcibly();
            throw new IOException("keytool " + String.join(" ", args) + " failed: " + output);
        }
    }

    /** {@code http://127.0.0.1:<port>} or {@code https://127.0.0.1:<port>}. */
    public URI endpoint() {
        return endpoint;
    }

    /** Access key id the server accepts. */
    public String accessKey() {
        return ACCESS_KEY;
    }

    /** Secret key the server accepts. */
    public String secretKey() {
        return SECRET_KEY;
    }

    /** Static credentials for {@link #accessKey()} and {@link #secretKey()}. */
    public AwsCredentialsProvider credentialsProvider() {
        return StaticCredentialsProvider.create(AwsBasicCredentials.create(ACCESS_KEY, SECRET_KEY));
    }

    /** PEM certificate to trust for a server started with {@link #startTls(Path)}; {@code null} for HTTP. */
    public Path caFile() {
        return caFile;
    }

    /** The blob store behind the server, to inspect or prepare its content directly. */
    public BlobStore blobStore() {
        return context.getBlobStore();
    }

    /** Creates a bucket (nothing happens if it exists). */
    public void createBucket(String bucket) {
        blobStore().createContainerInLocation(null, bucket);
    }

    /** Creates a bucket with a name not used before in this JVM and returns its name. */
    public String newBucket() {
        String bucket = "ferry-test-" + BUCKETS.incrementAndGet();
        createBucket(bucket);
        return bucket;
    }

    /**
     * Settings for {@code bucket} and {@code prefix} on this server: path-style addressing, static test
     * credentials, {@link #TEST_PART_SIZE} parts, three attempts per request, and {@link #caFile()} when the
     * server uses TLS. The bucket is not created.
     */
    public S3Settings settings(String bucket, String prefix) {
        return S3Settings.builder(bucket)
                .prefix(prefix)
                .endpoint(endpoint)
                .region(REGION)
                .pathStyle(true)
                .caFile(caFile)
                .partSize(TEST_PART_SIZE)
                .maxAttempts(3)
                .credentialsProvider(credentialsProvider())
                .build();
    }

    /** Creates a fresh bucket and returns {@link #settings(String, String)} for it. */
    public S3Settings newBucketSettings(String prefix) {
        return settings(newBucket(), prefix);
    }

    /** Stops the server and drops its content. */
    @Override
    public void close() {
        try {
            proxy.stop();
        } catch (Exception e) {
            throw new IllegalStateException("cannot stop S3Proxy on " + endpoint, e);
        } finally {
            context.close();
        }
    }
}
