/*
 * cli_report: `gridpatrol report` — gathers from one read snapshot what
 * the report module needs for every configured cell, has it compute the
 * day's figures, and hands them to a renderer.
 *
 * Given several databases (`--db A.db --db B.db`, a county's villages) it
 * does the same once per database, each its own snapshot, and keeps of
 * each site the configured cells that its database's `cell` table lists:
 * the configuration is the county's (every village's cells, as the county
 * daemon has it), and the table, which the site's daemon fills with every
 * cell it was configured with, says which of them are that site's. One
 * report then shows every site's cells, the ids that more than one site
 * uses as "site/cell", with a summary per site and in all.
 *
 * It must stay fast at 1,000 cells and 100,000 events a day on a small
 * ARM box, over a database holding a year. So the day's events come in
 * ONE query on the event_ts range, ordered by cell and time, and are split
 * per cell here; worker and type strings are interned instead of copied
 * per event. The per-cell facts that reach outside the day come from
 * event_span (first patrol ever, newest patrol: one row per cell and type)
 * and, when a cell was patrolled both before and since the day, from one
 * single-row probe on the event(cell, ts) index for the last patrol before
 * it; both cost the same whether the table holds a day or a year.
 */
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

#include "cli_common.h"
#include "cli_db.h"
#include "cli_report.h"
#include "render.h"
#include "report.h"
#include "strmap.h"

/* Events of note kept for the HTML page; the rest are counted. */
#define REPORT_MAX_NOTES 500

/* ------------------------------------------------------------------ */
/* String interning                                                    */
/* ------------------------------------------------------------------ */

/* malloc'd copies, found through a strmap: a day has 100,000 events but
 * only a few hundred workers and a handful of types. */
struct intern {
	char **v;
	size_t cap, n;
	struct strmap index;
};

static const char *intern(struct intern *in, const char *s)
{
	int64_t i = strmap_find(&in->index, in->v, sizeof(*in->v), s);
	if (i >= 0)
		return in->v[i];
	if (in->n == in->cap) {
		size_t cap = in->cap ? in->cap * 2 : 256;
		char **v = realloc(in->v, cap * sizeof(*v));
		if (!v)
			return NULL;
		in->v = v;
		in->cap = cap;
	}
	char *copy = strdup(s);
	if (!copy)
		return NULL;
	in->v[in->n] = copy;
	if (strmap_insert(&in->index, in->v, sizeof(*in->v), (uint32_t)in->n) == -2) {
		free(copy);
		return NULL;
	}
	return in->v[in->n++];
}

static void intern_free(struct intern *in)
{
	for (size_t i = 0; i < in->n; i++)
		free(in->v[i]);
	free(in->v);
	strmap_free(&in->index);
}

/* ------------------------------------------------------------------ */
/* Gathering                                                           */
/* ------------------------------------------------------------------ */

struct gather {
	struct cli *c;
	int64_t day_start, day_end;
	size_t n;                /* configured cells */
	struct report_input *in; /* per cell */
	bool *listed;            /* per cell: in the database's cell table */
	size_t *ev_off;          /* per cell: first index in events */
	struct report_event *events;
	size_t n_events, cap_events;
	struct report_pause *pauses; /* per cell: at most one row (pause has one per cell) */
	struct render_note *notes;
	size_t n_notes, notes_omitted;
	char **note_texts;
	struct render_task *tasks; /* the first REPORT_MAX_NOTES, by time */
	size_t n_tasks, cap_tasks, tasks_omitted;
	long claimed, unclaimed; /* all of the day's tasks */
	struct intern strings;
};

static bool has_flag(const char *flags, const char *word)
{
	size_t n = strlen(word);
	for (const char *p = flags; (p = strstr(p, word)); p += n)
		if ((p == flags || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
			return true;
	return false;
}

static int gather_row_known(void *arg, const struct cli_db_known *row)
{
	struct gather *g = arg;
	const struct config_cell *cc = config_cell_find(g->c->cfg, row->cell);
	if (cc) {
		g->in[cc - g->c->cfg->cells].known_since = row->known_since;
		g->listed[cc - g->c->cfg->cells] = true;
	}
	return 0;
}

static int gather_known(struct gather *g)
{
	return cli_db_each_known(g->c, gather_row_known, g);
}

struct gather_span {
	struct gather *g;
	int64_t *newest; /* per cell */
};

static int gather_row_span(void *arg, const struct cli_db_span *row)
{
	struct gather_span *sp = arg;
	struct gather *g = sp->g;
	const struct config *cfg = g->c->cfg;
	const struct config_cell *cc = config_cell_find(cfg, row->cell);
	if (!cc || !config_event_counts_as_patrol(cfg, row->type))
		return 0;
	size_t i = (size_t)(cc - cfg->cells);
	if (!g->in[i].first_patrol_ever || row->first_ts < g->in[i].first_patrol_ever)
		g->in[i].first_patrol_ever = row->first_ts;
	if (row->last_ts > sp->newest[i])
		sp->newest[i] = row->last_ts;
	return 0;
}

static int gather_patrols(struct gather *g)
{
	struct cli *c = g->c;
	const struct config *cfg = c->cfg;
	struct cli_db_before *before = NULL;
	int64_t *newest = calloc(g->n ? g->n : 1, sizeof(*newest));
	int code = CLI_EXIT_FAIL;

	if (!newest) {
		cli_error("out of memory");
		return CLI_EXIT_FAIL;
	}
	/* First patrol ever and newest patrol per cell from event_span: it
	 * keeps both after retention deleted the rows. Types no longer
	 * configured were patrols when they arrived, as the daemon counts. */
	struct gather_span sp = { .g = g, .newest = newest };
	if ((code = cli_db_each_span(c, gather_row_span, &sp)) != CLI_EXIT_OK ||
	    (code = cli_db_before_open(c, g->day_start, &before)) != CLI_EXIT_OK)
		goto out;
	for (size_t i = 0; i < g->n; i++) {
		struct report_input *in = &g->in[i];
		in->last_patrol_before = 0;
		/* Nothing before the day if the first patrol ever is in it; the
		 * newest itself if nothing came since; else one probe on the
		 * event(cell, ts) index. */
		if (!in->first_patrol_ever || in->first_patrol_ever >= g->day_start)
			continue;
		if (newest[i] < g->day_start) {
			in->last_patrol_before = newest[i];
			continue;
		}
		if ((code = cli_db_before_probe(c, before, cfg->cells[i].id,
		                                &in->last_patrol_before)) != CLI_EXIT_OK)
			goto out;
	}
	code = CLI_EXIT_OK;
out:
	cli_db_before_close(before);
	free(newest);
	return code;
}

static int gather_row_pause(void *arg, const struct cli_db_pause *row)
{
	struct gather *g = arg;
	const struct config_cell *cc = config_cell_find(g->c->cfg, row->cell);
	if (!cc)
		return 0;
	size_t i = (size_t)(cc - g->c->cfg->cells);
	g->pauses[i] = (struct report_pause){
		.since = row->since,
		.until = row->open_ended ? INT64_MAX : row->until,
	};
	g->in[i].pauses = &g->pauses[i];
	g->in[i].n_pauses = 1;
	return 0;
}

static int gather_pauses(struct gather *g)
{
	/* A pause that ended before the day still restarted the count at its
	 * end (report.c, like the daemon, uses whatever pause it is given). */
	return cli_db_each_pause(g->c, g->day_end, gather_row_pause, g);
}

static int gather_row_alerts(void *arg, const struct cli_db_alert_count *row)
{
	struct gather *g = arg;
	const struct config_cell *cc = config_cell_find(g->c->cfg, row->cell);
	if (cc)
		g->in[cc - g->c->cfg->cells].alerts = row->count;
	return 0;
}

static int gather_alerts(struct gather *g)
{
	return cli_db_each_alert_count(g->c, g->day_start, g->day_end, gather_row_alerts, g);
}

static int gather_row_task(void *arg, const struct cli_db_day_task *row)
{
	struct gather *g = arg;
	if (row->claimed_by)
		g->claimed++;
	else
		g->unclaimed++;
	if (g->n_tasks == REPORT_MAX_NOTES) {
		g->tasks_omitted++;
		return 0;
	}
	if (g->n_tasks == g->cap_tasks) {
		size_t cap = g->cap_tasks ? g->cap_tasks * 2 : 32;
		struct render_task *t = realloc(g->tasks, cap * sizeof(*t));
		if (!t)
			goto oom;
		g->tasks = t;
		g->cap_tasks = cap;
	}
	struct render_task *t = &g->tasks[g->n_tasks];
	*t = (struct render_task){ .at = row->at,
		                   .claimed_at = row->claimed_at,
		                   .resolved_at = row->resolved_at };
	if (!(t->cell = intern(&g->strings, row->cell)) ||
	    !(t->kind = intern(&g->strings, row->kind)) ||
	    (row->claimed_by && !(t->claimed_by = intern(&g->strings, row->claimed_by))))
		goto oom;
	g->n_tasks++;
	return 0;
oom:
	cli_error("out of memory");
	return -1;
}

static int gather_tasks(struct gather *g)
{
	return cli_db_each_day_task(g->c, g->day_start, g->day_end, gather_row_task, g);
}

static int add_note(struct gather *g, const struct config_cell *cc, const struct report_event *e,
                    const struct config_event *ev, enum render_note_why why, const char *text)
{
	if (g->n_notes == REPORT_MAX_NOTES) {
		g->notes_omitted++;
		return 0;
	}
	const char *note = NULL;
	if (text) {
		note = g->note_texts[g->n_notes] = strdup(text);
		if (!note)
			return -1;
	}
	g->notes[g->n_notes++] = (struct render_note){
		.ts = e->ts,
		.cell = cc,
		.worker = e->worker,
		.type = e->type,
		.ev = ev,
		.has_value = e->has_value,
		.value = e->value,
		.note = note,
		.why = why,
	};
	return 0;
}

struct gather_day {
	struct gather *g;
	const struct config_cell *cur;
	char *cur_id;
};

static int gather_row_event(void *arg, const struct cli_db_event *row)
{
	struct gather_day *d = arg;
	struct gather *g = d->g;
	const struct config *cfg = g->c->cfg;
	const char *cell = row->cell;
	if (!d->cur_id || strcmp(d->cur_id, cell) != 0) {
		free(d->cur_id);
		d->cur_id = strdup(cell);
		if (!d->cur_id)
			goto oom;
		d->cur = config_cell_find(cfg, cell);
		if (d->cur) {
			size_t i = (size_t)(d->cur - cfg->cells);
			g->ev_off[i] = g->n_events;
		}
	}
	const struct config_cell *cur = d->cur;
	if (!cur)
		return 0; /* a cell no longer configured */
	if (g->n_events == g->cap_events) {
		size_t cap = g->cap_events ? g->cap_events * 2 : 4096;
		struct report_event *ev = realloc(g->events, cap * sizeof(*ev));
		if (!ev)
			goto oom;
		g->events = ev;
		g->cap_events = cap;
	}
	const char *type = row->type;
	const struct config_event *ev = config_event_find(cfg, type);
	struct report_event *e = &g->events[g->n_events];
	*e = (struct report_event){
		.ts = row->ts,
		.worker = intern(&g->strings, row->worker),
		.type = ev ? ev->name : intern(&g->strings, type),
		.patrol = config_event_counts_as_patrol(cfg, type),
		.late = has_flag(row->flags, "late"),
		.has_value = row->has_value,
		.value = row->value,
	};
	if (!e->worker || !e->type)
		goto oom;
	g->n_events++;
	g->in[cur - cfg->cells].n_events++;

	if (ev && ev->alert_immediate) {
		if (add_note(g, cur, e, ev, RENDER_NOTE_EVENT, row->note) < 0)
			goto oom;
	} else if (ev && e->has_value && ev->has_warn && e->value >= ev->warn) {
		bool alarm = ev->has_alarm && e->value >= ev->alarm;
		if (add_note(g, cur, e, ev, alarm ? RENDER_NOTE_ALARM : RENDER_NOTE_WARN,
		             row->note) < 0)
			goto oom;
	}
	return 0;
oom:
	cli_error("out of memory");
	return -1;
}

static int gather_events(struct gather *g)
{
	struct gather_day d = { .g = g };
	int code = cli_db_each_day_event(g->c, g->day_start, g->day_end, gather_row_event, &d);
	free(d.cur_id);
	if (code != CLI_EXIT_OK)
		return code;
	/* Pointers only now: the array moved while it grew. */
	for (size_t i = 0; i < g->n; i++)
		g->in[i].events = g->in[i].n_events ? g->events + g->ev_off[i] : NULL;
	return CLI_EXIT_OK;
}

static int note_cmp(const void *a, const void *b)
{
	const struct render_note *x = a, *y = b;
	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	/* Site names lie in one block in the order the sites were given
	 * (sites_parse), so their addresses order the sites. */
	if (x->site != y->site)
		return x->site < y->site ? -1 : 1;
	return x->cell < y->cell ? -1 : x->cell > y->cell;
}

/* By time, then site (a county's sites in the order given). */
static int task_cmp(const void *a, const void *b)
{
	const struct render_task *x = a, *y = b;
	if (x->at != y->at)
		return x->at < y->at ? -1 : 1;
	return x->site && y->site ? strcmp(x->site, y->site) : 0;
}

static int gather_init(struct gather *g, struct cli *c, int64_t day_start, int64_t day_end)
{
	size_t n = c->cfg->n_cells;
	*g = (struct gather){ .c = c, .n = n, .day_start = day_start, .day_end = day_end };
	g->in = calloc(n ? n : 1, sizeof(*g->in));
	g->listed = calloc(n ? n : 1, sizeof(*g->listed));
	g->ev_off = calloc(n ? n : 1, sizeof(*g->ev_off));
	g->pauses = calloc(n ? n : 1, sizeof(*g->pauses));
	g->notes = calloc(REPORT_MAX_NOTES, sizeof(*g->notes));
	g->note_texts = calloc(REPORT_MAX_NOTES, sizeof(*g->note_texts));
	if (!g->in || !g->listed || !g->ev_off || !g->pauses || !g->notes || !g->note_texts) {
		cli_error("out of memory");
		return CLI_EXIT_FAIL;
	}
	for (size_t i = 0; i < n; i++)
		g->in[i].cell = &c->cfg->cells[i];
	return CLI_EXIT_OK;
}

static void gather_free(struct gather *g)
{
	if (g->note_texts)
		for (size_t i = 0; i < REPORT_MAX_NOTES; i++)
			free(g->note_texts[i]);
	free(g->note_texts);
	free(g->notes);
	free(g->pauses);
	free(g->ev_off);
	free(g->listed);
	free(g->in);
	free(g->events);
	free(g->tasks);
	intern_free(&g->strings);
}

/* Everything the day's figures need from c->db_path, in one snapshot. */
static int gather_db(struct gather *g)
{
	int code = cli_db_open_ro(g->c);
	if (code == CLI_EXIT_OK)
		code = gather_known(g);
	if (code == CLI_EXIT_OK)
		code = gather_patrols(g);
	if (code == CLI_EXIT_OK)
		code = gather_pauses(g);
	if (code == CLI_EXIT_OK)
		code = gather_alerts(g);
	if (code == CLI_EXIT_OK)
		code = gather_tasks(g);
	if (code == CLI_EXIT_OK)
		code = gather_events(g);
	return cli_db_close(g->c, code);
}

/* ------------------------------------------------------------------ */
/* Sites                                                               */
/* ------------------------------------------------------------------ */

/* One database of the report: the only one, or a county's site. */
struct site {
	const char *name;    /* county: the site's name (in the names block); else NULL */
	const char *name_at; /* where --db names it, name_len bytes */
	size_t name_len;
	const char *path;
	struct gather g;
	bool gathered;
};

/* A site name shows in every format and before "/" in cell ids: text
 * without "/", "=" or control characters, 1 to 64 bytes. */
static bool site_name_ok(const char *s, size_t len)
{
	if (len == 0 || len > 64 || utf8_check(s, len) != len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '/' || s[i] == '=' || (unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* "SITE=PATH", or PATH named after its file without the last extension
 * ("/srv/backup/yunhua.db": yunhua). A "=" counts only before any "/",
 * so "./a=b.db" is a file. */
static int site_parse(const char *arg, struct site *s)
{
	const char *eq = strchr(arg, '=');
	const char *slash = strchr(arg, '/');
	const char *name, *end;
	if (eq && (!slash || eq < slash)) {
		name = arg;
		end = eq;
		s->path = eq + 1;
	} else {
		s->path = arg;
		name = strrchr(arg, '/') ? strrchr(arg, '/') + 1 : arg;
		const char *dot = strrchr(name, '.');
		end = dot && dot > name ? dot : name + strlen(name);
	}
	if (!s->path[0]) {
		cli_error("--db %s: no database path", arg);
		return CLI_EXIT_USAGE;
	}
	if (!site_name_ok(name, (size_t)(end - name))) {
		cli_error("--db %s: cannot name a site after it (name it: --db SITE=PATH; a site "
		          "name has 1 to 64 bytes and no '/', '=' or control characters)",
		          arg);
		return CLI_EXIT_USAGE;
	}
	s->name_at = name;
	s->name_len = (size_t)(end - name);
	return CLI_EXIT_OK;
}

/* The sites' names go into one block (*names, malloc'd), in order. */
static int sites_parse(struct cli *c, struct site *sites, size_t n, char **names)
{
	size_t total = 0;
	for (size_t k = 0; k < n; k++) {
		int code = site_parse(c->dbs[k], &sites[k]);
		if (code != CLI_EXIT_OK)
			return code;
		total += sites[k].name_len + 1;
	}
	char *p = *names = malloc(total);
	if (!p) {
		cli_error("out of memory");
		return CLI_EXIT_FAIL;
	}
	for (size_t k = 0; k < n; k++) {
		memcpy(p, sites[k].name_at, sites[k].name_len);
		p[sites[k].name_len] = '\0';
		sites[k].name = p;
		p += sites[k].name_len + 1;
		for (size_t j = 0; j < k; j++) {
			if (strcmp(sites[j].name, sites[k].name) == 0) {
				cli_error("two databases for site '%s' (%s and %s; name them: "
				          "--db SITE=PATH)",
				          sites[k].name, sites[j].path, sites[k].path);
				return CLI_EXIT_USAGE;
			}
		}
	}
	return CLI_EXIT_OK;
}

/* Which cells go into the report, as cells[] will hold them: every
 * configured cell for one site; a county site's listed ones. */
static bool site_has(const struct site *s, bool county, size_t i)
{
	return !county || s->g.listed[i];
}

/* The shown id of each report cell: "site/cell" for an id that more than
 * one site lists, else NULL (the bare id). ids[] is parallel to cells[]. */
static int county_ids(const struct cli *c, const struct site *sites, size_t n_sites,
                      struct render_cell *cells, char **ids)
{
	size_t n = c->cfg->n_cells, k = 0;
	int *users = calloc(n ? n : 1, sizeof(*users));
	if (!users)
		return -1;
	for (size_t s = 0; s < n_sites; s++)
		for (size_t i = 0; i < n; i++)
			users[i] += sites[s].g.listed[i];
	for (size_t s = 0; s < n_sites; s++) {
		for (size_t i = 0; i < n; i++) {
			if (!sites[s].g.listed[i])
				continue;
			if (users[i] > 1) {
				const char *id = c->cfg->cells[i].id;
				size_t len = strlen(sites[s].name) + strlen(id) + 2;
				if (!(ids[k] = malloc(len))) {
					free(users);
					return -1;
				}
				snprintf(ids[k], len, "%s/%s", sites[s].name, id);
				cells[k].id = ids[k];
			}
			k++;
		}
	}
	free(users);
	return 0;
}

/* What a built report's render_report points into. */
struct cli_report_own {
	struct site *sites;
	size_t n_sites;
	struct render_site *rsites;
	struct render_cell *cells;
	size_t n, computed;
	struct render_note *notes;
	struct render_task *tasks;
	char **ids, *names;
};

void cli_report_free(struct cli_report *rep)
{
	struct cli_report_own *o = rep->own;
	if (!o)
		return;
	for (size_t i = 0; i < o->computed; i++)
		report_cell_free(&o->cells[i].rc);
	if (o->ids)
		for (size_t i = 0; i < o->n; i++)
			free(o->ids[i]);
	free(o->ids);
	free(o->cells);
	free(o->notes);
	free(o->tasks);
	for (size_t s = 0; o->sites && s < o->n_sites; s++)
		if (o->sites[s].gathered)
			gather_free(&o->sites[s].g);
	free(o->sites);
	free(o->names);
	free(o->rsites);
	free(o);
	rep->own = NULL;
}

int cli_report_build(struct cli *c, struct cli_report *rep)
{
	const struct config *cfg = c->cfg;
	const bool county = c->n_dbs > 1;
	const size_t n_sites = county ? (size_t)c->n_dbs : 1;
	struct cli_report_own *o = calloc(1, sizeof(*o));
	struct render_report r = { .cfg = cfg, .now = c->now, .lang = c->lang, .web = c->web };
	size_t n = 0, n_notes = 0, n_tasks = 0;
	int code = CLI_EXIT_FAIL;

	*rep = (struct cli_report){ .own = o };
	if (!o) {
		cli_error("out of memory");
		return CLI_EXIT_FAIL;
	}
	struct site *sites = o->sites = calloc(n_sites, sizeof(*sites));
	struct render_site *rsites = o->rsites = calloc(n_sites, sizeof(*rsites));
	o->n_sites = n_sites;
	if (!sites || !rsites) {
		cli_error("out of memory");
		goto done;
	}
	if (cli_parse_day(c, c->date ? c->date : "today", r.date, &r.day_start, &r.day_end) < 0) {
		code = CLI_EXIT_USAGE;
		goto done;
	}
	if (county && (code = sites_parse(c, sites, n_sites, &o->names)) != CLI_EXIT_OK)
		goto done;
	for (size_t s = 0; s < n_sites; s++) {
		if (county)
			c->db_path = sites[s].path;
		sites[s].gathered = true;
		if ((code = gather_init(&sites[s].g, c, r.day_start, r.day_end)) != CLI_EXIT_OK ||
		    (code = gather_db(&sites[s].g)) != CLI_EXIT_OK)
			goto done;
		size_t mine = 0;
		for (size_t i = 0; i < cfg->n_cells; i++)
			mine += site_has(&sites[s], county, i);
		if (county && mine == 0) {
			/* Most likely a village's configuration given for a county. */
			cli_error("site '%s' (%s): none of the cells its database lists is in %s; "
			          "a county report needs a configuration with every site's cells",
			          sites[s].name, sites[s].path, c->config_path);
			code = CLI_EXIT_USAGE;
			goto done;
		}
		rsites[s] = (struct render_site){ .name = sites[s].name,
			                          .db = sites[s].path,
			                          .first = n,
			                          .n = mine,
			                          .tasks_claimed = sites[s].g.claimed,
			                          .tasks_unclaimed = sites[s].g.unclaimed };
		n += mine;
		n_notes += sites[s].g.n_notes;
		n_tasks += sites[s].g.n_tasks;
		r.tasks_claimed += sites[s].g.claimed;
		r.tasks_unclaimed += sites[s].g.unclaimed;
	}

	code = CLI_EXIT_FAIL;
	o->n = n;
	struct render_cell *cells = o->cells = calloc(n ? n : 1, sizeof(*cells));
	char **ids = o->ids = calloc(n ? n : 1, sizeof(*ids));
	struct render_note *notes = o->notes = calloc(n_notes ? n_notes : 1, sizeof(*notes));
	struct render_task *tasks = o->tasks = calloc(n_tasks ? n_tasks : 1, sizeof(*tasks));
	if (!cells || !ids || !notes || !tasks ||
	    (county && county_ids(c, sites, n_sites, cells, ids) < 0)) {
		cli_error("out of memory");
		goto done;
	}
	size_t k = 0;
	n_notes = n_tasks = 0;
	for (size_t s = 0; s < n_sites; s++) {
		struct gather *g = &sites[s].g;
		for (size_t i = 0; i < cfg->n_cells; i++) {
			if (!site_has(&sites[s], county, i))
				continue;
			cells[k].cell = &cfg->cells[i];
			cells[k].site = sites[s].name;
			if (report_cell_compute(&g->in[i], r.day_start, r.day_end, c->now,
			                        &cells[k].rc) < 0) {
				cli_error("out of memory");
				goto done;
			}
			o->computed = ++k;
		}
		for (size_t j = 0; j < g->n_notes; j++) {
			notes[n_notes] = g->notes[j];
			notes[n_notes++].site = sites[s].name;
		}
		r.notes_omitted += g->notes_omitted;
		for (size_t j = 0; j < g->n_tasks; j++) {
			tasks[n_tasks] = g->tasks[j];
			tasks[n_tasks++].site = sites[s].name;
		}
		r.tasks_omitted += g->tasks_omitted;
	}
	qsort(notes, n_notes, sizeof(*notes), note_cmp);
	qsort(tasks, n_tasks, sizeof(*tasks), task_cmp);
	if (n_tasks > REPORT_MAX_NOTES) {
		r.tasks_omitted += n_tasks - REPORT_MAX_NOTES;
		n_tasks = REPORT_MAX_NOTES;
	}
	/* The page lists as many as one site's report would. */
	if (n_notes > REPORT_MAX_NOTES) {
		r.notes_omitted += n_notes - REPORT_MAX_NOTES;
		n_notes = REPORT_MAX_NOTES;
	}
	r.cells = cells;
	r.n_cells = n;
	r.notes = notes;
	r.n_notes = n_notes;
	r.tasks = tasks;
	r.n_tasks = n_tasks;
	if (county) {
		r.sites = rsites;
		r.n_sites = n_sites;
	}

	rep->r = r;
	code = CLI_EXIT_OK;
done:
	if (code != CLI_EXIT_OK)
		cli_report_free(rep);
	return code;
}

int cli_cmd_report(struct cli *c)
{
	struct cli_report rep;
	struct cli_out out = { 0 };
	int code = cli_report_build(c, &rep);
	if (code != CLI_EXIT_OK)
		return code;
	const struct render_report *r = &rep.r;
	code = CLI_EXIT_FAIL;
	if (cli_out_open(&out, c) < 0)
		goto done;
	int w;
	switch (c->format) {
	case CLI_FORMAT_JSON:
		w = render_report_json(out.f, r);
		break;
	case CLI_FORMAT_CSV:
		w = render_report_csv(out.f, r);
		break;
	case CLI_FORMAT_HTML:
		w = render_report_html(out.f, r);
		break;
	default:
		w = render_report_text(out.f, r);
		break;
	}
	if (w < 0)
		cli_error(ferror(out.f) ? "cannot write the report" : "out of memory");
	code = cli_out_close(&out, w == 0) < 0 || w < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
done:
	cli_report_free(&rep);
	return code;
}
