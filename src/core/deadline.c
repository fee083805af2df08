/*
 * deadline: active-time arithmetic in the local zone, and the engine that
 * knows when each cell is due and which cell needs looking at next.
 *
 * A cell's clock only runs inside its active window, so every deadline is
 * "this much active time after that instant". The arithmetic walks window
 * occurrences day by day; an occurrence is [open, close) where open is the
 * window start on local day k and close the window end on day k (or k+1
 * when the window crosses midnight). Local wall times become instants by
 * the rule the documentation promises: a wall time that falls in a DST gap
 * is taken at the first instant after the gap, and one that occurs twice
 * is taken at its first occurrence. mktime() with tm_isdst = -1 leaves both
 * cases to the C library, and glibc gets both "wrong" for us (Berlin: 02:30
 * in the spring gap becomes 03:30, not 03:00; the autumn 02:30 is the
 * second one). So wall times are converted from UTC offsets read with
 * localtime_r(), cached per local day: the engine converts thousands of
 * wall times per second and localtime_r() takes a lock. The engine's cache
 * assumes TZ does not change during its life (the daemon builds a new
 * engine when the configuration, and so the zone, is reloaded).
 *
 * The engine keeps one 48-byte record per cell in a dense array indexed by
 * cell number (base, last patrol and the end of the last pause are what
 * deadline_base() needs to move the base; the due time is derived from the
 * base when asked, which is rare, instead of being stored) and a binary
 * min-heap of (next fire time, cell) in two
 * parallel arrays (12 bytes per cell); each record knows its heap slot, so
 * rescheduling one cell is O(log n). A paused cell's heap key is its pause
 * end, so the caller's timer wakes up for it and deadline_pop() can restart
 * the count. Pure: no I/O, no logging; "now" always comes from the caller.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deadline.h"

#define DAY_S 86400
/* Instants outside years 0001..9999 cannot be shown in RFC 3339 and may not
 * fit in struct tm; arithmetic that would leave this range is an overflow. */
#define T_MIN INT64_C(-62135596800)
#define T_MAX INT64_C(253402300799)
/* The most a DST rule has ever lengthened a day; used only to bound how far
 * an addition can reach before walking it. */
#define DST_SLACK_S 7200
#define DUE_SOON_S 1800

/* --- UTC offsets per local day --- */

/* What the zone does around local day n: the offset before and after at
 * most one transition. Valid for instants in (start of day n-1, end of day
 * n+1) in UTC, wide enough for any wall time of day n whatever the offset
 * (offsets stay within +-14 h). */
struct tzday {
	int64_t n;      /* local day number since 1970-01-01; INT64_MIN: empty */
	int64_t trans;  /* first instant at the new offset; INT64_MAX: none */
	int32_t before; /* UTC offset (seconds east) before trans */
	int32_t after;
};

struct tzcache {
	struct tzday *day;
	uint32_t mask; /* entries - 1, a power of two minus one */
	int32_t hint;  /* an offset recently in force, to guess the day */
};

#define ENGINE_TZ_DAYS 64
#define LOCAL_TZ_DAYS 4

static void tzcache_init(struct tzcache *c, struct tzday *days, uint32_t n)
{
	c->day = days;
	c->mask = n - 1;
	c->hint = 0;
	for (uint32_t i = 0; i < n; i++)
		days[i].n = INT64_MIN;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int32_t gmtoff(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	/* Unreachable inside [T_MIN, T_MAX] with a 64-bit time_t; UTC is the
	 * least surprising answer if it ever happens. */
	if (!localtime_r(&tt, &tm))
		return 0;
	return (int32_t)tm.tm_gmtoff;
}

static void tzday_fill(struct tzday *e, int64_t n)
{
	int64_t l0 = n * DAY_S;
	int64_t lo = l0 - DAY_S, hi = l0 + 2 * DAY_S;
	int32_t oa = gmtoff(lo), ob = gmtoff(hi);

	e->n = n;
	e->before = oa;
	if (oa == ob) {
		/* Two transitions within three days (a DST pair) would cancel
		 * out at the ends; look at the middle as well. */
		int64_t mid = l0 + DAY_S / 2 - oa;
		int32_t om = gmtoff(mid);

		if (om == oa) {
			e->trans = INT64_MAX;
			e->after = oa;
			return;
		}
		hi = mid;
	}
	/* Binary search for the first instant at a different offset:
	 * localtime_r has no "next transition" query. 18 steps, and only for
	 * the handful of days around a transition. */
	while (hi - lo > 1) {
		int64_t m = lo + (hi - lo) / 2;

		if (gmtoff(m) == oa)
			lo = m;
		else
			hi = m;
	}
	e->trans = hi;
	e->after = gmtoff(hi);
}

static const struct tzday *tzday_get(struct tzcache *c, int64_t n)
{
	struct tzday *e = &c->day[(uint64_t)n & c->mask];

	if (e->n != n)
		tzday_fill(e, n);
	return e;
}

static int32_t tzday_off(const struct tzday *e, int64_t t)
{
	return t < e->trans ? e->before : e->after;
}

/* The instant of naive local time l (local seconds since 1970-01-01 as if
 * the zone were UTC): the first instant whose wall time is >= l. That is
 * the wall time itself when it exists once, its first occurrence when it
 * exists twice, and the end of the gap when it does not exist. */
static int64_t local_to_utc(struct tzcache *c, int64_t l)
{
	const struct tzday *e = tzday_get(c, floor_div(l, DAY_S));
	int64_t c1 = l - e->before, c2 = l - e->after;
	bool v1, v2;

	if (e->trans == INT64_MAX)
		return c1;
	v1 = c1 < e->trans;
	v2 = c2 >= e->trans;
	if (v1 && v2)
		return c1 < c2 ? c1 : c2;
	if (v1)
		return c1;
	if (v2)
		return c2;
	return e->trans;
}

/* Local day number of instant t. */
static int64_t local_day(struct tzcache *c, int64_t t)
{
	/* Any real offset puts t inside the validity range of the guessed
	 * day's entry, whose offset then is exact. */
	const struct tzday *e = tzday_get(c, floor_div(t + c->hint, DAY_S));
	int32_t off = tzday_off(e, t);

	c->hint = off;
	return floor_div(t + off, DAY_S);
}

/* --- active windows --- */

/* A window that cannot be walked (start == end, minutes out of range) is
 * not something units_active() produces; count it as "always" rather than
 * loop or never fire. */
static bool win_always(const struct units_active *a)
{
	return a->always || a->start_min == a->end_min || a->start_min < 0 || a->start_min > 1439 ||
	       a->end_min < 0 || a->end_min > 1440;
}

static int64_t win_len_s(const struct units_active *a)
{
	int m = a->end_min - a->start_min;

	return (int64_t)(m > 0 ? m : m + 1440) * 60;
}

/* Occurrence k of the window: opens on local day k, closes on day k or,
 * for a window crossing midnight, day k+1. Empty when a DST gap swallows
 * it; never inverted, because local_to_utc() is monotonic. */
static void win_occ(struct tzcache *c, const struct units_active *a, int64_t k, int64_t *open,
                    int64_t *close)
{
	int64_t l = k * DAY_S;
	int64_t end = (int64_t)a->end_min * 60;

	if (a->end_min <= a->start_min)
		end += DAY_S;
	*open = local_to_utc(c, l + (int64_t)a->start_min * 60);
	*close = local_to_utc(c, l + end);
}

static bool is_active_c(struct tzcache *c, const struct units_active *a, int64_t t)
{
	int64_t n, open, close;

	if (win_always(a))
		return true;
	if (t < T_MIN || t > T_MAX)
		return false;
	n = local_day(c, t);
	/* Occurrence n-1 may still be open (crossing midnight); n+1 opens
	 * after day n ends. */
	for (int64_t k = n - 1; k <= n; k++) {
		win_occ(c, a, k, &open, &close);
		if (open <= t && t < close)
			return true;
	}
	return false;
}

static int64_t active_add_c(struct tzcache *c, const struct units_active *a, int64_t from,
                            int64_t dur)
{
	int64_t k, open, close;

	if (from == DEADLINE_NEVER)
		return DEADLINE_NEVER;
	if (dur <= 0)
		return from;
	if (win_always(a))
		return from > INT64_MAX - dur ? DEADLINE_NEVER : from + dur;
	if (from < T_MIN || from > T_MAX || dur > T_MAX - from)
		return DEADLINE_NEVER;
	/* Each occurrence holds at most a window plus DST slack, so this many
	 * days is a lower bound; refuse to walk towards a result that cannot
	 * be represented. */
	if (dur / (win_len_s(a) + DST_SLACK_S) > (T_MAX - from) / DAY_S)
		return DEADLINE_NEVER;

	/* Occurrences before day n-1 close before day n starts. */
	for (k = local_day(c, from) - 1;; k++) {
		win_occ(c, a, k, &open, &close);
		if (open > T_MAX)
			return DEADLINE_NEVER;
		if (close > from) {
			int64_t t = open > from ? open : from;

			if (dur <= close - t)
				return t + dur;
			dur -= close - t;
			from = close;
		}
	}
}

static int64_t active_between_c(struct tzcache *c, const struct units_active *a, int64_t from,
                                int64_t to)
{
	int64_t sum = 0, open, close;

	if (to <= from)
		return 0;
	if (win_always(a))
		return (to > 0 && from < 0 && to > INT64_MAX + from) ? INT64_MAX : to - from;
	if (from < T_MIN)
		from = T_MIN;
	if (to > T_MAX)
		to = T_MAX;
	if (to <= from)
		return 0;
	for (int64_t k = local_day(c, from) - 1;; k++) {
		win_occ(c, a, k, &open, &close);
		if (open >= to)
			break;
		if (open < from)
			open = from;
		if (close > to)
			close = to;
		if (close > open)
			sum += close - open;
	}
	return sum;
}

bool deadline_is_active(const struct units_active *a, int64_t t)
{
	struct tzday days[LOCAL_TZ_DAYS];
	struct tzcache c;

	tzcache_init(&c, days, LOCAL_TZ_DAYS);
	return is_active_c(&c, a, t);
}

int64_t deadline_active_add(const struct units_active *a, int64_t from, int64_t dur_s)
{
	struct tzday days[LOCAL_TZ_DAYS];
	struct tzcache c;

	tzcache_init(&c, days, LOCAL_TZ_DAYS);
	return active_add_c(&c, a, from, dur_s);
}

int64_t deadline_active_between(const struct units_active *a, int64_t from, int64_t to)
{
	struct tzday days[LOCAL_TZ_DAYS];
	struct tzcache c;

	tzcache_init(&c, days, LOCAL_TZ_DAYS);
	return active_between_c(&c, a, from, to);
}

int64_t deadline_next_daily(int min_of_day, int64_t now)
{
	struct tzday days[LOCAL_TZ_DAYS];
	struct tzcache c;
	int64_t n;

	if (min_of_day < 0)
		min_of_day = 0;
	if (min_of_day > 1439)
		min_of_day = 1439;
	if (now < T_MIN || now > T_MAX - 3 * DAY_S)
		return DEADLINE_NEVER;
	tzcache_init(&c, days, LOCAL_TZ_DAYS);
	n = local_day(&c, now);
	/* Today's may have passed; tomorrow's always lies after now, the
	 * third day is only a guard against a zone skipping a whole day. */
	for (int64_t k = n; k <= n + 2; k++) {
		int64_t t = local_to_utc(&c, k * DAY_S + (int64_t)min_of_day * 60);

		if (t > now)
			return t;
	}
	return DEADLINE_NEVER;
}

/* --- the base rule --- */

int64_t deadline_base(int64_t known_since, int64_t last_patrol, int64_t pause_end)
{
	int64_t base = last_patrol ? last_patrol : known_since;

	return pause_end > base ? pause_end : base;
}

/* --- the engine --- */

#define HPOS_NONE UINT32_MAX
#define ALERTS_MAX 0x7fffffffu

struct dcell {
	const struct deadline_params *p; /* NULL: cell not defined */
	int64_t base;                    /* deadline_base() of what follows */
	int64_t last;                    /* latest patrol, 0: none */
	int64_t pause_end;               /* end of the last pause that ended, 0: none */
	int64_t overdue;
	uint32_t hpos; /* heap slot, HPOS_NONE if absent */
	/* Overdue alerts raised since the last recovery (0: not alerted). */
	unsigned alerts : 31;
	/* While set, the heap key (if any) is the pause end; no slot means
	 * paused until resumed. */
	unsigned paused : 1;
};

/* The memory budget (<= 64 bytes per cell with its heap slot) rests on
 * this; a new field has to fit in the existing padding or pay for itself. */
_Static_assert(sizeof(struct dcell) <= 48, "struct dcell grew past 48 bytes");

struct deadline {
	struct dcell *cells;
	/* The heap in two arrays: keys are what sifting reads, so keeping
	 * them dense and apart from the cell numbers halves the cache lines
	 * touched. Both have `cap` slots: a cell is in the heap at most once. */
	int64_t *hkey;
	uint32_t *hcell;
	uint32_t n, cap, hn;
	struct tzcache tz;
	struct tzday tzdays[ENGINE_TZ_DAYS];
};

struct deadline *deadline_new(void)
{
	struct deadline *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	tzcache_init(&d->tz, d->tzdays, ENGINE_TZ_DAYS);
	return d;
}

void deadline_free(struct deadline *d)
{
	if (!d)
		return;
	free(d->cells);
	free(d->hkey);
	free(d->hcell);
	free(d);
}

static void heap_place(struct deadline *d, uint32_t i, int64_t key, uint32_t cell)
{
	d->hkey[i] = key;
	d->hcell[i] = cell;
	d->cells[cell].hpos = i;
}

static void heap_up(struct deadline *d, uint32_t i)
{
	int64_t key = d->hkey[i];
	uint32_t cell = d->hcell[i];

	while (i > 0) {
		uint32_t parent = (i - 1) / 2;

		if (d->hkey[parent] <= key)
			break;
		heap_place(d, i, d->hkey[parent], d->hcell[parent]);
		i = parent;
	}
	heap_place(d, i, key, cell);
}

static void heap_down(struct deadline *d, uint32_t i)
{
	int64_t key = d->hkey[i];
	uint32_t cell = d->hcell[i];

	for (;;) {
		uint32_t child = 2 * i + 1;

		if (child >= d->hn)
			break;
		if (child + 1 < d->hn && d->hkey[child + 1] < d->hkey[child])
			child++;
		if (key <= d->hkey[child])
			break;
		heap_place(d, i, d->hkey[child], d->hcell[child]);
		i = child;
	}
	heap_place(d, i, key, cell);
}

static void heap_remove(struct deadline *d, uint32_t cell)
{
	uint32_t i = d->cells[cell].hpos, last;

	if (i == HPOS_NONE)
		return;
	d->cells[cell].hpos = HPOS_NONE;
	last = --d->hn;
	if (i == last)
		return;
	heap_place(d, i, d->hkey[last], d->hcell[last]);
	if (i > 0 && d->hkey[i] < d->hkey[(i - 1) / 2])
		heap_up(d, i);
	else
		heap_down(d, i);
}

/* Schedule the cell's next heap event; DEADLINE_NEVER takes it out, so the
 * heap never fills up with cells that cannot fire. */
static void heap_set(struct deadline *d, uint32_t cell, int64_t key)
{
	uint32_t i = d->cells[cell].hpos;
	int64_t old;

	if (key == DEADLINE_NEVER) {
		heap_remove(d, cell);
		return;
	}
	if (i == HPOS_NONE) {
		heap_place(d, d->hn, key, cell);
		heap_up(d, d->hn++);
		return;
	}
	old = d->hkey[i];
	d->hkey[i] = key;
	if (key < old)
		heap_up(d, i);
	else if (key > old)
		heap_down(d, i);
}

static struct dcell *cell_get(const struct deadline *d, uint32_t cell)
{
	if (!d || cell >= d->n || !d->cells[cell].p)
		return NULL;
	return &d->cells[cell];
}

static int64_t due_of(struct tzcache *tz, const struct dcell *c)
{
	return active_add_c(tz, &c->p->active, c->base, c->p->interval_s);
}

static void recompute(struct deadline *d, struct dcell *c)
{
	c->overdue = active_add_c(&d->tz, &c->p->active, due_of(&d->tz, c), c->p->grace_s);
}

/* The base from the cell's facts. A never-patrolled cell's known_since is
 * its base itself (only pauses can have moved it, and only later), so it
 * is passed for known_since: once there is a patrol it is ignored. */
static bool rebase(struct deadline *d, struct dcell *c)
{
	int64_t b = deadline_base(c->base, c->last, c->pause_end);

	if (b == c->base)
		return false;
	c->base = b;
	recompute(d, c);
	return true;
}

static int grow(struct deadline *d, uint32_t need)
{
	uint32_t cap = d->cap ? d->cap : 16;
	void *np;

	if (need == UINT32_MAX)
		return -1; /* HPOS_NONE must stay out of range */
	while (cap < need)
		cap = cap > UINT32_MAX / 2 ? UINT32_MAX - 1 : cap * 2;
	/* Each array is committed as soon as it is moved, so a later failure
	 * leaves larger arrays behind but a consistent engine. */
	if (!(np = realloc(d->cells, (size_t)cap * sizeof(*d->cells))))
		return -1;
	d->cells = np;
	if (!(np = realloc(d->hkey, (size_t)cap * sizeof(*d->hkey))))
		return -1;
	d->hkey = np;
	if (!(np = realloc(d->hcell, (size_t)cap * sizeof(*d->hcell))))
		return -1;
	d->hcell = np;
	d->cap = cap;
	return 0;
}

int deadline_set(struct deadline *d, uint32_t cell, const struct deadline_params *p,
                 int64_t known_since, int64_t last_patrol, int64_t pause_end)
{
	struct dcell *c;

	if (!d || !p)
		return -1;
	if (cell >= d->cap && grow(d, cell + 1) < 0)
		return -1;
	for (; d->n <= cell; d->n++)
		d->cells[d->n] = (struct dcell){ .hpos = HPOS_NONE };
	c = &d->cells[cell];
	heap_remove(d, cell);
	*c = (struct dcell){ .p = p,
		             .base = deadline_base(known_since, last_patrol, pause_end),
		             .last = last_patrol,
		             .pause_end = pause_end,
		             .hpos = HPOS_NONE };
	recompute(d, c);
	heap_set(d, cell, c->overdue);
	return 0;
}

void deadline_restore_alerted(struct deadline *d, uint32_t cell, int64_t alerted_at, int repeat)
{
	struct dcell *c = cell_get(d, cell);
	int64_t next;

	if (!c)
		return;
	if (repeat < 0)
		repeat = 0;
	c->alerts = (unsigned)repeat >= ALERTS_MAX ? ALERTS_MAX : (unsigned)repeat + 1;
	if (c->paused)
		return; /* resuming schedules from the new overdue time */
	next = DEADLINE_NEVER;
	if (c->p->repeat_s > 0) {
		next = active_add_c(&d->tz, &c->p->active, alerted_at, c->p->repeat_s);
		/* A patrol stored after the alert but before the restart moved
		 * the deadline: nothing is overdue before the new one. */
		if (next < c->overdue)
			next = c->overdue;
	}
	heap_set(d, cell, next);
}

bool deadline_hold(struct deadline *d, uint32_t cell, int64_t until)
{
	struct dcell *c = cell_get(d, cell);

	if (!c || !c->alerts || c->paused || c->p->repeat_s <= 0)
		return false;
	/* Reminders fire inside active hours only: the first active second
	 * at or after until (one second of active time from until, less that
	 * second). */
	int64_t t = active_add_c(&d->tz, &c->p->active, until, 1);
	if (t != DEADLINE_NEVER)
		t--;
	/* Never before the cell is overdue again (a resumed pause restarted
	 * its count): the claim only holds reminders, it never makes one. */
	if (t < c->overdue)
		t = c->overdue;
	heap_set(d, cell, t);
	return true;
}

void deadline_truncate(struct deadline *d, uint32_t n)
{
	if (!d || n >= d->n)
		return;
	for (uint32_t i = n; i < d->n; i++)
		heap_remove(d, i);
	d->n = n;
}

void deadline_patrol(struct deadline *d, uint32_t cell, int64_t ts, int64_t now,
                     struct deadline_patrol_result *res)
{
	struct dcell *c = cell_get(d, cell);
	struct deadline_patrol_result r = { 0 };

	if (!c) {
		if (res)
			*res = r;
		return;
	}
	int64_t prev_base = c->base;

	r.moved = ts > c->last;
	r.prev_last_patrol = c->last;
	r.repeats = (int)c->alerts;
	if (r.moved)
		c->last = ts;
	/* Not alerted: the new overdue time is the next event (earlier, for
	 * a first patrol from before known_since). An alerted cell that is
	 * still overdue keeps its repeats. */
	if (r.moved && rebase(d, c) && !c->paused && !c->alerts)
		heap_set(d, cell, c->overdue);
	if (c->alerts && c->overdue > now) {
		r.recovered = true;
		/* Only a recovery reports it: an active-time walk that a patrol
		 * of a cell still overdue does not need. */
		r.prev_due = active_add_c(&d->tz, &c->p->active, prev_base, c->p->interval_s);
		c->alerts = 0;
		if (!c->paused)
			heap_set(d, cell, c->overdue);
	}
	if (res)
		*res = r;
}

static void resume_at(struct deadline *d, uint32_t cell, int64_t t)
{
	struct dcell *c = &d->cells[cell];

	c->paused = 0;
	if (t > c->pause_end)
		c->pause_end = t;
	rebase(d, c);
	/* Alerted or not, the next alert is at the new overdue time; the
	 * alert count stays so the next patrol still says "recovered". */
	heap_set(d, cell, c->overdue);
}

void deadline_pause(struct deadline *d, uint32_t cell, int64_t until, int64_t now)
{
	struct dcell *c = cell_get(d, cell);

	if (!c)
		return;
	if (until <= now) {
		/* A pause already over: only ends one that is running, and at
		 * its end, not when the caller got round to noticing. */
		if (c->paused)
			resume_at(d, cell, until);
		return;
	}
	c->paused = 1;
	heap_set(d, cell, until);
}

void deadline_resume(struct deadline *d, uint32_t cell, int64_t now)
{
	struct dcell *c = cell_get(d, cell);

	if (c && c->paused)
		resume_at(d, cell, now);
}

bool deadline_paused(const struct deadline *d, uint32_t cell, int64_t now)
{
	const struct dcell *c = cell_get(d, cell);

	if (!c || !c->paused)
		return false;
	return c->hpos == HPOS_NONE || d->hkey[c->hpos] > now;
}

int64_t deadline_next_time(const struct deadline *d)
{
	return d && d->hn ? d->hkey[0] : DEADLINE_NEVER;
}

bool deadline_peek(struct deadline *d, int64_t now, struct deadline_fire *out)
{
	while (d && d->hn && d->hkey[0] <= now) {
		uint32_t cell = d->hcell[0];
		struct dcell *c = &d->cells[cell];

		if (c->paused) {
			/* Counting restarts when the pause ended, not when the
			 * caller got round to noticing. */
			resume_at(d, cell, d->hkey[0]);
			continue;
		}
		if (out)
			*out = (struct deadline_fire){
				.cell = cell,
				.base = c->base,
				.last_patrol = c->last,
				.due = due_of(&d->tz, c),
				.overdue_at = c->overdue,
				.repeat = (int)c->alerts,
			};
		return true;
	}
	return false;
}

bool deadline_pop(struct deadline *d, int64_t now, struct deadline_fire *out)
{
	struct deadline_fire f;

	if (!deadline_peek(d, now, &f))
		return false;
	struct dcell *c = &d->cells[f.cell];
	int64_t next = DEADLINE_NEVER;

	if (out)
		*out = f;
	if (c->alerts < ALERTS_MAX)
		c->alerts++;
	if (c->p->repeat_s > 0)
		next = active_add_c(&d->tz, &c->p->active, now, c->p->repeat_s);
	heap_set(d, f.cell, next);
	return true;
}

enum deadline_state deadline_state(const struct deadline *d, uint32_t cell, int64_t now)
{
	const struct dcell *c = cell_get(d, cell);

	if (!c)
		return DEADLINE_OK;
	if (deadline_paused(d, cell, now))
		return DEADLINE_PAUSED;
	if (now >= c->overdue)
		return DEADLINE_OVERDUE;
	if (!deadline_is_active(&c->p->active, now))
		return DEADLINE_INACTIVE;
	int64_t due = deadline_due(d, cell);
	if (due == DEADLINE_NEVER)
		return DEADLINE_OK;
	if (now >= due - DUE_SOON_S)
		return DEADLINE_DUE_SOON;
	return DEADLINE_OK;
}

int64_t deadline_due(const struct deadline *d, uint32_t cell)
{
	const struct dcell *c = cell_get(d, cell);

	/* The engine's cache is not ours to fill from a const engine. */
	return c ? deadline_active_add(&c->p->active, c->base, c->p->interval_s) : DEADLINE_NEVER;
}

int64_t deadline_last_patrol(const struct deadline *d, uint32_t cell)
{
	const struct dcell *c = cell_get(d, cell);

	return c ? c->last : 0;
}

bool deadline_alerted(const struct deadline *d, uint32_t cell)
{
	const struct dcell *c = cell_get(d, cell);

	return c && c->alerts > 0;
}

uint32_t deadline_count(const struct deadline *d)
{
	return d ? d->n : 0;
}

size_t deadline_memory(const struct deadline *d)
{
	if (!d)
		return 0;
	return sizeof(*d) +
	       (size_t)d->cap * (sizeof(*d->cells) + sizeof(*d->hkey) + sizeof(*d->hcell));
}
