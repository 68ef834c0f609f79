/*
 * admin.c — @socket.io/admin-ui's server protocol (see admin.h and docs/operations.md).
 *
 * What instrument() (admin-ui 0.5) sends, and how it is made here:
 *   session      (id)                          after a password login
 *   config       ({supportedFeatures})          to each admin, on connect
 *   all_sockets  ([socket, ...])                to each admin, on connect (development)
 *   server_stats ({serverId, hostname, pid, uptime, clientsCount, pollingClientsCount,
 *                  aggregatedEvents, namespaces}) every 2 s
 *   socket_connected (socket, date), socket_updated ({id, nsp, transport}),
 *   socket_disconnected (nsp, id, reason, date), room_joined / room_left (nsp, room, id,
 *   date), event_received (nsp, id, args, date)      as they happen (development)
 * where a socket is {id, clientId, transport, nsp, data, handshake, rooms} and a date is
 * ISO 8601 text, as JSON.stringify writes a Date.
 */
#include "admin/admin.h"

#include <crypt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"
#include "util/names.h"
#include "util/rand.h"
#include "util/timer.h"

#define STATS_TICK_MS 1000   /* aggregatedEvents are per second ... */
#define STATS_EVERY 2        /* ... and sent every 2 ticks, as instrument() does */
#define MAX_LOGINS 8         /* password checks queued or running; beyond: "server busy" */
#define MAX_SESSIONS 1024    /* login sessions kept; the oldest goes first */
#define SESSION_MS (24 * 3600 * 1000ull) /* as admin-ui's RedisStore */
#define ALL_SOCKETS_MAX 10000 /* all_sockets lists at most this many */
#define SESSION_ID_LEN 16
#define MAX_EVENTS 64        /* aggregatedEvents entries between two server_stats */
#define INBOX_MAX 4096       /* engine.workers: what another loop's admin may queue here */

enum { LOGIN_OK, LOGIN_SESSION, LOGIN_REFUSED, LOGIN_BUSY, LOGIN__N };
static const char *const LOGIN_NAMES[] = {"ok", "session", "refused", "busy"};
enum { ACT_EMIT, ACT_JOIN, ACT_LEAVE, ACT_DISCONNECT, ACT_UNKNOWN, ACT__N };
static const char *const ACT_NAMES[] = {"emit", "join", "leave", "_disconnect", "unknown"};

/* A password check for the login thread. */
typedef struct login_job {
	struct login_job *next;
	char *password;
	bool ok;
	char sid[];              /* the pending socket, found again by id */
} login_job;

typedef struct session {
	char id[SESSION_ID_LEN + 1];
	uint64_t expires_ms;
} session;

/* What the admins of every loop share (engine.workers: the first loop's; gw_admin_link). */
typedef struct admin_shared {
	pthread_mutex_t mu;      /* guards the login sessions */
	session sessions[MAX_SESSIONS];
	size_t n_sessions;
	atomic_size_t admins;    /* admitted admin sockets on every loop */
} admin_shared;

/* engine.workers: from another loop's admin, in this one's inbox. */
typedef struct admin_msg {
	struct admin_msg *next;
	bool action;             /* an action to apply here too, else an event for the admins here */
	size_t len;
	char text[];
} admin_msg;

typedef struct agg_event {
	int64_t timestamp;       /* ms since the epoch, whole seconds */
	const char *type, *sub;  /* static strings */
	uint64_t count;
} agg_event;

struct gw_admin {
	const gw_config *cfg;
	net_loop *net;
	gw_timers *timers;
	sio_handler next;
	sio_server *sio;
	const eio_server *eio;
	const char *nsp;         /* cfg->admin_ui.nsp */
	bool verbose;            /* development mode */
	atomic_size_t n_admins;  /* admitted admin sockets of this loop (read by the others) */
	char hostname[256];
	const char *server_id;
	uint64_t started_ms;

	gw_timer tick;
	unsigned ticks;
	eio_stats last;          /* the counters at the previous tick (every loop's) */
	bool last_ok;            /* last holds them (several loops: surveyed only for admins) */
	agg_event events[MAX_EVENTS];
	size_t n_events;

	admin_shared own;        /* (used by every loop: the first loop's) */
	admin_shared *sh;

	/* engine.workers: every loop's admin (this one too), and their loops, by index.
	 * The first one's tick tells every admin the server_stats of the whole process. */
	gw_admin **peers;
	net_loop **nets;
	size_t n_peers;
	bool stopped;            /* no more posts to the others: they may be going */
	pthread_mutex_t in_mu;   /* guards the inbox */
	admin_msg *in_head, *in_tail;
	size_t in_n;
	atomic_bool in_has;
	atomic_uint_fast64_t in_dropped;
	bool in_turn;

	/* the login thread; mu guards jobs, done, n_jobs, stop */
	pthread_t thread;
	bool thread_on;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	login_job *jobs, *jobs_tail, *done;
	size_t n_jobs;
	bool stop;
	atomic_bool has_done;
	bool on_turn;

	uint64_t logins[LOGIN__N];
	uint64_t actions[ACT__N][2]; /* [action][refused] */
};

/* ---- JSON helpers ---- */

/* A Date as JSON.stringify writes it: "2026-12-04T11:32:01.123Z". */
static void iso_date(char *out, size_t n)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char day[32];
	strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, n, "%s.%03ldZ", day, ts.tv_nsec / 1000000);
}

static cJSON *add_date(cJSON *arr)
{
	char d[40];
	iso_date(d, sizeof d);
	if (arr && cJSON_AddItemToArray(arr, cJSON_CreateString(d)))
		return arr;
	cJSON_Delete(arr);
	return NULL;
}

/* engine.workers: text for another loop's admin (any thread): queued, its loop woken. */
static void post(gw_admin *to, bool action, const char *text, size_t len)
{
	admin_msg *m = malloc(sizeof *m + len + 1);
	pthread_mutex_lock(&to->in_mu);
	bool full = !m || to->in_n >= INBOX_MAX;
	if (!full) {
		m->next = NULL;
		m->action = action;
		m->len = len;
		memcpy(m->text, text, len);
		m->text[len] = 0;
		if (to->in_tail)
			to->in_tail->next = m;
		else
			to->in_head = m;
		to->in_tail = m;
		to->in_n++;
		atomic_store(&to->in_has, true);
	}
	pthread_mutex_unlock(&to->in_mu);
	if (full) {
		free(m);
		atomic_fetch_add(&to->in_dropped, 1);
		return;
	}
	net_wake(to->net);
}

/* Emit the array (event name first) to one socket, or to this loop's admin sockets but
 * `but` (an admin that is leaving: socket.io takes it out of its rooms before its
 * "disconnect"), and with all, to every other loop's admins too. Consumes arr. */
static void send_admins_but(gw_admin *a, cJSON *arr, sio_socket *only, const sio_socket *but, bool all)
{
	char *json = arr ? cJSON_PrintUnformatted(arr) : NULL;
	cJSON_Delete(arr);
	if (!json) {
		gw_warn("admin: out of memory building an event");
		return;
	}
	size_t len = strlen(json);
	const char *except[1] = {but ? sio_socket_id(but) : NULL};
	if (only)
		sio_socket_emit(only, json, len);
	else if (a->n_admins)
		sio_emit(a->sio, a->nsp, NULL, 0, except, but ? 1 : 0, json, len);
	for (size_t i = 0; all && !only && !a->stopped && i < a->n_peers; i++)
		if (a->peers[i] != a && atomic_load(&a->peers[i]->n_admins))
			post(a->peers[i], false, json, len);
	free(json);
}

/* To one admin, or to this loop's. */
static void send_admins(gw_admin *a, cJSON *arr, sio_socket *only)
{
	send_admins_but(a, arr, only, NULL, false);
}

/* To every admin of the process. */
static void tell_admins(gw_admin *a, cJSON *arr)
{
	send_admins_but(a, arr, NULL, NULL, true);
}

static cJSON *event(const char *name)
{
	cJSON *arr = cJSON_CreateArray();
	if (arr && !cJSON_AddItemToArray(arr, cJSON_CreateString(name))) {
		cJSON_Delete(arr);
		return NULL;
	}
	return arr;
}

static void add_room(const char *room, void *arg)
{
	cJSON_AddItemToArray(arg, cJSON_CreateString(room));
}

/* The socket as the UI shows it. */
static cJSON *serialize(const sio_socket *s)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	const eio_session *e = sio_socket_session(s);
	char client[13];
	snprintf(client, sizeof client, "%s", eio_session_sid(e));
	cJSON_AddStringToObject(o, "id", sio_socket_id(s));
	cJSON_AddStringToObject(o, "clientId", client);
	cJSON_AddStringToObject(o, "transport", eio_session_is_websocket(e) ? "websocket" : "polling");
	cJSON_AddStringToObject(o, "nsp", sio_socket_nsp(s));
	const char *data = sio_socket_data(s);
	cJSON *d = data ? cJSON_Parse(data) : NULL;
	cJSON_AddItemToObject(o, "data", d ? d : cJSON_CreateObject());
	/* socket.io's handshake without auth (the login's password, tokens) */
	char *hs = sio_socket_handshake(s);
	cJSON *h = hs ? cJSON_Parse(hs) : NULL;
	free(hs);
	if (h) {
		cJSON_DeleteItemFromObjectCaseSensitive(h, "auth");
		const cJSON *hd = cJSON_GetObjectItemCaseSensitive(h, "headers");
		const cJSON *fwd = cJSON_GetObjectItemCaseSensitive(hd, "cf-connecting-ip");
		if (!cJSON_IsString(fwd))
			fwd = cJSON_GetObjectItemCaseSensitive(hd, "x-forwarded-for");
		if (cJSON_IsString(fwd))
			cJSON_ReplaceItemInObjectCaseSensitive(h, "address", cJSON_CreateString(fwd->valuestring));
	}
	cJSON_AddItemToObject(o, "handshake", h ? h : cJSON_CreateObject());
	cJSON *rooms = cJSON_AddArrayToObject(o, "rooms");
	if (rooms)
		sio_socket_rooms(s, add_room, rooms);
	return o;
}

/* ---- what the UI is told ---- */

static bool is_admin(const sio_socket *s)
{
	const gw_nsp_config *nc = sio_socket_nsp_config(s);
	return nc && nc->admin;
}

static bool telling(const gw_admin *a)
{
	return a->verbose && a->sio && atomic_load(&a->sh->admins) > 0;
}

static void tell_connected(gw_admin *a, const sio_socket *s)
{
	cJSON *arr = event("socket_connected"), *o = serialize(s);
	if (arr && o && cJSON_AddItemToArray(arr, o)) {
		arr = add_date(arr);
	} else {
		cJSON_Delete(o);
		cJSON_Delete(arr);
		arr = NULL;
	}
	tell_admins(a, arr);
}

typedef struct ns_list {
	cJSON *arr;
	sio_server *sio;
	size_t n;            /* sockets listed so far (all_sockets) */
	bool sockets;        /* all_sockets, else server_stats' namespaces */
	gw_admin **peers;    /* engine.workers: every loop's (net_visit) */
	eio_stats st;        /* server_stats: every loop's counters summed */
} ns_list;

static void list_nsp(const char *name, size_t n_sockets, void *arg)
{
	ns_list *l = arg;
	if (!l->sockets) {
		cJSON *x;
		cJSON_ArrayForEach(x, l->arr) { /* several loops: one entry per name, summed */
			cJSON *nm = cJSON_GetObjectItemCaseSensitive(x, "name"), *n = cJSON_GetObjectItemCaseSensitive(x, "socketsCount");
			if (l->peers && cJSON_IsString(nm) && !strcmp(nm->valuestring, name) && cJSON_IsNumber(n)) {
				cJSON_SetNumberValue(n, n->valuedouble + (double)n_sockets);
				return;
			}
		}
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", name);
		cJSON_AddNumberToObject(o, "socketsCount", (double)n_sockets);
		cJSON_AddItemToArray(l->arr, o);
		return;
	}
	sio_socket **v;
	size_t n = n_sockets ? sio_select(l->sio, name, NULL, 0, NULL, 0, &v) : 0;
	for (size_t i = 0; i < n && l->n < ALL_SOCKETS_MAX; i++, l->n++)
		cJSON_AddItemToArray(l->arr, serialize(v[i]));
	if (n)
		free(v);
}

static void stats_add(eio_stats *sum, const eio_stats *x)
{
	sum->polling += x->polling;
	sum->websocket += x->websocket;
	sum->opened += x->opened;
	sum->packets_in += x->packets_in;
	sum->packets_out += x->packets_out;
	sum->bytes_in += x->bytes_in;
	sum->bytes_out += x->bytes_out;
	for (int r = 0; r < GW_CLOSE__COUNT; r++)
		sum->closes[r] += x->closes[r];
}

/* engine.workers: one loop's part, while that loop waits (net_visit). */
static void visit_loop(void *ctx, size_t i)
{
	ns_list *l = ctx;
	gw_admin *p = l->peers[i];
	if (p->eio)
		stats_add(&l->st, eio_server_stats(p->eio));
	l->sio = p->sio;
	if (l->sio && l->arr)
		sio_namespaces(l->sio, list_nsp, l);
}

/* The namespaces (all_sockets: their sockets; else server_stats': their counts) and the
 * Engine.IO counters of every loop into l. */
static void survey(gw_admin *a, ns_list *l)
{
	if (a->n_peers > 1) {
		l->peers = a->peers;
		net_visit(a->net, a->nets, a->n_peers, visit_loop, l);
		return;
	}
	l->st = *eio_server_stats(a->eio);
	if (l->arr)
		sio_namespaces(a->sio, list_nsp, l);
}

static void send_all_sockets(gw_admin *a, sio_socket *to)
{
	cJSON *arr = event("all_sockets");
	ns_list l = {.arr = cJSON_CreateArray(), .sio = a->sio, .sockets = true};
	if (arr && l.arr && cJSON_AddItemToArray(arr, l.arr)) {
		survey(a, &l);
	} else {
		cJSON_Delete(l.arr);
		cJSON_Delete(arr);
		arr = NULL;
	}
	if (l.n >= ALL_SOCKETS_MAX)
		gw_warn("admin: all_sockets lists the first %d sockets only (admin_ui.mode: production "
			"sends none)", ALL_SOCKETS_MAX);
	send_admins(a, arr, to);
}

static void send_config(gw_admin *a, sio_socket *to)
{
	static const char *const act[] = {"EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT"};
	cJSON *arr = event("config");
	cJSON *o = cJSON_CreateObject(), *f = o ? cJSON_AddArrayToObject(o, "supportedFeatures") : NULL;
	for (size_t i = 0; f && !a->cfg->admin_ui.read_only && i < sizeof act / sizeof act[0]; i++)
		cJSON_AddItemToArray(f, cJSON_CreateString(act[i]));
	if (f)
		cJSON_AddItemToArray(f, cJSON_CreateString("AGGREGATED_EVENTS"));
	if (f && a->verbose)
		cJSON_AddItemToArray(f, cJSON_CreateString("ALL_EVENTS"));
	if (!arr || !cJSON_AddItemToArray(arr, o)) {
		cJSON_Delete(o);
		cJSON_Delete(arr);
		arr = NULL;
	}
	send_admins(a, arr, to);
}

/* ---- server_stats ---- */

static void push_event(gw_admin *a, int64_t ts, const char *type, const char *sub, uint64_t count)
{
	if (!count)
		return;
	for (size_t i = 0; i < a->n_events; i++) {
		agg_event *e = &a->events[i];
		if (e->timestamp == ts && e->type == type && e->sub == sub) {
			e->count += count;
			return;
		}
	}
	if (a->n_events < MAX_EVENTS)
		a->events[a->n_events++] = (agg_event){ts, type, sub, count};
}

/* One second's counts, from the Engine.IO counters of every loop (surveyed into l,
 * with the namespaces when l->arr is set). Nothing is surveyed across loops while no
 * admin is connected: the first second after one comes is then not counted. */
static void aggregate(gw_admin *a, ns_list *l)
{
	bool any = atomic_load(&a->sh->admins) > 0;
	if (a->n_peers > 1 && !any) {
		a->last_ok = false;
		return;
	}
	survey(a, l);
	const eio_stats *now = &l->st, *was = &a->last;
	int64_t ts = (gw_wall_ms() - STATS_TICK_MS / 2) / 1000 * 1000; /* the second that ended */
	if (any && a->last_ok) {
		push_event(a, ts, "rawConnection", NULL, now->opened - was->opened);
		for (int r = 0; r < GW_CLOSE__COUNT; r++)
			push_event(a, ts, "rawDisconnection", gw_close_reason_str((gw_close_reason)r),
				   now->closes[r] - was->closes[r]);
		push_event(a, ts, "packetsIn", NULL, now->packets_in - was->packets_in);
		push_event(a, ts, "packetsOut", NULL, now->packets_out - was->packets_out);
		push_event(a, ts, "bytesIn", NULL, now->bytes_in - was->bytes_in);
		push_event(a, ts, "bytesOut", NULL, now->bytes_out - was->bytes_out);
	}
	a->last = *now;
	a->last_ok = true;
}

/* server_stats, to every admin: o is filled from the survey l. */
static void send_stats(gw_admin *a, cJSON *arr, cJSON *o, const ns_list *l)
{
	cJSON_AddStringToObject(o, "serverId", a->server_id);
	cJSON_AddStringToObject(o, "hostname", a->hostname);
	cJSON_AddNumberToObject(o, "pid", (double)getpid());
	cJSON_AddNumberToObject(o, "uptime", (double)(gw_now_ms() - a->started_ms) / 1000.0);
	cJSON_AddNumberToObject(o, "clientsCount", (double)(l->st.polling + l->st.websocket));
	cJSON_AddNumberToObject(o, "pollingClientsCount", (double)l->st.polling);
	cJSON *ev = cJSON_AddArrayToObject(o, "aggregatedEvents");
	for (size_t i = 0; ev && i < a->n_events; i++) {
		cJSON *e = cJSON_CreateObject();
		cJSON_AddNumberToObject(e, "timestamp", (double)a->events[i].timestamp);
		cJSON_AddStringToObject(e, "type", a->events[i].type);
		if (a->events[i].sub)
			cJSON_AddStringToObject(e, "subType", a->events[i].sub);
		cJSON_AddNumberToObject(e, "count", (double)a->events[i].count);
		cJSON_AddItemToArray(ev, e);
	}
	a->n_events = 0;
	/* (the namespaces array is in o already, filled by the survey) */
	tell_admins(a, arr);
}

/* The first loop's tick speaks for the process (engine.workers): the others' do not run. */
static void on_tick(gw_timer *t)
{
	gw_admin *a = t->ctx;
	if (a->n_peers > 1 && a->peers[0] != a)
		return;
	bool send = ++a->ticks % STATS_EVERY == 0 && atomic_load(&a->sh->admins) > 0;
	cJSON *arr = send ? event("server_stats") : NULL, *o = send ? cJSON_CreateObject() : NULL;
	if (send && (!arr || !o || !cJSON_AddItemToArray(arr, o))) {
		cJSON_Delete(o);
		cJSON_Delete(arr);
		send = false;
	}
	ns_list l = {.arr = send ? cJSON_AddArrayToObject(o, "namespaces") : NULL};
	aggregate(a, &l);
	if (send)
		send_stats(a, arr, o, &l);
	gw_timer_start(a->timers, &a->tick, STATS_TICK_MS, on_tick);
}

/* ---- login ---- */

/* (the sessions are the process's: a UI may come back on any loop) */
static bool session_valid(gw_admin *a, const char *id)
{
	admin_shared *sh = a->sh;
	uint64_t now = gw_now_ms();
	bool ok = false;
	pthread_mutex_lock(&sh->mu);
	for (size_t i = 0; !ok && i < sh->n_sessions; i++)
		ok = sh->sessions[i].expires_ms > now && !strcmp(sh->sessions[i].id, id);
	pthread_mutex_unlock(&sh->mu);
	return ok;
}

static void session_new(gw_admin *a, char *out)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t b[SESSION_ID_LEN / 2];
	gw_rand_bytes(b, sizeof b);
	for (size_t i = 0; i < sizeof b; i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[SESSION_ID_LEN] = 0;
	admin_shared *sh = a->sh;
	pthread_mutex_lock(&sh->mu);
	if (sh->n_sessions == MAX_SESSIONS) { /* the oldest goes */
		memmove(sh->sessions, sh->sessions + 1, (MAX_SESSIONS - 1) * sizeof *sh->sessions);
		sh->n_sessions--;
	}
	session *s = &sh->sessions[sh->n_sessions++];
	memcpy(s->id, out, SESSION_ID_LEN + 1);
	s->expires_ms = gw_now_ms() + SESSION_MS;
	pthread_mutex_unlock(&sh->mu);
}

static const char REFUSED[] = "{\"message\":\"invalid credentials\"}";

/* Constant time in the length of want. */
static bool same(const char *got, const char *want)
{
	size_t n = strlen(want), m = strlen(got);
	volatile unsigned char d = (unsigned char)(n != m);
	for (size_t i = 0; i < n; i++)
		d |= (unsigned char)(want[i] ^ (i < m ? got[i] : 0));
	return d == 0;
}

static void *login_thread(void *arg)
{
	gw_admin *a = arg;
	struct crypt_data *cd = calloc(1, sizeof *cd);
	pthread_mutex_lock(&a->mu);
	for (;;) {
		while (!a->stop && !a->jobs)
			pthread_cond_wait(&a->cv, &a->mu);
		if (a->stop)
			break;
		login_job *j = a->jobs;
		a->jobs = j->next;
		if (!a->jobs)
			a->jobs_tail = NULL;
		pthread_mutex_unlock(&a->mu);
		/* crypt_rn: libxcrypt's, NULL on failure (and not crypt_r, whose sanitizer
		 * interceptor does not find libxcrypt's) */
		const char *h = cd ? crypt_rn(j->password, a->cfg->admin_ui.password_hash, cd, (int)sizeof *cd) : NULL;
		j->ok = h && h[0] == '$' && same(h, a->cfg->admin_ui.password_hash);
		explicit_bzero(j->password, strlen(j->password));
		pthread_mutex_lock(&a->mu);
		j->next = a->done;
		a->done = j;
		atomic_store(&a->has_done, true);
		pthread_mutex_unlock(&a->mu);
		net_wake(a->net);
		pthread_mutex_lock(&a->mu);
	}
	pthread_mutex_unlock(&a->mu);
	free(cd);
	return NULL;
}

static void admitted(gw_admin *a, sio_socket *s, const char *session_id)
{
	if (sio_socket_admit(s, NULL) < 0)
		return;
	if (session_id) {
		char json[64];
		int n = snprintf(json, sizeof json, "[\"session\",\"%s\"]", session_id);
		sio_socket_emit(s, json, (size_t)n);
	}
}

/* Answers of the login thread, on the service thread (a turn hook). */
static void logins_done(void *ctx)
{
	gw_admin *a = ctx;
	if (!atomic_load(&a->has_done))
		return;
	pthread_mutex_lock(&a->mu);
	login_job *j = a->done;
	a->done = NULL;
	atomic_store(&a->has_done, false);
	pthread_mutex_unlock(&a->mu);
	while (j) {
		login_job *next = j->next;
		pthread_mutex_lock(&a->mu);
		a->n_jobs--;
		pthread_mutex_unlock(&a->mu);
		sio_socket *s = a->sio ? sio_socket_find(a->sio, j->sid, strlen(j->sid)) : NULL;
		if (s && sio_socket_pending(s)) { /* else it left, or timed out, meanwhile */
			a->logins[j->ok ? LOGIN_OK : LOGIN_REFUSED]++;
			if (j->ok) {
				char id[SESSION_ID_LEN + 1];
				session_new(a, id);
				gw_info("admin: %s logged in (socket %s)", a->cfg->admin_ui.username, j->sid);
				admitted(a, s, id);
			} else {
				gw_info("admin: login refused: wrong password (socket %s)", j->sid);
				sio_socket_reject(s, REFUSED);
			}
		}
		free(j->password);
		free(j);
		j = next;
	}
}

/* A pending admin socket: a session id it holds, or a password check. */
static void login(gw_admin *a, sio_socket *s)
{
	const cJSON *auth = sio_socket_auth(s);
	const cJSON *sess = cJSON_GetObjectItemCaseSensitive(auth, "sessionId");
	if (cJSON_IsString(sess) && session_valid(a, sess->valuestring)) {
		a->logins[LOGIN_SESSION]++;
		admitted(a, s, NULL);
		return;
	}
	const cJSON *user = cJSON_GetObjectItemCaseSensitive(auth, "username");
	const cJSON *pass = cJSON_GetObjectItemCaseSensitive(auth, "password");
	if (!cJSON_IsString(user) || !cJSON_IsString(pass) || !same(user->valuestring, a->cfg->admin_ui.username)) {
		a->logins[LOGIN_REFUSED]++;
		gw_info("admin: login refused: %s (socket %s)",
			cJSON_IsString(user) ? "unknown username" : "no credentials", sio_socket_id(s));
		sio_socket_reject(s, REFUSED);
		return;
	}
	const char *sid = sio_socket_id(s);
	login_job *j = calloc(1, sizeof *j + strlen(sid) + 1);
	char *pw = j ? strdup(pass->valuestring) : NULL;
	pthread_mutex_lock(&a->mu);
	bool busy = !pw || a->n_jobs >= MAX_LOGINS;
	if (!busy) {
		memcpy(j->sid, sid, strlen(sid) + 1);
		j->password = pw;
		if (a->jobs_tail)
			a->jobs_tail->next = j;
		else
			a->jobs = j;
		a->jobs_tail = j;
		a->n_jobs++;
		pthread_cond_signal(&a->cv);
	}
	pthread_mutex_unlock(&a->mu);
	if (busy) {
		free(pw);
		free(j);
		a->logins[LOGIN_BUSY]++;
		sio_socket_reject(s, "{\"message\":\"server busy, try again\"}");
	}
}

/* ---- the UI's actions ---- */

static const char *arg_str(const cJSON *args, int i)
{
	const cJSON *v = cJSON_GetArrayItem(args, i);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* An action as the UI sends it. */
typedef struct act_req {
	int act;
	const char *name, *nsp, *filter, *room, *ev;
	bool refused;
} act_req;

static act_req act_parse(const gw_admin *a, const cJSON *args, unsigned n_att)
{
	act_req r = {.name = arg_str(args, 0)};
	const char *name = r.name;
	r.act = !name ? ACT_UNKNOWN : !strcmp(name, "emit") ? ACT_EMIT : !strcmp(name, "join") ? ACT_JOIN
		: !strcmp(name, "leave") ? ACT_LEAVE : !strcmp(name, "_disconnect") ? ACT_DISCONNECT : ACT_UNKNOWN;
	r.nsp = arg_str(args, 1);
	/* binary arguments are not taken: the UI sends none, and an emit would pass the
	 * placeholders on as plain objects */
	r.refused = r.act == ACT_UNKNOWN || a->cfg->admin_ui.read_only || !r.nsp || n_att;
	if (!r.refused && r.act == ACT_EMIT) { /* (nsp, filter, ev, ...args) */
		r.filter = arg_str(args, 2);
		r.ev = arg_str(args, 3);
		r.refused = !r.ev || gw_event_reserved(r.ev);
	} else if (!r.refused && r.act != ACT_DISCONNECT) { /* (nsp, room, filter) */
		r.room = arg_str(args, 2);
		r.filter = arg_str(args, 3);
		r.refused = !r.room;
	} else if (!r.refused) { /* (nsp, close, filter) */
		r.filter = arg_str(args, 3);
	}
	return r;
}

/* To this loop's sockets. */
static void act_apply(gw_admin *a, const act_req *r, const cJSON *args)
{
	const char *rooms[1] = {r->filter};
	if (r->act == ACT_EMIT) {
		cJSON *out = cJSON_CreateArray();
		for (int i = 3; out && i < cJSON_GetArraySize(args); i++)
			cJSON_AddItemToArray(out, cJSON_Duplicate(cJSON_GetArrayItem(args, i), true));
		char *json = out ? cJSON_PrintUnformatted(out) : NULL;
		cJSON_Delete(out);
		if (json)
			sio_emit(a->sio, r->nsp, rooms, r->filter ? 1 : 0, NULL, 0, json, strlen(json));
		free(json);
		return;
	}
	/* by id: a disconnect with close may remove other selected sockets */
	char **ids;
	size_t n = sio_select_ids(a->sio, r->nsp, rooms, r->filter ? 1 : 0, NULL, 0, &ids);
	bool close = cJSON_IsTrue(cJSON_GetArrayItem(args, 2));
	for (size_t i = 0; i < n; i++) {
		sio_socket *s = sio_socket_find(a->sio, ids[i], strlen(ids[i]));
		if (!s)
			continue;
		if (r->act == ACT_JOIN)
			sio_socket_join(s, r->room);
		else if (r->act == ACT_LEAVE)
			sio_socket_leave(s, r->room);
		else
			sio_socket_disconnect(s, close);
	}
	free(ids);
}

/* An admin's action: counted and logged here, applied to this loop's sockets and
 * (engine.workers) handed to the other loops for theirs. */
static void action(gw_admin *a, sio_socket *from, const cJSON *args, unsigned n_att)
{
	act_req r = act_parse(a, args, n_att);
	a->actions[r.act][r.refused]++;
	if (r.refused) {
		gw_info("admin: %s %s refused (socket %s)%s", r.name ? r.name : "(no name)", r.nsp ? r.nsp : "",
			sio_socket_id(from), a->cfg->admin_ui.read_only ? ": read_only" : "");
		return;
	}
	gw_info("admin: %s on %s%s%s%s%s (socket %s)", r.name, r.nsp, r.room ? " room " : "", r.room ? r.room : "",
		r.filter ? " in " : "", r.filter ? r.filter : "", sio_socket_id(from));
	char *text = a->n_peers > 1 && !a->stopped ? cJSON_PrintUnformatted(args) : NULL;
	for (size_t i = 0; text && i < a->n_peers; i++)
		if (a->peers[i] != a)
			post(a->peers[i], true, text, strlen(text));
	free(text);
	act_apply(a, &r, args);
}

/* engine.workers: what the other loops' admins posted here (a turn hook). */
static void inbox_drain(void *ctx)
{
	gw_admin *a = ctx;
	if (!atomic_load(&a->in_has))
		return;
	pthread_mutex_lock(&a->in_mu);
	admin_msg *m = a->in_head;
	a->in_head = a->in_tail = NULL;
	a->in_n = 0;
	atomic_store(&a->in_has, false);
	pthread_mutex_unlock(&a->in_mu);
	while (m) {
		admin_msg *next = m->next;
		if (!m->action) {
			if (a->n_admins && a->sio)
				sio_emit(a->sio, a->nsp, NULL, 0, NULL, 0, m->text, m->len);
		} else if (a->sio) {
			cJSON *args = cJSON_ParseWithLength(m->text, m->len);
			act_req r = act_parse(a, args, 0);
			if (!r.refused)
				act_apply(a, &r, args);
			cJSON_Delete(args);
		}
		free(m);
		m = next;
	}
}

/* ---- the handler ---- */

static void on_connect(void *ctx, sio_socket *s)
{
	gw_admin *a = ctx;
	if (!is_admin(s)) {
		if (a->next.on_connect)
			a->next.on_connect(a->next.ctx, s);
		return;
	}
	if (sio_socket_pending(s))
		login(a, s); /* auth: none admitted it already (on_admit) */
}

static void on_admit(void *ctx, sio_socket *s)
{
	gw_admin *a = ctx;
	bool admin = is_admin(s);
	if (admin) {
		a->n_admins++;
		atomic_fetch_add(&a->sh->admins, 1);
	}
	if (telling(a))
		tell_connected(a, s);
	if (admin) {
		send_config(a, s);
		if (a->verbose)
			send_all_sockets(a, s);
	}
	if (!admin && a->next.on_admit)
		a->next.on_admit(a->next.ctx, s);
}

static void on_event(void *ctx, sio_socket *s, const cJSON *args, const char *text, size_t text_len,
		     const uint8_t *const *att, const size_t *att_len, unsigned n_att, int64_t ack_id)
{
	gw_admin *a = ctx;
	if (is_admin(s)) {
		action(a, s, args, n_att);
		return;
	}
	if (telling(a)) {
		cJSON *arr = event("event_received");
		cJSON_AddItemToArray(arr, cJSON_CreateString(sio_socket_nsp(s)));
		cJSON_AddItemToArray(arr, cJSON_CreateString(sio_socket_id(s)));
		cJSON_AddItemToArray(arr, cJSON_Duplicate(args, true));
		tell_admins(a, add_date(arr));
	}
	if (a->next.on_event)
		a->next.on_event(a->next.ctx, s, args, text, text_len, att, att_len, n_att, ack_id);
}

static void on_disconnect(void *ctx, sio_socket *s, const char *reason)
{
	gw_admin *a = ctx;
	bool admin = is_admin(s);
	if (telling(a)) {
		cJSON *arr = event("socket_disconnected");
		cJSON_AddItemToArray(arr, cJSON_CreateString(sio_socket_nsp(s)));
		cJSON_AddItemToArray(arr, cJSON_CreateString(sio_socket_id(s)));
		cJSON_AddItemToArray(arr, cJSON_CreateString(reason));
		send_admins_but(a, add_date(arr), NULL, admin ? s : NULL, true);
	}
	if (admin) {
		a->n_admins--;
		atomic_fetch_sub(&a->sh->admins, 1);
	}
	else if (a->next.on_disconnect)
		a->next.on_disconnect(a->next.ctx, s, reason);
}

static void on_room(void *ctx, sio_socket *s, const char *room, int ev)
{
	gw_admin *a = ctx;
	if ((ev == SIO_ROOM_JOIN || ev == SIO_ROOM_LEAVE) && telling(a)) {
		cJSON *arr = event(ev == SIO_ROOM_JOIN ? "room_joined" : "room_left");
		cJSON_AddItemToArray(arr, cJSON_CreateString(sio_socket_nsp(s)));
		cJSON_AddItemToArray(arr, cJSON_CreateString(room));
		cJSON_AddItemToArray(arr, cJSON_CreateString(sio_socket_id(s)));
		tell_admins(a, add_date(arr));
	}
	if (!is_admin(s) && a->next.on_room)
		a->next.on_room(a->next.ctx, s, room, ev);
}

/* recovery snapshots: the admin namespace has none (recovery is off there) */
static void on_session(void *ctx, int kind, const sio_session_info *info)
{
	gw_admin *a = ctx;
	if (a->next.on_session)
		a->next.on_session(a->next.ctx, kind, info);
}

static void on_upgrade(void *ctx, sio_socket *s)
{
	gw_admin *a = ctx;
	if (telling(a)) {
		cJSON *arr = event("socket_updated"), *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "id", sio_socket_id(s));
		cJSON_AddStringToObject(o, "nsp", sio_socket_nsp(s));
		cJSON_AddStringToObject(o, "transport", "websocket");
		if (!cJSON_AddItemToArray(arr, o))
			cJSON_Delete(o);
		tell_admins(a, arr);
	}
	if (!is_admin(s) && a->next.on_upgrade)
		a->next.on_upgrade(a->next.ctx, s);
}

/* ---- lifecycle ---- */

gw_admin *gw_admin_create(const gw_config *cfg, net_loop *net, const sio_handler *next)
{
	gw_admin *a = calloc(1, sizeof *a);
	if (!a)
		return NULL;
	a->cfg = cfg;
	a->net = net;
	a->timers = net_timers(net);
	a->next = *next;
	a->nsp = cfg->admin_ui.nsp;
	a->verbose = cfg->admin_ui.mode == GW_ADMIN_DEVELOPMENT;
	a->server_id = cfg->admin_ui.server_id ? cfg->admin_ui.server_id : cfg->node_id;
	if (gethostname(a->hostname, sizeof a->hostname - 1))
		snprintf(a->hostname, sizeof a->hostname, "%s", cfg->node_id);
	a->started_ms = gw_now_ms();
	a->tick.ctx = a;
	a->sh = &a->own;
	pthread_mutex_init(&a->own.mu, NULL);
	pthread_mutex_init(&a->in_mu, NULL);
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	return a;
}

int gw_admin_link(gw_admin *const *all, net_loop *const *nets, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		gw_admin *a = all[i];
		if (!(a->peers = malloc(n * sizeof *a->peers)) || !(a->nets = malloc(n * sizeof *a->nets)))
			return -GW_ENOMEM;
		memcpy(a->peers, all, n * sizeof *a->peers);
		memcpy(a->nets, nets, n * sizeof *a->nets);
		a->n_peers = n;
		a->sh = &all[0]->own;
		a->last_ok = false;
		if (net_on_turn(a->net, inbox_drain, a))
			return -GW_ENOMEM;
		a->in_turn = true;
	}
	return 0;
}

sio_handler gw_admin_sio_handler(gw_admin *a)
{
	return (sio_handler){.ctx = a, .on_connect = on_connect, .on_event = on_event,
			     .on_disconnect = on_disconnect, .on_room = on_room, .on_admit = on_admit,
			     .on_upgrade = on_upgrade, .on_session = on_session};
}

int gw_admin_start(gw_admin *a, sio_server *sio, const eio_server *eio)
{
	a->sio = sio;
	a->eio = eio;
	a->last = *eio_server_stats(eio);
	a->last_ok = true;
	gw_timer_start(a->timers, &a->tick, STATS_TICK_MS, on_tick);
	if (a->cfg->admin_ui.auth != GW_ADMIN_AUTH_BASIC)
		return 0;
	if (net_on_turn(a->net, logins_done, a))
		return -GW_ENOMEM;
	a->on_turn = true;
	if (pthread_create(&a->thread, NULL, login_thread, a))
		return -GW_ENOMEM;
	a->thread_on = true;
	return 0;
}

static void free_jobs(login_job *j)
{
	while (j) {
		login_job *n = j->next;
		free(j->password);
		free(j);
		j = n;
	}
}

void gw_admin_stop(gw_admin *a)
{
	if (!a)
		return;
	gw_timer_stop(a->timers, &a->tick);
	a->eio = NULL;
	a->stopped = true; /* (every loop's admin stops before any is destroyed) */
	if (a->in_turn)
		net_off_turn(a->net, inbox_drain, a);
	a->in_turn = false;
	if (a->thread_on) {
		pthread_mutex_lock(&a->mu);
		a->stop = true;
		pthread_cond_signal(&a->cv);
		pthread_mutex_unlock(&a->mu);
		pthread_join(a->thread, NULL);
		a->thread_on = false;
	}
	if (a->on_turn)
		net_off_turn(a->net, logins_done, a);
	a->on_turn = false;
}

void gw_admin_destroy(gw_admin *a)
{
	if (!a)
		return;
	gw_admin_stop(a);
	free_jobs(a->jobs);
	free_jobs(a->done);
	for (admin_msg *m = a->in_head, *next; m; m = next) {
		next = m->next;
		free(m);
	}
	free(a->peers);
	free(a->nets);
	pthread_mutex_destroy(&a->in_mu);
	pthread_mutex_destroy(&a->own.mu);
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cv);
	free(a);
}

void gw_admin_metrics(void *ctx, gw_metric_sink *m)
{
	const gw_admin *a = ctx;
	char l[96];
	for (int i = 0; i < LOGIN__N; i++) {
		snprintf(l, sizeof l, "result=\"%s\"", LOGIN_NAMES[i]);
		m->sample(m, "sio_admin_logins_total", GW_METRIC_COUNTER,
			  "Admin UI logins: password ok, session id ok, refused, or refused while busy.", l,
			  (int64_t)a->logins[i]);
	}
	gw_metric_counter(m, "sio_admin_relay_dropped_total",
			  "engine.workers: admin UI events and actions of other loops dropped, this loop's inbox full.",
			  (int64_t)atomic_load(&a->in_dropped));
	for (int i = 0; i < ACT__N; i++) {
		for (int r = 0; r < 2; r++) {
			snprintf(l, sizeof l, "action=\"%s\",result=\"%s\"", ACT_NAMES[i], r ? "refused" : "done");
			m->sample(m, "sio_admin_actions_total", GW_METRIC_COUNTER,
				  "Admin UI actions (join, leave, _disconnect, emit) by result.", l,
				  (int64_t)a->actions[i][r]);
		}
	}
}
