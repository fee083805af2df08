/*
 * cli_admin: the commands that change something — pause and resume a
 * cell's deadline, claim an alert from the office, and take a backup.
 *
 * pause/resume write one row of the `pause` table (resume ends it, keeping
 * the row: its end is where the deadline counts from) in a single short
 * autocommit statement, waiting up to CLI_BUSY_TIMEOUT_MS for the
 * daemon's write lock; the daemon notices the change through
 * PRAGMA data_version within a second. backup uses VACUUM INTO from a
 * read-only connection: a WAL reader, so the daemon keeps writing while
 * the copy is made, and the copy is one consistent snapshot.
 *
 * claim does not touch the alert itself: the daemon owns alerts and the
 * outbox, so the CLI leaves a row in claim_request, and the daemon, which
 * notices it as it notices pauses, records the claim and sends the
 * `claimed` alert in one batch (SPEC, Claims).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_common.h"
#include "cli_db.h"
#include "utf8.h"

static const struct config_cell *known_cell(struct cli *c, const char *id)
{
	const struct config_cell *cc = config_cell_find(c->cfg, id);
	if (!cc)
		cli_error("unknown cell '%s' (not in %s)", id, c->config_path);
	return cc;
}

int cli_cmd_pause(struct cli *c)
{
	const struct config_cell *cc = known_cell(c, c->args[0]);
	int64_t until = 0;
	char when[TIMEFMT_MAX];
	int code;

	if (!cc)
		return CLI_EXIT_USAGE;
	if (c->until) {
		if (cli_parse_time(c, "--until", c->until, &until) < 0)
			return CLI_EXIT_USAGE;
		if (until <= c->now) {
			cli_error("--until %s is not in the future", c->until);
			return CLI_EXIT_USAGE;
		}
	}
	code = cli_db_open_rw(c);
	if (code != CLI_EXIT_OK)
		return cli_db_close(c, code);
	if ((code = cli_db_pause_put(c, cc->id, c->now, c->until != NULL, until, c->reason)) !=
	    CLI_EXIT_OK)
		goto done;
	if (c->until)
		timefmt_rfc3339(until, when, sizeof(when));
	if (c->lang == TIMEFMT_ZH)
		printf("已暂停 %s（%s），%s%s。\n", cc->id, cc->name, c->until ? "至 " : "直到恢复",
		       c->until ? when : "");
	else
		printf("paused %s (%s) %s%s\n", cc->id, cc->name,
		       c->until ? "until " : "until resumed", c->until ? when : "");
	if (fflush(stdout) == EOF)
		code = CLI_EXIT_FAIL;
done:
	return cli_db_close(c, code);
}

int cli_cmd_resume(struct cli *c)
{
	const struct config_cell *cc = known_cell(c, c->args[0]);
	bool was;
	int code;

	if (!cc)
		return CLI_EXIT_USAGE;
	code = cli_db_open_rw(c);
	if (code != CLI_EXIT_OK)
		return cli_db_close(c, code);
	/* The row stays, ended now: the end of a pause is a base (SPEC,
	 * Deadline), and a restart of the daemon, `status` and `report` must
	 * still see it. Deleting it made them count from the last patrol while
	 * the running daemon counted from the resume. */
	if ((code = cli_db_pause_end(c, cc->id, c->now, &was)) != CLI_EXIT_OK)
		goto done;
	if (c->lang == TIMEFMT_ZH)
		printf(was ? "已恢复 %s（%s），从现在起计算巡查期限。\n" : "%s（%s）没有暂停。\n",
		       cc->id, cc->name);
	else
		printf(was ? "resumed %s (%s); its deadline counts from now\n"
		           : "%s (%s) was not paused\n",
		       cc->id, cc->name);
	if (fflush(stdout) == EOF)
		code = CLI_EXIT_FAIL;
done:
	return cli_db_close(c, code);
}

static bool claim_task_kind(const char *kind)
{
	return !strcmp(kind, "overdue") || !strcmp(kind, "event") || !strcmp(kind, "reading");
}

/* One line on stdout in the CLI's language (zh first, then en). */
#define claim_say(c, zh, en, ...) \
	((c)->lang == TIMEFMT_ZH ? printf(zh, __VA_ARGS__) : printf(en, __VA_ARGS__))

int cli_cmd_claim(struct cli *c)
{
	const char *arg = c->args[0];
	const struct config_cell *cc = config_cell_find(c->cfg, arg);
	int64_t id = 0;
	struct cli_db_task t;
	bool found;
	int code;

	if (!c->by) {
		cli_error("claim needs --by NAME (who goes; see gridpatrol claim --help)");
		return CLI_EXIT_USAGE;
	}
	size_t n = strlen(c->by);
	bool ctl = false;
	for (size_t i = 0; i < n; i++)
		ctl |= (unsigned char)c->by[i] < 0x20 || c->by[i] == 0x7f;
	if (n < 1 || n > TOPIC_SEGMENT_MAX || utf8_check(c->by, n) != n || ctl) {
		cli_error("--by must be 1 to %d bytes of UTF-8 text without control characters",
		          TOPIC_SEGMENT_MAX);
		return CLI_EXIT_USAGE;
	}
	if (!cc) {
		char *end;
		errno = 0;
		long long v = strtoll(arg, &end, 10);
		if (errno || end == arg || *end || v < 1 || arg[0] == '+') {
			cli_error("'%s' is neither a configured cell (in %s) nor an alert id", arg,
			          c->config_path);
			return CLI_EXIT_USAGE;
		}
		id = v;
	}
	code = cli_db_open_rw(c);
	if (code != CLI_EXIT_OK)
		return cli_db_close(c, code);
	/* Look and write in one transaction, so what is printed is what the
	 * daemon will be asked to do. */
	if ((code = cli_exec(c, "BEGIN IMMEDIATE")) != CLI_EXIT_OK)
		return cli_db_close(c, code);
	code = cc ? cli_db_task_latest(c, cc->id, c->now, &t, &found)
	          : cli_db_task_by_id(c, id, &t, &found);
	if (code != CLI_EXIT_OK)
		goto done;
	if (!found && cc) {
		claim_say(c, "%s（%s）没有待认领的提醒。\n", "%s (%s) has no open alert to claim\n",
		          cc->id, cc->name);
		goto done;
	}
	if (!found) {
		cli_error("no alert %lld", (long long)id);
		code = CLI_EXIT_USAGE;
		goto done;
	}
	if (!claim_task_kind(t.kind)) {
		cli_error("alert %lld is a %s alert; only overdue, event and reading alerts can be "
		          "claimed",
		          (long long)t.id, t.kind);
		code = CLI_EXIT_USAGE;
		goto done;
	}
	if (!(cc = config_cell_find(c->cfg, t.cell))) {
		cli_error("alert %lld is for cell %s, which is not configured", (long long)t.id,
		          t.cell);
		code = CLI_EXIT_USAGE;
		goto done;
	}
	if (t.resolved) {
		claim_say(c, "提醒 %lld 已结束，无需认领。\n",
		          "alert %lld has ended; nothing to claim\n", (long long)t.id);
		goto done;
	}
	if (t.claimed) {
		claim_say(c, "提醒 %lld 已由 %s 认领。\n", "alert %lld is already claimed by %s\n",
		          (long long)t.id, t.claimed_by);
		goto done;
	}
	if ((code = cli_db_claim_put(c, c->now, c->by, cc->id, t.id)) != CLI_EXIT_OK ||
	    (code = cli_exec(c, "COMMIT")) != CLI_EXIT_OK)
		goto done;
	/* Same argument order in both languages. */
	claim_say(c, "%s 认领 %s（%s）的%s提醒 %lld；运行中的守护进程会在几秒内通知群里。\n",
	          "%s claims %s (%s): %s alert %lld; the running daemon tells the group within "
	          "seconds\n",
	          c->by, cc->id, cc->name,
	          c->lang == TIMEFMT_ZH ? (!strcmp(t.kind, "overdue") ? "巡查"
	                                   : !strcmp(t.kind, "event") ? "事件"
	                                                              : "读数")
	                                : t.kind,
	          (long long)t.id);
done:
	if (code == CLI_EXIT_OK && fflush(stdout) == EOF)
		code = CLI_EXIT_FAIL;
	return cli_db_close(c, code);
}

/* fsync the folder holding path, so the new name survives a power cut. */
static int sync_dir(const char *path)
{
	char *copy = strdup(path);
	if (!copy)
		return -1;
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	if (fd < 0)
		return -1;
	int r = fsync(fd);
	close(fd);
	return r;
}

static int sync_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int r = fsync(fd);
	close(fd);
	return r;
}

int cli_cmd_backup(struct cli *c)
{
	const char *dest = c->args[0];
	struct stat sb;
	char *tmp = NULL;
	bool tmp_made = false;
	int code;

	if (lstat(dest, &sb) == 0) {
		cli_error("%s exists; refusing to overwrite it", dest);
		return CLI_EXIT_USAGE;
	}
	code = cli_db_open_ro(c);
	/* VACUUM cannot run inside the read transaction the open started; it
	 * takes its own snapshot. */
	if (code == CLI_EXIT_OK)
		code = cli_exec(c, "COMMIT");
	if (code != CLI_EXIT_OK)
		return cli_db_close(c, code);

	/* Copy under a temporary name and link it into place: a crash
	 * leaves no half-written FILE, and a FILE that appeared meanwhile
	 * is still not overwritten (link fails with EEXIST). */
	size_t n = strlen(dest) + sizeof(".tmp-XXXXXX");
	tmp = malloc(n);
	if (!tmp) {
		cli_error("out of memory");
		code = CLI_EXIT_FAIL;
		goto done;
	}
	snprintf(tmp, n, "%s.tmp-XXXXXX", dest);
	int fd = mkstemp(tmp);
	if (fd < 0) {
		cli_error("cannot create %s: %s", tmp, strerror(errno));
		code = errno == ENOENT || errno == ENOTDIR ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
		goto done;
	}
	close(fd); /* VACUUM INTO accepts an existing empty file */
	tmp_made = true;

	if ((code = cli_db_vacuum_into(c, tmp)) != CLI_EXIT_OK)
		goto done;
	if (sync_file(tmp) < 0) {
		cli_error("cannot sync %s: %s", tmp, strerror(errno));
		code = CLI_EXIT_FAIL;
		goto done;
	}
	if (link(tmp, dest) < 0) {
		if (errno == EEXIST) {
			cli_error("%s appeared while copying; refusing to overwrite it", dest);
			code = CLI_EXIT_USAGE;
		} else {
			cli_error("cannot create %s: %s", dest, strerror(errno));
			code = CLI_EXIT_FAIL;
		}
		goto done;
	}
	if (sync_dir(dest) < 0) {
		cli_error("cannot sync the folder of %s: %s", dest, strerror(errno));
		code = CLI_EXIT_FAIL;
		goto done;
	}
	if (stat(dest, &sb) == 0)
		printf(c->lang == TIMEFMT_ZH ? "已备份到 %s（%lld 字节）。\n"
		                             : "backup written to %s (%lld bytes)\n",
		       dest, (long long)sb.st_size);
	if (fflush(stdout) == EOF)
		code = CLI_EXIT_FAIL;
done:
	if (tmp_made)
		unlink(tmp);
	free(tmp);
	return cli_db_close(c, code);
}
