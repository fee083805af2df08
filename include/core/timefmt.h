/*
 * timefmt: times and durations as people read them — RFC 3339 in local
 * time for documents, "4小时12分" / "4h 12m" and "09:12" / "11月23日 17:00"
 * for alert texts and reports. Pure (local time = the process's TZ).
 */
#ifndef GRIDPATROL_TIMEFMT_H
#define GRIDPATROL_TIMEFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum timefmt_lang {
	TIMEFMT_ZH,
	TIMEFMT_EN
};

#define TIMEFMT_MAX 64

/* "2026-11-24T13:27:00+08:00" */
void timefmt_rfc3339(int64_t t, char *buf, size_t len);
/* "4小时12分", "2天3小时", "12分" / "4h 12m", "2d 3h", "12m"; under a
 * minute: "不到1分钟" / "under 1m". */
void timefmt_duration(int64_t secs, enum timefmt_lang lang, char *buf, size_t len);
/* Local clock time, with the date when t is not on now's local day:
 * "09:12" or "11月23日 17:00" / "Nov 23 17:00". */
void timefmt_clock(int64_t t, int64_t now, enum timefmt_lang lang, char *buf, size_t len);
/* "2026-11-24" (local). */
void timefmt_date(int64_t t, char *buf, size_t len);
/* Local midnight starting the day that contains t. */
int64_t timefmt_day_start(int64_t t);

#endif
