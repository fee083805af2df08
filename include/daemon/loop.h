/*
 * loop: the daemon's single poll() loop — file descriptors, signals (through
 * signalfd, so handlers never run in signal context), monotonic timers, and
 * prepare/check hooks around each poll.
 *
 * The hooks are what make "ack after commit" structural: fd callbacks only
 * read (and open a transaction); the check hook, run once after every
 * wake-up's callbacks, commits and only then lets the MQTT layer write its
 * acks. One wake-up, one transaction.
 */
#ifndef GRIDPATROL_LOOP_H
#define GRIDPATROL_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct loop;

typedef void loop_fd_cb(void *arg, int fd, short revents);
typedef void loop_cb(void *arg);

struct loop_timer {
	int64_t due_ms; /* monotonic */
	loop_cb *cb;
	void *arg;
	bool armed;
	int slot; /* private */
};

struct loop *loop_new(void);
void loop_free(struct loop *l);

/* Watch fd for events (POLLIN/POLLOUT). fd < 0 or events == 0 parks the
 * watch without removing it. Returns a handle >= 0, or -1 on ENOMEM. */
int loop_fd_add(struct loop *l, int fd, short events, loop_fd_cb *cb, void *arg);
void loop_fd_set(struct loop *l, int handle, int fd, short events);
void loop_fd_remove(struct loop *l, int handle);

void loop_timer_init(struct loop_timer *t, loop_cb *cb, void *arg);
/* (Re)arm to fire once, delay_ms from the current pass's "now". */
int loop_timer_arm(struct loop *l, struct loop_timer *t, int64_t delay_ms);
void loop_timer_disarm(struct loop *l, struct loop_timer *t);

/* Route a signal to cb (the signal is blocked and read via signalfd). Must
 * be called before loop_run, for every signal of interest. */
int loop_signal(struct loop *l, int signo, loop_cb *cb, void *arg);

/* Hooks run in registration order: prepare before every poll, check once
 * per pass after the fd callbacks and the due timers. */
int loop_on_prepare(struct loop *l, loop_cb *cb, void *arg);
int loop_on_check(struct loop *l, loop_cb *cb, void *arg);

/* Monotonic time read once per pass (so one pass sees one "now"). */
int64_t loop_now_ms(const struct loop *l);
int64_t loop_mono_ms(void);
int64_t loop_wall_ms(void);

/* Runs until loop_stop(); returns 0, or -1 if poll() failed hard. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);

#endif
