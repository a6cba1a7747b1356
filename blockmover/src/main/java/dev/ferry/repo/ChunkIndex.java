package dev.ferry.repo;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.BiConsumer;

/**
 * In-memory map from chunk id to its place in a pack, merged from all index files. Stored as parallel
 * primitive arrays with open addressing (about 60 bytes per chunk) so that millions of chunks fit in a small
 * heap. Not thread-safe: {@link Repository} guards it.
 */
public final class ChunkIndex {
    private static final int EMPTY = -1;

    private final List<PackId> packs = new ArrayList<>();
    private final Map<PackId, Integer> packRefs = new HashMap<>();

    private long[] ids;       // 4 words per slot
    private int[] packRef;    // EMPTY when the slot is free
    private long[] offsets;
    private int[] lengths;
    private int[] rawLengths;
    private byte[] types;
    private int size;

    public ChunkIndex() {
        allocate(1024);
    }

    private void allocate(int capacity) {
        ids = new long[capacity * 4];
        packRef = new int[capacity];
        java.util.Arrays.fill(packRef, EMPTY);
        offsets = new long[capacity];
        lengths = new int[capacity];
        rawLengths = new int[capacity];
        types = new byte[capacity];
    }

    public int size() {
        return size;
    }

    public int packCount() {
        return packs.size();
    }

    /** Adds an entry; returns false (and changes nothing) if the chunk is already indexed. */
    public boolean add(PackId pack, PackEntry e) {
        if ((size + 1) * 4L > packRef.length * 3L) {
            grow();
        }
        int slot = find(e.id());
        if (packRef[slot] != EMPTY) {
            return false;
        }
        Integer ref = packRefs.get(pack);
        if (ref == null) {
            ref = packs.size();
            packs.add(pack);
            packRefs.put(pack, ref);
        }
        put(slot, e.id(), ref, e);
        size++;
        return true;
    }

    private void put(int slot, ChunkId id, int ref, PackEntry e) {
        for (int w = 0; w < 4; w++) {
            ids[slot * 4 + w] = id.word(w);
        }
        packRef[slot] = ref;
        offsets[slot] = e.offset();
        lengths[slot] = e.length();
        rawLengths[slot] = e.rawLength();
        types[slot] = (byte) e.type().code();
    }

    public boolean contains(ChunkId id) {
        return packRef[find(id)] != EMPTY;
    }

    /** Where a chunk is stored, if it is indexed. */
    public Optional<Location> lookup(ChunkId id) {
        int slot = find(id);
        if (packRef[slot] == EMPTY) {
            return Optional.empty();
        }
        return Optional.of(location(slot));
    }

    private Location location(int slot) {
        ChunkId id = ChunkId.ofWords(ids[slot * 4], ids[slot * 4 + 1], ids[slot * 4 + 2], ids[slot * 4 + 3]);
        return new Location(packs.get(packRef[slot]), new PackEntry(BlobType.fromCode(types[slot]), offsets[slot],
                lengths[slot], rawLengths[slot], id));
    }

    /** Visits every indexed chunk. */
    public void forEach(BiConsumer<PackId, PackEntry> visitor) {
        for (int slot = 0; slot < packRef.length; slot++) {
            if (packRef[slot] != EMPTY) {
                Location l = location(slot);
                visitor.accept(l.pack(), l.entry());
            }
        }
    }

    /** Finds the slot holding {@code id}, or the free slot where it would go. */
    private int find(ChunkId id) {
        long w0 = id.word(0);
        long w1 = id.word(1);
        long w2 = id.word(2);
        long w3 = id.word(3);
        int mask = packRef.length - 1;
        int slot = (int) (w0 ^ (w0 >>> 32)) & mask;
        while (packRef[slot] != EMPTY) {
            int b = slot * 4;
            if (ids[b] == w0 && ids[b + 1] == w1 && ids[b + 2] == w2 && ids[b + 3] == w3) {
                return slot;
            }
            slot = (slot + 1) & mask;
        }
        return slot;
    }

    private void grow() {
        long[] oldIds = ids;
        int[] oldRef = packRef;
        long[] oldOffsets = offsets;
        int[] oldLengths = lengths;
        int[] oldRaw = rawLengths;
        byte[] oldTypes = types;
        allocate(oldRef.length * 2);
        for (int slot = 0; slot < oldRef.length; slot++) {
            if (oldRef[slot] == EMPTY) {
                continue;
            }
            ChunkId id = ChunkId.ofWords(oldIds[slot * 4], oldIds[slot * 4 + 1], oldIds[slot * 4 + 2],
                    oldIds[slot * 4 + 3]);
            int to = find(id);
            for (int w = 0; w < 4; w++) {
                ids[to * 4 + w] = oldIds[slot * 4 + w];
            }
            packRef[to] = oldRef[slot];
            offsets[to] = oldOffsets[slot];
            lengths[to] = oldLengths[slot];
            rawLengths[to] = oldRaw[slot];
            types[to] = oldTypes[slot];
        }
    }

    /** A chunk's pack and entry. */
    public record Location(PackId pack, PackEntry entry) {
    }
}
