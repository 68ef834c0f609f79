/*
 * admin.h — the server side of @socket.io/admin-ui on the admin namespace (admin_ui).
 *
 * A sio_handler put in front of the next one (the bus bridge's). The admin namespace's
 * sockets are served here and never reach the next handler: the login (username and a
 * bcrypt password_hash, checked by crypt(3) on a thread of its own, or a session id the
 * login handed out), then config, all_sockets and, every 2 s, server_stats; the UI's
 * actions (join, leave, _disconnect, emit) are applied to this node's sockets (with
 * engine.workers, every loop's: gw_admin_link). Every
 * other call is passed on unchanged, after it was told to the admin sockets
 * (socket_connected, socket_updated, socket_disconnected, room_joined, room_left,
 * event_received) in development mode. Nothing is built while no admin is connected.
 *
 * Service-thread only, but for the login thread, which hands its answers back through
 * the loop's wake and a turn hook.
 */
#ifndef GW_ADMIN_H
#define GW_ADMIN_H

#include "config/config.h"
#include "eio/eio.h"
#include "net/net.h"
#include "sio/sio.h"
#include "util/metric.h"

typedef struct gw_admin gw_admin;

/* next: the handler every other namespace's calls go on to (copied). NULL on out of
 * memory. */
gw_admin *gw_admin_create(const gw_config *cfg, net_loop *net, const sio_handler *next);
/* engine.workers: every loop's admin (all[i] on nets[i]), before the loops run. The
 * UI then sees and acts on the whole process, whichever loop its connection is on: the
 * socket list and server_stats of every loop (read while each waits: net_visit), every
 * loop's events, its actions applied on every loop, one login session store. < 0 on
 * out of memory. */
int gw_admin_link(gw_admin *const *all, net_loop *const *nets, size_t n);
/* The handler to give sio_server_create. */
sio_handler gw_admin_sio_handler(gw_admin *a);
/* Once they exist: the socket.io server the UI looks at and acts on, and the Engine.IO
 * server whose counters server_stats shows. Starts the login thread and the stats
 * timer. < 0 on error. */
int gw_admin_start(gw_admin *a, sio_server *sio, const eio_server *eio);
/* Stops the login thread and the stats timer: before the Engine.IO server goes (its
 * sessions' last disconnects are still told to the admins). NULL-safe. */
void gw_admin_stop(gw_admin *a);
/* Stops, then frees; after the socket.io server is gone, before the loop. NULL-safe. */
void gw_admin_destroy(gw_admin *a);
/* Logins and actions by result: a gw_metric_source. */
void gw_admin_metrics(void *a, gw_metric_sink *sink);

#endif
