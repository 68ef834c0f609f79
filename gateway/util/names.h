/*
 * names.h — names the Socket.IO protocol reserves, known to every layer that checks
 * them: the codec (client packets), the envelopes (backend emits) and the config
 * (route events), so it sits below them all.
 */
#ifndef GW_NAMES_H
#define GW_NAMES_H

#include <stdbool.h>

/* Event names socket.io reserves ("connect", "connect_error", "disconnect",
 * "disconnecting", "newListener", "removeListener"): refused from clients, the bus and
 * the configuration. */
bool gw_event_reserved(const char *name);

#endif
