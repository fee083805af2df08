/*
 * cli_query: the read-only commands that answer "what is going on" —
 * status (every cell now), events, rejected and alerts.
 *
 * `status` runs the daemon's own deadline engine over what the database
 * holds (known_since, last patrol per cell over patrol-presence types
 * from event_span, pauses), so the CLI and the alerts can never disagree
 * about which cell is overdue. Every query is cli_db's, the span probe
 * span.h's; this file turns their rows into listings.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "cli_db.h"
#include "deadline.h"
#include "html_page.h"
#include "render.h"
#include "span.h"

/* The served now page reloads itself this often (SPEC: "refreshing
 * itself"); a minute is finer than any deadline's grace. */
#define STATUS_REFRESH_S 60

/* ------------------------------------------------------------------ */
/* status                                                              */
/* ------------------------------------------------------------------ */

static const char *state_word(enum deadline_state s)
{
	switch (s) {
	case DEADLINE_OK:
		return "ok";
	case DEADLINE_DUE_SOON:
		return "due_soon";
	case DEADLINE_OVERDUE:
		return "overdue";
	case DEADLINE_PAUSED:
		return "paused";
	case DEADLINE_INACTIVE:
		return "inactive";
	}
	return "ok";
}

static const char *state_label(enum deadline_state s, enum timefmt_lang lang)
{
	static const char *const zh[] = { "正常", "即将到期", "超时", "暂停", "非巡查时段" };
	static const char *const en[] = { "ok", "due soon", "OVERDUE", "paused", "inactive" };
	unsigned i = (unsigned)s < 5 ? (unsigned)s : 0;
	return lang == TIMEFMT_ZH ? zh[i] : en[i];
}

struct status_cell {
	int64_t known; /* known_since, or now when the daemon has not seen it yet */
	int64_t last;  /* last patrol, 0: never */
	char *worker;  /* of the last patrol */
	bool has_pause;
	int64_t pause_until; /* DEADLINE_NEVER: until resumed */
	enum deadline_state state;
};

struct status_read {
	const struct config *cfg;
	struct status_cell *cells;
};

static int status_row_known(void *arg, const struct cli_db_known *row)
{
	struct status_read *r = arg;
	const struct config_cell *cc = config_cell_find(r->cfg, row->cell);
	if (cc)
		r->cells[cc - r->cfg->cells].known = row->known_since;
	return 0;
}

static int status_row_pause(void *arg, const struct cli_db_pause *row)
{
	struct status_read *r = arg;
	const struct config_cell *cc = config_cell_find(r->cfg, row->cell);
	if (!cc)
		return 0;
	struct status_cell *s = &r->cells[cc - r->cfg->cells];
	s->has_pause = true;
	s->pause_until = row->open_ended ? DEADLINE_NEVER : row->until;
	return 0;
}

static int status_read(struct cli *c, struct status_cell *cells)
{
	const struct config *cfg = c->cfg;
	struct status_read r = { .cfg = cfg, .cells = cells };
	sqlite3_stmt *st = NULL;
	int code = CLI_EXIT_FAIL;

	if (cli_db_each_known(c, status_row_known, &r) != CLI_EXIT_OK ||
	    cli_db_each_pause(c, INT64_MAX, status_row_pause, &r) != CLI_EXIT_OK)
		goto out;

	/* The daemon's own reading (span.h): one event_span probe per cell. */
	if (span_prepare(c->db, &st) != SQLITE_OK) {
		code = cli_db_fail(c, "cannot prepare a query");
		goto out;
	}
	for (size_t i = 0; i < cfg->n_cells; i++) {
		struct span_patrol p;
		if (span_last_patrol(st, cfg, cfg->cells[i].id, &p) != SQLITE_OK) {
			code = cli_db_fail(c, "reading last patrols");
			goto out;
		}
		if (!p.found)
			continue;
		cells[i].worker = strdup(p.worker);
		if (!cells[i].worker) {
			cli_error("out of memory");
			goto out;
		}
		cells[i].last = p.ts;
	}
	code = CLI_EXIT_OK;
out:
	sqlite3_finalize(st);
	return code;
}

/* Every listing ends the same way: finish the table (or JSON/CSV; HTML
 * and its page), then commit or discard the -o file; either failing fails
 * the command. */
static int listing_close(const struct cli *c, struct cli_list *l, struct cli_out *out, int code)
{
	if (l && cli_list_end(l, code == CLI_EXIT_OK) < 0)
		code = CLI_EXIT_FAIL;
	if (l && out && code == CLI_EXIT_OK && c->format == CLI_FORMAT_HTML &&
	    html_page_end(out->f, c->lang, c->now) < 0)
		code = cli_write_fail();
	if (out && cli_out_close(out, code == CLI_EXIT_OK) < 0)
		code = CLI_EXIT_FAIL;
	return code;
}

/* The now page's top: the refresh note when served, the time, and the
 * count of cells in each state, worst first (the reader looks for what
 * needs someone to go). */
static int status_html_top(const struct cli *c, FILE *f, const struct status_cell *cells, size_t n)
{
	static const enum deadline_state order[] = { DEADLINE_OVERDUE, DEADLINE_DUE_SOON,
		                                     DEADLINE_OK, DEADLINE_PAUSED,
		                                     DEADLINE_INACTIVE };
	const bool zh = c->lang == TIMEFMT_ZH;
	long count[5] = { 0 };
	char today[16];
	int bad;

	for (size_t i = 0; i < n; i++)
		count[(unsigned)cells[i].state < 5 ? cells[i].state : 0]++;
	bad = html_page_begin(f, &(struct html_page){ .lang = c->lang,
	                                              .title = zh ? "网格实时状态"
	                                                          : "Grid patrol: cells now",
	                                              .section = HTML_PAGE_NOW,
	                                              .web = c->web,
	                                              .refresh_s = STATUS_REFRESH_S }) < 0;
	timefmt_date(c->now, today, sizeof(today));
	bad |= fprintf(f, "<h1>%s</h1>\n<p class=\"meta\">%s ", zh ? "网格实时状态" : "Cells now",
	               today) < 0;
	bad |= html_page_time(f, c->now, c->now) < 0;
	bad |= fprintf(f, "　·　%s ", zh ? "时区" : "time zone") < 0;
	bad |= render_html_escaped(f, c->cfg->timezone) < 0;
	bad |= fputs("</p>\n", f) == EOF;
	if (c->web)
		bad |= fprintf(f,
		               zh ? "<p class=\"refresh\">本页每 %d 秒自动刷新。</p>\n"
		                  : "<p class=\"refresh\">This page refreshes itself every %d "
		                    "seconds.</p>\n",
		               STATUS_REFRESH_S) < 0;
	bad |= fputs("<div class=\"kpis\">", f) == EOF;
	for (size_t k = 0; k < 5; k++)
		bad |= html_page_kpi(f, count[order[k]], state_label(order[k], c->lang),
		                     order[k] == DEADLINE_OVERDUE ||
		                             order[k] == DEADLINE_DUE_SOON) < 0;
	bad |= fprintf(f,
	               zh ? "</div>\n<p class=\"lead\">共 %zu 个网格："
	                  : "</div>\n<p class=\"lead\">%zu cells: ",
	               n) < 0;
	for (size_t k = 0; k < 5; k++) {
		const char *label = state_label(order[k], c->lang);
		bad |= (zh ? fprintf(f, "%s%s %ld 个", k ? "，" : "", label, count[order[k]])
		           : fprintf(f, "%s%ld %s", k ? ", " : "", count[order[k]], label)) < 0;
	}
	bad |= fputs(zh ? "。</p>\n" : ".</p>\n", f) == EOF;
	return bad ? -1 : 0;
}

static const struct cli_col status_cols[] = {
	{ "id", "网格", "Cell", CLI_COL_ID, 0 },
	{ "name", "名称", "Name", 0, 30 },
	{ "state", "状态", "State", CLI_COL_BADGE, 0 },
	{ "last_patrol", NULL, NULL, CLI_COL_JSON_ONLY, 0 },
	{ "last_patrol_ts", "上次巡查", "Last patrol", CLI_COL_FLAT_ONLY, 0 },
	{ "last_patrol_worker", "巡查人", "Worker", CLI_COL_FLAT_ONLY | CLI_COL_ID, 0 },
	{ "due", "应巡查时间", "Due", 0, 0 },
};

int cli_cmd_status(struct cli *c)
{
	const struct config *cfg = c->cfg;
	size_t n = cfg->n_cells;
	struct status_cell *cells = calloc(n ? n : 1, sizeof(*cells));
	struct deadline_params *params = calloc(n ? n : 1, sizeof(*params));
	struct deadline *dl = deadline_new();
	struct cli_out out = { 0 };
	struct cli_list *l = NULL;
	bool out_open = false;
	int code;

	if (!cells || !params || !dl) {
		cli_error("out of memory");
		code = CLI_EXIT_FAIL;
		goto done;
	}
	for (size_t i = 0; i < n; i++)
		cells[i].known = c->now;
	code = cli_db_open_ro(c);
	if (code == CLI_EXIT_OK)
		code = status_read(c, cells);
	code = cli_db_close(c, code);
	if (code != CLI_EXIT_OK)
		goto done;

	for (size_t i = 0; i < n; i++) {
		const struct config_cell *cc = &cfg->cells[i];
		struct status_cell *s = &cells[i];
		params[i] = (struct deadline_params){ .interval_s = cc->interval_s,
			                              .grace_s = cc->grace_s,
			                              .repeat_s = cc->repeat_s,
			                              .active = cc->active };
		/* A pause that has ended restarted the count when it ended, as
		 * the daemon did when it saw the end pass. */
		int64_t ended = s->has_pause && s->pause_until <= c->now ? s->pause_until : 0;
		if (deadline_set(dl, (uint32_t)i, &params[i], s->known, s->last, ended) < 0) {
			cli_error("out of memory");
			code = CLI_EXIT_FAIL;
			goto done;
		}
		if (s->has_pause && s->pause_until > c->now)
			deadline_pause(dl, (uint32_t)i, s->pause_until, c->now);
	}

	for (size_t i = 0; i < n; i++)
		cells[i].state = deadline_state(dl, (uint32_t)i, c->now);
	if (cli_out_open(&out, c) < 0) {
		code = CLI_EXIT_FAIL;
		goto done;
	}
	out_open = true;
	if (c->format == CLI_FORMAT_HTML && status_html_top(c, out.f, cells, n) < 0) {
		code = cli_write_fail();
		goto done;
	}
	l = cli_list_begin(c, out.f, "cells", status_cols,
	                   sizeof(status_cols) / sizeof(status_cols[0]));
	if (!l) {
		code = CLI_EXIT_FAIL;
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		const struct config_cell *cc = &cfg->cells[i];
		enum deadline_state state = cells[i].state;
		int64_t due = deadline_due(dl, (uint32_t)i);
		json_t *lp = json_null();
		char ts[TIMEFMT_MAX];
		if (cells[i].last > 0) {
			timefmt_rfc3339(cells[i].last, ts, sizeof(ts));
			json_decref(lp);
			lp = json_pack("{s:s, s:s}", "ts", ts, "worker", cells[i].worker);
		}
		struct cli_val v[] = {
			{ .kind = CLI_V_STR, .s = cc->id },
			{ .kind = CLI_V_STR, .s = cc->name },
			{ .kind = CLI_V_STR,
			  .s = state_word(state),
			  .text = state_label(state, c->lang) },
			{ .kind = CLI_V_NULL, .json = lp },
			{ .kind = cells[i].last > 0 ? CLI_V_TIME : CLI_V_NULL, .i = cells[i].last },
			{ .kind = cells[i].last > 0 ? CLI_V_STR : CLI_V_NULL,
			  .s = cells[i].worker },
			/* A paused cell has no due time: its count restarts on resume. */
			{ .kind = state == DEADLINE_PAUSED || due == DEADLINE_NEVER ? CLI_V_NULL
			                                                            : CLI_V_TIME,
			  .i = due },
		};
		if (!lp) {
			cli_error("out of memory");
			code = CLI_EXIT_FAIL;
			goto done;
		}
		if (cli_list_row(l, v) < 0) {
			code = CLI_EXIT_FAIL;
			goto done;
		}
	}
done:
	code = listing_close(c, l, out_open ? &out : NULL, code);
	if (cells)
		for (size_t i = 0; i < n; i++)
			free(cells[i].worker);
	free(cells);
	deadline_free(dl);
	free(params);
	return code;
}

/* ------------------------------------------------------------------ */
/* Shared listing scaffolding                                          */
/* ------------------------------------------------------------------ */

/* ------------------------------------------------------------------ */
/* events                                                              */
/* ------------------------------------------------------------------ */

static const struct cli_col event_cols[] = {
	{ "id", "编号", "Id", CLI_COL_RIGHT | CLI_COL_NO_TEXT, 0 },
	{ "ts", "时间", "Time", 0, 0 },
	{ "cell", "网格", "Cell", 0, 0 },
	{ "worker", "巡查人", "Worker", 0, 0 },
	{ "type", "事件", "Type", 0, 0 },
	{ "value", "读数", "Value", CLI_COL_RIGHT, 0 },
	{ "lat", "纬度", "Lat", CLI_COL_NO_TEXT, 0 },
	{ "lon", "经度", "Lon", CLI_COL_NO_TEXT, 0 },
	{ "note", "备注", "Note", CLI_COL_DEVICE, 40 },
	{ "photo", "照片", "Photo", CLI_COL_DEVICE | CLI_COL_NO_TEXT, 0 },
	{ "flags", "标记", "Flags", 0, 0 },
	{ "msg_id", "消息号", "Message id", CLI_COL_DEVICE | CLI_COL_NO_TEXT, 0 },
	{ "recv_ms", "接收", "Received", CLI_COL_NO_TEXT, 0 },
};

static struct cli_val val_str(const char *s)
{
	if (!s)
		return (struct cli_val){ .kind = CLI_V_NULL };
	return (struct cli_val){ .kind = CLI_V_STR, .s = s };
}

static struct cli_val val_int(int64_t i)
{
	return (struct cli_val){ .kind = CLI_V_INT, .i = i };
}

static struct cli_val val_real(bool has, double d)
{
	if (!has)
		return (struct cli_val){ .kind = CLI_V_NULL };
	return (struct cli_val){ .kind = CLI_V_REAL, .d = d };
}

int cli_cmd_events(struct cli *c)
{
	struct cli_db_events_filter flt = {
		.cell = c->cell,
		.worker = c->worker,
		.type = c->type,
		.since = INT64_MIN,
		.until = INT64_MAX,
		.limit = -1,
	};
	struct cli_db_cursor *q = NULL;
	struct cli_out out = { 0 };
	struct cli_list *l = NULL;
	bool out_open = false, more;
	int code;

	if ((c->since && cli_parse_time(c, "--since", c->since, &flt.since) < 0) ||
	    (c->until && cli_parse_time(c, "--until", c->until, &flt.until) < 0))
		return CLI_EXIT_USAGE;
	if (c->limit) {
		char *end;
		errno = 0;
		long long v = strtoll(c->limit, &end, 10);
		if (errno || end == c->limit || *end || v < 0) {
			cli_error("bad --limit '%s' (a count, 0 or more)", c->limit);
			return CLI_EXIT_USAGE;
		}
		flt.limit = v;
	}

	code = cli_db_open_ro(c);
	if (code != CLI_EXIT_OK)
		return cli_db_close(c, code);
	if ((code = cli_db_events_open(c, &flt, &q)) != CLI_EXIT_OK)
		goto done;
	if (cli_out_open(&out, c) < 0) {
		code = CLI_EXIT_FAIL;
		goto done;
	}
	out_open = true;
	l = cli_list_begin(c, out.f, "events", event_cols,
	                   sizeof(event_cols) / sizeof(event_cols[0]));
	if (!l) {
		code = CLI_EXIT_FAIL;
		goto done;
	}
	for (;;) {
		struct cli_db_event_row e;
		if ((code = cli_db_events_next(c, q, &e, &more)) != CLI_EXIT_OK || !more)
			break;
		struct cli_val v[] = {
			val_int(e.id),
			{ .kind = CLI_V_TIME, .i = e.ts },
			val_str(e.cell),
			val_str(e.worker),
			val_str(e.type),
			val_real(e.has_value, e.value),
			val_real(e.has_lat, e.lat),
			val_real(e.has_lon, e.lon),
			val_str(e.note),
			val_str(e.photo),
			val_str(e.flags),
			val_str(e.msg_id),
			val_int(e.recv_ms),
		};
		if (cli_list_row(l, v) < 0) {
			code = CLI_EXIT_FAIL;
			goto done;
		}
	}
done:
	code = listing_close(c, l, out_open ? &out : NULL, code);
	cli_db_cursor_close(q);
	return cli_db_close(c, code);
}

/* ------------------------------------------------------------------ */
/* rejected                                                            */
/* ------------------------------------------------------------------ */

static const struct cli_col rejected_cols[] = {
	{ "id", "编号", "Id", CLI_COL_RIGHT | CLI_COL_NO_TEXT, 0 },
	{ "recv", "接收时间", "Received", 0, 0 },
	{ "reason", "原因", "Reason", 0, 0 },
	{ "topic", "主题", "Topic", CLI_COL_DEVICE, 40 },
	{ "detail", "说明", "Detail", 0, 40 },
	{ "payload", "内容", "Payload", CLI_COL_DEVICE, 48 },
	{ "payload_binary", NULL, NULL, CLI_COL_JSON_ONLY, 0 },
	{ "payload_len", "长度", "Bytes", CLI_COL_RIGHT, 0 },
};

int cli_cmd_rejected(struct cli *c)
{
	int64_t since = INT64_MIN / 1000;
	struct cli_db_cursor *q = NULL;
	struct cli_out out = { 0 };
	struct cli_list *l = NULL;
	bool out_open = false, more;
	int code;

	if (c->since && cli_parse_time(c, "--since", c->since, &since) < 0)
		return CLI_EXIT_USAGE;
	code = cli_db_open_ro(c);
	if (code != CLI_EXIT_OK)
		return cli_db_close(c, code);
	if ((code = cli_db_rejected_open(c, since * 1000, c->reason, &q)) != CLI_EXIT_OK)
		goto done;
	if (cli_out_open(&out, c) < 0) {
		code = CLI_EXIT_FAIL;
		goto done;
	}
	out_open = true;
	l = cli_list_begin(c, out.f, "rejected", rejected_cols,
	                   sizeof(rejected_cols) / sizeof(rejected_cols[0]));
	if (!l) {
		code = CLI_EXIT_FAIL;
		goto done;
	}
	for (;;) {
		struct cli_db_rejected_row r;
		if ((code = cli_db_rejected_next(c, q, &r, &more)) != CLI_EXIT_OK || !more)
			break;
		/* A payload that was not UTF-8 was stored as a blob; it is shown
		 * hex-escaped so that it can be read and never reaches a
		 * terminal or a JSON consumer as raw bytes. */
		char *esc = NULL;
		if (r.payload_blob) {
			esc = cli_escape_bytes(r.payload, r.payload_bytes);
			if (!esc) {
				cli_error("out of memory");
				code = CLI_EXIT_FAIL;
				goto done;
			}
		}
		struct cli_val v[] = {
			val_int(r.id),
			{ .kind = CLI_V_TIME, .i = r.recv_ms / 1000 },
			val_str(r.reason),
			val_str(r.topic),
			val_str(r.detail),
			val_str(r.payload_blob ? esc : r.payload),
			{ .kind = CLI_V_NULL, .json = json_boolean(r.payload_blob) },
			val_int(r.payload_len),
		};
		int rr = cli_list_row(l, v);
		free(esc);
		if (rr < 0) {
			code = CLI_EXIT_FAIL;
			goto done;
		}
	}
done:
	code = listing_close(c, l, out_open ? &out : NULL, code);
	cli_db_cursor_close(q);
	return cli_db_close(c, code);
}

/* ------------------------------------------------------------------ */
/* alerts                                                              */
/* ------------------------------------------------------------------ */

static const struct cli_col alert_cols[] = {
	{ "id", "编号", "Id", CLI_COL_RIGHT, 0 },
	{ "at", "时间", "Time", 0, 0 },
	{ "kind", "类型", "Kind", CLI_COL_ID, 0 },
	{ "cell", "网格", "Cell", CLI_COL_ID, 0 },
	{ "repeat", "重复", "Repeat", CLI_COL_RIGHT | CLI_COL_NO_TEXT, 0 },
	{ "text", "内容", "Text", 0, 50 },
	{ "claimed_by", "认领人", "Claimed by", CLI_COL_ID, 0 },
	{ "claimed_at", "认领时间", "Claimed at", CLI_COL_NO_TEXT, 0 },
	{ "to_claim_s", "认领用时", "To claim", CLI_COL_RIGHT, 0 },
	{ "to_resolve_s", "处理用时", "To resolve", CLI_COL_RIGHT, 0 },
	{ "delivery", "送达情况", "Delivery", 0, 0 },
};

static const char *delivery_label(const char *state, enum timefmt_lang lang)
{
	static const char *const words[][3] = {
		{ "pending", "待发送", "pending" },
		{ "inflight", "发送中", "sending" },
		{ "delivered", "已送达", "delivered" },
		{ "expired", "已放弃", "gave up" },
	};
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcmp(state, words[i][0]) == 0)
			return words[i][lang == TIMEFMT_ZH ? 1 : 2];
	return state;
}

/* One alert being assembled from its joined rows (one per sink). */
struct alert_acc {
	bool have;
	int64_t id, at, repeat;
	char *kind, *cell, *text, *claimed_by;
	bool cell_null;
	bool has_claimed_at, has_resolved_at;
	int64_t claimed_at, resolved_at;
	char to_claim[TIMEFMT_MAX], to_resolve[TIMEFMT_MAX];
	json_t *deliveries;
	char flat[512], label[512];
};

static void acc_clear(struct alert_acc *a)
{
	free(a->kind);
	free(a->cell);
	free(a->text);
	free(a->claimed_by);
	json_decref(a->deliveries);
	memset(a, 0, sizeof(*a));
}

static void str_append(char *buf, size_t len, const char *s)
{
	size_t n = strlen(buf);
	if (n < len - 1)
		snprintf(buf + n, len - n, "%s", s);
}

static int acc_emit(struct cli_list *l, struct alert_acc *a)
{
	struct cli_val v[] = {
		{ .kind = CLI_V_INT, .i = a->id },
		{ .kind = CLI_V_TIME, .i = a->at },
		{ .kind = CLI_V_STR, .s = a->kind },
		{ .kind = a->cell_null ? CLI_V_NULL : CLI_V_STR, .s = a->cell },
		{ .kind = CLI_V_INT, .i = a->repeat },
		{ .kind = CLI_V_STR, .s = a->text },
		{ .kind = a->claimed_by ? CLI_V_STR : CLI_V_NULL, .s = a->claimed_by },
		{ .kind = a->has_claimed_at ? CLI_V_TIME : CLI_V_NULL, .i = a->claimed_at },
		{ .kind = a->has_claimed_at ? CLI_V_INT : CLI_V_NULL,
		  .i = a->claimed_at - a->at,
		  .text = a->to_claim },
		{ .kind = a->has_resolved_at ? CLI_V_INT : CLI_V_NULL,
		  .i = a->resolved_at - a->at,
		  .text = a->to_resolve },
		{ .kind = CLI_V_STR,
		  .s = a->flat,
		  .json = a->deliveries,
		  .text = a->label[0] ? a->label : "—" },
	};
	a->deliveries = NULL; /* the row takes it */
	int r = cli_list_row(l, v);
	acc_clear(a);
	return r;
}

/* The alerts page's heading: what the listing holds (since when, only
 * the undelivered) and the zone its times are in. */
static int alerts_html_top(const struct cli *c, FILE *f, int64_t since)
{
	const bool zh = c->lang == TIMEFMT_ZH;
	const char *title = zh ? "提醒记录" : "Alerts";
	int bad = html_page_begin(f, &(struct html_page){ .lang = c->lang,
	                                                  .title = title,
	                                                  .section = HTML_PAGE_ALERTS,
	                                                  .web = c->web }) < 0;
	bad |= fprintf(f, "<h1>%s</h1>\n<p class=\"meta\">", title) < 0;
	if (since != INT64_MIN) {
		bad |= fputs(zh ? "自 " : "since ", f) == EOF;
		bad |= html_page_time(f, since, c->now) < 0;
		bad |= fputs(zh ? " 起　·　" : "　·　", f) == EOF;
	}
	if (c->pending)
		bad |= fputs(zh ? "仅未送达的提醒　·　" : "only alerts not yet delivered　·　",
		             f) == EOF;
	bad |= fprintf(f, "%s ", zh ? "时区" : "time zone") < 0;
	bad |= render_html_escaped(f, c->cfg->timezone) < 0;
	bad |= fputs("　·　", f) == EOF;
	bad |= fputs(zh ? "截至 " : "as of ", f) == EOF;
	bad |= html_page_time(f, c->now, c->now) < 0;
	bad |= fputs("</p>\n", f) == EOF;
	return bad ? -1 : 0;
}

int cli_cmd_alerts(struct cli *c)
{
	int64_t since = INT64_MIN;
	struct cli_db_cursor *q = NULL;
	struct cli_out out = { 0 };
	struct cli_list *l = NULL;
	struct alert_acc a = { 0 };
	bool out_open = false, more;
	int code;

	if (c->since && cli_parse_time(c, "--since", c->since, &since) < 0)
		return CLI_EXIT_USAGE;
	code = cli_db_open_ro(c);
	if (code != CLI_EXIT_OK)
		return cli_db_close(c, code);
	if ((code = cli_db_alerts_open(c, since, c->pending, &q)) != CLI_EXIT_OK)
		goto done;
	if (cli_out_open(&out, c) < 0) {
		code = CLI_EXIT_FAIL;
		goto done;
	}
	out_open = true;
	if (c->format == CLI_FORMAT_HTML && alerts_html_top(c, out.f, since) < 0) {
		code = cli_write_fail();
		goto done;
	}
	l = cli_list_begin(c, out.f, "alerts", alert_cols,
	                   sizeof(alert_cols) / sizeof(alert_cols[0]));
	if (!l) {
		code = CLI_EXIT_FAIL;
		goto done;
	}
	for (;;) {
		struct cli_db_alert_row r;
		if ((code = cli_db_alerts_next(c, q, &r, &more)) != CLI_EXIT_OK)
			goto done;
		if (!more)
			break;
		if (a.have && a.id != r.id && acc_emit(l, &a) < 0) {
			code = CLI_EXIT_FAIL;
			goto done;
		}
		if (!a.have) {
			a.have = true;
			a.id = r.id;
			a.at = r.at;
			a.repeat = r.repeat;
			a.kind = strdup(r.kind);
			a.cell_null = !r.cell;
			a.cell = strdup(r.cell ? r.cell : "");
			a.text = strdup(r.text);
			a.deliveries = json_array();
			/* Claims: who, and how long the task waited for a claim
			 * and for its end (SPEC, Claims); durations shown in
			 * hours and minutes, given in seconds in JSON and CSV. */
			a.claimed_by = r.claimed_by ? strdup(r.claimed_by) : NULL;
			a.has_claimed_at = r.has_claimed_at;
			a.claimed_at = r.claimed_at;
			a.has_resolved_at = r.has_resolved_at;
			a.resolved_at = r.resolved_at;
			if (a.has_claimed_at)
				timefmt_duration(a.claimed_at - a.at, c->lang, a.to_claim,
				                 sizeof(a.to_claim));
			if (a.has_resolved_at)
				timefmt_duration(a.resolved_at - a.at, c->lang, a.to_resolve,
				                 sizeof(a.to_resolve));
			if (!a.kind || !a.cell || !a.text || !a.deliveries ||
			    (r.claimed_by && !a.claimed_by)) {
				cli_error("out of memory");
				code = CLI_EXIT_FAIL;
				goto done;
			}
		}
		if (!r.sink)
			continue; /* no sink wanted this alert */
		const char *sink = r.sink;
		const char *state = r.state ? r.state : "pending";
		int64_t tries = r.tries;
		char did[160], tried[48];
		/* A delivery first tried from memory keeps the id the sink saw
		 * then (outbox_next_due does the same). */
		if (r.ext_id)
			snprintf(did, sizeof(did), "%s", r.ext_id);
		else
			snprintf(did, sizeof(did), "%s-%06lld", sink, (long long)r.delivery);
		json_t *d = json_pack("{s:s, s:s, s:s, s:I}", "sink", sink, "delivery_id", did,
		                      "state", state, "tries", (json_int_t)tries);
		if (!d) {
			cli_error("out of memory");
			code = CLI_EXIT_FAIL;
			goto done;
		}
		char done_ts[TIMEFMT_MAX];
		json_t *le = r.last_error ? json_string(r.last_error) : json_null();
		json_t *dn = json_null();
		if (r.has_done) {
			timefmt_rfc3339(r.done_ms / 1000, done_ts, sizeof(done_ts));
			json_decref(dn);
			dn = json_string(done_ts);
		}
		if (json_object_set_new(d, "last_error", le) < 0 ||
		    json_object_set_new(d, "done", dn) < 0 ||
		    json_array_append_new(a.deliveries, d) < 0) {
			cli_error("out of memory");
			code = CLI_EXIT_FAIL;
			goto done;
		}
		if (a.flat[0]) {
			str_append(a.flat, sizeof(a.flat), ";");
			str_append(a.label, sizeof(a.label), c->lang == TIMEFMT_ZH ? "；" : "; ");
		}
		str_append(a.flat, sizeof(a.flat), sink);
		str_append(a.flat, sizeof(a.flat), ":");
		str_append(a.flat, sizeof(a.flat), state);
		str_append(a.label, sizeof(a.label), sink);
		str_append(a.label, sizeof(a.label), " ");
		str_append(a.label, sizeof(a.label), delivery_label(state, c->lang));
		if (strcmp(state, "delivered") != 0 && tries > 0) {
			snprintf(tried, sizeof(tried),
			         c->lang == TIMEFMT_ZH ? "（已试%lld次）" : " (%lld tries)",
			         (long long)tries);
			str_append(a.label, sizeof(a.label), tried);
		}
	}
	if (a.have && acc_emit(l, &a) < 0)
		code = CLI_EXIT_FAIL;
done:
	acc_clear(&a);
	code = listing_close(c, l, out_open ? &out : NULL, code);
	cli_db_cursor_close(q);
	return cli_db_close(c, code);
}
