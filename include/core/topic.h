/*
 * topic: the MQTT topic template ("patrol/{cell}/{worker}/{event}").
 *
 * A template is compiled once; every incoming topic is matched against it
 * level by level. Pure: no I/O, no logging; errors come back as text.
 */
#ifndef GRIDPATROL_TOPIC_H
#define GRIDPATROL_TOPIC_H

#include <stdbool.h>
#include <stddef.h>

#define TOPIC_SEGMENT_MAX 64

struct topic_template {
	char **segs; /* fixed text, or NULL for a placeholder level */
	size_t n_segs;
	int cell_idx;       /* level index of {cell}; always present */
	int worker_idx;     /* level index of {worker}; always present */
	int event_idx;      /* level index of {event}, or -1 */
	char *subscription; /* fixed prefix + "/#", what the daemon subscribes */
};

struct topic_fields {
	char cell[TOPIC_SEGMENT_MAX + 1];
	char worker[TOPIC_SEGMENT_MAX + 1];
	char event[TOPIC_SEGMENT_MAX + 1]; /* "" when the template has none */
};

/* Rules: levels separated by '/', none empty; the first level is fixed text;
 * placeholders {cell} and {worker} are required, {event} optional, each a
 * whole level and at most once; fixed levels may not contain '+', '#', '{'
 * or '}'. Returns 0, or -1 with a reason in err. */
int topic_template_compile(const char *tmpl, struct topic_template *out, char *err, size_t errlen);
void topic_template_free(struct topic_template *t);

/* 1..64 characters of A-Z a-z 0-9 _ . - */
bool topic_segment_valid(const char *s, size_t len);

/* Split `topic` by the template. Returns 0, or -1 with a reason in err
 * (wrong number of levels, fixed level mismatch, invalid segment value). */
int topic_match(const struct topic_template *t, const char *topic, struct topic_fields *out,
                char *err, size_t errlen);

#endif
