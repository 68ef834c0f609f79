/*
 * api.h — the HTTP API on the gateway's port (DESIGN §1.4): POST /api/publish,
 * GET /api/subscribe (Server-Sent Events), GET /healthz, GET /metrics.
 * Service-thread only.
 */
#ifndef GW_API_H
#define GW_API_H

#include <stddef.h>
#include <stdint.h>

#include "app.h"
#include "http/net.h"

typedef struct gw_api gw_api;

gw_api *gw_api_create(gw_app *app);
void gw_api_destroy(gw_api *api);

/* LWS_CALLBACK_HTTP for a path outside the Engine.IO prefixes; always answers
 * (404 for unknown paths). Returns 0, or -1 to close. */
int gw_api_on_http(gw_api *api, gw_conn *c, const char *path);
int gw_api_on_body(gw_api *api, gw_conn *c, const void *in, size_t len);
int gw_api_on_body_done(gw_api *api, gw_conn *c);
/* LWS_CALLBACK_HTTP_WRITEABLE for an SSE stream. */
int gw_api_on_writeable(gw_api *api, gw_conn *c);
void gw_api_on_closed(gw_api *api, gw_conn *c);

/* Write what this loop turn queued on SSE streams: once per turn, before the loop
 * waits, outside any lws callback. */
void gw_api_flush(gw_api *api);

/* A bus message for SSE subscription sub_id (from gw_bus_drain). */
void gw_api_sse_deliver(gw_api *api, uint64_t sub_id, const char *topic, const void *data,
			size_t len);

#endif
