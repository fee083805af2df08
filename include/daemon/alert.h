/*
 * alert: what to say, and to whom. Turns deadline fires, patrols, urgent
 * events and readings into alert rows with their text (zh-CN or en) and
 * JSON document, queued through the outbox in the caller's batch — so an
 * alert commits together with the state change that caused it.
 *
 * It keeps the one piece of alert state the deadline engine does not: the
 * current level of each (cell, value event type), so a reading alerts again
 * only when its level rises, restored from the alert table at start.
 */
#ifndef GRIDPATROL_ALERT_H
#define GRIDPATROL_ALERT_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "deadline.h"
#include "msg.h"
#include "outbox.h"
#include "store.h"

struct alert;

struct alert *alert_new(const struct config *cfg, struct store *s, struct outbox *o, char *err,
                        size_t errlen);
void alert_free(struct alert *a);
/* After a reload; reading levels are read again from the alert table
 * before the next reading is judged (new cells and threshold types). */
void alert_set_config(struct alert *a, const struct config *cfg);

/* Reading levels of the configured cells and threshold types from the
 * alert table (at start and after a failed batch): index probes per
 * cell and type, not a scan of the alert history. */
enum store_status alert_restore(struct alert *a);

/* Each returns the store status; *queued is set when an alert was written. */
enum store_status alert_overdue(struct alert *a, const struct config_cell *c,
                                const struct deadline_fire *f, int64_t now);
enum store_status alert_recovered(struct alert *a, const struct config_cell *c,
                                  const struct deadline_patrol_result *r, const char *worker,
                                  int64_t patrol_ts, int64_t now);
/* For an accepted, newly stored event: `event` alert for alert: immediate
 * types, `reading`/`recovered` for values crossing warn/alarm. */
enum store_status alert_on_event(struct alert *a, const struct msg_record *rec, int64_t event_id,
                                 int64_t now, bool *queued);
/* Claims (SPEC, Claims). A claim by `by` at `at` (the message's patrol
 * time, or the office's clock) of alert_id, or with 0 of the cell's latest
 * open task (overdue, event or reading alert) raised at or before `at`. */
struct alert_claim {
	const struct config_cell *cell;
	int64_t alert_id;
	const char *by;
	int64_t at;
};
struct alert_claim_result {
	bool claimed; /* a `claimed` alert was written */
	bool overdue; /* it was an overdue alert: reminders wait */
	int64_t hold_until;
};
/* Before a claim naming alert_id is stored: *bad (with a detail for the
 * bad_field rejection) when no such alert exists, it is not a task, or it
 * belongs to another cell. */
enum store_status alert_claim_check(struct alert *a, const struct config_cell *c, int64_t alert_id,
                                    bool *bad, char *detail, size_t len);
/* Record the claim and raise `claimed` — unless there is nothing open to
 * claim, the alert is claimed already, ended, or newer than the claim:
 * then nothing happens (res->claimed false). */
enum store_status alert_claim(struct alert *a, const struct alert_claim *cl, int64_t now,
                              struct alert_claim_result *res);
/* Until when the claim of the cell's open overdue episode holds its
 * reminders; 0 when none does or its "ran out" reminder was raised. */
enum store_status alert_claim_holds(struct alert *a, const struct config_cell *c, int64_t *until);
/* A patrol at patrol_ts ends the cell's open event alerts raised before. */
enum store_status alert_event_done(struct alert *a, const struct config_cell *c, int64_t patrol_ts,
                                   int64_t now);
/* The day's coverage so far, for the day containing now. */
enum store_status alert_digest(struct alert *a, int64_t now);
/* The daemon's own trouble (`condition`: "broker", "storage", "dropped"),
 * or with recovered its end ("back to normal"). what_zh/what_en are the
 * sentences after the 【系统告警】/[System] tag. */
enum store_status alert_system(struct alert *a, const char *condition, bool recovered,
                               const char *what_zh, const char *what_en, int64_t now);
/* The same alert's text and JSON document (malloc'd) without writing
 * anything, for delivery from memory when the database cannot be written.
 * Returns -1 when out of memory. */
int alert_system_render(struct alert *a, const char *condition, bool recovered, const char *what_zh,
                        const char *what_en, int64_t now, char **text, char **doc);

#endif
