package dev.ferry.files;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.progress.ProgressListener;
import dev.ferry.repo.KdfParams;
import dev.ferry.repo.KeySource;
import dev.ferry.repo.Repository;
import dev.ferry.repo.RepositoryException;
import dev.ferry.repo.RepositoryLock;
import dev.ferry.repo.Snapshots;
import dev.ferry.repo.Verifier;
import dev.ferry.store.LocalStore;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A files backup stores its snapshot through the same lock and pack checks as a block backup. */
class FileBackupLockTest {
    static final KeySource KEY = new KeySource.Password("pw".toCharArray());

    @TempDir
    Path dir;

    @Test
    void aFilesBackupWhoseLockWasRemovedStoresNoSnapshotAndOneWithALiveLockDoes() throws Exception {
        LocalStore store = new LocalStore(dir.resolve("repo"));
        Repository.init(store, KEY, new KdfParams(1024, 1, 1), 1 << 20, Clock.systemUTC());
        Path src = Files.createDirectories(dir.resolve("src"));
        for (int i = 0; i < 20; i++) {
            Files.write(src.resolve("f" + i), ("file " + i + "\n").repeat(1000).getBytes(StandardCharsets.UTF_8));
        }

        Repository repo = Repository.open(store, KEY);
        try (RepositoryLock lock = RepositoryLock.acquire(store, "backup", "h", Clock.systemUTC())) {
            store.delete(lock.name()); // ferry unlock --remove-all while the backup runs
            FileBackup b = new FileBackup(repo, new FileBackup.Request(src, "src", null, List.of(), false, Map.of(),
                    2, lock));
            RepositoryException e = assertThrows(RepositoryException.class,
                    () -> b.run(ProgressListener.NONE, Clock.systemUTC(), "h"));
            assertTrue(e.getMessage().contains("backup aborted, no snapshot stored"), e.getMessage());
            assertTrue(e.getMessage().contains("was removed while this process held it"), e.getMessage());
        }
        Repository after = Repository.open(store, KEY);
        assertTrue(new Snapshots(after).list().isEmpty());
        Verifier.Report v = new Verifier(after, m -> { }).verify(false, 2);
        assertTrue(v.ok(), v.errors().toString());

        try (RepositoryLock lock = RepositoryLock.acquire(store, "backup", "h", Clock.systemUTC())) {
            FileBackup.Result r = new FileBackup(after, new FileBackup.Request(src, "src", null, List.of(), false,
                    Map.of(), 2, lock)).run(ProgressListener.NONE, Clock.systemUTC(), "h");
            assertEquals(List.of(r.snapshot().id()),
                    new Snapshots(Repository.open(store, KEY)).list().stream().map(Snapshots.Stored::id).toList());
        }
    }
}
