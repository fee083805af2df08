/*
 * Unit tests for deadline.c: active-time arithmetic in several zones
 * (including both DST transitions of Europe/Berlin and America/New_York,
 * where a day's active time differs from its window length), and the
 * engine on a fake clock — first fire, repeats, recovery, late reports,
 * pauses, restarts, truncation — ending with a randomised run against a
 * naive O(n) model that checks the heap's every pop.
 *
 * Each test sets its own zone with setenv("TZ") + tzset(): localtime_r()
 * does not re-read TZ by itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "deadline.h"

#define H 3600
#define M 60
#define DAY 86400

static void set_tz(const char *tz)
{
	setenv("TZ", tz, 1);
	tzset();
}

/* A local wall time that exists exactly once (callers avoid DST gaps and
 * overlaps, where mktime's choice is not what the module promises). */
static int64_t lt(int y, int mo, int d, int h, int mi)
{
	struct tm tm = { .tm_year = y - 1900,
		         .tm_mon = mo - 1,
		         .tm_mday = d,
		         .tm_hour = h,
		         .tm_min = mi,
		         .tm_isdst = -1 };

	return (int64_t)mktime(&tm);
}

static int64_t utc(int y, int mo, int d, int h, int mi)
{
	struct tm tm = {
		.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi
	};

	return (int64_t)timegm(&tm);
}

static struct units_active win(int sh, int sm, int eh, int em)
{
	return (struct units_active){ .start_min = sh * 60 + sm, .end_min = eh * 60 + em };
}

static const struct units_active always = { .always = true };

/* Signed comparison with readable times on failure. */
#define assert_time(got, want)                                                                \
	do {                                                                                  \
		int64_t g_ = (got), w_ = (want);                                              \
		if (g_ != w_)                                                                 \
			fail_msg("%s = %lld, want %lld (off by %lld s)", #got, (long long)g_, \
			         (long long)w_, (long long)(g_ - w_));                        \
	} while (0)

/* Naive reference: minute by minute with localtime_r. Agrees with the
 * module wherever no wall time inside the window occurs twice. */
static int64_t brute_between(const struct units_active *a, int64_t from, int64_t to)
{
	int64_t sum = 0;

	for (int64_t t = from; t < to; t += M) {
		time_t tt = (time_t)t;
		struct tm tm;
		int m;
		bool in;

		localtime_r(&tt, &tm);
		m = tm.tm_hour * 60 + tm.tm_min;
		if (a->start_min < a->end_min)
			in = m >= a->start_min && m < a->end_min;
		else
			in = m >= a->start_min || m < a->end_min;
		if (in)
			sum += M;
	}
	return sum;
}

/* between(from, add(from, d)) == d, and add() is the earliest such
 * instant: one second less holds less than d. */
static void check_roundtrip(const struct units_active *a, int64_t from, int64_t d)
{
	int64_t t = deadline_active_add(a, from, d);

	assert_true(t >= from);
	assert_time(deadline_active_between(a, from, t), d);
	if (d > 0)
		assert_time(deadline_active_between(a, from, t - 1), d - 1);
}

/* --- arithmetic --- */

static void test_always(void **state)
{
	(void)state;
	set_tz("Asia/Shanghai");
	int64_t t = lt(2026, 11, 24, 3, 0);

	assert_true(deadline_is_active(&always, t));
	assert_time(deadline_active_add(&always, t, 4 * H), t + 4 * H);
	assert_time(deadline_active_add(&always, t, 0), t);
	assert_time(deadline_active_between(&always, t, t + 5 * DAY), 5 * DAY);
	assert_time(deadline_active_between(&always, t, t - 1), 0);
	assert_time(deadline_active_add(&always, INT64_MAX - 10, 11), DEADLINE_NEVER);
	assert_time(deadline_active_add(&always, DEADLINE_NEVER, 1), DEADLINE_NEVER);
}

static void test_same_day_window(void **state)
{
	(void)state;
	set_tz("Asia/Shanghai");
	struct units_active a = win(7, 0, 19, 0);

	/* The SPEC example: 2 h used by 19:00, 2 h more from 07:00. */
	assert_time(deadline_active_add(&a, lt(2026, 11, 24, 17, 0), 4 * H),
	            lt(2026, 11, 25, 9, 0));
	assert_time(deadline_active_add(&a, lt(2026, 11, 24, 8, 0), 4 * H),
	            lt(2026, 11, 24, 12, 0));
	/* From outside the window: the count starts at the next opening. */
	assert_time(deadline_active_add(&a, lt(2026, 11, 24, 5, 0), 4 * H),
	            lt(2026, 11, 24, 11, 0));
	assert_time(deadline_active_add(&a, lt(2026, 11, 24, 19, 0), 1 * H),
	            lt(2026, 11, 25, 8, 0));
	assert_time(deadline_active_add(&a, lt(2026, 11, 24, 22, 0), 1 * H),
	            lt(2026, 11, 25, 8, 0));
	/* Exactly filling the window ends at its close, not the next open. */
	assert_time(deadline_active_add(&a, lt(2026, 11, 24, 18, 0), 1 * H),
	            lt(2026, 11, 24, 19, 0));
	/* Zero from outside the window is "from", not the next opening. */
	assert_time(deadline_active_add(&a, lt(2026, 11, 24, 3, 0), 0), lt(2026, 11, 24, 3, 0));
	/* Multi-day carry-over: 30 h = 2 h + 12 h + 12 h + 4 h. */
	assert_time(deadline_active_add(&a, lt(2026, 11, 24, 17, 0), 30 * H),
	            lt(2026, 11, 27, 11, 0));
	/* Exactly whole days. */
	assert_time(deadline_active_add(&a, lt(2026, 11, 24, 7, 0), 36 * H),
	            lt(2026, 11, 26, 19, 0));
	assert_time(deadline_active_add(&a, lt(2026, 11, 24, 7, 0), 400 * 12 * H),
	            lt(2027, 12, 28, 19, 0));

	assert_true(deadline_is_active(&a, lt(2026, 11, 24, 7, 0)));
	assert_true(deadline_is_active(&a, lt(2026, 11, 24, 18, 59) + 59));
	assert_false(deadline_is_active(&a, lt(2026, 11, 24, 19, 0)));
	assert_false(deadline_is_active(&a, lt(2026, 11, 24, 6, 59)));

	assert_time(deadline_active_between(&a, lt(2026, 11, 24, 0, 0), lt(2026, 11, 27, 0, 0)),
	            36 * H);
	assert_time(deadline_active_between(&a, lt(2026, 11, 24, 17, 0), lt(2026, 11, 25, 9, 0)),
	            4 * H);
	assert_time(deadline_active_between(&a, lt(2026, 11, 24, 20, 0), lt(2026, 11, 25, 6, 0)),
	            0);
}

static void test_crossing_window(void **state)
{
	(void)state;
	set_tz("Asia/Shanghai");
	struct units_active a = win(20, 0, 6, 0);

	/* 9 h to 06:00, the 10th hour from 20:00. */
	assert_time(deadline_active_add(&a, lt(2026, 11, 24, 21, 0), 10 * H),
	            lt(2026, 11, 25, 21, 0));
	assert_time(deadline_active_add(&a, lt(2026, 11, 25, 3, 0), 2 * H), lt(2026, 11, 25, 5, 0));
	assert_time(deadline_active_add(&a, lt(2026, 11, 25, 3, 0), 3 * H), lt(2026, 11, 25, 6, 0));
	assert_time(deadline_active_add(&a, lt(2026, 11, 25, 12, 0), 1 * H),
	            lt(2026, 11, 25, 21, 0));
	assert_time(deadline_active_add(&a, lt(2026, 11, 25, 12, 0), 25 * H),
	            lt(2026, 11, 28, 1, 0));
	assert_true(deadline_is_active(&a, lt(2026, 11, 24, 23, 0)));
	assert_true(deadline_is_active(&a, lt(2026, 11, 24, 20, 0)));
	assert_true(deadline_is_active(&a, lt(2026, 11, 25, 0, 0)));
	assert_true(deadline_is_active(&a, lt(2026, 11, 25, 5, 59)));
	assert_false(deadline_is_active(&a, lt(2026, 11, 25, 6, 0)));
	assert_false(deadline_is_active(&a, lt(2026, 11, 25, 12, 0)));
	assert_time(deadline_active_between(&a, lt(2026, 11, 24, 12, 0), lt(2026, 11, 26, 12, 0)),
	            20 * H);
}

static void test_end_24(void **state)
{
	(void)state;
	set_tz("Asia/Shanghai");
	struct units_active a = win(18, 0, 24, 0);

	assert_int_equal(a.end_min, 1440);
	assert_time(deadline_active_add(&a, lt(2026, 11, 24, 23, 0), 2 * H),
	            lt(2026, 11, 25, 19, 0));
	assert_time(deadline_active_add(&a, lt(2026, 11, 24, 23, 0), 1 * H),
	            lt(2026, 11, 25, 0, 0));
	assert_true(deadline_is_active(&a, lt(2026, 11, 25, 0, 0) - 1));
	assert_false(deadline_is_active(&a, lt(2026, 11, 25, 0, 0)));
	assert_time(deadline_active_between(&a, lt(2026, 11, 24, 0, 0), lt(2026, 11, 26, 0, 0)),
	            12 * H);

	/* 00:00-24:00 is the whole local day, but not "always": see DST. */
	a = win(0, 0, 24, 0);
	assert_time(deadline_active_add(&a, lt(2026, 11, 24, 23, 0), 2 * H),
	            lt(2026, 11, 25, 1, 0));
}

/* Deterministic pseudo-random numbers, so a failure can be replayed. */
static uint64_t rng_state = 88172645463325252ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static int64_t rnd(int64_t n)
{
	return (int64_t)(rng() % (uint64_t)n);
}

static void roundtrip_many(const struct units_active *wins, size_t nw, int64_t t0, int64_t span,
                           int rounds)
{
	for (int i = 0; i < rounds; i++) {
		const struct units_active *a = &wins[rnd((int64_t)nw)];
		int64_t from = t0 + rnd(span);
		int64_t d = rnd(4) == 0 ? rnd(60 * H) : rnd(6 * H);

		check_roundtrip(a, from, d);
	}
}

static void test_roundtrip_and_brute(void **state)
{
	(void)state;
	const struct units_active wins[] = {
		win(7, 0, 19, 0), win(20, 0, 6, 0),  win(18, 0, 24, 0),
		win(0, 0, 24, 0), win(6, 30, 6, 45), win(23, 59, 0, 1),
		always,
	};
	const char *zones[] = { "Asia/Shanghai", "Europe/Berlin", "America/New_York" };

	for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
		set_tz(zones[z]);
		/* A year, so every zone's transitions are crossed. */
		roundtrip_many(wins, sizeof(wins) / sizeof(wins[0]), utc(2026, 1, 1, 0, 0),
		               365 * DAY, 3000);
	}

	/* Minute-by-minute reference over a DST-free week, and over Berlin's
	 * spring-forward week (no wall time occurs twice there). */
	struct {
		const char *tz;
		int64_t from;
	} runs[] = {
		{ "Asia/Shanghai", 0 },
		{ "Europe/Berlin", 1 },
	};
	for (size_t r = 0; r < 2; r++) {
		set_tz(runs[r].tz);
		int64_t t0 = runs[r].from ? lt(2026, 3, 26, 0, 0) : lt(2026, 11, 23, 0, 0);

		for (size_t w = 0; w < sizeof(wins) / sizeof(wins[0]); w++) {
			if (wins[w].always)
				continue;
			for (int i = 0; i < 20; i++) {
				int64_t from = t0 + rnd(4 * DAY / M) * M;
				int64_t to = from + rnd(3 * DAY / M) * M;

				assert_time(deadline_active_between(&wins[w], from, to),
				            brute_between(&wins[w], from, to));
			}
		}
	}
}

static void test_dst_berlin(void **state)
{
	(void)state;
	set_tz("Europe/Berlin");
	/* Spring: 2026-03-29 02:00 CET -> 03:00 CEST at 01:00 UTC. */
	struct units_active a = win(1, 0, 5, 0);
	int64_t tr = utc(2026, 3, 29, 1, 0);

	assert_time(deadline_active_between(&a, utc(2026, 3, 28, 12, 0), utc(2026, 3, 29, 12, 0)),
	            3 * H);
	assert_time(deadline_active_add(&a, utc(2026, 3, 29, 0, 0), 1 * H), tr);
	assert_time(deadline_active_add(&a, utc(2026, 3, 29, 0, 0), 3 * H), utc(2026, 3, 29, 3, 0));
	assert_time(deadline_active_add(&a, utc(2026, 3, 29, 0, 0), 4 * H),
	            utc(2026, 3, 30, 0, 0)); /* 01:00 CEST + 1 h */

	/* A window opening inside the gap opens when the gap ends; one lying
	 * wholly inside it is empty that day. */
	a = win(2, 30, 4, 0);
	assert_time(deadline_active_between(&a, utc(2026, 3, 28, 12, 0), utc(2026, 3, 29, 12, 0)),
	            1 * H);
	assert_false(deadline_is_active(&a, tr - 1));
	assert_true(deadline_is_active(&a, tr));
	assert_time(deadline_active_add(&a, utc(2026, 3, 28, 12, 0), 1), tr + 1);
	a = win(2, 0, 3, 0);
	assert_time(deadline_active_between(&a, utc(2026, 3, 28, 12, 0), utc(2026, 3, 29, 12, 0)),
	            0);
	assert_time(deadline_active_add(&a, utc(2026, 3, 28, 12, 0), 1),
	            utc(2026, 3, 30, 0, 0) + 1); /* 02:00 CEST on the 30th */

	/* The whole local day is 23 h; a crossing window loses the hour. */
	a = win(0, 0, 24, 0);
	assert_time(deadline_active_between(&a, lt(2026, 3, 29, 0, 0), lt(2026, 3, 30, 0, 0)),
	            23 * H);
	a = win(20, 0, 6, 0);
	assert_time(deadline_active_between(&a, lt(2026, 3, 28, 12, 0), lt(2026, 3, 29, 12, 0)),
	            9 * H);
	/* 07:00-19:00 across the change: 2 h Saturday, 2 h from 07:00 CEST. */
	a = win(7, 0, 19, 0);
	assert_time(deadline_active_add(&a, lt(2026, 3, 28, 17, 0), 4 * H), utc(2026, 3, 29, 7, 0));

	/* Autumn: 2026-10-25 03:00 CEST -> 02:00 CET at 01:00 UTC; 02:00-02:59
	 * occurs twice and a boundary there means its first occurrence. */
	a = win(1, 0, 5, 0);
	assert_time(deadline_active_between(&a, utc(2026, 10, 24, 12, 0), utc(2026, 10, 25, 12, 0)),
	            5 * H);
	a = win(2, 30, 4, 0);
	assert_time(deadline_active_between(&a, utc(2026, 10, 24, 12, 0), utc(2026, 10, 25, 12, 0)),
	            150 * M);
	assert_true(deadline_is_active(&a, utc(2026, 10, 25, 0, 30)));
	assert_time(deadline_active_add(&a, utc(2026, 10, 24, 12, 0), 1),
	            utc(2026, 10, 25, 0, 30) + 1);
	a = win(2, 0, 2, 30);
	assert_time(deadline_active_between(&a, utc(2026, 10, 24, 12, 0), utc(2026, 10, 25, 12, 0)),
	            30 * M);
	assert_true(deadline_is_active(&a, utc(2026, 10, 25, 0, 15)));
	assert_false(deadline_is_active(&a, utc(2026, 10, 25, 1, 15))); /* 02:15 CET */
	a = win(0, 0, 24, 0);
	assert_time(deadline_active_between(&a, lt(2026, 10, 25, 0, 0), lt(2026, 10, 26, 0, 0)),
	            25 * H);
	a = win(7, 0, 19, 0);
	assert_time(deadline_active_add(&a, lt(2026, 10, 24, 17, 0), 4 * H),
	            utc(2026, 10, 25, 8, 0)); /* 09:00 CET */
	check_roundtrip(&a, utc(2026, 10, 24, 12, 0), 20 * H);
}

static void test_dst_new_york(void **state)
{
	(void)state;
	set_tz("America/New_York");
	/* Spring: 2026-03-08 02:00 EST -> 03:00 EDT at 07:00 UTC. */
	struct units_active a = win(0, 0, 24, 0);

	assert_time(deadline_active_between(&a, lt(2026, 3, 8, 0, 0), lt(2026, 3, 9, 0, 0)),
	            23 * H);
	a = win(1, 30, 2, 30);
	assert_time(deadline_active_between(&a, utc(2026, 3, 7, 12, 0), utc(2026, 3, 8, 12, 0)),
	            30 * M);
	assert_time(deadline_active_add(&a, utc(2026, 3, 8, 6, 30), 30 * M), utc(2026, 3, 8, 7, 0));
	assert_time(deadline_active_add(&a, utc(2026, 3, 8, 6, 30), 31 * M),
	            utc(2026, 3, 9, 5, 31)); /* 01:31 EDT next day */
	/* Autumn: 2026-11-01 02:00 EDT -> 01:00 EST at 06:00 UTC. "01:00-02:00"
	 * runs from the first 01:00 to 02:00 EST: both 01:xx hours. */
	a = win(1, 0, 2, 0);
	assert_time(deadline_active_between(&a, utc(2026, 10, 31, 12, 0), utc(2026, 11, 1, 12, 0)),
	            2 * H);
	a = win(0, 0, 24, 0);
	assert_time(deadline_active_between(&a, lt(2026, 11, 1, 0, 0), lt(2026, 11, 2, 0, 0)),
	            25 * H);
	a = win(7, 0, 19, 0);
	assert_time(deadline_active_add(&a, lt(2026, 10, 31, 17, 0), 4 * H), lt(2026, 11, 1, 9, 0));
	assert_time(deadline_active_add(&a, lt(2026, 3, 7, 17, 0), 4 * H), lt(2026, 3, 8, 9, 0));
}

static void test_next_daily(void **state)
{
	(void)state;
	set_tz("Asia/Shanghai");
	assert_time(deadline_next_daily(20 * 60, lt(2026, 11, 24, 19, 59)),
	            lt(2026, 11, 24, 20, 0));
	assert_time(deadline_next_daily(20 * 60, lt(2026, 11, 24, 20, 0)), lt(2026, 11, 25, 20, 0));
	assert_time(deadline_next_daily(20 * 60, lt(2026, 12, 31, 23, 0)), lt(2027, 1, 1, 20, 0));
	assert_time(deadline_next_daily(0, lt(2026, 11, 24, 23, 59)), lt(2026, 11, 25, 0, 0));

	set_tz("Europe/Berlin");
	/* 23 h between the two digests over spring-forward, 25 h in autumn. */
	assert_time(deadline_next_daily(20 * 60, lt(2026, 3, 28, 20, 0)),
	            lt(2026, 3, 28, 20, 0) + 23 * H);
	assert_time(deadline_next_daily(20 * 60, lt(2026, 10, 24, 20, 0)),
	            lt(2026, 10, 24, 20, 0) + 25 * H);
	/* A digest time inside the gap comes when the gap ends... */
	assert_time(deadline_next_daily(150, lt(2026, 3, 28, 3, 0)), utc(2026, 3, 29, 1, 0));
	/* ...and one that occurs twice comes once, at the first. */
	assert_time(deadline_next_daily(150, lt(2026, 10, 24, 12, 0)), utc(2026, 10, 25, 0, 30));
	assert_time(deadline_next_daily(150, utc(2026, 10, 25, 0, 30)), utc(2026, 10, 26, 1, 30));

	set_tz("America/New_York");
	assert_time(deadline_next_daily(20 * 60, lt(2026, 3, 7, 21, 0)), lt(2026, 3, 8, 20, 0));
	assert_time(deadline_next_daily(20 * 60, lt(2026, 3, 7, 21, 0)), utc(2026, 3, 9, 0, 0));
}

/* --- the engine --- */

static const struct deadline_params std_params = {
	.interval_s = 4 * H,
	.grace_s = 15 * M,
	.repeat_s = 2 * H,
	.active = { .start_min = 7 * 60, .end_min = 19 * 60 },
};

static struct deadline *engine_one(const struct deadline_params *p, int64_t base, int64_t last)
{
	struct deadline *d = deadline_new();

	assert_non_null(d);
	assert_int_equal(deadline_set(d, 0, p, base, last, 0), 0);
	return d;
}

static void test_engine_fires_and_repeats(void **state)
{
	(void)state;
	set_tz("Asia/Shanghai");
	int64_t base = lt(2026, 11, 24, 8, 0);
	struct deadline *d = engine_one(&std_params, base, base);
	struct deadline_fire f;

	assert_int_equal(deadline_count(d), 1);
	assert_time(deadline_due(d, 0), lt(2026, 11, 24, 12, 0));
	assert_time(deadline_next_time(d), lt(2026, 11, 24, 12, 15));
	assert_false(deadline_pop(d, lt(2026, 11, 24, 12, 15) - 1, &f));
	assert_int_equal(deadline_state(d, 0, lt(2026, 11, 24, 9, 0)), DEADLINE_OK);
	assert_int_equal(deadline_state(d, 0, lt(2026, 11, 24, 11, 31)), DEADLINE_DUE_SOON);
	assert_int_equal(deadline_state(d, 0, lt(2026, 11, 24, 12, 5)), DEADLINE_DUE_SOON);
	assert_int_equal(deadline_state(d, 0, lt(2026, 11, 24, 12, 15)), DEADLINE_OVERDUE);

	assert_true(deadline_pop(d, lt(2026, 11, 24, 12, 15), &f));
	assert_int_equal(f.cell, 0);
	assert_int_equal(f.repeat, 0);
	assert_time(f.base, base);
	assert_time(f.last_patrol, base);
	assert_time(f.due, lt(2026, 11, 24, 12, 0));
	assert_time(f.overdue_at, lt(2026, 11, 24, 12, 15));
	assert_true(deadline_alerted(d, 0));
	assert_false(deadline_pop(d, lt(2026, 11, 24, 12, 15), &f));

	/* Repeats every 2 h of active time, sleeping through the night. */
	int64_t want[] = { lt(2026, 11, 24, 14, 15), lt(2026, 11, 24, 16, 15),
		           lt(2026, 11, 24, 18, 15), lt(2026, 11, 25, 8, 15),
		           lt(2026, 11, 25, 10, 15) };
	for (int i = 0; i < 5; i++) {
		assert_time(deadline_next_time(d), want[i]);
		assert_true(deadline_pop(d, want[i], &f));
		assert_int_equal(f.repeat, i + 1);
		assert_time(f.due, lt(2026, 11, 24, 12, 0));
	}
	/* Overdue is overdue at night too. */
	assert_int_equal(deadline_state(d, 0, lt(2026, 11, 24, 23, 0)), DEADLINE_OVERDUE);

	/* A patrol recovers it and reports what had passed. */
	struct deadline_patrol_result r;
	int64_t now = lt(2026, 11, 25, 11, 0);

	deadline_patrol(d, 0, now - 60, now, &r);
	assert_true(r.recovered);
	assert_true(r.moved);
	assert_int_equal(r.repeats, 6);
	assert_time(r.prev_last_patrol, base);
	assert_time(r.prev_due, lt(2026, 11, 24, 12, 0));
	assert_false(deadline_alerted(d, 0));
	assert_time(deadline_last_patrol(d, 0), now - 60);
	assert_time(deadline_due(d, 0), now - 60 + 4 * H);
	assert_time(deadline_next_time(d), now - 60 + 4 * H + 15 * M);
	deadline_patrol(d, 0, now, now, &r);
	assert_false(r.recovered);
	deadline_free(d);

	/* repeat 0: one alert, then silence until recovery. */
	struct deadline_params once = std_params;

	once.repeat_s = 0;
	d = engine_one(&once, base, base);
	assert_true(deadline_pop(d, lt(2026, 11, 24, 12, 15), &f));
	assert_time(deadline_next_time(d), DEADLINE_NEVER);
	assert_false(deadline_pop(d, lt(2026, 11, 30, 12, 0), &f));
	deadline_patrol(d, 0, lt(2026, 11, 30, 12, 0), lt(2026, 11, 30, 12, 0), &r);
	assert_true(r.recovered);
	assert_int_equal(r.repeats, 1);
	assert_time(deadline_next_time(d), lt(2026, 11, 30, 16, 15));
	deadline_free(d);
}

/* The table in docs/deadlines.md, step by step. */
static void test_engine_spec_example(void **state)
{
	(void)state;
	set_tz("Asia/Shanghai");
	int64_t last = lt(2026, 11, 24, 17, 0);
	struct deadline *d = engine_one(&std_params, last, last);
	struct deadline_fire f;
	int64_t want[] = { lt(2026, 11, 25, 9, 15),  lt(2026, 11, 25, 11, 15),
		           lt(2026, 11, 25, 13, 15), lt(2026, 11, 25, 15, 15),
		           lt(2026, 11, 25, 17, 15), lt(2026, 11, 26, 7, 15) };

	assert_time(deadline_due(d, 0), lt(2026, 11, 25, 9, 0));
	for (int i = 0; i < 6; i++) {
		assert_time(deadline_next_time(d), want[i]);
		assert_false(deadline_pop(d, want[i] - 1, &f));
		assert_true(deadline_pop(d, want[i], &f));
		assert_int_equal(f.repeat, i);
		assert_time(f.due, lt(2026, 11, 25, 9, 0));
		assert_time(f.overdue_at, want[0]);
	}
	deadline_free(d);
}

static void test_engine_states(void **state)
{
	(void)state;
	set_tz("Asia/Shanghai");
	int64_t base = lt(2026, 11, 24, 16, 0);
	struct deadline *d = engine_one(&std_params, base, 0);

	/* Due 08:00 next day. Inactive at night takes precedence over
	 * "due soon"; from 07:30 it is due soon, from 08:15 overdue. */
	assert_time(deadline_due(d, 0), lt(2026, 11, 25, 8, 0));
	assert_time(deadline_last_patrol(d, 0), 0);
	assert_int_equal(deadline_state(d, 0, lt(2026, 11, 24, 18, 0)), DEADLINE_OK);
	assert_int_equal(deadline_state(d, 0, lt(2026, 11, 24, 20, 0)), DEADLINE_INACTIVE);
	assert_int_equal(deadline_state(d, 0, lt(2026, 11, 25, 7, 0)), DEADLINE_OK);
	assert_int_equal(deadline_state(d, 0, lt(2026, 11, 25, 7, 30)), DEADLINE_DUE_SOON);
	assert_int_equal(deadline_state(d, 0, lt(2026, 11, 25, 8, 14)), DEADLINE_DUE_SOON);
	assert_int_equal(deadline_state(d, 0, lt(2026, 11, 25, 8, 15)), DEADLINE_OVERDUE);
	deadline_pause(d, 0, DEADLINE_NEVER, lt(2026, 11, 25, 8, 20));
	assert_int_equal(deadline_state(d, 0, lt(2026, 11, 25, 8, 20)), DEADLINE_PAUSED);
	/* Unknown cells are harmless. */
	assert_int_equal(deadline_state(d, 5, base), DEADLINE_OK);
	assert_time(deadline_due(d, 5), DEADLINE_NEVER);
	assert_false(deadline_alerted(d, 5));
	deadline_free(d);
}

static void test_engine_late_reports(void **state)
{
	(void)state;
	set_tz("Asia/Shanghai");
	int64_t base = lt(2026, 11, 24, 8, 0);
	struct deadline *d = engine_one(&std_params, base, base);
	struct deadline_patrol_result r;
	struct deadline_fire f;

	/* An older report does not move the last patrol back. */
	deadline_patrol(d, 0, lt(2026, 11, 24, 10, 0), lt(2026, 11, 24, 10, 5), &r);
	assert_true(r.moved);
	assert_false(r.recovered);
	deadline_patrol(d, 0, lt(2026, 11, 24, 9, 0), lt(2026, 11, 24, 10, 6), &r);
	assert_false(r.moved);
	assert_time(r.prev_last_patrol, lt(2026, 11, 24, 10, 0));
	assert_time(deadline_last_patrol(d, 0), lt(2026, 11, 24, 10, 0));
	assert_time(deadline_due(d, 0), lt(2026, 11, 24, 14, 0));
	assert_time(deadline_next_time(d), lt(2026, 11, 24, 14, 15));

	/* Overdue and alerted; a late report that still leaves it overdue
	 * moves the last patrol but is not a recovery, and the repeat
	 * schedule stays. */
	assert_true(deadline_pop(d, lt(2026, 11, 24, 14, 15), &f));
	deadline_patrol(d, 0, lt(2026, 11, 24, 10, 30), lt(2026, 11, 24, 15, 0), &r);
	assert_true(r.moved);
	assert_false(r.recovered);
	assert_true(deadline_alerted(d, 0));
	assert_time(deadline_due(d, 0), lt(2026, 11, 24, 14, 30));
	assert_time(deadline_next_time(d), lt(2026, 11, 24, 16, 15));
	assert_int_equal(deadline_state(d, 0, lt(2026, 11, 24, 15, 0)), DEADLINE_OVERDUE);

	/* A late report recent enough does recover it. */
	deadline_patrol(d, 0, lt(2026, 11, 24, 14, 0), lt(2026, 11, 24, 15, 30), &r);
	assert_true(r.recovered);
	assert_int_equal(r.repeats, 1);
	assert_time(r.prev_due, lt(2026, 11, 24, 14, 30));
	assert_false(deadline_alerted(d, 0));
	assert_time(deadline_next_time(d), lt(2026, 11, 24, 18, 15));
	deadline_free(d);
}

/* SPEC "Deadline": once a cell has a patrol its base is that patrol, even
 * one from before known_since; known_since only for a cell never
 * patrolled; an ended pause moves the base forward only. */
static void test_base_rule(void **state)
{
	(void)state;
	const int64_t ks = 1000000, t = 100;

	assert_time(deadline_base(ks, 0, 0), ks);
	assert_time(deadline_base(ks, ks - 3 * DAY, 0), ks - 3 * DAY);
	assert_time(deadline_base(ks, ks + t, 0), ks + t);
	assert_time(deadline_base(ks, ks - t, ks - 2 * t), ks - t);
	assert_time(deadline_base(ks, ks - 2 * t, ks - t), ks - t);
	assert_time(deadline_base(ks, 0, ks + t), ks + t);
	assert_time(deadline_base(ks, 0, ks - t), ks);
	assert_time(deadline_base(0, 0, 0), 0);
	assert_time(deadline_base(0, t, 0), t);
}

static void test_engine_late_first_patrol(void **state)
{
	(void)state;
	set_tz("Asia/Shanghai");
	const struct deadline_params round = { .interval_s = 4 * H,
		                               .grace_s = 15 * M,
		                               .repeat_s = 2 * H,
		                               .active = { .always = true } };
	int64_t known = lt(2026, 11, 24, 12, 0), old = known - 3 * DAY;
	struct deadline *d = engine_one(&round, known, 0);
	struct deadline_patrol_result r;
	struct deadline_fire f;

	/* Added today; the only patrol, three days old, arrives: the cell
	 * has been unpatrolled for three days and is overdue at once. */
	assert_time(deadline_next_time(d), known + 4 * H + 15 * M);
	deadline_patrol(d, 0, old, known + M, &r);
	assert_true(r.moved);
	assert_false(r.recovered);
	assert_time(deadline_last_patrol(d, 0), old);
	assert_time(deadline_due(d, 0), old + 4 * H);
	assert_time(deadline_next_time(d), old + 4 * H + 15 * M);
	assert_int_equal(deadline_state(d, 0, known + M), DEADLINE_OVERDUE);
	assert_true(deadline_pop(d, known + M, &f));
	assert_time(f.base, old);
	assert_time(f.last_patrol, old);
	assert_time(f.due, old + 4 * H);
	deadline_free(d);

	/* The same facts given at once (a restart, `status`) agree. */
	d = engine_one(&round, known, old);
	assert_time(deadline_next_time(d), old + 4 * H + 15 * M);
	assert_int_equal(deadline_state(d, 0, known + M), DEADLINE_OVERDUE);
	deadline_free(d);

	/* A pause that ended after known_since is a later base: a first
	 * patrol from before its end does not move the base back... */
	d = deadline_new();
	assert_non_null(d);
	assert_int_equal(deadline_set(d, 0, &round, known, 0, known + H), 0);
	assert_time(deadline_due(d, 0), known + 5 * H);
	deadline_patrol(d, 0, old, known + 2 * H, &r);
	assert_time(deadline_due(d, 0), known + 5 * H);
	/* ...and one from after it does move it forward. */
	deadline_patrol(d, 0, known + 90 * M, known + 2 * H, &r);
	assert_time(deadline_due(d, 0), known + 90 * M + 4 * H);
	deadline_free(d);

	/* Paused live, the pause ends, then the late first patrol. */
	d = engine_one(&round, known, 0);
	deadline_pause(d, 0, known + H, known);
	assert_false(deadline_pop(d, known + H, &f));
	assert_time(deadline_due(d, 0), known + 5 * H);
	deadline_patrol(d, 0, old, known + 2 * H, &r);
	assert_time(deadline_due(d, 0), known + 5 * H);
	deadline_free(d);
}

static void test_engine_pause(void **state)
{
	(void)state;
	set_tz("Asia/Shanghai");
	int64_t base = lt(2026, 11, 24, 8, 0);
	struct deadline *d = engine_one(&std_params, base, base);
	struct deadline_fire f;
	struct deadline_patrol_result r;
	int64_t until = lt(2026, 11, 25, 12, 0);

	/* Nothing fires while paused, but the timer wakes for the end. */
	deadline_pause(d, 0, until, lt(2026, 11, 24, 9, 0));
	assert_true(deadline_paused(d, 0, lt(2026, 11, 24, 9, 0)));
	assert_time(deadline_next_time(d), until);
	assert_false(deadline_pop(d, until - 1, &f));
	assert_false(deadline_alerted(d, 0));
	/* Re-pausing with the same end (the daemon syncs pauses) is a no-op. */
	deadline_pause(d, 0, until, lt(2026, 11, 24, 10, 0));
	assert_time(deadline_next_time(d), until);
	/* The end passes: the count restarts from the end, not from "now". */
	assert_false(deadline_pop(d, until + 10 * M, &f));
	assert_false(deadline_paused(d, 0, until + 10 * M));
	assert_time(deadline_due(d, 0), lt(2026, 11, 25, 16, 0));
	assert_time(deadline_next_time(d), lt(2026, 11, 25, 16, 15));
	assert_true(deadline_pop(d, lt(2026, 11, 25, 16, 15), &f));
	assert_int_equal(f.repeat, 0);
	assert_time(f.base, until);
	assert_time(f.last_patrol, base);

	/* Paused while alerted, resumed by hand: the alert stays pending so
	 * the next patrol says recovered, repeats restart from the new
	 * overdue time. */
	deadline_pause(d, 0, DEADLINE_NEVER, lt(2026, 11, 25, 17, 0));
	assert_time(deadline_next_time(d), DEADLINE_NEVER);
	assert_true(deadline_paused(d, 0, lt(2026, 11, 30, 0, 0)));
	assert_false(deadline_pop(d, lt(2026, 11, 30, 0, 0), &f));
	deadline_resume(d, 0, lt(2026, 11, 30, 9, 0));
	assert_false(deadline_paused(d, 0, lt(2026, 11, 30, 9, 0)));
	assert_true(deadline_alerted(d, 0));
	assert_time(deadline_next_time(d), lt(2026, 11, 30, 13, 15));
	assert_int_equal(deadline_state(d, 0, lt(2026, 11, 30, 9, 0)), DEADLINE_OK);
	assert_true(deadline_pop(d, lt(2026, 11, 30, 13, 15), &f));
	assert_int_equal(f.repeat, 1);
	assert_time(deadline_next_time(d), lt(2026, 11, 30, 15, 15));

	deadline_pause(d, 0, lt(2026, 12, 1, 0, 0), lt(2026, 11, 30, 14, 0));
	deadline_patrol(d, 0, lt(2026, 11, 30, 14, 0), lt(2026, 11, 30, 14, 0), &r);
	assert_true(r.recovered);
	assert_int_equal(r.repeats, 2);
	/* Still paused after the patrol. */
	assert_time(deadline_next_time(d), lt(2026, 12, 1, 0, 0));
	/* A pause whose end has already passed ends a running one. */
	deadline_pause(d, 0, lt(2026, 11, 30, 15, 0), lt(2026, 11, 30, 15, 0));
	assert_false(deadline_paused(d, 0, lt(2026, 11, 30, 15, 0)));
	assert_time(deadline_due(d, 0), lt(2026, 11, 30, 19, 0));
	assert_time(deadline_next_time(d), lt(2026, 12, 1, 7, 15));
	/* ...and is ignored otherwise; resuming an unpaused cell too. */
	deadline_pause(d, 0, lt(2026, 11, 30, 15, 0), lt(2026, 11, 30, 16, 0));
	deadline_resume(d, 0, lt(2026, 11, 30, 16, 0));
	assert_time(deadline_due(d, 0), lt(2026, 11, 30, 19, 0));
	deadline_free(d);
}

static void test_engine_restore(void **state)
{
	(void)state;
	set_tz("Asia/Shanghai");
	int64_t base = lt(2026, 11, 24, 8, 0);
	struct deadline *d = engine_one(&std_params, base, base);
	struct deadline_fire f;
	struct deadline_patrol_result r;

	/* Restarted at 13:00 after the first alert went out at 12:15: no
	 * duplicate, the first repeat at 14:15 carries number 1. */
	deadline_restore_alerted(d, 0, lt(2026, 11, 24, 12, 15), 0);
	assert_true(deadline_alerted(d, 0));
	assert_time(deadline_next_time(d), lt(2026, 11, 24, 14, 15));
	assert_false(deadline_pop(d, lt(2026, 11, 24, 13, 0), &f));
	assert_true(deadline_pop(d, lt(2026, 11, 24, 14, 15), &f));
	assert_int_equal(f.repeat, 1);
	deadline_patrol(d, 0, lt(2026, 11, 24, 15, 0), lt(2026, 11, 24, 15, 0), &r);
	assert_true(r.recovered);
	assert_int_equal(r.repeats, 2);

	/* Restored with a count: the numbering continues. */
	assert_int_equal(deadline_set(d, 0, &std_params, base, base, 0), 0);
	deadline_restore_alerted(d, 0, lt(2026, 11, 24, 18, 15), 3);
	assert_time(deadline_next_time(d), lt(2026, 11, 25, 8, 15));
	assert_true(deadline_pop(d, lt(2026, 11, 25, 8, 15), &f));
	assert_int_equal(f.repeat, 4);
	deadline_free(d);
}

/* A claim at 12:30 on the 12:15 alert holds reminders to 14:30 (wall
 * time), not 14:15; the reminder then continues the numbering. One ending
 * after hours fires when the window opens. */
static void test_engine_hold(void **state)
{
	(void)state;
	set_tz("Asia/Shanghai");
	int64_t base = lt(2026, 11, 24, 8, 0);
	struct deadline *d = engine_one(&std_params, base, base);
	struct deadline_fire f;
	struct deadline_patrol_result r;

	assert_false(deadline_hold(d, 0, lt(2026, 11, 24, 9, 0))); /* not alerted */
	assert_true(deadline_pop(d, lt(2026, 11, 24, 12, 15), &f));
	assert_int_equal(f.repeat, 0);
	assert_true(deadline_hold(d, 0, lt(2026, 11, 24, 14, 30)));
	assert_false(deadline_pop(d, lt(2026, 11, 24, 14, 15), &f));
	assert_true(deadline_pop(d, lt(2026, 11, 24, 14, 30), &f));
	assert_int_equal(f.repeat, 1);
	assert_time(deadline_next_time(d), lt(2026, 11, 24, 16, 30));

	assert_true(deadline_hold(d, 0, lt(2026, 11, 24, 20, 0)));
	assert_time(deadline_next_time(d), lt(2026, 11, 25, 7, 0));
	/* After a pause ended at 15:00 the cell is overdue again at 19:00
	 * active time (4 h 15 m: 15:00-19:00 and 07:00-07:15); a claim that
	 * ran out before does not bring a reminder forward. */
	deadline_pause(d, 0, DEADLINE_NEVER, lt(2026, 11, 24, 14, 40));
	deadline_resume(d, 0, lt(2026, 11, 24, 15, 0));
	assert_true(deadline_hold(d, 0, lt(2026, 11, 24, 16, 0)));
	assert_time(deadline_next_time(d), lt(2026, 11, 25, 7, 15));
	deadline_patrol(d, 0, lt(2026, 11, 24, 21, 0), lt(2026, 11, 24, 21, 0), &r);
	assert_true(r.recovered);
	assert_false(deadline_hold(d, 0, lt(2026, 11, 25, 9, 0)));
	deadline_free(d);
}

/* Pause ends while a claim holds: the reminder that comes due at the
 * pause's end is looked at, held, and not counted, so the one that goes
 * out when the claim runs out is the next number, not one further. */
static void test_engine_hold_after_pause(void **state)
{
	(void)state;
	set_tz("Asia/Shanghai");
	int64_t base = lt(2026, 11, 24, 8, 0);
	struct deadline *d = engine_one(&std_params, base, base);
	struct deadline_fire f;

	assert_true(deadline_pop(d, lt(2026, 11, 24, 12, 15), &f));
	assert_int_equal(f.repeat, 0);
	/* Claimed until 18:00; paused 12:30-13:00, so overdue again 17:15. */
	assert_true(deadline_hold(d, 0, lt(2026, 11, 24, 18, 0)));
	deadline_pause(d, 0, lt(2026, 11, 24, 13, 0), lt(2026, 11, 24, 12, 30));
	assert_false(deadline_peek(d, lt(2026, 11, 24, 17, 15) - 1, &f));
	assert_true(deadline_peek(d, lt(2026, 11, 24, 17, 15), &f));
	assert_int_equal(f.repeat, 1);
	/* Peeking again sees the same thing: nothing was used up. */
	assert_true(deadline_peek(d, lt(2026, 11, 24, 17, 15), &f));
	assert_int_equal(f.repeat, 1);
	assert_true(deadline_hold(d, 0, lt(2026, 11, 24, 18, 0)));
	assert_false(deadline_peek(d, lt(2026, 11, 24, 17, 59), &f));
	assert_true(deadline_pop(d, lt(2026, 11, 24, 18, 0), &f));
	assert_int_equal(f.repeat, 1);
	assert_true(deadline_pop(d, lt(2026, 11, 25, 8, 0), &f));
	assert_int_equal(f.repeat, 2);
	deadline_free(d);
}

static void test_engine_truncate(void **state)
{
	(void)state;
	set_tz("Asia/Shanghai");
	struct deadline *d = deadline_new();
	struct deadline_fire f;
	int64_t base = lt(2026, 11, 24, 8, 0);
	int seen[10] = { 0 };

	assert_non_null(d);
	for (uint32_t i = 0; i < 10; i++)
		assert_int_equal(deadline_set(d, i, &std_params, base + i * M, 0, 0), 0);
	assert_int_equal(deadline_count(d), 10);
	deadline_truncate(d, 5);
	assert_int_equal(deadline_count(d), 5);
	while (deadline_pop(d, lt(2026, 11, 24, 13, 0), &f)) {
		assert_true(f.cell < 5);
		seen[f.cell]++;
	}
	for (int i = 0; i < 10; i++)
		assert_int_equal(seen[i], i < 5 ? 1 : 0);
	/* Growing again leaves the gap undefined and inert. */
	assert_int_equal(deadline_set(d, 7, &std_params, base, 0, 0), 0);
	assert_int_equal(deadline_count(d), 8);
	assert_time(deadline_due(d, 6), DEADLINE_NEVER);
	deadline_patrol(d, 6, base, base, NULL);
	deadline_pause(d, 6, base + H, base);
	assert_false(deadline_paused(d, 6, base));
	assert_true(deadline_memory(d) > 8 * 48);
	deadline_truncate(d, 0);
	assert_int_equal(deadline_count(d), 0);
	assert_time(deadline_next_time(d), DEADLINE_NEVER);
	deadline_free(d);
	deadline_free(NULL);
}

/* --- randomised run against a naive model --- */

struct mcell {
	const struct deadline_params *p;
	int64_t known, pend, base, last, due, overdue, next, until;
	int alerts;
	bool paused;
};

static void m_recompute(struct mcell *c)
{
	c->due = deadline_active_add(&c->p->active, c->base, c->p->interval_s);
	c->overdue = deadline_active_add(&c->p->active, c->due, c->p->grace_s);
}

/* SPEC "Deadline", written out independently of deadline_base(). */
static bool m_rebase(struct mcell *c)
{
	int64_t b = c->last ? c->last : c->known;

	if (c->pend > b)
		b = c->pend;
	if (b == c->base)
		return false;
	c->base = b;
	m_recompute(c);
	return true;
}

static void m_resume(struct mcell *c, int64_t t)
{
	c->paused = false;
	if (t > c->pend)
		c->pend = t;
	m_rebase(c);
	c->next = c->overdue;
}

static int64_t m_key(const struct mcell *c)
{
	return c->paused ? c->until : c->next;
}

/* Ends every pause that the engine would handle before the earliest fire
 * at or before now; returns that fire's time (or DEADLINE_NEVER). */
static int64_t m_settle(struct mcell *m, size_t n, int64_t now)
{
	for (;;) {
		int64_t fire = DEADLINE_NEVER, pause = DEADLINE_NEVER;
		size_t pi = 0;

		for (size_t i = 0; i < n; i++) {
			if (!m[i].p)
				continue;
			if (m[i].paused && m[i].until < pause) {
				pause = m[i].until;
				pi = i;
			} else if (!m[i].paused && m[i].next < fire) {
				fire = m[i].next;
			}
		}
		if (pause <= now && pause <= fire) {
			m_resume(&m[pi], pause);
			continue;
		}
		return fire;
	}
}

static int64_t m_next_time(const struct mcell *m, size_t n)
{
	int64_t t = DEADLINE_NEVER;

	for (size_t i = 0; i < n; i++)
		if (m[i].p && m_key(&m[i]) < t)
			t = m_key(&m[i]);
	return t;
}

static void test_engine_random_vs_model(void **state)
{
	(void)state;
	enum {
		NCELLS = 2000,
		NOPS = 50000
	};
	/* Berlin across spring-forward, so DST days are in the mix. */
	set_tz("Europe/Berlin");
	const struct deadline_params params[] = {
		{ .interval_s = 4 * H,
		  .grace_s = 15 * M,
		  .repeat_s = 2 * H,
		  .active = { .start_min = 420, .end_min = 1140 } },
		{ .interval_s = 30 * M,
		  .grace_s = 0,
		  .repeat_s = 4 * H,
		  .active = { .always = true } },
		{ .interval_s = 2 * H,
		  .grace_s = 5 * M,
		  .repeat_s = 0,
		  .active = { .start_min = 1200, .end_min = 360 } },
		{ .interval_s = 0, .grace_s = 0, .repeat_s = 3 * H, .active = { .always = true } },
		{ .interval_s = 26 * H,
		  .grace_s = 1 * H,
		  .repeat_s = 3 * H,
		  .active = { .start_min = 60, .end_min = 300 } },
	};
	const size_t np = sizeof(params) / sizeof(params[0]);
	struct mcell *m = calloc(NCELLS, sizeof(*m));
	struct deadline *d = deadline_new();
	int64_t now = lt(2026, 3, 26, 6, 0);
	long fires = 0, recoveries = 0, pause_ends = 0;

	assert_non_null(m);
	assert_non_null(d);
	for (uint32_t i = 0; i < NCELLS; i++) {
		struct mcell *c = &m[i];

		c->p = &params[rnd((int64_t)np)];
		c->base = c->known = now - rnd(2 * DAY);
		c->last = rnd(2) ? c->base : 0;
		m_recompute(c);
		c->next = c->overdue;
		assert_int_equal(deadline_set(d, i, c->p, c->known, c->last, 0), 0);
	}

	for (int op = 0; op < NOPS; op++) {
		uint32_t ci = (uint32_t)rnd(NCELLS);
		struct mcell *c = &m[ci];
		int kind = (int)rnd(100);

		if (kind < 30) {
			now += rnd(60);
			/* Pop everything due, checking each against the model. */
			for (;;) {
				struct deadline_fire f;
				int64_t want = m_settle(m, NCELLS, now);
				bool got = deadline_pop(d, now, &f);

				if (want > now) {
					assert_false(got);
					break;
				}
				assert_true(got);
				struct mcell *x = &m[f.cell];

				assert_false(x->paused);
				assert_time(x->next, want);
				assert_time(f.base, x->base);
				assert_time(f.last_patrol, x->last);
				assert_time(f.due, x->due);
				assert_time(f.overdue_at, x->overdue);
				assert_int_equal(f.repeat, x->alerts);
				x->alerts++;
				x->next = x->p->repeat_s > 0
				                  ? deadline_active_add(&x->p->active, now,
				                                        x->p->repeat_s)
				                  : DEADLINE_NEVER;
				fires++;
			}
		} else if (kind < 70) {
			int64_t ts = now - rnd(6 * H);
			struct deadline_patrol_result r;

			deadline_patrol(d, ci, ts, now, &r);
			assert_int_equal(r.moved, ts > c->last);
			assert_time(r.prev_last_patrol, c->last);
			int64_t prev_due = c->due;
			assert_int_equal(r.repeats, c->alerts);
			if (ts > c->last) {
				c->last = ts;
				if (m_rebase(c) && !c->paused && !c->alerts)
					c->next = c->overdue;
			}
			bool rec = c->alerts && c->overdue > now;
			assert_int_equal(r.recovered, rec);
			if (rec)
				assert_time(r.prev_due, prev_due);
			if (rec) {
				c->alerts = 0;
				if (!c->paused)
					c->next = c->overdue;
				recoveries++;
			}
		} else if (kind < 78) {
			int64_t until = rnd(5) == 0 ? DEADLINE_NEVER : now - H + rnd(2 * DAY);

			deadline_pause(d, ci, until, now);
			if (until <= now) {
				if (c->paused) {
					m_resume(c, until);
					pause_ends++;
				}
			} else {
				c->paused = true;
				c->until = until;
			}
		} else if (kind < 84) {
			deadline_resume(d, ci, now);
			if (c->paused) {
				m_resume(c, now);
				pause_ends++;
			}
		} else if (kind < 88) {
			/* Re-set (config reload): nothing of the old state stays. */
			const struct deadline_params *p = &params[rnd((int64_t)np)];
			int64_t b = now - rnd(DAY);
			int64_t last = rnd(2) ? b : 0;

			assert_int_equal(deadline_set(d, ci, p, b, last, 0), 0);
			*c = (struct mcell){ .p = p, .known = b, .base = b, .last = last };
			m_recompute(c);
			c->next = c->overdue;
		} else if (kind < 90) {
			int64_t at = now - rnd(3 * H);
			int rep = (int)rnd(4);

			deadline_restore_alerted(d, ci, at, rep);
			c->alerts = rep + 1;
			if (!c->paused) {
				c->next = DEADLINE_NEVER;
				if (c->p->repeat_s > 0) {
					c->next = deadline_active_add(&c->p->active, at,
					                              c->p->repeat_s);
					if (c->next < c->overdue)
						c->next = c->overdue;
				}
			}
		} else {
			/* Read-only checks of one cell. */
			assert_time(deadline_due(d, ci), c->due);
			assert_time(deadline_last_patrol(d, ci), c->last);
			assert_int_equal(deadline_alerted(d, ci), c->alerts > 0);
			assert_int_equal(deadline_paused(d, ci, now), c->paused && c->until > now);
		}
		assert_time(deadline_next_time(d), m_next_time(m, NCELLS));
	}
	/* The run must have exercised every path. */
	printf("# model run: %ld fires, %ld recoveries, %ld manual pause ends\n", fires, recoveries,
	       pause_ends);
	assert_true(fires > 1000);
	assert_true(recoveries > 100);
	assert_true(pause_ends > 100);
	assert_int_equal(deadline_count(d), NCELLS);
	deadline_free(d);
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_always),
		cmocka_unit_test(test_same_day_window),
		cmocka_unit_test(test_crossing_window),
		cmocka_unit_test(test_end_24),
		cmocka_unit_test(test_roundtrip_and_brute),
		cmocka_unit_test(test_dst_berlin),
		cmocka_unit_test(test_dst_new_york),
		cmocka_unit_test(test_next_daily),
		cmocka_unit_test(test_engine_fires_and_repeats),
		cmocka_unit_test(test_engine_spec_example),
		cmocka_unit_test(test_engine_states),
		cmocka_unit_test(test_engine_late_reports),
		cmocka_unit_test(test_base_rule),
		cmocka_unit_test(test_engine_late_first_patrol),
		cmocka_unit_test(test_engine_pause),
		cmocka_unit_test(test_engine_restore),
		cmocka_unit_test(test_engine_hold),
		cmocka_unit_test(test_engine_hold_after_pause),
		cmocka_unit_test(test_engine_truncate),
		cmocka_unit_test(test_engine_random_vs_model),
	};

	return cmocka_run_group_tests_name("deadline", tests, NULL, NULL);
}
