/*
 * msg: one MQTT message (topic, payload, receive time) judged against the
 * configuration and turned into either an event record or a rejection reason
 * with a human detail.
 *
 * Pure: no I/O, no logging, no global state; the fuzz target. Everything a
 * device sends is hostile until proven otherwise.
 */
#ifndef GRIDPATROL_MSG_H
#define GRIDPATROL_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "topic.h"

enum msg_reason {
	MSG_OK = 0,
	MSG_BAD_JSON,
	MSG_BAD_FIELD,
	MSG_BAD_TOPIC,
	MSG_UNKNOWN_CELL,
	MSG_UNKNOWN_EVENT,
	MSG_TOO_LARGE,
	MSG_TOO_OLD,
};

enum msg_flag {
	MSG_FLAG_LATE = 1 << 0,
	MSG_FLAG_CLOCK_SKEW = 1 << 1,
};

#define MSG_ID_MAX_BYTES 512 /* 128 characters of up to 4 UTF-8 bytes */
#define MSG_NOTE_MAX 1000
#define MSG_PHOTO_MAX 512
#define MSG_DETAIL_MAX 256

struct msg_record {
	char worker[TOPIC_SEGMENT_MAX + 1];
	char cell[TOPIC_SEGMENT_MAX + 1];
	char type[TOPIC_SEGMENT_MAX + 1];
	/* Dedup key within the worker: the device's `id`, or "~" and 32 hex
	 * digits of SHA-256(topic "\n" payload) when there is no id but a ts.
	 * Empty string: not deduplicated (stored as NULL). */
	char msg_id[MSG_ID_MAX_BYTES + 1];
	int64_t ts; /* patrol time, Unix seconds */
	bool has_device_ts;
	int64_t device_ts; /* the device's own ts, before skew correction */
	int64_t recv_ms;
	bool has_pos;
	double lat, lon;
	bool has_value;
	double value;
	bool has_alert_id; /* claim types only: the alert it names */
	int64_t alert_id;
	bool has_note, has_photo;
	char note[MSG_NOTE_MAX + 1];
	char photo[MSG_PHOTO_MAX + 1];
	unsigned flags;  /* enum msg_flag bits */
	const void *raw; /* the payload as received (caller's memory) */
	size_t raw_len;
	const struct config_cell *cell_cfg;
	const struct config_event *event_cfg;
};

/* Judge one message. On MSG_OK *out is filled. Otherwise `detail` holds a
 * short human explanation (always NUL-terminated, at most detail_len-1
 * bytes, valid UTF-8) and *out is unspecified. Check order: too_large,
 * bad_topic, unknown_cell, unknown_event (topic), bad_json, bad_field,
 * unknown_event (payload), too_old. */
enum msg_reason msg_parse(const struct config *cfg, const char *topic, const void *payload,
                          size_t len, int64_t recv_ms, struct msg_record *out, char *detail,
                          size_t detail_len);

/* "bad_json", "bad_field", ...; "ok" for MSG_OK. */
const char *msg_reason_name(enum msg_reason r);

/* Comma-separated flag words ("late,clock_skew"), "" for none. */
void msg_flags_format(unsigned flags, char *buf, size_t len);

/* Strict RFC 3339 "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)"; fraction
 * truncated. Returns 0 and Unix seconds, or -1 (syntax, impossible date). */
int msg_parse_rfc3339(const char *s, size_t len, int64_t *out);

#endif
