package dev.ferry.repo;

import com.fasterxml.jackson.core.JacksonException;
import java.io.IOException;
import java.time.Instant;

/**
 * The plaintext {@code config} object: identifies a Ferry repository and its format version. It is readable
 * without a key so that a newer format is refused before any key is tried.
 *
 * @param format   always {@code "ferry-repository"}
 * @param version  format version; this code reads and writes {@link #CURRENT_VERSION}
 * @param id       64 hex digits, random, bound into every key slot
 * @param created  when {@code init} ran (RFC 3339, UTC)
 * @param packSize target pack size in bytes for writers of this repository
 */
public record RepositoryConfig(String format, int version, String id, String created, long packSize) {
    public static final String FORMAT = "ferry-repository";
    public static final int CURRENT_VERSION = 1;
    public static final String OBJECT_NAME = "config";
    public static final long DEFAULT_PACK_SIZE = 32L << 20;

    public static RepositoryConfig create(String id, Instant now, long packSize) {
        return new RepositoryConfig(FORMAT, CURRENT_VERSION, id, now.toString(), packSize);
    }

    public byte[] toJson() {
        try {
            return Json.MAPPER.writeValueAsBytes(this);
        } catch (JacksonException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Parses and checks a config object; refuses other formats and newer versions with a clear message. */
    public static RepositoryConfig parse(String location, byte[] json) throws RepositoryException {
        RepositoryConfig c;
        try {
            c = Json.MAPPER.readValue(json, RepositoryConfig.class);
        } catch (IOException e) {
            throw new RepositoryException.UnsupportedFormat(
                    location + " has a 'config' object that is not a Ferry repository config: " + e.getMessage());
        }
        if (!FORMAT.equals(c.format())) {
            throw new RepositoryException.UnsupportedFormat(
                    location + " is not a Ferry repository (config format is '" + c.format() + "')");
        }
        if (c.version() > CURRENT_VERSION) {
            throw new RepositoryException.UnsupportedFormat(location + " uses repository format version "
                    + c.version() + ", newer than this Ferry understands (up to " + CURRENT_VERSION
                    + "); upgrade Ferry to use it. Nothing was changed.");
        }
        if (c.version() < 1) {
            throw new RepositoryException.UnsupportedFormat(location + " has an invalid format version " + c.version());
        }
        if (c.id() == null || !c.id().matches("[0-9a-f]{64}")) {
            throw new RepositoryException.UnsupportedFormat(location + " has a config without a valid repository id");
        }
        if (c.packSize() < (1 << 20) || c.packSize() > (1L << 30)) {
            throw new RepositoryException.UnsupportedFormat(location + " has an invalid pack size " + c.packSize());
        }
        return c;
    }
}
