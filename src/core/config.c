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
 *
 * The module is four files sharing the private config_impl.h: the first two
 * passes are config_yaml.c, the error list and the typed getters
 * config_get.c, the cells (YAML and CSV) config_cells.c; this file holds the
 * other sections' validators and the public functions.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_impl.h"
#include "strmap.h"

/* libmosquitto and the MQTT spec cap a packet at 256 MiB. */
#define MAX_PAYLOAD (INT64_C(256) << 20)

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

static void free_strv(char **v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* "1h30m" for messages about values that may be defaults. */
static const char *fmt_dur(int64_t s, char *buf, size_t cap)
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
			int w = snprintf(buf + o, cap - o, "%lld%c", (long long)(s / units[i].mul),
			                 units[i].u);

			if (w < 0)
				break;
			o += (size_t)w;
			s %= units[i].mul;
		}
	}
	return buf;
}

/* ------------------------------------------------------------------ */
/* mqtt                                                                */

static void v_tls(struct ctx *c, const struct node *m)
{
	struct config *cfg = c->cfg;
	const struct node *cert = NULL, *key = NULL;

	cfg->mqtt.tls = true;
	if (!config_want_map(c, m, "mqtt.tls")) {
		if (!m->bad && config_is_null(m))
			goto need_ca;
		return;
	}
	FOR_PAIRS (m, k, v) {
		if (config_key_is(k, "ca_file"))
			config_get_str(c, v, "ca_file", &cfg->mqtt.ca_file);
		else if (config_key_is(k, "ca_path"))
			config_get_str(c, v, "ca_path", &cfg->mqtt.ca_path);
		else if (config_key_is(k, "cert_file"))
			cert = config_get_str(c, v, "cert_file", &cfg->mqtt.cert_file) ? v : cert;
		else if (config_key_is(k, "key_file"))
			key = config_get_str(c, v, "key_file", &cfg->mqtt.key_file) ? v : key;
		else if (config_key_is(k, "insecure"))
			config_get_bool(c, v, "insecure", &cfg->mqtt.tls_insecure);
		else
			config_unknown_key(c, k, "mqtt.tls");
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

static void v_protocol(struct ctx *c, const struct node *v)
{
	const char *s = config_get_scalar(c, v, "protocol");
	char b[SHOW_MAX];

	if (s == NULL)
		return;
	if (strcmp(s, "4") == 0 || strcmp(s, "3.1.1") == 0)
		c->cfg->mqtt.protocol = 4;
	else if (strcmp(s, "5") == 0)
		c->cfg->mqtt.protocol = 5;
	else
		err_at(c, v,
		       "unsupported MQTT protocol '%s' (use 4 or \"3.1.1\" "
		       "for MQTT 3.1.1, or 5)",
		       config_show(s, b, sizeof(b)));
}

static void v_mqtt(struct ctx *c, const struct node *m)
{
	struct config *cfg = c->cfg;
	const struct node *topic = NULL, *pwfile = NULL, *pwcred = NULL;
	const struct node *user = NULL;
	char err[256];
	long long n;
	int64_t d;

	if (m != NULL && config_want_map(c, m, "mqtt")) {
		FOR_PAIRS (m, k, v) {
			if (config_key_is(k, "host")) {
				config_get_str(c, v, "host", &cfg->mqtt.host);
			} else if (config_key_is(k, "port")) {
				if (config_get_int(c, v, "port", 1, 65535, &n))
					cfg->mqtt.port = (int)n;
			} else if (config_key_is(k, "client_id")) {
				if (config_get_str(c, v, "client_id", &cfg->mqtt.client_id) &&
				    (strpbrk(cfg->mqtt.client_id, "/+#") ||
				     strlen(cfg->mqtt.client_id) > 65535))
					/* It becomes a level of the status
					 * topic gridpatrol/status/{client_id}. */
					err_at(c, v,
					       "client_id must be at most "
					       "65535 bytes without '/', '+' "
					       "or '#'");
			} else if (config_key_is(k, "topic")) {
				if (config_get_str(c, v, "topic", &cfg->mqtt.topic))
					topic = v;
			} else if (config_key_is(k, "protocol")) {
				v_protocol(c, v);
			} else if (config_key_is(k, "keepalive")) {
				/* libmosquitto refuses less than 5 s; MQTT
				 * stores it in 16 bits. */
				if (!config_get_dur(c, v, "keepalive", &d))
					continue;
				if (d < 5 || d > 65535)
					err_at(c, v,
					       "keepalive must be from "
					       "5s to 65535s");
				else
					cfg->mqtt.keepalive_s = (int)d;
			} else if (config_key_is(k, "session_expiry")) {
				if (v->type == N_SCALAR && !v->bad && strcmp(v->s, "never") == 0) {
					cfg->mqtt.session_expiry_s = 0xFFFFFFFF;
				} else if (config_get_dur(c, v, "session_expiry", &d)) {
					if (d > 0xFFFFFFFF)
						err_at(c, v,
						       "session_expiry "
						       "must be at most "
						       "4294967295s, or never");
					else
						cfg->mqtt.session_expiry_s = d;
				}
			} else if (config_key_is(k, "username")) {
				if (config_get_str(c, v, "username", &cfg->mqtt.username))
					user = v;
			} else if (config_key_is(k, "password_file")) {
				if (config_get_str(c, v, "password_file", &cfg->mqtt.password_file))
					pwfile = v;
			} else if (config_key_is(k, "password_credential")) {
				if (!config_get_str(c, v, "password_credential",
				                    &cfg->mqtt.password_credential))
					continue;
				pwcred = v;
				if (strchr(v->s, '/') != NULL)
					err_at(c, v,
					       "password_credential is a "
					       "credential name, not a path");
			} else if (config_key_is(k, "password")) {
				/* Configuration files get copied, pasted and
				 * committed; secrets belong elsewhere. */
				err_at(c, k,
				       "an inline password is not "
				       "allowed: use password_file or "
				       "password_credential");
			} else if (config_key_is(k, "tls")) {
				v_tls(c, v);
			} else {
				config_unknown_key(c, k, "mqtt");
			}
		}
	}
	if (pwfile != NULL && pwcred != NULL)
		err_at(c, pwcred,
		       "use password_file or password_credential, "
		       "not both");
	if (user == NULL && (pwfile != NULL || pwcred != NULL))
		err_at(c, pwfile != NULL ? pwfile : pwcred, "a password needs a username");
	/* Compiled even when defaulted, so users of the config can rely on
	 * mqtt.tmpl. */
	if (topic_template_compile(cfg->mqtt.topic, &cfg->mqtt.tmpl, err, sizeof(err)) < 0) {
		if (topic != NULL)
			err_at(c, topic, "%s", err);
		else
			config_err_pos(c, FILE_YAML, 1, 1, "%s", err);
	}
}

/* ------------------------------------------------------------------ */
/* storage, timezone, defaults, limits                                 */

static void v_storage(struct ctx *c, const struct node *m)
{
	struct config *cfg = c->cfg;
	const char *s;
	char b[SHOW_MAX];

	if (!config_want_map(c, m, "storage"))
		return;
	FOR_PAIRS (m, k, v) {
		if (config_key_is(k, "path"))
			config_get_str(c, v, "path", &cfg->storage.path);
		else if (config_key_is(k, "retention")) {
			if (config_get_dur(c, v, "retention", &cfg->storage.retention_s))
				c->retention_at = v;
		} else if (config_key_is(k, "max_size"))
			config_get_size(c, v, "max_size", &cfg->storage.max_size);
		else if (config_key_is(k, "max_rejected")) {
			long long n;
			if (config_get_int(c, v, "max_rejected", 0, 1000000000, &n))
				cfg->storage.max_rejected = n;
		} else if (config_key_is(k, "sync")) {
			s = config_get_scalar(c, v, "sync");
			if (s == NULL)
				continue;
			if (strcmp(s, "full") == 0)
				cfg->storage.sync_full = true;
			else if (strcmp(s, "normal") == 0)
				cfg->storage.sync_full = false;
			else
				err_at(c, v, "sync must be full or normal, not '%s'",
				       config_show(s, b, sizeof(b)));
		} else
			config_unknown_key(c, k, "storage");
	}
}

/* The zone is checked against the zoneinfo database the daemon will use,
 * so that a typo shows up at --check-config rather than as silently UTC
 * deadlines. */
static void v_timezone(struct ctx *c, const struct node *v)
{
	const char *dir = getenv("TZDIR");
	char b[SHOW_MAX], *path = NULL, magic[4];
	const char *s;
	bool ok = false;
	int fd;

	if (!config_get_str(c, v, "timezone", &c->cfg->timezone))
		return;
	s = c->cfg->timezone;
	if (s[0] == '/' || strstr(s, "..") != NULL ||
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	              "0123456789/_+-.") != strlen(s) ||
	    strlen(s) > 255) {
		err_at(c, v,
		       "invalid timezone name '%s' (use an IANA name "
		       "such as Asia/Shanghai)",
		       config_show(s, b, sizeof(b)));
		return;
	}
	if (dir == NULL || dir[0] == '\0')
		dir = "/usr/share/zoneinfo";
	if (asprintf(&path, "%s/%s", dir, s) < 0) {
		config_oom(c);
		return;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0) {
		struct stat st;

		/* A directory ("Asia") or a table ("zone.tab") is not a
		 * zone; every zone file starts with "TZif". */
		ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && read(fd, magic, 4) == 4 &&
		     memcmp(magic, "TZif", 4) == 0;
		close(fd);
	}
	if (!ok)
		err_at(c, v, "unknown timezone '%s' (not found in %s)",
		       config_show(s, b, sizeof(b)), dir);
	free(path);
}

static void v_defaults(struct ctx *c, const struct node *m)
{
	struct config *cfg = c->cfg;

	if (!config_want_map(c, m, "defaults"))
		return;
	FOR_PAIRS (m, k, v) {
		if (config_key_is(k, "interval"))
			config_get_dur_pos(c, v, "interval", &cfg->defaults.interval_s);
		else if (config_key_is(k, "grace"))
			config_get_dur(c, v, "grace", &cfg->defaults.grace_s);
		else if (config_key_is(k, "repeat"))
			config_get_dur(c, v, "repeat", &cfg->defaults.repeat_s);
		else if (config_key_is(k, "active"))
			config_get_active(c, v, "active", &cfg->defaults.active);
		else
			config_unknown_key(c, k, "defaults");
	}
}

static void v_limits(struct ctx *c, const struct node *m)
{
	struct config *cfg = c->cfg;
	int64_t sz;

	if (!config_want_map(c, m, "limits"))
		return;
	FOR_PAIRS (m, k, v) {
		if (config_key_is(k, "max_payload")) {
			if (!config_get_size(c, v, "max_payload", &sz))
				continue;
			if (sz < 1 || sz > MAX_PAYLOAD)
				err_at(c, v,
				       "max_payload must be from 1 to "
				       "256MiB");
			else
				cfg->limits.max_payload = sz;
		} else if (config_key_is(k, "max_clock_skew")) {
			config_get_dur(c, v, "max_clock_skew", &cfg->limits.max_clock_skew_s);
		} else if (config_key_is(k, "max_backfill")) {
			if (config_get_dur(c, v, "max_backfill", &cfg->limits.max_backfill_s))
				c->max_backfill_at = v;
		} else if (config_key_is(k, "late_after")) {
			config_get_dur(c, v, "late_after", &cfg->limits.late_after_s);
		} else {
			config_unknown_key(c, k, "limits");
		}
	}
}

/* ------------------------------------------------------------------ */
/* events                                                              */

static void v_event_value(struct ctx *c, struct config_event *e, const struct node *m,
                          const char *where)
{
	const struct node *warn = NULL, *alarm = NULL;

	e->has_value = true;
	if (!config_want_map(c, m, "value"))
		return;
	FOR_PAIRS (m, k, v) {
		if (config_key_is(k, "unit")) {
			config_get_str(c, v, "unit", &e->unit);
		} else if (config_key_is(k, "warn")) {
			if (config_get_num(c, v, "warn", &e->warn)) {
				e->has_warn = true;
				warn = v;
			}
		} else if (config_key_is(k, "alarm")) {
			if (config_get_num(c, v, "alarm", &e->alarm)) {
				e->has_alarm = true;
				alarm = v;
			}
		} else {
			config_unknown_key(c, k, where);
		}
	}
	if (warn != NULL && alarm != NULL && e->alarm < e->warn)
		err_at(c, alarm, "alarm (%s) must not be below warn (%s)", alarm->s, warn->s);
}

static void v_event(struct ctx *c, struct config_event *e, const struct node *m)
{
	char where[128], b[SHOW_MAX];
	const char *s;
	const struct node *patrol = NULL;

	snprintf(where, sizeof(where), "events.%s", e->name);
	if (!config_want_map(c, m, where))
		return;
	FOR_PAIRS (m, k, v) {
		if (config_key_is(k, "label")) {
			config_get_str(c, v, "label", &e->label);
		} else if (config_key_is(k, "alert")) {
			s = config_get_scalar(c, v, "alert");
			if (s == NULL)
				continue;
			if (strcmp(s, "immediate") == 0)
				e->alert_immediate = true;
			else if (strcmp(s, "none") == 0)
				e->alert_immediate = false;
			else
				err_at(c, v,
				       "alert must be immediate or none, "
				       "not '%s'",
				       config_show(s, b, sizeof(b)));
		} else if (config_key_is(k, "patrol")) {
			patrol = v;
			config_get_bool(c, v, "patrol", &e->patrol);
		} else if (config_key_is(k, "claim")) {
			config_get_bool(c, v, "claim", &e->claim);
		} else if (config_key_is(k, "value")) {
			char vwhere[160];

			snprintf(vwhere, sizeof(vwhere), "%s.value", where);
			v_event_value(c, e, v, vwhere);
		} else {
			config_unknown_key(c, k, where);
		}
	}
	/* A claim that counted as a patrol would end the very alert it
	 * claims before claiming it. */
	if (e->claim && patrol == NULL)
		e->patrol = false;
	else if (e->claim && e->patrol)
		err_at(c, patrol,
		       "patrol must be false for a claim type (claim: true): "
		       "a claim is not a patrol");
}

static void v_events(struct ctx *c, const struct node *m)
{
	struct config *cfg = c->cfg;
	char b[SHOW_MAX];

	if (!config_want_map(c, m, "events"))
		return;
	cfg->events = calloc(m->n / 2 + 1, sizeof(*cfg->events));
	if (cfg->events == NULL) {
		config_oom(c);
		return;
	}
	FOR_PAIRS (m, k, v) {
		struct config_event *e = &cfg->events[cfg->n_events];

		/* The name is what devices put in topics and payloads. */
		if (!topic_segment_valid(k->s, k->len)) {
			err_at(c, k, "invalid event name '%s': %s", config_show(k->s, b, sizeof(b)),
			       config_segment_rule);
			continue;
		}
		e->name = config_xstrdup(c, k->s);
		e->label = config_xstrdup(c, k->s);
		if (e->name == NULL || e->label == NULL) {
			free(e->name);
			free(e->label);
			e->name = e->label = NULL;
			return;
		}
		e->patrol = true;
		cfg->n_events++;
		/* Keys are already unique, so this cannot find a match. */
		if (strmap_insert(&cfg->index->events, cfg->events, sizeof(*cfg->events),
		                  (uint32_t)(cfg->n_events - 1)) == -2) {
			config_oom(c);
			return;
		}
		v_event(c, e, v);
	}
}

/* ------------------------------------------------------------------ */
/* alerts                                                              */

static const char *const kind_names[] = {
	"overdue", "recovered", "event", "reading", "digest", "system", "claimed",
};

const char *config_kind_name(unsigned kind)
{
	for (size_t i = 0; i < sizeof(kind_names) / sizeof(kind_names[0]); i++)
		if (kind == 1u << i)
			return kind_names[i];
	return NULL;
}

static void v_kinds(struct ctx *c, struct config_sink *s, const struct node *seq)
{
	unsigned mask = 0;
	bool ok = true;

	if (!config_want_seq(c, seq, "kinds"))
		return;
	for (size_t i = 0; i < seq->n; i++) {
		const char *name = config_get_scalar(c, seq->kid[i], "kind");
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
			err_at(c, seq->kid[i],
			       "unknown alert kind '%s' (use "
			       "overdue, recovered, event, reading, digest, "
			       "system, claimed)",
			       config_show(name, b, sizeof(b)));
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
static const char *sink_topic_problem(const char *t)
{
	if (strlen(t) > 65535)
		return "is longer than 65535 bytes";
	for (const char *p = t; *p != '\0'; p++) {
		if (*p == '+' || *p == '#')
			return "must not contain the MQTT wildcards + or #";
		if (*p == '{') {
			if (strncmp(p, "{cell}", 6) != 0 && strncmp(p, "{kind}", 6) != 0)
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

static void v_sink(struct ctx *c, struct config_sink *s, const struct node *m, int *name_line,
                   size_t idx)
{
	const struct node *exec = NULL, *topic = NULL, *name = NULL;
	char b[SHOW_MAX];

	s->timeout_s = 30;
	s->kinds = CONFIG_KIND_ALL;
	s->type = CONFIG_SINK_EXEC;
	FOR_PAIRS (m, k, v) {
		if (config_key_is(k, "name")) {
			if (!config_get_str(c, v, "name", &s->name))
				continue;
			name = v;
			/* It is part of every delivery_id. */
			if (!topic_segment_valid(s->name, strlen(s->name))) {
				err_at(c, v, "invalid sink name '%s': %s",
				       config_show(s->name, b, sizeof(b)), config_segment_rule);
				continue;
			}
			name_line[idx] = v->line;
			for (size_t j = 0; j < idx; j++) {
				struct config_sink *o = &c->cfg->alerts.sinks[j];

				if (o->name != NULL && name_line[j] > 0 &&
				    strcmp(o->name, s->name) == 0) {
					err_at(c, v,
					       "duplicate sink name '%s' "
					       "(first at line %d)",
					       config_show(s->name, b, sizeof(b)), name_line[j]);
					break;
				}
			}
		} else if (config_key_is(k, "exec")) {
			exec = v;
			if (config_get_strlist(c, v, "exec", "exec argument", false, &s->argv,
			                       &s->argc) &&
			    s->argc == 0)
				err_at(c, v, "exec must name a program");
		} else if (config_key_is(k, "topic")) {
			const char *why;

			topic = v;
			if (!config_get_str(c, v, "topic", &s->topic))
				continue;
			why = sink_topic_problem(s->topic);
			if (why != NULL)
				err_at(c, v, "sink topic %s", why);
		} else if (config_key_is(k, "timeout")) {
			config_get_dur_pos(c, v, "timeout", &s->timeout_s);
		} else if (config_key_is(k, "group_window")) {
			config_get_dur(c, v, "group_window", &s->group_window_s);
		} else if (config_key_is(k, "kinds")) {
			v_kinds(c, s, v);
		} else {
			config_unknown_key(c, k, "alerts.sinks");
		}
	}
	if (name == NULL && !m->bad)
		err_at(c, m, "a sink needs a name");
	if (exec != NULL && topic != NULL)
		err_at(c, topic, "a sink has either exec or topic, not both");
	else if (exec == NULL && topic == NULL)
		err_at(c, m,
		       "a sink needs exec (a program to run) or topic "
		       "(an MQTT topic to publish to)");
	if (topic != NULL && exec == NULL)
		s->type = CONFIG_SINK_MQTT;
}

static void v_sinks(struct ctx *c, const struct node *seq)
{
	struct config *cfg = c->cfg;
	int *name_line;

	if (!config_want_seq(c, seq, "sinks"))
		return;
	if (seq->n > CONFIG_SINKS_MAX) {
		err_at(c, seq, "at most %d sinks, not %zu", CONFIG_SINKS_MAX, seq->n);
		return;
	}
	cfg->alerts.sinks = calloc(seq->n + 1, sizeof(*cfg->alerts.sinks));
	name_line = calloc(seq->n + 1, sizeof(*name_line));
	if (cfg->alerts.sinks == NULL || name_line == NULL) {
		free(name_line);
		config_oom(c);
		return;
	}
	for (size_t i = 0; i < seq->n && !c->oom; i++) {
		const struct node *m = seq->kid[i];

		if (m->bad)
			continue;
		if (m->type != N_MAP) {
			err_at(c, m, "each sink must be a mapping, not %s", config_type_name(m));
			continue;
		}
		v_sink(c, &cfg->alerts.sinks[cfg->alerts.n_sinks], m, name_line,
		       cfg->alerts.n_sinks);
		cfg->alerts.n_sinks++;
	}
	free(name_line);
}

static void v_escalate(struct ctx *c, const struct node *m)
{
	struct config *cfg = c->cfg;
	const struct node *after = NULL, *to = NULL;
	long long n;

	if (!config_want_map(c, m, "escalate"))
		return;
	FOR_PAIRS (m, k, v) {
		if (config_key_is(k, "after")) {
			if (config_get_int(c, v, "after", 0, 1000000, &n)) {
				cfg->alerts.escalate_after = (int)n;
				after = v;
			}
		} else if (config_key_is(k, "to")) {
			if (config_get_strlist(c, v, "to", "escalation name", false,
			                       &cfg->alerts.escalate_to,
			                       &cfg->alerts.n_escalate_to))
				to = v;
		} else {
			config_unknown_key(c, k, "alerts.escalate");
		}
	}
	if (after != NULL && cfg->alerts.escalate_after > 0 &&
	    (to == NULL || cfg->alerts.n_escalate_to == 0))
		err_at(c, after,
		       "escalate.after needs a non-empty "
		       "escalate.to");
}

static void v_retry(struct ctx *c, const struct node *m)
{
	struct config *cfg = c->cfg;
	const struct node *min = NULL, *max = NULL;
	char b1[32], b2[32];

	if (!config_want_map(c, m, "retry"))
		return;
	FOR_PAIRS (m, k, v) {
		if (config_key_is(k, "min"))
			min = config_get_dur_pos(c, v, "min", &cfg->alerts.retry_min_s) ? v : min;
		else if (config_key_is(k, "max"))
			max = config_get_dur_pos(c, v, "max", &cfg->alerts.retry_max_s) ? v : max;
		else if (config_key_is(k, "give_up_after"))
			config_get_dur(c, v, "give_up_after", &cfg->alerts.give_up_after_s);
		else
			config_unknown_key(c, k, "alerts.retry");
	}
	if ((min != NULL || max != NULL) && cfg->alerts.retry_min_s > cfg->alerts.retry_max_s)
		err_at(c, max != NULL ? max : min,
		       "retry min (%s) must not "
		       "be longer than retry max (%s)",
		       fmt_dur(cfg->alerts.retry_min_s, b1, sizeof(b1)),
		       fmt_dur(cfg->alerts.retry_max_s, b2, sizeof(b2)));
}

static void v_alerts(struct ctx *c, const struct node *m)
{
	struct config *cfg = c->cfg;
	const char *s;
	char b[SHOW_MAX];
	int min;

	if (!config_want_map(c, m, "alerts"))
		return;
	FOR_PAIRS (m, k, v) {
		if (config_key_is(k, "sinks")) {
			v_sinks(c, v);
		} else if (config_key_is(k, "escalate")) {
			v_escalate(c, v);
		} else if (config_key_is(k, "daily_digest")) {
			s = config_get_scalar(c, v, "daily_digest");
			if (s == NULL)
				continue;
			if (strcmp(s, "off") == 0)
				cfg->alerts.daily_digest_min = -1;
			else if (units_clock(s, false, &min) == 0)
				cfg->alerts.daily_digest_min = min;
			else
				err_at(c, v,
				       "invalid time '%s' for "
				       "daily_digest (use HH:MM from 00:00 to "
				       "23:59, or off)",
				       config_show(s, b, sizeof(b)));
		} else if (config_key_is(k, "language")) {
			s = config_get_scalar(c, v, "language");
			if (s == NULL)
				continue;
			if (strcmp(s, "zh-CN") != 0 && strcmp(s, "en") != 0)
				err_at(c, v,
				       "language must be zh-CN or en, "
				       "not '%s'",
				       config_show(s, b, sizeof(b)));
			else
				config_get_str(c, v, "language", &cfg->alerts.language);
		} else if (config_key_is(k, "startup_grace")) {
			config_get_dur(c, v, "startup_grace", &cfg->alerts.startup_grace_s);
		} else if (config_key_is(k, "system_after")) {
			config_get_dur_pos(c, v, "system_after", &cfg->alerts.system_after_s);
		} else if (config_key_is(k, "claim_for")) {
			config_get_dur_pos(c, v, "claim_for", &cfg->alerts.claim_for_s);
		} else if (config_key_is(k, "retry")) {
			v_retry(c, v);
		} else {
			config_unknown_key(c, k, "alerts");
		}
	}
}

/* ------------------------------------------------------------------ */
/* Top level                                                           */

enum section {
	S_MQTT,
	S_STORAGE,
	S_TIMEZONE,
	S_DEFAULTS,
	S_CELLS,
	S_CELLS_FILE,
	S_LIMITS,
	S_EVENTS,
	S_ALERTS,
	S_N
};

/* Deduplication needs the first copy's row. With retention shorter than
 * max_backfill a late message could be accepted, pruned, and accepted
 * again when the device or broker sends it once more; with retention at
 * least max_backfill, anything old enough to be pruned is too_old. */
static void v_retention_backfill(struct ctx *c)
{
	const struct config *cfg = c->cfg;
	const struct node *at = c->retention_at ? c->retention_at : c->max_backfill_at;

	if (at == NULL || cfg->storage.retention_s == 0 ||
	    cfg->storage.retention_s >= cfg->limits.max_backfill_s)
		return;
	err_at(c, at,
	       "storage.retention (%llds) must be 0 or at least "
	       "limits.max_backfill (%llds): a late message removed by "
	       "retention could otherwise be stored again when resent",
	       (long long)cfg->storage.retention_s, (long long)cfg->limits.max_backfill_s);
}

static const char *const section_names[S_N] = {
	"mqtt",       "storage", "timezone", "defaults", "cells",
	"cells_file", "limits",  "events",   "alerts",
};

static void v_root(struct ctx *c, const struct node *root)
{
	const struct node *sec[S_N] = { 0 };

	if (root != NULL && root->type == N_MAP) {
		FOR_PAIRS (root, k, v) {
			int i;

			for (i = 0; i < S_N; i++)
				if (config_key_is(k, section_names[i]))
					break;
			if (i < S_N) {
				sec[i] = v;
			} else {
				char b[SHOW_MAX];

				err_at(c, k,
				       "unknown key '%s' (sections are "
				       "mqtt, storage, timezone, defaults, "
				       "cells, cells_file, limits, events, "
				       "alerts)",
				       config_show(k->s, b, sizeof(b)));
			}
		}
	} else if (root != NULL && !root->bad && !config_is_null(root)) {
		err_at(c, root,
		       "the configuration must be a mapping of "
		       "sections, not %s",
		       config_type_name(root));
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
		config_v_cells(c, sec[S_CELLS]);
	if (sec[S_CELLS_FILE] != NULL && !c->oom)
		config_v_cells_file(c, sec[S_CELLS_FILE]);
	if (sec[S_ALERTS] != NULL && !c->oom)
		v_alerts(c, sec[S_ALERTS]);
}

static struct config *config_new(struct ctx *c, const char *path)
{
	struct config *cfg = calloc(1, sizeof(*cfg));

	if (cfg == NULL) {
		config_oom(c);
		return NULL;
	}
	cfg->index = calloc(1, sizeof(*cfg->index));
	cfg->path = config_xstrdup(c, path);
	cfg->mqtt.host = config_xstrdup(c, "127.0.0.1");
	cfg->mqtt.port = 1883;
	cfg->mqtt.client_id = config_xstrdup(c, "gridpatrold");
	cfg->mqtt.topic = config_xstrdup(c, "patrol/{cell}/{worker}/{event}");
	cfg->mqtt.tmpl.cell_idx = cfg->mqtt.tmpl.worker_idx = -1;
	cfg->mqtt.tmpl.event_idx = -1;
	cfg->mqtt.protocol = 4;
	cfg->mqtt.keepalive_s = 60;
	cfg->mqtt.session_expiry_s = 0xFFFFFFFF;
	cfg->storage.path = config_xstrdup(c, "/var/lib/gridpatrol/patrol.db");
	cfg->storage.retention_s = 400 * 86400;
	cfg->storage.max_size = 0;
	cfg->storage.max_rejected = 100000;
	cfg->storage.sync_full = true;
	cfg->timezone = config_xstrdup(c, "Asia/Shanghai");
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
	cfg->alerts.language = config_xstrdup(c, "zh-CN");
	cfg->alerts.startup_grace_s = 5 * 60;
	cfg->alerts.system_after_s = 10 * 60;
	cfg->alerts.claim_for_s = 2 * 3600;
	cfg->alerts.retry_min_s = 10;
	cfg->alerts.retry_max_s = 30 * 60;
	cfg->alerts.give_up_after_s = 24 * 3600;
	if (cfg->index == NULL)
		config_oom(c);
	return cfg;
}

int config_load(const char *path, struct config **out, struct config_errors *errs)
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
	if (config_read_file(path, &buf, &len, &err_what) < 0) {
		config_err_pos(&c, FILE_YAML, 1, 1, "%s: %s", err_what, strerror(errno));
		goto done;
	}
	if (c.oom)
		goto done;
	/* libyaml reports bad UTF-8 at the byte after the damage; checking
	 * first points at the damage itself. UTF-16 files (with their byte
	 * order mark) are left to libyaml. */
	if (!(len >= 2 && ((unsigned char)buf[0] == 0xFF || (unsigned char)buf[0] == 0xFE))) {
		if (!config_text_ok(&c, FILE_YAML, buf, len))
			goto done;
	}
	if (config_yaml_to_tree(&c, (const unsigned char *)buf, len, &root) < 0)
		goto done;
	if (root != NULL)
		config_check_keys(&c, root);
	if (!c.oom)
		v_root(&c, root);
done:
	config_node_free(root);
	free(buf);
	free(c.cell_loc);
	if (c.n_errs > 0 || c.oom || c.cfg == NULL) {
		if (c.cfg == NULL)
			config_oom(&c);
		config_errs_flush(&c, errs);
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

void config_free(struct config *cfg)
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
		config_cell_free(&cfg->cells[i]);
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

void config_errors_free(struct config_errors *errs)
{
	if (errs == NULL)
		return;
	free_strv(errs->v, errs->n);
	errs->v = NULL;
	errs->n = 0;
}

const struct config_cell *config_cell_find(const struct config *cfg, const char *id)
{
	int64_t i;

	if (cfg == NULL || cfg->index == NULL)
		return NULL;
	i = strmap_find(&cfg->index->cells, cfg->cells, sizeof(*cfg->cells), id);
	return i >= 0 ? &cfg->cells[i] : NULL;
}

const struct config_event *config_event_find(const struct config *cfg, const char *name)
{
	int64_t i;

	if (cfg == NULL || cfg->index == NULL)
		return NULL;
	i = strmap_find(&cfg->index->events, cfg->events, sizeof(*cfg->events), name);
	return i >= 0 ? &cfg->events[i] : NULL;
}

bool config_event_counts_as_patrol(const struct config *cfg, const char *type)
{
	const struct config_event *ev;

	if (type == NULL)
		return false;
	ev = config_event_find(cfg, type);
	return ev == NULL || ev->patrol;
}
