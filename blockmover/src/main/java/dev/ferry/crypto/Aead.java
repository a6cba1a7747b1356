package dev.ferry.crypto;

import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Arrays;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.IvParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * AES-256-GCM with a fresh random 96-bit nonce per message. A sealed message is
 * {@code nonce (12 bytes) || ciphertext || tag (16 bytes)}; the associated data binds the message to its role
 * (and, for chunks, to its id) so that a valid ciphertext cannot be moved to another place undetected.
 *
 * <p>Where the native provider loads ({@link NativeCrypto}) it does all of this in one call at full speed.
 * Otherwise, large messages are fed to the JDK in slices of {@link #SLICE} bytes. The JDK's AES-CTR and GHASH
 * intrinsics only take over once their methods are compiled, which depends on how often they are called: with
 * one call per 1 MiB chunk they stay interpreted (about 40 MB/s on a 2026 server core) instead of running at
 * 1-2 GB/s. GCM decryption in the JDK buffers the whole message and cannot be sliced, so large messages are
 * decrypted with AES-CTR from counter block {@code nonce || 2} (exactly GCM's keystream) and authenticated by
 * recomputing the GCM tag over the recovered plaintext, compared in constant time; no plaintext is returned
 * unless the tag matches. Results are identical to the JDK's GCM (checked by tests).
 */
public final class Aead {
    public static final int KEY_BYTES = 32;
    public static final int NONCE_BYTES = 12;
    public static final int TAG_BYTES = 16;
    public static final int OVERHEAD = NONCE_BYTES + TAG_BYTES;
    /** Messages are processed in slices of this size (see the class comment). */
    static final int SLICE = 16 * 1024;

    private static final SecureRandom RANDOM = new SecureRandom();

    private final SecretKeySpec key;
    private final java.security.Provider provider;

    /** AES-256-GCM with the native provider where it loads ({@link NativeCrypto}), else the JDK's. */
    public Aead(byte[] key) {
        this(key, NativeCrypto.provider());
    }

    /** AES-256-GCM with {@code provider}, or with the JDK's implementation (sliced, see above) when null. */
    public Aead(byte[] key, java.security.Provider provider) {
        if (key.length != KEY_BYTES) {
            throw new IllegalArgumentException("AES-256 needs a 32-byte key, got " + key.length);
        }
        this.key = new SecretKeySpec(key, "AES");
        this.provider = provider;
    }

    /** Encrypts {@code plaintext[off, off+len)} and returns nonce || ciphertext || tag. */
    public byte[] seal(byte[] aad, byte[] plaintext, int off, int len) {
        byte[] out = new byte[NONCE_BYTES + len + TAG_BYTES];
        sealInto(aad, plaintext, off, len, out, 0);
        return out;
    }

    /**
     * Like {@link #seal(byte[], byte[], int, int)}, writing the {@code len + OVERHEAD} sealed bytes into
     * {@code out} at {@code outOff} (which must not overlap the input). Returns the sealed length.
     */
    public int sealInto(byte[] aad, byte[] plaintext, int off, int len, byte[] out, int outOff) {
        byte[] nonce = new byte[NONCE_BYTES];
        RANDOM.nextBytes(nonce);
        System.arraycopy(nonce, 0, out, outOff, NONCE_BYTES);
        int n = gcmEncrypt(nonce, aad, plaintext, off, len, out, outOff + NONCE_BYTES);
        if (n != len + TAG_BYTES) {
            throw new IllegalStateException("unexpected AES-GCM output length " + n);
        }
        return NONCE_BYTES + n;
    }

    /**
     * Like {@link #open(byte[], byte[], int, int)}, writing the plaintext into {@code out} at {@code outOff}
     * (room for {@code len - OVERHEAD} bytes, not overlapping the input). Returns the plaintext length.
     */
    public int openInto(byte[] aad, byte[] sealed, int off, int len, byte[] out, int outOff)
            throws AuthenticationException {
        if (len < OVERHEAD) {
            throw new AuthenticationException("sealed message is " + len + " bytes, shorter than nonce and tag");
        }
        if (provider == null) {
            byte[] plain = open(aad, sealed, off, len);
            System.arraycopy(plain, 0, out, outOff, plain.length);
            return plain.length;
        }
        try {
            Cipher cipher = cipher();
            cipher.init(Cipher.DECRYPT_MODE, key, new GCMParameterSpec(TAG_BYTES * 8, sealed, off, NONCE_BYTES));
            cipher.updateAAD(aad);
            return cipher.doFinal(sealed, off + NONCE_BYTES, len - NONCE_BYTES, out, outOff);
        } catch (AEADBadTagException e) {
            throw new AuthenticationException("authentication failed (damaged data or wrong key)");
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("AES-GCM is not available in this JVM", e);
        }
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
        if (provider != null || len - OVERHEAD <= SLICE) {
            return gcmDecrypt(aad, sealed, off, len);
        }
        return ctrDecryptThenCheckTag(aad, sealed, off, len);
    }

    /** AES-GCM encryption fed in slices; returns the bytes written (ciphertext and tag). */
    private int gcmEncrypt(byte[] nonce, byte[] aad, byte[] in, int off, int len, byte[] out, int outOff) {
        try {
            Cipher cipher = cipher();
            cipher.init(Cipher.ENCRYPT_MODE, key, new GCMParameterSpec(TAG_BYTES * 8, nonce));
            cipher.updateAAD(aad);
            if (provider != null) {
                return cipher.doFinal(in, off, len, out, outOff);
            }
            int o = outOff;
            for (int p = 0; p < len; p += SLICE) {
                o += cipher.update(in, off + p, Math.min(SLICE, len - p), out, o);
            }
            o += cipher.doFinal(out, o);
            return o - outOff;
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("AES-GCM is not available in this JVM", e);
        }
    }

    private Cipher cipher() throws GeneralSecurityException {
        return provider != null ? Cipher.getInstance("AES/GCM/NoPadding", provider)
                : Cipher.getInstance("AES/GCM/NoPadding");
    }

    /** One-shot AES-GCM decryption: the native provider's, or the JDK's for small messages. */
    private byte[] gcmDecrypt(byte[] aad, byte[] sealed, int off, int len) throws AuthenticationException {
        try {
            Cipher cipher = cipher();
            cipher.init(Cipher.DECRYPT_MODE, key, new GCMParameterSpec(TAG_BYTES * 8, sealed, off, NONCE_BYTES));
            cipher.updateAAD(aad);
            return cipher.doFinal(sealed, off + NONCE_BYTES, len - NONCE_BYTES);
        } catch (AEADBadTagException e) {
            throw new AuthenticationException("authentication failed (damaged data or wrong key)");
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("AES-GCM is not available in this JVM", e);
        }
    }

    /**
     * GCM decryption for large messages: AES-CTR from {@code nonce || 00000002} (GCM's keystream for a 96-bit
     * nonce; the low 32 bits cannot wrap below 64 GiB), then the GCM tag of the recovered plaintext is
     * recomputed by encrypting it again under the same nonce and compared with the stored tag.
     */
    private byte[] ctrDecryptThenCheckTag(byte[] aad, byte[] sealed, int off, int len)
            throws AuthenticationException {
        byte[] nonce = Arrays.copyOfRange(sealed, off, off + NONCE_BYTES);
        int ctLen = len - OVERHEAD;
        int ctOff = off + NONCE_BYTES;
        byte[] plain = new byte[ctLen];
        try {
            byte[] counter = new byte[16];
            System.arraycopy(nonce, 0, counter, 0, NONCE_BYTES);
            counter[15] = 2;
            Cipher ctr = Cipher.getInstance("AES/CTR/NoPadding");
            ctr.init(Cipher.DECRYPT_MODE, key, new IvParameterSpec(counter));
            int o = 0;
            for (int p = 0; p < ctLen; p += SLICE) {
                o += ctr.update(sealed, ctOff + p, Math.min(SLICE, ctLen - p), plain, o);
            }
            ctr.doFinal(plain, o);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("AES-CTR is not available in this JVM", e);
        }
        byte[] again = new byte[ctLen + TAG_BYTES];
        gcmEncrypt(nonce, aad, plain, 0, ctLen, again, 0);
        boolean tagMatches = MessageDigest.isEqual(
                Arrays.copyOfRange(again, ctLen, ctLen + TAG_BYTES),
                Arrays.copyOfRange(sealed, ctOff + ctLen, ctOff + ctLen + TAG_BYTES));
        if (!tagMatches) {
            Arrays.fill(plain, (byte) 0);
            throw new AuthenticationException("authentication failed (damaged data or wrong key)");
        }
        return plain;
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
