package dev.ferry.cli;

import dev.ferry.repo.KeySource;
import java.io.Console;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.nio.file.attribute.PosixFilePermission;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;

/**
 * Where passwords and key files come from, in order: an explicit option, then the environment, then an
 * interactive prompt when there is a terminal. A password or key file that the group or others may read is used,
 * with a warning.
 */
final class Credentials {
    static final String ENV_PASSWORD = "FERRY_PASSWORD";
    static final String ENV_PASSWORD_FILE = "FERRY_PASSWORD_FILE";
    static final String ENV_KEY_FILE = "FERRY_KEY_FILE";
    static final String ENV_NEW_PASSWORD = "FERRY_NEW_PASSWORD";

    private final Map<String, String> env;
    private final Console console;
    private final Consumer<String> warnings;

    Credentials(Map<String, String> env, Console console) {
        this(env, console, w -> { });
    }

    Credentials(Map<String, String> env, Console console, Consumer<String> warnings) {
        this.env = env;
        this.console = console;
        this.warnings = warnings;
    }

    private KeySource.KeyFile keyFile(Path file) throws IOException {
        KeySource.KeyFile key = KeySource.KeyFile.read(file);
        warnIfReadableByOthers(file, "key file");
        return key;
    }

    private char[] passwordFile(Path file) throws IOException {
        char[] password = readPasswordFile(file);
        warnIfReadableByOthers(file, "password file");
        return password;
    }

    /** Warns when the group or others may read {@code file}: whoever can read it can open the repository. */
    void warnIfReadableByOthers(Path file, String what) {
        Set<PosixFilePermission> mode;
        try {
            mode = Files.getPosixFilePermissions(file);
        } catch (IOException | UnsupportedOperationException e) {
            return; // no POSIX modes here: nothing to judge
        }
        boolean group = mode.contains(PosixFilePermission.GROUP_READ);
        boolean others = mode.contains(PosixFilePermission.OTHERS_READ);
        if (group || others) {
            warnings.accept(what + " " + file + " is readable by " + (group && others ? "its group and others"
                    : group ? "its group" : "others") + " (mode "
                    + java.nio.file.attribute.PosixFilePermissions.toString(mode) + "); whoever can read it can open "
                    + "the repository: chmod 600 " + file);
        }
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
            return keyFile(keyFile);
        }
        if (passwordFile != null) {
            return new KeySource.Password(passwordFile(passwordFile));
        }
        if (nonEmpty(env.get(ENV_KEY_FILE))) {
            return keyFile(Path.of(env.get(ENV_KEY_FILE)));
        }
        if (nonEmpty(env.get(ENV_PASSWORD_FILE))) {
            return new KeySource.Password(passwordFile(Path.of(env.get(ENV_PASSWORD_FILE))));
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
            return keyFile(newKeyFile);
        }
        if (newPasswordFile != null) {
            return new KeySource.Password(passwordFile(newPasswordFile));
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
