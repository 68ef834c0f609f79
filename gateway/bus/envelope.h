/*
 * envelope.h — the JSON envelopes of the bus (docs/bus-protocol.md, DESIGN §1.2).
 *
 * Inbound (backends → gateway): env_parse() runs on the plugin's delivering thread and
 * does all the heavy work there — JSON parse, validation, $binary decoding, and for a
 * plain emit the encoding of the final Engine.IO frames — so the service loop only
 * routes and writes. Outbound (gateway → backends): env_build_*() return malloc'd
 * UTF-8 JSON text.
 *
 * No lws, no global state; safe on any thread.
 */
#ifndef GW_ENVELOPE_H
#define GW_ENVELOPE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "util/frame.h"

typedef enum env_type {
	ENV_EMIT = 1,
	ENV_JOIN,
	ENV_LEAVE,
	ENV_DISCONNECT,
	ENV_FETCH,
	ENV_ACK,            /* answers a client's event (on sio.reply.<node>) */
	ENV_CONNECT_RESULT,
} env_type;

/* Which sockets an operation applies to: nsp ("/" default), union of rooms (empty =
 * whole namespace) minus union of except. */
typedef struct env_target {
	char *nsp;
	char **rooms;
	size_t n_rooms;
	char **except;
	size_t n_except;
} env_target;

/* A packet body: JSON text with placeholders plus its binary attachments as ready
 * binary frames. */
typedef struct env_body {
	char *json;          /* NUL-terminated; "[...]" for events/acks */
	size_t json_len;
	gw_frame **att;      /* n_att binary frames, each holding one attachment */
	size_t n_att;
} env_body;

typedef struct env_in {
	atomic_int refs;       /* references beyond the first (env_in_ref); 0 once parsed */
	env_type type;
	env_target target;     /* EMIT, JOIN, LEAVE, DISCONNECT, FETCH */

	/* EMIT */
	char *event;
	bool volatile_;
	env_body body;         /* EMIT: ["event", ...data]; ACK: [...data] */
	/* EMIT without ack: the complete frames to queue to every target, encoded once:
	 * frames[0] = "4" + EVENT/BINARY_EVENT text, frames[1..] = attachments (refs
	 * shared with body.att). NULL/0 when the emit asks for acks. */
	gw_frame **frames;
	size_t n_frames;
	bool has_ack;          /* EMIT with ack: reply_to/id/timeout_ms below */
	int timeout_ms;        /* default 5000 */

	/* JOIN / LEAVE: the rooms to add or remove */
	char **change;
	size_t n_change;

	/* DISCONNECT */
	bool close;

	/* EMIT-with-ack, FETCH: where to answer; ACK, CONNECT_RESULT, FETCH, EMIT-ack: id */
	char *reply_to;
	char *id;

	/* CONNECT_RESULT */
	bool ok;
	char *data_json;       /* ok: socket data (JSON text) or NULL */
	char *error_json;      /* !ok: {"message":..,"data":..} ready for CONNECT_ERROR */
} env_in;

/*
 * Parse one envelope. On error returns -GW_EINVAL and writes a short reason into err
 * (e.g. "missing \"type\"", "emit: \"event\" must be a string"). max_payload bounds
 * the decoded size (-GW_ETOOBIG).
 *
 * Details of the contract (see also the top of envelope.c):
 *  - every failure (-GW_EINVAL, -GW_ETOOBIG, -GW_ENOMEM) writes a reason into err,
 *    prefixed "<type>: " once the type is known (truncated to err_len; err may be
 *    NULL), and leaves *out NULL;
 *  - lookups are case-sensitive; unknown members are ignored; JSON null = absent;
 *  - "id" may be a non-empty string or an integer (|n| ≤ 2^53); integers become their
 *    decimal text ("7"). Larger numbers are refused: cJSON has already rounded them,
 *    so backends should send ids as strings;
 *  - emit: "event" must not be a reserved name (gw_event_reserved); "data" absent =
 *    no arguments; at most SIO_MAX_ATTACHMENTS $binary values (-GW_ETOOBIG);
 *  - connect_result with "ok": false: "error" may be an object {"message","data"} or a
 *    bare message string; the message defaults to "Not authorized";
 *  - max_payload: body JSON length plus decoded binary bytes; 0 = no limit;
 *  - strings are malloc'd (free() them only through env_in_free).
 */
int env_parse(const void *buf, size_t len, size_t max_payload, env_in **out, char *err,
	      size_t err_len);
/* The same through a cJSON tree always. env_parse takes a plain emit (no ack, no
 * $binary, no escaped strings) the fast way, a strict scan of the text without a tree,
 * and everything else this way; tests and the fuzzer compare the two. */
int env_parse_tree(const void *buf, size_t len, size_t max_payload, env_in **out, char *err,
		   size_t err_len);
/* The fast way alone: 0 with *out, or 1 when it leaves the envelope to the tree. */
int env_parse_fast(const void *buf, size_t len, size_t max_payload, env_in **out);
/* Another reference to e (the loops of engine.workers share one parsed envelope; any
 * thread). env_in_free drops one; the last frees. */
env_in *env_in_ref(env_in *e);
void env_in_free(env_in *e);

/*
 * A raw route message (no envelope) as a ready emit: `event` to `room` of `nsp` (whole
 * namespace when room is NULL), the body as the single argument — parsed JSON when it
 * is valid JSON, else a string when valid UTF-8 (without NUL), else binary.
 */
int env_from_route(const char *nsp, const char *event, const char *room, const void *body,
		   size_t len, size_t max_payload, env_in **out);

/* ---- outbound ----
 * Each returns unformatted JSON text to free with free(), or NULL on -GW_ENOMEM or a
 * NULL required argument (env_build_event: also when args is not an array starting
 * with a string, or a placeholder has no attachment). */

/* {"type":"connect","nsp","sid","node","handshake":{...}[,"claims":{...}][,"id","reply_to"]}.
 * handshake_json is the handshake object as JSON text (headers, query, auth, address,
 * ...), inserted as it is; NULL gives {}. claims_json (auth: jwt, else NULL): the
 * token's claims, a JSON object as text, inserted as it is. recovered: the socket came
 * back ("recovered":true, and "data": data_json, its data, when not NULL). */
char *env_build_connect(const char *nsp, const char *sid, const char *node,
			const char *handshake_json, const char *claims_json, const char *id,
			const char *reply_to, bool recovered, const char *data_json);
/* {"type":"disconnect","nsp","sid","node","reason","rooms":[...][,"recoverable":true]} */
char *env_build_disconnect(const char *nsp, const char *sid, const char *node,
			   const char *reason, const char *const *rooms, size_t n_rooms, bool recoverable);
/* {"type":"event","nsp","sid","node","event","data":[...][,"ack":{"id","reply_to"}]}
 * args is the packet's array (event name first) with placeholders; text, when not
 * NULL, is that array's JSON text as the client sent it (a packet without
 * attachments): "data" is then spliced from it verbatim (numbers are never printed
 * again from doubles). att/att_len are the attachments; they become {"$binary":..}.
 * ack_id NULL = no ack. */
char *env_build_event(const char *nsp, const char *sid, const char *node, const cJSON *args,
		      const char *text, size_t text_len, const uint8_t *const *att, const size_t *att_len,
		      unsigned n_att, const char *ack_id, const char *reply_to);
/* {"type":"ack","id","sid","data":[...]}: one client's answer to an emit-with-ack
 * (text: as for env_build_event, the whole array). */
char *env_build_client_ack(const char *id, const char *sid, const cJSON *args, const char *text,
			   size_t text_len, const uint8_t *const *att, const size_t *att_len, unsigned n_att);
/* {"type":"ack_done","id","node","acked":N,"timed_out":M} */
char *env_build_ack_done(const char *id, const char *node, size_t acked, size_t timed_out);
/* {"type":"sockets","id","node","sockets":[...]}; takes ownership of sockets. */
char *env_build_sockets(const char *id, const char *node, cJSON *sockets);
/* {"type":"join-room"|"leave-room",...} */
/* sid NULL for create-room / delete-room (they concern the room on this node). */
char *env_build_room(const char *type, const char *nsp, const char *sid, const char *node,
		     const char *room);

#endif
