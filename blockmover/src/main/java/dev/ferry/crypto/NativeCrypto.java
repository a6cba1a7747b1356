package dev.ferry.crypto;

import com.amazon.corretto.crypto.provider.AmazonCorrettoCryptoProvider;
import java.security.Provider;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The native crypto provider (Amazon Corretto Crypto Provider, on AWS-LC) when it loads on this platform: its
 * AES-GCM, HMAC-SHA-256 and SHA-256 run at full speed from the first call, where the JDK's need seconds of
 * JIT warm-up that a backup process does not have. Elsewhere (another OS or CPU, or {@code FERRY_CRYPTO=jdk})
 * Ferry uses the JDK's implementations; the results are identical.
 */
public final class NativeCrypto {
    private static final Logger log = LoggerFactory.getLogger(NativeCrypto.class);
    private static final Provider PROVIDER = load();

    private NativeCrypto() {
    }

    private static Provider load() {
        if ("jdk".equalsIgnoreCase(System.getenv("FERRY_CRYPTO"))
                || "jdk".equalsIgnoreCase(System.getProperty("ferry.crypto"))) {
            return null;
        }
        try {
            AmazonCorrettoCryptoProvider p = AmazonCorrettoCryptoProvider.INSTANCE;
            if (p.getLoadingError() != null) {
                log.debug("native crypto unavailable, using the JDK's: {}", p.getLoadingError().toString());
                return null;
            }
            return p;
        } catch (LinkageError | RuntimeException e) {
            log.debug("native crypto unavailable, using the JDK's: {}", e.toString());
            return null;
        }
    }

    /** The native provider, or null when the JDK's implementations are used. */
    public static Provider provider() {
        return PROVIDER;
    }

    /** A name for messages: which implementation is in use. */
    public static String describe() {
        return PROVIDER == null ? "JDK" : PROVIDER.getName() + " " + PROVIDER.getVersionStr();
    }
}
