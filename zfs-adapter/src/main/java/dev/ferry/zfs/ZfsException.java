package dev.ferry.zfs;

import java.io.IOException;

/** A {@code zfs} command failed; the message names the command and carries what it printed on stderr. */
public final class ZfsException extends IOException {
    private final int exitCode;
    private final String stderr;

    public ZfsException(String message, int exitCode, String stderr) {
        super(message);
        this.exitCode = exitCode;
        this.stderr = stderr;
    }

    public int exitCode() {
        return exitCode;
    }

    public String stderr() {
        return stderr;
    }

    /** Whether ZFS said the dataset or snapshot does not exist. */
    public boolean notFound() {
        return stderr != null && stderr.contains("does not exist");
    }
}
