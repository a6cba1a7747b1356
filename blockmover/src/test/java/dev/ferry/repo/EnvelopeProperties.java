package dev.ferry.repo;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.crypto.Aead;
import java.util.Arrays;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.Size;

class EnvelopeProperties {
    private final MasterKey key = MasterKey.generate();
    private final Envelope envelope = new Envelope(3);

    @Property(tries = 200)
    void sealedChunksOpenToTheSameBytes(@ForAll @Size(max = 70_000) byte[] data, @ForAll boolean compress)
            throws Exception {
        ChunkId id = key.chunkId(data);
        byte[] aad = Envelope.chunkAad(BlobType.DATA, id);
        byte[] sealed = envelope.seal(key.aead(), aad, data, 0, data.length, compress);
        assertArrayEquals(data, Envelope.open(key.aead(), aad, sealed, 0, sealed.length));
        // never larger than raw storage: nonce, tag and one encoding byte on top of the data
        assertTrue(sealed.length <= data.length + Aead.OVERHEAD + 1);
    }

    @Property(tries = 200)
    void anyFlippedByteIsDetected(@ForAll @Size(min = 1, max = 5000) byte[] data, @ForAll @IntRange(min = 0) int where,
                                  @ForAll @IntRange(min = 1, max = 255) int mask) {
        ChunkId id = key.chunkId(data);
        byte[] aad = Envelope.chunkAad(BlobType.DATA, id);
        byte[] sealed = envelope.seal(key.aead(), aad, data, 0, data.length, true);
        sealed[where % sealed.length] ^= (byte) mask;
        assertThrows(Aead.AuthenticationException.class, () -> Envelope.open(key.aead(), aad, sealed, 0, sealed.length));
    }

    @Property(tries = 50)
    void aChunkCannotBePassedOffAsAnotherIdOrType(@ForAll @Size(min = 1, max = 2000) byte[] data,
                                                  @ForAll @Size(min = 1, max = 2000) byte[] other) {
        ChunkId id = key.chunkId(data);
        byte[] sealed = envelope.seal(key.aead(), Envelope.chunkAad(BlobType.DATA, id), data, 0, data.length, true);
        if (!Arrays.equals(data, other)) {
            byte[] otherAad = Envelope.chunkAad(BlobType.DATA, key.chunkId(other));
            assertThrows(Aead.AuthenticationException.class,
                    () -> Envelope.open(key.aead(), otherAad, sealed, 0, sealed.length));
        }
        byte[] metaAad = Envelope.chunkAad(BlobType.METADATA, id);
        assertThrows(Aead.AuthenticationException.class,
                () -> Envelope.open(key.aead(), metaAad, sealed, 0, sealed.length));
    }

    @Property(tries = 20)
    void compressionIsUsedOnlyWhenItShrinks(@ForAll @IntRange(min = 1000, max = 100_000) int n) throws Exception {
        byte[] zeros = new byte[n];
        byte[] sealedZeros = envelope.seal(key.aead(), new byte[0], zeros, 0, n, true);
        assertTrue(sealedZeros.length < n / 10, "zeros compress");
        byte[] plain = key.aead().open(new byte[0], sealedZeros);
        assertEquals(Envelope.ZSTD, plain[0]);

        byte[] random = TestRepos.random(new java.util.Random(n), n);
        byte[] sealedRandom = envelope.seal(key.aead(), new byte[0], random, 0, n, true);
        assertEquals(n + 1 + Aead.OVERHEAD, sealedRandom.length, "incompressible data is stored raw");
        assertEquals(Envelope.RAW, key.aead().open(new byte[0], sealedRandom)[0]);
    }

    @Property(tries = 30)
    void chunkIdsAreKeyed(@ForAll @Size(max = 1000) byte[] data) {
        MasterKey other = MasterKey.generate();
        // same content, different repository: different id (the store cannot confirm guesses across repositories)
        assertTrue(!key.chunkId(data).equals(other.chunkId(data)));
        assertEquals(key.chunkId(data), key.chunkId(data.clone()));
    }

    @Property(tries = 100)
    void noncesAreNeverReused(@ForAll @Size(min = 16, max = 64) byte[] data) {
        byte[] a = key.aead().seal(new byte[0], data);
        byte[] b = key.aead().seal(new byte[0], data);
        assertTrue(!Arrays.equals(Arrays.copyOf(a, Aead.NONCE_BYTES), Arrays.copyOf(b, Aead.NONCE_BYTES)));
    }
}
