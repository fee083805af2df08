/*
 * netbuf: read-ahead and write coalescing for the broker socket.
 *
 * Process-wide: linking this module replaces libc's read(), write() and
 * close() for the whole gridpatrold process — every module, SQLite,
 * libmosquitto, the spawned bridges' pipes — not just for mqtt.c. Only the
 * one descriptor given to netbuf_attach (the MQTT socket, set by mqtt.c on
 * each connect) is buffered; every other descriptor is passed to the
 * kernel unchanged, and closing the attached one detaches it. Why:
 *
 * libmosquitto 2.0 reads every packet with three or four read() calls (the
 * type byte, each length byte, the body) and writes every PUBACK with its
 * own write(): five system calls per stored message, a quarter of the
 * daemon's CPU at full load. It has no hook for its transport, but it calls
 * read(), write() and close() through the dynamic linker, so this module
 * defines those three and lets them act on one attached descriptor only:
 * reads are served from a 64 KiB read-ahead buffer, and writes made while
 * "held" are gathered and sent in one go. Every other descriptor goes
 * straight to the kernel. If a future libmosquitto stops calling these
 * functions, nothing breaks; the saving is simply gone.
 *
 * Single-threaded by design, like the daemon's loop.
 */
#ifndef GRIDPATROL_NETBUF_H
#define GRIDPATROL_NETBUF_H

#include <stdbool.h>
#include <stddef.h>

/* Route fd's reads and writes through the buffers, forgetting any earlier
 * socket. Closing fd (libmosquitto does that on every disconnect) detaches
 * it and drops what was buffered, so a reused descriptor number never sees
 * a stale byte. */
void netbuf_attach(int fd);
void netbuf_detach(void);
int netbuf_fd(void);

/* Bytes already read from the kernel but not yet handed out: while this
 * is non-zero the socket may poll quiet although a packet is waiting. */
size_t netbuf_readable(void);

/* Whether a read of the attached socket found it empty (EAGAIN) since the
 * last call; clears the flag. libmosquitto's loop_read returns success
 * both after a packet and on a dry socket, and errno cannot tell them
 * apart: it also writes a wake-up byte to an internal socketpair per
 * queued packet, which nobody drains in our loop, so EAGAIN from that
 * write is left in errno after nearly every message. OpenSSL's socket
 * reads come through here as well, so this holds under TLS too. */
bool netbuf_take_dry(void);

/* Between hold and release, writes to the attached socket are gathered.
 * Release sends them: 0 when all left, 1 when some wait for POLLOUT (see
 * netbuf_unsent), -1 with errno on a socket error (the next read reports
 * it to libmosquitto too). */
void netbuf_hold(void);
int netbuf_release(void);
size_t netbuf_unsent(void);

#endif
