/*
 * kafka_options.c — the Kafka plugin's option table, and judging the options into
 * the instance and both librdkafka configurations (create() and check()).
 */
#include "kafka_int.h"

const siogw_option kafka_options[] = {
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
#define N_OPTIONS (sizeof kafka_options / sizeof kafka_options[0])
_Static_assert(N_OPTIONS == KAFKA_N_OPTIONS, "KAFKA_N_OPTIONS (kafka_int.h) is the table's length");

/* ---- judging the options --------------------------------------------------------- */

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

/*
 * Everything create() judges: the options, then both librdkafka configurations (our
 * defaults, then the operator's pass-through properties, which librdkafka judges in
 * rd_kafka_conf_set). No handle, thread or connection yet: that is start(). On failure
 * err says why and *bad (when non-NULL) is the index of the option to blame, if any;
 * the caller frees k.
 */
int kafka_configure(void *self, const siogw_optval *opts, size_t n_opts, size_t *bad, char *err,
		    size_t err_len)
{
	kafka *k = self;
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
			if (!kafka_topic_legal(t)) {
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
		unsigned r = (unsigned)kafka_now_ms() ^ ((unsigned)getpid() << 16) ^ (unsigned)(uintptr_t)k;
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
			if (!kafka_topic_legal(name + 6)) {
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
	rd_kafka_conf_set_log_cb(k->pconf, kafka_on_rd_log);
	rd_kafka_conf_set_log_cb(k->cconf, kafka_on_rd_log);
	rd_kafka_conf_set_error_cb(k->pconf, kafka_on_rd_error);
	rd_kafka_conf_set_error_cb(k->cconf, kafka_on_rd_error);
	rd_kafka_conf_set_dr_msg_cb(k->pconf, kafka_on_rd_dr);
	return 0;
oom:
	spu_seterr(err, err_len, "kafka: out of memory");
	return -SIOGW_ENOMEM;
}
