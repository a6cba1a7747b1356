package dev.ferry.repo;

import java.io.IOException;

/** A repository cannot be used as asked; the message says why in terms a user can act on. */
public class RepositoryException extends IOException {
    public RepositoryException(String message) {
        super(message);
    }

    public RepositoryException(String message, Throwable cause) {
        super(message, cause);
    }

    /** No key slot opens with the password or key file given. */
    public static final class WrongKey extends RepositoryException {
        public WrongKey(String message) {
            super(message);
        }
    }

    /** The repository was written by a newer Ferry, or is not a Ferry repository. */
    public static final class UnsupportedFormat extends RepositoryException {
        public UnsupportedFormat(String message) {
            super(message);
        }
    }

    /** A reference such as {@code latest} matches snapshots of several volumes; the message lists them. */
    public static final class Ambiguous extends RepositoryException {
        public Ambiguous(String message) {
            super(message);
        }
    }

    /** A stored object is damaged: it fails authentication, its name does not match its hash, or it is cut short. */
    public static final class Damaged extends RepositoryException {
        private final String objectName;

        public Damaged(String objectName, String message) {
            super(objectName + ": " + message);
            this.objectName = objectName;
        }

        public String objectName() {
            return objectName;
        }
    }
}
