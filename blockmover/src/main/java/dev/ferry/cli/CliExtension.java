package dev.ferry.cli;

import picocli.CommandLine;

/**
 * Adds commands to the {@code ferry} command line from another module (an engine adapter, the file mover),
 * found with {@link java.util.ServiceLoader}: blockmover knows no engine, yet {@code ferry backup zfs} exists
 * when the ZFS adapter is on the class path.
 *
 * <p>An extension adds command objects that hold {@code main} for the shared options (repository, keys,
 * output), usually under the existing {@code backup} and {@code restore} commands:
 * <pre>{@code root.getSubcommands().get("backup").addSubcommand(new ZfsBackupCommand(main));}</pre>
 */
public interface CliExtension {
    /**
     * Registers this extension's commands.
     *
     * @param main the command line's shared state: repository, credentials, output, clock, host name
     * @param root the {@code ferry} command, with {@code backup} and {@code restore} already present
     */
    void register(Main main, CommandLine root);
}
