/*
 * units: strict parsers for the small value languages of the configuration
 * file — durations ("90s", "1h30m"), sizes ("8192", "8KiB"), clock times
 * ("07:00") and active-hour windows ("07:00-19:00", "always").
 *
 * Pure: no I/O, no logging. Every function returns 0 on success and -1 on a
 * malformed value, leaving *out untouched, so callers can report the error
 * with their own position information.
 */
#ifndef GRIDPATROL_UNITS_H
#define GRIDPATROL_UNITS_H

#include <stdbool.h>
#include <stdint.h>

/* An active-hours window in local minutes of the day. `always` ignores the
 * minutes. start == end is not a valid window (use "always"); start > end
 * crosses midnight ("20:00-06:00"). */
struct units_active {
	bool always;
	int start_min; /* 0..1439 */
	int end_min;   /* 0..1440; 1440 only as "24:00" */
};

/* One or more <digits><unit> groups, unit in s m h d, largest first, e.g.
 * "90s", "15m", "1h30m", "2d". Zero is allowed ("0s"). Result in seconds. */
int units_duration(const char *s, int64_t *out_s);

/* A byte size: plain digits, or digits followed by B, KiB, MiB or GiB. */
int units_size(const char *s, int64_t *out_bytes);

/* "HH:MM", 00:00..23:59 (allow_24 also accepts "24:00"). Minutes of day. */
int units_clock(const char *s, bool allow_24, int *out_min);

/* "always" or "HH:MM-HH:MM". */
int units_active(const char *s, struct units_active *out);

#endif
