/*
 * watch: the daemon's view of every cell — the deadline engine fed from
 * the database and from each stored event, and the alerts that follow
 * (overdue, recovered, immediate events, readings).
 *
 * In-memory state is a cache of the database: it is rebuilt from it at
 * start, on reload, and whenever a batch rolls back, so memory never holds
 * a patrol or an alert that did not commit.
 */
#ifndef GRIDPATROL_WATCH_H
#define GRIDPATROL_WATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "alert.h"
#include "config.h"
#include "deadline.h"
#include "msg.h"
#include "store.h"

struct watch;

struct watch *watch_new(struct store *s, struct alert *a);
void watch_free(struct watch *w);

/* Rebuild deadlines from the database for cfg (which must outlive the
 * next rebuild). Pauses are read too. */
enum store_status watch_rebuild(struct watch *w, const struct config *cfg, int64_t now);

/* A newly stored event (not a duplicate): move the cell's deadline, raise
 * recovered / event / reading alerts. *queued set when an alert was
 * written. */
enum store_status watch_on_event(struct watch *w, const struct msg_record *rec, int64_t event_id,
                                 int64_t now, bool *queued);

/* A claim (from a claim-type event or the office): record it, raise
 * `claimed`, and hold the claimed overdue episode's reminders. */
enum store_status watch_claim(struct watch *w, const struct alert_claim *cl, int64_t now,
                              bool *queued);

/* Carry out up to 16 rows of claim_request (`gridpatrol claim`) in the
 * batch, each deleted with the claim it makes; *done counts them, *more
 * says rows remain. */
/* Before a message is stored: a claim naming an alert that does not exist
 * is bad input, not an event (*bad, detail; SPEC, Claims); one naming an
 * alert that ended is stored and changes nothing. */
enum store_status watch_claim_check(struct watch *w, const struct msg_record *rec, bool *bad,
                                    char *detail, size_t len);
enum store_status watch_office_claims(struct watch *w, int64_t now, bool *queued, int *done,
                                      bool *more);

/* Raise the overdue alerts due by now (and their repeats). */
enum store_status watch_tick(struct watch *w, int64_t now, bool *queued);
/* When watch_tick next has something to do (DEADLINE_NEVER: nothing). */
int64_t watch_next_time(const struct watch *w);

/* Re-read the pause table (another connection changed it). */
enum store_status watch_sync_pauses(struct watch *w, int64_t now);

const struct deadline *watch_deadlines(const struct watch *w);

#endif
