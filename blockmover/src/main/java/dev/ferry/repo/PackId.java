package dev.ferry.repo;

import dev.ferry.crypto.Hashes;

/** A pack's id: SHA-256 of the pack file's bytes, as 64 lower-case hex digits. */
public record PackId(String hex) implements Comparable<PackId> {
    public PackId {
        if (!hex.matches("[0-9a-f]{64}")) {
            throw new IllegalArgumentException("a pack id is 64 lower-case hex digits: " + hex);
        }
    }

    public static PackId of(byte[] sha256) {
        return new PackId(Hashes.hex(sha256));
    }

    /** The store name of this pack: {@code data/<first two hex digits>/<id>}. */
    public String objectName() {
        return directory() + hex;
    }

    /** The store prefix of the packs that share this one's first byte: {@code data/xx/}. */
    public String directory() {
        return "data/" + hex.substring(0, 2) + "/";
    }

    /** The pack id named by a store object name, or {@code null} if the name is not a pack's. */
    public static PackId fromObjectName(String name) {
        if (!name.matches("data/[0-9a-f]{2}/[0-9a-f]{64}")) {
            return null;
        }
        String hex = name.substring(8);
        return hex.startsWith(name.substring(5, 7)) ? new PackId(hex) : null;
    }

    public String shortHex() {
        return hex.substring(0, 16);
    }

    @Override
    public int compareTo(PackId o) {
        return hex.compareTo(o.hex);
    }

    @Override
    public String toString() {
        return hex;
    }
}
