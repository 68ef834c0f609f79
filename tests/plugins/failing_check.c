/* failing_check.c — a plugin whose check() refuses what only it can judge (test_check):
 *   url containing "bad"    → blames url (its index in opts);
 *   url "lax:..." with mode strict (the default) → blames mode;
 *   url "multi"             → blames nothing, and its message spans two lines;
 *   url "quiet"             → fails without a message.
 * Anything else passes. create() always fails: only check() is under test. */
#include <stdio.h>
#include <string.h>

#include "siogw/plugin.h"

static int p_create(const siogw_host *host, const siogw_optval *opts, size_t n_opts, void **self,
		    char *err, size_t err_len)
{
	*self = NULL;
	return -SIOGW_ENOTSUP;
}
static int p_start(void *self, char *err, size_t err_len) { return 0; }
static int p_subscribe(void *self, uint64_t id, const char *pattern, int kind) { return 0; }
static int p_unsubscribe(void *self, uint64_t id) { return 0; }
static int p_publish(void *self, const char *topic, const void *key, size_t key_len, const void *data,
		     size_t len, siogw_dr_cb dr, void *dr_arg)
{
	return -SIOGW_ENOTSUP;
}
static int p_health(void *self, char *buf, size_t buf_len) { return 0; }
static void p_stop(void *self) {}
static void p_destroy(void *self) {}

static size_t find(const siogw_optval *opts, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(opts[i].name, name) == 0)
			return i;
	return SIZE_MAX;
}

static int p_check(const siogw_optval *opts, size_t n_opts, size_t *bad, char *err, size_t err_len)
{
	size_t u = find(opts, n_opts, "url"), m = find(opts, n_opts, "mode");
	const char *url = u == SIZE_MAX ? "" : opts[u].str;
	if (strstr(url, "bad")) {
		*bad = u;
		snprintf(err, err_len, "failing_check: cannot parse url '%s'", url);
		return -SIOGW_EINVAL;
	}
	if (!strncmp(url, "lax:", 4) && m != SIZE_MAX && !strcmp(opts[m].str, "strict")) {
		*bad = m;
		snprintf(err, err_len, "failing_check: a lax: url needs mode lax");
		return -SIOGW_EINVAL;
	}
	if (!strcmp(url, "multi")) {
		snprintf(err, err_len, "failing_check: first line\nsecond line");
		return -SIOGW_EIO;
	}
	if (!strcmp(url, "quiet"))
		return -SIOGW_EIO;
	return 0;
}

static const siogw_option opts[] = {
	{"url", SIOGW_OPT_STRING, NULL, 0, -1, NULL, "judged by check()"},
	{"mode", SIOGW_OPT_ENUM, "strict", 0, -1, "strict|lax", "lax: urls may start with lax:"},
};

__attribute__((visibility("default"))) const siogw_plugin siogw_plugin_v1 = {
	.magic = SIOGW_PLUGIN_MAGIC,
	.abi_major = SIOGW_ABI_MAJOR,
	.abi_minor = SIOGW_ABI_MINOR,
	.size = sizeof(siogw_plugin),
	.name = "failing_check",
	.version = "0",
	.description = "check() refuses some urls (loader tests)",
	.options = opts,
	.n_options = sizeof opts / sizeof opts[0],
	.create = p_create, .start = p_start, .subscribe = p_subscribe, .unsubscribe = p_unsubscribe,
	.publish = p_publish, .health = p_health, .stop = p_stop, .destroy = p_destroy,
	.check = p_check,
};
