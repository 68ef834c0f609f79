/*
 * rooms.c — the room index (see rooms.h).
 *
 * Three hash maps (util/map.h), every key stored inside the value it maps to:
 *   rooms:   name                 → room    (its members, dense)
 *   members: member pointer bytes → rmember (list of its memberships, select mark)
 *   links:   (room*, rmember*)    → rlink   (one membership)
 * so join, leave and has are O(1) average and a member's memberships are walked
 * without searching. A member or room exists only while it has a membership.
 *
 * Each room keeps its members in one dense array (and the index all of them): a
 * broadcast reads member pointers one after another instead of chasing a list, and the
 * common selections — one room, or the whole namespace, with no except — hand that
 * array to the callback as it is. A leave moves the last entry into the hole, so order
 * within a room is unspecified.
 *
 * Other selections mark members instead of building a set: each call takes a new
 * epoch, stamps every excluded member with it, then reports each unstamped member and
 * stamps it — so each member is reported once and nothing is allocated.
 */
#include "sio/rooms.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/map.h"

typedef struct rlink rlink;

/* A dense set: v[0..n) the member pointers, v[cap..cap+n) their owners (the rlink of a
 * room's entry, the rmember of the index's), one allocation. */
typedef struct dense {
	void **v;
	size_t n, cap;
} dense;

typedef struct room {
	dense d;
	size_t name_len;
	char name[]; /* NUL-terminated; the key of ri->rooms */
} room;

typedef struct rmember {
	void *member; /* its bytes are the key of ri->members */
	rlink *head;
	uint64_t mark;
	size_t idx; /* in ri->all */
} rmember;

struct rlink {
	void *key[2];         /* {room *, rmember *}: the key of ri->links */
	size_t idx;           /* in the room's dense set */
	rlink *mprev, *mnext; /* in the member's list */
};

struct room_index {
	gw_map rooms, members, links;
	dense all; /* every member */
	uint64_t epoch;
};

static room *link_room(const rlink *l) { return l->key[0]; }
static rmember *link_member(const rlink *l) { return l->key[1]; }

/* Room for one more entry; the set is unchanged on failure. */
static int dense_reserve(dense *d)
{
	if (d->n < d->cap)
		return 0;
	size_t cap = d->cap ? d->cap * 2 : 1;
	void **v = malloc(2 * cap * sizeof *v);
	if (!v)
		return -GW_ENOMEM;
	if (d->n) {
		memcpy(v, d->v, d->n * sizeof *v);
		memcpy(v + cap, d->v + d->cap, d->n * sizeof *v);
	}
	free(d->v);
	d->v = v;
	d->cap = cap;
	return 0;
}

/* Append (after dense_reserve); returns the entry's index. */
static size_t dense_add(dense *d, void *member, void *owner)
{
	d->v[d->n] = member;
	d->v[d->cap + d->n] = owner;
	return d->n++;
}

/* Remove entry i by moving the last one into it; returns the owner that moved (its
 * index is now i) or NULL. Shrinks the array when it is a quarter full. */
static void *dense_del(dense *d, size_t i)
{
	void *moved = NULL;
	if (i != --d->n) {
		d->v[i] = d->v[d->n];
		d->v[d->cap + i] = moved = d->v[d->cap + d->n];
	}
	if (d->n == 0) {
		free(d->v);
		d->v = NULL;
		d->cap = 0;
	} else if (d->cap >= 8 && d->n <= d->cap / 4) {
		size_t cap = d->cap / 2;
		void **v = malloc(2 * cap * sizeof *v);
		if (v) { /* keeping the larger array is fine too */
			memcpy(v, d->v, d->n * sizeof *v);
			memcpy(v + cap, d->v + d->cap, d->n * sizeof *v);
			free(d->v);
			d->v = v;
			d->cap = cap;
		}
	}
	return moved;
}

static void *dense_owner(const dense *d, size_t i) { return d->v[d->cap + i]; }

room_index *room_index_create(void) { return calloc(1, sizeof(room_index)); }

void room_index_destroy(room_index *ri)
{
	if (!ri)
		return;
	for (size_t i = 0; i < ri->links.cap; i++)
		if (ri->links.slots[i].key)
			free(ri->links.slots[i].value);
	for (size_t i = 0; i < ri->rooms.cap; i++)
		if (ri->rooms.slots[i].key) {
			room *r = ri->rooms.slots[i].value;
			free(r->d.v);
			free(r);
		}
	for (size_t i = 0; i < ri->members.cap; i++)
		if (ri->members.slots[i].key)
			free(ri->members.slots[i].value);
	free(ri->all.v);
	gw_map_free(&ri->links);
	gw_map_free(&ri->rooms);
	gw_map_free(&ri->members);
	free(ri);
}

static room *find_room(const room_index *ri, const char *name)
{
	return gw_map_get(&ri->rooms, name, strlen(name));
}

static rmember *find_member(const room_index *ri, void *member)
{
	return gw_map_get(&ri->members, (const char *)&member, sizeof member);
}

static rlink *find_link(const room_index *ri, room *r, rmember *m)
{
	void *key[2] = {r, m};
	return gw_map_get(&ri->links, (const char *)key, sizeof key);
}

int room_join(room_index *ri, const char *name, void *member, int *created)
{
	if (created)
		*created = 0;
	if (!name)
		return -GW_EINVAL;
	room *r = find_room(ri, name);
	rmember *m = find_member(ri, member);
	if (r && m && find_link(ri, r, m))
		return 0;

	/* Allocate everything first, then insert; undo the inserts if a map cannot grow. */
	room *new_r = NULL;
	rmember *new_m = NULL;
	rlink *l = calloc(1, sizeof *l);
	if (!l)
		return -GW_ENOMEM;
	if (!r) {
		size_t len = strlen(name);
		new_r = calloc(1, sizeof *new_r + len + 1);
		if (!new_r)
			goto nomem;
		memcpy(new_r->name, name, len + 1);
		new_r->name_len = len;
		if (gw_map_put(&ri->rooms, new_r->name, len, new_r))
			goto nomem;
		r = new_r;
	}
	if (dense_reserve(&r->d))
		goto nomem;
	if (!m) {
		if (dense_reserve(&ri->all))
			goto nomem;
		new_m = calloc(1, sizeof *new_m);
		if (!new_m)
			goto nomem;
		new_m->member = member;
		if (gw_map_put(&ri->members, (const char *)&new_m->member, sizeof new_m->member,
			       new_m))
			goto nomem;
		m = new_m;
	}
	l->key[0] = r;
	l->key[1] = m;
	if (gw_map_put(&ri->links, (const char *)l->key, sizeof l->key, l))
		goto nomem;

	if (new_m)
		new_m->idx = dense_add(&ri->all, member, new_m);
	l->idx = dense_add(&r->d, member, l);
	l->mnext = m->head;
	if (m->head)
		m->head->mprev = l;
	m->head = l;
	if (created && new_r)
		*created = 1;
	return 1;
nomem:
	if (new_m && m == new_m)
		gw_map_del(&ri->members, (const char *)&new_m->member, sizeof new_m->member);
	if (new_r && r == new_r)
		gw_map_del(&ri->rooms, new_r->name, new_r->name_len);
	free(new_m);
	if (new_r)
		free(new_r->d.v);
	free(new_r);
	free(l);
	return -GW_ENOMEM;
}

/* Remove one membership; frees the room and the member when they become empty.
 * Returns 1 if the room was deleted. */
static int unlink_one(room_index *ri, rlink *l)
{
	room *r = link_room(l);
	rmember *m = link_member(l);
	gw_map_del(&ri->links, (const char *)l->key, sizeof l->key);
	rlink *moved = dense_del(&r->d, l->idx);
	if (moved)
		moved->idx = l->idx;
	if (l->mprev)
		l->mprev->mnext = l->mnext;
	else
		m->head = l->mnext;
	if (l->mnext)
		l->mnext->mprev = l->mprev;
	free(l);

	if (!m->head) {
		rmember *mm = dense_del(&ri->all, m->idx);
		if (mm)
			mm->idx = m->idx;
		gw_map_del(&ri->members, (const char *)&m->member, sizeof m->member);
		free(m);
	}
	if (r->d.n == 0) {
		gw_map_del(&ri->rooms, r->name, r->name_len);
		free(r);
		return 1;
	}
	return 0;
}

int room_leave(room_index *ri, const char *name, void *member, int *deleted)
{
	if (deleted)
		*deleted = 0;
	if (!name)
		return 0;
	room *r = find_room(ri, name);
	rmember *m = find_member(ri, member);
	rlink *l = r && m ? find_link(ri, r, m) : NULL;
	if (!l)
		return 0;
	int d = unlink_one(ri, l);
	if (deleted)
		*deleted = d;
	return 1;
}

void room_leave_all(room_index *ri, void *member,
		    void (*cb)(const char *room, int deleted, void *arg), void *arg)
{
	rmember *m = find_member(ri, member);
	if (!m)
		return;
	/* next is read before unlinking: the last unlink frees m itself. */
	for (rlink *l = m->head, *next; l; l = next) {
		next = l->mnext;
		if (cb)
			cb(link_room(l)->name, link_room(l)->d.n == 1, arg);
		unlink_one(ri, l);
	}
}

size_t room_index_rooms(const room_index *ri) { return ri->rooms.len; }
size_t room_index_members(const room_index *ri) { return ri->members.len; }

size_t room_size(const room_index *ri, const char *name)
{
	const room *r = name ? find_room(ri, name) : NULL;
	return r ? r->d.n : 0;
}

int room_has(const room_index *ri, const char *name, void *member)
{
	room *r = name ? find_room(ri, name) : NULL;
	rmember *m = find_member(ri, member);
	return r && m && find_link(ri, r, m);
}

void room_member_rooms(const room_index *ri, void *member,
		       void (*cb)(const char *room, void *arg), void *arg)
{
	rmember *m = find_member(ri, member);
	/* next is read first, so cb may leave the room it is given (and only that one) */
	for (rlink *l = m ? m->head : NULL, *next; l; l = next) {
		next = l->mnext;
		cb(link_room(l)->name, arg);
	}
}

/* Members handed to the callback at a time by the marking walk. */
#define SELECT_BATCH 64

typedef struct picker {
	void *buf[SELECT_BATCH];
	size_t n, count;
	uint64_t e;
	room_select_cb cb;
	void *arg;
} picker;

static void pick(picker *p, rmember *m)
{
	if (m->mark == p->e)
		return;
	m->mark = p->e;
	p->buf[p->n++] = m->member;
	p->count++;
	if (p->n == SELECT_BATCH) {
		p->cb(p->buf, p->n, p->arg);
		p->n = 0;
	}
}

size_t room_select(room_index *ri, const char *const *rooms, size_t n_rooms,
		   const char *const *except, size_t n_except, room_select_cb cb, void *arg)
{
	if (n_except == 0 && n_rooms <= 1) { /* no duplicates possible: the array as it is */
		const dense *d = &ri->all;
		if (n_rooms == 1) {
			room *r = rooms[0] ? find_room(ri, rooms[0]) : NULL;
			if (!r)
				return 0;
			d = &r->d;
		}
		if (d->n)
			cb(d->v, d->n, arg);
		return d->n;
	}
	picker p = {.e = ++ri->epoch, .cb = cb, .arg = arg};
	for (size_t i = 0; i < n_except; i++) {
		room *r = except[i] ? find_room(ri, except[i]) : NULL;
		for (size_t j = 0; r && j < r->d.n; j++)
			link_member(dense_owner(&r->d, j))->mark = p.e;
	}
	if (n_rooms == 0) {
		for (size_t j = 0; j < ri->all.n; j++)
			pick(&p, dense_owner(&ri->all, j));
	}
	for (size_t i = 0; i < n_rooms; i++) {
		room *r = rooms[i] ? find_room(ri, rooms[i]) : NULL;
		for (size_t j = 0; r && j < r->d.n; j++)
			pick(&p, link_member(dense_owner(&r->d, j)));
	}
	if (p.n)
		cb(p.buf, p.n, arg);
	return p.count;
}
