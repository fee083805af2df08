/*
 * store tests on real SQLite files: schema and WAL, the single-writer lock,
 * dedup, bounded rejected payloads, the size cap as a retryable failure,
 * refusal of a schema newer than the binary, a WAL that stays bounded
 * under sustained writes, emptying the WAL after a failed batch
 * without waiting for a reader, and retention: what goes and what stays
 * (pending deliveries, the alerts read back at start), the rejected cap,
 * and a file that stops growing over fill/prune cycles in both auto_vacuum
 * modes; storage.sync's pragma on the writer; event_span: kept with each
 * event and filled from history by the 2 -> 3 migration.
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "span.h"
#include "store.h"

struct fx {
	char dir[64];
	char path[128];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	strcpy(f->dir, "/tmp/gridpatrol-test-store-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/patrol.db", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
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

static void rec_init(struct msg_record *r, const char *worker, const char *id)
{
	memset(r, 0, sizeof(*r));
	strcpy(r->worker, worker);
	strcpy(r->cell, "yh-01");
	strcpy(r->type, "checkin");
	snprintf(r->msg_id, sizeof(r->msg_id), "%s", id);
	r->ts = 1764000000;
	r->recv_ms = 1764000000123;
	r->raw = "{}";
	r->raw_len = 2;
}

static void test_schema_wal_and_lock(void **state)
{
	struct fx *f = *state;
	char err[512];
	struct store *s = store_open(f->path, 0, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(q_int(f->path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM sqlite_master WHERE name IN "
	                                "('event','rejected','cell')"),
	                 3);

	struct store *second = store_open(f->path, 0, err, sizeof(err));
	assert_null(second);
	assert_non_null(strstr(err, "in use by another gridpatrold"));
	char pid[32];
	snprintf(pid, sizeof(pid), "pid %ld", (long)getpid());
	assert_non_null(strstr(err, pid));
	store_close(s);

	/* The lock goes with the process holding it. */
	s = store_open(f->path, 0, err, sizeof(err));
	assert_non_null(s);
	store_close(s);
}

static void test_dedup_by_worker_and_id(void **state)
{
	struct fx *f = *state;
	char err[512];
	struct msg_record r;
	bool dup;
	struct store *s = store_open(f->path, 0, err, sizeof(err));
	assert_non_null(s);

	assert_int_equal(store_begin(s), STORE_OK);
	rec_init(&r, "w017", "a1");
	assert_int_equal(store_put_event(s, &r, &dup, NULL), STORE_OK);
	assert_false(dup);
	assert_int_equal(store_put_event(s, &r, &dup, NULL), STORE_OK);
	assert_true(dup);
	rec_init(&r, "w021", "a1"); /* same id, other worker: distinct */
	assert_int_equal(store_put_event(s, &r, &dup, NULL), STORE_OK);
	assert_false(dup);
	rec_init(&r, "w021", ""); /* no key: never deduplicated */
	assert_int_equal(store_put_event(s, &r, &dup, NULL), STORE_OK);
	assert_int_equal(store_put_event(s, &r, &dup, NULL), STORE_OK);
	assert_false(dup);
	assert_int_equal(store_commit(s), STORE_OK);
	assert_false(store_in_batch(s));

	int64_t n;
	assert_int_equal(store_count_events(s, &n), STORE_OK);
	assert_int_equal(n, 4);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM event WHERE msg_id IS NULL"), 2);

	/* A rolled-back batch leaves nothing. */
	assert_int_equal(store_begin(s), STORE_OK);
	rec_init(&r, "w017", "rolled-back");
	assert_int_equal(store_put_event(s, &r, &dup, NULL), STORE_OK);
	store_rollback(s);
	assert_int_equal(store_count_events(s, &n), STORE_OK);
	assert_int_equal(n, 4);
	store_close(s);
}

static void test_rejected_payload_bounded(void **state)
{
	struct fx *f = *state;
	char err[512];
	struct store *s = store_open(f->path, 0, err, sizeof(err));
	assert_non_null(s);

	char big[5000];
	memset(big, 'x', sizeof(big));
	const unsigned char binary[] = { '{', 0xff, 0x00, '}' };
	/* 1023 ASCII bytes then a 3-byte character: cut before it, not inside. */
	char utf8[1100];
	memset(utf8, 'a', 1023);
	memcpy(utf8 + 1023, "\xe6\xb0\xb4", 3);

	assert_int_equal(store_begin(s), STORE_OK);
	assert_int_equal(store_put_rejected(s, 1, "patrol/a", big, sizeof(big), "too_large", "d"),
	                 STORE_OK);
	assert_int_equal(
	        store_put_rejected(s, 2, "patrol/b", binary, sizeof(binary), "bad_json", "d"),
	        STORE_OK);
	assert_int_equal(store_put_rejected(s, 3, "patrol/c", utf8, 1026, "bad_field", "d"),
	                 STORE_OK);
	assert_int_equal(store_commit(s), STORE_OK);
	store_close(s);

	assert_int_equal(q_int(f->path, "SELECT length(payload) FROM rejected WHERE recv_ms=1"),
	                 1024);
	assert_int_equal(q_int(f->path, "SELECT payload_len FROM rejected WHERE recv_ms=1"), 5000);
	assert_int_equal(
	        q_int(f->path, "SELECT typeof(payload)='text' FROM rejected WHERE recv_ms=1"), 1);
	assert_int_equal(
	        q_int(f->path, "SELECT typeof(payload)='blob' FROM rejected WHERE recv_ms=2"), 1);
	assert_int_equal(
	        q_int(f->path,
	              "SELECT length(CAST(payload AS BLOB)) FROM rejected WHERE recv_ms=2"),
	        4);
	assert_int_equal(
	        q_int(f->path,
	              "SELECT length(CAST(payload AS BLOB)) FROM rejected WHERE recv_ms=3"),
	        1023);
}

static void test_size_cap_is_retryable(void **state)
{
	struct fx *f = *state;
	char err[512];
	struct msg_record r;
	bool dup;
	enum store_status st = STORE_OK;
	struct store *s = store_open(f->path, 64 * 1024, err, sizeof(err));
	assert_non_null(s);

	char id[32];
	int i;
	for (i = 0; i < 100000 && st == STORE_OK; i++) {
		st = store_begin(s);
		snprintf(id, sizeof(id), "m%d", i);
		rec_init(&r, "w017", id);
		if (st == STORE_OK)
			st = store_put_event(s, &r, &dup, NULL);
		if (st == STORE_OK)
			st = store_commit(s);
	}
	assert_int_equal(st, STORE_RETRY);
	assert_non_null(strstr(store_errmsg(s), "full"));
	store_rollback(s);
	assert_false(store_in_batch(s));

	/* Space returns: the same message goes in. */
	assert_int_equal(store_set_max_size(s, 0), STORE_OK);
	assert_int_equal(store_begin(s), STORE_OK);
	assert_int_equal(store_put_event(s, &r, &dup, NULL), STORE_OK);
	assert_false(dup);
	assert_int_equal(store_commit(s), STORE_OK);
	int64_t n;
	assert_int_equal(store_count_events(s, &n), STORE_OK);
	assert_int_equal(n, i);
	store_close(s);
}

static void test_newer_schema_is_refused(void **state)
{
	struct fx *f = *state;
	char err[512];
	sqlite3 *db;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_null(store_open(f->path, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "newer"));
}

static off_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_size : 0;
}

/* A store on the fixture's file, and the path of its WAL. */
static int64_t writer_synchronous(struct store *s)
{
	sqlite3_stmt *st;
	int64_t v = -1;
	assert_int_equal(sqlite3_prepare_v2(store_db(s), "PRAGMA synchronous", -1, &st, NULL),
	                 SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* FULL (2) from the start: acks follow a COMMIT that fsync'ed the WAL.
 * NORMAL (1) only when asked, and never switched inside a batch. */
static void test_sync_full_unless_normal(void **state)
{
	struct fx *f = *state;
	char err[512];
	struct store *s = store_open(f->path, 0, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(writer_synchronous(s), 2);
	assert_int_equal(store_set_sync(s, false), STORE_OK);
	assert_int_equal(writer_synchronous(s), 1);
	assert_int_equal(store_begin(s), STORE_OK);
	assert_int_equal(store_set_sync(s, true), STORE_FATAL);
	assert_int_equal(store_commit(s), STORE_OK);
	assert_int_equal(writer_synchronous(s), 1);
	assert_int_equal(store_set_sync(s, true), STORE_OK);
	assert_int_equal(writer_synchronous(s), 2);
	store_close(s);
}

static struct store *open_with_wal(const struct fx *f, char *wal, size_t n)
{
	char err[512];
	struct store *s = store_open(f->path, 0, err, sizeof(err));
	assert_non_null(s);
	snprintf(wal, n, "%s-wal", f->path);
	return s;
}

/* The n-th message of a steady stream: 50 workers over 1,000 cells. */
static void put_nth(struct store *s, int n)
{
	struct msg_record r;
	char worker[16], id[32];
	snprintf(worker, sizeof(worker), "w%02d", n % 50);
	snprintf(id, sizeof(id), "m-%d", n);
	rec_init(&r, worker, id);
	snprintf(r.cell, sizeof(r.cell), "c%03d", (n * 7) % 1000);
	r.ts += n;
	bool dup = true;
	int64_t rowid = 0;
	assert_int_equal(store_put_event(s, &r, &dup, &rowid), STORE_OK);
	assert_false(dup);
}

/* Sustained ingest, shaped like the daemon's: many small transactions, one
 * row per message across 1,000 cells (so each batch dirties pages all over
 * the (cell, ts) index), and a reader looking in now and then like the CLI.
 * Checkpoints must keep up while the writer is busy, so that the WAL wraps
 * instead of growing by a few KB per row. */
static void test_wal_stays_bounded(void **state)
{
	struct fx *f = *state;
	char wal[160];
	struct store *s = open_with_wal(f, wal, sizeof(wal));

	off_t max_wal = 0;
	const int batches = 1000, per_batch = 40;
	for (int b = 0; b < batches; b++) {
		assert_int_equal(store_begin(s), STORE_OK);
		for (int i = 0; i < per_batch; i++)
			put_nth(s, b * per_batch + i);
		assert_int_equal(store_commit(s), STORE_OK);
		if (b % 100 == 99)
			assert_int_equal(q_int(f->path, "SELECT count(*) FROM event"),
			                 (b + 1) * per_batch);
		off_t w = file_size(wal);
		if (w > max_wal)
			max_wal = w;
	}
	/* 1,000 frames of 4 KiB between checkpoints, plus one batch: a few MB.
	 * Without working checkpoints it passes 100 MB here. */
	print_message("largest WAL: %lld bytes, database %lld bytes\n", (long long)max_wal,
	              (long long)file_size(f->path));
	assert_true(max_wal < 16 * 1024 * 1024);
	/* The rows reached the database file while it was open, not only at close. */
	assert_true(file_size(f->path) > 1024 * 1024);
	store_close(s);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM event"), batches * per_batch);
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void test_reclaim_empties_wal_without_waiting(void **state)
{
	struct fx *f = *state;
	char wal[160];
	struct store *s = open_with_wal(f, wal, sizeof(wal));
	for (int n = 0; n < 200; n++) {
		assert_int_equal(store_begin(s), STORE_OK);
		put_nth(s, n);
		assert_int_equal(store_commit(s), STORE_OK);
	}
	assert_true(file_size(wal) > 0);

	/* A reader's snapshot pins the WAL: BUSY at once, not after the
	 * 5 s busy timeout (the daemon's loop would stand still meanwhile). */
	sqlite3 *rd = NULL;
	assert_int_equal(sqlite3_open(f->path, &rd), SQLITE_OK);
	assert_int_equal(sqlite3_exec(rd, "BEGIN; SELECT count(*) FROM event;", NULL, NULL, NULL),
	                 SQLITE_OK);
	double t0 = now_s();
	assert_int_equal(store_reclaim(s), STORE_RETRY);
	assert_true(now_s() - t0 < 2.0);
	assert_true(file_size(wal) > 0);
	sqlite3_exec(rd, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(rd);

	assert_int_equal(store_reclaim(s), STORE_OK);
	assert_int_equal(file_size(wal), 0);
	/* The busy timeout is back for ordinary statements, and the rows are
	 * in the database file. */
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM event"), 200);
	assert_int_equal(store_begin(s), STORE_OK);
	put_nth(s, 200);
	assert_int_equal(store_commit(s), STORE_OK);
	store_close(s);
}

/* ------------------------------------------------------------ retention */

static void exec_ok(struct store *s, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(store_db(s), sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		fail_msg("%s: %s", sql, msg ? msg : sqlite3_errstr(rc));
}

/* Steps until nothing is left, with a tiny budget so that every table
 * takes several steps and the alert cursor has to carry over. */
static int prune_all(struct store *s, struct store_prune *p, const struct store_prune_limits *lim,
                     struct store_prune_counts *c)
{
	bool more = true;
	int steps = 0;
	while (more) {
		if (store_prune_step(p, lim, c, &more) != STORE_OK)
			fail_msg("prune step: %s", store_errmsg(s));
		assert_true(++steps < 100000);
	}
	return steps;
}

/* An alert row: kind, cell, at, repeat, level, event_type. */
static void put_alert(struct store *s, int id, const char *kind, const char *cell, int64_t at,
                      int repeat, const char *level, const char *type)
{
	char sql[512];
	snprintf(sql, sizeof(sql),
	         "INSERT INTO alert (id, kind, cell, at, repeat, level, text, doc) VALUES "
	         "(%d, '%s', %s%s%s, %lld, %d, %s%s%s, 't', json_object('event_type', %s%s%s))",
	         id, kind, cell ? "'" : "", cell ? cell : "NULL", cell ? "'" : "", (long long)at,
	         repeat, level ? "'" : "", level ? level : "NULL", level ? "'" : "",
	         type ? "'" : "", type ? type : "NULL", type ? "'" : "");
	exec_ok(s, sql);
}

static void put_delivery(struct store *s, int id, const char *state, int alert_id)
{
	char sql[256];
	snprintf(sql, sizeof(sql),
	         "INSERT OR IGNORE INTO delivery (id, sink, state, created_ms, next_ms) VALUES "
	         "(%d, 'k', '%s', 0, 0); INSERT INTO outbox VALUES (%d, 'k', %d)",
	         id, state, alert_id, id);
	exec_ok(s, sql);
}

static int64_t has_alert(const char *path, int id)
{
	char sql[64];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM alert WHERE id = %d", id);
	return q_int(path, sql);
}

static void test_prune_by_age(void **state)
{
	struct fx *f = *state;
	char err[256];
	struct store *s = store_open(f->path, 0, err, sizeof(err));
	assert_non_null(s);
	const int64_t cut = 1764000000; /* rows before this are old */

	assert_int_equal(store_begin(s), STORE_OK);
	for (int n = 0; n < 100; n++) {
		struct msg_record r;
		char id[16];
		snprintf(id, sizeof(id), "e%d", n);
		rec_init(&r, "w1", id);
		r.ts = n < 60 ? cut - 86400 + n : cut + n; /* 60 old, 40 new */
		bool dup;
		assert_int_equal(store_put_event(s, &r, &dup, NULL), STORE_OK);
		/* recv_ms is the only time that counts for rejected */
		assert_int_equal(store_put_rejected(s, n < 30 ? (cut - 10) * 1000 : cut * 1000 + n,
		                                    "t", "x", 1, "bad_json", "d"),
		                 STORE_OK);
	}
	/* Old alerts, delivered or without sinks: they go. */
	put_alert(s, 1, "event", "yh-01", cut - 500, 0, NULL, "fishing");
	put_delivery(s, 1, "delivered", 1);
	put_alert(s, 2, "event", "yh-01", cut - 400, 0, NULL, "fishing");
	put_delivery(s, 1, "delivered", 2); /* grouped with alert 1 */
	put_alert(s, 3, "digest", NULL, cut - 300, 0, NULL, NULL);
	put_delivery(s, 3, "expired", 3);
	/* Old but a sink may still get it: kept, with its delivery. */
	put_alert(s, 4, "event", "yh-02", cut - 300, 0, NULL, "fishing");
	put_delivery(s, 4, "pending", 4);
	put_alert(s, 5, "system", NULL, cut - 200, 0, NULL, NULL);
	put_delivery(s, 5, "inflight", 5);
	/* yh-01 overdue: 10 first, 11 a repeat, then recovered (12); again
	 * overdue (13, first) and repeated (14, 15): 14 and 15 are newer of
	 * their kind, 13 is the newest first alert, 15 the newest overdue. */
	put_alert(s, 10, "overdue", "yh-01", cut - 9000, 0, NULL, NULL);
	put_alert(s, 11, "overdue", "yh-01", cut - 8000, 1, NULL, NULL);
	put_alert(s, 12, "recovered", "yh-01", cut - 7000, 0, NULL, NULL);
	put_alert(s, 13, "overdue", "yh-01", cut - 6000, 0, NULL, NULL);
	put_alert(s, 14, "overdue", "yh-01", cut - 5000, 1, NULL, NULL);
	put_alert(s, 15, "overdue", "yh-01", cut - 4000, 2, NULL, NULL);
	/* Reading levels per event type: 20, 21 flood (21 newest), 22 rain. */
	put_alert(s, 20, "reading", "yh-01", cut - 900, 0, "alarm", "flood");
	put_alert(s, 21, "recovered", "yh-01", cut - 800, 0, "normal", "flood");
	put_alert(s, 22, "reading", "yh-01", cut - 850, 0, "warn", "rain");
	/* New: kept whatever. */
	put_alert(s, 30, "event", "yh-01", cut + 10, 0, NULL, "fishing");
	put_delivery(s, 30, "delivered", 30);
	assert_int_equal(store_commit(s), STORE_OK);

	struct store_prune *p = store_prune_new(s, err, sizeof(err));
	assert_non_null(p);
	struct store_prune_limits lim = { .by_age = true, .before_s = cut, .rows = 8 };
	struct store_prune_counts c = { 0 };
	int steps = prune_all(s, p, &lim, &c);
	print_message("pruned in %d steps\n", steps);
	assert_true(steps > 10);
	assert_int_equal(c.events, 60);
	assert_int_equal(c.rejected, 30);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM event WHERE ts < 1764000000"), 0);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM event"), 40);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM rejected"), 70);

	int gone[] = { 1, 2, 3, 10, 11, 14, 20 }, kept[] = { 4, 5, 12, 13, 15, 21, 22, 30 };
	for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
		if (has_alert(f->path, gone[i]))
			fail_msg("alert %d should be gone", gone[i]);
	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
		if (!has_alert(f->path, kept[i]))
			fail_msg("alert %d should be kept", kept[i]);
	assert_int_equal(c.alerts, 7);
	/* 1 (shared by alerts 1 and 2) and 3 went; 4, 5 and 30 stay. */
	assert_int_equal(c.deliveries, 2);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM delivery WHERE id IN (4, 5, 30)"), 3);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM delivery"), 3);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM outbox"), 3);
	assert_int_equal(q_int(f->path, "PRAGMA foreign_key_check"), -1);

	/* What the daemon reads at start is unchanged: the open overdue alert
	 * of yh-01 is 15 (repeat 2), not one pruned before it. */
	assert_int_equal(
	        q_int(f->path,
	              "SELECT a.id FROM alert a WHERE a.kind = 'overdue' AND a.id = "
	              "(SELECT max(id) FROM alert WHERE cell = a.cell AND kind = 'overdue') "
	              "AND NOT EXISTS (SELECT 1 FROM alert r WHERE r.cell = a.cell AND "
	              "r.kind = 'recovered' AND r.level IS NULL AND r.id > a.id)"),
	        15);

	/* Once delivered, the pending one goes on the next run. */
	exec_ok(s, "UPDATE delivery SET state = 'delivered' WHERE id = 4");
	store_prune_restart(p);
	struct store_prune_counts c2 = { 0 };
	prune_all(s, p, &lim, &c2);
	assert_int_equal(c2.alerts, 1);
	assert_int_equal(has_alert(f->path, 4), 0);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM delivery"), 2);

	/* Without an age limit nothing more goes. */
	struct store_prune_limits keep = { .by_age = false, .rows = 8 };
	struct store_prune_counts c3 = { 0 };
	store_prune_restart(p);
	prune_all(s, p, &keep, &c3);
	assert_int_equal(c3.events + c3.rejected + c3.alerts, 0);
	store_prune_free(p);
	store_close(s);
}

static void test_prune_caps_rejected(void **state)
{
	struct fx *f = *state;
	char err[256];
	struct store *s = store_open(f->path, 0, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(store_begin(s), STORE_OK);
	for (int n = 0; n < 500; n++)
		assert_int_equal(store_put_rejected(s, 1000 + n, "t", "x", 1, "bad_json", "d"),
		                 STORE_OK);
	assert_int_equal(store_commit(s), STORE_OK);
	struct store_prune *p = store_prune_new(s, err, sizeof(err));
	assert_non_null(p);
	struct store_prune_limits lim = { .max_rejected = 120, .rows = 50 };
	struct store_prune_counts c = { 0 };
	prune_all(s, p, &lim, &c);
	assert_int_equal(c.rejected, 380);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM rejected"), 120);
	/* The oldest went. */
	assert_int_equal(q_int(f->path, "SELECT min(recv_ms) FROM rejected"), 1000 + 380);
	/* No cap: nothing more goes. */
	lim.max_rejected = 0;
	prune_all(s, p, &lim, &c);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM rejected"), 120);
	store_prune_free(p);
	store_close(s);
}

/* A steady fill and prune: the file must stop growing. fresh: the store
 * creates the file (incremental auto_vacuum, which also gives space back);
 * otherwise an old database made with auto_vacuum=NONE, which can only
 * reuse its free pages. Returns the file sizes after each cycle. */
static void fill_prune_cycles(struct fx *f, bool fresh, off_t *sizes, int cycles)
{
	char err[256];
	if (!fresh) {
		sqlite3 *db;
		assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
		assert_int_equal(sqlite3_exec(db,
		                              "PRAGMA journal_mode=WAL; CREATE TABLE x(y);"
		                              "DROP TABLE x;",
		                              NULL, NULL, NULL),
		                 SQLITE_OK);
		sqlite3_close(db);
	}
	struct store *s = store_open(f->path, 0, err, sizeof(err));
	assert_non_null(s);
	struct store_prune *p = store_prune_new(s, err, sizeof(err));
	assert_non_null(p);
	assert_int_equal(store_prune_auto_vacuum(p), fresh ? 2 : 0);
	const int per_cycle = 20000;
	for (int cyc = 0; cyc < cycles; cyc++) {
		for (int b = 0; b < per_cycle / 500; b++) {
			assert_int_equal(store_begin(s), STORE_OK);
			for (int i = 0; i < 500; i++)
				put_nth(s, cyc * per_cycle + b * 500 + i); /* ts = base + n */
			assert_int_equal(store_commit(s), STORE_OK);
		}
		/* Keep the newest cycle only. */
		struct store_prune_limits lim = { .by_age = true,
			                          .rows = 2000,
			                          .before_s = 1764000000 + cyc * per_cycle };
		struct store_prune_counts c = { 0 };
		store_prune_restart(p);
		prune_all(s, p, &lim, &c);
		assert_int_equal(c.events, cyc ? per_cycle : 0);
		/* The file shrinks only at a checkpoint; measure what it is then. */
		assert_int_equal(store_reclaim(s), STORE_OK);
		sizes[cyc] = file_size(f->path);
	}
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM event"), per_cycle);
	store_prune_free(p);
	store_close(s);
}

/* The largest size over cycles [from, to). */
static off_t max_size(const off_t *sz, int from, int to)
{
	off_t m = 0;
	for (int i = from; i < to; i++)
		if (sz[i] > m)
			m = sz[i];
	return m;
}

#define PLATEAU_CYCLES 12

static void check_plateau(const off_t *sz)
{
	for (int i = 0; i < PLATEAU_CYCLES; i++)
		print_message("cycle %d: %lld bytes\n", i, (long long)sz[i]);
	/* The file settles once its pages are reused (cycle 1 on); growth of
	 * a whole cycle (~2 MB) per cycle is what a leak looks like. */
	off_t early = max_size(sz, 1, PLATEAU_CYCLES / 2);
	off_t late = max_size(sz, PLATEAU_CYCLES / 2, PLATEAU_CYCLES);
	assert_true(late <= early + early / 50);
}

static void test_prune_file_plateau_incremental(void **state)
{
	off_t sz[PLATEAU_CYCLES];
	fill_prune_cycles(*state, true, sz, PLATEAU_CYCLES);
	check_plateau(sz);
	/* And space is given back: after each prune the file holds about one
	 * cycle of rows (sz[0]) rather than the two it held before. */
	assert_true(sz[PLATEAU_CYCLES - 1] < sz[0] + sz[0] / 2);
}

static void test_prune_file_plateau_none(void **state)
{
	off_t sz[PLATEAU_CYCLES];
	fill_prune_cycles(*state, false, sz, PLATEAU_CYCLES);
	check_plateau(sz);
	/* Free pages are reused but never given back: two cycles' worth. */
	assert_true(sz[PLATEAU_CYCLES - 1] > sz[0] + sz[0] / 2);
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

static int64_t span_int(const char *path, const char *col, const char *type)
{
	char sql[256];
	snprintf(sql, sizeof(sql), "SELECT %s FROM event_span WHERE cell = 'yh-01' AND type = '%s'",
	         col, type);
	return q_int(path, sql);
}

static void put(struct store *s, const char *worker, const char *id, const char *type, int64_t ts,
                bool want_dup)
{
	struct msg_record r;
	bool dup;
	rec_init(&r, worker, id);
	strcpy(r.type, type);
	r.ts = ts;
	assert_int_equal(store_put_event(s, &r, &dup, NULL), STORE_OK);
	assert_int_equal(dup, want_dup);
}

static struct config *load_cfg(struct fx *f, const char *events)
{
	char path[192];
	struct config *cfg = NULL;
	struct config_errors errs = { 0 };
	snprintf(path, sizeof(path), "%s/gridpatrol.yaml", f->dir);
	FILE *y = fopen(path, "w");
	assert_non_null(y);
	fprintf(y, "storage:\n  path: \"%s\"\ncells:\n  - id: yh-01\n  - id: yh-02\n%s", f->path,
	        events);
	fclose(y);
	int rc = config_load(path, &cfg, &errs);
	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.v[i]);
	config_errors_free(&errs);
	assert_int_equal(rc, 0);
	return cfg;
}

static struct span_patrol last_of(struct store *s, const struct config *cfg, const char *cell)
{
	sqlite3_stmt *st;
	struct span_patrol p;
	assert_int_equal(span_prepare(store_db(s), &st), SQLITE_OK);
	assert_int_equal(span_last_patrol(st, cfg, cell, &p), SQLITE_OK);
	sqlite3_finalize(st);
	return p;
}

static void test_event_span_follows_events(void **state)
{
	struct fx *f = *state;
	char err[512];
	struct store *s = store_open(f->path, 0, err, sizeof(err));
	assert_non_null(s);

	assert_int_equal(store_begin(s), STORE_OK);
	put(s, "w017", "a1", "checkin", 1000, false);
	put(s, "w021", "a2", "checkin", 2000, false);
	put(s, "w030", "a3", "checkin", 500, false);  /* reported late: only the first moves */
	put(s, "w031", "a4", "checkin", 1500, false); /* in between: nothing moves */
	put(s, "w017", "a1", "checkin", 9000, true);  /* a duplicate never counts */
	put(s, "w040", "b1", "litter", 1700, false);
	assert_int_equal(store_commit(s), STORE_OK);
	assert_int_equal(span_int(f->path, "first_ts", "checkin"), 500);
	assert_int_equal(span_int(f->path, "last_ts", "checkin"), 2000);
	assert_int_equal(q_int(f->path, "SELECT last_worker = 'w021' FROM event_span "
	                                "WHERE type = 'checkin'"),
	                 1);
	assert_int_equal(span_int(f->path, "last_ts", "litter"), 1700);

	/* Rolled back with its batch. */
	assert_int_equal(store_begin(s), STORE_OK);
	put(s, "w050", "c1", "checkin", 3000, false);
	store_rollback(s);
	assert_int_equal(span_int(f->path, "last_ts", "checkin"), 2000);

	struct config *cfg = load_cfg(f, "events:\n  checkin: {}\n  litter: { patrol: false }\n");
	struct span_patrol p = last_of(s, cfg, "yh-01");
	assert_true(p.found);
	assert_int_equal(p.ts, 2000); /* litter at 1700 is not a patrol */
	assert_string_equal(p.worker, "w021");

	/* Kept when the events are gone (retention deletes old rows). */
	store_close(s);
	q_exec(f->path, "DELETE FROM event");
	s = store_open(f->path, 0, err, sizeof(err));
	assert_non_null(s);
	p = last_of(s, cfg, "yh-01");
	assert_true(p.found && p.ts == 2000);
	assert_int_equal(span_int(f->path, "first_ts", "checkin"), 500);
	store_close(s);
	config_free(cfg);
}

/* One reading of the last patrol (span.h): the newest row over the types
 * that count now; a type no longer configured still counts. */
static void test_span_last_patrol_filters_by_config(void **state)
{
	struct fx *f = *state;
	char err[512];
	struct store *s = store_open(f->path, 0, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(store_begin(s), STORE_OK);
	put(s, "w017", "a1", "checkin", 1000, false);
	put(s, "w021", "a2", "flood", 5000, false);   /* a reading, not a patrol */
	put(s, "w030", "a3", "retired", 3000, false); /* type since removed */
	assert_int_equal(store_commit(s), STORE_OK);

	struct config *cfg = load_cfg(f, "events:\n  checkin: {}\n"
	                                 "  flood: { patrol: false }\n");
	struct span_patrol p = last_of(s, cfg, "yh-01");
	assert_true(p.found);
	assert_int_equal(p.ts, 3000);
	assert_string_equal(p.worker, "w030");
	p = last_of(s, cfg, "yh-02");
	assert_false(p.found);
	config_free(cfg);

	/* The same rows when flood counts as a patrol. */
	cfg = load_cfg(f, "events:\n  checkin: {}\n  flood: {}\n");
	p = last_of(s, cfg, "yh-01");
	assert_true(p.found && p.ts == 5000);
	assert_string_equal(p.worker, "w021");
	config_free(cfg);
	store_close(s);
}

struct seen_row {
	char cell[16], type[16];
	int64_t i0, i1;
};

struct seen {
	struct seen_row r[8];
	int n;
};

static struct seen_row *seen_next(struct seen *v, const char *cell, const char *type)
{
	assert_true(v->n < 8);
	struct seen_row *r = &v->r[v->n++];
	snprintf(r->cell, sizeof(r->cell), "%s", cell);
	snprintf(r->type, sizeof(r->type), "%s", type ? type : "");
	return r;
}

static int seen_overdue_cb(void *arg, const struct store_open_overdue *row)
{
	struct seen_row *r = seen_next(arg, row->cell, NULL);
	r->i0 = row->at;
	r->i1 = row->repeat;
	return 0;
}

static int seen_level_cb(void *arg, const struct store_level *row)
{
	struct seen_row *r = seen_next(arg, row->cell, row->type);
	r->i0 = row->level;
	r->i1 = 0;
	return 0;
}

/* Start-up's per-cell probes over the alert table read the same state the
 * old whole-table queries did: the newest overdue alert with no patrol
 * recovery after it, and each reading type's newest level. */
static void test_open_overdue_and_levels_per_cell(void **state)
{
	struct fx *f = *state;
	char err[512];
	struct store *s = store_open(f->path, 0, err, sizeof(err));
	assert_non_null(s);
	store_close(s);
	/* In the order they were raised (ids follow time). yh-01: overdue,
	 * recovered, overdue again with a repeat: open; a reading's return to
	 * normal is no patrol recovery. yh-02: overdue, recovered in the same
	 * second: closed. A cell no longer configured is not restored. Levels:
	 * yh-01 flood warn -> normal -> alarm, rain warn -> normal; yh-02
	 * flood warn, newer than a normal of another type. */
	q_exec(f->path,
	       "INSERT INTO alert (kind, cell, at, repeat, level, text, doc) VALUES "
	       "('overdue', 'yh-01', 100, 0, NULL, '', '{}'),"
	       "('recovered', 'yh-01', 110, 0, NULL, '', '{}'),"
	       "('reading', 'yh-01', 120, 0, 'warn', '', '{\"event_type\":\"flood\"}'),"
	       "('recovered', 'yh-01', 130, 0, 'normal', '', '{\"event_type\":\"flood\"}'),"
	       "('reading', 'yh-01', 140, 0, 'alarm', '', '{\"event_type\":\"flood\"}'),"
	       "('reading', 'yh-01', 150, 0, 'warn', '', '{\"event_type\":\"rain\"}'),"
	       "('recovered', 'yh-02', 160, 0, 'normal', '', '{\"event_type\":\"rain\"}'),"
	       "('reading', 'yh-02', 170, 0, 'warn', '', '{\"event_type\":\"flood\"}'),"
	       "('overdue', 'yh-01', 200, 0, NULL, '', '{}'),"
	       "('overdue', 'yh-01', 300, 1, NULL, '', '{}'),"
	       "('recovered', 'yh-01', 310, 0, 'normal', '', '{\"event_type\":\"rain\"}'),"
	       "('overdue', 'yh-02', 400, 0, NULL, '', '{}'),"
	       "('recovered', 'yh-02', 400, 0, NULL, '', '{}'),"
	       "('overdue', 'gone', 500, 0, NULL, '', '{}')");
	struct config *cfg = load_cfg(f, "events:\n  checkin: {}\n"
	                                 "  flood: { value: { warn: 250, alarm: 300 } }\n"
	                                 "  rain: { value: { warn: 10 } }\n");
	s = store_open(f->path, 0, err, sizeof(err));
	assert_non_null(s);

	struct seen v = { .n = 0 };
	assert_int_equal(store_each_open_overdue(s, cfg, seen_overdue_cb, &v), STORE_OK);
	assert_int_equal(v.n, 1);
	assert_string_equal(v.r[0].cell, "yh-01");
	assert_int_equal(v.r[0].i0, 300);
	assert_int_equal(v.r[0].i1, 1);

	v.n = 0;
	assert_int_equal(store_each_level(s, cfg, seen_level_cb, &v), STORE_OK);
	assert_int_equal(v.n, 3);
	assert_string_equal(v.r[0].cell, "yh-01");
	assert_string_equal(v.r[0].type, "flood");
	assert_int_equal(v.r[0].i0, 2);
	assert_string_equal(v.r[1].type, "rain");
	assert_int_equal(v.r[1].i0, 0);
	assert_string_equal(v.r[2].cell, "yh-02");
	assert_string_equal(v.r[2].type, "flood");
	assert_int_equal(v.r[2].i0, 1);
	store_close(s);
	config_free(cfg);
}

struct mig_seen {
	int from, to, started, calls;
};

static void mig_cb(void *arg, int from, int to, bool started)
{
	struct mig_seen *m = arg;
	m->from = from;
	m->to = to;
	m->started += started;
	m->calls++;
}

static void test_migration_2_to_3_fills_event_span(void **state)
{
	struct fx *f = *state;
	char err[512];
	struct mig_seen m = { 0 };

	/* A schema-2 database: what migrations 0 and 1 made, with history. */
	store_on_migrate(mig_cb, &m);
	struct store *s = store_open(f->path, 0, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(m.calls, 0); /* a new database has no history to read */
	assert_int_equal(store_begin(s), STORE_OK);
	put(s, "w017", "a1", "checkin", 1000, false);
	put(s, "w021", "a2", "checkin", 3000, false);
	put(s, "w030", "a3", "checkin", 200, false);
	put(s, "w040", "b1", "litter", 2500, false);
	assert_int_equal(store_commit(s), STORE_OK);
	store_close(s);
	q_exec(f->path, "DROP TABLE claim_request; DROP INDEX alert_open; "
	                "DROP INDEX alert_claimed; "
	                "ALTER TABLE alert DROP COLUMN claimed_by; "
	                "ALTER TABLE alert DROP COLUMN claimed_at; "
	                "ALTER TABLE alert DROP COLUMN resolved_at; "
	                "DROP TABLE event_span; DROP TABLE daemon_state; "
	                "ALTER TABLE delivery DROP COLUMN ext_id; PRAGMA user_version = 2;");

	s = store_open(f->path, 0, err, sizeof(err));
	assert_non_null(s);
	store_on_migrate(NULL, NULL);
	assert_int_equal(q_int(f->path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	assert_int_equal(m.started, 1);
	assert_int_equal(m.from, 2);
	assert_int_equal(m.to, STORE_SCHEMA_VERSION);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM event_span"), 2);
	assert_int_equal(span_int(f->path, "first_ts", "checkin"), 200);
	assert_int_equal(span_int(f->path, "last_ts", "checkin"), 3000);
	assert_int_equal(q_int(f->path, "SELECT last_worker = 'w021' FROM event_span "
	                                "WHERE type = 'checkin'"),
	                 1);
	assert_int_equal(q_int(f->path, "SELECT last_worker = 'w040' FROM event_span "
	                                "WHERE type = 'litter'"),
	                 1);
	/* The rest of 2 -> 3: held deliveries keep their id, daemon state. */
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM pragma_table_info('delivery') "
	                                "WHERE name = 'ext_id'"),
	                 1);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM daemon_state"), 0);
	/* And kept up from there. */
	assert_int_equal(store_begin(s), STORE_OK);
	put(s, "w050", "a4", "checkin", 4000, false);
	assert_int_equal(store_commit(s), STORE_OK);
	assert_int_equal(span_int(f->path, "last_ts", "checkin"), 4000);
	store_close(s);
}

/* 3 -> 4 on a schema-3 file with alert history: overdue alerts end at the
 * patrol recovery after them, readings at their return to normal of the
 * same type, stored event alerts when raised; an open overdue stays open. */
static void test_migration_3_to_4_resolves_history(void **state)
{
	struct fx *f = *state;
	char err[512];

	struct store *s = store_open(f->path, 0, err, sizeof(err));
	assert_non_null(s);
	store_close(s);
	q_exec(f->path,
	       "DROP TABLE claim_request; DROP INDEX alert_open; "
	       "DROP INDEX alert_claimed; "
	       "ALTER TABLE alert DROP COLUMN claimed_by; "
	       "ALTER TABLE alert DROP COLUMN claimed_at; "
	       "ALTER TABLE alert DROP COLUMN resolved_at; PRAGMA user_version = 3;"
	       "INSERT INTO alert (id, kind, cell, at, repeat, level, text, doc) VALUES "
	       /* yh-01: an episode of two, ended at 400 */
	       "(1, 'overdue', 'yh-01', 100, 0, NULL, 't', '{}'),"
	       "(2, 'overdue', 'yh-01', 200, 1, NULL, 't', '{}'),"
	       "(3, 'recovered', 'yh-01', 400, 0, NULL, 't', '{}'),"
	       /* a reading of type level, its type's normal at 700; a
	                 * normal of another type before it does not end it */
	       "(4, 'reading', 'yh-01', 500, 0, 'warn', 't', '{\"event_type\":\"level\"}'),"
	       "(5, 'recovered', 'yh-01', 600, 0, 'normal', 't', '{\"event_type\":\"rain\"}'),"
	       "(6, 'recovered', 'yh-01', 700, 0, 'normal', 't', '{\"event_type\":\"level\"}'),"
	       "(7, 'event', 'yh-01', 800, 0, NULL, 't', '{}'),"
	       /* yh-02: still open; yh-01's recovery is not its own */
	       "(8, 'overdue', 'yh-02', 300, 0, NULL, 't', '{}');");

	s = store_open(f->path, 0, err, sizeof(err));
	assert_non_null(s);
	store_close(s);
	assert_int_equal(q_int(f->path, "PRAGMA user_version"), 4);
	assert_int_equal(q_int(f->path, "SELECT resolved_at FROM alert WHERE id = 1"), 400);
	assert_int_equal(q_int(f->path, "SELECT resolved_at FROM alert WHERE id = 2"), 400);
	assert_int_equal(q_int(f->path, "SELECT resolved_at FROM alert WHERE id = 4"), 700);
	assert_int_equal(q_int(f->path, "SELECT resolved_at FROM alert WHERE id = 7"), 800);
	assert_int_equal(q_int(f->path, "SELECT resolved_at IS NULL FROM alert WHERE id = 8"), 1);
	/* Only kinds that are tasks have an end. */
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM alert WHERE resolved_at IS NULL"), 4);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM alert WHERE claimed_by IS NOT NULL "
	                                "OR claimed_at IS NOT NULL"),
	                 0);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM claim_request"), 0);
	/* The open ones are found through the partial index. */
	sqlite3 *db;
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db,
	                                    "EXPLAIN QUERY PLAN SELECT id FROM alert WHERE "
	                                    "cell = 'yh-02' AND resolved_at IS NULL AND kind IN "
	                                    "('overdue', 'event', 'reading') ORDER BY at DESC",
	                                    -1, &st, NULL),
	                 SQLITE_OK);
	bool uses = false;
	while (sqlite3_step(st) == SQLITE_ROW)
		uses |= strstr((const char *)sqlite3_column_text(st, 3), "alert_open") != NULL;
	sqlite3_finalize(st);
	assert_true(uses);
	/* The workers sheet's claims, by when they were made, without a scan. */
	assert_int_equal(sqlite3_prepare_v2(db,
	                                    "EXPLAIN QUERY PLAN SELECT claimed_by FROM alert "
	                                    "WHERE claimed_at >= 1 AND claimed_at < 2 ORDER BY "
	                                    "claimed_by, claimed_at",
	                                    -1, &st, NULL),
	                 SQLITE_OK);
	uses = false;
	while (sqlite3_step(st) == SQLITE_ROW)
		uses |= strstr((const char *)sqlite3_column_text(st, 3), "alert_claimed") != NULL;
	sqlite3_finalize(st);
	sqlite3_close(db);
	assert_true(uses);
}

/* daemon_state: written with the batch, read back after a restart. */
static void test_daemon_state_survives_restart(void **state)
{
	struct fx *f = *state;
	char err[512];
	int64_t v = -1;
	bool found = true;

	struct store *s = store_open(f->path, 0, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(store_state_get(s, "k", &v, &found), STORE_OK);
	assert_false(found);
	assert_int_equal(store_state_put(s, "k", 41), STORE_OK);
	assert_int_equal(store_state_put(s, "k", 42), STORE_OK);
	assert_true(store_in_batch(s));
	assert_int_equal(store_commit(s), STORE_OK);
	assert_int_equal(store_state_put(s, "k", 43), STORE_OK);
	store_rollback(s);
	store_close(s);

	s = store_open(f->path, 0, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(store_state_get(s, "k", &v, &found), STORE_OK);
	assert_true(found);
	assert_int_equal(v, 42);
	store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_schema_wal_and_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_full_unless_normal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_span_follows_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migration_2_to_3_fills_event_span, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_migration_3_to_4_resolves_history, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_daemon_state_survives_restart, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_dedup_by_worker_and_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rejected_payload_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_size_cap_is_retryable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wal_stays_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reclaim_empties_wal_without_waiting, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_span_last_patrol_filters_by_config, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_open_overdue_and_levels_per_cell, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_prune_by_age, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prune_caps_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prune_file_plateau_incremental, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_prune_file_plateau_none, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
