/*
 * sio_codec.h — Socket.IO v5 packet codec. Bytes in, structs out; no I/O.
 *
 * Text form: <type>[<attachments>-][<nsp>,][<id>][<json>]
 *   type 0 CONNECT, 1 DISCONNECT, 2 EVENT, 3 ACK, 4 CONNECT_ERROR, 5 BINARY_EVENT,
 *   6 BINARY_ACK. nsp defaults to "/". Binary packets are followed by `attachments`
 *   binary Engine.IO messages; placeholders {"_placeholder":true,"num":N} stand for
 *   them inside the JSON.
 */
#ifndef GW_SIO_CODEC_H
#define GW_SIO_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "util/buf.h"

typedef enum sio_type {
	SIO_CONNECT = 0,
	SIO_DISCONNECT = 1,
	SIO_EVENT = 2,
	SIO_ACK = 3,
	SIO_CONNECT_ERROR = 4,
	SIO_BINARY_EVENT = 5,
	SIO_BINARY_ACK = 6,
} sio_type;

#define SIO_MAX_ATTACHMENTS 1000
#define SIO_NO_ID (-1)

typedef struct sio_packet {
	sio_type type;
	unsigned attachments; /* binary types only */
	const char *nsp;      /* points into the input, or to "/" */
	size_t nsp_len;
	int64_t id;           /* ack id, SIO_NO_ID if absent */
	cJSON *data;          /* parsed payload (owned; NULL when absent) */
	const char *json;     /* the payload's text as received (points into the input) */
	size_t json_len;
} sio_packet;

/*
 * Decode one packet (the Engine.IO message payload, without the '4'). Validates as
 * socket.io's decoder does: CONNECT payload absent or object; DISCONNECT none; EVENT /
 * BINARY_EVENT a non-empty array whose first element is a string; ACK / BINARY_ACK an
 * array; CONNECT_ERROR object or string (server never receives it, but decodes it);
 * attachments ≤ SIO_MAX_ATTACHMENTS; id fits in 53 bits.
 * Also, as socket.io-parser does: an event name may not be reserved (see
 * gw_event_reserved in util/names.h). Stricter than socket.io-parser: the payload of EVENT / ACK and
 * their binary forms is mandatory (the protocol says so), numeric event names are
 * refused, attachments and id are plain decimal digits (at least one digit before '-'),
 * and the JSON must span the rest of the packet (JSON whitespace may trail).
 * Returns 0 (caller frees with sio_packet_clear) or -GW_EINVAL; on error out->data
 * is NULL, so sio_packet_clear is harmless either way.
 */
int sio_decode(const char *buf, size_t len, sio_packet *out);
void sio_packet_clear(sio_packet *p);

/*
 * Encode the text part of a packet into out (appends). json may be NULL (no payload).
 * nsp "/" is omitted. id SIO_NO_ID omitted. For binary types `attachments` is written.
 * Returns 0, -GW_ENOMEM, or -GW_EINVAL (unknown type, negative id other than
 * SIO_NO_ID, id over 2^53-1, nsp not starting with '/' or holding a ',').
 */
int sio_encode(gw_buf *out, sio_type type, const char *nsp, int64_t id, unsigned attachments,
	       const char *json, size_t json_len);

/*
 * Replace placeholders in `data` by the binary attachments, turning each placeholder
 * into {"$binary":"<base64>"} (the bus representation). Returns 0, or -GW_EINVAL if a
 * placeholder number is out of range (or not an integer), -GW_ENOMEM. A placeholder is
 * any object with "_placeholder": true (its other members are dropped), as in
 * socket.io's reconstructPacket. On error data may be partly converted.
 */
/* Whether every placeholder in data indexes one of n_att attachments (socket.io-parser
 * refuses the packet otherwise: "illegal attachments"). */
bool sio_placeholders_valid(const cJSON *data, unsigned n_att);
int sio_placeholders_to_binary(cJSON *data, const uint8_t *const *att, const size_t *att_len,
			       unsigned n_att);

/*
 * The reverse, for packets going to clients: every {"$binary":"<base64>"} object in
 * `data` becomes a placeholder; the decoded bytes are returned in a malloc'd array of
 * malloc'd buffers (caller frees each and the arrays). Returns the number of
 * attachments (≥ 0) or -GW_EINVAL (bad base64) / -GW_ENOMEM.
 * Only an object whose single member is "$binary" with a string value counts; any
 * other object is plain data. Numbering is depth-first in document order (as
 * socket.io's deconstructPacket). With 0 attachments *att and *att_len are NULL. On
 * error nothing is returned (all freed) but data may be partly converted.
 */
int sio_binary_to_placeholders(cJSON *data, uint8_t ***att, size_t **att_len);

#endif
