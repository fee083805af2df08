/*
 * cli_common: the plumbing under every `gridpatrol` command — time
 * arguments, the database connection, atomic output files, and listings
 * rendered as text tables, JSON, CSV or HTML tables from one description
 * of columns.
 *
 * Readers open the file with SQLITE_OPEN_READONLY and hold one deferred
 * read transaction for the whole command: in WAL mode that gives a
 * consistent snapshot and never blocks the daemon's writer (it only
 * postpones a checkpoint for the few milliseconds a command takes).
 */
#include "cli_common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "html_page.h"
#include "msg.h"
#include "render.h"
#include "report.h"
#include "table.h"
#include "units.h"

/* The oldest schema that has every table the CLI reads and writes (alert
 * with its claims, pause, event_span, claim_request...). */
#define CLI_MIN_SCHEMA 4

void cli_error(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/* One line, always: a message quoting a hostile value stays one line. */
	for (char *p = buf; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	fprintf(stderr, "gridpatrol: %s\n", buf);
}

int cli_write_fail(void)
{
	cli_error("cannot write the output: %s", strerror(errno ? errno : EIO));
	return CLI_EXIT_FAIL;
}

/* ------------------------------------------------------------------ */
/* Time arguments                                                      */
/* ------------------------------------------------------------------ */

static bool is_date(const char *s)
{
	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return false;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
			return false;
	return true;
}

int cli_parse_day(const struct cli *c, const char *s, char date[16], int64_t *start, int64_t *end)
{
	if (strcmp(s, "today") == 0 || strcmp(s, "yesterday") == 0) {
		int64_t t = timefmt_day_start(c->now);
		if (s[0] == 'y')
			t = timefmt_day_start(t - 1);
		timefmt_date(t, date, 16);
	} else if (is_date(s)) {
		snprintf(date, 16, "%s", s);
	} else {
		cli_error("bad date '%s' (use YYYY-MM-DD, today or yesterday)", s);
		return -1;
	}
	if (report_day_bounds(date, start, end) < 0) {
		cli_error("bad date '%s' (no such day)", s);
		return -1;
	}
	return 0;
}

int cli_parse_time(const struct cli *c, const char *opt, const char *s, int64_t *out)
{
	int64_t t, end;
	char date[16];

	if (strcmp(s, "now") == 0) {
		*out = c->now;
		return 0;
	}
	if (strcmp(s, "tomorrow") == 0) {
		/* A day after today's start can land at 23:00 or 01:00 across a
		 * DST change; the start of the day containing noon tomorrow
		 * cannot. */
		*out = timefmt_day_start(timefmt_day_start(c->now) + 36 * 3600);
		return 0;
	}
	if (s[0] == '+') {
		int64_t d;
		if (units_duration(s + 1, &d) < 0 || d > INT64_MAX - c->now) {
			cli_error("bad time for %s: '%s' (a duration is written +90m, +4h, +2d)",
			          opt, s);
			return -1;
		}
		*out = c->now + d;
		return 0;
	}
	if (strcmp(s, "today") == 0 || strcmp(s, "yesterday") == 0 || is_date(s)) {
		if (cli_parse_day(c, s, date, &t, &end) < 0)
			return -1;
		*out = t;
		return 0;
	}
	if (msg_parse_rfc3339(s, strlen(s), &t) == 0) {
		*out = t;
		return 0;
	}
	cli_error("bad time for %s: '%s' (use RFC 3339 like 2026-11-24T08:00:00+08:00, "
	          "YYYY-MM-DD, today, yesterday or +DURATION)",
	          opt, s);
	return -1;
}

/* ------------------------------------------------------------------ */
/* Database                                                            */
/* ------------------------------------------------------------------ */

int cli_db_fail(struct cli *c, const char *what)
{
	cli_error("%s: %s", what, c->db ? sqlite3_errmsg(c->db) : "no database connection");
	return CLI_EXIT_FAIL;
}

int cli_prepare(struct cli *c, const char *sql, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v2(c->db, sql, -1, st, NULL) != SQLITE_OK) {
		*st = NULL;
		return cli_db_fail(c, "cannot prepare a query");
	}
	return CLI_EXIT_OK;
}

int cli_exec(struct cli *c, const char *sql)
{
	sqlite3_stmt *st;
	if (cli_prepare(c, sql, &st) != CLI_EXIT_OK)
		return CLI_EXIT_FAIL;
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return cli_db_fail(c, sql);
	return CLI_EXIT_OK;
}

const char *cli_col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? (const char *)t : "";
}

static int cli_db_open(struct cli *c, int flags)
{
	struct stat sb;
	const char *path = c->db_path;

	/* Checked before SQLite sees the path: it would otherwise report a
	 * generic "unable to open", and read-write would create the file. */
	if (stat(path, &sb) < 0) {
		if (errno == ENOENT)
			cli_error("no database at %s", path);
		else
			cli_error("cannot open database %s: %s", path, strerror(errno));
		return CLI_EXIT_USAGE;
	}
	if (!S_ISREG(sb.st_mode)) {
		cli_error("%s is not a database file", path);
		return CLI_EXIT_USAGE;
	}
	int rc = sqlite3_open_v2(path, &c->db, flags, NULL);
	if (rc != SQLITE_OK) {
		cli_error("cannot open database %s: %s", path,
		          c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		sqlite3_close(c->db);
		c->db = NULL;
		return CLI_EXIT_FAIL;
	}
	sqlite3_extended_result_codes(c->db, 1);
	if (sqlite3_busy_timeout(c->db, CLI_BUSY_TIMEOUT_MS) != SQLITE_OK)
		return cli_db_fail(c, "busy timeout");

	/* A deferred BEGIN takes the snapshot at the first read below and
	 * keeps it to COMMIT. */
	if (cli_exec(c, "BEGIN") != CLI_EXIT_OK)
		return CLI_EXIT_FAIL;
	sqlite3_stmt *st;
	if (cli_prepare(c, "PRAGMA user_version", &st) != CLI_EXIT_OK)
		return CLI_EXIT_FAIL;
	rc = sqlite3_step(st);
	int version = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW) {
		if ((sqlite3_extended_errcode(c->db) & 0xff) == SQLITE_NOTADB) {
			cli_error("%s is not a gridpatrol database", path);
			return CLI_EXIT_USAGE;
		}
		return cli_db_fail(c, "cannot read the database");
	}
	if (version < CLI_MIN_SCHEMA) {
		cli_error("%s is not a gridpatrol database (schema version %d; start gridpatrold "
		          "once to create or upgrade it)",
		          path, version);
		return CLI_EXIT_USAGE;
	}
	return CLI_EXIT_OK;
}

int cli_db_open_ro(struct cli *c)
{
	return cli_db_open(c, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX);
}

int cli_db_open_rw(struct cli *c)
{
	int code = cli_db_open(c, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX);
	/* The schema check ran in a read transaction; a write must start its
	 * own (upgrading a read snapshot that went stale would fail BUSY). */
	if (code == CLI_EXIT_OK)
		code = cli_exec(c, "COMMIT");
	return code;
}

int cli_db_close(struct cli *c, int code)
{
	if (!c->db)
		return code;
	if (!sqlite3_get_autocommit(c->db)) {
		/* Only reads happened: COMMIT and ROLLBACK end it the same way. */
		if (cli_exec(c, code == CLI_EXIT_OK ? "COMMIT" : "ROLLBACK") != CLI_EXIT_OK &&
		    code == CLI_EXIT_OK)
			code = CLI_EXIT_FAIL;
	}
	if (sqlite3_close(c->db) != SQLITE_OK && code == CLI_EXIT_OK) {
		cli_db_fail(c, "closing the database");
		code = CLI_EXIT_FAIL;
	}
	c->db = NULL;
	return code;
}

/* ------------------------------------------------------------------ */
/* Output                                                              */
/* ------------------------------------------------------------------ */

int cli_out_open(struct cli_out *o, const struct cli *c)
{
	const char *path = c->out_path;

	memset(o, 0, sizeof(*o));
	o->path = path;
	if (c->out_stream) {
		/* `serve` hands each request its own buffer; cli_out_close
		 * flushes it like stdout and leaves closing to the caller. */
		o->path = NULL;
		o->f = c->out_stream;
		return 0;
	}
	if (!path || strcmp(path, "-") == 0) {
		o->path = NULL;
		o->f = stdout;
		return 0;
	}
	size_t n = strlen(path) + sizeof(".tmp-XXXXXX");
	o->tmp = malloc(n);
	if (!o->tmp) {
		cli_error("out of memory");
		return -1;
	}
	snprintf(o->tmp, n, "%s.tmp-XXXXXX", path);
	int fd = mkstemp(o->tmp);
	if (fd < 0) {
		cli_error("cannot create %s: %s", o->tmp, strerror(errno));
		free(o->tmp);
		o->tmp = NULL;
		return -1;
	}
	/* mkstemp makes 0600; a report is an ordinary file of the user's. */
	mode_t um = umask(0);
	umask(um);
	if (fchmod(fd, 0666 & ~um) < 0 || !(o->f = fdopen(fd, "w"))) {
		cli_error("cannot write %s: %s", o->tmp, strerror(errno));
		close(fd);
		unlink(o->tmp);
		free(o->tmp);
		o->tmp = NULL;
		return -1;
	}
	return 0;
}

int cli_out_close(struct cli_out *o, bool ok)
{
	int ret = 0;
	if (!o->f)
		return -1;
	if (!o->tmp) {
		if (fflush(o->f) == EOF || ferror(o->f)) {
			if (ok)
				cli_error("cannot write the output: %s", strerror(errno));
			return -1;
		}
		return ok ? 0 : -1;
	}
	if (ok && (fflush(o->f) == EOF || ferror(o->f) || fsync(fileno(o->f)) < 0)) {
		cli_error("cannot write %s: %s", o->path, strerror(errno));
		ok = false;
	}
	if (fclose(o->f) == EOF && ok) {
		cli_error("cannot write %s: %s", o->path, strerror(errno));
		ok = false;
	}
	o->f = NULL;
	if (ok && rename(o->tmp, o->path) < 0) {
		cli_error("cannot rename %s to %s: %s", o->tmp, o->path, strerror(errno));
		ok = false;
	}
	if (!ok) {
		unlink(o->tmp);
		ret = -1;
	}
	free(o->tmp);
	o->tmp = NULL;
	return ret;
}

/* ------------------------------------------------------------------ */
/* Listings                                                            */
/* ------------------------------------------------------------------ */

struct cli_list {
	const struct cli *c;
	FILE *f;
	const char *name;
	const struct cli_col *cols;
	size_t ncols;
	struct table *table; /* text only */
	size_t rows;
	bool bad;
};

char *cli_escape_bytes(const void *p, size_t n)
{
	const unsigned char *b = p;
	size_t cap = n * 4 + 1;
	char *out = malloc(cap ? cap : 1);
	size_t o = 0;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (b[i] >= 0x20 && b[i] < 0x7f && b[i] != '\\')
			out[o++] = (char)b[i];
		else
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", b[i]);
	}
	out[o] = '\0';
	return out;
}

/* HTML shows what a terminal shows: the page is read on a phone. */
static bool html_col(const struct cli_col *col)
{
	return !(col->flags & (CLI_COL_JSON_ONLY | CLI_COL_NO_TEXT));
}

struct cli_list *cli_list_begin(const struct cli *c, FILE *f, const char *name,
                                const struct cli_col *cols, size_t ncols)
{
	struct cli_list *l = calloc(1, sizeof(*l));
	if (!l) {
		cli_error("out of memory");
		return NULL;
	}
	*l = (struct cli_list){ .c = c, .f = f, .name = name, .cols = cols, .ncols = ncols };
	switch (c->format) {
	case CLI_FORMAT_TEXT: {
		const char *heads[32] = { 0 };
		size_t n = 0;
		for (size_t i = 0; i < ncols && n < 32; i++)
			if (!(cols[i].flags & (CLI_COL_JSON_ONLY | CLI_COL_NO_TEXT)))
				heads[n++] = c->lang == TIMEFMT_ZH ? cols[i].zh : cols[i].en;
		l->table = table_new(n, heads);
		if (!l->table) {
			cli_error("out of memory");
			free(l);
			return NULL;
		}
		n = 0;
		for (size_t i = 0; i < ncols && n < 32; i++) {
			if (cols[i].flags & (CLI_COL_JSON_ONLY | CLI_COL_NO_TEXT))
				continue;
			if (cols[i].flags & CLI_COL_RIGHT)
				table_set_align(l->table, n, TABLE_RIGHT);
			table_set_max_width(l->table, n, cols[i].max_width);
			n++;
		}
		break;
	}
	case CLI_FORMAT_CSV: {
		bool first = true;
		l->bad |= render_csv_bom(f) < 0;
		for (size_t i = 0; i < ncols; i++) {
			if (cols[i].flags & CLI_COL_JSON_ONLY)
				continue;
			l->bad |= (!first && render_csv_sep(f) < 0) ||
			          render_csv_field(f, cols[i].key) < 0;
			first = false;
		}
		l->bad |= render_csv_eol(f) < 0;
		break;
	}
	case CLI_FORMAT_JSON:
		l->bad |= fprintf(f, "{\"%s\": [", name) < 0;
		break;
	case CLI_FORMAT_HTML:
		l->bad |= fprintf(f, "<table class=\"list %s\"><thead><tr>", name) < 0;
		for (size_t i = 0; i < ncols; i++) {
			if (!html_col(&cols[i]))
				continue;
			l->bad |= fputs("<th>", f) == EOF ||
			          render_html_escaped(f, c->lang == TIMEFMT_ZH ? cols[i].zh
			                                                       : cols[i].en) < 0 ||
			          fputs("</th>", f) == EOF;
		}
		l->bad |= fputs("</tr></thead>\n<tbody>\n", f) == EOF;
		break;
	}
	return l;
}

/* The value as text and CSV show it; `buf` holds numbers and times. */
static const char *val_flat(const struct cli_list *l, const struct cli_val *v, char *buf,
                            size_t len)
{
	switch (v->kind) {
	case CLI_V_NULL:
		return "";
	case CLI_V_STR:
		return v->s ? v->s : "";
	case CLI_V_INT:
		snprintf(buf, len, "%lld", (long long)v->i);
		return buf;
	case CLI_V_REAL:
		snprintf(buf, len, "%.15g", v->d);
		return buf;
	case CLI_V_TIME:
		if (l->c->format == CLI_FORMAT_TEXT) {
			time_t t = (time_t)v->i;
			struct tm tm;
			if (!localtime_r(&t, &tm))
				return "?";
			strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
		} else {
			timefmt_rfc3339(v->i, buf, len);
		}
		return buf;
	}
	return "";
}

static json_t *val_json(const struct cli_val *v)
{
	char buf[TIMEFMT_MAX];
	switch (v->kind) {
	case CLI_V_NULL:
		return json_null();
	case CLI_V_STR:
		return v->s ? json_string(v->s) : json_null();
	case CLI_V_INT:
		return json_integer(v->i);
	case CLI_V_REAL:
		return json_real(v->d);
	case CLI_V_TIME:
		timefmt_rfc3339(v->i, buf, sizeof(buf));
		return json_string(buf);
	}
	return json_null();
}

/* One <tr>: the text form of each value (times as short local times with
 * the full one in <time datetime>), escaped; an empty value as a dash. */
static int html_row(struct cli_list *l, const struct cli_val *vals)
{
	char buf[64];
	int bad = fputs("<tr>", l->f) == EOF;

	for (size_t i = 0; i < l->ncols && !bad; i++) {
		const struct cli_col *col = &l->cols[i];
		const struct cli_val *v = &vals[i];
		if (!html_col(col))
			continue;
		const char *s = v->text ? v->text : val_flat(l, v, buf, sizeof(buf));
		const char *cls = col->flags & CLI_COL_RIGHT                            ? "n"
		                  : col->flags & CLI_COL_ID                             ? "t"
		                  : v->kind == CLI_V_TIME                               ? "t"
		                  : col->flags & CLI_COL_DEVICE || col->max_width >= 40 ? "txt"
		                                                                        : NULL;
		if (v->kind == CLI_V_NULL || !s[0]) {
			bad |= fputs("<td class=\"e\">—</td>", l->f) == EOF;
			continue;
		}
		bad |= (cls ? fprintf(l->f, "<td class=\"%s\">", cls) < 0
		            : fputs("<td>", l->f) == EOF);
		if (col->flags & CLI_COL_BADGE) {
			bad |= fputs("<span class=\"st st-", l->f) == EOF ||
			       render_html_escaped(l->f, v->s) < 0 || fputs("\">", l->f) == EOF ||
			       render_html_escaped(l->f, s) < 0 || fputs("</span>", l->f) == EOF;
		} else if (v->kind == CLI_V_TIME && !v->text) {
			bad |= html_page_time(l->f, v->i, l->c->now) < 0;
		} else {
			bad |= render_html_escaped(l->f, s) < 0;
		}
		bad |= fputs("</td>", l->f) == EOF;
	}
	bad |= fputs("</tr>\n", l->f) == EOF;
	return bad ? -1 : 0;
}

int cli_list_row(struct cli_list *l, struct cli_val *vals)
{
	char bufs[32][64];
	int ret = 0;

	if (l->bad)
		goto out;
	switch (l->c->format) {
	case CLI_FORMAT_TEXT: {
		const char *cells[32];
		size_t n = 0;
		for (size_t i = 0; i < l->ncols && n < 32; i++) {
			if (l->cols[i].flags & (CLI_COL_JSON_ONLY | CLI_COL_NO_TEXT))
				continue;
			cells[n] = vals[i].text ? vals[i].text
			                        : val_flat(l, &vals[i], bufs[n], sizeof(bufs[n]));
			n++;
		}
		if (table_add_row(l->table, cells) < 0)
			l->bad = true;
		break;
	}
	case CLI_FORMAT_CSV: {
		bool first = true;
		for (size_t i = 0; i < l->ncols && i < 32; i++) {
			if (l->cols[i].flags & CLI_COL_JSON_ONLY)
				continue;
			const char *s = val_flat(l, &vals[i], bufs[i], sizeof(bufs[i]));
			l->bad |= (!first && render_csv_sep(l->f) < 0) ||
			          ((l->cols[i].flags & CLI_COL_DEVICE)
			                   ? render_csv_text(l->f, s)
			                   : render_csv_field(l->f, s)) < 0;
			first = false;
		}
		l->bad |= render_csv_eol(l->f) < 0;
		break;
	}
	case CLI_FORMAT_HTML:
		l->bad |= html_row(l, vals) < 0;
		break;
	case CLI_FORMAT_JSON: {
		json_t *o = json_object();
		if (!o) {
			l->bad = true;
			break;
		}
		for (size_t i = 0; i < l->ncols; i++) {
			if (l->cols[i].flags & CLI_COL_FLAT_ONLY)
				continue;
			json_t *v = vals[i].json ? vals[i].json : val_json(&vals[i]);
			vals[i].json = NULL;
			if (!v || json_object_set_new(o, l->cols[i].key, v) < 0)
				l->bad = true;
		}
		if (!l->bad) {
			l->bad |= fputs(l->rows ? ",\n  " : "\n  ", l->f) == EOF;
			l->bad |= json_dumpf(o, l->f, JSON_COMPACT | JSON_REAL_PRECISION(15)) < 0;
		}
		json_decref(o);
		break;
	}
	}
	l->rows++;
out:
	for (size_t i = 0; i < l->ncols; i++) {
		json_decref(vals[i].json);
		vals[i].json = NULL;
	}
	if (l->bad)
		ret = -1;
	return ret;
}

int cli_list_end(struct cli_list *l, bool ok)
{
	int ret = 0;
	if (!l)
		return -1;
	if (ok && !l->bad) {
		switch (l->c->format) {
		case CLI_FORMAT_TEXT:
			l->bad |= table_write(l->table, l->f) < 0;
			l->bad |= fprintf(l->f,
			                  l->c->lang == TIMEFMT_ZH ? "共 %zu 条\n" : "%zu rows\n",
			                  l->rows) < 0;
			break;
		case CLI_FORMAT_CSV:
			break;
		case CLI_FORMAT_JSON:
			l->bad |= fputs(l->rows ? "\n]}\n" : "]}\n", l->f) == EOF;
			break;
		case CLI_FORMAT_HTML:
			l->bad |= fprintf(l->f,
			                  l->c->lang == TIMEFMT_ZH
			                          ? "</tbody></table>\n<p class=\"count\">共 %zu "
			                            "条</p>\n"
			                          : "</tbody></table>\n<p class=\"count\">%zu "
			                            "rows</p>\n",
			                  l->rows) < 0;
			break;
		}
	}
	if (!ok || l->bad)
		ret = -1;
	if (l->bad && ok)
		cli_error("cannot write the listing: %s", strerror(errno ? errno : EIO));
	table_free(l->table);
	free(l);
	return ret;
}
