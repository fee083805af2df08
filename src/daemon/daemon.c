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
#include <sys/statvfs.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "alert.h"
#include "build-config.h"
#include "dbstate.h"
#include "deliver.h"
#include "log.h"
#include "loop.h"
#include "mqtt.h"
#include "msg.h"
#include "outbox.h"
#include "store.h"
#include "timefmt.h"
#include "watch.h"

#define STATUS_INTERVAL_MS 60000
#define HOUSEKEEPING_MS 5000
/* The CLI's pause/resume is picked up within this (SPEC: "within seconds"). */
#define PAUSE_POLL_MS 1000
/* The broker's dropped-messages counter: one alert per rise, then at most
 * one more per DROPPED_REALERT_MS while it keeps rising; the episode ends
 * (a recovery) after DROPPED_QUIET_MS without a rise. */
#define DROPPED_REALERT_MS (30 * 60 * 1000)
#define DROPPED_QUIET_MS (10 * 60 * 1000)
/* No $SYS value this long after connecting: say drops cannot be seen. */
#define DROPPED_UNKNOWN_MS 30000
/* Re-check deadlines at least this often, so a wall-clock step (NTP after
 * a cold boot without RTC) is noticed without waiting for a stale timer. */
#define DEADLINE_RECHECK_MS 30000
/* Retention (SPEC: at start and then at least hourly). A step is one
 * transaction of deletions; its row budget follows the time the last step
 * took, so that the write lock is held about PRUNE_TARGET_MS whatever the
 * disk (SPEC: never much over ~50 ms). */
#define PRUNE_INTERVAL_MS (60 * 60 * 1000)
#define PRUNE_RETRY_MS 60000
#define PRUNE_CAP_DELAY_MS 1000 /* rejected rows stored: enforce the cap soon */
#define PRUNE_TARGET_MS 25
#define PRUNE_SLOW_MS 50 /* SPEC: the write lock is held ~50 ms at most at a time */
#define PRUNE_ROWS_MIN 64
#define PRUNE_ROWS_START 500
#define PRUNE_ROWS_MAX 32000
#define PRUNE_BURST_MS 1000 /* steps back to back before a retry of a full database */

struct daemon_stats {
	uint64_t received, stored, duplicates, rejected, batches, storage_failures;
};

struct daemon {
	const char *config_path;
	struct config *boot_cfg; /* owned; the MQTT client keeps pointing here */
	struct config *cfg;      /* current (== boot_cfg until a reload) */
	struct loop *loop;
	struct store *store;
	struct mqtt *mqtt;
	struct outbox *outbox;
	struct alert *alert;
	struct watch *watch;
	struct deliver *deliver;
	int exit_status;

	bool alerts_queued;     /* this batch wrote alerts: kick delivery */
	bool need_rebuild;      /* a batch rolled back: memory is ahead of the DB */
	int64_t grace_until_ms; /* monotonic: no overdue alerts before this */
	int64_t data_version;
	bool office_claims; /* claim_request may hold rows to carry out */
	bool broker_alerted;
	int64_t broker_down_ms; /* monotonic: since when unreachable */
	int64_t connected_ms;   /* monotonic: last CONNACK */
	bool sync_full;         /* synchronous=FULL on the writer now */
	struct loop_timer deadline_timer, digest_timer, pause_timer, broker_timer;

	/* The open batch. Counters move to `stats` only once it commits. */
	bool batch_failed;
	enum store_status batch_status;
	struct daemon_stats pending, stats;

	struct dbstate db; /* is the database writable (times: loop_now_ms) */
	struct loop_timer storage_timer, status_timer, housekeeping_timer;
	int64_t watchdog_ms;
	struct loop_timer watchdog_timer;

	struct store_prune *prune;
	struct loop_timer prune_timer;
	bool prune_due;                         /* the timer fired: a step after the next commit */
	bool prune_running;                     /* a run is under way (steps left) */
	int prune_rows;                         /* budget of the next step */
	struct store_prune_counts prune_counts; /* this run so far */
	int64_t prune_started_ms, prune_longest_ms;
	int prune_steps, prune_slow; /* steps, and those over PRUNE_SLOW_MS */

	/* $SYS/broker/publish/messages/dropped */
	bool dropped_known, dropped_warned, dropped_episode, dropped_alerted;
	int64_t dropped_seen;                      /* last value */
	int64_t dropped_unreported;                /* rise not yet in an alert */
	int64_t dropped_total;                     /* rise in this episode */
	int64_t dropped_rise_ms, dropped_alert_ms; /* monotonic */
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
static void daemon_system_tick(struct daemon *d);

/* timefmt_duration, but a short system_after or outage in seconds rather
 * than "under 1m". */
static void daemon_span(int64_t secs, enum timefmt_lang lang, char *buf, size_t len)
{
	if (secs < 60)
		snprintf(buf, len, lang == TIMEFMT_ZH ? "%lld秒" : "%llds", (long long)secs);
	else
		timefmt_duration(secs, lang, buf, len);
}

/*
 * Every `system` alert starts in memory (deliver_hold) and is written to
 * the database by the check hook of the same pass: with a healthy database
 * it is then an ordinary outbox alert. If that write or its commit fails —
 * or the database is already known to be failing — it stays in memory and
 * goes to the exec sinks from there, and is written once a commit works.
 */
static void daemon_system(struct daemon *d, const char *condition, bool recovered, const char *zh,
                          const char *en)
{
	char *text, *doc;
	int64_t now = loop_wall_ms() / 1000;

	if (recovered)
		log_notice("system back to normal: %s", en);
	else
		log_errx("SYSTEM ALERT: %s", en);
	if (alert_system_render(d->alert, condition, recovered, zh, en, now, &text, &doc) < 0 ||
	    deliver_hold(d->deliver, CONFIG_KIND_SYSTEM, now, text, doc, d->db.down) < 0)
		log_errx("system alert: out of memory; it is only in this log");
	free(text);
	free(doc);
}

/* Space available to the database's filesystem, or -1. */
static int64_t daemon_free_bytes(const struct daemon *d)
{
	struct statvfs sv;
	if (statvfs(d->cfg->storage.path, &sv) < 0)
		return -1;
	return (int64_t)sv.f_bavail * (int64_t)sv.f_frsize;
}

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
		           "to index each cell's patrols; this can take a while",
		           from, to);
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
	bool full = store_failed_full(d->store); /* before more calls overwrite it */
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
	if (dbstate_failed(&d->db, loop_now_ms(d->loop), full)) {
		log_errx("DATABASE NOT WRITABLE (%s): %s; stopped consuming from the broker, "
		         "nothing was acknowledged, will retry",
		         d->cfg->storage.path, store_errmsg(d->store));
		daemon_notify("STATUS=database not writable; consuming paused");
	} else {
		log_debug("database still not writable: %s", store_errmsg(d->store));
	}
	/* System alerts meant for this batch go out from memory instead. */
	deliver_held_committed(d->deliver, false);
	if (store_reclaim(d->store) == STORE_OK)
		log_debug("write-ahead log checkpointed and emptied for the retry");
	else
		log_debug("could not empty the write-ahead log: %s", store_errmsg(d->store));
	/* After the checkpoint: the space it gave back is no reason to wake. */
	dbstate_set_free(&d->db, daemon_free_bytes(d));
	mqtt_abort(d->mqtt, 0);
	mqtt_hold(d->mqtt, true);
	loop_timer_arm(d->loop, &d->storage_timer, dbstate_retry_delay(&d->db));
}

static void daemon_storage_confirm(struct daemon *d)
{
	bool alerted;
	int64_t down;

	if (dbstate_confirm(&d->db, loop_now_ms(d->loop), &alerted, &down)) {
		log_notice("database writable again; consuming resumed");
		daemon_notify("STATUS=running");
		if (alerted) {
			char dz[TIMEFMT_MAX], de[TIMEFMT_MAX], zh[512], en[512];
			daemon_span(down, TIMEFMT_ZH, dz, sizeof(dz));
			daemon_span(down, TIMEFMT_EN, de, sizeof(de));
			snprintf(zh, sizeof(zh),
			         "数据库 %s 已恢复正常（约 %s 无法写入），设备上报继续接收。",
			         d->cfg->storage.path, dz);
			snprintf(en, sizeof(en),
			         "the database %s is writable again (it was not for "
			         "about %s); device reports are being received again.",
			         d->cfg->storage.path, de);
			daemon_system(d, "storage", true, zh, en);
		}
	}
}

static void daemon_prune_burst(struct daemon *d);

static void daemon_storage_retry(void *arg)
{
	struct daemon *d = arg;
	dbstate_retry_due(&d->db);
	daemon_prune_burst(d);
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
		enum msg_reason r = msg_parse(d->cfg, topic, payload, len, loop_wall_ms(), &rec,
		                              detail, sizeof(detail));
		bool bad = false;
		if (r == MSG_OK)
			st = watch_claim_check(d->watch, &rec, &bad, detail, sizeof(detail));
		if (bad)
			r = MSG_BAD_FIELD;
		if (st != STORE_OK) {
			/* the batch fails below */
		} else if (r == MSG_OK) {
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
			log_warnx("rejected message on %.200s: %s: %s", topic, msg_reason_name(r),
			          detail);
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
	d->office_claims = true; /* a rolled-back batch may have held some */
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
	if ((d->db.down || d->need_rebuild) && delay < 1000)
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
	/* While failing, only when a retry is due: the overdue alert whose
	 * write failed may be the only write there is to prove the database
	 * writable again (no message to redeliver). */
	if (d->batch_failed || (d->db.down && !d->db.probe) || d->need_rebuild) {
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
		d->office_claims = true;
		if (watch_sync_pauses(d->watch, loop_wall_ms() / 1000) != STORE_OK)
			log_warnx("reading pauses: %s", store_errmsg(d->store));
		daemon_arm_deadline(d);
	}
	/* `gridpatrol claim`: the office's requests, carried out in this
	 * pass's batch (watch_office_claims). */
	if (d->office_claims && !d->batch_failed && !d->need_rebuild && !d->db.down) {
		int done = 0;
		enum store_status st = watch_office_claims(d->watch, loop_wall_ms() / 1000,
		                                           &d->alerts_queued, &done,
		                                           &d->office_claims);
		if (done)
			log_info("carried out %d claim(s) made with gridpatrol claim", done);
		if (st != STORE_OK)
			d->office_claims = true;
		daemon_batch_status(d, st);
	}
	daemon_system_tick(d);
	loop_timer_arm(d->loop, &d->pause_timer, PAUSE_POLL_MS);
}

static void daemon_broker_cb(void *arg)
{
	struct daemon *d = arg;
	if (mqtt_connected(d->mqtt) || d->broker_alerted)
		return;
	d->broker_alerted = true;
	char zh[512], en[512], dz[TIMEFMT_MAX], de[TIMEFMT_MAX];
	daemon_span(d->cfg->alerts.system_after_s, TIMEFMT_ZH, dz, sizeof(dz));
	daemon_span(d->cfg->alerts.system_after_s, TIMEFMT_EN, de, sizeof(de));
	snprintf(zh, sizeof(zh),
	         "巡查系统已超过 %s 无法连接 MQTT 服务器 %s:%d，设备上报暂时无法接收。", dz,
	         d->cfg->mqtt.host, d->cfg->mqtt.port);
	snprintf(en, sizeof(en),
	         "gridpatrold cannot reach the MQTT broker %s:%d for over %s; "
	         "device reports are not being received.",
	         d->cfg->mqtt.host, d->cfg->mqtt.port, de);
	daemon_system(d, "broker", false, zh, en);
}

static void daemon_dropped_alert(struct daemon *d)
{
	char zh[768], en[768];
	long long n = (long long)d->dropped_unreported, all = (long long)d->dropped_seen;

	snprintf(zh, sizeof(zh),
	         "MQTT 服务器 %s:%d 丢弃了 %lld 条消息（" MQTT_SYS_DROPPED
	         " 现为 %lld），设备上报可能已丢失。请在 mosquitto.conf 中调大 "
	         "max_queued_messages（默认 1000）和 max_queued_bytes，并重启 mosquitto。",
	         d->cfg->mqtt.host, d->cfg->mqtt.port, n, all);
	snprintf(en, sizeof(en),
	         "the MQTT broker %s:%d dropped %lld messages (" MQTT_SYS_DROPPED
	         " is now %lld); device reports may be lost. Raise max_queued_messages "
	         "(default 1000) and max_queued_bytes in mosquitto.conf and restart mosquitto.",
	         d->cfg->mqtt.host, d->cfg->mqtt.port, n, all);
	d->dropped_unreported = 0;
	d->dropped_alerted = true;
	d->dropped_alert_ms = loop_now_ms(d->loop);
	daemon_system(d, "dropped", false, zh, en);
}

/* Rate limit and end of a dropped-messages episode; called on every rise
 * and once a second. */
static void daemon_dropped_check(struct daemon *d)
{
	int64_t now = loop_now_ms(d->loop);

	if (d->dropped_unreported > 0 &&
	    (!d->dropped_alerted || now - d->dropped_alert_ms >= DROPPED_REALERT_MS)) {
		daemon_dropped_alert(d);
		return;
	}
	if (d->dropped_episode && d->dropped_unreported == 0 &&
	    now - d->dropped_rise_ms >= DROPPED_QUIET_MS) {
		char zh[512], en[512], dz[TIMEFMT_MAX], de[TIMEFMT_MAX];
		daemon_span(DROPPED_QUIET_MS / 1000, TIMEFMT_ZH, dz, sizeof(dz));
		daemon_span(DROPPED_QUIET_MS / 1000, TIMEFMT_EN, de, sizeof(de));
		snprintf(zh, sizeof(zh),
		         "MQTT 服务器 %s:%d 已 %s 没有再丢弃消息，恢复正常（本次共丢弃 %lld 条）。",
		         d->cfg->mqtt.host, d->cfg->mqtt.port, dz, (long long)d->dropped_total);
		snprintf(en, sizeof(en),
		         "the MQTT broker %s:%d has dropped no messages for %s; "
		         "back to normal (%lld dropped in all).",
		         d->cfg->mqtt.host, d->cfg->mqtt.port, de, (long long)d->dropped_total);
		d->dropped_episode = false;
		d->dropped_alerted = false;
		d->dropped_total = 0;
		daemon_system(d, "dropped", true, zh, en);
	}
}

static void daemon_on_dropped(void *arg, const void *payload, size_t len)
{
	struct daemon *d = arg;
	char buf[32], *end;

	if (len == 0 || len >= sizeof(buf))
		return;
	memcpy(buf, payload, len);
	buf[len] = '\0';
	errno = 0;
	long long v = strtoll(buf, &end, 10);
	if (errno || *end || v < 0)
		return;
	/* The last value seen is kept in the database (per broker), so the
	 * commonest overflow — our queue filling while the daemon is down
	 * (restart, crash, upgrade, a long migration) — is reported by the
	 * first value after the start, not taken as its baseline. */
	char key[320];
	snprintf(key, sizeof(key), "broker_dropped:%s:%d", d->cfg->mqtt.host, d->cfg->mqtt.port);
	bool changed = v != d->dropped_seen;
	if (!d->dropped_known) {
		int64_t stored = 0;
		bool found = false;
		enum store_status st = store_state_get(d->store, key, &stored, &found);
		if (st != STORE_OK)
			log_warnx("mqtt: cannot read the dropped-messages count last seen: %s",
			          store_errmsg(d->store));
		d->dropped_known = true;
		/* Not seen before (a new database, another broker), or lower
		 * than before (the broker restarted, its counter began again
		 * from 0): drops not ours to report; this is the baseline. */
		d->dropped_seen = found && stored <= v ? stored : v;
		changed = !found || stored != v;
		log_info("mqtt: the broker reports %lld messages dropped since it started (its "
		         "max_queued_messages and max_queued_bytes are not visible to clients); "
		         "a rise raises a system alert",
		         v);
		if (found && stored < v)
			log_warnx("mqtt: %lld of them since this daemon last saw the counter "
			          "(%lld), while it was not running",
			          v - (long long)stored, (long long)stored);
	}
	if (changed && !d->batch_failed)
		daemon_batch_status(d, store_state_put(d->store, key, v));
	if (v < d->dropped_seen) {
		/* The broker restarted: its counter starts again from 0. */
		d->dropped_seen = v;
		return;
	}
	if (v == d->dropped_seen)
		return;
	/* The counter is the broker's, for all its clients: a rise may be
	 * another slow subscriber's loss, but the setting to raise is the
	 * same. Kept across our reconnects, so drops of our queue while we
	 * were away count too. */
	log_errx("mqtt: the broker dropped %lld messages (%s %lld -> %lld): raise "
	         "max_queued_messages and max_queued_bytes in mosquitto.conf",
	         v - (long long)d->dropped_seen, MQTT_SYS_DROPPED, (long long)d->dropped_seen, v);
	d->dropped_unreported += v - d->dropped_seen;
	d->dropped_total += v - d->dropped_seen;
	d->dropped_seen = v;
	d->dropped_rise_ms = loop_now_ms(d->loop);
	d->dropped_episode = true;
	daemon_dropped_check(d);
}

/* Once a second: the conditions that raise `system` alerts by lasting. */
static void daemon_system_tick(struct daemon *d)
{
	int64_t now = loop_now_ms(d->loop);

	/* Space came back (a log rotated, a file deleted): retry now rather
	 * than at the end of the backoff. */
	if (d->db.down && d->storage_timer.armed && d->db.free >= 0) {
		int64_t free_now = daemon_free_bytes(d);
		if (dbstate_wake(&d->db, free_now)) {
			log_debug("database: %lld bytes free again; retrying now",
			          (long long)free_now);
			loop_timer_arm(d->loop, &d->storage_timer, 0);
		}
	}

	if (dbstate_alert_due(&d->db, now)) {
		char zh[768], en[768];
		snprintf(zh, sizeof(zh),
		         "数据库 %s 无法写入（%s），巡查系统已暂停接收设备上报"
		         "（消息留在 MQTT 服务器上，恢复后补收）。请检查磁盘空间。",
		         d->cfg->storage.path, store_errmsg(d->store));
		snprintf(
		        en, sizeof(en),
		        "the database %s cannot be written (%s); gridpatrold has "
		        "stopped taking device reports (they wait on the MQTT broker and are taken "
		        "when it can write again). Check the disk.",
		        d->cfg->storage.path, store_errmsg(d->store));
		daemon_system(d, "storage", false, zh, en);
	}
	daemon_dropped_check(d);
	if (mqtt_connected(d->mqtt) && !d->dropped_known && !d->dropped_warned &&
	    now - d->connected_ms >= DROPPED_UNKNOWN_MS) {
		d->dropped_warned = true;
		log_warnx("mqtt: no %s from the broker %lld s after connecting (sys_interval 0, "
		          "an ACL, or not mosquitto): messages it drops over max_queued_messages "
		          "cannot be noticed",
		          MQTT_SYS_DROPPED, (long long)DROPPED_UNKNOWN_MS / 1000);
	}
}

static void daemon_prune_cb(void *arg)
{
	struct daemon *d = arg;
	d->prune_due = true;
}

/* Arm the retention timer unless it already fires within delay_ms. */
static void daemon_prune_soon(struct daemon *d, int64_t delay_ms)
{
	struct loop_timer *t = &d->prune_timer;
	if (d->prune_due || (t->armed && t->due_ms <= loop_now_ms(d->loop) + delay_ms))
		return;
	loop_timer_arm(d->loop, t, delay_ms);
}

/*
 * One retention step, from the check hook right after the ingest batch
 * committed and its acks left. It is a transaction of its own rather than
 * part of the ingest batch: a batch's acks wait for its COMMIT, so deletions
 * inside it would delay every ack of that batch by their duration, and a
 * deletion that fails (a full disk) would roll back and redeliver messages
 * that had nothing to do with it. Here it delays only the reading of the
 * next burst, by at most one step (~PRUNE_TARGET_MS), and while backlog
 * remains the next step waits for the next pass (a zero timer), so every
 * step has an ingest batch between it and the next.
 *
 * daemon_prune_run_step is one step of the current run, starting one if
 * none is under way: > 0 while rows remain, 0 once the run is over, < 0 if
 * the step failed (the timer is then armed for the retry).
 */
static int daemon_prune_run_step(struct daemon *d)
{
	if (!d->prune_running) {
		d->prune_running = true;
		memset(&d->prune_counts, 0, sizeof(d->prune_counts));
		d->prune_started_ms = loop_mono_ms();
		d->prune_longest_ms = 0;
		d->prune_steps = 0;
		d->prune_slow = 0;
		store_prune_restart(d->prune);
	}
	struct store_prune_limits lim = {
		.by_age = d->cfg->storage.retention_s > 0,
		.before_s = loop_wall_ms() / 1000 - d->cfg->storage.retention_s,
		.max_rejected = d->cfg->storage.max_rejected,
		.rows = d->prune_rows,
	};
	struct store_prune_counts c = { 0 };
	bool more = false;
	int64_t t0 = loop_mono_ms();
	enum store_status st = store_prune_step(d->prune, &lim, &c, &more);
	int64_t dt = loop_mono_ms() - t0;
	if (st != STORE_OK) {
		if (st == STORE_RETRY) {
			/* While the database is failing that is reported already. */
			if (d->db.down)
				log_debug("retention: %s; trying again in %d s",
				          store_errmsg(d->store), PRUNE_RETRY_MS / 1000);
			else
				log_warnx("retention: %s; trying again in %d s",
				          store_errmsg(d->store), PRUNE_RETRY_MS / 1000);
			loop_timer_arm(d->loop, &d->prune_timer, PRUNE_RETRY_MS);
		} else {
			log_errx("retention: %s; next run in an hour", store_errmsg(d->store));
			d->prune_running = false;
			loop_timer_arm(d->loop, &d->prune_timer, PRUNE_INTERVAL_MS);
		}
		return -1;
	}
	d->prune_steps++;
	if (dt > d->prune_longest_ms)
		d->prune_longest_ms = dt;
	if (dt > PRUNE_SLOW_MS)
		d->prune_slow++;
	d->prune_counts.events += c.events;
	d->prune_counts.rejected += c.rejected;
	d->prune_counts.alerts += c.alerts;
	d->prune_counts.deliveries += c.deliveries;
	d->prune_counts.pages += c.pages;
	log_debug("retention step: %lld events, %lld rejected, %lld alerts, %lld pages "
	          "in %lld ms (budget %d rows)",
	          (long long)c.events, (long long)c.rejected, (long long)c.alerts,
	          (long long)c.pages, (long long)dt, lim.rows);
	/* Scale the budget toward the target, at most by two either way per
	 * step: one slow commit (a checkpoint, a busy disk) must not swing it
	 * far. Steps that ran out of work say nothing about the rate. */
	if (more || dt > PRUNE_TARGET_MS) {
		int64_t rows = (int64_t)d->prune_rows * PRUNE_TARGET_MS / (dt > 0 ? dt : 1);
		if (rows > 2 * (int64_t)d->prune_rows)
			rows = 2 * (int64_t)d->prune_rows;
		if (rows < d->prune_rows / 2)
			rows = d->prune_rows / 2;
		d->prune_rows = rows < PRUNE_ROWS_MIN   ? PRUNE_ROWS_MIN
		                : rows > PRUNE_ROWS_MAX ? PRUNE_ROWS_MAX
		                                        : (int)rows;
	}
	if (more)
		return 1;
	d->prune_running = false;
	struct store_prune_counts *t = &d->prune_counts;
	if (t->events || t->rejected || t->alerts || t->pages)
		log_info("retention: removed %lld events, %lld rejected, %lld alerts and %lld "
		         "deliveries, gave back %lld pages, in %lld ms (%d steps, longest %lld ms, "
		         "%d over %d ms)",
		         (long long)t->events, (long long)t->rejected, (long long)t->alerts,
		         (long long)t->deliveries, (long long)t->pages,
		         (long long)(loop_mono_ms() - d->prune_started_ms), d->prune_steps,
		         (long long)d->prune_longest_ms, d->prune_slow, PRUNE_SLOW_MS);
	loop_timer_arm(d->loop, &d->prune_timer, PRUNE_INTERVAL_MS);
	return 0;
}

static void daemon_prune_step(struct daemon *d)
{
	d->prune_due = false;
	/* Ingest has priority, and a failing database would fail this too:
	 * the storage retry brings ingest back first (and, when the database
	 * is full, runs retention itself: daemon_prune_burst). */
	if ((d->db.down && !d->db.committed) || d->need_rebuild || store_in_batch(d->store)) {
		loop_timer_arm(d->loop, &d->prune_timer, PRUNE_RETRY_MS);
		return;
	}
	if (daemon_prune_run_step(d) > 0)
		loop_timer_arm(d->loop, &d->prune_timer, 0);
}

/*
 * A database that filled up (storage.max_size, or its disk) between two
 * runs fails every ingest batch, and daemon_prune_step waits for ingest to
 * come back: without this, ingest would stop for good although retention
 * could make room. A DELETE needs no new pages and the failure has just
 * emptied the WAL (store_reclaim), so here, before the retry lets ingest
 * in, steps run back to back for up to PRUNE_BURST_MS: ingest is stopped
 * anyway, and each step still holds the lock only ~PRUNE_TARGET_MS for
 * readers. What is left continues between batches once they commit.
 */
static void daemon_prune_burst(struct daemon *d)
{
	if (!d->db.full || d->need_rebuild || store_in_batch(d->store) ||
	    (d->cfg->storage.retention_s <= 0 && d->cfg->storage.max_rejected <= 0))
		return;
	int64_t t0 = loop_mono_ms();
	int r;
	do
		r = daemon_prune_run_step(d);
	while (r > 0 && loop_mono_ms() - t0 < PRUNE_BURST_MS);
	log_debug("retention before the retry of a full database: %lld ms, %s",
	          (long long)(loop_mono_ms() - t0),
	          r > 0    ? "more to do"
	          : r == 0 ? "done"
	                   : "failed");
	if (r > 0)
		loop_timer_arm(d->loop, &d->prune_timer, 0);
}

/* storage.sync is a pragma on the writer, which SQLite refuses inside a
 * transaction: applied at start, on reload, and otherwise after the next
 * successful commit (a reload while the database was not writable). */
static void daemon_apply_sync(struct daemon *d)
{
	bool full = d->cfg->storage.sync_full;
	if (full == d->sync_full || store_in_batch(d->store))
		return;
	if (store_set_sync(d->store, full) != STORE_OK) {
		log_errx("storage.sync: %s", store_errmsg(d->store));
		return;
	}
	d->sync_full = full;
	if (full)
		log_info("storage.sync: full: every batch is on disk before its acks leave");
	else
		log_warnx("storage.sync: normal: acknowledged messages are not fsync'ed before "
		          "their acks leave; a power cut can lose them (use sync: full)");
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
	/* Held alerts join this batch — while the database is failing only
	 * when a retry is due or a batch got through, so that they do not
	 * turn every pass into another failure. */
	bool held = deliver_held_count(d->deliver) > 0 && dbstate_take_held_write(&d->db);
	if (held) {
		enum store_status st = deliver_write_held(d->deliver);
		if (st != STORE_OK) {
			deliver_held_committed(d->deliver, false);
			memset(&d->pending, 0, sizeof(d->pending));
			daemon_storage_failed(d, st);
			return;
		}
	}
	if (store_in_batch(d->store)) {
		enum store_status st = store_commit(d->store);
		if (st != STORE_OK) {
			if (held)
				deliver_held_committed(d->deliver, false);
			memset(&d->pending, 0, sizeof(d->pending));
			daemon_storage_failed(d, st);
			return;
		}
		d->stats.batches++;
		dbstate_committed(&d->db);
		daemon_storage_confirm(d);
	}
	if (held)
		deliver_held_committed(d->deliver, true);
	if (d->pending.rejected && d->cfg->storage.max_rejected > 0)
		daemon_prune_soon(d, PRUNE_CAP_DELAY_MS);
	daemon_apply_sync(d);
	daemon_stats_add(&d->stats, &d->pending);
	if (d->alerts_queued) {
		d->alerts_queued = false;
		deliver_kick(d->deliver);
	}
	daemon_arm_deadline(d);
	mqtt_flush(d->mqtt);
	if (d->prune_due)
		daemon_prune_step(d);
}

static void daemon_publish_status(struct daemon *d, const char *state)
{
	json_t *doc = json_pack(
	        "{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:s}", "state", state, "version",
	        GRIDPATROL_VERSION, "received", (json_int_t)d->stats.received, "stored",
	        (json_int_t)d->stats.stored, "duplicates", (json_int_t)d->stats.duplicates,
	        "rejected", (json_int_t)d->stats.rejected, "storage_failures",
	        (json_int_t)d->stats.storage_failures, "storage", d->db.down ? "failing" : "ok");
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
	         d->db.down                ? "database not writable"
	         : mqtt_connected(d->mqtt) ? "connected"
	                                   : "broker unreachable",
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
	d->connected_ms = loop_now_ms(d->loop);
	loop_timer_disarm(d->loop, &d->broker_timer);
	if (d->broker_alerted) {
		char zh[512], en[512], dz[TIMEFMT_MAX], de[TIMEFMT_MAX];
		int64_t down = (d->connected_ms - d->broker_down_ms) / 1000;
		daemon_span(down, TIMEFMT_ZH, dz, sizeof(dz));
		daemon_span(down, TIMEFMT_EN, de, sizeof(de));
		snprintf(zh, sizeof(zh),
		         "已重新连接 MQTT 服务器 %s:%d，恢复正常（中断约 %s），"
		         "设备上报继续接收。",
		         d->cfg->mqtt.host, d->cfg->mqtt.port, dz);
		snprintf(en, sizeof(en),
		         "reconnected to the MQTT broker %s:%d after about %s; "
		         "device reports are being received.",
		         d->cfg->mqtt.host, d->cfg->mqtt.port, de);
		daemon_system(d, "broker", true, zh, en);
	}
	d->broker_alerted = false;
	daemon_arm_deadline(d);
	daemon_status_cb(arg);
}

static void daemon_on_disconnected(void *arg)
{
	struct daemon *d = arg;
	/* A storage pause drops the connection on purpose: not the broker's fault. */
	if (!d->db.down) {
		d->broker_down_ms = loop_now_ms(d->loop);
		loop_timer_arm(d->loop, &d->broker_timer, d->cfg->alerts.system_after_s * 1000);
	}
}

/* A connect attempt failed. The broker timer is not armed when the
 * connection was dropped on purpose for a storage pause (above), and a
 * broker gone during that pause never "disconnects" us again: the failed
 * attempts of the storage retries are what show it is unreachable. */
static void daemon_on_unreachable(void *arg)
{
	struct daemon *d = arg;
	if (!d->broker_timer.armed && !d->broker_alerted) {
		d->broker_down_ms = loop_now_ms(d->loop);
		loop_timer_arm(d->loop, &d->broker_timer, d->cfg->alerts.system_after_s * 1000);
	}
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
	/* TZ is set once at start: local time in every module follows it, and
	 * changing it under them would move active hours mid-day. */
	if (strcmp(ncfg->timezone, d->boot_cfg->timezone) != 0)
		log_warnx("reload: timezone %s takes effect only after a restart; local time "
		          "stays %s until then",
		          ncfg->timezone, d->boot_cfg->timezone);
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
	daemon_apply_sync(d);
	daemon_arm_deadline(d);
	daemon_arm_digest(d);
	daemon_prune_soon(d, 0); /* retention may have been lowered */
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
		.unreachable = daemon_on_unreachable,
		.published = daemon_on_published,
		.dropped = daemon_on_dropped,
	};

	d.config_path = config_path;
	d.boot_cfg = d.cfg = cfg;
	dbstate_init(&d.db);

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
	d.sync_full = true; /* store_open's */
	daemon_apply_sync(&d);
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
	d.prune = store_prune_new(d.store, err, sizeof(err));
	if (!d.prune) {
		log_errx("%s: %s", cfg->storage.path, err);
		d.exit_status = 1;
		goto out;
	}
	d.prune_rows = PRUNE_ROWS_START;
	if (store_prune_auto_vacuum(d.prune) != 2)
		log_info("%s was created without auto_vacuum: space freed by retention is "
		         "reused but not given back to the file system (docs/configuration.md)",
		         cfg->storage.path);
	int64_t t0 = loop_mono_ms();
	if (outbox_recover(d.outbox) != STORE_OK || store_commit(d.store) != STORE_OK ||
	    watch_rebuild(d.watch, cfg, loop_wall_ms() / 1000) != STORE_OK ||
	    alert_restore(d.alert) != STORE_OK) {
		log_errx("cannot read state from %s: %s", cfg->storage.path, store_errmsg(d.store));
		d.exit_status = 1;
		goto out;
	}
	store_data_version(d.store, &d.data_version);
	d.office_claims = true; /* requests made while the daemon was down */
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
	loop_timer_init(&d.prune_timer, daemon_prune_cb, &d);
	d.grace_until_ms = loop_now_ms(d.loop) + cfg->alerts.startup_grace_s * 1000;
	daemon_arm_deadline(&d);
	daemon_arm_digest(&d);
	loop_timer_arm(d.loop, &d.pause_timer, PAUSE_POLL_MS);
	d.broker_down_ms = loop_now_ms(d.loop);
	loop_timer_arm(d.loop, &d.broker_timer, cfg->alerts.system_after_s * 1000);
	deliver_kick(d.deliver);
	loop_timer_arm(d.loop, &d.housekeeping_timer, HOUSEKEEPING_MS);
	loop_timer_arm(d.loop, &d.status_timer, STATUS_INTERVAL_MS);
	/* The first run starts in the first pass, after the broker connection
	 * is under way: a backlog never delays start-up. */
	loop_timer_arm(d.loop, &d.prune_timer, 0);
#ifdef HAVE_SYSTEMD
	uint64_t usec;
	if (sd_watchdog_enabled(0, &usec) > 0) {
		d.watchdog_ms = (int64_t)(usec / 2000);
		loop_timer_arm(d.loop, &d.watchdog_timer, d.watchdog_ms);
	}
#endif

	log_info("gridpatrold %s: %zu cells, %zu event types, database %s, broker %s:%d",
	         GRIDPATROL_VERSION, cfg->n_cells, cfg->n_events, cfg->storage.path, cfg->mqtt.host,
	         cfg->mqtt.port);
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
		/* Held alerts get their rows now if the database allows, so the
		 * next start still delivers what memory could not. Each goes in
		 * whole or not at all (outbox_add_held), so when one fails the
		 * ones written before it still commit and only the rest stay in
		 * memory (and are logged as lost). */
		bool committed = true;
		if (deliver_held_count(d.deliver) > 0)
			(void)deliver_write_held(d.deliver);
		if (store_in_batch(d.store) && store_commit(d.store) != STORE_OK) {
			store_rollback(d.store);
			committed = false;
		}
		if (deliver_held_count(d.deliver) > 0)
			deliver_held_committed(d.deliver, committed);
		daemon_publish_status(&d, "offline");
		mqtt_shutdown(d.mqtt, 2000);
	}
	log_info("stopped: %llu stored, %llu duplicates, %llu rejected",
	         (unsigned long long)d.stats.stored, (unsigned long long)d.stats.duplicates,
	         (unsigned long long)d.stats.rejected);
out:
	store_prune_free(d.prune);
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
