/*
 * span: the last patrol of a cell, read from event_span.
 *
 * The one reading of "when was this cell last patrolled, and by whom"
 * that the deadline engine (watch), the overdue texts (alert) and the
 * CLI's `status` share, so they can never disagree. event_span keeps the
 * newest event of each (cell, type) even after retention deleted the
 * rows, and whether a type counts as a patrol is decided from the
 * configuration in force by config_event_counts_as_patrol (config.h).
 *
 * Works on any connection (the daemon's writer, the CLI's reader); it
 * never logs. One indexed probe per cell: a year of history costs
 * nothing.
 */
#ifndef GRIDPATROL_SPAN_H
#define GRIDPATROL_SPAN_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "topic.h"

struct span_patrol {
	bool found;
	int64_t ts;                         /* the event's ts, Unix seconds */
	char worker[TOPIC_SEGMENT_MAX + 1]; /* who reported it */
};

/* Prepares the per-cell probe on db (finalize it with sqlite3_finalize).
 * Returns an SQLite result code. */
int span_prepare(sqlite3 *db, sqlite3_stmt **st);

/* The newest patrol of `cell` into *out (found false if none). Returns
 * SQLITE_OK or the SQLite error code of the failed step. */
int span_last_patrol(sqlite3_stmt *st, const struct config *cfg, const char *cell,
                     struct span_patrol *out);

#endif
