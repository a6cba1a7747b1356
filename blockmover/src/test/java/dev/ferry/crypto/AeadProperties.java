package dev.ferry.crypto;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Arrays;
import java.util.Random;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;

/**
 * Ferry's AES-GCM agrees with the JDK's reference AES-GCM in both directions, at every size: the native
 * provider where it loads, and the sliced JDK path that is used where it does not.
 */
class AeadProperties {
    private final byte[] key = new byte[32];
    private final Aead aead;
    private final Aead sliced;

    AeadProperties() {
        new Random(42).nextBytes(key);
        aead = new Aead(key);
        sliced = new Aead(key, null);
    }

    private static byte[] random(long seed, int n) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    /** Sizes around the slice boundary, where the decryption path changes. */
    private static int size(int pick, int raw) {
        int[] special = {0, 1, 15, 16, 17, Aead.SLICE - 1, Aead.SLICE, Aead.SLICE + 1, 2 * Aead.SLICE + 7, 1 << 20};
        return pick < special.length ? special[pick] : raw;
    }

    private byte[] referenceSeal(byte[] aad, byte[] nonce, byte[] plain) throws Exception {
        Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
        c.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(key, "AES"), new GCMParameterSpec(128, nonce));
        c.updateAAD(aad);
        byte[] ct = c.doFinal(plain);
        byte[] out = Arrays.copyOf(nonce, 12 + ct.length);
        System.arraycopy(ct, 0, out, 12, ct.length);
        return out;
    }

    private byte[] referenceOpen(byte[] aad, byte[] sealed) throws Exception {
        Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
        c.init(Cipher.DECRYPT_MODE, new SecretKeySpec(key, "AES"), new GCMParameterSpec(128, sealed, 0, 12));
        c.updateAAD(aad);
        return c.doFinal(sealed, 12, sealed.length - 12);
    }

    @Property(tries = 60)
    void agreesWithTheJdkInBothDirections(@ForAll long seed, @ForAll @IntRange(min = 0, max = 25) int pick,
                                          @ForAll @IntRange(min = 0, max = 200_000) int raw) throws Exception {
        byte[] plain = random(seed, size(pick, raw));
        byte[] aad = random(seed + 1, (int) Math.floorMod(seed, 40L));
        for (Aead a : new Aead[] {aead, sliced}) {
            byte[] sealed = a.seal(aad, plain);
            assertArrayEquals(plain, referenceOpen(aad, sealed));
            byte[] reference = referenceSeal(aad, random(seed + 2, 12), plain);
            assertArrayEquals(plain, a.open(aad, reference));
            byte[] into = new byte[plain.length + 5];
            assertEquals(plain.length, a.openInto(aad, reference, 0, reference.length, into, 5));
            assertArrayEquals(plain, Arrays.copyOfRange(into, 5, into.length));
        }
    }

    @org.junit.jupiter.api.Test
    void theNativeProviderLoadsOnThisPlatform() {
        // the reference machines are Linux x86-64: the native path is the one that runs there
        org.junit.jupiter.api.Assumptions.assumeTrue(System.getProperty("os.name").equals("Linux")
                && System.getProperty("os.arch").equals("amd64"));
        org.junit.jupiter.api.Assertions.assertNotNull(NativeCrypto.provider(), NativeCrypto.describe());
    }

    @Property(tries = 60)
    void anyChangeFailsAuthentication(@ForAll long seed, @ForAll @IntRange(min = 0, max = 25) int pick,
                                      @ForAll @IntRange(min = 1, max = 100_000) int raw,
                                      @ForAll @IntRange(min = 0) int where) {
        byte[] plain = random(seed, Math.max(1, size(pick, raw)));
        byte[] sealed = (seed % 2 == 0 ? aead : sliced).seal(new byte[] {1}, plain);
        byte[] flipped = sealed.clone();
        flipped[where % flipped.length] ^= 0x01;
        assertThrows(Aead.AuthenticationException.class, () -> aead.open(new byte[] {1}, flipped));
        assertThrows(Aead.AuthenticationException.class, () -> sliced.open(new byte[] {1}, flipped));
        assertThrows(Aead.AuthenticationException.class,
                () -> aead.openInto(new byte[] {1}, flipped, 0, flipped.length, new byte[flipped.length], 0));
        assertThrows(Aead.AuthenticationException.class, () -> aead.open(new byte[] {2}, sealed));
        assertThrows(Aead.AuthenticationException.class,
                () -> aead.open(new byte[] {1}, Arrays.copyOf(sealed, sealed.length - 1)));
        assertThrows(Aead.AuthenticationException.class,
                () -> new Aead(random(seed + 9, 32)).open(new byte[] {1}, sealed));
    }
}
