/*
 * relay.h — Engine.IO requests for a session another node holds, carried over the bus:
 * polling and the websocket without sticky sessions (docs/operations.md §10).
 *
 * A session's id names its node (util/sid.h). A poll, POST or websocket upgrade that
 * lands on a node that does not hold its session is taken here (the front): the request
 * goes as HTTP/1.1 bytes to the holding node's topic (topics.node), where it becomes a
 * remote connection (net.h) served by that node's Engine.IO server as if it had arrived
 * there (the owner). The answer comes back to the front's own node topic, which writes
 * it to the client. A relayed websocket stays relayed: every message crosses the bus
 * once each way.
 *
 * Messages (JSON on the node topics, keyed by the relay id "rid" so one exchange keeps
 * its order on a partitioned bus): front → owner "req" (the request), "ws" (a client
 * message), "gone" (the client's connection ended); owner → front "res" (the answer),
 * "accept" (the upgrade is taken), "ws", "close". A front that hears nothing back in
 * time answers 400 "Session ID unknown", as for a session that does not exist.
 *
 * Service-thread only.
 */
#ifndef GW_BUS_RELAY_H
#define GW_BUS_RELAY_H

#include <stdbool.h>
#include <stddef.h>

#include "bus/bus.h"
#include "net/net.h"
#include "util/metric.h"

typedef struct gw_relay gw_relay;

/* On net's loop, publishing through bus; NULL when out of memory. */
gw_relay *gw_relay_create(gw_bus *bus, net_loop *net, const gw_config *cfg);
/* Ends every exchange (fronts answered 503, owners' connections gone), frees. */
void gw_relay_destroy(gw_relay *r);
/* An eio_relay_fn: take request r on c for the node whose tag is tag. */
bool gw_relay_request(void *relay, net_conn *c, const h1_req *r, const char *tag);
/* A relay message from this node's topic (gw_bus_set_relay). */
void gw_relay_deliver(void *relay, const char *data, size_t len);
/* Whether a node-topic message is a relay message (any thread). */
bool gw_relay_is_message(const void *data, size_t len);
/* Counters: a gw_metric_source. */
void gw_relay_metrics(void *relay, gw_metric_sink *m);

#endif
