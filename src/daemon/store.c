/*
 * store: SQLite behind a narrow interface.
 *
 * Durability model: WAL; storage.sync picks synchronous=FULL (default) or
 * NORMAL. With FULL, SQLite fsyncs the WAL inside every COMMIT, so when
 * store_commit returns the batch is on disk and its acks, which leave only
 * after COMMIT, promise nothing a power cut can take back: one fsync per
 * batch (one transaction per poll wake-up), not per message. NORMAL
 * fsyncs only at checkpoints: a committed batch survives a crash of this
 * process but may sit in the page cache while its acks leave, so a power
 * cut can lose acknowledged messages (the daemon says so in its log).
 * The schema is versioned with PRAGMA user_version and migrated forward
 * inside one transaction.
 *
 * Checkpoints run in the writer right after COMMIT: a WAL hook doing what
 * SQLite's automatic checkpoint does, at 1000 frames or sooner when the
 * disk is nearly full (store_wal_hook). They were once moved to a helper
 * thread with its own connection; under sustained load that thread never
 * caught up with the writer at the moment a write transaction began, so
 * the WAL never restarted and grew by ~3 KB per message (660 MB after
 * 200,000), making every page lookup slower. A checkpoint in the writer
 * finishes before the next BEGIN, so the WAL wraps and stays at a few MB.
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "utf8.h"

/* How long a statement waits for another connection's lock (a report
 * reading, a CLI ack) before failing with SQLITE_BUSY. */
#define STORE_BUSY_MS 5000

/* SQLite's own automatic checkpoint interval, and the least the WAL is
 * allowed to hold before a checkpoint however full the disk. */
#define STORE_WAL_FRAMES_MAX 1000
#define STORE_WAL_FRAMES_MIN 16

struct store {
	sqlite3 *db;
	int lock_fd;
	bool in_batch;
	int page_size; /* bytes, > 0 */
	int fail_rc;   /* SQLite's code for the last failure, SQLITE_OK since BEGIN */
	sqlite3_stmt *begin, *commit, *rollback;
	sqlite3_stmt *put_event, *put_span, *put_rejected, *cell_known, *count_events;
	sqlite3_stmt *state_get, *state_put;
	char err[512];
};

/* Process-wide because it must be in place before store_open() returns a
 * store to attach it to. */
static store_migrate_cb *store_migrate_hook;
static void *store_migrate_arg;

void store_on_migrate(store_migrate_cb *cb, void *arg)
{
	store_migrate_hook = cb;
	store_migrate_arg = arg;
}

struct store_migrating {
	int from, to;
};

static int store_migrate_progress(void *arg)
{
	const struct store_migrating *m = arg;
	if (store_migrate_hook)
		store_migrate_hook(store_migrate_arg, m->from, m->to, false);
	return 0;
}

/* Migration N brings the schema from user_version N to N+1. Append only:
 * a released migration is never edited. */
static const char *const store_migrations[] = {
	/* 0 -> 1: ingest */
	"CREATE TABLE event ("
	"  id INTEGER PRIMARY KEY,"
	"  worker TEXT NOT NULL,"
	"  msg_id TEXT,"
	"  cell TEXT NOT NULL,"
	"  type TEXT NOT NULL,"
	"  ts INTEGER NOT NULL,"
	"  device_ts INTEGER,"
	"  recv_ms INTEGER NOT NULL,"
	"  lat REAL, lon REAL, value REAL,"
	"  note TEXT, photo TEXT,"
	"  flags TEXT NOT NULL DEFAULT '',"
	"  raw TEXT NOT NULL);"
	"CREATE UNIQUE INDEX event_dedup ON event(worker, msg_id);"
	"CREATE INDEX event_cell_ts ON event(cell, ts);"
	"CREATE INDEX event_ts ON event(ts);"
	"CREATE TABLE rejected ("
	"  id INTEGER PRIMARY KEY,"
	"  recv_ms INTEGER NOT NULL,"
	"  topic TEXT NOT NULL,"
	"  payload BLOB,"
	"  payload_len INTEGER NOT NULL,"
	"  reason TEXT NOT NULL,"
	"  detail TEXT NOT NULL);"
	"CREATE INDEX rejected_recv ON rejected(recv_ms);"
	"CREATE TABLE cell ("
	"  id TEXT PRIMARY KEY,"
	"  known_since INTEGER NOT NULL) WITHOUT ROWID;",

	/* 1 -> 2: alerts, their delivery, and pauses */
	"CREATE TABLE alert ("
	"  id INTEGER PRIMARY KEY,"
	"  kind TEXT NOT NULL,"  /* overdue recovered event reading digest system claimed */
	"  cell TEXT,"           /* NULL for digest and system */
	"  at INTEGER NOT NULL," /* raised, Unix seconds */
	"  due INTEGER,"         /* overdue: the deadline it is back-dated to */
	"  repeat INTEGER NOT NULL DEFAULT 0,"
	"  worker TEXT,"      /* recovered/event/reading: who reported */
	"  event_id INTEGER," /* the event row that caused it, if any */
	"  level TEXT,"       /* reading: warn, alarm or normal */
	"  value REAL,"
	"  text TEXT NOT NULL," /* in the configured language */
	"  doc TEXT NOT NULL);" /* the alert's JSON object for deliveries */
	"CREATE INDEX alert_at ON alert(at);"
	"CREATE INDEX alert_cell ON alert(cell, kind, at);"
	"CREATE TABLE delivery ("
	"  id INTEGER PRIMARY KEY," /* delivery_id is sink || '-' || printf('%06d', id) */
	"  sink TEXT NOT NULL,"
	"  state TEXT NOT NULL CHECK (state IN ('pending','inflight','delivered','expired')),"
	"  created_ms INTEGER NOT NULL,"
	"  next_ms INTEGER NOT NULL," /* group window end, then next try */
	"  tries INTEGER NOT NULL DEFAULT 0,"
	"  last_error TEXT,"
	"  done_ms INTEGER);"
	"CREATE INDEX delivery_pending ON delivery(state, next_ms);"
	"CREATE TABLE outbox ("
	"  alert_id INTEGER NOT NULL REFERENCES alert(id),"
	"  sink TEXT NOT NULL,"
	"  delivery_id INTEGER NOT NULL REFERENCES delivery(id),"
	"  PRIMARY KEY (alert_id, sink)) WITHOUT ROWID;"
	"CREATE INDEX outbox_delivery ON outbox(delivery_id);"
	"CREATE TABLE pause ("
	"  cell TEXT PRIMARY KEY,"
	"  since INTEGER NOT NULL," /* Unix seconds */
	"  until INTEGER,"          /* NULL: until resumed */
	"  reason TEXT) WITHOUT ROWID;",

	/* 2 -> 3: the newest and oldest event of each (cell, type), kept as
	 * events arrive, so that start-up, `status` and `report` read one row
	 * per cell and type instead of scanning a year of `event` (SPEC,
	 * Storage). Per type because whether a type counts as a patrol is
	 * configuration, which may change after the fact. Retention never
	 * touches it: a cell's first patrol and latest patrol stay known
	 * after their rows are deleted. Filled once from history here; the
	 * worker of the newest row is looked up through event_cell_ts. */
	"CREATE TABLE event_span ("
	"  cell TEXT NOT NULL,"
	"  type TEXT NOT NULL,"
	"  first_ts INTEGER NOT NULL," /* oldest patrol time ever stored */
	"  last_ts INTEGER NOT NULL,"  /* newest patrol time */
	"  last_worker TEXT NOT NULL," /* who reported the newest */
	"  PRIMARY KEY (cell, type)) WITHOUT ROWID;"
	"INSERT INTO event_span (cell, type, first_ts, last_ts, last_worker) "
	"  SELECT cell, type, min(ts), max(ts), '' FROM event GROUP BY cell, type;"
	"UPDATE event_span SET last_worker = (SELECT worker FROM event "
	"  WHERE event.cell = event_span.cell AND event.ts = event_span.last_ts "
	"  AND event.type = event_span.type ORDER BY id LIMIT 1);"
	/* A held alert's delivery was tried from memory as "<sink>-m<ms>"
	 * before it had a row; the row keeps that id so every later retry
	 * uses it too (SPEC: the same delivery_id on every retry). NULL: the
	 * usual "<sink>-<row id>". */
	"ALTER TABLE delivery ADD COLUMN ext_id TEXT;"
	/* Small facts that must survive a restart, written with a batch
	 * (e.g. the broker's dropped-messages counter last seen). */
	"CREATE TABLE daemon_state ("
	"  key TEXT PRIMARY KEY,"
	"  value) WITHOUT ROWID;",

	/* 3 -> 4: claims (SPEC, Claims): who claimed an alert and when, and
	 * when its episode ended, for `alerts` and `workers`. Existing
	 * overdue alerts end at the patrol recovery after them (the test
	 * store_each_open_overdue uses), readings at their return to normal;
	 * an open one stays open and can still be claimed. Event alerts had
	 * no end before, so those already stored count as ended when
	 * raised. alert_open finds a cell's open alerts without walking its
	 * history. */
	"ALTER TABLE alert ADD COLUMN claimed_by TEXT;"     /* worker or office --by NAME */
	"ALTER TABLE alert ADD COLUMN claimed_at INTEGER;"  /* the claim's time, Unix s */
	"ALTER TABLE alert ADD COLUMN resolved_at INTEGER;" /* its episode ended, Unix s */
	"UPDATE alert SET resolved_at = (SELECT min(r.at) FROM alert r WHERE "
	"  r.cell = alert.cell AND r.kind = 'recovered' AND r.level IS NULL "
	"  AND r.at >= alert.at AND r.id > alert.id) WHERE kind = 'overdue';"
	"UPDATE alert SET resolved_at = (SELECT min(r.at) FROM alert r WHERE "
	"  r.cell = alert.cell AND r.kind = 'recovered' AND r.level = 'normal' "
	"  AND r.at >= alert.at AND r.id > alert.id AND json_extract(r.doc, '$.event_type') "
	"  = json_extract(alert.doc, '$.event_type')) WHERE kind = 'reading';"
	"UPDATE alert SET resolved_at = at WHERE kind = 'event';"
	"CREATE INDEX alert_open ON alert(cell, at) WHERE resolved_at IS NULL "
	"  AND kind IN ('overdue', 'event', 'reading');"
	/* The workers sheet picks claims by when they were made. */
	"CREATE INDEX alert_claimed ON alert(claimed_at) WHERE claimed_at IS NOT NULL;"
	/* `gridpatrol claim` from the office: the CLI leaves a request, the
	 * daemon (which owns alerts and the outbox) carries it out in its
	 * batch and deletes it, as it picks up pauses. */
	"CREATE TABLE claim_request ("
	"  id INTEGER PRIMARY KEY,"
	"  at INTEGER NOT NULL," /* when it was made, Unix seconds */
	"  by TEXT NOT NULL,"    /* who claims (--by) */
	"  cell TEXT NOT NULL,"
	"  alert_id INTEGER NOT NULL);",
};

#define STORE_N_MIGRATIONS (sizeof(store_migrations) / sizeof(store_migrations[0]))

_Static_assert(STORE_N_MIGRATIONS == STORE_SCHEMA_VERSION, "one migration per schema version");

static enum store_status store_fail(struct store *s, int rc, const char *what)
{
	s->fail_rc = rc;
	snprintf(s->err, sizeof(s->err), "%s: %s (%s)", what, sqlite3_errmsg(s->db),
	         sqlite3_errstr(rc));
	switch (rc & 0xff) {
	case SQLITE_FULL:
	case SQLITE_IOERR:
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
	case SQLITE_READONLY:
	case SQLITE_CANTOPEN:
	case SQLITE_NOMEM:
	case SQLITE_PROTOCOL:
		return STORE_RETRY;
	default:
		return STORE_FATAL;
	}
}

const char *store_errmsg(const struct store *s)
{
	return s->err;
}

bool store_failed_full(const struct store *s)
{
	return (s->fail_rc & 0xff) == SQLITE_FULL;
}

sqlite3 *store_db(struct store *s)
{
	return s->db;
}

enum store_status store_status_of(struct store *s, int rc, const char *what)
{
	return store_fail(s, rc, what);
}

static int store_take_lock(struct store *s, const char *path, char *err, size_t errlen)
{
	char lockpath[4096];
	if ((size_t)snprintf(lockpath, sizeof(lockpath), "%s.lock", path) >= sizeof(lockpath)) {
		snprintf(err, errlen, "database path too long");
		return -1;
	}
	s->lock_fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (s->lock_fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", lockpath, strerror(errno));
		return -1;
	}
	if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		char pid[32] = "";
		ssize_t n = pread(s->lock_fd, pid, sizeof(pid) - 1, 0);
		if (n > 0) {
			pid[n] = '\0';
			pid[strcspn(pid, "\n")] = '\0';
		}
		if (e == EWOULDBLOCK)
			snprintf(err, errlen,
			         "%s is in use by another gridpatrold (pid %s); refusing to start",
			         path, n > 0 ? pid : "unknown");
		else
			snprintf(err, errlen, "cannot lock %s: %s", lockpath, strerror(e));
		return -1;
	}
	char pid[32];
	int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(s->lock_fd, 0) < 0 || pwrite(s->lock_fd, pid, (size_t)len, 0) != len) {
		/* The pid is only a courtesy for the error message above. */
	}
	return 0;
}

static int store_exec(struct store *s, const char *sql, const char *what)
{
	char *msg = NULL;
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		snprintf(s->err, sizeof(s->err), "%s: %s", what, msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static int store_user_version(struct store *s, int *out)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL);
	if (rc != SQLITE_OK) {
		store_fail(s, rc, "read schema version");
		return -1;
	}
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		store_fail(s, rc, "read schema version");
		sqlite3_finalize(st);
		return -1;
	}
	*out = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return 0;
}

static int store_migrate(struct store *s)
{
	int version;
	char sql[64];

	if (store_exec(s, "BEGIN IMMEDIATE", "begin migration") < 0)
		return -1;
	if (store_user_version(s, &version) < 0)
		goto fail;
	if (version > STORE_SCHEMA_VERSION) {
		snprintf(s->err, sizeof(s->err),
		         "database schema version %d is newer than this gridpatrold (%d); "
		         "refusing to touch it",
		         version, STORE_SCHEMA_VERSION);
		goto fail;
	}
	/* Filling event_span (2 -> 3) reads all history once; the hook lets
	 * the daemon say so and keep systemd's start timeout at bay. */
	struct store_migrating m = { version, STORE_SCHEMA_VERSION };
	if (store_migrate_hook && version > 0 && version < STORE_SCHEMA_VERSION) {
		store_migrate_hook(store_migrate_arg, version, STORE_SCHEMA_VERSION, true);
		sqlite3_progress_handler(s->db, 1000000, store_migrate_progress, &m);
	}
	for (int v = version; v < STORE_SCHEMA_VERSION; v++) {
		if (store_exec(s, store_migrations[v], "migrate schema") < 0) {
			sqlite3_progress_handler(s->db, 0, NULL, NULL);
			goto fail;
		}
	}
	sqlite3_progress_handler(s->db, 0, NULL, NULL);
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", STORE_SCHEMA_VERSION);
	if (store_exec(s, sql, "set schema version") < 0)
		goto fail;
	if (store_exec(s, "COMMIT", "commit migration") < 0)
		goto fail;
	return 0;
fail:
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

static int store_prepare(struct store *s, sqlite3_stmt **st, const char *sql)
{
	int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
	if (rc != SQLITE_OK) {
		store_fail(s, rc, "prepare statement");
		return -1;
	}
	return 0;
}

enum store_status store_set_max_size(struct store *s, int64_t max_size)
{
	char sql[96];
	/* 0 restores SQLite's own ceiling; the pragma never shrinks below the
	 * current size, so lowering it just stops growth. */
	long long pages = 4294967294LL;
	if (max_size > 0) {
		pages = max_size / s->page_size;
		if (pages < 1)
			pages = 1;
	}
	snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld", pages);
	if (store_exec(s, sql, "set max_page_count") < 0)
		return STORE_FATAL;
	return STORE_OK;
}

enum store_status store_set_sync(struct store *s, bool full)
{
	/* Takes effect with the next COMMIT; it may not change inside one. */
	if (s->in_batch) {
		snprintf(s->err, sizeof(s->err), "set synchronous: a batch is open");
		return STORE_FATAL;
	}
	if (store_exec(s, full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
	               "set synchronous") < 0)
		return STORE_FATAL;
	if (full) {
		/* Batches committed under NORMAL may still sit in the page
		 * cache, the last one with its acks not yet sent: flush the
		 * WAL now, so that "full" holds from the first ack after the
		 * switch. Any descriptor of the file flushes it. */
		const char *wal = sqlite3_filename_wal(sqlite3_db_filename(s->db, "main"));
		int fd = wal ? open(wal, O_RDONLY | O_CLOEXEC) : -1;
		if (fd < 0 && errno != ENOENT) {
			snprintf(s->err, sizeof(s->err), "open %s: %s", wal, strerror(errno));
			return STORE_RETRY;
		}
		if (fd >= 0) {
			int rc = fdatasync(fd);
			int e = errno;
			close(fd);
			if (rc < 0) {
				snprintf(s->err, sizeof(s->err), "fdatasync %s: %s", wal,
				         strerror(e));
				return STORE_RETRY;
			}
		}
	}
	return STORE_OK;
}

/* A checkpoint copies the WAL's pages into the database file, which may
 * grow by as many pages as the WAL holds; until then the WAL cannot be
 * reused. With SQLite's fixed 1000 frames (~4 MB) a disk with less free
 * space fills with WAL first, after which neither a commit nor a
 * checkpoint fits, and the daemon stalls though its rows would fit. So
 * the interval shrinks with the free space: the WAL holds at most a
 * quarter of it, leaving room for the checkpoint's growth. One statvfs()
 * per commit, a batch of messages under load. */
static int store_wal_limit(struct store *s, sqlite3 *db, const char *name)
{
	const char *file = sqlite3_db_filename(db, name);
	struct statvfs sv;
	if (!file || !*file || statvfs(file, &sv) != 0)
		return STORE_WAL_FRAMES_MAX;
	unsigned long long free_pages = (unsigned long long)sv.f_bavail * sv.f_frsize /
	                                (unsigned)s->page_size;
	if (free_pages / 4 >= STORE_WAL_FRAMES_MAX)
		return STORE_WAL_FRAMES_MAX;
	if (free_pages / 4 <= STORE_WAL_FRAMES_MIN)
		return STORE_WAL_FRAMES_MIN;
	return (int)(free_pages / 4);
}

static int store_wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct store *s = arg;
	if (frames >= STORE_WAL_FRAMES_MIN && frames >= store_wal_limit(s, db, name))
		/* PASSIVE, as SQLite's own: never waits for readers. A failure
		 * (busy, disk full) leaves the WAL as it was; the next commit
		 * tries again. */
		(void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	return SQLITE_OK;
}

struct store *store_open(const char *path, int64_t max_size, char *err, size_t errlen)
{
	struct store *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->lock_fd = -1;
	if (store_take_lock(s, path, err, errlen) < 0)
		goto fail;

	int rc = sqlite3_open_v2(path, &s->db,
	                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	                         NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot open database %s: %s", path,
		         s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, STORE_BUSY_MS);
	/* Lets retention give freed pages back (store_prune_step). It takes
	 * effect only on a new, empty file and only before journal_mode=WAL
	 * writes the header (measured: after it, a new file stays at NONE);
	 * on an existing file it is a no-op, whatever that file has. */
	if (store_exec(s, "PRAGMA auto_vacuum=INCREMENTAL", "set auto_vacuum") < 0)
		goto fail_msg;

	/* journal_mode answers with the mode in effect; anything but "wal"
	 * (a read-only directory, a network filesystem) would silently turn
	 * readers into blockers, so it is fatal here. */
	sqlite3_stmt *st;
	rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
	if (rc != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW ||
	    strcmp((const char *)sqlite3_column_text(st, 0), "wal") != 0) {
		snprintf(err, errlen, "cannot put %s in WAL mode: %s", path, sqlite3_errmsg(s->db));
		sqlite3_finalize(st);
		goto fail;
	}
	sqlite3_finalize(st);
	/* Fixed from here on: WAL mode does not let it change. */
	s->page_size = 4096;
	if (sqlite3_prepare_v2(s->db, "PRAGMA page_size", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) > 0)
			s->page_size = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_wal_hook(s->db, store_wal_hook, s); /* replaces the automatic checkpoint */

	/* cache_size: the three indexes of `event` stay hot under load (pages
	 * are only allocated as used, so an idle daemon stays small). */
	/* FULL until the caller says otherwise (store_set_sync): the safe
	 * side for anything that writes before the configuration is applied. */
	if (store_exec(s,
	               "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
	               "PRAGMA journal_size_limit=67108864; PRAGMA cache_size=-8192;",
	               "set pragmas") < 0 ||
	    store_migrate(s) < 0 || store_set_max_size(s, max_size) != STORE_OK)
		goto fail_msg;

	if (store_prepare(s, &s->begin, "BEGIN IMMEDIATE") < 0 ||
	    store_prepare(s, &s->commit, "COMMIT") < 0 ||
	    store_prepare(s, &s->rollback, "ROLLBACK") < 0 ||
	    store_prepare(s, &s->put_event,
	                  "INSERT OR IGNORE INTO event (worker, msg_id, cell, type, ts, "
	                  "device_ts, recv_ms, lat, lon, value, note, photo, flags, raw) "
	                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)") <
	            0 ||
	    /* An in-order event is the newest of its cell and type and moves
	     * last_ts; the WHERE spares a late one that is not the oldest
	     * either the write. SET expressions read the row as it was. */
	    store_prepare(s, &s->put_span,
	                  "INSERT INTO event_span (cell, type, first_ts, last_ts, last_worker) "
	                  "VALUES (?1, ?2, ?3, ?3, ?4) ON CONFLICT (cell, type) DO UPDATE SET "
	                  "first_ts = min(first_ts, excluded.first_ts), "
	                  "last_ts = max(last_ts, excluded.last_ts), "
	                  "last_worker = CASE WHEN excluded.last_ts > last_ts "
	                  "  THEN excluded.last_worker ELSE last_worker END "
	                  "WHERE excluded.last_ts > last_ts OR excluded.first_ts < first_ts") < 0 ||
	    store_prepare(s, &s->put_rejected,
	                  "INSERT INTO rejected (recv_ms, topic, payload, payload_len, reason, "
	                  "detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)") < 0 ||
	    store_prepare(s, &s->cell_known,
	                  "INSERT OR IGNORE INTO cell (id, known_since) VALUES (?1, ?2)") < 0 ||
	    store_prepare(s, &s->count_events, "SELECT count(*) FROM event") < 0 ||
	    store_prepare(s, &s->state_get, "SELECT value FROM daemon_state WHERE key = ?1") < 0 ||
	    store_prepare(s, &s->state_put,
	                  "INSERT INTO daemon_state (key, value) VALUES (?1, ?2) "
	                  "ON CONFLICT (key) DO UPDATE SET value = excluded.value") < 0)
		goto fail_msg;
	return s;

fail_msg:
	snprintf(err, errlen, "%s: %s", path, s->err);
fail:
	store_close(s);
	return NULL;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	if (s->db) {
		if (s->in_batch)
			store_rollback(s);
		sqlite3_finalize(s->begin);
		sqlite3_finalize(s->commit);
		sqlite3_finalize(s->rollback);
		sqlite3_finalize(s->put_event);
		sqlite3_finalize(s->put_span);
		sqlite3_finalize(s->state_get);
		sqlite3_finalize(s->state_put);
		sqlite3_finalize(s->put_rejected);
		sqlite3_finalize(s->cell_known);
		sqlite3_finalize(s->count_events);
		sqlite3_close(s->db);
	}
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	free(s);
}

/* Run a statement that returns no rows, then make it reusable. */
static enum store_status store_step_done(struct store *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	enum store_status ret = STORE_OK;
	if (rc != SQLITE_DONE)
		ret = store_fail(s, rc, what);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return ret;
}

enum store_status store_begin(struct store *s)
{
	if (s->in_batch)
		return STORE_OK;
	s->fail_rc = SQLITE_OK;
	enum store_status st = store_step_done(s, s->begin, "begin");
	if (st == STORE_OK)
		s->in_batch = true;
	return st;
}

bool store_in_batch(const struct store *s)
{
	return s->in_batch;
}

enum store_status store_commit(struct store *s)
{
	if (!s->in_batch)
		return STORE_OK;
	enum store_status st = store_step_done(s, s->commit, "commit");
	if (st == STORE_OK || sqlite3_get_autocommit(s->db))
		s->in_batch = false;
	return st;
}

void store_rollback(struct store *s)
{
	/* After SQLITE_FULL or an I/O error SQLite may already have rolled
	 * back on its own; a second ROLLBACK would only fail. */
	if (!sqlite3_get_autocommit(s->db)) {
		sqlite3_step(s->rollback);
		sqlite3_reset(s->rollback);
	}
	s->in_batch = false;
}

enum store_status store_reclaim(struct store *s)
{
	if (!sqlite3_get_autocommit(s->db)) {
		/* The rollback before this failed: a checkpoint now could not
		 * restart the WAL. */
		snprintf(s->err, sizeof(s->err), "checkpoint: a transaction is still open");
		return STORE_RETRY;
	}
	/* store_wal_hook keeps the WAL within the free space it sees, but the
	 * disk can fill from elsewhere after the WAL grew. TRUNCATE gives the
	 * WAL's space back once every page is in the database. Without
	 * waiting: a reader (a report) only makes it BUSY, and the next
	 * failure tries again. */
	sqlite3_busy_timeout(s->db, 0);
	int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	sqlite3_busy_timeout(s->db, STORE_BUSY_MS);
	if (rc != SQLITE_OK)
		return store_fail(s, rc, "checkpoint");
	return STORE_OK;
}

static int store_bind_text(sqlite3_stmt *st, int i, const char *v, int len)
{
	return sqlite3_bind_text(st, i, v, len, SQLITE_STATIC);
}

enum store_status store_event_seen(struct store *s, const struct msg_record *r, bool *seen)
{
	sqlite3_stmt *st;
	/* Prepared per call: only claims naming an alert ask. */
	int rc = sqlite3_prepare_v2(s->db, "SELECT 1 FROM event WHERE worker = ?1 AND msg_id = ?2",
	                            -1, &st, NULL);
	*seen = false;
	if (rc != SQLITE_OK)
		return store_fail(s, rc, "prepare duplicate check");
	if ((rc = store_bind_text(st, 1, r->worker, -1)) == SQLITE_OK &&
	    (rc = store_bind_text(st, 2, r->msg_id, -1)) == SQLITE_OK)
		rc = sqlite3_step(st);
	*seen = rc == SQLITE_ROW;
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_fail(s, rc, "check duplicate");
	return STORE_OK;
}

enum store_status store_put_event(struct store *s, const struct msg_record *r, bool *dup,
                                  int64_t *rowid)
{
	sqlite3_stmt *st = s->put_event;
	char flags[64];
	int rc = 0;

	msg_flags_format(r->flags, flags, sizeof(flags));
	rc |= store_bind_text(st, 1, r->worker, -1);
	rc |= r->msg_id[0] ? store_bind_text(st, 2, r->msg_id, -1) : sqlite3_bind_null(st, 2);
	rc |= store_bind_text(st, 3, r->cell, -1);
	rc |= store_bind_text(st, 4, r->type, -1);
	rc |= sqlite3_bind_int64(st, 5, r->ts);
	rc |= r->has_device_ts ? sqlite3_bind_int64(st, 6, r->device_ts) : sqlite3_bind_null(st, 6);
	rc |= sqlite3_bind_int64(st, 7, r->recv_ms);
	if (r->has_pos) {
		rc |= sqlite3_bind_double(st, 8, r->lat);
		rc |= sqlite3_bind_double(st, 9, r->lon);
	} else {
		rc |= sqlite3_bind_null(st, 8);
		rc |= sqlite3_bind_null(st, 9);
	}
	rc |= r->has_value ? sqlite3_bind_double(st, 10, r->value) : sqlite3_bind_null(st, 10);
	rc |= r->has_note ? store_bind_text(st, 11, r->note, -1) : sqlite3_bind_null(st, 11);
	rc |= r->has_photo ? store_bind_text(st, 12, r->photo, -1) : sqlite3_bind_null(st, 12);
	rc |= sqlite3_bind_text(st, 13, flags, -1, SQLITE_TRANSIENT);
	rc |= sqlite3_bind_text(st, 14, r->raw_len ? (const char *)r->raw : "", (int)r->raw_len,
	                        SQLITE_STATIC);
	if (rc != SQLITE_OK) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return store_fail(s, rc, "bind event");
	}
	enum store_status ret = store_step_done(s, st, "insert event");
	if (ret != STORE_OK)
		return ret;
	*dup = sqlite3_changes(s->db) == 0;
	if (*dup)
		return STORE_OK;
	if (rowid)
		*rowid = sqlite3_last_insert_rowid(s->db);

	/* Same transaction as the row: the span never runs ahead of what
	 * committed, nor behind it. */
	st = s->put_span;
	rc = store_bind_text(st, 1, r->cell, -1);
	rc |= store_bind_text(st, 2, r->type, -1);
	rc |= sqlite3_bind_int64(st, 3, r->ts);
	rc |= store_bind_text(st, 4, r->worker, -1);
	if (rc != SQLITE_OK) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return store_fail(s, rc, "bind event span");
	}
	return store_step_done(s, st, "update event span");
}

/* Length of the longest prefix of p[0..len) that is well-formed UTF-8 and
 * ends on a character boundary, or (size_t)-1 if the whole input is not
 * UTF-8 (or holds a NUL), in which case the caller stores bytes. */
static size_t store_utf8_prefix(const unsigned char *p, size_t len, size_t limit)
{
	if (utf8_check((const char *)p, len) != len)
		return (size_t)-1;
	return utf8_prefix((const char *)p, len, limit);
}

static int store_bind_bounded(sqlite3_stmt *st, int idx, const void *data, size_t len, size_t limit,
                              bool blob_ok)
{
	size_t n = store_utf8_prefix(data, len, limit);
	if (n != (size_t)-1)
		return sqlite3_bind_text(st, idx, len ? data : "", (int)n, SQLITE_TRANSIENT);
	if (!blob_ok)
		return sqlite3_bind_text(st, idx, "(not UTF-8)", -1, SQLITE_STATIC);
	return sqlite3_bind_blob(st, idx, len ? data : "", (int)(len < limit ? len : limit),
	                         SQLITE_TRANSIENT);
}

enum store_status store_put_rejected(struct store *s, int64_t recv_ms, const char *topic,
                                     const void *payload, size_t len, const char *reason,
                                     const char *detail)
{
	sqlite3_stmt *st = s->put_rejected;
	int rc = 0;

	/* Valid UTF-8 is stored as text so the CLI can show it; anything else
	 * as a bounded blob, so a hostile payload is kept as evidence but can
	 * never be mistaken for text. */
	rc |= sqlite3_bind_int64(st, 1, recv_ms);
	rc |= store_bind_bounded(st, 2, topic, strlen(topic), STORE_REJECTED_TOPIC_MAX, false);
	rc |= store_bind_bounded(st, 3, payload, len, STORE_REJECTED_PAYLOAD_MAX, true);
	rc |= sqlite3_bind_int64(st, 4, (sqlite3_int64)len);
	rc |= store_bind_text(st, 5, reason, -1);
	rc |= store_bind_text(st, 6, detail, -1);
	if (rc != SQLITE_OK) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return store_fail(s, rc, "bind rejected");
	}
	return store_step_done(s, st, "insert rejected");
}

enum store_status store_sync_cells(struct store *s, const struct config *cfg, int64_t now_s)
{
	enum store_status st = store_begin(s);
	if (st != STORE_OK)
		return st;
	for (size_t i = 0; i < cfg->n_cells; i++) {
		if (store_bind_text(s->cell_known, 1, cfg->cells[i].id, -1) != SQLITE_OK ||
		    sqlite3_bind_int64(s->cell_known, 2, now_s) != SQLITE_OK) {
			st = store_fail(s, sqlite3_errcode(s->db), "bind cell");
			sqlite3_reset(s->cell_known);
			break;
		}
		st = store_step_done(s, s->cell_known, "insert cell");
		if (st != STORE_OK)
			break;
	}
	if (st == STORE_OK)
		return store_commit(s);
	store_rollback(s);
	return st;
}

enum store_status store_count_events(struct store *s, int64_t *out)
{
	int rc = sqlite3_step(s->count_events);
	enum store_status st = STORE_OK;
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(s->count_events, 0);
	else
		st = store_fail(s, rc, "count events");
	sqlite3_reset(s->count_events);
	return st;
}

enum store_status store_state_get(struct store *s, const char *key, int64_t *value, bool *found)
{
	int rc = sqlite3_bind_text(s->state_get, 1, key, -1, SQLITE_STATIC);
	enum store_status st = STORE_OK;

	*found = false;
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s->state_get);
	if (rc == SQLITE_ROW) {
		*found = sqlite3_column_type(s->state_get, 0) == SQLITE_INTEGER;
		if (*found)
			*value = sqlite3_column_int64(s->state_get, 0);
	} else if (rc != SQLITE_DONE) {
		st = store_fail(s, rc, "read daemon state");
	}
	sqlite3_reset(s->state_get);
	sqlite3_clear_bindings(s->state_get);
	return st;
}

enum store_status store_state_put(struct store *s, const char *key, int64_t value)
{
	enum store_status st = store_begin(s);
	int rc;

	if (st != STORE_OK)
		return st;
	if ((rc = sqlite3_bind_text(s->state_put, 1, key, -1, SQLITE_STATIC)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(s->state_put, 2, value)) != SQLITE_OK ||
	    (rc = sqlite3_step(s->state_put)) != SQLITE_DONE)
		st = store_fail(s, rc, "write daemon state");
	sqlite3_reset(s->state_put);
	sqlite3_clear_bindings(s->state_put);
	return st;
}

enum store_status store_data_version(struct store *s, int64_t *out)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(s->db, "PRAGMA data_version", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_fail(s, rc, "data_version");
	rc = sqlite3_step(st);
	enum store_status ret = STORE_OK;
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	else
		ret = store_fail(s, rc, "data_version");
	sqlite3_finalize(st);
	return ret;
}

/* ------------------------------------------------------------------ */
/* retention                                                           */

/* Pages given back per step: 1 MiB at 4 KiB pages. Each moved page is a
 * WAL frame, so this bounds the step's vacuum share of the lock time and
 * the WAL it adds. */
#define STORE_PRUNE_VACUUM_PAGES 256
/* Alerts handled per step: each costs its row, its outbox rows and maybe
 * a delivery, so it counts as four rows of the budget. */
#define STORE_PRUNE_ALERTS_MAX 512
#define STORE_PRUNE_ALERT_COST 4
#define STORE_STR_(x) #x
#define STORE_STR(x) STORE_STR_(x)

struct store_prune {
	struct store *s;
	int auto_vacuum;
	int64_t alert_at, alert_id;           /* cursor: alerts up to here were seen */
	int64_t alert_at_next, alert_id_next; /* where the open step leaves it */
	sqlite3_stmt *ev_del, *rj_del_age, *rj_max, *rj_del_id;
	sqlite3_stmt *al_pick, *al_sinks, *al_del_outbox, *al_del, *dl_del;
	sqlite3_stmt *freelist, *vacuum;
};

/* An alert may go once it is old and every delivery of it is over
 * (delivered or expired: never one a sink may still get), unless the
 * daemon reads it back at start: the newest overdue alert of a cell and
 * the newest one that was not a repeat (repeat counts and "late" in the
 * recovery text), the newest patrol recovery (whether that overdue alert
 * is still open), and the newest level alert per cell and event type
 * (reading levels). Each of those is kept until a newer one of its kind
 * exists; that is O(cells) rows, whatever the age. "Newer" needs both a
 * larger id and a time not earlier, so after a clock step back a row is
 * kept rather than guessed about, and the index on (cell, kind, at)
 * answers the check. The cursor (at, id) moves past rows kept, so a run
 * never reads them twice. */
static const char store_prune_pick_sql[] =
        "SELECT a.id, a.at FROM alert a "
        "WHERE a.at >= ?2 AND a.at < ?1 AND (a.at > ?2 OR a.id > ?3) "
        "AND NOT EXISTS (SELECT 1 FROM outbox o JOIN delivery d ON d.id = o.delivery_id "
        "  WHERE o.alert_id = a.id AND d.state NOT IN ('delivered', 'expired')) "
        "AND (a.cell IS NULL OR CASE "
        "  WHEN a.level IS NOT NULL THEN EXISTS (SELECT 1 FROM alert b WHERE b.cell = a.cell "
        "    AND b.kind IN ('reading', 'recovered') AND b.at >= a.at AND b.id > a.id "
        "    AND b.level IS NOT NULL "
        "    AND json_extract(b.doc, '$.event_type') IS json_extract(a.doc, '$.event_type')) "
        "  WHEN a.kind = 'overdue' THEN EXISTS (SELECT 1 FROM alert b WHERE b.cell = a.cell "
        "    AND b.kind = 'overdue' AND b.at >= a.at AND b.id > a.id "
        "    AND (a.repeat <> 0 OR b.repeat = 0)) "
        "  WHEN a.kind = 'recovered' THEN EXISTS (SELECT 1 FROM alert b WHERE b.cell = a.cell "
        "    AND b.kind = 'recovered' AND b.at >= a.at AND b.id > a.id AND b.level IS NULL) "
        "  ELSE 1 END) "
        "ORDER BY a.at, a.id LIMIT ?4";

struct store_prune *store_prune_new(struct store *s, char *err, size_t errlen)
{
	struct store_prune *p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->s = s;
	store_prune_restart(p);
	struct {
		sqlite3_stmt **st;
		const char *sql;
	} sql[] = {
		/* Each by an index range, oldest first, a bounded count. */
		{ &p->ev_del, "DELETE FROM event WHERE id IN (SELECT id FROM event "
		              "WHERE ts < ?1 ORDER BY ts LIMIT ?2)" },
		{ &p->rj_del_age, "DELETE FROM rejected WHERE id IN (SELECT id FROM rejected "
		                  "WHERE recv_ms < ?1 ORDER BY recv_ms LIMIT ?2)" },
		/* Rowids only grow (max + 1), so the newest max_rejected rows are
		 * those above max(id) - max_rejected: the cap costs two index
		 * lookups, not a count(*). */
		{ &p->rj_max, "SELECT max(id) FROM rejected" },
		{ &p->rj_del_id, "DELETE FROM rejected WHERE id IN (SELECT id FROM rejected "
		                 "WHERE id <= ?1 ORDER BY id LIMIT ?2)" },
		{ &p->al_pick, store_prune_pick_sql },
		{ &p->al_sinks, "SELECT delivery_id FROM outbox WHERE alert_id = ?1" },
		{ &p->al_del_outbox, "DELETE FROM outbox WHERE alert_id = ?1" },
		{ &p->al_del, "DELETE FROM alert WHERE id = ?1" },
		/* A grouped delivery goes with the last of its alerts. */
		{ &p->dl_del, "DELETE FROM delivery WHERE id = ?1 AND NOT EXISTS "
		              "(SELECT 1 FROM outbox WHERE delivery_id = ?1)" },
		{ &p->freelist, "PRAGMA freelist_count" },
		{ &p->vacuum,
		  "PRAGMA incremental_vacuum(" STORE_STR(STORE_PRUNE_VACUUM_PAGES) ")" },
	};
	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
		int rc = sqlite3_prepare_v3(s->db, sql[i].sql, -1, SQLITE_PREPARE_PERSISTENT,
		                            sql[i].st, NULL);
		if (rc != SQLITE_OK) {
			snprintf(err, errlen, "prepare retention: %s", sqlite3_errmsg(s->db));
			store_prune_free(p);
			return NULL;
		}
	}
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->db, "PRAGMA auto_vacuum", -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "read auto_vacuum: %s", sqlite3_errmsg(s->db));
		store_prune_free(p);
		return NULL;
	}
	if (sqlite3_step(st) == SQLITE_ROW)
		p->auto_vacuum = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return p;
}

void store_prune_free(struct store_prune *p)
{
	if (!p)
		return;
	sqlite3_stmt *all[] = { p->ev_del,  p->rj_del_age, p->rj_max,        p->rj_del_id,
		                p->al_pick, p->al_sinks,   p->al_del_outbox, p->al_del,
		                p->dl_del,  p->freelist,   p->vacuum };
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		sqlite3_finalize(all[i]);
	free(p);
}

void store_prune_restart(struct store_prune *p)
{
	p->alert_at = INT64_MIN;
	p->alert_id = 0;
}

int store_prune_auto_vacuum(const struct store_prune *p)
{
	return p->auto_vacuum;
}

/* DELETE ... LIMIT ?2 with ?1 as the bound; *n gets the rows deleted. */
static enum store_status store_prune_range(struct store *s, sqlite3_stmt *st, int64_t bound,
                                           int limit, int64_t *n, const char *what)
{
	if (sqlite3_bind_int64(st, 1, bound) != SQLITE_OK ||
	    sqlite3_bind_int(st, 2, limit) != SQLITE_OK) {
		sqlite3_reset(st);
		return store_fail(s, sqlite3_errcode(s->db), what);
	}
	enum store_status ret = store_step_done(s, st, what);
	*n = ret == STORE_OK ? sqlite3_changes(s->db) : 0;
	return ret;
}

/* A statement with one integer column and at most one row; *out keeps
 * its value when the row is NULL or absent. */
static enum store_status store_prune_scalar(struct store *s, sqlite3_stmt *st, int64_t *out,
                                            const char *what)
{
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_fail(s, rc, what);
	return STORE_OK;
}

static enum store_status store_prune_one_alert(struct store_prune *p, int64_t id,
                                               struct store_prune_counts *c)
{
	struct store *s = p->s;
	int64_t dl[CONFIG_SINKS_MAX]; /* one outbox row per sink */
	size_t n_dl = 0;
	int rc;

	/* At most one outbox row per sink. */
	sqlite3_bind_int64(p->al_sinks, 1, id);
	while ((rc = sqlite3_step(p->al_sinks)) == SQLITE_ROW)
		if (n_dl < sizeof(dl) / sizeof(dl[0]))
			dl[n_dl++] = sqlite3_column_int64(p->al_sinks, 0);
	sqlite3_reset(p->al_sinks);
	if (rc != SQLITE_DONE)
		return store_fail(s, rc, "read outbox of old alert");

	enum store_status st;
	sqlite3_bind_int64(p->al_del_outbox, 1, id);
	if ((st = store_step_done(s, p->al_del_outbox, "delete outbox")) != STORE_OK)
		return st;
	sqlite3_bind_int64(p->al_del, 1, id);
	if ((st = store_step_done(s, p->al_del, "delete alert")) != STORE_OK)
		return st;
	c->alerts += sqlite3_changes(s->db);
	for (size_t i = 0; i < n_dl; i++) {
		sqlite3_bind_int64(p->dl_del, 1, dl[i]);
		if ((st = store_step_done(s, p->dl_del, "delete delivery")) != STORE_OK)
			return st;
		c->deliveries += sqlite3_changes(s->db);
	}
	return STORE_OK;
}

/* Old alerts from the cursor on, at most `budget` of them. */
static enum store_status store_prune_alerts(struct store_prune *p, int64_t before_s, int budget,
                                            struct store_prune_counts *c, bool *more)
{
	struct store *s = p->s;
	int64_t ids[STORE_PRUNE_ALERTS_MAX], last_at = p->alert_at, last_id = p->alert_id;
	int n = 0, rc;

	if (budget > STORE_PRUNE_ALERTS_MAX)
		budget = STORE_PRUNE_ALERTS_MAX;
	/* Ids first, deletes after: the SELECT reads `alert` itself, and
	 * changing a table under an open cursor on it is best avoided. */
	sqlite3_bind_int64(p->al_pick, 1, before_s);
	sqlite3_bind_int64(p->al_pick, 2, p->alert_at);
	sqlite3_bind_int64(p->al_pick, 3, p->alert_id);
	sqlite3_bind_int(p->al_pick, 4, budget);
	while ((rc = sqlite3_step(p->al_pick)) == SQLITE_ROW) {
		ids[n++] = sqlite3_column_int64(p->al_pick, 0);
		last_at = sqlite3_column_int64(p->al_pick, 1);
		last_id = ids[n - 1];
	}
	sqlite3_reset(p->al_pick);
	if (rc != SQLITE_DONE)
		return store_fail(s, rc, "pick old alerts");
	for (int i = 0; i < n; i++) {
		enum store_status st = store_prune_one_alert(p, ids[i], c);
		if (st != STORE_OK)
			return st;
	}
	/* The cursor moves only once the step commits (store_prune_step):
	 * after a rollback these rows are still there. */
	p->alert_at_next = last_at;
	p->alert_id_next = last_id;
	if (n == budget)
		*more = true;
	return STORE_OK;
}

/* One bounded delete out of the step's row budget: what it removed is
 * added to *count and taken from *left; a spent budget means more to do. */
static enum store_status store_prune_budget(struct store *s, sqlite3_stmt *del, int64_t bound,
                                            int *left, int64_t *count, bool *more, const char *what)
{
	int64_t n = 0;
	enum store_status st = store_prune_range(s, del, bound, *left, &n, what);
	if (st != STORE_OK)
		return st;
	*count += n;
	*left -= (int)n;
	if (*left <= 0)
		*more = true;
	return STORE_OK;
}

enum store_status store_prune_step(struct store_prune *p, const struct store_prune_limits *lim,
                                   struct store_prune_counts *out, bool *more)
{
	struct store *s = p->s;
	struct store_prune_counts c = { 0 };
	int left = lim->rows > 0 ? lim->rows : 1;
	enum store_status st;

	*more = false;
	if (s->in_batch) {
		snprintf(s->err, sizeof(s->err), "retention: a batch is open");
		return STORE_FATAL; /* a bug in the caller */
	}
	if ((st = store_begin(s)) != STORE_OK)
		return st;
	p->alert_at_next = p->alert_at;
	p->alert_id_next = p->alert_id;

	/* The cap first: it is what a flood of garbage needs, every run. */
	if (lim->max_rejected > 0) {
		int64_t max_id = 0;
		if ((st = store_prune_scalar(s, p->rj_max, &max_id, "newest rejected")) != STORE_OK)
			goto fail;
		if (max_id > lim->max_rejected &&
		    (st = store_prune_budget(s, p->rj_del_id, max_id - lim->max_rejected, &left,
		                             &c.rejected, more, "cap rejected")) != STORE_OK)
			goto fail;
	}
	if (lim->by_age && left > 0 &&
	    (st = store_prune_budget(s, p->rj_del_age, lim->before_s * 1000, &left, &c.rejected,
	                             more, "delete old rejected")) != STORE_OK)
		goto fail;
	if (lim->by_age && left > 0 &&
	    (st = store_prune_budget(s, p->ev_del, lim->before_s, &left, &c.events, more,
	                             "delete old events")) != STORE_OK)
		goto fail;
	if (lim->by_age && left > 0) {
		int budget = left / STORE_PRUNE_ALERT_COST;
		if ((st = store_prune_alerts(p, lim->before_s, budget > 0 ? budget : 1, &c,
		                             more)) != STORE_OK)
			goto fail;
	}
	/* Freed pages stay in the file's free list (new rows reuse them
	 * first); an incremental database also gives them back, a bounded
	 * number per step. Without auto_vacuum the pragma does nothing. */
	if (p->auto_vacuum == 2) {
		int64_t free_pages = 0;
		if ((st = store_prune_scalar(s, p->freelist, &free_pages, "freelist_count")) !=
		    STORE_OK)
			goto fail;
		if (free_pages > 0) {
			/* The pragma answers with a row per step of its own. */
			int rc;
			while ((rc = sqlite3_step(p->vacuum)) == SQLITE_ROW)
				;
			sqlite3_reset(p->vacuum);
			if (rc != SQLITE_DONE) {
				st = store_fail(s, rc, "incremental vacuum");
				goto fail;
			}
			c.pages = free_pages < STORE_PRUNE_VACUUM_PAGES ? free_pages
			                                                : STORE_PRUNE_VACUUM_PAGES;
			if (free_pages > STORE_PRUNE_VACUUM_PAGES)
				*more = true;
		}
	}
	if ((st = store_commit(s)) != STORE_OK)
		goto fail;
	p->alert_at = p->alert_at_next;
	p->alert_id = p->alert_id_next;
	out->events += c.events;
	out->rejected += c.rejected;
	out->alerts += c.alerts;
	out->deliveries += c.deliveries;
	out->pages += c.pages;
	return STORE_OK;
fail:
	store_rollback(s);
	*more = false;
	return st;
}
