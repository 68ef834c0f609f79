/*
 * sio_msgpack: packets of socket.io-msgpack-parser. The byte vectors were written by
 * notepack.io 3.0.1 (the parser's MessagePack library) from the objects in the
 * comments; decoding them and encoding back must give the same bytes.
 */
#include "../test.h"
#include "sio/sio_msgpack.h"
#include "util/err.h"

static size_t unhex(const char *h, uint8_t *out)
{
	size_t n = strlen(h) / 2;
	for (size_t i = 0; i < n; i++)
		sscanf(h + 2 * i, "%2hhx", &out[i]);
	return n;
}

static uint8_t buf[8192];

/* decode hex; on success re-encode and compare with the same bytes */
static int roundtrip(const char *hex, sio_packet *p, sio_mp_att *att, int line)
{
	size_t n = unhex(hex, buf);
	int rc = sio_mp_decode(buf, n, 10, p, att);
	if (rc) {
		fprintf(stderr, "%s:%d: decode failed %d\n", __FILE__, line, rc);
		t_cur_failed = 1;
		return rc;
	}
	gw_frame *fr[10];
	for (unsigned i = 0; i < att->n; i++)
		fr[i] = gw_frame_from(att->data[i], att->len[i], true);
	gw_buf b = {0};
	rc = sio_mp_encode(&b, p->type, p->nsp, p->nsp_len, p->id, p->data, fr, att->n);
	if (rc || b.len != n || memcmp(b.data, buf, n) != 0) {
		fprintf(stderr, "%s:%d: re-encoded differs (rc %d, %zu vs %zu bytes)\n", __FILE__, line, rc, b.len, n);
		t_cur_failed = 1;
	}
	gw_buf_free(&b);
	for (unsigned i = 0; i < att->n; i++)
		gw_frame_unref(fr[i]);
	return 0;
}
#define ROUNDTRIP(hex, p, a) roundtrip(hex, p, a, __LINE__)

TEST(notepack_vectors_roundtrip)
{
	sio_packet p;
	sio_mp_att a;
	/* {type: 0, data: {token: 'abc'}, nsp: '/chat'} */
	if (!ROUNDTRIP("83a47479706500a46461746181a5746f6b656ea3616263a36e7370a52f63686174", &p, &a)) {
		CHECK_EQ_INT(p.type, SIO_CONNECT);
		CHECK(p.nsp_len == 5 && memcmp(p.nsp, "/chat", 5) == 0);
		CHECK_STR(p.json, "{\"token\":\"abc\"}");
		CHECK_EQ_INT(p.id, SIO_NO_ID);
		sio_mp_clear(&p, &a);
	}
	/* {type: 0, nsp: '/'} */
	if (!ROUNDTRIP("82a47479706500a36e7370a12f", &p, &a)) {
		CHECK(p.data == NULL && p.json == NULL);
		sio_mp_clear(&p, &a);
	}
	/* {type: 2, data: ['hello', 1, -1, 300, -300, 70000, 2 ** 40, -(2 ** 40), 1.5, true, false, null, 'é',
	 *  {a: [1, {b: 'c'}]}], nsp: '/', id: 7} */
	if (!ROUNDTRIP("84a47479706502a4646174619ea568656c6c6f01ffcd012cd1fed4ce00011170cf0000010000000000d3ffffff000000"
		  "0000cb3ff8000000000000c3c2c0a2c3a981a161920181a162a163a36e7370a12fa2696407", &p, &a)) {
		CHECK_EQ_INT(p.type, SIO_EVENT);
		CHECK_EQ_INT(p.id, 7);
		CHECK_STR(p.json, "[\"hello\",1,-1,300,-300,70000,1099511627776,-1099511627776,1.5,true,false,null,"
				  "\"\xc3\xa9\",{\"a\":[1,{\"b\":\"c\"}]}]");
		sio_mp_clear(&p, &a);
	}
	/* {type: 2, data: ['file', Buffer.from([1, 2, 3]), {inner: Buffer.alloc(300, 7)}], nsp: '/x'} */
	if (!ROUNDTRIP("83a47479706502a46461746193a466696c65c40301020381a5696e6e6572c5012c070707070707070707070707070707"
		  "070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707"
		  "070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707"
		  "070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707"
		  "070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707"
		  "070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707"
		  "070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707a36e73"
		  "70a22f78", &p, &a)) {
		CHECK_EQ_INT(p.type, SIO_BINARY_EVENT);
		CHECK_EQ_INT(p.attachments, 2);
		CHECK(p.json == NULL);
		char *t = cJSON_PrintUnformatted(p.data);
		CHECK_STR(t, "[\"file\",{\"_placeholder\":true,\"num\":0},{\"inner\":{\"_placeholder\":true,\"num\":1}}]");
		free(t);
		CHECK(a.n == 2 && a.len[0] == 3 && a.data[0][2] == 3 && a.len[1] == 300 && a.data[1][299] == 7);
		sio_mp_clear(&p, &a);
	}
	/* {type: 3, data: [{ok: true}], nsp: '/', id: 3} */
	if (!ROUNDTRIP("84a47479706503a4646174619181a26f6bc3a36e7370a12fa2696403", &p, &a)) {
		CHECK_EQ_INT(p.type, SIO_ACK);
		CHECK_EQ_INT(p.id, 3);
		sio_mp_clear(&p, &a);
	}
	/* {type: 1, nsp: '/chat'} */
	if (!ROUNDTRIP("82a47479706501a36e7370a52f63686174", &p, &a)) {
		CHECK_EQ_INT(p.type, SIO_DISCONNECT);
		sio_mp_clear(&p, &a);
	}
	/* {type: 2, data: ['s', 'x'.repeat(40), 'y'.repeat(300)], nsp: '/'}: str8, str16 */
	if (!ROUNDTRIP("83a47479706502a46461746193a173d92878787878787878787878787878787878787878787878787878787878787878"
		  "787878787878787878da012c797979797979797979797979797979797979797979797979797979797979797979797979"
		  "797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979"
		  "797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979"
		  "797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979"
		  "797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979"
		  "797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979797979"
		  "797979797979797979797979797979797979797979797979a36e7370a12f", &p, &a))
		sio_mp_clear(&p, &a);
}

TEST(undefined_and_dates_as_json_stringify_gives_them)
{
	sio_packet p;
	sio_mp_att a;
	/* {type: 2, data: ['u', undefined, {k: undefined, j: 1}], nsp: '/'} */
	size_t n = unhex("83a47479706502a46461746193a175c081a16a01a36e7370a12f", buf);
	CHECK_EQ_INT(sio_mp_decode(buf, n, 10, &p, &a), 0);
	CHECK_STR(p.json, "[\"u\",null,{\"j\":1}]");
	sio_mp_clear(&p, &a);
	/* {type: 2, data: ['d', new Date(Date.UTC(2020, 0, 2, 3, 4, 5, 678)), new Date(0)], nsp: '/'} */
	n = unhex("83a47479706502a46461746193a164d7ffa1a5d6005e0d5da5d6ff00000000a36e7370a12f", buf);
	CHECK_EQ_INT(sio_mp_decode(buf, n, 10, &p, &a), 0);
	CHECK_STR(p.json, "[\"d\",\"2020-01-02T03:04:05.678Z\",\"1970-01-01T00:00:00.000Z\"]");
	sio_mp_clear(&p, &a);
}

TEST(python_socketio_connect_with_nil_data)
{
	/* python-socketio: {"type": 0, "data": None, "nsp": "/"} */
	sio_packet p;
	sio_mp_att a;
	size_t n = unhex("83a474797065" "00" "a464617461" "c0" "a36e7370" "a12f", buf);
	CHECK_EQ_INT(sio_mp_decode(buf, n, 10, &p, &a), 0);
	CHECK(p.type == SIO_CONNECT && p.data == NULL && p.json == NULL);
	sio_mp_clear(&p, &a);
	/* but an EVENT's data is still an array */
	n = unhex("83a474797065" "02" "a464617461" "c0" "a36e7370" "a12f", buf);
	CHECK_EQ_INT(sio_mp_decode(buf, n, 10, &p, &a), -GW_EINVAL);
}

TEST(refused_as_the_parser_and_sio_decode_refuse)
{
	const char *bad[] = {
		"83a47479706502a46461746191a7636f6e6e656374a36e7370a12f",     /* data: ['connect'] */
		"83a47479706505a46461746191a178a36e7370a12f",        /* type: 5 */
		"82a47479706502a46461746191a178",        /* no nsp */
		"83a47479706502a46461746191a178a36e737005",      /* nsp: 5 */
		"84a47479706502a46461746191a178a36e7370a12fa26964ff",       /* id: -1 */
		"84a47479706502a46461746191a178a36e7370a12fa26964cb3ff8000000000000",     /* id: 1.5 */
		"83a47479706502a46461746192a165919191919191919191919191919191919191919191919191919191919191919191"
		  "91919191919190a36e7370a12f",         /* 41 levels */
		"83a47479706502a4646174619ca162c40101c40101c40101c40101c40101c40101c40101c40101c40101c40101c40101"
		  "a36e7370a12f",       /* 11 binaries, max 10 */
		"83a47479706500a46461746181a162c40101a36e7370a12f",  /* binary in a CONNECT */
		"83a47479706502a4646174619101a36e7370a12f", /* data: [1] */
		"83a47479706501a4646174619101a36e7370a12f",    /* DISCONNECT with data */
		"92a1780a",       /* an array, not a map */
		"83a47479706502a46461746191a178a36e7370a12fc0", /* trailing byte */
		"83a47479706502a46461746191a178a36e7370a1",     /* truncated */
		"83a47479706502a46461746192a178c1a36e7370a12f", /* 0xc1 */
		"83a47479706502a46461746192a178d40501a36e7370a12f", /* fixext type 5 */
		"83a47479706502a46461746192a178a2c328a36e7370a12f", /* a string that is not UTF-8 */
		"83a47479706502a46461746192a17881010aa36e7370a12f", /* a map key that is not a string */
		"83a47479706502a46461746191a178a36e7370a178",       /* nsp "x": no leading '/' */
		"",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		sio_packet p;
		sio_mp_att a;
		size_t n = unhex(bad[i], buf);
		int rc = sio_mp_decode(buf, n, 10, &p, &a);
		if (rc != -GW_EINVAL)
			fprintf(stderr, "case %zu: rc %d\n", i, rc);
		CHECK_EQ_INT(rc, -GW_EINVAL);
		CHECK(p.data == NULL && a.n == 0);
	}
}

TEST(gateway_frames_become_one_msgpack_frame)
{
	/* a text packet with one attachment, as the bus builds a binary emit */
	const char text[] = "451-/x,[\"file\",{\"_placeholder\":true,\"num\":0}]";
	gw_frame *f[2] = {gw_frame_from(text, sizeof text - 1, false), gw_frame_from("\x01\x02\x03", 3, true)};
	gw_frame *m = sio_mp_from_frames(f, 2);
	CHECK(m && m->binary);
	/* {type: 2, data: ['file', Buffer.from([1, 2, 3])], nsp: '/x'} by notepack */
	uint8_t want[64];
	size_t n = unhex("83a47479706502a46461746192a466696c65c403010203a36e7370a22f78", want);
	CHECK(m && m->len == n && memcmp(gw_frame_data(m), want, n) == 0);
	gw_frame_unref(m);
	gw_frame_unref(f[0]);
	gw_frame_unref(f[1]);
	gw_frame *t = gw_frame_from("4{", 2, false);
	CHECK(sio_mp_from_frames(&t, 1) == NULL);
	gw_frame_unref(t);
}

int main(void)
{
	RUN(notepack_vectors_roundtrip);
	RUN(undefined_and_dates_as_json_stringify_gives_them);
	RUN(python_socketio_connect_with_nil_data);
	RUN(refused_as_the_parser_and_sio_decode_refuse);
	RUN(gateway_frames_become_one_msgpack_frame);
	return TEST_END();
}
