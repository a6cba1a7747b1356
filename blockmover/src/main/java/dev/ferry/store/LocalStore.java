package dev.ferry.store;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AccessDeniedException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.LinkOption;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.stream.Stream;

/**
 * A repository in a local directory (or a mounted network filesystem). Each object is a file at its name's
 * path. Writes go to a temporary file under {@code tmp/}, are fsynced, renamed into place and the parent
 * directory fsynced, so an object is either absent or complete, also after a crash or power loss. Files are
 * made {@code 0600} and directories {@code 0700} whatever the process's umask (key slots and locks are readable
 * by nobody else), where the filesystem has POSIX permissions.
 */
public final class LocalStore implements Store {
    static final String TMP = "tmp";
    static final Set<PosixFilePermission> FILE_MODE = PosixFilePermissions.fromString("rw-------");
    static final Set<PosixFilePermission> DIRECTORY_MODE = PosixFilePermissions.fromString("rwx------");

    private final Path root;

    public LocalStore(Path root) {
        this.root = root.toAbsolutePath().normalize();
    }

    public Path root() {
        return root;
    }

    @Override
    public boolean contains(Path path) throws IOException {
        Path real = resolveLinks(path);
        if (real.startsWith(resolveLinks(root))) {
            return true;
        }
        // another name of a repository file: writing through it would change the object in place
        if (Files.isRegularFile(real, LinkOption.NOFOLLOW_LINKS)
                && ((Number) Files.getAttribute(real, "unix:nlink", LinkOption.NOFOLLOW_LINKS)).intValue() > 1) {
            Object key = Files.readAttributes(real, BasicFileAttributes.class).fileKey();
            if (key != null && Files.isDirectory(root)) {
                try (Stream<Path> files = Files.walk(root)) {
                    return files.anyMatch(f -> {
                        try {
                            return Files.isRegularFile(f, LinkOption.NOFOLLOW_LINKS)
                                    && key.equals(Files.readAttributes(f, BasicFileAttributes.class,
                                            LinkOption.NOFOLLOW_LINKS).fileKey());
                        } catch (IOException e) {
                            return false;
                        }
                    });
                }
            }
        }
        return false;
    }

    @Override
    public boolean isInside(Path dir) throws IOException {
        return resolveLinks(root).startsWith(resolveLinks(dir));
    }

    /**
     * The absolute path {@code path} names once every symbolic link in it is resolved: the real path of its
     * existing part, the rest appended; a dangling symbolic link is followed to where a file created through it
     * would be.
     */
    static Path resolveLinks(Path path) throws IOException {
        return resolveLinks(path.toAbsolutePath(), 0);
    }

    private static Path resolveLinks(Path p, int links) throws IOException {
        if (links > 40) {
            throw new IOException("cannot resolve " + p + ": too many levels of symbolic links");
        }
        if (Files.exists(p)) {
            return p.toRealPath();
        }
        Path parent = p.getParent();
        if (Files.isSymbolicLink(p)) {
            Path to = Files.readSymbolicLink(p);
            return resolveLinks(parent == null ? to.toAbsolutePath() : parent.resolve(to), links + 1);
        }
        if (parent == null || p.getFileName() == null) {
            return p.normalize();
        }
        return resolveLinks(parent, links).resolve(p.getFileName()).normalize();
    }

    @Override
    public String location() {
        return root.toString();
    }

    private Path path(String name) {
        if (name.isEmpty() || name.startsWith("/") || name.contains("\\") || name.contains("//")) {
            throw new IllegalArgumentException("invalid object name '" + name + "'");
        }
        for (String part : name.split("/")) {
            if (part.equals("..") || part.equals(".") || part.isEmpty()) {
                throw new IllegalArgumentException("invalid object name '" + name + "'");
            }
        }
        if (name.equals(TMP) || name.startsWith(TMP + "/")) {
            throw new IllegalArgumentException("object names under '" + TMP + "/' are reserved");
        }
        return root.resolve(name);
    }

    @Override
    public boolean exists(String name) {
        return Files.isRegularFile(path(name));
    }

    @Override
    public long size(String name) throws IOException {
        try {
            return Files.size(path(name));
        } catch (NoSuchFileException e) {
            throw new NoSuchObjectException(location(), name);
        }
    }

    @Override
    public byte[] get(String name) throws IOException {
        try {
            return Files.readAllBytes(path(name));
        } catch (NoSuchFileException e) {
            throw new NoSuchObjectException(location(), name);
        }
    }

    @Override
    public byte[] getRange(String name, long offset, int length) throws IOException {
        byte[] out = new byte[length];
        readRange(name, offset, out, length);
        return out;
    }

    @Override
    public void readRange(String name, long offset, byte[] into, int length) throws IOException {
        if (offset < 0 || length < 0 || length > into.length) {
            throw new IllegalArgumentException("invalid range " + offset + "+" + length);
        }
        try (FileChannel ch = FileChannel.open(path(name), StandardOpenOption.READ)) {
            ByteBuffer buf = ByteBuffer.wrap(into, 0, length);
            long pos = offset;
            while (buf.hasRemaining()) {
                int n = ch.read(buf, pos);
                if (n < 0) {
                    throw new EOFException(name + " in " + location() + " is " + ch.size()
                            + " bytes; cannot read " + length + " bytes at offset " + offset);
                }
                pos += n;
            }
        } catch (NoSuchFileException e) {
            throw new NoSuchObjectException(location(), name);
        }
    }

    @Override
    public void put(String name, byte[] data) throws IOException {
        try {
            write(name, data);
        } catch (IOException e) {
            throw failure("store", path(name), e);
        }
    }

    private void write(String name, byte[] data) throws IOException {
        Path target = path(name);
        Path tmp = newTempFile();
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
                ByteBuffer buf = ByteBuffer.wrap(data);
                while (buf.hasRemaining()) {
                    ch.write(buf);
                }
                ch.force(true);
            }
            moveIntoPlace(tmp, target);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    @Override
    public void put(String name, Path file) throws IOException {
        try {
            write(name, file);
        } catch (IOException e) {
            throw failure("store", path(name), e);
        }
    }

    private void write(String name, Path file) throws IOException {
        Path target = path(name);
        Path staging = root.resolve(TMP);
        boolean ours = file.toAbsolutePath().normalize().getParent().equals(staging);
        Path tmp = ours ? file : newTempFile();
        try {
            if (!ours) {
                Files.copy(file, tmp, StandardCopyOption.REPLACE_EXISTING);
            }
            restrict(tmp, FILE_MODE);
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
                ch.force(true);
            }
            moveIntoPlace(tmp, target);
        } finally {
            if (!ours) {
                Files.deleteIfExists(tmp);
            }
        }
    }

    private Path newTempFile() throws IOException {
        Path dir = root.resolve(TMP);
        createDirectories(dir);
        Path file = dir.resolve(UUID.randomUUID() + ".tmp");
        if (posix(dir)) {
            Files.createFile(file, PosixFilePermissions.asFileAttribute(FILE_MODE));
            restrict(file, FILE_MODE); // the umask may have taken bits from the owner too
        } else {
            Files.createFile(file);
        }
        return file;
    }

    /** Creates {@code dir} and its missing parents, each {@code 0700} whatever the umask. */
    private static void createDirectories(Path dir) throws IOException {
        if (Files.isDirectory(dir)) {
            return;
        }
        Path parent = dir.getParent();
        if (parent != null) {
            createDirectories(parent);
        }
        try {
            if (posix(parent == null ? dir : parent)) {
                Files.createDirectory(dir, PosixFilePermissions.asFileAttribute(DIRECTORY_MODE));
                restrict(dir, DIRECTORY_MODE);
            } else {
                Files.createDirectory(dir);
            }
        } catch (FileAlreadyExistsException e) {
            if (!Files.isDirectory(dir)) {
                throw e;
            }
        }
    }

    private static boolean posix(Path p) {
        return p.getFileSystem().supportedFileAttributeViews().contains("posix");
    }

    /** Sets a file's or directory's mode exactly; a filesystem without POSIX modes is left as it is. */
    private static void restrict(Path p, Set<PosixFilePermission> mode) throws IOException {
        if (posix(p)) {
            try {
                Files.setPosixFilePermissions(p, mode);
            } catch (UnsupportedOperationException e) {
                // e.g. a mounted filesystem that does not keep modes
            }
        }
    }

    private void moveIntoPlace(Path tmp, Path target) throws IOException {
        Path parent = target.getParent();
        createDirectories(parent);
        try {
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            throw new IOException("the filesystem of " + root + " cannot rename atomically; it cannot hold a repository", e);
        }
        fsyncDirectory(parent);
    }

    private static void fsyncDirectory(Path dir) throws IOException {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        } catch (IOException e) {
            // some filesystems refuse to open or sync directories; the rename itself is still atomic there
            if (!(e instanceof FileAlreadyExistsException)) {
                org.slf4j.LoggerFactory.getLogger(LocalStore.class).debug("cannot fsync directory {}: {}", dir, e.toString());
            }
        }
    }

    @Override
    public List<StoreObject> list(String prefix) throws IOException {
        // the prefix is a folder ("data/") or a name start; walk from the deepest existing folder it names
        int slash = prefix.lastIndexOf('/');
        String dirPart = slash < 0 ? "" : prefix.substring(0, slash);
        Path start = dirPart.isEmpty() ? root : path(dirPart);
        List<StoreObject> out = new ArrayList<>();
        if (!Files.isDirectory(start)) {
            return out;
        }
        Path tmp = root.resolve(TMP);
        try (Stream<Path> walk = Files.walk(start)) {
            for (Path p : (Iterable<Path>) walk::iterator) {
                if (p.startsWith(tmp) || !Files.isRegularFile(p)) {
                    continue;
                }
                String name = root.relativize(p).toString().replace(java.io.File.separatorChar, '/');
                if (name.startsWith(prefix)) {
                    try {
                        out.add(new StoreObject(name, Files.size(p)));
                    } catch (NoSuchFileException gone) {
                        // deleted while listing: not listed
                    }
                }
            }
        } catch (java.io.UncheckedIOException e) {
            if (!(e.getCause() instanceof NoSuchFileException)) {
                throw e.getCause();
            }
        }
        return out;
    }

    @Override
    public void delete(String name) throws IOException {
        Path p = path(name);
        if (Files.deleteIfExists(p)) {
            fsyncDirectory(p.getParent());
        }
    }

    @Override
    public Path stagingDirectory() {
        Path tmp = root.resolve(TMP);
        try {
            createDirectories(tmp); // 0700 before anyone spools into it
        } catch (IOException e) {
            // whoever writes there reports the error with its path
        }
        return tmp;
    }

    @Override
    public int removeAbandonedStaging(java.time.Duration olderThan) throws IOException {
        Path tmp = root.resolve(TMP);
        if (!Files.isDirectory(tmp)) {
            return 0;
        }
        long cutoff = System.currentTimeMillis() - olderThan.toMillis();
        int removed = 0;
        try (DirectoryStream<Path> files = Files.newDirectoryStream(tmp)) {
            for (Path f : files) {
                if (Files.isRegularFile(f) && Files.getLastModifiedTime(f).toMillis() < cutoff) {
                    Files.deleteIfExists(f);
                    removed++;
                }
            }
        }
        return removed;
    }

    /**
     * Creates the directory, or accepts an existing empty one (a filesystem's {@code lost+found} aside).
     * Refuses a file, or a directory with other content, so that a mistyped path never scatters repository
     * files among someone else's.
     */
    @Override
    public void prepareForNewRepository() throws IOException {
        if (Files.exists(root) && !Files.isDirectory(root)) {
            throw new IOException(root + " exists and is not a directory; a repository needs a directory");
        }
        if (Files.isDirectory(root)) {
            try (DirectoryStream<Path> ds = Files.newDirectoryStream(root)) {
                for (Path p : ds) {
                    String n = p.getFileName().toString();
                    if (!n.equals("lost+found") && !n.equals(TMP)) {
                        throw new IOException("directory " + root + " is not empty (it holds '" + n
                                + "'); give a new or empty directory for a new repository");
                    }
                }
            } catch (IOException e) {
                throw failure("read", root, e);
            }
        }
        try {
            createDirectories(root);
        } catch (IOException e) {
            throw failure("create the repository directory", root, e);
        }
    }

    /** An I/O error with what was being done, where, and the operating system's reason. */
    private static IOException failure(String action, Path path, IOException e) {
        if (e.getMessage() != null && e.getMessage().contains(path.toString()) && !(e instanceof FileSystemException)) {
            return e;
        }
        String reason;
        if (e instanceof NoSuchFileException) {
            reason = "no such file or directory";
        } else if (e instanceof AccessDeniedException) {
            reason = "permission denied";
        } else if (e instanceof FileSystemException f && f.getReason() != null) {
            reason = f.getReason();
        } else {
            reason = String.valueOf(e.getMessage());
        }
        String where = e instanceof FileSystemException f && f.getFile() != null && !f.getFile().equals(path.toString())
                ? " (" + f.getFile() + ")" : "";
        return new IOException("cannot " + action + " " + path + ": " + reason + where, e);
    }

    @Override
    public void close() {
    }
}
