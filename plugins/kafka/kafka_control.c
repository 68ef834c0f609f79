/*
 * kafka_control.c — the Kafka plugin's control thread (siogw-kafka-ctl): metadata
 * refreshes, topic creation (admin API or broker auto-creation), and the consumer's
 * assignment. start() borrows the metadata and creation steps before the thread runs.
 * Threads and locks: kafka_int.h.
 */
#include "kafka_int.h"

void kafka_wake_ctl(kafka *k, bool refresh)
{
	pthread_mutex_lock(&k->ctl_lock);
	if (refresh)
		k->ctl_refresh_soon = true;
	else
		k->ctl_dirty = true;
	pthread_cond_signal(&k->ctl_cond);
	pthread_mutex_unlock(&k->ctl_lock);
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
	int64_t end = kafka_now_ms() + k->admin_timeout + 1000;
	while (!ev && kafka_now_ms() < end && atomic_load(&k->state) <= ST_RUNNING)
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
size_t kafka_ensure_topics(kafka *k, char **topics, size_t n, char *err, size_t err_len)
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
bool kafka_refresh_metadata(kafka *k, bool *grew, int timeout_ms)
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
	kafka_set_reason(k, k->down_reason, NULL);
	k->md_gen++;
	*grew = false;
	/* mark-and-sweep: val2 = generation first seen; stale entries removed */
	smap fresh = {0};
	for (int i = 0; i < md->topic_cnt; i++) {
		const struct rd_kafka_metadata_topic *t = &md->topics[i];
		if (t->err || t->partition_cnt <= 0)
			continue; /* being created, or an error: next time */
		sent *old = kafka_smap_get(&k->known, t->topic);
		sent *n = kafka_smap_put(&fresh, t->topic, NULL);
		if (!n)
			continue;
		n->val = t->partition_cnt;
		n->val2 = old ? old->val2 : (int64_t)k->md_gen;
		if (!old || old->val < t->partition_cnt)
			*grew = true;
	}
	rd_kafka_metadata_destroy(md);
	kafka_smap_free(&k->known, NULL);
	k->known = fresh;
	k->md_at = kafka_now_ms();
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
		if (!kafka_topic_wanted(k, t->key))
			continue;
		sent *a = kafka_smap_put(&k->assigned, t->key, NULL);
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
		if (kafka_smap_get(&k->known, x->key))
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
		if (a->val > 0 && kafka_topic_wanted(k, a->key) && kafka_smap_get(&k->known, a->key))
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
		sent *a = kafka_smap_get(&k->assigned, gone[i]);
		for (int64_t p = 0; a && p < a->val; p++)
			rd_kafka_topic_partition_list_add(del, gone[i], (int32_t)p);
		kafka_smap_del(&k->assigned, gone[i]);
		kafka_fc_forget_topic(k, gone[i]);
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
				kafka_smap_del(&k->assigned, add->elems[i].topic);
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

/* Create what is missing (exact subscriptions, published topics in admin mode), with a
 * retry delay per topic; health names a subscribed topic that cannot be created. */
static void create_missing(kafka *k, char **missing, size_t n_missing, char **published, size_t n_pub)
{
	int64_t now = kafka_now_ms();
	char **todo = calloc(n_missing + n_pub + 1, sizeof *todo);
	size_t n = 0;
	if (!todo)
		return;
	for (size_t i = 0; i < n_missing + n_pub; i++) {
		char *t = i < n_missing ? missing[i] : published[i - n_missing];
		if (kafka_smap_get(&k->known, t))
			continue;
		bool created;
		sent *c = kafka_smap_put(&k->creating, t, &created);
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
			sent *c = kafka_smap_get(&k->creating, todo[i]);
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
			size_t left = kafka_ensure_topics(k, &todo[i], 1, e, sizeof e);
			sent *c = kafka_smap_get(&k->creating, todo[i]);
			if (left == 0) {
				if (c) {
					free(c->ptr);
					kafka_smap_del(&k->creating, todo[i]);
				}
				kafka_wake_ctl(k, true);
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
		sent *c = kafka_smap_get(&k->creating, missing[i]);
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
			needed = !strcmp(published[i], c->key) && !kafka_smap_get(&k->known, c->key);
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
			free(kafka_smap_del(&k->creating, key));
		free(key);
	}
	free(drop);
	free(todo);
	kafka_set_reason(k, k->topic_reason, topic_err[0] ? "%s" : NULL, topic_err);
}

void *kafka_control_main(void *arg)
{
	kafka *k = arg;
	int64_t next_refresh = 0; /* at once */
	int64_t last_fast_refresh = 0;
	pthread_mutex_lock(&k->ctl_lock);
	while (atomic_load(&k->state) == ST_RUNNING) {
		int64_t now = kafka_now_ms();
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
			ok = kafka_refresh_metadata(k, &grew, METADATA_TIMEOUT_MS);
			last_fast_refresh = kafka_now_ms();
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
				kafka_free_strv(pub, n_pub);
				pub = NULL;
				n_pub = 0;
			}
			/* a subscribed topic is missing: look again soon, for a while */
			if (miss && kafka_now_ms() - last_sub < FAST_REFRESH_FOR_MS) {
				pthread_mutex_lock(&k->ctl_lock);
				k->ctl_refresh_soon = true;
				pthread_mutex_unlock(&k->ctl_lock);
			}
		}
		if (n_pub) {
			/* brokers away: publish() queues these topics again next time */
			pthread_mutex_lock(&k->ctl_lock);
			for (size_t i = 0; i < n_pub; i++) {
				sent *p = kafka_smap_get(&k->published, pub[i]);
				if (p)
					p->val = 0;
			}
			pthread_mutex_unlock(&k->ctl_lock);
		}
		kafka_free_strv(missing, n_missing);
		kafka_free_strv(pub, n_pub);
		if (refresh) {
			int64_t interval = k->metadata_refresh;
			if (!ok && interval > 1000)
				interval = 1000; /* outage: probe every second */
			next_refresh = kafka_now_ms() + interval;
		}
		pthread_mutex_lock(&k->ctl_lock);
	}
	pthread_mutex_unlock(&k->ctl_lock);
	return NULL;
}
