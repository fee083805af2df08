/*
 * table: text tables whose columns line up on a terminal when cells mix
 * Chinese (two columns a character) and ASCII. The CLI builds one per
 * listing or report, adds rows, and writes it once at the end, because the
 * width of a column is only known after its widest cell.
 *
 * Widths come from a compact copy of Unicode's East Asian Width (W and F)
 * and zero-width ranges rather than wcwidth(3), whose answer depends on the
 * locale the program happens to run under (see table.h).
 */
#include "table.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

struct range {
	unsigned lo, hi;
};

/* Zero-width: combining marks, joiners, variation selectors, BOM. */
static const struct range table_zero[] = {
	{ 0x0300, 0x036F },   { 0x0483, 0x0489 },   { 0x0591, 0x05BD },   { 0x05BF, 0x05BF },
	{ 0x05C1, 0x05C2 },   { 0x05C4, 0x05C5 },   { 0x05C7, 0x05C7 },   { 0x0610, 0x061A },
	{ 0x064B, 0x065F },   { 0x0670, 0x0670 },   { 0x06D6, 0x06DC },   { 0x06DF, 0x06E4 },
	{ 0x0E31, 0x0E31 },   { 0x0E34, 0x0E3A },   { 0x0E47, 0x0E4E },   { 0x0F71, 0x0F7E },
	{ 0x1AB0, 0x1AFF },   { 0x1DC0, 0x1DFF },   { 0x200B, 0x200F },   { 0x202A, 0x202E },
	{ 0x2060, 0x2064 },   { 0x20D0, 0x20FF },   { 0x302A, 0x302D },   { 0x3099, 0x309A },
	{ 0xFE00, 0xFE0F },   { 0xFE20, 0xFE2F },   { 0xFEFF, 0xFEFF },   { 0x1D167, 0x1D169 },
	{ 0x1D173, 0x1D182 }, { 0xE0001, 0xE007F }, { 0xE0100, 0xE01EF },
};

/* East Asian Wide and Fullwidth (Unicode 15, emoji blocks simplified). */
static const struct range table_wide[] = {
	{ 0x1100, 0x115F },   { 0x231A, 0x231B },   { 0x2329, 0x232A },   { 0x23E9, 0x23EC },
	{ 0x23F0, 0x23F0 },   { 0x23F3, 0x23F3 },   { 0x25FD, 0x25FE },   { 0x2614, 0x2615 },
	{ 0x2648, 0x2653 },   { 0x267F, 0x267F },   { 0x2693, 0x2693 },   { 0x26A1, 0x26A1 },
	{ 0x26AA, 0x26AB },   { 0x26BD, 0x26BE },   { 0x26C4, 0x26C5 },   { 0x26CE, 0x26CE },
	{ 0x26D4, 0x26D4 },   { 0x26EA, 0x26EA },   { 0x26F2, 0x26F3 },   { 0x26F5, 0x26F5 },
	{ 0x26FA, 0x26FA },   { 0x26FD, 0x26FD },   { 0x2705, 0x2705 },   { 0x270A, 0x270B },
	{ 0x2728, 0x2728 },   { 0x274C, 0x274C },   { 0x274E, 0x274E },   { 0x2753, 0x2755 },
	{ 0x2757, 0x2757 },   { 0x2795, 0x2797 },   { 0x27B0, 0x27B0 },   { 0x27BF, 0x27BF },
	{ 0x2B1B, 0x2B1C },   { 0x2B50, 0x2B50 },   { 0x2B55, 0x2B55 },   { 0x2E80, 0x303E },
	{ 0x3041, 0x3098 },   { 0x309B, 0x33FF },   { 0x3400, 0x4DBF },   { 0x4E00, 0x9FFF },
	{ 0xA000, 0xA4CF },   { 0xA960, 0xA97F },   { 0xAC00, 0xD7A3 },   { 0xF900, 0xFAFF },
	{ 0xFE10, 0xFE19 },   { 0xFE30, 0xFE6F },   { 0xFF00, 0xFF60 },   { 0xFFE0, 0xFFE6 },
	{ 0x16FE0, 0x16FE4 }, { 0x17000, 0x18CFF }, { 0x1AFF0, 0x1B2FF }, { 0x1F004, 0x1F004 },
	{ 0x1F0CF, 0x1F0CF }, { 0x1F18E, 0x1F18E }, { 0x1F191, 0x1F19A }, { 0x1F200, 0x1F202 },
	{ 0x1F210, 0x1F23B }, { 0x1F240, 0x1F248 }, { 0x1F250, 0x1F251 }, { 0x1F260, 0x1F265 },
	{ 0x1F300, 0x1F320 }, { 0x1F32D, 0x1F335 }, { 0x1F337, 0x1F37C }, { 0x1F37E, 0x1F393 },
	{ 0x1F3A0, 0x1F3CA }, { 0x1F3CF, 0x1F3D3 }, { 0x1F3E0, 0x1F3F0 }, { 0x1F3F4, 0x1F3F4 },
	{ 0x1F3F8, 0x1F43E }, { 0x1F440, 0x1F440 }, { 0x1F442, 0x1F4FC }, { 0x1F4FF, 0x1F53D },
	{ 0x1F54B, 0x1F54E }, { 0x1F550, 0x1F567 }, { 0x1F57A, 0x1F57A }, { 0x1F595, 0x1F596 },
	{ 0x1F5A4, 0x1F5A4 }, { 0x1F5FB, 0x1F64F }, { 0x1F680, 0x1F6C5 }, { 0x1F6CC, 0x1F6CC },
	{ 0x1F6D0, 0x1F6D2 }, { 0x1F6D5, 0x1F6D7 }, { 0x1F6DC, 0x1F6DF }, { 0x1F6EB, 0x1F6EC },
	{ 0x1F6F4, 0x1F6FC }, { 0x1F7E0, 0x1F7EB }, { 0x1F7F0, 0x1F7F0 }, { 0x1F90C, 0x1F93A },
	{ 0x1F93C, 0x1F945 }, { 0x1F947, 0x1F9FF }, { 0x1FA70, 0x1FAFF }, { 0x20000, 0x2FFFD },
	{ 0x30000, 0x3FFFD },
};

static bool in_ranges(const struct range *r, size_t n, unsigned cp)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (cp < r[mid].lo)
			hi = mid;
		else if (cp > r[mid].hi)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

int table_cp_width(unsigned cp)
{
	if (cp < 0x300)
		return 1;
	if (in_ranges(table_zero, sizeof(table_zero) / sizeof(table_zero[0]), cp))
		return 0;
	if (in_ranges(table_wide, sizeof(table_wide) / sizeof(table_wide[0]), cp))
		return 2;
	return 1;
}

/* A growable string; `bad` latches the first allocation failure so that
 * callers check once at the end. */
struct sbuf {
	char *p;
	size_t len, cap;
	bool bad;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->bad)
		return;
	/* Sizes near SIZE_MAX would wrap the sums below (and gcc -O3 sees
	 * that path); no real string gets there, so treat it as no memory. */
	if (n > SIZE_MAX / 4 - b->len) {
		b->bad = true;
		return;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 32;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->bad = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static char *sb_finish(struct sbuf *b)
{
	if (!b->bad && !b->p)
		sb_add(b, "", 0);
	if (b->bad) {
		free(b->p);
		errno = ENOMEM;
		return NULL;
	}
	return b->p;
}

char *table_sanitize(const char *s)
{
	struct sbuf b = { 0 };
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	const unsigned char *end = p + strlen((const char *)p);

	while (*p) {
		uint32_t cp;
		size_t n = utf8_decode(p, (size_t)(end - p), &cp);
		char esc[12];
		if (n == 0) {
			snprintf(esc, sizeof(esc), "\\x%02x", *p);
			sb_add(&b, esc, 4);
			p++;
			continue;
		}
		if (cp == '\n' || cp == '\t' || cp == '\r') {
			sb_add(&b, cp == '\n' ? "\\n" : cp == '\t' ? "\\t" : "\\r", 2);
		} else if (cp < 0x20 || cp == 0x7F) {
			snprintf(esc, sizeof(esc), "\\x%02x", cp);
			sb_add(&b, esc, 4);
		} else if (cp >= 0x80 && cp <= 0x9F) {
			/* C1 controls: some terminals act on them (CSI is 0x9b). */
			snprintf(esc, sizeof(esc), "\\u%04x", cp);
			sb_add(&b, esc, 6);
		} else {
			sb_add(&b, (const char *)p, n);
		}
		p += n;
	}
	return sb_finish(&b);
}

size_t table_width(const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	const unsigned char *end = p + strlen((const char *)p);
	size_t w = 0;

	while (*p) {
		uint32_t cp;
		size_t n = utf8_decode(p, (size_t)(end - p), &cp);
		if (n == 0) {
			w += 4;
			p++;
			continue;
		}
		w += cp < 0x20 || cp == 0x7F ? 0 : (size_t)table_cp_width(cp);
		p += n;
	}
	return w;
}

char *table_truncate(const char *s, size_t max)
{
	if (!s)
		s = "";
	const unsigned char *p = (const unsigned char *)s, *end = p + strlen(s);
	size_t w = 0, cut = 0;
	struct sbuf b = { 0 };

	if (table_width(s) <= max) {
		sb_add(&b, (const char *)p, strlen((const char *)p));
		return sb_finish(&b);
	}
	/* Keep room for the one-column ellipsis. */
	while (*p) {
		uint32_t cp;
		size_t n = utf8_decode(p, (size_t)(end - p), &cp);
		size_t cw = n == 0 ? 4 : (size_t)table_cp_width(cp);
		if (n == 0)
			n = 1;
		if (w + cw + 1 > max)
			break;
		w += cw;
		p += n;
		cut = (size_t)(p - (const unsigned char *)s);
	}
	sb_add(&b, s, cut);
	if (max > 0)
		sb_add(&b, "\xE2\x80\xA6", 3);
	return sb_finish(&b);
}

struct table {
	size_t ncols;
	char **headers;
	enum table_align *align;
	size_t *max;
	size_t *width; /* widest cell per column so far */
	char **cells;  /* rows * ncols, row-major */
	size_t rows, cap;
};

struct table *table_new(size_t ncols, const char *const *headers)
{
	struct table *t = calloc(1, sizeof(*t));
	if (!t || ncols == 0)
		goto fail;
	t->ncols = ncols;
	t->headers = calloc(ncols, sizeof(*t->headers));
	t->align = calloc(ncols, sizeof(*t->align));
	t->max = calloc(ncols, sizeof(*t->max));
	t->width = calloc(ncols, sizeof(*t->width));
	if (!t->headers || !t->align || !t->max || !t->width)
		goto fail;
	for (size_t i = 0; i < ncols; i++) {
		t->headers[i] = table_sanitize(headers ? headers[i] : "");
		if (!t->headers[i])
			goto fail;
		t->width[i] = table_width(t->headers[i]);
	}
	return t;
fail:
	table_free(t);
	errno = ENOMEM;
	return NULL;
}

void table_free(struct table *t)
{
	if (!t)
		return;
	if (t->headers)
		for (size_t i = 0; i < t->ncols; i++)
			free(t->headers[i]);
	for (size_t i = 0; i < t->rows * t->ncols; i++)
		free(t->cells[i]);
	free(t->headers);
	free(t->align);
	free(t->max);
	free(t->width);
	free(t->cells);
	free(t);
}

void table_set_align(struct table *t, size_t col, enum table_align a)
{
	if (col < t->ncols)
		t->align[col] = a;
}

void table_set_max_width(struct table *t, size_t col, size_t max)
{
	if (col < t->ncols)
		t->max[col] = max;
}

size_t table_rows(const struct table *t)
{
	return t->rows;
}

int table_add_row(struct table *t, const char *const *cells)
{
	if (t->rows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		if (cap > SIZE_MAX / sizeof(char *) / t->ncols) {
			errno = ENOMEM;
			return -1;
		}
		char **p = realloc(t->cells, cap * t->ncols * sizeof(char *));
		if (!p)
			return -1;
		t->cells = p;
		t->cap = cap;
	}
	char **row = t->cells + t->rows * t->ncols;
	for (size_t i = 0; i < t->ncols; i++) {
		char *clean = table_sanitize(cells[i]);
		char *v = clean;
		if (clean && t->max[i] && table_width(clean) > t->max[i]) {
			v = table_truncate(clean, t->max[i]);
			free(clean);
		}
		if (!v) {
			for (size_t j = 0; j < i; j++)
				free(row[j]);
			errno = ENOMEM;
			return -1;
		}
		row[i] = v;
	}
	/* Widths only after every cell is in, so a failed row leaves none. */
	for (size_t i = 0; i < t->ncols; i++) {
		size_t w = table_width(row[i]);
		if (w > t->width[i])
			t->width[i] = w;
	}
	t->rows++;
	return 0;
}

static int pad(FILE *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (putc(' ', f) == EOF)
			return -1;
	return 0;
}

static int write_row(const struct table *t, FILE *f, char *const *row)
{
	/* The last column is never padded on the right: no trailing blanks. */
	size_t last = t->ncols - 1;
	while (last > 0 && !row[last][0])
		last--;
	for (size_t i = 0; i <= last; i++) {
		size_t w = table_width(row[i]);
		size_t gap = t->width[i] - w;
		if (i > 0 && fputs("  ", f) == EOF)
			return -1;
		if (t->align[i] == TABLE_RIGHT && pad(f, gap) < 0)
			return -1;
		if (fputs(row[i], f) == EOF)
			return -1;
		if (t->align[i] == TABLE_LEFT && i < last && pad(f, gap) < 0)
			return -1;
	}
	return putc('\n', f) == EOF ? -1 : 0;
}

int table_write(const struct table *t, FILE *f)
{
	size_t total = 0;

	if (write_row(t, f, t->headers) < 0)
		return -1;
	for (size_t i = 0; i < t->ncols; i++)
		total += t->width[i] + (i ? 2 : 0);
	for (size_t i = 0; i < total; i++)
		if (putc('-', f) == EOF)
			return -1;
	if (putc('\n', f) == EOF)
		return -1;
	for (size_t r = 0; r < t->rows; r++)
		if (write_row(t, f, t->cells + r * t->ncols) < 0)
			return -1;
	return 0;
}
