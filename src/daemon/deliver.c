/*
 * deliver: the active half of alert delivery — it takes due deliveries
 * from the outbox and runs them through their sinks without ever blocking
 * the poll loop.
 *
 * Each sink is an independent little state machine: idle with one loop
 * timer armed for its next due delivery, or running exactly one try, the
 * same timer then standing for that try's deadline. How a try is made is
 * its sink's driver's business (struct sink_ops in sink_impl.h): exec
 * tries are child processes (sink_exec.c), mqtt tries publish one message
 * per alert and wait for every PUBACK (sink_mqtt.c). This file keeps what
 * is the same for every sink: the outbox, retries and expiry, alerts held
 * in memory, and shutdown.
 *
 * Every outcome is written through outbox into the daemon's open batch, so
 * the check hook of the same loop pass commits it. When the database cannot
 * be written the module stops starting tries, keeps the finished outcomes
 * in memory and retries on its own timer: nothing is lost and nothing
 * crashes, and the worst case is that an alert goes out twice.
 */
#include "deliver.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backoff.h"
#include "log.h"
#include "sink_impl.h"

/* Re-plan at least this often, so a wall-clock step (NTP after boot on a
 * board without RTC) delays a due delivery by at most this much. */
#define DELIVER_PLAN_MAX_MS 60000
/* Out of memory for a try: look again this much later. */
#define DELIVER_OOM_RETRY_MS 5000

static void deliver_plan(struct dsink *ds);
static void deliver_held_plan(struct dsink *ds);
static void deliver_held_done(struct dtry *t);

/* ---- small helpers ---------------------------------------------------- */

static int64_t deliver_backoff_ms(struct deliver *d, int tries)
{
	int64_t min = d->cfg->alerts.retry_min_s * 1000;
	int64_t max = d->cfg->alerts.retry_max_s * 1000;

	return backoff_jitter_ms(backoff_delay_ms(min > 0 ? min : 1000, max, tries), 10,
	                         backoff_rng_next(&d->rng));
}

/* ---- store trouble ------------------------------------------------------ */

static void deliver_store_trouble(struct deliver *d, enum store_status st, const char *what)
{
	if (st == STORE_FATAL)
		log_errx("delivery: %s: %s", what, store_errmsg(d->s));
	else
		log_warnx("delivery: %s: %s; tries paused until the database is writable", what,
		          store_errmsg(d->s));
	int64_t wait = dbstate_pause_failed(&d->db);
	if (wait >= 0 && loop_timer_arm(d->l, &d->store_timer, wait) < 0)
		log_errx("delivery: no timer slot for the storage retry");
}

/* ---- outcome ------------------------------------------------------------ */

static void deliver_try_free(struct dtry *t)
{
	if (t->ops && t->ops->release)
		t->ops->release(t);
	outbox_delivery_clear(&t->del);
	free(t);
}

static void deliver_sink_free(struct dsink *ds)
{
	loop_timer_disarm(ds->d->l, &ds->timer);
	loop_timer_disarm(ds->d->l, &ds->mem_timer);
	free(ds);
}

static void deliver_sink_drop(struct deliver *d, struct dsink *ds)
{
	for (size_t i = 0; i < d->n_sinks; i++) {
		if (d->sinks[i] == ds) {
			d->sinks[i] = d->sinks[--d->n_sinks];
			break;
		}
	}
	deliver_sink_free(ds);
}

/* Write a finished try's outcome. Returns false (and keeps the try) when
 * the database refused it; the storage retry comes back here. */
static bool deliver_record(struct dtry *t)
{
	struct dsink *ds = t->ds;
	struct deliver *d = ds->d;
	enum store_status st;

	if (t->ok)
		st = outbox_mark_delivered(d->o, t->del.id, t->end_wall);
	else if (t->expired)
		st = outbox_mark_expired(d->o, t->del.id, t->end_wall, t->error);
	else
		st = outbox_mark_failed(d->o, t->del.id, t->next_ms, t->error);
	if (st != STORE_OK) {
		deliver_store_trouble(d, st, "recording an outcome");
		return false;
	}
	ds->cur = NULL;
	deliver_try_free(t);
	if (!ds->cfg) {
		deliver_sink_drop(d, ds);
		return true;
	}
	deliver_plan(ds);
	return true;
}

void deliver_try_finish(struct dtry *t, bool ok, const char *error, const char *output)
{
	struct dsink *ds = t->ds;
	struct deliver *d = ds->d;
	const char *sep = output ? "; output: " : "";
	const char *out = output ? output : "";

	loop_timer_disarm(d->l, t->timer);
	t->finished = true;
	t->ok = ok;
	t->end_wall = loop_wall_ms();
	d->running--;
	snprintf(t->error, sizeof(t->error), "%s", error ? error : "");
	int64_t took = loop_mono_ms() - t->start_mono;

	if (ok) {
		log_info("delivery %s (sink %s, %zu alert%s) delivered in %lld ms%s%s",
		         t->del.delivery_id, t->del.sink, t->del.n_alerts,
		         t->del.n_alerts == 1 ? "" : "s", (long long)took, sep, out);
	} else {
		int64_t give_up_ms = d->cfg->alerts.give_up_after_s * 1000;
		int64_t deadline = t->del.created_ms + give_up_ms;
		if (t->end_wall >= deadline) {
			t->expired = true;
			log_errx("delivery %s (sink %s, %zu alert%s) EXPIRED after %d tries: %s; "
			         "giving up (retry.give_up_after)%s%s",
			         t->del.delivery_id, t->del.sink, t->del.n_alerts,
			         t->del.n_alerts == 1 ? "" : "s", t->del.tries + 1, t->error, sep,
			         out);
		} else {
			/* The last try lands on the deadline rather than past it,
			 * so give_up_after is honoured to the second. */
			t->next_ms = t->end_wall + deliver_backoff_ms(d, t->del.tries);
			if (t->next_ms > deadline)
				t->next_ms = deadline;
			if (ds->cfg)
				log_warnx("delivery %s (sink %s) try %d failed: %s; next try in "
				          "%.1f s%s%s",
				          t->del.delivery_id, t->del.sink, t->del.tries + 1,
				          t->error, (double)(t->next_ms - t->end_wall) / 1000.0,
				          sep, out);
			else
				log_warnx("delivery %s (sink %s) try %d failed: %s; the sink is no "
				          "longer configured, the delivery stays pending%s%s",
				          t->del.delivery_id, t->del.sink, t->del.tries + 1,
				          t->error, sep, out);
		}
	}
	if (t->held) {
		deliver_held_done(t);
		return;
	}
	if (ds->cfg)
		deliver_held_plan(ds);
	if (!d->db.paused)
		deliver_record(t);
}

/* ---- children ------------------------------------------------------------ */

static void deliver_on_sigchld(void *arg)
{
	struct deliver *d = arg;

	/* SIGCHLDs coalesce: let every running try look. A finished try
	 * may drop its (retired) sink from the array, hence the re-check. */
	for (size_t i = 0; i < d->n_sinks;) {
		struct dsink *ds = d->sinks[i];
		if (ds->mem && !ds->mem->finished && ds->mem->ops->poll)
			ds->mem->ops->poll(ds->mem);
		if (i < d->n_sinks && d->sinks[i] == ds && ds->cur && !ds->cur->finished &&
		    ds->cur->ops->poll)
			ds->cur->ops->poll(ds->cur);
		if (i < d->n_sinks && d->sinks[i] == ds)
			i++;
	}
}

/* The driver of a configured sink. */
static const struct sink_ops *deliver_ops(const struct config_sink *cs)
{
	static const struct sink_ops *const drivers[] = {
		[CONFIG_SINK_EXEC] = &sink_exec_ops,
		[CONFIG_SINK_MQTT] = &sink_mqtt_ops,
	};
	return drivers[cs->type];
}

/* ---- trying ------------------------------------------------------------- */

static void deliver_start(struct dsink *ds)
{
	struct deliver *d = ds->d;
	const struct config_sink *cs = ds->cfg;
	struct outbox_delivery del;
	bool found;
	char err[256];

	if (ds->mem)
		return; /* a held alert's try; its end plans the sink again */
	enum store_status st = outbox_next_due(d->o, ds->name, loop_wall_ms(), &del, &found);
	if (st != STORE_OK) {
		deliver_store_trouble(d, st, "reading the outbox");
		return;
	}
	if (!found) {
		deliver_plan(ds);
		return;
	}
	st = outbox_mark_inflight(d->o, del.id);
	if (st != STORE_OK) {
		outbox_delivery_clear(&del);
		deliver_store_trouble(d, st, "starting a try");
		return;
	}
	struct dtry *t = calloc(1, sizeof(*t));
	if (!t) {
		/* Still 'inflight' in the batch, which the next start (or the
		 * stale-inflight rule in outbox) takes up again. */
		outbox_delivery_clear(&del);
		log_errx("delivery: out of memory");
		loop_timer_arm(d->l, &ds->timer, DELIVER_OOM_RETRY_MS);
		return;
	}
	t->ds = ds;
	t->ops = deliver_ops(cs);
	t->timer = &ds->timer;
	t->del = del;
	t->start_mono = loop_mono_ms();
	t->timeout_ms = cs->timeout_s * 1000;
	ds->cur = t;
	d->running++;
	log_debug("delivery %s (sink %s, %zu alerts): try %d", del.delivery_id, ds->name,
	          del.n_alerts, del.tries + 1);

	int r = t->ops->start(t, cs, err, sizeof(err));
	if (r != 0) {
		deliver_try_finish(t, r > 0, r > 0 ? NULL : err, NULL);
		return;
	}
	if (loop_timer_arm(d->l, &ds->timer, t->timeout_ms) < 0)
		log_errx("delivery %s: no timer slot for the try's timeout", del.delivery_id);
}

/* ---- held alerts ---------------------------------------------------------- */

static bool deliver_busy(const struct dsink *ds)
{
	return (ds->cur && !ds->cur->finished) || ds->mem;
}

/* The held entry of sink ds due first (NULL: none). */
static struct dheld_sink *deliver_held_next(struct dsink *ds, struct dheld **which)
{
	struct deliver *d = ds->d;
	struct dheld_sink *best = NULL;

	for (size_t i = 0; i < d->n_held; i++) {
		struct dheld *h = d->held[i];
		if (h->writing || h->untried)
			continue;
		for (size_t j = 0; j < h->n_sinks; j++) {
			struct dheld_sink *hs = &h->sinks[j];
			if (hs->state != OUTBOX_HELD_PENDING || hs->running ||
			    strcmp(hs->name, ds->name) != 0)
				continue;
			if (!best || hs->next_ms < best->next_ms) {
				best = hs;
				*which = h;
			}
		}
	}
	return best;
}

static void deliver_held_plan(struct dsink *ds)
{
	struct deliver *d = ds->d;
	struct dheld *h;

	if (ds->mem || !ds->cfg || !deliver_ops(ds->cfg)->holds || d->stopping || deliver_busy(ds))
		return;
	struct dheld_sink *hs = deliver_held_next(ds, &h);
	if (!hs) {
		loop_timer_disarm(d->l, &ds->mem_timer);
		return;
	}
	int64_t delay = hs->next_ms - loop_wall_ms();
	if (delay < 0)
		delay = 0;
	if (delay > DELIVER_PLAN_MAX_MS)
		delay = DELIVER_PLAN_MAX_MS;
	if (loop_timer_arm(d->l, &ds->mem_timer, delay) < 0)
		log_errx("delivery: no timer slot for sink %s", ds->name);
}

/* The delivery document of a held alert: as outbox assembles it, with
 * "alert_id": null — the alert has no row yet. */
static char *deliver_held_doc(const struct dheld *h, const struct dheld_sink *hs)
{
	json_t *src = json_loads(h->doc, 0, NULL);
	json_t *obj = json_object();
	json_t *doc = NULL;
	char *out = NULL;
	const char *k;
	json_t *v;
	int rc = 0;

	if (!json_is_object(src) || !obj)
		goto out;
	rc |= json_object_set_new(obj, "alert_id", json_null());
	json_object_foreach (src, k, v)
		rc |= json_object_set(obj, k, v);
	doc = json_pack("{s:s, s:s, s:s, s:[O]}", "delivery_id", hs->delivery_id, "sink", hs->name,
	                "text", h->text, "alerts", obj);
	if (doc && rc == 0)
		out = json_dumps(doc, JSON_COMPACT);
out:
	json_decref(doc);
	json_decref(obj);
	json_decref(src);
	return out;
}

static void deliver_held_start(struct dsink *ds)
{
	struct deliver *d = ds->d;
	const struct config_sink *cs = ds->cfg;
	struct dheld *h;
	char err[256];

	if (ds->mem || !cs || !deliver_ops(cs)->holds || d->stopping || deliver_busy(ds))
		return;
	struct dheld_sink *hs = deliver_held_next(ds, &h);
	if (!hs || hs->next_ms > loop_wall_ms()) {
		deliver_held_plan(ds);
		return;
	}
	struct dtry *t = calloc(1, sizeof(*t));
	if (t) {
		t->del.doc = deliver_held_doc(h, hs);
		t->del.text = strdup(h->text);
	}
	if (!t || !t->del.doc || !t->del.text) {
		if (t)
			deliver_try_free(t);
		log_errx("delivery %s: out of memory", hs->delivery_id);
		loop_timer_arm(d->l, &ds->mem_timer, DELIVER_OOM_RETRY_MS);
		return;
	}
	t->ds = ds;
	t->ops = deliver_ops(cs);
	t->timer = &ds->mem_timer;
	t->held = h;
	t->hs = hs;
	snprintf(t->del.sink, sizeof(t->del.sink), "%s", hs->name);
	snprintf(t->del.delivery_id, sizeof(t->del.delivery_id), "%s", hs->delivery_id);
	snprintf(t->del.first_kind, sizeof(t->del.first_kind), "%s", config_kind_name(h->kind));
	t->del.tries = hs->tries;
	t->del.created_ms = h->created_ms;
	t->del.n_alerts = 1;
	t->start_mono = loop_mono_ms();
	t->timeout_ms = cs->timeout_s * 1000;
	hs->running = true;
	hs->tried = true;
	ds->mem = t;
	d->running++;
	log_debug("delivery %s (sink %s, held in memory): try %d", hs->delivery_id, ds->name,
	          hs->tries + 1);
	int r = t->ops->start(t, cs, err, sizeof(err));
	if (r != 0) {
		deliver_try_finish(t, r > 0, r > 0 ? NULL : err, NULL);
		return;
	}
	if (loop_timer_arm(d->l, &ds->mem_timer, t->timeout_ms) < 0)
		log_errx("delivery %s: no timer slot for the try's timeout", hs->delivery_id);
}

static void deliver_held_timer(void *arg)
{
	struct dsink *ds = arg;
	struct dtry *t = ds->mem;

	if (!t)
		deliver_held_start(ds);
	else if (!t->finished)
		t->ops->timeout(t);
}

/* A held try ended: its outcome stays in memory until deliver_write_held. */
static void deliver_held_done(struct dtry *t)
{
	struct dsink *ds = t->ds;
	struct deliver *d = ds->d;
	struct dheld_sink *hs = t->hs;

	hs->running = false;
	if (t->ok) {
		hs->state = OUTBOX_HELD_DELIVERED;
		hs->done_ms = t->end_wall;
	} else {
		hs->tries++;
		snprintf(hs->error, sizeof(hs->error), "%s", t->error);
		if (t->expired) {
			hs->state = OUTBOX_HELD_EXPIRED;
			hs->done_ms = t->end_wall;
		} else {
			hs->next_ms = t->next_ms;
		}
	}
	ds->mem = NULL;
	deliver_try_free(t);
	if (!ds->cfg) {
		if (!ds->cur)
			deliver_sink_drop(d, ds);
		return;
	}
	if (!d->db.paused)
		deliver_plan(ds);
	deliver_held_plan(ds);
}

static void deliver_held_free(struct dheld *h)
{
	if (!h)
		return;
	free(h->text);
	free(h->doc);
	free(h->sinks);
	free(h);
}

int deliver_hold(struct deliver *d, unsigned kind, int64_t at, const char *text, const char *doc,
                 bool try_now)
{
	struct dheld *h = calloc(1, sizeof(*h));
	struct dheld **v = realloc(d->held, (d->n_held + 1) * sizeof(*v));

	if (v)
		d->held = v;
	if (!h || !v)
		goto fail;
	h->kind = kind;
	h->at = at;
	h->untried = !try_now;
	h->created_ms = loop_wall_ms();
	if (h->created_ms <= d->last_held_ms)
		h->created_ms = d->last_held_ms + 1;
	d->last_held_ms = h->created_ms;
	h->text = strdup(text);
	h->doc = strdup(doc);
	h->sinks = calloc(d->n_sinks ? d->n_sinks : 1, sizeof(*h->sinks));
	if (!h->text || !h->doc || !h->sinks)
		goto fail;
	for (size_t i = 0; i < d->n_sinks; i++) {
		const struct config_sink *cs = d->sinks[i]->cfg;
		if (!cs || !deliver_ops(cs)->holds || !(cs->kinds & kind))
			continue;
		struct dheld_sink *hs = &h->sinks[h->n_sinks++];
		snprintf(hs->name, sizeof(hs->name), "%s", cs->name);
		snprintf(hs->delivery_id, sizeof(hs->delivery_id), "%s-m%lld", cs->name,
		         (long long)h->created_ms);
		hs->next_ms = h->created_ms;
	}
	d->held[d->n_held++] = h;
	for (size_t i = 0; try_now && i < d->n_sinks; i++)
		deliver_held_plan(d->sinks[i]);
	return 0;
fail:
	deliver_held_free(h);
	return -1;
}

size_t deliver_held_count(const struct deliver *d)
{
	return d->n_held;
}

enum store_status deliver_write_held(struct deliver *d)
{
	for (size_t i = 0; i < d->n_held; i++) {
		struct dheld *h = d->held[i];
		struct outbox_held oh[CONFIG_SINKS_MAX];
		size_t n = 0;
		bool running = false;

		if (h->writing)
			continue;
		for (size_t j = 0; j < h->n_sinks; j++)
			running |= h->sinks[j].running;
		if (running)
			continue; /* its outcome is not known yet: a later pass */
		for (size_t j = 0; j < h->n_sinks && n < CONFIG_SINKS_MAX; j++) {
			const struct dheld_sink *hs = &h->sinks[j];
			oh[n++] = (struct outbox_held){
				.sink = hs->name,
				.state = hs->state,
				.tries = hs->tries,
				.next_ms = hs->next_ms,
				.done_ms = hs->done_ms,
				.last_error = hs->error[0] ? hs->error : NULL,
				/* Untried: an ordinary "<sink>-<row id>". */
				.delivery_id = hs->tried ? hs->delivery_id : NULL,
			};
		}
		/* "held": this alert went out from memory; its delivery rows
		 * say what each sink made of it. */
		json_t *j = json_loads(h->doc, 0, NULL);
		char *doc = NULL;
		if (json_is_object(j) && json_object_set_new(j, "held", json_true()) == 0)
			doc = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(j);
		struct outbox_alert oa = {
			.kind = h->kind,
			.at = h->at,
			.text = h->text,
			.doc = doc ? doc : h->doc,
		};
		enum store_status st = outbox_add_held(d->o, d->cfg, &oa, h->created_ms, oh, n,
		                                       NULL);
		free(doc);
		if (st != STORE_OK)
			return st;
		h->writing = true;
	}
	return STORE_OK;
}

void deliver_held_committed(struct deliver *d, bool committed)
{
	size_t k = 0, written = 0;

	for (size_t i = 0; i < d->n_held; i++) {
		struct dheld *h = d->held[i];
		if (h->writing && committed) {
			deliver_held_free(h);
			written++;
			continue;
		}
		h->writing = false;
		if (!committed)
			h->untried = false;
		d->held[k++] = h;
	}
	d->n_held = k;
	if (written)
		log_info("delivery: %zu alert%s held in memory written to the database", written,
		         written == 1 ? "" : "s");
	/* After a commit what is left is either being tried (planned again
	 * when the try ends) or new, to be written by the next pass. */
	for (size_t i = 0; !committed && i < d->n_sinks; i++)
		deliver_held_plan(d->sinks[i]);
	if (written)
		deliver_kick(d);
}

static void deliver_sink_timer(void *arg)
{
	struct dsink *ds = arg;
	struct dtry *t = ds->cur;

	if (!t) {
		if (!ds->d->stopping && !ds->d->db.paused && ds->cfg)
			deliver_start(ds);
		return;
	}
	if (t->finished)
		return;
	t->ops->timeout(t);
}

static void deliver_plan(struct dsink *ds)
{
	struct deliver *d = ds->d;
	int64_t next;

	if (ds->cur || ds->mem || !ds->cfg || d->stopping || d->db.paused)
		return;
	enum store_status st = outbox_next_time(d->o, ds->name, &next);
	if (st != STORE_OK) {
		deliver_store_trouble(d, st, "planning");
		return;
	}
	if (next == INT64_MAX) {
		loop_timer_disarm(d->l, &ds->timer);
		return;
	}
	int64_t delay = next - loop_wall_ms();
	if (delay < 0)
		delay = 0;
	if (delay > DELIVER_PLAN_MAX_MS)
		delay = DELIVER_PLAN_MAX_MS;
	if (loop_timer_arm(d->l, &ds->timer, delay) < 0)
		log_errx("delivery: no timer slot for sink %s", ds->name);
}

static void deliver_store_retry(void *arg)
{
	struct deliver *d = arg;

	dbstate_pause_retry(&d->db);
	for (size_t i = 0; i < d->n_sinks;) {
		struct dsink *ds = d->sinks[i];
		if (ds->cur && ds->cur->finished && !deliver_record(ds->cur))
			return; /* blocked again; the timer is re-armed */
		if (i < d->n_sinks && d->sinks[i] == ds)
			i++;
	}
	dbstate_pause_ok(&d->db);
	deliver_kick(d);
}

/* ---- public ------------------------------------------------------------- */

static struct dsink *deliver_sink_new(struct deliver *d, const struct config_sink *cs)
{
	struct dsink *ds = calloc(1, sizeof(*ds));
	if (!ds)
		return NULL;
	ds->d = d;
	ds->cfg = cs;
	snprintf(ds->name, sizeof(ds->name), "%s", cs->name);
	loop_timer_init(&ds->timer, deliver_sink_timer, ds);
	loop_timer_init(&ds->mem_timer, deliver_held_timer, ds);
	return ds;
}

/* Match the configured sinks to ours by name. Returns -1 on ENOMEM, with
 * the old set untouched. */
static int deliver_sync_sinks(struct deliver *d, const struct config *cfg)
{
	size_t n = cfg->alerts.n_sinks;
	size_t cap = n + d->n_sinks;
	struct dsink **v = calloc(cap ? cap : 1, sizeof(*v));
	bool *kept = calloc(d->n_sinks ? d->n_sinks : 1, sizeof(*kept));
	size_t k = 0;

	if (!v || !kept)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		const struct config_sink *cs = &cfg->alerts.sinks[i];
		struct dsink *ds = NULL;
		for (size_t j = 0; j < d->n_sinks; j++) {
			if (!kept[j] && strcmp(d->sinks[j]->name, cs->name) == 0) {
				ds = d->sinks[j];
				kept[j] = true;
				break;
			}
		}
		if (!ds && !(ds = deliver_sink_new(d, cs)))
			goto fail;
		v[k++] = ds;
	}
	/* Only now, when nothing can fail any more, touch the old sinks. */
	for (size_t i = 0; i < k; i++)
		for (size_t j = 0; j < n; j++)
			if (strcmp(v[i]->name, cfg->alerts.sinks[j].name) == 0)
				v[i]->cfg = &cfg->alerts.sinks[j];
	for (size_t j = 0; j < d->n_sinks; j++) {
		struct dsink *ds = d->sinks[j];
		if (kept[j])
			continue;
		if (ds->cur || ds->mem) {
			/* Gone from the config: its running try finishes and
			 * records its outcome, then the sink is dropped. */
			ds->cfg = NULL;
			v[k++] = ds;
		} else {
			deliver_sink_free(ds);
		}
	}
	free(d->sinks);
	free(kept);
	d->sinks = v;
	d->n_sinks = k;
	d->cfg = cfg;
	return 0;
fail:
	for (size_t i = 0; i < k; i++) {
		bool old = false;
		for (size_t j = 0; j < d->n_sinks; j++)
			old |= d->sinks[j] == v[i];
		if (!old)
			deliver_sink_free(v[i]);
	}
	free(v);
	free(kept);
	return -1;
}

struct deliver *deliver_new(const struct config *cfg, struct loop *l, struct store *s,
                            struct outbox *o, struct mqtt *m, char *err, size_t errlen)
{
	struct deliver *d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	d->cfg = cfg;
	d->l = l;
	d->s = s;
	d->o = o;
	d->m = m;
	backoff_rng_seed(&d->rng,
	                 (uint64_t)loop_wall_ms() ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)d);
	loop_timer_init(&d->store_timer, deliver_store_retry, d);
	if (deliver_sync_sinks(d, cfg) < 0) {
		snprintf(err, errlen, "out of memory");
		free(d);
		return NULL;
	}
	if (loop_signal(l, SIGCHLD, deliver_on_sigchld, d) < 0) {
		snprintf(err, errlen, "SIGCHLD: %s", strerror(errno));
		deliver_free(d);
		return NULL;
	}
	return d;
}

void deliver_kick(struct deliver *d)
{
	for (size_t i = 0; i < d->n_sinks; i++)
		deliver_plan(d->sinks[i]);
}

void deliver_set_config(struct deliver *d, const struct config *cfg)
{
	if (deliver_sync_sinks(d, cfg) < 0) {
		/* The old sinks point into the old config, which the caller is
		 * about to free: without memory for the new set, stop starting
		 * tries rather than read freed memory. */
		log_errx("delivery: out of memory applying the new configuration; "
		         "deliveries stop until the next reload");
		for (size_t i = 0; i < d->n_sinks; i++)
			d->sinks[i]->cfg = NULL;
		d->cfg = cfg;
		return;
	}
	deliver_kick(d);
}

void deliver_on_published(struct deliver *d, int mid)
{
	for (size_t i = 0; i < d->n_sinks; i++) {
		struct dtry *t = d->sinks[i]->cur;
		if (t && !t->finished && t->ops->published && t->ops->published(t, mid))
			return;
	}
}

int deliver_running(const struct deliver *d)
{
	return d->running;
}

/* A try abandoned at shutdown: its row stays 'inflight' and outbox_recover
 * makes it pending again at the next start. */
static void deliver_abandon(struct deliver *d, struct dsink *ds, struct dtry *t)
{
	if (t->held) {
		/* Stays pending in memory: deliver_write_held (the daemon's
		 * last commit) hands it to the outbox for the next start. */
		t->hs->running = false;
		if (!t->finished)
			d->running--;
		log_warnx("delivery %s (sink %s): still running at shutdown, %s",
		          t->del.delivery_id, ds->name, t->ops->cut_off);
	} else if (!t->finished) {
		d->running--;
		log_warnx("delivery %s (sink %s): still running at shutdown, %s; "
		          "it is tried again at the next start",
		          t->del.delivery_id, ds->name, t->ops->cut_off);
	} else {
		log_warnx("delivery %s (sink %s): outcome not recorded (database not "
		          "writable); it is tried again at the next start",
		          t->del.delivery_id, ds->name);
	}
	loop_timer_disarm(d->l, t->timer);
	if (t == ds->mem)
		ds->mem = NULL;
	else
		ds->cur = NULL;
	deliver_try_free(t);
}

/* The two try slots of a sink: k = 0 the outbox's, 1 a held alert's. */
static struct dtry *deliver_slot(const struct dsink *ds, int k)
{
	return k ? ds->mem : ds->cur;
}

/* A running try that shutdown waits for. */
static bool deliver_waits(const struct dtry *t)
{
	return t && !t->finished && t->ops->waits_at_shutdown;
}

static bool deliver_waiting(const struct deliver *d)
{
	for (size_t i = 0; i < d->n_sinks; i++)
		for (int k = 0; k < 2; k++)
			if (deliver_waits(deliver_slot(d->sinks[i], k)))
				return true;
	return false;
}

void deliver_shutdown(struct deliver *d, int timeout_ms)
{
	int64_t end = loop_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);

	d->stopping = true;
	loop_timer_disarm(d->l, &d->store_timer);
	for (size_t i = 0; i < d->n_sinks; i++) {
		if (!d->sinks[i]->cur)
			loop_timer_disarm(d->l, &d->sinks[i]->timer);
		if (!d->sinks[i]->mem)
			loop_timer_disarm(d->l, &d->sinks[i]->mem_timer);
	}

	/* The loop no longer runs: drive the tries' descriptors (children's
	 * pipes) here, and poll them every few ms (SIGCHLD stays blocked for
	 * signalfd). */
	while (deliver_waiting(d)) {
		struct pollfd pfd[2 * 64];
		struct dtry *who[2 * 64];
		nfds_t n = 0;
		int64_t left = end - loop_mono_ms();

		if (left <= 0)
			break;
		for (size_t i = 0; i < 2 * d->n_sinks && n + 2 <= 2 * 64; i++) {
			struct dtry *t = deliver_slot(d->sinks[i / 2], (int)(i % 2));
			if (!deliver_waits(t) || !t->ops->shutdown_fds)
				continue;
			for (size_t k = t->ops->shutdown_fds(t, pfd + n, 2); k > 0; k--)
				who[n++] = t;
		}
		int rc = poll(pfd, n, left < 20 ? (int)left : 20);
		for (nfds_t i = 0; rc > 0 && i < n; i++)
			if (pfd[i].revents)
				who[i]->ops->shutdown_io(who[i], &pfd[i]);
		deliver_on_sigchld(d);
	}

	for (size_t i = 0; i < 2 * d->n_sinks; i++) {
		struct dtry *t = deliver_slot(d->sinks[i / 2], (int)(i % 2));
		if (deliver_waits(t) && t->ops->cancel)
			t->ops->cancel(t);
	}
	for (size_t i = 0; i < d->n_sinks; i++)
		for (int k = 0; k < 2; k++)
			if (deliver_slot(d->sinks[i], k))
				deliver_abandon(d, d->sinks[i], deliver_slot(d->sinks[i], k));
}

void deliver_free(struct deliver *d)
{
	if (!d)
		return;
	/* Never leave a child behind, even without a clean shutdown. */
	if (!d->stopping || d->running > 0)
		deliver_shutdown(d, 0);
	for (size_t i = 0; i < d->n_sinks; i++)
		deliver_sink_free(d->sinks[i]);
	free(d->sinks);
	for (size_t i = 0; i < d->n_held; i++) {
		log_errx("alert held in memory lost at exit (database not writable): %s",
		         d->held[i]->text);
		deliver_held_free(d->held[i]);
	}
	free(d->held);
	loop_timer_disarm(d->l, &d->store_timer);
	free(d);
}
