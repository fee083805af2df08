/*
 * log: stderr lines with syslog priority prefixes, for journald.
 *
 * Rate limiting is keyed by the format string: the call site, not the
 * rendered text, is what repeats when a device keeps sending the same kind
 * of garbage with different bytes. Each key may print LOG_BURST lines per
 * LOG_WINDOW_S seconds; the rest are counted and summarised once when the
 * window ends. The table is small and fixed: when it is full, the oldest
 * window is recycled, which at worst lets a few extra lines through.
 */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#define LOG_BURST 10
#define LOG_WINDOW_S 60
#define LOG_SLOTS 64

struct log_slot {
	const char *fmt;
	int priority;
	time_t window_start;
	unsigned printed;
	unsigned suppressed;
};

static int log_max = LOG_INFO;
static struct log_slot log_slots[LOG_SLOTS];

void log_init(int max_priority)
{
	log_max = max_priority;
	memset(log_slots, 0, sizeof(log_slots));
}

void log_set_priority(int max_priority)
{
	log_max = max_priority;
}

static time_t log_mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static void log_summary(struct log_slot *s)
{
	if (s->suppressed > 0) {
		fprintf(stderr, "<%d>previous message repeated %u more times: %s\n", s->priority,
		        s->suppressed, s->fmt);
	}
	s->suppressed = 0;
}

/* Returns whether this occurrence may be printed. */
static int log_admit(const char *fmt, int priority)
{
	time_t now = log_mono_s();
	struct log_slot *oldest = &log_slots[0];

	for (size_t i = 0; i < LOG_SLOTS; i++) {
		struct log_slot *s = &log_slots[i];
		if (s->fmt == fmt) {
			if (now - s->window_start >= LOG_WINDOW_S) {
				log_summary(s);
				s->window_start = now;
				s->printed = 0;
			}
			if (s->printed < LOG_BURST) {
				s->printed++;
				return 1;
			}
			s->suppressed++;
			return 0;
		}
		if (s->fmt == NULL || s->window_start < oldest->window_start)
			oldest = s;
		if (s->fmt == NULL)
			break;
	}
	log_summary(oldest);
	oldest->fmt = fmt;
	oldest->priority = priority;
	oldest->window_start = now;
	oldest->printed = 1;
	return 1;
}

void log_flush_suppressed(void)
{
	time_t now = log_mono_s();
	for (size_t i = 0; i < LOG_SLOTS; i++) {
		struct log_slot *s = &log_slots[i];
		if (s->fmt && s->suppressed && now - s->window_start >= LOG_WINDOW_S) {
			log_summary(s);
			s->window_start = now;
			s->printed = 0;
		}
	}
}

static void log_vemit(int priority, int with_errno, const char *fmt, va_list ap)
{
	int saved = errno;
	char buf[2048];

	if (priority > log_max)
		return;
	if (!log_admit(fmt, priority))
		return;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	/* One write per line so concurrent writers and journald never see a
	 * line split; newlines inside would start a priority-less line. */
	for (char *p = buf; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	if (with_errno)
		fprintf(stderr, "<%d>%s: %s\n", priority, buf, strerror(saved));
	else
		fprintf(stderr, "<%d>%s\n", priority, buf);
	errno = saved;
}

#define LOG_DEFINE(name, prio, with_errno)            \
	void name(const char *fmt, ...)               \
	{                                             \
		va_list ap;                           \
		va_start(ap, fmt);                    \
		log_vemit(prio, with_errno, fmt, ap); \
		va_end(ap);                           \
	}

LOG_DEFINE(log_err, LOG_ERR, 1)
LOG_DEFINE(log_errx, LOG_ERR, 0)
LOG_DEFINE(log_warn, LOG_WARNING, 1)
LOG_DEFINE(log_warnx, LOG_WARNING, 0)
LOG_DEFINE(log_notice, LOG_NOTICE, 0)
LOG_DEFINE(log_info, LOG_INFO, 0)
LOG_DEFINE(log_debug, LOG_DEBUG, 0)

void fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vemit(LOG_CRIT, 1, fmt, ap);
	va_end(ap);
	exit(1);
}

void fatalx(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vemit(LOG_CRIT, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
