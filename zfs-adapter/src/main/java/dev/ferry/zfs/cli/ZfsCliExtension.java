package dev.ferry.zfs.cli;

import dev.ferry.cli.CliExtension;
import dev.ferry.cli.Main;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Adds {@code backup zfs}, {@code restore zfs} and {@code clone zfs} to the {@code ferry} command. */
public final class ZfsCliExtension implements CliExtension {
    @Command(name = "clone", description = "Make a volume from a local snapshot without copying data.")
    static final class CloneGroup {
    }

    @Override
    public void register(Main main, CommandLine root) {
        root.getSubcommands().get("backup").addSubcommand(new ZfsBackupCommand(main));
        root.getSubcommands().get("restore").addSubcommand(new ZfsRestoreCommand(main));
        if (!root.getSubcommands().containsKey("clone")) {
            root.addSubcommand(new CloneGroup());
        }
        root.getSubcommands().get("clone").addSubcommand(new ZfsCloneCommand(main));
    }
}
