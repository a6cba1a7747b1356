package dev.ferry.repo;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** What a user offers to open a key slot: a password, or the bytes of a key file (e.g. a Kubernetes Secret). */
public sealed interface KeySource {
    /** Minimum length of a key file: it must hold at least 128 bits of randomness. */
    int MIN_KEY_FILE_BYTES = 16;

    String kind();

    /** A password; matched against {@code password} slots (Argon2id). */
    record Password(char[] password) implements KeySource {
        @Override
        public String kind() {
            return KeySlot.KIND_PASSWORD;
        }
    }

    /** Raw key material read from a file; matched against {@code keyfile} slots (HKDF-SHA-256). */
    record KeyFile(byte[] material, String origin) implements KeySource {
        @Override
        public String kind() {
            return KeySlot.KIND_KEYFILE;
        }

        public static KeyFile read(Path path) throws IOException {
            byte[] data;
            try {
                data = Files.readAllBytes(path);
            } catch (IOException e) {
                throw new IOException("cannot read key file " + path + ": " + e.getMessage(), e);
            }
            if (data.length < MIN_KEY_FILE_BYTES) {
                throw new IOException("key file " + path + " holds " + data.length + " bytes; a key file needs at least "
                        + MIN_KEY_FILE_BYTES + " random bytes (e.g. head -c 32 /dev/urandom > FILE)");
            }
            boolean oneByte = true;
            for (byte b : data) {
                oneByte &= b == data[0];
            }
            if (oneByte) {
                throw new IOException("key file " + path + " holds " + data.length + " bytes that are all 0x"
                        + String.format("%02x", data[0] & 0xff) + ": it has no randomness and would protect nothing;"
                        + " a key file needs random bytes (e.g. head -c 32 /dev/urandom > FILE)");
            }
            return new KeyFile(data, path.toString());
        }
    }
}
