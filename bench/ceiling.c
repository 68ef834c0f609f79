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
 *       Except and acks are ignored.
 *   Rooms, for bench/loadgen rooms (the floor of many small rooms): a join envelope
 *       ({"type":"join","rooms":["s1","s2"],"join":"r7"}) puts those clients (by the sid
 *       this server gave them) in room r7; an emit with "rooms":["r7"] is framed once and
 *       queued to that room's members only, and each member's frames of one epoll turn
 *       go out with one write() (--per-frame: at once). An NDJSON body
 *       (application/x-ndjson) holds one envelope per line, answered
 *       {"published":N,"failed":M}.
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
	unsigned long long sid; /* "s<sid>" */
	bool dirty;             /* on g_dirty: room frames queued in rq this turn */
	uint8_t *rq;
	size_t rq_len, rq_cap, rq_frames;
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
/* rooms: clients by sid number, rooms by number ("r<n>"), the clients with room frames
 * this turn */
static conn **g_bysid;
static size_t g_bysid_cap;
typedef struct {
	conn **m;
	size_t n, cap;
} room;
static room *g_rooms;
static size_t g_nrooms;
static conn **g_dirty;
static size_t g_ndirty, g_dirty_cap;

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
	if (c->sid && c->sid < g_bysid_cap)
		g_bysid[c->sid] = NULL;
	for (size_t r = 0; r < g_nrooms; r++) /* (a bench closes clients at its end only) */
		for (size_t i = 0; i < g_rooms[r].n; i++)
			if (g_rooms[r].m[i] == c)
				g_rooms[r].m[i] = g_rooms[r].m[--g_rooms[r].n];
	for (size_t i = 0; i < g_ndirty; i++)
		if (g_dirty[i] == c)
			g_dirty[i] = NULL;
	free(c->rq);
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

/* Each client's room frames of this turn, one write() each. */
static void write_rooms(void)
{
	for (size_t i = 0; i < g_ndirty; i++) {
		conn *c = g_dirty[i];
		if (!c)
			continue; /* closed meanwhile */
		c->dirty = false;
		size_t len = c->rq_len, frames = c->rq_frames;
		c->rq_len = c->rq_frames = 0;
		if (conn_send(c, c->rq, len)) {
			S.frames += frames;
			S.bytes += len;
		}
	}
	g_ndirty = 0;
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

/* "r<n>" or "s<n>" at p (a JSON string's content): n, or -1. */
static long long name_num(const char *p, const char *end, char kind)
{
	if (p >= end || *p != kind)
		return -1;
	char *e;
	long long n = strtoll(p + 1, &e, 10);
	return e > p + 1 && e < end && *e == '"' && n >= 0 && n < (1ll << 24) ? n : -1;
}

static room *room_at(long long n)
{
	if ((size_t)n >= g_nrooms) {
		size_t cap = (size_t)n + 1024;
		g_rooms = xrealloc(g_rooms, cap * sizeof *g_rooms);
		memset(g_rooms + g_nrooms, 0, (cap - g_nrooms) * sizeof *g_rooms);
		g_nrooms = cap;
	}
	return &g_rooms[n];
}

/* {"type":"join","rooms":["s1",...],"join":"r7"}: those clients into r7. */
static bool join(const char *body, const char *end)
{
	const char *to = find_key(body, end, "\"join\":\"");
	const char *ids = find_key(body, end, "\"rooms\":[");
	long long rn = to ? name_num(to, end, 'r') : -1;
	if (rn < 0 || !ids)
		return false;
	room *r = room_at(rn);
	const char *ids_end = memchr(ids, ']', (size_t)(end - ids));
	for (const char *p = ids; p && ids_end && p < ids_end; p = memchr(p, ',', (size_t)(ids_end - p)), p = p ? p + 1 : NULL) {
		const char *q = memchr(p, '"', (size_t)(ids_end - p));
		long long sn = q ? name_num(q + 1, end, 's') : -1;
		conn *c = sn >= 0 && (size_t)sn < g_bysid_cap ? g_bysid[sn] : NULL;
		if (!c)
			continue;
		bool in = false;
		for (size_t i = 0; i < r->n && !in; i++)
			in = r->m[i] == c;
		if (in)
			continue;
		if (r->n == r->cap) {
			r->cap = r->cap ? 2 * r->cap : 4;
			r->m = xrealloc(r->m, r->cap * sizeof *r->m);
		}
		r->m[r->n++] = c;
	}
	return true;
}

/* The frame queued to room rn's members (written at the turn's end). */
static void emit_room(long long rn, const uint8_t *frame, size_t fl)
{
	if ((size_t)rn >= g_nrooms)
		return;
	room *r = &g_rooms[rn];
	for (size_t i = 0; i < r->n; i++) {
		conn *c = r->m[i];
		if (c->rq_len + fl > c->rq_cap) {
			c->rq_cap = (c->rq_len + fl) * 2;
			c->rq = xrealloc(c->rq, c->rq_cap);
		}
		memcpy(c->rq + c->rq_len, frame, fl);
		c->rq_len += fl;
		c->rq_frames++;
		if (!c->dirty) {
			c->dirty = true;
			if (g_ndirty == g_dirty_cap) {
				g_dirty_cap = g_dirty_cap ? 2 * g_dirty_cap : 1024;
				g_dirty = xrealloc(g_dirty, g_dirty_cap * sizeof *g_dirty);
			}
			g_dirty[g_ndirty++] = c;
		}
	}
	if (g_per_frame)
		write_rooms();
}

/* The broadcast: one packet, one frame, written to every client (or to one room's
 * members). */
static bool publish(const char *body, size_t len)
{
	const char *end = body + len;
	if (find_key(body, end, "\"type\":\"join\""))
		return join(body, end);
	const char *rooms = find_key(body, end, "\"rooms\":[\"");
	long long rn = rooms ? name_num(rooms, end, 'r') : -1;
	if (rooms && rn < 0)
		return false;
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
	if (rooms) {
		emit_room(rn, frame, fl);
		free(frame);
		return true;
	}
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
		c->sid = g_sid;
		if (g_sid >= g_bysid_cap) {
			size_t cap = g_bysid_cap ? 2 * g_bysid_cap : 65536;
			g_bysid = xrealloc(g_bysid, cap * sizeof *g_bysid);
			memset(g_bysid + g_bysid_cap, 0, (cap - g_bysid_cap) * sizeof *g_bysid);
			g_bysid_cap = cap;
		}
		g_bysid[g_sid] = c;
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
		const char *ct = bl_http_header(in, hl, "Content-Type", &vl);
		if (ct && vl >= 20 && !strncmp(ct, "application/x-ndjson", 20)) { /* one envelope a line */
			unsigned long long okn = 0, bad = 0;
			for (const char *p = in + hl, *bend = in + hl + body; p < bend;) {
				const char *nl = memchr(p, '\n', (size_t)(bend - p));
				const char *le = nl ? nl : bend;
				if (le > p && publish(p, (size_t)(le - p)))
					okn++;
				else if (le > p)
					bad++;
				p = le + 1;
			}
			char r[96];
			snprintf(r, sizeof r, "{\"published\":%llu,\"failed\":%llu}", okn, bad);
			if (!http_reply(c, 200, r))
				return -1;
			return (ssize_t)(hl + body);
		}
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
		write_rooms();
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
	for (size_t r = 0; r < g_nrooms; r++)
		free(g_rooms[r].m);
	free(g_rooms);
	free(g_bysid);
	free(g_dirty);
	close(ls);
	close(g_ep);
	return 0;
}
