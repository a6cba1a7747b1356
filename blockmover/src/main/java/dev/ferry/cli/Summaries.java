package dev.ferry.cli;

import dev.ferry.block.BlockBackup;
import dev.ferry.block.BlockRestore;
import dev.ferry.repo.Snapshots;
import dev.ferry.util.Sizes;
import java.io.PrintWriter;
import java.util.LinkedHashMap;
import java.util.Map;

/** The summaries block backups and restores print, as text or JSON, whichever command made them. */
public final class Summaries {
    private Summaries() {
    }

    /** JSON fields of a block backup; callers may add their own after these. */
    public static Map<String, Object> backupJson(BlockBackup.Result r, Snapshots.Stored parent) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("snapshot_id", r.snapshot().id());
        m.put("parent", parent == null ? null : parent.id());
        m.put("source", r.snapshot().snapshot().source());
        m.put("volume_name", r.snapshot().snapshot().volumeName());
        m.put("block_size", r.snapshot().snapshot().volume().blockSize());
        m.put("bytes_total", r.bytesTotal());
        m.put("bytes_read", r.bytesRead());
        m.put("bytes_new", r.bytesNew());
        m.put("chunks_new", r.chunksNew());
        m.put("zero_blocks", r.zeroBlocks());
        m.put("duration_s", Main.round3(r.durationS()));
        return m;
    }

    public static void printBackup(PrintWriter out, BlockBackup.Result r, Snapshots.Stored parent) {
        out.printf("snapshot %s saved%s%n", r.snapshot().shortId(),
                parent == null ? " (full)" : " (parent " + parent.shortId() + ")");
        out.printf("  volume  %s, blocks of %s, %d zero blocks%n", Sizes.human(r.bytesTotal()),
                Sizes.human(r.snapshot().snapshot().volume().blockSize()), r.zeroBlocks());
        printReadStored(out, r.bytesRead(), r.durationS(), r.bytesNew(), r.chunksNew());
    }

    /** The "read" and "stored" lines every backup summary ends with. */
    public static void printReadStored(PrintWriter out, long bytesRead, double durationS, long bytesNew,
                                       long chunksNew) {
        out.printf("  read    %s in %.2f s (%s/s)%n", Sizes.human(bytesRead), durationS,
                Sizes.human((long) (bytesRead / Math.max(durationS, 1e-3))));
        out.printf("  stored  %s new (%d chunks)%n", Sizes.human(bytesNew), chunksNew);
    }

    /** JSON fields of a block restore into {@code target}. */
    public static Map<String, Object> restoreJson(BlockRestore.Result r, Snapshots.Stored snap, String target) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("snapshot_id", snap.id());
        m.put("target", target);
        m.put("bytes_total", r.bytesTotal());
        m.put("bytes_written", r.bytesWritten());
        m.put("bytes_already_there", r.bytesAlreadyThere());
        m.put("zero_blocks", r.zeroBlocks());
        m.put("duration_s", Main.round3(r.durationS()));
        m.put("bytes_damaged", r.bytesDamaged());
        m.put("damaged", r.damaged()); // records: offset, length, object, cause
        return m;
    }

    public static void printRestore(PrintWriter out, BlockRestore.Result r, Snapshots.Stored snap, String target,
                                    boolean resumed) {
        out.printf("restored snapshot %s into %s%s%n", snap.shortId(), target, resumed ? " (resumed)" : "");
        out.printf("  volume   %s, %d zero blocks%n", Sizes.human(r.bytesTotal()), r.zeroBlocks());
        out.printf("  written  %s in %.2f s (%s/s)%s%n", Sizes.human(r.bytesWritten()), r.durationS(),
                Sizes.human((long) (r.bytesWritten() / Math.max(r.durationS(), 1e-3))),
                r.bytesAlreadyThere() > 0 ? ", " + Sizes.human(r.bytesAlreadyThere()) + " already in place" : "");
        if (!r.damaged().isEmpty()) {
            out.printf("  damaged  %s in %d range(s) not restored (their data is damaged or missing):%n",
                    Sizes.human(r.bytesDamaged()), r.damaged().size());
            for (BlockRestore.Damage d : r.damaged()) {
                out.println("    " + d);
            }
        }
    }
}
