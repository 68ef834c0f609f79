/*
 * eio_server.c — Engine.IO v4 sessions and transports, on the network layer (net/net.h).
 *
 * A session owns a bounded queue of refcounted frames. The websocket transport writes
 * what a loop turn queued with one send() before the loop waits (eio_flush; net's
 * on_writeable for what the socket did not take); the polling transport answers a held
 * GET with the whole queue joined into one payload. Upgrade: a websocket carrying the sid attaches
 * as a probe, answers "2probe" with "3probe", releases the pending poll with a noop,
 * and becomes the transport on "5". Heartbeat: the server pings every ping_interval
 * and closes the session if no pong comes within ping_timeout.
 *
 * Engine.IO v3 (engine.allow_eio3, EIO=3): the same sessions with v3's framing (polling
 * payloads "<len>:<packet>", or the binary form when the client supports binary and a
 * packet is binary; websocket binary frames led by the type byte 4) and v3's heartbeat:
 * the client pings, the server answers with a pong, and closes the session when no
 * ping came within ping_interval + ping_timeout — as engine.io does.
 */
#include "eio/eio.h"
#include "eio/eio_codec.h"
#include "net/net.h"
#include "net/ws.h"
#include "util/base64.h"
#include "util/utf8.h"
#include "util/err.h"
#include "util/log.h"
#include "util/map.h"
#include "util/rand.h"
#include "util/sid.h"
#include "util/timer.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct eio_session {
	/* first: what queueing a frame and flushing touch (one or two cache lines) */
	gw_frame **q;          /* ring of queued frames; q_cap is a power of two */
	size_t q_head, q_len, q_cap;
	eio_server *srv;
	net_conn *ws;          /* websocket (transport or probe) */
	size_t dirty;          /* 1 + index in srv->dirty: frames queued this loop turn; 0 = none */
	bool websocket;        /* the transport is the websocket */
	bool upgrading;        /* a websocket probe is attached */
	bool closed;
	bool closing;          /* websocket: close once the queue has drained */
	bool probed;           /* the probe said "2probe": polls are answered with a noop */
	bool awaiting_pong;
	bool eio3;             /* Engine.IO v3 */
	bool b64;              /* v3: the client asked for base64 binary (b64=1) */
	gw_close_reason close_reason;
	int busy;              /* > 0 while a callback runs on the session: defer free */
	net_conn *poll;        /* held polling GET */
	gw_timer hb;           /* ping interval / pong timeout */
	gw_timer upg;          /* upgrade timeout */
	char *handshake;       /* JSON text: compact while idle, parsed when needed */
	void *user;
	char sid[GW_ID_LEN + 1];
};

struct eio_server {
	const gw_config *cfg;
	net_loop *net;
	gw_timers *timers;
	eio_session **dirty;   /* sessions with frames queued this turn (see dirty_add) */
	size_t n_dirty, dirty_cap;
	time_t time_at;        /* the handshake's "time" text, made once a second */
	char time_text[64];
	gw_buf scratch;        /* the handshake's text; a websocket batch */
	gw_buf args;           /* the handshake's query */
	gw_buf v3;             /* a v3 websocket binary frame's payload */
	eio_stats stats;
	atomic_bool draining;  /* new sessions are refused (503); set from any thread */
	eio_relay_fn relay;    /* requests for other nodes' sessions, or NULL */
	void *relay_ctx;
	char *path;
	eio_handler h;
	gw_map sessions;
	gw_frame *ping, *pong, *noop, *probe, *close;
};

/* ---- small helpers ---- */

static gw_frame *static_frame(const char *s)
{
	return gw_frame_from(s, strlen(s), false);
}

eio_server *eio_server_create(net_loop *net, const gw_config *cfg, const char *path, const eio_handler *h)
{
	eio_server *srv = calloc(1, sizeof *srv);
	if (!srv)
		return NULL;
	srv->cfg = cfg;
	srv->net = net;
	srv->timers = net_timers(net);
	srv->time_at = -1;
	srv->path = strdup(path);
	srv->h = *h;
	srv->ping = static_frame("2");
	srv->pong = static_frame("3");
	srv->noop = static_frame("6");
	srv->probe = static_frame("3probe");
	srv->close = static_frame("1");
	if (!srv->path || !srv->ping || !srv->pong || !srv->noop || !srv->probe || !srv->close) {
		eio_server_destroy(srv);
		return NULL;
	}
	return srv;
}

static const char *const CLOSE_NAMES[GW_CLOSE__COUNT] = {
	"transport close", "transport error", "ping timeout", "parse error",
	"payload too large", "queue overflow", "connect timeout", "server disconnect",
	"server shutting down",
};

const char *gw_close_reason_str(gw_close_reason r)
{
	return r < GW_CLOSE__COUNT ? CLOSE_NAMES[r] : "unknown";
}

void eio_metrics(void *ctx, gw_metric_sink *m)
{
	const eio_server *srv = ctx;
	char l[64];
	m->sample(m, "sio_connections", GW_METRIC_GAUGE, "Open Engine.IO sessions by transport.",
		  "transport=\"polling\"", srv->stats.polling);
	m->sample(m, "sio_connections", GW_METRIC_GAUGE, "Open Engine.IO sessions by transport.",
		  "transport=\"websocket\"", srv->stats.websocket);
	gw_metric_counter(m, "sio_sessions_opened_total", "Engine.IO sessions opened.", srv->stats.opened);
	gw_metric_counter(m, "sio_upgrades_total", "Polling sessions upgraded to websocket.", srv->stats.upgrades);
	gw_metric_counter(m, "sio_packets_in_total", "Engine.IO packets received.", srv->stats.packets_in);
	gw_metric_counter(m, "sio_packets_out_total", "Engine.IO packets sent.", srv->stats.packets_out);
	gw_metric_counter(m, "sio_bytes_in_total", "Payload bytes received.", srv->stats.bytes_in);
	gw_metric_counter(m, "sio_bytes_out_total", "Payload bytes sent.", srv->stats.bytes_out);
	gw_metric_counter(m, "sio_websocket_writes_total",
			  "Coalesced websocket writes: all packets queued to a connection in one loop turn, one send().",
			  srv->stats.ws_writes);
	gw_metric_counter(m, "sio_websocket_short_writes_total",
			  "Coalesced websocket writes the socket took only part of (the rest waits for it to drain).",
			  srv->stats.ws_short_writes);
	for (int i = 0; i < 6; i++) {
		snprintf(l, sizeof l, "code=\"%d\"", i);
		m->sample(m, "sio_engine_errors_total", GW_METRIC_COUNTER, "Engine.IO error replies by code.", l,
			  (int64_t)srv->stats.errors[i]);
	}
	for (int i = 0; i < GW_CLOSE__COUNT; i++) {
		snprintf(l, sizeof l, "reason=\"%s\"", CLOSE_NAMES[i]);
		m->sample(m, "sio_closes_total", GW_METRIC_COUNTER, "Engine.IO sessions closed by reason.", l,
			  (int64_t)srv->stats.closes[i]);
	}
	gw_metric_counter(m, "sio_dropped_volatile_total", "Volatile packets dropped (busy connection).",
			  srv->stats.drops_volatile);
	gw_metric_counter(m, "sio_drain_refused_total", "New sessions refused (503) while draining.",
			  srv->stats.drain_refused);
}

const char *eio_server_path(const eio_server *srv) { return srv->path; }
const eio_stats *eio_server_stats(const eio_server *srv) { return &srv->stats; }
size_t eio_server_sessions(const eio_server *srv) { return srv->sessions.len; }
const char *eio_session_sid(const eio_session *s) { return s->sid; }
void *eio_session_user(const eio_session *s) { return s->user; }
void eio_session_set_user(eio_session *s, void *user) { s->user = user; }
const char *eio_session_handshake(const eio_session *s) { return s->handshake; }
bool eio_session_is_websocket(const eio_session *s) { return s->websocket; }
int eio_session_protocol(const eio_session *s) { return s->eio3 ? 3 : 4; }

static void queue_clear(eio_session *s)
{
	for (size_t i = 0; i < s->q_len; i++)
		gw_frame_unref(s->q[(s->q_head + i) & (s->q_cap - 1)]);
	s->q_len = s->q_head = 0;
}

static gw_frame *queue_pop(eio_session *s)
{
	if (!s->q_len)
		return NULL;
	gw_frame *f = s->q[s->q_head];
	s->q_head = (s->q_head + 1) & (s->q_cap - 1);
	s->q_len--;
	return f;
}

/* Room for n more frames within the configured bound; grows the ring lazily so an
 * idle connection costs a few pointers, not the whole bound. */
static int queue_reserve(eio_session *s, size_t n)
{
	size_t limit = s->srv->cfg->engine.send_queue;
	if (s->q_len + n > limit)
		return -GW_EFULL;
	if (s->q_len + n <= s->q_cap)
		return 0;
	size_t cap = s->q_cap ? s->q_cap : 8;
	while (cap < s->q_len + n)
		cap *= 2;
	gw_frame **q = malloc(cap * sizeof *q);
	if (!q)
		return -GW_ENOMEM;
	for (size_t i = 0; i < s->q_len; i++)
		q[i] = s->q[(s->q_head + i) & (s->q_cap - 1)];
	free(s->q);
	s->q = q;
	s->q_cap = cap;
	s->q_head = 0;
	return 0;
}

/* The caller takes the reference (one per frame per session; a broadcast takes them
 * all at once). */
static void queue_push(eio_session *s, gw_frame *f)
{
	s->q[(s->q_head + s->q_len) & (s->q_cap - 1)] = f;
	s->q_len++;
}

/*
 * Writes are coalesced per loop turn: a session that gets its first queued frame goes
 * on the dirty list, and eio_flush() (called once per turn, before the loop waits)
 * writes each websocket's whole queue with one send(), and answers each held poll with
 * everything the turn queued. One syscall for all a turn produced.
 * The list is an array, so the flush can prefetch the sessions ahead of their writes.
 */
static bool dirty_add(eio_session *s)
{
	if (s->dirty)
		return true;
	eio_server *srv = s->srv;
	if (srv->n_dirty == srv->dirty_cap) {
		size_t cap = srv->dirty_cap ? 2 * srv->dirty_cap : 256;
		eio_session **v = realloc(srv->dirty, cap * sizeof *v);
		if (!v)
			return false;
		srv->dirty = v;
		srv->dirty_cap = cap;
	}
	srv->dirty[srv->n_dirty++] = s;
	s->dirty = srv->n_dirty;
	return true;
}

static void poll_answer(eio_session *s, net_conn *c, gw_frame *extra);
static int ws_write_batch(net_conn *c, eio_session *s);

/* Ask the active transport to write (in this turn's flush). */
static void kick(eio_session *s)
{
	if ((s->websocket && s->ws) || (!s->websocket && s->poll)) {
		if (dirty_add(s))
			return;
		/* out of memory for the list: write now */
		if (s->websocket)
			ws_write_batch(s->ws, s);
		else
			poll_answer(s, s->poll, NULL);
	}
}

static void session_free(eio_session *s)
{
	if (s->dirty)
		s->srv->dirty[s->dirty - 1] = NULL;
	queue_clear(s);
	free(s->q);
	free(s->handshake);
	free(s);
}

static void session_release(eio_session *s)
{
	if (--s->busy == 0 && s->closed)
		session_free(s);
}

/* v3: the binary form when the client takes binary and one of the packets is binary
 * (parser-v3's encodePayload). */
static bool v3_binary_form(const eio_session *s, const gw_frame *extra)
{
	if (!s->eio3 || s->b64)
		return false;
	for (size_t i = 0; i < s->q_len; i++)
		if (s->q[(s->q_head + i) & (s->q_cap - 1)]->binary)
			return true;
	return extra && extra->binary;
}

static void payload_append(const eio_session *s, gw_buf *body, gw_frame *f, bool binary_form)
{
	if (s->eio3)
		eio3_payload_append(body, gw_frame_data(f), f->len, f->binary, binary_form);
	else
		eio_payload_append(body, gw_frame_data(f), f->len, f->binary);
}

/* Answer polling GET c with the queue (and an optional trailing frame); c is then no
 * longer the session's poll. */
static void poll_answer_with(eio_session *s, net_conn *c, gw_frame *extra, const char *extra_headers)
{
	gw_buf body = {0};
	gw_frame *f;
	bool binary_form = v3_binary_form(s, extra);
	while ((f = queue_pop(s))) {
		payload_append(s, &body, f, binary_form);
		s->srv->stats.packets_out++;
		s->srv->stats.bytes_out += f->len;
		gw_frame_unref(f);
	}
	if (extra)
		payload_append(s, &body, extra, binary_form);
	if (s->poll == c) {
		s->poll = NULL;
		net_conn_set_user(c, NULL);
	}
	net_reply(c, 200, binary_form ? "application/octet-stream" : "text/plain; charset=UTF-8", body.data,
		  body.len, extra_headers);
	gw_buf_free(&body);
}

static void poll_answer(eio_session *s, net_conn *c, gw_frame *extra)
{
	poll_answer_with(s, c, extra, NULL);
}

static void session_close_now(eio_session *s, gw_close_reason reason)
{
	if (s->closed)
		return;
	s->closed = true;
	gw_timer_stop(s->srv->timers, &s->hb);
	gw_timer_stop(s->srv->timers, &s->upg);
	s->srv->stats.closes[reason]++;
	if (s->websocket)
		s->srv->stats.websocket--;
	else
		s->srv->stats.polling--;
	gw_map_del(&s->srv->sessions, s->sid, GW_ID_LEN);
	s->busy++;
	if (s->srv->h.on_close)
		s->srv->h.on_close(s->srv->h.ctx, s, reason);
	if (s->poll) {
		/* the client closed: release its poll with a noop, as engine.io does; a
		 * server-side close tells the client with a close packet */
		poll_answer(s, s->poll, reason == GW_CLOSE_TRANSPORT_CLOSE ? s->srv->noop : s->srv->close);
	}
	if (s->ws) {
		net_conn *c = s->ws;
		s->ws = NULL;
		net_conn_set_user(c, NULL);
		net_ws_close(c, reason == GW_CLOSE_SHUTDOWN ? WS_CLOSE_GOING_AWAY : WS_CLOSE_NORMAL, NULL);
	}
	gw_debug("eio %s closed: %s", s->sid, gw_close_reason_str(reason));
	session_release(s);
}

static void deferred_close(gw_timer *t)
{
	eio_session *s = t->ctx;
	session_close_now(s, s->close_reason);
}

void eio_session_close(eio_session *s, gw_close_reason reason)
{
	if (s->closed || s->closing)
		return;
	/* Let queued packets (e.g. a DISCONNECT) reach the client first: over websocket
	 * once the queue drains, over polling with the next GET — within ping_timeout. */
	if (reason == GW_CLOSE_SERVER_DISCONNECT && s->q_len && (!s->websocket || s->ws)) {
		s->closing = true;
		s->close_reason = reason;
		gw_timer_start(s->srv->timers, &s->hb, (uint32_t)s->srv->cfg->engine.ping_timeout_ms, deferred_close);
		kick(s);
		return;
	}
	session_close_now(s, reason);
}

/* eio_session_send without the references: 0 when the frames are queued. */
static int enqueue(eio_session *s, gw_frame *const *frames, size_t n, bool volatile_)
{
	if (s->closed || s->closing)
		return -GW_ECLOSED;
	if (volatile_ && (s->q_len || s->upgrading)) {
		s->srv->stats.drops_volatile++;
		return -GW_EFULL;
	}
	if (queue_reserve(s, n)) {
		/* Close on the next loop turn: the caller may be iterating a room. */
		gw_warn("eio %s: send queue full (%zu packets), closing slow consumer", s->sid,
			s->q_len);
		s->closing = true;
		s->close_reason = GW_CLOSE_QUEUE_OVERFLOW;
		gw_timer_start(s->srv->timers, &s->hb, 0, deferred_close);
		return -GW_EFULL;
	}
	/* a non-empty queue already has its write pending: kick only on the first
	 * frame, not once per frame of a broadcast burst */
	bool was_empty = s->q_len == 0;
	for (size_t i = 0; i < n; i++)
		queue_push(s, frames[i]);
	if (was_empty)
		kick(s);
	return 0;
}

int eio_session_send(eio_session *s, gw_frame *const *frames, size_t n, bool volatile_)
{
	int rc = enqueue(s, frames, n, volatile_);
	if (rc == 0)
		for (size_t i = 0; i < n; i++)
			gw_frame_ref(frames[i]);
	return rc;
}

/* A broadcast's cost is memory latency: each target's session and queue slot are in
 * their own cache lines. Ask for them a few targets ahead, so the loads overlap
 * instead of following each other. */
#define PREFETCH_AHEAD 8

static void prefetch_session(const eio_session *s)
{
	__builtin_prefetch(s, 1);
	__builtin_prefetch((const char *)s + 63, 1); /* the hot fields may straddle two lines */
}

static void prefetch_slot(const eio_session *s)
{
	if (s->q_cap)
		__builtin_prefetch(&s->q[(s->q_head + s->q_len) & (s->q_cap - 1)], 1);
}

size_t eio_send_many(eio_session *const *ss, size_t n, gw_frame *const *frames, size_t n_frames,
		     bool volatile_)
{
	size_t ok = 0;
	for (size_t i = 0; i < n && i < PREFETCH_AHEAD; i++)
		prefetch_session(ss[i]);
	for (size_t i = 0; i < n; i++) {
		if (i + PREFETCH_AHEAD < n)
			prefetch_session(ss[i + PREFETCH_AHEAD]);
		if (i + PREFETCH_AHEAD / 2 < n)
			prefetch_slot(ss[i + PREFETCH_AHEAD / 2]);
		ok += enqueue(ss[i], frames, n_frames, volatile_) == 0;
	}
	if (ok)
		for (size_t i = 0; i < n_frames; i++)
			gw_frame_ref_n(frames[i], ok);
	return ok;
}

/* ---- heartbeat ---- */

static void hb_fire(gw_timer *t);

/* v3: no ping from the client within ping_interval + ping_timeout */
static void hb3_timeout(gw_timer *t)
{
	session_close_now(t->ctx, GW_CLOSE_PING_TIMEOUT);
}

static void hb3_reset(eio_session *s)
{
	const gw_config *cfg = s->srv->cfg;
	gw_timer_start(s->srv->timers, &s->hb, (uint32_t)(cfg->engine.ping_interval_ms + cfg->engine.ping_timeout_ms),
		       hb3_timeout);
}

static void hb_schedule_ping(eio_session *s)
{
	s->awaiting_pong = false;
	gw_timer_start(s->srv->timers, &s->hb, (uint32_t)s->srv->cfg->engine.ping_interval_ms, hb_fire);
}

static void hb_fire(gw_timer *t)
{
	eio_session *s = t->ctx;
	if (s->awaiting_pong) {
		session_close_now(s, GW_CLOSE_PING_TIMEOUT);
		return;
	}
	s->awaiting_pong = true;
	gw_frame *ping = s->srv->ping;
	eio_session_send(s, &ping, 1, false);
	if (!s->closed && !s->closing)
		gw_timer_start(s->srv->timers, &s->hb, (uint32_t)s->srv->cfg->engine.ping_timeout_ms, hb_fire);
}

/* The upgrade failed: the websocket probe goes, the polling transport carries on.
 * The caller closes the probe's wsi (or it is already closing). */
static void probe_drop(eio_session *s)
{
	net_conn *c = s->ws;
	s->ws = NULL;
	s->upgrading = false;
	s->probed = false;
	gw_timer_stop(s->srv->timers, &s->upg);
	if (c)
		net_conn_set_user(c, NULL);
}

static void upg_timeout(gw_timer *t)
{
	eio_session *s = t->ctx;
	if (s->upgrading && s->ws) {
		net_conn *c = s->ws;
		probe_drop(s);
		net_ws_close(c, WS_CLOSE_NORMAL, NULL);
	}
}

/* ---- packets from the client (both transports) ---- */

/* Returns 0, or -1 when the session was closed because of this packet. */
static int on_packet(eio_session *s, const eio_packet *p)
{
	s->srv->stats.packets_in++;
	s->srv->stats.bytes_in += p->len + 1;
	switch (p->type) {
	case EIO_MESSAGE:
		if (s->srv->h.on_message)
			s->srv->h.on_message(s->srv->h.ctx, s, p->data, p->len, p->binary);
		/* closed, or closing (its queue overflowed): the rest of a payload is not read */
		return s->closed || s->closing ? -1 : 0;
	case EIO_PONG:
		if (s->eio3) { /* "invalid heartbeat direction" */
			session_close_now(s, GW_CLOSE_TRANSPORT_ERROR);
			return -1;
		}
		/* a closing session's timer carries its close: a pong must not re-arm it */
		if (s->awaiting_pong && !s->closing)
			hb_schedule_ping(s);
		return 0;
	case EIO_CLOSE:
		session_close_now(s, GW_CLOSE_TRANSPORT_CLOSE);
		return -1;
	case EIO_PING:
		if (s->eio3) { /* v3: the client pings, the server answers */
			if (!s->closing)
				hb3_reset(s);
			gw_frame *pong = s->srv->pong;
			eio_session_send(s, &pong, 1, false);
			return s->closed || s->closing ? -1 : 0;
		}
		/* v4: only the server pings ("invalid heartbeat direction" in engine.io) */
		session_close_now(s, GW_CLOSE_TRANSPORT_ERROR);
		return -1;
	case EIO_NOOP:
		return 0;
	default:        /* open/upgrade make no sense here */
		session_close_now(s, GW_CLOSE_PARSE_ERROR);
		return -1;
	}
}

/* ---- handshake ---- */

/*
 * The handshake as Socket.IO exposes it, as compact JSON text, written directly (a cJSON
 * tree and its printing cost an allocation per member, per connection):
 * {"headers":{...},"query":{...},"address","time","issued","url","xdomain","secure"}.
 * Every request header, by its lower-case name; a repeated one joined as Node joins it
 * (", ", cookies with "; "). The query's last value of a name wins. NULL when out of
 * memory.
 */
/* Query arguments collected as "name\0value\0" pairs, decoded. */
static void collect_arg(void *ctx, const char *k, size_t kl, const char *v, size_t vl)
{
	gw_buf *args = ctx;
	if (gw_buf_append(args, k, kl) || gw_buf_putc(args, 0) || gw_buf_append(args, v, vl) || gw_buf_putc(args, 0))
		args->len = 0; /* out of memory: no query rather than a wrong one */
}

static int put_query(eio_server *srv, gw_buf *o, const h1_req *r)
{
	gw_buf *args = &srv->args;
	gw_buf_reset(args);
	h1_query_foreach(r, collect_arg, args);
	const char *end = (const char *)args->data + args->len;
	int err = 0;
	bool first = true;
	for (const char *k = (const char *)args->data; args->len && k < end;) {
		const char *v = k + strlen(k) + 1, *next = v + strlen(v) + 1;
		bool later = false; /* the last of a name wins */
		for (const char *k2 = next; !later && k2 < end; k2 += strlen(k2) + 1, k2 += strlen(k2) + 1)
			later = strcmp(k, k2) == 0;
		if (!later) {
			err |= gw_buf_puts(o, first ? "" : ",") | gw_buf_put_json_string(o, k, strlen(k)) |
			       gw_buf_putc(o, ':') | gw_buf_put_json_string(o, v, strlen(v));
			first = false;
		}
		k = next;
	}
	return err;
}

static int put_headers(gw_buf *o, const h1_req *r, bool *origin)
{
	int err = 0;
	bool first = true;
	for (size_t i = 0; i < r->n_headers; i++) {
		const h1_header *h = &r->headers[i];
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++)
			seen = strcmp(r->headers[j].name, h->name) == 0;
		if (seen)
			continue;
		*origin |= strcmp(h->name, "origin") == 0;
		err |= gw_buf_puts(o, first ? "" : ",") | gw_buf_put_json_string(o, h->name, h->name_len);
		first = false;
		/* the value, and those of later headers of the same name */
		gw_buf v = {0};
		err |= gw_buf_append(&v, h->value, h->value_len);
		const char *sep = strcmp(h->name, "cookie") == 0 ? "; " : ", ";
		for (size_t j = i + 1; j < r->n_headers; j++)
			if (strcmp(r->headers[j].name, h->name) == 0)
				err |= gw_buf_puts(&v, sep) | gw_buf_append(&v, r->headers[j].value, r->headers[j].value_len);
		err |= gw_buf_putc(o, ':') | gw_buf_put_json_string(o, v.data ? (const char *)v.data : "", v.len);
		gw_buf_free(&v);
	}
	return err;
}

static char *build_handshake(eio_server *srv, const h1_req *r, net_conn *c)
{
	gw_buf *o = &srv->scratch;
	int err = 0;
	bool origin = false;
	gw_buf_reset(o);
	err |= gw_buf_puts(o, "{\"headers\":{");
	err |= put_headers(o, r, &origin);
	err |= gw_buf_puts(o, "},\"query\":{");
	err |= put_query(srv, o, r);
	const char *addr = net_conn_peer(c);
	err |= gw_buf_puts(o, "},\"address\":") | gw_buf_put_json_string(o, addr, strlen(addr));
	/* "time" changes once a second: formatted once a second */
	time_t now = time(NULL);
	if (now != srv->time_at) {
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(srv->time_text, sizeof srv->time_text, "%a %b %d %Y %H:%M:%S GMT+0000 (Coordinated Universal Time)", &tm);
		srv->time_at = now;
	}
	err |= gw_buf_puts(o, ",\"time\":") | gw_buf_put_json_string(o, srv->time_text, strlen(srv->time_text));
	/* "issued": ms since the epoch, an integer */
	err |= gw_buf_printf(o, ",\"issued\":%lld,\"url\":", (long long)gw_wall_ms());
	err |= gw_buf_put_json_string(o, r->target, strlen(r->target));
	err |= gw_buf_printf(o, ",\"xdomain\":%s,\"secure\":%s}", origin ? "true" : "false",
			     net_conn_secure(c) ? "true" : "false");
	/* kept as text, exactly sized: a parsed tree costs several times more per idle
	 * connection */
	return err || !o->data ? NULL : strdup((const char *)o->data);
}

static eio_session *session_new(eio_server *srv, const h1_req *r, net_conn *c, bool websocket, bool eio3)
{
	eio_session *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->srv = srv;
	s->websocket = websocket;
	s->eio3 = eio3;
	if (eio3) { /* engine.io: supportsBinary = !req._query.b64 (any non-empty value) */
		char b64[8];
		s->b64 = h1_query_arg(r, "b64", b64, sizeof b64) != 0 && b64[0];
	}
	s->hb.ctx = s;
	s->upg.ctx = s;
	do
		gw_sid_new(s->sid, srv->cfg->node_tag); /* names this node: util/sid.h */
	while (gw_map_get(&srv->sessions, s->sid, GW_ID_LEN));
	s->handshake = build_handshake(srv, r, c);
	if (!s->handshake || gw_map_put(&srv->sessions, s->sid, GW_ID_LEN, s)) {
		session_free(s);
		return NULL;
	}
	srv->stats.opened++;
	if (websocket)
		srv->stats.websocket++;
	else
		srv->stats.polling++;

	const gw_config *cfg = srv->cfg;
	gw_buf open = {0};
	eio_encode_open(&open, s->sid, !websocket && cfg->engine.websocket,
			cfg->engine.ping_interval_ms, cfg->engine.ping_timeout_ms,
			cfg->engine.max_payload);
	gw_frame *f = gw_frame_from(open.data, open.len, false);
	gw_buf_free(&open);
	if (!f || queue_reserve(s, 1)) {
		gw_frame_unref(f);
		gw_map_del(&srv->sessions, s->sid, GW_ID_LEN);
		session_free(s);
		return NULL;
	}
	queue_push(s, f); /* the queue keeps our reference */
	if (eio3)
		hb3_reset(s);
	else
		hb_schedule_ping(s);
	return s;
}

static void notify_open(eio_session *s)
{
	s->busy++;
	if (s->srv->h.on_open)
		s->srv->h.on_open(s->srv->h.ctx, s);
	session_release(s);
}

/* ---- HTTP (polling) ---- */

static void eio_error(eio_server *srv, net_conn *c, int code)
{
	char body[96];
	int n = eio_error_body(code, body, sizeof body);
	if (code >= 0 && code < 6)
		srv->stats.errors[code]++;
	net_reply(c, eio_error_status(code), "application/json", body, n > 0 ? (size_t)n : 0, NULL);
}

/* Common query checks. Returns 0 ok, or replies with an error and returns 1. *eio3:
 * the request speaks Engine.IO v3 (EIO=3, with engine.allow_eio3). */
static int check_query(eio_server *srv, net_conn *c, const h1_req *r, char *transport, size_t tlen, char *sid,
		       size_t slen, bool *eio3)
{
	char eio[8];
	int have = h1_query_arg(r, "EIO", eio, sizeof eio);
	*eio3 = have == 1 && strcmp(eio, "3") == 0 && srv->cfg->engine.allow_eio3;
	if (have != 1 || (strcmp(eio, "4") != 0 && !*eio3)) {
		eio_error(srv, c, EIO_ERR_UNSUPPORTED_PROTOCOL_VERSION);
		return 1;
	}
	if (h1_query_arg(r, "transport", transport, tlen) != 1 ||
	    (strcmp(transport, "polling") != 0 && strcmp(transport, "websocket") != 0) ||
	    (strcmp(transport, "polling") == 0 && !srv->cfg->engine.polling) ||
	    (strcmp(transport, "websocket") == 0 && !srv->cfg->engine.websocket)) {
		eio_error(srv, c, EIO_ERR_TRANSPORT_UNKNOWN);
		return 1;
	}
	if (h1_query_arg(r, "sid", sid, slen) != 1)
		sid[0] = 0;
	char j[8];
	if (*eio3 && h1_query_arg(r, "j", j, sizeof j) != 0) {
		/* JSONP polling (for browsers without XHR, engine.io's polling-jsonp) is not
		 * served */
		eio_error(srv, c, EIO_ERR_BAD_REQUEST);
		return 1;
	}
	return 0;
}

/* Draining: a handshake is answered 503, so the client tries again (elsewhere, behind
 * a load balancer that took the node out on its /healthz). */
static bool refuse_draining(eio_server *srv, net_conn *c)
{
	static const char body[] = "{\"code\":3,\"message\":\"Server draining\"}";
	if (!atomic_load(&srv->draining))
		return false;
	srv->stats.drain_refused++;
	net_reply(c, 503, "application/json", body, sizeof body - 1, "Retry-After: 1\r\n");
	return true;
}

static void on_handshake(eio_server *srv, net_conn *c, const h1_req *r, bool eio3)
{
	if (refuse_draining(srv, c))
		return;
	eio_session *s = session_new(srv, r, c, false, eio3);
	if (!s) {
		eio_error(srv, c, EIO_ERR_BAD_REQUEST);
		return;
	}
	char cookie[160] = "";
	if (srv->cfg->engine.cookie)
		snprintf(cookie, sizeof cookie, "Set-Cookie: %s=%s; Path=/; HttpOnly; SameSite=Lax\r\n",
			 srv->cfg->engine.cookie_name ? srv->cfg->engine.cookie_name : "io", s->sid);
	s->busy++;
	poll_answer_with(s, c, NULL, cookie[0] ? cookie : NULL);
	notify_open(s);
	session_release(s);
}

static void on_poll(eio_session *s, net_conn *c)
{
	if (s->poll) {
		/* two concurrent GETs: the reference server treats it as an error */
		eio_error(s->srv, c, EIO_ERR_BAD_REQUEST);
		session_close_now(s, GW_CLOSE_TRANSPORT_ERROR);
		return;
	}
	s->poll = c;
	net_conn_set_user(c, s);
	if (s->closing && !s->q_len) {
		/* the queued packets went out in an earlier poll: now the close packet. Not in
		 * the same payload: socket.io-client applies a payload's packets on the next
		 * tick but a close at once, so a DISCONNECT sharing the payload would arrive
		 * after "transport close". */
		poll_answer(s, c, s->srv->close);
		session_close_now(s, s->close_reason);
	} else if (s->q_len || s->probed) {
		poll_answer(s, c, s->probed ? s->srv->noop : NULL);
	}
	/* else held until there is something to say */
}

static void on_post(eio_session *s, net_conn *c, const h1_req *r)
{
	eio_server *srv = s->srv; /* s may be gone after a close */
	if (!r->body_len) {
		eio_error(s->srv, c, EIO_ERR_BAD_REQUEST);
		return;
	}
	/* v3: the binary form comes as application/octet-stream (engine.io decides by the
	 * content type alone) */
	const char *ctype = s->eio3 ? h1_header_get(r, "content-type") : NULL;
	bool binary_form = ctype && strcmp(ctype, "application/octet-stream") == 0;
	/* a polling payload is text (binary packets travel as base64): RFC 6455's rule
	 * for text frames holds here too */
	if (!binary_form && !gw_utf8_valid(r->body, r->body_len)) {
		gw_debug("eio %s: polling payload is not UTF-8", s->sid);
		session_close_now(s, GW_CLOSE_PARSE_ERROR);
		eio_error(srv, c, EIO_ERR_BAD_REQUEST);
		return;
	}
	s->busy++;
	eio_payload_iter it;
	eio3_payload_iter it3;
	eio_packet p;
	int rc;
	uint8_t *body = (uint8_t *)(uintptr_t)r->body;
	if (s->eio3)
		eio3_payload_iter_init(&it3, body, r->body_len, binary_form);
	else
		eio_payload_iter_init(&it, body, r->body_len);
	while ((rc = s->eio3 ? eio3_payload_next(&it3, &p) : eio_payload_next(&it, &p)) == 1)
		if (on_packet(s, &p))
			break;
	if (rc < 0) {
		gw_debug("eio %s: malformed polling payload", s->sid);
		session_close_now(s, GW_CLOSE_PARSE_ERROR);
		eio_error(srv, c, EIO_ERR_BAD_REQUEST);
	} else {
		net_reply(c, 200, "text/html", "ok", 2, NULL);
	}
	session_release(s);
}

static void ws_upgrade(eio_server *srv, net_conn *c, const h1_req *r, const char *sid, bool eio3);

void eio_server_set_relay(eio_server *srv, eio_relay_fn fn, void *ctx)
{
	srv->relay = fn;
	srv->relay_ctx = ctx;
}

/* An unknown sid that names another node: its request goes there. */
static bool relayed(eio_server *srv, net_conn *c, const h1_req *r, const char *sid)
{
	char tag[GW_TAG_LEN + 1];
	return srv->relay && gw_sid_tag(sid, strlen(sid), tag) && strcmp(tag, srv->cfg->node_tag) != 0 &&
	       srv->relay(srv->relay_ctx, c, r, tag);
}

static void on_request(void *ctx, net_conn *c, const h1_req *r)
{
	eio_server *srv = ctx;
	char transport[32], sid[64];
	bool eio3;
	if (check_query(srv, c, r, transport, sizeof transport, sid, sizeof sid, &eio3))
		return;
	if (r->upgrade) {
		if (strcmp(transport, "websocket") != 0) {
			eio_error(srv, c, EIO_ERR_BAD_REQUEST);
			return;
		}
		ws_upgrade(srv, c, r, sid, eio3);
		return;
	}
	if (strcmp(transport, "polling") != 0) {
		/* a plain HTTP request claiming the websocket transport */
		eio_error(srv, c, EIO_ERR_BAD_REQUEST);
		return;
	}
	bool is_get = r->method == H1_GET, is_post = r->method == H1_POST;
	if (!sid[0]) {
		if (!is_get)
			eio_error(srv, c, EIO_ERR_BAD_HANDSHAKE_METHOD);
		else
			on_handshake(srv, c, r, eio3);
		return;
	}
	eio_session *s = gw_map_get(&srv->sessions, sid, strlen(sid));
	if (!s) {
		if (!relayed(srv, c, r, sid))
			eio_error(srv, c, EIO_ERR_UNKNOWN_SID);
		return;
	}
	if (s->eio3 != eio3) {
		/* engine.io: "unexpected protocol version" */
		eio_error(srv, c, EIO_ERR_BAD_REQUEST);
		return;
	}
	if (s->websocket) {
		/* polling is refused once the session has upgraded */
		eio_error(srv, c, EIO_ERR_BAD_REQUEST);
		return;
	}
	if (is_get)
		on_poll(s, c);
	else if (is_post)
		on_post(s, c, r);
	else
		eio_error(srv, c, EIO_ERR_BAD_REQUEST);
}

static void on_refused(void *ctx, net_conn *c, const h1_req *r, int status)
{
	/* a POST over max_payload closes its session (net answers 413) */
	eio_server *srv = ctx;
	char sid[64];
	(void)c;
	if (status == 413 && h1_query_arg(r, "sid", sid, sizeof sid) == 1) {
		eio_session *s = gw_map_get(&srv->sessions, sid, strlen(sid));
		if (s)
			session_close_now(s, GW_CLOSE_PAYLOAD_TOO_LARGE);
	}
}

/* ---- websocket ---- */

static void ws_upgrade(eio_server *srv, net_conn *c, const h1_req *r, const char *sid, bool eio3)
{
	eio_session *s = NULL;
	if (sid[0]) {
		s = gw_map_get(&srv->sessions, sid, strlen(sid));
		if (!s) {
			if (!relayed(srv, c, r, sid))
				eio_error(srv, c, EIO_ERR_UNKNOWN_SID);
			return;
		}
		if (s->eio3 != eio3) { /* engine.io's PROTOCOL_MISMATCH */
			eio_error(srv, c, EIO_ERR_BAD_REQUEST);
			return;
		}
	}
	if (!s && refuse_draining(srv, c))
		return;
	if (net_ws_accept(c, r))
		return; /* net answered the bad handshake */
	if (s && (s->websocket || s->ws || s->closing)) {
		/* engine.io accepts such an upgrade, then closes it: the session carries on */
		net_ws_close(c, 0, NULL);
		return;
	}
	if (s) {
		s->ws = c;
		s->upgrading = true;
		net_conn_set_user(c, s);
		gw_timer_start(s->srv->timers, &s->upg, (uint32_t)srv->cfg->engine.upgrade_timeout_ms, upg_timeout);
		return;
	}
	s = session_new(srv, r, c, true, eio3);
	if (!s) {
		net_ws_close(c, WS_CLOSE_INTERNAL, "out of memory");
		return;
	}
	s->ws = c;
	net_conn_set_user(c, s);
	kick(s);
	notify_open(s);
}

/* Send one control-ish frame (3probe) at once. */
static void ws_send_frame(eio_server *srv, net_conn *c, gw_frame *f)
{
	gw_buf *b = &srv->scratch;
	gw_buf_reset(b);
	if (net_ws_frame(c, b, gw_frame_data(f), f->len, f->binary) || net_ws_send(c, b->data, b->len) < 0)
		net_close(c);
}

static void on_ws_message(void *ctx, net_conn *c, const uint8_t *data, size_t len, bool binary)
{
	(void)ctx;
	eio_session *s = net_conn_user(c);
	eio_packet p;
	if (!s)
		return;
	uint8_t *buf = (uint8_t *)(uintptr_t)data;
	if (s->eio3 ? eio3_decode_frame(buf, len, binary, &p) : eio_decode_frame(buf, len, binary, &p)) {
		gw_debug("eio %s: malformed websocket frame", s->sid);
		if (s->upgrading && !s->websocket) {
			probe_drop(s); /* a bad probe fails the upgrade, not the session */
			net_ws_close(c, WS_CLOSE_PROTOCOL_ERROR, "malformed packet");
			return;
		}
		session_close_now(s, GW_CLOSE_PARSE_ERROR);
		return;
	}
	if (s->upgrading && !s->websocket) {
		/* the probe: only ping "probe" and upgrade are valid here */
		if (p.type == EIO_PING && p.len == 5 && memcmp(p.data, "probe", 5) == 0) {
			s->probed = true;
			ws_send_frame(s->srv, c, s->srv->probe);
			if (s->poll)
				poll_answer(s, s->poll, s->srv->noop); /* released with a noop */
			return;
		}
		if (p.type == EIO_UPGRADE) {
			s->upgrading = false;
			s->probed = false;
			s->websocket = true;
			gw_timer_stop(s->srv->timers, &s->upg);
			s->srv->stats.polling--;
			s->srv->stats.websocket++;
			s->srv->stats.upgrades++;
			if (s->poll) { /* a noop alone: the queue is the websocket's now */
				net_conn *pc = s->poll;
				s->poll = NULL;
				net_conn_set_user(pc, NULL);
				gw_buf b = {0};
				payload_append(s, &b, s->srv->noop, false);
				net_reply(pc, 200, "text/plain; charset=UTF-8", b.data, b.len, NULL);
				gw_buf_free(&b);
			}
			if (s->srv->h.on_upgrade)
				s->srv->h.on_upgrade(s->srv->h.ctx, s);
			kick(s);
			return;
		}
		gw_debug("eio %s: unexpected packet on upgrade probe", s->sid);
		probe_drop(s);
		net_ws_close(c, WS_CLOSE_PROTOCOL_ERROR, "unexpected packet on probe");
		return;
	}
	s->busy++;
	on_packet(s, &p);
	session_release(s);
}

/*
 * Several queued frames go out in one write: framed into one buffer (compressed per
 * message when permessage-deflate was negotiated), so a burst costs one send() instead
 * of one per packet. What the socket does not take stays with net, which reports
 * writeable once it is out; until then frames wait in the bounded queue.
 */
#define WS_BATCH_MAX (64 * 1024)

/* v3: a binary message goes as the type byte 4 then the bytes, or "b4<base64>" as text
 * to a client that asked for base64. */
static int ws_frame_v3_binary(eio_session *s, net_conn *c, gw_buf *out, gw_frame *f)
{
	gw_buf *v = &s->srv->v3;
	gw_buf_reset(v);
	if (s->b64) {
		if (gw_buf_reserve(v, 2 + gw_b64_enc_len(f->len)) || gw_buf_puts(v, "b4"))
			return -1;
		v->len += gw_b64_encode(gw_frame_data(f), f->len, (char *)v->data + v->len);
		return net_ws_frame(c, out, v->data, v->len, false);
	}
	if (gw_buf_putc(v, 4) || gw_buf_append(v, gw_frame_data(f), f->len))
		return -1;
	return net_ws_frame(c, out, v->data, v->len, true);
}

static int ws_write_batch(net_conn *c, eio_session *s)
{
	gw_buf *scratch = &s->srv->scratch; /* reused, never shrinks */
	gw_buf_reset(scratch);
	while (s->q_len && scratch->len < WS_BATCH_MAX) {
		gw_frame *f = queue_pop(s);
		int rc = f->binary && s->eio3 ? ws_frame_v3_binary(s, c, scratch, f)
					       : net_ws_frame(c, scratch, gw_frame_data(f), f->len, f->binary);
		s->srv->stats.packets_out++;
		s->srv->stats.bytes_out += f->len;
		gw_frame_unref(f);
		if (rc)
			return -1;
	}
	if (!scratch->len)
		return 0;
	s->srv->stats.ws_writes++;
	int rc = net_ws_send(c, scratch->data, scratch->len);
	if (rc > 0)
		s->srv->stats.ws_short_writes++;
	return rc < 0 ? -1 : rc;
}

/* Write what can go now; the rest waits for on_writeable. */
static void ws_write(eio_session *s)
{
	net_conn *c = s->ws;
	while (c && s->q_len && !net_conn_blocked(c)) {
		if (ws_write_batch(c, s) < 0) {
			session_close_now(s, GW_CLOSE_TRANSPORT_ERROR);
			return;
		}
	}
	if (!s->q_len && s->closing && !s->closed)
		session_close_now(s, s->close_reason);
}

static void eio_flush(void *ctx)
{
	eio_server *srv = ctx;
	/* the list and its length are read afresh each time: a write's close may reach a
	 * handler that queues to another session (the list grows, may move), and a freed
	 * session leaves a NULL */
	for (size_t i = 0; i < srv->n_dirty; i++) {
		eio_session *ahead = i + PREFETCH_AHEAD < srv->n_dirty ? srv->dirty[i + PREFETCH_AHEAD] : NULL;
		if (ahead)
			prefetch_session(ahead);
		ahead = i + PREFETCH_AHEAD / 2 < srv->n_dirty ? srv->dirty[i + PREFETCH_AHEAD / 2] : NULL;
		if (ahead && ahead->ws) {
			__builtin_prefetch(ahead->ws);
			if (ahead->q_len)
				__builtin_prefetch(&ahead->q[ahead->q_head]);
		}
		eio_session *s = srv->dirty[i];
		if (!s)
			continue;
		s->dirty = 0;
		if (s->closed || !s->q_len)
			continue;
		if (!s->websocket) {
			if (s->poll)
				poll_answer(s, s->poll, NULL);
			continue;
		}
		/* a socket that did not take all of an earlier write is written once net
		 * reports it writeable: frames wait in the bounded queue (engine.send_queue),
		 * not in an unbounded socket buffer */
		if (s->ws && !net_conn_blocked(s->ws))
			ws_write(s);
	}
	srv->n_dirty = 0;
}

static void on_writeable(void *ctx, net_conn *c)
{
	(void)ctx;
	eio_session *s = net_conn_user(c);
	if (s && s->websocket && s->ws == c)
		ws_write(s);
}

static void on_close(void *ctx, net_conn *c)
{
	(void)ctx;
	eio_session *s = net_conn_user(c);
	if (!s)
		return;
	net_conn_set_user(c, NULL);
	if (s->ws == c) {
		if (s->websocket) {
			uint16_t code = net_ws_close_code(c);
			s->ws = NULL;
			session_close_now(s, code == WS_CLOSE_TOO_BIG ? GW_CLOSE_PAYLOAD_TOO_LARGE
					     : code == WS_CLOSE_PROTOCOL_ERROR || code == WS_CLOSE_INVALID_DATA
						     ? GW_CLOSE_PARSE_ERROR
						     : GW_CLOSE_TRANSPORT_CLOSE);
		} else {
			probe_drop(s); /* a failed upgrade probe: polling carries on */
		}
	} else if (s->poll == c) {
		s->poll = NULL;
		/* a held poll whose connection went away: the client is gone (engine.io
		 * closes with "transport error" too) */
		if (!s->websocket && !s->upgrading)
			session_close_now(s, GW_CLOSE_TRANSPORT_ERROR);
	}
}

int eio_server_listen(eio_server *srv)
{
	static const net_route_ops ops = {
		.on_request = on_request,
		.on_refused = on_refused,
		.on_ws_message = on_ws_message,
		.on_writeable = on_writeable,
		.on_close = on_close,
	};
	if (net_route(srv->net, srv->path, &ops, srv, srv->cfg->engine.max_payload))
		return -GW_ENOMEM;
	return net_on_turn(srv->net, eio_flush, srv);
}

static void echo_message(void *ctx, eio_session *s, const uint8_t *data, size_t len, bool binary)
{
	(void)ctx;
	gw_frame *f = binary ? gw_frame_from(data, len, true) : gw_frame_text('4', data, len);
	if (f)
		eio_session_send(s, &f, 1, false);
	gw_frame_unref(f);
}

eio_handler eio_echo_handler(void)
{
	eio_handler h = {.on_message = echo_message};
	return h;
}

void eio_server_drain(eio_server *srv) { atomic_store(&srv->draining, true); }
bool eio_server_draining(const eio_server *srv) { return atomic_load(&srv->draining); }

size_t eio_server_close_some(eio_server *srv, size_t n, gw_close_reason reason)
{
	/* closing removes from the map: pick them first */
	eio_session *pick[64];
	while (n && srv->sessions.len) {
		size_t k = 0;
		for (size_t i = 0; i < srv->sessions.cap && k < n && k < 64; i++)
			if (srv->sessions.slots[i].key)
				pick[k++] = srv->sessions.slots[i].value;
		for (size_t i = 0; i < k; i++)
			session_close_now(pick[i], reason);
		n -= k;
	}
	return srv->sessions.len;
}

void eio_server_destroy(eio_server *srv)
{
	if (!srv)
		return;
	/* closing removes from the map: take a snapshot first */
	size_t n;
	void **all = gw_map_values(&srv->sessions, &n);
	for (size_t i = 0; i < n; i++)
		session_close_now(all[i], GW_CLOSE_SHUTDOWN);
	free(all);
	/* their last words (close packets, answers to held polls) are handed to net now:
	 * the turn hook goes with the server */
	eio_flush(srv);
	if (srv->net)
		net_off_turn(srv->net, eio_flush, srv);
	gw_map_free(&srv->sessions);
	gw_frame_unref(srv->ping);
	gw_frame_unref(srv->pong);
	gw_frame_unref(srv->noop);
	gw_frame_unref(srv->probe);
	gw_frame_unref(srv->close);
	free(srv->dirty);
	gw_buf_free(&srv->scratch);
	gw_buf_free(&srv->args);
	gw_buf_free(&srv->v3);
	free(srv->path);
	free(srv);
}
