/*
 * backoff: the arithmetic of retry waits (include/core/backoff.h), kept in
 * one place so that the daemon's retries grow, cap and spread alike and a
 * try count of any size cannot overflow into a negative or zero wait.
 */
#include "backoff.h"

int64_t backoff_delay_ms(int64_t min_ms, int64_t max_ms, int tries)
{
	int64_t b = min_ms;

	/* Stops once b reaches max: at most 63 rounds, whatever tries is. */
	for (int i = 0; i < tries && b < max_ms; i++)
		b = b > INT64_MAX / 2 ? INT64_MAX : b * 2;
	if (b > max_ms && max_ms > 0)
		b = max_ms;
	return b;
}

int64_t backoff_jitter_ms(int64_t delay_ms, int pct, uint64_t r)
{
	if (pct <= 0 || delay_ms <= 0)
		return delay_ms;
	if (pct > 100)
		pct = 100;
	/* delay × pct / 100 without the product overflowing. */
	int64_t j = delay_ms / 100 * pct + delay_ms % 100 * pct / 100;
	if (j <= 0)
		return delay_ms;
	uint64_t off = r % (2 * (uint64_t)j + 1);
	uint64_t v = (uint64_t)(delay_ms - j) + off;
	return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

void backoff_rng_seed(struct backoff_rng *g, uint64_t seed)
{
	g->s = seed ? seed : 0x9e3779b97f4a7c15ULL;
}

uint64_t backoff_rng_next(struct backoff_rng *g)
{
	g->s ^= g->s >> 12;
	g->s ^= g->s << 25;
	g->s ^= g->s >> 27;
	return g->s * 2685821657736338717ULL;
}
