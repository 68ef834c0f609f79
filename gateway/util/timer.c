#include "timer.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ev.h>

#include "util/log.h"

static struct ev_loop *g_loop;
static ev_timer g_ev; /* armed for the heap's root */
static gw_timer **g_heap;
static size_t g_len, g_cap;

uint64_t gw_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t gw_now_ms(void) { return gw_now_us() / 1000u; }

static void place(size_t i, gw_timer *t)
{
	g_heap[i] = t;
	t->slot = i + 1;
}

static void sift_up(size_t i)
{
	gw_timer *t = g_heap[i];
	while (i) {
		size_t p = (i - 1) / 2;
		if (g_heap[p]->due_us <= t->due_us)
			break;
		place(i, g_heap[p]);
		i = p;
	}
	place(i, t);
}

static void sift_down(size_t i)
{
	gw_timer *t = g_heap[i];
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		uint64_t best = t->due_us;
		if (l < g_len && g_heap[l]->due_us < best)
			m = l, best = g_heap[l]->due_us;
		if (l + 1 < g_len && g_heap[l + 1]->due_us < best)
			m = l + 1;
		if (m == i)
			break;
		place(i, g_heap[m]);
		i = m;
	}
	place(i, t);
}

static void heap_remove(gw_timer *t)
{
	size_t i = t->slot - 1;
	t->slot = 0;
	gw_timer *last = g_heap[--g_len];
	if (i == g_len)
		return;
	place(i, last);
	sift_down(i);
	sift_up(last->slot - 1);
}

/* Keep the one loop timer on the earliest deadline. */
static void rearm(void)
{
	if (!g_loop)
		return;
	ev_timer_stop(g_loop, &g_ev);
	if (!g_len)
		return;
	uint64_t now = gw_now_us(), due = g_heap[0]->due_us;
	ev_timer_set(&g_ev, due > now ? (double)(due - now) / 1e6 : 0., 0.);
	ev_timer_start(g_loop, &g_ev);
}

static void fire(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)w, (void)revents;
	uint64_t now = gw_now_us();
	/* pop before calling: a callback may start or stop any timer, itself included */
	while (g_len && g_heap[0]->due_us <= now) {
		gw_timer *t = g_heap[0];
		heap_remove(t);
		t->cb(t);
	}
	rearm();
}

void gw_timer_init(void *ev_loop)
{
	if (g_loop)
		ev_timer_stop(g_loop, &g_ev);
	g_loop = ev_loop;
	ev_timer_init(&g_ev, fire, 0., 0.);
	if (!g_loop) {
		for (size_t i = 0; i < g_len; i++)
			g_heap[i]->slot = 0; /* owners may still stop them: a no-op now */
		free(g_heap);
		g_heap = NULL;
		g_len = g_cap = 0;
	}
}

void gw_timer_start(gw_timer *t, uint32_t ms, gw_timer_cb cb)
{
	t->cb = cb;
	t->due_us = gw_now_us() + (uint64_t)ms * 1000u;
	bool was_root = t->slot == 1;
	if (t->slot) {
		size_t i = t->slot - 1;
		sift_down(i);
		sift_up(t->slot - 1);
	} else {
		if (g_len == g_cap) {
			size_t cap = g_cap ? g_cap * 2 : 256;
			gw_timer **h = realloc(g_heap, cap * sizeof *h);
			if (!h) {
				gw_err("timer heap: out of memory");
				return;
			}
			g_heap = h;
			g_cap = cap;
		}
		place(g_len++, t);
		sift_up(g_len - 1);
	}
	if (t->slot == 1 || was_root)
		rearm();
}

void gw_timer_stop(gw_timer *t)
{
	if (!t->slot)
		return;
	bool was_root = t->slot == 1;
	heap_remove(t);
	if (was_root)
		rearm();
}
