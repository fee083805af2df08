/*
 * dbstate: whether the database is writable, as the daemon sees it — the
 * one owner of a storage outage's state and its transitions (a batch that
 * failed, a batch that committed, time passing): only these functions
 * change it, and no other part keeps flags of its own about it (daemon.c
 * reads the struct's fields; it never writes them).
 *
 * An outage starts at the first failed batch. Retries follow a backoff of
 * 1 s doubling to 5 s, or come at once when the database's filesystem has
 * DBSTATE_WAKE_BYTES more free than at the last failure. With no commit
 * for DBSTATE_ALERT_MS after the first failure a `system` alert is due;
 * the outage ends ("writable again") once a batch has committed and
 * DBSTATE_CONFIRM_MS have passed since the last failure, so a nearly full
 * database that takes the odd small batch does not flap.
 *
 * Never logs, reads no clock: the caller passes monotonic milliseconds
 * and the free space in, and turns the transitions reported back into its
 * log lines, alerts and timers.
 */
#ifndef GRIDPATROL_DBSTATE_H
#define GRIDPATROL_DBSTATE_H

#include <stdbool.h>
#include <stdint.h>

#define DBSTATE_BACKOFF_MIN_MS 1000
/* Each retry is one reconnect and one redelivered batch, cheap next to a
 * village's reports waiting on the broker: once space returns, consuming
 * resumes within this. */
#define DBSTATE_BACKOFF_MAX_MS 5000
/* Not writable this long (no commit since the first failure) is a
 * `system` alert: a blip that the next batch rides over is not news. */
#define DBSTATE_ALERT_MS 5000
/* This much more free space than at the failure wakes the retry early. */
#define DBSTATE_WAKE_BYTES (256 * 1024)
/* A nearly full database still takes the odd small batch; call it healthy
 * only after this long without a failure, so the log says "not writable"
 * once per outage instead of flapping with every batch that happens to fit. */
#define DBSTATE_CONFIRM_MS 10000

struct dbstate {
	bool down;            /* an outage is under way */
	int64_t down_ms;      /* first failure of this outage */
	int64_t failed_at_ms; /* last failure */
	int64_t free;         /* bytes free on its filesystem then, or -1 */
	bool committed;       /* a batch committed since that failure */
	bool full;            /* that failure was SQLITE_FULL */
	bool probe;           /* a retry is due: held alerts and deadlines may write */
	bool alerted;         /* the `system` alert of this outage was raised */
	int tries;            /* retries in this outage so far */
};

void dbstate_init(struct dbstate *s);

/* A batch failed at now_ms (full: with SQLITE_FULL). Returns true when
 * that starts an outage. */
bool dbstate_failed(struct dbstate *s, int64_t now_ms, bool full);
/* Free bytes measured after the failure's cleanup (-1: unknown), the base
 * for dbstate_wake. */
void dbstate_set_free(struct dbstate *s, int64_t free_bytes);
/* The wait before the next retry; each call counts one. */
int64_t dbstate_retry_delay(struct dbstate *s);
/* The retry is due: the next batch is the probe. */
void dbstate_retry_due(struct dbstate *s);
/* With free_now bytes free, whether a waiting retry should come now (the
 * new figure is then the base). */
bool dbstate_wake(struct dbstate *s, int64_t free_now);

/* A batch committed; dbstate_confirm says whether the outage is over. */
void dbstate_committed(struct dbstate *s);
/* After a commit and as time passes: true when the outage ends now.
 * *alerted says whether its `system` alert was raised (a recovery is then
 * due) and *down_s how long it lasted, first failure to last. */
bool dbstate_confirm(struct dbstate *s, int64_t now_ms, bool *alerted, int64_t *down_s);
/* Time passing: true once, when the outage's `system` alert is due. */
bool dbstate_alert_due(struct dbstate *s, int64_t now_ms);

/* Whether the held alerts may join this batch — always while writable;
 * while failing only for a probe or after a batch got through, so that
 * they do not turn every pass into another failure. Taking it uses up
 * the probe. */
bool dbstate_take_held_write(struct dbstate *s);

/*
 * A writer's own pause: delivery, when the outbox refuses a read or a
 * write, stops starting tries and keeps finished outcomes in memory until
 * a retry records them, on the same 1 s doubling to 5 s. It is not the
 * outage above: it starts with delivery's own failure and ends as soon as
 * one retry gets through, and it neither logs the outage nor raises its
 * alert.
 */
struct dbstate_pause {
	bool paused;
	int tries; /* retries since a write last got through */
};

/* A write failed. Returns the wait before the retry when this pauses, or
 * -1 when already paused (that retry is armed). */
int64_t dbstate_pause_failed(struct dbstate_pause *p);
/* The retry is due: writes may be tried again (a failure pauses anew). */
void dbstate_pause_retry(struct dbstate_pause *p);
/* The retry got through: the next pause starts at the shortest wait. */
void dbstate_pause_ok(struct dbstate_pause *p);

#endif
