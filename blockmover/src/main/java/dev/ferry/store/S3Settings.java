package dev.ferry.store;

import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Objects;
import java.util.regex.Pattern;

import software.amazon.awssdk.auth.credentials.AwsCredentialsProvider;

/**
 * Where and how an {@link S3Store} reaches its bucket.
 *
 * <p>Build one with {@link #builder(String)} or parse a repository URL with {@link #fromUrl(String, Map)}.
 * Values are validated when the record is created, so an instance is always usable.
 *
 * @param bucket              bucket name: 3 to 63 lowercase letters, digits, dots and hyphens
 * @param prefix              key prefix of the repository inside the bucket, without leading or trailing slash;
 *                            empty for the bucket root
 * @param endpoint            custom S3 endpoint ({@code http} or {@code https}), or {@code null} for AWS
 * @param region              signing region, for example {@code us-east-1}
 * @param pathStyle           whether to address the bucket in the path ({@code https://host/bucket/key}) instead
 *                            of the host name ({@code https://bucket.host/key})
 * @param caFile              PEM file of the CA certificates to trust instead of the JVM defaults, or {@code null}
 * @param partSize            size in bytes of multipart upload parts, and the size above which uploads are
 *                            multipart; between 5 MiB and 5 GiB
 * @param maxAttempts         the most times a request is tried (first try included), 1 to
 *                            {@value #MAX_MAX_ATTEMPTS}; by default so many that {@code retryTimeout} is what ends
 *                            the retries
 * @param timeout             the longest one attempt of a request may take; an attempt that carries data gets
 *                            {@link S3Store#TRANSFER_ALLOWANCE_PER_MIB} more per MiB it carries. Positive, at most
 *                            {@link #MAX_TIMEOUT}
 * @param attemptTimeout      how long one attempt may go without progress before it is abandoned (and retried if
 *                            the retry budget allows): to connect, to complete the TLS handshake, between two
 *                            pieces of data sent or received, and for the answer. Positive; a value above
 *                            {@code timeout} is lowered to it
 * @param retryTimeout        the retry budget: how long after its first failed attempt a request is still tried
 *                            again, when what failed may pass (no connection, no answer, an answer cut short,
 *                            throttling, a server error). No attempt starts later than that. Zero for no retries,
 *                            at most {@link #MAX_TIMEOUT}
 * @param retryBackoff        the pause after the first failed attempt; each further pause doubles, up to
 *                            {@code maxRetryBackoff}, and is drawn at random between half that and that (jitter).
 *                            Positive
 * @param maxRetryBackoff     the longest pause between two attempts; at least {@code retryBackoff}, at most
 *                            {@link #MAX_TIMEOUT}
 * @param credentialsProvider credentials to sign requests with, or {@code null} for the SDK's default chain
 *                            (environment, profile files, container and instance roles, web identity)
 */
public record S3Settings(
        String bucket,
        String prefix,
        URI endpoint,
        String region,
        boolean pathStyle,
        Path caFile,
        long partSize,
        int maxAttempts,
        Duration timeout,
        Duration attemptTimeout,
        Duration retryTimeout,
        Duration retryBackoff,
        Duration maxRetryBackoff,
        AwsCredentialsProvider credentialsProvider) {

    /** One mebibyte. */
    public static final long MIB = 1024L * 1024L;
    /** Default size of multipart upload parts: 16 MiB. */
    public static final long DEFAULT_PART_SIZE = 16 * MIB;
    /** Smallest part size S3 accepts for every part but the last. */
    public static final long MIN_PART_SIZE = 5 * MIB;
    /** Largest part size S3 accepts. */
    public static final long MAX_PART_SIZE = 5L * 1024 * MIB;
    /**
     * Default most attempts per request: more than the default retry budget ever makes (about 35 when every
     * attempt fails at once), so that the budget is what ends the retries.
     */
    public static final int DEFAULT_MAX_ATTEMPTS = 100;
    /** Largest number of attempts per request accepted. */
    public static final int MAX_MAX_ATTEMPTS = 10_000;
    /** Default time limit of one attempt: 2 minutes (plus the allowance for the data it carries). */
    public static final Duration DEFAULT_TIMEOUT = Duration.ofMinutes(2);
    /** Default retry budget: 15 minutes after the first failed attempt of a request. */
    public static final Duration DEFAULT_RETRY_TIMEOUT = Duration.ofMinutes(15);
    /** Default pause after the first failed attempt: half a second. */
    public static final Duration DEFAULT_RETRY_BACKOFF = Duration.ofMillis(500);
    /** Default longest pause between two attempts: 30 seconds. */
    public static final Duration DEFAULT_MAX_RETRY_BACKOFF = Duration.ofSeconds(30);
    /** Default time an attempt may go without progress: 60 seconds. */
    public static final Duration DEFAULT_ATTEMPT_TIMEOUT = Duration.ofSeconds(60);
    /** Largest time limit accepted for a request or an attempt: a day. */
    public static final Duration MAX_TIMEOUT = Duration.ofDays(1);
    /** Region used when none is configured. */
    public static final String DEFAULT_REGION = "us-east-1";

    private static final Pattern BUCKET_NAME = Pattern.compile("[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]");
    private static final Pattern REGION_NAME = Pattern.compile("[A-Za-z0-9_.-]+");

    /** Validates and normalizes the components; see the record description for the rules. */
    public S3Settings {
        Objects.requireNonNull(bucket, "bucket");
        if (!BUCKET_NAME.matcher(bucket).matches()) {
            throw new IllegalArgumentException("invalid S3 bucket name '" + bucket
                    + "': expected 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with "
                    + "a letter or digit");
        }
        prefix = normalizePrefix(prefix == null ? "" : prefix);
        if (endpoint != null) {
            checkEndpoint(endpoint);
        }
        if (region == null || region.isBlank()) {
            region = DEFAULT_REGION;
        } else if (!REGION_NAME.matcher(region).matches()) {
            throw new IllegalArgumentException("invalid S3 region '" + region + "'");
        }
        if (partSize < MIN_PART_SIZE || partSize > MAX_PART_SIZE) {
            throw new IllegalArgumentException("S3 part size must be between " + MIN_PART_SIZE + " and "
                    + MAX_PART_SIZE + " bytes, got " + partSize);
        }
        if (maxAttempts < 1 || maxAttempts > MAX_MAX_ATTEMPTS) {
            throw new IllegalArgumentException("S3 max attempts must be between 1 and " + MAX_MAX_ATTEMPTS
                    + ", got " + maxAttempts);
        }
        timeout = timeout == null ? DEFAULT_TIMEOUT : timeout;
        checkTimeout("S3 request timeout", timeout);
        attemptTimeout = attemptTimeout == null ? DEFAULT_ATTEMPT_TIMEOUT : attemptTimeout;
        checkTimeout("S3 attempt timeout", attemptTimeout);
        if (attemptTimeout.compareTo(timeout) > 0) {
            attemptTimeout = timeout; // an attempt cannot go longer without progress than it may take in all
        }
        retryTimeout = retryTimeout == null ? DEFAULT_RETRY_TIMEOUT : retryTimeout;
        if (retryTimeout.isNegative() || retryTimeout.compareTo(MAX_TIMEOUT) > 0) {
            throw new IllegalArgumentException("S3 retry timeout must be between 0 and " + MAX_TIMEOUT.toHours()
                    + " hours, got " + seconds(retryTimeout));
        }
        retryBackoff = retryBackoff == null ? DEFAULT_RETRY_BACKOFF : retryBackoff;
        checkTimeout("S3 retry backoff", retryBackoff);
        maxRetryBackoff = maxRetryBackoff == null ? DEFAULT_MAX_RETRY_BACKOFF : maxRetryBackoff;
        checkTimeout("S3 longest retry backoff", maxRetryBackoff);
        if (maxRetryBackoff.compareTo(retryBackoff) < 0) {
            throw new IllegalArgumentException("S3 longest retry backoff (" + seconds(maxRetryBackoff)
                    + ") must not be shorter than the first one (" + seconds(retryBackoff) + ")");
        }
    }

    private static void checkTimeout(String what, Duration value) {
        if (value.isNegative() || value.isZero() || value.compareTo(MAX_TIMEOUT) > 0) {
            throw new IllegalArgumentException(what + " must be positive and at most " + MAX_TIMEOUT.toHours()
                    + " hours, got " + seconds(value));
        }
    }

    /** A duration for messages, in seconds: {@code 2 s}, {@code 0.25 s}, {@code 120 s}. */
    static String seconds(Duration d) {
        java.math.BigDecimal s = java.math.BigDecimal.valueOf(d.toMillis(), 3).stripTrailingZeros();
        return (s.scale() < 0 ? s.setScale(0) : s).toPlainString() + " s";
    }

    /** A builder with defaults for everything but the bucket. */
    public static Builder builder(String bucket) {
        return new Builder(bucket);
    }

    /** A builder initialized with these settings, to derive modified settings. */
    public Builder toBuilder() {
        return new Builder(bucket)
                .prefix(prefix)
                .endpoint(endpoint)
                .region(region)
                .pathStyle(pathStyle)
                .caFile(caFile)
                .partSize(partSize)
                .maxAttempts(maxAttempts)
                .timeout(timeout)
                .attemptTimeout(attemptTimeout)
                .retryTimeout(retryTimeout)
                .retryBackoff(retryBackoff, maxRetryBackoff)
                .credentialsProvider(credentialsProvider);
    }

    /** These settings with another key prefix. */
    public S3Settings withPrefix(String newPrefix) {
        return toBuilder().prefix(newPrefix).build();
    }

    /** {@code s3://bucket/prefix}, or {@code s3://bucket} when the prefix is empty. */
    public String url() {
        return prefix.isEmpty() ? "s3://" + bucket : "s3://" + bucket + "/" + prefix;
    }

    /**
     * Settings for a repository URL such as {@code s3://bucket/some/prefix}, completed from environment variables:
     * <ul>
     *   <li>endpoint: {@code AWS_ENDPOINT_URL_S3}, else {@code AWS_ENDPOINT_URL}; none means AWS itself;</li>
     *   <li>region: {@code AWS_REGION}, else {@code AWS_DEFAULT_REGION}, else {@code us-east-1};</li>
     *   <li>path-style addressing: {@code FERRY_S3_PATH_STYLE=true|false}; by default on when a custom endpoint is
     *       set, off otherwise;</li>
     *   <li>CA bundle: {@code FERRY_S3_CA_FILE}, else {@code AWS_CA_BUNDLE};</li>
     *   <li>time limits, in seconds (decimals allowed): {@code FERRY_S3_TIMEOUT} for one attempt (default 120),
     *       {@code FERRY_S3_ATTEMPT_TIMEOUT} for an attempt without progress (default 60, at most the attempt's
     *       limit), {@code FERRY_S3_RETRY_TIMEOUT} for the retries of a request after its first failure (default
     *       900; 0 for none);</li>
     *   <li>most attempts per request: {@code FERRY_S3_MAX_ATTEMPTS} (default 100).</li>
     * </ul>
     * Empty variables count as unset. Credentials come from the SDK's default chain.
     *
     * @param url the repository URL
     * @param env environment variables, usually {@link System#getenv()}
     * @throws IllegalArgumentException if the URL or one of the variables is invalid
     */
    public static S3Settings fromUrl(String url, Map<String, String> env) {
        Objects.requireNonNull(url, "url");
        Objects.requireNonNull(env, "env");
        String scheme = "s3://";
        if (!url.regionMatches(true, 0, scheme, 0, scheme.length())) {
            throw new IllegalArgumentException("invalid S3 URL '" + url + "': expected s3://bucket[/prefix]");
        }
        String rest = url.substring(scheme.length());
        int slash = rest.indexOf('/');
        String bucket = slash < 0 ? rest : rest.substring(0, slash);
        String prefix = slash < 0 ? "" : rest.substring(slash + 1);
        if (!BUCKET_NAME.matcher(bucket).matches()) {
            throw new IllegalArgumentException("invalid S3 URL '" + url + "': bucket name '" + bucket
                    + "' must be 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with "
                    + "a letter or digit");
        }

        Builder builder = builder(bucket).prefix(prefix);

        String endpointVar = firstSet(env, "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL");
        if (endpointVar != null) {
            builder.endpoint(parseEndpoint(env.get(endpointVar).trim(), endpointVar));
        }

        String regionVar = firstSet(env, "AWS_REGION", "AWS_DEFAULT_REGION");
        builder.region(regionVar == null ? DEFAULT_REGION : env.get(regionVar).trim());

        String pathStyle = value(env, "FERRY_S3_PATH_STYLE");
        if (pathStyle == null) {
            builder.pathStyle(endpointVar != null);
        } else if (pathStyle.equalsIgnoreCase("true")) {
            builder.pathStyle(true);
        } else if (pathStyle.equalsIgnoreCase("false")) {
            builder.pathStyle(false);
        } else {
            throw new IllegalArgumentException("invalid FERRY_S3_PATH_STYLE '" + pathStyle
                    + "': expected true or false");
        }

        String caVar = firstSet(env, "FERRY_S3_CA_FILE", "AWS_CA_BUNDLE");
        if (caVar != null) {
            String ca = env.get(caVar).trim();
            try {
                builder.caFile(Path.of(ca));
            } catch (InvalidPathException e) {
                throw new IllegalArgumentException("invalid " + caVar + " '" + ca + "': " + e.getMessage(), e);
            }
        }

        String timeout = value(env, "FERRY_S3_TIMEOUT");
        if (timeout != null) {
            builder.timeout(parseSeconds(timeout, "FERRY_S3_TIMEOUT"));
        }
        String attemptTimeout = value(env, "FERRY_S3_ATTEMPT_TIMEOUT");
        if (attemptTimeout != null) {
            builder.attemptTimeout(parseSeconds(attemptTimeout, "FERRY_S3_ATTEMPT_TIMEOUT"));
        }
        String retryTimeout = value(env, "FERRY_S3_RETRY_TIMEOUT");
        if (retryTimeout != null) {
            builder.retryTimeout(retryTimeout.matches("0+(\\.0{1,3})?") ? Duration.ZERO
                    : parseSeconds(retryTimeout, "FERRY_S3_RETRY_TIMEOUT"));
        }
        String attempts = value(env, "FERRY_S3_MAX_ATTEMPTS");
        if (attempts != null) {
            int n;
            try {
                n = Integer.parseInt(attempts);
            } catch (NumberFormatException e) {
                n = -1;
            }
            if (n < 1 || n > MAX_MAX_ATTEMPTS) {
                throw new IllegalArgumentException("invalid FERRY_S3_MAX_ATTEMPTS '" + attempts
                        + "': expected a whole number of attempts from 1 to " + MAX_MAX_ATTEMPTS);
            }
            builder.maxAttempts(n);
        }
        return builder.build();
    }

    private static final Pattern SECONDS = Pattern.compile("\\d{1,6}(\\.\\d{1,3})?");

    /** A positive number of seconds, at most {@link #MAX_TIMEOUT}, with up to three decimals. */
    private static Duration parseSeconds(String text, String variable) {
        if (SECONDS.matcher(text).matches()) {
            Duration d = Duration.ofMillis(new java.math.BigDecimal(text).movePointRight(3).longValueExact());
            if (!d.isZero() && d.compareTo(MAX_TIMEOUT) <= 0) {
                return d;
            }
        }
        throw new IllegalArgumentException("invalid " + variable + " '" + text + "': expected a number of seconds "
                + "above 0 and at most " + MAX_TIMEOUT.toSeconds() + ", such as 120 or 2.5");
    }

    private static String firstSet(Map<String, String> env, String... names) {
        for (String name : names) {
            if (value(env, name) != null) {
                return name;
            }
        }
        return null;
    }

    private static String value(Map<String, String> env, String name) {
        String v = env.get(name);
        return v == null || v.isBlank() ? null : v.trim();
    }

    private static URI parseEndpoint(String text, String variable) {
        URI uri;
        try {
            uri = new URI(text);
        } catch (URISyntaxException e) {
            throw new IllegalArgumentException("invalid S3 endpoint '" + text + "' in " + variable + ": "
                    + e.getMessage(), e);
        }
        try {
            checkEndpoint(uri);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(e.getMessage() + " (from " + variable + ")", e);
        }
        return uri;
    }

    private static void checkEndpoint(URI endpoint) {
        String scheme = endpoint.getScheme();
        if (scheme == null || !(scheme.equalsIgnoreCase("http") || scheme.equalsIgnoreCase("https"))) {
            throw new IllegalArgumentException("invalid S3 endpoint '" + endpoint
                    + "': expected an http:// or https:// URL");
        }
        if (endpoint.getHost() == null || endpoint.getHost().isEmpty()) {
            throw new IllegalArgumentException("invalid S3 endpoint '" + endpoint + "': no host name");
        }
        if (endpoint.getRawQuery() != null || endpoint.getRawFragment() != null) {
            throw new IllegalArgumentException("invalid S3 endpoint '" + endpoint
                    + "': must not have a query or fragment");
        }
    }

    private static String normalizePrefix(String prefix) {
        StringBuilder sb = new StringBuilder(prefix.length());
        for (String segment : prefix.split("/")) {
            if (segment.isEmpty()) {
                continue;
            }
            if (segment.equals(".") || segment.equals("..")) {
                throw new IllegalArgumentException("invalid S3 prefix '" + prefix + "': '" + segment
                        + "' is not allowed as a path segment");
            }
            if (sb.length() > 0) {
                sb.append('/');
            }
            sb.append(segment);
        }
        return sb.toString();
    }

    @Override
    public String toString() {
        return "S3Settings[" + url()
                + (endpoint == null ? "" : ", endpoint=" + endpoint)
                + ", region=" + region
                + ", pathStyle=" + pathStyle
                + (caFile == null ? "" : ", caFile=" + caFile)
                + ", partSize=" + partSize
                + ", maxAttempts=" + maxAttempts
                + ", timeout=" + seconds(timeout)
                + ", attemptTimeout=" + seconds(attemptTimeout)
                + ", retryTimeout=" + seconds(retryTimeout)
                + ", retryBackoff=" + seconds(retryBackoff) + ".." + seconds(maxRetryBackoff)
                + (credentialsProvider == null ? "" : ", credentials=" + credentialsProvider.getClass().getSimpleName())
                + "]";
    }

    /** Builds {@link S3Settings}; every setting but the bucket has a default. */
    public static final class Builder {
        private final String bucket;
        private String prefix = "";
        private URI endpoint;
        private String region = DEFAULT_REGION;
        private boolean pathStyle;
        private Path caFile;
        private long partSize = DEFAULT_PART_SIZE;
        private int maxAttempts = DEFAULT_MAX_ATTEMPTS;
        private Duration timeout = DEFAULT_TIMEOUT;
        private Duration attemptTimeout;
        private Duration retryTimeout = DEFAULT_RETRY_TIMEOUT;
        private Duration retryBackoff = DEFAULT_RETRY_BACKOFF;
        private Duration maxRetryBackoff = DEFAULT_MAX_RETRY_BACKOFF;
        private AwsCredentialsProvider credentialsProvider;

        private Builder(String bucket) {
            this.bucket = bucket;
        }

        /** Key prefix inside the bucket; leading, trailing and repeated slashes are dropped. Default: empty. */
        public Builder prefix(String prefix) {
            this.prefix = prefix;
            return this;
        }

        /** Custom endpoint, or {@code null} for AWS. Default: {@code null}. */
        public Builder endpoint(URI endpoint) {
            this.endpoint = endpoint;
            return this;
        }

        /** Signing region. Default: {@code us-east-1}. */
        public Builder region(String region) {
            this.region = region;
            return this;
        }

        /** Path-style addressing. Default: {@code false}. */
        public Builder pathStyle(boolean pathStyle) {
            this.pathStyle = pathStyle;
            return this;
        }

        /** PEM bundle of CA certificates to trust, or {@code null} for the JVM defaults. Default: {@code null}. */
        public Builder caFile(Path caFile) {
            this.caFile = caFile;
            return this;
        }

        /** Multipart part size in bytes. Default: 16 MiB. */
        public Builder partSize(long partSize) {
            this.partSize = partSize;
            return this;
        }

        /** Most attempts per request, first try included, 1 to 10,000. Default: 100. */
        public Builder maxAttempts(int maxAttempts) {
            this.maxAttempts = maxAttempts;
            return this;
        }

        /** Time limit of one attempt (plus the allowance for the data it carries). Default: 2 minutes. */
        public Builder timeout(Duration timeout) {
            this.timeout = timeout;
            return this;
        }

        /**
         * Time an attempt may go without progress. Default: 60 seconds, or the request's {@link #timeout} if that
         * is shorter; a larger value is lowered to the request's timeout.
         */
        public Builder attemptTimeout(Duration attemptTimeout) {
            this.attemptTimeout = attemptTimeout;
            return this;
        }

        /**
         * How long after its first failed attempt a request is still retried; zero for no retries. Default:
         * 15 minutes.
         */
        public Builder retryTimeout(Duration retryTimeout) {
            this.retryTimeout = retryTimeout;
            return this;
        }

        /**
         * The pause after the first failed attempt, and the longest pause, which the pauses double up to.
         * Default: 0.5 s and 30 s.
         */
        public Builder retryBackoff(Duration first, Duration longest) {
            this.retryBackoff = first;
            this.maxRetryBackoff = longest;
            return this;
        }

        /** Credentials, or {@code null} for the SDK's default chain. Default: {@code null}. */
        public Builder credentialsProvider(AwsCredentialsProvider credentialsProvider) {
            this.credentialsProvider = credentialsProvider;
            return this;
        }

        /** Validated settings; {@link IllegalArgumentException} if a value is invalid. */
        public S3Settings build() {
            return new S3Settings(bucket, prefix, endpoint, region, pathStyle, caFile, partSize, maxAttempts,
                    timeout, attemptTimeout, retryTimeout, retryBackoff, maxRetryBackoff, credentialsProvider);
        }
    }
}
