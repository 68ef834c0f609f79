/*
 * timer.h — one-shot timers on the service loop. Service-thread only.
 *
 * Every session has a heartbeat timer, so there are as many timers as connections and
 * they are re-armed on every pong: they live in a binary min-heap of our own (O(log n)
 * start/stop), and only the earliest one is handed to the libev loop as one ev_timer
 * (lws's own timer list, sorted by linear insertion, made connecting quadratic).
 * A gw_timer is embedded in its owner, zero-initialized; stop it before freeing. The
 * heap (gw_timers) belongs to one service loop; every call names it.
 */
#ifndef GW_TIMER_H
#define GW_TIMER_H

#include <stddef.h>
#include <stdint.h>

typedef struct gw_timer gw_timer;
typedef struct gw_timers gw_timers;
typedef void (*gw_timer_cb)(gw_timer *t);

struct gw_timer {
	uint64_t due_us;   /* monotonic */
	size_t slot;       /* heap index + 1; 0 = not armed */
	gw_timer_cb cb;
	void *ctx;         /* free for the owner */
};

/* The timers of one service loop (a libev struct ev_loop *). Destroying it disarms
 * what is still armed (a later gw_timer_stop of those is a no-op). */
gw_timers *gw_timers_create(void *ev_loop);
void gw_timers_destroy(gw_timers *h);
/* (Re)arm t to fire once after ms milliseconds. */
void gw_timer_start(gw_timers *h, gw_timer *t, uint32_t ms, gw_timer_cb cb);
void gw_timer_stop(gw_timers *h, gw_timer *t);
/* Monotonic milliseconds, microseconds. */
uint64_t gw_now_ms(void);
uint64_t gw_now_us(void);
/* Wall-clock milliseconds since the epoch (what other processes and nodes read). */
int64_t gw_wall_ms(void);

#endif
