package dev.ferry.repo;

import dev.ferry.store.LocalStore;
import java.nio.file.Path;
import java.time.Clock;

/**
 * A process that takes a real backup lock and then waits to be killed, for tests that need a lock whose holder
 * lives in another JVM. Arguments: the repository directory and the host name. Prints the lock's name once the
 * lock is stored; exits by itself after ten minutes so a failed test leaves nothing running for long.
 */
public final class LockHolder {
    private LockHolder() {
    }

    public static void main(String[] args) throws Exception {
        RepositoryLock lock = RepositoryLock.acquire(new LocalStore(Path.of(args[0])), "backup", args[1],
                Clock.systemUTC());
        System.out.println(lock.name());
        System.out.flush();
        Thread.sleep(600_000);
        lock.close();
    }
}
