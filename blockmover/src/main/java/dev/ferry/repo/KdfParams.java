package dev.ferry.repo;

/**
 * Argon2id cost for new password slots. The cost is recorded in each slot, so changing the defaults never
 * affects existing slots.
 */
public record KdfParams(int memoryKiB, int iterations, int parallelism) {
    /** 64 MiB, 3 passes, 1 lane: about a second on a server core, and costly to attack on GPUs. */
    public static final KdfParams DEFAULT = new KdfParams(64 * 1024, 3, 1);

    public KdfParams {
        if (memoryKiB < 8 * parallelism || memoryKiB > 4 * 1024 * 1024) {
            throw new IllegalArgumentException("Argon2id memory must be between 8*parallelism KiB and 4 GiB, got "
                    + memoryKiB + " KiB");
        }
        if (iterations < 1 || iterations > 100) {
            throw new IllegalArgumentException("Argon2id iterations must be 1..100, got " + iterations);
        }
        if (parallelism < 1 || parallelism > 64) {
            throw new IllegalArgumentException("Argon2id parallelism must be 1..64, got " + parallelism);
        }
    }
}
