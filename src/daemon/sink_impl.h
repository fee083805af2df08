/*
 * sink_impl: private to deliver.c and the sink drivers (sink_exec.c,
 * sink_mqtt.c); nothing else includes it. deliver.c owns the queue side of
 * delivery — the outbox, retries and backoff, alerts held in memory, the
 * per-sink timers — and runs each try through the driver of its sink's
 * type, a struct sink_ops, in the way chrony runs its reference clocks:
 * the core never asks what kind of sink it has, the driver never touches
 * the outbox. The structs are here because both sides read them.
 */
#ifndef GRIDPATROL_SINK_IMPL_H
#define GRIDPATROL_SINK_IMPL_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backoff.h"
#include "config.h"
#include "dbstate.h"
#include "deliver.h"
#include "loop.h"
#include "mqtt.h"
#include "outbox.h"
#include "store.h"

struct deliver;
struct dsink;
struct dheld;
struct dheld_sink;
struct dtry;

/*
 * A sink driver. Every try goes start → (timeout | poll | published)* →
 * deliver_try_finish, called by the driver once the outcome is known; at
 * shutdown the core drives the try itself (shutdown_fds, shutdown_io) and
 * then cancels what is left. Hooks a driver has no use for are NULL.
 */
struct sink_ops {
	/* Begin try t on sink cs. 0: running, the core arms t's timer for
	 * t->timeout_ms; 1: already delivered; -1: failed, reason in err.
	 * The driver keeps its state in t->drv. */
	int (*start)(struct dtry *t, const struct config_sink *cs, char *err, size_t errlen);
	/* t's timer fired while t runs (its timeout, or a timer the driver
	 * re-armed itself). */
	void (*timeout)(struct dtry *t);
	/* A child may have exited (SIGCHLD, or the shutdown loop): finish t
	 * if it has. */
	void (*poll)(struct dtry *t);
	/* A PUBACK: true when mid was one of t's (it is then consumed). */
	bool (*published)(struct dtry *t, int mid);
	/* Shutdown, with the loop stopped: up to max descriptors t needs
	 * served to end by itself, and serving one that poll() reported. */
	size_t (*shutdown_fds)(struct dtry *t, struct pollfd *pfd, size_t max);
	void (*shutdown_io)(struct dtry *t, const struct pollfd *pfd);
	/* Shutdown grace is over and t still runs: end it for good. */
	void (*cancel)(struct dtry *t);
	/* Free t->drv and whatever it holds (descriptors, loop watches). */
	void (*release)(struct dtry *t);
	/* Shutdown waits (bounded) for running tries of this driver. */
	bool waits_at_shutdown;
	/* Can try a held alert: works with neither database nor broker. */
	bool holds;
	/* What became of a try cut off at shutdown, for the log. */
	const char *cut_off;
};

extern const struct sink_ops sink_exec_ops;
extern const struct sink_ops sink_mqtt_ops;

struct dtry {
	struct dsink *ds;
	const struct sink_ops *ops;
	void *drv;                /* the driver's per-try state */
	struct loop_timer *timer; /* the sink's timer this try uses */
	struct dheld *held;       /* a held alert's try, or NULL */
	struct dheld_sink *hs;
	struct outbox_delivery del;
	int64_t start_mono;
	int64_t timeout_ms;

	/* outcome, once finished; kept until the database has taken it */
	bool finished;
	bool ok, expired;
	int64_t end_wall;
	int64_t next_ms;
	char error[256];
};

struct dsink {
	struct deliver *d;
	char name[TOPIC_SEGMENT_MAX + 1];
	const struct config_sink *cfg; /* NULL: gone from the config, try still running */
	struct loop_timer timer;       /* idle: next due time; running: try deadline */
	struct dtry *cur;
	/* A try of a held alert (below), beside cur: cur may be a finished
	 * try whose outcome waits for the database. Never two running. */
	struct loop_timer mem_timer;
	struct dtry *mem;
};

/*
 * A held alert: a `system` alert raised while the database cannot be
 * written, so it has no alert row, no outbox and no delivery_id of the
 * usual form. It is tried from memory on the sinks whose driver holds
 * (delivery_id "<sink>-m<raise time in ms>"), with the usual backoff, and
 * written to the alert table by deliver_write_held once the database takes
 * writes again — with each sink's delivery row in the state memory reached,
 * so a sink that got it is not sent it twice, and carrying the in-memory
 * delivery_id (ext_id), so the outbox's retries keep it.
 */
struct dheld_sink {
	char name[TOPIC_SEGMENT_MAX + 1];
	char delivery_id[TOPIC_SEGMENT_MAX + 16];
	enum outbox_held_state state;
	int tries;
	int64_t next_ms, done_ms;
	char error[256];
	bool running;
	bool tried; /* a try started: a bridge has seen delivery_id */
};

struct dheld {
	unsigned kind;
	int64_t at; /* Unix seconds */
	int64_t created_ms;
	char *text, *doc; /* doc: the alert's object, without alert_id */
	bool writing;     /* in the open batch, not committed yet */
	bool untried;     /* no tries before the caller's write fails */
	size_t n_sinks;
	struct dheld_sink *sinks;
};

struct deliver {
	const struct config *cfg;
	struct loop *l;
	struct store *s;
	struct outbox *o;
	struct mqtt *m;
	struct dsink **sinks;
	size_t n_sinks;
	int running;
	bool stopping;
	struct dbstate_pause db; /* the outbox refused: tries paused */
	struct loop_timer store_timer;
	struct backoff_rng rng;
	struct dheld **held;
	size_t n_held;
	int64_t last_held_ms; /* keeps held delivery_ids unique */
};

/* The try's outcome is known: log it, plan the retry or expiry, and
 * record it (deliver.c). output: what the program printed, escaped for
 * one log line, or NULL. */
void deliver_try_finish(struct dtry *t, bool ok, const char *error, const char *output);

#endif
