/*
 * sink_exec: the driver of exec sinks (struct sink_ops, sink_impl.h). A try
 * is the sink's program spawned with posix_spawn — the daemon holds a SQLite
 * connection, and fork() with one open is the documented way to corrupt it —
 * directly (no shell), in its own process group so a timeout can kill
 * whatever the script started. The delivery document is written to its stdin
 * through a non-blocking pipe and its stdout+stderr collected (bounded) by
 * loop fd callbacks; exit 0 is delivered, anything else a failed try. The
 * core polls it on SIGCHLD, which arrives through the loop's signalfd.
 */
#include "sink_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"

extern char **environ;

/* What is kept of a script's output for the log line. */
#define SINK_EXEC_OUTPUT_MAX 4096
/* One environment string may not exceed 128 KiB (MAX_ARG_STRLEN); past
 * that execve fails with E2BIG and the delivery could never succeed, so a
 * huge grouped text is cut (on a UTF-8 boundary) in the environment only —
 * the JSON on stdin always has all of it. */
#define SINK_EXEC_ENV_TEXT_MAX (100 * 1024)
/* After SIGKILL, how often to look for the exit if SIGCHLD went missing. */
#define SINK_EXEC_REAP_RETRY_MS 1000
/* Reads per output callback, so a chatty child cannot starve the loop. */
#define SINK_EXEC_READS_PER_CB 16

struct sink_exec_try {
	pid_t pid; /* also the process group id */
	bool reaped;
	bool timed_out;
	int in_fd, out_fd; /* ours: write end of stdin, read end of output */
	int in_h, out_h;   /* loop handles, -1 when not watched */
	size_t in_off;
	char out[SINK_EXEC_OUTPUT_MAX];
	size_t out_len;
	bool out_truncated;
};
/* One log line: newlines and other control bytes escaped, the trailing
 * newline dropped. */
static void sink_exec_escape(const char *in, size_t len, bool truncated, char *out, size_t outlen)
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

static void sink_exec_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void sink_exec_unwatch(struct deliver *d, int *h)
{
	if (*h >= 0)
		loop_fd_remove(d->l, *h);
	*h = -1;
}

/* posix_spawn's dup2 actions run in order; a pipe end that landed on 0-2
 * (a daemon started with a closed stdin) would be overwritten by an earlier
 * action, so every end we hand over lives above 2. */
static int sink_exec_fd_above_2(int *fd)
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

static int sink_exec_pipe(int p[2], int nonblock_end)
{
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	if (sink_exec_fd_above_2(&p[0]) < 0 || sink_exec_fd_above_2(&p[1]) < 0 ||
	    fcntl(p[nonblock_end], F_SETFL, O_NONBLOCK) < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		errno = e;
		return -1;
	}
	return 0;
}

static void sink_exec_write(void *arg, int fd, short revents)
{
	struct dtry *t = arg;
	struct sink_exec_try *x = t->drv;
	struct deliver *d = t->ds->d;
	size_t len = strlen(t->del.doc);

	(void)fd;
	(void)revents;
	while (x->in_off < len) {
		ssize_t n = write(x->in_fd, t->del.doc + x->in_off, len - x->in_off);
		if (n > 0) {
			x->in_off += (size_t)n;
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
	sink_exec_unwatch(d, &x->in_h);
	sink_exec_close(&x->in_fd);
}

/* Drain what the pipe holds now; returns true at EOF. */
static bool sink_exec_drain(struct dtry *t, int max_reads)
{
	struct sink_exec_try *x = t->drv;
	char buf[4096];

	for (int i = 0; i < max_reads; i++) {
		ssize_t n = read(x->out_fd, buf, sizeof(buf));
		if (n > 0) {
			size_t room = sizeof(x->out) - x->out_len;
			size_t take = (size_t)n < room ? (size_t)n : room;
			memcpy(x->out + x->out_len, buf, take);
			x->out_len += take;
			if (take < (size_t)n)
				x->out_truncated = true;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		return n == 0 || errno != EAGAIN;
	}
	return false;
}

static void sink_exec_read(void *arg, int fd, short revents)
{
	struct dtry *t = arg;
	struct sink_exec_try *x = t->drv;

	(void)fd;
	(void)revents;
	if (sink_exec_drain(t, SINK_EXEC_READS_PER_CB)) {
		sink_exec_unwatch(t->ds->d, &x->out_h);
		sink_exec_close(&x->out_fd);
	}
}

static void sink_exec_reaped(struct dtry *t, int status, bool lost)
{
	struct sink_exec_try *x = t->drv;
	struct deliver *d = t->ds->d;
	char why[160];

	x->reaped = true;
	/* The child is gone, but its output may still sit in the pipe; a
	 * grandchild holding the pipe open must not keep us waiting, so
	 * take what is there and close. */
	if (x->out_fd >= 0)
		sink_exec_drain(t, 64);
	sink_exec_unwatch(d, &x->in_h);
	sink_exec_unwatch(d, &x->out_h);
	sink_exec_close(&x->in_fd);
	sink_exec_close(&x->out_fd);

	if (x->timed_out)
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
	char out[4 * SINK_EXEC_OUTPUT_MAX + 8];
	sink_exec_escape(x->out, x->out_len, x->out_truncated, out, sizeof(out));
	deliver_try_finish(t, why[0] == '\0', why, x->out_len ? out : NULL);
}

/* Reap the child of t if it has exited. True when it did: the try is then
 * finished and may already be freed, so the caller must not touch t. */
static bool sink_exec_reap(struct dtry *t)
{
	struct sink_exec_try *x = t->drv;
	int status = 0;
	pid_t r;

	if (t->finished || x->reaped || x->pid <= 0)
		return false;
	do
		r = waitpid(x->pid, &status, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == x->pid)
		sink_exec_reaped(t, status, false);
	else if (r < 0 && errno == ECHILD)
		sink_exec_reaped(t, 0, true);
	else
		return false;
	return true;
}

static void sink_exec_poll_exit(struct dtry *t)
{
	sink_exec_reap(t);
}

static void sink_exec_kill(struct dtry *t)
{
	struct sink_exec_try *x = t->drv;

	/* The group id is the child's pid and stays reserved while the child
	 * is an unreaped zombie or any member lives, so this cannot hit a
	 * stranger. */
	if (kill(-x->pid, SIGKILL) < 0 && errno == ESRCH)
		kill(x->pid, SIGKILL);
}

static void sink_exec_timeout(struct dtry *t)
{
	struct sink_exec_try *x = t->drv;
	struct dsink *ds = t->ds;

	/* The child may have exited after this pass's poll() returned: its
	 * SIGCHLD is read only on the next pass, after the timers. Reaping
	 * it here records the outcome and frees t. */
	if (sink_exec_reap(t))
		return;
	if (!x->timed_out) {
		x->timed_out = true;
		log_debug("delivery %s: timeout, killing process group %ld", t->del.delivery_id,
		          (long)x->pid);
	}
	sink_exec_kill(t);
	/* SIGCHLD normally reports the death; this only guards against a
	 * lost signal. */
	if (loop_timer_arm(ds->d->l, t->timer, SINK_EXEC_REAP_RETRY_MS) < 0)
		log_errx("delivery %s: no timer slot to reap the killed try", t->del.delivery_id);
}

/* environ without any inherited GRIDPATROL_* of ours, plus ours. */
static char **sink_exec_env(const struct outbox_delivery *del, char **own)
{
	static const char *const names[] = {
		"GRIDPATROL_DELIVERY_ID=",
		"GRIDPATROL_KIND=",
		"GRIDPATROL_TEXT=",
	};
	size_t n = 0, k = 0;
	while (environ && environ[n])
		n++;
	char **env = calloc(n + 4, sizeof(*env));
	if (!env)
		return NULL;

	size_t tlen = strlen(del->text);
	if (tlen > SINK_EXEC_ENV_TEXT_MAX) {
		tlen = SINK_EXEC_ENV_TEXT_MAX;
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
static int sink_exec_start(struct dtry *t, const struct config_sink *cs, char *err, size_t errlen)
{
	struct sink_exec_try *x = calloc(1, sizeof(*x));
	struct deliver *d = t->ds->d;
	int in[2] = { -1, -1 }, out[2] = { -1, -1 };
	char *own[3] = { NULL, NULL, NULL };
	char **env = NULL;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	bool fa_ok = false, attr_ok = false;
	sigset_t none, all;
	int rc;

	if (!x) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	x->in_fd = x->out_fd = x->in_h = x->out_h = -1;
	t->drv = x;
	if (sink_exec_pipe(in, 1) < 0 || sink_exec_pipe(out, 0) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		goto fail;
	}
	if (!(env = sink_exec_env(&t->del, own))) {
		snprintf(err, errlen, "environment: out of memory");
		goto fail;
	}
	/* Watches first: a child we could not watch would be a child we
	 * could not reap. */
	x->in_fd = in[1];
	x->out_fd = out[0];
	in[1] = out[0] = -1;
	if ((x->in_h = loop_fd_add(d->l, x->in_fd, POLLOUT, sink_exec_write, t)) < 0 ||
	    (x->out_h = loop_fd_add(d->l, x->out_fd, POLLIN, sink_exec_read, t)) < 0) {
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
	    (rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
	                                                  POSIX_SPAWN_SETSIGDEF)) != 0 ||
	    (rc = posix_spawnattr_setpgroup(&attr, 0)) != 0 ||
	    (rc = posix_spawnattr_setsigmask(&attr, &none)) != 0 ||
	    (rc = posix_spawnattr_setsigdefault(&attr, &all)) != 0)
		goto fail_rc;
	/* posix_spawnp: a bare program name is looked up in PATH, as a user
	 * writing `exec: [wechat-bridge]` expects; still no shell. */
	rc = posix_spawnp(&x->pid, cs->argv[0], &fa, &attr, cs->argv, env);
	if (rc != 0) {
		snprintf(err, errlen, "cannot run %s: %s", cs->argv[0], strerror(rc));
		x->pid = 0;
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
	sink_exec_unwatch(d, &x->in_h);
	sink_exec_unwatch(d, &x->out_h);
	sink_exec_close(&x->in_fd);
	sink_exec_close(&x->out_fd);
	for (int i = 0; i < 2; i++) {
		sink_exec_close(&in[i]);
		sink_exec_close(&out[i]);
	}
	free(env);
	for (int i = 0; i < 3; i++)
		free(own[i]);
	return -1;
}

/* ---- shutdown ------------------------------------------------------------ */

static size_t sink_exec_shutdown_fds(struct dtry *t, struct pollfd *pfd, size_t max)
{
	struct sink_exec_try *x = t->drv;
	size_t n = 0;

	if (x->in_fd >= 0 && n < max)
		pfd[n++] = (struct pollfd){ .fd = x->in_fd, .events = POLLOUT };
	if (x->out_fd >= 0 && n < max)
		pfd[n++] = (struct pollfd){ .fd = x->out_fd, .events = POLLIN };
	return n;
}

static void sink_exec_shutdown_io(struct dtry *t, const struct pollfd *pfd)
{
	struct sink_exec_try *x = t->drv;

	if (pfd->fd == x->in_fd)
		sink_exec_write(t, pfd->fd, pfd->revents);
	else if (pfd->fd == x->out_fd)
		sink_exec_read(t, pfd->fd, pfd->revents);
}

static void sink_exec_cancel(struct dtry *t)
{
	struct sink_exec_try *x = t->drv;

	if (x->reaped)
		return;
	sink_exec_kill(t);
	/* Reap, but never hang on a child stuck in the kernel. */
	for (int k = 0; k < 100; k++) {
		pid_t r = waitpid(x->pid, NULL, WNOHANG);
		if (r == x->pid || (r < 0 && errno != EINTR))
			break;
		poll(NULL, 0, 10);
	}
}

static void sink_exec_release(struct dtry *t)
{
	struct sink_exec_try *x = t->drv;
	struct deliver *d = t->ds->d;

	if (!x)
		return;
	sink_exec_unwatch(d, &x->in_h);
	sink_exec_unwatch(d, &x->out_h);
	sink_exec_close(&x->in_fd);
	sink_exec_close(&x->out_fd);
	free(x);
	t->drv = NULL;
}

const struct sink_ops sink_exec_ops = {
	.start = sink_exec_start,
	.timeout = sink_exec_timeout,
	.poll = sink_exec_poll_exit,
	.shutdown_fds = sink_exec_shutdown_fds,
	.shutdown_io = sink_exec_shutdown_io,
	.cancel = sink_exec_cancel,
	.release = sink_exec_release,
	.waits_at_shutdown = true,
	.holds = true,
	.cut_off = "killed",
};
