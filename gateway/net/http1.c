/*
 * http1.c — HTTP/1.1 requests on libhttp-parser 2.9 (see http1.h).
 *
 * The library does the parsing; this file keeps copies of what it reports, stops it
 * at the end of the head and of the message (http_parser_pause), and adds the rules
 * of http1.h that the library's non-strict build (Debian's libhttp_parser.so) does
 * not enforce. What the library already refuses by itself, so there is no check here:
 *  - Content-Length together with Transfer-Encoding (HPE_UNEXPECTED_CONTENT_LENGTH,
 *    raised before on_headers_complete);
 *  - a second Content-Length, even an equal one (HPE_UNEXPECTED_CONTENT_LENGTH), and a
 *    value that is not 1*DIGIT: "+5", "0x10", "", "5 5" (HPE_INVALID_CONTENT_LENGTH);
 *  - a method it does not know, a bad request-target, control bytes in a value;
 *  - a version that is not "HTTP/" DIGIT "." DIGIT (HPE_INVALID_VERSION, 400 here).
 * What is added:
 *  - HTTP-version 1.0 / 1.1 only (505): the library accepts any digits, and 0.9;
 *  - a space before ':' (the non-strict token table lets ' ' into a field name);
 *  - obs-fold: the library silently appends a continuation line to the value, or,
 *    after an empty value, takes it for leading whitespace, so no callback can tell.
 *    Instead the bytes the library consumed as head are scanned for a line that
 *    begins with SP or HTAB (fold_scan); the request line and the leading CRLFs
 *    (skipped here, not given to the library) cannot contain such a line start;
 *  - Transfer-Encoding's codings (400 / 501): the library only knows "chunked last
 *    or not", checked below against its F_CHUNKED so the two can never disagree;
 *  - Host: exactly one in HTTP/1.1, at most one in HTTP/1.0 (RFC 9112 §3.2);
 *  - the limits: the library's header limit is one process-wide value
 *    (http_parser_set_max_header_size), so the head is given to it through a window
 *    of max_header_bytes instead, which makes the 431 exact; bodies are counted in
 *    on_body / on_chunk_header.
 */
#include "net/http1.h"
#include "util/query.h"

#include <http_parser.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Where a header's name and value lie in strs while the head arrives (strs moves). */
typedef struct h1_span {
	size_t name, name_len, value, value_len;
} h1_span;

/* Which data callback ran last: a field or value may come in pieces (one per feed). */
enum { CB_NONE, CB_URL, CB_FIELD, CB_VALUE };

struct h1_parser {
	http_parser hp;
	h1_limits lim;
	h1_state state;
	h1_req req;
	gw_buf strs;  /* target, then name\0value\0 per header, then path\0query\0 */
	gw_buf spans; /* h1_span per header */
	gw_buf hdrs;  /* h1_header per header, built at the end of the head */
	gw_buf body;
	int last_cb;
	bool head_done;
	bool after_lf;     /* the last head byte scanned was LF (fold_scan) */
	size_t head_bytes; /* head bytes given to the library so far */
	bool has_head;
	int err_status;
	const char *err_text;
};

static bool is_ows(int c) { return c == ' ' || c == '\t'; }

static int fail(h1_parser *p, int status, const char *text)
{
	p->state = H1_ERROR;
	p->err_status = status;
	p->err_text = text;
	return -1;
}

static h1_parser *of(http_parser *hp) { return hp->data; }

static int on_url(http_parser *hp, const char *at, size_t n)
{
	h1_parser *p = of(hp);
	p->last_cb = CB_URL;
	return gw_buf_append(&p->strs, at, n) ? fail(p, 500, "out of memory") : 0;
}

/* Ends the piece before a new name: the target (NUL) or the previous value. */
static int end_element(h1_parser *p)
{
	if (p->last_cb == CB_VALUE) {
		h1_span *s = (h1_span *)p->spans.data + p->spans.len / sizeof(h1_span) - 1;
		s->value_len = p->strs.len - s->value;
	}
	return gw_buf_putc(&p->strs, 0);
}

static int on_header_field(http_parser *hp, const char *at, size_t n)
{
	h1_parser *p = of(hp);
	if (p->head_done)
		return 0; /* a trailer: accepted and ignored */
	if (p->last_cb != CB_FIELD) {
		if (end_element(p))
			return fail(p, 500, "out of memory");
		h1_span s = {.name = p->strs.len};
		if (gw_buf_append(&p->spans, &s, sizeof s))
			return fail(p, 500, "out of memory");
		p->last_cb = CB_FIELD;
	}
	return gw_buf_append(&p->strs, at, n) ? fail(p, 500, "out of memory") : 0;
}

static int on_header_value(http_parser *hp, const char *at, size_t n)
{
	h1_parser *p = of(hp);
	if (p->head_done)
		return 0;
	if (p->last_cb != CB_VALUE) {
		h1_span *s = (h1_span *)p->spans.data + p->spans.len / sizeof(h1_span) - 1;
		s->name_len = p->strs.len - s->name;
		if (gw_buf_putc(&p->strs, 0))
			return fail(p, 500, "out of memory");
		s->value = p->strs.len;
		p->last_cb = CB_VALUE;
	}
	return gw_buf_append(&p->strs, at, n) ? fail(p, 500, "out of memory") : 0;
}

/* Lower-cases the name and trims the value in place; false when the name holds
 * whitespace (a space before ':'). */
static bool tidy_span(uint8_t *base, h1_span *s)
{
	uint8_t *name = base + s->name;
	for (size_t i = 0; i < s->name_len; i++) {
		if (is_ows(name[i]))
			return false;
		if (name[i] >= 'A' && name[i] <= 'Z')
			name[i] = (uint8_t)(name[i] - 'A' + 'a');
	}
	while (s->value_len && is_ows(base[s->value + s->value_len - 1]))
		s->value_len--;
	while (s->value_len && is_ows(base[s->value])) {
		s->value++;
		s->value_len--;
	}
	base[s->value + s->value_len] = 0;
	return true;
}

/* Target, path and query; appends the copies of path and query to strs. */
static int split_target(h1_parser *p, size_t target_len)
{
	if (gw_buf_reserve(&p->strs, target_len + 2))
		return -1;
	/* reserved: the appends below do not move strs, so the source stays valid */
	const char *t = (const char *)p->strs.data;
	const char *q = memchr(t, '?', target_len);
	size_t path_len = q ? (size_t)(q - t) : target_len;
	size_t path = p->strs.len;
	gw_buf_append(&p->strs, t, path_len);
	gw_buf_putc(&p->strs, 0);
	size_t query = p->strs.len;
	if (q)
		gw_buf_append(&p->strs, q + 1, target_len - path_len - 1);
	gw_buf_putc(&p->strs, 0);
	p->req.target = (const char *)p->strs.data;
	p->req.path = (const char *)p->strs.data + path;
	p->req.query = (const char *)p->strs.data + query;
	return 0;
}

static int build_headers(h1_parser *p)
{
	size_t n = p->spans.len / sizeof(h1_span);
	if (gw_buf_reserve(&p->hdrs, n * sizeof(h1_header)))
		return fail(p, 500, "out of memory");
	h1_span *s = (h1_span *)p->spans.data;
	h1_header *h = (h1_header *)p->hdrs.data;
	for (size_t i = 0; i < n; i++) {
		if (!tidy_span(p->strs.data, &s[i]))
			return fail(p, 400, "whitespace between a header name and ':'");
		h[i] = (h1_header){.name = (const char *)p->strs.data + s[i].name,
				   .value = (const char *)p->strs.data + s[i].value,
				   .name_len = s[i].name_len, .value_len = s[i].value_len};
	}
	p->hdrs.len = n * sizeof(h1_header);
	p->req.headers = n ? h : NULL;
	p->req.n_headers = n;
	return 0;
}

static size_t count_headers(const h1_req *r, const char *name)
{
	size_t n = 0;
	for (size_t i = 0; i < r->n_headers; i++)
		n += strcmp(r->headers[i].name, name) == 0;
	return n;
}

/*
 * Calls fn on each element of the comma lists of every header `name`, in order,
 * trimmed; empty elements are skipped (RFC 9110 §5.6.1). Stops when fn returns
 * non-zero and returns that.
 */
static int each_token(const h1_req *r, const char *name, int (*fn)(const char *, size_t, void *),
		      void *arg)
{
	for (size_t i = 0; i < r->n_headers; i++) {
		if (strcmp(r->headers[i].name, name) != 0)
			continue;
		const char *s = r->headers[i].value;
		while (*s) {
			size_t n = strcspn(s, ",");
			size_t b = 0, e = n;
			while (b < e && is_ows(s[b]))
				b++;
			while (e > b && is_ows(s[e - 1]))
				e--;
			int rc = e > b ? fn(s + b, e - b, arg) : 0;
			if (rc)
				return rc;
			s += n + (s[n] == ',');
		}
	}
	return 0;
}

static bool token_is(const char *t, size_t n, const char *word)
{
	return n == strlen(word) && strncasecmp(t, word, n) == 0;
}

static int is_upgrade_token(const char *t, size_t n, void *arg)
{
	return token_is(t, n, "upgrade");
}

/* Transfer-Encoding's codings seen so far: how many, how many chunked, the last. */
typedef struct te_scan {
	int n, chunked, other;
	bool last_chunked;
} te_scan;

static int te_token(const char *t, size_t n, void *arg)
{
	te_scan *te = arg;
	te->n++;
	te->last_chunked = token_is(t, n, "chunked");
	if (te->last_chunked)
		te->chunked++;
	else
		te->other++;
	return 0;
}

static int check_transfer_encoding(h1_parser *p)
{
	bool lib_chunked = p->hp.flags & F_CHUNKED;
	if (!count_headers(&p->req, "transfer-encoding"))
		return lib_chunked ? fail(p, 400, "ambiguous Transfer-Encoding") : 0;
	te_scan te = {0};
	each_token(&p->req, "transfer-encoding", te_token, &te);
	if (!te.last_chunked || te.chunked != 1)
		return fail(p, 400, "Transfer-Encoding does not end in chunked");
	if (te.other)
		return fail(p, 501, "transfer coding other than chunked");
	if (!lib_chunked)
		return fail(p, 400, "ambiguous Transfer-Encoding");
	p->req.chunked = true;
	return 0;
}

static h1_method method_of(unsigned m)
{
	switch (m) {
	case HTTP_GET: return H1_GET;
	case HTTP_HEAD: return H1_HEAD_M;
	case HTTP_POST: return H1_POST;
	case HTTP_PUT: return H1_PUT;
	case HTTP_DELETE: return H1_DELETE;
	case HTTP_PATCH: return H1_PATCH;
	case HTTP_OPTIONS: return H1_OPTIONS;
	default: return H1_OTHER;
	}
}

/* The rules of http1.h that need the whole head; 0 or fail(). */
static int check_head(h1_parser *p)
{
	h1_req *r = &p->req;
	if (p->hp.http_major != 1 || p->hp.http_minor > 1)
		return fail(p, 505, "HTTP version not supported");
	size_t hosts = count_headers(r, "host");
	if (hosts > 1 || (hosts == 0 && r->http_minor == 1))
		return fail(p, 400, hosts ? "more than one Host header" : "no Host header");
	/* the library refused a second or malformed Content-Length already */
	if (p->hp.flags & F_CONTENTLENGTH)
		r->content_length = p->hp.content_length > LLONG_MAX ? LLONG_MAX
								    : (long long)p->hp.content_length;
	if ((r->content_length >= 0) != (count_headers(r, "content-length") == 1))
		return fail(p, 400, "ambiguous Content-Length");
	if (check_transfer_encoding(p))
		return -1;
	if (r->content_length > 0 && (unsigned long long)r->content_length > p->lim.max_body) {
		p->has_head = true;
		return fail(p, 413, "body over the limit");
	}
	return 0;
}

static int on_headers_complete(http_parser *hp)
{
	h1_parser *p = of(hp);
	h1_req *r = &p->req;
	size_t target_len = p->last_cb == CB_URL || p->last_cb == CB_NONE ? p->strs.len
		: ((h1_span *)p->spans.data)[0].name - 1;
	if (end_element(p) || split_target(p, target_len))
		return fail(p, 500, "out of memory");
	if (build_headers(p))
		return -1;
	p->head_done = true;
	r->method = method_of(hp->method);
	r->method_name = http_method_str((enum http_method)hp->method);
	r->http_minor = hp->http_minor;
	if (check_head(p))
		return -1;
	r->keep_alive = http_should_keep_alive(hp);
	/* RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 request is faulty framing: answer
	 * it, then close */
	if (r->http_minor == 0 && h1_header_get(r, "transfer-encoding"))
		r->keep_alive = false;
	r->upgrade = h1_header_get(r, "upgrade") &&
		     each_token(r, "connection", is_upgrade_token, NULL);
	const char *expect = h1_header_get(r, "expect");
	/* an HTTP/1.0 client cannot wait for 100 Continue: ignored (RFC 9110 §10.1.1) */
	r->expect_continue = expect && r->http_minor == 1 && strcasecmp(expect, "100-continue") == 0;
	p->has_head = true;
	p->state = H1_HEAD;
	http_parser_pause(hp, 1);
	return 0;
}

static int on_chunk_header(http_parser *hp)
{
	h1_parser *p = of(hp);
	/* the chunk size is in content_length; refuse before any of it arrives */
	if (hp->content_length > p->lim.max_body - p->body.len)
		return fail(p, 413, "body over the limit");
	return 0;
}

static int on_body(http_parser *hp, const char *at, size_t n)
{
	h1_parser *p = of(hp);
	if (n > p->lim.max_body - p->body.len)
		return fail(p, 413, "body over the limit");
	return gw_buf_append(&p->body, at, n) ? fail(p, 500, "out of memory") : 0;
}

static int on_message_complete(http_parser *hp)
{
	h1_parser *p = of(hp);
	p->req.body = p->body.len ? p->body.data : (const uint8_t *)"";
	p->req.body_len = p->body.len;
	p->state = H1_COMPLETE;
	http_parser_pause(hp, 1);
	return 0;
}

static const http_parser_settings settings = {
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
	.on_chunk_header = on_chunk_header,
};

static void reset(h1_parser *p)
{
	http_parser_init(&p->hp, HTTP_REQUEST);
	p->hp.data = p;
	gw_buf_reset(&p->strs);
	gw_buf_reset(&p->spans);
	gw_buf_reset(&p->hdrs);
	gw_buf_reset(&p->body);
	p->req = (h1_req){.query = "", .content_length = -1, .body = (const uint8_t *)""};
	p->state = H1_IDLE;
	p->last_cb = CB_NONE;
	p->head_done = p->after_lf = p->has_head = false;
	p->head_bytes = 0;
}

h1_parser *h1_create(const h1_limits *lim)
{
	h1_parser *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->lim = *lim;
	reset(p);
	return p;
}

void h1_destroy(h1_parser *p)
{
	if (!p)
		return;
	gw_buf_free(&p->strs);
	gw_buf_free(&p->spans);
	gw_buf_free(&p->hdrs);
	gw_buf_free(&p->body);
	free(p);
}

/* An error the library found (the callbacks' own errors are already set). */
static void lib_error(h1_parser *p, enum http_errno e)
{
	if (p->state == H1_ERROR)
		return;
	p->has_head = p->head_done;
	if (e == HPE_HEADER_OVERFLOW)
		fail(p, 431, "header section over the limit");
	else
		fail(p, 400, http_errno_description(e));
}

/* true when a line of the head starts with SP or HTAB (obs-fold; see the top). */
static bool fold_scan(h1_parser *p, const uint8_t *d, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p->after_lf && is_ows(d[i]))
			return true;
		p->after_lf = d[i] == '\n';
	}
	return false;
}

static size_t execute(h1_parser *p, const uint8_t *data, size_t len)
{
	bool in_head = !p->head_done;
	size_t n = len;
	if (in_head) {
		size_t room = p->lim.max_header_bytes - p->head_bytes;
		if (room == 0) {
			fail(p, 431, "header section over the limit");
			return 0;
		}
		if (n > room)
			n = room;
	}
	size_t got = http_parser_execute(&p->hp, &settings, (const char *)data, n);
	enum http_errno e = HTTP_PARSER_ERRNO(&p->hp);
	/* Paused in on_headers_complete, the library stands on the head's last LF and
	 * will take it again when resumed: it is the head's, so it counts as consumed,
	 * and h1_resume gives the library an LF of its own. */
	if (e == HPE_PAUSED && p->state == H1_HEAD)
		got++;
	if (in_head) {
		p->head_bytes += got;
		if (fold_scan(p, data, got)) {
			p->has_head = false;
			fail(p, 400, "obs-fold (a header line starting with whitespace)");
			return got;
		}
	}
	if (e != HPE_OK && e != HPE_PAUSED)
		lib_error(p, e);
	else if (e == HPE_OK && !p->head_done && n < len)
		fail(p, 431, "header section over the limit");
	return got;
}

size_t h1_feed(h1_parser *p, const uint8_t *data, size_t len)
{
	/* len 0 would tell the library the stream ended (HPE_INVALID_EOF_STATE) */
	if (len == 0 || (p->state != H1_IDLE && p->state != H1_PARTIAL))
		return 0;
	size_t used = 0;
	if (p->state == H1_IDLE) {
		/* empty lines before a request line (RFC 9112 §2.2): not the head's */
		while (used < len && (data[used] == '\r' || data[used] == '\n'))
			used++;
		if (used == len)
			return used;
		p->state = H1_PARTIAL;
	}
	return used + execute(p, data + used, len - used);
}

h1_state h1_get_state(const h1_parser *p) { return p->state; }

void h1_resume(h1_parser *p)
{
	if (p->state != H1_HEAD)
		return;
	p->state = H1_PARTIAL;
	http_parser_pause(&p->hp, 0);
	/* the head's last LF, which execute() reported consumed (see there); with no
	 * body this completes the request at once */
	http_parser_execute(&p->hp, &settings, "\n", 1);
	enum http_errno e = HTTP_PARSER_ERRNO(&p->hp);
	if (e != HPE_OK && e != HPE_PAUSED)
		lib_error(p, e);
}

void h1_next(h1_parser *p)
{
	if (p->state != H1_ERROR)
		reset(p);
}

const h1_req *h1_get_req(const h1_parser *p) { return &p->req; }
bool h1_err_has_head(const h1_parser *p) { return p->state == H1_ERROR && p->has_head; }
int h1_err_status(const h1_parser *p) { return p->state == H1_ERROR ? p->err_status : 0; }
const char *h1_err_text(const h1_parser *p) { return p->state == H1_ERROR ? p->err_text : ""; }

const char *h1_header_get(const h1_req *r, const char *name)
{
	for (size_t i = 0; i < r->n_headers; i++)
		if (strcmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	return NULL;
}

int h1_query_arg(const h1_req *r, const char *name, char *out, size_t len)
{
	const char *q = r->query ? r->query : "";
	return gw_query_arg(q, strlen(q), name, out, len);
}

void h1_query_foreach(const h1_req *r, void (*fn)(void *ctx, const char *k, size_t kl, const char *v, size_t vl),
		      void *ctx)
{
	const char *q = r->query ? r->query : "";
	gw_query_foreach(q, strlen(q), fn, ctx);
}
