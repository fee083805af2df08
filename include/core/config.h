/*
 * config: the YAML configuration (and its optional cells CSV) turned into a
 * validated `struct config`.
 *
 * Every key is checked; every problem is reported, not only the first, as
 * "FILE:LINE:COLUMN: message" (1-based, FILE as given or as resolved for
 * cells_file). This module reads files but never logs or exits: the caller
 * prints the errors (gridpatrold --check-config) or keeps the old
 * configuration (SIGHUP).
 */
#ifndef GRIDPATROL_CONFIG_H
#define GRIDPATROL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "topic.h"
#include "units.h"

#define CONFIG_DEFAULT_PATH "/etc/gridpatrol/gridpatrol.yaml"
/* More sinks than a village has any use for; the store and the delivery
 * code size per-alert arrays by it instead of allocating per alert. */
#define CONFIG_SINKS_MAX 16

/* Alert kinds, as bits so that a sink's `kinds` is a mask. */
enum config_kind {
	CONFIG_KIND_OVERDUE = 1 << 0,
	CONFIG_KIND_RECOVERED = 1 << 1,
	CONFIG_KIND_EVENT = 1 << 2,
	CONFIG_KIND_READING = 1 << 3,
	CONFIG_KIND_DIGEST = 1 << 4,
	CONFIG_KIND_SYSTEM = 1 << 5,
	CONFIG_KIND_CLAIMED = 1 << 6,
	CONFIG_KIND_ALL = (1 << 7) - 1,
};

struct config_cell {
	char *id;
	char *name; /* defaults to id */
	int64_t interval_s;
	int64_t grace_s;
	int64_t repeat_s;
	struct units_active active;
	char **workers;
	size_t n_workers;
	char **tags;
	size_t n_tags;
};

struct config_event {
	char *name;           /* the type as it appears in topics/payloads */
	char *label;          /* defaults to name */
	bool alert_immediate; /* alert: immediate */
	bool patrol;          /* counts as patrol presence (default true) */
	bool claim;           /* claim: true — its messages claim an open alert */
	bool has_value;       /* value: {...} declared: messages must carry one */
	char *unit;           /* may be NULL */
	bool has_warn, has_alarm;
	double warn, alarm;
};

enum config_sink_type {
	CONFIG_SINK_EXEC,
	CONFIG_SINK_MQTT
};

struct config_sink {
	char *name;
	enum config_sink_type type;
	char **argv; /* exec: NULL-terminated, argc >= 1 */
	size_t argc;
	char *topic;            /* mqtt: template with {cell} and {kind} */
	int64_t timeout_s;      /* exec, default 30 */
	int64_t group_window_s; /* default 0 */
	unsigned kinds;         /* mask of config_kind, default CONFIG_KIND_ALL */
};

struct config_index; /* private: hash tables for lookups */

struct config {
	char *path; /* as given */

	struct {
		char *host;                 /* default 127.0.0.1 */
		int port;                   /* default 1883 (8883 is not implied by tls) */
		char *client_id;            /* default "gridpatrold" */
		char *topic;                /* default "patrol/{cell}/{worker}/{event}" */
		struct topic_template tmpl; /* compiled `topic` */
		int protocol;               /* 4 (MQTT 3.1.1, default) or 5 */
		int keepalive_s;            /* default 60 */
		int64_t session_expiry_s;   /* MQTT 5 only; default 0xFFFFFFFF = never */
		char *username;             /* may be NULL */
		char *password_file;        /* may be NULL */
		char *password_credential;  /* systemd credential name, may be NULL */
		bool tls;                   /* true when the tls section is present */
		char *ca_file, *ca_path, *cert_file, *key_file; /* may be NULL */
		bool tls_insecure; /* skip hostname verification; default false */
	} mqtt;

	struct {
		char *path;           /* default /var/lib/gridpatrol/patrol.db */
		int64_t retention_s;  /* default 400d; 0 keeps forever */
		int64_t max_size;     /* bytes, 0 = unlimited (default) */
		int64_t max_rejected; /* rows kept in `rejected`, default 100000; 0 = no cap */
		bool sync_full;       /* sync: full (default) fsyncs every batch before
		                        * its acks; normal does not (not power-cut safe) */
	} storage;

	char *timezone; /* IANA name, default Asia/Shanghai */

	struct {
		int64_t interval_s;         /* 4h */
		int64_t grace_s;            /* 15m */
		int64_t repeat_s;           /* 2h */
		struct units_active active; /* 07:00-19:00 */
	} defaults;

	struct config_cell *cells; /* YAML cells first, then cells_file rows */
	size_t n_cells;
	char *cells_file; /* resolved path, or NULL */

	struct {
		int64_t max_payload;      /* 8 KiB */
		int64_t max_clock_skew_s; /* 5m */
		int64_t max_backfill_s;   /* 7d */
		int64_t late_after_s;     /* 10m */
	} limits;

	struct config_event *events;
	size_t n_events;

	struct {
		struct config_sink *sinks;
		size_t n_sinks;
		int escalate_after; /* 0 = never */
		char **escalate_to;
		size_t n_escalate_to;
		int daily_digest_min;    /* minutes of day, -1 = no digest (default 20:00) */
		char *language;          /* "zh-CN" (default) or "en" */
		int64_t startup_grace_s; /* 5m */
		int64_t system_after_s;  /* 10m: broker unreachable → system alert */
		int64_t claim_for_s;     /* 2h: how long a claim holds repeats */
		int64_t retry_min_s;     /* 10s */
		int64_t retry_max_s;     /* 30m */
		int64_t give_up_after_s; /* 24h */
	} alerts;

	struct config_index *index;
};

struct config_errors {
	char **v; /* each "FILE:LINE:COLUMN: message" */
	size_t n;
};

/* Load and validate. Returns 0 and a config in *out, or -1 with every error
 * appended to errs (and *out NULL). A missing or unreadable file is one
 * error ("FILE:1:1: cannot open: No such file or directory"). */
int config_load(const char *path, struct config **out, struct config_errors *errs);
void config_free(struct config *cfg);
void config_errors_free(struct config_errors *errs);

/* O(1) lookups; NULL when absent. */
const struct config_cell *config_cell_find(const struct config *cfg, const char *id);
const struct config_event *config_event_find(const struct config *cfg, const char *name);

/* Name of a single kind bit ("overdue"), or NULL. */
const char *config_kind_name(unsigned kind);

/* Whether events of `type` count as patrol presence under cfg: the one
 * rule the deadline engine, alerts, the digest and every CLI command
 * share. A type configured with `patrol: false` does not count; a type
 * no longer configured does (it was accepted as a patrol when it
 * arrived). A NULL type does not count. */
bool config_event_counts_as_patrol(const struct config *cfg, const char *type);

#endif
