package dev.ferry.progress;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/** A listener that keeps every phase it hears, with its total and what was counted in it, for tests. */
public final class PhaseRecorder implements ProgressListener {
    /** One phase: its label, total (0: not known), unit (null: bytes) and the sum of its advances. */
    public record Phase(String label, long total, String items, long counted) {
    }

    private final List<String> labels = new ArrayList<>();
    private final List<Long> totals = new ArrayList<>();
    private final List<String> units = new ArrayList<>();
    private final List<AtomicLong> counts = new ArrayList<>();
    private volatile AtomicLong current = new AtomicLong();

    @Override
    public void advance(long amount) {
        current.addAndGet(amount);
    }

    @Override
    public synchronized void phase(String label, long total, String items) {
        labels.add(label);
        totals.add(total);
        units.add(items);
        current = new AtomicLong();
        counts.add(current);
    }

    public synchronized List<Phase> phases() {
        List<Phase> out = new ArrayList<>();
        for (int i = 0; i < labels.size(); i++) {
            out.add(new Phase(labels.get(i), totals.get(i), units.get(i), counts.get(i).get()));
        }
        return out;
    }

    public synchronized List<String> labels() {
        return List.copyOf(labels);
    }

    /** The phase with this label; fails if there is none. */
    public Phase get(String label) {
        return phases().stream().filter(p -> p.label().equals(label)).findFirst()
                .orElseThrow(() -> new AssertionError("no phase '" + label + "' in " + labels()));
    }
}
