/*
 * timer.h — one-shot timers on the service loop (libwebsockets' sorted-usec list),
 * behind a small struct so modules above the net layer need not include lws.
 * Service-thread only. A gw_timer is embedded in its owner; stop it before freeing.
 */
#ifndef GW_TIMER_H
#define GW_TIMER_H

#include <stdint.h>

typedef struct gw_timer gw_timer;
typedef void (*gw_timer_cb)(gw_timer *t);

struct gw_timer {
	_Alignas(8) unsigned char sul[64]; /* lws_sorted_usec_list_t lives here (first) */
	gw_timer_cb cb;
	void *ctx;                         /* free for the owner */
};

/* Bind timers to the service loop (the lws context). Called once at startup. */
void gw_timer_init(void *lws_context);
/* (Re)arm t to fire once after ms milliseconds. */
void gw_timer_start(gw_timer *t, uint32_t ms, gw_timer_cb cb);
void gw_timer_stop(gw_timer *t);
/* Monotonic milliseconds. */
uint64_t gw_now_ms(void);

#endif
