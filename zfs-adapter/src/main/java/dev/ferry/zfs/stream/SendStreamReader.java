package dev.ferry.zfs.stream;

import java.io.Closeable;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * Reads a ZFS send stream record by record, in constant memory, verifying its fletcher-4 checksums.
 *
 * <p>A stream is one or more substreams (BEGIN ... END; {@code zfs send -I} concatenates several), or a
 * compound {@code -R} package: a BEGIN of header type 2 with an nvlist payload, an END holding that part's
 * checksum, the substreams, and a final END whose checksum is zero. Each record is a 312-byte header in the
 * sender's byte order (told by the BEGIN magic) followed by a payload whose length follows from the record's
 * own fields (old streams leave {@code drr_payloadlen} zero). The checksum restarts at each BEGIN and runs
 * over every header and payload; records carry it in their last 32 bytes (zero in streams older than ZFS on
 * Linux 0.7, and then skipped), END carries the checksum of everything before it.
 *
 * <p>{@link #next()} returns the next record or null at the clean end of the stream. A record's payload can
 * be read with {@link #readPayload} before the next call; whatever is not read is skipped (and checksummed).
 * Damage, truncation, unknown record types or features are a {@link SendStreamException} naming the offset.
 */
public final class SendStreamReader implements Closeable {
    public static final long MAGIC = 0x2F5BACBACL;
    static final int HEADER = 312;
    static final int CHECKSUM_OFFSET = 280;
    /** Feature flags whose records this reader knows (OpenZFS {@code DMU_BACKUP_FEATURE_*}). */
    static final long KNOWN_FEATURES = 1L | 1L << 1 | 1L << 2 | 1L << 16 | 1L << 17 | 1L << 19 | 1L << 20 | 1L << 21
            | 1L << 22 | 1L << 23 | 1L << 24 | 1L << 25 | 1L << 26 | 1L << 27;
    /** Largest payload accepted: a 16 MiB block (SPA_MAXBLOCKSIZE) and its headers. */
    static final long MAX_BLOCK_PAYLOAD = 16L << 20 | 4096;
    /** Largest nvlist (BEGIN payload) or bonus buffer held in memory. */
    static final int MAX_HELD_PAYLOAD = 64 << 20;

    private enum State { START, IN_SUBSTREAM, AFTER_SUBSTREAM, PACKAGE_HEADER, IN_PACKAGE, DONE }

    private final InputStream in;
    private final byte[] headerBytes = new byte[HEADER];
    private final byte[] skipBuffer = new byte[256 << 10];
    private ByteBuffer header = ByteBuffer.wrap(headerBytes).order(ByteOrder.LITTLE_ENDIAN);
    private ByteOrder order = ByteOrder.LITTLE_ENDIAN;
    private final Fletcher4 checksum = new Fletcher4();
    private State state = State.START;
    private long position;
    private long payloadLeft;
    private long recordOffset;

    public SendStreamReader(InputStream in) {
        this.in = in;
    }

    /** Byte order of the current substream. */
    public ByteOrder order() {
        return order;
    }

    /** Bytes consumed so far. */
    public long position() {
        return position;
    }

    /** The next record, or null when the stream ended cleanly. */
    public SendRecord next() throws IOException {
        skipPayload();
        if (state == State.DONE) {
            return null;
        }
        recordOffset = position;
        int n = in.readNBytes(headerBytes, 0, HEADER);
        position += n;
        if (n == 0 && (state == State.AFTER_SUBSTREAM)) {
            state = State.DONE;
            return null;
        }
        if (n < HEADER) {
            throw damaged(n == 0 ? "the stream ends before its END record (truncated)"
                    : "the stream ends inside a record header (truncated)");
        }
        if (state == State.START || state == State.AFTER_SUBSTREAM || state == State.IN_PACKAGE) {
            detectOrder();
        }
        int type = header.getInt(0);
        int payloadLen = header.getInt(4);
        if (type == SendRecord.BEGIN) {
            checksum.reset();
        }
        long[] before = type == SendRecord.END ? checksum.value() : null; // END holds the sum of what precedes it
        checksum.update(headerBytes, 0, CHECKSUM_OFFSET, order);
        long[] recordSum = {header.getLong(280), header.getLong(288), header.getLong(296), header.getLong(304)};
        if (type != SendRecord.BEGIN && !isZero(recordSum) && !checksum.matches(recordSum)) {
            throw damaged("record checksum mismatch (type " + type + ")");
        }
        checksum.update(headerBytes, CHECKSUM_OFFSET, HEADER - CHECKSUM_OFFSET, order);
        return switch (type) {
            case SendRecord.BEGIN -> begin(payloadLen);
            case SendRecord.END -> end(before);
            default -> {
                if (state != State.IN_SUBSTREAM) {
                    throw damaged("record of type " + type + " outside a BEGIN ... END substream");
                }
                yield body(type, payloadLen);
            }
        };
    }

    private void detectOrder() throws SendStreamException {
        ByteBuffer le = ByteBuffer.wrap(headerBytes).order(ByteOrder.LITTLE_ENDIAN);
        int type = le.getInt(0);
        long magic = le.getLong(8);
        if (magic == MAGIC && type == SendRecord.BEGIN) {
            order = ByteOrder.LITTLE_ENDIAN;
        } else if (Long.reverseBytes(magic) == MAGIC && Integer.reverseBytes(type) == SendRecord.BEGIN) {
            order = ByteOrder.BIG_ENDIAN;
        } else if (state == State.IN_PACKAGE && le.getInt(0) == SendRecord.END
                || state == State.IN_PACKAGE && Integer.reverseBytes(le.getInt(0)) == SendRecord.END) {
            return; // the package's final END, in the package's order
        } else if (state == State.START) {
            throw damaged("not a ZFS send stream (no BEGIN record with magic 0x2f5bacbac)");
        } else {
            throw damaged("expected a BEGIN record after the END of a substream");
        }
        header = ByteBuffer.wrap(headerBytes).order(order);
    }

    private SendRecord.Begin begin(int payloadLen) throws IOException {
        long versionInfo = header.getLong(16);
        int headerType = (int) (versionInfo & 3);
        long features = versionInfo >>> 2 & ((1L << 30) - 1);
        if ((features & ~KNOWN_FEATURES) != 0) {
            throw damaged(String.format("the stream uses send features this reader does not know: 0x%x",
                    features & ~KNOWN_FEATURES));
        }
        if (headerType != SendRecord.Begin.SUBSTREAM && headerType != SendRecord.Begin.COMPOUND) {
            throw damaged("unknown stream header type " + headerType);
        }
        if (state == State.IN_SUBSTREAM || state == State.PACKAGE_HEADER) {
            throw damaged("BEGIN record inside a substream");
        }
        if (headerType == SendRecord.Begin.COMPOUND) {
            if (state != State.START) {
                throw damaged("a compound (-R) header in the middle of a stream");
            }
            state = State.PACKAGE_HEADER;
            inPackage = true;
        } else {
            state = State.IN_SUBSTREAM;
        }
        int nameEnd = 56;
        while (nameEnd < 56 + 256 && headerBytes[nameEnd] != 0) {
            nameEnd++;
        }
        String name = new String(headerBytes, 56, nameEnd - 56, StandardCharsets.UTF_8);
        byte[] payload = readHeld(payloadLen & 0xFFFFFFFFL, "BEGIN nvlist");
        return new SendRecord.Begin(recordOffset, versionInfo, header.getLong(24), header.getInt(32),
                header.getInt(36), header.getLong(40), header.getLong(48), name, payload);
    }

    private SendRecord.End end(long[] before) throws IOException {
        long[] sum = {header.getLong(8), header.getLong(16), header.getLong(24), header.getLong(32)};
        long toGuid = header.getLong(40);
        switch (state) {
            case IN_SUBSTREAM -> state = stateAfterSubstream();
            case PACKAGE_HEADER -> state = State.IN_PACKAGE;
            case IN_PACKAGE -> {
                if (!isZero(sum)) {
                    throw damaged("the END of a compound stream must have a zero checksum");
                }
                state = State.DONE;
                return new SendRecord.End(recordOffset, toGuid);
            }
            default -> throw damaged("END record without a BEGIN");
        }
        if (!java.util.Arrays.equals(sum, before)) {
            throw damaged("stream checksum mismatch at END: the stream is damaged");
        }
        return new SendRecord.End(recordOffset, toGuid);
    }

    private boolean inPackage;

    private State stateAfterSubstream() {
        return inPackage ? State.IN_PACKAGE : State.AFTER_SUBSTREAM;
    }

    private SendRecord body(int type, int payloadLen) throws IOException {
        ByteBuffer h = header;
        SendRecord r;
        long payload;
        switch (type) {
            case SendRecord.OBJECT -> {
                int bonusLen = h.getInt(28);
                int rawBonusLen = h.getInt(36);
                payload = rawBonusLen != 0 ? rawBonusLen & 0xFFFFFFFFL : (bonusLen + 7L) & ~7L;
                checkDeclared(payloadLen, payload);
                byte[] bonus = readHeld(payload, "OBJECT bonus buffer");
                r = new SendRecord.ObjectRecord(recordOffset, h.getLong(8), h.getInt(16), h.getInt(20), h.getInt(24),
                        bonusLen, h.get(34) & 0xFF, h.get(35) & 0xFF, bonus);
                return r;
            }
            case SendRecord.FREEOBJECTS -> {
                payload = 0;
                r = new SendRecord.FreeObjects(recordOffset, h.getLong(8), h.getLong(16));
            }
            case SendRecord.WRITE -> {
                int compression = h.get(50) & 0xFF;
                long logical = h.getLong(32);
                payload = compression != 0 ? h.getLong(96) : logical;
                r = new SendRecord.Write(recordOffset, h.getLong(8), h.getInt(16), h.getLong(24), logical, compression,
                        payload);
            }
            case SendRecord.FREE -> {
                payload = 0;
                r = new SendRecord.Free(recordOffset, h.getLong(8), h.getLong(16), h.getLong(24));
            }
            case SendRecord.WRITE_BYREF -> {
                payload = 0;
                r = new SendRecord.WriteByRef(recordOffset, h.getLong(8), h.getLong(16), h.getLong(24), h.getLong(40),
                        h.getLong(48), h.getLong(56));
            }
            case SendRecord.SPILL -> {
                long length = h.getLong(16);
                long compressed = h.getLong(40);
                payload = compressed != 0 ? compressed : length;
                r = new SendRecord.Spill(recordOffset, h.getLong(8), length, payload);
            }
            case SendRecord.WRITE_EMBEDDED -> {
                int psize = h.getInt(52);
                payload = ((psize & 0xFFFFFFFFL) + 7) & ~7L;
                r = new SendRecord.WriteEmbedded(recordOffset, h.getLong(8), h.getLong(16), h.getLong(24),
                        h.get(40) & 0xFF, h.getInt(48), psize);
            }
            case SendRecord.OBJECT_RANGE -> {
                payload = 0;
                r = new SendRecord.ObjectRange(recordOffset, h.getLong(8), h.getLong(16));
            }
            case SendRecord.REDACT -> {
                payload = 0;
                r = new SendRecord.Redact(recordOffset, h.getLong(8), h.getLong(16), h.getLong(24));
            }
            default -> throw damaged("unknown record type " + type);
        }
        checkDeclared(payloadLen, payload);
        if (payload < 0 || payload > MAX_BLOCK_PAYLOAD || (payload & 3) != 0) {
            throw damaged("record of type " + type + " announces an impossible payload of " + payload + " bytes");
        }
        payloadLeft = payload;
        return r;
    }

    private void checkDeclared(int declared, long computed) throws SendStreamException {
        if (declared != 0 && (declared & 0xFFFFFFFFL) != computed) {
            throw damaged("payload length " + (declared & 0xFFFFFFFFL) + " disagrees with the record's fields ("
                    + computed + ")");
        }
    }

    /** Reads up to {@code len} bytes of the current record's payload (a multiple of 4 unless it is the rest). */
    public int readPayload(byte[] dst, int off, int len) throws IOException {
        if (payloadLeft == 0) {
            return -1;
        }
        int n = (int) Math.min(len, payloadLeft);
        if (n < payloadLeft) {
            n &= ~3;
            if (n == 0) {
                throw new IllegalArgumentException("read payloads in multiples of 4 bytes");
            }
        }
        readFully(dst, off, n);
        checksum.update(dst, off, n, order);
        payloadLeft -= n;
        return n;
    }

    /** Bytes of the current record's payload not yet read. */
    public long payloadRemaining() {
        return payloadLeft;
    }

    private void skipPayload() throws IOException {
        while (payloadLeft > 0) {
            readPayload(skipBuffer, 0, skipBuffer.length);
        }
    }

    private byte[] readHeld(long len, String what) throws IOException {
        if (len > MAX_HELD_PAYLOAD || (len & 3) != 0) {
            throw damaged(what + " of " + len + " bytes is not possible");
        }
        byte[] b = new byte[(int) len];
        readFully(b, 0, b.length);
        checksum.update(b, 0, b.length, order);
        return b;
    }

    private void readFully(byte[] b, int off, int len) throws IOException {
        int n = in.readNBytes(b, off, len);
        position += n;
        if (n < len) {
            throw damaged("the stream ends inside a record's payload (truncated)");
        }
    }

    private SendStreamException damaged(String what) {
        return new SendStreamException("ZFS send stream, record at byte " + recordOffset + ": " + what);
    }

    private static boolean isZero(long[] w) {
        return w[0] == 0 && w[1] == 0 && w[2] == 0 && w[3] == 0;
    }

    @Override
    public void close() throws IOException {
        in.close();
    }
}
