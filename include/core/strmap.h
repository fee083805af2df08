/*
 * strmap: a string-keyed index over the caller's own array, and the one
 * string hash of the project.
 *
 * The map does not store keys or values: it stores indexes into an array
 * of structs (or of char pointers) whose first member is the key, a
 * `char *`. The caller owns the array, may realloc it (the base is passed
 * on every call) and keeps its entries where they are; the map only finds
 * them. That keeps a slot at 8 bytes, which matters with a million cells
 * on a small box, and lets one map serve configuration lookups, alert
 * levels and interned strings alike.
 *
 * Open addressing with linear probing, load at most one half, capacity a
 * power of two. No removal: none of the users needs one. Pure; allocation
 * failures are returned, never fatal.
 */
#ifndef GRIDPATROL_STRMAP_H
#define GRIDPATROL_STRMAP_H

#include <stddef.h>
#include <stdint.h>

struct strmap {
	struct strmap_slot {
		uint32_t idx1; /* index + 1; 0 marks an empty slot */
		uint32_t hash; /* low bits of the hash, to skip most strcmps */
	} * slot;
	size_t mask; /* capacity - 1, when slot is not NULL */
	size_t n;
};

/* A zeroed struct strmap is an empty map; STRMAP_INIT spells it. */
#define STRMAP_INIT        \
	{                  \
		NULL, 0, 0 \
	}

/* FNV-1a with a finalising mix (see strmap.c). */
uint32_t strmap_hash(const char *s);

/* Index of the entry whose key equals key, or -1 (also for key NULL). */
int64_t strmap_find(const struct strmap *m, const void *base, size_t stride, const char *key);

/* Indexes entry idx of base under its key. Returns the index already
 * holding that key (and inserts nothing), -1 after inserting, -2 when out
 * of memory (the map is unchanged). */
int64_t strmap_insert(struct strmap *m, const void *base, size_t stride, uint32_t idx);

/* Frees the slots (not the array) and leaves an empty map. */
void strmap_free(struct strmap *m);

#endif
