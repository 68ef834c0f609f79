/* check.c — the plugin half of --check. Contract in check.h. */
#include "bus/check.h"

#include "util/err.h"

int gw_bus_check_options(const gw_config *cfg, const gw_plugin *p, bool *checked, char *err,
			 size_t err_len)
{
	const siogw_plugin *d = gw_plugin_desc(p);
	siogw_optval *vals = NULL;
	size_t n = 0, bad;
	*checked = false;
	int rc = gw_config_plugin_options(cfg, d->options, d->n_options, &vals, &n, err, err_len);
	if (rc)
		return rc;
	char msg[768];
	if (gw_plugin_check(p, vals, n, checked, &bad, msg, sizeof msg))
		rc = gw_config_plugin_refused(cfg, vals, n, bad, msg, err, err_len);
	gw_config_optvals_free(vals, n);
	return rc;
}
