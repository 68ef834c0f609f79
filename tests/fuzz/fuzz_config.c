/* libFuzzer target: the YAML configuration loader, through the entry point --check uses
 * on a file's text (gw_config_load_string, which gw_config_load_file calls), then the
 * plugin option resolution (options.c) against a table with every option type, and the
 * error a plugin's check refusal becomes. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg_tree.h"
#include "config/config.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const siogw_option table[] = {
	{"s", SIOGW_OPT_STRING, NULL, 0, -1, NULL, "string"},
	{"i", SIOGW_OPT_INT, "3", -5, 100, NULL, "int"},
	{"b", SIOGW_OPT_BOOL, "false", 0, -1, NULL, "bool"},
	{"z", SIOGW_OPT_SIZE, "64k", 1, 1ll << 40, NULL, "size"},
	{"d", SIOGW_OPT_DURATION, "5s", 0, 3600000, NULL, "duration"},
	{"e", SIOGW_OPT_ENUM, "a", 0, -1, "a|bb|c", "enum"},
	{"l", SIOGW_OPT_LIST, NULL, 0, -1, NULL, "list"},
	{"rdkafka.", SIOGW_OPT_PREFIX, NULL, 0, -1, NULL, "prefix"},
	{"queue", SIOGW_OPT_INT, NULL, 0, -1, NULL, "unbounded"},
};

/* One line that names the file (or says it ran out of memory). */
static void check_err(int rc, const char *err)
{
	assert(rc == -GW_ECONFIG || rc == -GW_ENOMEM);
	assert(err[0] && !strchr(err, '\n'));
	assert(rc == -GW_ENOMEM || strncmp(err, "fuzz.yaml", 9) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* exact-size copy, so ASan sees any read past the end */
	char *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	if (size)
		memcpy(buf, data, size);
	gw_config cfg;
	char err[1024] = "";
	int rc = gw_config_load_string("fuzz.yaml", buf, size, &cfg, err, sizeof err);
	if (rc) {
		check_err(rc, err);
		assert(!cfg.root && !cfg.path && !cfg.nsps); /* left zeroed */
		free(buf);
		return 0;
	}
	assert(cfg.root && cfg.path && cfg.n_nsps >= 1 && cfg.engine.path);
	assert(cfg.engine.path[0] == '/' && cfg.engine.path[strlen(cfg.engine.path) - 1] == '/');
	for (size_t i = 0; i < cfg.n_nsps; i++) {
		const gw_nsp_config *n = &cfg.nsps[i];
		/* a name (found by it: listed names are unique and win) or a compiled match */
		assert(!n->name != !n->match && n->label);
		assert(n->name ? gw_config_nsp(&cfg, n->name, strlen(n->name)) == n : n->match_re && !n->n_routes);
	}

	siogw_optval *vals = NULL;
	size_t n = 0;
	err[0] = '\0';
	rc = gw_config_plugin_options(&cfg, table, sizeof table / sizeof table[0], &vals, &n, err, sizeof err);
	if (rc == 0) {
		for (size_t i = 0; i < n; i++)
			assert(vals[i].name && vals[i].str);
		/* a plugin refusing each resolved option in turn, and none in particular */
		for (size_t i = 0; i <= n; i++) {
			char e2[1024] = "";
			int r2 = gw_config_plugin_refused(&cfg, vals, n, i < n ? i : SIZE_MAX, "refused", e2, sizeof e2);
			assert(r2 == -GW_ECONFIG && !strchr(e2, '\n') && strstr(e2, "adapter.options"));
		}
	} else {
		check_err(rc, err);
		assert(!vals && n == 0);
	}
	gw_config_optvals_free(vals, n);
	gw_config_free(&cfg);
	free(buf);
	return 0;
}
