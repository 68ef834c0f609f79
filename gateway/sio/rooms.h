/*
 * rooms.h — the room index of one namespace: room name → members, member → rooms.
 * Members are opaque pointers (sockets). Service-thread only.
 */
#ifndef GW_ROOMS_H
#define GW_ROOMS_H

#include <stddef.h>

typedef struct room_index room_index;

room_index *room_index_create(void);
void room_index_destroy(room_index *ri);

/* Returns 1 if member newly joined (and *created = 1 if the room is new), 0 if it was
 * already in the room, -GW_ENOMEM (index unchanged), -GW_EINVAL (room NULL). created
 * may be NULL. The room name is copied. A member exists in the index only while it is
 * in at least one room; a room only while it has a member. */
int room_join(room_index *ri, const char *room, void *member, int *created);
/* Returns 1 if member left (and *deleted = 1 if the room became empty and was removed),
 * 0 if it was not in the room. deleted may be NULL. */
int room_leave(room_index *ri, const char *room, void *member, int *deleted);
/* Leave every room; cb (may be NULL) is called for each room left, before it is
 * removed, with deleted = 1 if the room became empty. */
void room_leave_all(room_index *ri, void *member,
		    void (*cb)(const char *room, int deleted, void *arg), void *arg);

size_t room_index_rooms(const room_index *ri);    /* number of non-empty rooms */
size_t room_index_members(const room_index *ri);  /* number of distinct members */
size_t room_size(const room_index *ri, const char *room);
int room_has(const room_index *ri, const char *room, void *member);

/* Call cb for each room of member (order unspecified). cb may make member leave the
 * room it is given, and must not otherwise modify the index. */
void room_member_rooms(const room_index *ri, void *member,
		       void (*cb)(const char *room, void *arg), void *arg);

/*
 * Target selection: every member in the union of `rooms` (all members when n_rooms is
 * 0) that is in none of `except`, each exactly once, handed to cb in batches (members[0..n),
 * n > 0, order unspecified; the array is the index's own or a buffer, valid for the call
 * only). Returns the number of members selected. cb must not modify the index.
 */
typedef void (*room_select_cb)(void *const *members, size_t n, void *arg);
size_t room_select(room_index *ri, const char *const *rooms, size_t n_rooms,
		   const char *const *except, size_t n_except, room_select_cb cb, void *arg);

#endif
