/*
 * options.c — a plugin's declared options (siogw_option tables) against adapter.options:
 * validation, defaults, normalization into siogw_optval, and the --plugin-help table.
 *
 * Resolution rules (the plugin guide repeats them for plugin authors):
 *   - a key matches a declared option of the same name; failing that, the first
 *     PREFIX option (in table order) whose name starts the key and is shorter than it;
 *     anything else is an error listing the valid keys ("rdkafka.*" for prefixes);
 *   - a null value (`key:` or `key: ~`) counts as absent;
 *   - output order: the table's order, a PREFIX option expanding to its given keys in
 *     document order; declared options absent without a default produce no entry;
 *   - ENUM entries carry the choice's index in `num` (plugin.h promises it since ABI 1.1).
 */
#include "config/config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg_tree.h"
#include "util/buf.h"
#include "util/err.h"

typedef struct octx {
	char *err;
	size_t err_len;
	cfg_path path;
	siogw_optval *vals;
	size_t n;
} octx;

static int oerr(octx *c, const cfg_node *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int oerr(octx *c, const cfg_node *at, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cfg_verror(c->err, c->err_len, at->file, at->line, at->col, c->path.buf, fmt, ap);
	va_end(ap);
	return -GW_ECONFIG;
}

static int onomem(octx *c)
{
	if (c->err && c->err_len)
		snprintf(c->err, c->err_len, "out of memory");
	return -GW_ENOMEM;
}

static bool prefix_matches(const siogw_option *o, const char *key)
{
	size_t pl = strlen(o->name);
	return o->type == SIOGW_OPT_PREFIX && strlen(key) > pl && memcmp(key, o->name, pl) == 0;
}

/* The option that governs `key`, or NULL. */
static const siogw_option *lookup(const siogw_option *t, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].type != SIOGW_OPT_PREFIX && strcmp(t[i].name, key) == 0)
			return &t[i];
	for (size_t i = 0; i < n; i++)
		if (prefix_matches(&t[i], key))
			return &t[i];
	return NULL;
}

static int unknown_key(octx *c, const cfg_node *key, const siogw_option *t, size_t n)
{
	char valid[512];
	size_t o = 0;
	valid[0] = '\0';
	for (size_t i = 0; i < n && o < sizeof valid; i++) {
		int k = snprintf(valid + o, sizeof valid - o, "%s%s%s", i ? ", " : "", t[i].name,
				 t[i].type == SIOGW_OPT_PREFIX ? "*" : "");
		if (k < 0)
			break;
		o += (size_t)k;
	}
	if (n == 0)
		return oerr(c, key, "unknown key (this plugin takes no options)");
	return oerr(c, key, "unknown key (valid keys: %s)", valid);
}

/* LIST: a YAML list of strings, or one scalar already comma-joined (handy with ${VAR}). */
static int list_text(octx *c, const cfg_node *v, char **out)
{
	char got[80];
	if (v->kind == CFG_SCALAR)
		return (*out = strdup(v->str)) ? 0 : onomem(c);
	if (v->kind != CFG_SEQ)
		return oerr(c, v, "expected a list, got %s", cfg_describe(v, got, sizeof got));
	gw_buf b = {0};
	for (size_t i = 0; i < v->n; i++) {
		const cfg_node *it = v->items[i];
		size_t mark = cfg_path_index(&c->path, i);
		if (it->kind != CFG_SCALAR || it->is_null) {
			gw_buf_free(&b);
			return oerr(c, it, "expected a string, got %s", cfg_describe(it, got, sizeof got));
		}
		if (strchr(it->str, ',')) {
			gw_buf_free(&b);
			return oerr(c, it, "list items may not contain ',' (items are passed comma-joined)");
		}
		cfg_path_pop(&c->path, mark);
		if ((i && gw_buf_putc(&b, ',') < 0) || gw_buf_puts(&b, it->str) < 0) {
			gw_buf_free(&b);
			return onomem(c);
		}
	}
	if (gw_buf_reserve(&b, 1) < 0) {
		gw_buf_free(&b);
		return onomem(c);
	}
	b.data[b.len] = 0;
	*out = (char *)gw_buf_steal(&b, NULL);
	return 0;
}

/* Type-check v against o and append the resolved entry under `name`. */
static int add_value(octx *c, const siogw_option *o, const char *name, const cfg_node *v)
{
	char msg[512], *str = NULL;
	int64_t num = 0;
	int rc = 0;
	switch (o->type) {
	case SIOGW_OPT_LIST:
		rc = list_text(c, v, &str);
		break;
	case SIOGW_OPT_PREFIX: /* passed through as text: the library judges it */
	case SIOGW_OPT_STRING:
		if (cfg_scalar_check(v, SIOGW_OPT_STRING, 1, 0, NULL, &num, msg, sizeof msg) < 0)
			return oerr(c, v, "%s", msg);
		str = strdup(v->str);
		break;
	default:
		if (cfg_scalar_check(v, o->type, o->min, o->max, o->choices, &num, msg, sizeof msg) < 0)
			return oerr(c, v, "%s", msg);
		if (o->type == SIOGW_OPT_BOOL) {
			str = strdup(num ? "true" : "false");
		} else if (o->type == SIOGW_OPT_ENUM) {
			str = strdup(v->str);
		} else {
			char d[24];
			snprintf(d, sizeof d, "%" PRId64, num);
			str = strdup(d);
		}
		break;
	}
	if (rc < 0)
		return rc;
	char *nm = strdup(name);
	if (!str || !nm) {
		free(str);
		free(nm);
		return onomem(c);
	}
	c->vals[c->n++] = (siogw_optval){.name = nm, .str = str, .num = num};
	return 0;
}

int gw_config_plugin_options(const gw_config *cfg, const siogw_option *table, size_t n,
			     siogw_optval **out, size_t *n_out, char *err, size_t err_len)
{
	const cfg_node *opts = cfg ? cfg->adapter.options : NULL;
	octx c = {.err = err, .err_len = err_len};
	*out = NULL;
	*n_out = 0;
	if (err && err_len)
		err[0] = '\0';
	cfg_path_key(&c.path, "adapter");
	cfg_path_key(&c.path, "options");
	if (opts && opts->kind != CFG_MAP) {
		char got[80];
		return oerr(&c, opts, "expected a map, got %s", cfg_describe(opts, got, sizeof got));
	}
	size_t given = opts ? opts->n : 0;

	/* Unknown keys first, in document order: the operator's typo is the likely error. */
	for (size_t i = 0; i < given; i++) {
		if (!lookup(table, n, opts->keys[i]->str)) {
			cfg_path_key(&c.path, opts->keys[i]->str);
			return unknown_key(&c, opts->keys[i], table, n);
		}
	}

	/* At most one entry per declared option plus one per given key. */
	c.vals = calloc(n + given + 1, sizeof *c.vals);
	if (!c.vals)
		return onomem(&c);
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		const siogw_option *o = &table[i];
		if (o->type == SIOGW_OPT_PREFIX) {
			for (size_t k = 0; k < given && rc == 0; k++) {
				const cfg_node *key = opts->keys[k], *v = opts->items[k];
				if (lookup(table, n, key->str) != o || (v->kind == CFG_SCALAR && v->is_null))
					continue;
				size_t mark = cfg_path_key(&c.path, key->str);
				rc = add_value(&c, o, key->str, v);
				cfg_path_pop(&c.path, mark);
			}
			continue;
		}
		size_t mark = cfg_path_key(&c.path, o->name);
		const cfg_node *v = cfg_map_get(opts, o->name);
		if (v && !(v->kind == CFG_SCALAR && v->is_null)) {
			rc = add_value(&c, o, o->name, v);
		} else if (o->def) {
			/* A bad default is the plugin's bug; the message says whose. */
			cfg_node d = {.kind = CFG_SCALAR, .file = "<plugin default>", .line = 1, .col = 1,
				      .str = (char *)o->def, .len = strlen(o->def)};
			rc = add_value(&c, o, o->name, &d);
		}
		cfg_path_pop(&c.path, mark);
	}
	if (rc < 0) {
		gw_config_optvals_free(c.vals, c.n);
		return rc;
	}
	*out = c.vals;
	*n_out = c.n;
	return 0;
}

void gw_config_optvals_free(siogw_optval *v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++) {
		free((char *)v[i].name);
		free((char *)v[i].str);
	}
	free(v);
}

int gw_config_plugin_refused(const gw_config *cfg, const siogw_optval *vals, size_t n, size_t bad,
			     const char *msg, char *err, size_t err_len)
{
	const cfg_node *opts = cfg->adapter.options, *at = NULL;
	cfg_path path = {.len = 0};
	cfg_path_key(&path, "adapter");
	cfg_path_key(&path, "options");
	const char *name = bad < n ? vals[bad].name : NULL;
	if (name) {
		cfg_path_key(&path, name);
		for (size_t i = 0; opts && opts->kind == CFG_MAP && i < opts->n && !at; i++)
			if (strcmp(opts->keys[i]->str, name) == 0)
				at = opts->keys[i];
	}
	bool is_default = name && !at;
	if (!at)
		at = opts ? opts : cfg_map_get(cfg->root, "adapter");
	if (at)
		cfg_error(err, err_len, at, path.buf, "%s%s", msg, is_default ? " (the default)" : "");
	else /* no adapter section at all: the embedded defaults */
		snprintf(err, err_len, "%s: %s: %s%s", cfg->path ? cfg->path : "?", path.buf, msg,
			 is_default ? " (the default)" : "");
	return -GW_ECONFIG;
}

/* ---- --plugin-help ---------------------------------------------------------------- */

static const char *type_name(siogw_opt_type t)
{
	static const char *names[] = {"string", "int", "bool", "size", "duration", "enum", "list", "prefix"};
	return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

static void range_text(const siogw_option *o, char *buf, size_t len)
{
	buf[0] = '\0';
	switch (o->type) {
	case SIOGW_OPT_INT:
	case SIOGW_OPT_SIZE:
	case SIOGW_OPT_DURATION:
		if (o->min <= o->max)
			snprintf(buf, len, "%" PRId64 "..%" PRId64 "%s", o->min, o->max,
				 o->type == SIOGW_OPT_SIZE ? " bytes" : o->type == SIOGW_OPT_DURATION ? " ms" : "");
		break;
	case SIOGW_OPT_ENUM:
		snprintf(buf, len, "%s", o->choices ? o->choices : "");
		break;
	case SIOGW_OPT_BOOL:
		snprintf(buf, len, "true|false");
		break;
	case SIOGW_OPT_PREFIX:
		snprintf(buf, len, "any %s<key>", o->name);
		break;
	default:
		break;
	}
}

void gw_config_print_options(const siogw_option *table, size_t n, void *file)
{
	FILE *f = file;
	char name[128], range[128];
	int wn = 6, wt = 8, wd = 7, wr = 5; /* at least the header widths */
	for (size_t i = 0; i < n; i++) {
		const siogw_option *o = &table[i];
		int l = (int)strlen(o->name) + (o->type == SIOGW_OPT_PREFIX ? 1 : 0);
		wn = l > wn ? l : wn;
		l = o->def ? (int)strlen(o->def) : 1;
		wd = l > wd ? l : wd;
		range_text(o, range, sizeof range);
		l = (int)strlen(range);
		wr = l > wr ? l : wr;
	}
	if (n == 0) {
		fprintf(f, "(this plugin takes no options)\n");
		return;
	}
	fprintf(f, "%-*s  %-*s  %-*s  %-*s  %s\n", wn, "OPTION", wt, "TYPE", wd, "DEFAULT", wr, "RANGE",
		"DESCRIPTION");
	for (size_t i = 0; i < n; i++) {
		const siogw_option *o = &table[i];
		snprintf(name, sizeof name, "%s%s", o->name, o->type == SIOGW_OPT_PREFIX ? "*" : "");
		range_text(o, range, sizeof range);
		fprintf(f, "%-*s  %-*s  %-*s  %-*s  %s\n", wn, name, wt, type_name(o->type), wd,
			o->def ? o->def : "-", wr, range, o->help ? o->help : "");
	}
}
