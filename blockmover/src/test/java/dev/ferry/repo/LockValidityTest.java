package dev.ferry.repo;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.store.LocalStore;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A lock holder notices when its lock can no longer be trusted, and never brings a lost lock back. */
class LockValidityTest {
    @TempDir
    Path dir;
    LocalStore store;

    @BeforeEach
    void setUp() {
        store = new LocalStore(dir.resolve("repo"));
    }

    /** A clock the test moves. */
    static final class MovableClock extends Clock {
        volatile Instant now = Instant.now();

        @Override
        public ZoneId getZone() {
            return ZoneOffset.UTC;
        }

        @Override
        public Clock withZone(ZoneId zone) {
            return this;
        }

        @Override
        public Instant instant() {
            return now;
        }
    }

    @Test
    void aLiveLockIsConfirmedAndRefreshed() throws Exception {
        MovableClock clock = new MovableClock();
        try (RepositoryLock lock = RepositoryLock.acquire(store, "backup", "h", clock)) {
            lock.confirm();
            clock.now = clock.now.plus(Duration.ofMinutes(10));
            lock.refresh();
            clock.now = clock.now.plus(Duration.ofMinutes(10)); // 20 minutes after it was written first
            lock.check();
            lock.confirm();
            assertTrue(store.exists(lock.name()));
        }
    }

    @Test
    void aRemovedLockIsNotWrittenAgainAndFailsTheHolder() throws Exception {
        try (RepositoryLock lock = RepositoryLock.acquire(store, "backup", "h", Clock.systemUTC())) {
            store.delete(lock.name()); // ferry unlock --remove-all, or a prune that judged it stale
            lock.refresh();
            assertFalse(store.exists(lock.name()), "the refresher does not bring a removed lock back");
            RepositoryException e = assertThrows(RepositoryException.class, lock::check);
            assertTrue(e.getMessage().contains("was removed while this process held it"), e.getMessage());
            assertThrows(RepositoryException.class, lock::confirm);
        }
    }

    @Test
    void aLockFoundStaleInTheStoreFailsTheHolder() throws Exception {
        try (RepositoryLock lock = RepositoryLock.acquire(store, "backup", "h", Clock.systemUTC())) {
            RepositoryLock.Info info = Json.MAPPER.readValue(store.get(lock.name()), RepositoryLock.Info.class);
            store.put(lock.name(), Json.MAPPER.writeValueAsBytes(
                    info.withRefreshed(Instant.now().minus(Duration.ofMinutes(20)).toString())));
            RepositoryException e = assertThrows(RepositoryException.class, lock::confirm);
            assertTrue(e.getMessage().contains("others take it as stale"), e.getMessage());
            assertThrows(RepositoryException.class, lock::check, "once lost, lost for good");
        }
    }

    @Test
    void aLockNotWrittenForTheStaleWindowIsLostAndNotRefreshed() throws Exception {
        MovableClock clock = new MovableClock();
        try (RepositoryLock lock = RepositoryLock.acquire(store, "backup", "h", clock)) {
            byte[] before = store.get(lock.name());
            clock.now = clock.now.plus(RepositoryLock.STALE).plusSeconds(1); // paused, or every refresh failed
            RepositoryException e = assertThrows(RepositoryException.class, lock::check);
            assertTrue(e.getMessage().contains("more than 15 minutes ago"), e.getMessage());
            lock.refresh();
            assertTrue(java.util.Arrays.equals(before, store.get(lock.name())),
                    "a lock others may have judged stale is not refreshed as if nothing happened");
        }
    }
}
