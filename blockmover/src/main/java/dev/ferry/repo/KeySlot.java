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

    /**
     * The master key if {@code source} opens this slot; empty if it is the wrong password or key file (or the
     * sealed data was altered: AES-GCM cannot tell the two apart). A slot whose recorded key derivation or data
     * cannot be used at all is an error that says why.
     */
    public Optional<MasterKey> open(KeySource source, String repositoryId) throws RepositoryException {
        return attempt(source, repositoryId).key();
    }

    /**
     * What one try of {@code source} on this slot gave: the master key when the slot opens; otherwise, for a slot
     * of the right kind, {@code unverified}: the 64 bytes the derived key decrypts the sealed data to, without
     * authentication. Those bytes are the master key only when the password was right and the slot was sealed
     * for another repository id (a changed config); they must never be used unless they authenticate real
     * repository data (see {@link Repository#openKeyOnly}).
     */
    record Attempt(Optional<MasterKey> key, MasterKey unverified) {
    }

    Attempt attempt(KeySource source, String repositoryId) throws RepositoryException {
        if (!kind.equals(source.kind())) {
            return new Attempt(Optional.empty(), null);
        }
        byte[] kek;
        try {
            kek = derive(kdf, source);
        } catch (IllegalArgumentException e) {
            throw new RepositoryException(e.getMessage());
        }
        byte[] sealed;
        try {
            sealed = Base64.getDecoder().decode(data);
        } catch (IllegalArgumentException e) {
            throw new RepositoryException("key slot holds invalid data: " + e.getMessage());
        }
        try {
            byte[] material = new Aead(kek).open(aad(repositoryId), sealed);
            MasterKey key = MasterKey.fromMaterial(material);
            Arrays.fill(material, (byte) 0);
            return new Attempt(Optional.of(key), null);
        } catch (Aead.AuthenticationException e) {
            return new Attempt(Optional.empty(), decryptUnauthenticated(kek, sealed));
        } catch (IllegalArgumentException e) {
            throw new RepositoryException("key slot holds invalid data: " + e.getMessage());
        } finally {
            Arrays.fill(kek, (byte) 0);
        }
    }

    /** AES-GCM's keystream (AES-CTR from {@code nonce || 00000002}) applied to the sealed master key, unchecked. */
    private static MasterKey decryptUnauthenticated(byte[] kek, byte[] sealed) {
        if (sealed.length != Aead.OVERHEAD + MasterKey.BYTES) {
            return null;
        }
        try {
            byte[] counter = new byte[16];
            System.arraycopy(sealed, 0, counter, 0, Aead.NONCE_BYTES);
            counter[15] = 2;
            javax.crypto.Cipher ctr = javax.crypto.Cipher.getInstance("AES/CTR/NoPadding");
            ctr.init(javax.crypto.Cipher.DECRYPT_MODE, new javax.crypto.spec.SecretKeySpec(kek, "AES"),
                    new javax.crypto.spec.IvParameterSpec(counter));
            byte[] material = ctr.doFinal(sealed, Aead.NONCE_BYTES, MasterKey.BYTES);
            MasterKey key = MasterKey.fromMaterial(material);
            Arrays.fill(material, (byte) 0);
            return key;
        } catch (java.security.GeneralSecurityException e) {
            return null;
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
        if (argon) {
            try {
                // the cost a password slot records must be one this Ferry would spend: out of range is damage
                new KdfParams(slot.kdf().memoryKib(), slot.kdf().iterations(), slot.kdf().parallelism());
            } catch (IllegalArgumentException e) {
                throw new RepositoryException.Damaged(name, "key slot records an unusable key derivation cost: "
                        + e.getMessage());
            }
        }
        byte[] salt;
        byte[] sealed;
        try {
            salt = Base64.getDecoder().decode(slot.kdf().salt());
            sealed = Base64.getDecoder().decode(slot.data());
        } catch (IllegalArgumentException e) {
            throw new RepositoryException.Damaged(name, "key slot holds invalid base64: " + e.getMessage());
        }
        if (salt.length != 16) {
            throw new RepositoryException.Damaged(name, "key slot salt is " + salt.length + " bytes, not 16");
        }
        if (sealed.length != Aead.OVERHEAD + MasterKey.BYTES) {
            throw new RepositoryException.Damaged(name, "key slot data is " + sealed.length + " bytes, not "
                    + (Aead.OVERHEAD + MasterKey.BYTES) + " (nonce, sealed master key and tag)");
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
