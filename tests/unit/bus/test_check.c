/* test_check.c — the plugin half of --check (gw_bus_check_options, ABI 1.1's check op):
 * a plugin's refusal comes back as one config error at the file:line:col of the option
 * it blamed, a 1.0 plugin's table is never read past `size`, and the shipped plugins
 * refuse what only they can judge (memory: max_message > queue_bytes; kafka: a property
 * librdkafka does not know; nng: a URL nng cannot use).
 * Usage: test_check memory=<so> failing_check=<so> old_minor=<so> [kafka=<so>] [nng=<so>] */
#include "../test.h"
#include "bus/check.h"
#include "util/err.h"

static const char *memory_so, *failing_check_so, *old_minor_so, *kafka_so, *nng_so;

/*
 * --check's plugin half on "t.yaml" whose adapter.options are `options` (YAML lines
 * indented by 4): line 1 "adapter:", 2 plugin, 3 "options:", so the first option is at
 * 4:5. Returns the result; err gets the line.
 */
static int check_options(const char *so, const char *options, bool *checked, char *err, size_t err_len)
{
	char yaml[2048];
	snprintf(yaml, sizeof yaml, "adapter:\n  plugin: \"%s\"\n  options:\n%s", so, options);
	gw_config cfg;
	err[0] = '\0';
	*checked = false;
	int rc = gw_config_load_string("t.yaml", yaml, strlen(yaml), &cfg, err, err_len);
	CHECK_EQ_INT(rc, 0);
	if (rc) {
		fprintf(stderr, "  config: %s\n", err);
		return rc;
	}
	gw_plugin *p = NULL;
	rc = gw_plugin_open(cfg.adapter.plugin, NULL, &p, err, err_len);
	CHECK_EQ_INT(rc, 0);
	if (rc == 0)
		rc = gw_bus_check_options(&cfg, p, checked, err, err_len);
	CHECK(!strchr(err, '\n'));
	gw_plugin_close(p);
	gw_config_free(&cfg);
	return rc;
}

TEST(refusal_at_the_blamed_option)
{
	char err[1024];
	bool checked;
	CHECK_EQ_INT(check_options(failing_check_so, "    mode: strict\n    url: \"x://bad\"\n", &checked, err,
				   sizeof err),
		     -GW_ECONFIG);
	CHECK(checked);
	CHECK_STR(err, "t.yaml:5:5: adapter.options.url: failing_check: cannot parse url 'x://bad'");
}

TEST(refused_default_points_at_the_options)
{
	char err[1024];
	bool checked;
	CHECK_EQ_INT(check_options(failing_check_so, "    url: \"lax:x\"\n", &checked, err, sizeof err), -GW_ECONFIG);
	CHECK_STR(err, "t.yaml:4:5: adapter.options.mode: failing_check: a lax: url needs mode lax (the default)");
	/* given explicitly: its own line */
	CHECK_EQ_INT(check_options(failing_check_so, "    url: \"lax:x\"\n    mode: strict\n", &checked, err,
				   sizeof err),
		     -GW_ECONFIG);
	CHECK_STR(err, "t.yaml:5:5: adapter.options.mode: failing_check: a lax: url needs mode lax");
	CHECK_EQ_INT(check_options(failing_check_so, "    url: \"lax:x\"\n    mode: lax\n", &checked, err,
				   sizeof err),
		     0);
	CHECK(checked);
}

TEST(no_blame_one_line)
{
	char err[1024];
	bool checked;
	CHECK_EQ_INT(check_options(failing_check_so, "    url: multi\n", &checked, err, sizeof err), -GW_ECONFIG);
	CHECK_STR(err, "t.yaml:4:5: adapter.options: failing_check: first line second line");
	CHECK_EQ_INT(check_options(failing_check_so, "    url: quiet\n", &checked, err, sizeof err), -GW_ECONFIG);
	CHECK_STR(err, "t.yaml:4:5: adapter.options: plugin failing_check: options refused (error 5) without a message");
}

/* The table stops before check (which aborts if called): not checked, accepted. */
TEST(old_minor_not_called)
{
	char err[1024];
	bool checked = true;
	CHECK_EQ_INT(check_options(old_minor_so, "    url: \"x://bad\"\n", &checked, err, sizeof err), 0);
	CHECK(!checked);
	gw_plugin *p = NULL;
	CHECK_EQ_INT(gw_plugin_open(old_minor_so, NULL, &p, err, sizeof err), 0);
	if (!p)
		return;
	CHECK(!GW_PLUGIN_HAS(p, check));
	size_t bad = 0;
	CHECK_EQ_INT(gw_plugin_check(p, NULL, 0, &checked, &bad, err, sizeof err), 0);
	CHECK(!checked);
	CHECK(bad == SIZE_MAX);
	gw_plugin_close(p);
}

TEST(memory_cross_option_rule)
{
	char err[1024];
	bool checked;
	CHECK_EQ_INT(check_options(memory_so, "    queue_bytes: 1m\n    max_message: 2m\n", &checked, err, sizeof err),
		     -GW_ECONFIG);
	CHECK(checked);
	CHECK_STR(err, "t.yaml:5:5: adapter.options.max_message: memory: max_message (2097152) must not exceed "
		       "queue_bytes (1048576)");
	/* the default max_message (8m) against a small queue_bytes */
	CHECK_EQ_INT(check_options(memory_so, "    queue_bytes: 1m\n", &checked, err, sizeof err), -GW_ECONFIG);
	CHECK_STR(err, "t.yaml:4:5: adapter.options.max_message: memory: max_message (8388608) must not exceed "
		       "queue_bytes (1048576) (the default)");
	CHECK_EQ_INT(check_options(memory_so, "    queue_bytes: 16m\n", &checked, err, sizeof err), 0);
	CHECK(checked);
}

TEST(kafka_unknown_property)
{
	char err[1024];
	bool checked;
	CHECK_EQ_INT(check_options(kafka_so,
				   "    brokers: 127.0.0.1:1\n    rdkafka.socket.keepalive.enable: \"true\"\n"
				   "    rdkafka.no.such.property: x\n",
				   &checked, err, sizeof err),
		     -GW_ECONFIG);
	CHECK(checked);
	/* librdkafka's own words after the option's position */
	CHECK_STR(err, "t.yaml:6:5: adapter.options.rdkafka.no.such.property: kafka: rdkafka.no.such.property: "
		       "No such configuration property: \"no.such.property\"");
	/* a value librdkafka refuses */
	CHECK_EQ_INT(check_options(kafka_so, "    rdkafka.socket.keepalive.enable: maybe\n", &checked, err, sizeof err),
		     -GW_ECONFIG);
	CHECK_STR(err, "t.yaml:4:5: adapter.options.rdkafka.socket.keepalive.enable: kafka: "
		       "rdkafka.socket.keepalive.enable: Expected bool value for \"socket.keepalive.enable\": true or false");
	/* accepted without contacting anyone (nothing listens on port 1) */
	CHECK_EQ_INT(check_options(kafka_so, "    brokers: 127.0.0.1:1\n    rdkafka.socket.keepalive.enable: \"true\"\n",
				   &checked, err, sizeof err),
		     0);
	CHECK(checked);
}

TEST(nng_bad_url)
{
	char err[1024];
	bool checked;
	CHECK_EQ_INT(check_options(nng_so, "    publish_listen: [\"inproc://check-a\"]\n"
					   "    receive_dial: [\"inproc://check-b\", \"nosuch://x\"]\n",
				   &checked, err, sizeof err),
		     -GW_ECONFIG);
	CHECK(checked);
	CHECK_CONTAINS(err, "t.yaml:5:5: adapter.options.receive_dial: nng: receive_dial 'nosuch://x': ");
	CHECK_EQ_INT(check_options(nng_so, "    publish_listen: [\"tcp://127.0.0.1:notaport\"]\n", &checked, err,
				   sizeof err),
		     -GW_ECONFIG);
	CHECK_CONTAINS(err, "t.yaml:4:5: adapter.options.publish_listen: nng: publish_listen 'tcp://127.0.0.1:notaport': ");
	/* good URLs: accepted, and nothing listens afterwards (the same URL checks twice) */
	for (int i = 0; i < 2; i++) {
		CHECK_EQ_INT(check_options(nng_so, "    publish_listen: [\"tcp://127.0.0.1:5999\"]\n"
						   "    receive_listen: [\"ipc:///tmp/siogw-check.ipc\"]\n",
					   &checked, err, sizeof err),
			     0);
		CHECK_STR(err, "");
	}
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *eq = strchr(a, '=');
		if (!eq)
			continue;
		const char *v = eq + 1;
		size_t k = (size_t)(eq - a);
#define ARG(name)                                                   \
	if (k == strlen(#name) && strncmp(a, #name, k) == 0)        \
		name##_so = v;
		ARG(memory) ARG(failing_check) ARG(old_minor) ARG(kafka) ARG(nng)
#undef ARG
	}
	if (!memory_so || !failing_check_so || !old_minor_so) {
		fprintf(stderr, "usage: %s memory=<so> failing_check=<so> old_minor=<so> [kafka=<so>] [nng=<so>]\n",
			argv[0]);
		return 2;
	}
	RUN(refusal_at_the_blamed_option);
	RUN(refused_default_points_at_the_options);
	RUN(no_blame_one_line);
	RUN(old_minor_not_called);
	RUN(memory_cross_option_rule);
	if (kafka_so)
		RUN(kafka_unknown_property);
	if (nng_so)
		RUN(nng_bad_url);
	return TEST_END();
}
