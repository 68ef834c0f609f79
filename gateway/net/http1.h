/*
 * http1.h — HTTP/1.1 requests (RFC 9112) read one at a time from a connection's byte
 * stream, on libhttp-parser (Node's parser before llhttp). No libwebsockets here:
 * unit tests and the fuzzer link it alone.
 *
 * The parser copies what it keeps (request line, headers, decoded body) into buffers
 * of its own, so the caller may reuse its input buffer as soon as h1_feed returns.
 * It stops at two points of each request, so the caller can act between them:
 *   H1_HEAD      the head is complete (h1_req valid, no body yet): answer
 *                `Expect: 100-continue`, or refuse early;
 *   H1_COMPLETE  the body too (decoded when chunked).
 * After H1_COMPLETE, h1_next() readies it for the next request on the connection
 * (pipelined bytes are simply fed again).
 *
 * Errors are final for the connection: the caller answers h1_err_status() with
 * `Connection: close` and closes. The head is valid after an error found at or after
 * the end of the head (413 for a body over the limit), so the route can be told.
 *
 * What is refused, and why (RFC 9112 §6.1, §6.3, §3.2, §5; Node's llhttp does the same):
 *  - Content-Length and Transfer-Encoding together                       400
 *  - more than one Content-Length (even equal), or one that is not 1*DIGIT 400
 *  - Transfer-Encoding whose last coding is not chunked                  400
 *  - a transfer coding other than chunked                                 501
 *  - HTTP/1.1 without exactly one Host header                            400
 *  - obs-fold (a header line starting with whitespace), a space before ':' 400
 *  - request line + headers over limits.max_header_bytes                 431
 *  - a body (Content-Length or decoded chunked) over limits.max_body      413
 *  - an HTTP version other than 1.0 / 1.1                                505
 *  - anything else libhttp-parser refuses                                400
 */
#ifndef GW_HTTP1_H
#define GW_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

typedef enum h1_method {
	H1_OTHER = 0,
	H1_GET,
	H1_HEAD_M, /* HEAD */
	H1_POST,
	H1_PUT,
	H1_DELETE,
	H1_PATCH,
	H1_OPTIONS,
} h1_method;

typedef struct h1_header {
	const char *name;  /* lower-cased, NUL-terminated */
	const char *value; /* NUL-terminated, surrounding whitespace trimmed */
	size_t name_len, value_len;
} h1_header;

typedef struct h1_req {
	h1_method method;
	const char *method_name; /* "GET", ... as sent */
	const char *target;      /* the request-target as sent, NUL-terminated */
	const char *path;        /* target up to '?' (not percent-decoded) */
	const char *query;       /* after '?', "" when none */
	int http_minor;          /* 0 or 1 (major is always 1) */
	const h1_header *headers; /* in arrival order */
	size_t n_headers;
	bool keep_alive;         /* the connection may carry another request (§9.3) */
	bool upgrade;            /* Connection: upgrade and an Upgrade header */
	bool chunked;            /* Transfer-Encoding: chunked */
	bool expect_continue;    /* Expect: 100-continue */
	long long content_length; /* -1 when none was given */
	const uint8_t *body;     /* decoded body (valid at H1_COMPLETE), never NULL */
	size_t body_len;
} h1_req;

typedef struct h1_limits {
	size_t max_header_bytes; /* request line + headers, terminators included */
	size_t max_body;
} h1_limits;

typedef enum h1_state {
	H1_IDLE = 0,  /* no byte of a request yet */
	H1_PARTIAL,   /* inside a request (head or body) */
	H1_HEAD,      /* stopped: head complete */
	H1_COMPLETE,  /* stopped: request complete */
	H1_ERROR,     /* stopped for good: see h1_err_status / h1_err_text */
} h1_state;

typedef struct h1_parser h1_parser;

h1_parser *h1_create(const h1_limits *lim);
void h1_destroy(h1_parser *p);

/* Feed len bytes. Returns how many were consumed (≤ len): fewer when the parser stopped
 * at H1_HEAD, H1_COMPLETE or H1_ERROR; feed the rest again after h1_resume / h1_next.
 * Bytes beyond a complete request are never consumed. */
size_t h1_feed(h1_parser *p, const uint8_t *data, size_t len);
h1_state h1_get_state(const h1_parser *p);
/* Continue after H1_HEAD (the body follows). A request without a body (GET, an
 * upgrade) is H1_COMPLETE on return: nothing more needs feeding. */
void h1_resume(h1_parser *p);
/* After H1_COMPLETE: forget the request, ready for the next one (state H1_IDLE). */
void h1_next(h1_parser *p);
/* The request (valid in H1_HEAD, H1_COMPLETE, and H1_ERROR when h1_err_has_head). */
const h1_req *h1_get_req(const h1_parser *p);
bool h1_err_has_head(const h1_parser *p);
int h1_err_status(const h1_parser *p);     /* 400, 413, 431, 501, 505; 500 out of memory */
const char *h1_err_text(const h1_parser *p); /* one short line saying what was wrong */

/* The value of header `name` (lower-case), or NULL; the first when repeated. */
const char *h1_header_get(const h1_req *r, const char *name);
/* Query argument `name` (exact, case-sensitive) percent-decoded into out (and '+' as
 * space): 1 found, 0 absent, -1 does not fit (out is then ""). The last one wins when
 * repeated, as Node's querystring does for Socket.IO's handshake. */
int h1_query_arg(const h1_req *r, const char *name, char *out, size_t len);

/* Each query argument in order, name and value percent-decoded ('+' as space; a bare
 * "k" has the value ""). The strings are valid for the call only. */
void h1_query_foreach(const h1_req *r, void (*fn)(void *ctx, const char *k, size_t kl, const char *v, size_t vl),
		      void *ctx);

#endif
