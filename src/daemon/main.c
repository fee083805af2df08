/*
 * gridpatrold: entry point. Parses options, loads the configuration (or
 * only checks it with -n), and hands over to the daemon. Runs in the
 * foreground; systemd supervises it.
 */
#include <getopt.h>
#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "build-config.h"
#include "config.h"
#include "daemon.h"
#include "log.h"

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: gridpatrold [-c FILE] [-n] [-v]\n"
	        "\n"
	        "Stores grid patrol messages from MQTT in SQLite.\n"
	        "\n"
	        "  -c, --config FILE    configuration (default %s)\n"
	        "  -n, --check-config   validate the configuration and exit\n"
	        "  -v, --verbose        log debug messages\n"
	        "  -h, --help           show this help\n"
	        "  -V, --version        show the version\n",
	        CONFIG_DEFAULT_PATH);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'n' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = CONFIG_DEFAULT_PATH;
	int check = 0, verbose = 0, c;

	while ((c = getopt_long(argc, argv, "c:nvhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'n':
			check = 1;
			break;
		case 'v':
			verbose = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("gridpatrold %s\n", GRIDPATROL_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	log_init(verbose ? LOG_DEBUG : LOG_INFO);

	struct config *cfg = NULL;
	struct config_errors errs = { 0 };
	if (config_load(path, &cfg, &errs) < 0) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.v[i]);
		config_errors_free(&errs);
		return 1;
	}
	config_errors_free(&errs);
	if (check) {
		printf("%s: OK (%zu cells, %zu event types, %zu alert sinks)\n", path, cfg->n_cells,
		       cfg->n_events, cfg->alerts.n_sinks);
		config_free(cfg);
		return 0;
	}

	mosquitto_lib_init();
	int status = daemon_run(path, cfg);
	mosquitto_lib_cleanup();
	return status;
}
