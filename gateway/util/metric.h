/*
 * metric.h — how a layer shows its counters, without knowing who reads them.
 *
 * Each layer keeps its own counters and offers a source: a function that puts each of
 * them into a sink, one sample at a time. The metrics page (http/metrics.h) is one
 * sink: it sums samples of the same name and labels from several sources (two Engine.IO
 * servers, several loops) and prints Prometheus text. Service thread only, like the
 * counters the sources read (atomic ones excepted).
 */
#ifndef GW_METRIC_H
#define GW_METRIC_H

#include <stddef.h>
#include <stdint.h>

typedef enum gw_metric_type { GW_METRIC_COUNTER, GW_METRIC_GAUGE } gw_metric_type;

typedef struct gw_metric_sink gw_metric_sink;
struct gw_metric_sink {
	/* One sample, name{labels} value. labels: `key="value"` pairs joined by commas, or
	 * NULL. All strings are copied (a source may build them on its stack). */
	void (*sample)(gw_metric_sink *s, const char *name, gw_metric_type type, const char *help,
		       const char *labels, int64_t value);
};

/* A layer's source: puts its samples into sink. */
typedef void (*gw_metric_source)(void *ctx, gw_metric_sink *sink);

static inline void gw_metric_counter(gw_metric_sink *s, const char *name, const char *help, uint64_t v)
{
	s->sample(s, name, GW_METRIC_COUNTER, help, NULL, (int64_t)v);
}

static inline void gw_metric_gauge(gw_metric_sink *s, const char *name, const char *help, int64_t v)
{
	s->sample(s, name, GW_METRIC_GAUGE, help, NULL, v);
}

#endif
