/*
 * test_topic: template compilation (every rule in include/core/topic.h, with the
 * error texts operators will read) and strict matching of device topics,
 * including the hostile shapes a broker happily delivers under "prefix/#".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "topic.h"

#define DEFAULT_TMPL "patrol/{cell}/{worker}/{event}"

static void compile_ok(const char *tmpl, struct topic_template *t)
{
	char err[256] = "";
	int rc = topic_template_compile(tmpl, t, err, sizeof(err));

	if (rc != 0)
		fail_msg("compile \"%s\": %s", tmpl, err);
}

/* Compile must fail and the error must contain `want`. */
static void compile_fails(const char *tmpl, const char *want)
{
	struct topic_template t;
	char err[256] = "";

	assert_int_equal(topic_template_compile(tmpl, &t, err, sizeof(err)), -1);
	if (strstr(err, want) == NULL)
		fail_msg("compile \"%s\": error \"%s\" lacks \"%s\"", tmpl, err, want);
	/* A failed compile leaves nothing to free, but freeing is harmless. */
	assert_null(t.segs);
	assert_null(t.subscription);
	topic_template_free(&t);
}

static void test_compile_default(void **state)
{
	struct topic_template t;

	(void)state;
	compile_ok(DEFAULT_TMPL, &t);
	assert_int_equal(t.n_segs, 4);
	assert_string_equal(t.segs[0], "patrol");
	assert_null(t.segs[1]);
	assert_null(t.segs[2]);
	assert_null(t.segs[3]);
	assert_int_equal(t.cell_idx, 1);
	assert_int_equal(t.worker_idx, 2);
	assert_int_equal(t.event_idx, 3);
	assert_string_equal(t.subscription, "patrol/#");
	topic_template_free(&t);
	topic_template_free(&t); /* idempotent */
}

static void test_compile_long_prefix(void **state)
{
	struct topic_template t;

	(void)state;
	compile_ok("longchi/yunhua/patrol/{cell}/{worker}/{event}", &t);
	assert_int_equal(t.n_segs, 6);
	assert_int_equal(t.cell_idx, 3);
	assert_int_equal(t.worker_idx, 4);
	assert_int_equal(t.event_idx, 5);
	assert_string_equal(t.subscription, "longchi/yunhua/patrol/#");
	topic_template_free(&t);
}

static void test_compile_no_event(void **state)
{
	struct topic_template t;

	(void)state;
	compile_ok("gp/{worker}/{cell}", &t);
	assert_int_equal(t.n_segs, 3);
	assert_int_equal(t.worker_idx, 1);
	assert_int_equal(t.cell_idx, 2);
	assert_int_equal(t.event_idx, -1);
	assert_string_equal(t.subscription, "gp/#");
	topic_template_free(&t);
}

/* Fixed levels after the first placeholder are matched but do not belong in
 * the subscription prefix. */
static void test_compile_fixed_after_placeholder(void **state)
{
	struct topic_template t;
	struct topic_fields f;
	char err[256];

	(void)state;
	compile_ok("a/{cell}/ev/{worker}", &t);
	assert_string_equal(t.subscription, "a/#");
	assert_string_equal(t.segs[2], "ev");
	assert_int_equal(topic_match(&t, "a/c1/ev/w1", &f, err, sizeof(err)), 0);
	assert_string_equal(f.cell, "c1");
	assert_string_equal(f.worker, "w1");
	assert_string_equal(f.event, "");
	assert_int_equal(topic_match(&t, "a/c1/EV/w1", &f, err, sizeof(err)), -1);
	assert_string_equal(err, "topic level 3 is not \"ev\"");
	topic_template_free(&t);
}

static void test_compile_errors(void **state)
{
	(void)state;
	compile_fails(NULL, "empty");
	compile_fails("", "empty");
	compile_fails("{cell}/{worker}/{event}", "must start with a fixed level");
	compile_fails("patrol/{worker}/{event}", "lacks {cell}");
	compile_fails("patrol/{cell}/{event}", "lacks {worker}");
	compile_fails("patrol/{cell}", "lacks {worker}");
	compile_fails("patrol", "lacks {cell}");
	compile_fails("patrol/{cell}/{worker}/{cell}", "{cell} appears more than once");
	compile_fails("patrol/{cell}/{worker}/{event}/{event}", "{event} appears more than once");
	compile_fails("patrol/x{cell}/{worker}", "whole level");
	compile_fails("patrol/{cell}x/{worker}", "whole level");
	compile_fails("patrol/{cell}/{worker}/{ev", "whole level");
	compile_fails("patrol/{cell}/{worker}/ev}", "whole level");
	compile_fails("patrol/{{cell}}/{worker}", "whole level");
	compile_fails("patrol/{site}/{cell}/{worker}", "unknown placeholder");
	compile_fails("patrol/{}/{cell}/{worker}", "unknown placeholder");
	compile_fails("pat+rol/{cell}/{worker}", "wildcard '+'");
	compile_fails("+/{cell}/{worker}", "wildcard '+'");
	compile_fails("patrol/#/{cell}/{worker}", "wildcard '#'");
	compile_fails("patrol//{cell}/{worker}", "empty level");
	compile_fails("/patrol/{cell}/{worker}", "empty level");
	compile_fails("patrol/{cell}/{worker}/", "empty level");
	compile_fails("/", "empty level");
}

/* Match `topic` against `tmpl`: expect failure with `want` in the error. */
static void match_fails(const struct topic_template *t, const char *topic, const char *want)
{
	struct topic_fields f;
	char err[256] = "";

	assert_int_equal(topic_match(t, topic, &f, err, sizeof(err)), -1);
	if (strstr(err, want) == NULL)
		fail_msg("match \"%s\": error \"%s\" lacks \"%s\"", topic, err, want);
}

static void test_match_ok(void **state)
{
	struct topic_template t;
	struct topic_fields f;
	char err[256] = "";
	char seg64[65], topic[256];

	(void)state;
	compile_ok(DEFAULT_TMPL, &t);
	assert_int_equal(topic_match(&t, "patrol/yh-01/w017/checkin", &f, err, sizeof(err)), 0);
	assert_string_equal(f.cell, "yh-01");
	assert_string_equal(f.worker, "w017");
	assert_string_equal(f.event, "checkin");

	assert_int_equal(topic_match(&t, "patrol/A.b_C-9/._-/x", &f, err, sizeof(err)), 0);
	assert_string_equal(f.cell, "A.b_C-9");
	assert_string_equal(f.worker, "._-");
	assert_string_equal(f.event, "x");

	memset(seg64, 'c', 64);
	seg64[64] = '\0';
	snprintf(topic, sizeof(topic), "patrol/%s/%s/%s", seg64, seg64, seg64);
	assert_int_equal(topic_match(&t, topic, &f, err, sizeof(err)), 0);
	assert_string_equal(f.cell, seg64);
	assert_string_equal(f.worker, seg64);
	assert_string_equal(f.event, seg64);
	topic_template_free(&t);
}

static void test_match_levels(void **state)
{
	struct topic_template t;

	(void)state;
	compile_ok(DEFAULT_TMPL, &t);
	match_fails(&t, "patrol/yh-01/w017", "topic has 3 levels, template has 4");
	match_fails(&t, "patrol/yh-01/w017/checkin/extra", "topic has 5 levels, template has 4");
	match_fails(&t, "patrol", "topic has 1 levels, template has 4");
	match_fails(&t, "patrol/yh-01/w017/checkin/", "ends with '/'");
	match_fails(&t, "/patrol/yh-01/w017", "starts with '/'");
	match_fails(&t, "patrol//w017/checkin", "topic level 2 is empty");
	match_fails(&t, "patrol/yh-01//checkin", "topic level 3 is empty");
	match_fails(&t, "", "empty");
	match_fails(&t, "/", "starts with '/'");
	match_fails(&t, "Patrol/yh-01/w017/checkin", "topic level 1 is not \"patrol\"");
	match_fails(&t, "patrolx/yh-01/w017/checkin", "topic level 1 is not");
	match_fails(&t, "patro/yh-01/w017/checkin", "topic level 1 is not");
	topic_template_free(&t);
}

static void test_match_bad_segments(void **state)
{
	struct topic_template t;
	char seg65[66], topic[256];

	(void)state;
	compile_ok(DEFAULT_TMPL, &t);
	memset(seg65, 'c', 65);
	seg65[65] = '\0';
	snprintf(topic, sizeof(topic), "patrol/%s/w017/checkin", seg65);
	match_fails(&t, topic, "cell segment is longer than 64 characters");
	snprintf(topic, sizeof(topic), "patrol/yh-01/%s/checkin", seg65);
	match_fails(&t, topic, "worker segment is longer than 64");
	snprintf(topic, sizeof(topic), "patrol/yh-01/w017/%s", seg65);
	match_fails(&t, topic, "event segment is longer than 64");

	match_fails(&t, "patrol/yh 01/w017/checkin", "cell segment has invalid characters");
	match_fails(&t, "patrol/yh-01/+/checkin", "worker segment has invalid characters");
	match_fails(&t, "patrol/yh-01/w017/#", "event segment has invalid characters");
	match_fails(&t, "patrol/云华/w017/checkin", "cell segment has invalid characters");
	match_fails(&t, "patrol/yh-01/w\xff/checkin", "worker segment has invalid");
	match_fails(&t, "patrol/yh-01/w017/check\x01", "event segment has invalid");
	match_fails(&t, "patrol/yh-01/w017/a'b", "event segment has invalid");
	match_fails(&t, "patrol/yh-01/w017/a{b}", "event segment has invalid");
	topic_template_free(&t);
}

/* The error text must never carry the device's bytes: it is logged and
 * stored, and must stay valid UTF-8. */
static void test_match_error_no_echo(void **state)
{
	struct topic_template t;
	struct topic_fields f;
	char err[256] = "";

	(void)state;
	compile_ok(DEFAULT_TMPL, &t);
	assert_int_equal(topic_match(&t, "\xfe\xff/yh-01/w017/checkin", &f, err, sizeof(err)), -1);
	assert_null(strchr(err, '\xfe'));
	assert_null(strchr(err, '\xff'));
	topic_template_free(&t);
}

/* Huge topics (the broker allows 64 KiB) and short error buffers. */
static void test_match_huge_and_small_err(void **state)
{
	struct topic_template t;
	struct topic_fields f;
	char err[8];
	size_t n = 65535;
	char *big = malloc(n + 1);

	(void)state;
	assert_non_null(big);
	for (size_t i = 0; i < n; i++)
		big[i] = (i % 2) ? '/' : 'a';
	big[n] = '\0';
	compile_ok(DEFAULT_TMPL, &t);
	assert_int_equal(topic_match(&t, big, &f, err, sizeof(err)), -1);
	assert_true(strlen(err) < sizeof(err));
	memset(big, 'x', n);
	memcpy(big, "patrol/", 7);
	big[20] = '/';
	big[40] = '/';
	assert_int_equal(topic_match(&t, big, &f, err, sizeof(err)), -1);
	assert_int_equal(topic_match(&t, big, &f, NULL, 0), -1);
	free(big);
	topic_template_free(&t);
}

static void test_match_no_event_template(void **state)
{
	struct topic_template t;
	struct topic_fields f;
	char err[256] = "";

	(void)state;
	compile_ok("gp/{worker}/{cell}", &t);
	assert_int_equal(topic_match(&t, "gp/w017/yh-01", &f, err, sizeof(err)), 0);
	assert_string_equal(f.worker, "w017");
	assert_string_equal(f.cell, "yh-01");
	assert_string_equal(f.event, "");
	match_fails(&t, "gp/w017/yh-01/checkin", "topic has 4 levels, template has 3");
	topic_template_free(&t);
}

static void test_segment_valid(void **state)
{
	(void)state;
	assert_true(topic_segment_valid("a", 1));
	assert_false(topic_segment_valid("", 0));
	assert_false(topic_segment_valid(NULL, 0));
	assert_true(topic_segment_valid("abc", 2)); /* length, not NUL, bounds */
	assert_false(topic_segment_valid("a\0b", 3));
	assert_false(topic_segment_valid("a b", 3));
	assert_false(topic_segment_valid("a/b", 3));
	assert_false(topic_segment_valid("ä", strlen("ä")));
	assert_true(topic_segment_valid(
	        "0123456789012345678901234567890123456789012345678901234567890123", 64));
	assert_false(topic_segment_valid(
	        "01234567890123456789012345678901234567890123456789012345678901234", 65));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compile_default),
		cmocka_unit_test(test_compile_long_prefix),
		cmocka_unit_test(test_compile_no_event),
		cmocka_unit_test(test_compile_fixed_after_placeholder),
		cmocka_unit_test(test_compile_errors),
		cmocka_unit_test(test_match_ok),
		cmocka_unit_test(test_match_levels),
		cmocka_unit_test(test_match_bad_segments),
		cmocka_unit_test(test_match_error_no_echo),
		cmocka_unit_test(test_match_huge_and_small_err),
		cmocka_unit_test(test_match_no_event_template),
		cmocka_unit_test(test_segment_valid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
