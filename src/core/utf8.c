/*
 * utf8: strict UTF-8 decoding, checking and cutting (see utf8.h).
 *
 * Strictness is decided in one place, utf8_decode; everything else walks
 * text with it, so that what the configuration loader, the message judge,
 * the store and the CLI call "text" is the same set of byte strings.
 */
#include "utf8.h"

size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
	uint32_t c;
	size_t n;

	if (len == 0)
		return 0;
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	} else if (s[0] >= 0xC2 && s[0] <= 0xDF) {
		c = s[0] & 0x1F;
		n = 2;
	} else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
		c = s[0] & 0x0F;
		n = 3;
	} else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
		c = s[0] & 0x07;
		n = 4;
	} else {
		/* 0x80..0xC1 (continuation, overlong 2-byte lead) and
		 * 0xF5..0xFF (past U+10FFFF) never start a sequence. */
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if (i >= len || (s[i] & 0xC0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3F);
	}
	if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10FFFF)) ||
	    (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*cp = c;
	return n;
}

size_t utf8_check(const char *s, size_t len)
{
	const unsigned char *b = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		uint32_t cp;
		size_t n = utf8_decode(b + i, len - i, &cp);

		if (n == 0 || cp == 0)
			return i;
		i += n;
	}
	return len;
}

void utf8_line_col(const char *s, size_t len, size_t off, int *line, int *col)
{
	const unsigned char *b = (const unsigned char *)s;

	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off && i < len; i++) {
		if (b[i] == '\n') {
			(*line)++;
			*col = 1;
		} else if ((b[i] & 0xC0) != 0x80) {
			(*col)++;
		}
	}
}

size_t utf8_prefix(const char *s, size_t len, size_t max)
{
	const unsigned char *b = (const unsigned char *)s;
	size_t i = 0;

	if (max > len)
		max = len;
	while (i < max) {
		uint32_t cp;
		size_t n = utf8_decode(b + i, max - i, &cp);

		if (n == 0)
			break;
		i += n;
	}
	return i;
}

size_t utf8_count(const char *s, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			n++;
	return n;
}
