/* test_memory.c — the memory bus plugin: the shared battery (battery.h), then what
 * only the memory plugin promises (options, bounded queue, in-flight unsubscribe,
 * asynchronous reports). Usage: test_memory <path/to/memory.so> */
#include <pthread.h>
#include <stdatomic.h>

#include "../test.h"
#include "battery.h"
#include "bus/loader.h"

static const siogw_plugin *D;

/* One instance with its fake host and resolved options (kept until destroy: ABI). */
typedef struct mi {
	fake_host *h;
	void *self;
	siogw_optval *opts;
	size_t n_opts;
	bool stopped;
	char err[256];
} mi;

/* Create (and start unless no_start) with "key=value" overrides. Returns create's rc. */
static int mi_up(mi *m, const char *const *kv, size_t n, bool no_start)
{
	memset(m, 0, sizeof *m);
	m->h = fh_new();
	if (battery_resolve_options(D, kv, n, &m->opts, &m->n_opts, m->err, sizeof m->err) != 0) {
		fprintf(stderr, "  options: %s\n", m->err);
		CHECK(!"options resolve");
		fh_free(m->h);
		m->h = NULL;
		return -1;
	}
	int rc = D->create(fh_host(m->h), m->opts, m->n_opts, &m->self, m->err, sizeof m->err);
	if (rc == 0 && !no_start)
		CHECK_EQ_INT(D->start(m->self, m->err, sizeof m->err), 0);
	if (rc != 0) {
		battery_free_options(m->opts, m->n_opts);
		fh_free(m->h);
		m->h = NULL;
	}
	return rc;
}

static void mi_down(mi *m)
{
	if (!m->h)
		return;
	if (!m->stopped)
		D->stop(m->self);
	D->destroy(m->self);
	battery_free_options(m->opts, m->n_opts);
	fh_free(m->h);
	m->h = NULL;
}

static uint64_t stat_of(mi *m, const char *name)
{
	char buf[2048];
	D->stats(m->self, buf, sizeof buf);
	const char *l = strstr(buf, name);
	size_t nl = strlen(name);
	return l && l[nl] == ' ' ? strtoull(l + nl + 1, NULL, 10) : UINT64_MAX;
}

TEST(mem_options_declared)
{
	const char *want[][2] = {{"queue", "8192"}, {"queue_bytes", "64m"}, {"max_message", "8m"}, {"delivery", "thread"}};
	CHECK_EQ_INT(D->n_options, 4);
	for (size_t i = 0; i < 4; i++) {
		bool found = false;
		for (size_t j = 0; j < D->n_options; j++)
			if (strcmp(D->options[j].name, want[i][0]) == 0) {
				found = true;
				CHECK_STR(D->options[j].def, want[i][1]);
				CHECK(D->options[j].help && D->options[j].help[0]);
			}
		CHECK(found);
	}
	CHECK(D->stats != NULL);
}

TEST(mem_bad_options)
{
	mi m;
	fake_host *h = fh_new();
	siogw_optval bogus = {.name = "bogus", .str = "1", .num = 1};
	void *self = (void *)1;
	char err[256] = "";
	CHECK_EQ_INT(D->create(fh_host(h), &bogus, 1, &self, err, sizeof err), -SIOGW_EINVAL);
	CHECK(self == NULL);
	CHECK_STR(err, "memory: unknown option 'bogus' (valid: queue, queue_bytes, max_message, delivery)");
	siogw_optval zero = {.name = "queue", .str = "0", .num = 0};
	CHECK_EQ_INT(D->create(fh_host(h), &zero, 1, &self, err, sizeof err), -SIOGW_EINVAL);
	CHECK_CONTAINS(err, "queue = 0 out of range");
	fh_free(h);

	const char *kv[] = {"max_message=2m", "queue_bytes=1m"};
	CHECK_EQ_INT(mi_up(&m, kv, 2, false), -SIOGW_EINVAL);
	CHECK_STR(m.err, "memory: max_message (2097152) must not exceed queue_bytes (1048576)");
}

TEST(mem_health_and_lifecycle)
{
	mi m;
	char buf[64] = "";
	if (mi_up(&m, NULL, 0, true) != 0)
		return;
	CHECK_EQ_INT(D->health(m.self, buf, sizeof buf), -SIOGW_EIO);
	CHECK_STR(buf, "not started");
	CHECK_EQ_INT(D->publish(m.self, "t", NULL, 0, "x", 1, NULL, NULL), -SIOGW_ECLOSED);
	CHECK_EQ_INT(D->subscribe(m.self, 1, "t", SIOGW_SUB_EXACT), 0); /* before start is fine */
	CHECK_EQ_INT(D->start(m.self, m.err, sizeof m.err), 0);
	CHECK_EQ_INT(D->start(m.self, m.err, sizeof m.err), 0);
	CHECK_EQ_INT(D->health(m.self, buf, sizeof buf), 0);
	CHECK_EQ_INT(D->subscribe(m.self, 1, "t", SIOGW_SUB_EXACT), -SIOGW_EINVAL); /* id in use */
	CHECK_EQ_INT(D->subscribe(m.self, 2, "", SIOGW_SUB_EXACT), -SIOGW_EINVAL);
	CHECK_EQ_INT(D->subscribe(m.self, 3, "t", 7), -SIOGW_EINVAL);
	CHECK_EQ_INT(D->unsubscribe(m.self, 99), -SIOGW_EINVAL);
	CHECK_EQ_INT(D->publish(m.self, "", NULL, 0, "x", 1, NULL, NULL), -SIOGW_EINVAL);
	D->stop(m.self);
	m.stopped = true;
	CHECK_EQ_INT(D->health(m.self, buf, sizeof buf), -SIOGW_EIO);
	CHECK_STR(buf, "stopped");
	CHECK_EQ_INT(D->start(m.self, m.err, sizeof m.err), -SIOGW_ECLOSED);
	CHECK_EQ_INT(D->subscribe(m.self, 4, "t", SIOGW_SUB_EXACT), -SIOGW_ECLOSED);
	mi_down(&m);
}

TEST(mem_max_message)
{
	mi m;
	const char *kv[] = {"max_message=1024", "queue_bytes=4k"};
	if (mi_up(&m, kv, 2, false) != 0)
		return;
	char big[1025] = {0};
	CHECK_EQ_INT(D->publish(m.self, "t", NULL, 0, big, 1025, NULL, NULL), -SIOGW_EINVAL);
	CHECK_EQ_INT(D->publish(m.self, "t", "k", 1, big, 1024, NULL, NULL), -SIOGW_EINVAL); /* key counts */
	CHECK_EQ_INT(D->publish(m.self, "t", NULL, 0, big, 1024, NULL, NULL), 0);
	mi_down(&m);
}

/* No subscription matches: accepted, reported at once (inside publish), counted as
 * unrouted, not queued; a matching subscription still gets what follows. */
TEST(mem_unrouted)
{
	mi m;
	if (mi_up(&m, NULL, 0, false) != 0)
		return;
	fh_slot a = {.h = m.h}, b = {.h = m.h};
	CHECK_EQ_INT(D->subscribe(m.self, 1, "other", SIOGW_SUB_EXACT), 0);
	CHECK_EQ_INT(D->publish(m.self, "t", NULL, 0, "x", 1, fh_dr, &a), 0);
	CHECK_EQ_INT(a.count, 1); /* before publish returned */
	CHECK_EQ_INT(a.status, 0);
	CHECK_EQ_INT(stat_of(&m, "sio_memory_unrouted_total"), 1);
	CHECK_EQ_INT(stat_of(&m, "sio_memory_published_total"), 1);
	CHECK_EQ_INT(stat_of(&m, "sio_memory_queue_messages"), 0);
	CHECK_EQ_INT(D->subscribe(m.self, 2, "t", SIOGW_SUB_EXACT), 0);
	CHECK_EQ_INT(D->publish(m.self, "t", NULL, 0, "y", 1, fh_dr, &b), 0);
	CHECK(fh_wait_count(m.h, 2, 1, 5000));
	CHECK(fh_wait_dr(m.h, 2, 5000));
	CHECK_EQ_INT(stat_of(&m, "sio_memory_unrouted_total"), 1);
	CHECK_EQ_INT(stat_of(&m, "sio_memory_delivered_total"), 1);
	mi_down(&m);
}

/* queue=4: one message held inside deliver(), four queued, the sixth refused. */
TEST(mem_queue_full)
{
	mi m;
	const char *kv[] = {"queue=4"};
	if (mi_up(&m, kv, 1, false) != 0)
		return;
	fh_slot s[6];
	CHECK_EQ_INT(D->subscribe(m.self, 1, "t", SIOGW_SUB_EXACT), 0);
	fh_hold(m.h, true);
	s[0] = (fh_slot){.h = m.h};
	CHECK_EQ_INT(D->publish(m.self, "t", NULL, 0, "0", 1, fh_dr, &s[0]), 0);
	CHECK(fh_wait_held(m.h, 1, 5000));
	for (int i = 1; i <= 4; i++) {
		s[i] = (fh_slot){.h = m.h};
		CHECK_EQ_INT(D->publish(m.self, "t", NULL, 0, "n", 1, fh_dr, &s[i]), 0);
	}
	s[5] = (fh_slot){.h = m.h};
	CHECK_EQ_INT(D->publish(m.self, "t", NULL, 0, "x", 1, fh_dr, &s[5]), -SIOGW_EAGAIN);
	CHECK_EQ_INT(stat_of(&m, "sio_memory_rejected_total"), 1);
	CHECK_EQ_INT(stat_of(&m, "sio_memory_queue_messages"), 4);
	fh_hold(m.h, false);
	CHECK(fh_wait_dr(m.h, 5, 5000));
	CHECK(fh_wait_count(m.h, 1, 5, 5000));
	CHECK_EQ_INT(s[5].count, 0); /* no report for a refused publish */
	CHECK_EQ_INT(stat_of(&m, "sio_memory_published_total"), 5);
	CHECK_EQ_INT(stat_of(&m, "sio_memory_delivered_total"), 5);
	CHECK_EQ_INT(stat_of(&m, "sio_memory_subscriptions"), 1);
	mi_down(&m);
}

TEST(mem_queue_bytes)
{
	mi m;
	const char *kv[] = {"queue_bytes=2k", "max_message=1k"};
	if (mi_up(&m, kv, 2, false) != 0)
		return;
	static char payload[1000];
	CHECK_EQ_INT(D->subscribe(m.self, 1, "t", SIOGW_SUB_EXACT), 0);
	fh_hold(m.h, true);
	CHECK_EQ_INT(D->publish(m.self, "t", NULL, 0, payload, 10, NULL, NULL), 0);
	CHECK(fh_wait_held(m.h, 1, 5000));
	CHECK_EQ_INT(D->publish(m.self, "t", NULL, 0, payload, 1000, NULL, NULL), 0);
	CHECK_EQ_INT(D->publish(m.self, "t", NULL, 0, payload, 1000, NULL, NULL), 0);
	CHECK_EQ_INT(D->publish(m.self, "t", NULL, 0, payload, 1000, NULL, NULL), -SIOGW_EAGAIN);
	CHECK_EQ_INT(stat_of(&m, "sio_memory_queue_bytes"), 2 * (2 + 1000));
	fh_hold(m.h, false);
	CHECK(fh_wait_count(m.h, 1, 3, 5000));
	mi_down(&m);
}

/* Reports are never called inside publish(): always from the delivery thread. */
typedef struct dr_thread {
	pthread_t caller;
	atomic_int inside, calls;
} dr_thread;

static void dr_record_thread(void *arg, int status)
{
	dr_thread *t = arg;
	if (pthread_equal(pthread_self(), t->caller))
		atomic_fetch_add(&t->inside, 1);
	atomic_fetch_add(&t->calls, 1);
}

TEST(mem_reports_async)
{
	mi m;
	if (mi_up(&m, NULL, 0, false) != 0)
		return;
	dr_thread t = {.caller = pthread_self()};
	CHECK_EQ_INT(D->subscribe(m.self, 1, "t", SIOGW_SUB_EXACT), 0);
	for (int i = 0; i < 50; i++)
		CHECK_EQ_INT(D->publish(m.self, "t", NULL, 0, "x", 1, dr_record_thread, &t), 0);
	CHECK(fh_wait_count(m.h, 1, 50, 5000));
	D->stop(m.self); /* all reports fired once stop returns */
	m.stopped = true;
	CHECK_EQ_INT(atomic_load(&t.calls), 50);
	CHECK_EQ_INT(atomic_load(&t.inside), 0);
	mi_down(&m);
}

/* unsubscribe() waits for a deliver() in progress for that id, and only for it. */
typedef struct unsub_call {
	mi *m;
	uint64_t id;
	int rc;
	atomic_bool done;
} unsub_call;

static void *unsub_thread(void *arg)
{
	unsub_call *u = arg;
	u->rc = D->unsubscribe(u->m->self, u->id);
	atomic_store(&u->done, true);
	return NULL;
}

/* Start unsubscribe(u->id) on a thread (*th, to join); true when it is still waiting
 * 100 ms later (polled with a deadline). */
static bool unsub_still_waiting(unsub_call *u, pthread_t *th)
{
	atomic_init(&u->done, false);
	if (pthread_create(th, NULL, unsub_thread, u) != 0)
		return false;
	int64_t end = bt_now_ms() + 100;
	while (!atomic_load(&u->done) && bt_now_ms() < end)
		fh_wait_events(u->m->h, fh_events(u->m->h), 5);
	return !atomic_load(&u->done);
}

TEST(mem_unsubscribe_waits_inflight)
{
	mi m;
	if (mi_up(&m, NULL, 0, false) != 0)
		return;
	CHECK_EQ_INT(D->subscribe(m.self, 1, "t", SIOGW_SUB_EXACT), 0);
	CHECK_EQ_INT(D->subscribe(m.self, 2, "other", SIOGW_SUB_EXACT), 0);
	fh_hold(m.h, true);
	CHECK_EQ_INT(D->publish(m.self, "t", NULL, 0, "x", 1, NULL, NULL), 0);
	CHECK(fh_wait_held(m.h, 1, 5000)); /* deliver(sub 1) is in progress */

	/* another id: returns at once */
	CHECK_EQ_INT(D->unsubscribe(m.self, 2), 0);

	unsub_call u = {.m = &m, .id = 1};
	pthread_t th;
	CHECK(unsub_still_waiting(&u, &th)); /* a while later */
	fh_hold(m.h, false);
	pthread_join(th, NULL);
	CHECK(atomic_load(&u.done));
	CHECK_EQ_INT(u.rc, 0);
	CHECK_EQ_INT(fh_count(m.h, 1), 1); /* the in-flight one completed */
	CHECK_EQ_INT(D->publish(m.self, "t", NULL, 0, "y", 1, NULL, NULL), 0);
	D->stop(m.self); /* drains nothing: the message matched no one */
	m.stopped = true;
	CHECK_EQ_INT(fh_count(m.h, 1), 1);
	mi_down(&m);
}

/* delivery: inline — deliveries and the report happen inside publish(); a delivery
 * running on another thread holds off unsubscribe() and stop() like the thread's does. */
static void *pub_thread(void *arg)
{
	mi *m = arg;
	D->publish(m->self, "t", NULL, 0, "z", 1, NULL, NULL);
	return NULL;
}

TEST(mem_inline)
{
	mi m;
	const char *kv[] = {"delivery=inline"};
	if (mi_up(&m, kv, 1, false) != 0)
		return;
	fh_slot a = {.h = m.h};
	CHECK_EQ_INT(D->subscribe(m.self, 1, "t", SIOGW_SUB_EXACT), 0);
	CHECK_EQ_INT(D->subscribe(m.self, 2, "t", SIOGW_SUB_PREFIX), 0);
	CHECK_EQ_INT(D->publish(m.self, "t", NULL, 0, "x", 1, fh_dr, &a), 0);
	CHECK_EQ_INT(fh_count(m.h, 1), 1); /* before publish returned */
	CHECK_EQ_INT(fh_count(m.h, 2), 1);
	CHECK_EQ_INT(a.count, 1);
	CHECK_EQ_INT(a.status, 0);
	CHECK_EQ_INT(stat_of(&m, "sio_memory_delivered_total"), 2);
	CHECK_EQ_INT(stat_of(&m, "sio_memory_queue_messages"), 0);

	fh_hold(m.h, true);
	pthread_t pub;
	CHECK_EQ_INT(pthread_create(&pub, NULL, pub_thread, &m), 0);
	CHECK(fh_wait_held(m.h, 1, 5000)); /* deliver(sub 1) is in progress on `pub` */
	unsub_call u = {.m = &m, .id = 1};
	pthread_t th;
	CHECK(unsub_still_waiting(&u, &th)); /* waits for that deliver() */
	fh_hold(m.h, false);
	pthread_join(th, NULL);
	pthread_join(pub, NULL);
	CHECK_EQ_INT(u.rc, 0);
	CHECK_EQ_INT(fh_count(m.h, 1), 2);
	CHECK_EQ_INT(fh_count(m.h, 2), 2);
	D->stop(m.self);
	m.stopped = true;
	CHECK_EQ_INT(D->publish(m.self, "t", NULL, 0, "y", 1, NULL, NULL), -SIOGW_ECLOSED);
	mi_down(&m);
}

/* The host may call back into the plugin from deliver(): no deadlock. */
typedef struct reenter {
	mi *m;
	atomic_int rc;
} reenter;

static void reenter_hook(void *arg, uint64_t sub_id)
{
	reenter *r = arg;
	if (sub_id != 1)
		return; /* only the first hop, or it would chain forever */
	int rc = D->unsubscribe(r->m->self, sub_id);
	rc |= D->subscribe(r->m->self, sub_id + 100, "t2", SIOGW_SUB_EXACT);
	rc |= D->publish(r->m->self, "t2", NULL, 0, "z", 1, NULL, NULL);
	atomic_store(&r->rc, rc);
}

TEST(mem_reentrant_from_deliver)
{
	mi m;
	if (mi_up(&m, NULL, 0, false) != 0)
		return;
	reenter r = {.m = &m};
	CHECK_EQ_INT(D->subscribe(m.self, 1, "t", SIOGW_SUB_EXACT), 0);
	fh_set_hook(m.h, reenter_hook, &r);
	CHECK_EQ_INT(D->publish(m.self, "t", NULL, 0, "x", 1, NULL, NULL), 0);
	CHECK(fh_wait_count(m.h, 101, 1, 5000)); /* the message published from inside deliver */
	fh_set_hook(m.h, NULL, NULL);
	CHECK_EQ_INT(atomic_load(&r.rc), 0);
	CHECK_EQ_INT(fh_count(m.h, 1), 1);
	mi_down(&m);
}

/* stop(): the message inside deliver() completes (report 0), queued ones report ECLOSED. */
typedef struct stopper {
	mi *m;
} stopper;

static void *stop_thread(void *arg)
{
	stopper *s = arg;
	D->stop(s->m->self);
	return NULL;
}

TEST(mem_stop_discards_queued)
{
	mi m;
	if (mi_up(&m, NULL, 0, false) != 0)
		return;
	fh_slot s[3];
	CHECK_EQ_INT(D->subscribe(m.self, 1, "t", SIOGW_SUB_EXACT), 0);
	fh_hold(m.h, true);
	for (int i = 0; i < 3; i++) {
		s[i] = (fh_slot){.h = m.h, .status = 1};
		CHECK_EQ_INT(D->publish(m.self, "t", NULL, 0, "x", 1, fh_dr, &s[i]), 0);
	}
	CHECK(fh_wait_held(m.h, 1, 5000));
	stopper st = {.m = &m};
	pthread_t th;
	CHECK_EQ_INT(pthread_create(&th, NULL, stop_thread, &st), 0);
	/* stop() marks the plugin stopped before it joins: health says so */
	char buf[64];
	int64_t end = bt_now_ms() + 5000;
	while (D->health(m.self, buf, sizeof buf) == 0 && bt_now_ms() < end)
		fh_wait_events(m.h, fh_events(m.h), 2);
	CHECK_STR(buf, "stopped");
	fh_hold(m.h, false);
	pthread_join(th, NULL);
	m.stopped = true;
	CHECK_EQ_INT(fh_dr_total(m.h), 3);
	CHECK_EQ_INT(s[0].status, 0);
	CHECK_EQ_INT(s[1].status, -SIOGW_ECLOSED);
	CHECK_EQ_INT(s[2].status, -SIOGW_ECLOSED);
	CHECK_EQ_INT(fh_count(m.h, 1), 1);
	mi_down(&m);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s <path/to/memory.so>\n", argv[0]);
		return 2;
	}
	char err[512];
	gw_plugin *pl = NULL;
	if (gw_plugin_open(argv[1], NULL, &pl, err, sizeof err) != 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	D = gw_plugin_desc(pl);

	battery_params p = {.dropped_stat = "sio_memory_dropped_total"};
	int battery_failed = battery_run(argv[1], NULL, 0, &p);
	const char *inline_opts[] = {"delivery=inline"};
	battery_failed |= battery_run(argv[1], inline_opts, 1, &p);

	RUN(mem_options_declared);
	RUN(mem_bad_options);
	RUN(mem_health_and_lifecycle);
	RUN(mem_max_message);
	RUN(mem_unrouted);
	RUN(mem_inline);
	RUN(mem_queue_full);
	RUN(mem_queue_bytes);
	RUN(mem_reports_async);
	RUN(mem_unsubscribe_waits_inflight);
	RUN(mem_reentrant_from_deliver);
	RUN(mem_stop_discards_queued);
	gw_plugin_close(pl);
	int rc = TEST_END();
	return rc || battery_failed ? 1 : 0;
}
