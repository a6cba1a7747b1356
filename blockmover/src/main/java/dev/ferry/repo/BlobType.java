package dev.ferry.repo;

/**
 * What a chunk holds. The type is stored in pack headers and index entries and is bound into each chunk's
 * encryption, so a chunk cannot be passed off as another type.
 */
public enum BlobType {
    /** Volume or file content. */
    DATA(1),
    /** Ferry's own structures: block manifests, directory trees, snapshot pages. */
    METADATA(2);

    private final int code;

    BlobType(int code) {
        this.code = code;
    }

    public int code() {
        return code;
    }

    public static BlobType fromCode(int code) {
        for (BlobType t : values()) {
            if (t.code == code) {
                return t;
            }
        }
        throw new IllegalArgumentException("unknown blob type " + code);
    }
}
