/*
 * libFuzzer target for web_dispatch, the decisions of `gridpatrol serve`.
 * An input is "METHOD\nTARGET\nAUTHORIZATION\nCOOKIE" after one flag byte
 * (bit 0: a token is required, bit 1: the request has a body); the query
 * of TARGET is split and %-decoded the way libmicrohttpd hands it over,
 * so decoded NULs reach the dispatcher with their lengths. Every decision
 * is checked for what the server relies on: a status it knows, a route
 * only with 200 or 303, dates that are YYYY-MM-DD, a redirect target that
 * is one line starting with "/" and never carries the token.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TOKEN "fuzz-token_0123456789"

static int hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* %-decode in place; returns the new length. */
static size_t unescape(char *s, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
			s[o++] = (char)(hex(s[i + 1]) * 16 + hex(s[i + 2]));
			i += 2;
		} else {
			s[o++] = s[i];
		}
	}
	s[o] = '\0';
	return o;
}

static bool is_date(const char *s)
{
	if (!s[0])
		return true;
	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return false;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
			return false;
	return strcmp(s, "2000-01-01") >= 0 && strcmp(s, "2100-12-31") <= 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 8192)
		return 0;
	unsigned flags = data[0];
	char *buf = malloc(size);
	if (!buf)
		return 0;
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = '\0';

	char *field[4] = { buf, NULL, NULL, NULL };
	for (int i = 1; i < 4; i++) {
		char *nl = field[i - 1] ? strchr(field[i - 1], '\n') : NULL;
		if (nl) {
			*nl = '\0';
			field[i] = nl + 1;
		}
	}
	const char *target = field[1] ? field[1] : "";
	size_t target_len = strlen(target);

	/* The query, split on '&' and decoded, as libmicrohttpd does. */
	char *q = strdup(target);
	struct web_arg args[WEB_MAX_ARGS + 1];
	size_t n = 0;
	char *qs = q ? strchr(q, '?') : NULL;
	if (qs) {
		char *p = qs + 1;
		while (p && n < WEB_MAX_ARGS + 1) {
			char *amp = strchr(p, '&');
			if (amp)
				*amp = '\0';
			char *eq = strchr(p, '=');
			struct web_arg *a = &args[n++];
			if (eq) {
				*eq = '\0';
				a->value = eq + 1;
				a->value_len = unescape(eq + 1, strlen(eq + 1));
			} else {
				a->value = NULL;
				a->value_len = 0;
			}
			a->key = p;
			a->key_len = unescape(p, strlen(p));
			p = amp ? amp + 1 : NULL;
		}
	}

	struct web_request r = {
		.method = field[0],
		.target = target,
		.target_len = target_len,
		.args = args,
		.n_args = n,
		.authorization = field[2],
		.cookie = field[3],
		.has_body = flags & 2,
		.today = "2026-12-02",
		.token = flags & 1 ? TOKEN : NULL,
		.token_len = flags & 1 ? strlen(TOKEN) : 0,
	};
	struct web_decision d;
	web_dispatch(&r, &d);

	switch (d.status) {
	case 200:
	case 303:
		if (d.route == WEB_ROUTE_NONE)
			abort();
		if (!is_date(d.date) || !is_date(d.from) || !is_date(d.to) || !is_date(d.since))
			abort();
		if (d.status == 303 && (d.location[0] != '/' || strchr(d.location, '\n') ||
		                        strchr(d.location, '\r') || strstr(d.location, TOKEN)))
			abort();
		if (d.status == 303 && !(flags & 1))
			abort();
		break;
	case 400:
	case 401:
	case 404:
	case 405:
	case 413:
		if (d.route != WEB_ROUTE_NONE || !d.why)
			abort();
		break;
	default:
		abort();
	}
	/* A page with a token required but none sent: impossible. */
	if ((flags & 1) && d.status == 200 && !field[2] && !field[3])
		abort();
	free(q);
	free(buf);
	return 0;
}
