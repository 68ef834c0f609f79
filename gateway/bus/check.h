/*
 * check.h — the plugin half of `sio-gateway --check`: adapter.options against the
 * plugin's declared table (config/options.c), then against the plugin itself through
 * its check op (ABI 1.1; loader.h's gw_plugin_check), so that a value only the plugin
 * can judge (a librdkafka property, an nng URL) fails here and not at the first start.
 *
 * Main thread, --check only; may block as long as the plugin's check does.
 */
#ifndef GW_BUS_CHECK_H
#define GW_BUS_CHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "bus/loader.h"
#include "config/config.h"

/*
 * Returns 0 when the options pass both. *checked: whether the plugin judged them too
 * (false for a plugin without a check op). Otherwise -GW_ECONFIG (or -GW_ENOMEM) and one
 * line in err, "file:line:col: adapter.options.KEY: <the plugin's message>" when the
 * plugin refused, located at the option it blamed (see gw_config_plugin_refused).
 */
int gw_bus_check_options(const gw_config *cfg, const gw_plugin *p, bool *checked, char *err,
			 size_t err_len);

#endif
