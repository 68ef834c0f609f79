/*
 * sio_server.c — namespaces, sockets and rooms over Engine.IO sessions.
 *
 * One sio_conn per Engine.IO session holds its sockets (one per namespace) and the
 * binary packet being reassembled. Every socket is in the room named by its id; the
 * room index of its namespace is the only membership structure, so a broadcast is a
 * room_select() that queues the same frames to each target.
 *
 * A connection over Engine.IO v3 (engine.allow_eio3: socket.io-client 2.x) speaks
 * Socket.IO v4, as socket.io serves it: it is in "/" from the start, with no CONNECT
 * from the client; a namespace may carry a query ("0/chat?token=x,"), which is the
 * CONNECT's auth; socket ids are the engine id ("/") and "<nsp>#<engine id>"; the
 * CONNECT reply has no payload; CONNECT_ERROR carries the error's data, or else its
 * message, alone.
 */
#include "sio/sio.h"
#include "sio/acks.h"
#include "sio/recovery.h"
#include "sio/rooms.h"
#include "sio/sio_codec.h"
#include "sio/sio_msgpack.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/jwt.h"
#include "util/log.h"
#include "util/map.h"
#include "util/query.h"
#include "util/rand.h"
#include "util/sid.h"
#include "util/timer.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/*
 * A namespace. srv->nsps has one per configuration entry; a `match` entry there holds
 * no sockets (rooms NULL) but the counters of the dynamic namespaces it creates, each
 * on first use, kept in srv->dynamic and freed with its last socket.
 */
typedef struct sio_nsp sio_nsp;
struct sio_nsp {
	const gw_nsp_config *cfg;
	const char *name;      /* cfg->name, or a dynamic namespace's own (owned) */
	sio_nsp *stats;        /* where its counters go: itself, or its match entry */
	room_index *rooms;
	size_t n_sockets;      /* admitted; a match entry: in all its namespaces */
	size_t refs;           /* sockets pointing here, pending ones included */
	size_t n_dynamic;      /* a match entry: its live namespaces */
	bool dynamic;
	uint64_t late_packets; /* for this namespace, on a connection no longer in it */
	uint64_t jwt_refused[GW_JWT_EXP_REQUIRED + 1]; /* auth: jwt, by gw_jwt_status */
};

typedef struct sio_conn sio_conn;
struct sio_socket {
	eio_session *eio; /* = conn->eio, first: a broadcast reads only this */
	sio_conn *conn;
	sio_nsp *nsp;
	cJSON *auth;
	sio_socket *next; /* in conn->sockets */
	int64_t next_ack_id;
	ack_owed acks;    /* answers this socket owes to emit-with-ack requests */
	bool pending;     /* auth: backend, not admitted yet */
	gw_timer auth_timer;
	char *data;       /* JSON from the backend's connect_result */
	void *user;       /* the handler's (the bus: the socket's rate buckets) */
	char *pid;        /* recovery: the private id the client comes back with */
	rec_session *restore; /* recovery: the snapshot to restore at admission */
	uint64_t restore_from; /* its replay position */
	bool recovered;   /* this socket came back (same id, rooms, data, missed packets) */
	bool recoverable; /* during on_disconnect: it may come back */
	bool snap_dirty;  /* its rooms changed since its last snapshot (srv->dirty_ids) */
	bool moved;       /* recovered on another node: this copy leaves without a word */
	uint32_t gen;     /* recoveries so far */
	size_t id_len;
	char id[];        /* GW_ID_LEN random characters (Engine.IO v3 clients will have
			   * socket.io's "nsp#<engine id>": ids are not all one length) */
};

struct sio_conn {
	sio_server *srv;
	eio_session *eio;
	sio_socket *sockets;
	gw_timer connect_timer;
	struct bin_wait *bin;  /* a binary packet waiting for its attachments, or NULL */
	uint64_t was_in;       /* bit i: the connection has been in srv->nsps[i] (i < 64) */
	bool v3;               /* Socket.IO v4 over Engine.IO v3 */
};

/* A binary packet waiting for its attachments: allocated only while one is, so an idle
 * connection does not carry it. */
#define BIN_MAX_NSP 255
typedef struct bin_wait {
	sio_packet pkt;
	size_t bytes;          /* of the attachments so far */
	unsigned got;
	uint8_t *att[SIO_MAX_CLIENT_ATTACHMENTS];
	size_t att_len[SIO_MAX_CLIENT_ATTACHMENTS];
	char nsp[];            /* pkt.nsp points here: the input buffer is gone */
} bin_wait;

/* engine.workers: the dynamic namespaces alive on any loop of the process (sio_link),
 * so that sio_dynamic_namespaces counts a name once however many loops hold it. */
typedef struct dyn_name {
	size_t loops; /* loops where it is alive */
	size_t entry; /* its match entry (index in cfg->nsps) */
	char name[];
} dyn_name;

typedef struct sio_names {
	pthread_mutex_t lock;
	gw_map names;  /* name → dyn_name */
	size_t *alive; /* by match entry: names alive */
	atomic_int refs;
} sio_names;

struct sio_server {
	const gw_config *cfg;
	gw_timers *timers;
	sio_handler h;
	sio_nsp *nsps;
	size_t n_nsps;
	gw_map dynamic; /* name → dynamic sio_nsp */
	sio_names *names; /* every loop's, or NULL (one loop) */
	gw_map sockets; /* id → sio_socket */
	/* a jwt namespace reads tokens from the URL or the Authorization header: no
	 * socket's handshake shows them to backends */
	bool strip_query_token, strip_authorization;
	bool msgpack;       /* engine.parser: msgpack */
	bool told_parser;   /* the wrong-parser hint was logged */
	rec_store *rec;     /* connection state recovery, NULL = off */
	gw_timer rec_timer; /* its expiry sweep, and the snapshots of changed sockets */
	char **dirty_ids;   /* sockets whose rooms changed since their last snapshot */
	size_t n_dirty, cap_dirty;
	bool shared;        /* snapshots go to other loops or nodes (on_session) */
	bool nodes;         /* the bus reaches other nodes: a shutdown is recoverable there */
};

#define REC_SWEEP_MS 1000

static void share(sio_server *srv, sio_socket *s, int kind);

static void rec_sweep(gw_timer *t)
{
	sio_server *srv = t->ctx;
	rec_expire(srv->rec, (int64_t)gw_now_ms());
	/* a room change is shared within a second */
	for (size_t i = 0; i < srv->n_dirty; i++) {
		sio_socket *s = gw_map_get(&srv->sockets, srv->dirty_ids[i], strlen(srv->dirty_ids[i]));
		if (s && s->snap_dirty)
			share(srv, s, SIO_SESSION_LIVE);
		free(srv->dirty_ids[i]);
	}
	srv->n_dirty = 0;
	gw_timer_start(srv->timers, &srv->rec_timer, REC_SWEEP_MS, rec_sweep);
}

static void names_count(sio_server *srv, const sio_nsp *d, bool alive);
static void names_unref(sio_names *t);

sio_server *sio_server_create(const gw_config *cfg, gw_timers *timers, const sio_handler *h)
{
	sio_server *srv = calloc(1, sizeof *srv);
	if (!srv)
		return NULL;
	srv->cfg = cfg;
	srv->timers = timers;
	srv->h = *h;
	srv->msgpack = cfg->engine.parser == GW_PARSER_MSGPACK;
	srv->nsps = calloc(cfg->n_nsps ? cfg->n_nsps : 1, sizeof *srv->nsps);
	if (!srv->nsps) {
		free(srv);
		return NULL;
	}
	for (size_t i = 0; i < cfg->n_nsps; i++) {
		sio_nsp *ns = &srv->nsps[i];
		ns->cfg = &cfg->nsps[i];
		ns->name = cfg->nsps[i].name;
		ns->stats = ns;
		ns->rooms = cfg->nsps[i].match ? NULL : room_index_create();
		if (cfg->nsps[i].auth == GW_AUTH_JWT) {
			srv->strip_query_token |= cfg->nsps[i].jwt.token_from == GW_TOKEN_QUERY;
			srv->strip_authorization |= cfg->nsps[i].jwt.token_from == GW_TOKEN_HEADER;
		}
		srv->n_nsps++;
		if (!ns->rooms && !cfg->nsps[i].match) {
			sio_server_destroy(srv);
			return NULL;
		}
	}
	if (cfg->recovery.max_disconnection_ms > 0) {
		srv->rec = rec_store_create(cfg->recovery.max_disconnection_ms, cfg->recovery.max_log_bytes);
		if (!srv->rec) {
			sio_server_destroy(srv);
			return NULL;
		}
		srv->rec_timer.ctx = srv;
		gw_timer_start(timers, &srv->rec_timer, REC_SWEEP_MS, rec_sweep);
	}
	return srv;
}

void sio_server_destroy(sio_server *srv)
{
	if (!srv)
		return;
	if (srv->rec) {
		gw_timer_stop(srv->timers, &srv->rec_timer);
		rec_store_destroy(srv->rec);
	}
	for (size_t i = 0; i < srv->n_dirty; i++)
		free(srv->dirty_ids[i]);
	free(srv->dirty_ids);
	for (size_t i = 0; i < srv->n_nsps; i++)
		room_index_destroy(srv->nsps[i].rooms);
	size_t n;
	void **dyn = gw_map_values(&srv->dynamic, &n);
	for (size_t i = 0; i < n; i++) {
		sio_nsp *d = dyn[i];
		names_count(srv, d, false);
		room_index_destroy(d->rooms);
		free((char *)d->name);
		free(d);
	}
	free(dyn);
	gw_map_free(&srv->dynamic);
	names_unref(srv->names);
	free(srv->nsps);
	gw_map_free(&srv->sockets);
	free(srv);
}

/* A namespace that exists: listed, or dynamic with sockets. */
static sio_nsp *nsp_find(sio_server *srv, const char *name, size_t len)
{
	for (size_t i = 0; i < srv->n_nsps; i++) {
		const char *n = srv->nsps[i].name;
		if (n && strlen(n) == len && memcmp(n, name, len) == 0)
			return &srv->nsps[i];
	}
	return srv->dynamic.len ? gw_map_get(&srv->dynamic, name, len) : NULL;
}

/* The match entry a name not listed would fall under, or NULL. */
static sio_nsp *nsp_match(sio_server *srv, const char *name, size_t len)
{
	const gw_nsp_config *c = gw_config_nsp(srv->cfg, name, len);
	return c && c->match ? &srv->nsps[c - srv->cfg->nsps] : NULL;
}

/* A dynamic namespace alive here (or no more): counted in the process's names. */
static void names_count(sio_server *srv, const sio_nsp *d, bool alive)
{
	sio_names *t = srv->names;
	if (!t)
		return;
	size_t len = strlen(d->name), entry = (size_t)(d->stats - srv->nsps);
	pthread_mutex_lock(&t->lock);
	dyn_name *n = gw_map_get(&t->names, d->name, len);
	if (alive && !n && (n = calloc(1, sizeof *n + len + 1))) {
		memcpy(n->name, d->name, len + 1);
		n->entry = entry;
		if (gw_map_put(&t->names, n->name, len, n)) {
			free(n);
			n = NULL; /* (out of memory: not counted) */
		} else
			t->alive[entry]++;
	}
	if (n && alive)
		n->loops++;
	else if (n && --n->loops == 0) {
		gw_map_del(&t->names, n->name, len);
		t->alive[n->entry]--;
		free(n);
	}
	pthread_mutex_unlock(&t->lock);
}

static void names_unref(sio_names *t)
{
	if (!t || atomic_fetch_sub(&t->refs, 1) > 1)
		return;
	size_t n;
	void **v = gw_map_values(&t->names, &n);
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
	gw_map_free(&t->names);
	free(t->alive);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

int sio_link(sio_server *const *servers, size_t n)
{
	if (n < 2)
		return 0;
	sio_names *t = calloc(1, sizeof *t);
	if (!t || !(t->alive = calloc(servers[0]->n_nsps, sizeof *t->alive))) {
		free(t);
		return -GW_ENOMEM;
	}
	pthread_mutex_init(&t->lock, NULL);
	atomic_init(&t->refs, (int)n);
	for (size_t i = 0; i < n; i++)
		servers[i]->names = t;
	return 0;
}

/* nsp_find, or a new dynamic namespace when a match entry takes the name. */
static sio_nsp *nsp_open(sio_server *srv, const char *name, size_t len)
{
	sio_nsp *ns = nsp_find(srv, name, len), *m;
	if (ns || !(m = nsp_match(srv, name, len)))
		return ns;
	sio_nsp *d = calloc(1, sizeof *d);
	char *own = d ? strndup(name, len) : NULL;
	room_index *rooms = own ? room_index_create() : NULL;
	if (!rooms || gw_map_put(&srv->dynamic, own, len, d)) {
		room_index_destroy(rooms);
		free(own);
		free(d);
		return NULL;
	}
	*d = (sio_nsp){.cfg = m->cfg, .name = own, .stats = m, .rooms = rooms, .dynamic = true};
	m->n_dynamic++;
	names_count(srv, d, true);
	gw_debug("sio: namespace %s created (%s)", own, m->cfg->match);
	return d;
}

/* A dynamic namespace without sockets is freed. */
static void nsp_release(sio_server *srv, sio_nsp *ns)
{
	if (!ns->dynamic || ns->refs)
		return;
	gw_map_del(&srv->dynamic, ns->name, strlen(ns->name));
	ns->stats->n_dynamic--;
	names_count(srv, ns, false);
	gw_debug("sio: namespace %s freed", ns->name);
	room_index_destroy(ns->rooms);
	free((char *)ns->name);
	free(ns);
}

sio_socket *sio_socket_find(sio_server *srv, const char *id, size_t len)
{
	return gw_map_get(&srv->sockets, id, len);
}

const char *sio_socket_id(const sio_socket *s) { return s->id; }
const char *sio_socket_nsp(const sio_socket *s) { return s->nsp->name; }
const gw_nsp_config *sio_socket_nsp_config(const sio_socket *s) { return s->nsp->cfg; }

/* Whether a query parameter ("name" or "name=value") is named "token", its name
 * percent-decoded as the query object's names are ("tok%65n" is "token" too). */
static bool is_token_param(const char *p, size_t n)
{
	static const char want[] = "token";
	size_t k = 0;
	for (size_t i = 0; i < n && p[i] != '='; i++) {
		char ch = p[i];
		if (ch == '%' && i + 2 < n && isxdigit((unsigned char)p[i + 1]) && isxdigit((unsigned char)p[i + 2])) {
			char hex[3] = {p[i + 1], p[i + 2], 0};
			ch = (char)strtol(hex, NULL, 16);
			i += 2;
		}
		if (k >= sizeof want - 1 || ch != want[k])
			return false;
		k++;
	}
	return k == sizeof want - 1;
}

/* url without its "token" query parameters. */
static void strip_url_token(cJSON *hs)
{
	cJSON *url = cJSON_GetObjectItemCaseSensitive(hs, "url");
	char *q = cJSON_IsString(url) ? strchr(url->valuestring, '?') : NULL;
	if (!q)
		return;
	gw_buf b = {0};
	int err = gw_buf_append(&b, url->valuestring, (size_t)(q - url->valuestring));
	char sep = '?';
	for (const char *p = q + 1; *p;) {
		size_t n = strcspn(p, "&");
		if (!is_token_param(p, n)) {
			err |= gw_buf_putc(&b, sep) | gw_buf_append(&b, p, n);
			sep = '&';
		}
		p += n + (p[n] == '&');
	}
	if (!err && !gw_buf_putc(&b, 0))
		cJSON_SetValuestring(url, (const char *)b.data);
	gw_buf_free(&b);
}

/* The engine handshake as backends may see it: without the places a jwt namespace
 * reads tokens from. NULL when out of memory; free() it. */
static char *engine_handshake(const sio_socket *s)
{
	const char *hs = eio_session_handshake(s->eio);
	const sio_server *srv = s->conn->srv;
	if (!hs || (!srv->strip_query_token && !srv->strip_authorization))
		return hs ? strdup(hs) : NULL;
	cJSON *o = cJSON_Parse(hs);
	if (!o)
		return NULL;
	if (srv->strip_query_token) {
		cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "query"), "token");
		strip_url_token(o);
	}
	if (srv->strip_authorization)
		cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "headers"), "authorization");
	char *t = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return t;
}

char *sio_socket_handshake(const sio_socket *s)
{
	/* The session's handshake is a JSON object built by the gateway: splice "auth" in
	 * before its closing brace instead of parsing and printing it again. */
	char *hs = engine_handshake(s);
	size_t hl = hs ? strlen(hs) : 0;
	if (hl < 2 || hs[hl - 1] != '}') {
		free(hs);
		return NULL;
	}
	char *auth = s->auth ? cJSON_PrintUnformatted(s->auth) : NULL;
	gw_buf out = {0};
	int err = gw_buf_append(&out, hs, hl - 1) | gw_buf_puts(&out, hl > 2 ? ",\"auth\":" : "\"auth\":") |
		  gw_buf_puts(&out, auth ? auth : "{}") | gw_buf_putc(&out, '}');
	free(auth);
	free(hs);
	if (err) {
		gw_buf_free(&out);
		return NULL;
	}
	return (char *)gw_buf_steal(&out, NULL);
}

void sio_socket_rooms(const sio_socket *s, void (*cb)(const char *room, void *arg), void *arg)
{
	room_member_rooms(s->nsp->rooms, (void *)s, cb, arg);
}

/* ---- sending ---- */

/* Queue a packet built as JSON (frames[0] "4" + packet, then its attachments) in the
 * connection's format: as it is, or as one msgpack frame. */
static int wire_send(eio_session *e, gw_frame *const *frames, size_t n, bool volatile_)
{
	const sio_conn *c = eio_session_user(e);
	if (!c || !c->srv->msgpack)
		return eio_session_send(e, frames, n, volatile_);
	gw_frame *m = sio_mp_from_frames(frames, n);
	if (!m)
		return -GW_ENOMEM;
	int rc = eio_session_send(e, &m, 1, volatile_);
	gw_frame_unref(m);
	return rc;
}

/* Encode a packet as one text frame ("4" + packet) and queue it with attachments. */
static int send_packet(eio_session *e, sio_type type, const char *nsp, int64_t id,
		       unsigned n_att, const char *json, size_t json_len,
		       gw_frame *const *att)
{
	gw_buf b = {0};
	if (gw_buf_putc(&b, '4') || sio_encode(&b, type, nsp, id, n_att, json, json_len)) {
		gw_buf_free(&b);
		return -GW_ENOMEM;
	}
	gw_frame *f = gw_frame_from(b.data, b.len, false);
	gw_buf_free(&b);
	if (!f)
		return -GW_ENOMEM;
	gw_frame *stack[8];
	gw_frame **frames = n_att + 1 <= 8 ? stack : malloc((n_att + 1) * sizeof *frames);
	if (!frames) {
		gw_frame_unref(f);
		return -GW_ENOMEM;
	}
	frames[0] = f;
	for (unsigned i = 0; i < n_att; i++)
		frames[i + 1] = att[i];
	int rc = wire_send(e, frames, n_att + 1, false);
	gw_frame_unref(f);
	if (frames != stack)
		free(frames);
	return rc;
}

static void send_connect_error(eio_session *e, const char *nsp, size_t nsp_len, const char *msg)
{
	char name[256];
	if (nsp_len >= sizeof name)
		nsp_len = sizeof name - 1;
	memcpy(name, nsp, nsp_len);
	name[nsp_len] = 0;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "message", msg);
	char *json = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (json)
		send_packet(e, SIO_CONNECT_ERROR, name, SIO_NO_ID, 0, json, strlen(json), NULL);
	free(json);
}

typedef struct bcast {
	gw_frame *const *frames;
	size_t n;
	bool vol;
} bcast;

#define BCAST_CHUNK 32

/* Sockets to sessions a chunk at a time: the sockets of the next chunk are prefetched
 * while this one's sessions are queued to (eio_send_many prefetches those). */
static void bcast_batch(void *const *members, size_t n, void *arg)
{
	bcast *b = arg;
	eio_session *t[BCAST_CHUNK];
	for (size_t j = 0; j < n && j < BCAST_CHUNK; j++)
		__builtin_prefetch(members[j]);
	for (size_t i = 0; i < n; i += BCAST_CHUNK) {
		size_t k = n - i < BCAST_CHUNK ? n - i : BCAST_CHUNK;
		for (size_t j = 0; j < k; j++)
			t[j] = ((sio_socket *)members[i + j])->eio;
		for (size_t j = i + k; j < n && j < i + k + BCAST_CHUNK; j++)
			__builtin_prefetch(members[j]);
		eio_send_many(t, k, b->frames, b->n, b->vol);
	}
}

/* The EVENT frame f ("4" + packet, its JSON array last) with the JSON string `off`
 * appended to the array, as socket.io appends a packet's offset; NULL when f is not
 * such a frame or out of memory. */
static gw_frame *with_offset(gw_frame *f, const char *off)
{
	const uint8_t *d = gw_frame_data(f);
	size_t end = f->len;
	if (f->binary || end < 4 || d[0] != '4' || (d[1] != '0' + SIO_EVENT && d[1] != '0' + SIO_BINARY_EVENT))
		return NULL;
	while (end > 2 && (d[end - 1] == ' ' || d[end - 1] == '\t' || d[end - 1] == '\n' || d[end - 1] == '\r'))
		end--;
	if (d[end - 1] != ']')
		return NULL;
	gw_buf b = {0};
	gw_frame *g = NULL;
	if (!gw_buf_append(&b, d, end - 1) && !gw_buf_putc(&b, ',') && !gw_buf_puts(&b, off) && !gw_buf_putc(&b, ']'))
		g = gw_frame_from(b.data, b.len, false);
	gw_buf_free(&b);
	return g;
}

static bool rec_on(const sio_server *srv, const gw_nsp_config *c) { return srv->rec && c->recovery; }

/* recovery: log a broadcast with its offset; *frames then points at the frames to send
 * (the first one has the offset). Returns the new first frame to unref, or NULL (not
 * logged: volatile, not an event, out of memory). */
static gw_frame *rec_log_broadcast(sio_server *srv, const char *nsp, const char *const *rooms, size_t n_rooms,
				   const char *const *except, size_t n_except, gw_frame *const **frames,
				   size_t n_frames, gw_frame **store, const char *pos)
{
	char off[REC_OFFSET_MAX];
	if (pos && strlen(pos) + 3 <= sizeof off && !strpbrk(pos, "\"\\")) /* a bus position: known to every node */
		snprintf(off, sizeof off, "\"%s\"", pos);
	else
		rec_next_offset(srv->rec, off), pos = NULL;
	gw_frame *f = n_frames ? with_offset((*frames)[0], off) : NULL;
	if (!f)
		return NULL;
	store[0] = f;
	for (size_t i = 1; i < n_frames; i++)
		store[i] = (*frames)[i];
	if (rec_log(srv->rec, (int64_t)gw_now_ms(), pos, nsp, rooms, n_rooms, except, n_except, store, n_frames)) {
		gw_frame_unref(f);
		return NULL;
	}
	*frames = store;
	return f;
}

size_t sio_broadcast(sio_server *srv, const char *nsp, const char *const *rooms, size_t n_rooms,
		     const char *const *except, size_t n_except, gw_frame *const *frames,
		     size_t n_frames, bool volatile_)
{
	return sio_broadcast_at(srv, nsp, rooms, n_rooms, except, n_except, frames, n_frames, volatile_, NULL);
}

size_t sio_broadcast_at(sio_server *srv, const char *nsp, const char *const *rooms, size_t n_rooms,
			const char *const *except, size_t n_except, gw_frame *const *frames, size_t n_frames,
			bool volatile_, const char *pos)
{
	sio_nsp *ns = nsp_find(srv, nsp, strlen(nsp));
	const gw_nsp_config *c = ns ? ns->cfg : NULL;
	if (!c && srv->rec) { /* a dynamic namespace without sockets now: its lost ones may return */
		sio_nsp *m = nsp_match(srv, nsp, strlen(nsp));
		c = m ? m->cfg : NULL;
	}
	gw_frame *logged = NULL, *stack[8], **store = NULL;
	if (c && rec_on(srv, c) && !volatile_ && n_frames) {
		store = n_frames <= 8 ? stack : malloc(n_frames * sizeof *store);
		if (store)
			logged = rec_log_broadcast(srv, nsp, rooms, n_rooms, except, n_except, &frames, n_frames, store, pos);
	}
	if (!ns) {
		gw_frame_unref(logged);
		if (store != stack)
			free(store);
		return 0;
	}
	gw_frame *m = NULL;
	if (srv->msgpack) { /* encoded once for every target */
		if (!(m = sio_mp_from_frames(frames, n_frames)))
			return 0;
		frames = &m;
		n_frames = 1;
	}
	bcast b = {frames, n_frames, volatile_};
	size_t n = room_select(ns->rooms, rooms, n_rooms, except, n_except, bcast_batch, &b);
	if (m)
		gw_frame_unref(m);
	gw_frame_unref(logged);
	if (store != stack)
		free(store);
	return n;
}

/* "4" + the EVENT packet as one frame, or NULL when out of memory. */
static gw_frame *event_frame(const char *nsp, const char *json, size_t json_len)
{
	gw_buf b = {0};
	gw_frame *f = NULL;
	if (!gw_buf_putc(&b, '4') && !sio_encode(&b, SIO_EVENT, nsp, SIO_NO_ID, 0, json, json_len))
		f = gw_frame_from(b.data, b.len, false);
	gw_buf_free(&b);
	return f;
}

size_t sio_emit(sio_server *srv, const char *nsp, const char *const *rooms, size_t n_rooms,
		const char *const *except, size_t n_except, const char *json, size_t json_len)
{
	gw_frame *f = event_frame(nsp, json, json_len);
	if (!f)
		return 0;
	size_t n = sio_broadcast(srv, nsp, rooms, n_rooms, except, n_except, &f, 1, false);
	gw_frame_unref(f);
	return n;
}

int sio_socket_emit(sio_socket *s, const char *json, size_t json_len)
{
	if (s->pending)
		return -GW_EINVAL;
	return send_packet(s->eio, SIO_EVENT, s->nsp->name, SIO_NO_ID, 0, json, json_len, NULL);
}

void sio_namespaces(const sio_server *srv, void (*cb)(const char *name, size_t n_sockets, void *arg), void *arg)
{
	for (size_t i = 0; i < srv->n_nsps; i++)
		if (srv->nsps[i].name)
			cb(srv->nsps[i].name, srv->nsps[i].n_sockets, arg);
	for (size_t i = 0; srv->dynamic.len && i < srv->dynamic.cap; i++) {
		const sio_nsp *d = srv->dynamic.slots[i].value;
		if (srv->dynamic.slots[i].key)
			cb(d->name, d->n_sockets, arg);
	}
}

int sio_socket_ack(sio_socket *s, int64_t id, const char *json, size_t json_len,
		   gw_frame *const *att, size_t n_att)
{
	return send_packet(s->eio, n_att ? SIO_BINARY_ACK : SIO_ACK, s->nsp->name, id,
			   (unsigned)n_att, json, json_len, att);
}

typedef struct collect {
	sio_socket **v;
	size_t n, cap;
	bool oom;
} collect;

static void collect_batch(void *const *members, size_t n, void *arg)
{
	collect *c = arg;
	if (c->oom)
		return;
	if (c->n + n > c->cap) {
		size_t cap = c->cap ? c->cap : 16;
		while (cap < c->n + n)
			cap *= 2;
		sio_socket **v = realloc(c->v, cap * sizeof *v);
		if (!v) {
			c->oom = true;
			return;
		}
		c->v = v;
		c->cap = cap;
	}
	memcpy(c->v + c->n, members, n * sizeof *members);
	c->n += n;
}

size_t sio_select(sio_server *srv, const char *nsp, const char *const *rooms, size_t n_rooms,
		  const char *const *except, size_t n_except, sio_socket ***out)
{
	*out = NULL;
	sio_nsp *ns = nsp_find(srv, nsp, strlen(nsp));
	if (!ns)
		return 0;
	collect c = {0};
	room_select(ns->rooms, rooms, n_rooms, except, n_except, collect_batch, &c);
	if (c.oom)
		gw_warn("sio: out of memory selecting targets: %zu selected", c.n);
	*out = c.v;
	return c.n;
}

size_t sio_select_ids(sio_server *srv, const char *nsp, const char *const *rooms, size_t n_rooms,
		      const char *const *except, size_t n_except, char ***out)
{
	sio_socket **v;
	size_t n = sio_select(srv, nsp, rooms, n_rooms, except, n_except, &v), bytes = 0;
	*out = NULL;
	for (size_t i = 0; i < n; i++)
		bytes += v[i]->id_len + 1;
	char **ids = n ? malloc(n * sizeof *ids + bytes) : NULL;
	if (ids) {
		char *p = (char *)(ids + n);
		for (size_t i = 0; i < n; i++) {
			memcpy(p, v[i]->id, v[i]->id_len + 1);
			ids[i] = p;
			p += v[i]->id_len + 1;
		}
		*out = ids;
	} else if (n) {
		gw_warn("sio: out of memory selecting %zu sockets", n);
		n = 0;
	}
	free(v);
	return n;
}

/* recovery: its next snapshot goes out with the next sweep */
static void mark_dirty(sio_server *srv, sio_socket *s)
{
	if (!s->pid || s->pending || s->snap_dirty || !srv->shared || !srv->h.on_session)
		return;
	if (srv->n_dirty == srv->cap_dirty) {
		size_t cap = srv->cap_dirty ? 2 * srv->cap_dirty : 64;
		char **v = realloc(srv->dirty_ids, cap * sizeof *v);
		if (!v)
			return;
		srv->dirty_ids = v;
		srv->cap_dirty = cap;
	}
	char *id = strdup(s->id);
	if (!id)
		return;
	srv->dirty_ids[srv->n_dirty++] = id;
	s->snap_dirty = true;
}

static void room_event(sio_socket *s, const char *room, int event)
{
	sio_server *srv = s->conn->srv;
	if (event == SIO_ROOM_JOIN || event == SIO_ROOM_LEAVE)
		mark_dirty(srv, s);
	if (srv->h.on_room && strcmp(room, s->id) != 0 && !s->moved)
		srv->h.on_room(srv->h.ctx, s, room, event);
}

int sio_socket_join(sio_socket *s, const char *room)
{
	if (s->pending)
		return 0;
	int created = 0;
	int rc = room_join(s->nsp->rooms, room, s, &created);
	if (rc == 1) {
		if (created)
			room_event(s, room, SIO_ROOM_CREATE);
		room_event(s, room, SIO_ROOM_JOIN);
	}
	return rc;
}

int sio_socket_leave(sio_socket *s, const char *room)
{
	int deleted = 0;
	int rc = room_leave(s->nsp->rooms, room, s, &deleted);
	if (rc == 1) {
		room_event(s, room, SIO_ROOM_LEAVE);
		if (deleted)
			room_event(s, room, SIO_ROOM_DELETE);
	}
	return rc;
}

static void left_room(const char *room, int deleted, void *arg)
{
	room_event(arg, room, SIO_ROOM_LEAVE);
	if (deleted)
		room_event(arg, room, SIO_ROOM_DELETE);
}

/* The sio side of an emit-with-ack: the handler and the timeout. */
typedef struct ack_wait {
	sio_ack_handler h;
	gw_timers *timers;
	gw_timer timer;
	ack_req *req;
} ack_wait;

static void ack_wait_done(void *arg, size_t acked, size_t timed_out)
{
	ack_wait *w = arg;
	gw_timer_stop(w->timers, &w->timer);
	if (w->h.on_done)
		w->h.on_done(w->h.arg, acked, timed_out);
	free(w);
}

static void ack_wait_timeout(gw_timer *t)
{
	ack_wait *w = t->ctx;
	ack_req_expire(w->req);
}

size_t sio_emit_with_ack(sio_server *srv, const char *nsp, const char *const *rooms,
			 size_t n_rooms, const char *const *except, size_t n_except,
			 const char *json, size_t json_len, gw_frame *const *att, size_t n_att,
			 bool volatile_, uint32_t timeout_ms, const sio_ack_handler *h)
{
	sio_socket **targets;
	size_t n = sio_select(srv, nsp, rooms, n_rooms, except, n_except, &targets);
	ack_wait *w = calloc(1, sizeof *w);
	gw_frame *stack[8];
	gw_frame **frames = n_att + 1 <= 8 ? stack : malloc((n_att + 1) * sizeof *frames);
	if (w) {
		w->h = *h;
		w->timers = srv->timers;
		w->timer.ctx = w;
		w->req = ack_req_create(n, ack_wait_done, w);
	}
	if (!w || !w->req || !frames) {
		if (w)
			free(w);
		if (frames && frames != stack)
			free(frames);
		free(targets);
		if (h->on_done)
			h->on_done(h->arg, 0, n);
		return n;
	}
	for (size_t i = 0; i < n; i++) {
		sio_socket *s = targets[i];
		/* the ack id differs per socket: only the header is encoded per target,
		 * the attachments are shared */
		int64_t id = s->next_ack_id++;
		gw_buf b = {0};
		gw_frame *f = NULL;
		if (!gw_buf_putc(&b, '4') &&
		    !sio_encode(&b, n_att ? SIO_BINARY_EVENT : SIO_EVENT, nsp, id, (unsigned)n_att,
				json, json_len))
			f = gw_frame_from(b.data, b.len, false);
		gw_buf_free(&b);
		if (!f) {
			ack_req_miss(w->req);
			continue;
		}
		frames[0] = f;
		for (size_t k = 0; k < n_att; k++)
			frames[k + 1] = att[k];
		if (s->acks.n >= SIO_MAX_PENDING_ACKS || wire_send(s->eio, frames, n_att + 1, volatile_))
			ack_req_miss(w->req);
		else
			ack_req_expect(w->req, &s->acks, id, SIO_MAX_PENDING_ACKS);
		gw_frame_unref(f);
	}
	if (frames != stack)
		free(frames);
	free(targets);
	ack_req *r = w->req;
	if (!ack_req_seal(r))
		gw_timer_start(w->timers, &w->timer, timeout_ms, ack_wait_timeout);
	return n;
}

/* ---- socket lifecycle ---- */

/* socket.io's RECOVERABLE_DISCONNECT_REASONS; "server shutting down" only when the
 * snapshot reaches other nodes (this process's go with it) */
static bool recoverable_reason(const sio_server *srv, const char *reason)
{
	return !strcmp(reason, "transport close") || !strcmp(reason, "transport error") ||
	       !strcmp(reason, "ping timeout") || (srv->nodes && !strcmp(reason, "server shutting down"));
}

void sio_recovery_set_shared(sio_server *srv, bool shared, bool nodes)
{
	srv->shared = shared || nodes;
	srv->nodes = nodes;
}

static void collect_room_name(const char *room, void *arg)
{
	gw_buf *b = arg;
	gw_buf_append(b, &room, sizeof room);
}

/* The socket as it would come back; its rooms are collected into *rooms. */
static sio_session_info snapshot(sio_socket *s, gw_buf *rooms)
{
	sio_socket_rooms(s, collect_room_name, rooms);
	return (sio_session_info){.pid = s->pid, .sid = s->id, .nsp = s->nsp->name, .data = s->data,
				  .rooms = (const char *const *)(void *)rooms->data,
				  .n_rooms = rooms->len / sizeof(char *), .gen = s->gen};
}

/* Tell the other nodes (a bus between nodes only). A LIVE snapshot is current: a
 * pending room-change one is not needed any more. */
static void tell(sio_server *srv, sio_socket *s, int kind, const sio_session_info *i)
{
	if (!srv->shared || !srv->h.on_session)
		return;
	if (kind == SIO_SESSION_LIVE)
		s->snap_dirty = false;
	srv->h.on_session(srv->h.ctx, kind, i);
}

static void share(sio_server *srv, sio_socket *s, int kind)
{
	if (!srv->shared || !srv->h.on_session || !s->pid)
		return;
	gw_buf rooms = {0};
	sio_session_info i = snapshot(s, &rooms);
	tell(srv, s, kind, &i);
	gw_buf_free(&rooms);
}

/* recovery: keep what the socket was, for its return within the window, here and (on a
 * bus between nodes) everywhere */
static void persist(sio_server *srv, sio_socket *s)
{
	gw_buf rooms = {0};
	sio_session_info i = snapshot(s, &rooms);
	s->recoverable = rec_persist(srv->rec, (int64_t)gw_now_ms(), i.pid, i.sid, i.nsp, i.data, i.rooms,
				     i.n_rooms, i.gen, true) == 0;
	if (s->recoverable)
		tell(srv, s, SIO_SESSION_LOST, &i);
	gw_buf_free(&rooms);
}

static void socket_remove(sio_conn *c, sio_socket *s, const char *reason);

int sio_recovery_remote(sio_server *srv, int kind, const sio_session_info *i, int64_t at_ms)
{
	if (!srv->rec || !i->pid || !i->sid || !i->nsp)
		return -GW_EINVAL;
	if (kind == SIO_SESSION_GONE) {
		rec_forget(srv->rec, i->pid, i->gen);
		return 0;
	}
	sio_socket *mine = gw_map_get(&srv->sockets, i->sid, strlen(i->sid));
	if (mine && mine->pid && !strcmp(mine->pid, i->pid)) {
		/* held here too: unless it came back elsewhere since (its old connection here is
		 * dead, not yet timed out), this node's word is the last */
		if (kind == SIO_SESSION_LIVE && i->gen > mine->gen && !mine->pending) {
			sio_conn *c = mine->conn;
			mine->moved = true;
			socket_remove(c, mine, "transport close");
			if (!c->sockets)
				eio_session_close(c->eio, GW_CLOSE_TRANSPORT_CLOSE);
		}
		return 0;
	}
	/* the window runs from the snapshot, on this node's monotonic clock */
	int64_t at = (int64_t)gw_now_ms() - (gw_wall_ms() - at_ms);
	return rec_persist(srv->rec, at, i->pid, i->sid, i->nsp, i->data, i->rooms, i->n_rooms, i->gen, !i->copy);
}

static void socket_remove(sio_conn *c, sio_socket *s, const char *reason)
{
	sio_server *srv = c->srv;
	ack_owed_settle(&s->acks); /* a socket that leaves will never answer */
	gw_timer_stop(s->conn->srv->timers, &s->auth_timer);
	if (!s->pending && s->pid && !s->moved) {
		if (recoverable_reason(srv, reason))
			persist(srv, s);
		else
			share(srv, s, SIO_SESSION_GONE);
	}
	if (!s->pending) {
		if (srv->h.on_disconnect)
			srv->h.on_disconnect(srv->h.ctx, s, reason);
		room_leave_all(s->nsp->rooms, s, left_room, s);
		s->nsp->n_sockets--;
		if (s->nsp->dynamic)
			s->nsp->stats->n_sockets--;
	}
	gw_map_del(&srv->sockets, s->id, s->id_len);
	for (sio_socket **pp = &c->sockets; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	cJSON_Delete(s->auth);
	free(s->data);
	free(s->pid);
	rec_session_free(s->restore);
	sio_nsp *ns = s->nsp;
	free(s);
	ns->refs--;
	nsp_release(srv, ns);
}

void sio_socket_disconnect(sio_socket *s, bool close)
{
	sio_conn *c = s->conn;
	send_packet(c->eio, SIO_DISCONNECT, s->nsp->name, SIO_NO_ID, 0, NULL, 0, NULL);
	socket_remove(c, s, "server namespace disconnect");
	if (!close)
		return;
	/* as socket.io's disconnect(true): every socket of the connection is told, so
	 * the client does not reconnect its other namespaces */
	while (c->sockets) {
		sio_socket *o = c->sockets;
		if (!o->pending)
			send_packet(c->eio, SIO_DISCONNECT, o->nsp->name, SIO_NO_ID, 0, NULL, 0, NULL);
		socket_remove(c, o, "server namespace disconnect");
	}
	eio_session_close(c->eio, GW_CLOSE_SERVER_DISCONNECT);
}

/* Beyond 64 namespaces, and for dynamic ones, a connection's past is not kept: any is
 * taken as left. */
static bool conn_was_in(const sio_conn *c, const sio_nsp *ns)
{
	if (ns->cfg->match) /* a dynamic namespace, or its match entry once it was freed */
		return true;
	size_t i = (size_t)(ns - c->srv->nsps);
	return i >= 64 || (c->was_in >> i & 1);
}

static sio_socket *conn_socket(sio_conn *c, const char *nsp, size_t len)
{
	for (sio_socket *s = c->sockets; s; s = s->next) {
		const char *n = s->nsp->name;
		if (strlen(n) == len && memcmp(n, nsp, len) == 0)
			return s;
	}
	return NULL;
}

bool sio_socket_pending(const sio_socket *s) { return s->pending; }
bool sio_socket_recovered(const sio_socket *s) { return s->recovered; }
bool sio_socket_recoverable(const sio_socket *s) { return s->recoverable; }
bool sio_socket_moved(const sio_socket *s) { return s->moved; }
const cJSON *sio_socket_auth(const sio_socket *s) { return s->auth; }
eio_session *sio_socket_session(const sio_socket *s) { return s->eio; }
const char *sio_socket_data(const sio_socket *s) { return s->data; }
const char *sio_socket_claims(const sio_socket *s)
{
	return s->nsp->cfg->auth == GW_AUTH_JWT ? s->data : NULL;
}
void *sio_socket_user(const sio_socket *s) { return s->user; }
void sio_socket_set_user(sio_socket *s, void *user) { s->user = user; }

static void replay_one(void *arg, gw_frame *const *frames, size_t n)
{
	sio_socket *s = arg;
	wire_send(s->eio, frames, n, false);
}

/* recovery: the snapshot's rooms and data back, then the packets it missed (before
 * the CONNECT, as socket.io sends them: the client emits them once connected) */
static void restore(sio_socket *s)
{
	rec_session *r = s->restore;
	for (size_t i = 0; i < r->n_rooms; i++)
		if (strcmp(r->rooms[i], s->id) != 0)
			sio_socket_join(s, r->rooms[i]);
	if (!s->data && r->data)
		s->data = strdup(r->data);
	rec_replay(s->conn->srv->rec, r, s->restore_from, replay_one, s);
	rec_session_free(r);
	s->restore = NULL;
}

static int admit(sio_socket *s)
{
	gw_buf json = {0};
	/* a v3 connection's CONNECT has no payload: the client knows the id it will have */
	if ((!s->conn->v3 && (gw_buf_puts(&json, "{\"sid\":") || gw_buf_put_json_string(&json, s->id, s->id_len) ||
			      (s->pid && (gw_buf_puts(&json, ",\"pid\":") ||
					  gw_buf_put_json_string(&json, s->pid, strlen(s->pid)))) ||
			      gw_buf_putc(&json, '}'))) ||
	    room_join(s->nsp->rooms, s->id, s, NULL) < 0) {
		gw_buf_free(&json);
		return -GW_ENOMEM;
	}
	s->pending = false;
	s->nsp->n_sockets++;
	if (s->nsp->dynamic)
		s->nsp->stats->n_sockets++;
	if (s->restore)
		restore(s);
	send_packet(s->eio, SIO_CONNECT, s->nsp->name, SIO_NO_ID, 0, (const char *)json.data, json.len, NULL);
	share(s->conn->srv, s, SIO_SESSION_LIVE);
	gw_buf_free(&json);
	sio_server *srv = s->conn->srv;
	if (srv->h.on_admit)
		srv->h.on_admit(srv->h.ctx, s);
	return 0;
}

int sio_socket_admit(sio_socket *s, const char *data_json)
{
	if (!s->pending)
		return 0;
	gw_timer_stop(s->conn->srv->timers, &s->auth_timer);
	if (data_json && !(s->data = strdup(data_json)))
		return -GW_ENOMEM;
	if (admit(s)) {
		sio_socket_reject(s, "{\"message\":\"server error\"}");
		return -GW_ENOMEM;
	}
	return 0;
}

/* Socket.IO v4's CONNECT_ERROR payload for {"message","data"}: err.data || err.message
 * (JavaScript's truthiness), as socket.io sends it to such clients. NULL: out of
 * memory, or not an error object. */
static char *v3_error(const char *error_json)
{
	cJSON *e = cJSON_Parse(error_json);
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(e, "data");
	bool truthy = d && !cJSON_IsNull(d) && !cJSON_IsFalse(d) && !(cJSON_IsNumber(d) && d->valuedouble == 0) &&
		      !(cJSON_IsString(d) && !d->valuestring[0]);
	const cJSON *v = truthy ? d : cJSON_GetObjectItemCaseSensitive(e, "message");
	char *out = v ? cJSON_PrintUnformatted(v) : NULL;
	cJSON_Delete(e);
	return out;
}

void sio_socket_reject(sio_socket *s, const char *error_json)
{
	if (!s->pending)
		return;
	sio_conn *c = s->conn;
	char *v3 = c->v3 ? v3_error(error_json) : NULL;
	const char *payload = v3 ? v3 : error_json;
	send_packet(c->eio, SIO_CONNECT_ERROR, s->nsp->name, SIO_NO_ID, 0, payload, strlen(payload), NULL);
	free(v3);
	socket_remove(c, s, "auth refused");
}

static void auth_timeout(gw_timer *t)
{
	sio_socket_reject(t->ctx, "{\"message\":\"auth timeout\"}");
}

/* The token where the namespace takes it from: a copy, or NULL when there is none.
 * *bad: there is something, but not a token (auth.token not a string, an
 * Authorization that is not Bearer). auth.token leaves the socket's auth. */
static char *jwt_token(sio_socket *s, bool *bad)
{
	int from = s->nsp->cfg->jwt.token_from;
	char *tok = NULL;
	*bad = false;
	if (from == GW_TOKEN_AUTH) {
		cJSON *t = cJSON_IsObject(s->auth) ? cJSON_DetachItemFromObjectCaseSensitive(s->auth, "token") : NULL;
		if (cJSON_IsString(t))
			tok = strdup(t->valuestring);
		else
			*bad = t != NULL;
		cJSON_Delete(t);
		return tok;
	}
	const char *text = eio_session_handshake(s->eio);
	cJSON *hs = text ? cJSON_Parse(text) : NULL;
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(hs, from == GW_TOKEN_QUERY ? "query" : "headers"),
		from == GW_TOKEN_QUERY ? "token" : "authorization");
	if (cJSON_IsString(v)) {
		const char *t = v->valuestring;
		if (from == GW_TOKEN_HEADER) {
			/* RFC 6750 §2.1: "Bearer" (any case), one space or more, the token */
			if (strncasecmp(t, "Bearer ", 7) == 0)
				t += 7 + strspn(t + 7, " ");
			else
				*bad = true, t = NULL;
		}
		if (t && *t)
			tok = strdup(t);
	}
	cJSON_Delete(hs);
	return tok;
}

/* auth: jwt. On success the claims are the socket's data; else CONNECT_ERROR
 * {"message":"invalid token","data":{"reason":...}} and the socket is gone. */
static bool jwt_accept(sio_socket *s)
{
	bool bad;
	char *tok = jwt_token(s, &bad);
	int64_t now = gw_wall_ms();
	char *claims = NULL;
	gw_jwt_status st = bad	? GW_JWT_MALFORMED
			   : tok ? gw_jwt_verify(s->nsp->cfg->verifier, tok, strlen(tok), now, &claims)
				 : GW_JWT_MISSING;
	free(tok);
	if (st == GW_JWT_OK) {
		s->data = claims;
		return true;
	}
	s->nsp->stats->jwt_refused[st]++;
	char err[96];
	snprintf(err, sizeof err, "{\"message\":\"invalid token\",\"data\":{\"reason\":\"%s\"}}", gw_jwt_reason(st));
	gw_debug("sio: %s: token refused (%s)", s->nsp->name, gw_jwt_reason(st));
	sio_socket_reject(s, err);
	return false;
}

static void on_connect_packet(sio_conn *c, sio_packet *p)
{
	sio_server *srv = c->srv;
	if (conn_socket(c, p->nsp, p->nsp_len)) {
		/* socket.io closes a connection that joins a namespace twice */
		eio_session_close(c->eio, GW_CLOSE_PARSE_ERROR);
		return;
	}
	sio_nsp *ns = nsp_open(srv, p->nsp, p->nsp_len);
	if (!ns) {
		send_connect_error(c->eio, p->nsp, p->nsp_len, "Invalid namespace");
		return;
	}
	/* recovery: a client back with {pid, offset} in its auth, as socket.io-client 4.6+ */
	rec_session *snap = NULL;
	uint64_t from = 0;
	bool recovery = rec_on(srv, ns->cfg) && !c->v3; /* (socket.io-client 2.x has none) */
	if (recovery) {
		const cJSON *pid = cJSON_GetObjectItemCaseSensitive(p->data, "pid");
		const cJSON *off = cJSON_GetObjectItemCaseSensitive(p->data, "offset");
		if (cJSON_IsString(pid) && cJSON_IsString(off))
			/* the replay and the CONNECT must fit the connection's queue */
			snap = rec_take(srv->rec, (int64_t)gw_now_ms(), pid->valuestring, off->valuestring, ns->name,
					srv->cfg->engine.send_queue - 1, &from);
		if (snap && gw_map_get(&srv->sockets, snap->sid, strlen(snap->sid))) {
			rec_session_free(snap); /* its id is taken (it came back twice at once) */
			snap = NULL;
		}
	}
	/* v3: socket.io's ids, the engine id in "/" and "<nsp>#<engine id>" elsewhere */
	const char *sid = eio_session_sid(c->eio);
	bool root = strcmp(ns->name, "/") == 0;
	size_t id_len = snap ? strlen(snap->sid) : !c->v3 ? GW_ID_LEN : root ? strlen(sid) : strlen(ns->name) + 1 + strlen(sid);
	sio_socket *s = calloc(1, sizeof *s + id_len + 1);
	char *pid = !recovery ? NULL : snap ? strdup(snap->pid) : malloc(GW_ID_LEN + 1);
	if (!s || (recovery && !pid)) {
		free(s);
		free(pid);
		rec_session_free(snap);
		nsp_release(srv, ns);
		return;
	}
	if (pid && !snap)
		gw_rand_id(pid);
	s->pid = pid;
	s->restore = snap;
	s->restore_from = from;
	s->recovered = snap != NULL;
	s->gen = snap ? snap->gen + 1 : 0;
	s->conn = c;
	s->eio = c->eio;
	s->nsp = ns;
	ns->refs++;
	if (!ns->dynamic && (size_t)(ns - srv->nsps) < 64)
		c->was_in |= UINT64_C(1) << (ns - srv->nsps);
	s->auth_timer.ctx = s;
	s->id_len = id_len;
	if (snap)
		memcpy(s->id, snap->sid, id_len + 1);
	else if (c->v3)
		snprintf(s->id, id_len + 1, "%s%s%s", root ? "" : ns->name, root ? "" : "#", sid);
	else
		do
			gw_sid_new(s->id, srv->cfg->node_tag); /* names this node: util/sid.h */
		while (gw_map_get(&srv->sockets, s->id, GW_ID_LEN));
	if (p->data) {
		s->auth = p->data;
		p->data = NULL;
	}
	/* (a v3 id taken by a v4 socket's random one: as good as impossible, refused) */
	if ((c->v3 && gw_map_get(&srv->sockets, s->id, s->id_len)) || gw_map_put(&srv->sockets, s->id, s->id_len, s)) {
		cJSON_Delete(s->auth);
		free(s->pid);
		rec_session_free(s->restore);
		free(s);
		ns->refs--;
		nsp_release(srv, ns);
		return;
	}
	s->pending = true;
	s->next = c->sockets;
	c->sockets = s;
	gw_timer_stop(c->srv->timers, &c->connect_timer);

	bool skip_auth = s->recovered && srv->cfg->recovery.skip_auth; /* socket.io's skipMiddlewares */
	if (ns->cfg->auth == GW_AUTH_BACKEND && !skip_auth) {
		/* counted from the CONNECT packet; the backend decides */
		gw_timer_start(srv->timers, &s->auth_timer, (uint32_t)ns->cfg->auth_timeout_ms, auth_timeout);
		if (srv->h.on_connect)
			srv->h.on_connect(srv->h.ctx, s);
		return;
	}
	if (ns->cfg->auth == GW_AUTH_JWT && !skip_auth && !jwt_accept(s))
		return;
	if (admit(s)) {
		socket_remove(c, s, "server error");
		return;
	}
	/* the backend hears of the socket before any of its events can be read: the
	 * CONNECT is only queued here, written after this returns */
	if (srv->h.on_connect)
		srv->h.on_connect(srv->h.ctx, s);
}

static void pending_clear(sio_conn *c)
{
	bin_wait *b = c->bin;
	if (!b)
		return;
	for (unsigned i = 0; i < b->got; i++)
		free(b->att[i]);
	sio_packet_clear(&b->pkt);
	free(b);
	c->bin = NULL;
}

/* A complete packet with its n_att attachments. Returns -1 if the connection must
 * close (protocol violation). */
static int dispatch(sio_conn *c, sio_packet *p, uint8_t *const *att, const size_t *att_len, unsigned n_att)
{
	sio_server *srv = c->srv;
	if (p->type == SIO_CONNECT) {
		on_connect_packet(c, p);
		return 0;
	}
	sio_socket *s = conn_socket(c, p->nsp, p->nsp_len);
	if (!s) {
		/* A namespace the connection has left: the server may just have disconnected it
		 * (a rate limit, a backend's disconnect) while the client's next packets were on
		 * the way. socket.io closes the whole connection here, which takes the client's
		 * other namespaces and its disconnect reason with it; these packets are dropped
		 * and counted instead. A namespace never joined (or unknown) still closes, as
		 * in socket.io: that is a client out of step with the protocol. */
		sio_nsp *ns = nsp_find(srv, p->nsp, p->nsp_len);
		if (!ns) /* a dynamic namespace freed with its last socket, this one's maybe */
			ns = nsp_match(srv, p->nsp, p->nsp_len);
		if (!ns || !conn_was_in(c, ns))
			return -1;
		ns->stats->late_packets++;
		return 0;
	}
	switch (p->type) {
	case SIO_DISCONNECT:
		socket_remove(c, s, "client namespace disconnect");
		return 0;
	case SIO_EVENT:
	case SIO_BINARY_EVENT:
		if (s->pending)
			return 0; /* not admitted: never published */
		if (srv->h.on_event)
			srv->h.on_event(srv->h.ctx, s, p->data, p->type == SIO_EVENT ? p->json : NULL, p->json_len,
					(const uint8_t *const *)att, att_len, n_att, p->id);
		return 0;
	case SIO_ACK:
	case SIO_BINARY_ACK:
		if (p->id != SIO_NO_ID) {
			ack_req *r = ack_owed_take(&s->acks, p->id);
			if (r) {
				ack_wait *w = ack_req_arg(r);
				if (w->h.on_ack)
					w->h.on_ack(w->h.arg, s, p->data, p->type == SIO_ACK ? p->json : NULL,
						    p->json_len, (const uint8_t *const *)att, att_len, n_att);
				ack_req_answered(r);
			}
		}
		return 0; /* an unknown id: late or duplicate answer, ignored as socket.io does */
	default:
		return -1;
	}
}

/* A client speaking the other parser: the session closes either way (its packets do
 * not decode); say why once, so the operator is not left guessing. */
static void wrong_parser(sio_conn *c, bool binary, const uint8_t *data, size_t len)
{
	sio_server *srv = c->srv;
	bool msgpack_map = binary && len && ((data[0] >= 0x80 && data[0] <= 0x8f) || data[0] == 0xde || data[0] == 0xdf);
	bool json_packet = !binary && len && data[0] >= '0' && data[0] <= '6';
	if (srv->told_parser || (srv->msgpack ? !json_packet : !msgpack_map))
		return;
	srv->told_parser = true;
	gw_warn("sio %s: a %s packet on a gateway with engine.parser: %s — is the client using %s? "
		"(sessions like this one are closed; logged once)",
		eio_session_sid(c->eio), binary ? "MessagePack" : "JSON text", srv->msgpack ? "msgpack" : "json",
		srv->msgpack ? "the default parser instead of socket.io-msgpack-parser" : "socket.io-msgpack-parser");
}

/* engine.parser: msgpack — every packet is one binary message. */
static void on_msgpack(sio_conn *c, const uint8_t *data, size_t len, bool binary)
{
	sio_packet p;
	sio_mp_att att;
	if (!binary || sio_mp_decode(data, len, SIO_MAX_CLIENT_ATTACHMENTS, &p, &att)) {
		wrong_parser(c, binary, data, len);
		gw_debug("sio %s: malformed msgpack packet", eio_session_sid(c->eio));
		eio_session_close(c->eio, GW_CLOSE_PARSE_ERROR);
		return;
	}
	int rc = dispatch(c, &p, att.data, att.len, att.n);
	sio_mp_clear(&p, &att);
	if (rc)
		eio_session_close(c->eio, GW_CLOSE_PARSE_ERROR);
}

static void put_auth_arg(void *ctx, const char *k, size_t kl, const char *v, size_t vl)
{
	(void)kl;
	(void)vl;
	cJSON *auth = ctx, *val = cJSON_CreateString(v);
	if (!val)
		return;
	/* as Object.fromEntries(searchParams): the last value of a name, in the place of
	 * its first */
	if (cJSON_HasObjectItem(auth, k))
		cJSON_ReplaceItemInObjectCaseSensitive(auth, k, val);
	else
		cJSON_AddItemToObject(auth, k, val);
}

/* A v3 packet's namespace may carry a query, as socket.io-client 2.x sends its CONNECT:
 * the namespace is the path, and a CONNECT's auth is the query (socket.io reads no
 * payload there). Returns -1 out of memory. */
static int v3_nsp_query(sio_packet *p)
{
	const char *q = memchr(p->nsp, '?', p->nsp_len);
	size_t qlen = q ? (size_t)(p->nsp + p->nsp_len - q - 1) : 0;
	if (q)
		p->nsp_len = (size_t)(q - p->nsp);
	if (p->type != SIO_CONNECT)
		return 0;
	cJSON_Delete(p->data);
	p->data = NULL;
	if (!q)
		return 0;
	cJSON *auth = cJSON_CreateObject();
	if (!auth)
		return -1;
	gw_query_foreach(q + 1, qlen, put_auth_arg, auth);
	p->data = auth;
	return 0;
}

static void on_message(void *ctx, eio_session *e, const uint8_t *data, size_t len, bool binary)
{
	sio_conn *c = eio_session_user(e);
	if (!c)
		return;
	if (c->srv->msgpack) {
		on_msgpack(c, data, len, binary);
		return;
	}
	if (binary) {
		bin_wait *b = c->bin;
		if (!b) {
			wrong_parser(c, binary, data, len);
			eio_session_close(e, GW_CLOSE_PARSE_ERROR);
			return;
		}
		if (b->bytes + len > c->srv->cfg->engine.max_payload) {
			/* one packet's attachments together stay within max_payload */
			eio_session_close(e, GW_CLOSE_PAYLOAD_TOO_LARGE);
			return;
		}
		uint8_t *copy = malloc(len ? len : 1);
		if (!copy) {
			eio_session_close(e, GW_CLOSE_PARSE_ERROR);
			return;
		}
		memcpy(copy, data, len);
		b->bytes += len;
		b->att[b->got] = copy;
		b->att_len[b->got] = len;
		b->got++;
		if (b->got == b->pkt.attachments) {
			int rc = dispatch(c, &b->pkt, b->att, b->att_len, b->got);
			pending_clear(c);
			if (rc)
				eio_session_close(e, GW_CLOSE_PARSE_ERROR);
		}
		return;
	}
	if (c->bin) {
		/* a text packet while attachments are awaited */
		eio_session_close(e, GW_CLOSE_PARSE_ERROR);
		return;
	}
	sio_packet p;
	if (sio_decode((const char *)data, len, &p) || (c->v3 && v3_nsp_query(&p))) {
		gw_debug("sio %s: malformed packet", eio_session_sid(e));
		sio_packet_clear(&p);
		eio_session_close(e, GW_CLOSE_PARSE_ERROR);
		return;
	}
	bool bin = p.type == SIO_BINARY_EVENT || p.type == SIO_BINARY_ACK;
	if (bin && !sio_placeholders_valid(p.data, p.attachments)) {
		/* a placeholder that indexes no attachment: socket.io's parser refuses the
		 * packet ("illegal attachments") and the connection closes */
		gw_debug("sio %s: placeholder out of range", eio_session_sid(e));
		sio_packet_clear(&p);
		eio_session_close(e, GW_CLOSE_PARSE_ERROR);
		return;
	}
	if (bin && p.attachments > 0) {
		bin_wait *b = p.attachments <= SIO_MAX_CLIENT_ATTACHMENTS && p.nsp_len <= BIN_MAX_NSP
				      ? calloc(1, sizeof *b + p.nsp_len + 1)
				      : NULL;
		if (!b) {
			/* bounds what one client packet may pin (socket.io-parser's default) */
			sio_packet_clear(&p);
			eio_session_close(e, GW_CLOSE_PARSE_ERROR);
			return;
		}
		memcpy(b->nsp, p.nsp, p.nsp_len);
		p.nsp = b->nsp;
		p.json = NULL; /* points into the input, which goes: a binary packet has no text */
		b->pkt = p;
		c->bin = b;
		return;
	}
	int rc = dispatch(c, &p, NULL, NULL, 0);
	sio_packet_clear(&p);
	if (rc)
		eio_session_close(e, GW_CLOSE_PARSE_ERROR);
}

static void connect_timeout(gw_timer *t)
{
	sio_conn *c = t->ctx;
	if (!c->sockets)
		eio_session_close(c->eio, GW_CLOSE_CONNECT_TIMEOUT);
}

static void on_open(void *ctx, eio_session *e)
{
	sio_server *srv = ctx;
	sio_conn *c = calloc(1, sizeof *c);
	if (!c) {
		eio_session_close(e, GW_CLOSE_TRANSPORT_ERROR);
		return;
	}
	c->srv = srv;
	c->eio = e;
	c->v3 = eio_session_protocol(e) == 3;
	c->connect_timer.ctx = c;
	eio_session_set_user(e, c);
	gw_timer_start(srv->timers, &c->connect_timer, (uint32_t)srv->cfg->engine.connect_timeout_ms, connect_timeout);
	/* v3: socket.io puts the connection in "/" at once. A gateway without "/" sends no
	 * CONNECT_ERROR here: socket.io-client 2.x shows an error for "/" on every one of
	 * its sockets, so a client of /chat would see it too. */
	if (c->v3 && (nsp_find(srv, "/", 1) || nsp_match(srv, "/", 1))) {
		sio_packet p = {.type = SIO_CONNECT, .nsp = "/", .nsp_len = 1, .id = SIO_NO_ID};
		on_connect_packet(c, &p);
	}
}

static const char *disconnect_reason(gw_close_reason r)
{
	switch (r) {
	case GW_CLOSE_TRANSPORT_CLOSE: return "transport close";
	case GW_CLOSE_PING_TIMEOUT: return "ping timeout";
	case GW_CLOSE_PARSE_ERROR: return "parse error";
	case GW_CLOSE_SERVER_DISCONNECT: return "server namespace disconnect";
	case GW_CLOSE_SHUTDOWN: return "server shutting down";
	default: return "transport error";
	}
}

static void on_close(void *ctx, eio_session *e, gw_close_reason reason)
{
	sio_conn *c = eio_session_user(e);
	if (!c)
		return;
	gw_timer_stop(c->srv->timers, &c->connect_timer);
	while (c->sockets)
		socket_remove(c, c->sockets, disconnect_reason(reason));
	pending_clear(c);
	eio_session_set_user(e, NULL);
	free(c);
}

static void on_upgrade(void *ctx, eio_session *e)
{
	sio_server *srv = ctx;
	sio_conn *c = eio_session_user(e);
	for (sio_socket *s = c ? c->sockets : NULL; s && srv->h.on_upgrade; s = s->next)
		if (!s->pending)
			srv->h.on_upgrade(srv->h.ctx, s);
}

eio_handler sio_server_eio_handler(sio_server *srv)
{
	eio_handler h = {.ctx = srv, .on_open = on_open, .on_message = on_message, .on_close = on_close,
			 .on_upgrade = on_upgrade};
	return h;
}

/* Rooms of a namespace; a match entry: of all its namespaces. */
static size_t nsp_rooms(const sio_server *srv, const sio_nsp *ns)
{
	if (ns->rooms)
		return room_index_rooms(ns->rooms);
	size_t n = 0;
	for (size_t i = 0; i < srv->dynamic.cap; i++) {
		const sio_nsp *d = srv->dynamic.slots[i].value;
		if (srv->dynamic.slots[i].key && d->stats == ns)
			n += room_index_rooms(d->rooms);
	}
	return n;
}

/* Series are per configuration entry (a match entry sums its dynamic namespaces, whose
 * names are not labels: a label per tenant would grow without bound). */
void sio_metrics(void *ctx, gw_metric_sink *m)
{
	const sio_server *srv = ctx;
	char l[600];
	for (size_t i = 0; i < srv->n_nsps; i++) {
		snprintf(l, sizeof l, "nsp=\"%s\"", srv->nsps[i].cfg->label);
		m->sample(m, "sio_sockets", GW_METRIC_GAUGE, "Connected sockets by namespace.", l,
			  (int64_t)srv->nsps[i].n_sockets);
	}
	for (size_t i = 0; i < srv->n_nsps; i++) {
		snprintf(l, sizeof l, "nsp=\"%s\"", srv->nsps[i].cfg->label);
		m->sample(m, "sio_rooms", GW_METRIC_GAUGE,
			  "Rooms with local members by namespace (socket-id rooms included).", l,
			  (int64_t)nsp_rooms(srv, &srv->nsps[i]));
	}
	for (size_t i = 0; i < srv->n_nsps; i++) {
		if (!srv->nsps[i].cfg->match)
			continue;
		snprintf(l, sizeof l, "nsp=\"%s\"", srv->nsps[i].cfg->label);
		/* several loops: the first says the process's count (each name once), the
		 * others 0, and the page sums them */
		int64_t live = (int64_t)srv->nsps[i].n_dynamic;
		if (srv->names) {
			pthread_mutex_lock(&srv->names->lock);
			live = srv->cfg->loop == 0 ? (int64_t)srv->names->alive[i] : 0;
			pthread_mutex_unlock(&srv->names->lock);
		}
		m->sample(m, "sio_dynamic_namespaces", GW_METRIC_GAUGE,
			  "Dynamic namespaces with sockets, by the match entry that made them.", l, live);
	}
	for (size_t i = 0; i < srv->n_nsps; i++) {
		if (srv->nsps[i].cfg->auth != GW_AUTH_JWT)
			continue;
		for (int st = GW_JWT_MISSING; st <= GW_JWT_EXP_REQUIRED; st++) {
			snprintf(l, sizeof l, "nsp=\"%s\",reason=\"%s\"", srv->nsps[i].cfg->label, gw_jwt_reason(st));
			m->sample(m, "sio_jwt_refused_total", GW_METRIC_COUNTER,
				  "CONNECTs refused by auth: jwt, by namespace and reason.", l,
				  (int64_t)srv->nsps[i].jwt_refused[st]);
		}
	}
	if (srv->rec) {
		const rec_stats *r = rec_store_stats(srv->rec);
		const char *help = "Returning sockets by outcome (recovery): recovered, failed (unknown or expired "
				   "pid, offset no longer logged), too_many (more missed packets than engine.send_queue).";
		m->sample(m, "sio_recoveries_total", GW_METRIC_COUNTER, help, "result=\"recovered\"", (int64_t)r->recovered);
		m->sample(m, "sio_recoveries_total", GW_METRIC_COUNTER, help, "result=\"failed\"",
			  (int64_t)(r->failed - r->too_many));
		m->sample(m, "sio_recoveries_total", GW_METRIC_COUNTER, help, "result=\"too_many\"", (int64_t)r->too_many);
		gw_metric_counter(m, "sio_recovery_expired_total", "Snapshots of lost sockets whose window passed.",
				  r->expired);
		m->sample(m, "sio_recovery_sessions", GW_METRIC_GAUGE, "Lost sockets that may still come back.", NULL,
			  (int64_t)r->sessions);
		m->sample(m, "sio_recovery_log_packets", GW_METRIC_GAUGE, "Packets kept for replay.", NULL,
			  (int64_t)r->log_packets);
		m->sample(m, "sio_recovery_log_bytes", GW_METRIC_GAUGE,
			  "Memory of the packets kept for replay (bounded by recovery.max_log_bytes).", NULL,
			  (int64_t)r->log_bytes);
		gw_metric_counter(m, "sio_recovery_log_evicted_total",
				  "Packets dropped from the replay log for room before their window passed.", r->evicted);
	}
	for (size_t i = 0; i < srv->n_nsps; i++) {
		snprintf(l, sizeof l, "nsp=\"%s\"", srv->nsps[i].cfg->label);
		m->sample(m, "sio_packets_not_connected_total", GW_METRIC_COUNTER,
			  "Client packets for a namespace the connection has left (e.g. in flight when the "
			  "server disconnected it), dropped.",
			  l, (int64_t)srv->nsps[i].late_packets);
	}
}
