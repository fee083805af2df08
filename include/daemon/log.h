/*
 * log: the daemon's only voice. Lines go to stderr with a syslog priority
 * prefix ("<4>...") that journald turns into a priority, so the same binary
 * logs correctly under systemd and in a terminal.
 *
 * Repeats of the same message (same format string) are rate-limited: a burst
 * passes, then the rest of the window is counted and summarised once, so a
 * device spewing garbage cannot drown the journal.
 */
#ifndef GRIDPATROL_LOG_H
#define GRIDPATROL_LOG_H

#include <stdarg.h>

#if defined(__GNUC__)
#define LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define LOG_NORETURN __attribute__((noreturn))
#else
#define LOG_PRINTF(a, b)
#define LOG_NORETURN
#endif

/* Messages less important than `max_priority` (a syslog LOG_* value) are
 * dropped. Default LOG_INFO. */
void log_init(int max_priority);
void log_set_priority(int max_priority);

void log_err(const char *fmt, ...) LOG_PRINTF(1, 2); /* appends strerror(errno) */
void log_errx(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warn(const char *fmt, ...) LOG_PRINTF(1, 2); /* appends strerror(errno) */
void log_warnx(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_notice(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_info(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_debug(const char *fmt, ...) LOG_PRINTF(1, 2);
void fatal(const char *fmt, ...) LOG_PRINTF(1, 2) LOG_NORETURN; /* strerror, exit 1 */
void fatalx(const char *fmt, ...) LOG_PRINTF(1, 2) LOG_NORETURN;

/* Emit pending "repeated N times" summaries whose window has ended. Called
 * from the daemon's periodic housekeeping. */
void log_flush_suppressed(void);

#endif
