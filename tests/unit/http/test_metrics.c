/* http/metrics: the sources' samples as Prometheus text, same-named samples summed. */
#include "../test.h"
#include "http/metrics.h"

typedef struct fake {
	int64_t open;
	uint64_t closes_a, closes_b;
	const char *text;
} fake;

static void fake_source(void *ctx, gw_metric_sink *m)
{
	const fake *f = ctx;
	gw_metric_gauge(m, "x_open", "Open things.", f->open);
	m->sample(m, "x_closes_total", GW_METRIC_COUNTER, "Closes by reason.", "reason=\"a\"", (int64_t)f->closes_a);
	m->sample(m, "x_closes_total", GW_METRIC_COUNTER, "Closes by reason.", "reason=\"b\"", (int64_t)f->closes_b);
	if (f->text)
		m->text(m, f->text, strlen(f->text));
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

TEST(text_lines_come_after_the_samples)
{
	/* a plugin's own stats lines are kept verbatim, after every family */
	gw_metrics *m = gw_metrics_create();
	fake f = {.open = 1, .text = "# TYPE plugin_x counter\nplugin_x 5\n"};
	CHECK_EQ_INT(gw_metrics_add(m, fake_source, &f), 0);
	CHECK_EQ_INT(gw_metrics_add(m, other_source, NULL), 0);
	char *t = render(m);
	const char *tail = "y_total 7\n# TYPE plugin_x counter\nplugin_x 5\n";
	CHECK(t && strlen(t) > strlen(tail) && strcmp(t + strlen(t) - strlen(tail), tail) == 0);
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
	RUN(text_lines_come_after_the_samples);
	RUN(bounded_sources);
	return TEST_END();
}
