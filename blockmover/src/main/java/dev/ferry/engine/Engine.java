package dev.ferry.engine;

import java.io.IOException;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The engine SPI: what Ferry needs from a storage engine (ZFS, cStor...) to back up and restore its volumes.
 * Implementations are found with {@link java.util.ServiceLoader} (see {@link Engines}); the block engine in
 * {@code dev.ferry.block} moves the data and knows nothing of any engine.
 *
 * <p>A backup through an engine: {@link #createSnapshot}, find the newest earlier snapshot recorded in the
 * repository as backed up, {@link #changedRanges} between the two, {@link #open} the new snapshot and read
 * only those ranges, then {@link #deleteSnapshot} the engine's older snapshots. A restore:
 * {@link #prepareRestore}, write, {@link RestoreTarget#finish}.
 */
public interface Engine {
    /**
     * This engine working for one job: its child processes and waits end when the job is cancelled, and what it
     * leaves on the node while the job runs is marked as the job's. The engine returned is used by that job only.
     * By default the engine itself, for engines that neither block nor leave anything behind.
     */
    default Engine forJob(EngineContext context) {
        return this;
    }

    /** Short lower-case name used on the command line and in snapshot metadata ({@code zfs}, {@code cstor}). */
    String name();

    /**
     * Snapshots of {@code volume}, oldest first. Those Ferry made carry the property
     * {@code managed=true} ({@link dev.ferry.block.EngineBackup#MANAGED}) and the id of the repository they were
     * taken for ({@link dev.ferry.block.EngineBackup#REPOSITORY}); Ferry deletes no other, and a backup into
     * one repository deletes none taken for another.
     */
    List<EngineSnapshot> listSnapshots(String volume) throws IOException;

    /**
     * Takes a crash-consistent snapshot of {@code volume} named {@code name}, marked as Ferry's and as taken for
     * the repository whose id is {@code repository} (both marks stored with the snapshot in the engine).
     */
    EngineSnapshot createSnapshot(String volume, String name, String repository) throws IOException;

    void deleteSnapshot(EngineSnapshot snapshot) throws IOException;

    /** Opens a snapshot's content for reading; closing releases whatever it took (a temporary clone...). */
    VolumeReader open(EngineSnapshot snapshot) throws IOException;

    /**
     * Byte ranges of the volume that may differ between {@code base} and {@code target} (a superset is fine,
     * a missed range is data loss). Empty when the engine cannot tell, in which case the whole volume is read.
     * {@code base}'s properties include what was recorded with its backup, {@code target}'s what its
     * {@link VolumeReader#properties()} reported.
     */
    Optional<ChangedRanges> changedRanges(EngineSnapshot base, EngineSnapshot target) throws IOException;

    /**
     * Creates or opens the volume {@code target} of {@code size} bytes for a restore. Refuses to overwrite a
     * volume that holds data unless {@code options} has {@code force=true}.
     */
    RestoreTarget prepareRestore(String target, long size, Map<String, String> options) throws IOException;
}
