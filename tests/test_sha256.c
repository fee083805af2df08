/*
 * test_sha256: the FIPS 180-4 / NIST CAVS example vectors, plus checks that
 * splitting the input across update() calls at every boundary that matters
 * for padding gives the same digest as one call.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sha256.h"

static void hex(const uint8_t d[32], char out[65])
{
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void digest_hex(const void *data, size_t len, char out[65])
{
	struct sha256 s;
	uint8_t d[32];

	sha256_init(&s);
	sha256_update(&s, data, len);
	sha256_final(&s, d);
	hex(d, out);
}

static void test_empty(void **state)
{
	char h[65];

	(void)state;
	digest_hex("", 0, h);
	assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_abc(void **state)
{
	char h[65];

	(void)state;
	digest_hex("abc", 3, h);
	assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_448_bits(void **state)
{
	const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	char h[65];

	(void)state;
	assert_int_equal(strlen(m), 56);
	digest_hex(m, strlen(m), h);
	assert_string_equal(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_896_bits(void **state)
{
	const char *m = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
	                "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
	char h[65];

	(void)state;
	digest_hex(m, strlen(m), h);
	assert_string_equal(h, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

static void test_million_a(void **state)
{
	struct sha256 s;
	uint8_t d[32], chunk[1000];
	char h[65];

	(void)state;
	memset(chunk, 'a', sizeof(chunk));
	sha256_init(&s);
	for (int i = 0; i < 1000; i++)
		sha256_update(&s, chunk, sizeof(chunk));
	sha256_final(&s, d);
	hex(d, h);
	assert_string_equal(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* Every split point of messages around the one- and two-block padding
 * boundaries (55, 56, 63, 64, 65 bytes) must agree with the one-shot hash. */
static void test_split_updates(void **state)
{
	uint8_t msg[130];

	(void)state;
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 7 + 3);
	for (size_t len = 0; len <= sizeof(msg); len++) {
		char one[65];

		digest_hex(msg, len, one);
		for (size_t cut = 0; cut <= len; cut++) {
			struct sha256 s;
			uint8_t d[32];
			char two[65];

			sha256_init(&s);
			sha256_update(&s, msg, cut);
			sha256_update(&s, msg + cut, len - cut);
			sha256_final(&s, d);
			hex(d, two);
			assert_string_equal(one, two);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),     cmocka_unit_test(test_abc),
		cmocka_unit_test(test_448_bits),  cmocka_unit_test(test_896_bits),
		cmocka_unit_test(test_million_a), cmocka_unit_test(test_split_updates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
