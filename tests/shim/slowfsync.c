/*
 * slowfsync: an LD_PRELOAD shim that makes fsync() and fdatasync() slow,
 * like the SD card or cheap eMMC of a village box, on a machine whose disk
 * syncs in a fraction of a millisecond.
 *
 *   GRIDPATROL_SLOW_FSYNC_MS=10 LD_PRELOAD=build/tests/shim/slowfsync.so gridpatrold ...
 *
 * Every call to fsync() or fdatasync() through libc first does the real
 * call, then sleeps GRIDPATROL_SLOW_FSYNC_MS milliseconds (a whole number,
 * 0 to 60000; unset, empty or invalid means 0, i.e. no delay) before
 * returning the real result. The delay comes after the real call so that a
 * trace (strace) shows the sync itself where it happens, and the caller is
 * held as long as a slow device would hold it. Only the calling thread
 * waits, as with a real device. The sleep is restarted after a signal, so
 * the delay is the full amount.
 *
 * What it does not cover: syncs that bypass these two libc functions
 * (syncfs, sync_file_range, msync, O_SYNC/O_DSYNC writes, raw syscall()).
 * SQLite, gridpatrold and mosquitto use fsync/fdatasync.
 *
 * Under an ASan build of the preloading program, set
 * ASAN_OPTIONS=verify_asan_link_order=0 (the shim is not the sanitizer
 * runtime, and ASan wants to be first in the preload list otherwise).
 *
 * Built by meson as a shared module (-D_GNU_SOURCE comes from meson.build) for the tests and bench/, never
 * installed. The environment is read once, at the first call.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int fsync(int fd);
int fdatasync(int fd);

static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static long delay_ms;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void slowfsync_init(void)
{
	const char *s = getenv("GRIDPATROL_SLOW_FSYNC_MS");
	char *end;

	/* ISO C has no cast from void * to a function pointer; POSIX
	 * guarantees the representation, so copy it. */
	void *p = dlsym(RTLD_NEXT, "fsync");
	memcpy(&real_fsync, &p, sizeof(p));
	p = dlsym(RTLD_NEXT, "fdatasync");
	memcpy(&real_fdatasync, &p, sizeof(p));
	if (s && *s) {
		errno = 0;
		long v = strtol(s, &end, 10);
		if (errno == 0 && *end == '\0' && v >= 0 && v <= 60000)
			delay_ms = v;
	}
}

static void slowfsync_wait(void)
{
	struct timespec left = { delay_ms / 1000, (delay_ms % 1000) * 1000000L };

	if (delay_ms == 0)
		return;
	/* clock_nanosleep returns the error and leaves errno alone, so the
	 * real call's errno survives the wait. */
	while (clock_nanosleep(CLOCK_MONOTONIC, 0, &left, &left) == EINTR)
		;
}

static int slowfsync_call(int (*fn)(int), int fd)
{
	if (!fn) {
		errno = ENOSYS;
		return -1;
	}
	int rc = fn(fd);
	int e = errno;
	slowfsync_wait();
	errno = e;
	return rc;
}

int fsync(int fd)
{
	pthread_once(&once, slowfsync_init);
	return slowfsync_call(real_fsync, fd);
}

int fdatasync(int fd)
{
	pthread_once(&once, slowfsync_init);
	return slowfsync_call(real_fdatasync, fd);
}
