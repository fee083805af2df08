/*
 * alert tests on real SQLite files made with store: each decision (overdue
 * and its reminders with escalation, recovered naming the worker and
 * whether the patrol was reported late, immediate events, reading levels
 * warn/alarm/back to normal and their restore from the table, the daily
 * digest) read back from the alert table as the exact text in zh-CN and en
 * and as its JSON document. The clock is fake and the zone UTC, so clock
 * times in texts are the UTC ones.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alert.h"
#include "outbox.h"
#include "store.h"

#define T0 INT64_C(1764000000) /* 2025-11-24 16:00:00 UTC */
#define HOUR 3600

struct fx {
	bool en;
	char dir[64];
	char path[128];
	struct config *cfg;
	struct store *s;
	struct outbox *o;
	struct alert *a;
	int n_msg;
};

/* One row of the alert table, copied out. */
struct row {
	char kind[16], cell[32], worker[32], level[16];
	int repeat;
	char text[2048];
	json_t *doc;
};

static void load_cfg(struct fx *f)
{
	char path[192];
	struct config_errors errs = { 0 };
	snprintf(path, sizeof(path), "%s/gridpatrol.yaml", f->dir);
	FILE *y = fopen(path, "w");
	assert_non_null(y);
	fprintf(y,
	        "storage:\n  path: \"%s\"\n"
	        "defaults: { interval: 4h, grace: 0s, repeat: 1h, active: always }\n"
	        "cells:\n"
	        "  - id: yh-01\n    name: 云华1号网格\n    workers: [w017, w021]\n"
	        "  - id: yh-02\n    name: 云华2号网格\n"
	        "events:\n  checkin: {}\n  litter: { patrol: false }\n"
	        "  fishing: { label: 钓鱼, alert: immediate, patrol: false }\n"
	        "  flood: { label: 水位, value: { unit: cm, warn: 250, alarm: 300 } }\n"
	        "alerts:\n  language: %s\n  daily_digest: \"off\"\n  startup_grace: 0s\n"
	        "  escalate: { after: 1, to: [secretary] }\n",
	        f->path, f->en ? "en" : "zh-CN");
	fclose(y);
	int rc = config_load(path, &f->cfg, &errs);
	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.v[i]);
	config_errors_free(&errs);
	assert_int_equal(rc, 0);
}

static void fx_open_alert(struct fx *f)
{
	char err[512];
	f->a = alert_new(f->cfg, f->s, f->o, err, sizeof(err));
	if (!f->a)
		fail_msg("alert_new: %s", err);
}

static int setup(void **state, bool en)
{
	char err[512];
	struct fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	f->en = en;
	strcpy(f->dir, "/tmp/gridpatrol-test-alert-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/patrol.db", f->dir);
	setenv("TZ", "UTC", 1);
	tzset();
	load_cfg(f);
	f->s = store_open(f->path, 0, err, sizeof(err));
	if (!f->s)
		fail_msg("store_open: %s", err);
	assert_int_equal(store_sync_cells(f->s, f->cfg, T0 - 2 * HOUR), STORE_OK);
	assert_int_equal(store_commit(f->s), STORE_OK);
	f->o = outbox_new(f->s, err, sizeof(err));
	if (!f->o)
		fail_msg("outbox_new: %s", err);
	fx_open_alert(f);
	*state = f;
	return 0;
}

static int setup_zh(void **state)
{
	return setup(state, false);
}

static int setup_en(void **state)
{
	return setup(state, true);
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[160];
	alert_free(f->a);
	outbox_free(f->o);
	store_close(f->s);
	config_free(f->cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static const char *col(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? (const char *)t : "";
}

static int n_alerts(struct fx *f)
{
	sqlite3_stmt *st;
	assert_int_equal(
	        sqlite3_prepare_v2(store_db(f->s), "SELECT count(*) FROM alert", -1, &st, NULL),
	        SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* The alert table's row number `n` (1: the first raised); its document
 * must be JSON whose "text" is the row's text. Free doc with json_decref. */
static void get_row(struct fx *f, int n, struct row *r)
{
	sqlite3_stmt *st;
	json_error_t jerr;
	memset(r, 0, sizeof(*r));
	assert_int_equal(sqlite3_prepare_v2(store_db(f->s),
	                                    "SELECT kind, cell, worker, level, repeat, text, doc "
	                                    "FROM alert ORDER BY id LIMIT 1 OFFSET ?1",
	                                    -1, &st, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_bind_int(st, 1, n - 1), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	snprintf(r->kind, sizeof(r->kind), "%s", col(st, 0));
	snprintf(r->cell, sizeof(r->cell), "%s", col(st, 1));
	snprintf(r->worker, sizeof(r->worker), "%s", col(st, 2));
	snprintf(r->level, sizeof(r->level), "%s", col(st, 3));
	r->repeat = sqlite3_column_int(st, 4);
	snprintf(r->text, sizeof(r->text), "%s", col(st, 5));
	r->doc = json_loads(col(st, 6), 0, &jerr);
	sqlite3_finalize(st);
	if (!r->doc)
		fail_msg("doc of alert %d: %s", n, jerr.text);
	assert_string_equal(json_string_value(json_object_get(r->doc, "text")), r->text);
	assert_string_equal(json_string_value(json_object_get(r->doc, "kind")), r->kind);
}

static const char *doc_str(const json_t *doc, const char *path)
{
	const json_t *v = doc;
	char key[64];
	while (v && *path) {
		size_t n = strcspn(path, ".");
		snprintf(key, sizeof(key), "%.*s", (int)n, path);
		v = json_object_get(v, key);
		path += n + (path[n] == '.');
	}
	if (!json_is_string(v))
		fail_msg("no string at %s", path);
	return json_string_value(v);
}

static json_int_t doc_int(const json_t *doc, const char *key)
{
	const json_t *v = json_object_get(doc, key);
	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

static void expect_text(struct fx *f, const struct row *r, const char *zh, const char *en)
{
	assert_string_equal(r->text, f->en ? en : zh);
}

/* One message through msg_parse and store_put_event, and (alert) through
 * alert_on_event, committed; returns whether an alert was queued. */
static bool fx_event(struct fx *f, const char *cell, const char *worker, const char *type,
                     int64_t ts, const char *extra, bool alert)
{
	char topic[128], payload[256], detail[MSG_DETAIL_MAX];
	struct msg_record rec;
	bool dup = false, queued = false;
	int64_t rowid = 0;
	snprintf(topic, sizeof(topic), "patrol/%s/%s/%s", cell, worker, type);
	snprintf(payload, sizeof(payload), "{\"id\":\"m%d\",\"ts\":%lld%s}", ++f->n_msg,
	         (long long)ts, extra);
	assert_int_equal(msg_parse(f->cfg, topic, payload, strlen(payload), ts * 1000, &rec, detail,
	                           sizeof(detail)),
	                 MSG_OK);
	assert_int_equal(store_begin(f->s), STORE_OK);
	assert_int_equal(store_put_event(f->s, &rec, &dup, &rowid), STORE_OK);
	assert_false(dup);
	if (alert)
		assert_int_equal(alert_on_event(f->a, &rec, rowid, ts, &queued), STORE_OK);
	assert_int_equal(store_commit(f->s), STORE_OK);
	return queued;
}

static void fx_overdue(struct fx *f, size_t cell, int64_t base, int64_t last, int repeat,
                       int64_t now)
{
	struct deadline_fire fire = {
		.cell = (uint32_t)cell,
		.base = base,
		.last_patrol = last,
		.due = T0 - HOUR,
		.overdue_at = T0 - HOUR,
		.repeat = repeat,
	};
	assert_int_equal(store_begin(f->s), STORE_OK);
	assert_int_equal(alert_overdue(f->a, &f->cfg->cells[cell], &fire, now), STORE_OK);
	assert_int_equal(store_commit(f->s), STORE_OK);
}

/* The last patrol named is the newest of a type that counts: the litter
 * report after it is not one. */
static void test_overdue(void **state)
{
	struct fx *f = *state;
	struct row r;
	fx_event(f, "yh-01", "w017", "checkin", T0 - 5 * HOUR, "", false);
	fx_event(f, "yh-01", "w021", "litter", T0 - HOUR, "", false);
	fx_overdue(f, 0, T0 - 5 * HOUR, T0 - 5 * HOUR, 0, T0);
	get_row(f, 1, &r);
	assert_string_equal(r.kind, "overdue");
	assert_string_equal(r.cell, "yh-01");
	assert_int_equal(r.repeat, 0);
	expect_text(f, &r,
	            "【巡查提醒】云华1号网格已 5小时 未巡查（应于 15:00 前巡查），上次 w017 11:00。"
	            "请 w017、w021 尽快巡查。",
	            "[Patrol overdue] 云华1号网格: not patrolled for 5h (due 15:00), last w017 at "
	            "11:00. w017, w021: please patrol now.");
	assert_string_equal(doc_str(r.doc, "cell"), "yh-01");
	assert_string_equal(doc_str(r.doc, "cell_name"), "云华1号网格");
	assert_string_equal(doc_str(r.doc, "at"), "2025-11-24T16:00:00+00:00");
	assert_string_equal(doc_str(r.doc, "due"), "2025-11-24T15:00:00+00:00");
	assert_string_equal(doc_str(r.doc, "last_patrol.ts"), "2025-11-24T11:00:00+00:00");
	assert_string_equal(doc_str(r.doc, "last_patrol.worker"), "w017");
	assert_int_equal(doc_int(r.doc, "repeat"), 0);
	assert_int_equal(json_array_size(json_object_get(r.doc, "workers")), 2);
	assert_null(json_object_get(r.doc, "escalate"));
	json_decref(r.doc);

	/* Never patrolled, nobody assigned. */
	fx_overdue(f, 1, T0 - 2 * HOUR, 0, 0, T0);
	get_row(f, 2, &r);
	assert_string_equal(r.cell, "yh-02");
	expect_text(f, &r,
	            "【巡查提醒】云华2号网格已 2小时 无巡查记录（应于 15:00 前巡查）。"
	            "请尽快安排巡查。",
	            "[Patrol overdue] 云华2号网格: no patrol on record for 2h (due 15:00). "
	            "Please arrange a patrol.");
	assert_true(json_is_null(json_object_get(r.doc, "last_patrol")));
	assert_int_equal(json_array_size(json_object_get(r.doc, "workers")), 0);
	json_decref(r.doc);
}

/* A reminder counts itself and, from alerts.escalate.after on, names who
 * it goes up to. */
static void test_overdue_repeat(void **state)
{
	struct fx *f = *state;
	struct row r;
	fx_event(f, "yh-01", "w017", "checkin", T0 - 5 * HOUR, "", false);
	fx_overdue(f, 0, T0 - 5 * HOUR, T0 - 5 * HOUR, 1, T0 + 1800);
	get_row(f, 1, &r);
	assert_string_equal(r.kind, "overdue");
	assert_int_equal(r.repeat, 1);
	expect_text(
	        f, &r,
	        "【巡查提醒·第2次】云华1号网格已 5小时30分 未巡查（应于 15:00 前巡查），"
	        "上次 w017 11:00。请 w017、w021 尽快巡查，并报 secretary。",
	        "[Patrol overdue, reminder 2] 云华1号网格: not patrolled for 5h 30m (due 15:00), "
	        "last w017 at 11:00. w017, w021: please patrol now. Escalated to secretary.");
	assert_int_equal(doc_int(r.doc, "repeat"), 1);
	const json_t *esc = json_object_get(r.doc, "escalate");
	assert_int_equal(json_array_size(esc), 1);
	assert_string_equal(json_string_value(json_array_get(esc, 0)), "secretary");
	json_decref(r.doc);
}

static void fx_recovered(struct fx *f, const char *worker, int64_t ts, int64_t now)
{
	struct deadline_patrol_result res = {
		.recovered = true,
		.moved = true,
		.prev_last_patrol = T0 - 5 * HOUR,
		.prev_due = T0 - HOUR,
		.repeats = 1,
	};
	assert_int_equal(store_begin(f->s), STORE_OK);
	assert_int_equal(alert_recovered(f->a, &f->cfg->cells[0], &res, worker, ts, now), STORE_OK);
	assert_int_equal(store_commit(f->s), STORE_OK);
}

/* The worker who patrolled is named; a patrol from before the first
 * overdue alert, reported after it, says so. */
static void test_recovered(void **state)
{
	struct fx *f = *state;
	struct row r;
	fx_overdue(f, 0, T0 - 5 * HOUR, T0 - 5 * HOUR, 0, T0);
	fx_recovered(f, "w021", T0 + 600, T0 + 600);
	get_row(f, 2, &r);
	assert_string_equal(r.kind, "recovered");
	assert_string_equal(r.worker, "w021");
	expect_text(f, &r,
	            "【巡查恢复】云华1号网格已由 w021 于 16:10 巡查，此前 5小时10分 未巡查。",
	            "[Patrol resumed] 云华1号网格: patrolled by w021 at 16:10 after 5h 10m "
	            "without patrol.");
	assert_string_equal(doc_str(r.doc, "patrol.worker"), "w021");
	assert_string_equal(doc_str(r.doc, "patrol.ts"), "2025-11-24T16:10:00+00:00");
	assert_string_equal(doc_str(r.doc, "due"), "2025-11-24T15:00:00+00:00");
	assert_int_equal(doc_int(r.doc, "unpatrolled_s"), 5 * HOUR + 600);
	assert_false(json_is_true(json_object_get(r.doc, "reported_late")));
	assert_int_equal(doc_int(r.doc, "repeat"), 1);
	json_decref(r.doc);

	fx_recovered(f, "w017", T0 - 60, T0 + 700);
	get_row(f, 3, &r);
	assert_string_equal(r.worker, "w017");
	expect_text(f, &r,
	            "【巡查恢复】云华1号网格已由 w017 于 15:59 巡查，此前 4小时59分 未巡查。"
	            "（补报：巡查发生在提醒之前）",
	            "[Patrol resumed] 云华1号网格: patrolled by w017 at 15:59 after 4h 59m "
	            "without patrol. (reported late: the patrol was before the alert)");
	assert_true(json_is_true(json_object_get(r.doc, "reported_late")));
	json_decref(r.doc);
}

static void test_immediate_event(void **state)
{
	struct fx *f = *state;
	struct row r;
	assert_true(
	        fx_event(f, "yh-01", "w017", "fishing", T0, ",\"note\":\"库湾有人垂钓\"", true));
	assert_false(fx_event(f, "yh-01", "w017", "checkin", T0, "", true));
	assert_int_equal(n_alerts(f), 1);
	get_row(f, 1, &r);
	assert_string_equal(r.kind, "event");
	assert_string_equal(r.worker, "w017");
	expect_text(f, &r, "【钓鱼】云华1号网格：w017 于 16:00 报告。备注：库湾有人垂钓",
	            "[钓鱼] 云华1号网格: reported by w017 at 16:00. Note: 库湾有人垂钓");
	assert_string_equal(doc_str(r.doc, "event_type"), "fishing");
	assert_string_equal(doc_str(r.doc, "note"), "库湾有人垂钓");
	json_decref(r.doc);
}

static bool fx_reading(struct fx *f, int value)
{
	char extra[32];
	snprintf(extra, sizeof(extra), ",\"value\":%d", value);
	return fx_event(f, "yh-01", "w017", "flood", T0, extra, true);
}

static void expect_level(struct fx *f, int n, const char *kind, const char *level, double value,
                         double threshold)
{
	struct row r;
	get_row(f, n, &r);
	assert_string_equal(r.kind, kind);
	assert_string_equal(r.level, level);
	assert_string_equal(doc_str(r.doc, "level"), level);
	assert_string_equal(doc_str(r.doc, "unit"), "cm");
	assert_string_equal(doc_str(r.doc, "event_type"), "flood");
	assert_true(json_real_value(json_object_get(r.doc, "value")) == value);
	assert_true(json_real_value(json_object_get(r.doc, "threshold")) == threshold);
	json_decref(r.doc);
}

/* Levels rise to warn and alarm with an alert each; falling from alarm to
 * warn is quiet, rising again is news; below warn is back to normal. A
 * new alert object reads the level back from the table. */
static void test_reading_levels(void **state)
{
	struct fx *f = *state;
	struct row r;
	assert_false(fx_reading(f, 100));
	assert_true(fx_reading(f, 260));
	assert_true(fx_reading(f, 310));
	assert_false(fx_reading(f, 280));
	assert_true(fx_reading(f, 320));
	assert_false(fx_reading(f, 330));
	assert_int_equal(n_alerts(f), 3);
	expect_level(f, 1, "reading", "warn", 260, 250);
	expect_level(f, 2, "reading", "alarm", 310, 300);
	expect_level(f, 3, "reading", "alarm", 320, 300);
	get_row(f, 1, &r);
	expect_text(f, &r, "【水位·警戒】云华1号网格：260cm，达到警戒值 250cm（w017 16:00）。",
	            "[水位 WARNING] 云华1号网格: 260 cm, at or above the warning level 250 cm "
	            "(w017 at 16:00).");
	json_decref(r.doc);
	get_row(f, 2, &r);
	expect_text(f, &r, "【水位·危险】云华1号网格：310cm，达到危险值 300cm（w017 16:00）。",
	            "[水位 ALARM] 云华1号网格: 310 cm, at or above the alarm level 300 cm "
	            "(w017 at 16:00).");
	json_decref(r.doc);

	alert_free(f->a);
	fx_open_alert(f);
	assert_int_equal(alert_restore(f->a), STORE_OK);
	assert_false(fx_reading(f, 305));
	assert_true(fx_reading(f, 100));
	assert_false(fx_reading(f, 90));
	assert_int_equal(n_alerts(f), 4);
	expect_level(f, 4, "recovered", "normal", 100, 250);
	get_row(f, 4, &r);
	expect_text(f, &r,
	            "【水位·恢复】云华1号网格：100cm，已回落到警戒值 250cm 以下（w017 16:00）。",
	            "[水位 back to normal] 云华1号网格: 100 cm, below the warning level 250 cm "
	            "(w017 at 16:00).");
	json_decref(r.doc);
}

/* Cells patrolled today count patrol types only: yh-02's litter report
 * is an event of the day but no patrol. */
static void test_digest(void **state)
{
	struct fx *f = *state;
	struct row r;
	fx_event(f, "yh-01", "w017", "checkin", T0 - 3 * HOUR, "", false);
	fx_event(f, "yh-02", "w021", "litter", T0 - 2 * HOUR, "", false);
	fx_event(f, "yh-02", "w021", "checkin", T0 - 24 * HOUR, "", false); /* yesterday */
	fx_overdue(f, 1, T0 - 2 * HOUR, 0, 0, T0 - 60);
	assert_int_equal(store_begin(f->s), STORE_OK);
	assert_int_equal(alert_digest(f->a, T0), STORE_OK);
	assert_int_equal(store_commit(f->s), STORE_OK);
	get_row(f, 2, &r);
	assert_string_equal(r.kind, "digest");
	expect_text(
	        f, &r,
	        "【今日巡查】2025-11-24：2 个网格中 1 个已巡查；未巡查：云华2号网格。"
	        "上报 2 条（checkin 1，litter 1），超时提醒 1 次。"
	        "待处理提醒 1 项：已认领 0 项，未认领 1 项。",
	        "[Daily patrol] 2025-11-24: 1 of 2 cells patrolled; not patrolled: 云华2号网格. "
	        "2 reports (checkin 1, litter 1), 1 overdue alerts. "
	        "Alerts to act on: 1, 0 claimed, 1 unclaimed.");
	assert_string_equal(doc_str(r.doc, "date"), "2025-11-24");
	assert_int_equal(doc_int(r.doc, "cells"), 2);
	assert_int_equal(doc_int(r.doc, "patrolled"), 1);
	assert_int_equal(doc_int(r.doc, "events"), 2);
	assert_int_equal(doc_int(r.doc, "overdue_alerts"), 1);
	json_decref(r.doc);
}

/* The claims line: an overdue episode counts once, claimed when any of
 * its alerts was (here its reminder); event alerts count each; another
 * episode's claim (yesterday's) does not count for today's. */
static void test_digest_claims(void **state)
{
	struct fx *f = *state;
	struct row r;
	sqlite3 *db = store_db(f->s);
	fx_overdue(f, 0, T0 - 30 * HOUR, 0, 0, T0 - 26 * HOUR); /* yesterday, claimed */
	assert_int_equal(sqlite3_exec(db,
	                              "UPDATE alert SET claimed_by = 'w017', claimed_at = at, "
	                              "resolved_at = at + 60",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	fx_overdue(f, 0, T0 - 5 * HOUR, 0, 0, T0 - 4 * HOUR);
	fx_overdue(f, 0, T0 - 5 * HOUR, 0, 1, T0 - 3 * HOUR); /* its reminder, claimed */
	fx_overdue(f, 1, T0 - 5 * HOUR, 0, 0, T0 - 2 * HOUR); /* not claimed */
	assert_true(fx_event(f, "yh-01", "w017", "fishing", T0 - HOUR, "", true));
	assert_true(fx_event(f, "yh-02", "w021", "fishing", T0 - HOUR, "", true));
	assert_int_equal(sqlite3_exec(db,
	                              "UPDATE alert SET claimed_by = 'w021', claimed_at = at "
	                              "WHERE id IN (3, 5)",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	assert_int_equal(store_begin(f->s), STORE_OK);
	assert_int_equal(alert_digest(f->a, T0), STORE_OK);
	assert_int_equal(store_commit(f->s), STORE_OK);
	get_row(f, 7, &r);
	assert_string_equal(r.kind, "digest");
	assert_non_null(strstr(r.text, f->en ? "Alerts to act on: 4, 2 claimed, 2 unclaimed."
	                                     : "待处理提醒 4 项：已认领 2 项，未认领 2 项。"));
	json_t *t = json_object_get(r.doc, "tasks");
	assert_int_equal(json_integer_value(json_object_get(t, "raised")), 4);
	assert_int_equal(json_integer_value(json_object_get(t, "claimed")), 2);
	assert_int_equal(json_integer_value(json_object_get(t, "unclaimed")), 2);
	json_decref(r.doc);
}

static bool fx_claim(struct fx *f, int64_t alert_id, const char *by, int64_t at, int64_t now)
{
	struct alert_claim cl = {
		.cell = &f->cfg->cells[0], .alert_id = alert_id, .by = by, .at = at
	};
	struct alert_claim_result res;
	assert_int_equal(store_begin(f->s), STORE_OK);
	assert_int_equal(alert_claim(f->a, &cl, now, &res), STORE_OK);
	assert_int_equal(store_commit(f->s), STORE_OK);
	return res.claimed;
}

/* A claim uploaded an hour late holds from when it is heard, not from its
 * own time: the group is never told "no reminders for 2h" that are
 * partly over; the claim keeps its own time. */
static void test_claim_backfilled_holds_from_now(void **state)
{
	struct fx *f = *state;
	struct row r;
	int64_t until;

	fx_overdue(f, 0, T0 - 5 * HOUR, T0 - 5 * HOUR, 0, T0);
	assert_true(fx_claim(f, 0, "w017", T0 + 300, T0 + 300 + HOUR));
	get_row(f, 2, &r);
	assert_string_equal(r.kind, "claimed");
	assert_string_equal(doc_str(r.doc, "holds_until"), "2025-11-24T19:05:00+00:00");
	json_decref(r.doc);
	assert_int_equal(alert_claim_holds(f->a, &f->cfg->cells[0], &until), STORE_OK);
	assert_int_equal(until, T0 + 300 + 3 * HOUR);
	/* Not run out at its own time + 2 h. */
	fx_overdue(f, 0, T0 - 5 * HOUR, T0 - 5 * HOUR, 1, T0 + 300 + 2 * HOUR);
	get_row(f, 3, &r);
	assert_null(json_object_get(r.doc, "claim_ran_out"));
	json_decref(r.doc);
}

/* A claimed episode as the group reads it: the claim, the reminder after
 * it ran out (once), the recovery naming the claimer; and an event claim. */
static void test_claim_texts(void **state)
{
	struct fx *f = *state;
	struct row r;
	int64_t until;
	bool bad;
	char detail[MSG_DETAIL_MAX];

	fx_overdue(f, 0, T0 - 5 * HOUR, T0 - 5 * HOUR, 0, T0);
	assert_false(fx_claim(f, 0, "w017", T0 - 60, T0 + 300)); /* made before the alert */
	assert_true(fx_claim(f, 0, "w017", T0 + 300, T0 + 300));
	assert_false(fx_claim(f, 1, "w021", T0 + 400, T0 + 400)); /* once per alert */
	assert_int_equal(n_alerts(f), 2);
	get_row(f, 2, &r);
	assert_string_equal(r.kind, "claimed");
	assert_string_equal(r.worker, "w017");
	expect_text(f, &r,
	            "【认领】w017 已于 16:05 认领云华1号网格的巡查提醒，2小时 内不再重复提醒。",
	            "[Claimed] 云华1号网格: w017 claimed the patrol alert at 16:05; no reminders "
	            "for 2h.");
	assert_int_equal(doc_int(json_object_get(r.doc, "claim"), "alert_id"), 1);
	assert_string_equal(doc_str(r.doc, "claim.by"), "w017");
	assert_string_equal(doc_str(r.doc, "holds_until"), "2025-11-24T18:05:00+00:00");
	json_decref(r.doc);
	assert_int_equal(alert_claim_holds(f->a, &f->cfg->cells[0], &until), STORE_OK);
	assert_int_equal(until, T0 + 300 + 2 * HOUR);

	fx_overdue(f, 0, T0 - 5 * HOUR, T0 - 5 * HOUR, 1, T0 + 300 + 2 * HOUR);
	get_row(f, 3, &r);
	expect_text(f, &r,
	            "【巡查提醒·第2次】云华1号网格已 7小时5分 无巡查记录（应于 15:00 前巡查）。"
	            "请 w017、w021 尽快巡查，并报 secretary。w017 的认领已超过 2小时，仍未巡查。",
	            "[Patrol overdue, reminder 2] 云华1号网格: no patrol on record for 7h 5m "
	            "(due 15:00). w017, w021: please patrol now. Escalated to secretary. "
	            "w017's claim ran out after 2h without a patrol.");
	assert_string_equal(doc_str(r.doc, "claim_ran_out.by"), "w017");
	json_decref(r.doc);
	assert_int_equal(alert_claim_holds(f->a, &f->cfg->cells[0], &until), STORE_OK);
	assert_int_equal(until, 0); /* said once */
	fx_overdue(f, 0, T0 - 5 * HOUR, T0 - 5 * HOUR, 2, T0 + 300 + 3 * HOUR);
	get_row(f, 4, &r);
	assert_null(strstr(r.text, "w017 的认领"));
	assert_null(strstr(r.text, "claim ran out"));
	json_decref(r.doc);

	fx_recovered(f, "w021", T0 + 4 * HOUR, T0 + 4 * HOUR);
	get_row(f, 5, &r);
	assert_non_null(strstr(r.text, f->en ? " (claimed by w017)" : "（此前由 w017 认领）"));
	assert_string_equal(doc_str(r.doc, "claimed_by"), "w017");
	json_decref(r.doc);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(store_db(f->s),
	                                    "SELECT count(*) FROM alert WHERE "
	                                    "kind = 'overdue' AND resolved_at = ?1",
	                                    -1, &st, NULL),
	                 SQLITE_OK);
	sqlite3_bind_int64(st, 1, T0 + 4 * HOUR);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 3);
	sqlite3_finalize(st);

	/* An event alert: claimed, nothing held. */
	assert_true(fx_event(f, "yh-01", "w021", "fishing", T0 + 5 * HOUR, "", true));
	assert_true(fx_claim(f, 0, "张书记", T0 + 5 * HOUR + 60, T0 + 5 * HOUR + 60));
	get_row(f, 7, &r);
	expect_text(f, &r, "【认领】张书记 已于 21:01 认领云华1号网格的事件提醒。",
	            "[Claimed] 云华1号网格: 张书记 claimed the event alert at 21:01.");
	assert_null(json_object_get(r.doc, "holds_until"));
	json_decref(r.doc);

	assert_int_equal(
	        alert_claim_check(f->a, &f->cfg->cells[0], 99, &bad, detail, sizeof(detail)),
	        STORE_OK);
	assert_true(bad);
	assert_string_equal(detail, "alert_id 99: no such alert");
	assert_int_equal(
	        alert_claim_check(f->a, &f->cfg->cells[1], 1, &bad, detail, sizeof(detail)),
	        STORE_OK);
	assert_true(bad);
	assert_string_equal(detail, "alert_id 1 is for cell yh-01, not yh-02");
	assert_int_equal(
	        alert_claim_check(f->a, &f->cfg->cells[0], 2, &bad, detail, sizeof(detail)),
	        STORE_OK);
	assert_true(bad);
	assert_string_equal(detail, "alert_id 2 is a claimed alert; only overdue, event and "
	                            "reading alerts can be claimed");
	assert_int_equal(
	        alert_claim_check(f->a, &f->cfg->cells[0], 1, &bad, detail, sizeof(detail)),
	        STORE_OK);
	assert_false(bad);
}

#define BOTH(t)                                                 \
	cmocka_unit_test_setup_teardown(t, setup_zh, teardown), \
	        cmocka_unit_test_setup_teardown(t, setup_en, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		BOTH(test_overdue),
		BOTH(test_overdue_repeat),
		BOTH(test_recovered),
		BOTH(test_immediate_event),
		BOTH(test_reading_levels),
		BOTH(test_digest),
		BOTH(test_digest_claims),
		BOTH(test_claim_texts),
		BOTH(test_claim_backfilled_holds_from_now),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
