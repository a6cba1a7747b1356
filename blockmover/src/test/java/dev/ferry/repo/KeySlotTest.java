package dev.ferry.repo;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.store.LocalStore;
import dev.ferry.store.StoreObject;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class KeySlotTest {
    @TempDir
    Path dir;

    private static final String REPO_ID = "ab".repeat(32);

    @Test
    void passwordSlotOpensOnlyWithItsPasswordAndRepository() throws Exception {
        MasterKey master = MasterKey.generate();
        KeySlot slot = KeySlot.create(master, new KeySource.Password("pw1".toCharArray()), TestRepos.CHEAP_KDF,
                REPO_ID, Instant.now());
        byte[] json = slot.toJson();
        KeySlot parsed = KeySlot.parse(KeySlot.objectName(json), json);
        assertEquals(slot, parsed);
        MasterKey opened = parsed.open(new KeySource.Password("pw1".toCharArray()), REPO_ID).orElseThrow();
        assertArrayEquals(master.material(), opened.material());
        assertTrue(parsed.open(new KeySource.Password("pw2".toCharArray()), REPO_ID).isEmpty());
        // a slot copied into another repository does not open there
        assertTrue(parsed.open(new KeySource.Password("pw1".toCharArray()), "cd".repeat(32)).isEmpty());
        // the master key is not in the slot in the clear
        String text = new String(json, java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(!text.contains(java.util.Base64.getEncoder().encodeToString(master.material())));
        assertEquals("argon2id", parsed.kdf().algorithm());
        assertEquals(1024, parsed.kdf().memoryKib());
    }

    @Test
    void keyFileSlotUsesHkdfAndOpensOnlyWithThatFile() throws Exception {
        MasterKey master = MasterKey.generate();
        byte[] secret = TestRepos.random(new Random(1), 32);
        KeySlot slot = KeySlot.create(master, new KeySource.KeyFile(secret, "k"), TestRepos.CHEAP_KDF, REPO_ID,
                Instant.now());
        assertEquals("hkdf-sha256", slot.kdf().algorithm());
        assertArrayEquals(master.material(),
                slot.open(new KeySource.KeyFile(secret.clone(), "k"), REPO_ID).orElseThrow().material());
        byte[] other = secret.clone();
        other[31] ^= 1;
        assertTrue(slot.open(new KeySource.KeyFile(other, "k"), REPO_ID).isEmpty());
        // a password never opens a key file slot, even one equal to the file's text
        assertTrue(slot.open(new KeySource.Password("x".toCharArray()), REPO_ID).isEmpty());
    }

    @Test
    void tooShortKeyFileIsRefused() throws Exception {
        Path f = dir.resolve("short");
        Files.write(f, new byte[8]);
        Exception e = assertThrows(java.io.IOException.class, () -> KeySource.KeyFile.read(f));
        assertTrue(e.getMessage().contains("at least 16"), e.getMessage());
    }

    @Test
    void addingAndRemovingSlotsNeverTouchesData() throws Exception {
        LocalStore store = new LocalStore(dir.resolve("repo"));
        Repository repo = TestRepos.init(store);
        byte[] data = TestRepos.random(new Random(2), 100_000);
        ChunkId id = repo.save(BlobType.DATA, data);
        repo.flush();
        Map<String, byte[]> before = snapshotOf(store, "data/");
        before.putAll(snapshotOf(store, "index/"));

        KeySource second = new KeySource.Password("second".toCharArray());
        Repository.Slot added = repo.addKeySlot(second, TestRepos.CHEAP_KDF, Clock.systemUTC());
        assertEquals(2, repo.keySlots().size());

        Repository viaSecond = Repository.open(store, second);
        assertEquals(added.name(), viaSecond.keySlotName());
        assertArrayEquals(data, viaSecond.load(id));

        // remove the first slot while opened with the second one
        Repository.Slot removed = viaSecond.removeKeySlot(repo.keySlotName().substring(5, 17));
        assertEquals(repo.keySlotName(), removed.name());
        assertThrows(RepositoryException.WrongKey.class, () -> Repository.open(store, TestRepos.PASSWORD));
        assertArrayEquals(data, Repository.open(store, second).load(id));

        Map<String, byte[]> after = snapshotOf(store, "data/");
        after.putAll(snapshotOf(store, "index/"));
        assertEquals(before.keySet(), after.keySet());
        for (String k : before.keySet()) {
            assertArrayEquals(before.get(k), after.get(k), k + " changed");
        }
    }

    @Test
    void theLastSlotAndTheSlotInUseCannotBeRemoved() throws Exception {
        LocalStore store = new LocalStore(dir.resolve("repo"));
        Repository repo = TestRepos.init(store);
        String own = repo.keySlotName().substring(5);
        RepositoryException inUse = assertThrows(RepositoryException.class, () -> repo.removeKeySlot(own));
        assertTrue(inUse.getMessage().contains("opened with"), inUse.getMessage());

        Repository.Slot other = repo.addKeySlot(new KeySource.Password("b".toCharArray()), TestRepos.CHEAP_KDF,
                Clock.systemUTC());
        Repository viaOther = Repository.open(store, new KeySource.Password("b".toCharArray()));
        viaOther.removeKeySlot(own.substring(0, 12));
        // now only the slot in use is left: refused as in use (and it is the last one)
        assertThrows(RepositoryException.class, () -> viaOther.removeKeySlot(other.id()));
        assertEquals(1, store.list(KeySlot.PREFIX).size());
        assertThrows(IllegalArgumentException.class, () -> viaOther.removeKeySlot("../config"));
    }

    @Test
    void wrongPasswordIsAClearError() throws Exception {
        LocalStore store = new LocalStore(dir.resolve("repo"));
        TestRepos.init(store);
        RepositoryException.WrongKey e = assertThrows(RepositoryException.WrongKey.class,
                () -> Repository.open(store, new KeySource.Password("nope".toCharArray())));
        assertTrue(e.getMessage().startsWith("wrong password"), e.getMessage());
        RepositoryException.WrongKey k = assertThrows(RepositoryException.WrongKey.class,
                () -> Repository.open(store, new KeySource.KeyFile(new byte[32], "f")));
        assertTrue(k.getMessage().contains("no keyfile key slot"), k.getMessage());
    }

    @Test
    void eachRepositoryHasItsOwnMasterKey() throws Exception {
        Repository a = TestRepos.init(new LocalStore(dir.resolve("a")));
        Repository b = TestRepos.init(new LocalStore(dir.resolve("b")));
        assertNotEquals(a.config().id(), b.config().id());
        assertTrue(!java.util.Arrays.equals(a.masterKey().material(), b.masterKey().material()));
    }

    /** Writes a slot like {@code template} with other cost values, as a careless or hostile writer could. */
    private static String addSlotWithCost(LocalStore store, KeySlot template, Integer memoryKib, Integer iterations)
            throws Exception {
        KeySlot.KdfSpec k = template.kdf();
        KeySlot odd = new KeySlot(1, template.kind(), template.created(), "other", "mallory",
                new KeySlot.KdfSpec(k.algorithm(), k.salt(), memoryKib, iterations, k.parallelism()), template.data());
        byte[] json = odd.toJson();
        store.put(KeySlot.objectName(json), json);
        return KeySlot.objectName(json);
    }

    @Test
    void aSlotWithOutOfRangeCostIsSkippedAndCanBeRemoved() throws Exception {
        LocalStore store = new LocalStore(dir.resolve("repo"));
        Repository repo = TestRepos.init(store);
        KeySlot mine = repo.keySlots().get(0).slot();
        String bad = addSlotWithCost(store, mine, 0, 101);
        String id = bad.substring(5, 21);

        // the rightful password still opens the repository, with a warning that names the odd slot and why
        ch.qos.logback.classic.Logger log = (ch.qos.logback.classic.Logger) org.slf4j.LoggerFactory
                .getLogger(Repository.class);
        ch.qos.logback.core.read.ListAppender<ch.qos.logback.classic.spi.ILoggingEvent> warnings =
                new ch.qos.logback.core.read.ListAppender<>();
        warnings.start();
        log.addAppender(warnings);
        Repository again;
        try {
            again = Repository.open(store, TestRepos.PASSWORD);
        } finally {
            log.detachAppender(warnings);
        }
        assertEquals(repo.keySlotName(), again.keySlotName());
        assertTrue(warnings.list.stream().anyMatch(w -> w.getLevel() == ch.qos.logback.classic.Level.WARN
                && w.getFormattedMessage().contains("skipping key slot " + id + ", it is damaged: key slot records an "
                + "unusable key derivation cost")), warnings.list.toString());
        Repository.Slot listed = again.keySlots().stream().filter(s -> s.name().equals(bad)).findFirst().orElseThrow();
        assertEquals(null, listed.slot());
        assertTrue(listed.damage().contains("unusable key derivation cost"), listed.damage());

        // a wrong password names the damaged slot besides saying the password is wrong
        RepositoryException.WrongKey wrong = assertThrows(RepositoryException.WrongKey.class,
                () -> Repository.open(store, new KeySource.Password("nope".toCharArray())));
        assertTrue(wrong.getMessage().startsWith("wrong password: none of the 1 password key slot(s)"),
                wrong.getMessage());
        assertTrue(wrong.getMessage().contains("key slot " + id + " is damaged: key slot records an unusable key "
                + "derivation cost: Argon2id memory must be"), wrong.getMessage());

        // an out-of-range cost that parses (iterations 101 with sane memory) is skipped the same way
        addSlotWithCost(store, mine, 1024, 101);
        assertEquals(repo.keySlotName(), Repository.open(store, TestRepos.PASSWORD).keySlotName());

        // the damaged slot can be removed
        Repository.Slot removed = again.removeKeySlot(id);
        assertEquals(bad, removed.name());
        assertEquals(2, store.list(KeySlot.PREFIX).size());
    }

    @Test
    void damagedSlotsAreReportedAsDamageNotAsAWrongPassword() throws Exception {
        LocalStore store = new LocalStore(dir.resolve("repo"));
        Repository repo = TestRepos.init(store);
        byte[] mine = store.get(repo.keySlotName());
        // the only slot, cut short: not valid JSON
        byte[] cut = java.util.Arrays.copyOf(mine, mine.length / 2);
        store.delete(repo.keySlotName());
        store.put(KeySlot.objectName(cut), cut);
        RepositoryException.WrongKey e = assertThrows(RepositoryException.WrongKey.class,
                () -> Repository.open(store, TestRepos.PASSWORD));
        String id = KeySlot.objectName(cut).substring(5, 21);
        assertTrue(e.getMessage().contains("has no usable password key slot"), e.getMessage());
        assertTrue(e.getMessage().contains("key slot " + id + " is damaged: not a valid key slot"), e.getMessage());
        assertTrue(!e.getMessage().contains("wrong password"), e.getMessage());

        // sealed data of the wrong length is damage too, found without trying the password
        store.delete(KeySlot.objectName(cut));
        KeySlot good = KeySlot.parse(repo.keySlotName(), mine);
        KeySlot shortData = new KeySlot(1, good.kind(), good.created(), good.hostname(), good.username(), good.kdf(),
                good.data().substring(0, 40));
        byte[] json = shortData.toJson();
        store.put(KeySlot.objectName(json), json);
        RepositoryException.WrongKey e2 = assertThrows(RepositoryException.WrongKey.class,
                () -> Repository.open(store, TestRepos.PASSWORD));
        assertTrue(e2.getMessage().contains("is damaged: key slot data is 30 bytes"), e2.getMessage());
    }

    @Test
    void aChangedConfigIdIsReportedAsSuchWhenTheKeyIsRight() throws Exception {
        LocalStore store = new LocalStore(dir.resolve("repo"));
        Repository repo = TestRepos.init(store);
        repo.save(BlobType.DATA, TestRepos.random(new Random(5), 1000));
        repo.flush();
        RepositoryConfig c = repo.config();
        RepositoryConfig changed = new RepositoryConfig(c.format(), c.version(), "cd".repeat(32), c.created(),
                c.packSize());
        store.put(RepositoryConfig.OBJECT_NAME, changed.toJson());

        RepositoryException e = assertThrows(RepositoryException.class, () -> Repository.open(store, TestRepos.PASSWORD));
        assertTrue(!(e instanceof RepositoryException.WrongKey), e.toString());
        assertTrue(e.getMessage().contains("config of " + store.location() + " was changed"), e.getMessage());
        assertTrue(e.getMessage().contains("the password is right"), e.getMessage());
        // a wrong password on the changed config is still just a wrong password
        RepositoryException.WrongKey wrong = assertThrows(RepositoryException.WrongKey.class,
                () -> Repository.open(store, new KeySource.Password("nope".toCharArray())));
        assertTrue(wrong.getMessage().startsWith("wrong password"), wrong.getMessage());

        store.put(RepositoryConfig.OBJECT_NAME, c.toJson());
        assertEquals(repo.keySlotName(), Repository.open(store, TestRepos.PASSWORD).keySlotName());
    }

    @Test
    void aRemovalThatLosesItsOwnSlotMeanwhilePutsTheRemovedSlotBack() throws Exception {
        LocalStore local = new LocalStore(dir.resolve("repo"));
        Repository first = TestRepos.init(local);
        KeySource secondKey = new KeySource.Password("second".toCharArray());
        Repository.Slot second = first.addKeySlot(secondKey, TestRepos.CHEAP_KDF, Clock.systemUTC());
        byte[] firstSlot = local.get(first.keySlotName());
        // another process that ignores the key-change lock (an older Ferry) removes our slot just as we
        // remove its slot: the store deletes both
        dev.ferry.store.Store racing = new dev.ferry.store.Store() {
            public String location() {
                return local.location();
            }

            public boolean exists(String name) throws java.io.IOException {
                return local.exists(name);
            }

            public long size(String name) throws java.io.IOException {
                return local.size(name);
            }

            public byte[] get(String name) throws java.io.IOException {
                return local.get(name);
            }

            public byte[] getRange(String name, long offset, int length) throws java.io.IOException {
                return local.getRange(name, offset, length);
            }

            public void put(String name, byte[] data) throws java.io.IOException {
                local.put(name, data);
            }

            public void put(String name, Path file) throws java.io.IOException {
                local.put(name, file);
            }

            public List<StoreObject> list(String prefix) throws java.io.IOException {
                return local.list(prefix);
            }

            public void delete(String name) throws java.io.IOException {
                if (name.equals(second.name())) {
                    local.delete(first.keySlotName());
                }
                local.delete(name);
            }

            public void close() {
            }
        };
        Repository viaFirst = Repository.openKeyOnly(racing, TestRepos.PASSWORD);
        RepositoryException e = assertThrows(RepositoryException.class, () -> viaFirst.removeKeySlot(second.id()));
        assertTrue(e.getMessage().contains("was removed by another key change meanwhile; key slot "
                + second.id().substring(0, 16) + " was put back"), e.getMessage());
        assertEquals(List.of(second.name()), local.list(KeySlot.PREFIX).stream().map(StoreObject::name).toList());
        assertEquals(second.name(), Repository.open(local, secondKey).keySlotName());
        assertTrue(firstSlot.length > 0);
    }

    static Map<String, byte[]> snapshotOf(LocalStore store, String prefix) throws Exception {
        Map<String, byte[]> m = new HashMap<>();
        List<StoreObject> objects = store.list(prefix);
        for (StoreObject o : objects) {
            m.put(o.name(), store.get(o.name()));
        }
        return m;
    }
}
