/*
 * test_utf8: every rule of the strict decoder at its edges (the last and
 * first code point of each sequence length, overlong forms, surrogates,
 * the U+10FFFF ceiling, truncated and broken sequences), and that the
 * checker, the prefix and the counter built on it agree with it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "utf8.h"

/* Decodes s (NUL-terminated, or n bytes when n > 0) as one sequence. */
static size_t dec(const char *s, size_t n, uint32_t *cp)
{
	*cp = 0xFFFFFFFF;
	return utf8_decode((const unsigned char *)s, n ? n : strlen(s), cp);
}

static void ok(const char *s, size_t want_len, uint32_t want_cp)
{
	uint32_t cp;

	assert_int_equal(dec(s, want_len, &cp), want_len);
	assert_int_equal(cp, want_cp);
}

static void bad(const char *s, size_t n)
{
	uint32_t cp;

	assert_int_equal(dec(s, n, &cp), 0);
	assert_int_equal(cp, 0xFFFFFFFF); /* untouched */
}

static void test_boundaries(void **state)
{
	(void)state;
	ok("\x00", 1, 0x00);
	ok("A", 1, 0x41);
	ok("\x7F", 1, 0x7F);
	ok("\xC2\x80", 2, 0x80);
	ok("\xDF\xBF", 2, 0x7FF);
	ok("\xE0\xA0\x80", 3, 0x800);
	ok("\xE6\xB0\xB4", 3, 0x6C34); /* 水 */
	ok("\xED\x9F\xBF", 3, 0xD7FF);
	ok("\xEE\x80\x80", 3, 0xE000);
	ok("\xEF\xBF\xBF", 3, 0xFFFF);
	ok("\xF0\x90\x80\x80", 4, 0x10000);
	ok("\xF4\x8F\xBF\xBF", 4, 0x10FFFF);
}

static void test_past_ceiling(void **state)
{
	(void)state;
	bad("\xF4\x90\x80\x80", 4); /* U+110000 */
	bad("\xF4\xBF\xBF\xBF", 4);
	bad("\xF5\x80\x80\x80", 4); /* leads F5..FF never start a sequence */
	bad("\xF7\xBF\xBF\xBF", 4);
	bad("\xF8\x88\x80\x80\x80", 5);
	bad("\xFC\x84\x80\x80\x80\x80", 6);
	bad("\xFE", 1);
	bad("\xFF", 1);
}

static void test_overlong(void **state)
{
	(void)state;
	bad("\xC0\x80", 2); /* U+0000 in two bytes */
	bad("\xC0\xAF", 2); /* '/' */
	bad("\xC1\xBF", 2); /* U+007F */
	bad("\xE0\x80\x80", 3);
	bad("\xE0\x9F\xBF", 3); /* U+07FF in three bytes */
	bad("\xF0\x80\x80\x80", 4);
	bad("\xF0\x8F\xBF\xBF", 4); /* U+FFFF in four bytes */
}

static void test_surrogates(void **state)
{
	(void)state;
	bad("\xED\xA0\x80", 3);             /* U+D800 */
	bad("\xED\xAD\xBF", 3);             /* U+DB7F */
	bad("\xED\xB0\x80", 3);             /* U+DC00 */
	bad("\xED\xBF\xBF", 3);             /* U+DFFF */
	bad("\xED\xA0\x80\xED\xB0\x80", 6); /* a CESU-8 pair */
}

static void test_broken(void **state)
{
	uint32_t cp;

	(void)state;
	bad("\x80", 1); /* lone continuation bytes */
	bad("\xBF", 1);
	bad("\xC2\x41", 2); /* lead without its continuation */
	bad("\xE6\xB0\x41", 3);
	bad("\xF0\x90\x80\x41", 4);
	/* Truncated: the length given ends inside the sequence. */
	bad("\xC2\x80", 1);
	bad("\xE6\xB0\xB4", 2);
	bad("\xE6\xB0\xB4", 1);
	bad("\xF0\x90\x80\x80", 3);
	assert_int_equal(utf8_decode((const unsigned char *)"A", 0, &cp), 0);
	/* A NUL ends a sequence too: a C string is never read past it. */
	assert_int_equal(utf8_decode((const unsigned char *)"\xE6\xB0", 4, &cp), 0);
}

static void test_check(void **state)
{
	(void)state;
	assert_int_equal(utf8_check("", 0), 0);
	assert_int_equal(utf8_check("abc", 3), 3);
	assert_int_equal(utf8_check("a水b", 5), 5);
	assert_int_equal(utf8_check("a\xFF"
	                            "b",
	                            3),
	                 1);
	assert_int_equal(utf8_check("ab\xE6\xB0", 4), 2);     /* truncated */
	assert_int_equal(utf8_check("ab\xED\xA0\x80", 5), 2); /* surrogate */
	assert_int_equal(utf8_check("ab\xC0\x80", 4), 2);     /* overlong NUL */
	assert_int_equal(utf8_check("ab\0c", 4), 2);          /* NUL byte */
	assert_int_equal(utf8_check("\xF4\x8F\xBF\xBF", 4), 4);
	assert_int_equal(utf8_check("\xF4\x90\x80\x80", 4), 0);
}

static void test_line_col(void **state)
{
	const char *s = "ab\n水c\n\xFF";
	int line, col;

	(void)state;
	utf8_line_col(s, strlen(s), 0, &line, &col);
	assert_int_equal(line, 1);
	assert_int_equal(col, 1);
	utf8_line_col(s, strlen(s), 2, &line, &col);
	assert_int_equal(line, 1);
	assert_int_equal(col, 3);
	utf8_line_col(s, strlen(s), 6, &line, &col); /* the 'c': after 水 */
	assert_int_equal(line, 2);
	assert_int_equal(col, 2);
	utf8_line_col(s, strlen(s), utf8_check(s, strlen(s)), &line, &col);
	assert_int_equal(line, 3);
	assert_int_equal(col, 1);
	utf8_line_col(s, strlen(s), 1000, &line, &col); /* past the end */
	assert_int_equal(line, 3);
	assert_int_equal(col, 2);
}

static void test_prefix(void **state)
{
	const char *s = "a水\xF0\x90\x80\x80z"; /* 1 + 3 + 4 + 1 bytes */
	static const size_t want[] = { 0, 1, 1, 1, 4, 4, 4, 4, 8, 9, 9, 9 };

	(void)state;
	for (size_t max = 0; max < sizeof(want) / sizeof(want[0]); max++) {
		size_t n = utf8_prefix(s, 9, max);

		assert_int_equal(n, want[max]);
		/* Never ends inside a character. */
		assert_int_equal(utf8_check(s, n), n);
	}
	assert_int_equal(utf8_prefix("", 0, 10), 0);
	/* Stops before damage, whatever max allows. */
	assert_int_equal(utf8_prefix("ab\xFF"
	                             "cd",
	                             5, 5),
	                 2);
	assert_int_equal(utf8_prefix("ab\xED\xA0\x80", 5, 5), 2);
	assert_int_equal(utf8_prefix("ab\xE6\xB0", 4, 100), 2);
}

/* Every cut of a long mixed string is valid text and the longest one. */
static void test_prefix_all_cuts(void **state)
{
	char buf[400];
	size_t len = 0;

	(void)state;
	while (len + 10 < sizeof(buf)) {
		memcpy(buf + len, "x\xC3\xA9\xE6\xB0\xB4\xF0\x9F\x98\x80", 10);
		len += 10;
	}
	for (size_t max = 0; max <= len + 2; max++) {
		size_t n = utf8_prefix(buf, len, max);

		assert_true(n <= max);
		assert_int_equal(utf8_check(buf, n), n);
		if (n < len && n < max) {
			uint32_t cp;
			size_t k = utf8_decode((const unsigned char *)buf + n, len - n, &cp);

			assert_true(k > 0);
			assert_true(n + k > max);
		}
	}
}

static void test_count(void **state)
{
	(void)state;
	assert_int_equal(utf8_count("", 0), 0);
	assert_int_equal(utf8_count("abc", 3), 3);
	assert_int_equal(utf8_count("水井", 6), 2);
	assert_int_equal(utf8_count("a\xF0\x9F\x98\x80", 5), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_boundaries),      cmocka_unit_test(test_past_ceiling),
		cmocka_unit_test(test_overlong),        cmocka_unit_test(test_surrogates),
		cmocka_unit_test(test_broken),          cmocka_unit_test(test_check),
		cmocka_unit_test(test_line_col),        cmocka_unit_test(test_prefix),
		cmocka_unit_test(test_prefix_all_cuts), cmocka_unit_test(test_count),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
