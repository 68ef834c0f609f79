/*
 * net.h — the libwebsockets glue shared by the HTTP-facing modules: the per-connection
 * state (one struct for every wsi, HTTP or websocket) and the reply writer.
 * Service-thread only.
 */
#ifndef GW_NET_H
#define GW_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "util/buf.h"
#include "util/dlist.h"

struct eio_server;
struct eio_session;

typedef enum conn_role {
	CONN_NONE = 0,
	CONN_REPLY,      /* a plain HTTP reply is being written */
	CONN_EIO_GET,    /* polling GET (possibly held) */
	CONN_EIO_POST,   /* polling POST collecting its body */
	CONN_EIO_WS,     /* websocket transport (or upgrade probe) */
	CONN_API_POST,   /* /api/publish collecting its body */
	CONN_API_SSE,    /* /api/subscribe stream */
} conn_role;

typedef struct gw_conn {
	/* first: what a websocket flush touches */
	conn_role role;
	int fd;                    /* the socket for send() straight to it; -1 under TLS */
	struct lws *wsi;
	struct eio_session *sess;
	bool kill;                 /* close it from its next writeable callback */
	bool probe_reply;          /* websocket: "3probe" to send */

	/* Engine.IO */
	struct eio_server *eio;
	gw_buf rx;                 /* websocket: message being reassembled */
	bool rx_binary;

	/* request body (POST) */
	gw_buf body;
	size_t body_limit;

	/* reply */
	bool held;                 /* net_hold(): rx is off until the reply */
	bool have_reply;
	bool preflight;            /* CORS preflight: the allow-methods/-headers too */
	int status;
	const char *ctype;
	gw_buf out;
	gw_dlink reply_link;       /* on the list of replies written before the loop waits */
	char cookie[40];           /* io cookie value to set, "" = none */

	/* SSE */
	uint64_t sse_id;
	char *topic;
	struct gw_sse *sse;

	char origin[256];          /* request Origin header ("" if none) */
} gw_conn;

/* Prepare an HTTP reply on c and ask for a writeable callback. body is copied. */
void net_reply(gw_conn *c, int status, const char *ctype, const void *body, size_t len);
/* JSON error helper: {"code":N,"message":"..."} with the status for code (Engine.IO). */
void net_reply_eio_error(gw_conn *c, int code);
/* Write the prepared reply (from LWS_CALLBACK_HTTP_WRITEABLE). Returns -1 when the
 * connection must close, else 0. */
int net_write_reply(gw_conn *c);
/* Add CORS and configured extra headers to a reply being built. */
int net_add_common_headers(gw_conn *c, unsigned char **p, unsigned char *end);
/* Copy the value of query argument `name` (without '=') into out. Returns 1 when
 * found, 0 when absent, -1 when the value does not fit (out is then ""). Any order,
 * any number of other arguments. */
int net_query_arg(struct lws *wsi, const char *name, char *out, size_t len);
/* Hold an HTTP request open without an answer (long-poll, SSE). Also stops reading
 * from it: lws 4.1 neither reads nor closes a connection in the middle of a
 * transaction, so a peer that hung up made poll() return at once forever; with rx
 * off, the hang-up alone is reported and lws closes the connection. */
void net_hold(gw_conn *c);

/*
 * Send ready bytes on c now, outside or inside a callback (p has LWS_PRE bytes of
 * headroom before it). Straight to the socket when lws holds nothing for c and c is not
 * TLS: lws_write would also ask for a writeable callback after every write (two
 * epoll_ctl and a loop turn). What the socket does not take goes to lws_write(proto),
 * which sends it, in order, before anything it writes on c itself (close frame, pong).
 * 0: all sent; 1: the socket took part, lws has the rest; -1: c is broken, close it.
 */
int net_send_now(gw_conn *c, uint8_t *p, size_t len, enum lws_write_protocol proto);
/* Reset a conn for its next request on a keep-alive connection. */
void net_conn_reset(gw_conn *c);

#endif
