/*
 * store: the SQLite database — schema and forward migrations, the writer
 * connection's pragmas, prepared statements, and batch transactions.
 *
 * The daemon owns the only writer connection. Rows of one poll wake-up go
 * into one transaction (store_begin is idempotent within a batch); nothing
 * is acknowledged to the broker until store_commit returns STORE_OK.
 * This module never logs: failures come back as a status and a message.
 */
#ifndef GRIDPATROL_STORE_H
#define GRIDPATROL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "msg.h"

#define STORE_SCHEMA_VERSION 1
#define STORE_REJECTED_PAYLOAD_MAX 1024
#define STORE_REJECTED_TOPIC_MAX 512

enum store_status {
	STORE_OK = 0,
	STORE_RETRY,  /* disk full, I/O error, busy: try again later */
	STORE_FATAL,  /* corrupt, not a database, or a bug */
};

struct store;

/* Takes the daemon's exclusive lock (PATH.lock, flock), opens or creates
 * the database, sets WAL and pragmas, migrates the schema. max_size > 0
 * caps the file (in bytes) through PRAGMA max_page_count. On failure
 * returns NULL with a message in err. */
struct store *store_open(const char *path, int64_t max_size, char *err, size_t errlen);
void store_close(struct store *s);

/* Re-apply the size cap (SIGHUP). */
enum store_status store_set_max_size(struct store *s, int64_t max_size);

enum store_status store_begin(struct store *s);  /* no-op if already open */
bool store_in_batch(const struct store *s);
/* *dup is set when (worker, msg_id) was already stored. */
enum store_status store_put_event(struct store *s, const struct msg_record *r, bool *dup);
enum store_status store_put_rejected(struct store *s, int64_t recv_ms, const char *topic,
                                     const void *payload, size_t len,
                                     const char *reason, const char *detail);
enum store_status store_commit(struct store *s);  /* no-op without a batch */
void store_rollback(struct store *s);

/* Record known_since for cells first seen now (own transaction). */
enum store_status store_sync_cells(struct store *s, const struct config *cfg, int64_t now_s);

/* Rows in `event` (for status counters and tests). */
enum store_status store_count_events(struct store *s, int64_t *out);

const char *store_errmsg(const struct store *s);

#endif
