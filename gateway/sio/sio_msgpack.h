/*
 * sio_msgpack.h — the Socket.IO packets of socket.io-msgpack-parser (engine.parser:
 * msgpack). Bytes in, structs out; no I/O.
 *
 * One packet is one binary Engine.IO message: a MessagePack map
 * {"type": 0..4, "nsp": "/x", "data": ..., "id": n}. Binary values are msgpack `bin`
 * anywhere in data, so there are no BINARY_EVENT/BINARY_ACK types and no attachments
 * on the wire. Inside the gateway a packet is what the JSON parser gives: data as cJSON
 * whose binary values are placeholders {"_placeholder":true,"num":i} indexing a list of
 * attachments, so the rest of sio and the bus do not know which parser a client uses.
 *
 * What the decoder takes is what notepack.io (the parser's msgpack) writes: every
 * msgpack type, with map keys that are strings; ext -1 (timestamps) become the ISO 8601
 * text JSON.stringify gives a Date; notepack's own ext 0 forms are undefined (null in an
 * array, left out of a map) and an ArrayBuffer (bin). Strings must be UTF-8; floats that
 * JSON cannot hold (NaN, ±Infinity) become null, as JSON.stringify does. Other ext
 * types, trailing bytes and nesting beyond 32 levels are refused.
 */
#ifndef GW_SIO_MSGPACK_H
#define GW_SIO_MSGPACK_H

#include <stddef.h>
#include <stdint.h>

#include "sio/sio_codec.h"
#include "util/buf.h"
#include "util/frame.h"

/* The decoded attachments of one packet. */
typedef struct sio_mp_att {
	uint8_t **data;   /* each malloc'd */
	size_t *len;
	unsigned n;
} sio_mp_att;

/*
 * Decode one packet. Validates as socket.io-msgpack-parser's checkPacket does (type
 * 0..4, nsp a string, data by type, id absent or an integer), plus what sio_decode
 * checks of JSON packets (an EVENT's first element a string that is not a reserved
 * name, id within 53 bits, a nsp starting with '/'), and at most max_att binary values.
 * One leniency: a CONNECT or DISCONNECT whose data is nil has none (python-socketio's
 * msgpack serializer writes it so).
 * On success: p->nsp points into buf; an EVENT/ACK with binary values has the BINARY_
 * type and p->attachments; p->json is the data as compact JSON text (owned: free it
 * with sio_mp_clear), NULL for binary types. Returns 0 or -GW_EINVAL / -GW_ENOMEM.
 */
int sio_mp_decode(const uint8_t *buf, size_t len, unsigned max_att, sio_packet *p, sio_mp_att *att);
/* Frees what sio_mp_decode gave (p's data and text, the attachments). */
void sio_mp_clear(sio_packet *p, sio_mp_att *att);

/*
 * Encode a packet (data with placeholders indexing att, may be NULL: no "data" key) as
 * one msgpack map, appended to out. BINARY_EVENT/BINARY_ACK go out as EVENT/ACK.
 * Returns 0, -GW_EINVAL (a placeholder out of range, a type out of range) or -GW_ENOMEM.
 */
int sio_mp_encode(gw_buf *out, sio_type type, const char *nsp, size_t nsp_len, int64_t id, const cJSON *data,
		  gw_frame *const *att, size_t n_att);

/* The msgpack frame of a packet the gateway built as JSON: frames[0] is the text
 * frame ("4" + packet), frames[1..] its attachments. NULL when it does not decode or
 * out of memory. */
gw_frame *sio_mp_from_frames(gw_frame *const *frames, size_t n);

#endif
