/*
 * app.h — the running gateway: every module instance, owned by main.c and reachable
 * from the lws context's user pointer. Service-thread only unless a field says so.
 */
#ifndef GW_APP_H
#define GW_APP_H

#include <signal.h>

#include "config/config.h"

struct lws_context;
struct eio_server;
struct sio_server;
struct gw_bus;
struct gw_api;

typedef struct gw_app {
	gw_config *cfg;
	struct lws_context *lws;
	struct eio_server *eio;   /* the Socket.IO engine at engine.path */
	struct eio_server *echo;  /* raw Engine.IO echo at engine.echo_path, or NULL */
	struct sio_server *sio;
	struct gw_bus *bus;
	struct gw_api *api;
} gw_app;

/* Create the lws context listening per cfg (one vhost serving HTTP + websocket). */
int net_start(gw_app *app);
/* Run the service loop until gw_net_stop() (signal-safe). */
void net_run(gw_app *app);
void net_stop_signal(void);
void net_destroy(gw_app *app);
/* Wake the service loop (lws_cancel_service). Any thread. */
void net_wake(void);

#endif
