/*
 * watch tests on real SQLite files made with store: the deadline engine
 * rebuilt from the database (known_since, last patrols from event_span,
 * pauses running and ended, open overdue alerts) and moved by each stored
 * event; types configured with `patrol: false` leave it alone, live and
 * after a rebuild. The clock is fake and the zone UTC.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alert.h"
#include "outbox.h"
#include "store.h"
#include "watch.h"

#define T0 INT64_C(1764000000) /* 2025-11-24 16:00:00 UTC */
#define HOUR 3600

struct fx {
	char dir[64];
	char path[128];
	struct config *cfg;
	struct store *s;
	struct outbox *o;
	struct alert *a;
	struct watch *w;
	int n_msg;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	strcpy(f->dir, "/tmp/gridpatrol-test-watch-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/patrol.db", f->dir);
	setenv("TZ", "UTC", 1);
	tzset();
	*state = f;
	return 0;
}

static void fx_close(struct fx *f)
{
	watch_free(f->w);
	alert_free(f->a);
	outbox_free(f->o);
	store_close(f->s);
	f->w = NULL;
	f->a = NULL;
	f->o = NULL;
	f->s = NULL;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[160];
	fx_close(f);
	config_free(f->cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* yh-01 and yh-02 due every hour with no grace and no repeats; checkin
 * counts as a patrol, litter does not. */
static void load_cfg(struct fx *f)
{
	char path[192];
	struct config_errors errs = { 0 };
	snprintf(path, sizeof(path), "%s/gridpatrol.yaml", f->dir);
	FILE *y = fopen(path, "w");
	assert_non_null(y);
	fprintf(y,
	        "storage:\n  path: \"%s\"\n"
	        "defaults: { interval: 1h, grace: 0s, repeat: 0s, active: always }\n"
	        "cells:\n  - id: yh-01\n  - id: yh-02\n"
	        "events:\n  checkin: {}\n  litter: { patrol: false }\n",
	        f->path);
	fclose(y);
	int rc = config_load(path, &f->cfg, &errs);
	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.v[i]);
	config_errors_free(&errs);
	assert_int_equal(rc, 0);
}

/* The daemon's objects on the file, as daemon.c wires them. */
static void fx_open(struct fx *f)
{
	char err[512];
	f->s = store_open(f->path, 0, err, sizeof(err));
	if (!f->s)
		fail_msg("store_open: %s", err);
	f->o = outbox_new(f->s, err, sizeof(err));
	if (!f->o)
		fail_msg("outbox_new: %s", err);
	f->a = alert_new(f->cfg, f->s, f->o, err, sizeof(err));
	if (!f->a)
		fail_msg("alert_new: %s", err);
	f->w = watch_new(f->s, f->a);
	assert_non_null(f->w);
}

static void q_exec(const char *path, const char *sql)
{
	sqlite3 *db;
	char *msg = NULL;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		fail_msg("%s: %s", sql, msg ? msg : "?");
	sqlite3_close(db);
}

static int64_t q_int(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t v = -1;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* One message through msg_parse and store_put_event, then (when watch is
 * up) watch_on_event, as the daemon's ingest does; committed. Returns
 * whether an alert was queued. */
static bool fx_event(struct fx *f, const char *cell, const char *worker, const char *type,
                     int64_t ts, int64_t now)
{
	char topic[128], payload[128], detail[MSG_DETAIL_MAX];
	struct msg_record rec;
	bool dup = false, queued = false;
	int64_t rowid = 0;
	snprintf(topic, sizeof(topic), "patrol/%s/%s/%s", cell, worker, type);
	snprintf(payload, sizeof(payload), "{\"id\":\"m%d\",\"ts\":%lld}", ++f->n_msg,
	         (long long)ts);
	assert_int_equal(msg_parse(f->cfg, topic, payload, strlen(payload), now * 1000, &rec,
	                           detail, sizeof(detail)),
	                 MSG_OK);
	assert_int_equal(rec.ts, ts);
	assert_int_equal(store_begin(f->s), STORE_OK);
	assert_int_equal(store_put_event(f->s, &rec, &dup, &rowid), STORE_OK);
	assert_false(dup);
	if (f->w)
		assert_int_equal(watch_on_event(f->w, &rec, rowid, now, &queued), STORE_OK);
	assert_int_equal(store_commit(f->s), STORE_OK);
	return queued;
}

/* A store with both cells known since T0 - 2 h, then closed: the file is
 * what a previous run of the daemon left. */
static void fx_history(struct fx *f)
{
	char err[512];
	load_cfg(f);
	f->s = store_open(f->path, 0, err, sizeof(err));
	if (!f->s)
		fail_msg("store_open: %s", err);
	assert_int_equal(store_sync_cells(f->s, f->cfg, T0 - 2 * HOUR), STORE_OK);
	assert_int_equal(store_commit(f->s), STORE_OK);
}

static const struct deadline *fx_dl(struct fx *f)
{
	const struct deadline *dl = watch_deadlines(f->w);
	assert_non_null(dl);
	return dl;
}

/* Due times from known_since and the last patrol in the file; a never
 * patrolled cell past its due time fires once, and its alert is in the
 * table. */
static void test_rebuild_from_file(void **state)
{
	struct fx *f = *state;
	bool queued = false;
	fx_history(f);
	fx_event(f, "yh-01", "w017", "checkin", T0 - 20 * 60, T0 - 20 * 60);
	fx_close(f);

	fx_open(f);
	assert_int_equal(watch_rebuild(f->w, f->cfg, T0), STORE_OK);
	const struct deadline *dl = fx_dl(f);
	assert_int_equal(deadline_count(dl), 2);
	assert_int_equal(deadline_last_patrol(dl, 0), T0 - 20 * 60);
	assert_int_equal(deadline_due(dl, 0), T0 + 40 * 60);
	assert_int_equal(deadline_state(dl, 0, T0), DEADLINE_OK);
	assert_int_equal(deadline_last_patrol(dl, 1), 0);
	assert_int_equal(deadline_due(dl, 1), T0 - HOUR);
	assert_int_equal(deadline_state(dl, 1, T0), DEADLINE_OVERDUE);
	assert_int_equal(watch_next_time(f->w), T0 - HOUR);

	assert_int_equal(store_begin(f->s), STORE_OK);
	assert_int_equal(watch_tick(f->w, T0, &queued), STORE_OK);
	assert_int_equal(store_commit(f->s), STORE_OK);
	assert_true(queued);
	assert_true(deadline_alerted(dl, 1));
	assert_false(deadline_alerted(dl, 0));
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM alert"), 1);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM alert WHERE kind = 'overdue' "
	                                "AND cell = 'yh-02' AND repeat = 0"),
	                 1);
	/* Nothing more is due until yh-01's deadline. */
	queued = false;
	assert_int_equal(watch_tick(f->w, T0 + 60, &queued), STORE_OK);
	assert_false(queued);
	assert_int_equal(watch_next_time(f->w), T0 + 40 * 60);
}

/* Each stored patrol moves its cell's due time; a newer one than the last
 * moves it again, a late one (older) does not move it back; an alerted
 * cell recovers with an alert. */
static void test_events_move_due_times(void **state)
{
	struct fx *f = *state;
	bool queued = false;
	fx_history(f);
	fx_close(f);
	fx_open(f);
	assert_int_equal(watch_rebuild(f->w, f->cfg, T0), STORE_OK);
	const struct deadline *dl = fx_dl(f);

	assert_false(fx_event(f, "yh-01", "w017", "checkin", T0 - 60, T0));
	assert_int_equal(deadline_due(dl, 0), T0 - 60 + HOUR);
	assert_false(fx_event(f, "yh-01", "w017", "checkin", T0 + 600, T0 + 600));
	assert_int_equal(deadline_due(dl, 0), T0 + 600 + HOUR);
	assert_false(fx_event(f, "yh-01", "w021", "checkin", T0 + 300, T0 + 700));
	assert_int_equal(deadline_last_patrol(dl, 0), T0 + 600);
	assert_int_equal(deadline_due(dl, 0), T0 + 600 + HOUR);

	assert_int_equal(store_begin(f->s), STORE_OK);
	assert_int_equal(watch_tick(f->w, T0 + 700, &queued), STORE_OK);
	assert_int_equal(store_commit(f->s), STORE_OK);
	assert_true(queued);
	assert_true(deadline_alerted(dl, 1));
	assert_true(fx_event(f, "yh-02", "w021", "checkin", T0 + 800, T0 + 800));
	assert_false(deadline_alerted(dl, 1));
	assert_int_equal(deadline_due(dl, 1), T0 + 800 + HOUR);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM alert WHERE kind = 'recovered' "
	                                "AND cell = 'yh-02' AND worker = 'w021'"),
	                 1);

	/* A rebuild from the file now reads the same due times. */
	assert_int_equal(watch_rebuild(f->w, f->cfg, T0 + 900), STORE_OK);
	dl = fx_dl(f);
	assert_int_equal(deadline_due(dl, 0), T0 + 600 + HOUR);
	assert_int_equal(deadline_due(dl, 1), T0 + 800 + HOUR);
	assert_false(deadline_alerted(dl, 1));
}

/* litter (patrol: false) is stored but moves nothing: not as it arrives,
 * not when the engine is rebuilt from event_span, and it recovers nothing. */
static void test_non_patrol_types_ignored(void **state)
{
	struct fx *f = *state;
	bool queued = false;
	fx_history(f);
	fx_event(f, "yh-01", "w017", "litter", T0 - 60, T0 - 60);
	fx_close(f);
	fx_open(f);
	assert_int_equal(watch_rebuild(f->w, f->cfg, T0), STORE_OK);
	const struct deadline *dl = fx_dl(f);
	assert_int_equal(deadline_last_patrol(dl, 0), 0);
	assert_int_equal(deadline_due(dl, 0), T0 - HOUR);

	assert_int_equal(store_begin(f->s), STORE_OK);
	assert_int_equal(watch_tick(f->w, T0, &queued), STORE_OK);
	assert_int_equal(store_commit(f->s), STORE_OK);
	assert_true(deadline_alerted(dl, 0));
	assert_false(fx_event(f, "yh-01", "w017", "litter", T0 + 60, T0 + 60));
	assert_true(deadline_alerted(dl, 0));
	assert_int_equal(deadline_last_patrol(dl, 0), 0);
	assert_int_equal(deadline_due(dl, 0), T0 - HOUR);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM event WHERE type = 'litter'"), 2);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM alert WHERE kind = 'recovered'"), 0);
}

/* Pauses as the CLI writes them: a running pause holds a cell (nothing
 * fires), an ended one restarts its count at its end, and a resume seen
 * through watch_sync_pauses restarts it at the resume. */
static void test_paused_cells(void **state)
{
	struct fx *f = *state;
	bool queued = false;
	fx_history(f);
	fx_close(f);
	q_exec(f->path, "INSERT INTO pause (cell, since, until, reason) VALUES "
	                "('yh-01', 1763990000, NULL, 'flood'), "
	                "('yh-02', 1763990000, 1763999400, NULL)");
	fx_open(f);
	assert_int_equal(watch_rebuild(f->w, f->cfg, T0), STORE_OK);
	const struct deadline *dl = fx_dl(f);
	assert_true(deadline_paused(dl, 0, T0));
	assert_int_equal(deadline_state(dl, 0, T0), DEADLINE_PAUSED);
	assert_false(deadline_paused(dl, 1, T0));
	/* Ended at T0 - 10 min: due an hour after that, not overdue now. */
	assert_int_equal(deadline_due(dl, 1), T0 - 600 + HOUR);

	assert_int_equal(store_begin(f->s), STORE_OK);
	/* yh-01 would be overdue since T0 - 1 h were it not paused. */
	assert_int_equal(watch_tick(f->w, T0 + 2000, &queued), STORE_OK);
	assert_int_equal(store_commit(f->s), STORE_OK);
	assert_false(queued);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM alert"), 0);

	/* `gridpatrol resume yh-01` at T0 + 2100 ends the pause then. */
	q_exec(f->path, "UPDATE pause SET until = 1764002100 WHERE cell = 'yh-01'");
	assert_int_equal(watch_sync_pauses(f->w, T0 + 2200), STORE_OK);
	assert_false(deadline_paused(dl, 0, T0 + 2200));
	assert_int_equal(deadline_due(dl, 0), T0 + 2100 + HOUR);
}

/* An overdue alert without a recovery after it is read back: no second
 * first alert after a restart, and the next patrol recovers it. */
static void test_open_overdue_restored(void **state)
{
	struct fx *f = *state;
	bool queued = false;
	fx_history(f);
	fx_close(f);
	fx_open(f);
	assert_int_equal(watch_rebuild(f->w, f->cfg, T0), STORE_OK);
	assert_int_equal(store_begin(f->s), STORE_OK);
	assert_int_equal(watch_tick(f->w, T0, &queued), STORE_OK);
	assert_int_equal(store_commit(f->s), STORE_OK);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM alert WHERE kind = 'overdue'"), 2);
	fx_close(f);

	fx_open(f);
	assert_int_equal(watch_rebuild(f->w, f->cfg, T0 + 60), STORE_OK);
	const struct deadline *dl = fx_dl(f);
	assert_true(deadline_alerted(dl, 0));
	assert_true(deadline_alerted(dl, 1));
	queued = false;
	assert_int_equal(store_begin(f->s), STORE_OK);
	assert_int_equal(watch_tick(f->w, T0 + 120, &queued), STORE_OK);
	assert_int_equal(store_commit(f->s), STORE_OK);
	assert_false(queued);
	assert_true(fx_event(f, "yh-01", "w017", "checkin", T0 + 180, T0 + 180));
	assert_false(deadline_alerted(dl, 0));
	assert_true(deadline_alerted(dl, 1));
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM alert WHERE kind = 'overdue'"), 2);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM alert WHERE kind = 'recovered' "
	                                "AND cell = 'yh-01'"),
	                 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rebuild_from_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_events_move_due_times, setup, teardown),
		cmocka_unit_test_setup_teardown(test_non_patrol_types_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_paused_cells, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_overdue_restored, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
