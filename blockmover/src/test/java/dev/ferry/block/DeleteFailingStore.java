package dev.ferry.block;

import dev.ferry.store.Store;
import dev.ferry.store.StoreObject;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Predicate;

/**
 * A store that passes everything to another one, except that deleting a name {@code fails} accepts throws: a
 * process killed at its first deletion of such a name leaves the store as this one does.
 */
final class DeleteFailingStore implements Store {
    private final Store inner;
    private final Predicate<String> fails;

    DeleteFailingStore(Store inner, Predicate<String> fails) {
        this.inner = inner;
        this.fails = fails;
    }

    @Override
    public String location() {
        return inner.location();
    }

    @Override
    public boolean exists(String name) throws IOException {
        return inner.exists(name);
    }

    @Override
    public long size(String name) throws IOException {
        return inner.size(name);
    }

    @Override
    public byte[] get(String name) throws IOException {
        return inner.get(name);
    }

    @Override
    public byte[] getRange(String name, long offset, int length) throws IOException {
        return inner.getRange(name, offset, length);
    }

    @Override
    public void readRange(String name, long offset, byte[] into, int length) throws IOException {
        inner.readRange(name, offset, into, length);
    }

    @Override
    public void put(String name, byte[] data) throws IOException {
        inner.put(name, data);
    }

    @Override
    public void put(String name, Path file) throws IOException {
        inner.put(name, file);
    }

    @Override
    public List<StoreObject> list(String prefix) throws IOException {
        return inner.list(prefix);
    }

    @Override
    public void delete(String name) throws IOException {
        if (fails.test(name)) {
            throw new IOException("killed before deleting " + name);
        }
        inner.delete(name);
    }

    @Override
    public Path stagingDirectory() {
        return inner.stagingDirectory();
    }

    @Override
    public int removeAbandonedStaging(java.time.Duration olderThan) throws IOException {
        return inner.removeAbandonedStaging(olderThan);
    }

    @Override
    public void close() throws IOException {
        inner.close();
    }
}
