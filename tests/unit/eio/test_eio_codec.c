/* Engine.IO v4 codec: vectors from the engine.io-protocol README plus edge cases. */
#include "../test.h"
#include "eio/eio_codec.h"
#include "util/err.h"

#define S(lit) (const uint8_t *)(lit), sizeof(lit) - 1

static int pkt_is(const eio_packet *p, eio_type type, bool binary, const char *data, size_t len)
{
	return p->type == type && p->binary == binary && p->len == len &&
	       (len == 0 || memcmp(p->data, data, len) == 0);
}

TEST(frame_text)
{
	eio_packet p;
	CHECK_EQ_INT(eio_decode_frame(S("4hello"), false, &p), 0);
	CHECK(pkt_is(&p, EIO_MESSAGE, false, "hello", 5));
	CHECK_EQ_INT(eio_decode_frame(S("2probe"), false, &p), 0);
	CHECK(pkt_is(&p, EIO_PING, false, "probe", 5));
	CHECK_EQ_INT(eio_decode_frame(S("3probe"), false, &p), 0);
	CHECK(pkt_is(&p, EIO_PONG, false, "probe", 5));
	CHECK_EQ_INT(eio_decode_frame(S("5"), false, &p), 0);
	CHECK(pkt_is(&p, EIO_UPGRADE, false, "", 0));
	CHECK_EQ_INT(eio_decode_frame(S("6"), false, &p), 0);
	CHECK(pkt_is(&p, EIO_NOOP, false, "", 0));
	CHECK_EQ_INT(eio_decode_frame(S("1"), false, &p), 0);
	CHECK(pkt_is(&p, EIO_CLOSE, false, "", 0));
	CHECK_EQ_INT(eio_decode_frame(S("0{}"), false, &p), 0);
	CHECK(pkt_is(&p, EIO_OPEN, false, "{}", 2));
}

TEST(frame_invalid)
{
	eio_packet p;
	CHECK_EQ_INT(eio_decode_frame(S(""), false, &p), -GW_EINVAL);
	CHECK_EQ_INT(eio_decode_frame(S("7"), false, &p), -GW_EINVAL);
	CHECK_EQ_INT(eio_decode_frame(S("/x"), false, &p), -GW_EINVAL);
	CHECK_EQ_INT(eio_decode_frame(S("bAQID"), false, &p), -GW_EINVAL); /* no base64 on ws */
	CHECK_EQ_INT(eio_decode_frame(S("\x1e"), false, &p), -GW_EINVAL);
}

TEST(frame_binary)
{
	eio_packet p;
	static const uint8_t bin[] = {1, 2, 3, 4};
	CHECK_EQ_INT(eio_decode_frame(bin, 4, true, &p), 0);
	CHECK(pkt_is(&p, EIO_MESSAGE, true, "\x01\x02\x03\x04", 4));
	CHECK_EQ_INT(eio_decode_frame(bin, 0, true, &p), 0); /* empty binary message */
	CHECK(pkt_is(&p, EIO_MESSAGE, true, "", 0));
}

/* Runs the iterator over a copy of lit; returns the number of packets before the
 * final status, which is stored in *status. */
static int iterate(const char *lit, size_t len, eio_packet *pk, int max, int *status)
{
	static uint8_t buf[256];
	memcpy(buf, lit, len);
	eio_payload_iter it;
	eio_payload_iter_init(&it, buf, len);
	int n = 0, rc;
	while ((rc = eio_payload_next(&it, &pk[n < max ? n : max - 1])) == 1)
		n++;
	*status = rc;
	/* after the end or an error, the iterator stays at the end */
	eio_packet dummy;
	CHECK_EQ_INT(eio_payload_next(&it, &dummy), 0);
	return n;
}

#define ITER(lit, pk, st) iterate(lit, sizeof(lit) - 1, pk, 8, st)

TEST(payload_protocol_vectors)
{
	eio_packet pk[8];
	int st;
	CHECK_EQ_INT(ITER("4hello\x1e"
			  "2\x1e"
			  "4world",
			  pk, &st),
		     3);
	CHECK_EQ_INT(st, 0);
	CHECK(pkt_is(&pk[0], EIO_MESSAGE, false, "hello", 5));
	CHECK(pkt_is(&pk[1], EIO_PING, false, "", 0));
	CHECK(pkt_is(&pk[2], EIO_MESSAGE, false, "world", 5));

	CHECK_EQ_INT(ITER("4hello\x1e"
			  "bAQIDBA==",
			  pk, &st),
		     2);
	CHECK_EQ_INT(st, 0);
	CHECK(pkt_is(&pk[0], EIO_MESSAGE, false, "hello", 5));
	CHECK(pkt_is(&pk[1], EIO_MESSAGE, true, "\x01\x02\x03\x04", 4));

	/* socket.io-protocol sample session, request 5 */
	CHECK_EQ_INT(ITER("42[\"hello\"]\x1e"
			  "42[\"world\"]",
			  pk, &st),
		     2);
	CHECK_EQ_INT(st, 0);
	CHECK(pkt_is(&pk[1], EIO_MESSAGE, false, "2[\"world\"]", 10));
}

TEST(payload_edges)
{
	eio_packet pk[8];
	int st;
	CHECK_EQ_INT(ITER("", pk, &st), 0); /* empty body: no packets */
	CHECK_EQ_INT(st, 0);
	CHECK_EQ_INT(ITER("4", pk, &st), 1);
	CHECK_EQ_INT(st, 0);
	CHECK(pkt_is(&pk[0], EIO_MESSAGE, false, "", 0));
	CHECK_EQ_INT(ITER("b", pk, &st), 1); /* empty binary message */
	CHECK_EQ_INT(st, 0);
	CHECK(pkt_is(&pk[0], EIO_MESSAGE, true, "", 0));
	CHECK_EQ_INT(ITER("bAQ", pk, &st), 1); /* unpadded base64 is accepted */
	CHECK(pkt_is(&pk[0], EIO_MESSAGE, true, "\x01", 1));

	/* separators at the start, at the end, doubled, alone */
	CHECK_EQ_INT(ITER("\x1e"
			  "4a",
			  pk, &st),
		     0);
	CHECK_EQ_INT(st, -GW_EINVAL);
	CHECK_EQ_INT(ITER("4a\x1e", pk, &st), 0);
	CHECK_EQ_INT(st, -GW_EINVAL);
	CHECK_EQ_INT(ITER("4a\x1e\x1e"
			  "4b",
			  pk, &st),
		     1);
	CHECK_EQ_INT(st, -GW_EINVAL);
	CHECK_EQ_INT(ITER("\x1e", pk, &st), 0);
	CHECK_EQ_INT(st, -GW_EINVAL);

	/* bad base64, unknown types */
	CHECK_EQ_INT(ITER("b!!!!", pk, &st), 0);
	CHECK_EQ_INT(st, -GW_EINVAL);
	CHECK_EQ_INT(ITER("bA", pk, &st), 0);
	CHECK_EQ_INT(st, -GW_EINVAL);
	CHECK_EQ_INT(ITER("bAQ=ID", pk, &st), 0);
	CHECK_EQ_INT(st, -GW_EINVAL);
	CHECK_EQ_INT(ITER("4a\x1e"
			  "9x",
			  pk, &st),
		     1);
	CHECK_EQ_INT(st, -GW_EINVAL);
	CHECK_EQ_INT(ITER("x", pk, &st), 0);
	CHECK_EQ_INT(st, -GW_EINVAL);
}

TEST(payload_append_roundtrip)
{
	gw_buf b = {0};
	static const uint8_t bin[] = {1, 2, 3, 4};
	CHECK_EQ_INT(eio_payload_append(&b, S("4hello"), false), 0);
	CHECK_EQ_INT(eio_payload_append(&b, bin, 4, true), 0);
	CHECK_EQ_INT(eio_payload_append(&b, S("2"), false), 0);
	CHECK_EQ_INT(eio_payload_append(&b, bin, 0, true), 0);
	CHECK_STR((char *)b.data, "4hello\x1e"
				  "bAQIDBA==\x1e"
				  "2\x1e"
				  "b");
	eio_payload_iter it;
	eio_packet p;
	eio_payload_iter_init(&it, b.data, b.len);
	CHECK_EQ_INT(eio_payload_next(&it, &p), 1);
	CHECK(pkt_is(&p, EIO_MESSAGE, false, "hello", 5));
	CHECK_EQ_INT(eio_payload_next(&it, &p), 1);
	CHECK(pkt_is(&p, EIO_MESSAGE, true, "\x01\x02\x03\x04", 4));
	CHECK_EQ_INT(eio_payload_next(&it, &p), 1);
	CHECK(pkt_is(&p, EIO_PING, false, "", 0));
	CHECK_EQ_INT(eio_payload_next(&it, &p), 1);
	CHECK(pkt_is(&p, EIO_MESSAGE, true, "", 0));
	CHECK_EQ_INT(eio_payload_next(&it, &p), 0);
	gw_buf_free(&b);
}

TEST(open_packet)
{
	gw_buf b = {0};
	CHECK_EQ_INT(eio_encode_open(&b, "lv_VI97HAXpY6yYWAAAC", true, 25000, 20000, 1000000), 0);
	CHECK_STR((char *)b.data, "0{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[\"websocket\"],"
				  "\"pingInterval\":25000,\"pingTimeout\":20000,\"maxPayload\":1000000}");
	gw_buf_reset(&b);
	CHECK_EQ_INT(eio_encode_open(&b, "a\"b\\c\n", false, 1, 2, 3), 0);
	CHECK_STR((char *)b.data, "0{\"sid\":\"a\\\"b\\\\c\\n\",\"upgrades\":[],"
				  "\"pingInterval\":1,\"pingTimeout\":2,\"maxPayload\":3}");
	gw_buf_free(&b);
}

TEST(error_bodies)
{
	static const char *msg[] = {"Transport unknown", "Session ID unknown",
				    "Bad handshake method", "Bad request", "Forbidden",
				    "Unsupported protocol version"};
	for (int code = 0; code <= 5; code++) {
		char body[64], want[64];
		CHECK_STR(eio_error_message(code), msg[code]);
		CHECK_EQ_INT(eio_error_status(code), code == EIO_ERR_FORBIDDEN ? 403 : 400);
		snprintf(want, sizeof want, "{\"code\":%d,\"message\":\"%s\"}", code, msg[code]);
		CHECK_EQ_INT(eio_error_body(code, body, sizeof body), strlen(want));
		CHECK_STR(body, want);
	}
	char body[64];
	CHECK_EQ_INT(eio_error_body(5, body, 10), -GW_EINVAL);
	CHECK_STR(eio_error_message(42), "Bad request");
	CHECK(eio_error_body(-1, body, sizeof body) > 0);
	CHECK_STR(body, "{\"code\":3,\"message\":\"Bad request\"}");
}

/*
 * Engine.IO v3 payloads: both vectors printed by engine.io 6's own parser-v3 (npm,
 * build/parser-v3) for [message "hello", message "€😀", ping "probe", message
 * <01 02 03>, close], with encodePayload(packets, supportsBinary = true / false).
 */
static const char V3_TEXT[] = "6:4hello4:4\xe2\x82\xac\xf0\x9f\x98\x80" "6:2probe6:b4AQID1:1";
static const uint8_t V3_BIN[] = {0x00, 0x06, 0xff, '4', 'h', 'e', 'l', 'l', 'o',
				 0x00, 0x08, 0xff, '4', 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80,
				 0x00, 0x06, 0xff, '2', 'p', 'r', 'o', 'b', 'e',
				 0x01, 0x04, 0xff, 0x04, 0x01, 0x02, 0x03,
				 0x00, 0x01, 0xff, '1'};

/* the vectors' packets, as v4 websocket payloads */
static const struct {
	const char *ws;
	size_t len;
	bool binary;
} V3_PKTS[] = {{"4hello", 6, false}, {"4\xe2\x82\xac\xf0\x9f\x98\x80", 8, false}, {"2probe", 6, false},
	       {"\x01\x02\x03", 3, true}, {"1", 1, false}};

static void v3_decode(const uint8_t *in, size_t n, bool binary_form)
{
	uint8_t buf[128];
	memcpy(buf, in, n);
	eio3_payload_iter it;
	eio3_payload_iter_init(&it, buf, n, binary_form);
	eio_packet p;
	CHECK_EQ_INT(eio3_payload_next(&it, &p), 1);
	CHECK(pkt_is(&p, EIO_MESSAGE, false, "hello", 5));
	CHECK_EQ_INT(eio3_payload_next(&it, &p), 1);
	CHECK(pkt_is(&p, EIO_MESSAGE, false, "\xe2\x82\xac\xf0\x9f\x98\x80", 7));
	CHECK_EQ_INT(eio3_payload_next(&it, &p), 1);
	CHECK(pkt_is(&p, EIO_PING, false, "probe", 5));
	CHECK_EQ_INT(eio3_payload_next(&it, &p), 1);
	CHECK(pkt_is(&p, EIO_MESSAGE, true, "\x01\x02\x03", 3));
	CHECK_EQ_INT(eio3_payload_next(&it, &p), 1);
	CHECK(pkt_is(&p, EIO_CLOSE, false, "", 0));
	CHECK_EQ_INT(eio3_payload_next(&it, &p), 0);
}

TEST(v3_payloads_parser_vectors)
{
	v3_decode(S(V3_TEXT), false);
	v3_decode(V3_BIN, sizeof V3_BIN, true);
	for (int form = 0; form < 2; form++) {
		gw_buf b = {0};
		for (size_t i = 0; i < sizeof V3_PKTS / sizeof V3_PKTS[0]; i++)
			CHECK_EQ_INT(eio3_payload_append(&b, (const uint8_t *)V3_PKTS[i].ws, V3_PKTS[i].len,
							 V3_PKTS[i].binary, form == 1), 0);
		if (form == 0)
			CHECK(b.len == sizeof V3_TEXT - 1 && memcmp(b.data, V3_TEXT, b.len) == 0);
		else
			CHECK(b.len == sizeof V3_BIN && memcmp(b.data, V3_BIN, b.len) == 0);
		gw_buf_free(&b);
	}
}

static int v3_first(const void *in, size_t n, bool binary_form, eio_packet *p)
{
	static uint8_t buf[64];
	memcpy(buf, in, n);
	eio3_payload_iter it;
	eio3_payload_iter_init(&it, buf, n, binary_form);
	int rc = eio3_payload_next(&it, p);
	if (rc == 1) /* and nothing after it */
		rc = eio3_payload_next(&it, &(eio_packet){0}) == 0 ? 1 : 2;
	return rc;
}

TEST(v3_payload_edges)
{
	eio_packet p;
	/* as parser-v3: a zero-length packet is skipped */
	CHECK_EQ_INT(v3_first(S("0:6:4hello"), false, &p), 1);
	CHECK(pkt_is(&p, EIO_MESSAGE, false, "hello", 5));
	CHECK_EQ_INT(v3_first(S(""), false, &p), 0);
	/* lengths count UTF-16 units: "4😀" is 3, and 2 ends inside the surrogate pair */
	CHECK_EQ_INT(v3_first(S("3:4\xf0\x9f\x98\x80"), false, &p), 1);
	CHECK_EQ_INT(v3_first(S("2:4\xf0\x9f\x98\x80"), false, &p), -GW_EINVAL);
	CHECK_EQ_INT(v3_first(S("7:4hello"), false, &p), -GW_EINVAL);   /* longer than the body */
	CHECK_EQ_INT(v3_first(S(":4hello"), false, &p), -GW_EINVAL);    /* no length */
	CHECK_EQ_INT(v3_first(S("6x4hello"), false, &p), -GW_EINVAL);   /* no colon */
	CHECK_EQ_INT(v3_first(S("6"), false, &p), -GW_EINVAL);
	CHECK_EQ_INT(v3_first(S("99999999999:4"), false, &p), -GW_EINVAL); /* 11 digits */
	CHECK_EQ_INT(v3_first(S("2:7x"), false, &p), -GW_EINVAL);       /* unknown type */
	CHECK_EQ_INT(v3_first(S("5:b4A!ID"), false, &p), -GW_EINVAL);   /* bad base64 */
	CHECK_EQ_INT(v3_first(S("6:bAQIDx"), false, &p), -GW_EINVAL);   /* b not followed by 4 */
	CHECK_EQ_INT(v3_first(S("2:4\xc3"), false, &p), -GW_EINVAL);    /* cut UTF-8 */
	/* the binary form */
	CHECK_EQ_INT(v3_first("\x01\x01\xff\x04", 4, true, &p), 1);    /* an empty binary message */
	CHECK(pkt_is(&p, EIO_MESSAGE, true, "", 0));
	CHECK_EQ_INT(v3_first("\x02\x01\xff" "4", 4, true, &p), -GW_EINVAL); /* kind byte 2 */
	CHECK_EQ_INT(v3_first("\x00\x0a\xff" "4", 4, true, &p), -GW_EINVAL); /* digit 10 */
	CHECK_EQ_INT(v3_first("\x00\xff" "4", 3, true, &p), -GW_EINVAL);     /* no digits */
	CHECK_EQ_INT(v3_first("\x00\x02\xff" "4", 4, true, &p), -GW_EINVAL); /* past the end */
	CHECK_EQ_INT(v3_first("\x01\x01\xff\x03", 4, true, &p), -GW_EINVAL); /* not type 4 */
	CHECK_EQ_INT(v3_first("\x00\x01", 2, true, &p), -GW_EINVAL);       /* no 0xff */
	/* frames */
	uint8_t fr[16];
	memcpy(fr, "\x04\x01", 2);
	CHECK_EQ_INT(eio3_decode_frame(fr, 2, true, &p), 0);
	CHECK(pkt_is(&p, EIO_MESSAGE, true, "\x01", 1));
	CHECK_EQ_INT(eio3_decode_frame(fr + 1, 1, true, &p), -GW_EINVAL);
	memcpy(fr, "4hi", 3);
	CHECK_EQ_INT(eio3_decode_frame(fr, 3, false, &p), 0);
	CHECK(pkt_is(&p, EIO_MESSAGE, false, "hi", 2));
	memcpy(fr, "b4AQID", 6); /* parser-v3: encodePacket({type:"message",data:Buffer [1,2,3]}, false) */
	CHECK_EQ_INT(eio3_decode_frame(fr, 6, false, &p), 0);
	CHECK(pkt_is(&p, EIO_MESSAGE, true, "\x01\x02\x03", 3));
	memcpy(fr, "b3AQID", 6);
	CHECK_EQ_INT(eio3_decode_frame(fr, 6, false, &p), -GW_EINVAL);
	memcpy(fr, "b4A!", 4);
	CHECK_EQ_INT(eio3_decode_frame(fr, 4, false, &p), -GW_EINVAL);
	CHECK_EQ_INT((int)eio3_js_length(S("a\xe2\x82\xac\xf0\x9f\x98\x80")), 4);
	CHECK_EQ_INT((int)eio3_js_length(S("\xff")), -1);
	gw_buf b = {0};
	CHECK_EQ_INT(eio3_payload_append(&b, S("4\xff"), false, false), -GW_EINVAL);
	gw_buf_free(&b);
}

int main(void)
{
	RUN(frame_text);
	RUN(frame_invalid);
	RUN(frame_binary);
	RUN(payload_protocol_vectors);
	RUN(payload_edges);
	RUN(payload_append_roundtrip);
	RUN(open_packet);
	RUN(error_bodies);
	RUN(v3_payloads_parser_vectors);
	RUN(v3_payload_edges);
	return TEST_END();
}
