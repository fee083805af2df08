/*
 * config_yaml: the first two passes of config (see config.c): the file's
 * bytes, checked as UTF-8 text, turned by libyaml's event parser into the
 * private node tree that remembers where each value started, and every
 * mapping of it checked for duplicate keys. Anchors, aliases, tags, a
 * second document and nesting past MAX_DEPTH are refused here, so that the
 * validators only ever see plain scalars, lists and mappings.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "config_impl.h"
#include "utf8.h"

/* Deep enough for any sensible configuration (the schema needs 5 levels),
 * shallow enough that the recursive passes cannot exhaust the stack. */
#define MAX_DEPTH 32
/* A bound on file size keeps a mistaken path (a disk image, /dev/zero)
 * from eating the machine; a million cells of CSV fit easily. */
#define MAX_FILE_SIZE ((size_t)1 << 30)

/* ------------------------------------------------------------------ */
/* Files                                                               */

int config_read_file(const char *path, char **buf, size_t *len, const char **what)
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
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
		    (uintmax_t)st.st_size < MAX_FILE_SIZE) {
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

/* ------------------------------------------------------------------ */
/* Nodes                                                               */

void config_node_free(struct node *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->n; i++)
		config_node_free(n->kid[i]);
	free(n->kid);
	free(n->s);
	free(n);
}

static struct node *node_new(struct ctx *c, enum ntype type, int file, int line, int col)
{
	struct node *n = calloc(1, sizeof(*n));

	if (n == NULL) {
		config_oom(c);
		return NULL;
	}
	n->type = type;
	n->file = file;
	n->line = line;
	n->col = col;
	return n;
}

static int node_add(struct ctx *c, struct node *parent, struct node *kid)
{
	if (parent->n == parent->cap) {
		size_t ncap = parent->cap ? parent->cap * 2 : 4;
		struct node **k = realloc(parent->kid, ncap * sizeof(*k));

		if (k == NULL) {
			config_oom(c);
			return -1;
		}
		parent->kid = k;
		parent->cap = ncap;
	}
	parent->kid[parent->n++] = kid;
	return 0;
}

static struct node *scalar_new(struct ctx *c, int file, int line, int col, const char *s,
                               size_t len, bool plain)
{
	struct node *n = node_new(c, N_SCALAR, file, line, col);

	if (n == NULL)
		return NULL;
	n->s = malloc(len + 1);
	if (n->s == NULL) {
		free(n);
		config_oom(c);
		return NULL;
	}
	memcpy(n->s, s, len);
	n->s[len] = '\0';
	n->len = len;
	n->plain = plain;
	return n;
}

bool config_is_null(const struct node *n)
{
	return n->type == N_SCALAR && n->plain &&
	       (n->len == 0 || strcmp(n->s, "~") == 0 || strcmp(n->s, "null") == 0 ||
	        strcmp(n->s, "Null") == 0 || strcmp(n->s, "NULL") == 0);
}

const char *config_type_name(const struct node *n)
{
	if (n->type == N_MAP)
		return "a mapping";
	if (n->type == N_SEQ)
		return "a list";
	if (config_is_null(n))
		return "empty";
	return "a single value";
}

/* ------------------------------------------------------------------ */
/* Text encoding                                                       */

/* Reports the first malformed UTF-8 sequence (or NUL byte, which no text
 * file here may contain) of a whole file; false when there is one. The
 * position is counted in characters like libyaml's columns so that an
 * editor's column matches. */
bool config_text_ok(struct ctx *c, int file, const char *buf, size_t len)
{
	size_t bad = utf8_check(buf, len);
	int line, col;

	if (bad == len)
		return true;
	utf8_line_col(buf, len, bad, &line, &col);
	config_err_pos(c, file, line, col,
	               buf[bad] == '\0' ? "NUL byte in the file"
	                                : "not valid UTF-8 text (save the file as UTF-8)");
	return false;
}

/* ------------------------------------------------------------------ */
/* YAML → nodes                                                        */

static void yaml_error(struct ctx *c, const yaml_parser_t *p, const unsigned char *buf, size_t len)
{
	const char *problem = p->problem != NULL ? p->problem : "unknown error";
	int line, col;

	switch (p->error) {
	case YAML_MEMORY_ERROR:
		config_oom(c);
		return;
	case YAML_READER_ERROR:
		/* A byte offset only, and into text that is not UTF-8. */
		utf8_line_col((const char *)buf, len, p->problem_offset, &line, &col);
		config_err_pos(c, FILE_YAML, line, col, "not valid UTF-8 text: %s", problem);
		return;
	default:
		line = (int)p->problem_mark.line + 1;
		col = (int)p->problem_mark.column + 1;
		if (p->context != NULL)
			config_err_pos(c, FILE_YAML, line, col,
			               "YAML syntax error: %s (%s at line %d)", problem, p->context,
			               (int)p->context_mark.line + 1);
		else
			config_err_pos(c, FILE_YAML, line, col, "YAML syntax error: %s", problem);
		return;
	}
}

/* Builds the node tree. Returns -1 when the tree is unusable (syntax
 * error, too deep, a second document): the caller then reports only what
 * was found so far rather than cascading nonsense. */
int config_yaml_to_tree(struct ctx *c, const unsigned char *buf, size_t len, struct node **root)
{
	struct node *stack[MAX_DEPTH];
	yaml_parser_t p;
	yaml_event_t ev;
	int depth = 0, docs = 0, rc = 0;
	bool done = false;

	*root = NULL;
	if (!yaml_parser_initialize(&p)) {
		config_oom(c);
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
				config_err_pos(c, FILE_YAML, line, col,
				               "only one YAML "
				               "document is allowed per file");
				rc = -1;
				done = true;
			}
			break;
		case YAML_ALIAS_EVENT:
			/* Aliases can multiply a small file into a huge
			 * tree, and nothing in this schema needs them. */
			config_err_pos(c, FILE_YAML, line, col, "aliases are not supported");
			n = scalar_new(c, FILE_YAML, line, col, "", 0, false);
			if (n != NULL)
				n->bad = true;
			break;
		case YAML_SCALAR_EVENT:
			n = scalar_new(c, FILE_YAML, line, col, (const char *)ev.data.scalar.value,
			               ev.data.scalar.length,
			               ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE);
			if (n != NULL && ev.data.scalar.tag != NULL) {
				config_err_pos(c, FILE_YAML, line, col,
				               "YAML tags are not supported");
				n->bad = true;
			}
			break;
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (depth == MAX_DEPTH) {
				config_err_pos(c, FILE_YAML, line, col,
				               "nesting deeper "
				               "than %d levels",
				               MAX_DEPTH);
				rc = -1;
				done = true;
				break;
			}
			n = node_new(c, ev.type == YAML_SEQUENCE_START_EVENT ? N_SEQ : N_MAP,
			             FILE_YAML, line, col);
			opens = true;
			if (n != NULL && (ev.type == YAML_SEQUENCE_START_EVENT
			                          ? ev.data.sequence_start.tag
			                          : ev.data.mapping_start.tag) != NULL) {
				config_err_pos(c, FILE_YAML, line, col,
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
			config_node_free(n);
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
			config_node_free(n);
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

static int key_cmp(const struct node *a, const struct node *b)
{
	size_t m = a->len < b->len ? a->len : b->len;
	int r = memcmp(a->s, b->s, m);

	if (r != 0)
		return r;
	return a->len < b->len ? -1 : a->len > b->len;
}

static int key_ptr_cmp(const void *a, const void *b)
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

static void dup_key(struct ctx *c, struct node *first, struct node *dup)
{
	char b[SHOW_MAX];

	err_at(c, dup, "duplicate key '%s' (first at line %d)", config_show(dup->s, b, sizeof(b)),
	       first->line);
	dup->skip = true;
}

/* libyaml accepts duplicate keys silently, and the last one would win:
 * a classic way to lose a setting without noticing. */
void config_check_keys(struct ctx *c, struct node *n)
{
	if (n->type == N_SEQ) {
		for (size_t i = 0; i < n->n; i++)
			config_check_keys(c, n->kid[i]);
		return;
	}
	if (n->type != N_MAP)
		return;
	for (size_t i = 0; i + 1 < n->n; i += 2) {
		struct node *k = n->kid[i];

		if (k->bad) {
			k->skip = true;
		} else if (k->type != N_SCALAR) {
			err_at(c, k, "a key must be a plain name, not %s", config_type_name(k));
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
				if (!n->kid[j]->skip && key_cmp(n->kid[j], k) == 0) {
					dup_key(c, n->kid[j], k);
					break;
				}
			}
		}
	} else {
		struct node **keys = malloc(n->n / 2 * sizeof(*keys));
		size_t nk = 0, first = 0;

		if (keys == NULL) {
			config_oom(c);
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
			config_check_keys(c, n->kid[i + 1]);
}
