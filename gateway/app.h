/*
 * app.h — the running gateway: every module instance, owned by main.c. Service-thread only unless a field says so.
 */
#ifndef GW_APP_H
#define GW_APP_H

#include <signal.h>

#include "config/config.h"

struct eio_server;
struct sio_server;
struct gw_bus;
struct gw_api;

typedef struct gw_app {
	gw_config *cfg;
	struct eio_server *eio;   /* the Socket.IO engine at engine.path */
	struct eio_server *echo;  /* raw Engine.IO echo at engine.echo_path, or NULL */
	struct sio_server *sio;
	struct gw_bus *bus;
	struct gw_api *api;
} gw_app;

#endif
