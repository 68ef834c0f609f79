/*
 * eio_codec.h — Engine.IO v4 packet codec. Bytes in, structs out; no I/O, no lws.
 *
 * Packet types are the ASCII digits '0'..'6'. A websocket text frame carries one
 * packet "<type><data>"; a websocket binary frame is one binary message packet (no
 * type byte). A polling payload joins packets with 0x1e; a binary message in a
 * polling payload is "b<base64>".
 */
#ifndef GW_EIO_CODEC_H
#define GW_EIO_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

typedef enum eio_type {
	EIO_OPEN = '0',
	EIO_CLOSE = '1',
	EIO_PING = '2',
	EIO_PONG = '3',
	EIO_MESSAGE = '4',
	EIO_UPGRADE = '5',
	EIO_NOOP = '6',
} eio_type;

#define EIO_SEPARATOR 0x1e

typedef struct eio_packet {
	eio_type type;
	bool binary;         /* binary message (only with EIO_MESSAGE) */
	const uint8_t *data; /* payload after the type char; points into the input */
	size_t len;
} eio_packet;

/* Decode one websocket frame. Returns 0 or -GW_EINVAL (empty text frame, unknown type). */
int eio_decode_frame(const uint8_t *buf, size_t len, bool binary_frame, eio_packet *out);

/*
 * Iterate the packets of a polling payload (a POST body). The buffer is mutable:
 * "b<base64>" packets are decoded in place. Usage:
 *     eio_payload_iter it; eio_payload_iter_init(&it, body, len);
 *     while ((rc = eio_payload_next(&it, &pkt)) == 1) ...
 * Returns 1 with a packet, 0 at the end, -GW_EINVAL on a malformed packet (empty
 * packet, unknown type, bad base64).
 * An empty body yields no packet (0). A separator at the start, at the end or doubled
 * is an empty packet (-GW_EINVAL); a trailing separator is reported instead of the
 * packet before it. After -GW_EINVAL the iterator is at the end. Packet data points
 * into buf (binary packets: their decoded bytes, written over the base64).
 */
typedef struct eio_payload_iter {
	uint8_t *p, *end;
} eio_payload_iter;
void eio_payload_iter_init(eio_payload_iter *it, uint8_t *buf, size_t len);
int eio_payload_next(eio_payload_iter *it, eio_packet *out);

/*
 * Append one packet, given as the websocket payload of a frame (see util/frame.h: for
 * text, the type char then data; for binary, raw bytes), to a polling payload being
 * built: inserts 0x1e when out is non-empty, and encodes binary as "b<base64>".
 */
int eio_payload_append(gw_buf *out, const uint8_t *ws_payload, size_t len, bool binary);

/*
 * Engine.IO v3 (engine.allow_eio3: socket.io-client 2.x), as engine.io's parser-v3.
 *
 * A polling payload comes in one of two forms. Text: each packet as
 * "<length>:<packet>", the length counting UTF-16 code units of the packet (a JS
 * string's length), a binary message as "b4<base64>". Binary (XHR2, when the client
 * supports binary and a packet is binary): each packet as a 0 (text) or 1 (binary)
 * byte, the decimal digits of its length in bytes as byte values 0..9, 0xFF, then the
 * packet — UTF-8 text with its type char, or the type byte 4 then the bytes. A
 * websocket binary frame is the type byte 4 then the bytes.
 *
 * eio3_payload_next works as eio_payload_next (in place, 1 / 0 / -GW_EINVAL; after an
 * error the iterator is at the end); a zero-length packet is skipped, as parser-v3
 * does. The text form's packets are structurally walked as UTF-8 (a length that ends
 * inside a character is malformed); whether the text is valid UTF-8 is the caller's
 * check, as for v4.
 */
typedef struct eio3_payload_iter {
	uint8_t *p, *end;
	bool binary_form;
} eio3_payload_iter;
void eio3_payload_iter_init(eio3_payload_iter *it, uint8_t *buf, size_t len, bool binary_form);
int eio3_payload_next(eio3_payload_iter *it, eio_packet *out);
/* Append one packet (the websocket payload of a v4 frame, as eio_payload_append takes
 * it) to a v3 payload in the given form. */
int eio3_payload_append(gw_buf *out, const uint8_t *ws_payload, size_t len, bool binary, bool binary_form);
/* Decode one v3 websocket frame: a binary one starts with the type byte 4; a text one
 * may be "b4<base64>" (a client forcing base64), decoded in place. */
int eio3_decode_frame(uint8_t *buf, size_t len, bool binary_frame, eio_packet *out);
/* JavaScript's length of UTF-8 text (UTF-16 code units); -1 if it is not UTF-8 in
 * structure. */
long eio3_js_length(const uint8_t *s, size_t n);

/* The open packet: 0{"sid":..,"upgrades":[..],"pingInterval":..,"pingTimeout":..,"maxPayload":..}
 * (appended to out, like eio_payload_append; this is the websocket payload, not a
 * polling payload). Returns 0 or -GW_ENOMEM. */
int eio_encode_open(gw_buf *out, const char *sid, bool upgrade_websocket, int ping_interval_ms,
		    int ping_timeout_ms, size_t max_payload);

/* Engine.IO error body {"code":N,"message":"..."} and its HTTP status (400 or 403). */
enum {
	EIO_ERR_TRANSPORT_UNKNOWN = 0,
	EIO_ERR_UNKNOWN_SID = 1,
	EIO_ERR_BAD_HANDSHAKE_METHOD = 2,
	EIO_ERR_BAD_REQUEST = 3,
	EIO_ERR_FORBIDDEN = 4,
	EIO_ERR_UNSUPPORTED_PROTOCOL_VERSION = 5,
};
/* Unknown codes are reported as EIO_ERR_BAD_REQUEST. */
const char *eio_error_message(int code);
int eio_error_status(int code);
/* Writes the JSON body; returns its length (body needs 64 bytes), or -GW_EINVAL when
 * len is too small. */
int eio_error_body(int code, char *body, size_t len);

#endif
