/*
 * daemon: the ingest pipeline.
 *
 * Per wake-up: the MQTT fd callback reads a bounded burst of messages; each
 * is judged by msg_parse and written into one open transaction (accepted to
 * `event`, the rest to `rejected`). The check hook then commits and only on
 * success lets the acks out. If the database cannot be written, the batch is
 * rolled back, the connection is dropped with its acks unsent (the broker
 * keeps the messages), and consuming resumes after a backoff.
 */
#include "daemon.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "alert.h"
#include "build-config.h"
#include "deliver.h"
#include "log.h"
#include "loop.h"
#include "mqtt.h"
#include "msg.h"
#include "outbox.h"
#include "store.h"
#include "watch.h"

#define STORAGE_BACKOFF_MIN_MS 1000
#define STORAGE_BACKOFF_MAX_MS 30000
/* A nearly full database still takes the odd small batch; call it healthy
 * only after this long without a failure, so the log says "not writable"
 * once per outage instead of flapping with every batch that happens to fit. */
#define STORAGE_CONFIRM_MS 10000
#define STATUS_INTERVAL_MS 60000
#define HOUSEKEEPING_MS 5000
/* The CLI's pause/resume is picked up within this (SPEC: "within seconds"). */
#define PAUSE_POLL_MS 1000
/* The broker being unreachable this long is a `system` alert. */
#define BROKER_ALERT_MS (10 * 60 * 1000)
/* Re-check deadlines at least this often, so a wall-clock step (NTP after
 * a cold boot without RTC) is noticed without waiting for a stale timer. */
#define DEADLINE_RECHECK_MS 30000

struct daemon_stats {
	uint64_t received, stored, duplicates, rejected, batches, storage_failures;
};

struct daemon {
	const char *config_path;
	struct config *boot_cfg;   /* owned; the MQTT client keeps pointing here */
	struct config *cfg;        /* current (== boot_cfg until a reload) */
	struct loop *loop;
	struct store *store;
	struct mqtt *mqtt;
	struct outbox *outbox;
	struct alert *alert;
	struct watch *watch;
	struct deliver *deliver;
	int exit_status;

	bool alerts_queued;        /* this batch wrote alerts: kick delivery */
	bool need_rebuild;         /* a batch rolled back: memory is ahead of the DB */
	int64_t grace_until_ms;    /* monotonic: no overdue alerts before this */
	int64_t data_version;
	bool broker_alerted;
	struct loop_timer deadline_timer, digest_timer, pause_timer, broker_timer;

	/* The open batch. Counters move to `stats` only once it commits. */
	bool batch_failed;
	enum store_status batch_status;
	struct daemon_stats pending, stats;

	bool storage_down;
	int64_t storage_failed_at_ms; /* monotonic, last failure */
	bool storage_committed;       /* a batch committed since that failure */
	int64_t storage_backoff_ms;
	struct loop_timer storage_timer, status_timer, housekeeping_timer;
	int64_t watchdog_ms;
	struct loop_timer watchdog_timer;
};

static void daemon_notify(const char *state)
{
#ifdef HAVE_SYSTEMD
	sd_notify(0, state);
#else
	(void)state;
#endif
}

static void daemon_rebuild(struct daemon *d);

/* A schema upgrade that reads all history (2 -> 3 fills event_span from a
 * year of events: seconds to minutes on a small box) must not look like a
 * hung start to systemd, whose default start timeout is 90 s. */
#define MIGRATE_EXTEND_US 60000000
#define MIGRATE_NOTIFY_MS 10000

struct daemon_migrate {
	int64_t t0_ms, notified_ms;
	bool ran;
};

static void daemon_on_migrate(void *arg, int from, int to, bool started)
{
	struct daemon_migrate *m = arg;
	int64_t now = loop_mono_ms();
	char buf[64];
	if (started) {
		m->t0_ms = now;
		m->ran = true;
		log_notice("upgrading database schema %d -> %d: reading the event history once "
		           "to index each cell's patrols; this can take a while", from, to);
		daemon_notify("STATUS=upgrading the database schema");
	} else if (now - m->notified_ms < MIGRATE_NOTIFY_MS) {
		return;
	}
	m->notified_ms = now;
	snprintf(buf, sizeof(buf), "EXTEND_TIMEOUT_USEC=%d", MIGRATE_EXTEND_US);
	daemon_notify(buf);
}

static void daemon_storage_failed(struct daemon *d, enum store_status st)
{
	store_rollback(d->store);
	d->alerts_queued = false;
	/* Deadlines and reading levels moved with rows that are now gone;
	 * re-read them (reads work on a full disk) before anything else. */
	d->need_rebuild = true;
	daemon_rebuild(d);
	if (st == STORE_FATAL) {
		log_errx("database %s: %s; stopping without acknowledging the batch",
		         d->cfg->storage.path, store_errmsg(d->store));
		mqtt_abort(d->mqtt, 0);
		d->exit_status = 1;
		loop_stop(d->loop);
		return;
	}
	d->stats.storage_failures++;
	d->storage_failed_at_ms = loop_now_ms(d->loop);
	d->storage_committed = false;
	if (!d->storage_down) {
		log_errx("DATABASE NOT WRITABLE (%s): %s; stopped consuming from the broker, "
		         "nothing was acknowledged, will retry", d->cfg->storage.path,
		         store_errmsg(d->store));
		daemon_notify("STATUS=database not writable; consuming paused");
		d->storage_down = true;
	} else {
		log_debug("database still not writable: %s", store_errmsg(d->store));
	}
	if (store_reclaim(d->store) == STORE_OK)
		log_debug("write-ahead log checkpointed and emptied for the retry");
	else
		log_debug("could not empty the write-ahead log: %s", store_errmsg(d->store));
	mqtt_abort(d->mqtt, 0);
	mqtt_hold(d->mqtt, true);
	loop_timer_arm(d->loop, &d->storage_timer, d->storage_backoff_ms);
	d->storage_backoff_ms *= 2;
	if (d->storage_backoff_ms > STORAGE_BACKOFF_MAX_MS)
		d->storage_backoff_ms = STORAGE_BACKOFF_MAX_MS;
}

static void daemon_storage_confirm(struct daemon *d)
{
	if (d->storage_down && d->storage_committed &&
	    loop_now_ms(d->loop) - d->storage_failed_at_ms >= STORAGE_CONFIRM_MS) {
		log_notice("database writable again; consuming resumed");
		daemon_notify("STATUS=running");
		d->storage_down = false;
		d->storage_backoff_ms = STORAGE_BACKOFF_MIN_MS;
	}
}

static void daemon_storage_retry(void *arg)
{
	struct daemon *d = arg;
	/* The real test of writability is the next batch: reconnect and let
	 * the broker redeliver. If it fails again we are back here later. */
	mqtt_hold(d->mqtt, false);
}

static void daemon_on_message(void *arg, const char *topic, const void *payload, size_t len)
{
	struct daemon *d = arg;
	struct msg_record rec;
	char detail[MSG_DETAIL_MAX];
	enum store_status st;
	bool dup = false;

	d->pending.received++;
	if (d->batch_failed)
		return; /* unacked: the broker redelivers it after we reconnect */

	st = store_begin(d->store);
	if (st == STORE_OK) {
		enum msg_reason r = msg_parse(d->cfg, topic, payload, len, loop_wall_ms(),
		                              &rec, detail, sizeof(detail));
		if (r == MSG_OK) {
			int64_t rowid = 0;
			st = store_put_event(d->store, &rec, &dup, &rowid);
			if (dup)
				d->pending.duplicates++;
			else
				d->pending.stored++;
			if (st == STORE_OK && !dup)
				st = watch_on_event(d->watch, &rec, rowid, loop_wall_ms() / 1000,
				                    &d->alerts_queued);
		} else {
			log_warnx("rejected message on %.200s: %s: %s", topic,
			          msg_reason_name(r), detail);
			st = store_put_rejected(d->store, loop_wall_ms(), topic, payload, len,
			                        msg_reason_name(r), detail);
			d->pending.rejected++;
		}
	}
	if (st != STORE_OK) {
		d->batch_failed = true;
		d->batch_status = st;
	}
}

static void daemon_stats_add(struct daemon_stats *to, struct daemon_stats *from)
{
	to->received += from->received;
	to->stored += from->stored;
	to->duplicates += from->duplicates;
	to->rejected += from->rejected;
	memset(from, 0, sizeof(*from));
}

static void daemon_rebuild(struct daemon *d)
{
	int64_t now = loop_wall_ms() / 1000;
	enum store_status st = watch_rebuild(d->watch, d->cfg, now);
	if (st == STORE_OK)
		st = alert_restore(d->alert);
	if (st != STORE_OK) {
		log_errx("cannot read cell state from the database: %s", store_errmsg(d->store));
		return; /* try again at the next pass */
	}
	d->need_rebuild = false;
}

static void daemon_arm_deadline(struct daemon *d)
{
	int64_t next = watch_next_time(d->watch);
	int64_t delay = DEADLINE_RECHECK_MS;
	if (next != DEADLINE_NEVER) {
		int64_t wall = loop_wall_ms();
		int64_t dms = next * 1000 - wall;
		if (dms < delay)
			delay = dms < 0 ? 0 : dms;
	}
	int64_t grace = d->grace_until_ms - loop_now_ms(d->loop);
	if (grace > delay)
		delay = grace;
	/* While the database is failing, overdue alerts could not be stored
	 * anyway; look again at a calm pace rather than spin. */
	if ((d->storage_down || d->need_rebuild) && delay < 1000)
		delay = 1000;
	loop_timer_arm(d->loop, &d->deadline_timer, delay);
}

static void daemon_batch_status(struct daemon *d, enum store_status st)
{
	if (st != STORE_OK && !d->batch_failed) {
		d->batch_failed = true;
		d->batch_status = st;
	}
}

static void daemon_deadline_cb(void *arg)
{
	struct daemon *d = arg;
	if (d->batch_failed || d->storage_down || d->need_rebuild) {
		daemon_arm_deadline(d);
		return;
	}
	if (loop_now_ms(d->loop) < d->grace_until_ms) {
		daemon_arm_deadline(d);
		return;
	}
	enum store_status st = store_begin(d->store);
	if (st == STORE_OK)
		st = watch_tick(d->watch, loop_wall_ms() / 1000, &d->alerts_queued);
	daemon_batch_status(d, st);
}

static void daemon_arm_digest(struct daemon *d)
{
	if (d->cfg->alerts.daily_digest_min < 0) {
		loop_timer_disarm(d->loop, &d->digest_timer);
		return;
	}
	int64_t now = loop_wall_ms();
	int64_t next = deadline_next_daily(d->cfg->alerts.daily_digest_min, now / 1000);
	loop_timer_arm(d->loop, &d->digest_timer, next * 1000 - now);
}

static void daemon_digest_cb(void *arg)
{
	struct daemon *d = arg;
	int64_t now = loop_wall_ms() / 1000;
	/* A timer that fires early (clock stepped back) re-arms instead. */
	if (deadline_next_daily(d->cfg->alerts.daily_digest_min, now - 60) > now) {
		daemon_arm_digest(d);
		return;
	}
	enum store_status st = store_begin(d->store);
	if (st == STORE_OK)
		st = alert_digest(d->alert, now);
	if (st == STORE_OK)
		d->alerts_queued = true;
	daemon_batch_status(d, st);
	/* Never twice for one day: aim past the next minute boundary. */
	loop_timer_arm(d->loop, &d->digest_timer, 61000);
}

static void daemon_pause_cb(void *arg)
{
	struct daemon *d = arg;
	int64_t v;
	if (d->need_rebuild && !d->batch_failed && !store_in_batch(d->store))
		daemon_rebuild(d);
	if (store_data_version(d->store, &v) == STORE_OK && v != d->data_version) {
		d->data_version = v;
		if (watch_sync_pauses(d->watch, loop_wall_ms() / 1000) != STORE_OK)
			log_warnx("reading pauses: %s", store_errmsg(d->store));
		daemon_arm_deadline(d);
	}
	loop_timer_arm(d->loop, &d->pause_timer, PAUSE_POLL_MS);
}

static void daemon_broker_cb(void *arg)
{
	struct daemon *d = arg;
	if (mqtt_connected(d->mqtt) || d->broker_alerted)
		return;
	d->broker_alerted = true;
	char zh[512], en[512];
	snprintf(zh, sizeof(zh), "巡查系统已超过 %d 分钟无法连接 MQTT 服务器 %s:%d，设备上报暂时无法接收。",
	         BROKER_ALERT_MS / 60000, d->cfg->mqtt.host, d->cfg->mqtt.port);
	snprintf(en, sizeof(en), "gridpatrold cannot reach the MQTT broker %s:%d for over %d minutes; "
	         "device reports are not being received.", d->cfg->mqtt.host, d->cfg->mqtt.port,
	         BROKER_ALERT_MS / 60000);
	log_errx("%s", en);
	enum store_status st = store_begin(d->store);
	if (st == STORE_OK)
		st = alert_system(d->alert, zh, en, loop_wall_ms() / 1000);
	if (st == STORE_OK)
		d->alerts_queued = true;
	daemon_batch_status(d, st);
}

/* After every wake-up: commit, then (and only then) let the acks out. */
static void daemon_check(void *arg)
{
	struct daemon *d = arg;

	if (d->batch_failed) {
		d->batch_failed = false;
		memset(&d->pending, 0, sizeof(d->pending));
		daemon_storage_failed(d, d->batch_status);
		return;
	}
	if (store_in_batch(d->store)) {
		enum store_status st = store_commit(d->store);
		if (st != STORE_OK) {
			memset(&d->pending, 0, sizeof(d->pending));
			daemon_storage_failed(d, st);
			return;
		}
		d->stats.batches++;
		d->storage_committed = true;
		daemon_storage_confirm(d);
	}
	daemon_stats_add(&d->stats, &d->pending);
	if (d->alerts_queued) {
		d->alerts_queued = false;
		deliver_kick(d->deliver);
	}
	daemon_arm_deadline(d);
	mqtt_flush(d->mqtt);
}

static void daemon_publish_status(struct daemon *d, const char *state)
{
	json_t *doc = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:s}",
	                        "state", state,
	                        "version", GRIDPATROL_VERSION,
	                        "received", (json_int_t)d->stats.received,
	                        "stored", (json_int_t)d->stats.stored,
	                        "duplicates", (json_int_t)d->stats.duplicates,
	                        "rejected", (json_int_t)d->stats.rejected,
	                        "storage_failures", (json_int_t)d->stats.storage_failures,
	                        "storage", d->storage_down ? "failing" : "ok");
	if (!doc)
		return;
	char *s = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	if (!s)
		return;
	if (mqtt_connected(d->mqtt))
		mqtt_publish(d->mqtt, mqtt_status_topic(d->mqtt), s, strlen(s), 1, true, NULL);
	free(s);
}

static void daemon_status_cb(void *arg)
{
	struct daemon *d = arg;
	char buf[256];
	daemon_publish_status(d, "online");
	snprintf(buf, sizeof(buf), "STATUS=%s; stored %llu, duplicates %llu, rejected %llu",
	         d->storage_down ? "database not writable" :
	         mqtt_connected(d->mqtt) ? "connected" : "broker unreachable",
	         (unsigned long long)d->stats.stored, (unsigned long long)d->stats.duplicates,
	         (unsigned long long)d->stats.rejected);
	daemon_notify(buf);
	loop_timer_arm(d->loop, &d->status_timer, STATUS_INTERVAL_MS);
}

static void daemon_housekeeping_cb(void *arg)
{
	struct daemon *d = arg;
	log_flush_suppressed();
	daemon_storage_confirm(d);
	loop_timer_arm(d->loop, &d->housekeeping_timer, HOUSEKEEPING_MS);
}

static void daemon_watchdog_cb(void *arg)
{
	struct daemon *d = arg;
	daemon_notify("WATCHDOG=1");
	loop_timer_arm(d->loop, &d->watchdog_timer, d->watchdog_ms);
}

static void daemon_on_connected(void *arg)
{
	struct daemon *d = arg;
	/* Devices' queued check-ins arrive first; only then judge deadlines. */
	d->grace_until_ms = loop_now_ms(d->loop) + d->cfg->alerts.startup_grace_s * 1000;
	loop_timer_disarm(d->loop, &d->broker_timer);
	d->broker_alerted = false;
	daemon_arm_deadline(d);
	daemon_status_cb(arg);
}

static void daemon_on_disconnected(void *arg)
{
	struct daemon *d = arg;
	/* A storage pause drops the connection on purpose: not the broker's fault. */
	if (!d->storage_down)
		loop_timer_arm(d->loop, &d->broker_timer, BROKER_ALERT_MS);
}

static void daemon_on_published(void *arg, int mid)
{
	struct daemon *d = arg;
	deliver_on_published(d->deliver, mid);
}

static void daemon_on_term(void *arg)
{
	struct daemon *d = arg;
	log_info("stopping");
	daemon_notify("STOPPING=1");
	loop_stop(d->loop);
}

static void daemon_on_hup(void *arg)
{
	struct daemon *d = arg;
	struct config *ncfg = NULL;
	struct config_errors errs = { 0 };

	daemon_notify("RELOADING=1");
	if (config_load(d->config_path, &ncfg, &errs) < 0) {
		for (size_t i = 0; i < errs.n; i++)
			log_errx("%s", errs.v[i]);
		log_errx("reload: %s has errors; keeping the running configuration",
		         d->config_path);
		config_errors_free(&errs);
		daemon_notify("READY=1");
		return;
	}
	config_errors_free(&errs);
	/* The broker connection keeps its boot-time settings: changing them
	 * means a new session, which is a restart's job. */
	if (strcmp(ncfg->mqtt.host, d->boot_cfg->mqtt.host) != 0 ||
	    ncfg->mqtt.port != d->boot_cfg->mqtt.port ||
	    strcmp(ncfg->mqtt.client_id, d->boot_cfg->mqtt.client_id) != 0 ||
	    strcmp(ncfg->mqtt.topic, d->boot_cfg->mqtt.topic) != 0 ||
	    strcmp(ncfg->storage.path, d->boot_cfg->storage.path) != 0)
		log_warnx("reload: changes to mqtt connection settings or storage.path take "
		          "effect only after a restart");
	if (store_in_batch(d->store) && store_commit(d->store) != STORE_OK) {
		store_rollback(d->store);
		log_errx("reload: database not writable; keeping the running configuration");
		config_free(ncfg);
		daemon_notify("READY=1");
		return;
	}
	enum store_status st = store_sync_cells(d->store, ncfg, loop_wall_ms() / 1000);
	if (st != STORE_OK)
		log_warnx("reload: recording new cells: %s", store_errmsg(d->store));
	store_set_max_size(d->store, ncfg->storage.max_size);
	st = watch_rebuild(d->watch, ncfg, loop_wall_ms() / 1000);
	if (st != STORE_OK) {
		log_errx("reload: cannot rebuild cell state: %s; keeping the running configuration",
		         store_errmsg(d->store));
		config_free(ncfg);
		daemon_notify("READY=1");
		return;
	}
	alert_set_config(d->alert, ncfg);
	deliver_set_config(d->deliver, ncfg);
	if (d->cfg != d->boot_cfg)
		config_free(d->cfg);
	d->cfg = ncfg;
	daemon_arm_deadline(d);
	daemon_arm_digest(d);
	log_info("configuration reloaded: %zu cells, %zu event types", ncfg->n_cells,
	         ncfg->n_events);
	daemon_notify("READY=1");
}

int daemon_run(const char *config_path, struct config *cfg)
{
	struct daemon d = { 0 };
	char err[1024];
	static const struct mqtt_handlers handlers = {
		.message = daemon_on_message,
		.connected = daemon_on_connected,
		.disconnected = daemon_on_disconnected,
		.published = daemon_on_published,
	};

	d.config_path = config_path;
	d.boot_cfg = d.cfg = cfg;
	d.storage_backoff_ms = STORAGE_BACKOFF_MIN_MS;

	if (geteuid() == 0)
		log_warnx("running as root; gridpatrold needs no privileges — "
		          "run it as its own user (see systemd/gridpatrold.service)");

	d.loop = loop_new();
	if (!d.loop)
		fatal("loop");
	if (loop_signal(d.loop, SIGTERM, daemon_on_term, &d) < 0 ||
	    loop_signal(d.loop, SIGINT, daemon_on_term, &d) < 0 ||
	    loop_signal(d.loop, SIGHUP, daemon_on_hup, &d) < 0)
		fatal("signals");
	signal(SIGPIPE, SIG_IGN);

	struct daemon_migrate mig = { 0 };
	store_on_migrate(daemon_on_migrate, &mig);
	d.store = store_open(cfg->storage.path, cfg->storage.max_size, err, sizeof(err));
	store_on_migrate(NULL, NULL);
	if (!d.store) {
		log_errx("%s", err);
		d.exit_status = 1;
		goto out;
	}
	if (mig.ran)
		log_notice("database schema upgraded in %lld ms",
		           (long long)(loop_mono_ms() - mig.t0_ms));
	if (store_sync_cells(d.store, cfg, loop_wall_ms() / 1000) != STORE_OK)
		log_warnx("recording cells: %s", store_errmsg(d.store));

	/* Active hours and calendar days are local to the village. */
	if (setenv("TZ", cfg->timezone, 1) < 0)
		fatal("setenv TZ");
	tzset();

	d.mqtt = mqtt_new(cfg, d.loop, &handlers, &d, err, sizeof(err));
	if (!d.mqtt) {
		log_errx("mqtt: %s", err);
		d.exit_status = 1;
		goto out;
	}
	d.outbox = outbox_new(d.store, err, sizeof(err));
	d.alert = d.outbox ? alert_new(cfg, d.store, d.outbox, err, sizeof(err)) : NULL;
	d.watch = d.alert ? watch_new(d.store, d.alert) : NULL;
	if (!d.watch) {
		log_errx("%s", d.alert ? "out of memory" : err);
		d.exit_status = 1;
		goto out;
	}
	d.deliver = deliver_new(cfg, d.loop, d.store, d.outbox, d.mqtt, err, sizeof(err));
	if (!d.deliver) {
		log_errx("deliver: %s", err);
		d.exit_status = 1;
		goto out;
	}
	int64_t t0 = loop_mono_ms();
	if (outbox_recover(d.outbox) != STORE_OK || store_commit(d.store) != STORE_OK ||
	    watch_rebuild(d.watch, cfg, loop_wall_ms() / 1000) != STORE_OK ||
	    alert_restore(d.alert) != STORE_OK) {
		log_errx("cannot read state from %s: %s", cfg->storage.path, store_errmsg(d.store));
		d.exit_status = 1;
		goto out;
	}
	store_data_version(d.store, &d.data_version);
	log_info("state rebuilt from the database in %lld ms", (long long)(loop_mono_ms() - t0));
	if (loop_on_check(d.loop, daemon_check, &d) < 0)
		fatal("loop");

	loop_timer_init(&d.storage_timer, daemon_storage_retry, &d);
	loop_timer_init(&d.status_timer, daemon_status_cb, &d);
	loop_timer_init(&d.housekeeping_timer, daemon_housekeeping_cb, &d);
	loop_timer_init(&d.watchdog_timer, daemon_watchdog_cb, &d);
	loop_timer_init(&d.deadline_timer, daemon_deadline_cb, &d);
	loop_timer_init(&d.digest_timer, daemon_digest_cb, &d);
	loop_timer_init(&d.pause_timer, daemon_pause_cb, &d);
	loop_timer_init(&d.broker_timer, daemon_broker_cb, &d);
	d.grace_until_ms = loop_now_ms(d.loop) + cfg->alerts.startup_grace_s * 1000;
	daemon_arm_deadline(&d);
	daemon_arm_digest(&d);
	loop_timer_arm(d.loop, &d.pause_timer, PAUSE_POLL_MS);
	loop_timer_arm(d.loop, &d.broker_timer, BROKER_ALERT_MS);
	deliver_kick(d.deliver);
	loop_timer_arm(d.loop, &d.housekeeping_timer, HOUSEKEEPING_MS);
	loop_timer_arm(d.loop, &d.status_timer, STATUS_INTERVAL_MS);
#ifdef HAVE_SYSTEMD
	uint64_t usec;
	if (sd_watchdog_enabled(0, &usec) > 0) {
		d.watchdog_ms = (int64_t)(usec / 2000);
		loop_timer_arm(d.loop, &d.watchdog_timer, d.watchdog_ms);
	}
#endif

	log_info("gridpatrold %s: %zu cells, %zu event types, database %s, broker %s:%d",
	         GRIDPATROL_VERSION, cfg->n_cells, cfg->n_events, cfg->storage.path,
	         cfg->mqtt.host, cfg->mqtt.port);
	mqtt_start(d.mqtt);
	daemon_notify("READY=1\nSTATUS=running");

	if (loop_run(d.loop) < 0) {
		log_err("poll");
		d.exit_status = 1;
	}

	/* The last pass's check hook has committed and flushed; say goodbye
	 * so the retained status is accurate, then close the session. */
	if (d.exit_status == 0) {
		/* Let running bridge scripts finish (bounded); what they
		 * report commits before we leave. */
		deliver_shutdown(d.deliver, 5000);
		if (store_in_batch(d.store) && store_commit(d.store) != STORE_OK)
			store_rollback(d.store);
		daemon_publish_status(&d, "offline");
		mqtt_shutdown(d.mqtt, 2000);
	}
	log_info("stopped: %llu stored, %llu duplicates, %llu rejected",
	         (unsigned long long)d.stats.stored, (unsigned long long)d.stats.duplicates,
	         (unsigned long long)d.stats.rejected);
out:
	deliver_free(d.deliver);
	watch_free(d.watch);
	alert_free(d.alert);
	outbox_free(d.outbox);
	mqtt_free(d.mqtt);
	store_close(d.store);
	loop_free(d.loop);
	if (d.cfg != d.boot_cfg)
		config_free(d.cfg);
	config_free(d.boot_cfg);
	return d.exit_status;
}
