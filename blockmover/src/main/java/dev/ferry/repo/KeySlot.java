package dev.ferry.repo;

import com.fasterxml.jackson.annotation.JsonInclude;
import dev.ferry.crypto.Aead;
import dev.ferry.crypto.Hashes;
import dev.ferry.crypto.Kdf;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.time.Instant;
import java.util.Arrays;
import java.util.Base64;
import java.util.Optional;

/**
 * One key slot ({@code keys/<id>}): the master key material sealed with a key-encryption key derived from a
 * password (Argon2id) or a key file (HKDF-SHA-256). The slot's id is the SHA-256 of its JSON bytes.
 *
 * @param version  slot format version (1)
 * @param kind     {@code password} or {@code keyfile}
 * @param created  RFC 3339 time the slot was added
 * @param hostname host that added the slot (informational)
 * @param username user that added the slot (informational)
 * @param kdf      how the key-encryption key is derived
 * @param data     base64 of nonce || AES-256-GCM(master material) || tag, associated data
 *                 {@code "ferry:key:v1:" + repository id}
 */
public record KeySlot(int version, String kind, String created, String hostname, String username, KdfSpec kdf,
                      String data) {
    public static final String KIND_PASSWORD = "password";
    public static final String KIND_KEYFILE = "keyfile";
    public static final String PREFIX = "keys/";

    /**
     * @param algorithm   {@code argon2id} or {@code hkdf-sha256}
     * @param salt        base64, 16 random bytes
     * @param memoryKib   Argon2id memory in KiB (absent for HKDF)
     * @param iterations  Argon2id passes (absent for HKDF)
     * @param parallelism Argon2id lanes (absent for HKDF)
     */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record KdfSpec(String algorithm, String salt, Integer memoryKib, Integer iterations, Integer parallelism) {
    }

    static byte[] aad(String repositoryId) {
        return ("ferry:key:v1:" + repositoryId).getBytes(StandardCharsets.US_ASCII);
    }

    /** Seals {@code master} into a new slot opened by {@code source}. */
    public static KeySlot create(MasterKey master, KeySource source, KdfParams params, String repositoryId,
                                 Instant now) {
        byte[] salt = new byte[16];
        new SecureRandom().nextBytes(salt);
        KdfSpec spec;
        if (source instanceof KeySource.Password p) {
            spec = new KdfSpec(Kdf.ARGON2ID, Base64.getEncoder().encodeToString(salt), params.memoryKiB(),
                    params.iterations(), params.parallelism());
        } else {
            spec = new KdfSpec(Kdf.HKDF_SHA256, Base64.getEncoder().encodeToString(salt), null, null, null);
        }
        byte[] kek = derive(spec, source);
        byte[] material = master.material();
        byte[] sealed = new Aead(kek).seal(aad(repositoryId), material);
        Arrays.fill(kek, (byte) 0);
        Arrays.fill(material, (byte) 0);
        return new KeySlot(1, source.kind(), now.toString(), localHostname(), System.getProperty("user.name", ""),
                spec, Base64.getEncoder().encodeToString(sealed));
    }

    /** The master key if {@code source} opens this slot; empty if it is the wrong password or key file. */
    public Optional<MasterKey> open(KeySource source, String repositoryId) throws RepositoryException {
        if (!kind.equals(source.kind())) {
            return Optional.empty();
        }
        byte[] kek = derive(kdf, source);
        try {
            byte[] material = new Aead(kek).open(aad(repositoryId), Base64.getDecoder().decode(data));
            MasterKey key = MasterKey.fromMaterial(material);
            Arrays.fill(material, (byte) 0);
            return Optional.of(key);
        } catch (Aead.AuthenticationException e) {
            return Optional.empty();
        } catch (IllegalArgumentException e) {
            throw new RepositoryException("key slot holds invalid data: " + e.getMessage());
        } finally {
            Arrays.fill(kek, (byte) 0);
        }
    }

    private static byte[] derive(KdfSpec spec, KeySource source) {
        byte[] salt = Base64.getDecoder().decode(spec.salt());
        if (Kdf.ARGON2ID.equals(spec.algorithm()) && source instanceof KeySource.Password p) {
            // validates the recorded cost before spending memory on it
            KdfParams cost = new KdfParams(spec.memoryKib(), spec.iterations(), spec.parallelism());
            return Kdf.argon2id(p.password(), salt, cost.memoryKiB(), cost.iterations(), cost.parallelism());
        }
        if (Kdf.HKDF_SHA256.equals(spec.algorithm()) && source instanceof KeySource.KeyFile f) {
            return Kdf.hkdfSha256(f.material(), salt);
        }
        throw new IllegalArgumentException("key slot uses key derivation '" + spec.algorithm() + "', which does not fit a " + source.kind());
    }

    public byte[] toJson() {
        try {
            return Json.MAPPER.writeValueAsBytes(this);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Parses a slot and checks that it is complete. */
    public static KeySlot parse(String name, byte[] json) throws RepositoryException {
        KeySlot slot;
        try {
            slot = Json.MAPPER.readValue(json, KeySlot.class);
        } catch (IOException e) {
            throw new RepositoryException.Damaged(name, "not a valid key slot: " + e.getMessage());
        }
        if (slot.version() != 1) {
            throw new RepositoryException.UnsupportedFormat(name + ": key slot version " + slot.version()
                    + " is not supported by this Ferry");
        }
        if (slot.kdf() == null || slot.kdf().salt() == null || slot.data() == null || slot.kind() == null) {
            throw new RepositoryException.Damaged(name, "key slot is incomplete");
        }
        boolean argon = Kdf.ARGON2ID.equals(slot.kdf().algorithm());
        if (argon && (slot.kdf().memoryKib() == null || slot.kdf().iterations() == null
                || slot.kdf().parallelism() == null)) {
            throw new RepositoryException.Damaged(name, "argon2id key slot lacks its cost parameters");
        }
        boolean consistent = (KIND_PASSWORD.equals(slot.kind()) && argon)
                || (KIND_KEYFILE.equals(slot.kind()) && Kdf.HKDF_SHA256.equals(slot.kdf().algorithm()));
        if (!consistent) {
            throw new RepositoryException.Damaged(name, "key slot of kind '" + slot.kind() + "' with key derivation '"
                    + slot.kdf().algorithm() + "' is not supported");
        }
        return slot;
    }

    /** The store name of a slot's JSON bytes: {@code keys/<sha256 hex>}. */
    public static String objectName(byte[] json) {
        return PREFIX + Hashes.sha256Hex(json);
    }

    private static String localHostname() {
        String h = System.getenv("HOSTNAME");
        if (h != null && !h.isBlank()) {
            return h;
        }
        try {
            return java.net.InetAddress.getLocalHost().getHostName();
        } catch (IOException e) {
            return "";
        }
    }
}
