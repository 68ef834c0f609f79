/*
 * metrics.h — GET /metrics: the registered sources' samples as Prometheus text.
 *
 * Each layer owns its counters (net_metrics, eio_metrics, sio_metrics, gw_bus_metrics,
 * the API's own) and main.c registers them here. Samples of the same name and labels
 * from several sources are summed, so two Engine.IO servers (or several loops) show as
 * one gateway. Service thread only.
 */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include "util/buf.h"
#include "util/metric.h"

typedef struct gw_metrics gw_metrics;

gw_metrics *gw_metrics_create(void);
void gw_metrics_destroy(gw_metrics *m);
/* Read fn(ctx, ...) on every render. 0 or -GW_EFULL. */
int gw_metrics_add(gw_metrics *m, gw_metric_source fn, void *ctx);
/* Every source's samples into sink: itself a gw_metric_source (another loop's sources,
 * engine.workers). */
void gw_metrics_collect(void *metrics, gw_metric_sink *sink);
/* Append every source's samples in Prometheus text format (0.0.4). 0 or -GW_ENOMEM. */
int gw_metrics_render(gw_metrics *m, gw_buf *out);

#endif
