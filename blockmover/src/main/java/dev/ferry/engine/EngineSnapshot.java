package dev.ferry.engine;

import java.time.Instant;
import java.util.Map;

/**
 * A snapshot as an engine knows it.
 *
 * @param volume     the engine's name of the volume (a ZFS dataset, a cStor volume...)
 * @param name       the snapshot's name within the volume
 * @param guid       an identity that survives renames and tells two snapshots of the same name apart, or null
 * @param created    when it was taken
 * @param properties further engine facts worth recording with a backup
 */
public record EngineSnapshot(String volume, String name, String guid, Instant created, Map<String, String> properties) {
}
