/*
 * outbox: the alert, delivery and outbox tables — the durable half of alert
 * delivery (smtpd-style explicit states: pending → inflight → delivered or
 * expired).
 *
 * Every write runs inside the daemon's open batch (the caller has called
 * store_begin; the daemon's check hook commits), so an alert and the state
 * change that caused it commit together, and so do a delivery attempt's
 * outcome and whatever else happened in that loop pass. Never logs.
 *
 * A delivery groups one or more alerts for one sink. Its delivery_id is
 * "<sink>-<6-digit row id>", the same on every retry — or, for a held
 * alert tried from memory before it had a row, the "<sink>-m<ms>" id those
 * tries used, kept in the row (ext_id).
 *
 * All *_ms times here (now_ms, next_ms, created_ms) are wall-clock Unix
 * milliseconds: they are stored and must survive a restart.
 */
#ifndef GRIDPATROL_OUTBOX_H
#define GRIDPATROL_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "store.h"

struct outbox;

/* What the alert module hands over. Strings may be NULL where optional. */
struct outbox_alert {
	unsigned kind;    /* one config_kind bit */
	const char *cell; /* NULL for digest/system */
	int64_t at;       /* Unix seconds */
	bool has_due;
	int64_t due;
	int repeat;
	const char *worker;
	int64_t event_id;  /* 0: none */
	const char *level; /* reading: "warn", "alarm", "normal" */
	bool has_value;
	double value;
	const char *text; /* rendered, configured language */
	const char *doc;  /* JSON object text, without "alert_id" */
};

struct outbox_delivery {
	int64_t id;
	char sink[TOPIC_SEGMENT_MAX + 1];
	char delivery_id[TOPIC_SEGMENT_MAX + 16];
	char first_kind[16]; /* the first alert's kind */
	int tries;           /* failed tries so far */
	int64_t created_ms;
	size_t n_alerts;
	char *doc;  /* the delivery JSON (malloc), as SPEC "Delivery JSON" */
	char *text; /* equal to the doc's "text" (malloc) */
	char *cell; /* the first alert's cell, or NULL (malloc); mqtt topic */
};

struct outbox *outbox_new(struct store *s, char *err, size_t errlen);
void outbox_free(struct outbox *o);

/* Crash recovery at start: 'inflight' rows go back to 'pending' (their
 * outcome was never recorded; at-least-once means try again). */
enum store_status outbox_recover(struct outbox *o);

/* Insert the alert and queue it for every sink of cfg whose `kinds`
 * include it. With a sink's group_window > 0 the alert joins that sink's
 * open pending delivery (created within the window and not tried yet) or
 * opens one whose first try waits out the window; with 0 it gets its own
 * delivery due now. *alert_id receives the new row id. */
enum store_status outbox_add(struct outbox *o, const struct config *cfg,
                             const struct outbox_alert *a, int64_t now_ms, int64_t *alert_id);

/* What a sink made of an alert delivered from memory while the database
 * could not be written (deliver's held alerts). */
enum outbox_held_state {
	OUTBOX_HELD_PENDING,
	OUTBOX_HELD_DELIVERED,
	OUTBOX_HELD_EXPIRED
};
struct outbox_held {
	const char *sink;
	enum outbox_held_state state;
	int tries;               /* failed tries so far */
	int64_t next_ms;         /* pending: the next try */
	int64_t done_ms;         /* delivered/expired: when */
	const char *last_error;  /* NULL: none */
	const char *delivery_id; /* the id its tries from memory used; NULL: none */
};

/* outbox_add for an alert that was raised (at now_ms) and tried from
 * memory: a sink named in held gets a delivery row in that state —
 * 'delivered' rows are never tried again, 'pending' ones carry on with
 * their tries and backoff — the other sinks get a delivery as usual. */
enum store_status outbox_add_held(struct outbox *o, const struct config *cfg,
                                  const struct outbox_alert *a, int64_t now_ms,
                                  const struct outbox_held *held, size_t n_held, int64_t *alert_id);

/* The next pending delivery of `sink` whose next_ms <= now_ms (oldest
 * first), fully assembled. *found false when none. Free with
 * outbox_delivery_clear. */
/* A row of `sink` still 'inflight' also counts as pending here and in
 * outbox_next_time: the caller runs one try per sink and asks only while
 * that sink is idle, so such a row is one whose outcome's batch was rolled
 * back. Each alert object in the doc is the stored alert.doc with
 * "alert_id" first and "kind", "cell", "text" filled from the row when the
 * doc lacks them. */
enum store_status outbox_next_due(struct outbox *o, const char *sink, int64_t now_ms,
                                  struct outbox_delivery *out, bool *found);
void outbox_delivery_clear(struct outbox_delivery *d);

/* Earliest next_ms among pending deliveries of `sink` (NULL: any sink), or
 * INT64_MAX. */
enum store_status outbox_next_time(struct outbox *o, const char *sink, int64_t *out_ms);

/* The alert module's questions about past alerts. When the cell's newest
 * first overdue alert (repeat 0) was raised; *found false if it has none. */
enum store_status outbox_first_overdue_at(struct outbox *o, const char *cell, int64_t *at,
                                          bool *found);
/* How many overdue alerts, first ones and reminders, have from <= at < to. */
enum store_status outbox_count_overdue(struct outbox *o, int64_t from, int64_t to, int64_t *out);

/* Tasks raised with from <= at < to — event and reading alerts, and
 * overdue episodes begun then — and how many of them were claimed. */
enum store_status outbox_count_tasks(struct outbox *o, int64_t from, int64_t to, int64_t *tasks,
                                     int64_t *claimed);
/* Claims (SPEC, Claims): the alerts that are tasks (overdue, event,
 * reading), who claimed them, and when their episode ended. */
struct outbox_task {
	int64_t id;
	char kind[16];
	char cell[TOPIC_SEGMENT_MAX + 1];
	int64_t at; /* raised, Unix seconds */
	bool claimed;
	char claimed_by[TOPIC_SEGMENT_MAX + 1];
	bool resolved;
};
/* Any alert by id (its kind says whether it is a task). */
enum store_status outbox_task_by_id(struct outbox *o, int64_t id, struct outbox_task *out,
                                    bool *found);
/* The cell's newest open task raised at or before at_most. */
enum store_status outbox_task_latest(struct outbox *o, const char *cell, int64_t at_most,
                                     struct outbox_task *out, bool *found);
/* Record the claim unless the alert is already claimed (*claimed 0, else
 * the id of the row that took it). For an open overdue alert the task is
 * its episode: the claim goes on the episode's first open row, unless one
 * of its rows is claimed already. */
enum store_status outbox_claim(struct outbox *o, int64_t id, const char *by, int64_t at,
                               int64_t *claimed);
/* The newest claim of the cell's open overdue episode, and whether a
 * reminder was raised since it ran out (hold_from + claim_for). */
struct outbox_claim {
	char by[TOPIC_SEGMENT_MAX + 1];
	int64_t at;        /* the claim's own time */
	int64_t hold_from; /* max(at, when the daemon announced it) */
	bool reminded_after;
};
enum store_status outbox_episode_claim(struct outbox *o, const char *cell, int64_t claim_for,
                                       struct outbox_claim *out, bool *found);
/* End the cell's open tasks of `kind` raised at or before raised_by (for
 * readings only those of reading_type; NULL otherwise) at now. */
enum store_status outbox_resolve(struct outbox *o, const char *cell, const char *kind,
                                 const char *reading_type, int64_t raised_by, int64_t now);

enum store_status outbox_mark_inflight(struct outbox *o, int64_t id);
enum store_status outbox_mark_delivered(struct outbox *o, int64_t id, int64_t now_ms);
/* A failed try: back to pending with next_ms, tries+1, the error kept. */
enum store_status outbox_mark_failed(struct outbox *o, int64_t id, int64_t next_ms,
                                     const char *error);
enum store_status outbox_mark_expired(struct outbox *o, int64_t id, int64_t now_ms,
                                      const char *error);

#endif
