#include "../test.h"
#include "net/ws.h"
#include "util/utf8.h"

#include <stdbool.h>

/* One set of zlib streams for the whole run, as a loop has. */
static ws_zlib *zlib(void)
{
	static ws_zlib *z;
	if (!z)
		z = ws_zlib_create();
	return z;
}

static const uint8_t MASK[4] = {0x37, 0xfa, 0x21, 0x3d};

/* A client frame: b0 is FIN/RSV/opcode, masked unless told. */
static void frame(gw_buf *b, uint8_t b0, const void *payload, size_t n, bool masked)
{
	uint8_t h[14];
	size_t hl = ws_frame_header(h, 0, n, false);
	h[0] = b0;
	if (masked)
		h[1] |= 0x80;
	gw_buf_append(b, h, hl);
	if (masked)
		gw_buf_append(b, MASK, 4);
	size_t at = b->len;
	gw_buf_append(b, payload, n);
	if (masked)
		for (size_t i = 0; i < n; i++)
			b->data[at + i] ^= MASK[i & 3];
}

#define FIN 0x80
#define RSV1 0x40
#define F(b, b0, s) frame(b, b0, s, sizeof(s) - 1, true)

typedef struct rec {
	ws_ev_type type;
	uint16_t code;
	bool binary;
	gw_buf data;
} rec;

typedef struct run {
	rec ev[16];
	size_t n;
	size_t consumed;  /* of the whole input */
} run;

/* Feeds buf to r in chunks of step bytes (the last may be shorter), calling again with
 * the rest of a chunk after each event, and records the events with a copy of their
 * data. Stops when the reader stops reading. */
static void feed(ws_reader *r, uint8_t *buf, size_t len, size_t step, run *out)
{
	*out = (run){0};
	for (size_t off = 0; off < len;) {
		size_t n = len - off < step ? len - off : step, pos = 0;
		while (pos < n) {
			ws_event ev;
			size_t c = ws_read(r, buf + off + pos, n - pos, &ev);
			CHECK(c <= n - pos);
			pos += c;
			out->consumed += c;
			if (ev.type == WS_EV_NONE) {
				if (c == 0)
					return;
				CHECK(pos == n);
				continue;
			}
			if (out->n == 16)
				return;
			rec *e = &out->ev[out->n++];
			*e = (rec){.type = ev.type, .code = ev.code, .binary = ev.binary};
			if (ev.type == WS_EV_ERROR)
				CHECK(ev.reason && *ev.reason);
			gw_buf_append(&e->data, ev.data, ev.len);
		}
		off += n;
	}
}

static void run_free(run *o)
{
	for (size_t i = 0; i < o->n; i++)
		gw_buf_free(&o->ev[i].data);
}

static bool rec_is(const rec *e, ws_ev_type t, const void *data, size_t n)
{
	return e->type == t && e->data.len == n && (n == 0 || memcmp(e->data.data, data, n) == 0);
}

/* The frames in b, fed whole and in steps of 1, 2, 3 and 7 bytes: each way must end in
 * exactly one event, the last, of type t with code (for errors and closes). */
static void expect_one(gw_buf *b, size_t max, bool deflate, ws_ev_type t, uint16_t code)
{
	static const size_t steps[] = {SIZE_MAX, 1, 2, 3, 7};
	for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
		gw_buf copy = {0};
		gw_buf_append(&copy, b->data, b->len);
		ws_reader r;
		ws_reader_init(&r, max, deflate ? zlib() : NULL);
		run o;
		feed(&r, copy.data, copy.len, steps[s], &o);
		CHECK_EQ_INT(o.n, 1);
		if (o.n == 1) {
			CHECK_EQ_INT(o.ev[0].type, t);
			if (t == WS_EV_ERROR || t == WS_EV_CLOSE)
				CHECK_EQ_INT(o.ev[0].code, code);
		}
		run_free(&o);
		ws_reader_fini(&r);
		gw_buf_free(&copy);
	}
}

static void expect_error(gw_buf *b, uint16_t code) { expect_one(b, 1 << 20, false, WS_EV_ERROR, code); }

TEST(accept_key_rfc_example)
{
	char out[29];
	ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out);
	CHECK_STR(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(key_valid)
{
	CHECK(ws_key_valid("dGhlIHNhbXBsZSBub25jZQ=="));
	CHECK(ws_key_valid("AAAAAAAAAAAAAAAAAAAAAA=="));
	CHECK(!ws_key_valid("dGhlIHNhbXBsZSBub25jZQ="));
	CHECK(!ws_key_valid("dGhlIHNhbXBsZSBub25jZQ"));
	CHECK(!ws_key_valid("dGhlIHNhbXBsZSBub25jZQ==="));
	CHECK(!ws_key_valid("dGhlIHNhbXBsZSBub25jZ-=="));  /* base64url is not base64 */
	CHECK(!ws_key_valid("dGhlIHNhbXBsZSBub25jZQAA"));  /* 18 bytes */
	CHECK(!ws_key_valid(""));
	CHECK(!ws_key_valid(NULL));
}

TEST(frame_header_sizes)
{
	uint8_t h[10];
	CHECK_EQ_INT(ws_frame_header(h, WS_OP_TEXT, 0, false), 2);
	CHECK(h[0] == 0x81 && h[1] == 0);
	CHECK_EQ_INT(ws_frame_header(h, WS_OP_BINARY, 125, true), 2);
	CHECK(h[0] == 0xc2 && h[1] == 125);
	CHECK_EQ_INT(ws_frame_header(h, WS_OP_TEXT, 126, false), 4);
	CHECK(h[1] == 126 && h[2] == 0 && h[3] == 126);
	CHECK_EQ_INT(ws_frame_header(h, WS_OP_TEXT, 65535, false), 4);
	CHECK(h[2] == 0xff && h[3] == 0xff);
	CHECK_EQ_INT(ws_frame_header(h, WS_OP_TEXT, 65536, false), 10);
	CHECK(h[1] == 127 && h[2] == 0 && h[7] == 1 && h[8] == 0 && h[9] == 0);
}

TEST(close_frame)
{
	uint8_t f[130];
	CHECK_EQ_INT(ws_close_frame(f, 0, "ignored"), 2);
	CHECK(f[0] == 0x88 && f[1] == 0);
	CHECK_EQ_INT(ws_close_frame(f, 1000, "bye"), 7);
	CHECK(f[1] == 5 && f[2] == 0x03 && f[3] == 0xe8 && memcmp(f + 4, "bye", 3) == 0);
	CHECK_EQ_INT(ws_close_frame(f, 1001, NULL), 4);
	char longr[200];
	memset(longr, 'x', sizeof longr);
	longr[199] = 0;
	CHECK_EQ_INT(ws_close_frame(f, 1011, longr), 127);
	CHECK_EQ_INT(f[1], 125);
	/* 122 ASCII then "é": byte 123 would split it, so it goes */
	memset(longr, 'x', 122);
	strcpy(longr + 122, "\xc3\xa9zz");
	CHECK_EQ_INT(ws_close_frame(f, 1000, longr), 2 + 2 + 122);
	CHECK(gw_utf8_valid(f + 4, 122));
}

TEST(close_codes)
{
	CHECK(ws_close_code_valid(1000));
	CHECK(ws_close_code_valid(1003));
	CHECK(ws_close_code_valid(1007));
	CHECK(ws_close_code_valid(1011));
	CHECK(ws_close_code_valid(3000));
	CHECK(ws_close_code_valid(4999));
	unsigned bad[] = {0, 999, 1004, 1005, 1006, 1012, 1015, 2999, 5000, 65535};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK(!ws_close_code_valid(bad[i]));
}

/* Every length class, fed whole and byte by byte, text and binary. */
TEST(size_classes)
{
	static const size_t sizes[] = {0, 1, 125, 126, 127, 65535, 65536, 70001};
	static const size_t steps[] = {SIZE_MAX, 1, 5, 4096};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		uint8_t *p = malloc(sizes[i] + 1);
		for (size_t k = 0; k < sizes[i]; k++)
			p[k] = (uint8_t)('a' + k % 26);
		for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
			for (int bin = 0; bin < 2; bin++) {
				gw_buf b = {0};
				frame(&b, FIN | (bin ? WS_OP_BINARY : WS_OP_TEXT), p, sizes[i], true);
				ws_reader r;
				ws_reader_init(&r, 1 << 20, NULL);
				run o;
				feed(&r, b.data, b.len, steps[s], &o);
				CHECK_EQ_INT(o.n, 1);
				CHECK_EQ_INT(o.consumed, b.len);
				CHECK(o.n == 1 && rec_is(&o.ev[0], WS_EV_MESSAGE, p, sizes[i]));
				CHECK(o.n == 1 && o.ev[0].binary == (bool)bin);
				run_free(&o);
				ws_reader_fini(&r);
				gw_buf_free(&b);
			}
		}
		free(p);
	}
}

/* An unfragmented frame that is whole in the buffer comes back in place. */
TEST(zero_copy)
{
	gw_buf b = {0};
	F(&b, FIN | WS_OP_TEXT, "42[\"hi\"]");
	ws_reader r;
	ws_reader_init(&r, 1000, NULL);
	ws_event ev;
	CHECK_EQ_INT(ws_read(&r, b.data, b.len, &ev), b.len);
	CHECK_EQ_INT(ev.type, WS_EV_MESSAGE);
	CHECK(ev.data == b.data + 6 && ev.len == 8 && memcmp(ev.data, "42[\"hi\"]", 8) == 0);
	CHECK(!ev.binary);
	CHECK_EQ_INT(r.msg.len, 0);
	ws_reader_fini(&r);
	gw_buf_free(&b);
}

TEST(several_frames_one_buffer)
{
	gw_buf b = {0};
	F(&b, FIN | WS_OP_TEXT, "a");
	F(&b, FIN | WS_OP_PING, "p");
	F(&b, FIN | WS_OP_TEXT, "");
	uint8_t bin[] = {1, 2, 3};
	frame(&b, FIN | WS_OP_BINARY, bin, 3, true);
	F(&b, FIN | WS_OP_PONG, "");
	F(&b, FIN | WS_OP_CLOSE, "\x03\xe8" "bye");
	size_t before_tail = b.len;
	F(&b, FIN | WS_OP_TEXT, "after close");
	static const size_t steps[] = {SIZE_MAX, 1, 3};
	for (size_t s = 0; s < 3; s++) {
		gw_buf c = {0};
		gw_buf_append(&c, b.data, b.len);
		ws_reader r;
		ws_reader_init(&r, 1000, NULL);
		run o;
		feed(&r, c.data, c.len, steps[s], &o);
		CHECK_EQ_INT(o.n, 6);
		CHECK_EQ_INT(o.consumed, before_tail);
		if (o.n == 6) {
			CHECK(rec_is(&o.ev[0], WS_EV_MESSAGE, "a", 1));
			CHECK(rec_is(&o.ev[1], WS_EV_PING, "p", 1));
			CHECK(rec_is(&o.ev[2], WS_EV_MESSAGE, "", 0));
			CHECK(rec_is(&o.ev[3], WS_EV_MESSAGE, bin, 3) && o.ev[3].binary);
			CHECK(rec_is(&o.ev[4], WS_EV_PONG, "", 0));
			CHECK(rec_is(&o.ev[5], WS_EV_CLOSE, "bye", 3) && o.ev[5].code == 1000);
		}
		ws_event ev;
		CHECK_EQ_INT(ws_read(&r, c.data + before_tail, c.len - before_tail, &ev), 0);
		CHECK_EQ_INT(ev.type, WS_EV_NONE);
		run_free(&o);
		ws_reader_fini(&r);
		gw_buf_free(&c);
	}
	gw_buf_free(&b);
}

/* "Hello wörld" in three fragments, ö split between two, a ping and an empty
 * fragment in between (§5.4). */
TEST(fragmented_with_ping)
{
	gw_buf b = {0};
	F(&b, WS_OP_TEXT, "Hello w\xc3");
	F(&b, FIN | WS_OP_PING, "ping!");
	F(&b, WS_OP_CONT, "");
	F(&b, WS_OP_CONT, "\xb6r");
	F(&b, FIN | WS_OP_PONG, "");
	F(&b, FIN | WS_OP_CONT, "ld");
	F(&b, FIN | WS_OP_BINARY, "next");
	static const size_t steps[] = {SIZE_MAX, 1, 2, 9};
	for (size_t s = 0; s < 4; s++) {
		gw_buf c = {0};
		gw_buf_append(&c, b.data, b.len);
		ws_reader r;
		ws_reader_init(&r, 1000, NULL);
		run o;
		feed(&r, c.data, c.len, steps[s], &o);
		CHECK_EQ_INT(o.n, 4);
		CHECK_EQ_INT(o.consumed, b.len);
		if (o.n == 4) {
			CHECK(rec_is(&o.ev[0], WS_EV_PING, "ping!", 5));
			CHECK(rec_is(&o.ev[1], WS_EV_PONG, "", 0));
			CHECK(rec_is(&o.ev[2], WS_EV_MESSAGE, "Hello w\xc3\xb6rld", 12) && !o.ev[2].binary);
			CHECK(rec_is(&o.ev[3], WS_EV_MESSAGE, "next", 4) && o.ev[3].binary);
		}
		run_free(&o);
		ws_reader_fini(&r);
		gw_buf_free(&c);
	}
	gw_buf_free(&b);
}

TEST(protocol_errors)
{
	gw_buf b = {0};
	frame(&b, FIN | WS_OP_TEXT, "hi", 2, false);
	expect_error(&b, 1002); /* unmasked */
	gw_buf_reset(&b);
	F(&b, FIN | 0x20 | WS_OP_TEXT, "hi");
	expect_error(&b, 1002); /* RSV2 */
	gw_buf_reset(&b);
	F(&b, FIN | 0x10 | WS_OP_TEXT, "hi");
	expect_error(&b, 1002); /* RSV3 */
	gw_buf_reset(&b);
	F(&b, FIN | RSV1 | WS_OP_TEXT, "hi");
	expect_error(&b, 1002); /* RSV1 without deflate */
	for (uint8_t op = 3; op < 16; op++) {
		if (op == WS_OP_CLOSE || op == WS_OP_PING || op == WS_OP_PONG)
			continue;
		gw_buf_reset(&b);
		F(&b, FIN | op, "hi");
		expect_error(&b, 1002); /* unknown opcode */
	}
	uint8_t big[126] = {0};
	gw_buf_reset(&b);
	frame(&b, FIN | WS_OP_PING, big, 126, true);
	expect_error(&b, 1002); /* control frame of 126 bytes */
	gw_buf_reset(&b);
	frame(&b, FIN | WS_OP_PING, big, 125, true);
	expect_one(&b, 1000, false, WS_EV_PING, 0); /* 125 is fine */
	gw_buf_reset(&b);
	F(&b, WS_OP_PING, "hi");
	expect_error(&b, 1002); /* fragmented control frame */
	gw_buf_reset(&b);
	F(&b, FIN | WS_OP_CONT, "hi");
	expect_error(&b, 1002); /* continuation without a start */
	gw_buf_reset(&b);
	F(&b, WS_OP_TEXT, "a");
	F(&b, FIN | WS_OP_TEXT, "b");
	expect_error(&b, 1002); /* a new message inside a fragmented one */
	gw_buf_reset(&b);
	F(&b, WS_OP_BINARY, "a");
	F(&b, FIN | WS_OP_BINARY, "b");
	expect_error(&b, 1002);
	gw_buf_reset(&b);
	uint8_t huge[] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4};
	gw_buf_append(&b, huge, sizeof huge);
	expect_error(&b, 1002); /* 64-bit length with the high bit set */
	gw_buf_free(&b);
}

/* An error fails at the header when it can: the payload is not waited for. */
TEST(error_before_payload)
{
	uint8_t hdr[] = {0x81, 0x7e, 0x01, 0x00}; /* unmasked, 256 bytes announced */
	ws_reader r;
	ws_reader_init(&r, 1000, NULL);
	ws_event ev;
	ws_read(&r, hdr, 2, &ev);
	CHECK_EQ_INT(ev.type, WS_EV_ERROR);
	CHECK_EQ_INT(ev.code, 1002);
	CHECK_EQ_INT(ws_read(&r, hdr + 2, 2, &ev), 0); /* and then reads nothing */
	CHECK_EQ_INT(ev.type, WS_EV_NONE);
	ws_reader_fini(&r);
}

TEST(close_frames)
{
	struct { const char *p; size_t n; ws_ev_type t; uint16_t code; } v[] = {
		{"", 0, WS_EV_CLOSE, WS_CLOSE_NO_STATUS},
		{"\x03", 1, WS_EV_ERROR, 1002},
		{"\x03\xe8", 2, WS_EV_CLOSE, 1000},
		{"\x03\xe8" "bye", 5, WS_EV_CLOSE, 1000},
		{"\x0b\xb8", 2, WS_EV_CLOSE, 3000},
		{"\x13\x87", 2, WS_EV_CLOSE, 4999},
		{"\x03\xed", 2, WS_EV_ERROR, 1002},  /* 1005 */
		{"\x03\xee", 2, WS_EV_ERROR, 1002},  /* 1006 */
		{"\x03\xf7", 2, WS_EV_ERROR, 1002},  /* 1015 */
		{"\x03\xe7", 2, WS_EV_ERROR, 1002},  /* 999 */
		{"\x13\x88", 2, WS_EV_ERROR, 1002},  /* 5000 */
		{"\x0b\xb7", 2, WS_EV_ERROR, 1002},  /* 2999 */
		{"\x03\xe8\xc0\x80", 4, WS_EV_ERROR, 1007},  /* overlong NUL in the reason */
		{"\x03\xe8\xce\xba\xe1", 5, WS_EV_ERROR, 1007}, /* truncated reason */
		{"\x03\xe8\xce\xba", 4, WS_EV_CLOSE, 1000},
	};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		gw_buf b = {0};
		frame(&b, FIN | WS_OP_CLOSE, v[i].p, v[i].n, true);
		expect_one(&b, 1000, false, v[i].t, v[i].code);
		gw_buf_free(&b);
	}
}

TEST(invalid_text)
{
	gw_buf b = {0};
	F(&b, FIN | WS_OP_TEXT, "\xc0\xaf");
	expect_error(&b, 1007); /* overlong */
	gw_buf_reset(&b);
	F(&b, FIN | WS_OP_TEXT, "a\xed\xa0\x80z");
	expect_error(&b, 1007); /* surrogate */
	gw_buf_reset(&b);
	F(&b, FIN | WS_OP_TEXT, "euro \xe2\x82");
	expect_error(&b, 1007); /* truncated at the end */
	gw_buf_reset(&b);
	F(&b, WS_OP_TEXT, "euro \xe2");
	F(&b, FIN | WS_OP_CONT, "\x82");
	expect_error(&b, 1007); /* truncated at the end, across fragments */
	gw_buf_reset(&b);
	F(&b, FIN | WS_OP_BINARY, "\xc0\xaf");
	expect_one(&b, 1000, false, WS_EV_MESSAGE, 0); /* binary is not checked */

	/* split across fragments: fails at the fragment that makes it invalid, before the
	 * message ends */
	gw_buf_reset(&b);
	F(&b, WS_OP_TEXT, "ok \xed");
	F(&b, WS_OP_CONT, "\xa0\x80");
	expect_error(&b, 1007);
	gw_buf_free(&b);
}

TEST(max_message)
{
	gw_buf b = {0};
	F(&b, FIN | WS_OP_TEXT, "0123456789");
	expect_one(&b, 10, false, WS_EV_MESSAGE, 0);
	gw_buf_reset(&b);
	F(&b, FIN | WS_OP_TEXT, "0123456789a");
	expect_one(&b, 10, false, WS_EV_ERROR, 1009);
	gw_buf_reset(&b);
	F(&b, WS_OP_TEXT, "012345");
	F(&b, FIN | WS_OP_PING, "control frames do not count");
	F(&b, FIN | WS_OP_CONT, "6789");
	ws_reader r;
	ws_reader_init(&r, 10, NULL);
	run o;
	feed(&r, b.data, b.len, SIZE_MAX, &o);
	CHECK_EQ_INT(o.n, 2);
	CHECK(o.n == 2 && rec_is(&o.ev[1], WS_EV_MESSAGE, "0123456789", 10));
	run_free(&o);
	ws_reader_fini(&r);
	gw_buf_reset(&b);
	F(&b, WS_OP_TEXT, "012345");
	F(&b, FIN | WS_OP_CONT, "67890");
	expect_one(&b, 10, false, WS_EV_ERROR, 1009);

	/* known from the header: 1 GiB announced, only the header sent */
	uint8_t hdr[] = {0x82, 0xff, 0, 0, 0, 0, 0x40, 0, 0, 0, 1, 2, 3, 4};
	ws_reader_init(&r, 1 << 20, NULL);
	ws_event ev;
	CHECK_EQ_INT(ws_read(&r, hdr, sizeof hdr, &ev), sizeof hdr);
	CHECK_EQ_INT(ev.type, WS_EV_ERROR);
	CHECK_EQ_INT(ev.code, 1009);
	ws_reader_fini(&r);
	gw_buf_free(&b);
}

/* After a big fragmented message, the next read gives its buffer back. */
TEST(big_buffer_trimmed)
{
	size_t n = 200000;
	uint8_t *p = calloc(1, n);
	gw_buf b = {0};
	frame(&b, WS_OP_BINARY, p, n, true);
	frame(&b, FIN | WS_OP_CONT, p, 1, true);
	ws_reader r;
	ws_reader_init(&r, 1 << 20, NULL);
	run o;
	feed(&r, b.data, b.len, 4096, &o);
	CHECK(o.n == 1 && o.ev[0].type == WS_EV_MESSAGE && o.ev[0].data.len == n + 1);
	CHECK(r.msg.cap > n);
	run_free(&o);
	gw_buf_reset(&b);
	F(&b, FIN | WS_OP_PING, "");
	feed(&r, b.data, b.len, SIZE_MAX, &o);
	CHECK(o.n == 1 && o.ev[0].type == WS_EV_PING);
	CHECK_EQ_INT(r.msg.cap, 0);
	run_free(&o);
	ws_reader_fini(&r);
	gw_buf_free(&b);
	free(p);
}

/* ---- permessage-deflate ---- */

static void deflated_frames(gw_buf *b, const char *text, size_t parts, bool binary)
{
	gw_buf z = {0};
	CHECK_EQ_INT(ws_deflate(zlib(), (const uint8_t *)text, strlen(text), &z), 0);
	size_t per = z.len / parts + 1;
	for (size_t i = 0, off = 0; i < parts; i++) {
		size_t n = z.len - off < per ? z.len - off : per;
		uint8_t b0 = (uint8_t)((i == 0 ? (RSV1 | (binary ? WS_OP_BINARY : WS_OP_TEXT)) : WS_OP_CONT) |
				       (i + 1 == parts ? FIN : 0));
		frame(b, b0, z.data + off, n, true);
		off += n;
	}
	gw_buf_free(&z);
}

TEST(deflate_roundtrip)
{
	const char *msgs[] = {"", "a", "42[\"chat\",{\"text\":\"hello hello hello hello\"}]",
			      "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5 \xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"};
	for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
		for (size_t parts = 1; parts <= 3; parts++) {
			gw_buf b = {0};
			deflated_frames(&b, msgs[i], parts, false);
			F(&b, FIN | WS_OP_TEXT, "plain");
			static const size_t steps[] = {SIZE_MAX, 1, 4};
			for (size_t s = 0; s < 3; s++) {
				gw_buf c = {0};
				gw_buf_append(&c, b.data, b.len);
				ws_reader r;
				ws_reader_init(&r, 1000, zlib());
				run o;
				feed(&r, c.data, c.len, steps[s], &o);
				CHECK_EQ_INT(o.n, 2);
				CHECK(o.n == 2 && rec_is(&o.ev[0], WS_EV_MESSAGE, msgs[i], strlen(msgs[i])));
				CHECK(o.n == 2 && rec_is(&o.ev[1], WS_EV_MESSAGE, "plain", 5));
				run_free(&o);
				ws_reader_fini(&r);
				gw_buf_free(&c);
			}
			gw_buf_free(&b);
		}
	}
}

/* A big message compresses, and is restored through several frames. */
TEST(deflate_big)
{
	size_t n = 300000;
	char *text = malloc(n + 1);
	for (size_t i = 0; i < n; i++)
		text[i] = (char)('a' + (i * 7 + i / 13) % 26);
	text[n] = 0;
	gw_buf b = {0};
	deflated_frames(&b, text, 4, true);
	CHECK(b.len < n / 2);
	ws_reader r;
	ws_reader_init(&r, n, zlib());
	run o;
	feed(&r, b.data, b.len, 1000, &o);
	CHECK_EQ_INT(o.n, 1);
	CHECK(o.n == 1 && rec_is(&o.ev[0], WS_EV_MESSAGE, text, n) && o.ev[0].binary);
	run_free(&o);
	ws_reader_fini(&r);

	ws_reader_init(&r, n - 1, zlib()); /* one byte less: 1009, from the inflated size */
	gw_buf_reset(&b);
	deflated_frames(&b, text, 1, true);
	feed(&r, b.data, b.len, SIZE_MAX, &o);
	CHECK(o.n == 1 && o.ev[0].type == WS_EV_ERROR && o.ev[0].code == 1009);
	run_free(&o);
	ws_reader_fini(&r);
	gw_buf_free(&b);
	free(text);
}

TEST(deflate_errors)
{
	gw_buf b = {0};
	/* a bomb: 1 MB of zeros against max 1000 */
	char *zeros = calloc(1, 1000001);
	memset(zeros, '0', 1000000);
	deflated_frames(&b, zeros, 1, false);
	free(zeros);
	expect_one(&b, 1000, true, WS_EV_ERROR, 1009);
	gw_buf_reset(&b);
	F(&b, FIN | RSV1 | WS_OP_BINARY, "\xff\xff\xff\xff");
	expect_one(&b, 1000, true, WS_EV_ERROR, 1007); /* corrupt */
	gw_buf_reset(&b);
	deflated_frames(&b, "bad \xed\xa0\x80 text", 1, false);
	expect_one(&b, 1000, true, WS_EV_ERROR, 1007); /* invalid UTF-8 once inflated */
	gw_buf_reset(&b);
	deflated_frames(&b, "bad \xed\xa0\x80 binary", 1, true);
	expect_one(&b, 1000, true, WS_EV_MESSAGE, 0);
	gw_buf_reset(&b);
	F(&b, RSV1 | WS_OP_TEXT, "");
	F(&b, FIN | RSV1 | WS_OP_CONT, "");
	expect_one(&b, 1000, true, WS_EV_ERROR, 1002); /* RSV1 on a continuation */
	gw_buf_reset(&b);
	F(&b, FIN | RSV1 | WS_OP_PING, "");
	expect_one(&b, 1000, true, WS_EV_ERROR, 1002); /* RSV1 on a control frame */
	gw_buf_free(&b);
}

TEST(deflate_codec)
{
	gw_buf z = {0}, out = {0};
	const char *s = "Hello";
	CHECK_EQ_INT(ws_deflate(zlib(), (const uint8_t *)s, 5, &z), 0);
	/* RFC 7692 §7.2.3.1: "Hello" without context takeover */
	static const uint8_t want[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
	CHECK(z.len == sizeof want && memcmp(z.data, want, sizeof want) == 0);
	CHECK_EQ_INT(ws_inflate(zlib(), z.data, z.len, &out, 5), 0);
	CHECK(out.len == 5 && memcmp(out.data, s, 5) == 0);
	gw_buf_reset(&out);
	CHECK_EQ_INT(ws_inflate(zlib(), z.data, z.len, &out, 4), -1);
	gw_buf_reset(&out);
	CHECK_EQ_INT(ws_inflate(zlib(), (const uint8_t *)"\xff\xff", 2, &out, 100), -2);
	/* a final block (BFINAL 1) is allowed: "Hello" as RFC 7692 §7.2.3.3 shows it */
	static const uint8_t final[] = {0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00};
	gw_buf_reset(&out);
	CHECK_EQ_INT(ws_inflate(zlib(), final, sizeof final, &out, 100), 0);
	CHECK(out.len == 5 && memcmp(out.data, s, 5) == 0);
	gw_buf_free(&z);
	gw_buf_free(&out);
}

TEST(negotiate)
{
	static const char answer[] =
		"permessage-deflate; server_no_context_takeover; client_no_context_takeover";
	struct { const char *offer; bool ok; } v[] = {
		{"permessage-deflate; client_max_window_bits", true},  /* Chrome, node ws */
		{"permessage-deflate", true},                          /* Firefox, Safari */
		{"permessage-deflate;client_max_window_bits=15", true},
		{"permessage-deflate; client_max_window_bits=\"10\"", true},
		{"permessage-deflate; server_max_window_bits=15; client_no_context_takeover", true},
		{"permessage-deflate; server_no_context_takeover; client_no_context_takeover", true},
		{"PerMessage-Deflate ; Client_Max_Window_Bits", true},
		{"permessage-deflate; server_max_window_bits=10", false},
		{"permessage-deflate; server_max_window_bits=10, permessage-deflate", true},
		{"x-webkit-deflate-frame, permessage-deflate; client_max_window_bits", true},
		{"x-webkit-deflate-frame", false},
		{"permessage-deflate; foo", false},
		{"permessage-deflate; foo=\"a,b\", permessage-deflate", true},
		{"permessage-deflate; server_max_window_bits", false},
		{"permessage-deflate; client_max_window_bits=16", false},
		{"permessage-deflate; client_max_window_bits=7", false},
		{"permessage-deflate; client_max_window_bits=015", false},
		{"permessage-deflate; client_no_context_takeover; client_no_context_takeover", false},
		{"permessage-deflate; server_no_context_takeover=1", false},
		{"permessage-deflate; client_max_window_bits=\"10", false},
		{"permessage-deflate;", false},
		{"", false},
		{",,", false},
	};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		char resp[128] = "";
		bool ok = ws_deflate_negotiate(v[i].offer, resp, sizeof resp);
		if (ok != v[i].ok)
			fprintf(stderr, "offer \"%s\": %d\n", v[i].offer, ok);
		CHECK(ok == v[i].ok);
		if (ok)
			CHECK_STR(resp, answer);
	}
	char small[10];
	CHECK(!ws_deflate_negotiate("permessage-deflate", small, sizeof small));
	CHECK(!ws_deflate_negotiate(NULL, small, sizeof small));
}

int main(void)
{
	RUN(accept_key_rfc_example);
	RUN(key_valid);
	RUN(frame_header_sizes);
	RUN(close_frame);
	RUN(close_codes);
	RUN(size_classes);
	RUN(zero_copy);
	RUN(several_frames_one_buffer);
	RUN(fragmented_with_ping);
	RUN(protocol_errors);
	RUN(error_before_payload);
	RUN(close_frames);
	RUN(invalid_text);
	RUN(max_message);
	RUN(big_buffer_trimmed);
	RUN(deflate_roundtrip);
	RUN(deflate_big);
	RUN(deflate_errors);
	RUN(deflate_codec);
	RUN(negotiate);
	return TEST_END();
}
