package dev.ferry.engine;

import dev.ferry.block.FileVolume;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A test engine found through {@code META-INF/services}: volumes are files in a directory given by the system
 * property {@code ferry.test.engine.root}, a snapshot is a copy {@code <volume>@<name>}, and changed ranges
 * come from comparing two snapshots in 4 KiB steps (an engine that knows its changes, like ZFS, reports them
 * without reading).
 */
public final class DirectoryEngine implements Engine {
    static Path root() {
        return Path.of(System.getProperty("ferry.test.engine.root"));
    }

    @Override
    public String name() {
        return "dir-test";
    }

    @Override
    public List<EngineSnapshot> listSnapshots(String volume) throws IOException {
        List<EngineSnapshot> out = new ArrayList<>();
        try (var s = Files.list(root())) {
            for (Path p : s.sorted().toList()) {
                String n = p.getFileName().toString();
                if (n.startsWith(volume + "@")) {
                    out.add(new EngineSnapshot(volume, n.substring(volume.length() + 1), null,
                            Files.getLastModifiedTime(p).toInstant(), Map.of()));
                }
            }
        }
        return out;
    }

    @Override
    public EngineSnapshot createSnapshot(String volume, String name, String repository) throws IOException {
        Files.copy(root().resolve(volume), root().resolve(volume + "@" + name));
        return new EngineSnapshot(volume, name, null, Instant.now(), Map.of());
    }

    @Override
    public void deleteSnapshot(EngineSnapshot snapshot) throws IOException {
        Files.delete(root().resolve(snapshot.volume() + "@" + snapshot.name()));
    }

    @Override
    public VolumeReader open(EngineSnapshot snapshot) throws IOException {
        return FileVolume.openForReading(root().resolve(snapshot.volume() + "@" + snapshot.name()));
    }

    @Override
    public Optional<ChangedRanges> changedRanges(EngineSnapshot base, EngineSnapshot target) throws IOException {
        byte[] a = Files.readAllBytes(root().resolve(base.volume() + "@" + base.name()));
        byte[] b = Files.readAllBytes(root().resolve(target.volume() + "@" + target.name()));
        ChangedRanges out = new ChangedRanges();
        for (int off = 0; off < Math.max(a.length, b.length); off += 4096) {
            int end = off + 4096;
            if (end > a.length || end > b.length
                    || java.util.Arrays.mismatch(a, off, end, b, off, end) >= 0) {
                out.add(off, 4096);
            }
        }
        return Optional.of(out);
    }

    @Override
    public RestoreTarget prepareRestore(String target, long size, Map<String, String> options) throws IOException {
        Path p = root().resolve(target);
        if (Files.exists(p) && !"true".equals(options.get("force"))) {
            throw new IOException(target + " exists");
        }
        Path partial = root().resolve(target + ".partial");
        FileVolume w = FileVolume.openForWriting(partial, size, true);
        return new RestoreTarget() {
            boolean done;

            @Override
            public VolumeWriter writer() {
                return w;
            }

            @Override
            public void finish(boolean success) throws IOException {
                done = true;
                w.close();
                if (success) {
                    Files.move(partial, p, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
                } else {
                    Files.deleteIfExists(partial);
                }
            }

            @Override
            public void close() throws IOException {
                if (!done) {
                    finish(false);
                }
            }
        };
    }
}
