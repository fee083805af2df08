/*
 * timefmt: local-time rendering shared by alert texts, delivery documents
 * and (later) reports, so all of them show a time the same way.
 */
#include "timefmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void timefmt_local(int64_t t, struct tm *tm)
{
	time_t tt = (time_t)t;
	if (!localtime_r(&tt, tm)) {
		tt = 0;
		gmtime_r(&tt, tm);
	}
}

void timefmt_rfc3339(int64_t t, char *buf, size_t len)
{
	struct tm tm;
	timefmt_local(t, &tm);
	long off = tm.tm_gmtoff;
	char sign = off < 0 ? '-' : '+';
	off = labs(off);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d%c%02ld:%02ld", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, sign, off / 3600,
	         (off % 3600) / 60);
}

void timefmt_duration(int64_t secs, enum timefmt_lang lang, char *buf, size_t len)
{
	if (secs < 60) {
		snprintf(buf, len, "%s", lang == TIMEFMT_ZH ? "不到1分钟" : "under 1m");
		return;
	}
	long long d = secs / 86400, h = (secs % 86400) / 3600, m = (secs % 3600) / 60;
	/* Two units are enough to act on; "2天3小时5分" reads as noise. */
	if (lang == TIMEFMT_ZH) {
		if (d > 0)
			snprintf(buf, len, h ? "%lld天%lld小时" : "%lld天", d, h);
		else if (h > 0)
			snprintf(buf, len, m ? "%lld小时%lld分" : "%lld小时", h, m);
		else
			snprintf(buf, len, "%lld分", m);
	} else {
		if (d > 0)
			snprintf(buf, len, h ? "%lldd %lldh" : "%lldd", d, h);
		else if (h > 0)
			snprintf(buf, len, m ? "%lldh %lldm" : "%lldh", h, m);
		else
			snprintf(buf, len, "%lldm", m);
	}
}

void timefmt_clock(int64_t t, int64_t now, enum timefmt_lang lang, char *buf, size_t len)
{
	static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
		                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm, tn;
	timefmt_local(t, &tm);
	timefmt_local(now, &tn);
	if (tm.tm_year == tn.tm_year && tm.tm_yday == tn.tm_yday)
		snprintf(buf, len, "%02d:%02d", tm.tm_hour, tm.tm_min);
	else if (lang == TIMEFMT_ZH)
		snprintf(buf, len, "%d月%d日 %02d:%02d", tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		         tm.tm_min);
	else
		snprintf(buf, len, "%s %d %02d:%02d", mon[tm.tm_mon], tm.tm_mday, tm.tm_hour,
		         tm.tm_min);
}

void timefmt_date(int64_t t, char *buf, size_t len)
{
	struct tm tm;
	timefmt_local(t, &tm);
	snprintf(buf, len, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

int64_t timefmt_day_start(int64_t t)
{
	struct tm tm;
	timefmt_local(t, &tm);
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	tm.tm_isdst = -1;
	time_t r = mktime(&tm);
	return r == (time_t)-1 ? t - t % 86400 : (int64_t)r;
}
