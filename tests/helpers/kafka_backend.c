/*
 * kafka_backend — a test (and bench) backend on Kafka, written with librdkafka like a real
 * one: a consumer group on the topics it reads, a producer for what it writes. A test
 * drives it through JSON lines:
 *
 *   kafka_backend --brokers B [--group G] [--topic T]... [--quiet]
 *
 * With --group G it is a consumer-group member (subscribe, rebalances); without, it
 * assigns itself every partition of the topics from their beginning (no group
 * coordination: deterministic and immediate, what tests want; the mock cluster's group
 * joins take seconds and now and then stall).
 *
 * stdout, one JSON object per line:
 *   {"event":"assigned","partitions":N}      after each (re)assignment of the group
 *   {"event":"message","topic":T,"partition":P,"offset":O,"key":K|null,"value":V,"ts":MS}
 *                                            every consumed message (not with --quiet);
 *                                            V is the text of the value, ts the broker
 *                                            timestamp
 *   {"event":"delivered","id":X,"error":null|"..."}   report of a produce with an id
 *   {"event":"count","consumed":N}           answer to "count"
 *   {"event":"error","error":"..."}          a consumer or producer error
 * stdin, one JSON object per line:
 *   {"op":"produce","topic":T,"key":K?,"value":V,"id":X?}   V a string (sent as is)
 *                                            or any other JSON value (sent serialized)
 *   {"op":"count"}
 * It exits on end of stdin or SIGTERM, flushing what it produced (2 s at most).
 *
 * Both start at the earliest offset: a test's backend sees what was produced before it
 * was assigned. Session timeout 6000 ms and
 * heartbeat 500 ms (the mock cluster's rebalances follow them).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static volatile sig_atomic_t stop_flag;
static atomic_ullong consumed;
static bool quiet;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

/* Print one JSON object as a line and free it. */
static void emit(cJSON *o)
{
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (!s)
		return;
	pthread_mutex_lock(&out_lock);
	fputs(s, stdout);
	fputc('\n', stdout);
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
	free(s);
}

static void emit_error(const char *what, const char *msg)
{
	cJSON *o = cJSON_CreateObject();
	char buf[512];
	snprintf(buf, sizeof buf, "%s: %s", what, msg);
	cJSON_AddStringToObject(o, "event", "error");
	cJSON_AddStringToObject(o, "error", buf);
	emit(o);
}

static cJSON *text_or_null(const void *p, size_t len)
{
	if (!p)
		return cJSON_CreateNull();
	char *s = malloc(len + 1);
	if (!s)
		return cJSON_CreateNull();
	memcpy(s, p, len);
	s[len] = 0;
	cJSON *v = cJSON_CreateString(s);
	free(s);
	return v;
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
			 void *opaque)
{
	(void)opaque;
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		rd_kafka_assign(rk, parts);
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "event", "assigned");
		cJSON_AddNumberToObject(o, "partitions", parts->cnt);
		emit(o);
	} else {
		rd_kafka_assign(rk, NULL);
	}
}

static void on_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	(void)opaque;
	cJSON *id = m->_private;
	if (!id)
		return;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "event", "delivered");
	cJSON_AddItemToObject(o, "id", id);
	if (m->err)
		cJSON_AddStringToObject(o, "error", rd_kafka_err2str(m->err));
	else
		cJSON_AddNullToObject(o, "error");
	emit(o);
}

static void *consume_main(void *arg)
{
	rd_kafka_t *c = arg;
	while (!stop_flag) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
		if (!m)
			continue;
		if (m->err) {
			if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
				emit_error("consumer", rd_kafka_message_errstr(m));
			rd_kafka_message_destroy(m);
			continue;
		}
		atomic_fetch_add(&consumed, 1);
		if (!quiet) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "event", "message");
			cJSON_AddStringToObject(o, "topic", rd_kafka_topic_name(m->rkt));
			cJSON_AddNumberToObject(o, "partition", m->partition);
			cJSON_AddNumberToObject(o, "offset", (double)m->offset);
			cJSON_AddItemToObject(o, "key", text_or_null(m->key, m->key_len));
			cJSON_AddItemToObject(o, "value", text_or_null(m->payload ? m->payload : "", m->len));
			cJSON_AddNumberToObject(o, "ts", (double)rd_kafka_message_timestamp(m, NULL));
			emit(o);
		}
		rd_kafka_message_destroy(m);
	}
	return NULL;
}

static void command(rd_kafka_t *p, const char *line)
{
	cJSON *cmd = cJSON_Parse(line);
	const cJSON *op = cJSON_GetObjectItemCaseSensitive(cmd, "op");
	if (!cJSON_IsString(op)) {
		emit_error("stdin", "expected {\"op\":...}");
	} else if (!strcmp(op->valuestring, "count")) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "event", "count");
		cJSON_AddNumberToObject(o, "consumed", (double)atomic_load(&consumed));
		emit(o);
	} else if (!strcmp(op->valuestring, "produce")) {
		const cJSON *topic = cJSON_GetObjectItemCaseSensitive(cmd, "topic");
		const cJSON *key = cJSON_GetObjectItemCaseSensitive(cmd, "key");
		const cJSON *value = cJSON_GetObjectItemCaseSensitive(cmd, "value");
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(cmd, "id");
		char *vs = NULL;
		const char *v = "";
		if (cJSON_IsString(value))
			v = value->valuestring;
		else if (value)
			v = vs = cJSON_PrintUnformatted(value);
		if (!cJSON_IsString(topic)) {
			emit_error("produce", "no topic");
		} else {
			cJSON *idc = id ? cJSON_Duplicate(id, 1) : NULL;
			const char *k = cJSON_IsString(key) ? key->valuestring : NULL;
			/* the vector form: the RD_KAFKA_V_* macros are not -Wpedantic clean */
			rd_kafka_vu_t vu[5];
			memset(vu, 0, sizeof vu);
			vu[0].vtype = RD_KAFKA_VTYPE_TOPIC;
			vu[0].u.cstr = topic->valuestring;
			vu[1].vtype = RD_KAFKA_VTYPE_KEY;
			vu[1].u.mem.ptr = (void *)k;
			vu[1].u.mem.size = k ? strlen(k) : 0;
			vu[2].vtype = RD_KAFKA_VTYPE_VALUE;
			vu[2].u.mem.ptr = (void *)v;
			vu[2].u.mem.size = strlen(v);
			vu[3].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
			vu[3].u.i = RD_KAFKA_MSG_F_COPY;
			vu[4].vtype = RD_KAFKA_VTYPE_OPAQUE;
			vu[4].u.ptr = idc;
			rd_kafka_resp_err_t e;
			for (;;) {
				rd_kafka_error_t *pe = rd_kafka_produceva(p, vu, 5);
				e = pe ? rd_kafka_error_code(pe) : RD_KAFKA_RESP_ERR_NO_ERROR;
				if (pe)
					rd_kafka_error_destroy(pe);
				if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
					break;
				rd_kafka_poll(p, 10);
			}
			if (e) {
				cJSON_Delete(idc);
				emit_error("produce", rd_kafka_err2str(e));
			}
		}
		free(vs);
	} else {
		emit_error("stdin", "unknown op");
	}
	cJSON_Delete(cmd);
}

int main(int argc, char **argv)
{
	const char *brokers = getenv("KAFKA_BOOTSTRAP");
	char group[128];
	snprintf(group, sizeof group, "kafka-backend-%ld", (long)getpid());
	bool use_group = false;
	const char *topics[32];
	int n_topics = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--brokers") && i + 1 < argc)
			brokers = argv[++i];
		else if (!strcmp(argv[i], "--group") && i + 1 < argc)
			snprintf(group, sizeof group, "%s", argv[++i]), use_group = true;
		else if (!strcmp(argv[i], "--topic") && i + 1 < argc && n_topics < 32)
			topics[n_topics++] = argv[++i];
		else if (!strcmp(argv[i], "--quiet"))
			quiet = true;
		else {
			fprintf(stderr, "usage: kafka_backend --brokers B [--group G] [--topic T]... [--quiet]\n");
			return 2;
		}
	}
	if (!brokers) {
		fprintf(stderr, "kafka_backend: --brokers (or KAFKA_BOOTSTRAP) is required\n");
		return 2;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	char e[512];
	rd_kafka_conf_t *pc = rd_kafka_conf_new();
	rd_kafka_conf_set(pc, "bootstrap.servers", brokers, e, sizeof e);
	rd_kafka_conf_set(pc, "linger.ms", "1", e, sizeof e);
	rd_kafka_conf_set(pc, "reconnect.backoff.max.ms", "500", e, sizeof e);
	rd_kafka_conf_set(pc, "log_level", "3", e, sizeof e);
	rd_kafka_conf_set_dr_msg_cb(pc, on_dr);
	rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, pc, e, sizeof e);
	if (!p) {
		fprintf(stderr, "kafka_backend: producer: %s\n", e);
		return 1;
	}
	rd_kafka_t *c = NULL;
	pthread_t th;
	if (n_topics) {
		rd_kafka_conf_t *cc = rd_kafka_conf_new();
		const char *kv[][2] = {
			{"bootstrap.servers", brokers}, {"group.id", group},     {"auto.offset.reset", "earliest"},
			{"session.timeout.ms", "6000"}, {"heartbeat.interval.ms", "500"},
			{"fetch.wait.max.ms", "10"},    {"log_level", "3"},
			{"topic.metadata.refresh.interval.ms", "1000"}, {"reconnect.backoff.max.ms", "500"},
		};
		for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
			if (rd_kafka_conf_set(cc, kv[i][0], kv[i][1], e, sizeof e) != RD_KAFKA_CONF_OK) {
				fprintf(stderr, "kafka_backend: %s\n", e);
				return 1;
			}
		if (use_group)
			rd_kafka_conf_set_rebalance_cb(cc, on_rebalance);
		c = rd_kafka_new(RD_KAFKA_CONSUMER, cc, e, sizeof e);
		if (!c) {
			fprintf(stderr, "kafka_backend: consumer: %s\n", e);
			return 1;
		}
		rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n_topics);
		rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
		if (use_group) {
			for (int i = 0; i < n_topics; i++)
				rd_kafka_topic_partition_list_add(l, topics[i], RD_KAFKA_PARTITION_UA);
			err = rd_kafka_subscribe(c, l);
		} else {
			/* every partition of every topic, from the beginning (topics must exist) */
			for (int i = 0; i < n_topics && !err; i++) {
				rd_kafka_topic_t *rkt = rd_kafka_topic_new(c, topics[i], NULL);
				const struct rd_kafka_metadata *md = NULL;
				for (int attempt = 0; attempt < 50; attempt++) {
					err = rd_kafka_metadata(c, 0, rkt, &md, 2000);
					if (!err && md->topic_cnt == 1 && md->topics[0].partition_cnt > 0)
						break;
					if (md)
						rd_kafka_metadata_destroy(md);
					md = NULL;
					err = err ? err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
					struct timespec ts = {0, 100 * 1000000};
					nanosleep(&ts, NULL);
				}
				for (int part = 0; md && part < md->topics[0].partition_cnt; part++)
					rd_kafka_topic_partition_list_add(l, topics[i], part)->offset = RD_KAFKA_OFFSET_BEGINNING;
				if (md)
					rd_kafka_metadata_destroy(md);
				rd_kafka_topic_destroy(rkt);
			}
			if (!err) {
				rd_kafka_error_t *ae = rd_kafka_incremental_assign(c, l);
				if (ae) {
					fprintf(stderr, "kafka_backend: assign: %s\n", rd_kafka_error_string(ae));
					rd_kafka_error_destroy(ae);
					return 1;
				}
				cJSON *o = cJSON_CreateObject();
				cJSON_AddStringToObject(o, "event", "assigned");
				cJSON_AddNumberToObject(o, "partitions", l->cnt);
				emit(o);
			}
		}
		rd_kafka_topic_partition_list_destroy(l);
		if (err) {
			fprintf(stderr, "kafka_backend: %s: %s\n", use_group ? "subscribe" : "metadata", rd_kafka_err2str(err));
			return 1;
		}
		pthread_create(&th, NULL, consume_main, c);
	}

	char *buf = NULL;
	size_t used = 0, cap = 0;
	while (!stop_flag) {
		rd_kafka_poll(p, 0);
		struct pollfd pfd = {.fd = 0, .events = POLLIN};
		int pr = poll(&pfd, 1, 20);
		if (pr <= 0)
			continue;
		if (cap - used < 65536) {
			cap = cap ? cap * 2 : 131072;
			char *nb = realloc(buf, cap);
			if (!nb)
				break;
			buf = nb;
		}
		ssize_t r = read(0, buf + used, cap - used - 1);
		if (r <= 0)
			break;
		used += (size_t)r;
		buf[used] = 0;
		char *start = buf, *nl;
		while ((nl = strchr(start, '\n'))) {
			*nl = 0;
			if (nl > start)
				command(p, start);
			start = nl + 1;
		}
		used -= (size_t)(start - buf);
		memmove(buf, start, used + 1);
	}
	free(buf);
	stop_flag = 1;
	if (c) {
		pthread_join(th, NULL);
		rd_kafka_consumer_close(c);
		rd_kafka_destroy(c);
	}
	rd_kafka_flush(p, 2000);
	rd_kafka_destroy(p);
	return 0;
}
