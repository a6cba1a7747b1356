package dev.ferry.store;

/** An object listed by a {@link Store}: its name relative to the repository root, and its size in bytes. */
public record StoreObject(String name, long size) {
}
