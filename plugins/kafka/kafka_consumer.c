/*
 * kafka_consumer.c — the Kafka plugin's subscriptions and its consumer thread
 * (siogw-kafka-in): matching, host->deliver(), and flow control (pause / seek / resume).
 * Threads and locks: kafka_int.h.
 */
#include "kafka_int.h"

/* ---- subscriptions ----------------------------------------------------------- */

int kafka_subscribe(void *self, uint64_t sub_id, const char *pattern, int kind)
{
	kafka *k = self;
	if (!spu_sub_args_ok(pattern, kind))
		return -SIOGW_EINVAL;
	if (kind == SIOGW_SUB_EXACT && !kafka_topic_legal(pattern))
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
		sent *e = kafka_smap_put(&k->exact, copy, NULL);
		if (e && !e->ptr)
			e->ptr = calloc(1, sizeof(idlist));
		if (!e || !e->ptr || kafka_idlist_add(e->ptr, sub_id))
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
	k->last_subscribe_ms = kafka_now_ms();
	pthread_cond_signal(&k->ctl_cond);
	pthread_mutex_unlock(&k->ctl_lock);
	return 0;
}

/* Under sub_lock: the gone subscription leaves the exact-topic index (or the prefix
 * count). */
static void exact_forget(void *arg, const spu_sub *gone)
{
	kafka *k = arg;
	if (gone->kind != SIOGW_SUB_EXACT) {
		k->n_prefix--;
		return;
	}
	sent *e = kafka_smap_get(&k->exact, gone->pattern);
	idlist *l = e ? e->ptr : NULL;
	for (size_t i = 0; l && i < l->n; i++)
		if (l->ids[i] == gone->id) {
			l->ids[i] = l->ids[--l->n];
			break;
		}
	if (l && l->n == 0)
		kafka_idlist_free(kafka_smap_del(&k->exact, gone->pattern));
}

int kafka_unsubscribe(void *self, uint64_t sub_id)
{
	kafka *k = self;
	/* waits out a deliver() for this id already in progress (not from inside it) */
	int rc = spu_unsubscribe(&k->sub_lock, &k->subs, &k->fl, sub_id, exact_forget, k);
	if (rc == 0)
		kafka_wake_ctl(k, false);
	return rc;
}

/* Under sub_lock: is any subscription interested in `topic`? */
bool kafka_topic_wanted(kafka *k, const char *topic)
{
	if (kafka_smap_get(&k->exact, topic))
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

void kafka_fc_free(fcent *f)
{
	free(f->topic);
	free(f->done.ids);
	free(f);
}

static void fc_remove_at(kafka *k, size_t i)
{
	if (k->fc[i]->paused)
		atomic_fetch_sub(&k->n_paused, 1);
	kafka_fc_free(k->fc[i]);
	k->fc[i] = k->fc[--k->n_fc];
	atomic_store(&k->n_fc_atomic, k->n_fc);
}

/* Drop the entries of a topic (unassigned by the control thread). */
void kafka_fc_forget_topic(kafka *k, const char *topic)
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
		if (!kafka_idlist_has(&f->done, took[i]))
			kafka_idlist_add(&f->done, took[i]);
	if (!f->paused)
		atomic_fetch_add(&k->n_paused, 1);
	f->paused = true;
	f->expect = off;
	f->resume_at = kafka_now_ms() + f->backoff;
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
	int64_t now = kafka_now_ms(), next = now + max;
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
	int64_t wait = next - kafka_now_ms();
	return wait < 1 ? 1 : wait > max ? max : (int)wait;
}

/* ---- the consumer thread ------------------------------------------------------- */

/* host->deliver, with the message's partition and offset when the host takes them
 * (ABI 1.2: the gateway names replayable packets by them, the same on every node) */
static int deliver(kafka *k, uint64_t id, const char *topic, const void *key, size_t key_len, const void *data,
		   size_t len, const rd_kafka_message_t *m)
{
	if (SIOGW_HOST_HAS_DELIVER_AT(k->host))
		return k->host->deliver_at(k->host->ctx, id, topic, key, key_len, data, len, m->partition, m->offset);
	return k->host->deliver(k->host->ctx, id, topic, key, key_len, data, len);
}

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
	sent *e = kafka_smap_get(&k->exact, topic);
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
		if (kafka_idlist_has(&done, id))
			continue; /* took it before the rewind */
		if (!spu_subs_still(&k->subs, id, gen))
			continue; /* unsubscribed since the snapshot */
		spu_inflight_outer outer = spu_inflight_enter(&k->fl, id);
		pthread_mutex_unlock(&k->sub_lock);
		size_t len = m->payload ? m->len : 0;
		int rc = deliver(k, id, topic, key, key_len, data, len, m);
		/* pause mode: a busy gateway usually drains within a few ms (a loop turn);
		 * retry in place first, pause the partition only if it stays full */
		int64_t until = rc == -SIOGW_EAGAIN && k->on_full == ON_FULL_PAUSE ? kafka_now_ms() + k->pause_backoff : 0;
		for (int w = 1; rc == -SIOGW_EAGAIN && kafka_now_ms() < until && atomic_load(&k->state) == ST_RUNNING;
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
			rc = deliver(k, id, topic, key, key_len, data, len, m);
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
		kafka_idlist_add(&done, id);
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

void *kafka_consumer_main(void *arg)
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
			int64_t now = kafka_now_ms();
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
