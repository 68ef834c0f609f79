/*
 * bus.h — the bus bridge: loads the plugin, turns socket.io activity into envelopes
 * on the bus, and envelopes from the bus into socket.io operations.
 *
 * Threads: gw_bus_deliver (the host's deliver service) runs on plugin threads; it
 * parses and encodes there, then pushes onto a bounded queue and wakes the loop.
 * Everything else is service-thread only.
 */
#ifndef GW_BUS_H
#define GW_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/net.h"
#include "sio/sio.h"
#include "util/buf.h"
#include "util/metric.h"

typedef struct gw_bus gw_bus;

/* Kinds of bus topics, for the message counters. */
typedef enum gw_topic_kind {
	GW_TOPIC_IN = 0,   /* sio.in (gateway → backends) */
	GW_TOPIC_OUT,      /* sio.out (backends → gateways) */
	GW_TOPIC_REPLY,    /* sio.reply.<node> */
	GW_TOPIC_ROUTE,    /* raw route topics */
	GW_TOPIC_API,      /* HTTP API publish / SSE */
	GW_TOPIC_SESSIONS, /* recovery snapshots between nodes ({prefix}.sessions) */
	GW_TOPIC_NODE,     /* this node's sockets only ({prefix}.node.{node_tag}) */
	GW_TOPIC__COUNT
} gw_topic_kind;

/* Load, validate options, create the plugin; what it delivers is applied on net's loop.
 * On error returns NULL with one line in err. */
gw_bus *gw_bus_create(const gw_config *cfg, net_loop *net, char *err, size_t err_len);
/*
 * engine.workers: the bus of another service loop, on primary's plugin (before
 * gw_bus_start). cfg is that loop's (config.h, gw_config_loop): its node topic is its
 * own. What comes on topics.out reaches every loop's socket.io server, parsed and encoded
 * once; a fetch or an emit with ack is answered once for the node (the sockets, the
 * ack_done of every loop); a reply on topics.reply goes to the loop of the socket it
 * names; relay messages between loops go from queue to queue, not over the plugin. The
 * loop's bus is destroyed before primary, after gw_bus_stop(primary). NULL: out of
 * memory, or too many loops.
 */
gw_bus *gw_bus_add_loop(gw_bus *primary, const gw_config *cfg, net_loop *net);
/* The socket.io server the bus applies envelopes to (before gw_bus_start). */
void gw_bus_set_sio(gw_bus *bus, sio_server *sio);
/* done(ctx) runs (service thread, once) when a marker published now to this node's own
 * topic has come back: on a bus that keeps one publisher's order across topics (memory;
 * nng with loopback) everything published before it has then been delivered to this
 * node's subscriptions, the HTTP API's SSE streams included. On another bus it is a
 * short pause. -GW_ENOTSUP without node topics (done never runs), or a publish error. */
int gw_bus_fence(gw_bus *bus, void (*done)(void *ctx), void *ctx);
/* Relay messages on the node topic (bus/relay.h) go to fn, on the service thread (before
 * gw_bus_start; without it they are envelopes, and malformed ones). */
void gw_bus_set_relay(gw_bus *bus, void (*fn)(void *ctx, const char *data, size_t len), void *ctx);
/* Subscribe the gateway's own topics. */
int gw_bus_start(gw_bus *bus, char *err, size_t err_len);
/* Stop the plugin: no deliveries after return. Idempotent; NULL-safe. */
void gw_bus_stop(gw_bus *bus);
/* Stop the plugin (no more deliveries), drop queued messages, free. */
void gw_bus_destroy(gw_bus *bus);

/* The socket.io handler that publishes connect/event/disconnect envelopes. */
sio_handler gw_bus_sio_handler(gw_bus *bus);

/* Publish raw bytes. Returns 0 or a negative error (counted). */
int gw_bus_publish(gw_bus *bus, gw_topic_kind kind, const char *topic, const char *key,
		   const void *data, size_t len);

/*
 * Publish an envelope for topics.out, routed (HTTP API `route=nodes`): when every room
 * it targets is a socket id (util/sid.h), it goes to the node topics those ids name, one
 * message per node with that node's ids as its rooms; otherwise, or when node topics are
 * off, or when its namespace recovers sockets across nodes (a node topic is not in the
 * log other nodes replay from), to topics.out unchanged. key: the publish key, NULL for
 * each destination topic's name. The destination topics are appended to `to` as JSON
 * strings separated by commas. Returns 0 or the first publish error (counted).
 */
int gw_bus_publish_routed(gw_bus *bus, const char *key, const void *data, size_t len, gw_buf *to);

/* A raw subscriber's callback: one message (borrowed for the call), on the service
 * thread, from gw_bus_drain. */
typedef void (*gw_bus_sink)(void *ctx, uint64_t sub_id, const char *topic, const void *data, size_t len);
/* Subscribe topic (or every topic starting with it) for fn; returns the subscription id
 * (> 0) or 0. Service thread. */
uint64_t gw_bus_subscribe_fn(gw_bus *bus, const char *topic, bool prefix, gw_bus_sink fn, void *ctx);
/* Ends a subscription: fn is not called for it any more, queued messages included. */
void gw_bus_unsubscribe(gw_bus *bus, uint64_t sub_id);

/* Service thread: apply everything queued by plugin threads. */
void gw_bus_drain(gw_bus *bus);
/* Whether plugin threads queued anything not applied yet (a hint: read without the lock). */
bool gw_bus_pending(gw_bus *bus);

/* 0 when the plugin reports healthy, else writes a reason. Any thread. */
int gw_bus_health(gw_bus *bus, char *buf, size_t len);
const char *gw_bus_plugin_name(const gw_bus *bus);
/* The bus's counters (messages by topic kind, publish errors, malformed envelopes,
 * queue drops, rejected events) and the plugin's own stats lines: a gw_metric_source. */
void gw_bus_metrics(void *bus, gw_metric_sink *sink);

#endif
