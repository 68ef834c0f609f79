/*
 * libFuzzer target for net/http1. The first 4 bytes choose the limits and the seed of
 * the piece sizes; the rest is the byte stream of a connection, fed in pieces of
 * 1..64 bytes and then again all at once. Invariants: no feed consumes more than it
 * was given or stalls, every string of the head is NUL-terminated at its length,
 * names are lower case, the body stays within max_body, a refusal has one of the
 * documented statuses, and both ways of feeding read the same requests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/http1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_REQS 32

/* What one pass read: per request its header count, body length and bytes used. */
typedef struct summary {
	int n;
	size_t n_headers[MAX_REQS], body_len[MAX_REQS], used[MAX_REQS];
	int status;
} summary;

static void check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "invariant broken: %s\n", what);
		abort();
	}
}

static void check_head(const h1_req *r)
{
	check(r->target && r->path && r->query && r->method_name, "head strings set");
	check(strlen(r->path) <= strlen(r->target), "path within target");
	for (size_t i = 0; i < r->n_headers; i++) {
		const h1_header *h = &r->headers[i];
		check(h->name[h->name_len] == 0 && h->value[h->value_len] == 0, "NUL-terminated");
		check(strlen(h->name) == h->name_len && h->name_len > 0, "name length");
		for (size_t k = 0; k < h->name_len; k++)
			check(!(h->name[k] >= 'A' && h->name[k] <= 'Z'), "lower-case name");
	}
	char out[16];
	int q = h1_query_arg(r, "sid", out, sizeof out);
	check(q >= -1 && q <= 1 && (q != 1 || strlen(out) < sizeof out), "query arg");
	h1_header_get(r, "host");
}

static void check_done(const h1_req *r, const h1_limits *lim)
{
	check_head(r);
	check(r->body != NULL && r->body_len <= lim->max_body, "body within limit");
}

static uint32_t next_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* Feeds the whole stream, in pieces (seed != 0) or at once, through every request. */
static void pass(const uint8_t *d, size_t len, const h1_limits *lim, uint32_t seed, summary *sum)
{
	h1_parser *p = h1_create(lim);
	check(p != NULL, "create");
	memset(sum, 0, sizeof *sum);
	size_t off = 0, start = 0;
	while (sum->n < MAX_REQS) {
		h1_state st = h1_get_state(p);
		if (st == H1_HEAD) {
			check_head(h1_get_req(p));
			h1_resume(p);
			continue;
		}
		if (st == H1_COMPLETE) {
			const h1_req *r = h1_get_req(p);
			check_done(r, lim);
			sum->n_headers[sum->n] = r->n_headers;
			sum->body_len[sum->n] = r->body_len;
			sum->used[sum->n++] = off - start;
			start = off;
			h1_next(p);
			continue;
		}
		if (st == H1_ERROR || off == len)
			break;
		size_t n = len - off;
		if (seed && n > 1)
			n = 1 + next_rand(&seed) % (n < 64 ? n : 64);
		size_t got = h1_feed(p, d + off, n);
		check(got <= n, "consumed <= len");
		check(got == n || h1_get_state(p) >= H1_HEAD, "a short feed stops the parser");
		off += got;
	}
	if (h1_get_state(p) == H1_ERROR) {
		int s = h1_err_status(p);
		check(s == 400 || s == 413 || s == 431 || s == 501 || s == 505, "status");
		check(h1_err_text(p)[0] != 0, "error text");
		if (h1_err_has_head(p))
			check_head(h1_get_req(p));
		sum->status = s;
	}
	h1_destroy(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 4)
		return 0;
	h1_limits lim = {.max_header_bytes = 32 + (size_t)data[0] * 8,
			 .max_body = (size_t)data[1] * 4};
	uint32_t seed = (uint32_t)data[2] << 8 | data[3] | 1u << 16;
	summary a, b;
	pass(data + 4, size - 4, &lim, seed, &a);
	pass(data + 4, size - 4, &lim, 0, &b);
	check(a.n == b.n && a.status == b.status, "pieces and one feed agree");
	for (int i = 0; i < a.n; i++)
		check(a.n_headers[i] == b.n_headers[i] && a.body_len[i] == b.body_len[i] &&
		      a.used[i] == b.used[i], "pieces and one feed agree on each request");
	return 0;
}
