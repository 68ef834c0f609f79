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

/* One counter of a bus, by name. */
typedef struct one_probe {
	gw_metric_sink sink;
	const char *name;
	int64_t value;
} one_probe;

static void one_sample(gw_metric_sink *s, const char *name, gw_metric_type type, const char *help,
		       const char *labels, int64_t value)
{
	(void)type, (void)help, (void)labels;
	one_probe *p = (one_probe *)s;
	if (strcmp(name, p->name) == 0)
		p->value = value;
}

/* sio_inbound_dropped_total of one loop's bus. */
static int64_t dropped(gw_bus *bus)
{
	one_probe p = {.sink = {.sample = one_sample}, .name = "sio_inbound_dropped_total"};
	gw_bus_metrics(bus, &p.sink);
	return p.value;
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

/* ---- engine.workers: two loops on one plugin ---- */

typedef struct world2 {
	gw_config base, cfg[2];
	net_loop *net[2];
	gw_bus *bus[2];
	sio_server *sio[2];
	eio_handler eh[2];
	inbox replies;
} world2;

static void world2_init(world2 *w, int inbound_queue)
{
	memset(w, 0, sizeof *w);
	char yaml[1024], err[1024];
	snprintf(yaml, sizeof yaml,
		 "node_id: gw-t\n"
		 "listen: {host: 127.0.0.1, port: %d}\n"
		 "engine: {workers: 2}\n"
		 "adapter: {plugin: \"%s\", inbound_queue: %d, options: {delivery: inline}}\n",
		 free_port(), plugin_path, inbound_queue);
	if (gw_config_load_string("<test>", yaml, strlen(yaml), &w->base, err, sizeof err)) {
		fprintf(stderr, "config: %s\n", err);
		abort();
	}
	for (int k = 0; k < 2; k++) {
		char taken[1][GW_TAG_LEN + 1];
		memcpy(taken[0], w->cfg[0].node_tag, sizeof taken[0]);
		CHECK_EQ_INT(gw_config_loop(&w->base, k, (const char(*)[GW_TAG_LEN + 1])taken, &w->cfg[k]), 0);
		w->net[k] = net_create(&w->cfg[k]);
		CHECK(w->net[k] != NULL);
		w->bus[k] = k == 0 ? gw_bus_create(&w->cfg[0], w->net[0], err, sizeof err)
				   : gw_bus_add_loop(w->bus[0], &w->cfg[1], w->net[1]);
		CHECK(w->bus[k] != NULL);
		sio_handler sh = gw_bus_sio_handler(w->bus[k]);
		w->sio[k] = sio_server_create(&w->cfg[k], net_timers(w->net[k]), &sh);
		gw_bus_set_sio(w->bus[k], w->sio[k]);
		w->eh[k] = sio_server_eio_handler(w->sio[k]);
	}
	CHECK(strcmp(w->cfg[0].node_tag, w->cfg[1].node_tag) != 0);
	CHECK_STR(w->cfg[0].topics.node, w->base.topics.node);
	CHECK(strcmp(w->cfg[1].topics.node, w->base.topics.node) != 0);
	CHECK_EQ_INT(gw_bus_start(w->bus[0], err, sizeof err), 0);
	CHECK(gw_bus_subscribe_fn(w->bus[0], "svc.replies", false, to_inbox, &w->replies) > 0);
}

static void world2_fini(world2 *w)
{
	gw_bus_stop(w->bus[0]);
	for (int k = 1; k >= 0; k--) {
		sio_server_destroy(w->sio[k]);
		gw_bus_destroy(w->bus[k]);
	}
	for (int k = 0; k < 2; k++) {
		net_destroy(w->net[k]);
		gw_config_loop_free(&w->base, &w->cfg[k]);
	}
	gw_config_free(&w->base);
}

static void settle2(world2 *w)
{
	for (int i = 0; i < 10 && (gw_bus_pending(w->bus[0]) || gw_bus_pending(w->bus[1])); i++)
		for (int k = 0; k < 2; k++)
			gw_bus_drain(w->bus[k]);
}

static eio_session *client2(world2 *w, int k, char sid[GW_ID_LEN + 1])
{
	eio_session *e = fake_open(&w->eh[k], NULL);
	fake_recv(e, "40");
	settle2(w);
	const char *r = fake_next(e);
	const char *p = r ? strstr(r, "{\"sid\":\"") : NULL;
	CHECK(p != NULL);
	if (p)
		snprintf(sid, GW_ID_LEN + 1, "%s", p + 8);
	CHECK(strncmp(sid, w->cfg[k].node_tag, GW_TAG_LEN) == 0); /* the id names its loop */
	return e;
}

static void backend2(world2 *w, const char *json)
{
	CHECK_EQ_INT(gw_bus_publish(w->bus[0], GW_TOPIC_API, "sio.out", NULL, json, strlen(json)), 0);
	settle2(w);
}

TEST(two_loops_one_parse_every_loop_applies_one_answer_per_node)
{
	world2 w;
	world2_init(&w, 1024);
	char a_id[GW_ID_LEN + 1], b_id[GW_ID_LEN + 1];
	eio_session *a = client2(&w, 0, a_id), *b = client2(&w, 1, b_id);
	backend2(&w, "{\"type\":\"emit\",\"nsp\":\"/\",\"event\":\"news\",\"data\":[1]}");
	CHECK_STR(fake_next(a), "42[\"news\",1]");
	CHECK_STR(fake_next(b), "42[\"news\",1]");
	/* a fetch: one answer with both loops' sockets */
	backend2(&w, "{\"type\":\"fetch\",\"nsp\":\"/\",\"reply_to\":\"svc.replies\",\"id\":\"f1\"}");
	CHECK_EQ_INT(w.replies.n, 1);
	CHECK_CONTAINS(w.replies.msg[0], "\"type\":\"sockets\",\"id\":\"f1\"");
	CHECK_CONTAINS(w.replies.msg[0], a_id);
	CHECK_CONTAINS(w.replies.msg[0], b_id);
	/* an emit with ack: each loop's ack, then one ack_done counting both */
	backend2(&w, "{\"type\":\"emit\",\"nsp\":\"/\",\"event\":\"quiz\",\"data\":[0],"
		     "\"ack\":{\"reply_to\":\"svc.replies\",\"id\":\"q1\",\"timeout_ms\":5000}}");
	eio_session *v[2] = {a, b};
	for (int k = 0; k < 2; k++) {
		const char *p = fake_next(v[k]);
		CHECK(p && strncmp(p, "42", 2) == 0);
		char ans[64];
		snprintf(ans, sizeof ans, "43%ld[%d]", p ? strtol(p + 2, NULL, 10) : 0L, k);
		fake_recv(v[k], ans);
		settle2(&w);
		CHECK_CONTAINS(w.replies.msg[1 + k], "\"type\":\"ack\",\"id\":\"q1\"");
		/* the first loop is done: no ack_done yet; the second's completes the node's */
		CHECK_EQ_INT(w.replies.n, k == 0 ? 2 : 4);
	}
	backend2(&w, "{\"type\":\"fetch\",\"nsp\":\"/\",\"rooms\":[\"none\"],\"reply_to\":\"svc.replies\",\"id\":\"f2\"}");
	CHECK_EQ_INT(w.replies.n, 5);
	CHECK_CONTAINS(w.replies.msg[3], "\"type\":\"ack_done\",\"id\":\"q1\"");
	CHECK_CONTAINS(w.replies.msg[3], "\"acked\":2,\"timed_out\":0");
	CHECK_CONTAINS(w.replies.msg[4], "\"id\":\"f2\"");
	/* a reply on topics.reply goes to the loop of the socket it names */
	fake_recv(b, "421[\"ask\"]");
	settle2(&w);
	char ack[256];
	snprintf(ack, sizeof ack, "{\"type\":\"ack\",\"id\":\"%s:1\",\"data\":[\"yes\"]}", b_id);
	CHECK_EQ_INT(gw_bus_publish(w.bus[0], GW_TOPIC_API, w.base.topics.reply, NULL, ack, strlen(ack)), 0);
	settle2(&w);
	CHECK_STR(fake_next(b), "431[\"yes\"]");
	CHECK_EQ_INT(fake_unread(a), 0);
	fake_drop(a, GW_CLOSE_TRANSPORT_CLOSE);
	fake_drop(b, GW_CLOSE_TRANSPORT_CLOSE);
	settle2(&w);
	fake_free(a);
	fake_free(b);
	world2_fini(&w);
}

TEST(two_loops_a_full_queue_refuses_for_every_loop)
{
	world2 w;
	world2_init(&w, 1); /* each loop's queue holds one message */
	char a_id[GW_ID_LEN + 1], b_id[GW_ID_LEN + 1];
	eio_session *a = client2(&w, 0, a_id), *b = client2(&w, 1, b_id);
	/* the first fills both queues; only loop 0's is drained: loop 1 has no room for the
	 * fetch, so no loop takes it (the memory plugin counts it dropped; Kafka delivers it
	 * again), and no half answer with loop 0's sockets alone goes out */
	const char *e1 = "{\"type\":\"emit\",\"nsp\":\"/\",\"event\":\"x\"}";
	CHECK_EQ_INT(gw_bus_publish(w.bus[0], GW_TOPIC_API, "sio.out", NULL, e1, strlen(e1)), 0);
	for (int i = 0; i < 100 && !gw_bus_pending(w.bus[1]); i++)
		usleep(1000); /* (the plugin's thread delivers) */
	gw_bus_drain(w.bus[0]);
	const char *f1 = "{\"type\":\"fetch\",\"nsp\":\"/\",\"reply_to\":\"svc.replies\",\"id\":\"f1\"}";
	CHECK_EQ_INT(gw_bus_publish(w.bus[0], GW_TOPIC_API, "sio.out", NULL, f1, strlen(f1)), 0);
	for (int i = 0; i < 100 && !dropped(w.bus[1]); i++)
		usleep(1000);
	CHECK_EQ_INT(dropped(w.bus[1]), 1);
	CHECK(!gw_bus_pending(w.bus[0])); /* not queued on loop 0 either */
	settle2(&w);
	CHECK_EQ_INT(w.replies.n, 0);
	CHECK_STR(fake_next(a), "42[\"x\"]");
	CHECK_STR(fake_next(b), "42[\"x\"]");
	/* with room again: one answer with both loops' sockets */
	backend2(&w, "{\"type\":\"fetch\",\"nsp\":\"/\",\"reply_to\":\"svc.replies\",\"id\":\"f2\"}");
	CHECK_EQ_INT(w.replies.n, 1);
	CHECK_CONTAINS(w.replies.msg[0], "\"id\":\"f2\"");
	CHECK_CONTAINS(w.replies.msg[0], a_id);
	CHECK_CONTAINS(w.replies.msg[0], b_id);
	fake_drop(a, GW_CLOSE_TRANSPORT_CLOSE);
	fake_drop(b, GW_CLOSE_TRANSPORT_CLOSE);
	settle2(&w);
	fake_free(a);
	fake_free(b);
	world2_fini(&w);
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
	RUN(two_loops_one_parse_every_loop_applies_one_answer_per_node);
	RUN(two_loops_a_full_queue_refuses_for_every_loop);
	return TEST_END();
}
