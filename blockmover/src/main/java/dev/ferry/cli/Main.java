package dev.ferry.cli;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import dev.ferry.repo.KdfParams;
import dev.ferry.repo.KeySource;
import dev.ferry.repo.Repository;
import dev.ferry.repo.RepositoryException;
import dev.ferry.store.Store;
import dev.ferry.store.Stores;
import dev.ferry.progress.ProgressReporter;
import dev.ferry.job.JobContext;
import dev.ferry.util.Cleanups;
import dev.ferry.repo.Json;
import java.io.Console;
import java.io.IOException;
import java.io.PrintWriter;
import java.net.InetAddress;
import java.time.Clock;
import java.nio.file.Path;
import java.util.Map;
import org.slf4j.LoggerFactory;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ScopeType;

/** The {@code ferry} command. */
@Command(name = "ferry", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        scope = ScopeType.INHERIT, // --help and --version on every command, and the footer below
        description = "Backs up volumes into an encrypted, deduplicating repository on a directory or S3.",
        subcommands = {InitCommand.class, BackupCommand.class, RestoreCommand.class, SnapshotsCommand.class,
                ForgetCommand.class, PruneCommand.class, KeyCommand.class, VerifyCommand.class, InfoCommand.class,
                UnlockCommand.class, RepairCommand.class, HelpCommand.class},
        footerHeading = "%nExit codes:%n",
        footer = {"  0 ok, 1 error, 2 usage error, 3 verify found damage (or snapshots listed all but",
                "  the damaged ones it names), 4 wrong password or key file, 5 backup stored but",
                "  partial (the files it could not read are listed)",
                "",
                "Environment:",
                "  FERRY_REPOSITORY, FERRY_PASSWORD, FERRY_PASSWORD_FILE, FERRY_KEY_FILE;",
                "  AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, AWS_REGION, AWS_CA_BUNDLE /",
                "  FERRY_S3_CA_FILE, FERRY_S3_PATH_STYLE and the AWS SDK's credential variables;",
                "  FERRY_S3_RETRY_TIMEOUT, FERRY_S3_TIMEOUT, FERRY_S3_ATTEMPT_TIMEOUT (seconds),",
                "  FERRY_S3_MAX_ATTEMPTS;",
                "  FERRY_HOSTNAME (host name recorded in snapshots and locks), FERRY_STATE_DIR",
                "  (where interrupted restores are noted)."})
public final class Main {
    // the global options are inherited: they may be given before or after the subcommand, and set these fields
    @Option(names = {"-r", "--repo"}, paramLabel = "REPO", scope = ScopeType.INHERIT,
            description = "Repository: a directory, file:///path or s3://bucket/prefix (default: $FERRY_REPOSITORY).")
    String repo;

    @Option(names = "--password-file", paramLabel = "FILE", scope = ScopeType.INHERIT,
            description = "Read the password from FILE (default: $FERRY_PASSWORD_FILE, then $FERRY_PASSWORD).")
    Path passwordFile;

    @Option(names = "--key-file", paramLabel = "FILE", scope = ScopeType.INHERIT,
            description = "Open the repository with a key file instead of a password (default: $FERRY_KEY_FILE).")
    Path keyFile;

    /** How many times -v was given, before and after the subcommand. */
    int verbosity;
    private int verboseRun;

    @Option(names = {"-v", "--verbose"}, scope = ScopeType.INHERIT,
            description = "More output: -v for progress and info logs, -vv for debug logs.")
    void verbose(boolean[] flags) {
        // picocli calls this at each -v with the flags the command being parsed has had so far; on a subcommand
        // the array starts again, so an array no longer than the last one begins a new run
        verbosity += flags.length > verboseRun ? flags.length - verboseRun : flags.length;
        verboseRun = flags.length;
    }

    @Option(names = "--json", scope = ScopeType.INHERIT,
            description = "Print JSON instead of text: summaries, lists, reports.")
    boolean json;

    final Map<String, String> env;
    /** What this run must undo if it is stopped: repository locks and spool files (see {@link #stopped()}). */
    final Cleanups cleanups = new Cleanups();
    final PrintWriter out;
    final PrintWriter err;
    final Console console;
    /** The caller's side of this run: cancellation, progress listener, shared repository sessions. */
    final JobContext job;

    Main(Map<String, String> env, PrintWriter out, PrintWriter err, Console console) {
        this(env, out, err, console, JobContext.standalone());
    }

    Main(Map<String, String> env, PrintWriter out, PrintWriter err, Console console, JobContext job) {
        this.env = env;
        this.out = out;
        this.err = err;
        this.console = console;
        this.job = job;
    }

    public static void main(String[] args) {
        warmUp();
        PrintWriter out = new PrintWriter(System.out, true);
        PrintWriter err = new PrintWriter(System.err, true);
        Main main = new Main(System.getenv(), out, err, System.console());
        // SIGTERM (Kubernetes) and SIGINT end the JVM through its shutdown hooks: release what this run holds
        Thread hook = new Thread(main::stopped, "ferry-stop");
        Runtime.getRuntime().addShutdownHook(hook);
        int code = main.commandLine().execute(args);
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException stopping) {
            // a signal came as the command ended: the hook runs, and System.exit below waits for it
        }
        out.flush();
        err.flush();
        System.exit(code);
    }

    /**
     * Loads the slow-to-initialize libraries (native crypto, JSON, logging) on a second thread while the main
     * thread parses the command line: a backup process lives seconds, and these cost a few hundred ms each.
     */
    private static void warmUp() {
        Thread t = new Thread(() -> {
            try {
                LoggerFactory.getILoggerFactory();
                dev.ferry.crypto.NativeCrypto.provider();
                Json.MAPPER.readTree("{\"warm\":[1]}");
            } catch (Exception | LinkageError e) {
                // the main thread meets the same problem and reports it
            }
        }, "ferry-warm-up");
        t.setDaemon(true);
        t.start();
    }

    /** Run by the shutdown hook when the process is stopped (SIGTERM, SIGINT) before its command finished. */
    void stopped() {
        if (cleanups.run() > 0) {
            err.println("ferry: stopped; this process's repository locks and unfinished pack files were removed");
            err.flush();
        }
    }

    /** Runs one command line; returns its exit code. Used by {@link #main} and by tests in-process. */
    public static int execute(String[] args, Map<String, String> env, PrintWriter out, PrintWriter err,
                              Console console) {
        return new Main(env, out, err, console).commandLine().execute(args);
    }

    /** Runs one command line as a job of a caller that cancels it, listens to it and shares repositories. */
    public static int execute(String[] args, Map<String, String> env, PrintWriter out, PrintWriter err,
                              Console console, JobContext job) {
        return new Main(env, out, err, console, job).commandLine().execute(args);
    }

    /** The whole command tree, extensions included, wired to this instance's output and error reporting. */
    CommandLine commandLine() {
        CommandLine cli = new CommandLine(this);
        for (CliExtension extension : java.util.ServiceLoader.load(CliExtension.class, Main.class.getClassLoader())) {
            extension.register(this, cli);
        }
        // set after the extensions are added: picocli passes these settings to the subcommands present now
        cli.setOut(out);
        cli.setErr(err);
        cli.setExecutionStrategy(parsed -> {
            configureLogging();
            return new CommandLine.RunLast().execute(parsed);
        });
        cli.setExecutionExceptionHandler((ex, commandLine, parsed) -> report(ex, commandLine));
        return cli;
    }

    int report(Exception ex, CommandLine where) {
        if (ex instanceof UsageException) {
            err.println("ferry: " + ex.getMessage());
            err.println("Try '" + where.getCommandSpec().qualifiedName() + " --help' for more information.");
            return ExitCodes.USAGE;
        }
        if (ex instanceof RepositoryException.WrongKey) {
            err.println("ferry: " + ex.getMessage());
            return ExitCodes.WRONG_KEY;
        }
        if (ex instanceof IOException || ex instanceof IllegalArgumentException) {
            err.println("ferry: " + message(ex));
            if (verbosity > 1) {
                ex.printStackTrace(err);
            }
            return ExitCodes.ERROR;
        }
        err.println("ferry: unexpected error in '" + where.getCommandSpec().qualifiedName() + "': " + ex);
        ex.printStackTrace(err);
        return ExitCodes.ERROR;
    }

    /**
     * What went wrong, in words that name the file or object: the JDK's file system exceptions carry only a
     * path as their message ("/dev/sdb"), and some exceptions carry no message at all.
     */
    static String message(Throwable ex) {
        if (ex instanceof java.nio.file.FileSystemException e) {
            String what = e instanceof java.nio.file.NoSuchFileException ? "no such file or directory"
                    : e instanceof java.nio.file.AccessDeniedException ? "permission denied"
                    : e instanceof java.nio.file.FileAlreadyExistsException ? "already exists"
                    : e instanceof java.nio.file.DirectoryNotEmptyException ? "directory not empty"
                    : e instanceof java.nio.file.NotDirectoryException ? "not a directory"
                    : e instanceof java.nio.file.NotLinkException ? "not a symbolic link"
                    : e instanceof java.nio.file.FileSystemLoopException ? "too many levels of symbolic links"
                    : "file system error";
            String reason = e.getReason() == null || e.getReason().isBlank() ? what : e.getReason();
            String file = e.getFile() == null ? "" : e.getFile();
            return (e.getOtherFile() == null ? file : file + " -> " + e.getOtherFile()) + ": " + reason;
        }
        String m = ex.getMessage();
        if (m == null || m.isBlank()) {
            Throwable cause = ex.getCause();
            return cause != null && cause != ex ? message(cause)
                    : ex instanceof java.io.InterruptedIOException ? "interrupted"
                    : ex instanceof java.io.EOFException ? "unexpected end of data" : ex.getClass().getName();
        }
        return m;
    }

    void configureLogging() {
        Level level = verbosity == 0 ? Level.WARN : verbosity == 1 ? Level.INFO : Level.DEBUG;
        if (LoggerFactory.getLogger("dev.ferry") instanceof Logger ferry) {
            ferry.setLevel(level);
        }
        if (verbosity > 2 && LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME) instanceof Logger root) {
            root.setLevel(Level.DEBUG);
        }
    }

    /** Whether --json was given (before or after the subcommand). */
    public boolean json() {
        return json;
    }

    public boolean progress() {
        return verbosity > 0;
    }

    public String repositoryUrl() {
        String r = repo != null ? repo : env.get("FERRY_REPOSITORY");
        if (r == null || r.isBlank()) {
            throw new UsageException("no repository given: use -r/--repo or set FERRY_REPOSITORY");
        }
        return r;
    }

    /** The repository's store; a malformed URL or FERRY_S3_* / AWS_* setting is a usage error (exit 2). */
    public Store openStore() {
        String url = repositoryUrl();
        try {
            return Stores.open(url, env);
        } catch (UsageException e) {
            throw e;
        } catch (IllegalArgumentException e) {
            throw new UsageException(e.getMessage());
        }
    }

    Credentials credentials() {
        return new Credentials(env, console, w -> err.println("ferry: warning: " + w));
    }

    KeySource existingKey() throws IOException {
        return credentials().existing(passwordFile, keyFile);
    }

    public Repository openRepository(Store store, boolean loadIndex) throws IOException {
        KeySource key = existingKey();
        Repository r = loadIndex ? Repository.open(store, key) : Repository.openKeyOnly(store, key);
        r.setCheckpoints(Repository.Checkpoints.fromEnv(env)); // how often a long backup indexes its packs
        cleanups.add("repository " + store.location(), r::abandon);
        return r;
    }

    public Clock clock() {
        return Clock.systemUTC();
    }

    /** Standard output of this command line (a summary, JSON). */
    public PrintWriter out() {
        return out;
    }

    /** Standard error of this command line (warnings, progress). */
    public PrintWriter err() {
        return err;
    }

    /** Prints a warning on standard error: {@code ferry: warning: MESSAGE}. */
    public void warn(String message) {
        err.println("ferry: warning: " + message);
    }

    /** The environment this command line runs with. */
    public Map<String, String> env() {
        return env;
    }

    /** The host name recorded in snapshots and locks: $FERRY_HOSTNAME (a Kubernetes node name), else the host's. */
    public String hostname() {
        String h = env.get("FERRY_HOSTNAME");
        if (h != null && !h.isBlank()) {
            return h;
        }
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (IOException e) {
            String e2 = env.get("HOSTNAME");
            return e2 == null ? "unknown" : e2;
        }
    }

    /** Where Ferry notes restores in progress: $FERRY_STATE_DIR, $XDG_STATE_HOME/ferry or ~/.local/state/ferry. */
    public Path stateDir() {
        String d = env.get("FERRY_STATE_DIR");
        if (d != null && !d.isBlank()) {
            return Path.of(d);
        }
        String xdg = env.get("XDG_STATE_HOME");
        if (xdg != null && !xdg.isBlank()) {
            return Path.of(xdg, "ferry");
        }
        return Path.of(env.getOrDefault("HOME", System.getProperty("user.home")), ".local", "state", "ferry");
    }

    /** Progress on stderr: a redrawn bar on a terminal, a plain line every 10 seconds otherwise. */
    public ProgressReporter progress(String action, long totalBytes) {
        return ProgressReporter.start(action, totalBytes, err, console != null);
    }

    public void printJson(Object value) throws IOException {
        out.println(Json.MAPPER.writeValueAsString(value));
        out.flush();
    }

    public static double round3(double v) {
        return Math.round(v * 1000) / 1000.0;
    }

    public static Map<String, String> parseTags(java.util.List<String> tags) {
        Map<String, String> m = new java.util.TreeMap<>();
        for (String t : tags) {
            int eq = t.indexOf('=');
            if (eq < 1) {
                throw new UsageException("a tag is KEY=VALUE with a non-empty key, not '" + t + "'");
            }
            m.put(t.substring(0, eq), t.substring(eq + 1));
        }
        return m;
    }

    /** Argon2id cost options shared by {@code init} and {@code key add}. */
    static final class KdfOptions {
        @Option(names = "--kdf-memory", paramLabel = "MiB",
                description = "Argon2id memory for a new password slot, in MiB (default: ${DEFAULT-VALUE}).")
        int memoryMiB = KdfParams.DEFAULT.memoryKiB() / 1024;

        @Option(names = "--kdf-iterations", paramLabel = "N",
                description = "Argon2id passes for a new password slot (default: ${DEFAULT-VALUE}).")
        int iterations = KdfParams.DEFAULT.iterations();

        KdfParams params() {
            if (memoryMiB < 1 || memoryMiB > 4096) {
                throw new UsageException("--kdf-memory is 1 to 4096 MiB, not " + memoryMiB);
            }
            try {
                return new KdfParams(memoryMiB * 1024, iterations, KdfParams.DEFAULT.parallelism());
            } catch (IllegalArgumentException e) {
                throw new UsageException("--kdf-iterations: " + e.getMessage());
            }
        }
    }

    /** The version Maven wrote into {@code version.properties} when it built this jar. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() throws IOException {
            java.util.Properties p = new java.util.Properties();
            try (java.io.InputStream in = Main.class.getResourceAsStream("version.properties")) {
                if (in != null) {
                    p.load(in);
                }
            }
            String v = p.getProperty("version", "");
            return new String[] {"ferry " + (v.isBlank() || v.startsWith("${") ? "(version unknown)" : v),
                    "Java " + Runtime.version() + " (" + System.getProperty("java.vm.name") + ") on "
                            + System.getProperty("os.name") + " " + System.getProperty("os.arch")};
        }
    }
}
