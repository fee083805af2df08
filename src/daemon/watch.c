/*
 * watch: glue between stored facts and the deadline engine.
 *
 * Cells are numbered by their position in the configuration, which is what
 * the engine indexes by; a message's cell_cfg pointer gives the number in
 * O(1). Parameters are shared between cells that have the same ones (most
 * inherit the defaults), so a million cells cost a handful of parameter
 * records, not a million.
 */
#include "watch.h"

#include <stdlib.h>
#include <string.h>

#include "span.h"

struct watch {
	struct store *store;
	struct alert *alert;
	const struct config *cfg;
	struct deadline *dl;
	struct deadline_params *params; /* unique parameter sets */
	size_t n_params;
	/* Per cell: it may have open event alerts, which its next patrol
	 * ends. Set for every cell by a rebuild (one UPDATE each on their
	 * next patrol finds out), so a check-in costs nothing more once
	 * known clear. */
	unsigned char *open_events;
};

struct watch *watch_new(struct store *s, struct alert *a)
{
	struct watch *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->store = s;
	w->alert = a;
	return w;
}

void watch_free(struct watch *w)
{
	if (!w)
		return;
	deadline_free(w->dl);
	free(w->params);
	free(w->open_events);
	free(w);
}

const struct deadline *watch_deadlines(const struct watch *w)
{
	return w->dl;
}

static bool watch_same_params(const struct deadline_params *p, const struct config_cell *c)
{
	return p->interval_s == c->interval_s && p->grace_s == c->grace_s &&
	       p->repeat_s == c->repeat_s && p->active.always == c->active.always &&
	       (c->active.always || (p->active.start_min == c->active.start_min &&
	                             p->active.end_min == c->active.end_min));
}

/* Index of c's parameter set in w->params, adding it if new. */
static long watch_params_of(struct watch *w, const struct config_cell *c, size_t *cap)
{
	/* Recent sets first: cells from a CSV usually repeat their
	 * neighbour's settings. A full scan is bounded by the distinct
	 * combinations, which real villages keep small. */
	for (size_t i = w->n_params; i-- > 0;)
		if (watch_same_params(&w->params[i], c))
			return (long)i;
	if (w->n_params == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct deadline_params *np = realloc(w->params, ncap * sizeof(*np));
		if (!np)
			return -1;
		w->params = np;
		*cap = ncap;
	}
	w->params[w->n_params] = (struct deadline_params){
		.interval_s = c->interval_s,
		.grace_s = c->grace_s,
		.repeat_s = c->repeat_s,
		.active = c->active,
	};
	return (long)w->n_params++;
}

struct watch_build {
	const struct config *cfg;
	int64_t *known; /* known_since */
	int64_t *last;  /* last patrol, 0: none */
	int64_t *ended; /* end of a pause that is over, 0: none */
	int64_t now;
	struct deadline *dl;
	struct alert *alert;
	enum store_status st;
};

static long watch_cell_index(const struct config *cfg, const char *id)
{
	const struct config_cell *c = config_cell_find(cfg, id);
	return c ? (long)(c - cfg->cells) : -1;
}

static int watch_row_known(void *arg, const struct store_known_cell *row)
{
	struct watch_build *b = arg;
	long i = watch_cell_index(b->cfg, row->cell);
	if (i >= 0)
		b->known[i] = row->known_since;
	return 0;
}

/* A pause that has already ended (its time ran out, or `gridpatrol resume`
 * ended it) still restarted the count at its end, exactly as deadline_pop
 * does live; without this a restart would forget it and could call a cell
 * overdue for time it was paused. */
static int watch_row_ended_pause(void *arg, const struct store_pause *row)
{
	struct watch_build *b = arg;
	long i = watch_cell_index(b->cfg, row->cell);
	if (i >= 0 && !row->open_ended && row->until <= b->now && row->until > b->ended[i])
		b->ended[i] = row->until;
	return 0;
}

/* The last patrol of every configured cell, one event_span probe each,
 * read as alert texts and `status` read it (span.h). */
static enum store_status watch_last_patrols(struct watch *w, struct watch_build *b)
{
	sqlite3_stmt *st = NULL;
	int rc = span_prepare(store_db(w->store), &st);
	for (size_t i = 0; rc == SQLITE_OK && i < b->cfg->n_cells; i++) {
		struct span_patrol p;
		rc = span_last_patrol(st, b->cfg, b->cfg->cells[i].id, &p);
		if (rc == SQLITE_OK && p.found)
			b->last[i] = p.ts;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_OK ? STORE_OK : store_status_of(w->store, rc, "read last patrols");
}

static int watch_row_overdue(void *arg, const struct store_open_overdue *row)
{
	struct watch_build *b = arg;
	long i = watch_cell_index(b->cfg, row->cell);
	if (i < 0)
		return 0;
	deadline_restore_alerted(b->dl, (uint32_t)i, row->at, row->repeat);
	/* Claims survive restarts: a claimed episode keeps its reminders
	 * held until the claim runs out. */
	int64_t until;
	b->st = alert_claim_holds(b->alert, &b->cfg->cells[i], &until);
	if (b->st != STORE_OK)
		return 1;
	if (until)
		deadline_hold(b->dl, (uint32_t)i, until);
	return 0;
}

enum store_status watch_rebuild(struct watch *w, const struct config *cfg, int64_t now)
{
	size_t n = cfg->n_cells, cap = 0;
	enum store_status st = STORE_RETRY;
	struct watch_build b = { .cfg = cfg, .now = now, .alert = w->alert, .st = STORE_OK };
	struct deadline *dl = deadline_new();
	long *pidx = NULL;

	/* The old engine and parameters stay valid until the new ones are
	 * complete, so a failed rebuild leaves the daemon as it was. */
	struct deadline_params *old_params = w->params;
	size_t old_n = w->n_params;
	w->params = NULL;
	w->n_params = 0;

	b.known = calloc(n ? n : 1, sizeof(int64_t));
	b.last = calloc(n ? n : 1, sizeof(int64_t));
	b.ended = calloc(n ? n : 1, sizeof(int64_t));
	pidx = calloc(n ? n : 1, sizeof(long));
	if (!dl || !b.known || !b.last || !b.ended || !pidx)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		pidx[i] = watch_params_of(w, &cfg->cells[i], &cap);
		if (pidx[i] < 0)
			goto fail;
		b.known[i] = now; /* known from now on unless the table says earlier */
	}
	if ((st = store_each_known(w->store, watch_row_known, &b)) != STORE_OK ||
	    (st = watch_last_patrols(w, &b)) != STORE_OK ||
	    (st = store_each_pause(w->store, watch_row_ended_pause, &b)) != STORE_OK)
		goto fail;
	st = STORE_RETRY;
	for (size_t i = 0; i < n; i++) {
		if (deadline_set(dl, (uint32_t)i, &w->params[pidx[i]], b.known[i], b.last[i],
		                 b.ended[i]) < 0)
			goto fail;
	}
	b.dl = dl;
	if ((st = store_each_open_overdue(w->store, cfg, watch_row_overdue, &b)) != STORE_OK ||
	    (st = b.st) != STORE_OK)
		goto fail;
	st = STORE_RETRY;
	unsigned char *open_events = malloc(n ? n : 1);
	if (!open_events)
		goto fail;
	memset(open_events, 1, n ? n : 1);

	free(w->open_events);
	w->open_events = open_events;
	deadline_free(w->dl);
	w->dl = dl;
	w->cfg = cfg;
	free(old_params);
	free(b.known);
	free(b.last);
	free(b.ended);
	free(pidx);
	return watch_sync_pauses(w, now);

fail:
	deadline_free(dl);
	free(w->params);
	w->params = old_params;
	w->n_params = old_n;
	free(b.known);
	free(b.last);
	free(b.ended);
	free(pidx);
	return st;
}

enum store_status watch_claim(struct watch *w, const struct alert_claim *cl, int64_t now,
                              bool *queued)
{
	struct alert_claim_result res;
	enum store_status st = alert_claim(w->alert, cl, now, &res);
	if (st != STORE_OK || !res.claimed)
		return st;
	*queued = true;
	if (res.overdue && w->dl)
		deadline_hold(w->dl, (uint32_t)(cl->cell - w->cfg->cells), res.hold_until);
	return STORE_OK;
}

enum store_status watch_office_claims(struct watch *w, int64_t now, bool *queued, int *done,
                                      bool *more)
{
	enum store_status st = store_begin(w->store);
	bool found = true;

	*done = 0;
	/* A few per pass; the next pass takes the rest. */
	while (st == STORE_OK && found && *done < 16) {
		struct store_claim_request rq;
		st = store_next_claim_request(w->store, &rq, &found);
		if (st != STORE_OK || !found)
			break;
		/* A cell no longer configured: nothing to claim. */
		const struct config_cell *c = w->cfg ? config_cell_find(w->cfg, rq.cell) : NULL;
		if (c) {
			struct alert_claim cl = {
				.cell = c, .alert_id = rq.alert_id, .by = rq.by, .at = rq.at
			};
			st = watch_claim(w, &cl, now, queued);
		}
		if (st == STORE_OK)
			st = store_claim_request_done(w->store, rq.id);
		if (st == STORE_OK)
			(*done)++;
	}
	*more = st == STORE_OK && found;
	return st;
}

enum store_status watch_claim_check(struct watch *w, const struct msg_record *rec, bool *bad,
                                    char *detail, size_t len)
{
	bool seen = false;
	enum store_status st = STORE_OK;

	*bad = false;
	if (!rec->has_alert_id)
		return STORE_OK;
	/* A redelivered claim is a duplicate even if its alert was pruned
	 * since (store_put_event decides that, after this check). */
	if (rec->msg_id[0])
		st = store_event_seen(w->store, rec, &seen);
	if (st == STORE_OK && !seen)
		st = alert_claim_check(w->alert, rec->cell_cfg, rec->alert_id, bad, detail, len);
	return st;
}

enum store_status watch_on_event(struct watch *w, const struct msg_record *rec, int64_t event_id,
                                 int64_t now, bool *queued)
{
	enum store_status st = STORE_OK;
	const struct config_cell *c = rec->cell_cfg;

	uint32_t i = (uint32_t)(c - w->cfg->cells);

	if (w->dl && config_event_counts_as_patrol(w->cfg, rec->type)) {
		struct deadline_patrol_result r;
		deadline_patrol(w->dl, i, rec->ts, now, &r);
		if (r.recovered) {
			st = alert_recovered(w->alert, c, &r, rec->worker, rec->ts, now);
			if (st != STORE_OK)
				return st;
			*queued = true;
		}
		if (w->open_events[i]) {
			if ((st = alert_event_done(w->alert, c, rec->ts, now)) != STORE_OK)
				return st;
			w->open_events[i] = 0;
		}
	}
	if (w->dl && rec->event_cfg->claim) {
		struct alert_claim cl = {
			.cell = c,
			.alert_id = rec->has_alert_id ? rec->alert_id : 0,
			.by = rec->worker,
			.at = rec->ts,
		};
		if ((st = watch_claim(w, &cl, now, queued)) != STORE_OK)
			return st;
	}
	st = alert_on_event(w->alert, rec, event_id, now, queued);
	if (st == STORE_OK && w->dl && rec->event_cfg->alert_immediate)
		w->open_events[i] = 1;
	return st;
}

enum store_status watch_tick(struct watch *w, int64_t now, bool *queued)
{
	struct deadline_fire f;
	while (w->dl && deadline_peek(w->dl, now, &f)) {
		const struct config_cell *c = &w->cfg->cells[f.cell];
		enum store_status st;
		if (f.repeat > 0) {
			/* A claim holds reminders (deadline_hold); one that
			 * comes due early all the same (a pause ended and
			 * rescheduled the cell) waits for the claim. */
			int64_t until;
			if ((st = alert_claim_holds(w->alert, c, &until)) != STORE_OK)
				return st;
			if (until > now) {
				/* Peeked, not popped: the repeat number stays
				 * for the reminder that does go out. */
				if (!deadline_hold(w->dl, f.cell, until))
					deadline_pop(w->dl, now, NULL); /* no repeats */
				continue;
			}
		}
		deadline_pop(w->dl, now, &f);
		if ((st = alert_overdue(w->alert, c, &f, now)) != STORE_OK)
			return st;
		*queued = true;
	}
	return STORE_OK;
}

int64_t watch_next_time(const struct watch *w)
{
	return w->dl ? deadline_next_time(w->dl) : DEADLINE_NEVER;
}

struct watch_pause {
	const struct config *cfg;
	int64_t *until; /* 0: no row; may be past (ended, by `resume` too) */
	int64_t now;
};

static int watch_row_pause(void *arg, const struct store_pause *row)
{
	struct watch_pause *p = arg;
	long i = watch_cell_index(p->cfg, row->cell);
	if (i < 0)
		return 0;
	p->until[i] = row->open_ended ? DEADLINE_NEVER : row->until;
	return 0;
}

enum store_status watch_sync_pauses(struct watch *w, int64_t now)
{
	size_t n = w->cfg ? w->cfg->n_cells : 0;
	if (!w->dl)
		return STORE_OK;
	int64_t *until = calloc(n ? n : 1, sizeof(*until));
	if (!until)
		return STORE_RETRY;
	struct watch_pause p = { .cfg = w->cfg, .until = until, .now = now };
	enum store_status st = store_each_pause(w->store, watch_row_pause, &p);
	if (st == STORE_OK) {
		for (size_t i = 0; i < n; i++) {
			/* An end already past resumes a running pause at that
			 * end, as the rebuild and `status` count it. */
			bool paused = deadline_paused(w->dl, (uint32_t)i, now);
			if (until[i])
				deadline_pause(w->dl, (uint32_t)i, until[i], now);
			else if (paused)
				deadline_resume(w->dl, (uint32_t)i, now);
			/* A resume reschedules the cell; a claim of its
			 * episode still holds the reminders. */
			int64_t hold;
			if (paused && !deadline_paused(w->dl, (uint32_t)i, now) &&
			    deadline_alerted(w->dl, (uint32_t)i)) {
				st = alert_claim_holds(w->alert, &w->cfg->cells[i], &hold);
				if (st != STORE_OK)
					break;
				if (hold)
					deadline_hold(w->dl, (uint32_t)i, hold);
			}
		}
	}
	free(until);
	return st;
}
