/*
 * cli_workers: `gridpatrol workers`, the per-worker sheet (考核) for a day
 * or a range of days (SPEC, Claims): patrols, distinct cells patrolled,
 * events by type, late reports, claims with the median time to claim and
 * to resolve, and `rapid` check-ins.
 *
 * Patrols and rapid check-ins follow config_event_counts_as_patrol, the one
 * rule every reader uses, so the sheet agrees with `status` and `report`
 * on what a patrol is. Everything comes from two ordered scans (events of
 * the range, claims of the range) in the command's one read snapshot.
 */
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "cli_db.h"
#include "html_page.h"
#include "render.h"

/* A check-in this soon after the same worker's previous one in the same
 * cell is `rapid` (SPEC: possible gaming). */
#define RAPID_S 60

struct wtype {
	char *type;
	int64_t n;
};

struct wsheet {
	char *worker;
	int64_t patrols, cells, late, rapid;
	struct wtype *types;
	size_t n_types;
	int64_t *to_claim, *to_resolve;
	size_t n_claims, n_resolved;
};

struct wsheets {
	struct wsheet *v;
	size_t n, cap;
};

static void wsheets_free(struct wsheets *ws)
{
	for (size_t i = 0; i < ws->n; i++) {
		struct wsheet *w = &ws->v[i];
		for (size_t t = 0; t < w->n_types; t++)
			free(w->types[t].type);
		free(w->types);
		free(w->to_claim);
		free(w->to_resolve);
		free(w->worker);
	}
	free(ws->v);
}

/* The sheet of `worker`, added if new; NULL when out of memory. The
 * scans come sorted by worker, so the last one is the usual answer. */
static struct wsheet *wsheet_of(struct wsheets *ws, const char *worker)
{
	if (ws->n && !strcmp(ws->v[ws->n - 1].worker, worker))
		return &ws->v[ws->n - 1];
	for (size_t i = 0; i < ws->n; i++)
		if (!strcmp(ws->v[i].worker, worker))
			return &ws->v[i];
	if (ws->n == ws->cap) {
		size_t ncap = ws->cap ? ws->cap * 2 : 32;
		struct wsheet *nv = realloc(ws->v, ncap * sizeof(*nv));
		if (!nv)
			return NULL;
		ws->v = nv;
		ws->cap = ncap;
	}
	struct wsheet *w = &ws->v[ws->n];
	*w = (struct wsheet){ .worker = strdup(worker) };
	if (!w->worker)
		return NULL;
	ws->n++;
	return w;
}

static int wsheet_count_type(struct wsheet *w, const char *type)
{
	for (size_t t = 0; t < w->n_types; t++)
		if (!strcmp(w->types[t].type, type)) {
			w->types[t].n++;
			return 0;
		}
	struct wtype *nt = realloc(w->types, (w->n_types + 1) * sizeof(*nt));
	if (!nt)
		return -1;
	w->types = nt;
	if (!(nt[w->n_types].type = strdup(type)))
		return -1;
	nt[w->n_types++].n = 1;
	return 0;
}

static int push(int64_t **v, size_t *n, int64_t x)
{
	int64_t *nv = realloc(*v, (*n + 1) * sizeof(*nv));
	if (!nv)
		return -1;
	nv[(*n)++] = x;
	*v = nv;
	return 0;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static int cmp_sheet(const void *a, const void *b)
{
	return strcmp(((const struct wsheet *)a)->worker, ((const struct wsheet *)b)->worker);
}

/* The middle value; of an even count the mean of the two middle ones,
 * rounded down. */
static int64_t median(int64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_i64);
	if (n % 2)
		return v[n / 2];
	int64_t a = v[n / 2 - 1], b = v[n / 2];
	return a + (b - a) / 2;
}

/* Events of the range into the sheets. Rows come by worker, cell and
 * time; prev_ts is the last patrol of the current (worker, cell), also
 * from the 60 s before the range. */
static int scan_events(struct cli *c, int64_t from, int64_t to, struct wsheets *ws)
{
	struct cli_db_cursor *q;
	char worker[TOPIC_SEGMENT_MAX + 1] = "", cell[TOPIC_SEGMENT_MAX + 1] = "";
	int64_t prev_ts = 0;
	bool have_prev = false, cell_counted = false, more;
	int code = cli_db_worker_events_open(c, from, to, &q);

	if (code != CLI_EXIT_OK)
		return code;
	for (;;) {
		struct cli_db_worker_event r;
		if ((code = cli_db_worker_events_next(c, q, &r, &more)) != CLI_EXIT_OK || !more)
			break;
		if (strcmp(r.worker, worker) || strcmp(r.cell, cell)) {
			snprintf(worker, sizeof(worker), "%s", r.worker);
			snprintf(cell, sizeof(cell), "%s", r.cell);
			have_prev = cell_counted = false;
		}
		bool patrol = config_event_counts_as_patrol(c->cfg, r.type);
		if (r.ts >= from) {
			struct wsheet *w = wsheet_of(ws, r.worker);
			if (!w || wsheet_count_type(w, r.type) < 0) {
				cli_error("out of memory");
				code = CLI_EXIT_FAIL;
				break;
			}
			w->late += r.late;
			if (patrol) {
				w->patrols++;
				if (!cell_counted)
					w->cells++;
				cell_counted = true;
				if (have_prev && r.ts - prev_ts < RAPID_S)
					w->rapid++;
			}
		}
		if (patrol) {
			prev_ts = r.ts;
			have_prev = true;
		}
	}
	cli_db_cursor_close(q);
	return code;
}

static int scan_claims(struct cli *c, int64_t from, int64_t to, struct wsheets *ws)
{
	struct cli_db_cursor *q;
	bool more;
	int code = cli_db_worker_claims_open(c, from, to, &q);

	if (code != CLI_EXIT_OK)
		return code;
	for (;;) {
		struct cli_db_worker_claim r;
		if ((code = cli_db_worker_claims_next(c, q, &r, &more)) != CLI_EXIT_OK || !more)
			break;
		struct wsheet *w = wsheet_of(ws, r.by);
		if (!w || push(&w->to_claim, &w->n_claims, r.to_claim_s) < 0 ||
		    (r.resolved && push(&w->to_resolve, &w->n_resolved, r.to_resolve_s) < 0)) {
			cli_error("out of memory");
			code = CLI_EXIT_FAIL;
			break;
		}
	}
	cli_db_cursor_close(q);
	return code;
}

static const struct cli_col worker_cols[] = {
	{ "worker", "人员", "Worker", CLI_COL_ID, 0 },
	{ "patrols", "巡查", "Patrols", CLI_COL_RIGHT, 0 },
	{ "cells", "网格数", "Cells", CLI_COL_RIGHT, 0 },
	{ "events", "上报", "Events", 0, 40 },
	{ "late", "补报", "Late", CLI_COL_RIGHT, 0 },
	{ "claims", "认领", "Claims", CLI_COL_RIGHT, 0 },
	{ "median_to_claim_s", "认领用时中位", "Median to claim", CLI_COL_RIGHT, 0 },
	{ "median_to_resolve_s", "处理用时中位", "Median to resolve", CLI_COL_RIGHT, 0 },
	{ "rapid", "过快签到", "Rapid", CLI_COL_RIGHT, 0 },
};

static int emit(struct cli *c, struct cli_list *l, struct wsheet *w)
{
	char flat[512] = "", label[512] = "", mc[TIMEFMT_MAX] = "", mr[TIMEFMT_MAX] = "";
	json_t *types = json_object();
	int64_t to_claim = 0, to_resolve = 0;

	if (!types)
		return -1;
	for (size_t t = 0; t < w->n_types; t++) {
		const struct config_event *ev = config_event_find(c->cfg, w->types[t].type);
		size_t n = strlen(flat), m = strlen(label);
		snprintf(flat + n, sizeof(flat) - n, "%s%s:%lld", n ? ";" : "", w->types[t].type,
		         (long long)w->types[t].n);
		snprintf(label + m, sizeof(label) - m, "%s%s %lld",
		         m ? (c->lang == TIMEFMT_ZH ? "，" : ", ") : "",
		         ev ? ev->label : w->types[t].type, (long long)w->types[t].n);
		if (json_object_set_new(types, w->types[t].type, json_integer(w->types[t].n)) < 0) {
			json_decref(types);
			return -1;
		}
	}
	if (w->n_claims) {
		to_claim = median(w->to_claim, w->n_claims);
		timefmt_duration(to_claim, c->lang, mc, sizeof(mc));
	}
	if (w->n_resolved) {
		to_resolve = median(w->to_resolve, w->n_resolved);
		timefmt_duration(to_resolve, c->lang, mr, sizeof(mr));
	}
	struct cli_val v[] = {
		{ .kind = CLI_V_STR, .s = w->worker },
		{ .kind = CLI_V_INT, .i = w->patrols },
		{ .kind = CLI_V_INT, .i = w->cells },
		{ .kind = CLI_V_STR, .s = flat, .json = types, .text = label[0] ? label : "—" },
		{ .kind = CLI_V_INT, .i = w->late },
		{ .kind = CLI_V_INT, .i = (int64_t)w->n_claims },
		{ .kind = w->n_claims ? CLI_V_INT : CLI_V_NULL, .i = to_claim, .text = mc },
		{ .kind = w->n_resolved ? CLI_V_INT : CLI_V_NULL, .i = to_resolve, .text = mr },
		{ .kind = CLI_V_INT, .i = w->rapid },
	};
	return cli_list_row(l, v);
}

/* The sheet's heading: its day (with links to the days around it when
 * served) or its range of days. */
static int workers_html_top(const struct cli *c, FILE *f, const char *date, int64_t from,
                            int64_t to)
{
	const bool zh = c->lang == TIMEFMT_ZH;
	const char *title = zh ? "人员考核表" : "Worker sheet";
	char first[16], last[16];
	int bad = html_page_begin(f, &(struct html_page){ .lang = c->lang,
	                                                  .title = title,
	                                                  .section = HTML_PAGE_WORKERS,
	                                                  .web = c->web }) < 0;
	if (c->web && !c->from)
		bad |= html_page_day_links(f, c->lang, "/workers", date, c->now) < 0;
	bad |= fprintf(f, "<h1>%s</h1>\n<p class=\"meta\">", title) < 0;
	timefmt_date(from, first, sizeof(first));
	timefmt_date(to - 1, last, sizeof(last));
	if (c->from)
		bad |= fprintf(f, zh ? "%s 至 %s" : "%s to %s", first, last) < 0;
	else
		bad |= fputs(first, f) == EOF;
	bad |= fprintf(f, "　·　%s ", zh ? "时区" : "time zone") < 0;
	bad |= render_html_escaped(f, c->cfg->timezone) < 0;
	bad |= fputs("</p>\n", f) == EOF;
	return bad ? -1 : 0;
}

int cli_cmd_workers(struct cli *c)
{
	char date[16];
	int64_t from, to, start2, end2;
	struct wsheets ws = { 0 };
	struct cli_out out = { 0 };
	struct cli_list *l = NULL;
	bool out_open = false;
	int code;

	if (c->date && (c->from || c->to)) {
		cli_error("workers takes --date D or --from D --to D, not both");
		return CLI_EXIT_USAGE;
	}
	if (!c->from != !c->to) {
		cli_error("workers needs both --from D and --to D");
		return CLI_EXIT_USAGE;
	}
	if (c->from) {
		if (cli_parse_day(c, c->from, date, &from, &end2) < 0 ||
		    cli_parse_day(c, c->to, date, &start2, &to) < 0)
			return CLI_EXIT_USAGE;
		if (to <= from) {
			cli_error("--to %s is before --from %s", c->to, c->from);
			return CLI_EXIT_USAGE;
		}
	} else if (cli_parse_day(c, c->date ? c->date : "today", date, &from, &to) < 0) {
		return CLI_EXIT_USAGE;
	}

	code = cli_db_open_ro(c);
	if (code != CLI_EXIT_OK)
		return cli_db_close(c, code);
	/* Configured workers first, so one who did nothing shows as 0. */
	for (size_t i = 0; i < c->cfg->n_cells; i++)
		for (size_t j = 0; j < c->cfg->cells[i].n_workers; j++)
			if (!wsheet_of(&ws, c->cfg->cells[i].workers[j])) {
				cli_error("out of memory");
				code = CLI_EXIT_FAIL;
				goto done;
			}
	if ((code = scan_events(c, from, to, &ws)) != CLI_EXIT_OK ||
	    (code = scan_claims(c, from, to, &ws)) != CLI_EXIT_OK)
		goto done;
	qsort(ws.v, ws.n, sizeof(*ws.v), cmp_sheet);

	if (cli_out_open(&out, c) < 0) {
		code = CLI_EXIT_FAIL;
		goto done;
	}
	out_open = true;
	if (c->format == CLI_FORMAT_HTML && workers_html_top(c, out.f, date, from, to) < 0) {
		code = cli_write_fail();
		goto done;
	}
	l = cli_list_begin(c, out.f, "workers", worker_cols,
	                   sizeof(worker_cols) / sizeof(worker_cols[0]));
	if (!l) {
		code = CLI_EXIT_FAIL;
		goto done;
	}
	for (size_t i = 0; i < ws.n; i++)
		if (emit(c, l, &ws.v[i]) < 0) {
			code = CLI_EXIT_FAIL;
			break;
		}
done:
	if (l && cli_list_end(l, code == CLI_EXIT_OK) < 0)
		code = CLI_EXIT_FAIL;
	if (l && code == CLI_EXIT_OK && c->format == CLI_FORMAT_HTML &&
	    html_page_end(out.f, c->lang, c->now) < 0)
		code = cli_write_fail();
	if (out_open && cli_out_close(&out, code == CLI_EXIT_OK) < 0)
		code = CLI_EXIT_FAIL;
	wsheets_free(&ws);
	return cli_db_close(c, code);
}
