#include "timer.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ev.h>

#include "util/log.h"

struct gw_timers {
	struct ev_loop *loop;
	ev_timer ev;       /* armed for the heap's root */
	gw_timer **heap;
	size_t len, cap;
};

uint64_t gw_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t gw_now_ms(void) { return gw_now_us() / 1000u; }

int64_t gw_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void place(gw_timers *h, size_t i, gw_timer *t)
{
	h->heap[i] = t;
	t->slot = i + 1;
}

static void sift_up(gw_timers *h, size_t i)
{
	gw_timer *t = h->heap[i];
	while (i) {
		size_t p = (i - 1) / 2;
		if (h->heap[p]->due_us <= t->due_us)
			break;
		place(h, i, h->heap[p]);
		i = p;
	}
	place(h, i, t);
}

static void sift_down(gw_timers *h, size_t i)
{
	gw_timer *t = h->heap[i];
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		uint64_t best = t->due_us;
		if (l < h->len && h->heap[l]->due_us < best)
			m = l, best = h->heap[l]->due_us;
		if (l + 1 < h->len && h->heap[l + 1]->due_us < best)
			m = l + 1;
		if (m == i)
			break;
		place(h, i, h->heap[m]);
		i = m;
	}
	place(h, i, t);
}

static void heap_remove(gw_timers *h, gw_timer *t)
{
	size_t i = t->slot - 1;
	t->slot = 0;
	gw_timer *last = h->heap[--h->len];
	if (i == h->len)
		return;
	place(h, i, last);
	sift_down(h, i);
	sift_up(h, last->slot - 1);
}

/* Keep the one loop timer on the earliest deadline. */
static void rearm(gw_timers *h)
{
	if (!h->loop)
		return;
	ev_timer_stop(h->loop, &h->ev);
	if (!h->len)
		return;
	uint64_t now = gw_now_us(), due = h->heap[0]->due_us;
	ev_timer_set(&h->ev, due > now ? (double)(due - now) / 1e6 : 0., 0.);
	ev_timer_start(h->loop, &h->ev);
}

static void fire(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)revents;
	gw_timers *h = w->data;
	uint64_t now = gw_now_us();
	/* pop before calling: a callback may start or stop any timer, itself included */
	while (h->len && h->heap[0]->due_us <= now) {
		gw_timer *t = h->heap[0];
		heap_remove(h, t);
		t->cb(t);
	}
	rearm(h);
}

gw_timers *gw_timers_create(void *ev_loop)
{
	gw_timers *h = calloc(1, sizeof *h);
	if (!h)
		return NULL;
	h->loop = ev_loop;
	ev_timer_init(&h->ev, fire, 0., 0.);
	h->ev.data = h;
	return h;
}

void gw_timers_destroy(gw_timers *h)
{
	if (!h)
		return;
	ev_timer_stop(h->loop, &h->ev);
	for (size_t i = 0; i < h->len; i++)
		h->heap[i]->slot = 0;
	free(h->heap);
	free(h);
}

void gw_timer_start(gw_timers *h, gw_timer *t, uint32_t ms, gw_timer_cb cb)
{
	t->cb = cb;
	t->due_us = gw_now_us() + (uint64_t)ms * 1000u;
	bool was_root = t->slot == 1;
	if (t->slot) {
		size_t i = t->slot - 1;
		sift_down(h, i);
		sift_up(h, t->slot - 1);
	} else {
		if (h->len == h->cap) {
			size_t cap = h->cap ? h->cap * 2 : 256;
			gw_timer **v = realloc(h->heap, cap * sizeof *v);
			if (!v) {
				gw_err("timer heap: out of memory");
				return;
			}
			h->heap = v;
			h->cap = cap;
		}
		place(h, h->len++, t);
		sift_up(h, h->len - 1);
	}
	if (t->slot == 1 || was_root)
		rearm(h);
}

void gw_timer_stop(gw_timers *h, gw_timer *t)
{
	if (!t->slot)
		return;
	bool was_root = t->slot == 1;
	heap_remove(h, t);
	if (was_root)
		rearm(h);
}
