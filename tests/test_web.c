/*
 * Unit tests for web.c, the decisions of `gridpatrol serve`: which route a
 * request gets and with which dates, every 4xx and the order in which they
 * win, the bounds of the dates, the token in a header, a cookie or the
 * query, the token file and --listen. web.c is pure; the test compiles it
 * in, as test_table does with table.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../src/cli/web.c"

#define TODAY "2026-12-02"
#define TOKEN "s3cret-Token_0123456789.~"

/* Split "path?k=v&k2" the way libmicrohttpd hands it over (no decoding:
 * the tests write decoded values directly, %00 as "\x01" marked below). */
struct req {
	char target[4096];
	char buf[4096];
	struct web_arg args[16];
	struct web_request r;
};

static struct web_decision run(struct req *q, const char *method, const char *target,
                               const char *token)
{
	struct web_decision d;
	memset(q, 0, sizeof(*q));
	snprintf(q->target, sizeof(q->target), "%s", target);
	snprintf(q->buf, sizeof(q->buf), "%s", target);
	size_t n = 0;
	char *qs = strchr(q->buf, '?');
	if (qs) {
		*qs++ = '\0';
		for (char *save, *part = strtok_r(qs, "&", &save); part && n < 16;
		     part = strtok_r(NULL, "&", &save)) {
			char *eq = strchr(part, '=');
			struct web_arg *a = &q->args[n++];
			a->key = part;
			if (eq) {
				*eq = '\0';
				a->value = eq + 1;
				a->value_len = strlen(eq + 1);
			}
			a->key_len = strlen(part);
		}
	}
	q->r = (struct web_request){ .method = method,
		                     .target = q->target,
		                     .target_len = strlen(q->target),
		                     .args = q->args,
		                     .n_args = n,
		                     .today = TODAY,
		                     .token = token,
		                     .token_len = token ? strlen(token) : 0 };
	web_dispatch(&q->r, &d);
	return d;
}

static struct web_decision get(const char *target)
{
	struct req q;
	return run(&q, "GET", target, NULL);
}

static void status_is(const char *target, int want)
{
	struct web_decision d = get(target);
	if (d.status != want)
		fail_msg("%s: %d, want %d (%s)", target, d.status, want, d.why ? d.why : "");
	if (want >= 400) {
		assert_int_equal(d.route, WEB_ROUTE_NONE);
		assert_non_null(d.why);
	}
}

static void test_routes(void **state)
{
	struct web_decision d = get("/");
	assert_int_equal(d.status, 200);
	assert_int_equal(d.route, WEB_ROUTE_NOW);
	assert_false(d.json);

	d = get("/api/status");
	assert_int_equal(d.route, WEB_ROUTE_NOW);
	assert_true(d.json);

	d = get("/report");
	assert_int_equal(d.route, WEB_ROUTE_REPORT);
	assert_string_equal(d.date, TODAY);
	d = get("/api/report?date=yesterday");
	assert_true(d.json);
	assert_string_equal(d.date, "2026-12-01");
	d = get("/report?date=2026-11-24");
	assert_string_equal(d.date, "2026-11-24");

	d = get("/alerts");
	assert_int_equal(d.route, WEB_ROUTE_ALERTS);
	assert_string_equal(d.since, "2026-11-26"); /* 7 days, today included */
	assert_false(d.pending);
	d = get("/api/alerts?since=2026-01-01&pending=1");
	assert_string_equal(d.since, "2026-01-01");
	assert_true(d.pending);
	assert_true(get("/alerts?pending").pending);
	assert_false(get("/alerts?pending=0").pending);

	d = get("/workers");
	assert_int_equal(d.route, WEB_ROUTE_WORKERS);
	assert_string_equal(d.date, TODAY);
	assert_string_equal(d.from, "");
	d = get("/workers?date=2026-11-30");
	assert_string_equal(d.date, "2026-11-30");
	d = get("/api/workers?from=2026-11-01&to=today");
	assert_string_equal(d.date, "");
	assert_string_equal(d.from, "2026-11-01");
	assert_string_equal(d.to, TODAY);

	struct req q;
	d = run(&q, "HEAD", "/api/status", NULL);
	assert_int_equal(d.status, 200);
}

static void test_405(void **state)
{
	static const char *methods[] = { "POST", "PUT", "DELETE", "OPTIONS", "get", "", "GETX" };
	struct req q;
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		struct web_decision d = run(&q, methods[i], "/", NULL);
		assert_int_equal(d.status, 405);
	}
	/* Before the token, the size and the path. */
	assert_int_equal(run(&q, "POST", "/nope", TOKEN).status, 405);
	struct web_decision d = run(&q, NULL, "/", NULL);
	assert_int_equal(d.status, 405);
}

static void test_404(void **state)
{
	static const char *paths[] = { "/nope",     "/report/",       "/api",
		                       "/api/",     "/../etc/passwd", "/%2e%2e/etc/passwd",
		                       "/./report", "//report",       "/REPORT",
		                       "",          "report",         "http://x/report",
		                       "*",         "/api/status/",   "/api/status.json" };
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		status_is(paths[i], 404);
}

static void test_400(void **state)
{
	static const char *bad[] = {
		"/report?date=../../x",
		"/report?date=0000-00-00",
		"/report?date=99999-01-01",
		"/report?date=2026-02-30",
		"/report?date=2025-02-29",
		"/report?date=2100-02-29", /* not a leap year */
		"/report?date=1999-12-31",
		"/report?date=2101-01-01",
		"/report?date=2026-00-10",
		"/report?date=2026-13-10",
		"/report?date=2026-12-00",
		"/report?date=2026-12-32",
		"/report?date=2026-1-1",
		"/report?date=2026/12/01",
		"/report?date=+2026-1-01",
		"/report?date=",
		"/report?date",
		"/report?date=tomorrow",
		"/report?date=Today",
		"/report?date=today ",
		"/report?date=2026-12-01&date=2026-12-02",
		"/report?x=1",
		"/report?since=today",
		"/api/status?date=today",
		"/api/status?pending=1",
		"/alerts?pending=yes",
		"/alerts?pending=",
		"/alerts?since=now",
		"/workers?from=2026-01-01",
		"/workers?to=2026-01-01",
		"/workers?from=2026-02-01&to=2026-01-31",
		"/workers?date=today&from=today&to=today",
		"/workers?from=2024-01-01&to=2025-01-01", /* 367 days */
		"/workers?from=2000-01-01&to=2100-12-31",
		"/report?a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		status_is(bad[i], 400);

	/* The bounds are days. */
	status_is("/report?date=2000-01-01", 200);
	status_is("/report?date=2100-12-31", 200);
	status_is("/report?date=2024-02-29", 200);
	status_is("/report?date=2000-02-29", 200);
	status_is("/workers?from=2025-01-01&to=2026-01-01", 200); /* 366 days */
	status_is("/workers?from=2026-01-01&to=2026-01-01", 200);

	/* A value that is long, or holds a NUL once decoded. */
	char t[200];
	snprintf(t, sizeof(t), "/report?date=2026-12-01%0100d", 0);
	status_is(t, 400);
	struct req q;
	struct web_arg nul = { "date", 4, "2026-12-01\0x", 12 };
	memset(&q, 0, sizeof(q));
	q.r = (struct web_request){ .method = "GET",
		                    .target = "/report?date=2026-12-01%00x",
		                    .target_len = 26,
		                    .args = &nul,
		                    .n_args = 1,
		                    .today = TODAY };
	struct web_decision d;
	web_dispatch(&q.r, &d);
	assert_int_equal(d.status, 400);
	struct web_arg nulkey = { "date\0", 5, "2026-12-01", 10 };
	q.r.args = &nulkey;
	web_dispatch(&q.r, &d);
	assert_int_equal(d.status, 400);
	/* A key libmicrohttpd left NULL. */
	struct web_arg nokey = { NULL, 0, "x", 1 };
	q.r.args = &nokey;
	web_dispatch(&q.r, &d);
	assert_int_equal(d.status, 400);
	/* More arguments than the server collects. */
	q.r.args = &nul;
	q.r.n_args = WEB_MAX_ARGS + 1;
	web_dispatch(&q.r, &d);
	assert_int_equal(d.status, 400);

	/* "yesterday" on the first accepted day leaves the range. */
	char out[11];
	assert_int_equal(web_parse_day("yesterday", 9, "2000-01-01", out), -1);
	assert_int_equal(web_parse_day("yesterday", 9, "2000-01-02", out), 0);
	assert_string_equal(out, "2000-01-01");
	assert_int_equal(web_parse_day("yesterday", 9, "2026-03-01", out), 0);
	assert_string_equal(out, "2026-02-28");
	assert_int_equal(web_parse_day("yesterday", 9, "2024-03-01", out), 0);
	assert_string_equal(out, "2024-02-29");
	assert_int_equal(web_parse_day("today", 5, "garbage", out), -1);
	assert_int_equal(web_days_between("2025-12-31", "2026-01-01"), 1);
	assert_int_equal(web_days_between("2000-01-01", "2100-12-31"), 36889);
}

static void test_413(void **state)
{
	static char t[WEB_MAX_TARGET + 2];
	memset(t, 'a', sizeof(t) - 1);
	t[0] = '/';
	t[sizeof(t) - 1] = '\0';
	status_is(t, 413);
	t[WEB_MAX_TARGET] = '\0'; /* exactly the limit: a 404, not a 413 */
	status_is(t, 404);

	struct req q;
	run(&q, "GET", "/", NULL);
	q.r.has_body = true;
	struct web_decision d;
	web_dispatch(&q.r, &d);
	assert_int_equal(d.status, 413);
	/* A POST with a body is a 405 first. */
	q.r.method = "POST";
	web_dispatch(&q.r, &d);
	assert_int_equal(d.status, 405);
}

static void test_token(void **state)
{
	struct req q;
	struct web_decision d;

	/* Open when no token is configured, even with a token given. */
	assert_int_equal(run(&q, "GET", "/?token=x", NULL).status, 200);

	d = run(&q, "GET", "/api/status", TOKEN);
	assert_int_equal(d.status, 401);
	/* Before the path and the arguments: nothing shows without it. */
	assert_int_equal(run(&q, "GET", "/nope", TOKEN).status, 401);
	assert_int_equal(run(&q, "GET", "/report?date=0000-00-00", TOKEN).status, 401);
	assert_int_equal(run(&q, "GET", "/?token=wrong", TOKEN).status, 401);
	assert_int_equal(run(&q, "GET", "/?token=" TOKEN "x", TOKEN).status, 401);
	assert_int_equal(run(&q, "GET", "/?token", TOKEN).status, 401);
	assert_int_equal(run(&q, "GET", "/?token=", TOKEN).status, 401);

	/* Header. */
	static const struct {
		const char *h;
		int status;
	} headers[] = {
		{ "Bearer " TOKEN, 200 },
		{ "bearer " TOKEN, 200 },
		{ "BEARER\t" TOKEN, 200 },
		{ "Bearer   " TOKEN "  ", 200 },
		{ "Bearer " TOKEN "x", 401 },
		{ "Bearer x", 401 },
		{ "Bearer", 401 },
		{ "Bearer ", 401 },
		{ "Basic " TOKEN, 401 },
		{ "Bearer" TOKEN, 401 },
		{ "", 401 },
		{ TOKEN, 401 },
	};
	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		run(&q, "GET", "/api/status", TOKEN);
		q.r.authorization = headers[i].h;
		web_dispatch(&q.r, &d);
		if (d.status != headers[i].status)
			fail_msg("Authorization '%s': %d", headers[i].h, d.status);
	}

	/* Cookie; a wrong bearer beside a good cookie is refused. */
	run(&q, "GET", "/report?date=today", TOKEN);
	q.r.cookie = TOKEN;
	web_dispatch(&q.r, &d);
	assert_int_equal(d.status, 200);
	assert_string_equal(d.date, TODAY);
	q.r.authorization = "Bearer wrong";
	web_dispatch(&q.r, &d);
	assert_int_equal(d.status, 401);
	q.r.authorization = NULL;
	q.r.cookie = "wrong";
	web_dispatch(&q.r, &d);
	assert_int_equal(d.status, 401);
	q.r.cookie = "";
	web_dispatch(&q.r, &d);
	assert_int_equal(d.status, 401);

	/* The query: 303 to the page without it, the rest kept in order. */
	d = run(&q, "GET", "/?token=" TOKEN, TOKEN);
	assert_int_equal(d.status, 303);
	assert_string_equal(d.location, "/");
	d = run(&q, "GET", "/alerts?since=yesterday&token=" TOKEN "&pending", TOKEN);
	assert_int_equal(d.status, 303);
	assert_string_equal(d.location, "/alerts?since=yesterday&pending");
	/* A bad page or argument is still refused after a good token. */
	assert_int_equal(run(&q, "GET", "/nope?token=" TOKEN, TOKEN).status, 404);
	assert_int_equal(run(&q, "GET", "/report?token=" TOKEN "&date=x", TOKEN).status, 400);
	assert_int_equal(run(&q, "GET", "/?token=" TOKEN "&token=" TOKEN, TOKEN).status, 400);

	/* The comparison. */
	assert_true(web_token_equal("abc", 3, "abc", 3));
	assert_false(web_token_equal("abd", 3, "abc", 3));
	assert_false(web_token_equal("ab", 2, "abc", 3));
	assert_false(web_token_equal("abcd", 4, "abc", 3));
	assert_false(web_token_equal("", 0, "abc", 3));
	assert_false(web_token_equal("abc\0", 4, "abc", 3));

	const char *t;
	size_t n;
	assert_int_equal(web_bearer("Bearer  abc ", &t, &n), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(t, "abc", 3);
	assert_int_equal(web_bearer(NULL, &t, &n), -1);
	assert_int_equal(web_bearer("Bear", &t, &n), -1);
}

static void test_token_file(void **state)
{
	size_t n;
	const char *why;
	assert_int_equal(web_token_parse("abc\n", 4, &n, &why), 0);
	assert_int_equal(n, 3);
	assert_int_equal(web_token_parse("abc\r\n\n", 6, &n, &why), 0);
	assert_int_equal(n, 3);
	assert_int_equal(web_token_parse("A-z_0.9~", 8, &n, &why), 0);
	assert_int_equal(web_token_parse("", 0, &n, &why), -1);
	assert_int_equal(web_token_parse("\n", 1, &n, &why), -1);
	assert_int_equal(web_token_parse("a b\n", 4, &n, &why), -1);
	assert_int_equal(web_token_parse("a;b", 3, &n, &why), -1);
	assert_int_equal(web_token_parse("a\nb", 3, &n, &why), -1);
	assert_int_equal(web_token_parse("a\0b", 3, &n, &why), -1);
	assert_int_equal(web_token_parse("a%20", 4, &n, &why), -1);
	assert_int_equal(web_token_parse("a+b", 3, &n, &why), -1);
	static char big[WEB_TOKEN_MAX + 1];
	memset(big, 'a', sizeof(big));
	assert_int_equal(web_token_parse(big, WEB_TOKEN_MAX, &n, &why), 0);
	assert_int_equal(web_token_parse(big, WEB_TOKEN_MAX + 1, &n, &why), -1);
}

static void test_listen(void **state)
{
	struct sockaddr_storage ss;
	socklen_t len;
	bool lo;

	assert_int_equal(web_parse_listen("127.0.0.1:8080", &ss, &len, &lo), 0);
	assert_true(lo);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 8080);
	assert_int_equal(web_parse_listen("[::1]:80", &ss, &len, &lo), 0);
	assert_true(lo);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(web_parse_listen("127.0.0.2:8080", &ss, &len, &lo), 0);
	assert_false(lo);
	assert_int_equal(web_parse_listen("0.0.0.0:1", &ss, &len, &lo), 0);
	assert_false(lo);
	assert_int_equal(web_parse_listen("[::]:65535", &ss, &len, &lo), 0);
	assert_false(lo);
	static const char *bad[] = { "127.0.0.1",
		                     "127.0.0.1:",
		                     ":8080",
		                     "127.0.0.1:0",
		                     "127.0.0.1:65536",
		                     "127.0.0.1:80x",
		                     "127.0.0.1:-1",
		                     "localhost:8080",
		                     "::1:8080",
		                     "[::1]8080",
		                     "[::1]",
		                     "[127.0.0.1]:80",
		                     "1.2.3.4.5:80",
		                     "127.0.0.1:000080",
		                     "" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (web_parse_listen(bad[i], &ss, &len, &lo) != -1)
			fail_msg("--listen '%s' accepted", bad[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_routes),     cmocka_unit_test(test_405),
		cmocka_unit_test(test_404),        cmocka_unit_test(test_400),
		cmocka_unit_test(test_413),        cmocka_unit_test(test_token),
		cmocka_unit_test(test_token_file), cmocka_unit_test(test_listen),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
