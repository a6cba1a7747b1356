package dev.ferry.files.cli;

import dev.ferry.cli.CliExtension;
import dev.ferry.cli.Main;
import picocli.CommandLine;

/** Adds {@code ferry backup files}, {@code ferry restore files} and {@code ferry ls}. */
public final class FilesCliExtension implements CliExtension {
    @Override
    public void register(Main main, CommandLine root) {
        root.getSubcommands().get("backup").addSubcommand(new BackupFilesCommand(main));
        root.getSubcommands().get("restore").addSubcommand(new RestoreFilesCommand(main));
        root.addSubcommand(new LsCommand(main));
    }
}
