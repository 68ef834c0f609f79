/*
 * config.c — cfg_node tree → gw_config, driven by the option tables below.
 *
 * The tables are the single source of truth for the gateway's own keys: the valid
 * keys listed in "unknown key" errors, the types, the bounds and the defaults all come
 * from them (docs/configuration.md mirrors them). Defaults are applied in exactly one
 * place, set_default(), which runs the table's default text through the same
 * converter as operator input, so a default can never bypass a check. Cross-field
 * rules (tls pairs, topic templates, namespace names, route placeholders) run after
 * the fields they need are filled.
 */
#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config/cfg_tree.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/jwt.h"
#include "util/names.h"
#include "util/sid.h"
#include "util/log.h"

_Static_assert(GW_LOG_ERROR == 0 && GW_LOG_WARN == 1 && GW_LOG_INFO == 2 && GW_LOG_DEBUG == 3,
	       "log.level choices are indexed by GW_LOG_*");
_Static_assert(GW_AUTH_NONE == 0 && GW_AUTH_BACKEND == 1, "auth choices are indexed by GW_AUTH_*");
_Static_assert(GW_ACK_BACKEND == 0 && GW_ACK_BROKER == 1, "ack choices are indexed by GW_ACK_*");

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define AT(base, off, T) ((T *)(void *)((char *)(base) + (off)))
#define MS_MAX 86400000     /* one day: any longer timer is a typo */
#define BYTES_MAX (1 << 30) /* 1 GiB */
#define MAX_FIELDS 32       /* per table; checked by fill_map */

typedef struct vctx {
	char *err;
	size_t err_len;
	cfg_path path;
} vctx;

typedef enum ftype {
	F_STR,     /* char *                                                    */
	F_PATH,    /* char *, a URL path normalized to "/x/"; "" stays ""        */
	F_INT,     /* int in [min, max]                                         */
	F_COUNT,   /* size_t in [min, max], a plain integer (queue lengths)     */
	F_SIZE,    /* size_t in [min, max], bytes with k/m/g suffixes           */
	F_BOOL,    /* bool                                                      */
	F_ENUM,    /* int: index into choices "a|b|c"                           */
	F_STRLIST, /* char ** at off, size_t count at off_n                     */
	F_MAP,     /* a nested table whose offsets are relative to the same base */
	F_LIST,    /* list of maps: array of elem_size at off, count at off_n   */
	F_CUSTOM,  /* fn converts, free_fn (optional) frees                      */
} ftype;

enum { REQUIRED = 1, NONEMPTY = 2 };

typedef struct field field;
typedef int (*conv_fn)(vctx *c, const field *f, const cfg_node *v, void *base);
typedef int (*check_fn)(vctx *c, const cfg_node *list, void *elems, size_t i);

struct field {
	const char *key;
	ftype type;
	size_t off, off_n;
	const char *def;      /* default as text; YAML flow text ("[a, b]") for list and custom
			       * types; NULL = none */
	int64_t min, max;
	const char *choices;  /* F_ENUM */
	unsigned flags;
	const field *sub;     /* F_MAP, F_LIST */
	size_t n_sub;
	size_t elem_size;     /* F_LIST */
	check_fn check;       /* F_LIST: runs on each element once it is filled */
	conv_fn fn;           /* F_CUSTOM */
	void (*free_fn)(const field *f, void *base);
	const char *help;
};

static int verr(vctx *c, const cfg_node *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int verr(vctx *c, const cfg_node *at, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (at)
		cfg_verror(c->err, c->err_len, at->file, at->line, at->col, c->path.buf, fmt, ap);
	else
		cfg_verror(c->err, c->err_len, "?", 0, 0, c->path.buf, fmt, ap);
	va_end(ap);
	return -GW_ECONFIG;
}

static int nomem(vctx *c)
{
	if (c->err && c->err_len)
		snprintf(c->err, c->err_len, "out of memory");
	return -GW_ENOMEM;
}

/* ---- converters ----------------------------------------------------------------- */

static int check_scalar(vctx *c, const cfg_node *v, siogw_opt_type t, const field *f, int64_t *num)
{
	char msg[512];
	if (cfg_scalar_check(v, t, f->min, f->max, f->choices, num, msg, sizeof msg) < 0)
		return verr(c, v, "%s", msg);
	return 0;
}

static int conv_string(vctx *c, const field *f, const cfg_node *v, char **out)
{
	int64_t unused;
	int rc = check_scalar(c, v, SIOGW_OPT_STRING, f, &unused);
	if (rc < 0)
		return rc;
	if ((f->flags & NONEMPTY) && v->len == 0)
		return verr(c, v, "must not be empty");
	char *s;
	if (f->type == F_PATH && v->len > 0) {
		/* Clients and proxies disagree on trailing slashes; one spelling avoids
		 * every "works with /socket.io but not /socket.io/" report. */
		if (strpbrk(v->str, "?# \t"))
			return verr(c, v, "must be a plain URL path (no '?', '#' or spaces)");
		bool lead = v->str[0] != '/', trail = v->str[v->len - 1] != '/';
		s = malloc(v->len + 3);
		if (s)
			snprintf(s, v->len + 3, "%s%s%s", lead ? "/" : "", v->str, trail ? "/" : "");
	} else {
		s = strdup(v->str);
	}
	if (!s)
		return nomem(c);
	free(*out);
	*out = s;
	return 0;
}

static int conv_strlist(vctx *c, const field *f, const cfg_node *v, void *base)
{
	char got[80];
	if (v->kind != CFG_SEQ)
		return verr(c, v, "expected a list, got %s", cfg_describe(v, got, sizeof got));
	char **arr = calloc(v->n ? v->n : 1, sizeof *arr);
	if (!arr)
		return nomem(c);
	/* Publish the array first so gw_config_free can clean up a half-filled list. */
	*AT(base, f->off, char **) = arr;
	*AT(base, f->off_n, size_t) = v->n;
	field item = {.type = F_STR, .flags = NONEMPTY};
	for (size_t i = 0; i < v->n; i++) {
		size_t mark = cfg_path_index(&c->path, i);
		int rc = conv_string(c, &item, v->items[i], &arr[i]);
		if (rc < 0)
			return rc;
		cfg_path_pop(&c->path, mark);
	}
	return 0;
}

static int fill_map(vctx *c, const field *fs, size_t nf, const cfg_node *map, void *base);

static int conv_list(vctx *c, const field *f, const cfg_node *v, void *base)
{
	char got[80];
	if (v->kind != CFG_SEQ)
		return verr(c, v, "expected a list, got %s", cfg_describe(v, got, sizeof got));
	if ((f->flags & NONEMPTY) && v->n == 0)
		return verr(c, v, "needs at least one entry");
	char *elems = calloc(v->n ? v->n : 1, f->elem_size);
	if (!elems)
		return nomem(c);
	*AT(base, f->off, void *) = elems;
	*AT(base, f->off_n, size_t) = v->n;
	for (size_t i = 0; i < v->n; i++) {
		size_t mark = cfg_path_index(&c->path, i);
		int rc = fill_map(c, f->sub, f->n_sub, v->items[i], elems + i * f->elem_size);
		if (rc == 0 && f->check)
			rc = f->check(c, v, elems, i);
		if (rc < 0)
			return rc;
		cfg_path_pop(&c->path, mark);
	}
	return 0;
}

/* Convert a present, non-null value. */
static int set_field(vctx *c, const field *f, const cfg_node *v, void *base)
{
	int64_t x = 0;
	int rc;
	switch (f->type) {
	case F_STR:
	case F_PATH:
		return conv_string(c, f, v, AT(base, f->off, char *));
	case F_INT:
		if ((rc = check_scalar(c, v, SIOGW_OPT_INT, f, &x)) == 0)
			*AT(base, f->off, int) = (int)x;
		return rc;
	case F_COUNT:
	case F_SIZE:
		rc = check_scalar(c, v, f->type == F_SIZE ? SIOGW_OPT_SIZE : SIOGW_OPT_INT, f, &x);
		if (rc == 0)
			*AT(base, f->off, size_t) = (size_t)x;
		return rc;
	case F_BOOL:
		if ((rc = check_scalar(c, v, SIOGW_OPT_BOOL, f, &x)) == 0)
			*AT(base, f->off, bool) = x != 0;
		return rc;
	case F_ENUM:
		if ((rc = check_scalar(c, v, SIOGW_OPT_ENUM, f, &x)) == 0)
			*AT(base, f->off, int) = (int)x;
		return rc;
	case F_STRLIST:
		return conv_strlist(c, f, v, base);
	case F_MAP:
		return fill_map(c, f->sub, f->n_sub, v, base);
	case F_LIST:
		return conv_list(c, f, v, base);
	case F_CUSTOM:
		return f->fn(c, f, v, base);
	}
	return verr(c, v, "internal error: bad field type");
}

/*
 * THE place where defaults happen: a key that is absent (or null) gets the table's
 * default, converted exactly like operator input. `where` positions the error for a
 * missing required key (the enclosing map, or the null value).
 */
static int set_default(vctx *c, const field *f, const cfg_node *where, void *base)
{
	if (f->flags & REQUIRED)
		return verr(c, where, "required key missing");
	if (f->type == F_MAP)
		return fill_map(c, f->sub, f->n_sub, NULL, base);
	if (!f->def)
		return 0; /* optional: stays NULL / 0 / false / empty */
	if (f->type == F_STRLIST || f->type == F_LIST || f->type == F_CUSTOM) {
		/* collection defaults are written as YAML flow text: "[polling, websocket]" */
		cfg_node *t = NULL;
		int rc = cfg_tree_parse("<default>", f->def, strlen(f->def), &t, c->err, c->err_len);
		if (rc == 0)
			rc = set_field(c, f, t, base);
		cfg_tree_free(t);
		return rc;
	}
	cfg_node s = {.kind = CFG_SCALAR, .file = "<default>", .line = 1, .col = 1,
		      .str = (char *)f->def, .len = strlen(f->def)};
	return set_field(c, f, &s, base);
}

static int unknown_key(vctx *c, const cfg_node *key, const field *fs, size_t nf)
{
	char valid[512];
	size_t o = 0;
	valid[0] = '\0';
	for (size_t i = 0; i < nf && o < sizeof valid; i++) {
		int n = snprintf(valid + o, sizeof valid - o, "%s%s", i ? ", " : "", fs[i].key);
		if (n < 0)
			break;
		o += (size_t)n;
	}
	return verr(c, key, "unknown key (valid keys: %s)", valid);
}

/*
 * Fill `base` from `map` (NULL = the whole map is absent) per the table: given keys in
 * document order first, so the first error is the first one in the file; then the
 * defaults of the keys not given.
 */
static int fill_map(vctx *c, const field *fs, size_t nf, const cfg_node *map, void *base)
{
	char got[80];
	bool seen[MAX_FIELDS] = {false};
	if (nf > MAX_FIELDS)
		return verr(c, map, "internal error: option table too large");
	if (map && map->kind != CFG_MAP)
		return verr(c, map, "expected a map, got %s", cfg_describe(map, got, sizeof got));
	for (size_t i = 0; map && i < map->n; i++) {
		const cfg_node *k = map->keys[i], *v = map->items[i];
		size_t mark = cfg_path_key(&c->path, k->str);
		size_t j = 0;
		while (j < nf && strcmp(fs[j].key, k->str) != 0)
			j++;
		int rc;
		if (j == nf)
			rc = unknown_key(c, k, fs, nf);
		else if (v->kind == CFG_SCALAR && v->is_null)
			rc = set_default(c, &fs[j], v, base);
		else
			rc = set_field(c, &fs[j], v, base);
		if (rc < 0)
			return rc;
		seen[j] = true;
		cfg_path_pop(&c->path, mark);
	}
	for (size_t j = 0; j < nf; j++) {
		if (seen[j])
			continue;
		size_t mark = cfg_path_key(&c->path, fs[j].key);
		int rc = set_default(c, &fs[j], map, base);
		if (rc < 0)
			return rc;
		cfg_path_pop(&c->path, mark);
	}
	return 0;
}

/* ---- custom fields -------------------------------------------------------------- */

static int conv_transports(vctx *c, const field *f, const cfg_node *v, void *base)
{
	gw_config *cfg = base;
	char got[80];
	if (v->kind != CFG_SEQ)
		return verr(c, v, "expected a list, got %s", cfg_describe(v, got, sizeof got));
	if (v->n == 0)
		return verr(c, v, "needs at least one of polling, websocket");
	cfg->engine.polling = cfg->engine.websocket = false;
	field item = {.choices = "polling|websocket"};
	for (size_t i = 0; i < v->n; i++) {
		int64_t which;
		size_t mark = cfg_path_index(&c->path, i);
		int rc = check_scalar(c, v->items[i], SIOGW_OPT_ENUM, &item, &which);
		if (rc < 0)
			return rc;
		cfg_path_pop(&c->path, mark);
		if (which == 0)
			cfg->engine.polling = true;
		else
			cfg->engine.websocket = true;
	}
	return 0;
}

/* engine.workers auto: one loop per online CPU. */
static int online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > GW_MAX_WORKERS ? GW_MAX_WORKERS : (int)n;
}

/* engine.workers: a count 1..GW_MAX_WORKERS, or "auto" (the online CPUs). */
static int conv_workers(vctx *c, const field *f, const cfg_node *v, void *base)
{
	(void)f;
	gw_config *cfg = base;
	if (v->kind == CFG_SCALAR && !strcmp(v->str, "auto")) {
		cfg->engine.workers = online_cpus();
		return 0;
	}
	field count = {.min = 1, .max = GW_MAX_WORKERS};
	int64_t n;
	char msg[512];
	if (cfg_scalar_check(v, SIOGW_OPT_INT, count.min, count.max, NULL, &n, msg, sizeof msg) < 0)
		return verr(c, v, "%s, or auto (one per online CPU)", msg);
	cfg->engine.workers = (int)n;
	return 0;
}

/* admin_ui.auth: false, or {username, password_hash} (the sub table). */
static bool is_bcrypt(const char *h)
{
	/* $2a$ / $2b$ / $2y$, a two-digit cost 04..31, 22 salt + 31 hash characters */
	static const char b64[] = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	if (strlen(h) != 60 || h[0] != '$' || h[1] != '2' || !strchr("aby", h[2]) || h[3] != '$' ||
	    !isdigit((unsigned char)h[4]) || !isdigit((unsigned char)h[5]) || h[6] != '$')
		return false;
	int cost = (h[4] - '0') * 10 + (h[5] - '0');
	if (cost < 4 || cost > 31)
		return false;
	for (const char *p = h + 7; *p; p++)
		if (!strchr(b64, *p))
			return false;
	return true;
}

static int conv_admin_auth(vctx *c, const field *f, const cfg_node *v, void *base)
{
	gw_config *cfg = base;
	char got[80];
	if (v->kind == CFG_SCALAR) {
		int64_t on;
		field b = {.type = F_BOOL};
		if (check_scalar(c, v, SIOGW_OPT_BOOL, &b, &on) < 0 || on)
			return verr(c, v, "expected {username, password_hash}, or false to let anyone in, got %s",
				    cfg_describe(v, got, sizeof got));
		cfg->admin_ui.auth = GW_ADMIN_AUTH_NONE;
		return 0;
	}
	int rc = fill_map(c, f->sub, f->n_sub, v, base);
	if (rc < 0)
		return rc;
	if (!is_bcrypt(cfg->admin_ui.password_hash)) {
		cfg_path_key(&c->path, "password_hash");
		return verr(c, cfg_map_get(v, "password_hash"),
			    "not a bcrypt hash ($2b$10$ and 53 characters, as bcrypt/bcryptjs hash() makes)");
	}
	cfg->admin_ui.auth = GW_ADMIN_AUTH_BASIC;
	return 0;
}

/* RFC 9110 token characters: anything else would break the response head. */
static bool is_header_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!strchr("!#$%&'*+-.^_`|~", *s) && !(*s >= '0' && *s <= '9') &&
		    !(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z'))
			return false;
	return true;
}

static int conv_headers(vctx *c, const field *f, const cfg_node *v, void *base)
{
	gw_config *cfg = base;
	char got[80];
	if (v->kind != CFG_MAP)
		return verr(c, v, "expected a map of header names to values, got %s",
			    cfg_describe(v, got, sizeof got));
	gw_kv *kv = calloc(v->n ? v->n : 1, sizeof *kv);
	if (!kv)
		return nomem(c);
	cfg->engine.headers = kv;
	cfg->engine.n_headers = v->n;
	field str = {.type = F_STR};
	for (size_t i = 0; i < v->n; i++) {
		const cfg_node *k = v->keys[i], *val = v->items[i];
		size_t mark = cfg_path_key(&c->path, k->str);
		if (!is_header_name(k->str))
			return verr(c, k, "not a valid HTTP header name");
		for (size_t j = 0; j < i; j++)
			if (strcasecmp(kv[j].key, k->str) == 0)
				return verr(c, k, "duplicate header (header names ignore case)");
		int rc = conv_string(c, &str, val, &kv[i].value);
		if (rc < 0)
			return rc;
		if (strpbrk(kv[i].value, "\r\n"))
			return verr(c, val, "header values must be one line");
		if (!(kv[i].key = strdup(k->str)))
			return nomem(c);
		cfg_path_pop(&c->path, mark);
	}
	return 0;
}

static void free_headers(const field *f, void *base)
{
	gw_config *cfg = base;
	for (size_t i = 0; cfg->engine.headers && i < cfg->engine.n_headers; i++) {
		free(cfg->engine.headers[i].key);
		free(cfg->engine.headers[i].value);
	}
	free(cfg->engine.headers);
}

/* adapter.options stays a tree: only the plugin's table knows its keys. */
static int conv_options(vctx *c, const field *f, const cfg_node *v, void *base)
{
	char got[80];
	if (v->kind != CFG_MAP)
		return verr(c, v, "expected a map, got %s", cfg_describe(v, got, sizeof got));
	((gw_config *)base)->adapter.options = v;
	return 0;
}

/* The whole of a file, NUL-terminated; NULL with errno set. */
static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	gw_buf b = {0};
	char chunk[4096];
	size_t n;
	int err = 0;
	while (!err && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
		err = gw_buf_append(&b, chunk, n) || b.len > 1024 * 1024; /* a key is a few KiB */
	bool bad = err || ferror(f);
	fclose(f);
	if (bad || gw_buf_putc(&b, 0)) {
		gw_buf_free(&b);
		errno = bad && !err ? EIO : EFBIG;
		return NULL;
	}
	*len = b.len - 1;
	return (char *)gw_buf_steal(&b, NULL);
}

/*
 * auth: jwt needs a jwt map and the jwt map needs auth: jwt; the verifier is built here,
 * so a key that does not parse or does not fit its algorithm fails --check too.
 */
static int check_jwt(vctx *c, const cfg_node *item, gw_nsp_config *n)
{
	const cfg_node *jn = cfg_map_get(item, "jwt");
	if (n->auth != GW_AUTH_JWT) {
		if (!jn || (jn->kind == CFG_SCALAR && jn->is_null))
			return 0;
		size_t mark = cfg_path_key(&c->path, "jwt");
		int rc = verr(c, jn, "only used with auth: jwt");
		cfg_path_pop(&c->path, mark);
		return rc;
	}
	size_t mark = cfg_path_key(&c->path, "jwt");
	if (!jn || jn->kind != CFG_MAP)
		return verr(c, jn ? jn : cfg_map_get(item, "auth"),
			    "auth: jwt needs a jwt map (algorithms, and secret or public_key_file)");
	gw_jwt_opts o = {.issuer = n->jwt.issuer, .audience = n->jwt.audience,
			 .leeway_ms = n->jwt.leeway_ms, .require_exp = n->jwt.require_exp};
	const cfg_node *algs = cfg_map_get(jn, "algorithms");
	if (!n->jwt.n_algorithms) {
		if (algs)
			cfg_path_key(&c->path, "algorithms");
		return verr(c, algs ? algs : jn, "needs at least one algorithm (HS256, RS256, ES256)");
	}
	for (size_t k = 0; k < n->jwt.n_algorithms; k++) {
		unsigned a = gw_jwt_alg(n->jwt.algorithms[k]);
		if (!a) {
			cfg_path_key(&c->path, "algorithms");
			cfg_path_index(&c->path, k);
			return verr(c, algs->items[k], "unknown algorithm \"%s\" (HS256, RS256, ES256)",
				    n->jwt.algorithms[k]);
		}
		o.algs |= a;
	}
	if (n->jwt.secret) {
		o.secret = (const uint8_t *)n->jwt.secret;
		o.secret_len = strlen(n->jwt.secret);
	}
	char *pem = NULL;
	const cfg_node *kf = cfg_map_get(jn, "public_key_file");
	if (n->jwt.public_key_file && !(pem = read_file(n->jwt.public_key_file, &o.pem_len))) {
		cfg_path_key(&c->path, "public_key_file");
		return verr(c, kf, "cannot read %s: %s", n->jwt.public_key_file, strerror(errno));
	}
	o.pem = pem;
	char why[256] = "";
	n->verifier = gw_jwt_new(&o, why, sizeof why);
	free(pem);
	if (!n->verifier) {
		/* at the key the message is about, when it names one */
		const cfg_node *at = jn;
		if (strstr(why, "secret") && cfg_map_get(jn, "secret"))
			at = cfg_map_get(jn, "secret"), cfg_path_key(&c->path, "secret");
		else if (kf && (strstr(why, "key") || strstr(why, "PEM")))
			at = kf, cfg_path_key(&c->path, "public_key_file");
		return verr(c, at, "%s", why);
	}
	cfg_path_pop(&c->path, mark);
	return 0;
}

/* A metric label value: backslash, double quote and newline escaped (Prometheus text). */
static char *label_value(const char *s)
{
	gw_buf b = {0};
	int err = 0;
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			err |= gw_buf_putc(&b, '\\') | gw_buf_putc(&b, *s);
		else if (*s == '\n')
			err |= gw_buf_puts(&b, "\\n");
		else
			err |= gw_buf_putc(&b, *s);
	}
	if (err || gw_buf_putc(&b, 0)) {
		gw_buf_free(&b);
		return NULL;
	}
	return (char *)gw_buf_steal(&b, NULL);
}

/*
 * A namespace entry has a name (socket.io namespaces are paths; duplicates would shadow
 * each other) or a match (a dynamic namespace: the regex is compiled here, so --check
 * reports a bad one), never both.
 */
static int check_nsp(vctx *c, const cfg_node *list, void *elems, size_t i)
{
	gw_nsp_config *nsps = elems, *n = &nsps[i];
	const cfg_node *item = list->items[i];
	const cfg_node *name = cfg_map_get(item, "name"), *match = cfg_map_get(item, "match");
	char got[80];
	if (n->name && n->match) {
		cfg_path_key(&c->path, "match");
		return verr(c, match, "an entry has a name or a match, not both");
	}
	if (!n->name && !n->match) {
		cfg_path_key(&c->path, "name");
		return verr(c, name ? name : item, "required key missing (or match, for dynamic namespaces)");
	}
	if (n->match) {
		size_t mark = cfg_path_key(&c->path, "match");
		if (!(n->match_re = calloc(1, sizeof *n->match_re)))
			return nomem(c);
		int rc = regcomp(n->match_re, n->match, REG_EXTENDED | REG_NOSUB);
		if (rc != 0) {
			char why[160];
			regerror(rc, n->match_re, why, sizeof why);
			free(n->match_re);
			n->match_re = NULL;
			return verr(c, match, "not a POSIX extended regular expression: %s", why);
		}
		cfg_path_pop(&c->path, mark);
		if (n->n_routes) {
			cfg_path_key(&c->path, "routes");
			return verr(c, cfg_map_get(item, "routes"), "not allowed beside match (a dynamic namespace has no routes)");
		}
	} else {
		size_t mark = cfg_path_key(&c->path, "name");
		if (n->name[0] != '/')
			return verr(c, name, "must start with '/', got %s", cfg_describe(name, got, sizeof got));
		for (size_t j = 0; j < i; j++) {
			if (nsps[j].name && strcmp(nsps[j].name, n->name) == 0) {
				const cfg_node *first = cfg_map_get(list->items[j], "name");
				return verr(c, name, "duplicate namespace %s (first at %d:%d)",
					    cfg_describe(name, got, sizeof got), first->line, first->col);
			}
		}
		cfg_path_pop(&c->path, mark);
	}
	if (!(n->label = label_value(n->name ? n->name : n->match)))
		return nomem(c);
	return check_jwt(c, item, n);
}

/*
 * Route topics: `{room}` stands for the rest of the topic name (dots included), so it
 * can only be the tail — the bus bridge subscribes to the part before it as a prefix.
 */
static int check_route(vctx *c, const cfg_node *list, void *elems, size_t i)
{
	static const char ph[] = "{room}";
	const gw_route *r = (const gw_route *)elems + i;
	const cfg_node *item = list->items[i];
	const cfg_node *topic = cfg_map_get(item, "topic");
	size_t mark = cfg_path_key(&c->path, "topic");
	char got[80];
	cfg_describe(topic, got, sizeof got);
	const char *at = strstr(r->topic, ph);
	if (at && strstr(at + 1, ph))
		return verr(c, topic, "at most one {room} placeholder, got %s", got);
	if (at && at[sizeof ph - 1] != '\0')
		return verr(c, topic, "{room} must end the topic, got %s", got);
	if (at == r->topic)
		return verr(c, topic, "needs a fixed prefix before {room}, got %s", got);
	const char *brace = strpbrk(r->topic, "{}");
	if (brace && brace != at)
		return verr(c, topic, "unknown placeholder (only {room} is supported), got %s", got);
	cfg_path_pop(&c->path, mark);
	if (at && r->room) {
		mark = cfg_path_key(&c->path, "room");
		return verr(c, cfg_map_get(item, "room"),
			    "not allowed when the topic has a {room} placeholder");
	}
	if (gw_event_reserved(r->event)) {
		/* clients treat these names as protocol events: a route must not fake them */
		mark = cfg_path_key(&c->path, "event");
		return verr(c, cfg_map_get(item, "event"), "\"%s\" is a reserved event name", r->event);
	}
	return 0;
}

/* An event_topics pattern: a name, "*", or a prefix then one '*' at the end. */
static int check_event_topic(vctx *c, const cfg_node *list, void *elems, size_t i)
{
	const gw_event_topic *t = (const gw_event_topic *)elems + i;
	const char *star = strchr(t->event, '*');
	if (star && star[1] != '\0') {
		cfg_path_key(&c->path, "event");
		return verr(c, cfg_map_get(list->items[i], "event"),
			    "'*' only at the end (a prefix: \"payment.*\"), got \"%s\"", t->event);
	}
	return 0;
}

/* ---- the tables ------------------------------------------------------------------ */

#define OFF(m) offsetof(gw_config, m)
#define NSP(m) offsetof(gw_nsp_config, m)
#define RT(m) offsetof(gw_route, m)

static const field tls_fields[] = {
	{.key = "cert", .type = F_STR, .off = OFF(tls_cert), .flags = NONEMPTY, .help = "PEM certificate (chain) file"},
	{.key = "key", .type = F_STR, .off = OFF(tls_key), .flags = NONEMPTY, .help = "PEM private key file"},
};

static const field listen_fields[] = {
	{.key = "host", .type = F_STR, .off = OFF(listen_host), .def = "0.0.0.0", .flags = NONEMPTY, .help = "address to bind"},
	{.key = "port", .type = F_INT, .off = OFF(listen_port), .def = "3000", .min = 1, .max = 65535, .help = "TCP port"},
	{.key = "max_connections", .type = F_INT, .off = OFF(max_connections), .def = "0", .min = 0, .max = 16777216,
	 .help = "open connections beyond which new ones are refused (503); 0 = as many as the fd limit allows"},
	{.key = "max_header_bytes", .type = F_SIZE, .off = OFF(max_header_bytes), .def = "16k", .min = 1024, .max = 1048576,
	 .help = "request line + headers beyond which a request is refused (431) and the connection closed"},
	{.key = "request_timeout_ms", .type = F_INT, .off = OFF(request_timeout_ms), .def = "30000", .min = 100, .max = MS_MAX,
	 .help = "time to receive a whole request, body included (408 and close beyond); also the keep-alive idle limit"},
	{.key = "tls", .type = F_MAP, .sub = tls_fields, .n_sub = N(tls_fields), .help = "serve https/wss; needs cert and key"},
};

static const field cors_fields[] = {
	{.key = "origins", .type = F_STRLIST, .off = OFF(engine.cors_origins), .off_n = OFF(engine.n_cors_origins),
	 .def = "[\"*\"]", .help = "allowed Origin values; \"*\" = any"},
	{.key = "credentials", .type = F_BOOL, .off = OFF(engine.cors_credentials), .def = "false",
	 .help = "send Access-Control-Allow-Credentials"},
};

static const field engine_fields[] = {
	{.key = "path", .type = F_PATH, .off = OFF(engine.path), .def = "/socket.io/", .flags = NONEMPTY,
	 .help = "URL path of the Engine.IO endpoint"},
	{.key = "transports", .type = F_CUSTOM, .fn = conv_transports, .def = "[polling, websocket]",
	 .help = "allowed transports"},
	{.key = "ping_interval_ms", .type = F_INT, .off = OFF(engine.ping_interval_ms), .def = "25000", .min = 1, .max = MS_MAX,
	 .help = "server ping period"},
	{.key = "ping_timeout_ms", .type = F_INT, .off = OFF(engine.ping_timeout_ms), .def = "20000", .min = 1, .max = MS_MAX,
	 .help = "time to wait for a pong"},
	{.key = "max_payload", .type = F_SIZE, .off = OFF(engine.max_payload), .def = "1000000", .min = 1, .max = BYTES_MAX,
	 .help = "largest accepted packet/payload in bytes"},
	{.key = "connect_timeout_ms", .type = F_INT, .off = OFF(engine.connect_timeout_ms), .def = "45000", .min = 1, .max = MS_MAX,
	 .help = "close a session that joins no namespace in time"},
	{.key = "upgrade_timeout_ms", .type = F_INT, .off = OFF(engine.upgrade_timeout_ms), .def = "10000", .min = 1, .max = MS_MAX,
	 .help = "abort a websocket upgrade not completed in time"},
	{.key = "cors", .type = F_MAP, .sub = cors_fields, .n_sub = N(cors_fields), .help = "CORS for polling requests"},
	{.key = "cookie", .type = F_BOOL, .off = OFF(engine.cookie), .def = "false", .help = "set the sticky-session cookie"},
	{.key = "cookie_name", .type = F_STR, .off = OFF(engine.cookie_name), .def = "io", .flags = NONEMPTY,
	 .help = "name of that cookie"},
	{.key = "echo_path", .type = F_PATH, .off = OFF(engine.echo_path), .def = "",
	 .help = "diagnostic raw Engine.IO echo endpoint; \"\" = off"},
	{.key = "headers", .type = F_CUSTOM, .fn = conv_headers, .free_fn = free_headers,
	 .help = "extra HTTP response headers"},
	{.key = "send_queue", .type = F_COUNT, .off = OFF(engine.send_queue), .def = "1024", .min = 1, .max = 1000000,
	 .help = "max queued packets per connection"},
	{.key = "serve_client", .type = F_BOOL, .off = OFF(engine.serve_client), .def = "false",
	 .help = "serve the socket.io-client bundle at {path}socket.io.js, .min.js, .esm.min.js (and .map)"},
	{.key = "client_dir", .type = F_STR, .off = OFF(engine.client_dir), .flags = NONEMPTY,
	 .help = "the bundle's directory (absent: the build tree's, then the installed one)"},
	{.key = "parser", .type = F_ENUM, .off = OFF(engine.parser), .def = "json", .choices = "json|msgpack",
	 .help = "Socket.IO packet format: socket.io-parser (json) or socket.io-msgpack-parser (msgpack)"},
	{.key = "allow_eio3", .type = F_BOOL, .off = OFF(engine.allow_eio3), .def = "false",
	 .help = "also serve Engine.IO v3 clients (socket.io-client 2.x), as socket.io's allowEIO3"},
	{.key = "per_message_deflate", .type = F_BOOL, .off = OFF(engine.per_message_deflate), .def = "false",
	 .help = "websocket permessage-deflate"},
	{.key = "busy_poll_us", .type = F_INT, .off = OFF(engine.busy_poll_us), .def = "0", .min = 0, .max = 1000000,
	 .help = "after activity, poll without sleeping this long (µs): lower latency for CPU; 0 = off"},
	{.key = "workers", .type = F_CUSTOM, .fn = conv_workers,
	 .help = "service loops (threads), each with its own connections: a count, or auto (one per CPU); default 1"},
};

static const field adapter_fields[] = {
	{.key = "plugin", .type = F_STR, .off = OFF(adapter.plugin), .def = "memory", .flags = NONEMPTY,
	 .help = "bus plugin name, or a path to a .so"},
	{.key = "plugin_dir", .type = F_STR, .off = OFF(adapter.plugin_dir), .flags = NONEMPTY,
	 .help = "where plugin names are looked up"},
	{.key = "inbound_queue", .type = F_COUNT, .off = OFF(adapter.inbound_queue), .def = "65536", .min = 1, .max = 16777216,
	 .help = "max messages waiting for the service loop"},
	{.key = "options", .type = F_CUSTOM, .fn = conv_options, .help = "the plugin's options (see --plugin-help)"},
};

static const field topics_fields[] = {
	{.key = "prefix", .type = F_STR, .off = OFF(topics.prefix), .def = "sio", .flags = NONEMPTY, .help = "{prefix} in templates"},
	{.key = "in", .type = F_STR, .off = OFF(topics.in), .def = "{prefix}.in", .flags = NONEMPTY,
	 .help = "gateway → backends"},
	{.key = "out", .type = F_STR, .off = OFF(topics.out), .def = "{prefix}.out", .flags = NONEMPTY,
	 .help = "backends → every gateway"},
	{.key = "reply", .type = F_STR, .off = OFF(topics.reply), .def = "{prefix}.reply.{node_id}", .flags = NONEMPTY,
	 .help = "backends → this gateway"},
	{.key = "sessions", .type = F_STR, .off = OFF(topics.sessions), .def = "{prefix}.sessions", .flags = NONEMPTY,
	 .help = "recovery: every node's socket snapshots (keyed by pid; compaction keeps the last)"},
	{.key = "node", .type = F_STR, .off = OFF(topics.node), .def = "{prefix}.node.{node_tag}",
	 .help = "backends → the sockets of one node, named by the first 4 characters of a socket id "
		 "(must hold {node_tag} once; \"\": none)"},
};

static const field route_fields[] = {
	{.key = "topic", .type = F_STR, .off = RT(topic), .flags = REQUIRED | NONEMPTY, .help = "bus topic; may end with {room}"},
	{.key = "event", .type = F_STR, .off = RT(event), .flags = REQUIRED | NONEMPTY, .help = "event name emitted to clients"},
	{.key = "room", .type = F_STR, .off = RT(room), .flags = NONEMPTY, .help = "fixed target room; absent = namespace"},
};

#define ET(m) offsetof(gw_event_topic, m)
static const field event_topic_fields[] = {
	{.key = "event", .type = F_STR, .off = ET(event), .flags = REQUIRED | NONEMPTY,
	 .help = "event name, or a prefix ending in '*' (\"payment.*\"), or \"*\""},
	{.key = "topic", .type = F_STR, .off = ET(topic), .flags = REQUIRED | NONEMPTY, .help = "bus topic for those events"},
};

#define RO(m) offsetof(gw_rate_override, m)
static const field rate_override_fields[] = {
	{.key = "event", .type = F_STR, .off = RO(event), .flags = REQUIRED | NONEMPTY, .help = "client event name"},
	{.key = "events_per_s", .type = F_INT, .off = RO(events_per_s), .flags = REQUIRED, .min = 0, .max = 1000000,
	 .help = "this event's rate per socket (0: unlimited)"},
	{.key = "burst", .type = F_INT, .off = RO(burst), .def = "0", .min = 0, .max = 1000000,
	 .help = "its bucket (0: events_per_s)"},
};

static const field limits_fields[] = {
	{.key = "events_per_s", .type = F_INT, .off = NSP(limits.events_per_s), .def = "0", .min = 0, .max = 1000000,
	 .help = "client events per second per socket (0: unlimited)"},
	{.key = "burst", .type = F_INT, .off = NSP(limits.burst), .def = "0", .min = 0, .max = 1000000,
	 .help = "events a socket may send at once (0: events_per_s)"},
	{.key = "bytes_per_s", .type = F_SIZE, .off = NSP(limits.bytes_per_s), .def = "0", .min = 0, .max = BYTES_MAX,
	 .help = "event bytes (text and attachments) per second per socket (0: unlimited)"},
	{.key = "bytes_burst", .type = F_SIZE, .off = NSP(limits.bytes_burst), .def = "0", .min = 0, .max = BYTES_MAX,
	 .help = "bytes a socket may send at once (0: bytes_per_s)"},
	{.key = "on_exceed", .type = F_ENUM, .off = NSP(limits.on_exceed), .def = "drop", .choices = "drop|disconnect",
	 .help = "an event over the limit: dropped, or the socket disconnected from the namespace"},
	{.key = "events", .type = F_LIST, .off = NSP(limits.events), .off_n = NSP(limits.n_events),
	 .sub = rate_override_fields, .n_sub = N(rate_override_fields), .elem_size = sizeof(gw_rate_override),
	 .help = "per-event rates: an event listed here takes from its own bucket instead"},
};

static const field jwt_fields[] = {
	{.key = "algorithms", .type = F_STRLIST, .off = NSP(jwt.algorithms), .off_n = NSP(jwt.n_algorithms),
	 .help = "accepted algorithms: HS256, RS256, ES256 (never none)"},
	{.key = "secret", .type = F_STR, .off = NSP(jwt.secret), .flags = NONEMPTY,
	 .help = "HS256 key, at least 32 bytes (use ${ENV_VAR})"},
	{.key = "public_key_file", .type = F_STR, .off = NSP(jwt.public_key_file), .flags = NONEMPTY,
	 .help = "RS256/ES256: PEM public key or certificate"},
	{.key = "issuer", .type = F_STR, .off = NSP(jwt.issuer), .flags = NONEMPTY, .help = "required iss"},
	{.key = "audience", .type = F_STR, .off = NSP(jwt.audience), .flags = NONEMPTY, .help = "required in aud"},
	{.key = "leeway_ms", .type = F_INT, .off = NSP(jwt.leeway_ms), .def = "0", .min = 0, .max = MS_MAX,
	 .help = "clock skew allowed on exp and nbf"},
	{.key = "require_exp", .type = F_BOOL, .off = NSP(jwt.require_exp), .def = "true",
	 .help = "refuse tokens without exp"},
	{.key = "token_from", .type = F_ENUM, .off = NSP(jwt.token_from), .def = "auth.token",
	 .choices = "auth.token|query.token|header.authorization", .help = "where the client puts the token"},
};

static const field nsp_fields[] = {
	{.key = "name", .type = F_STR, .off = NSP(name), .help = "namespace, starts with '/'"},
	{.key = "match", .type = F_STR, .off = NSP(match), .flags = NONEMPTY,
	 .help = "instead of name: a POSIX extended regex; each namespace it matches is created on first use"},
	{.key = "auth", .type = F_ENUM, .off = NSP(auth), .def = "none", .choices = "none|backend|jwt",
	 .help = "who admits a CONNECT: anyone, a backend's connect_result, or a valid JWT"},
	{.key = "auth_timeout_ms", .type = F_INT, .off = NSP(auth_timeout_ms), .def = "5000", .min = 1, .max = MS_MAX,
	 .help = "wait for connect_result"},
	{.key = "ack", .type = F_ENUM, .off = NSP(ack), .def = "backend", .choices = "backend|broker",
	 .help = "who answers a client's ack: a backend, or the bus once the event is stored"},
	{.key = "events", .type = F_STRLIST, .off = NSP(events), .off_n = NSP(n_events), .def = "[\"*\"]",
	 .help = "client events forwarded; \"*\" = all"},
	{.key = "routes", .type = F_LIST, .off = NSP(routes), .off_n = NSP(n_routes), .sub = route_fields,
	 .n_sub = N(route_fields), .elem_size = sizeof(gw_route), .check = check_route, .help = "raw topic → event routes"},
	{.key = "room_events", .type = F_BOOL, .off = NSP(room_events), .def = "false",
	 .help = "publish join-room/leave-room"},
	{.key = "topic_in", .type = F_STR, .off = NSP(topic_in), .flags = NONEMPTY,
	 .help = "this namespace's inbound topic (connect, events, disconnect); absent = topics.in"},
	{.key = "event_topics", .type = F_LIST, .off = NSP(event_topics), .off_n = NSP(n_event_topics),
	 .sub = event_topic_fields, .n_sub = N(event_topic_fields), .elem_size = sizeof(gw_event_topic),
	 .check = check_event_topic, .help = "client events by name to their own topics; first match wins"},
	{.key = "limits", .type = F_MAP, .sub = limits_fields, .n_sub = N(limits_fields),
	 .help = "flood limits per socket (token buckets over its client events)"},
	{.key = "jwt", .type = F_MAP, .sub = jwt_fields, .n_sub = N(jwt_fields),
	 .help = "auth: jwt — how tokens are verified"},
	{.key = "recovery", .type = F_BOOL, .off = NSP(recovery), .def = "true",
	 .help = "false: this namespace's sockets are never recovered (recovery.max_disconnection_ms)"},
};
_Static_assert(GW_AUTH_NONE == 0 && GW_AUTH_BACKEND == 1 && GW_AUTH_JWT == 2, "auth choices order");
_Static_assert(GW_PARSER_JSON == 0 && GW_PARSER_MSGPACK == 1, "parser choices order");
_Static_assert(GW_TOKEN_AUTH == 0 && GW_TOKEN_QUERY == 1 && GW_TOKEN_HEADER == 2, "token_from choices order");

static const field http_fields[] = {
	{.key = "enabled", .type = F_BOOL, .off = OFF(http_api.enabled), .def = "true", .help = "serve /api/publish, /api/subscribe"},
	{.key = "token", .type = F_STR, .off = OFF(http_api.token), .def = "", .help = "bearer token; \"\" = no auth"},
	{.key = "max_body", .type = F_SIZE, .off = OFF(http_api.max_body), .def = "1m", .min = 1, .max = BYTES_MAX,
	 .help = "largest publish body"},
	{.key = "sse_queue", .type = F_COUNT, .off = OFF(http_api.sse_queue), .def = "1024", .min = 1, .max = 1000000,
	 .help = "max queued messages per SSE client"},
};

static const field metrics_fields[] = {
	{.key = "enabled", .type = F_BOOL, .off = OFF(metrics.enabled), .def = "true", .help = "serve /metrics"},
};

static const field admin_auth_fields[] = {
	{.key = "username", .type = F_STR, .off = OFF(admin_ui.username), .flags = REQUIRED | NONEMPTY,
	 .help = "the name the UI's login form takes"},
	{.key = "password_hash", .type = F_STR, .off = OFF(admin_ui.password_hash), .flags = REQUIRED | NONEMPTY,
	 .help = "bcrypt hash of the password ($2b$…, as instrument() takes it)"},
};

static const field admin_fields[] = {
	{.key = "enabled", .type = F_BOOL, .off = OFF(admin_ui.enabled), .def = "false",
	 .help = "speak @socket.io/admin-ui's server protocol on the admin namespace"},
	{.key = "namespace", .type = F_STR, .off = OFF(admin_ui.nsp), .def = "/admin", .flags = NONEMPTY,
	 .help = "the namespace the UI connects to"},
	{.key = "auth", .type = F_CUSTOM, .fn = conv_admin_auth, .sub = admin_auth_fields, .n_sub = N(admin_auth_fields),
	 .help = "{username, password_hash}, or false (anyone who reaches the port may connect)"},
	{.key = "read_only", .type = F_BOOL, .off = OFF(admin_ui.read_only), .def = "false",
	 .help = "refuse the UI's join, leave, disconnect and emit actions"},
	{.key = "mode", .type = F_ENUM, .off = OFF(admin_ui.mode), .def = "development", .choices = "development|production",
	 .help = "production: server stats only (no socket list, no socket or event feed)"},
	{.key = "server_id", .type = F_STR, .off = OFF(admin_ui.server_id), .flags = NONEMPTY,
	 .help = "the name the UI shows for this node (absent: node_id)"},
};
_Static_assert(GW_ADMIN_DEVELOPMENT == 0 && GW_ADMIN_PRODUCTION == 1, "admin mode choices order");

static const field recovery_fields[] = {
	{.key = "max_disconnection_ms", .type = F_INT, .off = OFF(recovery.max_disconnection_ms), .def = "0", .min = 0,
	 .max = MS_MAX, .help = "how long a disconnected socket can come back with its id, rooms and missed packets; 0 = off"},
	{.key = "skip_auth", .type = F_BOOL, .off = OFF(recovery.skip_auth), .def = "true",
	 .help = "a recovered socket skips its namespace's auth (socket.io's skipMiddlewares)"},
	{.key = "max_log_bytes", .type = F_SIZE, .off = OFF(recovery.max_log_bytes), .def = "64m", .min = 1024,
	 .max = BYTES_MAX, .help = "memory for the packets kept for replay; the oldest go first"},
};

static const field shutdown_fields[] = {
	{.key = "drain_ms", .type = F_INT, .off = OFF(shutdown.drain_ms), .def = "10000", .min = 0, .max = MS_MAX,
	 .help = "on SIGTERM or POST /api/drain: refuse new sessions, close the open ones spread over this long, then exit; 0 = at once"},
};

static const field log_fields[] = {
	{.key = "level", .type = F_ENUM, .off = OFF(log.level), .def = "info", .choices = "error|warn|info|debug",
	 .help = "least severe level logged"},
};

static const field root_fields[] = {
	{.key = "node_id", .type = F_STR, .off = OFF(node_id), .def = "gw-1", .flags = NONEMPTY,
	 .help = "unique per gateway node"},
	{.key = "listen", .type = F_MAP, .sub = listen_fields, .n_sub = N(listen_fields)},
	{.key = "engine", .type = F_MAP, .sub = engine_fields, .n_sub = N(engine_fields)},
	{.key = "adapter", .type = F_MAP, .sub = adapter_fields, .n_sub = N(adapter_fields)},
	{.key = "topics", .type = F_MAP, .sub = topics_fields, .n_sub = N(topics_fields)},
	{.key = "namespaces", .type = F_LIST, .off = OFF(nsps), .off_n = OFF(n_nsps), .sub = nsp_fields,
	 .n_sub = N(nsp_fields), .elem_size = sizeof(gw_nsp_config), .check = check_nsp, .flags = NONEMPTY,
	 .def = "[{name: /}]"},
	{.key = "http_api", .type = F_MAP, .sub = http_fields, .n_sub = N(http_fields)},
	{.key = "metrics", .type = F_MAP, .sub = metrics_fields, .n_sub = N(metrics_fields)},
	{.key = "admin_ui", .type = F_MAP, .sub = admin_fields, .n_sub = N(admin_fields)},
	{.key = "recovery", .type = F_MAP, .sub = recovery_fields, .n_sub = N(recovery_fields),
	 .help = "connection state recovery"},
	{.key = "shutdown", .type = F_MAP, .sub = shutdown_fields, .n_sub = N(shutdown_fields),
	 .help = "graceful drain"},
	{.key = "log", .type = F_MAP, .sub = log_fields, .n_sub = N(log_fields)},
};

/* ---- cross-field rules ---------------------------------------------------------- */

/* Resolve "{prefix}", "{node_id}" and "{node_tag}" in one topic template, in place.
 * tag_at: where {node_tag} stood (SIZE_MAX: nowhere), or NULL. */
static int resolve_topic(vctx *c, const gw_config *cfg, const cfg_node *topics, const char *key,
			 char **topic, size_t *tag_at)
{
	if (tag_at)
		*tag_at = SIZE_MAX;
	const cfg_node *at = cfg_map_get(topics, key);
	size_t mark = cfg_path_key(&c->path, "topics");
	cfg_path_key(&c->path, key);
	gw_buf b = {0};
	int rc = 0;
	for (const char *s = *topic; *s;) {
		const char *open = strchr(s, '{');
		size_t lit = open ? (size_t)(open - s) : strlen(s);
		if (memchr(s, '}', lit)) {
			gw_buf_free(&b);
			return verr(c, at, "unbalanced '}' in topic template");
		}
		if ((rc = gw_buf_append(&b, s, lit)) < 0)
			break;
		if (!open)
			break;
		const char *close = strchr(open, '}');
		size_t nl = close ? (size_t)(close - open - 1) : 0;
		if (close && nl == 6 && memcmp(open + 1, "prefix", 6) == 0) {
			rc = gw_buf_puts(&b, cfg->topics.prefix);
		} else if (close && nl == 7 && memcmp(open + 1, "node_id", 7) == 0) {
			rc = gw_buf_puts(&b, cfg->node_id);
		} else if (close && nl == 8 && memcmp(open + 1, "node_tag", 8) == 0) {
			if (!tag_at || *tag_at != SIZE_MAX) {
				gw_buf_free(&b);
				return verr(c, at, tag_at ? "{node_tag} more than once" : "{node_tag} is for topics.node only");
			}
			*tag_at = b.len;
			rc = gw_buf_puts(&b, cfg->node_tag);
		} else {
			char got[80];
			cfg_node tmp = {.kind = CFG_SCALAR, .str = *topic, .len = strlen(*topic)};
			gw_buf_free(&b);
			return verr(c, at, "unknown placeholder (valid: {prefix}, {node_id}%s), got %s",
				    tag_at ? ", {node_tag}" : "", cfg_describe(&tmp, got, sizeof got));
		}
		if (rc < 0)
			break;
		s = close + 1;
	}
	if (rc == 0)
		rc = gw_buf_putc(&b, '\0');
	if (rc < 0) {
		gw_buf_free(&b);
		return nomem(c);
	}
	free(*topic);
	*topic = (char *)gw_buf_steal(&b, NULL);
	cfg_path_pop(&c->path, mark);
	return 0;
}

/* An inbound topic of a namespace (topic_in, event_topics[].topic): no placeholders
 * (they are not substituted there), and none of the topics the gateway consumes, or
 * clients' envelopes would come back to it as commands. */
static int check_in_topic(vctx *c, const gw_config *cfg, const cfg_node *at, const char *t)
{
	if (strpbrk(t, "{}"))
		return verr(c, at, "no placeholders here (write the topic out), got \"%s\"", t);
	if (!strcmp(t, cfg->topics.out) || !strcmp(t, cfg->topics.reply) || !strcmp(t, cfg->topics.sessions) ||
	    !strcmp(t, cfg->topics.node))
		return verr(c, at, "\"%s\" is a topic the gateway consumes (topics.%s): client envelopes would "
			    "come back as commands", t, !strcmp(t, cfg->topics.out) ? "out"
						    : !strcmp(t, cfg->topics.reply) ? "reply"
						    : !strcmp(t, cfg->topics.node) ? "node" : "sessions");
	return 0;
}

static int check_in_topics(vctx *c, const gw_config *cfg)
{
	const cfg_node *list = cfg_map_get(cfg->root, "namespaces");
	for (size_t i = 0; i < cfg->n_nsps; i++) {
		const gw_nsp_config *n = &cfg->nsps[i];
		/* (no list: the default namespaces, which set neither) */
		const cfg_node *item = list && list->kind == CFG_SEQ && i < list->n ? list->items[i] : NULL;
		size_t mark = cfg_path_key(&c->path, "namespaces");
		cfg_path_index(&c->path, i);
		int rc = 0;
		if (n->topic_in) {
			size_t m2 = cfg_path_key(&c->path, "topic_in");
			rc = check_in_topic(c, cfg, cfg_map_get(item, "topic_in"), n->topic_in);
			cfg_path_pop(&c->path, m2);
		}
		const cfg_node *et = cfg_map_get(item, "event_topics");
		for (size_t j = 0; !rc && j < n->n_event_topics; j++) {
			size_t m2 = cfg_path_key(&c->path, "event_topics");
			cfg_path_index(&c->path, j);
			cfg_path_key(&c->path, "topic");
			const cfg_node *e = et && et->kind == CFG_SEQ && j < et->n ? et->items[j] : NULL;
			rc = check_in_topic(c, cfg, cfg_map_get(e, "topic"), n->event_topics[j].topic);
			cfg_path_pop(&c->path, m2);
		}
		cfg_path_pop(&c->path, mark);
		if (rc)
			return rc;
	}
	return 0;
}

/* admin_ui on: its namespace joins the list, served by the gateway (admin = true). */
static int add_admin_nsp(vctx *c, gw_config *cfg)
{
	const cfg_node *a = cfg_map_get(cfg->root, "admin_ui");
	size_t mark = cfg_path_key(&c->path, "admin_ui");
	if (cfg->admin_ui.auth == GW_ADMIN_AUTH_UNSET) {
		cfg_path_key(&c->path, "auth");
		return verr(c, a, "required when enabled: {username, password_hash}, or false to let anyone in");
	}
	const char *name = cfg->admin_ui.nsp;
	const cfg_node *at = cfg_map_get(a, "namespace");
	cfg_path_key(&c->path, "namespace");
	if (name[0] != '/')
		return verr(c, at ? at : a, "must start with '/', got \"%s\"", name);
	for (size_t i = 0; i < cfg->n_nsps; i++)
		if (cfg->nsps[i].name && !strcmp(cfg->nsps[i].name, name))
			return verr(c, at ? at : a, "\"%s\" is also namespaces[%zu]: the admin namespace is the gateway's own",
				    name, i);
	cfg_path_pop(&c->path, mark);
	gw_nsp_config *v = realloc(cfg->nsps, (cfg->n_nsps + 1) * sizeof *v);
	if (!v)
		return nomem(c);
	cfg->nsps = v;
	gw_nsp_config *n = &v[cfg->n_nsps];
	memset(n, 0, sizeof *n);
	cfg->n_nsps++;
	n->admin = true;
	n->auth = cfg->admin_ui.auth == GW_ADMIN_AUTH_BASIC ? GW_AUTH_BACKEND : GW_AUTH_NONE;
	n->auth_timeout_ms = 10000;
	if (!(n->name = strdup(name)) || !(n->label = label_value(name)) || !(n->events = calloc(1, sizeof *n->events)) ||
	    !(n->events[0] = strdup("*")))
		return nomem(c);
	n->n_events = 1;
	return 0;
}

static int finish(vctx *c, gw_config *cfg)
{
	const cfg_node *listen = cfg_map_get(cfg->root, "listen");
	if (!cfg->tls_cert != !cfg->tls_key) {
		size_t mark = cfg_path_key(&c->path, "listen");
		cfg_path_key(&c->path, "tls");
		int rc = verr(c, cfg_map_get(listen, "tls"), "needs both cert and key (%s is missing)",
			      cfg->tls_cert ? "key" : "cert");
		cfg_path_pop(&c->path, mark);
		return rc;
	}
	if (cfg->engine.allow_eio3 && cfg->engine.parser == GW_PARSER_MSGPACK) {
		/* socket.io-client 2.x pairs with socket.io-msgpack-parser 2.x, whose packets
		 * differ from 3.x's: not served */
		size_t mark = cfg_path_key(&c->path, "engine");
		cfg_path_key(&c->path, "allow_eio3");
		int rc = verr(c, cfg_map_get(cfg_map_get(cfg->root, "engine"), "allow_eio3"),
			      "Engine.IO v3 clients are served with engine.parser: json only");
		cfg_path_pop(&c->path, mark);
		return rc;
	}
	const cfg_node *workers = cfg_map_get(cfg_map_get(cfg->root, "engine"), "workers");
	const cfg_node *topics = cfg_map_get(cfg->root, "topics");
	int rc;
	gw_node_tag(cfg->node_id, cfg->node_tag);
	if ((rc = resolve_topic(c, cfg, topics, "in", &cfg->topics.in, NULL)) < 0 ||
	    (rc = resolve_topic(c, cfg, topics, "out", &cfg->topics.out, NULL)) < 0 ||
	    (rc = resolve_topic(c, cfg, topics, "reply", &cfg->topics.reply, NULL)) < 0 ||
	    (rc = resolve_topic(c, cfg, topics, "sessions", &cfg->topics.sessions, NULL)) < 0 ||
	    (rc = resolve_topic(c, cfg, topics, "node", &cfg->topics.node, &cfg->topics.node_tag_at)) < 0)
		return rc;
	if (cfg->topics.node[0] && cfg->topics.node_tag_at == SIZE_MAX) {
		size_t mark = cfg_path_key(&c->path, "topics");
		cfg_path_key(&c->path, "node");
		rc = verr(c, cfg_map_get(topics, "node"),
			  "must hold {node_tag}: a socket id names its node's topic by it (\"\" turns node topics off)");
		cfg_path_pop(&c->path, mark);
		return rc;
	}
	if (!cfg->engine.workers) /* not given: auto, where the node topics that needs are on */
		cfg->engine.workers = cfg->topics.node[0] ? online_cpus() : 1;
	if (cfg->engine.workers > 1 && !cfg->topics.node[0]) {
		size_t mark = cfg_path_key(&c->path, "engine");
		cfg_path_key(&c->path, "workers");
		rc = verr(c, workers, "%d service loops need topics.node (each loop is a node there)", cfg->engine.workers);
		cfg_path_pop(&c->path, mark);
		return rc;
	}
	const char *own[] = {cfg->topics.out, cfg->topics.reply, cfg->topics.sessions};
	for (size_t i = 0; cfg->topics.node[0] && i < 3; i++)
		if (!strcmp(cfg->topics.node, own[i])) {
			size_t mark = cfg_path_key(&c->path, "topics");
			cfg_path_key(&c->path, "node");
			rc = verr(c, cfg_map_get(topics, "node"), "\"%s\" is also topics.%s", cfg->topics.node,
				  i == 0 ? "out" : i == 1 ? "reply" : "sessions");
			cfg_path_pop(&c->path, mark);
			return rc;
		}
	if (cfg->admin_ui.enabled && (rc = add_admin_nsp(c, cfg)) < 0)
		return rc;
	return check_in_topics(c, cfg);
}

/* ---- freeing, driven by the same tables ------------------------------------------ */

static void walk_keys(const field *fs, size_t nf, const char *prefix, void (*cb)(const char *, void *), void *arg)
{
	for (size_t i = 0; i < nf; i++) {
		char path[256];
		snprintf(path, sizeof path, "%s%s", prefix, fs[i].key);
		if (fs[i].type == F_MAP || fs[i].type == F_LIST || (fs[i].type == F_CUSTOM && fs[i].sub)) {
			char sub[260];
			snprintf(sub, sizeof sub, "%s%s.", path, fs[i].type == F_LIST ? "[]" : "");
			walk_keys(fs[i].sub, fs[i].n_sub, sub, cb, arg);
		} else {
			cb(path, arg);
		}
	}
}

void gw_config_foreach_key(void (*cb)(const char *path, void *arg), void *arg)
{
	walk_keys(root_fields, N(root_fields), "", cb, arg);
}

static void free_fields(const field *fs, size_t nf, void *base)
{
	for (size_t i = 0; i < nf; i++) {
		const field *f = &fs[i];
		switch (f->type) {
		case F_STR:
		case F_PATH:
			free(*AT(base, f->off, char *));
			break;
		case F_STRLIST: {
			char **arr = *AT(base, f->off, char **);
			for (size_t j = 0; arr && j < *AT(base, f->off_n, size_t); j++)
				free(arr[j]);
			free(arr);
			break;
		}
		case F_MAP:
			free_fields(f->sub, f->n_sub, base);
			break;
		case F_LIST: {
			char *elems = *AT(base, f->off, char *);
			for (size_t j = 0; elems && j < *AT(base, f->off_n, size_t); j++)
				free_fields(f->sub, f->n_sub, elems + j * f->elem_size);
			free(elems);
			break;
		}
		case F_CUSTOM:
			if (f->free_fn)
				f->free_fn(f, base);
			else if (f->sub) /* a custom map (admin_ui.auth) */
				free_fields(f->sub, f->n_sub, base);
			break;
		default:
			break;
		}
	}
}

void gw_config_free(gw_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; cfg->nsps && i < cfg->n_nsps; i++) {
		gw_nsp_config *n = &cfg->nsps[i];
		gw_jwt_free(n->verifier);
		if (n->match_re)
			regfree(n->match_re);
		free(n->match_re);
		free(n->label);
	}
	free_fields(root_fields, N(root_fields), cfg);
	free(cfg->path);
	cfg_tree_free(cfg->root);
	memset(cfg, 0, sizeof *cfg);
}

/* ---- public entry points --------------------------------------------------------- */

int gw_config_load_string(const char *name, const char *yaml, size_t len, gw_config *out,
			  char *err, size_t err_len)
{
	memset(out, 0, sizeof *out);
	if (err && err_len)
		err[0] = '\0';
	if (!name)
		name = "<string>";
	vctx c = {.err = err, .err_len = err_len};
	int rc = cfg_tree_parse(name, yaml, len, &out->root, err, err_len);
	if (rc < 0)
		return rc;
	if (!(out->path = strdup(name))) {
		rc = nomem(&c);
		goto fail;
	}
	const cfg_node *root = out->root;
	char got[80];
	if (root->kind == CFG_SCALAR && root->is_null)
		rc = verr(&c, root, "the configuration is empty (expected a map of settings)");
	else if (root->kind != CFG_MAP)
		rc = verr(&c, root, "expected a map at the top level, got %s", cfg_describe(root, got, sizeof got));
	else if ((rc = fill_map(&c, root_fields, N(root_fields), root, out)) == 0)
		rc = finish(&c, out);
	if (rc == 0)
		return 0;
fail:
	gw_config_free(out);
	return rc;
}

#define CONFIG_FILE_MAX (16u << 20)

int gw_config_load_file(const char *path, gw_config *out, char *err, size_t err_len)
{
	memset(out, 0, sizeof *out);
	FILE *f = fopen(path, "rb");
	if (!f) {
		if (err && err_len)
			snprintf(err, err_len, "%s: cannot open: %s", path, strerror(errno));
		return -GW_ECONFIG;
	}
	gw_buf b = {0};
	char chunk[8192];
	size_t n;
	int rc = 0;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
		if (b.len + n > CONFIG_FILE_MAX) {
			if (err && err_len)
				snprintf(err, err_len, "%s: file too large (max %u MiB)", path, CONFIG_FILE_MAX >> 20);
			rc = -GW_ECONFIG;
			break;
		}
		if (gw_buf_append(&b, chunk, n) < 0) {
			if (err && err_len)
				snprintf(err, err_len, "%s: out of memory", path);
			rc = -GW_ENOMEM;
			break;
		}
	}
	if (rc == 0 && ferror(f)) {
		if (err && err_len)
			snprintf(err, err_len, "%s: read error: %s", path, strerror(errno));
		rc = -GW_ECONFIG;
	}
	fclose(f);
	if (rc == 0)
		rc = gw_config_load_string(path, b.data ? (const char *)b.data : "", b.len, out, err, err_len);
	gw_buf_free(&b);
	return rc;
}

static bool event_matches(const char *pattern, const char *event)
{
	size_t n = strlen(pattern);
	if (n && pattern[n - 1] == '*')
		return strncmp(pattern, event, n - 1) == 0;
	return strcmp(pattern, event) == 0;
}

bool gw_config_node_topic(const gw_config *cfg, const char *tag, char *buf, size_t n)
{
	size_t len = strlen(cfg->topics.node);
	if (!len || len >= n || cfg->topics.node_tag_at + GW_TAG_LEN > len)
		return false;
	memcpy(buf, cfg->topics.node, len + 1);
	memcpy(buf + cfg->topics.node_tag_at, tag, GW_TAG_LEN);
	return true;
}

int gw_config_loop(const gw_config *base, int k, const char (*taken)[GW_TAG_LEN + 1], gw_config *out)
{
	*out = *base;
	out->loop = k;
	if (k == 0)
		return 0;
	/* a tag no other loop has: FNV of "<node_id>#<k>", then of "<node_id>#<k>#<try>" */
	char name[300];
	for (int attempt = 0;; attempt++) {
		snprintf(name, sizeof name, attempt ? "%s#%d#%d" : "%s#%d", base->node_id, k, attempt);
		gw_node_tag(name, out->node_tag);
		int j = 0;
		while (j < k && strcmp(taken[j], out->node_tag))
			j++;
		if (j == k)
			break;
	}
	size_t len = strlen(base->topics.node) + 1;
	if (!(out->topics.node = malloc(len)))
		return -GW_ENOMEM;
	gw_config_node_topic(base, out->node_tag, out->topics.node, len);
	return 0;
}

void gw_config_loop_free(const gw_config *base, gw_config *loop)
{
	if (loop->topics.node != base->topics.node)
		free(loop->topics.node);
	loop->topics.node = NULL;
}

const char *gw_config_in_topic(const gw_config *cfg, const gw_nsp_config *nc, const char *event)
{
	if (!nc)
		return cfg->topics.in;
	for (size_t i = 0; event && i < nc->n_event_topics; i++)
		if (event_matches(nc->event_topics[i].event, event))
			return nc->event_topics[i].topic;
	return nc->topic_in ? nc->topic_in : cfg->topics.in;
}

const char *gw_config_where(const gw_config *cfg, const char *section, const char *key, char *buf, size_t n)
{
	const cfg_node *v = cfg_map_get(cfg_map_get(cfg->root, section), key);
	if (v)
		snprintf(buf, n, "%s:%d:%d", v->file, v->line, v->col);
	else
		snprintf(buf, n, "%s", cfg->path ? cfg->path : "<config>");
	return buf;
}

const gw_nsp_config *gw_config_nsp(const gw_config *cfg, const char *name, size_t len)
{
	for (size_t i = 0; i < cfg->n_nsps; i++)
		if (cfg->nsps[i].name && strlen(cfg->nsps[i].name) == len && memcmp(cfg->nsps[i].name, name, len) == 0)
			return &cfg->nsps[i];
	char buf[256];
	if (len >= sizeof buf || memchr(name, 0, len))
		return NULL; /* longer names are never dynamic */
	memcpy(buf, name, len);
	buf[len] = 0;
	for (size_t i = 0; i < cfg->n_nsps; i++)
		if (cfg->nsps[i].match_re && regexec(cfg->nsps[i].match_re, buf, 0, NULL, 0) == 0)
			return &cfg->nsps[i];
	return NULL;
}
