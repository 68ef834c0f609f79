/*
 * rooms.c — the room index (see rooms.h).
 *
 * Three hash maps (util/map.h), every key stored inside the value it maps to:
 *   rooms:   name                 → room    (list of its memberships)
 *   members: member pointer bytes → rmember (list of its memberships, select mark)
 *   links:   (room*, rmember*)    → rlink   (one membership, on both lists)
 * so join, leave and has are O(1) average and a member's or room's memberships are
 * walked without searching. A member or room exists only while it has a membership.
 *
 * room_select marks members instead of building a set: each call takes a new epoch,
 * stamps every excluded member with it, then calls cb for each unstamped member and
 * stamps it — so each member is reported once and nothing is allocated.
 */
#include "sio/rooms.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/map.h"

typedef struct rlink rlink;

typedef struct room {
	rlink *head;
	size_t n;
	size_t name_len;
	char name[]; /* NUL-terminated; the key of ri->rooms */
} room;

typedef struct rmember {
	void *member; /* its bytes are the key of ri->members */
	rlink *head;
	uint64_t mark;
} rmember;

struct rlink {
	void *key[2]; /* {room *, rmember *}: the key of ri->links */
	rlink *rprev, *rnext; /* in the room's list */
	rlink *mprev, *mnext; /* in the member's list */
};

struct room_index {
	gw_map rooms, members, links;
	uint64_t epoch;
};

static room *link_room(const rlink *l) { return l->key[0]; }
static rmember *link_member(const rlink *l) { return l->key[1]; }

room_index *room_index_create(void) { return calloc(1, sizeof(room_index)); }

void room_index_destroy(room_index *ri)
{
	if (!ri)
		return;
	for (size_t i = 0; i < ri->links.cap; i++)
		if (ri->links.slots[i].key)
			free(ri->links.slots[i].value);
	for (size_t i = 0; i < ri->rooms.cap; i++)
		if (ri->rooms.slots[i].key)
			free(ri->rooms.slots[i].value);
	for (size_t i = 0; i < ri->members.cap; i++)
		if (ri->members.slots[i].key)
			free(ri->members.slots[i].value);
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
	if (!m) {
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

	l->rnext = r->head;
	if (r->head)
		r->head->rprev = l;
	r->head = l;
	r->n++;
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
	if (l->rprev)
		l->rprev->rnext = l->rnext;
	else
		r->head = l->rnext;
	if (l->rnext)
		l->rnext->rprev = l->rprev;
	if (l->mprev)
		l->mprev->mnext = l->mnext;
	else
		m->head = l->mnext;
	if (l->mnext)
		l->mnext->mprev = l->mprev;
	free(l);

	if (!m->head) {
		gw_map_del(&ri->members, (const char *)&m->member, sizeof m->member);
		free(m);
	}
	if (--r->n == 0) {
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
			cb(link_room(l)->name, link_room(l)->n == 1, arg);
		unlink_one(ri, l);
	}
}

size_t room_index_rooms(const room_index *ri) { return ri->rooms.len; }
size_t room_index_members(const room_index *ri) { return ri->members.len; }

size_t room_size(const room_index *ri, const char *name)
{
	const room *r = name ? find_room(ri, name) : NULL;
	return r ? r->n : 0;
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

size_t room_select(room_index *ri, const char *const *rooms, size_t n_rooms,
		   const char *const *except, size_t n_except,
		   void (*cb)(void *member, void *arg), void *arg)
{
	uint64_t e = ++ri->epoch;
	size_t count = 0;
	for (size_t i = 0; i < n_except; i++) {
		room *r = except[i] ? find_room(ri, except[i]) : NULL;
		for (rlink *l = r ? r->head : NULL; l; l = l->rnext)
			link_member(l)->mark = e;
	}
	if (n_rooms == 0) {
		for (size_t i = 0; i < ri->members.cap; i++) {
			rmember *m = ri->members.slots[i].key ? ri->members.slots[i].value : NULL;
			if (m && m->mark != e) {
				m->mark = e;
				cb(m->member, arg);
				count++;
			}
		}
		return count;
	}
	for (size_t i = 0; i < n_rooms; i++) {
		room *r = rooms[i] ? find_room(ri, rooms[i]) : NULL;
		for (rlink *l = r ? r->head : NULL; l; l = l->rnext) {
			rmember *m = link_member(l);
			if (m->mark != e) {
				m->mark = e;
				cb(m->member, arg);
				count++;
			}
		}
	}
	return count;
}
