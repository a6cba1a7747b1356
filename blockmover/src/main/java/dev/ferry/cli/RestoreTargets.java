package dev.ferry.cli;

import dev.ferry.store.Store;
import java.io.IOException;
import java.nio.file.Path;

/**
 * The check every restore makes before it writes anything: a restore never writes into the repository it
 * reads, whatever {@code --force} says (a block restore into {@code REPO/config} would replace the repository's
 * config with volume data).
 */
public final class RestoreTargets {
    private RestoreTargets() {
    }

    /**
     * Refuses a {@code target} inside the store's directory (symbolic links resolved) or a hard link to one of
     * its files; with {@code directory} (a files restore), also a target that holds the repository, which the
     * restore would write around or over.
     */
    public static void check(Store store, Path target, boolean directory) throws IOException {
        if (store.contains(target)) {
            throw new IllegalArgumentException("refusing to restore into " + target + ": it lies inside the repository "
                    + store.location() + " (symbolic and hard links resolved); a restore never writes into its own "
                    + "repository");
        }
        if (directory && store.isInside(target)) {
            throw new IllegalArgumentException("refusing to restore into " + target + ": it holds the repository "
                    + store.location() + ", which a files restore would write around or over; restore into a "
                    + "directory outside the repository");
        }
    }
}
