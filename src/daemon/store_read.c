/*
 * store_read: the store's readers of daemon state — what watch and alert
 * rebuild from the database (known cells, open overdue alerts, reading
 * levels, pauses) and the daily digest's figures — each handing typed rows
 * to a callback (store.h) — and the office's claim requests, read one at a
 * time and deleted in the batch that carries them out.
 *
 * Part of the store module, kept apart from store.c (connection, schema,
 * batches, writes, retention) so that each file holds one concern; it
 * sees the writer connection only through store_db() and reports failures
 * through store_status_of(), as outbox does. Never logs.
 */
#include "store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

/* Rows of `cell` and `pause` share one shape: a text key and two integers,
 * the second possibly NULL. */
struct store_read_row {
	const char *key;
	int64_t i0, i1;
	bool null1;
};
typedef int store_read_cb(void *arg, const struct store_read_row *row);

static enum store_status store_read_each(struct store *s, const char *sql, store_read_cb *cb,
                                         void *arg, const char *what)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_status_of(s, rc, what);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_read_row row = {
			.key = (const char *)sqlite3_column_text(st, 0),
			.i0 = sqlite3_column_int64(st, 1),
			.i1 = sqlite3_column_int64(st, 2),
			.null1 = sqlite3_column_type(st, 2) == SQLITE_NULL,
		};
		if (!row.key)
			continue;
		if (cb(arg, &row) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	enum store_status ret = rc == SQLITE_DONE ? STORE_OK : store_status_of(s, rc, what);
	sqlite3_finalize(st);
	return ret;
}

struct store_read_known {
	store_known_cb *cb;
	void *arg;
};

static int store_read_known_row(void *arg, const struct store_read_row *row)
{
	struct store_read_known *k = arg;
	struct store_known_cell c = { .cell = row->key, .known_since = row->i0 };
	return k->cb(k->arg, &c);
}

enum store_status store_each_known(struct store *s, store_known_cb *cb, void *arg)
{
	struct store_read_known k = { cb, arg };
	return store_read_each(s, "SELECT id, known_since, 0 FROM cell", store_read_known_row, &k,
	                       "read cells");
}

/* Runs one prepared probe with cell (and type, when given) bound: SQLITE_ROW
 * leaves the row to read, SQLITE_DONE says none; the caller resets. */
static int store_probe(sqlite3_stmt *st, const char *cell, const char *type, int n,
                       const int64_t *ints)
{
	int rc = sqlite3_bind_text(st, 1, cell, -1, SQLITE_STATIC);
	for (int i = 0; rc == SQLITE_OK && i < n; i++)
		rc = sqlite3_bind_int64(st, 2 + i, ints[i]);
	if (rc == SQLITE_OK && type)
		rc = sqlite3_bind_text(st, 2 + n, type, -1, SQLITE_STATIC);
	return rc == SQLITE_OK ? sqlite3_step(st) : rc;
}

static void store_probe_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* Two probes per configured cell through alert_cell (cell, kind, at), so
 * the cost follows the cells, not a year of alerts: the newest overdue
 * alert, then any patrol recovery raised at or after it. Ordered by `at`
 * with the id as tie-break, as the alerts were raised. */
enum store_status store_each_open_overdue(struct store *s, const struct config *cfg,
                                          store_open_overdue_cb *cb, void *arg)
{
	sqlite3_stmt *last = NULL, *rec = NULL;
	int rc = sqlite3_prepare_v2(store_db(s),
	                            "SELECT id, at, repeat FROM alert WHERE cell = ?1 AND "
	                            "kind = 'overdue' ORDER BY at DESC, id DESC LIMIT 1",
	                            -1, &last, NULL);
	/* `+id`: the rowid must not be chosen as the range (it would walk
	 * every cell's alerts since this one). */
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(
		        store_db(s),
		        "SELECT 1 FROM alert WHERE cell = ?1 AND kind = 'recovered' "
		        "AND at >= ?2 AND +id > ?3 AND level IS NULL LIMIT 1",
		        -1, &rec, NULL);
	for (size_t i = 0; rc == SQLITE_OK && i < cfg->n_cells; i++) {
		const char *cell = cfg->cells[i].id;
		rc = store_probe(last, cell, NULL, 0, NULL);
		if (rc != SQLITE_ROW) {
			store_probe_done(last);
			rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
			continue;
		}
		int64_t v[2] = { sqlite3_column_int64(last, 1), sqlite3_column_int64(last, 0) };
		int64_t repeat = sqlite3_column_int64(last, 2);
		store_probe_done(last);
		rc = store_probe(rec, cell, NULL, 2, v);
		store_probe_done(rec);
		if (rc == SQLITE_DONE) {
			rc = SQLITE_OK;
			struct store_open_overdue row = {
				.cell = cell,
				.at = v[0],
				.repeat = (int)repeat,
			};
			if (cb(arg, &row) != 0)
				break;
		} else if (rc == SQLITE_ROW) {
			rc = SQLITE_OK;
		}
	}
	sqlite3_finalize(last);
	sqlite3_finalize(rec);
	return rc == SQLITE_OK ? STORE_OK : store_status_of(s, rc, "read open overdue alerts");
}

/* Per configured cell and threshold type: the newest warn/alarm alert,
 * then any return to normal raised at or after it. The type is only in
 * the alert's doc, so each probe reads the cell's reading alerts newest
 * first until one of this type: one row when a cell has one threshold
 * type. */
enum store_status store_each_level(struct store *s, const struct config *cfg, store_level_cb *cb,
                                   void *arg)
{
	sqlite3_stmt *last = NULL, *rec = NULL;
	int rc = sqlite3_prepare_v2(store_db(s),
	                            "SELECT id, at, level FROM alert WHERE cell = ?1 AND "
	                            "kind = 'reading' AND json_extract(doc, '$.event_type') = ?2 "
	                            "ORDER BY at DESC, id DESC LIMIT 1",
	                            -1, &last, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(
		        store_db(s),
		        "SELECT 1 FROM alert WHERE cell = ?1 AND kind = 'recovered' "
		        "AND at >= ?2 AND +id > ?3 AND level IS NOT NULL "
		        "AND json_extract(doc, '$.event_type') = ?4 LIMIT 1",
		        -1, &rec, NULL);
	for (size_t i = 0; rc == SQLITE_OK && i < cfg->n_cells; i++) {
		const char *cell = cfg->cells[i].id;
		for (size_t e = 0; rc == SQLITE_OK && e < cfg->n_events; e++) {
			const struct config_event *ev = &cfg->events[e];
			if (!ev->has_warn && !ev->has_alarm)
				continue;
			int64_t level = 0, v[2] = { 0, 0 };
			rc = store_probe(last, cell, ev->name, 0, NULL);
			bool found = rc == SQLITE_ROW;
			if (found) {
				const char *w = (const char *)sqlite3_column_text(last, 2);
				v[0] = sqlite3_column_int64(last, 1);
				v[1] = sqlite3_column_int64(last, 0);
				level = w && !strcmp(w, "alarm")  ? 2
				        : w && !strcmp(w, "warn") ? 1
				                                  : 0;
			}
			store_probe_done(last);
			if (found && level > 0) {
				rc = store_probe(rec, cell, ev->name, 2, v);
				store_probe_done(rec);
				if (rc == SQLITE_ROW)
					level = 0;
			}
			if (rc != SQLITE_ROW && rc != SQLITE_DONE)
				break;
			rc = SQLITE_OK;
			struct store_level row = {
				.cell = cell,
				.type = ev->name,
				.level = (int)level,
			};
			if (found && cb(arg, &row) != 0)
				goto out;
		}
	}
out:
	sqlite3_finalize(last);
	sqlite3_finalize(rec);
	return rc == SQLITE_OK ? STORE_OK : store_status_of(s, rc, "read reading levels");
}

struct store_read_pause {
	store_pause_cb *cb;
	void *arg;
};

static int store_read_pause_row(void *arg, const struct store_read_row *row)
{
	struct store_read_pause *p = arg;
	struct store_pause ps = {
		.cell = row->key,
		.since = row->i0,
		.open_ended = row->null1,
		.until = row->i1,
	};
	return p->cb(p->arg, &ps);
}

enum store_status store_each_pause(struct store *s, store_pause_cb *cb, void *arg)
{
	struct store_read_pause p = { cb, arg };
	return store_read_each(s, "SELECT cell, since, until FROM pause", store_read_pause_row, &p,
	                       "read pauses");
}

/* ------------------------------------------------------------ digest */

/* Prepares sql and binds the day's bounds as ?1 and ?2. */
static int store_read_day(struct store *s, const char *sql, int64_t from, int64_t to,
                          sqlite3_stmt **st)
{
	int rc = sqlite3_prepare_v2(store_db(s), sql, -1, st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(*st, 1, from);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(*st, 2, to);
	return rc;
}

enum store_status store_each_day_cell_type(struct store *s, int64_t from, int64_t to,
                                           store_cell_type_cb *cb, void *arg)
{
	sqlite3_stmt *st = NULL;
	int rc = store_read_day(s,
	                        "SELECT cell, type FROM event WHERE ts >= ?1 AND ts < ?2 "
	                        "GROUP BY cell, type",
	                        from, to, &st);
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_cell_type row = {
			.cell = (const char *)sqlite3_column_text(st, 0),
			.type = (const char *)sqlite3_column_text(st, 1),
		};
		if (cb(arg, &row) != 0) {
			rc = SQLITE_DONE;
			break;
		}
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? STORE_OK : store_status_of(s, rc, "digest cells");
}

enum store_status store_each_day_type_count(struct store *s, int64_t from, int64_t to,
                                            store_type_count_cb *cb, void *arg)
{
	sqlite3_stmt *st = NULL;
	int rc = store_read_day(s,
	                        "SELECT type, count(*) FROM event WHERE ts >= ?1 AND ts < ?2 "
	                        "GROUP BY type ORDER BY type",
	                        from, to, &st);
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_type_count row = {
			.type = (const char *)sqlite3_column_text(st, 0),
			.count = sqlite3_column_int64(st, 1),
		};
		if (cb(arg, &row) != 0) {
			rc = SQLITE_DONE;
			break;
		}
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? STORE_OK : store_status_of(s, rc, "digest figures");
}

/* ------------------------------------------------------------ office claims */

enum store_status store_next_claim_request(struct store *s, struct store_claim_request *out,
                                           bool *found)
{
	sqlite3_stmt *st;
	*found = false;
	int rc = sqlite3_prepare_v2(store_db(s),
	                            "SELECT id, at, by, cell, alert_id FROM claim_request "
	                            "ORDER BY id LIMIT 1",
	                            -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_status_of(s, rc, "read claim requests");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *by = (const char *)sqlite3_column_text(st, 2);
		const char *cell = (const char *)sqlite3_column_text(st, 3);
		*found = true;
		out->id = sqlite3_column_int64(st, 0);
		out->at = sqlite3_column_int64(st, 1);
		snprintf(out->by, sizeof(out->by), "%s", by ? by : "");
		snprintf(out->cell, sizeof(out->cell), "%s", cell ? cell : "");
		out->alert_id = sqlite3_column_int64(st, 4);
	}
	enum store_status ret = rc == SQLITE_ROW || rc == SQLITE_DONE
	                                ? STORE_OK
	                                : store_status_of(s, rc, "read claim requests");
	sqlite3_finalize(st);
	return ret;
}

enum store_status store_claim_request_done(struct store *s, int64_t id)
{
	sqlite3_stmt *st;
	enum store_status ret = store_begin(s);
	if (ret != STORE_OK)
		return ret;
	int rc = sqlite3_prepare_v2(store_db(s), "DELETE FROM claim_request WHERE id = ?1", -1, &st,
	                            NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_bind_int64(st, 1, id)) == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		ret = store_status_of(s, rc, "delete claim request");
	sqlite3_finalize(st);
	return ret;
}
