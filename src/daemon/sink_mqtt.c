/*
 * sink_mqtt: the driver of mqtt sinks (struct sink_ops, sink_impl.h). A try
 * publishes each alert of the delivery as its own QoS 1 message on the
 * daemon's broker connection, to the sink's topic template with {cell} and
 * {kind} filled in, and is delivered once every PUBACK is back; missing
 * PUBACKs at the sink's timeout, or no connection when the try starts, are
 * a failed try, retried by the core like any other.
 */
#include "sink_impl.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sink_mqtt_try {
	int *mids; /* -1 once acknowledged */
	size_t n_mids, n_unacked;
};

/* The sink's topic template with {cell} and {kind} filled in. Cell ids and
 * kinds are validated topic segments, so no wildcard can sneak in. */
static char *sink_mqtt_topic(const char *tmpl, const char *cell, const char *kind)
{
	size_t cap = strlen(tmpl) + 1, len = 0;
	size_t cl = strlen(cell), kl = strlen(kind);
	for (const char *p = tmpl; (p = strchr(p, '{')); p++)
		cap += cl + kl;
	char *out = malloc(cap);
	if (!out)
		return NULL;
	for (const char *p = tmpl; *p;) {
		if (strncmp(p, "{cell}", 6) == 0) {
			memcpy(out + len, cell, cl);
			len += cl;
			p += 6;
		} else if (strncmp(p, "{kind}", 6) == 0) {
			memcpy(out + len, kind, kl);
			len += kl;
			p += 6;
		} else {
			out[len++] = *p++;
		}
	}
	out[len] = '\0';
	return out;
}

static const char *sink_mqtt_json_str(const json_t *obj, const char *key, const char *dflt)
{
	const char *v = json_string_value(json_object_get(obj, key));
	return v && *v ? v : dflt;
}

/* Publish one document per alert: the delivery restricted to that alert.
 * Returns -1 with a reason in err. */
static int sink_mqtt_publish(struct dtry *t, const struct config_sink *cs, char *err, size_t errlen)
{
	struct sink_mqtt_try *q = t->drv;
	struct deliver *d = t->ds->d;
	json_error_t jerr;
	json_t *doc = json_loads(t->del.doc, 0, &jerr);
	json_t *alerts = json_object_get(doc, "alerts");
	int ret = -1;

	if (!json_is_array(alerts)) {
		snprintf(err, errlen, "delivery document unusable: %s",
		         doc ? "no alerts" : jerr.text);
		goto out;
	}
	size_t n = json_array_size(alerts);
	q->mids = calloc(n ? n : 1, sizeof(*q->mids));
	if (!q->mids) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *a = json_array_get(alerts, i);
		json_t *one = json_pack("{s:s, s:s, s:s, s:[O]}", "delivery_id", t->del.delivery_id,
		                        "sink", t->del.sink, "text",
		                        sink_mqtt_json_str(a, "text", ""), "alerts", a);
		char *payload = one ? json_dumps(one, JSON_COMPACT) : NULL;
		char *topic = sink_mqtt_topic(cs->topic, sink_mqtt_json_str(a, "cell", "-"),
		                              sink_mqtt_json_str(a, "kind", "-"));
		int mid = 0, rc = -1;
		if (payload && topic)
			rc = mqtt_publish(d->m, topic, payload, strlen(payload), 1, false, &mid);
		else
			snprintf(err, errlen, "out of memory");
		if (payload && topic && rc < 0)
			snprintf(err, errlen, "publish to %s failed", topic);
		free(payload);
		free(topic);
		json_decref(one);
		if (rc < 0)
			goto out;
		q->mids[q->n_mids++] = mid;
		q->n_unacked++;
	}
	ret = 0;
out:
	json_decref(doc);
	return ret;
}

static int sink_mqtt_start(struct dtry *t, const struct config_sink *cs, char *err, size_t errlen)
{
	struct deliver *d = t->ds->d;
	struct sink_mqtt_try *q;

	/* No broker (or no mqtt client at all, as in unit tests) is a
	 * failed try like any other: backoff, then expiry. */
	if (!d->m || !mqtt_connected(d->m)) {
		snprintf(err, errlen, "not connected to the broker");
		return -1;
	}
	if (!(q = calloc(1, sizeof(*q)))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	t->drv = q;
	if (sink_mqtt_publish(t, cs, err, errlen) < 0)
		return -1;
	return q->n_unacked == 0 ? 1 : 0;
}

static void sink_mqtt_timeout(struct dtry *t)
{
	struct sink_mqtt_try *q = t->drv;
	char why[96];

	snprintf(why, sizeof(why), "%zu of %zu PUBACKs missing after %lld s", q->n_unacked,
	         q->n_mids, (long long)(t->timeout_ms / 1000));
	deliver_try_finish(t, false, why, NULL);
}

static bool sink_mqtt_published(struct dtry *t, int mid)
{
	struct sink_mqtt_try *q = t->drv;

	for (size_t j = 0; j < q->n_mids; j++) {
		if (q->mids[j] == mid) {
			q->mids[j] = -1;
			if (--q->n_unacked == 0)
				deliver_try_finish(t, true, NULL, NULL);
			return true;
		}
	}
	return false;
}

static void sink_mqtt_release(struct dtry *t)
{
	struct sink_mqtt_try *q = t->drv;

	if (!q)
		return;
	free(q->mids);
	free(q);
	t->drv = NULL;
}

const struct sink_ops sink_mqtt_ops = {
	.start = sink_mqtt_start,
	.timeout = sink_mqtt_timeout,
	.published = sink_mqtt_published,
	.release = sink_mqtt_release,
	.cut_off = "abandoned",
};
