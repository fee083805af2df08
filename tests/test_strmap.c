/*
 * test_strmap: the index over a caller's array — many keys through several
 * growths, keys that collide in the slot bits, keys that differ only at
 * their end (the ids the mixing step is for), Chinese keys, missing keys,
 * and a base array that moves between calls.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "strmap.h"

struct item {
	char *key; /* first member, as strmap wants it */
	int value;
};

static void test_empty(void **state)
{
	struct strmap m = STRMAP_INIT;
	struct item it = { "a", 1 };

	(void)state;
	assert_int_equal(strmap_find(&m, &it, sizeof(it), "a"), -1);
	assert_int_equal(strmap_find(&m, &it, sizeof(it), NULL), -1);
	strmap_free(&m);
	strmap_free(&m);
}

static void test_insert_find(void **state)
{
	struct item v[] = { { "alpha", 0 }, { "beta", 1 }, { "", 2 }, { "alpha", 3 } };
	struct strmap m = STRMAP_INIT;

	(void)state;
	assert_int_equal(strmap_insert(&m, v, sizeof(v[0]), 0), -1);
	assert_int_equal(strmap_insert(&m, v, sizeof(v[0]), 1), -1);
	assert_int_equal(strmap_insert(&m, v, sizeof(v[0]), 2), -1);
	/* A key already there: its index comes back, nothing is added. */
	assert_int_equal(strmap_insert(&m, v, sizeof(v[0]), 3), 0);
	assert_int_equal(m.n, 3);
	assert_int_equal(strmap_find(&m, v, sizeof(v[0]), "alpha"), 0);
	assert_int_equal(strmap_find(&m, v, sizeof(v[0]), "beta"), 1);
	assert_int_equal(strmap_find(&m, v, sizeof(v[0]), ""), 2);
	assert_int_equal(strmap_find(&m, v, sizeof(v[0]), "gamma"), -1);
	assert_int_equal(strmap_find(&m, v, sizeof(v[0]), "alph"), -1);
	assert_int_equal(strmap_find(&m, v, sizeof(v[0]), "alphaa"), -1);
	strmap_free(&m);
	assert_null(m.slot);
	assert_int_equal(m.n, 0);
}

/* 100,000 ids that differ only in their last digits, as cell ids do; the
 * array is realloc'd as it grows, so the base moves under the map. */
#define MANY 100000

static void test_many(void **state)
{
	struct strmap m = STRMAP_INIT;
	char **keys = NULL;
	size_t cap = 0;

	(void)state;
	for (uint32_t i = 0; i < MANY; i++) {
		char buf[32];

		if (i == cap) {
			cap = cap ? cap * 2 : 4;
			keys = realloc(keys, cap * sizeof(*keys));
			assert_non_null(keys);
		}
		snprintf(buf, sizeof(buf), "yh-%06u", i);
		keys[i] = strdup(buf);
		assert_non_null(keys[i]);
		assert_int_equal(strmap_insert(&m, keys, sizeof(*keys), i), -1);
		/* Load stays at or below one half. */
		assert_true(m.n * 2 <= m.mask + 1);
	}
	assert_int_equal(m.n, MANY);
	for (uint32_t i = 0; i < MANY; i++) {
		char buf[32];

		snprintf(buf, sizeof(buf), "yh-%06u", i);
		assert_int_equal(strmap_find(&m, keys, sizeof(*keys), buf), i);
		assert_int_equal(strmap_insert(&m, keys, sizeof(*keys), i), i);
	}
	assert_int_equal(strmap_find(&m, keys, sizeof(*keys), "yh-100000"), -1);
	assert_int_equal(strmap_find(&m, keys, sizeof(*keys), "yh-00000"), -1);
	assert_int_equal(strmap_find(&m, keys, sizeof(*keys), "yh-0000001"), -1);

	/* The mix spreads such keys: no probe run is long. */
	{
		size_t run = 0, longest = 0;

		for (size_t j = 0; j <= m.mask; j++) {
			run = m.slot[j].idx1 != 0 ? run + 1 : 0;
			if (run > longest)
				longest = run;
		}
		assert_true(longest < 64);
	}
	for (uint32_t i = 0; i < MANY; i++)
		free(keys[i]);
	free(keys);
	strmap_free(&m);
}

/* Keys chosen to share their slot in a 16-slot table: probing must still
 * tell them apart, find each, and keep finding them after growth. */
/* Enough to make a 16-slot table grow (it holds 8 at half load). */
#define COLLIDE 12

static void test_collisions(void **state)
{
	struct strmap m = STRMAP_INIT;
	char *keys[COLLIDE];
	char bufs[COLLIDE][16];
	uint32_t n = 0, want;

	(void)state;
	want = strmap_hash("k0") & 15;
	for (unsigned i = 0; n < COLLIDE; i++) {
		snprintf(bufs[n], sizeof(bufs[n]), "k%u", i);
		if ((strmap_hash(bufs[n]) & 15) == want) {
			keys[n] = bufs[n];
			n++;
		}
	}
	for (uint32_t i = 0; i < COLLIDE; i++) {
		assert_int_equal(strmap_insert(&m, keys, sizeof(*keys), i), -1);
		for (uint32_t j = 0; j <= i; j++)
			assert_int_equal(strmap_find(&m, keys, sizeof(*keys), keys[j]), j);
	}
	/* More keys than half of 16 slots: the table grew at least once. */
	assert_true(m.mask + 1 >= 32);
	for (uint32_t j = 0; j < COLLIDE; j++)
		assert_int_equal(strmap_find(&m, keys, sizeof(*keys), keys[j]), j);
	assert_int_equal(strmap_find(&m, keys, sizeof(*keys), "k"), -1);
	strmap_free(&m);
}

static void test_chinese(void **state)
{
	struct item v[] = {
		{ "东门网格", 0 }, { "西门网格", 1 }, { "东门网格2", 2 }, { "水井", 3 },
		{ "张三", 4 },     { "李四", 5 },     { "网格-001", 6 },  { "网格-002", 7 },
	};
	size_t n = sizeof(v) / sizeof(v[0]);
	struct strmap m = STRMAP_INIT;

	(void)state;
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(strmap_insert(&m, v, sizeof(v[0]), i), -1);
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(strmap_find(&m, v, sizeof(v[0]), v[i].key), i);
	assert_int_equal(strmap_find(&m, v, sizeof(v[0]), "东门"), -1);
	assert_int_equal(strmap_find(&m, v, sizeof(v[0]), "南门网格"), -1);
	/* The same text as one more byte string: still found. */
	assert_int_equal(strmap_find(&m, v, sizeof(v[0]), "\xE6\xB0\xB4\xE4\xBA\x95"), 3);
	strmap_free(&m);
}

static void test_hash(void **state)
{
	(void)state;
	/* Fixed values (FNV-1a, then the 64-bit finalising mix): the hash is
	 * part of no file format, but a change of it should be a decision,
	 * not an accident. */
	assert_int_equal(strmap_hash(""), 3130599718u);
	assert_int_equal(strmap_hash("yh-000001"), 215793860u);
	/* Keys that differ in their last character differ in the low bits
	 * that pick the slot. */
	assert_int_not_equal(strmap_hash("yh-000001"), strmap_hash("yh-000002"));
	assert_int_not_equal(strmap_hash("yh-000001") & 0xFF, strmap_hash("yh-000002") & 0xFF);
	assert_int_not_equal(strmap_hash("水"), strmap_hash("井"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),   cmocka_unit_test(test_insert_find),
		cmocka_unit_test(test_many),    cmocka_unit_test(test_collisions),
		cmocka_unit_test(test_chinese), cmocka_unit_test(test_hash),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
