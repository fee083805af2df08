/*
 * dbstate: the storage outage's state machine (include/daemon/dbstate.h).
 * Kept apart from daemon.c so that the rules — when an outage starts, when
 * it is news, when it is over, how fast to retry — sit in one place with
 * their own unit test, and the daemon's handlers only act on what it says.
 */
#include "dbstate.h"

#include <limits.h>

#include "backoff.h"

void dbstate_init(struct dbstate *s)
{
	*s = (struct dbstate){ .free = -1 };
}

bool dbstate_failed(struct dbstate *s, int64_t now_ms, bool full)
{
	bool first = !s->down;

	s->full = full;
	s->failed_at_ms = now_ms;
	s->committed = false;
	s->probe = false;
	if (first) {
		s->down = true;
		s->down_ms = now_ms;
	}
	return first;
}

void dbstate_set_free(struct dbstate *s, int64_t free_bytes)
{
	s->free = free_bytes;
}

int64_t dbstate_retry_delay(struct dbstate *s)
{
	int64_t d = backoff_delay_ms(DBSTATE_BACKOFF_MIN_MS, DBSTATE_BACKOFF_MAX_MS, s->tries);
	if (s->tries < INT_MAX)
		s->tries++;
	return d;
}

void dbstate_retry_due(struct dbstate *s)
{
	s->probe = true;
}

bool dbstate_wake(struct dbstate *s, int64_t free_now)
{
	if (!s->down || s->free < 0 || free_now <= s->free + DBSTATE_WAKE_BYTES)
		return false;
	s->free = free_now;
	return true;
}

void dbstate_committed(struct dbstate *s)
{
	s->committed = true;
}

bool dbstate_confirm(struct dbstate *s, int64_t now_ms, bool *alerted, int64_t *down_s)
{
	if (!s->down || !s->committed || now_ms - s->failed_at_ms < DBSTATE_CONFIRM_MS)
		return false;
	s->down = false;
	s->tries = 0;
	*alerted = s->alerted;
	/* Not writable from the first failure to the last one. */
	*down_s = (s->failed_at_ms - s->down_ms) / 1000;
	s->alerted = false;
	return true;
}

bool dbstate_alert_due(struct dbstate *s, int64_t now_ms)
{
	if (!s->down || s->committed || s->alerted || now_ms - s->down_ms < DBSTATE_ALERT_MS)
		return false;
	s->alerted = true;
	return true;
}

int64_t dbstate_pause_failed(struct dbstate_pause *p)
{
	if (p->paused)
		return -1;
	p->paused = true;
	int64_t d = backoff_delay_ms(DBSTATE_BACKOFF_MIN_MS, DBSTATE_BACKOFF_MAX_MS, p->tries);
	if (p->tries < INT_MAX)
		p->tries++;
	return d;
}

void dbstate_pause_retry(struct dbstate_pause *p)
{
	p->paused = false;
}

void dbstate_pause_ok(struct dbstate_pause *p)
{
	p->tries = 0;
}

bool dbstate_take_held_write(struct dbstate *s)
{
	if (s->down && !s->probe && !s->committed)
		return false;
	s->probe = false;
	return true;
}
