/*
 * report: one cell's figures for one local calendar day — patrol counts,
 * workers, the share of tracked active time the cell was not overdue, the
 * longest unpatrolled stretch, and a 24-slot hour chart — computed from
 * facts the CLI reads from the database (docs/report.md defines every
 * field). Pure: no I/O, no logging; local time is the process's TZ.
 *
 * The daemon's notion of "overdue" lives in deadline.c; this module replays
 * the same rules over a day instead of reimplementing them. Every instant
 * at which the daemon would move a cell's base (a patrol, the end of a
 * pause) starts a new piece of the timeline whose overdue time is
 * deadline_active_add(base, interval + grace), and every duration is a
 * deadline_active_between() over pieces that are tracked, not paused and
 * before `now`. So the report cannot disagree with the alerts about when a
 * cell was overdue, DST and windows crossing midnight included.
 *
 * The active-time calls are the cost (each walks local days through
 * localtime_r), so they are only made where they can change the answer:
 * an overdue time is not computed when the next patrol comes sooner than
 * interval + grace of wall time (active time never runs faster than the
 * clock), and a gap is not measured when its wall length cannot beat the
 * longest one found so far. What remains is a constant number of calls
 * per event and per hour slot.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deadline.h"
#include "report.h"

#define HOUR_S 3600
#define DAY_S 86400
/* Hour pieces of the longest range accepted (two days: 48 hours, each DST
 * transition adding at most one split), with room to spare. */
#define MAX_PIECES 64

struct span {
	int64_t a, b; /* [a, b) */
};

/* A stretch of the day during which the local hour does not change. On a
 * day without transitions these are the 24 hours; on DST days an hour may
 * be missing (spring) or made of two real hours (autumn). */
struct piece {
	int64_t a, b;
	int hour;
	size_t run_end; /* index past the last piece of this piece's run */
};

/* The events in time order: the caller's array when it is sorted already
 * (the CLI reads them ORDER BY ts), else a sorted index. */
struct evlist {
	const struct report_event *ev;
	const struct report_event **idx;
	size_t n;
};

static const struct report_event *ev_at(const struct evlist *l, size_t i)
{
	return l->idx ? l->idx[i] : &l->ev[i];
}

static int64_t sat_add(int64_t a, int64_t b)
{
	if (b > 0 && a > INT64_MAX - b)
		return INT64_MAX;
	return a + b;
}

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static int cmp_ev_ptr(const void *x, const void *y)
{
	int64_t a = (*(const struct report_event *const *)x)->ts;
	int64_t b = (*(const struct report_event *const *)y)->ts;

	return (a > b) - (a < b);
}

static int cmp_str_ptr(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static int cmp_type(const void *x, const void *y)
{
	return strcmp(((const struct report_type_count *)x)->type,
	              ((const struct report_type_count *)y)->type);
}

static int cmp_span(const void *x, const void *y)
{
	int64_t a = ((const struct span *)x)->a, b = ((const struct span *)y)->a;

	return (a > b) - (a < b);
}

static int evlist_init(struct evlist *l, const struct report_event *ev, size_t n)
{
	bool sorted = true;

	l->ev = ev;
	l->idx = NULL;
	l->n = n;
	for (size_t i = 1; i < n && sorted; i++)
		sorted = ev[i - 1].ts <= ev[i].ts;
	if (sorted)
		return 0;
	/* Sorting a copy keeps the caller's array (and the pointers we hand
	 * back into it) untouched. */
	l->idx = malloc(n * sizeof(*l->idx));
	if (!l->idx)
		return -1;
	for (size_t i = 0; i < n; i++)
		l->idx[i] = &ev[i];
	qsort(l->idx, n, sizeof(*l->idx), cmp_ev_ptr);
	return 0;
}

static int32_t gmtoff_at(int64_t t, int *hour, int *sec_of_hour)
{
	time_t tt = (time_t)t;
	struct tm tm;

	/* Only outside any representable year; UTC hour 0 then is as good as
	 * any answer for a chart. */
	if (!localtime_r(&tt, &tm)) {
		if (hour)
			*hour = 0;
		if (sec_of_hour)
			*sec_of_hour = 0;
		return 0;
	}
	if (hour)
		*hour = tm.tm_hour;
	if (sec_of_hour)
		*sec_of_hour = tm.tm_min * 60 + (tm.tm_sec > 59 ? 59 : tm.tm_sec);
	return (int32_t)tm.tm_gmtoff;
}

/* Cut [s, e) into stretches of constant local hour. The usual day (24 h,
 * starting at 00:00, one offset) costs three localtime_r calls; otherwise
 * walk hour by hour and find a transition by bisection, as deadline.c
 * does, because localtime_r cannot tell where the next one is. */
static size_t hour_pieces(int64_t s, int64_t e, struct piece *p)
{
	int h0, sec0;
	int32_t off = gmtoff_at(s, &h0, &sec0);
	size_t n = 0;

	if (e - s == DAY_S && h0 == 0 && sec0 == 0 && gmtoff_at(e - 1, NULL, NULL) == off &&
	    gmtoff_at(s + DAY_S / 2, NULL, NULL) == off) {
		for (int h = 0; h < 24; h++)
			p[h] = (struct piece){ .a = s + (int64_t)h * HOUR_S,
				               .b = s + (int64_t)(h + 1) * HOUR_S,
				               .hour = h };
		return 24;
	}
	for (int64_t t = s; t < e && n < MAX_PIECES;) {
		int hour, sec;
		int32_t o = gmtoff_at(t, &hour, &sec);
		int64_t nb = min64(t + HOUR_S - sec, e);

		if (gmtoff_at(nb - 1, NULL, NULL) != o) {
			int64_t lo = t, hi = nb - 1;

			while (hi - lo > 1) {
				int64_t m = lo + (hi - lo) / 2;

				if (gmtoff_at(m, NULL, NULL) == o)
					lo = m;
				else
					hi = m;
			}
			nb = hi;
		}
		p[n++] = (struct piece){ .a = t, .b = nb, .hour = hour };
		t = nb;
	}
	return n;
}

static bool win_edge(const struct units_active *act, int min_of_day)
{
	return !act->always && (act->start_min == min_of_day || act->end_min == min_of_day);
}

/* Group pieces into runs over which the cell's activity is likely all on
 * or all off, so that split_active() needs one active-time call per run
 * rather than per hour: a run breaks where the window opens or closes on
 * the hour, around an hour the window opens or closes inside, and around
 * DST transitions. This is only a guess (the window's local minutes are
 * turned into instants by deadline.c's own rules); split_active() checks
 * it and falls back to one call per piece, so the figures never depend
 * on it. */
static void mark_runs(const struct units_active *act, struct piece *pc, size_t npc)
{
	bool prev_special = false;
	size_t start = 0;

	for (size_t p = 0; p <= npc; p++) {
		bool special = false, cut = p == npc || p == 0;

		if (p < npc) {
			int h = pc[p].hour;

			special = pc[p].b - pc[p].a != HOUR_S;
			for (int m = 1; m < 60 && !special; m++)
				special = win_edge(act, h * 60 + m);
			cut = cut || special || prev_special || win_edge(act, h * 60) ||
			      h != pc[p - 1].hour + 1;
		}
		if (cut) {
			for (size_t k = start; k < p; k++)
				pc[k].run_end = p;
			start = p;
		}
		prev_special = special;
	}
}

/* Active seconds in [x, y), also credited to each piece it crosses
 * (acc[i] for pc[i]). *cur only moves forward: callers pass ascending
 * intervals. */
static int64_t split_active(const struct units_active *act, const struct piece *pc, size_t npc,
                            size_t *cur, int64_t x, int64_t y, int64_t *acc)
{
	int64_t sum = 0;

	while (*cur < npc && pc[*cur].b <= x)
		(*cur)++;
	for (size_t i = *cur; i < npc && x < y && pc[i].a < y;) {
		size_t j = pc[i].run_end;
		int64_t a = max64(x, pc[i].a), b = min64(y, pc[j - 1].b);
		int64_t d = deadline_active_between(act, a, b);

		/* All or nothing: each piece's share is its overlap, exactly.
		 * Otherwise the guess of mark_runs() was wrong; ask per piece. */
		for (size_t k = i; k < j && d > 0; k++) {
			int64_t ka = max64(a, pc[k].a), kb = min64(b, pc[k].b);

			if (ka < kb)
				acc[k] += d == b - a ? kb - ka
				                     : deadline_active_between(act, ka, kb);
		}
		sum += d;
		x = b;
		i = j;
	}
	if (x < y)
		sum += deadline_active_between(act, x, y);
	return sum;
}

/* Merge the pauses (overlaps and all) into disjoint ascending spans. */
static size_t merge_pauses(const struct report_pause *pz, size_t n, struct span *out)
{
	size_t m = 0;

	for (size_t i = 0; i < n; i++)
		if (pz[i].since < pz[i].until)
			out[m++] = (struct span){ pz[i].since, pz[i].until };
	qsort(out, m, sizeof(*out), cmp_span);
	size_t k = 0;
	for (size_t i = 0; i < m; i++) {
		if (k && out[i].a <= out[k - 1].b)
			out[k - 1].b = max64(out[k - 1].b, out[i].b);
		else
			out[k++] = out[i];
	}
	return k;
}

/* The state of the overdue replay: the tracked spans it clips to, and
 * cursors that only move forward: each base but the first is the instant
 * it was set (a patrol, a pause end), so each overdue time lies after
 * the previous segment. */
struct replay {
	const struct config_cell *cell;
	const struct span *tr;
	size_t ntr, ti;
	const struct piece *pc;
	size_t npc, pi;
	int64_t overdue_s;
	int64_t overdue[MAX_PIECES];
};

/* The cell's base was `base` until the next base change at `c`: whatever
 * of [overdue_at, c) is tracked counts as overdue. */
static void replay_until(struct replay *r, int64_t base, int64_t c)
{
	const struct units_active *act = &r->cell->active;
	int64_t ival = r->cell->interval_s > 0 ? r->cell->interval_s : 0;
	int64_t grace = r->cell->grace_s > 0 ? r->cell->grace_s : 0;
	int64_t ov;

	if (r->ntr == 0 || c <= r->tr[0].a)
		return;
	/* overdue_at >= base + interval + grace in wall time, so a patrol
	 * that comes sooner than that needs no active-time arithmetic. */
	if (sat_add(sat_add(base, ival), grace) >= c)
		return;
	ov = deadline_active_add(act, deadline_active_add(act, base, ival), grace);
	if (ov == DEADLINE_NEVER || ov >= c)
		return;
	while (r->ti < r->ntr && r->tr[r->ti].b <= ov)
		r->ti++;
	for (size_t i = r->ti; i < r->ntr && r->tr[i].a < c; i++) {
		int64_t a = max64(ov, r->tr[i].a), b = min64(c, r->tr[i].b);

		if (a < b)
			r->overdue_s += split_active(act, r->pc, r->npc, &r->pi, a, b, r->overdue);
	}
}

static int count_events(const struct evlist *l, int64_t s, int64_t e, struct report_cell *out)
{
	size_t np = 0, nt = 0;

	for (size_t i = 0; i < l->n; i++) {
		const struct report_event *ev = ev_at(l, i);

		if (ev->ts < s || ev->ts >= e)
			continue;
		nt++;
		np += ev->patrol;
	}
	if (nt > INT_MAX) {
		errno = EOVERFLOW;
		return -1;
	}
	if (np && !(out->workers = malloc(np * sizeof(*out->workers))))
		return -1;
	if (nt && !(out->types = malloc(nt * sizeof(*out->types))))
		return -1;

	for (size_t i = 0; i < l->n; i++) {
		const struct report_event *ev = ev_at(l, i);

		if (ev->ts < s || ev->ts >= e)
			continue;
		if (ev->type)
			out->types[out->n_types++] = (struct report_type_count){ ev->type, 1 };
		out->late += ev->late;
		if (ev->has_value && !isnan(ev->value)) {
			if (!out->has_value || ev->value < out->value_min)
				out->value_min = ev->value;
			if (!out->has_value || ev->value > out->value_max)
				out->value_max = ev->value;
			out->has_value = true;
		}
		if (!ev->patrol)
			continue;
		out->patrols++;
		if (!out->has_patrol)
			out->first = ev->ts;
		out->last = ev->ts;
		out->has_patrol = true;
		if (ev->worker)
			out->workers[out->n_workers++] = ev->worker;
	}

	if (out->n_workers) {
		size_t k = 1;

		qsort(out->workers, out->n_workers, sizeof(*out->workers), cmp_str_ptr);
		for (size_t i = 1; i < out->n_workers; i++)
			if (strcmp(out->workers[i], out->workers[k - 1]) != 0)
				out->workers[k++] = out->workers[i];
		out->n_workers = k;
	}
	if (out->n_types) {
		size_t k = 1;

		qsort(out->types, out->n_types, sizeof(*out->types), cmp_type);
		for (size_t i = 1; i < out->n_types; i++) {
			if (strcmp(out->types[i].type, out->types[k - 1].type) == 0)
				out->types[k - 1].count++;
			else
				out->types[k++] = out->types[i];
		}
		out->n_types = k;
	}
	return 0;
}

/* Where the cell's time starts to count: the earliest of known_since, its
 * first patrol ever, and any patrol we are shown (which cannot be earlier
 * than the first ever unless the caller's facts disagree; then the patrol
 * wins, as it proves the cell existed). */
static int64_t tracking_start(const struct report_input *in, const struct evlist *l)
{
	int64_t t = INT64_MAX;

	if (in->known_since)
		t = in->known_since;
	if (in->first_patrol_ever)
		t = min64(t, in->first_patrol_ever);
	if (in->last_patrol_before)
		t = min64(t, in->last_patrol_before);
	for (size_t i = 0; i < l->n; i++) {
		const struct report_event *ev = ev_at(l, i);

		if (ev->patrol) {
			t = min64(t, ev->ts);
			break;
		}
	}
	return t;
}

void report_cell_free(struct report_cell *c)
{
	if (!c)
		return;
	free(c->workers);
	free(c->types);
	memset(c, 0, sizeof(*c));
}

int report_cell_compute(const struct report_input *in, int64_t day_start, int64_t day_end,
                        int64_t now, struct report_cell *out)
{
	struct evlist l = { 0 };
	struct span one, *pz = NULL, *tr = &one;
	size_t npz = 0, ntr = 0;
	struct piece pc[MAX_PIECES];
	size_t npc;
	const struct units_active *act;
	int64_t track, A, W;
	int64_t tracked[MAX_PIECES] = { 0 };
	struct replay r = { 0 };
	bool slot_patrol[24] = { false }, slot_past[24] = { false }, slot_seen[24] = { false };
	bool slot_cov[24] = { false }, slot_ov[24] = { false };
	int64_t slot_pos[24];

	if (!out) {
		errno = EINVAL;
		return -1;
	}
	memset(out, 0, sizeof(*out));
	/* A day is 23 to 25 hours; anything much longer is a caller's bug,
	 * and bounding it keeps every sum below far from overflow. */
	if (!in || !in->cell || (in->n_events && !in->events) || (in->n_pauses && !in->pauses) ||
	    day_end <= day_start || (uint64_t)day_end - (uint64_t)day_start > 2 * DAY_S) {
		errno = EINVAL;
		return -1;
	}
	act = &in->cell->active;
	out->alerts = in->alerts;

	if (evlist_init(&l, in->events, in->n_events) < 0)
		goto fail;
	if (count_events(&l, day_start, day_end, out) < 0)
		goto fail;

	if (in->n_pauses) {
		if (in->n_pauses > SIZE_MAX / sizeof(*pz) / 2 - 1)
			goto fail_overflow;
		/* Merged pauses, then the tracked spans (at most one more). */
		pz = malloc((2 * in->n_pauses + 1) * sizeof(*pz));
		if (!pz)
			goto fail;
		npz = merge_pauses(in->pauses, in->n_pauses, pz);
		tr = pz + in->n_pauses;
	}

	/* The counted window: tracked, inside the day, before now. */
	track = tracking_start(in, &l);
	A = max64(day_start, track);
	W = min64(day_end, now);
	if (A < W) {
		int64_t t = A;

		for (size_t i = 0; i < npz && t < W; i++) {
			if (pz[i].b <= t)
				continue;
			if (pz[i].a >= W)
				break;
			if (pz[i].a > t)
				tr[ntr++] = (struct span){ t, pz[i].a };
			t = pz[i].b;
		}
		if (t < W)
			tr[ntr++] = (struct span){ t, W };
	}

	npc = hour_pieces(day_start, day_end, pc);
	mark_runs(act, pc, npc);

	/* Tracked active time, per hour slot for the chart. */
	{
		size_t cur = 0;

		for (size_t i = 0; i < ntr; i++)
			out->tracked_active_s += split_active(act, pc, npc, &cur, tr[i].a, tr[i].b,
			                                      tracked);
	}

	r = (struct replay){ .cell = in->cell, .tr = tr, .ntr = ntr, .pc = pc, .npc = npc };
	/* Replay the daemon's base over the day: at each patrol and each
	 * pause end it is deadline_base() of the patrols and pause ends up to
	 * then, the rule the daemon and `status` use. So a cell's first patrol
	 * moves it back to that patrol even from before known_since; with no
	 * fact at all, nothing is due until the first patrol. */
	{
		int64_t last = in->last_patrol_before, pend = 0;
		int64_t base = deadline_base(in->known_since, last, pend);
		size_t i = 0, j = 0;

		for (;;) {
			int64_t c;
			bool patrol;

			while (i < l.n && !ev_at(&l, i)->patrol)
				i++;
			while (j < npz && pz[j].b == INT64_MAX)
				j++;
			if (i < l.n && (j >= npz || ev_at(&l, i)->ts <= pz[j].b)) {
				c = ev_at(&l, i++)->ts;
				patrol = true;
			} else if (j < npz) {
				c = pz[j++].b;
				patrol = false;
			} else {
				break;
			}
			if (c >= W)
				break;
			if (patrol)
				last = max64(last, c);
			else
				pend = max64(pend, c);
			int64_t nb = deadline_base(in->known_since, last, pend);
			if (nb != base) {
				if (base)
					replay_until(&r, base, c);
				base = nb;
			}
		}
		if (base)
			replay_until(&r, base, W);
		out->overdue_s = r.overdue_s;
	}

	if (out->tracked_active_s > 0) {
		int64_t T = out->tracked_active_s, ok = T - out->overdue_s;

		out->has_covered = true;
		/* Tenths of a percent, rounded half up, in integers so that
		 * 87.5 stays 87.5 and 18.75 becomes 18.8. */
		out->covered_pct = (double)((2000 * ok + T) / (2 * T)) / 10.0;
	}

	/* Longest gap: boundaries are A, each patrol in (A, W), and W. A gap
	 * is measured only when it could beat the longest so far: its active
	 * time is at most its wall length, and at most the tracked active time
	 * of the hour pieces it touches (so a night of patrols costs no
	 * active-time call at all). */
	if (ntr) {
		int64_t g0 = A, best = 0;
		int64_t cum[MAX_PIECES + 1];
		size_t ti = 0, p0 = 0, p1 = 0;

		cum[0] = 0;
		for (size_t p = 0; p < npc; p++)
			cum[p + 1] = cum[p] + tracked[p];
		for (size_t i = 0;; i++) {
			int64_t g1, bound;

			while (i < l.n && (!ev_at(&l, i)->patrol || ev_at(&l, i)->ts <= g0))
				i++;
			g1 = (i < l.n && ev_at(&l, i)->ts < W) ? ev_at(&l, i)->ts : W;
			bound = g1 - g0;
			if (npc && g1 <= pc[npc - 1].b) {
				while (pc[p0].b <= g0)
					p0++;
				if (p1 < p0)
					p1 = p0;
				while (pc[p1].b < g1)
					p1++;
				bound = min64(bound, cum[p1 + 1] - cum[p0]);
			}
			if (bound > best) {
				int64_t sum = 0;

				while (ti < ntr && tr[ti].b <= g0)
					ti++;
				for (size_t k = ti; k < ntr && tr[k].a < g1; k++)
					sum += deadline_active_between(act, max64(g0, tr[k].a),
					                               min64(g1, tr[k].b));
				best = max64(best, sum);
			}
			if (g1 >= W)
				break;
			g0 = g1;
		}
		out->longest_gap_s = best;
	}

	/* The chart: an hour is overdue when it holds overdue *tracked active*
	 * time, so the red hours are exactly where overdue_s comes from. */
	{
		size_t k = 0;

		for (size_t p = 0; p < npc; p++) {
			int h = pc[p].hour;

			slot_seen[h] = true;
			slot_past[h] |= pc[p].a < now;
			slot_cov[h] |= tracked[p] > 0;
			slot_ov[h] |= r.overdue[p] > 0;
			for (; k < l.n && ev_at(&l, k)->ts < pc[p].b; k++)
				if (ev_at(&l, k)->patrol && ev_at(&l, k)->ts >= pc[p].a)
					slot_patrol[h] = true;
		}
		/* A local hour the day skips (spring forward) has no time of its
		 * own; it sits where the clock jumped, and is future or not by
		 * that instant. */
		for (int h = 23; h >= 0; h--) {
			slot_pos[h] = day_end;
			for (size_t p = 0; p < npc; p++)
				if (pc[p].hour > h) {
					slot_pos[h] = pc[p].a;
					break;
				}
		}
		for (int h = 0; h < 24; h++) {
			bool past = slot_seen[h] ? slot_past[h] : slot_pos[h] < now;

			if (!past)
				out->hours[h] = REPORT_HOUR_FUTURE;
			else if (slot_ov[h])
				out->hours[h] = REPORT_HOUR_OVERDUE;
			else if (slot_patrol[h])
				out->hours[h] = REPORT_HOUR_PATROLLED;
			else if (slot_cov[h])
				out->hours[h] = REPORT_HOUR_COVERED;
			else
				out->hours[h] = REPORT_HOUR_INACTIVE;
		}
	}

	free(pz);
	free(l.idx);
	return 0;

fail_overflow:
	errno = EOVERFLOW;
fail : {
	int e = errno;

	free(pz);
	free(l.idx);
	report_cell_free(out);
	errno = e;
}
	return -1;
}

static int days_in_month(int y, int m)
{
	static const int dm[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : dm[m - 1];
}

static int digits(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int report_day_bounds(const char *date, int64_t *start, int64_t *end)
{
	int y, m, d;
	struct tm a = { 0 }, b = { 0 };
	time_t s, e;

	if (!date || !start || !end)
		return -1;
	/* Checked in order, so a short string stops at its NUL. */
	if ((y = digits(date, 4)) < 0 || date[4] != '-' || (m = digits(date + 5, 2)) < 0 ||
	    date[7] != '-' || (d = digits(date + 8, 2)) < 0 || date[10] != '\0')
		return -1;
	if (y < 1 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
		return -1;
	a.tm_year = b.tm_year = y - 1900;
	a.tm_mon = b.tm_mon = m - 1;
	a.tm_mday = d;
	b.tm_mday = d + 1; /* mktime() carries into the next month or year */
	a.tm_isdst = b.tm_isdst = -1;
	s = mktime(&a);
	e = mktime(&b);
	if (s == (time_t)-1 || e == (time_t)-1 || e <= s)
		return -1;
	*start = (int64_t)s;
	*end = (int64_t)e;
	return 0;
}
