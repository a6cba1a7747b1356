package dev.ferry.cli;

import dev.ferry.block.BlockBackup;
import dev.ferry.util.Sizes;
import java.util.List;
import java.util.Map;
import picocli.CommandLine.Option;

/** Options of every command that makes a block snapshot ({@code backup block}, {@code backup zfs}...). */
public final class BlockOptions {
    @Option(names = "--tag", paramLabel = "KEY=VALUE", description = "Tag the snapshot (repeatable).")
    List<String> tags = List.of();

    @Option(names = "--block-size", paramLabel = "SIZE",
            description = "Block size of the first backup of a volume (default: 1M; 4K to 64M, in 4K steps).")
    String blockSize;

    /** The tags, checked. */
    public Map<String, String> tags() {
        return Main.parseTags(tags);
    }

    /** The block size asked for, or null for the default (or the parent's). */
    public Integer blockSize() {
        if (blockSize == null) {
            return null;
        }
        long b;
        try {
            b = Sizes.parse(blockSize);
        } catch (IllegalArgumentException e) {
            throw new UsageException("--block-size: " + e.getMessage());
        }
        if (b < BlockBackup.MIN_BLOCK_SIZE || b > BlockBackup.MAX_BLOCK_SIZE || b % BlockBackup.MIN_BLOCK_SIZE != 0) {
            throw new UsageException("--block-size must be a multiple of 4K from 4K to 64M, not " + blockSize);
        }
        return (int) b;
    }
}
