/* loader.c — plugin search, dlopen and descriptor checks. Contract in loader.h. */
#include "bus/loader.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "siogw_build.h"
#include "util/err.h"
#include "util/path.h"

struct gw_plugin {
	void *dl;
	const siogw_plugin *desc;
	char *path;
};

/* One line: a dlerror() or plugin text with a newline would break log lines. */
static void one_line(char *s)
{
	for (char *c = s; *c; c++)
		if (*c == '\n' || *c == '\r')
			*c = ' ';
}

static void seterr(char *err, size_t err_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t err_len, const char *fmt, ...)
{
	if (!err || err_len == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
	one_line(err);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* A bare name is used to build file names: keep it to [A-Za-z0-9_-]. */
static bool valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

static int check_desc(const siogw_plugin *d, const char *shown, char *err, size_t err_len)
{
	/* magic, abi_major and size sit at the start of every version of the table. */
	if (d->magic != SIOGW_PLUGIN_MAGIC) {
		seterr(err, err_len, "plugin %s: bad magic 0x%08x, expected 0x%08x", shown,
		       (unsigned)d->magic, (unsigned)SIOGW_PLUGIN_MAGIC);
		return -GW_EPLUGIN;
	}
	if (d->abi_major != SIOGW_ABI_MAJOR) {
		seterr(err, err_len, "plugin %s: ABI major %u, gateway supports %d", shown,
		       (unsigned)d->abi_major, SIOGW_ABI_MAJOR);
		return -GW_EPLUGIN;
	}
	if (d->size < GW_PLUGIN_MIN_SIZE) {
		seterr(err, err_len, "plugin %s: ops table too small: %u bytes, ABI %d needs at least %zu",
		       shown, (unsigned)d->size, SIOGW_ABI_MAJOR, (size_t)GW_PLUGIN_MIN_SIZE);
		return -GW_EPLUGIN;
	}
	if (!d->name || !d->name[0]) {
		seterr(err, err_len, "plugin %s: descriptor has no name", shown);
		return -GW_EPLUGIN;
	}
	if (d->n_options > 0 && !d->options) {
		seterr(err, err_len, "plugin %s: n_options is %zu but options is NULL", shown, d->n_options);
		return -GW_EPLUGIN;
	}
	const struct {
		const char *name;
		bool present;
	} ops[] = {
		{"create", d->create != NULL},	     {"start", d->start != NULL},
		{"subscribe", d->subscribe != NULL}, {"unsubscribe", d->unsubscribe != NULL},
		{"publish", d->publish != NULL},     {"health", d->health != NULL},
		{"stop", d->stop != NULL},	     {"destroy", d->destroy != NULL},
	};
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
		if (!ops[i].present) {
			seterr(err, err_len, "plugin %s: mandatory op %s is NULL", shown, ops[i].name);
			return -GW_EPLUGIN;
		}
	}
	return 0;
}

/* dlopen `path` and check it; messages name the plugin as `shown`. */
static int load_file(const char *path, const char *shown, gw_plugin **out, char *err, size_t err_len)
{
	dlerror();
	void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!dl) {
		const char *e = dlerror();
		if (!e)
			e = "dlopen failed";
		/* dlerror() usually starts with "<path>: "; don't say the path twice. */
		size_t pl = strlen(path);
		if (strncmp(e, path, pl) == 0 && e[pl] == ':' && e[pl + 1] == ' ')
			e += pl + 2;
		seterr(err, err_len, "plugin %s: %s", shown, e);
		return -GW_EPLUGIN;
	}
	dlerror();
	const siogw_plugin *d = (const siogw_plugin *)dlsym(dl, SIOGW_PLUGIN_SYMBOL);
	if (!d) {
		seterr(err, err_len, "plugin %s: no symbol %s", shown, SIOGW_PLUGIN_SYMBOL);
		dlclose(dl);
		return -GW_EPLUGIN;
	}
	int rc = check_desc(d, shown, err, err_len);
	if (rc < 0) {
		dlclose(dl);
		return rc;
	}
	gw_plugin *p = calloc(1, sizeof *p);
	char *copy = strdup(path);
	if (!p || !copy) {
		free(p);
		free(copy);
		dlclose(dl);
		seterr(err, err_len, "plugin %s: out of memory", shown);
		return -GW_ENOMEM;
	}
	p->dl = dl;
	p->desc = d;
	p->path = copy;
	*out = p;
	return 0;
}

/* Name search state: the candidate being tried and the list of those tried so far. */
typedef struct search {
	const char *name;
	char path[PATH_MAX];
	char tried[4096];
	size_t tried_len;
} search;

static bool try_path(search *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Format a candidate into s->path; true if it is an existing regular file. */
static bool try_path(search *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(s->path, sizeof s->path, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof s->path)
		return false;
	if (s->tried_len < sizeof s->tried) {
		int m = snprintf(s->tried + s->tried_len, sizeof s->tried - s->tried_len, "%s%s",
				 s->tried_len ? ", " : "", s->path);
		if (m > 0)
			s->tried_len += (size_t)m;
	}
	struct stat st;
	return stat(s->path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Try <dir>/<name>.so and <dir>/<name>/<name>.so for the first `len` bytes of dir. */
static bool try_dir(search *s, const char *dir, size_t len)
{
	while (len > 1 && dir[len - 1] == '/')
		len--;
	if (len == 0)
		return false;
	int l = len > INT_MAX ? INT_MAX : (int)len;
	return try_path(s, "%.*s/%s.so", l, dir, s->name) ||
	       try_path(s, "%.*s/%s/%s.so", l, dir, s->name, s->name);
}

static bool find_plugin(search *s, const char *plugin_dir)
{
	if (plugin_dir && try_dir(s, plugin_dir, strlen(plugin_dir)))
		return true;

	const char *env = getenv("SIOGW_PLUGIN_PATH");
	for (const char *p = env; p && *p;) {
		const char *colon = strchr(p, ':');
		size_t len = colon ? (size_t)(colon - p) : strlen(p);
		if (len > 0 && try_dir(s, p, len))
			return true;
		p = colon ? colon + 1 : NULL;
	}

	/* Build tree: build/gateway/sio-gateway → build/plugins/<name>/<name>.so */
	char exe[PATH_MAX];
	if (gw_exe_dir(exe, sizeof exe) == 0 && try_path(s, "%s/../plugins/%s/%s.so", exe, s->name, s->name))
		return true;

	return try_path(s, "%s/%s.so", SIOGW_PLUGIN_DIR, s->name);
}

int gw_plugin_open(const char *name_or_path, const char *plugin_dir, gw_plugin **out,
		   char *err, size_t err_len)
{
	if (err && err_len)
		err[0] = '\0';
	if (out)
		*out = NULL;
	if (!out || !name_or_path || !name_or_path[0]) {
		seterr(err, err_len, "plugin: no name or path given");
		return -GW_EINVAL;
	}

	if (strchr(name_or_path, '/') || ends_with(name_or_path, ".so")) {
		/* A path. Without a '/', dlopen() would search the library path instead of
		 * opening the file the operator named; make it relative to the cwd. */
		if (strchr(name_or_path, '/'))
			return load_file(name_or_path, name_or_path, out, err, err_len);
		char rel[PATH_MAX];
		int n = snprintf(rel, sizeof rel, "./%s", name_or_path);
		if (n < 0 || (size_t)n >= sizeof rel) {
			seterr(err, err_len, "plugin %s: path too long", name_or_path);
			return -GW_EINVAL;
		}
		return load_file(rel, name_or_path, out, err, err_len);
	}

	if (!valid_name(name_or_path)) {
		seterr(err, err_len, "plugin %s: invalid name (use [A-Za-z0-9_-] or a path to a .so)",
		       name_or_path);
		return -GW_EINVAL;
	}
	search *s = calloc(1, sizeof *s);
	if (!s) {
		seterr(err, err_len, "plugin %s: out of memory", name_or_path);
		return -GW_ENOMEM;
	}
	s->name = name_or_path;
	int rc;
	if (find_plugin(s, plugin_dir)) {
		rc = load_file(s->path, s->path, out, err, err_len);
	} else {
		seterr(err, err_len, "plugin %s: not found (searched: %s)", name_or_path, s->tried);
		rc = -GW_EPLUGIN;
	}
	free(s);
	return rc;
}

const siogw_plugin *gw_plugin_desc(const gw_plugin *p)
{
	return p->desc;
}

const char *gw_plugin_path(const gw_plugin *p)
{
	return p->path;
}

bool gw_plugin_has(const gw_plugin *p, size_t member_offset)
{
	/* Every member added after 1.0 is a function pointer. */
	return member_offset <= p->desc->size &&
	       p->desc->size - member_offset >= sizeof(void (*)(void));
}

int gw_plugin_check(const gw_plugin *p, const siogw_optval *opts, size_t n_opts, bool *checked,
		    size_t *bad, char *err, size_t err_len)
{
	*checked = false;
	*bad = SIZE_MAX;
	if (err && err_len)
		err[0] = '\0';
	if (!GW_PLUGIN_HAS(p, check) || !p->desc->check)
		return 0;
	*checked = true;
	int rc = p->desc->check(opts, n_opts, bad, err, err_len);
	if (rc == 0)
		return 0;
	if (*bad >= n_opts)
		*bad = SIZE_MAX;
	if (rc > 0)
		rc = -rc; /* the ABI says negative; do not let a sign slip pass for success */
	if (err && err_len && !err[0])
		seterr(err, err_len, "plugin %s: options refused (error %d) without a message",
		       p->desc->name, -rc);
	else if (err && err_len) {
		err[err_len - 1] = '\0'; /* a plugin that forgot to terminate */
		one_line(err);
	}
	return rc;
}

void gw_plugin_close(gw_plugin *p)
{
	if (!p)
		return;
	dlclose(p->dl);
	free(p->path);
	free(p);
}
