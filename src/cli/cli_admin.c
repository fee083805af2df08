/*
 * cli_admin: the commands that change something — pause and resume a
 * cell's deadline, and take a backup.
 *
 * pause/resume write one row of the `pause` table (resume ends it, keeping
 * the row: its end is where the deadline counts from) in a single short
 * autocommit statement, waiting up to CLI_BUSY_TIMEOUT_MS for the
 * daemon's write lock; the daemon notices the change through
 * PRAGMA data_version within a second. backup uses VACUUM INTO from a
 * read-only connection: a WAL reader, so the daemon keeps writing while
 * the copy is made, and the copy is one consistent snapshot.
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
		printf("paused %s (%s) %s%s\n", cc->id, cc->name, c->until ? "until " : "until resumed",
		       c->until ? when : "");
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
		printf(was ? "已恢复 %s（%s），从现在起计算巡查期限。\n" : "%s（%s）没有暂停。\n", cc->id,
		       cc->name);
	else
		printf(was ? "resumed %s (%s); its deadline counts from now\n"
		           : "%s (%s) was not paused\n", cc->id, cc->name);
	if (fflush(stdout) == EOF)
		code = CLI_EXIT_FAIL;
done:
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
