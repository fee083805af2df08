/*
 * Unit tests for table: display width of mixed Chinese and ASCII text,
 * column alignment by display width, truncation at character boundaries,
 * and the escaping that keeps hostile text from breaking a table.
 *
 * table.c is pure (no SQLite, no configuration), so it is compiled into
 * this test directly, the chrony way, rather than linked from a library
 * the CLI alone uses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../src/cli/table.c"

static void test_width(void **state)
{
	(void)state;
	assert_int_equal(table_width(""), 0);
	assert_int_equal(table_width(NULL), 0);
	assert_int_equal(table_width("yh-01"), 5);
	assert_int_equal(table_width("网格"), 4);
	assert_int_equal(table_width("云华社区 1号网格"), 16);
	/* Fullwidth parentheses are wide, the ASCII ones are not. */
	assert_int_equal(table_width("（紫坪铺库岸）"), 14);
	assert_int_equal(table_width("(a)"), 3);
	/* Combining acute accent adds nothing; e + U+0301. */
	assert_int_equal(table_width("e\xCC\x81"), 1);
	/* Hangul and a CJK extension B ideograph are wide; an emoji too. */
	assert_int_equal(table_width("\xEA\xB0\x80"), 2);
	assert_int_equal(table_width("\xF0\xA0\x80\x80"), 2);
	assert_int_equal(table_width("\xF0\x9F\x8C\x8A"), 2);
	/* A malformed byte counts as its 4-column escape. */
	assert_int_equal(table_width("a\xFF"), 5);
	assert_int_equal(table_cp_width('A'), 1);
	assert_int_equal(table_cp_width(0x4E00), 2);
	assert_int_equal(table_cp_width(0x200B), 0);
}

static char *render(const struct table *t)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	assert_int_equal(table_write(t, f), 0);
	assert_int_equal(fclose(f), 0);
	return buf;
}

/* Display column at which the byte offset `off` of line starts. */
static size_t col_of(const char *line, size_t off)
{
	char *prefix = strndup(line, off);
	assert_non_null(prefix);
	size_t w = table_width(prefix);
	free(prefix);
	return w;
}

static void test_alignment(void **state)
{
	(void)state;
	const char *head[] = { "网格", "名称", "巡查" };
	struct table *t = table_new(3, head);
	assert_non_null(t);
	if (!t)
		return; /* for gcc -O3: cmocka's assert does not return here */
	table_set_align(t, 2, TABLE_RIGHT);
	const char *r1[] = { "yh-01", "云华社区 1号网格", "12" };
	const char *r2[] = { "x", "River bank", "3" };
	const char *r3[] = { "水库", NULL, "100" };
	assert_int_equal(table_add_row(t, r1), 0);
	assert_int_equal(table_add_row(t, r2), 0);
	assert_int_equal(table_add_row(t, r3), 0);
	assert_int_equal(table_rows(t), 3);

	char *out = render(t);
	const char *expect = "网格   名称              巡查\n"
	                     "-----------------------------\n"
	                     "yh-01  云华社区 1号网格    12\n"
	                     "x      River bank           3\n"
	                     "水库                      100\n";
	assert_string_equal(out, expect);

	/* Every line's second column starts at the same display column, and
	 * no line has trailing blanks. */
	char *save = NULL;
	for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		assert_true(line[strlen(line) - 1] != ' ');
		if (line[0] == '-')
			continue;
		const char *second = strstr(line, "  ");
		assert_non_null(second);
		while (*second == ' ')
			second++;
		if (strncmp(line, "水库", strlen("水库")) != 0)
			assert_int_equal(col_of(line, (size_t)(second - line)), 7);
		assert_int_equal(table_width(line), 29);
	}
	free(out);
	table_free(t);
}

static void test_truncation(void **state)
{
	(void)state;
	char *s = table_truncate("云华社区 1号网格（紫坪铺库岸）", 10);
	assert_non_null(s);
	/* 4 wide characters (8), the space (1) and the ellipsis (1) fill 10. */
	assert_string_equal(s, "云华社区 …");
	assert_int_equal(table_width(s), 10);
	free(s);
	/* At 9 the space no longer fits beside the ellipsis. */
	s = table_truncate("云华社区 1号网格", 9);
	assert_string_equal(s, "云华社区…");
	free(s);

	s = table_truncate("abcdef", 6);
	assert_string_equal(s, "abcdef");
	free(s);
	s = table_truncate("abcdefg", 6);
	assert_string_equal(s, "abcde…");
	assert_int_equal(table_width(s), 6);
	free(s);
	/* Never cut inside a character, even when one column is left. */
	s = table_truncate("网格网格", 2);
	assert_string_equal(s, "…");
	free(s);
	s = table_truncate("ab", 0);
	assert_string_equal(s, "");
	free(s);

	const char *head[] = { "名称", "n" };
	struct table *t = table_new(2, head);
	assert_non_null(t);
	if (!t)
		return; /* for gcc -O3: cmocka's assert does not return here */
	table_set_max_width(t, 0, 7);
	const char *r1[] = { "紫坪铺库岸巡查点", "1" };
	assert_int_equal(table_add_row(t, r1), 0);
	char *out = render(t);
	assert_string_equal(out, "名称     n\n----------\n紫坪铺…  1\n");
	free(out);
	table_free(t);
}

static void test_sanitize(void **state)
{
	(void)state;
	char *s = table_sanitize("a\nb\tc\x1b[31m\xFF\xC2\x9B"
	                         "d");
	assert_non_null(s);
	assert_string_equal(s, "a\\nb\\tc\\x1b[31m\\xff\\u009bd");
	free(s);
	/* Overlong and surrogate encodings are malformed, not characters. */
	s = table_sanitize("\xC0\xAF\xED\xA0\x80");
	assert_string_equal(s, "\\xc0\\xaf\\xed\\xa0\\x80");
	free(s);

	const char *head[] = { "note" };
	struct table *t = table_new(1, head);
	assert_non_null(t);
	if (!t)
		return; /* for gcc -O3: cmocka's assert does not return here */
	const char *r1[] = { "line1\nline2" };
	assert_int_equal(table_add_row(t, r1), 0);
	char *out = render(t);
	assert_string_equal(out, "note\n------------\nline1\\nline2\n");
	free(out);
	table_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_width),
		cmocka_unit_test(test_alignment),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_sanitize),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
