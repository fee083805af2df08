/*
 * commit_probe: watches gridpatrold's database from outside and tells when
 * rows become visible, i.e. committed. A read-only SQLite connection on the
 * daemon's WAL database; it never writes and never holds a read transaction
 * longer than one query.
 *
 *   commit_probe --db FILE --count N --poll-hz H [--timeout S]
 *     Ingest mode. Every 1/H s: SELECT max(id) FROM event. Once it reaches
 *     N, records that wall-clock time as done_ms and prints
 *       {"count":..,"first_recv_ms":..,"last_recv_ms":..,"done_ms":..,
 *        "elapsed_s":..,"msgs_per_s":..}
 *     where elapsed_s = done_ms - min(recv_ms): from the daemon receiving
 *     the first message to the probe seeing the last row committed (late by
 *     at most one poll period).
 *
 *   commit_probe --db FILE --count N --watch [--timeout S]
 *     Latency mode, event-driven: inotify on the -wal file. Every COMMIT
 *     appends frames to the WAL, so the probe wakes on the write, then reads
 *     the new rows (id > last seen). A commit's last WAL write precedes the
 *     wal-index update by microseconds, so after any wake-up the probe looks
 *     again 1 ms later before sleeping; a row is therefore seen at most
 *     about 1 ms (plus scheduling) after its commit. For every row:
 *       publish->commit seen = seen - sent_ms       (upper bound)
 *       publish->recv        = recv_ms - sent_ms    (broker + network)
 *       recv->commit seen    = seen - recv_ms       (parse, insert, commit)
 *     sent_ms is the payload's (gridpatrol-sim) and is truncated to the ms,
 *     recv_ms is the daemon's wall clock at parse, also in ms; all clocks are
 *     CLOCK_REALTIME on the same machine. Prints p50/p99/max/mean of each.
 *
 * Exits 0 once N rows are seen, 1 on timeout (default 300 s).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static void print_dist(const char *name, int64_t *v, long n, bool last)
{
	double sum = 0;
	for (long i = 0; i < n; i++)
		sum += (double)v[i];
	qsort(v, (size_t)n, sizeof(*v), cmp_i64);
	long k50 = (long)(0.50 * (double)n + 0.999999), k99 = (long)(0.99 * (double)n + 0.999999);
	if (k50 < 1)
		k50 = 1;
	if (k99 < 1)
		k99 = 1;
	printf("\"%s\":{\"n\":%ld,\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f,\"mean\":%.3f}%s", name, n,
	       (double)v[k50 - 1] / 1000.0, (double)v[k99 - 1] / 1000.0, (double)v[n - 1] / 1000.0,
	       sum / (double)n / 1000.0, last ? "" : ",");
}

static int64_t scalar(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v = -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_type(st, 0) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: commit_probe --db FILE --count N (--poll-hz H | --watch) [--timeout S]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "count", required_argument, NULL, 'n' },
		{ "poll-hz", required_argument, NULL, 'z' },
		{ "watch", no_argument, NULL, 'w' },
		{ "timeout", required_argument, NULL, 'T' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL;
	long want = -1;
	double hz = 0, timeout = 300;
	bool watch = false;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			path = optarg;
			break;
		case 'n':
			want = atol(optarg);
			break;
		case 'z':
			hz = atof(optarg);
			break;
		case 'w':
			watch = true;
			break;
		case 'T':
			timeout = atof(optarg);
			break;
		default:
			usage();
			return 2;
		}
	}
	if (!path || want < 1 || (hz <= 0) == !watch) {
		usage();
		return 2;
	}

	sqlite3 *db;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		fprintf(stderr, "commit_probe: %s: %s\n", path, sqlite3_errmsg(db));
		return 1;
	}
	sqlite3_busy_timeout(db, 1000);
	int64_t deadline = now_us() + (int64_t)(timeout * 1e6);

	if (!watch) {
		long period_us = (long)(1e6 / hz);
		int64_t done = 0;
		for (;;) {
			int64_t t = now_us();
			int64_t n = scalar(db, "SELECT max(id) FROM event");
			if (n >= want) {
				done = t; /* the query started at t and saw them all */
				break;
			}
			if (t > deadline) {
				fprintf(stderr, "commit_probe: timed out at %lld/%ld rows\n",
				        (long long)n, want);
				return 1;
			}
			int64_t next = t + period_us - now_us();
			if (next > 0)
				usleep((useconds_t)next);
		}
		int64_t first = scalar(db, "SELECT min(recv_ms) FROM event");
		int64_t last = scalar(db, "SELECT max(recv_ms) FROM event");
		int64_t count = scalar(db, "SELECT count(*) FROM event");
		double el = (double)(done - first * 1000) / 1e6;
		printf("{\"count\":%lld,\"first_recv_ms\":%lld,\"last_recv_ms\":%lld,\"done_ms\":%."
		       "3f,"
		       "\"elapsed_s\":%.6f,\"msgs_per_s\":%.1f}\n",
		       (long long)count, (long long)first, (long long)last, (double)done / 1000.0,
		       el, el > 0 ? (double)count / el : 0.0);
		sqlite3_close(db);
		return count == want ? 0 : 1;
	}

	char wal[PATH_MAX];
	snprintf(wal, sizeof(wal), "%s-wal", path);
	int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (in < 0 || inotify_add_watch(in, wal, IN_MODIFY) < 0) {
		fprintf(stderr, "commit_probe: inotify on %s: %s\n", wal, strerror(errno));
		return 1;
	}
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, "SELECT id, recv_ms, raw FROM event WHERE id > ? ORDER BY id",
	                       -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "commit_probe: %s\n", sqlite3_errmsg(db));
		return 1;
	}
	int64_t *pub_commit = malloc((size_t)want * sizeof(int64_t));
	int64_t *pub_recv = malloc((size_t)want * sizeof(int64_t));
	int64_t *recv_commit = malloc((size_t)want * sizeof(int64_t));
	if (!pub_commit || !pub_recv || !recv_commit) {
		perror("commit_probe: malloc");
		return 1;
	}
	long n = 0, nosent = 0;
	int64_t last_id = 0;
	int wait_ms = 100;
	char buf[4096];
	while (n + nosent < want) {
		struct pollfd p = { .fd = in, .events = POLLIN };
		int r = poll(&p, 1, wait_ms);
		if (r < 0 && errno != EINTR) {
			perror("commit_probe: poll");
			return 1;
		}
		bool woke = r > 0;
		while (read(in, buf, sizeof(buf)) > 0)
			; /* drain: one query covers every write so far */
		int64_t seen = now_us();
		long got = 0;
		sqlite3_bind_int64(st, 1, last_id);
		while (sqlite3_step(st) == SQLITE_ROW && n + nosent < want) {
			last_id = sqlite3_column_int64(st, 0);
			int64_t recv = sqlite3_column_int64(st, 1) * 1000;
			const char *raw = (const char *)sqlite3_column_text(st, 2);
			const char *s = raw ? strstr(raw, "\"sent_ms\":") : NULL;
			got++;
			if (!s) {
				nosent++;
				continue;
			}
			int64_t sent = strtoll(s + 10, NULL, 10) * 1000;
			pub_commit[n] = seen - sent;
			pub_recv[n] = recv - sent;
			recv_commit[n] = seen - recv;
			n++;
		}
		sqlite3_reset(st);
		/* After activity look again in 1 ms (the race with the wal-index
		 * update); when idle, sleep on inotify with a 100 ms safety net. */
		wait_ms = woke || got ? 1 : 100;
		if (now_us() > deadline) {
			fprintf(stderr, "commit_probe: timed out at %ld/%ld rows\n", n + nosent,
			        want);
			return 1;
		}
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	if (n == 0) {
		fprintf(stderr, "commit_probe: no row carries sent_ms\n");
		return 1;
	}
	printf("{\"count\":%ld,\"without_sent_ms\":%ld,", n + nosent, nosent);
	print_dist("publish_to_commit_ms", pub_commit, n, false);
	print_dist("publish_to_recv_ms", pub_recv, n, false);
	print_dist("recv_to_commit_ms", recv_commit, n, true);
	printf("}\n");
	return 0;
}
