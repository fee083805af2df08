/*
 * cli_db: the CLI's fixed read-only queries, typed rows to callbacks
 * (see cli_db.h).
 */
#include "cli_db.h"

#include <stdlib.h>

/* The caller's callback, whichever query's it is. */
struct cli_db_ctx {
	union {
		cli_db_known_cb *known;
		cli_db_pause_cb *pause;
		cli_db_span_cb *span;
		cli_db_alert_count_cb *alert_count;
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
		.cell = cli_col_text(st, 0), .type = cli_col_text(st, 1),
		.first_ts = sqlite3_column_int64(st, 2), .last_ts = sqlite3_column_int64(st, 3),
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
	char *non_patrol;       /* bound as ?2; must outlive st's bindings */
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
	if (cli_prepare(c, "SELECT ts FROM event WHERE cell = ?1 AND ts < ?3 AND type NOT IN "
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

int cli_db_each_alert_count(struct cli *c, int64_t from, int64_t to,
                            cli_db_alert_count_cb *cb, void *arg)
{
	sqlite3_stmt *st;
	int64_t v[2] = { from, to };
	if (cli_db_prepare(c, "SELECT cell, count(*) FROM alert WHERE at >= ?1 AND at < ?2 "
	                      "AND cell IS NOT NULL GROUP BY cell", 2, v, &st) != CLI_EXIT_OK)
		return CLI_EXIT_FAIL;
	return cli_db_walk(c, st, "reading alerts", cli_db_alert_count_row,
	                   &(struct cli_db_ctx){ .cb.alert_count = cb, .arg = arg });
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

int cli_db_each_day_event(struct cli *c, int64_t from, int64_t to, cli_db_event_cb *cb,
                          void *arg)
{
	sqlite3_stmt *st;
	int64_t v[2] = { from, to };
	/* The ts range is what narrows a year to a day: the event_ts index
	 * serves it and SQLite sorts the day's rows, instead of walking the
	 * (cell, ts) index over the whole history to avoid that sort. */
	if (cli_db_prepare(c, "SELECT cell, ts, worker, type, value, flags, note FROM event "
	                      "INDEXED BY event_ts WHERE ts >= ?1 AND ts < ?2 ORDER BY cell, ts",
	                   2, v, &st) != CLI_EXIT_OK)
		return CLI_EXIT_FAIL;
	return cli_db_walk(c, st, "reading the day's events", cli_db_event_row,
	                   &(struct cli_db_ctx){ .cb.event = cb, .arg = arg });
}
