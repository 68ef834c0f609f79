/*
 * api.c — publish, subscribe (SSE), health and metrics over plain HTTP.
 *
 * An SSE client owns one bus subscription and a bounded queue of messages waiting to
 * be written; when the queue is full the oldest is kept and the new one dropped and
 * counted (sio_sse_dropped_total) — a slow reader never grows memory without bound.
 */
#include "http/api.h"
#include "bus/bus.h"
#include "eio/eio.h"
#include "http/metrics.h"
#include "util/err.h"
#include "util/log.h"
#include "util/dlist.h"
#include "util/map.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct sse_msg {
	struct sse_msg *next;
	size_t len;
	uint8_t data[]; /* "event: <topic>\ndata: ...\n\n" */
} sse_msg;

typedef struct gw_sse {
	net_conn *conn;
	uint64_t sub_id;
	char key[24];   /* sub_id as text, the map key */
	sse_msg *head, *tail;
	size_t queued;
	gw_dlink dirty; /* on the api's dirty list: messages queued this loop turn */
} gw_sse;

struct gw_api {
	const gw_config *cfg;
	net_loop *net;
	gw_bus *bus;
	const eio_server *eio;
	uint64_t sse_dropped; /* SSE messages dropped: subscriber too slow */
	gw_metrics *metrics;
	gw_buf scratch;       /* a batch of SSE messages */
	gw_map sse;     /* sub id text → gw_sse */
	void (*on_drain)(void *ctx); /* POST /api/drain */
	void *drain_ctx;
	size_t (*sessions)(void *ctx); /* /healthz's "sessions" (else the engine's) */
	void *sessions_ctx;
	gw_dlist dirty; /* streams to write before the loop waits (gw_api_flush) */
};

static void gw_api_flush(void *ctx);

void gw_api_metrics(void *ctx, gw_metric_sink *m)
{
	const gw_api *api = ctx;
	gw_metric_counter(m, "sio_sse_dropped_total", "SSE messages dropped: subscriber too slow.", api->sse_dropped);
}

gw_api *gw_api_create(const gw_config *cfg, net_loop *net, gw_bus *bus, const eio_server *eio,
		      gw_metrics *metrics)
{
	gw_api *api = calloc(1, sizeof *api);
	if (api)
		*api = (gw_api){.cfg = cfg, .net = net, .bus = bus, .eio = eio, .metrics = metrics};
	return api;
}

static void sse_free(gw_api *api, gw_sse *s)
{
	gw_dlist_del(&api->dirty, &s->dirty);
	gw_map_del(&api->sse, s->key, strlen(s->key));
	if (api->bus)
		gw_bus_unsubscribe(api->bus, s->sub_id);
	for (sse_msg *m = s->head, *n; m; m = n) {
		n = m->next;
		free(m);
	}
	free(s);
}

void gw_api_destroy(gw_api *api)
{
	if (!api)
		return;
	size_t n;
	void **all = gw_map_values(&api->sse, &n);
	for (size_t i = 0; i < n; i++) {
		gw_sse *s = all[i];
		if (s->conn)
			net_conn_set_user(s->conn, NULL);
		sse_free(api, s);
	}
	free(all);
	gw_map_free(&api->sse);
	net_off_turn(api->net, gw_api_flush, api);
	gw_buf_free(&api->scratch);
	free(api);
}

static int authorized(gw_api *api, const h1_req *r)
{
	const char *token = api->cfg->http_api.token;
	if (!token || !token[0])
		return 1;
	const char *auth = h1_header_get(r, "authorization");
	if (!auth || strncmp(auth, "Bearer ", 7) != 0)
		return 0;
	const char *given = auth + 7;
	size_t a = strlen(given), b = strlen(token);
	unsigned diff = (unsigned)(a != b);
	for (size_t i = 0; i < a && i < b; i++)
		diff |= (unsigned)(given[i] ^ token[i]);
	return diff == 0;
}

static void reply_json(net_conn *c, int status, const char *json)
{
	net_reply(c, status, "application/json", json, strlen(json), NULL);
}

static void reply_error(net_conn *c, int status, const char *msg)
{
	char body[256];
	snprintf(body, sizeof body, "{\"error\":\"%s\"}", msg);
	reply_json(c, status, body);
}

static int topic_arg(const h1_req *r, char *topic, size_t len)
{
	return h1_query_arg(r, "topic", topic, len) == 1 && topic[0];
}

void gw_api_on_drain(gw_api *api, void (*fn)(void *ctx), void *ctx)
{
	api->on_drain = fn;
	api->drain_ctx = ctx;
}

void gw_api_on_sessions(gw_api *api, size_t (*fn)(void *ctx), void *ctx)
{
	api->sessions = fn;
	api->sessions_ctx = ctx;
}

static void health(gw_api *api, net_conn *c)
{
	char reason[256] = "";
	int rc = api->bus ? gw_bus_health(api->bus, reason, sizeof reason) : -GW_EIO;
	bool draining = eio_server_draining(api->eio);
	if (draining && !rc) {
		rc = -GW_ECLOSED;
		snprintf(reason, sizeof reason, "draining: new sessions are refused");
	}
	gw_buf b = {0};
	gw_buf_printf(&b, "{\"status\":\"%s\",\"node\":\"%s\",\"plugin\":\"%s\",\"sessions\":%zu",
		      draining ? "draining" : rc ? "unhealthy" : "ok", api->cfg->node_id,
		      api->bus ? gw_bus_plugin_name(api->bus) : "",
		      api->sessions ? api->sessions(api->sessions_ctx) : eio_server_sessions(api->eio));
	if (rc) {
		/* reason comes from the plugin: keep the JSON valid */
		for (char *p = reason; *p; p++)
			if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
				*p = ' ';
		gw_buf_printf(&b, ",\"reason\":\"%s\"", reason);
	}
	gw_buf_puts(&b, "}");
	net_reply(c, rc ? 503 : 200, "application/json", b.data, b.len, NULL);
	gw_buf_free(&b);
}

static void metrics(gw_api *api, net_conn *c)
{
	gw_buf b = {0};
	if (gw_metrics_render(api->metrics, &b)) {
		gw_buf_free(&b);
		net_reply(c, 503, "application/json", "{\"error\":\"out of memory\"}", 25, NULL);
		return;
	}
	net_reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len, NULL);
	gw_buf_free(&b);
}

static void sse_deliver(void *ctx, uint64_t sub_id, const char *topic, const void *data, size_t len);

static void subscribe(gw_api *api, net_conn *c, const h1_req *r)
{
	char topic[512];
	if (!topic_arg(r, topic, sizeof topic)) {
		reply_error(c, 400, "missing topic");
		return;
	}
	char pfx[8] = "";
	bool prefix = h1_query_arg(r, "prefix", pfx, sizeof pfx) == 1 &&
		      (strcmp(pfx, "1") == 0 || strcmp(pfx, "true") == 0);
	gw_sse *s = calloc(1, sizeof *s);
	if (!s) {
		reply_error(c, 500, "out of memory");
		return;
	}
	s->sub_id = gw_bus_subscribe_fn(api->bus, topic, prefix, sse_deliver, api);
	if (!s->sub_id) {
		free(s);
		reply_error(c, 503, "bus refused the subscription");
		return;
	}
	snprintf(s->key, sizeof s->key, "%llx", (unsigned long long)s->sub_id);
	if (gw_map_put(&api->sse, s->key, strlen(s->key), s)) {
		gw_bus_unsubscribe(api->bus, s->sub_id);
		free(s);
		reply_error(c, 500, "out of memory");
		return;
	}
	s->conn = c;
	net_conn_set_user(c, s);
	static const char hello[] = ": subscribed\n\n";
	if (net_stream_begin(c, 200, "text/event-stream", "Cache-Control: no-cache\r\n") ||
	    net_stream_write(c, hello, sizeof hello - 1) < 0) {
		net_close(c); /* on_close frees the stream */
		return;
	}
	gw_debug("api: SSE subscriber on %s%s", topic, prefix ? "*" : "");
}

/*
 * A batch: `Content-Type: application/x-ndjson` (or application/ndjson), one message per line (empty lines and a
 * trailing "\r" ignored), published in order. The answer lists each line's outcome,
 * {"ok":all published,"published":N,"failed":M,"results":[{"status":200}|{"status":503,
 * "error":"..."},...]}, with 200 even when some failed (their statuses say which).
 */
/* One message: to topic, or routed (route=nodes; then `to` gets its destinations). */
static int publish_one(gw_api *api, const char *topic, const char *key, bool routed, const void *p, size_t n,
		       gw_buf *to)
{
	return routed ? gw_bus_publish_routed(api->bus, key, p, n, to)
		      : gw_bus_publish(api->bus, GW_TOPIC_API, topic, key, p, n);
}

static void publish_batch(gw_api *api, net_conn *c, const h1_req *r, const char *topic, const char *key,
			  bool routed)
{
	gw_buf out = {0};
	size_t ok = 0, failed = 0;
	int err = gw_buf_puts(&out, "[");
	const char *p = (const char *)r->body, *end = p + r->body_len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;
		size_t n = (size_t)(e - p);
		if (n && p[n - 1] == '\r')
			n--;
		if (n) {
			gw_buf to = {0};
			int rc = publish_one(api, topic, key, routed, p, n, &to);
			err |= gw_buf_puts(&out, ok + failed ? "," : "");
			if (rc)
				err |= gw_buf_printf(&out, "{\"status\":503,\"error\":\"%s\"", gw_strerror(rc));
			else
				err |= gw_buf_puts(&out, "{\"status\":200");
			if (routed)
				err |= gw_buf_printf(&out, ",\"to\":[%.*s]", (int)to.len, to.data ? (char *)to.data : "");
			err |= gw_buf_puts(&out, "}");
			gw_buf_free(&to);
			rc ? failed++ : ok++;
		}
		if (!nl)
			break;
		p = nl + 1;
	}
	gw_buf body = {0};
	err |= gw_buf_printf(&body, "{\"ok\":%s,\"published\":%zu,\"failed\":%zu,\"results\":%s]}",
			     failed ? "false" : "true", ok, failed, out.data ? (const char *)out.data : "[");
	if (err)
		reply_error(c, 500, "out of memory");
	else
		net_reply(c, 200, "application/json", body.data, body.len, NULL);
	gw_buf_free(&out);
	gw_buf_free(&body);
}

/* Whether a Content-Type value names media type t (parameters after ';' allowed). */
static bool media_is(const char *ctype, const char *t)
{
	size_t n = strlen(t);
	return strncasecmp(ctype, t, n) == 0 && (ctype[n] == 0 || ctype[n] == ';' || ctype[n] == ' ');
}

static void publish(gw_api *api, net_conn *c, const h1_req *r)
{
	char topic[512], route[16];
	/* route=nodes: socket-addressed envelopes go to their nodes' topics (bus.h) */
	int rr = h1_query_arg(r, "route", route, sizeof route);
	bool routed = rr == 1 && !strcmp(route, "nodes");
	if (rr && !routed) {
		reply_error(c, 400, "route takes one value: nodes");
		return;
	}
	if (routed && !topic_arg(r, topic, sizeof topic))
		snprintf(topic, sizeof topic, "%s", api->cfg->topics.out);
	else if (!topic_arg(r, topic, sizeof topic)) {
		reply_error(c, 400, "missing topic");
		return;
	}
	if (routed && strcmp(topic, api->cfg->topics.out)) {
		char msg[200];
		snprintf(msg, sizeof msg, "route=nodes routes envelopes for %.60s; got topic %.60s", api->cfg->topics.out,
			 topic);
		reply_error(c, 400, msg);
		return;
	}
	/* key: ?key=K, else the topic: one publisher's messages to a topic keep their
	 * order on a partitioned bus unless it spreads them over keys */
	char key[512];
	int kr = h1_query_arg(r, "key", key, sizeof key);
	if (kr < 0) {
		reply_error(c, 400, "key too long (at most 511 bytes)");
		return;
	}
	/* routed without key=: each destination topic's own name (gw_bus_publish_routed) */
	const char *k = kr == 1 && key[0] ? key : routed ? NULL : topic;
	const char *ctype = h1_header_get(r, "content-type");
	if (ctype && (media_is(ctype, "application/x-ndjson") || media_is(ctype, "application/ndjson"))) {
		publish_batch(api, c, r, topic, k, routed);
		return;
	}
	gw_buf to = {0}, body = {0};
	int rc = publish_one(api, topic, k, routed, r->body, r->body_len, &to);
	if (rc) {
		char msg[96];
		snprintf(msg, sizeof msg, "the bus refused the message (%s)", gw_strerror(rc));
		reply_error(c, 503, msg);
	} else if (routed && !gw_buf_printf(&body, "{\"ok\":true,\"to\":[%.*s]}", (int)to.len,
					     to.data ? (char *)to.data : "")) {
		net_reply(c, 200, "application/json", body.data, body.len, NULL);
	} else if (routed) {
		reply_error(c, 500, "out of memory");
	} else {
		reply_json(c, 200, "{\"ok\":true}");
	}
	gw_buf_free(&to);
	gw_buf_free(&body);
}

static void on_request(void *ctx, net_conn *c, const h1_req *r)
{
	gw_api *api = ctx;
	const char *path = r->path;
	bool is_get = r->method == H1_GET || r->method == H1_HEAD_M, is_post = r->method == H1_POST;
	const gw_config *cfg = api->cfg;
	if (strcmp(path, "/healthz") == 0 && is_get) {
		health(api, c);
		return;
	}
	if (strcmp(path, "/metrics") == 0 && is_get && cfg->metrics.enabled) {
		metrics(api, c);
		return;
	}
	bool pub = strcmp(path, "/api/publish") == 0;
	bool sub = strcmp(path, "/api/subscribe") == 0;
	bool drain = strcmp(path, "/api/drain") == 0 && api->on_drain;
	if (!cfg->http_api.enabled || (!pub && !sub && !drain)) {
		reply_error(c, 404, "not found");
		return;
	}
	if (!authorized(api, r)) {
		reply_error(c, 401, "missing or invalid bearer token");
		return;
	}
	if (sub) {
		if (r->method != H1_GET)
			reply_error(c, 405, "use GET");
		else
			subscribe(api, c, r);
		return;
	}
	if (drain) {
		if (!is_post) {
			reply_error(c, 405, "use POST");
			return;
		}
		reply_json(c, 202, "{\"draining\":true}");
		if (!eio_server_draining(api->eio))
			api->on_drain(api->drain_ctx);
		return;
	}
	if (!is_post)
		reply_error(c, 405, "use POST");
	else
		publish(api, c, r);
}

/* Largest write of queued SSE messages at once; more waits for the next callback. */
#define SSE_BATCH_MAX (64 * 1024)

/* Write the queued messages of a stream, many per chunk. < 0: broken (else see
 * net_stream_write). */
static int sse_write_queued(gw_api *api, net_conn *c, gw_sse *s)
{
	gw_buf *scratch = &api->scratch;
	gw_buf_reset(scratch);
	while (s->head && (!scratch->len || scratch->len + s->head->len <= SSE_BATCH_MAX)) {
		sse_msg *m = s->head;
		if (gw_buf_append(scratch, m->data, m->len))
			return -1;
		s->head = m->next;
		if (!s->head)
			s->tail = NULL;
		s->queued--;
		free(m);
	}
	return net_stream_write(c, scratch->data, scratch->len);
}

/* Write what can go now; the rest waits for on_writeable. */
static void sse_write(gw_api *api, net_conn *c, gw_sse *s)
{
	while (s->head && !net_conn_blocked(c))
		if (sse_write_queued(api, c, s) < 0)
			return; /* net closes c; on_close frees s */
}

static void on_writeable(void *ctx, net_conn *c)
{
	gw_sse *s = net_conn_user(c);
	if (s)
		sse_write(ctx, c, s);
}

static void gw_api_flush(void *ctx)
{
	gw_api *api = ctx;
	for (gw_dlink *l; api && (l = gw_dlist_pop(&api->dirty));) {
		gw_sse *s = GW_DLIST_ITEM(l, gw_sse, dirty);
		if (s->conn && s->head && !net_conn_blocked(s->conn))
			sse_write(api, s->conn, s);
	}
}

static void on_close(void *ctx, net_conn *c)
{
	gw_sse *s = net_conn_user(c);
	net_conn_set_user(c, NULL);
	if (s)
		sse_free(ctx, s);
}

int gw_api_listen(gw_api *api)
{
	static const net_route_ops ops = {
		.on_request = on_request,
		.on_writeable = on_writeable,
		.on_close = on_close,
	};
	int rc = net_route(api->net, "", &ops, api, api->cfg->http_api.max_body);
	return rc ? rc : net_on_turn(api->net, gw_api_flush, api);
}

static void sse_deliver(void *ctx, uint64_t sub_id, const char *topic, const void *data, size_t len)
{
	gw_api *api = ctx;
	char key[24];
	snprintf(key, sizeof key, "%llx", (unsigned long long)sub_id);
	gw_sse *s = gw_map_get(&api->sse, key, strlen(key));
	if (!s || !s->conn)
		return;
	if (s->queued >= api->cfg->http_api.sse_queue) {
		api->sse_dropped++;
		return;
	}
	/* "event: <topic>" (a prefix subscriber tells topics apart), then one "data:"
	 * line per line of the message, then a blank line */
	size_t lines = 1, tl = strcspn(topic, "\r\n");
	for (size_t i = 0; i < len; i++)
		lines += ((const char *)data)[i] == '\n';
	sse_msg *m = malloc(sizeof *m + 8 + tl + len + lines * 6 + 2);
	if (!m)
		return;
	uint8_t *o = m->data;
	size_t k = 0;
	memcpy(o, "event: ", 7);
	memcpy(o + 7, topic, tl);
	o[7 + tl] = '\n';
	k = 8 + tl;
	memcpy(o + k, "data: ", 6);
	k += 6;
	for (size_t i = 0; i < len; i++) {
		char ch = ((const char *)data)[i];
		o[k++] = (uint8_t)ch;
		if (ch == '\n') {
			memcpy(o + k, "data: ", 6);
			k += 6;
		}
	}
	o[k++] = '\n';
	o[k++] = '\n';
	m->len = k;
	m->next = NULL;
	if (s->tail)
		s->tail->next = m;
	else
		s->head = m;
	s->tail = m;
	s->queued++;
	gw_dlist_add(&api->dirty, &s->dirty); /* written by gw_api_flush before the loop waits */
}
