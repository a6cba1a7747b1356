package dev.ferry.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.cli.ExitCodes;
import dev.ferry.cli.Main;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Help works on every command of the distribution (engines and file mover included), at every level, as
 * {@code --help}, {@code -h} and {@code ferry help PATH...}; every command is listed in its parent's help with
 * a summary that is a whole sentence. The tree is discovered from the help itself, as a user would.
 */
class HelpEverywhereTest {
    record Run(int code, String out, String err) {
    }

    private static Run run(List<String> args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.execute(args.toArray(String[]::new), Map.of(), new PrintWriter(out, true),
                new PrintWriter(err, true), null);
        return new Run(code, out.toString(), err.toString());
    }

    /** The "Commands:" section of a help text: each command's name and its whole summary. */
    private static List<String[]> commands(String help) {
        List<String[]> out = new ArrayList<>();
        boolean in = false;
        for (String line : help.split("\n")) {
            if (line.equals("Commands:")) {
                in = true;
            } else if (!in) {
                continue;
            } else if (line.isBlank() || !line.startsWith("  ")) {
                break;
            } else if (line.startsWith("    ") && !out.isEmpty()) {
                String[] last = out.get(out.size() - 1);
                last[1] = last[1] + " " + line.strip();
            } else {
                String t = line.strip();
                int sp = t.indexOf(' ');
                out.add(new String[] {sp < 0 ? t : t.substring(0, sp), sp < 0 ? "" : t.substring(sp).strip()});
            }
        }
        return out;
    }

    private static void visit(List<String> path, List<List<String>> seen) {
        seen.add(path);
        String usage = "Usage: " + String.join(" ", concat(List.of("ferry"), path)) + " ";
        Run help = null;
        for (List<String> args : List.of(concat(path, List.of("--help")), concat(path, List.of("-h")),
                concat(List.of("help"), path))) {
            Run r = run(args);
            assertEquals(0, r.code(), args + ": " + r);
            assertTrue(r.out().startsWith(usage), args + ": " + r);
            help = r;
        }
        for (String[] c : commands(help.out())) {
            assertTrue(c[1].endsWith("."), "the summary of '" + String.join(" ", path) + " " + c[0]
                    + "' is a whole sentence: '" + c[1] + "'");
            if (!c[0].equals("help")) {
                visit(concat(path, List.of(c[0])), seen);
            }
        }
    }

    @Test
    void everyCommandHasHelp() {
        List<List<String>> seen = new ArrayList<>();
        visit(List.of(), seen);
        for (List<String> expected : List.of(List.of("backup", "block"), List.of("backup", "files"),
                List.of("backup", "zfs"), List.of("restore", "files"), List.of("restore", "zfs"),
                List.of("clone", "zfs"), List.of("key", "remove"), List.of("forget"), List.of("verify"))) {
            assertTrue(seen.contains(expected), expected + " was reached: " + seen);
        }
        Run deep = run(List.of("help", "backup", "block"));
        assertTrue(deep.out().startsWith("Usage: ferry backup block "), "not backup's help: " + deep);
        Run unknown = run(List.of("help", "restore", "tape"));
        assertEquals(ExitCodes.USAGE, unknown.code(), unknown.toString());
        assertTrue(unknown.err().contains("'ferry restore' has no command 'tape'"), unknown.toString());
    }

    private static List<String> concat(List<String> a, List<String> b) {
        List<String> r = new ArrayList<>(a);
        r.addAll(b);
        return r;
    }
}
