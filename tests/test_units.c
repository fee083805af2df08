/*
 * Unit tests for units.c: the duration, size, clock and active-window
 * parsers. The interesting cases are the near misses a person might type
 * ("4 h", "8KB", "7:00", "1m1h") and the edges of int64_t, all of which
 * must fail without touching the output.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "units.h"

static void dur_ok(const char *s, int64_t want)
{
	int64_t v = -1;

	if (units_duration(s, &v) != 0)
		fail_msg("duration '%s' rejected", s);
	assert_int_equal(v, want);
}

static void dur_bad(const char *s)
{
	int64_t v = 12345;

	if (units_duration(s, &v) != -1)
		fail_msg("duration '%s' accepted", s);
	assert_int_equal(v, 12345);
}

static void test_duration_valid(void **state)
{
	(void)state;
	dur_ok("0s", 0);
	dur_ok("0d", 0);
	dur_ok("90s", 90);
	dur_ok("15m", 900);
	dur_ok("4h", 14400);
	dur_ok("2d", 172800);
	dur_ok("1h30m", 5400);
	dur_ok("1d2h3m4s", 93784);
	dur_ok("1d4s", 86404);
	dur_ok("007m", 420);
	dur_ok("400d", 400 * 86400);
	dur_ok("9223372036854775807s", INT64_MAX);
	dur_ok("106751991167300d", INT64_C(106751991167300) * 86400);
}

static void test_duration_invalid(void **state)
{
	(void)state;
	dur_bad("");
	dur_bad("5"); /* missing unit */
	dur_bad("s");
	dur_bad("-5m"); /* negative */
	dur_bad("+5m");
	dur_bad("5 m"); /* spaces */
	dur_bad(" 5m");
	dur_bad("5m ");
	dur_bad("1h 30m");
	dur_bad("5M"); /* units are lower case */
	dur_bad("5ms");
	dur_bad("5min");
	dur_bad("1.5h");
	dur_bad("1m1h"); /* ascending */
	dur_bad("1h1h"); /* repeated */
	dur_bad("1h30"); /* trailing digits */
	dur_bad("1w");
	dur_bad("0x10s");
	dur_bad("9223372036854775808s"); /* overflow in digits */
	dur_bad("106751991167301d");     /* overflow in multiply */
	dur_bad("1d1d");
	dur_bad("106751991167300d86400s"); /* overflow in sum */
	dur_bad("99999999999999999999999h");
	assert_int_equal(units_duration(NULL, NULL), -1);
}

static void size_ok(const char *s, int64_t want)
{
	int64_t v = -1;

	if (units_size(s, &v) != 0)
		fail_msg("size '%s' rejected", s);
	assert_int_equal(v, want);
}

static void size_bad(const char *s)
{
	int64_t v = 777;

	if (units_size(s, &v) != -1)
		fail_msg("size '%s' accepted", s);
	assert_int_equal(v, 777);
}

static void test_size(void **state)
{
	(void)state;
	size_ok("0", 0);
	size_ok("8192", 8192);
	size_ok("100B", 100);
	size_ok("8KiB", 8192);
	size_ok("1MiB", 1048576);
	size_ok("2GiB", INT64_C(2147483648));
	size_ok("9223372036854775807", INT64_MAX);
	size_ok("8589934591GiB", INT64_C(8589934591) << 30);

	size_bad("");
	size_bad("KiB");
	size_bad("8KB");
	size_bad("8kib");
	size_bad("8K");
	size_bad("8 KiB");
	size_bad("-1");
	size_bad("1.5MiB");
	size_bad("8KiBB");
	size_bad("8TiB");
	size_bad("9223372036854775808");
	size_bad("8589934592GiB");
	size_bad(" 1");
	assert_int_equal(units_size(NULL, NULL), -1);
}

static void test_clock(void **state)
{
	int m = -1;

	(void)state;
	assert_int_equal(units_clock("00:00", false, &m), 0);
	assert_int_equal(m, 0);
	assert_int_equal(units_clock("07:30", false, &m), 0);
	assert_int_equal(m, 450);
	assert_int_equal(units_clock("23:59", false, &m), 0);
	assert_int_equal(m, 1439);
	assert_int_equal(units_clock("24:00", true, &m), 0);
	assert_int_equal(m, 1440);

	m = -7;
	assert_int_equal(units_clock("24:00", false, &m), -1);
	assert_int_equal(units_clock("24:01", true, &m), -1);
	assert_int_equal(units_clock("25:00", true, &m), -1);
	assert_int_equal(units_clock("12:60", false, &m), -1);
	assert_int_equal(units_clock("7:00", false, &m), -1);
	assert_int_equal(units_clock("07:0", false, &m), -1);
	assert_int_equal(units_clock("07:00 ", false, &m), -1);
	assert_int_equal(units_clock("0700", false, &m), -1);
	assert_int_equal(units_clock("07.00", false, &m), -1);
	assert_int_equal(units_clock("", false, &m), -1);
	assert_int_equal(units_clock("ab:cd", false, &m), -1);
	assert_int_equal(units_clock(NULL, false, &m), -1);
	assert_int_equal(m, -7);
}

static void test_active(void **state)
{
	struct units_active a = { false, -1, -1 };
	struct units_active keep = { false, 11, 22 };

	(void)state;
	assert_int_equal(units_active("always", &a), 0);
	assert_true(a.always);

	assert_int_equal(units_active("07:00-19:00", &a), 0);
	assert_false(a.always);
	assert_int_equal(a.start_min, 420);
	assert_int_equal(a.end_min, 1140);

	assert_int_equal(units_active("20:00-06:00", &a), 0);
	assert_int_equal(a.start_min, 1200);
	assert_int_equal(a.end_min, 360);

	assert_int_equal(units_active("00:00-24:00", &a), 0);
	assert_int_equal(a.start_min, 0);
	assert_int_equal(a.end_min, 1440);

	a = keep;
	assert_int_equal(units_active("07:00-07:00", &a), -1); /* empty */
	assert_int_equal(units_active("24:00-06:00", &a), -1);
	assert_int_equal(units_active("7:00-19:00", &a), -1);
	assert_int_equal(units_active("07:00 - 19:00", &a), -1);
	assert_int_equal(units_active("07:00-19:00x", &a), -1);
	assert_int_equal(units_active("07:00–19:00", &a), -1); /* en dash */
	assert_int_equal(units_active("07:00", &a), -1);
	assert_int_equal(units_active("Always", &a), -1);
	assert_int_equal(units_active("", &a), -1);
	assert_int_equal(units_active(NULL, &a), -1);
	assert_int_equal(a.start_min, 11);
	assert_int_equal(a.end_min, 22);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration_valid), cmocka_unit_test(test_duration_invalid),
		cmocka_unit_test(test_size),           cmocka_unit_test(test_clock),
		cmocka_unit_test(test_active),
	};

	return cmocka_run_group_tests_name("units", tests, NULL, NULL);
}
