package dev.ferry.util;

import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What a process must undo if it is stopped before its work is done (SIGTERM from Kubernetes, SIGINT from a
 * terminal): its repository locks and unfinished spool files. One registry belongs to one command-line run (or
 * one daemon); its owner runs {@link #run()} from a JVM shutdown hook. Actions run once, newest first; an action
 * added after {@link #run()} runs at once, so nothing registered late is left behind. Safe for use by several
 * threads.
 */
public final class Cleanups {
    private static final Logger log = LoggerFactory.getLogger(Cleanups.class);

    /** One cleanup action. */
    @FunctionalInterface
    public interface Action {
        void run() throws Exception;
    }

    private record Entry(String what, Action action) {
    }

    private final List<Entry> entries = new ArrayList<>(); // guarded by this
    private boolean ran;                                   // guarded by this

    /** Registers {@code action}, described by {@code what} for messages; runs it at once if already stopping. */
    public void add(String what, Action action) {
        synchronized (this) {
            if (!ran) {
                entries.add(new Entry(what, action));
                return;
            }
        }
        runOne(new Entry(what, action));
    }

    /** Runs every action, newest first, once; returns how many ran. A failing action does not stop the others. */
    public int run() {
        List<Entry> todo;
        synchronized (this) {
            if (ran) {
                return 0;
            }
            ran = true;
            todo = new ArrayList<>(entries);
            entries.clear();
        }
        for (int i = todo.size() - 1; i >= 0; i--) {
            runOne(todo.get(i));
        }
        return todo.size();
    }

    private static void runOne(Entry e) {
        try {
            e.action().run();
        } catch (Exception | LinkageError ex) {
            log.warn("could not clean up {}: {}", e.what(), ex.toString());
        }
    }
}
