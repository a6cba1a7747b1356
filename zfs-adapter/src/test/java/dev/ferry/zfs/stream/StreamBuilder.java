package dev.ferry.zfs.stream;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Writes send streams as a modern OpenZFS sender does (per-record checksums, payload lengths set) or as an
 * old one does (neither), in either byte order, for record types and layouts zfs-fuse never produces.
 */
final class StreamBuilder {
    private final ByteOrder order;
    private final boolean recordChecksums;
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private final Fletcher4 sum = new Fletcher4();

    StreamBuilder(ByteOrder order, boolean recordChecksums) {
        this.order = order;
        this.recordChecksums = recordChecksums;
    }

    private ByteBuffer header(int type, int payloadLen) {
        ByteBuffer h = ByteBuffer.allocate(SendStreamReader.HEADER).order(order);
        h.putInt(0, type);
        h.putInt(4, recordChecksums ? payloadLen : 0);
        return h;
    }

    private StreamBuilder emit(ByteBuffer h, byte[] payload) {
        int type = h.getInt(0);
        if (type == SendRecord.BEGIN) {
            sum.reset();
        }
        if (type == SendRecord.END) {
            long[] v = sum.value();
            for (int i = 0; i < 4; i++) {
                h.putLong(8 + 8 * i, v[i]);
            }
        }
        sum.update(h.array(), 0, SendStreamReader.CHECKSUM_OFFSET, order);
        if (recordChecksums && type != SendRecord.BEGIN) {
            long[] v = sum.value();
            for (int i = 0; i < 4; i++) {
                h.putLong(SendStreamReader.CHECKSUM_OFFSET + 8 * i, v[i]);
            }
        }
        sum.update(h.array(), SendStreamReader.CHECKSUM_OFFSET, SendStreamReader.HEADER - SendStreamReader.CHECKSUM_OFFSET, order);
        out.writeBytes(h.array());
        if (payload != null && payload.length > 0) {
            sum.update(payload, 0, payload.length, order);
            out.writeBytes(payload);
        }
        return this;
    }

    StreamBuilder begin(int headerType, long features, long toGuid, long fromGuid, String name, byte[] nvlist) {
        ByteBuffer h = header(SendRecord.BEGIN, nvlist.length);
        h.putInt(4, nvlist.length); // BEGIN always declares its payload
        h.putLong(8, SendStreamReader.MAGIC);
        h.putLong(16, features << 2 | headerType);
        h.putLong(24, 1_700_000_000L);
        h.putInt(32, 2);
        h.putLong(40, toGuid);
        h.putLong(48, fromGuid);
        byte[] n = name.getBytes();
        h.put(56, n, 0, n.length);
        return emit(h, nvlist);
    }

    StreamBuilder object(long object, int blockSize, byte[] bonus) {
        int padded = (bonus.length + 7) & ~7;
        ByteBuffer h = header(SendRecord.OBJECT, padded);
        h.putLong(8, object);
        h.putInt(16, 19);
        h.putInt(20, 44);
        h.putInt(24, blockSize);
        h.putInt(28, bonus.length);
        return emit(h, java.util.Arrays.copyOf(bonus, padded));
    }

    StreamBuilder freeObjects(long first, long count) {
        ByteBuffer h = header(SendRecord.FREEOBJECTS, 0);
        h.putLong(8, first);
        h.putLong(16, count);
        return emit(h, null);
    }

    /** A WRITE; with {@code compressed} non-null, a compressed-send record whose payload is that. */
    StreamBuilder write(long object, long offset, int logical, byte[] data, byte[] compressed) {
        byte[] payload = compressed != null ? compressed : data;
        ByteBuffer h = header(SendRecord.WRITE, payload.length);
        h.putLong(8, object);
        h.putInt(16, 19);
        h.putLong(24, offset);
        h.putLong(32, logical);
        if (compressed != null) {
            h.put(50, (byte) 15); // lz4
            h.putLong(96, compressed.length);
        }
        return emit(h, payload);
    }

    StreamBuilder free(long object, long offset, long length) {
        ByteBuffer h = header(SendRecord.FREE, 0);
        h.putLong(8, object);
        h.putLong(16, offset);
        h.putLong(24, length);
        return emit(h, null);
    }

    StreamBuilder embedded(long object, long offset, long length, int psize) {
        int padded = (psize + 7) & ~7;
        ByteBuffer h = header(SendRecord.WRITE_EMBEDDED, padded);
        h.putLong(8, object);
        h.putLong(16, offset);
        h.putLong(24, length);
        h.putInt(48, (int) length);
        h.putInt(52, psize);
        return emit(h, new byte[padded]);
    }

    StreamBuilder spill(long object, int length) {
        ByteBuffer h = header(SendRecord.SPILL, length);
        h.putLong(8, object);
        h.putLong(16, length);
        return emit(h, new byte[length]);
    }

    StreamBuilder byRef(long object, long offset, long length) {
        ByteBuffer h = header(SendRecord.WRITE_BYREF, 0);
        h.putLong(8, object);
        h.putLong(16, offset);
        h.putLong(24, length);
        return emit(h, null);
    }

    StreamBuilder end(long toGuid) {
        ByteBuffer h = header(SendRecord.END, 0);
        h.putLong(40, toGuid);
        return emit(h, null);
    }

    /** The final END of a compound package: a zero checksum. */
    StreamBuilder packageEnd() {
        ByteBuffer h = header(SendRecord.END, 0);
        out.writeBytes(h.array());
        return this;
    }

    StreamBuilder raw(int type) {
        return emit(header(type, 0), null);
    }

    byte[] bytes() {
        return out.toByteArray();
    }
}
