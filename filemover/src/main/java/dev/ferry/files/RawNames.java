package dev.ferry.files;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.reflect.Constructor;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * File names as the bytes the kernel has, not as decoded text: a name that is not valid UTF-8 must be backed up
 * and restored unchanged. java.nio keeps a Unix path's bytes but offers no public way to read or build them,
 * so this uses the JDK's own Unix path class when {@code java.base/sun.nio.fs} is open to Ferry (the ferry jar's
 * manifest and the tests open it), and falls back to UTF-8 text otherwise.
 */
public final class RawNames {
    private static final Logger log = LoggerFactory.getLogger(RawNames.class);
    private static final MethodHandle AS_BYTES;
    private static final MethodHandle NEW_PATH;

    static {
        MethodHandle asBytes = null;
        MethodHandle newPath = null;
        try {
            Class<?> unixPath = Class.forName("sun.nio.fs.UnixPath");
            Class<?> unixFs = Class.forName("sun.nio.fs.UnixFileSystem");
            Method m = unixPath.getDeclaredMethod("asByteArray");
            m.setAccessible(true);
            Constructor<?> c = unixPath.getDeclaredConstructor(unixFs, byte[].class);
            c.setAccessible(true);
            asBytes = MethodHandles.lookup().unreflect(m);
            newPath = MethodHandles.lookup().unreflectConstructor(c);
        } catch (ReflectiveOperationException | RuntimeException e) {
            log.debug("raw file names unavailable ({}); names that are not UTF-8 will not round-trip", e.toString());
        }
        AS_BYTES = asBytes;
        NEW_PATH = newPath;
    }

    private RawNames() {
    }

    /** Whether names that are not valid UTF-8 round-trip in this JVM. */
    public static boolean exact() {
        return AS_BYTES != null;
    }

    /** The bytes of a path (usually one name: {@code path.getFileName()}). */
    public static byte[] bytes(Path p) {
        if (AS_BYTES != null && p.getClass().getName().equals("sun.nio.fs.UnixPath")) {
            try {
                return ((byte[]) AS_BYTES.invoke(p)).clone();
            } catch (Throwable e) {
                // fall through
            }
        }
        return p.toString().getBytes(StandardCharsets.UTF_8);
    }

    /** {@code dir} resolved against one name given as bytes (the caller has checked it holds no '/'). */
    public static Path resolve(Path dir, byte[] name) {
        if (NEW_PATH != null && dir.getClass().getName().equals("sun.nio.fs.UnixPath")) {
            try {
                return dir.resolve((Path) NEW_PATH.invoke(dir.getFileSystem(), name.clone()));
            } catch (Throwable e) {
                // fall through
            }
        }
        return dir.resolve(new String(name, StandardCharsets.UTF_8));
    }

    /** A path from bytes (a symlink target), relative or absolute as the bytes say. */
    public static Path path(Path anyOnSameFs, byte[] bytes) {
        if (NEW_PATH != null && anyOnSameFs.getClass().getName().equals("sun.nio.fs.UnixPath")) {
            try {
                return (Path) NEW_PATH.invoke(anyOnSameFs.getFileSystem(), bytes.clone());
            } catch (Throwable e) {
                // fall through
            }
        }
        return anyOnSameFs.getFileSystem().getPath(new String(bytes, StandardCharsets.UTF_8));
    }

    /** Text for messages: the name with undecodable bytes replaced. */
    public static String show(byte[] name) {
        return new String(name, StandardCharsets.UTF_8);
    }
}
