/*
 * eio.h — Engine.IO v4 server (and v3, engine.allow_eio3): sessions, polling and
 * websocket transports, upgrade, heartbeats. Knows nothing of namespaces: it hands whole messages to a handler.
 *
 * Service-thread only. Sessions are referred to by pointer on the service thread and
 * by (sid) from anywhere else: a session may disappear between two loop turns.
 *
 * Lifetimes: a session is created by a handshake and destroyed after on_close
 * returns; the handler must drop its pointer in on_close.
 */
#ifndef GW_EIO_H
#define GW_EIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "config/config.h"
#include "net/net.h"
#include "util/frame.h"
#include "util/metric.h"

/* Why a session ended (counted by reason; Socket.IO's disconnect reason follows it). */
typedef enum gw_close_reason {
	GW_CLOSE_TRANSPORT_CLOSE = 0, /* client closed / sent close packet */
	GW_CLOSE_TRANSPORT_ERROR,     /* socket error, duplicate poll */
	GW_CLOSE_PING_TIMEOUT,
	GW_CLOSE_PARSE_ERROR,         /* malformed Engine.IO or Socket.IO packet */
	GW_CLOSE_PAYLOAD_TOO_LARGE,
	GW_CLOSE_QUEUE_OVERFLOW,      /* slow consumer: send queue full */
	GW_CLOSE_CONNECT_TIMEOUT,     /* joined no namespace in time */
	GW_CLOSE_SERVER_DISCONNECT,   /* backend / server asked */
	GW_CLOSE_SHUTDOWN,
	GW_CLOSE__COUNT
} gw_close_reason;

const char *gw_close_reason_str(gw_close_reason r);

typedef struct eio_server eio_server;
typedef struct eio_session eio_session;

typedef struct eio_handler {
	void *ctx;
	/* The handshake succeeded: the session exists, the open packet is queued. */
	void (*on_open)(void *ctx, eio_session *s);
	/* One message packet (text: a Socket.IO packet; binary: an attachment). data is
	 * borrowed for the call. The handler may close the session from here. */
	void (*on_message)(void *ctx, eio_session *s, const uint8_t *data, size_t len, bool binary);
	/* The session is closing; after return the pointer is invalid. */
	void (*on_close)(void *ctx, eio_session *s, gw_close_reason reason);
	/* The session moved from polling to websocket. May be NULL. */
	void (*on_upgrade)(void *ctx, eio_session *s);
} eio_handler;

/* An Engine.IO server's counters (eio_metrics shows them). */
typedef struct eio_stats {
	int64_t polling, websocket;   /* open sessions by transport */
	uint64_t opened, upgrades;
	uint64_t packets_in, packets_out, bytes_in, bytes_out;
	uint64_t ws_writes, ws_short_writes; /* coalesced writes; ... the socket took in part */
	uint64_t drops_volatile;
	uint64_t drain_refused;       /* handshakes answered 503 while draining */
	uint64_t errors[6];           /* error replies by Engine.IO code */
	uint64_t closes[GW_CLOSE__COUNT];
} eio_stats;

/* path: the URL prefix served ("/socket.io/"), on the loop net. */
eio_server *eio_server_create(net_loop *net, const gw_config *cfg, const char *path, const eio_handler *h);
/* Serve the server's path on its loop (net_route), and write what each loop turn
 * queued (websocket writes, held polls) before the loop waits (net_on_turn). */
int eio_server_listen(eio_server *srv);
/* A request (poll, POST, websocket upgrade) for a session this node does not hold, whose
 * sid names another node (util/sid.h: tag is its first 4 characters): relay takes it
 * and answers c (bus/relay.h), or returns false and the request gets 400 "Session ID
 * unknown" as without it. */
typedef bool (*eio_relay_fn)(void *ctx, net_conn *c, const h1_req *r, const char *tag);
void eio_server_set_relay(eio_server *srv, eio_relay_fn fn, void *ctx);
/* Graceful drain: from now on a handshake (a new session) is answered 503 with
 * Retry-After; open sessions carry on. Any thread (engine.workers: every loop at once). */
void eio_server_drain(eio_server *srv);
bool eio_server_draining(const eio_server *srv);
/* Close up to n open sessions for reason (each as eio_session_close would at once: a
 * close packet to a held poll, a close frame); returns how many are left. */
size_t eio_server_close_some(eio_server *srv, size_t n, gw_close_reason reason);
/* Close every session (reason GW_CLOSE_SHUTDOWN) and free. */
void eio_server_destroy(eio_server *srv);
const char *eio_server_path(const eio_server *srv);
/* A handler that sends every message back as it came: the diagnostic raw Engine.IO
 * endpoint (engine.echo_path), to test this layer alone. */
eio_handler eio_echo_handler(void);
size_t eio_server_sessions(const eio_server *srv);
const eio_stats *eio_server_stats(const eio_server *srv);
/* The server's counters (sessions, packets, bytes, writes, errors, closes by reason):
 * a gw_metric_source. */
void eio_metrics(void *srv, gw_metric_sink *sink);

/*
 * Queue frames (one Socket.IO packet and its attachments) to the session, as one unit.
 * Takes a new reference to each frame (the caller keeps its own). volatile: dropped
 * (and counted) when the session's queue is not empty or the session is upgrading.
 * When the bounded queue cannot take them all, the session is closed with
 * GW_CLOSE_QUEUE_OVERFLOW. Returns 0, -GW_EFULL (dropped/closed) or -GW_ECLOSED.
 */
int eio_session_send(eio_session *s, gw_frame *const *frames, size_t n, bool volatile_);
/* The same frames to each of n sessions (a broadcast), with eio_session_send's rules
 * for each; returns how many took them. Faster than n calls: the sessions are
 * prefetched and the frames' references taken once. */
size_t eio_send_many(eio_session *const *sessions, size_t n, gw_frame *const *frames,
		     size_t n_frames, bool volatile_);
/* Close the session (sends a close packet when the transport allows). */
void eio_session_close(eio_session *s, gw_close_reason reason);

const char *eio_session_sid(const eio_session *s);
void *eio_session_user(const eio_session *s);
void eio_session_set_user(eio_session *s, void *user);
/* The handshake as Socket.IO exposes it, as JSON text: {"headers","query","address",
 * "time","issued","url","xdomain","secure"} (borrowed; valid while the session lives). */
const char *eio_session_handshake(const eio_session *s);
bool eio_session_is_websocket(const eio_session *s);
/* The Engine.IO protocol revision the client speaks: 4, or 3 (engine.allow_eio3). */
int eio_session_protocol(const eio_session *s);

#endif
