/*
 * libFuzzer target for config_load: each input is written to a temporary
 * file and loaded; every outcome (errors or a config) is freed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

static void fuzz_cleanup(void)
{
	unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!path[0]) {
		snprintf(path, sizeof(path), "/tmp/gridpatrol-fuzz-config-%ld.yaml",
		         (long)getpid());
		atexit(fuzz_cleanup);
	}
	FILE *f = fopen(path, "wb");
	if (!f)
		return 0;
	fwrite(data, 1, size, f);
	fclose(f);
	struct config *cfg = NULL;
	struct config_errors errs = { 0 };
	if (config_load(path, &cfg, &errs) == 0)
		config_free(cfg);
	config_errors_free(&errs);
	return 0;
}
