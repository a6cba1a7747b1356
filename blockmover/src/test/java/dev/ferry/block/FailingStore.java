package dev.ferry.block;

import dev.ferry.store.Store;
import java.io.IOException;
import java.nio.file.Path;
import java.util.function.Predicate;

/**
 * A store that passes everything to another one, except that storing a name {@code putFails} accepts or deleting
 * a name {@code deleteFails} accepts throws: a process killed just before such a write leaves the store as this
 * one does.
 */
final class FailingStore extends DelegatingStore {
    private final Predicate<String> putFails;
    private final Predicate<String> deleteFails;

    private FailingStore(Store inner, Predicate<String> putFails, Predicate<String> deleteFails) {
        super(inner);
        this.putFails = putFails;
        this.deleteFails = deleteFails;
    }

    /** Deleting a name {@code fails} accepts throws. */
    static FailingStore deletes(Store inner, Predicate<String> fails) {
        return new FailingStore(inner, n -> false, fails);
    }

    /** Storing a name {@code fails} accepts throws (the predicate sees every name stored, in order). */
    static FailingStore puts(Store inner, Predicate<String> fails) {
        return new FailingStore(inner, fails, n -> false);
    }

    private void checkPut(String name) throws IOException {
        if (putFails.test(name)) {
            throw new IOException("killed before storing " + name);
        }
    }

    @Override
    public void put(String name, byte[] data) throws IOException {
        checkPut(name);
        inner.put(name, data);
    }

    @Override
    public void put(String name, Path file) throws IOException {
        checkPut(name);
        inner.put(name, file);
    }

    @Override
    public void delete(String name) throws IOException {
        if (deleteFails.test(name)) {
            throw new IOException("killed before deleting " + name);
        }
        inner.delete(name);
    }
}
