package dev.ferry.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.job.Cancellation;
import org.junit.jupiter.api.Test;

/** The job context engines are bound to: job ids that can mark what an engine leaves on the node. */
class EngineContextTest {
    @Test
    void aCommandLineRunIsItsProcess() {
        EngineContext c = EngineContext.standalone(new Cancellation());
        assertEquals("pid-" + ProcessHandle.current().pid(), c.jobId());
        assertTrue(c.isStandalone());
        assertFalse(c.liveJobs().runsTheNodesJobs());
    }

    @Test
    void daemonJobIdsAreCheckedAndNeverLookLikeAProcess() {
        Cancellation c = new Cancellation();
        assertFalse(EngineContext.of(c, "backup-2026.12.04:pv-1_a", LiveJobs.NONE).isStandalone());
        for (String bad : new String[] {"pid-12", "pid-x", "", "a/b", "a b", "x".repeat(129), "a\u00e9"}) {
            assertThrows(IllegalArgumentException.class, () -> EngineContext.of(c, bad, LiveJobs.NONE), bad);
        }
        // the canonical constructor lets a pid- id name a process only
        assertThrows(IllegalArgumentException.class, () -> new EngineContext(c, "pid-abc", LiveJobs.NONE));
        assertThrows(NullPointerException.class, () -> new EngineContext(null, "job", LiveJobs.NONE));
    }

    @Test
    void anEngineWithNothingToBindServesEveryJobItself() {
        Engine e = Engines.named("dir-test");
        assertSame(e, e.forJob(EngineContext.standalone(new Cancellation())));
    }
}
