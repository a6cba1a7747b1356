package dev.ferry.zfs.stream;

/**
 * One record of a ZFS send stream ({@code dmu_replay_record_t} of OpenZFS {@code zfs_ioctl.h}), decoded in
 * the stream's byte order. Payloads (WRITE data, SPILL blocks) are not held here: {@link SendStreamReader}
 * skips them unless its caller reads them; the small ones (BEGIN's nvlist, OBJECT's bonus buffer) are.
 */
public sealed interface SendRecord {
    /** Record type numbers of the stream format. */
    int BEGIN = 0, OBJECT = 1, FREEOBJECTS = 2, WRITE = 3, FREE = 4, END = 5, WRITE_BYREF = 6, SPILL = 7,
            WRITE_EMBEDDED = 8, OBJECT_RANGE = 9, REDACT = 10;

    /** Offset of the record's header in the whole stream. */
    long streamOffset();

    /**
     * Start of a stream or substream.
     *
     * @param versionInfo header type in bits 0-1 (1 substream, 2 compound {@code -R} package), features above
     * @param objsetType  DMU objset type (2 = ZFS filesystem, 3 = zvol)
     * @param payload     the packed nvlist that follows (properties, resume and redaction data), or empty
     */
    record Begin(long streamOffset, long versionInfo, long creationTime, int objsetType, int flags, long toGuid,
                 long fromGuid, String toName, byte[] payload) implements SendRecord {
        public static final int SUBSTREAM = 1, COMPOUND = 2;

        public int headerType() {
            return (int) (versionInfo & 3);
        }

        public long features() {
            return versionInfo >>> 2;
        }

        /** Whether this stream is an incremental (it names the snapshot it applies to). */
        public boolean incremental() {
            return fromGuid != 0;
        }
    }

    /** End of a stream or substream; its checksum has been verified by the reader. */
    record End(long streamOffset, long toGuid) implements SendRecord {
    }

    /**
     * An object's dnode: type, block size and bonus buffer. Sent for every object of a changed dnode block,
     * changed or not.
     */
    record ObjectRecord(long streamOffset, long object, int type, int bonusType, int blockSize, int bonusLength,
                        int dnodeSlots, int flags, byte[] bonus) implements SendRecord {
    }

    /** Objects {@code first .. first+count-1} do not exist in the target snapshot (count can be ~10^14). */
    record FreeObjects(long streamOffset, long first, long count) implements SendRecord {
    }

    /** New data for {@code logicalSize} bytes of {@code object} at {@code offset}; payload of {@code payloadSize}. */
    record Write(long streamOffset, long object, int type, long offset, long logicalSize, int compression,
                 long payloadSize) implements SendRecord {
    }

    /** {@code length} bytes of {@code object} at {@code offset} read as zeros; length -1 means to the end. */
    record Free(long streamOffset, long object, long offset, long length) implements SendRecord {
        public boolean toEnd() {
            return length == -1;
        }
    }

    /** Data written as a copy of a block sent earlier (deduplicated streams). */
    record WriteByRef(long streamOffset, long object, long offset, long length, long refGuid, long refObject,
                      long refOffset) implements SendRecord {
    }

    /** An object's spill block (extra attributes); not file data. */
    record Spill(long streamOffset, long object, long length, long payloadSize) implements SendRecord {
    }

    /** A small block whose data lives in its block pointer; {@code length} logical bytes at {@code offset}. */
    record WriteEmbedded(long streamOffset, long object, long offset, long length, int compression, int lsize,
                         int psize) implements SendRecord {
    }

    /** A range of dnode slots, sent before OBJECT records in raw (encrypted) streams. */
    record ObjectRange(long streamOffset, long firstObject, long slots) implements SendRecord {
    }

    /** Data left out of a redacted stream: the receiver marks it as missing. */
    record Redact(long streamOffset, long object, long offset, long length) implements SendRecord {
    }
}
