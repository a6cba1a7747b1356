package dev.ferry.bench;

import java.io.IOException;
import java.io.PrintStream;
import java.io.Writer;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

/**
 * Deterministic synthetic volume images for the end-to-end benchmark ({@code bench/e2e-block}).
 *
 * <p>An image is a sequence of 4 MiB regions in a seeded pseudo-random order: 25% zeros, 25% random bytes
 * (incompressible) and 50% log-like text (timestamps, levels, request lines, words from a fixed vocabulary, ids)
 * that zstd level 3 compresses about 3-5x. Every random and text region comes from its own seeded generator, so
 * no 1 MiB block repeats and deduplication only finds the zero regions. The same size and seed always give the
 * same bytes.
 *
 * <p>A change overwrites a given amount of the image in scattered extents of 64 KiB to 1 MiB (4 KiB aligned,
 * 4 KiB multiples) with new random or text data, and writes the list of changed extents, one {@code OFFSET LENGTH}
 * line (decimal bytes) per extent, sorted by offset. The extent lengths depend only on the seed and the amount,
 * so the same amount on a larger image changes the same number of extents of the same lengths, spread wider.
 *
 * <pre>
 * java -cp bench/target/benchmarks.jar dev.ferry.bench.VolumeImage [generate] OUT SIZE SEED
 * java -cp bench/target/benchmarks.jar dev.ferry.bench.VolumeImage change IMAGE AMOUNT SEED CHANGE_LIST
 * java -cp bench/target/benchmarks.jar dev.ferry.bench.VolumeImage sample zero|random|text OUT SIZE SEED
 * </pre>
 * SIZE and AMOUNT take the suffixes K, M, G, T (powers of 1024); AMOUNT may also be a percentage of the image
 * size, such as {@code 1%}.
 */
public final class VolumeImage {
    static final int REGION = 4 << 20;
    static final int ALIGN = 4 << 10;
    static final int MIN_EXTENT = 64 << 10;
    static final int MAX_EXTENT = 1 << 20;

    enum Kind { ZERO, RANDOM, TEXT }

    private VolumeImage() {
    }

    public static void main(String[] args) throws IOException {
        try {
            if (args.length == 4 && args[0].equals("generate")) {
                generate(Path.of(args[1]), parseSize(args[2]), Long.parseLong(args[3]));
            } else if (args.length == 3) {
                generate(Path.of(args[0]), parseSize(args[1]), Long.parseLong(args[2]));
            } else if (args.length == 5 && args[0].equals("change")) {
                Path image = Path.of(args[1]);
                long size = Files.size(image);
                long amount = parseAmount(args[2], size);
                change(image, amount, Long.parseLong(args[3]), Path.of(args[4]));
            } else if (args.length == 5 && args[0].equals("sample")) {
                Kind kind = Kind.valueOf(args[1].toUpperCase(Locale.ROOT));
                sample(kind, Path.of(args[2]), parseSize(args[3]), Long.parseLong(args[4]));
            } else {
                usage(System.err);
                System.exit(2);
            }
        } catch (IllegalArgumentException e) {
            System.err.println("VolumeImage: " + e.getMessage());
            System.exit(2);
        }
    }

    private static void usage(PrintStream out) {
        out.println("usage: VolumeImage [generate] OUT SIZE SEED");
        out.println("       VolumeImage change IMAGE AMOUNT SEED CHANGE_LIST");
        out.println("       VolumeImage sample zero|random|text OUT SIZE SEED");
        out.println("SIZE, AMOUNT: bytes with an optional K/M/G/T suffix (powers of 1024); AMOUNT may be N% of the image");
    }

    /** Writes an image of {@code size} bytes: regions of all three kinds, interleaved in a seeded order. */
    static void generate(Path out, long size, long seed) throws IOException {
        Kind[] kinds = regionKinds(size, seed);
        write(out, size, i -> kinds[i], seed);
        long[] count = new long[3];
        for (Kind k : kinds) {
            count[k.ordinal()]++;
        }
        System.err.printf(Locale.ROOT, "VolumeImage: %s: %d bytes, %d regions of 4 MiB: %d zero, %d random, %d text%n",
                out, size, kinds.length, count[0], count[1], count[2]);
    }

    /** Writes an image made of one kind of region only, to check that kind's compressibility. */
    static void sample(Kind kind, Path out, long size, long seed) throws IOException {
        write(out, size, i -> kind, seed);
    }

    /** The kind of each 4 MiB region: a quarter zero, a quarter random, the rest text, shuffled with the seed. */
    static Kind[] regionKinds(long size, long seed) {
        long n = (size + REGION - 1) / REGION;
        if (n > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("image size " + size + " is too large");
        }
        Kind[] kinds = new Kind[(int) n];
        int quarter = (int) Math.round(n / 4.0);
        for (int i = 0; i < kinds.length; i++) {
            kinds[i] = i < quarter ? Kind.ZERO : i < 2 * quarter ? Kind.RANDOM : Kind.TEXT;
        }
        SplittableRandom rnd = new SplittableRandom(mix(seed, 0x5EED));
        for (int i = kinds.length - 1; i > 0; i--) {
            int j = rnd.nextInt(i + 1);
            Kind t = kinds[i];
            kinds[i] = kinds[j];
            kinds[j] = t;
        }
        return kinds;
    }

    private interface KindOf {
        Kind of(int region);
    }

    /** Generates regions in parallel, each from its own seed, and writes them at their offsets. */
    private static void write(Path out, long size, KindOf kinds, long seed) throws IOException {
        if (size < 0) {
            throw new IllegalArgumentException("negative size " + size);
        }
        int regions = (int) ((size + REGION - 1) / REGION);
        try (FileChannel ch = FileChannel.open(out, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            ThreadLocal<byte[]> buffers = ThreadLocal.withInitial(() -> new byte[REGION]);
            IntStream.range(0, regions).parallel().forEach(i -> {
                long off = (long) i * REGION;
                int len = (int) Math.min(REGION, size - off);
                byte[] buf = buffers.get();
                fill(kinds.of(i), buf, len, mix(seed, i));
                try {
                    writeFully(ch, ByteBuffer.wrap(buf, 0, len), off);
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
        } catch (java.io.UncheckedIOException e) {
            throw e.getCause();
        }
    }

    private static void writeFully(FileChannel ch, ByteBuffer b, long off) throws IOException {
        while (b.hasRemaining()) {
            off += ch.write(b, off);
        }
    }

    static void fill(Kind kind, byte[] buf, int len, long seed) {
        switch (kind) {
            case ZERO -> java.util.Arrays.fill(buf, 0, len, (byte) 0);
            case RANDOM -> randomBytes(buf, len, seed);
            case TEXT -> new TextGen(buf, len, seed).fill();
            default -> throw new IllegalStateException();
        }
    }

    private static final VarHandle LONGS = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);

    static void randomBytes(byte[] buf, int len, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        int i = 0;
        for (; i + 8 <= len; i += 8) {
            LONGS.set(buf, i, rnd.nextLong());
        }
        for (long r = rnd.nextLong(); i < len; i++, r >>>= 8) {
            buf[i] = (byte) r;
        }
    }

    /** One changed extent of an image. */
    record Extent(long offset, int length, Kind kind) {
    }

    /**
     * The extents a change of {@code amount} bytes makes on an image of {@code size} bytes. Lengths (and the
     * kind of the new data) come from the seed and the amount only; each extent lies at a seeded 4 KiB aligned
     * position inside its own equal slice of the image, so extents never overlap and spread over the whole image.
     */
    static List<Extent> changeExtents(long size, long amount, long seed) {
        SplittableRandom lengths = new SplittableRandom(mix(seed, 1));
        SplittableRandom kinds = new SplittableRandom(mix(seed, 3));
        List<Integer> lens = new ArrayList<>();
        List<Kind> ks = new ArrayList<>();
        long total = 0;
        int steps = (MAX_EXTENT - MIN_EXTENT) / ALIGN + 1;
        while (total < amount) {
            int len = MIN_EXTENT + ALIGN * lengths.nextInt(steps);
            if (total + len >= amount) {
                len = (int) ((amount - total + ALIGN - 1) / ALIGN * ALIGN);
            }
            lens.add(len);
            ks.add(kinds.nextBoolean() ? Kind.RANDOM : Kind.TEXT);
            total += len;
        }
        List<Extent> out = new ArrayList<>(lens.size());
        if (lens.isEmpty()) {
            return out;
        }
        long slot = size / lens.size() / ALIGN * ALIGN;
        SplittableRandom positions = new SplittableRandom(mix(seed, 2));
        for (int i = 0; i < lens.size(); i++) {
            int len = lens.get(i);
            if (slot < len) {
                throw new IllegalArgumentException("an image of " + size + " bytes is too small for a change of "
                        + amount + " bytes in " + lens.size() + " extents");
            }
            long within = positions.nextLong(slot - len + 1) / ALIGN * ALIGN;
            out.add(new Extent(i * slot + within, len, ks.get(i)));
        }
        return out;
    }

    /** Overwrites the change's extents in place and writes the change list. */
    static void change(Path image, long amount, long seed, Path changeList) throws IOException {
        long size = Files.size(image);
        List<Extent> extents = changeExtents(size, amount, seed);
        byte[] buf = new byte[MAX_EXTENT];
        long total = 0;
        try (FileChannel ch = FileChannel.open(image, StandardOpenOption.WRITE);
             Writer list = Files.newBufferedWriter(changeList, StandardCharsets.US_ASCII)) {
            for (int i = 0; i < extents.size(); i++) {
                Extent e = extents.get(i);
                // a seed space apart from the regions' (region indexes are far below 2^40)
                fill(e.kind(), buf, e.length(), mix(seed, (1L << 40) + i));
                writeFully(ch, ByteBuffer.wrap(buf, 0, e.length()), e.offset());
                list.write(e.offset() + " " + e.length() + "\n");
                total += e.length();
            }
        }
        System.err.printf(Locale.ROOT, "VolumeImage: changed %d bytes (%.3f%% of %d) in %d extents of %s; list in %s%n",
                total, 100.0 * total / size, size, extents.size(), image, changeList);
    }

    /** SplitMix64's finalizer over seed and index: independent streams for regions and extents. */
    static long mix(long seed, long index) {
        long z = seed * 0x9E3779B97F4A7C15L + index * 0xBF58476D1CE4E5B9L + 0x94D049BB133111EBL;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    static long parseSize(String s) {
        String t = s.trim().toUpperCase(Locale.ROOT);
        if (t.endsWith("IB")) {
            t = t.substring(0, t.length() - 2);
        } else if (t.endsWith("B") && t.length() > 1 && Character.isLetter(t.charAt(t.length() - 2))) {
            t = t.substring(0, t.length() - 1);
        }
        long unit = 1;
        if (!t.isEmpty()) {
            switch (t.charAt(t.length() - 1)) {
                case 'K' -> unit = 1L << 10;
                case 'M' -> unit = 1L << 20;
                case 'G' -> unit = 1L << 30;
                case 'T' -> unit = 1L << 40;
                default -> {
                }
            }
        }
        if (unit != 1) {
            t = t.substring(0, t.length() - 1);
        }
        try {
            return Math.multiplyExact(Long.parseLong(t), unit);
        } catch (NumberFormatException | ArithmeticException e) {
            throw new IllegalArgumentException("not a size: " + s);
        }
    }

    static long parseAmount(String s, long imageSize) {
        if (s.endsWith("%")) {
            double pct;
            try {
                pct = Double.parseDouble(s.substring(0, s.length() - 1));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("not a percentage: " + s);
            }
            return (long) (imageSize * pct / 100.0);
        }
        return parseSize(s);
    }

    /**
     * Log-like text written straight into a byte array: a timestamped line per event with a level, thread,
     * component and one of a few message shapes (HTTP request, words from a vocabulary, job progress), with
     * numbers and ids drawn from the seeded generator.
     */
    static final class TextGen {
        private static final byte[][] LEVELS = ascii("INFO ", "DEBUG", "WARN ", "ERROR");
        private static final byte[][] COMPONENTS = ascii("api.orders", "api.users", "api.search", "db.pool",
                "cache.redis", "auth.session", "billing.invoice", "queue.consumer", "storage.blob", "mail.sender",
                "sched.cron", "report.export", "gateway.proxy", "metrics.push", "index.builder", "sync.worker");
        private static final byte[][] METHODS = ascii("GET", "GET", "GET", "POST", "PUT", "DELETE");
        private static final byte[][] PATHS = ascii("/api/v2/orders/", "/api/v2/users/", "/api/v2/items/",
                "/api/v2/search?q=", "/api/v1/invoices/", "/static/img/", "/api/v2/carts/", "/healthz?probe=");
        private static final byte[][] USERS = ascii("alice", "bob", "carol", "dave", "erin", "frank", "grace",
                "heidi", "ivan", "judy", "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor",
                "walter", "yolanda", "zoe", "ines", "mario", "chen", "priya", "omar", "lena", "tomas", "ana", "kofi",
                "sven", "noor");
        private static final byte[][] WORDS = ascii("the", "request", "cache", "refresh", "for", "tenant", "completed",
                "failed", "retrying", "after", "timeout", "connection", "pool", "exhausted", "waiting", "lock",
                "acquired", "released", "session", "expired", "token", "renewed", "invoice", "generated", "sent",
                "queue", "depth", "above", "threshold", "below", "scheduled", "job", "started", "finished", "skipped",
                "because", "previous", "run", "still", "active", "upstream", "returned", "unexpected", "status",
                "payload", "too", "large", "rejected", "accepted", "batch", "of", "records", "written", "to",
                "partition", "replica", "lagging", "behind", "leader", "by", "offsets", "snapshot", "uploaded",
                "checksum", "mismatch", "on", "block", "volume", "mounted", "unmounted", "disk", "usage", "high",
                "memory", "pressure", "garbage", "collection", "paused", "threads", "worker", "idle", "busy", "shard",
                "rebalanced", "node", "joined", "left", "cluster", "config", "reloaded", "from", "file", "missing",
                "key", "default", "used", "user", "logged", "in", "out", "password", "changed", "email", "verified",
                "north", "south", "east", "west", "eu", "us", "asia", "primary", "secondary", "backup", "restore",
                "index", "rebuilt", "query", "slow", "plan", "cached", "evicted", "entries", "with", "and", "not",
                "new", "old", "version", "deployed", "rollback", "triggered", "alert", "cleared", "raised", "metric",
                "exported", "dropped", "late", "sample", "window", "closed", "opened", "stream", "reset", "peer",
                "handshake", "certificate", "valid", "until", "rotated", "secret", "vault", "read", "denied",
                "granted", "permission", "role", "admin", "viewer", "editor", "report", "export", "csv", "json",
                "parsed", "line", "column", "error", "warning", "notice", "ignored", "field", "value", "empty",
                "null", "duplicate", "merged", "split", "moved", "deleted", "created", "updated", "order", "item",
                "cart", "checkout", "payment", "authorized", "captured", "refunded", "declined", "shipment",
                "dispatched", "delivered", "returned", "warehouse", "stock", "reserved", "low", "customer",
                "address", "validated");

        private static final byte[] HEX = bytes("0123456789abcdef");
        /** "00" to "99", two bytes each. */
        private static final byte[] PAIRS = new byte[200];

        static {
            for (int i = 0; i < 100; i++) {
                PAIRS[2 * i] = (byte) ('0' + i / 10);
                PAIRS[2 * i + 1] = (byte) ('0' + i % 10);
            }
        }

        private static final byte[] S_WORKER = bytes(" [worker-");
        private static final byte[] S_BYTES = bytes(" bytes=");
        private static final byte[] S_ELAPSED_MS = bytes(" elapsed_ms=");
        private static final byte[] S_MS = bytes(" ms=");
        private static final byte[] S_ROWS = bytes(" rows=");
        private static final byte[] S_STATUS = bytes(" status=");
        private static final byte[] S_STEP = bytes(" step=");
        private static final byte[] S_TRACE = bytes(" trace=");
        private static final byte[] S_USER = bytes(" user=");
        private static final byte[] S_COLON = bytes(": ");
        private static final byte[] S_BRACKET = bytes("] ");
        private static final byte[] S_JOB = bytes("job=");

        private final byte[] buf;
        private final int len;
        private long state;
        private final byte[] line = new byte[512];
        private int pos;
        private int lp;
        private LocalDate day;
        private byte[] date;
        private long msOfDay;

        TextGen(byte[] buf, int len, long seed) {
            this.buf = buf;
            this.len = len;
            this.state = seed;
            this.day = LocalDate.of(2026, 1, 1).plusDays(below(365));
            this.date = (day.toString() + " ").getBytes(StandardCharsets.US_ASCII);
            this.msOfDay = below(86_400_000);
        }

        void fill() {
            while (pos < len) {
                lp = 0;
                line();
                int n = Math.min(lp, len - pos);
                System.arraycopy(line, 0, buf, pos, n);
                pos += n;
            }
        }

        /** Writes one line into {@link #line}. */
        private void line() {
            msOfDay += below(40);
            if (msOfDay >= 86_400_000L) {
                msOfDay -= 86_400_000L;
                day = day.plusDays(1);
                date = (day.toString() + " ").getBytes(StandardCharsets.US_ASCII);
            }
            put(date);
            int s = (int) (msOfDay / 1000);
            digits(s / 3600, 2);
            put((byte) ':');
            digits(s / 60 % 60, 2);
            put((byte) ':');
            digits(s % 60, 2);
            put((byte) '.');
            digits((int) (msOfDay % 1000), 3);
            put((byte) ' ');
            int l = below(100);
            put(LEVELS[l < 80 ? 0 : l < 90 ? 1 : l < 97 ? 2 : 3]);
            put(S_WORKER);
            number(below(16));
            put(S_BRACKET);
            put(pick(COMPONENTS));
            put(S_COLON);
            switch (below(3)) {
                case 0 -> {
                    put(pick(METHODS));
                    put((byte) ' ');
                    put(pick(PATHS));
                    number(below(100_000));
                    put(S_STATUS);
                    int st = below(100);
                    number(st < 85 ? 200 : st < 92 ? 404 : st < 97 ? 304 : 500);
                    put(S_MS);
                    number(below(200));
                    put(S_BYTES);
                    number(below(20_000));
                    put(S_USER);
                    put(pick(USERS));
                }
                case 1 -> {
                    int n = 3 + below(8);
                    for (int i = 0; i < n; i++) {
                        if (i > 0) {
                            put((byte) ' ');
                        }
                        put(pick(WORDS));
                    }
                }
                default -> {
                    put(S_JOB);
                    put(pick(WORDS));
                    put((byte) '-');
                    number(below(1000));
                    put(S_STEP);
                    int total = 1 + below(20);
                    number(1 + below(total));
                    put((byte) '/');
                    number(total);
                    put(S_ROWS);
                    number(below(1_000_000));
                    put(S_ELAPSED_MS);
                    number(below(5000));
                }
            }
            if (below(4) == 0) {
                put(S_TRACE);
                hex(next32());
            }
            put((byte) '\n');
        }

        /**
         * A pseudo-random int in {@code [0, bound)}: wyrand's step, scaled by multiplication rather than the
         * modulo of {@link SplittableRandom#nextInt(int)}, whose division dominated the cost of a line.
         */
        private int below(int bound) {
            return (int) (((next32() & 0xFFFFFFFFL) * bound) >>> 32);
        }

        private int next32() {
            long s = state += 0xA0761D6478BD642FL;
            long t = s ^ 0xE7037ED1A0B428DBL;
            return (int) ((Math.multiplyHigh(s, t) ^ (s * t)) >>> 32);
        }

        private byte[] pick(byte[][] options) {
            return options[below(options.length)];
        }

        private void put(byte b) {
            line[lp++] = b;
        }

        private void put(byte[] b) {
            System.arraycopy(b, 0, line, lp, b.length);
            lp += b.length;
        }

        /** {@code v} in exactly {@code width} digits, zero-padded; {@code v} must fit. */
        private void digits(int v, int width) {
            int p = lp + width;
            lp = p;
            while (width >= 2) {
                int q = v / 100;
                int r = (v - q * 100) * 2;
                line[--p] = PAIRS[r + 1];
                line[--p] = PAIRS[r];
                v = q;
                width -= 2;
            }
            if (width == 1) {
                line[--p] = (byte) ('0' + v % 10);
            }
        }

        private void number(int v) {
            int width = v < 10 ? 1 : v < 100 ? 2 : v < 1000 ? 3 : v < 10_000 ? 4 : v < 100_000 ? 5
                    : v < 1_000_000 ? 6 : v < 10_000_000 ? 7 : v < 100_000_000 ? 8 : v < 1_000_000_000 ? 9 : 10;
            digits(v, width);
        }

        private void hex(int v) {
            for (int shift = 28; shift >= 0; shift -= 4) {
                line[lp++] = HEX[(v >>> shift) & 0xF];
            }
        }

        private static byte[] bytes(String s) {
            return s.getBytes(StandardCharsets.US_ASCII);
        }

        private static byte[][] ascii(String... words) {
            byte[][] out = new byte[words.length][];
            for (int i = 0; i < words.length; i++) {
                out[i] = words[i].getBytes(StandardCharsets.US_ASCII);
            }
            return out;
        }
    }
}
