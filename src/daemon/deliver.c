/*
 * deliver: the active half of alert delivery — it takes due deliveries
 * from the outbox and runs them through their sinks without ever blocking
 * the poll loop.
 *
 * Each sink is an independent little state machine: idle with one loop
 * timer armed for its next due delivery, or running exactly one try, the
 * same timer then standing for that try's deadline. exec tries are child
 * processes spawned with posix_spawn (the daemon holds a SQLite connection,
 * and fork() with one open is the documented way to corrupt it), each in
 * its own process group so a timeout can kill whatever the script started.
 * Their stdin is fed and their output collected by loop fd callbacks;
 * SIGCHLD arrives through the loop's signalfd. mqtt tries publish one
 * message per alert at QoS 1 and wait for every PUBACK.
 *
 * Every outcome is written through outbox into the daemon's open batch, so
 * the check hook of the same loop pass commits it. When the database cannot
 * be written the module stops starting tries, keeps the finished outcomes
 * in memory and retries on its own timer: nothing is lost and nothing
 * crashes, and the worst case is that an alert goes out twice.
 */
#include "deliver.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backoff.h"
#include "log.h"

extern char **environ;

/* What is kept of a script's output for the log line. */
#define DELIVER_OUTPUT_MAX 4096
/* One environment string may not exceed 128 KiB (MAX_ARG_STRLEN); past
 * that execve fails with E2BIG and the delivery could never succeed, so a
 * huge grouped text is cut (on a UTF-8 boundary) in the environment only —
 * the JSON on stdin always has all of it. */
#define DELIVER_ENV_TEXT_MAX (100 * 1024)
/* Re-plan at least this often, so a wall-clock step (NTP after boot on a
 * board without RTC) delays a due delivery by at most this much. */
#define DELIVER_PLAN_MAX_MS 60000
/* After SIGKILL, how often to look for the exit if SIGCHLD went missing. */
#define DELIVER_REAP_RETRY_MS 1000
#define DELIVER_STORE_RETRY_MIN_MS 1000
#define DELIVER_STORE_RETRY_MAX_MS 5000
/* Reads per output callback, so a chatty child cannot starve the loop. */
#define DELIVER_READS_PER_CB 16

struct deliver;
struct dsink;
struct dheld;
struct dheld_sink;

struct dtry {
	struct dsink *ds;
	struct loop_timer *timer;       /* the sink's timer this try uses */
	struct dheld *held;             /* a held alert's try, or NULL */
	struct dheld_sink *hs;
	struct outbox_delivery del;
	enum config_sink_type type;
	int64_t start_mono;
	int64_t timeout_ms;

	/* exec */
	pid_t pid;              /* also the process group id */
	bool reaped;
	bool timed_out;
	int in_fd, out_fd;      /* ours: write end of stdin, read end of output */
	int in_h, out_h;        /* loop handles, -1 when not watched */
	size_t in_off;
	char out[DELIVER_OUTPUT_MAX];
	size_t out_len;
	bool out_truncated;

	/* mqtt */
	int *mids;              /* -1 once acknowledged */
	size_t n_mids, n_unacked;

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
	const struct config_sink *cfg;  /* NULL: gone from the config, try still running */
	struct loop_timer timer;        /* idle: next due time; running: try deadline */
	struct dtry *cur;
	/* A try of a held alert (below), beside cur: cur may be a finished
	 * try whose outcome waits for the database. Never two running. */
	struct loop_timer mem_timer;
	struct dtry *mem;
};

/*
 * A held alert: a `system` alert raised while the database cannot be
 * written, so it has no alert row, no outbox and no delivery_id of the
 * usual form. It is tried from memory on the exec sinks that want it
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
	bool tried;             /* a try started: a bridge has seen delivery_id */
};

struct dheld {
	unsigned kind;
	int64_t at;             /* Unix seconds */
	int64_t created_ms;
	char *text, *doc;       /* doc: the alert's object, without alert_id */
	bool writing;           /* in the open batch, not committed yet */
	bool untried;           /* no tries before the caller's write fails */
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
	bool store_blocked;
	int store_tries;        /* storage retries since the database last took an outcome */
	struct loop_timer store_timer;
	struct backoff_rng rng;
	struct dheld **held;
	size_t n_held;
	int64_t last_held_ms;   /* keeps held delivery_ids unique */
};

static void deliver_plan(struct dsink *ds);
static void deliver_held_plan(struct dsink *ds);
static void deliver_held_done(struct dtry *t);
static void deliver_try_finish(struct dtry *t, bool ok, const char *error);

/* ---- small helpers ---------------------------------------------------- */

static int64_t deliver_backoff_ms(struct deliver *d, int tries)
{
	int64_t min = d->cfg->alerts.retry_min_s * 1000;
	int64_t max = d->cfg->alerts.retry_max_s * 1000;

	return backoff_jitter_ms(backoff_delay_ms(min > 0 ? min : 1000, max, tries), 10,
	                         backoff_rng_next(&d->rng));
}

/* One log line: newlines and other control bytes escaped, the trailing
 * newline dropped. */
static void deliver_escape(const char *in, size_t len, bool truncated, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	while (len > 0 && (in[len - 1] == '\n' || in[len - 1] == '\r'))
		len--;
	for (size_t i = 0; i < len && o + 5 < outlen; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '\n' || c == '\r' || c == '\t') {
			out[o++] = '\\';
			out[o++] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
		} else if (c < 0x20 || c == 0x7f || c == '\\') {
			out[o++] = '\\';
			if (c == '\\') {
				out[o++] = '\\';
			} else {
				out[o++] = 'x';
				out[o++] = hex[c >> 4];
				out[o++] = hex[c & 15];
			}
		} else {
			out[o++] = (char)c;
		}
	}
	if (truncated && o + 4 < outlen) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

static void deliver_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void deliver_unwatch(struct deliver *d, int *h)
{
	if (*h >= 0)
		loop_fd_remove(d->l, *h);
	*h = -1;
}

/* posix_spawn's dup2 actions run in order; a pipe end that landed on 0-2
 * (a daemon started with a closed stdin) would be overwritten by an earlier
 * action, so every end we hand over lives above 2. */
static int deliver_fd_above_2(int *fd)
{
	if (*fd > 2)
		return 0;
	int n = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
	if (n < 0)
		return -1;
	close(*fd);
	*fd = n;
	return 0;
}

static int deliver_pipe(int p[2], int nonblock_end)
{
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	if (deliver_fd_above_2(&p[0]) < 0 || deliver_fd_above_2(&p[1]) < 0 ||
	    fcntl(p[nonblock_end], F_SETFL, O_NONBLOCK) < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		errno = e;
		return -1;
	}
	return 0;
}

/* ---- store trouble ------------------------------------------------------ */

static void deliver_store_trouble(struct deliver *d, enum store_status st, const char *what)
{
	if (st == STORE_FATAL)
		log_errx("delivery: %s: %s", what, store_errmsg(d->s));
	else
		log_warnx("delivery: %s: %s; tries paused until the database is writable",
		          what, store_errmsg(d->s));
	if (!d->store_blocked) {
		d->store_blocked = true;
		int64_t wait = backoff_delay_ms(DELIVER_STORE_RETRY_MIN_MS,
		                                DELIVER_STORE_RETRY_MAX_MS, d->store_tries);
		if (loop_timer_arm(d->l, &d->store_timer, wait) < 0)
			log_errx("delivery: no timer slot for the storage retry");
		if (d->store_tries < INT_MAX)
			d->store_tries++;
	}
}

/* ---- outcome ------------------------------------------------------------ */

static void deliver_try_free(struct dtry *t)
{
	outbox_delivery_clear(&t->del);
	free(t->mids);
	free(t);
}

static void deliver_sink_free(struct dsink *ds)
{
	loop_timer_disarm(ds->d->l, &ds->timer);
	loop_timer_disarm(ds->d->l, &ds->mem_timer);
	free(ds);
}

static void deliver_sink_drop(struct deliver *d, struct dsink *ds)
{
	for (size_t i = 0; i < d->n_sinks; i++) {
		if (d->sinks[i] == ds) {
			d->sinks[i] = d->sinks[--d->n_sinks];
			break;
		}
	}
	deliver_sink_free(ds);
}

/* Write a finished try's outcome. Returns false (and keeps the try) when
 * the database refused it; the storage retry comes back here. */
static bool deliver_record(struct dtry *t)
{
	struct dsink *ds = t->ds;
	struct deliver *d = ds->d;
	enum store_status st;

	if (t->ok)
		st = outbox_mark_delivered(d->o, t->del.id, t->end_wall);
	else if (t->expired)
		st = outbox_mark_expired(d->o, t->del.id, t->end_wall, t->error);
	else
		st = outbox_mark_failed(d->o, t->del.id, t->next_ms, t->error);
	if (st != STORE_OK) {
		deliver_store_trouble(d, st, "recording an outcome");
		return false;
	}
	ds->cur = NULL;
	deliver_try_free(t);
	if (!ds->cfg) {
		deliver_sink_drop(d, ds);
		return true;
	}
	deliver_plan(ds);
	return true;
}

static void deliver_try_finish(struct dtry *t, bool ok, const char *error)
{
	struct dsink *ds = t->ds;
	struct deliver *d = ds->d;
	char out[4 * DELIVER_OUTPUT_MAX + 8];
	const char *sep = t->out_len ? "; output: " : "";

	loop_timer_disarm(d->l, t->timer);
	t->finished = true;
	t->ok = ok;
	t->end_wall = loop_wall_ms();
	d->running--;
	snprintf(t->error, sizeof(t->error), "%s", error ? error : "");
	deliver_escape(t->out, t->out_len, t->out_truncated, out, sizeof(out));
	int64_t took = loop_mono_ms() - t->start_mono;

	if (ok) {
		log_info("delivery %s (sink %s, %zu alert%s) delivered in %lld ms%s%s",
		         t->del.delivery_id, t->del.sink, t->del.n_alerts,
		         t->del.n_alerts == 1 ? "" : "s", (long long)took, sep, out);
	} else {
		int64_t give_up_ms = d->cfg->alerts.give_up_after_s * 1000;
		int64_t deadline = t->del.created_ms + give_up_ms;
		if (t->end_wall >= deadline) {
			t->expired = true;
			log_errx("delivery %s (sink %s, %zu alert%s) EXPIRED after %d tries: %s; "
			         "giving up (retry.give_up_after)%s%s",
			         t->del.delivery_id, t->del.sink, t->del.n_alerts,
			         t->del.n_alerts == 1 ? "" : "s", t->del.tries + 1, t->error,
			         sep, out);
		} else {
			/* The last try lands on the deadline rather than past it,
			 * so give_up_after is honoured to the second. */
			t->next_ms = t->end_wall + deliver_backoff_ms(d, t->del.tries);
			if (t->next_ms > deadline)
				t->next_ms = deadline;
			if (ds->cfg)
				log_warnx("delivery %s (sink %s) try %d failed: %s; next try in "
				          "%.1f s%s%s", t->del.delivery_id, t->del.sink,
				          t->del.tries + 1, t->error,
				          (double)(t->next_ms - t->end_wall) / 1000.0, sep, out);
			else
				log_warnx("delivery %s (sink %s) try %d failed: %s; the sink is no "
				          "longer configured, the delivery stays pending%s%s",
				          t->del.delivery_id, t->del.sink, t->del.tries + 1,
				          t->error, sep, out);
		}
	}
	if (t->held) {
		deliver_held_done(t);
		return;
	}
	if (ds->cfg)
		deliver_held_plan(ds);
	if (!d->store_blocked)
		deliver_record(t);
}

/* ---- exec sinks --------------------------------------------------------- */

static void deliver_exec_write(void *arg, int fd, short revents)
{
	struct dtry *t = arg;
	struct deliver *d = t->ds->d;
	size_t len = strlen(t->del.doc);

	(void)fd;
	(void)revents;
	while (t->in_off < len) {
		ssize_t n = write(t->in_fd, t->del.doc + t->in_off, len - t->in_off);
		if (n > 0) {
			t->in_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		/* EPIPE: the program does not read its stdin (a bridge that
		 * uses GRIDPATROL_TEXT only). Not a failure: its exit status
		 * decides. */
		break;
	}
	deliver_unwatch(d, &t->in_h);
	deliver_close(&t->in_fd);
}

/* Drain what the pipe holds now; returns true at EOF. */
static bool deliver_exec_drain(struct dtry *t, int max_reads)
{
	char buf[4096];

	for (int i = 0; i < max_reads; i++) {
		ssize_t n = read(t->out_fd, buf, sizeof(buf));
		if (n > 0) {
			size_t room = sizeof(t->out) - t->out_len;
			size_t take = (size_t)n < room ? (size_t)n : room;
			memcpy(t->out + t->out_len, buf, take);
			t->out_len += take;
			if (take < (size_t)n)
				t->out_truncated = true;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		return n == 0 || errno != EAGAIN;
	}
	return false;
}

static void deliver_exec_read(void *arg, int fd, short revents)
{
	struct dtry *t = arg;

	(void)fd;
	(void)revents;
	if (deliver_exec_drain(t, DELIVER_READS_PER_CB)) {
		deliver_unwatch(t->ds->d, &t->out_h);
		deliver_close(&t->out_fd);
	}
}

static void deliver_exec_reaped(struct dtry *t, int status, bool lost)
{
	struct deliver *d = t->ds->d;
	char why[160];

	t->reaped = true;
	/* The child is gone, but its output may still sit in the pipe; a
	 * grandchild holding the pipe open must not keep us waiting, so
	 * take what is there and close. */
	if (t->out_fd >= 0)
		deliver_exec_drain(t, 64);
	deliver_unwatch(d, &t->in_h);
	deliver_unwatch(d, &t->out_h);
	deliver_close(&t->in_fd);
	deliver_close(&t->out_fd);

	if (t->timed_out)
		snprintf(why, sizeof(why), "timed out after %lld s, process group killed",
		         (long long)(t->timeout_ms / 1000));
	else if (lost)
		snprintf(why, sizeof(why), "exit status unknown (child reaped elsewhere)");
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		why[0] = '\0';
	else if (WIFEXITED(status))
		snprintf(why, sizeof(why), "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(why, sizeof(why), "killed by signal %d (%s)", WTERMSIG(status),
		         strsignal(WTERMSIG(status)));
	else
		snprintf(why, sizeof(why), "wait status 0x%x", (unsigned)status);
	deliver_try_finish(t, why[0] == '\0', why);
}

/* Reap the child of t if it has exited. */
static void deliver_exec_poll_exit(struct dtry *t)
{
	int status = 0;
	pid_t r;

	if (t->type != CONFIG_SINK_EXEC || t->finished || t->reaped || t->pid <= 0)
		return;
	do
		r = waitpid(t->pid, &status, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == t->pid)
		deliver_exec_reaped(t, status, false);
	else if (r < 0 && errno == ECHILD)
		deliver_exec_reaped(t, 0, true);
}

static void deliver_on_sigchld(void *arg)
{
	struct deliver *d = arg;

	/* SIGCHLDs coalesce: look at every running child. A finished try
	 * may drop its (retired) sink from the array, hence the re-check. */
	for (size_t i = 0; i < d->n_sinks;) {
		struct dsink *ds = d->sinks[i];
		if (ds->mem)
			deliver_exec_poll_exit(ds->mem);
		if (i < d->n_sinks && d->sinks[i] == ds && ds->cur)
			deliver_exec_poll_exit(ds->cur);
		if (i < d->n_sinks && d->sinks[i] == ds)
			i++;
	}
}

static void deliver_exec_kill(struct dtry *t)
{
	/* The group id is the child's pid and stays reserved while the child
	 * is an unreaped zombie or any member lives, so this cannot hit a
	 * stranger. */
	if (kill(-t->pid, SIGKILL) < 0 && errno == ESRCH)
		kill(t->pid, SIGKILL);
}

static void deliver_exec_timeout(struct dtry *t)
{
	struct dsink *ds = t->ds;

	deliver_exec_poll_exit(t);
	if (t->finished)
		return;
	if (!t->timed_out) {
		t->timed_out = true;
		log_debug("delivery %s: timeout, killing process group %ld", t->del.delivery_id,
		          (long)t->pid);
	}
	deliver_exec_kill(t);
	/* SIGCHLD normally reports the death; this only guards against a
	 * lost signal. */
	if (loop_timer_arm(ds->d->l, t->timer, DELIVER_REAP_RETRY_MS) < 0)
		log_errx("delivery %s: no timer slot to reap the killed try", t->del.delivery_id);
}

/* environ without any inherited GRIDPATROL_* of ours, plus ours. */
static char **deliver_env(const struct outbox_delivery *del, char **own)
{
	static const char *const names[] = {
		"GRIDPATROL_DELIVERY_ID=", "GRIDPATROL_KIND=", "GRIDPATROL_TEXT=",
	};
	size_t n = 0, k = 0;
	while (environ && environ[n])
		n++;
	char **env = calloc(n + 4, sizeof(*env));
	if (!env)
		return NULL;

	size_t tlen = strlen(del->text);
	if (tlen > DELIVER_ENV_TEXT_MAX) {
		tlen = DELIVER_ENV_TEXT_MAX;
		while (tlen > 0 && ((unsigned char)del->text[tlen] & 0xc0) == 0x80)
			tlen--;
	}
	if (asprintf(&own[0], "%s%s", names[0], del->delivery_id) < 0)
		own[0] = NULL;
	if (asprintf(&own[1], "%s%s", names[1], del->first_kind) < 0)
		own[1] = NULL;
	if (asprintf(&own[2], "%s%.*s", names[2], (int)tlen, del->text) < 0)
		own[2] = NULL;
	if (!own[0] || !own[1] || !own[2]) {
		free(env);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		bool ours = false;
		for (size_t j = 0; j < 3; j++)
			if (strncmp(environ[i], names[j], strlen(names[j])) == 0)
				ours = true;
		if (!ours)
			env[k++] = environ[i];
	}
	env[k++] = own[0];
	env[k++] = own[1];
	env[k++] = own[2];
	env[k] = NULL;
	return env;
}

/* Spawn the program of sink cs for try t. On failure returns -1 with a
 * reason in err (the try then fails like any other). */
static int deliver_exec_spawn(struct dtry *t, const struct config_sink *cs,
                              char *err, size_t errlen)
{
	struct deliver *d = t->ds->d;
	int in[2] = { -1, -1 }, out[2] = { -1, -1 };
	char *own[3] = { NULL, NULL, NULL };
	char **env = NULL;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	bool fa_ok = false, attr_ok = false;
	sigset_t none, all;
	int rc;

	if (deliver_pipe(in, 1) < 0 || deliver_pipe(out, 0) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		goto fail;
	}
	if (!(env = deliver_env(&t->del, own))) {
		snprintf(err, errlen, "environment: out of memory");
		goto fail;
	}
	/* Watches first: a child we could not watch would be a child we
	 * could not reap. */
	t->in_fd = in[1];
	t->out_fd = out[0];
	in[1] = out[0] = -1;
	if ((t->in_h = loop_fd_add(d->l, t->in_fd, POLLOUT, deliver_exec_write, t)) < 0 ||
	    (t->out_h = loop_fd_add(d->l, t->out_fd, POLLIN, deliver_exec_read, t)) < 0) {
		snprintf(err, errlen, "no poll slot for the child's pipes");
		goto fail;
	}

	sigemptyset(&none);
	sigfillset(&all);
	sigdelset(&all, SIGKILL);
	sigdelset(&all, SIGSTOP);
	if ((rc = posix_spawn_file_actions_init(&fa)) != 0)
		goto fail_rc;
	fa_ok = true;
	if ((rc = posix_spawnattr_init(&attr)) != 0)
		goto fail_rc;
	attr_ok = true;
	/* The daemon blocks TERM/INT/HUP/CHLD for signalfd and ignores PIPE;
	 * both would be inherited across exec and make a script immune to
	 * our SIGKILL's gentler cousins and deaf to broken pipes. */
	if ((rc = posix_spawn_file_actions_adddup2(&fa, in[0], 0)) != 0 ||
	    (rc = posix_spawn_file_actions_adddup2(&fa, out[1], 1)) != 0 ||
	    (rc = posix_spawn_file_actions_adddup2(&fa, out[1], 2)) != 0 ||
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
	    /* Descriptors without O_CLOEXEC (libmosquitto's socket) must
	     * not leak into a user's script. */
	    (rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3)) != 0 ||
#endif
	    (rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP |
	                                   POSIX_SPAWN_SETSIGMASK |
	                                   POSIX_SPAWN_SETSIGDEF)) != 0 ||
	    (rc = posix_spawnattr_setpgroup(&attr, 0)) != 0 ||
	    (rc = posix_spawnattr_setsigmask(&attr, &none)) != 0 ||
	    (rc = posix_spawnattr_setsigdefault(&attr, &all)) != 0)
		goto fail_rc;
	/* posix_spawnp: a bare program name is looked up in PATH, as a user
	 * writing `exec: [wechat-bridge]` expects; still no shell. */
	rc = posix_spawnp(&t->pid, cs->argv[0], &fa, &attr, cs->argv, env);
	if (rc != 0) {
		snprintf(err, errlen, "cannot run %s: %s", cs->argv[0], strerror(rc));
		t->pid = 0;
		goto fail;
	}
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(in[0]);
	close(out[1]);
	free(env);
	for (int i = 0; i < 3; i++)
		free(own[i]);
	return 0;

fail_rc:
	snprintf(err, errlen, "posix_spawn setup: %s", strerror(rc));
fail:
	if (fa_ok)
		posix_spawn_file_actions_destroy(&fa);
	if (attr_ok)
		posix_spawnattr_destroy(&attr);
	deliver_unwatch(d, &t->in_h);
	deliver_unwatch(d, &t->out_h);
	deliver_close(&t->in_fd);
	deliver_close(&t->out_fd);
	for (int i = 0; i < 2; i++) {
		deliver_close(&in[i]);
		deliver_close(&out[i]);
	}
	free(env);
	for (int i = 0; i < 3; i++)
		free(own[i]);
	return -1;
}

/* ---- mqtt sinks --------------------------------------------------------- */

/* The sink's topic template with {cell} and {kind} filled in. Cell ids and
 * kinds are validated topic segments, so no wildcard can sneak in. */
static char *deliver_topic(const char *tmpl, const char *cell, const char *kind)
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

static const char *deliver_json_str(const json_t *obj, const char *key, const char *dflt)
{
	const char *v = json_string_value(json_object_get(obj, key));
	return v && *v ? v : dflt;
}

/* Publish one document per alert: the delivery restricted to that alert.
 * Returns -1 with a reason in err. */
static int deliver_mqtt_publish(struct dtry *t, const struct config_sink *cs,
                                char *err, size_t errlen)
{
	struct deliver *d = t->ds->d;
	json_error_t jerr;
	json_t *doc = json_loads(t->del.doc, 0, &jerr);
	json_t *alerts = json_object_get(doc, "alerts");
	int ret = -1;

	if (!json_is_array(alerts)) {
		snprintf(err, errlen, "delivery document unusable: %s", doc ? "no alerts" : jerr.text);
		goto out;
	}
	size_t n = json_array_size(alerts);
	t->mids = calloc(n ? n : 1, sizeof(*t->mids));
	if (!t->mids) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *a = json_array_get(alerts, i);
		json_t *one = json_pack("{s:s, s:s, s:s, s:[O]}",
		                        "delivery_id", t->del.delivery_id,
		                        "sink", t->del.sink,
		                        "text", deliver_json_str(a, "text", ""),
		                        "alerts", a);
		char *payload = one ? json_dumps(one, JSON_COMPACT) : NULL;
		char *topic = deliver_topic(cs->topic, deliver_json_str(a, "cell", "-"),
		                            deliver_json_str(a, "kind", "-"));
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
		t->mids[t->n_mids++] = mid;
		t->n_unacked++;
	}
	ret = 0;
out:
	json_decref(doc);
	return ret;
}

/* ---- trying ------------------------------------------------------------- */

static void deliver_start(struct dsink *ds)
{
	struct deliver *d = ds->d;
	const struct config_sink *cs = ds->cfg;
	struct outbox_delivery del;
	bool found;
	char err[256];

	if (ds->mem)
		return; /* a held alert's try; its end plans the sink again */
	enum store_status st = outbox_next_due(d->o, ds->name, loop_wall_ms(), &del, &found);
	if (st != STORE_OK) {
		deliver_store_trouble(d, st, "reading the outbox");
		return;
	}
	if (!found) {
		deliver_plan(ds);
		return;
	}
	st = outbox_mark_inflight(d->o, del.id);
	if (st != STORE_OK) {
		outbox_delivery_clear(&del);
		deliver_store_trouble(d, st, "starting a try");
		return;
	}
	struct dtry *t = calloc(1, sizeof(*t));
	if (!t) {
		/* Still 'inflight' in the batch, which the next start (or the
		 * stale-inflight rule in outbox) takes up again. */
		outbox_delivery_clear(&del);
		log_errx("delivery: out of memory");
		loop_timer_arm(d->l, &ds->timer, DELIVER_STORE_RETRY_MAX_MS);
		return;
	}
	t->ds = ds;
	t->timer = &ds->timer;
	t->del = del;
	t->type = cs->type;
	t->in_fd = t->out_fd = t->in_h = t->out_h = -1;
	t->start_mono = loop_mono_ms();
	t->timeout_ms = cs->timeout_s * 1000;
	ds->cur = t;
	d->running++;
	log_debug("delivery %s (sink %s, %zu alerts): try %d", del.delivery_id, ds->name,
	          del.n_alerts, del.tries + 1);

	if (cs->type == CONFIG_SINK_EXEC) {
		if (deliver_exec_spawn(t, cs, err, sizeof(err)) < 0) {
			deliver_try_finish(t, false, err);
			return;
		}
	} else {
		/* No broker (or no mqtt client at all, as in unit tests) is a
		 * failed try like any other: backoff, then expiry. */
		if (!d->m || !mqtt_connected(d->m)) {
			deliver_try_finish(t, false, "not connected to the broker");
			return;
		}
		if (deliver_mqtt_publish(t, cs, err, sizeof(err)) < 0) {
			deliver_try_finish(t, false, err);
			return;
		}
		if (t->n_unacked == 0) {
			deliver_try_finish(t, true, NULL);
			return;
		}
	}
	if (loop_timer_arm(d->l, &ds->timer, t->timeout_ms) < 0)
		log_errx("delivery %s: no timer slot for the try's timeout", del.delivery_id);
}

/* ---- held alerts ---------------------------------------------------------- */

static bool deliver_busy(const struct dsink *ds)
{
	return (ds->cur && !ds->cur->finished) || ds->mem;
}

/* The held entry of sink ds due first (NULL: none). */
static struct dheld_sink *deliver_held_next(struct dsink *ds, struct dheld **which)
{
	struct deliver *d = ds->d;
	struct dheld_sink *best = NULL;

	for (size_t i = 0; i < d->n_held; i++) {
		struct dheld *h = d->held[i];
		if (h->writing || h->untried)
			continue;
		for (size_t j = 0; j < h->n_sinks; j++) {
			struct dheld_sink *hs = &h->sinks[j];
			if (hs->state != OUTBOX_HELD_PENDING || hs->running ||
			    strcmp(hs->name, ds->name) != 0)
				continue;
			if (!best || hs->next_ms < best->next_ms) {
				best = hs;
				*which = h;
			}
		}
	}
	return best;
}

static void deliver_held_plan(struct dsink *ds)
{
	struct deliver *d = ds->d;
	struct dheld *h;

	if (ds->mem || !ds->cfg || ds->cfg->type != CONFIG_SINK_EXEC || d->stopping ||
	    deliver_busy(ds))
		return;
	struct dheld_sink *hs = deliver_held_next(ds, &h);
	if (!hs) {
		loop_timer_disarm(d->l, &ds->mem_timer);
		return;
	}
	int64_t delay = hs->next_ms - loop_wall_ms();
	if (delay < 0)
		delay = 0;
	if (delay > DELIVER_PLAN_MAX_MS)
		delay = DELIVER_PLAN_MAX_MS;
	if (loop_timer_arm(d->l, &ds->mem_timer, delay) < 0)
		log_errx("delivery: no timer slot for sink %s", ds->name);
}

/* The delivery document of a held alert: as outbox assembles it, with
 * "alert_id": null — the alert has no row yet. */
static char *deliver_held_doc(const struct dheld *h, const struct dheld_sink *hs)
{
	json_t *src = json_loads(h->doc, 0, NULL);
	json_t *obj = json_object();
	json_t *doc = NULL;
	char *out = NULL;
	const char *k;
	json_t *v;
	int rc = 0;

	if (!json_is_object(src) || !obj)
		goto out;
	rc |= json_object_set_new(obj, "alert_id", json_null());
	json_object_foreach(src, k, v)
		rc |= json_object_set(obj, k, v);
	doc = json_pack("{s:s, s:s, s:s, s:[O]}", "delivery_id", hs->delivery_id,
	                "sink", hs->name, "text", h->text, "alerts", obj);
	if (doc && rc == 0)
		out = json_dumps(doc, JSON_COMPACT);
out:
	json_decref(doc);
	json_decref(obj);
	json_decref(src);
	return out;
}

static void deliver_held_start(struct dsink *ds)
{
	struct deliver *d = ds->d;
	const struct config_sink *cs = ds->cfg;
	struct dheld *h;
	char err[256];

	if (ds->mem || !cs || cs->type != CONFIG_SINK_EXEC || d->stopping || deliver_busy(ds))
		return;
	struct dheld_sink *hs = deliver_held_next(ds, &h);
	if (!hs || hs->next_ms > loop_wall_ms()) {
		deliver_held_plan(ds);
		return;
	}
	struct dtry *t = calloc(1, sizeof(*t));
	if (t) {
		t->del.doc = deliver_held_doc(h, hs);
		t->del.text = strdup(h->text);
	}
	if (!t || !t->del.doc || !t->del.text) {
		if (t)
			deliver_try_free(t);
		log_errx("delivery %s: out of memory", hs->delivery_id);
		loop_timer_arm(d->l, &ds->mem_timer, DELIVER_STORE_RETRY_MAX_MS);
		return;
	}
	t->ds = ds;
	t->timer = &ds->mem_timer;
	t->held = h;
	t->hs = hs;
	snprintf(t->del.sink, sizeof(t->del.sink), "%s", hs->name);
	snprintf(t->del.delivery_id, sizeof(t->del.delivery_id), "%s", hs->delivery_id);
	snprintf(t->del.first_kind, sizeof(t->del.first_kind), "%s", config_kind_name(h->kind));
	t->del.tries = hs->tries;
	t->del.created_ms = h->created_ms;
	t->del.n_alerts = 1;
	t->type = CONFIG_SINK_EXEC;
	t->in_fd = t->out_fd = t->in_h = t->out_h = -1;
	t->start_mono = loop_mono_ms();
	t->timeout_ms = cs->timeout_s * 1000;
	hs->running = true;
	hs->tried = true;
	ds->mem = t;
	d->running++;
	log_debug("delivery %s (sink %s, held in memory): try %d", hs->delivery_id, ds->name,
	          hs->tries + 1);
	if (deliver_exec_spawn(t, cs, err, sizeof(err)) < 0) {
		deliver_try_finish(t, false, err);
		return;
	}
	if (loop_timer_arm(d->l, &ds->mem_timer, t->timeout_ms) < 0)
		log_errx("delivery %s: no timer slot for the try's timeout", hs->delivery_id);
}

static void deliver_held_timer(void *arg)
{
	struct dsink *ds = arg;
	struct dtry *t = ds->mem;

	if (!t)
		deliver_held_start(ds);
	else if (!t->finished)
		deliver_exec_timeout(t);
}

/* A held try ended: its outcome stays in memory until deliver_write_held. */
static void deliver_held_done(struct dtry *t)
{
	struct dsink *ds = t->ds;
	struct deliver *d = ds->d;
	struct dheld_sink *hs = t->hs;

	hs->running = false;
	if (t->ok) {
		hs->state = OUTBOX_HELD_DELIVERED;
		hs->done_ms = t->end_wall;
	} else {
		hs->tries++;
		snprintf(hs->error, sizeof(hs->error), "%s", t->error);
		if (t->expired) {
			hs->state = OUTBOX_HELD_EXPIRED;
			hs->done_ms = t->end_wall;
		} else {
			hs->next_ms = t->next_ms;
		}
	}
	ds->mem = NULL;
	deliver_try_free(t);
	if (!ds->cfg) {
		if (!ds->cur)
			deliver_sink_drop(d, ds);
		return;
	}
	if (!d->store_blocked)
		deliver_plan(ds);
	deliver_held_plan(ds);
}

static void deliver_held_free(struct dheld *h)
{
	if (!h)
		return;
	free(h->text);
	free(h->doc);
	free(h->sinks);
	free(h);
}

int deliver_hold(struct deliver *d, unsigned kind, int64_t at, const char *text,
                 const char *doc, bool try_now)
{
	struct dheld *h = calloc(1, sizeof(*h));
	struct dheld **v = realloc(d->held, (d->n_held + 1) * sizeof(*v));

	if (v)
		d->held = v;
	if (!h || !v)
		goto fail;
	h->kind = kind;
	h->at = at;
	h->untried = !try_now;
	h->created_ms = loop_wall_ms();
	if (h->created_ms <= d->last_held_ms)
		h->created_ms = d->last_held_ms + 1;
	d->last_held_ms = h->created_ms;
	h->text = strdup(text);
	h->doc = strdup(doc);
	h->sinks = calloc(d->n_sinks ? d->n_sinks : 1, sizeof(*h->sinks));
	if (!h->text || !h->doc || !h->sinks)
		goto fail;
	for (size_t i = 0; i < d->n_sinks; i++) {
		const struct config_sink *cs = d->sinks[i]->cfg;
		if (!cs || cs->type != CONFIG_SINK_EXEC || !(cs->kinds & kind))
			continue;
		struct dheld_sink *hs = &h->sinks[h->n_sinks++];
		snprintf(hs->name, sizeof(hs->name), "%s", cs->name);
		snprintf(hs->delivery_id, sizeof(hs->delivery_id), "%s-m%lld", cs->name,
		         (long long)h->created_ms);
		hs->next_ms = h->created_ms;
	}
	d->held[d->n_held++] = h;
	for (size_t i = 0; try_now && i < d->n_sinks; i++)
		deliver_held_plan(d->sinks[i]);
	return 0;
fail:
	deliver_held_free(h);
	return -1;
}

size_t deliver_held_count(const struct deliver *d)
{
	return d->n_held;
}

enum store_status deliver_write_held(struct deliver *d)
{
	for (size_t i = 0; i < d->n_held; i++) {
		struct dheld *h = d->held[i];
		struct outbox_held oh[CONFIG_SINKS_MAX];
		size_t n = 0;
		bool running = false;

		if (h->writing)
			continue;
		for (size_t j = 0; j < h->n_sinks; j++)
			running |= h->sinks[j].running;
		if (running)
			continue; /* its outcome is not known yet: a later pass */
		for (size_t j = 0; j < h->n_sinks && n < CONFIG_SINKS_MAX; j++) {
			const struct dheld_sink *hs = &h->sinks[j];
			oh[n++] = (struct outbox_held){
				.sink = hs->name, .state = hs->state, .tries = hs->tries,
				.next_ms = hs->next_ms, .done_ms = hs->done_ms,
				.last_error = hs->error[0] ? hs->error : NULL,
				/* Untried: an ordinary "<sink>-<row id>". */
				.delivery_id = hs->tried ? hs->delivery_id : NULL,
			};
		}
		/* "held": this alert went out from memory; its delivery rows
		 * say what each sink made of it. */
		json_t *j = json_loads(h->doc, 0, NULL);
		char *doc = NULL;
		if (json_is_object(j) && json_object_set_new(j, "held", json_true()) == 0)
			doc = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(j);
		struct outbox_alert oa = {
			.kind = h->kind, .at = h->at, .text = h->text, .doc = doc ? doc : h->doc,
		};
		enum store_status st = outbox_add_held(d->o, d->cfg, &oa, h->created_ms, oh, n,
		                                       NULL);
		free(doc);
		if (st != STORE_OK)
			return st;
		h->writing = true;
	}
	return STORE_OK;
}

void deliver_held_committed(struct deliver *d, bool committed)
{
	size_t k = 0, written = 0;

	for (size_t i = 0; i < d->n_held; i++) {
		struct dheld *h = d->held[i];
		if (h->writing && committed) {
			deliver_held_free(h);
			written++;
			continue;
		}
		h->writing = false;
		if (!committed)
			h->untried = false;
		d->held[k++] = h;
	}
	d->n_held = k;
	if (written)
		log_info("delivery: %zu alert%s held in memory written to the database", written,
		         written == 1 ? "" : "s");
	/* After a commit what is left is either being tried (planned again
	 * when the try ends) or new, to be written by the next pass. */
	for (size_t i = 0; !committed && i < d->n_sinks; i++)
		deliver_held_plan(d->sinks[i]);
	if (written)
		deliver_kick(d);
}

static void deliver_sink_timer(void *arg)
{
	struct dsink *ds = arg;
	struct dtry *t = ds->cur;

	if (!t) {
		if (!ds->d->stopping && !ds->d->store_blocked && ds->cfg)
			deliver_start(ds);
		return;
	}
	if (t->finished)
		return;
	if (t->type == CONFIG_SINK_EXEC) {
		deliver_exec_timeout(t);
	} else {
		char why[96];
		snprintf(why, sizeof(why), "%zu of %zu PUBACKs missing after %lld s",
		         t->n_unacked, t->n_mids, (long long)(t->timeout_ms / 1000));
		deliver_try_finish(t, false, why);
	}
}

static void deliver_plan(struct dsink *ds)
{
	struct deliver *d = ds->d;
	int64_t next;

	if (ds->cur || ds->mem || !ds->cfg || d->stopping || d->store_blocked)
		return;
	enum store_status st = outbox_next_time(d->o, ds->name, &next);
	if (st != STORE_OK) {
		deliver_store_trouble(d, st, "planning");
		return;
	}
	if (next == INT64_MAX) {
		loop_timer_disarm(d->l, &ds->timer);
		return;
	}
	int64_t delay = next - loop_wall_ms();
	if (delay < 0)
		delay = 0;
	if (delay > DELIVER_PLAN_MAX_MS)
		delay = DELIVER_PLAN_MAX_MS;
	if (loop_timer_arm(d->l, &ds->timer, delay) < 0)
		log_errx("delivery: no timer slot for sink %s", ds->name);
}

static void deliver_store_retry(void *arg)
{
	struct deliver *d = arg;

	d->store_blocked = false;
	for (size_t i = 0; i < d->n_sinks;) {
		struct dsink *ds = d->sinks[i];
		if (ds->cur && ds->cur->finished && !deliver_record(ds->cur))
			return;  /* blocked again; the timer is re-armed */
		if (i < d->n_sinks && d->sinks[i] == ds)
			i++;
	}
	d->store_tries = 0;
	deliver_kick(d);
}

/* ---- public ------------------------------------------------------------- */

static struct dsink *deliver_sink_new(struct deliver *d, const struct config_sink *cs)
{
	struct dsink *ds = calloc(1, sizeof(*ds));
	if (!ds)
		return NULL;
	ds->d = d;
	ds->cfg = cs;
	snprintf(ds->name, sizeof(ds->name), "%s", cs->name);
	loop_timer_init(&ds->timer, deliver_sink_timer, ds);
	loop_timer_init(&ds->mem_timer, deliver_held_timer, ds);
	return ds;
}

/* Match the configured sinks to ours by name. Returns -1 on ENOMEM, with
 * the old set untouched. */
static int deliver_sync_sinks(struct deliver *d, const struct config *cfg)
{
	size_t n = cfg->alerts.n_sinks;
	size_t cap = n + d->n_sinks;
	struct dsink **v = calloc(cap ? cap : 1, sizeof(*v));
	bool *kept = calloc(d->n_sinks ? d->n_sinks : 1, sizeof(*kept));
	size_t k = 0;

	if (!v || !kept)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		const struct config_sink *cs = &cfg->alerts.sinks[i];
		struct dsink *ds = NULL;
		for (size_t j = 0; j < d->n_sinks; j++) {
			if (!kept[j] && strcmp(d->sinks[j]->name, cs->name) == 0) {
				ds = d->sinks[j];
				kept[j] = true;
				break;
			}
		}
		if (!ds && !(ds = deliver_sink_new(d, cs)))
			goto fail;
		v[k++] = ds;
	}
	/* Only now, when nothing can fail any more, touch the old sinks. */
	for (size_t i = 0; i < k; i++)
		for (size_t j = 0; j < n; j++)
			if (strcmp(v[i]->name, cfg->alerts.sinks[j].name) == 0)
				v[i]->cfg = &cfg->alerts.sinks[j];
	for (size_t j = 0; j < d->n_sinks; j++) {
		struct dsink *ds = d->sinks[j];
		if (kept[j])
			continue;
		if (ds->cur || ds->mem) {
			/* Gone from the config: its running try finishes and
			 * records its outcome, then the sink is dropped. */
			ds->cfg = NULL;
			v[k++] = ds;
		} else {
			deliver_sink_free(ds);
		}
	}
	free(d->sinks);
	free(kept);
	d->sinks = v;
	d->n_sinks = k;
	d->cfg = cfg;
	return 0;
fail:
	for (size_t i = 0; i < k; i++) {
		bool old = false;
		for (size_t j = 0; j < d->n_sinks; j++)
			old |= d->sinks[j] == v[i];
		if (!old)
			deliver_sink_free(v[i]);
	}
	free(v);
	free(kept);
	return -1;
}

struct deliver *deliver_new(const struct config *cfg, struct loop *l, struct store *s,
                            struct outbox *o, struct mqtt *m, char *err, size_t errlen)
{
	struct deliver *d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	d->cfg = cfg;
	d->l = l;
	d->s = s;
	d->o = o;
	d->m = m;
	backoff_rng_seed(&d->rng, (uint64_t)loop_wall_ms() ^ ((uint64_t)getpid() << 32) ^
	                 (uintptr_t)d);
	loop_timer_init(&d->store_timer, deliver_store_retry, d);
	if (deliver_sync_sinks(d, cfg) < 0) {
		snprintf(err, errlen, "out of memory");
		free(d);
		return NULL;
	}
	if (loop_signal(l, SIGCHLD, deliver_on_sigchld, d) < 0) {
		snprintf(err, errlen, "SIGCHLD: %s", strerror(errno));
		deliver_free(d);
		return NULL;
	}
	return d;
}

void deliver_kick(struct deliver *d)
{
	for (size_t i = 0; i < d->n_sinks; i++)
		deliver_plan(d->sinks[i]);
}

void deliver_set_config(struct deliver *d, const struct config *cfg)
{
	if (deliver_sync_sinks(d, cfg) < 0) {
		/* The old sinks point into the old config, which the caller is
		 * about to free: without memory for the new set, stop starting
		 * tries rather than read freed memory. */
		log_errx("delivery: out of memory applying the new configuration; "
		         "deliveries stop until the next reload");
		for (size_t i = 0; i < d->n_sinks; i++)
			d->sinks[i]->cfg = NULL;
		d->cfg = cfg;
		return;
	}
	deliver_kick(d);
}

void deliver_on_published(struct deliver *d, int mid)
{
	for (size_t i = 0; i < d->n_sinks; i++) {
		struct dtry *t = d->sinks[i]->cur;
		if (!t || t->finished || t->type != CONFIG_SINK_MQTT)
			continue;
		for (size_t j = 0; j < t->n_mids; j++) {
			if (t->mids[j] == mid) {
				t->mids[j] = -1;
				if (--t->n_unacked == 0)
					deliver_try_finish(t, true, NULL);
				return;
			}
		}
	}
}

int deliver_running(const struct deliver *d)
{
	return d->running;
}

/* A try abandoned at shutdown: its row stays 'inflight' and outbox_recover
 * makes it pending again at the next start. */
static void deliver_abandon(struct deliver *d, struct dsink *ds, struct dtry *t)
{
	if (t->held) {
		/* Stays pending in memory: deliver_write_held (the daemon's
		 * last commit) hands it to the outbox for the next start. */
		t->hs->running = false;
		if (!t->finished)
			d->running--;
		log_warnx("delivery %s (sink %s): still running at shutdown, killed",
		          t->del.delivery_id, ds->name);
	} else if (!t->finished) {
		d->running--;
		log_warnx("delivery %s (sink %s): still running at shutdown, %s; "
		          "it is tried again at the next start", t->del.delivery_id, ds->name,
		          t->type == CONFIG_SINK_EXEC ? "killed" : "abandoned");
	} else {
		log_warnx("delivery %s (sink %s): outcome not recorded (database not "
		          "writable); it is tried again at the next start",
		          t->del.delivery_id, ds->name);
	}
	deliver_unwatch(d, &t->in_h);
	deliver_unwatch(d, &t->out_h);
	deliver_close(&t->in_fd);
	deliver_close(&t->out_fd);
	loop_timer_disarm(d->l, t->timer);
	if (t == ds->mem)
		ds->mem = NULL;
	else
		ds->cur = NULL;
	deliver_try_free(t);
}

/* The two try slots of a sink: k = 0 the outbox's, 1 a held alert's. */
static struct dtry *deliver_slot(const struct dsink *ds, int k)
{
	return k ? ds->mem : ds->cur;
}

static bool deliver_exec_pending(const struct deliver *d)
{
	for (size_t i = 0; i < d->n_sinks; i++) {
		for (int k = 0; k < 2; k++) {
			const struct dtry *t = deliver_slot(d->sinks[i], k);
			if (t && !t->finished && t->type == CONFIG_SINK_EXEC)
				return true;
		}
	}
	return false;
}

void deliver_shutdown(struct deliver *d, int timeout_ms)
{
	int64_t end = loop_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);

	d->stopping = true;
	loop_timer_disarm(d->l, &d->store_timer);
	for (size_t i = 0; i < d->n_sinks; i++) {
		if (!d->sinks[i]->cur)
			loop_timer_disarm(d->l, &d->sinks[i]->timer);
		if (!d->sinks[i]->mem)
			loop_timer_disarm(d->l, &d->sinks[i]->mem_timer);
	}

	/* The loop no longer runs: drive the children's pipes here, and look
	 * for their exits every few ms (SIGCHLD stays blocked for signalfd). */
	while (deliver_exec_pending(d)) {
		struct pollfd pfd[2 * 64];
		struct dtry *who[2 * 64];
		nfds_t n = 0;
		int64_t left = end - loop_mono_ms();

		if (left <= 0)
			break;
		for (size_t i = 0; i < 2 * d->n_sinks && n + 2 <= 2 * 64; i++) {
			struct dtry *t = deliver_slot(d->sinks[i / 2], (int)(i % 2));
			if (!t || t->finished || t->type != CONFIG_SINK_EXEC)
				continue;
			if (t->in_fd >= 0) {
				pfd[n] = (struct pollfd){ .fd = t->in_fd, .events = POLLOUT };
				who[n++] = t;
			}
			if (t->out_fd >= 0) {
				pfd[n] = (struct pollfd){ .fd = t->out_fd, .events = POLLIN };
				who[n++] = t;
			}
		}
		int rc = poll(pfd, n, left < 20 ? (int)left : 20);
		for (nfds_t i = 0; rc > 0 && i < n; i++) {
			if (!pfd[i].revents)
				continue;
			if (pfd[i].fd == who[i]->in_fd)
				deliver_exec_write(who[i], pfd[i].fd, pfd[i].revents);
			else if (pfd[i].fd == who[i]->out_fd)
				deliver_exec_read(who[i], pfd[i].fd, pfd[i].revents);
		}
		deliver_on_sigchld(d);
	}

	for (size_t i = 0; i < 2 * d->n_sinks; i++) {
		struct dtry *t = deliver_slot(d->sinks[i / 2], (int)(i % 2));
		if (t && !t->finished && t->type == CONFIG_SINK_EXEC && !t->reaped) {
			deliver_exec_kill(t);
			/* Reap, but never hang on a child stuck in the kernel. */
			for (int k = 0; k < 100; k++) {
				pid_t r = waitpid(t->pid, NULL, WNOHANG);
				if (r == t->pid || (r < 0 && errno != EINTR))
					break;
				poll(NULL, 0, 10);
			}
		}
	}
	for (size_t i = 0; i < d->n_sinks; i++)
		for (int k = 0; k < 2; k++)
			if (deliver_slot(d->sinks[i], k))
				deliver_abandon(d, d->sinks[i], deliver_slot(d->sinks[i], k));
}

void deliver_free(struct deliver *d)
{
	if (!d)
		return;
	/* Never leave a child behind, even without a clean shutdown. */
	if (!d->stopping || d->running > 0)
		deliver_shutdown(d, 0);
	for (size_t i = 0; i < d->n_sinks; i++)
		deliver_sink_free(d->sinks[i]);
	free(d->sinks);
	for (size_t i = 0; i < d->n_held; i++) {
		log_errx("alert held in memory lost at exit (database not writable): %s",
		         d->held[i]->text);
		deliver_held_free(d->held[i]);
	}
	free(d->held);
	loop_timer_disarm(d->l, &d->store_timer);
	free(d);
}
