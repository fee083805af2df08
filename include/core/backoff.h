/*
 * backoff: exponential backoff with jitter, the one rule behind every retry
 * in the daemon — the broker reconnect, the storage retry, a failed alert
 * delivery and delivery's own wait for the database.
 *
 * Pure: no clock, no global random state. The caller keeps its try count
 * and passes the random value in (backoff_rng is a small seeded generator
 * for callers without one), so each caller's sequence is its own and tests
 * can pin it.
 */
#ifndef GRIDPATROL_BACKOFF_H
#define GRIDPATROL_BACKOFF_H

#include <stdint.h>

/* min_ms doubled `tries` times (tries <= 0: min_ms), doubling stopping
 * once it reaches max_ms and the result capped at max_ms when max_ms > 0.
 * max_ms <= 0 means no doubling at all (min_ms every time). Never
 * overflows, whatever tries is. */
int64_t backoff_delay_ms(int64_t min_ms, int64_t max_ms, int tries);

/* delay_ms ± pct % (pct in 0..100), chosen by r: the result is in
 * [delay - j, delay + j] with j = delay × pct / 100 (rounded down), and
 * r's spread decides where. pct 0, or a delay too small for j >= 1, gives
 * delay_ms unchanged. Saturates at INT64_MAX. */
int64_t backoff_jitter_ms(int64_t delay_ms, int pct, uint64_t r);

/* xorshift64*: jitter needs spread, not secrecy. A zero seed is replaced
 * (the generator would stay at zero). */
struct backoff_rng {
	uint64_t s;
};
void backoff_rng_seed(struct backoff_rng *g, uint64_t seed);
uint64_t backoff_rng_next(struct backoff_rng *g);

#endif
