/* http/metrics: the sources' samples as Prometheus text, same-named samples summed. */
#include "../test.h"
#include "http/metrics.h"

typedef struct fake {
	int64_t open;
	uint64_t closes_a, closes_b;
} fake;

static void fake_source(void *ctx, gw_metric_sink *m)
{
	const fake *f = ctx;
	gw_metric_gauge(m, "x_open", "Open things.", f->open);
	m->sample(m, "x_closes_total", GW_METRIC_COUNTER, "Closes by reason.", "reason=\"a\"", (int64_t)f->closes_a);
	m->sample(m, "x_closes_total", GW_METRIC_COUNTER, "Closes by reason.", "reason=\"b\"", (int64_t)f->closes_b);
}

static void other_source(void *ctx, gw_metric_sink *m)
{
	(void)ctx;
	gw_metric_counter(m, "y_total", "Ys.", 7);
}

static char *render(gw_metrics *m)
{
	gw_buf b = {0};
	CHECK_EQ_INT(gw_metrics_render(m, &b), 0);
	size_t n;
	return (char *)gw_buf_steal(&b, &n);
}

TEST(one_source_prometheus_text)
{
	gw_metrics *m = gw_metrics_create();
	fake f = {.open = 3, .closes_a = 1, .closes_b = 2};
	CHECK_EQ_INT(gw_metrics_add(m, fake_source, &f), 0);
	char *t = render(m);
	CHECK_STR(t, "# HELP x_open Open things.\n# TYPE x_open gauge\nx_open 3\n"
		     "# HELP x_closes_total Closes by reason.\n# TYPE x_closes_total counter\n"
		     "x_closes_total{reason=\"a\"} 1\nx_closes_total{reason=\"b\"} 2\n");
	free(t);
	gw_metrics_destroy(m);
}

TEST(same_names_sum_across_sources)
{
	/* two Engine.IO servers (or two loops) show as one gateway: one HELP/TYPE per
	 * family, each label set summed, families in first-seen order */
	gw_metrics *m = gw_metrics_create();
	fake a = {.open = 3, .closes_a = 1, .closes_b = 2}, b = {.open = -1, .closes_a = 10, .closes_b = 0};
	CHECK_EQ_INT(gw_metrics_add(m, fake_source, &a), 0);
	CHECK_EQ_INT(gw_metrics_add(m, other_source, NULL), 0);
	CHECK_EQ_INT(gw_metrics_add(m, fake_source, &b), 0);
	char *t = render(m);
	CHECK_STR(t, "# HELP x_open Open things.\n# TYPE x_open gauge\nx_open 2\n"
		     "# HELP x_closes_total Closes by reason.\n# TYPE x_closes_total counter\n"
		     "x_closes_total{reason=\"a\"} 11\nx_closes_total{reason=\"b\"} 2\n"
		     "# HELP y_total Ys.\n# TYPE y_total counter\ny_total 7\n");
	free(t);
	gw_metrics_destroy(m);
}

/* A source may build its names and help on its stack (a plugin's stats are parsed
 * so): the page copies them. */
static void stack_source(void *ctx, gw_metric_sink *m)
{
	(void)ctx;
	char name[32], help[32];
	snprintf(name, sizeof name, "z_%s_total", "built");
	snprintf(help, sizeof help, "Built %s.", "here");
	m->sample(m, name, GW_METRIC_COUNTER, help, NULL, 9);
	memset(name, 'X', sizeof name - 1);
	memset(help, 'X', sizeof help - 1);
}

TEST(strings_are_copied)
{
	gw_metrics *m = gw_metrics_create();
	CHECK_EQ_INT(gw_metrics_add(m, stack_source, NULL), 0);
	char *t = render(m);
	CHECK_STR(t, "# HELP z_built_total Built here.\n# TYPE z_built_total counter\nz_built_total 9\n");
	free(t);
	gw_metrics_destroy(m);
}

TEST(bounded_sources)
{
	gw_metrics *m = gw_metrics_create();
	int added = 0;
	while (gw_metrics_add(m, other_source, NULL) == 0 && added < 1000)
		added++;
	CHECK(added > 0 && added < 1000); /* refused past its table, not grown forever */
	gw_metrics_destroy(m);
}

int main(void)
{
	RUN(one_source_prometheus_text);
	RUN(same_names_sum_across_sources);
	RUN(strings_are_copied);
	RUN(bounded_sources);
	return TEST_END();
}
