/*
 * sio.h — Socket.IO v5 server on top of eio.h: namespaces, sockets, rooms, acks.
 * Knows nothing of topics: what sockets do is reported to a handler (the bus bridge),
 * and the bridge drives sockets through the functions below.
 *
 * Service-thread only. Sockets are found by id (sio_socket_find) from data that
 * crossed threads; a socket pointer is valid until on_disconnect returns.
 */
#ifndef GW_SIO_H
#define GW_SIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "config/config.h"
#include "eio/eio.h"
#include "util/frame.h"
#include "util/metric.h"
#include "util/timer.h"

typedef struct sio_server sio_server;
typedef struct sio_socket sio_socket;

enum { SIO_SESSION_LIVE = 1, SIO_SESSION_LOST, SIO_SESSION_GONE };

/* A recoverable socket's snapshot (all borrowed). gen grows by one with each recovery:
 * the higher wins when two nodes speak of one pid. */
typedef struct sio_session_info {
	const char *pid, *sid, *nsp, *data; /* data: JSON text or NULL */
	const char *const *rooms;            /* its own id room included */
	size_t n_rooms;
	uint32_t gen;
	bool copy; /* sio_recovery_remote: another loop of the process counts it (metrics) */
} sio_session_info;

typedef struct sio_handler {
	void *ctx;
	/* A socket asked to join a namespace. With auth: none it is admitted already;
	 * with auth: backend it is pending (sio_socket_pending) until sio_socket_admit or
	 * sio_socket_reject, or its auth timeout sends CONNECT_ERROR "auth timeout". A
	 * pending socket is in no room, its events are dropped, and on_disconnect is only
	 * reported for admitted sockets. */
	void (*on_connect)(void *ctx, sio_socket *s);
	/* An EVENT / BINARY_EVENT with all attachments. args: the packet array (event name
	 * first) with placeholders; text: that array as the client sent it (NULL for a
	 * binary packet), to pass on verbatim; att: the attachments. ack_id: SIO_NO_ID or
	 * the client's ack id. All borrowed for the call. */
	void (*on_event)(void *ctx, sio_socket *s, const cJSON *args, const char *text, size_t text_len,
			 const uint8_t *const *att, const size_t *att_len, unsigned n_att, int64_t ack_id);
	/* The socket is leaving (client DISCONNECT, connection closed, server disconnect).
	 * Its rooms are still readable during the call. */
	void (*on_disconnect)(void *ctx, sio_socket *s, const char *reason);
	/* Room membership changed (SIO_ROOM_*). A socket's own id room is not reported.
	 * CREATE comes before the first JOIN, DELETE after the last LEAVE. May be NULL. */
	void (*on_room)(void *ctx, sio_socket *s, const char *room, int event);
	/* The socket was admitted: its CONNECT is queued (with auth: none, just before
	 * on_connect). May be NULL. */
	void (*on_admit)(void *ctx, sio_socket *s);
	/* The socket's connection moved from polling to websocket. May be NULL. */
	void (*on_upgrade)(void *ctx, sio_socket *s);
	/* Recovery: what a socket would come back to, for the other nodes (SIO_SESSION_*):
	 * LIVE at admission and (at most once a second) after its rooms changed, LOST when
	 * it was lost for a recoverable reason, GONE when it left for good. May be NULL. */
	void (*on_session)(void *ctx, int kind, const sio_session_info *info);
} sio_handler;

enum { SIO_ROOM_CREATE = 1, SIO_ROOM_JOIN, SIO_ROOM_LEAVE, SIO_ROOM_DELETE };

/* timers: the service loop's (connect, auth and ack timeouts run on it). */
sio_server *sio_server_create(const gw_config *cfg, gw_timers *timers, const sio_handler *h);
void sio_server_destroy(sio_server *srv);
/* The handler to give the Engine.IO server. */
eio_handler sio_server_eio_handler(sio_server *srv);

sio_socket *sio_socket_find(sio_server *srv, const char *id, size_t len);
const char *sio_socket_id(const sio_socket *s);
/* The namespace's name (a dynamic one's real name) and its configuration entry. */
const char *sio_socket_nsp(const sio_socket *s);
const gw_nsp_config *sio_socket_nsp_config(const sio_socket *s);
bool sio_socket_pending(const sio_socket *s);
/* Connection state recovery: the socket came back with its id, rooms, data and the
 * packets it missed; or (during on_disconnect) it may come back. */
bool sio_socket_recovered(const sio_socket *s);
bool sio_socket_recoverable(const sio_socket *s);
/* During on_disconnect: the socket came back on another node while its dead connection
 * was still held here; this copy leaves (report nothing: it lives on there). */
bool sio_socket_moved(const sio_socket *s);
/* Admit a pending socket: it joins its own room and gets CONNECT. data_json (may be
 * NULL): the socket's data, returned by sio_socket_data. */
int sio_socket_admit(sio_socket *s, const char *data_json);
/* Refuse a pending socket: CONNECT_ERROR with error_json ({"message","data"}), then
 * the socket is gone (no on_disconnect). */
void sio_socket_reject(sio_socket *s, const char *error_json);
/* The CONNECT packet's payload (socket.io's handshake.auth), or NULL. */
const cJSON *sio_socket_auth(const sio_socket *s);
/* The Engine.IO session the socket rides on (its sid, transport). */
eio_session *sio_socket_session(const sio_socket *s);
/* The data a backend attached on admission (JSON text) or NULL. */
const char *sio_socket_data(const sio_socket *s);
/* auth: jwt — the verified token's claims (JSON object text), else NULL. */
const char *sio_socket_claims(const sio_socket *s);
/* A pointer for the handler (NULL at first); the handler frees what it holds in
 * on_disconnect. */
void *sio_socket_user(const sio_socket *s);
void sio_socket_set_user(sio_socket *s, void *user);
/* The socket.io handshake (engine handshake + "auth") as JSON text; free() it. NULL on
 * out of memory. */
char *sio_socket_handshake(const sio_socket *s);
/* Rooms of the socket (its own id included). */
void sio_socket_rooms(const sio_socket *s, void (*cb)(const char *room, void *arg), void *arg);

/* Queue prebuilt frames to every socket of nsp in rooms (all when n_rooms is 0) and
 * in none of except, each once. Returns the number of sockets targeted. */
size_t sio_broadcast(sio_server *srv, const char *nsp, const char *const *rooms, size_t n_rooms,
		     const char *const *except, size_t n_except, gw_frame *const *frames,
		     size_t n_frames, bool volatile_);
/* The same for a packet read at bus position pos (ABI 1.2, NULL: none): with recovery
 * on, its offset is pos, which every node that read it knows. */
size_t sio_broadcast_at(sio_server *srv, const char *nsp, const char *const *rooms, size_t n_rooms,
			const char *const *except, size_t n_except, gw_frame *const *frames, size_t n_frames,
			bool volatile_, const char *pos);
/* Encode an EVENT (json: the array, event name first, no attachments) once and queue
 * it as sio_broadcast does. Returns the number of sockets targeted. */
size_t sio_emit(sio_server *srv, const char *nsp, const char *const *rooms, size_t n_rooms,
		const char *const *except, size_t n_except, const char *json, size_t json_len);
/* The same to one socket; < 0 on error. */
int sio_socket_emit(sio_socket *s, const char *json, size_t json_len);
/* Each namespace with sockets or listed by name (dynamic ones by their real name) and
 * its admitted sockets. */
void sio_namespaces(const sio_server *srv, void (*cb)(const char *name, size_t n_sockets, void *arg), void *arg);

/* Answer the client's ack `id` with the JSON array `json` and attachments. */
int sio_socket_ack(sio_socket *s, int64_t id, const char *json, size_t json_len,
		   gw_frame *const *att, size_t n_att);

/* The target sockets (same selection as sio_broadcast) in a malloc'd array the caller
 * frees; *out is NULL when none. Returns the count. */
size_t sio_select(sio_server *srv, const char *nsp, const char *const *rooms, size_t n_rooms,
		  const char *const *except, size_t n_except, sio_socket ***out);
/* The same selection's socket ids, for acting on sockets when one action may remove
 * others (a disconnect with close): find each again with sio_socket_find. One
 * allocation (*out, NULL when none) the caller frees. Returns the count. */
size_t sio_select_ids(sio_server *srv, const char *nsp, const char *const *rooms, size_t n_rooms,
		      const char *const *except, size_t n_except, char ***out);
/* Room membership. Return 1 changed, 0 unchanged, < 0 error. */
int sio_socket_join(sio_socket *s, const char *room);
int sio_socket_leave(sio_socket *s, const char *room);
/* Server-side disconnect: sends DISCONNECT, removes the socket (on_disconnect with
 * "server namespace disconnect"); close also ends the whole Engine.IO connection once
 * queued packets are out. s is invalid afterwards. */
void sio_socket_disconnect(sio_socket *s, bool close);

/* Emit with acknowledgements: each target gets the packet with its own ack id. */
typedef struct sio_ack_handler {
	void *arg;
	/* One client answered (args: its ACK array with placeholders; text: as sent, NULL
	 * for a binary ack; att: attachments). */
	void (*on_ack)(void *arg, sio_socket *s, const cJSON *args, const char *text, size_t text_len,
		       const uint8_t *const *att, const size_t *att_len, unsigned n_att);
	/* Every target answered, left, or the timeout passed; arg is not used afterwards. */
	void (*on_done)(void *arg, size_t acked, size_t timed_out);
} sio_ack_handler;

#define SIO_MAX_CLIENT_ATTACHMENTS 10 /* per client packet, as socket.io-parser */
#define SIO_MAX_PENDING_ACKS 1024 /* per socket; beyond, the target counts as timed out */

/* json: the EVENT array (event name first) with placeholders; att: its attachments
 * (shared by every target). Returns the number of sockets targeted. on_done is
 * always called exactly once (possibly before this returns). */
size_t sio_emit_with_ack(sio_server *srv, const char *nsp, const char *const *rooms,
			 size_t n_rooms, const char *const *except, size_t n_except,
			 const char *json, size_t json_len, gw_frame *const *att, size_t n_att,
			 bool volatile_, uint32_t timeout_ms, const sio_ack_handler *h);

/* Recovery: another node's snapshot (SIO_SESSION_LIVE / LOST: kept for the window from
 * at_ms, wall clock, unless one with a higher gen is held; GONE: dropped). A client may
 * then come back here. Returns 0, or < 0 (off, out of memory). */
int sio_recovery_remote(sio_server *srv, int kind, const sio_session_info *info, int64_t at_ms);
/* Snapshots leave this server (on_session is called): for the other service loops of
 * the process (engine.workers) and, with nodes, for other nodes (not the memory bus),
 * where a socket closed by this node's shutdown is recoverable too. */
void sio_recovery_set_shared(sio_server *srv, bool shared, bool nodes);
/* engine.workers: the servers of a process's loops count their dynamic namespaces
 * together (sio_dynamic_namespaces: a name alive on several loops once). Before they
 * run; 0 or -GW_ENOMEM. */
int sio_link(sio_server *const *servers, size_t n);

/* Sockets and rooms by namespace (gauges): a gw_metric_source. */
void sio_metrics(void *srv, gw_metric_sink *sink);

#endif
