/*
 * msg: judging one MQTT message (topic, payload, receive time) against the
 * configuration, producing either an event record or a rejection reason with
 * a short human detail.
 *
 * Everything here treats the device as hostile: the topic may be any bytes,
 * the payload may be binary, oversized, deeply nested or crafted to trip a
 * parser. JSON is parsed by jansson (strict UTF-8, duplicate keys rejected,
 * error positions), after a fast scanner that takes only the flat objects
 * devices normally send and defers everything else, errors included, to
 * jansson (flat_scan below; tests/test_msg_scan.c). This file adds the
 * field rules and the time rules of the product contract (SPEC.md, "MQTT
 * input"). Checks run in the order promised by include/core/msg.h, so that the
 * cheapest and least ambiguous reason wins.
 *
 * Detail strings are logged and stored in the database, so they are always
 * valid UTF-8 and never carry raw payload bytes: the only device-derived text
 * they contain is either validated (topic segments) or jansson's error text
 * passed through an escaper. Pure: no I/O, no logging, no global state.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "msg.h"
#include "sha256.h"
#include "utf8.h"

/* 10000-01-01T00:00:00Z: RFC 3339 years have four digits, and a bound keeps
 * all later arithmetic far from int64 overflow. */
#define TS_LIMIT INT64_C(253402300800)
#define ID_MAX_CHARS 128

/* ---------------------------------------------------------------- detail */

static void set_detail(char *d, size_t dlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* All arguments must already be valid UTF-8; truncation keeps it so. */
static void set_detail(char *d, size_t dlen, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	int n;
	size_t len;

	if (d == NULL || dlen == 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0) {
		d[0] = '\0';
		return;
	}
	len = (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1;
	if (len > dlen - 1)
		len = dlen - 1;
	len = utf8_prefix(tmp, len, len);
	memcpy(d, tmp, len);
	d[len] = '\0';
}

/* Code points that would let text rearrange or split a log line. */
static int cp_is_invisible(uint32_t c)
{
	return (c >= 0x80 && c <= 0x9F) || c == 0x200E || c == 0x200F ||
	       (c >= 0x2028 && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069) || c == 0xFEFF;
}

/* Make jansson's error text (which quotes the offending token from the
 * payload) safe to log and store: printable text passes, control and
 * layout characters become \uXXXX, bytes that are not UTF-8 become \xNN. */
static void escape_text(const char *in, char *out, size_t outlen)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t len = strlen(in), o = 0;

	if (outlen == 0)
		return;
	for (size_t i = 0; i < len;) {
		char esc[12];
		uint32_t cp = 0;
		size_t n = utf8_decode(s + i, len - i, &cp);
		const char *piece;
		size_t plen;

		if (n == 0) {
			snprintf(esc, sizeof(esc), "\\x%02X", s[i]);
			piece = esc;
			plen = strlen(esc);
			n = 1;
		} else if (cp < 0x20 || cp == 0x7F || cp_is_invisible(cp)) {
			snprintf(esc, sizeof(esc), "\\u%04" PRIX32, cp);
			piece = esc;
			plen = strlen(esc);
		} else {
			piece = in + i;
			plen = n;
		}
		if (o + plen >= outlen)
			break;
		memcpy(out + o, piece, plen);
		o += plen;
		i += n;
	}
	out[o] = '\0';
}

/* ------------------------------------------------------------- RFC 3339 */

static int digits(const char *s, size_t n, int *out)
{
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

static int is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
	static const int dm[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	return m == 2 && is_leap(y) ? 29 : dm[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (the era-based
 * algorithm from Howard Hinnant's "chrono-compatible low-level date
 * algorithms"); avoids timegm() and any dependence on TZ. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int msg_parse_rfc3339(const char *s, size_t len, int64_t *out)
{
	int Y, M, D, h, m, sec, oh = 0, om = 0, sign = 0;
	size_t i;

	if (s == NULL || out == NULL || len < 20)
		return -1;
	if (digits(s, 4, &Y) < 0 || s[4] != '-' || digits(s + 5, 2, &M) < 0 || s[7] != '-' ||
	    digits(s + 8, 2, &D) < 0 || (s[10] != 'T' && s[10] != 't') ||
	    digits(s + 11, 2, &h) < 0 || s[13] != ':' || digits(s + 14, 2, &m) < 0 ||
	    s[16] != ':' || digits(s + 17, 2, &sec) < 0)
		return -1;
	i = 19;
	if (s[i] == '.') {
		size_t start = ++i;

		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == start)
			return -1;
	}
	if (i >= len)
		return -1;
	if (s[i] == 'Z' || s[i] == 'z') {
		i++;
	} else if (s[i] == '+' || s[i] == '-') {
		sign = s[i] == '+' ? 1 : -1;
		if (len - i != 6 || digits(s + i + 1, 2, &oh) < 0 || s[i + 3] != ':' ||
		    digits(s + i + 4, 2, &om) < 0)
			return -1;
		i += 6;
	} else {
		return -1;
	}
	if (i != len)
		return -1;
	/* Leap seconds (:60) are refused: no device clock produces them and
	 * Unix time cannot represent them. */
	if (M < 1 || M > 12 || D < 1 || D > days_in_month(Y, M) || h > 23 || m > 59 || sec > 59 ||
	    oh > 23 || om > 59)
		return -1;
	*out = days_from_civil(Y, M, D) * 86400 + h * 3600 + m * 60 + sec -
	       (int64_t)sign * (oh * 3600 + om * 60);
	return 0;
}

/* ------------------------------------------------------------ small API */

const char *msg_reason_name(enum msg_reason r)
{
	switch (r) {
	case MSG_OK:
		return "ok";
	case MSG_BAD_JSON:
		return "bad_json";
	case MSG_BAD_FIELD:
		return "bad_field";
	case MSG_BAD_TOPIC:
		return "bad_topic";
	case MSG_UNKNOWN_CELL:
		return "unknown_cell";
	case MSG_UNKNOWN_EVENT:
		return "unknown_event";
	case MSG_TOO_LARGE:
		return "too_large";
	case MSG_TOO_OLD:
		return "too_old";
	}
	return "unknown";
}

void msg_flags_format(unsigned flags, char *buf, size_t len)
{
	const char *late = (flags & MSG_FLAG_LATE) ? "late" : "";
	const char *skew = (flags & MSG_FLAG_CLOCK_SKEW) ? "clock_skew" : "";
	const char *sep = (*late != '\0' && *skew != '\0') ? "," : "";

	if (buf == NULL || len == 0)
		return;
	snprintf(buf, len, "%s%s%s", late, sep, skew);
}

/* --------------------------------------------------------------- parsing */

static int is_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Does jansson's "invalid escape" at byte offset pos come from a \u escape
 * (as opposed to, say, \q)? jansson stops right after the offending byte
 * (or at the end of input), so the escape starts with a backslash and a 'u'
 * at most five bytes earlier, followed only by hex digits up to the
 * offending byte. jansson quotes the token in its text only when it is
 * short, so the payload itself is inspected. */
static bool bad_u_escape_at(const unsigned char *p, size_t len, int pos)
{
	size_t end = pos < 0 ? 0 : (size_t)pos > len ? len : (size_t)pos;

	for (size_t back = 2; back <= 6 && back <= end; back++) {
		size_t start = end - back, nbs = 0, i;

		if (p[start] != '\\' || p[start + 1] != 'u')
			continue;
		for (i = start + 2; i + 1 < end && is_hex(p[i]); i++)
			;
		if (i + 1 < end)
			continue;
		/* An escaped backslash ("\\u") does not start an escape. */
		while (nbs < start && p[start - 1 - nbs] == '\\')
			nbs++;
		if (nbs % 2 == 0)
			return true;
	}
	return false;
}

/* Classify a jansson failure. Bad escapes inside an object are reported as
 * bad_field, as SPEC.md lists "an unpaired surrogate" and "NUL" among field
 * problems: the document is an object whose string holds something we
 * refuse. jansson has no dedicated error code for these, so: the text
 * "invalid Unicode '\uD800'" (lone or mismatched surrogate), an "invalid
 * escape" located in a \u escape (not four hex digits; other invalid escapes
 * such as \q stay bad_json, being plain syntax), and the NUL-in-key code.
 * Everything else (syntax, encoding, duplicates, overflow, depth) is
 * bad_json. */
static enum msg_reason classify_json_error(const json_error_t *e, const unsigned char *p,
                                           size_t len)
{
	size_t i = 0;

	while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
		i++;
	if (i == len || p[i] != '{')
		return MSG_BAD_JSON;
	if (json_error_code(e) == json_error_null_byte_in_key)
		return MSG_BAD_FIELD;
	if (json_error_code(e) != json_error_invalid_syntax)
		return MSG_BAD_JSON;
	if (strncmp(e->text, "invalid Unicode '", 17) == 0)
		return MSG_BAD_FIELD;
	if (strncmp(e->text, "invalid escape", 14) == 0 && bad_u_escape_at(p, len, e->position))
		return MSG_BAD_FIELD;
	return MSG_BAD_JSON;
}

/* The payload fields msg cares about, each as found in the object, from
 * either parser: jansson's tree, or the fast scanner below. String values
 * point into the payload or the tree and are not NUL-terminated. */
enum jkind {
	J_ABSENT,
	J_STRING,
	J_INTEGER,
	J_REAL,
	J_OTHER
};

struct jval {
	enum jkind kind;
	const char *s; /* J_STRING */
	size_t len;
	int64_t i; /* J_INTEGER */
	double d;  /* J_INTEGER and J_REAL: the number's value */
};

/* The payload keys msg interprets, named once for the struct and both
 * parsers. */
#define FLAT_FIELDS(X) X(id) X(ts) X(lat) X(lon) X(value) X(note) X(photo) X(event) X(alert_id)

struct flat {
#define FLAT_MEMBER(name) struct jval name;
	FLAT_FIELDS(FLAT_MEMBER)
#undef FLAT_MEMBER
};

/* The slot for a key msg interprets, or NULL for any other key. */
static struct jval *flat_slot(struct flat *fl, const char *k, size_t n)
{
#define FLAT_KEY(name)                                          \
	if (n == sizeof(#name) - 1 && memcmp(k, #name, n) == 0) \
		return &fl->name;
	FLAT_FIELDS(FLAT_KEY)
#undef FLAT_KEY
	return NULL;
}

static void jval_from_json(json_t *j, struct jval *v)
{
	memset(v, 0, sizeof(*v));
	if (j == NULL) {
		v->kind = J_ABSENT;
	} else if (json_is_string(j)) {
		v->kind = J_STRING;
		v->s = json_string_value(j);
		v->len = json_string_length(j);
	} else if (json_is_integer(j)) {
		v->kind = J_INTEGER;
		v->i = json_integer_value(j);
		v->d = json_number_value(j);
	} else if (json_is_real(j)) {
		v->kind = J_REAL;
		v->d = json_real_value(j);
	} else {
		v->kind = J_OTHER;
	}
}

static void flat_from_json(json_t *obj, struct flat *fl)
{
#define FLAT_GET(name) jval_from_json(json_object_get(obj, #name), &fl->name);
	FLAT_FIELDS(FLAT_GET)
#undef FLAT_GET
}

static const unsigned char *skip_ws(const unsigned char *p, const unsigned char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* A string with no escapes, no control characters and valid UTF-8; p is
 * at the opening quote. Anything else is left to jansson. */
static bool scan_string(const unsigned char **pp, const unsigned char *end, const char **s,
                        size_t *n)
{
	const unsigned char *p = *pp + 1, *start = p;
	uint32_t cp;

	while (p < end && *p != '"') {
		if (*p < 0x20 || *p == '\\')
			return false;
		if (*p < 0x80) {
			p++;
			continue;
		}
		size_t k = utf8_decode(p, (size_t)(end - p), &cp);
		if (k == 0)
			return false;
		p += k;
	}
	if (p == end)
		return false;
	*s = (const char *)start;
	*n = (size_t)(p - start);
	*pp = p + 1;
	return true;
}

/* A number in JSON's grammar, converted as jansson does (strtoll for
 * integers, strtod with a '.' for reals); out of range is left to jansson,
 * which reports it. */
static bool scan_number(const unsigned char **pp, const unsigned char *end, struct jval *v)
{
	const unsigned char *p = *pp, *start = p;
	bool real = false;
	char buf[64];
	char *e;

	if (p < end && *p == '-')
		p++;
	if (p < end && *p == '0') {
		p++;
	} else if (p < end && *p >= '1' && *p <= '9') {
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	} else {
		return false;
	}
	if (p < end && *p == '.') {
		real = true;
		p++;
		if (p == end || *p < '0' || *p > '9')
			return false;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		real = true;
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (p == end || *p < '0' || *p > '9')
			return false;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	size_t n = (size_t)(p - start);
	if (n >= sizeof(buf))
		return false;
	memcpy(buf, start, n);
	buf[n] = '\0';
	/* errno is the caller's too (the MQTT read loop looks at it after
	 * each packet): give it back as found. */
	int saved = errno;
	errno = 0;
	if (real) {
		v->kind = J_REAL;
		v->d = strtod(buf, &e);
	} else {
		v->kind = J_INTEGER;
		v->i = strtoll(buf, &e, 10);
		v->d = (double)v->i;
	}
	bool ok = errno == 0 && *e == '\0';
	errno = saved;
	if (!ok)
		return false;
	*pp = p;
	return true;
}

/* The fast path for what devices actually send: one flat object of
 * strings and numbers, no escapes, at most FLAT_MAX_KEYS keys. It accepts
 * only what jansson accepts and yields the same values; on anything else
 * (nesting, escapes, true/false/null, odd numbers, errors of any kind) it
 * returns false and jansson parses the payload, so every error message
 * still comes from one place. Keeps a tree and its mallocs off the hot
 * path (bench/README.md). */
#define FLAT_MAX_KEYS 16

static bool flat_scan(const unsigned char *p, size_t len, struct flat *fl)
{
	const unsigned char *end = p + len;
	const char *keys[FLAT_MAX_KEYS];
	size_t klen[FLAT_MAX_KEYS], nkeys = 0;

	memset(fl, 0, sizeof(*fl));
	p = skip_ws(p, end);
	if (p == end || *p != '{')
		return false;
	p = skip_ws(p + 1, end);
	if (p < end && *p == '}') {
		p++;
		return skip_ws(p, end) == end;
	}
	for (;;) {
		const char *k;
		size_t kn;
		struct jval tmp, *slot;

		if (p == end || *p != '"' || !scan_string(&p, end, &k, &kn))
			return false;
		/* Duplicate keys are an error (JSON_REJECT_DUPLICATES):
		 * jansson says so. */
		if (nkeys == FLAT_MAX_KEYS)
			return false;
		for (size_t i = 0; i < nkeys; i++)
			if (klen[i] == kn && memcmp(keys[i], k, kn) == 0)
				return false;
		keys[nkeys] = k;
		klen[nkeys++] = kn;

		p = skip_ws(p, end);
		if (p == end || *p != ':')
			return false;
		p = skip_ws(p + 1, end);
		slot = flat_slot(fl, k, kn);
		if (slot == NULL)
			slot = &tmp;
		memset(slot, 0, sizeof(*slot));
		if (p < end && *p == '"') {
			slot->kind = J_STRING;
			if (!scan_string(&p, end, &slot->s, &slot->len))
				return false;
		} else if (!scan_number(&p, end, slot)) {
			return false;
		}
		p = skip_ws(p, end);
		if (p < end && *p == ',') {
			p = skip_ws(p + 1, end);
			continue;
		}
		if (p < end && *p == '}')
			return skip_ws(p + 1, end) == end;
		return false;
	}
}

/* A JSON string field: NULL if absent; -1 (with detail) if present but not
 * an acceptable string. */
static int get_string(const struct jval *j, const char *name, const char **val, size_t *vlen,
                      char *detail, size_t dlen)
{
	*val = NULL;
	*vlen = 0;
	if (j->kind == J_ABSENT)
		return 0;
	if (j->kind != J_STRING) {
		set_detail(detail, dlen, "%s must be a string", name);
		return -1;
	}
	*val = j->s;
	*vlen = j->len;
	/* JSON_ALLOW_NUL lets "\u0000" through the parser so that it can be
	 * reported as a field problem; nothing downstream takes such text. */
	if (memchr(*val, '\0', *vlen) != NULL) {
		set_detail(detail, dlen, "%s contains a NUL character", name);
		return -1;
	}
	return 0;
}

/* A JSON number field; *has false if absent; -1 if not a finite number. */
static int get_number(const struct jval *j, const char *name, bool *has, double *val, char *detail,
                      size_t dlen)
{
	*has = false;
	if (j->kind == J_ABSENT)
		return 0;
	if ((j->kind != J_INTEGER && j->kind != J_REAL) || !isfinite(j->d)) {
		set_detail(detail, dlen, "%s must be a finite number", name);
		return -1;
	}
	*has = true;
	*val = j->d;
	return 0;
}

/* Parsed-but-not-yet-judged payload fields. */
struct fields {
	const char *id;
	size_t id_len;
	bool has_ts;
	int64_t ts;
	const char *event;
	size_t event_len;
};

static enum msg_reason parse_fields(const struct flat *fl, const struct topic_template *tmpl,
                                    const struct topic_fields *tf, struct fields *f,
                                    struct msg_record *r, char *detail, size_t dlen)
{
	const char *s;
	size_t slen;
	bool has_lat, has_lon;

	if (get_string(&fl->id, "id", &f->id, &f->id_len, detail, dlen) < 0)
		return MSG_BAD_FIELD;
	if (f->id != NULL) {
		size_t chars = utf8_count(f->id, f->id_len);

		if (chars < 1 || chars > ID_MAX_CHARS) {
			set_detail(detail, dlen,
			           "id has %zu characters, must "
			           "have 1 to %d",
			           chars, ID_MAX_CHARS);
			return MSG_BAD_FIELD;
		}
	}

	if (fl->ts.kind != J_ABSENT) {
		if (fl->ts.kind == J_INTEGER) {
			f->ts = fl->ts.i;
		} else if (fl->ts.kind == J_STRING) {
			if (get_string(&fl->ts, "ts", &s, &slen, detail, dlen) < 0)
				return MSG_BAD_FIELD;
			if (msg_parse_rfc3339(s, slen, &f->ts) < 0) {
				set_detail(detail, dlen,
				           "ts is not a valid RFC 3339 "
				           "time (YYYY-MM-DDTHH:MM:SS[.frac] with Z "
				           "or ±HH:MM)");
				return MSG_BAD_FIELD;
			}
		} else {
			set_detail(detail, dlen,
			           "ts must be integer Unix seconds "
			           "or an RFC 3339 string");
			return MSG_BAD_FIELD;
		}
		if (f->ts <= 0 || f->ts >= TS_LIMIT) {
			set_detail(detail, dlen, "ts is out of range");
			return MSG_BAD_FIELD;
		}
		f->has_ts = true;
	}

	if (get_number(&fl->lat, "lat", &has_lat, &r->lat, detail, dlen) < 0 ||
	    get_number(&fl->lon, "lon", &has_lon, &r->lon, detail, dlen) < 0)
		return MSG_BAD_FIELD;
	if (has_lat != has_lon) {
		set_detail(detail, dlen, "%s given without %s", has_lat ? "lat" : "lon",
		           has_lat ? "lon" : "lat");
		return MSG_BAD_FIELD;
	}
	if (has_lat) {
		if (r->lat < -90.0 || r->lat > 90.0) {
			set_detail(detail, dlen, "lat %g is outside -90..90", r->lat);
			return MSG_BAD_FIELD;
		}
		if (r->lon < -180.0 || r->lon > 180.0) {
			set_detail(detail, dlen, "lon %g is outside -180..180", r->lon);
			return MSG_BAD_FIELD;
		}
		r->has_pos = true;
	}

	if (get_number(&fl->value, "value", &r->has_value, &r->value, detail, dlen) < 0)
		return MSG_BAD_FIELD;

	if (get_string(&fl->note, "note", &s, &slen, detail, dlen) < 0)
		return MSG_BAD_FIELD;
	if (s != NULL) {
		if (slen > MSG_NOTE_MAX) {
			set_detail(detail, dlen, "note is %zu bytes, at most %d", slen,
			           MSG_NOTE_MAX);
			return MSG_BAD_FIELD;
		}
		memcpy(r->note, s, slen);
		r->note[slen] = '\0';
		r->has_note = true;
	}
	if (get_string(&fl->photo, "photo", &s, &slen, detail, dlen) < 0)
		return MSG_BAD_FIELD;
	if (s != NULL) {
		if (slen > MSG_PHOTO_MAX) {
			set_detail(detail, dlen, "photo is %zu bytes, at most %d", slen,
			           MSG_PHOTO_MAX);
			return MSG_BAD_FIELD;
		}
		memcpy(r->photo, s, slen);
		r->photo[slen] = '\0';
		r->has_photo = true;
	}

	if (get_string(&fl->event, "event", &f->event, &f->event_len, detail, dlen) < 0)
		return MSG_BAD_FIELD;
	if (tmpl->event_idx >= 0) {
		/* The topic decides; a payload that says otherwise is
		 * ambiguous, and guessing would file it under the wrong type. */
		if (f->event != NULL && (strlen(tf->event) != f->event_len ||
		                         memcmp(tf->event, f->event, f->event_len) != 0)) {
			set_detail(detail, dlen, "event field contradicts topic");
			return MSG_BAD_FIELD;
		}
	} else {
		if (f->event == NULL) {
			set_detail(detail, dlen, "event field required");
			return MSG_BAD_FIELD;
		}
		/* Same alphabet as a topic level, so it can be echoed in the
		 * detail and stored in the record's fixed buffer. */
		if (!topic_segment_valid(f->event, f->event_len)) {
			set_detail(detail, dlen,
			           "event must be 1 to %d characters "
			           "of A-Z a-z 0-9 _ . -",
			           TOPIC_SEGMENT_MAX);
			return MSG_BAD_FIELD;
		}
	}
	return MSG_OK;
}

static void hash_key(const char *topic, const void *payload, size_t len, char *out)
{
	static const char hexd[] = "0123456789abcdef";
	struct sha256 s;
	uint8_t d[32];

	sha256_init(&s);
	sha256_update(&s, topic, strlen(topic));
	sha256_update(&s, "\n", 1);
	sha256_update(&s, payload, len);
	sha256_final(&s, d);
	out[0] = '~';
	for (int i = 0; i < 16; i++) {
		out[1 + 2 * i] = hexd[d[i] >> 4];
		out[2 + 2 * i] = hexd[d[i] & 0x0F];
	}
	out[33] = '\0';
}

/* Value-bearing types cannot be recorded without their reading: an empty
 * flood report would raise neither a reading alert nor a useful row. */
static enum msg_reason check_value_required(const struct msg_record *r, char *detail, size_t dlen)
{
	if (r->event_cfg->has_value && !r->has_value) {
		set_detail(detail, dlen, "event type \"%s\" requires a value", r->type);
		return MSG_BAD_FIELD;
	}
	return MSG_OK;
}

/* A claim may name the alert it claims; only claim types read the field
 * (for the others it is an unknown field, kept in raw). Whether such an
 * alert exists is the daemon's question. */
static enum msg_reason check_alert_id(const struct jval *j, struct msg_record *r, char *detail,
                                      size_t dlen)
{
	if (!r->event_cfg->claim || j->kind == J_ABSENT)
		return MSG_OK;
	if (j->kind != J_INTEGER || j->i < 1) {
		set_detail(detail, dlen, "alert_id must be a positive integer");
		return MSG_BAD_FIELD;
	}
	r->has_alert_id = true;
	r->alert_id = j->i;
	return MSG_OK;
}

enum msg_reason msg_parse(const struct config *cfg, const char *topic, const void *payload,
                          size_t len, int64_t recv_ms, struct msg_record *out, char *detail,
                          size_t detail_len)
{
	struct msg_record scratch;
	struct msg_record *r = out != NULL ? out : &scratch;
	struct topic_fields tf;
	struct fields f = { 0 };
	const struct topic_template *tmpl;
	char err[MSG_DETAIL_MAX];
	json_error_t jerr;
	json_t *root = NULL;
	struct flat fl;
	enum msg_reason rc;
	int64_t recv_s, diff;

	memset(r, 0, sizeof(*r));
	if (detail != NULL && detail_len > 0)
		detail[0] = '\0';
	if (cfg == NULL) {
		set_detail(detail, detail_len, "no configuration");
		return MSG_BAD_TOPIC;
	}
	tmpl = &cfg->mqtt.tmpl;

	if (cfg->limits.max_payload >= 0 && (uint64_t)len > (uint64_t)cfg->limits.max_payload) {
		set_detail(detail, detail_len, "payload is %zu bytes, limit is %" PRId64, len,
		           cfg->limits.max_payload);
		return MSG_TOO_LARGE;
	}
	if (payload == NULL && len > 0) {
		set_detail(detail, detail_len, "payload missing");
		return MSG_BAD_JSON;
	}

	if (topic == NULL) {
		set_detail(detail, detail_len, "no topic");
		return MSG_BAD_TOPIC;
	}
	if (topic_match(tmpl, topic, &tf, err, sizeof(err)) < 0) {
		set_detail(detail, detail_len, "%s", err);
		return MSG_BAD_TOPIC;
	}
	r->cell_cfg = config_cell_find(cfg, tf.cell);
	if (r->cell_cfg == NULL) {
		set_detail(detail, detail_len, "cell \"%s\" is not configured", tf.cell);
		return MSG_UNKNOWN_CELL;
	}
	if (tmpl->event_idx >= 0) {
		r->event_cfg = config_event_find(cfg, tf.event);
		if (r->event_cfg == NULL) {
			set_detail(detail, detail_len,
			           "event type \"%s\" is not "
			           "configured",
			           tf.event);
			return MSG_UNKNOWN_EVENT;
		}
	}
	memcpy(r->cell, tf.cell, sizeof(r->cell));
	memcpy(r->worker, tf.worker, sizeof(r->worker));
	memcpy(r->type, tf.event, sizeof(r->type));
	r->raw = payload;
	r->raw_len = len;
	r->recv_ms = recv_ms;
	/* Floor, not truncation, so that pre-1970 test clocks stay monotone. */
	recv_s = recv_ms / 1000 - (recv_ms % 1000 < 0);

	if (len == 0) {
		/* An empty payload is "this event, now": the cheapest possible
		 * check-in button. It has nothing to deduplicate on. */
		if (tmpl->event_idx < 0) {
			set_detail(detail, detail_len, "event field required");
			return MSG_BAD_FIELD;
		}
		rc = check_value_required(r, detail, detail_len);
		if (rc != MSG_OK)
			return rc;
		r->ts = recv_s;
		return MSG_OK;
	}

	if (flat_scan(payload, len, &fl))
		goto parsed;
	root = json_loadb(payload, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (root == NULL) {
		char text[sizeof(jerr.text) * 2];

		escape_text(jerr.text, text, sizeof(text));
		rc = classify_json_error(&jerr, payload, len);
		set_detail(detail, detail_len,
		           "%s at line %d column %d (byte "
		           "%d): %s",
		           rc == MSG_BAD_FIELD ? "bad string escape" : "invalid JSON", jerr.line,
		           jerr.column, jerr.position, text);
		return rc;
	}
	if (!json_is_object(root)) {
		set_detail(detail, detail_len,
		           "payload is a JSON %s, not an "
		           "object",
		           json_is_array(root) ? "array" : "value");
		rc = MSG_BAD_JSON;
		goto done;
	}

	flat_from_json(root, &fl);
parsed:
	rc = parse_fields(&fl, tmpl, &tf, &f, r, detail, detail_len);
	if (rc != MSG_OK)
		goto done;
	if (tmpl->event_idx < 0) {
		memcpy(r->type, f.event, f.event_len);
		r->type[f.event_len] = '\0';
		r->event_cfg = config_event_find(cfg, r->type);
	}
	if (r->event_cfg != NULL) {
		rc = check_value_required(r, detail, detail_len);
		if (rc != MSG_OK)
			goto done;
		rc = check_alert_id(&fl.alert_id, r, detail, detail_len);
		if (rc != MSG_OK)
			goto done;
	} else {
		set_detail(detail, detail_len,
		           "event type \"%s\" is not "
		           "configured",
		           r->type);
		rc = MSG_UNKNOWN_EVENT;
		goto done;
	}

	r->ts = recv_s;
	if (f.has_ts) {
		r->has_device_ts = true;
		r->device_ts = f.ts;
		r->ts = f.ts;
		/* ts is bounded to (0, TS_LIMIT) and recv_s to |INT64|/1000,
		 * so the difference cannot overflow; the limits are
		 * non-negative durations from the configuration. */
		diff = f.ts - recv_s;
		if (diff > cfg->limits.max_clock_skew_s) {
			r->ts = recv_s;
			r->flags |= MSG_FLAG_CLOCK_SKEW;
		} else if (diff < -cfg->limits.max_backfill_s) {
			set_detail(detail, detail_len,
			           "ts is %" PRId64 " s before "
			           "receive time, limit is %" PRId64 " s",
			           -diff, cfg->limits.max_backfill_s);
			rc = MSG_TOO_OLD;
			goto done;
		}
		if (recv_s - r->ts > cfg->limits.late_after_s)
			r->flags |= MSG_FLAG_LATE;
	}

	if (f.id != NULL) {
		memcpy(r->msg_id, f.id, f.id_len);
		r->msg_id[f.id_len] = '\0';
	} else if (f.has_ts) {
		hash_key(topic, payload, len, r->msg_id);
	}
	rc = MSG_OK;

done:
	json_decref(root);
	return rc;
}
