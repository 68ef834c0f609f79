/*
 * api.h — the HTTP API on the gateway's port (DESIGN §1.4): POST /api/publish,
 * GET /api/subscribe (Server-Sent Events), GET /healthz, GET /metrics.
 * Service-thread only.
 */
#ifndef GW_API_H
#define GW_API_H

#include <stddef.h>
#include <stdint.h>

#include "bus/bus.h"
#include "eio/eio.h"
#include "net/net.h"
#include "http/metrics.h"

typedef struct gw_api gw_api;

/* bus may be NULL (then /healthz says unhealthy and publishing fails); eio's sessions
 * show on /healthz, metrics' sources on /metrics. */
gw_api *gw_api_create(const gw_config *cfg, net_loop *net, gw_bus *bus, const eio_server *eio,
		      gw_metrics *metrics);
/* The API's own counters (SSE drops): a gw_metric_source. */
void gw_api_metrics(void *api, gw_metric_sink *sink);
void gw_api_destroy(gw_api *api);

/* Serve every path the other routes do not (the fallback route): /api/publish,
 * /api/subscribe, /api/drain, /healthz, /metrics; 404 for the rest. */
int gw_api_listen(gw_api *api);
/* POST /api/drain (with the token) calls fn(ctx) on the service thread, once; the reply
 * is 202 {"draining":true}. Without it the path is 404. */
void gw_api_on_drain(gw_api *api, void (*fn)(void *ctx), void *ctx);
/* /healthz's "sessions" from fn (engine.workers: every loop's), else the engine's. */
void gw_api_on_sessions(gw_api *api, size_t (*fn)(void *ctx), void *ctx);

#endif
