/*
 * metrics.h — the gateway's counters, rendered as Prometheus text on GET /metrics.
 * Fields without _Atomic are touched only by the service thread; atomic ones are also
 * bumped by plugin threads (bus deliveries).
 */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "util/buf.h"

/* Why a connection (Engine.IO session) ended. */
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

/* Kinds of bus topics, for bus message counters. */
typedef enum gw_topic_kind {
	GW_TOPIC_IN = 0,   /* sio.in (gateway → backends) */
	GW_TOPIC_OUT,      /* sio.out (backends → gateways) */
	GW_TOPIC_REPLY,    /* sio.reply.<node> */
	GW_TOPIC_ROUTE,    /* raw route topics */
	GW_TOPIC_API,      /* HTTP API publish / SSE */
	GW_TOPIC__COUNT
} gw_topic_kind;

typedef struct gw_metrics {
	int64_t conn_polling, conn_websocket;    /* gauges: open sessions by transport */
	uint64_t sessions_opened;
	uint64_t packets_in, packets_out;        /* Engine.IO packets */
	uint64_t bytes_in, bytes_out;
	uint64_t ws_writes;                      /* coalesced websocket writes (one send() each) */
	uint64_t ws_short_writes;                /* ... the socket took only part of */
	uint64_t loop_turns;                     /* service loop iterations */
	uint64_t eio_errors[6];                  /* Engine.IO HTTP errors by code */
	uint64_t closes[GW_CLOSE__COUNT];
	uint64_t drops_volatile;                 /* volatile packets dropped */
	uint64_t events_rejected;                /* client events not in the allowlist */
	uint64_t upgrades;
	uint64_t http_requests;
	uint64_t http_refused;                   /* requests net refused (400/408/413/431/501/505) */
	uint64_t http_timeouts;                  /* ... of them 408: not whole within request_timeout_ms */
	uint64_t ws_protocol_errors;             /* websockets failed for breaking RFC 6455 (1002/1007/1009) */
	int64_t tcp_open;                        /* gauge: accepted TCP connections open */
	int64_t tcp_max;                         /* their ceiling (listen.max_connections / fd limit) */
	uint64_t tcp_refused;                    /* connections refused at that ceiling */
	_Atomic uint64_t bus_in[GW_TOPIC__COUNT];  /* messages received from the bus */
	_Atomic uint64_t bus_out[GW_TOPIC__COUNT]; /* messages published to the bus */
	_Atomic uint64_t bus_publish_errors;
	_Atomic uint64_t malformed_envelopes;
	_Atomic uint64_t inbound_dropped;          /* loop's inbound queue full */
	uint64_t sse_dropped;
} gw_metrics;

extern gw_metrics gw_stats;

const char *gw_close_reason_str(gw_close_reason r);
/* Append the static counters in Prometheus text format. */
void gw_metrics_render(gw_buf *out);

#endif
