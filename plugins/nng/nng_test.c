/* nng_test.c — the NNG bus plugin: the shared battery (tests/unit/plugin/battery.h) over
 * every nng transport it can use here (ipc://, tcp://127.0.0.1, ws://127.0.0.1, inproc://)
 * and in loopback, then what only this plugin promises: the wire
 * framing seen by a raw nng peer (what nngcat or a backend in another language sees),
 * exact-topic filtering, keys on the wire, reconnects, overload counted, options and
 * their errors, and a bounded stop() while a peer floods the receive socket.
 *
 * Lives next to the plugin like nng's own *_test.c; built and registered from
 * tests/meson.build (it links the battery and the gateway's loader).
 *
 * Usage: test_nng <path/to/nng.so> [battery-ipc|-thread|-pair|-tcp|-ws|-inproc|-loopback]... [unit]
 * (no selection: all). Addresses: ipc sockets in a fresh temp dir, tcp ports the kernel
 * picks, so parallel runs never collide. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/supplemental/util/platform.h>

#include "../../tests/unit/test.h"
#include "../../tests/unit/plugin/battery.h"
#include "bus/loader.h"

static const siogw_plugin *D;
static char dir[64];
static const int DEADLINE = 5000;

/* ---- helpers ------------------------------------------------------------------------ */

static const char *url(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "ipc://%s/%s", dir, name);
	return buf;
}

/* A TCP port nobody listens on right now (the kernel picks it). */
static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
		perror("free_port");
		exit(2);
	}
	close(fd);
	return ntohs(a.sin_port);
}

typedef struct mi {
	fake_host *h;
	void *self;
	siogw_optval *opts;
	size_t n_opts;
	bool stopped;
	char err[512];
} mi;

/* Create (and start unless no_start) with "key=value" overrides; returns create's (or
 * start's) rc. On failure nothing is left behind. */
static int mi_up(mi *m, const char *const *kv, size_t n, bool no_start)
{
	memset(m, 0, sizeof *m);
	m->h = fh_new();
	if (battery_resolve_options(D, kv, n, &m->opts, &m->n_opts, m->err, sizeof m->err) != 0) {
		fprintf(stderr, "  options: %s\n", m->err);
		fh_free(m->h);
		m->h = NULL;
		return -1;
	}
	int rc = D->create(fh_host(m->h), m->opts, m->n_opts, &m->self, m->err, sizeof m->err);
	if (rc == 0 && !no_start) {
		rc = D->start(m->self, m->err, sizeof m->err);
		if (rc != 0) {
			D->stop(m->self);
			D->destroy(m->self);
		}
	}
	if (rc != 0) {
		battery_free_options(m->opts, m->n_opts);
		fh_free(m->h);
		m->h = NULL;
	}
	return rc;
}

static void mi_down(mi *m)
{
	if (!m->h)
		return;
	if (!m->stopped)
		D->stop(m->self);
	D->destroy(m->self);
	battery_free_options(m->opts, m->n_opts);
	fh_free(m->h);
	m->h = NULL;
}

static uint64_t stat_of(mi *m, const char *name)
{
	char buf[4096];
	D->stats(m->self, buf, sizeof buf);
	size_t nl = strlen(name);
	for (const char *l = buf; *l;) {
		if (strncmp(l, name, nl) == 0 && l[nl] == ' ')
			return strtoull(l + nl + 1, NULL, 10);
		const char *nx = strchr(l, '\n');
		if (!nx)
			break;
		l = nx + 1;
	}
	return UINT64_MAX;
}

static bool wait_stat(mi *m, const char *name, uint64_t want, int ms)
{
	int64_t end = bt_now_ms() + ms;
	for (;;) {
		if (stat_of(m, name) == want)
			return true;
		if (bt_now_ms() >= end)
			return false;
		nng_msleep(5);
	}
}

/* A raw nng peer: what a backend (or nngcat) is. */
static nng_socket raw(bool pub, bool listen, const char *u)
{
	nng_socket s;
	int rv = pub ? nng_pub0_open(&s) : nng_sub0_open(&s);
	if (!rv && !pub)
		rv = nng_socket_set(s, NNG_OPT_SUB_SUBSCRIBE, "", 0);
	if (!rv)
		rv = nng_socket_set_int(s, pub ? NNG_OPT_SENDBUF : NNG_OPT_RECVBUF, 8192);
	if (!rv)
		rv = nng_socket_set_ms(s, NNG_OPT_RECONNMINT, 20);
	if (!rv)
		rv = listen ? nng_listen(s, u, NULL, 0) : nng_dial(s, u, NULL, NNG_FLAG_NONBLOCK);
	if (rv) {
		fprintf(stderr, "raw %s %s %s: %s\n", pub ? "pub" : "sub", listen ? "listen" : "dial", u,
			nng_strerror(rv));
		exit(2);
	}
	return s;
}

static void raw_send(nng_socket s, const char *frame)
{
	nng_send(s, (void *)frame, strlen(frame), 0);
}

/* Next frame on a raw SUB as a string (NULL on timeout). Caller frees. */
static char *raw_recv(nng_socket s, int ms)
{
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, ms);
	nng_msg *m;
	if (nng_recvmsg(s, &m, 0) != 0)
		return NULL;
	char *out = malloc(nng_msg_len(m) + 1);
	if (out) {
		memcpy(out, nng_msg_body(m), nng_msg_len(m));
		out[nng_msg_len(m)] = 0;
	}
	nng_msg_free(m);
	return out;
}

/* Publish probes from a raw PUB until sub_id has received one (pub/sub drops what is
 * sent before a connection is up). */
static bool raw_probe(mi *m, nng_socket pub, const char *topic, uint64_t sub_id)
{
	char frame[256];
	snprintf(frame, sizeof frame, "%s %s", topic, FH_PROBE);
	size_t before = fh_probes(m->h, sub_id);
	int64_t end = bt_now_ms() + DEADLINE;
	while (bt_now_ms() < end) {
		raw_send(pub, frame);
		if (fh_wait_probes(m->h, sub_id, before + 1, 50))
			return true;
	}
	return false;
}

/* Publish from the plugin until the raw SUB sees a probe; returns it stripped. */
static bool plugin_probe(mi *m, nng_socket sub, const char *topic)
{
	int64_t end = bt_now_ms() + DEADLINE;
	while (bt_now_ms() < end) {
		D->publish(m->self, topic, NULL, 0, FH_PROBE, FH_PROBE_LEN, NULL, NULL);
		char *got = raw_recv(sub, 50);
		bool ok = got && strstr(got, FH_PROBE);
		free(got);
		if (ok) {
			while ((got = raw_recv(sub, 20))) /* drain further probes */
				free(got);
			return true;
		}
	}
	return false;
}

static bool rec_is(const fh_rec *r, const char *t, const char *key, const char *data)
{
	return r && strcmp(r->topic, t) == 0 && r->len == strlen(data) && memcmp(r->data, data, r->len) == 0 &&
	       (key ? (r->key_len == strlen(key) && memcmp(r->key, key, r->key_len) == 0) : r->key_len == 0);
}

/* ---- tests -------------------------------------------------------------------------- */

TEST(nng_options_declared)
{
	const char *want[] = {"publish_listen", "publish_dial", "receive_listen", "receive_dial", "loopback",
			      "keys", "reconnect_min", "reconnect_max", "send_buffer", "recv_buffer", "queue",
			      "queue_bytes", "max_message", "tcp_keepalive", "ipc_permissions",
			      "require_peers", "delivery"};
	CHECK_EQ_INT(D->n_options, sizeof want / sizeof want[0]);
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		bool found = false;
		for (size_t j = 0; j < D->n_options; j++)
			if (strcmp(D->options[j].name, want[i]) == 0)
				found = D->options[j].help && D->options[j].help[0];
		CHECK(found);
	}
}

TEST(nng_bad_options)
{
	mi m;
	const char *bad_url[] = {"publish_listen=bogus://x"};
	CHECK(mi_up(&m, bad_url, 1, true) < 0);
	CHECK_CONTAINS(m.err, "publish_listen 'bogus://x'");

	const char *nothing[] = {"publish_listen=", "receive_listen=", "loopback=false"};
	CHECK_EQ_INT(mi_up(&m, nothing, 3, true), -SIOGW_EINVAL);
	CHECK_CONTAINS(m.err, "nothing to receive from");

	const char *mode[] = {"publish_listen=", "receive_listen=", "ipc_permissions=99x"};
	CHECK_EQ_INT(mi_up(&m, mode, 3, true), -SIOGW_EINVAL);
	CHECK_CONTAINS(m.err, "ipc_permissions");

	const char *sizes[] = {"publish_listen=", "receive_listen=", "max_message=2m", "queue_bytes=1m"};
	CHECK_EQ_INT(mi_up(&m, sizes, 4, true), -SIOGW_EINVAL);
	CHECK_CONTAINS(m.err, "max_message");

	/* an address in use fails start() and names the URL */
	char u[128], opt[160];
	snprintf(u, sizeof u, "tcp://127.0.0.1:%d", free_port());
	nng_socket taken = raw(true, true, u);
	snprintf(opt, sizeof opt, "receive_listen=%s", u);
	const char *inuse[] = {"publish_listen=", opt};
	CHECK(mi_up(&m, inuse, 2, false) < 0);
	CHECK_CONTAINS(m.err, u);
	CHECK_CONTAINS(m.err, "cannot listen");
	nng_close(taken);
}

TEST(nng_publish_validation)
{
	mi m;
	const char *kv[] = {"publish_listen=", "receive_listen=", "keys=true", "max_message=1k",
			    "queue_bytes=1m"};
	if (mi_up(&m, kv, sizeof kv / sizeof kv[0], false) != 0) {
		CHECK(!"up");
		return;
	}
	char big[2048] = {0};
	CHECK_EQ_INT(D->publish(m.self, "a b", NULL, 0, "x", 1, NULL, NULL), -SIOGW_EINVAL);
	CHECK_EQ_INT(D->publish(m.self, "", NULL, 0, "x", 1, NULL, NULL), -SIOGW_EINVAL);
	CHECK_EQ_INT(D->publish(m.self, "t", "a b", 3, "x", 1, NULL, NULL), -SIOGW_EINVAL);
	CHECK_EQ_INT(D->publish(m.self, "t", NULL, 0, big, sizeof big, NULL, NULL), -SIOGW_EINVAL);
	CHECK_EQ_INT(D->publish(m.self, "t", NULL, 0, big, 1024, NULL, NULL), 0);
	CHECK_EQ_INT(D->subscribe(m.self, 1, "a b", SIOGW_SUB_PREFIX), -SIOGW_EINVAL);
	CHECK_EQ_INT(D->subscribe(m.self, 2, "", SIOGW_SUB_EXACT), -SIOGW_EINVAL);
	CHECK_EQ_INT(D->subscribe(m.self, 3, "", SIOGW_SUB_PREFIX), 0); /* everything */
	CHECK_EQ_INT(D->unsubscribe(m.self, 99), -SIOGW_EINVAL);
	mi_down(&m);
}

/* What a raw peer sees and sends: "topic payload", exact topics do not match longer
 * ones, frames without a topic are counted. */
TEST(nng_wire_framing)
{
	char pu[128], su[128], o1[160], o2[160];
	snprintf(o1, sizeof o1, "publish_listen=%s", url(pu, sizeof pu, "frame-pub"));
	snprintf(o2, sizeof o2, "receive_listen=%s", url(su, sizeof su, "frame-sub"));
	const char *kv[] = {o1, o2, "loopback=false"};
	mi m;
	if (mi_up(&m, kv, sizeof kv / sizeof kv[0], false) != 0) {
		fprintf(stderr, "  %s\n", m.err);
		CHECK(!"up");
		return;
	}
	nng_socket be_pub = raw(true, false, su), be_sub = raw(false, false, pu);
	CHECK_EQ_INT(D->subscribe(m.self, 1, "sio.out", SIOGW_SUB_EXACT), 0);
	CHECK_EQ_INT(D->subscribe(m.self, 2, "chat.room.", SIOGW_SUB_PREFIX), 0);
	CHECK(raw_probe(&m, be_pub, "sio.out", 1));
	raw_send(be_pub, "sio.outx {\"no\":1}");
	raw_send(be_pub, "sio.out");         /* no separator: nng's "sio.out " filter drops it */
	raw_send(be_pub, " sio.out {}");     /* empty topic: not ours either */
	raw_send(be_pub, "sio.out {\"a\":1}");
	raw_send(be_pub, "chat.room.r1 hello world");
	raw_send(be_pub, "chat.room.r2 ");   /* empty payload is a payload */
	CHECK(fh_wait_count(m.h, 2, 2, DEADLINE));
	CHECK(fh_wait_count(m.h, 1, 1, DEADLINE));
	const fh_rec *r[4] = {0};
	CHECK_EQ_INT(fh_collect(m.h, 1, r, 4), 1);
	CHECK(rec_is(r[0], "sio.out", NULL, "{\"a\":1}"));
	CHECK_EQ_INT(fh_collect(m.h, 2, r, 4), 2);
	CHECK(rec_is(r[0], "chat.room.r1", NULL, "hello world"));
	CHECK(rec_is(r[1], "chat.room.r2", NULL, ""));

	/* a prefix filter lets through what no subscription wants: matched again inside */
	CHECK_EQ_INT(D->subscribe(m.self, 3, "s", SIOGW_SUB_PREFIX), 0);
	raw_send(be_pub, "sio.outx {\"no\":2}");
	raw_send(be_pub, "sio.out {\"b\":2}");
	CHECK(fh_wait_count(m.h, 3, 2, DEADLINE));
	CHECK(fh_wait_count(m.h, 1, 2, DEADLINE));
	CHECK_EQ_INT(fh_count(m.h, 1), 2);

	/* publish: the key stays local, the frame is "topic payload" */
	CHECK(plugin_probe(&m, be_sub, "probe"));
	CHECK_EQ_INT(D->publish(m.self, "sio.in", "sid1", 4, "{\"type\":\"event\"}", 16, NULL, NULL), 0);
	char *got = raw_recv(be_sub, DEADLINE);
	CHECK_STR(got, "sio.in {\"type\":\"event\"}");
	free(got);
	CHECK_EQ_INT(stat_of(&m, "sio_nng_publish_peers"), 1);
	CHECK_EQ_INT(stat_of(&m, "sio_nng_receive_peers"), 1);
	mi_down(&m);
	nng_close(be_pub);
	nng_close(be_sub);
}

TEST(nng_keys_framing)
{
	char pu[128], su[128], o1[160], o2[160];
	snprintf(o1, sizeof o1, "publish_listen=%s", url(pu, sizeof pu, "keys-pub"));
	snprintf(o2, sizeof o2, "receive_listen=%s", url(su, sizeof su, "keys-sub"));
	const char *kv[] = {o1, o2, "loopback=false", "keys=true"};
	mi m;
	if (mi_up(&m, kv, sizeof kv / sizeof kv[0], false) != 0) {
		CHECK(!"up");
		return;
	}
	nng_socket be_pub = raw(true, false, su), be_sub = raw(false, false, pu);
	CHECK_EQ_INT(D->subscribe(m.self, 1, "t", SIOGW_SUB_EXACT), 0);
	CHECK(raw_probe(&m, be_pub, "t ", 1)); /* "t  <probe>": empty key */
	raw_send(be_pub, "t k2 payload with spaces");
	raw_send(be_pub, "t no-second-space");
	raw_send(be_pub, "t  keyless");
	CHECK(fh_wait_count(m.h, 1, 2, DEADLINE));
	const fh_rec *r[3] = {0};
	CHECK_EQ_INT(fh_collect(m.h, 1, r, 3), 2);
	CHECK(rec_is(r[0], "t", "k2", "payload with spaces"));
	CHECK(rec_is(r[1], "t", NULL, "keyless"));
	CHECK(wait_stat(&m, "sio_nng_dropped_malformed_total", 1, DEADLINE));

	CHECK(plugin_probe(&m, be_sub, "probe"));
	CHECK_EQ_INT(D->publish(m.self, "u", "k", 1, "data", 4, NULL, NULL), 0);
	CHECK_EQ_INT(D->publish(m.self, "u", NULL, 0, "nokey", 5, NULL, NULL), 0);
	char *a = raw_recv(be_sub, DEADLINE), *b = raw_recv(be_sub, DEADLINE);
	CHECK_STR(a, "u k data");
	CHECK_STR(b, "u  nokey");
	free(a);
	free(b);
	mi_down(&m);
	nng_close(be_pub);
	nng_close(be_sub);
}

/* loopback: own publications reach own subscriptions, through the same queue. */
TEST(nng_loopback)
{
	const char *kv[] = {"publish_listen=", "receive_listen="};
	mi m;
	if (mi_up(&m, kv, sizeof kv / sizeof kv[0], false) != 0) {
		CHECK(!"up");
		return;
	}
	CHECK_EQ_INT(D->subscribe(m.self, 1, "sio.out", SIOGW_SUB_EXACT), 0);
	fh_slot slot = {.h = m.h};
	CHECK_EQ_INT(D->publish(m.self, "sio.out", "k", 1, "x", 1, fh_dr, &slot), 0);
	CHECK_EQ_INT(D->publish(m.self, "sio.in", NULL, 0, "nobody", 6, NULL, NULL), 0);
	CHECK(fh_wait_count(m.h, 1, 1, DEADLINE));
	CHECK_EQ_INT(slot.count, 1);
	CHECK_EQ_INT(slot.status, 0);
	CHECK_EQ_INT(stat_of(&m, "sio_nng_loopback_total"), 1); /* no copy for sio.in */
	CHECK_EQ_INT(stat_of(&m, "sio_nng_published_total"), 2);
	const fh_rec *r[1] = {0};
	CHECK_EQ_INT(fh_collect(m.h, 1, r, 1), 1);
	CHECK(rec_is(r[0], "sio.out", NULL, "x")); /* keys=false: not carried, as on the wire */
	mi_down(&m);
}

TEST(nng_filter_refcount)
{
	const char *kv[] = {"publish_listen=", "receive_listen="};
	mi m;
	if (mi_up(&m, kv, sizeof kv / sizeof kv[0], false) != 0) {
		CHECK(!"up");
		return;
	}
	CHECK_EQ_INT(D->subscribe(m.self, 1, "t", SIOGW_SUB_EXACT), 0);
	CHECK_EQ_INT(D->subscribe(m.self, 2, "t", SIOGW_SUB_EXACT), 0);
	CHECK_EQ_INT(D->subscribe(m.self, 3, "t", SIOGW_SUB_PREFIX), 0);
	CHECK_EQ_INT(stat_of(&m, "sio_nng_filters"), 2); /* "t " and "t" */
	CHECK_EQ_INT(D->unsubscribe(m.self, 1), 0);
	CHECK_EQ_INT(stat_of(&m, "sio_nng_filters"), 2);
	CHECK_EQ_INT(D->unsubscribe(m.self, 2), 0);
	CHECK_EQ_INT(stat_of(&m, "sio_nng_filters"), 1);
	CHECK_EQ_INT(D->unsubscribe(m.self, 3), 0);
	CHECK_EQ_INT(stat_of(&m, "sio_nng_filters"), 0);
	CHECK_EQ_INT(stat_of(&m, "sio_nng_subscriptions"), 0);
	mi_down(&m);
}

/* The plugin dials; the peer goes away and comes back on the same address. */
TEST(nng_reconnect)
{
	char bo[128], bi[128], o1[160], o2[160];
	url(bo, sizeof bo, "re-out");
	url(bi, sizeof bi, "re-in");
	snprintf(o1, sizeof o1, "receive_dial=%s", bo);
	snprintf(o2, sizeof o2, "publish_dial=%s", bi);
	const char *kv[] = {"publish_listen=", "receive_listen=", o1, o2, "loopback=false",
			    "reconnect_min=20ms", "reconnect_max=100ms"};
	mi m;
	if (mi_up(&m, kv, sizeof kv / sizeof kv[0], false) != 0) {
		fprintf(stderr, "  %s\n", m.err);
		CHECK(!"up");
		return;
	}
	CHECK_EQ_INT(D->subscribe(m.self, 1, "sio.out", SIOGW_SUB_EXACT), 0);
	for (int round = 0; round < 2; round++) {
		/* the backend (re)starts: listens on both */
		nng_socket be_pub = raw(true, true, bo), be_sub = raw(false, true, bi);
		CHECK(wait_stat(&m, "sio_nng_receive_peers", 1, DEADLINE));
		CHECK(wait_stat(&m, "sio_nng_publish_peers", 1, DEADLINE));
		CHECK(raw_probe(&m, be_pub, "sio.out", 1));
		char frame[64];
		snprintf(frame, sizeof frame, "sio.out round-%d", round);
		raw_send(be_pub, frame);
		CHECK(fh_wait_count(m.h, 1, (size_t)round + 1, DEADLINE));
		CHECK(plugin_probe(&m, be_sub, "probe"));
		nng_close(be_pub); /* the backend goes away */
		nng_close(be_sub);
		CHECK(wait_stat(&m, "sio_nng_receive_peers", 0, DEADLINE));
		CHECK(wait_stat(&m, "sio_nng_publish_peers", 0, DEADLINE));
	}
	CHECK(stat_of(&m, "sio_nng_receive_connects_total") >= 2);
	CHECK(stat_of(&m, "sio_nng_receive_disconnects_total") >= 2);
	char buf[256];
	fh_last_log(m.h, buf, sizeof buf);
	CHECK_CONTAINS(buf, "peer gone");
	/* the watchdog: without a peer for 2 x 100 ms + 2 s, both dialers are recreated
	 * (once per period, logged once); the new ones connect when the backend is back */
	CHECK(wait_stat(&m, "sio_nng_dialer_restarts_total", 2, DEADLINE));
	fh_last_log(m.h, buf, sizeof buf);
	CHECK_CONTAINS(buf, "dialer recreated");
	nng_socket be_pub = raw(true, true, bo), be_sub = raw(false, true, bi);
	CHECK(wait_stat(&m, "sio_nng_receive_peers", 1, DEADLINE));
	CHECK(wait_stat(&m, "sio_nng_publish_peers", 1, DEADLINE));
	CHECK(raw_probe(&m, be_pub, "sio.out", 1));
	raw_send(be_pub, "sio.out after-watchdog");
	CHECK(fh_wait_count(m.h, 1, 3, DEADLINE));
	CHECK(plugin_probe(&m, be_sub, "probe"));
	mi_down(&m);
	nng_close(be_pub);
	nng_close(be_sub);
}

/* Overload (delivery: thread): the delivery thread is stuck in deliver(); what does not
 * fit the queue is dropped and counted, and delivery resumes afterwards. */
TEST(nng_overload_counted)
{
	char su[128], o1[160];
	snprintf(o1, sizeof o1, "receive_listen=%s", url(su, sizeof su, "over-sub"));
	const char *kv[] = {"publish_listen=", o1, "queue=16", "delivery=thread"};
	mi m;
	if (mi_up(&m, kv, sizeof kv / sizeof kv[0], false) != 0) {
		CHECK(!"up");
		return;
	}
	nng_socket be_pub = raw(true, false, su);
	CHECK_EQ_INT(D->subscribe(m.self, 1, "t", SIOGW_SUB_EXACT), 0);
	CHECK(raw_probe(&m, be_pub, "t", 1));
	/* probes sent before the first one came back may still be on their way: they would
	 * take queue slots below. Wait until the count stays put (a poll with a deadline). */
	int64_t quiet_end = bt_now_ms() + DEADLINE;
	for (uint64_t prev = UINT64_MAX; bt_now_ms() < quiet_end;) {
		uint64_t now = stat_of(&m, "sio_nng_received_total");
		if (now == prev && stat_of(&m, "sio_nng_queue_messages") == 0)
			break;
		prev = now;
		fh_wait_events(m.h, fh_events(m.h), 100);
	}
	uint64_t base = stat_of(&m, "sio_nng_received_total");
	fh_hold(m.h, true);
	enum { N = 200 };
	for (int i = 0; i < N; i++)
		raw_send(be_pub, "t m");
	CHECK(fh_wait_held(m.h, 1, DEADLINE));
	CHECK(wait_stat(&m, "sio_nng_received_total", base + N, DEADLINE));
	fh_hold(m.h, false);
	/* one was inside deliver(), 16 queued: the rest dropped */
	CHECK(fh_wait_count(m.h, 1, 17, DEADLINE));
	uint64_t dq = stat_of(&m, "sio_nng_dropped_queue_full_total");
	CHECK_EQ_INT(dq, N - 17);
	CHECK_EQ_INT(stat_of(&m, "sio_nng_dropped_total"), dq);
	raw_send(be_pub, "t after");
	CHECK(fh_wait_count(m.h, 1, 18, DEADLINE));
	mi_down(&m);
	nng_close(be_pub);
}

TEST(nng_require_peers)
{
	char su[128], o1[160];
	snprintf(o1, sizeof o1, "receive_listen=%s", url(su, sizeof su, "health-sub"));
	const char *kv[] = {"publish_listen=", o1, "require_peers=true"};
	mi m;
	if (mi_up(&m, kv, sizeof kv / sizeof kv[0], false) != 0) {
		CHECK(!"up");
		return;
	}
	char buf[128] = "";
	CHECK_EQ_INT(D->health(m.self, buf, sizeof buf), -SIOGW_EIO);
	CHECK_CONTAINS(buf, "no peer");
	nng_socket be_pub = raw(true, false, su);
	int64_t end = bt_now_ms() + DEADLINE;
	while (D->health(m.self, buf, sizeof buf) != 0 && bt_now_ms() < end)
		nng_msleep(5);
	CHECK_EQ_INT(D->health(m.self, buf, sizeof buf), 0);
	mi_down(&m);
	nng_close(be_pub);
}

/* stop() returns (bounded) while a peer keeps sending into the receive socket: the case
 * where nng 1.5.2's close can wedge. Runs last: a wedged close leaves nng's reaper stuck
 * for the rest of the process, so the flooding peer is not closed either. */
typedef struct flood {
	nng_socket s;
	atomic_bool stop;
} flood;

static void *flood_main(void *arg)
{
	flood *f = arg;
	while (!atomic_load(&f->stop))
		nng_send(f->s, "t flood", 7, NNG_FLAG_NONBLOCK);
	return NULL;
}

TEST(nng_stop_while_flooded)
{
	char su[128], o1[160];
	snprintf(o1, sizeof o1, "receive_listen=%s", url(su, sizeof su, "flood-sub"));
	const char *kv[] = {"publish_listen=", o1};
	for (int i = 0; i < 3; i++) {
		mi m;
		if (mi_up(&m, kv, sizeof kv / sizeof kv[0], false) != 0) {
			CHECK(!"up");
			return;
		}
		flood f = {.s = raw(true, false, su)};
		atomic_init(&f.stop, false);
		CHECK_EQ_INT(D->subscribe(m.self, 1, "t", SIOGW_SUB_EXACT), 0);
		CHECK(raw_probe(&m, f.s, "t", 1));
		pthread_t th;
		pthread_create(&th, NULL, flood_main, &f);
		CHECK(fh_wait_count(m.h, 1, 100, DEADLINE));
		int64_t t0 = bt_now_ms();
		D->stop(m.self);
		m.stopped = true;
		int64_t took = bt_now_ms() - t0;
		CHECK(took < 2500); /* two bounded closes (1 s each) at most */
		uint64_t total = fh_total(m.h);
		nng_msleep(50);
		CHECK_EQ_INT(fh_total(m.h), total); /* no deliver() after stop() */
		atomic_store(&f.stop, true);
		pthread_join(th, NULL);
		mi_down(&m);
		if (took > 900) {
			fprintf(stderr, "  stop took %lld ms (nng close wedged): leaving the flood socket open\n",
				(long long)took);
			break;
		}
		nng_close(f.s);
	}
}

/* ---- main --------------------------------------------------------------------------- */

static bool want(int argc, char **argv, const char *what)
{
	if (argc <= 2)
		return true;
	for (int i = 2; i < argc; i++)
		if (strcmp(argv[i], what) == 0)
			return true;
	return false;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s <path/to/nng.so> [battery-ipc|battery-thread|battery-pair|battery-tcp|battery-ws|battery-inproc|"
				"battery-loopback]... [unit]\n",
			argv[0]);
		return 2;
	}
	snprintf(dir, sizeof dir, "/tmp/siogw-nng-XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 2;
	}
	char err[512];
	gw_plugin *pl = NULL;
	if (gw_plugin_open(argv[1], NULL, &pl, err, sizeof err) != 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	D = gw_plugin_desc(pl);
	int failed = 0;
	char bus[128], o1[160], o2[160];

	if (want(argc, argv, "battery-ipc")) {
		/* the instance's receive socket dials its own publish socket; bursts stay below
		 * send_buffer, so nothing may be lost: completeness is checked */
		url(bus, sizeof bus, "battery");
		snprintf(o1, sizeof o1, "publish_listen=%s", bus);
		snprintf(o2, sizeof o2, "receive_dial=%s", bus);
		const char *kv[] = {o1, "receive_listen=", o2, "loopback=false", "keys=true",
				    "send_buffer=8192", "recv_buffer=8192"};
		battery_params p = {.dropped_stat = "sio_nng_dropped_refused_total", .order_count = 4000,
				    .deadline_ms = DEADLINE};
		failed += battery_run(argv[1], kv, sizeof kv / sizeof kv[0], &p);
	}
	if (want(argc, argv, "battery-thread")) {
		/* battery-ipc with the delivery thread instead of the receive callback */
		url(bus, sizeof bus, "battery-thread");
		snprintf(o1, sizeof o1, "publish_listen=%s", bus);
		snprintf(o2, sizeof o2, "receive_dial=%s", bus);
		const char *kv[] = {o1, "receive_listen=", o2, "loopback=false", "keys=true",
				    "send_buffer=8192", "recv_buffer=8192", "delivery=thread"};
		battery_params p = {.dropped_stat = "sio_nng_dropped_refused_total", .order_count = 4000,
				    .deadline_ms = DEADLINE};
		failed += battery_run(argv[1], kv, sizeof kv / sizeof kv[0], &p);
	}
	if (want(argc, argv, "battery-pair")) {
		/* pair mode: the instance under test publishes to nobody of its own (no
		 * loopback, no self-dial); a peer instance's PUB dials its SUB listener */
		/* each publishes on a listener nobody dials: their own publishes go nowhere */
		char own[128], own_peer[128], o3[160], o4[160];
		url(bus, sizeof bus, "battery-pair");
		snprintf(o1, sizeof o1, "receive_listen=%s", bus);
		snprintf(o2, sizeof o2, "publish_dial=%s", bus);
		snprintf(o3, sizeof o3, "publish_listen=%s", url(own, sizeof own, "battery-pair-own"));
		snprintf(o4, sizeof o4, "receive_listen=%s", url(own_peer, sizeof own_peer, "battery-pair-peer"));
		const char *kv[] = {o3, o1, "loopback=false", "keys=true", "recv_buffer=8192"};
		const char *peer[] = {o2, "publish_listen=", o4, "loopback=false", "keys=true", "send_buffer=8192"};
		battery_params p = {.dropped_stat = "sio_nng_dropped_refused_total", .order_count = 4000,
				    .deadline_ms = DEADLINE, .pair = true, .peer_options = peer,
				    .n_peer_options = sizeof peer / sizeof peer[0]};
		failed += battery_run(argv[1], kv, sizeof kv / sizeof kv[0], &p);
	}
	if (want(argc, argv, "battery-tcp")) {
		/* 10000 in one burst may exceed pub/sub buffers: lossy, order still checked */
		snprintf(bus, sizeof bus, "tcp://127.0.0.1:%d", free_port());
		snprintf(o1, sizeof o1, "publish_listen=%s", bus);
		snprintf(o2, sizeof o2, "receive_dial=%s", bus);
		const char *kv[] = {o1, "receive_listen=", o2, "loopback=false", "keys=true",
				    "send_buffer=8192", "recv_buffer=8192"};
		battery_params p = {.dropped_stat = "sio_nng_dropped_refused_total", .lossy = true,
				    .deadline_ms = DEADLINE};
		failed += battery_run(argv[1], kv, sizeof kv / sizeof kv[0], &p);
	}
	if (want(argc, argv, "battery-ws")) {
		/* websocket transport: lossy like tcp (a burst may overflow pub/sub buffers) */
		snprintf(bus, sizeof bus, "ws://127.0.0.1:%d/siogw", free_port());
		snprintf(o1, sizeof o1, "publish_listen=%s", bus);
		snprintf(o2, sizeof o2, "receive_dial=%s", bus);
		const char *kv[] = {o1, "receive_listen=", o2, "loopback=false", "keys=true",
				    "send_buffer=8192", "recv_buffer=8192"};
		battery_params p = {.dropped_stat = "sio_nng_dropped_refused_total", .lossy = true,
				    .deadline_ms = DEADLINE};
		failed += battery_run(argv[1], kv, sizeof kv / sizeof kv[0], &p);
	}
	if (want(argc, argv, "battery-inproc")) {
		/* nng's in-process transport; bursts below send_buffer, completeness checked */
		snprintf(bus, sizeof bus, "inproc://siogw-battery-%ld", (long)getpid());
		snprintf(o1, sizeof o1, "publish_listen=%s", bus);
		snprintf(o2, sizeof o2, "receive_dial=%s", bus);
		const char *kv[] = {o1, "receive_listen=", o2, "loopback=false", "keys=true",
				    "send_buffer=8192", "recv_buffer=8192"};
		battery_params p = {.dropped_stat = "sio_nng_dropped_refused_total", .order_count = 4000,
				    .deadline_ms = DEADLINE};
		failed += battery_run(argv[1], kv, sizeof kv / sizeof kv[0], &p);
	}
	if (want(argc, argv, "battery-loopback")) {
		/* no socket at all: the in-process path, lossless up to `queue` */
		const char *kv[] = {"publish_listen=", "receive_listen=", "keys=true"};
		battery_params p = {.dropped_stat = "sio_nng_dropped_refused_total", .deadline_ms = DEADLINE};
		failed += battery_run(argv[1], kv, sizeof kv / sizeof kv[0], &p);
	}
	int rc = 0;
	if (want(argc, argv, "unit")) {
		RUN(nng_options_declared);
		RUN(nng_bad_options);
		RUN(nng_publish_validation);
		RUN(nng_wire_framing);
		RUN(nng_keys_framing);
		RUN(nng_loopback);
		RUN(nng_filter_refcount);
		RUN(nng_reconnect);
		RUN(nng_overload_counted);
		RUN(nng_require_peers);
		RUN(nng_stop_while_flooded); /* last: see there */
		rc = TEST_END();
	}
	gw_plugin_close(pl);
	rmdir(dir); /* nng removes its ipc files on close; a wedged close leaves them */
	return rc || failed ? 1 : 0;
}
