/*
 * utf8: the one strict reading of UTF-8 text (RFC 3629) shared by every
 * module that checks, cuts or walks text: no overlong forms, no surrogates
 * (U+D800..U+DFFF), nothing past U+10FFFF. Before it there were five
 * copies, which is four chances to disagree about what is text.
 *
 * Pure: no allocation, no global state. Lengths are in bytes.
 */
#ifndef GRIDPATROL_UTF8_H
#define GRIDPATROL_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length (1..4) of the well-formed sequence at s[0..len), with its code
 * point in *cp; 0 when s does not start one (or len is 0), *cp untouched.
 * Bytes are read in order and reading stops at the first byte that is not
 * a continuation byte, so a NUL-terminated string is never read past its
 * end. */
size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp);

/* Offset of the first byte of s[0..len) that does not start a well-formed
 * sequence, or of the first NUL byte (no text file or stored text here may
 * hold one); len when the whole input is text. */
size_t utf8_check(const char *s, size_t len);

/* 1-based line and column of byte offset off in s[0..len), the column
 * counted in characters (bytes that are not continuation bytes), as
 * libyaml counts them, so that an editor's column matches. */
void utf8_line_col(const char *s, size_t len, size_t off, int *line, int *col);

/* Length of the longest well-formed prefix of s[0..len) of at most max
 * bytes: never ends inside a character, and stops before the first
 * malformed sequence. */
size_t utf8_prefix(const char *s, size_t len, size_t max);

/* Characters in s[0..len) of valid UTF-8: bytes that are not continuation
 * bytes (any other byte counts as one). */
size_t utf8_count(const char *s, size_t len);

#endif
