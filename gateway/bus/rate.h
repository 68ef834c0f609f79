/*
 * rate.h — flood limits of client events (namespaces[].limits): token buckets per
 * socket, one for events (or, for an event listed in limits.events, its own) and one
 * for bytes. A bucket starts full, refills at its rate and holds at most its burst; an
 * event passes when every bucket it draws on has room, and then takes from each.
 * Pure: the caller passes the time. Service thread only.
 */
#ifndef GW_BUS_RATE_H
#define GW_BUS_RATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

typedef struct gw_rate gw_rate;

/* Whether limits l limit anything. */
bool gw_limits_on(const gw_limits *l);
/* Whether an event of `bytes` may pass now; *state is the socket's (NULL at first: it is
 * allocated, full). Out of memory lets the event pass. */
bool gw_rate_allow(gw_rate **state, const gw_limits *l, const char *event, size_t bytes, uint64_t now_us);
void gw_rate_free(gw_rate *state);

#endif
