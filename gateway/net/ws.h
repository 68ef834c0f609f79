/*
 * ws.h — the WebSocket protocol (RFC 6455) as bytes: the opening handshake's accept
 * key, an incremental reader of client frames that enforces the RFC, frame headers for
 * what the server writes, and permessage-deflate (RFC 7692) without context takeover.
 * No libwebsockets here: unit tests and the fuzzer link it alone.
 */
#ifndef GW_WS_H
#define GW_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

enum {
	WS_OP_CONT = 0x0,
	WS_OP_TEXT = 0x1,
	WS_OP_BINARY = 0x2,
	WS_OP_CLOSE = 0x8,
	WS_OP_PING = 0x9,
	WS_OP_PONG = 0xA,
};

enum {
	WS_CLOSE_NORMAL = 1000,
	WS_CLOSE_GOING_AWAY = 1001,
	WS_CLOSE_PROTOCOL_ERROR = 1002,
	WS_CLOSE_UNSUPPORTED = 1003,
	WS_CLOSE_NO_STATUS = 1005,   /* never on the wire */
	WS_CLOSE_INVALID_DATA = 1007,
	WS_CLOSE_POLICY = 1008,
	WS_CLOSE_TOO_BIG = 1009,
	WS_CLOSE_INTERNAL = 1011,
};

/* Sec-WebSocket-Accept for a client's Sec-WebSocket-Key: base64(SHA-1(key + GUID)).
 * out gets 28 characters and a NUL. */
void ws_accept_key(const char *key, char out[29]);
/* A valid Sec-WebSocket-Key: base64 of exactly 16 bytes (24 characters). */
bool ws_key_valid(const char *key);

/* A server frame header (FIN set, never masked) for a payload of len bytes; rsv1 marks
 * a compressed message. Returns the header's length (2, 4 or 10). */
size_t ws_frame_header(uint8_t out[10], int opcode, size_t len, bool rsv1);

/* A close frame (header + code + reason, reason cut to fit 125 bytes) into out[127+].
 * code 0: no status (an empty close body). Returns its length. */
size_t ws_close_frame(uint8_t *out, uint16_t code, const char *reason);

/* Whether a close code may appear on the wire from a peer (§7.4: 1000-1003, 1007-1011,
 * 3000-4999). */
bool ws_close_code_valid(unsigned code);

typedef enum ws_ev_type {
	WS_EV_NONE = 0,  /* need more bytes */
	WS_EV_MESSAGE,   /* a complete data message: data/len, binary */
	WS_EV_PING,      /* data/len: the payload to echo in a pong */
	WS_EV_PONG,
	WS_EV_CLOSE,     /* the peer's close: code (WS_CLOSE_NO_STATUS when none), data/len = reason */
	WS_EV_ERROR,     /* fail the connection: code (1002, 1007, 1009), reason */
} ws_ev_type;

typedef struct ws_event {
	ws_ev_type type;
	const uint8_t *data; /* valid until the next ws_read or ws_reader_fini */
	size_t len;
	bool binary;
	uint16_t code;
	const char *reason; /* WS_EV_ERROR: what was wrong, for logs and the close frame */
} ws_event;

/* The zlib streams of permessage-deflate, shared by the connections of one loop (no
 * context takeover: each message is compressed or inflated from a reset stream). */
typedef struct ws_zlib ws_zlib;
ws_zlib *ws_zlib_create(void);
void ws_zlib_destroy(ws_zlib *z);

typedef struct ws_reader {
	size_t max_message;   /* a message (all its fragments, decompressed) over this: 1009 */
	ws_zlib *z;           /* permessage-deflate was negotiated (RSV1 allowed), or NULL */
	/* private */
	gw_buf msg;           /* fragments of the message being assembled */
	int msg_op;           /* 0 none, else WS_OP_TEXT / WS_OP_BINARY */
	bool msg_compressed;
	uint32_t utf8_state;
	uint8_t hdr[14];
	size_t hdr_len;
	uint64_t remaining;   /* payload bytes of the current frame still to come */
	int op;
	bool fin, in_frame;
	uint8_t mask[4];
	size_t mask_pos;
	gw_buf ctl;           /* a control frame's payload */
	bool failed;
} ws_reader;

/* z: the loop's zlib streams when permessage-deflate was negotiated, else NULL. */
void ws_reader_init(ws_reader *r, size_t max_message, ws_zlib *z);
void ws_reader_fini(ws_reader *r);
/*
 * Read client frames from data[0..len) (unmasked in place: the caller's buffer is
 * modified). Stops at the first event: returns the bytes consumed and fills ev
 * (WS_EV_NONE when all len bytes were consumed without completing one). Call again with
 * the rest. After WS_EV_ERROR or WS_EV_CLOSE the reader reads nothing more: later calls
 * return 0 with WS_EV_NONE.
 * Enforced: every client frame masked (1002), no RSV bits but RSV1 on a message's first
 * frame with deflate (1002), known opcodes only (1002), control frames ≤ 125 bytes and
 * unfragmented (1002), continuation only inside a message and a new message only after
 * the last one finished (1002), close payload of 0 or ≥ 2 bytes with a valid code and
 * a UTF-8 reason (1002 / 1007), text messages valid UTF-8 (1007, checked as fragments
 * arrive), max_message (1009), inflate errors (1007).
 */
size_t ws_read(ws_reader *r, uint8_t *data, size_t len, ws_event *ev);

/*
 * permessage-deflate, negotiated so that neither side keeps a compression context
 * between messages (no memory per idle connection): the server answers
 * "permessage-deflate; server_no_context_takeover; client_no_context_takeover" to an
 * offer that allows it (one parameter set of the client's offer list it can accept;
 * client_max_window_bits is accepted and ignored, server_max_window_bits < 15 is
 * declined). Returns true and fills resp (the Sec-WebSocket-Extensions value) when
 * accepted.
 */
bool ws_deflate_negotiate(const char *offer, char *resp, size_t resp_len);
/* Compress one message payload (raw deflate, the trailing 00 00 ff ff removed). 0 ok. */
int ws_deflate(ws_zlib *z, const uint8_t *in, size_t len, gw_buf *out);
/* Decompress one message payload into out, at most max bytes (-1 over max, -2 corrupt,
 * -3 out of memory). */
int ws_inflate(ws_zlib *z, const uint8_t *in, size_t len, gw_buf *out, size_t max);

#endif
