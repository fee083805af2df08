/*
 * config_cells: the cells of config (see config.c), from the YAML `cells`
 * list and from the CSV file `cells_file` names. Rows of the CSV are
 * turned into the same kind of nodes as YAML values, so a cell is
 * validated by one piece of code wherever it came from, and a duplicate id
 * is found across both.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_impl.h"
#include "strmap.h"

/* ------------------------------------------------------------------ */
/* cells (YAML and CSV share this)                                     */

enum cell_field {
	CF_ID,
	CF_NAME,
	CF_INTERVAL,
	CF_GRACE,
	CF_ACTIVE,
	CF_REPEAT,
	CF_WORKERS,
	CF_TAGS,
	CF_N
};

static const char *const cell_field_names[CF_N] = {
	"id", "name", "interval", "grace", "active", "repeat", "workers", "tags",
};

static int cell_field_lookup(const char *s)
{
	for (int i = 0; i < CF_N; i++)
		if (strcmp(s, cell_field_names[i]) == 0)
			return i;
	return -1;
}

static struct config_cell *cell_slot(struct ctx *c)
{
	struct config *cfg = c->cfg;

	if (cfg->n_cells == c->cap_cells) {
		size_t ncap = c->cap_cells ? c->cap_cells * 2 : 16;
		struct config_cell *nc;
		struct loc *nl;

		if (ncap > UINT32_MAX - 1) {
			config_oom(c);
			return NULL;
		}
		nc = realloc(cfg->cells, ncap * sizeof(*nc));
		if (nc == NULL) {
			config_oom(c);
			return NULL;
		}
		cfg->cells = nc;
		nl = realloc(c->cell_loc, ncap * sizeof(*nl));
		if (nl == NULL) {
			config_oom(c);
			return NULL;
		}
		c->cell_loc = nl;
		c->cap_cells = ncap;
	}
	return &cfg->cells[cfg->n_cells];
}

void config_cell_free(struct config_cell *cell)
{
	free(cell->id);
	free(cell->name);
	free(cell->workers);
	free(cell->tags);
}

/* One cell from its fields (NULL = absent, take the default). `at` is
 * where the cell starts, for messages about the cell as a whole. Every
 * field is checked even when the id is bad, so all errors show at once. */
static void add_cell(struct ctx *c, struct node *const f[CF_N], const struct node *at)
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
		id = config_get_scalar(c, f[CF_ID], "id");
	if (id != NULL && !topic_segment_valid(id, strlen(id))) {
		/* Devices put the id in topics; anything else could not
		 * be matched, or could reach into other topics. */
		err_at(c, f[CF_ID], "invalid cell id '%s': %s", config_show(id, b, sizeof(b)),
		       config_segment_rule);
		id = NULL;
	}
	if (f[CF_NAME] != NULL)
		config_get_str(c, f[CF_NAME], "name", &cell->name);
	if (f[CF_INTERVAL] != NULL)
		config_get_dur_pos(c, f[CF_INTERVAL], "interval", &cell->interval_s);
	if (f[CF_GRACE] != NULL)
		config_get_dur(c, f[CF_GRACE], "grace", &cell->grace_s);
	if (f[CF_REPEAT] != NULL)
		config_get_dur(c, f[CF_REPEAT], "repeat", &cell->repeat_s);
	if (f[CF_ACTIVE] != NULL)
		config_get_active(c, f[CF_ACTIVE], "active", &cell->active);
	if (f[CF_WORKERS] != NULL)
		config_get_strlist(c, f[CF_WORKERS], "workers", "worker id", true, &cell->workers,
		                   &cell->n_workers);
	if (f[CF_TAGS] != NULL)
		config_get_strlist(c, f[CF_TAGS], "tags", "tag", false, &cell->tags, &cell->n_tags);
	if (id == NULL)
		goto drop;
	cell->id = config_xstrdup(c, id);
	if (cell->name == NULL)
		cell->name = config_xstrdup(c, id);
	if (cell->id == NULL || cell->name == NULL)
		goto drop;

	old = strmap_insert(&cfg->index->cells, cfg->cells, sizeof(*cfg->cells),
	                    (uint32_t)cfg->n_cells);
	if (old == -2) {
		config_oom(c);
		goto drop;
	}
	if (old >= 0) {
		const struct loc *l = &c->cell_loc[old];

		if (l->file == f[CF_ID]->file)
			err_at(c, f[CF_ID],
			       "duplicate cell id '%s' (first at "
			       "line %d)",
			       config_show(id, b, sizeof(b)), l->line);
		else
			err_at(c, f[CF_ID],
			       "duplicate cell id '%s' (first "
			       "at %s:%d)",
			       config_show(id, b, sizeof(b)), c->path, l->line);
		goto drop;
	}
	c->cell_loc[cfg->n_cells] = (struct loc){ f[CF_ID]->file, f[CF_ID]->line };
	cfg->n_cells++;
	return;
drop:
	config_cell_free(cell);
}

void config_v_cells(struct ctx *c, const struct node *seq)
{
	if (!config_want_seq(c, seq, "cells"))
		return;
	for (size_t i = 0; i < seq->n && !c->oom; i++) {
		const struct node *m = seq->kid[i];
		struct node *f[CF_N] = { 0 };

		if (m->bad)
			continue;
		if (m->type != N_MAP) {
			err_at(c, m,
			       "each cell must be a mapping with at least "
			       "an id, not %s",
			       config_type_name(m));
			continue;
		}
		FOR_PAIRS (m, k, v) {
			int fi = cell_field_lookup(k->s);

			if (fi < 0)
				config_unknown_key(c, k, "cells");
			else
				f[fi] = v;
		}
		add_cell(c, f, m);
	}
}

/* ------------------------------------------------------------------ */
/* cells_file (CSV)                                                    */

struct csv {
	struct ctx *c;
	const char *buf;
	size_t len, pos;
	int line, col; /* of buf[pos], 1-based, columns in characters */
	char *scratch; /* unescaped fields of the current record */
	size_t s_len, s_cap;
	struct csv_field {
		size_t off; /* into scratch */
		int line, col;
	} * f;
	size_t n_f, cap_f;
};

static void csv_advance(struct csv *p)
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

static int csv_put(struct csv *p, char ch)
{
	if (p->s_len == p->s_cap) {
		size_t ncap = p->s_cap ? p->s_cap * 2 : 256;
		char *ns = realloc(p->scratch, ncap);

		if (ns == NULL) {
			config_oom(p->c);
			return -1;
		}
		p->scratch = ns;
		p->s_cap = ncap;
	}
	p->scratch[p->s_len++] = ch;
	return 0;
}

static bool csv_at_eol(const struct csv *p)
{
	return p->pos >= p->len || p->buf[p->pos] == '\n' ||
	       (p->buf[p->pos] == '\r' && p->pos + 1 < p->len && p->buf[p->pos + 1] == '\n') ||
	       (p->buf[p->pos] == '\r' && p->pos + 1 == p->len);
}

static void csv_skip_eol(struct csv *p)
{
	if (p->pos < p->len && p->buf[p->pos] == '\r')
		csv_advance(p);
	if (p->pos < p->len && p->buf[p->pos] == '\n')
		csv_advance(p);
}

/* After a malformed field the rest of its line is noise; resume at the
 * next line so that later rows are still checked. */
static void csv_skip_line(struct csv *p)
{
	while (!csv_at_eol(p))
		csv_advance(p);
	csv_skip_eol(p);
}

/* Reads one record (RFC 4180: "" escapes a quote inside a quoted field,
 * which may span lines; CRLF or LF ends a record). Returns 1 with fields
 * in p->f, 0 at end of input, -1 for a malformed record (reported and
 * skipped), -2 when out of memory. */
static int csv_record(struct csv *p)
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
			struct csv_field *nf = realloc(p->f, ncap * sizeof(*nf));

			if (nf == NULL) {
				config_oom(p->c);
				return -2;
			}
			p->f = nf;
			p->cap_f = ncap;
		}
		if (p->pos < p->len && p->buf[p->pos] == '"') {
			csv_advance(p);
			for (;;) {
				if (p->pos >= p->len) {
					config_err_pos(p->c, FILE_CSV, fld.line, fld.col,
					               "quoted field is not "
					               "closed");
					return -1;
				}
				if (p->buf[p->pos] == '"') {
					csv_advance(p);
					if (p->pos >= p->len || p->buf[p->pos] != '"')
						break;
				}
				if (csv_put(p, p->buf[p->pos]) < 0)
					return -2;
				csv_advance(p);
			}
			if (!csv_at_eol(p) && p->buf[p->pos] != ',') {
				config_err_pos(p->c, FILE_CSV, p->line, p->col,
				               "unexpected text after a closing quote "
				               "(write a quote inside a quoted field "
				               "as \"\")");
				csv_skip_line(p);
				return -1;
			}
		} else {
			while (!csv_at_eol(p) && p->buf[p->pos] != ',') {
				if (p->buf[p->pos] == '"') {
					config_err_pos(p->c, FILE_CSV, p->line, p->col,
					               "quote inside an "
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
static int csv_list(struct ctx *c, struct node *field, struct node *list, struct node **items,
                    struct node ***itemp)
{
	size_t n = 1, k = 0;
	char *s;

	for (s = field->s; *s != '\0'; s++)
		n += *s == ';';
	*items = calloc(n, sizeof(**items));
	*itemp = calloc(n, sizeof(**itemp));
	if (*items == NULL || *itemp == NULL) {
		config_oom(c);
		return -1;
	}
	for (s = field->s;; s++) {
		char *e = strchr(s, ';');

		if (e != NULL)
			*e = '\0';
		(*items)[k] = (struct node){
			.type = N_SCALAR,
			.file = FILE_CSV,
			.line = field->line,
			.col = field->col,
			.s = s,
			.len = strlen(s),
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
static void csv_rows(struct ctx *c, struct csv *p)
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
				config_err_pos(c, FILE_CSV, first->line, first->col,
				               "the header has too many columns");
				return;
			}
			for (size_t i = 0; i < n_cols; i++) {
				const char *name = p->scratch + p->f[i].off;
				int fi = cell_field_lookup(name);
				char b[SHOW_MAX];

				fields_of[i] = -1;
				if (fi < 0)
					config_err_pos(c, FILE_CSV, p->f[i].line, p->f[i].col,
					               "unknown column '%s' "
					               "(use id, name, interval, grace, "
					               "active, repeat, workers, tags)",
					               config_show(name, b, sizeof(b)));
				else if (col_of[fi] >= 0)
					config_err_pos(c, FILE_CSV, p->f[i].line, p->f[i].col,
					               "duplicate column "
					               "'%s'",
					               name);
				else
					col_of[fi] = (int)i, fields_of[i] = fi;
			}
			if (col_of[CF_ID] < 0) {
				config_err_pos(c, FILE_CSV, first->line, first->col,
				               "the header has no id column");
				return;
			}
			continue;
		}
		if (p->n_f != n_cols) {
			config_err_pos(c, FILE_CSV, first->line, first->col,
			               "row has %zu fields but the header has %zu", p->n_f, n_cols);
			continue;
		}
		/* Fields become scalar nodes placed in the CSV file, and
		 * `;`-lists become list nodes, so add_cell validates them
		 * exactly like YAML values. An empty field is absent. */
		row = (struct node){
			.type = N_MAP, .file = FILE_CSV, .line = first->line, .col = first->col
		};
		for (size_t i = 0; i < n_cols; i++) {
			int fi = fields_of[i];
			char *s = p->scratch + p->f[i].off;

			if (fi < 0 || *s == '\0')
				continue;
			nodes[fi] = (struct node){
				.type = N_SCALAR,
				.file = FILE_CSV,
				.line = p->f[i].line,
				.col = p->f[i].col,
				.s = s,
				.len = strlen(s),
			};
			f[fi] = &nodes[fi];
		}
		for (int li = 0; li < 2; li++) {
			int fi = li == 0 ? CF_WORKERS : CF_TAGS;

			if (f[fi] == NULL)
				continue;
			if (csv_list(c, f[fi], &lists[li], &items[li], &itemp[li]) < 0)
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
		config_err_pos(c, FILE_CSV, 1, 1,
		               "the file is empty: it needs a "
		               "header line such as id,name,interval,grace,active,"
		               "workers,tags");
}

void config_v_cells_file(struct ctx *c, const struct node *v)
{
	struct config *cfg = c->cfg;
	const char *slash, *err_what;
	char *buf = NULL, b[SHOW_MAX];
	size_t len = 0, start = 0;
	struct csv p = { 0 };
	const char *name = config_get_scalar(c, v, "cells_file");

	if (name == NULL)
		return;
	if (*name == '\0') {
		err_at(c, v, "cells_file must not be empty");
		return;
	}
	slash = strrchr(c->path, '/');
	if (name[0] == '/' || slash == NULL) {
		cfg->cells_file = config_xstrdup(c, name);
	} else if (asprintf(&cfg->cells_file, "%.*s/%s", (int)(slash - c->path), c->path, name) <
	           0) {
		cfg->cells_file = NULL;
		config_oom(c);
	}
	if (cfg->cells_file == NULL)
		return;
	if (config_read_file(cfg->cells_file, &buf, &len, &err_what) < 0) {
		err_at(c, v, "cells_file '%s': %s: %s", config_show(cfg->cells_file, b, sizeof(b)),
		       err_what, strerror(errno));
		return;
	}
	/* Validate the encoding once up front: every later column count and
	 * message can then assume well-formed text. */
	if (!config_text_ok(c, FILE_CSV, buf, len)) {
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
