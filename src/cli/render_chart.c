/*
 * render_chart: draws the day's cell × hour coverage chart as SVG, for the
 * HTML report (inline pieces its style sheet styles) and as one standalone
 * document for `gridpatrol chart`, which librsvg turns into a PNG for a
 * WeChat group.
 *
 * The rows are written by one function from a geometry: the page's, in
 * user units that the page scales to its width, with classes its CSS
 * styles; and the standalone one, in whole pixels at 1080 px wide, with
 * every font, size and colour as attributes (inherited from groups) since
 * no CSS applies there. Whole-pixel edges and shape-rendering="crispEdges"
 * keep the PNG's flat fills flat, which is what keeps it small.
 */
#include "render_chart.h"

#include <stdlib.h>
#include <string.h>

#include "table.h"

/* Where everything of a block of rows goes. */
struct geom {
	int x_label;           /* label text */
	int label_w;           /* the hours start here */
	int hour_w;            /* one hour */
	int x_pct;             /* right edge of the covered figure */
	int width;             /* of the block */
	int top;               /* first row, below the hour header */
	int head_y;            /* baseline of the hour header */
	int row_h;             /* one cell */
	int text_dy;           /* baseline below a row's top */
	int rect_dy;           /* bar below a row's top */
	int rect_gap;          /* row_h minus the bar's height */
	size_t label_cols;     /* display columns of a label */
	const char *head_attr; /* the hour header's text */
	const char *pct_attr;  /* the covered figure's text */
};

/* The page's chart, in SVG user units (the SVG scales to the page width);
 * its text is styled by the page's CSS (.chart text, .h, .p). */
#define CH_LABEL_W 210
#define CH_HOUR_W 22
#define CH_PCT_W 58
#define CH_WIDTH (CH_LABEL_W + 24 * CH_HOUR_W + CH_PCT_W)

static const struct geom html_geom = {
	.x_label = 0,
	.label_w = CH_LABEL_W,
	.hour_w = CH_HOUR_W,
	.x_pct = CH_WIDTH - 2,
	.width = CH_WIDTH,
	.top = 22,
	.head_y = 15,
	.row_h = 19,
	.text_dy = 13,
	.rect_dy = 1,
	.rect_gap = 3,
	.label_cols = 30,
	.head_attr = " class=\"h\"",
	.pct_attr = " class=\"p\"",
};

/* Fill of each hour state: colour for the screen, and a pattern (hatching,
 * dots, outline) so that greyscale print keeps them apart. */
static const char *hour_fill(enum report_hour h)
{
	switch (h) {
	case REPORT_HOUR_PATROLLED:
		return "fill=\"#1b5e20\"";
	case REPORT_HOUR_COVERED:
		return "fill=\"#a5d6a7\"";
	case REPORT_HOUR_OVERDUE:
		return "fill=\"url(#gp-over)\"";
	case REPORT_HOUR_INACTIVE:
		return "fill=\"url(#gp-inact)\"";
	case REPORT_HOUR_FUTURE:
		break;
	}
	return "fill=\"#ffffff\" stroke=\"#9e9e9e\" stroke-width=\"0.8\" stroke-dasharray=\"2 "
	       "1.5\"";
}

static const char patterns[] =
        "<defs>"
        "<pattern id=\"gp-over\" width=\"5\" height=\"5\" patternUnits=\"userSpaceOnUse\" "
        "patternTransform=\"rotate(45)\"><rect width=\"5\" height=\"5\" fill=\"#f6b9b9\"/>"
        "<rect width=\"2.2\" height=\"5\" fill=\"#b71c1c\"/></pattern>"
        "<pattern id=\"gp-inact\" width=\"4\" height=\"4\" patternUnits=\"userSpaceOnUse\">"
        "<rect width=\"4\" height=\"4\" fill=\"#f2f2f2\"/>"
        "<circle cx=\"2\" cy=\"2\" r=\"0.6\" fill=\"#8f8f8f\"/></pattern>"
        "</defs>";

/* The same fills for the PNG, drawn on whole pixels without rotation: a
 * rotated pattern is resampled (every hatched hour came out in dozens of
 * blended shades) and librsvg took 38 s instead of 1.4 s to draw 1,000
 * cells with it. Dark where (x + y) mod 6 < 3: 45° hatching. */
static const char page_patterns[] =
        "<defs>"
        "<pattern id=\"gp-over\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\">"
        "<rect width=\"6\" height=\"6\" fill=\"#f6b9b9\"/>"
        "<path d=\"M0 6L6 0V3L3 6ZM0 0V3L3 0Z\" fill=\"#b71c1c\"/></pattern>"
        "<pattern id=\"gp-inact\" width=\"4\" height=\"4\" patternUnits=\"userSpaceOnUse\">"
        "<rect width=\"4\" height=\"4\" fill=\"#f2f2f2\"/>"
        "<rect x=\"2\" y=\"2\" width=\"1\" height=\"1\" fill=\"#8f8f8f\"/></pattern>"
        "</defs>";

int render_chart_defs(FILE *f)
{
	int bad = fputs("<svg width=\"0\" height=\"0\" style=\"position:absolute\" "
	                "aria-hidden=\"true\">",
	                f) == EOF;
	bad |= fputs(patterns, f) == EOF;
	bad |= fputs("</svg>\n", f) == EOF;
	return bad ? -1 : 0;
}

/* The five states in a strip CH_WIDTH × 18 units. */
static int legend_items(FILE *f, bool zh)
{
	static const enum report_hour order[] = {
		REPORT_HOUR_PATROLLED, REPORT_HOUR_COVERED, REPORT_HOUR_OVERDUE,
		REPORT_HOUR_INACTIVE,  REPORT_HOUR_FUTURE,
	};
	static const char *const zh_l[] = { "有巡查", "已覆盖（未超时）", "超时未巡查",
		                            "非巡查时段 / 暂停", "尚未到来" };
	static const char *const en_l[] = { "Patrolled", "Covered (not overdue)", "Overdue",
		                            "Inactive / paused", "Not yet" };
	int bad = 0, x = 0;
	for (size_t i = 0; i < 5; i++) {
		bad |= fprintf(f,
		               "<rect x=\"%d\" y=\"3\" width=\"22\" height=\"12\" %s/>"
		               "<text x=\"%d\" y=\"13\" font-size=\"11\" fill=\"#222\">%s</text>",
		               x + 1, hour_fill(order[i]), x + 28, zh ? zh_l[i] : en_l[i]) < 0;
		x += zh ? 150 : 152;
	}
	return bad ? -1 : 0;
}

int render_chart_legend(FILE *f, bool zh)
{
	int bad = fprintf(f,
	                  "<svg class=\"legend\" viewBox=\"0 0 %d 18\" role=\"img\" "
	                  "xmlns=\"http://www.w3.org/2000/svg\">",
	                  CH_WIDTH) < 0;
	bad |= legend_items(f, zh);
	bad |= fputs("</svg>\n", f) == EOF;
	return bad ? -1 : 0;
}

/* Text for an SVG that an XML parser reads: as the HTML escaping, and the
 * C0 controls XML 1.0 refuses (a name could hold one) as spaces. */
static int xml_text(FILE *f, const char *s)
{
	for (const char *p = s; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		if (ch < 0x20 && ch != '\t' && ch != '\n' && ch != '\r') {
			if (putc(' ', f) == EOF)
				return -1;
			continue;
		}
		char one[2] = { *p, '\0' };
		if (render_html_escaped(f, one) < 0)
			return -1;
	}
	return 0;
}

/* The hour header, cells [from, to) and the hour ticks, in g's space. */
static int chart_body(FILE *f, const struct render_report *r, size_t from, size_t to,
                      const struct geom *g, bool xml)
{
	int bottom = g->top + (int)(to - from) * g->row_h;
	int bad = 0;

	for (int hr = 0; hr < 24; hr++)
		bad |= fprintf(f, "<text%s x=\"%d\" y=\"%d\">%d</text>", g->head_attr,
		               g->label_w + hr * g->hour_w + g->hour_w / 2, g->head_y, hr) < 0;
	bad |= fprintf(f, "<text%s x=\"%d\" y=\"%d\" style=\"text-anchor:end\">%s</text>",
	               g->head_attr, g->x_pct, g->head_y,
	               r->lang == TIMEFMT_ZH ? "覆盖率" : "covered") < 0;
	for (size_t i = from; !bad && i < to; i++) {
		const struct render_cell *rc = &r->cells[i];
		int y = g->top + (int)(i - from) * g->row_h;
		char *label = render_site_label(rc->site, rc->cell->name, g->label_cols);
		char pct[16];
		if (!label)
			return -1;
		bad |= fprintf(f, "<text x=\"%d\" y=\"%d\">", g->x_label, y + g->text_dy) < 0;
		bad |= xml ? xml_text(f, label) : render_html_escaped(f, label);
		bad |= fputs("</text>", f) == EOF;
		free(label);
		/* One rectangle per run of equal hours keeps a 1,000-cell page
		 * small; the hour ticks are drawn over them afterwards. */
		for (int a = 0; a < 24;) {
			int b = a + 1;
			while (b < 24 && rc->rc.hours[b] == rc->rc.hours[a])
				b++;
			bad |= fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" %s/>",
			               g->label_w + a * g->hour_w, y + g->rect_dy,
			               (b - a) * g->hour_w, g->row_h - g->rect_gap,
			               hour_fill(rc->rc.hours[a])) < 0;
			a = b;
		}
		render_pct(&rc->rc, pct, sizeof(pct));
		bad |= fprintf(f, "<text%s x=\"%d\" y=\"%d\">%s</text>", g->pct_attr, g->x_pct,
		               y + g->text_dy, pct) < 0;
	}
	/* Hour ticks: thin white lines between hours, darker every 6 hours. */
	for (int hr = 1; !bad && hr < 24; hr++)
		bad |= fprintf(f,
		               "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" "
		               "stroke-width=\"%s\"/>",
		               g->label_w + hr * g->hour_w, g->top, g->label_w + hr * g->hour_w,
		               bottom, hr % 6 ? "#ffffff" : "#444444", hr % 6 ? "1" : "0.8") < 0;
	return bad ? -1 : 0;
}

int render_chart_rows(FILE *f, const struct render_report *r, size_t from, size_t to)
{
	const struct geom *g = &html_geom;
	int h = g->top + (int)(to - from) * g->row_h + 2;
	int bad = fprintf(f,
	                  "<svg class=\"chart\" viewBox=\"0 0 %d %d\" role=\"img\" "
	                  "xmlns=\"http://www.w3.org/2000/svg\">",
	                  g->width, h) < 0;
	bad |= chart_body(f, r, from, to, g, false);
	bad |= fputs("</svg>\n", f) == EOF;
	return bad ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* The standalone document                                             */
/* ------------------------------------------------------------------ */

/* Pixels. The page: a title block, the legend, the chart, a foot. */
#define PG_MARGIN 16
#define PG_LABEL_W 300 /* the hours start here */
#define PG_HOUR_W 29   /* 24 × 29 = 696, leaving 84 for the covered figure */
#define PG_ROW_H 26
#define PG_ROW_H_MIN 14
#define PG_CHART_HEAD 24 /* the hour numbers above the rows */
#define PG_LEGEND_H 40   /* the legend strip (18 units × 1.3) and its space */
#define PG_FOOT 16
#define PG_NOTE_H 36 /* "n more cells not drawn" */
/* Fonts by name for librsvg (fontconfig); the Debian package recommends
 * fonts-wqy-microhei, the rest are what other systems have. */
#define PG_FONTS                                                                    \
	"'WenQuanYi Micro Hei','Noto Sans CJK SC','Source Han Sans SC','Microsoft " \
	"YaHei','PingFang SC',sans-serif"

/* The title block's height: title, time zone line, summary, claims. */
static int page_head_h(const struct render_report *r)
{
	char claims[256];
	render_claims_text(r, claims, sizeof(claims));
	return claims[0] ? 150 : 122;
}

void render_chart_layout(const struct render_report *r, int max_height, struct render_chart_page *p)
{
	int fixed = page_head_h(r) + PG_LEGEND_H + PG_CHART_HEAD + 2 + PG_FOOT;
	/* Room for the rows; none when max_height is not even the frame's. */
	size_t avail = max_height > fixed + PG_NOTE_H ? (size_t)(max_height - fixed) : PG_NOTE_H;
	size_t n = r->n_cells;

	*p = (struct render_chart_page){ .width = RENDER_CHART_PAGE_W, .row_h = PG_ROW_H };
	if (n == 0) {
		p->height = fixed + PG_NOTE_H;
		return;
	}
	if (avail / PG_ROW_H >= n) {
		p->rows = n;
	} else if (avail / PG_ROW_H_MIN >= n) {
		p->row_h = (int)(avail / n);
		p->rows = n;
	} else {
		p->row_h = PG_ROW_H_MIN;
		p->rows = (avail - PG_NOTE_H) / PG_ROW_H_MIN;
	}
	p->height = fixed + (int)p->rows * p->row_h + (p->rows < n ? PG_NOTE_H : 0);
}

int render_chart_svg(FILE *f, const struct render_report *r, const struct render_chart_page *p)
{
	const bool zh = r->lang == TIMEFMT_ZH;
	char line[512], claims[256], clock[TIMEFMT_MAX], pct_attr[96];
	int font = (p->row_h * 15 + PG_ROW_H / 2) / PG_ROW_H;
	int y = 0, bad = 0;

	render_summary_text(r, line, sizeof(line));
	render_claims_text(r, claims, sizeof(claims));
	bad |= fprintf(f,
	               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
	               "viewBox=\"0 0 %d %d\" font-family=\"%s\" shape-rendering=\"crispEdges\">",
	               p->width, p->height, p->width, p->height, PG_FONTS) < 0;
	bad |= fputs(page_patterns, f) == EOF;
	bad |= fputs("<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>", f) == EOF;

	/* Title, "time zone … · as of …", summary, claims. */
	bad |= fprintf(f,
	               "<text x=\"%d\" y=\"44\" font-size=\"30\" font-weight=\"bold\" "
	               "fill=\"#1a1a1a\">%s %s</text>",
	               PG_MARGIN, zh ? "网格巡查覆盖" : "Grid patrol coverage", r->date) < 0;
	bad |= fprintf(f, "<text x=\"%d\" y=\"74\" font-size=\"16\" fill=\"#555555\">%s ",
	               PG_MARGIN, zh ? "时区" : "time zone") < 0;
	bad |= xml_text(f, r->cfg->timezone);
	if (r->now < r->day_end) {
		render_clock(r->now, r->day_start, clock, sizeof(clock));
		bad |= fprintf(f, zh ? "　·　截至 %s" : " · as of %s", clock) < 0;
	}
	bad |= fputs("</text>", f) == EOF;
	bad |= fprintf(f, "<text x=\"%d\" y=\"106\" font-size=\"18\" fill=\"#1a1a1a\">",
	               PG_MARGIN) < 0;
	bad |= xml_text(f, line);
	bad |= fputs("</text>", f) == EOF;
	y = 122;
	if (claims[0]) {
		bad |= fprintf(f, "<text x=\"%d\" y=\"134\" font-size=\"18\" fill=\"#1a1a1a\">",
		               PG_MARGIN) < 0;
		bad |= xml_text(f, claims);
		bad |= fputs("</text>", f) == EOF;
		y = 150;
	}

	/* The legend: the page's strip, scaled to the width. */
	bad |= fprintf(f, "<g transform=\"translate(%d,%d) scale(1.3)\">", PG_MARGIN, y + 4) < 0;
	bad |= legend_items(f, zh);
	bad |= fputs("</g>", f) == EOF;
	y += PG_LEGEND_H;

	if (r->n_cells == 0) {
		bad |= fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"18\" fill=\"#555555\">%s</text>",
		               PG_MARGIN, y + 26,
		               zh ? "配置中没有网格。" : "No cells are configured.") < 0;
		bad |= fputs("</svg>\n", f) == EOF;
		return bad ? -1 : 0;
	}

	snprintf(pct_attr, sizeof(pct_attr), " font-size=\"%d\" text-anchor=\"end\"",
	         font > 9 ? font - 1 : font);
	const struct geom g = {
		.x_label = PG_MARGIN,
		.label_w = PG_LABEL_W,
		.hour_w = PG_HOUR_W,
		.x_pct = RENDER_CHART_PAGE_W - 12,
		.width = RENDER_CHART_PAGE_W,
		.top = PG_CHART_HEAD,
		.head_y = PG_CHART_HEAD - 7,
		.row_h = p->row_h,
		.text_dy = (p->row_h * 10 + font * 8) / 20,
		.rect_dy = p->row_h / 13,
		.rect_gap = 2 * (p->row_h / 13) + 1,
		.label_cols = 36,
		.head_attr = " font-size=\"13\" fill=\"#555555\" text-anchor=\"middle\"",
		.pct_attr = pct_attr,
	};
	/* Text without antialiasing in the rows: its shades of grey made up
	 * three quarters of a 1,000-cell PNG (5.2 MB; 1.3 MB without). */
	bad |= fprintf(f,
	               "<g transform=\"translate(0,%d)\" font-size=\"%d\" fill=\"#222222\" "
	               "text-rendering=\"optimizeSpeed\">",
	               y, font) < 0;
	bad |= chart_body(f, r, 0, p->rows, &g, true);
	bad |= fputs("</g>", f) == EOF;
	y += PG_CHART_HEAD + (int)p->rows * p->row_h + 2;

	if (p->rows < r->n_cells)
		bad |= fprintf(f,
		               zh ? "<text x=\"%d\" y=\"%d\" font-size=\"18\" "
		                    "fill=\"#b71c1c\">另有 "
		                    "%zu 个网格未画出（共 %zu 个），全部网格见日报。</text>"
		                  : "<text x=\"%d\" y=\"%d\" font-size=\"18\" fill=\"#b71c1c\">%zu "
		                    "more cells not drawn (%zu in all); the report lists every "
		                    "cell.</text>",
		               PG_MARGIN, y + 26, r->n_cells - p->rows, r->n_cells) < 0;
	bad |= fputs("</svg>\n", f) == EOF;
	return bad ? -1 : 0;
}
