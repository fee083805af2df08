/*
 * Unit tests for backoff.c: the waits every retry in the daemon uses. The
 * sequences of today's callers (storage 1 s → 5 s, broker 0.5 s → 60 s,
 * deliveries retry.min → retry.max), the jitter's bounds, and try counts
 * far past any real outage, which must neither overflow nor wrap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "backoff.h"

static void test_doubling(void **state)
{
	(void)state;
	assert_int_equal(backoff_delay_ms(1000, 5000, 0), 1000);
	assert_int_equal(backoff_delay_ms(1000, 5000, 1), 2000);
	assert_int_equal(backoff_delay_ms(1000, 5000, 2), 4000);
	assert_int_equal(backoff_delay_ms(500, 60000, 6), 32000);
	assert_int_equal(backoff_delay_ms(10000, 1800000, 4), 160000);
	assert_int_equal(backoff_delay_ms(1000, 5000, -3), 1000);
}

static void test_cap(void **state)
{
	(void)state;
	assert_int_equal(backoff_delay_ms(1000, 5000, 3), 5000);
	assert_int_equal(backoff_delay_ms(1000, 5000, 4), 5000);
	assert_int_equal(backoff_delay_ms(500, 60000, 7), 60000);
	assert_int_equal(backoff_delay_ms(10000, 1800000, 20), 1800000);
	/* A maximum below the minimum wins; none means no growth. */
	assert_int_equal(backoff_delay_ms(5000, 1000, 3), 1000);
	assert_int_equal(backoff_delay_ms(5000, 0, 3), 5000);
	/* Equal to the cap after exactly enough doublings. */
	assert_int_equal(backoff_delay_ms(1000, 4000, 2), 4000);
}

static void test_huge_tries(void **state)
{
	(void)state;
	assert_int_equal(backoff_delay_ms(1000, 5000, INT32_MAX), 5000);
	assert_int_equal(backoff_delay_ms(1, INT64_MAX, INT32_MAX), INT64_MAX);
	assert_int_equal(backoff_delay_ms(3, INT64_MAX - 1, 1000), INT64_MAX - 1);
	int64_t v = backoff_delay_ms(1, INT64_MAX, 62);
	assert_int_equal(v, (int64_t)1 << 62);
	/* And the jitter on top of a saturated wait stays positive. */
	for (uint64_t r = 0; r < 1000; r += 7)
		assert_true(backoff_jitter_ms(INT64_MAX, 25, r * 0x9e3779b97f4a7c15ULL) > 0);
}

static void test_jitter_bounds(void **state)
{
	struct backoff_rng g;
	int64_t lo = INT64_MAX, hi = 0;

	(void)state;
	backoff_rng_seed(&g, 42);
	for (int i = 0; i < 100000; i++) {
		int64_t v = backoff_jitter_ms(10000, 10, backoff_rng_next(&g));
		assert_true(v >= 9000 && v <= 11000);
		lo = v < lo ? v : lo;
		hi = v > hi ? v : hi;
	}
	/* Spread over the whole range, not stuck at one end. */
	assert_true(lo < 9050 && hi > 10950);

	/* The broker's ±25 %, with r as random() gives it. */
	assert_int_equal(backoff_jitter_ms(500, 25, 0), 375);
	assert_int_equal(backoff_jitter_ms(500, 25, 250), 625);
	assert_int_equal(backoff_jitter_ms(500, 25, 251), 375);
	assert_int_equal(backoff_jitter_ms(500, 25, 125), 500);

	/* No jitter, or too small a delay to spread. */
	assert_int_equal(backoff_jitter_ms(10000, 0, 12345), 10000);
	assert_int_equal(backoff_jitter_ms(3, 25, 12345), 3);
	assert_int_equal(backoff_jitter_ms(0, 25, 12345), 0);
}

static void test_rng(void **state)
{
	struct backoff_rng a, b, z;

	(void)state;
	backoff_rng_seed(&a, 7);
	backoff_rng_seed(&b, 7);
	for (int i = 0; i < 100; i++)
		assert_int_equal(backoff_rng_next(&a), backoff_rng_next(&b));
	/* A zero seed must not leave the generator stuck at zero. */
	backoff_rng_seed(&z, 0);
	assert_true(backoff_rng_next(&z) != 0);
	assert_true(backoff_rng_next(&z) != backoff_rng_next(&z));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_doubling),   cmocka_unit_test(test_cap),
		cmocka_unit_test(test_huge_tries), cmocka_unit_test(test_jitter_bounds),
		cmocka_unit_test(test_rng),
	};
	return cmocka_run_group_tests_name("backoff", tests, NULL, NULL);
}
