package dev.ferry.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.EOFException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LocalStoreTest {
    @TempDir
    Path dir;

    @Test
    void objectsRoundTripAndListByPrefix() throws Exception {
        LocalStore store = new LocalStore(dir.resolve("r"));
        store.put("config", "c".getBytes(StandardCharsets.US_ASCII));
        store.put("data/ab/ab01", new byte[] {1, 2, 3, 4, 5});
        store.put("data/cd/cd02", new byte[10]);
        store.put("index/0001", new byte[7]);
        assertTrue(store.exists("data/ab/ab01"));
        assertFalse(store.exists("data/ab/ab99"));
        assertEquals(5, store.size("data/ab/ab01"));
        assertArrayEquals(new byte[] {2, 3, 4}, store.getRange("data/ab/ab01", 1, 3));
        assertThrows(EOFException.class, () -> store.getRange("data/ab/ab01", 3, 3));
        assertThrows(NoSuchObjectException.class, () -> store.get("data/ab/ab99"));
        assertThrows(NoSuchObjectException.class, () -> store.getRange("nope", 0, 1));

        List<StoreObject> data = store.list("data/");
        data = data.stream().sorted(Comparator.comparing(StoreObject::name)).toList();
        assertEquals(List.of(new StoreObject("data/ab/ab01", 5), new StoreObject("data/cd/cd02", 10)), data);
        assertEquals(4, store.list("").size());
        assertEquals(List.of(), store.list("keys/"));

        store.delete("data/ab/ab01");
        store.delete("data/ab/ab01");
        assertFalse(store.exists("data/ab/ab01"));
    }

    @Test
    void putReplacesAtomicallyAndLeavesNoTemporaryFiles() throws Exception {
        LocalStore store = new LocalStore(dir.resolve("r"));
        store.put("x/obj", "old".getBytes(StandardCharsets.US_ASCII));
        Path src = dir.resolve("outside.bin");
        Files.writeString(src, "new content");
        store.put("x/obj", src);
        assertEquals("new content", new String(store.get("x/obj"), StandardCharsets.US_ASCII));
        assertTrue(Files.exists(src), "a file outside the staging directory is copied, not moved");

        Path staged = Files.createTempFile(Files.createDirectories(store.stagingDirectory()), "pack-", ".tmp");
        Files.writeString(staged, "staged");
        store.put("x/staged", staged);
        assertFalse(Files.exists(staged), "a staged file is moved into place");
        assertEquals("staged", new String(store.get("x/staged"), StandardCharsets.US_ASCII));
        try (var s = Files.list(store.stagingDirectory())) {
            assertEquals(0, s.count(), "no temporary files left");
        }
        // an unfinished write in tmp/ is never listed as an object
        Files.writeString(store.stagingDirectory().resolve("partial.tmp"), "half");
        assertEquals(2, store.list("").size());
    }

    @Test
    void namesThatEscapeTheRepositoryAreRefused() {
        LocalStore store = new LocalStore(dir.resolve("r"));
        for (String bad : List.of("../x", "/etc/passwd", "a/../../b", "a//b", "", "tmp/x", "a\\b", "./a")) {
            assertThrows(IllegalArgumentException.class, () -> store.put(bad, new byte[1]), bad);
        }
        assertFalse(Files.exists(dir.resolve("x")));
    }

    @Test
    void aNewRepositoryNeedsANewOrEmptyDirectory() throws Exception {
        new LocalStore(dir.resolve("new/deeper")).prepareForNewRepository();
        assertTrue(Files.isDirectory(dir.resolve("new/deeper")));

        Path mount = Files.createDirectories(dir.resolve("mount/lost+found")).getParent();
        new LocalStore(mount).prepareForNewRepository();

        Path busy = Files.createDirectories(dir.resolve("home"));
        Files.writeString(busy.resolve("notes.txt"), "mine");
        Exception e = assertThrows(java.io.IOException.class, () -> new LocalStore(busy).prepareForNewRepository());
        assertTrue(e.getMessage().contains("is not empty (it holds 'notes.txt')"), e.getMessage());

        Path file = Files.writeString(dir.resolve("file"), "x");
        Exception f = assertThrows(java.io.IOException.class, () -> new LocalStore(file).prepareForNewRepository());
        assertTrue(f.getMessage().contains("is not a directory"), f.getMessage());

        Exception g = assertThrows(java.io.IOException.class,
                () -> new LocalStore(file.resolve("sub")).prepareForNewRepository());
        assertTrue(g.getMessage().startsWith("cannot create the repository directory " + file.resolve("sub")),
                g.getMessage());
    }

    @Test
    void writeFailuresSayWhatAndWhere() throws Exception {
        Path file = Files.writeString(dir.resolve("plainfile"), "x");
        LocalStore store = new LocalStore(file);
        Exception e = assertThrows(java.io.IOException.class, () -> store.put("config", new byte[1]));
        assertTrue(e.getMessage().startsWith("cannot store " + file.resolve("config") + ": "), e.getMessage());
    }

    @Test
    void repositoryUrlsOpenTheRightStore() throws Exception {
        assertEquals(dir.resolve("a").toString(), Stores.open(dir.resolve("a").toString(), Map.of()).location());
        assertEquals(dir.resolve("b").toString(), Stores.open("file://" + dir.resolve("b"), Map.of()).location());
        assertThrows(IllegalArgumentException.class, () -> Stores.open("file://otherhost/x", Map.of()));
        assertThrows(IllegalArgumentException.class, () -> Stores.open("gs://bucket/x", Map.of()));
        assertThrows(IllegalArgumentException.class, () -> Stores.open("", Map.of()));
        try (Store s3 = Stores.open("s3://my-bucket/some/prefix", Map.of("AWS_ENDPOINT_URL", "http://127.0.0.1:1"))) {
            assertEquals("s3://my-bucket/some/prefix", s3.location());
        }
    }
    @Test
    void filesAre0600AndDirectories0700WhateverTheUmask() throws Exception {
        // the test JVM runs under a permissive umask (022 or looser): the store must set modes itself
        Path root = dir.resolve("new/repo");
        LocalStore store = new LocalStore(root);
        store.prepareForNewRepository();
        store.put("keys/abcd", new byte[] {1});
        store.put("data/ab/ab01", new byte[] {2});
        Path outside = dir.resolve("pack.bin");
        Files.write(outside, new byte[] {3});
        Files.setPosixFilePermissions(outside, java.nio.file.attribute.PosixFilePermissions.fromString("rw-rw-rw-"));
        store.put("data/cd/cd02", outside);
        Path staged = store.stagingDirectory().resolve("pack-1.tmp");
        Files.write(staged, new byte[] {4});
        Files.setPosixFilePermissions(staged, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
        store.put("data/ef/ef03", staged);

        for (String f : List.of("keys/abcd", "data/ab/ab01", "data/cd/cd02", "data/ef/ef03")) {
            assertEquals("rw-------", mode(root.resolve(f)), f);
        }
        for (Path d : List.of(root, root.resolve("keys"), root.resolve("data"), root.resolve("data/ab"),
                root.resolve("tmp"), dir.resolve("new"))) {
            assertEquals("rwx------", mode(d), d.toString());
        }
    }

    private static String mode(Path p) throws Exception {
        return java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(p));
    }
}
