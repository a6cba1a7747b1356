package dev.ferry.engine;

import java.util.ArrayList;
import java.util.List;
import java.util.ServiceLoader;

/** Finds the engines on the class path. */
public final class Engines {
    private Engines() {
    }

    /** Every engine found through {@code META-INF/services/dev.ferry.engine.Engine}, sorted by name. */
    public static List<Engine> all() {
        List<Engine> out = new ArrayList<>();
        ServiceLoader.load(Engine.class, Engines.class.getClassLoader()).forEach(out::add);
        out.sort(java.util.Comparator.comparing(Engine::name));
        return out;
    }

    /** The engine called {@code name}; a clear error naming the engines there are otherwise. */
    public static Engine named(String name) {
        List<Engine> all = all();
        for (Engine e : all) {
            if (e.name().equals(name)) {
                return e;
            }
        }
        throw new IllegalArgumentException("no engine '" + name + "' in this Ferry build (engines: "
                + (all.isEmpty() ? "none" : String.join(", ", all.stream().map(Engine::name).toList())) + ")");
    }
}
