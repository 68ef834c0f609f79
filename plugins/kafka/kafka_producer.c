/*
 * kafka_producer.c — the Kafka plugin's producer: publish(), the delivery-report
 * thread (siogw-kafka-dr) that also replaces a producer after a fatal error, and the
 * pending delivery reports. Threads and locks: kafka_int.h.
 */
#include "kafka_int.h"

void kafka_on_rd_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
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

/* ---- the producer ------------------------------------------------------------ */

rd_kafka_t *kafka_producer_new(kafka *k, char *err, size_t err_len)
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
void kafka_fire_pending(kafka *k, unsigned gen, int status)
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
void kafka_producer_close(kafka *k, rd_kafka_t *rk, unsigned gen, int flush_ms)
{
	if (flush_ms > 0)
		rd_kafka_flush(rk, flush_ms);
	rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	int64_t end = kafka_now_ms() + 2000;
	while (rd_kafka_outq_len(rk) > 0 && kafka_now_ms() < end)
		rd_kafka_poll(rk, 10);
	rd_kafka_poll(rk, 0);
	rd_kafka_destroy(rk);
	/* anything librdkafka did not report (it always should) */
	kafka_fire_pending(k, gen, atomic_load(&k->purging_for_close) ? -SIOGW_ECLOSED : -SIOGW_EIO);
}

void *kafka_dr_main(void *arg)
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
		rd_kafka_t *fresh = kafka_producer_new(k, e, sizeof e);
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
		kafka_producer_close(k, rk, old_gen, 0);
		kafka_set_reason(k, k->fatal_reason, NULL);
	}
	return NULL;
}

int kafka_publish(void *self, const char *topic, const void *key, size_t key_len, const void *data,
		  size_t len, siogw_dr_cb dr, void *dr_arg)
{
	kafka *k = self;
	if (!topic || !kafka_topic_legal(topic) || (len && !data) || (key_len && !key))
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
		sent *p = kafka_smap_get(&k->published, topic);
		if (!p && k->published.n < 100000)
			p = kafka_smap_put(&k->published, topic, &created);
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
