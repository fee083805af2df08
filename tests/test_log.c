/*
 * log tests: priority prefixes journald understands, one line per message,
 * rate limiting per call site.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"

/* Run fn with stderr redirected to a temporary file; return what it wrote. */
static char *capture(void (*fn)(void))
{
	char path[] = "/tmp/gridpatrol-test-log-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	fflush(stderr);
	int saved = dup(2);
	dup2(fd, 2);
	fn();
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	off_t len = lseek(fd, 0, SEEK_END);
	char *buf = calloc(1, (size_t)len + 1);
	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, (size_t)len, 0), len);
	close(fd);
	return buf;
}

static void emit_levels(void)
{
	log_init(LOG_INFO);
	log_errx("e %d", 1);
	log_warnx("w");
	log_notice("n");
	log_info("i");
	log_debug("d is filtered");
	errno = ENOENT;
	log_warn("open %s", "x");
	log_info("two\nlines");
}

static void test_priority_prefixes(void **state)
{
	(void)state;
	char *out = capture(emit_levels);
	assert_string_equal(out, "<3>e 1\n<4>w\n<5>n\n<6>i\n"
	                         "<4>open x: No such file or directory\n"
	                         "<6>two lines\n");
	free(out);
}

static void emit_flood(void)
{
	log_init(LOG_DEBUG);
	for (int i = 0; i < 1000; i++)
		log_warnx("bad message %d", i);
	log_info("other");
}

static void test_repeats_are_rate_limited(void **state)
{
	(void)state;
	char *out = capture(emit_flood);
	int lines = 0;
	for (char *p = out; *p; p++)
		lines += *p == '\n';
	/* A burst of 10 passes, the rest is counted for a later summary. */
	assert_int_equal(lines, 11);
	assert_non_null(strstr(out, "<4>bad message 9\n"));
	assert_null(strstr(out, "bad message 10\n"));
	assert_non_null(strstr(out, "<6>other\n"));
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_priority_prefixes),
		cmocka_unit_test(test_repeats_are_rate_limited),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
