/*
 * loop: poll() over a handful of descriptors plus timers.
 *
 * The daemon has few timers (MQTT housekeeping, reconnect, storage retry,
 * status) and few descriptors, so plain arrays are the honest structure;
 * anything that needs many deadlines (per-cell due times) keeps its own heap
 * and arms one timer here for its nearest deadline.
 */
#include "loop.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#define LOOP_MAX_FDS 64
#define LOOP_MAX_TIMERS 32
#define LOOP_MAX_HOOKS 8
#define LOOP_MAX_SIGNALS 8

struct loop_fd {
	bool used;
	int fd;
	short events;
	loop_fd_cb *cb;
	void *arg;
};

struct loop_hook {
	loop_cb *cb;
	void *arg;
};

struct loop_sig {
	int signo;
	loop_cb *cb;
	void *arg;
};

struct loop {
	struct loop_fd fds[LOOP_MAX_FDS];
	struct loop_timer *timers[LOOP_MAX_TIMERS];
	size_t n_timers;
	struct loop_hook prepare[LOOP_MAX_HOOKS], check[LOOP_MAX_HOOKS];
	size_t n_prepare, n_check;
	struct loop_sig sigs[LOOP_MAX_SIGNALS];
	size_t n_sigs;
	sigset_t sigmask;
	int sigfd;
	int64_t now_ms;
	bool stop;
};

static int64_t loop_clock_ms(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t loop_mono_ms(void)
{
	return loop_clock_ms(CLOCK_MONOTONIC);
}

int64_t loop_wall_ms(void)
{
	return loop_clock_ms(CLOCK_REALTIME);
}

int64_t loop_now_ms(const struct loop *l)
{
	return l->now_ms;
}

struct loop *loop_new(void)
{
	struct loop *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->sigfd = -1;
	sigemptyset(&l->sigmask);
	l->now_ms = loop_mono_ms();
	return l;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	if (l->sigfd >= 0)
		close(l->sigfd);
	if (l->n_sigs)
		sigprocmask(SIG_UNBLOCK, &l->sigmask, NULL);
	free(l);
}

int loop_fd_add(struct loop *l, int fd, short events, loop_fd_cb *cb, void *arg)
{
	for (int i = 0; i < LOOP_MAX_FDS; i++) {
		if (!l->fds[i].used) {
			l->fds[i] = (struct loop_fd){ true, fd, events, cb, arg };
			return i;
		}
	}
	errno = ENOMEM;
	return -1;
}

void loop_fd_set(struct loop *l, int handle, int fd, short events)
{
	if (handle < 0 || handle >= LOOP_MAX_FDS || !l->fds[handle].used)
		return;
	l->fds[handle].fd = fd;
	l->fds[handle].events = events;
}

void loop_fd_remove(struct loop *l, int handle)
{
	if (handle >= 0 && handle < LOOP_MAX_FDS)
		l->fds[handle].used = false;
}

void loop_timer_init(struct loop_timer *t, loop_cb *cb, void *arg)
{
	memset(t, 0, sizeof(*t));
	t->cb = cb;
	t->arg = arg;
	t->slot = -1;
}

int loop_timer_arm(struct loop *l, struct loop_timer *t, int64_t delay_ms)
{
	if (delay_ms < 0)
		delay_ms = 0;
	t->due_ms = l->now_ms + delay_ms;
	if (t->armed)
		return 0;
	if (l->n_timers >= LOOP_MAX_TIMERS) {
		errno = ENOMEM;
		return -1;
	}
	t->slot = (int)l->n_timers;
	l->timers[l->n_timers++] = t;
	t->armed = true;
	return 0;
}

void loop_timer_disarm(struct loop *l, struct loop_timer *t)
{
	if (!t->armed)
		return;
	size_t last = --l->n_timers;
	l->timers[t->slot] = l->timers[last];
	l->timers[t->slot]->slot = t->slot;
	t->armed = false;
	t->slot = -1;
}

static void loop_sig_read(void *arg, int fd, short revents)
{
	struct loop *l = arg;
	struct signalfd_siginfo si;

	(void)revents;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		for (size_t i = 0; i < l->n_sigs; i++)
			if ((int)si.ssi_signo == l->sigs[i].signo)
				l->sigs[i].cb(l->sigs[i].arg);
	}
}

int loop_signal(struct loop *l, int signo, loop_cb *cb, void *arg)
{
	if (l->n_sigs >= LOOP_MAX_SIGNALS) {
		errno = ENOMEM;
		return -1;
	}
	sigaddset(&l->sigmask, signo);
	if (sigprocmask(SIG_BLOCK, &l->sigmask, NULL) < 0)
		return -1;
	int fd = signalfd(l->sigfd, &l->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -1;
	if (l->sigfd < 0 && loop_fd_add(l, fd, POLLIN, loop_sig_read, l) < 0) {
		close(fd);
		return -1;
	}
	l->sigfd = fd;
	l->sigs[l->n_sigs++] = (struct loop_sig){ signo, cb, arg };
	return 0;
}

static int loop_hook_add(struct loop_hook *v, size_t *n, loop_cb *cb, void *arg)
{
	if (*n >= LOOP_MAX_HOOKS) {
		errno = ENOMEM;
		return -1;
	}
	v[(*n)++] = (struct loop_hook){ cb, arg };
	return 0;
}

int loop_on_prepare(struct loop *l, loop_cb *cb, void *arg)
{
	return loop_hook_add(l->prepare, &l->n_prepare, cb, arg);
}

int loop_on_check(struct loop *l, loop_cb *cb, void *arg)
{
	return loop_hook_add(l->check, &l->n_check, cb, arg);
}

void loop_stop(struct loop *l)
{
	l->stop = true;
}

static int loop_timeout(const struct loop *l)
{
	int64_t best = -1;
	for (size_t i = 0; i < l->n_timers; i++) {
		int64_t d = l->timers[i]->due_ms - l->now_ms;
		if (d < 0)
			d = 0;
		if (best < 0 || d < best)
			best = d;
	}
	if (best > 60000)
		best = 60000;
	return (int)best;
}

static void loop_fire_timers(struct loop *l)
{
	/* A callback may arm or disarm timers (itself included), so restart
	 * the scan after each one instead of iterating a changing array. */
	for (;;) {
		struct loop_timer *due = NULL;
		for (size_t i = 0; i < l->n_timers; i++) {
			if (l->timers[i]->due_ms <= l->now_ms &&
			    (!due || l->timers[i]->due_ms < due->due_ms))
				due = l->timers[i];
		}
		if (!due)
			return;
		loop_timer_disarm(l, due);
		due->cb(due->arg);
	}
}

int loop_run(struct loop *l)
{
	struct pollfd pfd[LOOP_MAX_FDS];
	int map[LOOP_MAX_FDS];

	l->stop = false;
	while (!l->stop) {
		l->now_ms = loop_mono_ms();
		for (size_t i = 0; i < l->n_prepare; i++)
			l->prepare[i].cb(l->prepare[i].arg);
		if (l->stop)
			break;

		nfds_t n = 0;
		for (int i = 0; i < LOOP_MAX_FDS; i++) {
			struct loop_fd *f = &l->fds[i];
			if (!f->used || f->fd < 0 || f->events == 0)
				continue;
			pfd[n] = (struct pollfd){ .fd = f->fd, .events = f->events };
			map[n++] = i;
		}
		int rc = poll(pfd, n, loop_timeout(l));
		if (rc < 0 && errno != EINTR)
			return -1;
		l->now_ms = loop_mono_ms();
		for (nfds_t i = 0; rc > 0 && i < n; i++) {
			struct loop_fd *f = &l->fds[map[i]];
			/* The watch may have been changed by an earlier callback
			 * in this pass; deliver only to what is still current. */
			if (pfd[i].revents && f->used && f->fd == pfd[i].fd)
				f->cb(f->arg, pfd[i].fd, pfd[i].revents);
		}
		/* Timers before check: whatever a timer writes (alerts, outbox
		 * state) commits in this same pass instead of sitting in an
		 * open transaction until the next wake-up. */
		loop_fire_timers(l);
		for (size_t i = 0; i < l->n_check; i++)
			l->check[i].cb(l->check[i].arg);
	}
	return 0;
}
