package dev.ferry.crypto;

import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * AES-256-GCM with a fresh random 96-bit nonce per message. A sealed message is
 * {@code nonce (12 bytes) || ciphertext || tag (16 bytes)}; the associated data binds the message to its role
 * (and, for chunks, to its id) so that a valid ciphertext cannot be moved to another place undetected.
 */
public final class Aead {
    public static final int KEY_BYTES = 32;
    public static final int NONCE_BYTES = 12;
    public static final int TAG_BYTES = 16;
    public static final int OVERHEAD = NONCE_BYTES + TAG_BYTES;

    private static final SecureRandom RANDOM = new SecureRandom();

    private final SecretKeySpec key;

    public Aead(byte[] key) {
        if (key.length != KEY_BYTES) {
            throw new IllegalArgumentException("AES-256 needs a 32-byte key, got " + key.length);
        }
        this.key = new SecretKeySpec(key, "AES");
    }

    /** Encrypts {@code plaintext[off, off+len)} and returns nonce || ciphertext || tag. */
    public byte[] seal(byte[] aad, byte[] plaintext, int off, int len) {
        byte[] out = new byte[NONCE_BYTES + len + TAG_BYTES];
        byte[] nonce = new byte[NONCE_BYTES];
        RANDOM.nextBytes(nonce);
        System.arraycopy(nonce, 0, out, 0, NONCE_BYTES);
        try {
            Cipher cipher = Cipher.getInstance("AES/GCM/NoPadding");
            cipher.init(Cipher.ENCRYPT_MODE, key, new GCMParameterSpec(TAG_BYTES * 8, nonce));
            cipher.updateAAD(aad);
            int n = cipher.doFinal(plaintext, off, len, out, NONCE_BYTES);
            if (n != len + TAG_BYTES) {
                throw new IllegalStateException("unexpected AES-GCM output length " + n);
            }
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("AES-GCM is not available in this JVM", e);
        }
        return out;
    }

    public byte[] seal(byte[] aad, byte[] plaintext) {
        return seal(aad, plaintext, 0, plaintext.length);
    }

    /**
     * Decrypts and authenticates {@code sealed[off, off+len)}.
     *
     * @throws AuthenticationException when the message was altered, truncated, sealed with another key or
     *                                 with other associated data
     */
    public byte[] open(byte[] aad, byte[] sealed, int off, int len) throws AuthenticationException {
        if (len < OVERHEAD) {
            throw new AuthenticationException("sealed message is " + len + " bytes, shorter than nonce and tag");
        }
        try {
            Cipher cipher = Cipher.getInstance("AES/GCM/NoPadding");
            cipher.init(Cipher.DECRYPT_MODE, key, new GCMParameterSpec(TAG_BYTES * 8, sealed, off, NONCE_BYTES));
            cipher.updateAAD(aad);
            return cipher.doFinal(sealed, off + NONCE_BYTES, len - NONCE_BYTES);
        } catch (AEADBadTagException e) {
            throw new AuthenticationException("authentication failed (damaged data or wrong key)");
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("AES-GCM is not available in this JVM", e);
        }
    }

    public byte[] open(byte[] aad, byte[] sealed) throws AuthenticationException {
        return open(aad, sealed, 0, sealed.length);
    }

    /** A sealed message did not authenticate. */
    public static final class AuthenticationException extends Exception {
        public AuthenticationException(String message) {
            super(message);
        }
    }
}
