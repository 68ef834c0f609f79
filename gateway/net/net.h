/*
 * net.h — the network layer: the only code that calls libwebsockets.
 *
 * net listens and accepts TCP connections itself (SO_REUSEPORT when several loops share
 * the port) and hands each to lws, which does TLS (ALPN http/1.1 only) and gives them back
 * as raw byte streams; this layer reads HTTP/1.1 requests from them (http1.h, on
 * libhttp-parser) and, after an upgrade, WebSocket frames (ws.h). Upper layers register
 * routes (a path prefix with an ops table) and see only whole requests, whole websocket
 * messages and closes; they answer through the functions below. net calls nothing above
 * it but the ops it was given.
 *
 * HTTP/1.1 as RFC 9112 says: requests on one connection are answered in order, one at a
 * time (a pipelined request waits in the connection's buffer until the one before it is
 * answered); `Connection: close` is honoured both ways and stated on the reply that
 * ends a connection; chunked request bodies are decoded; request smuggling shapes,
 * oversized heads and bodies, and requests that take longer than
 * listen.request_timeout_ms to arrive are answered (400/413/431/408, ...) and the
 * connection closed; HEAD and CORS preflights are answered here. See
 * docs/operations.md, "what the gateway answers to bad input".
 *
 * A net_loop is one service loop: its libev loop, the lws context on it, its routes,
 * turn hooks, timers and scratch buffers. Everything here runs on the loop's thread,
 * except net_wake and net_stop_signal.
 */
#ifndef GW_NET_NET_H
#define GW_NET_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "net/http1.h"
#include "util/buf.h"
#include "util/metric.h"
#include "util/timer.h"

typedef struct net_loop net_loop;
typedef struct net_conn net_conn;

typedef struct net_route_ops {
	/* A whole request (head and decoded body). Answer it with net_reply, now or later
	 * (a held long-poll), or with net_stream_begin (SSE), or — when r->upgrade —
	 * net_ws_accept. r stays valid until the request is answered. */
	void (*on_request)(void *ctx, net_conn *c, const h1_req *r);
	/* Optional: net refused a request for this route before it was whole (413: the
	 * body is over the route's max_body); net answers it. */
	void (*on_refused)(void *ctx, net_conn *c, const h1_req *r, int status);
	/* A whole websocket message (text is valid UTF-8). */
	void (*on_ws_message)(void *ctx, net_conn *c, const uint8_t *data, size_t len, bool binary);
	/* Optional: output that could not be written at once has gone out (websocket or
	 * stream): the owner may write more. */
	void (*on_writeable)(void *ctx, net_conn *c);
	/* The connection is going away while it still has a user (net_conn_set_user):
	 * a held request, a stream or a websocket. Last call for c. */
	void (*on_close)(void *ctx, net_conn *c);
} net_route_ops;

/* Requests whose path is prefix (which ends with '/'), prefix without its '/', or
 * below it go to ops; max_body bounds their bodies. Routes are tried in the order added;
 * an empty prefix "" matches every path (the fallback). */
int net_route(net_loop *L, const char *prefix, const net_route_ops *ops, void *ctx, size_t max_body);
/* Called each loop turn before the loop waits, after the bus's messages were applied
 * (each Engine.IO server's flush, the API's SSE flush, ...). */
int net_on_turn(net_loop *L, void (*fn)(void *ctx), void *ctx);
/* Remove a hook (its owner is going away). */
void net_off_turn(net_loop *L, void (*fn)(void *ctx), void *ctx);
/* Called at the start of each loop turn's work, before the flush hooks: the bus drain.
 * pending() says whether another round is wanted. */
void net_set_drain(net_loop *L, void (*drain)(void *ctx), bool (*pending)(void *ctx), void *ctx);

/* ---- per connection ---- */
void net_conn_set_user(net_conn *c, void *user);
void *net_conn_user(const net_conn *c);
bool net_conn_secure(const net_conn *c);
/* The peer's address as text ("127.0.0.1", "::1"). */
const char *net_conn_peer(net_conn *c);

/* ---- HTTP replies ---- */
/*
 * Answer the current request: status line, Content-Type (when ctype), Content-Length,
 * CORS headers for the request's Origin, engine.headers, extra (whole header lines, each
 * ending in "\r\n", or NULL), `Connection: close` when the connection ends with it; the
 * body unless the request was HEAD. body is copied. The next pipelined request (if any)
 * is read after this.
 */
void net_reply(net_conn *c, int status, const char *ctype, const void *body, size_t len,
	       const char *extra);
/* Same, with the connection closed after the reply. */
void net_reply_close(net_conn *c, int status, const char *ctype, const void *body, size_t len);

/* Begin a streamed reply (SSE): the head with `Transfer-Encoding: chunked` (HTTP/1.0:
 * no length, the end of the stream is the close). 0, or -1 when c is broken. */
int net_stream_begin(net_conn *c, int status, const char *ctype, const char *extra);
/* One chunk of a stream. 0 sent, 1 partly buffered (wait for on_writeable), -1 broken. */
int net_stream_write(net_conn *c, const void *data, size_t len);

/* ---- websocket ---- */
/* Complete the opening handshake of an upgrade request (101), negotiating
 * permessage-deflate when engine.per_message_deflate is on. On a bad handshake net
 * answers 400 itself and returns -1. */
int net_ws_accept(net_conn *c, const h1_req *r);
/* Append one message as a frame (compressed when negotiated) to out. 0 or -GW_ENOMEM. */
int net_ws_frame(net_conn *c, gw_buf *out, const void *payload, size_t len, bool binary);
/* Send framed bytes. 0 sent, 1 partly buffered (the rest goes first; wait for
 * on_writeable before writing again), -1 broken (c is closing). */
int net_ws_send(net_conn *c, const void *p, size_t len);
/* In on_close of a websocket: the code it ended with — the peer's close code, or the
 * code net failed it with (1002, 1007, 1009) — or 0 when the connection simply went. */
uint16_t net_ws_close_code(const net_conn *c);
/* Send a close frame (after what was sent before), then close the connection. */
void net_ws_close(net_conn *c, uint16_t code, const char *reason);

/* Whether output is waiting in the socket's buffer (write nothing more until
 * on_writeable). */
bool net_conn_blocked(const net_conn *c);
/* Close c (after what was already handed over has been written). on_close follows if
 * c still has a user. */
void net_close(net_conn *c);

/* Route c's further callbacks (on_ws_message, on_writeable, on_close) to ops instead of
 * the route its request came by, until its current request is answered (a websocket: for
 * good). The node relay takes over connections so (bus/relay.h). */
void net_conn_adopt(net_conn *c, const net_route_ops *ops, void *ctx);

/* ---- remote connections ----
 * A client whose connection another node holds (the relay, bus/relay.h): its request
 * comes as bytes, and what the routes answer on it goes to ops instead of a socket. Every
 * function above works on it; net_stream_* fail, net_conn_blocked is false. */
typedef struct net_remote_ops {
	/* net_reply: the answer (close: the client's connection ends after it). */
	void (*reply)(void *ctx, net_conn *c, int status, const char *ctype, const void *body, size_t len,
		      const char *extra, bool close);
	void (*ws_accept)(void *ctx, net_conn *c);                       /* net_ws_accept */
	void (*ws_send)(void *ctx, net_conn *c, const void *data, size_t len, bool binary); /* one message */
	/* net_close / net_ws_close (code 0: no close frame). Last call for c. */
	void (*close)(void *ctx, net_conn *c, uint16_t code, const char *reason);
} net_remote_ops;

net_conn *net_remote_new(net_loop *L, const net_remote_ops *ops, void *ctx, const char *peer, bool secure);
/* The client's request as HTTP/1.1 bytes: dispatched to its route as if it had arrived
 * here. A request net cannot read is answered 400 (through ops->reply). */
void net_remote_request(net_conn *c, const uint8_t *http, size_t len);
/* A websocket message from the client (text: valid UTF-8, checked where it arrived). */
void net_remote_ws_message(net_conn *c, const uint8_t *data, size_t len, bool binary);
/* The client's connection ended (code: its websocket close code, or 0): the route's
 * on_close if it still has a user, then c is freed (after this loop turn). */
void net_remote_gone(net_conn *c, uint16_t code);

/* ---- the service loop ---- */
/* Create the loop and listen on cfg's address (NULL, logged, when that fails). Routes
 * and hooks are added before net_run. */
net_loop *net_create(const gw_config *cfg);
/* The loop's timers (for everything that runs on it). */
gw_timers *net_timers(net_loop *L);
/* The loop's counters (TCP, HTTP, websocket protocol errors): a gw_metric_source. */
void net_metrics(void *loop, gw_metric_sink *sink);
/* Run until net_stop_signal. */
void net_run(net_loop *L);
/* Answer new requests 503, give queued output up to ms milliseconds to go out. */
void net_drain_output(net_loop *L, uint32_t ms);
void net_stop_signal(net_loop *L); /* signal-safe */
/* From the service thread: net_run returns after this loop turn. net_resume before a
 * net_run again (a later signal stops that one). */
void net_stop(net_loop *L);
void net_resume(net_loop *L);
/* Close every connection and free the loop; its timers go with it. */
void net_destroy(net_loop *L);
/*
 * engine.workers: several loops, one thread each. The thread that runs a loop holds it
 * (net_hold ... net_unhold, around its net_run calls and whatever it does between them);
 * the loop lets go while it waits for events. net_visit calls fn(ctx, i) for each of
 * loops[0..n) while that loop's thread is not working (self, the caller's own loop or
 * NULL, is let go meanwhile): fn may read that loop's state (counters, sessions). One
 * visit at a time in the process.
 */
void net_hold(net_loop *L);
void net_unhold(net_loop *L);
void net_visit(net_loop *self, net_loop *const *loops, size_t n, void (*fn)(void *ctx, size_t i), void *ctx);
/* engine.workers: the loops count their connections together, against one
 * listen.max_connections for the process. Before they run. */
void net_link(net_loop *const *loops, size_t n);
/*
 * engine.workers: steer(ctx, target, len) gets the request target of each plain-TCP
 * connection's first request line (peeked at before anything is read) and names the
 * loop that serves the connection: L itself or NULL keeps it here, another loop gets it
 * handed over, as if it had accepted it. Called on L's thread; it must only read what
 * no loop changes. TLS connections, and connections whose first line does not come
 * whole in the first segment, stay where they landed. Set before the loops run.
 */
void net_set_steer(net_loop *L, net_loop *(*steer)(void *ctx, const char *target, size_t len), void *ctx);
/* Wake the loop (from any thread); from the loop thread itself it costs nothing. */
void net_wake(net_loop *L);

#endif
