/*
 * html_page: the frame every HTML page of `gridpatrol` shares — doctype,
 * head with the one style sheet, the navigation bar of the served pages,
 * day links, the footer — so that the report, status, alerts and workers
 * pages look alike and a change of style is made in one place.
 *
 * Every page is self-contained (CSS inline, no scripts, nothing fetched),
 * readable on a phone (viewport, tables that scroll in their own box on a
 * narrow screen) and printable. Pure apart from writing to the FILE it is
 * given. Every writing function returns 0, or -1 when writing failed.
 */
#ifndef GRIDPATROL_HTML_PAGE_H
#define GRIDPATROL_HTML_PAGE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "timefmt.h"

/* The served pages, in the order of the navigation bar. */
enum html_page_section {
	HTML_PAGE_NOW,
	HTML_PAGE_REPORT,
	HTML_PAGE_ALERTS,
	HTML_PAGE_WORKERS
};

struct html_page {
	enum timefmt_lang lang;
	const char *title; /* <title>, plain text */
	enum html_page_section section;
	/* Served by `gridpatrol serve`: a navigation bar to the other pages
	 * (absolute paths, so meaningless in a file opened from disk). */
	bool web;
	/* > 0 and web: the browser reloads the page every refresh_s seconds. */
	int refresh_s;
};

/* Doctype, head and <body>, then the navigation bar when p->web. */
int html_page_begin(FILE *f, const struct html_page *p);
/* "generated TIME · gridpatrol VERSION", </body></html>. */
int html_page_end(FILE *f, enum timefmt_lang lang, int64_t now);

/* The days a page of one day links to: the day before, the day after
 * ("" when `date` is today or later: there is nothing to see yet) and
 * today with the six days before it, newest first. */
struct html_page_days {
	char prev[16], next[16];
	char last[7][16];
};

/* Returns 0, or -1 when `date` is not a valid YYYY-MM-DD. */
int html_page_days(const char *date, int64_t now, struct html_page_days *out);
/* The day links for `path` ("/report"): path?date=YYYY-MM-DD. */
int html_page_day_links(FILE *f, enum timefmt_lang lang, const char *path, const char *date,
                        int64_t now);

/* One figure in a box: the report's and the status page's headline. warn:
 * red when v > 0. */
int html_page_kpi(FILE *f, long long v, const char *label, bool warn);
/* <time datetime="RFC 3339">short</time>; short is "09:12" on the day of
 * `now`, "11-23 17:00" in its year, else "2025-11-23 17:00". */
int html_page_time(FILE *f, int64_t t, int64_t now);

#endif
