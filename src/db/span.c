/*
 * span: the last patrol of a cell from event_span (see span.h).
 */
#include "span.h"

#include <stdio.h>
#include <string.h>

int span_prepare(sqlite3 *db, sqlite3_stmt **st)
{
	/* The primary key (cell, type) makes this a range of a few rows. */
	return sqlite3_prepare_v3(db,
	                          "SELECT type, last_ts, last_worker FROM event_span "
	                          "WHERE cell = ?1",
	                          -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
}

int span_last_patrol(sqlite3_stmt *st, const struct config *cfg, const char *cell,
                     struct span_patrol *out)
{
	memset(out, 0, sizeof(*out));
	int rc = sqlite3_bind_text(st, 1, cell, -1, SQLITE_STATIC);
	if (rc != SQLITE_OK)
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *type = (const char *)sqlite3_column_text(st, 0);
		const char *worker = (const char *)sqlite3_column_text(st, 2);
		int64_t ts = sqlite3_column_int64(st, 1);
		/* Ties keep the first type in key order, the same every time. */
		if (!config_event_counts_as_patrol(cfg, type) || (out->found && ts <= out->ts))
			continue;
		out->found = true;
		out->ts = ts;
		snprintf(out->worker, sizeof(out->worker), "%s", worker ? worker : "");
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}
