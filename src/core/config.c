/*
 * config: reads the YAML configuration file (and the optional cells CSV it
 * names) into a validated `struct config`, or into a list of every problem
 * found, each as "FILE:LINE:COLUMN: message".
 *
 * The work happens in three passes. First libyaml's event parser builds a
 * small private tree of scalars, lists and mappings that remembers where each
 * node started; libyaml's own document loader is not used because it expands
 * aliases (a "billion laughs" risk) and says nothing about duplicate keys.
 * Second, every mapping is checked for duplicate keys. Third, the validators
 * walk the tree section by section, parse every scalar strictly (libyaml
 * hands over every plain scalar as a string, so "yes", "0x10" and "4 h" are
 * rejected here rather than guessed at), fill in defaults and build the
 * lookup indexes. Errors are collected, sorted by position and handed back;
 * the module never logs and never exits, so that SIGHUP can keep the old
 * configuration when a new one is bad.
 *
 * Rows of cells_file are turned into the same kind of nodes as YAML values,
 * so a cell is validated by one piece of code wherever it came from.
 */
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "config.h"
#include "strmap.h"
#include "utf8.h"

/* Deep enough for any sensible configuration (the schema needs 5 levels),
 * shallow enough that the recursive passes cannot exhaust the stack. */
#define MAX_DEPTH 32
/* A bound on file size keeps a mistaken path (a disk image, /dev/zero)
 * from eating the machine; a million cells of CSV fit easily. */
#define MAX_FILE_SIZE ((size_t)1 << 30)
/* Durations beyond a century are typos, and other modules add them to Unix
 * times; this bound keeps that arithmetic far from overflow. */
#define MAX_DURATION (INT64_C(36500) * 86400)
/* libmosquitto and the MQTT spec cap a packet at 256 MiB. */
#define MAX_PAYLOAD (INT64_C(256) << 20)
/* Shown in messages instead of very long values. */
#define SHOW_MAX 48

enum { FILE_YAML = 0, FILE_CSV = 1 };

enum ntype { N_SCALAR, N_SEQ, N_MAP };

struct node {
	enum ntype type;
	bool plain;   /* plain scalar style: only these can mean "null" */
	bool bad;     /* already reported (alias, tag): validators stay quiet */
	bool skip;    /* on a key: duplicate, ignore the pair */
	int file;     /* FILE_YAML, or FILE_CSV for fields of cells_file */
	int line, col;
	char *s;      /* scalar text, NUL-terminated */
	size_t len;   /* may differ from strlen(s) when the YAML used "\0" */
	struct node **kid; /* list items; mapping keys and values alternate */
	size_t n, cap;
};

struct err {
	int file, line, col;
	size_t seq;
	char *text;
};

struct loc {
	int file, line;
};

struct ctx {
	const char *path;   /* YAML path as given */
	struct config *cfg;
	struct err *errs;
	size_t n_errs, cap_errs;
	bool oom;
	struct loc *cell_loc; /* where each cfg->cells[i] was defined */
	size_t cap_cells;
	/* Where storage.retention and limits.max_backfill were given, for
	 * the check between them once both sections are read. */
	const struct node *retention_at, *max_backfill_at;
};

struct config_index {
	struct strmap cells;
	struct strmap events;
};

/* ------------------------------------------------------------------ */
/* Errors                                                              */

static void
oom(struct ctx *c)
{
	c->oom = true;
}

static void err_pos(struct ctx *c, int file, int line, int col,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void
err_pos(struct ctx *c, int file, int line, int col, const char *fmt, ...)
{
	const char *fname = file == FILE_CSV && c->cfg->cells_file != NULL
	                    ? c->cfg->cells_file : c->path;
	char *msg = NULL, *text = NULL;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0) {
		oom(c);
		return;
	}
	r = asprintf(&text, "%s:%d:%d: %s", fname, line, col, msg);
	free(msg);
	if (r < 0) {
		oom(c);
		return;
	}
	if (c->n_errs == c->cap_errs) {
		size_t ncap = c->cap_errs ? c->cap_errs * 2 : 16;
		struct err *e = realloc(c->errs, ncap * sizeof(*e));

		if (e == NULL) {
			free(text);
			oom(c);
			return;
		}
		c->errs = e;
		c->cap_errs = ncap;
	}
	c->errs[c->n_errs] = (struct err){ file, line, col, c->n_errs, text };
	c->n_errs++;
}

#define err_at(c, nd, ...) \
	err_pos((c), (nd)->file, (nd)->line, (nd)->col, __VA_ARGS__)

static int
err_cmp(const void *a, const void *b)
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
static void
errs_flush(struct ctx *c, struct config_errors *out)
{
	size_t i = 0;

	if (c->oom)
		err_pos(c, FILE_YAML, 1, 1, "out of memory");
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
static const char *
show(const char *s, char *buf, size_t cap)
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

static char *
xstrdup(struct ctx *c, const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		oom(c);
	return p;
}

static void
free_strv(char **v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* "1h30m" for messages about values that may be defaults. */
static const char *
fmt_dur(int64_t s, char *buf, size_t cap)
{
	static const struct {
		char u;
		int64_t mul;
	} units[] = { { 'd', 86400 }, { 'h', 3600 }, { 'm', 60 }, { 's', 1 } };
	size_t o = 0;

	if (s == 0) {
		snprintf(buf, cap, "0s");
		return buf;
	}
	buf[0] = '\0';
	for (size_t i = 0; i < 4 && o < cap; i++) {
		if (s >= units[i].mul) {
			int w = snprintf(buf + o, cap - o, "%lld%c",
			                 (long long)(s / units[i].mul), units[i].u);

			if (w < 0)
				break;
			o += (size_t)w;
			s %= units[i].mul;
		}
	}
	return buf;
}

/* ------------------------------------------------------------------ */
/* Nodes                                                               */

static void
node_free(struct node *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->n; i++)
		node_free(n->kid[i]);
	free(n->kid);
	free(n->s);
	free(n);
}

static struct node *
node_new(struct ctx *c, enum ntype type, int file, int line, int col)
{
	struct node *n = calloc(1, sizeof(*n));

	if (n == NULL) {
		oom(c);
		return NULL;
	}
	n->type = type;
	n->file = file;
	n->line = line;
	n->col = col;
	return n;
}

static int
node_add(struct ctx *c, struct node *parent, struct node *kid)
{
	if (parent->n == parent->cap) {
		size_t ncap = parent->cap ? parent->cap * 2 : 4;
		struct node **k = realloc(parent->kid, ncap * sizeof(*k));

		if (k == NULL) {
			oom(c);
			return -1;
		}
		parent->kid = k;
		parent->cap = ncap;
	}
	parent->kid[parent->n++] = kid;
	return 0;
}

static struct node *
scalar_new(struct ctx *c, int file, int line, int col, const char *s,
           size_t len, bool plain)
{
	struct node *n = node_new(c, N_SCALAR, file, line, col);

	if (n == NULL)
		return NULL;
	n->s = malloc(len + 1);
	if (n->s == NULL) {
		free(n);
		oom(c);
		return NULL;
	}
	memcpy(n->s, s, len);
	n->s[len] = '\0';
	n->len = len;
	n->plain = plain;
	return n;
}

static bool
is_null(const struct node *n)
{
	return n->type == N_SCALAR && n->plain &&
	       (n->len == 0 || strcmp(n->s, "~") == 0 ||
	        strcmp(n->s, "null") == 0 || strcmp(n->s, "Null") == 0 ||
	        strcmp(n->s, "NULL") == 0);
}

static const char *
type_name(const struct node *n)
{
	if (n->type == N_MAP)
		return "a mapping";
	if (n->type == N_SEQ)
		return "a list";
	if (is_null(n))
		return "empty";
	return "a single value";
}

/* ------------------------------------------------------------------ */
/* Text encoding                                                       */

/* Reports the first malformed UTF-8 sequence (or NUL byte, which no text
 * file here may contain) of a whole file; false when there is one. The
 * position is counted in characters like libyaml's columns so that an
 * editor's column matches. */
static bool
text_ok(struct ctx *c, int file, const char *buf, size_t len)
{
	size_t bad = utf8_check(buf, len);
	int line, col;

	if (bad == len)
		return true;
	utf8_line_col(buf, len, bad, &line, &col);
	err_pos(c, file, line, col, buf[bad] == '\0' ? "NUL byte in the file"
	        : "not valid UTF-8 text (save the file as UTF-8)");
	return false;
}

/* ------------------------------------------------------------------ */
/* YAML → nodes                                                        */

static void
yaml_error(struct ctx *c, const yaml_parser_t *p, const unsigned char *buf,
           size_t len)
{
	const char *problem = p->problem != NULL ? p->problem : "unknown error";
	int line, col;

	switch (p->error) {
	case YAML_MEMORY_ERROR:
		oom(c);
		return;
	case YAML_READER_ERROR:
		/* A byte offset only, and into text that is not UTF-8. */
		utf8_line_col((const char *)buf, len, p->problem_offset, &line,
		              &col);
		err_pos(c, FILE_YAML, line, col,
		        "not valid UTF-8 text: %s", problem);
		return;
	default:
		line = (int)p->problem_mark.line + 1;
		col = (int)p->problem_mark.column + 1;
		if (p->context != NULL)
			err_pos(c, FILE_YAML, line, col,
			        "YAML syntax error: %s (%s at line %d)", problem,
			        p->context, (int)p->context_mark.line + 1);
		else
			err_pos(c, FILE_YAML, line, col,
			        "YAML syntax error: %s", problem);
		return;
	}
}

/* Builds the node tree. Returns -1 when the tree is unusable (syntax
 * error, too deep, a second document): the caller then reports only what
 * was found so far rather than cascading nonsense. */
static int
yaml_to_tree(struct ctx *c, const unsigned char *buf, size_t len,
             struct node **root)
{
	struct node *stack[MAX_DEPTH];
	yaml_parser_t p;
	yaml_event_t ev;
	int depth = 0, docs = 0, rc = 0;
	bool done = false;

	*root = NULL;
	if (!yaml_parser_initialize(&p)) {
		oom(c);
		return -1;
	}
	yaml_parser_set_input_string(&p, buf, len);
	while (!done) {
		struct node *n = NULL;
		int line, col;
		bool opens = false;

		if (!yaml_parser_parse(&p, &ev)) {
			yaml_error(c, &p, buf, len);
			rc = -1;
			break;
		}
		line = (int)ev.start_mark.line + 1;
		col = (int)ev.start_mark.column + 1;
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1) {
				err_pos(c, FILE_YAML, line, col, "only one YAML "
				        "document is allowed per file");
				rc = -1;
				done = true;
			}
			break;
		case YAML_ALIAS_EVENT:
			/* Aliases can multiply a small file into a huge
			 * tree, and nothing in this schema needs them. */
			err_pos(c, FILE_YAML, line, col,
			        "aliases are not supported");
			n = scalar_new(c, FILE_YAML, line, col, "", 0, false);
			if (n != NULL)
				n->bad = true;
			break;
		case YAML_SCALAR_EVENT:
			n = scalar_new(c, FILE_YAML, line, col,
			               (const char *)ev.data.scalar.value,
			               ev.data.scalar.length,
			               ev.data.scalar.style ==
			               YAML_PLAIN_SCALAR_STYLE);
			if (n != NULL && ev.data.scalar.tag != NULL) {
				err_pos(c, FILE_YAML, line, col,
				        "YAML tags are not supported");
				n->bad = true;
			}
			break;
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (depth == MAX_DEPTH) {
				err_pos(c, FILE_YAML, line, col, "nesting deeper "
				        "than %d levels", MAX_DEPTH);
				rc = -1;
				done = true;
				break;
			}
			n = node_new(c, ev.type == YAML_SEQUENCE_START_EVENT
			             ? N_SEQ : N_MAP, FILE_YAML, line, col);
			opens = true;
			if (n != NULL && (ev.type == YAML_SEQUENCE_START_EVENT
			                  ? ev.data.sequence_start.tag
			                  : ev.data.mapping_start.tag) != NULL) {
				err_pos(c, FILE_YAML, line, col,
				        "YAML tags are not supported");
				n->bad = true;
			}
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			if (depth > 0)
				depth--;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
		if (c->oom) {
			node_free(n);
			rc = -1;
			break;
		}
		if (n == NULL)
			continue;
		if (depth == 0 && *root == NULL) {
			*root = n;
		} else if (depth == 0 || node_add(c, stack[depth - 1], n) < 0) {
			/* depth 0 with a root: impossible with one document,
			 * but never leak on it. */
			node_free(n);
			if (c->oom) {
				rc = -1;
				break;
			}
			continue;
		}
		if (opens)
			stack[depth++] = n;
	}
	yaml_parser_delete(&p);
	return rc;
}

static int
key_cmp(const struct node *a, const struct node *b)
{
	size_t m = a->len < b->len ? a->len : b->len;
	int r = memcmp(a->s, b->s, m);

	if (r != 0)
		return r;
	return a->len < b->len ? -1 : a->len > b->len;
}

static int
key_ptr_cmp(const void *a, const void *b)
{
	const struct node *x = *(struct node *const *)a;
	const struct node *y = *(struct node *const *)b;
	int r = key_cmp(x, y);

	if (r != 0)
		return r;
	/* Equal keys in document order, so the first stays the original. */
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->col < y->col ? -1 : x->col > y->col;
}

static void
dup_key(struct ctx *c, struct node *first, struct node *dup)
{
	char b[SHOW_MAX];

	err_at(c, dup, "duplicate key '%s' (first at line %d)",
	       show(dup->s, b, sizeof(b)), first->line);
	dup->skip = true;
}

/* libyaml accepts duplicate keys silently, and the last one would win:
 * a classic way to lose a setting without noticing. */
static void
check_keys(struct ctx *c, struct node *n)
{
	if (n->type == N_SEQ) {
		for (size_t i = 0; i < n->n; i++)
			check_keys(c, n->kid[i]);
		return;
	}
	if (n->type != N_MAP)
		return;
	for (size_t i = 0; i + 1 < n->n; i += 2) {
		struct node *k = n->kid[i];

		if (k->bad) {
			k->skip = true;
		} else if (k->type != N_SCALAR) {
			err_at(c, k, "a key must be a plain name, not %s",
			       type_name(k));
			k->skip = true;
		} else if (strlen(k->s) != k->len) {
			err_at(c, k, "a key must not contain a NUL character");
			k->skip = true;
		}
	}
	if (n->n / 2 <= 8) {
		for (size_t i = 2; i + 1 < n->n; i += 2) {
			struct node *k = n->kid[i];

			if (k->skip)
				continue;
			for (size_t j = 0; j < i; j += 2) {
				if (!n->kid[j]->skip &&
				    key_cmp(n->kid[j], k) == 0) {
					dup_key(c, n->kid[j], k);
					break;
				}
			}
		}
	} else {
		struct node **keys = malloc(n->n / 2 * sizeof(*keys));
		size_t nk = 0, first = 0;

		if (keys == NULL) {
			oom(c);
			return;
		}
		for (size_t i = 0; i + 1 < n->n; i += 2)
			if (!n->kid[i]->skip)
				keys[nk++] = n->kid[i];
		qsort(keys, nk, sizeof(*keys), key_ptr_cmp);
		for (size_t i = 1; i < nk; i++) {
			if (key_cmp(keys[first], keys[i]) == 0)
				dup_key(c, keys[first], keys[i]);
			else
				first = i;
		}
		free(keys);
	}
	for (size_t i = 0; i + 1 < n->n; i += 2)
		if (!n->kid[i]->skip)
			check_keys(c, n->kid[i + 1]);
}

/* ------------------------------------------------------------------ */
/* Typed getters: each reports its own error and writes only on success */

static bool
want_map(struct ctx *c, const struct node *v, const char *what)
{
	if (v->bad || is_null(v))
		return false;
	if (v->type == N_MAP)
		return true;
	err_at(c, v, "%s must be a mapping, not %s", what, type_name(v));
	return false;
}

static bool
want_seq(struct ctx *c, const struct node *v, const char *what)
{
	if (v->bad || is_null(v))
		return false;
	if (v->type == N_SEQ)
		return true;
	err_at(c, v, "%s must be a list, not %s", what, type_name(v));
	return false;
}

static const char *
get_scalar(struct ctx *c, const struct node *v, const char *what)
{
	if (v->bad)
		return NULL;
	if (v->type != N_SCALAR) {
		err_at(c, v, "%s must be a single value, not %s", what,
		       type_name(v));
		return NULL;
	}
	if (is_null(v)) {
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
static bool
get_str(struct ctx *c, const struct node *v, const char *what, char **dst)
{
	const char *s = get_scalar(c, v, what);
	char *d;

	if (s == NULL)
		return false;
	if (*s == '\0') {
		err_at(c, v, "%s must not be empty", what);
		return false;
	}
	d = xstrdup(c, s);
	if (d == NULL)
		return false;
	free(*dst);
	*dst = d;
	return true;
}

static bool
get_bool(struct ctx *c, const struct node *v, const char *what, bool *out)
{
	const char *s = get_scalar(c, v, what);
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
	err_at(c, v, "%s must be true or false, not '%s'", what,
	       show(s, b, sizeof(b)));
	return false;
}

/* Plain decimal digits only: "0x10", "+5", "1e3" and "1_000" are typos
 * as far as this file is concerned. */
static bool
get_int(struct ctx *c, const struct node *v, const char *what, long long min,
        long long max, long long *out)
{
	const char *s = get_scalar(c, v, what), *p;
	long long n = 0;
	char b[SHOW_MAX];

	if (s == NULL)
		return false;
	for (p = s; *p >= '0' && *p <= '9'; p++) {
		if (n <= max)
			n = n * 10 + (*p - '0');
	}
	if (p == s || *p != '\0' || n < min || n > max) {
		err_at(c, v, "%s must be a whole number from %lld to %lld, "
		       "not '%s'", what, min, max, show(s, b, sizeof(b)));
		return false;
	}
	*out = n;
	return true;
}

static bool
get_num(struct ctx *c, const struct node *v, const char *what, double *out)
{
	const char *s = get_scalar(c, v, what), *p;
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
		err_at(c, v, "%s must be a number, not '%s'", what,
		       show(s, b, sizeof(b)));
		return false;
	}
	/* strtod follows LC_NUMERIC; the file always uses '.'. */
	copy = xstrdup(c, s);
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
		err_at(c, v, "%s is out of range: '%s'", what,
		       show(s, b, sizeof(b)));
		return false;
	}
	*out = d;
	return true;
}

static bool
get_dur(struct ctx *c, const struct node *v, const char *what, int64_t *out)
{
	const char *s = get_scalar(c, v, what);
	char b[SHOW_MAX];
	int64_t d;

	if (s == NULL)
		return false;
	if (units_duration(s, &d) < 0 || d > MAX_DURATION) {
		err_at(c, v, "invalid duration '%s' for %s (use e.g. 90s, "
		       "15m, 4h, 1h30m, 2d; at most 36500d)", show(s, b,
		       sizeof(b)), what);
		return false;
	}
	*out = d;
	return true;
}

/* A duration that must be positive: a zero interval or timeout would make
 * the daemon spin. */
static bool
get_dur_pos(struct ctx *c, const struct node *v, const char *what,
            int64_t *out)
{
	int64_t d;

	if (!get_dur(c, v, what, &d))
		return false;
	if (d == 0) {
		err_at(c, v, "%s must be longer than 0s", what);
		return false;
	}
	*out = d;
	return true;
}

static bool
get_size(struct ctx *c, const struct node *v, const char *what, int64_t *out)
{
	const char *s = get_scalar(c, v, what);
	char b[SHOW_MAX];
	int64_t d;

	if (s == NULL)
		return false;
	if (units_size(s, &d) < 0) {
		err_at(c, v, "invalid size '%s' for %s (use e.g. 8192, 8KiB, "
		       "1MiB, 2GiB)", show(s, b, sizeof(b)), what);
		return false;
	}
	*out = d;
	return true;
}

static bool
get_active(struct ctx *c, const struct node *v, const char *what,
           struct units_active *out)
{
	const char *s = get_scalar(c, v, what);
	char b[SHOW_MAX];

	if (s == NULL)
		return false;
	if (units_active(s, out) < 0) {
		err_at(c, v, "invalid active hours '%s' for %s (use HH:MM-HH:MM "
		       "with different times, e.g. 07:00-19:00, or always)",
		       show(s, b, sizeof(b)), what);
		return false;
	}
	return true;
}

static const char *const segment_rule =
	"use 1-64 characters of A-Z a-z 0-9 _ . -";

/* A list of strings; with `segments` each must be a valid topic level
 * (worker ids, which devices put in topics). Replaces *out on success.
 * The pointer array and the strings share one allocation (freed with a
 * single free()): with a million cells, per-string mallocs would double
 * the memory the cell lists take. */
static bool
get_strlist(struct ctx *c, const struct node *v, const char *what,
            const char *item, bool segments, char ***out, size_t *n_out)
{
	size_t bytes = 0, n = v->n;
	char **list, *p;
	bool ok = true;

	if (!want_seq(c, v, what))
		return false;
	for (size_t i = 0; i < n; i++) {
		const struct node *it = v->kid[i];
		const char *s = get_scalar(c, it, item);
		char b[SHOW_MAX];

		if (s == NULL) {
			ok = false;
		} else if (segments && !topic_segment_valid(s, strlen(s))) {
			err_at(c, it, "invalid %s '%s': %s", item,
			       show(s, b, sizeof(b)), segment_rule);
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
		oom(c);
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

static bool
key_is(const struct node *k, const char *name)
{
	return strcmp(k->s, name) == 0;
}

static void
unknown_key(struct ctx *c, const struct node *k, const char *where)
{
	char b[SHOW_MAX];

	err_at(c, k, "unknown key '%s' in %s", show(k->s, b, sizeof(b)),
	       where);
}

#define FOR_PAIRS(m, k, v)                                                  \
	for (size_t i_ = 0; i_ + 1 < (m)->n; i_ += 2)                       \
		for (struct node *k = (m)->kid[i_], *v = (m)->kid[i_ + 1];  \
		     k != NULL && !k->skip; k = NULL, (void)v)

/* ------------------------------------------------------------------ */
/* mqtt                                                                */

static void
v_tls(struct ctx *c, const struct node *m)
{
	struct config *cfg = c->cfg;
	const struct node *cert = NULL, *key = NULL;

	cfg->mqtt.tls = true;
	if (!want_map(c, m, "mqtt.tls")) {
		if (!m->bad && is_null(m))
			goto need_ca;
		return;
	}
	FOR_PAIRS(m, k, v) {
		if (key_is(k, "ca_file"))
			get_str(c, v, "ca_file", &cfg->mqtt.ca_file);
		else if (key_is(k, "ca_path"))
			get_str(c, v, "ca_path", &cfg->mqtt.ca_path);
		else if (key_is(k, "cert_file"))
			cert = get_str(c, v, "cert_file", &cfg->mqtt.cert_file)
			       ? v : cert;
		else if (key_is(k, "key_file"))
			key = get_str(c, v, "key_file", &cfg->mqtt.key_file)
			      ? v : key;
		else if (key_is(k, "insecure"))
			get_bool(c, v, "insecure", &cfg->mqtt.tls_insecure);
		else
			unknown_key(c, k, "mqtt.tls");
	}
	if (cert != NULL && key == NULL)
		err_at(c, cert, "cert_file needs key_file as well");
	else if (key != NULL && cert == NULL)
		err_at(c, key, "key_file needs cert_file as well");
need_ca:
	/* libmosquitto has no default trust store: without either it fails
	 * at connect time, far from the mistake. */
	if (cfg->mqtt.ca_file == NULL && cfg->mqtt.ca_path == NULL)
		err_at(c, m, "tls needs ca_file or ca_path");
}

static void
v_protocol(struct ctx *c, const struct node *v)
{
	const char *s = get_scalar(c, v, "protocol");
	char b[SHOW_MAX];

	if (s == NULL)
		return;
	if (strcmp(s, "4") == 0 || strcmp(s, "3.1.1") == 0)
		c->cfg->mqtt.protocol = 4;
	else if (strcmp(s, "5") == 0)
		c->cfg->mqtt.protocol = 5;
	else
		err_at(c, v, "unsupported MQTT protocol '%s' (use 4 or \"3.1.1\" "
		       "for MQTT 3.1.1, or 5)", show(s, b, sizeof(b)));
}

static void
v_mqtt(struct ctx *c, const struct node *m)
{
	struct config *cfg = c->cfg;
	const struct node *topic = NULL, *pwfile = NULL, *pwcred = NULL;
	const struct node *user = NULL;
	char err[256];
	long long n;
	int64_t d;

	if (m != NULL && want_map(c, m, "mqtt")) {
		FOR_PAIRS(m, k, v) {
			if (key_is(k, "host")) {
				get_str(c, v, "host", &cfg->mqtt.host);
			} else if (key_is(k, "port")) {
				if (get_int(c, v, "port", 1, 65535, &n))
					cfg->mqtt.port = (int)n;
			} else if (key_is(k, "client_id")) {
				if (get_str(c, v, "client_id",
				            &cfg->mqtt.client_id) &&
				    (strpbrk(cfg->mqtt.client_id, "/+#") ||
				     strlen(cfg->mqtt.client_id) > 65535))
					/* It becomes a level of the status
					 * topic gridpatrol/status/{client_id}. */
					err_at(c, v, "client_id must be at most "
					       "65535 bytes without '/', '+' "
					       "or '#'");
			} else if (key_is(k, "topic")) {
				if (get_str(c, v, "topic", &cfg->mqtt.topic))
					topic = v;
			} else if (key_is(k, "protocol")) {
				v_protocol(c, v);
			} else if (key_is(k, "keepalive")) {
				/* libmosquitto refuses less than 5 s; MQTT
				 * stores it in 16 bits. */
				if (!get_dur(c, v, "keepalive", &d))
					continue;
				if (d < 5 || d > 65535)
					err_at(c, v, "keepalive must be from "
					       "5s to 65535s");
				else
					cfg->mqtt.keepalive_s = (int)d;
			} else if (key_is(k, "session_expiry")) {
				if (v->type == N_SCALAR && !v->bad &&
				    strcmp(v->s, "never") == 0) {
					cfg->mqtt.session_expiry_s = 0xFFFFFFFF;
				} else if (get_dur(c, v, "session_expiry",
				                   &d)) {
					if (d > 0xFFFFFFFF)
						err_at(c, v, "session_expiry "
						       "must be at most "
						       "4294967295s, or never");
					else
						cfg->mqtt.session_expiry_s = d;
				}
			} else if (key_is(k, "username")) {
				if (get_str(c, v, "username",
				            &cfg->mqtt.username))
					user = v;
			} else if (key_is(k, "password_file")) {
				if (get_str(c, v, "password_file",
				            &cfg->mqtt.password_file))
					pwfile = v;
			} else if (key_is(k, "password_credential")) {
				if (!get_str(c, v, "password_credential",
				             &cfg->mqtt.password_credential))
					continue;
				pwcred = v;
				if (strchr(v->s, '/') != NULL)
					err_at(c, v, "password_credential is a "
					       "credential name, not a path");
			} else if (key_is(k, "password")) {
				/* Configuration files get copied, pasted and
				 * committed; secrets belong elsewhere. */
				err_at(c, k, "an inline password is not "
				       "allowed: use password_file or "
				       "password_credential");
			} else if (key_is(k, "tls")) {
				v_tls(c, v);
			} else {
				unknown_key(c, k, "mqtt");
			}
		}
	}
	if (pwfile != NULL && pwcred != NULL)
		err_at(c, pwcred, "use password_file or password_credential, "
		       "not both");
	if (user == NULL && (pwfile != NULL || pwcred != NULL))
		err_at(c, pwfile != NULL ? pwfile : pwcred,
		       "a password needs a username");
	/* Compiled even when defaulted, so users of the config can rely on
	 * mqtt.tmpl. */
	if (topic_template_compile(cfg->mqtt.topic, &cfg->mqtt.tmpl, err,
	                           sizeof(err)) < 0) {
		if (topic != NULL)
			err_at(c, topic, "%s", err);
		else
			err_pos(c, FILE_YAML, 1, 1, "%s", err);
	}
}

/* ------------------------------------------------------------------ */
/* storage, timezone, defaults, limits                                 */

static void
v_storage(struct ctx *c, const struct node *m)
{
	struct config *cfg = c->cfg;
	const char *s;
	char b[SHOW_MAX];

	if (!want_map(c, m, "storage"))
		return;
	FOR_PAIRS(m, k, v) {
		if (key_is(k, "path"))
			get_str(c, v, "path", &cfg->storage.path);
		else if (key_is(k, "retention")) {
			if (get_dur(c, v, "retention", &cfg->storage.retention_s))
				c->retention_at = v;
		}
		else if (key_is(k, "max_size"))
			get_size(c, v, "max_size", &cfg->storage.max_size);
		else if (key_is(k, "max_rejected")) {
			long long n;
			if (get_int(c, v, "max_rejected", 0, 1000000000, &n))
				cfg->storage.max_rejected = n;
		} else if (key_is(k, "sync")) {
			s = get_scalar(c, v, "sync");
			if (s == NULL)
				continue;
			if (strcmp(s, "full") == 0)
				cfg->storage.sync_full = true;
			else if (strcmp(s, "normal") == 0)
				cfg->storage.sync_full = false;
			else
				err_at(c, v, "sync must be full or normal, not '%s'",
				       show(s, b, sizeof(b)));
		} else
			unknown_key(c, k, "storage");
	}
}

/* The zone is checked against the zoneinfo database the daemon will use,
 * so that a typo shows up at --check-config rather than as silently UTC
 * deadlines. */
static void
v_timezone(struct ctx *c, const struct node *v)
{
	const char *dir = getenv("TZDIR");
	char b[SHOW_MAX], *path = NULL, magic[4];
	const char *s;
	bool ok = false;
	int fd;

	if (!get_str(c, v, "timezone", &c->cfg->timezone))
		return;
	s = c->cfg->timezone;
	if (s[0] == '/' || strstr(s, "..") != NULL ||
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	           "0123456789/_+-.") != strlen(s) || strlen(s) > 255) {
		err_at(c, v, "invalid timezone name '%s' (use an IANA name "
		       "such as Asia/Shanghai)", show(s, b, sizeof(b)));
		return;
	}
	if (dir == NULL || dir[0] == '\0')
		dir = "/usr/share/zoneinfo";
	if (asprintf(&path, "%s/%s", dir, s) < 0) {
		oom(c);
		return;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0) {
		struct stat st;

		/* A directory ("Asia") or a table ("zone.tab") is not a
		 * zone; every zone file starts with "TZif". */
		ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
		     read(fd, magic, 4) == 4 && memcmp(magic, "TZif", 4) == 0;
		close(fd);
	}
	if (!ok)
		err_at(c, v, "unknown timezone '%s' (not found in %s)",
		       show(s, b, sizeof(b)), dir);
	free(path);
}

static void
v_defaults(struct ctx *c, const struct node *m)
{
	struct config *cfg = c->cfg;

	if (!want_map(c, m, "defaults"))
		return;
	FOR_PAIRS(m, k, v) {
		if (key_is(k, "interval"))
			get_dur_pos(c, v, "interval", &cfg->defaults.interval_s);
		else if (key_is(k, "grace"))
			get_dur(c, v, "grace", &cfg->defaults.grace_s);
		else if (key_is(k, "repeat"))
			get_dur(c, v, "repeat", &cfg->defaults.repeat_s);
		else if (key_is(k, "active"))
			get_active(c, v, "active", &cfg->defaults.active);
		else
			unknown_key(c, k, "defaults");
	}
}

static void
v_limits(struct ctx *c, const struct node *m)
{
	struct config *cfg = c->cfg;
	int64_t sz;

	if (!want_map(c, m, "limits"))
		return;
	FOR_PAIRS(m, k, v) {
		if (key_is(k, "max_payload")) {
			if (!get_size(c, v, "max_payload", &sz))
				continue;
			if (sz < 1 || sz > MAX_PAYLOAD)
				err_at(c, v, "max_payload must be from 1 to "
				       "256MiB");
			else
				cfg->limits.max_payload = sz;
		} else if (key_is(k, "max_clock_skew")) {
			get_dur(c, v, "max_clock_skew",
			        &cfg->limits.max_clock_skew_s);
		} else if (key_is(k, "max_backfill")) {
			if (get_dur(c, v, "max_backfill",
			            &cfg->limits.max_backfill_s))
				c->max_backfill_at = v;
		} else if (key_is(k, "late_after")) {
			get_dur(c, v, "late_after", &cfg->limits.late_after_s);
		} else {
			unknown_key(c, k, "limits");
		}
	}
}

/* ------------------------------------------------------------------ */
/* events                                                              */

static void
v_event_value(struct ctx *c, struct config_event *e, const struct node *m,
              const char *where)
{
	const struct node *warn = NULL, *alarm = NULL;

	e->has_value = true;
	if (!want_map(c, m, "value"))
		return;
	FOR_PAIRS(m, k, v) {
		if (key_is(k, "unit")) {
			get_str(c, v, "unit", &e->unit);
		} else if (key_is(k, "warn")) {
			if (get_num(c, v, "warn", &e->warn)) {
				e->has_warn = true;
				warn = v;
			}
		} else if (key_is(k, "alarm")) {
			if (get_num(c, v, "alarm", &e->alarm)) {
				e->has_alarm = true;
				alarm = v;
			}
		} else {
			unknown_key(c, k, where);
		}
	}
	if (warn != NULL && alarm != NULL && e->alarm < e->warn)
		err_at(c, alarm, "alarm (%s) must not be below warn (%s)",
		       alarm->s, warn->s);
}

static void
v_event(struct ctx *c, struct config_event *e, const struct node *m)
{
	char where[128], b[SHOW_MAX];
	const char *s;

	snprintf(where, sizeof(where), "events.%s", e->name);
	if (!want_map(c, m, where))
		return;
	FOR_PAIRS(m, k, v) {
		if (key_is(k, "label")) {
			get_str(c, v, "label", &e->label);
		} else if (key_is(k, "alert")) {
			s = get_scalar(c, v, "alert");
			if (s == NULL)
				continue;
			if (strcmp(s, "immediate") == 0)
				e->alert_immediate = true;
			else if (strcmp(s, "none") == 0)
				e->alert_immediate = false;
			else
				err_at(c, v, "alert must be immediate or none, "
				       "not '%s'", show(s, b, sizeof(b)));
		} else if (key_is(k, "patrol")) {
			get_bool(c, v, "patrol", &e->patrol);
		} else if (key_is(k, "value")) {
			char vwhere[160];

			snprintf(vwhere, sizeof(vwhere), "%s.value", where);
			v_event_value(c, e, v, vwhere);
		} else {
			unknown_key(c, k, where);
		}
	}
}

static void
v_events(struct ctx *c, const struct node *m)
{
	struct config *cfg = c->cfg;
	char b[SHOW_MAX];

	if (!want_map(c, m, "events"))
		return;
	cfg->events = calloc(m->n / 2 + 1, sizeof(*cfg->events));
	if (cfg->events == NULL) {
		oom(c);
		return;
	}
	FOR_PAIRS(m, k, v) {
		struct config_event *e = &cfg->events[cfg->n_events];

		/* The name is what devices put in topics and payloads. */
		if (!topic_segment_valid(k->s, k->len)) {
			err_at(c, k, "invalid event name '%s': %s",
			       show(k->s, b, sizeof(b)), segment_rule);
			continue;
		}
		e->name = xstrdup(c, k->s);
		e->label = xstrdup(c, k->s);
		if (e->name == NULL || e->label == NULL) {
			free(e->name);
			free(e->label);
			e->name = e->label = NULL;
			return;
		}
		e->patrol = true;
		cfg->n_events++;
		/* Keys are already unique, so this cannot find a match. */
		if (strmap_insert(&cfg->index->events, cfg->events,
		                  sizeof(*cfg->events),
		                  (uint32_t)(cfg->n_events - 1)) == -2) {
			oom(c);
			return;
		}
		v_event(c, e, v);
	}
}

/* ------------------------------------------------------------------ */
/* cells (YAML and CSV share this)                                     */

enum cell_field {
	CF_ID, CF_NAME, CF_INTERVAL, CF_GRACE, CF_ACTIVE, CF_REPEAT,
	CF_WORKERS, CF_TAGS, CF_N
};

static const char *const cell_field_names[CF_N] = {
	"id", "name", "interval", "grace", "active", "repeat", "workers",
	"tags",
};

static int
cell_field_lookup(const char *s)
{
	for (int i = 0; i < CF_N; i++)
		if (strcmp(s, cell_field_names[i]) == 0)
			return i;
	return -1;
}

static struct config_cell *
cell_slot(struct ctx *c)
{
	struct config *cfg = c->cfg;

	if (cfg->n_cells == c->cap_cells) {
		size_t ncap = c->cap_cells ? c->cap_cells * 2 : 16;
		struct config_cell *nc;
		struct loc *nl;

		if (ncap > UINT32_MAX - 1) {
			oom(c);
			return NULL;
		}
		nc = realloc(cfg->cells, ncap * sizeof(*nc));
		if (nc == NULL) {
			oom(c);
			return NULL;
		}
		cfg->cells = nc;
		nl = realloc(c->cell_loc, ncap * sizeof(*nl));
		if (nl == NULL) {
			oom(c);
			return NULL;
		}
		c->cell_loc = nl;
		c->cap_cells = ncap;
	}
	return &cfg->cells[cfg->n_cells];
}

static void
cell_free(struct config_cell *cell)
{
	free(cell->id);
	free(cell->name);
	free(cell->workers);
	free(cell->tags);
}

/* One cell from its fields (NULL = absent, take the default). `at` is
 * where the cell starts, for messages about the cell as a whole. Every
 * field is checked even when the id is bad, so all errors show at once. */
static void
add_cell(struct ctx *c, struct node *const f[CF_N], const struct node *at)
{
	struct config *cfg = c->cfg;
	struct config_cell *cell = cell_slot(c);
	const char *id = NULL;
	char b[SHOW_MAX];
	int64_t old;

	if (cell == NULL)
		return;
	memset(cell, 0, sizeof(*cell));
	cell->interval_s = cfg->defaults.interval_s;
	cell->grace_s = cfg->defaults.grace_s;
	cell->repeat_s = cfg->defaults.repeat_s;
	cell->active = cfg->defaults.active;

	if (f[CF_ID] == NULL)
		err_at(c, at, "a cell needs an id");
	else
		id = get_scalar(c, f[CF_ID], "id");
	if (id != NULL && !topic_segment_valid(id, strlen(id))) {
		/* Devices put the id in topics; anything else could not
		 * be matched, or could reach into other topics. */
		err_at(c, f[CF_ID], "invalid cell id '%s': %s",
		       show(id, b, sizeof(b)), segment_rule);
		id = NULL;
	}
	if (f[CF_NAME] != NULL)
		get_str(c, f[CF_NAME], "name", &cell->name);
	if (f[CF_INTERVAL] != NULL)
		get_dur_pos(c, f[CF_INTERVAL], "interval", &cell->interval_s);
	if (f[CF_GRACE] != NULL)
		get_dur(c, f[CF_GRACE], "grace", &cell->grace_s);
	if (f[CF_REPEAT] != NULL)
		get_dur(c, f[CF_REPEAT], "repeat", &cell->repeat_s);
	if (f[CF_ACTIVE] != NULL)
		get_active(c, f[CF_ACTIVE], "active", &cell->active);
	if (f[CF_WORKERS] != NULL)
		get_strlist(c, f[CF_WORKERS], "workers", "worker id", true,
		            &cell->workers, &cell->n_workers);
	if (f[CF_TAGS] != NULL)
		get_strlist(c, f[CF_TAGS], "tags", "tag", false, &cell->tags,
		            &cell->n_tags);
	if (id == NULL)
		goto drop;
	cell->id = xstrdup(c, id);
	if (cell->name == NULL)
		cell->name = xstrdup(c, id);
	if (cell->id == NULL || cell->name == NULL)
		goto drop;

	old = strmap_insert(&cfg->index->cells, cfg->cells, sizeof(*cfg->cells),
	                    (uint32_t)cfg->n_cells);
	if (old == -2) {
		oom(c);
		goto drop;
	}
	if (old >= 0) {
		const struct loc *l = &c->cell_loc[old];

		if (l->file == f[CF_ID]->file)
			err_at(c, f[CF_ID], "duplicate cell id '%s' (first at "
			       "line %d)", show(id, b, sizeof(b)), l->line);
		else
			err_at(c, f[CF_ID], "duplicate cell id '%s' (first "
			       "at %s:%d)", show(id, b, sizeof(b)), c->path,
			       l->line);
		goto drop;
	}
	c->cell_loc[cfg->n_cells] = (struct loc){ f[CF_ID]->file,
	                                          f[CF_ID]->line };
	cfg->n_cells++;
	return;
drop:
	cell_free(cell);
}

static void
v_cells(struct ctx *c, const struct node *seq)
{
	if (!want_seq(c, seq, "cells"))
		return;
	for (size_t i = 0; i < seq->n && !c->oom; i++) {
		const struct node *m = seq->kid[i];
		struct node *f[CF_N] = { 0 };

		if (m->bad)
			continue;
		if (m->type != N_MAP) {
			err_at(c, m, "each cell must be a mapping with at least "
			       "an id, not %s", type_name(m));
			continue;
		}
		FOR_PAIRS(m, k, v) {
			int fi = cell_field_lookup(k->s);

			if (fi < 0)
				unknown_key(c, k, "cells");
			else
				f[fi] = v;
		}
		add_cell(c, f, m);
	}
}

/* ------------------------------------------------------------------ */
/* cells_file (CSV)                                                    */

static int
read_file(const char *path, char **buf, size_t *len, const char **what)
{
	size_t cap = 0, n = 0;
	char *b = NULL;
	int fd, saved;

	*what = "cannot open";
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	*what = "cannot read";
	{
		struct stat st;

		/* Sized from fstat so a big cells file is not held twice
		 * while the buffer doubles; the loop still copes with files
		 * that grow or report no size. */
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
		    st.st_size > 0 && (uintmax_t)st.st_size < MAX_FILE_SIZE) {
			cap = (size_t)st.st_size + 1;
			b = malloc(cap + 1);
			if (b == NULL)
				goto fail;
		}
	}
	for (;;) {
		ssize_t r;

		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 65536;
			char *nb;

			if (cap >= MAX_FILE_SIZE) {
				errno = EFBIG;
				goto fail;
			}
			nb = realloc(b, ncap + 1);
			if (nb == NULL)
				goto fail;
			b = nb;
			cap = ncap;
		}
		r = read(fd, b + n, cap - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	b[n] = '\0';
	*buf = b;
	*len = n;
	return 0;
fail:
	saved = errno;
	free(b);
	close(fd);
	errno = saved;
	return -1;
}

struct csv {
	struct ctx *c;
	const char *buf;
	size_t len, pos;
	int line, col;   /* of buf[pos], 1-based, columns in characters */
	char *scratch;   /* unescaped fields of the current record */
	size_t s_len, s_cap;
	struct csv_field {
		size_t off;  /* into scratch */
		int line, col;
	} *f;
	size_t n_f, cap_f;
};

static void
csv_advance(struct csv *p)
{
	unsigned char ch = (unsigned char)p->buf[p->pos++];

	if (ch == '\n') {
		p->line++;
		p->col = 1;
	} else if ((ch & 0xC0) != 0x80) {
		/* Counted at the lead byte: the column is in characters,
		 * like libyaml's, so an editor's column matches. */
		p->col++;
	}
}

static int
csv_put(struct csv *p, char ch)
{
	if (p->s_len == p->s_cap) {
		size_t ncap = p->s_cap ? p->s_cap * 2 : 256;
		char *ns = realloc(p->scratch, ncap);

		if (ns == NULL) {
			oom(p->c);
			return -1;
		}
		p->scratch = ns;
		p->s_cap = ncap;
	}
	p->scratch[p->s_len++] = ch;
	return 0;
}

static bool
csv_at_eol(const struct csv *p)
{
	return p->pos >= p->len || p->buf[p->pos] == '\n' ||
	       (p->buf[p->pos] == '\r' && p->pos + 1 < p->len &&
	        p->buf[p->pos + 1] == '\n') ||
	       (p->buf[p->pos] == '\r' && p->pos + 1 == p->len);
}

static void
csv_skip_eol(struct csv *p)
{
	if (p->pos < p->len && p->buf[p->pos] == '\r')
		csv_advance(p);
	if (p->pos < p->len && p->buf[p->pos] == '\n')
		csv_advance(p);
}

/* After a malformed field the rest of its line is noise; resume at the
 * next line so that later rows are still checked. */
static void
csv_skip_line(struct csv *p)
{
	while (!csv_at_eol(p))
		csv_advance(p);
	csv_skip_eol(p);
}

/* Reads one record (RFC 4180: "" escapes a quote inside a quoted field,
 * which may span lines; CRLF or LF ends a record). Returns 1 with fields
 * in p->f, 0 at end of input, -1 for a malformed record (reported and
 * skipped), -2 when out of memory. */
static int
csv_record(struct csv *p)
{
	/* Blank lines carry no row; spreadsheets leave them. */
	while (p->pos < p->len && csv_at_eol(p))
		csv_skip_eol(p);
	if (p->pos >= p->len)
		return 0;
	p->s_len = 0;
	p->n_f = 0;
	for (;;) {
		struct csv_field fld = { p->s_len, p->line, p->col };

		if (p->n_f == p->cap_f) {
			size_t ncap = p->cap_f ? p->cap_f * 2 : 16;
			struct csv_field *nf = realloc(p->f,
			                               ncap * sizeof(*nf));

			if (nf == NULL) {
				oom(p->c);
				return -2;
			}
			p->f = nf;
			p->cap_f = ncap;
		}
		if (p->pos < p->len && p->buf[p->pos] == '"') {
			csv_advance(p);
			for (;;) {
				if (p->pos >= p->len) {
					err_pos(p->c, FILE_CSV, fld.line,
					        fld.col, "quoted field is not "
					        "closed");
					return -1;
				}
				if (p->buf[p->pos] == '"') {
					csv_advance(p);
					if (p->pos >= p->len ||
					    p->buf[p->pos] != '"')
						break;
				}
				if (csv_put(p, p->buf[p->pos]) < 0)
					return -2;
				csv_advance(p);
			}
			if (!csv_at_eol(p) && p->buf[p->pos] != ',') {
				err_pos(p->c, FILE_CSV, p->line, p->col,
				        "unexpected text after a closing quote "
				        "(write a quote inside a quoted field "
				        "as \"\")");
				csv_skip_line(p);
				return -1;
			}
		} else {
			while (!csv_at_eol(p) && p->buf[p->pos] != ',') {
				if (p->buf[p->pos] == '"') {
					err_pos(p->c, FILE_CSV, p->line,
					        p->col, "quote inside an "
					        "unquoted field (quote the "
					        "whole field and write the "
					        "quote as \"\")");
					csv_skip_line(p);
					return -1;
				}
				if (csv_put(p, p->buf[p->pos]) < 0)
					return -2;
				csv_advance(p);
			}
		}
		if (csv_put(p, '\0') < 0)
			return -2;
		p->f[p->n_f++] = fld;
		if (csv_at_eol(p)) {
			csv_skip_eol(p);
			return 1;
		}
		csv_advance(p); /* the comma */
	}
}

/* Turns one `;`-separated field into a list node whose items point into
 * the field's text; `items` receives the array to free afterwards. */
static int
csv_list(struct ctx *c, struct node *field, struct node *list,
         struct node **items, struct node ***itemp)
{
	size_t n = 1, k = 0;
	char *s;

	for (s = field->s; *s != '\0'; s++)
		n += *s == ';';
	*items = calloc(n, sizeof(**items));
	*itemp = calloc(n, sizeof(**itemp));
	if (*items == NULL || *itemp == NULL) {
		oom(c);
		return -1;
	}
	for (s = field->s;; s++) {
		char *e = strchr(s, ';');

		if (e != NULL)
			*e = '\0';
		(*items)[k] = (struct node){
			.type = N_SCALAR, .file = FILE_CSV, .line = field->line,
			.col = field->col, .s = s, .len = strlen(s),
		};
		(*itemp)[k] = &(*items)[k];
		k++;
		if (e == NULL)
			break;
		s = e;
	}
	*list = *field;
	list->type = N_SEQ;
	list->kid = *itemp;
	list->n = k;
	return 0;
}

/* Reads the header, then turns every row into a cell. */
static void
csv_rows(struct ctx *c, struct csv *p)
{
	int col_of[CF_N], fields_of[CF_N * 2];
	size_t n_cols = 0;
	bool have_header = false;
	int r;

	for (int i = 0; i < CF_N; i++)
		col_of[i] = -1;
	while ((r = csv_record(p)) != 0) {
		struct node nodes[CF_N], lists[2], row, *f[CF_N] = { 0 };
		struct node *items[2] = { 0 }, **itemp[2] = { 0 };
		const struct csv_field *first;

		if (r == -2)
			return;
		if (r < 0)
			continue;
		first = &p->f[0];
		if (!have_header) {
			have_header = true;
			n_cols = p->n_f;
			if (n_cols > sizeof(fields_of) / sizeof(fields_of[0])) {
				err_pos(c, FILE_CSV, first->line, first->col,
				        "the header has too many columns");
				return;
			}
			for (size_t i = 0; i < n_cols; i++) {
				const char *name = p->scratch + p->f[i].off;
				int fi = cell_field_lookup(name);
				char b[SHOW_MAX];

				fields_of[i] = -1;
				if (fi < 0)
					err_pos(c, FILE_CSV, p->f[i].line,
					        p->f[i].col, "unknown column '%s' "
					        "(use id, name, interval, grace, "
					        "active, repeat, workers, tags)",
					        show(name, b, sizeof(b)));
				else if (col_of[fi] >= 0)
					err_pos(c, FILE_CSV, p->f[i].line,
					        p->f[i].col, "duplicate column "
					        "'%s'", name);
				else
					col_of[fi] = (int)i, fields_of[i] = fi;
			}
			if (col_of[CF_ID] < 0) {
				err_pos(c, FILE_CSV, first->line, first->col,
				        "the header has no id column");
				return;
			}
			continue;
		}
		if (p->n_f != n_cols) {
			err_pos(c, FILE_CSV, first->line, first->col,
			        "row has %zu fields but the header has %zu",
			        p->n_f, n_cols);
			continue;
		}
		/* Fields become scalar nodes placed in the CSV file, and
		 * `;`-lists become list nodes, so add_cell validates them
		 * exactly like YAML values. An empty field is absent. */
		row = (struct node){ .type = N_MAP, .file = FILE_CSV,
		                     .line = first->line, .col = first->col };
		for (size_t i = 0; i < n_cols; i++) {
			int fi = fields_of[i];
			char *s = p->scratch + p->f[i].off;

			if (fi < 0 || *s == '\0')
				continue;
			nodes[fi] = (struct node){
				.type = N_SCALAR, .file = FILE_CSV,
				.line = p->f[i].line, .col = p->f[i].col,
				.s = s, .len = strlen(s),
			};
			f[fi] = &nodes[fi];
		}
		for (int li = 0; li < 2; li++) {
			int fi = li == 0 ? CF_WORKERS : CF_TAGS;

			if (f[fi] == NULL)
				continue;
			if (csv_list(c, f[fi], &lists[li], &items[li],
			             &itemp[li]) < 0)
				break;
			f[fi] = &lists[li];
		}
		if (!c->oom)
			add_cell(c, f, &row);
		for (int li = 0; li < 2; li++) {
			free(items[li]);
			free(itemp[li]);
		}
		if (c->oom)
			return;
	}
	if (!have_header)
		err_pos(c, FILE_CSV, 1, 1, "the file is empty: it needs a "
		        "header line such as id,name,interval,grace,active,"
		        "workers,tags");
}

static void
v_cells_file(struct ctx *c, const struct node *v)
{
	struct config *cfg = c->cfg;
	const char *slash, *err_what;
	char *buf = NULL, b[SHOW_MAX];
	size_t len = 0, start = 0;
	struct csv p = { 0 };
	const char *name = get_scalar(c, v, "cells_file");

	if (name == NULL)
		return;
	if (*name == '\0') {
		err_at(c, v, "cells_file must not be empty");
		return;
	}
	slash = strrchr(c->path, '/');
	if (name[0] == '/' || slash == NULL) {
		cfg->cells_file = xstrdup(c, name);
	} else if (asprintf(&cfg->cells_file, "%.*s/%s",
	                    (int)(slash - c->path), c->path, name) < 0) {
		cfg->cells_file = NULL;
		oom(c);
	}
	if (cfg->cells_file == NULL)
		return;
	if (read_file(cfg->cells_file, &buf, &len, &err_what) < 0) {
		err_at(c, v, "cells_file '%s': %s: %s",
		       show(cfg->cells_file, b, sizeof(b)), err_what,
		       strerror(errno));
		return;
	}
	/* Validate the encoding once up front: every later column count and
	 * message can then assume well-formed text. */
	if (!text_ok(c, FILE_CSV, buf, len)) {
		free(buf);
		return;
	}
	p.c = c;
	p.buf = buf;
	p.len = len;
	/* Spreadsheet programs write a byte order mark; it is not data. */
	if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
		start = 3;
	p.pos = start;
	p.line = 1;
	p.col = 1;
	csv_rows(c, &p);
	free(p.scratch);
	free(p.f);
	free(buf);
}

/* ------------------------------------------------------------------ */
/* alerts                                                              */

static const char *const kind_names[] = {
	"overdue", "recovered", "event", "reading", "digest", "system",
};

const char *
config_kind_name(unsigned kind)
{
	for (size_t i = 0; i < sizeof(kind_names) / sizeof(kind_names[0]); i++)
		if (kind == 1u << i)
			return kind_names[i];
	return NULL;
}

static void
v_kinds(struct ctx *c, struct config_sink *s, const struct node *seq)
{
	unsigned mask = 0;
	bool ok = true;

	if (!want_seq(c, seq, "kinds"))
		return;
	for (size_t i = 0; i < seq->n; i++) {
		const char *name = get_scalar(c, seq->kid[i], "kind");
		char b[SHOW_MAX];
		size_t j;

		if (name == NULL) {
			ok = false;
			continue;
		}
		for (j = 0; j < sizeof(kind_names) / sizeof(kind_names[0]); j++)
			if (strcmp(name, kind_names[j]) == 0)
				break;
		if (j == sizeof(kind_names) / sizeof(kind_names[0])) {
			err_at(c, seq->kid[i], "unknown alert kind '%s' (use "
			       "overdue, recovered, event, reading, digest, "
			       "system)", show(name, b, sizeof(b)));
			ok = false;
			continue;
		}
		mask |= 1u << j;
	}
	if (!ok)
		return;
	if (mask == 0) {
		err_at(c, seq, "kinds must name at least one alert kind");
		return;
	}
	s->kinds = mask;
}

/* A publish topic: no wildcards, and braces only as {cell} or {kind}. */
static const char *
sink_topic_problem(const char *t)
{
	if (strlen(t) > 65535)
		return "is longer than 65535 bytes";
	for (const char *p = t; *p != '\0'; p++) {
		if (*p == '+' || *p == '#')
			return "must not contain the MQTT wildcards + or #";
		if (*p == '{') {
			if (strncmp(p, "{cell}", 6) != 0 &&
			    strncmp(p, "{kind}", 6) != 0)
				return "may only use the placeholders {cell} "
				       "and {kind}";
			p += 5;
		} else if (*p == '}') {
			return "may only use the placeholders {cell} and "
			       "{kind}";
		}
	}
	return NULL;
}

static void
v_sink(struct ctx *c, struct config_sink *s, const struct node *m,
       int *name_line, size_t idx)
{
	const struct node *exec = NULL, *topic = NULL, *name = NULL;
	char b[SHOW_MAX];

	s->timeout_s = 30;
	s->kinds = CONFIG_KIND_ALL;
	s->type = CONFIG_SINK_EXEC;
	FOR_PAIRS(m, k, v) {
		if (key_is(k, "name")) {
			if (!get_str(c, v, "name", &s->name))
				continue;
			name = v;
			/* It is part of every delivery_id. */
			if (!topic_segment_valid(s->name, strlen(s->name))) {
				err_at(c, v, "invalid sink name '%s': %s",
				       show(s->name, b, sizeof(b)),
				       segment_rule);
				continue;
			}
			name_line[idx] = v->line;
			for (size_t j = 0; j < idx; j++) {
				struct config_sink *o = &c->cfg->alerts.sinks[j];

				if (o->name != NULL && name_line[j] > 0 &&
				    strcmp(o->name, s->name) == 0) {
					err_at(c, v, "duplicate sink name '%s' "
					       "(first at line %d)",
					       show(s->name, b, sizeof(b)),
					       name_line[j]);
					break;
				}
			}
		} else if (key_is(k, "exec")) {
			exec = v;
			if (get_strlist(c, v, "exec", "exec argument", false,
			                &s->argv, &s->argc) && s->argc == 0)
				err_at(c, v, "exec must name a program");
		} else if (key_is(k, "topic")) {
			const char *why;

			topic = v;
			if (!get_str(c, v, "topic", &s->topic))
				continue;
			why = sink_topic_problem(s->topic);
			if (why != NULL)
				err_at(c, v, "sink topic %s", why);
		} else if (key_is(k, "timeout")) {
			get_dur_pos(c, v, "timeout", &s->timeout_s);
		} else if (key_is(k, "group_window")) {
			get_dur(c, v, "group_window", &s->group_window_s);
		} else if (key_is(k, "kinds")) {
			v_kinds(c, s, v);
		} else {
			unknown_key(c, k, "alerts.sinks");
		}
	}
	if (name == NULL && !m->bad)
		err_at(c, m, "a sink needs a name");
	if (exec != NULL && topic != NULL)
		err_at(c, topic, "a sink has either exec or topic, not both");
	else if (exec == NULL && topic == NULL)
		err_at(c, m, "a sink needs exec (a program to run) or topic "
		       "(an MQTT topic to publish to)");
	if (topic != NULL && exec == NULL)
		s->type = CONFIG_SINK_MQTT;
}

static void
v_sinks(struct ctx *c, const struct node *seq)
{
	struct config *cfg = c->cfg;
	int *name_line;

	if (!want_seq(c, seq, "sinks"))
		return;
	if (seq->n > CONFIG_SINKS_MAX) {
		err_at(c, seq, "at most %d sinks, not %zu", CONFIG_SINKS_MAX,
		       seq->n);
		return;
	}
	cfg->alerts.sinks = calloc(seq->n + 1, sizeof(*cfg->alerts.sinks));
	name_line = calloc(seq->n + 1, sizeof(*name_line));
	if (cfg->alerts.sinks == NULL || name_line == NULL) {
		free(name_line);
		oom(c);
		return;
	}
	for (size_t i = 0; i < seq->n && !c->oom; i++) {
		const struct node *m = seq->kid[i];

		if (m->bad)
			continue;
		if (m->type != N_MAP) {
			err_at(c, m, "each sink must be a mapping, not %s",
			       type_name(m));
			continue;
		}
		v_sink(c, &cfg->alerts.sinks[cfg->alerts.n_sinks], m,
		       name_line, cfg->alerts.n_sinks);
		cfg->alerts.n_sinks++;
	}
	free(name_line);
}

static void
v_escalate(struct ctx *c, const struct node *m)
{
	struct config *cfg = c->cfg;
	const struct node *after = NULL, *to = NULL;
	long long n;

	if (!want_map(c, m, "escalate"))
		return;
	FOR_PAIRS(m, k, v) {
		if (key_is(k, "after")) {
			if (get_int(c, v, "after", 0, 1000000, &n)) {
				cfg->alerts.escalate_after = (int)n;
				after = v;
			}
		} else if (key_is(k, "to")) {
			if (get_strlist(c, v, "to", "escalation name", false,
			                &cfg->alerts.escalate_to,
			                &cfg->alerts.n_escalate_to))
				to = v;
		} else {
			unknown_key(c, k, "alerts.escalate");
		}
	}
	if (after != NULL && cfg->alerts.escalate_after > 0 &&
	    (to == NULL || cfg->alerts.n_escalate_to == 0))
		err_at(c, after, "escalate.after needs a non-empty "
		       "escalate.to");
}

static void
v_retry(struct ctx *c, const struct node *m)
{
	struct config *cfg = c->cfg;
	const struct node *min = NULL, *max = NULL;
	char b1[32], b2[32];

	if (!want_map(c, m, "retry"))
		return;
	FOR_PAIRS(m, k, v) {
		if (key_is(k, "min"))
			min = get_dur_pos(c, v, "min",
			                  &cfg->alerts.retry_min_s) ? v : min;
		else if (key_is(k, "max"))
			max = get_dur_pos(c, v, "max",
			                  &cfg->alerts.retry_max_s) ? v : max;
		else if (key_is(k, "give_up_after"))
			get_dur(c, v, "give_up_after",
			        &cfg->alerts.give_up_after_s);
		else
			unknown_key(c, k, "alerts.retry");
	}
	if ((min != NULL || max != NULL) &&
	    cfg->alerts.retry_min_s > cfg->alerts.retry_max_s)
		err_at(c, max != NULL ? max : min, "retry min (%s) must not "
		       "be longer than retry max (%s)",
		       fmt_dur(cfg->alerts.retry_min_s, b1, sizeof(b1)),
		       fmt_dur(cfg->alerts.retry_max_s, b2, sizeof(b2)));
}

static void
v_alerts(struct ctx *c, const struct node *m)
{
	struct config *cfg = c->cfg;
	const char *s;
	char b[SHOW_MAX];
	int min;

	if (!want_map(c, m, "alerts"))
		return;
	FOR_PAIRS(m, k, v) {
		if (key_is(k, "sinks")) {
			v_sinks(c, v);
		} else if (key_is(k, "escalate")) {
			v_escalate(c, v);
		} else if (key_is(k, "daily_digest")) {
			s = get_scalar(c, v, "daily_digest");
			if (s == NULL)
				continue;
			if (strcmp(s, "off") == 0)
				cfg->alerts.daily_digest_min = -1;
			else if (units_clock(s, false, &min) == 0)
				cfg->alerts.daily_digest_min = min;
			else
				err_at(c, v, "invalid time '%s' for "
				       "daily_digest (use HH:MM from 00:00 to "
				       "23:59, or off)", show(s, b, sizeof(b)));
		} else if (key_is(k, "language")) {
			s = get_scalar(c, v, "language");
			if (s == NULL)
				continue;
			if (strcmp(s, "zh-CN") != 0 && strcmp(s, "en") != 0)
				err_at(c, v, "language must be zh-CN or en, "
				       "not '%s'", show(s, b, sizeof(b)));
			else
				get_str(c, v, "language",
				        &cfg->alerts.language);
		} else if (key_is(k, "startup_grace")) {
			get_dur(c, v, "startup_grace",
			        &cfg->alerts.startup_grace_s);
		} else if (key_is(k, "system_after")) {
			get_dur_pos(c, v, "system_after",
			            &cfg->alerts.system_after_s);
		} else if (key_is(k, "retry")) {
			v_retry(c, v);
		} else {
			unknown_key(c, k, "alerts");
		}
	}
}

/* ------------------------------------------------------------------ */
/* Top level                                                           */

enum section {
	S_MQTT, S_STORAGE, S_TIMEZONE, S_DEFAULTS, S_CELLS, S_CELLS_FILE,
	S_LIMITS, S_EVENTS, S_ALERTS, S_N
};

/* Deduplication needs the first copy's row. With retention shorter than
 * max_backfill a late message could be accepted, pruned, and accepted
 * again when the device or broker sends it once more; with retention at
 * least max_backfill, anything old enough to be pruned is too_old. */
static void
v_retention_backfill(struct ctx *c)
{
	const struct config *cfg = c->cfg;
	const struct node *at = c->retention_at ? c->retention_at :
	                        c->max_backfill_at;

	if (at == NULL || cfg->storage.retention_s == 0 ||
	    cfg->storage.retention_s >= cfg->limits.max_backfill_s)
		return;
	err_at(c, at, "storage.retention (%llds) must be 0 or at least "
	       "limits.max_backfill (%llds): a late message removed by "
	       "retention could otherwise be stored again when resent",
	       (long long)cfg->storage.retention_s,
	       (long long)cfg->limits.max_backfill_s);
}

static const char *const section_names[S_N] = {
	"mqtt", "storage", "timezone", "defaults", "cells", "cells_file",
	"limits", "events", "alerts",
};

static void
v_root(struct ctx *c, const struct node *root)
{
	const struct node *sec[S_N] = { 0 };

	if (root != NULL && root->type == N_MAP) {
		FOR_PAIRS(root, k, v) {
			int i;

			for (i = 0; i < S_N; i++)
				if (key_is(k, section_names[i]))
					break;
			if (i < S_N) {
				sec[i] = v;
			} else {
				char b[SHOW_MAX];

				err_at(c, k, "unknown key '%s' (sections are "
				       "mqtt, storage, timezone, defaults, "
				       "cells, cells_file, limits, events, "
				       "alerts)", show(k->s, b, sizeof(b)));
			}
		}
	} else if (root != NULL && !root->bad && !is_null(root)) {
		err_at(c, root, "the configuration must be a mapping of "
		       "sections, not %s", type_name(root));
	}
	/* Order matters: cells inherit `defaults`, and cells_file rows are
	 * checked against the YAML cells for duplicates. */
	v_mqtt(c, sec[S_MQTT]);
	if (sec[S_STORAGE] != NULL)
		v_storage(c, sec[S_STORAGE]);
	if (sec[S_TIMEZONE] != NULL)
		v_timezone(c, sec[S_TIMEZONE]);
	if (sec[S_DEFAULTS] != NULL)
		v_defaults(c, sec[S_DEFAULTS]);
	if (sec[S_LIMITS] != NULL)
		v_limits(c, sec[S_LIMITS]);
	v_retention_backfill(c);
	if (sec[S_EVENTS] != NULL && !c->oom)
		v_events(c, sec[S_EVENTS]);
	if (sec[S_CELLS] != NULL && !c->oom)
		v_cells(c, sec[S_CELLS]);
	if (sec[S_CELLS_FILE] != NULL && !c->oom)
		v_cells_file(c, sec[S_CELLS_FILE]);
	if (sec[S_ALERTS] != NULL && !c->oom)
		v_alerts(c, sec[S_ALERTS]);
}

static struct config *
config_new(struct ctx *c, const char *path)
{
	struct config *cfg = calloc(1, sizeof(*cfg));

	if (cfg == NULL) {
		oom(c);
		return NULL;
	}
	cfg->index = calloc(1, sizeof(*cfg->index));
	cfg->path = xstrdup(c, path);
	cfg->mqtt.host = xstrdup(c, "127.0.0.1");
	cfg->mqtt.port = 1883;
	cfg->mqtt.client_id = xstrdup(c, "gridpatrold");
	cfg->mqtt.topic = xstrdup(c, "patrol/{cell}/{worker}/{event}");
	cfg->mqtt.tmpl.cell_idx = cfg->mqtt.tmpl.worker_idx = -1;
	cfg->mqtt.tmpl.event_idx = -1;
	cfg->mqtt.protocol = 4;
	cfg->mqtt.keepalive_s = 60;
	cfg->mqtt.session_expiry_s = 0xFFFFFFFF;
	cfg->storage.path = xstrdup(c, "/var/lib/gridpatrol/patrol.db");
	cfg->storage.retention_s = 400 * 86400;
	cfg->storage.max_size = 0;
	cfg->storage.max_rejected = 100000;
	cfg->storage.sync_full = true;
	cfg->timezone = xstrdup(c, "Asia/Shanghai");
	cfg->defaults.interval_s = 4 * 3600;
	cfg->defaults.grace_s = 15 * 60;
	cfg->defaults.repeat_s = 2 * 3600;
	cfg->defaults.active = (struct units_active){ false, 7 * 60, 19 * 60 };
	cfg->limits.max_payload = 8192;
	cfg->limits.max_clock_skew_s = 5 * 60;
	cfg->limits.max_backfill_s = 7 * 86400;
	cfg->limits.late_after_s = 10 * 60;
	cfg->alerts.escalate_after = 0;
	cfg->alerts.daily_digest_min = 20 * 60;
	cfg->alerts.language = xstrdup(c, "zh-CN");
	cfg->alerts.startup_grace_s = 5 * 60;
	cfg->alerts.system_after_s = 10 * 60;
	cfg->alerts.retry_min_s = 10;
	cfg->alerts.retry_max_s = 30 * 60;
	cfg->alerts.give_up_after_s = 24 * 3600;
	if (cfg->index == NULL)
		oom(c);
	return cfg;
}

int
config_load(const char *path, struct config **out, struct config_errors *errs)
{
	struct ctx c = { 0 };
	struct node *root = NULL;
	const char *err_what;
	char *buf = NULL;
	size_t len = 0;

	if (out != NULL)
		*out = NULL;
	if (path == NULL)
		path = CONFIG_DEFAULT_PATH;
	c.path = path;
	c.cfg = config_new(&c, path);
	if (c.cfg == NULL)
		goto done;
	if (read_file(path, &buf, &len, &err_what) < 0) {
		err_pos(&c, FILE_YAML, 1, 1, "%s: %s", err_what,
		        strerror(errno));
		goto done;
	}
	if (c.oom)
		goto done;
	/* libyaml reports bad UTF-8 at the byte after the damage; checking
	 * first points at the damage itself. UTF-16 files (with their byte
	 * order mark) are left to libyaml. */
	if (!(len >= 2 && ((unsigned char)buf[0] == 0xFF ||
	                   (unsigned char)buf[0] == 0xFE))) {
		if (!text_ok(&c, FILE_YAML, buf, len))
			goto done;
	}
	if (yaml_to_tree(&c, (const unsigned char *)buf, len, &root) < 0)
		goto done;
	if (root != NULL)
		check_keys(&c, root);
	if (!c.oom)
		v_root(&c, root);
done:
	node_free(root);
	free(buf);
	free(c.cell_loc);
	if (c.n_errs > 0 || c.oom || c.cfg == NULL) {
		if (c.cfg == NULL)
			oom(&c);
		errs_flush(&c, errs);
		config_free(c.cfg);
		return -1;
	}
	free(c.errs);
	/* Without `out` the caller only wanted the check. */
	if (out != NULL)
		*out = c.cfg;
	else
		config_free(c.cfg);
	return 0;
}

void
config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->path);
	free(cfg->mqtt.host);
	free(cfg->mqtt.client_id);
	free(cfg->mqtt.topic);
	topic_template_free(&cfg->mqtt.tmpl);
	free(cfg->mqtt.username);
	free(cfg->mqtt.password_file);
	free(cfg->mqtt.password_credential);
	free(cfg->mqtt.ca_file);
	free(cfg->mqtt.ca_path);
	free(cfg->mqtt.cert_file);
	free(cfg->mqtt.key_file);
	free(cfg->storage.path);
	free(cfg->timezone);
	for (size_t i = 0; i < cfg->n_cells; i++)
		cell_free(&cfg->cells[i]);
	free(cfg->cells);
	free(cfg->cells_file);
	for (size_t i = 0; i < cfg->n_events; i++) {
		free(cfg->events[i].name);
		free(cfg->events[i].label);
		free(cfg->events[i].unit);
	}
	free(cfg->events);
	for (size_t i = 0; i < cfg->alerts.n_sinks; i++) {
		struct config_sink *s = &cfg->alerts.sinks[i];

		free(s->name);
		free(s->argv);
		free(s->topic);
	}
	free(cfg->alerts.sinks);
	free(cfg->alerts.escalate_to);
	free(cfg->alerts.language);
	if (cfg->index != NULL) {
		strmap_free(&cfg->index->cells);
		strmap_free(&cfg->index->events);
		free(cfg->index);
	}
	free(cfg);
}

void
config_errors_free(struct config_errors *errs)
{
	if (errs == NULL)
		return;
	free_strv(errs->v, errs->n);
	errs->v = NULL;
	errs->n = 0;
}

const struct config_cell *
config_cell_find(const struct config *cfg, const char *id)
{
	int64_t i;

	if (cfg == NULL || cfg->index == NULL)
		return NULL;
	i = strmap_find(&cfg->index->cells, cfg->cells, sizeof(*cfg->cells), id);
	return i >= 0 ? &cfg->cells[i] : NULL;
}

const struct config_event *
config_event_find(const struct config *cfg, const char *name)
{
	int64_t i;

	if (cfg == NULL || cfg->index == NULL)
		return NULL;
	i = strmap_find(&cfg->index->events, cfg->events, sizeof(*cfg->events),
	                name);
	return i >= 0 ? &cfg->events[i] : NULL;
}
