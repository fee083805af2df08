/*
 * deliver + outbox tests: real SQLite files, real child processes (the sink
 * scripts in fixtures/sinks), the real poll loop with a check hook that
 * commits the batch exactly as the daemon's does. Timing assertions poll
 * the database from a loop timer with an upper bound; nothing sleeps
 * blindly. The mqtt client is NULL (mqtt sinks then fail their tries,
 * which one test checks) except in the mqtt sink test, which starts a real
 * mosquitto on a free loopback port and subscribes with mosquitto_sub.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "deliver.h"
#include "log.h"
#include "loop.h"
#include "mqtt.h"
#include "outbox.h"
#include "store.h"
/* White box: the running try of a sink (struct dsink, struct dtry). */
#include "../src/daemon/sink_impl.h"

#define FISHING_TEXT "【水库钓鱼】云华社区 1号网格（紫坪铺库岸）：w017 报告有人在水库钓鱼。"

struct fx {
	char dir[64];
	char db[128];
	char src[PATH_MAX]; /* the tests/ directory */
	struct config *cfg;
	struct store *s;
	struct outbox *o;
	struct loop *l;
	struct deliver *d;
	struct mqtt *m; /* only in the mqtt sink test */
	pid_t broker, sub;
	struct loop_timer tick;
	bool (*cond)(struct fx *);
	int64_t until;
	bool met;
};

/* ---- helpers ------------------------------------------------------------ */

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	assert_non_null(buf);
	size_t n;
	while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (cap - len < 2) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
	}
	fclose(f);
	buf[len] = '\0';
	return buf;
}

static char *fx_file(struct fx *f, const char *sub, const char *name, int n)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s/%s.%d", f->dir, sub, name, n);
	return slurp(path);
}

static long fx_count(struct fx *f, const char *sub)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s/count", f->dir, sub);
	char *s = slurp(path);
	long n = s ? strtol(s, NULL, 10) : 0;
	free(s);
	return n;
}

static int64_t q_int(struct fx *f, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v = -1;
	assert_int_equal(sqlite3_prepare_v2(store_db(f->s), sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static char *q_text(struct fx *f, const char *sql)
{
	sqlite3_stmt *st;
	char *v = NULL;
	assert_int_equal(sqlite3_prepare_v2(store_db(f->s), sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		v = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return v;
}

/* The pid no longer runs: gone, or a zombie waiting for whoever adopted it. */
static bool proc_gone(long pid)
{
	char path[64];
	if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
		return true;
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	char *s = slurp(path);
	if (!s)
		return true;
	char *p = strrchr(s, ')');
	bool gone = p && (p[2] == 'Z' || p[2] == 'X');
	free(s);
	return gone;
}

static bool wait_gone(long pid, int bound_ms)
{
	for (int i = 0; i < bound_ms / 10; i++) {
		if (proc_gone(pid))
			return true;
		usleep(10000);
	}
	return proc_gone(pid);
}

/* Replace every @SRC@ and @DIR@ in a template. */
static char *expand(struct fx *f, const char *tmpl)
{
	size_t cap = strlen(tmpl) * 4 + 4096, len = 0;
	char *out = malloc(cap);
	assert_non_null(out);
	/* Lengths up front: gcc -O3 otherwise doubts f is a real object. */
	size_t nsrc = strnlen(f->src, sizeof(f->src)), ndir = strnlen(f->dir, sizeof(f->dir));
	for (const char *p = tmpl; *p;) {
		const char *rep = NULL;
		size_t n = 0;
		if (strncmp(p, "@SRC@", 5) == 0) {
			rep = f->src;
			n = nsrc;
		} else if (strncmp(p, "@DIR@", 5) == 0) {
			rep = f->dir;
			n = ndir;
		}
		if (rep) {
			assert_true(len + n < cap);
			memcpy(out + len, rep, n);
			len += n;
			p += 5;
		} else {
			assert_true(len + 1 < cap);
			out[len++] = *p++;
		}
	}
	out[len] = '\0';
	return out;
}

static void fx_mkdir(struct fx *f, const char *sub)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", f->dir, sub);
	assert_int_equal(mkdir(path, 0700), 0);
}

static void commit_hook(void *arg)
{
	struct fx *f = arg;
	/* As the daemon's check hook: whatever the pass wrote commits now,
	 * and only then may queued MQTT packets leave. */
	assert_int_equal(store_commit(f->s), STORE_OK);
	if (f->m)
		mqtt_flush(f->m);
}

static void on_mqtt_message(void *arg, const char *topic, const void *payload, size_t len)
{
	(void)arg;
	(void)topic;
	(void)payload;
	(void)len;
}

static void on_mqtt_published(void *arg, int mid)
{
	struct fx *f = arg;
	deliver_on_published(f->d, mid);
}

/* Load the config from the alerts section yaml, open everything; with
 * an mqtt client when with_mqtt. */
static void fx_start_mqtt(struct fx *f, const char *alerts_yaml, bool with_mqtt)
{
	char path[256], err[512];
	struct config_errors errs = { 0 };
	char *body = expand(f, alerts_yaml);

	snprintf(path, sizeof(path), "%s/gridpatrol.yaml", f->dir);
	FILE *y = fopen(path, "w");
	assert_non_null(y);
	fprintf(y, "storage:\n  path: \"%s\"\n%s", f->db, body);
	fclose(y);
	free(body);
	int rc = config_load(path, &f->cfg, &errs);
	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.v[i]);
	config_errors_free(&errs);
	assert_int_equal(rc, 0);

	f->s = store_open(f->db, 0, err, sizeof(err));
	if (!f->s)
		fail_msg("store_open: %s", err);
	f->o = outbox_new(f->s, err, sizeof(err));
	if (!f->o)
		fail_msg("outbox_new: %s", err);
	f->l = loop_new();
	assert_non_null(f->l);
	assert_int_equal(loop_on_check(f->l, commit_hook, f), 0);
	if (with_mqtt) {
		static const struct mqtt_handlers h = {
			.message = on_mqtt_message,
			.published = on_mqtt_published,
		};
		f->m = mqtt_new(f->cfg, f->l, &h, f, err, sizeof(err));
		if (!f->m)
			fail_msg("mqtt_new: %s", err);
	}
	f->d = deliver_new(f->cfg, f->l, f->s, f->o, f->m, err, sizeof(err));
	if (!f->d)
		fail_msg("deliver_new: %s", err);
	if (f->m)
		mqtt_start(f->m);
}

static void fx_start(struct fx *f, const char *alerts_yaml)
{
	fx_start_mqtt(f, alerts_yaml, false);
}

static int64_t add_alert(struct fx *f, unsigned kind, const char *cell, const char *text)
{
	const char *kname = config_kind_name(kind);
	json_t *doc = json_pack("{s:s, s:s?, s:s}", "kind", kname, "cell", cell, "text", text);
	assert_non_null(doc);
	char *s = json_dumps(doc, JSON_COMPACT);
	assert_non_null(s);
	struct outbox_alert a = {
		.kind = kind,
		.cell = cell,
		.at = loop_wall_ms() / 1000,
		.text = text,
		.doc = s,
	};
	int64_t id = 0;
	assert_int_equal(outbox_add(f->o, f->cfg, &a, loop_wall_ms(), &id), STORE_OK);
	free(s);
	json_decref(doc);
	assert_true(id > 0);
	return id;
}

static void tick_cb(void *arg)
{
	struct fx *f = arg;
	if (f->cond && f->cond(f)) {
		f->met = true;
		loop_stop(f->l);
	} else if (loop_mono_ms() >= f->until) {
		f->met = false;
		loop_stop(f->l);
	} else {
		loop_timer_arm(f->l, &f->tick, 20);
	}
}

/* Run the loop until cond holds (true) or bound_ms passes (false). */
static bool run_until(struct fx *f, bool (*cond)(struct fx *), int bound_ms)
{
	f->cond = cond;
	f->met = false;
	f->until = loop_mono_ms() + bound_ms;
	loop_timer_init(&f->tick, tick_cb, f);
	assert_int_equal(loop_timer_arm(f->l, &f->tick, 0), 0);
	assert_int_equal(loop_run(f->l), 0);
	loop_timer_disarm(f->l, &f->tick);
	return f->met;
}

static bool one_delivered(struct fx *f)
{
	return q_int(f, "SELECT count(*) FROM delivery WHERE state = 'delivered'") >= 1;
}

static bool two_delivered(struct fx *f)
{
	return q_int(f, "SELECT count(*) FROM delivery WHERE state = 'delivered'") >= 2;
}

static bool one_expired(struct fx *f)
{
	return q_int(f, "SELECT count(*) FROM delivery WHERE state = 'expired'") >= 1;
}

static bool hang_second_try(struct fx *f)
{
	char *g = fx_file(f, "hang", "grandchild", 2);
	free(g);
	return g != NULL;
}

static bool one_failed_try(struct fx *f)
{
	return q_int(f, "SELECT tries FROM delivery WHERE id = 1") >= 1 &&
	       q_int(f, "SELECT count(*) FROM delivery WHERE state = 'pending'") == 1;
}

static bool never(struct fx *f)
{
	(void)f;
	return false;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	strcpy(f->dir, "/tmp/gridpatrol-test-deliver-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->db, sizeof(f->db), "%s/patrol.db", f->dir);
#ifdef TEST_SRCDIR
	snprintf(f->src, sizeof(f->src), "%s", TEST_SRCDIR);
#else
	/* meson runs unit tests with tests/ as the working directory. */
	if (!getcwd(f->src, sizeof(f->src)))
		return -1;
#endif
	char probe[PATH_MAX + 64];
	snprintf(probe, sizeof(probe), "%s/fixtures/sinks/record.sh", f->src);
	if (access(probe, X_OK) != 0) {
		fprintf(stderr, "cannot find %s: run from the tests/ directory\n", probe);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[160];
	deliver_free(f->d);
	mqtt_free(f->m);
	if (f->sub > 0) {
		kill(f->sub, SIGKILL);
		waitpid(f->sub, NULL, 0);
	}
	if (f->broker > 0) {
		kill(f->broker, SIGKILL);
		waitpid(f->broker, NULL, 0);
	}
	if (f->s)
		store_commit(f->s);
	outbox_free(f->o);
	store_close(f->s);
	loop_free(f->l);
	config_free(f->cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* ---- tests -------------------------------------------------------------- */

/* (a) One alert reaches a recording sink with the SPEC's document and
 * environment, in its own process group, with a clean signal state. */
static void test_exec_delivers(void **state)
{
	struct fx *f = *state;
	fx_mkdir(f, "rec");
	fx_start(f, "alerts:\n"
	            "  sinks:\n"
	            "    - name: rec\n"
	            "      exec: [\"@SRC@/fixtures/sinks/record.sh\", \"@DIR@/rec\"]\n"
	            "      timeout: 10s\n");
	int64_t id = add_alert(f, CONFIG_KIND_EVENT, "yh-01", FISHING_TEXT);
	deliver_kick(f->d);
	assert_true(run_until(f, one_delivered, 10000));

	assert_int_equal(fx_count(f, "rec"), 1);
	char *in = fx_file(f, "rec", "stdin", 1);
	assert_non_null(in);
	json_error_t jerr;
	json_t *doc = json_loads(in, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc)
		fail_msg("stdin is not JSON: %s: %s", jerr.text, in);
	assert_string_equal(json_string_value(json_object_get(doc, "delivery_id")), "rec-000001");
	assert_string_equal(json_string_value(json_object_get(doc, "sink")), "rec");
	assert_string_equal(json_string_value(json_object_get(doc, "text")), FISHING_TEXT);
	json_t *alerts = json_object_get(doc, "alerts");
	assert_int_equal(json_array_size(alerts), 1);
	json_t *a0 = json_array_get(alerts, 0);
	assert_string_equal(json_object_iter_key(json_object_iter(a0)), "alert_id");
	assert_int_equal(json_integer_value(json_object_get(a0, "alert_id")), id);
	assert_string_equal(json_string_value(json_object_get(a0, "kind")), "event");
	assert_string_equal(json_string_value(json_object_get(a0, "cell")), "yh-01");
	assert_string_equal(json_string_value(json_object_get(a0, "text")), FISHING_TEXT);
	json_decref(doc);
	free(in);

	char *v = fx_file(f, "rec", "id", 1);
	assert_string_equal(v, "rec-000001");
	free(v);
	v = fx_file(f, "rec", "kind", 1);
	assert_string_equal(v, "event");
	free(v);
	v = fx_file(f, "rec", "text", 1);
	assert_string_equal(v, FISHING_TEXT);
	free(v);

	/* The daemon blocks TERM/INT/HUP/CHLD and ignores PIPE; none of
	 * that may reach the script. */
	v = fx_file(f, "rec", "sig", 1);
	assert_non_null(v);
	unsigned long long blk = ~0ULL, ign = ~0ULL;
	char *p = strstr(v, "SigBlk:");
	assert_non_null(p);
	blk = strtoull(p + 7, NULL, 16);
	p = strstr(v, "SigIgn:");
	assert_non_null(p);
	ign = strtoull(p + 7, NULL, 16);
	if (blk & ((1ULL << (SIGCHLD - 1)) | (1ULL << (SIGTERM - 1)) | (1ULL << (SIGHUP - 1)) |
	           (1ULL << (SIGINT - 1))))
		fail_msg("the sink inherited blocked signals: %s", v);
	if (ign & (1ULL << (SIGPIPE - 1)))
		fail_msg("the sink inherited an ignored SIGPIPE: %s", v);
	free(v);
	v = fx_file(f, "rec", "pgid", 1);
	assert_non_null(v);
	long pid = 0, pgid = -1;
	assert_int_equal(sscanf(v, "%ld %ld", &pid, &pgid), 2);
	assert_int_equal(pid, pgid);
	assert_int_not_equal(pgid, (long)getpgrp());
	free(v);

	assert_int_equal(q_int(f, "SELECT tries FROM delivery WHERE id = 1"), 0);
	assert_true(q_int(f, "SELECT done_ms FROM delivery WHERE id = 1") > 0);
	assert_int_equal(deliver_running(f->d), 0);
}

/* (b) Fails twice, then succeeds: three tries with one delivery_id, the
 * waits doubling from retry.min. */
static void test_exec_retries(void **state)
{
	struct fx *f = *state;
	fx_mkdir(f, "rec");
	fx_start(f, "alerts:\n"
	            "  retry: { min: 1s, max: 2s, give_up_after: 1h }\n"
	            "  sinks:\n"
	            "    - name: rec\n"
	            "      exec: [\"@SRC@/fixtures/sinks/record.sh\", \"@DIR@/rec\", \"2\"]\n"
	            "      timeout: 10s\n");
	add_alert(f, CONFIG_KIND_EVENT, "yh-01", FISHING_TEXT);
	deliver_kick(f->d);
	int64_t t0 = loop_mono_ms();
	assert_true(run_until(f, one_delivered, 20000));
	int64_t took = loop_mono_ms() - t0;

	assert_int_equal(fx_count(f, "rec"), 3);
	for (int n = 1; n <= 3; n++) {
		char *v = fx_file(f, "rec", "id", n);
		assert_string_equal(v, "rec-000001");
		free(v);
	}
	assert_int_equal(q_int(f, "SELECT tries FROM delivery WHERE id = 1"), 2);
	/* 1 s then 2 s, each -10 % at worst. */
	assert_true(took >= 2700);
	assert_true(took < 15000);
}

/* (c) A hanging script is killed with its whole process group at the
 * timeout, then retried; shutdown kills the retry and leaves it in flight
 * for outbox_recover. */
static void test_exec_timeout_kills_group(void **state)
{
	struct fx *f = *state;
	fx_mkdir(f, "hang");
	fx_start(f, "alerts:\n"
	            "  retry: { min: 1s, max: 1s }\n"
	            "  sinks:\n"
	            "    - name: hang\n"
	            "      exec: [\"@SRC@/fixtures/sinks/hang.sh\", \"@DIR@/hang\"]\n"
	            "      timeout: 1s\n");
	add_alert(f, CONFIG_KIND_EVENT, "yh-01", FISHING_TEXT);
	deliver_kick(f->d);
	assert_true(run_until(f, hang_second_try, 15000));

	char *g = fx_file(f, "hang", "grandchild", 1);
	assert_non_null(g);
	long gpid = strtol(g, NULL, 10);
	free(g);
	assert_true(gpid > 0);
	assert_true(wait_gone(gpid, 3000));

	assert_int_equal(q_int(f, "SELECT tries FROM delivery WHERE id = 1"), 1);
	char *err = q_text(f, "SELECT last_error FROM delivery WHERE id = 1");
	assert_non_null(err);
	assert_non_null(strstr(err, "timed out"));
	free(err);
	assert_int_equal(deliver_running(f->d), 1);

	g = fx_file(f, "hang", "grandchild", 2);
	assert_non_null(g);
	gpid = strtol(g, NULL, 10);
	free(g);
	deliver_shutdown(f->d, 300);
	assert_int_equal(store_commit(f->s), STORE_OK);
	assert_int_equal(deliver_running(f->d), 0);
	assert_true(wait_gone(gpid, 3000));
	char *st = q_text(f, "SELECT state FROM delivery WHERE id = 1");
	assert_string_equal(st, "inflight");
	free(st);
}

/* (d) A hanging sink does not hold up another sink. */
static void test_slow_sink_does_not_block(void **state)
{
	struct fx *f = *state;
	fx_mkdir(f, "hang");
	fx_mkdir(f, "rec");
	fx_start(f, "alerts:\n"
	            "  sinks:\n"
	            "    - name: hang\n"
	            "      exec: [\"@SRC@/fixtures/sinks/hang.sh\", \"@DIR@/hang\"]\n"
	            "      timeout: 60s\n"
	            "    - name: rec\n"
	            "      exec: [\"@SRC@/fixtures/sinks/record.sh\", \"@DIR@/rec\"]\n");
	add_alert(f, CONFIG_KIND_EVENT, "yh-01", FISHING_TEXT);
	deliver_kick(f->d);
	int64_t t0 = loop_mono_ms();
	assert_true(run_until(f, one_delivered, 10000));
	assert_true(loop_mono_ms() - t0 < 3000);

	char *st = q_text(f, "SELECT state FROM delivery WHERE sink = 'rec'");
	assert_string_equal(st, "delivered");
	free(st);
	st = q_text(f, "SELECT state FROM delivery WHERE sink = 'hang'");
	assert_string_equal(st, "inflight");
	free(st);
	assert_int_equal(deliver_running(f->d), 1);
	char *v = fx_file(f, "rec", "id", 1);
	assert_string_equal(v, "rec-000002");
	free(v);
	/* teardown's deliver_free kills the hanging group. */
}

/* (e) Alerts within group_window go out as one delivery, in id order. */
static void test_group_window(void **state)
{
	struct fx *f = *state;
	fx_mkdir(f, "rec");
	fx_start(f, "alerts:\n"
	            "  sinks:\n"
	            "    - name: rec\n"
	            "      exec: [\"@SRC@/fixtures/sinks/record.sh\", \"@DIR@/rec\"]\n"
	            "      group_window: 2s\n");
	char texts[50][64];
	int64_t ids[50];
	int64_t t0 = loop_mono_ms();
	for (int i = 0; i < 25; i++) {
		snprintf(texts[i], sizeof(texts[i]), "网格 yh-%02d 逾期未巡查", i);
		ids[i] = add_alert(f, CONFIG_KIND_OVERDUE, "yh-01", texts[i]);
	}
	deliver_kick(f->d);
	/* Half a window later, the rest joins the same open delivery. */
	assert_false(run_until(f, one_delivered, 1000));
	for (int i = 25; i < 50; i++) {
		snprintf(texts[i], sizeof(texts[i]), "网格 yh-%02d 逾期未巡查", i);
		ids[i] = add_alert(f, CONFIG_KIND_OVERDUE, NULL, texts[i]);
	}
	deliver_kick(f->d);
	assert_true(run_until(f, one_delivered, 10000));
	assert_true(loop_mono_ms() - t0 >= 1900);

	assert_int_equal(q_int(f, "SELECT count(*) FROM delivery"), 1);
	assert_int_equal(q_int(f, "SELECT count(*) FROM outbox WHERE delivery_id = 1"), 50);
	assert_int_equal(fx_count(f, "rec"), 1);
	char *in = fx_file(f, "rec", "stdin", 1);
	json_t *doc = json_loads(in, 0, NULL);
	assert_non_null(doc);
	json_t *alerts = json_object_get(doc, "alerts");
	assert_int_equal(json_array_size(alerts), 50);
	char joined[50 * 64 + 64] = "";
	for (size_t i = 0; i < 50; i++) {
		json_t *a = json_array_get(alerts, i);
		assert_int_equal(json_integer_value(json_object_get(a, "alert_id")), ids[i]);
		if (i)
			strcat(joined, "\n");
		strcat(joined, texts[i]);
	}
	assert_true(json_is_null(json_object_get(json_array_get(alerts, 49), "cell")));
	assert_string_equal(json_string_value(json_object_get(doc, "text")), joined);
	char *v = fx_file(f, "rec", "text", 1);
	assert_string_equal(v, joined);
	free(v);
	v = fx_file(f, "rec", "kind", 1);
	assert_string_equal(v, "overdue");
	free(v);
	json_decref(doc);
	free(in);

	/* The window closed with the try: a new alert opens a new delivery. */
	add_alert(f, CONFIG_KIND_OVERDUE, "yh-02", "again");
	assert_int_equal(store_commit(f->s), STORE_OK);
	assert_int_equal(q_int(f, "SELECT count(*) FROM delivery"), 2);
}

/* (f) Past retry.give_up_after a failing delivery expires, and stays so. */
static void test_give_up(void **state)
{
	struct fx *f = *state;
	fx_mkdir(f, "fail");
	fx_start(f, "alerts:\n"
	            "  retry: { min: 1s, max: 1s, give_up_after: 2s }\n"
	            "  sinks:\n"
	            "    - name: fail\n"
	            "      exec: [\"@SRC@/fixtures/sinks/fail.sh\", \"@DIR@/fail\"]\n");
	add_alert(f, CONFIG_KIND_SYSTEM, NULL, "数据库不可写");
	deliver_kick(f->d);
	assert_true(run_until(f, one_expired, 15000));

	int64_t tries = q_int(f, "SELECT tries FROM delivery WHERE id = 1");
	assert_true(tries >= 2 && tries <= 4);
	assert_int_equal(fx_count(f, "fail"), tries);
	char *err = q_text(f, "SELECT last_error FROM delivery WHERE id = 1");
	assert_string_equal(err, "exit status 3");
	free(err);
	assert_true(q_int(f, "SELECT done_ms - created_ms FROM delivery WHERE id = 1") >= 2000);
	assert_false(run_until(f, never, 1500));
	assert_int_equal(fx_count(f, "fail"), tries);
}

/* (g) Crash recovery: 'inflight' goes back to 'pending'. Also the pieces
 * of outbox_next_due the other tests take for granted. */
static void test_recover(void **state)
{
	struct fx *f = *state;
	fx_start(f, "alerts:\n"
	            "  sinks:\n"
	            "    - name: wechat\n"
	            "      exec: [\"/bin/true\"]\n");
	int64_t now = loop_wall_ms();
	int64_t a1 = add_alert(f, CONFIG_KIND_OVERDUE, "yh-01", "第一条");
	add_alert(f, CONFIG_KIND_RECOVERED, "yh-02", "第二条");
	assert_int_equal(store_commit(f->s), STORE_OK);

	int64_t next = 0;
	assert_int_equal(outbox_next_time(f->o, "wechat", &next), STORE_OK);
	assert_true(next >= now && next <= loop_wall_ms());
	assert_int_equal(outbox_next_time(f->o, "nosuch", &next), STORE_OK);
	assert_true(next == INT64_MAX);

	struct outbox_delivery d;
	bool found = false;
	assert_int_equal(outbox_next_due(f->o, "wechat", now - 60000, &d, &found), STORE_OK);
	assert_false(found);
	assert_int_equal(outbox_next_due(f->o, "wechat", loop_wall_ms(), &d, &found), STORE_OK);
	assert_true(found);
	assert_string_equal(d.delivery_id, "wechat-000001");
	assert_string_equal(d.first_kind, "overdue");
	assert_string_equal(d.text, "第一条");
	assert_string_equal(d.cell, "yh-01");
	assert_int_equal(d.n_alerts, 1);
	assert_int_equal(d.tries, 0);
	json_t *doc = json_loads(d.doc, 0, NULL);
	assert_int_equal(json_integer_value(json_object_get(
	                         json_array_get(json_object_get(doc, "alerts"), 0), "alert_id")),
	                 a1);
	json_decref(doc);

	assert_int_equal(outbox_mark_inflight(f->o, d.id), STORE_OK);
	assert_int_equal(store_commit(f->s), STORE_OK);
	assert_int_equal(q_int(f, "SELECT count(*) FROM delivery WHERE state = 'inflight'"), 1);
	outbox_delivery_clear(&d);

	assert_int_equal(outbox_recover(f->o), STORE_OK);
	assert_true(store_in_batch(f->s));
	assert_int_equal(store_commit(f->s), STORE_OK);
	assert_int_equal(q_int(f, "SELECT count(*) FROM delivery WHERE state = 'inflight'"), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM delivery WHERE state = 'pending'"), 2);

	/* Outcomes. */
	assert_int_equal(outbox_mark_failed(f->o, 1, now + 5000, "exit status 1"), STORE_OK);
	assert_int_equal(outbox_mark_delivered(f->o, 2, now), STORE_OK);
	assert_int_equal(store_commit(f->s), STORE_OK);
	assert_int_equal(q_int(f, "SELECT tries FROM delivery WHERE id = 1"), 1);
	assert_int_equal(q_int(f, "SELECT next_ms FROM delivery WHERE id = 1"), now + 5000);
	assert_int_equal(outbox_next_due(f->o, "wechat", now + 4999, &d, &found), STORE_OK);
	assert_false(found);
	assert_int_equal(outbox_mark_expired(f->o, 1, now, "gave up"), STORE_OK);
	assert_int_equal(store_commit(f->s), STORE_OK);
	assert_int_equal(q_int(f, "SELECT count(*) FROM delivery WHERE state = 'expired'"), 1);
	assert_int_equal(outbox_next_time(f->o, NULL, &next), STORE_OK);
	assert_true(next == INT64_MAX);
}

/* A sink's kinds filter which alerts it gets. */
static void test_kinds_filter(void **state)
{
	struct fx *f = *state;
	fx_start(f, "alerts:\n"
	            "  sinks:\n"
	            "    - name: all\n"
	            "      exec: [\"/bin/true\"]\n"
	            "    - name: ov\n"
	            "      exec: [\"/bin/true\"]\n"
	            "      kinds: [overdue, recovered]\n");
	add_alert(f, CONFIG_KIND_EVENT, "yh-01", "event");
	add_alert(f, CONFIG_KIND_OVERDUE, "yh-01", "overdue");
	assert_int_equal(store_commit(f->s), STORE_OK);
	assert_int_equal(q_int(f, "SELECT count(*) FROM alert"), 2);
	assert_int_equal(q_int(f, "SELECT count(*) FROM outbox WHERE sink = 'all'"), 2);
	assert_int_equal(q_int(f, "SELECT count(*) FROM outbox WHERE sink = 'ov'"), 1);
	assert_int_equal(q_int(f, "SELECT a.kind = 'overdue' FROM outbox o JOIN alert a "
	                          "ON a.id = o.alert_id WHERE o.sink = 'ov'"),
	                 1);
}

/* Without an mqtt client an mqtt sink's try fails and is retried later. */
static void test_mqtt_without_client(void **state)
{
	struct fx *f = *state;
	fx_start(f, "alerts:\n"
	            "  retry: { min: 30s, max: 1h }\n"
	            "  sinks:\n"
	            "    - name: mq\n"
	            "      topic: \"gridpatrol/alerts/{cell}/{kind}\"\n");
	add_alert(f, CONFIG_KIND_EVENT, "yh-01", FISHING_TEXT);
	deliver_kick(f->d);
	assert_true(run_until(f, one_failed_try, 5000));
	char *err = q_text(f, "SELECT last_error FROM delivery WHERE id = 1");
	assert_string_equal(err, "not connected to the broker");
	free(err);
	int64_t wait = q_int(f, "SELECT next_ms - created_ms FROM delivery WHERE id = 1");
	assert_true(wait >= 27000 && wait <= 34000);
	assert_int_equal(deliver_running(f->d), 0);
}

/* A document larger than the pipe buffer reaches a reading script whole,
 * and a script that never reads stdin still succeeds (EPIPE is not a
 * failure). GRIDPATROL_TEXT is cut below the kernel's per-string limit. */
static void test_big_document(void **state)
{
	struct fx *f = *state;
	fx_mkdir(f, "big");
	fx_mkdir(f, "noread");
	fx_start(f, "alerts:\n"
	            "  sinks:\n"
	            "    - name: big\n"
	            "      exec: [\"@SRC@/fixtures/sinks/record.sh\", \"@DIR@/big\"]\n"
	            "    - name: noread\n"
	            "      exec: [\"@SRC@/fixtures/sinks/noread.sh\", \"@DIR@/noread\"]\n");
	size_t n = 150 * 1024 / 3;
	char *text = malloc(n * 3 + 1);
	assert_non_null(text);
	for (size_t i = 0; i < n; i++)
		memcpy(text + 3 * i, "巡", 3);
	text[n * 3] = '\0';
	add_alert(f, CONFIG_KIND_DIGEST, NULL, text);
	deliver_kick(f->d);
	assert_true(run_until(f, two_delivered, 10000));

	char *in = fx_file(f, "big", "stdin", 1);
	json_t *doc = json_loads(in, 0, NULL);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "text")), text);
	json_decref(doc);
	free(in);
	char *env = fx_file(f, "big", "text", 1);
	assert_non_null(env);
	size_t elen = strlen(env);
	assert_true(elen > 90 * 1024 && elen <= 100 * 1024);
	assert_int_equal(elen % 3, 0);
	assert_memory_equal(env, text, elen);
	free(env);
	free(text);
	char path[256];
	snprintf(path, sizeof(path), "%s/noread/done", f->dir);
	char *done = slurp(path);
	assert_non_null(done);
	free(done);
}

/* A program that cannot be started is a failed try, not a crash. */
static void test_missing_program(void **state)
{
	struct fx *f = *state;
	/* qemu-user runs posix_spawn's CLONE_VFORK as a plain fork, so the
	 * child's exec error cannot reach the parent: it shows as exit status
	 * 127 and the text below cannot be checked there (the retry still is,
	 * by the other tests). contrib/cross sets this for its exe_wrapper. */
	if (getenv("GRIDPATROL_QEMU_USER") != NULL)
		skip();
	fx_start(f, "alerts:\n"
	            "  sinks:\n"
	            "    - name: gone\n"
	            "      exec: [\"@DIR@/no-such-bridge\"]\n");
	add_alert(f, CONFIG_KIND_EVENT, "yh-01", FISHING_TEXT);
	deliver_kick(f->d);
	assert_true(run_until(f, one_failed_try, 5000));
	char *err = q_text(f, "SELECT last_error FROM delivery WHERE id = 1");
	assert_non_null(err);
	assert_non_null(strstr(err, "cannot run"));
	free(err);
}

/* After a reload the sinks are matched by name: a running try of a sink
 * that disappeared finishes and is recorded; a new sink starts working. */
static void test_reload(void **state)
{
	struct fx *f = *state;
	char path[256];
	struct config *ncfg = NULL;
	struct config_errors errs = { 0 };

	fx_mkdir(f, "hang");
	fx_mkdir(f, "rec");
	fx_start(f, "alerts:\n"
	            "  retry: { min: 1s, max: 1s }\n"
	            "  sinks:\n"
	            "    - name: hang\n"
	            "      exec: [\"@SRC@/fixtures/sinks/hang.sh\", \"@DIR@/hang\"]\n"
	            "      timeout: 1s\n");
	add_alert(f, CONFIG_KIND_EVENT, "yh-01", FISHING_TEXT);
	deliver_kick(f->d);
	assert_false(run_until(f, never, 300));
	assert_int_equal(deliver_running(f->d), 1);

	char *body = expand(f, "alerts:\n"
	                       "  sinks:\n"
	                       "    - name: rec\n"
	                       "      exec: [\"@SRC@/fixtures/sinks/record.sh\", \"@DIR@/rec\"]\n");
	snprintf(path, sizeof(path), "%s/new.yaml", f->dir);
	FILE *y = fopen(path, "w");
	assert_non_null(y);
	fputs(body, y);
	fclose(y);
	free(body);
	assert_int_equal(config_load(path, &ncfg, &errs), 0);
	deliver_set_config(f->d, ncfg);
	config_free(f->cfg);
	f->cfg = ncfg;

	add_alert(f, CONFIG_KIND_EVENT, "yh-01", "新的");
	deliver_kick(f->d);
	assert_true(run_until(f, one_delivered, 10000));
	char *v = fx_file(f, "rec", "text", 1);
	assert_string_equal(v, "新的");
	free(v);
	/* The orphaned hang try times out, is recorded, and is not retried
	 * (its sink is gone). */
	assert_true(run_until(f, one_failed_try, 5000));
	assert_int_equal(deliver_running(f->d), 0);
	assert_false(run_until(f, never, 1500));
	assert_int_equal(fx_count(f, "hang"), 1);
}

static bool mqtt_up(struct fx *f)
{
	return mqtt_connected(f->m);
}

static pid_t spawn(char *const argv[], const char *out)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none;
	pid_t pid = -1;

	sigemptyset(&none);
	assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
	assert_int_equal(posix_spawnattr_init(&attr), 0);
	assert_int_equal(posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK), 0);
	assert_int_equal(posix_spawnattr_setsigmask(&attr, &none), 0);
	if (out)
		assert_int_equal(posix_spawn_file_actions_addopen(
		                         &fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0600),
		                 0);
	assert_int_equal(posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0), 0);
	int rc = posix_spawn(&pid, argv[0], &fa, &attr, argv, NULL);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	return rc == 0 ? pid : -1;
}

static bool wait_file_has(const char *path, const char *needle, int bound_ms)
{
	for (int i = 0; i <= bound_ms / 20; i++) {
		char *s = slurp(path);
		bool ok = s && strstr(s, needle);
		free(s);
		if (ok)
			return true;
		usleep(20000);
	}
	return false;
}

/* A real broker: one message per alert, QoS 1, topic from the template,
 * delivered once every PUBACK is back. */
static void test_mqtt_sink(void **state)
{
	struct fx *f = *state;
	char conf[256], log[256], out[256], port_s[16], yaml[1024];

	if (access("/usr/sbin/mosquitto", X_OK) != 0 || access("/usr/bin/mosquitto_sub", X_OK) != 0)
		skip();
	int sock = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET,
		                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	assert_int_equal(bind(sock, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(sock, (struct sockaddr *)&sa, &sl), 0);
	int port = ntohs(sa.sin_port);
	close(sock);
	snprintf(port_s, sizeof(port_s), "%d", port);

	snprintf(conf, sizeof(conf), "%s/mosquitto.conf", f->dir);
	snprintf(log, sizeof(log), "%s/mosquitto.log", f->dir);
	snprintf(out, sizeof(out), "%s/sub.out", f->dir);
	FILE *c = fopen(conf, "w");
	assert_non_null(c);
	struct passwd *pw = getpwuid(geteuid());
	fprintf(c,
	        "listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n"
	        "user %s\nlog_dest file %s\nlog_type all\n",
	        port, pw ? pw->pw_name : "root", log);
	fclose(c);
	char *bargv[] = { "/usr/sbin/mosquitto", "-c", conf, NULL };
	f->broker = spawn(bargv, NULL);
	assert_true(f->broker > 0);
	assert_true(wait_file_has(log, "listen socket on port", 10000));
	char *sargv[] = {
		"/usr/bin/mosquitto_sub", "-h", "127.0.0.1", "-p", port_s, "-i", "test-sub", "-t",
		"gridpatrol/alerts/#",    "-v", "-C",        "2",  NULL
	};
	f->sub = spawn(sargv, out);
	assert_true(f->sub > 0);
	assert_true(wait_file_has(log, "Sending SUBACK to test-sub", 10000));

	snprintf(yaml, sizeof(yaml),
	         "mqtt:\n  host: 127.0.0.1\n  port: %d\n  client_id: test-deliver\n"
	         "alerts:\n"
	         "  sinks:\n"
	         "    - name: mq\n"
	         "      topic: \"gridpatrol/alerts/{cell}/{kind}\"\n"
	         "      timeout: 5s\n"
	         "      group_window: 1s\n",
	         port);
	fx_start_mqtt(f, yaml, true);
	assert_true(run_until(f, mqtt_up, 10000));
	int64_t a1 = add_alert(f, CONFIG_KIND_EVENT, "yh-01", FISHING_TEXT);
	int64_t a2 = add_alert(f, CONFIG_KIND_SYSTEM, NULL, "数据库不可写");
	deliver_kick(f->d);
	assert_true(run_until(f, one_delivered, 10000));
	assert_int_equal(q_int(f, "SELECT tries FROM delivery WHERE id = 1"), 0);

	int status = 0;
	pid_t r = 0;
	for (int i = 0; i < 250 && r == 0; i++) {
		r = waitpid(f->sub, &status, WNOHANG);
		if (r == 0)
			usleep(20000);
	}
	assert_int_equal(r, f->sub);
	f->sub = 0;
	char *got = slurp(out);
	assert_non_null(got);
	char *line2 = strchr(got, '\n');
	assert_non_null(line2);
	*line2++ = '\0';
	const char *lines[2] = { got, line2 };
	const char *topics[2] = { "gridpatrol/alerts/yh-01/event ", "gridpatrol/alerts/-/system " };
	const char *texts[2] = { FISHING_TEXT, "数据库不可写" };
	int64_t ids[2] = { a1, a2 };
	for (int i = 0; i < 2; i++) {
		size_t tl = strlen(topics[i]);
		assert_memory_equal(lines[i], topics[i], tl);
		json_t *doc = json_loads(lines[i] + tl, JSON_DISABLE_EOF_CHECK, NULL);
		assert_non_null(doc);
		assert_string_equal(json_string_value(json_object_get(doc, "delivery_id")),
		                    "mq-000001");
		assert_string_equal(json_string_value(json_object_get(doc, "sink")), "mq");
		assert_string_equal(json_string_value(json_object_get(doc, "text")), texts[i]);
		json_t *alerts = json_object_get(doc, "alerts");
		assert_int_equal(json_array_size(alerts), 1);
		assert_int_equal(
		        json_integer_value(json_object_get(json_array_get(alerts, 0), "alert_id")),
		        ids[i]);
		json_decref(doc);
	}
	free(got);
}

static bool held_tried(struct fx *f)
{
	return fx_count(f, "rec") == 1 && fx_count(f, "flaky") >= 1 && deliver_running(f->d) == 0;
}

static long flaky_written_at; /* flaky's tries when the held alert was written */

static bool flaky_from_outbox(struct fx *f)
{
	/* Finished, not just started: the script writes its count first. */
	return fx_count(f, "flaky") > flaky_written_at && deliver_running(f->d) == 0;
}

/* (n) A held alert (database not writable) goes to the exec sinks from
 * memory while nothing is written; once written, the sink that got it has
 * a 'delivered' row and is not sent it again, the one that failed carries
 * on from the outbox with its tries, and the mqtt sink gets its delivery. */
static void test_held_alert(void **state)
{
	struct fx *f = *state;
	fx_mkdir(f, "rec");
	fx_mkdir(f, "flaky");
	fx_start(f, "alerts:\n"
	            "  retry: { min: 1s, max: 1s, give_up_after: 1h }\n"
	            "  sinks:\n"
	            "    - name: rec\n"
	            "      exec: [\"@SRC@/fixtures/sinks/record.sh\", \"@DIR@/rec\"]\n"
	            "    - name: flaky\n"
	            "      exec: [\"@SRC@/fixtures/sinks/record.sh\", \"@DIR@/flaky\", \"100\"]\n"
	            "    - name: pub\n"
	            "      topic: \"alerts/{kind}\"\n");
	assert_int_equal(
	        deliver_hold(f->d, CONFIG_KIND_SYSTEM, loop_wall_ms() / 1000,
	                     "【系统告警】数据库无法写入",
	                     "{\"kind\":\"system\",\"cell\":null,\"condition\":\"storage\"}", true),
	        0);
	assert_true(run_until(f, held_tried, 10000));
	assert_int_equal(q_int(f, "SELECT count(*) FROM alert"), 0);
	assert_int_equal(deliver_held_count(f->d), 1);

	char *id = fx_file(f, "rec", "id", 1);
	assert_non_null(id);
	assert_true(strncmp(id, "rec-m", 5) == 0);
	char *in = fx_file(f, "rec", "stdin", 1);
	json_t *doc = json_loads(in, 0, NULL);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "delivery_id")), id);
	json_t *a0 = json_array_get(json_object_get(doc, "alerts"), 0);
	assert_string_equal(json_object_iter_key(json_object_iter(a0)), "alert_id");
	assert_true(json_is_null(json_object_get(a0, "alert_id")));
	assert_string_equal(json_string_value(json_object_get(a0, "condition")), "storage");
	json_decref(doc);
	free(in);
	free(id);

	assert_int_equal(deliver_write_held(f->d), STORE_OK);
	assert_int_equal(store_commit(f->s), STORE_OK);
	deliver_held_committed(f->d, true);
	assert_int_equal(deliver_held_count(f->d), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM alert WHERE kind = 'system' AND "
	                          "json_extract(doc, '$.held') = 1"),
	                 1);
	assert_int_equal(q_int(f, "SELECT count(*) FROM delivery WHERE sink = 'rec' AND "
	                          "state = 'delivered' AND tries = 0 AND done_ms > 0"),
	                 1);
	assert_true(q_int(f, "SELECT tries FROM delivery WHERE sink = 'flaky' AND "
	                     "state = 'pending'") >= 1);
	char *err = q_text(f, "SELECT last_error FROM delivery WHERE sink = 'flaky'");
	assert_string_equal(err, "exit status 1");
	free(err);
	/* Not an exec sink: nothing from memory, an ordinary delivery now. */
	assert_int_equal(q_int(f, "SELECT count(*) FROM delivery WHERE sink = 'pub' AND "
	                          "state = 'pending' AND tries = 0"),
	                 1);
	assert_int_equal(q_int(f, "SELECT id FROM delivery WHERE sink = 'flaky'"), 2);

	/* The outbox takes over: flaky again under the id its tries from
	 * memory had (SPEC: the same delivery_id on every retry), rec never. */
	flaky_written_at = fx_count(f, "flaky");
	assert_true(run_until(f, flaky_from_outbox, 10000));
	assert_int_equal(fx_count(f, "rec"), 1);
	char *held_id = fx_file(f, "flaky", "id", 1);
	char *next_id = fx_file(f, "flaky", "id", (int)fx_count(f, "flaky"));
	assert_non_null(held_id);
	assert_non_null(next_id);
	assert_true(strncmp(held_id, "flaky-m", 7) == 0);
	assert_string_equal(next_id, held_id);
	free(held_id);
	free(next_id);
}

/* (o) A held alert whose write fails midway leaves nothing behind: the
 * batch committed after the failure (the daemon's last commit at shutdown)
 * has the alerts written before it whole, and not a part of the failed one
 * (an alert row without some of its sinks' deliveries). */
static void test_held_write_all_or_nothing(void **state)
{
	struct fx *f = *state;
	fx_mkdir(f, "a");
	fx_mkdir(f, "b");
	fx_start(f, "alerts:\n"
	            "  sinks:\n"
	            "    - name: a\n"
	            "      exec: [\"@SRC@/fixtures/sinks/record.sh\", \"@DIR@/a\"]\n"
	            "    - name: b\n"
	            "      exec: [\"@SRC@/fixtures/sinks/record.sh\", \"@DIR@/b\"]\n");
	int64_t now = loop_wall_ms() / 1000;
	assert_int_equal(deliver_hold(f->d, CONFIG_KIND_SYSTEM, now, "first",
	                              "{\"kind\":\"system\",\"condition\":\"storage\"}", false),
	                 0);
	assert_int_equal(deliver_hold(f->d, CONFIG_KIND_SYSTEM, now, "second",
	                              "{\"kind\":\"system\",\"condition\":\"broker\"}", false),
	                 0);
	/* The second alert's row for sink b cannot be written. */
	assert_int_equal(sqlite3_exec(store_db(f->s),
	                              "CREATE TEMP TRIGGER fail_b BEFORE INSERT ON main.outbox "
	                              "WHEN NEW.sink = 'b' AND (SELECT text FROM main.alert "
	                              "WHERE id = NEW.alert_id) = 'second' "
	                              "BEGIN SELECT RAISE(ABORT, 'test: no room'); END",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	assert_int_not_equal(deliver_write_held(f->d), STORE_OK);
	assert_int_equal(store_commit(f->s), STORE_OK);
	deliver_held_committed(f->d, true);

	assert_int_equal(q_int(f, "SELECT count(*) FROM alert"), 1);
	assert_int_equal(q_int(f, "SELECT count(*) FROM alert WHERE text = 'first'"), 1);
	assert_int_equal(q_int(f, "SELECT count(*) FROM outbox"), 2);
	assert_int_equal(q_int(f, "SELECT count(*) FROM delivery"), 2);
	assert_int_equal(deliver_held_count(f->d), 1);

	/* Once the write works, the rest follows, whole. */
	assert_int_equal(sqlite3_exec(store_db(f->s), "DROP TRIGGER fail_b", NULL, NULL, NULL),
	                 SQLITE_OK);
	assert_int_equal(deliver_write_held(f->d), STORE_OK);
	assert_int_equal(store_commit(f->s), STORE_OK);
	deliver_held_committed(f->d, true);
	assert_int_equal(deliver_held_count(f->d), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM outbox o JOIN alert a ON "
	                          "a.id = o.alert_id WHERE a.text = 'second'"),
	                 2);
}

static void stop_when_running(void *arg)
{
	struct fx *f = arg;
	if (f->d->n_sinks > 0 && f->d->sinks[0]->cur)
		loop_stop(f->l);
}

/* An exec try's timeout falls due in the loop pass in which its child
 * exited after poll() returned (timers run before the next pass reads the
 * SIGCHLD). The timeout must reap and record the outcome, and then not
 * touch the try it has just freed, nor kill a process group that is gone.
 * Under ASan this was a heap-use-after-free. */
static void test_timeout_after_exit(void **state)
{
	struct fx *f = *state;
	fx_start(f, "alerts:\n"
	            "  sinks:\n"
	            "    - name: t\n"
	            "      exec: [\"/bin/true\"]\n"
	            "      timeout: 10s\n");
	assert_int_equal(loop_on_check(f->l, stop_when_running, f), 0);
	add_alert(f, CONFIG_KIND_EVENT, "yh-01", "x");
	deliver_kick(f->d);
	assert_int_equal(loop_run(f->l), 0);
	struct dtry *t = f->d->sinks[0]->cur;
	assert_non_null(t);
	assert_false(t->finished);
	/* Wait (bounded) until /bin/true has exited: a zombie, not yet reaped
	 * (WNOWAIT leaves it for the try to reap). It is this test's only
	 * child. */
	bool exited = false;
	for (int i = 0; i < 500 && !exited; i++) {
		siginfo_t si = { 0 };
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid != 0)
			exited = true;
		else
			usleep(10000);
	}
	assert_true(exited);
	t->ops->timeout(t);
	assert_null(f->d->sinks[0]->cur);
	char *st = q_text(f, "SELECT state FROM delivery WHERE id = 1");
	assert_non_null(st);
	assert_string_equal(st, "delivered");
	free(st);
}

int main(void)
{
	/* As the daemon does: a script that does not read its stdin must
	 * not kill us with SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	log_init(getenv("TEST_DEBUG") ? LOG_DEBUG : LOG_INFO);
	if (getenv("TEST_FILTER"))
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_exec_delivers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_retries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_timeout_kills_group, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_sink_does_not_block, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_give_up, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kinds_filter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mqtt_without_client, setup, teardown),
		cmocka_unit_test_setup_teardown(test_big_document, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_program, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_after_exit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mqtt_sink, setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_alert, setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_write_all_or_nothing, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
