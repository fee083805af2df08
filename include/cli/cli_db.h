/*
 * cli_db: the CLI's fixed read-only queries against the daemon's schema,
 * each handing typed rows to a callback, on the command's connection
 * (cli_db_open_ro's snapshot): what `status` and `report` read, and the
 * listings (events, rejected, alerts), whose SQL is put together here from
 * fixed fragments for the filters actually given, so each filter can use
 * its index; every value is bound, never pasted into the text. The admin
 * commands' writes (pause, resume, backup) are here too, at the end. Only
 * transaction control (BEGIN/COMMIT/ROLLBACK and the schema version check in
 * cli_common; backup's COMMIT of the open snapshot before VACUUM INTO) and
 * the span probe shared with the daemon (span.h) run SQL elsewhere in the
 * CLI.
 *
 * Every function returns CLI_EXIT_OK or CLI_EXIT_FAIL after one line on
 * stderr (cli_db_fail). A callback returns 0 to go on, or -1 to stop the
 * command after it has reported why itself. Text columns read as "" when
 * NULL, as cli_col_text does, unless a field says otherwise; strings live
 * until the callback returns.
 */
#ifndef GRIDPATROL_CLI_DB_H
#define GRIDPATROL_CLI_DB_H

#include <stdbool.h>
#include <stdint.h>

#include "cli_common.h"

/* A row of `cell`: when the daemon first saw the cell configured. */
struct cli_db_known {
	const char *cell;
	int64_t known_since;
};
typedef int cli_db_known_cb(void *arg, const struct cli_db_known *row);
int cli_db_each_known(struct cli *c, cli_db_known_cb *cb, void *arg);

/* A row of `pause` whose since is before `before` (INT64_MAX: every row). */
struct cli_db_pause {
	const char *cell;
	int64_t since;
	bool open_ended; /* until resumed: until is 0 */
	int64_t until;
};
typedef int cli_db_pause_cb(void *arg, const struct cli_db_pause *row);
int cli_db_each_pause(struct cli *c, int64_t before, cli_db_pause_cb *cb, void *arg);

/* A row of event_span: the oldest and newest event of a (cell, type). */
struct cli_db_span {
	const char *cell, *type;
	int64_t first_ts, last_ts;
};
typedef int cli_db_span_cb(void *arg, const struct cli_db_span *row);
int cli_db_each_span(struct cli *c, cli_db_span_cb *cb, void *arg);

/* The newest patrol of a cell before a time, one probe on the event
 * (cell, ts) index each; "patrol" by config_event_counts_as_patrol. */
struct cli_db_before;
int cli_db_before_open(struct cli *c, int64_t before, struct cli_db_before **out);
/* *ts: the patrol's ts, 0 when there is none. */
int cli_db_before_probe(struct cli *c, struct cli_db_before *b, const char *cell, int64_t *ts);
void cli_db_before_close(struct cli_db_before *b);

/* Alerts of a cell (not the digest's or the system's) raised in [from, to). */
struct cli_db_alert_count {
	const char *cell;
	int count;
};
typedef int cli_db_alert_count_cb(void *arg, const struct cli_db_alert_count *row);
int cli_db_each_alert_count(struct cli *c, int64_t from, int64_t to, cli_db_alert_count_cb *cb,
                            void *arg);

/* The tasks (SPEC, Claims) raised in [from, to), by time: event and reading
 * alerts, and overdue episodes begun then (repeat 0) with the claim of any
 * alert of the episode, which shares resolved_at — the digest's rule
 * (outbox count_tasks), so report and digest count the same. Through the
 * alert_at index: one day's alerts, never the history. */
struct cli_db_day_task {
	int64_t at;
	const char *cell, *kind;
	const char *claimed_by; /* NULL: not claimed */
	int64_t claimed_at;     /* when claimed_by */
	int64_t resolved_at;    /* 0: still open */
};
typedef int cli_db_day_task_cb(void *arg, const struct cli_db_day_task *row);
int cli_db_each_day_task(struct cli *c, int64_t from, int64_t to, cli_db_day_task_cb *cb,
                         void *arg);

/* The events with from <= ts < to, ordered by cell, then ts. */
struct cli_db_event {
	const char *cell;
	int64_t ts;
	const char *worker, *type;
	bool has_value;
	double value;
	const char *flags; /* "late,clock_skew" */
	const char *note;  /* NULL: none */
};
typedef int cli_db_event_cb(void *arg, const struct cli_db_event *row);
int cli_db_each_day_event(struct cli *c, int64_t from, int64_t to, cli_db_event_cb *cb, void *arg);

/* --- listings: a cursor, read row by row while the listing prints --- */

struct cli_db_cursor;
void cli_db_cursor_close(struct cli_db_cursor *q);

/* `events`: NULL filters match anything; limit < 0: no limit (the newest
 * `limit` otherwise). Rows in patrol-time order. */
struct cli_db_events_filter {
	const char *cell, *worker, *type;
	int64_t since, until; /* since <= ts < until */
	int64_t limit;
};
struct cli_db_event_row {
	int64_t id, ts;
	const char *cell, *worker, *type;
	bool has_value, has_lat, has_lon;
	double value, lat, lon;
	const char *note, *photo, *msg_id; /* NULL: none */
	const char *flags;
	int64_t recv_ms;
};
int cli_db_events_open(struct cli *c, const struct cli_db_events_filter *f,
                       struct cli_db_cursor **out);
/* *more false at the end (row untouched). */
int cli_db_events_next(struct cli *c, struct cli_db_cursor *q, struct cli_db_event_row *row,
                       bool *more);

/* `rejected`: recv_ms >= since_ms, of `reason` unless NULL; in order of
 * arrival. */
struct cli_db_rejected_row {
	int64_t id, recv_ms;
	const char *reason, *topic, *detail;
	bool payload_blob;    /* not UTF-8: stored as bytes */
	const void *payload;  /* blob: its bytes; else text, NULL when NULL */
	size_t payload_bytes; /* blob only */
	int64_t payload_len;  /* as received */
};
int cli_db_rejected_open(struct cli *c, int64_t since_ms, const char *reason,
                         struct cli_db_cursor **out);
int cli_db_rejected_next(struct cli *c, struct cli_db_cursor *q, struct cli_db_rejected_row *row,
                         bool *more);

/* `alerts`: at >= since (with pending, only those with a delivery not yet
 * delivered); one row per alert and sink, by alert id, then sink. */
struct cli_db_alert_row {
	int64_t id, at, repeat;
	const char *kind, *text;
	const char *cell;  /* NULL: digest, system */
	const char *sink;  /* NULL: no sink wanted the alert (the rest unset) */
	int64_t delivery;  /* delivery row id */
	const char *state; /* NULL: no delivery row */
	int64_t tries;
	const char *last_error; /* NULL: none */
	bool has_done;
	int64_t done_ms;
	const char *ext_id;     /* NULL: none (the id its tries from memory used) */
	const char *claimed_by; /* NULL: not claimed */
	bool has_claimed_at, has_resolved_at;
	int64_t claimed_at, resolved_at;
};
int cli_db_alerts_open(struct cli *c, int64_t since, bool pending, struct cli_db_cursor **out);
int cli_db_alerts_next(struct cli *c, struct cli_db_cursor *q, struct cli_db_alert_row *row,
                       bool *more);

/* `workers`: events with from - 60 <= ts < to, by worker, cell, ts (the
 * 60 s before let a check-in see its predecessor). */
struct cli_db_worker_event {
	const char *worker, *cell, *type;
	int64_t ts;
	bool late;
};
int cli_db_worker_events_open(struct cli *c, int64_t from, int64_t to, struct cli_db_cursor **out);
int cli_db_worker_events_next(struct cli *c, struct cli_db_cursor *q,
                              struct cli_db_worker_event *row, bool *more);
/* Alerts claimed with from <= claimed_at < to, by claimer. */
struct cli_db_worker_claim {
	const char *by;
	int64_t to_claim_s;
	bool resolved;
	int64_t to_resolve_s;
};
int cli_db_worker_claims_open(struct cli *c, int64_t from, int64_t to, struct cli_db_cursor **out);
int cli_db_worker_claims_next(struct cli *c, struct cli_db_cursor *q,
                              struct cli_db_worker_claim *row, bool *more);

/* --- the admin commands' writes, on cli_db_open_rw's connection --- */

/* The cell's pause row, replacing any: from since, until `until` when
 * has_until (else until resumed), with reason unless NULL. */
int cli_db_pause_put(struct cli *c, const char *cell, int64_t since, bool has_until, int64_t until,
                     const char *reason);
/* Ends the cell's running pause at `at`, keeping the row; *was: there was
 * one. */
int cli_db_pause_end(struct cli *c, const char *cell, int64_t at, bool *was);
/* An alert as `claim` sees it (the daemon decides the same way). */
struct cli_db_task {
	int64_t id;
	char kind[16];
	char cell[TOPIC_SEGMENT_MAX + 1];
	int64_t at;
	bool claimed;
	char claimed_by[TOPIC_SEGMENT_MAX + 1];
	bool resolved;
};
int cli_db_task_by_id(struct cli *c, int64_t id, struct cli_db_task *t, bool *found);
/* The cell's newest open overdue, event or reading alert raised at or
 * before at_most. */
int cli_db_task_latest(struct cli *c, const char *cell, int64_t at_most, struct cli_db_task *t,
                       bool *found);
/* A row of claim_request for the daemon to carry out. */
int cli_db_claim_put(struct cli *c, int64_t at, const char *by, const char *cell, int64_t alert_id);
/* VACUUM INTO path (an existing empty file), outside any transaction. */
int cli_db_vacuum_into(struct cli *c, const char *path);

#endif
