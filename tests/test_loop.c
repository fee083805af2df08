/*
 * loop tests: hook order within a pass (the ack-after-commit guarantee rests
 * on it), timers on the monotonic clock, fd dispatch, signals via signalfd.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "loop.h"

struct trace {
	struct loop *loop;
	char log[256];
	int fires;
	int fd_read;
};

static void trace_add(struct trace *t, const char *s)
{
	strncat(t->log, s, sizeof(t->log) - strlen(t->log) - 1);
}

static void on_prepare(void *arg)
{
	trace_add(arg, "P");
}
static void on_check(void *arg)
{
	trace_add(arg, "C");
}

static void on_fd(void *arg, int fd, short revents)
{
	struct trace *t = arg;
	char c;
	assert_true(revents & POLLIN);
	assert_int_equal(read(fd, &c, 1), 1);
	t->fd_read++;
	trace_add(t, "F");
}

static void on_timer_stop(void *arg)
{
	struct trace *t = arg;
	trace_add(t, "T");
	loop_stop(t->loop);
}

static void test_pass_order_fd_timer_check(void **state)
{
	(void)state;
	struct trace t = { 0 };
	int p[2];
	struct loop_timer timer;

	assert_int_equal(pipe(p), 0);
	t.loop = loop_new();
	assert_non_null(t.loop);
	assert_int_equal(loop_on_prepare(t.loop, on_prepare, &t), 0);
	assert_int_equal(loop_on_check(t.loop, on_check, &t), 0);
	assert_true(loop_fd_add(t.loop, p[0], POLLIN, on_fd, &t) >= 0);
	loop_timer_init(&timer, on_timer_stop, &t);
	assert_int_equal(loop_timer_arm(t.loop, &timer, 0), 0);
	assert_int_equal(write(p[1], "x", 1), 1);

	assert_int_equal(loop_run(t.loop), 0);
	/* One pass: prepare, the fd callback, timers, then check (commit). */
	assert_string_equal(t.log, "PFTC");
	loop_free(t.loop);
	close(p[0]);
	close(p[1]);
}

static void on_timer_count(void *arg)
{
	struct trace *t = arg;
	if (++t->fires == 3)
		loop_stop(t->loop);
}

static void test_timer_fires_after_delay(void **state)
{
	(void)state;
	struct trace t = { 0 };
	struct loop_timer a, b;

	t.loop = loop_new();
	loop_timer_init(&a, on_timer_count, &t);
	loop_timer_init(&b, on_timer_count, &t);
	int64_t start = loop_mono_ms();
	loop_timer_arm(t.loop, &a, 30);
	loop_timer_arm(t.loop, &b, 10);
	/* Re-arming an armed timer moves it instead of adding it twice. */
	loop_timer_arm(t.loop, &b, 20);
	struct loop_timer c;
	loop_timer_init(&c, on_timer_count, &t);
	loop_timer_arm(t.loop, &c, 5);
	loop_timer_disarm(t.loop, &c);
	loop_timer_arm(t.loop, &c, 40);
	assert_int_equal(loop_run(t.loop), 0);
	assert_int_equal(t.fires, 3);
	assert_true(loop_mono_ms() - start >= 40);
	loop_free(t.loop);
}

static void on_signal(void *arg)
{
	struct trace *t = arg;
	trace_add(t, "S");
	loop_stop(t->loop);
}

static void on_timer_raise(void *arg)
{
	(void)arg;
	raise(SIGUSR1);
}

static void test_signal_is_delivered_in_loop(void **state)
{
	(void)state;
	struct trace t = { 0 };
	struct loop_timer timer;

	t.loop = loop_new();
	assert_int_equal(loop_signal(t.loop, SIGUSR1, on_signal, &t), 0);
	loop_timer_init(&timer, on_timer_raise, &t);
	loop_timer_arm(t.loop, &timer, 1);
	assert_int_equal(loop_run(t.loop), 0);
	assert_string_equal(t.log, "S");
	loop_free(t.loop);
}

static void test_parked_fd_is_not_polled(void **state)
{
	(void)state;
	struct trace t = { 0 };
	struct loop_timer timer;
	int p[2];

	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "x", 1), 1);
	t.loop = loop_new();
	int h = loop_fd_add(t.loop, p[0], POLLIN, on_fd, &t);
	loop_fd_set(t.loop, h, p[0], 0); /* held: e.g. storage is down */
	loop_timer_init(&timer, on_timer_stop, &t);
	loop_timer_arm(t.loop, &timer, 20);
	assert_int_equal(loop_run(t.loop), 0);
	assert_int_equal(t.fd_read, 0);
	loop_fd_set(t.loop, h, p[0], POLLIN);
	loop_timer_arm(t.loop, &timer, 20);
	assert_int_equal(loop_run(t.loop), 0);
	assert_int_equal(t.fd_read, 1);
	loop_free(t.loop);
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pass_order_fd_timer_check),
		cmocka_unit_test(test_timer_fires_after_delay),
		cmocka_unit_test(test_signal_is_delivered_in_loop),
		cmocka_unit_test(test_parked_fd_is_not_polled),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
