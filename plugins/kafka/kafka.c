/*
 * kafka.c — the Kafka bus plugin, on librdkafka: its lifecycle (create, check, start,
 * stop, destroy), health, stats and the descriptor, the one exported symbol. The
 * implementer's notes (threads, locks, flow control) are at the top of kafka_int.h;
 * docs/kafka.md is the user's side.
 */
#include "kafka_int.h"

/* ---- librdkafka callbacks ------------------------------------------------------ */

void kafka_on_rd_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	kafka *k = rd_kafka_opaque(rk);
	int lv = level <= 3 ? SIOGW_LOG_ERROR : level == 4 ? SIOGW_LOG_WARN : level <= 6 ? SIOGW_LOG_INFO
											 : SIOGW_LOG_DEBUG;
	klog(k, lv, "%s: %s: %s", rd_kafka_name(rk), fac, buf);
}

void kafka_on_rd_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	kafka *k = opaque;
	if (err == RD_KAFKA_RESP_ERR__FATAL && rd_kafka_type(rk) == RD_KAFKA_PRODUCER) {
		char buf[256];
		rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof buf);
		kafka_set_reason(k, k->fatal_reason, "producer fatal error %s: %s", rd_kafka_err2name(orig), buf);
		atomic_store(&k->prod_fatal, true);
		return;
	}
	if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
		kafka_set_reason(k, k->down_reason, "all brokers down: %s", reason);
		kafka_wake_ctl(k, true); /* probe until they answer again */
	}
}

/* ---- lifecycle ----------------------------------------------------------------- */

/* An instance with its locks, nothing configured, nothing running. NULL: no memory. */
static void *kafka_new(const siogw_host *host)
{
	kafka *k = calloc(1, sizeof *k);
	if (!k)
		return NULL;
	k->host = host;
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

static void kafka_free(void *self)
{
	kafka *k = self;
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
	kafka_smap_free(&k->exact, kafka_idlist_free);
	for (size_t i = 0; i < k->n_fc; i++)
		kafka_fc_free(k->fc[i]);
	free(k->fc);
	kafka_free_strv(k->to_create, k->n_to_create);
	kafka_smap_free(&k->known, NULL);
	kafka_smap_free(&k->assigned, NULL);
	kafka_smap_free(&k->creating, free);
	kafka_smap_free(&k->published, NULL);
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

static const spu_ctor kafka_ctor = {kafka_new, kafka_configure, kafka_free};

/* check() is create() without the instance: librdkafka judges the rdkafka.* properties
 * there too. */
SPU_CTOR_OPS(kafka, PLUGIN_NAME, kafka_ctor)

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
	spu_sigblock(&old); /* librdkafka's threads inherit the mask */
	k->prod = kafka_producer_new(k, err, err_len);
	char e[512];
	if (k->prod) {
		k->cons = rd_kafka_new(RD_KAFKA_CONSUMER, k->cconf, e, sizeof e);
		if (k->cons)
			k->cconf = NULL; /* owned by the handle now */
		else
			spu_seterr(err, err_len, "kafka: consumer: %s", e);
	}
	spu_sigrestore(&old);
	if (!k->prod || !k->cons)
		return -SIOGW_EINVAL;

	/* Wait for the cluster (connect_timeout), then the required topics. */
	if (k->connect_timeout > 0) {
		int64_t end = kafka_now_ms() + k->connect_timeout;
		bool grew;
		bool ok = false;
		for (int64_t left = k->connect_timeout; left > 0; left = end - kafka_now_ms())
			if ((ok = kafka_refresh_metadata(k, &grew, left < METADATA_TIMEOUT_MS ? (int)left : METADATA_TIMEOUT_MS)))
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
			if (!kafka_smap_get(&k->known, k->required[i]))
				missing[n++] = k->required[i];
		char ce[256] = "";
		size_t left = missing ? kafka_ensure_topics(k, missing, n, ce, sizeof ce) : 0;
		free(missing);
		if (left) {
			spu_seterr(err, err_len, "kafka: %s", ce);
			return -SIOGW_EIO;
		}
		if (n) {
			klog(k, SIOGW_LOG_INFO, "created %zu missing topic%s", n, n == 1 ? "" : "s");
			kafka_refresh_metadata(k, &grew, METADATA_TIMEOUT_MS);
		}
	} else {
		kafka_set_reason(k, k->down_reason, "not connected yet");
		/* required topics are then looked after like subscribed ones, in the background */
		for (size_t i = 0; i < k->n_required; i++) {
			pthread_mutex_lock(&k->ctl_lock);
			sent *p = kafka_smap_put(&k->published, k->required[i], NULL);
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
	if (spu_thread_start(&k->dr_thread, kafka_dr_main, k, "siogw-kafka-dr") == 0)
		k->dr_started = true;
	if (spu_thread_start(&k->in_thread, kafka_consumer_main, k, "siogw-kafka-in") == 0)
		k->in_started = true;
	if (spu_thread_start(&k->ctl_thread, kafka_control_main, k, "siogw-kafka-ctl") == 0)
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
		kafka_producer_close(k, rk, UINT32_MAX, left ? k->close_timeout : 0);
	}
	kafka_fire_pending(k, UINT32_MAX, -SIOGW_ECLOSED);
	atomic_store(&k->state, ST_STOPPED);
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
		kafka_producer_close(k, k->prod, UINT32_MAX, 0);
		k->prod = NULL;
	}
	kafka_free(k);
}

/* ---- health and stats ---------------------------------------------------------- */

static int kafka_health(void *self, char *buf, size_t buf_len)
{
	kafka *k = self;
	int st = atomic_load(&k->state);
	if (st != ST_RUNNING)
		return spu_health_down(buf, buf_len, st != ST_CREATED);
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
			 "sio_kafka_up %d\n"
			 "sio_kafka_published_total %llu\n"
			 "sio_kafka_delivered_total %llu\n"
			 "sio_kafka_delivery_failed_total %llu\n"
			 "sio_kafka_publish_rejected_total %llu\n"
			 "sio_kafka_outq_messages %ld\n"
			 "sio_kafka_consumed_total %llu\n"
			 "sio_kafka_refused_total %llu\n"
			 "sio_kafka_dropped_total %llu\n"
			 "sio_kafka_pauses_total %llu\n"
			 "sio_kafka_paused_partitions %llu\n"
			 "sio_kafka_assigned_partitions %llu\n"
			 "sio_kafka_subscriptions %zu\n"
			 "sio_kafka_consume_errors_total %llu\n"
			 "sio_kafka_metadata_errors_total %llu\n"
			 "sio_kafka_topic_create_errors_total %llu\n"
			 "sio_kafka_producer_restarts_total %llu\n",
			 up, U(published_n), U(delivered_n), U(delivery_failed), U(rejected), outq, U(consumed),
			 U(refused), U(dropped), U(pauses), U(n_paused), U(n_assigned), subs, U(consume_errors),
			 U(md_errors), U(create_errors), U(producer_restarts));
#undef U
	return spu_stats_len(buf, buf_len, n);
}

SPU_PLUGIN_V1(kafka, PLUGIN_NAME, "0.1.0", kafka_options, KAFKA_N_OPTIONS,
	      "Kafka bus (librdkafka): many gateway nodes, backends as Kafka producers and consumer groups");
