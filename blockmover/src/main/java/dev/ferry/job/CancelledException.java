package dev.ferry.job;

import java.io.InterruptedIOException;

/** A job stopped because it was cancelled; the message is the cancellation's reason. */
public final class CancelledException extends InterruptedIOException {
    public CancelledException(String reason) {
        super(reason);
    }
}
