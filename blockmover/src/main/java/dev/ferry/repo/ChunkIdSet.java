package dev.ferry.repo;

/**
 * A set of chunk ids in one primitive array with open addressing (32 bytes per id plus slack), for the
 * millions of ids prune collects. Not thread-safe.
 */
public final class ChunkIdSet {
    private long[] words = new long[4 * 1024];
    private boolean[] used = new boolean[1024];
    private int size;

    public int size() {
        return size;
    }

    /** Adds an id; returns false if it was there already. */
    public boolean add(ChunkId id) {
        if ((size + 1) * 4L > used.length * 3L) {
            grow();
        }
        int slot = find(id);
        if (used[slot]) {
            return false;
        }
        used[slot] = true;
        for (int i = 0; i < 4; i++) {
            words[slot * 4 + i] = id.word(i);
        }
        size++;
        return true;
    }

    public boolean contains(ChunkId id) {
        return used[find(id)];
    }

    private int find(ChunkId id) {
        int mask = used.length - 1;
        int slot = (int) (id.word(0) ^ (id.word(0) >>> 32)) & mask;
        while (used[slot] && !(words[slot * 4] == id.word(0) && words[slot * 4 + 1] == id.word(1)
                && words[slot * 4 + 2] == id.word(2) && words[slot * 4 + 3] == id.word(3))) {
            slot = (slot + 1) & mask;
        }
        return slot;
    }

    private void grow() {
        long[] oldWords = words;
        boolean[] oldUsed = used;
        words = new long[oldWords.length * 2];
        used = new boolean[oldUsed.length * 2];
        size = 0;
        for (int s = 0; s < oldUsed.length; s++) {
            if (oldUsed[s]) {
                add(ChunkId.ofWords(oldWords[s * 4], oldWords[s * 4 + 1], oldWords[s * 4 + 2], oldWords[s * 4 + 3]));
            }
        }
    }
}
