package dev.ferry.cli;

import dev.ferry.repo.KeySource;
import java.io.Console;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

/**
 * Where passwords and key files come from, in order: an explicit option, then the environment, then an
 * interactive prompt when there is a terminal.
 */
final class Credentials {
    static final String ENV_PASSWORD = "FERRY_PASSWORD";
    static final String ENV_PASSWORD_FILE = "FERRY_PASSWORD_FILE";
    static final String ENV_KEY_FILE = "FERRY_KEY_FILE";
    static final String ENV_NEW_PASSWORD = "FERRY_NEW_PASSWORD";

    private final Map<String, String> env;
    private final Console console;

    Credentials(Map<String, String> env, Console console) {
        this.env = env;
        this.console = console;
    }

    /** The key that opens an existing repository. */
    KeySource existing(Path passwordFile, Path keyFile) throws IOException {
        return resolve(passwordFile, keyFile, false);
    }

    /** The key for a new repository (init): a prompt asks twice. */
    KeySource forNewRepository(Path passwordFile, Path keyFile) throws IOException {
        return resolve(passwordFile, keyFile, true);
    }

    private KeySource resolve(Path passwordFile, Path keyFile, boolean confirm) throws IOException {
        if (keyFile != null) {
            return KeySource.KeyFile.read(keyFile);
        }
        if (passwordFile != null) {
            return new KeySource.Password(readPasswordFile(passwordFile));
        }
        if (nonEmpty(env.get(ENV_KEY_FILE))) {
            return KeySource.KeyFile.read(Path.of(env.get(ENV_KEY_FILE)));
        }
        if (nonEmpty(env.get(ENV_PASSWORD_FILE))) {
            return new KeySource.Password(readPasswordFile(Path.of(env.get(ENV_PASSWORD_FILE))));
        }
        if (env.get(ENV_PASSWORD) != null) {
            return new KeySource.Password(checked(env.get(ENV_PASSWORD).toCharArray(), ENV_PASSWORD));
        }
        if (console != null) {
            return new KeySource.Password(prompt("repository password", confirm));
        }
        throw new IOException("no password given: set " + ENV_PASSWORD + " or " + ENV_PASSWORD_FILE
                + ", or use --password-file or --key-file");
    }

    /** The key for a new key slot ({@code key add}). */
    KeySource newSlot(Path newPasswordFile, Path newKeyFile) throws IOException {
        if (newKeyFile != null) {
            return KeySource.KeyFile.read(newKeyFile);
        }
        if (newPasswordFile != null) {
            return new KeySource.Password(readPasswordFile(newPasswordFile));
        }
        if (env.get(ENV_NEW_PASSWORD) != null) {
            return new KeySource.Password(checked(env.get(ENV_NEW_PASSWORD).toCharArray(), ENV_NEW_PASSWORD));
        }
        if (console != null) {
            return new KeySource.Password(prompt("new password", true));
        }
        throw new IOException("no new password given: use --new-password-file or --new-key-file, or set "
                + ENV_NEW_PASSWORD);
    }

    private char[] prompt(String what, boolean confirm) throws IOException {
        char[] first = console.readPassword("enter %s: ", what);
        if (first == null) {
            throw new IOException("no password entered");
        }
        checked(first, "the prompt");
        if (confirm) {
            char[] second = console.readPassword("enter %s again: ", what);
            if (second == null || !Arrays.equals(first, second)) {
                throw new IOException("the passwords do not match");
            }
        }
        return first;
    }

    /** A password file's content without one trailing newline (as {@code echo} writes it). */
    static char[] readPasswordFile(Path file) throws IOException {
        String s;
        try {
            s = Files.readString(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IOException("cannot read password file " + file + ": " + e.getMessage(), e);
        }
        if (s.endsWith("\r\n")) {
            s = s.substring(0, s.length() - 2);
        } else if (s.endsWith("\n")) {
            s = s.substring(0, s.length() - 1);
        }
        return checked(s.toCharArray(), "password file " + file);
    }

    private static char[] checked(char[] password, String source) throws IOException {
        if (password.length == 0) {
            throw new IOException("empty password from " + source + "; a repository needs a password");
        }
        return password;
    }

    private static boolean nonEmpty(String s) {
        return s != null && !s.isEmpty();
    }
}
