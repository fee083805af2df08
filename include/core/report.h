/*
 * report: the daily coverage figures of one cell for one local calendar
 * day (SPEC "Daily report"), from facts the caller reads from the database.
 *
 * Pure: no I/O, no logging; local time is the process's TZ (the CLI sets it
 * from the configuration). Overdue follows the deadline module exactly —
 * interval and grace counted in active time from the last patrol, carried
 * over from earlier days; paused and untracked time left out — so the
 * report and the daemon's alerts never disagree about what was overdue.
 */
#ifndef GRIDPATROL_REPORT_H
#define GRIDPATROL_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* One accepted event of the day (any type), sorted by ts ascending. */
struct report_event {
	int64_t ts; /* patrol time */
	const char *worker;
	const char *type;
	bool patrol; /* the type counts as patrol presence */
	bool late;   /* flagged late */
	bool has_value;
	double value;
};

/* A pause overlapping the day: [since, until), until DEADLINE_NEVER-like
 * INT64_MAX for open-ended. */
struct report_pause {
	int64_t since, until;
};

struct report_input {
	const struct config_cell *cell;
	int64_t known_since;        /* 0: unknown (treated as never tracked before a patrol) */
	int64_t first_patrol_ever;  /* 0: never */
	int64_t last_patrol_before; /* latest patrol strictly before day_start; 0: none */
	const struct report_event *events;
	size_t n_events;
	const struct report_pause *pauses;
	size_t n_pauses;
	int alerts; /* alerts raised that day for the cell */
};

struct report_type_count {
	const char *type; /* points into the input events */
	int count;
};

struct report_cell {
	int patrols;          /* patrol-presence events */
	const char **workers; /* distinct workers of those patrols, sorted (malloc) */
	size_t n_workers;
	bool has_patrol;
	int64_t first, last;             /* first and last patrol of the day */
	int64_t longest_gap_s;           /* longest stretch without patrol, active time */
	bool has_covered;                /* false: no tracked active time that day */
	double covered_pct;              /* 0..100, rounded to one decimal */
	int64_t overdue_s;               /* tracked active seconds spent overdue */
	int64_t tracked_active_s;        /* the denominator of covered_pct */
	struct report_type_count *types; /* every type seen, sorted by type (malloc) */
	size_t n_types;
	bool has_value;
	double value_min, value_max;
	int alerts;
	int late;
	/* Per local hour of the day (0..23): what the chart shows. */
	enum report_hour {
		REPORT_HOUR_INACTIVE,  /* outside active hours, paused or untracked */
		REPORT_HOUR_COVERED,   /* tracked active, never overdue in that hour */
		REPORT_HOUR_PATROLLED, /* a patrol happened in that hour */
		REPORT_HOUR_OVERDUE,   /* overdue at some point in that hour */
		REPORT_HOUR_FUTURE,    /* after `now` */
	} hours[24];
};

/* Compute one cell's figures for [day_start, day_end) (local midnight to
 * midnight; DST days are 23 or 25 h). Time after `now` is not counted yet
 * (a report for today covers the day so far). Returns 0, or -1 on ENOMEM. */
int report_cell_compute(const struct report_input *in, int64_t day_start, int64_t day_end,
                        int64_t now, struct report_cell *out);
void report_cell_free(struct report_cell *c);

/* Local midnight of YYYY-MM-DD and of the following day. Returns -1 for a
 * malformed or impossible date. */
int report_day_bounds(const char *date, int64_t *start, int64_t *end);

#endif
