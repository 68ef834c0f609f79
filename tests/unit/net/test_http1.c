/* test_http1.c — the HTTP/1.1 request reader (gateway/net/http1.c). */
#include "net/http1.h"

#include "../test.h"

static const h1_limits lim_default = {.max_header_bytes = 8192, .max_body = 1 << 20};

/* Feeds s[0..len) in pieces of `step` bytes (0: all at once), resuming at H1_HEAD,
 * until the request is complete or refused. Returns the bytes consumed. */
static size_t run_step(h1_parser *p, const char *s, size_t len, size_t step)
{
	size_t off = 0;
	for (;;) {
		h1_state st = h1_get_state(p);
		if (st == H1_HEAD) {
			h1_resume(p);
			continue;
		}
		if (st == H1_COMPLETE || st == H1_ERROR || off == len)
			return off;
		size_t n = step && len - off > step ? step : len - off;
		size_t got = h1_feed(p, (const uint8_t *)s + off, n);
		CHECK(got <= n);
		off += got;
		/* a piece is consumed whole unless the parser stopped */
		if (got < n)
			CHECK(h1_get_state(p) >= H1_HEAD);
	}
}

static size_t run(h1_parser *p, const char *s) { return run_step(p, s, strlen(s), 0); }

/* A parser with lim that has read s; the caller destroys it. */
static h1_parser *parse_lim(const char *s, const h1_limits *lim)
{
	h1_parser *p = h1_create(lim);
	run(p, s);
	return p;
}

static h1_parser *parse(const char *s) { return parse_lim(s, &lim_default); }

/* The status s is refused with (0 when it is not). */
static int refusal(const char *s)
{
	h1_parser *p = parse(s);
	int st = h1_get_state(p) == H1_ERROR ? h1_err_status(p) : 0;
	h1_destroy(p);
	return st;
}

TEST(simple_get)
{
	const char *s = "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n"
			"Host: example.com\r\nUser-Agent:  curl/8  \r\n\r\n";
	h1_parser *p = h1_create(&lim_default);
	CHECK_EQ_INT(h1_get_state(p), H1_IDLE);
	size_t got = h1_feed(p, (const uint8_t *)s, strlen(s));
	CHECK_EQ_INT(got, strlen(s));
	CHECK_EQ_INT(h1_get_state(p), H1_HEAD);
	const h1_req *r = h1_get_req(p);
	CHECK_EQ_INT(r->method, H1_GET);
	CHECK_STR(r->method_name, "GET");
	CHECK_STR(r->target, "/socket.io/?EIO=4&transport=polling");
	CHECK_STR(r->path, "/socket.io/");
	CHECK_STR(r->query, "EIO=4&transport=polling");
	CHECK_EQ_INT(r->http_minor, 1);
	CHECK_EQ_INT(r->n_headers, 2);
	CHECK_STR(r->headers[0].name, "host");
	CHECK_STR(r->headers[1].name, "user-agent");
	CHECK_STR(r->headers[1].value, "curl/8");
	CHECK_EQ_INT(r->headers[1].value_len, 6);
	CHECK_EQ_INT(r->headers[1].name_len, 10);
	CHECK_STR(h1_header_get(r, "host"), "example.com");
	CHECK(h1_header_get(r, "cookie") == NULL);
	CHECK(r->keep_alive);
	CHECK(!r->upgrade && !r->chunked && !r->expect_continue);
	CHECK_EQ_INT(r->content_length, -1);
	h1_resume(p);
	CHECK_EQ_INT(h1_get_state(p), H1_COMPLETE);
	CHECK_EQ_INT(h1_feed(p, (const uint8_t *)"x", 1), 0);
	CHECK(r->body != NULL);
	CHECK_STR((const char *)r->body, "");
	CHECK_EQ_INT(r->body_len, 0);
	h1_next(p);
	CHECK_EQ_INT(h1_get_state(p), H1_IDLE);
	h1_destroy(p);
}

TEST(no_query)
{
	h1_parser *p = parse("GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
	CHECK_EQ_INT(h1_get_state(p), H1_COMPLETE);
	CHECK_STR(h1_get_req(p)->path, "/x");
	CHECK_STR(h1_get_req(p)->query, "");
	char out[8];
	CHECK_EQ_INT(h1_query_arg(h1_get_req(p), "x", out, sizeof out), 0);
	h1_destroy(p);
}

TEST(query_decoding)
{
	h1_parser *p = parse("GET /p?a=1&sid=ab%2Fc%3d&q=x+y%20z&a=2&flag&ab=no&%73id2=k"
			     "&bad=%zz%4&e= HTTP/1.1\r\nHost: a\r\n\r\n");
	const h1_req *r = h1_get_req(p);
	char out[32];
	CHECK_EQ_INT(h1_query_arg(r, "sid", out, sizeof out), 1);
	CHECK_STR(out, "ab/c=");
	CHECK_EQ_INT(h1_query_arg(r, "q", out, sizeof out), 1);
	CHECK_STR(out, "x y z");
	CHECK_EQ_INT(h1_query_arg(r, "a", out, sizeof out), 1);
	CHECK_STR(out, "2"); /* last wins */
	CHECK_EQ_INT(h1_query_arg(r, "flag", out, sizeof out), 1);
	CHECK_STR(out, "");
	CHECK_EQ_INT(h1_query_arg(r, "e", out, sizeof out), 1);
	CHECK_STR(out, "");
	CHECK_EQ_INT(h1_query_arg(r, "sid2", out, sizeof out), 1);
	CHECK_STR(out, "k");
	CHECK_EQ_INT(h1_query_arg(r, "bad", out, sizeof out), 1);
	CHECK_STR(out, "%zz%4");
	CHECK_EQ_INT(h1_query_arg(r, "A", out, sizeof out), 0);  /* case-sensitive */
	CHECK_EQ_INT(h1_query_arg(r, "si", out, sizeof out), 0); /* no prefix match */
	CHECK_EQ_INT(h1_query_arg(r, "sidx", out, sizeof out), 0);
	CHECK_EQ_INT(h1_query_arg(r, "sid", out, 5), -1); /* "ab/c=" needs 6 */
	CHECK_STR(out, "");
	CHECK_EQ_INT(h1_query_arg(r, "sid", out, 6), 1);
	CHECK_EQ_INT(h1_query_arg(r, "sid", out, 0), -1);
	h1_destroy(p);
}

TEST(repeated_headers)
{
	h1_parser *p = parse("GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nx-a: 2\r\nEmpty:\r\n"
			     "Tab:\t v \t\r\n\r\n");
	const h1_req *r = h1_get_req(p);
	CHECK_EQ_INT(h1_get_state(p), H1_COMPLETE);
	CHECK_EQ_INT(r->n_headers, 5);
	CHECK_STR(h1_header_get(r, "x-a"), "1"); /* the first */
	CHECK_STR(r->headers[2].name, "x-a");
	CHECK_STR(r->headers[2].value, "2");
	CHECK_STR(h1_header_get(r, "empty"), "");
	CHECK_STR(h1_header_get(r, "tab"), "v");
	h1_destroy(p);
}

/* Every byte fed on its own gives the same request as one feed. */
TEST(byte_by_byte)
{
	const char *reqs[] = {
		"GET /a?b=c HTTP/1.1\r\nHost: h\r\nX-Long-Header-Name: some value here\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
		("POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
		 "3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: t\r\n\r\n"),
		"\r\nGET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	};
	for (size_t k = 0; k < sizeof reqs / sizeof reqs[0]; k++) {
		size_t len = strlen(reqs[k]);
		h1_parser *a = h1_create(&lim_default), *b = h1_create(&lim_default);
		CHECK_EQ_INT(run_step(a, reqs[k], len, 0), len);
		CHECK_EQ_INT(run_step(b, reqs[k], len, 1), len);
		CHECK_EQ_INT(h1_get_state(a), H1_COMPLETE);
		CHECK_EQ_INT(h1_get_state(b), H1_COMPLETE);
		const h1_req *ra = h1_get_req(a), *rb = h1_get_req(b);
		CHECK_STR(rb->target, ra->target);
		CHECK_EQ_INT(rb->n_headers, ra->n_headers);
		for (size_t i = 0; i < ra->n_headers && i < rb->n_headers; i++) {
			CHECK_STR(rb->headers[i].name, ra->headers[i].name);
			CHECK_STR(rb->headers[i].value, ra->headers[i].value);
		}
		CHECK_EQ_INT(rb->body_len, ra->body_len);
		CHECK(memcmp(rb->body, ra->body, ra->body_len) == 0);
		CHECK_EQ_INT(rb->keep_alive, ra->keep_alive);
		h1_destroy(a);
		h1_destroy(b);
	}
}

TEST(pipelined)
{
	const char *one = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n";
	const char *two = "POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nxyz";
	const char *three = "GET /3 HTTP/1.1\r\nHost: a\r\n\r\n";
	char buf[512];
	snprintf(buf, sizeof buf, "%s%s%s", one, two, three);
	size_t len = strlen(buf);
	h1_parser *p = h1_create(&lim_default);
	size_t got = h1_feed(p, (const uint8_t *)buf, len);
	CHECK_EQ_INT(got, strlen(one)); /* the head ends the first request */
	CHECK_EQ_INT(h1_get_state(p), H1_HEAD);
	h1_resume(p);
	CHECK_EQ_INT(h1_get_state(p), H1_COMPLETE);
	CHECK_STR(h1_get_req(p)->path, "/1");
	h1_next(p);
	size_t off = got;
	got = h1_feed(p, (const uint8_t *)buf + off, len - off);
	CHECK_EQ_INT(got, strlen(two) - 3);
	CHECK_EQ_INT(h1_get_state(p), H1_HEAD);
	off += got;
	h1_resume(p);
	CHECK_EQ_INT(h1_get_state(p), H1_PARTIAL);
	got = h1_feed(p, (const uint8_t *)buf + off, len - off);
	CHECK_EQ_INT(got, 3);
	CHECK_EQ_INT(h1_get_state(p), H1_COMPLETE);
	CHECK_STR(h1_get_req(p)->path, "/2");
	CHECK_EQ_INT(h1_get_req(p)->body_len, 3);
	CHECK(memcmp(h1_get_req(p)->body, "xyz", 3) == 0);
	off += got;
	h1_next(p);
	CHECK_EQ_INT(run_step(p, buf + off, len - off, 0), strlen(three));
	CHECK_EQ_INT(h1_get_state(p), H1_COMPLETE);
	CHECK_STR(h1_get_req(p)->path, "/3");
	h1_destroy(p);
}

TEST(leading_empty_lines)
{
	h1_parser *p = h1_create(&lim_default);
	CHECK_EQ_INT(h1_feed(p, (const uint8_t *)"\r\n\r\n", 4), 4);
	CHECK_EQ_INT(h1_get_state(p), H1_IDLE);
	const char *s = "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
	CHECK_EQ_INT(run(p, s), strlen(s));
	CHECK_EQ_INT(h1_get_state(p), H1_COMPLETE);
	h1_destroy(p);
}

TEST(post_content_length)
{
	const char *s = "POST /socket.io/?EIO=4&transport=polling&sid=x HTTP/1.1\r\nHost: a\r\n"
			"Content-Type: text/plain\r\nContent-Length: 11\r\n\r\n4hello worlDEXTRA";
	h1_parser *p = h1_create(&lim_default);
	size_t got = run(p, s);
	CHECK_EQ_INT(got, strlen(s) - 6); /* "DEXTRA" is the next request's */
	CHECK_EQ_INT(h1_get_state(p), H1_COMPLETE);
	const h1_req *r = h1_get_req(p);
	CHECK_EQ_INT(r->method, H1_POST);
	CHECK_EQ_INT(r->content_length, 11);
	CHECK_EQ_INT(r->body_len, 11);
	CHECK(memcmp(r->body, "4hello worl", 11) == 0);
	h1_destroy(p);

	p = parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
	CHECK_EQ_INT(h1_get_state(p), H1_COMPLETE);
	CHECK_EQ_INT(h1_get_req(p)->content_length, 0);
	CHECK_STR((const char *)h1_get_req(p)->body, "");
	h1_destroy(p);
}

TEST(chunked)
{
	const char *s = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
			"5;name=value;x\r\nhello\r\n1 ; y\r\n \r\n6\r\nworld!\r\n"
			"0;last\r\nX-Trailer: 1\r\nOther: 2\r\n\r\nNEXT";
	h1_parser *p = h1_create(&lim_default);
	CHECK_EQ_INT(run(p, s), strlen(s) - 4);
	CHECK_EQ_INT(h1_get_state(p), H1_COMPLETE);
	const h1_req *r = h1_get_req(p);
	CHECK(r->chunked);
	CHECK_EQ_INT(r->content_length, -1);
	CHECK_EQ_INT(r->body_len, 12);
	CHECK(memcmp(r->body, "hello world!", 12) == 0);
	CHECK_EQ_INT(r->n_headers, 2); /* trailers are not headers */
	CHECK(h1_header_get(r, "x-trailer") == NULL);
	h1_destroy(p);

	p = parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n");
	CHECK_EQ_INT(h1_get_state(p), H1_COMPLETE);
	CHECK(h1_get_req(p)->chunked);
	CHECK_STR((const char *)h1_get_req(p)->body, "");
	h1_destroy(p);
}

TEST(chunked_byte_by_byte)
{
	const char *s = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
			"a;ext=\"q\"\r\n0123456789\r\n10\r\nabcdefghijklmnop\r\n0\r\nT: v\r\n\r\nGET";
	size_t len = strlen(s);
	h1_parser *p = h1_create(&lim_default);
	CHECK_EQ_INT(run_step(p, s, len, 1), len - 3);
	CHECK_EQ_INT(h1_get_state(p), H1_COMPLETE);
	CHECK_EQ_INT(h1_get_req(p)->body_len, 26);
	CHECK(memcmp(h1_get_req(p)->body, "0123456789abcdefghijklmnop", 26) == 0);
	h1_destroy(p);
}

TEST(expect_continue)
{
	const char *s = "POST /up HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n"
			"Content-Length: 4\r\n\r\n";
	h1_parser *p = h1_create(&lim_default);
	CHECK_EQ_INT(h1_feed(p, (const uint8_t *)s, strlen(s)), strlen(s));
	CHECK_EQ_INT(h1_get_state(p), H1_HEAD);
	CHECK(h1_get_req(p)->expect_continue);
	h1_resume(p);
	CHECK_EQ_INT(h1_get_state(p), H1_PARTIAL);
	CHECK_EQ_INT(h1_feed(p, (const uint8_t *)"", 0), 0); /* an empty read is no EOF */
	CHECK_EQ_INT(h1_get_state(p), H1_PARTIAL);
	CHECK_EQ_INT(h1_feed(p, (const uint8_t *)"body", 4), 4);
	CHECK_EQ_INT(h1_get_state(p), H1_COMPLETE);
	h1_destroy(p);

	p = parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
	CHECK(!h1_get_req(p)->expect_continue);
	h1_destroy(p);
	/* HTTP/1.0 cannot take a 100 */
	p = parse("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n");
	CHECK(!h1_get_req(p)->expect_continue);
	h1_destroy(p);
}

TEST(keep_alive_rules)
{
	struct { const char *s; bool ka; int minor; } cases[] = {
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true, 1},
		{"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", false, 1},
		{"GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, Close\r\n\r\n", false, 1},
		{"GET / HTTP/1.0\r\n\r\n", false, 0},
		{"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true, 0},
		{"GET / HTTP/1.0\r\nHost: a\r\nConnection: Keep-Alive\r\n\r\n", true, 0},
		{"GET / HTTP/1.0\r\nConnection: close\r\n\r\n", false, 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		h1_parser *p = parse(cases[i].s);
		CHECK_EQ_INT(h1_get_state(p), H1_COMPLETE);
		CHECK_EQ_INT(h1_get_req(p)->keep_alive, cases[i].ka);
		CHECK_EQ_INT(h1_get_req(p)->http_minor, cases[i].minor);
		h1_destroy(p);
	}
}

TEST(refusals)
{
	struct { const char *s; int status; } cases[] = {
		/* CL and TE together, either order */
		{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\n", 400},
		/* Content-Length: duplicate (equal or not), not 1*DIGIT */
		{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400},
		/* Transfer-Encoding */
		{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=1\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
		{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
		{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity, chunked\r\n\r\n", 501},
		/* Host */
		{"GET / HTTP/1.1\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", 400},
		{"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		/* obs-fold, whitespace-led lines, space before ':' */
		{"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\t2\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost: a\r\nX:\r\n 2\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost: a\r\nX:\r\n\r\n\r\n", 0}, /* control: no fold */
		{"GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n 0\r\n\r\n", 400},
		{"GET / HTTP/1.1\nHost: a\nX: 1\n 2\n\n", 400},
		{"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 0\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost: a\r\nX\t: 1\r\n\r\n", 400},
		/* version */
		{"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
		{"GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505},
		{"GET / HTTP/0.9\r\n\r\n", 505},
		{"GET / HTTP/3.1\r\nHost: a\r\n\r\n", 505},
		{"GET /\r\n\r\n", 505},
		{"GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400},
		{"GET / HTTP/x.1\r\nHost: a\r\n\r\n", 400},
		/* other shapes libhttp-parser refuses */
		{"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n", 400},
		{"GET / HTTP/1.1\rHost: a\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\n: a\r\n\r\n", 400},
		{" GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int st = refusal(cases[i].s);
		if (st != cases[i].status)
			fprintf(stderr, "case %zu: %s", i, cases[i].s);
		CHECK_EQ_INT(st, cases[i].status);
	}
	h1_parser *p = parse("GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n");
	CHECK_CONTAINS(h1_err_text(p), "obs-fold");
	CHECK(!h1_err_has_head(p));
	/* errors are final */
	CHECK_EQ_INT(h1_feed(p, (const uint8_t *)"GET", 3), 0);
	h1_next(p);
	CHECK_EQ_INT(h1_get_state(p), H1_ERROR);
	h1_destroy(p);
}

TEST(header_limit_boundary)
{
	const char *s = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: 0123456789\r\n\r\n";
	size_t len = strlen(s);
	for (size_t step = 0; step <= 1; step++) {
		h1_limits lim = {.max_header_bytes = len, .max_body = 10};
		h1_parser *p = h1_create(&lim);
		CHECK_EQ_INT(run_step(p, s, len, step), len);
		CHECK_EQ_INT(h1_get_state(p), H1_COMPLETE);
		h1_destroy(p);

		lim.max_header_bytes = len - 1;
		p = h1_create(&lim);
		run_step(p, s, len, step);
		CHECK_EQ_INT(h1_get_state(p), H1_ERROR);
		CHECK_EQ_INT(h1_err_status(p), 431);
		CHECK(!h1_err_has_head(p));
		h1_destroy(p);
	}
	/* leading empty lines are not counted; a body is not either */
	char buf[256];
	snprintf(buf, sizeof buf, "\r\n\r\nPOST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc");
	h1_limits lim = {.max_header_bytes = strlen(buf) - 7, .max_body = 10};
	h1_parser *p = parse_lim(buf, &lim);
	CHECK_EQ_INT(h1_get_state(p), H1_COMPLETE);
	h1_destroy(p);
	lim.max_header_bytes--;
	p = parse_lim(buf, &lim);
	CHECK_EQ_INT(h1_err_status(p), 431);
	h1_destroy(p);
	/* a head that never ends */
	lim.max_header_bytes = 100;
	p = h1_create(&lim);
	h1_feed(p, (const uint8_t *)"GET / HTTP/1.1\r\nX: ", 19);
	for (int i = 0; i < 20 && h1_get_state(p) == H1_PARTIAL; i++)
		h1_feed(p, (const uint8_t *)"aaaaaaaaaa", 10);
	CHECK_EQ_INT(h1_err_status(p), 431);
	h1_destroy(p);
}

TEST(body_limit)
{
	h1_limits lim = {.max_header_bytes = 1024, .max_body = 5};
	h1_parser *p = parse_lim("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n12345", &lim);
	CHECK_EQ_INT(h1_get_state(p), H1_COMPLETE);
	CHECK_EQ_INT(h1_get_req(p)->body_len, 5);
	h1_destroy(p);

	p = parse_lim("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\n123456", &lim);
	CHECK_EQ_INT(h1_err_status(p), 413);
	CHECK(h1_err_has_head(p));
	CHECK_STR(h1_get_req(p)->path, "/x");
	h1_destroy(p);

	const char *ok = "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
			 "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
	p = parse_lim(ok, &lim);
	CHECK_EQ_INT(h1_get_state(p), H1_COMPLETE);
	h1_destroy(p);
	const char *over = "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
			   "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n";
	for (size_t step = 0; step <= 1; step++) {
		p = h1_create(&lim);
		run_step(p, over, strlen(over), step);
		CHECK_EQ_INT(h1_err_status(p), 413);
		CHECK(h1_err_has_head(p));
		CHECK_STR(h1_get_req(p)->path, "/c");
		h1_destroy(p);
	}
	/* a chunk announced larger than the limit is refused before its bytes */
	p = parse_lim("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
		      "ffffffffffff\r\n", &lim);
	CHECK_EQ_INT(h1_err_status(p), 413);
	h1_destroy(p);
}

TEST(upgrade)
{
	const char *head = "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: a\r\n"
			   "Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n"
			   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
			   "Sec-WebSocket-Version: 13\r\n\r\n";
	char buf[512];
	snprintf(buf, sizeof buf, "%s\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", head);
	size_t len = strlen(buf);
	for (size_t step = 0; step <= 1; step++) {
		h1_parser *p = h1_create(&lim_default);
		CHECK_EQ_INT(run_step(p, buf, len, step), strlen(head));
		CHECK_EQ_INT(h1_get_state(p), H1_COMPLETE);
		const h1_req *r = h1_get_req(p);
		CHECK(r->upgrade);
		CHECK_EQ_INT(r->body_len, 0);
		CHECK_STR(h1_header_get(r, "upgrade"), "websocket");
		CHECK_EQ_INT(h1_feed(p, (const uint8_t *)buf + strlen(head), 11), 0);
		h1_destroy(p);
	}
	/* one without the other is no upgrade */
	h1_parser *p = parse("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n");
	CHECK_EQ_INT(h1_get_state(p), H1_COMPLETE);
	CHECK(!h1_get_req(p)->upgrade);
	h1_destroy(p);
	p = parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgraded\r\nUpgrade: x\r\n\r\n");
	CHECK(!h1_get_req(p)->upgrade);
	h1_destroy(p);
}

TEST(methods)
{
	struct { const char *s; h1_method m; const char *name; } cases[] = {
		{"HEAD /h HTTP/1.1\r\nHost: a\r\n\r\n", H1_HEAD_M, "HEAD"},
		{"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", H1_OPTIONS, "OPTIONS"},
		{"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", H1_PUT, "PUT"},
		{"DELETE / HTTP/1.1\r\nHost: a\r\n\r\n", H1_DELETE, "DELETE"},
		{"PATCH / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", H1_PATCH, "PATCH"},
		{"PROPFIND / HTTP/1.1\r\nHost: a\r\n\r\n", H1_OTHER, "PROPFIND"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		h1_parser *p = parse(cases[i].s);
		CHECK_EQ_INT(h1_get_state(p), H1_COMPLETE);
		CHECK_EQ_INT(h1_get_req(p)->method, cases[i].m);
		CHECK_STR(h1_get_req(p)->method_name, cases[i].name);
		h1_destroy(p);
	}
	h1_parser *p = parse("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
	CHECK_STR(h1_get_req(p)->target, "*");
	h1_destroy(p);
	/* HEAD with no body; the next request follows at once */
	const char *s = "HEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n";
	p = h1_create(&lim_default);
	CHECK_EQ_INT(run(p, s), strlen(s) - 16);
	CHECK_EQ_INT(h1_get_state(p), H1_COMPLETE);
	h1_destroy(p);
	/* unknown methods and lower case */
	CHECK_EQ_INT(refusal("FOO / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	CHECK_EQ_INT(refusal("get / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	CHECK_EQ_INT(refusal("GETX / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
}

int main(void)
{
	RUN(simple_get);
	RUN(no_query);
	RUN(query_decoding);
	RUN(repeated_headers);
	RUN(byte_by_byte);
	RUN(pipelined);
	RUN(leading_empty_lines);
	RUN(post_content_length);
	RUN(chunked);
	RUN(chunked_byte_by_byte);
	RUN(expect_continue);
	RUN(keep_alive_rules);
	RUN(refusals);
	RUN(header_limit_boundary);
	RUN(body_limit);
	RUN(upgrade);
	RUN(methods);
	return TEST_END();
}
