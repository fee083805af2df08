/*
 * table: plain-text tables for a terminal, aligned by display width so that
 * Chinese cell names (two columns per character) line up with ASCII ids.
 *
 * Width is computed from Unicode's East Asian Width and combining-mark data
 * compiled into the module, not with wcwidth(3): wcwidth depends on the
 * caller's LC_CTYPE and answers -1 for every non-ASCII character in the C
 * locale that cron jobs and systemd units run under, which would scramble
 * a report that printed fine in an interactive shell.
 *
 * Pure: no I/O except writing the finished table to a FILE, no logging.
 * Every function that allocates returns -1 on ENOMEM.
 */
#ifndef GRIDPATROL_TABLE_H
#define GRIDPATROL_TABLE_H

#include <stddef.h>
#include <stdio.h>

enum table_align {
	TABLE_LEFT,
	TABLE_RIGHT
};

struct table;

/* A table of ncols columns (>= 1) with these headers (copied). */
struct table *table_new(size_t ncols, const char *const *headers);
void table_free(struct table *t);

void table_set_align(struct table *t, size_t col, enum table_align a);
/* Cells wider than max columns are cut at a character boundary and end in
 * "…"; 0 (the default) never truncates. Headers are never cut. */
void table_set_max_width(struct table *t, size_t col, size_t max);

/* Append a row of ncols cells (copied; NULL is shown empty). Control
 * characters and malformed UTF-8 are shown escaped ("\n", "\x1b"), so a
 * hostile note can neither break the layout nor drive the terminal. */
int table_add_row(struct table *t, const char *const *cells);
size_t table_rows(const struct table *t);

/* Columns separated by two spaces, a rule of "-" under the header, no
 * trailing blanks. Returns 0, or -1 with errno set by stdio. */
int table_write(const struct table *t, FILE *f);

/* Display columns of a UTF-8 string (malformed bytes count 4: the width of
 * their "\xNN" escape). */
size_t table_width(const char *s);
/* Display columns of one code point: 0 (combining, zero-width), 1 or 2. */
int table_cp_width(unsigned cp);

/* The longest prefix of s, at a character boundary, whose width is at most
 * max; if s was longer, its width leaves room for an ellipsis and "…" is
 * appended. Returns a malloc'd string or NULL. */
char *table_truncate(const char *s, size_t max);

/* s with control characters and malformed UTF-8 escaped, as table cells
 * show it (malloc'd, NULL on ENOMEM). */
char *table_sanitize(const char *s);

#endif
