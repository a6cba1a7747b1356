package dev.ferry.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.ParentCommand;

@Command(name = "repair", description = "Repair a damaged repository.",
        subcommands = {RepairIndexCommand.class})
final class RepairCommand {
    @ParentCommand
    Main main;
}
