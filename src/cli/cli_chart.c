/*
 * cli_chart: `gridpatrol chart` — the day's cell × hour coverage chart as
 * a PNG that a WeChat bridge can post to the village group as an image
 * message (WeCom takes images of up to 2 MB).
 *
 * It builds the report exactly as `report` does (cli_report_build), has
 * render_chart write the standalone SVG into memory, draws that with
 * librsvg onto a cairo image surface and writes the PNG through the same
 * temporary-file-and-rename as every `-o`, so a bridge polling for the
 * file never sends half of one. Only this command links librsvg and
 * cairo; the daemon does not.
 *
 * cairo's image surfaces stop at 32,767 pixels a side: render_chart_layout
 * shrinks the rows to fit that height (1,000 cells keep full-size rows),
 * and beyond its smallest row draws the first cells that fit and says how
 * many more there are.
 */
#include <cairo.h>
#include <librsvg/rsvg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_common.h"
#include "cli_report.h"
#include "render_chart.h"

/* cairo's limit on an image surface's side. */
#define CHART_MAX_PX 32767

/* WeCom's limit on an image message; a bigger PNG is written all the same
 * (the file is still a good chart) with a warning. */
#define CHART_WECHAT_MAX (2 * 1024 * 1024)

struct png_out {
	FILE *f;
	size_t bytes;
};

static cairo_status_t png_write(void *closure, const unsigned char *data, unsigned int length)
{
	struct png_out *o = closure;
	if (fwrite(data, 1, length, o->f) != length)
		return CAIRO_STATUS_WRITE_ERROR;
	o->bytes += length;
	return CAIRO_STATUS_SUCCESS;
}

/* The SVG of the chart, malloc'd, in *svg and *len. */
static int chart_svg(const struct render_report *r, const struct render_chart_page *p, char **svg,
                     size_t *len)
{
	FILE *mem = open_memstream(svg, len);
	if (!mem) {
		cli_error("out of memory");
		return CLI_EXIT_FAIL;
	}
	int w = render_chart_svg(mem, r, p);
	if (fclose(mem) == EOF || w < 0) {
		cli_error("out of memory");
		free(*svg);
		*svg = NULL;
		return CLI_EXIT_FAIL;
	}
	return CLI_EXIT_OK;
}

/* The SVG drawn onto a new image surface (*out), or an error printed. */
static int chart_draw(const char *svg, size_t len, const struct render_chart_page *p,
                      cairo_surface_t **out)
{
	GError *err = NULL;
	int code = CLI_EXIT_FAIL;
	RsvgHandle *h = rsvg_handle_new_from_data((const guint8 *)svg, len, &err);
	if (!h) {
		cli_error("cannot read the chart's SVG: %s", err ? err->message : "librsvg failed");
		goto out;
	}
	/* RGB24: the chart is opaque, and the PNG then has no alpha channel
	 * to store. */
	cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, p->width, p->height);
	if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
		cli_error("cannot make a %d × %d image: %s", p->width, p->height,
		          cairo_status_to_string(cairo_surface_status(s)));
		cairo_surface_destroy(s);
		goto out;
	}
	cairo_t *cr = cairo_create(s);
	cairo_set_source_rgb(cr, 1, 1, 1);
	cairo_paint(cr);
	RsvgRectangle viewport = { 0, 0, p->width, p->height };
	gboolean drawn = rsvg_handle_render_document(h, cr, &viewport, &err);
	cairo_status_t st = cairo_status(cr);
	cairo_destroy(cr);
	if (!drawn || st != CAIRO_STATUS_SUCCESS) {
		cli_error("cannot draw the chart: %s",
		          !drawn ? (err ? err->message : "librsvg failed")
		                 : cairo_status_to_string(st));
		cairo_surface_destroy(s);
		goto out;
	}
	cairo_surface_flush(s);
	*out = s;
	code = CLI_EXIT_OK;
out:
	if (err)
		g_error_free(err);
	if (h)
		g_object_unref(h);
	return code;
}

int cli_cmd_chart(struct cli *c)
{
	if (!c->out_path || (strcmp(c->out_path, "-") == 0 && isatty(STDOUT_FILENO))) {
		cli_error("chart needs -o FILE.png (or -o - into a pipe): a PNG is no use on a "
		          "terminal");
		return CLI_EXIT_USAGE;
	}
	struct cli_report rep;
	int code = cli_report_build(c, &rep);
	if (code != CLI_EXIT_OK)
		return code;

	struct render_chart_page page;
	struct cli_out out = { 0 };
	cairo_surface_t *png = NULL;
	char *svg = NULL;
	size_t len = 0;
	render_chart_layout(&rep.r, CHART_MAX_PX, &page);
	if ((code = chart_svg(&rep.r, &page, &svg, &len)) != CLI_EXIT_OK ||
	    (code = chart_draw(svg, len, &page, &png)) != CLI_EXIT_OK)
		goto done;
	code = CLI_EXIT_FAIL;
	if (cli_out_open(&out, c) < 0)
		goto done;
	struct png_out po = { .f = out.f };
	cairo_status_t st = cairo_surface_write_to_png_stream(png, png_write, &po);
	bool wrote = st == CAIRO_STATUS_SUCCESS;
	if (!wrote && !ferror(out.f))
		cli_error("cannot write the PNG: %s", cairo_status_to_string(st));
	/* A failed write cli_out_close reports itself, naming the file; either
	 * way the temporary file is removed. */
	if (cli_out_close(&out, wrote || ferror(out.f)) == 0 && wrote) {
		code = CLI_EXIT_OK;
		if (po.bytes > CHART_WECHAT_MAX)
			cli_error("warning: the chart is %zu bytes, more than the 2 MB a WeChat "
			          "image message takes",
			          po.bytes);
	}
done:
	if (png)
		cairo_surface_destroy(png);
	free(svg);
	cli_report_free(&rep);
	return code;
}
