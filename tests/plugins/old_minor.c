/* old_minor.c — a well-formed plugin built as ABI 1.0: its table ends before check().
 * The member is filled in anyway, with a function that aborts: the host must read
 * `size` and never call it (test_check). */
#include <stdlib.h>

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
static int p_check(const siogw_optval *opts, size_t n_opts, size_t *bad, char *err, size_t err_len)
{
	abort(); /* beyond `size`: a 1.0 plugin has no such member */
}

static const siogw_option opts[] = {
	{"url", SIOGW_OPT_STRING, NULL, 0, -1, NULL, "anything"},
};

__attribute__((visibility("default"))) const siogw_plugin siogw_plugin_v1 = {
	.magic = SIOGW_PLUGIN_MAGIC,
	.abi_major = SIOGW_ABI_MAJOR,
	.abi_minor = 0,
	.size = offsetof(siogw_plugin, check),
	.name = "old_minor",
	.version = "0",
	.description = "built against ABI 1.0 (loader tests)",
	.options = opts,
	.n_options = 1,
	.create = p_create, .start = p_start, .subscribe = p_subscribe, .unsubscribe = p_unsubscribe,
	.publish = p_publish, .health = p_health, .stop = p_stop, .destroy = p_destroy,
	.check = p_check,
};
