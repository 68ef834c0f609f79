#include "bus/rate.h"

#include <stdlib.h>
#include <string.h>

#define UNIT 1000000 /* a token in micro-tokens: a rate per second refills per µs */

typedef struct bucket {
	int64_t tokens; /* micro-tokens */
	uint64_t at_us; /* when last refilled */
} bucket;

struct gw_rate {
	bucket events, bytes;
	bucket over[]; /* one per limits.events entry */
};

bool gw_limits_on(const gw_limits *l)
{
	if (l->events_per_s || l->bytes_per_s)
		return true;
	for (size_t i = 0; i < l->n_events; i++)
		if (l->events[i].events_per_s)
			return true;
	return false;
}

static int64_t capacity(int64_t rate, int64_t burst) { return (burst ? burst : rate) * (int64_t)UNIT; }

/* Refill b (rate per second, capacity cap micro-tokens) up to now. */
static void refill(bucket *b, int64_t rate, int64_t cap, uint64_t now_us)
{
	uint64_t dt = now_us > b->at_us ? now_us - b->at_us : 0;
	b->at_us = now_us;
	if (dt >= (uint64_t)((cap - b->tokens) / rate) + 1)
		b->tokens = cap; /* full; and no overflow from a long idle time */
	else
		b->tokens += (int64_t)dt * rate;
	if (b->tokens > cap)
		b->tokens = cap;
}

static gw_rate *rate_new(const gw_limits *l, uint64_t now_us)
{
	gw_rate *r = calloc(1, sizeof *r + l->n_events * sizeof r->over[0]);
	if (!r)
		return NULL;
	r->events = (bucket){capacity(l->events_per_s, l->burst), now_us};
	r->bytes = (bucket){capacity((int64_t)l->bytes_per_s, (int64_t)l->bytes_burst), now_us};
	for (size_t i = 0; i < l->n_events; i++)
		r->over[i] = (bucket){capacity(l->events[i].events_per_s, l->events[i].burst), now_us};
	return r;
}

bool gw_rate_allow(gw_rate **state, const gw_limits *l, const char *event, size_t bytes, uint64_t now_us)
{
	if (!*state && !(*state = rate_new(l, now_us)))
		return true;
	gw_rate *r = *state;
	/* the event's bucket: its own when listed, else the namespace's */
	bucket *eb = &r->events;
	int64_t rate = l->events_per_s, burst = l->burst;
	for (size_t i = 0; i < l->n_events; i++)
		if (strcmp(l->events[i].event, event) == 0) {
			eb = &r->over[i];
			rate = l->events[i].events_per_s;
			burst = l->events[i].burst;
			break;
		}
	int64_t ecap = capacity(rate, burst), bcap = capacity((int64_t)l->bytes_per_s, (int64_t)l->bytes_burst);
	int64_t bcost = (int64_t)(bytes > (size_t)1 << 30 ? (size_t)1 << 30 : bytes) * UNIT;
	if (rate)
		refill(eb, rate, ecap, now_us);
	if (l->bytes_per_s)
		refill(&r->bytes, (int64_t)l->bytes_per_s, bcap, now_us);
	if ((rate && eb->tokens < UNIT) || (l->bytes_per_s && r->bytes.tokens < bcost))
		return false;
	if (rate)
		eb->tokens -= UNIT;
	if (l->bytes_per_s)
		r->bytes.tokens -= bcost;
	return true;
}

void gw_rate_free(gw_rate *state) { free(state); }
