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
#include "sio/sio.h"
#include "util/err.h"
#include "util/log.h"
#include "util/dlist.h"
#include "util/map.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sse_msg {
	struct sse_msg *next;
	size_t len;
	uint8_t data[]; /* LWS_PRE headroom then "data: ...\n\n" */
} sse_msg;

typedef struct gw_sse {
	gw_conn *conn;
	uint64_t sub_id;
	char key[24];   /* sub_id as text, the map key */
	sse_msg *head, *tail;
	size_t queued;
	bool greeted;   /* the ": subscribed" comment was written */
	gw_dlink dirty; /* on the api's dirty list: messages queued this loop turn */
} gw_sse;

struct gw_api {
	gw_app *app;
	gw_map sse;     /* sub id text → gw_sse */
	gw_dlist dirty; /* streams to write before the loop waits (gw_api_flush) */
};

gw_api *gw_api_create(gw_app *app)
{
	gw_api *api = calloc(1, sizeof *api);
	if (api)
		api->app = app;
	return api;
}

static void sse_free(gw_api *api, gw_sse *s)
{
	gw_dlist_del(&api->dirty, &s->dirty);
	gw_map_del(&api->sse, s->key, strlen(s->key));
	if (api->app->bus)
		gw_bus_unsubscribe(api->app->bus, s->sub_id);
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
			s->conn->sse = NULL;
		sse_free(api, s);
	}
	free(all);
	gw_map_free(&api->sse);
	free(api);
}

static int authorized(gw_api *api, gw_conn *c)
{
	const char *token = api->app->cfg->http_api.token;
	if (!token || !token[0])
		return 1;
	char auth[512] = "";
	if (lws_hdr_copy(c->wsi, auth, sizeof auth, WSI_TOKEN_HTTP_AUTHORIZATION) <= 0)
		return 0;
	if (strncmp(auth, "Bearer ", 7) != 0)
		return 0;
	const char *given = auth + 7;
	size_t a = strlen(given), b = strlen(token);
	unsigned diff = (unsigned)(a != b);
	for (size_t i = 0; i < a && i < b; i++)
		diff |= (unsigned)(given[i] ^ token[i]);
	return diff == 0;
}

static void reply_json(gw_conn *c, int status, const char *json)
{
	net_reply(c, status, "application/json", json, strlen(json));
}

static void reply_error(gw_conn *c, int status, const char *msg)
{
	char body[256];
	snprintf(body, sizeof body, "{\"error\":\"%s\"}", msg);
	reply_json(c, status, body);
}

static int topic_arg(gw_conn *c, char *topic, int len)
{
	return net_query_arg(c->wsi, "topic", topic, (size_t)len) == 1 && topic[0];
}

static void health(gw_api *api, gw_conn *c)
{
	char reason[256] = "";
	int rc = api->app->bus ? gw_bus_health(api->app->bus, reason, sizeof reason) : -GW_EIO;
	gw_buf b = {0};
	gw_buf_printf(&b, "{\"status\":\"%s\",\"node\":\"%s\",\"plugin\":\"%s\",\"sessions\":%zu",
		      rc ? "unhealthy" : "ok", api->app->cfg->node_id,
		      api->app->bus ? gw_bus_plugin_name(api->app->bus) : "",
		      eio_server_sessions(api->app->eio));
	if (rc) {
		/* reason comes from the plugin: keep the JSON valid */
		for (char *p = reason; *p; p++)
			if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
				*p = ' ';
		gw_buf_printf(&b, ",\"reason\":\"%s\"", reason);
	}
	gw_buf_puts(&b, "}");
	net_reply(c, rc ? 503 : 200, "application/json", b.data, b.len);
	gw_buf_free(&b);
}

static void metrics(gw_api *api, gw_conn *c)
{
	gw_buf b = {0};
	gw_metrics_render(&b);
	sio_server_render_metrics(api->app->sio, &b);
	if (api->app->bus)
		gw_bus_render_metrics(api->app->bus, &b);
	net_reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
	gw_buf_free(&b);
}

static int subscribe(gw_api *api, gw_conn *c)
{
	char topic[512];
	if (!topic_arg(c, topic, sizeof topic)) {
		reply_error(c, 400, "missing topic");
		return 0;
	}
	char pfx[8] = "";
	bool prefix = net_query_arg(c->wsi, "prefix", pfx, sizeof pfx) == 1 &&
		      (strcmp(pfx, "1") == 0 || strcmp(pfx, "true") == 0);
	gw_sse *s = calloc(1, sizeof *s);
	if (!s) {
		reply_error(c, 500, "out of memory");
		return 0;
	}
	s->sub_id = gw_bus_subscribe_sse(api->app->bus, topic, prefix);
	if (!s->sub_id) {
		free(s);
		reply_error(c, 503, "bus refused the subscription");
		return 0;
	}
	snprintf(s->key, sizeof s->key, "%llx", (unsigned long long)s->sub_id);
	if (gw_map_put(&api->sse, s->key, strlen(s->key), s)) {
		gw_bus_unsubscribe(api->app->bus, s->sub_id);
		free(s);
		reply_error(c, 500, "out of memory");
		return 0;
	}
	s->conn = c;
	c->sse = s;
	c->role = CONN_API_SSE;

	net_hold(c);
	lws_callback_on_writable(c->wsi);
	gw_debug("api: SSE subscriber on %s%s", topic, prefix ? "*" : "");
	return 0;
}

int gw_api_on_http(gw_api *api, gw_conn *c, const char *path)
{
	bool is_get = lws_hdr_total_length(c->wsi, WSI_TOKEN_GET_URI) > 0;
	bool is_post = lws_hdr_total_length(c->wsi, WSI_TOKEN_POST_URI) > 0;
	const gw_config *cfg = api->app->cfg;
	gw_stats.http_requests++;

	if (strcmp(path, "/healthz") == 0 && is_get) {
		health(api, c);
		return 0;
	}
	if (strcmp(path, "/metrics") == 0 && is_get && cfg->metrics.enabled) {
		metrics(api, c);
		return 0;
	}
	bool publish = strcmp(path, "/api/publish") == 0;
	bool sub = strcmp(path, "/api/subscribe") == 0;
	if (!cfg->http_api.enabled || (!publish && !sub)) {
		reply_error(c, 404, "not found");
		return 0;
	}
	if (!authorized(api, c)) {
		reply_error(c, 401, "missing or invalid bearer token");
		return 0;
	}
	if (sub) {
		if (!is_get) {
			reply_error(c, 405, "use GET");
			return 0;
		}
		return subscribe(api, c);
	}
	if (!is_post) {
		reply_error(c, 405, "use POST");
		return 0;
	}
	char topic[512];
	if (!topic_arg(c, topic, sizeof topic)) {
		reply_error(c, 400, "missing topic");
		return 0;
	}
	if (lws_hdr_total_length(c->wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
		reply_error(c, 411, "chunked bodies are not supported: send Content-Length");
		return 0;
	}
	char cl[32] = "";
	lws_hdr_copy(c->wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH);
	unsigned long long n = strtoull(cl, NULL, 10);
	if (n > cfg->http_api.max_body) {
		reply_error(c, 413, "body larger than http_api.max_body");
		return 0;
	}
	c->topic = strdup(topic);
	if (!c->topic)
		return -1;
	c->role = CONN_API_POST;
	c->body_limit = cfg->http_api.max_body;
	if (n == 0)
		return gw_api_on_body_done(api, c);
	return 0;
}

int gw_api_on_body(gw_api *api, gw_conn *c, const void *in, size_t len)
{
	(void)api;
	if (c->role != CONN_API_POST)
		return 0;
	if (c->body.len + len > c->body_limit) {
		c->role = CONN_REPLY;
		reply_error(c, 413, "body larger than http_api.max_body");
		return 0;
	}
	return gw_buf_append(&c->body, in, len) ? -1 : 0;
}

int gw_api_on_body_done(gw_api *api, gw_conn *c)
{
	if (c->role != CONN_API_POST)
		return 0;
	c->role = CONN_REPLY;
	int rc = gw_bus_publish(api->app->bus, GW_TOPIC_API, c->topic, NULL,
				c->body.data ? (const void *)c->body.data : "", c->body.len);
	if (rc)
		reply_error(c, 503, "the bus refused the message");
	else
		reply_json(c, 200, "{\"ok\":true}");
	return 0;
}

/* Largest write of queued SSE messages at once; more waits for the next callback. */
#define SSE_BATCH_MAX (64 * 1024)

/* Write the queued messages of a greeted stream, many per send. < 0: broken (else see
 * net_send_now). */
static int sse_write_queued(gw_conn *c, gw_sse *s)
{
	static gw_buf scratch; /* service thread only; reused */
	gw_buf_reset(&scratch);
	if (!s->head || gw_buf_reserve(&scratch, LWS_PRE))
		return s->head ? -1 : 0;
	scratch.len = LWS_PRE;
	while (s->head && (scratch.len == LWS_PRE || scratch.len - LWS_PRE + s->head->len <= SSE_BATCH_MAX)) {
		sse_msg *m = s->head;
		if (gw_buf_append(&scratch, m->data + LWS_PRE, m->len))
			return -1;
		s->head = m->next;
		if (!s->head)
			s->tail = NULL;
		s->queued--;
		free(m);
	}
	return net_send_now(c, scratch.data + LWS_PRE, scratch.len - LWS_PRE, LWS_WRITE_HTTP);
}

int gw_api_on_writeable(gw_api *api, gw_conn *c)
{
	(void)api;
	gw_sse *s = c->sse;
	if (!s)
		return -1;
	if (!s->greeted) {
		/* headers and the greeting from the first writeable callback: written from
		 * LWS_CALLBACK_HTTP, lws 4.1 never noticed the peer hanging up (POLLHUP
		 * spun the loop) */
		unsigned char buf[LWS_PRE + 1024], *start = buf + LWS_PRE, *p = start,
						    *end = buf + sizeof buf;
		if (lws_add_http_common_headers(c->wsi, HTTP_STATUS_OK, "text/event-stream",
						LWS_ILLEGAL_HTTP_CONTENT_LEN, &p, end) ||
		    lws_add_http_header_by_name(c->wsi, (const unsigned char *)"cache-control:",
						(const unsigned char *)"no-cache", 8, &p, end) ||
		    net_add_common_headers(c, &p, end) ||
		    lws_finalize_write_http_header(c->wsi, start, &p, end))
			return -1;
		s->greeted = true;
		memcpy(buf + LWS_PRE, ": subscribed\n\n", 14);
		if (lws_write(c->wsi, buf + LWS_PRE, 14, LWS_WRITE_HTTP) < 0)
			return -1;
	}
	if (sse_write_queued(c, s) < 0)
		return -1;
	if (s->head)
		lws_callback_on_writable(c->wsi);
	return 0;
}

void gw_api_flush(gw_api *api)
{
	for (gw_dlink *l; api && (l = gw_dlist_pop(&api->dirty));) {
		gw_sse *s = GW_DLIST_ITEM(l, gw_sse, dirty);
		gw_conn *c = s->conn;
		if (!c || !s->head)
			continue;
		/* not greeted yet, or lws still holds output: the writeable callback */
		if (!s->greeted || lws_partial_buffered(c->wsi)) {
			lws_callback_on_writable(c->wsi);
			continue;
		}
		if (sse_write_queued(c, s) < 0)
			c->kill = true; /* closed from its writeable callback */
		if (s->head || c->kill)
			lws_callback_on_writable(c->wsi);
	}
}

void gw_api_on_closed(gw_api *api, gw_conn *c)
{
	if (c->sse) {
		sse_free(api, c->sse);
		c->sse = NULL;
	}
}

void gw_api_sse_deliver(gw_api *api, uint64_t sub_id, const char *topic, const void *data,
			size_t len)
{
	(void)topic;
	char key[24];
	snprintf(key, sizeof key, "%llx", (unsigned long long)sub_id);
	gw_sse *s = gw_map_get(&api->sse, key, strlen(key));
	if (!s || !s->conn)
		return;
	if (s->queued >= api->app->cfg->http_api.sse_queue) {
		gw_stats.sse_dropped++;
		return;
	}
	/* one "data:" line per line of the message, then a blank line */
	size_t lines = 1;
	for (size_t i = 0; i < len; i++)
		lines += ((const char *)data)[i] == '\n';
	sse_msg *m = malloc(sizeof *m + LWS_PRE + len + lines * 6 + 2);
	if (!m)
		return;
	uint8_t *o = m->data + LWS_PRE;
	size_t k = 0;
	memcpy(o, "data: ", 6);
	k = 6;
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
