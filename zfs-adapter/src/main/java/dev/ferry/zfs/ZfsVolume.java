package dev.ferry.zfs;

/**
 * What the ZFS engine backs up: a zvol ({@code pool/vol}), or a volume image file inside a filesystem
 * dataset ({@code pool/fs#path/in/fs}, written {@code DATASET --file RELPATH} on the command line). {@code #}
 * cannot occur in a dataset name, so the engine's volume name is unambiguous.
 */
public record ZfsVolume(String dataset, String file) {
    public ZfsVolume {
        Zfs.checkName(dataset);
        if (dataset.contains("@")) {
            throw new IllegalArgumentException("'" + dataset + "' is a snapshot; name the dataset or zvol");
        }
        if (file != null) {
            if (file.isEmpty() || file.startsWith("/") || file.equals("..") || file.startsWith("../")
                    || file.contains("/../") || file.endsWith("/..") || file.indexOf('\0') >= 0) {
                throw new IllegalArgumentException("--file must be a path relative to the dataset's mountpoint "
                        + "that stays inside it, not '" + file + "'");
            }
        }
    }

    /** Parses the engine volume name. */
    public static ZfsVolume parse(String volume) {
        int hash = volume.indexOf('#');
        return hash < 0 ? new ZfsVolume(volume, null) : new ZfsVolume(volume.substring(0, hash), volume.substring(hash + 1));
    }

    public boolean isFile() {
        return file != null;
    }

    /** The engine volume name. */
    public String name() {
        return file == null ? dataset : dataset + "#" + file;
    }

    /** The pool: the first component of the dataset name. */
    public String pool() {
        int slash = dataset.indexOf('/');
        return slash < 0 ? dataset : dataset.substring(0, slash);
    }
}
