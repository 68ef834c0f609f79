/* test_eio_server.c — gateway/eio/eio_server.c: real Engine.IO v4 sessions (polling
 * transport) over the real network layer on 127.0.0.1.
 *
 * Each case starts one service loop (net_create → eio_server_create → eio_server_listen
 * → net_run on a second thread) and talks to it as an HTTP client over blocking
 * sockets, one request per connection (`Connection: close`). The handler runs on the
 * loop thread: it records what it sees under a mutex and does every eio_* call itself;
 * the test thread only waits (polling with a deadline) and checks. Teardown as main.c:
 * net_stop_signal, join, eio_server_destroy, net_drain_output, net_destroy. */
#include "../test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <strings.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "config/config.h"
#include "eio/eio.h"
#include "net/net.h"
#include "util/err.h"
#include "util/frame.h"

#define WAIT_MS 5000 /* every wait's deadline */
#define PATH "/eio/"

/* ---- the handler: what the loop thread saw ---- */

typedef enum mode {
	MODE_ECHO,     /* each message is sent back as it came */
	MODE_OVERFLOW, /* each message: six sends of one frame (the queue holds four) */
	MODE_VOLATILE, /* "first": a frame, then a volatile one; "second": a volatile one */
	MODE_RECORD,   /* nothing sent */
	MODE_DISCONNECT, /* each message: a frame, then a server disconnect (deferred: queued) */
} mode;

#define MAX_MSGS 16
#define MAX_RCS 8

typedef struct fixture {
	gw_config cfg;
	net_loop *L;
	eio_server *srv;
	pthread_t thread;
	bool running;
	int port;
	mode mode;

	pthread_mutex_t mu; /* guards what follows */
	int opens, closes;
	int reason;                 /* gw_close_reason of the last close */
	size_t sessions_at_open;    /* eio_server_sessions() in on_open */
	char sid[64];               /* the last opened session's */
	char msgs[MAX_MSGS][64];
	size_t n_msgs;
	int rcs[MAX_RCS];           /* eio_session_send's returns, in order */
	size_t n_rcs;
} fixture;

static void on_open(void *ctx, eio_session *s)
{
	fixture *f = ctx;
	pthread_mutex_lock(&f->mu);
	f->opens++;
	f->sessions_at_open = eio_server_sessions(f->srv);
	snprintf(f->sid, sizeof f->sid, "%s", eio_session_sid(s));
	pthread_mutex_unlock(&f->mu);
}

/* Send one text message ("4" + text); record the return. */
static int send_text(fixture *f, eio_session *s, const char *text, bool volatile_)
{
	gw_frame *fr = gw_frame_text('4', text, strlen(text));
	if (!fr)
		return -GW_ENOMEM;
	int rc = eio_session_send(s, &fr, 1, volatile_);
	gw_frame_unref(fr);
	pthread_mutex_lock(&f->mu);
	if (f->n_rcs < MAX_RCS)
		f->rcs[f->n_rcs++] = rc;
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static void on_message(void *ctx, eio_session *s, const uint8_t *data, size_t len, bool binary)
{
	fixture *f = ctx;
	char text[64];
	snprintf(text, sizeof text, "%.*s", (int)(len < sizeof text ? len : sizeof text - 1), (const char *)data);
	pthread_mutex_lock(&f->mu);
	if (f->n_msgs < MAX_MSGS)
		snprintf(f->msgs[f->n_msgs++], sizeof f->msgs[0], "%s", text);
	pthread_mutex_unlock(&f->mu);
	switch (f->mode) {
	case MODE_ECHO: {
		gw_frame *fr = binary ? gw_frame_from(data, len, true) : gw_frame_text('4', data, len);
		if (fr) {
			int rc = eio_session_send(s, &fr, 1, false);
			gw_frame_unref(fr);
			pthread_mutex_lock(&f->mu);
			if (f->n_rcs < MAX_RCS)
				f->rcs[f->n_rcs++] = rc;
			pthread_mutex_unlock(&f->mu);
		}
		break;
	}
	case MODE_OVERFLOW:
		for (int i = 0; i < 6; i++) {
			char m[16];
			snprintf(m, sizeof m, "m%d", i);
			send_text(f, s, m, false);
		}
		break;
	case MODE_VOLATILE:
		if (!strcmp(text, "first")) {
			send_text(f, s, "a", false);
			send_text(f, s, "b", true); /* the queue holds "a": dropped */
		} else {
			send_text(f, s, "c", true); /* the queue is empty: sent */
		}
		break;
	case MODE_RECORD:
		break;
	case MODE_DISCONNECT:
		send_text(f, s, "bye", false);
		eio_session_close(s, GW_CLOSE_SERVER_DISCONNECT);
		break;
	}
}

static void on_close(void *ctx, eio_session *s, gw_close_reason reason)
{
	fixture *f = ctx;
	(void)s;
	pthread_mutex_lock(&f->mu);
	f->closes++;
	f->reason = (int)reason;
	pthread_mutex_unlock(&f->mu);
}

/* ---- the loop ---- */

/* A port nobody listens on now: bind to 0, read it, close (lws treats port 0 as "do not
 * listen"). */
static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t al = sizeof a;
	int port = -1;
	if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &al) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static void *loop_main(void *arg)
{
	fixture *f = arg;
	net_run(f->L);
	return NULL;
}

/* Start a loop serving PATH; engine_yaml: more lines under engine: (each indented by
 * two spaces and ending in '\n'). 0 or -1. */
static int start(fixture *f, mode m, const char *engine_yaml)
{
	memset(f, 0, sizeof *f);
	pthread_mutex_init(&f->mu, NULL);
	f->mode = m;
	f->reason = GW_CLOSE__COUNT;
	for (int attempt = 0; attempt < 5 && !f->L; attempt++) {
		f->port = free_port();
		if (f->port <= 0)
			continue;
		char yaml[1024], err[1024] = "";
		snprintf(yaml, sizeof yaml,
			 "listen: {host: 127.0.0.1, port: %d}\n"
			 "engine:\n"
			 "  path: " PATH "\n"
			 "%s",
			 f->port, engine_yaml ? engine_yaml : "");
		if (gw_config_load_string("test.yaml", yaml, strlen(yaml), &f->cfg, err, sizeof err)) {
			fprintf(stderr, "config: %s\n", err);
			return -1;
		}
		f->L = net_create(&f->cfg);
		if (!f->L)
			gw_config_free(&f->cfg); /* the port was taken meanwhile: another */
	}
	if (!f->L) {
		fprintf(stderr, "net_create failed\n");
		return -1;
	}
	eio_handler h = {.ctx = f, .on_open = on_open, .on_message = on_message, .on_close = on_close};
	f->srv = eio_server_create(f->L, &f->cfg, f->cfg.engine.path, &h);
	if (!f->srv || eio_server_listen(f->srv)) {
		fprintf(stderr, "eio_server_create/listen failed\n");
		eio_server_destroy(f->srv);
		net_destroy(f->L);
		gw_config_free(&f->cfg);
		return -1;
	}
	if (pthread_create(&f->thread, NULL, loop_main, f)) {
		eio_server_destroy(f->srv);
		net_destroy(f->L);
		gw_config_free(&f->cfg);
		return -1;
	}
	f->running = true;
	return 0;
}

/* Stop the loop and join its thread; the server and sessions still exist. Returns
 * eio_server_sessions() then. */
static size_t stop_loop(fixture *f)
{
	if (f->running) {
		net_stop_signal(f->L);
		pthread_join(f->thread, NULL);
		f->running = false;
	}
	return f->srv ? eio_server_sessions(f->srv) : 0;
}

/* Free everything (main.c's order); the loop thread has returned. */
static void teardown(fixture *f)
{
	stop_loop(f);
	eio_server_destroy(f->srv);
	f->srv = NULL;
	net_drain_output(f->L, 200);
	net_destroy(f->L);
	gw_config_free(&f->cfg);
	pthread_mutex_destroy(&f->mu);
}

/* ---- waiting ---- */

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int get_int(fixture *f, const int *p)
{
	pthread_mutex_lock(&f->mu);
	int v = *p;
	pthread_mutex_unlock(&f->mu);
	return v;
}

/* Wait until *p >= want, at most WAIT_MS; true when it got there. */
static bool wait_int(fixture *f, const int *p, int want)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (get_int(f, p) >= want)
			return true;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > WAIT_MS)
			return false;
		sleep_ms(1);
	}
}

static bool wait_msgs(fixture *f, size_t want)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		pthread_mutex_lock(&f->mu);
		size_t n = f->n_msgs;
		pthread_mutex_unlock(&f->mu);
		if (n >= want)
			return true;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > WAIT_MS)
			return false;
		sleep_ms(1);
	}
}

/* ---- the HTTP client ---- */

typedef struct reply {
	int status;         /* 0: no reply (connect/send/receive failed or timed out) */
	char *raw;          /* the whole reply, NUL-terminated */
	const char *body;   /* into raw, NUL-terminated */
	size_t body_len;
} reply;

static void reply_free(reply *r)
{
	free(r->raw);
	memset(r, 0, sizeof *r);
}

/* One request on a new connection (`Connection: close`); reads the reply until the
 * server closes, at most WAIT_MS per read. body != NULL: sent with a Content-Length. */
static reply http(int port, const char *method, const char *target, const char *body, size_t body_len)
{
	reply r = {0};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return r;
	struct timeval tv = {.tv_sec = WAIT_MS / 1000, .tv_usec = (WAIT_MS % 1000) * 1000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
		fprintf(stderr, "connect: %s\n", strerror(errno));
		close(fd);
		return r;
	}
	char head[1024];
	int hl;
	if (body)
		hl = snprintf(head, sizeof head,
			      "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: text/plain;charset=UTF-8\r\n"
			      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
			      method, target, port, body_len);
	else
		hl = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n",
			      method, target, port);
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	bool ok = buf && hl > 0 && (size_t)hl < sizeof head &&
		  send(fd, head, (size_t)hl, MSG_NOSIGNAL) == hl &&
		  (!body_len || send(fd, body, body_len, MSG_NOSIGNAL) == (ssize_t)body_len);
	while (ok) {
		if (cap - len < 1024) {
			char *nb = realloc(buf, cap *= 2);
			if (!nb) {
				ok = false;
				break;
			}
			buf = nb;
		}
		ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
		if (n == 0)
			break; /* the server closed: the whole reply is here */
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "recv %s %s: %s\n", method, target, strerror(errno));
			ok = false;
			break;
		}
		len += (size_t)n;
	}
	close(fd);
	if (!ok) {
		free(buf);
		return r;
	}
	buf[len] = 0;
	char *end = strstr(buf, "\r\n\r\n");
	int status = 0;
	if (!end || sscanf(buf, "HTTP/1.%*d %d", &status) != 1) {
		fprintf(stderr, "bad reply: %s\n", buf);
		free(buf);
		return r;
	}
	r.raw = buf;
	r.status = status;
	r.body = end + 4;
	r.body_len = len - (size_t)(r.body - buf);
	/* the Content-Length, when there is one, is the body */
	for (char *l = strstr(buf, "\r\n"); l && l < end; l = strstr(l + 2, "\r\n")) {
		size_t cl;
		if (!strncasecmp(l + 2, "content-length:", 15) && sscanf(l + 17, " %zu", &cl) == 1 && cl <= r.body_len) {
			r.body_len = cl;
			end[4 + cl] = 0;
		}
	}
	return r;
}

static reply get(fixture *f, const char *query)
{
	char target[256];
	snprintf(target, sizeof target, PATH "?%s", query);
	return http(f->port, "GET", target, NULL, 0);
}

/* GET/POST on the session sid. */
static reply poll_get(fixture *f, const char *sid)
{
	char q[128];
	snprintf(q, sizeof q, "EIO=4&transport=polling&sid=%s", sid);
	return get(f, q);
}

static reply poll_post(fixture *f, const char *sid, const char *body, size_t len)
{
	char target[256];
	snprintf(target, sizeof target, PATH "?EIO=4&transport=polling&sid=%s", sid);
	return http(f->port, "POST", target, body, len);
}

/* The handshake: its sid into sid (20 chars), its open packet's JSON into *open (NULL
 * to skip). 0 or -1. */
static int handshake(fixture *f, char sid[64], cJSON **open)
{
	reply r = get(f, "EIO=4&transport=polling");
	int rc = -1;
	sid[0] = 0;
	if (r.status == 200 && r.body_len > 1 && r.body[0] == '0') {
		cJSON *j = cJSON_Parse(r.body + 1);
		const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "sid");
		if (cJSON_IsString(s) && strlen(s->valuestring) < 64) {
			strcpy(sid, s->valuestring);
			rc = 0;
		}
		if (open && rc == 0)
			*open = j;
		else
			cJSON_Delete(j);
	} else {
		fprintf(stderr, "handshake: status %d, body %s\n", r.status, r.body ? r.body : "(none)");
	}
	reply_free(&r);
	return rc;
}

/* An error reply: status 400 and {"code":code,"message":<string>}. */
static bool is_error(const reply *r, int code)
{
	if (r->status != 400 || !r->body) {
		fprintf(stderr, "expected 400 code %d, got %d %s\n", code, r->status, r->body ? r->body : "");
		return false;
	}
	cJSON *j = cJSON_Parse(r->body);
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "code");
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message");
	bool ok = cJSON_IsNumber(c) && c->valueint == code && cJSON_IsString(m) && m->valuestring[0];
	if (!ok)
		fprintf(stderr, "expected code %d, got %s\n", code, r->body);
	cJSON_Delete(j);
	return ok;
}

/* ---- cases ---- */

TEST(handshake_opens_a_session)
{
	fixture f;
	if (start(&f, MODE_RECORD, "  ping_interval_ms: 12345\n  ping_timeout_ms: 6789\n  max_payload: 54321\n")) {
		CHECK(0);
		return;
	}
	reply r = get(&f, "EIO=4&transport=polling");
	CHECK_EQ_INT(r.status, 200);
	CHECK(r.body && !strncmp(r.body, "0{", 2));
	cJSON *j = r.body && r.body[0] == '0' ? cJSON_Parse(r.body + 1) : NULL;
	CHECK(j != NULL);
	const cJSON *sid = cJSON_GetObjectItemCaseSensitive(j, "sid");
	const cJSON *upg = cJSON_GetObjectItemCaseSensitive(j, "upgrades");
	const cJSON *pi = cJSON_GetObjectItemCaseSensitive(j, "pingInterval");
	const cJSON *pt = cJSON_GetObjectItemCaseSensitive(j, "pingTimeout");
	const cJSON *mp = cJSON_GetObjectItemCaseSensitive(j, "maxPayload");
	CHECK(cJSON_IsString(sid) && strlen(sid->valuestring) == 20);
	CHECK(cJSON_IsArray(upg) && cJSON_GetArraySize(upg) == 1 &&
	      cJSON_IsString(cJSON_GetArrayItem(upg, 0)) &&
	      !strcmp(cJSON_GetArrayItem(upg, 0)->valuestring, "websocket"));
	CHECK(cJSON_IsNumber(pi) && pi->valuedouble == 12345);
	CHECK(cJSON_IsNumber(pt) && pt->valuedouble == 6789);
	CHECK(cJSON_IsNumber(mp) && mp->valuedouble == 54321);

	CHECK(wait_int(&f, &f.opens, 1));
	size_t n = stop_loop(&f);
	CHECK_EQ_INT(f.opens, 1);
	CHECK_EQ_INT(f.closes, 0);
	CHECK_EQ_INT(f.sessions_at_open, 1);
	CHECK_EQ_INT(n, 1);
	if (cJSON_IsString(sid))
		CHECK_STR(f.sid, sid->valuestring);
	cJSON_Delete(j);
	reply_free(&r);
	teardown(&f);
	CHECK_EQ_INT(f.closes, 1); /* destroyed with the server */
}

TEST(post_messages_in_order_and_echo_in_one_poll)
{
	fixture f;
	if (start(&f, MODE_ECHO, NULL)) {
		CHECK(0);
		return;
	}
	char sid[64];
	CHECK_EQ_INT(handshake(&f, sid, NULL), 0);
	static const char payload[] = "4hello\x1e" "4world";
	reply r = poll_post(&f, sid, payload, sizeof payload - 1);
	CHECK_EQ_INT(r.status, 200);
	CHECK_STR(r.body, "ok");
	reply_free(&r);
	CHECK(wait_msgs(&f, 2));
	pthread_mutex_lock(&f.mu);
	CHECK_EQ_INT(f.n_msgs, 2);
	CHECK_STR(f.msgs[0], "hello");
	CHECK_STR(f.msgs[1], "world");
	CHECK_EQ_INT(f.n_rcs, 2);
	CHECK_EQ_INT(f.rcs[0], 0);
	CHECK_EQ_INT(f.rcs[1], 0);
	pthread_mutex_unlock(&f.mu);

	/* both echoes, in order, in one payload */
	r = poll_get(&f, sid);
	CHECK_EQ_INT(r.status, 200);
	CHECK_EQ_INT(r.body_len, 13);
	CHECK(r.body && r.body_len == 13 && !memcmp(r.body, "4hello\x1e" "4world", 13));
	reply_free(&r);

	size_t n = stop_loop(&f);
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_INT(f.closes, 0);
	teardown(&f);
}

TEST(bad_requests_get_engine_io_errors)
{
	fixture f;
	if (start(&f, MODE_RECORD, NULL)) {
		CHECK(0);
		return;
	}
	reply r = poll_get(&f, "AAAAAAAAAAAAAAAAAAAA");
	CHECK(is_error(&r, 1)); /* unknown sid */
	reply_free(&r);
	r = poll_post(&f, "AAAAAAAAAAAAAAAAAAAA", "4x", 2);
	CHECK(is_error(&r, 1));
	reply_free(&r);
	r = get(&f, "EIO=3&transport=polling");
	CHECK(is_error(&r, 5)); /* unsupported protocol version */
	reply_free(&r);
	r = get(&f, "transport=polling");
	CHECK(is_error(&r, 5)); /* no version at all */
	reply_free(&r);
	r = get(&f, "EIO=4&transport=foo");
	CHECK(is_error(&r, 0)); /* unknown transport */
	reply_free(&r);
	r = http(f.port, "POST", PATH "?EIO=4&transport=polling", "4x", 2);
	CHECK(is_error(&r, 2)); /* a handshake must be a GET */
	reply_free(&r);

	/* an existing session: an empty POST is a bad request, and the session lives on */
	char sid[64];
	CHECK_EQ_INT(handshake(&f, sid, NULL), 0);
	r = poll_post(&f, sid, "", 0);
	CHECK(is_error(&r, 3));
	reply_free(&r);

	size_t n = stop_loop(&f);
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_INT(f.opens, 1);
	CHECK_EQ_INT(f.closes, 0);
	teardown(&f);
}

TEST(heartbeat_without_pong_times_out)
{
	fixture f;
	if (start(&f, MODE_RECORD, "  ping_interval_ms: 100\n  ping_timeout_ms: 100\n")) {
		CHECK(0);
		return;
	}
	char sid[64];
	CHECK_EQ_INT(handshake(&f, sid, NULL), 0);
	/* held until the first ping */
	reply r = poll_get(&f, sid);
	CHECK_EQ_INT(r.status, 200);
	CHECK_STR(r.body, "2");
	reply_free(&r);
	/* no pong: a held poll is answered with the close packet when the timeout closes
	 * the session */
	r = poll_get(&f, sid);
	CHECK_EQ_INT(r.status, 200);
	CHECK_STR(r.body, "1");
	reply_free(&r);
	CHECK(wait_int(&f, &f.closes, 1));
	CHECK_EQ_INT(get_int(&f, &f.closes), 1);
	CHECK_EQ_INT(get_int(&f, &f.reason), GW_CLOSE_PING_TIMEOUT);
	r = poll_get(&f, sid);
	CHECK(is_error(&r, 1)); /* gone */
	reply_free(&r);
	size_t n = stop_loop(&f);
	CHECK_EQ_INT(n, 0);
	teardown(&f);
}

TEST(heartbeat_with_pongs_stays_open)
{
	fixture f;
	if (start(&f, MODE_RECORD, "  ping_interval_ms: 100\n  ping_timeout_ms: 100\n")) {
		CHECK(0);
		return;
	}
	char sid[64];
	CHECK_EQ_INT(handshake(&f, sid, NULL), 0);
	/* five intervals, each answered: ~0.5 s, five ping timeouts' worth */
	for (int i = 0; i < 5; i++) {
		reply r = poll_get(&f, sid);
		CHECK_EQ_INT(r.status, 200);
		CHECK_STR(r.body, "2");
		bool ping = r.status == 200 && r.body && !strcmp(r.body, "2");
		reply_free(&r);
		r = poll_post(&f, sid, "3", 1);
		CHECK_EQ_INT(r.status, 200);
		CHECK_STR(r.body, "ok");
		reply_free(&r);
		if (!ping)
			break;
	}
	CHECK_EQ_INT(get_int(&f, &f.closes), 0);
	size_t n = stop_loop(&f);
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_INT(f.closes, 0);
	teardown(&f);
}

TEST(client_close_packet)
{
	fixture f;
	if (start(&f, MODE_RECORD, NULL)) {
		CHECK(0);
		return;
	}
	char sid[64];
	CHECK_EQ_INT(handshake(&f, sid, NULL), 0);
	reply r = poll_post(&f, sid, "1", 1);
	CHECK_EQ_INT(r.status, 200);
	CHECK_STR(r.body, "ok");
	reply_free(&r);
	CHECK(wait_int(&f, &f.closes, 1));
	CHECK_EQ_INT(get_int(&f, &f.reason), GW_CLOSE_TRANSPORT_CLOSE);
	r = poll_get(&f, sid);
	CHECK(is_error(&r, 1));
	reply_free(&r);
	size_t n = stop_loop(&f);
	CHECK_EQ_INT(n, 0);
	CHECK_EQ_INT(f.closes, 1);
	teardown(&f);
	CHECK_EQ_INT(f.closes, 1); /* not closed again by the shutdown */
}

TEST(send_queue_overflow_closes)
{
	fixture f;
	if (start(&f, MODE_OVERFLOW, "  send_queue: 4\n")) {
		CHECK(0);
		return;
	}
	char sid[64];
	CHECK_EQ_INT(handshake(&f, sid, NULL), 0);
	reply r = poll_post(&f, sid, "4go", 3);
	CHECK_EQ_INT(r.status, 200);
	CHECK_STR(r.body, "ok");
	reply_free(&r);
	CHECK(wait_int(&f, &f.closes, 1));
	CHECK_EQ_INT(get_int(&f, &f.reason), GW_CLOSE_QUEUE_OVERFLOW);
	pthread_mutex_lock(&f.mu);
	CHECK_EQ_INT(f.n_rcs, 6);
	for (size_t i = 0; i < 4 && i < f.n_rcs; i++)
		CHECK_EQ_INT(f.rcs[i], 0);
	if (f.n_rcs == 6) {
		CHECK_EQ_INT(f.rcs[4], -GW_EFULL);   /* the fifth does not fit: closing */
		CHECK_EQ_INT(f.rcs[5], -GW_ECLOSED); /* and the session takes no more */
	}
	pthread_mutex_unlock(&f.mu);
	r = poll_get(&f, sid);
	CHECK(is_error(&r, 1));
	reply_free(&r);
	size_t n = stop_loop(&f);
	CHECK_EQ_INT(n, 0);
	CHECK_EQ_INT(f.closes, 1);
	teardown(&f);
}

TEST(a_pong_does_not_cancel_a_pending_close)
{
	/* the overflow's close rides on the heartbeat timer: a pong in the same payload
	 * (answering the ping the client just got) must not re-arm it as a ping timer, or
	 * the session lingers until the client happens to poll again */
	fixture f;
	if (start(&f, MODE_OVERFLOW, "  send_queue: 4\n  ping_interval_ms: 100\n  ping_timeout_ms: 5000\n")) {
		CHECK(0);
		return;
	}
	char sid[64];
	CHECK_EQ_INT(handshake(&f, sid, NULL), 0);
	reply r = poll_get(&f, sid);
	CHECK_STR(r.body, "2");
	reply_free(&r);
	r = poll_post(&f, sid, "4go\x1e" "3", 5);
	CHECK_EQ_INT(r.status, 200);
	reply_free(&r);
	CHECK(wait_int(&f, &f.closes, 1));
	CHECK_EQ_INT(get_int(&f, &f.reason), GW_CLOSE_QUEUE_OVERFLOW);
	size_t n = stop_loop(&f);
	CHECK_EQ_INT(n, 0);
	teardown(&f);
}

TEST(a_pong_does_not_cancel_a_deferred_disconnect)
{
	/* a server disconnect with packets queued waits (up to ping_timeout) for the next
	 * GET to carry them; a pong POSTed meanwhile must not turn that wait into a ping
	 * timer, after which the session would never close */
	fixture f;
	if (start(&f, MODE_DISCONNECT, "  ping_interval_ms: 100\n  ping_timeout_ms: 300\n")) {
		CHECK(0);
		return;
	}
	char sid[64];
	CHECK_EQ_INT(handshake(&f, sid, NULL), 0);
	reply r = poll_get(&f, sid);
	CHECK_STR(r.body, "2");
	reply_free(&r);
	r = poll_post(&f, sid, "4go", 3);
	CHECK_EQ_INT(r.status, 200);
	reply_free(&r);
	r = poll_post(&f, sid, "3", 1);
	CHECK_EQ_INT(r.status, 200);
	reply_free(&r);
	CHECK(wait_int(&f, &f.closes, 1));
	CHECK_EQ_INT(get_int(&f, &f.reason), GW_CLOSE_SERVER_DISCONNECT);
	size_t n = stop_loop(&f);
	CHECK_EQ_INT(n, 0);
	teardown(&f);
}

TEST(volatile_dropped_when_queue_not_empty)
{
	fixture f;
	if (start(&f, MODE_VOLATILE, NULL)) {
		CHECK(0);
		return;
	}
	char sid[64];
	CHECK_EQ_INT(handshake(&f, sid, NULL), 0);
	reply r = poll_post(&f, sid, "4first", 6);
	CHECK_EQ_INT(r.status, 200);
	reply_free(&r);
	CHECK(wait_msgs(&f, 1));
	pthread_mutex_lock(&f.mu);
	CHECK_EQ_INT(f.n_rcs, 2);
	CHECK_EQ_INT(f.rcs[0], 0);
	CHECK_EQ_INT(f.rcs[1], -GW_EFULL);
	pthread_mutex_unlock(&f.mu);
	r = poll_get(&f, sid);
	CHECK_EQ_INT(r.status, 200);
	CHECK_STR(r.body, "4a"); /* not "4a\x1e4b" */
	reply_free(&r);

	/* with the queue empty, a volatile packet goes */
	r = poll_post(&f, sid, "4second", 7);
	CHECK_EQ_INT(r.status, 200);
	reply_free(&r);
	CHECK(wait_msgs(&f, 2));
	pthread_mutex_lock(&f.mu);
	CHECK_EQ_INT(f.n_rcs, 3);
	CHECK_EQ_INT(f.rcs[2], 0);
	pthread_mutex_unlock(&f.mu);
	r = poll_get(&f, sid);
	CHECK_EQ_INT(r.status, 200);
	CHECK_STR(r.body, "4c");
	reply_free(&r);

	CHECK_EQ_INT(get_int(&f, &f.closes), 0);
	size_t n = stop_loop(&f);
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_INT(f.closes, 0);
	teardown(&f);
}

TEST(server_destroy_closes_with_shutdown)
{
	fixture f;
	if (start(&f, MODE_RECORD, NULL)) {
		CHECK(0);
		return;
	}
	char sid[64];
	CHECK_EQ_INT(handshake(&f, sid, NULL), 0);
	CHECK_EQ_INT(handshake(&f, sid, NULL), 0);
	CHECK(wait_int(&f, &f.opens, 2));
	size_t n = stop_loop(&f);
	CHECK_EQ_INT(n, 2);
	CHECK_EQ_INT(f.closes, 0);
	/* the loop thread has returned: the close callbacks run here */
	eio_server_destroy(f.srv);
	f.srv = NULL;
	CHECK_EQ_INT(f.closes, 2);
	CHECK_EQ_INT(f.reason, GW_CLOSE_SHUTDOWN);
	teardown(&f);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	RUN(handshake_opens_a_session);
	RUN(post_messages_in_order_and_echo_in_one_poll);
	RUN(bad_requests_get_engine_io_errors);
	RUN(heartbeat_without_pong_times_out);
	RUN(heartbeat_with_pongs_stays_open);
	RUN(client_close_packet);
	RUN(send_queue_overflow_closes);
	RUN(a_pong_does_not_cancel_a_pending_close);
	RUN(a_pong_does_not_cancel_a_deferred_disconnect);
	RUN(volatile_dropped_when_queue_not_empty);
	RUN(server_destroy_closes_with_shutdown);
	return TEST_END();
}
