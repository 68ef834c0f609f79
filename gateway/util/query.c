/*
 * query.c — URL query strings (see query.h).
 */
#include "util/query.h"

#include <stdbool.h>
#include <string.h>

#include "util/buf.h"

static int unhex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The byte of s[*i..n) decoded, *i advanced. */
static int dec_next(const char *s, size_t n, size_t *i)
{
	unsigned char c = (unsigned char)s[(*i)++];
	if (c == '+')
		return ' ';
	if (c == '%' && *i + 2 <= n) {
		int hi = unhex((unsigned char)s[*i]), lo = unhex((unsigned char)s[*i + 1]);
		if (hi >= 0 && lo >= 0) {
			*i += 2;
			return hi << 4 | lo;
		}
	}
	return c;
}

static bool key_is(const char *k, size_t n, const char *name)
{
	size_t i = 0;
	while (i < n) {
		if (!*name || dec_next(k, n, &i) != (unsigned char)*name++)
			return false;
	}
	return *name == 0;
}

/* One argument of q[0..n) at *pos: its name q[*pos..+*kl), its value (NULL for a bare
 * name) and length; *pos moves past it. false at the end. */
static bool next_arg(const char *q, size_t n, size_t *pos, const char **k, size_t *kl, const char **v, size_t *vl)
{
	while (*pos < n) {
		const char *s = q + *pos;
		size_t rest = n - *pos;
		const char *amp = memchr(s, '&', rest);
		size_t len = amp ? (size_t)(amp - s) : rest;
		const char *eq = memchr(s, '=', len);
		*pos += len + (amp != NULL);
		if (!len)
			continue;
		*k = s;
		*kl = eq ? (size_t)(eq - s) : len;
		*v = eq ? eq + 1 : s + len;
		*vl = eq ? len - *kl - 1 : 0;
		return true;
	}
	return false;
}

int gw_query_arg(const char *q, size_t n, const char *name, char *out, size_t len)
{
	const char *k, *v, *val = NULL;
	size_t kl, vl, val_len = 0, pos = 0;
	while (next_arg(q, n, &pos, &k, &kl, &v, &vl))
		if (key_is(k, kl, name)) {
			val = v;
			val_len = vl;
		}
	if (!val)
		return 0;
	size_t o = 0;
	for (size_t i = 0; i < val_len;) {
		int c = dec_next(val, val_len, &i);
		if (o + 1 >= len) {
			if (len)
				out[0] = 0;
			return -1;
		}
		out[o++] = (char)c;
	}
	if (len == 0)
		return -1;
	out[o] = 0;
	return 1;
}

/* s[0..n) decoded into b (appended, then a NUL). */
static int dec_into(gw_buf *b, const char *s, size_t n)
{
	int err = 0;
	for (size_t i = 0; i < n && !err;)
		err = gw_buf_putc(b, (char)dec_next(s, n, &i));
	return err | gw_buf_putc(b, 0);
}

void gw_query_foreach(const char *q, size_t n,
		      void (*fn)(void *ctx, const char *k, size_t kl, const char *v, size_t vl), void *ctx)
{
	gw_buf b = {0};
	const char *k, *v;
	size_t kl, vl, pos = 0;
	while (next_arg(q, n, &pos, &k, &kl, &v, &vl)) {
		gw_buf_reset(&b);
		if (dec_into(&b, k, kl) == 0) {
			size_t dl = b.len - 1;
			if (dec_into(&b, v, vl) == 0)
				fn(ctx, (const char *)b.data, dl, (const char *)b.data + dl + 1, b.len - dl - 2);
		}
	}
	gw_buf_free(&b);
}
