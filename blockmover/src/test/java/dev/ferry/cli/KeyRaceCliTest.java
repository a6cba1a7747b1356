package dev.ferry.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.repo.KeySource;
import dev.ferry.repo.Repository;
import dev.ferry.store.FaultInjectingProxy;
import dev.ferry.store.S3ProxyExtension;
import dev.ferry.store.S3Store;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Two {@code key remove}s at once, each of the other's slot, against S3 behind 0.4 s of latency (as two nodes
 * would run them): the key-change lock lets at most one through, and the repository keeps a slot that opens.
 */
class KeyRaceCliTest {
    @RegisterExtension
    static final S3ProxyExtension s3 = S3ProxyExtension.withSdkCredentials();
    static FaultInjectingProxy slow;

    @BeforeAll
    static void start() throws Exception {
        slow = new FaultInjectingProxy(s3.server().endpoint().getPort(),
                FaultInjectingProxy.Link.latency(Duration.ofMillis(400)));
    }

    @AfterAll
    static void stop() throws Exception {
        slow.close();
    }

    private static CliRunner runner(String endpoint, String url, String password) {
        CliRunner cli = new CliRunner();
        cli.env.put("AWS_ENDPOINT_URL", endpoint);
        cli.env.put("AWS_REGION", "us-east-1");
        cli.env.put("FERRY_REPOSITORY", url);
        cli.env.put("FERRY_PASSWORD", password);
        return cli;
    }

    @Test
    void concurrentRemovalsOfEachOthersSlotNeverLeaveNoSlot() throws Exception {
        String direct = s3.server().endpoint().toString();
        String delayed = "http://127.0.0.1:" + slow.port();
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<String> buckets = new ArrayList<>();
            List<Future<CliRunner.Result>> results = new ArrayList<>();
            CountDownLatch go = new CountDownLatch(1);
            for (int r = 0; r < 2; r++) {
                String bucket = s3.server().newBucket();
                buckets.add(bucket);
                String url = "s3://" + bucket + "/repo";
                CliRunner alpha = runner(direct, url, "alpha");
                CliRunner.Result init = alpha.run(CliTest.concat(new String[] {"init"}, CliTest.CHEAP));
                assertEquals(0, init.exitCode(), init.toString());
                alpha.env.put("FERRY_NEW_PASSWORD", "beta");
                CliRunner.Result add = alpha.run(CliTest.concat(new String[] {"key", "add"}, CliTest.CHEAP));
                assertEquals(0, add.exitCode(), add.toString());
                String alphaSlot;
                String betaSlot;
                try (S3Store store = new S3Store(s3.server().settings(bucket, "repo"))) {
                    alphaSlot = slotId(store, "alpha");
                    betaSlot = slotId(store, "beta");
                }
                // each removes the other's slot, through the slow link, at the same moment
                CliRunner viaAlpha = runner(delayed, url, "alpha");
                CliRunner viaBeta = runner(delayed, url, "beta");
                results.add(pool.submit(() -> {
                    go.await();
                    return viaAlpha.run("key", "remove", betaSlot);
                }));
                results.add(pool.submit(() -> {
                    go.await();
                    return viaBeta.run("key", "remove", alphaSlot);
                }));
            }
            go.countDown();
            for (int r = 0; r < 2; r++) {
                CliRunner.Result byAlpha = results.get(2 * r).get(2, TimeUnit.MINUTES);
                CliRunner.Result byBeta = results.get(2 * r + 1).get(2, TimeUnit.MINUTES);
                String both = byAlpha + "\n" + byBeta;
                int succeeded = (byAlpha.exitCode() == 0 ? 1 : 0) + (byBeta.exitCode() == 0 ? 1 : 0);
                assertTrue(succeeded <= 1, "both removals succeeded:\n" + both);
                for (CliRunner.Result one : List.of(byAlpha, byBeta)) {
                    // a loser is refused by the lock, or, had the winner finished first, finds its own slot gone
                    assertTrue(one.exitCode() == 0 || one.err().contains("another key change is running")
                            || one.err().contains("removed by another key change")
                            || one.err().contains("wrong password"), both);
                }
                try (S3Store store = new S3Store(s3.server().settings(buckets.get(r), "repo"))) {
                    assertEquals(2 - succeeded, store.list("keys/").size(), both);
                    // the remaining key (the winner's, or both when neither went on) opens the repository
                    if (byBeta.exitCode() != 0) {
                        Repository.openKeyOnly(store, new KeySource.Password("alpha".toCharArray()));
                    }
                    if (byAlpha.exitCode() != 0) {
                        Repository.openKeyOnly(store, new KeySource.Password("beta".toCharArray()));
                    }
                    assertTrue(store.list("locks/").isEmpty(), "a key change left its lock behind");
                }
                // and the command line agrees
                CliRunner.Result list = runner(direct, "s3://" + buckets.get(r) + "/repo",
                        byBeta.exitCode() != 0 ? "alpha" : "beta").run("key", "list");
                assertEquals(0, list.exitCode(), list.toString());
            }
        } finally {
            pool.shutdownNow();
        }
    }

    private static String slotId(S3Store store, String password) throws Exception {
        Repository repo = Repository.openKeyOnly(store, new KeySource.Password(password.toCharArray()));
        return repo.keySlotName().substring("keys/".length());
    }
}
