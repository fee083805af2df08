/*
 * units: the small value languages of the configuration file — durations,
 * byte sizes, clock times and active-hour windows.
 *
 * These parsers are deliberately strict. A configuration value that is
 * almost right ("4 h", "8KB", "7:00", "-5m") is far more likely to be a
 * typo than an intent, and silently guessing would let a grid cell go
 * unwatched. So there is no whitespace skipping, no sign, no locale-aware
 * ctype, and overflow is an error rather than a wrap. Pure: no I/O, no
 * logging; *out is written only on success.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "units.h"

static int is_digit(char c)
{
	/* Not isdigit(): it depends on the locale and on the sign of char. */
	return c >= '0' && c <= '9';
}

/* Reads a run of decimal digits at *p into *out. Fails on no digits or on a
 * value that does not fit in int64_t. */
static int read_digits(const char **p, int64_t *out)
{
	const char *s = *p;
	int64_t v = 0;

	if (!is_digit(*s))
		return -1;
	for (; is_digit(*s); s++) {
		int d = *s - '0';

		if (v > (INT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*p = s;
	*out = v;
	return 0;
}

static int mul_add(int64_t *acc, int64_t v, int64_t mul)
{
	if (v > INT64_MAX / mul)
		return -1;
	v *= mul;
	if (*acc > INT64_MAX - v)
		return -1;
	*acc += v;
	return 0;
}

int units_duration(const char *s, int64_t *out_s)
{
	/* Ordered largest first: a group's unit must come strictly later in
	 * this table than the previous group's, which forbids both "1m1h"
	 * and "1h1h". */
	static const struct {
		char unit;
		int64_t mul;
	} units[] = { { 'd', 86400 }, { 'h', 3600 }, { 'm', 60 }, { 's', 1 } };
	const size_t n_units = sizeof(units) / sizeof(units[0]);
	size_t next = 0;
	int64_t total = 0;

	if (s == NULL || *s == '\0')
		return -1;
	while (*s != '\0') {
		int64_t v;
		size_t i;

		if (read_digits(&s, &v) < 0)
			return -1;
		for (i = next; i < n_units; i++)
			if (units[i].unit == *s)
				break;
		if (i == n_units)
			return -1;
		if (mul_add(&total, v, units[i].mul) < 0)
			return -1;
		next = i + 1;
		s++;
	}
	*out_s = total;
	return 0;
}

int units_size(const char *s, int64_t *out_bytes)
{
	static const struct {
		const char *suffix;
		int64_t mul;
	} units[] = {
		{ "", 1 },
		{ "B", 1 },
		{ "KiB", INT64_C(1) << 10 },
		{ "MiB", INT64_C(1) << 20 },
		{ "GiB", INT64_C(1) << 30 },
	};
	int64_t v, total = 0;

	if (s == NULL || read_digits(&s, &v) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(s, units[i].suffix) != 0)
			continue;
		if (mul_add(&total, v, units[i].mul) < 0)
			return -1;
		*out_bytes = total;
		return 0;
	}
	return -1;
}

/* Exactly "HH:MM" at s (not necessarily NUL-terminated after it). */
static int clock_at(const char *s, bool allow_24, int *out_min)
{
	int h, m;

	if (!is_digit(s[0]) || !is_digit(s[1]) || s[2] != ':' || !is_digit(s[3]) || !is_digit(s[4]))
		return -1;
	h = (s[0] - '0') * 10 + (s[1] - '0');
	m = (s[3] - '0') * 10 + (s[4] - '0');
	if (m > 59)
		return -1;
	if (h > 23 && !(allow_24 && h == 24 && m == 0))
		return -1;
	*out_min = h * 60 + m;
	return 0;
}

int units_clock(const char *s, bool allow_24, int *out_min)
{
	int min;

	if (s == NULL || strlen(s) != 5 || clock_at(s, allow_24, &min) < 0)
		return -1;
	*out_min = min;
	return 0;
}

int units_active(const char *s, struct units_active *out)
{
	int start, end;

	if (s == NULL)
		return -1;
	if (strcmp(s, "always") == 0) {
		out->always = true;
		out->start_min = 0;
		out->end_min = 1440;
		return 0;
	}
	/* "24:00" is only meaningful as an end; as a start it would be the
	 * same instant as "00:00" and invite confusion. */
	if (strlen(s) != 11 || s[5] != '-' || clock_at(s, false, &start) < 0 ||
	    clock_at(s + 6, true, &end) < 0)
		return -1;
	/* An empty window would mean a cell is never due; a full one is
	 * spelled "always" (or "00:00-24:00"). */
	if (start == end)
		return -1;
	out->always = false;
	out->start_min = start;
	out->end_min = end;
	return 0;
}
