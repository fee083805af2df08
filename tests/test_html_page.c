/*
 * Unit tests for html_page: the day links of a served page (the day
 * before, the day after only when it has happened, the last seven days
 * across a month's end), short times with their RFC 3339 datetime, and the
 * frame: a standalone file has no navigation and no refresh, a served
 * page has both, and the title is escaped; the report's page as a file
 * and served.
 *
 * html_page.c is pure; it is compiled into this test with render.c (its
 * escaping) and table.c (render.c's), the chrony way, as test_table does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "config.h"
#include "html_page.h"
#include "render.h"
#include "report.h"

static int64_t at(const char *date, int hh, int mm)
{
	int64_t start, end;
	assert_int_equal(report_day_bounds(date, &start, &end), 0);
	return start + hh * 3600 + mm * 60;
}

static int setup_tz(void **state)
{
	(void)state;
	setenv("TZ", "Asia/Shanghai", 1);
	tzset();
	return 0;
}

static void test_days(void **state)
{
	struct html_page_days d;
	(void)state;
	int64_t now = at("2026-12-02", 9, 30);

	assert_int_equal(html_page_days("2026-11-24", now, &d), 0);
	assert_string_equal(d.prev, "2026-11-23");
	assert_string_equal(d.next, "2026-11-25");
	/* Today: there is no tomorrow to link to yet. */
	assert_int_equal(html_page_days("2026-12-02", now, &d), 0);
	assert_string_equal(d.prev, "2026-12-01");
	assert_string_equal(d.next, "");
	/* Yesterday's next is today. */
	assert_int_equal(html_page_days("2026-12-01", now, &d), 0);
	assert_string_equal(d.next, "2026-12-02");
	/* A day to come has no next either. */
	assert_int_equal(html_page_days("2026-12-09", now, &d), 0);
	assert_string_equal(d.next, "");
	/* The last seven days, newest first, across November's end. */
	assert_string_equal(d.last[0], "2026-12-02");
	assert_string_equal(d.last[1], "2026-12-01");
	assert_string_equal(d.last[2], "2026-11-30");
	assert_string_equal(d.last[6], "2026-11-26");
	/* Across a year, and a leap day. */
	assert_int_equal(html_page_days("2026-01-01", now, &d), 0);
	assert_string_equal(d.prev, "2025-12-31");
	assert_int_equal(html_page_days("2028-03-01", at("2028-03-05", 0, 0), &d), 0);
	assert_string_equal(d.prev, "2028-02-29");
	/* Not days. */
	assert_int_equal(html_page_days("2026-02-30", now, &d), -1);
	assert_int_equal(html_page_days("yesterday", now, &d), -1);
	assert_int_equal(html_page_days("", now, &d), -1);
}

/* What a call wrote, NUL-terminated; freed by the caller. Not inlined:
 * GCC 12 then takes the result for a pointer into the local `buf`
 * (-Wdangling-pointer), which it is not. */
__attribute__((noinline)) static char *written(int (*fn)(FILE *, void *), void *arg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	assert_int_equal(fn(f, arg), 0);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static int begin(FILE *f, void *arg)
{
	return html_page_begin(f, arg);
}

static void test_frame(void **state)
{
	(void)state;
	struct html_page p = { .lang = TIMEFMT_ZH,
		               .title = "日报 <b>&\"",
		               .section = HTML_PAGE_ALERTS,
		               .refresh_s = 60 };
	char *s = written(begin, &p);
	assert_true(strncmp(s, "<!DOCTYPE html>\n<html lang=\"zh-CN\">", 35) == 0);
	assert_non_null(strstr(s, "<title>日报 &lt;b&gt;&amp;&quot;</title>"));
	assert_non_null(strstr(s, "name=\"viewport\""));
	assert_non_null(strstr(s, "@media print"));
	/* A file: no navigation, no refresh, even when asked for one. */
	assert_null(strstr(s, "<nav"));
	assert_null(strstr(s, "http-equiv"));
	free(s);

	p.web = true;
	s = written(begin, &p);
	assert_non_null(strstr(s, "<meta http-equiv=\"refresh\" content=\"60\">"));
	assert_non_null(strstr(s, "<nav class=\"top\"><a href=\"/\">今日</a>"
	                          "<a href=\"/report\">日报</a>"
	                          "<a href=\"/alerts\" class=\"on\" aria-current=\"page\">提醒</a>"
	                          "<a href=\"/workers\">人员</a></nav>"));
	free(s);

	p.lang = TIMEFMT_EN;
	p.refresh_s = 0;
	p.section = HTML_PAGE_NOW;
	s = written(begin, &p);
	assert_non_null(strstr(s, "<html lang=\"en\">"));
	assert_null(strstr(s, "http-equiv"));
	assert_non_null(strstr(s, "<a href=\"/\" class=\"on\" aria-current=\"page\">Now</a>"
	                          "<a href=\"/report\">Report</a><a href=\"/alerts\">Alerts</a>"
	                          "<a href=\"/workers\">Workers</a>"));
	free(s);
}

struct links {
	const char *date;
	int64_t now;
};

static int links(FILE *f, void *arg)
{
	struct links *l = arg;
	return html_page_day_links(f, TIMEFMT_ZH, "/report", l->date, l->now);
}

static void test_day_links(void **state)
{
	(void)state;
	struct links l = { "2026-11-30", at("2026-12-02", 9, 30) };
	char *s = written(links, &l);
	assert_non_null(strstr(s, "<a href=\"/report?date=2026-11-29\" rel=\"prev\">"));
	assert_non_null(strstr(s, "<a href=\"/report?date=2026-12-01\" rel=\"next\">"));
	assert_non_null(strstr(s, "<a href=\"/report?date=2026-11-30\" class=\"on\">11-30</a>"));
	assert_non_null(strstr(s, "<a href=\"/report?date=2026-11-26\">11-26</a>"));
	assert_null(strstr(s, "2026-11-25\">"));
	free(s);
	l.date = "2026-12-02";
	s = written(links, &l);
	assert_null(strstr(s, "rel=\"next\""));
	free(s);
	/* Not a day: nothing, and no error. */
	l.date = "2026-13-01";
	s = written(links, &l);
	assert_string_equal(s, "");
	free(s);
}

struct when {
	int64_t t, now;
};

static int when(FILE *f, void *arg)
{
	struct when *w = arg;
	return html_page_time(f, w->t, w->now);
}

static void test_time(void **state)
{
	(void)state;
	int64_t now = at("2026-12-02", 9, 30);
	struct when w = { at("2026-12-02", 8, 5), now };
	char *s = written(when, &w);
	assert_string_equal(s, "<time datetime=\"2026-12-02T08:05:00+08:00\">08:05</time>");
	free(s);
	w.t = at("2026-11-23", 17, 0);
	s = written(when, &w);
	assert_string_equal(s, "<time datetime=\"2026-11-23T17:00:00+08:00\">11-23 17:00</time>");
	free(s);
	w.t = at("2025-11-23", 17, 0);
	s = written(when, &w);
	assert_string_equal(s,
	                    "<time datetime=\"2025-11-23T17:00:00+08:00\">2025-11-23 17:00</time>");
	free(s);
}

static int report(FILE *f, void *arg)
{
	return render_report_html(f, arg);
}

/* The daily report's page: standalone as before, and served with the
 * bar and the day links (a report with no cells is enough for the top). */
static void test_report_page(void **state)
{
	(void)state;
	struct config cfg = { .timezone = "Asia/Shanghai" };
	struct render_report r = { .cfg = &cfg,
		                   .lang = TIMEFMT_ZH,
		                   .now = at("2026-12-02", 9, 30) };
	snprintf(r.date, sizeof(r.date), "2026-12-01");
	assert_int_equal(report_day_bounds(r.date, &r.day_start, &r.day_end), 0);

	char *s = written(report, &r);
	assert_true(strncmp(s, "<!DOCTYPE html>\n<html lang=\"zh-CN\">", 35) == 0);
	assert_non_null(strstr(s, "<title>网格巡查日报 2026-12-01</title>"));
	assert_non_null(strstr(s, "<h1>网格巡查日报</h1>"));
	assert_non_null(strstr(s, "<footer>生成于 2026-12-02T09:30:00+08:00 · gridpatrol "));
	assert_null(strstr(s, "<nav"));
	assert_null(strstr(s, "href="));
	free(s);

	r.web = true;
	s = written(report, &r);
	const char *nav = strstr(s, "<nav class=\"top\">");
	const char *days = strstr(s, "<nav class=\"days\">");
	const char *h1 = strstr(s, "<h1>");
	assert_non_null(nav);
	assert_non_null(days);
	assert_true(nav < days && days < h1);
	assert_non_null(
	        strstr(nav, "<a href=\"/report\" class=\"on\" aria-current=\"page\">日报</a>"));
	assert_non_null(strstr(days, "<a href=\"/report?date=2026-11-30\" rel=\"prev\">"));
	assert_non_null(strstr(days, "<a href=\"/report?date=2026-12-02\" rel=\"next\">"));
	assert_non_null(strstr(days, "<a href=\"/report?date=2026-12-01\" class=\"on\">12-01</a>"));
	/* The report does not refresh itself. */
	assert_null(strstr(s, "http-equiv"));
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_days),        cmocka_unit_test(test_frame),
		cmocka_unit_test(test_day_links),   cmocka_unit_test(test_time),
		cmocka_unit_test(test_report_page),
	};
	return cmocka_run_group_tests(tests, setup_tz, NULL);
}
