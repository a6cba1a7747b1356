package dev.ferry.store;

import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * One {@link S3ProxyServer} for a test class: started before its first test and closed after its last one.
 * Register it on a static field, and reach the server with {@link #server()}:
 * <pre>{@code
 * @RegisterExtension
 * static final S3ProxyExtension s3 = new S3ProxyExtension();
 * ...
 * try (S3Store store = new S3Store(s3.server().newBucketSettings("repo"))) {
 * }</pre>
 *
 * <p>{@link #withSdkCredentials()} also hands the server's keys to the AWS SDK's default credentials chain (through
 * the system properties it reads, as it reads {@code AWS_ACCESS_KEY_ID} in production) for as long as the server
 * runs, for tests of code that finds its credentials itself, such as the command line.
 *
 * <p>{@code @Nested} classes share the server of the class that registered the extension.
 */
public final class S3ProxyExtension implements BeforeAllCallback, AfterAllCallback {
    private static final String ACCESS_KEY_PROPERTY = "aws.accessKeyId";
    private static final String SECRET_KEY_PROPERTY = "aws.secretAccessKey";

    private final boolean sdkCredentials;
    private S3ProxyServer server;
    /** The unique id of the class context that started {@link #server}: only its end closes the server. */
    private String owner;

    public S3ProxyExtension() {
        this(false);
    }

    private S3ProxyExtension(boolean sdkCredentials) {
        this.sdkCredentials = sdkCredentials;
    }

    /** An extension that also puts the server's keys in the SDK's default credentials chain while it runs. */
    public static S3ProxyExtension withSdkCredentials() {
        return new S3ProxyExtension(true);
    }

    /** The running server. */
    public S3ProxyServer server() {
        if (server == null) {
            throw new IllegalStateException("the S3 server runs only while the tests of its class run");
        }
        return server;
    }

    @Override
    public void beforeAll(ExtensionContext context) throws Exception {
        if (server != null) {
            return; // a @Nested class of the class that started it
        }
        server = S3ProxyServer.start();
        owner = context.getUniqueId();
        if (sdkCredentials) {
            System.setProperty(ACCESS_KEY_PROPERTY, server.accessKey());
            System.setProperty(SECRET_KEY_PROPERTY, server.secretKey());
        }
    }

    @Override
    public void afterAll(ExtensionContext context) {
        if (server == null || !context.getUniqueId().equals(owner)) {
            return;
        }
        try {
            if (sdkCredentials) {
                System.clearProperty(ACCESS_KEY_PROPERTY);
                System.clearProperty(SECRET_KEY_PROPERTY);
            }
            server.close();
        } finally {
            server = null;
            owner = null;
        }
    }
}
