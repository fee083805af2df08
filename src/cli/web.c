/*
 * web: what `gridpatrol serve` answers to a request, decided from the few
 * things libmicrohttpd hands over — the routes and the parameters each
 * takes, the dates they accept, the token in a header, a cookie or the
 * query, and the 4xx for everything else.
 *
 * Pure (no I/O, logging or clock), so the fuzzer and the unit test reach
 * every branch. The order of the checks is part of the contract: the
 * method (405), then the size of the request (413), then the token (401,
 * before any path or parameter is looked at, so a caller without it
 * learns nothing about the pages), then the path (404), then the
 * parameters (400). A parameter reaches a command only as a checked
 * YYYY-MM-DD, so the command never sees input it would refuse.
 */
#include "web.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Dates                                                               */
/* ------------------------------------------------------------------ */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil), and back. */
static long days_from_civil(long y, unsigned m, unsigned d)
{
	y -= m <= 2;
	long era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long)doe - 719468;
}

static void civil_from_days(long z, long *y, unsigned *m, unsigned *d)
{
	z += 719468;
	long era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (long)yoe + era * 400 + (*m <= 2);
}

/* Strict YYYY-MM-DD in the accepted years → day number, or -1. */
static int date_days(const char *s, size_t len, long *days)
{
	static const unsigned dim[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (len != 10 || s[4] != '-' || s[7] != '-')
		return -1;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
			return -1;
	long y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
	unsigned m = (unsigned)((s[5] - '0') * 10 + (s[6] - '0'));
	unsigned d = (unsigned)((s[8] - '0') * 10 + (s[9] - '0'));
	if (y < 2000 || y > 2100 || m < 1 || m > 12 || d < 1)
		return -1;
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (d > dim[m - 1] + (m == 2 && leap))
		return -1;
	*days = days_from_civil(y, m, d);
	return 0;
}

static void days_date(long days, char out[11])
{
	long y;
	unsigned m, d;
	civil_from_days(days, &y, &m, &d);
	/* Only days of the accepted years come here: four digits. */
	snprintf(out, 11, "%04u-%02u-%02u", (unsigned)y % 10000, m % 100, d % 100);
}

static bool span_is(const char *s, size_t len, const char *word)
{
	return len == strlen(word) && memcmp(s, word, len) == 0;
}

int web_parse_day(const char *s, size_t len, const char *today, char out[11])
{
	long days, t;
	if (!s || !today || date_days(today, strlen(today), &t) < 0)
		return -1;
	if (span_is(s, len, "today"))
		days = t;
	else if (span_is(s, len, "yesterday"))
		days = t - 1;
	else if (date_days(s, len, &days) < 0)
		return -1;
	/* "yesterday" on 2000-01-01 would leave the accepted range. */
	if (days < days_from_civil(2000, 1, 1))
		return -1;
	days_date(days, out);
	return 0;
}

long web_days_between(const char *a, const char *b)
{
	long da = 0, db = 0;
	if (date_days(a, strlen(a), &da) < 0 || date_days(b, strlen(b), &db) < 0)
		return 0;
	return db - da;
}

/* ------------------------------------------------------------------ */
/* Token                                                               */
/* ------------------------------------------------------------------ */

bool web_token_equal(const char *given, size_t given_len, const char *secret, size_t secret_len)
{
	/* A loop over the secret's bytes rather than CRYPTO_memcmp: it keeps
	 * libcrypto out of the CLI for one function, and it also hides how
	 * long a matching prefix is when the lengths differ (CRYPTO_memcmp
	 * compares equal lengths only). The time depends on secret_len
	 * alone; `volatile` keeps the compiler from stopping at the first
	 * difference. */
	volatile unsigned char diff = given_len != secret_len;
	for (size_t i = 0; i < secret_len; i++) {
		unsigned char g = i < given_len ? (unsigned char)given[i] : 0;
		diff |= g ^ (unsigned char)secret[i];
	}
	return diff == 0;
}

int web_bearer(const char *header, const char **tok, size_t *len)
{
	static const char scheme[] = "bearer";
	size_t i;
	if (!header)
		return -1;
	for (i = 0; i < sizeof(scheme) - 1; i++) {
		char ch = header[i];
		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		if (ch != scheme[i])
			return -1;
	}
	if (header[i] != ' ' && header[i] != '\t')
		return -1;
	while (header[i] == ' ' || header[i] == '\t')
		i++;
	size_t end = i + strlen(header + i);
	while (end > i && (header[end - 1] == ' ' || header[end - 1] == '\t'))
		end--;
	if (end == i)
		return -1;
	*tok = header + i;
	*len = end - i;
	return 0;
}

static bool token_byte(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '.' || ch == '_' || ch == '~' || ch == '-';
}

int web_token_parse(const char *buf, size_t len, size_t *tok_len, const char **why)
{
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	if (len == 0) {
		*why = "is empty";
		return -1;
	}
	if (len > WEB_TOKEN_MAX) {
		*why = "holds more than 256 bytes";
		return -1;
	}
	for (size_t i = 0; i < len; i++)
		if (!token_byte((unsigned char)buf[i])) {
			/* It travels in a URL and a cookie: only bytes that
			 * neither encodes differently. */
			*why = "holds a byte other than A-Z a-z 0-9 . _ ~ -";
			return -1;
		}
	*tok_len = len;
	return 0;
}

/* ------------------------------------------------------------------ */
/* --listen                                                            */
/* ------------------------------------------------------------------ */

int web_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *ss_len, bool *loopback)
{
	char host[64];
	const char *colon, *hs;
	size_t hl;

	if (!s)
		return -1;
	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return -1;
		hs = s + 1;
		hl = (size_t)(close - hs);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -1;
		hs = s;
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= sizeof(host))
		return -1;
	memcpy(host, hs, hl);
	host[hl] = '\0';

	const char *p = colon + 1;
	unsigned long port = 0;
	if (!*p || strlen(p) > 5)
		return -1;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		port = port * 10 + (unsigned long)(*p - '0');
	}
	if (port < 1 || port > 65535)
		return -1;

	if (s[0] == '[') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
		if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
			return -1;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*ss_len = sizeof(*a6);
		*loopback = IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr);
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
		if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
			return -1;
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		*ss_len = sizeof(*a4);
		/* 127.0.0.1 only: another 127/8 address is how a test (or a
		 * reverse proxy's odd setup) stands for "not loopback". */
		*loopback = ntohl(a4->sin_addr.s_addr) == INADDR_LOOPBACK;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Dispatch                                                            */
/* ------------------------------------------------------------------ */

/* The parameters, by index into `params` and as bits of a route's set. */
enum {
	I_DATE,
	I_FROM,
	I_TO,
	I_SINCE,
	I_PENDING,
	I_TOKEN,
	N_PARAMS
};
enum {
	P_DATE = 1 << I_DATE,
	P_FROM = 1 << I_FROM,
	P_TO = 1 << I_TO,
	P_SINCE = 1 << I_SINCE,
	P_PENDING = 1 << I_PENDING,
	P_TOKEN = 1 << I_TOKEN,
};

static const struct route {
	const char *path;
	enum web_route route;
	bool json;
	unsigned params;
} routes[] = {
	{ "/", WEB_ROUTE_NOW, false, 0 },
	{ "/report", WEB_ROUTE_REPORT, false, P_DATE },
	{ "/alerts", WEB_ROUTE_ALERTS, false, P_SINCE | P_PENDING },
	{ "/workers", WEB_ROUTE_WORKERS, false, P_DATE | P_FROM | P_TO },
	{ "/api/status", WEB_ROUTE_NOW, true, 0 },
	{ "/api/report", WEB_ROUTE_REPORT, true, P_DATE },
	{ "/api/alerts", WEB_ROUTE_ALERTS, true, P_SINCE | P_PENDING },
	{ "/api/workers", WEB_ROUTE_WORKERS, true, P_DATE | P_FROM | P_TO },
};

static const char *const params[N_PARAMS] = {
	[I_DATE] = "date",   [I_FROM] = "from",       [I_TO] = "to",
	[I_SINCE] = "since", [I_PENDING] = "pending", [I_TOKEN] = "token",
};

static void refuse(struct web_decision *d, int status, const char *why)
{
	d->status = status;
	d->why = why;
	d->route = WEB_ROUTE_NONE;
}

/* The parameter's index, or N_PARAMS for a key no page takes. */
static int param_of(const struct web_arg *a)
{
	int i;
	for (i = 0; i < N_PARAMS; i++)
		if (a->key && span_is(a->key, a->key_len, params[i]))
			break;
	return i;
}

/* The token, from the query, the Authorization header or the cookie.
 * Returns 0 (accepted; *from_query when it came in the URL) or -1. */
static int check_token(const struct web_request *r, const struct web_arg *query_tok,
                       bool *from_query)
{
	const char *t;
	size_t n;

	*from_query = false;
	if (query_tok) {
		if (!query_tok->value || !web_token_equal(query_tok->value, query_tok->value_len,
		                                          r->token, r->token_len))
			return -1;
		*from_query = true;
		return 0;
	}
	/* A wrong bearer token is refused even when a good cookie comes
	 * with it: the caller meant the header. */
	if (web_bearer(r->authorization, &t, &n) == 0)
		return web_token_equal(t, n, r->token, r->token_len) ? 0 : -1;
	if (r->cookie && web_token_equal(r->cookie, strlen(r->cookie), r->token, r->token_len))
		return 0;
	return -1;
}

void web_dispatch(const struct web_request *r, struct web_decision *d)
{
	const struct web_arg *given[N_PARAMS] = { 0 };
	const struct route *rt = NULL;
	bool from_query = false;

	memset(d, 0, sizeof(*d));
	d->status = 200;

	if (!r->method || (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0)) {
		refuse(d, 405, "only GET and HEAD");
		return;
	}
	if (r->target_len > WEB_MAX_TARGET) {
		refuse(d, 413, "the URL is too long");
		return;
	}
	if (r->has_body) {
		refuse(d, 413, "a request to these pages has no body");
		return;
	}
	if (!r->target || !r->today) {
		refuse(d, 400, "no request target");
		return;
	}

	/* Arguments by name, before the token check needs its own; the
	 * checks of their values wait until the caller is known. */
	if (r->n_args > WEB_MAX_ARGS) {
		refuse(d, 400, "too many query arguments");
		return;
	}
	unsigned seen = 0;
	bool unknown = false, dup = false;
	for (size_t i = 0; i < r->n_args; i++) {
		const struct web_arg *a = &r->args[i];
		int k = param_of(a);
		if (k == N_PARAMS)
			unknown = true;
		else if (given[k])
			dup = true; /* refused once the caller is known */
		else
			given[k] = a;
		if (k < N_PARAMS)
			seen |= 1u << k;
	}

	if (r->token && check_token(r, given[I_TOKEN], &from_query) < 0) {
		refuse(d, 401, "this page needs the token");
		return;
	}

	/* The path as sent: a route has no escapes, so "%2e%2e", "/./" or a
	 * decoded NUL can only miss. */
	size_t plen = strcspn(r->target, "?");
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (span_is(r->target, plen, routes[i].path))
			rt = &routes[i];
	if (!rt) {
		refuse(d, 404, "no such page");
		return;
	}
	if (dup) {
		refuse(d, 400, "a query argument given twice");
		return;
	}
	if (unknown || (seen & ~(rt->params | P_TOKEN))) {
		refuse(d, 400, "a query argument this page does not take");
		return;
	}
	for (int k = 0; k < N_PARAMS; k++) {
		const struct web_arg *a = given[k];
		if (a && k != I_TOKEN && a->value && a->value_len > WEB_MAX_VALUE) {
			refuse(d, 400, "a query argument is too long");
			return;
		}
	}
	d->route = rt->route;
	d->json = rt->json;

	/* Dates. */
	char *dates[N_PARAMS] = {
		[I_DATE] = d->date, [I_FROM] = d->from, [I_TO] = d->to, [I_SINCE] = d->since
	};
	for (int k = 0; k < N_PARAMS; k++) {
		const struct web_arg *a = given[k];
		if (!a || !dates[k])
			continue;
		if (!a->value || web_parse_day(a->value, a->value_len, r->today, dates[k]) < 0) {
			refuse(d, 400,
			       "bad date (use YYYY-MM-DD from 2000-01-01 to 2100-12-31, today or "
			       "yesterday)");
			return;
		}
	}
	if (given[I_PENDING]) {
		const struct web_arg *a = given[I_PENDING];
		if (!a->value || span_is(a->value, a->value_len, "1"))
			d->pending = true;
		else if (!span_is(a->value, a->value_len, "0")) {
			refuse(d, 400, "pending is 1 or 0");
			return;
		}
	}

	switch (rt->route) {
	case WEB_ROUTE_REPORT:
		if (!d->date[0] && web_parse_day("today", 5, r->today, d->date) < 0) {
			refuse(d, 400, "bad local date");
			return;
		}
		break;
	case WEB_ROUTE_ALERTS:
		if (!d->since[0]) {
			long t;
			if (date_days(r->today, strlen(r->today), &t) < 0) {
				refuse(d, 400, "bad local date");
				return;
			}
			days_date(t - (WEB_ALERTS_DAYS - 1), d->since);
		}
		break;
	case WEB_ROUTE_WORKERS:
		if (d->date[0] && (d->from[0] || d->to[0])) {
			refuse(d, 400, "workers takes date, or from and to");
			return;
		}
		if (!d->from[0] != !d->to[0]) {
			refuse(d, 400, "workers needs both from and to");
			return;
		}
		if (d->from[0]) {
			long span = web_days_between(d->from, d->to);
			if (span < 0) {
				refuse(d, 400, "to is before from");
				return;
			}
			if (span + 1 > WEB_MAX_SPAN_DAYS) {
				refuse(d, 400, "at most 366 days at once");
				return;
			}
		} else if (!d->date[0] && web_parse_day("today", 5, r->today, d->date) < 0) {
			refuse(d, 400, "bad local date");
			return;
		}
		break;
	default:
		break;
	}

	if (from_query) {
		/* Set the cookie and send the browser to the same page without
		 * the token, so that it leaves the address bar and the history.
		 * The arguments kept are checked, hence plain ASCII: they go
		 * back as they came. */
		size_t o = (size_t)snprintf(d->location, sizeof(d->location), "%.*s", (int)plen,
		                            r->target);
		char sep = '?';
		for (size_t i = 0; i < r->n_args; i++) {
			const struct web_arg *a = &r->args[i];
			if (param_of(a) == I_TOKEN)
				continue;
			if (o < sizeof(d->location))
				o += (size_t)snprintf(
				        d->location + o, sizeof(d->location) - o, "%c%.*s%s%.*s",
				        sep, (int)a->key_len, a->key, a->value ? "=" : "",
				        a->value ? (int)a->value_len : 0, a->value ? a->value : "");
			sep = '&';
		}
		if (o >= sizeof(d->location)) {
			refuse(d, 413, "the URL is too long");
			return;
		}
		d->status = 303;
	}
}
