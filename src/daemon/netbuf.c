/*
 * netbuf: read-ahead and write coalescing for the broker socket; see
 * netbuf.h for why it interposes read(), write() and close(). The three
 * definitions below replace libc's for the whole process (every module and
 * library in gridpatrold, and any test program linking the daemon
 * library); each acts only when its descriptor is the attached MQTT socket
 * (nb.fd) and otherwise is the bare system call.
 *
 * The real system calls go through syscall(2): the libc wrappers are the
 * very symbols defined here.
 */
#include "netbuf.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/* 64 KiB holds ~400 check-ins: one read() per burst instead of three per
 * message. The write side only ever holds acks and the odd status publish. */
#define NETBUF_RSIZE 65536
#define NETBUF_WSIZE 16384

static struct {
	int fd;
	bool holding;
	bool dry;          /* a read of fd found nothing waiting */
	size_t rpos, rlen; /* unread bytes are rbuf[rpos, rlen) */
	size_t wlen;       /* gathered, not yet sent: wbuf[0, wlen) */
	unsigned char rbuf[NETBUF_RSIZE];
	unsigned char wbuf[NETBUF_WSIZE];
} nb = { .fd = -1 };

/* The interposed symbols; declared here because unistd.h's are the libc
 * ones these replace. */
ssize_t read(int fd, void *buf, size_t count);
ssize_t write(int fd, const void *buf, size_t count);
int close(int fd);

static void netbuf_reset(void)
{
	nb.fd = -1;
	nb.holding = false;
	nb.dry = false;
	nb.rpos = nb.rlen = 0;
	nb.wlen = 0;
}

void netbuf_attach(int fd)
{
	netbuf_reset();
	nb.fd = fd;
}

void netbuf_detach(void)
{
	netbuf_reset();
}

int netbuf_fd(void)
{
	return nb.fd;
}

size_t netbuf_readable(void)
{
	return nb.rlen - nb.rpos;
}

bool netbuf_take_dry(void)
{
	bool dry = nb.dry;
	nb.dry = false;
	return dry;
}

size_t netbuf_unsent(void)
{
	return nb.wlen;
}

/* Send what is gathered, as far as the socket takes it. */
static int netbuf_push(void)
{
	size_t off = 0;
	int err = 0;
	while (off < nb.wlen) {
		/* MSG_NOSIGNAL: a dead broker is an error return, not SIGPIPE. */
		ssize_t n = send(nb.fd, nb.wbuf + off, nb.wlen - off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = errno;
			break;
		}
		off += (size_t)n;
	}
	if (off > 0) {
		memmove(nb.wbuf, nb.wbuf + off, nb.wlen - off);
		nb.wlen -= off;
	}
	if (nb.wlen == 0)
		return 0;
	if (err == EAGAIN || err == EWOULDBLOCK)
		return 1;
	/* The connection is broken: drop the bytes, the read side will see
	 * the same error and libmosquitto reconnects; the broker redelivers
	 * whatever these acks were for, and dedup keeps one row. */
	nb.wlen = 0;
	errno = err;
	return -1;
}

void netbuf_hold(void)
{
	if (nb.fd >= 0)
		nb.holding = true;
}

int netbuf_release(void)
{
	nb.holding = false;
	if (nb.fd < 0 || nb.wlen == 0)
		return 0;
	return netbuf_push();
}

ssize_t read(int fd, void *buf, size_t count)
{
	if (fd < 0 || fd != nb.fd)
		return syscall(SYS_read, fd, buf, count);
	if (nb.rpos == nb.rlen) {
		/* Large reads need no buffer; a zero-length one must not turn a
		 * fill into an apparent end of file. */
		bool direct = count == 0 || count >= NETBUF_RSIZE;
		ssize_t got = syscall(SYS_read, fd, direct ? buf : nb.rbuf,
		                      direct ? count : NETBUF_RSIZE);
		if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			nb.dry = true;
		if (direct || got <= 0)
			return got;
		nb.rpos = 0;
		nb.rlen = (size_t)got;
	}
	size_t n = nb.rlen - nb.rpos;
	if (n > count)
		n = count;
	memcpy(buf, nb.rbuf + nb.rpos, n);
	nb.rpos += n;
	return (ssize_t)n;
}

ssize_t write(int fd, const void *buf, size_t count)
{
	if (fd < 0 || fd != nb.fd || (!nb.holding && nb.wlen == 0))
		return syscall(SYS_write, fd, buf, count);
	/* Held, or earlier bytes still wait: queue behind them to keep the
	 * order. A short count is fine, libmosquitto writes the rest later. */
	if (nb.wlen == NETBUF_WSIZE && netbuf_push() < 0)
		return -1;
	size_t n = NETBUF_WSIZE - nb.wlen;
	if (n == 0) {
		errno = EAGAIN;
		return -1;
	}
	if (n > count)
		n = count;
	memcpy(nb.wbuf + nb.wlen, buf, n);
	nb.wlen += n;
	return (ssize_t)n;
}

int close(int fd)
{
	if (fd >= 0 && fd == nb.fd)
		netbuf_reset();
	return (int)syscall(SYS_close, fd);
}
