package dev.ferry.crypto;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import org.bouncycastle.crypto.digests.SHA256Digest;
import org.bouncycastle.crypto.generators.Argon2BytesGenerator;
import org.bouncycastle.crypto.generators.HKDFBytesGenerator;
import org.bouncycastle.crypto.params.Argon2Parameters;
import org.bouncycastle.crypto.params.HKDFParameters;

/** Key derivation for key slots: Argon2id for passwords, HKDF-SHA-256 for high-entropy key files. */
public final class Kdf {
    public static final String ARGON2ID = "argon2id";
    public static final String HKDF_SHA256 = "hkdf-sha256";
    static final byte[] HKDF_INFO = "ferry key slot v1".getBytes(StandardCharsets.US_ASCII);

    private Kdf() {
    }

    /** Argon2id (version 0x13) of the UTF-8 password. */
    public static byte[] argon2id(char[] password, byte[] salt, int memoryKiB, int iterations, int parallelism) {
        Argon2Parameters params = new Argon2Parameters.Builder(Argon2Parameters.ARGON2_id)
                .withVersion(Argon2Parameters.ARGON2_VERSION_13)
                .withSalt(salt)
                .withMemoryAsKB(memoryKiB)
                .withIterations(iterations)
                .withParallelism(parallelism)
                .build();
        Argon2BytesGenerator generator = new Argon2BytesGenerator();
        generator.init(params);
        java.nio.ByteBuffer encoded = StandardCharsets.UTF_8.encode(java.nio.CharBuffer.wrap(password));
        byte[] exact = new byte[encoded.remaining()];
        encoded.get(exact);
        if (encoded.hasArray()) {
            Arrays.fill(encoded.array(), (byte) 0);
        }
        byte[] out = new byte[Aead.KEY_BYTES];
        generator.generateBytes(exact, out);
        Arrays.fill(exact, (byte) 0);
        return out;
    }

    /** HKDF-SHA-256 (RFC 5869) with the recorded salt and the info string {@code "ferry key slot v1"}. */
    public static byte[] hkdfSha256(byte[] keyMaterial, byte[] salt) {
        HKDFBytesGenerator generator = new HKDFBytesGenerator(new SHA256Digest());
        generator.init(new HKDFParameters(keyMaterial, salt, HKDF_INFO));
        byte[] out = new byte[Aead.KEY_BYTES];
        generator.generateBytes(out, 0, out.length);
        return out;
    }
}
