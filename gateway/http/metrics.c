#include "http/metrics.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

#define MAX_SOURCES 16

struct gw_metrics {
	struct {
		gw_metric_source fn;
		void *ctx;
	} src[MAX_SOURCES];
	size_t n;
};

typedef struct sample {
	char *name, *help;
	gw_metric_type type;
	char *labels; /* NULL: none */
	int64_t value;
} sample;

/* The sink of one render: samples merged by (name, labels) in first-seen order. */
typedef struct collector {
	gw_metric_sink sink;
	sample *v;
	size_t n, cap;
	bool oom;
} collector;

gw_metrics *gw_metrics_create(void) { return calloc(1, sizeof(gw_metrics)); }
void gw_metrics_destroy(gw_metrics *m) { free(m); }

int gw_metrics_add(gw_metrics *m, gw_metric_source fn, void *ctx)
{
	if (m->n == MAX_SOURCES)
		return -GW_EFULL;
	m->src[m->n].fn = fn;
	m->src[m->n].ctx = ctx;
	m->n++;
	return 0;
}

static bool same_labels(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void put_sample(gw_metric_sink *s, const char *name, gw_metric_type type, const char *help,
		       const char *labels, int64_t value)
{
	collector *c = (collector *)s;
	for (size_t i = 0; i < c->n; i++) {
		if (strcmp(c->v[i].name, name) == 0 && same_labels(c->v[i].labels, labels)) {
			c->v[i].value += value;
			return;
		}
	}
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 64;
		sample *v = realloc(c->v, cap * sizeof *v);
		if (!v) {
			c->oom = true;
			return;
		}
		c->v = v;
		c->cap = cap;
	}
	sample x = {.name = strdup(name), .help = strdup(help ? help : ""), .type = type,
		    .labels = labels ? strdup(labels) : NULL, .value = value};
	if (!x.name || !x.help || (labels && !x.labels)) {
		free(x.name);
		free(x.help);
		free(x.labels);
		c->oom = true;
		return;
	}
	c->v[c->n++] = x;
}

/* Every sample of v[from]'s name, after its HELP and TYPE; marks them printed. */
static int print_family(collector *c, size_t from, bool *done, gw_buf *o)
{
	const sample *f = &c->v[from];
	int err = gw_buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
				f->type == GW_METRIC_GAUGE ? "gauge" : "counter");
	for (size_t i = from; i < c->n; i++) {
		const sample *x = &c->v[i];
		if (done[i] || strcmp(x->name, f->name) != 0)
			continue;
		done[i] = true;
		if (x->labels)
			err |= gw_buf_printf(o, "%s{%s} %lld\n", x->name, x->labels, (long long)x->value);
		else
			err |= gw_buf_printf(o, "%s %lld\n", x->name, (long long)x->value);
	}
	return err;
}

void gw_metrics_collect(void *metrics, gw_metric_sink *sink)
{
	gw_metrics *m = metrics;
	for (size_t i = 0; i < m->n; i++)
		m->src[i].fn(m->src[i].ctx, sink);
}

int gw_metrics_render(gw_metrics *m, gw_buf *out)
{
	collector c = {.sink = {.sample = put_sample}};
	gw_metrics_collect(m, &c.sink);
	int err = c.oom ? -GW_ENOMEM : 0;
	bool *done = calloc(c.n ? c.n : 1, sizeof *done);
	if (!done)
		err = -GW_ENOMEM;
	for (size_t i = 0; !err && i < c.n; i++)
		if (!done[i] && print_family(&c, i, done, out))
			err = -GW_ENOMEM;
	for (size_t i = 0; i < c.n; i++) {
		free(c.v[i].name);
		free(c.v[i].help);
		free(c.v[i].labels);
	}
	free(c.v);
	free(done);
	return err;
}
