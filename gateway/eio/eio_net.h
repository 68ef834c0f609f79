/*
 * eio_net.h — the entry points the HTTP dispatcher (http/net.c) calls for requests
 * under an Engine.IO path. Service-thread only; not for other modules.
 */
#ifndef GW_EIO_NET_H
#define GW_EIO_NET_H

#include "eio/eio.h"
#include "http/net.h"

/* LWS_CALLBACK_HTTP for a path under the server's prefix. Returns 0 or -1 (close). */
int eio_on_http(eio_server *srv, gw_conn *c);
int eio_on_http_body(gw_conn *c, const void *in, size_t len);
int eio_on_http_body_done(gw_conn *c);
int eio_on_http_writeable(gw_conn *c);
void eio_on_http_closed(gw_conn *c);

/* Websocket: decide before the upgrade (FILTER_PROTOCOL_CONNECTION): 0 accept. */
int eio_ws_filter(eio_server *srv, struct lws *wsi);
int eio_ws_established(eio_server *srv, gw_conn *c);
int eio_ws_receive(gw_conn *c, const void *in, size_t len);
int eio_ws_writeable(gw_conn *c);
void eio_ws_closed(gw_conn *c);

/* Write what this loop turn queued on websocket sessions: once per turn, before the
 * loop waits, outside any lws callback. */
void eio_flush(void);

#endif
