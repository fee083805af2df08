/*
 * topic: compiling the configured MQTT topic template and splitting incoming
 * topics by it.
 *
 * The template ("patrol/{cell}/{worker}/{event}") is compiled once at
 * configuration time into a list of levels, each either fixed text or a
 * placeholder. An incoming topic must have exactly as many levels; fixed
 * levels must match byte for byte and placeholder values must be plain
 * identifiers. The daemon subscribes to the fixed prefix plus "/#" rather
 * than to a "+" filter, so that topics with the wrong shape still arrive and
 * can be recorded as bad_topic instead of vanishing at the broker. Pure: no
 * I/O and no logging; errors are short English sentences for the caller.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topic.h"

static void set_err(char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static char *dup_range(const char *s, size_t len)
{
	char *p = malloc(len + 1);

	if (p == NULL)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

void topic_template_free(struct topic_template *t)
{
	if (t == NULL)
		return;
	if (t->segs != NULL) {
		for (size_t i = 0; i < t->n_segs; i++)
			free(t->segs[i]);
		free(t->segs);
	}
	free(t->subscription);
	t->segs = NULL;
	t->n_segs = 0;
	t->subscription = NULL;
	t->cell_idx = t->worker_idx = t->event_idx = -1;
}

/* Which placeholder a level is: 0 cell, 1 worker, 2 event, -1 none. */
static int placeholder_kind(const char *s, size_t len)
{
	static const char *const names[] = { "{cell}", "{worker}", "{event}" };

	for (int i = 0; i < 3; i++)
		if (strlen(names[i]) == len && memcmp(s, names[i], len) == 0)
			return i;
	return -1;
}

/* Check one template level; fills *kind (see placeholder_kind). */
static int check_level(const char *s, size_t len, size_t idx, int *kind, char *err, size_t errlen)
{
	*kind = placeholder_kind(s, len);
	if (*kind >= 0)
		return 0;
	for (size_t i = 0; i < len; i++) {
		switch (s[i]) {
		case '{':
		case '}':
			if (s[0] == '{' && s[len - 1] == '}' &&
			    memchr(s + 1, '{', len - 2) == NULL &&
			    memchr(s + 1, '}', len - 2) == NULL)
				set_err(err, errlen,
				        "unknown placeholder at template level %zu "
				        "(use {cell}, {worker} or {event})",
				        idx + 1);
			else
				set_err(err, errlen,
				        "template level %zu: a placeholder must be a "
				        "whole level",
				        idx + 1);
			return -1;
		case '+':
		case '#':
			set_err(err, errlen, "template level %zu contains the MQTT wildcard '%c'",
			        idx + 1, s[i]);
			return -1;
		default:
			break;
		}
	}
	return 0;
}

int topic_template_compile(const char *tmpl, struct topic_template *out, char *err, size_t errlen)
{
	static const char *const pnames[] = { "cell", "worker", "event" };
	struct topic_template t = { 0 };
	size_t n = 1, prefix_len = 0;
	const char *p;

	t.cell_idx = t.worker_idx = t.event_idx = -1;
	if (out == NULL)
		return -1;
	memset(out, 0, sizeof(*out));
	out->cell_idx = out->worker_idx = out->event_idx = -1;
	if (tmpl == NULL || tmpl[0] == '\0') {
		set_err(err, errlen, "topic template is empty");
		return -1;
	}
	for (p = tmpl; *p != '\0'; p++)
		if (*p == '/')
			n++;
	t.segs = calloc(n, sizeof(*t.segs));
	if (t.segs == NULL)
		goto nomem;

	p = tmpl;
	for (size_t i = 0; i < n; i++) {
		const char *end = strchr(p, '/');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		int kind, *slot;

		if (len == 0) {
			set_err(err, errlen,
			        "topic template has an empty level "
			        "(level %zu)",
			        i + 1);
			goto fail;
		}
		if (check_level(p, len, i, &kind, err, errlen) < 0)
			goto fail;
		if (kind < 0) {
			t.segs[i] = dup_range(p, len);
			if (t.segs[i] == NULL)
				goto nomem;
		} else {
			if (i == 0) {
				set_err(err, errlen,
				        "topic template must start "
				        "with a fixed level, not {%s}",
				        pnames[kind]);
				goto fail;
			}
			slot = kind == 0 ? &t.cell_idx : kind == 1 ? &t.worker_idx : &t.event_idx;
			if (*slot >= 0) {
				set_err(err, errlen,
				        "placeholder {%s} appears "
				        "more than once",
				        pnames[kind]);
				goto fail;
			}
			*slot = (int)i;
		}
		t.n_segs = i + 1;
		p += len + 1;
	}
	if (t.cell_idx < 0 || t.worker_idx < 0) {
		set_err(err, errlen, "topic template lacks {%s}",
		        t.cell_idx < 0 ? "cell" : "worker");
		goto fail;
	}

	/* Subscribe to everything under the fixed prefix: a "+" filter would
	 * make the broker drop malformed topics silently. */
	for (size_t i = 0; i < t.n_segs && t.segs[i] != NULL; i++)
		prefix_len += strlen(t.segs[i]) + 1;
	t.subscription = malloc(prefix_len + 2);
	if (t.subscription == NULL)
		goto nomem;
	memcpy(t.subscription, tmpl, prefix_len);
	memcpy(t.subscription + prefix_len, "#", 2);

	*out = t;
	return 0;

nomem:
	set_err(err, errlen, "out of memory");
fail:
	t.n_segs = n;
	topic_template_free(&t);
	return -1;
}

bool topic_segment_valid(const char *s, size_t len)
{
	if (s == NULL || len < 1 || len > TOPIC_SEGMENT_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

int topic_match(const struct topic_template *t, const char *topic, struct topic_fields *out,
                char *err, size_t errlen)
{
	static const char *const pnames[] = { "cell", "worker", "event" };
	size_t n = 1, tlen;
	const char *p;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (t == NULL || t->segs == NULL || out == NULL) {
		set_err(err, errlen, "no topic template");
		return -1;
	}
	if (topic == NULL || topic[0] == '\0') {
		set_err(err, errlen, "topic is empty");
		return -1;
	}
	tlen = strlen(topic);
	if (topic[0] == '/') {
		set_err(err, errlen, "topic starts with '/'");
		return -1;
	}
	if (topic[tlen - 1] == '/') {
		set_err(err, errlen, "topic ends with '/'");
		return -1;
	}
	for (p = topic; *p != '\0'; p++)
		if (*p == '/')
			n++;
	if (n != t->n_segs) {
		set_err(err, errlen, "topic has %zu levels, template has %zu", n, t->n_segs);
		return -1;
	}

	p = topic;
	for (size_t i = 0; i < n; i++) {
		const char *end = strchr(p, '/');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		char *dst;
		int kind;

		if (len == 0) {
			set_err(err, errlen, "topic level %zu is empty", i + 1);
			return -1;
		}
		if (t->segs[i] != NULL) {
			/* Do not echo the device's bytes: they may not be
			 * UTF-8, and the detail is logged and stored. */
			if (strlen(t->segs[i]) != len || memcmp(t->segs[i], p, len) != 0) {
				set_err(err, errlen,
				        "topic level %zu is not "
				        "\"%s\"",
				        i + 1, t->segs[i]);
				return -1;
			}
		} else {
			if ((int)i == t->cell_idx) {
				kind = 0;
				dst = out->cell;
			} else if ((int)i == t->worker_idx) {
				kind = 1;
				dst = out->worker;
			} else {
				kind = 2;
				dst = out->event;
			}
			if (len > TOPIC_SEGMENT_MAX) {
				set_err(err, errlen,
				        "%s segment is longer than "
				        "%d characters",
				        pnames[kind], TOPIC_SEGMENT_MAX);
				return -1;
			}
			if (!topic_segment_valid(p, len)) {
				set_err(err, errlen,
				        "%s segment has invalid "
				        "characters",
				        pnames[kind]);
				return -1;
			}
			memcpy(dst, p, len);
			dst[len] = '\0';
		}
		p += len + 1;
	}
	return 0;
}
