/*
 * netbuf tests on real sockets: read-ahead hands out bytes in order and
 * says when some wait; closing the socket forgets them, so a reused
 * descriptor number never sees a stale byte; held writes leave in one
 * send, in order, also when the socket is full; a dead peer is an error,
 * not SIGPIPE; other descriptors are untouched; "ran dry" is reported
 * only for the attached socket's own EAGAIN.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netbuf.h"

static void pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
}

static void put(int fd, const char *s)
{
	assert_int_equal(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

static void test_read_ahead_in_order(void **state)
{
	(void)state;
	int sv[2];
	char b[16];
	pair(sv);
	netbuf_attach(sv[0]);
	put(sv[1], "0123456789");

	assert_int_equal(read(sv[0], b, 1), 1);
	assert_int_equal(b[0], '0');
	/* One read() took everything the kernel had. */
	assert_int_equal(netbuf_readable(), 9);
	assert_int_equal(read(sv[0], b, 4), 4);
	assert_memory_equal(b, "1234", 4);
	assert_int_equal(read(sv[0], b, sizeof(b)), 5);
	assert_memory_equal(b, "56789", 5);
	assert_int_equal(netbuf_readable(), 0);
	errno = 0;
	assert_int_equal(read(sv[0], b, 1), -1);
	assert_int_equal(errno, EAGAIN);

	/* The peer's close is an end of file, as without the buffer. */
	put(sv[1], "z");
	close(sv[1]);
	assert_int_equal(read(sv[0], b, 8), 1);
	assert_int_equal(read(sv[0], b, 8), 0);
	close(sv[0]);
	assert_int_equal(netbuf_fd(), -1);
}

static void test_close_forgets_buffered_bytes(void **state)
{
	(void)state;
	int sv[2], nv[2];
	char b[16];
	pair(sv);
	netbuf_attach(sv[0]);
	put(sv[1], "OLDOLD");
	assert_int_equal(read(sv[0], b, 1), 1);
	assert_int_equal(netbuf_readable(), 5);

	int old = sv[0];
	close(sv[0]);
	close(sv[1]);
	assert_int_equal(netbuf_fd(), -1);
	assert_int_equal(netbuf_readable(), 0);

	/* The lowest free numbers come back: the same descriptor, a new
	 * socket, unattached. It must read its own bytes only. */
	pair(nv);
	assert_int_equal(nv[0], old);
	put(nv[1], "NEW");
	assert_int_equal(read(nv[0], b, sizeof(b)), 3);
	assert_memory_equal(b, "NEW", 3);
	close(nv[0]);
	close(nv[1]);
}

static void test_other_descriptors_untouched(void **state)
{
	(void)state;
	int sv[2], p[2];
	char b[8];
	pair(sv);
	assert_int_equal(pipe(p), 0);
	netbuf_attach(sv[0]);
	put(sv[1], "sock");
	assert_int_equal(write(p[1], "pipe", 4), 4);
	assert_int_equal(read(p[0], b, 2), 2);
	assert_memory_equal(b, "pi", 2);
	assert_int_equal(netbuf_readable(), 0);
	assert_int_equal(read(p[0], b, 8), 2);
	assert_memory_equal(b, "pe", 2);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
}

/* The interposed read/write/close are the whole process's: while the
 * socket is attached, holding writes and with bytes in its read-ahead, a
 * pipe and a regular file behave exactly as with libc's. */
static void test_pipe_and_file_pass_through(void **state)
{
	(void)state;
	int sv[2], p[2];
	char b[16], path[] = "/tmp/test_netbuf.XXXXXX";
	pair(sv);
	assert_int_equal(pipe(p), 0);
	int f = mkstemp(path);
	assert_true(f >= 0);
	unlink(path);
	netbuf_attach(sv[0]);
	put(sv[1], "socket");
	assert_int_equal(read(sv[0], b, 1), 1);
	assert_int_equal(netbuf_readable(), 5);
	netbuf_hold();

	/* Writes go out at once, not into the gathered ones. */
	assert_int_equal(write(p[1], "pipe", 4), 4);
	assert_int_equal(write(f, "file!", 5), 5);
	assert_int_equal(netbuf_unsent(), 0);
	assert_int_equal(read(p[0], b, sizeof(b)), 4);
	assert_memory_equal(b, "pipe", 4);
	assert_int_equal(lseek(f, 0, SEEK_SET), 0);
	assert_int_equal(read(f, b, sizeof(b)), 5);
	assert_memory_equal(b, "file!", 5);
	/* End of file and EAGAIN are their own, not the socket's. */
	assert_int_equal(read(f, b, sizeof(b)), 0);
	assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
	errno = 0;
	assert_int_equal(read(p[0], b, sizeof(b)), -1);
	assert_int_equal(errno, EAGAIN);
	assert_false(netbuf_take_dry());
	/* A bad descriptor still fails as the kernel says. */
	errno = 0;
	assert_int_equal(write(-1, "x", 1), -1);
	assert_int_equal(errno, EBADF);

	/* Closing them leaves the socket attached, its bytes buffered. */
	assert_int_equal(close(f), 0);
	assert_int_equal(close(p[0]), 0);
	assert_int_equal(close(p[1]), 0);
	assert_int_equal(netbuf_fd(), sv[0]);
	assert_int_equal(netbuf_readable(), 5);
	assert_int_equal(netbuf_release(), 0);
	assert_int_equal(read(sv[0], b, sizeof(b)), 5);
	assert_memory_equal(b, "ocket", 5);
	close(sv[0]);
	close(sv[1]);
}

static void test_held_writes_leave_together(void **state)
{
	(void)state;
	int sv[2];
	char b[256];
	pair(sv);
	netbuf_attach(sv[0]);

	netbuf_hold();
	for (int i = 0; i < 100; i++) {
		char c = (char)('a' + i % 26);
		assert_int_equal(write(sv[0], &c, 1), 1);
	}
	assert_int_equal(netbuf_unsent(), 100);
	assert_int_equal(recv(sv[1], b, sizeof(b), MSG_DONTWAIT), -1);
	assert_int_equal(netbuf_release(), 0);
	assert_int_equal(netbuf_unsent(), 0);
	assert_int_equal(recv(sv[1], b, sizeof(b), MSG_DONTWAIT), 100);
	for (int i = 0; i < 100; i++)
		assert_int_equal(b[i], 'a' + i % 26);

	/* Not held and nothing waiting: straight through. */
	assert_int_equal(write(sv[0], "now", 3), 3);
	assert_int_equal(netbuf_unsent(), 0);
	assert_int_equal(recv(sv[1], b, sizeof(b), MSG_DONTWAIT), 3);
	close(sv[0]);
	close(sv[1]);
}

static void test_full_socket_keeps_order(void **state)
{
	(void)state;
	int sv[2];
	static char big[1 << 20], got[1 << 20];
	pair(sv);
	netbuf_attach(sv[0]);

	/* Fill the socket with unheld writes until the kernel refuses. */
	size_t filled = 0;
	memset(big, 'F', sizeof(big));
	for (;;) {
		ssize_t n = write(sv[0], big, 4096);
		if (n < 0) {
			assert_int_equal(errno, EAGAIN);
			break;
		}
		filled += (size_t)n;
		assert_true(filled < sizeof(big));
	}

	netbuf_hold();
	assert_int_equal(write(sv[0], "ack1", 4), 4);
	assert_int_equal(netbuf_release(), 1); /* waits for POLLOUT */
	assert_int_equal(netbuf_unsent(), 4);
	/* Unheld writes now queue behind the waiting bytes. */
	assert_int_equal(write(sv[0], "ack2", 4), 4);
	assert_int_equal(netbuf_unsent(), 8);

	size_t total = 0;
	for (int spins = 0; total < filled + 8 && spins < 100000; spins++) {
		ssize_t n = recv(sv[1], got + total, sizeof(got) - total, MSG_DONTWAIT);
		if (n > 0)
			total += (size_t)n;
		if (netbuf_unsent() > 0)
			assert_true(netbuf_release() >= 0);
	}
	assert_int_equal(total, filled + 8);
	assert_memory_equal(got + filled, "ack1ack2", 8);
	for (size_t i = 0; i < filled; i++)
		if (got[i] != 'F')
			fail_msg("byte %zu is %d", i, got[i]);
	close(sv[0]);
	close(sv[1]);
}

static void test_dead_peer_is_an_error(void **state)
{
	(void)state;
	int sv[2];
	pair(sv);
	netbuf_attach(sv[0]);
	close(sv[1]);
	netbuf_hold();
	assert_int_equal(write(sv[0], "ack", 3), 3);
	errno = 0;
	/* Without MSG_NOSIGNAL this would kill the test with SIGPIPE. */
	assert_int_equal(netbuf_release(), -1);
	assert_int_equal(errno, EPIPE);
	assert_int_equal(netbuf_unsent(), 0);
	close(sv[0]);
}

static void test_ran_dry_only_on_own_eagain(void **state)
{
	(void)state;
	int sv[2], other[2];
	char b[16];
	pair(sv);
	pair(other);
	netbuf_attach(sv[0]);

	put(sv[1], "abc");
	assert_int_equal(read(sv[0], b, 0), 0); /* not an end of file, not dry */
	assert_false(netbuf_take_dry());
	assert_int_equal(read(sv[0], b, 3), 3);
	assert_false(netbuf_take_dry());

	/* EAGAIN elsewhere (libmosquitto's wake-up socketpair) leaves errno
	 * saying EAGAIN although the attached socket was not asked. */
	errno = 0;
	assert_int_equal(read(other[0], b, 1), -1);
	assert_int_equal(errno, EAGAIN);
	assert_false(netbuf_take_dry());

	assert_int_equal(read(sv[0], b, 1), -1);
	assert_int_equal(errno, EAGAIN);
	assert_true(netbuf_take_dry());
	assert_false(netbuf_take_dry()); /* taking clears it */

	/* A large read bypasses the buffer but still reports dryness. */
	static char big[1 << 17];
	assert_int_equal(read(sv[0], big, sizeof(big)), -1);
	assert_true(netbuf_take_dry());

	close(other[0]);
	close(other[1]);
	close(sv[1]);
	close(sv[0]);
	assert_false(netbuf_take_dry());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_ahead_in_order),
		cmocka_unit_test(test_close_forgets_buffered_bytes),
		cmocka_unit_test(test_other_descriptors_untouched),
		cmocka_unit_test(test_pipe_and_file_pass_through),
		cmocka_unit_test(test_held_writes_leave_together),
		cmocka_unit_test(test_full_socket_keeps_order),
		cmocka_unit_test(test_dead_peer_is_an_error),
		cmocka_unit_test(test_ran_dry_only_on_own_eagain),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
