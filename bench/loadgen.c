/*
 * loadgen.c — the bench load generator: N Socket.IO v5 clients over websocket
 * (Engine.IO v4), one thread, one epoll set.
 *
 *   loadgen connect --port P --clients N [--rss-pid PID --rss-at 0,1000,10000] [--hold S]
 *   loadgen fanout  --port P --clients N --events E [--size B] [--window W]
 *   loadgen ack     --port P --clients N [--duration S] [--backend sse]
 *   loadgen rooms   --port P --clients N --room-size K --events E [--rate R] [--via http|node|nng]
 *   loadgen events  --port P --clients N [--duration S] [--events E] [--rate R] [--window W]
 *   loadgen wait    --port P [--timeout S]          (GET /healthz until 200)
 *
 * It shares no code with the gateway (its own HTTP upgrade, websocket framing with
 * client masking, Engine.IO/Socket.IO text parsing), so a bug in one cannot hide in
 * the other. It answers pings, joins a namespace, counts events, and:
 *   connect: opens N clients (at most --concurrency handshakes in flight), reports the
 *            connect rate and, with --rss-pid, the server's RSS at each --rss-at count
 *            (after --settle seconds of quiet); then holds them --hold seconds (-1: until
 *            SIGINT/SIGTERM/SIGUSR1).
 *   fanout:  the loadgen itself is the publishing backend: it POSTs E emit envelopes,
 *            one per event, to --publish-path (default /api/publish?topic=sio.out, the
 *            gateway's HTTP API; bench/node-server.js and bench/ceiling serve the same
 *            path) over --posters keep-alive connections, keeping at most --window events
 *            in flight (published but not yet delivered to every client). Each event
 *            carries the publish time (CLOCK_MONOTONIC ns, as a JSON string so that no
 *            JSON number rounding touches it); latency = receipt time - publish time.
 *   ack:     every client keeps one event with an ack in flight ("echo"), for --duration
 *            seconds; RTT is measured from the client's send time. With --interval MS a
 *            client starts its next request MS ms after the previous one started (paced
 *            load: latency at a known request rate) instead of as soon as the answer is
 *            in (closed loop: the most requests/s). With --backend sse the
 *            loadgen is also the backend: it reads GET /api/subscribe?topic=sio.in (SSE)
 *            and POSTs {"type":"ack",...} to each event's reply_to topic (the memory bus
 *            path of the gateway). Without it the server must answer by itself (node).
 *   rooms:   many small rooms, many emits. Client i is in room r<i/K> (N/K rooms). Once
 *            all are connected, the loadgen (as the backend) publishes one join envelope
 *            per room ({"type":"join","rooms":[<the members' sids from their CONNECT
 *            replies>],"join":"r7"}), then a sentinel emit "sync" to each room, and waits
 *            until every member got its room's sentinel (rooms still missing one get their
 *            join and sentinel again, up to 5 times). Then two measured runs of emits to
 *            uniformly random rooms, each {"t":"<publish ns>","s":<seq>,"r":<room>,"p":pad}:
 *            "max" (--events E, at most --window emits' deliveries outstanding; what is
 *            missing for 500 ms is written off as lost so loss cannot stall it; --window 0:
 *            open loop) and "paced" (--paced-events at --rate R/s, open loop on a schedule).
 *            Every client checks each emit is for its room and counts it once per member
 *            (a bit per member: duplicates are counted, not delivered); lost = expected
 *            deliveries - received. An emit is complete when all its room's members got it;
 *            emits/s = complete emits / (first publish .. last delivery).
 *            Publishers (--via): http|node POST /api/publish?topic=sio.out, --batch B
 *            envelopes per request as NDJSON (Content-Type application/x-ndjson; the
 *            reply's "failed" count is counted as publish errors) or, with --batch 1, one
 *            plain JSON envelope per request, over --posters keep-alive connections; nng
 *            (when built with libnng): "sio.out <json>" frames on a PUB socket that dials
 *            --nng-url (the gateway's nng receive_listen). With --hop the target is
 *            bench/nng_hop (no clients: its GET /stats gives what arrived and the latency).
 *            kafka (when built with librdkafka): produced to sio.out under one key (one
 *            partition: in order) through --kafka-brokers (the mock cluster of compare.sh).
 *   events:  the clients are the load: every client sends socket.io EVENT packets
 *            42["ev",{"t":"<ns>","s":<seq>,"p":pad}] (--size bytes each) for --duration
 *            seconds or until --events were sent in all, as fast as its socket takes them
 *            (--burst frames per write(); a client whose socket is full waits for EPOLLOUT,
 *            so TCP is the only flow control: the loadgen sleeps when the server is the
 *            bottleneck), or at --rate R events/s in all (round robin over the clients).
 *            --window W: each event asks for an ack (42<id>[...]) and a client keeps at most
 *            W unacked (a namespace with ack: broker acks once the bus stored the event:
 *            the ack RTT is client -> stored). --metric NAME (up to 8): counters read from
 *            the server's /metrics before, when sending stops and after; the first one
 *            (e.g. siogw_kafka_delivered_total) is waited for until it grew by the events
 *            sent (or made no progress for --drain s): its rate is the "stored" rate.
 *   fanout --pipe PATH: the publisher is a librdkafka backend (tests/helpers/kafka_backend)
 *            reading JSON lines on PATH (a fifo): {"op":"produce","topic":"sio.out",
 *            "key":"bench","value":<emit envelope>}; before measuring, "warm" emits every
 *            100 ms until every client got one (the bus consumer is fetching). --rate R:
 *            open loop at R emits/s (latency at a known load) instead of --window.
 *
 * Output: one JSON line on stdout (machine-readable), a human summary on stderr.
 * It raises its own fd limit to the hard limit, and spreads clients over several
 * loopback source addresses (127.0.0.1..k, --src-addrs; automatic above 25,000
 * clients) so that one address's ~28k ephemeral ports are not the ceiling.
 */
#include "benchlib.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <unistd.h>

#ifdef LOADGEN_KAFKA /* rooms --via kafka: a librdkafka producer (bench/meson.build, when found) */
#include <librdkafka/rdkafka.h>
#endif
#ifdef LOADGEN_NNG /* rooms --via nng: a PUB socket (bench/meson.build defines it when libnng is found) */
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <stdatomic.h>
#endif

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum mode { M_CONNECT, M_FANOUT, M_ACK, M_ROOMS, M_WAIT, M_EVENTS };
enum via { VIA_HTTP, VIA_NODE, VIA_NNG, VIA_KAFKA };

static struct {
	enum mode mode;
	const char *host;
	int port;
	const char *path;
	const char *nsp;
	const char *label;
	const char *tag; /* --tag: copied into the JSON line (compare.sh names variants) */
	const char *token;
	const char *publish_path;
	const char *event;
	const char *in_topic;
	unsigned clients, concurrency, src_addrs, events, size, window, posters;
	double connect_timeout, duration, hold, settle, idle_timeout, timeout;
	double interval_ms; /* ack: a client's requests start at most this often (0: back to back) */
	bool busy_poll;     /* ack: never sleep in epoll_wait (the loadgen's own core never halts) */
	uint64_t rss_at[16];
	size_t n_rss_at;
	pid_t server_pid;
	bool backend_sse;
	/* rooms */
	unsigned room_size, batch, paced_events;
	double rate, drain;
	bool window_set, hop, no_max;
	enum via via;
	const char *nng_url;
	const char *kafka_brokers;
	/* events */
	unsigned burst, sndbuf, n_metrics;
	bool events_set;
	const char *metrics[8];
	/* fanout --pipe */
	const char *pipe_path, *pipe_topic, *pipe_key;
} O = {
	.host = "127.0.0.1",
	.path = "/socket.io/",
	.nsp = "/",
	.label = "",
	.token = "",
	.publish_path = "/api/publish?topic=sio.out",
	.event = "bench",
	.in_topic = "sio.in",
	.clients = 10,
	.concurrency = 200,
	.events = 100,
	.size = 100,
	.window = 4,
	.posters = 1,
	.connect_timeout = 60,
	.duration = 5,
	.hold = 0,
	.settle = 1,
	.idle_timeout = 5,
	.timeout = 10,
	.room_size = 2,
	.batch = 100,
	.paced_events = (unsigned)-1,
	.drain = 2,
	.nng_url = "tcp://127.0.0.1:5561",
	.burst = 8,
	.pipe_topic = "sio.out",
	.pipe_key = "bench",
};

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

/* ------------------------------------------------------------------ state */

enum cstate { C_NEW, C_CONNECTING, C_HTTP, C_EIO_OPEN, C_SIO_CONNECT, C_READY, C_DEAD };

typedef struct {
	int fd;
	uint8_t state;
	bool want_out;
	bool ack_inflight;
	uint64_t ack_next; /* --interval: when this client's next request is due (ns) */
	uint32_t next_seq;
	uint32_t ack_id;
	uint64_t t0;
	uint8_t *in;
	uint32_t in_len, in_cap;
	uint8_t *out;
	uint32_t out_len, out_off;
	uint8_t *frag;
	uint32_t frag_len;
	char accept[29];
	/* rooms: the socket id from the CONNECT reply, the room, the sentinel seen */
	bool synced;
	uint32_t ev_inflight; /* events --window: unacked events */
	uint8_t sid_len;
	uint32_t room;
	char sid[32];
} client;

enum hkind { H_POSTER, H_SSE };
enum hstate { H_IDLE, H_WAIT, H_SSE_HDR, H_SSE_STREAM, H_DEAD };

typedef struct {
	int fd;
	uint8_t kind, state;
	char *in;
	size_t in_len, in_cap;
	char *out;
	size_t out_len, out_off;
	bool want_out;
	/* rooms: what the request in flight carries (errors are counted there) */
	uint8_t req_kind, req_phase;
	uint32_t req_lines;
	/* SSE over chunked framing: the de-chunked stream, and what is left of a chunk */
	bool chunked;
	char *ev;
	size_t ev_len, ev_cap, chunk_left;
} httpc;

#define KIND_CLIENT 1ull
#define KIND_HTTP 2ull
#define KIND_PIPE 3ull

static int g_ep = -1;
static client *g_cl;
static httpc *g_http;
static size_t g_nhttp;
static struct sockaddr_in g_addr;
static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static const char *g_stage = "setup";

/* counters */
static struct {
	unsigned started, inflight, ready, failed, closed_after_ready;
	uint64_t deliveries, expected, out_of_order, bad_payload, published, publish_errors;
	uint64_t acks, acks_in_window, ack_mismatch, sent_acks_req, backend_acks, sse_events;
	uint64_t pings, http_connects;
	bool sse_ready;
	bool ack_running;
} S;

static uint64_t g_pub_t0, g_last_delivery;
static bl_hist g_lat;     /* fanout delivery latency / ack RTT */
static bl_hist g_lat_in;  /* ack with --backend sse: client send -> the backend reads the event */
static bl_hist g_conlat;  /* connect: TCP connect start → Socket.IO CONNECT reply */

#define NREASONS 8
static struct {
	char text[80];
	unsigned count;
} g_reasons[NREASONS];

static void note_reason(const char *fmt, ...)
{
	char t[80];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t, sizeof t, fmt, ap);
	va_end(ap);
	for (int i = 0; i < NREASONS; i++) {
		if (!g_reasons[i].count) {
			snprintf(g_reasons[i].text, sizeof g_reasons[i].text, "%s", t);
			g_reasons[i].count = 1;
			return;
		}
		if (!strcmp(g_reasons[i].text, t)) {
			g_reasons[i].count++;
			return;
		}
	}
}

static uint64_t rng(void)
{
	g_rng ^= g_rng << 13;
	g_rng ^= g_rng >> 7;
	g_rng ^= g_rng << 17;
	return g_rng;
}

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "loadgen: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		die("out of memory");
	return q;
}

static void ep_set(int fd, uint64_t tag, bool out, int op)
{
	struct epoll_event ev;
	memset(&ev, 0, sizeof ev);
	ev.events = EPOLLIN | (out ? EPOLLOUT : 0u);
	ev.data.u64 = tag;
	if (epoll_ctl(g_ep, op, fd, &ev) != 0 && op != EPOLL_CTL_DEL)
		die("epoll_ctl: %s", strerror(errno));
}

/* ------------------------------------------------------------------ clients */

static void client_free(client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->state = C_DEAD;
	free(c->in);
	free(c->out);
	free(c->frag);
	c->in = c->out = c->frag = NULL;
	c->in_len = c->in_cap = c->out_len = c->out_off = c->frag_len = 0;
	c->ack_inflight = false;
}

static void client_close(client *c, bool by_server, const char *why)
{
	if (c->state == C_DEAD)
		return;
	if (c->state == C_READY) {
		S.ready--;
		S.closed_after_ready++;
		if (by_server)
			note_reason("closed after connect: %s", why);
	} else {
		S.failed++;
		if (c->state != C_NEW)
			S.inflight--;
		note_reason("%s", why);
	}
	client_free(c);
}

static void client_flush(client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			client_close(c, true, strerror(errno));
			return;
		}
		c->out_off += (uint32_t)n;
	}
	bool pending = c->out_off < c->out_len;
	if (!pending)
		c->out_off = c->out_len = 0;
	if (pending != c->want_out) {
		c->want_out = pending;
		ep_set(c->fd, KIND_CLIENT << 32 | (uint64_t)(c - g_cl), pending, EPOLL_CTL_MOD);
	}
}

static void client_write(client *c, const void *data, size_t len)
{
	if (c->out_len == 0) { /* the common case: straight to the socket */
		ssize_t n;
		do
			n = write(c->fd, data, len);
		while (n < 0 && errno == EINTR);
		if (n == (ssize_t)len)
			return;
		if (n < 0 && errno != EAGAIN) {
			client_close(c, true, strerror(errno));
			return;
		}
		if (n > 0) {
			data = (const uint8_t *)data + n;
			len -= (size_t)n;
		}
	}
	c->out = xrealloc(c->out, c->out_len + len);
	memcpy(c->out + c->out_len, data, len);
	c->out_len += (uint32_t)len;
	client_flush(c);
}

/* One masked client frame (RFC 6455 §5.3) into f (len + 14 bytes): FIN, opcode, mask
 * bit, a fresh mask key. Returns the frame's length. */
static size_t ws_frame(uint8_t *f, int opcode, const void *payload, size_t len)
{
	size_t h = 0;
	f[h++] = (uint8_t)(0x80 | opcode);
	if (len < 126) {
		f[h++] = (uint8_t)(0x80 | len);
	} else if (len < 65536) {
		f[h++] = 0x80 | 126;
		f[h++] = (uint8_t)(len >> 8);
		f[h++] = (uint8_t)len;
	} else {
		f[h++] = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			f[h++] = (uint8_t)((uint64_t)len >> (8 * i));
	}
	uint32_t mk = (uint32_t)rng();
	uint8_t m[4] = {(uint8_t)mk, (uint8_t)(mk >> 8), (uint8_t)(mk >> 16), (uint8_t)(mk >> 24)};
	memcpy(f + h, m, 4);
	h += 4;
	const uint8_t *p = payload;
	for (size_t i = 0; i < len; i++)
		f[h + i] = p[i] ^ m[i & 3];
	return h + len;
}

static void client_send(client *c, int opcode, const void *payload, size_t len)
{
	uint8_t stack[1024];
	uint8_t *f = len + 14 <= sizeof stack ? stack : xrealloc(NULL, len + 14);
	client_write(c, f, ws_frame(f, opcode, payload, len));
	if (f != stack)
		free(f);
}

static void client_send_text(client *c, const char *s, size_t len)
{
	client_send(c, 0x1, s, len);
}

/* "40" or "40/nsp," */
static size_t sio_prefix(char *out, size_t cap, char type)
{
	if (!strcmp(O.nsp, "/"))
		return (size_t)snprintf(out, cap, "4%c", type);
	return (size_t)snprintf(out, cap, "4%c%s,", type, O.nsp);
}

static char g_pad[65536];

static void ack_send(client *c)
{
	char buf[1024 + sizeof g_pad];
	size_t n = sio_prefix(buf, sizeof buf, '2');
	c->ack_id++;
	c->t0 = bl_now_ns();
	unsigned pad = O.size > 60 ? O.size - 60 : 0;
	if (pad >= sizeof g_pad)
		pad = sizeof g_pad - 1;
	n += (size_t)snprintf(buf + n, sizeof buf - n, "%u[\"echo\",{\"t\":\"%llu\",\"p\":\"%.*s\"}]",
			      c->ack_id, (unsigned long long)c->t0, (int)pad, g_pad);
	c->ack_inflight = true;
	S.sent_acks_req++;
	client_send_text(c, buf, n);
}

/* Find `"key":` in [p,end) and return the value's first byte, or NULL. */
static const char *find_key(const char *p, const char *end, const char *key)
{
	size_t kl = strlen(key);
	const char *q = p < end ? memmem(p, (size_t)(end - p), key, kl) : NULL;
	return q ? q + kl : NULL;
}

static uint64_t parse_u64(const char *p, const char *end, bool *ok)
{
	uint64_t v = 0;
	const char *s = p;
	while (p < end && *p >= '0' && *p <= '9')
		v = v * 10 + (uint64_t)(*p++ - '0');
	*ok = p > s;
	return v;
}

static void on_event(client *c, const char *p, const char *end, uint64_t now)
{
	bool ok1, ok2;
	const char *t = find_key(p, end, "\"t\":\"");
	const char *s = find_key(p, end, "\"s\":");
	uint64_t ts = t ? parse_u64(t, end, &ok1) : (ok1 = false, 0);
	uint64_t seq = s ? parse_u64(s, end, &ok2) : (ok2 = false, 0);
	if (!ok1 || !ok2) {
		S.bad_payload++;
		return;
	}
	S.deliveries++;
	g_last_delivery = now;
	bl_hist_add(&g_lat, now > ts ? now - ts : 0);
	if (seq < c->next_seq)
		S.out_of_order++;
	c->next_seq = (uint32_t)seq + 1;
}

static void on_ack(client *c, const char *p, const char *end, uint64_t now)
{
	bool ok;
	uint64_t id = parse_u64(p, end, &ok);
	if (!ok || !c->ack_inflight || id != c->ack_id) {
		S.ack_mismatch++;
		return;
	}
	c->ack_inflight = false;
	S.acks++;
	if (S.ack_running)
		S.acks_in_window++;
	bl_hist_add(&g_lat, now - c->t0);
	if (!S.ack_running)
		return;
	if (O.interval_ms > 0)
		c->ack_next = c->t0 + (uint64_t)(O.interval_ms * 1e6); /* sent by ack_pace() */
	else
		ack_send(c);
}

/* --interval: send the requests that are due (a late answer makes the next one late,
 * never two in flight). */
static void ack_pace(uint64_t now)
{
	for (unsigned i = 0; i < O.clients; i++) {
		client *c = &g_cl[i];
		if (c->state == C_READY && !c->ack_inflight && c->ack_next && c->ack_next <= now)
			ack_send(c);
	}
}

/* --- events: the clients send events (see the header) */

static struct {
	bool running;
	uint64_t t0, t_end, t_stop;
	uint64_t sent, acked, writes;
	unsigned rr;     /* round robin: the client to start the next turn at */
	uint32_t ring;   /* --window: send times per client, a power of two >= 2 W */
	uint64_t *ts;    /* clients x ring send times (ns), by ack id */
	uint64_t warm_seen;
} g_ev;

/* 43<id>[] from a namespace with ack: broker (or a backend's ack) */
static void on_event_ack(client *c, const char *p, const char *end, uint64_t now)
{
	bool ok;
	uint64_t id = parse_u64(p, end, &ok);
	if (!ok || !g_ev.ts || !c->ev_inflight) {
		S.ack_mismatch++;
		return;
	}
	c->ev_inflight--;
	g_ev.acked++;
	uint64_t t = g_ev.ts[(size_t)(c - g_cl) * g_ev.ring + (id & (g_ev.ring - 1))];
	bl_hist_add(&g_lat, now > t ? now - t : 0);
}

/* --- rooms: clients in rooms of --room-size, one emit to one random room at a time */

typedef struct {
	uint64_t t;    /* publish time (ns) */
	uint64_t mask; /* members that received it (room size <= 64) */
	uint32_t room;
	uint16_t got; /* distinct members that received it */
	uint8_t phase;
} remit;

enum { REQ_NONE, REQ_CTL, REQ_EMIT };

typedef struct {
	const char *name;
	uint32_t base, count; /* sequence numbers [base, base + count) */
	double rate;          /* paced: emits/s; 0: as fast as the publisher may (--window) */
	uint32_t sent;
	bool running;
	uint64_t t0, first_pub, last_pub, last_delivery, wall_ns;
	uint64_t expected, deliveries, dups, misdelivered, complete, publish_errors, requests;
	int64_t lost_credit; /* --window: deliveries given up on (missing for 500 ms) */
	uint64_t blocked_since, blocked_deliveries;
	int64_t srv_cpu, self_cpu, sys_cpu, irq_cpu;
	bool hop_stats; /* --hop: the deliveries and latencies are the nng_hop's */
	double hop_p50, hop_p99, hop_p999, hop_max;
	bl_hist lat;
} rphase;

static remit *g_emits;
static uint32_t g_seq_next, g_nemits;
static rphase g_ph[2];
static rphase *g_cur;
static uint32_t g_nrooms, g_rooms_synced;
static uint32_t *g_room_members, *g_room_synced;
static uint64_t g_sync_stray, g_ctl_errors;

/* The unsigned number after `"key":` in [p,end), or false. */
static bool key_u64(const char *p, const char *end, const char *key, uint64_t *v)
{
	bool ok = false;
	const char *q = find_key(p, end, key);
	if (q)
		*v = parse_u64(q, end, &ok);
	return ok;
}

/* 42["bench",{"t":"<ns>","s":<seq>,"r":<room>,"p":"..."}] or 42["sync",{"r":<room>}] */
static void on_room_event(client *c, const char *p, const char *end, uint64_t now)
{
	uint64_t r, seq, ts;
	if (end - p > 8 && !memcmp(p, "[\"sync\"", 7)) {
		if (!key_u64(p, end, "\"r\":", &r)) {
			S.bad_payload++;
			return;
		}
		if (r != c->room) {
			g_sync_stray++;
			return;
		}
		if (!c->synced) {
			c->synced = true;
			if (++g_room_synced[r] == g_room_members[r])
				g_rooms_synced++;
		}
		return;
	}
	if (!key_u64(p, end, "\"t\":\"", &ts) || !key_u64(p, end, "\"s\":", &seq) ||
	    !key_u64(p, end, "\"r\":", &r) || seq >= g_seq_next) {
		S.bad_payload++;
		return;
	}
	remit *e = &g_emits[seq];
	rphase *ph = &g_ph[e->phase];
	if (r != e->room || r != c->room) {
		ph->misdelivered++;
		return;
	}
	unsigned idx = (unsigned)(c - g_cl) % O.room_size;
	if (O.room_size <= 64) {
		uint64_t bit = 1ull << idx;
		if (e->mask & bit) {
			ph->dups++;
			return;
		}
		e->mask |= bit;
	} else if (e->got >= g_room_members[r]) {
		ph->dups++;
		return;
	}
	e->got++;
	ph->deliveries++;
	S.deliveries++;
	ph->last_delivery = now;
	if (e->got == g_room_members[r])
		ph->complete++;
	bl_hist_add(&ph->lat, now > ts ? now - ts : 0);
}

/* One Engine.IO packet (a websocket text message). */
static void on_message(client *c, const char *p, size_t len)
{
	if (!len)
		return;
	const char *end = p + len;
	uint64_t now;
	switch (p[0]) {
	case '0': /* open */
		if (c->state == C_EIO_OPEN) {
			char buf[256];
			size_t n = sio_prefix(buf, sizeof buf, '0');
			c->state = C_SIO_CONNECT;
			client_send_text(c, buf, n);
		}
		return;
	case '1':
		client_close(c, true, "engine.io close packet");
		return;
	case '2': { /* ping → pong, same payload */
		S.pings++;
		char pong[64];
		pong[0] = '3';
		size_t pl = len - 1 < sizeof pong - 1 ? len - 1 : sizeof pong - 1;
		memcpy(pong + 1, p + 1, pl);
		client_send_text(c, pong, pl + 1);
		return;
	}
	case '4':
		break;
	default:
		return; /* noop, pong, upgrade: nothing to do */
	}
	if (len < 2)
		return;
	char type = p[1];
	p += 2;
	if (p < end && *p == '/') { /* namespace, up to ',' */
		const char *comma = memchr(p, ',', (size_t)(end - p));
		p = comma ? comma + 1 : end;
	}
	switch (type) {
	case '0':
		if (c->state == C_SIO_CONNECT) {
			const char *sid = find_key(p, end, "\"sid\":\"");
			const char *se = sid ? memchr(sid, '"', (size_t)(end - sid)) : NULL;
			if (se && (size_t)(se - sid) < sizeof c->sid) {
				c->sid_len = (uint8_t)(se - sid);
				memcpy(c->sid, sid, c->sid_len);
			}
			now = bl_now_ns();
			c->state = C_READY;
			S.inflight--;
			S.ready++;
			bl_hist_add(&g_conlat, now - c->t0);
		}
		return;
	case '4':
		client_close(c, true, "socket.io CONNECT_ERROR");
		return;
	case '1':
		client_close(c, true, "socket.io DISCONNECT");
		return;
	case '2':
		if (O.mode == M_ROOMS) {
			on_room_event(c, p, end, bl_now_ns());
		} else if (end - p >= 7 && !memcmp(p, "[\"warm\"", 7)) { /* fanout --pipe warm-up */
			if (!c->synced)
				g_ev.warm_seen++;
			c->synced = true;
		} else {
			on_event(c, p, end, bl_now_ns());
		}
		return;
	case '3':
		if (O.mode == M_EVENTS)
			on_event_ack(c, p, end, bl_now_ns());
		else
			on_ack(c, p, end, bl_now_ns());
		return;
	default:
		return;
	}
}

/* Websocket frames from the server (unmasked). Returns the bytes consumed, or -1
 * when the client was closed. */
static ssize_t parse_frames(client *c, uint8_t *b, size_t len)
{
	size_t off = 0;
	while (c->state != C_DEAD && len - off >= 2) {
		uint8_t *f = b + off;
		bool fin = f[0] & 0x80, masked = f[1] & 0x80;
		int op = f[0] & 0x0f;
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
		if (pl > (64u << 20)) {
			client_close(c, false, "frame larger than 64 MiB");
			return -1;
		}
		if (len - off < h + pl)
			break;
		uint8_t *p = f + h;
		if (masked)
			for (uint64_t i = 0; i < pl; i++)
				p[i] ^= f[h - 4 + (i & 3)];
		off += h + (size_t)pl;
		switch (op) {
		case 0x0: /* continuation */
		case 0x1:
		case 0x2:
			if (fin && op != 0 && !c->frag) {
				on_message(c, (const char *)p, (size_t)pl);
			} else {
				c->frag = xrealloc(c->frag, c->frag_len + pl);
				memcpy(c->frag + c->frag_len, p, pl);
				c->frag_len += (uint32_t)pl;
				if (fin) {
					uint8_t *m = c->frag;
					uint32_t ml = c->frag_len;
					c->frag = NULL;
					c->frag_len = 0;
					on_message(c, (const char *)m, ml);
					free(m);
				}
			}
			break;
		case 0x8:
			client_close(c, true, "websocket close frame");
			return -1;
		case 0x9:
			client_send(c, 0xA, p, (size_t)pl);
			break;
		default:
			break;
		}
	}
	return c->state == C_DEAD ? -1 : (ssize_t)off;
}

static ssize_t parse_http(client *c, uint8_t *b, size_t len)
{
	uint8_t *e = memmem(b, len, "\r\n\r\n", 4);
	if (!e) {
		if (len > 16384) {
			client_close(c, false, "handshake response headers too long");
			return -1;
		}
		return 0;
	}
	size_t hl = (size_t)(e - b) + 4;
	if (hl < 12 || memcmp(b, "HTTP/1.1 101", 12) != 0) {
		char st[40] = "";
		size_t sl = 0;
		while (sl < hl && sl < sizeof st - 1 && b[sl] != '\r')
			st[sl] = (char)b[sl], sl++;
		client_close(c, true, st[0] ? st : "bad handshake response");
		return -1;
	}
	size_t vl;
	const char *v = bl_http_header((const char *)b, hl, "Sec-WebSocket-Accept", &vl);
	if (!v || vl != 28 || memcmp(v, c->accept, 28) != 0) {
		client_close(c, true, "wrong Sec-WebSocket-Accept");
		return -1;
	}
	c->state = C_EIO_OPEN;
	ssize_t r = parse_frames(c, b + hl, len - hl);
	return r < 0 ? -1 : (ssize_t)hl + r;
}

#define RX_SIZE (4u << 20)
static uint8_t *g_rx;

static void client_readable(client *c)
{
	size_t have = c->in_len;
	if (have)
		memcpy(g_rx, c->in, have);
	ssize_t n;
	do
		n = read(c->fd, g_rx + have, RX_SIZE - have);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno != EAGAIN)
			client_close(c, true, strerror(errno));
		return;
	}
	if (n == 0) {
		client_close(c, true, "connection closed by server");
		return;
	}
	size_t total = have + (size_t)n;
	ssize_t used = c->state == C_HTTP ? parse_http(c, g_rx, total) : parse_frames(c, g_rx, total);
	if (used < 0)
		return;
	size_t left = total - (size_t)used;
	if (left == RX_SIZE) {
		client_close(c, false, "message larger than the receive buffer");
		return;
	}
	if (left > c->in_cap) {
		c->in = xrealloc(c->in, left);
		c->in_cap = (uint32_t)left;
	}
	if (left)
		memmove(c->in, g_rx + used, left);
	c->in_len = (uint32_t)left;
	if (!left && c->in_cap > 4096) { /* give back a large carry buffer */
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
	}
}

static void client_connected(client *c)
{
	int err = 0;
	socklen_t el = sizeof err;
	getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
	if (err) {
		client_close(c, true, strerror(err));
		return;
	}
	uint8_t raw[16];
	for (int i = 0; i < 16; i += 8) {
		uint64_t r = rng();
		memcpy(raw + i, &r, 8);
	}
	char key[32];
	bl_base64(raw, 16, key);
	bl_ws_accept(key, 24, c->accept);
	char req[1024];
	int n = snprintf(req, sizeof req,
			 "GET %s?EIO=4&transport=websocket HTTP/1.1\r\n"
			 "Host: %s:%d\r\n"
			 "Upgrade: websocket\r\n"
			 "Connection: Upgrade\r\n"
			 "Sec-WebSocket-Key: %s\r\n"
			 "Sec-WebSocket-Version: 13\r\n\r\n",
			 O.path, O.host, O.port, key);
	c->state = C_HTTP;
	c->want_out = false;
	ep_set(c->fd, KIND_CLIENT << 32 | (uint64_t)(c - g_cl), false, EPOLL_CTL_MOD);
	client_write(c, req, (size_t)n);
}

static void client_event(client *c, uint32_t events)
{
	if (c->state == C_CONNECTING) {
		if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			client_connected(c);
		return;
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		client_readable(c);
	if (c->state != C_DEAD && (events & EPOLLOUT))
		client_flush(c);
}

static void client_start(client *c, unsigned idx)
{
	S.started++;
	c->t0 = bl_now_ns();
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		c->state = C_NEW;
		client_close(c, false, strerror(errno));
		return;
	}
	c->state = C_CONNECTING;
	S.inflight++;
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (O.sndbuf) {
		int sb = (int)O.sndbuf;
		setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof sb);
	}
	if (O.src_addrs > 1) {
		struct sockaddr_in src = g_addr;
		src.sin_port = 0;
		src.sin_addr.s_addr = htonl(0x7f000001u + idx % O.src_addrs);
		setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
		if (bind(c->fd, (struct sockaddr *)&src, sizeof src) != 0) {
			client_close(c, false, strerror(errno));
			return;
		}
	}
	if (connect(c->fd, (struct sockaddr *)&g_addr, sizeof g_addr) != 0 && errno != EINPROGRESS) {
		client_close(c, false, strerror(errno));
		return;
	}
	ep_set(c->fd, KIND_CLIENT << 32 | idx, true, EPOLL_CTL_ADD);
}

static unsigned g_connect_target;

static void pump_connects(void)
{
	while (S.started < g_connect_target && S.inflight < O.concurrency && !g_stop)
		client_start(&g_cl[S.started], S.started);
}

/* ------------------------------------------------------------------ HTTP client (publisher, backend) */

static int tcp_connect_blocking(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&g_addr, sizeof g_addr) != 0) {
		close(fd);
		return -1;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

static void http_close(httpc *h)
{
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
	h->state = H_DEAD;
	h->in_len = h->out_len = h->out_off = 0;
	h->want_out = false;
}

static void http_flush(httpc *h)
{
	while (h->out_off < h->out_len) {
		ssize_t n = write(h->fd, h->out + h->out_off, h->out_len - h->out_off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			note_reason("http: %s", strerror(errno));
			http_close(h);
			return;
		}
		h->out_off += (size_t)n;
	}
	bool pending = h->out_off < h->out_len;
	if (!pending)
		h->out_off = h->out_len = 0;
	if (pending != h->want_out) {
		h->want_out = pending;
		ep_set(h->fd, KIND_HTTP << 32 | (uint64_t)(h - g_http), pending, EPOLL_CTL_MOD);
	}
}

static bool http_open(httpc *h)
{
	h->fd = tcp_connect_blocking();
	if (h->fd < 0) {
		note_reason("http connect: %s", strerror(errno));
		h->state = H_DEAD;
		return false;
	}
	h->state = H_IDLE;
	h->in_len = h->out_len = h->out_off = 0;
	h->want_out = false;
	S.http_connects++;
	ep_set(h->fd, KIND_HTTP << 32 | (uint64_t)(h - g_http), false, EPOLL_CTL_ADD);
	return true;
}

static void http_queue(httpc *h, const char *s, size_t len)
{
	h->out = xrealloc(h->out, h->out_len + len);
	memcpy(h->out + h->out_len, s, len);
	h->out_len += len;
}

/* POST body to path; the poster must be idle. */
static bool http_post_type(httpc *h, const char *path, const char *ctype, const char *body, size_t len)
{
	if (h->state == H_DEAD && !http_open(h))
		return false;
	char hdr[1024];
	int n = snprintf(hdr, sizeof hdr,
			 "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: %s\r\n"
			 "Content-Length: %zu\r\n%s%s%s\r\n",
			 path, O.host, O.port, ctype, len, O.token[0] ? "Authorization: Bearer " : "", O.token,
			 O.token[0] ? "\r\n" : "");
	http_queue(h, hdr, (size_t)n);
	http_queue(h, body, len);
	h->state = H_WAIT;
	http_flush(h);
	return h->state != H_DEAD;
}

static bool http_post(httpc *h, const char *path, const char *body, size_t len)
{
	h->req_kind = REQ_NONE;
	h->req_lines = 0;
	return http_post_type(h, path, "application/json", body, len);
}

/* n messages of the request in flight on h were not published */
static void publish_failed(httpc *h, uint64_t n)
{
	if (h->req_kind == REQ_EMIT)
		g_ph[h->req_phase].publish_errors += n;
	else if (h->req_kind == REQ_CTL)
		g_ctl_errors += n;
	else
		S.publish_errors += n;
}

static httpc *idle_poster(void)
{
	for (size_t i = 0; i < g_nhttp; i++)
		if (g_http[i].kind == H_POSTER && (g_http[i].state == H_IDLE || g_http[i].state == H_DEAD))
			return &g_http[i];
	return NULL;
}

/* --- the ack backend (SSE reader + ack poster) */

typedef struct pending {
	struct pending *next;
	size_t len;
	char path[256];
	char body[];
} pending;
static pending *g_pq_head, *g_pq_tail;

static void pump_backend(void)
{
	httpc *h;
	while (g_pq_head && (h = idle_poster())) {
		pending *p = g_pq_head;
		g_pq_head = p->next;
		if (!g_pq_head)
			g_pq_tail = NULL;
		if (!http_post(h, p->path, p->body, p->len))
			S.publish_errors++;
		free(p);
	}
}

/* The end of the JSON value starting at p (an array or object), honouring strings. */
static const char *json_value_end(const char *p, const char *end)
{
	int depth = 0;
	bool str = false;
	for (; p < end; p++) {
		char ch = *p;
		if (str) {
			if (ch == '\\')
				p++;
			else if (ch == '"')
				str = false;
			continue;
		}
		if (ch == '"')
			str = true;
		else if (ch == '[' || ch == '{')
			depth++;
		else if (ch == ']' || ch == '}') {
			if (--depth == 0)
				return p + 1;
		}
	}
	return NULL;
}

static void backend_envelope(const char *p, size_t len)
{
	const char *end = p + len;
	S.sse_events++;
	if (!memmem(p, len, "\"type\":\"event\"", 14))
		return;
	const char *ack = find_key(p, end, "\"ack\":{");
	if (!ack)
		return;
	const char *id = find_key(ack, end, "\"id\":\"");
	const char *rt = find_key(ack, end, "\"reply_to\":\"");
	const char *data = find_key(p, end, "\"data\":");
	if (!id || !rt || !data)
		return;
	/* the first half of the round trip: the client's send time is in the payload */
	const char *t = find_key(data, end, "\"t\":\"");
	bool tok = false;
	uint64_t ts = t ? parse_u64(t, end, &tok) : 0, now = bl_now_ns();
	if (tok && S.ack_running)
		bl_hist_add(&g_lat_in, now > ts ? now - ts : 0);
	const char *id_end = memchr(id, '"', (size_t)(end - id));
	const char *rt_end = memchr(rt, '"', (size_t)(end - rt));
	const char *data_end = json_value_end(data, end);
	if (!id_end || !rt_end || !data_end)
		return;
	size_t dl = (size_t)(data_end - data), il = (size_t)(id_end - id);
	pending *q = xrealloc(NULL, sizeof *q + dl + il + 64);
	q->next = NULL;
	int pl = snprintf(q->path, sizeof q->path, "/api/publish?topic=%.*s", (int)(rt_end - rt), rt);
	if (pl < 0 || (size_t)pl >= sizeof q->path) {
		free(q);
		return;
	}
	q->len = (size_t)sprintf(q->body, "{\"type\":\"ack\",\"id\":\"%.*s\",\"data\":%.*s}", (int)il, id,
				 (int)dl, data);
	if (g_pq_tail)
		g_pq_tail->next = q;
	else
		g_pq_head = q;
	g_pq_tail = q;
	S.backend_acks++;
}

/* The chunk payloads in h->in[off..) appended to h->ev; returns the new offset. */
static size_t sse_dechunk(httpc *h, size_t off)
{
	while (off < h->in_len) {
		if (!h->chunk_left) {
			char *nl = memmem(h->in + off, h->in_len - off, "\r\n", 2);
			if (!nl)
				break;
			if (nl == h->in + off) { /* the CRLF that ends a chunk */
				off += 2;
				continue;
			}
			h->chunk_left = strtoul(h->in + off, NULL, 16);
			if (!h->chunk_left)
				die("SSE stream ended by the server (last chunk)");
			off = (size_t)(nl - h->in) + 2;
			continue;
		}
		size_t n = h->in_len - off < h->chunk_left ? h->in_len - off : h->chunk_left;
		if (h->ev_cap - h->ev_len < n + 1) {
			h->ev_cap = (h->ev_len + n) * 2 + 4096;
			h->ev = xrealloc(h->ev, h->ev_cap);
		}
		memcpy(h->ev + h->ev_len, h->in + off, n);
		h->ev_len += n;
		h->ev[h->ev_len] = 0;
		h->chunk_left -= n;
		off += n;
	}
	return off;
}

/* SSE events in p[0..len): "event:"/"data:" lines, events separated by a blank line,
 * ":" comments. Returns the bytes used. */
static size_t sse_events(char *p0, size_t len)
{
	size_t off = 0;
	for (;;) {
		char *e = memmem(p0 + off, len - off, "\n\n", 2);
		if (!e)
			break;
		char *p = p0 + off, *stop = e;
		off = (size_t)(e - p0) + 2;
		if (p[0] == ':') {
			S.sse_ready = true;
			continue;
		}
		/* one data line per message is what the gateway writes for JSON without
		 * newlines, after an "event: <topic>" line */
		char *d = p;
		while (d < stop && memcmp(d, "data: ", 6) != 0) {
			char *nl = memchr(d, '\n', (size_t)(stop - d));
			d = nl ? nl + 1 : stop;
		}
		if (stop - d > 6)
			backend_envelope(d + 6, (size_t)(stop - d - 6));
	}
	return off;
}

static size_t sse_parse(httpc *h)
{
	size_t off = 0;
	if (h->state == H_SSE_HDR) {
		char *e = memmem(h->in, h->in_len, "\r\n\r\n", 4);
		if (!e)
			return 0;
		off = (size_t)(e - h->in) + 4;
		if (h->in_len < 12 || memcmp(h->in + 9, "200", 3) != 0)
			die("SSE subscribe refused: %.*s", (int)(strcspn(h->in, "\r")), h->in);
		size_t vl;
		const char *te = bl_http_header(h->in, off, "Transfer-Encoding", &vl);
		h->chunked = te && vl == 7 && !strncasecmp(te, "chunked", 7);
		h->state = H_SSE_STREAM;
	}
	if (!h->chunked)
		return off + sse_events(h->in + off, h->in_len - off);
	off = sse_dechunk(h, off);
	size_t used = sse_events(h->ev, h->ev_len);
	memmove(h->ev, h->ev + used, h->ev_len - used);
	h->ev_len -= used;
	return off;
}

static size_t response_parse(httpc *h)
{
	char *e = memmem(h->in, h->in_len, "\r\n\r\n", 4);
	if (!e)
		return 0;
	size_t hl = (size_t)(e - h->in) + 4, vl;
	const char *cl = bl_http_header(h->in, hl, "Content-Length", &vl);
	size_t body = cl ? strtoul(cl, NULL, 10) : 0;
	if (h->in_len < hl + body)
		return 0;
	if (h->in_len < 12 || memcmp(h->in + 9, "200", 3) != 0) {
		publish_failed(h, h->req_lines ? h->req_lines : 1);
		note_reason("publish: %.*s", (int)strcspn(h->in, "\r"), h->in);
	} else if (h->req_lines) { /* an NDJSON batch answers 200 with its "failed" count */
		uint64_t failed = 0;
		if (key_u64(h->in + hl, h->in + hl + body, "\"failed\":", &failed) && failed) {
			publish_failed(h, failed);
			note_reason("publish: lines of a batch refused by the server");
		}
	}
	h->req_kind = REQ_NONE;
	h->req_lines = 0;
	const char *conn = bl_http_header(h->in, hl, "Connection", &vl);
	h->state = H_IDLE;
	if (conn && vl == 5 && !strncasecmp(conn, "close", 5))
		http_close(h);
	return hl + body;
}

static void http_event(httpc *h, uint32_t events)
{
	if (events & EPOLLOUT)
		http_flush(h);
	if (h->state == H_DEAD || !(events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		return;
	if (h->in_cap - h->in_len < 65536) {
		h->in_cap = h->in_cap * 2 + 65536;
		h->in = xrealloc(h->in, h->in_cap);
	}
	ssize_t n = read(h->fd, h->in + h->in_len, h->in_cap - h->in_len - 1);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		if (h->kind == H_SSE)
			die("SSE stream closed by the server (%s)", n ? strerror(errno) : "EOF");
		if (h->state == H_WAIT) {
			publish_failed(h, h->req_lines ? h->req_lines : 1);
			note_reason("publish: connection closed before the response");
		}
		http_close(h);
		return;
	}
	h->in_len += (size_t)n;
	h->in[h->in_len] = '\0';
	size_t used;
	if (h->kind == H_SSE)
		used = sse_parse(h);
	else
		used = h->state == H_WAIT ? response_parse(h) : h->in_len;
	if (h->state == H_DEAD)
		return;
	memmove(h->in, h->in + used, h->in_len - used);
	h->in_len -= used;
}

/* ------------------------------------------------------------------ the loop */

static void (*g_pump)(void);

/* --- fanout --pipe: JSON lines for kafka_backend's stdin, written without blocking */
static int g_pipe_fd = -1;
static char *g_pout;
static size_t g_pout_len, g_pout_off, g_pout_cap;
static bool g_pipe_armed;
static bool g_pump_more; /* a pump stopped at its per-call cap: poll, do not sleep */

static void pipe_flush(void)
{
	while (g_pout_off < g_pout_len) {
		ssize_t n = write(g_pipe_fd, g_pout + g_pout_off, g_pout_len - g_pout_off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			die("--pipe %s: %s (did the backend exit?)", O.pipe_path, strerror(errno));
		}
		g_pout_off += (size_t)n;
	}
	if (g_pout_off == g_pout_len)
		g_pout_off = g_pout_len = 0;
	bool queued = g_pout_len > 0;
	if (queued != g_pipe_armed) {
		struct epoll_event ev;
		memset(&ev, 0, sizeof ev);
		ev.events = EPOLLOUT;
		ev.data.u64 = KIND_PIPE << 32;
		if (epoll_ctl(g_ep, queued ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, g_pipe_fd, &ev) != 0)
			die("epoll_ctl (pipe): %s", strerror(errno));
		g_pipe_armed = queued;
	}
}

/* One backend line producing the envelope env to --pipe-topic, keyed --pipe-key (one
 * partition: the emits stay in order). */
static void pipe_queue(const char *env, size_t len)
{
	size_t need = len + strlen(O.pipe_topic) + strlen(O.pipe_key) + 64;
	if (g_pout_cap - g_pout_len < need) {
		if (g_pout_off) {
			memmove(g_pout, g_pout + g_pout_off, g_pout_len - g_pout_off);
			g_pout_len -= g_pout_off;
			g_pout_off = 0;
		}
		if (g_pout_cap - g_pout_len < need) {
			g_pout_cap = (g_pout_len + need) * 2 + 65536;
			g_pout = xrealloc(g_pout, g_pout_cap);
		}
	}
	int n = snprintf(g_pout + g_pout_len, g_pout_cap - g_pout_len,
			 "{\"op\":\"produce\",\"topic\":\"%s\",\"key\":\"%s\",\"value\":%.*s}\n", O.pipe_topic,
			 O.pipe_key, (int)len, env);
	if (n > 0)
		g_pout_len += (size_t)n;
}

static void pipe_open(void)
{
	g_pipe_fd = open(O.pipe_path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (g_pipe_fd < 0)
		die("--pipe %s: %s (a fifo needs its reader, the backend, first)", O.pipe_path, strerror(errno));
#ifdef F_SETPIPE_SZ
	fcntl(g_pipe_fd, F_SETPIPE_SZ, 1 << 20); /* best effort: /proc/sys/fs/pipe-max-size */
#endif
}

static void loop_once(int timeout_ms)
{
	struct epoll_event evs[1024];
	int n = epoll_wait(g_ep, evs, 1024, timeout_ms);
	for (int i = 0; i < n; i++) {
		uint64_t tag = evs[i].data.u64;
		uint32_t idx = (uint32_t)tag;
		if (tag >> 32 == KIND_CLIENT)
			client_event(&g_cl[idx], evs[i].events);
		else if (tag >> 32 == KIND_PIPE)
			pipe_flush();
		else
			http_event(&g_http[idx], evs[i].events);
	}
	pump_connects();
	if (g_pump)
		g_pump();
}

/* Run the loop until cond() holds, the deadline passes or a signal arrives. */
static bool loop_until(bool (*cond)(void), uint64_t deadline)
{
	for (;;) {
		if (cond && cond())
			return true;
		if (g_stop)
			return false;
		uint64_t now = bl_now_ns();
		if (now >= deadline)
			return false;
		uint64_t left_ms = (deadline - now) / 1000000 + 1;
		if (S.ack_running && O.interval_ms > 0) {
			ack_pace(now);
			left_ms = O.busy_poll ? 0 : 1; /* requests are due every few ms */
		} else if (S.ack_running && O.busy_poll) {
			left_ms = 0;
		} else if (O.mode == M_ROOMS && (g_pump_more || (g_cur && g_cur->running))) {
			left_ms = g_pump_more || O.busy_poll ? 0 : 1; /* paced emits are due every ms */
		} else if (O.mode == M_EVENTS && g_ev.running) {
			left_ms = g_pump_more ? 0 : 1; /* the end of the run, paced sends */
		} else if (O.mode == M_FANOUT && O.pipe_path && S.published < O.events) {
			left_ms = g_pump_more ? 0 : O.rate > 0 ? 1 : left_ms;
		}
		loop_once(left_ms > 10 ? 10 : (int)left_ms);
	}
}

/* *busy and *irq hold earlier readings; they become the CPU time spent since. */
static void sys_delta(int64_t *busy, int64_t *irq)
{
	int64_t b, i;
	bl_system_cpu_ns(&b, &i);
	*busy = b - *busy;
	*irq = i - *irq;
}

static bool connects_done(void)
{
	return S.started >= g_connect_target && S.inflight == 0;
}

static bool sse_ready(void)
{
	return S.sse_ready;
}

static uint64_t secs(double s)
{
	return s < 0 ? UINT64_MAX / 2 : (uint64_t)(s * 1e9);
}

/* --- fanout publishing */


/* fanout --pipe: the emits for the backend's stdin; --rate: open loop on a schedule,
 * else at most --window events in flight */
static void pump_publish_pipe(void)
{
	static uint64_t t0;
	g_pump_more = false;
	if (S.ready == 0 || S.published >= O.events)
		return;
	uint64_t now = bl_now_ns();
	if (!t0)
		t0 = now;
	for (unsigned n = 0; S.published < O.events; n++) {
		if (O.rate > 0) {
			double due = (double)(now - t0) * O.rate / 1e9 + 1;
			if ((double)S.published >= due)
				break;
		} else if (S.expected - S.deliveries >= (uint64_t)O.window * S.ready) {
			break;
		}
		if (n == 256 || g_pout_len - g_pout_off > (1u << 20)) { /* read the clients again */
			g_pump_more = g_pout_len - g_pout_off <= (1u << 20);
			break;
		}
		char body[512 + sizeof g_pad];
		unsigned seq = (unsigned)S.published;
		uint64_t t = bl_now_ns();
		int fixed = snprintf(NULL, 0, "42[\"%s\",{\"t\":\"%llu\",\"s\":%u,\"p\":\"\"}]", O.event,
				     (unsigned long long)t, seq);
		int pad = (int)O.size - fixed;
		if (pad < 0)
			pad = 0;
		if (pad >= (int)sizeof g_pad)
			pad = (int)sizeof g_pad - 1;
		int len = snprintf(body, sizeof body,
				   "{\"type\":\"emit\",\"nsp\":\"%s\",\"event\":\"%s\",\"data\":[{\"t\":\"%llu\","
				   "\"s\":%u,\"p\":\"%.*s\"}]}",
				   O.nsp, O.event, (unsigned long long)t, seq, pad, g_pad);
		if (!g_pub_t0)
			g_pub_t0 = t;
		S.published++;
		S.expected += S.ready;
		pipe_queue(body, (size_t)len);
	}
	if (g_pout_len > g_pout_off)
		pipe_flush();
}

static void pump_publish(void)
{
	httpc *h;
	while (S.published < O.events && S.ready > 0 &&
	       S.expected - S.deliveries < (uint64_t)O.window * S.ready && (h = idle_poster())) {
		char body[512 + sizeof g_pad];
		unsigned seq = (unsigned)S.published;
		uint64_t t = bl_now_ns();
		/* the client sees 42["bench",{"t":"<ns>","s":<seq>,"p":"<pad>"}]: size it to --size */
		int fixed = snprintf(NULL, 0, "42[\"%s\",{\"t\":\"%llu\",\"s\":%u,\"p\":\"\"}]", O.event,
				     (unsigned long long)t, seq);
		int pad = (int)O.size - fixed;
		if (pad < 0)
			pad = 0;
		if (pad >= (int)sizeof g_pad)
			pad = (int)sizeof g_pad - 1;
		int n = snprintf(body, sizeof body,
				 "{\"type\":\"emit\",\"nsp\":\"%s\",\"event\":\"%s\",\"data\":[{\"t\":\"%llu\","
				 "\"s\":%u,\"p\":\"%.*s\"}]}",
				 O.nsp, O.event, (unsigned long long)t, seq, pad, g_pad);
		if (!g_pub_t0)
			g_pub_t0 = t;
		S.published++;
		S.expected += S.ready;
		if (!http_post(h, O.publish_path, body, (size_t)n))
			S.publish_errors++;
	}
}

static bool fanout_done(void)
{
	return S.published >= O.events && S.deliveries >= S.expected;
}

/* --- rooms: the publishers (HTTP NDJSON batches or one per request, nng PUB frames) */

#ifdef LOADGEN_NNG
static nng_socket g_nng;
static bool g_nng_open;
static atomic_int g_nng_pipes;
static char *g_frame;
static size_t g_frame_cap;

static void lg_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	(void)p;
	(void)arg;
	atomic_fetch_add(&g_nng_pipes, ev == NNG_PIPE_EV_ADD_POST ? 1 : -1);
}

static bool nng_pipes_up(void)
{
	return atomic_load(&g_nng_pipes) > 0;
}

/* A PUB socket that dials --nng-url (the gateway's receive_listen, or nng_hop). */
static bool nng_pub_start(char *err, size_t errlen)
{
	int rv;
	if ((rv = nng_pub0_open(&g_nng))) {
		snprintf(err, errlen, "nng_pub0_open: %s", nng_strerror(rv));
		return false;
	}
	g_nng_open = true;
	nng_socket_set_int(g_nng, NNG_OPT_SENDBUF, 8192);
	nng_socket_set_ms(g_nng, NNG_OPT_RECONNMINT, 50);
	nng_socket_set_ms(g_nng, NNG_OPT_RECONNMAXT, 200);
	nng_pipe_notify(g_nng, NNG_PIPE_EV_ADD_POST, lg_pipe_cb, NULL);
	nng_pipe_notify(g_nng, NNG_PIPE_EV_REM_POST, lg_pipe_cb, NULL);
	if ((rv = nng_dial(g_nng, O.nng_url, NULL, NNG_FLAG_NONBLOCK))) {
		snprintf(err, errlen, "nng_dial %s: %s", O.nng_url, nng_strerror(rv));
		return false;
	}
	return true;
}

/* "sio.out <json>" as one message; false when nng refused it */
static bool nng_pub_send(const char *json, size_t len)
{
	static const char topic[] = "sio.out ";
	if (g_frame_cap < len + sizeof topic) {
		g_frame_cap = (len + sizeof topic) * 2;
		g_frame = xrealloc(g_frame, g_frame_cap);
	}
	memcpy(g_frame, topic, sizeof topic - 1);
	memcpy(g_frame + sizeof topic - 1, json, len);
	return nng_send(g_nng, g_frame, len + sizeof topic - 1, NNG_FLAG_NONBLOCK) == 0;
}

static void nng_pub_stop(void)
{
	if (g_nng_open)
		nng_close(g_nng); /* a PUB socket: safe to close (nng 1.5.2's hang is on SUB) */
	g_nng_open = false;
	free(g_frame);
	g_frame = NULL;
}
#else
static bool nng_pipes_up(void)
{
	return false;
}
static bool nng_pub_start(char *err, size_t errlen)
{
	snprintf(err, errlen, "this loadgen was built without nng (libnng-dev not found)");
	return false;
}
static bool nng_pub_send(const char *json, size_t len)
{
	(void)json;
	(void)len;
	return false;
}
static void nng_pub_stop(void)
{
}
#endif

#ifdef LOADGEN_KAFKA
/* rooms --via kafka: envelopes produced to sio.out, all under one key (one partition:
 * a join comes before the emits after it, as on one nng connection). */
static rd_kafka_t *g_rk;

static bool kafka_pub_start(char *err, size_t errlen)
{
	char e[512];
	rd_kafka_conf_t *c = rd_kafka_conf_new();
	if (rd_kafka_conf_set(c, "bootstrap.servers", O.kafka_brokers, e, sizeof e) ||
	    rd_kafka_conf_set(c, "linger.ms", "1", e, sizeof e) ||
	    rd_kafka_conf_set(c, "queue.buffering.max.messages", "1000000", e, sizeof e)) {
		snprintf(err, errlen, "kafka: %.120s", e);
		rd_kafka_conf_destroy(c);
		return false;
	}
	if (!(g_rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, e, sizeof e))) {
		snprintf(err, errlen, "kafka: %.120s", e);
		return false;
	}
	const struct rd_kafka_metadata *md;
	rd_kafka_resp_err_t r = rd_kafka_metadata(g_rk, 0, NULL, &md, 10000);
	if (r) {
		snprintf(err, errlen, "kafka: no metadata from %.60s: %.60s", O.kafka_brokers, rd_kafka_err2str(r));
		return false;
	}
	rd_kafka_metadata_destroy(md);
	return true;
}

static bool kafka_pub_send(const char *json, size_t len)
{
	for (int tries = 0; tries < 100; tries++) {
		rd_kafka_resp_err_t r = rd_kafka_producev(g_rk, RD_KAFKA_V_TOPIC("sio.out"), RD_KAFKA_V_KEY("rooms", 5),
							  RD_KAFKA_V_VALUE((void *)json, len),
							  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
		if (!r) {
			rd_kafka_poll(g_rk, 0);
			return true;
		}
		if (r != RD_KAFKA_RESP_ERR__QUEUE_FULL)
			return false;
		rd_kafka_poll(g_rk, 1); /* the local queue is full: let the producer catch up */
	}
	return false;
}

static void kafka_pub_stop(void)
{
	if (g_rk) {
		rd_kafka_flush(g_rk, 5000);
		rd_kafka_destroy(g_rk);
		g_rk = NULL;
	}
}
#else
static bool kafka_pub_start(char *err, size_t errlen)
{
	snprintf(err, errlen, "this loadgen was built without librdkafka");
	return false;
}
static bool kafka_pub_send(const char *json, size_t len)
{
	(void)json;
	(void)len;
	return false;
}
static void kafka_pub_stop(void)
{
}
#endif

/* The bus publishers (nng, kafka): one envelope per message, no HTTP. */
static bool via_bus(void)
{
	return O.via == VIA_NNG || O.via == VIA_KAFKA;
}

static bool bus_pub_send(const char *json, size_t len)
{
	return O.via == VIA_KAFKA ? kafka_pub_send(json, len) : nng_pub_send(json, len);
}

static char *g_body;
static size_t g_body_len, g_body_cap;

static void body_reserve(size_t more)
{
	if (g_body_cap - g_body_len < more) {
		g_body_cap = (g_body_len + more) * 2 + 4096;
		g_body = xrealloc(g_body, g_body_cap);
	}
}

/* Envelope lines queued for the control stage (joins, sentinels), '\n'-terminated. */
static char *g_ctl;
static size_t g_ctl_len, g_ctl_cap, g_ctl_off;

static void ctl_add(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void ctl_add(const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(g_ctl + g_ctl_len, g_ctl_cap - g_ctl_len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n + 1 < g_ctl_cap - g_ctl_len) {
			g_ctl_len += (size_t)n;
			g_ctl[g_ctl_len++] = '\n';
			return;
		}
		g_ctl_cap = g_ctl_cap * 2 + (n > 0 ? (size_t)n : 0) + 65536;
		g_ctl = xrealloc(g_ctl, g_ctl_cap);
	}
}

static bool posters_idle(void)
{
	for (size_t i = 0; i < g_nhttp; i++)
		if (g_http[i].kind == H_POSTER && g_http[i].state == H_WAIT)
			return false;
	return true;
}

static bool ctl_done(void)
{
	return g_ctl_off >= g_ctl_len && posters_idle();
}

static void pump_ctl(void)
{
	httpc *h;
	g_pump_more = false;
	if (via_bus()) {
		for (unsigned n = 0; g_ctl_off < g_ctl_len; n++) {
			if (n == 256) { /* a few at a time: the PUB queue holds 8192 */
				g_pump_more = true;
				return;
			}
			char *nl = memchr(g_ctl + g_ctl_off, '\n', g_ctl_len - g_ctl_off);
			if (!bus_pub_send(g_ctl + g_ctl_off, (size_t)(nl - g_ctl - g_ctl_off)))
				g_ctl_errors++;
			g_ctl_off = (size_t)(nl - g_ctl) + 1;
		}
		return;
	}
	while (g_ctl_off < g_ctl_len && (h = idle_poster())) {
		size_t start = g_ctl_off;
		unsigned lines = 0;
		while (g_ctl_off < g_ctl_len && lines < O.batch) {
			char *nl = memchr(g_ctl + g_ctl_off, '\n', g_ctl_len - g_ctl_off);
			g_ctl_off = (size_t)(nl - g_ctl) + 1;
			lines++;
		}
		h->req_kind = REQ_CTL;
		h->req_lines = lines;
		bool sent = O.batch == 1 ? http_post_type(h, O.publish_path, "application/json", g_ctl + start,
							  g_ctl_off - start - 1)
					 : http_post_type(h, O.publish_path, "application/x-ndjson", g_ctl + start,
							  g_ctl_off - start);
		if (!sent)
			g_ctl_errors += lines;
	}
}

/* The emit envelope of one sequence number, to its room; returns its length. The client
 * sees 42["bench",{"t":"<ns>","s":<seq>,"r":<room>,"p":"<pad>"}], sized to --size. */
static size_t build_emit(char *out, size_t cap, uint32_t seq, uint32_t room, uint64_t t)
{
	int fixed = snprintf(NULL, 0, "42[\"bench\",{\"t\":\"%llu\",\"s\":%u,\"r\":%u,\"p\":\"\"}]",
			     (unsigned long long)t, seq, room);
	int pad = (int)O.size - fixed;
	if (pad < 0)
		pad = 0;
	if (pad >= (int)sizeof g_pad)
		pad = (int)sizeof g_pad - 1;
	int n = snprintf(out, cap,
			 "{\"type\":\"emit\",\"nsp\":\"%s\",\"rooms\":[\"r%u\"],\"event\":\"bench\",\"data\":[{\"t\":\"%llu\","
			 "\"s\":%u,\"r\":%u,\"p\":\"%.*s\"}]}",
			 O.nsp, room, (unsigned long long)t, seq, room, pad, g_pad);
	return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

static uint32_t members_of(uint32_t room)
{
	return O.hop ? 1 : g_room_members[room];
}

/* The next emit: a fresh sequence number to a uniformly random room. */
static uint32_t next_emit(rphase *ph, uint64_t t)
{
	uint32_t seq = g_seq_next++;
	remit *e = &g_emits[seq];
	e->t = t;
	e->room = (uint32_t)(rng() % g_nrooms);
	e->phase = (uint8_t)(ph - g_ph);
	ph->sent++;
	ph->expected += members_of(e->room);
	if (!ph->first_pub)
		ph->first_pub = t;
	ph->last_pub = t;
	return seq;
}

/* How many emits the phase may publish now. */
static uint32_t emits_allowed(rphase *ph, uint64_t now)
{
	uint32_t left = ph->count - ph->sent;
	if (!left)
		return 0;
	if (ph->rate > 0) { /* paced: what the schedule has made due */
		double due = (double)(now - ph->t0) * ph->rate / 1e9 + 1;
		uint32_t d = due >= ph->count ? ph->count : (uint32_t)due;
		return d > ph->sent ? d - ph->sent : 0;
	}
	if (!O.window || O.hop) /* open loop: as fast as the publisher goes */
		return left;
	/* closed loop: at most --window emits' deliveries outstanding; what is still missing
	 * after 500 ms without any delivery counts as lost, so that loss cannot stall it */
	int64_t out = (int64_t)ph->expected - (int64_t)ph->deliveries - ph->lost_credit;
	int64_t cap = (int64_t)O.window * O.room_size;
	if (out < cap) {
		ph->blocked_since = 0;
		int64_t n = (cap - out + O.room_size - 1) / O.room_size;
		return n < left ? (uint32_t)n : left;
	}
	if (!ph->blocked_since || ph->blocked_deliveries != ph->deliveries) {
		ph->blocked_since = now;
		ph->blocked_deliveries = ph->deliveries;
	} else if (now - ph->blocked_since > 500000000ull) {
		ph->lost_credit = (int64_t)ph->expected - (int64_t)ph->deliveries;
		ph->blocked_since = 0;
	}
	return 0;
}

static void pump_rooms(void)
{
	rphase *ph = g_cur;
	g_pump_more = false;
	if (!ph || !ph->running)
		return;
	uint64_t now = bl_now_ns();
	char line[512 + sizeof g_pad];
	if (via_bus()) {
		uint32_t n = emits_allowed(ph, now);
		if (n > 512) { /* then read the clients again */
			n = 512;
			g_pump_more = true;
		}
		for (uint32_t i = 0; i < n; i++) {
			uint64_t t = bl_now_ns();
			uint32_t seq = next_emit(ph, t);
			size_t len = build_emit(line, sizeof line, seq, g_emits[seq].room, t);
			if (!bus_pub_send(line, len))
				ph->publish_errors++;
			ph->requests++;
		}
		return;
	}
	httpc *h;
	uint32_t n;
	while ((n = emits_allowed(ph, now)) && (h = idle_poster())) {
		if (n > O.batch)
			n = O.batch;
		g_body_len = 0;
		for (uint32_t i = 0; i < n; i++) {
			uint64_t t = bl_now_ns();
			uint32_t seq = next_emit(ph, t);
			size_t len = build_emit(line, sizeof line, seq, g_emits[seq].room, t);
			body_reserve(len + 1);
			memcpy(g_body + g_body_len, line, len);
			g_body_len += len;
			if (O.batch > 1)
				g_body[g_body_len++] = '\n';
		}
		h->req_kind = REQ_EMIT;
		h->req_phase = (uint8_t)(ph - g_ph);
		h->req_lines = n;
		ph->requests++;
		if (!http_post_type(h, O.publish_path, O.batch > 1 ? "application/x-ndjson" : "application/json", g_body,
				    g_body_len))
			ph->publish_errors += n;
	}
}

static void pump_all(void)
{
	if (g_ctl_off < g_ctl_len)
		pump_ctl();
	else
		pump_rooms();
}

static bool rooms_all_synced(void)
{
	return g_rooms_synced >= g_nrooms;
}

static bool phase_drained(void)
{
	rphase *ph = g_cur;
	return ph->sent >= ph->count && posters_idle() && ph->deliveries >= ph->expected;
}

/* A blocking GET of the --port server (nng_hop's /stats); the body into buf. */
static bool http_get_body(const char *path, char *buf, size_t cap)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	struct timeval tv = {2, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	bool ok = false;
	if (connect(fd, (struct sockaddr *)&g_addr, sizeof g_addr) == 0) {
		char req[256];
		int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path,
				 O.host);
		size_t got = 0;
		if (write(fd, req, (size_t)n) == n) {
			ssize_t r;
			while (got < cap - 1 && (r = read(fd, buf + got, cap - 1 - got)) > 0)
				got += (size_t)r;
		}
		buf[got] = 0;
		char *b = strstr(buf, "\r\n\r\n");
		if (got >= 12 && !memcmp(buf + 9, "200", 3) && b) {
			memmove(buf, b + 4, strlen(b + 4) + 1);
			ok = true;
		}
	}
	close(fd);
	return ok;
}

static bool hop_received(uint64_t *n, char *buf, size_t cap)
{
	return http_get_body("/stats", buf, cap) && key_u64(buf, buf + strlen(buf), "\"received\":", n);
}

/* --- events: the senders, and the server's counters */

/* One turn: every client whose socket is not backed up (and, with --window, that has
 * room) writes up to --burst events in one write(); --rate limits the turn to what the
 * schedule has made due. */
static void pump_events(void)
{
	g_pump_more = false;
	if (!g_ev.running)
		return;
	uint64_t now = bl_now_ns();
	if ((O.duration > 0 && now >= g_ev.t_end) || (O.events && g_ev.sent >= O.events) || !S.ready) {
		g_ev.running = false;
		g_ev.t_stop = now;
		return;
	}
	uint64_t allowed = O.events ? O.events - g_ev.sent : UINT64_MAX;
	if (O.rate > 0) {
		double due = (double)(now - g_ev.t0) * O.rate / 1e9 + 1;
		uint64_t d = (uint64_t)due;
		allowed = d > g_ev.sent ? (d - g_ev.sent < allowed ? d - g_ev.sent : allowed) : 0;
	}
	/* 42["ev",{"t":"<19 digits>","s":<seq>,"p":""}] is 53 B with a 5-digit seq: --size 100
	 * gives packets of about 105 B (what bench/kafka.md measured) */
	unsigned pad = O.size > 48 ? O.size - 48 : 0;
	if (pad >= sizeof g_pad)
		pad = sizeof g_pad - 1;
	uint8_t buf[64 * (256 + 14)];
	char msg[256 + sizeof g_pad];
	unsigned burst = O.burst;
	if (burst > 64)
		burst = 64;
	if ((size_t)O.size + 80 > 256 && burst > 1)
		burst = 1; /* large events: one per write */
	for (unsigned k = 0; k < O.clients && allowed; k++) {
		unsigned ci = (g_ev.rr + k) % O.clients;
		client *c = &g_cl[ci];
		if (c->state != C_READY || c->out_len)
			continue; /* its socket is full: EPOLLOUT flushes it, the next turn refills */
		unsigned n = burst;
		if (O.window_set) {
			unsigned room = O.window > c->ev_inflight ? O.window - c->ev_inflight : 0;
			n = n < room ? n : room;
		}
		if (n > allowed)
			n = (unsigned)allowed;
		if (!n)
			continue;
		size_t fl = 0;
		uint8_t *heap = NULL, *f = buf;
		for (unsigned j = 0; j < n; j++) {
			uint64_t t = bl_now_ns();
			size_t ml;
			if (O.window_set) {
				uint32_t id = ++c->ack_id;
				g_ev.ts[(size_t)ci * g_ev.ring + (id & (g_ev.ring - 1))] = t;
				c->ev_inflight++;
				ml = (size_t)snprintf(msg, sizeof msg, "42%u[\"ev\",{\"t\":\"%llu\",\"s\":%u,\"p\":\"%.*s\"}]", id,
						      (unsigned long long)t, c->next_seq++, (int)pad, g_pad);
			} else {
				ml = (size_t)snprintf(msg, sizeof msg, "42[\"ev\",{\"t\":\"%llu\",\"s\":%u,\"p\":\"%.*s\"}]",
						      (unsigned long long)t, c->next_seq++, (int)pad, g_pad);
			}
			if (ml >= sizeof msg)
				ml = sizeof msg - 1;
			if (n == 1 && ml + 14 > sizeof buf)
				f = heap = xrealloc(NULL, ml + 14);
			fl += ws_frame(f + fl, 0x1, msg, ml);
		}
		g_ev.sent += n;
		g_ev.writes++;
		allowed -= n;
		client_write(c, f, fl); /* what the socket does not take waits in c->out */
		free(heap);
		if (c->state == C_READY && !c->out_len && (!O.window_set || c->ev_inflight < O.window))
			g_pump_more = O.rate <= 0; /* it could take more now */
	}
	g_ev.rr = (g_ev.rr + 1) % (O.clients ? O.clients : 1);
}

static bool events_sending_done(void)
{
	return !g_ev.running;
}

static bool clients_flushed(void)
{
	for (unsigned i = 0; i < O.clients; i++)
		if (g_cl[i].state == C_READY && (g_cl[i].out_len || g_cl[i].ev_inflight))
			return false;
	return true;
}

/* --metric counters from GET /metrics: vals[i] (-1 when absent); false when the GET failed */
static char *g_mbuf;
#define MBUF_SIZE (4u << 20)
static bool read_metrics(double *vals)
{
	if (!g_mbuf)
		g_mbuf = xrealloc(NULL, MBUF_SIZE);
	for (unsigned i = 0; i < O.n_metrics; i++)
		vals[i] = -1;
	if (!http_get_body("/metrics", g_mbuf, MBUF_SIZE))
		return false;
	for (unsigned i = 0; i < O.n_metrics; i++) {
		size_t kl = strlen(O.metrics[i]);
		for (const char *l = g_mbuf; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
			if (strncmp(l, O.metrics[i], kl) || (l[kl] != ' ' && l[kl] != '{'))
				continue;
			const char *v = l + kl;
			if (*v == '{') { /* labels: the first sample of that name */
				const char *nl = strchr(v, '\n'), *close = strchr(v, '}');
				if (!close || (nl && close > nl))
					continue;
				v = close + 1;
			}
			vals[i] = strtod(v, NULL);
			break;
		}
	}
	return true;
}

/* Joins (one envelope per room: its members' socket ids), then a sentinel emit to each
 * room that every member must receive; rooms not complete within a few seconds get
 * their join and sentinel again. */
static bool rooms_setup(char *err, size_t errlen, unsigned *attempts)
{
	g_pump = pump_all;
	for (unsigned a = 0; a < 5 && !g_stop; a++) {
		*attempts = a + 1;
		g_ctl_len = g_ctl_off = 0;
		for (uint32_t r = 0; r < g_nrooms; r++) {
			if (g_room_synced[r] >= g_room_members[r])
				continue;
			size_t at = g_ctl_len;
			ctl_add("{\"type\":\"join\",\"nsp\":\"%s\",\"rooms\":[", O.nsp);
			g_ctl_len--; /* no newline yet */
			unsigned first = r * O.room_size, last = first + O.room_size;
			bool any = false;
			for (unsigned i = first; i < last && i < O.clients; i++) {
				if (g_cl[i].state != C_READY || !g_cl[i].sid_len)
					continue;
				ctl_add("%s\"%.*s\"", any ? "," : "", (int)g_cl[i].sid_len, g_cl[i].sid);
				g_ctl_len--;
				any = true;
			}
			if (!any) {
				g_ctl_len = at;
				continue;
			}
			ctl_add("],\"join\":\"r%u\"}", r);
		}
		if (!loop_until(ctl_done, bl_now_ns() + secs(60))) {
			snprintf(err, errlen, "the joins were not published within 60 s");
			return false;
		}
		g_ctl_len = g_ctl_off = 0;
		for (uint32_t r = 0; r < g_nrooms; r++)
			if (g_room_synced[r] < g_room_members[r])
				ctl_add("{\"type\":\"emit\",\"nsp\":\"%s\",\"rooms\":[\"r%u\"],\"event\":\"sync\","
					"\"data\":[{\"r\":%u}]}",
					O.nsp, r, r);
		if (!loop_until(ctl_done, bl_now_ns() + secs(60))) {
			snprintf(err, errlen, "the sentinel emits were not published within 60 s");
			return false;
		}
		if (loop_until(rooms_all_synced, bl_now_ns() + secs(3)))
			return true;
		fprintf(stderr, "loadgen: %u of %u rooms complete after attempt %u; joining the rest again\n",
			g_rooms_synced, g_nrooms, a + 1);
	}
	snprintf(err, errlen, "only %u of %u rooms had every member after 5 join attempts", g_rooms_synced, g_nrooms);
	return false;
}

/* One measured phase: count emits at rate (0 = max), until every delivery is in or
 * nothing arrived for --drain seconds after the last publish. */
static bool rooms_phase(rphase *ph, const char *name, uint32_t count, double rate, char *err, size_t errlen)
{
	char buf[4096];
	memset(ph, 0, sizeof *ph);
	ph->name = name;
	ph->base = g_seq_next;
	ph->count = count;
	ph->rate = rate;
	ph->hop_stats = O.hop;
	if (O.hop && !http_get_body("/stats?reset=1", buf, sizeof buf)) {
		snprintf(err, errlen, "nng_hop: GET /stats?reset=1 failed");
		return false;
	}
	int64_t sc = O.server_pid ? bl_proc_cpu_ns(O.server_pid) : 0, mc = bl_self_cpu_ns();
	bl_system_cpu_ns(&ph->sys_cpu, &ph->irq_cpu);
	ph->t0 = bl_now_ns();
	g_cur = ph;
	ph->running = true;
	g_pump = pump_rooms;
	bool ok = true;
	uint64_t last_progress = ph->t0, before = 0;
	while (!g_stop) {
		loop_until(phase_drained, bl_now_ns() + secs(O.hop ? 0.05 : 0.25));
		uint64_t now = bl_now_ns(), cur = ph->sent + ph->deliveries;
		if (O.hop && ph->sent >= ph->count && posters_idle()) { /* the hop's count is the delivery */
			uint64_t n = 0;
			if (!hop_received(&n, buf, sizeof buf)) {
				snprintf(err, errlen, "nng_hop: GET /stats failed");
				ok = false;
				break;
			}
			if (n >= ph->sent)
				break;
			cur += n;
		}
		if (cur != before)
			last_progress = now, before = cur;
		if (!O.hop && phase_drained())
			break;
		if (ph->sent >= ph->count) {
			if (now - last_progress > secs(O.drain))
				break; /* the rest is lost */
		} else if (now - last_progress > secs(O.idle_timeout)) {
			snprintf(err, errlen, "%s: no progress for %.1f s (%u of %u emits published)", name, O.idle_timeout,
				 ph->sent, ph->count);
			ok = false;
			break;
		}
	}
	ph->running = false;
	g_pump = NULL;
	g_cur = NULL;
	ph->wall_ns = bl_now_ns() - ph->t0;
	sys_delta(&ph->sys_cpu, &ph->irq_cpu);
	ph->srv_cpu = O.server_pid ? bl_proc_cpu_ns(O.server_pid) - sc : -1;
	ph->self_cpu = bl_self_cpu_ns() - mc;
	if (O.hop && ok && hop_received(&ph->deliveries, buf, sizeof buf)) {
		const char *e = buf + strlen(buf);
		uint64_t v = 0;
		if (key_u64(buf, e, "\"last_ns\":", &v))
			ph->last_delivery = v;
		ph->complete = ph->deliveries;
		ph->hop_p50 = key_u64(buf, e, "\"p50_ns\":", &v) ? (double)v / 1000 : 0;
		ph->hop_p99 = key_u64(buf, e, "\"p99_ns\":", &v) ? (double)v / 1000 : 0;
		ph->hop_p999 = key_u64(buf, e, "\"p999_ns\":", &v) ? (double)v / 1000 : 0;
		ph->hop_max = key_u64(buf, e, "\"max_ns\":", &v) ? (double)v / 1000 : 0;
		if (key_u64(buf, e, "\"duplicates\":", &v))
			ph->dups = v;
	}
	if (ok && ph->deliveries == 0 && count > 0) {
		snprintf(err, errlen, "%s: nothing was delivered", name);
		ok = false;
	}
	return ok;
}

static bool acks_drained(void)
{
	for (unsigned i = 0; i < O.clients; i++)
		if (g_cl[i].ack_inflight)
			return false;
	return true;
}

/* ------------------------------------------------------------------ output */

static char g_json[16384];
static size_t g_jl;

static void jadd(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(g_json + g_jl, sizeof g_json - g_jl, fmt, ap);
	va_end(ap);
	if (n > 0)
		g_jl = g_jl + (size_t)n < sizeof g_json ? g_jl + (size_t)n : sizeof g_json - 1;
}

static void jstr(const char *key, const char *v)
{
	jadd(",\"%s\":\"", key);
	for (; *v; v++) {
		if (*v == '"' || *v == '\\')
			jadd("\\%c", *v);
		else if ((unsigned char)*v < 0x20)
			jadd("\\u%04x", *v);
		else
			jadd("%c", *v);
	}
	jadd("\"");
}

static double us(uint64_t ns)
{
	return (double)ns / 1000.0;
}

static const char *mode_name(void)
{
	return O.mode == M_CONNECT ? "connect"
	       : O.mode == M_FANOUT ? "fanout"
	       : O.mode == M_ROOMS  ? "rooms"
	       : O.mode == M_EVENTS ? "events"
				    : "ack";
}

static const char *via_name(void)
{
	return O.via == VIA_NNG ? "nng" : O.via == VIA_KAFKA ? "kafka" : O.via == VIA_NODE ? "node" : "http";
}

static unsigned g_join_attempts;
static uint64_t g_join_ns;

static double pub_rate(const rphase *ph)
{
	return ph->last_pub > ph->first_pub ? (double)(ph->sent - 1) * 1e9 / (double)(ph->last_pub - ph->first_pub) : 0;
}

/* a latency quantile in us: the loadgen's histogram, or the hop's figure */
static double ph_q(const rphase *ph, double q, double hop)
{
	return ph->hop_stats ? hop : us(bl_hist_quantile(&ph->lat, q));
}

/* The fields of one rooms run, each prefixed "<pfx>_". */
static void json_phase(const char *pfx, const rphase *ph)
{
	double el = ph->last_delivery > ph->first_pub ? (double)(ph->last_delivery - ph->first_pub) / 1e9 : 0;
	/* CPU % over the span that carried traffic (a drain wait after loss is idle time) */
	double wall = el > 0 ? el * 1e9 : (double)ph->wall_ns;
	jadd(",\"%s_events\":%u,\"%s_published\":%u,\"%s_requests\":%llu,\"%s_publish_errors\":%llu", pfx, ph->count, pfx,
	     ph->sent, pfx, (unsigned long long)ph->requests, pfx, (unsigned long long)ph->publish_errors);
	jadd(",\"%s_expected\":%llu,\"%s_deliveries\":%llu,\"%s_lost\":%lld,\"%s_duplicates\":%llu,\"%s_misdelivered\":%llu",
	     pfx, (unsigned long long)ph->expected, pfx, (unsigned long long)ph->deliveries, pfx,
	     (long long)(ph->expected - ph->deliveries), pfx, (unsigned long long)ph->dups, pfx,
	     (unsigned long long)ph->misdelivered);
	jadd(",\"%s_emits_complete\":%llu,\"%s_elapsed_s\":%.4f,\"%s_emits_per_s\":%.1f,\"%s_deliveries_per_s\":%.1f", pfx,
	     (unsigned long long)ph->complete, pfx, el, pfx, el > 0 ? (double)ph->complete / el : 0, pfx,
	     el > 0 ? (double)ph->deliveries / el : 0);
	jadd(",\"%s_publish_rate\":%.1f", pfx, pub_rate(ph));
	if (ph->rate > 0)
		jadd(",\"%s_target_rate\":%.1f", pfx, ph->rate);
	jadd(",\"%s_lat_p50_us\":%.1f,\"%s_lat_p99_us\":%.1f,\"%s_lat_p999_us\":%.1f,\"%s_lat_max_us\":%.1f", pfx,
	     ph_q(ph, 0.5, ph->hop_p50), pfx, ph_q(ph, 0.99, ph->hop_p99), pfx, ph_q(ph, 0.999, ph->hop_p999), pfx,
	     ph->hop_stats ? ph->hop_max : us(ph->lat.max));
	if (wall > 0 && ph->srv_cpu >= 0 && O.server_pid) {
		jadd(",\"%s_server_cpu_pct\":%.1f,\"%s_other_cpu_pct\":%.1f", pfx, 100.0 * (double)ph->srv_cpu / wall, pfx,
		     100.0 * (double)(ph->sys_cpu + ph->irq_cpu - ph->srv_cpu - ph->self_cpu) / wall);
		if (ph->sent)
			jadd(",\"%s_server_cpu_us_per_emit\":%.3f", pfx, (double)ph->srv_cpu / 1000.0 / (double)ph->sent);
	}
	if (wall > 0)
		jadd(",\"%s_loadgen_cpu_pct\":%.1f,\"%s_wall_s\":%.4f", pfx, 100.0 * (double)ph->self_cpu / wall, pfx,
		     (double)ph->wall_ns / 1e9);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: loadgen MODE [options]     MODE: connect | fanout | ack | rooms | events | wait | features\n"
		"  --host H (127.0.0.1)  --port P  --path /socket.io/  --nsp /  --label TEXT\n"
		"  --clients N (10)  --concurrency C (200 handshakes in flight)  --src-addrs K (auto)\n"
		"  --connect-timeout S (60)  --token T (HTTP API bearer token)\n"
		"connect: --rss-pid PID --rss-at 0,1000,10000 --settle S (1) --hold S (0; -1 = until signal)\n"
		"fanout:  --events E (100) --size B (100, the client's packet) --window W (4 events)\n"
		"         --posters P (1) --publish-path PATH (/api/publish?topic=sio.out) --idle-timeout S (5)\n"
		"         --pipe PATH: publish through kafka_backend's stdin (a fifo) instead, as produce lines\n"
		"         to --pipe-topic T (sio.out) keyed --pipe-key K (bench); --rate R: R emits/s open loop\n"
		"ack:     --duration S (5) --size B --backend sse|none (none) --in-topic T (sio.in)\n"
		"         --interval MS (0): each client starts a request at most every MS ms (paced load;\n"
		"         0 = the next one as soon as the answer is in)\n"
		"rooms:   --clients N --room-size K (2) --events E (100, the max-rate run; --no-max: none)\n"
		"         --rate R (0: no paced run) --paced-events E (= --events) --size B (100)\n"
		"         --via http|node|nng (http) --batch B (100 envelopes per NDJSON POST; 1: one plain\n"
		"         POST each) --posters P (1) --window W (4096 emits in flight in the max-rate run;\n"
		"         0: open loop) --nng-url URL (tcp://127.0.0.1:5561, dialed by a PUB socket)\n"
		"         --kafka-brokers HOST:PORT (--via kafka: produce to sio.out, one key)\n"
		"         --hop (the target is bench/nng_hop: no clients; --port is its /stats port)\n"
		"         --drain S (2: after the last publish, wait this long without progress)\n"
		"events:  --duration S (5) --events E (0 = no limit; in all) --size B (100) --rate R (0 = max)\n"
		"         --burst F (8 frames per write) --window W (unset: no acks; W: acks, W in flight per\n"
		"         client) --sndbuf BYTES (65536; 0 = the kernel's) --metric NAME (repeatable, <= 8; the\n"
		"         first is waited for: grown by the events sent) --drain S (2)\n"
		"wait:    --timeout S (10): GET /healthz until it answers 200\n"
		"features: prints \"nng\" and \"kafka\" when built with those publishers\n"
		"--rss-pid PID also reports that server's CPU use during the measured phase.\n");
}

static void parse_args(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		exit(2);
	}
	const char *m = argv[1];
	if (!strcmp(m, "features")) { /* what this build can do (compare.sh asks) */
#ifdef LOADGEN_NNG
		puts("nng");
#endif
#ifdef LOADGEN_KAFKA
		puts("kafka");
#endif
		exit(0);
	}
	if (!strcmp(m, "connect"))
		O.mode = M_CONNECT;
	else if (!strcmp(m, "fanout"))
		O.mode = M_FANOUT;
	else if (!strcmp(m, "ack"))
		O.mode = M_ACK;
	else if (!strcmp(m, "rooms"))
		O.mode = M_ROOMS;
	else if (!strcmp(m, "wait"))
		O.mode = M_WAIT;
	else if (!strcmp(m, "events"))
		O.mode = M_EVENTS, O.sndbuf = 65536;
	else if (!strcmp(m, "-h") || !strcmp(m, "--help")) {
		usage(stdout);
		exit(0);
	} else {
		usage(stderr);
		exit(2);
	}
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (!strcmp(a, name) && v && (i++, 1))
		if (OPT("--host"))
			O.host = v;
		else if (OPT("--port"))
			O.port = atoi(v);
		else if (OPT("--path"))
			O.path = v;
		else if (OPT("--nsp"))
			O.nsp = v;
		else if (OPT("--label"))
			O.label = v;
		else if (OPT("--tag"))
			O.tag = v;
		else if (OPT("--token"))
			O.token = v;
		else if (OPT("--clients"))
			O.clients = (unsigned)strtoul(v, NULL, 10);
		else if (OPT("--concurrency"))
			O.concurrency = (unsigned)strtoul(v, NULL, 10);
		else if (OPT("--src-addrs"))
			O.src_addrs = (unsigned)strtoul(v, NULL, 10);
		else if (OPT("--connect-timeout"))
			O.connect_timeout = atof(v);
		else if (OPT("--events"))
			O.events = (unsigned)strtoul(v, NULL, 10), O.events_set = true;
		else if (OPT("--burst"))
			O.burst = (unsigned)strtoul(v, NULL, 10);
		else if (OPT("--sndbuf"))
			O.sndbuf = (unsigned)strtoul(v, NULL, 10);
		else if (OPT("--metric")) {
			if (O.n_metrics == 8)
				die("--metric: at most 8");
			O.metrics[O.n_metrics++] = v;
		} else if (OPT("--pipe"))
			O.pipe_path = v;
		else if (OPT("--pipe-topic"))
			O.pipe_topic = v;
		else if (OPT("--pipe-key"))
			O.pipe_key = v;
		else if (OPT("--size"))
			O.size = (unsigned)strtoul(v, NULL, 10);
		else if (OPT("--window"))
			O.window = (unsigned)strtoul(v, NULL, 10), O.window_set = true;
		else if (OPT("--room-size"))
			O.room_size = (unsigned)strtoul(v, NULL, 10);
		else if (OPT("--rate"))
			O.rate = atof(v);
		else if (OPT("--paced-events"))
			O.paced_events = (unsigned)strtoul(v, NULL, 10);
		else if (OPT("--batch"))
			O.batch = (unsigned)strtoul(v, NULL, 10);
		else if (OPT("--nng-url"))
			O.nng_url = v;
		else if (OPT("--kafka-brokers"))
			O.kafka_brokers = v;
		else if (OPT("--drain"))
			O.drain = atof(v);
		else if (!strcmp(a, "--hop"))
			O.hop = true;
		else if (!strcmp(a, "--no-max"))
			O.no_max = true;
		else if (OPT("--via")) {
			if (!strcmp(v, "http"))
				O.via = VIA_HTTP;
			else if (!strcmp(v, "node"))
				O.via = VIA_NODE;
			else if (!strcmp(v, "nng"))
				O.via = VIA_NNG;
			else if (!strcmp(v, "kafka"))
				O.via = VIA_KAFKA;
			else
				die("--via: http, node, nng or kafka");
		}
		else if (OPT("--posters"))
			O.posters = (unsigned)strtoul(v, NULL, 10);
		else if (OPT("--publish-path"))
			O.publish_path = v;
		else if (OPT("--event"))
			O.event = v;
		else if (OPT("--idle-timeout"))
			O.idle_timeout = atof(v);
		else if (OPT("--duration"))
			O.duration = atof(v);
		else if (OPT("--interval"))
			O.interval_ms = atof(v);
		else if (!strcmp(a, "--busy-poll"))
			O.busy_poll = true;
		else if (OPT("--hold"))
			O.hold = atof(v);
		else if (OPT("--settle"))
			O.settle = atof(v);
		else if (OPT("--timeout"))
			O.timeout = atof(v);
		else if (OPT("--rss-pid"))
			O.server_pid = (pid_t)atoi(v);
		else if (OPT("--rss-at"))
			O.n_rss_at = bl_parse_list(v, O.rss_at, 16);
		else if (OPT("--in-topic"))
			O.in_topic = v;
		else if (OPT("--backend")) {
			if (!strcmp(v, "sse"))
				O.backend_sse = true;
			else if (strcmp(v, "none"))
				die("--backend: sse or none");
		} else {
			fprintf(stderr, "loadgen: unknown or incomplete option '%s'\n", a);
			usage(stderr);
			exit(2);
		}
#undef OPT
	}
	if (O.port <= 0 || O.port > 65535)
		die("--port is required");
	if (!O.concurrency)
		O.concurrency = 1;
	if (O.mode == M_ROOMS) {
		if (!O.window_set)
			O.window = 4096;
		if (!O.room_size || O.room_size > 65535)
			die("--room-size: 1..65535");
		if (!O.batch)
			O.batch = 1;
		if (O.paced_events == (unsigned)-1)
			O.paced_events = O.events;
		if (O.rate <= 0)
			O.paced_events = 0;
		if (O.no_max)
			O.events = 0;
		if (O.hop && O.via != VIA_NNG)
			die("--hop needs --via nng");
		if (O.hop) {
			g_nrooms = (O.clients + O.room_size - 1) / O.room_size;
			O.clients = 0;
		}
	} else if (O.mode == M_EVENTS) {
		if (!O.events_set)
			O.events = 0;
		if (!O.burst)
			O.burst = 1;
		if (O.window_set && !O.window)
			die("--window: at least 1");
		if (O.duration <= 0 && !O.events)
			die("events: --duration or --events");
	} else if (!O.window)
		O.window = 1;
	if (O.pipe_path && O.mode != M_FANOUT)
		die("--pipe is for fanout");
	if (!O.posters)
		O.posters = 1;
	if (O.posters > 64)
		O.posters = 64;
}

static void resolve(void)
{
	struct addrinfo hints, *res;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	int rc = getaddrinfo(O.host, NULL, &hints, &res);
	if (rc)
		die("%s: %s", O.host, gai_strerror(rc));
	memcpy(&g_addr, res->ai_addr, sizeof g_addr);
	g_addr.sin_port = htons((uint16_t)O.port);
	freeaddrinfo(res);
}

/* wait: GET /healthz until 200 (blocking; used by compare.sh instead of curl). */
static int cmd_wait(void)
{
	uint64_t deadline = bl_now_ns() + secs(O.timeout);
	while (bl_now_ns() < deadline && !g_stop) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct timeval tv = {1, 0};
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&g_addr, sizeof g_addr) == 0) {
			char req[256], resp[64];
			int n = snprintf(req, sizeof req, "GET /healthz HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
					 O.host);
			if (write(fd, req, (size_t)n) == n) {
				ssize_t r = read(fd, resp, sizeof resp - 1);
				if (r >= 12 && !memcmp(resp + 9, "200", 3)) {
					close(fd);
					return 0;
				}
			}
		}
		if (fd >= 0)
			close(fd);
		usleep(20000);
	}
	fprintf(stderr, "loadgen: %s:%d/healthz did not answer 200 within %.1f s\n", O.host, O.port, O.timeout);
	return 1;
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);
	resolve();
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	if (O.mode == M_WAIT)
		return cmd_wait();

	g_rng ^= bl_now_ns() * 0x2545F4914F6CDD1Dull ^ (uint64_t)getpid();
	memset(g_pad, 'x', sizeof g_pad);
	uint64_t fd_limit = bl_raise_nofile();
	unsigned want = O.clients;
	unsigned spare = O.posters + 16;
	bool capped = false;
	if ((uint64_t)want + spare > fd_limit) {
		O.clients = fd_limit > spare ? (unsigned)(fd_limit - spare) : 0;
		capped = true;
		fprintf(stderr, "loadgen: fd limit %llu: only %u of %u clients possible in one process\n",
			(unsigned long long)fd_limit, O.clients, want);
	}
	if (!O.src_addrs)
		O.src_addrs = O.clients > 25000 ? (O.clients + 24999) / 25000 : 1;
	if (O.src_addrs > 1 && (ntohl(g_addr.sin_addr.s_addr) >> 24) != 127) {
		fprintf(stderr, "loadgen: --src-addrs needs a loopback target; using one source address\n");
		O.src_addrs = 1;
	}

	g_ep = epoll_create1(EPOLL_CLOEXEC);
	g_rx = xrealloc(NULL, RX_SIZE);
	g_cl = calloc(O.clients ? O.clients : 1, sizeof *g_cl);
	if (g_ep < 0 || !g_cl)
		die("setup failed");
	for (unsigned i = 0; i < O.clients; i++)
		g_cl[i].fd = -1, g_cl[i].state = C_NEW;
	g_nhttp = O.posters + 1;
	g_http = calloc(g_nhttp, sizeof *g_http);
	if (!g_http)
		die("out of memory");
	for (size_t i = 0; i < g_nhttp; i++) {
		g_http[i].fd = -1;
		g_http[i].state = H_DEAD;
		g_http[i].kind = i == 0 ? H_SSE : H_POSTER;
	}
	if (!O.server_pid)
		O.n_rss_at = 0;

	double load_before = bl_loadavg1();
	bool ok = true;
	char err[160] = "";

	/* the backend subscribes before any client exists */
	if (O.mode == M_ACK && O.backend_sse) {
		g_stage = "backend subscribe";
		httpc *h = &g_http[0];
		if (!http_open(h))
			die("cannot connect the SSE backend to %s:%d", O.host, O.port);
		char req[512];
		int n = snprintf(req, sizeof req,
				 "GET /api/subscribe?topic=%s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\n%s%s%s\r\n",
				 O.in_topic, O.host, O.port, O.token[0] ? "Authorization: Bearer " : "", O.token,
				 O.token[0] ? "\r\n" : "");
		http_queue(h, req, (size_t)n);
		h->state = H_SSE_HDR;
		http_flush(h);
		g_pump = pump_backend;
		if (!loop_until(sse_ready, bl_now_ns() + secs(5)))
			die("the SSE subscription to %s was not confirmed within 5 s", O.in_topic);
	}

	if (O.mode == M_ROOMS && O.via == VIA_KAFKA) {
		g_stage = "kafka producer";
		if (!O.kafka_brokers)
			die("--via kafka needs --kafka-brokers HOST:PORT");
		if (!kafka_pub_start(err, sizeof err))
			die("%s", err);
	}
	if (O.mode == M_ROOMS && O.via == VIA_NNG) {
		g_stage = "nng dial";
		if (!nng_pub_start(err, sizeof err))
			die("%s", err);
		uint64_t until = bl_now_ns() + secs(10);
		while (!nng_pipes_up() && bl_now_ns() < until && !g_stop)
			usleep(2000);
		if (!nng_pipes_up())
			die("nng: no connection to %s within 10 s", O.nng_url);
	}

	if (O.pipe_path)
		pipe_open();

	/* connect, pausing at each --rss-at count to let the server settle and read its RSS */
	g_stage = "connect";
	uint64_t rss_counts[16];
	long rss_kb[16];
	size_t n_rss = 0;
	uint64_t connect_ns = 0;
	int64_t srv_cpu_connect = 0, sys_cpu_connect = 0, irq_cpu_connect = 0;
	int64_t self_cpu_connect = 0;
	uint64_t steps[17];
	size_t n_steps = 0;
	for (size_t i = 0; i < O.n_rss_at; i++)
		if (O.rss_at[i] < O.clients)
			steps[n_steps++] = O.rss_at[i];
	steps[n_steps++] = O.clients;
	uint64_t deadline = bl_now_ns() + secs(O.connect_timeout);
	for (size_t si = 0; si < n_steps && !g_stop; si++) {
		g_connect_target = (unsigned)steps[si];
		uint64_t t = bl_now_ns();
		int64_t sc = O.server_pid ? bl_proc_cpu_ns(O.server_pid) : 0, mc = bl_self_cpu_ns();
		int64_t yc, yi;
		bl_system_cpu_ns(&yc, &yi);
		if (!loop_until(connects_done, deadline)) {
			snprintf(err, sizeof err, "connect phase did not finish within %.0f s (%u of %u connected)",
				 O.connect_timeout, S.ready, g_connect_target);
			ok = false;
		}
		connect_ns += bl_now_ns() - t;
		if (O.server_pid)
			srv_cpu_connect += bl_proc_cpu_ns(O.server_pid) - sc;
		self_cpu_connect += bl_self_cpu_ns() - mc;
		sys_delta(&yc, &yi);
		sys_cpu_connect += yc;
		irq_cpu_connect += yi;
		if (!ok)
			break;
		bool want_rss = false;
		for (size_t k = 0; k < O.n_rss_at; k++)
			if (O.rss_at[k] == steps[si] || (si == n_steps - 1 && O.rss_at[k] >= O.clients))
				want_rss = true;
		if (want_rss) {
			loop_until(NULL, bl_now_ns() + secs(O.settle));
			rss_counts[n_rss] = S.ready;
			rss_kb[n_rss++] = bl_proc_rss_kb(O.server_pid);
		}
	}
	if (ok && S.ready < O.clients) {
		snprintf(err, sizeof err, "%u of %u clients connected", S.ready, O.clients);
		ok = false;
	}
	double connect_s = (double)connect_ns / 1e9;
	double self_cpu_pct_connect = connect_ns ? 100.0 * (double)self_cpu_connect / (double)connect_ns : 0;
	double srv_cpu_pct_connect = connect_ns && O.server_pid ? 100.0 * (double)srv_cpu_connect / (double)connect_ns : -1;

	/* the measured phase */
	uint64_t phase_ns = 0;
	int64_t srv_cpu = -1, self_cpu = 0, sys_cpu = 0, irq_cpu = 0;
	/* events: the counters and timings of the send phase and the drain after it */
	double m_base[8] = {0}, m_stop[8] = {0}, m_end[8] = {0};
	uint64_t ev_send_ns = 0, ev_stored_ns = 0, ev_target = 0;
	int64_t srv_cpu_send = -1, self_cpu_send = 0;
	bool ev_all_stored = false;
	if (O.mode == M_FANOUT && O.pipe_path && S.ready > 0 && !g_stop && ok) {
		/* warm-up: the bus consumer must be fetching before anything is measured */
		g_stage = "warm-up";
		uint64_t until = bl_now_ns() + secs(20);
		static const char warm[] = "{\"type\":\"emit\",\"event\":\"warm\",\"data\":[]}";
		while (g_ev.warm_seen < S.ready && bl_now_ns() < until && !g_stop) {
			pipe_queue(warm, sizeof warm - 1);
			pipe_flush();
			loop_until(NULL, bl_now_ns() + secs(0.1));
		}
		if (g_ev.warm_seen < S.ready) {
			snprintf(err, sizeof err, "warm-up: %llu of %u clients got a warm emit within 20 s",
				 (unsigned long long)g_ev.warm_seen, S.ready);
			ok = false;
		}
		loop_until(NULL, bl_now_ns() + secs(0.2)); /* the last warm emits arrive */
	}
	if (O.mode == M_FANOUT && S.ready > 0 && !g_stop && ok) {
		g_stage = "fanout";
		g_pump = O.pipe_path ? pump_publish_pipe : pump_publish;
		int64_t sc = O.server_pid ? bl_proc_cpu_ns(O.server_pid) : 0, mc = bl_self_cpu_ns();
		bl_system_cpu_ns(&sys_cpu, &irq_cpu);
		uint64_t idle = 0, last_progress = bl_now_ns();
		uint64_t before = S.published + S.deliveries;
		while (!fanout_done() && !g_stop) {
			loop_until(fanout_done, bl_now_ns() + secs(0.25));
			uint64_t now = bl_now_ns(), cur = S.published + S.deliveries;
			if (cur != before)
				last_progress = now, before = cur;
			idle = now - last_progress;
			if (idle > secs(O.idle_timeout)) {
				snprintf(err, sizeof err,
					 "no progress for %.1f s: %llu of %llu deliveries, %llu of %u events published",
					 O.idle_timeout, (unsigned long long)S.deliveries, (unsigned long long)S.expected,
					 (unsigned long long)S.published, O.events);
				ok = false;
				break;
			}
		}
		phase_ns = g_last_delivery > g_pub_t0 ? g_last_delivery - g_pub_t0 : 0;
		sys_delta(&sys_cpu, &irq_cpu);
		if (O.server_pid)
			srv_cpu = bl_proc_cpu_ns(O.server_pid) - sc;
		self_cpu = bl_self_cpu_ns() - mc;
		if (ok && S.deliveries < S.expected) {
			snprintf(err, sizeof err, "%llu of %llu deliveries", (unsigned long long)S.deliveries,
				 (unsigned long long)S.expected);
			ok = false;
		}
	} else if (O.mode == M_EVENTS && S.ready > 0 && !g_stop && ok) {
		g_stage = "events";
		if (O.window_set) {
			g_ev.ring = 1;
			while (g_ev.ring < 2 * O.window)
				g_ev.ring <<= 1;
			g_ev.ts = calloc((size_t)O.clients * g_ev.ring, sizeof *g_ev.ts);
			if (!g_ev.ts)
				die("out of memory");
		}
		if (O.n_metrics && !read_metrics(m_base)) {
			snprintf(err, sizeof err, "GET /metrics failed");
			ok = false;
		}
		int64_t sc = O.server_pid ? bl_proc_cpu_ns(O.server_pid) : 0, mc = bl_self_cpu_ns();
		bl_system_cpu_ns(&sys_cpu, &irq_cpu);
		g_ev.t0 = bl_now_ns();
		g_ev.t_end = g_ev.t0 + secs(O.duration);
		g_ev.running = ok;
		g_pump = pump_events;
		loop_until(events_sending_done, UINT64_MAX / 2);
		g_pump = NULL;
		if (!g_ev.t_stop)
			g_ev.t_stop = bl_now_ns();
		ev_send_ns = g_ev.t_stop - g_ev.t0;
		if (O.server_pid)
			srv_cpu_send = bl_proc_cpu_ns(O.server_pid) - sc;
		self_cpu_send = bl_self_cpu_ns() - mc;
		if (O.n_metrics && ok)
			read_metrics(m_stop);
		memcpy(m_end, m_stop, sizeof m_end);
		/* drain: the clients' buffers flushed (and acks in); the first counter grown by
		 * what was sent, or no progress for --drain s */
		ev_target = g_ev.sent;
		uint64_t last_progress = bl_now_ns(), t_done = 0;
		double last_v = O.n_metrics ? m_stop[0] : 0;
		uint64_t last_acked = g_ev.acked;
		/* the CPU readings at the last progress: a drain that ends by giving up (some
		 * events never stored) must not count its idle wait into the CPU %s */
		int64_t cpu_srv = srv_cpu_send >= 0 ? srv_cpu_send + sc : 0, cpu_self = self_cpu_send + mc, cpu_sys, cpu_irq;
		bl_system_cpu_ns(&cpu_sys, &cpu_irq);
		while (ok && !g_stop) {
			bool flushed = loop_until(clients_flushed, bl_now_ns() + secs(0.02));
			uint64_t now = bl_now_ns();
			bool progress = false;
			if (g_ev.acked != last_acked)
				progress = true, last_acked = g_ev.acked;
			bool stored = true;
			if (O.n_metrics) {
				double v[8];
				if (read_metrics(v) && v[0] >= 0) {
					if (v[0] != last_v)
						progress = true, last_v = v[0];
					stored = v[0] - m_base[0] >= (double)ev_target;
					memcpy(m_end, v, sizeof v);
				}
			}
			if (progress || (flushed && stored)) {
				last_progress = now;
				cpu_srv = O.server_pid ? bl_proc_cpu_ns(O.server_pid) : 0;
				cpu_self = bl_self_cpu_ns();
				bl_system_cpu_ns(&cpu_sys, &cpu_irq);
			}
			if (flushed && stored) {
				t_done = now;
				ev_all_stored = true;
				break;
			}
			if (now - last_progress > secs(O.drain) && (flushed || !O.window_set))
				break;
			if (now - g_ev.t_stop > secs(60)) {
				snprintf(err, sizeof err, "the drain took more than 60 s");
				ok = false;
				break;
			}
		}
		if (!t_done)
			t_done = last_progress;
		ev_stored_ns = t_done > g_ev.t0 ? t_done - g_ev.t0 : 0;
		phase_ns = ev_stored_ns;
		sys_cpu = cpu_sys - sys_cpu;
		irq_cpu = cpu_irq - irq_cpu;
		if (O.server_pid)
			srv_cpu = cpu_srv - sc;
		self_cpu = cpu_self - mc;
		if (O.n_metrics && ok && !ev_all_stored)
			note_reason("%s grew by %.0f of %llu events sent", O.metrics[0], m_end[0] - m_base[0],
				    (unsigned long long)ev_target);
		if (!g_ev.sent) {
			snprintf(err, sizeof err, "no event was sent");
			ok = false;
		}
	} else if (O.mode == M_ACK && S.ready > 0 && !g_stop) {
		g_stage = "ack";
		int64_t sc = O.server_pid ? bl_proc_cpu_ns(O.server_pid) : 0, mc = bl_self_cpu_ns();
		bl_system_cpu_ns(&sys_cpu, &irq_cpu);
		uint64_t t0 = bl_now_ns();
		S.ack_running = true;
		for (unsigned i = 0; i < O.clients; i++) {
			if (g_cl[i].state != C_READY)
				continue;
			if (O.interval_ms > 0) /* spread the clients over one interval */
				g_cl[i].ack_next = t0 + (uint64_t)(O.interval_ms * 1e6 * i / O.clients) + 1;
			else
				ack_send(&g_cl[i]);
		}
		loop_until(NULL, t0 + secs(O.duration));
		S.ack_running = false;
		phase_ns = bl_now_ns() - t0;
		sys_delta(&sys_cpu, &irq_cpu);
		if (O.server_pid)
			srv_cpu = bl_proc_cpu_ns(O.server_pid) - sc;
		self_cpu = bl_self_cpu_ns() - mc;
		if (!loop_until(acks_drained, bl_now_ns() + secs(2))) {
			snprintf(err, sizeof err, "acks still outstanding 2 s after the end");
			ok = false;
		}
		if (!S.acks) {
			snprintf(err, sizeof err, "no ack came back");
			ok = false;
		}
	} else if (O.mode == M_ROOMS && ok && (S.ready > 0 || O.hop) && !g_stop) {
		if (!O.hop) {
			g_nrooms = (O.clients + O.room_size - 1) / O.room_size;
			g_room_members = calloc(g_nrooms, sizeof *g_room_members);
			g_room_synced = calloc(g_nrooms, sizeof *g_room_synced);
			if (!g_room_members || !g_room_synced)
				die("out of memory");
			for (unsigned i = 0; i < O.clients; i++) {
				g_cl[i].room = i / O.room_size;
				if (g_cl[i].state == C_READY && g_cl[i].sid_len)
					g_room_members[i / O.room_size]++;
			}
			for (uint32_t r = 0; r < g_nrooms; r++)
				if (!g_room_members[r])
					g_rooms_synced++; /* nobody to wait for */
		}
		if (!g_nrooms)
			g_nrooms = 1;
		g_nemits = O.events + O.paced_events;
		g_emits = calloc(g_nemits ? g_nemits : 1, sizeof *g_emits);
		if (!g_emits)
			die("out of memory");
		if (!O.hop) {
			g_stage = "join";
			uint64_t t = bl_now_ns();
			ok = rooms_setup(err, sizeof err, &g_join_attempts);
			g_join_ns = bl_now_ns() - t;
		}
		if (ok && O.events && !g_stop) {
			g_stage = "rooms max-rate";
			ok = rooms_phase(&g_ph[0], "max", O.events, 0, err, sizeof err);
		}
		if (ok && O.paced_events && !g_stop) {
			loop_until(NULL, bl_now_ns() + secs(0.3)); /* a breath between the runs */
			g_stage = "rooms paced";
			ok = rooms_phase(&g_ph[1], "paced", O.paced_events, O.rate, err, sizeof err);
		}
	} else if (O.mode == M_CONNECT && !g_stop && O.hold != 0) {
		g_stage = "hold";
		fprintf(stderr, "loadgen: holding %u connections %s\n", S.ready,
			O.hold < 0 ? "until SIGINT/SIGTERM/SIGUSR1" : "");
		loop_until(NULL, bl_now_ns() + secs(O.hold));
	}
	if (g_stop && ok && O.mode != M_CONNECT) {
		snprintf(err, sizeof err, "interrupted during %s", g_stage);
		ok = false;
	}
	double load_after = bl_loadavg1();

	/* ---- report */
	double phase_s = (double)phase_ns / 1e9;
	jadd("{\"tool\":\"loadgen\",\"mode\":\"%s\"", mode_name());
	jstr("label", O.label);
	if (O.tag)
		jstr("tag", O.tag);
	jadd(",\"ok\":%s", ok ? "true" : "false");
	jstr("error", err);
	jadd(",\"clients\":%u,\"clients_requested\":%u,\"fd_capped\":%s,\"fd_limit\":%llu,\"src_addrs\":%u", O.clients,
	     want, capped ? "true" : "false", (unsigned long long)fd_limit, O.src_addrs);
	jadd(",\"connected\":%u,\"connect_failed\":%u,\"closed_after_connect\":%u", S.ready, S.failed,
	     S.closed_after_ready);
	jadd(",\"connect_s\":%.4f,\"connect_rate\":%.1f,\"connect_p50_us\":%.1f,\"connect_p99_us\":%.1f", connect_s,
	     connect_s > 0 ? (S.ready + S.closed_after_ready) / connect_s : 0, us(bl_hist_quantile(&g_conlat, 0.5)),
	     us(bl_hist_quantile(&g_conlat, 0.99)));
	jadd(",\"connect_server_cpu_pct\":%.1f,\"connect_loadgen_cpu_pct\":%.1f", srv_cpu_pct_connect,
	     self_cpu_pct_connect);
	/* CPU used by everything else: other processes, and softirq work (loopback TCP) that
	 * the kernel charged to no process; task times here include the softirq they ran */
	if (connect_ns && O.server_pid)
		jadd(",\"connect_other_cpu_pct\":%.1f",
		     100.0 * (double)(sys_cpu_connect + irq_cpu_connect - srv_cpu_connect - self_cpu_connect) /
			     (double)connect_ns);
	jadd(",\"rss_kb\":[");
	for (size_t i = 0; i < n_rss; i++)
		jadd("%s{\"clients\":%llu,\"kb\":%ld}", i ? "," : "", (unsigned long long)rss_counts[i], rss_kb[i]);
	jadd("]");
	if (O.mode == M_FANOUT) {
		jadd(",\"events\":%u,\"size\":%u,\"window\":%u,\"posters\":%u", O.events, O.size, O.window, O.posters);
		jstr("publish_path", O.publish_path);
		jadd(",\"published\":%llu,\"publish_errors\":%llu,\"deliveries\":%llu,\"expected\":%llu",
		     (unsigned long long)S.published, (unsigned long long)S.publish_errors,
		     (unsigned long long)S.deliveries, (unsigned long long)S.expected);
		/* with several posters, concurrent POSTs race: order is only defined with one */
		if (O.posters == 1)
			jadd(",\"out_of_order\":%llu", (unsigned long long)S.out_of_order);
		else
			jadd(",\"out_of_order\":null");
		jadd(",\"bad_payload\":%llu", (unsigned long long)S.bad_payload);
		jadd(",\"elapsed_s\":%.4f,\"deliveries_per_s\":%.1f,\"events_per_s\":%.1f", phase_s,
		     phase_s > 0 ? (double)S.deliveries / phase_s : 0, phase_s > 0 ? (double)S.published / phase_s : 0);
		jadd(",\"lat_p50_us\":%.1f,\"lat_p99_us\":%.1f,\"lat_p999_us\":%.1f,\"lat_max_us\":%.1f,\"lat_mean_us\":%.1f",
		     us(bl_hist_quantile(&g_lat, 0.5)), us(bl_hist_quantile(&g_lat, 0.99)),
		     us(bl_hist_quantile(&g_lat, 0.999)), us(g_lat.max), g_lat.n ? g_lat.sum / (double)g_lat.n / 1000 : 0);
		jadd(",\"rate\":%.1f", O.rate);
		if (O.pipe_path)
			jstr("pipe", O.pipe_path);
		if (S.published && srv_cpu >= 0 && O.server_pid)
			jadd(",\"server_cpu_us_per_event\":%.3f", (double)srv_cpu / 1000.0 / (double)S.published);
	} else if (O.mode == M_EVENTS) {
		double send_s = (double)ev_send_ns / 1e9, span_s = (double)ev_stored_ns / 1e9;
		jadd(",\"size\":%u,\"burst\":%u,\"rate\":%.1f,\"sndbuf\":%u,\"duration\":%.3f,\"events_limit\":%u", O.size,
		     O.burst, O.rate, O.sndbuf, O.duration, O.events);
		if (O.window_set)
			jadd(",\"window\":%u,\"acked\":%llu,\"ack_mismatch\":%llu", O.window, (unsigned long long)g_ev.acked,
			     (unsigned long long)S.ack_mismatch);
		else
			jadd(",\"window\":null");
		jadd(",\"sent\":%llu,\"writes\":%llu,\"send_s\":%.4f,\"send_rate\":%.1f", (unsigned long long)g_ev.sent,
		     (unsigned long long)g_ev.writes, send_s, send_s > 0 ? (double)g_ev.sent / send_s : 0);
		jadd(",\"send_loadgen_cpu_pct\":%.1f", send_s > 0 ? 100.0 * (double)self_cpu_send / (double)ev_send_ns : 0);
		if (srv_cpu_send >= 0 && send_s > 0)
			jadd(",\"send_server_cpu_pct\":%.1f", 100.0 * (double)srv_cpu_send / (double)ev_send_ns);
		jadd(",\"span_s\":%.4f,\"all_stored\":%s", span_s, ev_all_stored ? "true" : "false");
		if (O.n_metrics) {
			double stored = m_end[0] - m_base[0], during = m_stop[0] - m_base[0];
			jadd(",\"stored\":%.0f,\"stored_rate\":%.1f,\"stored_during_send\":%.0f,\"stored_rate_during_send\":%.1f",
			     stored, span_s > 0 ? stored / span_s : 0, during, send_s > 0 ? during / send_s : 0);
			if (stored > 0 && srv_cpu >= 0 && O.server_pid)
				jadd(",\"server_cpu_us_per_event\":%.3f", (double)srv_cpu / 1000.0 / stored);
			jadd(",\"metrics\":{");
			for (unsigned i = 0; i < O.n_metrics; i++)
				jadd("%s\"%s\":%.0f", i ? "," : "", O.metrics[i], m_base[i] >= 0 ? m_end[i] - m_base[i] : -1);
			jadd("}");
		}
		if (g_lat.n)
			jadd(",\"ack_p50_us\":%.1f,\"ack_p99_us\":%.1f,\"ack_p999_us\":%.1f,\"ack_max_us\":%.1f",
			     us(bl_hist_quantile(&g_lat, 0.5)), us(bl_hist_quantile(&g_lat, 0.99)),
			     us(bl_hist_quantile(&g_lat, 0.999)), us(g_lat.max));
	} else if (O.mode == M_ROOMS) {
		jadd(",\"via\":\"%s\",\"hop\":%s,\"batch\":%u,\"posters\":%u,\"window\":%u,\"room_size\":%u,\"rooms\":%u",
		     via_name(), O.hop ? "true" : "false", via_bus() ? 1 : O.batch, via_bus() ? 1 : O.posters,
		     O.window, O.room_size, g_nrooms);
		jadd(",\"size\":%u,\"rate\":%.1f,\"rooms_synced\":%u,\"join_attempts\":%u,\"join_s\":%.4f",
		     O.size, O.rate, O.hop ? 0 : g_rooms_synced, g_join_attempts, (double)g_join_ns / 1e9);
		jadd(",\"sync_stray\":%llu,\"ctl_errors\":%llu,\"bad_payload\":%llu", (unsigned long long)g_sync_stray,
		     (unsigned long long)g_ctl_errors, (unsigned long long)S.bad_payload);
		if (O.events)
			json_phase("max", &g_ph[0]);
		if (O.paced_events)
			json_phase("paced", &g_ph[1]);
	} else if (O.mode == M_ACK) {
		jadd(",\"backend\":\"%s\",\"duration_s\":%.4f,\"acks\":%llu,\"acks_in_window\":%llu,\"ack_mismatch\":%llu",
		     O.backend_sse ? "sse" : "none", phase_s, (unsigned long long)S.acks,
		     (unsigned long long)S.acks_in_window, (unsigned long long)S.ack_mismatch);
		jadd(",\"requests_per_s\":%.1f,\"interval_ms\":%.3f", phase_s > 0 ? (double)S.acks_in_window / phase_s : 0,
		     O.interval_ms);
		jadd(",\"rtt_p50_us\":%.1f,\"rtt_p99_us\":%.1f,\"rtt_p999_us\":%.1f,\"rtt_max_us\":%.1f,\"rtt_mean_us\":%.1f",
		     us(bl_hist_quantile(&g_lat, 0.5)), us(bl_hist_quantile(&g_lat, 0.99)),
		     us(bl_hist_quantile(&g_lat, 0.999)), us(g_lat.max), g_lat.n ? g_lat.sum / (double)g_lat.n / 1000 : 0);
		if (O.backend_sse && g_lat_in.n)
			jadd(",\"in_p50_us\":%.1f,\"in_p99_us\":%.1f", us(bl_hist_quantile(&g_lat_in, 0.5)),
			     us(bl_hist_quantile(&g_lat_in, 0.99)));
		if (O.backend_sse)
			jadd(",\"backend_sse_events\":%llu,\"backend_acks_posted\":%llu,\"publish_errors\":%llu",
			     (unsigned long long)S.sse_events, (unsigned long long)S.backend_acks,
			     (unsigned long long)S.publish_errors);
	}
	if (phase_ns) {
		jadd(",\"server_cpu_pct\":%.1f,\"loadgen_cpu_pct\":%.1f",
		     srv_cpu >= 0 && O.server_pid ? 100.0 * (double)srv_cpu / (double)phase_ns : -1.0,
		     100.0 * (double)self_cpu / (double)phase_ns);
		if (srv_cpu >= 0 && O.server_pid && sys_cpu > 0)
			jadd(",\"other_cpu_pct\":%.1f",
			     100.0 * (double)(sys_cpu + irq_cpu - srv_cpu - self_cpu) / (double)phase_ns);
		if (O.mode == M_FANOUT && S.deliveries && srv_cpu >= 0 && O.server_pid)
			jadd(",\"server_cpu_ns_per_delivery\":%.1f", (double)srv_cpu / (double)S.deliveries);
		if (O.mode == M_ACK && S.acks && srv_cpu >= 0 && O.server_pid)
			jadd(",\"server_cpu_us_per_request\":%.2f", (double)srv_cpu / 1000.0 / (double)S.acks);
	}
	/* publisher/backend HTTP connections opened: more than --posters (+1 SSE) means the
	 * server closed keep-alive connections */
	jadd(",\"http_connects\":%llu", (unsigned long long)S.http_connects);
	jadd(",\"pings\":%llu,\"load1_before\":%.2f,\"load1_after\":%.2f,\"reasons\":[", (unsigned long long)S.pings,
	     load_before, load_after);
	for (int i = 0; i < NREASONS && g_reasons[i].count; i++) {
		jadd("%s{\"count\":%u", i ? "," : "", g_reasons[i].count);
		jstr("reason", g_reasons[i].text);
		jadd("}");
	}
	jadd("]}");
	printf("%s\n", g_json);
	fflush(stdout);

	/* human summary */
	fprintf(stderr, "loadgen %s%s%s: %u/%u clients connected in %.3f s (%.0f/s, p50 %.0f us, p99 %.0f us)%s\n",
		mode_name(), O.label[0] ? " " : "", O.label,
		S.ready, O.clients, connect_s, connect_s > 0 ? S.ready / connect_s : 0,
		us(bl_hist_quantile(&g_conlat, 0.5)), us(bl_hist_quantile(&g_conlat, 0.99)),
		capped ? " [capped by the fd limit]" : "");
	for (size_t i = 0; i < n_rss; i++)
		fprintf(stderr, "  server RSS with %llu clients: %ld KiB\n", (unsigned long long)rss_counts[i], rss_kb[i]);
	if (O.mode == M_FANOUT) {
		char order[64] = "order not checked (several posters)";
		if (O.posters == 1)
			snprintf(order, sizeof order, "%llu out of order", (unsigned long long)S.out_of_order);
		fprintf(stderr,
			"  fanout: %llu events -> %llu/%llu deliveries in %.3f s = %.0f deliveries/s; latency p50 %.0f us, "
			"p99 %.0f us, max %.0f us; %s\n",
			(unsigned long long)S.published, (unsigned long long)S.deliveries, (unsigned long long)S.expected,
			phase_s, phase_s > 0 ? (double)S.deliveries / phase_s : 0, us(bl_hist_quantile(&g_lat, 0.5)),
			us(bl_hist_quantile(&g_lat, 0.99)), us(g_lat.max), order);
	}
	if (O.mode == M_ROOMS) {
		fprintf(stderr, "  rooms: %u rooms of %u, via %s%s", g_nrooms, O.room_size, via_name(), O.hop ? " (nng_hop)" : "");
		if (!via_bus())
			fprintf(stderr, ", %s over %u connection(s)",
				O.batch > 1 ? "NDJSON batches" : "one envelope per POST", O.posters);
		if (!O.hop)
			fprintf(stderr, "; joined in %.3f s (%u attempt(s))", (double)g_join_ns / 1e9, g_join_attempts);
		fputc('\n', stderr);
		for (int i = 0; i < 2; i++) {
			rphase *ph = &g_ph[i];
			if (!ph->name)
				continue;
			double el = ph->last_delivery > ph->first_pub ? (double)(ph->last_delivery - ph->first_pub) / 1e9 : 0;
			fprintf(stderr,
				"  %s%s: %u emits published at %.0f/s; %.0f emits/s complete, %.0f deliveries/s; lost %lld, "
				"dup %llu; latency p50 %.0f us, p99 %.0f us",
				ph->name, ph->rate > 0 ? "" : " rate", ph->sent, pub_rate(ph),
				el > 0 ? (double)ph->complete / el : 0, el > 0 ? (double)ph->deliveries / el : 0,
				(long long)(ph->expected - ph->deliveries), (unsigned long long)ph->dups, ph_q(ph, 0.5, ph->hop_p50),
				ph_q(ph, 0.99, ph->hop_p99));
			if (ph->srv_cpu >= 0 && O.server_pid && ph->sent)
				fprintf(stderr, "; server %.2f us CPU per emit", (double)ph->srv_cpu / 1000.0 / (double)ph->sent);
			fputc('\n', stderr);
		}
	}
	if (O.mode == M_EVENTS) {
		double send_s = (double)ev_send_ns / 1e9, span_s = (double)ev_stored_ns / 1e9;
		fprintf(stderr, "  events: %llu sent in %.3f s = %.0f/s (%.1f per write), loadgen CPU %.0f %% while sending",
			(unsigned long long)g_ev.sent, send_s, send_s > 0 ? (double)g_ev.sent / send_s : 0,
			g_ev.writes ? (double)g_ev.sent / (double)g_ev.writes : 0,
			send_s > 0 ? 100.0 * (double)self_cpu_send / (double)ev_send_ns : 0);
		if (srv_cpu_send >= 0 && send_s > 0)
			fprintf(stderr, ", server %.0f %%", 100.0 * (double)srv_cpu_send / (double)ev_send_ns);
		fputc('\n', stderr);
		if (O.n_metrics)
			fprintf(stderr, "  %s: +%.0f while sending (%.0f/s), +%.0f in all after %.3f s = %.0f/s%s\n", O.metrics[0],
				m_stop[0] - m_base[0], send_s > 0 ? (m_stop[0] - m_base[0]) / send_s : 0, m_end[0] - m_base[0],
				span_s, span_s > 0 ? (m_end[0] - m_base[0]) / span_s : 0, ev_all_stored ? "" : " (NOT all)");
		for (unsigned i = 1; i < O.n_metrics; i++)
			fprintf(stderr, "  %s: +%.0f\n", O.metrics[i], m_base[i] >= 0 ? m_end[i] - m_base[i] : -1);
		if (g_lat.n)
			fprintf(stderr, "  ack RTT p50 %.0f us, p99 %.0f us, max %.0f us\n", us(bl_hist_quantile(&g_lat, 0.5)),
				us(bl_hist_quantile(&g_lat, 0.99)), us(g_lat.max));
	}
	if (O.mode == M_ACK)
		fprintf(stderr, "  ack (%s backend): %llu acks in %.2f s = %.0f req/s; RTT p50 %.0f us, p99 %.0f us, max %.0f us\n",
			O.backend_sse ? "SSE+POST" : "in-server", (unsigned long long)S.acks, phase_s,
			phase_s > 0 ? (double)S.acks_in_window / phase_s : 0, us(bl_hist_quantile(&g_lat, 0.5)),
			us(bl_hist_quantile(&g_lat, 0.99)), us(g_lat.max));
	if (O.mode == M_ACK && O.backend_sse && g_lat_in.n)
		fprintf(stderr, "  of which client -> gateway -> backend (SSE read): p50 %.0f us, p99 %.0f us\n",
			us(bl_hist_quantile(&g_lat_in, 0.5)), us(bl_hist_quantile(&g_lat_in, 0.99)));
	if (phase_ns && O.server_pid)
		fprintf(stderr,
			"  CPU during the measured phase (%% of one core): server %.0f, loadgen %.0f, everything else %.0f\n",
			srv_cpu >= 0 ? 100.0 * (double)srv_cpu / (double)phase_ns : -1.0,
			100.0 * (double)self_cpu / (double)phase_ns,
			100.0 * (double)(sys_cpu + irq_cpu - srv_cpu - self_cpu) / (double)phase_ns);
	for (int i = 0; i < NREASONS && g_reasons[i].count; i++)
		fprintf(stderr, "  %u x %s\n", g_reasons[i].count, g_reasons[i].text);
	if (!ok)
		fprintf(stderr, "loadgen: FAILED: %s\n", err);

	/* teardown: everything freed, so LeakSanitizer stays quiet in the ASan build */
	for (unsigned i = 0; i < O.clients; i++)
		client_free(&g_cl[i]);
	for (size_t i = 0; i < g_nhttp; i++) {
		http_close(&g_http[i]);
		free(g_http[i].in);
		free(g_http[i].out);
		free(g_http[i].ev);
	}
	while (g_pq_head) {
		pending *p = g_pq_head;
		g_pq_head = p->next;
		free(p);
	}
	nng_pub_stop();
	kafka_pub_stop();
	free(g_emits);
	free(g_room_members);
	free(g_room_synced);
	free(g_ctl);
	free(g_body);
	free(g_http);
	free(g_ev.ts);
	free(g_mbuf);
	free(g_pout);
	if (g_pipe_fd >= 0)
		close(g_pipe_fd);
	free(g_cl);
	free(g_rx);
	close(g_ep);
	return ok ? 0 : 1;
}
