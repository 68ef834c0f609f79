/*
 * net.c — connections: lws accepts them (TCP or TLS) as raw byte streams on our libev
 * loop; HTTP/1.1 and WebSocket are read here (http1.c, ws.c) and handed to the routes.
 *
 * Why raw: lws 4.1's HTTP server neither decodes chunked bodies nor lists unknown
 * headers, spins on a pipelined request (lws_service_do_ripe_rxflow), adds no
 * `Connection: close`, answers nothing past its header limit, and negotiates h2 over
 * TLS where it then serves nothing of ours. Owning the byte stream fixes them at the
 * root; lws keeps what it does well: accept, TLS, buffering what a socket does not take.
 *
 * A connection reads one request at a time. The parser stops at each request's end;
 * what follows stays in c->in until the route has answered, so replies go out in
 * request order. A route that answers later (a held poll) gets the connection back on
 * the ready list, which is read again before the loop next waits.
 */
#include "net/net.h"
#include "net/ws.h"
#include "util/dlist.h"
#include "util/err.h"
#include "util/log.h"
#include "util/metric.h"
#include "util/timer.h"

#include <libwebsockets.h>

#include <assert.h>
#include <errno.h>
#include <ev.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

enum { MODE_HTTP = 0, MODE_WS };

/* What an lws callback returns: go on, or have lws close the connection (after what it
 * still holds is out). */
enum { LWS_GO_ON = 0, LWS_HANG_UP = -1 };

/* A peer that does not close after our last write within this long is cut off. */
#define LINGER_MS 2000
/* Pipelined input buffered behind an unanswered request beyond which reading stops. */
#define IN_MAX_EXTRA (64 * 1024)
/* Our rx flow-control reason while lws holds output of c: lws reads nothing then
 * (raw-skt gives its buffered output priority), and a readable socket left armed would
 * wake the loop at once, every turn — a peer that sends but does not read spun a core. */
#define RXFLOW_OUT_BLOCKED (1 << 1)

typedef struct route {
	char *prefix;
	net_route_ops ops;
	void *ctx;
	size_t max_body;
} route;

struct net_conn {
	struct lws *wsi;
	int fd;                /* for send() straight to the socket; -1 under TLS */
	uint8_t mode;
	bool req_active;       /* a whole request was handed to its route, not yet answered */
	bool streaming;        /* the answer is a stream (SSE) */
	bool closing;          /* close once the output is out */
	bool lingering;        /* our side is shut: discard input until the peer closes */
	bool kill;             /* close from the next writeable callback */
	bool deflate;          /* websocket: permessage-deflate negotiated */
	bool in_process;       /* read_requests is on the stack */
	bool rx_off;
	bool gone;             /* RAW_CLOSE seen */
	bool counted_closing;
	uint16_t ws_code;      /* the close code a websocket ended with (0: none yet) */
	const route *rt;       /* of the current request */
	void *user;
	h1_parser *h1;         /* HTTP mode */
	ws_reader *ws;         /* websocket mode */
	gw_buf in;             /* received, not yet read */
	gw_timer tm;           /* request deadline, or the linger */
	uint64_t seq;          /* accept order: requests of one turn are read in it */
	gw_dlink ready;        /* on the loop's ready list: input to read now that the answer is out */
	route own;             /* net_conn_adopt's ops (c->rt points here then) */
	struct net_remote *rm; /* a remote connection (net_remote_new), else NULL */
};

/* An accepted connection whose first request line has not come yet (net_set_steer). */
typedef struct peeking {
	ev_io io;
	gw_timer tm;
	gw_dlink link;
	net_loop *L;
	uint64_t at_ms; /* accepted */
} peeking;

/* The connections open in the process, against listen.max_connections: one count for
 * every loop (net_link), freed by the last loop to go. */
typedef struct net_count {
	atomic_int refs;
	_Atomic int64_t open;
} net_count;

/* A connection another loop accepted for this one (net_set_steer). */
typedef struct handed {
	int fd;
	uint64_t at_ms;
} handed;

/* What a remote connection has instead of a socket. */
typedef struct net_remote {
	net_loop *L;
	const net_remote_ops *ops;
	void *ctx;
	bool secure;
	bool ended;            /* ops->close was called, or the client is gone: reap pending */
	gw_timer reap;         /* frees c after the loop turn */
	gw_dlink live;         /* on the loop's list of remote connections */
	net_conn *c;
	char peer[64];
} net_remote;

struct net_loop {
	const gw_config *cfg;
	struct lws_context *ctx;
	struct ev_loop *loop;
	pthread_mutex_t lock; /* plugin threads wake the loop through ctx */
	/* Held by the loop's thread while it works (net_hold), released while it waits:
	 * another loop reads this one's state under it (net_visit). */
	pthread_mutex_t state;
	bool held;
	/* Listening sockets of our own (SO_REUSEPORT with engine.workers): what they accept
	 * is handed to lws on vh */
	struct lws_vhost *vh;
	struct {
		ev_io io;
		int fd;
	} lsn[4];
	size_t n_lsn;
	/* engine.workers, plain TCP: each connection is served by the loop its first
	 * request names (net_set_steer); until its first line has come it waits here */
	net_loop *(*steer)(void *ctx, const char *target, size_t len);
	void *steer_ctx;
	gw_dlist peeking;
	int64_t n_peeking;
	pthread_mutex_t hand_lock; /* hand: connections other loops passed to this one */
	handed *hand;
	size_t n_hand, cap_hand;
	atomic_bool handed_any;
	uint64_t adopt_at_ms; /* conn_open: when the connection being adopted was accepted */
	net_count *count;     /* accepted connections of the process (this loop's alone until net_link) */
	int64_t limit;        /* ... beyond which new ones are refused: the process's ceiling */
	volatile sig_atomic_t stop;
	pthread_t thread;
	bool started, self_wake, active;
	route routes[24];
	size_t n_routes;
	struct {
		void (*fn)(void *);
		void *ctx;
	} turn[8];
	size_t n_turn;
	void (*drain)(void *);
	bool (*pending)(void *);
	void *drain_ctx;
	gw_dlist ready;
	gw_dlist remotes;     /* remote connections (freed with the loop) */
	gw_dlist refused;     /* refused connections lingering (refused_linger) */
	int n_refused;
	ev_prepare prepare;
	h1_limits limits;
	char *common_headers; /* engine.headers as header lines */
	bool cors_wildcard;
	int n_closing;        /* connections closing after their output (shutdown waits) */
	uint64_t seq;         /* connections accepted */
	gw_timers *timers;
	ws_zlib *zlib;        /* permessage-deflate streams, shared by the loop's websockets */
	gw_buf out;           /* scratch for heads and chunks */
	gw_buf pre;           /* scratch: lws_write's headroom */
	gw_buf z;             /* scratch: a compressed frame */
	net_conn **rv;        /* scratch: read_ready's connections */
	size_t rv_cap;
	char addr[128];       /* net_conn_peer's answer */
	uint64_t refuse_warn_ms, limit_warn_ms; /* rate limits of two warnings */
	struct {
		uint64_t loop_turns;
		uint64_t http_requests;
		uint64_t http_refused;     /* 400/408/413/431/501/505 (the connection is closed) */
		uint64_t http_timeouts;    /* ... of them 408 */
		uint64_t ws_protocol_errors;
		int64_t tcp_open, tcp_max; /* accepted TCP connections open here; this loop's share of the ceiling */
		uint64_t tcp_refused;
		uint64_t steered;          /* connections passed to the loop holding their session */
	} stats;
};

/* ---- the loop ---- */

void net_wake(net_loop *L)
{
	/* On the loop thread itself (an inline bus delivery): no syscall, the work runs
	 * before the loop next waits. */
	if (L->started && pthread_equal(pthread_self(), L->thread)) {
		L->self_wake = true;
		return;
	}
	pthread_mutex_lock(&L->lock);
	if (L->ctx)
		lws_cancel_service(L->ctx);
	pthread_mutex_unlock(&L->lock);
}

/* libev: around each wait for events */
static void state_release(struct ev_loop *loop)
{
	net_loop *L = ev_userdata(loop);
	if (L->held)
		pthread_mutex_unlock(&L->state);
}

static void state_acquire(struct ev_loop *loop)
{
	net_loop *L = ev_userdata(loop);
	if (L->held)
		pthread_mutex_lock(&L->state);
}

void net_hold(net_loop *L)
{
	pthread_mutex_lock(&L->state);
	L->held = true;
}

void net_unhold(net_loop *L)
{
	L->held = false;
	pthread_mutex_unlock(&L->state);
}

/* One visitor at a time: two loops visiting each other would wait for each other. */
static pthread_mutex_t visit_lock = PTHREAD_MUTEX_INITIALIZER;

void net_visit(net_loop *self, net_loop *const *loops, size_t n, void (*fn)(void *ctx, size_t i), void *ctx)
{
	bool held = self && self->held;
	if (held) /* nothing changes this loop's state while its thread is here */
		pthread_mutex_unlock(&self->state);
	pthread_mutex_lock(&visit_lock);
	for (size_t i = 0; i < n; i++) {
		pthread_mutex_lock(&loops[i]->state);
		fn(ctx, i);
		pthread_mutex_unlock(&loops[i]->state);
	}
	pthread_mutex_unlock(&visit_lock);
	if (held)
		pthread_mutex_lock(&self->state);
}

void net_stop(net_loop *L) { L->stop = 1; }
void net_resume(net_loop *L) { L->stop = 0; }

void net_stop_signal(net_loop *L)
{
	/* From a signal handler: no lock; lws_cancel_service only writes to the loop's
	 * eventfd, and L->ctx is cleared before the context is destroyed. */
	L->stop = 1;
	struct lws_context *ctx = L->ctx;
	if (ctx)
		lws_cancel_service(ctx);
}

int net_route(net_loop *L, const char *prefix, const net_route_ops *ops, void *ctx, size_t max_body)
{
	if (L->n_routes == sizeof L->routes / sizeof L->routes[0])
		return -GW_EFULL;
	route *r = &L->routes[L->n_routes];
	r->prefix = strdup(prefix);
	if (!r->prefix)
		return -GW_ENOMEM;
	r->ops = *ops;
	r->ctx = ctx;
	r->max_body = max_body;
	L->n_routes++;
	if (max_body > L->limits.max_body)
		L->limits.max_body = max_body;
	return 0;
}

int net_on_turn(net_loop *L, void (*fn)(void *ctx), void *ctx)
{
	if (L->n_turn == sizeof L->turn / sizeof L->turn[0])
		return -GW_EFULL;
	L->turn[L->n_turn].fn = fn;
	L->turn[L->n_turn].ctx = ctx;
	L->n_turn++;
	return 0;
}

void net_off_turn(net_loop *L, void (*fn)(void *ctx), void *ctx)
{
	for (size_t i = 0; i < L->n_turn; i++) {
		if (L->turn[i].fn == fn && L->turn[i].ctx == ctx) {
			memmove(&L->turn[i], &L->turn[i + 1], (L->n_turn - i - 1) * sizeof L->turn[0]);
			L->n_turn--;
			return;
		}
	}
}

void net_set_drain(net_loop *L, void (*drain)(void *), bool (*pending)(void *), void *ctx)
{
	L->drain = drain;
	L->pending = pending;
	L->drain_ctx = ctx;
}

static bool under(const char *path, const char *prefix)
{
	/* "/socket.io/" matches "/socket.io" and "/socket.io/..."; "" matches all */
	size_t n = strlen(prefix);
	if (!n)
		return true;
	return strncmp(path, prefix, n - 1) == 0 && (path[n - 1] == 0 || path[n - 1] == '/');
}

static const route *route_for(const net_loop *L, const char *path)
{
	for (size_t i = 0; i < L->n_routes; i++)
		if (under(path, L->routes[i].prefix))
			return &L->routes[i];
	return NULL;
}

/* ---- per connection ---- */

static net_loop *loop_of(const net_conn *c)
{
	return c->rm ? c->rm->L : lws_context_user(lws_get_context(c->wsi));
}

void net_conn_set_user(net_conn *c, void *user) { c->user = user; }
void *net_conn_user(const net_conn *c) { return c->user; }
bool net_conn_secure(const net_conn *c) { return c->rm ? c->rm->secure : c->fd < 0; }

void net_conn_adopt(net_conn *c, const net_route_ops *ops, void *ctx)
{
	c->own = (route){.ops = *ops, .ctx = ctx, .max_body = c->rt ? c->rt->max_body : loop_of(c)->limits.max_body};
	c->rt = &c->own;
}

const char *net_conn_peer(net_conn *c)
{
	if (c->rm)
		return c->rm->peer;
	net_loop *L = loop_of(c);
	L->addr[0] = 0;
	lws_get_peer_simple(c->wsi, L->addr, sizeof L->addr);
	return L->addr;
}

bool net_conn_blocked(const net_conn *c)
{
	return !c->rm && (c->kill || lws_partial_buffered(c->wsi));
}

static void conn_timeout(gw_timer *t);
static void arm(net_conn *c, uint32_t ms);
static void remote_end(net_conn *c, uint16_t code, const char *reason);

void net_close(net_conn *c)
{
	if (c->rm) {
		remote_end(c, 0, NULL);
		return;
	}
	if (c->kill || c->gone)
		return;
	c->kill = true;
	lws_callback_on_writable(c->wsi);
	arm(c, LINGER_MS); /* a peer that reads nothing gives no writeable callback */
}

static void arm(net_conn *c, uint32_t ms)
{
	net_loop *L = loop_of(c);
	c->tm.ctx = c;
	gw_timer_start(L->timers, &c->tm, ms, conn_timeout);
}

/*
 * Write p to c: straight to the socket when lws holds nothing for c and c is not TLS
 * (lws_write would ask for a writeable callback after every write: two epoll_ctl and a
 * loop turn); what the socket does not take goes to lws, which sends it before anything
 * else. 0 all sent, 1 lws has the rest, -1 broken (c is closed).
 */
static int conn_write(net_conn *c, const void *p, size_t len)
{
	if (c->kill || c->gone)
		return -1;
	size_t off = 0;
	if (c->fd >= 0 && !lws_partial_buffered(c->wsi)) {
		ssize_t n;
		do
			n = send(c->fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		while (n < 0 && errno == EINTR);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			net_close(c);
			return -1;
		}
		if (n > 0)
			off = (size_t)n;
		if (off == len)
			return 0;
	}
	/* lws_write wants LWS_PRE bytes of headroom before the data */
	gw_buf *pre = &loop_of(c)->pre;
	gw_buf_reset(pre);
	if (gw_buf_reserve(pre, LWS_PRE + len - off)) {
		net_close(c);
		return -1;
	}
	memcpy(pre->data + LWS_PRE, (const uint8_t *)p + off, len - off);
	if (lws_write(c->wsi, pre->data + LWS_PRE, len - off, LWS_WRITE_RAW) < 0) {
		net_close(c);
		return -1;
	}
	if (!lws_partial_buffered(c->wsi))
		return 0; /* TLS: all of it went out */
	lws_rx_flow_control(c->wsi, LWS_RXFLOW_REASON_APPLIES_DISABLE | RXFLOW_OUT_BLOCKED);
	lws_callback_on_writable(c->wsi);
	return 1;
}

static void linger(net_conn *c)
{
	/* shut our side once everything is out, then read until the peer closes: closing
	 * with unread input would send a reset that can overtake our last answer */
	if (c->fd < 0) {
		net_close(c); /* TLS: lws sends close_notify */
		return;
	}
	shutdown(c->fd, SHUT_WR);
	c->lingering = true;
	arm(c, LINGER_MS);
}

/* Close c once what it was given is out. */
static void close_after_output(net_conn *c)
{
	net_loop *L = loop_of(c);
	if (c->closing || c->kill || c->gone)
		return;
	c->closing = true;
	if (!c->counted_closing) {
		c->counted_closing = true;
		L->n_closing++;
	}
	gw_dlist_del(&L->ready, &c->ready);
	if (lws_partial_buffered(c->wsi)) {
		lws_callback_on_writable(c->wsi); /* linger from there */
		arm(c, LINGER_MS);                /* or give up on a peer that reads nothing */
	} else {
		linger(c);
	}
}

/* ---- HTTP replies ---- */

static const char *reason_phrase(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 426: return "Upgrade Required";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

static bool origin_allowed(const net_loop *L, const char *origin)
{
	const gw_config *cfg = L->cfg;
	for (size_t i = 0; i < cfg->engine.n_cors_origins; i++)
		if (strcmp(cfg->engine.cors_origins[i], "*") == 0 || strcmp(cfg->engine.cors_origins[i], origin) == 0)
			return true;
	return false;
}

static int put_cors(const net_loop *L, gw_buf *o, const h1_req *r)
{
	if (!L->cfg->engine.n_cors_origins)
		return 0; /* no CORS: nothing depends on the Origin */
	/* credentials forbid "*": echo the origin then */
	bool star = L->cors_wildcard && !L->cfg->engine.cors_credentials;
	/* unless the answer is "*" for everyone, it depends on the Origin: say so on every
	 * response, also one to no Origin or a refused one, or a cache may hand it to
	 * another origin (RFC 9110 §12.5.5) */
	int err = star ? 0 : gw_buf_puts(o, "Vary: Origin\r\n");
	const char *origin = r ? h1_header_get(r, "origin") : NULL;
	if (!origin || !origin[0] || !origin_allowed(L, origin))
		return err;
	err |= gw_buf_printf(o, "Access-Control-Allow-Origin: %s\r\n", star ? "*" : origin);
	if (L->cfg->engine.cors_credentials)
		err |= gw_buf_puts(o, "Access-Control-Allow-Credentials: true\r\n");
	return err;
}

static const h1_req *cur_req(const net_conn *c)
{
	if (!c->h1)
		return NULL;
	h1_state st = h1_get_state(c->h1);
	if (st == H1_COMPLETE || st == H1_HEAD || (st == H1_ERROR && h1_err_has_head(c->h1)))
		return h1_get_req(c->h1);
	return NULL;
}

/* The head of a reply into L->out: status line, CORS, engine.headers, extra. */
static int put_head(net_conn *c, int status, const char *ctype, const char *extra, bool close)
{
	net_loop *L = loop_of(c);
	const h1_req *r = cur_req(c);
	gw_buf *o = &L->out;
	gw_buf_reset(o);
	int err = gw_buf_printf(o, "HTTP/1.1 %d %s\r\n", status, reason_phrase(status));
	if (ctype)
		err |= gw_buf_printf(o, "Content-Type: %s\r\n", ctype);
	err |= put_cors(L, o, r);
	if (L->common_headers)
		err |= gw_buf_puts(o, L->common_headers);
	if (extra)
		err |= gw_buf_puts(o, extra);
	if (close)
		err |= gw_buf_puts(o, "Connection: close\r\n");
	else if (r && r->http_minor == 0)
		err |= gw_buf_puts(o, "Connection: keep-alive\r\n");
	return err;
}

/* The request is answered: ready the connection for the next one. */
static void request_done(net_conn *c, bool close)
{
	net_loop *L = loop_of(c);
	c->req_active = false;
	c->rt = NULL;
	if (close) {
		close_after_output(c);
		return;
	}
	if (c->h1 && h1_get_state(c->h1) == H1_COMPLETE)
		h1_next(c->h1);
	arm(c, (uint32_t)L->cfg->request_timeout_ms); /* idle keep-alive limit */
	if (c->in.len && !c->in_process)
		gw_dlist_add(&L->ready, &c->ready);
}

static bool must_close(const net_conn *c)
{
	net_loop *L = loop_of(c);
	const h1_req *r = cur_req(c);
	return L->stop || !r || !r->keep_alive || r->upgrade || (c->h1 && h1_get_state(c->h1) != H1_COMPLETE);
}

static void remote_reply(net_conn *c, int status, const char *ctype, const void *body, size_t len,
			 const char *extra, bool close);

static void reply(net_conn *c, int status, const char *ctype, const void *body, size_t len,
		  const char *extra, bool close)
{
	if (c->rm) {
		remote_reply(c, status, ctype, body, len, extra, close);
		return;
	}
	net_loop *L = loop_of(c);
	if (c->mode != MODE_HTTP || c->closing || c->kill || c->gone)
		return;
	const h1_req *r = cur_req(c);
	close = close || must_close(c);
	gw_buf *o = &L->out;
	int err = put_head(c, status, ctype, extra, close);
	if (status == 204 || status == 304 || status < 200)
		err |= gw_buf_puts(o, "\r\n"); /* RFC 9110 §8.6: no Content-Length on these */
	else
		err |= gw_buf_printf(o, "Content-Length: %zu\r\n\r\n", len);
	if (len && !(r && r->method == H1_HEAD_M))
		err |= gw_buf_append(o, body, len);
	if (err || conn_write(c, o->data, o->len) < 0) {
		net_close(c);
		return;
	}
	request_done(c, close);
}

void net_reply(net_conn *c, int status, const char *ctype, const void *body, size_t len, const char *extra)
{
	reply(c, status, ctype, body, len, extra, false);
}

void net_reply_close(net_conn *c, int status, const char *ctype, const void *body, size_t len)
{
	reply(c, status, ctype, body, len, NULL, true);
}

int net_stream_begin(net_conn *c, int status, const char *ctype, const char *extra)
{
	if (c->rm)
		return -1; /* not relayed */
	net_loop *L = loop_of(c);
	const h1_req *r = cur_req(c);
	bool chunked = r && r->http_minor == 1;
	int err = put_head(c, status, ctype, extra, !chunked);
	err |= gw_buf_puts(&L->out, chunked ? "Transfer-Encoding: chunked\r\n\r\n" : "\r\n");
	if (err || conn_write(c, L->out.data, L->out.len) < 0)
		return -1;
	c->streaming = true;
	gw_timer_stop(L->timers, &c->tm);
	return 0;
}

int net_stream_write(net_conn *c, const void *data, size_t len)
{
	if (c->rm)
		return -1;
	net_loop *L = loop_of(c);
	if (!len)
		return 0;
	const h1_req *r = cur_req(c);
	gw_buf *o = &L->out;
	gw_buf_reset(o);
	int err = 0;
	bool chunked = r && r->http_minor == 1;
	if (chunked)
		err |= gw_buf_printf(o, "%zx\r\n", len);
	err |= gw_buf_append(o, data, len);
	if (chunked)
		err |= gw_buf_puts(o, "\r\n");
	if (err) {
		net_close(c);
		return -1;
	}
	return conn_write(c, o->data, o->len);
}

/* ---- reading requests ---- */

/* net's own refusal: counted, logged at most once per 10 s, answered, closed. */
static void refuse(net_conn *c, int status, const char *why)
{
	net_loop *L = loop_of(c);
	L->stats.http_refused++;
	uint64_t now = gw_now_ms();
	if (!L->refuse_warn_ms || now - L->refuse_warn_ms >= 10000) {
		L->refuse_warn_ms = now;
		gw_warn("http: refused a request from %s with %d: %s (%llu refused so far; logged once per 10 s)",
			net_conn_peer(c), status, why, (unsigned long long)L->stats.http_refused);
	} else {
		gw_debug("http: refused with %d: %s", status, why);
	}
	char body[256];
	int n = snprintf(body, sizeof body, "%s\n", why);
	reply(c, status, "text/plain; charset=utf-8", body, n > 0 && (size_t)n < sizeof body ? (size_t)n : 0, NULL,
	      true);
}

static void preflight(net_conn *c, const h1_req *r)
{
	gw_buf h = {0};
	const char *req_h = h1_header_get(r, "access-control-request-headers");
	int err = gw_buf_puts(&h, "Access-Control-Allow-Methods: GET,HEAD,PUT,PATCH,POST,DELETE\r\n");
	if (req_h && req_h[0] && !strpbrk(req_h, "\r\n"))
		err |= gw_buf_printf(&h, "Access-Control-Allow-Headers: %s\r\n", req_h);
	if (err)
		net_close(c);
	else
		reply(c, 204, NULL, "", 0, (const char *)h.data, false);
	gw_buf_free(&h);
}

static void dispatch(net_conn *c, const h1_req *r)
{
	net_loop *L = loop_of(c);
	const route *rt = c->rt ? c->rt : route_for(L, r->path);
	c->req_active = true;
	c->rt = rt;
	gw_timer_stop(L->timers, &c->tm);
	L->stats.http_requests++;
	if (L->stop) {
		/* shutting down: the routes' owners may be gone already */
		static const char msg[] = "{\"error\":\"shutting down\"}";
		reply(c, 503, "application/json", msg, sizeof msg - 1, "Retry-After: 1\r\n", true);
		return;
	}
	if (r->method == H1_OPTIONS && !r->upgrade) {
		preflight(c, r);
		return;
	}
	if (!rt) {
		reply(c, 404, "application/json", "{\"error\":\"not found\"}", 21, NULL, false);
		return;
	}
	rt->ops.on_request(rt->ctx, c, r);
}

/* At the end of a head: refuse a body the route cannot take, or invite it. */
static bool head_done(net_conn *c, const h1_req *r)
{
	net_loop *L = loop_of(c);
	c->rt = route_for(L, r->path);
	size_t max = c->rt ? c->rt->max_body : L->limits.max_body;
	if (r->content_length > 0 && (unsigned long long)r->content_length > max) {
		if (c->rt && c->rt->ops.on_refused)
			c->rt->ops.on_refused(c->rt->ctx, c, r, 413);
		refuse(c, 413, "request body over the limit");
		return false;
	}
	if (r->expect_continue && (r->chunked || r->content_length > 0)) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		if (conn_write(c, cont, sizeof cont - 1) < 0)
			return false;
	}
	h1_resume(c->h1);
	return true;
}

static void ws_input(net_conn *c, uint8_t *data, size_t len);

/* Read requests from data[0..len) while none is waiting for its answer; returns the
 * bytes consumed. */
static size_t read_requests(net_conn *c, uint8_t *data, size_t len)
{
	net_loop *L = loop_of(c);
	size_t used = 0;
	c->in_process = true;
	while (c->mode == MODE_HTTP && !c->req_active && !c->closing && !c->kill && !c->gone) {
		h1_state before = h1_get_state(c->h1);
		if (used == len && before != H1_COMPLETE && before != H1_HEAD)
			break;
		size_t n = h1_feed(c->h1, data + used, len - used);
		used += n;
		h1_state st = h1_get_state(c->h1);
		if (before == H1_IDLE && st != H1_IDLE)
			arm(c, (uint32_t)L->cfg->request_timeout_ms); /* the whole request within it */
		if (st == H1_HEAD) {
			if (!head_done(c, h1_get_req(c->h1)))
				break;
		} else if (st == H1_COMPLETE) {
			const h1_req *r = h1_get_req(c->h1);
			size_t max = c->rt ? c->rt->max_body : L->limits.max_body;
			if (r->body_len > max) {
				if (c->rt && c->rt->ops.on_refused)
					c->rt->ops.on_refused(c->rt->ctx, c, r, 413);
				refuse(c, 413, "request body over the limit");
				break;
			}
			dispatch(c, r);
		} else if (st == H1_ERROR) {
			if (h1_err_status(c->h1) == 413 && h1_err_has_head(c->h1)) {
				const h1_req *r = h1_get_req(c->h1);
				const route *rt = route_for(L, r->path);
				if (rt && rt->ops.on_refused)
					rt->ops.on_refused(rt->ctx, c, r, 413);
			}
			refuse(c, h1_err_status(c->h1), h1_err_text(c->h1));
			break;
		} else if (n == 0) {
			break;
		}
	}
	c->in_process = false;
	if (c->mode == MODE_WS) {
		/* upgraded: the parser's work is over; what followed the head is frames */
		h1_destroy(c->h1);
		c->h1 = NULL;
		if (used < len && !c->closing && !c->kill) {
			ws_input(c, data + used, len - used);
			used = len;
		}
	}
	return used;
}

static void keep_rest(net_conn *c, const uint8_t *rest, size_t n)
{
	net_loop *L = loop_of(c);
	if (!n)
		return;
	if (gw_buf_append(&c->in, rest, n)) {
		net_close(c);
		return;
	}
	if (!c->rx_off && c->in.len > L->limits.max_header_bytes + IN_MAX_EXTRA) {
		c->rx_off = true; /* read again once the buffered requests are answered */
		lws_rx_flow_control(c->wsi, 0);
	}
}

/*
 * Bytes from the socket in HTTP mode: kept, and read before the loop waits, with every
 * other connection's that arrived in this turn in the order the connections were
 * accepted. libev runs a turn's ready watchers last-first, so without this a POST on a
 * newer connection could overtake a GET sent before it on an older one (the official
 * Engine.IO suite's "forcefully closes the session" sends the two at once).
 */
static void http_input(net_conn *c, uint8_t *data, size_t len)
{
	net_loop *L = loop_of(c);
	keep_rest(c, data, len);
	if (!c->req_active && !c->kill)
		gw_dlist_add(&L->ready, &c->ready);
}

static int by_seq(const void *a, const void *b)
{
	const net_conn *x = *(net_conn *const *)a, *y = *(net_conn *const *)b;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Connections with input to read: this turn's arrivals, and those whose answer is out. */
static void read_ready(net_loop *L)
{
	net_conn **v = L->rv;
	size_t cap = L->rv_cap;
	size_t n = 0;
	if (!L->ready.head)
		return;
	for (gw_dlink *l; (l = gw_dlist_pop(&L->ready));) {
		if (n == cap) {
			size_t nc = cap ? 2 * cap : 64;
			net_conn **nv = realloc(v, nc * sizeof *nv);
			if (!nv) {
				gw_dlist_add(&L->ready, l); /* the rest next turn */
				break;
			}
			L->rv = v = nv;
			L->rv_cap = cap = nc;
		}
		v[n++] = GW_DLIST_ITEM(l, net_conn, ready);
	}
	/* a connection is freed only from its own lws callbacks: none runs in this loop */
	if (n > 1)
		qsort(v, n, sizeof *v, by_seq);
	for (size_t i = 0; i < n; i++) {
		net_conn *c = v[i];
		if (c->req_active || c->closing || c->kill || c->gone || !c->in.len)
			continue;
		gw_buf mine = c->in;
		c->in = (gw_buf){0};
		size_t used = read_requests(c, mine.data, mine.len);
		keep_rest(c, mine.data + used, mine.len - used);
		gw_buf_free(&mine);
		if (c->rx_off && !c->kill && c->in.len <= L->limits.max_header_bytes) {
			c->rx_off = false;
			lws_rx_flow_control(c->wsi, 1);
		}
	}
}

static void conn_timeout(gw_timer *t)
{
	net_conn *c = t->ctx;
	if (c->kill || c->closing) {
		/* its last output did not go out in time (or the peer did not close) */
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
		return;
	}
	if (c->mode != MODE_HTTP || c->req_active || c->streaming)
		return;
	if (!c->h1 || h1_get_state(c->h1) == H1_IDLE) {
		net_close(c); /* an idle keep-alive connection: closed without a word, as Node does */
		return;
	}
	loop_of(c)->stats.http_timeouts++;
	refuse(c, 408, "the request did not arrive within listen.request_timeout_ms");
}

/* ---- websocket ---- */

static bool token_in(const char *list, const char *tok)
{
	/* a comma-separated header value contains tok (case-insensitive) */
	size_t n = strlen(tok);
	for (const char *p = list; p && *p;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		const char *e = p;
		while (*e && *e != ',')
			e++;
		const char *t = e;
		while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
			t--;
		if ((size_t)(t - p) == n && strncasecmp(p, tok, n) == 0)
			return true;
		p = e;
	}
	return false;
}

static int remote_ws_accept(net_conn *c);

int net_ws_accept(net_conn *c, const h1_req *r)
{
	if (c->rm)
		return remote_ws_accept(c); /* the node holding the client checks the handshake */
	net_loop *L = loop_of(c);
	const char *key = h1_header_get(r, "sec-websocket-key");
	const char *ver = h1_header_get(r, "sec-websocket-version");
	const char *upg = h1_header_get(r, "upgrade");
	if (r->method != H1_GET || !upg || !token_in(upg, "websocket") || !key || !ws_key_valid(key)) {
		refuse(c, 400, "bad websocket handshake");
		return -1;
	}
	if (!ver || strcmp(ver, "13") != 0) {
		/* RFC 6455 §4.4: say which version we speak */
		L->stats.http_refused++;
		reply(c, 426, "text/plain", "websocket version 13 only\n", 26, "Sec-WebSocket-Version: 13\r\n", true);
		return -1;
	}
	char accept[29], ext[128] = "";
	ws_accept_key(key, accept);
	const char *offer = h1_header_get(r, "sec-websocket-extensions");
	bool deflate = L->cfg->engine.per_message_deflate && offer && ws_deflate_negotiate(offer, ext, sizeof ext);
	ws_reader *rd = calloc(1, sizeof *rd);
	if (!rd) {
		refuse(c, 503, "out of memory");
		return -1;
	}
	size_t max = c->rt ? c->rt->max_body : L->limits.max_body;
	ws_reader_init(rd, max, deflate ? L->zlib : NULL);
	gw_buf *o = &L->out;
	gw_buf_reset(o);
	int err = gw_buf_printf(o, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
				   "Sec-WebSocket-Accept: %s\r\n", accept);
	if (deflate)
		err |= gw_buf_printf(o, "Sec-WebSocket-Extensions: %s\r\n", ext);
	if (L->common_headers)
		err |= gw_buf_puts(o, L->common_headers);
	err |= gw_buf_puts(o, "\r\n");
	if (err || conn_write(c, o->data, o->len) < 0) {
		ws_reader_fini(rd);
		free(rd);
		net_close(c);
		return -1;
	}
	c->ws = rd;
	c->deflate = deflate;
	c->mode = MODE_WS;
	c->req_active = false;
	gw_timer_stop(L->timers, &c->tm);
	return 0;
}

int net_ws_frame(net_conn *c, gw_buf *out, const void *payload, size_t len, bool binary)
{
	uint8_t h[10];
	if (c->rm) { /* a record for net_ws_send to cut up again: flag, length, payload */
		uint8_t r[5] = {binary, (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
		return len > UINT32_MAX || gw_buf_append(out, r, 5) || gw_buf_append(out, payload, len) ? -GW_ENOMEM : 0;
	}
	if (c->deflate) {
		net_loop *L = loop_of(c);
		gw_buf *z = &L->z;
		gw_buf_reset(z);
		if (ws_deflate(L->zlib, payload, len, z))
			return -GW_ENOMEM;
		size_t hl = ws_frame_header(h, binary ? WS_OP_BINARY : WS_OP_TEXT, z->len, true);
		return gw_buf_append(out, h, hl) || gw_buf_append(out, z->data, z->len) ? -GW_ENOMEM : 0;
	}
	size_t hl = ws_frame_header(h, binary ? WS_OP_BINARY : WS_OP_TEXT, len, false);
	return gw_buf_append(out, h, hl) || gw_buf_append(out, payload, len) ? -GW_ENOMEM : 0;
}

static int remote_ws_send(net_conn *c, const uint8_t *p, size_t len);

int net_ws_send(net_conn *c, const void *p, size_t len)
{
	if (c->mode != MODE_WS || c->closing)
		return -1;
	if (c->rm)
		return remote_ws_send(c, p, len);
	return conn_write(c, p, len);
}

void net_ws_close(net_conn *c, uint16_t code, const char *reason)
{
	if (c->rm) {
		if (c->mode == MODE_WS)
			remote_end(c, code, reason);
		return;
	}
	if (c->mode != MODE_WS || c->closing || c->kill || c->gone)
		return;
	uint8_t f[130];
	size_t n = ws_close_frame(f, code, reason);
	if (conn_write(c, f, n) >= 0)
		close_after_output(c);
}

/* The websocket is over (the peer's close, or a protocol error): its owner hears it
 * now, with the code, not when the TCP connection finally goes. */
static void ws_end(net_conn *c, uint16_t code)
{
	c->ws_code = code ? code : WS_CLOSE_NO_STATUS;
	if (c->user && c->rt && c->rt->ops.on_close)
		c->rt->ops.on_close(c->rt->ctx, c);
	c->user = NULL;
}

uint16_t net_ws_close_code(const net_conn *c)
{
	return c->ws_code;
}

static void ws_input(net_conn *c, uint8_t *data, size_t len)
{
	while (len && !c->closing && !c->kill && !c->gone) {
		ws_event ev;
		size_t n = ws_read(c->ws, data, len, &ev);
		data += n;
		len -= n;
		switch (ev.type) {
		case WS_EV_MESSAGE:
			if (c->user && c->rt && c->rt->ops.on_ws_message)
				c->rt->ops.on_ws_message(c->rt->ctx, c, ev.data, ev.len, ev.binary);
			break;
		case WS_EV_PING: {
			uint8_t f[10 + 125];
			size_t hl = ws_frame_header(f, WS_OP_PONG, ev.len, false);
			memcpy(f + hl, ev.data, ev.len);
			conn_write(c, f, hl + ev.len);
			break;
		}
		case WS_EV_PONG:
			break;
		case WS_EV_CLOSE: {
			/* echo the code (§5.5.1), then close */
			uint8_t f[130];
			size_t fl = ws_close_frame(f, ev.code == WS_CLOSE_NO_STATUS ? 0 : ev.code, NULL);
			if (conn_write(c, f, fl) >= 0)
				close_after_output(c);
			ws_end(c, ev.code);
			return;
		}
		case WS_EV_ERROR:
			loop_of(c)->stats.ws_protocol_errors++;
			gw_debug("websocket from %s failed: %d %s", net_conn_peer(c), ev.code, ev.reason);
			{
				uint8_t f[130];
				size_t fl = ws_close_frame(f, ev.code, ev.reason);
				if (conn_write(c, f, fl) >= 0)
					close_after_output(c);
			}
			ws_end(c, ev.code);
			return;
		case WS_EV_NONE:
			if (!n)
				return;
			break;
		}
	}
}

/* ---- remote connections (net.h) ---- */

static void remote_free(net_conn *c)
{
	gw_timer_stop(c->rm->L->timers, &c->rm->reap);
	gw_dlist_del(&c->rm->L->remotes, &c->rm->live);
	h1_destroy(c->h1);
	free(c->rm);
	free(c);
}

static void remote_reap(gw_timer *t)
{
	net_conn *c = t->ctx;
	if (c->user && c->rt && c->rt->ops.on_close)
		c->rt->ops.on_close(c->rt->ctx, c);
	c->user = NULL;
	remote_free(c);
}

/* c's part is over: freed after this turn (its owner's on_close first, if it has a user). */
static void remote_reap_later(net_conn *c)
{
	c->gone = true;
	c->rm->reap.ctx = c;
	gw_timer_start(c->rm->L->timers, &c->rm->reap, 0, remote_reap);
}

static void remote_end(net_conn *c, uint16_t code, const char *reason)
{
	if (c->rm->ended)
		return;
	c->rm->ended = true;
	c->rm->ops->close(c->rm->ctx, c, code, reason);
	remote_reap_later(c);
}

static void remote_reply(net_conn *c, int status, const char *ctype, const void *body, size_t len,
			 const char *extra, bool close)
{
	if (c->rm->ended || c->mode != MODE_HTTP || !c->req_active)
		return;
	c->req_active = false;
	c->rm->ended = true;
	c->rm->ops->reply(c->rm->ctx, c, status, ctype, body, len, extra, close);
	remote_reap_later(c); /* one request per remote connection */
}

static int remote_ws_accept(net_conn *c)
{
	if (c->rm->ended)
		return -1;
	c->mode = MODE_WS;
	c->req_active = false;
	c->rm->ops->ws_accept(c->rm->ctx, c);
	return 0;
}

static int remote_ws_send(net_conn *c, const uint8_t *p, size_t len)
{
	if (c->rm->ended)
		return -1;
	while (len >= 5 && !c->rm->ended) { /* net_ws_frame's records (ws_send may end c) */
		size_t n = (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4];
		if (n > len - 5)
			break;
		c->rm->ops->ws_send(c->rm->ctx, c, p + 5, n, p[0] != 0);
		p += 5 + n;
		len -= 5 + n;
	}
	return 0;
}

net_conn *net_remote_new(net_loop *L, const net_remote_ops *ops, void *ctx, const char *peer, bool secure)
{
	net_conn *c = calloc(1, sizeof *c);
	net_remote *rm = calloc(1, sizeof *rm);
	if (!c || !rm || !(c->h1 = h1_create(&L->limits))) {
		free(c);
		free(rm);
		return NULL;
	}
	*rm = (net_remote){.L = L, .ops = ops, .ctx = ctx, .secure = secure, .c = c};
	snprintf(rm->peer, sizeof rm->peer, "%s", peer ? peer : "");
	c->rm = rm;
	gw_dlist_add(&L->remotes, &rm->live);
	c->fd = -1;
	c->seq = ++L->seq;
	return c;
}

void net_remote_request(net_conn *c, const uint8_t *http, size_t len)
{
	size_t used = h1_feed(c->h1, http, len);
	if (h1_get_state(c->h1) == H1_HEAD) {
		const h1_req *r = h1_get_req(c->h1);
		c->rt = route_for(c->rm->L, r->path);
		h1_resume(c->h1);
		if (h1_get_state(c->h1) != H1_COMPLETE)
			h1_feed(c->h1, http + used, len - used);
	}
	if (h1_get_state(c->h1) != H1_COMPLETE) {
		c->req_active = true; /* for refuse's reply */
		refuse(c, 400, "relayed request could not be read");
		return;
	}
	dispatch(c, h1_get_req(c->h1));
}

void net_remote_ws_message(net_conn *c, const uint8_t *data, size_t len, bool binary)
{
	if (!c->rm->ended && c->mode == MODE_WS && c->user && c->rt && c->rt->ops.on_ws_message)
		c->rt->ops.on_ws_message(c->rt->ctx, c, data, len, binary);
}

void net_remote_gone(net_conn *c, uint16_t code)
{
	if (c->rm->ended)
		return;
	c->rm->ended = true;
	c->ws_code = code ? code : (c->mode == MODE_WS ? WS_CLOSE_NO_STATUS : 0);
	remote_reap_later(c);
}

/* ---- lws ---- */

/* fds kept free for everything that is not a client connection: the listening socket,
 * the loop's epoll and wake fds, logs, plugin sockets (nng, Kafka brokers), dlopen */
#define FD_RESERVE 64

/* Raise the soft fd limit to the hard limit (every connection is one fd) and set the
 * connection ceiling: listen.max_connections, at most what the fd limit allows. */
static void set_connection_limit(net_loop *L, const gw_config *cfg)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	long long fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? (long long)rl.rlim_cur
											     : 1048576;
	long long by_fds = fds > 2 * FD_RESERVE ? fds - FD_RESERVE : fds / 2;
	long long max = cfg->max_connections > 0 && cfg->max_connections < by_fds ? cfg->max_connections : by_fds;
	int workers = cfg->engine.workers > 1 ? cfg->engine.workers : 1;
	bool first = cfg->loop == 0; /* loop 0 says it for all */
	if (cfg->max_connections > by_fds && first)
		gw_warn("listen.max_connections %d is more than the fd limit %lld allows: using %lld",
			cfg->max_connections, fds, by_fds);
	L->limit = max; /* for the process: the loops share its fds (net_link) */
	L->stats.tcp_max = max / workers + (first ? max % workers : 0); /* (the gauges sum to max) */
	if (first)
		gw_info("fd limit %lld: at most %lld concurrent connections%s%s", fds, max,
			max < by_fds ? " (listen.max_connections)" : "", workers > 1 ? ", shared by the service loops" : "");
}

/* A connection over the ceiling: answer 503 on the raw socket and let lws close it.
 * What the client already sent is read first, or the close would be a reset that can
 * overtake the answer. */
/* A refused connection's socket, kept (a dup of lws's fd) until the peer closes, for at
 * most LINGER_MS: closing it while the client's request is still arriving would send a
 * reset that can overtake the 503. At most REFUSED_MAX at a time; beyond, closed at once. */
#define REFUSED_MAX 64

typedef struct refused {
	ev_io rd;
	ev_timer tm;
	net_loop *L;
	gw_dlink link;
} refused;

static void refused_end(refused *r)
{
	ev_io_stop(r->L->loop, &r->rd);
	ev_timer_stop(r->L->loop, &r->tm);
	gw_dlist_del(&r->L->refused, &r->link);
	r->L->n_refused--;
	close(r->rd.fd);
	free(r);
}

static void refused_read(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop, (void)revents;
	char sink[4096];
	ssize_t n;
	while ((n = recv(w->fd, sink, sizeof sink, MSG_DONTWAIT)) > 0)
		;
	if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
		refused_end(w->data);
}

static void refused_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)revents;
	refused_end(w->data);
}

static void refused_linger(net_loop *L, int fd)
{
	int d = L->n_refused < REFUSED_MAX ? dup(fd) : -1;
	refused *r = d >= 0 ? calloc(1, sizeof *r) : NULL;
	if (!r) {
		if (d >= 0)
			close(d);
		return;
	}
	r->L = L;
	ev_io_init(&r->rd, refused_read, d, EV_READ);
	r->rd.data = r;
	ev_timer_init(&r->tm, refused_timeout, LINGER_MS / 1000.0, 0);
	r->tm.data = r;
	ev_io_start(L->loop, &r->rd);
	ev_timer_start(L->loop, &r->tm);
	gw_dlist_add(&L->refused, &r->link);
	L->n_refused++;
}

static void refuse_connection(net_loop *L, int fd)
{
	static const char reply503[] = "HTTP/1.1 503 Service Unavailable\r\n"
				       "Content-Type: application/json\r\n"
				       "Content-Length: 36\r\n"
				       "Retry-After: 5\r\n"
				       "Connection: close\r\n\r\n"
				       "{\"error\":\"connection limit reached\"}";
	static_assert(sizeof "{\"error\":\"connection limit reached\"}" - 1 == 36, "Content-Length");
	char sink[4096];
	while (recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0)
		;
	(void)!send(fd, reply503, sizeof reply503 - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	shutdown(fd, SHUT_WR);
	refused_linger(L, fd); /* lws closes fd; the socket stays while its dup is read */
	L->stats.tcp_refused++;
	uint64_t now = gw_now_ms();
	if (!L->limit_warn_ms || now - L->limit_warn_ms >= 10000) {
		L->limit_warn_ms = now;
		gw_warn("connection limit %lld reached: refusing new connections with 503 (%llu so far; "
			"listen.max_connections, ulimit -n)",
			(long long)L->limit, (unsigned long long)L->stats.tcp_refused);
	}
}

/* ---- listening ---- */

#define ACCEPT_BATCH 64

/* lws takes fd as a raw stream (TLS when configured) of the sio-gateway protocol;
 * at_ms: when it was accepted (its request deadline runs from then), 0 now. */
static void adopt(net_loop *L, int fd, uint64_t at_ms)
{
	L->stats.tcp_open++;
	L->adopt_at_ms = at_ms;
	lws_sock_file_fd_type sock = {.sockfd = fd};
	lws_adoption_type type = LWS_ADOPT_SOCKET | (L->cfg->tls_cert ? LWS_ADOPT_ALLOW_SSL : 0);
	if (!lws_adopt_descriptor_vhost(L->vh, type, sock, "sio-gateway", NULL)) {
		L->stats.tcp_open--; /* lws closed it */
		atomic_fetch_sub(&L->count->open, 1);
	}
	L->adopt_at_ms = 0;
}

/*
 * Steering (engine.workers, plain TCP). SO_REUSEPORT spreads connections over the loops
 * blindly; a poll, POST or websocket upgrade for a session of another loop would then be
 * relayed to it (bus/relay.h), a websocket for good, frame by frame. Instead the first
 * request line is peeked at (MSG_PEEK: nothing is read), and a connection whose request
 * names another loop's session is passed to that loop before lws sees it. What cannot
 * be steered is served where it landed: TLS, a line that does not come whole in the
 * first segment, later requests of a keep-alive connection for other sessions.
 */
static void hand_over(net_loop *L, net_loop *to, int fd, uint64_t at_ms)
{
	pthread_mutex_lock(&to->hand_lock);
	if (to->n_hand == to->cap_hand) {
		size_t cap = to->cap_hand ? 2 * to->cap_hand : 16;
		handed *h = realloc(to->hand, cap * sizeof *h);
		if (!h) {
			pthread_mutex_unlock(&to->hand_lock);
			adopt(L, fd, at_ms); /* served here: relayed */
			return;
		}
		to->hand = h, to->cap_hand = cap;
	}
	to->hand[to->n_hand++] = (handed){fd, at_ms};
	atomic_store(&to->handed_any, true);
	pthread_mutex_unlock(&to->hand_lock);
	L->stats.steered++;
	net_wake(to);
}

/* The connections other loops passed to L, adopted on its thread. */
static void take_handed(net_loop *L)
{
	if (!atomic_exchange(&L->handed_any, false))
		return;
	pthread_mutex_lock(&L->hand_lock);
	handed *h = L->hand;
	size_t n = L->n_hand;
	L->hand = NULL, L->n_hand = L->cap_hand = 0;
	pthread_mutex_unlock(&L->hand_lock);
	for (size_t i = 0; i < n; i++)
		adopt(L, h[i].fd, h[i].at_ms);
	free(h);
}

/* The request target of the request line in p[0..n) ("GET /x?y HTTP/1.1"), or NULL
 * when it is not there whole. */
static const char *request_target(const char *p, size_t n, size_t *len)
{
	size_t i = 0;
	while (i < n && (p[i] == '\r' || p[i] == '\n')) /* RFC 9112 §2.2: empty lines first */
		i++;
	while (i < n && p[i] != ' ' && p[i] != '\n')
		i++;
	if (i >= n || p[i] != ' ')
		return NULL;
	size_t t = ++i;
	while (i < n && p[i] != ' ' && p[i] != '\r' && p[i] != '\n')
		i++;
	if (i >= n || p[i] != ' ' || i == t)
		return NULL;
	*len = i - t;
	return p + t;
}

/* Serve fd here or on the loop its first request names: true when decided, false when
 * nothing has come yet. */
static bool steer(net_loop *L, int fd, uint64_t at_ms)
{
	char b[1024];
	ssize_t n = recv(fd, b, sizeof b, MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return false;
	size_t tl;
	const char *t = n > 0 ? request_target(b, (size_t)n, &tl) : NULL;
	net_loop *to = t && !L->stop ? L->steer(L->steer_ctx, t, tl) : NULL;
	if (to && to != L)
		hand_over(L, to, fd, at_ms);
	else
		adopt(L, fd, at_ms); /* (an error or the end: lws sees it) */
	return true;
}

static void peek_end(peeking *p)
{
	ev_io_stop(p->L->loop, &p->io);
	gw_timer_stop(p->L->timers, &p->tm);
	gw_dlist_del(&p->L->peeking, &p->link);
	p->L->n_peeking--;
	free(p);
}

static void on_peek(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop, (void)revents;
	peeking *p = w->data;
	p->L->active = true;
	if (steer(p->L, w->fd, p->at_ms))
		peek_end(p);
}

/* Nothing came within the request deadline: net answers it as any slow request. */
static void peek_timeout(gw_timer *t)
{
	peeking *p = t->ctx;
	int fd = p->io.fd;
	net_loop *L = p->L;
	uint64_t at = p->at_ms;
	peek_end(p);
	adopt(L, fd, at);
}

/* New connections on a listening socket: counted against the ceiling (503 beyond it),
 * steered (with several loops), then adopted by lws. */
static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop, (void)revents;
	net_loop *L = w->data;
	L->active = true;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE) {
				uint64_t now = gw_now_ms();
				if (!L->limit_warn_ms || now - L->limit_warn_ms >= 10000) {
					L->limit_warn_ms = now;
					gw_warn("accept: out of file descriptors (ulimit -n)");
				}
			}
			return; /* EAGAIN: all taken; anything else: the next readiness retries */
		}
		if (atomic_fetch_add(&L->count->open, 1) >= L->limit) {
			atomic_fetch_sub(&L->count->open, 1);
			refuse_connection(L, fd);
			close(fd); /* (its dup lingers) */
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		if (!L->steer || L->cfg->tls_cert) {
			adopt(L, fd, 0);
			continue;
		}
		uint64_t now = gw_now_ms();
		if (steer(L, fd, now))
			continue;
		peeking *p = calloc(1, sizeof *p);
		if (!p) {
			adopt(L, fd, now);
			continue;
		}
		p->L = L, p->at_ms = now;
		ev_io_init(&p->io, on_peek, fd, EV_READ);
		p->io.data = p;
		ev_io_start(L->loop, &p->io);
		p->tm.ctx = p;
		gw_timer_start(L->timers, &p->tm, (uint32_t)L->cfg->request_timeout_ms, peek_timeout);
		gw_dlist_add(&L->peeking, &p->link);
		L->n_peeking++;
	}
}

void net_link(net_loop *const *loops, size_t n)
{
	for (size_t i = 1; i < n; i++) { /* the first loop's count is every loop's */
		net_loop *L = loops[i];
		int64_t open = atomic_load(&L->count->open);
		if (atomic_fetch_sub(&L->count->refs, 1) == 1)
			free(L->count);
		L->count = loops[0]->count;
		atomic_fetch_add(&L->count->refs, 1);
		atomic_fetch_add(&L->count->open, open);
	}
}

void net_set_steer(net_loop *L, net_loop *(*fn)(void *ctx, const char *target, size_t len), void *ctx)
{
	L->steer = fn;
	L->steer_ctx = ctx;
}

/* A TCP socket for sa: non-blocking, SO_REUSEADDR, IPv6-only unless dual. -errno. */
static int tcp_socket(const struct sockaddr *sa, bool dual)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1, v6only = !dual;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (sa->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
	return fd;
}

static int listen_one(net_loop *L, const struct sockaddr *sa, socklen_t len, bool dual)
{
	if (L->n_lsn == sizeof L->lsn / sizeof L->lsn[0])
		return 0;
	bool share = L->cfg->engine.workers > 1;
	int fd = tcp_socket(sa, dual);
	if (fd >= 0 && share && L->cfg->loop == 0) {
		/* the first loop binds without SO_REUSEPORT first: a port another process
		 * holds (with SO_REUSEPORT or not) is in use, not silently shared */
		int e = bind(fd, sa, len) ? errno : 0;
		close(fd);
		if (e)
			return -e;
		fd = tcp_socket(sa, dual);
	}
	if (fd < 0)
		return fd;
	int one = 1;
	if (share) /* every loop on the port; the kernel spreads the connections */
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
	if (bind(fd, sa, len) || listen(fd, SOMAXCONN)) {
		int e = errno;
		close(fd);
		return -e;
	}
	size_t i = L->n_lsn++;
	L->lsn[i].fd = fd;
	ev_io_init(&L->lsn[i].io, on_accept, fd, EV_READ);
	L->lsn[i].io.data = L;
	ev_io_start(L->loop, &L->lsn[i].io);
	return 0;
}

/* listen.host: "", "0.0.0.0" or "::" every address (IPv6 with IPv4 mapped, else IPv4),
 * otherwise each address the name has ("localhost": ::1 and 127.0.0.1). 0 or -errno. */
static int listen_all(net_loop *L)
{
	const char *host = L->cfg->listen_host;
	int port = L->cfg->listen_port;
	if (!host || !host[0] || !strcmp(host, "::") || !strcmp(host, "0.0.0.0")) {
		struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port),
					  .sin6_addr = IN6ADDR_ANY_INIT};
		if (strcmp(host ? host : "", "0.0.0.0") && listen_one(L, (struct sockaddr *)&a6, sizeof a6, true) == 0)
			return 0;
		struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
					 .sin_addr = {.s_addr = htonl(INADDR_ANY)}};
		return listen_one(L, (struct sockaddr *)&a4, sizeof a4, false);
	}
	char serv[16];
	snprintf(serv, sizeof serv, "%d", port);
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res;
	if (getaddrinfo(host, serv, &hints, &res))
		return -EADDRNOTAVAIL;
	int rc = -EADDRNOTAVAIL;
	for (struct addrinfo *a = res; a; a = a->ai_next) {
		int r = listen_one(L, a->ai_addr, a->ai_addrlen, false);
		if (r && r != -EADDRNOTAVAIL) { /* (an address this host has not: skipped) */
			rc = r;
			break;
		}
		if (!r)
			rc = 0;
	}
	freeaddrinfo(res);
	return rc;
}

static void conn_open(net_conn *c, struct lws *wsi)
{
	net_loop *L = lws_context_user(lws_get_context(wsi));
	memset(c, 0, sizeof *c);
	c->wsi = wsi;
	c->fd = lws_is_ssl(wsi) ? -1 : lws_get_socket_fd(wsi);
	c->seq = ++L->seq;
	c->h1 = h1_create(&L->limits);
	if (!c->h1) {
		net_close(c);
		return;
	}
	uint64_t ms = (uint64_t)L->cfg->request_timeout_ms, waited = L->adopt_at_ms ? gw_now_ms() - L->adopt_at_ms : 0;
	arm(c, (uint32_t)(waited < ms ? ms - waited : 1)); /* (steering waited for the first line) */
}

static void conn_gone(net_conn *c)
{
	if (c->gone || !c->wsi)
		return;
	net_loop *L = loop_of(c);
	c->gone = true;
	gw_timer_stop(L->timers, &c->tm);
	gw_dlist_del(&L->ready, &c->ready);
	if (c->counted_closing)
		L->n_closing--;
	if (c->user && c->rt && c->rt->ops.on_close)
		c->rt->ops.on_close(c->rt->ctx, c);
	c->user = NULL;
	h1_destroy(c->h1);
	c->h1 = NULL;
	if (c->ws) {
		ws_reader_fini(c->ws);
		free(c->ws);
		c->ws = NULL;
	}
	gw_buf_free(&c->in);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	net_conn *c = user;
	net_loop *L = lws_context_user(lws_get_context(wsi));
	L->active = true; /* traffic (or a bus wake): engine.busy_poll_us keeps polling a while */
	switch (reason) {
	case LWS_CALLBACK_RAW_ADOPT:
		conn_open(c, wsi);
		return LWS_GO_ON;
	case LWS_CALLBACK_RAW_RX:
		if (!c || c->gone || c->kill)
			return LWS_GO_ON;
		if (c->lingering)
			return LWS_GO_ON; /* discarded: we said our last word */
		if (c->mode == MODE_WS)
			ws_input(c, in, len);
		else
			http_input(c, in, len);
		return LWS_GO_ON;
	case LWS_CALLBACK_RAW_WRITEABLE:
		if (!c || c->kill)
			return LWS_HANG_UP;
		if (!lws_partial_buffered(wsi))
			lws_rx_flow_control(wsi, LWS_RXFLOW_REASON_APPLIES_ENABLE | RXFLOW_OUT_BLOCKED);
		if (c->closing) {
			if (!c->lingering)
				linger(c);
			return LWS_GO_ON;
		}
		if (c->user && c->rt && c->rt->ops.on_writeable)
			c->rt->ops.on_writeable(c->rt->ctx, c);
		return LWS_GO_ON;
	case LWS_CALLBACK_RAW_CLOSE:
		if (c)
			conn_gone(c);
		return LWS_GO_ON;
	case LWS_CALLBACK_WSI_DESTROY:
		/* every accepted connection ends here once; the listening socket and the
		 * wake pipe only at shutdown */
		if (c && c->wsi == wsi)
			conn_gone(c);
		if (L->stats.tcp_open > 0 && c) {
			L->stats.tcp_open--;
			atomic_fetch_sub(&L->count->open, 1);
		}
		return LWS_GO_ON;
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		if (L->drain)
			L->drain(L->drain_ctx);
		return LWS_GO_ON;
	default:
		return LWS_GO_ON;
	}
}

static const struct lws_protocols protocols[] = {
	{"sio-gateway", callback, sizeof(net_conn), 4096, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

static void lws_log(int level, const char *line)
{
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	gw_log(level == LLL_ERR ? GW_LOG_ERROR : GW_LOG_WARN, "lws: %.*s", (int)n, line);
}

/*
 * Each loop turn, before the loop waits: read the requests that arrived (or waited for
 * an answer), apply what the bus delivered during the turn (queued by the loop itself,
 * or by a plugin thread that woke it: applied now, its messages join this turn's
 * writes), then the turn hooks (websocket and SSE flushes). Work queued by the drain gets a few more
 * rounds at once.
 */
static void before_wait(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)loop, (void)revents;
	net_loop *L = w->data;
	L->stats.loop_turns++;
	take_handed(L);
	/* answering one request (a held poll released by a flush) can make another
	 * connection's pipelined request readable: a few rounds, then another turn */
	for (int round = 0; round < 4; round++) {
		read_ready(L); /* first: what its requests publish joins this turn's drain */
		for (int i = 0; (L->self_wake || (L->pending && L->pending(L->drain_ctx))) && i < 4; i++) {
			L->self_wake = false;
			if (L->drain)
				L->drain(L->drain_ctx);
		}
		for (size_t i = 0; i < L->n_turn; i++)
			L->turn[i].fn(L->turn[i].ctx);
		if (!L->ready.head)
			break;
	}
	if (L->ready.head)
		L->self_wake = true;
	if (L->self_wake) {
		L->self_wake = false;
		lws_cancel_service(L->ctx);
	}
}

static char *headers_text(const gw_config *cfg)
{
	if (!cfg->engine.n_headers)
		return NULL;
	gw_buf b = {0};
	for (size_t i = 0; i < cfg->engine.n_headers; i++)
		gw_buf_printf(&b, "%s: %s\r\n", cfg->engine.headers[i].key, cfg->engine.headers[i].value);
	size_t n;
	return (char *)gw_buf_steal(&b, &n);
}

net_loop *net_create(const gw_config *cfg)
{
	net_loop *L = calloc(1, sizeof *L);
	if (!L)
		return NULL;
	pthread_mutex_init(&L->lock, NULL);
	pthread_mutex_init(&L->state, NULL);
	pthread_mutex_init(&L->hand_lock, NULL);
	L->cfg = cfg;
	if (!(L->count = calloc(1, sizeof *L->count))) {
		free(L);
		return NULL;
	}
	atomic_init(&L->count->refs, 1);
	L->limits.max_header_bytes = cfg->max_header_bytes ? cfg->max_header_bytes : 16384;
	L->limits.max_body = 1;
	L->common_headers = headers_text(cfg);
	for (size_t i = 0; i < cfg->engine.n_cors_origins; i++)
		L->cors_wildcard |= strcmp(cfg->engine.cors_origins[i], "*") == 0;
	set_connection_limit(L, cfg);
	lws_set_log_level(LLL_ERR | LLL_WARN, lws_log);

	struct lws_context_creation_info info;
	memset(&info, 0, sizeof info);
	/* we listen (listen_all) and hand lws what we accept: lws 4.1 cannot share a port
	 * between loops (its ALLOW_LISTEN_SHARE sets no SO_REUSEPORT) */
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	const char *host = cfg->listen_host;
	info.protocols = protocols;
	info.user = L; /* lws_context_user: each callback finds its loop */
	/* every accepted connection is a raw byte stream of ours (TLS decrypted by lws) */
	info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_LIBEV |
			LWS_SERVER_OPTION_ADOPT_APPLY_LISTEN_ACCEPT_CONFIG;
	info.listen_accept_role = "raw-skt";
	info.listen_accept_protocol = "sio-gateway";
	/* Our own libev loop on epoll; lws attaches its watchers to it. */
	L->loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
	if (L->loop) {
		ev_set_userdata(L->loop, L);
		ev_set_loop_release_cb(L->loop, state_release, state_acquire);
	}
	L->timers = L->loop ? gw_timers_create(L->loop) : NULL;
	L->zlib = ws_zlib_create();
	if (!L->loop || !L->timers || !L->zlib) {
		gw_err("cannot create the event loop (epoll)");
		net_destroy(L);
		return NULL;
	}
	void *loops[] = {L->loop};
	info.foreign_loops = loops;
	if (cfg->tls_cert) {
		info.ssl_cert_filepath = cfg->tls_cert;
		info.ssl_private_key_filepath = cfg->tls_key;
		info.alpn = "http/1.1"; /* the only protocol served here */
	}
	info.timeout_secs = 20;
	static const lws_retry_bo_t no_idle_policy = {0}; /* Engine.IO's heartbeat decides */
	info.retry_and_idle_policy = &no_idle_policy;
	struct lws_context *ctx = lws_create_context(&info);
	if (!ctx) {
		gw_err("cannot serve on %s:%d (bad TLS files?)", host ? host : "0.0.0.0", cfg->listen_port);
		net_destroy(L);
		return NULL;
	}
	pthread_mutex_lock(&L->lock);
	L->ctx = ctx;
	pthread_mutex_unlock(&L->lock);
	L->vh = lws_get_vhost_by_name(ctx, "default");
	int lrc = L->vh ? listen_all(L) : -ENOMEM;
	if (lrc) {
		gw_err("cannot listen on %s:%d: %s", host && host[0] ? host : "0.0.0.0", cfg->listen_port, strerror(-lrc));
		net_destroy(L);
		return NULL;
	}
	ev_prepare_init(&L->prepare, before_wait);
	L->prepare.data = L;
	ev_prepare_start(L->loop, &L->prepare);
	return L;
}

gw_timers *net_timers(net_loop *L) { return L->timers; }

void net_metrics(void *loop, gw_metric_sink *m)
{
	const net_loop *L = loop;
	gw_metric_gauge(m, "sio_tcp_connections", "Accepted TCP connections open (all kinds).", L->stats.tcp_open);
	/* each loop says 1 and its own connections: the page sums them (engine.workers) */
	gw_metric_gauge(m, "sio_workers", "Service loops (engine.workers).", 1);
	char lb[32];
	snprintf(lb, sizeof lb, "loop=\"%d\"", L->cfg->loop);
	m->sample(m, "sio_loop_connections", GW_METRIC_GAUGE, "Accepted TCP connections open, by service loop.", lb,
		  L->stats.tcp_open);
	gw_metric_gauge(m, "sio_tcp_connections_max", "Open connections beyond which new ones are refused.",
			L->stats.tcp_max);
	gw_metric_counter(m, "sio_tcp_refused_total",
			  "Connections refused (503) because sio_tcp_connections_max was reached.", L->stats.tcp_refused);
	gw_metric_counter(m, "sio_loop_steered_total",
			  "Connections passed to the service loop holding the session their first request names (engine.workers).",
			  L->stats.steered);
	gw_metric_counter(m, "sio_loop_turns_total", "Service loop iterations.", L->stats.loop_turns);
	gw_metric_counter(m, "sio_http_requests_total", "HTTP requests served.", L->stats.http_requests);
	gw_metric_counter(m, "sio_http_refused_total",
			  "Requests refused as malformed, oversized or too slow (400, 408, 413, 431, 501, 505; the connection is closed).",
			  L->stats.http_refused);
	gw_metric_counter(m, "sio_http_timeouts_total",
			  "Requests not received whole within listen.request_timeout_ms (408).", L->stats.http_timeouts);
	gw_metric_counter(m, "sio_websocket_protocol_errors_total",
			  "Websockets closed for breaking RFC 6455 (1002 protocol error, 1007 invalid UTF-8, 1009 too big).",
			  L->stats.ws_protocol_errors);
}

void net_run(net_loop *L)
{
	L->thread = pthread_self();
	L->started = true;
	/* engine.busy_poll_us: for that long after the last activity, poll without sleeping
	 * (an idle core that halts, a VM's vCPU especially, takes milliseconds to wake up) */
	uint64_t busy_us = (uint64_t)L->cfg->engine.busy_poll_us, last = 0;
	while (!L->stop) {
		if (busy_us) {
			uint64_t now = gw_now_us();
			if (L->active) {
				L->active = false;
				last = now;
			}
			if (now - last < busy_us) {
				ev_run(L->loop, EVRUN_NOWAIT);
				/* a plugin thread woken on this core runs now */
				sched_yield();
				continue;
			}
		}
		ev_run(L->loop, EVRUN_ONCE);
	}
}

static void drain_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w, (void)revents;
	ev_break(loop, EVBREAK_ONE);
}

void net_drain_output(net_loop *L, uint32_t ms)
{
	/* the last words (close packets, close frames, answers to held polls) were handed
	 * over: let them go out, and the peers close, for at most ms */
	L->stop = 1;
	ev_timer t;
	ev_timer_init(&t, drain_deadline, ms / 1000.0, 0);
	ev_timer_start(L->loop, &t);
	uint64_t end = gw_now_ms() + ms;
	before_wait(L->loop, &L->prepare, 0);
	while (L->n_closing > 0 && gw_now_ms() < end)
		ev_run(L->loop, EVRUN_ONCE);
	ev_timer_stop(L->loop, &t);
}

void net_destroy(net_loop *L)
{
	if (!L)
		return;
	for (size_t i = 0; i < L->n_lsn; i++) {
		ev_io_stop(L->loop, &L->lsn[i].io);
		close(L->lsn[i].fd);
	}
	L->n_lsn = 0;
	while (L->peeking.head) { /* (not adopted: closed here) */
		peeking *p = GW_DLIST_ITEM(L->peeking.head, peeking, link);
		int fd = p->io.fd;
		peek_end(p);
		close(fd);
		atomic_fetch_sub(&L->count->open, 1);
	}
	for (size_t i = 0; i < L->n_hand; i++) {
		close(L->hand[i].fd);
		atomic_fetch_sub(&L->count->open, 1);
	}
	free(L->hand);
	L->n_hand = 0;
	struct lws_context *ctx = L->ctx;
	pthread_mutex_lock(&L->lock);
	L->ctx = NULL;
	pthread_mutex_unlock(&L->lock);
	if (ctx)
		lws_context_destroy(ctx);
	for (gw_dlink *l; (l = gw_dlist_pop(&L->remotes));) /* their owners are gone */
		remote_free(GW_DLIST_ITEM(l, net_remote, live)->c);
	while (L->refused.head)
		refused_end(GW_DLIST_ITEM(L->refused.head, refused, link));
	if (L->loop) {
		ev_prepare_stop(L->loop, &L->prepare);
		gw_timers_destroy(L->timers);
		ev_loop_destroy(L->loop);
	}
	ws_zlib_destroy(L->zlib);
	pthread_mutex_destroy(&L->state);
	pthread_mutex_destroy(&L->hand_lock);
	if (L->count && atomic_fetch_sub(&L->count->refs, 1) == 1)
		free(L->count);
	for (size_t i = 0; i < L->n_routes; i++)
		free(L->routes[i].prefix);
	free(L->common_headers);
	gw_buf_free(&L->out);
	gw_buf_free(&L->pre);
	gw_buf_free(&L->z);
	free(L->rv);
	pthread_mutex_destroy(&L->lock);
	free(L);
}
