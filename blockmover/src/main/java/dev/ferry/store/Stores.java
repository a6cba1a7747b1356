package dev.ferry.store;

import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.Map;

/** Opens a {@link Store} from a repository URL: a path, {@code file:///path}, or {@code s3://bucket/prefix}. */
public final class Stores {
    private Stores() {
    }

    public static Store open(String url, Map<String, String> env) {
        if (url == null || url.isBlank()) {
            throw new IllegalArgumentException("no repository given: use -r/--repo or set FERRY_REPOSITORY");
        }
        if (url.startsWith("s3://")) {
            return new S3Store(S3Settings.fromUrl(url, env));
        }
        if (url.startsWith("file:")) {
            try {
                URI uri = new URI(url);
                if (uri.getAuthority() != null && !uri.getAuthority().isEmpty()
                        && !uri.getAuthority().equals("localhost")) {
                    throw new IllegalArgumentException("file URL '" + url + "' names host '" + uri.getAuthority()
                            + "'; use file:///absolute/path");
                }
                return new LocalStore(Path.of(uri.getPath()));
            } catch (URISyntaxException e) {
                throw new IllegalArgumentException("invalid file URL '" + url + "': " + e.getMessage());
            }
        }
        if (url.matches("^[a-zA-Z][a-zA-Z0-9+.-]*://.*")) {
            throw new IllegalArgumentException("unsupported repository URL '" + url
                    + "': use a directory path, file:///path or s3://bucket/prefix");
        }
        return new LocalStore(Path.of(url));
    }
}
