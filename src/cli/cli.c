/*
 * gridpatrol: the review and admin CLI. It reads the daemon's SQLite file
 * while the daemon runs — reports, status, listings, backups — and writes
 * only the small `pause` and `claim_request` tables that the daemon polls.
 *
 * This file is the entry point: it parses the whole command line in one
 * pass (global options may come before or after the command), refuses
 * options the command does not take, loads the configuration, moves the
 * process into the village's time zone so every local time printed is the
 * village's, and hands over to the command. `--db` may be repeated for a
 * county report over several sites; only `report` accepts more than one. The commands live in
 * cli_query.c (status, events, rejected, alerts), cli_workers.c (workers),
 * cli_report.c (report), cli_chart.c (chart), cli_admin.c (pause, resume, claim,
 * backup) and cli_serve.c (serve).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "build-config.h"
#include "cli_common.h"
#include "config.h"

enum opt {
	OPT_CONFIG = 1 << 0,
	OPT_DB = 1 << 1,
	OPT_FORMAT = 1 << 2,
	OPT_OUTPUT = 1 << 3,
	OPT_CELL = 1 << 4,
	OPT_WORKER = 1 << 5,
	OPT_TYPE = 1 << 6,
	OPT_SINCE = 1 << 7,
	OPT_UNTIL = 1 << 8,
	OPT_LIMIT = 1 << 9,
	OPT_REASON = 1 << 10,
	OPT_PENDING = 1 << 11,
	OPT_DATE = 1 << 12,
	OPT_HELP = 1 << 13,
	OPT_VERSION = 1 << 14,
	OPT_BY = 1 << 15,
	OPT_FROM = 1 << 16,
	OPT_TO = 1 << 17,
	OPT_LISTEN = 1 << 18,
	OPT_TOKEN_FILE = 1 << 19,
	OPT_TIMEOUT = 1 << 20,
};

#define OPT_GLOBAL (OPT_CONFIG | OPT_DB | OPT_HELP)
#define OPT_LISTING (OPT_FORMAT | OPT_OUTPUT)

struct command {
	const char *name;
	int (*run)(struct cli *);
	unsigned opts;
	int n_args; /* positional arguments it needs */
	bool html;  /* --format html allowed */
	const char *usage;
};

static const struct command commands[] = {
	{ "status", cli_cmd_status, OPT_LISTING, 0, true,
	  "usage: gridpatrol [-c CONFIG] [--db PATH] status [--format text|json|csv|html]\n"
	  "         [-o FILE]\n"
	  "Every configured cell now: ok, due_soon, overdue, paused or inactive, with the\n"
	  "last patrol and the time it is due; html: one page with the count per state.\n" },
	{ "events", cli_cmd_events,
	  OPT_LISTING | OPT_CELL | OPT_WORKER | OPT_TYPE | OPT_SINCE | OPT_UNTIL | OPT_LIMIT, 0,
	  false,
	  "usage: gridpatrol [-c CONFIG] [--db PATH] events [--cell C] [--worker W] [--type T]\n"
	  "         [--since T] [--until T] [--limit N] [--format text|json|csv] [-o FILE]\n"
	  "Accepted events in patrol-time order; --limit N keeps the N most recent.\n"
	  "T: 2026-11-24T08:00:00+08:00, 2026-11-24 (local midnight), today, yesterday,\n"
	  "now or +DURATION; --until is exclusive.\n" },
	{ "rejected", cli_cmd_rejected, OPT_LISTING | OPT_SINCE | OPT_REASON, 0, false,
	  "usage: gridpatrol [-c CONFIG] [--db PATH] rejected [--since T] [--reason R]\n"
	  "         [--format text|json|csv] [-o FILE]\n"
	  "Messages the daemon could not accept, with the reason (bad_json, bad_field,\n"
	  "bad_topic, unknown_cell, unknown_event, too_large, too_old).\n" },
	{ "alerts", cli_cmd_alerts, OPT_LISTING | OPT_SINCE | OPT_PENDING, 0, true,
	  "usage: gridpatrol [-c CONFIG] [--db PATH] alerts [--since T] [--pending]\n"
	  "         [--format text|json|csv|html] [-o FILE]\n"
	  "Alerts raised and their delivery state per sink; --pending: only alerts not yet\n"
	  "delivered to every sink (still trying, or given up).\n" },
	{ "report", cli_cmd_report, OPT_LISTING | OPT_DATE, 0, true,
	  "usage: gridpatrol [-c CONFIG] [--db PATH] report [--date YYYY-MM-DD|today|yesterday]\n"
	  "         [--format text|json|csv|html] [-o FILE]\n"
	  "       gridpatrol [-c CONFIG] report --db [SITE=]PATH --db [SITE=]PATH ... [options]\n"
	  "Daily coverage of every configured cell (default: today so far).\n"
	  "With two or more --db: one county report over several sites' databases. A site\n"
	  "is named SITE, or else after its file (yunhua.db: yunhua); its cells are those\n"
	  "of the configuration that its database's cell table lists; a cell id found at\n"
	  "more than one site is shown as SITE/CELL.\n" },
	{ "chart", cli_cmd_chart, OPT_OUTPUT | OPT_DATE, 0, false,
	  "usage: gridpatrol [-c CONFIG] [--db PATH] chart [--date YYYY-MM-DD|today|yesterday]\n"
	  "         -o FILE.png\n"
	  "The day's cell x hour coverage chart (default: today so far) as a PNG, 1080\n"
	  "pixels wide with Chinese labels, for a WeChat image message. -o is required\n"
	  "(-o - writes to a pipe); FILE is replaced only once the PNG is complete.\n" },
	{ "workers", cli_cmd_workers, OPT_LISTING | OPT_DATE | OPT_FROM | OPT_TO, 0, true,
	  "usage: gridpatrol [-c CONFIG] [--db PATH] workers [--date D | --from D --to D]\n"
	  "         [--format text|json|csv|html] [-o FILE]\n"
	  "Per worker for the day D (default today) or the days D to D: patrols, cells\n"
	  "patrolled, events by type, late reports, claims with the median time to claim\n"
	  "and to resolve, and rapid check-ins (< 60 s after the previous in the cell).\n"
	  "D: YYYY-MM-DD, today or yesterday.\n" },
	{ "pause", cli_cmd_pause, OPT_UNTIL | OPT_REASON, 1, false,
	  "usage: gridpatrol [-c CONFIG] [--db PATH] pause CELL [--until TIME] [--reason TEXT]\n"
	  "Stop deadlines and overdue alerts for CELL until TIME (default: until resumed).\n"
	  "The running daemon takes it up within seconds.\n" },
	{ "resume", cli_cmd_resume, 0, 1, false,
	  "usage: gridpatrol [-c CONFIG] [--db PATH] resume CELL\n"
	  "End a pause; the cell's deadline counts from now.\n" },
	{ "claim", cli_cmd_claim, OPT_BY, 1, false,
	  "usage: gridpatrol [-c CONFIG] [--db PATH] claim CELL|ALERT_ID --by NAME\n"
	  "Claim the cell's latest open overdue, event or reading alert (or the alert\n"
	  "ALERT_ID) for NAME: the running daemon records it within seconds, sends a\n"
	  "claimed alert, and holds reminders for alerts.claim_for.\n" },
	{ "serve", cli_cmd_serve, OPT_LISTEN | OPT_TOKEN_FILE | OPT_TIMEOUT, 0, false,
	  "usage: gridpatrol [-c CONFIG] [--db PATH] serve [--listen ADDR:PORT]\n"
	  "         [--token-file FILE] [--timeout SECONDS]\n"
	  "A read-only web page for the office: / (every cell now), /report?date=D,\n"
	  "/alerts?since=D&pending=1, /workers?date=D or ?from=D&to=D, and the same as\n"
	  "JSON under /api/status, /api/report, /api/alerts, /api/workers.\n"
	  "--listen: default 127.0.0.1:8080; any other address needs --token-file, whose\n"
	  "token is sent as \"Authorization: Bearer TOKEN\" or once as /?token=TOKEN (a\n"
	  "cookie then). --timeout: seconds before an idle connection is dropped\n"
	  "(default 15). Stops on SIGTERM or SIGINT.\n" },
	{ "backup", cli_cmd_backup, 0, 1, false,
	  "usage: gridpatrol [-c CONFIG] [--db PATH] backup FILE\n"
	  "A consistent copy of the database, taken while the daemon runs. FILE must not\n"
	  "exist.\n" },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: gridpatrol [-c CONFIG] [--db PATH] COMMAND [options]\n"
	        "       gridpatrol --help | --version | COMMAND --help\n"
	        "\n"
	        "Review and administer gridpatrold's database.\n"
	        "\n"
	        "  report    daily coverage (text, json, csv, printable html)\n"
	        "  chart     the day's coverage chart as a PNG (for WeChat)\n"
	        "  status    every cell now: ok, due soon, overdue, paused, inactive\n"
	        "  events    accepted events\n"
	        "  rejected  rejected messages with reasons\n"
	        "  alerts    alerts and their delivery per sink\n"
	        "  workers   per-worker sheet: patrols, claims, response times\n"
	        "  pause     pause a cell's deadline\n"
	        "  resume    resume a paused cell\n"
	        "  claim     claim an open alert for someone who goes\n"
	        "  backup    consistent online copy of the database\n"
	        "  serve     read-only web page for the office (HTTP, JSON)\n"
	        "\n"
	        "  -c, --config FILE  configuration (default %s)\n"
	        "      --db PATH      database (default: storage.path of the configuration);\n"
	        "                     report takes several: --db [SITE=]PATH --db ...\n"
	        "      --format F     text, json or csv (report, status, alerts, workers:\n"
	        "                     also html, one page for a browser or a printer)\n"
	        "  -o, --output FILE  write to FILE (replaced atomically) instead of stdout\n",
	        CONFIG_DEFAULT_PATH);
}

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static const char *opt_name(unsigned bit)
{
	switch (bit) {
	case OPT_FORMAT:
		return "--format";
	case OPT_OUTPUT:
		return "-o/--output";
	case OPT_CELL:
		return "--cell";
	case OPT_WORKER:
		return "--worker";
	case OPT_TYPE:
		return "--type";
	case OPT_SINCE:
		return "--since";
	case OPT_UNTIL:
		return "--until";
	case OPT_LIMIT:
		return "--limit";
	case OPT_REASON:
		return "--reason";
	case OPT_PENDING:
		return "--pending";
	case OPT_DATE:
		return "--date";
	case OPT_BY:
		return "--by";
	case OPT_FROM:
		return "--from";
	case OPT_TO:
		return "--to";
	case OPT_LISTEN:
		return "--listen";
	case OPT_TOKEN_FILE:
		return "--token-file";
	case OPT_TIMEOUT:
		return "--timeout";
	default:
		return "?";
	}
}

static int parse_format(struct cli *c, const struct command *cmd)
{
	static const struct {
		const char *name;
		enum cli_format f;
	} formats[] = {
		{ "text", CLI_FORMAT_TEXT },
		{ "json", CLI_FORMAT_JSON },
		{ "csv", CLI_FORMAT_CSV },
		{ "html", CLI_FORMAT_HTML },
	};
	if (!c->format_opt)
		return 0;
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		if (strcmp(c->format_opt, formats[i].name) == 0 &&
		    (formats[i].f != CLI_FORMAT_HTML || cmd->html)) {
			c->format = formats[i].f;
			return 0;
		}
	}
	cli_error("unknown format '%s' for %s (use %s)", c->format_opt, cmd->name,
	          cmd->html ? "text, json, csv or html" : "text, json or csv");
	return -1;
}

/* Parse everything in one getopt pass: the first operand is the command,
 * the rest are its arguments. Returns -1 to go on, else an exit code. */
static int parse_args(int argc, char **argv, struct cli *c, unsigned *seen, char ***operands,
                      int *n_operands)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "db", required_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "format", required_argument, NULL, 'F' },
		{ "output", required_argument, NULL, 'o' },
		{ "cell", required_argument, NULL, 'C' },
		{ "worker", required_argument, NULL, 'W' },
		{ "type", required_argument, NULL, 'T' },
		{ "since", required_argument, NULL, 'S' },
		{ "until", required_argument, NULL, 'U' },
		{ "limit", required_argument, NULL, 'L' },
		{ "reason", required_argument, NULL, 'R' },
		{ "pending", no_argument, NULL, 'P' },
		{ "date", required_argument, NULL, 'd' },
		{ "by", required_argument, NULL, 'B' },
		{ "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 't' },
		{ "listen", required_argument, NULL, 'l' },
		{ "token-file", required_argument, NULL, 'k' },
		{ "timeout", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	opterr = 0; /* our own one-line messages */
	*seen = 0;
	while ((ch = getopt_long(argc, argv, ":c:o:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			c->config_path = optarg;
			*seen |= OPT_CONFIG;
			break;
		case 'D':
			/* Repeatable for a county report; c->dbs has room for argc. */
			c->dbs[c->n_dbs++] = optarg;
			c->db_opt = optarg;
			*seen |= OPT_DB;
			break;
		case 'h':
			*seen |= OPT_HELP;
			break;
		case 'V':
			*seen |= OPT_VERSION;
			break;
		case 'F':
			c->format_opt = optarg;
			*seen |= OPT_FORMAT;
			break;
		case 'o':
			c->out_path = optarg;
			*seen |= OPT_OUTPUT;
			break;
		case 'C':
			c->cell = optarg;
			*seen |= OPT_CELL;
			break;
		case 'W':
			c->worker = optarg;
			*seen |= OPT_WORKER;
			break;
		case 'T':
			c->type = optarg;
			*seen |= OPT_TYPE;
			break;
		case 'S':
			c->since = optarg;
			*seen |= OPT_SINCE;
			break;
		case 'U':
			c->until = optarg;
			*seen |= OPT_UNTIL;
			break;
		case 'L':
			c->limit = optarg;
			*seen |= OPT_LIMIT;
			break;
		case 'R':
			c->reason = optarg;
			*seen |= OPT_REASON;
			break;
		case 'P':
			c->pending = true;
			*seen |= OPT_PENDING;
			break;
		case 'd':
			c->date = optarg;
			*seen |= OPT_DATE;
			break;
		case 'B':
			c->by = optarg;
			*seen |= OPT_BY;
			break;
		case 'f':
			c->from = optarg;
			*seen |= OPT_FROM;
			break;
		case 't':
			c->to = optarg;
			*seen |= OPT_TO;
			break;
		case 'l':
			c->listen = optarg;
			*seen |= OPT_LISTEN;
			break;
		case 'k':
			c->token_file = optarg;
			*seen |= OPT_TOKEN_FILE;
			break;
		case 'm':
			c->timeout = optarg;
			*seen |= OPT_TIMEOUT;
			break;
		case ':':
			cli_error("option '%s' needs a value", argv[optind - 1]);
			return CLI_EXIT_USAGE;
		default:
			if (optopt)
				cli_error("unknown option '-%c' (see gridpatrol --help)", optopt);
			else
				cli_error("unknown option '%s' (see gridpatrol --help)",
				          argv[optind - 1]);
			return CLI_EXIT_USAGE;
		}
	}
	*operands = argv + optind;
	*n_operands = argc - optind;
	return -1;
}

static int load_config(struct cli *c)
{
	struct config_errors errs = { 0 };
	if (config_load(c->config_path, &c->cfg, &errs) < 0) {
		/* The errors already name file, line and column; the first one
		 * says what to fix and --check-config lists them all. */
		if (errs.n > 1)
			cli_error("%s (and %zu more; run gridpatrold --check-config -c %s)",
			          errs.v[0], errs.n - 1, c->config_path);
		else
			cli_error("%s", errs.n ? errs.v[0] : "cannot load the configuration");
		config_errors_free(&errs);
		return CLI_EXIT_USAGE;
	}
	config_errors_free(&errs);
	/* Every local time the CLI prints or parses is the village's, not the
	 * box's (which is often UTC). */
	if (setenv("TZ", c->cfg->timezone, 1) < 0) {
		cli_error("cannot set the time zone %s", c->cfg->timezone);
		return CLI_EXIT_FAIL;
	}
	tzset();
	c->lang = strcmp(c->cfg->alerts.language, "en") == 0 ? TIMEFMT_EN : TIMEFMT_ZH;
	c->db_path = c->db_opt ? c->db_opt : c->cfg->storage.path;
	return CLI_EXIT_OK;
}

/* The command line is parsed: check it against the command and run it. */
static int run(struct cli *cp, unsigned seen, char **operands, int n_operands)
{
	struct cli c = *cp;
	int code;

	if (seen & OPT_VERSION) {
		printf("gridpatrol %s\n", GRIDPATROL_VERSION);
		return fflush(stdout) == EOF ? CLI_EXIT_FAIL : CLI_EXIT_OK;
	}
	if (n_operands == 0) {
		if (seen & OPT_HELP) {
			usage(stdout);
			return fflush(stdout) == EOF ? CLI_EXIT_FAIL : CLI_EXIT_OK;
		}
		cli_error("no command given (see gridpatrol --help)");
		return CLI_EXIT_USAGE;
	}
	const struct command *cmd = find_command(operands[0]);
	if (!cmd) {
		cli_error("unknown command '%s' (see gridpatrol --help)", operands[0]);
		return CLI_EXIT_USAGE;
	}
	if (seen & OPT_HELP) {
		fputs(cmd->usage, stdout);
		return fflush(stdout) == EOF ? CLI_EXIT_FAIL : CLI_EXIT_OK;
	}
	unsigned extra = seen & ~(unsigned)(OPT_GLOBAL | cmd->opts);
	if (extra) {
		cli_error("%s does not take %s (see gridpatrol %s --help)", cmd->name,
		          opt_name(extra & -extra), cmd->name);
		return CLI_EXIT_USAGE;
	}
	if (n_operands - 1 != cmd->n_args) {
		if (n_operands - 1 < cmd->n_args)
			cli_error("%s needs %s (see gridpatrol %s --help)", cmd->name,
			          strcmp(cmd->name, "backup") == 0  ? "a FILE"
			          : strcmp(cmd->name, "claim") == 0 ? "a CELL or ALERT_ID"
			                                            : "a CELL",
			          cmd->name);
		else
			cli_error("unexpected argument '%s' (see gridpatrol %s --help)",
			          operands[cmd->n_args + 1], cmd->name);
		return CLI_EXIT_USAGE;
	}
	c.command = cmd->name;
	c.args = operands + 1;
	c.n_args = n_operands - 1;
	if (parse_format(&c, cmd) < 0)
		return CLI_EXIT_USAGE;
	if (c.n_dbs > 1 && strcmp(cmd->name, "report") != 0) {
		cli_error("%s takes one --db (only report combines several sites)", cmd->name);
		return CLI_EXIT_USAGE;
	}

	/* Not time(): on glibc that reads the coarse clock, which lags
	 * CLOCK_REALTIME (what the daemon and every other program reads) by up
	 * to a tick, so right after a second boundary the CLI would see the
	 * second before and disagree by one with a row written just now. */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	c.now = (int64_t)ts.tv_sec;
	code = load_config(&c);
	if (code == CLI_EXIT_OK)
		code = cmd->run(&c);
	config_free(c.cfg);
	return code;
}

int main(int argc, char **argv)
{
	struct cli c = { .config_path = CONFIG_DEFAULT_PATH, .format = CLI_FORMAT_TEXT };
	unsigned seen;
	char **operands;
	int n_operands;

	c.dbs = calloc((size_t)argc + 1, sizeof(*c.dbs));
	if (!c.dbs) {
		cli_error("out of memory");
		return CLI_EXIT_FAIL;
	}
	int code = parse_args(argc, argv, &c, &seen, &operands, &n_operands);
	if (code < 0)
		code = run(&c, seen, operands, n_operands);
	free(c.dbs);
	return code;
}
