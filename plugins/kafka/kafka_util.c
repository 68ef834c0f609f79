/*
 * kafka_util.c — small helpers the Kafka plugin's files share: a string map (chained
 * hash, FNV-1a), id lists, the monotonic clock, health texts, Kafka's topic names.
 */
#include "kafka_int.h"

static uint64_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

sent *kafka_smap_get(const smap *m, const char *key)
{
	if (!m->nb)
		return NULL;
	uint64_t h = str_hash(key);
	for (sent *e = m->b[h % m->nb]; e; e = e->next)
		if (e->hash == h && strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

/* Get or insert (val = val2 = 0, ptr = NULL). NULL when out of memory. */
sent *kafka_smap_put(smap *m, const char *key, bool *created)
{
	if (created)
		*created = false;
	sent *e = kafka_smap_get(m, key);
	if (e)
		return e;
	if (m->n >= m->nb) {
		size_t nb = m->nb ? m->nb * 2 : 64;
		sent **b = calloc(nb, sizeof *b);
		if (!b)
			return NULL;
		for (size_t i = 0; i < m->nb; i++)
			for (sent *x = m->b[i], *next; x; x = next) {
				next = x->next;
				x->next = b[x->hash % nb];
				b[x->hash % nb] = x;
			}
		free(m->b);
		m->b = b;
		m->nb = nb;
	}
	e = calloc(1, sizeof *e);
	if (!e || !(e->key = strdup(key))) {
		free(e);
		return NULL;
	}
	e->hash = str_hash(key);
	e->next = m->b[e->hash % m->nb];
	m->b[e->hash % m->nb] = e;
	m->n++;
	if (created)
		*created = true;
	return e;
}

/* Remove `key`; returns its ptr (the caller frees it) or NULL. */
void *kafka_smap_del(smap *m, const char *key)
{
	if (!m->nb)
		return NULL;
	uint64_t h = str_hash(key);
	for (sent **pp = &m->b[h % m->nb]; *pp; pp = &(*pp)->next) {
		sent *e = *pp;
		if (e->hash == h && strcmp(e->key, key) == 0) {
			*pp = e->next;
			void *ptr = e->ptr;
			free(e->key);
			free(e);
			m->n--;
			return ptr;
		}
	}
	return NULL;
}

void kafka_smap_free(smap *m, void (*free_ptr)(void *))
{
	for (size_t i = 0; i < m->nb; i++)
		for (sent *e = m->b[i], *next; e; e = next) {
			next = e->next;
			if (free_ptr)
				free_ptr(e->ptr);
			free(e->key);
			free(e);
		}
	free(m->b);
	memset(m, 0, sizeof *m);
}

/* ---- small helpers ----------------------------------------------------------- */

int64_t kafka_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void kafka_set_reason(kafka *k, char *field, const char *fmt, ...)
{
	pthread_mutex_lock(&k->st_lock);
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(field, 256, fmt, ap);
		va_end(ap);
	} else {
		field[0] = 0;
	}
	pthread_mutex_unlock(&k->st_lock);
}

/* Kafka's legal topic names: [A-Za-z0-9._-], 1..249 characters. */
bool kafka_topic_legal(const char *t)
{
	size_t n = strlen(t);
	if (n == 0 || n > MAX_TOPIC_LEN || !strcmp(t, ".") || !strcmp(t, ".."))
		return false;
	for (const char *p = t; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '_' || *p == '-'))
			return false;
	return true;
}

int kafka_idlist_add(idlist *l, uint64_t id)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4;
		uint64_t *ids = realloc(l->ids, cap * sizeof *ids);
		if (!ids)
			return -1;
		l->ids = ids;
		l->cap = cap;
	}
	l->ids[l->n++] = id;
	return 0;
}

bool kafka_idlist_has(const idlist *l, uint64_t id)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->ids[i] == id)
			return true;
	return false;
}

void kafka_idlist_free(void *p)
{
	idlist *l = p;
	if (l) {
		free(l->ids);
		free(l);
	}
}

void kafka_free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}
