/* bad_abi.c — deliberately broken plugin for test_loader: built for ABI major 2, which this gateway does not speak. */
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

__attribute__((visibility("default"))) const siogw_plugin siogw_plugin_v1 = {
	.magic = SIOGW_PLUGIN_MAGIC,
	.abi_major = 2,
	.abi_minor = SIOGW_ABI_MINOR,
	.size = sizeof(siogw_plugin),
	.name = "bad_abi",
	.version = "0",
	.create = p_create, .start = p_start, .subscribe = p_subscribe, .unsubscribe = p_unsubscribe,
	.publish = p_publish, .health = p_health, .stop = p_stop, .destroy = p_destroy,
};
