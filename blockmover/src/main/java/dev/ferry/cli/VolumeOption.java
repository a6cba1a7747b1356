package dev.ferry.cli;

import picocli.CommandLine.Option;

/** {@code --volume NAME} of every backup command: the identity a volume's snapshots share. */
public final class VolumeOption {
    @Option(names = "--volume", paramLabel = "NAME", description = {
            "Name of the volume, e.g. its PV name: snapshots of one volume share it wherever the volume is read",
            "from, and 'latest' and parents are looked up by it. Default: the source, on this host."})
    String volume;

    /** The name given, checked, or null. */
    public String name() {
        if (volume == null) {
            return null;
        }
        if (volume.isBlank() || volume.length() > 253 || volume.chars().anyMatch(Character::isISOControl)
                || !volume.strip().equals(volume)) {
            throw new UsageException("--volume is a name of 1 to 253 characters without control characters or "
                    + "surrounding blanks, not '" + volume + "'");
        }
        if ("latest".equals(volume)) {
            throw new UsageException("'latest' cannot be a volume name: it means the newest snapshot");
        }
        return volume;
    }
}
