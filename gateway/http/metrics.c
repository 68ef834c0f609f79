#include "metrics.h"

gw_metrics gw_stats;

static const char *const CLOSE_NAMES[GW_CLOSE__COUNT] = {
	"transport close", "transport error", "ping timeout", "parse error",
	"payload too large", "queue overflow", "connect timeout", "server disconnect",
	"server shutting down",
};
static const char *const TOPIC_NAMES[GW_TOPIC__COUNT] = {"in", "out", "reply", "route", "api"};

const char *gw_close_reason_str(gw_close_reason r)
{
	return r < GW_CLOSE__COUNT ? CLOSE_NAMES[r] : "unknown";
}

static void counter(gw_buf *o, const char *name, const char *help, uint64_t v)
{
	gw_buf_printf(o, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
		      (unsigned long long)v);
}

void gw_metrics_render(gw_buf *o)
{
	gw_metrics *m = &gw_stats;
	gw_buf_printf(o, "# HELP sio_connections Open Engine.IO sessions by transport.\n"
			 "# TYPE sio_connections gauge\n"
			 "sio_connections{transport=\"polling\"} %lld\n"
			 "sio_connections{transport=\"websocket\"} %lld\n",
		      (long long)m->conn_polling, (long long)m->conn_websocket);
	gw_buf_printf(o, "# HELP sio_tcp_connections Accepted TCP connections open (all kinds).\n"
			 "# TYPE sio_tcp_connections gauge\nsio_tcp_connections %lld\n"
			 "# HELP sio_tcp_connections_max Open connections beyond which new ones are refused.\n"
			 "# TYPE sio_tcp_connections_max gauge\nsio_tcp_connections_max %lld\n",
		      (long long)m->tcp_open, (long long)m->tcp_max);
	counter(o, "sio_tcp_refused_total", "Connections refused (503) because sio_tcp_connections_max was reached.",
		m->tcp_refused);
	counter(o, "sio_sessions_opened_total", "Engine.IO sessions opened.", m->sessions_opened);
	counter(o, "sio_upgrades_total", "Polling sessions upgraded to websocket.", m->upgrades);
	counter(o, "sio_packets_in_total", "Engine.IO packets received.", m->packets_in);
	counter(o, "sio_packets_out_total", "Engine.IO packets sent.", m->packets_out);
	counter(o, "sio_bytes_in_total", "Payload bytes received.", m->bytes_in);
	counter(o, "sio_bytes_out_total", "Payload bytes sent.", m->bytes_out);
	counter(o, "sio_websocket_writes_total",
		"Coalesced websocket writes: all packets queued to a connection in one loop turn, one send().",
		m->ws_writes);
	counter(o, "sio_websocket_short_writes_total",
		"Coalesced websocket writes the socket took only part of (the rest waits for it to drain).",
		m->ws_short_writes);
	counter(o, "sio_loop_turns_total", "Service loop iterations.", m->loop_turns);
	gw_buf_puts(o, "# HELP sio_engine_errors_total Engine.IO error replies by code.\n"
		       "# TYPE sio_engine_errors_total counter\n");
	for (int i = 0; i < 6; i++)
		gw_buf_printf(o, "sio_engine_errors_total{code=\"%d\"} %llu\n", i,
			      (unsigned long long)m->eio_errors[i]);
	gw_buf_puts(o, "# HELP sio_closes_total Engine.IO sessions closed by reason.\n"
		       "# TYPE sio_closes_total counter\n");
	for (int i = 0; i < GW_CLOSE__COUNT; i++)
		gw_buf_printf(o, "sio_closes_total{reason=\"%s\"} %llu\n", CLOSE_NAMES[i],
			      (unsigned long long)m->closes[i]);
	counter(o, "sio_dropped_volatile_total", "Volatile packets dropped (busy connection).",
		m->drops_volatile);
	counter(o, "sio_events_rejected_total", "Client events not in the namespace allowlist.",
		m->events_rejected);
	counter(o, "sio_http_requests_total", "HTTP requests served.", m->http_requests);
	counter(o, "sio_http_refused_total",
		"Requests refused as malformed, oversized or too slow (400, 408, 413, 431, 501, 505; the connection is closed).",
		m->http_refused);
	counter(o, "sio_http_timeouts_total", "Requests not received whole within listen.request_timeout_ms (408).",
		m->http_timeouts);
	counter(o, "sio_websocket_protocol_errors_total",
		"Websockets closed for breaking RFC 6455 (1002 protocol error, 1007 invalid UTF-8, 1009 too big).",
		m->ws_protocol_errors);
	gw_buf_puts(o, "# HELP sio_bus_messages_in_total Bus messages received by topic kind.\n"
		       "# TYPE sio_bus_messages_in_total counter\n");
	for (int i = 0; i < GW_TOPIC__COUNT; i++)
		gw_buf_printf(o, "sio_bus_messages_in_total{kind=\"%s\"} %llu\n", TOPIC_NAMES[i],
			      (unsigned long long)atomic_load(&m->bus_in[i]));
	gw_buf_puts(o, "# HELP sio_bus_messages_out_total Bus messages published by topic kind.\n"
		       "# TYPE sio_bus_messages_out_total counter\n");
	for (int i = 0; i < GW_TOPIC__COUNT; i++)
		gw_buf_printf(o, "sio_bus_messages_out_total{kind=\"%s\"} %llu\n", TOPIC_NAMES[i],
			      (unsigned long long)atomic_load(&m->bus_out[i]));
	counter(o, "sio_bus_publish_errors_total", "Publishes the bus plugin refused.",
		atomic_load(&m->bus_publish_errors));
	counter(o, "sio_malformed_envelopes_total", "Bus envelopes dropped as malformed.",
		atomic_load(&m->malformed_envelopes));
	counter(o, "sio_inbound_dropped_total", "Bus messages dropped: service loop queue full.",
		atomic_load(&m->inbound_dropped));
	counter(o, "sio_sse_dropped_total", "SSE messages dropped: subscriber too slow.",
		m->sse_dropped);
}
