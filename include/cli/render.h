/*
 * render: the daily report (SPEC "Daily report") written out as text for a
 * terminal, JSON and CSV for scripts and spreadsheets, and one
 * self-contained printable HTML page for the branch secretary's meeting.
 *
 * The figures are computed before (report_cell_compute); this module only
 * lays them out, so the four formats can never disagree. Local times are
 * the process's TZ. Pure apart from writing to the FILE it is given.
 * Every function returns 0, or -1 when writing or allocating failed.
 */
#ifndef GRIDPATROL_RENDER_H
#define GRIDPATROL_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "report.h"
#include "timefmt.h"

struct render_cell {
	const struct config_cell *cell;
	const char *site; /* county report: the cell's site; else NULL */
	const char *id;   /* "site/cell" where ids collide; NULL: cell->id */
	struct report_cell rc;
};

/* A county report's site: its cells are cells[first .. first + n). */
struct render_site {
	const char *name;
	const char *db; /* the database file, as given */
	size_t first, n;
	long tasks_claimed, tasks_unclaimed; /* the site's share of the report's */
};

/* A task alert of the day (SPEC, Claims) for the HTML page's claims table. */
struct render_task {
	int64_t at;
	const char *cell;       /* the id as stored (the cell may be gone from config) */
	const char *kind;       /* overdue, event, reading */
	const char *claimed_by; /* NULL: not claimed */
	int64_t claimed_at;
	int64_t resolved_at; /* 0: still open */
	const char *site;    /* county report: the alert's site; else NULL */
};

/* An "event of note" for the HTML page: an immediate-alert type (fishing
 * at the reservoir) or a reading at or over its warn threshold. */
enum render_note_why {
	RENDER_NOTE_EVENT,
	RENDER_NOTE_WARN,
	RENDER_NOTE_ALARM
};

struct render_note {
	int64_t ts;
	const struct config_cell *cell;
	const char *worker;
	const char *type;
	const struct config_event *ev; /* NULL for a type no longer configured */
	bool has_value;
	double value;
	const char *note; /* may be NULL */
	const char *site; /* county report: the event's site; else NULL */
	enum render_note_why why;
};

struct render_report {
	const struct config *cfg;
	char date[16]; /* YYYY-MM-DD */
	int64_t day_start, day_end;
	int64_t now; /* a day still running is shown "so far" */
	enum timefmt_lang lang;
	const struct render_cell *cells;
	size_t n_cells;
	/* A county report over several sites' databases (n_sites >= 1) adds
	 * a site column and a summary per site; 0: one site, as always. */
	const struct render_site *sites;
	size_t n_sites;
	const struct render_note *notes; /* ordered by time */
	size_t n_notes;
	size_t notes_omitted; /* beyond what the caller kept */
	/* The day's task alerts: counted in full, listed up to what the
	 * caller kept (ordered by time). */
	long tasks_claimed, tasks_unclaimed;
	const struct render_task *tasks;
	size_t n_tasks;
	size_t tasks_omitted;
	/* Served by `gridpatrol serve`: the HTML page gets the navigation bar
	 * and links to the days around it; false: a standalone file. */
	bool web;
};

struct render_summary {
	long cells, covered, never_patrolled, overdue;
	long long events;
	long claimed, unclaimed; /* task alerts raised that day */
};

/* Over every cell of the report. */
void render_summary(const struct render_report *r, struct render_summary *out);
/* Over one site's cells of a county report. */
void render_summary_site(const struct render_report *r, size_t site, struct render_summary *out);
/* The id a cell is shown under. */
const char *render_cell_id(const struct render_cell *rc);

int render_report_text(FILE *f, const struct render_report *r);
int render_report_json(FILE *f, const struct render_report *r);
int render_report_csv(FILE *f, const struct render_report *r);
int render_report_html(FILE *f, const struct render_report *r);

/* The summary sentence of every format ("网格 4 个：全天覆盖 1 个，…；事件共
 * 9 条。") without the claims, and the claims sentence alone ("" on a day
 * without task alerts), for layouts that set them on separate lines. */
void render_summary_text(const struct render_report *r, char *buf, size_t len);
void render_claims_text(const struct render_report *r, char *buf, size_t len);

/* --- pieces the listings share --- */

/* The UTF-8 byte order mark that makes spreadsheet programs read CSV as
 * UTF-8 (otherwise they guess the local ANSI code page and garble Chinese). */
int render_csv_bom(FILE *f);
/* One RFC 4180 field: quoted when it holds a comma, quote, CR or LF. */
int render_csv_field(FILE *f, const char *s);
/* Same, for free text that came from a device: a leading = + - @ (or tab,
 * CR) is prefixed with ' so that a spreadsheet shows it instead of running
 * it as a formula. */
int render_csv_text(FILE *f, const char *s);
/* "," between fields, CRLF at the end of a record (RFC 4180). */
int render_csv_sep(FILE *f);
int render_csv_eol(FILE *f);

/* s with & < > " ' as entities (NULL writes nothing). */
int render_html_escaped(FILE *f, const char *s);

/* Short local clock "09:12" for a time on the report day, "11-23 17:00"
 * otherwise. */
void render_clock(int64_t t, int64_t day_start, char *buf, size_t len);

/* A cell's covered_pct as every format shows it: "55.6%", "—" for null. */
void render_pct(const struct report_cell *c, char *buf, size_t len);

/* "site · name" in a county report (name alone otherwise), cut to width
 * display columns; malloc'd, NULL when out of memory. */
char *render_site_label(const char *site, const char *name, size_t width);

#endif
