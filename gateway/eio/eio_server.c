/*
 * eio_server.c — Engine.IO v4 sessions and transports on libwebsockets.
 *
 * A session owns a bounded queue of refcounted frames. The websocket transport writes
 * what a loop turn queued with one send() before the loop waits (eio_flush; lws's
 * writeable callback for what the socket did not take); the polling transport answers a
 * held GET with the whole queue joined into one payload. Upgrade: a websocket carrying the sid attaches
 * as a probe, answers "2probe" with "3probe", releases the pending poll with a noop,
 * and becomes the transport on "5". Heartbeat: the server pings every ping_interval
 * and closes the session if no pong comes within ping_timeout.
 */
#include "eio/eio.h"
#include "eio/eio_codec.h"
#include "eio/eio_net.h"
#include "util/err.h"
#include "util/log.h"
#include "util/map.h"
#include "util/rand.h"
#include "util/timer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct eio_session {
	/* first: what queueing a frame and flushing touch (one or two cache lines) */
	gw_frame **q;          /* ring of queued frames; q_cap is a power of two */
	size_t q_head, q_len, q_cap;
	eio_server *srv;
	gw_conn *ws;           /* websocket (transport or probe) */
	size_t dirty;          /* 1 + index in g_dirty: frames queued this loop turn; 0 = none */
	bool websocket;        /* the transport is the websocket */
	bool upgrading;        /* a websocket probe is attached */
	bool closed;
	bool closing;          /* websocket: close once the queue has drained */
	bool probed;           /* the probe said "2probe": polls are answered with a noop */
	bool awaiting_pong;
	bool post_active;
	gw_close_reason close_reason;
	int busy;              /* > 0 while a callback runs on the session: defer free */
	gw_conn *poll;         /* held or in-flight polling GET */
	gw_conn *post;         /* polling POST whose body is arriving */
	gw_timer hb;           /* ping interval / pong timeout */
	gw_timer upg;          /* upgrade timeout */
	char *handshake;       /* JSON text: compact while idle, parsed when needed */
	void *user;
	char sid[GW_ID_LEN + 1];
};

struct eio_server {
	const gw_config *cfg;
	char *path;
	eio_handler h;
	gw_map sessions;
	gw_frame *ping, *noop, *probe, *close;
};

/* ---- small helpers ---- */

static gw_frame *static_frame(const char *s)
{
	return gw_frame_from(s, strlen(s), false);
}

eio_server *eio_server_create(const gw_config *cfg, const char *path, const eio_handler *h)
{
	eio_server *srv = calloc(1, sizeof *srv);
	if (!srv)
		return NULL;
	srv->cfg = cfg;
	srv->path = strdup(path);
	srv->h = *h;
	srv->ping = static_frame("2");
	srv->noop = static_frame("6");
	srv->probe = static_frame("3probe");
	srv->close = static_frame("1");
	if (!srv->path || !srv->ping || !srv->noop || !srv->probe || !srv->close) {
		eio_server_destroy(srv);
		return NULL;
	}
	return srv;
}

const char *eio_server_path(const eio_server *srv) { return srv->path; }
size_t eio_server_sessions(const eio_server *srv) { return srv->sessions.len; }
const char *eio_session_sid(const eio_session *s) { return s->sid; }
void *eio_session_user(const eio_session *s) { return s->user; }
void eio_session_set_user(eio_session *s, void *user) { s->user = user; }
const char *eio_session_handshake(const eio_session *s) { return s->handshake; }
bool eio_session_is_websocket(const eio_session *s) { return s->websocket; }

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
 * Websocket writes are coalesced per loop turn: a session that gets its first queued
 * frame goes on the dirty list, and eio_flush() (called once per turn, before the loop
 * waits) writes each one's whole queue with one send() (net_send_now). No writeable-
 * callback round trip (two epoll_ctl per frame), one syscall for all a turn produced.
 * The list is an array, so the flush can prefetch the sessions ahead of their writes.
 */
static eio_session **g_dirty;
static size_t g_n_dirty, g_dirty_cap;

static bool dirty_add(eio_session *s)
{
	if (s->dirty)
		return true;
	if (g_n_dirty == g_dirty_cap) {
		size_t cap = g_dirty_cap ? 2 * g_dirty_cap : 256;
		eio_session **v = realloc(g_dirty, cap * sizeof *v);
		if (!v)
			return false;
		g_dirty = v;
		g_dirty_cap = cap;
	}
	g_dirty[g_n_dirty++] = s;
	s->dirty = g_n_dirty;
	return true;
}

/* Ask the active transport to write. */
static void kick(eio_session *s)
{
	if (s->websocket && s->ws) {
		/* lws frames (and deflates) each message itself; out of memory for the list:
		 * the writeable callback writes the queue too, one turn later */
		if (s->srv->cfg->engine.per_message_deflate || !dirty_add(s))
			lws_callback_on_writable(s->ws->wsi);
	} else if (!s->websocket && s->poll && s->poll->role == CONN_EIO_GET && !s->poll->have_reply) {
		lws_callback_on_writable(s->poll->wsi);
	}
}

static void session_free(eio_session *s)
{
	if (s->dirty)
		g_dirty[s->dirty - 1] = NULL;
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

/* Build a polling reply body from the queue (and an optional trailing frame). */
static void poll_answer(eio_session *s, gw_conn *c, gw_frame *extra)
{
	gw_buf body = {0};
	gw_frame *f;
	while ((f = queue_pop(s))) {
		eio_payload_append(&body, gw_frame_data(f), f->len, f->binary);
		gw_stats.packets_out++;
		gw_stats.bytes_out += f->len;
		gw_frame_unref(f);
	}
	if (extra)
		eio_payload_append(&body, gw_frame_data(extra), extra->len, extra->binary);
	net_reply(c, 200, "text/plain; charset=UTF-8", body.data, body.len);
	gw_buf_free(&body);
}

static void session_close_now(eio_session *s, gw_close_reason reason)
{
	if (s->closed)
		return;
	s->closed = true;
	gw_timer_stop(&s->hb);
	gw_timer_stop(&s->upg);
	gw_stats.closes[reason]++;
	if (s->websocket)
		gw_stats.conn_websocket--;
	else
		gw_stats.conn_polling--;
	gw_map_del(&s->srv->sessions, s->sid, GW_ID_LEN);
	s->busy++;
	if (s->srv->h.on_close)
		s->srv->h.on_close(s->srv->h.ctx, s, reason);
	if (s->poll) {
		gw_conn *c = s->poll;
		s->poll = NULL;
		c->sess = NULL;
		/* the client closed: release its poll with a noop, as engine.io does; a
		 * server-side close tells the client with a close packet */
		if (c->role == CONN_EIO_GET && !c->have_reply)
			poll_answer(s, c, reason == GW_CLOSE_TRANSPORT_CLOSE ? s->srv->noop : s->srv->close);
	}
	if (s->post) {
		s->post->sess = NULL; /* its body_done answers "Session ID unknown" */
		s->post = NULL;
	}
	if (s->ws) {
		gw_conn *c = s->ws;
		s->ws = NULL;
		c->sess = NULL;
		c->kill = true;
		lws_callback_on_writable(c->wsi);
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
		gw_timer_start(&s->hb, (uint32_t)s->srv->cfg->engine.ping_timeout_ms, deferred_close);
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
		gw_stats.drops_volatile++;
		return -GW_EFULL;
	}
	if (queue_reserve(s, n)) {
		/* Close on the next loop turn: the caller may be iterating a room. */
		gw_warn("eio %s: send queue full (%zu packets), closing slow consumer", s->sid,
			s->q_len);
		s->closing = true;
		s->close_reason = GW_CLOSE_QUEUE_OVERFLOW;
		gw_timer_start(&s->hb, 0, deferred_close);
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

static void hb_schedule_ping(eio_session *s)
{
	s->awaiting_pong = false;
	gw_timer_start(&s->hb, (uint32_t)s->srv->cfg->engine.ping_interval_ms, hb_fire);
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
		gw_timer_start(&s->hb, (uint32_t)s->srv->cfg->engine.ping_timeout_ms, hb_fire);
}

/* The upgrade failed: the websocket probe goes, the polling transport carries on.
 * The caller closes the probe's wsi (or it is already closing). */
static void probe_drop(eio_session *s)
{
	gw_conn *c = s->ws;
	s->ws = NULL;
	s->upgrading = false;
	s->probed = false;
	gw_timer_stop(&s->upg);
	if (c)
		c->sess = NULL;
}

static void upg_timeout(gw_timer *t)
{
	eio_session *s = t->ctx;
	if (s->upgrading && s->ws) {
		gw_conn *c = s->ws;
		probe_drop(s);
		c->kill = true;
		lws_callback_on_writable(c->wsi);
	}
}

/* ---- packets from the client (both transports) ---- */

/* Returns 0, or -1 when the session was closed because of this packet. */
static int on_packet(eio_session *s, const eio_packet *p)
{
	gw_stats.packets_in++;
	gw_stats.bytes_in += p->len + 1;
	switch (p->type) {
	case EIO_MESSAGE:
		if (s->srv->h.on_message)
			s->srv->h.on_message(s->srv->h.ctx, s, p->data, p->len, p->binary);
		return s->closed ? -1 : 0;
	case EIO_PONG:
		if (s->awaiting_pong)
			hb_schedule_ping(s);
		return 0;
	case EIO_CLOSE:
		session_close_now(s, GW_CLOSE_TRANSPORT_CLOSE);
		return -1;
	case EIO_PING:
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

/* One member "name":"value" of the handshake's headers, if the request has it; *err
 * collects allocation failures. Returns whether it was there. */
static bool put_header(gw_buf *o, struct lws *wsi, enum lws_token_indexes tok, const char *name,
		       bool *first, int *err)
{
	static char v[8193]; /* service thread only */
	int len = lws_hdr_total_length(wsi, tok);
	if (len <= 0 || len >= (int)sizeof v || lws_hdr_copy(wsi, v, sizeof v, tok) < 0)
		return false;
	*err |= gw_buf_puts(o, *first ? "\"" : ",\"") | gw_buf_puts(o, name) | gw_buf_puts(o, "\":") |
		gw_buf_put_json_string(o, v, strlen(v));
	*first = false;
	return true;
}

/* The length of an urlarg fragment's name: up to its '=' or its end. */
static size_t arg_name_len(const char *a)
{
	const char *eq = strchr(a, '=');
	return eq ? (size_t)(eq - a) : strlen(a);
}

/*
 * The handshake as Socket.IO exposes it, as compact JSON text, written directly (a cJSON
 * tree and its printing cost an allocation per member, per connection):
 * {"headers":{...},"query":{...},"address","time","issued","url","xdomain","secure"}.
 * NULL when out of memory.
 */
static char *build_handshake(struct lws *wsi, bool secure)
{
	static const struct {
		enum lws_token_indexes tok;
		const char *name;
	} H[] = {
		{WSI_TOKEN_HOST, "host"},
		{WSI_TOKEN_CONNECTION, "connection"},
		{WSI_TOKEN_HTTP_USER_AGENT, "user-agent"},
		{WSI_TOKEN_HTTP_ACCEPT, "accept"},
		{WSI_TOKEN_HTTP_ACCEPT_LANGUAGE, "accept-language"},
		{WSI_TOKEN_HTTP_ACCEPT_ENCODING, "accept-encoding"},
		{WSI_TOKEN_HTTP_COOKIE, "cookie"},
		{WSI_TOKEN_ORIGIN, "origin"},
		{WSI_TOKEN_HTTP_REFERER, "referer"},
		{WSI_TOKEN_HTTP_AUTHORIZATION, "authorization"},
		{WSI_TOKEN_X_FORWARDED_FOR, "x-forwarded-for"},
		{WSI_TOKEN_HTTP_CONTENT_TYPE, "content-type"},
		{WSI_TOKEN_UPGRADE, "upgrade"},
		{WSI_TOKEN_VERSION, "sec-websocket-version"},
		{WSI_TOKEN_EXTENSIONS, "sec-websocket-extensions"},
	};
	static gw_buf o, args, url; /* service thread only; reused */
	int err = 0;
	gw_buf_reset(&o);
	gw_buf_reset(&args);
	gw_buf_reset(&url);
	err |= gw_buf_puts(&o, "{\"headers\":{");
	bool first = true, origin = false;
	for (size_t i = 0; i < sizeof H / sizeof H[0]; i++)
		if (put_header(&o, wsi, H[i].tok, H[i].name, &first, &err) && H[i].tok == WSI_TOKEN_ORIGIN)
			origin = true;

	/* query: every urlarg fragment "k=v" (a bare "k": ""), the last of a name wins. The
	 * fragments are kept NUL-separated in args, for that and for "url". */
	char frag[1024];
	for (int i = 0; lws_hdr_copy_fragment(wsi, frag, sizeof frag, WSI_TOKEN_HTTP_URI_ARGS, i) > 0; i++)
		err |= gw_buf_append(&args, frag, strlen(frag) + 1);
	const char *end = args.data ? (const char *)args.data + args.len : NULL;
	err |= gw_buf_puts(&o, "},\"query\":{");
	first = true;
	for (const char *a = (const char *)args.data; a && a < end; a += strlen(a) + 1) {
		size_t klen = arg_name_len(a);
		bool later = false;
		for (const char *b = a + strlen(a) + 1; !later && b < end; b += strlen(b) + 1)
			later = arg_name_len(b) == klen && memcmp(a, b, klen) == 0;
		if (later)
			continue;
		const char *v = a[klen] ? a + klen + 1 : "";
		err |= gw_buf_puts(&o, first ? "" : ",") | gw_buf_put_json_string(&o, a, klen) |
		       gw_buf_putc(&o, ':') | gw_buf_put_json_string(&o, v, strlen(v));
		first = false;
	}

	char addr[128] = "";
	lws_get_peer_simple(wsi, addr, sizeof addr);
	err |= gw_buf_puts(&o, "},\"address\":") | gw_buf_put_json_string(&o, addr, strlen(addr));
	/* "time" changes once a second: formatted once a second */
	static time_t tbuf_at = -1;
	static char tbuf[64];
	time_t now = time(NULL);
	if (now != tbuf_at) {
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(tbuf, sizeof tbuf, "%a %b %d %Y %H:%M:%S GMT+0000 (Coordinated Universal Time)", &tm);
		tbuf_at = now;
	}
	err |= gw_buf_puts(&o, ",\"time\":") | gw_buf_put_json_string(&o, tbuf, strlen(tbuf));
	/* "issued": ms since the epoch, an integer */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	err |= gw_buf_printf(&o, ",\"issued\":%lld,\"url\":", (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	/* the path, then the fragments as they came: '?' before the first, '&' between */
	char uri[2048] = "";
	lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI);
	if (!uri[0])
		lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_POST_URI);
	err |= gw_buf_puts(&url, uri);
	for (const char *a = (const char *)args.data; a && a < end; a += strlen(a) + 1)
		err |= gw_buf_putc(&url, a == (const char *)args.data ? '?' : '&') | gw_buf_puts(&url, a);
	err |= gw_buf_put_json_string(&o, url.data ? (const char *)url.data : "", url.len);
	err |= gw_buf_printf(&o, ",\"xdomain\":%s,\"secure\":%s}", origin ? "true" : "false",
			     secure ? "true" : "false");
	/* kept as text, exactly sized: a parsed tree costs several times more per idle
	 * connection */
	return err || !o.data ? NULL : strdup((const char *)o.data);
}

static eio_session *session_new(eio_server *srv, struct lws *wsi, bool websocket)
{
	eio_session *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->srv = srv;
	s->websocket = websocket;
	s->hb.ctx = s;
	s->upg.ctx = s;
	do
		gw_rand_id(s->sid);
	while (gw_map_get(&srv->sessions, s->sid, GW_ID_LEN));
	s->handshake = build_handshake(wsi, lws_is_ssl(wsi));
	if (!s->handshake || gw_map_put(&srv->sessions, s->sid, GW_ID_LEN, s)) {
		session_free(s);
		return NULL;
	}
	gw_stats.sessions_opened++;
	if (websocket)
		gw_stats.conn_websocket++;
	else
		gw_stats.conn_polling++;

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

static int query_arg(struct lws *wsi, const char *name, char *buf, int len)
{
	return net_query_arg(wsi, name, buf, (size_t)len) == 1;
}

static void eio_error(gw_conn *c, int code)
{
	if (code >= 0 && code < 6)
		gw_stats.eio_errors[code]++;
	net_reply_eio_error(c, code);
}

/* Common query checks. Returns 0 ok, or replies with an error and returns 1. */
static int check_query(eio_server *srv, gw_conn *c, char *transport, int tlen, char *sid, int slen)
{
	char eio[8];
	query_arg(c->wsi, "EIO", eio, sizeof eio);
	if (strcmp(eio, "4") != 0) {
		eio_error(c, EIO_ERR_UNSUPPORTED_PROTOCOL_VERSION);
		return 1;
	}
	query_arg(c->wsi, "transport", transport, tlen);
	if (strcmp(transport, "polling") != 0 && strcmp(transport, "websocket") != 0) {
		eio_error(c, EIO_ERR_TRANSPORT_UNKNOWN);
		return 1;
	}
	if ((strcmp(transport, "polling") == 0 && !srv->cfg->engine.polling) ||
	    (strcmp(transport, "websocket") == 0 && !srv->cfg->engine.websocket)) {
		eio_error(c, EIO_ERR_TRANSPORT_UNKNOWN);
		return 1;
	}
	query_arg(c->wsi, "sid", sid, slen);
	return 0;
}

int eio_on_http(eio_server *srv, gw_conn *c)
{
	struct lws *wsi = c->wsi;
	bool is_get = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;
	bool is_post = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;
	char transport[32], sid[64];
	c->eio = srv;
	if (check_query(srv, c, transport, sizeof transport, sid, sizeof sid))
		return 0;
	if (strcmp(transport, "polling") != 0) {
		/* a plain HTTP request claiming the websocket transport */
		eio_error(c, EIO_ERR_BAD_REQUEST);
		return 0;
	}
	if (!sid[0]) {
		if (!is_get) {
			eio_error(c, EIO_ERR_BAD_HANDSHAKE_METHOD);
			return 0;
		}
		eio_session *s = session_new(srv, wsi, false);
		if (!s) {
			eio_error(c, EIO_ERR_BAD_REQUEST);
			return 0;
		}
		if (srv->cfg->engine.cookie)
			snprintf(c->cookie, sizeof c->cookie, "%s", s->sid);
		c->sess = s;
		c->role = CONN_EIO_GET;
		s->poll = c;
		s->busy++;
		poll_answer(s, c, NULL);
		notify_open(s);
		session_release(s);
		return 0;
	}
	eio_session *s = gw_map_get(&srv->sessions, sid, strlen(sid));
	if (!s) {
		eio_error(c, EIO_ERR_UNKNOWN_SID);
		return 0;
	}
	if (s->websocket) {
		/* polling is refused once the session has upgraded */
		eio_error(c, EIO_ERR_BAD_REQUEST);
		return 0;
	}
	if (is_get) {
		if (s->poll) {
			/* two concurrent GETs: the reference server treats it as an error */
			eio_error(c, EIO_ERR_BAD_REQUEST);
			session_close_now(s, GW_CLOSE_TRANSPORT_ERROR);
			return 0;
		}
		c->role = CONN_EIO_GET;
		c->sess = s;
		s->poll = c;
		if (s->closing && !s->q_len) {
			/* the queued packets went out in an earlier poll: now the close packet.
			 * Not in the same payload: socket.io-client applies a payload's packets
			 * on the next tick but a close at once, so a DISCONNECT sharing the
			 * payload would arrive after "transport close". */
			poll_answer(s, c, srv->close);
			session_close_now(s, s->close_reason);
		} else if (s->q_len || s->probed) {
			poll_answer(s, c, s->probed ? srv->noop : NULL);
		} else if (!c->have_reply) {
			net_hold(c); /* until data */
		}
		return 0;
	}
	if (is_post) {
		if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
			/* lws does not decode chunked bodies: refuse instead of hanging */
			eio_error(c, EIO_ERR_BAD_REQUEST);
			return 0;
		}
		if (s->post_active) {
			eio_error(c, EIO_ERR_BAD_REQUEST);
			session_close_now(s, GW_CLOSE_TRANSPORT_ERROR);
			return 0;
		}
		char cl[32] = "";
		lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH);
		unsigned long long n = strtoull(cl, NULL, 10);
		if (n > srv->cfg->engine.max_payload) {
			net_reply(c, 413, "text/plain", "Payload Too Large", 17);
			session_close_now(s, GW_CLOSE_PAYLOAD_TOO_LARGE);
			return 0;
		}
		if (n == 0) {
			eio_error(c, EIO_ERR_BAD_REQUEST);
			return 0;
		}
		c->role = CONN_EIO_POST;
		c->sess = s;
		c->body_limit = srv->cfg->engine.max_payload;
		s->post_active = true;
		s->post = c;
		return 0;
	}
	eio_error(c, EIO_ERR_BAD_REQUEST);
	return 0;
}

int eio_on_http_body(gw_conn *c, const void *in, size_t len)
{
	if (c->role != CONN_EIO_POST)
		return 0;
	if (c->body.len + len > c->body_limit) {
		eio_session *s = c->sess;
		c->role = CONN_REPLY;
		if (s) {
			s->post_active = false;
			s->post = NULL;
			c->sess = NULL;
			session_close_now(s, GW_CLOSE_PAYLOAD_TOO_LARGE);
		}
		net_reply(c, 413, "text/plain", "Payload Too Large", 17);
		return 0;
	}
	return gw_buf_append(&c->body, in, len) ? -1 : 0;
}

int eio_on_http_body_done(gw_conn *c)
{
	if (c->role != CONN_EIO_POST)
		return 0;
	eio_session *s = c->sess;
	c->sess = NULL;
	c->role = CONN_REPLY;
	if (!s) {
		eio_error(c, EIO_ERR_UNKNOWN_SID);
		return 0;
	}
	s->post_active = false;
	s->post = NULL;
	s->busy++;
	eio_payload_iter it;
	eio_packet p;
	int rc;
	eio_payload_iter_init(&it, c->body.data, c->body.len);
	while ((rc = eio_payload_next(&it, &p)) == 1)
		if (on_packet(s, &p))
			break;
	if (rc < 0) {
		gw_debug("eio %s: malformed polling payload", s->sid);
		session_close_now(s, GW_CLOSE_PARSE_ERROR);
		eio_error(c, EIO_ERR_BAD_REQUEST);
	} else {
		net_reply(c, 200, "text/html", "ok", 2);
	}
	session_release(s);
	gw_buf_free(&c->body);
	return 0;
}

int eio_on_http_writeable(gw_conn *c)
{
	eio_session *s = c->sess;
	if (c->role == CONN_EIO_GET && s && !c->have_reply) {
		if (!s->q_len && !s->probed)
			return 0; /* nothing to say yet: keep holding */
		poll_answer(s, c, s->probed ? s->srv->noop : NULL);
	}
	if (c->role == CONN_EIO_GET && s && s->poll == c) {
		s->poll = NULL;
		c->sess = NULL;
	}
	return net_write_reply(c);
}

void eio_on_http_closed(gw_conn *c)
{
	eio_session *s = c->sess;
	if (!s)
		return;
	c->sess = NULL;
	if (s->post == c) {
		s->post = NULL;
		s->post_active = false;
	}
	if (s->poll == c) {
		s->poll = NULL;
		/* a held poll whose connection went away: the client is gone (engine.io
		 * closes with "transport error" too) */
		if (c->role == CONN_EIO_GET && !c->have_reply && !s->websocket && !s->upgrading)
			session_close_now(s, GW_CLOSE_TRANSPORT_ERROR);
	}
}

/* ---- websocket ---- */

/* Refuse a websocket handshake with a real HTTP 400 and an Engine.IO error body:
 * returning non-zero alone would drop the TCP connection without a status. */
static int ws_refuse(struct lws *wsi, int code)
{
	char body[96];
	int n = eio_error_body(code, body, sizeof body);
	unsigned char buf[LWS_PRE + 512], *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf;
	if (code >= 0 && code < 6)
		gw_stats.eio_errors[code]++;
	if (n > 0 && !lws_add_http_common_headers(wsi, (unsigned)eio_error_status(code),
						  "application/json", (lws_filepos_t)n, &p, end) &&
	    !lws_add_http_header_by_name(wsi, (const unsigned char *)"connection:",
					 (const unsigned char *)"close", 5, &p, end) &&
	    !lws_finalize_http_header(wsi, &p, end) && end - p > n) {
		memcpy(p, body, (size_t)n);
		p += n;
		lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_HEADERS);
	}
	return -1;
}

int eio_ws_filter(eio_server *srv, struct lws *wsi)
{
	char eio[8] = "", transport[32] = "", sid[64] = "";
	query_arg(wsi, "EIO", eio, sizeof eio);
	query_arg(wsi, "transport", transport, sizeof transport);
	query_arg(wsi, "sid", sid, sizeof sid);
	if (strcmp(eio, "4") != 0)
		return ws_refuse(wsi, EIO_ERR_UNSUPPORTED_PROTOCOL_VERSION);
	if (strcmp(transport, "websocket") != 0 || !srv->cfg->engine.websocket)
		return ws_refuse(wsi, EIO_ERR_TRANSPORT_UNKNOWN);
	if (sid[0]) {
		eio_session *s = gw_map_get(&srv->sessions, sid, strlen(sid));
		if (!s)
			return ws_refuse(wsi, EIO_ERR_UNKNOWN_SID);
		if (s->websocket || s->ws || s->closing)
			return ws_refuse(wsi, EIO_ERR_BAD_REQUEST);
	}
	return 0;
}

int eio_ws_established(eio_server *srv, gw_conn *c)
{
	char sid[64] = "";
	query_arg(c->wsi, "sid", sid, sizeof sid);
	c->role = CONN_EIO_WS;
	c->eio = srv;
	if (sid[0]) {
		eio_session *s = gw_map_get(&srv->sessions, sid, strlen(sid));
		if (!s || s->websocket || s->ws)
			return -1;
		s->ws = c;
		s->upgrading = true;
		c->sess = s;
		gw_timer_start(&s->upg, (uint32_t)srv->cfg->engine.upgrade_timeout_ms, upg_timeout);
		return 0;
	}
	eio_session *s = session_new(srv, c->wsi, true);
	if (!s)
		return -1;
	s->ws = c;
	c->sess = s;
	kick(s);
	notify_open(s);
	return 0;
}

static int ws_message(gw_conn *c, uint8_t *data, size_t len, bool binary)
{
	eio_session *s = c->sess;
	eio_packet p;
	if (eio_decode_frame(data, len, binary, &p)) {
		gw_debug("eio %s: malformed websocket frame", s->sid);
		if (s->upgrading && !s->websocket) {
			probe_drop(s); /* a bad probe fails the upgrade, not the session */
			return -1;
		}
		session_close_now(s, GW_CLOSE_PARSE_ERROR);
		return -1;
	}
	if (s->upgrading && !s->websocket) {
		/* the probe: only ping "probe" and upgrade are valid here */
		if (p.type == EIO_PING && p.len == 5 && memcmp(p.data, "probe", 5) == 0) {
			c->probe_reply = true;
			s->probed = true;
			lws_callback_on_writable(c->wsi);
			if (s->poll && s->poll->role == CONN_EIO_GET && !s->poll->have_reply)
				lws_callback_on_writable(s->poll->wsi); /* answered with a noop */
			return 0;
		}
		if (p.type == EIO_UPGRADE) {
				s->upgrading = false;
			s->probed = false;
			s->websocket = true;
			gw_timer_stop(&s->upg);
			gw_stats.conn_polling--;
			gw_stats.conn_websocket++;
			gw_stats.upgrades++;
			if (s->poll && s->poll->role == CONN_EIO_GET && !s->poll->have_reply) {
				gw_conn *pc = s->poll;
				s->poll = NULL;
				pc->sess = NULL;
				net_reply(pc, 200, "text/plain; charset=UTF-8", "6", 1);
			}
			kick(s);
			return 0;
		}
		gw_debug("eio %s: unexpected packet on upgrade probe", s->sid);
		probe_drop(s);
		return -1;
	}
	s->busy++;
	int rc = on_packet(s, &p);
	session_release(s);
	return rc;
}

int eio_ws_receive(gw_conn *c, const void *in, size_t len)
{
	eio_session *s = c->sess;
	if (!s)
		return -1;
	size_t max = s->srv->cfg->engine.max_payload;
	if (c->rx.len + len > max) {
		gw_debug("eio %s: websocket message over max_payload", s->sid);
		lws_close_reason(c->wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, NULL, 0);
		if (s->ws == c && s->websocket)
			session_close_now(s, GW_CLOSE_PAYLOAD_TOO_LARGE);
		else if (s->ws == c) {
			s->ws = NULL;
			s->upgrading = false;
		s->probed = false;
			c->sess = NULL;
		}
		return -1;
	}
	if (c->rx.len == 0)
		c->rx_binary = lws_frame_is_binary(c->wsi);
	if (!lws_is_final_fragment(c->wsi) || c->rx.len) {
		if (gw_buf_append(&c->rx, in, len))
			return -1;
		if (!lws_is_final_fragment(c->wsi))
			return 0;
		int rc = ws_message(c, c->rx.data, c->rx.len, c->rx_binary);
		gw_buf_reset(&c->rx);
		return rc;
	}
	return ws_message(c, (uint8_t *)(uintptr_t)in, len, c->rx_binary);
}

/*
 * Several queued frames go out in one write: we frame them ourselves (server frames
 * are unmasked: FIN + opcode, then a 7/16/64-bit length) into one buffer and hand it
 * to lws raw, so a burst costs one send() instead of one per packet. Only without
 * permessage-deflate, whose frames lws must compress itself. lws keeps whatever the
 * socket does not take and reports writeable again once it is out.
 */
#define WS_BATCH_MAX (64 * 1024)

static int ws_write_batch(gw_conn *c, eio_session *s)
{
	static gw_buf scratch; /* service thread only; reused, never shrinks */
	gw_buf_reset(&scratch);
	if (gw_buf_reserve(&scratch, LWS_PRE))
		return -1;
	scratch.len = LWS_PRE;
	while (s->q_len && scratch.len - LWS_PRE < WS_BATCH_MAX) {
		gw_frame *f = queue_pop(s);
		uint8_t h[10];
		size_t hl = 2;
		h[0] = (uint8_t)(0x80 | (f->binary ? 0x2 : 0x1));
		if (f->len < 126) {
			h[1] = (uint8_t)f->len;
		} else if (f->len <= 0xffff) {
			h[1] = 126;
			h[2] = (uint8_t)(f->len >> 8);
			h[3] = (uint8_t)f->len;
			hl = 4;
		} else {
			h[1] = 127;
			for (int i = 0; i < 8; i++)
				h[2 + i] = (uint8_t)((uint64_t)f->len >> (56 - 8 * i));
			hl = 10;
		}
		int rc = gw_buf_append(&scratch, h, hl) || gw_buf_append(&scratch, gw_frame_data(f), f->len);
		gw_stats.packets_out++;
		gw_stats.bytes_out += f->len;
		gw_frame_unref(f);
		if (rc)
			return -1;
	}
	gw_stats.ws_writes++;
	int rc = net_send_now(c, scratch.data + LWS_PRE, scratch.len - LWS_PRE, LWS_WRITE_RAW);
	if (rc > 0)
		gw_stats.ws_short_writes++;
	return rc < 0 ? -1 : 0;
}

void eio_flush(void)
{
	/* entries are read afresh each time: nothing here adds to the list, but a freed
	 * session leaves a NULL */
	for (size_t i = 0; i < g_n_dirty; i++) {
		eio_session *ahead = i + PREFETCH_AHEAD < g_n_dirty ? g_dirty[i + PREFETCH_AHEAD] : NULL;
		if (ahead)
			prefetch_session(ahead);
		ahead = i + PREFETCH_AHEAD / 2 < g_n_dirty ? g_dirty[i + PREFETCH_AHEAD / 2] : NULL;
		if (ahead && ahead->ws) {
			__builtin_prefetch(ahead->ws);
			if (ahead->q_len)
				__builtin_prefetch(&ahead->q[ahead->q_head]);
		}
		eio_session *s = g_dirty[i];
		if (!s)
			continue;
		s->dirty = 0;
		gw_conn *c = s->ws;
		if (s->closed || !s->websocket || !c || !s->q_len)
			continue;
		/* the rare paths go through the writeable callback, and so does a connection
		 * whose socket did not take all of an earlier write: lws calls it once its
		 * buffer has drained, and until then frames wait in the bounded queue
		 * (engine.send_queue), not in lws's unbounded buffer */
		if (s->closing || c->kill || c->probe_reply || lws_partial_buffered(c->wsi)) {
			lws_callback_on_writable(c->wsi);
			continue;
		}
		if (ws_write_batch(c, s) < 0)
			c->kill = true; /* closed from the writeable callback below */
		if (s->q_len || c->kill)
			lws_callback_on_writable(c->wsi);
	}
	g_n_dirty = 0;
}

int eio_ws_writeable(gw_conn *c)
{
	if (c->kill) {
		lws_close_reason(c->wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
		return -1;
	}
	eio_session *s = c->sess;
	if (!s)
		return -1;
	if (c->probe_reply) {
		c->probe_reply = false;
		gw_frame *f = s->srv->probe;
		if (lws_write(c->wsi, gw_frame_data(f), f->len, LWS_WRITE_TEXT) < (int)f->len)
			return -1;
		lws_callback_on_writable(c->wsi);
		return 0;
	}
	if (!s->websocket)
		return 0;
	if (s->q_len > 1 && !s->srv->cfg->engine.per_message_deflate) {
		if (ws_write_batch(c, s) < 0)
			return -1;
	} else {
		gw_frame *f = queue_pop(s);
		if (f) {
			int n = lws_write(c->wsi, gw_frame_data(f), f->len,
					  f->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
			gw_stats.packets_out++;
			gw_stats.bytes_out += f->len;
			gw_frame_unref(f);
			if (n < 0)
				return -1;
		}
	}
	if (s->q_len)
		lws_callback_on_writable(c->wsi);
	else if (s->closing)
		session_close_now(s, s->close_reason);
	return 0;
}

void eio_ws_closed(gw_conn *c)
{
	gw_buf_free(&c->rx);
	eio_session *s = c->sess;
	if (!s)
		return;
	c->sess = NULL;
	if (s->ws != c)
		return;
	if (s->websocket) {
		s->ws = NULL;
		session_close_now(s, GW_CLOSE_TRANSPORT_CLOSE);
	} else {
		probe_drop(s); /* a failed upgrade probe: polling carries on */
	}
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
	gw_map_free(&srv->sessions);
	gw_frame_unref(srv->ping);
	gw_frame_unref(srv->noop);
	gw_frame_unref(srv->probe);
	gw_frame_unref(srv->close);
	free(srv->path);
	free(srv);
}
