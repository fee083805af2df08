/*
 * gridpatrol-sim: a stand-in for the grid workers' handheld devices.
 *
 * Two modes. --demo publishes plausible patrol traffic (check-ins, litter,
 * the odd fisherman, flood-gauge readings) every few seconds, for the quick
 * start. --count N publishes N check-ins as fast as the broker takes them
 * (or at --rate per second), each with a unique id, for tests and
 * benchmarks; it exits 0 once the broker has acknowledged all N.
 */
#include <errno.h>
#include <getopt.h>
#include <mosquitto.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_long sim_acked;
static atomic_int sim_connected;
static volatile sig_atomic_t sim_stop;

static void sim_on_publish(struct mosquitto *m, void *obj, int mid)
{
	(void)m, (void)obj, (void)mid;
	atomic_fetch_add(&sim_acked, 1);
}

static void sim_on_connect(struct mosquitto *m, void *obj, int rc)
{
	(void)m, (void)obj;
	if (rc == 0)
		atomic_store(&sim_connected, 1);
	else
		fprintf(stderr, "gridpatrol-sim: connect refused: %s\n",
		        mosquitto_connack_string(rc));
}

static void sim_on_signal(int sig)
{
	(void)sig;
	sim_stop = 1;
}

static double sim_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sim_sleep(double s)
{
	if (s <= 0)
		return;
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !sim_stop)
		;
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: gridpatrol-sim [-h HOST] [-p PORT] [--prefix TOPIC_PREFIX]\n"
	        "         (--demo [--cells a,b,..] [--workers x,y,..] [--interval S]\n"
	        "          | --count N [--cells-n C] [--workers-n W] [--rate R] [--start K]\n"
	        "            [--id-prefix P] [--cell-prefix P] [--cell-width N])\n");
}

static int sim_split(char *list, char **out, int max)
{
	int n = 0;
	for (char *tok = strtok(list, ","); tok && n < max; tok = strtok(NULL, ","))
		out[n++] = tok;
	return n;
}

static int sim_publish(struct mosquitto *m, const char *topic, const char *payload)
{
	for (;;) {
		int rc = mosquitto_publish(m, NULL, topic, (int)strlen(payload), payload, 1, false);
		if (rc == MOSQ_ERR_SUCCESS)
			return 0;
		if (rc != MOSQ_ERR_NO_CONN && rc != MOSQ_ERR_OVERSIZE_PACKET) {
			fprintf(stderr, "gridpatrol-sim: publish: %s\n", mosquitto_strerror(rc));
			return -1;
		}
		/* Not connected yet (or reconnecting): the library refuses to
		 * queue; wait for the connection rather than drop the message. */
		sim_sleep(0.05);
		if (sim_stop)
			return -1;
	}
}

static int sim_demo(struct mosquitto *m, const char *prefix, char **cells, int ncells,
                    char **workers, int nworkers, double interval)
{
	static const char *litter_notes[] = {
		"岸边发现塑料袋和饮料瓶，已清理",
		"库湾漂浮白色垃圾约2平方米",
		"路边垃圾桶满溢",
	};
	double level = 220.0;
	char topic[256], payload[1024];
	unsigned seq = 0;
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();

	while (!sim_stop) {
		const char *cell = cells[rand_r(&seed) % (unsigned)ncells];
		const char *worker = workers[rand_r(&seed) % (unsigned)nworkers];
		int r = rand_r(&seed) % 100;
		const char *event = r < 70   ? "checkin"
		                    : r < 85 ? "litter"
		                    : r < 90 ? "fishing"
		                             : "flood";
		double lat = 30.99 + (rand_r(&seed) % 1000) / 100000.0;
		double lon = 103.57 + (rand_r(&seed) % 1000) / 100000.0;
		long now = (long)sim_now();
		int n = snprintf(payload, sizeof(payload),
		                 "{\"id\":\"sim-%ld-%u\",\"ts\":%ld,\"lat\":%.5f,\"lon\":%.5f", now,
		                 seq++, now, lat, lon);
		if (!strcmp(event, "litter"))
			n += snprintf(payload + n, sizeof(payload) - (size_t)n, ",\"note\":\"%s\"",
			              litter_notes[rand_r(&seed) % 3]);
		else if (!strcmp(event, "fishing"))
			n += snprintf(
			        payload + n, sizeof(payload) - (size_t)n,
			        ",\"note\":\"水库一级保护区有人垂钓\",\"photo\":\"img/%ld.jpg\"",
			        now);
		else if (!strcmp(event, "flood")) {
			level += (rand_r(&seed) % 41 - 20) / 2.0;
			n += snprintf(payload + n, sizeof(payload) - (size_t)n, ",\"value\":%.1f",
			              level);
		}
		snprintf(payload + n, sizeof(payload) - (size_t)n, "}");
		snprintf(topic, sizeof(topic), "%s/%s/%s/%s", prefix, cell, worker, event);
		if (sim_publish(m, topic, payload) < 0)
			return 1;
		printf("%s %s\n", topic, payload);
		fflush(stdout);
		sim_sleep(interval);
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'h' },
		{ "port", required_argument, NULL, 'p' },
		{ "prefix", required_argument, NULL, 'P' },
		{ "demo", no_argument, NULL, 'D' },
		{ "cells", required_argument, NULL, 'C' },
		{ "workers", required_argument, NULL, 'W' },
		{ "interval", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'n' },
		{ "cells-n", required_argument, NULL, 'c' },
		{ "workers-n", required_argument, NULL, 'w' },
		{ "cell-prefix", required_argument, NULL, 'f' },
		{ "cell-width", required_argument, NULL, 'd' },
		{ "rate", required_argument, NULL, 'r' },
		{ "start", required_argument, NULL, 's' },
		{ "id-prefix", required_argument, NULL, 'I' },
		{ "inflight", required_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	const char *host = "127.0.0.1", *prefix = "patrol", *id_prefix = "load";
	const char *cell_prefix = "c";
	int cell_width = 3;
	char *cells_list = NULL, *workers_list = NULL;
	int port = 1883, demo = 0, inflight = 1000;
	long count = -1, ncells = 100, nworkers = 50, start = 0;
	double rate = 0, interval = 2.0;
	int c;

	while ((c = getopt_long(argc, argv, "h:p:", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			host = optarg;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 'P':
			prefix = optarg;
			break;
		case 'D':
			demo = 1;
			break;
		case 'C':
			cells_list = optarg;
			break;
		case 'W':
			workers_list = optarg;
			break;
		case 'i':
			interval = atof(optarg);
			break;
		case 'n':
			count = atol(optarg);
			break;
		case 'c':
			ncells = atol(optarg);
			break;
		case 'w':
			nworkers = atol(optarg);
			break;
		case 'f':
			cell_prefix = optarg;
			break;
		case 'd':
			cell_width = atoi(optarg);
			break;
		case 'r':
			rate = atof(optarg);
			break;
		case 's':
			start = atol(optarg);
			break;
		case 'I':
			id_prefix = optarg;
			break;
		case 'F':
			inflight = atoi(optarg);
			break;
		default:
			usage();
			return 2;
		}
	}
	if (demo == (count >= 0) || ncells < 1 || nworkers < 1) {
		usage();
		return 2;
	}

	signal(SIGINT, sim_on_signal);
	signal(SIGTERM, sim_on_signal);
	mosquitto_lib_init();
	char cid[64];
	snprintf(cid, sizeof(cid), "gridpatrol-sim-%ld", (long)getpid());
	struct mosquitto *m = mosquitto_new(cid, true, NULL);
	if (!m) {
		perror("mosquitto_new");
		return 1;
	}
	mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
	mosquitto_max_inflight_messages_set(m, (unsigned)inflight);
	mosquitto_publish_callback_set(m, sim_on_publish);
	mosquitto_connect_callback_set(m, sim_on_connect);
	mosquitto_reconnect_delay_set(m, 1, 5, false);
	int rc = mosquitto_connect_async(m, host, port, 60);
	if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_CONN_PENDING) {
		fprintf(stderr, "gridpatrol-sim: connect %s:%d: %s\n", host, port,
		        rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
		return 1;
	}
	if (mosquitto_loop_start(m) != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "gridpatrol-sim: cannot start network thread\n");
		return 1;
	}
	for (int i = 0; i < 200 && !atomic_load(&sim_connected) && !sim_stop; i++)
		sim_sleep(0.05);
	if (!atomic_load(&sim_connected)) {
		fprintf(stderr, "gridpatrol-sim: no connection to %s:%d\n", host, port);
		return 1;
	}

	int status = 0;
	if (demo) {
		char *cells[256], *workers[256];
		char dc[] = "yh-01,yh-02,yh-03", dw[] = "w017,w021,w033";
		int nc = sim_split(cells_list ? cells_list : dc, cells, 256);
		int nw = sim_split(workers_list ? workers_list : dw, workers, 256);
		status = sim_demo(m, prefix, cells, nc, workers, nw, interval);
	} else {
		char topic[256], payload[256], cell[80];
		double t0 = sim_now();
		for (long i = start; i < start + count && !sim_stop; i++) {
			if (rate > 0) {
				double due = t0 + (double)(i - start) / rate;
				sim_sleep(due - sim_now());
			}
			double now = sim_now();
			snprintf(cell, sizeof(cell), "%s%0*ld", cell_prefix, cell_width,
			         i % ncells);
			snprintf(topic, sizeof(topic), "%s/%s/w%03ld/checkin", prefix, cell,
			         i % nworkers);
			snprintf(payload, sizeof(payload),
			         "{\"id\":\"%s-%ld\",\"ts\":%ld,\"sent_ms\":%lld}", id_prefix, i,
			         (long)now, (long long)(now * 1000));
			if (sim_publish(m, topic, payload) < 0) {
				status = 1;
				break;
			}
		}
		/* Wait for every PUBACK, so "exit 0" means the broker has them all. */
		double last_progress = sim_now();
		long last = -1;
		while (!sim_stop && atomic_load(&sim_acked) < count) {
			long a = atomic_load(&sim_acked);
			if (a != last) {
				last = a;
				last_progress = sim_now();
			} else if (sim_now() - last_progress > 60) {
				fprintf(stderr, "gridpatrol-sim: stalled at %ld/%ld acks\n", a,
				        count);
				status = 1;
				break;
			}
			sim_sleep(0.01);
		}
		double dt = sim_now() - t0;
		fprintf(stderr,
		        "gridpatrol-sim: %ld messages acknowledged in %.3f s (%.0f msg/s)\n",
		        (long)atomic_load(&sim_acked), dt,
		        dt > 0 ? (double)atomic_load(&sim_acked) / dt : 0.0);
		if (sim_stop)
			status = 1;
	}
	mosquitto_disconnect(m);
	mosquitto_loop_stop(m, false);
	mosquitto_destroy(m);
	mosquitto_lib_cleanup();
	return status;
}
