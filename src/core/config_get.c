/*
 * config_get: what every validator of config (see config.c) is built
 * from: the error list, kept as "FILE:LINE:COLUMN: message" and handed
 * back sorted by position, and the typed getters, which parse one node
 * strictly (libyaml hands over every plain scalar as a string, so "yes",
 * "0x10" and "4 h" are rejected here rather than guessed at) and report
 * their own errors.
 */
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_impl.h"

/* Durations beyond a century are typos, and other modules add them to Unix
 * times; this bound keeps that arithmetic far from overflow. */
#define MAX_DURATION (INT64_C(36500) * 86400)

/* ------------------------------------------------------------------ */
/* Errors                                                              */

void config_oom(struct ctx *c)
{
	c->oom = true;
}

void config_err_pos(struct ctx *c, int file, int line, int col, const char *fmt, ...)
{
	const char *fname = file == FILE_CSV && c->cfg->cells_file != NULL ? c->cfg->cells_file
	                                                                   : c->path;
	char *msg = NULL, *text = NULL;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0) {
		config_oom(c);
		return;
	}
	r = asprintf(&text, "%s:%d:%d: %s", fname, line, col, msg);
	free(msg);
	if (r < 0) {
		config_oom(c);
		return;
	}
	if (c->n_errs == c->cap_errs) {
		size_t ncap = c->cap_errs ? c->cap_errs * 2 : 16;
		struct err *e = realloc(c->errs, ncap * sizeof(*e));

		if (e == NULL) {
			free(text);
			config_oom(c);
			return;
		}
		c->errs = e;
		c->cap_errs = ncap;
	}
	c->errs[c->n_errs] = (struct err){ file, line, col, c->n_errs, text };
	c->n_errs++;
}

static int err_cmp(const void *a, const void *b)
{
	const struct err *x = a, *y = b;

	if (x->file != y->file)
		return x->file < y->file ? -1 : 1;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->col != y->col)
		return x->col < y->col ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Hands the collected errors to the caller in file order; an allocation
 * failure anywhere becomes one more error so that it is never silent. */
void config_errs_flush(struct ctx *c, struct config_errors *out)
{
	size_t i = 0;

	if (c->oom)
		config_err_pos(c, FILE_YAML, 1, 1, "out of memory");
	if (c->n_errs > 0)
		qsort(c->errs, c->n_errs, sizeof(*c->errs), err_cmp);
	if (out != NULL && c->n_errs > 0) {
		char **v = realloc(out->v, (out->n + c->n_errs) * sizeof(*v));

		if (v != NULL) {
			out->v = v;
			for (; i < c->n_errs; i++)
				out->v[out->n++] = c->errs[i].text;
		}
	}
	for (; i < c->n_errs; i++)
		free(c->errs[i].text);
	free(c->errs);
	c->errs = NULL;
	c->n_errs = c->cap_errs = 0;
}

/* A value as it can be quoted in a message: bounded, one line. */
const char *config_show(const char *s, char *buf, size_t cap)
{
	size_t i = 0, o = 0, max = cap - 4;

	for (; s[i] != '\0' && o < max; i++) {
		unsigned char ch = (unsigned char)s[i];

		buf[o++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
	}
	if (s[i] != '\0') {
		/* Do not cut a UTF-8 sequence in half. */
		while (o > 0 && ((unsigned char)buf[o - 1] & 0xC0) == 0x80)
			o--;
		if (o > 0 && ((unsigned char)buf[o - 1] & 0xC0) == 0xC0)
			o--;
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

char *config_xstrdup(struct ctx *c, const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		config_oom(c);
	return p;
}

/* ------------------------------------------------------------------ */
/* Typed getters: each reports its own error and writes only on success */

bool config_want_map(struct ctx *c, const struct node *v, const char *what)
{
	if (v->bad || config_is_null(v))
		return false;
	if (v->type == N_MAP)
		return true;
	err_at(c, v, "%s must be a mapping, not %s", what, config_type_name(v));
	return false;
}

bool config_want_seq(struct ctx *c, const struct node *v, const char *what)
{
	if (v->bad || config_is_null(v))
		return false;
	if (v->type == N_SEQ)
		return true;
	err_at(c, v, "%s must be a list, not %s", what, config_type_name(v));
	return false;
}

const char *config_get_scalar(struct ctx *c, const struct node *v, const char *what)
{
	if (v->bad)
		return NULL;
	if (v->type != N_SCALAR) {
		err_at(c, v, "%s must be a single value, not %s", what, config_type_name(v));
		return NULL;
	}
	if (config_is_null(v)) {
		err_at(c, v, "%s needs a value", what);
		return NULL;
	}
	if (strlen(v->s) != v->len) {
		err_at(c, v, "%s must not contain a NUL character", what);
		return NULL;
	}
	return v->s;
}

/* A non-empty string, replacing (and freeing) what *dst held. */
bool config_get_str(struct ctx *c, const struct node *v, const char *what, char **dst)
{
	const char *s = config_get_scalar(c, v, what);
	char *d;

	if (s == NULL)
		return false;
	if (*s == '\0') {
		err_at(c, v, "%s must not be empty", what);
		return false;
	}
	d = config_xstrdup(c, s);
	if (d == NULL)
		return false;
	free(*dst);
	*dst = d;
	return true;
}

bool config_get_bool(struct ctx *c, const struct node *v, const char *what, bool *out)
{
	const char *s = config_get_scalar(c, v, what);
	char b[SHOW_MAX];

	if (s == NULL)
		return false;
	if (strcmp(s, "true") == 0) {
		*out = true;
		return true;
	}
	if (strcmp(s, "false") == 0) {
		*out = false;
		return true;
	}
	err_at(c, v, "%s must be true or false, not '%s'", what, config_show(s, b, sizeof(b)));
	return false;
}

/* Plain decimal digits only: "0x10", "+5", "1e3" and "1_000" are typos
 * as far as this file is concerned. */
bool config_get_int(struct ctx *c, const struct node *v, const char *what, long long min,
                    long long max, long long *out)
{
	const char *s = config_get_scalar(c, v, what), *p;
	long long n = 0;
	char b[SHOW_MAX];

	if (s == NULL)
		return false;
	for (p = s; *p >= '0' && *p <= '9'; p++) {
		if (n <= max)
			n = n * 10 + (*p - '0');
	}
	if (p == s || *p != '\0' || n < min || n > max) {
		err_at(c, v,
		       "%s must be a whole number from %lld to %lld, "
		       "not '%s'",
		       what, min, max, config_show(s, b, sizeof(b)));
		return false;
	}
	*out = n;
	return true;
}

bool config_get_num(struct ctx *c, const struct node *v, const char *what, double *out)
{
	const char *s = config_get_scalar(c, v, what), *p;
	char b[SHOW_MAX], *copy, *end;
	const char *dp;
	double d;
	bool ok;

	if (s == NULL)
		return false;
	/* Shape first: -?D+(.D+)?([eE][+-]?D+)? — no hex, inf or nan. */
	p = s;
	if (*p == '-')
		p++;
	ok = *p >= '0' && *p <= '9';
	while (*p >= '0' && *p <= '9')
		p++;
	if (ok && *p == '.') {
		p++;
		ok = *p >= '0' && *p <= '9';
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (ok && (*p == 'e' || *p == 'E')) {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		ok = *p >= '0' && *p <= '9';
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (!ok || *p != '\0') {
		err_at(c, v, "%s must be a number, not '%s'", what, config_show(s, b, sizeof(b)));
		return false;
	}
	/* strtod follows LC_NUMERIC; the file always uses '.'. */
	copy = config_xstrdup(c, s);
	if (copy == NULL)
		return false;
	dp = localeconv()->decimal_point;
	if (dp != NULL && dp[0] != '\0' && dp[0] != '.' && dp[1] == '\0') {
		char *dot = strchr(copy, '.');

		if (dot != NULL)
			*dot = dp[0];
	}
	errno = 0;
	d = strtod(copy, &end);
	ok = *end == '\0' && isfinite(d) && errno != ERANGE;
	free(copy);
	if (!ok) {
		err_at(c, v, "%s is out of range: '%s'", what, config_show(s, b, sizeof(b)));
		return false;
	}
	*out = d;
	return true;
}

bool config_get_dur(struct ctx *c, const struct node *v, const char *what, int64_t *out)
{
	const char *s = config_get_scalar(c, v, what);
	char b[SHOW_MAX];
	int64_t d;

	if (s == NULL)
		return false;
	if (units_duration(s, &d) < 0 || d > MAX_DURATION) {
		err_at(c, v,
		       "invalid duration '%s' for %s (use e.g. 90s, "
		       "15m, 4h, 1h30m, 2d; at most 36500d)",
		       config_show(s, b, sizeof(b)), what);
		return false;
	}
	*out = d;
	return true;
}

/* A duration that must be positive: a zero interval or timeout would make
 * the daemon spin. */
bool config_get_dur_pos(struct ctx *c, const struct node *v, const char *what, int64_t *out)
{
	int64_t d;

	if (!config_get_dur(c, v, what, &d))
		return false;
	if (d == 0) {
		err_at(c, v, "%s must be longer than 0s", what);
		return false;
	}
	*out = d;
	return true;
}

bool config_get_size(struct ctx *c, const struct node *v, const char *what, int64_t *out)
{
	const char *s = config_get_scalar(c, v, what);
	char b[SHOW_MAX];
	int64_t d;

	if (s == NULL)
		return false;
	if (units_size(s, &d) < 0) {
		err_at(c, v,
		       "invalid size '%s' for %s (use e.g. 8192, 8KiB, "
		       "1MiB, 2GiB)",
		       config_show(s, b, sizeof(b)), what);
		return false;
	}
	*out = d;
	return true;
}

bool config_get_active(struct ctx *c, const struct node *v, const char *what,
                       struct units_active *out)
{
	const char *s = config_get_scalar(c, v, what);
	char b[SHOW_MAX];

	if (s == NULL)
		return false;
	if (units_active(s, out) < 0) {
		err_at(c, v,
		       "invalid active hours '%s' for %s (use HH:MM-HH:MM "
		       "with different times, e.g. 07:00-19:00, or always)",
		       config_show(s, b, sizeof(b)), what);
		return false;
	}
	return true;
}

const char *const config_segment_rule = "use 1-64 characters of A-Z a-z 0-9 _ . -";

/* A list of strings; with `segments` each must be a valid topic level
 * (worker ids, which devices put in topics). Replaces *out on success.
 * The pointer array and the strings share one allocation (freed with a
 * single free()): with a million cells, per-string mallocs would double
 * the memory the cell lists take. */
bool config_get_strlist(struct ctx *c, const struct node *v, const char *what, const char *item,
                        bool segments, char ***out, size_t *n_out)
{
	size_t bytes = 0, n = v->n;
	char **list, *p;
	bool ok = true;

	if (!config_want_seq(c, v, what))
		return false;
	for (size_t i = 0; i < n; i++) {
		const struct node *it = v->kid[i];
		const char *s = config_get_scalar(c, it, item);
		char b[SHOW_MAX];

		if (s == NULL) {
			ok = false;
		} else if (segments && !topic_segment_valid(s, strlen(s))) {
			err_at(c, it, "invalid %s '%s': %s", item, config_show(s, b, sizeof(b)),
			       config_segment_rule);
			ok = false;
		} else if (*s == '\0') {
			err_at(c, it, "%s must not be empty", item);
			ok = false;
		} else {
			bytes += strlen(s) + 1;
		}
	}
	if (!ok)
		return false;
	list = malloc((n + 1) * sizeof(*list) + bytes);
	if (list == NULL) {
		config_oom(c);
		return false;
	}
	p = (char *)(list + n + 1);
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(v->kid[i]->s) + 1;

		list[i] = memcpy(p, v->kid[i]->s, len);
		p += len;
	}
	list[n] = NULL;
	free(*out);
	*out = list;
	*n_out = n;
	return true;
}

bool config_key_is(const struct node *k, const char *name)
{
	return strcmp(k->s, name) == 0;
}

void config_unknown_key(struct ctx *c, const struct node *k, const char *where)
{
	char b[SHOW_MAX];

	err_at(c, k, "unknown key '%s' in %s", config_show(k->s, b, sizeof(b)), where);
}
