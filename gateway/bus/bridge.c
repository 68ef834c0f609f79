/*
 * bridge.c — between socket.io and the bus plugin (DESIGN §1.2, §2.2).
 *
 * Outbound (service thread): connect / event / disconnect envelopes, published on the
 * in topic keyed by socket id so one socket's messages stay in order.
 *
 * Inbound: the plugin calls host_deliver() on its own threads. There the envelope is
 * parsed and, for a plain emit, encoded into final frames (env_parse); the result is
 * pushed onto a bounded queue and the loop is woken. The loop (gw_bus_drain) only
 * routes: broadcast frames, answer acks, feed raw subscribers (the HTTP API's SSE
 * streams) through their callbacks.
 */
#include "bus/bus.h"
#include "bus/rate.h"
#include "bus/envelope.h"
#include "bus/loader.h"
#include "bus/relay.h"
#include "net/net.h"
#include "sio/sio_codec.h"
#include "util/err.h"
#include "util/log.h"
#include "util/map.h"
#include "util/rand.h"
#include "util/sid.h"
#include "util/timer.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Subscription ids carry their kind in the top byte and the loop they deliver to
 * (engine.workers) in the next. */
enum { SUB_OUT = 1, SUB_REPLY = 2, SUB_RAW = 3, SUB_ROUTE = 4, SUB_SESSIONS = 5, SUB_NODE = 6 };
#define SUB_KIND(id) ((int)((id) >> 56))
#define SUB_LOOP(id) ((size_t)(((id) >> 48) & 0xff))
#define SUB_ID(kind, n) (((uint64_t)(kind) << 56) | (n))
#define SUB_ID_AT(bus, kind, n) (SUB_ID(kind, n) | ((uint64_t)(bus)->idx << 48))

/*
 * One reply per node to a request every loop answers (engine.workers): the `sockets`
 * of a fetch, the `ack_done` of an emit with ack. Each loop adds its part; the last
 * publishes the whole. Shared by the loops' copies of the request (refs).
 */
typedef struct bus_agg {
	atomic_int refs;
	pthread_mutex_t lock;
	size_t left;          /* loops still to answer */
	cJSON *sockets;       /* fetch: every loop's sockets */
	size_t acked, timed_out;
} bus_agg;

typedef struct route_sub {
	char id_key[24];  /* sub id as text */
	char *key;        /* "<nsp>\n<route#>\n<room>" */
	uint64_t sub_id;
	char *nsp, *event, *room, *topic;
	bool per_room;    /* a {room} topic's, subscribed by each loop while it has members */
} route_sub;

typedef struct bus_item {
	struct bus_item *next;
	uint64_t sub_id;
	env_in *env;   /* SUB_OUT / SUB_REPLY / SUB_NODE / SUB_ROUTE */
	bool stored;   /* ack: broker — the delivery report of a client's event */
	int status;
	int64_t ack_id;
	char *sid;     /* stored: the socket to ack */
	char *topic;   /* SUB_RAW */
	uint8_t *data;
	size_t len;
	char *pos;     /* the message's position on a bus that has them (ABI 1.2), or NULL */
	bool relay;    /* data: a relay message (bus/relay.h) from the node topic */
	bool fence;    /* this node's gw_bus_fence marker */
	bool sibling;  /* SUB_SESSIONS: a snapshot of another loop of this process */
	bool forwarded; /* a reply its socket's loop did not hold (recovered on another one) */
	bus_agg *agg;  /* env: the node's one answer, which every loop adds to (or NULL) */
} bus_item;

struct gw_bus {
	const gw_config *cfg;
	net_loop *net;        /* the loop that applies what plugin threads deliver */
	/* engine.workers: one bus per loop, all on the plugin of the first (the primary),
	 * which the plugin delivers to and which hands each message to its loops */
	gw_bus *primary;      /* loops[0]; itself there */
	gw_bus **loops;       /* primary only: every loop's bus, by index */
	size_t n_loops;
	unsigned idx;         /* this one's index */
	sio_server *sio;
	gw_plugin *plugin;
	const siogw_plugin *desc;
	void *self;
	bool started;
	bool shared;          /* recovery snapshots go to and come from topics.sessions */
	bool loops_share;     /* recovery with several loops: snapshots go to the other loops */
	bool stopped;
	siogw_host host;
	siogw_optval *opts;
	size_t n_opts;

	pthread_mutex_t lock; /* guards the queue below */
	bus_item *head, *tail;
	_Atomic size_t queued; /* also read without the lock: gw_bus_pending */
	size_t limit;

	_Atomic uint64_t next_sub;

	/* primary, engine.workers: what goes to every loop goes in one order (fan_lock);
	 * with recovery, a message that has no bus position gets one of this process
	 * ("l<fan_tag>.<seq>"), so that every loop logs it under the same offset */
	pthread_mutex_t fan_lock;
	uint64_t fan_seq;
	char fan_tag[9];
	/* primary, engine.workers with room_events: "<nsp>\n<room>" → the loops where the
	 * room has members (room_alive), so that create-room/delete-room mean this node */
	pthread_mutex_t rooms_lock;
	gw_map rooms_alive;

	/* Raw route subscriptions. routes_by_id is read by plugin threads (under
	 * route_lock); routes_by_key is the loop's index "<nsp>\n<route#>\n<room>". */
	pthread_mutex_t route_lock;
	gw_map routes_by_id;
	gw_map routes_by_key;
	/* Raw subscriptions (gw_bus_subscribe_fn): sub id text → raw_sub; loop only. */
	gw_map raw_subs;
	_Atomic uint64_t malformed_logged_at; /* ms, for rate-limited logging */
	struct {                              /* also bumped by plugin threads */
		_Atomic uint64_t in[GW_TOPIC__COUNT];  /* messages received */
		_Atomic uint64_t out[GW_TOPIC__COUNT]; /* messages published */
		_Atomic uint64_t publish_errors;
		_Atomic uint64_t malformed;
		_Atomic uint64_t inbound_dropped;      /* the loop's inbound queue was full */
		uint64_t events_rejected;              /* loop only */
		uint64_t *rate_limited;                /* [nsp index * 2 + on_exceed]; loop only */
	} stats;
	uint64_t unsupported_logged_at;
	void (*relay)(void *ctx, const char *data, size_t len); /* gw_bus_set_relay */
	void *relay_ctx;
	void (*fence_done)(void *ctx); /* gw_bus_fence, until its marker is back */
	void *fence_ctx;
	char fence_text[96];           /* the marker (its text names this run and fence) */
	size_t fence_len;
	uint64_t fences;
};

/* ---- host services (any thread) ---- */

static void host_log(void *ctx, int level, const char *plugin, const char *fmt, ...)
{
	(void)ctx;
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	gw_log(level, "plugin %s: %s", plugin ? plugin : "?", line);
}


/* Log at most once per 10 s per bridge; the counter carries the rest. */
static void log_malformed(gw_bus *bus, const char *topic, const char *why)
{
	uint64_t now = gw_now_ms(), last = atomic_load(&bus->malformed_logged_at);
	if (now - last < 10000 && last)
		return;
	if (!atomic_compare_exchange_strong(&bus->malformed_logged_at, &last, now))
		return;
	gw_warn("bus: dropped malformed envelope on %s: %s (%" PRIu64 " so far; logged at most every 10 s)",
		topic, why, (uint64_t)atomic_load(&bus->stats.malformed));
}

static void agg_unref(bus_agg *a)
{
	if (!a || atomic_fetch_sub(&a->refs, 1) > 1)
		return;
	cJSON_Delete(a->sockets);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

static void item_free(bus_item *it)
{
	agg_unref(it->agg);
	env_in_free(it->env);
	free(it->sid);
	free(it->topic);
	free(it->data);
	free(it->pos);
	free(it);
}

/* Queue an item for the service loop (any thread). Takes it; -SIOGW_EAGAIN when the
 * bounded queue is full (the item is dropped and counted). */
/* Queue it for bus's loop; over the limit it is refused (and freed) unless forced (a
 * fan-out that checked every loop's room first). */
static int push_at(gw_bus *bus, bus_item *it, bool force)
{
	pthread_mutex_lock(&bus->lock);
	if (bus->queued >= bus->limit && !force) {
		pthread_mutex_unlock(&bus->lock);
		atomic_fetch_add(&bus->stats.inbound_dropped, 1);
		item_free(it);
		return -SIOGW_EAGAIN;
	}
	if (bus->tail)
		bus->tail->next = it;
	else
		bus->head = it;
	bus->tail = it;
	bool was_empty = bus->queued++ == 0;
	pthread_mutex_unlock(&bus->lock);
	if (was_empty)
		net_wake(bus->net);
	return 0;
}

static int push(gw_bus *bus, bus_item *it) { return push_at(bus, it, false); }

/* ---- engine.workers: one message, every loop ---- */

static bus_agg *agg_new(size_t parts)
{
	bus_agg *a = calloc(1, sizeof *a);
	if (!a)
		return NULL;
	atomic_init(&a->refs, 1);
	pthread_mutex_init(&a->lock, NULL);
	a->left = parts;
	return a;
}

/* One loop's part: its sockets (taken; NULL for none) or its ack counts. True for the
 * last part: the caller publishes the whole and owns a->sockets then. */
static bool agg_add(bus_agg *a, cJSON *sockets, size_t acked, size_t timed_out)
{
	pthread_mutex_lock(&a->lock);
	if (sockets && !a->sockets) {
		a->sockets = sockets;
	} else if (sockets) {
		cJSON *x;
		while ((x = cJSON_DetachItemFromArray(sockets, 0)))
			cJSON_AddItemToArray(a->sockets, x);
		cJSON_Delete(sockets);
	}
	a->acked += acked;
	a->timed_out += timed_out;
	bool last = --a->left == 0;
	pthread_mutex_unlock(&a->lock);
	return last;
}

static void publish_sockets(gw_bus *bus, const env_in *e, cJSON *arr);
static void publish_ack_done(gw_bus *bus, const char *id, const char *reply_to, size_t acked, size_t timed_out);

/* A loop that will not see its copy (its queue is full) answers with nothing. */
static void agg_lost(gw_bus *bus, bus_agg *a, const env_in *e)
{
	if (!agg_add(a, NULL, 0, 0))
		return;
	if (e->type == ENV_FETCH) {
		publish_sockets(bus, e, a->sockets ? a->sockets : cJSON_CreateArray());
		a->sockets = NULL; /* taken */
	} else
		publish_ack_done(bus, e->id, e->reply_to, a->acked, a->timed_out);
}

/* A copy of it for another loop: the same envelope (a reference), its own data and
 * position; NULL when out of memory. */
static bus_item *item_copy(const bus_item *it)
{
	bus_item *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->sub_id = it->sub_id;
	c->sibling = it->sibling;
	c->forwarded = it->forwarded;
	if ((it->pos && !(c->pos = strdup(it->pos))) || (it->data && !(c->data = malloc(it->len + 1)))) {
		item_free(c);
		return NULL;
	}
	if (it->data) {
		memcpy(c->data, it->data, it->len + 1);
		c->len = it->len;
	}
	c->env = it->env ? env_in_ref(it->env) : NULL;
	return c;
}

/* The loops in mask get the item (it to the first, copies sharing its envelope to the
 * others), in the same order as every other item fanned out (so every loop logs the
 * same history for recovery, under the same offsets); a fetch or an emit with ack gets
 * one answer for the node (bus_agg). All or nothing: -SIOGW_EAGAIN (it is freed) when a
 * loop's queue is full, unless force. Any thread. */
static int fan_out_to(gw_bus *p, bus_item *it, const bool *mask, bool force)
{
	env_in *e = it->env;
	size_t n = 0;
	for (size_t k = 0; k < p->n_loops; k++)
		n += mask[k];
	bool answered = e && (e->type == ENV_FETCH || (e->type == ENV_EMIT && e->has_ack));
	bus_agg *a = answered ? agg_new(n) : NULL; /* this function's reference */
	if ((answered && !a) || !n) {
		item_free(it);
		return answered && !a ? -SIOGW_ENOMEM : 0;
	}
	it->next = NULL;
	pthread_mutex_lock(&p->fan_lock);
	/* all or nothing: a loop whose queue is full refuses the message for every loop,
	 * and the plugin delivers it again later (its flow control), as with one loop */
	for (size_t k = 0; k < p->n_loops && !force; k++)
		if (mask[k] && atomic_load(&p->loops[k]->queued) >= p->loops[k]->limit) {
			pthread_mutex_unlock(&p->fan_lock);
			atomic_fetch_add(&p->loops[k]->stats.inbound_dropped, 1);
			agg_unref(a);
			item_free(it);
			return -SIOGW_EAGAIN;
		}
	if (!it->pos && e && (SUB_KIND(it->sub_id) == SUB_OUT || SUB_KIND(it->sub_id) == SUB_ROUTE) &&
	    p->cfg->recovery.max_disconnection_ms) {
		char pos[40];
		snprintf(pos, sizeof pos, "l%s.%" PRIx64, p->fan_tag, ++p->fan_seq);
		it->pos = strdup(pos); /* (without it each loop logs under its own offsets) */
	}
	bus_item *v[GW_MAX_WORKERS] = {0};
	bool first = true;
	for (size_t k = 0; k < p->n_loops; k++) /* all copies before any is pushed (and freed) */
		if (mask[k]) {
			v[k] = first ? it : item_copy(it);
			first = false;
		}
	if (e)
		env_in_ref(e); /* for agg_lost below */
	size_t lost = 0;
	for (size_t k = 0; k < p->n_loops; k++) {
		if (!mask[k])
			continue;
		if (a && v[k]) {
			atomic_fetch_add(&a->refs, 1);
			v[k]->agg = a;
		}
		/* (forced: room was checked; only this lock's holder fans out, other pushes
		 * to a loop may pass its limit by a few meanwhile) */
		if ((!v[k] || push_at(p->loops[k], v[k], true)) && a)
			lost++;
	}
	pthread_mutex_unlock(&p->fan_lock);
	while (lost--) /* (it may publish: not under the lock, which a delivery takes) */
		agg_lost(p, a, e);
	agg_unref(a);
	env_in_free(e);
	return 0;
}

static int fan_out(gw_bus *p, bus_item *it)
{
	bool all[GW_MAX_WORKERS];
	for (size_t k = 0; k < p->n_loops; k++)
		all[k] = true;
	return fan_out_to(p, it, all, false);
}

/* Every loop but bus (a sibling snapshot, a reply its socket's loop did not hold):
 * from a loop's thread, which cannot wait, at the rate of its sockets' losses and room
 * changes; past the queues' limits rather than lost. */
static void to_siblings(gw_bus *bus, bus_item *it)
{
	gw_bus *p = bus->primary;
	bool others[GW_MAX_WORKERS];
	for (size_t k = 0; k < p->n_loops; k++)
		others[k] = p->loops[k] != bus;
	fan_out_to(p, it, others, true);
}

/* The loop whose socket a reply names (an ack's "<sid>:<n>", a connect_result's sid);
 * the primary when none does. */
static gw_bus *loop_of(gw_bus *p, const env_in *e)
{
	const char *id = e ? e->id : NULL;
	if (!id)
		return p;
	const char *colon = e->type == ENV_ACK ? strrchr(id, ':') : NULL;
	char tag[GW_TAG_LEN + 1];
	if (!gw_sid_tag(id, colon ? (size_t)(colon - id) : strlen(id), tag))
		return p;
	for (size_t k = 0; k < p->n_loops; k++)
		if (!strcmp(p->loops[k]->cfg->node_tag, tag))
			return p->loops[k];
	return p;
}

/* admin_ui's namespace is the gateway's own: backends do not reach its sockets. */
static bool targets_admin(const gw_config *cfg, const env_in *e)
{
	return cfg->admin_ui.enabled && e->target.nsp && !strcmp(e->target.nsp, cfg->admin_ui.nsp);
}

/* A message's position as recovery offsets name it: "<partition>.<offset>" in the out
 * topic, with "@<topic>" in a route topic (a route topic's positions are its own). */
static char *position(int kind, const char *topic, int32_t partition, int64_t offset)
{
	gw_buf b = {0};
	if (gw_buf_printf(&b, "k%" PRId32 ".%" PRId64, partition, offset) ||
	    (kind == SUB_ROUTE && gw_buf_printf(&b, "@%s", topic))) {
		gw_buf_free(&b);
		return NULL;
	}
	return (char *)gw_buf_steal(&b, NULL);
}

/* A NUL-terminated copy of the message into it (freed with it on failure). */
static int copy_data(bus_item *it, const void *data, size_t len)
{
	if (!(it->data = malloc(len + 1))) {
		item_free(it);
		return -SIOGW_ENOMEM;
	}
	memcpy(it->data, data, len);
	it->data[len] = 0;
	it->len = len;
	return 0;
}

static int fan_out(gw_bus *p, bus_item *it);
static gw_bus *loop_of(gw_bus *p, const env_in *e);
static void agg_lost(gw_bus *bus, bus_agg *a, const env_in *e);

static int deliver_item(gw_bus *primary, uint64_t sub_id, const char *topic, const void *data, size_t len,
			const int64_t *pos)
{
	int kind = SUB_KIND(sub_id);
	if (SUB_LOOP(sub_id) >= primary->n_loops)
		return 0; /* not ours */
	gw_bus *bus = primary->loops[SUB_LOOP(sub_id)];
	bus_item *it = calloc(1, sizeof *it);
	if (!it)
		return -SIOGW_ENOMEM;
	it->sub_id = sub_id;
	/* (without it the packet is still logged, under this node's own offset) */
	if (pos && bus->cfg->recovery.max_disconnection_ms && (kind == SUB_OUT || kind == SUB_ROUTE))
		it->pos = position(kind, topic, (int32_t)pos[0], pos[1]);
	bool relay_msg = kind == SUB_NODE && gw_relay_is_message(data, len);
	if (relay_msg && len < sizeof bus->fence_text && memmem(data, len, "\"op\":\"fence\"", 12)) {
		it->fence = true; /* compared with the one awaited on the service thread */
		if (copy_data(it, data, len))
			return -SIOGW_ENOMEM;
	} else if (relay_msg && bus->relay) {
		atomic_fetch_add(&bus->stats.in[GW_TOPIC_NODE], 1);
		it->relay = true;
		if (copy_data(it, data, len))
			return -SIOGW_ENOMEM;
	} else if (kind == SUB_OUT || kind == SUB_REPLY || kind == SUB_NODE) {
		atomic_fetch_add(&bus->stats.in[kind == SUB_OUT ? GW_TOPIC_OUT : kind == SUB_NODE ? GW_TOPIC_NODE : GW_TOPIC_REPLY], 1);
		char err[160];
		int rc = env_parse(data, len, bus->cfg->engine.max_payload, &it->env, err, sizeof err);
		if (rc == 0 && targets_admin(bus->cfg, it->env)) {
			snprintf(err, sizeof err, "targets %s, the admin UI's namespace, which is not on the bus",
				 bus->cfg->admin_ui.nsp);
			env_in_free(it->env);
			it->env = NULL;
			rc = -GW_EINVAL;
		}
		if (rc) {
			atomic_fetch_add(&bus->stats.malformed, 1);
			log_malformed(bus, topic, err);
			item_free(it);
			return 0; /* consumed: a bad envelope is not the bus's fault */
		}
	} else if (kind == SUB_ROUTE) {
		atomic_fetch_add(&bus->stats.in[GW_TOPIC_ROUTE], 1);
		char idk[24];
		snprintf(idk, sizeof idk, "%llx", (unsigned long long)sub_id);
		int rc = -GW_ENOENT;
		pthread_mutex_lock(&bus->route_lock);
		route_sub *r = gw_map_get(&bus->routes_by_id, idk, strlen(idk));
		if (r) /* encoded under the lock: the route may be removed right after */
			rc = env_from_route(r->nsp, r->event, r->room, data, len,
					    bus->cfg->engine.max_payload, &it->env);
		bool whole = r && !r->per_room;
		pthread_mutex_unlock(&bus->route_lock);
		if (!rc && whole && bus->n_loops > 1)
			return fan_out(bus, it); /* the first loop's subscription is every loop's */
		if (rc) {
			if (rc != -GW_ENOENT) {
				atomic_fetch_add(&bus->stats.malformed, 1);
				log_malformed(bus, topic, "route message could not be encoded");
			}
			item_free(it);
			return 0;
		}
	} else if (kind == SUB_SESSIONS) { /* parsed on the service thread: a low rate */
		atomic_fetch_add(&bus->stats.in[GW_TOPIC_SESSIONS], 1);
		if (copy_data(it, data, len))
			return -SIOGW_ENOMEM;
	} else if (kind == SUB_RAW) {
		atomic_fetch_add(&bus->stats.in[GW_TOPIC_API], 1);
		if (!(it->topic = strdup(topic))) {
			item_free(it);
			return -SIOGW_ENOMEM;
		}
		if (copy_data(it, data, len))
			return -SIOGW_ENOMEM;
	} else {
		item_free(it);
		return 0;
	}
	if (bus->n_loops > 1 && (kind == SUB_OUT || kind == SUB_SESSIONS))
		return fan_out(bus, it); /* every loop applies it: one parse, one encoding */
	if (bus->n_loops > 1 && kind == SUB_REPLY)
		bus = loop_of(bus, it->env); /* to the loop of the socket it names */
	return push(bus, it);
}

static int host_deliver(void *ctx, uint64_t sub_id, const char *topic, const void *key,
			size_t key_len, const void *data, size_t len)
{
	(void)key, (void)key_len;
	return deliver_item(ctx, sub_id, topic, data, len, NULL);
}

static int host_deliver_at(void *ctx, uint64_t sub_id, const char *topic, const void *key, size_t key_len,
			   const void *data, size_t len, int32_t partition, int64_t offset)
{
	(void)key, (void)key_len;
	int64_t pos[2] = {partition, offset};
	return deliver_item(ctx, sub_id, topic, data, len, pos);
}

/* ---- raw routes ---- */

static void route_free(route_sub *r)
{
	free(r->key);
	free(r->nsp);
	free(r->event);
	free(r->room);
	free(r->topic);
	free(r);
}

/* Subscribe one route topic; room NULL for the whole namespace; per_room: a {room}
 * topic's. Service thread. */
static int route_add(gw_bus *bus, const char *nsp, size_t idx, const gw_route *rt,
		     const char *topic, const char *room, bool per_room)
{
	route_sub *r = calloc(1, sizeof *r);
	if (!r)
		return -GW_ENOMEM;
	gw_buf k = {0};
	gw_buf_printf(&k, "%s\n%zu\n%s", nsp, idx, room ? room : "");
	r->key = (char *)gw_buf_steal(&k, NULL);
	r->nsp = strdup(nsp);
	r->event = strdup(rt->event);
	r->room = room ? strdup(room) : NULL;
	r->topic = strdup(topic);
	r->per_room = per_room;
	if (!r->key || !r->nsp || !r->event || (room && !r->room) || !r->topic) {
		route_free(r);
		return -GW_ENOMEM;
	}
	r->sub_id = SUB_ID_AT(bus, SUB_ROUTE, atomic_fetch_add(&bus->next_sub, 1) + 1);
	snprintf(r->id_key, sizeof r->id_key, "%llx", (unsigned long long)r->sub_id);
	pthread_mutex_lock(&bus->route_lock);
	int rc = gw_map_put(&bus->routes_by_id, r->id_key, strlen(r->id_key), r);
	pthread_mutex_unlock(&bus->route_lock);
	if (rc || gw_map_put(&bus->routes_by_key, r->key, strlen(r->key), r)) {
		pthread_mutex_lock(&bus->route_lock);
		gw_map_del(&bus->routes_by_id, r->id_key, strlen(r->id_key));
		pthread_mutex_unlock(&bus->route_lock);
		route_free(r);
		return -GW_ENOMEM;
	}
	if (bus->desc->subscribe(bus->self, r->sub_id, topic, SIOGW_SUB_EXACT)) {
		gw_warn("bus: cannot subscribe route topic %s", topic);
		return -GW_EPLUGIN;
	}
	gw_debug("bus: route %s -> %s event %s%s%s", topic, nsp, rt->event, room ? " room " : "",
		 room ? room : "");
	return 0;
}

static void route_remove(gw_bus *bus, route_sub *r)
{
	bus->desc->unsubscribe(bus->self, r->sub_id);
	gw_map_del(&bus->routes_by_key, r->key, strlen(r->key));
	pthread_mutex_lock(&bus->route_lock);
	gw_map_del(&bus->routes_by_id, r->id_key, strlen(r->id_key));
	pthread_mutex_unlock(&bus->route_lock);
	route_free(r);
}

static const char *room_placeholder(const char *topic)
{
	const char *p = strstr(topic, "{room}");
	return p && p[6] == 0 ? p : NULL;
}

/* Routes without {room} are subscribed for the gateway's lifetime, by the first loop
 * for all (engine.workers: deliver_item hands each message to every loop, in the order
 * of sio.out's, under one position: a client recovers from it on any loop). */
static int routes_start(gw_bus *bus)
{
	const gw_config *cfg = bus->cfg;
	if (bus->primary != bus)
		return 0;
	for (size_t i = 0; i < cfg->n_nsps; i++) {
		const gw_nsp_config *n = &cfg->nsps[i];
		for (size_t k = 0; k < n->n_routes; k++)
			if (!room_placeholder(n->routes[k].topic) &&
			    route_add(bus, n->name, k, &n->routes[k], n->routes[k].topic, n->routes[k].room, false))
				return -GW_EPLUGIN;
	}
	return 0;
}

/* A room route topic is subscribed while the room has a local member. (Routes are of
 * listed namespaces: a match entry has none.) */
static void routes_room(gw_bus *bus, const gw_nsp_config *n, const char *room, bool created)
{
	const char *nsp = n->name;
	for (size_t k = 0; nsp && k < n->n_routes; k++) {
		const char *ph = room_placeholder(n->routes[k].topic);
		if (!ph)
			continue;
		if (created) {
			gw_buf t = {0};
			gw_buf_append(&t, n->routes[k].topic, (size_t)(ph - n->routes[k].topic));
			gw_buf_puts(&t, room);
			if (t.data)
				route_add(bus, nsp, k, &n->routes[k], (char *)t.data, room, true);
			gw_buf_free(&t);
		} else {
			gw_buf key = {0};
			gw_buf_printf(&key, "%s\n%zu\n%s", nsp, k, room);
			route_sub *r = key.data ? gw_map_get(&bus->routes_by_key, (char *)key.data, key.len) : NULL;
			gw_buf_free(&key);
			if (r)
				route_remove(bus, r);
		}
	}
}

/* ---- lifecycle ---- */

gw_bus *gw_bus_create(const gw_config *cfg, net_loop *net, char *err, size_t err_len)
{
	gw_bus *bus = calloc(1, sizeof *bus);
	if (!bus) {
		snprintf(err, err_len, "out of memory");
		return NULL;
	}
	bus->cfg = cfg;
	bus->net = net;
	bus->primary = bus;
	bus->stats.rate_limited = calloc(cfg->n_nsps * 2 + 1, sizeof *bus->stats.rate_limited);
	bus->loops = calloc(GW_MAX_WORKERS, sizeof *bus->loops);
	if (!bus->stats.rate_limited || !bus->loops) {
		snprintf(err, err_len, "out of memory");
		free(bus->stats.rate_limited);
		free(bus->loops);
		free(bus);
		return NULL;
	}
	bus->loops[0] = bus;
	bus->n_loops = 1;
	bus->limit = cfg->adapter.inbound_queue;
	pthread_mutex_init(&bus->lock, NULL);
	pthread_mutex_init(&bus->route_lock, NULL);
	pthread_mutex_init(&bus->fan_lock, NULL);
	pthread_mutex_init(&bus->rooms_lock, NULL);
	uint32_t tag;
	gw_rand_bytes(&tag, sizeof tag);
	snprintf(bus->fan_tag, sizeof bus->fan_tag, "%08" PRIx32, tag);
	bus->host = (siogw_host){
		.size = sizeof(siogw_host),
		.abi_minor = SIOGW_ABI_MINOR,
		.ctx = bus,
		.log = host_log,
		.deliver = host_deliver,
		.deliver_at = host_deliver_at,
	};
	if (gw_plugin_open(cfg->adapter.plugin, cfg->adapter.plugin_dir, &bus->plugin, err, err_len))
		goto fail;
	bus->desc = gw_plugin_desc(bus->plugin);
	if (gw_config_plugin_options(cfg, bus->desc->options, bus->desc->n_options, &bus->opts,
				     &bus->n_opts, err, err_len))
		goto fail;
	char perr[256] = "";
	int rc = bus->desc->create(&bus->host, bus->opts, bus->n_opts, &bus->self, perr, sizeof perr);
	if (rc) {
		snprintf(err, err_len, "plugin %s: create failed: %s", bus->desc->name,
			 perr[0] ? perr : "unknown error");
		bus->self = NULL;
		goto fail;
	}
	return bus;
fail:
	gw_bus_destroy(bus);
	return NULL;
}

gw_bus *gw_bus_add_loop(gw_bus *primary, const gw_config *cfg, net_loop *net)
{
	if (primary->n_loops == GW_MAX_WORKERS || primary->started)
		return NULL;
	gw_bus *bus = calloc(1, sizeof *bus);
	if (!bus || !(bus->stats.rate_limited = calloc(cfg->n_nsps * 2 + 1, sizeof *bus->stats.rate_limited))) {
		free(bus);
		return NULL;
	}
	bus->cfg = cfg;
	bus->net = net;
	bus->primary = primary;
	bus->desc = primary->desc;
	bus->self = primary->self;
	bus->limit = primary->limit;
	bus->idx = (unsigned)primary->n_loops;
	pthread_mutex_init(&bus->lock, NULL);
	pthread_mutex_init(&bus->route_lock, NULL);
	pthread_mutex_init(&bus->fan_lock, NULL);
	primary->loops[primary->n_loops++] = bus;
	return bus;
}

/* A loop's own subscriptions: its node topic and its route topics. */
static int start_loop(gw_bus *bus, char *err, size_t err_len)
{
	const gw_config *cfg = bus->cfg;
	/* envelopes for this node's sockets only (util/sid.h: a socket id names its node) */
	if (cfg->topics.node[0] &&
	    bus->desc->subscribe(bus->self, SUB_ID_AT(bus, SUB_NODE, 1), cfg->topics.node, SIOGW_SUB_EXACT)) {
		snprintf(err, err_len, "plugin %s: cannot subscribe %s", bus->desc->name, cfg->topics.node);
		return -GW_EPLUGIN;
	}
	if (routes_start(bus)) {
		snprintf(err, err_len, "plugin %s: cannot subscribe the route topics", bus->desc->name);
		return -GW_EPLUGIN;
	}
	return 0;
}

int gw_bus_start(gw_bus *bus, char *err, size_t err_len)
{
	const gw_config *cfg = bus->cfg;
	char perr[256] = "";
	if (bus->primary != bus)
		return 0; /* the primary starts every loop's */
	if (bus->desc->start(bus->self, perr, sizeof perr)) {
		snprintf(err, err_len, "plugin %s: start failed: %s", bus->desc->name, perr);
		return -GW_EPLUGIN;
	}
	bus->started = true;
	if (bus->desc->subscribe(bus->self, SUB_ID(SUB_OUT, 1), cfg->topics.out, SIOGW_SUB_EXACT) ||
	    bus->desc->subscribe(bus->self, SUB_ID(SUB_REPLY, 1), cfg->topics.reply, SIOGW_SUB_EXACT)) {
		snprintf(err, err_len, "plugin %s: cannot subscribe %s / %s", bus->desc->name,
			 cfg->topics.out, cfg->topics.reply);
		return -GW_EPLUGIN;
	}
	for (size_t k = 0; k < bus->n_loops; k++)
		if (start_loop(bus->loops[k], err, err_len))
			return -GW_EPLUGIN;
	/* recovery between nodes: every node's snapshots; the memory bus has no other node */
	bool shared = cfg->recovery.max_disconnection_ms > 0 && strcmp(bus->desc->name, "memory") != 0;
	if (shared && bus->desc->subscribe(bus->self, SUB_ID(SUB_SESSIONS, 1), cfg->topics.sessions, SIOGW_SUB_EXACT)) {
		snprintf(err, err_len, "plugin %s: cannot subscribe %s", bus->desc->name, cfg->topics.sessions);
		return -GW_EPLUGIN;
	}
	/* and between the loops of this process, as between nodes (their own logs, the
	 * same offsets: fan_out_to) */
	bool loops_share = cfg->recovery.max_disconnection_ms > 0 && bus->n_loops > 1;
	for (size_t k = 0; k < bus->n_loops; k++) {
		gw_bus *b = bus->loops[k];
		b->started = true;
		b->shared = shared;
		b->loops_share = loops_share;
		if (b->sio)
			sio_recovery_set_shared(b->sio, loops_share, shared);
	}
	gw_info("bus: plugin %s %s (%s); consuming %s, %s%s%s%s, publishing to %s", bus->desc->name,
		bus->desc->version, gw_plugin_path(bus->plugin), cfg->topics.out, cfg->topics.reply,
		cfg->topics.node[0] ? " and " : "", cfg->topics.node,
		bus->n_loops > 1 ? " (and one node topic per loop)" : "", cfg->topics.in);
	return 0;
}

void gw_bus_stop(gw_bus *bus)
{
	if (bus && bus->primary == bus && bus->self && !bus->stopped) {
		bus->desc->stop(bus->self);
		bus->stopped = true;
		bus->started = false;
	}
}

void gw_bus_destroy(gw_bus *bus)
{
	if (!bus)
		return;
	/* a loop's bus goes first (the plugin stopped): the primary holds the plugin */
	if (bus->primary == bus && bus->self) {
		gw_bus_stop(bus);
		bus->desc->destroy(bus->self);
	}
	for (bus_item *it = bus->head, *next; it; it = next) {
		next = it->next;
		item_free(it);
	}
	size_t n;
	void **all = gw_map_values(&bus->routes_by_key, &n);
	for (size_t i = 0; i < n; i++)
		route_free(all[i]);
	free(all);
	size_t n_raw;
	void **raw = gw_map_values(&bus->raw_subs, &n_raw);
	for (size_t i = 0; raw && i < n_raw; i++)
		free(raw[i]);
	free(raw);
	gw_map_free(&bus->raw_subs);
	void **alive = gw_map_values(&bus->rooms_alive, &n);
	for (size_t i = 0; alive && i < n; i++)
		free(alive[i]);
	free(alive);
	gw_map_free(&bus->rooms_alive);
	if (bus->primary == bus)
		pthread_mutex_destroy(&bus->rooms_lock);
	gw_map_free(&bus->routes_by_key);
	gw_map_free(&bus->routes_by_id);
	pthread_mutex_destroy(&bus->route_lock);
	pthread_mutex_destroy(&bus->fan_lock);
	gw_config_optvals_free(bus->opts, bus->n_opts);
	if (bus->plugin)
		gw_plugin_close(bus->plugin);
	pthread_mutex_destroy(&bus->lock);
	free(bus->stats.rate_limited);
	free(bus->loops);
	free(bus);
}

const char *gw_bus_plugin_name(const gw_bus *bus) { return bus->desc->name; }

int gw_bus_health(gw_bus *bus, char *buf, size_t len)
{
	bus = bus->primary;
	if (!bus->started) {
		snprintf(buf, len, "bus not started");
		return -GW_EIO;
	}
	if (bus->desc->health)
		return gw_err_from_siogw(bus->desc->health(bus->self, buf, len));
	return 0;
}

static const char *const TOPIC_NAMES[GW_TOPIC__COUNT] = {"in", "out", "reply", "route", "api", "sessions", "node"};

/* "# HELP name text" / "# TYPE name kind" lines of a plugin's stats text. */
typedef struct stat_note {
	char name[96];
	char help[160];
	int type; /* -1 unsaid, else gw_metric_type */
} stat_note;

static stat_note *note_for(stat_note *v, size_t *n, size_t cap, const char *name, size_t len)
{
	for (size_t i = 0; i < *n; i++)
		if (strlen(v[i].name) == len && memcmp(v[i].name, name, len) == 0)
			return &v[i];
	if (*n == cap || len >= sizeof v[0].name)
		return NULL;
	stat_note *t = &v[(*n)++];
	*t = (stat_note){.type = -1};
	memcpy(t->name, name, len);
	return t;
}

/*
 * The plugin's stats text (Prometheus lines, plugin.h) as samples, so the metrics page
 * says HELP and TYPE for them as for the gateway's own: "name[{labels}] value" lines;
 * "# HELP name text" and "# TYPE name counter|gauge" name them, else a name ending in
 * _total is a counter, anything else a gauge, and the help says which plugin it is.
 * Lines that are neither are skipped.
 */
static void plugin_samples(gw_bus *bus, char *text, gw_metric_sink *m)
{
	stat_note notes[64];
	size_t n_notes = 0;
	char *end = text + strlen(text); /* the lines are cut into strings below */
	for (char *l = text; l && *l;) {
		char *nl = strchr(l, '\n');
		if (nl)
			*nl = 0;
		bool help = strncmp(l, "# HELP ", 7) == 0, type = strncmp(l, "# TYPE ", 7) == 0;
		if (help || type) {
			char *name = l + 7, *sp = strchr(name, ' ');
			stat_note *t = sp ? note_for(notes, &n_notes, 64, name, (size_t)(sp - name)) : NULL;
			if (t && help)
				snprintf(t->help, sizeof t->help, "%s", sp + 1);
			else if (t)
				t->type = strcmp(sp + 1, "counter") == 0 ? GW_METRIC_COUNTER : GW_METRIC_GAUGE;
			*l = 0; /* read: not a sample */
		}
		l = nl ? nl + 1 : NULL;
	}
	for (char *l = text; l < end; l += strlen(l) + 1) {
		if (!*l || *l == '#')
			continue;
		char *sp = strrchr(l, ' '), *brace = strchr(l, '{');
		if (!sp)
			continue;
		char *e;
		long long v = strtoll(sp + 1, &e, 10);
		if (e == sp + 1 || *e)
			continue; /* not an integer sample */
		size_t name_len = (size_t)((brace && brace < sp ? brace : sp) - l);
		char labels[160] = "";
		if (brace && brace < sp) {
			char *close = strchr(brace, '}');
			if (!close || close > sp)
				continue;
			snprintf(labels, sizeof labels, "%.*s", (int)(close - brace - 1), brace + 1);
		}
		stat_note *t = note_for(notes, &n_notes, 64, l, name_len);
		if (!t)
			continue;
		if (!t->help[0])
			snprintf(t->help, sizeof t->help, "Bus plugin %s (see its documentation).", bus->desc->name);
		int type = t->type >= 0 ? t->type
			   : name_len > 6 && memcmp(l + name_len - 6, "_total", 6) == 0 ? GW_METRIC_COUNTER
											: GW_METRIC_GAUGE;
		m->sample(m, t->name, (gw_metric_type)type, t->help, labels[0] ? labels : NULL, (int64_t)v);
	}
}

void gw_bus_metrics(void *ctx, gw_metric_sink *m)
{
	gw_bus *bus = ctx;
	char l[32];
	for (int i = 0; i < GW_TOPIC__COUNT; i++) {
		snprintf(l, sizeof l, "kind=\"%s\"", TOPIC_NAMES[i]);
		m->sample(m, "sio_bus_messages_in_total", GW_METRIC_COUNTER, "Bus messages received by topic kind.", l,
			  (int64_t)atomic_load(&bus->stats.in[i]));
	}
	for (int i = 0; i < GW_TOPIC__COUNT; i++) {
		snprintf(l, sizeof l, "kind=\"%s\"", TOPIC_NAMES[i]);
		m->sample(m, "sio_bus_messages_out_total", GW_METRIC_COUNTER, "Bus messages published by topic kind.", l,
			  (int64_t)atomic_load(&bus->stats.out[i]));
	}
	gw_metric_counter(m, "sio_bus_publish_errors_total", "Publishes the bus plugin refused.",
			  atomic_load(&bus->stats.publish_errors));
	gw_metric_counter(m, "sio_malformed_envelopes_total", "Bus envelopes dropped as malformed.",
			  atomic_load(&bus->stats.malformed));
	gw_metric_counter(m, "sio_inbound_dropped_total", "Bus messages dropped: service loop queue full.",
			  atomic_load(&bus->stats.inbound_dropped));
	gw_metric_counter(m, "sio_events_rejected_total", "Client events not in the namespace allowlist.",
			  bus->stats.events_rejected);
	for (size_t i = 0; i < bus->cfg->n_nsps; i++) {
		const gw_nsp_config *nc = &bus->cfg->nsps[i];
		if (!gw_limits_on(&nc->limits))
			continue;
		for (int p = 0; p < 2; p++) {
			char lb[600];
			snprintf(lb, sizeof lb, "nsp=\"%s\",policy=\"%s\"", nc->label, p ? "disconnect" : "drop");
			m->sample(m, "sio_events_rate_limited_total", GW_METRIC_COUNTER,
				  "Client events over their namespace's limits, by namespace and policy.", lb,
				  (int64_t)bus->stats.rate_limited[i * 2 + p]);
		}
	}
	if (!bus->desc || !bus->desc->stats || bus->primary != bus)
		return; /* (the plugin's once) */
	char buf[8192];
	size_t n = bus->desc->stats(bus->self, buf, sizeof buf);
	buf[n < sizeof buf ? n : sizeof buf - 1] = 0;
	plugin_samples(bus, buf, m);
}

/* ---- publishing ---- */

/* A relay message for another loop of this process (its node topic): into its queue, not
 * through the plugin (nor counted as bus messages). 1 when it was one, else 0. */
static int relay_local(gw_bus *bus, const char *topic, const void *data, size_t len)
{
	gw_bus *p = bus->primary;
	for (size_t k = 0; p->n_loops > 1 && k < p->n_loops; k++) {
		gw_bus *to = p->loops[k];
		if (to == bus || strcmp(to->cfg->topics.node, topic))
			continue;
		bus_item *it = calloc(1, sizeof *it);
		if (!it || copy_data(it, data, len))
			return -SIOGW_ENOMEM; /* (copy_data freed it) */
		it->sub_id = SUB_ID_AT(to, SUB_NODE, 1);
		it->relay = true; /* (not bus traffic: the relay's own counters count it) */
		return push(to, it) ? -SIOGW_EAGAIN : 1;
	}
	return 0;
}

int gw_bus_publish(gw_bus *bus, gw_topic_kind kind, const char *topic, const char *key,
		   const void *data, size_t len)
{
	int local = kind == GW_TOPIC_NODE ? relay_local(bus, topic, data, len) : 0;
	if (local) {
		if (local < 0) {
			atomic_fetch_add(&bus->stats.publish_errors, 1);
			return gw_err_from_siogw(local);
		}
		return 0;
	}
	int rc = bus->desc->publish(bus->self, topic, key, key ? strlen(key) : 0, data, len, NULL, NULL);
	if (rc) {
		atomic_fetch_add(&bus->stats.publish_errors, 1);
		rc = gw_err_from_siogw(rc);
		gw_debug("bus: publish to %s failed: %s", topic, gw_strerror(rc));
		return rc;
	}
	atomic_fetch_add(&bus->stats.out[kind], 1);
	return 0;
}

/* ---- routed publishing (node topics) ---- */

/* The node tags of an envelope whose every room is a socket id, into tags (distinct, in
 * first-seen order; at most max): their number, or 0 when it is not such an envelope. */
static size_t socket_tags(const cJSON *rooms, char (*tags)[GW_TAG_LEN + 1], size_t max)
{
	size_t n = 0;
	if (!cJSON_IsArray(rooms) || !cJSON_GetArraySize(rooms))
		return 0;
	const cJSON *r;
	cJSON_ArrayForEach(r, rooms) {
		char t[GW_TAG_LEN + 1];
		if (!cJSON_IsString(r) || !gw_sid_tag(r->valuestring, strlen(r->valuestring), t))
			return 0;
		size_t k = 0;
		while (k < n && strcmp(tags[k], t))
			k++;
		if (k == n) {
			if (n == max)
				return 0; /* more nodes than we split for: every node reads it */
			memcpy(tags[n++], t, sizeof t);
		}
	}
	return n;
}

static int publish_to(gw_bus *bus, const char *topic, const char *key, const void *data, size_t len,
		      gw_buf *to, bool *first)
{
	int rc = gw_bus_publish(bus, GW_TOPIC_API, topic, key ? key : topic, data, len);
	gw_buf_puts(to, *first ? "" : ",");
	gw_buf_put_json_string(to, topic, strlen(topic));
	*first = false;
	return rc;
}

#define ROUTE_MAX_NODES 64

int gw_bus_publish_routed(gw_bus *bus, const char *key, const void *data, size_t len, gw_buf *to)
{
	const gw_config *cfg = bus->cfg;
	bool first = true;
	cJSON *o = cfg->topics.node[0] ? cJSON_ParseWithLength(data, len) : NULL;
	const cJSON *nsp = cJSON_GetObjectItemCaseSensitive(o, "nsp");
	const gw_nsp_config *nc = gw_config_nsp(cfg, cJSON_IsString(nsp) ? nsp->valuestring : "/",
						cJSON_IsString(nsp) ? strlen(nsp->valuestring) : 1);
	bool replayed = (bus->shared || bus->loops_share) && nc && nc->recovery && cfg->recovery.max_disconnection_ms;
	char tags[ROUTE_MAX_NODES][GW_TAG_LEN + 1];
	cJSON *rooms = cJSON_GetObjectItemCaseSensitive(o, "rooms");
	size_t n = cJSON_IsObject(o) && !replayed ? socket_tags(rooms, tags, ROUTE_MAX_NODES) : 0;
	int rc = 0;
	char topic[512];
	if (n == 1 && gw_config_node_topic(cfg, tags[0], topic, sizeof topic)) {
		rc = publish_to(bus, topic, key, data, len, to, &first); /* as it came: no re-encoding */
	} else if (n > 1) {
		cJSON *all = cJSON_DetachItemFromObjectCaseSensitive(o, "rooms");
		for (size_t k = 0; k < n; k++) {
			cJSON *mine = cJSON_CreateArray();
			const cJSON *r;
			cJSON_ArrayForEach(r, all) {
				char t[GW_TAG_LEN + 1];
				if (gw_sid_tag(r->valuestring, strlen(r->valuestring), t) && !strcmp(t, tags[k]))
					cJSON_AddItemToArray(mine, cJSON_CreateString(r->valuestring));
			}
			cJSON_DeleteItemFromObjectCaseSensitive(o, "rooms");
			char *json = mine && cJSON_AddItemToObject(o, "rooms", mine) ? cJSON_PrintUnformatted(o) : NULL;
			int r1 = json && gw_config_node_topic(cfg, tags[k], topic, sizeof topic)
					 ? publish_to(bus, topic, key, json, strlen(json), to, &first)
					 : -GW_ENOMEM;
			if (!json)
				atomic_fetch_add(&bus->stats.publish_errors, 1);
			if (r1 && !rc)
				rc = r1;
			free(json);
		}
		cJSON_Delete(all);
	} else {
		rc = publish_to(bus, cfg->topics.out, key, data, len, to, &first);
	}
	cJSON_Delete(o);
	return rc;
}

/* Publish a client envelope of socket s (takes json) to its namespace's inbound topic
 * (event: the event's name, for event_topics; NULL otherwise), keyed by the socket id. */
static void publish_in(gw_bus *bus, sio_socket *s, const char *event, char *json)
{
	if (!json) {
		atomic_fetch_add(&bus->stats.publish_errors, 1);
		return;
	}
	const gw_nsp_config *nc = sio_socket_nsp_config(s);
	gw_bus_publish(bus, GW_TOPIC_IN, gw_config_in_topic(bus->cfg, nc, event), sio_socket_id(s), json,
		       strlen(json));
	free(json);
}

typedef struct raw_sub {
	gw_bus_sink fn;
	void *ctx;
	char key[24]; /* the id as text, the map key */
} raw_sub;

static void raw_key(uint64_t id, char key[24])
{
	snprintf(key, 24, "%" PRIx64, id);
}

uint64_t gw_bus_subscribe_fn(gw_bus *bus, const char *topic, bool prefix, gw_bus_sink fn, void *ctx)
{
	uint64_t id = SUB_ID_AT(bus, SUB_RAW, atomic_fetch_add(&bus->next_sub, 1) + 1);
	raw_sub *r = calloc(1, sizeof *r);
	if (!r)
		return 0;
	r->fn = fn;
	r->ctx = ctx;
	raw_key(id, r->key);
	if (gw_map_put(&bus->raw_subs, r->key, strlen(r->key), r)) {
		free(r);
		return 0;
	}
	if (bus->desc->subscribe(bus->self, id, topic, prefix ? SIOGW_SUB_PREFIX : SIOGW_SUB_EXACT)) {
		gw_map_del(&bus->raw_subs, r->key, strlen(r->key));
		free(r);
		return 0;
	}
	return id;
}

void gw_bus_unsubscribe(gw_bus *bus, uint64_t sub_id)
{
	bus->desc->unsubscribe(bus->self, sub_id);
	char key[24];
	raw_key(sub_id, key);
	raw_sub *r = gw_map_get(&bus->raw_subs, key, strlen(key));
	if (r) {
		gw_map_del(&bus->raw_subs, key, strlen(key));
		free(r); /* what is still queued for it finds no sink: dropped */
	}
}

/* ---- socket.io → bus ---- */

static void on_connect(void *ctx, sio_socket *s)
{
	gw_bus *bus = ctx;
	char *hs = sio_socket_handshake(s);
	/* auth: backend — the socket id is the request id: connect_result names it */
	bool pending = sio_socket_pending(s);
	publish_in(bus, s, NULL,
		   env_build_connect(sio_socket_nsp(s), sio_socket_id(s), bus->cfg->node_id, hs,
				     sio_socket_claims(s), pending ? sio_socket_id(s) : NULL,
				     pending ? bus->cfg->topics.reply : NULL, sio_socket_recovered(s),
				     sio_socket_recovered(s) && !sio_socket_claims(s) ? sio_socket_data(s) : NULL));
	free(hs);
}

/* ack: broker. The delivery report comes on a plugin thread: it only queues. */
typedef struct stored_arg {
	gw_bus *bus;
	int64_t ack_id;
	size_t sid_len;
	char sid[];
} stored_arg;

static void stored_dr(void *arg, int status)
{
	stored_arg *a = arg;
	bus_item *it = calloc(1, sizeof *it);
	if (it && (it->sid = strdup(a->sid))) {
		it->stored = true;
		it->status = status;
		it->ack_id = a->ack_id;
		push(a->bus, it); /* full queue: never acked, the client's ack times out */
	} else {
		free(it); /* never acked either */
	}
	free(a);
}

static void publish_stored(gw_bus *bus, sio_socket *s, const char *event, int64_t ack_id, const char *json)
{
	const char *sid = sio_socket_id(s);
	size_t sid_len = strlen(sid);
	stored_arg *a = json ? calloc(1, sizeof *a + sid_len + 1) : NULL;
	if (!a) {
		atomic_fetch_add(&bus->stats.publish_errors, 1);
		return;
	}
	a->bus = bus;
	a->ack_id = ack_id;
	a->sid_len = sid_len;
	memcpy(a->sid, sid, sid_len + 1);
	const char *topic = gw_config_in_topic(bus->cfg, sio_socket_nsp_config(s), event);
	if (bus->desc->publish(bus->self, topic, a->sid, a->sid_len, json, strlen(json), stored_dr, a)) {
		/* refused at once: never acked */
		atomic_fetch_add(&bus->stats.publish_errors, 1);
		free(a);
		return;
	}
	atomic_fetch_add(&bus->stats.out[GW_TOPIC_IN], 1);
}

static bool event_allowed(const gw_nsp_config *nc, const char *event)
{
	for (size_t i = 0; i < nc->n_events; i++)
		if (strcmp(nc->events[i], "*") == 0 || strcmp(nc->events[i], event) == 0)
			return true;
	return false;
}

/* namespaces[].limits: whether this event of s passes its buckets. One over the limit is
 * counted, and dropped, or its socket disconnected from the namespace (DISCONNECT, then
 * the socket goes; its connection and other namespaces stay). */
static bool rate_ok(gw_bus *bus, sio_socket *s, const gw_nsp_config *nc, const char *event, size_t text_len,
		    const size_t *att_len, unsigned n_att)
{
	size_t bytes = text_len;
	for (unsigned i = 0; i < n_att; i++)
		bytes += att_len[i];
	gw_rate *r = sio_socket_user(s);
	bool ok = gw_rate_allow(&r, &nc->limits, event, bytes, gw_now_us());
	sio_socket_set_user(s, r);
	if (ok)
		return true;
	size_t i = (size_t)(nc - bus->cfg->nsps);
	bus->stats.rate_limited[i * 2 + (nc->limits.on_exceed == GW_LIMIT_DISCONNECT)]++;
	gw_debug("bus: %s %s: event \"%s\" over the namespace's limits: %s", sio_socket_nsp(s), sio_socket_id(s), event,
		 nc->limits.on_exceed == GW_LIMIT_DISCONNECT ? "disconnected" : "dropped");
	if (nc->limits.on_exceed == GW_LIMIT_DISCONNECT)
		sio_socket_disconnect(s, false);
	return false;
}

static void on_event(void *ctx, sio_socket *s, const cJSON *args, const char *text, size_t text_len,
		     const uint8_t *const *att, const size_t *att_len, unsigned n_att, int64_t ack_id)
{
	gw_bus *bus = ctx;
	const gw_config *cfg = bus->cfg;
	const cJSON *name = cJSON_GetArrayItem(args, 0);
	const gw_nsp_config *nc = sio_socket_nsp_config(s);
	if (!cJSON_IsString(name) || !nc || !event_allowed(nc, name->valuestring)) {
		bus->stats.events_rejected++;
		return;
	}
	if (gw_limits_on(&nc->limits) && !rate_ok(bus, s, nc, name->valuestring, text ? text_len : 0, att_len, n_att))
		return;
	if (ack_id != SIO_NO_ID && nc->ack == GW_ACK_BROKER) {
		/* the bus answers: the client's ack follows the delivery report */
		char *json = env_build_event(sio_socket_nsp(s), sio_socket_id(s), cfg->node_id, args, text,
					     text_len, att, att_len, n_att, NULL, NULL);
		publish_stored(bus, s, name->valuestring, ack_id, json);
		free(json);
		return;
	}
	char ack[64];
	if (ack_id != SIO_NO_ID)
		snprintf(ack, sizeof ack, "%s:%" PRId64, sio_socket_id(s), ack_id);
	publish_in(bus, s, name->valuestring,
		   env_build_event(sio_socket_nsp(s), sio_socket_id(s), cfg->node_id, args, text, text_len,
				   att, att_len, n_att, ack_id != SIO_NO_ID ? ack : NULL, cfg->topics.reply));
}

typedef struct room_list {
	const char **rooms;
	size_t n, cap;
} room_list;

static void collect_room(const char *room, void *arg)
{
	room_list *l = arg;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		const char **v = realloc(l->rooms, cap * sizeof *v);
		if (!v)
			return;
		l->rooms = v;
		l->cap = cap;
	}
	l->rooms[l->n++] = room;
}

static void on_disconnect(void *ctx, sio_socket *s, const char *reason)
{
	gw_bus *bus = ctx;
	if (sio_socket_moved(s)) { /* it lives on, on another node, under the same sid */
		gw_rate_free(sio_socket_user(s));
		sio_socket_set_user(s, NULL);
		return;
	}
	room_list rl = {0};
	sio_socket_rooms(s, collect_room, &rl);
	publish_in(bus, s, NULL,
		   env_build_disconnect(sio_socket_nsp(s), sio_socket_id(s), bus->cfg->node_id,
					reason, rl.rooms, rl.n, sio_socket_recoverable(s)));
	free(rl.rooms);
	gw_rate_free(sio_socket_user(s));
	sio_socket_set_user(s, NULL);
}

typedef struct room_loops {
	size_t loops; /* loops where the room has members */
	size_t key_len;
	char key[];   /* "<nsp>\n<room>" */
} room_loops;

/* A loop's room was created (or deleted): whether the node's room was, i.e. no other
 * loop has (or had) members. Under rooms_lock. Out of memory, it says yes: an event
 * too many rather than one lost. */
static bool room_alive(gw_bus *p, const char *nsp, const char *room, bool created)
{
	gw_buf k = {0};
	gw_buf_printf(&k, "%s\n%s", nsp, room);
	if (!k.data)
		return true;
	room_loops *r = gw_map_get(&p->rooms_alive, (char *)k.data, k.len);
	bool node = false;
	if (created && r) {
		r->loops++;
	} else if (created) {
		node = true;
		r = malloc(sizeof *r + k.len + 1);
		if (r) {
			r->loops = 1;
			r->key_len = k.len;
			memcpy(r->key, k.data, k.len + 1);
			if (gw_map_put(&p->rooms_alive, r->key, r->key_len, r))
				free(r);
		}
	} else if (!r || --r->loops == 0) {
		node = true;
		if (r)
			free(gw_map_del(&p->rooms_alive, r->key, r->key_len));
	}
	gw_buf_free(&k);
	return node;
}

static void on_room(void *ctx, sio_socket *s, const char *room, int event)
{
	gw_bus *bus = ctx;
	const char *nsp = sio_socket_nsp(s);
	const gw_nsp_config *nc = sio_socket_nsp_config(s);
	if (event == SIO_ROOM_CREATE || event == SIO_ROOM_DELETE)
		routes_room(bus, nc, room, event == SIO_ROOM_CREATE);
	if (!nc || !nc->room_events)
		return;
	static const char *const names[] = {"", "create-room", "join-room", "leave-room", "delete-room"};
	bool per_socket = event == SIO_ROOM_JOIN || event == SIO_ROOM_LEAVE;
	gw_bus *p = bus->primary;
	bool node_wide = !per_socket && p->n_loops > 1;
	if (node_wide) {
		pthread_mutex_lock(&p->rooms_lock);
		if (!room_alive(p, nsp, room, event == SIO_ROOM_CREATE)) {
			pthread_mutex_unlock(&p->rooms_lock);
			return; /* another loop holds members: the node's room lives on (or already did) */
		}
	}
	/* under rooms_lock: a delete-room and the next create-room of a room go out in order */
	publish_in(bus, s, NULL,
		   env_build_room(names[event], nsp, per_socket ? sio_socket_id(s) : NULL,
				  bus->cfg->node_id, room));
	if (node_wide)
		pthread_mutex_unlock(&p->rooms_lock);
}

void gw_bus_set_sio(gw_bus *bus, sio_server *sio) { bus->sio = sio; }

int gw_bus_fence(gw_bus *bus, void (*done)(void *ctx), void *ctx)
{
	if (!bus->cfg->topics.node[0])
		return -GW_ENOTSUP;
	char id[GW_ID_LEN + 1];
	gw_rand_id(id);
	int n = snprintf(bus->fence_text, sizeof bus->fence_text, "{\"type\":\"relay\",\"op\":\"fence\",\"rid\":\"%s.%s.%" PRIu64 "\"}",
			 bus->cfg->node_tag, id, ++bus->fences);
	bus->fence_len = (size_t)n;
	bus->fence_done = done;
	bus->fence_ctx = ctx;
	int rc = gw_bus_publish(bus, GW_TOPIC_NODE, bus->cfg->topics.node, bus->cfg->topics.node, bus->fence_text,
				bus->fence_len);
	if (rc)
		bus->fence_done = NULL;
	return rc;
}

void gw_bus_set_relay(gw_bus *bus, void (*fn)(void *ctx, const char *data, size_t len), void *ctx)
{
	bus->relay = fn;
	bus->relay_ctx = ctx;
}

static const char *const SESSION_TYPES[] = {[SIO_SESSION_LIVE] = "session", [SIO_SESSION_LOST] = "lost",
					     [SIO_SESSION_GONE] = "gone"};

/* Recovery between nodes: a socket's snapshot to the sessions topic, keyed by its pid
 * (a compacted topic keeps the last). */
static void on_session(void *ctx, int kind, const sio_session_info *i)
{
	gw_bus *bus = ctx;
	if (!bus->shared && !bus->loops_share)
		return;
	cJSON *o = cJSON_CreateObject(), *rooms = cJSON_CreateArray();
	bool ok = o && rooms && cJSON_AddStringToObject(o, "type", SESSION_TYPES[kind]) &&
		  cJSON_AddStringToObject(o, "pid", i->pid) && cJSON_AddStringToObject(o, "sid", i->sid) &&
		  cJSON_AddStringToObject(o, "nsp", i->nsp) && cJSON_AddStringToObject(o, "node", bus->cfg->node_id) &&
		  cJSON_AddNumberToObject(o, "gen", i->gen) &&
		  cJSON_AddNumberToObject(o, "at", (double)gw_wall_ms());
	for (size_t k = 0; ok && k < i->n_rooms; k++)
		ok = cJSON_AddItemToArray(rooms, cJSON_CreateString(i->rooms[k]));
	if (ok) {
		ok = cJSON_AddItemToObject(o, "rooms", rooms);
		rooms = NULL;
	}
	if (ok && i->data)
		ok = cJSON_AddRawToObject(o, "data", i->data) != NULL;
	char *json = ok ? cJSON_PrintUnformatted(o) : NULL;
	cJSON_Delete(o);
	cJSON_Delete(rooms);
	if (json && bus->shared)
		gw_bus_publish(bus, GW_TOPIC_SESSIONS, bus->cfg->topics.sessions, i->pid, json, strlen(json));
	bus_item *it = json && bus->loops_share ? calloc(1, sizeof *it) : NULL;
	if (it) { /* (not bus traffic: the other loops of the process, queue to queue) */
		it->sub_id = SUB_ID(SUB_SESSIONS, 1);
		it->sibling = true;
		it->data = (uint8_t *)json;
		it->len = strlen(json);
		json = NULL;
		to_siblings(bus, it);
	} else if (!json || bus->loops_share) {
		atomic_fetch_add(&bus->stats.publish_errors, 1);
	}
	free(json);
}

/* Another node's snapshot, or (sibling) another loop's. Malformed ones are counted and
 * dropped. */
static void apply_session(gw_bus *bus, const char *data, size_t len, bool sibling)
{
	cJSON *o = cJSON_ParseWithLength(data, len);
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "type");
	const cJSON *node = cJSON_GetObjectItemCaseSensitive(o, "node");
	const cJSON *rooms = cJSON_GetObjectItemCaseSensitive(o, "rooms");
	const cJSON *at = cJSON_GetObjectItemCaseSensitive(o, "at");
	const cJSON *gen = cJSON_GetObjectItemCaseSensitive(o, "gen");
	const cJSON *data_ = cJSON_GetObjectItemCaseSensitive(o, "data");
	const char *pid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "pid"));
	const char *sid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "sid"));
	const char *nsp = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "nsp"));
	int kind = 0;
	for (int k = SIO_SESSION_LIVE; k <= SIO_SESSION_GONE && cJSON_IsString(type); k++)
		if (!strcmp(type->valuestring, SESSION_TYPES[k]))
			kind = k;
	size_t n = cJSON_GetArraySize(rooms);
	const char **v = n ? calloc(n, sizeof *v) : NULL;
	bool ok = kind && cJSON_IsString(node) && pid && sid && nsp && cJSON_IsNumber(at) && cJSON_IsNumber(gen) &&
		  gen->valuedouble >= 0 && gen->valuedouble <= UINT32_MAX && cJSON_IsArray(rooms) && (!n || v);
	for (size_t k = 0; ok && k < n; k++)
		ok = (v[k] = cJSON_GetStringValue(cJSON_GetArrayItem(rooms, (int)k))) != NULL;
	char *dj = ok && data_ ? cJSON_PrintUnformatted(data_) : NULL;
	if (!ok) {
		atomic_fetch_add(&bus->stats.malformed, 1);
		log_malformed(bus, bus->cfg->topics.sessions, "not a session snapshot");
	} else if (sibling || strcmp(node->valuestring, bus->cfg->node_id) != 0) { /* (its own: known already) */
		sio_session_info i = {.pid = pid, .sid = sid, .nsp = nsp, .data = dj, .rooms = v, .n_rooms = n,
				      .gen = (uint32_t)gen->valuedouble,
				      /* one loop of the process counts each: its own loop, or the
				       * first for another node's */
				      .copy = sibling || bus->cfg->loop != 0};
		sio_recovery_remote(bus->sio, kind, &i, (int64_t)at->valuedouble);
	}
	free(dj);
	free(v);
	cJSON_Delete(o);
}

sio_handler gw_bus_sio_handler(gw_bus *bus)
{
	sio_handler h = {.ctx = bus, .on_connect = on_connect, .on_event = on_event,
			 .on_disconnect = on_disconnect, .on_room = on_room, .on_session = on_session};
	return h;
}

/* ---- bus → socket.io (service thread) ---- */

/* False when the socket is not on this loop. */
static bool apply_ack(gw_bus *bus, env_in *e)
{
	/* our ack ids are "<socket id>:<client ack id>" */
	const char *colon = strrchr(e->id, ':');
	if (!colon)
		goto bad;
	char *end;
	long long n = strtoll(colon + 1, &end, 10);
	if (*end || n < 0)
		goto bad;
	sio_socket *s = sio_socket_find(bus->sio, e->id, (size_t)(colon - e->id));
	if (!s)
		return false; /* the socket left (or lives on another loop now): nothing to answer */
	sio_socket_ack(s, n, e->body.json, e->body.json_len, e->body.att, e->body.n_att);
	return true;
bad:
	atomic_fetch_add(&bus->stats.malformed, 1);
	gw_debug("bus: ack with unknown id format %s", e->id);
	return true;
}

/* An emit-with-ack in flight: where its answers go. */
typedef struct ack_ctx {
	gw_bus *bus;
	char *id;
	char *reply_to;
	bus_agg *agg;  /* engine.workers: the node's one ack_done, or NULL */
} ack_ctx;

static void ack_one(void *arg, sio_socket *s, const cJSON *args, const char *text, size_t text_len,
		    const uint8_t *const *att, const size_t *att_len, unsigned n_att)
{
	ack_ctx *a = arg;
	char *json = env_build_client_ack(a->id, sio_socket_id(s), args, text, text_len, att, att_len, n_att);
	if (json)
		/* every reply to one request under its id: a partitioned bus keeps them in
		 * order, the ack_done after this node's acks */
		gw_bus_publish(a->bus, GW_TOPIC_REPLY, a->reply_to, a->id, json, strlen(json));
	free(json);
}

static void publish_ack_done(gw_bus *bus, const char *id, const char *reply_to, size_t acked, size_t timed_out)
{
	char *json = env_build_ack_done(id, bus->cfg->node_id, acked, timed_out);
	if (json)
		gw_bus_publish(bus, GW_TOPIC_REPLY, reply_to, id, json, strlen(json));
	else
		atomic_fetch_add(&bus->stats.publish_errors, 1);
	free(json);
}

static void ack_done(void *arg, size_t acked, size_t timed_out)
{
	ack_ctx *a = arg;
	if (!a->agg)
		publish_ack_done(a->bus, a->id, a->reply_to, acked, timed_out);
	else if (agg_add(a->agg, NULL, acked, timed_out)) /* after this loop's acks, the node's last */
		publish_ack_done(a->bus, a->id, a->reply_to, a->agg->acked, a->agg->timed_out);
	agg_unref(a->agg);
	free(a->id);
	free(a->reply_to);
	free(a);
}

static void emit_with_ack(gw_bus *bus, env_in *e, bus_agg *agg)
{
	ack_ctx *a = calloc(1, sizeof *a);
	if (!a || !(a->id = strdup(e->id)) || !(a->reply_to = strdup(e->reply_to))) {
		if (a) {
			free(a->id);
			free(a);
		}
		if (agg)
			agg_lost(bus, agg, e);
		return;
	}
	a->bus = bus;
	if ((a->agg = agg))
		atomic_fetch_add(&agg->refs, 1);
	sio_ack_handler h = {.arg = a, .on_ack = ack_one, .on_done = ack_done};
	sio_emit_with_ack(bus->sio, e->target.nsp, (const char *const *)e->target.rooms,
			  e->target.n_rooms, (const char *const *)e->target.except,
			  e->target.n_except, e->body.json, e->body.json_len, e->body.att,
			  e->body.n_att, e->volatile_, (uint32_t)e->timeout_ms, &h);
}

static void add_room_json(const char *room, void *arg)
{
	cJSON_AddItemToArray(arg, cJSON_CreateString(room));
}

static void publish_sockets(gw_bus *bus, const env_in *e, cJSON *arr)
{
	char *json = env_build_sockets(e->id, bus->cfg->node_id, arr);
	if (json)
		gw_bus_publish(bus, GW_TOPIC_REPLY, e->reply_to, e->id, json, strlen(json));
	else
		atomic_fetch_add(&bus->stats.publish_errors, 1);
	free(json);
}

static void fetch(gw_bus *bus, env_in *e, sio_socket **v, size_t n, bus_agg *agg)
{
	cJSON *arr = cJSON_CreateArray();
	for (size_t i = 0; arr && i < n; i++) {
		cJSON *o = cJSON_CreateObject();
		if (!o)
			break;
		cJSON_AddStringToObject(o, "id", sio_socket_id(v[i]));
		cJSON *rooms = cJSON_AddArrayToObject(o, "rooms");
		sio_socket_rooms(v[i], add_room_json, rooms);
		char *hs = sio_socket_handshake(v[i]);
		if (hs)
			cJSON_AddRawToObject(o, "handshake", hs);
		free(hs);
		const char *data = sio_socket_data(v[i]);
		cJSON *d = data ? cJSON_Parse(data) : NULL;
		if (d)
			cJSON_AddItemToObject(o, "data", d);
		cJSON_AddItemToArray(arr, o);
	}
	if (!agg) {
		publish_sockets(bus, e, arr);
	} else if (agg_add(agg, arr, 0, 0)) { /* the node's sockets, every loop's */
		publish_sockets(bus, e, agg->sockets);
		agg->sockets = NULL; /* taken */
	}
}

/* join / leave / disconnect / fetch: select first, then act, so the room index is
 * never changed while it is being walked. */
static void room_op(gw_bus *bus, env_in *e, bus_agg *agg)
{
	const env_target *t = &e->target;
	if (e->type == ENV_DISCONNECT) {
		/* close ends every socket of a connection: each is found again by id */
		char **ids;
		size_t n = sio_select_ids(bus->sio, t->nsp, (const char *const *)t->rooms, t->n_rooms,
					  (const char *const *)t->except, t->n_except, &ids);
		for (size_t i = 0; i < n; i++) {
			sio_socket *s = sio_socket_find(bus->sio, ids[i], strlen(ids[i]));
			if (s)
				sio_socket_disconnect(s, e->close);
		}
		free(ids);
		return;
	}
	sio_socket **v;
	size_t n = sio_select(bus->sio, t->nsp, (const char *const *)t->rooms, t->n_rooms,
			      (const char *const *)t->except, t->n_except, &v);
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; e->type == ENV_JOIN && k < e->n_change; k++)
			sio_socket_join(v[i], e->change[k]);
		for (size_t k = 0; e->type == ENV_LEAVE && k < e->n_change; k++)
			sio_socket_leave(v[i], e->change[k]);
	}
	if (e->type == ENV_FETCH)
		fetch(bus, e, v, n, agg);
	free(v);
}

/* False for a reply to a socket that is not on this loop. */
static bool apply(gw_bus *bus, env_in *e, const char *pos, bus_agg *agg)
{
	sio_server *sio = bus->sio;
	switch (e->type) {
	case ENV_EMIT:
		if (e->has_ack) {
			emit_with_ack(bus, e, agg);
			return true;
		}
		sio_broadcast_at(sio, e->target.nsp, (const char *const *)e->target.rooms, e->target.n_rooms,
				 (const char *const *)e->target.except, e->target.n_except, e->frames, e->n_frames,
				 e->volatile_, pos);
		return true;
	case ENV_ACK:
		return apply_ack(bus, e);
	case ENV_CONNECT_RESULT: {
		sio_socket *s = sio_socket_find(sio, e->id, strlen(e->id));
		if (!s)
			return false;
		if (!sio_socket_pending(s))
			return true; /* late (timed out): nothing to decide */
		if (e->ok)
			sio_socket_admit(s, e->data_json);
		else
			sio_socket_reject(s, e->error_json ? e->error_json : "{\"message\":\"Not authorized\"}");
		return true;
	}
	case ENV_JOIN:
	case ENV_LEAVE:
	case ENV_DISCONNECT:
	case ENV_FETCH:
		room_op(bus, e, agg);
		return true;
	default:
		break;
	}
	uint64_t now = gw_now_ms();
	if (now - bus->unsupported_logged_at > 10000) {
		bus->unsupported_logged_at = now;
		gw_warn("bus: envelope type %d not supported yet: dropped", (int)e->type);
	}
	return true;
}

/* Items applied per loop turn: a burst from the bus must not starve the sockets. */
#define DRAIN_BUDGET 1024

bool gw_bus_pending(gw_bus *bus)
{
	return atomic_load_explicit(&bus->queued, memory_order_relaxed) != 0;
}

void gw_bus_drain(gw_bus *bus)
{
	pthread_mutex_lock(&bus->lock);
	bus_item *it = bus->head, *last = NULL;
	size_t n = 0;
	for (bus_item *p = it; p && n < DRAIN_BUDGET; p = p->next, n++)
		last = p;
	if (last) {
		bus->head = last->next;
		if (!bus->head)
			bus->tail = NULL;
		last->next = NULL;
		bus->queued -= n;
	}
	bool more = bus->head != NULL;
	pthread_mutex_unlock(&bus->lock);
	if (more)
		net_wake(bus->net); /* the rest on the next turn */
	while (it) {
		bus_item *next = it->next;
		if (it->stored) {
			sio_socket *s = sio_socket_find(bus->sio, it->sid, strlen(it->sid));
			if (s && it->status == 0)
				sio_socket_ack(s, it->ack_id, "[]", 2, NULL, 0);
			else if (it->status) {
				atomic_fetch_add(&bus->stats.publish_errors, 1);
				gw_debug("bus: event of %s not stored (%d): not acked", it->sid, it->status);
			}
		} else if (it->fence) {
			if (bus->fence_done && it->len == bus->fence_len && !memcmp(it->data, bus->fence_text, it->len)) {
				void (*fn)(void *) = bus->fence_done;
				bus->fence_done = NULL;
				fn(bus->fence_ctx);
			}
		} else if (it->relay) {
			if (bus->relay)
				bus->relay(bus->relay_ctx, (const char *)it->data, it->len);
		} else if (it->env) {
			if (!apply(bus, it->env, it->pos, it->agg) && bus->loops_share && !it->forwarded) {
				/* a reply to a socket that recovered on another loop (its id names
				 * this one): the loop that holds it answers, the others find nothing */
				it->forwarded = true;
				to_siblings(bus, it);
				it = next;
				continue;
			}
		} else if (SUB_KIND(it->sub_id) == SUB_SESSIONS)
			apply_session(bus, (const char *)it->data, it->len, it->sibling);
		else if (it->topic) {
			char key[24];
			raw_key(it->sub_id, key);
			raw_sub *r = gw_map_get(&bus->raw_subs, key, strlen(key));
			if (r)
				r->fn(r->ctx, it->sub_id, it->topic, it->data, it->len);
		}
		item_free(it);
		it = next;
	}
}
