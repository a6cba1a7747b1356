package dev.ferry.repo;

import dev.ferry.store.Store;
import java.io.IOException;
import java.time.Clock;

/** Shared set-up for repository tests: cheap key derivation so tests stay fast. */
final class TestRepos {
    static final KdfParams CHEAP_KDF = new KdfParams(1024, 1, 1);
    static final KeySource PASSWORD = new KeySource.Password("correct horse".toCharArray());

    private TestRepos() {
    }

    static Repository init(Store store) throws IOException {
        return Repository.init(store, PASSWORD, CHEAP_KDF, 1 << 20, Clock.systemUTC());
    }

    static byte[] random(java.util.Random rnd, int n) {
        byte[] b = new byte[n];
        rnd.nextBytes(b);
        return b;
    }
}
