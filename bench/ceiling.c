/*
 * ceiling.c — the physical ceiling for fan-out on this machine: a bare epoll
 * websocket server, one thread, no library, that does the least work a fan-out
 * server can do.
 *
 *   ceiling --port P [--host 127.0.0.1] [--per-frame]
 *
 * It speaks just enough for bench/loadgen (and any Socket.IO client that uses
 * websocket only and needs nothing but events):
 *   GET ...?transport=websocket (Upgrade) → 101 and the Engine.IO open packet;
 *       "40" / "40/nsp," from the client → "40{"sid":...}"; nothing else is parsed.
 *       No pings are sent (a bench run is shorter than any ping interval).
 *   POST /api/publish?topic=...  body: an emit envelope, as for the gateway's HTTP API
 *       ({"type":"emit","nsp":"/","event":"e","data":[...]}). The Socket.IO packet
 *       42["e",...] is built once, framed once, and that one prebuilt websocket frame
 *       is written to every connected client. By default the frames of one epoll turn
 *       (every publish read in one epoll_wait round) are written to each client with
 *       one write(), as a server that coalesces per connection does; --per-frame
 *       writes each frame to each client with its own write() at once. The part that
 *       does not fit the socket buffer waits in a per-client buffer for EPOLLOUT.
 *       Rooms, except and acks are ignored.
 *   GET /healthz → 200.
 * On SIGINT/SIGTERM it prints what it did to stderr and exits 0.
 */
#include "benchlib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum kind { K_HTTP, K_WS };

typedef struct {
	int fd;
	uint8_t kind;
	bool ready; /* joined a namespace: receives broadcasts */
	bool want_out;
	unsigned slot; /* index in g_ws while ready */
	char *in;
	size_t in_len, in_cap;
	uint8_t *out;
	size_t out_len, out_off;
} conn;

static volatile sig_atomic_t g_stop;
static int g_ep = -1;
static conn **g_byfd;
static size_t g_nfd;
static conn **g_ws;
static size_t g_nws;
static unsigned long long g_sid;
static bool g_per_frame;
static uint8_t *g_turn; /* the frames published in this epoll turn, back to back */
static size_t g_turn_len, g_turn_cap, g_turn_frames;
static struct {
	unsigned long long accepted, events, frames, writes, partial, bytes, max_clients;
} S;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q) {
		fprintf(stderr, "ceiling: out of memory\n");
		exit(2);
	}
	return q;
}

static void ep_mod(conn *c, bool out)
{
	struct epoll_event ev;
	memset(&ev, 0, sizeof ev);
	ev.events = EPOLLIN | (out ? EPOLLOUT : 0u);
	ev.data.fd = c->fd;
	epoll_ctl(g_ep, EPOLL_CTL_MOD, c->fd, &ev);
	c->want_out = out;
}

static void conn_close(conn *c)
{
	if (c->ready) {
		g_ws[c->slot] = g_ws[--g_nws];
		g_ws[c->slot]->slot = c->slot;
	}
	g_byfd[c->fd] = NULL;
	close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
}

/* Returns false when the connection was closed. */
static bool conn_flush(conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
		S.writes++;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			conn_close(c);
			return false;
		}
		c->out_off += (size_t)n;
	}
	bool pending = c->out_off < c->out_len;
	if (!pending)
		c->out_off = c->out_len = 0;
	if (pending != c->want_out)
		ep_mod(c, pending);
	return true;
}

static bool conn_send(conn *c, const void *data, size_t len)
{
	if (!c->out_len) {
		ssize_t n = write(c->fd, data, len);
		S.writes++;
		if (n == (ssize_t)len)
			return true;
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			conn_close(c);
			return false;
		}
		S.partial++;
		if (n > 0) {
			data = (const uint8_t *)data + n;
			len -= (size_t)n;
		}
	}
	c->out = xrealloc(c->out, c->out_len + len);
	memcpy(c->out + c->out_len, data, len);
	c->out_len += len;
	return conn_flush(c);
}

/* Write the frames of this turn to every client, one write() each. */
static void write_turn(void)
{
	if (!g_turn_len)
		return;
	/* conn_send may close a client, which moves the last one into its slot */
	for (size_t i = 0; i < g_nws;) {
		conn *c = g_ws[i];
		if (conn_send(c, g_turn, g_turn_len)) {
			S.frames += g_turn_frames;
			S.bytes += g_turn_len;
		}
		if (i < g_nws && g_ws[i] == c)
			i++;
	}
	g_turn_len = 0;
	g_turn_frames = 0;
}

/* A server frame (unmasked) around payload, into out; returns its length. */
static size_t ws_frame(uint8_t *out, int opcode, const void *payload, size_t len)
{
	size_t h = 0;
	out[h++] = (uint8_t)(0x80 | opcode);
	if (len < 126) {
		out[h++] = (uint8_t)len;
	} else if (len < 65536) {
		out[h++] = 126;
		out[h++] = (uint8_t)(len >> 8);
		out[h++] = (uint8_t)len;
	} else {
		out[h++] = 127;
		for (int i = 7; i >= 0; i--)
			out[h++] = (uint8_t)((uint64_t)len >> (8 * i));
	}
	memcpy(out + h, payload, len);
	return h + len;
}

static bool ws_send_text(conn *c, const char *s, size_t len)
{
	uint8_t *f = xrealloc(NULL, len + 10);
	size_t n = ws_frame(f, 0x1, s, len);
	bool ok = conn_send(c, f, n);
	free(f);
	return ok;
}

static bool http_reply(conn *c, int status, const char *body)
{
	char buf[512];
	int n = snprintf(buf, sizeof buf,
			 "HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %zu\r\n\r\n%s", status,
			 status == 200 ? "OK" : status == 404 ? "Not Found" : "Bad Request", strlen(body), body);
	return conn_send(c, buf, (size_t)n);
}

static const char *find_key(const char *p, const char *end, const char *key)
{
	size_t kl = strlen(key);
	const char *q = p < end ? memmem(p, (size_t)(end - p), key, kl) : NULL;
	return q ? q + kl : NULL;
}

static const char *json_value_end(const char *p, const char *end)
{
	int depth = 0;
	bool str = false;
	for (; p < end; p++) {
		if (str) {
			if (*p == '\\')
				p++;
			else if (*p == '"')
				str = false;
		} else if (*p == '"') {
			str = true;
		} else if (*p == '[' || *p == '{') {
			depth++;
		} else if ((*p == ']' || *p == '}') && --depth == 0) {
			return p + 1;
		}
	}
	return NULL;
}

/* The broadcast: one packet, one frame, written to every client. */
static bool publish(const char *body, size_t len)
{
	const char *end = body + len;
	const char *ev = find_key(body, end, "\"event\":\"");
	const char *data = find_key(body, end, "\"data\":[");
	const char *nsp = find_key(body, end, "\"nsp\":\"");
	if (!ev || !data)
		return false;
	const char *ev_end = memchr(ev, '"', (size_t)(end - ev));
	const char *data_end = json_value_end(data - 1, end);
	const char *nsp_end = nsp ? memchr(nsp, '"', (size_t)(end - nsp)) : NULL;
	if (!ev_end || !data_end)
		return false;
	size_t nl = nsp_end && !(nsp_end - nsp == 1 && *nsp == '/') ? (size_t)(nsp_end - nsp) : 0;
	size_t inner = (size_t)(data_end - 1 - data), el = (size_t)(ev_end - ev);
	char *pkt = xrealloc(NULL, nl + el + inner + 16);
	size_t pl = 0;
	pkt[pl++] = '4';
	pkt[pl++] = '2';
	if (nl) {
		memcpy(pkt + pl, nsp, nl);
		pl += nl;
		pkt[pl++] = ',';
	}
	pkt[pl++] = '[';
	pkt[pl++] = '"';
	memcpy(pkt + pl, ev, el);
	pl += el;
	pkt[pl++] = '"';
	if (inner) {
		pkt[pl++] = ',';
		memcpy(pkt + pl, data, inner);
		pl += inner;
	}
	pkt[pl++] = ']';
	uint8_t *frame = xrealloc(NULL, pl + 10);
	size_t fl = ws_frame(frame, 0x1, pkt, pl);
	free(pkt);
	S.events++;
	if (g_turn_len + fl > g_turn_cap) {
		g_turn_cap = (g_turn_len + fl) * 2;
		g_turn = xrealloc(g_turn, g_turn_cap);
	}
	memcpy(g_turn + g_turn_len, frame, fl);
	g_turn_len += fl;
	g_turn_frames++;
	free(frame);
	if (g_per_frame)
		write_turn();
	return true;
}

/* Returns false when the connection was closed. */
static bool ws_message(conn *c, const char *p, size_t len)
{
	if (len >= 2 && p[0] == '4' && p[1] == '0' && !c->ready) {
		char reply[512];
		size_t nl = 0;
		if (len > 2 && p[2] == '/') {
			const char *comma = memchr(p + 2, ',', len - 2);
			nl = comma ? (size_t)(comma - (p + 2)) : len - 2;
			if (nl > 200)
				nl = 200;
		}
		int n = snprintf(reply, sizeof reply, "40%.*s%s{\"sid\":\"s%llu\"}", (int)nl, p + 2, nl ? "," : "",
				 ++g_sid);
		c->ready = true;
		c->slot = (unsigned)g_nws;
		g_ws[g_nws++] = c;
		if (g_nws > S.max_clients)
			S.max_clients = g_nws;
		return ws_send_text(c, reply, (size_t)n);
	}
	return true;
}

/* Client frames (masked). Returns bytes consumed, or -1 when closed. */
static ssize_t ws_parse(conn *c, uint8_t *b, size_t len)
{
	size_t off = 0;
	while (len - off >= 2) {
		uint8_t *f = b + off;
		int op = f[0] & 0x0f;
		bool masked = f[1] & 0x80;
		uint64_t pl = f[1] & 0x7f;
		size_t h = 2;
		if (pl == 126) {
			if (len - off < 4)
				break;
			pl = (uint64_t)f[2] << 8 | f[3];
			h = 4;
		} else if (pl == 127) {
			if (len - off < 10)
				break;
			pl = 0;
			for (int i = 0; i < 8; i++)
				pl = pl << 8 | f[2 + i];
			h = 10;
		}
		if (masked)
			h += 4;
		if (pl > (1u << 20)) {
			conn_close(c);
			return -1;
		}
		if (len - off < h + pl)
			break;
		uint8_t *p = f + h;
		if (masked)
			for (uint64_t i = 0; i < pl; i++)
				p[i] ^= f[h - 4 + (i & 3)];
		off += h + (size_t)pl;
		if (op == 0x8) {
			conn_close(c);
			return -1;
		}
		if (op == 0x9) {
			uint8_t pong[140];
			if (pl <= 125 && !conn_send(c, pong, ws_frame(pong, 0xA, p, (size_t)pl)))
				return -1;
		} else if (op == 0x1) {
			if (!ws_message(c, (const char *)p, (size_t)pl))
				return -1;
		}
	}
	return (ssize_t)off;
}

/* HTTP requests: the upgrade, publish, healthz. Returns bytes consumed, or -1. */
static ssize_t http_parse(conn *c, const char *in, size_t len)
{
	char *e = memmem(in, len, "\r\n\r\n", 4);
	if (!e) {
		if (len > 16384) {
			conn_close(c);
			return -1;
		}
		return 0;
	}
	size_t hl = (size_t)(e - in) + 4, vl;
	const char *key = bl_http_header(in, hl, "Sec-WebSocket-Key", &vl);
	if (!strncmp(in, "GET ", 4) && key) {
		char accept[29];
		bl_ws_accept(key, vl, accept);
		static const char open_pkt[] = "0{\"sid\":\"ceiling\",\"upgrades\":[],\"pingInterval\":25000,"
					       "\"pingTimeout\":20000,\"maxPayload\":1000000}";
		char resp[512];
		int n = snprintf(resp, sizeof resp,
				 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
				 "Sec-WebSocket-Accept: %s\r\n\r\n",
				 accept);
		n += (int)ws_frame((uint8_t *)resp + n, 0x1, open_pkt, sizeof open_pkt - 1);
		c->kind = K_WS;
		if (!conn_send(c, resp, (size_t)n))
			return -1;
		return (ssize_t)hl;
	}
	if (!strncmp(in, "POST /api/publish", 17)) {
		const char *cl = bl_http_header(in, hl, "Content-Length", &vl);
		size_t body = cl ? strtoul(cl, NULL, 10) : 0;
		if (len < hl + body)
			return 0;
		bool ok = publish(in + hl, body); /* writes only to websocket clients, never closes c */
		if (!http_reply(c, ok ? 200 : 400, ok ? "{\"ok\":true}" : "{\"error\":\"not an emit envelope\"}"))
			return -1;
		return (ssize_t)(hl + body);
	}
	if (!strncmp(in, "GET /healthz", 12))
		return http_reply(c, 200, "{\"ok\":true}") ? (ssize_t)hl : -1;
	return http_reply(c, 404, "{\"error\":\"not found\"}") ? (ssize_t)hl : -1;
}

static void conn_readable(conn *c)
{
	if (c->in_cap - c->in_len < 65536) {
		c->in_cap = c->in_cap * 2 + 65536;
		c->in = xrealloc(c->in, c->in_cap);
	}
	ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len - 1);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(c);
		return;
	}
	c->in_len += (size_t)n;
	c->in[c->in_len] = '\0';
	size_t off = 0;
	for (;;) {
		ssize_t used;
		if (c->kind == K_HTTP) {
			used = http_parse(c, c->in + off, c->in_len - off);
			if (used < 0)
				return;
		} else {
			used = ws_parse(c, (uint8_t *)c->in + off, c->in_len - off);
			if (used < 0)
				return;
		}
		if (used == 0)
			break;
		off += (size_t)used;
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
	if (!c->in_len) { /* an idle connection holds no buffer: its RSS is the floor */
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
	}
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1";
	int port = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--port") && i + 1 < argc)
			port = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--host") && i + 1 < argc)
			host = argv[++i];
		else if (!strcmp(argv[i], "--per-frame"))
			g_per_frame = true;
		else {
			fprintf(stderr, "usage: ceiling --port P [--host 127.0.0.1] [--per-frame]\n");
			return 2;
		}
	}
	if (port <= 0 || port > 65535) {
		fprintf(stderr, "usage: ceiling --port P [--host 127.0.0.1] [--per-frame]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	g_nfd = (size_t)bl_raise_nofile();
	g_byfd = calloc(g_nfd, sizeof *g_byfd);
	g_ws = calloc(g_nfd, sizeof *g_ws);
	if (!g_byfd || !g_ws)
		return 2;

	int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &a.sin_addr) != 1 || bind(ls, (struct sockaddr *)&a, sizeof a) != 0 ||
	    listen(ls, 4096) != 0) {
		fprintf(stderr, "ceiling: cannot listen on %s:%d: %s\n", host, port, strerror(errno));
		return 1;
	}
	g_ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev;
	memset(&ev, 0, sizeof ev);
	ev.events = EPOLLIN;
	ev.data.fd = ls;
	epoll_ctl(g_ep, EPOLL_CTL_ADD, ls, &ev);
	fprintf(stderr, "ceiling: listening on %s:%d (fd limit %zu)\n", host, port, g_nfd);

	struct epoll_event evs[1024];
	while (!g_stop) {
		int n = epoll_wait(g_ep, evs, 1024, 200);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == ls) {
				for (;;) {
					int cfd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
					if (cfd < 0)
						break;
					if ((size_t)cfd >= g_nfd) {
						close(cfd);
						continue;
					}
					setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
					conn *c = calloc(1, sizeof *c);
					if (!c) {
						close(cfd);
						continue;
					}
					c->fd = cfd;
					g_byfd[cfd] = c;
					S.accepted++;
					struct epoll_event cev;
					memset(&cev, 0, sizeof cev);
					cev.events = EPOLLIN;
					cev.data.fd = cfd;
					epoll_ctl(g_ep, EPOLL_CTL_ADD, cfd, &cev);
				}
				continue;
			}
			conn *c = g_byfd[fd];
			if (!c)
				continue;
			if ((evs[i].events & EPOLLOUT) && !conn_flush(c))
				continue;
			if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
				conn_readable(c);
		}
		write_turn();
	}
	fprintf(stderr,
		"ceiling: %llu connections accepted, at most %llu clients, %llu events, %llu frames (%llu bytes) "
		"in %llu write() calls, %llu partial\n",
		S.accepted, S.max_clients, S.events, S.frames, S.bytes, S.writes, S.partial);
	for (size_t fd = 0; fd < g_nfd; fd++)
		if (g_byfd[fd])
			conn_close(g_byfd[fd]);
	free(g_byfd);
	free(g_ws);
	free(g_turn);
	close(ls);
	close(g_ep);
	return 0;
}
