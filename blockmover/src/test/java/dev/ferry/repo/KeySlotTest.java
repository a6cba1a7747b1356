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

    static Map<String, byte[]> snapshotOf(LocalStore store, String prefix) throws Exception {
        Map<String, byte[]> m = new HashMap<>();
        List<StoreObject> objects = store.list(prefix);
        for (StoreObject o : objects) {
            m.put(o.name(), store.get(o.name()));
        }
        return m;
    }
}
