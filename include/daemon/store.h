/*
 * store: the SQLite database — schema and forward migrations, the writer
 * connection's pragmas, prepared statements, and batch transactions.
 *
 * The daemon owns the only writer connection. Rows of one poll wake-up go
 * into one transaction (store_begin is idempotent within a batch); nothing
 * is acknowledged to the broker until store_commit returns STORE_OK, which
 * with the default synchronous=FULL means the batch's WAL frames have been
 * fsync'ed (store_set_sync).
 * This module never logs: failures come back as a status and a message.
 */
#ifndef GRIDPATROL_STORE_H
#define GRIDPATROL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "msg.h"

#define STORE_SCHEMA_VERSION 4
#define STORE_REJECTED_PAYLOAD_MAX 1024
#define STORE_REJECTED_TOPIC_MAX 512

enum store_status {
	STORE_OK = 0,
	STORE_RETRY, /* disk full, I/O error, busy: try again later */
	STORE_FATAL, /* corrupt, not a database, or a bug */
};

struct store;

/* Called before store_open() runs a migration that reads existing history
 * (started true), then every million SQLite steps while it runs. Set it
 * before store_open(); it is process-wide. */
typedef void store_migrate_cb(void *arg, int from, int to, bool started);
void store_on_migrate(store_migrate_cb *cb, void *arg);

/* Takes the daemon's exclusive lock (PATH.lock, flock), opens or creates
 * the database, sets WAL and pragmas, migrates the schema. max_size > 0
 * caps the file (in bytes) through PRAGMA max_page_count. On failure
 * returns NULL with a message in err. */
struct store *store_open(const char *path, int64_t max_size, char *err, size_t errlen);
void store_close(struct store *s);

/* Re-apply the size cap (SIGHUP). */
enum store_status store_set_max_size(struct store *s, int64_t max_size);
/* storage.sync: full makes every COMMIT fsync the WAL before it returns
 * (store_open's default); !full is synchronous=NORMAL, durable against a
 * crash of the process but not a power cut. Not inside a batch. Switching
 * to full also fdatasyncs the WAL at once, for batches committed before. */
enum store_status store_set_sync(struct store *s, bool full);

enum store_status store_begin(struct store *s); /* no-op if already open */
bool store_in_batch(const struct store *s);
/* *dup is set when (worker, msg_id) was already stored; otherwise *rowid
 * (may be NULL) receives the new row's id, and the (cell, type) row of
 * event_span takes in the event's ts (and worker, if newest). */
enum store_status store_put_event(struct store *s, const struct msg_record *r, bool *dup,
                                  int64_t *rowid);
/* Whether store_put_event would find r a duplicate (it has a msg_id). */
enum store_status store_event_seen(struct store *s, const struct msg_record *r, bool *seen);
enum store_status store_put_rejected(struct store *s, int64_t recv_ms, const char *topic,
                                     const void *payload, size_t len, const char *reason,
                                     const char *detail);
enum store_status store_commit(struct store *s); /* no-op without a batch */
void store_rollback(struct store *s);
/* After a failed batch, rolled back: checkpoint and empty the WAL so its
 * disk space can hold the retry. Fails harmlessly (BUSY, FULL) when it
 * cannot; the store's error message then says why. */
enum store_status store_reclaim(struct store *s);
/* The last failure since the batch began was SQLITE_FULL: the file hit
 * max_size (max_page_count) or its file system is full. */
bool store_failed_full(const struct store *s);

/* Record known_since for cells first seen now (own transaction). */
enum store_status store_sync_cells(struct store *s, const struct config *cfg, int64_t now_s);

/* State the daemon rebuilds at start, on reload and after a failed batch
 * (src/daemon/store_read.c). Each calls its callback once per row, with a
 * row whose strings live until the callback returns; a non-zero return
 * from the callback stops early. */

/* A row of `cell`: when the daemon first saw the cell configured. */
struct store_known_cell {
	const char *cell;
	int64_t known_since; /* Unix seconds */
};
typedef int store_known_cb(void *arg, const struct store_known_cell *row);
enum store_status store_each_known(struct store *s, store_known_cb *cb, void *arg);

/* The newest overdue alert of a configured cell that has no recovery
 * after it. */
struct store_open_overdue {
	const char *cell;
	int64_t at; /* when it was raised, Unix seconds */
	int repeat; /* 0 first alert, 1.. its reminders */
};
typedef int store_open_overdue_cb(void *arg, const struct store_open_overdue *row);
/* A few index probes per configured cell. */
enum store_status store_each_open_overdue(struct store *s, const struct config *cfg,
                                          store_open_overdue_cb *cb, void *arg);

/* A configured cell and threshold type that has a reading alert. */
struct store_level {
	const char *cell;
	const char *type;
	int level; /* what its newest warn/alarm/normal alert left:
	                         * 0 normal, 1 warn, 2 alarm */
};
typedef int store_level_cb(void *arg, const struct store_level *row);
/* A few index probes per (cell, threshold type) pair. */
enum store_status store_each_level(struct store *s, const struct config *cfg, store_level_cb *cb,
                                   void *arg);

/* A row of `pause` (gridpatrol pause/resume write them). */
struct store_pause {
	const char *cell;
	int64_t since;   /* Unix seconds */
	bool open_ended; /* paused until resumed: until is 0 */
	int64_t until;   /* Unix seconds; may be past (ended) */
};
typedef int store_pause_cb(void *arg, const struct store_pause *row);
enum store_status store_each_pause(struct store *s, store_pause_cb *cb, void *arg);

/* The daily digest's figures: stored events with from <= ts < to. */
/* Each (cell, type) pair that has at least one such event. */
struct store_cell_type {
	const char *cell;
	const char *type;
};
typedef int store_cell_type_cb(void *arg, const struct store_cell_type *row);
enum store_status store_each_day_cell_type(struct store *s, int64_t from, int64_t to,
                                           store_cell_type_cb *cb, void *arg);
/* How many such events each type has, in type order. */
struct store_type_count {
	const char *type;
	int64_t count;
};
typedef int store_type_count_cb(void *arg, const struct store_type_count *row);
enum store_status store_each_day_type_count(struct store *s, int64_t from, int64_t to,
                                            store_type_count_cb *cb, void *arg);

/* The oldest row of claim_request (`gridpatrol claim`); the daemon
 * carries it out and deletes it (done: joins or opens the batch). */
struct store_claim_request {
	int64_t id;
	int64_t at; /* Unix seconds */
	char by[TOPIC_SEGMENT_MAX + 1];
	char cell[TOPIC_SEGMENT_MAX + 1];
	int64_t alert_id;
};
enum store_status store_next_claim_request(struct store *s, struct store_claim_request *out,
                                           bool *found);
enum store_status store_claim_request_done(struct store *s, int64_t id);

/* Changes when another connection (the CLI's pause) commits. */
enum store_status store_data_version(struct store *s, int64_t *out);

/* daemon_state: small integers that must outlive a restart. get does not
 * need a batch; put joins (or opens) the batch, committed with it. */
enum store_status store_state_get(struct store *s, const char *key, int64_t *value, bool *found);
enum store_status store_state_put(struct store *s, const char *key, int64_t value);

/* Rows in `event`: a full count, for tests only (the daemon's status
 * counts what it stored since it started). */
enum store_status store_count_events(struct store *s, int64_t *out);

/* Retention: history older than a cutoff, and `rejected` beyond a cap,
 * deleted a bounded step at a time. Each step is its own transaction, so
 * it must be called with no batch open (after the daemon's commit); it
 * holds the write lock for as long as `rows` deletions and a bounded
 * incremental vacuum take, which the caller measures and tunes. */
struct store_prune;
struct store_prune_limits {
	bool by_age;          /* false: keep history of any age */
	int64_t before_s;     /* with by_age: rows older than this (Unix s) go */
	int64_t max_rejected; /* keep at most this many `rejected`; 0: no cap */
	int rows;             /* deletions per step (> 0) */
};
struct store_prune_counts {
	int64_t events, rejected, alerts, deliveries; /* rows deleted */
	int64_t pages;                                /* pages given back to the file system */
};
struct store_prune *store_prune_new(struct store *s, char *err, size_t errlen);
void store_prune_free(struct store_prune *p);
/* Start a run over the whole history again (the alert cursor restarts). */
void store_prune_restart(struct store_prune *p);
/* One step; adds what it deleted to *c and sets *more while backlog
 * (old rows, rows over the cap, free pages to give back) remains. On
 * failure the step is rolled back and nothing is counted. */
enum store_status store_prune_step(struct store_prune *p, const struct store_prune_limits *lim,
                                   struct store_prune_counts *c, bool *more);
/* auto_vacuum of the open database: 0 none (freed pages are reused but
 * the file never shrinks), 2 incremental. */
int store_prune_auto_vacuum(const struct store_prune *p);

const char *store_errmsg(const struct store *s);

/* The writer connection, for modules that keep their own prepared
 * statements on it (outbox, alert state). They must run inside the
 * daemon's batch (store_begin) and never COMMIT themselves. */
struct sqlite3;
struct sqlite3 *store_db(struct store *s);
/* Classify a SQLite result code as store_status and remember its message
 * for store_errmsg(), for those modules. */
enum store_status store_status_of(struct store *s, int rc, const char *what);

#endif
