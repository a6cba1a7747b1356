package dev.ferry.repo;

import java.time.DateTimeException;
import java.time.Duration;
import java.time.Instant;
import java.time.Period;
import java.time.ZoneId;
import java.time.ZonedDateTime;
import java.time.temporal.IsoFields;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.function.Function;

/**
 * Decides which snapshots of one group a retention policy keeps and which it forgets, and why, with the
 * semantics of restic's {@code forget} policy ({@code --keep-last/-hourly/-daily/-weekly/-monthly/-yearly N},
 * {@code --keep-within DURATION}, {@code --keep-tag}). Pure: no I/O, no clock of its own; the caller groups
 * snapshots (per volume and host), prints the decisions and deletes the forgotten ones.
 *
 * <p>The rules, applied to the group's items sorted newest first (equal times in the caller's tie-break order):
 * <ul>
 *   <li>{@code last N} keeps the N newest items.</li>
 *   <li>{@code hourly/daily/weekly/monthly/yearly N} keep the newest item of each of the N newest hours (days,
 *       ISO weeks, months, years) that have items; buckets are local wall-clock periods in the given zone, so
 *       gaps do not count, and the hour a DST change repeats is one bucket. While such a rule still has room
 *       when the oldest item of the group is reached, that item is kept as well ("oldest daily snapshot"), so
 *       a young history keeps its beginning.</li>
 *   <li>N = -1 means without limit; 0 turns the rule off.</li>
 *   <li>{@code within D} keeps every item newer than the newest item minus D (calendar years, months and days
 *       in the zone, then hours and minutes); items dated after {@code now} are not taken as the newest (a
 *       wrong clock must not push the others out) and are kept.</li>
 *   <li>A keep-tag keeps every item having all its KEY=VALUE pairs; an empty keep-tag keeps untagged items.
 *       Several keep-tags: any of them keeps.</li>
 * </ul>
 * An item is kept if any rule keeps it. An empty policy is refused (it would forget everything).
 *
 * <p>Instances are immutable and may be shared between threads.
 */
public final class Retention {
    private final Policy policy;
    private final ZoneId zone;
    private final Instant now;

    /**
     * @param policy the rules; refused if empty ({@link Policy#checkNotEmpty()})
     * @param zone   the zone whose wall clock defines hours, days, weeks, months and years
     * @param now    the current time: items dated after it are not taken as the newest for {@code within}
     */
    public Retention(Policy policy, ZoneId zone, Instant now) {
        this.policy = Objects.requireNonNull(policy, "policy");
        this.zone = Objects.requireNonNull(zone, "zone");
        this.now = Objects.requireNonNull(now, "now");
        policy.checkNotEmpty();
    }

    public Policy policy() {
        return policy;
    }

    /**
     * One decision: the item, its time, whether it is kept, and why. A kept item's reasons name each rule that
     * keeps it ("last snapshot (1 of 3)", "daily snapshot (2026-12-01, 2 of 7)", "within 7d of the newest",
     * "tag app=db"); a forgotten item's reasons say, for each rule of the policy, why that rule does not keep it
     * ("day 2026-12-01 has a newer snapshot", "not in the last 7 days that have snapshots").
     */
    public record Decision<T>(T item, Instant time, boolean keep, List<String> reasons) {
        public Decision {
            reasons = List.copyOf(reasons);
        }

        /** The reasons as one line. */
        public String why() {
            return String.join("; ", reasons);
        }
    }

    /**
     * Decides for one group.
     *
     * @param items    the group's items, in any order
     * @param time     an item's time
     * @param tags     an item's tags (null means none)
     * @param tieBreak orders items of equal time (e.g. by id); the first is taken as the newer
     * @return one decision per item, newest first
     * @throws IllegalArgumentException if the policy would forget every item of a non-empty group (as restic,
     *                                  which refuses that: only a policy of keep-tags alone can), with a message
     *                                  the caller may prefix with the group's name
     */
    public <T> List<Decision<T>> apply(Collection<? extends T> items, Function<? super T, Instant> time,
                                       Function<? super T, Map<String, String>> tags,
                                       Comparator<? super T> tieBreak) {
        Objects.requireNonNull(tieBreak, "tieBreak");
        List<Timed<T>> list = new ArrayList<>(items.size());
        for (T item : items) {
            Instant t = time.apply(item);
            if (t == null) {
                throw new IllegalArgumentException("no time for " + item);
            }
            list.add(new Timed<>(item, t));
        }
        list.sort(Comparator.<Timed<T>, Instant>comparing(Timed::time).reversed()
                .thenComparing(Timed::item, tieBreak));

        Instant cutoff = null;
        if (policy.within() != null) {
            Instant newest = null;
            for (Timed<T> x : list) {
                if (!x.time().isAfter(now)) {
                    newest = x.time();
                    break;
                }
            }
            // all items dated after now: none is the newest, all are kept
            cutoff = newest == null ? Instant.MAX : policy.within().cutoff(newest, zone);
        }

        Rule[] rules = Rule.values();
        int[] left = new int[rules.length];
        int[] used = new int[rules.length];
        String[] lastBucket = new String[rules.length];
        for (Rule r : rules) {
            left[r.ordinal()] = policy.count(r);
        }
        List<Decision<T>> out = new ArrayList<>(list.size());
        boolean anyKept = false;
        for (int i = 0; i < list.size(); i++) {
            Timed<T> x = list.get(i);
            boolean oldest = i == list.size() - 1;
            ZonedDateTime local = x.time().atZone(zone);
            List<String> keepReasons = new ArrayList<>();
            List<String> forgetReasons = new ArrayList<>();
            for (Rule r : rules) {
                int n = policy.count(r);
                if (n == 0) {
                    continue;
                }
                int k = r.ordinal();
                String bucket = r.bucket(local);
                boolean newBucket = bucket == null || !bucket.equals(lastBucket[k]);
                if (left[k] != 0 && (newBucket || oldest)) {
                    lastBucket[k] = bucket;
                    if (left[k] > 0) {
                        left[k]--;
                    }
                    if (newBucket) {
                        used[k]++;
                        keepReasons.add(r.kept(bucket, used[k], n));
                    } else {
                        keepReasons.add("oldest " + r.adjective + " snapshot (" + bucket + ")");
                    }
                } else if (!newBucket) {
                    forgetReasons.add(r.noun + " " + bucket + " has a newer snapshot");
                } else if (r == Rule.LAST) {
                    forgetReasons.add(n == 1 ? "not the last snapshot" : "not among the last " + n);
                } else {
                    forgetReasons.add(n == 1 ? "not in the last " + r.noun + " that has snapshots"
                            : "not in the last " + n + " " + r.noun + "s that have snapshots");
                }
            }
            if (cutoff != null) {
                if (x.time().isAfter(now)) {
                    keepReasons.add("dated after now, kept by --keep-within " + policy.within());
                } else if (x.time().isAfter(cutoff)) {
                    keepReasons.add("within " + policy.within() + " of the newest");
                } else {
                    forgetReasons.add("older than " + policy.within() + " before the newest");
                }
            }
            if (!policy.keepTags().isEmpty()) {
                Map<String, String> have = tags.apply(x.item());
                if (have == null) {
                    have = Map.of();
                }
                boolean any = false;
                for (Map<String, String> want : policy.keepTags()) {
                    if (matches(have, want)) {
                        keepReasons.add(tagText(want));
                        any = true;
                    }
                }
                if (!any) {
                    forgetReasons.add("no --keep-tag matches");
                }
            }
            boolean keep = !keepReasons.isEmpty();
            anyKept |= keep;
            out.add(new Decision<>(x.item(), x.time(), keep, keep ? keepReasons : forgetReasons));
        }
        if (!anyKept && !out.isEmpty()) {
            throw new IllegalArgumentException("refusing to forget all " + out.size() + " snapshot(s) of the group:"
                    + " the policy (" + policy.describe() + ") keeps none of them");
        }
        return Collections.unmodifiableList(out);
    }

    private static boolean matches(Map<String, String> have, Map<String, String> want) {
        if (want.isEmpty()) {
            return have.isEmpty();
        }
        for (Map.Entry<String, String> e : want.entrySet()) {
            if (!e.getValue().equals(have.get(e.getKey()))) {
                return false;
            }
        }
        return true;
    }

    private static String tagText(Map<String, String> want) {
        return want.isEmpty() ? "untagged" : (want.size() == 1 ? "tag " : "tags ") + pairs(want);
    }

    private static String pairs(Map<String, String> tags) {
        StringBuilder sb = new StringBuilder();
        for (Map.Entry<String, String> e : tags.entrySet()) {
            if (sb.length() > 0) {
                sb.append(',');
            }
            sb.append(e.getKey()).append('=').append(e.getValue());
        }
        return sb.toString();
    }

    private record Timed<T>(T item, Instant time) {
    }

    /** The counted rules, in the order their reasons are given. */
    private enum Rule {
        LAST("--keep-last", "last", null),
        HOURLY("--keep-hourly", "hourly", "hour"),
        DAILY("--keep-daily", "daily", "day"),
        WEEKLY("--keep-weekly", "weekly", "week"),
        MONTHLY("--keep-monthly", "monthly", "month"),
        YEARLY("--keep-yearly", "yearly", "year");

        final String option;
        final String adjective;
        final String noun;

        Rule(String option, String adjective, String noun) {
            this.option = option;
            this.adjective = adjective;
            this.noun = noun;
        }

        /** The bucket of a local time, as its label (null for LAST: every item is a bucket of its own). */
        String bucket(ZonedDateTime t) {
            StringBuilder sb = new StringBuilder(16);
            switch (this) {
                case LAST -> {
                    return null;
                }
                case HOURLY -> pad(pad(pad(pad(sb, t.getYear(), 4).append('-'), t.getMonthValue(), 2).append('-'),
                        t.getDayOfMonth(), 2).append(' '), t.getHour(), 2).append(":00");
                case DAILY -> pad(pad(pad(sb, t.getYear(), 4).append('-'), t.getMonthValue(), 2).append('-'),
                        t.getDayOfMonth(), 2);
                case WEEKLY -> pad(pad(sb, t.get(IsoFields.WEEK_BASED_YEAR), 4).append("-W"),
                        t.get(IsoFields.WEEK_OF_WEEK_BASED_YEAR), 2);
                case MONTHLY -> pad(pad(sb, t.getYear(), 4).append('-'), t.getMonthValue(), 2);
                case YEARLY -> pad(sb, t.getYear(), 4);
                default -> throw new IllegalStateException(name());
            }
            return sb.toString();
        }

        private static StringBuilder pad(StringBuilder sb, int v, int width) {
            String s = Integer.toString(v);
            for (int i = s.length(); i < width; i++) {
                sb.append('0');
            }
            return sb.append(s);
        }

        String kept(String bucket, int ordinal, int count) {
            String of = count < 0 ? "" : ordinal + " of " + count;
            if (this == LAST) {
                return count < 0 ? "last snapshot" : "last snapshot (" + of + ")";
            }
            return adjective + " snapshot (" + bucket + (count < 0 ? "" : ", " + of) + ")";
        }
    }

    /**
     * A retention policy. Counts: 0 turns a rule off, -1 keeps without limit. Tags are KEY=VALUE maps, each
     * kept-tag matching items that have all its pairs (an empty map matches untagged items); {@code within}
     * may be null (off).
     */
    public record Policy(int last, int hourly, int daily, int weekly, int monthly, int yearly,
                         List<Map<String, String>> keepTags, Within within) {
        /** No rule at all: refused by {@link Retention}; a start for the {@code with...} methods. */
        public static final Policy EMPTY = new Policy(0, 0, 0, 0, 0, 0, List.of(), null);

        public Policy {
            int[] counts = {last, hourly, daily, weekly, monthly, yearly};
            for (Rule r : Rule.values()) {
                int n = counts[r.ordinal()];
                if (n < -1) {
                    throw new IllegalArgumentException(r.option + " is a number of snapshots, or -1 for all, not "
                            + n);
                }
            }
            List<Map<String, String>> copy = new ArrayList<>();
            for (Map<String, String> m : keepTags == null ? List.<Map<String, String>>of() : keepTags) {
                Objects.requireNonNull(m, "keep-tag");
                for (Map.Entry<String, String> e : m.entrySet()) {
                    if (e.getKey() == null || e.getKey().isEmpty() || e.getValue() == null) {
                        throw new IllegalArgumentException("--keep-tag: a tag is KEY=VALUE with a non-empty key, not "
                                + e.getKey() + "=" + e.getValue());
                    }
                }
                copy.add(Collections.unmodifiableMap(new TreeMap<>(m)));
            }
            keepTags = List.copyOf(copy);
        }

        public Policy withLast(int n) {
            return new Policy(n, hourly, daily, weekly, monthly, yearly, keepTags, within);
        }

        public Policy withHourly(int n) {
            return new Policy(last, n, daily, weekly, monthly, yearly, keepTags, within);
        }

        public Policy withDaily(int n) {
            return new Policy(last, hourly, n, weekly, monthly, yearly, keepTags, within);
        }

        public Policy withWeekly(int n) {
            return new Policy(last, hourly, daily, n, monthly, yearly, keepTags, within);
        }

        public Policy withMonthly(int n) {
            return new Policy(last, hourly, daily, weekly, n, yearly, keepTags, within);
        }

        public Policy withYearly(int n) {
            return new Policy(last, hourly, daily, weekly, monthly, n, keepTags, within);
        }

        /** This policy with one more keep-tag (any keep-tag keeps). */
        public Policy withKeepTag(Map<String, String> tags) {
            List<Map<String, String>> more = new ArrayList<>(keepTags);
            more.add(tags);
            return new Policy(last, hourly, daily, weekly, monthly, yearly, more, within);
        }

        public Policy withWithin(Within d) {
            return new Policy(last, hourly, daily, weekly, monthly, yearly, keepTags, d);
        }

        int count(Rule r) {
            return switch (r) {
                case LAST -> last;
                case HOURLY -> hourly;
                case DAILY -> daily;
                case WEEKLY -> weekly;
                case MONTHLY -> monthly;
                case YEARLY -> yearly;
            };
        }

        /** True when no rule is set: applying it would forget every snapshot. */
        public boolean isEmpty() {
            return last == 0 && hourly == 0 && daily == 0 && weekly == 0 && monthly == 0 && yearly == 0
                    && keepTags.isEmpty() && within == null;
        }

        /** Throws, with a message for the user, when the policy is empty. */
        public void checkNotEmpty() {
            if (isEmpty()) {
                throw new IllegalArgumentException("no retention rule given: that would forget every snapshot; give"
                        + " at least one of --keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly,"
                        + " --keep-yearly (N > 0, or -1 for all), --keep-within or --keep-tag");
            }
        }

        /**
         * The policy in words, e.g. "keep the last 3, 7 daily, all monthly snapshots and all within 7d of the newest".
         */
        public String describe() {
            List<String> counted = new ArrayList<>();
            for (Rule r : Rule.values()) {
                int n = count(r);
                if (n != 0) {
                    String what = r == Rule.LAST ? "" : " " + r.adjective;
                    counted.add(n < 0 ? "all" + what : (r == Rule.LAST ? "the last " + n : n + what));
                }
            }
            List<String> parts = new ArrayList<>();
            if (!counted.isEmpty()) {
                parts.add(String.join(", ", counted) + " snapshots");
            }
            if (!keepTags.isEmpty()) {
                List<String> t = new ArrayList<>();
                for (Map<String, String> m : keepTags) {
                    t.add(m.isEmpty() ? "untagged" : "tagged " + pairs(m));
                }
                parts.add("all snapshots " + String.join(" or ", t));
            }
            if (within != null) {
                parts.add("all within " + within + " of the newest");
            }
            if (parts.isEmpty()) {
                return "keep nothing";
            }
            String last = parts.remove(parts.size() - 1);
            return "keep " + (parts.isEmpty() ? last : String.join(", ", parts) + " and " + last);
        }

        /**
         * Parses one {@code --keep-tag} value: KEY=VALUE pairs separated by commas, all of which must be present
         * (a value cannot hold a comma); the empty string stands for untagged snapshots.
         */
        public static Map<String, String> parseKeepTag(String s) {
            Map<String, String> m = new TreeMap<>();
            if (s.isEmpty()) {
                return m;
            }
            for (String pair : s.split(",", -1)) {
                int eq = pair.indexOf('=');
                if (eq < 1) {
                    throw new IllegalArgumentException("--keep-tag '" + s + "': each tag is KEY=VALUE with a non-empty"
                            + " key, not '" + pair + "'");
                }
                String key = pair.substring(0, eq);
                if (m.put(key, pair.substring(eq + 1)) != null) {
                    throw new IllegalArgumentException("--keep-tag '" + s + "': key '" + key + "' given twice");
                }
            }
            return m;
        }
    }

    /**
     * A {@code --keep-within} duration as restic writes it ({@code 1y5m7d2h}: years, months, days, hours; Ferry
     * also takes {@code min} for minutes). Years, months and days are calendar periods on the zone's wall clock,
     * counted back from the newest item (a month before March 31 is the end of February); hours and minutes are
     * elapsed time.
     */
    public record Within(int years, int months, int days, int hours, int minutes) {
        private static final String UNITS = "y years, m months, d days, h hours, min minutes";

        public Within {
            if (years < 0 || months < 0 || days < 0 || hours < 0 || minutes < 0) {
                throw new IllegalArgumentException("--keep-within cannot be negative");
            }
            if (years == 0 && months == 0 && days == 0 && hours == 0 && minutes == 0) {
                throw new IllegalArgumentException("--keep-within of zero keeps nothing: leave it out or give a"
                        + " positive duration");
            }
        }

        /** Parses {@code 1y5m7d2h}, {@code 7d}, {@code 36h}, {@code 90min}...: each unit at most once. */
        public static Within parse(String text) {
            String s = text.strip();
            if (s.isEmpty()) {
                throw new IllegalArgumentException("--keep-within needs a duration such as 7d or 1y5m7d2h (" + UNITS
                        + ")");
            }
            long[] v = new long[5];
            boolean[] seen = new boolean[5];
            int i = 0;
            while (i < s.length()) {
                int start = i;
                while (i < s.length() && s.charAt(i) >= '0' && s.charAt(i) <= '9') {
                    i++;
                }
                if (i == start) {
                    char c = s.charAt(i);
                    throw new IllegalArgumentException("--keep-within '" + text + "': "
                            + (c == '-' ? "a duration cannot be negative"
                            : "expected a number at position " + (i + 1) + ", found '" + c + "'"));
                }
                String digits = s.substring(start, i);
                long n;
                try {
                    n = Long.parseLong(digits);
                } catch (NumberFormatException e) {
                    n = Long.MAX_VALUE;
                }
                if (n > Integer.MAX_VALUE) {
                    throw new IllegalArgumentException("--keep-within '" + text + "': " + digits + " is too large");
                }
                int u = i;
                while (i < s.length() && Character.isLetter(s.charAt(i))) {
                    i++;
                }
                String unit = s.substring(u, i);
                if (unit.isEmpty()) {
                    throw new IllegalArgumentException("--keep-within '" + text + "': no unit after " + digits
                            + (i < s.length() ? " (found '" + s.charAt(i) + "')" : "") + " (" + UNITS + ")");
                }
                int k = switch (unit) {
                    case "y" -> 0;
                    case "m" -> 1;
                    case "d" -> 2;
                    case "h" -> 3;
                    case "min" -> 4;
                    default -> throw new IllegalArgumentException("--keep-within '" + text + "': unknown unit '"
                            + unit + "' after " + digits + " (" + UNITS + ")");
                };
                if (seen[k]) {
                    throw new IllegalArgumentException("--keep-within '" + text + "': unit '" + unit
                            + "' given twice");
                }
                seen[k] = true;
                v[k] = n;
            }
            if (v[0] == 0 && v[1] == 0 && v[2] == 0 && v[3] == 0 && v[4] == 0) {
                throw new IllegalArgumentException("--keep-within '" + text + "' is zero and keeps nothing: leave it"
                        + " out or give a positive duration");
            }
            return new Within((int) v[0], (int) v[1], (int) v[2], (int) v[3], (int) v[4]);
        }

        /**
         * The instant this duration before {@code newest}: years, months and days back on the wall clock of
         * {@code zone}, then hours and minutes back. Items strictly after it are within. A duration reaching
         * before the representable range gives {@link Instant#MIN} (everything is within).
         */
        public Instant cutoff(Instant newest, ZoneId zone) {
            try {
                return newest.atZone(zone).minus(Period.of(years, months, days)).toInstant()
                        .minus(Duration.ofHours(hours).plusMinutes(minutes));
            } catch (DateTimeException | ArithmeticException e) {
                return Instant.MIN;
            }
        }

        /** As written: {@code 1y5m7d2h30min}, zero units left out. */
        @Override
        public String toString() {
            StringBuilder sb = new StringBuilder();
            int[] v = {years, months, days, hours, minutes};
            String[] unit = {"y", "m", "d", "h", "min"};
            for (int k = 0; k < v.length; k++) {
                if (v[k] != 0) {
                    sb.append(v[k]).append(unit[k]);
                }
            }
            return sb.toString();
        }
    }
}
