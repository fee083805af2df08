/*
 * cli_query: the read-only commands that answer "what is going on" —
 * status (every cell now), events, rejected and alerts.
 *
 * `status` runs the daemon's own deadline engine over what the database
 * holds (known_since, last patrol per cell over patrol-presence types
 * from event_span, pauses), so the CLI and the alerts can never disagree
 * about which cell is overdue. Listings build their SQL from fixed fragments for the
 * filters actually given, so each filter can use its index; every value
 * is bound, never pasted into the text.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "cli_db.h"
#include "deadline.h"
#include "span.h"

/* ------------------------------------------------------------------ */
/* status                                                              */
/* ------------------------------------------------------------------ */

static const char *state_word(enum deadline_state s)
{
	switch (s) {
	case DEADLINE_OK: return "ok";
	case DEADLINE_DUE_SOON: return "due_soon";
	case DEADLINE_OVERDUE: return "overdue";
	case DEADLINE_PAUSED: return "paused";
	case DEADLINE_INACTIVE: return "inactive";
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
	int64_t known;          /* known_since, or now when the daemon has not seen it yet */
	int64_t last;           /* last patrol, 0: never */
	char *worker;           /* of the last patrol */
	bool has_pause;
	int64_t pause_until;    /* DEADLINE_NEVER: until resumed */
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

/* Every listing ends the same way: finish the table (or JSON/CSV), then
 * commit or discard the -o file; either failing fails the command. */
static int listing_close(struct cli_list *l, struct cli_out *out, int code)
{
	if (l && cli_list_end(l, code == CLI_EXIT_OK) < 0)
		code = CLI_EXIT_FAIL;
	if (out && cli_out_close(out, code == CLI_EXIT_OK) < 0)
		code = CLI_EXIT_FAIL;
	return code;
}

static const struct cli_col status_cols[] = {
	{ "id", "网格", "Cell", 0, 0 },
	{ "name", "名称", "Name", 0, 30 },
	{ "state", "状态", "State", 0, 0 },
	{ "last_patrol", NULL, NULL, CLI_COL_JSON_ONLY, 0 },
	{ "last_patrol_ts", "上次巡查", "Last patrol", CLI_COL_FLAT_ONLY, 0 },
	{ "last_patrol_worker", "巡查人", "Worker", CLI_COL_FLAT_ONLY, 0 },
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

	if (cli_out_open(&out, c->out_path) < 0) {
		code = CLI_EXIT_FAIL;
		goto done;
	}
	out_open = true;
	l = cli_list_begin(c, out.f, "cells", status_cols,
	                   sizeof(status_cols) / sizeof(status_cols[0]));
	if (!l) {
		code = CLI_EXIT_FAIL;
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		const struct config_cell *cc = &cfg->cells[i];
		enum deadline_state state = deadline_state(dl, (uint32_t)i, c->now);
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
			{ .kind = CLI_V_STR, .s = state_word(state),
			  .text = state_label(state, c->lang) },
			{ .kind = CLI_V_NULL, .json = lp },
			{ .kind = cells[i].last > 0 ? CLI_V_TIME : CLI_V_NULL, .i = cells[i].last },
			{ .kind = cells[i].last > 0 ? CLI_V_STR : CLI_V_NULL, .s = cells[i].worker },
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
	code = listing_close(l, out_open ? &out : NULL, code);
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

/* Append a fixed SQL fragment; the buffer is sized for every fragment of
 * a command at once, so this only guards against a future edit. */
static int sql_add(char *buf, size_t len, const char *frag)
{
	size_t n = strlen(buf);
	if (n + strlen(frag) + 1 > len)
		return -1;
	memcpy(buf + n, frag, strlen(frag) + 1);
	return 0;
}

static int bind_text_opt(struct cli *c, sqlite3_stmt *st, int idx, const char *v)
{
	if (v && sqlite3_bind_text(st, idx, v, -1, SQLITE_STATIC) != SQLITE_OK)
		return cli_db_fail(c, "binding");
	return CLI_EXIT_OK;
}

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

static struct cli_val col_val(sqlite3_stmt *st, int i)
{
	switch (sqlite3_column_type(st, i)) {
	case SQLITE_NULL: return (struct cli_val){ .kind = CLI_V_NULL };
	case SQLITE_INTEGER:
		return (struct cli_val){ .kind = CLI_V_INT, .i = sqlite3_column_int64(st, i) };
	case SQLITE_FLOAT:
		return (struct cli_val){ .kind = CLI_V_REAL, .d = sqlite3_column_double(st, i) };
	default:
		return (struct cli_val){ .kind = CLI_V_STR, .s = cli_col_text(st, i) };
	}
}

int cli_cmd_events(struct cli *c)
{
	char sql[1024] = "SELECT * FROM (SELECT id, ts, cell, worker, type, value, lat, lon, "
	                 "note, photo, flags, msg_id, recv_ms FROM event WHERE ts >= ?4 AND ts < ?5";
	int64_t since = INT64_MIN, until = INT64_MAX, limit = -1;
	sqlite3_stmt *st = NULL;
	struct cli_out out = { 0 };
	struct cli_list *l = NULL;
	bool out_open = false;
	int code, rc;

	if ((c->since && cli_parse_time(c, "--since", c->since, &since) < 0) ||
	    (c->until && cli_parse_time(c, "--until", c->until, &until) < 0))
		return CLI_EXIT_USAGE;
	if (c->limit) {
		char *end;
		errno = 0;
		long long v = strtoll(c->limit, &end, 10);
		if (errno || end == c->limit || *end || v < 0) {
			cli_error("bad --limit '%s' (a count, 0 or more)", c->limit);
			return CLI_EXIT_USAGE;
		}
		limit = v;
	}
	if ((c->cell && sql_add(sql, sizeof(sql), " AND cell = ?1") < 0) ||
	    (c->worker && sql_add(sql, sizeof(sql), " AND worker = ?2") < 0) ||
	    (c->type && sql_add(sql, sizeof(sql), " AND type = ?3") < 0) ||
	    sql_add(sql, sizeof(sql), " ORDER BY ts DESC, id DESC LIMIT ?6) ORDER BY ts, id") < 0) {
		cli_error("query too long");
		return CLI_EXIT_FAIL;
	}

	code = cli_db_open_ro(c);
	if (code != CLI_EXIT_OK)
		return cli_db_close(c, code);
	if ((code = cli_prepare(c, sql, &st)) != CLI_EXIT_OK ||
	    (code = bind_text_opt(c, st, 1, c->cell)) != CLI_EXIT_OK ||
	    (code = bind_text_opt(c, st, 2, c->worker)) != CLI_EXIT_OK ||
	    (code = bind_text_opt(c, st, 3, c->type)) != CLI_EXIT_OK)
		goto done;
	if (sqlite3_bind_int64(st, 4, since) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 5, until) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 6, limit) != SQLITE_OK) {
		code = cli_db_fail(c, "binding");
		goto done;
	}
	if (cli_out_open(&out, c->out_path) < 0) {
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
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct cli_val v[13];
		for (int i = 0; i < 13; i++)
			v[i] = col_val(st, i);
		v[1].kind = CLI_V_TIME;
		if (cli_list_row(l, v) < 0) {
			code = CLI_EXIT_FAIL;
			goto done;
		}
	}
	if (rc != SQLITE_DONE)
		code = cli_db_fail(c, "reading events");
done:
	code = listing_close(l, out_open ? &out : NULL, code);
	sqlite3_finalize(st);
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
	char sql[512] = "SELECT id, recv_ms, reason, topic, detail, payload, payload_len "
	                "FROM rejected WHERE recv_ms >= ?1";
	int64_t since = INT64_MIN / 1000;
	sqlite3_stmt *st = NULL;
	struct cli_out out = { 0 };
	struct cli_list *l = NULL;
	bool out_open = false;
	int code, rc;

	if (c->since && cli_parse_time(c, "--since", c->since, &since) < 0)
		return CLI_EXIT_USAGE;
	if ((c->reason && sql_add(sql, sizeof(sql), " AND reason = ?2") < 0) ||
	    sql_add(sql, sizeof(sql), " ORDER BY recv_ms, id") < 0) {
		cli_error("query too long");
		return CLI_EXIT_FAIL;
	}
	code = cli_db_open_ro(c);
	if (code != CLI_EXIT_OK)
		return cli_db_close(c, code);
	if ((code = cli_prepare(c, sql, &st)) != CLI_EXIT_OK ||
	    (code = bind_text_opt(c, st, 2, c->reason)) != CLI_EXIT_OK)
		goto done;
	if (sqlite3_bind_int64(st, 1, since * 1000) != SQLITE_OK) {
		code = cli_db_fail(c, "binding");
		goto done;
	}
	if (cli_out_open(&out, c->out_path) < 0) {
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
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		/* A payload that was not UTF-8 was stored as a blob; it is shown
		 * hex-escaped so that it can be read and never reaches a
		 * terminal or a JSON consumer as raw bytes. */
		bool blob = sqlite3_column_type(st, 5) == SQLITE_BLOB;
		char *esc = NULL;
		if (blob) {
			const void *p = sqlite3_column_blob(st, 5);
			int n = sqlite3_column_bytes(st, 5);
			esc = cli_escape_bytes(p ? p : "", (size_t)(n > 0 ? n : 0));
			if (!esc) {
				cli_error("out of memory");
				code = CLI_EXIT_FAIL;
				goto done;
			}
		}
		struct cli_val v[] = {
			col_val(st, 0),
			{ .kind = CLI_V_TIME, .i = sqlite3_column_int64(st, 1) / 1000 },
			col_val(st, 2),
			col_val(st, 3),
			col_val(st, 4),
			blob ? (struct cli_val){ .kind = CLI_V_STR, .s = esc } : col_val(st, 5),
			{ .kind = CLI_V_NULL, .json = json_boolean(blob) },
			col_val(st, 6),
		};
		int r = cli_list_row(l, v);
		free(esc);
		if (r < 0) {
			code = CLI_EXIT_FAIL;
			goto done;
		}
	}
	if (rc != SQLITE_DONE)
		code = cli_db_fail(c, "reading rejected messages");
done:
	code = listing_close(l, out_open ? &out : NULL, code);
	sqlite3_finalize(st);
	return cli_db_close(c, code);
}

/* ------------------------------------------------------------------ */
/* alerts                                                              */
/* ------------------------------------------------------------------ */

static const struct cli_col alert_cols[] = {
	{ "id", "编号", "Id", CLI_COL_RIGHT, 0 },
	{ "at", "时间", "Time", 0, 0 },
	{ "kind", "类型", "Kind", 0, 0 },
	{ "cell", "网格", "Cell", 0, 0 },
	{ "repeat", "重复", "Repeat", CLI_COL_RIGHT | CLI_COL_NO_TEXT, 0 },
	{ "text", "内容", "Text", 0, 50 },
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
	char *kind, *cell, *text;
	bool cell_null;
	json_t *deliveries;
	char flat[512], label[512];
};

static void acc_clear(struct alert_acc *a)
{
	free(a->kind);
	free(a->cell);
	free(a->text);
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
		{ .kind = CLI_V_STR, .s = a->flat, .json = a->deliveries,
		  .text = a->label[0] ? a->label : "—" },
	};
	a->deliveries = NULL; /* the row takes it */
	int r = cli_list_row(l, v);
	acc_clear(a);
	return r;
}

int cli_cmd_alerts(struct cli *c)
{
	char sql[1024] =
		"SELECT a.id, a.at, a.kind, a.cell, a.repeat, a.text, o.sink, o.delivery_id, "
		"d.state, d.tries, d.last_error, d.done_ms, d.ext_id FROM alert a "
		"LEFT JOIN outbox o ON o.alert_id = a.id "
		"LEFT JOIN delivery d ON d.id = o.delivery_id WHERE a.at >= ?1";
	int64_t since = INT64_MIN;
	sqlite3_stmt *st = NULL;
	struct cli_out out = { 0 };
	struct cli_list *l = NULL;
	struct alert_acc a = { 0 };
	bool out_open = false;
	int code, rc;

	if (c->since && cli_parse_time(c, "--since", c->since, &since) < 0)
		return CLI_EXIT_USAGE;
	if ((c->pending &&
	     sql_add(sql, sizeof(sql),
	             " AND EXISTS (SELECT 1 FROM outbox o2 JOIN delivery d2 ON "
	             "d2.id = o2.delivery_id WHERE o2.alert_id = a.id AND "
	             "d2.state <> 'delivered')") < 0) ||
	    sql_add(sql, sizeof(sql), " ORDER BY a.id, o.sink") < 0) {
		cli_error("query too long");
		return CLI_EXIT_FAIL;
	}
	code = cli_db_open_ro(c);
	if (code != CLI_EXIT_OK)
		return cli_db_close(c, code);
	if ((code = cli_prepare(c, sql, &st)) != CLI_EXIT_OK)
		goto done;
	if (sqlite3_bind_int64(st, 1, since) != SQLITE_OK) {
		code = cli_db_fail(c, "binding");
		goto done;
	}
	if (cli_out_open(&out, c->out_path) < 0) {
		code = CLI_EXIT_FAIL;
		goto done;
	}
	out_open = true;
	l = cli_list_begin(c, out.f, "alerts", alert_cols,
	                   sizeof(alert_cols) / sizeof(alert_cols[0]));
	if (!l) {
		code = CLI_EXIT_FAIL;
		goto done;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		if (a.have && a.id != id && acc_emit(l, &a) < 0) {
			code = CLI_EXIT_FAIL;
			goto done;
		}
		if (!a.have) {
			a.have = true;
			a.id = id;
			a.at = sqlite3_column_int64(st, 1);
			a.repeat = sqlite3_column_int64(st, 4);
			a.kind = strdup(cli_col_text(st, 2));
			a.cell_null = sqlite3_column_type(st, 3) == SQLITE_NULL;
			a.cell = strdup(cli_col_text(st, 3));
			a.text = strdup(cli_col_text(st, 5));
			a.deliveries = json_array();
			if (!a.kind || !a.cell || !a.text || !a.deliveries) {
				cli_error("out of memory");
				code = CLI_EXIT_FAIL;
				goto done;
			}
		}
		if (sqlite3_column_type(st, 6) == SQLITE_NULL)
			continue; /* no sink wanted this alert */
		const char *sink = cli_col_text(st, 6);
		const char *state = sqlite3_column_type(st, 8) == SQLITE_NULL ? "pending"
		                                                               : cli_col_text(st, 8);
		int64_t tries = sqlite3_column_int64(st, 9);
		char did[160], tried[48];
		/* A delivery first tried from memory keeps the id the sink saw
		 * then (outbox_next_due does the same). */
		if (sqlite3_column_type(st, 12) != SQLITE_NULL)
			snprintf(did, sizeof(did), "%s", cli_col_text(st, 12));
		else
			snprintf(did, sizeof(did), "%s-%06lld", sink,
			         (long long)sqlite3_column_int64(st, 7));
		json_t *d = json_pack("{s:s, s:s, s:s, s:I}", "sink", sink, "delivery_id", did,
		                      "state", state, "tries", (json_int_t)tries);
		if (!d) {
			cli_error("out of memory");
			code = CLI_EXIT_FAIL;
			goto done;
		}
		char done_ts[TIMEFMT_MAX];
		json_t *le = sqlite3_column_type(st, 10) == SQLITE_NULL
		             ? json_null() : json_string(cli_col_text(st, 10));
		json_t *dn = json_null();
		if (sqlite3_column_type(st, 11) != SQLITE_NULL) {
			timefmt_rfc3339(sqlite3_column_int64(st, 11) / 1000, done_ts, sizeof(done_ts));
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
	if (rc != SQLITE_DONE) {
		code = cli_db_fail(c, "reading alerts");
		goto done;
	}
	if (a.have && acc_emit(l, &a) < 0)
		code = CLI_EXIT_FAIL;
done:
	acc_clear(&a);
	code = listing_close(l, out_open ? &out : NULL, code);
	sqlite3_finalize(st);
	return cli_db_close(c, code);
}
