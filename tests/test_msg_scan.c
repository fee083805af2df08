/*
 * msg's fast scanner against jansson, differentially: whenever flat_scan
 * accepts a payload, jansson must accept it too, as an object, and yield
 * the same kind, bytes and numbers for every field msg reads. (When the
 * scanner declines, jansson decides alone, so declining is always safe.)
 * Inputs: device-shaped payloads, random objects built from awkward parts
 * (escapes, UTF-8, control bytes, every number shape, nesting, literals,
 * duplicate keys), and byte-level mutations of both. Also checks that the
 * scanner does take the ordinary payloads, or the fast path would be dead.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../src/core/msg.c"

static unsigned long long rng = 0x9E3779B97F4A7C15ull;

static unsigned rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

static void same_jval(const struct jval *a, const struct jval *b, const char *what,
                      const char *payload, size_t len)
{
	if (a->kind != b->kind)
		fail_msg("%s: kind %d (scanner) vs %d (jansson) in %.*s", what, a->kind, b->kind,
		         (int)len, payload);
	if (a->kind == J_STRING && (a->len != b->len || memcmp(a->s, b->s, a->len) != 0))
		fail_msg("%s: strings differ in %.*s", what, (int)len, payload);
	if (a->kind == J_INTEGER && a->i != b->i)
		fail_msg("%s: integers differ in %.*s", what, (int)len, payload);
	if ((a->kind == J_INTEGER || a->kind == J_REAL) && memcmp(&a->d, &b->d, sizeof(a->d)) != 0)
		fail_msg("%s: numbers differ (%.17g vs %.17g) in %.*s", what, a->d, b->d, (int)len,
		         payload);
}

/* Returns whether the scanner took it. */
static bool check(const char *payload, size_t len)
{
	struct flat fast, slow;
	if (!flat_scan((const unsigned char *)payload, len, &fast))
		return false;
	json_error_t e;
	json_t *root = json_loadb(payload, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &e);
	if (root == NULL)
		fail_msg("scanner accepted what jansson rejects (%s): %.*s", e.text, (int)len,
		         payload);
	if (!json_is_object(root))
		fail_msg("scanner accepted a non-object: %.*s", (int)len, payload);
	flat_from_json(root, &slow);
	same_jval(&fast.id, &slow.id, "id", payload, len);
	same_jval(&fast.ts, &slow.ts, "ts", payload, len);
	same_jval(&fast.lat, &slow.lat, "lat", payload, len);
	same_jval(&fast.lon, &slow.lon, "lon", payload, len);
	same_jval(&fast.value, &slow.value, "value", payload, len);
	same_jval(&fast.note, &slow.note, "note", payload, len);
	same_jval(&fast.photo, &slow.photo, "photo", payload, len);
	same_jval(&fast.event, &slow.event, "event", payload, len);
	json_decref(root);
	return true;
}

static const char *const device_payloads[] = {
	"{\"id\":\"sim-1\",\"ts\":1764000000,\"sent_ms\":1764000000123}",
	"{\"id\":\"a1b2\",\"ts\":\"2026-11-24T08:00:00+08:00\",\"lat\":30.66,\"lon\":104.06}",
	"{ \"id\" : \"r-7\", \"ts\" : 1764000000, \"value\" : 312.5 }\n",
	"{\"id\":\"n-1\",\"note\":\"水库北岸有人钓鱼\",\"photo\":\"oss://p/1.jpg\"}",
	"{\"event\":\"litter\",\"id\":\"x\",\"lat\":-0.0,\"lon\":1e2,\"extra\":7}",
	"{}",
	"{\"value\":-12,\"ts\":0}",
};

static void test_device_payloads_take_the_fast_path(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(device_payloads) / sizeof(*device_payloads); i++)
		if (!check(device_payloads[i], strlen(device_payloads[i])))
			fail_msg("fast path declined an ordinary payload: %s", device_payloads[i]);
}

static void test_declines_what_it_does_not_handle(void **state)
{
	(void)state;
	static const char *const odd[] = {
		"{\"note\":\"a\\nb\"}",        /* escape */
		"{\"id\":\"x\",\"id\":\"y\"}", /* duplicate key */
		"{\"x\":{\"y\":1}}",           /* nesting */
		"{\"x\":null}",
		"{\"x\":true}", /* literals */
		"{\"ts\":01}",
		"{\"v\":1.}",
		"{\"v\":.5}",
		"{\"v\":1e}",
		"{\"v\":+1}",
		"{\"v\":99999999999999999999}", /* integer overflow */
		"{\"v\":1e999}",                /* real overflow */
		"{\"a\":1,}",
		"{\"a\":1} x",
		"[1]",
		"",
		"   ",
		"{",
		"{\"n\":\"\xC0\x80\"}",     /* overlong */
		"{\"n\":\"\xED\xA0\x80\"}", /* surrogate */
		"{\"n\":\"tab\there\"}",    /* control byte */
		"\xEF\xBB\xBF{}",           /* BOM */
	};
	for (size_t i = 0; i < sizeof(odd) / sizeof(*odd); i++) {
		struct flat f;
		if (flat_scan((const unsigned char *)odd[i], strlen(odd[i]), &f))
			fail_msg("fast path took %s", odd[i]);
	}
}

static const char *const keys[] = { "id",
	                            "ts",
	                            "lat",
	                            "lon",
	                            "value",
	                            "note",
	                            "photo",
	                            "event",
	                            "sent_ms",
	                            "x",
	                            "\xE5\xA4\x87\xE6\xB3\xA8",
	                            "i\\u0064" };
static const char *const values[] = {
	"\"plain\"",
	"\"\"",
	"\"水位 3.2m\"",
	"\"a\\\"b\"",
	"\"\\u0000\"",
	"\"\\ud800\"",
	"\"\xF0\x9F\x8C\x8A\"",
	"\"\xC3\"",
	"\"2026-11-24T08:00:00Z\"",
	"0",
	"-0",
	"7",
	"-12",
	"1764000000",
	"9223372036854775807",
	"-9223372036854775808",
	"9223372036854775808",
	"0.5",
	"-0.0",
	"1e2",
	"1E-2",
	"2.5e+3",
	"1e-400",
	"1e400",
	"01",
	"1.",
	".5",
	"+1",
	"0x10",
	"NaN",
	"Infinity",
	"true",
	"false",
	"null",
	"[]",
	"[1,2]",
	"{}",
	"{\"a\":1}",
};

static size_t random_object(char *buf, size_t cap)
{
	size_t n = 0;
	unsigned nk = rnd(7);
	n += (size_t)snprintf(buf + n, cap - n, "%s{", rnd(4) == 0 ? " \n" : "");
	for (unsigned i = 0; i < nk && n + 200 < cap; i++) {
		const char *k = keys[rnd(sizeof(keys) / sizeof(*keys))];
		const char *v = values[rnd(sizeof(values) / sizeof(*values))];
		n += (size_t)snprintf(buf + n, cap - n, "%s\"%s\"%s:%s%s", i ? "," : "", k,
		                      rnd(3) == 0 ? " " : "", rnd(3) == 0 ? "\t" : "", v);
	}
	n += (size_t)snprintf(buf + n, cap - n, "}%s", rnd(4) == 0 ? "\r\n" : "");
	return n;
}

static size_t mutate(char *buf, size_t n, size_t cap)
{
	static const char bytes[] = "{}[]:,\"\\ 0123456789.eE+-tfn\x80\xC3\xE6\x00\x1F";
	switch (rnd(4)) {
	case 0: /* overwrite */
		if (n)
			buf[rnd((unsigned)n)] = bytes[rnd(sizeof(bytes) - 1)];
		return n;
	case 1: /* insert */
		if (n + 1 < cap) {
			size_t at = rnd((unsigned)n + 1);
			memmove(buf + at + 1, buf + at, n - at);
			buf[at] = bytes[rnd(sizeof(bytes) - 1)];
			return n + 1;
		}
		return n;
	case 2: /* delete */
		if (n) {
			size_t at = rnd((unsigned)n);
			memmove(buf + at, buf + at + 1, n - at - 1);
			return n - 1;
		}
		return n;
	default: /* truncate */
		return n ? rnd((unsigned)n) : 0;
	}
}

static void test_agrees_with_jansson(void **state)
{
	(void)state;
	char buf[2048];
	unsigned taken = 0, total = 0;
	for (int round = 0; round < 200000; round++) {
		size_t n;
		if (round % 3 == 0) {
			const char *d = device_payloads[rnd(sizeof(device_payloads) /
			                                    sizeof(*device_payloads))];
			n = strlen(d);
			memcpy(buf, d, n);
		} else {
			n = random_object(buf, sizeof(buf));
		}
		for (unsigned m = rnd(3); m > 0; m--)
			n = mutate(buf, n, sizeof(buf));
		total++;
		taken += check(buf, n);
	}
	print_message("fast path took %u of %u payloads\n", taken, total);
	/* Both sides of the comparison must have been exercised. */
	assert_true(taken > total / 10);
	assert_true(taken < total);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_device_payloads_take_the_fast_path),
		cmocka_unit_test(test_declines_what_it_does_not_handle),
		cmocka_unit_test(test_agrees_with_jansson),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
