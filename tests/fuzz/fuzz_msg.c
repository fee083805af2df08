/*
 * libFuzzer target for msg_parse: the first byte splits the input into a
 * topic and a payload, so the fuzzer explores both. A fixed configuration
 * (tests/fixtures/msg/basic.yaml) supplies cells and event types.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct config *fuzz_cfg;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!fuzz_cfg) {
		struct config_errors errs = { 0 };
		const char *path = getenv("FUZZ_CONFIG");
		if (config_load(path ? path : FUZZ_CONFIG_DEFAULT, &fuzz_cfg, &errs) < 0)
			abort();
		config_errors_free(&errs);
	}
	if (size < 1)
		return 0;
	size_t tlen = data[0] < size - 1 ? data[0] : size - 1;
	char *topic = malloc(tlen + 1);
	if (!topic)
		return 0;
	memcpy(topic, data + 1, tlen);
	topic[tlen] = '\0';
	struct msg_record rec;
	char detail[MSG_DETAIL_MAX];
	msg_parse(fuzz_cfg, topic, data + 1 + tlen, size - 1 - tlen, 1764000000000LL, &rec, detail,
	          sizeof(detail));
	free(topic);
	return 0;
}
