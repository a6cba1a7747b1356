package dev.ferry.cli;

import java.io.PrintWriter;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Help;
import picocli.CommandLine.Parameters;

/**
 * {@code ferry help [COMMAND [SUBCOMMAND...]]}: the help of any command at any depth ({@code ferry help backup
 * block} shows {@code backup block}'s, where picocli's own help command stops at the first level).
 */
@Command(name = "help", helpCommand = true, description = {
        "Show the help of a command, at any depth: 'ferry help backup block'.",
        "Every command also takes -h/--help."})
final class HelpCommand implements CommandLine.IHelpCommandInitializable2, Callable<Integer> {
    @Parameters(paramLabel = "COMMAND", arity = "0..*", description = "The command and its subcommands.")
    List<String> path = List.of();

    private CommandLine self;
    private Help.ColorScheme colors;
    private PrintWriter out;

    @Override
    public void init(CommandLine helpCommandLine, Help.ColorScheme colorScheme, PrintWriter out, PrintWriter err) {
        this.self = helpCommandLine;
        this.colors = colorScheme;
        this.out = out;
    }

    @Override
    public Integer call() {
        CommandLine c = self.getParent();
        for (String name : path) {
            CommandLine sub = c.getSubcommands().get(name);
            if (sub == null) {
                throw new UsageException("'" + c.getCommandSpec().qualifiedName() + "' has no command '" + name
                        + "'" + (c.getSubcommands().isEmpty() ? "" : "; it has: "
                        + String.join(", ", c.getSubcommands().keySet())));
            }
            c = sub;
        }
        c.usage(out, colors);
        return ExitCodes.OK;
    }
}
