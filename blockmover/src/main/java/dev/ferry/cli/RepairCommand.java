package dev.ferry.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.ParentCommand;

@Command(name = "repair", description = "Repair a damaged repository: remove or rebuild what cannot be read.",
        subcommands = {RepairSnapshotsCommand.class, RepairIndexCommand.class})
final class RepairCommand {
    @ParentCommand
    Main main;
}
