/*
 * web: the decisions of `gridpatrol serve`, apart from the HTTP library and
 * the database — which page a request asks for and with which checked
 * parameters, or which 4xx it gets instead; whether it carries the token;
 * the --listen address and the token file's contents.
 *
 * Pure: no I/O, no logging, no clock (the server passes today's local date
 * in). libmicrohttpd parses HTTP; this module sees only what it hands over
 * (the method, the raw request target, the decoded query arguments with
 * their lengths, two headers), so the fuzzer and the unit test drive every
 * decision without a socket.
 */
#ifndef GRIDPATROL_WEB_H
#define GRIDPATROL_WEB_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* The raw request target (path and query) is at most this long: 413. */
#define WEB_MAX_TARGET 2048
/* Query arguments per request, and bytes per argument value: 400 beyond. */
#define WEB_MAX_ARGS 8
#define WEB_MAX_VALUE 64
/* The widest per-worker sheet, in days (from and to included). */
#define WEB_MAX_SPAN_DAYS 366
/* The alerts page without ?since=: this many days, today included. */
#define WEB_ALERTS_DAYS 7
/* The token file's token: 1 to this many bytes of [A-Za-z0-9._~-]. */
#define WEB_TOKEN_MAX 256
/* The cookie that carries the token after /?token=. */
#define WEB_COOKIE "gridpatrol_token"

enum web_route {
	WEB_ROUTE_NONE,
	WEB_ROUTE_NOW,     /* status */
	WEB_ROUTE_REPORT,  /* report --date */
	WEB_ROUTE_ALERTS,  /* alerts --since [--pending] */
	WEB_ROUTE_WORKERS, /* workers --date | --from --to */
};

/* One decoded query argument; value is NULL for "?key" without '='.
 * Lengths count every byte, so a decoded %00 is seen. */
struct web_arg {
	const char *key;
	size_t key_len;
	const char *value;
	size_t value_len;
};

struct web_request {
	const char *method;
	const char *target; /* as received, undecoded: "/report?date=..." */
	size_t target_len;
	const struct web_arg *args; /* decoded by the HTTP library */
	size_t n_args;              /* may exceed WEB_MAX_ARGS: 400 */
	const char *authorization;  /* the header, or NULL */
	const char *cookie;         /* the WEB_COOKIE cookie's value, or NULL */
	bool has_body;              /* Content-Length > 0 or Transfer-Encoding */
	const char *today;          /* local date now, "YYYY-MM-DD" */
	const char *token;          /* the token required, or NULL: none */
	size_t token_len;
};

struct web_decision {
	int status;      /* 200; 303 (token accepted, set the cookie); 4xx */
	const char *why; /* a 4xx's one-line reason (static, for the body) */
	enum web_route route;
	bool json;
	char location[256]; /* 303: the same page without the token */
	/* Checked parameters as YYYY-MM-DD ("" when not given). */
	char date[11], from[11], to[11], since[11];
	bool pending;
};

/* Decide about one request. Always fills *d. */
void web_dispatch(const struct web_request *r, struct web_decision *d);

/* A report day as the pages take it: YYYY-MM-DD from 2000-01-01 to
 * 2100-12-31 that exists, "today" or "yesterday" (relative to `today`).
 * Exactly `len` bytes (a NUL inside fails). Returns 0 and out, or -1. */
int web_parse_day(const char *s, size_t len, const char *today, char out[11]);
/* The number of days from a to b (both YYYY-MM-DD, checked). */
long web_days_between(const char *a, const char *b);

/* "Bearer TOKEN" (scheme in any case, then spaces): 0 with the token's
 * span inside `header`; -1 for another scheme or an empty token. */
int web_bearer(const char *header, const char **tok, size_t *len);
/* Equal, in a time that depends on the secret's length only. */
bool web_token_equal(const char *given, size_t given_len, const char *secret, size_t secret_len);
/* A token file's contents → the token (trailing CR/LF trimmed): 0 and
 * the span, or -1 with *why (empty, too long, a byte that a cookie or a
 * URL would mangle). */
int web_token_parse(const char *buf, size_t len, size_t *tok_len, const char **why);

/* --listen ADDR:PORT with a numeric IPv4 address or [IPv6]: 0 and the
 * socket address, -1 if malformed. *loopback: 127.0.0.1 or ::1, the two
 * addresses that serve without a token. */
int web_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *ss_len, bool *loopback);

#endif
