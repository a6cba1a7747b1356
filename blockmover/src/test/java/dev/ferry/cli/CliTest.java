package dev.ferry.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.ferry.repo.BlobType;
import dev.ferry.repo.Json;
import dev.ferry.repo.ProcessTable;
import dev.ferry.repo.KeySource;
import dev.ferry.repo.Repository;
import dev.ferry.repo.RepositoryLock;
import dev.ferry.store.LocalStore;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class CliTest extends LocalRepositoryCliBase {
    static final String[] CHEAP = {"--kdf-memory", "1", "--kdf-iterations", "1"};

    static String[] concat(String[] a, String[] b) {
        String[] r = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }

    /** Puts some real chunks into the repository through the API (block backups arrive in a later command). */
    private void storeChunks(int n) throws Exception {
        Repository repo = Repository.open(new LocalStore(repoDir), new KeySource.Password("s3cret".toCharArray()));
        Random rnd = new Random(11);
        for (int i = 0; i < n; i++) {
            byte[] b = new byte[40_000];
            rnd.nextBytes(b);
            repo.save(BlobType.DATA, b);
        }
        repo.flush();
    }

    @Test
    void initThenVerifyOnADirectory() {
        CliRunner.Result r = init();
        assertEquals(0, r.exitCode(), r.toString());
        assertTrue(r.out().startsWith("created repository "), r.toString());
        assertTrue(Files.exists(repoDir.resolve("config")));

        CliRunner.Result v = cli.run("verify", "--read-data");
        assertEquals(0, v.exitCode(), v.toString());
        assertTrue(v.out().contains("no errors were found"), v.toString());

        CliRunner.Result again = init();
        assertEquals(ExitCodes.ERROR, again.exitCode(), again.toString());
        assertTrue(again.err().contains("already exists"), again.toString());
    }

    @Test
    void repositoryFromOptionAndFileUrl() {
        cli.env.remove("FERRY_REPOSITORY");
        CliRunner.Result none = cli.run("info");
        assertEquals(ExitCodes.USAGE, none.exitCode());
        assertTrue(none.err().contains("no repository given"), none.toString());

        String url = "file://" + repoDir.toAbsolutePath();
        assertEquals(0, cli.run(concat(new String[] {"-r", url, "init"}, CHEAP)).exitCode());
        CliRunner.Result info = cli.run("--repo", repoDir.toString(), "info");
        assertEquals(0, info.exitCode(), info.toString());
        assertTrue(info.out().contains("format version: 1"), info.toString());
        assertTrue(info.out().contains("key slots:      1"), info.toString());

        CliRunner.Result bad = cli.run("-r", "ftp://host/x", "info");
        assertEquals(ExitCodes.USAGE, bad.exitCode());
        assertTrue(bad.err().contains("unsupported repository URL"), bad.toString());
    }

    @Test
    void wrongPasswordIsReportedWithItsOwnExitCode() throws Exception {
        assertEquals(0, init().exitCode());
        cli.env.put("FERRY_PASSWORD", "not it");
        CliRunner.Result r = cli.run("verify");
        assertEquals(ExitCodes.WRONG_KEY, r.exitCode(), r.toString());
        assertTrue(r.err().contains("wrong password"), r.toString());

        cli.env.remove("FERRY_PASSWORD");
        CliRunner.Result none = cli.run("verify");
        assertEquals(ExitCodes.ERROR, none.exitCode(), none.toString());
        assertTrue(none.err().contains("no password given"), none.toString());

        Path pw = dir.resolve("pw");
        Files.writeString(pw, "s3cret\n");
        assertEquals(0, cli.run("--password-file", pw.toString(), "verify").exitCode());
        cli.env.put("FERRY_PASSWORD_FILE", pw.toString());
        assertEquals(0, cli.run("verify").exitCode());
    }

    @Test
    void keyListAddRemove() throws Exception {
        assertEquals(0, init().exitCode());
        Path keyFile = dir.resolve("secret.key");
        byte[] secret = new byte[32];
        new Random(5).nextBytes(secret);
        Files.write(keyFile, secret);
        CliRunner.Result add = cli.run("key", "add", "--new-key-file", keyFile.toString());
        assertEquals(0, add.exitCode(), add.toString());
        String keyFileSlot = add.out().trim().substring("added keyfile key slot ".length());

        Path newPw = dir.resolve("new-pw");
        Files.writeString(newPw, "second password");
        CliRunner.Result add2 = cli.run(concat(new String[] {"key", "add", "--new-password-file", newPw.toString()},
                CHEAP));
        assertEquals(0, add2.exitCode(), add2.toString());

        CliRunner.Result list = cli.run("key", "list");
        assertEquals(0, list.exitCode(), list.toString());
        String[] lines = list.out().split("\n");
        assertEquals(4, lines.length, list.toString());
        assertEquals(1, list.out().lines().filter(l -> l.startsWith("*")).count(), list.toString());
        assertTrue(list.out().contains(keyFileSlot + "  keyfile   hkdf-sha256 "), list.toString());

        // the key file opens the repository on its own
        cli.env.remove("FERRY_PASSWORD");
        CliRunner.Result viaKey = cli.run("--key-file", keyFile.toString(), "verify");
        assertEquals(0, viaKey.exitCode(), viaKey.toString());
        // ... and cannot remove its own slot
        CliRunner.Result own = cli.run("--key-file", keyFile.toString(), "key", "remove", keyFileSlot);
        assertEquals(ExitCodes.ERROR, own.exitCode(), own.toString());
        cli.env.put("FERRY_PASSWORD", "s3cret");
        CliRunner.Result rm = cli.run("key", "remove", keyFileSlot);
        assertEquals(0, rm.exitCode(), rm.toString());
        CliRunner.Result gone = cli.run("--key-file", keyFile.toString(), "verify");
        assertEquals(ExitCodes.WRONG_KEY, gone.exitCode(), gone.toString());
        CliRunner.Result unknown = cli.run("key", "remove", "0000000000");
        assertEquals(ExitCodes.ERROR, unknown.exitCode(), unknown.toString());
        assertTrue(unknown.err().contains("no key slot with id"), unknown.toString());
    }

    @Test
    void aFlippedByteInAPackIsFoundByReadDataOnly() throws Exception {
        assertEquals(0, init().exitCode());
        storeChunks(20);
        assertEquals(0, cli.run("verify", "--read-data").exitCode());
        Path pack;
        try (var s = Files.walk(repoDir.resolve("data"))) {
            pack = s.filter(Files::isRegularFile).findFirst().orElseThrow();
        }
        byte[] bytes = Files.readAllBytes(pack);
        bytes[100] ^= 0x01; // inside the first chunk's ciphertext
        Files.write(pack, bytes);

        CliRunner.Result structure = cli.run("verify");
        assertEquals(0, structure.exitCode(), "structure is intact: " + structure);

        CliRunner.Result full = cli.run("verify", "--read-data");
        assertEquals(ExitCodes.DAMAGE, full.exitCode(), full.toString());
        String packName = pack.getFileName().toString();
        assertTrue(full.out().contains("content does not match its name"), full.toString());
        assertTrue(full.out().contains(packName + ": chunk ") && full.out().contains("does not decrypt"),
                full.toString());
        assertTrue(full.out().contains("error(s) found"), full.toString());
    }

    @Test
    void aTruncatedIndexFileIsReportedNotIgnored() throws Exception {
        assertEquals(0, init().exitCode());
        storeChunks(3);
        Path index;
        try (var s = Files.list(repoDir.resolve("index"))) {
            index = s.findFirst().orElseThrow();
        }
        byte[] bytes = Files.readAllBytes(index);
        Files.write(index, java.util.Arrays.copyOf(bytes, bytes.length - 7));

        CliRunner.Result verify = cli.run("verify");
        assertEquals(ExitCodes.DAMAGE, verify.exitCode(), verify.toString());
        assertTrue(verify.out().contains("index/" + index.getFileName()), verify.toString());
        CliRunner.Result info = cli.run("info");
        assertEquals(ExitCodes.DAMAGE, info.exitCode(), info.toString());
        assertTrue(info.err().contains("index/" + index.getFileName()), info.toString());
        assertTrue(info.err().contains("ferry repair index"), info.toString());
    }

    @Test
    void aMissingOrTruncatedPackIsDamage() throws Exception {
        assertEquals(0, init().exitCode());
        storeChunks(40); // 1.6 MB: more than one 1 MiB... default packs are 32 MiB, so one pack
        Path pack;
        try (var s = Files.walk(repoDir.resolve("data"))) {
            pack = s.filter(Files::isRegularFile).findFirst().orElseThrow();
        }
        byte[] bytes = Files.readAllBytes(pack);
        Files.write(pack, java.util.Arrays.copyOf(bytes, bytes.length - 10));
        CliRunner.Result truncated = cli.run("verify");
        assertEquals(ExitCodes.DAMAGE, truncated.exitCode(), truncated.toString());

        Files.delete(pack);
        CliRunner.Result missing = cli.run("verify");
        assertEquals(ExitCodes.DAMAGE, missing.exitCode(), missing.toString());
        assertTrue(missing.out().contains("pack is missing, 40 indexed chunk(s) are lost"), missing.toString());
    }

    @Test
    void aNewerRepositoryFormatIsRefused() throws Exception {
        assertEquals(0, init().exitCode());
        Path config = repoDir.resolve("config");
        Files.writeString(config, Files.readString(config).replace("\"version\" : 1", "\"version\" : 7"));
        CliRunner.Result r = cli.run("verify");
        assertEquals(ExitCodes.ERROR, r.exitCode(), r.toString());
        assertTrue(r.err().contains("format version 7, newer than this Ferry understands"), r.toString());
    }

    @Test
    void usageErrorsExitWithTwo() {
        CliRunner.Result r = cli.run("verify", "--no-such-option");
        assertEquals(ExitCodes.USAGE, r.exitCode(), r.toString());
        CliRunner.Result help = cli.run("--help");
        assertEquals(0, help.exitCode());
        assertTrue(help.out().contains("verify found damage"), help.toString());
    }

    @Test
    void emptyPasswordIsRefusedAtInit() {
        cli.env.put("FERRY_PASSWORD", "");
        CliRunner.Result r = init();
        assertEquals(ExitCodes.ERROR, r.exitCode(), r.toString());
        assertTrue(r.err().contains("empty password"), r.toString());
        assertTrue(!Files.exists(repoDir.resolve("config")));
    }

    @Test
    void verboseShowsProgress() throws Exception {
        assertEquals(0, init().exitCode());
        storeChunks(2);
        CliRunner.Result r = cli.run("-v", "verify", "--read-data");
        assertEquals(0, r.exitCode(), r.toString());
        assertTrue(r.err().contains("reading all data of 1 packs"), r.toString());
        assertTrue(new String(Files.readAllBytes(repoDir.resolve("config")), StandardCharsets.UTF_8)
                .contains("\"format\" : \"ferry-repository\""));
    }

    @Test
    void unlockRemovesStaleLocksAndRemoveAllRemovesEvery() throws Exception {
        ProcessTable here = ProcessTable.local("cli-host");
        assumeTrue(here.canLookUp(), "needs a readable Linux /proc");
        cli.env.put("FERRY_HOSTNAME", "cli-host");
        assertEquals(0, init().exitCode());
        CliRunner.Result none = cli.run("unlock");
        assertEquals(0, none.exitCode(), none.toString());
        assertEquals("no locks in the repository\n", none.out(), none.toString());

        LocalStore store = new LocalStore(repoDir);
        ProcessTable.Identity id = here.identity();
        Instant now = Instant.now();
        Process backup = new ProcessBuilder("sleep", "600").start();
        long ticks = here.startTicks(backup.pid()).getAsLong();
        backup.destroyForcibly();
        assertTrue(backup.waitFor(30, TimeUnit.SECONDS));
        putLock(store, "dead", new RepositoryLock.Info("backup", "cli-host", backup.pid(), now.toString(),
                now.toString(), id.bootId(), id.pidNamespace(), id.timeNamespace(), ticks));
        putLock(store, "fresh", new RepositoryLock.Info("backup", "node-2", 1, now.toString(), now.toString(),
                "b", 1L, null, 5L));
        String old = now.minus(Duration.ofHours(1)).toString();
        putLock(store, "old", new RepositoryLock.Info("prune", "node-2", 1, old, old, null, null, null, null));
        store.put("locks/unreadable", "{ not json".getBytes(StandardCharsets.UTF_8));

        CliRunner.Result dry = cli.run("unlock", "--dry-run");
        assertEquals(0, dry.exitCode(), dry.toString());
        assertTrue(dry.out().contains("would remove locks/dead: backup on cli-host (pid " + backup.pid() + ")"),
                dry.toString());
        assertTrue(dry.out().endsWith("2 lock(s) would be removed, 2 kept\n"), dry.toString());
        assertEquals(4, store.list("locks/").size());

        CliRunner.Result r = cli.run("unlock");
        assertEquals(0, r.exitCode(), r.toString());
        assertTrue(r.out().contains("removed locks/dead: backup on cli-host (pid " + backup.pid() + ")"
                + ", refreshed " + now + "\n    its process (pid " + backup.pid() + ") is gone from this host"),
                r.toString());
        assertTrue(r.out().contains("removed locks/old: prune on node-2 (pid 1), refreshed " + old
                + "\n    not refreshed since " + old), r.toString());
        assertTrue(r.out().contains("kept locks/fresh: backup on node-2 (pid 1), refreshed " + now
                + "\n    other host node-2: refreshed " + now), r.toString());
        assertTrue(r.out().contains("kept locks/unreadable\n    unreadable, so it counts as running; if no backup or "
                + "prune runs, remove it with 'ferry unlock --remove-all'"), r.toString());
        assertTrue(r.out().endsWith("2 lock(s) removed, 2 kept\n"), r.toString());
        assertEquals("", r.err(), r.toString());
        assertEquals(2, store.list("locks/").size());

        CliRunner.Result all = cli.run("unlock", "--remove-all");
        assertEquals(0, all.exitCode(), all.toString());
        assertTrue(all.out().endsWith("2 lock(s) removed, 0 kept\n"), all.toString());
        assertTrue(all.err().contains("warning: --remove-all removed locks that may belong to running backups"),
                all.toString());
        assertTrue(store.list("locks/").isEmpty());
        assertEquals("no locks in the repository\n", cli.run("unlock").out());
    }

    private static void putLock(LocalStore store, String name, RepositoryLock.Info info) throws Exception {
        store.put(RepositoryLock.PREFIX + name, Json.MAPPER.writeValueAsBytes(info));
    }
}
