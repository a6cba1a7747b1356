package dev.ferry.store;

import java.io.IOException;

/** The named object does not exist in the store. */
public class NoSuchObjectException extends IOException {
    private final String objectName;

    public NoSuchObjectException(String location, String objectName) {
        super("no object '" + objectName + "' in " + location);
        this.objectName = objectName;
    }

    public String objectName() {
        return objectName;
    }
}
