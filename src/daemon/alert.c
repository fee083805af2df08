/*
 * alert: decisions and words.
 *
 * Texts are written for a village WeChat group: short, the cell's own name,
 * durations in hours and minutes, local clock times, and who should act.
 * Each alert also carries a JSON object (SPEC "Delivery JSON", one entry of
 * "alerts") so a bridge script never has to parse the text.
 *
 * The database is asked only when an alert is raised (who patrolled last,
 * today's figures for the digest): alerts are rare, messages are not.
 */
#include "alert.h"

#include <jansson.h>
#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "span.h"
#include "strmap.h"
#include "timefmt.h"

#define ALERT_TEXT_MAX 2048

struct alert_level {
	char *key; /* "cell\x1ftype"; first, as strmap wants it */
	int level; /* 0 normal, 1 warn, 2 alarm */
};

struct alert {
	const struct config *cfg;
	struct store *store;
	struct outbox *outbox;
	sqlite3_stmt *last_patrol;
	struct alert_level *lv; /* dense: a reset walks only the levels in use */
	size_t lv_cap, lv_n;
	struct strmap lv_index; /* finds a level in lv by its key */
	bool stale_levels;      /* configuration changed since alert_restore */
};

static enum timefmt_lang alert_lang(const struct alert *a)
{
	return strcmp(a->cfg->alerts.language, "en") == 0 ? TIMEFMT_EN : TIMEFMT_ZH;
}

/* ------------------------------------------------------------ levels */

static struct alert_level *alert_level_slot(struct alert *a, const char *cell, const char *type,
                                            bool create)
{
	char key[2 * TOPIC_SEGMENT_MAX + 2];
	snprintf(key, sizeof(key), "%s\x1f%s", cell, type);
	int64_t i = strmap_find(&a->lv_index, a->lv, sizeof(*a->lv), key);
	if (i >= 0)
		return &a->lv[i];
	if (!create)
		return NULL;
	if (a->lv_n == a->lv_cap) {
		size_t ncap = a->lv_cap ? a->lv_cap * 2 : 64;
		struct alert_level *nv = realloc(a->lv, ncap * sizeof(*nv));
		if (!nv)
			return NULL;
		a->lv = nv;
		a->lv_cap = ncap;
	}
	char *k = strdup(key);
	if (!k)
		return NULL;
	a->lv[a->lv_n] = (struct alert_level){ k, 0 };
	if (strmap_insert(&a->lv_index, a->lv, sizeof(*a->lv), (uint32_t)a->lv_n) == -2) {
		free(k);
		return NULL;
	}
	return &a->lv[a->lv_n++];
}

/* ------------------------------------------------------------ setup */

struct alert *alert_new(const struct config *cfg, struct store *s, struct outbox *o, char *err,
                        size_t errlen)
{
	struct alert *a = calloc(1, sizeof(*a));
	if (!a) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->cfg = cfg;
	a->store = s;
	a->outbox = o;
	/* The last patrol as the engine and `status` read it (span.h). */
	if (span_prepare(store_db(s), &a->last_patrol) != SQLITE_OK) {
		snprintf(err, errlen, "alert: prepare: %s", sqlite3_errmsg(store_db(s)));
		alert_free(a);
		return NULL;
	}
	return a;
}

void alert_free(struct alert *a)
{
	if (!a)
		return;
	sqlite3_finalize(a->last_patrol);
	for (size_t i = 0; i < a->lv_n; i++)
		free(a->lv[i].key);
	free(a->lv);
	strmap_free(&a->lv_index);
	free(a);
}

void alert_set_config(struct alert *a, const struct config *cfg)
{
	/* Levels are restored for the configured cells and threshold types
	 * only: new ones are read before the next reading is judged. */
	if (cfg != a->cfg)
		a->stale_levels = true;
	a->cfg = cfg;
}

static int alert_row_level(void *arg, const struct store_level *row)
{
	struct alert *a = arg;
	struct alert_level *l = alert_level_slot(a, row->cell, row->type, true);
	if (l)
		l->level = row->level;
	return 0;
}

enum store_status alert_restore(struct alert *a)
{
	/* What the table says wins over memory (a rolled-back batch may have
	 * moved a level that was never stored). */
	for (size_t i = 0; i < a->lv_n; i++)
		a->lv[i].level = 0;
	enum store_status st = store_each_level(a->store, a->cfg, alert_row_level, a);
	a->stale_levels = st != STORE_OK;
	return st;
}

/* ------------------------------------------------------------ helpers */

static enum store_status alert_last_patrol(struct alert *a, const char *cell,
                                           struct span_patrol *out)
{
	int rc = span_last_patrol(a->last_patrol, a->cfg, cell, out);
	return rc == SQLITE_OK ? STORE_OK : store_status_of(a->store, rc, "last patrol");
}

static void alert_join(char *buf, size_t len, char *const *v, size_t n, const char *sep)
{
	size_t off = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < n && off < len; i++) {
		int w = snprintf(buf + off, len - off, "%s%s", i ? sep : "", v[i]);
		if (w < 0)
			break;
		off += (size_t)w;
	}
}

static json_t *alert_strings(char *const *v, size_t n)
{
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < n; i++)
		json_array_append_new(arr, json_string(v[i]));
	return arr;
}

/* Appends printf output to a fixed text buffer; truncation is harmless. */
static void alert_cat(char *buf, size_t len, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void alert_cat(char *buf, size_t len, const char *fmt, ...)
{
	size_t off = strlen(buf);
	va_list ap;
	if (off + 1 >= len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + off, len - off, fmt, ap);
	va_end(ap);
}

static void alert_set_time(json_t *doc, const char *key, int64_t t)
{
	char b[TIMEFMT_MAX];
	timefmt_rfc3339(t, b, sizeof(b));
	json_object_set_new(doc, key, json_string(b));
}

static json_t *alert_doc(const char *kind, const struct config_cell *c, int64_t at)
{
	json_t *doc = json_object();
	if (!doc)
		return NULL;
	json_object_set_new(doc, "kind", json_string(kind));
	json_object_set_new(doc, "cell", c ? json_string(c->id) : json_null());
	json_object_set_new(doc, "cell_name", c ? json_string(c->name) : json_null());
	alert_set_time(doc, "at", at);
	json_object_set_new(doc, "workers",
	                    c ? alert_strings(c->workers, c->n_workers) : json_array());
	return doc;
}

static json_t *alert_last_json(const struct span_patrol *l)
{
	if (!l->found)
		return json_null();
	char b[TIMEFMT_MAX];
	timefmt_rfc3339(l->ts, b, sizeof(b));
	return json_pack("{s:s, s:s}", "ts", b, "worker", l->worker);
}

static enum store_status alert_emit(struct alert *a, struct outbox_alert *oa, json_t *doc,
                                    int64_t now)
{
	if (!doc)
		return STORE_RETRY; /* out of memory: the batch is retried */
	json_object_set_new(doc, "text", json_string(oa->text));
	char *s = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(doc);
	if (!s)
		return STORE_RETRY;
	oa->doc = s;
	int64_t id;
	enum store_status st = outbox_add(a->outbox, a->cfg, oa, now * 1000, &id);
	free(s);
	return st;
}

/* ------------------------------------------------------------ kinds */

enum store_status alert_overdue(struct alert *a, const struct config_cell *c,
                                const struct deadline_fire *f, int64_t now)
{
	enum timefmt_lang lang = alert_lang(a);
	struct span_patrol last;
	char text[ALERT_TEXT_MAX] = "", dur[TIMEFMT_MAX], due[TIMEFMT_MAX], when[TIMEFMT_MAX];
	char workers[1024], esc[1024] = "";
	enum store_status st = alert_last_patrol(a, c->id, &last);
	if (st != STORE_OK)
		return st;

	bool escalate = a->cfg->alerts.escalate_after > 0 &&
	                f->repeat >= a->cfg->alerts.escalate_after;
	alert_join(workers, sizeof(workers), c->workers, c->n_workers,
	           lang == TIMEFMT_ZH ? "、" : ", ");
	if (escalate)
		alert_join(esc, sizeof(esc), a->cfg->alerts.escalate_to,
		           a->cfg->alerts.n_escalate_to, lang == TIMEFMT_ZH ? "、" : ", ");
	timefmt_clock(f->due, now, lang, due, sizeof(due));
	timefmt_duration(now - (last.found ? last.ts : f->base), lang, dur, sizeof(dur));

	if (lang == TIMEFMT_ZH) {
		if (f->repeat > 0)
			alert_cat(text, sizeof(text), "【巡查提醒·第%d次】", f->repeat + 1);
		else
			alert_cat(text, sizeof(text), "【巡查提醒】");
		if (last.found) {
			timefmt_clock(last.ts, now, lang, when, sizeof(when));
			alert_cat(text, sizeof(text),
			          "%s已 %s 未巡查（应于 %s 前巡查），上次 %s %s。", c->name, dur,
			          due, last.worker, when);
		} else {
			alert_cat(text, sizeof(text), "%s已 %s 无巡查记录（应于 %s 前巡查）。",
			          c->name, dur, due);
		}
		if (c->n_workers)
			alert_cat(text, sizeof(text), "请 %s 尽快巡查", workers);
		else
			alert_cat(text, sizeof(text), "请尽快安排巡查");
		if (escalate)
			alert_cat(text, sizeof(text), "，并报 %s", esc);
		alert_cat(text, sizeof(text), "。");
	} else {
		if (f->repeat > 0)
			alert_cat(text, sizeof(text), "[Patrol overdue, reminder %d] ",
			          f->repeat + 1);
		else
			alert_cat(text, sizeof(text), "[Patrol overdue] ");
		if (last.found) {
			timefmt_clock(last.ts, now, lang, when, sizeof(when));
			alert_cat(text, sizeof(text),
			          "%s: not patrolled for %s (due %s), last %s at %s.", c->name, dur,
			          due, last.worker, when);
		} else {
			alert_cat(text, sizeof(text), "%s: no patrol on record for %s (due %s).",
			          c->name, dur, due);
		}
		if (c->n_workers)
			alert_cat(text, sizeof(text), " %s: please patrol now.", workers);
		else
			alert_cat(text, sizeof(text), " Please arrange a patrol.");
		if (escalate)
			alert_cat(text, sizeof(text), " Escalated to %s.", esc);
	}

	/* The first reminder after a claim ran out says so (the claim held
	 * the ones before it, watch.c). */
	struct outbox_claim cl;
	bool ran_out = false;
	if (f->repeat > 0) {
		st = outbox_episode_claim(a->outbox, c->id, a->cfg->alerts.claim_for_s, &cl,
		                          &ran_out);
		if (st != STORE_OK)
			return st;
		ran_out = ran_out && !cl.reminded_after &&
		          cl.hold_from + a->cfg->alerts.claim_for_s <= now;
	}
	if (ran_out) {
		char held[TIMEFMT_MAX];
		timefmt_duration(a->cfg->alerts.claim_for_s, lang, held, sizeof(held));
		if (lang == TIMEFMT_ZH)
			alert_cat(text, sizeof(text), "%s 的认领已超过 %s，仍未巡查。", cl.by,
			          held);
		else
			alert_cat(text, sizeof(text),
			          " %s's claim ran out after %s without a patrol.", cl.by, held);
	}

	json_t *doc = alert_doc("overdue", c, now);
	if (doc) {
		if (ran_out) {
			char b[TIMEFMT_MAX];
			timefmt_rfc3339(cl.at, b, sizeof(b));
			json_object_set_new(doc, "claim_ran_out",
			                    json_pack("{s:s, s:s}", "by", cl.by, "at", b));
		}
		alert_set_time(doc, "due", f->due);
		json_object_set_new(doc, "last_patrol", alert_last_json(&last));
		json_object_set_new(doc, "repeat", json_integer(f->repeat));
		if (escalate)
			json_object_set_new(doc, "escalate",
			                    alert_strings(a->cfg->alerts.escalate_to,
			                                  a->cfg->alerts.n_escalate_to));
	}
	struct outbox_alert oa = {
		.kind = CONFIG_KIND_OVERDUE,
		.cell = c->id,
		.at = now,
		.has_due = true,
		.due = f->due,
		.repeat = f->repeat,
		.text = text,
	};
	return alert_emit(a, &oa, doc, now);
}

enum store_status alert_recovered(struct alert *a, const struct config_cell *c,
                                  const struct deadline_patrol_result *r, const char *worker,
                                  int64_t patrol_ts, int64_t now)
{
	enum timefmt_lang lang = alert_lang(a);
	char text[ALERT_TEXT_MAX] = "", dur[TIMEFMT_MAX], when[TIMEFMT_MAX];
	bool late = false, found;
	int64_t first_at = 0;
	enum store_status st = outbox_first_overdue_at(a->outbox, c->id, &first_at, &found);

	if (st != STORE_OK)
		return st;
	late = found && patrol_ts < first_at;
	/* Claimed by someone else: the group sees who went instead. */
	struct outbox_claim cl;
	bool claimed = false;
	st = outbox_episode_claim(a->outbox, c->id, a->cfg->alerts.claim_for_s, &cl, &claimed);
	if (st != STORE_OK)
		return st;
	bool other = claimed && strcmp(cl.by, worker) != 0;

	timefmt_clock(patrol_ts, now, lang, when, sizeof(when));
	if (r->prev_last_patrol > 0)
		timefmt_duration(patrol_ts - r->prev_last_patrol, lang, dur, sizeof(dur));
	if (lang == TIMEFMT_ZH) {
		alert_cat(text, sizeof(text), "【巡查恢复】%s已由 %s 于 %s 巡查", c->name, worker,
		          when);
		if (r->prev_last_patrol > 0)
			alert_cat(text, sizeof(text), "，此前 %s 未巡查", dur);
		alert_cat(text, sizeof(text), "。");
		if (other)
			alert_cat(text, sizeof(text), "（此前由 %s 认领）", cl.by);
		if (late)
			alert_cat(text, sizeof(text), "（补报：巡查发生在提醒之前）");
	} else {
		alert_cat(text, sizeof(text), "[Patrol resumed] %s: patrolled by %s at %s", c->name,
		          worker, when);
		if (r->prev_last_patrol > 0)
			alert_cat(text, sizeof(text), " after %s without patrol", dur);
		alert_cat(text, sizeof(text), ".");
		if (other)
			alert_cat(text, sizeof(text), " (claimed by %s)", cl.by);
		if (late)
			alert_cat(text, sizeof(text),
			          " (reported late: the patrol was before the alert)");
	}
	json_t *doc = alert_doc("recovered", c, now);
	if (doc) {
		char b[TIMEFMT_MAX];
		timefmt_rfc3339(patrol_ts, b, sizeof(b));
		json_object_set_new(doc, "patrol",
		                    json_pack("{s:s, s:s}", "ts", b, "worker", worker));
		alert_set_time(doc, "due", r->prev_due);
		json_object_set_new(doc, "unpatrolled_s",
		                    r->prev_last_patrol > 0
		                            ? json_integer(patrol_ts - r->prev_last_patrol)
		                            : json_null());
		json_object_set_new(doc, "reported_late", json_boolean(late));
		json_object_set_new(doc, "repeat", json_integer(r->repeats));
		json_object_set_new(doc, "claimed_by", claimed ? json_string(cl.by) : json_null());
	}
	struct outbox_alert oa = {
		.kind = CONFIG_KIND_RECOVERED,
		.cell = c->id,
		.at = now,
		.has_due = true,
		.due = r->prev_due,
		.worker = worker,
		.text = text,
	};
	st = alert_emit(a, &oa, doc, now);
	/* The episode ends here: every overdue alert of it, first and
	 * reminders. */
	if (st == STORE_OK)
		st = outbox_resolve(a->outbox, c->id, "overdue", NULL, now, now);
	return st;
}

static void alert_fmt_value(char *buf, size_t len, double v)
{
	/* Readings are centimetres or similar: no trailing ".000000". */
	if (fabs(v - round(v)) < 1e-9 && fabs(v) < 1e15)
		snprintf(buf, len, "%.0f", v);
	else
		snprintf(buf, len, "%.2f", v);
}

static json_t *alert_event_doc(const char *kind, const struct config_cell *c,
                               const struct msg_record *rec, int64_t now)
{
	json_t *doc = alert_doc(kind, c, now);
	if (!doc)
		return NULL;
	json_object_set_new(doc, "worker", json_string(rec->worker));
	json_object_set_new(doc, "event_type", json_string(rec->type));
	json_object_set_new(doc, "event_label", json_string(rec->event_cfg->label));
	alert_set_time(doc, "event_ts", rec->ts);
	if (rec->has_note)
		json_object_set_new(doc, "note", json_string(rec->note));
	if (rec->has_photo)
		json_object_set_new(doc, "photo", json_string(rec->photo));
	if (rec->has_pos)
		json_object_set_new(doc, "position",
		                    json_pack("{s:f, s:f}", "lat", rec->lat, "lon", rec->lon));
	return doc;
}

static enum store_status alert_immediate(struct alert *a, const struct msg_record *rec,
                                         int64_t event_id, int64_t now)
{
	enum timefmt_lang lang = alert_lang(a);
	const struct config_cell *c = rec->cell_cfg;
	const char *label = rec->event_cfg->label;
	char text[ALERT_TEXT_MAX] = "", when[TIMEFMT_MAX];
	timefmt_clock(rec->ts, now, lang, when, sizeof(when));
	if (lang == TIMEFMT_ZH) {
		alert_cat(text, sizeof(text), "【%s】%s：%s 于 %s 报告。", label, c->name,
		          rec->worker, when);
		if (rec->has_note)
			alert_cat(text, sizeof(text), "备注：%s", rec->note);
		if (rec->has_photo)
			alert_cat(text, sizeof(text), "（有照片）");
	} else {
		alert_cat(text, sizeof(text), "[%s] %s: reported by %s at %s.", label, c->name,
		          rec->worker, when);
		if (rec->has_note)
			alert_cat(text, sizeof(text), " Note: %s", rec->note);
		if (rec->has_photo)
			alert_cat(text, sizeof(text), " (photo attached)");
	}
	struct outbox_alert oa = {
		.kind = CONFIG_KIND_EVENT,
		.cell = c->id,
		.at = now,
		.worker = rec->worker,
		.event_id = event_id,
		.has_value = rec->has_value,
		.value = rec->value,
		.text = text,
	};
	return alert_emit(a, &oa, alert_event_doc("event", c, rec, now), now);
}

static enum store_status alert_reading(struct alert *a, const struct msg_record *rec,
                                       int64_t event_id, int64_t now, bool *queued)
{
	const struct config_event *ev = rec->event_cfg;
	const struct config_cell *c = rec->cell_cfg;
	enum timefmt_lang lang = alert_lang(a);
	int level = 0;

	if (ev->has_alarm && rec->value >= ev->alarm)
		level = 2;
	else if (ev->has_warn && rec->value >= ev->warn)
		level = 1;
	struct alert_level *slot = alert_level_slot(a, rec->cell, rec->type, true);
	if (!slot)
		return STORE_RETRY;
	int old = slot->level;
	if (level == old || (level > 0 && level < old)) {
		/* Falling from alarm to warn is not news; rising again is. */
		slot->level = level;
		return STORE_OK;
	}

	char text[ALERT_TEXT_MAX] = "", when[TIMEFMT_MAX], v[32], th[32];
	const char *unit = ev->unit ? ev->unit : "";
	const char *kind, *word;
	double threshold = level == 2 ? ev->alarm : ev->has_warn ? ev->warn : ev->alarm;
	alert_fmt_value(v, sizeof(v), rec->value);
	alert_fmt_value(th, sizeof(th), threshold);
	timefmt_clock(rec->ts, now, lang, when, sizeof(when));
	if (level > 0) {
		kind = "reading";
		word = level == 2 ? "alarm" : "warn";
		if (lang == TIMEFMT_ZH)
			alert_cat(text, sizeof(text), "【%s·%s】%s：%s%s，达到%s值 %s%s（%s %s）。",
			          ev->label, level == 2 ? "危险" : "警戒", c->name, v, unit,
			          level == 2 ? "危险" : "警戒", th, unit, rec->worker, when);
		else
			alert_cat(text, sizeof(text),
			          "[%s %s] %s: %s %s, at or above the %s level %s %s (%s at %s).",
			          ev->label, level == 2 ? "ALARM" : "WARNING", c->name, v, unit,
			          level == 2 ? "alarm" : "warning", th, unit, rec->worker, when);
	} else {
		kind = "recovered";
		word = "normal";
		if (lang == TIMEFMT_ZH)
			alert_cat(text, sizeof(text),
			          "【%s·恢复】%s：%s%s，已回落到警戒值 %s%s 以下（%s %s）。",
			          ev->label, c->name, v, unit, th, unit, rec->worker, when);
		else
			alert_cat(text, sizeof(text),
			          "[%s back to normal] %s: %s %s, below the warning level %s %s "
			          "(%s at %s).",
			          ev->label, c->name, v, unit, th, unit, rec->worker, when);
	}
	json_t *doc = alert_event_doc(kind, c, rec, now);
	if (doc) {
		json_object_set_new(doc, "value", json_real(rec->value));
		json_object_set_new(doc, "unit", ev->unit ? json_string(ev->unit) : json_null());
		json_object_set_new(doc, "level", json_string(word));
		json_object_set_new(doc, "threshold", json_real(threshold));
	}
	struct outbox_alert oa = {
		.kind = level > 0 ? CONFIG_KIND_READING : CONFIG_KIND_RECOVERED,
		.cell = c->id,
		.at = now,
		.worker = rec->worker,
		.event_id = event_id,
		.level = word,
		.has_value = true,
		.value = rec->value,
		.text = text,
	};
	enum store_status st = alert_emit(a, &oa, doc, now);
	if (st == STORE_OK && level == 0)
		st = outbox_resolve(a->outbox, c->id, "reading", rec->type, now, now);
	if (st == STORE_OK) {
		slot->level = level;
		*queued = true;
	}
	return st;
}

enum store_status alert_on_event(struct alert *a, const struct msg_record *rec, int64_t event_id,
                                 int64_t now, bool *queued)
{
	enum store_status st = STORE_OK;
	if (rec->event_cfg->alert_immediate) {
		st = alert_immediate(a, rec, event_id, now);
		if (st != STORE_OK)
			return st;
		*queued = true;
	}
	if (rec->has_value && (rec->event_cfg->has_warn || rec->event_cfg->has_alarm)) {
		/* Inside the batch: the probes see its own alerts too. */
		if (a->stale_levels && (st = alert_restore(a)) != STORE_OK)
			return st;
		st = alert_reading(a, rec, event_id, now, queued);
	}
	return st;
}

/* ------------------------------------------------------------ claims */

static bool alert_is_task(const char *kind)
{
	return !strcmp(kind, "overdue") || !strcmp(kind, "event") || !strcmp(kind, "reading");
}

enum store_status alert_claim_check(struct alert *a, const struct config_cell *c, int64_t alert_id,
                                    bool *bad, char *detail, size_t len)
{
	struct outbox_task t;
	bool found;
	enum store_status st = outbox_task_by_id(a->outbox, alert_id, &t, &found);

	*bad = false;
	if (st != STORE_OK)
		return st;
	if (!found)
		snprintf(detail, len, "alert_id %lld: no such alert", (long long)alert_id);
	else if (!alert_is_task(t.kind))
		snprintf(detail, len,
		         "alert_id %lld is a %s alert; only overdue, event and "
		         "reading alerts can be claimed",
		         (long long)alert_id, t.kind);
	else if (strcmp(t.cell, c->id) != 0)
		snprintf(detail, len, "alert_id %lld is for cell %s, not %s", (long long)alert_id,
		         t.cell, c->id);
	else
		return STORE_OK;
	*bad = true;
	return STORE_OK;
}

enum store_status alert_claim(struct alert *a, const struct alert_claim *cl, int64_t now,
                              struct alert_claim_result *res)
{
	const struct config_cell *c = cl->cell;
	enum timefmt_lang lang = alert_lang(a);
	struct outbox_task t;
	bool found = false;
	int64_t claimed = 0;
	enum store_status st;

	*res = (struct alert_claim_result){ 0 };
	if (cl->alert_id > 0)
		st = outbox_task_by_id(a->outbox, cl->alert_id, &t, &found);
	else
		st = outbox_task_latest(a->outbox, c->id, cl->at, &t, &found);
	if (st != STORE_OK)
		return st;
	/* A claim made before the alert (uploaded late) is not for it; one
	 * for an alert that has ended or is claimed already changes nothing:
	 * a flood of claims raises one `claimed` per alert. */
	if (!found || t.resolved || t.at > cl->at || !alert_is_task(t.kind) ||
	    strcmp(t.cell, c->id) != 0)
		return STORE_OK;
	if ((st = outbox_claim(a->outbox, t.id, cl->by, cl->at, &claimed)) != STORE_OK || !claimed)
		return st;
	t.id = claimed; /* an overdue episode's first row carries its claim */

	bool overdue = !strcmp(t.kind, "overdue");
	/* A claim uploaded late (up to max_backfill) holds from now: a hold
	 * from its own time could be over before the group hears of it. */
	int64_t hold_until = (cl->at > now ? cl->at : now) + a->cfg->alerts.claim_for_s;
	char text[ALERT_TEXT_MAX] = "", held[TIMEFMT_MAX], when[TIMEFMT_MAX];
	timefmt_duration(a->cfg->alerts.claim_for_s, lang, held, sizeof(held));
	timefmt_clock(cl->at, now, lang, when, sizeof(when));
	if (lang == TIMEFMT_ZH) {
		alert_cat(text, sizeof(text), "【认领】%s 已于 %s 认领%s的%s提醒", cl->by, when,
		          c->name,
		          overdue                    ? "巡查"
		          : !strcmp(t.kind, "event") ? "事件"
		                                     : "读数");
		if (overdue)
			alert_cat(text, sizeof(text), "，%s 内不再重复提醒", held);
		alert_cat(text, sizeof(text), "。");
	} else {
		alert_cat(text, sizeof(text), "[Claimed] %s: %s claimed the %s alert at %s",
		          c->name, cl->by, overdue ? "patrol" : t.kind, when);
		if (overdue)
			alert_cat(text, sizeof(text), "; no reminders for %s", held);
		alert_cat(text, sizeof(text), ".");
	}
	json_t *doc = alert_doc("claimed", c, now);
	if (doc) {
		char b[TIMEFMT_MAX];
		timefmt_rfc3339(cl->at, b, sizeof(b));
		json_object_set_new(doc, "claim",
		                    json_pack("{s:I, s:s, s:s, s:s}", "alert_id", (json_int_t)t.id,
		                              "kind", t.kind, "by", cl->by, "at", b));
		if (overdue)
			alert_set_time(doc, "holds_until", hold_until);
	}
	struct outbox_alert oa = {
		.kind = CONFIG_KIND_CLAIMED,
		.cell = c->id,
		.at = now,
		.worker = cl->by,
		.text = text,
	};
	if ((st = alert_emit(a, &oa, doc, now)) != STORE_OK)
		return st;
	res->claimed = true;
	res->overdue = overdue;
	res->hold_until = hold_until;
	return STORE_OK;
}

enum store_status alert_claim_holds(struct alert *a, const struct config_cell *c, int64_t *until)
{
	struct outbox_claim cl;
	bool found;
	enum store_status st = outbox_episode_claim(a->outbox, c->id, a->cfg->alerts.claim_for_s,
	                                            &cl, &found);
	*until = 0;
	/* A claim that ran out while the daemon was down still gets its
	 * "ran out" reminder, unless one was raised already. */
	if (st == STORE_OK && found && !cl.reminded_after)
		*until = cl.hold_from + a->cfg->alerts.claim_for_s;
	return st;
}

enum store_status alert_event_done(struct alert *a, const struct config_cell *c, int64_t patrol_ts,
                                   int64_t now)
{
	return outbox_resolve(a->outbox, c->id, "event", NULL, patrol_ts, now);
}

/* ------------------------------------------------------------ digest */

struct alert_digest_day {
	const struct config *cfg;
	unsigned char *seen; /* per configured cell: patrolled today */
	size_t patrolled;
	int64_t events;
	enum timefmt_lang lang;
	char *types; /* "label n, label n" */
	size_t types_len;
};

static int alert_digest_cell(void *arg, const struct store_cell_type *row)
{
	struct alert_digest_day *d = arg;
	const struct config_cell *c = config_cell_find(d->cfg, row->cell);
	if (c && config_event_counts_as_patrol(d->cfg, row->type) && !d->seen[c - d->cfg->cells]) {
		d->seen[c - d->cfg->cells] = 1;
		d->patrolled++;
	}
	return 0;
}

static int alert_digest_type(void *arg, const struct store_type_count *row)
{
	struct alert_digest_day *d = arg;
	const struct config_event *ev = config_event_find(d->cfg, row->type);
	d->events += row->count;
	alert_cat(d->types, d->types_len, "%s%s %lld",
	          d->types[0] ? (d->lang == TIMEFMT_ZH ? "，" : ", ") : "",
	          ev ? ev->label : row->type, (long long)row->count);
	return 0;
}

enum store_status alert_digest(struct alert *a, int64_t now)
{
	enum timefmt_lang lang = alert_lang(a);
	const struct config *cfg = a->cfg;
	int64_t from = timefmt_day_start(now);
	char text[ALERT_TEXT_MAX] = "", date[TIMEFMT_MAX], types[512] = "";
	size_t patrolled = 0;
	int64_t events = 0, overdue = 0, tasks = 0, claimed = 0;
	enum store_status st;

	/* Cells patrolled today: mark by looking each up (config order is
	 * kept for the list of those that were not). */
	unsigned char *seen = calloc(cfg->n_cells ? cfg->n_cells : 1, 1);
	if (!seen)
		return STORE_RETRY;
	struct alert_digest_day day = {
		.cfg = cfg, .seen = seen, .lang = lang, .types = types, .types_len = sizeof(types)
	};
	if ((st = store_each_day_cell_type(a->store, from, now + 1, alert_digest_cell, &day)) !=
	            STORE_OK ||
	    (st = store_each_day_type_count(a->store, from, now + 1, alert_digest_type, &day)) !=
	            STORE_OK ||
	    (st = outbox_count_overdue(a->outbox, from, now + 1, &overdue)) != STORE_OK ||
	    (st = outbox_count_tasks(a->outbox, from, now + 1, &tasks, &claimed)) != STORE_OK) {
		free(seen);
		return st;
	}
	patrolled = day.patrolled;
	events = day.events;

	char *missing[11];
	size_t n_missing = 0, total_missing = cfg->n_cells - patrolled;
	for (size_t i = 0; i < cfg->n_cells && n_missing < 10; i++)
		if (!seen[i])
			missing[n_missing++] = cfg->cells[i].name;
	free(seen);
	char list[1024];
	alert_join(list, sizeof(list), missing, n_missing, lang == TIMEFMT_ZH ? "、" : ", ");
	timefmt_date(now, date, sizeof(date));
	if (lang == TIMEFMT_ZH) {
		alert_cat(text, sizeof(text), "【今日巡查】%s：%zu 个网格中 %zu 个已巡查", date,
		          cfg->n_cells, patrolled);
		if (total_missing)
			alert_cat(text, sizeof(text), "；未巡查：%s%s", list,
			          total_missing > n_missing ? " 等" : "");
		alert_cat(text, sizeof(text), "。上报 %lld 条", (long long)events);
		if (types[0])
			alert_cat(text, sizeof(text), "（%s）", types);
		alert_cat(text, sizeof(text), "，超时提醒 %lld 次。", (long long)overdue);
		if (tasks)
			alert_cat(text, sizeof(text),
			          "待处理提醒 %lld 项：已认领 %lld 项，未认领 %lld 项。",
			          (long long)tasks, (long long)claimed,
			          (long long)(tasks - claimed));
	} else {
		alert_cat(text, sizeof(text), "[Daily patrol] %s: %zu of %zu cells patrolled", date,
		          patrolled, cfg->n_cells);
		if (total_missing)
			alert_cat(text, sizeof(text), "; not patrolled: %s%s", list,
			          total_missing > n_missing ? ", ..." : "");
		alert_cat(text, sizeof(text), ". %lld reports", (long long)events);
		if (types[0])
			alert_cat(text, sizeof(text), " (%s)", types);
		alert_cat(text, sizeof(text), ", %lld overdue alerts.", (long long)overdue);
		if (tasks)
			alert_cat(text, sizeof(text),
			          " Alerts to act on: %lld, %lld claimed, %lld "
			          "unclaimed.",
			          (long long)tasks, (long long)claimed,
			          (long long)(tasks - claimed));
	}
	json_t *doc = alert_doc("digest", NULL, now);
	if (doc) {
		json_object_set_new(doc, "date", json_string(date));
		json_object_set_new(doc, "cells", json_integer((json_int_t)cfg->n_cells));
		json_object_set_new(doc, "patrolled", json_integer((json_int_t)patrolled));
		json_object_set_new(doc, "events", json_integer(events));
		json_object_set_new(doc, "overdue_alerts", json_integer(overdue));
		json_object_set_new(doc, "tasks",
		                    json_pack("{s:I, s:I, s:I}", "raised", (json_int_t)tasks,
		                              "claimed", (json_int_t)claimed, "unclaimed",
		                              (json_int_t)(tasks - claimed)));
	}
	struct outbox_alert oa = { .kind = CONFIG_KIND_DIGEST, .at = now, .text = text };
	return alert_emit(a, &oa, doc, now);
}

/* The daemon's own trouble: no cell, no workers; `condition` names which
 * (broker, storage, dropped) so a bridge can tell an alert from its end. */
static json_t *alert_system_doc(struct alert *a, const char *condition, bool recovered,
                                const char *what_zh, const char *what_en, int64_t now, char *text,
                                size_t textlen)
{
	text[0] = '\0';
	if (alert_lang(a) == TIMEFMT_ZH)
		alert_cat(text, textlen, "%s%s", recovered ? "【系统恢复】" : "【系统告警】",
		          what_zh);
	else
		alert_cat(text, textlen, "%s%s",
		          recovered ? "[System back to normal] " : "[System] ", what_en);
	json_t *doc = alert_doc("system", NULL, now);
	if (doc) {
		json_object_set_new(doc, "condition", json_string(condition));
		json_object_set_new(doc, "recovered", json_boolean(recovered));
	}
	return doc;
}

enum store_status alert_system(struct alert *a, const char *condition, bool recovered,
                               const char *what_zh, const char *what_en, int64_t now)
{
	char text[ALERT_TEXT_MAX];
	json_t *doc = alert_system_doc(a, condition, recovered, what_zh, what_en, now, text,
	                               sizeof(text));
	struct outbox_alert oa = { .kind = CONFIG_KIND_SYSTEM, .at = now, .text = text };
	return alert_emit(a, &oa, doc, now);
}

int alert_system_render(struct alert *a, const char *condition, bool recovered, const char *what_zh,
                        const char *what_en, int64_t now, char **text, char **doc)
{
	char buf[ALERT_TEXT_MAX];
	json_t *j = alert_system_doc(a, condition, recovered, what_zh, what_en, now, buf,
	                             sizeof(buf));
	*text = *doc = NULL;
	if (!j)
		return -1;
	json_object_set_new(j, "text", json_string(buf));
	*doc = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	*text = strdup(buf);
	if (!*doc || !*text) {
		free(*doc);
		free(*text);
		*text = *doc = NULL;
		return -1;
	}
	return 0;
}
