package dev.ferry.repo;

import com.fasterxml.jackson.annotation.JsonInclude;
import java.util.List;
import java.util.Map;

/**
 * A snapshot object ({@code snapshots/<id>}): what was backed up, when, from where, and the root of its data.
 * Stored as sealed JSON (see docs/FORMAT.md). Readers ignore fields they do not know.
 *
 * @param version  snapshot format version, {@link #VERSION}
 * @param kind     {@code "block"} for a volume image, {@code "files"} for a directory tree
 * @param time     when the backup started (RFC 3339, UTC)
 * @param hostname the host that made it
 * @param source   what was backed up (a path, or an engine's volume name)
 * @param tags     user tags
 * @param parent   the snapshot this one was made incrementally from, or null
 * @param volume   for a block snapshot: the volume manifest
 * @param summary  figures of the backup that made it (bytes read, new, duration...)
 * @param engine   engine-specific facts (engine name, its snapshot name and guid...), or null
 * @param tree     for a files snapshot: the chunk id (hex) of the root directory's tree object ({@link Tree})
 * @param volumeName the name of the volume given at backup (a PV name), or null: then the volume is known by
 *                 its {@code source} on its {@code hostname} (see {@link #sameVolume})
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record Snapshot(int version, String kind, String time, String hostname, String source,
                       Map<String, String> tags, String parent, Volume volume, Map<String, Object> summary,
                       Map<String, String> engine, String tree, String volumeName) {
    public static final int VERSION = 1;
    public static final String KIND_BLOCK = "block";
    /** A directory tree backed up file by file: {@link #tree} names the root {@link Tree}. */
    public static final String KIND_FILES = "files";

    /** A snapshot without a tree (a block snapshot) and without a volume name. */
    public Snapshot(int version, String kind, String time, String hostname, String source, Map<String, String> tags,
                    String parent, Volume volume, Map<String, Object> summary, Map<String, String> engine) {
        this(version, kind, time, hostname, source, tags, parent, volume, summary, engine, null, null);
    }

    /** A snapshot without a volume name. */
    public Snapshot(int version, String kind, String time, String hostname, String source, Map<String, String> tags,
                    String parent, Volume volume, Map<String, Object> summary, Map<String, String> engine,
                    String tree) {
        this(version, kind, time, hostname, source, tags, parent, volume, summary, engine, tree, null);
    }

    /**
     * Whether this snapshot belongs to the volume that a backup of {@code source} on {@code host}, named
     * {@code name} (or null), would record. A named volume is the same volume on any host (a PV keeps its name
     * when it moves); an unnamed one is known by its source path, which means something only on its host.
     */
    public boolean sameVolume(String name, String source, String host) {
        if (volumeName != null || name != null) {
            return java.util.Objects.equals(volumeName, name);
        }
        return java.util.Objects.equals(this.source, source) && java.util.Objects.equals(hostname, host);
    }

    /** Whether two snapshots belong to the same volume ({@link #sameVolume(String, String, String)}). */
    public boolean sameVolume(Snapshot other) {
        return sameVolume(other.volumeName, other.source, other.hostname);
    }

    /**
     * A key equal for two snapshots exactly when they belong to the same volume ({@link #sameVolume}): the name,
     * or the source and host of a snapshot without one.
     */
    public List<String> volumeKey() {
        return volumeName != null ? java.util.Arrays.asList("name", volumeName)
                : java.util.Arrays.asList("source", source, hostname);
    }

    /** The volume in words: {@code volume 'pvc-1'}, or {@code '/dev/vg0/lv1' on host node-1}. */
    public String describeVolume() {
        return describeVolume(volumeName, source, hostname);
    }

    /** A volume in words, as a backup of {@code source} on {@code host} named {@code name} (or null) records it. */
    public static String describeVolume(String name, String source, String host) {
        return name != null ? "volume '" + name + "'" : "'" + source + "' on host " + host;
    }

    /**
     * A volume manifest: the volume is {@code size} bytes in blocks of {@code blockSize} (the last may be
     * shorter); block {@code b} is entry {@code b % pageBlocks} of page {@code b / pageBlocks}. Each page is a
     * metadata chunk listing one chunk id per block, or null when every block of the page is zero.
     *
     * <p>A manifest with a negative size or a block or page size below 1 is refused as it is read (a snapshot
     * that holds one is damaged), so no reader ever divides by them. Further consistency is checked where a
     * snapshot is used ({@code BlockBackup.checkVolume}).
     */
    public record Volume(long size, int blockSize, int pageBlocks, List<String> pages) {
        public Volume {
            if (size < 0 || blockSize < 1 || pageBlocks < 1) {
                throw new IllegalArgumentException("invalid volume manifest: size " + size + ", block size "
                        + blockSize + ", " + pageBlocks + " blocks per page");
            }
        }

        public long blockCount() {
            return (size + blockSize - 1) / blockSize;
        }

        /** Blocks described by page {@code p}. */
        public int blocksInPage(int p) {
            return (int) Math.min(pageBlocks, blockCount() - (long) p * pageBlocks);
        }

        /** Length of block {@code b} (the last one may be short). */
        public int blockLength(long b) {
            return (int) Math.min(blockSize, size - b * blockSize);
        }
    }
}
