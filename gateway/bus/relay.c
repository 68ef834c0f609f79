/*
 * relay.c — see relay.h. Two halves on every node: fronts (clients here, sessions
 * elsewhere) and owners (sessions here, clients elsewhere), each a map by relay id.
 */
#include "bus/relay.h"
#include "eio/eio_codec.h"
#include "net/ws.h"
#include "util/base64.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"
#include "util/map.h"
#include "util/rand.h"
#include "util/sid.h"
#include "util/timer.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RID_MAX 48
/* How long a front waits for the owner's answer: a POST or an upgrade is answered at
 * once (at most 10 s, or ping_timeout_ms when shorter), a poll within a ping interval (the
 * owner's ping releases it), so ping_interval_ms + ping_timeout_ms: by then the client has
 * given up on a session whose node is gone too. */
#define QUICK_MS 10000

typedef struct front {
	gw_relay *r;
	net_conn *c;
	const h1_req *req; /* valid until answered (an upgrade: until accepted) */
	bool ws;           /* accepted: a relayed websocket */
	size_t held;       /* messages written while the client's socket was still full */
	gw_timer tm;
	char topic[256];   /* the owner's node topic */
	char rid[RID_MAX];
} front;

typedef struct owner {
	gw_relay *r;
	net_conn *c;       /* the remote connection (net.h) */
	char reply[256];   /* the front's node topic */
	char rid[RID_MAX];
} owner;

struct gw_relay {
	gw_bus *bus;
	net_loop *net;
	const gw_config *cfg;
	gw_map fronts, owners;
	uint64_t seq;
	char boot[9]; /* this run: relay ids of an earlier run never match */
	gw_buf frame;
	struct {
		uint64_t front, owner, timeouts, malformed, publish_errors, slow;
	} stats;
};

static const char RELAY_PREFIX[] = "{\"type\":\"relay\",";

bool gw_relay_is_message(const void *data, size_t len)
{
	return len > sizeof RELAY_PREFIX - 1 && memcmp(data, RELAY_PREFIX, sizeof RELAY_PREFIX - 1) == 0;
}

gw_relay *gw_relay_create(gw_bus *bus, net_loop *net, const gw_config *cfg)
{
	gw_relay *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->bus = bus;
	r->net = net;
	r->cfg = cfg;
	char id[GW_ID_LEN + 1];
	gw_rand_id(id);
	memcpy(r->boot, id, 8);
	return r;
}

/* ---- messages ---- */

/* A message of op for rid ("type" first: gw_relay_is_message). */
static cJSON *msg(const char *op, const char *rid)
{
	cJSON *o = cJSON_CreateObject();
	if (o && (!cJSON_AddStringToObject(o, "type", "relay") || !cJSON_AddStringToObject(o, "op", op) ||
		  !cJSON_AddStringToObject(o, "rid", rid))) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static bool add_b64(cJSON *o, const char *name, const void *p, size_t n)
{
	char *t = malloc(gw_b64_enc_len(n) + 1);
	if (!t)
		return false;
	t[gw_b64_encode(p, n, t)] = 0;
	bool ok = cJSON_AddStringToObject(o, name, t) != NULL;
	free(t);
	return ok;
}

/* Data of a websocket message: text as it is, binary as base64. */
static bool add_data(cJSON *o, const void *p, size_t n, bool binary)
{
	if (!cJSON_AddBoolToObject(o, "bin", binary))
		return false;
	if (binary)
		return add_b64(o, "data", p, n);
	char *t = malloc(n + 1);
	if (!t)
		return false;
	memcpy(t, p, n);
	t[n] = 0;
	bool ok = cJSON_AddStringToObject(o, "data", t) != NULL;
	free(t);
	return ok;
}

/* Publish o (taken) to topic, keyed by rid. */
static int send_msg(gw_relay *r, const char *topic, const char *rid, cJSON *o)
{
	char *json = o ? cJSON_PrintUnformatted(o) : NULL;
	cJSON_Delete(o);
	int rc = json ? gw_bus_publish(r->bus, GW_TOPIC_NODE, topic, rid, json, strlen(json)) : -GW_ENOMEM;
	free(json);
	if (rc)
		r->stats.publish_errors++;
	return rc;
}

/* A string member; NULL when absent or not a string. */
static const char *str(const cJSON *o, const char *name)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, name));
}

static double num(const cJSON *o, const char *name, double dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

/* base64 member name decoded into a malloc'd buffer (*n bytes); NULL when bad. */
static uint8_t *b64_member(const cJSON *o, const char *name, size_t *n)
{
	const char *t = str(o, name);
	size_t tl = t ? strlen(t) : 0;
	uint8_t *out = t ? malloc(tl / 4 * 3 + 3) : NULL;
	long k = out ? gw_b64_decode(t, tl, out) : -1;
	if (k < 0) {
		free(out);
		return NULL;
	}
	*n = (size_t)k;
	return out;
}

/* A websocket message's data member: *bin says which form. */
static uint8_t *data_member(const cJSON *o, size_t *n, bool *bin)
{
	*bin = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "bin"));
	if (*bin)
		return b64_member(o, "data", n);
	const char *t = str(o, "data");
	if (!t)
		return NULL;
	*n = strlen(t);
	return (uint8_t *)strdup(t);
}

/* ---- the front: the client is here ---- */

static void front_done(front *f)
{
	gw_relay *r = f->r;
	gw_map_del(&r->fronts, f->rid, strlen(f->rid));
	gw_timer_stop(net_timers(r->net), &f->tm);
	net_conn_set_user(f->c, NULL); /* no on_close for it any more */
	free(f);
}

static void front_gone(front *f, uint16_t code)
{
	cJSON *o = msg("gone", f->rid);
	if (o && cJSON_AddNumberToObject(o, "code", code))
		send_msg(f->r, f->topic, f->rid, o);
	else
		cJSON_Delete(o);
}

/* The front gives up its exchange: the owner hears "gone" (code), the front is freed. */
static void front_abandon(front *f, uint16_t code)
{
	front_gone(f, code);
	front_done(f);
}

static void front_ws_message(void *ctx, net_conn *c, const uint8_t *data, size_t len, bool binary)
{
	gw_relay *r = ctx;
	front *f = net_conn_user(c);
	if (!f)
		return;
	cJSON *o = msg("in", f->rid);
	bool ok = o && add_data(o, data, len, binary);
	if (!ok)
		cJSON_Delete(o);
	if (!ok || send_msg(r, f->topic, f->rid, o)) {
		/* a message lost on its way would leave the session out of step: end it */
		front_abandon(f, WS_CLOSE_INTERNAL);
		net_ws_close(c, WS_CLOSE_INTERNAL, "relay failed");
	}
}

static void front_close(void *ctx, net_conn *c)
{
	(void)ctx;
	front *f = net_conn_user(c);
	if (!f)
		return;
	front_abandon(f, net_ws_close_code(c));
}

static const net_route_ops front_ops = {.on_ws_message = front_ws_message, .on_close = front_close};

static void front_timeout(gw_timer *t)
{
	front *f = t->ctx;
	f->r->stats.timeouts++;
	gw_debug("relay %s: no answer from %s in time", f->rid, f->topic);
	net_conn *c = f->c;
	front_abandon(f, 0);
	char body[96]; /* what a node says of a session it does not know */
	int n = eio_error_body(EIO_ERR_UNKNOWN_SID, body, sizeof body);
	net_reply(c, eio_error_status(EIO_ERR_UNKNOWN_SID), "application/json", body, n > 0 ? (size_t)n : 0, NULL);
}

/* The request as HTTP/1.1 bytes: its head as it came, the body decoded, with its length. */
static int request_bytes(const h1_req *q, gw_buf *b)
{
	int err = gw_buf_printf(b, "%s %s HTTP/1.1\r\n", q->method_name, q->target);
	bool host = false;
	for (size_t i = 0; i < q->n_headers; i++) {
		const h1_header *h = &q->headers[i];
		if (!strcmp(h->name, "content-length") || !strcmp(h->name, "transfer-encoding"))
			continue;
		host |= !strcmp(h->name, "host");
		err |= gw_buf_printf(b, "%s: %s\r\n", h->name, h->value);
	}
	if (!host)
		err |= gw_buf_puts(b, "host: relay\r\n");
	if (q->body_len || q->method == H1_POST)
		err |= gw_buf_printf(b, "content-length: %zu\r\n", q->body_len);
	err |= gw_buf_puts(b, "\r\n");
	err |= gw_buf_append(b, q->body, q->body_len);
	return err;
}

bool gw_relay_request(void *relay, net_conn *c, const h1_req *q, const char *tag)
{
	gw_relay *r = relay;
	front *f = calloc(1, sizeof *f);
	if (!f || !gw_config_node_topic(r->cfg, tag, f->topic, sizeof f->topic)) {
		free(f);
		return false;
	}
	f->r = r;
	f->c = c;
	f->req = q;
	snprintf(f->rid, sizeof f->rid, "%s.%s.%" PRIu64, r->cfg->node_tag, r->boot, ++r->seq);
	gw_buf http = {0};
	cJSON *o = msg("req", f->rid);
	bool ok = o && !request_bytes(q, &http) && cJSON_AddStringToObject(o, "reply", r->cfg->topics.node) &&
		  cJSON_AddStringToObject(o, "peer", net_conn_peer(c)) &&
		  cJSON_AddBoolToObject(o, "secure", net_conn_secure(c)) && add_b64(o, "http", http.data, http.len);
	gw_buf_free(&http);
	if (!ok || gw_map_put(&r->fronts, f->rid, strlen(f->rid), f)) {
		cJSON_Delete(o);
		free(f);
		return false;
	}
	int rc = send_msg(r, f->topic, f->rid, o);
	if (rc) {
		/* e.g. a POST over the bus's message size: say so, not "Session ID unknown" */
		gw_map_del(&r->fronts, f->rid, strlen(f->rid));
		free(f);
		char body[160];
		int n = snprintf(body, sizeof body, "{\"code\":3,\"message\":\"relay to the session's node failed: %s\"}",
				 gw_strerror(rc));
		net_reply(c, 503, "application/json", body, n > 0 && (size_t)n < sizeof body ? (size_t)n : 0, NULL);
		return true;
	}
	r->stats.front++;
	net_conn_adopt(c, &front_ops, r);
	net_conn_set_user(c, f);
	f->tm.ctx = f;
	const int64_t pt = r->cfg->engine.ping_timeout_ms;
	uint32_t wait = q->method == H1_GET && !q->upgrade ? (uint32_t)(r->cfg->engine.ping_interval_ms + pt)
						   : (uint32_t)(pt < QUICK_MS ? pt : QUICK_MS);
	gw_timer_start(net_timers(r->net), &f->tm, wait, front_timeout);
	return true;
}

/* The owner's answer to the request. */
static void front_res(front *f, const cJSON *m)
{
	if (f->ws) { /* an answer after the upgrade: not ours to give */
		f->r->stats.malformed++;
		return;
	}
	size_t n = 0;
	uint8_t *body = b64_member(m, "body", &n);
	int status = (int)num(m, "status", 0);
	if (!body || status < 100 || status > 599) {
		free(body);
		f->r->stats.malformed++;
		return;
	}
	const char *ctype = str(m, "ctype"), *extra = str(m, "extra");
	bool close = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, "close"));
	net_conn *c = f->c;
	front_done(f);
	if (close)
		net_reply_close(c, status, ctype, body, n);
	else
		net_reply(c, status, ctype, body, n, extra && extra[0] ? extra : NULL);
	free(body);
}

static void front_accept(front *f)
{
	if (f->ws)
		return;
	if (net_ws_accept(f->c, f->req)) { /* net answered the bad handshake */
		front_abandon(f, 0);
		return;
	}
	f->ws = true;
	f->req = NULL;
	gw_timer_stop(net_timers(f->r->net), &f->tm);
}

static void front_out(front *f, const cJSON *m)
{
	size_t n = 0;
	bool bin;
	/* a client that does not read: at most engine.send_queue messages wait for it (as
	 * on the node holding its session), then it is a slow consumer and goes */
	f->held = net_conn_blocked(f->c) ? f->held + 1 : 0;
	if (f->held > (size_t)f->r->cfg->engine.send_queue) {
		f->r->stats.slow++;
		gw_warn("relay %s: the client reads too slowly (%zu messages waiting), closing it", f->rid, f->held);
		net_conn *c = f->c;
		front_abandon(f, WS_CLOSE_POLICY);
		net_ws_close(c, WS_CLOSE_POLICY, "slow consumer");
		return;
	}
	uint8_t *data = f->ws ? data_member(m, &n, &bin) : NULL;
	gw_buf *b = &f->r->frame;
	gw_buf_reset(b);
	if (data && !net_ws_frame(f->c, b, data, n, bin))
		net_ws_send(f->c, b->data, b->len);
	else
		f->r->stats.malformed++;
	free(data);
}

static void front_closed(front *f, const cJSON *m)
{
	net_conn *c = f->c;
	bool ws = f->ws;
	front_done(f);
	if (ws)
		net_ws_close(c, (uint16_t)num(m, "code", 0), str(m, "reason"));
	else
		net_close(c);
}

/* ---- the owner: the session is here ---- */

static void owner_free(owner *o)
{
	gw_map_del(&o->r->owners, o->rid, strlen(o->rid));
	free(o);
}

static void owner_reply(void *ctx, net_conn *c, int status, const char *ctype, const void *body, size_t len,
			const char *extra, bool close)
{
	(void)c;
	owner *o = ctx;
	cJSON *m = msg("res", o->rid);
	bool ok = m && cJSON_AddNumberToObject(m, "status", status) &&
		  (!ctype || cJSON_AddStringToObject(m, "ctype", ctype)) &&
		  (!extra || cJSON_AddStringToObject(m, "extra", extra)) && cJSON_AddBoolToObject(m, "close", close) &&
		  add_b64(m, "body", body, len);
	if (ok)
		send_msg(o->r, o->reply, o->rid, m);
	else
		cJSON_Delete(m);
	owner_free(o); /* net frees c */
}

static void owner_ws_accept(void *ctx, net_conn *c)
{
	(void)c;
	owner *o = ctx;
	send_msg(o->r, o->reply, o->rid, msg("accept", o->rid));
}

static void owner_ws_send(void *ctx, net_conn *c, const void *data, size_t len, bool binary)
{
	owner *o = ctx;
	cJSON *m = msg("out", o->rid);
	bool ok = m && add_data(m, data, len, binary);
	if (!ok)
		cJSON_Delete(m);
	if (!ok || send_msg(o->r, o->reply, o->rid, m))
		net_close(c); /* out of step otherwise: the session ends (its close is tried too) */
}

static void owner_close(void *ctx, net_conn *c, uint16_t code, const char *reason)
{
	(void)c;
	owner *o = ctx;
	cJSON *m = msg("close", o->rid);
	if (m && cJSON_AddNumberToObject(m, "code", code) && (!reason || cJSON_AddStringToObject(m, "reason", reason)))
		send_msg(o->r, o->reply, o->rid, m);
	else
		cJSON_Delete(m);
	owner_free(o);
}

static const net_remote_ops owner_ops = {
	.reply = owner_reply, .ws_accept = owner_ws_accept, .ws_send = owner_ws_send, .close = owner_close};

static void owner_req(gw_relay *r, const cJSON *m, const char *rid)
{
	const char *reply = str(m, "reply");
	size_t n = 0;
	uint8_t *http = b64_member(m, "http", &n);
	owner *o = http && reply && strlen(reply) < sizeof o->reply && strlen(rid) < RID_MAX &&
			   !gw_map_get(&r->owners, rid, strlen(rid))
		       ? calloc(1, sizeof *o)
		       : NULL;
	if (!o) {
		free(http);
		r->stats.malformed++;
		return;
	}
	o->r = r;
	snprintf(o->reply, sizeof o->reply, "%s", reply);
	snprintf(o->rid, sizeof o->rid, "%s", rid);
	o->c = net_remote_new(r->net, &owner_ops, o, str(m, "peer"),
			      cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, "secure")));
	if (!o->c || gw_map_put(&r->owners, o->rid, strlen(o->rid), o)) {
		/* (a remote connection that was made is freed with the loop) */
		free(o);
		free(http);
		return;
	}
	r->stats.owner++;
	net_remote_request(o->c, http, n); /* may answer at once: o is gone then */
	free(http);
}

/* ---- from the bus ---- */

void gw_relay_deliver(void *relay, const char *data, size_t len)
{
	gw_relay *r = relay;
	cJSON *m = cJSON_ParseWithLength(data, len);
	const char *op = str(m, "op"), *rid = str(m, "rid");
	if (!op || !rid) {
		r->stats.malformed++;
		cJSON_Delete(m);
		return;
	}
	front *f = gw_map_get(&r->fronts, rid, strlen(rid));
	owner *o = gw_map_get(&r->owners, rid, strlen(rid));
	if (!strcmp(op, "req")) {
		owner_req(r, m, rid);
	} else if (!strcmp(op, "in") && o) {
		size_t n = 0;
		bool bin;
		uint8_t *d = data_member(m, &n, &bin);
		if (d)
			net_remote_ws_message(o->c, d, n, bin);
		free(d);
	} else if (!strcmp(op, "gone") && o) {
		net_remote_gone(o->c, (uint16_t)num(m, "code", 0));
		owner_free(o);
	} else if (!strcmp(op, "res") && f) {
		front_res(f, m);
	} else if (!strcmp(op, "accept") && f) {
		front_accept(f);
	} else if (!strcmp(op, "out") && f) {
		front_out(f, m);
	} else if (!strcmp(op, "close") && f) {
		front_closed(f, m);
	} /* else: for an exchange that is over (timed out, closed): dropped */
	cJSON_Delete(m);
}

void gw_relay_destroy(gw_relay *r)
{
	if (!r)
		return;
	size_t n;
	void **v = gw_map_values(&r->fronts, &n);
	for (size_t i = 0; v && i < n; i++) {
		front *f = v[i];
		net_conn *c = f->c;
		bool ws = f->ws;
		front_done(f);
		if (ws)
			net_ws_close(c, WS_CLOSE_GOING_AWAY, "server shutting down");
		else
			net_close(c);
	}
	free(v);
	v = gw_map_values(&r->owners, &n);
	for (size_t i = 0; v && i < n; i++) {
		owner *o = v[i];
		net_remote_gone(o->c, WS_CLOSE_GOING_AWAY);
		owner_free(o);
	}
	free(v);
	gw_map_free(&r->fronts);
	gw_map_free(&r->owners);
	gw_buf_free(&r->frame);
	free(r);
}

void gw_relay_metrics(void *relay, gw_metric_sink *m)
{
	gw_relay *r = relay;
	static const char req[] = "Engine.IO requests relayed over the bus: front = a client here for a session on "
				  "another node, owner = served here for a client on another node.";
	static const char open[] = "Relayed exchanges open (held polls, relayed websockets).";
	m->sample(m, "sio_relay_requests_total", GW_METRIC_COUNTER, req, "side=\"front\"", (int64_t)r->stats.front);
	m->sample(m, "sio_relay_requests_total", GW_METRIC_COUNTER, req, "side=\"owner\"", (int64_t)r->stats.owner);
	m->sample(m, "sio_relay_open", GW_METRIC_GAUGE, open, "side=\"front\"", (int64_t)r->fronts.len);
	m->sample(m, "sio_relay_open", GW_METRIC_GAUGE, open, "side=\"owner\"", (int64_t)r->owners.len);
	gw_metric_counter(m, "sio_relay_timeouts_total", "Relayed requests the owning node did not answer in time.",
			  r->stats.timeouts);
	gw_metric_counter(m, "sio_relay_malformed_total", "Relay messages that could not be read.", r->stats.malformed);
	gw_metric_counter(m, "sio_relay_publish_errors_total", "Relay messages the bus refused.", r->stats.publish_errors);
	gw_metric_counter(m, "sio_relay_slow_consumers_total",
			  "Relayed websockets closed because their client read too slowly (engine.send_queue).", r->stats.slow);
}
