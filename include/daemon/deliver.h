/*
 * deliver: runs the alert sinks from the poll loop.
 *
 * exec sinks: the program is spawned directly (no shell) in its own process
 * group, the delivery JSON written to its stdin through a non-blocking pipe,
 * its stdout+stderr captured (bounded) and logged; exit 0 means delivered,
 * anything else or running past `timeout` (the group is SIGKILLed) means
 * retry with backoff: retry.min doubling to retry.max, ±10 % jitter, counted
 * from the end of the failed try, until retry.give_up_after from creation,
 * then expired. One try per sink at a time, sinks independent, so a hanging
 * script delays neither ingest nor other sinks.
 *
 * mqtt sinks: each alert of a delivery is published at QoS 1 to the sink's
 * topic template ({cell}, {kind}); delivered when every PUBACK is back.
 *
 * State changes go through outbox inside store batches that the daemon
 * commits in the same loop pass.
 *
 * The caller ignores SIGPIPE (a script that does not read its stdin makes
 * our writes fail with EPIPE, which is expected). m may be NULL: mqtt sink
 * tries then fail as if the broker were unreachable (retried, then
 * expired). deliver_new registers SIGCHLD with loop_signal, so it must run
 * before loop_run; deliver_free must run before loop_free, and the loop
 * must not run again after it.
 */
#ifndef GRIDPATROL_DELIVER_H
#define GRIDPATROL_DELIVER_H

#include "config.h"
#include "loop.h"
#include "mqtt.h"
#include "outbox.h"
#include "store.h"

struct deliver;

struct deliver *deliver_new(const struct config *cfg, struct loop *l, struct store *s,
                            struct outbox *o, struct mqtt *m, char *err, size_t errlen);
void deliver_free(struct deliver *d);

/* New alerts were queued (or the config changed): re-plan the timers. */
void deliver_kick(struct deliver *d);
/* After SIGHUP: sinks are matched by name; a running try finishes. */
void deliver_set_config(struct deliver *d, const struct config *cfg);
/* mqtt PUBACK for a message id this module published. */
void deliver_on_published(struct deliver *d, int mid);
/* Stop starting tries; wait up to timeout_ms for running ones (killing
 * what is left; those stay pending for the next start). */
void deliver_shutdown(struct deliver *d, int timeout_ms);
/* (Outcomes of tries that end during deliver_shutdown are written into the
 * open batch: the caller commits after it returns.) */
/* Held alerts: a `system` alert raised while the database cannot be
 * written is kept here and tried from memory on every exec sink whose
 * kinds include it (delivery_id "<sink>-m<raise time, ms>"; "alert_id" is
 * null in its document), with the usual backoff and give-up, even while
 * outbox tries are paused. Without try_now the first try waits for
 * deliver_held_committed(false): the caller means to write it at once
 * and it then goes out through the outbox like any alert. Returns -1 when
 * out of memory. */
int deliver_hold(struct deliver *d, unsigned kind, int64_t at, const char *text, const char *doc,
                 bool try_now);
size_t deliver_held_count(const struct deliver *d);
/* Write the held alerts whose tries are not running into the open batch
 * (alert, delivery and outbox rows in the state memory reached), then
 * tell deliver_held_committed whether that batch committed: only then are
 * they forgotten. Each alert goes in whole or not at all: after a failure
 * the batch holds the complete alerts written before it, and committing
 * it anyway (as the daemon does at shutdown) forgets just those. */
enum store_status deliver_write_held(struct deliver *d);
void deliver_held_committed(struct deliver *d, bool committed);
/* Tries currently running (for tests and status). */
int deliver_running(const struct deliver *d);

#endif
