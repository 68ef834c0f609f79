/* Room index: joins, leaves, counts, target selection; checked against a naive model. */
#include "../test.h"
#include "sio/rooms.h"
#include "util/err.h"

#include <stdint.h>

static int M[256]; /* members are the addresses of these */

typedef struct seen {
	int hits[256];
	size_t calls;
} seen;

static void on_members(void *const *members, size_t n, void *arg)
{
	seen *s = arg;
	CHECK(n > 0);
	for (size_t i = 0; i < n; i++) {
		s->hits[(int *)members[i] - M]++;
		s->calls++;
	}
}

static size_t select_(room_index *ri, const char *const *rooms, size_t nr,
		      const char *const *except, size_t ne, seen *s)
{
	memset(s, 0, sizeof *s);
	size_t n = room_select(ri, rooms, nr, except, ne, on_members, s);
	CHECK_EQ_INT(n, s->calls);
	for (int i = 0; i < 256; i++)
		CHECK(s->hits[i] <= 1); /* each member once */
	return n;
}

TEST(join_leave)
{
	room_index *ri = room_index_create();
	int created = -1, deleted = -1;
	CHECK_EQ_INT(room_join(ri, "a", &M[0], &created), 1);
	CHECK_EQ_INT(created, 1);
	CHECK_EQ_INT(room_join(ri, "a", &M[0], &created), 0);
	CHECK_EQ_INT(created, 0);
	CHECK_EQ_INT(room_join(ri, "a", &M[1], &created), 1);
	CHECK_EQ_INT(created, 0);
	CHECK_EQ_INT(room_join(ri, "b", &M[1], NULL), 1);
	CHECK_EQ_INT(room_join(ri, "", &M[2], NULL), 1); /* the empty name is a room too */
	CHECK_EQ_INT(room_join(ri, NULL, &M[2], NULL), -GW_EINVAL);
	CHECK_EQ_INT(room_index_rooms(ri), 3);
	CHECK_EQ_INT(room_index_members(ri), 3);
	CHECK_EQ_INT(room_size(ri, "a"), 2);
	CHECK_EQ_INT(room_size(ri, "b"), 1);
	CHECK_EQ_INT(room_size(ri, "zz"), 0);
	CHECK(room_has(ri, "a", &M[0]));
	CHECK(!room_has(ri, "b", &M[0]));
	CHECK(!room_has(ri, "zz", &M[0]));
	CHECK(!room_has(ri, "a", &M[9]));

	CHECK_EQ_INT(room_leave(ri, "a", &M[9], &deleted), 0);
	CHECK_EQ_INT(deleted, 0);
	CHECK_EQ_INT(room_leave(ri, "zz", &M[0], &deleted), 0);
	CHECK_EQ_INT(room_leave(ri, "b", &M[0], &deleted), 0);
	CHECK_EQ_INT(room_leave(ri, "a", &M[0], &deleted), 1);
	CHECK_EQ_INT(deleted, 0);
	CHECK_EQ_INT(room_index_members(ri), 2); /* M0 is in no room any more */
	CHECK_EQ_INT(room_leave(ri, "a", &M[0], &deleted), 0);
	CHECK_EQ_INT(room_leave(ri, "a", &M[1], &deleted), 1);
	CHECK_EQ_INT(deleted, 1);
	CHECK_EQ_INT(room_index_rooms(ri), 2);
	CHECK_EQ_INT(room_index_members(ri), 2);
	CHECK_EQ_INT(room_size(ri, "a"), 0);
	/* a room can be recreated */
	CHECK_EQ_INT(room_join(ri, "a", &M[0], &created), 1);
	CHECK_EQ_INT(created, 1);
	room_index_destroy(ri); /* with members still inside: valgrind checks it frees all */
	room_index_destroy(NULL);
}

typedef struct left {
	char names[8][8];
	int deleted[8];
	int n;
} left;

static void on_left(const char *room, int deleted, void *arg)
{
	left *l = arg;
	snprintf(l->names[l->n], sizeof l->names[0], "%s", room);
	l->deleted[l->n++] = deleted;
}

static void on_room(const char *room, void *arg)
{
	left *l = arg;
	snprintf(l->names[l->n++], sizeof l->names[0], "%s", room);
}

static int find(const left *l, const char *name)
{
	for (int i = 0; i < l->n; i++)
		if (strcmp(l->names[i], name) == 0)
			return i;
	return -1;
}

TEST(leave_all_and_member_rooms)
{
	room_index *ri = room_index_create();
	room_join(ri, "s0", &M[0], NULL);
	room_join(ri, "lobby", &M[0], NULL);
	room_join(ri, "lobby", &M[1], NULL);
	room_join(ri, "vip", &M[0], NULL);

	left l = {0};
	room_member_rooms(ri, &M[0], on_room, &l);
	CHECK_EQ_INT(l.n, 3);
	CHECK(find(&l, "s0") >= 0 && find(&l, "lobby") >= 0 && find(&l, "vip") >= 0);
	memset(&l, 0, sizeof l);
	room_member_rooms(ri, &M[7], on_room, &l);
	CHECK_EQ_INT(l.n, 0);

	room_leave_all(ri, &M[0], on_left, &l);
	CHECK_EQ_INT(l.n, 3);
	CHECK_EQ_INT(l.deleted[find(&l, "s0")], 1);
	CHECK_EQ_INT(l.deleted[find(&l, "lobby")], 0);
	CHECK_EQ_INT(l.deleted[find(&l, "vip")], 1);
	CHECK_EQ_INT(room_index_rooms(ri), 1);
	CHECK_EQ_INT(room_index_members(ri), 1);
	CHECK_EQ_INT(room_size(ri, "lobby"), 1);
	room_leave_all(ri, &M[0], on_left, &l); /* not a member any more: no calls */
	CHECK_EQ_INT(l.n, 3);
	room_leave_all(ri, &M[1], NULL, NULL);
	CHECK_EQ_INT(room_index_rooms(ri), 0);
	CHECK_EQ_INT(room_index_members(ri), 0);
	room_index_destroy(ri);
}

static room_index *g_ri;

static void leave_given(const char *room, void *arg)
{
	room_leave(g_ri, room, arg, NULL);
}

TEST(member_rooms_may_leave_current)
{
	room_index *ri = g_ri = room_index_create();
	room_join(ri, "a", &M[0], NULL);
	room_join(ri, "b", &M[0], NULL);
	room_join(ri, "c", &M[0], NULL);
	room_join(ri, "c", &M[1], NULL);
	room_member_rooms(ri, &M[0], leave_given, &M[0]);
	CHECK_EQ_INT(room_index_rooms(ri), 1);
	CHECK_EQ_INT(room_index_members(ri), 1);
	room_index_destroy(ri);
}

TEST(select_targets)
{
	room_index *ri = room_index_create();
	/* s<i> is each member's own room; lobby = 0..5, vip = 4..7, muted = 1, 5 */
	for (int i = 0; i < 8; i++) {
		char own[8];
		snprintf(own, sizeof own, "s%d", i);
		room_join(ri, own, &M[i], NULL);
		if (i <= 5)
			room_join(ri, "lobby", &M[i], NULL);
		if (i >= 4)
			room_join(ri, "vip", &M[i], NULL);
		if (i == 1 || i == 5)
			room_join(ri, "muted", &M[i], NULL);
	}
	seen s;
	const char *lv[] = {"lobby", "vip"}, *muted[] = {"muted"}, *none[] = {"nope"};
	CHECK_EQ_INT(select_(ri, lv, 2, NULL, 0, &s), 8);
	CHECK_EQ_INT(select_(ri, lv, 2, muted, 1, &s), 6);
	CHECK(!s.hits[1] && !s.hits[5] && s.hits[4] && s.hits[7]);
	CHECK_EQ_INT(select_(ri, NULL, 0, NULL, 0, &s), 8); /* whole namespace */
	CHECK_EQ_INT(select_(ri, NULL, 0, muted, 1, &s), 6);
	CHECK_EQ_INT(select_(ri, none, 1, NULL, 0, &s), 0);
	CHECK_EQ_INT(select_(ri, lv, 2, none, 1, &s), 8);
	const char *dup[] = {"vip", "vip", "s4", "s3"};
	CHECK_EQ_INT(select_(ri, dup, 4, NULL, 0, &s), 5);
	const char *self[] = {"s3"}, *both[] = {"muted", "s3"};
	CHECK_EQ_INT(select_(ri, self, 1, self, 1, &s), 0);
	CHECK_EQ_INT(select_(ri, lv, 2, both, 2, &s), 5);
	/* marks from one call do not leak into the next */
	CHECK_EQ_INT(select_(ri, lv, 2, NULL, 0, &s), 8);
	room_index_destroy(ri);
}

/* More members than one callback batch, every path; leaves reorder the dense arrays. */
TEST(select_many)
{
	room_index *ri = room_index_create();
	for (int i = 0; i < 200; i++) {
		room_join(ri, "big", &M[i], NULL);
		if (i % 3 == 0)
			room_join(ri, "third", &M[i], NULL);
	}
	for (int i = 0; i < 200; i += 7)
		room_leave(ri, "big", &M[i], NULL); /* 29 leave; the multiples of 21 stay in third */
	seen s;
	const char *big[] = {"big"}, *third[] = {"third"}, *both[] = {"big", "third"};
	CHECK_EQ_INT(select_(ri, big, 1, NULL, 0, &s), 171);
	for (int i = 0; i < 200; i++)
		CHECK_EQ_INT(s.hits[i], i % 7 != 0);
	CHECK_EQ_INT(select_(ri, NULL, 0, NULL, 0, &s), 181); /* 171 + 10 multiples of 21 */
	CHECK_EQ_INT(select_(ri, both, 2, NULL, 0, &s), 181);
	CHECK_EQ_INT(select_(ri, big, 1, third, 1, &s), 114); /* 171 - 57 (i % 3 == 0, i % 7 != 0) */
	for (int i = 0; i < 200; i++)
		CHECK_EQ_INT(s.hits[i], i % 7 != 0 && i % 3 != 0);
	CHECK_EQ_INT(select_(ri, NULL, 0, third, 1, &s), 114);
	for (int i = 0; i < 200; i++)
		room_leave_all(ri, &M[i], NULL, NULL);
	CHECK_EQ_INT(room_index_members(ri), 0);
	CHECK_EQ_INT(select_(ri, NULL, 0, NULL, 0, &s), 0);
	room_index_destroy(ri);
}

/* Random operations checked against a member x room bit matrix. */
TEST(model_check)
{
	enum { NM = 64, NR = 40 };
	static uint8_t in[NM][NR];
	memset(in, 0, sizeof in);
	room_index *ri = room_index_create();
	uint32_t x = 12345;
	char name[NR][8];
	for (int r = 0; r < NR; r++)
		snprintf(name[r], sizeof name[r], "r%d", r);
	for (int step = 0; step < 200000; step++) {
		x = x * 1103515245 + 12345;
		int m = (int)(x >> 8) % NM, r = (int)(x >> 16) % NR, op = (int)(x >> 28) % 8;
		if (op < 4) {
			CHECK_EQ_INT(room_join(ri, name[r], &M[m], NULL), !in[m][r]);
			in[m][r] = 1;
		} else if (op < 7) {
			CHECK_EQ_INT(room_leave(ri, name[r], &M[m], NULL), in[m][r]);
			in[m][r] = 0;
		} else if (step % 16 == 0) {
			room_leave_all(ri, &M[m], NULL, NULL);
			memset(in[m], 0, NR);
		}
		if (step % 997 == 0) {
			size_t rooms = 0, members = 0;
			for (int rr = 0; rr < NR; rr++) {
				size_t n = 0;
				for (int mm = 0; mm < NM; mm++)
					n += in[mm][rr];
				rooms += n > 0;
				CHECK_EQ_INT(room_size(ri, name[rr]), n);
			}
			for (int mm = 0; mm < NM; mm++) {
				int any = 0;
				for (int rr = 0; rr < NR; rr++)
					any |= in[mm][rr];
				members += (size_t)any;
			}
			CHECK_EQ_INT(room_index_rooms(ri), rooms);
			CHECK_EQ_INT(room_index_members(ri), members);

			const char *sel[3] = {name[r], name[(r + 1) % NR], name[(r + 7) % NR]};
			const char *exc[1] = {name[(r + 3) % NR]};
			seen s;
			size_t got = select_(ri, sel, 3, exc, 1, &s);
			size_t want = 0;
			for (int mm = 0; mm < NM; mm++) {
				int hit = (in[mm][r] || in[mm][(r + 1) % NR] || in[mm][(r + 7) % NR]) &&
					  !in[mm][(r + 3) % NR];
				want += (size_t)hit;
				CHECK_EQ_INT(s.hits[mm], hit);
			}
			CHECK_EQ_INT(got, want);

			/* the selections that hand over the dense arrays: one room, everyone */
			got = select_(ri, sel, 1, NULL, 0, &s);
			CHECK_EQ_INT(got, room_size(ri, name[r]));
			for (int mm = 0; mm < NM; mm++)
				CHECK_EQ_INT(s.hits[mm], in[mm][r]);
			got = select_(ri, NULL, 0, NULL, 0, &s);
			CHECK_EQ_INT(got, members);
			for (int mm = 0; mm < NM; mm++) {
				int any = 0;
				for (int rr = 0; rr < NR; rr++)
					any |= in[mm][rr];
				CHECK_EQ_INT(s.hits[mm], any);
			}
			got = select_(ri, NULL, 0, exc, 1, &s);
			for (int mm = 0; mm < NM; mm++) {
				int any = 0;
				for (int rr = 0; rr < NR; rr++)
					any |= in[mm][rr];
				CHECK_EQ_INT(s.hits[mm], any && !in[mm][(r + 3) % NR]);
			}
		}
	}
	room_index_destroy(ri);
}

int main(void)
{
	RUN(join_leave);
	RUN(leave_all_and_member_rooms);
	RUN(member_rooms_may_leave_current);
	RUN(select_targets);
	RUN(select_many);
	RUN(model_check);
	return TEST_END();
}
