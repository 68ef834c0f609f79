/*
 * bridge.c: socket.io ⇄ envelopes, with the real memory plugin (delivery: inline) and
 * the real sio_server on the fake Engine.IO layer (tests/unit/fake). The test is the
 * backend: it reads what the gateway publishes (raw subscriptions) and publishes
 * envelopes on sio.out; each gw_bus_drain is one loop turn's worth of them.
 *
 *   test_bridge <memory.so>
 */
#include "../test.h"
#include "../fake/eio_fake.h"
#include "bus/bus.h"
#include "config/config.h"
#include "net/net.h"
#include "sio/sio.h"
#include "util/err.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *plugin_path;

/* What the backend side received: the last few messages per subscription. */
typedef struct inbox {
	char msg[16][1024];
	char key[16][64];
	int n;
} inbox;

static void to_inbox(void *ctx, uint64_t sub_id, const char *topic, const void *data, size_t len)
{
	(void)sub_id, (void)topic;
	inbox *b = ctx;
	if (b->n < 16)
		snprintf(b->msg[b->n++], sizeof b->msg[0], "%.*s", (int)len, (const char *)data);
}

typedef struct world {
	gw_config cfg;
	net_loop *net;
	gw_bus *bus;
	sio_server *sio;
	eio_handler eh;
	inbox in, replies;
} world;

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t n = sizeof a;
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || getsockname(fd, (struct sockaddr *)&a, &n))
		abort();
	close(fd);
	return ntohs(a.sin_port);
}

static void world_init(world *w)
{
	memset(w, 0, sizeof *w);
	char yaml[1024], err[1024];
	snprintf(yaml, sizeof yaml,
		 "node_id: gw-t\n"
		 "listen: {host: 127.0.0.1, port: %d}\n"
		 "adapter: {plugin: \"%s\", options: {delivery: inline}}\n"
		 "namespaces:\n  - name: /\n  - name: /chat\n    events: [\"hello\", \"order\"]\n",
		 free_port(), plugin_path);
	if (gw_config_load_string("<test>", yaml, strlen(yaml), &w->cfg, err, sizeof err)) {
		fprintf(stderr, "config: %s\n", err);
		abort();
	}
	/* the loop is not run: the test drains the bus itself; net is what plugin threads
	 * would wake */
	w->net = net_create(&w->cfg);
	w->bus = w->net ? gw_bus_create(&w->cfg, w->net, err, sizeof err) : NULL;
	if (!w->bus) {
		fprintf(stderr, "bus: %s\n", err);
		abort();
	}
	sio_handler sh = gw_bus_sio_handler(w->bus);
	w->sio = sio_server_create(&w->cfg, net_timers(w->net), &sh);
	gw_bus_set_sio(w->bus, w->sio);
	w->eh = sio_server_eio_handler(w->sio);
	if (gw_bus_start(w->bus, err, sizeof err)) {
		fprintf(stderr, "start: %s\n", err);
		abort();
	}
	CHECK(gw_bus_subscribe_fn(w->bus, "sio.in", false, to_inbox, &w->in) > 0);
	CHECK(gw_bus_subscribe_fn(w->bus, "svc.replies", false, to_inbox, &w->replies) > 0);
}

static void world_fini(world *w)
{
	gw_bus_stop(w->bus);
	sio_server_destroy(w->sio);
	gw_bus_destroy(w->bus);
	net_destroy(w->net);
	gw_config_free(&w->cfg);
}

/* What a loop turn does with the bus: apply what was delivered, and what that caused
 * (a reply the gateway published is delivered back to the test's subscription). */
static void settle(world *w)
{
	gw_bus_drain(w->bus);
	for (int i = 0; i < 10 && gw_bus_pending(w->bus); i++)
		gw_bus_drain(w->bus);
}

/* The backend publishes an envelope on sio.out; the loop applies it. */
static void backend(world *w, const char *json)
{
	CHECK_EQ_INT(gw_bus_publish(w->bus, GW_TOPIC_API, "sio.out", NULL, json, strlen(json)), 0);
	settle(w);
}

static eio_session *client(world *w, const char *nsp_connect, char sid[GW_ID_LEN + 1])
{
	eio_session *e = fake_open(&w->eh, NULL);
	fake_recv(e, nsp_connect);
	settle(w);
	const char *r = fake_next(e);
	const char *p = r ? strstr(r, "{\"sid\":\"") : NULL;
	CHECK(p != NULL);
	if (p)
		snprintf(sid, GW_ID_LEN + 1, "%s", p + 8);
	return e;
}

static void drop(world *w, eio_session *e)
{
	fake_drop(e, GW_CLOSE_TRANSPORT_CLOSE);
	settle(w);
	fake_free(e);
}

TEST(client_activity_becomes_envelopes)
{
	world w;
	world_init(&w);
	char sid[GW_ID_LEN + 1];
	eio_session *e = client(&w, "40/chat,{\"token\":\"t\"}", sid);
	CHECK_EQ_INT(w.in.n, 1);
	CHECK_CONTAINS(w.in.msg[0], "\"type\":\"connect\"");
	CHECK_CONTAINS(w.in.msg[0], "\"nsp\":\"/chat\"");
	CHECK_CONTAINS(w.in.msg[0], sid);
	CHECK_CONTAINS(w.in.msg[0], "\"auth\":{\"token\":\"t\"}");
	/* data verbatim (1.50 stays 1.50); an event off the allowlist goes nowhere */
	fake_recv(e, "42/chat,[\"hello\",{\"x\":1.50}]");
	fake_recv(e, "42/chat,[\"secret\",1]");
	settle(&w);
	CHECK_EQ_INT(w.in.n, 2);
	CHECK_CONTAINS(w.in.msg[1], "\"type\":\"event\"");
	CHECK_CONTAINS(w.in.msg[1], "\"event\":\"hello\",\"data\":[{\"x\":1.50}]");
	drop(&w, e);
	CHECK_EQ_INT(w.in.n, 3);
	CHECK_CONTAINS(w.in.msg[2], "\"type\":\"disconnect\"");
	CHECK_CONTAINS(w.in.msg[2], "\"reason\":\"transport close\"");
	world_fini(&w);
}

TEST(emit_reaches_the_room_only)
{
	world w;
	world_init(&w);
	char a_id[GW_ID_LEN + 1], b_id[GW_ID_LEN + 1];
	eio_session *a = client(&w, "40", a_id), *b = client(&w, "40", b_id);
	char env[256];
	/* join, then emit: applied in that order */
	snprintf(env, sizeof env, "{\"type\":\"join\",\"nsp\":\"/\",\"rooms\":[\"%s\"],\"join\":\"r\"}", a_id);
	backend(&w, env);
	backend(&w, "{\"type\":\"emit\",\"nsp\":\"/\",\"rooms\":[\"r\"],\"event\":\"news\",\"data\":[1.50,\"x\"]}");
	CHECK_STR(fake_next(a), "42[\"news\",1.50,\"x\"]");
	CHECK_EQ_INT(fake_unread(b), 0);
	/* to everyone but a */
	snprintf(env, sizeof env, "{\"type\":\"emit\",\"nsp\":\"/\",\"except\":[\"%s\"],\"event\":\"e\"}", a_id);
	backend(&w, env);
	CHECK_EQ_INT(fake_unread(a), 0);
	CHECK_STR(fake_next(b), "42[\"e\"]");
	drop(&w, a);
	drop(&w, b);
	world_fini(&w);
}

TEST(fetch_answers_on_reply_to)
{
	world w;
	world_init(&w);
	char a_id[GW_ID_LEN + 1];
	eio_session *a = client(&w, "40/chat,", a_id);
	backend(&w, "{\"type\":\"fetch\",\"nsp\":\"/chat\",\"reply_to\":\"svc.replies\",\"id\":\"f1\"}");
	CHECK_EQ_INT(w.replies.n, 1);
	CHECK_CONTAINS(w.replies.msg[0], "\"type\":\"sockets\",\"id\":\"f1\"");
	CHECK_CONTAINS(w.replies.msg[0], a_id);
	drop(&w, a);
	world_fini(&w);
}

TEST(emit_with_ack_replies_then_ack_done_last)
{
	world w;
	world_init(&w);
	char a_id[GW_ID_LEN + 1];
	eio_session *a = client(&w, "40", a_id);
	backend(&w, "{\"type\":\"emit\",\"nsp\":\"/\",\"event\":\"quiz\",\"data\":[\"2+2?\"],"
		    "\"ack\":{\"reply_to\":\"svc.replies\",\"id\":\"q7\",\"timeout_ms\":5000}}");
	const char *p = fake_next(a);
	CHECK(p && strncmp(p, "42", 2) == 0);
	char ans[64];
	snprintf(ans, sizeof ans, "43%ld[4]", p ? strtol(p + 2, NULL, 10) : 0L);
	fake_recv(a, ans);
	settle(&w);
	CHECK_EQ_INT(w.replies.n, 2);
	CHECK_CONTAINS(w.replies.msg[0], "\"type\":\"ack\",\"id\":\"q7\"");
	CHECK_CONTAINS(w.replies.msg[0], "\"data\":[4]");
	CHECK_CONTAINS(w.replies.msg[1], "\"type\":\"ack_done\",\"id\":\"q7\"");
	CHECK_CONTAINS(w.replies.msg[1], "\"acked\":1,\"timed_out\":0");
	drop(&w, a);
	world_fini(&w);
}

TEST(disconnect_envelope_disconnects)
{
	world w;
	world_init(&w);
	char a_id[GW_ID_LEN + 1];
	eio_session *a = client(&w, "40/chat,", a_id);
	char env[256];
	snprintf(env, sizeof env, "{\"type\":\"disconnect\",\"nsp\":\"/chat\",\"rooms\":[\"%s\"],\"close\":true}", a_id);
	backend(&w, env);
	CHECK_STR(fake_next(a), "41/chat,");
	CHECK(a->closed);
	CHECK_CONTAINS(w.in.msg[w.in.n - 1], "\"reason\":\"server namespace disconnect\"");
	fake_free(a);
	world_fini(&w);
}

/* The metrics the bus shows, read through its source. */
typedef struct probe {
	gw_metric_sink sink;
	int64_t malformed;
	int64_t plugin_published; /* the memory plugin's own counter, parsed from its stats */
	gw_metric_type plugin_type;
	char plugin_help[128];
	bool plugin_last;
} probe;

static void probe_sample(gw_metric_sink *s, const char *name, gw_metric_type type, const char *help,
			 const char *labels, int64_t value)
{
	(void)labels;
	probe *p = (probe *)s;
	if (strcmp(name, "sio_malformed_envelopes_total") == 0)
		p->malformed = value;
	if (strstr(name, "memory_queue_bytes"))
		p->plugin_last = true; /* the last of its stats lines: all of them were read */
	if (strstr(name, "memory_published_total")) {
		p->plugin_published = value;
		p->plugin_type = type;
		snprintf(p->plugin_help, sizeof p->plugin_help, "%s", help);
	}
}

TEST(bad_envelopes_are_counted_and_lose_nothing)
{
	world w;
	world_init(&w);
	char a_id[GW_ID_LEN + 1];
	eio_session *a = client(&w, "40", a_id);
	backend(&w, "{\"type\":\"emit\",\"nsp\":\"/\""); /* not JSON */
	backend(&w, "{\"type\":\"nonsense\"}");
	backend(&w, "{\"type\":\"emit\",\"nsp\":\"/\",\"event\":\"connect\"}"); /* reserved */
	backend(&w, "{\"type\":\"emit\",\"nsp\":\"/\",\"event\":\"after\"}");
	CHECK_STR(fake_next(a), "42[\"after\"]"); /* what came after still arrives */
	CHECK_EQ_INT(fake_unread(a), 0);
	probe p = {.sink = {.sample = probe_sample}};
	gw_bus_metrics(w.bus, &p.sink);
	CHECK(p.malformed >= 2);
	/* the plugin's stats lines come through as samples with a type and a help */
	CHECK(p.plugin_published >= 4);
	CHECK_EQ_INT(p.plugin_type, GW_METRIC_COUNTER);
	CHECK(p.plugin_help[0] != 0);
	CHECK(p.plugin_last);
	drop(&w, a);
	world_fini(&w);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: test_bridge <memory.so>\n");
		return 2;
	}
	plugin_path = argv[1];
	RUN(client_activity_becomes_envelopes);
	RUN(emit_reaches_the_room_only);
	RUN(fetch_answers_on_reply_to);
	RUN(emit_with_ack_replies_then_ack_done_last);
	RUN(disconnect_envelope_disconnects);
	RUN(bad_envelopes_are_counted_and_lose_nothing);
	return TEST_END();
}
