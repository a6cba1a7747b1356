package dev.ferry.cli;

/**
 * The command line asks for something impossible: an option value out of range, options that exclude each
 * other, a missing argument picocli cannot see. Reported with exit code {@link ExitCodes#USAGE} and a pointer
 * to the command's help, like picocli's own parameter errors.
 */
public final class UsageException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    public UsageException(String message) {
        super(message);
    }
}
