package dev.ferry.files;

import java.io.IOException;
import java.nio.file.FileVisitResult;
import java.nio.file.FileVisitor;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.EnumSet;

/**
 * The quick scan that gives a file backup without a parent its total for progress: counts the regular files
 * under a directory and their bytes, leaving out what the backup leaves out (excluded entries; with
 * one-file-system, what lies on other file systems). It only lists directories and stats entries, so it runs well
 * ahead of the backup, which also reads the files.
 *
 * <p>Memory stays bounded whatever the tree: the walk ({@link Files#walkFileTree}) holds one open directory
 * listing per level of depth and reads each listing as a stream, so a directory of a million entries is never
 * held in memory, and nothing is queued between the scan and the backup: the scan hands over two numbers.
 */
final class TreeScan {
    /** Regular files (every name of a hard-linked file) and the sum of their sizes. */
    record Totals(long files, long bytes) {
        /**
         * The totals a files snapshot's summary records (its files new, changed and unchanged, and
         * {@code bytes_total}), or null for a summary without them.
         */
        static Totals ofSummary(java.util.Map<String, Object> s) {
            if (s != null && s.get("bytes_total") instanceof Number bytes && s.get("files_new") instanceof Number fn
                    && s.get("files_changed") instanceof Number fc && s.get("files_unchanged") instanceof Number fu) {
                return new Totals(fn.longValue() + fc.longValue() + fu.longValue(), bytes.longValue());
            }
            return null;
        }
    }

    private final Path root;
    private final Excludes excludes;
    private final boolean oneFileSystem;
    private final long rootDevice;
    private volatile boolean cancelled;

    TreeScan(Path root, Excludes excludes, boolean oneFileSystem, long rootDevice) {
        this.root = root;
        this.excludes = excludes;
        this.oneFileSystem = oneFileSystem;
        this.rootDevice = rootDevice;
    }

    /** Makes a running {@link #run} stop soon and return null. */
    void cancel() {
        cancelled = true;
    }

    /**
     * Walks the tree; returns the totals, or null when cancelled. Entries that cannot be read are skipped: the
     * backup reports them.
     */
    Totals run() throws IOException {
        long[] count = new long[2];
        Files.walkFileTree(root, EnumSet.noneOf(java.nio.file.FileVisitOption.class), Integer.MAX_VALUE,
                new FileVisitor<>() {
                    @Override
                    public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes attrs) throws IOException {
                        if (cancelled) {
                            return FileVisitResult.TERMINATE;
                        }
                        if (dir.equals(root)) {
                            return FileVisitResult.CONTINUE;
                        }
                        if (excluded(dir)) {
                            return FileVisitResult.SKIP_SUBTREE;
                        }
                        if (oneFileSystem && device(dir) != rootDevice) {
                            return FileVisitResult.SKIP_SUBTREE; // a mount point: the backup keeps it empty
                        }
                        return FileVisitResult.CONTINUE;
                    }

                    @Override
                    public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) {
                        if (cancelled) {
                            return FileVisitResult.TERMINATE;
                        }
                        if (attrs.isRegularFile() && !excluded(file)) {
                            count[0]++;
                            count[1] += attrs.size();
                        }
                        return FileVisitResult.CONTINUE;
                    }

                    @Override
                    public FileVisitResult visitFileFailed(Path file, IOException e) {
                        return cancelled ? FileVisitResult.TERMINATE : FileVisitResult.CONTINUE;
                    }

                    @Override
                    public FileVisitResult postVisitDirectory(Path dir, IOException e) {
                        return cancelled ? FileVisitResult.TERMINATE : FileVisitResult.CONTINUE;
                    }
                });
        return cancelled ? null : new Totals(count[0], count[1]);
    }

    private static long device(Path dir) {
        try {
            return ((Number) Files.getAttribute(dir, "unix:dev", LinkOption.NOFOLLOW_LINKS)).longValue();
        } catch (IOException | RuntimeException e) {
            return -1; // gone or unreadable: not counted, and the backup says why
        }
    }

    /** The backup's exclusion rule, with the relative path built the way the backup builds it. */
    private boolean excluded(Path p) {
        if (excludes.none()) {
            return false;
        }
        StringBuilder rel = new StringBuilder();
        byte[] name = null;
        for (Path part : root.relativize(p)) {
            name = RawNames.bytes(part);
            if (rel.length() > 0) {
                rel.append('/');
            }
            rel.append(RawNames.show(name));
        }
        return name != null && excludes.excluded(rel.toString(), name);
    }
}
