package dev.ferry.repo;

import dev.ferry.crypto.Aead;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.util.Arrays;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * A repository's master key material: a 32-byte AES-256-GCM encryption key and a 32-byte HMAC-SHA-256 key
 * for chunk ids. It is generated once at {@code init}, stored only wrapped in key slots, and never changes.
 */
public final class MasterKey {
    public static final int BYTES = 64;

    private final byte[] encryptionKey;
    private final byte[] idKey;
    private final Aead aead;
    private final ThreadLocal<Mac> macs;

    private MasterKey(byte[] material) {
        if (material.length != BYTES) {
            throw new IllegalArgumentException("master key material is 64 bytes, got " + material.length);
        }
        this.encryptionKey = Arrays.copyOfRange(material, 0, 32);
        this.idKey = Arrays.copyOfRange(material, 32, 64);
        this.aead = new Aead(encryptionKey);
        SecretKeySpec macKey = new SecretKeySpec(idKey, "HmacSHA256");
        this.macs = ThreadLocal.withInitial(() -> {
            try {
                java.security.Provider nat = dev.ferry.crypto.NativeCrypto.provider();
                Mac mac = nat != null ? Mac.getInstance("HmacSHA256", nat) : Mac.getInstance("HmacSHA256");
                mac.init(macKey);
                return mac;
            } catch (GeneralSecurityException e) {
                throw new IllegalStateException("HMAC-SHA-256 is not available in this JVM", e);
            }
        });
    }

    public static MasterKey generate() {
        byte[] material = new byte[BYTES];
        new SecureRandom().nextBytes(material);
        return new MasterKey(material);
    }

    public static MasterKey fromMaterial(byte[] material) {
        return new MasterKey(material);
    }

    /** encryption key || id key, as stored inside a key slot. */
    public byte[] material() {
        byte[] out = new byte[BYTES];
        System.arraycopy(encryptionKey, 0, out, 0, 32);
        System.arraycopy(idKey, 0, out, 32, 32);
        return out;
    }

    public Aead aead() {
        return aead;
    }

    /** The chunk id of {@code data[off, off+len)}: HMAC-SHA-256 under the id key. */
    public ChunkId chunkId(byte[] data, int off, int len) {
        Mac mac = macs.get();
        mac.update(data, off, len);
        return ChunkId.of(mac.doFinal());
    }

    public ChunkId chunkId(byte[] data) {
        return chunkId(data, 0, data.length);
    }
}
