/*
 * cli_db: the CLI's statements against the daemon's schema — the fixed
 * read-only queries, typed rows to callbacks, and at the end the admin
 * commands' few writes (see cli_db.h).
 */
#include "cli_db.h"

#include <stdlib.h>
#include <string.h>

/* The caller's callback, whichever query's it is. */
struct cli_db_ctx {
	union {
		cli_db_known_cb *known;
		cli_db_pause_cb *pause;
		cli_db_span_cb *span;
		cli_db_alert_count_cb *alert_count;
		cli_db_day_task_cb *day_task;
		cli_db_event_cb *event;
	} cb;
	void *arg;
};

/* Steps st to the end, one callback per row through `row`; finalizes st. */
static int cli_db_walk(struct cli *c, sqlite3_stmt *st, const char *what,
                       int (*row)(sqlite3_stmt *st, const struct cli_db_ctx *x),
                       const struct cli_db_ctx *x)
{
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (row(st, x) != 0) {
			sqlite3_finalize(st);
			return CLI_EXIT_FAIL;
		}
	}
	int code = rc == SQLITE_DONE ? CLI_EXIT_OK : cli_db_fail(c, what);
	sqlite3_finalize(st);
	return code;
}

/* Prepares sql and binds n integers as ?1.. . */
static int cli_db_prepare(struct cli *c, const char *sql, int n, const int64_t *ints,
                          sqlite3_stmt **st)
{
	if (cli_prepare(c, sql, st) != CLI_EXIT_OK)
		return CLI_EXIT_FAIL;
	for (int i = 0; i < n; i++) {
		if (sqlite3_bind_int64(*st, i + 1, ints[i]) != SQLITE_OK) {
			sqlite3_finalize(*st);
			*st = NULL;
			return cli_db_fail(c, "binding");
		}
	}
	return CLI_EXIT_OK;
}

static int cli_db_known_row(sqlite3_stmt *st, const struct cli_db_ctx *x)
{
	struct cli_db_known r = { .cell = cli_col_text(st, 0),
		                  .known_since = sqlite3_column_int64(st, 1) };
	return x->cb.known(x->arg, &r);
}

int cli_db_each_known(struct cli *c, cli_db_known_cb *cb, void *arg)
{
	sqlite3_stmt *st;
	if (cli_db_prepare(c, "SELECT id, known_since FROM cell", 0, NULL, &st) != CLI_EXIT_OK)
		return CLI_EXIT_FAIL;
	return cli_db_walk(c, st, "reading cells", cli_db_known_row,
	                   &(struct cli_db_ctx){ .cb.known = cb, .arg = arg });
}

static int cli_db_pause_row(sqlite3_stmt *st, const struct cli_db_ctx *x)
{
	struct cli_db_pause r = {
		.cell = cli_col_text(st, 0),
		.since = sqlite3_column_int64(st, 1),
		.open_ended = sqlite3_column_type(st, 2) == SQLITE_NULL,
		.until = sqlite3_column_int64(st, 2),
	};
	return x->cb.pause(x->arg, &r);
}

int cli_db_each_pause(struct cli *c, int64_t before, cli_db_pause_cb *cb, void *arg)
{
	sqlite3_stmt *st;
	if (cli_db_prepare(c, "SELECT cell, since, until FROM pause WHERE since < ?1", 1, &before,
	                   &st) != CLI_EXIT_OK)
		return CLI_EXIT_FAIL;
	return cli_db_walk(c, st, "reading pauses", cli_db_pause_row,
	                   &(struct cli_db_ctx){ .cb.pause = cb, .arg = arg });
}

static int cli_db_span_row(sqlite3_stmt *st, const struct cli_db_ctx *x)
{
	struct cli_db_span r = {
		.cell = cli_col_text(st, 0),
		.type = cli_col_text(st, 1),
		.first_ts = sqlite3_column_int64(st, 2),
		.last_ts = sqlite3_column_int64(st, 3),
	};
	return x->cb.span(x->arg, &r);
}

int cli_db_each_span(struct cli *c, cli_db_span_cb *cb, void *arg)
{
	sqlite3_stmt *st;
	if (cli_db_prepare(c, "SELECT cell, type, first_ts, last_ts FROM event_span", 0, NULL,
	                   &st) != CLI_EXIT_OK)
		return CLI_EXIT_FAIL;
	return cli_db_walk(c, st, "reading patrols", cli_db_span_row,
	                   &(struct cli_db_ctx){ .cb.span = cb, .arg = arg });
}

struct cli_db_before {
	sqlite3_stmt *st;
	char *non_patrol; /* bound as ?2; must outlive st's bindings */
};

/* The configured types that do NOT count as patrol presence, as a JSON
 * array (malloc'd) for "type NOT IN (SELECT value FROM json_each(?))".
 * Phrased as the exclusion because only configured types can be listed:
 * the set is the configured types config_event_counts_as_patrol rejects,
 * so a type no longer configured counts, as the daemon counts it. */
static char *cli_db_non_patrol_types(const struct config *cfg)
{
	json_t *a = json_array();
	char *s = NULL;
	if (!a)
		return NULL;
	for (size_t i = 0; i < cfg->n_events; i++)
		if (!config_event_counts_as_patrol(cfg, cfg->events[i].name) &&
		    json_array_append_new(a, json_string(cfg->events[i].name)) < 0)
			goto out;
	s = json_dumps(a, JSON_COMPACT);
out:
	json_decref(a);
	return s;
}

int cli_db_before_open(struct cli *c, int64_t before, struct cli_db_before **out)
{
	struct cli_db_before *b = calloc(1, sizeof(*b));
	*out = NULL;
	if (b)
		b->non_patrol = cli_db_non_patrol_types(c->cfg);
	if (!b || !b->non_patrol) {
		free(b);
		cli_error("out of memory");
		return CLI_EXIT_FAIL;
	}
	if (cli_prepare(c,
	                "SELECT ts FROM event WHERE cell = ?1 AND ts < ?3 AND type NOT IN "
	                "(SELECT value FROM json_each(?2)) ORDER BY ts DESC LIMIT 1",
	                &b->st) != CLI_EXIT_OK) {
		cli_db_before_close(b);
		return CLI_EXIT_FAIL;
	}
	if (sqlite3_bind_text(b->st, 2, b->non_patrol, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(b->st, 3, before) != SQLITE_OK) {
		int code = cli_db_fail(c, "binding");
		cli_db_before_close(b);
		return code;
	}
	*out = b;
	return CLI_EXIT_OK;
}

int cli_db_before_probe(struct cli *c, struct cli_db_before *b, const char *cell, int64_t *ts)
{
	sqlite3_stmt *st = b->st;
	if (sqlite3_bind_text(st, 1, cell, -1, SQLITE_STATIC) != SQLITE_OK)
		return cli_db_fail(c, "binding");
	int rc = sqlite3_step(st);
	*ts = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return cli_db_fail(c, "reading patrols");
	return CLI_EXIT_OK;
}

void cli_db_before_close(struct cli_db_before *b)
{
	if (!b)
		return;
	sqlite3_finalize(b->st);
	free(b->non_patrol);
	free(b);
}

static int cli_db_alert_count_row(sqlite3_stmt *st, const struct cli_db_ctx *x)
{
	struct cli_db_alert_count r = { .cell = cli_col_text(st, 0),
		                        .count = sqlite3_column_int(st, 1) };
	return x->cb.alert_count(x->arg, &r);
}

int cli_db_each_alert_count(struct cli *c, int64_t from, int64_t to, cli_db_alert_count_cb *cb,
                            void *arg)
{
	sqlite3_stmt *st;
	int64_t v[2] = { from, to };
	if (cli_db_prepare(c,
	                   "SELECT cell, count(*) FROM alert WHERE at >= ?1 AND at < ?2 "
	                   "AND cell IS NOT NULL GROUP BY cell",
	                   2, v, &st) != CLI_EXIT_OK)
		return CLI_EXIT_FAIL;
	return cli_db_walk(c, st, "reading alerts", cli_db_alert_count_row,
	                   &(struct cli_db_ctx){ .cb.alert_count = cb, .arg = arg });
}

static int cli_db_day_task_row(sqlite3_stmt *st, const struct cli_db_ctx *x)
{
	struct cli_db_day_task r = {
		.at = sqlite3_column_int64(st, 0),
		.cell = cli_col_text(st, 1),
		.kind = cli_col_text(st, 2),
		.claimed_by = (const char *)sqlite3_column_text(st, 3),
		.claimed_at = sqlite3_column_int64(st, 4),
		.resolved_at = sqlite3_column_int64(st, 5),
	};
	return x->cb.day_task(x->arg, &r);
}

int cli_db_each_day_task(struct cli *c, int64_t from, int64_t to, cli_db_day_task_cb *cb, void *arg)
{
	sqlite3_stmt *st;
	int64_t v[2] = { from, to };
	/* k: the alert that carries the claim — the task itself, or for an
	 * overdue episode the first of its alerts that was claimed (a claim
	 * lands on the episode's newest alert, a repeat). An ended episode's
	 * alerts lie between its start and resolved_at: the alert_cell range
	 * stays within it however old the day. */
	if (cli_db_prepare(c,
	                   "SELECT a.at, a.cell, a.kind, k.claimed_by, k.claimed_at, "
	                   "a.resolved_at FROM alert a LEFT JOIN alert k ON k.id = "
	                   "CASE WHEN a.kind = 'overdue' THEN (SELECT b.id FROM alert b "
	                   "WHERE b.cell = a.cell AND b.kind = 'overdue' AND b.at >= a.at "
	                   "AND b.at <= coalesce(a.resolved_at, 9223372036854775807) "
	                   "AND b.resolved_at IS a.resolved_at AND b.claimed_by IS NOT NULL "
	                   "ORDER BY b.claimed_at, b.id LIMIT 1) ELSE a.id END "
	                   "WHERE a.at >= ?1 AND a.at < ?2 AND (a.kind IN ('event', 'reading') "
	                   "OR (a.kind = 'overdue' AND a.repeat = 0)) ORDER BY a.at, a.id",
	                   2, v, &st) != CLI_EXIT_OK)
		return CLI_EXIT_FAIL;
	return cli_db_walk(c, st, "reading alerts", cli_db_day_task_row,
	                   &(struct cli_db_ctx){ .cb.day_task = cb, .arg = arg });
}

static int cli_db_event_row(sqlite3_stmt *st, const struct cli_db_ctx *x)
{
	struct cli_db_event r = {
		.cell = cli_col_text(st, 0),
		.ts = sqlite3_column_int64(st, 1),
		.worker = cli_col_text(st, 2),
		.type = cli_col_text(st, 3),
		.has_value = sqlite3_column_type(st, 4) != SQLITE_NULL,
		.value = sqlite3_column_double(st, 4),
		.flags = cli_col_text(st, 5),
		.note = sqlite3_column_type(st, 6) == SQLITE_NULL ? NULL : cli_col_text(st, 6),
	};
	return x->cb.event(x->arg, &r);
}

int cli_db_each_day_event(struct cli *c, int64_t from, int64_t to, cli_db_event_cb *cb, void *arg)
{
	sqlite3_stmt *st;
	int64_t v[2] = { from, to };
	/* The ts range is what narrows a year to a day: the event_ts index
	 * serves it and SQLite sorts the day's rows, instead of walking the
	 * (cell, ts) index over the whole history to avoid that sort. */
	if (cli_db_prepare(c,
	                   "SELECT cell, ts, worker, type, value, flags, note FROM event "
	                   "INDEXED BY event_ts WHERE ts >= ?1 AND ts < ?2 ORDER BY cell, ts",
	                   2, v, &st) != CLI_EXIT_OK)
		return CLI_EXIT_FAIL;
	return cli_db_walk(c, st, "reading the day's events", cli_db_event_row,
	                   &(struct cli_db_ctx){ .cb.event = cb, .arg = arg });
}

/* ------------------------------------------------------------ listings */

struct cli_db_cursor {
	sqlite3_stmt *st;
	const char *what; /* for a failed step */
};

void cli_db_cursor_close(struct cli_db_cursor *q)
{
	if (!q)
		return;
	sqlite3_finalize(q->st);
	free(q);
}

/* Append a fixed SQL fragment; the buffer is sized for every fragment of
 * a command at once, so this only guards against a future edit. */
static int sql_add(char *buf, size_t len, const char *frag)
{
	size_t n = strlen(buf);
	if (n + strlen(frag) + 1 > len)
		return -1;
	memcpy(buf + n, frag, strlen(frag) + 1);
	return 0;
}

static int bind_text_opt(struct cli *c, sqlite3_stmt *st, int idx, const char *v)
{
	if (v && sqlite3_bind_text(st, idx, v, -1, SQLITE_STATIC) != SQLITE_OK)
		return cli_db_fail(c, "binding");
	return CLI_EXIT_OK;
}

static int cli_db_cursor_new(struct cli *c, const char *sql, const char *what,
                             struct cli_db_cursor **out)
{
	struct cli_db_cursor *q = calloc(1, sizeof(*q));
	*out = NULL;
	if (!q) {
		cli_error("out of memory");
		return CLI_EXIT_FAIL;
	}
	q->what = what;
	if (cli_prepare(c, sql, &q->st) != CLI_EXIT_OK) {
		free(q);
		return CLI_EXIT_FAIL;
	}
	*out = q;
	return CLI_EXIT_OK;
}

/* SQLITE_ROW: *more and a row to read; SQLITE_DONE: !*more. */
static int cli_db_cursor_step(struct cli *c, struct cli_db_cursor *q, bool *more)
{
	int rc = sqlite3_step(q->st);
	*more = rc == SQLITE_ROW;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return cli_db_fail(c, q->what);
	return CLI_EXIT_OK;
}

static const char *cli_db_text_or_null(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? NULL : cli_col_text(st, i);
}

int cli_db_events_open(struct cli *c, const struct cli_db_events_filter *f,
                       struct cli_db_cursor **out)
{
	char sql[1024] =
	        "SELECT * FROM (SELECT id, ts, cell, worker, type, value, lat, lon, "
	        "note, photo, flags, msg_id, recv_ms FROM event WHERE ts >= ?4 AND ts < ?5";
	struct cli_db_cursor *q;
	int code;

	*out = NULL;
	if ((f->cell && sql_add(sql, sizeof(sql), " AND cell = ?1") < 0) ||
	    (f->worker && sql_add(sql, sizeof(sql), " AND worker = ?2") < 0) ||
	    (f->type && sql_add(sql, sizeof(sql), " AND type = ?3") < 0) ||
	    sql_add(sql, sizeof(sql), " ORDER BY ts DESC, id DESC LIMIT ?6) ORDER BY ts, id") < 0) {
		cli_error("query too long");
		return CLI_EXIT_FAIL;
	}
	if ((code = cli_db_cursor_new(c, sql, "reading events", &q)) != CLI_EXIT_OK)
		return code;
	if ((code = bind_text_opt(c, q->st, 1, f->cell)) != CLI_EXIT_OK ||
	    (code = bind_text_opt(c, q->st, 2, f->worker)) != CLI_EXIT_OK ||
	    (code = bind_text_opt(c, q->st, 3, f->type)) != CLI_EXIT_OK) {
		cli_db_cursor_close(q);
		return code;
	}
	if (sqlite3_bind_int64(q->st, 4, f->since) != SQLITE_OK ||
	    sqlite3_bind_int64(q->st, 5, f->until) != SQLITE_OK ||
	    sqlite3_bind_int64(q->st, 6, f->limit) != SQLITE_OK) {
		code = cli_db_fail(c, "binding");
		cli_db_cursor_close(q);
		return code;
	}
	*out = q;
	return CLI_EXIT_OK;
}

int cli_db_events_next(struct cli *c, struct cli_db_cursor *q, struct cli_db_event_row *row,
                       bool *more)
{
	sqlite3_stmt *st = q->st;
	if (cli_db_cursor_step(c, q, more) != CLI_EXIT_OK)
		return CLI_EXIT_FAIL;
	if (!*more)
		return CLI_EXIT_OK;
	*row = (struct cli_db_event_row){
		.id = sqlite3_column_int64(st, 0),
		.ts = sqlite3_column_int64(st, 1),
		.cell = cli_col_text(st, 2),
		.worker = cli_col_text(st, 3),
		.type = cli_col_text(st, 4),
		.has_value = sqlite3_column_type(st, 5) != SQLITE_NULL,
		.value = sqlite3_column_double(st, 5),
		.has_lat = sqlite3_column_type(st, 6) != SQLITE_NULL,
		.lat = sqlite3_column_double(st, 6),
		.has_lon = sqlite3_column_type(st, 7) != SQLITE_NULL,
		.lon = sqlite3_column_double(st, 7),
		.note = cli_db_text_or_null(st, 8),
		.photo = cli_db_text_or_null(st, 9),
		.flags = cli_col_text(st, 10),
		.msg_id = cli_db_text_or_null(st, 11),
		.recv_ms = sqlite3_column_int64(st, 12),
	};
	return CLI_EXIT_OK;
}

int cli_db_rejected_open(struct cli *c, int64_t since_ms, const char *reason,
                         struct cli_db_cursor **out)
{
	char sql[512] = "SELECT id, recv_ms, reason, topic, detail, payload, payload_len "
	                "FROM rejected WHERE recv_ms >= ?1";
	struct cli_db_cursor *q;
	int code;

	*out = NULL;
	if ((reason && sql_add(sql, sizeof(sql), " AND reason = ?2") < 0) ||
	    sql_add(sql, sizeof(sql), " ORDER BY recv_ms, id") < 0) {
		cli_error("query too long");
		return CLI_EXIT_FAIL;
	}
	if ((code = cli_db_cursor_new(c, sql, "reading rejected messages", &q)) != CLI_EXIT_OK)
		return code;
	if ((code = bind_text_opt(c, q->st, 2, reason)) != CLI_EXIT_OK) {
		cli_db_cursor_close(q);
		return code;
	}
	if (sqlite3_bind_int64(q->st, 1, since_ms) != SQLITE_OK) {
		code = cli_db_fail(c, "binding");
		cli_db_cursor_close(q);
		return code;
	}
	*out = q;
	return CLI_EXIT_OK;
}

int cli_db_rejected_next(struct cli *c, struct cli_db_cursor *q, struct cli_db_rejected_row *row,
                         bool *more)
{
	sqlite3_stmt *st = q->st;
	if (cli_db_cursor_step(c, q, more) != CLI_EXIT_OK)
		return CLI_EXIT_FAIL;
	if (!*more)
		return CLI_EXIT_OK;
	bool blob = sqlite3_column_type(st, 5) == SQLITE_BLOB;
	*row = (struct cli_db_rejected_row){
		.id = sqlite3_column_int64(st, 0),
		.recv_ms = sqlite3_column_int64(st, 1),
		.reason = cli_col_text(st, 2),
		.topic = cli_col_text(st, 3),
		.detail = cli_col_text(st, 4),
		.payload_blob = blob,
		.payload_len = sqlite3_column_int64(st, 6),
	};
	if (blob) {
		const void *p = sqlite3_column_blob(st, 5);
		int n = sqlite3_column_bytes(st, 5);
		row->payload = p ? p : "";
		row->payload_bytes = (size_t)(n > 0 ? n : 0);
	} else {
		row->payload = cli_db_text_or_null(st, 5);
	}
	return CLI_EXIT_OK;
}

int cli_db_alerts_open(struct cli *c, int64_t since, bool pending, struct cli_db_cursor **out)
{
	char sql[1024] =
	        "SELECT a.id, a.at, a.kind, a.cell, a.repeat, a.text, o.sink, o.delivery_id, "
	        "d.state, d.tries, d.last_error, d.done_ms, d.ext_id, a.claimed_by, a.claimed_at, "
	        "a.resolved_at FROM alert a "
	        "LEFT JOIN outbox o ON o.alert_id = a.id "
	        "LEFT JOIN delivery d ON d.id = o.delivery_id WHERE a.at >= ?1";
	struct cli_db_cursor *q;
	int code;

	*out = NULL;
	if ((pending && sql_add(sql, sizeof(sql),
	                        " AND EXISTS (SELECT 1 FROM outbox o2 JOIN delivery d2 ON "
	                        "d2.id = o2.delivery_id WHERE o2.alert_id = a.id AND "
	                        "d2.state <> 'delivered')") < 0) ||
	    sql_add(sql, sizeof(sql), " ORDER BY a.id, o.sink") < 0) {
		cli_error("query too long");
		return CLI_EXIT_FAIL;
	}
	if ((code = cli_db_cursor_new(c, sql, "reading alerts", &q)) != CLI_EXIT_OK)
		return code;
	if (sqlite3_bind_int64(q->st, 1, since) != SQLITE_OK) {
		code = cli_db_fail(c, "binding");
		cli_db_cursor_close(q);
		return code;
	}
	*out = q;
	return CLI_EXIT_OK;
}

int cli_db_alerts_next(struct cli *c, struct cli_db_cursor *q, struct cli_db_alert_row *row,
                       bool *more)
{
	sqlite3_stmt *st = q->st;
	if (cli_db_cursor_step(c, q, more) != CLI_EXIT_OK)
		return CLI_EXIT_FAIL;
	if (!*more)
		return CLI_EXIT_OK;
	*row = (struct cli_db_alert_row){
		.id = sqlite3_column_int64(st, 0),
		.at = sqlite3_column_int64(st, 1),
		.kind = cli_col_text(st, 2),
		.cell = cli_db_text_or_null(st, 3),
		.repeat = sqlite3_column_int64(st, 4),
		.text = cli_col_text(st, 5),
		.sink = cli_db_text_or_null(st, 6),
		.delivery = sqlite3_column_int64(st, 7),
		.state = cli_db_text_or_null(st, 8),
		.tries = sqlite3_column_int64(st, 9),
		.last_error = cli_db_text_or_null(st, 10),
		.has_done = sqlite3_column_type(st, 11) != SQLITE_NULL,
		.done_ms = sqlite3_column_int64(st, 11),
		.ext_id = cli_db_text_or_null(st, 12),
		.claimed_by = cli_db_text_or_null(st, 13),
		.has_claimed_at = sqlite3_column_type(st, 14) != SQLITE_NULL,
		.claimed_at = sqlite3_column_int64(st, 14),
		.has_resolved_at = sqlite3_column_type(st, 15) != SQLITE_NULL,
		.resolved_at = sqlite3_column_int64(st, 15),
	};
	return CLI_EXIT_OK;
}

/* ------------------------------------------------------------ workers */

/* A cursor over sql with ?1 = from and ?2 = to bound: the range queries. */
static int cli_db_cursor_range(struct cli *c, const char *sql, const char *what, int64_t from,
                               int64_t to, struct cli_db_cursor **out)
{
	struct cli_db_cursor *q;
	int code = cli_db_cursor_new(c, sql, what, &q);

	*out = NULL;
	if (code != CLI_EXIT_OK)
		return code;
	if (sqlite3_bind_int64(q->st, 1, from) != SQLITE_OK ||
	    sqlite3_bind_int64(q->st, 2, to) != SQLITE_OK) {
		code = cli_db_fail(c, "binding");
		cli_db_cursor_close(q);
		return code;
	}
	*out = q;
	return CLI_EXIT_OK;
}

int cli_db_worker_events_open(struct cli *c, int64_t from, int64_t to, struct cli_db_cursor **out)
{
	/* From 60 s before the range: a check-in's previous one may be just
	 * before it (rapid). Ordered so that each worker's cells come
	 * together, each in patrol-time order. */
	return cli_db_cursor_range(c,
	                           "SELECT worker, cell, type, ts, "
	                           "instr(',' || flags || ',', ',late,') > 0 FROM event "
	                           "WHERE ts >= ?1 - 60 AND ts < ?2 "
	                           "ORDER BY worker, cell, ts, id",
	                           "reading events", from, to, out);
}

int cli_db_worker_events_next(struct cli *c, struct cli_db_cursor *q,
                              struct cli_db_worker_event *row, bool *more)
{
	if (cli_db_cursor_step(c, q, more) != CLI_EXIT_OK)
		return CLI_EXIT_FAIL;
	if (*more)
		*row = (struct cli_db_worker_event){
			.worker = cli_col_text(q->st, 0),
			.cell = cli_col_text(q->st, 1),
			.type = cli_col_text(q->st, 2),
			.ts = sqlite3_column_int64(q->st, 3),
			.late = sqlite3_column_int(q->st, 4) != 0,
		};
	return CLI_EXIT_OK;
}

int cli_db_worker_claims_open(struct cli *c, int64_t from, int64_t to, struct cli_db_cursor **out)
{
	return cli_db_cursor_range(c,
	                           "SELECT claimed_by, claimed_at - at, resolved_at - at "
	                           "FROM alert WHERE claimed_at >= ?1 AND claimed_at < ?2 "
	                           "ORDER BY claimed_by, claimed_at",
	                           "reading claims", from, to, out);
}

int cli_db_worker_claims_next(struct cli *c, struct cli_db_cursor *q,
                              struct cli_db_worker_claim *row, bool *more)
{
	if (cli_db_cursor_step(c, q, more) != CLI_EXIT_OK)
		return CLI_EXIT_FAIL;
	if (*more)
		*row = (struct cli_db_worker_claim){
			.by = cli_col_text(q->st, 0),
			.to_claim_s = sqlite3_column_int64(q->st, 1),
			.resolved = sqlite3_column_type(q->st, 2) != SQLITE_NULL,
			.to_resolve_s = sqlite3_column_int64(q->st, 2),
		};
	return CLI_EXIT_OK;
}

/* ------------------------------------------------------------ admin */

int cli_db_pause_put(struct cli *c, const char *cell, int64_t since, bool has_until, int64_t until,
                     const char *reason)
{
	sqlite3_stmt *st;
	int code = CLI_EXIT_OK;
	if (cli_prepare(c,
	                "INSERT OR REPLACE INTO pause (cell, since, until, reason) "
	                "VALUES (?1, ?2, ?3, ?4)",
	                &st) != CLI_EXIT_OK)
		return CLI_EXIT_FAIL;
	if (sqlite3_bind_text(st, 1, cell, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, since) != SQLITE_OK ||
	    (has_until ? sqlite3_bind_int64(st, 3, until) : sqlite3_bind_null(st, 3)) !=
	            SQLITE_OK ||
	    (reason ? sqlite3_bind_text(st, 4, reason, -1, SQLITE_STATIC)
	            : sqlite3_bind_null(st, 4)) != SQLITE_OK)
		code = cli_db_fail(c, "binding");
	else if (sqlite3_step(st) != SQLITE_DONE)
		code = cli_db_fail(c, "cannot write the pause");
	sqlite3_finalize(st);
	return code;
}

int cli_db_pause_end(struct cli *c, const char *cell, int64_t at, bool *was)
{
	sqlite3_stmt *st;
	int code = CLI_EXIT_OK;
	*was = false;
	if (cli_prepare(c,
	                "UPDATE pause SET until = ?2 WHERE cell = ?1 "
	                "AND (until IS NULL OR until > ?2)",
	                &st) != CLI_EXIT_OK)
		return CLI_EXIT_FAIL;
	if (sqlite3_bind_text(st, 1, cell, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, at) != SQLITE_OK)
		code = cli_db_fail(c, "binding");
	else if (sqlite3_step(st) != SQLITE_DONE)
		code = cli_db_fail(c, "cannot end the pause");
	else
		*was = sqlite3_changes(c->db) > 0;
	sqlite3_finalize(st);
	return code;
}

int cli_db_vacuum_into(struct cli *c, const char *path)
{
	sqlite3_stmt *st;
	int code = CLI_EXIT_OK;
	if (cli_prepare(c, "VACUUM INTO ?1", &st) != CLI_EXIT_OK)
		return CLI_EXIT_FAIL;
	if (sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC) != SQLITE_OK)
		code = cli_db_fail(c, "binding");
	else if (sqlite3_step(st) != SQLITE_DONE)
		code = cli_db_fail(c, "backup failed");
	sqlite3_finalize(st);
	return code;
}

/* --- claims (gridpatrol claim) --- */

static int cli_db_task_row(struct cli *c, sqlite3_stmt *st, struct cli_db_task *t, bool *found)
{
	int rc = sqlite3_step(st);
	*found = false;
	if (rc == SQLITE_ROW) {
		const char *kind = (const char *)sqlite3_column_text(st, 1);
		const char *cell = (const char *)sqlite3_column_text(st, 2);
		const char *by = (const char *)sqlite3_column_text(st, 4);
		*found = true;
		t->id = sqlite3_column_int64(st, 0);
		snprintf(t->kind, sizeof(t->kind), "%s", kind ? kind : "");
		snprintf(t->cell, sizeof(t->cell), "%s", cell ? cell : "");
		t->at = sqlite3_column_int64(st, 3);
		t->claimed = by != NULL;
		snprintf(t->claimed_by, sizeof(t->claimed_by), "%s", by ? by : "");
		t->resolved = sqlite3_column_int(st, 5) != 0;
	} else if (rc != SQLITE_DONE) {
		sqlite3_finalize(st);
		return cli_db_fail(c, "cannot read alerts");
	}
	sqlite3_finalize(st);
	return CLI_EXIT_OK;
}

int cli_db_task_by_id(struct cli *c, int64_t id, struct cli_db_task *t, bool *found)
{
	sqlite3_stmt *st;
	*found = false;
	if (cli_prepare(c,
	                "SELECT id, kind, cell, at, claimed_by, resolved_at IS NOT NULL "
	                "FROM alert WHERE id = ?1",
	                &st) != CLI_EXIT_OK)
		return CLI_EXIT_FAIL;
	if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK) {
		sqlite3_finalize(st);
		return cli_db_fail(c, "binding");
	}
	return cli_db_task_row(c, st, t, found);
}

int cli_db_task_latest(struct cli *c, const char *cell, int64_t at_most, struct cli_db_task *t,
                       bool *found)
{
	sqlite3_stmt *st;
	*found = false;
	/* The daemon's own choice (outbox.c): the newest open task raised
	 * at or before the claim. */
	if (cli_prepare(c,
	                "SELECT id, kind, cell, at, claimed_by, 0 FROM alert WHERE cell = ?1 "
	                "AND resolved_at IS NULL AND kind IN ('overdue', 'event', 'reading') "
	                "AND at <= ?2 ORDER BY at DESC, id DESC LIMIT 1",
	                &st) != CLI_EXIT_OK)
		return CLI_EXIT_FAIL;
	if (sqlite3_bind_text(st, 1, cell, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, at_most) != SQLITE_OK) {
		sqlite3_finalize(st);
		return cli_db_fail(c, "binding");
	}
	return cli_db_task_row(c, st, t, found);
}

int cli_db_claim_put(struct cli *c, int64_t at, const char *by, const char *cell, int64_t alert_id)
{
	sqlite3_stmt *st;
	int code = CLI_EXIT_OK;
	if (cli_prepare(c,
	                "INSERT INTO claim_request (at, by, cell, alert_id) "
	                "VALUES (?1, ?2, ?3, ?4)",
	                &st) != CLI_EXIT_OK)
		return CLI_EXIT_FAIL;
	if (sqlite3_bind_int64(st, 1, at) != SQLITE_OK ||
	    sqlite3_bind_text(st, 2, by, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 3, cell, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 4, alert_id) != SQLITE_OK)
		code = cli_db_fail(c, "binding");
	else if (sqlite3_step(st) != SQLITE_DONE)
		code = cli_db_fail(c, "cannot write the claim");
	sqlite3_finalize(st);
	return code;
}
