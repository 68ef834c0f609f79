/*
 * kafka.c — the Kafka bus plugin, on librdkafka. docs/kafka.md is the user's side of this
 * file (options, semantics, deployment); this comment is the implementer's.
 *
 * Links against librdkafka and include/siogw/plugin.h only (+ pthreads).
 *
 * Handles. One producer (idempotent, acks=all by default) for every publish(), and one
 * consumer for every subscription. The consumer never joins a consumer group: it assigns
 * partitions itself (rd_kafka_incremental_assign) and never commits, so every gateway
 * node reads every message of its subscribed topics (broadcast), subscription changes
 * take effect without rebalances, and no group state is shared between nodes. librdkafka
 * needs a group.id for the consumer API; it gets a unique one it never uses.
 *
 * Where a subscription starts. A topic that exists when a subscription first needs it
 * is read from `start_offset` (latest: the end — "messages published from now on");
 * a topic that appears later (created after the subscription, found by a metadata
 * refresh), and new partitions of an assigned topic, are read from their beginning, so
 * nothing published into a new topic is lost while it is being discovered.
 *
 * Threads (each with every signal blocked: signals belong to the gateway):
 *   siogw-kafka-in   rd_kafka_consumer_poll → match subscriptions → host->deliver();
 *                    owns flow control (pause / seek / resume);
 *   siogw-kafka-dr   rd_kafka_poll on the producer: delivery reports, producer errors;
 *                    replaces the producer after a fatal (idempotence) error;
 *   siogw-kafka-ctl  metadata refreshes, topic creation, the consumer's assignment,
 *                    health.
 * Ops (subscribe, unsubscribe, publish, health, stats) only take short locks and never
 * wait for the network: they are safe on the gateway's service thread and from any
 * thread.
 *
 * Flow control. When host->deliver() answers -SIOGW_EAGAIN (the gateway's inbound queue
 * is full), `on_full: pause` first retries in place for `pause_backoff` (a busy loop
 * usually drains within a turn; librdkafka's fetch queue bounds what is prefetched
 * meanwhile), then pauses that partition (rd_kafka_pause_partitions), seeks it back to
 * the refused message and resumes it after a back-off (pause_backoff, doubling up to 1 s
 * while the gateway keeps refusing): the backlog stays in Kafka, nothing is lost, and a
 * message that matched several subscriptions is not delivered twice to those that
 * already took it. `on_full: drop` counts the refused copy and goes on (at-most-once,
 * like the memory bus).
 *
 * Locks (never held while calling a host service or a delivery report, except
 * host->log):
 *   sub_lock   subscription table, in-flight deliver() bookkeeping;
 *   fc_lock    the flow-control entries (consumer thread, control thread on unassign);
 *   ctl_lock   control-thread wake-up flags, topics waiting to be created;
 *   prod_lock  (rwlock) the producer pointer: publish() reads, the dr thread replaces;
 *   dr_lock    the list of pending delivery reports;
 *   st_lock    health text.
 * No two are nested.
 * unsubscribe() waits while the consumer thread is inside deliver() for that very id
 * (its in-place retries included: at most pause_backoff), except from inside deliver().
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "siogw/plugin.h"
#include "siogw/plugin_util.h"

#define PLUGIN_NAME "kafka"
#define EXPORT __attribute__((visibility("default")))

#define MAX_TOPIC_LEN 249
#define PAUSE_BACKOFF_MAX_MS 1000
#define METADATA_TIMEOUT_MS 1500 /* one metadata request; bounds stop() during an outage */
#define FAST_REFRESH_MS 250      /* while a subscribed topic is missing */
#define FAST_REFRESH_FOR_MS 10000
#define CREATE_RETRY_MS 5000

static const siogw_option kafka_options[] = {
	{"brokers", SIOGW_OPT_STRING, "127.0.0.1:9092", 0, -1, NULL,
	 "bootstrap brokers, host:port[,host:port...] (bootstrap.servers)"},
	{"client_id", SIOGW_OPT_STRING, "sio-gateway", 0, -1, NULL, "client.id of both handles"},
	{"acks", SIOGW_OPT_ENUM, "all", 0, -1, "all|1|0", "producer acks; idempotence needs all"},
	{"idempotence", SIOGW_OPT_BOOL, "true", 0, -1, NULL,
	 "idempotent producer: no duplicates or reordering on retries (enable.idempotence)"},
	{"linger", SIOGW_OPT_DURATION, "5ms", 0, 900000, NULL, "how long the producer batches (linger.ms)"},
	{"delivery_timeout", SIOGW_OPT_DURATION, "2m", 0, 2147483647, NULL,
	 "how long a message may wait for the brokers before it fails (message.timeout.ms; 0 = forever)"},
	{"buffer_messages", SIOGW_OPT_INT, "100000", 1, 2147483647, NULL,
	 "outbound buffer bound in messages; publish is refused (dropped, counted) beyond"},
	{"buffer_bytes", SIOGW_OPT_SIZE, "64m", 1024, 2147483647ll * 1024, NULL,
	 "outbound buffer bound in bytes; publish is refused (dropped, counted) beyond"},
	{"max_message", SIOGW_OPT_SIZE, "1m", 1024, 1000000000, NULL,
	 "largest message the producer accepts (message.max.bytes); the brokers' limit applies too"},
	{"start_offset", SIOGW_OPT_ENUM, "latest", 0, -1, "latest|earliest",
	 "where a subscription starts in a topic that already exists: latest = broadcast of new "
	 "messages; earliest = replay what the topic retains"},
	{"on_full", SIOGW_OPT_ENUM, "pause", 0, -1, "pause|drop",
	 "gateway inbound queue full: pause the partition and redeliver later (lossless), or drop"},
	{"pause_backoff", SIOGW_OPT_DURATION, "20ms", 1, 60000, NULL,
	 "on_full pause: retry a refused delivery this long, then pause the partition as long (doubling up to 1s)"},
	{"metadata_refresh", SIOGW_OPT_DURATION, "10s", 100, 3600000, NULL,
	 "how often topics are listed: finds new topics for subscriptions, probes broker health"},
	{"connect_timeout", SIOGW_OPT_DURATION, "10s", 0, 3600000, NULL,
	 "start waits this long for the cluster (0 = start at once, unhealthy until it answers)"},
	{"close_timeout", SIOGW_OPT_DURATION, "5s", 0, 3600000, NULL,
	 "stop waits this long to deliver buffered messages; the rest fail"},
	{"create_topics", SIOGW_OPT_ENUM, "admin", 0, -1, "admin|auto|off",
	 "missing topics: admin = CreateTopics (falls back to auto), auto = broker auto-creation, off = never"},
	{"create_subscribed", SIOGW_OPT_BOOL, "true", 0, -1, NULL,
	 "also create missing topics a subscription names (reply topic, a room's route topic); false: wait for them"},
	{"admin_timeout", SIOGW_OPT_DURATION, "5s", 100, 600000, NULL, "timeout of one CreateTopics request"},
	{"partitions", SIOGW_OPT_INT, "6", 1, 100000, NULL, "partitions of a topic the plugin creates"},
	{"replication_factor", SIOGW_OPT_INT, "0", 0, 32767, NULL,
	 "replication factor of a topic the plugin creates (0 = the brokers' default)"},
	{"topics", SIOGW_OPT_LIST, NULL, 0, -1, NULL,
	 "topics that must exist at start (created per create_topics, else start fails), e.g. the out/in/reply topics"},
	{"topic_config.", SIOGW_OPT_PREFIX, NULL, 0, -1, NULL,
	 "topic config for every topic the plugin creates, e.g. topic_config.retention.ms: 3600000"},
	{"topic.", SIOGW_OPT_PREFIX, NULL, 0, -1, NULL,
	 "per-topic creation settings: topic.<name>: \"partitions=12,replication_factor=3,retention.ms=60000\""},
	{"rdkafka_producer.", SIOGW_OPT_PREFIX, NULL, 0, -1, NULL, "librdkafka property for the producer only"},
	{"rdkafka_consumer.", SIOGW_OPT_PREFIX, NULL, 0, -1, NULL, "librdkafka property for the consumer only"},
	{"rdkafka.", SIOGW_OPT_PREFIX, NULL, 0, -1, NULL,
	 "librdkafka property for both handles, passed verbatim to rd_kafka_conf_set"},
};

enum { ST_CREATED = 0, ST_RUNNING, ST_STOPPING, ST_STOPPED };
#define N_OPTIONS (sizeof kafka_options / sizeof kafka_options[0])
/* ENUM options: the index of each choice in its table's `choices` (optval.num) */
enum { CREATE_ADMIN = 0, CREATE_AUTO, CREATE_OFF };   /* "admin|auto|off" */
enum { ON_FULL_PAUSE = 0, ON_FULL_DROP };             /* "pause|drop" */
enum { START_LATEST = 0, START_EARLIEST };            /* "latest|earliest" */

/* ---- a small string map ------------------------------------------------------ */

typedef struct sent {
	struct sent *next;
	char *key;
	uint64_t hash;
	int64_t val, val2;
	void *ptr;
} sent;

typedef struct smap {
	sent **b;
	size_t nb, n;
} smap;

static uint64_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static sent *smap_get(const smap *m, const char *key)
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
static sent *smap_put(smap *m, const char *key, bool *created)
{
	if (created)
		*created = false;
	sent *e = smap_get(m, key);
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
static void *smap_del(smap *m, const char *key)
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

static void smap_free(smap *m, void (*free_ptr)(void *))
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

#define SMAP_EACH(m, e)                            \
	for (size_t e##_i = 0; e##_i < (m)->nb; e##_i++) \
		for (sent *e = (m)->b[e##_i]; e; e = e->next)

/* ---- the instance ------------------------------------------------------------ */

typedef struct idlist {
	uint64_t *ids;
	size_t n, cap;
} idlist;

/* A pending delivery report (only for publishes with a callback). */
typedef struct dr_rec {
	struct dr_rec *prev, *next;
	siogw_dr_cb dr;
	void *arg;
	unsigned gen; /* producer generation it was handed to */
} dr_rec;

/* Flow-control state of one partition that refused a delivery. */
typedef struct fcent {
	char *topic;
	int32_t part;
	bool paused;
	int64_t resume_at; /* ms, monotonic */
	int backoff;       /* ms */
	int64_t expect;    /* next offset to deliver; older ones are stale copies */
	int64_t done_off;  /* the refused message ... */
	idlist done;       /* ... and the subscriptions that already took it */
} fcent;

/* A per-topic creation override (topic.<name>). */
typedef struct topic_spec {
	const char *name;
	const char *value;
} topic_spec;

typedef struct kafka {
	const siogw_host *host;

	/* options (strings point into the host's optvals, valid until destroy) */
	const char *brokers, *client_id;
	int start_offset, on_full, create_mode;
	bool create_subscribed;
	int pause_backoff, metadata_refresh, connect_timeout, close_timeout, admin_timeout;
	int partitions, replication;
	char **required;
	size_t n_required;
	const siogw_optval **topic_configs; /* topic_config.* */
	size_t n_topic_configs;
	topic_spec *topic_specs; /* topic.* */
	size_t n_topic_specs;
	rd_kafka_conf_t *pconf, *cconf; /* built and checked by create(); consumed by start() */

	_Atomic int state;

	/* producer */
	pthread_rwlock_t prod_lock;
	rd_kafka_t *prod; /* under prod_lock */
	unsigned prod_gen;
	_Atomic bool prod_fatal;
	_Atomic bool purging_for_close; /* purged reports say ECLOSED, else EIO */
	pthread_t dr_thread;
	bool dr_started;

	pthread_mutex_t dr_lock;
	dr_rec dr_head; /* circular list sentinel */

	/* consumer */
	rd_kafka_t *cons;
	pthread_t in_thread;
	bool in_started;

	/* subscriptions */
	pthread_mutex_t sub_lock;
	spu_subs subs;   /* subs.gen: bumped by every unsubscribe */
	spu_inflight fl; /* the consumer thread inside deliver(); fl.idle: it returned */
	_Atomic size_t n_prefix; /* written under sub_lock, read by publish() without */
	smap exact; /* topic → idlist* */
	uint64_t *match; /* consumer thread: ids of the message being delivered */
	size_t cap_match;

	/* flow control */
	pthread_mutex_t fc_lock;
	fcent **fc;
	size_t n_fc, cap_fc;
	_Atomic size_t n_fc_atomic;

	/* control thread */
	pthread_mutex_t ctl_lock;
	pthread_cond_t ctl_cond;
	bool ctl_dirty;          /* subscriptions changed */
	bool ctl_refresh_soon;   /* a metadata refresh would help (new topic published) */
	char **to_create;        /* published topics to create (admin mode) */
	size_t n_to_create, cap_to_create;
	pthread_t ctl_thread;
	bool ctl_started;
	int64_t last_subscribe_ms;
	/* control-thread only */
	smap known;    /* topic → partitions (val), snapshot generation first seen (val2) */
	smap assigned; /* topic → partitions assigned (val) */
	smap creating; /* topic → next attempt ms (val), last error (ptr) */
	uint64_t md_gen;
	int64_t md_at; /* ms of the last successful refresh */
	bool admin_broken;
	smap published; /* under ctl_lock: topics published to (for creation / refresh kicks) */

	/* health */
	pthread_mutex_t st_lock;
	char down_reason[256]; /* brokers unreachable, empty when reachable */
	char topic_reason[256];
	char fatal_reason[256];

	_Atomic uint64_t published_n, delivered_n, delivery_failed, rejected, consumed, refused, dropped,
		pauses, md_errors, create_errors, producer_restarts, consume_errors;
	_Atomic size_t n_assigned, n_paused;
} kafka;

/* ---- small helpers ----------------------------------------------------------- */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* check() has no host: spu_log says nothing then. */
#define klog(k, level, ...) spu_log((k)->host, PLUGIN_NAME, level, __VA_ARGS__)

static void set_reason(kafka *k, char *field, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void set_reason(kafka *k, char *field, const char *fmt, ...)
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
static bool topic_legal(const char *t)
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

static int idlist_add(idlist *l, uint64_t id)
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

static bool idlist_has(const idlist *l, uint64_t id)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->ids[i] == id)
			return true;
	return false;
}

static void idlist_free(void *p)
{
	idlist *l = p;
	if (l) {
		free(l->ids);
		free(l);
	}
}

/* Block every signal while creating threads (ours and librdkafka's). */
static void block_signals(sigset_t *old)
{
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, old);
}

static void restore_signals(const sigset_t *old)
{
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* ---- librdkafka callbacks ------------------------------------------------------ */

static void on_rd_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	kafka *k = rd_kafka_opaque(rk);
	int lv = level <= 3 ? SIOGW_LOG_ERROR : level == 4 ? SIOGW_LOG_WARN : level <= 6 ? SIOGW_LOG_INFO
											 : SIOGW_LOG_DEBUG;
	klog(k, lv, "%s: %s: %s", rd_kafka_name(rk), fac, buf);
}

static void wake_ctl(kafka *k, bool refresh)
{
	pthread_mutex_lock(&k->ctl_lock);
	if (refresh)
		k->ctl_refresh_soon = true;
	else
		k->ctl_dirty = true;
	pthread_cond_signal(&k->ctl_cond);
	pthread_mutex_unlock(&k->ctl_lock);
}

static void on_rd_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	kafka *k = opaque;
	if (err == RD_KAFKA_RESP_ERR__FATAL && rd_kafka_type(rk) == RD_KAFKA_PRODUCER) {
		char buf[256];
		rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof buf);
		set_reason(k, k->fatal_reason, "producer fatal error %s: %s", rd_kafka_err2name(orig), buf);
		atomic_store(&k->prod_fatal, true);
		return;
	}
	if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
		set_reason(k, k->down_reason, "all brokers down: %s", reason);
		wake_ctl(k, true); /* probe until they answer again */
	}
}

static void on_rd_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	kafka *k = opaque;
	dr_rec *r = m->_private;
	if (m->err)
		atomic_fetch_add(&k->delivery_failed, 1);
	else
		atomic_fetch_add(&k->delivered_n, 1);
	if (!r)
		return;
	pthread_mutex_lock(&k->dr_lock);
	r->prev->next = r->next;
	r->next->prev = r->prev;
	pthread_mutex_unlock(&k->dr_lock);
	int status = 0;
	switch (m->err) {
	case RD_KAFKA_RESP_ERR_NO_ERROR:
		status = 0;
		break;
	case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
	case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
		status = atomic_load(&k->purging_for_close) ? -SIOGW_ECLOSED : -SIOGW_EIO;
		break;
	case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
	case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
		status = -SIOGW_EINVAL;
		break;
	default:
		status = -SIOGW_EIO;
	}
	r->dr(r->arg, status);
	free(r);
}

/* ---- options and create() ------------------------------------------------------ */

static int conf_set(rd_kafka_conf_t *c, const char *key, const char *val, const char *what, char *err,
		    size_t err_len)
{
	char e[512];
	if (rd_kafka_conf_set(c, key, val, e, sizeof e) != RD_KAFKA_CONF_OK) {
		spu_seterr(err, err_len, "kafka: %s%s: %s", what ? what : "", key, e);
		return -1;
	}
	return 0;
}

/* Check a "partitions=N,replication_factor=R,key=value" creation spec. */
static int check_topic_spec(const char *name, const char *spec, char *err, size_t err_len)
{
	const char *p = spec;
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t l = comma ? (size_t)(comma - p) : strlen(p);
		const char *eq = memchr(p, '=', l);
		if (!eq || eq == p) {
			spu_seterr(err, err_len, "kafka: topic.%s: expected key=value[,key=value...], got \"%s\"", name, spec);
			return -1;
		}
		if ((size_t)(eq - p) == 10 && !memcmp(p, "partitions", 10)) {
			long v = strtol(eq + 1, NULL, 10);
			if (v < 1) {
				spu_seterr(err, err_len, "kafka: topic.%s: partitions must be >= 1", name);
				return -1;
			}
		}
		p = comma ? comma + 1 : p + l;
	}
	return 0;
}

static void kafka_free(kafka *k);

/* The option to blame, for check(): by index, or by name (SIZE_MAX when the value came
 * from nowhere the host can point at). Returns -SIOGW_EINVAL for the caller to return. */
static int blame_at(size_t *bad, size_t i)
{
	if (bad)
		*bad = i;
	return -SIOGW_EINVAL;
}

static int blame(size_t *bad, const siogw_optval *opts, size_t n, const char *name)
{
	size_t i = spu_opt_index(opts, n, name);
	return i == SIZE_MAX ? -SIOGW_EINVAL : blame_at(bad, i);
}

/* An instance with its locks, nothing configured, nothing running. NULL: no memory. */
static kafka *kafka_new(void)
{
	kafka *k = calloc(1, sizeof *k);
	if (!k)
		return NULL;
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&k->prod_lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&k->dr_lock, NULL);
	pthread_mutex_init(&k->sub_lock, NULL);
	pthread_cond_init(&k->fl.idle, NULL);
	pthread_mutex_init(&k->fc_lock, NULL);
	pthread_mutex_init(&k->ctl_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&k->ctl_cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&k->st_lock, NULL);
	k->dr_head.prev = k->dr_head.next = &k->dr_head;
	atomic_init(&k->state, ST_CREATED);
	return k;
}

/*
 * Everything create() judges: the options, then both librdkafka configurations (our
 * defaults, then the operator's pass-through properties, which librdkafka judges in
 * rd_kafka_conf_set). No handle, thread or connection yet: that is start(). On failure
 * err says why and *bad (when non-NULL) is the index of the option to blame, if any;
 * the caller frees k.
 */
static int kafka_configure(kafka *k, const siogw_optval *opts, size_t n_opts, size_t *bad, char *err,
			   size_t err_len)
{
	/* Every entry must be one we declared (another host may call us too). */
	for (size_t i = 0; i < n_opts; i++) {
		bool prefix;
		const siogw_option *d = spu_decl_find(kafka_options, N_OPTIONS, opts[i].name, &prefix);
		if (!d || !opts[i].str) {
			spu_seterr(err, err_len, "kafka: unknown option '%s' (see --plugin-help kafka)",
				   opts[i].name ? opts[i].name : "(null)");
			return blame_at(bad, i);
		}
		if (prefix)
			continue;
		/* ranges, and an ENUM's index (optval.num) within its choices */
		if (spu_opt_judge(PLUGIN_NAME, d, &opts[i], err, err_len))
			return blame_at(bad, i);
	}

	/* Declared defaults, in case the host passed fewer entries. */
	k->brokers = spu_opt_str(opts, n_opts, "brokers", "127.0.0.1:9092");
	k->client_id = spu_opt_str(opts, n_opts, "client_id", "sio-gateway");
	const char *acks = spu_opt_str(opts, n_opts, "acks", "all");
	bool idem = strcmp(spu_opt_str(opts, n_opts, "idempotence", "true"), "true") == 0;
	/* ENUMs: optval.num is the index of the choice (ABI 1.1), in the table's order */
	k->start_offset = (int)spu_opt_num(opts, n_opts, "start_offset", START_LATEST);
	k->on_full = (int)spu_opt_num(opts, n_opts, "on_full", ON_FULL_PAUSE);
	k->create_mode = (int)spu_opt_num(opts, n_opts, "create_topics", CREATE_ADMIN);
	k->create_subscribed = strcmp(spu_opt_str(opts, n_opts, "create_subscribed", "true"), "true") == 0;
	k->pause_backoff = (int)spu_opt_num(opts, n_opts, "pause_backoff", 20);
	k->metadata_refresh = (int)spu_opt_num(opts, n_opts, "metadata_refresh", 10000);
	k->connect_timeout = (int)spu_opt_num(opts, n_opts, "connect_timeout", 10000);
	k->close_timeout = (int)spu_opt_num(opts, n_opts, "close_timeout", 5000);
	k->admin_timeout = (int)spu_opt_num(opts, n_opts, "admin_timeout", 5000);
	k->partitions = (int)spu_opt_num(opts, n_opts, "partitions", 6);
	k->replication = (int)spu_opt_num(opts, n_opts, "replication_factor", 0);
	if (k->replication == 0)
		k->replication = -1; /* CreateTopics: the brokers' default.replication.factor */
	if (k->pause_backoff < 1)
		k->pause_backoff = 1;
	if (k->metadata_refresh < 100)
		k->metadata_refresh = 100;
	if (!k->brokers[0]) {
		spu_seterr(err, err_len, "kafka: brokers is empty");
		return blame(bad, opts, n_opts, "brokers");
	}
	if (idem && strcmp(acks, "all") != 0) {
		spu_seterr(err, err_len, "kafka: idempotence needs acks: all (got acks: %s; set idempotence: false)", acks);
		return blame(bad, opts, n_opts, "acks");
	}

	const char *req = spu_opt_str(opts, n_opts, "topics", NULL);
	if (req && req[0]) {
		size_t cap = 1;
		for (const char *p = req; *p; p++)
			cap += *p == ',';
		k->required = calloc(cap, sizeof *k->required);
		if (!k->required)
			goto oom;
		for (const char *p = req; *p;) {
			const char *comma = strchr(p, ',');
			size_t l = comma ? (size_t)(comma - p) : strlen(p);
			char *t = strndup(p, l);
			if (!t)
				goto oom;
			k->required[k->n_required++] = t;
			if (!topic_legal(t)) {
				spu_seterr(err, err_len, "kafka: topics: '%s' is not a legal Kafka topic name", t);
				return blame(bad, opts, n_opts, "topics");
			}
			p = comma ? comma + 1 : p + l;
		}
	}

	k->topic_configs = calloc(n_opts + 1, sizeof *k->topic_configs);
	k->topic_specs = calloc(n_opts + 1, sizeof *k->topic_specs);
	if (!k->topic_configs || !k->topic_specs)
		goto oom;

	/* Build both librdkafka configurations: our defaults, then the operator's
	 * rdkafka.* / rdkafka_producer.* / rdkafka_consumer.* verbatim (so they win). */
	k->pconf = rd_kafka_conf_new();
	k->cconf = rd_kafka_conf_new();
	char num[32];
	if (!k->pconf || !k->cconf)
		goto oom;
	if (conf_set(k->pconf, "bootstrap.servers", k->brokers, "brokers: ", err, err_len) ||
	    conf_set(k->cconf, "bootstrap.servers", k->brokers, "brokers: ", err, err_len))
		return blame(bad, opts, n_opts, "brokers");
	if (conf_set(k->pconf, "client.id", k->client_id, "client_id: ", err, err_len) ||
	    conf_set(k->cconf, "client.id", k->client_id, "client_id: ", err, err_len))
		return blame(bad, opts, n_opts, "client_id");
	if (conf_set(k->pconf, "enable.idempotence", idem ? "true" : "false", NULL, err, err_len) ||
	    conf_set(k->pconf, "acks", acks, NULL, err, err_len) ||
	    conf_set(k->pconf, "partitioner", "murmur2_random", NULL, err, err_len) ||
	    conf_set(k->pconf, "reconnect.backoff.max.ms", "2000", NULL, err, err_len) ||
	    conf_set(k->cconf, "reconnect.backoff.max.ms", "2000", NULL, err, err_len) ||
	    conf_set(k->cconf, "enable.auto.commit", "false", NULL, err, err_len) ||
	    conf_set(k->cconf, "enable.auto.offset.store", "false", NULL, err, err_len) ||
	    conf_set(k->cconf, "enable.partition.eof", "false", NULL, err, err_len) ||
	    conf_set(k->cconf, "auto.offset.reset", "latest", NULL, err, err_len) ||
	    conf_set(k->cconf, "allow.auto.create.topics", k->create_mode == CREATE_OFF ? "false" : "true",
		     NULL, err, err_len))
		return -SIOGW_EINVAL; /* one of our own settings: nothing to blame */
	snprintf(num, sizeof num, "%lld", (long long)spu_opt_num(opts, n_opts, "linger", 5));
	if (conf_set(k->pconf, "linger.ms", num, "linger: ", err, err_len))
		return blame(bad, opts, n_opts, "linger");
	snprintf(num, sizeof num, "%lld", (long long)spu_opt_num(opts, n_opts, "delivery_timeout", 120000));
	if (conf_set(k->pconf, "message.timeout.ms", num, "delivery_timeout: ", err, err_len))
		return blame(bad, opts, n_opts, "delivery_timeout");
	snprintf(num, sizeof num, "%lld", (long long)spu_opt_num(opts, n_opts, "buffer_messages", 100000));
	if (conf_set(k->pconf, "queue.buffering.max.messages", num, "buffer_messages: ", err, err_len))
		return blame(bad, opts, n_opts, "buffer_messages");
	int64_t kb = (spu_opt_num(opts, n_opts, "buffer_bytes", 64ll << 20) + 1023) / 1024;
	snprintf(num, sizeof num, "%lld", (long long)kb);
	if (conf_set(k->pconf, "queue.buffering.max.kbytes", num, "buffer_bytes: ", err, err_len))
		return blame(bad, opts, n_opts, "buffer_bytes");
	int64_t maxmsg = spu_opt_num(opts, n_opts, "max_message", 1 << 20);
	snprintf(num, sizeof num, "%lld", (long long)maxmsg);
	if (conf_set(k->pconf, "message.max.bytes", num, "max_message: ", err, err_len))
		return blame(bad, opts, n_opts, "max_message");
	/* a consumer must fetch what the producer may send */
	int64_t fetch = maxmsg + (1 << 20) > 52428800 ? maxmsg + (1 << 20) : 52428800;
	snprintf(num, sizeof num, "%lld", (long long)fetch);
	if (conf_set(k->cconf, "fetch.max.bytes", num, "max_message: ", err, err_len))
		return blame(bad, opts, n_opts, "max_message");
	snprintf(num, sizeof num, "%lld", (long long)(fetch * 2 > 100000000 ? fetch * 2 : 100000000));
	if (conf_set(k->cconf, "receive.message.max.bytes", num, "max_message: ", err, err_len))
		return blame(bad, opts, n_opts, "max_message");
	{
		/* librdkafka needs a group for its consumer API; this one is never joined nor
		 * committed to (the operator may override rdkafka_consumer.group.id). */
		unsigned r = (unsigned)now_ms() ^ ((unsigned)getpid() << 16) ^ (unsigned)(uintptr_t)k;
		char gid[160];
		snprintf(gid, sizeof gid, "siogw-%s-%08x", k->client_id, r);
		if (conf_set(k->cconf, "group.id", gid, NULL, err, err_len))
			return blame(bad, opts, n_opts, "client_id");
	}
	for (size_t i = 0; i < n_opts; i++) {
		const char *name = opts[i].name;
		if (!strncmp(name, "rdkafka.", 8)) {
			if (conf_set(k->pconf, name + 8, opts[i].str, "rdkafka.", err, err_len) ||
			    conf_set(k->cconf, name + 8, opts[i].str, "rdkafka.", err, err_len))
				return blame_at(bad, i);
		} else if (!strncmp(name, "rdkafka_producer.", 17)) {
			if (conf_set(k->pconf, name + 17, opts[i].str, "rdkafka_producer.", err, err_len))
				return blame_at(bad, i);
		} else if (!strncmp(name, "rdkafka_consumer.", 17)) {
			if (conf_set(k->cconf, name + 17, opts[i].str, "rdkafka_consumer.", err, err_len))
				return blame_at(bad, i);
		} else if (!strncmp(name, "topic_config.", 13)) {
			k->topic_configs[k->n_topic_configs++] = &opts[i];
		} else if (!strncmp(name, "topic.", 6)) {
			if (!topic_legal(name + 6)) {
				spu_seterr(err, err_len, "kafka: %s: '%s' is not a legal Kafka topic name", name, name + 6);
				return blame_at(bad, i);
			}
			if (check_topic_spec(name + 6, opts[i].str, err, err_len))
				return blame_at(bad, i);
			k->topic_specs[k->n_topic_specs++] = (topic_spec){name + 6, opts[i].str};
		}
	}
	rd_kafka_conf_set_opaque(k->pconf, k);
	rd_kafka_conf_set_opaque(k->cconf, k);
	rd_kafka_conf_set_log_cb(k->pconf, on_rd_log);
	rd_kafka_conf_set_log_cb(k->cconf, on_rd_log);
	rd_kafka_conf_set_error_cb(k->pconf, on_rd_error);
	rd_kafka_conf_set_error_cb(k->cconf, on_rd_error);
	rd_kafka_conf_set_dr_msg_cb(k->pconf, on_rd_dr);
	return 0;
oom:
	spu_seterr(err, err_len, "kafka: out of memory");
	return -SIOGW_ENOMEM;
}

static int kafka_create(const siogw_host *host, const siogw_optval *opts, size_t n_opts, void **self,
			char *err, size_t err_len)
{
	*self = NULL;
	if (spu_host_check(host, PLUGIN_NAME, err, err_len))
		return -SIOGW_EINVAL;
	kafka *k = kafka_new();
	if (!k) {
		spu_seterr(err, err_len, "kafka: out of memory");
		return -SIOGW_ENOMEM;
	}
	k->host = host;
	int rc = kafka_configure(k, opts, n_opts, NULL, err, err_len);
	if (rc) {
		kafka_free(k);
		return rc;
	}
	*self = k;
	return 0;
}

/* create() without the instance: librdkafka judges the rdkafka.* properties here too. */
static int kafka_check(const siogw_optval *opts, size_t n_opts, size_t *bad, char *err, size_t err_len)
{
	kafka *k = kafka_new();
	if (!k) {
		spu_seterr(err, err_len, "kafka: out of memory");
		return -SIOGW_ENOMEM;
	}
	int rc = kafka_configure(k, opts, n_opts, bad, err, err_len);
	kafka_free(k);
	return rc;
}

/* ---- subscriptions ----------------------------------------------------------- */

static int kafka_subscribe(void *self, uint64_t sub_id, const char *pattern, int kind)
{
	kafka *k = self;
	if (!pattern || (kind != SIOGW_SUB_EXACT && kind != SIOGW_SUB_PREFIX))
		return -SIOGW_EINVAL;
	if (kind == SIOGW_SUB_EXACT && !topic_legal(pattern))
		return -SIOGW_EINVAL; /* Kafka cannot hold such a topic */
	if (strlen(pattern) > MAX_TOPIC_LEN)
		return -SIOGW_EINVAL;
	char *copy = strdup(pattern);
	if (!copy)
		return -SIOGW_ENOMEM;
	int rc = 0;
	pthread_mutex_lock(&k->sub_lock);
	int st = atomic_load(&k->state);
	if (st == ST_STOPPING || st == ST_STOPPED) {
		rc = -SIOGW_ECLOSED;
	} else if (spu_subs_find(&k->subs, sub_id)) {
		rc = -SIOGW_EINVAL;
	} else {
		rc = spu_subs_reserve(&k->subs); /* so that adding it below cannot fail */
	}
	if (rc == 0 && kind == SIOGW_SUB_EXACT) {
		sent *e = smap_put(&k->exact, copy, NULL);
		if (e && !e->ptr)
			e->ptr = calloc(1, sizeof(idlist));
		if (!e || !e->ptr || idlist_add(e->ptr, sub_id))
			rc = -SIOGW_ENOMEM;
	}
	if (rc == 0) {
		spu_subs_add(&k->subs, sub_id, kind, copy);
		if (kind == SIOGW_SUB_PREFIX)
			k->n_prefix++;
	}
	pthread_mutex_unlock(&k->sub_lock);
	if (rc != 0) {
		free(copy);
		return rc;
	}
	pthread_mutex_lock(&k->ctl_lock);
	k->ctl_dirty = true;
	k->last_subscribe_ms = now_ms();
	pthread_cond_signal(&k->ctl_cond);
	pthread_mutex_unlock(&k->ctl_lock);
	return 0;
}

static int kafka_unsubscribe(void *self, uint64_t sub_id)
{
	kafka *k = self;
	pthread_mutex_lock(&k->sub_lock);
	spu_sub gone;
	if (spu_subs_drop(&k->subs, sub_id, &gone)) {
		pthread_mutex_unlock(&k->sub_lock);
		return -SIOGW_EINVAL;
	}
	char *pattern = gone.pattern;
	if (gone.kind == SIOGW_SUB_EXACT) {
		sent *e = smap_get(&k->exact, pattern);
		idlist *l = e ? e->ptr : NULL;
		for (size_t i = 0; l && i < l->n; i++)
			if (l->ids[i] == sub_id) {
				l->ids[i] = l->ids[--l->n];
				break;
			}
		if (l && l->n == 0)
			idlist_free(smap_del(&k->exact, pattern));
	} else {
		k->n_prefix--;
	}
	/* Wait out a deliver() for this id already in progress (not from inside it). */
	spu_inflight_wait(&k->fl, &k->sub_lock, sub_id);
	pthread_mutex_unlock(&k->sub_lock);
	free(pattern);
	wake_ctl(k, false);
	return 0;
}

/* Under sub_lock: is any subscription interested in `topic`? */
static bool topic_wanted(kafka *k, const char *topic)
{
	if (smap_get(&k->exact, topic))
		return true;
	if (k->n_prefix && strncmp(topic, "__", 2) != 0) /* never Kafka's internal topics */
		for (size_t i = 0; i < k->subs.n; i++)
			if (k->subs.v[i].kind == SIOGW_SUB_PREFIX && spu_sub_matches(&k->subs.v[i], topic))
				return true;
	return false;
}

/* ---- flow control (consumer thread; fc_lock) ---------------------------------- */

static fcent *fc_find(kafka *k, const char *topic, int32_t part)
{
	for (size_t i = 0; i < k->n_fc; i++)
		if (k->fc[i]->part == part && strcmp(k->fc[i]->topic, topic) == 0)
			return k->fc[i];
	return NULL;
}

static void fc_free(fcent *f)
{
	free(f->topic);
	free(f->done.ids);
	free(f);
}

static void fc_remove_at(kafka *k, size_t i)
{
	if (k->fc[i]->paused)
		atomic_fetch_sub(&k->n_paused, 1);
	fc_free(k->fc[i]);
	k->fc[i] = k->fc[--k->n_fc];
	atomic_store(&k->n_fc_atomic, k->n_fc);
}

/* Drop the entries of a topic (unassigned by the control thread). */
static void fc_forget_topic(kafka *k, const char *topic)
{
	pthread_mutex_lock(&k->fc_lock);
	for (size_t i = 0; i < k->n_fc;)
		if (strcmp(k->fc[i]->topic, topic) == 0)
			fc_remove_at(k, i);
		else
			i++;
	pthread_mutex_unlock(&k->fc_lock);
}

static void partition_op(kafka *k, const char *topic, int32_t part, int64_t offset, int op)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, topic, part)->offset = offset;
	if (op == 0) {
		rd_kafka_pause_partitions(k->cons, l);
	} else if (op == 1) {
		rd_kafka_resume_partitions(k->cons, l);
	} else {
		rd_kafka_error_t *e = rd_kafka_seek_partitions(k->cons, l, 1000);
		if (e) {
			klog(k, SIOGW_LOG_WARN, "seek %s [%d] to %lld: %s", topic, (int)part, (long long)offset,
			     rd_kafka_error_string(e));
			rd_kafka_error_destroy(e);
		}
	}
	rd_kafka_topic_partition_list_destroy(l);
}

/* The gateway refused message (topic, part, off) for a subscription: keep what the
 * others took in `done`, pause, rewind, and resume after the back-off. */
static void fc_refused(kafka *k, const char *topic, int32_t part, int64_t off, const uint64_t *took,
		       size_t n_took)
{
	pthread_mutex_lock(&k->fc_lock);
	fcent *f = fc_find(k, topic, part);
	if (!f) {
		if (k->n_fc == k->cap_fc) {
			size_t cap = k->cap_fc ? k->cap_fc * 2 : 8;
			fcent **nf = realloc(k->fc, cap * sizeof *nf);
			if (nf)
				k->fc = nf, k->cap_fc = cap;
		}
		f = k->n_fc < k->cap_fc ? calloc(1, sizeof *f) : NULL;
		if (f && !(f->topic = strdup(topic))) {
			free(f);
			f = NULL;
		}
		if (!f) { /* out of memory: the message is lost, as in drop mode */
			pthread_mutex_unlock(&k->fc_lock);
			atomic_fetch_add(&k->dropped, 1);
			return;
		}
		f->part = part;
		f->backoff = k->pause_backoff;
		f->done_off = -1;
		k->fc[k->n_fc++] = f;
		atomic_store(&k->n_fc_atomic, k->n_fc);
	} else {
		f->backoff = f->backoff * 2 > PAUSE_BACKOFF_MAX_MS ? PAUSE_BACKOFF_MAX_MS : f->backoff * 2;
	}
	if (f->done_off != off) {
		f->done.n = 0;
		f->done_off = off;
	}
	for (size_t i = 0; i < n_took; i++)
		if (!idlist_has(&f->done, took[i]))
			idlist_add(&f->done, took[i]);
	if (!f->paused)
		atomic_fetch_add(&k->n_paused, 1);
	f->paused = true;
	f->expect = off;
	f->resume_at = now_ms() + f->backoff;
	pthread_mutex_unlock(&k->fc_lock);
	atomic_fetch_add(&k->pauses, 1);
	partition_op(k, topic, part, 0, 0);
	partition_op(k, topic, part, off, 2);
}

/* Resume partitions whose back-off has passed; returns ms until the next one (or max). */
static int fc_tick(kafka *k, int max)
{
	if (atomic_load(&k->n_fc_atomic) == 0)
		return max;
	int64_t now = now_ms(), next = now + max;
	struct {
		char *topic;
		int32_t part;
	} due[16];
	size_t n_due = 0;
	pthread_mutex_lock(&k->fc_lock);
	for (size_t i = 0; i < k->n_fc; i++) {
		fcent *f = k->fc[i];
		if (!f->paused)
			continue;
		if (f->resume_at <= now && n_due < 16) {
			due[n_due].topic = strdup(f->topic);
			due[n_due].part = f->part;
			if (due[n_due].topic) {
				n_due++;
				f->paused = false;
				atomic_fetch_sub(&k->n_paused, 1);
			}
		} else if (f->resume_at < next) {
			next = f->resume_at;
		}
	}
	pthread_mutex_unlock(&k->fc_lock);
	for (size_t i = 0; i < n_due; i++) {
		partition_op(k, due[i].topic, due[i].part, 0, 1);
		free(due[i].topic);
	}
	int64_t wait = next - now_ms();
	return wait < 1 ? 1 : wait > max ? max : (int)wait;
}

/* ---- the consumer thread ------------------------------------------------------- */

static void consume_one(kafka *k, rd_kafka_message_t *m)
{
	const char *topic = rd_kafka_topic_name(m->rkt);
	int32_t part = m->partition;
	int64_t off = m->offset;
	idlist done = {0};
	bool have_fc = false;

	if (atomic_load(&k->n_fc_atomic)) {
		pthread_mutex_lock(&k->fc_lock);
		fcent *f = fc_find(k, topic, part);
		bool skip = f && (f->paused || off < f->expect);
		if (f && !skip && f->done_off == off && f->done.n) {
			done.ids = malloc(f->done.n * sizeof *done.ids);
			if (done.ids) {
				memcpy(done.ids, f->done.ids, f->done.n * sizeof *done.ids);
				done.n = done.cap = f->done.n;
			}
		}
		have_fc = f != NULL;
		pthread_mutex_unlock(&k->fc_lock);
		if (skip)
			return; /* a copy from before the rewind: it comes again */
	}
	atomic_fetch_add(&k->consumed, 1);

	/* Snapshot the matching ids: the table may change while unlocked. */
	pthread_mutex_lock(&k->sub_lock);
	size_t n = 0, room = spu_ids_fit(&k->match, &k->cap_match, k->subs.n);
	sent *e = smap_get(&k->exact, topic);
	idlist *el = e ? e->ptr : NULL;
	for (size_t i = 0; el && i < el->n && n < room; i++)
		k->match[n++] = el->ids[i];
	for (size_t i = 0; k->n_prefix && i < k->subs.n && n < room; i++)
		if (k->subs.v[i].kind == SIOGW_SUB_PREFIX && spu_sub_matches(&k->subs.v[i], topic))
			k->match[n++] = k->subs.v[i].id;
	uint64_t gen = k->subs.gen;
	bool refused = false;
	const void *key = m->key;
	size_t key_len = m->key ? m->key_len : 0;
	const void *data = m->payload ? m->payload : "";
	for (size_t i = 0; i < n; i++) {
		uint64_t id = k->match[i];
		if (idlist_has(&done, id))
			continue; /* took it before the rewind */
		if (!spu_subs_still(&k->subs, id, gen))
			continue; /* unsubscribed since the snapshot */
		spu_inflight_outer outer = spu_inflight_enter(&k->fl, id);
		pthread_mutex_unlock(&k->sub_lock);
		size_t len = m->payload ? m->len : 0;
		int rc = k->host->deliver(k->host->ctx, id, topic, key, key_len, data, len);
		/* pause mode: a busy gateway usually drains within a few ms (a loop turn);
		 * retry in place first, pause the partition only if it stays full */
		int64_t until = rc == -SIOGW_EAGAIN && k->on_full == ON_FULL_PAUSE ? now_ms() + k->pause_backoff : 0;
		for (int w = 1; rc == -SIOGW_EAGAIN && now_ms() < until && atomic_load(&k->state) == ST_RUNNING;
		     w = w < 8 ? w * 2 : 8) {
			atomic_fetch_add(&k->refused, 1);
			struct timespec ts = {0, (long)w * 1000000};
			nanosleep(&ts, NULL);
			pthread_mutex_lock(&k->sub_lock);
			/* let a waiting unsubscribe look again; stay in flight while subscribed */
			k->fl.busy = false;
			pthread_cond_broadcast(&k->fl.idle);
			bool still = spu_subs_find(&k->subs, id) != NULL;
			k->fl.busy = still;
			pthread_mutex_unlock(&k->sub_lock);
			if (!still) {
				rc = 0; /* unsubscribed meanwhile: nothing to deliver */
				break;
			}
			rc = k->host->deliver(k->host->ctx, id, topic, key, key_len, data, len);
		}
		pthread_mutex_lock(&k->sub_lock);
		spu_inflight_leave(&k->fl, outer);
		if (rc == -SIOGW_EAGAIN) {
			atomic_fetch_add(&k->refused, 1);
			if (k->on_full == ON_FULL_DROP) {
				atomic_fetch_add(&k->dropped, 1);
				continue;
			}
			refused = true;
			break;
		}
		idlist_add(&done, id);
	}
	pthread_mutex_unlock(&k->sub_lock);

	if (refused) {
		fc_refused(k, topic, part, off, done.ids, done.n);
	} else if (have_fc) {
		/* delivered: this partition flows again */
		pthread_mutex_lock(&k->fc_lock);
		for (size_t i = 0; i < k->n_fc; i++)
			if (k->fc[i]->part == part && !k->fc[i]->paused && !strcmp(k->fc[i]->topic, topic)) {
				fc_remove_at(k, i);
				break;
			}
		pthread_mutex_unlock(&k->fc_lock);
	}
	free(done.ids);
}

static void *consumer_main(void *arg)
{
	kafka *k = arg;
	int64_t logged_at = 0;
	while (atomic_load(&k->state) == ST_RUNNING) {
		int wait = fc_tick(k, 100);
		rd_kafka_message_t *m = rd_kafka_consumer_poll(k->cons, wait);
		if (!m)
			continue;
		if (m->err) {
			atomic_fetch_add(&k->consume_errors, 1);
			int64_t now = now_ms();
			if (now - logged_at > 10000) { /* at most one line per 10 s */
				logged_at = now;
				klog(k, SIOGW_LOG_WARN, "consumer: %s%s%s", m->rkt ? rd_kafka_topic_name(m->rkt) : "",
				     m->rkt ? ": " : "", rd_kafka_message_errstr(m));
			}
		} else {
			consume_one(k, m);
		}
		rd_kafka_message_destroy(m);
	}
	return NULL;
}

/* ---- the control thread: metadata, creation, assignment ------------------------ */

/* Topic creation settings for `topic`: partitions, replication, and config pairs. */
static rd_kafka_NewTopic_t *new_topic(kafka *k, const char *topic, char *err, size_t err_len)
{
	int parts = k->partitions, repl = k->replication;
	const char *spec = NULL;
	for (size_t i = 0; i < k->n_topic_specs; i++)
		if (!strcmp(k->topic_specs[i].name, topic))
			spec = k->topic_specs[i].value;
	char *dup = spec ? strdup(spec) : NULL;
	for (char *save = NULL, *kv = dup ? strtok_r(dup, ",", &save) : NULL; kv; kv = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(kv, '=');
		if (!eq)
			continue;
		*eq = 0;
		if (!strcmp(kv, "partitions"))
			parts = atoi(eq + 1);
		else if (!strcmp(kv, "replication_factor"))
			repl = atoi(eq + 1) > 0 ? atoi(eq + 1) : -1;
		*eq = '=';
	}
	rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, parts, repl, err, err_len);
	if (!nt) {
		free(dup);
		return NULL;
	}
	for (size_t i = 0; i < k->n_topic_configs; i++)
		rd_kafka_NewTopic_set_config(nt, k->topic_configs[i]->name + 13, k->topic_configs[i]->str);
	if (dup) {
		strcpy(dup, spec);
		for (char *save = NULL, *kv = strtok_r(dup, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
			char *eq = strchr(kv, '=');
			if (!eq)
				continue;
			*eq = 0;
			if (strcmp(kv, "partitions") && strcmp(kv, "replication_factor"))
				rd_kafka_NewTopic_set_config(nt, kv, eq + 1);
		}
	}
	free(dup);
	return nt;
}

/*
 * Create `topics` with CreateTopics. Returns 0 when every one exists afterwards (created
 * or already there), 1 when the cluster did not answer (no CreateTopics support, e.g.
 * librdkafka's mock cluster), -1 with err for a refusal. Control thread / start().
 */
static int admin_create(kafka *k, char **topics, size_t n, char *err, size_t err_len)
{
	rd_kafka_NewTopic_t **nts = calloc(n, sizeof *nts);
	if (!nts) {
		spu_seterr(err, err_len, "out of memory");
		return -1;
	}
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		char e[256];
		nts[m] = new_topic(k, topics[i], e, sizeof e);
		if (nts[m])
			m++;
		else
			spu_seterr(err, err_len, "%s: %s", topics[i], e);
	}
	int rc = m == n ? 0 : -1;
	/* the consumer handle: it lives until stop() joins this thread (the producer may be
	 * replaced under us) */
	rd_kafka_t *rk = k->cons;
	if (!rk || m == 0) {
		rd_kafka_NewTopic_destroy_array(nts, m);
		free(nts);
		return rk ? rc : 1;
	}
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
	char e[256];
	rd_kafka_AdminOptions_set_request_timeout(ao, k->admin_timeout, e, sizeof e);
	rd_kafka_AdminOptions_set_operation_timeout(ao, k->admin_timeout, e, sizeof e);
	rd_kafka_CreateTopics(rk, nts, m, ao, q);
	rd_kafka_event_t *ev = NULL;
	int64_t end = now_ms() + k->admin_timeout + 1000;
	while (!ev && now_ms() < end && atomic_load(&k->state) <= ST_RUNNING)
		ev = rd_kafka_queue_poll(q, 100);
	if (!ev) {
		rc = 1; /* unanswered (the mock cluster never answers CreateTopics) or stopping */
		spu_seterr(err, err_len, "CreateTopics not answered within %d ms", k->admin_timeout);
	} else if (rd_kafka_event_error(ev)) {
		rd_kafka_resp_err_t ee = rd_kafka_event_error(ev);
		rc = ee == RD_KAFKA_RESP_ERR__TIMED_OUT || ee == RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE ? 1 : -1;
		spu_seterr(err, err_len, "CreateTopics: %s", rd_kafka_event_error_string(ev));
	} else {
		const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
		size_t nr = 0;
		const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &nr) : NULL;
		for (size_t i = 0; i < nr; i++) {
			rd_kafka_resp_err_t te = rd_kafka_topic_result_error(tr[i]);
			if (te == RD_KAFKA_RESP_ERR_NO_ERROR || te == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
				continue;
			rc = rc == 1 ? 1 : -1;
			const char *msg = rd_kafka_topic_result_error_string(tr[i]);
			spu_seterr(err, err_len, "CreateTopics %s: %s", rd_kafka_topic_result_name(tr[i]),
				   msg && msg[0] ? msg : rd_kafka_err2str(te));
		}
	}
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_AdminOptions_destroy(ao);
	rd_kafka_queue_destroy(q);
	rd_kafka_NewTopic_destroy_array(nts, m);
	free(nts);
	return rc;
}

/* Ask the brokers to auto-create `topic`: a metadata request for it from the consumer
 * handle, configured with allow.auto.create.topics. 0 when the topic exists afterwards. */
static int auto_create(kafka *k, const char *topic, char *err, size_t err_len)
{
	rd_kafka_t *rk = k->cons;
	rd_kafka_topic_t *rkt = rk ? rd_kafka_topic_new(rk, topic, NULL) : NULL;
	if (!rkt) {
		spu_seterr(err, err_len, "no client handle");
		return -1;
	}
	int rc = -1;
	for (int attempt = 0; attempt < 3 && rc; attempt++) {
		const struct rd_kafka_metadata *md = NULL;
		rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, METADATA_TIMEOUT_MS);
		if (e) {
			spu_seterr(err, err_len, "metadata: %s", rd_kafka_err2str(e));
		} else if (md->topic_cnt == 1 && md->topics[0].err == 0 && md->topics[0].partition_cnt > 0) {
			rc = 0;
		} else {
			rd_kafka_resp_err_t te = md->topic_cnt ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
			spu_seterr(err, err_len, "broker auto-creation: %s", rd_kafka_err2str(te));
			if (te == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || te == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
				attempt = 3; /* refused: no point in asking again now */
		}
		if (md)
			rd_kafka_metadata_destroy(md);
	}
	rd_kafka_topic_destroy(rkt);
	return rc;
}

/* Make `topics` exist per create_topics. Returns the number still missing; err names the
 * first failure. */
static size_t ensure_topics(kafka *k, char **topics, size_t n, char *err, size_t err_len)
{
	if (n == 0)
		return 0;
	if (k->create_mode == CREATE_OFF) {
		spu_seterr(err, err_len, "topic %s does not exist and create_topics is off", topics[0]);
		return n;
	}
	if (k->create_mode == CREATE_ADMIN && !k->admin_broken) {
		char e[256] = "";
		int rc = admin_create(k, topics, n, e, sizeof e);
		if (rc == 0)
			return 0;
		if (rc == 1) {
			klog(k, SIOGW_LOG_WARN,
			     "%s: the cluster does not create topics through the admin API; using broker "
			     "auto-creation from now on (create_topics: auto skips this wait)", e);
			k->admin_broken = true;
		} else {
			spu_seterr(err, err_len, "%s", e);
			/* fall back to auto-creation: a broker may allow it even so */
		}
	}
	size_t missing = 0;
	for (size_t i = 0; i < n; i++) {
		char e[256] = "";
		if (auto_create(k, topics[i], e, sizeof e) != 0) {
			if (!missing++)
				spu_seterr(err, err_len, "topic %s does not exist and could not be created: %s", topics[i], e);
		}
	}
	return missing;
}

/* One metadata refresh into k->known. false on failure (health updated). */
static bool refresh_metadata(kafka *k, bool *grew, int timeout_ms)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t e = rd_kafka_metadata(k->cons, 1, NULL, &md, timeout_ms);
	if (e) {
		atomic_fetch_add(&k->md_errors, 1);
		pthread_mutex_lock(&k->st_lock);
		if (!k->down_reason[0])
			snprintf(k->down_reason, sizeof k->down_reason, "cannot reach brokers %s: %s", k->brokers,
				 rd_kafka_err2str(e));
		pthread_mutex_unlock(&k->st_lock);
		return false;
	}
	set_reason(k, k->down_reason, NULL);
	k->md_gen++;
	*grew = false;
	/* mark-and-sweep: val2 = generation first seen; stale entries removed */
	smap fresh = {0};
	for (int i = 0; i < md->topic_cnt; i++) {
		const struct rd_kafka_metadata_topic *t = &md->topics[i];
		if (t->err || t->partition_cnt <= 0)
			continue; /* being created, or an error: next time */
		sent *old = smap_get(&k->known, t->topic);
		sent *n = smap_put(&fresh, t->topic, NULL);
		if (!n)
			continue;
		n->val = t->partition_cnt;
		n->val2 = old ? old->val2 : (int64_t)k->md_gen;
		if (!old || old->val < t->partition_cnt)
			*grew = true;
	}
	rd_kafka_metadata_destroy(md);
	smap_free(&k->known, NULL);
	k->known = fresh;
	k->md_at = now_ms();
	return true;
}

/* Bring the consumer's assignment in line with the subscriptions and k->known. Returns
 * true when an exact-subscribed topic is missing. */
static bool reassign(kafka *k, bool refreshed, char ***missing, size_t *n_missing)
{
	rd_kafka_topic_partition_list_t *add = rd_kafka_topic_partition_list_new(16);
	rd_kafka_topic_partition_list_t *del = rd_kafka_topic_partition_list_new(16);
	*n_missing = 0;
	pthread_mutex_lock(&k->sub_lock);
	SMAP_EACH(&k->known, t)
	{
		if (!topic_wanted(k, t->key))
			continue;
		sent *a = smap_put(&k->assigned, t->key, NULL);
		if (!a || a->val >= t->val)
			continue;
		/* new partitions of an assigned topic, and topics that appeared since the
		 * last refresh, from their start; others per start_offset */
		bool appeared = refreshed && t->val2 == (int64_t)k->md_gen && k->md_gen > 1;
		int64_t from = a->val > 0 || appeared || k->start_offset == START_EARLIEST ? RD_KAFKA_OFFSET_BEGINNING
									       : RD_KAFKA_OFFSET_END;
		for (int64_t p = a->val; p < t->val; p++)
			rd_kafka_topic_partition_list_add(add, t->key, (int32_t)p)->offset = from;
		a->val = t->val;
	}
	/* exact topics that do not exist (yet) */
	SMAP_EACH(&k->exact, x)
	{
		if (smap_get(&k->known, x->key))
			continue;
		char **nm = realloc(*missing, (*n_missing + 1) * sizeof *nm);
		if (!nm)
			break;
		*missing = nm;
		if (!((*missing)[*n_missing] = strdup(x->key)))
			break;
		(*n_missing)++;
	}
	/* assigned topics nobody wants any more, or that vanished */
	char **gone = NULL;
	size_t n_gone = 0;
	SMAP_EACH(&k->assigned, a)
	{
		if (a->val > 0 && topic_wanted(k, a->key) && smap_get(&k->known, a->key))
			continue;
		char **ng = realloc(gone, (n_gone + 1) * sizeof *ng);
		if (!ng)
			break;
		gone = ng;
		gone[n_gone] = strdup(a->key);
		if (gone[n_gone])
			n_gone++;
	}
	pthread_mutex_unlock(&k->sub_lock);

	for (size_t i = 0; i < n_gone; i++) {
		sent *a = smap_get(&k->assigned, gone[i]);
		for (int64_t p = 0; a && p < a->val; p++)
			rd_kafka_topic_partition_list_add(del, gone[i], (int32_t)p);
		smap_del(&k->assigned, gone[i]);
		fc_forget_topic(k, gone[i]);
		free(gone[i]);
	}
	free(gone);
	if (del->cnt) {
		rd_kafka_resume_partitions(k->cons, del); /* a pause must not outlive the assignment */
		rd_kafka_error_t *e = rd_kafka_incremental_unassign(k->cons, del);
		if (e) {
			klog(k, SIOGW_LOG_WARN, "unassign %d partitions: %s", del->cnt, rd_kafka_error_string(e));
			rd_kafka_error_destroy(e);
		}
		atomic_fetch_sub(&k->n_assigned, (size_t)del->cnt);
	}
	if (add->cnt) {
		rd_kafka_error_t *e = rd_kafka_incremental_assign(k->cons, add);
		if (e) {
			klog(k, SIOGW_LOG_WARN, "assign %d partitions: %s", add->cnt, rd_kafka_error_string(e));
			rd_kafka_error_destroy(e);
			/* forget them: the next pass tries again */
			for (int i = 0; i < add->cnt; i++)
				smap_del(&k->assigned, add->elems[i].topic);
		} else {
			rd_kafka_resume_partitions(k->cons, add);
			atomic_fetch_add(&k->n_assigned, (size_t)add->cnt);
			klog(k, SIOGW_LOG_DEBUG, "assigned %d partitions (first: %s [%d] from %s)", add->cnt,
			     add->elems[0].topic, (int)add->elems[0].partition,
			     add->elems[0].offset == RD_KAFKA_OFFSET_END ? "the end" : "the beginning");
		}
	}
	rd_kafka_topic_partition_list_destroy(add);
	rd_kafka_topic_partition_list_destroy(del);
	return *n_missing > 0;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Create what is missing (exact subscriptions, published topics in admin mode), with a
 * retry delay per topic; health names a subscribed topic that cannot be created. */
static void create_missing(kafka *k, char **missing, size_t n_missing, char **published, size_t n_pub)
{
	int64_t now = now_ms();
	char **todo = calloc(n_missing + n_pub + 1, sizeof *todo);
	size_t n = 0;
	if (!todo)
		return;
	for (size_t i = 0; i < n_missing + n_pub; i++) {
		char *t = i < n_missing ? missing[i] : published[i - n_missing];
		if (smap_get(&k->known, t))
			continue;
		bool created;
		sent *c = smap_put(&k->creating, t, &created);
		if (!c || c->val > now)
			continue;
		bool dup = false;
		for (size_t j = 0; j < n; j++)
			dup |= !strcmp(todo[j], t);
		if (!dup)
			todo[n++] = t;
	}
	char topic_err[256] = "";
	for (size_t i = 0; i < n; i++) {
		bool subscribed_only = true;
		for (size_t j = 0; j < n_pub && subscribed_only; j++)
			subscribed_only = strcmp(published[j], todo[i]) != 0;
		if (k->create_mode == CREATE_OFF || (subscribed_only && !k->create_subscribed)) {
			sent *c = smap_get(&k->creating, todo[i]);
			if (c && !c->ptr) { /* say it once per topic */
				c->ptr = strdup("off");
				klog(k, SIOGW_LOG_INFO, "subscribed topic %s does not exist (%s); waiting for it", todo[i],
				     k->create_mode == CREATE_OFF ? "create_topics: off" : "create_subscribed: false");
			}
			if (c)
				c->val = now + CREATE_RETRY_MS;
			todo[i] = NULL;
		}
	}
	{
		for (size_t i = 0; i < n; i++) {
			if (!todo[i])
				continue;
			char e[256] = "";
			size_t left = ensure_topics(k, &todo[i], 1, e, sizeof e);
			sent *c = smap_get(&k->creating, todo[i]);
			if (left == 0) {
				if (c) {
					free(c->ptr);
					smap_del(&k->creating, todo[i]);
				}
				wake_ctl(k, true);
				continue;
			}
			atomic_fetch_add(&k->create_errors, 1);
			if (c) {
				c->val = now + CREATE_RETRY_MS;
				if (!c->ptr || strcmp(c->ptr, e)) {
					klog(k, SIOGW_LOG_ERROR, "%s", e);
					free(c->ptr);
					c->ptr = strdup(e);
				}
			}
		}
	}
	/* health: a subscribed topic whose creation failed */
	for (size_t i = 0; i < n_missing && !topic_err[0]; i++) {
		sent *c = smap_get(&k->creating, missing[i]);
		if (c && c->ptr && strcmp(c->ptr, "off"))
			snprintf(topic_err, sizeof topic_err, "%s", (char *)c->ptr);
	}
	/* forget creation state of topics that exist now or are no longer needed */
	char **drop = NULL;
	size_t n_drop = 0;
	SMAP_EACH(&k->creating, c)
	{
		bool needed = false;
		for (size_t i = 0; i < n_missing && !needed; i++)
			needed = !strcmp(missing[i], c->key);
		for (size_t i = 0; i < n_pub && !needed; i++)
			needed = !strcmp(published[i], c->key) && !smap_get(&k->known, c->key);
		if (!needed) {
			char **nd = realloc(drop, (n_drop + 1) * sizeof *nd);
			if (!nd)
				break;
			drop = nd;
			drop[n_drop++] = c->key;
		}
	}
	for (size_t i = 0; i < n_drop; i++) {
		char *key = strdup(drop[i]);
		if (key)
			free(smap_del(&k->creating, key));
		free(key);
	}
	free(drop);
	free(todo);
	set_reason(k, k->topic_reason, topic_err[0] ? "%s" : NULL, topic_err);
}

static void *control_main(void *arg)
{
	kafka *k = arg;
	int64_t next_refresh = 0; /* at once */
	int64_t last_fast_refresh = 0;
	pthread_mutex_lock(&k->ctl_lock);
	while (atomic_load(&k->state) == ST_RUNNING) {
		int64_t now = now_ms();
		bool soon = k->ctl_refresh_soon && now - last_fast_refresh >= FAST_REFRESH_MS;
		if (!k->ctl_dirty && !soon && now < next_refresh) {
			int64_t until = next_refresh;
			if (k->ctl_refresh_soon && last_fast_refresh + FAST_REFRESH_MS < until)
				until = last_fast_refresh + FAST_REFRESH_MS;
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			int64_t wait = until - now;
			ts.tv_sec += wait / 1000;
			ts.tv_nsec += (wait % 1000) * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&k->ctl_cond, &k->ctl_lock, &ts);
			continue;
		}
		bool dirty = k->ctl_dirty;
		bool refresh = now >= next_refresh || soon;
		/* a changed subscription refreshes too, at most every FAST_REFRESH_MS: its topic
		 * may have been created a moment ago */
		if (dirty && now - k->md_at >= FAST_REFRESH_MS)
			refresh = true;
		k->ctl_dirty = false;
		if (refresh)
			k->ctl_refresh_soon = false;
		char **pub = k->to_create;
		size_t n_pub = k->n_to_create;
		k->to_create = NULL;
		k->n_to_create = k->cap_to_create = 0;
		int64_t last_sub = k->last_subscribe_ms;
		pthread_mutex_unlock(&k->ctl_lock);

		bool ok = true, grew = false;
		if (refresh) {
			ok = refresh_metadata(k, &grew, METADATA_TIMEOUT_MS);
			last_fast_refresh = now_ms();
		}
		char **missing = NULL;
		size_t n_missing = 0;
		pthread_mutex_lock(&k->st_lock);
		bool down = k->down_reason[0] != 0;
		pthread_mutex_unlock(&k->st_lock);
		if (ok && k->md_gen > 0) {
			bool miss = reassign(k, refresh, &missing, &n_missing);
			if ((n_missing || n_pub) && !down) {
				create_missing(k, missing, n_missing, pub, n_pub);
				free_strv(pub, n_pub);
				pub = NULL;
				n_pub = 0;
			}
			/* a subscribed topic is missing: look again soon, for a while */
			if (miss && now_ms() - last_sub < FAST_REFRESH_FOR_MS) {
				pthread_mutex_lock(&k->ctl_lock);
				k->ctl_refresh_soon = true;
				pthread_mutex_unlock(&k->ctl_lock);
			}
		}
		if (n_pub) {
			/* brokers away: publish() queues these topics again next time */
			pthread_mutex_lock(&k->ctl_lock);
			for (size_t i = 0; i < n_pub; i++) {
				sent *p = smap_get(&k->published, pub[i]);
				if (p)
					p->val = 0;
			}
			pthread_mutex_unlock(&k->ctl_lock);
		}
		free_strv(missing, n_missing);
		free_strv(pub, n_pub);
		if (refresh) {
			int64_t interval = k->metadata_refresh;
			if (!ok && interval > 1000)
				interval = 1000; /* outage: probe every second */
			next_refresh = now_ms() + interval;
		}
		pthread_mutex_lock(&k->ctl_lock);
	}
	pthread_mutex_unlock(&k->ctl_lock);
	return NULL;
}

/* ---- the producer ------------------------------------------------------------ */

static rd_kafka_t *producer_new(kafka *k, char *err, size_t err_len)
{
	rd_kafka_conf_t *c = rd_kafka_conf_dup(k->pconf);
	char e[512];
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, e, sizeof e);
	if (!rk) {
		rd_kafka_conf_destroy(c);
		spu_seterr(err, err_len, "kafka: producer: %s", e);
	}
	return rk;
}

/* Fire the reports of `gen` (or every one with gen == UINT_MAX) still pending. */
static void fire_pending(kafka *k, unsigned gen, int status)
{
	dr_rec list = {0};
	list.prev = list.next = &list;
	pthread_mutex_lock(&k->dr_lock);
	for (dr_rec *r = k->dr_head.next, *next; r != &k->dr_head; r = next) {
		next = r->next;
		if (gen != UINT32_MAX && r->gen != gen)
			continue;
		r->prev->next = r->next;
		r->next->prev = r->prev;
		r->next = &list;
		r->prev = list.prev;
		list.prev->next = r;
		list.prev = r;
	}
	pthread_mutex_unlock(&k->dr_lock);
	for (dr_rec *r = list.next, *next; r != &list; r = next) {
		next = r->next;
		r->dr(r->arg, status);
		free(r);
	}
}

/* Flush up to `flush_ms`, then fail what is left and destroy. Reports all fire. */
static void producer_close(kafka *k, rd_kafka_t *rk, unsigned gen, int flush_ms)
{
	if (flush_ms > 0)
		rd_kafka_flush(rk, flush_ms);
	rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	int64_t end = now_ms() + 2000;
	while (rd_kafka_outq_len(rk) > 0 && now_ms() < end)
		rd_kafka_poll(rk, 10);
	rd_kafka_poll(rk, 0);
	rd_kafka_destroy(rk);
	/* anything librdkafka did not report (it always should) */
	fire_pending(k, gen, atomic_load(&k->purging_for_close) ? -SIOGW_ECLOSED : -SIOGW_EIO);
}

static void *dr_main(void *arg)
{
	kafka *k = arg;
	while (atomic_load(&k->state) == ST_RUNNING) {
		rd_kafka_t *rk = k->prod; /* only this thread replaces it while running */
		rd_kafka_poll(rk, 100);
		if (!atomic_load(&k->prod_fatal))
			continue;
		/* A fatal (idempotence) error: this producer is finished. Replace it; what it
		 * still held fails (EIO), publishing goes on with the new one. */
		char e[256];
		rd_kafka_t *fresh = producer_new(k, e, sizeof e);
		if (!fresh) {
			klog(k, SIOGW_LOG_ERROR, "cannot replace the failed producer: %s", e);
			struct timespec ts = {1, 0};
			nanosleep(&ts, NULL);
			continue;
		}
		pthread_rwlock_wrlock(&k->prod_lock);
		k->prod = fresh;
		unsigned old_gen = k->prod_gen++;
		pthread_rwlock_unlock(&k->prod_lock);
		atomic_store(&k->prod_fatal, false);
		atomic_fetch_add(&k->producer_restarts, 1);
		klog(k, SIOGW_LOG_ERROR, "producer had a fatal error; replaced it (its pending messages failed)");
		producer_close(k, rk, old_gen, 0);
		set_reason(k, k->fatal_reason, NULL);
	}
	return NULL;
}

static int kafka_publish(void *self, const char *topic, const void *key, size_t key_len, const void *data,
			 size_t len, siogw_dr_cb dr, void *dr_arg)
{
	kafka *k = self;
	if (!topic || !topic_legal(topic) || (len && !data) || (key_len && !key))
		return -SIOGW_EINVAL;
	dr_rec *r = NULL;
	if (dr) {
		r = malloc(sizeof *r);
		if (!r)
			return -SIOGW_ENOMEM;
		r->dr = dr;
		r->arg = dr_arg;
	}
	pthread_rwlock_rdlock(&k->prod_lock);
	if (atomic_load(&k->state) != ST_RUNNING || !k->prod) {
		pthread_rwlock_unlock(&k->prod_lock);
		free(r);
		return -SIOGW_ECLOSED;
	}
	if (r) { /* listed before producev: its report may fire on another thread at once */
		r->gen = k->prod_gen;
		pthread_mutex_lock(&k->dr_lock);
		r->next = &k->dr_head;
		r->prev = k->dr_head.prev;
		k->dr_head.prev->next = r;
		k->dr_head.prev = r;
		pthread_mutex_unlock(&k->dr_lock);
	}
	/* the vector form: RD_KAFKA_V_* macros use GNU statement expressions (-Wpedantic) */
	rd_kafka_vu_t vu[5];
	memset(vu, 0, sizeof vu);
	vu[0].vtype = RD_KAFKA_VTYPE_TOPIC;
	vu[0].u.cstr = topic;
	vu[1].vtype = RD_KAFKA_VTYPE_KEY;
	vu[1].u.mem.ptr = key_len ? (void *)key : NULL;
	vu[1].u.mem.size = key_len;
	vu[2].vtype = RD_KAFKA_VTYPE_VALUE;
	vu[2].u.mem.ptr = len ? (void *)data : NULL;
	vu[2].u.mem.size = len;
	vu[3].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
	vu[3].u.i = RD_KAFKA_MSG_F_COPY;
	vu[4].vtype = RD_KAFKA_VTYPE_OPAQUE;
	vu[4].u.ptr = r;
	rd_kafka_error_t *pe = rd_kafka_produceva(k->prod, vu, 5);
	rd_kafka_resp_err_t e = pe ? rd_kafka_error_code(pe) : RD_KAFKA_RESP_ERR_NO_ERROR;
	if (pe)
		rd_kafka_error_destroy(pe);
	pthread_rwlock_unlock(&k->prod_lock);
	if (e) {
		if (r) {
			pthread_mutex_lock(&k->dr_lock);
			r->prev->next = r->next;
			r->next->prev = r->prev;
			pthread_mutex_unlock(&k->dr_lock);
			free(r);
		}
		if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
			atomic_fetch_add(&k->rejected, 1);
			return -SIOGW_EAGAIN;
		}
		if (e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE || e == RD_KAFKA_RESP_ERR__INVALID_ARG)
			return -SIOGW_EINVAL;
		return -SIOGW_EIO;
	}
	atomic_fetch_add(&k->published_n, 1);

	/* A topic published to for the first time: create it (admin mode), and let a
	 * prefix subscription of this node find it soon. */
	if (k->create_mode == CREATE_ADMIN || k->n_prefix) {
		pthread_mutex_lock(&k->ctl_lock);
		bool created = false;
		sent *p = smap_get(&k->published, topic);
		if (!p && k->published.n < 100000)
			p = smap_put(&k->published, topic, &created);
		if (p && p->val == 0) {
			p->val = 1;
			k->ctl_refresh_soon = true;
			if (k->create_mode == CREATE_ADMIN) {
				if (k->n_to_create == k->cap_to_create) {
					size_t cap = k->cap_to_create ? k->cap_to_create * 2 : 8;
					char **nt = realloc(k->to_create, cap * sizeof *nt);
					if (nt)
						k->to_create = nt, k->cap_to_create = cap;
				}
				char *t = k->n_to_create < k->cap_to_create ? strdup(topic) : NULL;
				if (t)
					k->to_create[k->n_to_create++] = t;
			}
			pthread_cond_signal(&k->ctl_cond);
		}
		pthread_mutex_unlock(&k->ctl_lock);
	}
	return 0;
}

/* ---- lifecycle ----------------------------------------------------------------- */

static int spawn(pthread_t *t, void *(*fn)(void *), kafka *k, const char *name)
{
	sigset_t old;
	block_signals(&old);
	int rc = pthread_create(t, NULL, fn, k);
	restore_signals(&old);
	if (rc == 0)
		pthread_setname_np(*t, name);
	return rc;
}

static int kafka_start(void *self, char *err, size_t err_len)
{
	kafka *k = self;
	int st = atomic_load(&k->state);
	if (st == ST_RUNNING)
		return 0;
	if (st != ST_CREATED || !k->pconf) {
		spu_seterr(err, err_len, "kafka: already stopped");
		return -SIOGW_ECLOSED;
	}
	sigset_t old;
	block_signals(&old); /* librdkafka's threads inherit the mask */
	k->prod = producer_new(k, err, err_len);
	char e[512];
	if (k->prod) {
		k->cons = rd_kafka_new(RD_KAFKA_CONSUMER, k->cconf, e, sizeof e);
		if (k->cons)
			k->cconf = NULL; /* owned by the handle now */
		else
			spu_seterr(err, err_len, "kafka: consumer: %s", e);
	}
	restore_signals(&old);
	if (!k->prod || !k->cons)
		return -SIOGW_EINVAL;

	/* Wait for the cluster (connect_timeout), then the required topics. */
	if (k->connect_timeout > 0) {
		int64_t end = now_ms() + k->connect_timeout;
		bool grew;
		bool ok = false;
		for (int64_t left = k->connect_timeout; left > 0; left = end - now_ms())
			if ((ok = refresh_metadata(k, &grew, left < METADATA_TIMEOUT_MS ? (int)left : METADATA_TIMEOUT_MS)))
				break;
			else /* a refused connection fails at once: do not spin */
				nanosleep(&(struct timespec){0, 50 * 1000000}, NULL);
		if (!ok) {
			pthread_mutex_lock(&k->st_lock);
			spu_seterr(err, err_len, "kafka: no answer from brokers %s within %d ms (%s)", k->brokers,
				   k->connect_timeout, k->down_reason);
			pthread_mutex_unlock(&k->st_lock);
			return -SIOGW_EIO;
		}
		char **missing = calloc(k->n_required + 1, sizeof *missing);
		size_t n = 0;
		for (size_t i = 0; missing && i < k->n_required; i++)
			if (!smap_get(&k->known, k->required[i]))
				missing[n++] = k->required[i];
		char ce[256] = "";
		size_t left = missing ? ensure_topics(k, missing, n, ce, sizeof ce) : 0;
		free(missing);
		if (left) {
			spu_seterr(err, err_len, "kafka: %s", ce);
			return -SIOGW_EIO;
		}
		if (n) {
			klog(k, SIOGW_LOG_INFO, "created %zu missing topic%s", n, n == 1 ? "" : "s");
			refresh_metadata(k, &grew, METADATA_TIMEOUT_MS);
		}
	} else {
		set_reason(k, k->down_reason, "not connected yet");
		/* required topics are then looked after like subscribed ones, in the background */
		for (size_t i = 0; i < k->n_required; i++) {
			pthread_mutex_lock(&k->ctl_lock);
			sent *p = smap_put(&k->published, k->required[i], NULL);
			char *t = strdup(k->required[i]);
			char **nt = realloc(k->to_create, (k->n_to_create + 1) * sizeof *nt);
			if (p)
				p->val = 1;
			if (nt && t) {
				k->to_create = nt;
				k->to_create[k->n_to_create++] = t;
				k->cap_to_create = k->n_to_create;
			} else {
				free(t);
				if (nt)
					k->to_create = nt;
			}
			pthread_mutex_unlock(&k->ctl_lock);
		}
	}

	size_t n_known = k->known.n; /* the control thread owns k->known from here on */
	atomic_store(&k->state, ST_RUNNING);
	if (spawn(&k->dr_thread, dr_main, k, "siogw-kafka-dr") == 0)
		k->dr_started = true;
	if (spawn(&k->in_thread, consumer_main, k, "siogw-kafka-in") == 0)
		k->in_started = true;
	if (spawn(&k->ctl_thread, control_main, k, "siogw-kafka-ctl") == 0)
		k->ctl_started = true;
	if (!k->dr_started || !k->in_started || !k->ctl_started) {
		spu_seterr(err, err_len, "kafka: cannot start threads");
		return -SIOGW_ENOMEM; /* the host calls stop() */
	}
	if (k->connect_timeout > 0)
		klog(k, SIOGW_LOG_INFO, "connected to %s (%zu topics in the cluster)", k->brokers, n_known);
	return 0;
}

static void kafka_stop(void *self)
{
	kafka *k = self;
	int st = atomic_load(&k->state);
	if (st == ST_STOPPED || st == ST_STOPPING)
		return;
	if ((k->in_started && pthread_equal(pthread_self(), k->in_thread)) ||
	    (k->dr_started && pthread_equal(pthread_self(), k->dr_thread))) {
		klog(k, SIOGW_LOG_ERROR, "stop() called from a plugin thread; ignored");
		return;
	}
	/* publish() and subscribe() refuse from here on */
	pthread_rwlock_wrlock(&k->prod_lock);
	atomic_store(&k->state, ST_STOPPING);
	pthread_rwlock_unlock(&k->prod_lock);
	pthread_mutex_lock(&k->ctl_lock);
	pthread_cond_broadcast(&k->ctl_cond);
	pthread_mutex_unlock(&k->ctl_lock);
	if (k->ctl_started)
		pthread_join(k->ctl_thread, NULL);
	if (k->in_started)
		pthread_join(k->in_thread, NULL);
	if (k->dr_started)
		pthread_join(k->dr_thread, NULL);
	k->ctl_started = k->in_started = k->dr_started = false;
	if (k->cons) {
		rd_kafka_consumer_close(k->cons);
		rd_kafka_destroy(k->cons);
		k->cons = NULL;
	}
	pthread_rwlock_wrlock(&k->prod_lock);
	rd_kafka_t *rk = k->prod;
	k->prod = NULL;
	pthread_rwlock_unlock(&k->prod_lock);
	if (rk) {
		size_t left = (size_t)rd_kafka_outq_len(rk);
		atomic_store(&k->purging_for_close, true);
		producer_close(k, rk, UINT32_MAX, left ? k->close_timeout : 0);
	}
	fire_pending(k, UINT32_MAX, -SIOGW_ECLOSED);
	atomic_store(&k->state, ST_STOPPED);
}

static void kafka_free(kafka *k)
{
	if (k->pconf)
		rd_kafka_conf_destroy(k->pconf);
	if (k->cconf)
		rd_kafka_conf_destroy(k->cconf);
	for (size_t i = 0; i < k->n_required; i++)
		free(k->required[i]);
	free(k->required);
	free(k->topic_configs);
	free(k->topic_specs);
	spu_subs_free(&k->subs);
	free(k->match);
	smap_free(&k->exact, idlist_free);
	for (size_t i = 0; i < k->n_fc; i++)
		fc_free(k->fc[i]);
	free(k->fc);
	free_strv(k->to_create, k->n_to_create);
	smap_free(&k->known, NULL);
	smap_free(&k->assigned, NULL);
	smap_free(&k->creating, free);
	smap_free(&k->published, NULL);
	pthread_rwlock_destroy(&k->prod_lock);
	pthread_mutex_destroy(&k->dr_lock);
	pthread_cond_destroy(&k->fl.idle);
	pthread_mutex_destroy(&k->sub_lock);
	pthread_mutex_destroy(&k->fc_lock);
	pthread_cond_destroy(&k->ctl_cond);
	pthread_mutex_destroy(&k->ctl_lock);
	pthread_mutex_destroy(&k->st_lock);
	free(k);
}

static void kafka_destroy(void *self)
{
	kafka *k = self;
	if (!k)
		return;
	if (atomic_load(&k->state) != ST_STOPPED && atomic_load(&k->state) != ST_CREATED)
		kafka_stop(k);
	if (k->cons) { /* start() failed half-way */
		rd_kafka_destroy(k->cons);
		k->cons = NULL;
	}
	if (k->prod) {
		atomic_store(&k->purging_for_close, true);
		producer_close(k, k->prod, UINT32_MAX, 0);
		k->prod = NULL;
	}
	kafka_free(k);
}

/* ---- health and stats ---------------------------------------------------------- */

static int kafka_health(void *self, char *buf, size_t buf_len)
{
	kafka *k = self;
	int st = atomic_load(&k->state);
	if (st != ST_RUNNING) {
		spu_seterr(buf, buf_len, "%s", st == ST_CREATED ? "not started" : "stopped");
		return -SIOGW_EIO;
	}
	pthread_mutex_lock(&k->st_lock);
	const char *why = k->fatal_reason[0] ? k->fatal_reason
			  : k->down_reason[0] ? k->down_reason
			  : k->topic_reason[0] ? k->topic_reason
					       : NULL;
	if (why)
		spu_seterr(buf, buf_len, "%s", why);
	pthread_mutex_unlock(&k->st_lock);
	return why ? -SIOGW_EIO : 0;
}

static size_t kafka_stats(void *self, char *buf, size_t buf_len)
{
	kafka *k = self;
	if (!buf || buf_len == 0)
		return 0;
	long outq = 0;
	pthread_rwlock_rdlock(&k->prod_lock);
	if (k->prod)
		outq = rd_kafka_outq_len(k->prod);
	pthread_rwlock_unlock(&k->prod_lock);
	pthread_mutex_lock(&k->sub_lock);
	size_t subs = k->subs.n;
	pthread_mutex_unlock(&k->sub_lock);
	char h[8];
	int up = kafka_health(k, h, sizeof h) == 0;
#define U(x) (unsigned long long)atomic_load(&k->x)
	int n = snprintf(buf, buf_len,
			 "siogw_kafka_up %d\n"
			 "siogw_kafka_published_total %llu\n"
			 "siogw_kafka_delivered_total %llu\n"
			 "siogw_kafka_delivery_failed_total %llu\n"
			 "siogw_kafka_publish_rejected_total %llu\n"
			 "siogw_kafka_outq_messages %ld\n"
			 "siogw_kafka_consumed_total %llu\n"
			 "siogw_kafka_refused_total %llu\n"
			 "siogw_kafka_dropped_total %llu\n"
			 "siogw_kafka_pauses_total %llu\n"
			 "siogw_kafka_paused_partitions %llu\n"
			 "siogw_kafka_assigned_partitions %llu\n"
			 "siogw_kafka_subscriptions %zu\n"
			 "siogw_kafka_consume_errors_total %llu\n"
			 "siogw_kafka_metadata_errors_total %llu\n"
			 "siogw_kafka_topic_create_errors_total %llu\n"
			 "siogw_kafka_producer_restarts_total %llu\n",
			 up, U(published_n), U(delivered_n), U(delivery_failed), U(rejected), outq, U(consumed),
			 U(refused), U(dropped), U(pauses), U(n_paused), U(n_assigned), subs, U(consume_errors),
			 U(md_errors), U(create_errors), U(producer_restarts));
#undef U
	return spu_stats_len(buf, buf_len, n);
}

EXPORT const siogw_plugin siogw_plugin_v1 = {
	.magic = SIOGW_PLUGIN_MAGIC,
	.abi_major = SIOGW_ABI_MAJOR,
	.abi_minor = SIOGW_ABI_MINOR,
	.size = sizeof(siogw_plugin),
	.name = PLUGIN_NAME,
	.version = "0.1.0",
	.description = "Kafka bus (librdkafka): many gateway nodes, backends as Kafka producers and consumer groups",
	.options = kafka_options,
	.n_options = N_OPTIONS,
	.create = kafka_create,
	.start = kafka_start,
	.subscribe = kafka_subscribe,
	.unsubscribe = kafka_unsubscribe,
	.publish = kafka_publish,
	.health = kafka_health,
	.stats = kafka_stats,
	.stop = kafka_stop,
	.destroy = kafka_destroy,
	.check = kafka_check,
};
