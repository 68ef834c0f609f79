/* client.c — see client.h. */
#include "http/client.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "siogw_build.h"
#include "util/err.h"
#include "util/path.h"

static const struct {
	const char *name;
	bool required;
} FILES[] = {
	{"socket.io.js", true},           {"socket.io.js.map", true},
	{"socket.io.min.js", true},       {"socket.io.min.js.map", true},
	{"socket.io.esm.min.js", true},   {"socket.io.esm.min.js.map", true},
	{"socket.io.msgpack.min.js", false}, {"socket.io.msgpack.min.js.map", false},
};
#define N_FILES (sizeof FILES / sizeof FILES[0])

typedef struct client_file {
	char *route;  /* engine.path + name + "/": net routes by directory-like prefixes */
	const char *ctype;
	uint8_t *data;
	size_t len;
	char etag[40]; /* "\"<hex>\"" */
	char extra[96];
} client_file;

struct gw_client {
	client_file files[N_FILES];
	size_t n;
};

/* NULL with errno set; an empty file is ENODATA (the build could not fetch it). */
static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	struct stat st;
	uint8_t *d = NULL;
	if (fstat(fileno(f), &st) == 0 && st.st_size > 0 && st.st_size < 64 * 1024 * 1024 &&
	    (d = malloc((size_t)st.st_size)) && fread(d, 1, (size_t)st.st_size, f) == (size_t)st.st_size) {
		*len = (size_t)st.st_size;
	} else {
		int e = st.st_size == 0 ? ENODATA : errno ? errno : EIO;
		free(d);
		d = NULL;
		errno = e;
	}
	fclose(f);
	return d;
}

static bool has_bundle(const char *dir)
{
	char p[PATH_MAX];
	struct stat st;
	return snprintf(p, sizeof p, "%s/socket.io.js", dir) < (int)sizeof p && stat(p, &st) == 0 && st.st_size > 0;
}

/* engine.client_dir, else the build tree's (build/gateway/client beside the binary), else
 * the installed one. */
static void bundle_dir(const gw_config *cfg, char *dir, size_t n)
{
	if (cfg->engine.client_dir) {
		snprintf(dir, n, "%s", cfg->engine.client_dir);
		return;
	}
	char exe[PATH_MAX - 16];
	if (gw_exe_dir(exe, sizeof exe) == 0) {
		snprintf(dir, n, "%s/client", exe);
		if (has_bundle(dir))
			return;
	}
	snprintf(dir, n, "%s", SIOGW_CLIENT_DIR);
}

int gw_client_load(const gw_config *cfg, gw_client **out, char *err, size_t err_len)
{
	*out = NULL;
	if (!cfg->engine.serve_client)
		return 0;
	gw_client *cl = calloc(1, sizeof *cl);
	if (!cl)
		return -GW_ENOMEM;
	char dir[PATH_MAX], path[PATH_MAX + 64];
	bundle_dir(cfg, dir, sizeof dir);
	for (size_t i = 0; i < N_FILES; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, FILES[i].name);
		size_t len = 0;
		uint8_t *d = slurp(path, &len);
		if (!d) {
			if (!FILES[i].required && (errno == ENODATA || errno == ENOENT))
				continue; /* not in every version */
			snprintf(err, err_len, "engine.serve_client: %s: %s", path,
				 errno == ENODATA ? "empty: the build could not fetch socket.io-client from npm "
						    "(see tools/client-bundle.sh; rebuild with npm reachable)"
						  : strerror(errno));
			gw_client_destroy(cl);
			return -GW_ENOENT;
		}
		client_file *f = &cl->files[cl->n++];
		f->data = d;
		f->len = len;
		size_t rl = strlen(cfg->engine.path) + strlen(FILES[i].name) + 2;
		if (!(f->route = malloc(rl))) {
			gw_client_destroy(cl);
			return -GW_ENOMEM;
		}
		snprintf(f->route, rl, "%s%s/", cfg->engine.path, FILES[i].name);
		bool map = strstr(FILES[i].name, ".map") != NULL;
		f->ctype = map ? "application/json; charset=utf-8" : "application/javascript; charset=utf-8";
		uint8_t md[EVP_MAX_MD_SIZE];
		unsigned ml = 0;
		EVP_Digest(d, len, md, &ml, EVP_sha256(), NULL);
		char hex[33] = "";
		for (unsigned k = 0; k < 16 && k < ml; k++)
			sprintf(hex + 2 * k, "%02x", md[k]);
		snprintf(f->etag, sizeof f->etag, "\"%s\"", hex);
		snprintf(f->extra, sizeof f->extra, "ETag: \"%s\"\r\nCache-Control: public, max-age=0\r\n", hex);
	}
	*out = cl;
	return 0;
}

void gw_client_destroy(gw_client *cl)
{
	if (!cl)
		return;
	for (size_t i = 0; i < cl->n; i++) {
		free(cl->files[i].route);
		free(cl->files[i].data);
	}
	free(cl);
}

/* The next entity tag of a list at *p (advanced): its opaque part, without W/. */
static bool next_tag(const char **p, const char **tag, size_t *len)
{
	const char *s = *p;
	while (*s == ' ' || *s == '\t' || *s == ',')
		s++;
	if (!*s)
		return false;
	if (s[0] == 'W' && s[1] == '/')
		s += 2;
	const char *end = s;
	if (*s == '"') {
		end = strchr(s + 1, '"');
		end = end ? end + 1 : s + strlen(s);
	} else {
		end = s + strcspn(s, ", \t");
	}
	*tag = s;
	*len = (size_t)(end - s);
	*p = end;
	return true;
}

int gw_client_etag_matches(const char *inm, const char *etag)
{
	if (!inm)
		return 0;
	const char *tag;
	size_t len, el = strlen(etag);
	for (const char *p = inm; next_tag(&p, &tag, &len);) {
		if ((len == 1 && *tag == '*') || (len == el && memcmp(tag, etag, el) == 0))
			return 1;
	}
	return 0;
}

static void on_request(void *ctx, net_conn *c, const h1_req *r)
{
	const client_file *f = ctx;
	size_t n = strlen(f->route) - 1; /* the route without its '/' is the file */
	if (strlen(r->path) != n) {
		net_reply(c, 404, "text/plain", "Not Found", 9, NULL);
		return;
	}
	if (r->method != H1_GET && r->method != H1_HEAD_M) {
		net_reply(c, 405, "text/plain", "Method Not Allowed", 18, "Allow: GET, HEAD\r\n");
		return;
	}
	if (gw_client_etag_matches(h1_header_get(r, "if-none-match"), f->etag)) {
		net_reply(c, 304, NULL, NULL, 0, f->extra);
		return;
	}
	net_reply(c, 200, f->ctype, f->data, f->len, f->extra);
}

int gw_client_listen(gw_client *cl, net_loop *net)
{
	static const net_route_ops ops = {.on_request = on_request};
	for (size_t i = 0; cl && i < cl->n; i++)
		if (net_route(net, cl->files[i].route, &ops, &cl->files[i], 1024))
			return -GW_EFULL;
	return 0;
}
