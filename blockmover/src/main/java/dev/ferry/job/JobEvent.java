package dev.ferry.job;

import java.time.Instant;

/**
 * One progress report of a running job, independent of how it is shown (a terminal bar, a JSON line, a gRPC
 * stream, a Kubernetes status).
 *
 * @param time       when it was made
 * @param phase      what the job is doing ("backup", "restore", "reading snapshots", "repacking")
 * @param done       how much of the phase is done, in {@code unit}
 * @param total      the phase's total in {@code unit}, 0 when not known
 * @param unit       "bytes", or the plural noun the phase counts ("packs", "snapshots", "files")
 * @param bytesNew   bytes the job has added to the repository so far (after dedup, before compression)
 * @param rate       units per second over the recent past, 0 when not known
 * @param etaSeconds seconds left at that rate, -1 when not known
 * @param warning    a warning the job reports with this event (a file it could not read), or null
 */
public record JobEvent(Instant time, String phase, long done, long total, String unit, long bytesNew,
                       double rate, long etaSeconds, String warning) {
    public static final String BYTES = "bytes";
}
