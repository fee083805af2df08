/*
 * cli_report: the day's report as the renderers take it, gathered from the
 * database(s) of the command line (`--db`, `--date`) in one snapshot per
 * database. `report` writes it in the format asked for; `chart` draws it
 * as a PNG. Both build it here, so the picture and the report never
 * disagree on a figure.
 */
#ifndef GRIDPATROL_CLI_REPORT_H
#define GRIDPATROL_CLI_REPORT_H

#include "cli_common.h"
#include "render.h"

struct cli_report_own;

struct cli_report {
	struct render_report r;
	struct cli_report_own *own; /* what r points into */
};

/* The report of c->date (default today) over c's database(s). Returns
 * CLI_EXIT_OK, or an exit code after printing the error (then nothing is
 * left to free). */
int cli_report_build(struct cli *c, struct cli_report *rep);
void cli_report_free(struct cli_report *rep);

#endif
