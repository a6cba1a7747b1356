package dev.ferry.cli;

/** Exit codes of the {@code ferry} command. Scripts and the controller rely on them; keep them stable. */
public final class ExitCodes {
    /** Success. */
    public static final int OK = 0;
    /** An error: bad input, an unreachable store, a refused operation. The message says which. */
    public static final int ERROR = 1;
    /** The command line itself is wrong (unknown option, missing argument). */
    public static final int USAGE = 2;
    /**
     * {@code verify} found damage in the repository; or a restore (with {@code --keep-going}, or of files)
     * finished everything else but left out data that is damaged or missing, which its summary lists.
     */
    public static final int DAMAGE = 3;
    /** The password or key file opens no key slot of the repository. */
    public static final int WRONG_KEY = 4;
    /**
     * A backup finished and stored its snapshot, but some files could not be read (permission denied, I/O
     * errors): the snapshot lacks them, and the summary lists them.
     */
    public static final int PARTIAL = 5;

    private ExitCodes() {
    }
}
