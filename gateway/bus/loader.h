/*
 * loader.h — find, dlopen and check a bus plugin (include/siogw/plugin.h).
 *
 * gw_plugin_open() resolves a name or a path, dlopen()s it with RTLD_NOW|RTLD_LOCAL,
 * looks up SIOGW_PLUGIN_SYMBOL and checks the descriptor before anything in the
 * plugin runs (except its ELF constructors, which dlopen itself runs):
 *   magic == SIOGW_PLUGIN_MAGIC, abi_major == SIOGW_ABI_MAJOR,
 *   size >= GW_PLUGIN_MIN_SIZE (the end of the mandatory ABI 1.0 members),
 *   name non-NULL, options non-NULL when n_options > 0,
 *   create/start/subscribe/unsubscribe/publish/health/stop/destroy non-NULL.
 * A newer minor (bigger table) is accepted; members beyond the table's `size` are
 * never read: test with GW_PLUGIN_HAS() before calling a member added after 1.0.
 *
 * Search order for a bare name (no '/', not ending in ".so"), first existing file wins:
 *   1. plugin_dir (if non-NULL):          <dir>/<name>.so, <dir>/<name>/<name>.so
 *   2. $SIOGW_PLUGIN_PATH (':'-separated): same two forms for each directory
 *   3. the build tree, next to the binary: <dir of /proc/self/exe>/../plugins/<name>/<name>.so
 *   4. the install dir:                    SIOGW_PLUGIN_DIR/<name>.so
 * A file that exists but fails to load or check is an error (the search does not go
 * on to shadowed candidates), so a broken plugin is never silently replaced.
 *
 * Threads: any thread; may block (file system, dlopen). Called at startup.
 * Errors: -GW_EPLUGIN (or -GW_EINVAL / -GW_ENOMEM) with ONE line, no trailing newline,
 * written into err, e.g. "plugin /x/bad.so: ABI major 2, gateway supports 1" or
 * "plugin memory: not found (searched: a, b, c)". Nothing stays loaded on failure.
 */
#ifndef GW_LOADER_H
#define GW_LOADER_H

#include <stdbool.h>
#include <stddef.h>

#include "siogw/plugin.h"

typedef struct gw_plugin gw_plugin;

/* Bytes of the descriptor up to and including the last mandatory ABI 1.0 member. */
#define GW_PLUGIN_MIN_SIZE (offsetof(siogw_plugin, destroy) + sizeof(((siogw_plugin *)0)->destroy))

/* Open a plugin by name (searched, see above) or by path. On success *out owns the
 * loaded object until gw_plugin_close(). On failure *out is NULL. */
int gw_plugin_open(const char *name_or_path, const char *plugin_dir, gw_plugin **out,
		   char *err, size_t err_len);

/* The checked descriptor; valid until gw_plugin_close(). */
const siogw_plugin *gw_plugin_desc(const gw_plugin *p);

/* The file that was loaded (as tried: may contain ".."). Valid until close. */
const char *gw_plugin_path(const gw_plugin *p);

/* True if the plugin's table is large enough to contain the (pointer-sized) member
 * at offset member_offset — for members added in later minors. The member may still
 * be NULL when the ABI says it is optional. */
bool gw_plugin_has(const gw_plugin *p, size_t member_offset);
#define GW_PLUGIN_HAS(p, member) gw_plugin_has((p), offsetof(siogw_plugin, member))

/*
 * Ask the plugin to judge resolved options (its check op, ABI 1.1). *checked says
 * whether it could: false for a plugin built against 1.0 or with check == NULL, and
 * then 0 is returned. Otherwise the op's result: 0, or its negative code with its one
 * line in err (a generic line when it wrote none) and *bad the index into opts it
 * blamed, SIZE_MAX when none (or out of range). May block; main thread, --check only.
 */
int gw_plugin_check(const gw_plugin *p, const siogw_optval *opts, size_t n_opts, bool *checked,
		    size_t *bad, char *err, size_t err_len);

/* dlclose and free. NULL is fine. Destroy every plugin instance first: the
 * descriptor and all plugin code are gone after this. */
void gw_plugin_close(gw_plugin *p);

#endif
