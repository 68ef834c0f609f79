/* failing_create.c — a well-formed plugin whose create() always fails with a message:
 * the loader accepts it; the host must report create's error (test_loader). */
#include <stdio.h>

#include "siogw/plugin.h"

#define FAILING_CREATE_MSG "failing_create: cannot reach the bus at 127.0.0.1:1 (test plugin)"

static int p_create(const siogw_host *host, const siogw_optval *opts, size_t n_opts, void **self,
		    char *err, size_t err_len)
{
	*self = NULL;
	if (err && err_len)
		snprintf(err, err_len, "%s", FAILING_CREATE_MSG);
	return -SIOGW_EIO;
}
static int p_start(void *self, char *err, size_t err_len) { return -SIOGW_EIO; }
static int p_subscribe(void *self, uint64_t id, const char *pattern, int kind) { return -SIOGW_EIO; }
static int p_unsubscribe(void *self, uint64_t id) { return -SIOGW_EIO; }
static int p_publish(void *self, const char *topic, const void *key, size_t key_len, const void *data,
		     size_t len, siogw_dr_cb dr, void *dr_arg)
{
	return -SIOGW_EIO;
}
static int p_health(void *self, char *buf, size_t buf_len) { return -SIOGW_EIO; }
static void p_stop(void *self) {}
static void p_destroy(void *self) {}

__attribute__((visibility("default"))) const siogw_plugin siogw_plugin_v1 = {
	.magic = SIOGW_PLUGIN_MAGIC,
	.abi_major = SIOGW_ABI_MAJOR,
	.abi_minor = SIOGW_ABI_MINOR,
	.size = sizeof(siogw_plugin),
	.name = "failing_create",
	.version = "0",
	.description = "create() always fails (loader tests)",
	.create = p_create, .start = p_start, .subscribe = p_subscribe, .unsubscribe = p_unsubscribe,
	.publish = p_publish, .health = p_health, .stop = p_stop, .destroy = p_destroy,
};
