/*
 * query.h — URL query strings ("a=1&b=x%20y"), decoded as Node's querystring does:
 * %XX and '+' as space; a '%' not followed by two hex digits stays as it is.
 */
#ifndef GW_QUERY_H
#define GW_QUERY_H

#include <stddef.h>

/* Argument `name` (exact, case-sensitive) of q[0..n) decoded into out: 1 found, 0
 * absent, -1 does not fit (out is then ""). The last one wins when repeated. */
int gw_query_arg(const char *q, size_t n, const char *name, char *out, size_t len);

/* Each argument of q[0..n) in order, name and value decoded (a bare "k" has the value
 * ""). The strings are NUL-terminated and valid for the call only. */
void gw_query_foreach(const char *q, size_t n,
		      void (*fn)(void *ctx, const char *k, size_t kl, const char *v, size_t vl), void *ctx);

#endif
