/*
 * render_chart: the day's cell × hour coverage chart as SVG, in two
 * settings. The HTML report inlines pieces of it (the hatching patterns,
 * the legend, blocks of rows) that the page's style sheet styles;
 * `gridpatrol chart` takes one standalone SVG document, laid out in
 * pixels for a phone screen, that carries its own fonts, sizes and colours
 * because no page's CSS applies when librsvg draws it.
 *
 * Both draw the same rows from the same figures (report_cell.hours) with
 * the same fills, so the picture in a WeChat group and the printed page
 * agree. Pure apart from writing to the FILE it is given; every function
 * returns 0, or -1 when writing or allocating failed.
 */
#ifndef GRIDPATROL_RENDER_CHART_H
#define GRIDPATROL_RENDER_CHART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "render.h"

/* Rows per chart SVG on the HTML page: one SVG cannot break across printed
 * pages, so a long village is drawn as several charts that can. */
#define RENDER_CHART_ROWS_PER_SVG 40

/* --- the HTML page --- */

/* The hidden SVG holding the patterns the page's charts and legend fill
 * with; once, before them. */
int render_chart_defs(FILE *f);
/* The legend of the five hour states. */
int render_chart_legend(FILE *f, bool zh);
/* One chart SVG of cells [from, to). */
int render_chart_rows(FILE *f, const struct render_report *r, size_t from, size_t to);

/* --- the standalone document (`gridpatrol chart`) --- */

/* Width of the standalone chart in pixels (one SVG unit is one pixel): a
 * phone screen's, which WeChat shows without scaling. */
#define RENDER_CHART_PAGE_W 1080

/* The layout of one standalone chart. */
struct render_chart_page {
	int width, height; /* pixels */
	int row_h;         /* pixels per cell row */
	size_t rows;       /* cells drawn: the first `rows` of r->cells */
};

/* The layout for r within max_height pixels: rows of 26 px, shrunk to no
 * less than 14 px when that many do not fit, and beyond that only the
 * first cells that fit (the page says how many more there are). */
void render_chart_layout(const struct render_report *r, int max_height,
                         struct render_chart_page *p);
/* The whole chart as one SVG document laid out by render_chart_layout:
 * title, summary, legend, the rows. */
int render_chart_svg(FILE *f, const struct render_report *r, const struct render_chart_page *p);

#endif
