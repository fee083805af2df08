/*
 * Unit tests for dbstate.c: the storage outage as the daemon lives it, on
 * a fake clock. One failure is an outage but not yet news; 5 s without a
 * commit is; a commit is not the end until 10 s have passed since the last
 * failure; retries back off 1 s → 5 s and start over with the next outage;
 * freed space wakes a retry; held alerts write only when it is worth it.
 * And delivery's own pause: one retry at a time, the same backoff.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dbstate.h"

static void test_outage_start_and_end(void **state)
{
	struct dbstate s;
	bool alerted = true;
	int64_t down = -1;

	(void)state;
	dbstate_init(&s);
	assert_false(s.down);
	assert_false(dbstate_confirm(&s, 0, &alerted, &down));
	assert_false(dbstate_alert_due(&s, 100000));

	assert_true(dbstate_failed(&s, 1000, true));
	assert_true(s.down && s.full);
	/* Later failures belong to the same outage. */
	assert_false(dbstate_failed(&s, 3000, false));
	assert_false(s.full);
	assert_int_equal(s.down_ms, 1000);

	/* A commit alone is not the end: 10 s since the last failure. */
	dbstate_committed(&s);
	assert_false(dbstate_confirm(&s, 12999, &alerted, &down));
	assert_true(s.down);
	assert_true(dbstate_confirm(&s, 13000, &alerted, &down));
	assert_false(s.down);
	assert_false(alerted);
	assert_int_equal(down, 2);
	assert_false(dbstate_confirm(&s, 14000, &alerted, &down));

	/* Quiet time without a commit ends nothing. */
	assert_true(dbstate_failed(&s, 20000, false));
	assert_false(dbstate_confirm(&s, 60000, &alerted, &down));
	/* A failure after a commit starts the count again. */
	dbstate_committed(&s);
	assert_false(dbstate_failed(&s, 61000, false));
	assert_false(dbstate_confirm(&s, 62000, &alerted, &down));
	dbstate_committed(&s);
	assert_true(dbstate_confirm(&s, 71000, &alerted, &down));
	assert_int_equal(down, 41);
}

static void test_alert_after_5s_once(void **state)
{
	struct dbstate s;
	bool alerted = false;
	int64_t down = 0;

	(void)state;
	dbstate_init(&s);
	dbstate_failed(&s, 10000, false);
	assert_false(dbstate_alert_due(&s, 14999));
	dbstate_failed(&s, 14000, false);
	/* Counted from the first failure, not the latest. */
	assert_true(dbstate_alert_due(&s, 15000));
	assert_false(dbstate_alert_due(&s, 16000));
	dbstate_committed(&s);
	assert_true(dbstate_confirm(&s, 24000, &alerted, &down));
	assert_true(alerted);
	assert_int_equal(down, 4);

	/* A batch that got through within 5 s: no alert for this outage. */
	dbstate_failed(&s, 30000, false);
	dbstate_committed(&s);
	assert_false(dbstate_alert_due(&s, 36000));
	assert_true(dbstate_confirm(&s, 40000, &alerted, &down));
	assert_false(alerted);
}

static void test_retry_backoff(void **state)
{
	struct dbstate s;
	bool alerted;
	int64_t down;

	(void)state;
	dbstate_init(&s);
	dbstate_failed(&s, 0, false);
	assert_int_equal(dbstate_retry_delay(&s), 1000);
	assert_int_equal(dbstate_retry_delay(&s), 2000);
	assert_int_equal(dbstate_retry_delay(&s), 4000);
	assert_int_equal(dbstate_retry_delay(&s), 5000);
	assert_int_equal(dbstate_retry_delay(&s), 5000);
	dbstate_committed(&s);
	assert_true(dbstate_confirm(&s, 10000, &alerted, &down));
	/* The next outage starts over. */
	dbstate_failed(&s, 20000, false);
	assert_int_equal(dbstate_retry_delay(&s), 1000);
}

static void test_wake_on_free_space(void **state)
{
	struct dbstate s;

	(void)state;
	dbstate_init(&s);
	assert_false(dbstate_wake(&s, INT64_C(1) << 40));
	dbstate_failed(&s, 0, true);
	dbstate_set_free(&s, -1);
	assert_false(dbstate_wake(&s, INT64_C(1) << 40));
	dbstate_set_free(&s, 1000000);
	assert_false(dbstate_wake(&s, 1000000 + DBSTATE_WAKE_BYTES));
	assert_true(dbstate_wake(&s, 1000001 + DBSTATE_WAKE_BYTES));
	/* The new figure is the base for the next wake. */
	assert_false(dbstate_wake(&s, 1000001 + DBSTATE_WAKE_BYTES));
}

static void test_held_write(void **state)
{
	struct dbstate s;

	(void)state;
	dbstate_init(&s);
	assert_true(dbstate_take_held_write(&s));
	dbstate_failed(&s, 0, false);
	assert_false(dbstate_take_held_write(&s));
	/* A due retry lets them write once. */
	dbstate_retry_due(&s);
	assert_true(s.probe);
	assert_true(dbstate_take_held_write(&s));
	assert_false(s.probe);
	assert_false(dbstate_take_held_write(&s));
	/* A failure uses the probe up too. */
	dbstate_retry_due(&s);
	dbstate_failed(&s, 100, false);
	assert_false(dbstate_take_held_write(&s));
	/* Once a batch got through, every pass. */
	dbstate_committed(&s);
	assert_true(dbstate_take_held_write(&s));
	assert_true(dbstate_take_held_write(&s));
}

static void test_pause(void **state)
{
	struct dbstate_pause p = { 0 };

	(void)state;
	assert_int_equal(dbstate_pause_failed(&p), 1000);
	assert_true(p.paused);
	/* Failures while paused wait for the armed retry. */
	assert_int_equal(dbstate_pause_failed(&p), -1);
	dbstate_pause_retry(&p);
	assert_false(p.paused);
	assert_int_equal(dbstate_pause_failed(&p), 2000);
	dbstate_pause_retry(&p);
	assert_int_equal(dbstate_pause_failed(&p), 4000);
	dbstate_pause_retry(&p);
	assert_int_equal(dbstate_pause_failed(&p), 5000);
	dbstate_pause_retry(&p);
	assert_int_equal(dbstate_pause_failed(&p), 5000);
	/* A retry that gets through starts the next pause over. */
	dbstate_pause_retry(&p);
	dbstate_pause_ok(&p);
	assert_int_equal(dbstate_pause_failed(&p), 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_outage_start_and_end),
		cmocka_unit_test(test_alert_after_5s_once),
		cmocka_unit_test(test_retry_backoff),
		cmocka_unit_test(test_wake_on_free_space),
		cmocka_unit_test(test_held_write),
		cmocka_unit_test(test_pause),
	};
	return cmocka_run_group_tests_name("dbstate", tests, NULL, NULL);
}
