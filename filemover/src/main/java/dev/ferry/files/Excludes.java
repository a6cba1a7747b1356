package dev.ferry.files;

import java.nio.file.FileSystems;
import java.nio.file.Path;
import java.nio.file.PathMatcher;
import java.util.ArrayList;
import java.util.List;

/**
 * The {@code --exclude} patterns of a file backup: glob patterns that, with a '/', match the path relative to the
 * backed-up directory, and without one the name at any depth. One place for the rule, so that the backup and
 * the scan that counts what the backup will read leave out the same entries.
 */
final class Excludes {
    private final List<PathMatcher> nameMatchers = new ArrayList<>();
    private final List<PathMatcher> pathMatchers = new ArrayList<>();

    Excludes(List<String> patterns) {
        for (String p : patterns == null ? List.<String>of() : patterns) {
            String glob = p.endsWith("/") && p.length() > 1 ? p.substring(0, p.length() - 1) : p;
            glob = glob.startsWith("/") ? glob.substring(1) : glob;
            PathMatcher m = FileSystems.getDefault().getPathMatcher("glob:" + glob);
            (glob.contains("/") ? pathMatchers : nameMatchers).add(m);
        }
    }

    boolean none() {
        return nameMatchers.isEmpty() && pathMatchers.isEmpty();
    }

    /** Whether the entry {@code name} at {@code rel} (relative path, names joined by '/') is left out. */
    boolean excluded(String rel, byte[] name) {
        if (none()) {
            return false;
        }
        Path n = Path.of(RawNames.show(name).replace('\0', '?'));
        for (PathMatcher m : nameMatchers) {
            if (m.matches(n)) {
                return true;
            }
        }
        if (!pathMatchers.isEmpty()) {
            Path r = Path.of(rel.replace('\0', '?'));
            for (PathMatcher m : pathMatchers) {
                if (m.matches(r)) {
                    return true;
                }
            }
        }
        return false;
    }
}
