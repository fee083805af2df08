/*
 * cli_common: what every `gridpatrol` command shares — the parsed command
 * line, the loaded configuration, the database connection (read-only
 * snapshot or short read-write), time arguments ("today", "2026-11-24",
 * RFC 3339), atomic output files, and listings that print the same rows as
 * an aligned text table, JSON, CSV or an HTML table (the page around it is
 * the command's, html_page.h).
 *
 * Exit codes: 0 done; 1 something failed while working (database error,
 * disk full); 2 the request itself was wrong (unknown option, bad date,
 * no database, unknown cell, bad configuration). Every error is one line
 * on stderr, "gridpatrol: ...".
 */
#ifndef GRIDPATROL_CLI_COMMON_H
#define GRIDPATROL_CLI_COMMON_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "timefmt.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

/* How long a command waits for the daemon's write lock (pause, resume) or
 * for a checkpoint holding the WAL index (readers). */
#define CLI_BUSY_TIMEOUT_MS 5000

enum cli_format {
	CLI_FORMAT_TEXT,
	CLI_FORMAT_JSON,
	CLI_FORMAT_CSV,
	CLI_FORMAT_HTML
};

struct cli {
	/* From the command line (strings are argv's). */
	const char *config_path;
	const char *db_opt; /* --db (the last one given), or NULL */
	const char **dbs;   /* every --db in order ([SITE=]PATH); room for argc */
	int n_dbs;
	const char *command;
	char **args; /* positional arguments after the command */
	int n_args;
	enum cli_format format;
	const char *format_opt; /* as given, for error messages */
	const char *out_path;   /* -o, or NULL for stdout */
	const char *cell, *worker, *type, *since, *until, *reason, *date, *limit;
	const char *by;        /* claim --by */
	const char *from, *to; /* workers --from, --to */
	bool pending;
	const char *listen;     /* serve --listen ADDR:PORT */
	const char *token_file; /* serve --token-file */
	const char *timeout;    /* serve --timeout SECONDS */
	bool web;               /* HTML for the served pages (nav bar, refresh) */

	/* Set up before the command runs. */
	struct config *cfg;
	const char *db_path; /* --db or storage.path */
	enum timefmt_lang lang;
	int64_t now; /* read once: every figure of a run agrees */
	sqlite3 *db;
	/* Where cli_out_open writes instead of -o or stdout (serve's
	 * per-request buffer); never closed by cli_out_close. */
	FILE *out_stream;
};

/* "gridpatrol: " + message + "\n" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "cannot write the output: <errno>"; returns CLI_EXIT_FAIL. */
int cli_write_fail(void);

/* --- time arguments --- */

/* T as the listings take it: RFC 3339 with offset; YYYY-MM-DD (local
 * midnight starting that day); today, yesterday, tomorrow (local
 * midnight); now; +DURATION from now ("+2d", "+90m"). Returns 0, or -1
 * after printing an error naming `opt`. */
int cli_parse_time(const struct cli *c, const char *opt, const char *s, int64_t *out);
/* A report day: YYYY-MM-DD, today or yesterday → "YYYY-MM-DD" and its
 * local bounds. Returns 0, or -1 after printing an error. */
int cli_parse_day(const struct cli *c, const char *s, char date[16], int64_t *start, int64_t *end);

/* --- database --- */

/* Open the database read-only and start one read transaction, so that
 * every query of the command sees the same snapshot. A WAL reader never
 * blocks the daemon. Returns CLI_EXIT_OK, or an exit code after printing
 * the error (CLI_EXIT_USAGE for a missing file or a file that is not a
 * gridpatrol database). */
int cli_db_open_ro(struct cli *c);
/* Open read-write (no create) with the busy timeout, for pause/resume. */
int cli_db_open_rw(struct cli *c);
/* End the read transaction and close. Returns an exit code. */
int cli_db_close(struct cli *c, int code);
/* Print "what: sqlite message" and return CLI_EXIT_FAIL. */
int cli_db_fail(struct cli *c, const char *what);
/* Prepare a statement or print why not. */
int cli_prepare(struct cli *c, const char *sql, sqlite3_stmt **st);
/* Run a statement that returns no rows. */
int cli_exec(struct cli *c, const char *sql);
/* Column text, "" for NULL. */
const char *cli_col_text(sqlite3_stmt *st, int i);

/* --- output --- */

/* c->out_stream if set; else stdout, or a temporary file next to
 * c->out_path that replaces it only when everything was written (a
 * half-written report never appears under the name a script or a printer
 * queue is waiting for). */
struct cli_out {
	FILE *f;
	const char *path;
	char *tmp;
};

int cli_out_open(struct cli_out *o, const struct cli *c);
/* ok: flush, fsync and rename into place; otherwise remove the temporary
 * file. Returns 0, or -1 after printing the error. */
int cli_out_close(struct cli_out *o, bool ok);

/* --- listings --- */

enum cli_col_flags {
	CLI_COL_RIGHT = 1 << 0,     /* right-aligned in text */
	CLI_COL_DEVICE = 1 << 1,    /* free text from a device: CSV formula guard */
	CLI_COL_JSON_ONLY = 1 << 2, /* a nested JSON value; text/CSV use other columns */
	CLI_COL_FLAT_ONLY = 1 << 3, /* text and CSV only */
	CLI_COL_NO_TEXT = 1 << 4,   /* JSON and CSV only: too wide for a terminal */
	CLI_COL_BADGE = 1 << 5,     /* HTML: the text in a badge of class st-<s> */
	CLI_COL_ID = 1 << 6,        /* HTML: an id (cell, worker), never wrapped */
};

struct cli_col {
	const char *key;     /* JSON key and CSV header */
	const char *zh, *en; /* text-table and HTML headers */
	unsigned flags;
	unsigned max_width; /* text truncation, 0: none */
};

enum cli_vkind {
	CLI_V_NULL,
	CLI_V_STR,
	CLI_V_INT,
	CLI_V_REAL,
	CLI_V_TIME
};

struct cli_val {
	enum cli_vkind kind;
	const char *s;
	int64_t i; /* CLI_V_INT, CLI_V_TIME (Unix seconds) */
	double d;
	json_t *json;     /* JSON form (reference taken), or NULL */
	const char *text; /* text-table form, or NULL */
};

struct cli_list;

/* `name` is the JSON document's one key ({"events": [...]}). */
struct cli_list *cli_list_begin(const struct cli *c, FILE *f, const char *name,
                                const struct cli_col *cols, size_t ncols);
/* One row, ncols values. Takes the json references even on failure. */
int cli_list_row(struct cli_list *l, struct cli_val *vals);
/* Finish (text, HTML: the table and a count line) and free. Returns 0 or
 * -1. An HTML listing has the columns text has; it is the table alone,
 * between the command's html_page_begin and html_page_end. */
int cli_list_end(struct cli_list *l, bool ok);

/* Hex-escape bytes that are not printable UTF-8 ("\x00"); malloc'd. */
char *cli_escape_bytes(const void *p, size_t n);

/* --- commands (cli_query.c, cli_report.c, cli_admin.c) --- */

int cli_cmd_status(struct cli *c);
int cli_cmd_events(struct cli *c);
int cli_cmd_rejected(struct cli *c);
int cli_cmd_alerts(struct cli *c);
int cli_cmd_report(struct cli *c);
int cli_cmd_pause(struct cli *c);
int cli_cmd_claim(struct cli *c);
int cli_cmd_workers(struct cli *c);
int cli_cmd_resume(struct cli *c);
int cli_cmd_backup(struct cli *c);
/* cli_serve.c */
int cli_cmd_serve(struct cli *c);
/* cli_chart.c */
int cli_cmd_chart(struct cli *c);

#endif
