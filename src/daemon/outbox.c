/*
 * outbox: the durable half of alert delivery, on the daemon's writer
 * connection.
 *
 * An alert row is written once; for every sink that wants its kind an
 * outbox row ties it to a delivery row, which carries the smtpd-style state
 * (pending → inflight → delivered | expired), the time of the next try and
 * the count of failed tries. Grouping is nothing more than several outbox
 * rows pointing at one delivery. Every write joins the caller's batch
 * (store_begin is idempotent) and is committed by the daemon's check hook
 * together with whatever else that loop pass changed; this module never
 * commits, never logs, and reports failures as a store_status whose
 * message store_errmsg() holds.
 *
 * The delivery JSON is assembled when a try starts rather than stored, so a
 * grouped delivery picks up every alert that joined it during its window.
 *
 * It is the store's side of the alert tables: every statement against
 * alert, delivery and outbox that the daemon runs while it is up lives
 * here (alert asks its questions about past alerts through it too), and
 * only the rebuild readers (store_read.c) and retention (store.c) also
 * read them.
 */
#include "outbox.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct outbox {
	struct store *s;
	sqlite3 *db;
	sqlite3_stmt *recover;
	sqlite3_stmt *put_alert;
	sqlite3_stmt *find_group;
	sqlite3_stmt *put_delivery;
	sqlite3_stmt *put_outbox;
	sqlite3_stmt *next_due;
	sqlite3_stmt *alerts_of;
	sqlite3_stmt *next_time;
	sqlite3_stmt *mark_inflight;
	sqlite3_stmt *mark_delivered;
	sqlite3_stmt *mark_failed;
	sqlite3_stmt *mark_expired;
	sqlite3_stmt *put_held;
	sqlite3_stmt *first_overdue, *count_overdue, *count_tasks;
	sqlite3_stmt *task_by_id, *task_latest, *claim, *episode_claim, *resolve;
	sqlite3_stmt *sp_begin, *sp_release, *sp_undo;
};

/*
 * 'inflight' rows count as due alongside 'pending' ones. The deliver module
 * runs at most one try per sink and asks for the next delivery only while
 * that sink is idle, so any 'inflight' row it can see is stale: its try's
 * outcome was written into a batch that was rolled back (disk full). Taking
 * it up again keeps the at-least-once promise without waiting for a restart.
 */
#define OUTBOX_DUE_STATES "state IN ('pending','inflight')"

static const struct {
	size_t off;
	const char *sql;
} outbox_sql[] = {
	{ offsetof(struct outbox, recover),
	  "UPDATE delivery SET state = 'pending' WHERE state = 'inflight'" },
	{ offsetof(struct outbox, put_alert),
	  "INSERT INTO alert (kind, cell, at, due, repeat, worker, event_id, level, value, "
	  "text, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)" },
	/* The open group of a sink: untried, still pending, created within
	 * the window. A delivery that has been tried (or is being tried) is
	 * closed, because its recipients may already have seen it. */
	{ offsetof(struct outbox, find_group),
	  "SELECT id FROM delivery WHERE sink = ?1 AND state = 'pending' AND tries = 0 "
	  "AND created_ms > ?2 ORDER BY id DESC LIMIT 1" },
	{ offsetof(struct outbox, put_delivery),
	  "INSERT INTO delivery (sink, state, created_ms, next_ms) "
	  "VALUES (?1, 'pending', ?2, ?3)" },
	{ offsetof(struct outbox, put_outbox),
	  "INSERT INTO outbox (alert_id, sink, delivery_id) VALUES (?1, ?2, ?3)" },
	{ offsetof(struct outbox, next_due),
	  "SELECT id, tries, created_ms, ext_id FROM delivery WHERE sink = ?1 "
	  "AND " OUTBOX_DUE_STATES " AND next_ms <= ?2 ORDER BY id LIMIT 1" },
	{ offsetof(struct outbox, alerts_of),
	  "SELECT a.id, a.kind, a.cell, a.text, a.doc FROM outbox o "
	  "JOIN alert a ON a.id = o.alert_id WHERE o.delivery_id = ?1 ORDER BY a.id" },
	{ offsetof(struct outbox, next_time),
	  "SELECT min(next_ms) FROM delivery WHERE " OUTBOX_DUE_STATES
	  " AND (?1 IS NULL OR sink = ?1)" },
	{ offsetof(struct outbox, mark_inflight),
	  "UPDATE delivery SET state = 'inflight' WHERE id = ?1" },
	{ offsetof(struct outbox, mark_delivered),
	  "UPDATE delivery SET state = 'delivered', done_ms = ?2 WHERE id = ?1" },
	{ offsetof(struct outbox, mark_failed),
	  "UPDATE delivery SET state = 'pending', next_ms = ?2, tries = tries + 1, "
	  "last_error = ?3 WHERE id = ?1" },
	{ offsetof(struct outbox, mark_expired),
	  "UPDATE delivery SET state = 'expired', done_ms = ?2, tries = tries + 1, "
	  "last_error = ?3 WHERE id = ?1" },
	/* A delivery that already ran from memory (outbox_add_held). */
	{ offsetof(struct outbox, put_held),
	  "INSERT INTO delivery (sink, state, created_ms, next_ms, tries, last_error, done_ms, "
	  "ext_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)" },
	{ offsetof(struct outbox, first_overdue),
	  "SELECT at FROM alert WHERE cell = ?1 AND kind = 'overdue' "
	  "AND repeat = 0 ORDER BY id DESC LIMIT 1" },
	{ offsetof(struct outbox, count_overdue),
	  "SELECT count(*) FROM alert WHERE at >= ?1 AND at < ?2 AND kind = 'overdue'" },
	/* The digest's claims line: event and reading alerts raised in the
	 * range, and overdue episodes begun in it (repeat 0), each claimed
	 * when any alert of the episode was (its rows share resolved_at). */
	{ offsetof(struct outbox, count_tasks),
	  "SELECT count(*), coalesce(sum(claimed), 0) FROM ("
	  "SELECT claimed_by IS NOT NULL AS claimed FROM alert WHERE at >= ?1 AND at < ?2 "
	  "AND kind IN ('event', 'reading') UNION ALL "
	  "SELECT EXISTS (SELECT 1 FROM alert b WHERE b.cell = a.cell AND b.kind = 'overdue' "
	  "AND b.at >= a.at AND b.resolved_at IS a.resolved_at AND b.claimed_by IS NOT NULL) "
	  "FROM alert a WHERE a.at >= ?1 AND a.at < ?2 AND a.kind = 'overdue' AND a.repeat = 0)" },
	/* Claims (SPEC, Claims). The tasks are overdue, event and reading
	 * alerts; an open one has no resolved_at (alert_open covers them). */
	{ offsetof(struct outbox, task_by_id),
	  "SELECT id, kind, cell, at, claimed_by, resolved_at IS NOT NULL FROM alert "
	  "WHERE id = ?1" },
	{ offsetof(struct outbox, task_latest),
	  "SELECT id, kind, cell, at, claimed_by, 0 FROM alert WHERE cell = ?1 AND "
	  "resolved_at IS NULL AND kind IN ('overdue', 'event', 'reading') AND at <= ?2 "
	  "ORDER BY at DESC, id DESC LIMIT 1" },
	/* Reminders are rows of their own, but the task is the overdue
	 * episode (its open rows): a claim naming any of them lands on the
	 * first, where time to claim is measured from, and none lands while
	 * one of them is claimed, so an episode is announced claimed once. */
	{ offsetof(struct outbox, claim),
	  "UPDATE alert SET claimed_by = ?2, claimed_at = ?3 WHERE claimed_by IS NULL AND id = ("
	  "SELECT CASE WHEN t.kind = 'overdue' AND t.resolved_at IS NULL THEN (SELECT b.id "
	  "FROM alert b WHERE b.cell = t.cell AND b.kind = 'overdue' AND b.resolved_at IS NULL "
	  "ORDER BY b.at, b.id LIMIT 1) ELSE t.id END FROM alert t WHERE t.id = ?1) "
	  "AND NOT EXISTS (SELECT 1 FROM alert t JOIN alert b ON b.cell = t.cell "
	  "WHERE t.id = ?1 AND t.kind = 'overdue' AND t.resolved_at IS NULL AND "
	  "b.kind = 'overdue' AND b.resolved_at IS NULL AND b.claimed_by IS NOT NULL) "
	  "RETURNING id" },
	/* The hold runs from when the claim was announced (the episode's
	 * one `claimed` alert for an overdue task, raised at or after the
	 * claim), not from a backfilled claim's own time. */
	{ offsetof(struct outbox, episode_claim),
	  "SELECT claimed_by, claimed_at, h, (SELECT count(*) FROM alert b WHERE b.cell = ?1 AND "
	  "b.resolved_at IS NULL AND b.kind IN ('overdue', 'event', 'reading') AND "
	  "b.kind = 'overdue' AND b.at >= h + ?2) FROM (SELECT claimed_by, claimed_at, "
	  "max(claimed_at, coalesce((SELECT min(c.at) FROM alert c WHERE c.cell = ?1 AND "
	  "c.kind = 'claimed' AND c.at >= a.claimed_at AND "
	  "json_extract(c.doc, '$.claim.kind') = 'overdue'), claimed_at)) AS h "
	  "FROM alert a WHERE cell = ?1 AND "
	  "resolved_at IS NULL AND kind IN ('overdue', 'event', 'reading') AND kind = 'overdue' "
	  "AND claimed_at IS NOT NULL ORDER BY claimed_at DESC LIMIT 1)" },
	/* ?3: the reading type, for readings only; ?4: only alerts raised at
	 * or before it (a late patrol does not end a later event). */
	{ offsetof(struct outbox, resolve),
	  "UPDATE alert SET resolved_at = ?5 WHERE cell = ?1 AND resolved_at IS NULL AND "
	  "kind IN ('overdue', 'event', 'reading') AND kind = ?2 AND at <= ?4 AND "
	  "(?3 IS NULL OR json_extract(doc, '$.event_type') = ?3)" },
	/* An alert and its delivery/outbox rows go in all or nothing, so a
	 * batch committed after a failed add (the daemon's last commit at
	 * shutdown keeps the held alerts written before the failure) never
	 * holds an alert missing some of its sinks. */
	{ offsetof(struct outbox, sp_begin), "SAVEPOINT outbox_alert" },
	{ offsetof(struct outbox, sp_release), "RELEASE outbox_alert" },
	{ offsetof(struct outbox, sp_undo), "ROLLBACK TO outbox_alert" },
};

#define OUTBOX_N_SQL (sizeof(outbox_sql) / sizeof(outbox_sql[0]))

static sqlite3_stmt **outbox_stmt(struct outbox *o, size_t i)
{
	return (sqlite3_stmt **)(void *)((char *)o + outbox_sql[i].off);
}

struct outbox *outbox_new(struct store *s, char *err, size_t errlen)
{
	struct outbox *o = calloc(1, sizeof(*o));
	if (!o) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	o->s = s;
	o->db = store_db(s);
	for (size_t i = 0; i < OUTBOX_N_SQL; i++) {
		int rc = sqlite3_prepare_v3(o->db, outbox_sql[i].sql, -1, SQLITE_PREPARE_PERSISTENT,
		                            outbox_stmt(o, i), NULL);
		if (rc != SQLITE_OK) {
			snprintf(err, errlen, "outbox: prepare: %s", sqlite3_errmsg(o->db));
			outbox_free(o);
			return NULL;
		}
	}
	return o;
}

void outbox_free(struct outbox *o)
{
	if (!o)
		return;
	for (size_t i = 0; i < OUTBOX_N_SQL; i++)
		sqlite3_finalize(*outbox_stmt(o, i));
	free(o);
}

/* Reset after every use, success or not: a statement left mid-step holds
 * a read snapshot and keeps the batch's COMMIT from completing. */
static void outbox_reset(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

static enum store_status outbox_fail(struct outbox *o, sqlite3_stmt *st, int rc, const char *what)
{
	enum store_status ret = store_status_of(o->s, rc, what);
	outbox_reset(st);
	return ret;
}

static enum store_status outbox_step_done(struct outbox *o, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		return outbox_fail(o, st, rc, what);
	outbox_reset(st);
	return STORE_OK;
}

static int outbox_bind_opt_text(sqlite3_stmt *st, int i, const char *v)
{
	return v ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

enum store_status outbox_recover(struct outbox *o)
{
	enum store_status st = store_begin(o->s);
	if (st != STORE_OK)
		return st;
	return outbox_step_done(o, o->recover, "recover deliveries");
}

/* The delivery the alert joins for this sink: the sink's open group, or a
 * new row. */
static enum store_status outbox_delivery_for(struct outbox *o, const struct config_sink *sink,
                                             int64_t now_ms, int64_t *delivery)
{
	int rc;
	int64_t window_ms = sink->group_window_s * 1000;

	if (window_ms > 0) {
		sqlite3_stmt *q = o->find_group;
		if ((rc = sqlite3_bind_text(q, 1, sink->name, -1, SQLITE_STATIC)) != SQLITE_OK ||
		    (rc = sqlite3_bind_int64(q, 2, now_ms - window_ms)) != SQLITE_OK)
			return outbox_fail(o, q, rc, "bind group lookup");
		rc = sqlite3_step(q);
		if (rc == SQLITE_ROW) {
			*delivery = sqlite3_column_int64(q, 0);
			outbox_reset(q);
			return STORE_OK;
		}
		if (rc != SQLITE_DONE)
			return outbox_fail(o, q, rc, "find delivery group");
		outbox_reset(q);
	}

	sqlite3_stmt *ins = o->put_delivery;
	if ((rc = sqlite3_bind_text(ins, 1, sink->name, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(ins, 2, now_ms)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(ins, 3, now_ms + window_ms)) != SQLITE_OK)
		return outbox_fail(o, ins, rc, "bind delivery");
	enum store_status st = outbox_step_done(o, ins, "insert delivery");
	if (st == STORE_OK)
		*delivery = sqlite3_last_insert_rowid(o->db);
	return st;
}

static enum store_status outbox_put_held(struct outbox *o, const struct outbox_held *h,
                                         int64_t created_ms, int64_t *delivery)
{
	static const char *const states[] = { "pending", "delivered", "expired" };
	sqlite3_stmt *ins = o->put_held;
	int rc;

	if ((rc = sqlite3_bind_text(ins, 1, h->sink, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(ins, 2, states[h->state], -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(ins, 3, created_ms)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(ins, 4, h->next_ms)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int(ins, 5, h->tries)) != SQLITE_OK ||
	    (rc = outbox_bind_opt_text(ins, 6, h->last_error)) != SQLITE_OK ||
	    (rc = h->state != OUTBOX_HELD_PENDING ? sqlite3_bind_int64(ins, 7, h->done_ms)
	                                          : sqlite3_bind_null(ins, 7)) != SQLITE_OK ||
	    (rc = outbox_bind_opt_text(ins, 8, h->delivery_id)) != SQLITE_OK)
		return outbox_fail(o, ins, rc, "bind held delivery");
	enum store_status st = outbox_step_done(o, ins, "insert held delivery");
	if (st == STORE_OK)
		*delivery = sqlite3_last_insert_rowid(o->db);
	return st;
}

enum store_status outbox_add(struct outbox *o, const struct config *cfg,
                             const struct outbox_alert *a, int64_t now_ms, int64_t *alert_id)
{
	return outbox_add_held(o, cfg, a, now_ms, NULL, 0, alert_id);
}

static enum store_status outbox_add_rows(struct outbox *o, const struct config *cfg,
                                         const struct outbox_alert *a, const char *kind,
                                         int64_t now_ms, const struct outbox_held *held,
                                         size_t n_held, int64_t *alert_id)
{
	sqlite3_stmt *st = o->put_alert;
	enum store_status ret;
	int rc = SQLITE_OK;

	if ((rc = sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = outbox_bind_opt_text(st, 2, a->cell)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(st, 3, a->at)) != SQLITE_OK ||
	    (rc = a->has_due ? sqlite3_bind_int64(st, 4, a->due) : sqlite3_bind_null(st, 4)) !=
	            SQLITE_OK ||
	    (rc = sqlite3_bind_int(st, 5, a->repeat)) != SQLITE_OK ||
	    (rc = outbox_bind_opt_text(st, 6, a->worker)) != SQLITE_OK ||
	    (rc = a->event_id ? sqlite3_bind_int64(st, 7, a->event_id)
	                      : sqlite3_bind_null(st, 7)) != SQLITE_OK ||
	    (rc = outbox_bind_opt_text(st, 8, a->level)) != SQLITE_OK ||
	    (rc = a->has_value ? sqlite3_bind_double(st, 9, a->value) : sqlite3_bind_null(st, 9)) !=
	            SQLITE_OK ||
	    (rc = sqlite3_bind_text(st, 10, a->text, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text(st, 11, a->doc, -1, SQLITE_STATIC)) != SQLITE_OK)
		return outbox_fail(o, st, rc, "bind alert");
	ret = outbox_step_done(o, st, "insert alert");
	if (ret != STORE_OK)
		return ret;
	int64_t id = sqlite3_last_insert_rowid(o->db);

	for (size_t i = 0; i < cfg->alerts.n_sinks; i++) {
		const struct config_sink *sink = &cfg->alerts.sinks[i];
		int64_t delivery = 0;
		const struct outbox_held *h = NULL;
		if (!(sink->kinds & a->kind))
			continue;
		for (size_t j = 0; j < n_held; j++)
			if (strcmp(held[j].sink, sink->name) == 0)
				h = &held[j];
		if (h)
			ret = outbox_put_held(o, h, now_ms, &delivery);
		else
			ret = outbox_delivery_for(o, sink, now_ms, &delivery);
		if (ret != STORE_OK)
			return ret;
		sqlite3_stmt *ob = o->put_outbox;
		if ((rc = sqlite3_bind_int64(ob, 1, id)) != SQLITE_OK ||
		    (rc = sqlite3_bind_text(ob, 2, sink->name, -1, SQLITE_STATIC)) != SQLITE_OK ||
		    (rc = sqlite3_bind_int64(ob, 3, delivery)) != SQLITE_OK)
			return outbox_fail(o, ob, rc, "bind outbox");
		ret = outbox_step_done(o, ob, "insert outbox");
		if (ret != STORE_OK)
			return ret;
	}
	if (alert_id)
		*alert_id = id;
	return STORE_OK;
}

enum store_status outbox_add_held(struct outbox *o, const struct config *cfg,
                                  const struct outbox_alert *a, int64_t now_ms,
                                  const struct outbox_held *held, size_t n_held, int64_t *alert_id)
{
	const char *kind = config_kind_name(a->kind);
	enum store_status ret;

	if (!kind || !a->text || !a->doc)
		return store_status_of(o->s, SQLITE_MISUSE,
		                       "outbox_add: alert without kind, "
		                       "text or doc");
	ret = store_begin(o->s);
	if (ret != STORE_OK)
		return ret;
	ret = outbox_step_done(o, o->sp_begin, "savepoint");
	if (ret != STORE_OK)
		return ret;
	ret = outbox_add_rows(o, cfg, a, kind, now_ms, held, n_held, alert_id);
	if (ret == STORE_OK)
		return outbox_step_done(o, o->sp_release, "release savepoint");
	/* store_errmsg keeps the first error (these steps do not touch it).
	 * When SQLite has already rolled the whole transaction back (some
	 * SQLITE_FULL cases) there is no savepoint left and nothing to undo:
	 * then the batch's commit fails, which the caller handles. */
	if (sqlite3_step(o->sp_undo) == SQLITE_DONE)
		sqlite3_step(o->sp_release);
	outbox_reset(o->sp_undo);
	outbox_reset(o->sp_release);
	return ret;
}

void outbox_delivery_clear(struct outbox_delivery *d)
{
	free(d->doc);
	free(d->text);
	free(d->cell);
	memset(d, 0, sizeof(*d));
}

/* A text column as a string: NULL stays NULL. */
static const char *outbox_col_text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

/*
 * One alert's object for the delivery: "alert_id" first (as in the SPEC's
 * example), then the stored document's members. kind, cell and text come
 * from the row when the document lacks them, so consumers (and the mqtt
 * sink's topic) can rely on them. A stored document that does not parse —
 * only a bug or a hand-edited database can cause that — is replaced by
 * those row fields rather than blocking the delivery for ever.
 */
static json_t *outbox_alert_object(int64_t id, const char *kind, const char *cell, const char *text,
                                   const char *doc)
{
	json_t *obj = json_object();
	json_t *src = doc ? json_loads(doc, JSON_REJECT_DUPLICATES, NULL) : NULL;
	int rc = 0;

	if (!obj)
		goto fail;
	rc |= json_object_set_new(obj, "alert_id", json_integer(id));
	if (json_is_object(src)) {
		const char *k;
		json_t *v;
		json_object_foreach (src, k, v) {
			if (strcmp(k, "alert_id") != 0)
				rc |= json_object_set(obj, k, v);
		}
	}
	if (!json_object_get(obj, "kind"))
		rc |= json_object_set_new(obj, "kind", json_string(kind ? kind : ""));
	if (!json_object_get(obj, "cell"))
		rc |= json_object_set_new(obj, "cell", cell ? json_string(cell) : json_null());
	if (!json_object_get(obj, "text"))
		rc |= json_object_set_new(obj, "text", json_string(text ? text : ""));
	if (rc != 0)
		goto fail;
	json_decref(src);
	return obj;
fail:
	json_decref(src);
	json_decref(obj);
	return NULL;
}

/* Growable byte buffer for the joined text. */
struct outbox_buf {
	char *p;
	size_t len, cap;
};

static int outbox_buf_add(struct outbox_buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p)
			return -1;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

/* Fill out's alerts, text, doc, first_kind and cell for delivery out->id. */
static enum store_status outbox_assemble(struct outbox *o, struct outbox_delivery *out)
{
	sqlite3_stmt *q = o->alerts_of;
	struct outbox_buf text = { 0 };
	json_t *doc = json_object();
	json_t *alerts = json_array();
	enum store_status ret = STORE_OK;
	int rc;

	if (!doc || !alerts) {
		ret = store_status_of(o->s, SQLITE_NOMEM, "assemble delivery");
		goto out;
	}
	if ((rc = sqlite3_bind_int64(q, 1, out->id)) != SQLITE_OK) {
		ret = outbox_fail(o, q, rc, "bind delivery alerts");
		goto out;
	}
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		int64_t aid = sqlite3_column_int64(q, 0);
		const char *kind = outbox_col_text(q, 1);
		const char *cell = outbox_col_text(q, 2);
		const char *t = outbox_col_text(q, 3);
		json_t *obj = outbox_alert_object(aid, kind, cell, t, outbox_col_text(q, 4));

		if (!obj || json_array_append_new(alerts, obj) != 0 ||
		    (out->n_alerts > 0 && outbox_buf_add(&text, "\n", 1) < 0) ||
		    outbox_buf_add(&text, t ? t : "", t ? strlen(t) : 0) < 0) {
			outbox_reset(q);
			ret = store_status_of(o->s, SQLITE_NOMEM, "assemble delivery");
			goto out;
		}
		if (out->n_alerts == 0) {
			snprintf(out->first_kind, sizeof(out->first_kind), "%s", kind ? kind : "");
			if (cell && !(out->cell = strdup(cell))) {
				outbox_reset(q);
				ret = store_status_of(o->s, SQLITE_NOMEM, "assemble delivery");
				goto out;
			}
		}
		out->n_alerts++;
	}
	if (rc != SQLITE_DONE) {
		ret = outbox_fail(o, q, rc, "read delivery alerts");
		goto out;
	}
	outbox_reset(q);

	if (!text.p && outbox_buf_add(&text, "", 0) < 0) {
		ret = store_status_of(o->s, SQLITE_NOMEM, "assemble delivery");
		goto out;
	}
	if (json_object_set_new(doc, "delivery_id", json_string(out->delivery_id)) != 0 ||
	    json_object_set_new(doc, "sink", json_string(out->sink)) != 0 ||
	    json_object_set_new(doc, "text", json_stringn(text.p, text.len)) != 0 ||
	    json_object_set(doc, "alerts", alerts) != 0 ||
	    !(out->doc = json_dumps(doc, JSON_COMPACT))) {
		ret = store_status_of(o->s, SQLITE_NOMEM, "assemble delivery");
		goto out;
	}
	out->text = text.p;
	text.p = NULL;
out:
	free(text.p);
	json_decref(alerts);
	json_decref(doc);
	return ret;
}

enum store_status outbox_next_due(struct outbox *o, const char *sink, int64_t now_ms,
                                  struct outbox_delivery *out, bool *found)
{
	sqlite3_stmt *q = o->next_due;
	int rc;

	memset(out, 0, sizeof(*out));
	*found = false;
	if (strlen(sink) >= sizeof(out->sink))
		return store_status_of(o->s, SQLITE_MISUSE, "outbox_next_due: sink name too long");
	if ((rc = sqlite3_bind_text(q, 1, sink, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(q, 2, now_ms)) != SQLITE_OK)
		return outbox_fail(o, q, rc, "bind next delivery");
	rc = sqlite3_step(q);
	if (rc == SQLITE_DONE) {
		outbox_reset(q);
		return STORE_OK;
	}
	if (rc != SQLITE_ROW)
		return outbox_fail(o, q, rc, "find next delivery");
	out->id = sqlite3_column_int64(q, 0);
	out->tries = sqlite3_column_int(q, 1);
	out->created_ms = sqlite3_column_int64(q, 2);
	const char *ext = outbox_col_text(q, 3);
	int n = ext ? snprintf(out->delivery_id, sizeof(out->delivery_id), "%s", ext)
	            : snprintf(out->delivery_id, sizeof(out->delivery_id), "%s-%06lld", sink,
	                       (long long)out->id);
	outbox_reset(q);

	strcpy(out->sink, sink);
	if (n < 0 || (size_t)n >= sizeof(out->delivery_id))
		return store_status_of(o->s, SQLITE_TOOBIG, "delivery_id too long");

	enum store_status ret = outbox_assemble(o, out);
	if (ret != STORE_OK) {
		outbox_delivery_clear(out);
		return ret;
	}
	*found = true;
	return STORE_OK;
}

enum store_status outbox_next_time(struct outbox *o, const char *sink, int64_t *out_ms)
{
	sqlite3_stmt *q = o->next_time;
	int rc = outbox_bind_opt_text(q, 1, sink);

	*out_ms = INT64_MAX;
	if (rc != SQLITE_OK)
		return outbox_fail(o, q, rc, "bind next time");
	rc = sqlite3_step(q);
	if (rc != SQLITE_ROW)
		return outbox_fail(o, q, rc, "next delivery time");
	if (sqlite3_column_type(q, 0) != SQLITE_NULL)
		*out_ms = sqlite3_column_int64(q, 0);
	outbox_reset(q);
	return STORE_OK;
}

enum store_status outbox_first_overdue_at(struct outbox *o, const char *cell, int64_t *at,
                                          bool *found)
{
	sqlite3_stmt *q = o->first_overdue;
	int rc = sqlite3_bind_text(q, 1, cell, -1, SQLITE_STATIC);

	*found = false;
	if (rc != SQLITE_OK)
		return outbox_fail(o, q, rc, "first overdue alert");
	rc = sqlite3_step(q);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return outbox_fail(o, q, rc, "first overdue alert");
	if (rc == SQLITE_ROW) {
		*found = true;
		*at = sqlite3_column_int64(q, 0);
	}
	outbox_reset(q);
	return STORE_OK;
}

enum store_status outbox_count_overdue(struct outbox *o, int64_t from, int64_t to, int64_t *out)
{
	sqlite3_stmt *q = o->count_overdue;
	int rc = sqlite3_bind_int64(q, 1, from);

	*out = 0;
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(q, 2, to);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(q);
	if (rc != SQLITE_ROW)
		return outbox_fail(o, q, rc, "digest figures");
	*out = sqlite3_column_int64(q, 0);
	outbox_reset(q);
	return STORE_OK;
}

enum store_status outbox_count_tasks(struct outbox *o, int64_t from, int64_t to, int64_t *tasks,
                                     int64_t *claimed)
{
	sqlite3_stmt *q = o->count_tasks;
	int rc = sqlite3_bind_int64(q, 1, from);

	*tasks = *claimed = 0;
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(q, 2, to);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(q);
	if (rc != SQLITE_ROW)
		return outbox_fail(o, q, rc, "digest figures");
	*tasks = sqlite3_column_int64(q, 0);
	*claimed = sqlite3_column_int64(q, 1);
	outbox_reset(q);
	return STORE_OK;
}

/* The shared shape of the mark_* updates: ?1 id, ?2 an integer, ?3 text. */
static enum store_status outbox_mark(struct outbox *o, sqlite3_stmt *st, int64_t id, int nargs,
                                     int64_t n, const char *text, const char *what)
{
	enum store_status ret = store_begin(o->s);
	int rc;

	if (ret != STORE_OK)
		return ret;
	if ((rc = sqlite3_bind_int64(st, 1, id)) != SQLITE_OK ||
	    (nargs >= 2 && (rc = sqlite3_bind_int64(st, 2, n)) != SQLITE_OK) ||
	    (nargs >= 3 && (rc = outbox_bind_opt_text(st, 3, text)) != SQLITE_OK))
		return outbox_fail(o, st, rc, what);
	return outbox_step_done(o, st, what);
}

enum store_status outbox_mark_inflight(struct outbox *o, int64_t id)
{
	return outbox_mark(o, o->mark_inflight, id, 1, 0, NULL, "mark delivery in flight");
}

enum store_status outbox_mark_delivered(struct outbox *o, int64_t id, int64_t now_ms)
{
	return outbox_mark(o, o->mark_delivered, id, 2, now_ms, NULL, "mark delivered");
}

enum store_status outbox_mark_failed(struct outbox *o, int64_t id, int64_t next_ms,
                                     const char *error)
{
	return outbox_mark(o, o->mark_failed, id, 3, next_ms, error, "mark delivery failed");
}

enum store_status outbox_mark_expired(struct outbox *o, int64_t id, int64_t now_ms,
                                      const char *error)
{
	return outbox_mark(o, o->mark_expired, id, 3, now_ms, error, "mark delivery expired");
}

/* ------------------------------------------------------------ claims */

static enum store_status outbox_task_row(struct outbox *o, sqlite3_stmt *q, struct outbox_task *out,
                                         bool *found)
{
	int rc = sqlite3_step(q);
	*found = false;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return outbox_fail(o, q, rc, "find alert to claim");
	if (rc == SQLITE_ROW) {
		const char *kind = (const char *)sqlite3_column_text(q, 1);
		const char *cell = (const char *)sqlite3_column_text(q, 2);
		const char *by = (const char *)sqlite3_column_text(q, 4);
		*found = true;
		*out = (struct outbox_task){
			.id = sqlite3_column_int64(q, 0),
			.at = sqlite3_column_int64(q, 3),
			.claimed = by != NULL,
			.resolved = sqlite3_column_int(q, 5) != 0,
		};
		snprintf(out->kind, sizeof(out->kind), "%s", kind ? kind : "");
		snprintf(out->cell, sizeof(out->cell), "%s", cell ? cell : "");
		snprintf(out->claimed_by, sizeof(out->claimed_by), "%s", by ? by : "");
	}
	outbox_reset(q);
	return STORE_OK;
}

enum store_status outbox_task_by_id(struct outbox *o, int64_t id, struct outbox_task *out,
                                    bool *found)
{
	sqlite3_stmt *q = o->task_by_id;
	int rc = sqlite3_bind_int64(q, 1, id);
	*found = false;
	if (rc != SQLITE_OK)
		return outbox_fail(o, q, rc, "find alert to claim");
	return outbox_task_row(o, q, out, found);
}

enum store_status outbox_task_latest(struct outbox *o, const char *cell, int64_t at_most,
                                     struct outbox_task *out, bool *found)
{
	sqlite3_stmt *q = o->task_latest;
	int rc = sqlite3_bind_text(q, 1, cell, -1, SQLITE_STATIC);
	*found = false;
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(q, 2, at_most);
	if (rc != SQLITE_OK)
		return outbox_fail(o, q, rc, "find alert to claim");
	return outbox_task_row(o, q, out, found);
}

enum store_status outbox_claim(struct outbox *o, int64_t id, const char *by, int64_t at,
                               int64_t *claimed)
{
	sqlite3_stmt *q = o->claim;
	int rc = sqlite3_bind_int64(q, 1, id);
	*claimed = 0;
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(q, 2, by, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(q, 3, at);
	if (rc != SQLITE_OK)
		return outbox_fail(o, q, rc, "claim alert");
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		*claimed = sqlite3_column_int64(q, 0);
		rc = sqlite3_step(q);
	}
	if (rc != SQLITE_DONE)
		return outbox_fail(o, q, rc, "claim alert");
	outbox_reset(q);
	return STORE_OK;
}

enum store_status outbox_episode_claim(struct outbox *o, const char *cell, int64_t claim_for,
                                       struct outbox_claim *out, bool *found)
{
	sqlite3_stmt *q = o->episode_claim;
	int rc = sqlite3_bind_text(q, 1, cell, -1, SQLITE_STATIC);
	*found = false;
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(q, 2, claim_for);
	if (rc != SQLITE_OK)
		return outbox_fail(o, q, rc, "read claim");
	rc = sqlite3_step(q);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return outbox_fail(o, q, rc, "read claim");
	if (rc == SQLITE_ROW) {
		const char *w = (const char *)sqlite3_column_text(q, 0);
		*found = true;
		snprintf(out->by, sizeof(out->by), "%s", w ? w : "");
		out->at = sqlite3_column_int64(q, 1);
		out->hold_from = sqlite3_column_int64(q, 2);
		out->reminded_after = sqlite3_column_int64(q, 3) > 0;
	}
	outbox_reset(q);
	return STORE_OK;
}

enum store_status outbox_resolve(struct outbox *o, const char *cell, const char *kind,
                                 const char *reading_type, int64_t raised_by, int64_t now)
{
	sqlite3_stmt *q = o->resolve;
	int rc = sqlite3_bind_text(q, 1, cell, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(q, 2, kind, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = reading_type ? sqlite3_bind_text(q, 3, reading_type, -1, SQLITE_STATIC)
		                  : sqlite3_bind_null(q, 3);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(q, 4, raised_by);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(q, 5, now);
	if (rc != SQLITE_OK)
		return outbox_fail(o, q, rc, "resolve alerts");
	return outbox_step_done(o, q, "resolve alerts");
}
