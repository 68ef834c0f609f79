#include "map.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>

uint64_t gw_hash(const void *p, size_t n)
{
	/* FNV-1a 64: keys are short ids and room names; good enough, no seed needed
	 * because ids are random and rooms are bounded per socket. */
	const uint8_t *s = p;
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 1099511628211ull;
	}
	return h ^ (h >> 29);
}

static gw_map_slot *find(const gw_map *m, const char *key, size_t len, uint64_t h)
{
	if (!m->cap)
		return NULL;
	size_t mask = m->cap - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		gw_map_slot *s = &m->slots[i];
		if (!s->key)
			return NULL;
		if (s->hash == h && s->key_len == len && memcmp(s->key, key, len) == 0)
			return s;
	}
}

void *gw_map_get(const gw_map *m, const char *key, size_t key_len)
{
	gw_map_slot *s = find(m, key, key_len, gw_hash(key, key_len));
	return s ? s->value : NULL;
}

static void place(gw_map_slot *slots, size_t cap, const gw_map_slot *e)
{
	size_t mask = cap - 1;
	size_t i = e->hash & mask;
	while (slots[i].key)
		i = (i + 1) & mask;
	slots[i] = *e;
}

static int grow(gw_map *m)
{
	size_t cap = m->cap ? m->cap * 2 : 16;
	gw_map_slot *slots = calloc(cap, sizeof *slots);
	if (!slots)
		return -GW_ENOMEM;
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].key)
			place(slots, cap, &m->slots[i]);
	free(m->slots);
	m->slots = slots;
	m->cap = cap;
	return 0;
}

int gw_map_put(gw_map *m, const char *key, size_t key_len, void *value)
{
	uint64_t h = gw_hash(key, key_len);
	gw_map_slot *s = find(m, key, key_len, h);
	if (s) {
		s->key = key; /* the new owner's key storage */
		s->value = value;
		return 0;
	}
	if ((m->len + 1) * 4 > m->cap * 3 && grow(m))
		return -GW_ENOMEM;
	gw_map_slot e = {key, key_len, h, value};
	place(m->slots, m->cap, &e);
	m->len++;
	return 0;
}

void *gw_map_del(gw_map *m, const char *key, size_t key_len)
{
	gw_map_slot *s = find(m, key, key_len, gw_hash(key, key_len));
	if (!s)
		return NULL;
	void *v = s->value;
	size_t mask = m->cap - 1;
	size_t i = (size_t)(s - m->slots);
	/* backward-shift deletion keeps probe chains intact without tombstones */
	for (size_t j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
		size_t home = m->slots[j].hash & mask;
		/* move j into hole i if home is not cyclically in (i, j] */
		if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
			m->slots[i] = m->slots[j];
			i = j;
		}
	}
	m->slots[i].key = NULL;
	m->len--;
	return v;
}

void gw_map_free(gw_map *m)
{
	free(m->slots);
	m->slots = NULL;
	m->cap = m->len = 0;
}

void **gw_map_values(const gw_map *m, size_t *n)
{
	*n = 0;
	if (!m->len)
		return NULL;
	void **v = malloc(m->len * sizeof *v);
	if (!v)
		return NULL;
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].key)
			v[(*n)++] = m->slots[i].value;
	return v;
}
