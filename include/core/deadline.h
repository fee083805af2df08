/*
 * deadline: when each cell is due, and which cell needs looking at next.
 *
 * Time model (docs/deadlines.md): a cell is due `interval` of *active time*
 * after its base time (deadline_base: its latest patrol, or when it became
 * known if never patrolled, or the end of a pause if later); it is overdue once a further `grace` of active time has passed;
 * while overdue it fires again every `repeat` of active time. Active time is
 * time inside the cell's active window in local time; "always" makes it
 * wall time. So overdue alerts and repeats only ever fire inside active
 * hours, and a cell left at 17:00 with 4 h to go and 07:00-19:00 hours is
 * due at 09:00 the next day.
 *
 * Local time is the process's zone (TZ, set once from the configuration by
 * the daemon; tests set it per case). Pure otherwise: no I/O, no logging;
 * the caller passes "now" in, so tests run on a fake clock.
 *
 * The engine keeps per-cell state in one flat array and a binary min-heap
 * of next fire times, so a patrol or a fire costs O(log n) and memory is
 * a few dozen bytes per cell, at 1,000,000 cells too.
 */
#ifndef GRIDPATROL_DEADLINE_H
#define GRIDPATROL_DEADLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "units.h"

#define DEADLINE_NEVER INT64_MAX

struct deadline_params {
	int64_t interval_s;
	int64_t grace_s;
	int64_t repeat_s; /* 0: no repeats */
	struct units_active active;
};

/* --- active-time arithmetic (local time zone) --- */

bool deadline_is_active(const struct units_active *a, int64_t t);
/* The earliest instant T >= from such that [from, T) holds dur_s seconds of
 * active time. dur_s == 0 returns from. Handles windows crossing midnight
 * ("20:00-06:00"), "always", multi-day carry-over, and DST (a local window
 * boundary that does not exist is taken at the next existing instant).
 * Returns DEADLINE_NEVER only on overflow. */
int64_t deadline_active_add(const struct units_active *a, int64_t from, int64_t dur_s);
/* Seconds of active time in [from, to); 0 when to <= from. */
int64_t deadline_active_between(const struct units_active *a, int64_t from, int64_t to);
/* The next instant > now whose local time of day is min_of_day (daily
 * digest). */
int64_t deadline_next_daily(int min_of_day, int64_t now);

/* --- the base rule (SPEC, Deadline) --- */

/* What a cell's deadline counts from: its latest patrol once it has one,
 * whenever that was reported and even if it predates known_since (a device
 * that uploads days late leaves the cell unpatrolled for those days);
 * known_since only while it was never patrolled; and the end of the last
 * pause that has ended, when that is later. 0 means "none" for last_patrol
 * and pause_end (and for known_since: not known). The daemon, `status` and
 * `report` all take the base from here. */
int64_t deadline_base(int64_t known_since, int64_t last_patrol, int64_t pause_end);

/* --- the engine --- */

struct deadline;

struct deadline_fire {
	uint32_t cell;
	int64_t base;        /* what the deadline counted from */
	int64_t last_patrol; /* latest patrol time seen, or 0 if none */
	int64_t due;         /* deadline (before grace) */
	int64_t overdue_at;  /* due + grace, in active time */
	int repeat;          /* 0 for the first overdue alert, then 1, 2, ... */
};

struct deadline_patrol_result {
	bool recovered; /* the cell was overdue-alerted and now is not */
	bool moved;     /* ts was newer than the last patrol */
	int64_t prev_last_patrol;
	int64_t prev_due; /* recovered only: the deadline that had passed */
	int repeats;      /* how many overdue alerts had been raised (1 + repeats) */
};

enum deadline_state {
	DEADLINE_OK,
	DEADLINE_DUE_SOON, /* due within 30 min, or past due but within grace */
	DEADLINE_OVERDUE,  /* past due + grace (even outside active hours) */
	DEADLINE_PAUSED,
	DEADLINE_INACTIVE, /* outside active hours and not overdue */
};

struct deadline *deadline_new(void);
void deadline_free(struct deadline *d);

/* Define cell number `cell` (0..n-1, dense: the caller's index into its
 * cell table). `p` is not copied and must outlive the engine's use of it.
 * The facts are deadline_base()'s: last_patrol = 0 when never patrolled,
 * pause_end = end of a pause that is over, 0 if none. Re-setting a cell
 * (config reload) keeps nothing of its old state. Returns 0, or -1 on
 * ENOMEM. */
int deadline_set(struct deadline *d, uint32_t cell, const struct deadline_params *p,
                 int64_t known_since, int64_t last_patrol, int64_t pause_end);
/* After a restart: the cell had an overdue alert raised at alerted_at with
 * this repeat count and no recovery since; the next repeat is due `repeat`
 * of active time after alerted_at. */
void deadline_restore_alerted(struct deadline *d, uint32_t cell, int64_t alerted_at, int repeat);
/* A claim holds an alerted cell's reminders until `until`: its next fire
 * moves to the first active instant at or after it (the reminder that says
 * the claim ran out), later or earlier than the one scheduled, but never
 * before the cell's overdue time (after a resumed pause). Nothing
 * happens, and false is returned, for a cell that is not alerted, is
 * paused, or has no repeats. A patrol that recovers the cell ends it. */
bool deadline_hold(struct deadline *d, uint32_t cell, int64_t until);
/* Drop cells >= n (config reload shrank the table). */
void deadline_truncate(struct deadline *d, uint32_t n);

/* A patrol at patrol time ts (possibly reported late: ts may be older than
 * the last patrol, which then does not move back; the first patrol of a
 * cell moves its base to ts even if that is before known_since). If the
 * cell had been alerted and its new overdue time lies after now, it has
 * recovered. */
void deadline_patrol(struct deadline *d, uint32_t cell, int64_t ts, int64_t now,
                     struct deadline_patrol_result *res);

/* Pause until `until` (DEADLINE_NEVER: until resumed); nothing fires while
 * paused. Resuming (deadline_resume, `until` passing as seen by
 * deadline_pop, or deadline_pause with an `until` already past, which ends
 * a running pause at `until`) restarts the count from the resume time,
 * keeping a pending recovery (an alerted cell still gets its "recovered"
 * on the next patrol). */
void deadline_pause(struct deadline *d, uint32_t cell, int64_t until, int64_t now);
void deadline_resume(struct deadline *d, uint32_t cell, int64_t now);
bool deadline_paused(const struct deadline *d, uint32_t cell, int64_t now);

/* Earliest instant at which deadline_pop may return something. */
int64_t deadline_next_time(const struct deadline *d);
/* Pop one cell whose overdue (or repeat) time is <= now; schedules its next
 * repeat `repeat_s` of active time after now. Returns false when nothing is
 * due. Pause ends are handled here too (they return nothing). */
bool deadline_pop(struct deadline *d, int64_t now, struct deadline_fire *out);
/* What deadline_pop would return, without counting it as raised or
 * rescheduling it (pause ends are still handled): a caller that may hold
 * the fire instead (a claim) looks first, so a held reminder does not
 * use up a repeat number. */
bool deadline_peek(struct deadline *d, int64_t now, struct deadline_fire *out);

/* For `gridpatrol status` and tests. */
enum deadline_state deadline_state(const struct deadline *d, uint32_t cell, int64_t now);
int64_t deadline_due(const struct deadline *d, uint32_t cell);
int64_t deadline_last_patrol(const struct deadline *d, uint32_t cell);
bool deadline_alerted(const struct deadline *d, uint32_t cell);
uint32_t deadline_count(const struct deadline *d);
/* Bytes held by the engine (for the benchmark's bytes-per-cell figure). */
size_t deadline_memory(const struct deadline *d);

#endif
