/*
 * html_page: the one page frame and style sheet of gridpatrol's HTML —
 * the printable daily report and the status, alerts and workers pages
 * that `gridpatrol serve` shows the office (and `--format html` writes to
 * a file).
 *
 * The style was made for the printed A4 report; the rules below the
 * report's own add what a phone needs: on a narrow screen the text grows,
 * the headline boxes wrap, and each table becomes its own horizontal
 * scroll box, so a wide table never widens the page past the screen. The
 * state badges carry their word as well as a colour and differ in border
 * style, so a greyscale printout keeps them apart.
 */
#include "html_page.h"

#include <string.h>
#include <time.h>

#include "build-config.h"
#include "render.h"
#include "report.h"

static const char html_page_css[] =
        "@page{size:A4;margin:14mm 12mm 16mm 12mm}"
        "*{box-sizing:border-box}"
        "html{-webkit-print-color-adjust:exact;print-color-adjust:exact}"
        "body{font-family:\"Noto Sans CJK SC\",\"Source Han Sans SC\",\"WenQuanYi Micro Hei\","
        "\"Microsoft YaHei\",\"PingFang SC\",\"Heiti SC\",SimHei,sans-serif;color:#1a1a1a;"
        "background:#fff;font-size:10.5pt;line-height:1.45;margin:0 auto;max-width:190mm;"
        "padding:10mm 6mm}"
        "h1{font-size:20pt;margin:0 0 1.5mm;letter-spacing:.1em;text-align:center}"
        ".meta{text-align:center;color:#555;font-size:9.5pt;margin:0 0 5mm}"
        "h2{font-size:12.5pt;border-left:4px solid #1b5e20;padding-left:2.5mm;margin:7mm 0 3mm;"
        "break-after:avoid;page-break-after:avoid}"
        ".kpis{display:flex;gap:3mm;margin:0 0 3mm}"
        ".kpi{flex:1;border:1px solid #9e9e9e;border-radius:1.5mm;padding:2mm 2mm 1.5mm;"
        "text-align:center}"
        ".kpi b{display:block;font-size:19pt;line-height:1.2}"
        ".kpi span{font-size:9pt;color:#444}"
        ".kpi.warn b{color:#b71c1c}"
        ".lead{margin:2mm 0 0;font-size:11pt}"
        ".legend{display:block;margin:0 0 2mm;width:100%;height:auto}"
        ".chart{display:block;width:100%;height:auto;margin:0 0 1mm;break-inside:avoid;"
        "page-break-inside:avoid}"
        ".chart text{font-size:11.5px;fill:#222}"
        ".chart .h{font-size:10px;fill:#555;text-anchor:middle}"
        ".chart .p{text-anchor:end;font-size:10.5px}"
        "table{width:100%;border-collapse:collapse;font-size:8.8pt}"
        "th,td{border:1px solid #8a8a8a;padding:1mm 1.3mm;vertical-align:top}"
        "th{background:#e3ece3;font-weight:bold;text-align:center;white-space:nowrap}"
        "thead{display:table-header-group}"
        "tr{break-inside:avoid;page-break-inside:avoid}"
        "tbody tr:nth-child(even) td{background:#f7f7f7}"
        "td.n{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}"
        "td.t{white-space:nowrap}"
        "td.id{white-space:nowrap;font-family:\"DejaVu Sans "
        "Mono\",Consolas,monospace;font-size:8.3pt}"
        "td.bad{color:#b71c1c;font-weight:bold}"
        ".none{color:#555;font-style:italic}"
        ".note{color:#555;font-size:8.8pt;margin:1.5mm 0 0}"
        ".sign{margin-top:12mm;display:flex;justify-content:space-between;font-size:10.5pt}"
        ".sign span{display:inline-block;min-width:32mm;border-bottom:1px solid #333}"
        "footer{margin-top:8mm;font-size:8pt;color:#777;text-align:center}"
        /* The listing pages and the served frame. */
        "nav{display:flex;flex-wrap:wrap;gap:1mm 5mm;margin:0 0 4mm}"
        "nav.top{border-bottom:2px solid #1b5e20;padding:0 0 1.5mm;font-size:12.5pt}"
        "nav.days{font-size:10.5pt;gap:1mm 3.5mm;justify-content:center}"
        "nav a{color:#1b5e20;text-decoration:none;padding:1mm 0}"
        "nav a.on{font-weight:bold;color:#1a1a1a;border-bottom:3px solid #1b5e20}"
        ".refresh{text-align:center;color:#555;font-size:9pt;margin:-3mm 0 4mm}"
        "td.txt{min-width:14em}"
        "td.e{color:#777;text-align:center}"
        ".count{color:#555;font-size:9.5pt;margin:1.5mm 0 0}"
        ".st{display:inline-block;white-space:nowrap;font-weight:bold;border:1.5px solid;"
        "border-radius:1mm;padding:0 1.5mm}"
        ".st-ok{color:#1b5e20;background:#e8f5e9}"
        ".st-due_soon{color:#7a4f00;background:#fff3cd;border-style:dashed}"
        ".st-overdue{color:#fff;background:#b71c1c;border-color:#b71c1c}"
        ".st-paused{color:#37474f;background:#eceff1;border-style:dotted}"
        ".st-inactive{color:#616161;background:#fff;border-color:#bdbdbd;font-weight:normal}"
        "@media screen and (max-width:640px){"
        "body{padding:4mm 3mm;font-size:12pt}"
        "h1{font-size:17pt;letter-spacing:.05em}"
        ".meta{font-size:10.5pt}"
        ".kpis{flex-wrap:wrap;gap:2mm}"
        ".kpi{flex:1 1 28%}"
        ".kpi span{font-size:10pt}"
        "table{display:block;overflow-x:auto;width:auto;max-width:100%;font-size:11pt}"
        "td.id{font-size:10.5pt}"
        ".note,.count{font-size:10pt}"
        ".sign{flex-wrap:wrap;gap:4mm}}"
        "@media print{body{padding:0;max-width:none}nav,.refresh{display:none}}";

int html_page_begin(FILE *f, const struct html_page *p)
{
	static const char *const zh[] = { "今日", "日报", "提醒", "人员" };
	static const char *const en[] = { "Now", "Report", "Alerts", "Workers" };
	static const char *const href[] = { "/", "/report", "/alerts", "/workers" };
	const bool is_zh = p->lang == TIMEFMT_ZH;
	int bad = 0;

	bad |= fprintf(f,
	               "<!DOCTYPE html>\n<html lang=\"%s\">\n<head>\n<meta charset=\"utf-8\">\n"
	               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
	               is_zh ? "zh-CN" : "en") < 0;
	if (p->web && p->refresh_s > 0)
		bad |= fprintf(f, "<meta http-equiv=\"refresh\" content=\"%d\">\n", p->refresh_s) <
		       0;
	bad |= fputs("<title>", f) == EOF;
	bad |= render_html_escaped(f, p->title) < 0;
	bad |= fprintf(f, "</title>\n<style>%s</style>\n</head>\n<body>\n", html_page_css) < 0;
	if (!p->web)
		return bad ? -1 : 0;
	bad |= fputs("<nav class=\"top\">", f) == EOF;
	for (unsigned i = 0; i < 4; i++)
		bad |= fprintf(f, "<a href=\"%s\"%s>%s</a>", href[i],
		               i == (unsigned)p->section ? " class=\"on\" aria-current=\"page\""
		                                         : "",
		               is_zh ? zh[i] : en[i]) < 0;
	bad |= fputs("</nav>\n", f) == EOF;
	return bad ? -1 : 0;
}

int html_page_end(FILE *f, enum timefmt_lang lang, int64_t now)
{
	char made[TIMEFMT_MAX];
	timefmt_rfc3339(now, made, sizeof(made));
	return fprintf(f, "<footer>%s %s · gridpatrol %s</footer>\n</body>\n</html>\n",
	               lang == TIMEFMT_ZH ? "生成于" : "generated", made, GRIDPATROL_VERSION) < 0
	               ? -1
	               : 0;
}

int html_page_days(const char *date, int64_t now, struct html_page_days *out)
{
	int64_t start, end;

	memset(out, 0, sizeof(*out));
	if (report_day_bounds(date, &start, &end) < 0)
		return -1;
	timefmt_date(start - 1, out->prev, sizeof(out->prev));
	int64_t today = timefmt_day_start(now);
	if (end <= today)
		timefmt_date(end, out->next, sizeof(out->next));
	/* Day by day through local midnights: a day is not always 86,400 s. */
	for (int i = 0; i < 7; i++) {
		timefmt_date(today, out->last[i], sizeof(out->last[i]));
		today = timefmt_day_start(today - 1);
	}
	return 0;
}

int html_page_day_links(FILE *f, enum timefmt_lang lang, const char *path, const char *date,
                        int64_t now)
{
	const bool zh = lang == TIMEFMT_ZH;
	struct html_page_days d;
	int bad = 0;

	if (html_page_days(date, now, &d) < 0)
		return 0; /* not a day: nothing to link around */
	bad |= fputs("<nav class=\"days\">", f) == EOF;
	bad |= fprintf(f, "<a href=\"%s?date=%s\" rel=\"prev\">‹ %s</a>", path, d.prev,
	               zh ? "前一天" : "Previous day") < 0;
	if (d.next[0])
		bad |= fprintf(f, "<a href=\"%s?date=%s\" rel=\"next\">%s ›</a>", path, d.next,
		               zh ? "后一天" : "Next day") < 0;
	bad |= fprintf(f, "<span>%s</span>", zh ? "近7天：" : "Last 7 days:") < 0;
	for (int i = 0; i < 7; i++)
		bad |= fprintf(f, "<a href=\"%s?date=%s\"%s>%s</a>", path, d.last[i],
		               strcmp(d.last[i], date) == 0 ? " class=\"on\"" : "",
		               d.last[i] + 5) < 0;
	bad |= fputs("</nav>\n", f) == EOF;
	return bad ? -1 : 0;
}

int html_page_kpi(FILE *f, long long v, const char *label, bool warn)
{
	return fprintf(f, "<div class=\"kpi%s\"><b>%lld</b><span>%s</span></div>",
	               warn && v > 0 ? " warn" : "", v, label) < 0
	               ? -1
	               : 0;
}

int html_page_time(FILE *f, int64_t t, int64_t now)
{
	char full[TIMEFMT_MAX], shown[TIMEFMT_MAX];
	struct tm tm, tn;
	time_t tt = (time_t)t, nn = (time_t)now;

	timefmt_rfc3339(t, full, sizeof(full));
	if (!localtime_r(&tt, &tm) || !localtime_r(&nn, &tn))
		snprintf(shown, sizeof(shown), "%s", full);
	else if (timefmt_day_start(t) == timefmt_day_start(now))
		strftime(shown, sizeof(shown), "%H:%M", &tm);
	else if (tm.tm_year == tn.tm_year)
		strftime(shown, sizeof(shown), "%m-%d %H:%M", &tm);
	else
		strftime(shown, sizeof(shown), "%Y-%m-%d %H:%M", &tm);
	return fprintf(f, "<time datetime=\"%s\">%s</time>", full, shown) < 0 ? -1 : 0;
}
