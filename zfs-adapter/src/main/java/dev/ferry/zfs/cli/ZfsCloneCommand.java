package dev.ferry.zfs.cli;

import dev.ferry.cli.ExitCodes;
import dev.ferry.cli.Main;
import dev.ferry.cli.UsageException;
import dev.ferry.zfs.Zfs;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "zfs", description = {
        "Make a new dataset or zvol from a local ZFS snapshot, without copying data.",
        "TARGET becomes a clone of DATASET@SNAPSHOT: a restore in seconds with no data copied.",
        "Needs no repository. The snapshot cannot be deleted while the clone exists."})
final class ZfsCloneCommand implements Callable<Integer> {
    private final Main main;

    @Parameters(index = "0", paramLabel = "DATASET@SNAPSHOT", description = "The snapshot to clone.")
    String snapshot;

    @Parameters(index = "1", paramLabel = "TARGET", description = "The new dataset or zvol (same pool).")
    String target;

    @Option(names = "-o", paramLabel = "PROPERTY=VALUE", description = "Set a property on the clone (repeatable).")
    Map<String, String> properties = new LinkedHashMap<>();

    ZfsCloneCommand(Main main) {
        this.main = main;
    }

    @Override
    public Integer call() throws Exception {
        if (!snapshot.contains("@")) {
            throw new UsageException("name the snapshot as DATASET@SNAPSHOT, not '" + snapshot + "'");
        }
        Zfs.checkName(snapshot);
        Zfs.checkName(target);
        if (target.contains("@")) {
            throw new UsageException("the clone's name is a dataset, not a snapshot: '" + target + "'");
        }
        String pool = snapshot.substring(0, snapshot.indexOf('/') < 0 ? snapshot.indexOf('@') : snapshot.indexOf('/'));
        if (!target.equals(pool) && !target.startsWith(pool + "/")) {
            throw new IllegalArgumentException("a clone lives in the pool of its snapshot (" + pool + "), not in '"
                    + target + "'; restore from a backup to move data to another pool");
        }
        Zfs zfs = Zfs.fromEnvironment(main.env());
        if (zfs.get(snapshot) == null) {
            throw new IllegalArgumentException("no snapshot " + snapshot);
        }
        if (zfs.get(target) != null) {
            throw new IllegalArgumentException(target + " already exists; a clone needs a new name");
        }
        zfs.clone(snapshot, target, properties);
        Zfs.Dataset c = zfs.get(target);
        if (main.json()) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("origin", snapshot);
            m.put("target", target);
            m.put("type", c == null ? null : c.type());
            m.put("mountpoint", c == null || c.isVolume() ? null : c.mountpoint());
            main.printJson(m);
        } else {
            main.out().printf("cloned %s as %s%s%n", snapshot, target,
                    c != null && !c.isVolume() && c.mountpoint().startsWith("/") ? " (mounted at " + c.mountpoint() + ")" : "");
        }
        return ExitCodes.OK;
    }
}
