/*
 * eio_fake.h — an Engine.IO layer for unit tests of the layers above it (sio/, bus/).
 *
 * It implements the eio_session_* functions sio_server.c and bridge.c call, so a test
 * links it instead of gateway/eio/eio_server.c: no sockets, no loop turn; what the
 * layer above sends to a session is recorded as text, and the test plays the client
 * by handing it messages. Same contract as eio.h: on_close once, then the session
 * takes no more frames.
 */
#ifndef GW_EIO_FAKE_H
#define GW_EIO_FAKE_H

#include <stdbool.h>
#include <stddef.h>

#include "eio/eio.h"
#include "util/rand.h"

#define FAKE_MAX_OUT 256

struct eio_session {
	eio_handler h;
	char sid[GW_ID_LEN + 1];
	void *user;
	char *handshake;
	bool closed;
	int protocol;            /* Engine.IO revision: 4, or 3 */
	gw_close_reason reason;
	size_t queue_limit;      /* frames it takes before a send overflows (engine.send_queue) */
	size_t queued;           /* what the test has not read yet counts toward it */
	char *out[FAKE_MAX_OUT]; /* every frame sent, as text ("4..." or an attachment) */
	bool out_binary[FAKE_MAX_OUT];
	size_t n_out, n_read;
};

/* A new session with handler h: on_open runs now. */
eio_session *fake_open(const eio_handler *h, const char *handshake_json);
/* The same for a client of Engine.IO revision `protocol` (3: socket.io-client 2.x). */
eio_session *fake_open_protocol(const eio_handler *h, const char *handshake_json, int protocol);
/* The client sends one message packet, as on the wire ("4" and the Socket.IO packet). */
void fake_recv(eio_session *s, const char *text);
void fake_recv_binary(eio_session *s, const void *data, size_t len);
/* The next frame the session was sent and the test has not read, or NULL. */
const char *fake_next(eio_session *s);
/* How many frames are unread. */
size_t fake_unread(const eio_session *s);
/* The transport went (on_close with reason, unless closed already). */
void fake_drop(eio_session *s, gw_close_reason reason);
void fake_free(eio_session *s);

#endif
