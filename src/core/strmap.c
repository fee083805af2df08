/*
 * strmap: the string index (see strmap.h). Grown from the configuration's
 * cell and event index, whose hash was tuned for ids such as yh-000001.
 */
#include "strmap.h"

#include <stdlib.h>
#include <string.h>

uint32_t strmap_hash(const char *s)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= UINT64_C(0x100000001b3);
	}
	/* FNV-1a alone leaves the low bits, which pick the slot, weak for
	 * keys that differ only in their last characters (yh-000001,
	 * yh-000002 ...); a finalising mix spreads every bit. */
	h ^= h >> 33;
	h *= UINT64_C(0xff51afd7ed558ccd);
	h ^= h >> 33;
	h *= UINT64_C(0xc4ceb9fe1a85ec53);
	h ^= h >> 33;
	return (uint32_t)h;
}

static const char *key_at(const void *base, size_t stride, uint32_t idx)
{
	return *(char *const *)(const void *)((const char *)base + (size_t)idx * stride);
}

static int grow(struct strmap *m)
{
	size_t ncap = m->slot != NULL ? (m->mask + 1) * 2 : 16;
	struct strmap_slot *ns = calloc(ncap, sizeof(*ns));

	if (ns == NULL)
		return -1;
	if (m->slot != NULL) {
		for (size_t i = 0; i <= m->mask; i++) {
			size_t j;

			if (m->slot[i].idx1 == 0)
				continue;
			for (j = m->slot[i].hash & (ncap - 1); ns[j].idx1 != 0;
			     j = (j + 1) & (ncap - 1))
				;
			ns[j] = m->slot[i];
		}
		free(m->slot);
	}
	m->slot = ns;
	m->mask = ncap - 1;
	return 0;
}

int64_t strmap_find(const struct strmap *m, const void *base, size_t stride, const char *key)
{
	uint32_t h;

	if (m->slot == NULL || key == NULL)
		return -1;
	h = strmap_hash(key);
	for (size_t j = h & m->mask; m->slot[j].idx1 != 0; j = (j + 1) & m->mask)
		if (m->slot[j].hash == h &&
		    strcmp(key_at(base, stride, m->slot[j].idx1 - 1), key) == 0)
			return m->slot[j].idx1 - 1;
	return -1;
}

/* Load stays at or below one half, so probes stay short. */
int64_t strmap_insert(struct strmap *m, const void *base, size_t stride, uint32_t idx)
{
	const char *key = key_at(base, stride, idx);
	int64_t old = strmap_find(m, base, stride, key);
	uint32_t h;
	size_t j;

	if (old >= 0)
		return old;
	if (m->slot == NULL || (m->n + 1) * 2 > m->mask + 1)
		if (grow(m) < 0)
			return -2;
	h = strmap_hash(key);
	for (j = h & m->mask; m->slot[j].idx1 != 0; j = (j + 1) & m->mask)
		;
	m->slot[j].idx1 = idx + 1;
	m->slot[j].hash = h;
	m->n++;
	return -1;
}

void strmap_free(struct strmap *m)
{
	free(m->slot);
	m->slot = NULL;
	m->mask = 0;
	m->n = 0;
}
