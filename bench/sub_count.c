/*
 * sub_count: the broker's limit on this machine. A bare libmosquitto QoS 1
 * subscriber that does nothing but count: no parsing beyond finding
 * "sent_ms" (only with --latency), no storage. It is what gridpatrold would
 * be if storing a row cost nothing, so gridpatrold's ingest rate divided by
 * this one is the share of the physical limit the daemon reaches.
 *
 * Like gridpatrold it uses MQTT 3.1.1, a persistent session (fixed client
 * id, clean session off; --clean for a clean one), QoS 1, and the daemon's
 * I/O pattern (src/daemon/mqtt.c): mosquitto_threaded_set(true) with no library
 * thread, so PUBACKs are only queued while reading; on each wake-up it calls
 * mosquitto_loop_read() while the socket is readable (at most 2,000
 * messages), then writes all the PUBACKs at once with mosquitto_loop_write().
 * The broker thus sees the same batches of acks as from the daemon, and the
 * only difference left is the work of storing a row. The broker's
 * max_inflight_messages bounds what is in flight to it, as for the daemon.
 *
 * --ack-batch K holds the PUBACKs back until K are pending or the socket
 * has been quiet for 1 ms: bigger batches of acks make the broker cheaper
 * per message (it refills its in-flight window in one burst), so with K at
 * the broker's max_inflight_messages this is the broker's best case.
 *
 * --simple instead runs the textbook loop, mosquitto_loop() (one packet per
 * pass, each PUBACK written at once): for comparison only; it makes the
 * broker work harder per message (see bench/README.md).
 *
 * Built a second time as sub_count_netbuf (-DSUB_COUNT_NETBUF), with the
 * daemon's src/daemon/netbuf.c: one read() per burst and one send() per batch of
 * acks instead of libmosquitto's five system calls per message. That is a
 * leaner subscriber than libmosquitto alone, shown beside the ceiling so
 * the daemon's own socket trick does not flatter its ratio.
 *
 * It prints "ready" on stdout once the broker has acknowledged the
 * subscription, and exits 0 after --count messages with one JSON line:
 *   {"count":N,"first_ms":..,"last_ms":..,"elapsed_s":..,"msgs_per_s":..,
 *    "latency_ms":{"n":..,"p50":..,"p99":..,"max":..,"mean":..}}
 * msgs_per_s is N / (time of the last message - time of the first), wall
 * clock (CLOCK_REALTIME). With --latency, each message's latency is its
 * arrival time minus the payload's "sent_ms" (gridpatrol-sim's clock; same
 * machine, same clock); sent_ms is truncated to the millisecond, so figures
 * read up to 1 ms high. Exits 1 on timeout (--timeout seconds, default 300).
 */
#include <errno.h>
#include <getopt.h>
#include <mosquitto.h>
#ifdef SUB_COUNT_NETBUF
#include "netbuf.h"
#else
static size_t netbuf_readable(void)
{
	return 0;
}
static void netbuf_attach(int fd)
{
	(void)fd;
}
static void netbuf_hold(void)
{
}
static int netbuf_release(void)
{
	return 0;
}
#endif
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct sub {
	long want, got;
	int64_t first_us, last_us;
	bool ready, latency, failed;
	int64_t *lat_us; /* per message, --latency only */
	long nlat;
	const char *topic;
};

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
	struct sub *s = obj;
	if (rc != 0) {
		fprintf(stderr, "sub_count: connect refused: %s\n", mosquitto_connack_string(rc));
		s->failed = true;
		return;
	}
	if (mosquitto_subscribe(m, NULL, s->topic, 1) != MOSQ_ERR_SUCCESS)
		s->failed = true;
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int n, const int *granted)
{
	struct sub *s = obj;
	(void)m, (void)mid, (void)n, (void)granted;
	if (!s->ready) {
		s->ready = true;
		printf("ready\n");
		fflush(stdout);
	}
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
	struct sub *s = obj;
	int64_t t = now_us();
	(void)m;
	if (s->got == 0)
		s->first_us = t;
	s->last_us = t;
	s->got++;
	if (s->latency && s->nlat < s->want && msg->payloadlen > 0) {
		/* The payload is not NUL-terminated by contract, but libmosquitto
		 * allocates one extra zero byte; strstr is safe. */
		const char *p = strstr((const char *)msg->payload, "\"sent_ms\":");
		if (p)
			s->lat_us[s->nlat++] = t - strtoll(p + 10, NULL, 10) * 1000;
	}
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static double pct(const int64_t *v, long n, double p)
{
	/* nearest rank */
	long k = (long)(p / 100.0 * (double)n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return (double)v[k - 1] / 1000.0;
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: sub_count [-h HOST] [-p PORT] --count N [--topic T] [--id CLIENT_ID]\n"
	        "                 [--clean] [--simple | --ack-batch K] [--latency] [--timeout "
	        "S]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'h' },
		{ "port", required_argument, NULL, 'p' },
		{ "count", required_argument, NULL, 'n' },
		{ "topic", required_argument, NULL, 't' },
		{ "id", required_argument, NULL, 'i' },
		{ "clean", no_argument, NULL, 'c' },
		{ "latency", no_argument, NULL, 'l' },
		{ "simple", no_argument, NULL, 's' },
		{ "ack-batch", required_argument, NULL, 'b' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	struct sub s = { .want = -1, .topic = "patrol/#" };
	const char *host = "127.0.0.1";
	char idbuf[64];
	const char *id = NULL;
	int port = 1883, c;
	bool clean = false, simple = false;
	long ack_batch = 1, acked_at = 0;
	double timeout = 300;

	while ((c = getopt_long(argc, argv, "h:p:", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			host = optarg;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 'n':
			s.want = atol(optarg);
			break;
		case 't':
			s.topic = optarg;
			break;
		case 'i':
			id = optarg;
			break;
		case 'c':
			clean = true;
			break;
		case 'l':
			s.latency = true;
			break;
		case 's':
			simple = true;
			break;
		case 'b':
			ack_batch = atol(optarg);
			break;
		case 'T':
			timeout = atof(optarg);
			break;
		default:
			usage();
			return 2;
		}
	}
	if (s.want < 1) {
		usage();
		return 2;
	}
	if (!id) {
		snprintf(idbuf, sizeof(idbuf), "sub-count-%ld", (long)getpid());
		id = idbuf;
	}
	if (s.latency && !(s.lat_us = malloc((size_t)s.want * sizeof(*s.lat_us)))) {
		perror("sub_count: malloc");
		return 1;
	}

	mosquitto_lib_init();
	struct mosquitto *m = mosquitto_new(id, clean, &s);
	if (!m) {
		perror("sub_count: mosquitto_new");
		return 1;
	}
	mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
	if (!simple)
		mosquitto_threaded_set(m, true); /* acks wait for loop_write */
	mosquitto_connect_callback_set(m, on_connect);
	mosquitto_subscribe_callback_set(m, on_subscribe);
	mosquitto_message_callback_set(m, on_message);
	int rc = mosquitto_connect(m, host, port, 60);
	if (rc != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "sub_count: connect %s:%d: %s\n", host, port,
		        rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
		return 1;
	}
	int64_t deadline = now_us() + (int64_t)(timeout * 1e6);
	bool attached = false;
	while (s.got < s.want && !s.failed) {
		if (simple) {
			rc = mosquitto_loop(m, 100, 1);
		} else {
			int fd = mosquitto_socket(m);
			struct pollfd p = { .fd = fd, .events = POLLIN };
			if (mosquitto_want_write(m))
				p.events |= POLLOUT;
			rc = MOSQ_ERR_SUCCESS;
			if (fd >= 0 && !attached) {
				netbuf_attach(fd);
				attached = true;
			}
			/* read-ahead waiting counts as readable (poll cannot see it) */
			int ready = netbuf_readable() > 0 ? 1 : poll(&p, 1, 100);
			if (ready > 0 && netbuf_readable() > 0)
				p.revents |= POLLIN;
			if (ready > 0) {
				if (p.revents & (POLLIN | POLLERR | POLLHUP)) {
					/* drain, bounded: one wake-up, one batch of acks */
					for (int i = 0; i < 2000 && rc == MOSQ_ERR_SUCCESS; i++) {
						rc = mosquitto_loop_read(m, 1);
						struct pollfd q = { .fd = fd, .events = POLLIN };
						if (netbuf_readable() == 0 && poll(&q, 1, 0) <= 0)
							break;
					}
				}
				/* --ack-batch: hold the acks while more are coming */
				bool hold = ack_batch > 1 && s.got - acked_at < ack_batch &&
				            s.got < s.want;
				if (hold) {
					struct pollfd q = { .fd = fd, .events = POLLIN };
					hold = netbuf_readable() > 0 || poll(&q, 1, 1) > 0;
				}
				if (rc == MOSQ_ERR_SUCCESS && !hold) {
					netbuf_hold();
					rc = mosquitto_loop_write(m, 1);
					if (netbuf_release() < 0 && rc == MOSQ_ERR_SUCCESS)
						rc = MOSQ_ERR_ERRNO;
					acked_at = s.got;
				}
			}
			if (rc == MOSQ_ERR_SUCCESS)
				rc = mosquitto_loop_misc(m);
		}
		if (rc != MOSQ_ERR_SUCCESS) {
			fprintf(stderr, "sub_count: %s\n", mosquitto_strerror(rc));
			break;
		}
		if (now_us() > deadline) {
			fprintf(stderr, "sub_count: timed out with %ld/%ld messages\n", s.got,
			        s.want);
			break;
		}
	}
	/* The last PUBACKs leave before we disconnect. */
	mosquitto_loop_write(m, 1);
	mosquitto_disconnect(m);
	mosquitto_loop_write(m, 1);
	mosquitto_destroy(m);
	mosquitto_lib_cleanup();

	double el = (double)(s.last_us - s.first_us) / 1e6;
	printf("{\"count\":%ld,\"first_ms\":%.3f,\"last_ms\":%.3f,\"elapsed_s\":%.6f,"
	       "\"msgs_per_s\":%.1f",
	       s.got, (double)s.first_us / 1000.0, (double)s.last_us / 1000.0, el,
	       el > 0 ? (double)s.got / el : 0.0);
	if (s.latency && s.nlat > 0) {
		double sum = 0;
		for (long i = 0; i < s.nlat; i++)
			sum += (double)s.lat_us[i];
		qsort(s.lat_us, (size_t)s.nlat, sizeof(*s.lat_us), cmp_i64);
		printf(",\"latency_ms\":{\"n\":%ld,\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f,\"mean\":"
		       "%.3f}",
		       s.nlat, pct(s.lat_us, s.nlat, 50), pct(s.lat_us, s.nlat, 99),
		       (double)s.lat_us[s.nlat - 1] / 1000.0, sum / (double)s.nlat / 1000.0);
	}
	printf("}\n");
	free(s.lat_us);
	return s.got >= s.want ? 0 : 1;
}
