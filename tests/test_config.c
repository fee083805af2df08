/*
 * Tests for config.c: valid files and the values and defaults they yield,
 * the cells CSV, the lookup index at scale, and the golden error tests.
 *
 * Golden tests: every tests/golden/NAME.yaml is loaded as "golden/NAME.yaml"
 * (the test runs in tests/) and its errors, one per line, must equal
 * tests/golden/NAME.err byte for byte. Adding a case is adding two files.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

/* Loads a file that must be valid; prints its errors otherwise. */
static struct config *load_ok(const char *path)
{
	struct config_errors errs = { 0 };
	struct config *cfg = NULL;
	int rc = config_load(path, &cfg, &errs);

	for (size_t i = 0; i < errs.n; i++)
		print_error("%s\n", errs.v[i]);
	assert_int_equal(errs.n, 0);
	assert_int_equal(rc, 0);
	assert_non_null(cfg);
	config_errors_free(&errs);
	return cfg;
}

static void check_defaults(const struct config *cfg)
{
	assert_string_equal(cfg->mqtt.host, "127.0.0.1");
	assert_int_equal(cfg->mqtt.port, 1883);
	assert_string_equal(cfg->mqtt.client_id, "gridpatrold");
	assert_string_equal(cfg->mqtt.topic, "patrol/{cell}/{worker}/{event}");
	assert_int_equal(cfg->mqtt.tmpl.n_segs, 4);
	assert_int_equal(cfg->mqtt.tmpl.cell_idx, 1);
	assert_int_equal(cfg->mqtt.tmpl.worker_idx, 2);
	assert_int_equal(cfg->mqtt.tmpl.event_idx, 3);
	assert_int_equal(cfg->mqtt.protocol, 4);
	assert_int_equal(cfg->mqtt.keepalive_s, 60);
	assert_int_equal(cfg->mqtt.session_expiry_s, INT64_C(0xFFFFFFFF));
	assert_null(cfg->mqtt.username);
	assert_null(cfg->mqtt.password_file);
	assert_null(cfg->mqtt.password_credential);
	assert_false(cfg->mqtt.tls);
	assert_null(cfg->mqtt.ca_file);
	assert_null(cfg->mqtt.ca_path);
	assert_null(cfg->mqtt.cert_file);
	assert_null(cfg->mqtt.key_file);
	assert_false(cfg->mqtt.tls_insecure);
	assert_string_equal(cfg->storage.path, "/var/lib/gridpatrol/patrol.db");
	assert_int_equal(cfg->storage.retention_s, 400 * 86400);
	assert_int_equal(cfg->storage.max_size, 0);
	assert_int_equal(cfg->storage.max_rejected, 100000);
	assert_string_equal(cfg->timezone, "Asia/Shanghai");
	assert_int_equal(cfg->defaults.interval_s, 4 * 3600);
	assert_int_equal(cfg->defaults.grace_s, 15 * 60);
	assert_int_equal(cfg->defaults.repeat_s, 2 * 3600);
	assert_false(cfg->defaults.active.always);
	assert_int_equal(cfg->defaults.active.start_min, 7 * 60);
	assert_int_equal(cfg->defaults.active.end_min, 19 * 60);
	assert_int_equal(cfg->n_cells, 0);
	assert_null(cfg->cells_file);
	assert_int_equal(cfg->limits.max_payload, 8192);
	assert_int_equal(cfg->limits.max_clock_skew_s, 300);
	assert_int_equal(cfg->limits.max_backfill_s, 7 * 86400);
	assert_int_equal(cfg->limits.late_after_s, 600);
	assert_int_equal(cfg->n_events, 0);
	assert_int_equal(cfg->alerts.n_sinks, 0);
	assert_int_equal(cfg->alerts.escalate_after, 0);
	assert_int_equal(cfg->alerts.n_escalate_to, 0);
	assert_int_equal(cfg->alerts.daily_digest_min, 20 * 60);
	assert_string_equal(cfg->alerts.language, "zh-CN");
	assert_int_equal(cfg->alerts.startup_grace_s, 300);
	assert_int_equal(cfg->alerts.system_after_s, 600);
	assert_int_equal(cfg->alerts.retry_min_s, 10);
	assert_int_equal(cfg->alerts.retry_max_s, 1800);
	assert_int_equal(cfg->alerts.give_up_after_s, 86400);
	assert_null(config_cell_find(cfg, "yh-01"));
	assert_null(config_event_find(cfg, "checkin"));
}

static void test_empty_file(void **state)
{
	struct config *cfg = load_ok("fixtures/config/empty.yaml");

	(void)state;
	assert_string_equal(cfg->path, "fixtures/config/empty.yaml");
	check_defaults(cfg);
	config_free(cfg);
}

static void test_comments_only(void **state)
{
	struct config *cfg = load_ok("fixtures/config/comments.yaml");

	(void)state;
	check_defaults(cfg);
	config_free(cfg);
}

static void test_full(void **state)
{
	struct config *cfg;
	const struct config_cell *a, *b;
	const struct config_event *e;
	const struct config_sink *s;

	(void)state;
	if (setenv("TZDIR", "/usr/share/zoneinfo", 1) != 0)
		fail();
	cfg = load_ok("fixtures/config/full.yaml");
	unsetenv("TZDIR");

	assert_string_equal(cfg->mqtt.host, "broker.example.org");
	assert_int_equal(cfg->mqtt.port, 8883);
	assert_string_equal(cfg->mqtt.client_id, "gp-test");
	assert_string_equal(cfg->mqtt.tmpl.subscription, "longchi/yunhua/patrol/#");
	assert_int_equal(cfg->mqtt.tmpl.event_idx, -1);
	assert_int_equal(cfg->mqtt.protocol, 4);
	assert_int_equal(cfg->mqtt.keepalive_s, 120);
	assert_int_equal(cfg->mqtt.session_expiry_s, 86400);
	assert_string_equal(cfg->mqtt.username, "gridpatrold");
	assert_string_equal(cfg->mqtt.password_file, "/etc/gridpatrol/pw");
	assert_null(cfg->mqtt.password_credential);
	assert_true(cfg->mqtt.tls);
	assert_string_equal(cfg->mqtt.ca_file, "/etc/ssl/ca.pem");
	assert_string_equal(cfg->mqtt.ca_path, "/etc/ssl/certs");
	assert_string_equal(cfg->mqtt.cert_file, "/etc/gridpatrol/c.crt");
	assert_string_equal(cfg->mqtt.key_file, "/etc/gridpatrol/c.key");
	assert_true(cfg->mqtt.tls_insecure);

	assert_string_equal(cfg->storage.path, "/tmp/patrol.db");
	assert_int_equal(cfg->storage.retention_s, 0);
	assert_int_equal(cfg->storage.max_size, INT64_C(1) << 30);
	assert_int_equal(cfg->storage.max_rejected, 0);
	assert_string_equal(cfg->timezone, "Europe/Berlin");
	assert_int_equal(cfg->defaults.interval_s, 5400);
	assert_int_equal(cfg->defaults.grace_s, 0);
	assert_int_equal(cfg->defaults.repeat_s, 2700);
	assert_true(cfg->defaults.active.always);

	assert_int_equal(cfg->n_cells, 2);
	a = config_cell_find(cfg, "a.1");
	assert_ptr_equal(a, &cfg->cells[0]);
	assert_string_equal(a->name, "单元 A");
	assert_int_equal(a->interval_s, 8 * 3600);
	assert_int_equal(a->grace_s, 60);
	assert_int_equal(a->repeat_s, 0);
	assert_false(a->active.always);
	assert_int_equal(a->active.start_min, 1200);
	assert_int_equal(a->active.end_min, 360);
	assert_int_equal(a->n_workers, 3);
	assert_string_equal(a->workers[0], "w1");
	assert_string_equal(a->workers[2], "w-3");
	assert_int_equal(a->n_tags, 2);
	assert_string_equal(a->tags[1], "带空格 的 标签");
	/* A bare cell inherits every default. */
	b = config_cell_find(cfg, "b_2");
	assert_non_null(b);
	assert_string_equal(b->name, "b_2");
	assert_int_equal(b->interval_s, 5400);
	assert_int_equal(b->grace_s, 0);
	assert_int_equal(b->repeat_s, 2700);
	assert_true(b->active.always);
	assert_int_equal(b->n_workers, 0);
	assert_int_equal(b->n_tags, 0);

	assert_int_equal(cfg->limits.max_payload, 65536);
	assert_int_equal(cfg->limits.max_clock_skew_s, 60);
	assert_int_equal(cfg->limits.max_backfill_s, 30 * 86400);
	assert_int_equal(cfg->limits.late_after_s, 0);

	assert_int_equal(cfg->n_events, 7);
	e = config_event_find(cfg, "checkin");
	assert_non_null(e);
	assert_string_equal(e->label, "checkin");
	assert_true(e->patrol);
	assert_false(e->alert_immediate);
	assert_false(e->has_value);
	e = config_event_find(cfg, "walk");
	assert_non_null(e);
	assert_string_equal(e->label, "walk");
	e = config_event_find(cfg, "fishing");
	assert_string_equal(e->label, "钓鱼");
	assert_true(e->alert_immediate);
	assert_false(e->patrol);
	e = config_event_find(cfg, "flood");
	assert_false(e->alert_immediate);
	assert_true(e->has_value);
	assert_string_equal(e->unit, "cm");
	assert_true(e->has_warn && e->has_alarm);
	assert_true(e->warn == -2.5);
	assert_true(e->alarm == 1000.0);
	/* A claim type is no patrol unless it says so (and it may not). */
	e = config_event_find(cfg, "claim");
	assert_true(e->claim);
	assert_false(e->patrol);
	e = config_event_find(cfg, "rain");
	assert_true(e->has_value);
	assert_null(e->unit);
	assert_false(e->has_warn || e->has_alarm);
	e = config_event_find(cfg, "temp");
	assert_true(e->has_warn);
	assert_false(e->has_alarm);
	assert_null(config_event_find(cfg, "Flood"));

	assert_int_equal(cfg->alerts.n_sinks, 2);
	s = &cfg->alerts.sinks[0];
	assert_string_equal(s->name, "bridge");
	assert_int_equal(s->type, CONFIG_SINK_EXEC);
	assert_int_equal(s->argc, 3);
	assert_string_equal(s->argv[0], "/usr/local/bin/bridge");
	assert_string_equal(s->argv[2], "a b");
	assert_null(s->argv[3]);
	assert_int_equal(s->timeout_s, 5);
	assert_int_equal(s->group_window_s, 120);
	assert_int_equal(s->kinds, CONFIG_KIND_OVERDUE | CONFIG_KIND_RECOVERED);
	s = &cfg->alerts.sinks[1];
	assert_string_equal(s->name, "pub");
	assert_int_equal(s->type, CONFIG_SINK_MQTT);
	assert_string_equal(s->topic, "alerts/{kind}/{cell}");
	assert_null(s->argv);
	assert_int_equal(s->timeout_s, 30);
	assert_int_equal(s->group_window_s, 0);
	assert_int_equal(s->kinds, CONFIG_KIND_DIGEST | CONFIG_KIND_SYSTEM | CONFIG_KIND_EVENT |
	                                   CONFIG_KIND_READING);
	assert_int_equal(cfg->alerts.escalate_after, 3);
	assert_int_equal(cfg->alerts.n_escalate_to, 2);
	assert_string_equal(cfg->alerts.escalate_to[1], "w017");
	assert_int_equal(cfg->alerts.daily_digest_min, -1);
	assert_string_equal(cfg->alerts.language, "en");
	assert_int_equal(cfg->alerts.startup_grace_s, 0);
	assert_int_equal(cfg->alerts.system_after_s, 90);
	assert_int_equal(cfg->alerts.retry_min_s, 60);
	assert_int_equal(cfg->alerts.retry_max_s, 3600);
	assert_int_equal(cfg->alerts.give_up_after_s, 2 * 86400);
	config_free(cfg);
}

static void test_example(void **state)
{
	struct config *cfg = load_ok(TEST_SRCDIR "/../config/gridpatrol.example.yaml");
	const struct config_cell *c;
	const struct config_event *e;

	(void)state;
	assert_string_equal(cfg->mqtt.host, "127.0.0.1");
	assert_int_equal(cfg->mqtt.port, 1883);
	assert_int_equal(cfg->mqtt.protocol, 5);
	assert_string_equal(cfg->storage.path, "/var/lib/gridpatrol/patrol.db");
	assert_string_equal(cfg->timezone, "Asia/Shanghai");
	assert_true(cfg->n_cells >= 2);
	c = config_cell_find(cfg, "yh-01");
	assert_non_null(c);
	assert_string_equal(c->name, "云华社区 1号网格（紫坪铺库岸）");
	assert_int_equal(c->interval_s, 7200);
	assert_int_equal(c->grace_s, 900);
	assert_int_equal(c->n_workers, 2);
	assert_string_equal(c->workers[1], "w021");
	assert_string_equal(c->tags[0], "reservoir");
	assert_int_equal(cfg->n_events, 4);
	e = config_event_find(cfg, "fishing");
	assert_true(e->alert_immediate);
	e = config_event_find(cfg, "flood");
	assert_true(e->has_value && e->warn == 250 && e->alarm == 300);
	assert_int_equal(cfg->alerts.n_sinks, 2);
	assert_string_equal(cfg->alerts.sinks[0].name, "wechat");
	assert_string_equal(cfg->alerts.sinks[0].argv[0], "/usr/local/bin/wechat-bridge");
	assert_int_equal(cfg->alerts.sinks[0].group_window_s, 60);
	assert_string_equal(cfg->alerts.sinks[1].name, "mqtt");
	assert_int_equal(cfg->alerts.sinks[1].type, CONFIG_SINK_MQTT);
	assert_int_equal(cfg->alerts.escalate_after, 2);
	assert_string_equal(cfg->alerts.escalate_to[0], "secretary");
	assert_int_equal(cfg->alerts.daily_digest_min, 20 * 60);
	config_free(cfg);
}

static void test_cells_file(void **state)
{
	struct config *cfg = load_ok("fixtures/config/csv.yaml");
	const struct config_cell *c;

	(void)state;
	assert_string_equal(cfg->cells_file, "fixtures/config/cells.csv");
	assert_int_equal(cfg->n_cells, 5);
	/* YAML cells first, then the CSV rows in file order. */
	assert_string_equal(cfg->cells[0].id, "y-1");
	assert_string_equal(cfg->cells[1].id, "c-1");
	assert_string_equal(cfg->cells[4].id, "c-4");

	c = config_cell_find(cfg, "c-1");
	assert_string_equal(c->name, "Shore, north");
	assert_int_equal(c->interval_s, 7200);
	assert_int_equal(c->grace_s, 900);
	assert_int_equal(c->active.start_min, 420); /* empty = default */
	assert_int_equal(c->n_workers, 2);
	assert_string_equal(c->workers[0], "w1");
	assert_string_equal(c->workers[1], "w2");
	assert_int_equal(c->n_tags, 2);
	assert_string_equal(c->tags[0], "reservoir");
	assert_string_equal(c->tags[1], "flood");

	c = config_cell_find(cfg, "c-2");
	assert_string_equal(c->name, "He said \"hi\"");
	assert_true(c->active.always);
	assert_int_equal(c->interval_s, 5 * 3600); /* YAML defaults apply */
	assert_int_equal(c->n_workers, 0);
	assert_int_equal(c->n_tags, 0);

	c = config_cell_find(cfg, "c-3");
	assert_string_equal(c->name, "two\nlines");
	assert_int_equal(c->active.start_min, 450);
	assert_int_equal(c->active.end_min, 960);
	assert_int_equal(c->interval_s, 1800);
	assert_int_equal(c->n_tags, 1);
	assert_string_equal(c->tags[0], "x");

	c = config_cell_find(cfg, "c-4");
	assert_string_equal(c->name, "c-4");
	config_free(cfg);
}

static void test_example_csv(void **state)
{
	struct config *cfg = load_ok("fixtures/config/example-csv.yaml");
	const struct config_cell *c;

	(void)state;
	assert_int_equal(cfg->n_cells, 3);
	c = config_cell_find(cfg, "yh-07");
	assert_non_null(c);
	assert_string_equal(c->name, "云华社区 7号网格（水厂取水口, 一级保护区）");
	assert_true(c->active.always);
	assert_int_equal(c->n_tags, 2);
	assert_string_equal(c->tags[1], "water-intake");
	config_free(cfg);
}

static void test_missing_file(void **state)
{
	struct config_errors errs = { 0 };
	struct config *cfg = (struct config *)&errs;

	(void)state;
	assert_int_equal(config_load("fixtures/config/nope.yaml", &cfg, &errs), -1);
	assert_null(cfg);
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.v[0], "fixtures/config/nope.yaml:1:1: "
	                               "cannot open: No such file or directory");
	/* Errors accumulate across calls until freed. */
	assert_int_equal(config_load("fixtures", &cfg, &errs), -1);
	assert_int_equal(errs.n, 2);
	assert_string_equal(errs.v[1], "fixtures:1:1: cannot read: "
	                               "Is a directory");
	config_errors_free(&errs);
	assert_int_equal(errs.n, 0);
	assert_null(errs.v);
	/* Checking only: no config wanted, none leaked. */
	assert_int_equal(config_load("fixtures/config/full.yaml", NULL, NULL), 0);
	assert_int_equal(config_load("golden/alias.yaml", NULL, NULL), -1);
}

static void test_kind_name(void **state)
{
	(void)state;
	assert_string_equal(config_kind_name(CONFIG_KIND_OVERDUE), "overdue");
	assert_string_equal(config_kind_name(CONFIG_KIND_RECOVERED), "recovered");
	assert_string_equal(config_kind_name(CONFIG_KIND_EVENT), "event");
	assert_string_equal(config_kind_name(CONFIG_KIND_READING), "reading");
	assert_string_equal(config_kind_name(CONFIG_KIND_DIGEST), "digest");
	assert_string_equal(config_kind_name(CONFIG_KIND_SYSTEM), "system");
	assert_string_equal(config_kind_name(CONFIG_KIND_CLAIMED), "claimed");
	assert_null(config_kind_name(0));
	assert_null(config_kind_name(CONFIG_KIND_ALL));
	assert_null(config_kind_name(1u << 7));
	assert_null(config_cell_find(NULL, "x"));
	assert_null(config_event_find(NULL, "x"));
}

/* A large cells_file: loading and every lookup must stay fast. */
static void test_scale(void **state)
{
	enum {
		N = 200000
	};
	char dir[] = "/tmp/gp-config-XXXXXX", path[64], csv[64], id[32];
	struct config *cfg;
	FILE *f;
	clock_t t0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/big.yaml", dir);
	snprintf(csv, sizeof(csv), "%s/cells.csv", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("cells_file: cells.csv\n", f);
	fclose(f);
	f = fopen(csv, "w");
	assert_non_null(f);
	fputs("id,name,workers\n", f);
	for (int i = 0; i < N; i++)
		fprintf(f, "c%06d,网格 %d,w%d\n", i, i, i % 97);
	fclose(f);

	t0 = clock();
	cfg = load_ok(path);
	assert_int_equal(cfg->n_cells, N);
	for (int i = 0; i < N; i++) {
		const struct config_cell *c;

		snprintf(id, sizeof(id), "c%06d", i);
		c = config_cell_find(cfg, id);
		if (c == NULL || c != &cfg->cells[i])
			fail_msg("lookup of %s failed", id);
	}
	assert_null(config_cell_find(cfg, "c200000"));
	assert_null(config_cell_find(cfg, ""));
	/* Generous: about 0.3 s unoptimised here; a quadratic index would
	 * take minutes. */
	assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 30.0);
	config_free(cfg);
	unlink(csv);
	unlink(path);
	rmdir(dir);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0;

	if (f == NULL)
		return NULL;
	for (;;) {
		if (n + 4096 + 1 > cap) {
			char *nb;

			cap = (cap + 4096) * 2;
			nb = realloc(buf, cap);
			if (nb == NULL) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
		}
		size_t r = fread(buf + n, 1, 4096, f);

		n += r;
		if (r == 0)
			break;
	}
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_golden(void **state)
{
	DIR *d = opendir("golden");
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, failed = 0;

	(void)state;
	/* Timezone messages name the zoneinfo directory in use. */
	unsetenv("TZDIR");
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		if (len > 5 && strcmp(de->d_name + len - 5, ".yaml") == 0) {
			names = realloc(names, (n + 1) * sizeof(*names));
			assert_non_null(names);
			names[n] = strndup(de->d_name, len - 5);
			assert_non_null(names[n]);
			n++;
		}
	}
	closedir(d);
	assert_true(n >= 20);
	qsort(names, n, sizeof(*names), cmp_str);

	for (size_t i = 0; i < n; i++) {
		struct config_errors errs = { 0 };
		struct config *cfg = NULL;
		char yaml[512], errf[512], *want, *got = NULL;
		size_t got_len = 0;
		FILE *mem;
		int rc;

		snprintf(yaml, sizeof(yaml), "golden/%s.yaml", names[i]);
		snprintf(errf, sizeof(errf), "golden/%s.err", names[i]);
		rc = config_load(yaml, &cfg, &errs);
		mem = open_memstream(&got, &got_len);
		assert_non_null(mem);
		for (size_t j = 0; j < errs.n; j++)
			fprintf(mem, "%s\n", errs.v[j]);
		fclose(mem);
		want = slurp(errf);
		if (want == NULL) {
			print_error("%s: cannot read %s\n", names[i], errf);
			failed++;
		} else if (rc != -1 || cfg != NULL || errs.n == 0 || strcmp(want, got) != 0) {
			print_error("golden %s: rc %d\n--- expected\n%s"
			            "--- got\n%s",
			            names[i], rc, want, got);
			failed++;
		}
		free(want);
		free(got);
		config_free(cfg);
		config_errors_free(&errs);
		free(names[i]);
	}
	free(names);
	if (failed > 0)
		fail_msg("%zu of %zu golden cases failed", failed, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_file),   cmocka_unit_test(test_comments_only),
		cmocka_unit_test(test_full),         cmocka_unit_test(test_example),
		cmocka_unit_test(test_cells_file),   cmocka_unit_test(test_example_csv),
		cmocka_unit_test(test_missing_file), cmocka_unit_test(test_kind_name),
		cmocka_unit_test(test_scale),        cmocka_unit_test(test_golden),
	};

	/* Paths in the golden files are relative to tests/. */
	if (chdir(TEST_SRCDIR) != 0) {
		perror(TEST_SRCDIR);
		return 1;
	}
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
