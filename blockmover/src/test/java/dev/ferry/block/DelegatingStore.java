package dev.ferry.block;

import dev.ferry.store.Store;
import dev.ferry.store.StoreObject;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * A store that passes every call to another one: a base for test stores that change a few calls (fail a write,
 * hold one back) and leave the others as they are.
 */
abstract class DelegatingStore implements Store {
    final Store inner;

    DelegatingStore(Store inner) {
        this.inner = inner;
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
        inner.delete(name);
    }

    @Override
    public Path stagingDirectory() {
        return inner.stagingDirectory();
    }

    @Override
    public int removeAbandonedStaging(Duration olderThan) throws IOException {
        return inner.removeAbandonedStaging(olderThan);
    }

    @Override
    public void close() throws IOException {
        inner.close();
    }
}
