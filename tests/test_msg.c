/*
 * test_msg: every rule of SPEC.md "MQTT input" as implemented by msg_parse,
 * one case per rule at least, with boundaries on both sides: field types and
 * lengths, RFC 3339 times, the clock-skew / backfill / late rules, the dedup
 * key, the order in which rejection reasons win, and the promise that a
 * detail is always bounded, NUL-terminated, valid UTF-8 text.
 *
 * The configurations come from real YAML fixtures (tests/fixtures/msg) loaded
 * through config_load, so the test also pins the defaults msg relies on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "msg.h"
#include "sha256.h"

#define RECV_S INT64_C(1795500000) /* 2026-11-24T06:00:00Z */
#define RECV_MS (RECV_S * 1000 + 500)
#define T_CHECKIN "patrol/yh-01/w017/checkin"
#define T_FLOOD "patrol/yh-01/w017/flood"

static struct config *basic, *noevent, *small;

static struct config *load(const char *name)
{
	struct config_errors errs = { 0 };
	struct config *cfg = NULL;
	char path[512];

	snprintf(path, sizeof(path), "%s/fixtures/msg/%s", TEST_SRCDIR, name);
	if (config_load(path, &cfg, &errs) != 0) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.v[i]);
		config_errors_free(&errs);
		return NULL;
	}
	config_errors_free(&errs);
	return cfg;
}

static int group_setup(void **state)
{
	(void)state;
	basic = load("basic.yaml");
	noevent = load("noevent.yaml");
	small = load("smalllimits.yaml");
	return basic != NULL && noevent != NULL && small != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	config_free(basic);
	config_free(noevent);
	config_free(small);
	return 0;
}

/* Strict UTF-8 check, independent of the one in msg.c. */
static int utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p != '\0') {
		uint32_t c;
		int n;

		if (*p < 0x80) {
			p++;
			continue;
		} else if (*p >= 0xC2 && *p <= 0xDF) {
			n = 1, c = *p & 0x1F;
		} else if (*p >= 0xE0 && *p <= 0xEF) {
			n = 2, c = *p & 0x0F;
		} else if (*p >= 0xF0 && *p <= 0xF4) {
			n = 3, c = *p & 0x07;
		} else {
			return 0;
		}
		for (int i = 1; i <= n; i++) {
			if ((p[i] & 0xC0) != 0x80)
				return 0;
			c = c << 6 | (p[i] & 0x3F);
		}
		if ((n == 2 && c < 0x800) || (n == 3 && (c < 0x10000 || c > 0x10FFFF)) ||
		    (c >= 0xD800 && c <= 0xDFFF))
			return 0;
		p += n + 1;
	}
	return 1;
}

static struct msg_record rec;
static char detail[MSG_DETAIL_MAX];

static enum msg_reason parse_n(const struct config *cfg, const char *topic, const void *p, size_t n,
                               int64_t recv_ms)
{
	enum msg_reason r;

	memset(detail, 'X', sizeof(detail));
	r = msg_parse(cfg, topic, p, n, recv_ms, &rec, detail, sizeof(detail));
	assert_true(memchr(detail, '\0', sizeof(detail)) != NULL);
	assert_true(utf8_valid(detail));
	if (r == MSG_OK)
		assert_string_equal(detail, "");
	else
		assert_true(detail[0] != '\0');
	return r;
}

static enum msg_reason parse(const struct config *cfg, const char *topic, const char *payload)
{
	return parse_n(cfg, topic, payload, strlen(payload), RECV_MS);
}

/* Expect a given reason, and (when want is not NULL) a detail containing it. */
#define expect(reason, want, call)                                                                \
	do {                                                                                      \
		enum msg_reason r_ = (call);                                                      \
		if (r_ != (reason))                                                               \
			fail_msg("%s:%d: got %s (%s), want %s", __FILE__, __LINE__,               \
			         msg_reason_name(r_), detail, msg_reason_name(reason));           \
		if ((want) != NULL && strstr(detail, (want) ? (want) : "") == NULL)               \
			fail_msg("%s:%d: detail \"%s\" lacks \"%s\"", __FILE__, __LINE__, detail, \
			         (want) ? (want) : "");                                           \
	} while (0)

static const char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));

static const char *fmt(const char *f, ...)
{
	static char buf[16384];
	va_list ap;

	va_start(ap, f);
	vsnprintf(buf, sizeof(buf), f, ap);
	va_end(ap);
	return buf;
}

/* ------------------------------------------------------------- fixtures */

static void test_fixture_defaults(void **state)
{
	(void)state;
	assert_int_equal(basic->limits.max_payload, 8192);
	assert_int_equal(basic->limits.max_clock_skew_s, 300);
	assert_int_equal(basic->limits.max_backfill_s, 7 * 86400);
	assert_int_equal(basic->limits.late_after_s, 600);
	assert_int_equal(basic->mqtt.tmpl.event_idx, 3);
	assert_int_equal(noevent->mqtt.tmpl.event_idx, -1);
	assert_non_null(config_event_find(basic, "flood"));
	assert_true(config_event_find(basic, "flood")->has_value);
}

/* ---------------------------------------------------------- valid input */

static void test_minimal(void **state)
{
	(void)state;
	expect(MSG_OK, NULL, parse(basic, T_CHECKIN, "{}"));
	assert_string_equal(rec.cell, "yh-01");
	assert_string_equal(rec.worker, "w017");
	assert_string_equal(rec.type, "checkin");
	assert_string_equal(rec.msg_id, "");
	assert_int_equal(rec.ts, RECV_S);
	assert_false(rec.has_device_ts);
	assert_int_equal(rec.recv_ms, RECV_MS);
	assert_false(rec.has_pos);
	assert_false(rec.has_value);
	assert_false(rec.has_note);
	assert_false(rec.has_photo);
	assert_int_equal(rec.flags, 0);
	assert_int_equal(rec.raw_len, 2);
	assert_memory_equal(rec.raw, "{}", 2);
	assert_ptr_equal(rec.cell_cfg, config_cell_find(basic, "yh-01"));
	assert_ptr_equal(rec.event_cfg, config_event_find(basic, "checkin"));
	assert_string_equal(rec.cell_cfg->id, "yh-01");
	assert_string_equal(rec.event_cfg->name, "checkin");

	/* Surrounding JSON whitespace is fine. */
	expect(MSG_OK, NULL, parse(basic, T_CHECKIN, " \r\n\t{ } \n"));
}

static void test_full(void **state)
{
	const char *p = "{\"id\":\"w017-000123\",\"ts\":1795499940,\"lat\":30.998,"
	                "\"lon\":103.567,\"value\":262.5,\"note\":\"紫坪铺库岸水位上涨\","
	                "\"photo\":\"img/2026/11/24/0001.jpg\",\"event\":\"flood\","
	                "\"battery\":87,\"extra\":{\"nested\":[1,2,null]}}";

	(void)state;
	expect(MSG_OK, NULL, parse(basic, T_FLOOD, p));
	assert_string_equal(rec.type, "flood");
	assert_string_equal(rec.msg_id, "w017-000123");
	assert_int_equal(rec.ts, 1795499940);
	assert_true(rec.has_device_ts);
	assert_int_equal(rec.device_ts, 1795499940);
	assert_true(rec.has_pos);
	assert_true(rec.lat == 30.998);
	assert_true(rec.lon == 103.567);
	assert_true(rec.has_value);
	assert_true(rec.value == 262.5);
	assert_true(rec.has_note);
	assert_string_equal(rec.note, "紫坪铺库岸水位上涨");
	assert_true(rec.has_photo);
	assert_string_equal(rec.photo, "img/2026/11/24/0001.jpg");
	assert_int_equal(rec.flags, 0);
	assert_ptr_equal(rec.raw, p);
	assert_int_equal(rec.raw_len, strlen(p));

	/* Integer coordinates and value are numbers too; 0 is a value. */
	expect(MSG_OK, NULL, parse(basic, T_FLOOD, "{\"lat\":31,\"lon\":104,\"value\":0}"));
	assert_true(rec.lat == 31.0 && rec.lon == 104.0);
	assert_true(rec.has_value && rec.value == 0.0);
	/* A value on a type that does not declare one is kept. */
	expect(MSG_OK, NULL, parse(basic, T_CHECKIN, "{\"value\":-3.5}"));
	assert_true(rec.has_value && rec.value == -3.5);
}

static void test_sql_note_verbatim(void **state)
{
	const char *note = "'); DROP TABLE event; -- \\\" 钓鱼 <b>";

	(void)state;
	expect(MSG_OK, NULL,
	       parse(basic, T_CHECKIN,
	             "{\"note\":\"'); DROP TABLE event; -- \\\\\\\" 钓鱼 <b>\"}"));
	assert_string_equal(rec.note, note);
}

static void test_unknown_fields_ignored(void **state)
{
	(void)state;
	expect(MSG_OK, NULL,
	       parse(basic, T_CHECKIN,
	             "{\"foo\":[1,{\"x\":null}],\"ID\":5,\"Ts\":\"x\",\"bar\":\"\\u0000\"}"));
	assert_string_equal(rec.msg_id, "");
	assert_false(rec.has_device_ts);
}

/* ------------------------------------------------------------------- id */

static void test_id(void **state)
{
	char id[1024] = "", p[2048];

	(void)state;
	/* 128 three-byte characters: 384 bytes, 128 characters. */
	for (int i = 0; i < 128; i++)
		strcat(id, "网");
	snprintf(p, sizeof(p), "{\"id\":\"%s\"}", id);
	expect(MSG_OK, NULL, parse(basic, T_CHECKIN, p));
	assert_string_equal(rec.msg_id, id);

	/* 128 four-byte characters fill MSG_ID_MAX_BYTES exactly. */
	id[0] = '\0';
	for (int i = 0; i < 128; i++)
		strcat(id, "😀");
	snprintf(p, sizeof(p), "{\"id\":\"%s\"}", id);
	expect(MSG_OK, NULL, parse(basic, T_CHECKIN, p));
	assert_int_equal(strlen(rec.msg_id), MSG_ID_MAX_BYTES);

	id[0] = '\0';
	for (int i = 0; i < 129; i++)
		strcat(id, "网");
	snprintf(p, sizeof(p), "{\"id\":\"%s\"}", id);
	expect(MSG_BAD_FIELD, "id has 129 characters", parse(basic, T_CHECKIN, p));

	expect(MSG_OK, NULL, parse(basic, T_CHECKIN, "{\"id\":\"a\"}"));
	assert_string_equal(rec.msg_id, "a");
	expect(MSG_BAD_FIELD, "id has 0 characters", parse(basic, T_CHECKIN, "{\"id\":\"\"}"));
	expect(MSG_BAD_FIELD, "id must be a string", parse(basic, T_CHECKIN, "{\"id\":42}"));
	expect(MSG_BAD_FIELD, "id must be a string", parse(basic, T_CHECKIN, "{\"id\":null}"));
	expect(MSG_BAD_FIELD, "id contains a NUL",
	       parse(basic, T_CHECKIN, "{\"id\":\"a\\u0000b\"}"));
}

/* ------------------------------------------------------------------- ts */

static void test_ts_integer(void **state)
{
	(void)state;
	expect(MSG_OK, NULL, parse(basic, T_CHECKIN, "{\"ts\":1795499900}"));
	assert_int_equal(rec.ts, 1795499900);
	assert_int_equal(rec.device_ts, 1795499900);
	assert_true(rec.has_device_ts);
	expect(MSG_BAD_FIELD, "ts is out of range", parse(basic, T_CHECKIN, "{\"ts\":0}"));
	expect(MSG_BAD_FIELD, "ts is out of range", parse(basic, T_CHECKIN, "{\"ts\":-5}"));
	expect(MSG_BAD_FIELD, "ts is out of range",
	       parse(basic, T_CHECKIN, "{\"ts\":253402300800}"));
	expect(MSG_BAD_FIELD, "ts is out of range",
	       parse(basic, T_CHECKIN, "{\"ts\":9223372036854775807}"));
	/* The last representable second is in range (then skew-corrected). */
	expect(MSG_OK, NULL, parse(basic, T_CHECKIN, "{\"ts\":253402300799}"));
	assert_int_equal(rec.device_ts, 253402300799);
	assert_int_equal(rec.ts, RECV_S);
}

static void test_ts_wrong_type(void **state)
{
	(void)state;
	expect(MSG_BAD_FIELD, "ts must be", parse(basic, T_CHECKIN, "{\"ts\":1795499900.5}"));
	expect(MSG_BAD_FIELD, "ts must be", parse(basic, T_CHECKIN, "{\"ts\":1795499900.0}"));
	expect(MSG_BAD_FIELD, "ts must be", parse(basic, T_CHECKIN, "{\"ts\":1.7955e9}"));
	expect(MSG_BAD_FIELD, "ts must be", parse(basic, T_CHECKIN, "{\"ts\":true}"));
	expect(MSG_BAD_FIELD, "ts must be", parse(basic, T_CHECKIN, "{\"ts\":null}"));
	expect(MSG_BAD_FIELD, "ts must be", parse(basic, T_CHECKIN, "{\"ts\":[1795499900]}"));
	expect(MSG_BAD_FIELD, "ts contains a NUL",
	       parse(basic, T_CHECKIN, "{\"ts\":\"2026-11-24T06:00:00Z\\u0000\"}"));
}

static void test_ts_rfc3339_in_payload(void **state)
{
	(void)state;
	expect(MSG_OK, NULL, parse(basic, T_CHECKIN, "{\"ts\":\"2026-11-24T05:59:00Z\"}"));
	assert_int_equal(rec.ts, RECV_S - 60);
	expect(MSG_OK, NULL, parse(basic, T_CHECKIN, "{\"ts\":\"2026-11-24T13:59:00+08:00\"}"));
	assert_int_equal(rec.ts, RECV_S - 60);
	expect(MSG_OK, NULL,
	       parse(basic, T_CHECKIN, "{\"ts\":\"2026-11-24t13:59:00.987654321+08:00\"}"));
	assert_int_equal(rec.ts, RECV_S - 60);
	expect(MSG_OK, NULL, parse(basic, T_CHECKIN, "{\"ts\":\"2026-11-23T23:59:59.5-06:00\"}"));
	assert_int_equal(rec.ts, RECV_S - 1);
	expect(MSG_BAD_FIELD, "RFC 3339",
	       parse(basic, T_CHECKIN, "{\"ts\":\"2026-02-30T10:00:00Z\"}"));
	expect(MSG_BAD_FIELD, "RFC 3339",
	       parse(basic, T_CHECKIN, "{\"ts\":\"2026-11-24T06:00:00\"}"));
	expect(MSG_BAD_FIELD, "RFC 3339", parse(basic, T_CHECKIN, "{\"ts\":\"1795499900\"}"));
	expect(MSG_BAD_FIELD, "ts is out of range",
	       parse(basic, T_CHECKIN, "{\"ts\":\"1969-12-31T23:59:59Z\"}"));
	expect(MSG_BAD_FIELD, "ts is out of range",
	       parse(basic, T_CHECKIN, "{\"ts\":\"1970-01-01T00:00:00Z\"}"));
}

static void rfc_ok(const char *s, int64_t want)
{
	int64_t got = 0;

	if (msg_parse_rfc3339(s, strlen(s), &got) != 0)
		fail_msg("\"%s\" refused", s);
	if (got != want)
		fail_msg("\"%s\" = %lld, want %lld", s, (long long)got, (long long)want);
}

static void rfc_bad(const char *s)
{
	int64_t got = 12345;

	if (msg_parse_rfc3339(s, strlen(s), &got) != -1)
		fail_msg("\"%s\" accepted as %lld", s, (long long)got);
	assert_int_equal(got, 12345);
}

static void test_rfc3339(void **state)
{
	(void)state;
	rfc_ok("1970-01-01T00:00:00Z", 0);
	rfc_ok("1970-01-01T00:00:01z", 1);
	rfc_ok("1969-12-31T23:59:59Z", -1);
	rfc_ok("2000-03-01T00:00:00Z", 951868800);
	rfc_ok("2000-02-29T23:59:59Z", 951868799);
	rfc_ok("2024-02-29T12:00:00Z", 1709208000);
	rfc_ok("2026-11-24T13:27:00+08:00", 1795498020);
	rfc_ok("2026-11-24T05:27:00.123456789012345678901234567890Z", 1795498020);
	rfc_ok("2026-11-24T05:27:00.9Z", 1795498020);
	rfc_ok("2026-11-24T00:00:00-00:00", 1795478400);
	rfc_ok("2026-11-23T16:00:00-08:00", 1795478400);
	rfc_ok("2026-11-24T23:59:00+23:59", 1795478400);
	rfc_ok("2026-12-31T23:59:59Z", 1798761599);
	rfc_ok("2100-03-01T00:00:00Z", 4107542400);
	rfc_ok("9999-12-31T23:59:59Z", 253402300799);
	rfc_ok("0000-01-01T00:00:00Z", INT64_C(-62167219200));

	rfc_bad("");
	rfc_bad("2026-11-24");
	rfc_bad("2026-11-24T13:27:00");  /* no offset */
	rfc_bad("2026-11-24T13:27Z");    /* no seconds */
	rfc_bad("2026-11-24 13:27:00Z"); /* space */
	rfc_bad("2026-11-24X13:27:00Z");
	rfc_bad("2026-02-30T10:00:00Z"); /* impossible dates */
	rfc_bad("2026-02-29T10:00:00Z");
	rfc_bad("2100-02-29T10:00:00Z");
	rfc_bad("2026-04-31T10:00:00Z");
	rfc_bad("2026-00-10T10:00:00Z");
	rfc_bad("2026-13-10T10:00:00Z");
	rfc_bad("2026-11-00T10:00:00Z");
	rfc_bad("2026-11-24T25:00:00Z");
	rfc_bad("2026-11-24T24:00:00Z");
	rfc_bad("2026-11-24T23:60:00Z");
	rfc_bad("2026-12-31T23:59:60Z"); /* leap second */
	rfc_bad("2026-11-24T13:27:00+24:00");
	rfc_bad("2026-11-24T13:27:00+08:60");
	rfc_bad("2026-11-24T13:27:00+0800");
	rfc_bad("2026-11-24T13:27:00+08");
	rfc_bad("2026-11-24T13:27:00+08:00Z");
	rfc_bad("2026-11-24T13:27:00.Z"); /* empty fraction */
	rfc_bad("2026-11-24T13:27:00,5Z");
	rfc_bad("2026-11-24T13:27:00Zjunk");
	rfc_bad("2026-11-24T13:27:00 Z");
	rfc_bad("2026-11-24T13:27:00ZZ");
	rfc_bad("26-11-24T13:27:00Z");
	rfc_bad("+2026-11-24T13:27:00Z");
	rfc_bad("2026-1-24T13:27:00Z");
	rfc_bad("2026-11-24T1:27:00Z");
	rfc_bad("2026-11-24T13:27:0aZ");
	rfc_bad("-026-11-24T13:27:00Z");
	rfc_bad("2026-11-24T13:27:00z\n");

	/* Length is honoured: nothing past len is read, a NUL inside fails. */
	{
		const char s[] = "2026-11-24T05:27:00Zgarbage";
		int64_t got = 0;

		assert_int_equal(msg_parse_rfc3339(s, 20, &got), 0);
		assert_int_equal(got, 1795498020);
		assert_int_equal(msg_parse_rfc3339(s, 19, &got), -1);
		assert_int_equal(msg_parse_rfc3339("2026-11-24T05:27:00\0Z", 21, &got), -1);
		assert_int_equal(msg_parse_rfc3339(NULL, 0, &got), -1);
	}
}

/* ------------------------------------------------------------ time rules */

static void test_clock_skew(void **state)
{
	char buf[32];

	(void)state;
	/* Exactly max_clock_skew ahead is believed. */
	expect(MSG_OK, NULL,
	       parse(basic, T_CHECKIN, fmt("{\"ts\":%lld}", (long long)(RECV_S + 300))));
	assert_int_equal(rec.ts, RECV_S + 300);
	assert_int_equal(rec.flags, 0);
	/* One second more is replaced by receive time and flagged. */
	expect(MSG_OK, NULL,
	       parse(basic, T_CHECKIN, fmt("{\"ts\":%lld}", (long long)(RECV_S + 301))));
	assert_int_equal(rec.ts, RECV_S);
	assert_true(rec.has_device_ts);
	assert_int_equal(rec.device_ts, RECV_S + 301);
	assert_int_equal(rec.flags, MSG_FLAG_CLOCK_SKEW);
	msg_flags_format(rec.flags, buf, sizeof(buf));
	assert_string_equal(buf, "clock_skew");
	/* Years ahead (a device clock reset to 2099) likewise. */
	expect(MSG_OK, NULL, parse(basic, T_CHECKIN, "{\"ts\":\"2099-01-01T00:00:00Z\"}"));
	assert_int_equal(rec.ts, RECV_S);
	assert_int_equal(rec.flags, MSG_FLAG_CLOCK_SKEW);
}

static void test_too_old(void **state)
{
	(void)state;
	expect(MSG_OK, NULL,
	       parse(basic, T_CHECKIN, fmt("{\"ts\":%lld}", (long long)(RECV_S - 7 * 86400))));
	assert_int_equal(rec.ts, RECV_S - 7 * 86400);
	assert_int_equal(rec.flags, MSG_FLAG_LATE);
	expect(MSG_TOO_OLD, "604801 s before receive time",
	       parse(basic, T_CHECKIN, fmt("{\"ts\":%lld}", (long long)(RECV_S - 7 * 86400 - 1))));
	/* A device clock reset to 1970 is too old, not a field error. */
	expect(MSG_TOO_OLD, NULL, parse(basic, T_CHECKIN, "{\"ts\":1}"));
}

static void test_late(void **state)
{
	char buf[32];

	(void)state;
	expect(MSG_OK, NULL,
	       parse(basic, T_CHECKIN, fmt("{\"ts\":%lld}", (long long)(RECV_S - 600))));
	assert_int_equal(rec.flags, 0);
	expect(MSG_OK, NULL,
	       parse(basic, T_CHECKIN, fmt("{\"ts\":%lld}", (long long)(RECV_S - 601))));
	assert_int_equal(rec.flags, MSG_FLAG_LATE);
	assert_int_equal(rec.ts, RECV_S - 601);
	msg_flags_format(rec.flags, buf, sizeof(buf));
	assert_string_equal(buf, "late");
	/* recv_s is the floor of recv_ms: 999 ms do not make a second. */
	expect(MSG_OK, NULL,
	       parse_n(basic, T_CHECKIN, "{\"ts\":1795499400}", 17, RECV_S * 1000 + 999));
	assert_int_equal(rec.flags, 0);
	expect(MSG_OK, NULL,
	       parse_n(basic, T_CHECKIN, "{\"ts\":1795499400}", 17, (RECV_S + 1) * 1000));
	assert_int_equal(rec.flags, MSG_FLAG_LATE);
}

static void test_configured_limits(void **state)
{
	char pad[128];

	(void)state;
	expect(MSG_OK, NULL,
	       parse(small, T_CHECKIN, fmt("{\"ts\":%lld}", (long long)(RECV_S + 10))));
	assert_int_equal(rec.flags, 0);
	expect(MSG_OK, NULL,
	       parse(small, T_CHECKIN, fmt("{\"ts\":%lld}", (long long)(RECV_S + 11))));
	assert_int_equal(rec.flags, MSG_FLAG_CLOCK_SKEW);
	expect(MSG_OK, NULL,
	       parse(small, T_CHECKIN, fmt("{\"ts\":%lld}", (long long)(RECV_S - 61))));
	assert_int_equal(rec.flags, MSG_FLAG_LATE);
	expect(MSG_OK, NULL,
	       parse(small, T_CHECKIN, fmt("{\"ts\":%lld}", (long long)(RECV_S - 3600))));
	expect(MSG_TOO_OLD, NULL,
	       parse(small, T_CHECKIN, fmt("{\"ts\":%lld}", (long long)(RECV_S - 3601))));
	memset(pad, ' ', sizeof(pad));
	pad[0] = '{';
	pad[63] = '}';
	expect(MSG_OK, NULL, parse_n(small, T_CHECKIN, pad, 64, RECV_MS));
	pad[64] = ' ';
	expect(MSG_TOO_LARGE, "65 bytes, limit is 64", parse_n(small, T_CHECKIN, pad, 65, RECV_MS));
}

static void test_flags_format(void **state)
{
	char buf[32];
	char tiny[5];

	(void)state;
	msg_flags_format(0, buf, sizeof(buf));
	assert_string_equal(buf, "");
	msg_flags_format(MSG_FLAG_LATE, buf, sizeof(buf));
	assert_string_equal(buf, "late");
	msg_flags_format(MSG_FLAG_CLOCK_SKEW, buf, sizeof(buf));
	assert_string_equal(buf, "clock_skew");
	msg_flags_format(MSG_FLAG_LATE | MSG_FLAG_CLOCK_SKEW, buf, sizeof(buf));
	assert_string_equal(buf, "late,clock_skew");
	msg_flags_format(MSG_FLAG_LATE | 0x100, buf, sizeof(buf));
	assert_string_equal(buf, "late");
	msg_flags_format(MSG_FLAG_LATE | MSG_FLAG_CLOCK_SKEW, tiny, sizeof(tiny));
	assert_string_equal(tiny, "late");
	msg_flags_format(MSG_FLAG_LATE, NULL, 0);
}

static void test_reason_names(void **state)
{
	(void)state;
	assert_string_equal(msg_reason_name(MSG_OK), "ok");
	assert_string_equal(msg_reason_name(MSG_BAD_JSON), "bad_json");
	assert_string_equal(msg_reason_name(MSG_BAD_FIELD), "bad_field");
	assert_string_equal(msg_reason_name(MSG_BAD_TOPIC), "bad_topic");
	assert_string_equal(msg_reason_name(MSG_UNKNOWN_CELL), "unknown_cell");
	assert_string_equal(msg_reason_name(MSG_UNKNOWN_EVENT), "unknown_event");
	assert_string_equal(msg_reason_name(MSG_TOO_LARGE), "too_large");
	assert_string_equal(msg_reason_name(MSG_TOO_OLD), "too_old");
}

/* ------------------------------------------------------------- position */

static void test_position(void **state)
{
	(void)state;
	expect(MSG_BAD_FIELD, "lat given without lon", parse(basic, T_CHECKIN, "{\"lat\":30.9}"));
	expect(MSG_BAD_FIELD, "lon given without lat", parse(basic, T_CHECKIN, "{\"lon\":103.5}"));
	expect(MSG_OK, NULL, parse(basic, T_CHECKIN, "{\"lat\":90,\"lon\":-180}"));
	expect(MSG_OK, NULL, parse(basic, T_CHECKIN, "{\"lat\":-90.0,\"lon\":180.0}"));
	expect(MSG_BAD_FIELD, "lat 91 is outside",
	       parse(basic, T_CHECKIN, "{\"lat\":91,\"lon\":103.5}"));
	expect(MSG_BAD_FIELD, "lat", parse(basic, T_CHECKIN, "{\"lat\":-90.000001,\"lon\":103.5}"));
	expect(MSG_BAD_FIELD, "lon -181 is outside",
	       parse(basic, T_CHECKIN, "{\"lat\":30.9,\"lon\":-181}"));
	expect(MSG_BAD_FIELD, "lat must be a finite number",
	       parse(basic, T_CHECKIN, "{\"lat\":\"30.9\",\"lon\":103.5}"));
	expect(MSG_BAD_FIELD, "lon must be a finite number",
	       parse(basic, T_CHECKIN, "{\"lat\":30.9,\"lon\":null}"));
	expect(MSG_BAD_FIELD, "lat must be",
	       parse(basic, T_CHECKIN, "{\"lat\":[30.9],\"lon\":103.5}"));
}

/* ---------------------------------------------------------------- value */

static void test_value(void **state)
{
	(void)state;
	expect(MSG_OK, NULL, parse(basic, T_FLOOD, "{\"value\":300}"));
	assert_true(rec.value == 300.0);
	expect(MSG_BAD_FIELD, "value must be a finite number",
	       parse(basic, T_FLOOD, "{\"value\":\"262\"}"));
	expect(MSG_BAD_FIELD, "value must be", parse(basic, T_FLOOD, "{\"value\":true}"));
	expect(MSG_BAD_FIELD, "requires a value", parse(basic, T_FLOOD, "{\"note\":\"水位\"}"));
	/* Non-finite and out-of-range numbers are not JSON numbers at all. */
	expect(MSG_BAD_JSON, "invalid token", parse(basic, T_FLOOD, "{\"value\":NaN}"));
	expect(MSG_BAD_JSON, NULL, parse(basic, T_FLOOD, "{\"value\":Infinity}"));
	expect(MSG_BAD_JSON, NULL, parse(basic, T_FLOOD, "{\"value\":-Infinity}"));
	expect(MSG_BAD_JSON, "real number overflow", parse(basic, T_FLOOD, "{\"value\":1e400}"));
	expect(MSG_BAD_JSON, "too big integer",
	       parse(basic, T_FLOOD, "{\"value\":123456789012345678901234567890}"));
	expect(MSG_BAD_JSON, "too big integer",
	       parse(basic, T_CHECKIN, "{\"ts\":99999999999999999999}"));
	/* Underflow to zero is a finite number. */
	expect(MSG_OK, NULL, parse(basic, T_FLOOD, "{\"value\":1e-400}"));
}

/* ----------------------------------------------------------- note, photo */

static void test_note_photo_lengths(void **state)
{
	char s[1300], p[1400];

	(void)state;
	/* 333 three-byte characters and one ASCII byte: 1000 bytes. */
	s[0] = '\0';
	for (int i = 0; i < 333; i++)
		strcat(s, "钓");
	strcat(s, "a");
	assert_int_equal(strlen(s), 1000);
	snprintf(p, sizeof(p), "{\"note\":\"%s\"}", s);
	expect(MSG_OK, NULL, parse(basic, T_CHECKIN, p));
	assert_string_equal(rec.note, s);
	strcat(s, "b");
	snprintf(p, sizeof(p), "{\"note\":\"%s\"}", s);
	expect(MSG_BAD_FIELD, "note is 1001 bytes, at most 1000", parse(basic, T_CHECKIN, p));
	/* Escapes count as the bytes they decode to. */
	s[0] = '\0';
	for (int i = 0; i < 1000; i++)
		strcat(s, i < 200 ? "\\n" : "x");
	snprintf(p, sizeof(p), "{\"note\":\"%s\"}", s);
	expect(MSG_OK, NULL, parse_n(basic, T_CHECKIN, p, strlen(p), RECV_MS));
	assert_int_equal(strlen(rec.note), 1000);

	memset(s, 'x', 512);
	s[512] = '\0';
	snprintf(p, sizeof(p), "{\"photo\":\"%s\"}", s);
	expect(MSG_OK, NULL, parse(basic, T_CHECKIN, p));
	assert_string_equal(rec.photo, s);
	s[512] = 'y';
	s[513] = '\0';
	snprintf(p, sizeof(p), "{\"photo\":\"%s\"}", s);
	expect(MSG_BAD_FIELD, "photo is 513 bytes, at most 512", parse(basic, T_CHECKIN, p));

	expect(MSG_OK, NULL, parse(basic, T_CHECKIN, "{\"note\":\"\",\"photo\":\"\"}"));
	assert_true(rec.has_note && rec.has_photo);
	expect(MSG_BAD_FIELD, "note must be a string", parse(basic, T_CHECKIN, "{\"note\":12}"));
	expect(MSG_BAD_FIELD, "photo must be a string", parse(basic, T_CHECKIN, "{\"photo\":{}}"));
}

/* ------------------------------------------------------ NUL, surrogates */

static void test_nul_and_surrogates(void **state)
{
	(void)state;
	expect(MSG_BAD_FIELD, "note contains a NUL",
	       parse(basic, T_CHECKIN, "{\"note\":\"钓鱼\\u0000\"}"));
	expect(MSG_BAD_FIELD, "photo contains a NUL",
	       parse(basic, T_CHECKIN, "{\"photo\":\"\\u0000\"}"));
	expect(MSG_BAD_FIELD, "NUL", parse(basic, T_CHECKIN, "{\"no\\u0000te\":1}"));
	expect(MSG_BAD_FIELD, "invalid Unicode", parse(basic, T_CHECKIN, "{\"note\":\"\\ud800\"}"));
	expect(MSG_BAD_FIELD, "invalid Unicode",
	       parse(basic, T_CHECKIN, "{\"note\":\"\\udc00x\"}"));
	expect(MSG_BAD_FIELD, "invalid Unicode",
	       parse(basic, T_CHECKIN, "{\"note\":\"\\ud800\\u0041\"}"));
	expect(MSG_BAD_FIELD, "invalid Unicode",
	       parse(basic, T_CHECKIN, "{\"other\":\"\\uDBFF\"}"));
	expect(MSG_BAD_FIELD, "bad string escape at line 1",
	       parse(basic, T_CHECKIN, "{\"note\":\"\\u12G4\"}"));
	/* A bad escape other than \u is plain syntax. */
	expect(MSG_BAD_JSON, "invalid escape", parse(basic, T_CHECKIN, "{\"note\":\"\\q\"}"));
	/* jansson quotes only short tokens; long strings must classify alike. */
	expect(MSG_BAD_FIELD, "bad string escape",
	       parse(basic, T_CHECKIN, "{\"note\":\"紫坪铺库岸东侧两人垂钓已劝离 \\u12\"}"));
	expect(MSG_BAD_FIELD, "bad string escape",
	       parse(basic, T_CHECKIN, "{\"note\":\"more than twenty bytes of text \\uG\"}"));
	expect(MSG_BAD_FIELD, "bad string escape",
	       parse(basic, T_CHECKIN, "{\"note\":\"more than twenty bytes of text \\u\\u0041\"}"));
	expect(MSG_BAD_JSON, "invalid escape",
	       parse(basic, T_CHECKIN, "{\"note\":\"more than twenty bytes of text \\u0041\\q\"}"));
	expect(MSG_BAD_FIELD, "bad string escape",
	       parse(basic, T_CHECKIN, "{\"note\":\"abc \\u\xe4\xb8\x80\"}"));
	assert_null(strchr(detail, '\xe4'));
	expect(MSG_BAD_FIELD, NULL, parse(basic, T_CHECKIN, "{\"note\":\"\\u"));
	expect(MSG_BAD_FIELD, NULL, parse(basic, T_CHECKIN, "{\"note\":\"\\u12"));
	expect(MSG_BAD_JSON, NULL, parse(basic, T_CHECKIN, "{\"note\":\"\\"));
	/* An escaped backslash followed by "u12G4" is just text. */
	expect(MSG_OK, NULL,
	       parse(basic, T_CHECKIN, "{\"note\":\"more than twenty bytes of text \\\\u12G4\"}"));
	assert_string_equal(rec.note, "more than twenty bytes of text \\u12G4");
	expect(MSG_BAD_FIELD, NULL,
	       parse(basic, T_CHECKIN,
	             "{\"note\":\"more than twenty bytes of text \\\\\\u12G4\"}"));
	/* Outside an object, the same string is simply not a payload. */
	expect(MSG_BAD_JSON, NULL, parse(basic, T_CHECKIN, "[\"\\ud800\"]"));
	/* A proper surrogate pair is fine and decodes to UTF-8. */
	expect(MSG_OK, NULL, parse(basic, T_CHECKIN, "{\"note\":\"\\ud83d\\ude00 \\u94b1\"}"));
	assert_string_equal(rec.note, "\xF0\x9F\x98\x80 \xE9\x92\xB1");
}

/* ------------------------------------------------------------- bad_json */

static void test_bad_json(void **state)
{
	(void)state;
	expect(MSG_BAD_JSON, "unable to decode byte 0xff",
	       parse(basic, T_CHECKIN, "{\"note\":\"\xff\"}"));
	assert_null(strchr(detail, '\xff'));
	expect(MSG_BAD_JSON, NULL, parse(basic, T_CHECKIN, "{\"note\":\"\xc0\xaf\"}"));
	expect(MSG_BAD_JSON, NULL, parse(basic, T_CHECKIN, "{\"note\":\"\xed\xa0\x80\"}"));
	expect(MSG_BAD_JSON, "control character",
	       parse_n(basic, T_CHECKIN, "{\"note\":\"a\0b\"}", 14, RECV_MS));
	expect(MSG_BAD_JSON, "end of file expected", parse_n(basic, T_CHECKIN, "{}\0", 3, RECV_MS));
	expect(MSG_BAD_JSON, NULL, parse_n(basic, T_CHECKIN, "\0{}", 3, RECV_MS));
	expect(MSG_BAD_JSON, "duplicate object key",
	       parse(basic, T_CHECKIN, "{\"id\":\"a\",\"id\":\"b\"}"));
	expect(MSG_BAD_JSON, "duplicate object key", parse(basic, T_CHECKIN, "{\"x\":1,\"x\":1}"));
	expect(MSG_BAD_JSON, "not an object", parse(basic, T_CHECKIN, "[]"));
	expect(MSG_BAD_JSON, "array", parse(basic, T_CHECKIN, "[{\"id\":\"a\"}]"));
	expect(MSG_BAD_JSON, NULL, parse(basic, T_CHECKIN, "\"checkin\""));
	expect(MSG_BAD_JSON, NULL, parse(basic, T_CHECKIN, "42"));
	expect(MSG_BAD_JSON, NULL, parse(basic, T_CHECKIN, "null"));
	expect(MSG_BAD_JSON, "expected", parse(basic, T_CHECKIN, " "));
	expect(MSG_BAD_JSON, NULL, parse(basic, T_CHECKIN, " \r\n\t "));
	expect(MSG_BAD_JSON, "invalid JSON at line 1 column", parse(basic, T_CHECKIN, "{\"id\":"));
	expect(MSG_BAD_JSON, NULL, parse(basic, T_CHECKIN, "{'id':'a'}"));
	expect(MSG_BAD_JSON, NULL, parse(basic, T_CHECKIN, "{\"id\":\"a\",}"));
	expect(MSG_BAD_JSON, NULL, parse(basic, T_CHECKIN, "{} {}"));
	expect(MSG_BAD_JSON, NULL, parse(basic, T_CHECKIN, "\xef\xbb\xbf{}"));
	expect(MSG_BAD_JSON, NULL, parse(basic, T_CHECKIN, "{\"a\":01}"));
}

/* Error text quotes the offending token: control characters, layout
 * characters and non-UTF-8 bytes must come out escaped. */
static void test_detail_escaped(void **state)
{
	(void)state;
	expect(MSG_BAD_JSON, NULL, parse(basic, T_CHECKIN, "{\"a\":tru\x1b[31m}"));
	assert_null(strchr(detail, '\x1b'));
	expect(MSG_BAD_JSON, NULL, parse(basic, T_CHECKIN, "{\"a\":x\xe2\x80\xae}"));
	assert_null(strstr(detail, "\xe2\x80\xae"));
	expect(MSG_BAD_JSON, NULL, parse(basic, T_CHECKIN, "{\"a\":\"\\q\xe2\x80\xa8\"}"));
	assert_null(strstr(detail, "\xe2\x80\xa8"));
	expect(MSG_BAD_FIELD, NULL, parse(basic, T_CHECKIN, "{\"钓鱼\":\"\\ud800\"}"));
}

/* Small and odd detail buffers: always terminated, UTF-8 never cut. */
static void test_detail_buffers(void **state)
{
	struct msg_record r;
	char d[16];

	(void)state;
	for (size_t n = 1; n <= sizeof(d); n++) {
		memset(d, 'X', sizeof(d));
		assert_int_equal(
		        msg_parse(basic, "patrol/yh-01/w017/swim", "{}", 2, RECV_MS, &r, d, n),
		        MSG_UNKNOWN_EVENT);
		assert_true(strlen(d) < n);
		assert_true(utf8_valid(d));
		memset(d, 'X', sizeof(d));
		assert_int_equal(msg_parse(basic, T_CHECKIN, "{\"ts\":\"2026-02-30T00:00:00Z\"}",
		                           29, RECV_MS, &r, d, n),
		                 MSG_BAD_FIELD);
		assert_true(strlen(d) < n);
		assert_true(utf8_valid(d));
	}
	assert_int_equal(msg_parse(basic, T_CHECKIN, "[]", 2, RECV_MS, &r, NULL, 0), MSG_BAD_JSON);
	assert_int_equal(msg_parse(basic, T_CHECKIN, "{}", 2, RECV_MS, NULL, d, sizeof(d)), MSG_OK);
	/* "±" is two bytes; cutting between them would be invalid UTF-8. */
	for (size_t n = 1; n <= MSG_DETAIL_MAX; n++) {
		char big[MSG_DETAIL_MAX];

		assert_int_equal(
		        msg_parse(basic, T_CHECKIN, "{\"ts\":\"x\"}", 10, RECV_MS, &r, big, n),
		        MSG_BAD_FIELD);
		assert_true(strlen(big) < n);
		assert_true(utf8_valid(big));
	}
}

/* ------------------------------------------------------- claims */

/* A claim type reads alert_id (a positive integer); other types leave it
 * an unknown field. */
static void test_claim_alert_id(void **state)
{
	(void)state;
	const char *t = "patrol/yh-01/w017/claim";
	expect(MSG_OK, NULL, parse(basic, t, "{\"alert_id\":12}"));
	assert_true(rec.event_cfg->claim);
	assert_true(rec.has_alert_id);
	assert_int_equal(rec.alert_id, 12);
	expect(MSG_OK, NULL, parse(basic, t, "{\"id\":\"c1\"}"));
	assert_false(rec.has_alert_id);
	expect(MSG_OK, NULL, parse_n(basic, t, "", 0, RECV_MS));
	assert_false(rec.has_alert_id);
	const char *bad[] = { "{\"alert_id\":0}",      "{\"alert_id\":-3}",   "{\"alert_id\":1.5}",
		              "{\"alert_id\":\"12\"}", "{\"alert_id\":null}", "{\"alert_id\":[12]}",
		              "{\"alert_id\":1e3}" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect(MSG_BAD_FIELD, "alert_id must be a positive integer",
		       parse(basic, t, bad[i]));
	expect(MSG_OK, NULL, parse(basic, T_CHECKIN, "{\"alert_id\":\"anything\"}"));
	assert_false(rec.event_cfg->claim);
	assert_false(rec.has_alert_id);
}

/* ------------------------------------------------------- empty payload */

static void test_empty_payload(void **state)
{
	(void)state;
	expect(MSG_OK, NULL, parse_n(basic, T_CHECKIN, "", 0, RECV_MS));
	assert_string_equal(rec.type, "checkin");
	assert_int_equal(rec.ts, RECV_S);
	assert_false(rec.has_device_ts);
	assert_string_equal(rec.msg_id, "");
	assert_int_equal(rec.flags, 0);
	assert_int_equal(rec.raw_len, 0);
	assert_non_null(rec.event_cfg);
	expect(MSG_OK, NULL, parse_n(basic, T_CHECKIN, NULL, 0, RECV_MS));
	expect(MSG_OK, NULL, parse_n(basic, "patrol/yh-02/w021/fishing", "", 0, RECV_MS));
	assert_string_equal(rec.type, "fishing");
	expect(MSG_BAD_FIELD, "event type \"flood\" requires a value",
	       parse_n(basic, T_FLOOD, "", 0, RECV_MS));
	expect(MSG_BAD_FIELD, "event field required",
	       parse_n(noevent, "longchi/yunhua/w017/yh-01", "", 0, RECV_MS));
	/* Not deduplicated: two empty check-ins are two rows. */
	expect(MSG_OK, NULL, parse_n(basic, T_CHECKIN, "", 0, RECV_MS + 1000));
	assert_string_equal(rec.msg_id, "");
}

/* ------------------------------------------------------------ too_large */

static void test_too_large(void **state)
{
	size_t max = 8192;
	char *p = malloc(max + 2);

	(void)state;
	assert_non_null(p);
	/* {"pad":"xxx…"} of exactly max bytes. */
	memset(p, 'x', max + 1);
	memcpy(p, "{\"pad\":\"", 8);
	p[max - 2] = '"';
	p[max - 1] = '}';
	expect(MSG_OK, NULL, parse_n(basic, T_CHECKIN, p, max, RECV_MS));
	assert_int_equal(rec.raw_len, max);
	p[max - 1] = ' ';
	p[max] = '}';
	expect(MSG_TOO_LARGE, "8193 bytes, limit is 8192",
	       parse_n(basic, T_CHECKIN, p, max + 1, RECV_MS));
	/* Decided before anything else, even the topic. */
	expect(MSG_TOO_LARGE, NULL, parse_n(basic, "x", p, max + 1, RECV_MS));
	free(p);
}

/* ---------------------------------------------------- topic, cell, event */

static void test_bad_topic(void **state)
{
	char t[256];

	(void)state;
	expect(MSG_BAD_TOPIC, "topic has 3 levels, template has 4",
	       parse(basic, "patrol/yh-01/w017", "{}"));
	expect(MSG_BAD_TOPIC, "topic has 5 levels, template has 4",
	       parse(basic, "patrol/yh-01/w017/checkin/x", "{}"));
	expect(MSG_BAD_TOPIC, "ends with '/'", parse(basic, "patrol/yh-01/w017/checkin/", "{}"));
	expect(MSG_BAD_TOPIC, "level 3 is empty", parse(basic, "patrol/yh-01//checkin", "{}"));
	expect(MSG_BAD_TOPIC, "worker segment has invalid characters",
	       parse(basic, "patrol/yh-01/w 017/checkin", "{}"));
	expect(MSG_BAD_TOPIC, "cell segment has invalid characters",
	       parse(basic, "patrol/网格/w017/checkin", "{}"));
	expect(MSG_BAD_TOPIC, "worker segment", parse(basic, "patrol/yh-01/+/checkin", "{}"));
	expect(MSG_BAD_TOPIC, "topic level 1 is not \"patrol\"",
	       parse(basic, "patrolx/yh-01/w017/checkin", "{}"));
	memset(t, 'w', sizeof(t));
	memcpy(t, "patrol/yh-01/", 13);
	memcpy(t + 13 + 65, "/checkin", 9);
	expect(MSG_BAD_TOPIC, "longer than 64", parse(basic, t, "{}"));
	t[13 + 64] = '\0';
	memcpy(t + 13 + 64, "/checkin", 9);
	expect(MSG_OK, NULL, parse(basic, t, "{}"));
	expect(MSG_BAD_TOPIC, NULL, parse(basic, "patrol/yh-01/w017/\xff", "{}"));
	assert_null(strchr(detail, '\xff'));
	expect(MSG_BAD_TOPIC, NULL, parse(basic, "", "{}"));
	expect(MSG_BAD_TOPIC, NULL, parse(basic, NULL, "{}"));
	/* bad_topic wins over a bad payload. */
	expect(MSG_BAD_TOPIC, NULL, parse(basic, "patrol/yh-01/w017", "not json"));
}

static void test_unknown_cell_event(void **state)
{
	(void)state;
	expect(MSG_UNKNOWN_CELL, "cell \"yh-99\" is not configured",
	       parse(basic, "patrol/yh-99/w017/checkin", "{}"));
	expect(MSG_UNKNOWN_CELL, NULL, parse(basic, "patrol/YH-01/w017/checkin", "{}"));
	expect(MSG_UNKNOWN_EVENT, "event type \"swim\" is not configured",
	       parse(basic, "patrol/yh-01/w017/swim", "{}"));
	/* Order: unknown_cell before unknown_event, both before bad_json. */
	expect(MSG_UNKNOWN_CELL, NULL, parse(basic, "patrol/yh-99/w017/swim", "{}"));
	expect(MSG_UNKNOWN_CELL, NULL, parse(basic, "patrol/yh-99/w017/checkin", "[oops"));
	expect(MSG_UNKNOWN_EVENT, NULL, parse(basic, "patrol/yh-01/w017/swim", "[oops"));
	expect(MSG_UNKNOWN_EVENT, NULL, parse_n(basic, "patrol/yh-01/w017/swim", "", 0, RECV_MS));
}

static void test_event_field_with_topic_event(void **state)
{
	(void)state;
	expect(MSG_OK, NULL, parse(basic, T_CHECKIN, "{\"event\":\"checkin\"}"));
	expect(MSG_BAD_FIELD, "event field contradicts topic",
	       parse(basic, T_CHECKIN, "{\"event\":\"fishing\"}"));
	expect(MSG_BAD_FIELD, "event field contradicts topic",
	       parse(basic, T_CHECKIN, "{\"event\":\"checkin2\"}"));
	expect(MSG_BAD_FIELD, "event field contradicts topic",
	       parse(basic, T_CHECKIN, "{\"event\":\"\"}"));
	expect(MSG_BAD_FIELD, "event must be a string", parse(basic, T_CHECKIN, "{\"event\":1}"));
}

static void test_no_event_template(void **state)
{
	const char *t = "longchi/yunhua/w017/yh-01";

	(void)state;
	expect(MSG_OK, NULL, parse(noevent, t, "{\"event\":\"fishing\"}"));
	assert_string_equal(rec.worker, "w017");
	assert_string_equal(rec.cell, "yh-01");
	assert_string_equal(rec.type, "fishing");
	assert_ptr_equal(rec.event_cfg, config_event_find(noevent, "fishing"));
	assert_true(rec.event_cfg->alert_immediate);
	expect(MSG_BAD_FIELD, "event field required", parse(noevent, t, "{}"));
	expect(MSG_BAD_FIELD, "event must be a string", parse(noevent, t, "{\"event\":null}"));
	expect(MSG_BAD_FIELD, "event must be 1 to 64", parse(noevent, t, "{\"event\":\"\"}"));
	expect(MSG_BAD_FIELD, "event must be 1 to 64",
	       parse(noevent, t, "{\"event\":\"水库钓鱼\"}"));
	expect(MSG_BAD_FIELD, "event contains a NUL",
	       parse(noevent, t, "{\"event\":\"checkin\\u0000\"}"));
	expect(MSG_UNKNOWN_EVENT, "event type \"swim\" is not configured",
	       parse(noevent, t, "{\"event\":\"swim\"}"));
	expect(MSG_UNKNOWN_EVENT, NULL, parse(noevent, t, "{\"event\":\"litter\"}"));
	expect(MSG_BAD_FIELD, "event type \"flood\" requires a value",
	       parse(noevent, t, "{\"event\":\"flood\"}"));
	expect(MSG_OK, NULL, parse(noevent, t, "{\"event\":\"flood\",\"value\":251}"));
	/* Order: bad_field before unknown_event (payload) before too_old. */
	expect(MSG_BAD_FIELD, "lat",
	       parse(noevent, t, "{\"event\":\"swim\",\"lat\":91,\"lon\":0}"));
	expect(MSG_UNKNOWN_EVENT, NULL, parse(noevent, t, "{\"event\":\"swim\",\"ts\":1}"));
	expect(MSG_BAD_TOPIC, "topic has 5 levels, template has 4",
	       parse(noevent, "longchi/yunhua/w017/yh-01/checkin", "{\"event\":\"checkin\"}"));
	expect(MSG_UNKNOWN_CELL, NULL,
	       parse(noevent, "longchi/yunhua/yh-01/w017", "{\"event\":\"checkin\"}"));
}

static void test_check_order_fields(void **state)
{
	(void)state;
	/* bad_field beats too_old; bad_json beats bad_field. */
	expect(MSG_BAD_FIELD, NULL, parse(basic, T_CHECKIN, "{\"ts\":1,\"lat\":91,\"lon\":0}"));
	expect(MSG_BAD_JSON, NULL,
	       parse(basic, T_CHECKIN, "{\"ts\":1.5,\"id\":\"a\",\"id\":\"a\"}"));
	/* A missing value (bad_field) beats too_old. */
	expect(MSG_BAD_FIELD, "requires a value", parse(basic, T_FLOOD, "{\"ts\":1}"));
}

/* ---------------------------------------------------------------- dedup */

static void expected_key(const char *topic, const char *payload, char out[34])
{
	struct sha256 s;
	uint8_t d[32];

	sha256_init(&s);
	sha256_update(&s, topic, strlen(topic));
	sha256_update(&s, "\n", 1);
	sha256_update(&s, payload, strlen(payload));
	sha256_final(&s, d);
	out[0] = '~';
	for (int i = 0; i < 16; i++)
		snprintf(out + 1 + 2 * i, 3, "%02x", d[i]);
}

static void test_dedup_key(void **state)
{
	const char *p1 = "{\"ts\":1795499900}";
	const char *p2 = "{\"ts\":1795499901}";
	const char *p3 = "{\"ts\": 1795499900}";
	char k1[MSG_ID_MAX_BYTES + 1], want[34];

	(void)state;
	expect(MSG_OK, NULL, parse(basic, T_CHECKIN, p1));
	assert_int_equal(strlen(rec.msg_id), 33);
	assert_int_equal(rec.msg_id[0], '~');
	for (int i = 1; i < 33; i++)
		assert_non_null(strchr("0123456789abcdef", rec.msg_id[i]));
	expected_key(T_CHECKIN, p1, want);
	assert_string_equal(rec.msg_id, want);
	strcpy(k1, rec.msg_id);

	/* Stable: the same message again (a redelivery) gives the same key,
	 * whenever it arrives. */
	expect(MSG_OK, NULL, parse_n(basic, T_CHECKIN, p1, strlen(p1), RECV_MS + 5000));
	assert_string_equal(rec.msg_id, k1);
	/* Different payload, even only in whitespace, or different topic. */
	expect(MSG_OK, NULL, parse(basic, T_CHECKIN, p2));
	assert_string_not_equal(rec.msg_id, k1);
	expect(MSG_OK, NULL, parse(basic, T_CHECKIN, p3));
	assert_string_not_equal(rec.msg_id, k1);
	expect(MSG_OK, NULL, parse(basic, "patrol/yh-01/w021/checkin", p1));
	assert_string_not_equal(rec.msg_id, k1);
	/* The device's id wins; without id and ts there is no key. */
	expect(MSG_OK, NULL, parse(basic, T_CHECKIN, "{\"id\":\"w017-1\",\"ts\":1795499900}"));
	assert_string_equal(rec.msg_id, "w017-1");
	expect(MSG_OK, NULL, parse(basic, T_CHECKIN, "{\"note\":\"x\"}"));
	assert_string_equal(rec.msg_id, "");
}

/* ---------------------------------------------------------------- misc */

static void test_defensive(void **state)
{
	struct msg_record r;
	char d[MSG_DETAIL_MAX];
	char deep[6000];
	size_t n = 0;

	(void)state;
	assert_int_equal(msg_parse(NULL, T_CHECKIN, "{}", 2, RECV_MS, &r, d, sizeof(d)),
	                 MSG_BAD_TOPIC);
	/* Nesting deeper than jansson's limit is refused, not recursed. */
	deep[n++] = '{';
	memcpy(deep + n, "\"a\":", 4);
	n += 4;
	for (int i = 0; i < 2500; i++)
		deep[n++] = '[';
	expect(MSG_BAD_JSON, "depth", parse_n(basic, T_CHECKIN, deep, n, RECV_MS));
	/* recv_ms is floored, also before 1970. */
	expect(MSG_OK, NULL, parse_n(basic, T_CHECKIN, "{}", 2, -1));
	assert_int_equal(rec.ts, -1);
	expect(MSG_OK, NULL, parse_n(basic, T_CHECKIN, "{}", 2, INT64_MIN));
	expect(MSG_TOO_OLD, NULL, parse_n(basic, T_CHECKIN, "{\"ts\":1795499900}", 17, INT64_MAX));
	expect(MSG_OK, NULL, parse_n(basic, T_CHECKIN, "{\"ts\":1795499900}", 17, INT64_MIN));
	assert_int_equal(rec.flags, MSG_FLAG_CLOCK_SKEW);
}

/* A cheap deterministic fuzz pass: mutations of valid payloads must never
 * crash (ASan/UBSan builds watch), and details keep their promises. */
static void test_mutations(void **state)
{
	static const char *seeds[] = {
		"{\"id\":\"w017-000123\",\"ts\":\"2026-11-24T13:59:00.5+08:00\","
		"\"lat\":30.998,\"lon\":103.567,\"value\":262.5,"
		"\"note\":\"紫坪铺\\u94b1\\ud83d\\ude00\",\"photo\":\"p.jpg\"}",
		"{\"event\":\"flood\",\"value\":1e3,\"ts\":1795499900}",
		"{\"a\":[[[{\"b\":\"\\u0000\"}]]],\"ts\":-1}",
	};
	uint32_t x = 2463534242u;
	unsigned char buf[512];

	(void)state;
	for (int round = 0; round < 30000; round++) {
		const char *seed = seeds[round % 3];
		size_t n = strlen(seed);
		int edits;

		memcpy(buf, seed, n);
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		edits = 1 + (int)(x % 4);
		for (int e = 0; e < edits; e++) {
			x ^= x << 13, x ^= x >> 17, x ^= x << 5;
			switch (x % 3) {
			case 0:
				buf[(x >> 8) % n] = (unsigned char)(x >> 16);
				break;
			case 1:
				if (n > 1)
					n = 1 + (x >> 8) % n;
				break;
			default:
				buf[(x >> 8) % n] = "{}[]\",:\\u0.e-"[(x >> 16) % 14];
			}
		}
		(void)parse_n(round % 2 ? basic : noevent,
		              round % 2 ? T_CHECKIN : "longchi/yunhua/w017/yh-01", buf, n, RECV_MS);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixture_defaults),
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_sql_note_verbatim),
		cmocka_unit_test(test_unknown_fields_ignored),
		cmocka_unit_test(test_id),
		cmocka_unit_test(test_ts_integer),
		cmocka_unit_test(test_ts_wrong_type),
		cmocka_unit_test(test_ts_rfc3339_in_payload),
		cmocka_unit_test(test_rfc3339),
		cmocka_unit_test(test_clock_skew),
		cmocka_unit_test(test_too_old),
		cmocka_unit_test(test_late),
		cmocka_unit_test(test_configured_limits),
		cmocka_unit_test(test_flags_format),
		cmocka_unit_test(test_reason_names),
		cmocka_unit_test(test_position),
		cmocka_unit_test(test_value),
		cmocka_unit_test(test_note_photo_lengths),
		cmocka_unit_test(test_nul_and_surrogates),
		cmocka_unit_test(test_bad_json),
		cmocka_unit_test(test_detail_escaped),
		cmocka_unit_test(test_detail_buffers),
		cmocka_unit_test(test_empty_payload),
		cmocka_unit_test(test_claim_alert_id),
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_bad_topic),
		cmocka_unit_test(test_unknown_cell_event),
		cmocka_unit_test(test_event_field_with_topic_event),
		cmocka_unit_test(test_no_event_template),
		cmocka_unit_test(test_check_order_fields),
		cmocka_unit_test(test_dedup_key),
		cmocka_unit_test(test_defensive),
		cmocka_unit_test(test_mutations),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
