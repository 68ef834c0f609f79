/*
 * recovery: the replay log (offsets, rooms/except selection as socket.io's
 * shouldIncludePacket, the byte bound, the age bound) and the snapshots (take once,
 * by pid, namespace and offset; expiry).
 */
#include "../test.h"
#include "sio/recovery.h"
#include "util/err.h"

static gw_frame *text(const char *s) { return gw_frame_from(s, strlen(s), false); }

/* Log "42[<n>]" to nsp. */
static void log_one(rec_store *r, int64_t now, const char *nsp, int n, const char *const *rooms, size_t nr,
		    const char *const *except, size_t ne)
{
	char b[32];
	snprintf(b, sizeof b, "42[%d]", n);
	gw_frame *f = text(b);
	CHECK_EQ_INT(rec_log(r, now, NULL, nsp, rooms, nr, except, ne, &f, 1), 0);
	gw_frame_unref(f);
}

static void offset_of_next(rec_store *r, char *out)
{
	char q[REC_OFFSET_MAX];
	rec_next_offset(r, q);
	/* the JSON string without its quotes, as the client sends it back */
	snprintf(out, REC_OFFSET_MAX, "%.*s", (int)strlen(q) - 2, q + 1);
}

typedef struct got {
	char text[256];
} got;

static void collect(void *arg, gw_frame *const *frames, size_t n)
{
	got *g = arg;
	for (size_t i = 0; i < n; i++)
		snprintf(g->text + strlen(g->text), sizeof g->text - strlen(g->text), "%s%.*s", g->text[0] ? " " : "",
			 (int)frames[i]->len, (const char *)gw_frame_data(frames[i]));
}

TEST(replay_selects_as_socket_io)
{
	rec_store *r = rec_store_create(1000, 1 << 20);
	const char *a[] = {"a"}, *b[] = {"b"}, *ab[] = {"a", "b"}, *sid[] = {"s1"};
	char off[REC_OFFSET_MAX];
	offset_of_next(r, off);
	log_one(r, 0, "/", 0, a, 1, NULL, 0);           /* the client's last one */
	log_one(r, 0, "/", 1, a, 1, NULL, 0);           /* to its room */
	log_one(r, 0, "/", 2, b, 1, NULL, 0);           /* not its room */
	log_one(r, 0, "/", 3, NULL, 0, NULL, 0);        /* to all */
	log_one(r, 0, "/chat", 4, NULL, 0, NULL, 0);    /* another namespace */
	log_one(r, 0, "/", 5, ab, 2, sid, 1);           /* its id excepted */
	log_one(r, 0, "/", 6, sid, 1, NULL, 0);         /* to its id */
	const char *rooms[] = {"s1", "a"};
	CHECK_EQ_INT(rec_persist(r, 10, "pid1", "s1", "/", "{\"u\":1}", rooms, 2, 0, true), 0);
	CHECK_EQ_INT(rec_store_stats(r)->sessions, 1);
	uint64_t from;
	CHECK(rec_take(r, 20, "pid1", off, "/chat", 100, &from) == NULL);   /* wrong namespace */
	CHECK(rec_take(r, 20, "pid2", off, "/", 100, &from) == NULL);       /* unknown pid */
	CHECK(rec_take(r, 20, "pid1", "zz1", "/", 100, &from) == NULL);     /* not an offset of this process */
	rec_session *s = rec_take(r, 20, "pid1", off, "/", 2, &from);
	CHECK(s == NULL); /* 3 to replay, 2 allowed: it cannot come back */
	CHECK_EQ_INT(rec_store_stats(r)->too_many, 1);
	CHECK_EQ_INT(rec_persist(r, 10, "pid1", "s1", "/", "{\"u\":1}", rooms, 2, 0, true), 0);
	s = rec_take(r, 20, "pid1", off, "/", 3, &from);
	CHECK(s != NULL);
	if (s) {
		CHECK_STR(s->sid, "s1");
		CHECK_STR(s->data, "{\"u\":1}");
		CHECK_EQ_INT(s->n_rooms, 2);
		got g = {{0}};
		rec_replay(r, s, from, collect, &g);
		CHECK_STR(g.text, "42[1] 42[3] 42[6]");
		rec_session_free(s);
	}
	CHECK(rec_take(r, 20, "pid1", off, "/", 100, &from) == NULL); /* taken once */
	CHECK_EQ_INT(rec_store_stats(r)->recovered, 1);
	CHECK_EQ_INT(rec_store_stats(r)->failed, 5);
	rec_store_destroy(r);
}

TEST(bounds_bytes_and_age)
{
	rec_store *r = rec_store_create(1000, 2048);
	char first[REC_OFFSET_MAX];
	offset_of_next(r, first);
	for (int i = 0; i < 100; i++)
		log_one(r, i, "/", i, NULL, 0, NULL, 0);
	const rec_stats *st = rec_store_stats(r);
	CHECK(st->log_bytes <= 2048);
	CHECK(st->evicted > 0);
	CHECK_EQ_INT(st->logged, 100);
	CHECK_EQ_INT(st->log_packets + st->evicted, 100);
	/* the first offset went: a client holding it is not recovered */
	const char *rooms[] = {"s"};
	rec_persist(r, 100, "p", "s", "/", NULL, rooms, 1, 0, true);
	uint64_t from;
	CHECK(rec_take(r, 100, "p", first, "/", 100, &from) == NULL);
	/* past the window: the snapshot and the old entries go */
	rec_expire(r, 100 + 1001);
	CHECK_EQ_INT(st->sessions, 0);
	CHECK_EQ_INT(st->expired, 1);
	CHECK_EQ_INT(st->log_packets, 0);
	CHECK_EQ_INT(st->log_bytes, 0);
	char next[REC_OFFSET_MAX];
	offset_of_next(r, next);
	log_one(r, 2000, "/", 1, NULL, 0, NULL, 0);
	rec_persist(r, 2000, "p", "s", "/", NULL, rooms, 1, 0, true);
	rec_session *s = rec_take(r, 2500, "p", next, "/", 100, &from);
	CHECK(s != NULL);
	rec_session_free(s);
	rec_store_destroy(r);
}

/* engine.workers: every loop holds a copy of a snapshot; only one counts it */
TEST(an_uncounted_copy_is_kept_but_not_counted)
{
	rec_store *r = rec_store_create(100, 1 << 20);
	char off[REC_OFFSET_MAX];
	offset_of_next(r, off);
	log_one(r, 0, "/", 0, NULL, 0, NULL, 0);
	const char *rooms[] = {"s"};
	const rec_stats *st = rec_store_stats(r);
	CHECK_EQ_INT(rec_persist(r, 0, "copy", "s", "/", NULL, rooms, 1, 0, false), 0);
	CHECK_EQ_INT(rec_persist(r, 0, "own", "s2", "/", NULL, rooms, 1, 0, true), 0);
	CHECK_EQ_INT(st->sessions, 1);
	uint64_t from;
	rec_session *s = rec_take(r, 10, "copy", off, "/", 100, &from);
	CHECK(s != NULL); /* a copy comes back as well */
	rec_session_free(s);
	CHECK_EQ_INT(st->sessions, 1);
	CHECK_EQ_INT(rec_persist(r, 0, "copy2", "s3", "/", NULL, rooms, 1, 0, false), 0);
	rec_expire(r, 1000);
	CHECK_EQ_INT(st->sessions, 0);
	CHECK_EQ_INT(st->expired, 1); /* "own" only */
	rec_store_destroy(r);
}

TEST(a_snapshot_past_its_deadline_is_not_taken)
{
	rec_store *r = rec_store_create(100, 1 << 20);
	char off[REC_OFFSET_MAX];
	offset_of_next(r, off);
	log_one(r, 0, "/", 0, NULL, 0, NULL, 0);
	const char *rooms[] = {"s"};
	rec_persist(r, 0, "p", "s", "/", NULL, rooms, 1, 0, true);
	uint64_t from;
	CHECK(rec_take(r, 101, "p", off, "/", 100, &from) == NULL);
	rec_store_destroy(r); /* frees the snapshot still held */
}

/* Offsets named by bus positions (the same on every node) find their entry too. */
TEST(offsets_by_bus_position)
{
	rec_store *r = rec_store_create(1000, 4096);
	gw_frame *f = text("42[0]");
	CHECK_EQ_INT(rec_log(r, 0, "k0.5", "/", NULL, 0, NULL, 0, &f, 1), 0);
	gw_frame_unref(f);
	log_one(r, 0, "/", 1, NULL, 0, NULL, 0);
	f = text("42[2]");
	CHECK_EQ_INT(rec_log(r, 0, "k1.9", "/", NULL, 0, NULL, 0, &f, 1), 0);
	gw_frame_unref(f);
	const char *rooms[] = {"s"};
	rec_persist(r, 0, "p", "s", "/", NULL, rooms, 1, 0, true);
	uint64_t from;
	CHECK(rec_take(r, 1, "p", "k0.6", "/", 100, &from) == NULL); /* not logged here */
	rec_session *s = rec_take(r, 1, "p", "k0.5", "/", 100, &from);
	CHECK(s != NULL);
	got g = {{0}};
	if (s)
		rec_replay(r, s, from, collect, &g);
	CHECK_STR(g.text, "42[1] 42[2]");
	rec_session_free(s);
	/* evicted: its name goes with it */
	for (int i = 0; i < 60; i++)
		log_one(r, 0, "/", i, NULL, 0, NULL, 0);
	rec_persist(r, 0, "p", "s", "/", NULL, rooms, 1, 0, true);
	CHECK(rec_take(r, 1, "p", "k0.5", "/", 100, &from) == NULL);
	rec_store_destroy(r);
}

int main(void)
{
	RUN(offsets_by_bus_position);
	RUN(replay_selects_as_socket_io);
	RUN(bounds_bytes_and_age);
	RUN(a_snapshot_past_its_deadline_is_not_taken);
	RUN(an_uncounted_copy_is_kept_but_not_counted);
	return TEST_END();
}
