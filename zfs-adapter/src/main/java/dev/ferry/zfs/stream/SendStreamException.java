package dev.ferry.zfs.stream;

import java.io.IOException;

/** A send stream that is damaged, truncated, or uses something this reader does not know. */
public final class SendStreamException extends IOException {
    public SendStreamException(String message) {
        super(message);
    }
}
