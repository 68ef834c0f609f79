/*
 * map.h — string-keyed hash map (open addressing, linear probing, backward-shift
 * delete). Keys are borrowed: the caller keeps each key alive while it is in the map
 * (usually the key is a field of the value, e.g. a session's sid). Not thread-safe.
 */
#ifndef GW_MAP_H
#define GW_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct gw_map_slot {
	const char *key; /* NULL = empty */
	size_t key_len;
	uint64_t hash;
	void *value;
} gw_map_slot;

typedef struct gw_map {
	gw_map_slot *slots;
	size_t cap; /* power of two or 0 */
	size_t len;
} gw_map;

uint64_t gw_hash(const void *p, size_t n);
void *gw_map_get(const gw_map *m, const char *key, size_t key_len);
/* Insert or replace. Returns 0 or -GW_ENOMEM. */
int gw_map_put(gw_map *m, const char *key, size_t key_len, void *value);
/* Remove; returns the old value or NULL. */
void *gw_map_del(gw_map *m, const char *key, size_t key_len);
void gw_map_free(gw_map *m);
/* A malloc'd snapshot of the values (caller frees the array), for teardown loops
 * that remove entries while walking. *n = count; NULL when empty or out of memory. */
void **gw_map_values(const gw_map *m, size_t *n);

/* Iterate: for (size_t i = 0; i < m->cap; i++) if (m->slots[i].key) ... (do not
 * modify the map while iterating). */

#endif
