/*
 * sio_server: namespaces, sockets, events, acks, rooms, timeouts, on a fake Engine.IO
 * layer (tests/unit/fake/eio_fake.h): the test plays the client packet by packet and
 * reads every frame the server sends. Timers run on a real libev loop.
 */
#include "../test.h"
#include "../fake/eio_fake.h"
#include "config/config.h"
#include "sio/sio.h"
#include "sio/sio_codec.h"
#include "util/err.h"
#include "util/timer.h"

#include <ev.h>
#include <stdbool.h>

static const char CONFIG[] =
	"engine: {connect_timeout_ms: 50}\n"
	"namespaces:\n"
	"  - name: /\n"
	"  - name: /chat\n"
	"    events: [\"*\"]\n"
	"  - name: /auth\n"
	"    auth: backend\n"
	"    auth_timeout_ms: 50\n"
	"  - name: /jwt\n"
	"    auth: jwt\n"
	"    jwt: {algorithms: [HS256], secret: 0123456789abcdef0123456789abcdef}\n"
	"  - name: /jwtq\n"
	"    auth: jwt\n"
	"    jwt: {algorithms: [HS256], secret: 0123456789abcdef0123456789abcdef, token_from: query.token}\n"
	"  - name: /tenant-vip\n"
	"    auth: backend\n"
	"  - match: \"^/tenant-[a-z0-9]+$\"\n";

/* HS256 with the secret above, {"sub":"u1","exp":4102444800}; then signed with another key */
#define TOKEN "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1MSIsImV4cCI6NDEwMjQ0NDgwMH0" \
	      ".LPMhLh8iZ20OMNoHXlbT0_7kS2pbOOktAqFPSbywQjc"
#define FORGED "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1MSIsImV4cCI6NDEwMjQ0NDgwMH0" \
	       ".C1DO2CDZyYVloQV8-3rqV1PI1QAWEcLsMdIjmpEfvZQ"

/* What the handler saw. */
typedef struct seen {
	int connects, events, disconnects, rooms_created, rooms_deleted;
	int admits, connects_at_admit; /* on_admit, and on_connect calls before it */
	sio_socket *last;
	char event_text[256];
	int64_t ack_id;
	unsigned n_att;
	char att[64];
	char reason[64];
	int acks, done;
	size_t acked, timed_out;
} seen;

static seen S;

static void h_connect(void *ctx, sio_socket *s) { (void)ctx; S.connects++; S.last = s; }
static void h_admit(void *ctx, sio_socket *s)
{
	(void)ctx, (void)s;
	S.admits++;
	S.connects_at_admit = S.connects;
}

static void h_event(void *ctx, sio_socket *s, const cJSON *args, const char *text, size_t text_len,
		    const uint8_t *const *att, const size_t *att_len, unsigned n_att, int64_t ack_id)
{
	(void)ctx, (void)args;
	S.events++;
	S.last = s;
	S.ack_id = ack_id;
	S.n_att = n_att;
	snprintf(S.event_text, sizeof S.event_text, "%.*s", text ? (int)text_len : 0, text ? text : "");
	if (n_att)
		snprintf(S.att, sizeof S.att, "%.*s", (int)att_len[0], (const char *)att[0]);
}

static void h_disconnect(void *ctx, sio_socket *s, const char *reason)
{
	(void)ctx, (void)s;
	S.disconnects++;
	snprintf(S.reason, sizeof S.reason, "%s", reason);
}

static void h_room(void *ctx, sio_socket *s, const char *room, int event)
{
	(void)ctx, (void)s, (void)room;
	S.rooms_created += event == SIO_ROOM_CREATE;
	S.rooms_deleted += event == SIO_ROOM_DELETE;
}

typedef struct world {
	gw_config cfg;
	struct ev_loop *loop;
	gw_timers *timers;
	sio_server *srv;
	eio_handler eh;
} world;

typedef struct shared {
	int live, lost, gone;
	char pid[32];
	uint32_t gen;
} shared;
static shared SH;

static void h_session(void *ctx, int kind, const sio_session_info *i)
{
	(void)ctx;
	SH.live += kind == SIO_SESSION_LIVE;
	SH.lost += kind == SIO_SESSION_LOST;
	SH.gone += kind == SIO_SESSION_GONE;
	snprintf(SH.pid, sizeof SH.pid, "%s", i->pid);
	SH.gen = i->gen;
}

static void world_init_with(world *w, const char *yaml)
{
	memset(&S, 0, sizeof S);
	memset(&SH, 0, sizeof SH);
	memset(w, 0, sizeof *w);
	char err[512];
	if (gw_config_load_string("<test>", yaml, strlen(yaml), &w->cfg, err, sizeof err)) {
		fprintf(stderr, "config: %s\n", err);
		abort();
	}
	w->loop = ev_loop_new(EVFLAG_AUTO);
	w->timers = gw_timers_create(w->loop);
	sio_handler h = {.on_connect = h_connect, .on_event = h_event, .on_disconnect = h_disconnect,
			 .on_room = h_room, .on_admit = h_admit, .on_session = h_session};
	w->srv = sio_server_create(&w->cfg, w->timers, &h);
	w->eh = sio_server_eio_handler(w->srv);
}

static void world_init(world *w) { world_init_with(w, CONFIG); }

static void world_fini(world *w)
{
	sio_server_destroy(w->srv);
	gw_timers_destroy(w->timers);
	ev_loop_destroy(w->loop);
	gw_config_free(&w->cfg);
}

/* Run the loop (timers) until cond or 2 s. */
#define RUN_UNTIL(w, cond)                                                              \
	do {                                                                            \
		uint64_t _end = gw_now_ms() + 2000;                                     \
		while (!(cond) && gw_now_ms() < _end)                                   \
			ev_run((w)->loop, EVRUN_ONCE);                                  \
	} while (0)

/* A session with the client connected to nsp: returns the CONNECT reply's frame. */
static eio_session *connect_to(world *w, const char *connect_packet, const char **reply)
{
	eio_session *e = fake_open(&w->eh, NULL);
	fake_recv(e, connect_packet);
	*reply = fake_next(e);
	return e;
}

static void drop(eio_session *e)
{
	fake_drop(e, GW_CLOSE_TRANSPORT_CLOSE);
	fake_free(e);
}

TEST(connect_main_and_named_namespace)
{
	world w;
	world_init(&w);
	const char *r;
	eio_session *a = connect_to(&w, "40", &r);
	CHECK(r && strncmp(r, "40{\"sid\":\"", 10) == 0 && strlen(r) == 10 + GW_ID_LEN + 2);
	CHECK_EQ_INT(S.connects, 1);
	const char *id = sio_socket_id(S.last);
	CHECK(sio_socket_find(w.srv, id, strlen(id)) == S.last);
	CHECK_STR(sio_socket_nsp(S.last), "/");
	eio_session *b = connect_to(&w, "40/chat,", &r);
	CHECK(r && strncmp(r, "40/chat,{\"sid\":\"", 16) == 0);
	CHECK_STR(sio_socket_nsp(S.last), "/chat");
	CHECK_EQ_INT(S.connects, 2);
	drop(a);
	drop(b);
	CHECK_EQ_INT(S.disconnects, 2);
	CHECK_STR(S.reason, "transport close");
	world_fini(&w);
}

TEST(unknown_namespace_is_connect_error)
{
	world w;
	world_init(&w);
	const char *r;
	eio_session *e = connect_to(&w, "40/nope,", &r);
	CHECK_STR(r, "44/nope,{\"message\":\"Invalid namespace\"}");
	CHECK_EQ_INT(S.connects, 0);
	CHECK(!e->closed); /* the connection stays: another namespace may still be joined */
	drop(e);
	world_fini(&w);
}

TEST(events_reach_the_handler_verbatim)
{
	world w;
	world_init(&w);
	const char *r;
	eio_session *e = connect_to(&w, "40/chat,", &r);
	fake_recv(e, "42/chat,[\"hi\",{\"n\":1.50}]");
	CHECK_EQ_INT(S.events, 1);
	CHECK_STR(S.event_text, "[\"hi\",{\"n\":1.50}]"); /* as sent: 1.50 not re-printed */
	CHECK_EQ_INT(S.ack_id, SIO_NO_ID);
	fake_recv(e, "42/chat,7[\"q\"]");
	CHECK_EQ_INT(S.ack_id, 7);
	CHECK_EQ_INT(sio_socket_ack(S.last, 7, "[\"yes\"]", 7, NULL, 0), 0);
	CHECK_STR(fake_next(e), "43/chat,7[\"yes\"]");
	drop(e);
	world_fini(&w);
}

TEST(binary_event_waits_for_its_attachment)
{
	world w;
	world_init(&w);
	const char *r;
	eio_session *e = connect_to(&w, "40/chat,", &r);
	fake_recv(e, "451-/chat,[\"up\",{\"_placeholder\":true,\"num\":0}]");
	CHECK_EQ_INT(S.events, 0);
	fake_recv_binary(e, "\x01\x02\x03", 3);
	CHECK_EQ_INT(S.events, 1);
	CHECK_EQ_INT(S.n_att, 1);
	CHECK(memcmp(S.att, "\x01\x02\x03", 3) == 0);
	drop(e);
	world_fini(&w);
}

TEST(malformed_packet_closes_the_session)
{
	world w;
	world_init(&w);
	const char *r;
	eio_session *e = connect_to(&w, "40", &r);
	fake_recv(e, "42[bad json");
	CHECK(e->closed);
	CHECK_EQ_INT(e->reason, GW_CLOSE_PARSE_ERROR);
	CHECK_EQ_INT(S.disconnects, 1);
	CHECK_STR(S.reason, "parse error");
	fake_free(e);
	world_fini(&w);
}

TEST(rooms_and_broadcast_with_except)
{
	world w;
	world_init(&w);
	const char *r;
	eio_session *a = connect_to(&w, "40", &r);
	sio_socket *sa = S.last;
	eio_session *b = connect_to(&w, "40", &r);
	sio_socket *sb = S.last;
	eio_session *c = connect_to(&w, "40", &r);
	CHECK_EQ_INT(sio_socket_join(sa, "r"), 1);
	CHECK_EQ_INT(sio_socket_join(sa, "r"), 0); /* already in */
	CHECK_EQ_INT(sio_socket_join(sb, "r"), 1);
	CHECK_EQ_INT(S.rooms_created, 1);
	const char *rooms[] = {"r"}, *except[] = {sio_socket_id(sa)};
	gw_frame *f = gw_frame_from("42[\"news\"]", 10, false);
	CHECK_EQ_INT(sio_broadcast(w.srv, "/", rooms, 1, except, 1, &f, 1, false), 1);
	gw_frame_unref(f);
	CHECK_EQ_INT(fake_unread(a), 0);
	CHECK_STR(fake_next(b), "42[\"news\"]");
	CHECK_EQ_INT(fake_unread(c), 0);
	sio_socket **sel;
	CHECK_EQ_INT(sio_select(w.srv, "/", rooms, 1, NULL, 0, &sel), 2);
	free(sel);
	CHECK_EQ_INT(sio_socket_leave(sa, "r"), 1);
	CHECK_EQ_INT(sio_socket_leave(sb, "r"), 1);
	CHECK_EQ_INT(S.rooms_deleted, 1);
	CHECK_EQ_INT(sio_select(w.srv, "/", rooms, 1, NULL, 0, &sel), 0);
	free(sel);
	drop(a);
	drop(b);
	drop(c);
	world_fini(&w);
}

static void on_ack(void *arg, sio_socket *s, const cJSON *args, const char *text, size_t text_len,
		   const uint8_t *const *att, const size_t *att_len, unsigned n_att)
{
	(void)arg, (void)s, (void)args, (void)att, (void)att_len, (void)n_att;
	S.acks++;
	snprintf(S.event_text, sizeof S.event_text, "%.*s", (int)text_len, text);
}

static void on_done(void *arg, size_t acked, size_t timed_out)
{
	(void)arg;
	S.done++;
	S.acked = acked;
	S.timed_out = timed_out;
}

TEST(emit_with_ack_counts_answers_and_timeouts)
{
	world w;
	world_init(&w);
	const char *r;
	eio_session *a = connect_to(&w, "40", &r);
	eio_session *b = connect_to(&w, "40", &r);
	sio_ack_handler h = {.on_ack = on_ack, .on_done = on_done};
	const char *json = "[\"ask\"]";
	CHECK_EQ_INT(sio_emit_with_ack(w.srv, "/", NULL, 0, NULL, 0, json, strlen(json), NULL, 0, false, 100, &h), 2);
	const char *pa = fake_next(a), *pb = fake_next(b);
	CHECK(pa && strncmp(pa, "42", 2) == 0 && strstr(pa, "[\"ask\"]"));
	CHECK(pb && strncmp(pb, "42", 2) == 0);
	/* a answers with the id it was given; b never does */
	char ans[64];
	long id = strtol(pa + 2, NULL, 10);
	snprintf(ans, sizeof ans, "43%ld[\"ok\"]", id);
	fake_recv(a, ans);
	CHECK_EQ_INT(S.acks, 1);
	CHECK_STR(S.event_text, "[\"ok\"]");
	CHECK_EQ_INT(S.done, 0);
	RUN_UNTIL(&w, S.done);
	CHECK_EQ_INT(S.done, 1);
	CHECK_EQ_INT(S.acked, 1);
	CHECK_EQ_INT(S.timed_out, 1);
	drop(a);
	drop(b);
	world_fini(&w);
}

TEST(a_target_that_leaves_settles_the_emit)
{
	world w;
	world_init(&w);
	const char *r;
	eio_session *a = connect_to(&w, "40", &r);
	sio_ack_handler h = {.on_ack = on_ack, .on_done = on_done};
	CHECK_EQ_INT(sio_emit_with_ack(w.srv, "/", NULL, 0, NULL, 0, "[\"x\"]", 5, NULL, 0, false, 10000, &h), 1);
	drop(a); /* it will never answer: done now, not at the timeout */
	CHECK_EQ_INT(S.done, 1);
	CHECK_EQ_INT(S.acked, 0);
	world_fini(&w);
}

TEST(no_namespace_in_time_closes)
{
	world w;
	world_init(&w);
	eio_session *e = fake_open(&w.eh, NULL);
	RUN_UNTIL(&w, e->closed);
	CHECK(e->closed);
	CHECK_EQ_INT(e->reason, GW_CLOSE_CONNECT_TIMEOUT);
	fake_free(e);
	world_fini(&w);
}

TEST(client_and_server_disconnect)
{
	world w;
	world_init(&w);
	const char *r;
	eio_session *e = connect_to(&w, "40/chat,", &r);
	fake_recv(e, "41/chat,");
	CHECK_EQ_INT(S.disconnects, 1);
	CHECK_STR(S.reason, "client namespace disconnect");
	CHECK(!e->closed);
	fake_recv(e, "40/chat,");
	fake_next(e);
	sio_socket_disconnect(S.last, true);
	CHECK_STR(fake_next(e), "41/chat,");
	CHECK_EQ_INT(S.disconnects, 2);
	CHECK_STR(S.reason, "server namespace disconnect");
	CHECK(e->closed); /* close: the whole connection goes */
	fake_free(e);
	world_fini(&w);
}

/* The client's packets that were on the way when the server disconnected its namespace
 * are dropped; they do not close the connection (and its other namespaces). */
TEST(packets_after_a_server_namespace_disconnect_are_dropped)
{
	world w;
	world_init(&w);
	const char *r;
	eio_session *e = connect_to(&w, "40", &r);
	fake_recv(e, "40/chat,");
	CHECK(strncmp(fake_next(e), "40/chat,", 8) == 0);
	sio_socket_disconnect(S.last, false);
	CHECK_STR(fake_next(e), "41/chat,");
	CHECK_EQ_INT(S.disconnects, 1);
	S.events = 0;
	fake_recv(e, "42/chat,[\"late\"]");
	fake_recv(e, "43/chat,3[]");
	fake_recv(e, "41/chat,");
	CHECK(!e->closed);
	CHECK_EQ_INT(S.events, 0);
	CHECK_EQ_INT(S.disconnects, 1);
	fake_recv(e, "42[\"main\"]"); /* "/" still works */
	CHECK_EQ_INT(S.events, 1);
	fake_recv(e, "42/nope,[\"x\"]"); /* a namespace that does not exist still closes */
	CHECK(e->closed);
	fake_free(e);
	/* a configured namespace this connection never joined closes it, as socket.io */
	e = connect_to(&w, "40", &r);
	fake_recv(e, "42/chat,[\"ghost\"]");
	CHECK(e->closed);
	CHECK_EQ_INT(S.events, 1);
	fake_free(e);
	world_fini(&w);
}

TEST(jwt_auth_token)
{
	world w;
	world_init(&w);
	const char *r;
	eio_session *e = connect_to(&w, "40/jwt,", &r);
	CHECK_STR(r, "44/jwt,{\"message\":\"invalid token\",\"data\":{\"reason\":\"missing\"}}");
	fake_recv(e, "40/jwt,{\"token\":5}");
	CHECK_STR(fake_next(e), "44/jwt,{\"message\":\"invalid token\",\"data\":{\"reason\":\"malformed\"}}");
	fake_recv(e, "40/jwt,{\"token\":\"" FORGED "\"}");
	CHECK_STR(fake_next(e), "44/jwt,{\"message\":\"invalid token\",\"data\":{\"reason\":\"signature\"}}");
	CHECK_EQ_INT(S.connects, 0);
	CHECK_EQ_INT(S.disconnects, 0); /* refused sockets never existed for backends */
	fake_recv(e, "40/jwt,{\"token\":\"" TOKEN "\",\"room\":\"r1\"}");
	CHECK(strncmp(fake_next(e), "40/jwt,{\"sid\":", 14) == 0);
	CHECK_EQ_INT(S.connects, 1);
	CHECK_STR(sio_socket_data(S.last), "{\"sub\":\"u1\",\"exp\":4102444800}");
	CHECK_STR(sio_socket_claims(S.last), "{\"sub\":\"u1\",\"exp\":4102444800}");
	char *hs = sio_socket_handshake(S.last);
	CHECK_CONTAINS(hs, "\"auth\":{\"room\":\"r1\"}"); /* the token is not passed on */
	CHECK(hs && !strstr(hs, "eyJ"));
	free(hs);
	/* "/" has no claims */
	fake_recv(e, "40");
	fake_next(e);
	CHECK(sio_socket_claims(S.last) == NULL);
	drop(e);
	world_fini(&w);
}

TEST(jwt_query_token_is_hidden_from_every_namespace)
{
	world w;
	world_init(&w);
	eio_session *e = fake_open(&w.eh, "{\"headers\":{\"host\":\"h\"},\"query\":{\"EIO\":\"4\",\"token\":\"" TOKEN
				      "\",\"transport\":\"polling\"},\"url\":\"/socket.io/?EIO=4&token=" TOKEN
				      "&transport=polling&tok%65n=" TOKEN "&tokens=1\"}");
	fake_recv(e, "40/jwtq,");
	CHECK(strncmp(fake_next(e), "40/jwtq,{\"sid\":", 15) == 0);
	CHECK_STR(sio_socket_claims(S.last), "{\"sub\":\"u1\",\"exp\":4102444800}");
	const char *want = "{\"headers\":{\"host\":\"h\"},\"query\":{\"EIO\":\"4\",\"transport\":\"polling\"},"
			   "\"url\":\"/socket.io/?EIO=4&transport=polling&tokens=1\",\"auth\":{}}";
	char *hs = sio_socket_handshake(S.last);
	CHECK_STR(hs, want);
	free(hs);
	fake_recv(e, "40");
	fake_next(e);
	hs = sio_socket_handshake(S.last);
	CHECK_STR(hs, want);
	free(hs);
	drop(e);
	/* a query without a token */
	const char *r;
	e = connect_to(&w, "40/jwtq,{\"token\":\"" TOKEN "\"}", &r);
	CHECK_STR(r, "44/jwtq,{\"message\":\"invalid token\",\"data\":{\"reason\":\"missing\"}}");
	drop(e);
	world_fini(&w);
}

/* A sink that keeps one metric's value. */
typedef struct one_metric {
	gw_metric_sink sink;
	const char *name;
	int64_t value;
	int seen;
} one_metric;

static void one_sample(gw_metric_sink *sk, const char *name, gw_metric_type t, const char *help,
		       const char *labels, int64_t v)
{
	(void)t, (void)help, (void)labels;
	one_metric *m = (one_metric *)sk;
	if (strcmp(name, m->name) == 0) {
		m->value += v;
		m->seen++;
	}
}

static int64_t metric(world *w, const char *name)
{
	one_metric m = {.sink = {.sample = one_sample}, .name = name};
	sio_metrics(w->srv, &m.sink);
	return m.seen ? m.value : -1;
}

TEST(dynamic_namespaces_made_on_first_use_and_freed_with_their_last_socket)
{
	world w;
	world_init(&w);
	const char *r;
	CHECK_EQ_INT(metric(&w, "sio_dynamic_namespaces"), 0);
	eio_session *a = connect_to(&w, "40/tenant-a1,", &r);
	CHECK(strncmp(r, "40/tenant-a1,{\"sid\":", 20) == 0);
	sio_socket *sa = S.last;
	CHECK_STR(sio_socket_nsp(sa), "/tenant-a1");
	CHECK_STR(sio_socket_nsp_config(sa)->match, "^/tenant-[a-z0-9]+$");
	eio_session *b = connect_to(&w, "40/tenant-a1,", &r);
	eio_session *c = connect_to(&w, "40/tenant-b2,", &r);
	sio_socket *sc = S.last;
	CHECK_EQ_INT(metric(&w, "sio_dynamic_namespaces"), 2);
	CHECK_EQ_INT(S.connects, 3);
	/* by name, only its own sockets */
	gw_frame *f = gw_frame_from("42/tenant-a1,[\"news\"]", 21, false);
	CHECK_EQ_INT(sio_broadcast(w.srv, "/tenant-a1", NULL, 0, NULL, 0, &f, 1, false), 2);
	CHECK_EQ_INT(sio_broadcast(w.srv, "/tenant-zz", NULL, 0, NULL, 0, &f, 1, false), 0);
	gw_frame_unref(f);
	CHECK_STR(fake_next(a), "42/tenant-a1,[\"news\"]");
	CHECK_STR(fake_next(b), "42/tenant-a1,[\"news\"]");
	CHECK_EQ_INT(fake_unread(c), 0);
	/* events carry the real name */
	fake_recv(c, "42/tenant-b2,[\"hi\"]");
	CHECK_EQ_INT(S.events, 1);
	CHECK_STR(sio_socket_nsp(S.last), "/tenant-b2");
	/* a listed name wins over the match: /tenant-vip has auth: backend */
	eio_session *v = connect_to(&w, "40/tenant-vip,", &r);
	CHECK(r == NULL); /* pending: the backend decides */
	CHECK(!sio_socket_nsp_config(S.last)->match);
	/* not matching: as any unknown namespace */
	fake_recv(c, "40/tenant-B2,");
	CHECK_STR(fake_next(c), "44/tenant-B2,{\"message\":\"Invalid namespace\"}");
	/* freed with the last socket */
	drop(a);
	CHECK_EQ_INT(metric(&w, "sio_dynamic_namespaces"), 2);
	drop(b);
	CHECK_EQ_INT(metric(&w, "sio_dynamic_namespaces"), 1);
	f = gw_frame_from("42/tenant-a1,[\"x\"]", 18, false);
	CHECK_EQ_INT(sio_broadcast(w.srv, "/tenant-a1", NULL, 0, NULL, 0, &f, 1, false), 0);
	gw_frame_unref(f);
	/* a packet for it after the server disconnected its last socket is dropped, not a close */
	sio_socket_disconnect(sc, false);
	CHECK_STR(fake_next(c), "41/tenant-b2,");
	CHECK_EQ_INT(metric(&w, "sio_dynamic_namespaces"), 0);
	fake_recv(c, "42/tenant-b2,[\"late\"]");
	CHECK(!c->closed);
	CHECK_EQ_INT(metric(&w, "sio_packets_not_connected_total"), 1);
	/* and it comes back on the next CONNECT */
	fake_recv(c, "40/tenant-b2,");
	CHECK(strncmp(fake_next(c), "40/tenant-b2,{\"sid\":", 20) == 0);
	CHECK_EQ_INT(metric(&w, "sio_dynamic_namespaces"), 1);
	drop(c);
	drop(v);
	world_fini(&w);
}

TEST(backend_auth_pending_then_admitted_or_timed_out)
{
	world w;
	world_init(&w);
	eio_session *e = fake_open(&w.eh, NULL);
	fake_recv(e, "40/auth,{\"token\":\"t\"}");
	CHECK_EQ_INT(S.connects, 1);
	sio_socket *s = S.last;
	CHECK(sio_socket_pending(s));
	CHECK_EQ_INT(fake_unread(e), 0); /* no CONNECT until the backend says so */
	fake_recv(e, "42/auth,[\"early\"]");
	CHECK_EQ_INT(S.events, 0); /* a pending socket's events are dropped */
	CHECK_EQ_INT(sio_socket_admit(s, "{\"user\":1}"), 0);
	const char *r = fake_next(e);
	CHECK(r && strncmp(r, "40/auth,{\"sid\":\"", 16) == 0);
	CHECK_STR(sio_socket_data(s), "{\"user\":1}");
	/* a second socket is never answered: CONNECT_ERROR at the auth timeout */
	eio_session *f = fake_open(&w.eh, NULL);
	fake_recv(f, "40/auth,");
	RUN_UNTIL(&w, fake_unread(f) > 0);
	CHECK_STR(fake_next(f), "44/auth,{\"message\":\"auth timeout\"}");
	CHECK_EQ_INT(S.disconnects, 0); /* it was never admitted */
	drop(e);
	drop(f);
	world_fini(&w);
}

/* Socket.IO v4 over Engine.IO v3 (socket.io-client 2.x), as socket.io serves it */
TEST(eio3_connection_speaks_socket_io_v4)
{
	world w;
	world_init(&w);
	eio_session *e = fake_open_protocol(&w.eh, NULL, 3);
	/* in "/" at once, with the engine id, a CONNECT without payload */
	CHECK_STR(fake_next(e), "40");
	CHECK_EQ_INT(S.connects, 1);
	CHECK_STR(sio_socket_id(S.last), e->sid);
	/* a namespace's query is its auth; the id is "<nsp>#<engine id>" */
	fake_recv(e, "40/chat?token=a%20b&x=1&x=2,");
	CHECK_STR(fake_next(e), "40/chat,"); /* socket.io-parser writes the comma too */
	CHECK_EQ_INT(S.connects, 2);
	char want[64];
	snprintf(want, sizeof want, "/chat#%s", e->sid);
	CHECK_STR(sio_socket_id(S.last), want);
	CHECK(sio_socket_find(w.srv, want, strlen(want)) == S.last);
	char *auth = cJSON_PrintUnformatted(sio_socket_auth(S.last));
	CHECK_STR(auth, "{\"token\":\"a b\",\"x\":\"2\"}");
	free(auth);
	/* packets name the namespace without its query */
	fake_recv(e, "42/chat,[\"hi\",1]");
	CHECK_EQ_INT(S.events, 1);
	CHECK_STR(S.event_text, "[\"hi\",1]");
	/* CONNECT_ERROR: the error's data, or its message, alone */
	fake_recv(e, "40/auth?u=1,");
	sio_socket *p = S.last;
	CHECK(sio_socket_pending(p));
	sio_socket_reject(p, "{\"message\":\"no\",\"data\":{\"code\":7}}");
	CHECK_STR(fake_next(e), "44/auth,{\"code\":7}");
	fake_recv(e, "40/auth,");
	sio_socket_reject(S.last, "{\"message\":\"no\",\"data\":null}");
	CHECK_STR(fake_next(e), "44/auth,\"no\"");
	fake_recv(e, "40/nope,"); /* as socket.io: the object, whatever the revision */
	CHECK_STR(fake_next(e), "44/nope,{\"message\":\"Invalid namespace\"}");
	/* the DISCONNECT of a namespace */
	fake_recv(e, "41/chat,");
	CHECK_EQ_INT(S.disconnects, 1);
	CHECK(sio_socket_find(w.srv, want, strlen(want)) == NULL);
	drop(e);
	CHECK_EQ_INT(S.disconnects, 2);
	/* a v4 connection beside it is unchanged */
	const char *r;
	eio_session *f = connect_to(&w, "40/chat,", &r);
	CHECK(r && strncmp(r, "40/chat,{\"sid\":\"", 16) == 0);
	CHECK_EQ_INT((int)strlen(sio_socket_id(S.last)), GW_ID_LEN);
	drop(f);
	world_fini(&w);
}

/* connection state recovery, and its snapshots for other nodes */
TEST(recovery_pid_offset_replay_and_moved_sockets)
{
	world w;
	world_init_with(&w, "recovery: {max_disconnection_ms: 5000}\nnamespaces: [{name: /}]\n");
	sio_recovery_set_shared(w.srv, false, true);
	eio_session *e = fake_open(&w.eh, NULL);
	fake_recv(e, "40");
	const char *r = fake_next(e);
	CHECK(r && strstr(r, "\"pid\":\""));
	CHECK_EQ_INT(SH.live, 1);
	char sid[64], pid[64];
	snprintf(sid, sizeof sid, "%s", sio_socket_id(S.last));
	snprintf(pid, sizeof pid, "%s", SH.pid);
	sio_emit(w.srv, "/", NULL, 0, NULL, 0, "[\"a\"]", 5);
	r = fake_next(e); /* 42["a","<offset>"] */
	char offset[64] = "";
	CHECK(r && sscanf(r, "42[\"a\",\"%63[^\"]\"]", offset) == 1);
	fake_drop(e, GW_CLOSE_TRANSPORT_CLOSE);
	fake_free(e);
	CHECK_EQ_INT(SH.lost, 1);
	sio_emit(w.srv, "/", NULL, 0, NULL, 0, "[\"b\"]", 5); /* in the gap */
	/* it comes back: the missed packet, then the CONNECT with its old sid and pid */
	eio_session *f = fake_open(&w.eh, NULL);
	char connect[256];
	snprintf(connect, sizeof connect, "40{\"pid\":\"%s\",\"offset\":\"%s\"}", pid, offset);
	fake_recv(f, connect);
	r = fake_next(f);
	CHECK(r && strncmp(r, "42[\"b\",", 7) == 0);
	r = fake_next(f);
	char want[256];
	snprintf(want, sizeof want, "40{\"sid\":\"%s\",\"pid\":\"%s\"}", sid, pid);
	CHECK_STR(r, want);
	CHECK(sio_socket_recovered(S.last));
	CHECK_EQ_INT(SH.gen, 1); /* its LIVE snapshot says: recovered once */
	/* another node says it came back there since (a higher gen): this copy goes quietly */
	const char *rooms[] = {sid};
	sio_session_info i = {.pid = pid, .sid = sid, .nsp = "/", .rooms = rooms, .n_rooms = 1, .gen = 2};
	int disconnects = S.disconnects;
	CHECK_EQ_INT(sio_recovery_remote(w.srv, SIO_SESSION_LIVE, &i, 0), 0);
	CHECK(sio_socket_find(w.srv, sid, strlen(sid)) == NULL);
	CHECK_EQ_INT(S.disconnects, disconnects + 1); /* (the bus reports nothing: moved) */
	CHECK(f->closed);
	CHECK_EQ_INT(SH.lost, 1); /* no snapshot of its own */
	fake_free(f);
	world_fini(&w);
}

typedef struct nsp_seen {
	char names[256];
	size_t sockets;
} nsp_seen;

static void list_nsp(const char *name, size_t n, void *arg)
{
	nsp_seen *l = arg;
	snprintf(l->names + strlen(l->names), sizeof l->names - strlen(l->names), "%s%s=%zu",
		 l->names[0] ? " " : "", name, n);
	l->sockets += n;
}

/* what the admin UI builds on: on_admit, sio_emit, sio_socket_emit, sio_namespaces,
 * sio_socket_auth */
TEST(admit_emit_and_namespace_list)
{
	world w;
	world_init(&w);
	const char *r;
	eio_session *a = connect_to(&w, "40/chat,{\"k\":1}", &r);
	CHECK_EQ_INT(S.admits, 1);
	CHECK_EQ_INT(S.connects_at_admit, 0); /* auth: none: admitted, then reported */
	sio_socket *sa = S.last;
	const cJSON *auth = sio_socket_auth(sa);
	CHECK(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(auth, "k")));
	eio_session *b = connect_to(&w, "40/chat,", &r);
	eio_session *t = fake_open(&w.eh, NULL);
	fake_recv(t, "40/tenant-x1,");
	fake_next(t);
	CHECK_EQ_INT(S.admits, 3);
	/* backend auth: on_admit only once admitted */
	eio_session *p = fake_open(&w.eh, NULL);
	fake_recv(p, "40/auth,");
	CHECK_EQ_INT(S.admits, 3);
	CHECK_EQ_INT(sio_socket_admit(S.last, NULL), 0);
	CHECK_EQ_INT(S.admits, 4);
	CHECK_EQ_INT(S.connects_at_admit, 4);
	fake_next(p);

	CHECK_EQ_INT(sio_socket_join(sa, "r"), 1);
	const char *rooms[] = {"r"};
	CHECK_EQ_INT(sio_emit(w.srv, "/chat", rooms, 1, NULL, 0, "[\"hi\",1]", 8), 1);
	CHECK_STR(fake_next(a), "42/chat,[\"hi\",1]");
	CHECK_EQ_INT(fake_unread(b), 0);
	CHECK_EQ_INT(sio_emit(w.srv, "/chat", NULL, 0, (const char *[]){sio_socket_id(sa)}, 1, "[\"x\"]", 5), 1);
	CHECK_STR(fake_next(b), "42/chat,[\"x\"]");
	CHECK_EQ_INT(sio_emit(w.srv, "/nope", NULL, 0, NULL, 0, "[\"x\"]", 5), 0);
	CHECK_EQ_INT(sio_socket_emit(sa, "[\"one\"]", 7), 0);
	CHECK_STR(fake_next(a), "42/chat,[\"one\"]");
	CHECK(sio_socket_session(sa) == a);

	nsp_seen l = {{0}, 0};
	sio_namespaces(w.srv, list_nsp, &l);
	CHECK_STR(l.names, "/=0 /chat=2 /auth=1 /jwt=0 /jwtq=0 /tenant-vip=0 /tenant-x1=1");
	CHECK_EQ_INT(l.sockets, 4);
	drop(a);
	drop(b);
	drop(t);
	drop(p);
	world_fini(&w);
}

int main(void)
{
	RUN(connect_main_and_named_namespace);
	RUN(unknown_namespace_is_connect_error);
	RUN(events_reach_the_handler_verbatim);
	RUN(binary_event_waits_for_its_attachment);
	RUN(malformed_packet_closes_the_session);
	RUN(rooms_and_broadcast_with_except);
	RUN(emit_with_ack_counts_answers_and_timeouts);
	RUN(a_target_that_leaves_settles_the_emit);
	RUN(no_namespace_in_time_closes);
	RUN(client_and_server_disconnect);
	RUN(packets_after_a_server_namespace_disconnect_are_dropped);
	RUN(backend_auth_pending_then_admitted_or_timed_out);
	RUN(jwt_auth_token);
	RUN(jwt_query_token_is_hidden_from_every_namespace);
	RUN(dynamic_namespaces_made_on_first_use_and_freed_with_their_last_socket);
	RUN(admit_emit_and_namespace_list);
	RUN(eio3_connection_speaks_socket_io_v4);
	RUN(recovery_pid_offset_replay_and_moved_sockets);
	return TEST_END();
}
