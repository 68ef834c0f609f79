/*
 * recovery.c — the replay log and the snapshots of lost sockets (see recovery.h).
 *
 * Log entries are numbered: the entry at ring[head] has position `first`, the next one
 * logged gets `first + len`. An offset names a position ("<tag><hex position>", the tag
 * a random prefix of this process, so an offset of an earlier run is no position
 * here), so finding it is arithmetic, not a search.
 */
#include "sio/recovery.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/map.h"
#include "util/rand.h"

#define TAG_LEN 6

typedef struct entry {
	int64_t at_ms;
	uint64_t pos;        /* its position in the log */
	size_t bytes;
	char *id;            /* a bus position naming it (in by_id), or NULL */
	char *nsp;
	char **rooms, **except;
	size_t n_rooms, n_except, n_frames;
	gw_frame *frames[]; /* then the strings, in the same allocation */
} entry;

struct rec_store {
	int64_t window_ms;
	size_t max_bytes;
	entry **ring;        /* cap a power of two */
	size_t head, len, cap;
	uint64_t first;      /* position of ring[head] */
	gw_map sessions;     /* pid → rec_session */
	gw_map by_id;        /* entry id → entry */
	rec_session *oldest, *newest;
	rec_stats stats;
	char tag[TAG_LEN + 1];
};

rec_store *rec_store_create(int64_t window_ms, size_t max_log_bytes)
{
	rec_store *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->window_ms = window_ms;
	r->max_bytes = max_log_bytes;
	char id[GW_ID_LEN + 1];
	gw_rand_id(id);
	memcpy(r->tag, id, TAG_LEN);
	r->tag[TAG_LEN] = 0;
	return r;
}

static void entry_free(entry *e)
{
	for (size_t i = 0; i < e->n_frames; i++)
		gw_frame_unref(e->frames[i]);
	free(e);
}

void rec_session_free(rec_session *s) { free(s); }

void rec_store_destroy(rec_store *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->len; i++)
		entry_free(r->ring[(r->head + i) & (r->cap - 1)]);
	free(r->ring);
	for (rec_session *s = r->oldest, *n; s; s = n) {
		n = s->next;
		free(s);
	}
	gw_map_free(&r->sessions);
	gw_map_free(&r->by_id);
	free(r);
}

const rec_stats *rec_store_stats(const rec_store *r) { return &r->stats; }

void rec_next_offset(const rec_store *r, char *out)
{
	snprintf(out, REC_OFFSET_MAX, "\"%s%" PRIx64 "\"", r->tag, r->first + r->len);
}

/* The position an offset names, or -1 when it is none logged here. */
static int64_t offset_pos(const rec_store *r, const char *offset)
{
	if (strncmp(offset, r->tag, TAG_LEN) != 0) {
		const entry *e = r->by_id.len ? gw_map_get(&r->by_id, offset, strlen(offset)) : NULL;
		return e ? (int64_t)e->pos : -1;
	}
	const char *p = offset + TAG_LEN;
	if (!*p || strlen(p) > 16 || strspn(p, "0123456789abcdef") != strlen(p))
		return -1;
	return (int64_t)strtoull(p, NULL, 16);
}

static void drop_oldest(rec_store *r)
{
	entry *e = r->ring[r->head];
	r->head = (r->head + 1) & (r->cap - 1);
	r->len--;
	r->first++;
	r->stats.log_bytes -= e->bytes;
	if (e->id && gw_map_get(&r->by_id, e->id, strlen(e->id)) == e)
		gw_map_del(&r->by_id, e->id, strlen(e->id));
	entry_free(e);
}

/* Copy n strings after *p, pointers into v. */
static void copy_strings(char **v, const char *const *src, size_t n, char **p)
{
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(src[i]) + 1;
		memcpy(*p, src[i], l);
		v[i] = *p;
		*p += l;
	}
}

static size_t strings_size(const char *const *v, size_t n)
{
	size_t b = 0;
	for (size_t i = 0; i < n; i++)
		b += strlen(v[i]) + 1;
	return b;
}

int rec_log(rec_store *r, int64_t now_ms, const char *id, const char *nsp, const char *const *rooms, size_t n_rooms,
	    const char *const *except, size_t n_except, gw_frame *const *frames, size_t n_frames)
{
	if (r->len == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 256;
		entry **ring = malloc(cap * sizeof *ring);
		if (!ring)
			return -GW_ENOMEM;
		for (size_t i = 0; i < r->len; i++)
			ring[i] = r->ring[(r->head + i) & (r->cap - 1)];
		free(r->ring);
		r->ring = ring;
		r->cap = cap;
		r->head = 0;
	}
	size_t strs = strlen(nsp) + 1 + (id ? strlen(id) + 1 : 0) + strings_size(rooms, n_rooms) +
		      strings_size(except, n_except);
	size_t head = sizeof(entry) + n_frames * sizeof(gw_frame *) + (n_rooms + n_except) * sizeof(char *);
	entry *e = malloc(head + strs);
	if (!e)
		return -GW_ENOMEM;
	e->at_ms = now_ms;
	e->n_frames = n_frames;
	e->n_rooms = n_rooms;
	e->n_except = n_except;
	e->rooms = (char **)(void *)((char *)e + sizeof(entry) + n_frames * sizeof(gw_frame *));
	e->except = e->rooms + n_rooms;
	char *p = (char *)(e->except + n_except);
	e->nsp = p;
	memcpy(p, nsp, strlen(nsp) + 1);
	p += strlen(nsp) + 1;
	copy_strings(e->rooms, rooms, n_rooms, &p);
	copy_strings(e->except, except, n_except, &p);
	e->id = NULL;
	if (id) {
		e->id = p;
		memcpy(p, id, strlen(id) + 1);
	}
	e->pos = r->first + r->len;
	e->bytes = head + strs;
	for (size_t i = 0; i < n_frames; i++) {
		e->frames[i] = gw_frame_ref(frames[i]);
		e->bytes += sizeof(gw_frame) + GW_FRAME_HEADROOM + frames[i]->len + 1;
	}
	if (e->id && gw_map_put(&r->by_id, e->id, strlen(e->id), e)) {
		entry_free(e);
		return -GW_ENOMEM;
	}
	r->ring[(r->head + r->len) & (r->cap - 1)] = e;
	r->len++;
	r->stats.logged++;
	r->stats.log_bytes += e->bytes;
	/* room for it: the oldest go (the newest entry always stays) */
	while (r->stats.log_bytes > r->max_bytes && r->len > 1) {
		drop_oldest(r);
		r->stats.evicted++;
	}
	r->stats.log_packets = r->len;
	return 0;
}

static void unlink_session(rec_store *r, rec_session *s)
{
	gw_map_del(&r->sessions, s->pid, strlen(s->pid));
	r->stats.sessions -= s->counted;
	if (s->prev)
		s->prev->next = s->next;
	else
		r->oldest = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		r->newest = s->prev;
	s->prev = s->next = NULL;
}

void rec_forget(rec_store *r, const char *pid, uint32_t gen)
{
	rec_session *s = gw_map_get(&r->sessions, pid, strlen(pid));
	if (s && s->gen <= gen) {
		unlink_session(r, s);
		free(s);
	}
}

int rec_persist(rec_store *r, int64_t now_ms, const char *pid, const char *sid, const char *nsp,
		const char *data, const char *const *rooms, size_t n_rooms, uint32_t gen, bool counted)
{
	rec_session *held = gw_map_get(&r->sessions, pid, strlen(pid));
	if (held && held->gen > gen)
		return 0; /* a later life of the socket is known */
	size_t strs = strlen(pid) + strlen(sid) + strlen(nsp) + 3 + (data ? strlen(data) + 1 : 0) +
		      strings_size(rooms, n_rooms);
	rec_session *s = malloc(sizeof *s + n_rooms * sizeof(char *) + strs);
	if (!s)
		return -GW_ENOMEM;
	memset(s, 0, sizeof *s);
	s->rooms = (char **)(void *)(s + 1);
	s->n_rooms = n_rooms;
	char *p = (char *)(s->rooms + n_rooms);
	const char *one[4] = {pid, sid, nsp, data};
	char **dst[4] = {&s->pid, &s->sid, &s->nsp, &s->data};
	for (int i = 0; i < 4; i++) {
		if (!one[i])
			continue;
		size_t l = strlen(one[i]) + 1;
		memcpy(p, one[i], l);
		*dst[i] = p;
		p += l;
	}
	copy_strings(s->rooms, rooms, n_rooms, &p);
	s->deadline_ms = now_ms + r->window_ms;
	s->gen = gen;
	s->counted = counted;
	rec_session *old = gw_map_get(&r->sessions, pid, strlen(pid));
	if (old) { /* (a pid is random: only a bug reuses one) */
		unlink_session(r, old);
		free(old);
	}
	if (gw_map_put(&r->sessions, s->pid, strlen(s->pid), s)) {
		free(s);
		return -GW_ENOMEM;
	}
	s->prev = r->newest;
	if (r->newest)
		r->newest->next = s;
	else
		r->oldest = s;
	r->newest = s;
	r->stats.sessions += s->counted;
	return 0;
}

static void count_frames(void *arg, gw_frame *const *frames, size_t n)
{
	(void)frames;
	*(size_t *)arg += n;
}

rec_session *rec_take(rec_store *r, int64_t now_ms, const char *pid, const char *offset, const char *nsp,
		      size_t max_frames, uint64_t *from)
{
	rec_session *s = gw_map_get(&r->sessions, pid, strlen(pid));
	int64_t pos = offset_pos(r, offset);
	/* the offset's own packet must still be logged: everything after it is then too */
	if (!s || s->deadline_ms < now_ms || strcmp(s->nsp, nsp) != 0 || pos < 0 || (uint64_t)pos < r->first ||
	    (uint64_t)pos >= r->first + r->len) {
		r->stats.failed++;
		return NULL;
	}
	unlink_session(r, s);
	size_t frames = 0;
	rec_replay(r, s, (uint64_t)pos + 1, count_frames, &frames);
	if (frames > max_frames) { /* more than its connection may queue: it cannot come back */
		free(s);
		r->stats.failed++;
		r->stats.too_many++;
		return NULL;
	}
	r->stats.recovered++;
	*from = (uint64_t)pos + 1;
	return s;
}

static bool has_room(const rec_session *s, char *const *rooms, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < s->n_rooms; j++)
			if (strcmp(rooms[i], s->rooms[j]) == 0)
				return true;
	return false;
}

void rec_replay(const rec_store *r, const rec_session *s, uint64_t from,
		void (*fn)(void *arg, gw_frame *const *frames, size_t n), void *arg)
{
	for (uint64_t pos = from < r->first ? r->first : from; pos < r->first + r->len; pos++) {
		const entry *e = r->ring[(r->head + (pos - r->first)) & (r->cap - 1)];
		if (strcmp(e->nsp, s->nsp) != 0)
			continue;
		/* socket.io's shouldIncludePacket: to all or to one of its rooms, and none of
		 * its rooms excepted */
		if ((e->n_rooms == 0 || has_room(s, e->rooms, e->n_rooms)) && !has_room(s, e->except, e->n_except))
			fn(arg, e->frames, e->n_frames);
	}
}

void rec_expire(rec_store *r, int64_t now_ms)
{
	while (r->oldest && r->oldest->deadline_ms < now_ms) {
		rec_session *s = r->oldest;
		unlink_session(r, s);
		r->stats.expired += s->counted;
		free(s);
	}
	while (r->len && r->ring[r->head]->at_ms + r->window_ms < now_ms)
		drop_oldest(r);
	r->stats.log_packets = r->len;
}
