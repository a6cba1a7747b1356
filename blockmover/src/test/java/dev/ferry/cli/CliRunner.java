package dev.ferry.cli;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.HashMap;
import java.util.Map;

/** Runs {@code ferry} in-process with a given environment and captures its output. */
final class CliRunner {
    final Map<String, String> env = new HashMap<>();

    record Result(int exitCode, String out, String err) {
        @Override
        public String toString() {
            return "exit " + exitCode + "\n--- out\n" + out + "--- err\n" + err;
        }
    }

    Result run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.execute(args, env, new PrintWriter(out, true), new PrintWriter(err, true), null);
        return new Result(code, out.toString(), err.toString());
    }
}
