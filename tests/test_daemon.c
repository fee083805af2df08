/*
 * daemon tests without a broker: the real daemon_run on a real SQLite file,
 * with this file standing in for the mqtt module (its functions replace
 * mqtt.c's at link time: nothing else in the daemon library needs that
 * object) and for fdatasync (so a COMMIT can be made to fail the way a
 * failing disk makes it fail). What is checked is the rule the whole
 * design rests on (docs/architecture.md, "Ack after commit"): the acks of
 * a batch leave (mqtt_flush) only after its COMMIT, and only then; a batch
 * whose COMMIT fails is rolled back and the connection dropped with its
 * acks unsent (mqtt_abort), and the messages, redelivered after the
 * storage retry, are stored and acked then.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "loop.h"
#include "mqtt.h"

/* ---- fdatasync, failing on demand --------------------------------------- */

static bool fail_sync;
static int failed_syncs;

int fdatasync(int fd);
int fsync(int fd);

int fdatasync(int fd)
{
	if (fail_sync) {
		failed_syncs++;
		errno = EIO;
		return -1;
	}
	return (int)syscall(SYS_fdatasync, fd);
}

int fsync(int fd)
{
	if (fail_sync) {
		failed_syncs++;
		errno = EIO;
		return -1;
	}
	return (int)syscall(SYS_fsync, fd);
}

/* ---- the fake broker connection ----------------------------------------- */

struct mqtt {
	struct loop *l;
	struct mqtt_handlers h;
	void *arg;
	struct loop_timer step_timer;
	int step;
	bool held;
};

static struct {
	char db[128];
	int64_t queued; /* messages whose acks libmosquitto would have queued */
	int64_t acked;  /* messages whose acks a flush let out */
	int flushes;    /* flushes that let acks out */
	int aborts, holds, releases;
	bool done;
} fk;

/* What a reader sees: committed rows only. */
static int64_t committed_events(void)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t n = -1;

	assert_int_equal(sqlite3_open_v2(fk.db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM event", -1, &st, NULL),
	                 SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

static void deliver_msgs(struct mqtt *m, const char *const *ids)
{
	for (; *ids; ids++) {
		char payload[64];
		snprintf(payload, sizeof(payload), "{\"id\":\"%s\"}", *ids);
		m->h.message(m->arg, "patrol/yh-01/w017/checkin", payload, strlen(payload));
		fk.queued++;
	}
}

static void step_next(struct mqtt *m, int64_t delay_ms)
{
	assert_int_equal(loop_timer_arm(m->l, &m->step_timer, delay_ms), 0);
}

/*
 * The script. Each step runs in a timer callback; the daemon's check hook
 * (commit, then flush or abort) runs at the end of that loop pass, so the
 * next step sees what it did.
 */
static void step_cb(void *arg)
{
	static const char *const first[] = { "a1", "a2", "a3", NULL };
	static const char *const second[] = { "b1", "b2", NULL };
	struct mqtt *m = arg;

	switch (m->step++) {
	case 0:
		/* A batch of three: committed, then acked. */
		deliver_msgs(m, first);
		step_next(m, 20);
		break;
	case 1:
		assert_int_equal(fk.flushes, 1);
		assert_int_equal(fk.acked, 3);
		assert_int_equal(fk.aborts, 0);
		/* The next COMMIT cannot sync its WAL. */
		fail_sync = true;
		deliver_msgs(m, second);
		step_next(m, 20);
		break;
	case 2:
		/* Rolled back, the connection dropped, nothing acked. */
		assert_true(failed_syncs > 0);
		assert_int_equal(fk.flushes, 1);
		assert_int_equal(fk.acked, 3);
		assert_int_equal(fk.queued, 0);
		assert_int_equal(fk.aborts, 1);
		assert_true(m->held);
		assert_int_equal(committed_events(), 3);
		fail_sync = false;
		/* Step 3 comes with the storage retry (mqtt_hold(false)). */
		break;
	case 3:
		/* The broker redelivers what was never acked. */
		deliver_msgs(m, second);
		step_next(m, 20);
		break;
	case 4:
		assert_int_equal(fk.flushes, 2);
		assert_int_equal(fk.acked, 5);
		assert_int_equal(fk.aborts, 1);
		fk.done = true;
		kill(getpid(), SIGTERM);
		break;
	default:
		break;
	}
}

struct mqtt *mqtt_new(const struct config *cfg, struct loop *l, const struct mqtt_handlers *h,
                      void *arg, char *err, size_t errlen)
{
	struct mqtt *m = calloc(1, sizeof(*m));

	(void)cfg;
	(void)err;
	(void)errlen;
	assert_non_null(m);
	m->l = l;
	m->h = *h;
	m->arg = arg;
	loop_timer_init(&m->step_timer, step_cb, m);
	return m;
}

void mqtt_free(struct mqtt *m)
{
	if (m)
		loop_timer_disarm(m->l, &m->step_timer);
	free(m);
}

void mqtt_start(struct mqtt *m)
{
	step_next(m, 0);
}

/* The acks leave: every message they are for must be in a committed row
 * already (each one here is a new event). */
void mqtt_flush(struct mqtt *m)
{
	(void)m;
	if (fk.queued == 0)
		return; /* a pass with nothing to ack */
	assert_int_equal(committed_events(), fk.acked + fk.queued);
	fk.acked += fk.queued;
	fk.queued = 0;
	fk.flushes++;
}

/* The connection drops: libmosquitto forgets the queued acks and the
 * broker keeps the messages. */
void mqtt_abort(struct mqtt *m, int64_t delay_ms)
{
	(void)m;
	(void)delay_ms;
	fk.queued = 0;
	fk.aborts++;
}

void mqtt_hold(struct mqtt *m, bool hold)
{
	if (hold) {
		fk.holds++;
	} else if (m->held) {
		fk.releases++;
		if (m->step == 3)
			step_next(m, 0);
	}
	m->held = hold;
}

void mqtt_shutdown(struct mqtt *m, int timeout_ms)
{
	(void)m;
	(void)timeout_ms;
}

bool mqtt_connected(const struct mqtt *m)
{
	(void)m;
	return false;
}

int mqtt_publish(struct mqtt *m, const char *topic, const void *payload, size_t len, int qos,
                 bool retain, int *mid)
{
	(void)m;
	(void)topic;
	(void)payload;
	(void)len;
	(void)qos;
	(void)retain;
	(void)mid;
	return -1;
}

const char *mqtt_status_topic(const struct mqtt *m)
{
	(void)m;
	return "gridpatrol/status/test";
}

/* ---- the test ------------------------------------------------------------ */

static void test_acks_only_after_commit(void **state)
{
	char dir[] = "/tmp/gridpatrol-test-daemon-XXXXXX";
	char conf[128], cmd[160];
	struct config *cfg = NULL;
	struct config_errors errs = { 0 };

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(fk.db, sizeof(fk.db), "%s/patrol.db", dir);
	snprintf(conf, sizeof(conf), "%s/gridpatrol.yaml", dir);
	FILE *y = fopen(conf, "w");
	assert_non_null(y);
	fprintf(y,
	        "storage:\n  path: \"%s\"\ncells:\n  - id: yh-01\n"
	        "events:\n  checkin: { label: \"巡查签到\" }\n",
	        fk.db);
	fclose(y);
	int rc = config_load(conf, &cfg, &errs);
	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.v[i]);
	config_errors_free(&errs);
	assert_int_equal(rc, 0);

	assert_int_equal(daemon_run(conf, cfg), 0);
	assert_true(fk.done);
	assert_int_equal(committed_events(), 5);
	assert_int_equal(fk.holds, 1);
	assert_int_equal(fk.releases, 1);

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_acks_only_after_commit),
	};
	log_init(LOG_DEBUG);
	return cmocka_run_group_tests_name("daemon", tests, NULL, NULL);
}
