#include "timer.h"

#include <assert.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>

static struct lws_context *g_ctx;

static_assert(sizeof(lws_sorted_usec_list_t) <= sizeof(((gw_timer *)0)->sul), "gw_timer.sul too small");
static_assert(offsetof(gw_timer, sul) == 0, "sul must be first");

void gw_timer_init(void *lws_context) { g_ctx = lws_context; }

static void fire(lws_sorted_usec_list_t *sul)
{
	gw_timer *t = (gw_timer *)(void *)sul;
	t->cb(t);
}

void gw_timer_start(gw_timer *t, uint32_t ms, gw_timer_cb cb)
{
	t->cb = cb;
	lws_sul_schedule(g_ctx, 0, (lws_sorted_usec_list_t *)(void *)t->sul, fire,
			 (lws_usec_t)ms * LWS_US_PER_MS);
}

void gw_timer_stop(gw_timer *t)
{
	lws_sorted_usec_list_t *sul = (lws_sorted_usec_list_t *)(void *)t->sul;
	if (g_ctx)
		lws_sul_cancel(sul);
}

uint64_t gw_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
