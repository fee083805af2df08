/*
 * render: lays out one day's coverage figures in the four formats of
 * `gridpatrol report`. The numbers are computed once by the report module;
 * everything here is presentation, so a figure reads the same in the
 * terminal, in a spreadsheet and on the printed page.
 *
 * The HTML page is what the branch secretary prints for a meeting: one
 * file with its CSS inline, no scripts, no fonts or images fetched from
 * anywhere (the village box may have no internet and the page may be
 * opened years later), A4 page rules, and a cell × hour chart in inline
 * SVG whose five states stay apart on a black-and-white printer because
 * they differ in pattern as well as colour. The page's frame and style
 * sheet are html_page's, shared with the other HTML pages.
 */
#include "render.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "html_page.h"
#include "render_chart.h"
#include "table.h"

/* ------------------------------------------------------------------ */
/* Shared pieces                                                       */
/* ------------------------------------------------------------------ */

int render_csv_bom(FILE *f)
{
	return fputs("\xEF\xBB\xBF", f) == EOF ? -1 : 0;
}

int render_csv_sep(FILE *f)
{
	return putc(',', f) == EOF ? -1 : 0;
}

int render_csv_eol(FILE *f)
{
	return fputs("\r\n", f) == EOF ? -1 : 0;
}

static int csv_write(FILE *f, const char *s, bool guard)
{
	if (!s)
		return 0;
	bool formula = guard && (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@' ||
	                         s[0] == '\t' || s[0] == '\r');
	if (!formula && !strpbrk(s, ",\"\r\n"))
		return fputs(s, f) == EOF ? -1 : 0;
	if (putc('"', f) == EOF || (formula && putc('\'', f) == EOF))
		return -1;
	for (const char *p = s; *p; p++) {
		if (*p == '"' && putc('"', f) == EOF)
			return -1;
		if (putc(*p, f) == EOF)
			return -1;
	}
	return putc('"', f) == EOF ? -1 : 0;
}

int render_csv_field(FILE *f, const char *s)
{
	return csv_write(f, s, false);
}

int render_csv_text(FILE *f, const char *s)
{
	return csv_write(f, s, true);
}

int render_html_escaped(FILE *f, const char *s)
{
	if (!s)
		return 0;
	for (const char *p = s; *p; p++) {
		const char *e = NULL;
		switch (*p) {
		case '&':
			e = "&amp;";
			break;
		case '<':
			e = "&lt;";
			break;
		case '>':
			e = "&gt;";
			break;
		case '"':
			e = "&quot;";
			break;
		case '\'':
			e = "&#39;";
			break;
		default:
			break;
		}
		if (e ? fputs(e, f) == EOF : putc(*p, f) == EOF)
			return -1;
	}
	return 0;
}

void render_clock(int64_t t, int64_t day_start, char *buf, size_t len)
{
	struct tm tm;
	time_t tt = (time_t)t;
	if (!localtime_r(&tt, &tm)) {
		snprintf(buf, len, "?");
		return;
	}
	if (timefmt_day_start(t) == day_start)
		snprintf(buf, len, "%02d:%02d", tm.tm_hour, tm.tm_min);
	else
		snprintf(buf, len, "%02d-%02d %02d:%02d", tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		         tm.tm_min);
}

const char *render_cell_id(const struct render_cell *rc)
{
	return rc->id ? rc->id : rc->cell->id;
}

static void summary_range(const struct render_report *r, size_t from, size_t to,
                          struct render_summary *out)
{
	memset(out, 0, sizeof(*out));
	out->cells = (long)(to - from);
	for (size_t i = from; i < to; i++) {
		const struct report_cell *c = &r->cells[i].rc;
		if (c->has_covered && c->covered_pct >= 100.0)
			out->covered++;
		if (!c->has_patrol)
			out->never_patrolled++;
		if (c->overdue_s > 0)
			out->overdue++;
		for (size_t k = 0; k < c->n_types; k++)
			out->events += c->types[k].count;
	}
}

void render_summary(const struct render_report *r, struct render_summary *out)
{
	summary_range(r, 0, r->n_cells, out);
	out->claimed = r->tasks_claimed;
	out->unclaimed = r->tasks_unclaimed;
}

void render_summary_site(const struct render_report *r, size_t site, struct render_summary *out)
{
	const struct render_site *s = &r->sites[site];
	summary_range(r, s->first, s->first + s->n, out);
	out->claimed = s->tasks_claimed;
	out->unclaimed = s->tasks_unclaimed;
}

/* %.15g keeps what a device sent (a reading of 250.5 stays 250.5) without
 * the binary noise %.17g shows (33.299999999999997). */
static void fmt_num(double v, char *buf, size_t len)
{
	snprintf(buf, len, "%.15g", v);
}

/* The unit shared by every reading type, or NULL when there is none or
 * the types disagree (then min/max mix units and are shown bare). */
static const char *reading_unit(const struct config *cfg)
{
	const char *unit = NULL;
	for (size_t i = 0; i < cfg->n_events; i++) {
		const struct config_event *e = &cfg->events[i];
		if (!e->has_value)
			continue;
		if (!e->unit || (unit && strcmp(unit, e->unit) != 0))
			return NULL;
		unit = e->unit;
	}
	return unit;
}

static const char *type_label(const struct config *cfg, const char *type)
{
	const struct config_event *e = config_event_find(cfg, type);
	return e && e->label ? e->label : type;
}

/* A growable string for composing cells ("巡查签到 3，白色垃圾 1"). */
struct str {
	char *p;
	size_t len, cap;
	bool bad;
};

static void str_add(struct str *s, const char *t)
{
	size_t n = strlen(t);
	if (s->bad)
		return;
	if (s->len + n + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 64;
		while (cap < s->len + n + 1)
			cap *= 2;
		char *p = realloc(s->p, cap);
		if (!p) {
			s->bad = true;
			return;
		}
		s->p = p;
		s->cap = cap;
	}
	memcpy(s->p + s->len, t, n + 1);
	s->len += n;
}

static void str_reset(struct str *s)
{
	s->len = 0;
	if (s->p)
		s->p[0] = '\0';
}

static const char *str_get(struct str *s)
{
	if (!s->p)
		str_add(s, "");
	return s->bad ? NULL : s->p;
}

/* Workers joined by sep. */
static void join_workers(struct str *s, const struct report_cell *c, const char *sep)
{
	str_reset(s);
	for (size_t k = 0; k < c->n_workers; k++) {
		if (k)
			str_add(s, sep);
		str_add(s, c->workers[k]);
	}
}

/* "label count" pairs for people, "type:count" pairs for machines. */
static void join_types(struct str *s, const struct config *cfg, const struct report_cell *c,
                       bool labels, enum timefmt_lang lang)
{
	char n[32];
	str_reset(s);
	for (size_t k = 0; k < c->n_types; k++) {
		if (k)
			str_add(s, labels ? (lang == TIMEFMT_ZH ? "，" : ", ") : ";");
		str_add(s, labels ? type_label(cfg, c->types[k].type) : c->types[k].type);
		snprintf(n, sizeof(n), labels ? " %d" : ":%d", c->types[k].count);
		str_add(s, n);
	}
}

static void fmt_readings(const struct report_cell *c, const char *unit, char *buf, size_t len)
{
	char a[40], b[40];
	if (!c->has_value) {
		snprintf(buf, len, "—");
		return;
	}
	fmt_num(c->value_min, a, sizeof(a));
	fmt_num(c->value_max, b, sizeof(b));
	if (c->value_min == c->value_max)
		snprintf(buf, len, "%s%s", a, unit ? unit : "");
	else
		snprintf(buf, len, "%s–%s%s", a, b, unit ? unit : "");
}

void render_pct(const struct report_cell *c, char *buf, size_t len)
{
	if (c->has_covered)
		snprintf(buf, len, "%.1f%%", c->covered_pct);
	else
		snprintf(buf, len, "—");
}

static void fmt_dur(int64_t s, enum timefmt_lang lang, char *buf, size_t len)
{
	if (s <= 0)
		snprintf(buf, len, "—");
	else
		timefmt_duration(s, lang, buf, len);
}

static void fmt_when(bool has, int64_t t, int64_t day_start, char *buf, size_t len)
{
	if (has)
		render_clock(t, day_start, buf, len);
	else
		snprintf(buf, len, "—");
}

/* The day's heading, "2026-11-24（Asia/Shanghai）" plus "so far" when the
 * day is still running. */
static void fmt_asof(const struct render_report *r, char *buf, size_t len)
{
	char clock[TIMEFMT_MAX];
	if (r->now < r->day_end) {
		render_clock(r->now, r->day_start, clock, sizeof(clock));
		snprintf(buf, len, r->lang == TIMEFMT_ZH ? "截至 %s" : "as of %s", clock);
	} else {
		buf[0] = '\0';
	}
}

/* The claims sentence, worded as the digest's; "" on a day without task
 * alerts (the digest leaves it out then too, and older reports stay as
 * they were). */
static void fmt_claims(const struct render_report *r, const struct render_summary *s, char *buf,
                       size_t len)
{
	long tasks = s->claimed + s->unclaimed;
	if (tasks == 0)
		buf[0] = '\0';
	else if (r->lang == TIMEFMT_ZH)
		snprintf(buf, len, "待处理提醒 %ld 项：已认领 %ld 项，未认领 %ld 项。", tasks,
		         s->claimed, s->unclaimed);
	else
		snprintf(buf, len, "%ld task alerts: %ld claimed, %ld unclaimed.", tasks,
		         s->claimed, s->unclaimed);
}

static void fmt_summary_line(const struct render_report *r, const struct render_summary *s,
                             char *buf, size_t len)
{
	if (r->lang == TIMEFMT_ZH)
		snprintf(buf, len,
		         "网格 %ld 个：全天覆盖 %ld 个，当天未巡查 %ld 个，曾超时 %ld 个；事件共 "
		         "%lld 条。",
		         s->cells, s->covered, s->never_patrolled, s->overdue, s->events);
	else
		snprintf(buf, len,
		         "%ld cells: %ld fully covered, %ld not patrolled, %ld overdue at some "
		         "point; %lld events in all.",
		         s->cells, s->covered, s->never_patrolled, s->overdue, s->events);
	size_t used = strlen(buf);
	if (used + 1 < len && s->claimed + s->unclaimed > 0) {
		if (r->lang != TIMEFMT_ZH)
			buf[used++] = ' ';
		fmt_claims(r, s, buf + used, len - used);
	}
}

void render_summary_text(const struct render_report *r, char *buf, size_t len)
{
	struct render_summary s;
	render_summary(r, &s);
	s.claimed = s.unclaimed = 0;
	fmt_summary_line(r, &s, buf, len);
}

void render_claims_text(const struct render_report *r, char *buf, size_t len)
{
	struct render_summary s;
	render_summary(r, &s);
	fmt_claims(r, &s, buf, len);
}

/* ------------------------------------------------------------------ */
/* Text                                                                */
/* ------------------------------------------------------------------ */

enum {
	COL_ID,
	COL_NAME,
	COL_PATROLS,
	COL_WORKERS,
	COL_FIRST,
	COL_LAST,
	COL_GAP,
	COL_PCT,
	COL_OVERDUE,
	COL_EVENTS,
	COL_READINGS,
	COL_ALERTS,
	COL_LATE,
	N_COLS
};

static const char *const headers_zh[N_COLS] = {
	"网格",   "名称", "巡查", "巡查人", "首次", "末次", "最长间隔",
	"覆盖率", "超时", "事件", "读数",   "告警", "补报",
};
static const char *const headers_en[N_COLS] = {
	"Cell",    "Name",    "Patrols", "Workers",  "First",  "Last", "Longest gap",
	"Covered", "Overdue", "Events",  "Readings", "Alerts", "Late",
};

/* A county report's text and HTML tables lead with the site. */
static const char *site_header(bool zh)
{
	return zh ? "站点" : "Site";
}

int render_report_text(FILE *f, const struct render_report *r)
{
	const bool zh = r->lang == TIMEFMT_ZH;
	const size_t off = r->n_sites ? 1 : 0; /* the site column */
	const char *hd[N_COLS + 1];
	struct str workers = { 0 }, types = { 0 };
	const char *unit = reading_unit(r->cfg);
	struct render_summary sum;
	char asof[64], line[512], sites[64] = "";
	int ret = -1;

	hd[0] = site_header(zh);
	memcpy(hd + off, zh ? headers_zh : headers_en, sizeof(headers_zh));
	struct table *t = table_new(N_COLS + off, hd);
	if (!t)
		return -1;
	static const int right[] = { COL_PATROLS,  COL_GAP,    COL_PCT, COL_OVERDUE,
		                     COL_READINGS, COL_ALERTS, COL_LATE };
	for (size_t i = 0; i < sizeof(right) / sizeof(right[0]); i++)
		table_set_align(t, (size_t)right[i] + off, TABLE_RIGHT);
	table_set_max_width(t, COL_NAME + off, 28);
	table_set_max_width(t, COL_WORKERS + off, 24);
	table_set_max_width(t, COL_EVENTS + off, 40);
	if (off)
		table_set_max_width(t, 0, 20);

	for (size_t i = 0; i < r->n_cells; i++) {
		const struct report_cell *c = &r->cells[i].rc;
		char patrols[16], first[32], last[32], gap[TIMEFMT_MAX], pct[16], over[TIMEFMT_MAX],
		        readings[96], alerts[16], late[16];
		snprintf(patrols, sizeof(patrols), "%d", c->patrols);
		fmt_when(c->has_patrol, c->first, r->day_start, first, sizeof(first));
		fmt_when(c->has_patrol, c->last, r->day_start, last, sizeof(last));
		fmt_dur(c->longest_gap_s, r->lang, gap, sizeof(gap));
		render_pct(c, pct, sizeof(pct));
		fmt_dur(c->overdue_s, r->lang, over, sizeof(over));
		fmt_readings(c, unit, readings, sizeof(readings));
		snprintf(alerts, sizeof(alerts), "%d", c->alerts);
		snprintf(late, sizeof(late), "%d", c->late);
		join_workers(&workers, c, ",");
		join_types(&types, r->cfg, c, true, r->lang);
		const char *w = str_get(&workers), *ty = str_get(&types);
		if (!w || !ty)
			goto out;
		const char *row[N_COLS + 1] = {
			r->cells[i].site,
			render_cell_id(&r->cells[i]),
			r->cells[i].cell->name,
			patrols,
			w,
			first,
			last,
			gap,
			pct,
			over,
			ty,
			readings,
			alerts,
			late,
		};
		if (table_add_row(t, row + (off ? 0 : 1)) < 0)
			goto out;
	}

	fmt_asof(r, asof, sizeof(asof));
	if (r->n_sites)
		snprintf(sites, sizeof(sites), zh ? "，%zu 个站点" : ", %zu sites", r->n_sites);
	if (fprintf(f, zh ? "巡查日报 %s（%s%s）%s%s\n\n" : "Patrol report %s (%s%s)%s%s\n\n",
	            r->date, r->cfg->timezone, sites, asof[0] ? " " : "", asof) < 0 ||
	    table_write(t, f) < 0 || putc('\n', f) == EOF)
		goto out;
	for (size_t k = 0; k < r->n_sites; k++) {
		render_summary_site(r, k, &sum);
		fmt_summary_line(r, &sum, line, sizeof(line));
		if (fprintf(f, zh ? "%s：%s\n" : "%s: %s\n", r->sites[k].name, line) < 0)
			goto out;
	}
	render_summary(r, &sum);
	fmt_summary_line(r, &sum, line, sizeof(line));
	if (fprintf(f, "%s%s\n", r->n_sites ? (zh ? "合计：" : "Total: ") : "", line) < 0)
		goto out;
	ret = 0;
out:
	free(workers.p);
	free(types.p);
	table_free(t);
	return ret;
}

/* ------------------------------------------------------------------ */
/* JSON                                                                */
/* ------------------------------------------------------------------ */

/* Set o[k] = v, taking v's reference even on failure (jansson does). */
static int jset(json_t *o, const char *k, json_t *v)
{
	return v ? json_object_set_new(o, k, v) : -1;
}

static json_t *jtime(bool has, int64_t t)
{
	char buf[TIMEFMT_MAX];
	if (!has)
		return json_null();
	timefmt_rfc3339(t, buf, sizeof(buf));
	return json_string(buf);
}

static json_t *cell_json(const struct render_cell *rc)
{
	const struct report_cell *c = &rc->rc;
	json_t *o = json_object(), *w = json_array(), *ev = json_object();
	int bad = !o || !w || !ev;

	for (size_t k = 0; !bad && k < c->n_workers; k++)
		bad |= json_array_append_new(w, json_string(c->workers[k])) < 0;
	for (size_t k = 0; !bad && k < c->n_types; k++)
		bad |= jset(ev, c->types[k].type, json_integer(c->types[k].count)) < 0;
	if (bad) {
		json_decref(o);
		json_decref(w);
		json_decref(ev);
		return NULL;
	}
	if (rc->site)
		bad |= jset(o, "site", json_string(rc->site));
	bad |= jset(o, "id", json_string(render_cell_id(rc)));
	if (rc->site)
		bad |= jset(o, "cell", json_string(rc->cell->id));
	bad |= jset(o, "name", json_string(rc->cell->name));
	bad |= jset(o, "patrols", json_integer(c->patrols));
	bad |= jset(o, "workers", w);
	bad |= jset(o, "first", jtime(c->has_patrol, c->first));
	bad |= jset(o, "last", jtime(c->has_patrol, c->last));
	bad |= jset(o, "longest_gap_s", json_integer(c->longest_gap_s));
	bad |= jset(o, "covered_pct", c->has_covered ? json_real(c->covered_pct) : json_null());
	bad |= jset(o, "overdue_s", json_integer(c->overdue_s));
	bad |= jset(o, "events", ev);
	bad |= jset(o, "value_min", c->has_value ? json_real(c->value_min) : json_null());
	bad |= jset(o, "value_max", c->has_value ? json_real(c->value_max) : json_null());
	bad |= jset(o, "alerts", json_integer(c->alerts));
	bad |= jset(o, "late", json_integer(c->late));
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *summary_json(const struct render_summary *s)
{
	json_t *o = json_object();
	int bad = !o;
	bad |= jset(o, "cells", json_integer(s->cells));
	bad |= jset(o, "covered", json_integer(s->covered));
	bad |= jset(o, "never_patrolled", json_integer(s->never_patrolled));
	bad |= jset(o, "overdue", json_integer(s->overdue));
	bad |= jset(o, "events", json_integer(s->events));
	bad |= jset(o, "alerts_claimed", json_integer(s->claimed));
	bad |= jset(o, "alerts_unclaimed", json_integer(s->unclaimed));
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* A county report's "sites": [{"site", "db", "summary"}]. */
static json_t *sites_json(const struct render_report *r)
{
	json_t *a = json_array();
	for (size_t k = 0; a && k < r->n_sites; k++) {
		struct render_summary s;
		json_t *o = json_object();
		render_summary_site(r, k, &s);
		int bad = !o || json_array_append_new(a, o) < 0;
		bad = bad || jset(o, "site", json_string(r->sites[k].name)) < 0 ||
		      jset(o, "db", json_string(r->sites[k].db)) < 0 ||
		      jset(o, "summary", summary_json(&s)) < 0;
		if (bad) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

int render_report_json(FILE *f, const struct render_report *r)
{
	struct render_summary s;
	json_t *root = json_object(), *cells = json_array();
	int bad = !root || !cells;

	for (size_t i = 0; !bad && i < r->n_cells; i++)
		bad |= json_array_append_new(cells, cell_json(&r->cells[i])) < 0;
	if (bad) {
		json_decref(root);
		json_decref(cells);
		return -1;
	}
	render_summary(r, &s);
	bad |= jset(root, "date", json_string(r->date));
	bad |= jset(root, "timezone", json_string(r->cfg->timezone));
	bad |= jset(root, "cells", cells);
	if (r->n_sites)
		bad |= jset(root, "sites", sites_json(r));
	bad |= jset(root, "summary", summary_json(&s));
	if (!bad)
		bad |= json_dumpf(root, f, JSON_INDENT(2) | JSON_REAL_PRECISION(15)) < 0 ||
		       putc('\n', f) == EOF;
	json_decref(root);
	return bad ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* CSV                                                                 */
/* ------------------------------------------------------------------ */

int render_report_csv(FILE *f, const struct render_report *r)
{
	static const char *const head[] = {
		"date",   "id",        "name",          "patrols",     "workers",
		"first",  "last",      "longest_gap_s", "covered_pct", "overdue_s",
		"events", "value_min", "value_max",     "alerts",      "late",
	};
	struct str workers = { 0 }, types = { 0 };
	int bad = render_csv_bom(f);

	/* A county report has a site column after the date. */
	for (size_t i = 0; i < sizeof(head) / sizeof(head[0]); i++) {
		bad |= (i ? render_csv_sep(f) : 0) | render_csv_field(f, head[i]);
		if (i == 0 && r->n_sites)
			bad |= render_csv_sep(f) | render_csv_field(f, "site");
	}
	bad |= render_csv_eol(f);
	for (size_t i = 0; !bad && i < r->n_cells; i++) {
		const struct report_cell *c = &r->cells[i].rc;
		char first[TIMEFMT_MAX] = "", last[TIMEFMT_MAX] = "", n[8][48];
		if (c->has_patrol) {
			timefmt_rfc3339(c->first, first, sizeof(first));
			timefmt_rfc3339(c->last, last, sizeof(last));
		}
		snprintf(n[0], sizeof(n[0]), "%d", c->patrols);
		snprintf(n[1], sizeof(n[1]), "%lld", (long long)c->longest_gap_s);
		if (c->has_covered)
			snprintf(n[2], sizeof(n[2]), "%.1f", c->covered_pct);
		else
			n[2][0] = '\0';
		snprintf(n[3], sizeof(n[3]), "%lld", (long long)c->overdue_s);
		n[4][0] = n[5][0] = '\0';
		if (c->has_value) {
			fmt_num(c->value_min, n[4], sizeof(n[4]));
			fmt_num(c->value_max, n[5], sizeof(n[5]));
		}
		snprintf(n[6], sizeof(n[6]), "%d", c->alerts);
		snprintf(n[7], sizeof(n[7]), "%d", c->late);
		join_workers(&workers, c, ";");
		join_types(&types, r->cfg, c, false, r->lang);
		const char *w = str_get(&workers), *ty = str_get(&types);
		if (!w || !ty) {
			bad = 1;
			break;
		}
		const char *row[] = { r->date,
			              r->cells[i].site,
			              render_cell_id(&r->cells[i]),
			              r->cells[i].cell->name,
			              n[0],
			              w,
			              first,
			              last,
			              n[1],
			              n[2],
			              n[3],
			              ty,
			              n[4],
			              n[5],
			              n[6],
			              n[7] };
		for (size_t k = 0; k < sizeof(row) / sizeof(row[0]); k++) {
			if (k == 1 && !r->n_sites)
				continue;
			bad |= (k ? render_csv_sep(f) : 0) | render_csv_text(f, row[k]);
		}
		bad |= render_csv_eol(f);
	}
	free(workers.p);
	free(types.p);
	return bad ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* HTML                                                                */
/* ------------------------------------------------------------------ */

/* "site · name" in a county report, truncated to width; malloc'd. */
char *render_site_label(const char *site, const char *name, size_t width)
{
	if (!site)
		return table_truncate(name, width);
	struct str s = { 0 };
	str_add(&s, site);
	str_add(&s, " · ");
	str_add(&s, name);
	if (s.bad) {
		free(s.p);
		return NULL;
	}
	char *out = table_truncate(s.p, width);
	free(s.p);
	return out;
}

static int html_td(FILE *f, const char *cls, const char *text)
{
	int bad = cls ? fprintf(f, "<td class=\"%s\">", cls) < 0 : fputs("<td>", f) == EOF;
	bad |= render_html_escaped(f, text);
	bad |= fputs("</td>", f) == EOF;
	return bad ? -1 : 0;
}

static int html_cells_table(FILE *f, const struct render_report *r)
{
	const bool zh = r->lang == TIMEFMT_ZH;
	const char *const *hd = zh ? headers_zh : headers_en;
	const char *unit = reading_unit(r->cfg);
	struct str workers = { 0 }, types = { 0 };
	int bad = fputs("<table><thead><tr>", f) == EOF;

	if (r->n_sites)
		bad |= fprintf(f, "<th>%s</th>", site_header(zh)) < 0;
	for (size_t i = 0; i < N_COLS; i++) {
		bad |= fputs("<th>", f) == EOF || render_html_escaped(f, hd[i]) < 0 ||
		       fputs("</th>", f) == EOF;
	}
	bad |= fputs("</tr></thead><tbody>\n", f) == EOF;
	for (size_t i = 0; !bad && i < r->n_cells; i++) {
		const struct report_cell *c = &r->cells[i].rc;
		char num[32], first[32], last[32], gap[TIMEFMT_MAX], pct[16], over[TIMEFMT_MAX],
		        readings[96];
		fmt_when(c->has_patrol, c->first, r->day_start, first, sizeof(first));
		fmt_when(c->has_patrol, c->last, r->day_start, last, sizeof(last));
		fmt_dur(c->longest_gap_s, r->lang, gap, sizeof(gap));
		render_pct(c, pct, sizeof(pct));
		fmt_dur(c->overdue_s, r->lang, over, sizeof(over));
		fmt_readings(c, unit, readings, sizeof(readings));
		join_workers(&workers, c, zh ? "、" : ", ");
		join_types(&types, r->cfg, c, true, r->lang);
		const char *w = str_get(&workers), *ty = str_get(&types);
		if (!w || !ty) {
			bad = 1;
			break;
		}
		bad |= fputs("<tr>", f) == EOF;
		if (r->n_sites)
			bad |= html_td(f, "t", r->cells[i].site);
		bad |= html_td(f, "id", render_cell_id(&r->cells[i]));
		bad |= html_td(f, NULL, r->cells[i].cell->name);
		snprintf(num, sizeof(num), "%d", c->patrols);
		bad |= html_td(f, c->patrols ? "n" : "n bad", num);
		bad |= html_td(f, NULL, w);
		bad |= html_td(f, "t", first);
		bad |= html_td(f, "t", last);
		bad |= html_td(f, "n", gap);
		bad |= html_td(f, c->has_covered && c->covered_pct < 100.0 ? "n bad" : "n", pct);
		bad |= html_td(f, c->overdue_s > 0 ? "n bad" : "n", over);
		bad |= html_td(f, NULL, ty);
		bad |= html_td(f, "n", readings);
		snprintf(num, sizeof(num), "%d", c->alerts);
		bad |= html_td(f, "n", num);
		snprintf(num, sizeof(num), "%d", c->late);
		bad |= html_td(f, "n", num);
		bad |= fputs("</tr>\n", f) == EOF;
	}
	bad |= fputs("</tbody></table>\n", f) == EOF;
	free(workers.p);
	free(types.p);
	return bad ? -1 : 0;
}

static void note_why(const struct render_report *r, const struct render_note *n, char *buf,
                     size_t len)
{
	const bool zh = r->lang == TIMEFMT_ZH;
	const struct config_event *e = n->ev;
	char v[40], th[40];
	const char *unit = e && e->unit ? e->unit : "";

	if (n->why == RENDER_NOTE_EVENT || !e) {
		snprintf(buf, len, "%s", zh ? "即时告警事件" : "immediate-alert event");
		return;
	}
	fmt_num(n->value, v, sizeof(v));
	if (n->why == RENDER_NOTE_ALARM) {
		fmt_num(e->alarm, th, sizeof(th));
		snprintf(buf, len, zh ? "%s%s，达到危险值 %s%s" : "%s%s, at or over alarm %s%s", v,
		         unit, th, unit);
	} else {
		fmt_num(e->warn, th, sizeof(th));
		snprintf(buf, len, zh ? "%s%s，达到警戒值 %s%s" : "%s%s, at or over warn %s%s", v,
		         unit, th, unit);
	}
}

static int html_notes(FILE *f, const struct render_report *r)
{
	const bool zh = r->lang == TIMEFMT_ZH;
	static const char *const zh_h[] = { "时间", "网格", "事件", "巡查人", "情况", "备注" };
	static const char *const en_h[] = { "Time", "Cell", "Event", "Worker", "What", "Note" };
	int bad = 0;

	if (r->n_notes == 0)
		return fprintf(f, "<p class=\"none\">%s</p>\n",
		               zh ? "当天没有即时告警事件，也没有读数达到警戒值。"
		                  : "No immediate-alert events and no readings over a threshold "
		                    "that day.") < 0
		               ? -1
		               : 0;
	bad |= fputs("<table><thead><tr>", f) == EOF;
	for (size_t i = 0; i < 6; i++)
		bad |= fprintf(f, "<th>%s</th>", zh ? zh_h[i] : en_h[i]) < 0;
	bad |= fputs("</tr></thead><tbody>\n", f) == EOF;
	for (size_t i = 0; !bad && i < r->n_notes; i++) {
		const struct render_note *n = &r->notes[i];
		char when[32], why[160];
		render_clock(n->ts, r->day_start, when, sizeof(when));
		note_why(r, n, why, sizeof(why));
		char *cell = render_site_label(n->site, n->cell->name, 200);
		if (!cell)
			return -1;
		bad |= fputs("<tr>", f) == EOF;
		bad |= html_td(f, "t", when);
		bad |= html_td(f, NULL, cell);
		free(cell);
		bad |= html_td(f, NULL, n->ev && n->ev->label ? n->ev->label : n->type);
		bad |= html_td(f, "id", n->worker);
		bad |= html_td(f, n->why == RENDER_NOTE_ALARM ? "bad" : NULL, why);
		bad |= html_td(f, NULL, n->note ? n->note : "");
		bad |= fputs("</tr>\n", f) == EOF;
	}
	bad |= fputs("</tbody></table>\n", f) == EOF;
	if (r->notes_omitted)
		bad |= fprintf(f,
		               zh ? "<p class=\"note\">另有 %zu 条未列出，完整记录请用 "
		                    "<code>gridpatrol events</code> 查询。</p>\n"
		                  : "<p class=\"note\">%zu more not listed; see "
		                    "<code>gridpatrol events</code>.</p>\n",
		               r->notes_omitted) < 0;
	return bad ? -1 : 0;
}

/* A span from a task's raising; a claim made at once reads "under a
 * minute", not the "—" of a figure that does not apply. */
static void fmt_since(int64_t from, int64_t to, enum timefmt_lang lang, char *buf, size_t len)
{
	timefmt_duration(to > from ? to - from : 0, lang, buf, len);
}

/* The day's task alerts with claimer and response times (SPEC, Claims). */
static int html_tasks(FILE *f, const struct render_report *r)
{
	const bool zh = r->lang == TIMEFMT_ZH;
	static const char *const zh_h[] = { "提醒时间", "网格",     "类型",
		                            "认领人",   "认领用时", "处理用时" };
	static const char *const en_h[] = { "Raised",     "Cell",          "Kind",
		                            "Claimed by", "Time to claim", "Time to resolve" };
	int bad = 0;

	if (r->n_tasks == 0 && r->tasks_omitted == 0)
		return fprintf(f, "<p class=\"none\">%s</p>\n",
		               zh ? "当天没有待处理的提醒。" : "No task alerts that day.") < 0
		               ? -1
		               : 0;
	bad |= fputs("<table class=\"tasks\"><thead><tr>", f) == EOF;
	for (size_t i = 0; i < 6; i++)
		bad |= fprintf(f, "<th>%s</th>", zh ? zh_h[i] : en_h[i]) < 0;
	bad |= fputs("</tr></thead><tbody>\n", f) == EOF;
	for (size_t i = 0; !bad && i < r->n_tasks; i++) {
		const struct render_task *t = &r->tasks[i];
		const struct config_cell *cc = config_cell_find(r->cfg, t->cell);
		const char *kind = t->kind;
		char when[32], claim[TIMEFMT_MAX], done[TIMEFMT_MAX];
		if (zh)
			kind = !strcmp(kind, "overdue")   ? "超时"
			       : !strcmp(kind, "event")   ? "事件"
			       : !strcmp(kind, "reading") ? "读数"
			                                  : kind;
		render_clock(t->at, r->day_start, when, sizeof(when));
		if (t->claimed_by)
			fmt_since(t->at, t->claimed_at, r->lang, claim, sizeof(claim));
		else
			snprintf(claim, sizeof(claim), "—");
		if (t->resolved_at)
			fmt_since(t->at, t->resolved_at, r->lang, done, sizeof(done));
		else
			snprintf(done, sizeof(done), zh ? "未结束" : "open");
		char *cell = render_site_label(t->site, cc ? cc->name : t->cell, 200);
		if (!cell)
			return -1;
		bad |= fputs("<tr>", f) == EOF;
		bad |= html_td(f, "t", when);
		bad |= html_td(f, NULL, cell);
		free(cell);
		bad |= html_td(f, "t", kind);
		bad |= t->claimed_by ? html_td(f, "id", t->claimed_by)
		                     : html_td(f, "bad", zh ? "未认领" : "unclaimed");
		bad |= html_td(f, "n", claim);
		bad |= html_td(f, "n", done);
		bad |= fputs("</tr>\n", f) == EOF;
	}
	bad |= fputs("</tbody></table>\n", f) == EOF;
	if (r->tasks_omitted)
		bad |= fprintf(f,
		               zh ? "<p class=\"note\">另有 %zu 项未列出，完整记录请用 "
		                    "<code>gridpatrol alerts</code> 查询。</p>\n"
		                  : "<p class=\"note\">%zu more not listed; see "
		                    "<code>gridpatrol alerts</code>.</p>\n",
		               r->tasks_omitted) < 0;
	return bad ? -1 : 0;
}

/* A county report's summary per site, then the total. */
static int html_sites(FILE *f, const struct render_report *r)
{
	const bool zh = r->lang == TIMEFMT_ZH;
	static const char *const zh_h[] = { "站点",       "网格",   "全天覆盖",
		                            "当天未巡查", "曾超时", "事件" };
	static const char *const en_h[] = {
		"Site", "Cells", "Fully covered", "Not patrolled", "Overdue at some point", "Events"
	};
	int bad = fprintf(f, "<h2>%s</h2>\n<table><thead><tr>", zh ? "各站点汇总" : "Sites") < 0;
	for (size_t i = 0; i < 6; i++)
		bad |= fprintf(f, "<th>%s</th>", zh ? zh_h[i] : en_h[i]) < 0;
	bad |= fputs("</tr></thead><tbody>\n", f) == EOF;
	for (size_t k = 0; !bad && k <= r->n_sites; k++) {
		struct render_summary s;
		char n[5][32];
		if (k < r->n_sites)
			render_summary_site(r, k, &s);
		else
			render_summary(r, &s);
		snprintf(n[0], sizeof(n[0]), "%ld", s.cells);
		snprintf(n[1], sizeof(n[1]), "%ld", s.covered);
		snprintf(n[2], sizeof(n[2]), "%ld", s.never_patrolled);
		snprintf(n[3], sizeof(n[3]), "%ld", s.overdue);
		snprintf(n[4], sizeof(n[4]), "%lld", s.events);
		bad |= fputs("<tr>", f) == EOF;
		bad |= html_td(f, "t", k < r->n_sites ? r->sites[k].name : (zh ? "合计" : "Total"));
		bad |= html_td(f, "n", n[0]);
		bad |= html_td(f, "n", n[1]);
		bad |= html_td(f, s.never_patrolled ? "n bad" : "n", n[2]);
		bad |= html_td(f, s.overdue ? "n bad" : "n", n[3]);
		bad |= html_td(f, "n", n[4]);
		bad |= fputs("</tr>\n", f) == EOF;
	}
	bad |= fputs("</tbody></table>\n", f) == EOF;
	return bad ? -1 : 0;
}

int render_report_html(FILE *f, const struct render_report *r)
{
	static const char *const wd_zh[] = { "日", "一", "二", "三", "四", "五", "六" };
	static const char *const wd_en[] = { "Sunday",   "Monday", "Tuesday", "Wednesday",
		                             "Thursday", "Friday", "Saturday" };
	const bool zh = r->lang == TIMEFMT_ZH;
	struct render_summary s;
	char line[512], asof[64], day[96], title[128];
	struct tm tm;
	time_t mid = (time_t)(r->day_start + 12 * 3600);
	int bad = 0;

	render_summary(r, &s);
	fmt_summary_line(r, &s, line, sizeof(line));
	fmt_asof(r, asof, sizeof(asof));
	if (!localtime_r(&mid, &tm))
		return -1;
	if (zh)
		snprintf(day, sizeof(day), "%d年%d月%d日 星期%s", tm.tm_year + 1900, tm.tm_mon + 1,
		         tm.tm_mday, wd_zh[tm.tm_wday]);
	else
		snprintf(day, sizeof(day), "%s, %s", wd_en[tm.tm_wday], r->date);

	snprintf(title, sizeof(title), "%s %s", zh ? "网格巡查日报" : "Grid patrol report",
	         r->date);
	bad |= html_page_begin(f, &(struct html_page){ .lang = r->lang,
	                                               .title = title,
	                                               .section = HTML_PAGE_REPORT,
	                                               .web = r->web }) < 0;
	if (r->web)
		bad |= html_page_day_links(f, r->lang, "/report", r->date, r->now) < 0;
	bad |= render_chart_defs(f);
	bad |= fprintf(f, "<h1>%s</h1>\n<p class=\"meta\">%s　·　%s ",
	               zh ? "网格巡查日报" : "Grid patrol daily report", day,
	               zh ? "时区" : "time zone") < 0;
	bad |= render_html_escaped(f, r->cfg->timezone);
	if (r->n_sites)
		bad |= fprintf(f, zh ? "　·　%zu 个站点" : "　·　%zu sites", r->n_sites) < 0;
	if (asof[0])
		bad |= fprintf(f, "　·　%s", asof) < 0;
	bad |= fputs("</p>\n<div class=\"kpis\">", f) == EOF;
	bad |= html_page_kpi(f, s.cells, zh ? "网格" : "cells", false);
	bad |= html_page_kpi(f, s.covered, zh ? "全天覆盖" : "fully covered", false);
	bad |= html_page_kpi(f, s.never_patrolled, zh ? "当天未巡查" : "not patrolled", true);
	bad |= html_page_kpi(f, s.overdue, zh ? "曾超时" : "overdue at some point", true);
	bad |= html_page_kpi(f, s.events, zh ? "上报事件" : "events", false);
	bad |= fputs("</div>\n<p class=\"lead\">", f) == EOF;
	bad |= render_html_escaped(f, line);
	bad |= fputs("</p>\n", f) == EOF;
	if (r->n_sites && !bad)
		bad |= html_sites(f, r);

	bad |= fprintf(f, "<h2>%s</h2>\n", zh ? "分时段巡查情况" : "Coverage by hour") < 0;
	if (r->n_cells == 0) {
		bad |= fprintf(f, "<p class=\"none\">%s</p>\n",
		               zh ? "配置中没有网格。" : "No cells are configured.") < 0;
	} else {
		bad |= render_chart_legend(f, zh);
		for (size_t i = 0; !bad && i < r->n_cells; i += RENDER_CHART_ROWS_PER_SVG) {
			size_t to = i + RENDER_CHART_ROWS_PER_SVG < r->n_cells
			                    ? i + RENDER_CHART_ROWS_PER_SVG
			                    : r->n_cells;
			bad |= render_chart_rows(f, r, i, to);
		}
	}
	bad |= fprintf(f, "<h2>%s</h2>\n", zh ? "各网格明细" : "Cells") < 0;
	if (!bad)
		bad |= html_cells_table(f, r);
	bad |= fprintf(f, "<p class=\"note\">%s</p>\n",
	               zh ? "覆盖率：当天应巡查时段内未超时的时间所占比例；最长间隔、超时均只计应巡"
	                    "查时段；"
	                    "“补报”为延迟上传的记录数。"
	                  : "Covered: share of the day's active hours in which the cell was not "
	                    "overdue; gaps and overdue time count active hours only; late: "
	                    "reports uploaded late.") < 0;
	bad |= fprintf(f, "<h2>%s</h2>\n", zh ? "需关注事项" : "Events of note") < 0;
	if (!bad)
		bad |= html_notes(f, r);
	bad |= fprintf(f, "<h2>%s</h2>\n", zh ? "提醒认领情况" : "Claims") < 0;
	if (!bad)
		bad |= html_tasks(f, r);
	bad |= fprintf(f,
	               zh ? "<div class=\"sign\"><div>填报人：<span></span></div>"
	                    "<div>审核人：<span></span></div><div>日期：<span></span></div></div>\n"
	                  : "<div class=\"sign\"><div>Prepared by: <span></span></div>"
	                    "<div>Reviewed by: <span></span></div><div>Date: <span></span></div>"
	                    "</div>\n") < 0;
	bad |= html_page_end(f, r->lang, r->now) < 0;
	return bad ? -1 : 0;
}
