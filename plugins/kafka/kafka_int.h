/*
 * kafka_int.h — the Kafka bus plugin's private header, on librdkafka: the instance, the
 * types its files share, and the functions they call across. Nothing here is exported:
 * the module is built with hidden visibility and only kafka.c's siogw_plugin_v1 is
 * default. docs/kafka.md is the user's side of the plugin (options, semantics,
 * deployment); this comment is the implementer's.
 *
 * Files.
 *   kafka.c           lifecycle: create/check, start, stop, destroy; health, stats; the
 *                     descriptor; librdkafka's log and error callbacks;
 *   kafka_options.c   the option table, and judging the options into the instance and
 *                     both librdkafka configurations;
 *   kafka_consumer.c  subscriptions, the consumer thread, flow control;
 *   kafka_control.c   the control thread: metadata, topic creation, the assignment;
 *   kafka_producer.c  publish(), the delivery-report thread, delivery reports;
 *   kafka_util.c      a string map, id lists, the clock, topic names.
 *
 * Links against librdkafka and include/siogw/plugin.h only (+ pthreads; plugin_util.h is
 * header-only).
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
 * Nested only as prod_lock → dr_lock: publish() lists its report while it holds the
 * producer. No other two are.
 * unsubscribe() waits while the consumer thread is inside deliver() for that very id
 * (its in-place retries included: at most pause_backoff), except from inside deliver().
 */
#ifndef SIOGW_KAFKA_INT_H
#define SIOGW_KAFKA_INT_H

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

#define MAX_TOPIC_LEN 249
#define PAUSE_BACKOFF_MAX_MS 1000
#define METADATA_TIMEOUT_MS 1500 /* one metadata request; bounds stop() during an outage */
#define FAST_REFRESH_MS 250      /* while a subscribed topic is missing */
#define FAST_REFRESH_FOR_MS 10000
#define CREATE_RETRY_MS 5000

enum { ST_CREATED = 0, ST_RUNNING, ST_STOPPING, ST_STOPPED };
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

/* check() has no host: spu_log says nothing then. */
#define klog(k, level, ...) spu_log((k)->host, PLUGIN_NAME, level, __VA_ARGS__)

/* ---- kafka_util.c ---------------------------------------------------------------- */

sent *kafka_smap_get(const smap *m, const char *key);
/* Get or insert (val = val2 = 0, ptr = NULL). NULL when out of memory. */
sent *kafka_smap_put(smap *m, const char *key, bool *created);
/* Remove `key`; returns its ptr (the caller frees it) or NULL. */
void *kafka_smap_del(smap *m, const char *key);
void kafka_smap_free(smap *m, void (*free_ptr)(void *));

int kafka_idlist_add(idlist *l, uint64_t id);
bool kafka_idlist_has(const idlist *l, uint64_t id);
void kafka_idlist_free(void *p); /* a heap idlist and its ids; NULL is fine */
void kafka_free_strv(char **v, size_t n);

int64_t kafka_now_ms(void); /* monotonic */
/* Set a health text (down_reason, topic_reason, fatal_reason) under st_lock; fmt NULL
 * clears it. */
void kafka_set_reason(kafka *k, char *field, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Kafka's legal topic names: [A-Za-z0-9._-], 1..249 characters. */
bool kafka_topic_legal(const char *t);

/* ---- kafka.c ----------------------------------------------------------------------- */

void kafka_on_rd_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf);
void kafka_on_rd_error(rd_kafka_t *rk, int err, const char *reason, void *opaque);

/* ---- kafka_options.c ----------------------------------------------------------------- */

#define KAFKA_N_OPTIONS 26 /* checked against the table in kafka_options.c */
extern const siogw_option kafka_options[];
/* create()'s and check()'s judging (spu_ctor.configure): self is a kafka. */
int kafka_configure(void *self, const siogw_optval *opts, size_t n_opts, size_t *bad, char *err,
		    size_t err_len);

/* ---- kafka_consumer.c ---------------------------------------------------------------- */

int kafka_subscribe(void *self, uint64_t sub_id, const char *pattern, int kind);
int kafka_unsubscribe(void *self, uint64_t sub_id);
bool kafka_topic_wanted(kafka *k, const char *topic);
void kafka_fc_forget_topic(kafka *k, const char *topic);
void kafka_fc_free(fcent *f);
void *kafka_consumer_main(void *arg);

/* ---- kafka_control.c ----------------------------------------------------------------- */

/* Wake the control thread: refresh soon (refresh), or the subscriptions changed. */
void kafka_wake_ctl(kafka *k, bool refresh);
bool kafka_refresh_metadata(kafka *k, bool *grew, int timeout_ms);
size_t kafka_ensure_topics(kafka *k, char **topics, size_t n, char *err, size_t err_len);
void *kafka_control_main(void *arg);

/* ---- kafka_producer.c ---------------------------------------------------------------- */

void kafka_on_rd_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);
rd_kafka_t *kafka_producer_new(kafka *k, char *err, size_t err_len);
void kafka_fire_pending(kafka *k, unsigned gen, int status);
void kafka_producer_close(kafka *k, rd_kafka_t *rk, unsigned gen, int flush_ms);
void *kafka_dr_main(void *arg);
int kafka_publish(void *self, const char *topic, const void *key, size_t key_len, const void *data,
		  size_t len, siogw_dr_cb dr, void *dr_arg);

#endif /* SIOGW_KAFKA_INT_H */
