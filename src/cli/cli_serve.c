/*
 * cli_serve: `gridpatrol serve`, the office's read-only web page. A small
 * HTTP server (libmicrohttpd parses HTTP; web.c decides what to answer)
 * that runs the existing commands — status, report, alerts, workers — for
 * each request, on its own copy of the command line with a fresh `now`,
 * into a memory buffer instead of stdout. Each run opens the database
 * read-only with the commands' own opener and closes it, so the page
 * never writes and never blocks the daemon (a WAL reader), and there is
 * one copy of the report and listing code.
 *
 * One libmicrohttpd thread serves every connection (poll/epoll, never a
 * thread per client), so the commands, which share the process's time
 * zone and stderr, run one at a time. A slow client costs a connection
 * slot, not the thread: connections are capped overall and per address
 * and dropped after --timeout idle seconds. The main thread waits for
 * SIGTERM or SIGINT and stops the server (exit 0). The configuration is
 * read once at start; SIGHUP is logged and otherwise ignored.
 *
 * Access log: one line per request on stderr (method, path without the
 * query — the query may carry the token —, status, bytes, milliseconds).
 * The token itself is never logged.
 */
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli_common.h"
#include "timefmt.h"
#include "web.h"

#define SERVE_DEFAULT_LISTEN "127.0.0.1:8080"
#define SERVE_DEFAULT_TIMEOUT 15
#define SERVE_CONNECTIONS 32
#define SERVE_PER_IP 8
/* Request line and headers: a bound per connection (MHD answers 414 or
 * 431 itself beyond it). */
#define SERVE_CONNECTION_MEMORY (16 * 1024)

#define CSP                                                              \
	"default-src 'none'; style-src 'unsafe-inline'; img-src data:; " \
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
#define COOKIE_MAX_AGE "2592000" /* 30 days */

struct serve {
	struct cli base; /* the parsed command line, configuration loaded */
	char token[WEB_TOKEN_MAX + 1];
	size_t token_len;
	bool need_token;
};

/* One request, from the URI callback to the completed callback. */
struct req {
	struct timespec start;
	char *target; /* the raw request target, at most WEB_MAX_TARGET + 1 bytes */
	size_t target_len;
	bool answered;
	unsigned status;
	size_t bytes;
	char method[16];
};

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	size_t n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	cli_error("serve: libmicrohttpd: %s", buf);
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

/* ------------------------------------------------------------------ */
/* libmicrohttpd callbacks                                             */
/* ------------------------------------------------------------------ */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *con)
{
	struct req *x = calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	clock_gettime(CLOCK_MONOTONIC, &x->start);
	x->target_len = strlen(uri);
	/* Longer than the limit is a 413 whatever follows: keep one byte
	 * more than the limit, enough to know. */
	x->target = strndup(uri, WEB_MAX_TARGET + 1);
	if (!x->target) {
		free(x);
		return NULL;
	}
	return x;
}

static void on_completed(void *cls, struct MHD_Connection *con, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct req *x = *con_cls;
	if (!x)
		return;
	if (x->answered) {
		/* The path without the query (which may hold the token),
		 * escaped and cut: it is the client's text. */
		size_t plen = strcspn(x->target, "?");
		if (plen > 200)
			plen = 200;
		char *path = cli_escape_bytes(x->target, plen);
		char *method = cli_escape_bytes(x->method, strlen(x->method));
		cli_error("serve: %s %s %u %zu %.1fms%s", method ? method : "?", path ? path : "?",
		          x->status, x->bytes, ms_since(&x->start),
		          toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (not completed)");
		free(path);
		free(method);
	}
	free(x->target);
	free(x);
	*con_cls = NULL;
}

struct args_acc {
	struct web_arg v[WEB_MAX_ARGS];
	size_t n;
};

static enum MHD_Result on_arg(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                              const char *value, size_t value_size)
{
	struct args_acc *a = cls;
	if (a->n < WEB_MAX_ARGS)
		a->v[a->n] = (struct web_arg){ key, key_size, value, value_size };
	a->n++;
	/* One more than the limit is all the dispatcher needs to refuse. */
	return a->n > WEB_MAX_ARGS ? MHD_NO : MHD_YES;
}

static bool has_body(struct MHD_Connection *con)
{
	const char *cl = MHD_lookup_connection_value(con, MHD_HEADER_KIND,
	                                             MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (MHD_lookup_connection_value(con, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING))
		return true;
	if (!cl)
		return false;
	for (const char *p = cl; *p; p++)
		if (*p != '0')
			return true;
	return false;
}

/* Returns false if a header could not be added (out of memory): such a
 * response is not sent, rather than sent without its security headers. */
static bool add_common_headers(struct MHD_Response *resp)
{
	return MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_SECURITY_POLICY, CSP) ==
	               MHD_YES &&
	       MHD_add_response_header(resp, MHD_HTTP_HEADER_X_CONTENT_TYPE_OPTIONS, "nosniff") ==
	               MHD_YES &&
	       MHD_add_response_header(resp, "Referrer-Policy", "no-referrer") == MHD_YES &&
	       MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") ==
	               MHD_YES &&
	       MHD_add_response_header(resp, "X-Frame-Options", "DENY") == MHD_YES;
}

/* Queue a response of `len` bytes from `body`: malloc'd and ours to free
 * when must_free, else a static text. */
static enum MHD_Result respond(struct MHD_Connection *con, struct req *x, unsigned status,
                               const char *type, char *body, size_t len, bool must_free,
                               const struct web_decision *d, const char *cookie_token)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(
	        len, body, must_free ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		if (must_free)
			free(body);
		return MHD_NO;
	}
	bool ok = add_common_headers(resp) &&
	          MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type) == MHD_YES;
	if (ok && status == MHD_HTTP_METHOD_NOT_ALLOWED)
		ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") == MHD_YES;
	if (ok && status == MHD_HTTP_UNAUTHORIZED)
		ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
		                             "Bearer realm=\"gridpatrol\"") == MHD_YES;
	if (ok && status == MHD_HTTP_SEE_OTHER && d) {
		char cookie[WEB_TOKEN_MAX + 128];
		snprintf(cookie, sizeof(cookie),
		         WEB_COOKIE
		         "=%s; HttpOnly; SameSite=Strict; Path=/; Max-Age=" COOKIE_MAX_AGE,
		         cookie_token);
		ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, cookie) == MHD_YES &&
		     MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, d->location) ==
		             MHD_YES;
		explicit_bzero(cookie, sizeof(cookie));
	}
	if (!ok) {
		MHD_destroy_response(resp); /* frees a must_free body */
		return MHD_NO;
	}
	if (x) {
		x->status = status;
		x->bytes = strcmp(x->method, "HEAD") == 0 ? 0 : len; /* what goes out */
	}
	enum MHD_Result r = MHD_queue_response(con, status, resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result respond_text(struct MHD_Connection *con, struct req *x, unsigned status,
                                    const char *text)
{
	/* Static texts only: MHD_RESPMEM_PERSISTENT keeps the pointer. */
	return respond(con, x, status, "text/plain; charset=utf-8", (char *)text, strlen(text),
	               false, NULL, NULL);
}

static const char *status_text(int status)
{
	switch (status) {
	case 400:
		return "400 bad request\n";
	case 401:
		return "401 this page needs the token (see gridpatrol(1), serve)\n";
	case 404:
		return "404 no such page\n";
	case 405:
		return "405 only GET and HEAD\n";
	case 413:
		return "413 request too large\n";
	default:
		return "500 internal error (see the server's log)\n";
	}
}

/* Run the page's command into a buffer. Returns the exit code. */
static int run_page(const struct serve *s, const struct web_decision *d, char **buf, size_t *len)
{
	struct cli c = s->base;
	struct timespec ts;
	int (*cmd)(struct cli *) = NULL;

	*buf = NULL;
	*len = 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	c.now = (int64_t)ts.tv_sec;
	c.db = NULL;
	c.out_path = NULL;
	c.format = d->json ? CLI_FORMAT_JSON : CLI_FORMAT_HTML;
	c.web = !d->json;
	c.date = c.since = c.from = c.to = NULL;
	c.pending = false;
	switch (d->route) {
	case WEB_ROUTE_NOW:
		cmd = cli_cmd_status;
		c.command = "status";
		break;
	case WEB_ROUTE_REPORT:
		cmd = cli_cmd_report;
		c.command = "report";
		c.date = d->date;
		break;
	case WEB_ROUTE_ALERTS:
		cmd = cli_cmd_alerts;
		c.command = "alerts";
		c.since = d->since;
		c.pending = d->pending;
		break;
	case WEB_ROUTE_WORKERS:
		cmd = cli_cmd_workers;
		c.command = "workers";
		if (d->from[0]) {
			c.from = d->from;
			c.to = d->to;
		} else {
			c.date = d->date;
		}
		break;
	default:
		return CLI_EXIT_FAIL;
	}
	FILE *f = open_memstream(buf, len);
	if (!f) {
		cli_error("out of memory");
		return CLI_EXIT_FAIL;
	}
	c.out_stream = f;
	int code = cmd(&c);
	if (fclose(f) == EOF && code == CLI_EXIT_OK) {
		cli_error("out of memory");
		code = CLI_EXIT_FAIL;
	}
	if (code != CLI_EXIT_OK) {
		free(*buf);
		*buf = NULL;
		*len = 0;
	}
	return code;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
	const struct serve *s = cls;
	struct req *x = *con_cls;

	if (!x)
		return respond_text(con, NULL, MHD_HTTP_INTERNAL_SERVER_ERROR, status_text(500));
	if (x->answered) {
		/* A body after the answer was queued: drop it. */
		*upload_data_size = 0;
		return MHD_YES;
	}
	x->answered = true;
	snprintf(x->method, sizeof(x->method), "%s", method);

	struct args_acc args = { .n = 0 };
	MHD_get_connection_values_n(con, MHD_GET_ARGUMENT_KIND, on_arg, &args);

	char today[16];
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	timefmt_date(timefmt_day_start((int64_t)now.tv_sec), today, sizeof(today));
	struct web_request r = {
		.method = method,
		.target = x->target,
		.target_len = x->target_len,
		.args = args.v,
		.n_args = args.n,
		.authorization = MHD_lookup_connection_value(con, MHD_HEADER_KIND,
		                                             MHD_HTTP_HEADER_AUTHORIZATION),
		.cookie = MHD_lookup_connection_value(con, MHD_COOKIE_KIND, WEB_COOKIE),
		.has_body = has_body(con) || *upload_data_size > 0,
		.today = today,
		.token = s->need_token ? s->token : NULL,
		.token_len = s->token_len,
	};
	struct web_decision d;
	web_dispatch(&r, &d);
	*upload_data_size = 0;

	if (d.status == 303)
		return respond(con, x, 303, "text/plain; charset=utf-8", (char *)"303 see other\n",
		               strlen("303 see other\n"), false, &d, s->token);
	if (d.status != 200)
		return respond_text(con, x, (unsigned)d.status, status_text(d.status));

	char *buf;
	size_t len;
	if (run_page(s, &d, &buf, &len) != CLI_EXIT_OK)
		return respond_text(con, x, MHD_HTTP_INTERNAL_SERVER_ERROR, status_text(500));
	return respond(con, x, 200,
	               d.json ? "application/json; charset=utf-8" : "text/html; charset=utf-8", buf,
	               len, true, NULL, NULL);
}

/* ------------------------------------------------------------------ */
/* Start                                                               */
/* ------------------------------------------------------------------ */

static int read_token(struct serve *s, const char *path)
{
	char buf[WEB_TOKEN_MAX + 8];
	struct stat sb;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		cli_error("cannot open the token file %s: %s", path, strerror(errno));
		return CLI_EXIT_USAGE;
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		cli_error("the token file %s is not a regular file", path);
		close(fd);
		return CLI_EXIT_USAGE;
	}
	size_t n = 0;
	for (;;) {
		ssize_t r = read(fd, buf + n, sizeof(buf) - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			cli_error("cannot read the token file %s: %s", path, strerror(errno));
			close(fd);
			return CLI_EXIT_USAGE;
		}
		if (r == 0 || (n += (size_t)r) == sizeof(buf))
			break;
	}
	close(fd);
	const char *why;
	size_t len;
	if (web_token_parse(buf, n, &len, &why) < 0) {
		cli_error("the token file %s %s", path, why);
		explicit_bzero(buf, sizeof(buf));
		return CLI_EXIT_USAGE;
	}
	memcpy(s->token, buf, len);
	s->token[len] = '\0';
	s->token_len = len;
	explicit_bzero(buf, sizeof(buf));
	if (sb.st_mode & S_IROTH)
		cli_error("serve: warning: the token file %s is readable by every user (chmod o-r)",
		          path);
	if (len < 16)
		cli_error("serve: warning: the token in %s is short (%zu bytes); 32 random "
		          "characters "
		          "are better",
		          path, len);
	return CLI_EXIT_OK;
}

static int parse_timeout(const char *s, unsigned *out)
{
	char *end;
	if (!s) {
		*out = SERVE_DEFAULT_TIMEOUT;
		return 0;
	}
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > 3600) {
		cli_error("bad --timeout '%s' (seconds, 1 to 3600)", s);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

int cli_cmd_serve(struct cli *c)
{
	static struct serve s; /* the token stays off the stack */
	struct sockaddr_storage ss;
	socklen_t ss_len;
	bool loopback;
	unsigned timeout;
	const char *listen = c->listen ? c->listen : SERVE_DEFAULT_LISTEN;

	memset(&s, 0, sizeof(s));
	s.base = *c;
	if (web_parse_listen(listen, &ss, &ss_len, &loopback) < 0) {
		cli_error("bad --listen '%s' (use ADDR:PORT with a numeric address, e.g. "
		          "127.0.0.1:8080, 0.0.0.0:8080 or [::1]:8080)",
		          listen);
		return CLI_EXIT_USAGE;
	}
	if (parse_timeout(c->timeout, &timeout) < 0)
		return CLI_EXIT_USAGE;
	if (!loopback && !c->token_file) {
		cli_error("serve on %s needs --token-file FILE (only 127.0.0.1 and [::1] serve "
		          "without a token)",
		          listen);
		return CLI_EXIT_USAGE;
	}
	if (c->token_file) {
		int code = read_token(&s, c->token_file);
		if (code != CLI_EXIT_OK)
			return code;
		s.need_token = true;
	}

	/* Signals: blocked before the server's thread starts, so it inherits
	 * the mask and only sigwait() below sees them. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) {
		cli_error("cannot block signals");
		return CLI_EXIT_FAIL;
	}
	signal(SIGPIPE, SIG_IGN);

	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	struct MHD_Daemon *d = MHD_start_daemon(
	        flags, 0, NULL, NULL, on_request, &s,
	        /* First, or libmicrohttpd logs the options' errors its own way. */
	        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR,
	        (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, (unsigned)SERVE_CONNECTIONS,
	        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)SERVE_PER_IP,
	        MHD_OPTION_CONNECTION_TIMEOUT, timeout, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	        (size_t)SERVE_CONNECTION_MEMORY, MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL,
	        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
	if (!d) {
		cli_error("cannot listen on %s: %s", listen,
		          errno ? strerror(errno) : "libmicrohttpd refused to start");
		return CLI_EXIT_FAIL;
	}
	cli_error(
	        "serve: listening on http://%s/ (%s, %u connections, %u per address, %us timeout)",
	        listen, s.need_token ? "token required" : "no token: loopback only",
	        (unsigned)SERVE_CONNECTIONS, (unsigned)SERVE_PER_IP, timeout);

	for (;;) {
		int sig;
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			cli_error("serve: SIGHUP ignored: the configuration is read at start "
			          "(restart to "
			          "reload)");
			continue;
		}
		break;
	}
	MHD_stop_daemon(d);
	explicit_bzero(s.token, sizeof(s.token));
	cli_error("serve: stopped");
	return CLI_EXIT_OK;
}
