/*
 * memory.c — the in-memory bus plugin: topics live inside the gateway process.
 *
 * Links against nothing of the gateway, only include/siogw/plugin.h and the header-only
 * plugin_util.h (+ pthreads).
 *
 * Threading choice (delivery: thread, the default): one delivery thread fed by one
 * bounded FIFO queue. (delivery: inline delivers inside publish() instead; see
 * publish_inline.)
 *   publish() (service thread) copies the message into the queue and returns; it
 *   takes only the plugin mutex, which nobody holds across a call out of the plugin,
 *   so it never waits for more than a few list operations. The delivery thread pops
 *   messages and calls host->deliver() once per matching subscription, then the
 *   delivery report. So the heavy work the host does in deliver() (envelope parsing,
 *   frame encoding, DESIGN §2.2) runs on this thread, not on the service loop, and
 *   deliveries are always asynchronous, never inside publish(), like the remote
 *   buses. (The report of an unrouted publish fires inside publish(), see below.)
 *
 * Ordering: one queue and one thread give a single total order. Messages are
 * delivered in the order their publish() calls returned 0 (so per publisher thread
 * and per key FIFO hold, and also across keys and topics); for one message, the
 * matching subscriptions receive it in the order they were subscribed. A delivery
 * report fires after the message has been handed to every matching subscription.
 *
 * Unrouted messages: publish() on a topic no subscription matches at that moment is
 * accepted (dr fires inside publish) and counted, but not queued: no delivery could
 * follow, and the thread is not woken for nothing.
 *
 * Flow control: the queue is bounded by `queue` messages and `queue_bytes` bytes;
 * beyond that publish() returns -SIOGW_EAGAIN (counted as rejected). When
 * host->deliver() returns -SIOGW_EAGAIN the copy is dropped and counted (the memory
 * bus is at-most-once towards a full gateway queue, like NNG pub/sub); no retry.
 *
 * Locks: `lock` guards the subscription table, the queue and the state. It is never
 * held while calling host->deliver(), host->log() or a delivery report, so those may
 * call back into subscribe/unsubscribe/publish/health/stats without deadlock.
 * unsubscribe() waits (on `fl.idle`, plugin_util.h) while the delivery thread is inside
 * deliver() for that very subscription, so that after it returns no new deliver()
 * for the id starts (ABI contract) — at most one deliver() call long. Called from
 * inside deliver() itself it does not wait. stop()/destroy() must not be called from
 * inside deliver() or a delivery report (stop joins the delivery thread).
 *
 * The ops are safe from any thread (more than the ABI requires).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "siogw/plugin.h"
#include "siogw/plugin_util.h"

#define PLUGIN_NAME "memory"

/* Defaults: the same text is in the option table (the host normally passes them). */
#define DEF_QUEUE 8192
#define DEF_QUEUE_BYTES (64ll << 20)
#define DEF_MAX_MESSAGE (8ll << 20)

static const siogw_option mem_options[] = {
	{"queue", SIOGW_OPT_INT, "8192", 1, 1 << 24, NULL,
	 "max messages waiting for the delivery thread; publish returns EAGAIN beyond"},
	{"queue_bytes", SIOGW_OPT_SIZE, "64m", 1024, 1ll << 40, NULL,
	 "max bytes (topic + key + data) waiting for the delivery thread; publish returns EAGAIN beyond"},
	{"max_message", SIOGW_OPT_SIZE, "8m", 1, 1ll << 40, NULL,
	 "largest key + data accepted by publish (EINVAL beyond); must not exceed queue_bytes"},
	{"delivery", SIOGW_OPT_ENUM, "thread", 1, 0, "thread|inline",
	 "thread: a delivery thread hands messages to the gateway (parsing off its loop); "
	 "inline: inside publish(), no thread hop (lower latency); queue/queue_bytes apply to thread only"},
};
#define N_OPTIONS (sizeof mem_options / sizeof mem_options[0])
enum { DELIVERY_THREAD = 0, DELIVERY_INLINE = 1 }; /* index in "thread|inline" */

enum { ST_CREATED = 0, ST_RUNNING, ST_STOPPED };

/* One queued message: topic, key and data live in the same allocation. */
typedef struct msg {
	struct msg *next;
	siogw_dr_cb dr;
	void *dr_arg;
	const char *topic;
	const void *key;
	size_t key_len;
	const void *data;
	size_t len;
	size_t bytes; /* accounted against queue_bytes: topic + key + data */
} msg;

typedef struct mem {
	const siogw_host *host;
	size_t queue_max, queue_bytes_max, max_message;

	pthread_mutex_t lock;
	pthread_cond_t wake; /* delivery thread: queue non-empty or stopping */

	/* guarded by lock */
	int state;
	msg *head, *tail;
	size_t q_len, q_bytes;
	spu_subs subs;    /* in subscription order; subs.gen: bumped by every unsubscribe */
	spu_inflight fl;  /* who is inside deliver() for which id; fl.idle: it returned */
	bool inline_delivery; /* delivery: inline */
	bool thread_started;
	pthread_t thread;

	/* delivery thread only: ids matching the message being delivered */
	uint64_t *match;
	size_t cap_match;

	_Atomic int astate; /* mirror of state for health() without the lock */
	_Atomic uint64_t published, delivered, dropped, rejected, unrouted;
} mem;

/* The log wrapper every plugin uses: a line under this plugin's name. Any thread. */
#define mlog(m, level, ...) spu_log((m)->host, PLUGIN_NAME, level, __VA_ARGS__)

/* ---- lifecycle ---------------------------------------------------------------- */

/* What create() takes from the options; also the whole of check(). */
typedef struct mem_conf {
	int64_t queue, queue_bytes, max_message;
	bool inline_delivery;
} mem_conf;

/* On failure *bad (when non-NULL) is the index of the option to blame, if there is one. */
static int mem_parse(const siogw_optval *opts, size_t n_opts, mem_conf *c, size_t *bad, char *err,
		     size_t err_len)
{
	*c = (mem_conf){.queue = DEF_QUEUE, .queue_bytes = DEF_QUEUE_BYTES, .max_message = DEF_MAX_MESSAGE};
	size_t max_message_at = SIZE_MAX;
	for (size_t i = 0; i < n_opts; i++) {
		const siogw_optval *o = &opts[i];
		bool prefix;
		const siogw_option *d = spu_decl_find(mem_options, N_OPTIONS, o->name, &prefix);
		if (bad)
			*bad = i;
		if (!d) {
			spu_seterr(err, err_len,
				   "memory: unknown option '%s' (valid: queue, queue_bytes, max_message, delivery)",
				   o->name ? o->name : "(null)");
			return -SIOGW_EINVAL;
		}
		int rc = spu_opt_judge(PLUGIN_NAME, d, o, err, err_len);
		if (rc)
			return rc;
		if (d == &mem_options[0])
			c->queue = o->num;
		else if (d == &mem_options[1])
			c->queue_bytes = o->num;
		else if (d == &mem_options[2])
			c->max_message = o->num, max_message_at = i;
		else
			c->inline_delivery = o->num == DELIVERY_INLINE; /* ENUM: the choice's index */
	}
	if (bad)
		*bad = max_message_at;
	if (c->max_message > c->queue_bytes) {
		spu_seterr(err, err_len, "memory: max_message (%lld) must not exceed queue_bytes (%lld)",
			   (long long)c->max_message, (long long)c->queue_bytes);
		return -SIOGW_EINVAL;
	}
	return 0;
}

/* The one cross-option rule (max_message <= queue_bytes) is what the table cannot say. */
static int mem_check(const siogw_optval *opts, size_t n_opts, size_t *bad, char *err, size_t err_len)
{
	mem_conf c;
	size_t at = SIZE_MAX;
	int rc = mem_parse(opts, n_opts, &c, &at, err, err_len);
	if (rc && at != SIZE_MAX)
		*bad = at;
	return rc;
}

static int mem_create(const siogw_host *host, const siogw_optval *opts, size_t n_opts, void **self,
		      char *err, size_t err_len)
{
	*self = NULL;
	int rc = spu_host_check(host, PLUGIN_NAME, err, err_len);
	if (rc)
		return rc;
	mem_conf c;
	rc = mem_parse(opts, n_opts, &c, NULL, err, err_len);
	if (rc)
		return rc;
	int64_t queue = c.queue, queue_bytes = c.queue_bytes, max_message = c.max_message;
	bool inline_delivery = c.inline_delivery;

	mem *m = calloc(1, sizeof *m);
	if (!m) {
		spu_seterr(err, err_len, "memory: out of memory");
		return -SIOGW_ENOMEM;
	}
	m->host = host;
	m->queue_max = (size_t)queue;
	m->queue_bytes_max = (size_t)queue_bytes;
	m->max_message = (size_t)max_message;
	m->inline_delivery = inline_delivery;
	if (pthread_mutex_init(&m->lock, NULL) != 0) {
		free(m);
		spu_seterr(err, err_len, "memory: pthread_mutex_init failed");
		return -SIOGW_ENOMEM;
	}
	if (pthread_cond_init(&m->wake, NULL) != 0) {
		pthread_mutex_destroy(&m->lock);
		free(m);
		spu_seterr(err, err_len, "memory: pthread_cond_init failed");
		return -SIOGW_ENOMEM;
	}
	if (pthread_cond_init(&m->fl.idle, NULL) != 0) {
		pthread_cond_destroy(&m->wake);
		pthread_mutex_destroy(&m->lock);
		free(m);
		spu_seterr(err, err_len, "memory: pthread_cond_init failed");
		return -SIOGW_ENOMEM;
	}
	m->state = ST_CREATED;
	atomic_init(&m->astate, ST_CREATED);
	*self = m;
	return 0;
}

/*
 * The delivery thread. Pops one message at a time; for each matching subscription
 * calls host->deliver() with the lock released, then the delivery report.
 */
static void *deliver_main(void *arg)
{
	mem *m = arg;
	pthread_mutex_lock(&m->lock);
	for (;;) {
		while (m->state == ST_RUNNING && !m->head)
			pthread_cond_wait(&m->wake, &m->lock);
		if (m->state != ST_RUNNING)
			break; /* stop() fires the reports of what is still queued */
		msg *g = m->head;
		m->head = g->next;
		if (!m->head)
			m->tail = NULL;
		m->q_len--;
		m->q_bytes -= g->bytes;

		/* Every matching subscription, the lock dropped around each deliver(). A copy
		 * the host refused (-SIOGW_EAGAIN), or that found no room in the snapshot
		 * (out of memory), is lost, and counted. */
		spu_tally n = spu_deliver_all(m->host, &m->lock, &m->subs, &m->fl, &m->match, &m->cap_match,
					      g->topic, g->key, g->key_len, g->data, g->len);
		atomic_fetch_add(&m->delivered, n.delivered);
		atomic_fetch_add(&m->dropped, n.refused + n.lost);
		pthread_mutex_unlock(&m->lock);
		if (g->dr)
			g->dr(g->dr_arg, 0);
		free(g);
		pthread_mutex_lock(&m->lock);
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

static int mem_start(void *self, char *err, size_t err_len)
{
	mem *m = self;
	pthread_mutex_lock(&m->lock);
	if (m->state == ST_RUNNING) {
		pthread_mutex_unlock(&m->lock);
		return 0;
	}
	if (m->state == ST_STOPPED) {
		pthread_mutex_unlock(&m->lock);
		spu_seterr(err, err_len, "memory: already stopped");
		return -SIOGW_ECLOSED;
	}
	m->state = ST_RUNNING;
	if (m->inline_delivery) {
		atomic_store(&m->astate, ST_RUNNING);
		pthread_mutex_unlock(&m->lock);
		mlog(m, SIOGW_LOG_DEBUG, "started (inline delivery, max_message %zu)", m->max_message);
		return 0;
	}
	/* A fully blocked signal mask: signals belong to the gateway. */
	int rc = spu_thread_start(&m->thread, deliver_main, m, "siogw-memory");
	if (rc != 0) {
		m->state = ST_CREATED;
		pthread_mutex_unlock(&m->lock);
		spu_seterr(err, err_len, "memory: cannot start delivery thread: %s", strerror(rc));
		return rc == EAGAIN ? -SIOGW_ENOMEM : -SIOGW_EIO;
	}
	m->thread_started = true;
	atomic_store(&m->astate, ST_RUNNING);
	pthread_mutex_unlock(&m->lock);
	mlog(m, SIOGW_LOG_DEBUG, "started (queue %zu messages / %zu bytes, max_message %zu)",
	     m->queue_max, m->queue_bytes_max, m->max_message);
	return 0;
}

static void mem_stop(void *self)
{
	mem *m = self;
	pthread_mutex_lock(&m->lock);
	if (m->state == ST_STOPPED) {
		pthread_mutex_unlock(&m->lock);
		return;
	}
	bool joinable = m->thread_started;
	if (joinable && pthread_equal(pthread_self(), m->thread)) {
		/* Contract violation (stop from inside deliver or a report): cannot join. */
		pthread_mutex_unlock(&m->lock);
		mlog(m, SIOGW_LOG_ERROR, "stop() called from the delivery thread; ignored");
		return;
	}
	m->state = ST_STOPPED;
	atomic_store(&m->astate, ST_STOPPED);
	pthread_cond_broadcast(&m->wake);
	/* inline: let a deliver() running on another thread return (not our own: from
	 * inside deliver this is a contract violation, and waiting would deadlock) */
	while (m->inline_delivery && m->fl.busy && !pthread_equal(pthread_self(), m->fl.by))
		pthread_cond_wait(&m->fl.idle, &m->lock);
	pthread_mutex_unlock(&m->lock);

	if (joinable)
		pthread_join(m->thread, NULL);

	/* The thread is gone: fire the reports of what never got delivered. */
	pthread_mutex_lock(&m->lock);
	msg *g = m->head;
	m->head = m->tail = NULL;
	m->q_len = m->q_bytes = 0;
	pthread_mutex_unlock(&m->lock);
	size_t pending = 0;
	while (g) {
		msg *next = g->next;
		if (g->dr)
			g->dr(g->dr_arg, -SIOGW_ECLOSED);
		free(g);
		g = next;
		pending++;
	}
	mlog(m, SIOGW_LOG_DEBUG, "stopped (%zu queued messages discarded)", pending);
}

static void mem_destroy(void *self)
{
	mem *m = self;
	if (!m)
		return;
	mem_stop(m); /* no-op when already stopped, as the lifecycle requires */
	spu_subs_free(&m->subs);
	free(m->match);
	pthread_cond_destroy(&m->fl.idle);
	pthread_cond_destroy(&m->wake);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

/* ---- subscriptions ------------------------------------------------------------ */

static int mem_subscribe(void *self, uint64_t sub_id, const char *pattern, int kind)
{
	mem *m = self;
	if (!spu_sub_args_ok(pattern, kind))
		return -SIOGW_EINVAL;
	char *copy = strdup(pattern);
	if (!copy)
		return -SIOGW_ENOMEM;
	int rc;
	pthread_mutex_lock(&m->lock);
	if (m->state == ST_STOPPED) {
		rc = -SIOGW_ECLOSED;
	} else if (spu_subs_find(&m->subs, sub_id)) {
		rc = -SIOGW_EINVAL; /* ids are unique per subscribe call */
	} else {
		rc = spu_subs_add(&m->subs, sub_id, kind, copy);
	}
	pthread_mutex_unlock(&m->lock);
	if (rc != 0)
		free(copy);
	return rc;
}

static int mem_unsubscribe(void *self, uint64_t sub_id)
{
	mem *m = self;
	/* waits out a deliver() for this id already in progress (not from inside it) */
	return spu_unsubscribe(&m->lock, &m->subs, &m->fl, sub_id, NULL, NULL);
}

/* ---- publish ------------------------------------------------------------------ */

/*
 * delivery: inline. deliver() runs inside publish(), on the caller's thread, once per
 * matching subscription (in subscription order), then the report. One thread delivers
 * at a time: a publish from another thread waits for it (a publish from inside deliver,
 * on the same thread, goes ahead). The caller's buffers are handed over as they are.
 */
static int publish_inline(mem *m, const char *topic, const void *key, size_t key_len, const void *data,
			  size_t len, siogw_dr_cb dr, void *dr_arg)
{
	pthread_t self = pthread_self();
	uint64_t few[16], *ids = few;
	size_t n = 0, cap = 16;
	pthread_mutex_lock(&m->lock);
	while (m->state == ST_RUNNING && m->fl.busy && !pthread_equal(self, m->fl.by))
		pthread_cond_wait(&m->fl.idle, &m->lock);
	if (m->state != ST_RUNNING) {
		pthread_mutex_unlock(&m->lock);
		return -SIOGW_ECLOSED;
	}
	for (size_t i = 0; i < m->subs.n; i++) {
		if (!spu_sub_matches(&m->subs.v[i], topic))
			continue;
		if (n == cap) {
			uint64_t *more = malloc(2 * cap * sizeof *more);
			if (!more) {
				atomic_fetch_add(&m->dropped, 1); /* this copy is lost, say so */
				continue;
			}
			memcpy(more, ids, n * sizeof *ids);
			if (ids != few)
				free(ids);
			ids = more;
			cap *= 2;
		}
		ids[n++] = m->subs.v[i].id;
	}
	uint64_t gen = m->subs.gen;
	for (size_t i = 0; i < n; i++) {
		if (!spu_subs_still(&m->subs, ids[i], gen))
			continue; /* unsubscribed since the snapshot (by deliver itself) */
		/* nested (a publish from inside deliver on this thread): the outer
		 * in-flight record comes back when this deliver returns */
		int rc = spu_deliver_unlocked(m->host, &m->lock, &m->fl, ids[i], topic, key, key_len, data, len);
		atomic_fetch_add(rc == 0 ? &m->delivered : &m->dropped, 1);
	}
	pthread_mutex_unlock(&m->lock);
	if (ids != few)
		free(ids);
	atomic_fetch_add(&m->published, 1);
	if (!n)
		atomic_fetch_add(&m->unrouted, 1);
	if (dr)
		dr(dr_arg, 0);
	return 0;
}

static int mem_publish(void *self, const char *topic, const void *key, size_t key_len, const void *data,
		       size_t len, siogw_dr_cb dr, void *dr_arg)
{
	mem *m = self;
	if (!topic || !topic[0] || (len && !data) || (key_len && !key))
		return -SIOGW_EINVAL;
	if (key_len > m->max_message || len > m->max_message - key_len)
		return -SIOGW_EINVAL; /* larger than max_message */
	size_t tlen = strlen(topic);
	size_t payload = tlen + 1 + key_len + len;

	if (m->inline_delivery)
		return publish_inline(m, topic, key, key_len, data, len, dr, dr_arg);

	/* A topic nobody subscribes to right now: nothing to queue and no thread to wake
	 * (a subscription made later need not see it, per the ABI). The gateway publishes
	 * connect/disconnect envelopes whether or not a backend listens. */
	pthread_mutex_lock(&m->lock);
	int state = m->state;
	bool routed = spu_subs_any(&m->subs, topic);
	pthread_mutex_unlock(&m->lock);
	if (state != ST_RUNNING)
		return -SIOGW_ECLOSED;
	if (!routed) {
		atomic_fetch_add(&m->published, 1);
		atomic_fetch_add(&m->unrouted, 1);
		if (dr)
			dr(dr_arg, 0);
		return 0;
	}

	/* Copy before taking the lock: the lock is held only for list operations. */
	msg *g = malloc(sizeof *g + payload);
	if (!g)
		return -SIOGW_ENOMEM;
	char *p = (char *)(g + 1);
	memcpy(p, topic, tlen + 1);
	g->topic = p;
	p += tlen + 1;
	if (key_len)
		memcpy(p, key, key_len);
	g->key = key ? p : NULL;
	g->key_len = key_len;
	p += key_len;
	if (len)
		memcpy(p, data, len);
	g->data = p;
	g->len = len;
	g->bytes = payload;
	g->dr = dr;
	g->dr_arg = dr_arg;
	g->next = NULL;

	int rc = 0;
	pthread_mutex_lock(&m->lock);
	if (m->state != ST_RUNNING) {
		rc = -SIOGW_ECLOSED;
	} else if (m->q_len >= m->queue_max ||
		   (m->q_len > 0 && m->q_bytes + payload > m->queue_bytes_max)) {
		rc = -SIOGW_EAGAIN;
	} else {
		if (m->tail)
			m->tail->next = g;
		else
			m->head = g;
		m->tail = g;
		m->q_len++;
		m->q_bytes += payload;
		if (m->q_len == 1)
			pthread_cond_signal(&m->wake); /* the thread sleeps only on an empty queue */
	}
	pthread_mutex_unlock(&m->lock);
	if (rc != 0) {
		if (rc == -SIOGW_EAGAIN)
			atomic_fetch_add(&m->rejected, 1);
		free(g);
		return rc;
	}
	atomic_fetch_add(&m->published, 1);
	return 0;
}

/* ---- health and stats --------------------------------------------------------- */

static int mem_health(void *self, char *buf, size_t buf_len)
{
	mem *m = self;
	int st = atomic_load(&m->astate);
	return st == ST_RUNNING ? 0 : spu_health_down(buf, buf_len, st != ST_CREATED);
}

static size_t mem_stats(void *self, char *buf, size_t buf_len)
{
	mem *m = self;
	if (!buf || buf_len == 0)
		return 0;
	pthread_mutex_lock(&m->lock);
	size_t subs = m->subs.n, q_len = m->q_len, q_bytes = m->q_bytes;
	pthread_mutex_unlock(&m->lock);
	int n = snprintf(buf, buf_len,
			 "sio_memory_published_total %llu\n"
			 "sio_memory_delivered_total %llu\n"
			 "sio_memory_dropped_total %llu\n"
			 "sio_memory_rejected_total %llu\n"
			 "sio_memory_unrouted_total %llu\n"
			 "sio_memory_subscriptions %zu\n"
			 "sio_memory_queue_messages %zu\n"
			 "sio_memory_queue_bytes %zu\n",
			 (unsigned long long)atomic_load(&m->published),
			 (unsigned long long)atomic_load(&m->delivered),
			 (unsigned long long)atomic_load(&m->dropped),
			 (unsigned long long)atomic_load(&m->rejected),
			 (unsigned long long)atomic_load(&m->unrouted), subs, q_len, q_bytes);
	return spu_stats_len(buf, buf_len, n);
}

SPU_PLUGIN_V1(mem, PLUGIN_NAME, "0.1.0", mem_options, N_OPTIONS,
	      "in-process bus: topics live inside the gateway (one node, no broker)");
