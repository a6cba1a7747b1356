package dev.ferry.repo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.repo.Retention.Decision;
import dev.ferry.repo.Retention.Policy;
import dev.ferry.repo.Retention.Within;
import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.function.Function;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

class RetentionTest {
    /** A snapshot stand-in: a name (also the tie-break), a time and tags. */
    record Snap(String name, Instant time, Map<String, String> tags) {
        Snap(String name, String time) {
            this(name, Instant.parse(time), Map.of());
        }
    }

    private static final ZoneId UTC = ZoneOffset.UTC;
    private static final ZoneId BERLIN = ZoneId.of("Europe/Berlin");

    /**
     * Two years of irregular snapshots (times UTC). Facts the expectations rely on: 2025-12-31 (Wed) is in ISO
     * week 2026-W01; 2026-12-28 (Mon) .. 2027-01-03 (Sun) is 2026-W53; 2027-01-04 is 2027-W01; 2027-02-01 (Mon)
     * and 02-02 are 2027-W05; 02-23 (Tue) and 02-28 (Sun) are 2027-W08; 2027-03-01 (Mon) is 2027-W09.
     */
    private static final List<Snap> A = List.of(
            new Snap("s01", Instant.parse("2025-01-15T10:00:00Z"), null),
            new Snap("s02", "2025-03-31T23:30:00Z"),
            new Snap("s03", "2025-04-01T00:10:00Z"),
            new Snap("s04", Instant.parse("2025-06-10T08:00:00Z"), Map.of("app", "db", "tier", "gold")),
            new Snap("s05", "2025-06-10T20:00:00Z"),
            new Snap("s06", "2025-12-31T23:59:00Z"),
            new Snap("s07", "2026-01-01T00:01:00Z"),
            new Snap("s08", "2026-02-14T12:00:00Z"),
            new Snap("s09", Instant.parse("2026-05-05T09:00:00Z"), Map.of("app", "db")),
            new Snap("s10", "2026-09-30T18:00:00Z"),
            new Snap("s11", "2026-12-28T10:00:00Z"),
            new Snap("s12", "2026-12-31T22:00:00Z"),
            new Snap("s13", Instant.parse("2027-01-01T08:00:00Z"), Map.of("app", "web", "tier", "gold")),
            new Snap("s14", "2027-01-03T23:00:00Z"),
            new Snap("s15", "2027-01-04T06:00:00Z"),
            new Snap("s16", "2027-01-20T12:00:00Z"),
            new Snap("s17", "2027-02-01T09:05:00Z"),
            new Snap("s18", "2027-02-01T09:20:00Z"),
            new Snap("s19", "2027-02-01T09:50:00Z"),
            new Snap("s20", Instant.parse("2027-02-01T10:10:00Z"), Map.of("app", "db", "tier", "gold", "x", "1")),
            new Snap("s21", "2027-02-01T10:40:00Z"),
            new Snap("s22", "2027-02-01T13:00:00Z"),
            new Snap("s23", "2027-02-02T08:00:00Z"),
            new Snap("s24", "2027-02-23T08:00:00Z"),
            new Snap("s25", "2027-02-28T23:00:00Z"),
            new Snap("s26", "2027-03-01T01:00:00Z"));
    private static final Instant A_NOW = Instant.parse("2027-03-01T12:00:00Z");

    /**
     * Around the end of summer time in Berlin (2026-10-25, 03:00 CEST -> 02:00 CET): the local hour 02:00-02:59
     * occurs twice (00:xx UTC in CEST, 01:xx UTC in CET). Local times in the comments.
     */
    private static final List<Snap> DST = List.of(
            new Snap("d1", "2026-10-24T21:30:00Z"), // Sat 23:30 CEST
            new Snap("d2", "2026-10-24T22:15:00Z"), // Sun 00:15 CEST
            new Snap("d3", "2026-10-24T23:00:00Z"), // Sun 01:00 CEST
            new Snap("d4", "2026-10-25T00:10:00Z"), // Sun 02:10 CEST
            new Snap("d5", "2026-10-25T00:40:00Z"), // Sun 02:40 CEST
            new Snap("d6", "2026-10-25T01:20:00Z"), // Sun 02:20 CET (the second 02:00 hour)
            new Snap("d7", "2026-10-25T02:05:00Z"), // Sun 03:05 CET
            new Snap("d8", "2026-10-25T22:30:00Z"), // Sun 23:30 CET
            new Snap("d9", "2026-10-25T23:30:00Z")); // Mon 00:30 CET
    private static final Instant DST_NOW = Instant.parse("2026-10-26T12:00:00Z");

    private static List<Decision<Snap>> apply(List<Snap> snaps, Policy p, ZoneId zone, Instant now) {
        return new Retention(p, zone, now).apply(snaps, Snap::time, Snap::tags, Comparator.comparing(Snap::name));
    }

    private static List<String> kept(List<Snap> snaps, Policy p, ZoneId zone, Instant now) {
        return apply(snaps, p, zone, now).stream().filter(Decision::keep).map(d -> d.item().name()).toList();
    }

    private static List<String> keptA(Policy p) {
        return kept(A, p, UTC, A_NOW);
    }

    private static Map<String, List<String>> reasons(List<Snap> snaps, Policy p, ZoneId zone, Instant now) {
        Map<String, List<String>> m = new LinkedHashMap<>();
        for (Decision<Snap> d : apply(snaps, p, zone, now)) {
            m.put(d.item().name(), d.reasons());
        }
        return m;
    }

    private static Map<String, List<String>> reasonsA(Policy p) {
        return reasons(A, p, UTC, A_NOW);
    }

    private static List<String> names(String... n) {
        return List.of(n);
    }

    /** s{from}..s{to}, newest first. */
    private static List<String> range(int to, int from) {
        List<String> l = new ArrayList<>();
        for (int i = to; i >= from; i--) {
            l.add(String.format("s%02d", i));
        }
        return l;
    }

    @Test
    void decisionsComeNewestFirstWithEveryItemOnce() {
        List<Snap> shuffled = new ArrayList<>(A);
        Collections.shuffle(shuffled, new Random(7));
        List<Decision<Snap>> ds = apply(shuffled, Policy.EMPTY.withLast(1), UTC, A_NOW);
        assertEquals(range(26, 1), ds.stream().map(d -> d.item().name()).toList());
        assertEquals(Instant.parse("2027-03-01T01:00:00Z"), ds.get(0).time());
        assertTrue(apply(List.of(), Policy.EMPTY.withLast(1), UTC, A_NOW).isEmpty());
    }

    @Test
    void keepLastKeepsTheNewestN() {
        Policy p = Policy.EMPTY.withLast(3);
        assertEquals(names("s26", "s25", "s24"), keptA(p));
        Map<String, List<String>> r = reasonsA(p);
        assertEquals(List.of("last snapshot (1 of 3)"), r.get("s26"));
        assertEquals(List.of("last snapshot (3 of 3)"), r.get("s24"));
        assertEquals(List.of("not among the last 3"), r.get("s23"));
        assertEquals(range(26, 1), keptA(Policy.EMPTY.withLast(-1)));
        assertEquals(List.of("last snapshot"), reasonsA(Policy.EMPTY.withLast(-1)).get("s01"));
        assertEquals(range(26, 1), keptA(Policy.EMPTY.withLast(100)));
    }

    @Test
    void keepHourlyCountsOnlyHoursThatHaveSnapshots() {
        assertEquals(names("s26", "s25", "s24", "s23"), keptA(Policy.EMPTY.withHourly(4)));
        Policy p = Policy.EMPTY.withHourly(8);
        // 2027-02-01 has three snapshots in 09:00 and two in 10:00: the newest of each hour counts
        assertEquals(names("s26", "s25", "s24", "s23", "s22", "s21", "s19", "s16"), keptA(p));
        Map<String, List<String>> r = reasonsA(p);
        assertEquals(List.of("hourly snapshot (2027-02-01 10:00, 6 of 8)"), r.get("s21"));
        assertEquals(List.of("hour 2027-02-01 10:00 has a newer snapshot"), r.get("s20"));
        assertEquals(List.of("hour 2027-02-01 09:00 has a newer snapshot"), r.get("s17"));
        assertEquals(List.of("not in the last 8 hours that have snapshots"), r.get("s15"));
    }

    @Test
    void keepDailyKeepsTheNewestOfEachDay() {
        assertEquals(names("s26", "s25", "s24", "s23", "s22"), keptA(Policy.EMPTY.withDaily(5)));
        // all days: only the older snapshots of 2025-06-10 and of the busy 2027-02-01 go
        List<String> all = new ArrayList<>(range(26, 1));
        all.removeAll(names("s04", "s17", "s18", "s19", "s20", "s21"));
        assertEquals(all, keptA(Policy.EMPTY.withDaily(-1)));
        Map<String, List<String>> r = reasonsA(Policy.EMPTY.withDaily(-1));
        assertEquals(List.of("daily snapshot (2025-03-31)"), r.get("s02"));
        assertEquals(List.of("daily snapshot (2025-04-01)"), r.get("s03"));
        assertEquals(List.of("day 2025-06-10 has a newer snapshot"), r.get("s04"));
        assertEquals(List.of("daily snapshot (2025-01-15)"), r.get("s01"));
    }

    @Test
    void keepWeeklyUsesIsoWeeksAcrossTheYearBoundary() {
        Policy p = Policy.EMPTY.withWeekly(4);
        assertEquals(names("s26", "s25", "s23", "s16"), keptA(p));
        Map<String, List<String>> r = reasonsA(p);
        assertEquals(List.of("weekly snapshot (2027-W08, 2 of 4)"), r.get("s25"));
        assertEquals(List.of("week 2027-W08 has a newer snapshot"), r.get("s24"));
        assertEquals(List.of("weekly snapshot (2027-W03, 4 of 4)"), r.get("s16"));

        Policy all = Policy.EMPTY.withWeekly(-1);
        assertEquals(names("s26", "s25", "s23", "s16", "s15", "s14", "s10", "s09", "s08", "s07", "s05", "s03",
                "s01"), keptA(all));
        r = reasonsA(all);
        // 2026-12-28, 2026-12-31, 2027-01-01 and 2027-01-03 are one week, 2026-W53
        assertEquals(List.of("weekly snapshot (2026-W53)"), r.get("s14"));
        assertEquals(List.of("week 2026-W53 has a newer snapshot"), r.get("s13"));
        assertEquals(List.of("week 2026-W53 has a newer snapshot"), r.get("s11"));
        assertEquals(List.of("weekly snapshot (2027-W01)"), r.get("s15"));
        // 2025-12-31 belongs to 2026-W01, with 2026-01-01
        assertEquals(List.of("weekly snapshot (2026-W01)"), r.get("s07"));
        assertEquals(List.of("week 2026-W01 has a newer snapshot"), r.get("s06"));
        assertEquals(List.of("week 2025-W14 has a newer snapshot"), r.get("s02"));
    }

    @Test
    void keepMonthlyAndYearly() {
        Policy m6 = Policy.EMPTY.withMonthly(6);
        assertEquals(names("s26", "s25", "s16", "s12", "s10", "s09"), keptA(m6));
        Map<String, List<String>> r = reasonsA(m6);
        assertEquals(List.of("monthly snapshot (2026-12, 4 of 6)"), r.get("s12"));
        assertEquals(List.of("month 2027-01 has a newer snapshot"), r.get("s13"));
        assertEquals(List.of("not in the last 6 months that have snapshots"), r.get("s08"));

        // month ends: 2025-03-31 23:30 and 2025-04-01 00:10 are different months, as are 2025-12-31 and 2026-01-01
        assertEquals(names("s26", "s25", "s16", "s12", "s10", "s09", "s08", "s07", "s06", "s05", "s03", "s02",
                "s01"), keptA(Policy.EMPTY.withMonthly(-1)));

        // 2027-01-01 is in year 2027 although in week 2026-W53; the newest of 2026 is 2026-12-31
        assertEquals(names("s26", "s12", "s06"), keptA(Policy.EMPTY.withYearly(3)));
        assertEquals(List.of("year 2025 has a newer snapshot"), reasonsA(Policy.EMPTY.withYearly(3)).get("s01"));
    }

    @Test
    void theOldestSnapshotIsKeptWhileABucketRuleHasRoom() {
        // three years have snapshots; a fourth and fifth yearly would be free: the group's beginning stays
        Policy y5 = Policy.EMPTY.withYearly(5);
        assertEquals(names("s26", "s12", "s06", "s01"), keptA(y5));
        assertEquals(List.of("oldest yearly snapshot (2025)"), reasonsA(y5).get("s01"));
        assertEquals(List.of("yearly snapshot (2025, 3 of 5)"), reasonsA(y5).get("s06"));
        // unlimited always has room
        assertEquals(names("s26", "s12", "s06", "s01"), keptA(Policy.EMPTY.withYearly(-1)));
        assertEquals(List.of("oldest yearly snapshot (2025)"), reasonsA(Policy.EMPTY.withYearly(-1)).get("s01"));
        // exactly used up: no room left, the oldest goes
        assertEquals(names("s26", "s12", "s06"), keptA(Policy.EMPTY.withYearly(3)));
    }

    @Test
    void keepWithinCountsBackFromTheNewestSnapshot() {
        // newest 2027-03-01T01:00Z; now is later and does not matter
        assertEquals(names("s26", "s25", "s24"), keptA(Policy.EMPTY.withWithin(Within.parse("7d"))));
        assertEquals(names("s26", "s25"), keptA(Policy.EMPTY.withWithin(Within.parse("3d22h"))));
        // one calendar month: after 2027-02-01T01:00Z
        assertEquals(range(26, 17), keptA(Policy.EMPTY.withWithin(Within.parse("1m"))));
        // 1y2m: after 2026-01-01T01:00Z, so 2026-01-01T00:01Z is out
        assertEquals(range(26, 8), keptA(Policy.EMPTY.withWithin(Within.parse("1y2m"))));
        assertEquals(range(26, 2), keptA(Policy.EMPTY.withWithin(Within.parse("2y"))));
        Map<String, List<String>> r = reasonsA(Policy.EMPTY.withWithin(Within.parse("7d")));
        assertEquals(List.of("within 7d of the newest"), r.get("s24"));
        assertEquals(List.of("older than 7d before the newest"), r.get("s23"));
        // the same snapshots a year later: nothing changes, the newest is the reference
        List<Decision<Snap>> later = apply(A, Policy.EMPTY.withWithin(Within.parse("7d")), UTC,
                A_NOW.plus(365, ChronoUnit.DAYS));
        assertEquals(3, later.stream().filter(Decision::keep).count());
    }

    @Test
    void keepWithinMonthsAreCalendarMonthsAndTheCutoffIsExclusive() {
        List<Snap> s = List.of(
                new Snap("m0", "2027-03-31T12:00:00Z"),
                new Snap("m1", "2027-03-02T12:00:00Z"),
                new Snap("m2", "2027-02-28T12:30:00Z"),
                new Snap("m3", "2027-02-28T12:00:00Z"),
                new Snap("m4", "2027-02-28T11:30:00Z"));
        Instant now = Instant.parse("2027-04-01T00:00:00Z");
        // a month before March 31 is the end of February (not March 3); a snapshot exactly there is not within
        assertEquals(Instant.parse("2027-02-28T12:00:00Z"),
                Within.parse("1m").cutoff(Instant.parse("2027-03-31T12:00:00Z"), UTC));
        assertEquals(names("m0", "m1", "m2"), kept(s, Policy.EMPTY.withWithin(Within.parse("1m")), UTC, now));
        // 30 days back lands on March 1
        assertEquals(names("m0", "m1"), kept(s, Policy.EMPTY.withWithin(Within.parse("30d")), UTC, now));
        // minutes count too: a month and 30 minutes back is 11:30, where m4 is not within
        assertEquals(names("m0", "m1", "m2", "m3"), kept(s, Policy.EMPTY.withWithin(Within.parse("1m30min")), UTC,
                now));
        // leap day minus a year
        assertEquals(Instant.parse("2027-02-28T00:00:00Z"),
                Within.parse("1y").cutoff(Instant.parse("2028-02-29T00:00:00Z"), UTC));
    }

    @Test
    void keepWithinIgnoresSnapshotsDatedInTheFutureAsTheNewest() {
        Instant now = Instant.parse("2027-03-01T00:00:00Z");
        List<Snap> s = List.of(
                new Snap("p1", "2027-02-19T00:00:00Z"),
                new Snap("p2", "2027-02-27T00:00:00Z"),
                new Snap("p3", "2027-03-06T00:00:00Z")); // a host with its clock 5 days ahead
        Policy p = Policy.EMPTY.withWithin(Within.parse("3d"));
        // the newest not in the future is p2: within means after 2027-02-24
        assertEquals(names("p3", "p2"), kept(s, p, UTC, now));
        Map<String, List<String>> r = reasons(s, p, UTC, now);
        assertEquals(List.of("dated after now, kept by --keep-within 3d"), r.get("p3"));
        assertEquals(List.of("within 3d of the newest"), r.get("p2"));
        assertEquals(List.of("older than 3d before the newest"), r.get("p1"));
        // all in the future: all kept
        assertEquals(names("p3", "p2", "p1"), kept(s, p, UTC, Instant.parse("2027-01-01T00:00:00Z")));
    }

    @Test
    void keepTagNeedsAllPairsOfAnyKeepTag() {
        Policy dbGold = Policy.EMPTY.withKeepTag(Policy.parseKeepTag("app=db,tier=gold"));
        assertEquals(names("s20", "s04"), keptA(dbGold));
        Map<String, List<String>> r = reasonsA(dbGold);
        assertEquals(List.of("tags app=db,tier=gold"), r.get("s20"));
        assertEquals(List.of("no --keep-tag matches"), r.get("s09")); // app=db only
        assertEquals(List.of("no --keep-tag matches"), r.get("s01")); // null tags

        Policy either = dbGold.withKeepTag(Map.of("app", "web"));
        assertEquals(names("s20", "s13", "s04"), keptA(either));
        assertEquals(List.of("tag app=web"), reasonsA(either).get("s13"));
        assertEquals(names("s20", "s09", "s04"), keptA(Policy.EMPTY.withKeepTag(Map.of("app", "db"))));
        // a value must match exactly; a policy that would forget the whole group is refused, as restic does
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> keptA(Policy.EMPTY.withKeepTag(Map.of("app", "DB"))));
        assertEquals("refusing to forget all 26 snapshot(s) of the group: the policy (keep all snapshots tagged"
                + " app=DB) keeps none of them", e.getMessage());
        // both keep-tags match s20: both are given
        Policy two = Policy.EMPTY.withKeepTag(Map.of("app", "db")).withKeepTag(Map.of("tier", "gold"));
        assertEquals(List.of("tag app=db", "tag tier=gold"), reasonsA(two).get("s20"));
        // the empty keep-tag keeps untagged snapshots (none or null tags)
        List<String> untagged = new ArrayList<>(range(26, 1));
        untagged.removeAll(names("s04", "s09", "s13", "s20"));
        assertEquals(untagged, keptA(Policy.EMPTY.withKeepTag(Policy.parseKeepTag(""))));
        assertEquals(List.of("untagged"), reasonsA(Policy.EMPTY.withKeepTag(Map.of())).get("s01"));
    }

    @Test
    void rulesCombineAndEachKeptSnapshotSaysWhy() {
        Policy p = new Policy(2, 0, 3, 3, 4, -1, List.of(), null);
        assertEquals(names("s26", "s25", "s24", "s23", "s16", "s12", "s06", "s01"), keptA(p));
        Map<String, List<String>> r = reasonsA(p);
        assertEquals(List.of("last snapshot (1 of 2)", "daily snapshot (2027-03-01, 1 of 3)",
                "weekly snapshot (2027-W09, 1 of 3)", "monthly snapshot (2027-03, 1 of 4)", "yearly snapshot (2027)"),
                r.get("s26"));
        assertEquals(List.of("last snapshot (2 of 2)", "daily snapshot (2027-02-28, 2 of 3)",
                "weekly snapshot (2027-W08, 2 of 3)", "monthly snapshot (2027-02, 2 of 4)"), r.get("s25"));
        assertEquals(List.of("daily snapshot (2027-02-23, 3 of 3)"), r.get("s24"));
        assertEquals(List.of("weekly snapshot (2027-W05, 3 of 3)"), r.get("s23"));
        assertEquals(List.of("monthly snapshot (2027-01, 3 of 4)"), r.get("s16"));
        assertEquals(List.of("monthly snapshot (2026-12, 4 of 4)", "yearly snapshot (2026)"), r.get("s12"));
        assertEquals(List.of("yearly snapshot (2025)"), r.get("s06"));
        assertEquals(List.of("oldest yearly snapshot (2025)"), r.get("s01"));
        // a forgotten one: why each rule does not keep it
        assertEquals(List.of("not among the last 2", "not in the last 3 days that have snapshots",
                "week 2027-W05 has a newer snapshot", "month 2027-02 has a newer snapshot",
                "year 2027 has a newer snapshot"), r.get("s22"));

        Policy more = p.withWithin(Within.parse("1m")).withKeepTag(Map.of("app", "web"));
        assertEquals(names("s26", "s25", "s24", "s23", "s22", "s21", "s20", "s19", "s18", "s17", "s16", "s13", "s12",
                "s06", "s01"), keptA(more));
        Map<String, List<String>> m = reasonsA(more);
        assertEquals(List.of("within 1m of the newest"), m.get("s22"));
        assertEquals(List.of("tag app=web"), m.get("s13"));
        assertEquals(List.of("daily snapshot (2027-02-23, 3 of 3)", "within 1m of the newest"), m.get("s24"));
        assertEquals(List.of("not among the last 2", "not in the last 3 days that have snapshots",
                "not in the last 3 weeks that have snapshots", "not in the last 4 months that have snapshots",
                "year 2026 has a newer snapshot", "older than 1m before the newest", "no --keep-tag matches"),
                m.get("s10"));
    }

    @Test
    void hourlyBucketsFollowTheLocalClockAcrossTheAutumnDstChange() {
        // Berlin: the two 02:00 hours are one wall-clock hour, so only its newest (02:20 CET) is kept
        assertEquals(names("d9", "d8", "d7", "d6", "d3", "d2", "d1"),
                kept(DST, Policy.EMPTY.withHourly(-1), BERLIN, DST_NOW));
        Map<String, List<String>> r = reasons(DST, Policy.EMPTY.withHourly(4), BERLIN, DST_NOW);
        assertEquals(List.of("hourly snapshot (2026-10-25 02:00, 4 of 4)"), r.get("d6"));
        assertEquals(List.of("hour 2026-10-25 02:00 has a newer snapshot"), r.get("d5"));
        assertEquals(List.of("hour 2026-10-25 02:00 has a newer snapshot"), r.get("d4"));
        assertEquals(List.of("not in the last 4 hours that have snapshots"), r.get("d3"));
        assertEquals(List.of("hourly snapshot (2026-10-26 00:00, 1 of 4)"), r.get("d9"));
        // in UTC the same instants fall in other hours: 00:10 and 00:40 share one, 01:20 has its own
        assertEquals(names("d9", "d8", "d7", "d6", "d5", "d3", "d2", "d1"),
                kept(DST, Policy.EMPTY.withHourly(-1), UTC, DST_NOW));
    }

    @Test
    void dailyBucketsAndWithinDaysFollowTheZone() {
        // Berlin days: 24 (d1), 25 (d2..d8), 26 (d9)
        assertEquals(names("d9", "d8", "d1"), kept(DST, Policy.EMPTY.withDaily(-1), BERLIN, DST_NOW));
        // UTC days: 24 (d1..d3), 25 (d4..d9); the oldest, d1, shares its day and is kept as the oldest
        assertEquals(names("d9", "d3", "d1"), kept(DST, Policy.EMPTY.withDaily(-1), UTC, DST_NOW));
        assertEquals(List.of("oldest daily snapshot (2026-10-24)"),
                reasons(DST, Policy.EMPTY.withDaily(-1), UTC, DST_NOW).get("d1"));

        // a day before Mon 00:30 CET is Sun 00:30 CEST, 25 hours earlier (22:30Z)
        Policy day = Policy.EMPTY.withWithin(Within.parse("1d"));
        assertEquals(names("d9", "d8", "d7", "d6", "d5", "d4", "d3"), kept(DST, day, BERLIN, DST_NOW));
        assertEquals(names("d9", "d8", "d7", "d6", "d5", "d4"), kept(DST, day, UTC, DST_NOW));
        assertEquals(names("d9", "d8", "d7", "d6", "d5", "d4"),
                kept(DST, Policy.EMPTY.withWithin(Within.parse("24h")), BERLIN, DST_NOW));

        // spring: 2027-03-28 02:00 CET -> 03:00 CEST; a day before 03:30 CEST is 03:30 CET, 23 hours earlier
        assertEquals(Instant.parse("2027-03-27T02:30:00Z"),
                Within.parse("1d").cutoff(Instant.parse("2027-03-28T01:30:00Z"), BERLIN));
        List<Snap> spring = List.of(new Snap("q1", "2027-03-27T02:00:00Z"), new Snap("q2", "2027-03-27T03:00:00Z"),
                new Snap("q3", "2027-03-28T00:30:00Z"), new Snap("q4", "2027-03-28T01:30:00Z"));
        assertEquals(names("q4", "q3", "q2"), kept(spring, day, BERLIN, DST_NOW.plus(200, ChronoUnit.DAYS)));
        // 01:30 CET and 03:30 CEST are one hour apart but in the 01:00 and 03:00 buckets
        assertEquals(List.of("hourly snapshot (2027-03-28 01:00, 2 of 2)"),
                reasons(spring, Policy.EMPTY.withHourly(2), BERLIN, DST_NOW.plus(200, ChronoUnit.DAYS)).get("q3"));
    }

    @Test
    void equalTimesAreOrderedByTheTieBreak() {
        String t = "2027-01-01T12:00:00Z";
        List<Snap> s = List.of(new Snap("b", t), new Snap("z", "2027-01-01T11:00:00Z"), new Snap("a", t),
                new Snap("c", t));
        Policy last2 = Policy.EMPTY.withLast(2);
        assertEquals(names("a", "b"), kept(s, last2, UTC, A_NOW));
        assertEquals(names("a", "b", "c", "z"),
                apply(s, last2, UTC, A_NOW).stream().map(d -> d.item().name()).toList());
        List<Snap> reversed = new ArrayList<>(s);
        Collections.reverse(reversed);
        assertEquals(names("a", "b"), kept(reversed, last2, UTC, A_NOW));
        List<Decision<Snap>> byNameDesc = new Retention(last2, UTC, A_NOW).apply(s, Snap::time, Snap::tags,
                Comparator.comparing(Snap::name).reversed());
        assertEquals(names("c", "b"), byNameDesc.stream().filter(Decision::keep).map(d -> d.item().name()).toList());
        // in one hour, the first by the tie-break is the newest of the hour
        Map<String, List<String>> r = reasons(s, Policy.EMPTY.withHourly(1), UTC, A_NOW);
        assertEquals(List.of("hourly snapshot (2027-01-01 12:00, 1 of 1)"), r.get("a"));
        assertEquals(List.of("hour 2027-01-01 12:00 has a newer snapshot"), r.get("b"));
        assertEquals(List.of("not in the last hour that has snapshots"), r.get("z"));
        assertEquals(List.of("not the last snapshot"), reasons(s, Policy.EMPTY.withLast(1), UTC, A_NOW).get("c"));
    }

    @Test
    void anEmptyPolicyIsRefused() {
        assertTrue(Policy.EMPTY.isEmpty());
        assertTrue(new Policy(0, 0, 0, 0, 0, 0, null, null).isEmpty());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, Policy.EMPTY::checkNotEmpty);
        assertTrue(e.getMessage().contains("would forget every snapshot"), e.getMessage());
        assertTrue(e.getMessage().contains("--keep-last"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new Retention(Policy.EMPTY, UTC, A_NOW));
        assertFalse(Policy.EMPTY.withLast(-1).isEmpty());
        assertFalse(Policy.EMPTY.withYearly(1).isEmpty());
        assertFalse(Policy.EMPTY.withKeepTag(Map.of()).isEmpty());
        assertFalse(Policy.EMPTY.withWithin(Within.parse("1h")).isEmpty());
        Policy.EMPTY.withDaily(1).checkNotEmpty();
    }

    @Test
    void countsBelowMinusOneAreRefusedNamingTheOption() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Policy.EMPTY.withDaily(-2));
        assertEquals("--keep-daily is a number of snapshots, or -1 for all, not -2", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new Policy(-5, 0, 0, 0, 0, 0, List.of(), null));
        assertTrue(e.getMessage().startsWith("--keep-last "), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Policy.EMPTY.withKeepTag(Map.of("", "x")));
        assertTrue(e.getMessage().startsWith("--keep-tag"), e.getMessage());
    }

    @Test
    void policiesDescribeThemselves() {
        Policy p = new Policy(3, 0, 7, 0, -1, 0, List.of(Map.of("tier", "gold", "app", "db"), Map.of()),
                Within.parse("1y5m"));
        assertEquals("keep the last 3, 7 daily, all monthly snapshots, all snapshots tagged app=db,tier=gold or"
                + " untagged and all within 1y5m of the newest", p.describe());
        assertEquals("keep 24 hourly snapshots", Policy.EMPTY.withHourly(24).describe());
        assertEquals("keep all within 7d of the newest", Policy.EMPTY.withWithin(Within.parse("7d")).describe());
    }

    @Test
    void durationsParseLikeRestics() {
        assertEquals(new Within(1, 5, 7, 2, 0), Within.parse("1y5m7d2h"));
        assertEquals(new Within(0, 0, 7, 0, 0), Within.parse(" 7d "));
        assertEquals(new Within(0, 0, 0, 2, 30), Within.parse("2h30min"));
        assertEquals(new Within(0, 0, 3, 0, 0), Within.parse("0y3d"));
        assertEquals(new Within(0, 1, 0, 0, 90), Within.parse("90min1m")); // any order; m is months
        assertEquals("1y5m7d2h", Within.parse("1y5m7d2h").toString());
        assertEquals("1m1d90min", Within.parse("90min1d1m").toString());
        assertEquals(new Within(Integer.MAX_VALUE, 0, 0, 0, 0), Within.parse("2147483647y"));
        // absurdly long: everything is within
        assertEquals(Instant.MIN, Within.parse("2147483647y").cutoff(A_NOW, UTC));
    }

    @Test
    void badDurationsGetClearErrors() {
        Map<String, String> cases = new LinkedHashMap<>();
        cases.put("", "--keep-within needs a duration such as 7d or 1y5m7d2h");
        cases.put("7", "--keep-within '7': no unit after 7");
        cases.put("d7", "--keep-within 'd7': expected a number at position 1, found 'd'");
        cases.put("2w", "--keep-within '2w': unknown unit 'w' after 2");
        cases.put("1D", "--keep-within '1D': unknown unit 'D' after 1");
        cases.put("-1d", "--keep-within '-1d': a duration cannot be negative");
        cases.put("1d2d", "--keep-within '1d2d': unit 'd' given twice");
        cases.put("0d", "--keep-within '0d' is zero and keeps nothing");
        cases.put("0y0h", "--keep-within '0y0h' is zero and keeps nothing");
        cases.put("1 d", "--keep-within '1 d': no unit after 1 (found ' ')");
        cases.put("1d 2h", "--keep-within '1d 2h': expected a number at position 3, found ' '");
        cases.put("99999999999d", "--keep-within '99999999999d': 99999999999 is too large");
        cases.put("2147483648h", "--keep-within '2147483648h': 2147483648 is too large");
        cases.put("1.5d", "--keep-within '1.5d': no unit after 1 (found '.')");
        for (Map.Entry<String, String> c : cases.entrySet()) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> Within.parse(c.getKey()), c.getKey());
            assertTrue(e.getMessage().startsWith(c.getValue()), c.getKey() + ": " + e.getMessage());
        }
        // the units are listed where a unit is missing or wrong
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Within.parse("3x")).getMessage()
                .contains("y years, m months, d days, h hours, min minutes"));
        assertThrows(IllegalArgumentException.class, () -> new Within(0, 0, -1, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> new Within(0, 0, 0, 0, 0));
    }

    @Test
    void keepTagValuesParse() {
        assertEquals(Map.of("app", "db", "tier", "gold"), Policy.parseKeepTag("app=db,tier=gold"));
        assertEquals(Map.of("app", ""), Policy.parseKeepTag("app="));
        assertEquals(Map.of("k", "a=b"), Policy.parseKeepTag("k=a=b"));
        assertEquals(Map.of(), Policy.parseKeepTag(""));
        Map<String, String> cases = Map.of(
                "app", "--keep-tag 'app': each tag is KEY=VALUE with a non-empty key, not 'app'",
                "=db", "--keep-tag '=db': each tag is KEY=VALUE with a non-empty key, not '=db'",
                "app=db,,t=x", "--keep-tag 'app=db,,t=x': each tag is KEY=VALUE with a non-empty key, not ''",
                "app=db,", "--keep-tag 'app=db,': each tag is KEY=VALUE with a non-empty key, not ''",
                "app=db,app=web", "--keep-tag 'app=db,app=web': key 'app' given twice");
        for (Map.Entry<String, String> c : cases.entrySet()) {
            assertEquals(c.getValue(), assertThrows(IllegalArgumentException.class,
                    () -> Policy.parseKeepTag(c.getKey())).getMessage());
        }
    }

    /**
     * Random groups (Berlin, several snapshots per hour, DST changes, gaps): the result does not depend on the
     * input order; with an unlimited bucket rule the kept set is the newest of each bucket plus the oldest;
     * raising a count never forgets what a smaller one keeps; the newest is always kept by a counted rule; a
     * limited bucket rule keeps at most N + 1 (the oldest).
     */
    @Test
    void randomGroupsObeyTheRulesInvariants() {
        Random rnd = new Random(20261025);
        Instant base = Instant.parse("2025-01-01T00:00:00Z");
        List<Function<ZonedDateTime, Object>> bucketOf = List.of(
                z -> z.toLocalDateTime().truncatedTo(ChronoUnit.HOURS),
                ZonedDateTime::toLocalDate,
                z -> z.get(java.time.temporal.IsoFields.WEEK_BASED_YEAR) * 100
                        + z.get(java.time.temporal.IsoFields.WEEK_OF_WEEK_BASED_YEAR),
                z -> z.getYear() * 100 + z.getMonthValue(),
                ZonedDateTime::getYear);
        for (int round = 0; round < 60; round++) {
            List<Snap> snaps = new ArrayList<>();
            Instant t = base.plus(rnd.nextInt(400), ChronoUnit.DAYS);
            int n = 1 + rnd.nextInt(60);
            for (int i = 0; i < n; i++) {
                // mostly minutes to hours apart, sometimes weeks; sometimes the same instant
                long step = switch (rnd.nextInt(4)) {
                    case 0 -> 0;
                    case 1 -> rnd.nextInt(90);
                    case 2 -> rnd.nextInt(60 * 30);
                    default -> rnd.nextInt(60 * 24 * 40);
                };
                t = t.plus(step, ChronoUnit.MINUTES);
                snaps.add(new Snap(String.format("r%03d", i), t, Map.of()));
            }
            Instant now = t.plus(1, ChronoUnit.DAYS);
            // equal times: the first name is the newer, so the oldest is the last name of the earliest time
            Comparator<Snap> age = Comparator.comparing(Snap::time).thenComparing(Snap::name,
                    Comparator.reverseOrder());
            String oldest = snaps.stream().min(age).orElseThrow().name();
            String newest = snaps.stream().max(age).orElseThrow().name();
            List<Snap> shuffled = new ArrayList<>(snaps);
            Collections.shuffle(shuffled, rnd);

            for (int rule = 0; rule < 6; rule++) {
                for (int count : new int[]{1, 3, 8}) {
                    Policy p = withCount(rule, count);
                    List<String> k = kept(snaps, p, BERLIN, now);
                    assertEquals(k, kept(shuffled, p, BERLIN, now), "order independence, round " + round);
                    assertTrue(k.contains(newest), "newest kept, round " + round);
                    assertTrue(k.size() <= count + (rule == 0 ? 0 : 1), "at most N + 1, round " + round);
                    Set<String> bigger = new HashSet<>(kept(snaps, withCount(rule, count + 1), BERLIN, now));
                    assertTrue(bigger.containsAll(k), "monotone in N, round " + round + " rule " + rule);
                    assertTrue(new HashSet<>(kept(snaps, withCount(rule, -1), BERLIN, now)).containsAll(k));
                }
            }
            for (int rule = 1; rule < 6; rule++) {
                Function<ZonedDateTime, Object> f = bucketOf.get(rule - 1);
                Map<Object, Snap> newestOfBucket = new HashMap<>();
                for (Snap s : snaps) {
                    newestOfBucket.merge(f.apply(s.time().atZone(BERLIN)), s,
                            (a, b) -> a.time().isAfter(b.time()) || a.time().equals(b.time())
                                    && a.name().compareTo(b.name()) < 0 ? a : b);
                }
                Set<String> expected = newestOfBucket.values().stream().map(Snap::name).collect(Collectors.toSet());
                expected.add(oldest);
                assertEquals(expected, new HashSet<>(kept(snaps, withCount(rule, -1), BERLIN, now)),
                        "unlimited rule " + rule + ", round " + round);
            }
            // within: exactly the snapshots after the newest minus the duration, computed on the Berlin calendar
            Instant newestTime = snaps.stream().map(Snap::time).max(Comparator.naturalOrder()).orElseThrow();
            LocalDate cutDay = newestTime.atZone(BERLIN).toLocalDate().minusDays(10);
            Instant cut = newestTime.atZone(BERLIN).with(cutDay).toInstant();
            Set<String> within = snaps.stream().filter(s -> s.time().isAfter(cut)).map(Snap::name)
                    .collect(Collectors.toSet());
            assertEquals(within, new HashSet<>(kept(snaps, Policy.EMPTY.withWithin(Within.parse("10d")), BERLIN,
                    now)), "within, round " + round);
        }
    }

    private static Policy withCount(int rule, int n) {
        return switch (rule) {
            case 0 -> Policy.EMPTY.withLast(n);
            case 1 -> Policy.EMPTY.withHourly(n);
            case 2 -> Policy.EMPTY.withDaily(n);
            case 3 -> Policy.EMPTY.withWeekly(n);
            case 4 -> Policy.EMPTY.withMonthly(n);
            default -> Policy.EMPTY.withYearly(n);
        };
    }
}
