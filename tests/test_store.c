/*
 * store tests on real SQLite files: schema and WAL, the single-writer lock,
 * dedup, bounded rejected payloads, the size cap as a retryable failure,
 * refusal of a schema newer than the binary, a WAL that stays bounded
 * under sustained writes, emptying the WAL after a failed batch
 * without waiting for a reader, and event_span: kept with each event and
 * filled from history by the 2 -> 3 migration.
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
	                                "('event','rejected','cell')"), 3);

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
	assert_int_equal(store_put_rejected(s, 1, "patrol/a", big, sizeof(big), "too_large", "d"), STORE_OK);
	assert_int_equal(store_put_rejected(s, 2, "patrol/b", binary, sizeof(binary), "bad_json", "d"), STORE_OK);
	assert_int_equal(store_put_rejected(s, 3, "patrol/c", utf8, 1026, "bad_field", "d"), STORE_OK);
	assert_int_equal(store_commit(s), STORE_OK);
	store_close(s);

	assert_int_equal(q_int(f->path, "SELECT length(payload) FROM rejected WHERE recv_ms=1"), 1024);
	assert_int_equal(q_int(f->path, "SELECT payload_len FROM rejected WHERE recv_ms=1"), 5000);
	assert_int_equal(q_int(f->path, "SELECT typeof(payload)='text' FROM rejected WHERE recv_ms=1"), 1);
	assert_int_equal(q_int(f->path, "SELECT typeof(payload)='blob' FROM rejected WHERE recv_ms=2"), 1);
	assert_int_equal(q_int(f->path, "SELECT length(CAST(payload AS BLOB)) FROM rejected WHERE recv_ms=2"), 4);
	assert_int_equal(q_int(f->path, "SELECT length(CAST(payload AS BLOB)) FROM rejected WHERE recv_ms=3"), 1023);
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
			assert_int_equal(q_int(f->path, "SELECT count(*) FROM event"), (b + 1) * per_batch);
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
	snprintf(sql, sizeof(sql),
	         "SELECT %s FROM event_span WHERE cell = 'yh-01' AND type = '%s'", col, type);
	return q_int(path, sql);
}

static void put(struct store *s, const char *worker, const char *id, const char *type,
                int64_t ts, bool want_dup)
{
	struct msg_record r;
	bool dup;
	rec_init(&r, worker, id);
	strcpy(r.type, type);
	r.ts = ts;
	assert_int_equal(store_put_event(s, &r, &dup, NULL), STORE_OK);
	assert_int_equal(dup, want_dup);
}

struct last_row {
	char type[32];
	int64_t ts;
	int n;
};

static int last_cb(void *arg, const char *cell, const char *type, int64_t ts, int64_t i1,
                   bool null1)
{
	struct last_row *l = arg;
	(void)i1, (void)null1;
	assert_string_equal(cell, "yh-01");
	if (strcmp(type, "checkin") == 0) {
		l->ts = ts;
		l->n++;
	}
	return 0;
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
	put(s, "w030", "a3", "checkin", 500, false);   /* reported late: only the first moves */
	put(s, "w031", "a4", "checkin", 1500, false);  /* in between: nothing moves */
	put(s, "w017", "a1", "checkin", 9000, true);   /* a duplicate never counts */
	put(s, "w040", "b1", "litter", 1700, false);
	assert_int_equal(store_commit(s), STORE_OK);
	assert_int_equal(span_int(f->path, "first_ts", "checkin"), 500);
	assert_int_equal(span_int(f->path, "last_ts", "checkin"), 2000);
	assert_int_equal(q_int(f->path, "SELECT last_worker = 'w021' FROM event_span "
	                                "WHERE type = 'checkin'"), 1);
	assert_int_equal(span_int(f->path, "last_ts", "litter"), 1700);

	/* Rolled back with its batch. */
	assert_int_equal(store_begin(s), STORE_OK);
	put(s, "w050", "c1", "checkin", 3000, false);
	store_rollback(s);
	assert_int_equal(span_int(f->path, "last_ts", "checkin"), 2000);

	struct last_row l = { .n = 0 };
	assert_int_equal(store_each_last_patrol(s, last_cb, &l), STORE_OK);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.ts, 2000);

	/* Kept when the events are gone (retention deletes old rows). */
	store_close(s);
	q_exec(f->path, "DELETE FROM event");
	s = store_open(f->path, 0, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(store_each_last_patrol(s, last_cb, &l), STORE_OK);
	assert_int_equal(l.ts, 2000);
	assert_int_equal(span_int(f->path, "first_ts", "checkin"), 500);
	store_close(s);
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
	q_exec(f->path, "DROP TABLE event_span; PRAGMA user_version = 2;");

	s = store_open(f->path, 0, err, sizeof(err));
	assert_non_null(s);
	store_on_migrate(NULL, NULL);
	assert_int_equal(q_int(f->path, "PRAGMA user_version"), 3);
	assert_int_equal(m.started, 1);
	assert_int_equal(m.from, 2);
	assert_int_equal(m.to, 3);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM event_span"), 2);
	assert_int_equal(span_int(f->path, "first_ts", "checkin"), 200);
	assert_int_equal(span_int(f->path, "last_ts", "checkin"), 3000);
	assert_int_equal(q_int(f->path, "SELECT last_worker = 'w021' FROM event_span "
	                                "WHERE type = 'checkin'"), 1);
	assert_int_equal(q_int(f->path, "SELECT last_worker = 'w040' FROM event_span "
	                                "WHERE type = 'litter'"), 1);
	/* And kept up from there. */
	assert_int_equal(store_begin(s), STORE_OK);
	put(s, "w050", "a4", "checkin", 4000, false);
	assert_int_equal(store_commit(s), STORE_OK);
	assert_int_equal(span_int(f->path, "last_ts", "checkin"), 4000);
	store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_schema_wal_and_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_span_follows_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migration_2_to_3_fills_event_span, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_dedup_by_worker_and_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rejected_payload_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_size_cap_is_retryable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wal_stays_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reclaim_empties_wal_without_waiting, setup,
		                                teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
