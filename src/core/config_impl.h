/*
 * config_impl: private to src/core/config*.c, the four files of the config
 * module; nothing else may include it. It holds what they share: the node
 * tree that config_yaml.c builds from the file, the load context with its
 * error list, and the helpers and typed getters every validator uses. The
 * public interface stays include/core/config.h.
 *
 * The tree is private because its shape follows the needs of the
 * validators (positions, "already reported" marks), not of any caller.
 */
#ifndef GRIDPATROL_CONFIG_IMPL_H
#define GRIDPATROL_CONFIG_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "strmap.h"

/* Shown in messages instead of very long values. */
#define SHOW_MAX 48

enum {
	FILE_YAML = 0,
	FILE_CSV = 1
};

enum ntype {
	N_SCALAR,
	N_SEQ,
	N_MAP
};

struct node {
	enum ntype type;
	bool plain; /* plain scalar style: only these can mean "null" */
	bool bad;   /* already reported (alias, tag): validators stay quiet */
	bool skip;  /* on a key: duplicate, ignore the pair */
	int file;   /* FILE_YAML, or FILE_CSV for fields of cells_file */
	int line, col;
	char *s;           /* scalar text, NUL-terminated */
	size_t len;        /* may differ from strlen(s) when the YAML used "\0" */
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
	const char *path; /* YAML path as given */
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
/* Errors, in config_get.c                                             */

/* Marks the load as out of memory; config_errs_flush reports it once. */
void config_oom(struct ctx *c);
/* Adds "FILE:LINE:COL: message"; err_at takes the position of a node. */
void config_err_pos(struct ctx *c, int file, int line, int col, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));
#define err_at(c, nd, ...) config_err_pos((c), (nd)->file, (nd)->line, (nd)->col, __VA_ARGS__)
/* Hands the errors to the caller sorted by position, and empties the list. */
void config_errs_flush(struct ctx *c, struct config_errors *out);
/* A value as it can be quoted in a message: bounded, one line. */
const char *config_show(const char *s, char *buf, size_t cap);
char *config_xstrdup(struct ctx *c, const char *s);

/* ------------------------------------------------------------------ */
/* Typed getters, in config_get.c: each reports its own error and      */
/* writes only on success                                              */

extern const char *const config_segment_rule;

bool config_want_map(struct ctx *c, const struct node *v, const char *what);
bool config_want_seq(struct ctx *c, const struct node *v, const char *what);
const char *config_get_scalar(struct ctx *c, const struct node *v, const char *what);
bool config_get_str(struct ctx *c, const struct node *v, const char *what, char **dst);
bool config_get_bool(struct ctx *c, const struct node *v, const char *what, bool *out);
bool config_get_int(struct ctx *c, const struct node *v, const char *what, long long min,
                    long long max, long long *out);
bool config_get_num(struct ctx *c, const struct node *v, const char *what, double *out);
bool config_get_dur(struct ctx *c, const struct node *v, const char *what, int64_t *out);
bool config_get_dur_pos(struct ctx *c, const struct node *v, const char *what, int64_t *out);
bool config_get_size(struct ctx *c, const struct node *v, const char *what, int64_t *out);
bool config_get_active(struct ctx *c, const struct node *v, const char *what,
                       struct units_active *out);
bool config_get_strlist(struct ctx *c, const struct node *v, const char *what, const char *item,
                        bool segments, char ***out, size_t *n_out);
bool config_key_is(const struct node *k, const char *name);
void config_unknown_key(struct ctx *c, const struct node *k, const char *where);

/* Every key/value pair of mapping m whose key was not a duplicate. */
#define FOR_PAIRS(m, k, v)                                                                        \
	for (size_t i_ = 0; i_ + 1 < (m)->n; i_ += 2)                                             \
		for (struct node *k = (m)->kid[i_], *v = (m)->kid[i_ + 1]; k != NULL && !k->skip; \
		     k = NULL, (void)v)

/* ------------------------------------------------------------------ */
/* The file and the tree, in config_yaml.c                             */

int config_read_file(const char *path, char **buf, size_t *len, const char **what);
bool config_text_ok(struct ctx *c, int file, const char *buf, size_t len);
int config_yaml_to_tree(struct ctx *c, const unsigned char *buf, size_t len, struct node **root);
void config_check_keys(struct ctx *c, struct node *n);
void config_node_free(struct node *n);
bool config_is_null(const struct node *n);
const char *config_type_name(const struct node *n);

/* ------------------------------------------------------------------ */
/* Cells, in config_cells.c                                            */

void config_v_cells(struct ctx *c, const struct node *seq);
void config_v_cells_file(struct ctx *c, const struct node *v);
void config_cell_free(struct config_cell *cell);

#endif
