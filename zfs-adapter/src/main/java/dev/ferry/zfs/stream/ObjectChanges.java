package dev.ferry.zfs.stream;

import dev.ferry.engine.ChangedRanges;
import java.io.IOException;

/**
 * What a send stream says about one object: the byte ranges it writes (WRITE, WRITE_BYREF, WRITE_EMBEDDED)
 * and frees (FREE), whether the object is freed as a whole (FREEOBJECTS), and its last OBJECT record. For a
 * zvol the volume is object 1; for a file in a filesystem dataset, the object whose number is its inode.
 *
 * <p>Memory grows with the number of changed extents (adjacent ones are merged as they arrive in order),
 * never with the size of the object or the object numbers the stream mentions.
 */
public final class ObjectChanges {
    private final long object;
    private final Extents all = new Extents();
    private final Extents written = new Extents();
    private final Extents freed = new Extents();
    private long bytesWritten;
    private long bytesFreed;
    private long writeRecords;
    private long freeRecords;
    private boolean objectFreed;
    private SendRecord.ObjectRecord objectRecord;
    private SendRecord.Begin begin;
    private long endGuid;
    private long streamBytes;

    private ObjectChanges(long object) {
        this.object = object;
    }

    /**
     * Reads a whole stream (one substream, as {@code zfs send [-i BASE] SNAP} writes) and collects what it
     * changes in {@code object}. The stream is checked end to end: a damaged or truncated stream throws.
     */
    public static ObjectChanges collect(SendStreamReader reader, long object) throws IOException {
        ObjectChanges c = new ObjectChanges(object);
        for (SendRecord r; (r = reader.next()) != null; ) {
            c.accept(r);
        }
        if (c.begin == null) {
            throw new SendStreamException("ZFS send stream: empty");
        }
        c.all.flush();
        c.written.flush();
        c.freed.flush();
        c.streamBytes = reader.position();
        return c;
    }

    private void accept(SendRecord r) {
        if (r instanceof SendRecord.Begin b) {
            if (begin == null && b.headerType() == SendRecord.Begin.SUBSTREAM) {
                begin = b;
            }
        } else if (r instanceof SendRecord.End e) {
            endGuid = e.toGuid();
        } else if (r instanceof SendRecord.ObjectRecord o) {
            if (o.object() == object) {
                objectRecord = o;
            }
        } else if (r instanceof SendRecord.FreeObjects f) {
            if (Long.compareUnsigned(object - f.first(), f.count()) < 0) {
                objectFreed = true;
            }
        } else if (r instanceof SendRecord.Write w) {
            written(w.object(), w.offset(), w.logicalSize());
        } else if (r instanceof SendRecord.WriteByRef w) {
            written(w.object(), w.offset(), w.length());
        } else if (r instanceof SendRecord.WriteEmbedded w) {
            written(w.object(), w.offset(), w.length());
        } else if (r instanceof SendRecord.Free f) {
            if (f.object() == object) {
                long len = f.toEnd() || f.offset() + f.length() < 0 ? Long.MAX_VALUE - f.offset() : f.length();
                freeRecords++;
                bytesFreed = saturatedAdd(bytesFreed, len);
                all.add(f.offset(), len);
                freed.add(f.offset(), len);
            }
        } else if (r instanceof SendRecord.Redact d) {
            if (d.object() == object) {
                all.add(d.offset(), d.length()); // data left out: read it from the snapshot, never assume it
            }
        }
        // SPILL (attributes) and OBJECT_RANGE (dnode slots) change no file data
    }

    private void written(long obj, long offset, long length) {
        if (obj != object) {
            return;
        }
        writeRecords++;
        bytesWritten += length;
        all.add(offset, length);
        written.add(offset, length);
    }

    /** Byte ranges as they arrive, adjacent ones merged before they are kept. */
    private static final class Extents {
        final ChangedRanges ranges = new ChangedRanges();
        private long start = -1;
        private long end = -1;

        void add(long offset, long length) {
            if (offset < 0 || length <= 0) {
                return;
            }
            long e = offset + length < 0 ? Long.MAX_VALUE : offset + length;
            if (offset == end) {
                end = e;
                return;
            }
            flush();
            start = offset;
            end = e;
        }

        void flush() {
            if (start >= 0) {
                ranges.add(start, end - start);
                start = end = -1;
            }
        }
    }

    private static long saturatedAdd(long a, long b) {
        long s = a + b;
        return s < 0 ? Long.MAX_VALUE : s;
    }

    /** Ranges written or freed in the object, in bytes of the object (a superset of what changed). */
    public ChangedRanges ranges() {
        return all.ranges;
    }

    /** Ranges with new data (WRITE, WRITE_BYREF, WRITE_EMBEDDED). */
    public ChangedRanges written() {
        return written.ranges;
    }

    /** Ranges freed (FREE): holes now, or past a new end of file; a FREE to the end runs to 2^63-1. */
    public ChangedRanges freed() {
        return freed.ranges;
    }

    /** Whether FREEOBJECTS removes the object: it does not exist in the target snapshot. */
    public boolean objectFreed() {
        return objectFreed;
    }

    /** The object's OBJECT record in the stream, or null when its dnode did not change. */
    public SendRecord.ObjectRecord objectRecord() {
        return objectRecord;
    }

    /** The stream's (first) BEGIN record. */
    public SendRecord.Begin begin() {
        return begin;
    }

    public long bytesWritten() {
        return bytesWritten;
    }

    public long writeRecords() {
        return writeRecords;
    }

    public long freeRecords() {
        return freeRecords;
    }

    public long bytesFreed() {
        return bytesFreed;
    }

    /** Length of the whole stream. */
    public long streamBytes() {
        return streamBytes;
    }

    public long endGuid() {
        return endGuid;
    }
}
