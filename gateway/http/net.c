/*
 * net.c — the libwebsockets context, its one protocol callback, and HTTP replies.
 *
 * One vhost on one port serves everything: Engine.IO (polling and websocket) under
 * engine.path, the optional echo endpoint under engine.echo_path, and the HTTP API.
 * The callback only dispatches by path and connection role; the modules do the work.
 */
#include "app.h"
#include "bus/bus.h"
#include "eio/eio_codec.h"
#include "eio/eio_net.h"
#include "http/api.h"
#include "util/err.h"
#include "util/frame.h"
#include "util/log.h"
#include "util/timer.h"

#include <assert.h>
#include <errno.h>
#include <ev.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static_assert(GW_FRAME_HEADROOM >= LWS_PRE, "frames need LWS_PRE bytes of headroom");

/* Plugin threads wake the loop through g_lws: the lock keeps it from being destroyed
 * under them during shutdown. */
static pthread_mutex_t g_lws_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lws_context *volatile g_lws;
static volatile sig_atomic_t g_stop;
static const gw_config *g_cfg;
static struct ev_loop *g_loop; /* the service loop: libev on epoll, lws runs on it */

/* The loop thread, and whether it woke itself (see net_wake) */
static pthread_t g_loop_thread;
static bool g_loop_started, g_self_wake;
static bool g_active; /* engine.busy_poll_us: a callback ran since the loop last looked */
static gw_app *g_app;

void net_wake(void)
{
	/* On the loop thread itself (an inline bus delivery, the drain budget): no
	 * syscall, the work runs before the loop next waits (before_wait). */
	if (g_loop_started && pthread_equal(pthread_self(), g_loop_thread)) {
		g_self_wake = true;
		return;
	}
	pthread_mutex_lock(&g_lws_lock);
	if (g_lws)
		lws_cancel_service(g_lws);
	pthread_mutex_unlock(&g_lws_lock);
}

void net_stop_signal(void)
{
	/* From a signal handler: set the flag, then wake the loop, or a signal landing
	 * just before poll() would wait out poll's whole timeout. No lock here:
	 * lws_cancel_service only writes to the loop's eventfd, and g_lws is cleared
	 * before the context is destroyed. */
	g_stop = 1;
	struct lws_context *ctx = g_lws;
	if (ctx)
		lws_cancel_service(ctx);
}

int net_query_arg(struct lws *wsi, const char *name, char *out, size_t len)
{
	char frag[2048];
	size_t n = strlen(name);
	out[0] = 0;
	int total = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS);
	/* every fragment is at least one byte plus its separator */
	for (int i = 0; total > 0 && i <= total; i++) {
		int fl = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i);
		if (fl <= 0)
			return 0; /* no more fragments */
		if ((size_t)fl >= sizeof frag)
			continue; /* too long to be one of ours */
		if (lws_hdr_copy_fragment(wsi, frag, sizeof frag, WSI_TOKEN_HTTP_URI_ARGS, i) < 0)
			continue;
		if (strncmp(frag, name, n) == 0 && frag[n] == '=') {
			size_t vl = strlen(frag + n + 1);
			if (vl >= len)
				return -1;
			memcpy(out, frag + n + 1, vl + 1);
			return 1;
		}
	}
	return 0;
}

static void unhold(gw_conn *c);

/* ---- replies ---- */

/* Replies (role CONN_REPLY) made in a loop turn are written before that turn's websocket
 * flush, not from a writeable callback after it: a backend's request is answered in the
 * turn that completed it, before the gateway spends the turn writing to its clients. */
static gw_dlist g_replies;

void net_conn_reset(gw_conn *c)
{
	gw_dlist_del(&g_replies, &c->reply_link);
	unhold(c);
	gw_buf_free(&c->body);
	gw_buf_free(&c->out);
	free(c->topic);
	c->topic = NULL;
	c->role = CONN_NONE;
	c->have_reply = false;
	c->preflight = false;
	c->status = 0;
	c->cookie[0] = 0;
	c->body_limit = 0;
}

/*
 * Held requests and hang-ups. lws 4.1 neither reads nor closes an HTTP connection in
 * the middle of a transaction (a held long-poll, an SSE stream): when such a peer
 * hangs up, poll() reports it at once, forever, and the loop spins without telling
 * us. So every held connection is also watched by an epoll set of our own for
 * EPOLLRDHUP/EPOLLHUP; the set's fd is one more watcher on the loop, and a hang-up
 * closes the connection from its next writeable callback (CLOSED_HTTP follows, as for
 * any close).
 */
static int g_hup_fd = -1;
static ev_io g_hup_watch;
static ev_prepare g_flush; /* each loop turn, before waiting */

static void write_replies(void);

/*
 * Each loop turn, before the loop waits: apply what the bus delivered during the turn —
 * queued by the loop itself (net_wake from the loop thread) or by a plugin thread (that
 * woke the loop too, but applied now its messages join this turn's writes instead of
 * waiting a turn) — write the turn's HTTP replies, then every websocket's queued frames
 * (eio_flush). Work queued by that drain gets a few more rounds at once.
 */
static void before_wait(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)loop, (void)w, (void)revents;
	gw_stats.loop_turns++;
	gw_bus *bus = g_app ? g_app->bus : NULL;
	for (int i = 0; (g_self_wake || (bus && gw_bus_pending(bus))) && i < 4; i++) {
		g_self_wake = false;
		if (bus)
			gw_bus_drain(bus);
	}
	write_replies();
	eio_flush();
	if (g_app && g_app->api)
		gw_api_flush(g_app->api);
	if (g_self_wake) {
		g_self_wake = false;
		lws_cancel_service(g_lws);
	}
}

static void unhold(gw_conn *c)
{
	if (!c->held)
		return;
	c->held = false;
	if (g_hup_fd >= 0)
		epoll_ctl(g_hup_fd, EPOLL_CTL_DEL, lws_get_socket_fd(c->wsi), NULL);
}

void net_hold(gw_conn *c)
{
	lws_set_timeout(c->wsi, NO_PENDING_TIMEOUT, 0);
	if (c->held || g_hup_fd < 0)
		return;
	struct epoll_event ev = {.events = EPOLLRDHUP, .data.ptr = c};
	if (epoll_ctl(g_hup_fd, EPOLL_CTL_ADD, lws_get_socket_fd(c->wsi), &ev) == 0)
		c->held = true;
}

int net_send_now(gw_conn *c, uint8_t *p, size_t len, enum lws_write_protocol proto)
{
	size_t off = 0;
	if (c->fd >= 0 && !lws_partial_buffered(c->wsi)) {
		ssize_t n;
		do
			n = send(c->fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		while (n < 0 && errno == EINTR);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		if (n > 0)
			off = (size_t)n;
		if (off == len)
			return 0;
	}
	return lws_write(c->wsi, p + off, len - off, proto) < 0 ? -1 : 1;
}

static void hangups(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop, (void)w, (void)revents;
	struct epoll_event evs[64];
	int n = epoll_wait(g_hup_fd, evs, 64, 0);
	for (int i = 0; i < n; i++) {
		gw_conn *c = evs[i].data.ptr;
		unhold(c);
		/* closed from its writeable callback: a close from here could free a
		 * connection that a later entry of evs still points to */
		c->kill = true;
		lws_callback_on_writable(c->wsi);
	}
}

void net_reply(gw_conn *c, int status, const char *ctype, const void *body, size_t len)
{
	gw_buf_reset(&c->out);
	/* LWS_PRE headroom before the body: lws may write framing there */
	if (gw_buf_reserve(&c->out, LWS_PRE + len) == 0) {
		memset(c->out.data, 0, LWS_PRE);
		c->out.len = LWS_PRE;
		gw_buf_append(&c->out, body, len);
	}
	c->status = status;
	c->ctype = ctype;
	c->have_reply = true;
	if (c->role == CONN_EIO_GET) {
		lws_callback_on_writable(c->wsi); /* the poll's own writeable path */
		return;
	}
	c->role = CONN_REPLY;
	gw_dlist_add(&g_replies, &c->reply_link);
}

static void write_replies(void)
{
	for (gw_dlink *l; (l = gw_dlist_pop(&g_replies));) {
		gw_conn *c = GW_DLIST_ITEM(l, gw_conn, reply_link);
		if (c->kill || c->role != CONN_REPLY)
			continue;
		/* lws keeps what the socket does not take and completes the transaction once
		 * it is out. A failure closes from the writeable callback — on the connection's
		 * user data as it is now: completing the transaction rebinds the protocol, which
		 * replaces it (and leaves none if that allocation failed) */
		struct lws *wsi = c->wsi;
		if (net_write_reply(c) < 0) {
			gw_conn *now = lws_wsi_user(wsi);
			if (now) {
				now->kill = true;
				lws_callback_on_writable(wsi);
			} else {
				lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
			}
		}
	}
}

void net_reply_eio_error(gw_conn *c, int code)
{
	char body[96];
	int n = eio_error_body(code, body, sizeof body);
	if (c->role == CONN_EIO_GET)
		c->role = CONN_REPLY;
	net_reply(c, eio_error_status(code), "application/json", body, n > 0 ? (size_t)n : 0);
}

static bool origin_allowed(const char *origin)
{
	for (size_t i = 0; i < g_cfg->engine.n_cors_origins; i++)
		if (strcmp(g_cfg->engine.cors_origins[i], "*") == 0 ||
		    strcmp(g_cfg->engine.cors_origins[i], origin) == 0)
			return true;
	return false;
}

static int add_hdr(struct lws *wsi, const char *name, const char *value, unsigned char **p,
		   unsigned char *end)
{
	return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
					   (const unsigned char *)value, (int)strlen(value), p, end);
}

int net_add_common_headers(gw_conn *c, unsigned char **p, unsigned char *end)
{
	const gw_config *cfg = g_cfg;
	bool wildcard = false;
	for (size_t i = 0; i < cfg->engine.n_cors_origins; i++)
		wildcard |= strcmp(cfg->engine.cors_origins[i], "*") == 0;
	if (c->origin[0] && origin_allowed(c->origin)) {
		/* credentials forbid "*": echo the origin then */
		const char *allow = wildcard && !cfg->engine.cors_credentials ? "*" : c->origin;
		if (add_hdr(c->wsi, "access-control-allow-origin:", allow, p, end))
			return -1;
		if (!(wildcard && !cfg->engine.cors_credentials) && add_hdr(c->wsi, "vary:", "Origin", p, end))
			return -1;
		if (cfg->engine.cors_credentials &&
		    add_hdr(c->wsi, "access-control-allow-credentials:", "true", p, end))
			return -1;
	}
	for (size_t i = 0; i < cfg->engine.n_headers; i++) {
		char name[256];
		snprintf(name, sizeof name, "%s:", cfg->engine.headers[i].key);
		if (add_hdr(c->wsi, name, cfg->engine.headers[i].value, p, end))
			return -1;
	}
	return 0;
}

static int add_preflight_headers(gw_conn *c, unsigned char **p, unsigned char *end)
{
	char req[512] = "";
	if (add_hdr(c->wsi, "access-control-allow-methods:", "GET,HEAD,PUT,PATCH,POST,DELETE", p, end))
		return -1;
	if (lws_hdr_copy(c->wsi, req, sizeof req, WSI_TOKEN_HTTP_AC_REQUEST_HEADERS) > 0 &&
	    add_hdr(c->wsi, "access-control-allow-headers:", req, p, end))
		return -1;
	return 0;
}

int net_write_reply(gw_conn *c)
{
	if (!c->have_reply)
		return 0;
	size_t body_len = c->out.len > LWS_PRE ? c->out.len - LWS_PRE : 0;
	unsigned char hdr[LWS_PRE + 4096], *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof hdr;
	if (lws_add_http_common_headers(c->wsi, (unsigned)c->status, c->ctype, body_len, &p, end))
		return -1;
	if (net_add_common_headers(c, &p, end))
		return -1;
	if (c->preflight && add_preflight_headers(c, &p, end))
		return -1;
	if (c->cookie[0]) {
		char v[128];
		snprintf(v, sizeof v, "%s=%s; Path=/; HttpOnly; SameSite=Lax",
			 g_cfg->engine.cookie_name ? g_cfg->engine.cookie_name : "io", c->cookie);
		if (add_hdr(c->wsi, "set-cookie:", v, &p, end))
			return -1;
	}
	if (lws_finalize_http_header(c->wsi, &p, end))
		return -1;
	/* headers and a small body in one write (two back-to-back writes make lws ask for
	 * another writeable callback: two more epoll_ctl and a loop turn per reply) */
	if (body_len && body_len <= (size_t)(end - p)) {
		memcpy(p, c->out.data + LWS_PRE, body_len);
		p += body_len;
		body_len = 0;
	}
	if (lws_write(c->wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_HEADERS) != (int)(p - start))
		return -1;
	if (body_len &&
	    lws_write(c->wsi, c->out.data + LWS_PRE, body_len, LWS_WRITE_HTTP_FINAL) != (int)body_len)
		return -1;
	net_conn_reset(c);
	if (lws_http_transaction_completed(c->wsi))
		return -1;
	return 0;
}

/* ---- dispatch ---- */

static bool under(const char *path, const char *prefix)
{
	/* prefix ends with '/': "/socket.io/" matches "/socket.io" and "/socket.io/..." */
	size_t n = strlen(prefix);
	if (n && strncmp(path, prefix, n - 1) == 0 && (path[n - 1] == 0 || path[n - 1] == '/'))
		return true;
	return false;
}

static eio_server *eio_for(gw_app *app, const char *path)
{
	if (app->eio && under(path, eio_server_path(app->eio)))
		return app->eio;
	if (app->echo && under(path, eio_server_path(app->echo)))
		return app->echo;
	return NULL;
}

static void preflight(gw_conn *c)
{
	c->role = CONN_REPLY;
	c->preflight = true;
	net_reply(c, 204, NULL, "", 0);
}

static void conn_bind(gw_conn *c, struct lws *wsi)
{
	c->wsi = wsi;
	c->fd = lws_is_ssl(wsi) ? -1 : lws_get_socket_fd(wsi);
}

static int on_http(gw_app *app, gw_conn *c, struct lws *wsi, const char *path)
{
	net_conn_reset(c);
	conn_bind(c, wsi);
	c->origin[0] = 0;
	lws_hdr_copy(wsi, c->origin, sizeof c->origin, WSI_TOKEN_ORIGIN);
	if (lws_hdr_total_length(wsi, WSI_TOKEN_OPTIONS_URI) > 0) {
		preflight(c);
		return 0;
	}
	eio_server *e = eio_for(app, path);
	if (e)
		return eio_on_http(e, c);
	if (!app->api)
		return -1;
	return gw_api_on_http(app->api, c, path);
}

/* fds kept free for everything that is not a client connection: the listening socket,
 * the loop's epoll and wake fds, logs, plugin sockets (nng, Kafka brokers), dlopen */
#define FD_RESERVE 64

/*
 * Raise the soft fd limit to the hard limit (every connection is one fd) and set the
 * connection ceiling: listen.max_connections, at most what the fd limit allows.
 */
static void set_connection_limit(const gw_config *cfg)
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
	if (cfg->max_connections > by_fds)
		gw_warn("listen.max_connections %d is more than the fd limit %lld allows: using %lld",
			cfg->max_connections, fds, by_fds);
	gw_stats.tcp_max = max;
	gw_info("fd limit %lld: at most %lld concurrent connections%s", fds, max,
		max < by_fds ? " (listen.max_connections)" : "");
}

/*
 * A connection over the ceiling: answer 503 on the raw socket and let lws close it.
 * What the client already sent is read first, or the close would be a reset that can
 * overtake the answer.
 */
static void refuse_connection(int fd)
{
	static uint64_t last_warn_ms;
	static const char reply[] = "HTTP/1.1 503 Service Unavailable\r\n"
				    "Content-Type: application/json\r\n"
				    "Content-Length: 36\r\n"
				    "Retry-After: 5\r\n"
				    "Connection: close\r\n\r\n"
				    "{\"error\":\"connection limit reached\"}";
	static_assert(sizeof "{\"error\":\"connection limit reached\"}" - 1 == 36, "Content-Length");
	char sink[4096];
	while (recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0)
		;
	(void)!send(fd, reply, sizeof reply - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	shutdown(fd, SHUT_WR);
	gw_stats.tcp_refused++;
	uint64_t now = gw_now_ms();
	if (!last_warn_ms || now - last_warn_ms >= 10000) {
		last_warn_ms = now;
		gw_warn("connection limit %lld reached: refusing new connections with 503 (%llu so far; "
			"listen.max_connections, ulimit -n)",
			(long long)gw_stats.tcp_max, (unsigned long long)gw_stats.tcp_refused);
	}
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		    size_t len)
{
	gw_app *app = lws_context_user(lws_get_context(wsi));
	gw_conn *c = user;
	g_active = true; /* traffic (or a bus wake): engine.busy_poll_us keeps polling a while */

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		return on_http(app, c, wsi, in ? (const char *)in : "/");

	case LWS_CALLBACK_HTTP_BODY:
		if (c->role == CONN_EIO_POST)
			return eio_on_http_body(c, in, len);
		if (c->role == CONN_API_POST && app->api)
			return gw_api_on_body(app->api, c, in, len);
		return 0;

	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (c->role == CONN_EIO_POST)
			return eio_on_http_body_done(c);
		if (c->role == CONN_API_POST && app->api)
			return gw_api_on_body_done(app->api, c);
		return 0;

	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (c->kill)
			return -1;
		if (c->role == CONN_API_SSE)
			return app->api ? gw_api_on_writeable(app->api, c) : -1;
		if (c->role == CONN_EIO_GET)
			return eio_on_http_writeable(c);
		return net_write_reply(c);

	case LWS_CALLBACK_CLOSED_HTTP:
		if (c) {
			eio_on_http_closed(c);
			if (c->sse && app->api)
				gw_api_on_closed(app->api, c);
			net_conn_reset(c);
		}
		return 0;

	case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
		/* a new TCP connection, accepted but not yet a wsi; `in` is its fd */
		if (gw_stats.tcp_open >= gw_stats.tcp_max) {
			refuse_connection((int)(intptr_t)in);
			return 1;
		}
		gw_stats.tcp_open++;
		return 0;

	case LWS_CALLBACK_WSI_DESTROY:
		/* every accepted connection ends here once, whatever its role; the listening
		 * socket and the wake pipe only at shutdown */
		if (gw_stats.tcp_open > 0)
			gw_stats.tcp_open--;
		return 0;

	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
		char path[512] = "";
		lws_hdr_copy(wsi, path, sizeof path, WSI_TOKEN_GET_URI);
		eio_server *e = eio_for(app, path);
		return e ? eio_ws_filter(e, wsi) : -1;
	}

	case LWS_CALLBACK_ESTABLISHED: {
		char path[512] = "";
		memset(c, 0, sizeof *c);
		conn_bind(c, wsi);
		lws_hdr_copy(wsi, path, sizeof path, WSI_TOKEN_GET_URI);
		eio_server *e = eio_for(app, path);
		return e ? eio_ws_established(e, c) : -1;
	}

	case LWS_CALLBACK_RECEIVE:
		return eio_ws_receive(c, in, len);

	case LWS_CALLBACK_SERVER_WRITEABLE:
		return eio_ws_writeable(c);

	case LWS_CALLBACK_CLOSED:
		eio_ws_closed(c);
		return 0;

	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		if (app && app->bus)
			gw_bus_drain(app->bus);
		return 0;

	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
	{"sio-gateway", callback, sizeof(gw_conn), 512, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

static const struct lws_extension extensions[] = {
	{"permessage-deflate", lws_extension_callback_pm_deflate,
	 "permessage-deflate; client_no_context_takeover; client_max_window_bits"},
	{NULL, NULL, NULL},
};

static void lws_log(int level, const char *line)
{
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	if (strstr(line, "User code denied connection"))
		return; /* our own refusal of a bad websocket handshake, already answered */
	gw_log(level == LLL_ERR ? GW_LOG_ERROR : GW_LOG_WARN, "lws: %.*s", (int)n, line);
}


int net_start(gw_app *app)
{
	const gw_config *cfg = app->cfg;
	g_cfg = cfg;
	set_connection_limit(cfg);
	lws_set_log_level(LLL_ERR | LLL_WARN, lws_log);

	struct lws_context_creation_info info;
	memset(&info, 0, sizeof info);
	info.port = cfg->listen_port;
	const char *host = cfg->listen_host;
	if (host && strcmp(host, "0.0.0.0") != 0 && strcmp(host, "::") != 0 && host[0])
		info.iface = host;
	if (info.iface && strchr(info.iface, '.'))
		info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	info.protocols = protocols;
	info.user = app;
	info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_LIBEV;
	/* Our own libev loop on epoll (lws's built-in loop is poll(): O(connections) per
	 * iteration); we run it, lws attaches its watchers to it. */
	g_loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
	if (!g_loop) {
		gw_err("cannot create the event loop (epoll)");
		return -GW_EIO;
	}
	void *loops[] = {g_loop};
	info.foreign_loops = loops;
	if (cfg->tls_cert) {
		info.ssl_cert_filepath = cfg->tls_cert;
		info.ssl_private_key_filepath = cfg->tls_key;
	}
	if (cfg->engine.per_message_deflate)
		info.extensions = extensions;
	info.timeout_secs = 20;
	info.keepalive_timeout = 30;
	/* No lws idle/validity policy: Engine.IO's own heartbeat decides when a connection
	 * is dead. lws's default re-files every connection in one sorted timer list on each
	 * frame received (O(connections) per frame: 20 % of the CPU at 10k clients). */
	static const lws_retry_bo_t no_idle_policy = {0};
	info.retry_and_idle_policy = &no_idle_policy;
	app->lws = lws_create_context(&info);
	if (!app->lws) {
		gw_err("cannot listen on %s:%d (port in use, or bad address / TLS files)",
		       host ? host : "0.0.0.0", cfg->listen_port);
		ev_loop_destroy(g_loop);
		g_loop = NULL;
		return -GW_EIO;
	}
	pthread_mutex_lock(&g_lws_lock);
	g_lws = app->lws;
	pthread_mutex_unlock(&g_lws_lock);
	gw_timer_init(g_loop);

	ev_prepare_init(&g_flush, before_wait);
	ev_prepare_start(g_loop, &g_flush);
	g_hup_fd = epoll_create1(EPOLL_CLOEXEC);
	if (g_hup_fd < 0) {
		/* run without the watch (hang-ups then surface at the next write or ping timeout) */
		gw_warn("cannot watch held connections for hang-ups: %s", strerror(errno));
	} else {
		ev_io_init(&g_hup_watch, hangups, g_hup_fd, EV_READ);
		ev_io_start(g_loop, &g_hup_watch);
	}
	return 0;
}

void net_run(gw_app *app)
{
	g_app = app;
	g_loop_thread = pthread_self();
	g_loop_started = true;
	/* engine.busy_poll_us: for that long after the last activity, poll without sleeping
	 * (an idle core that halts, a VM's vCPU especially, takes milliseconds to wake up) */
	uint64_t busy_us = (uint64_t)app->cfg->engine.busy_poll_us, last = 0;
	while (!g_stop) {
		if (busy_us) {
			uint64_t now = gw_now_us();
			if (g_active) {
				g_active = false;
				last = now;
			}
			if (now - last < busy_us) {
				ev_run(g_loop, EVRUN_NOWAIT);
				/* a plugin thread woken on this core runs now, not when the
				 * scheduler next preempts a loop that never sleeps */
				sched_yield();
				continue;
			}
		}
		ev_run(g_loop, EVRUN_ONCE);
	}
	g_loop_started = false;
}

void net_destroy(gw_app *app)
{
	if (!app->lws)
		return;
	pthread_mutex_lock(&g_lws_lock);
	g_lws = NULL;
	pthread_mutex_unlock(&g_lws_lock);
	lws_context_destroy(app->lws);
	ev_prepare_stop(g_loop, &g_flush);
	if (g_hup_fd >= 0) {
		ev_io_stop(g_loop, &g_hup_watch);
		close(g_hup_fd);
		g_hup_fd = -1;
	}
	app->lws = NULL;
	gw_timer_init(NULL);
	ev_loop_destroy(g_loop);
	g_loop = NULL;
}
