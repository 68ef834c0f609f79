/* Socket.IO v5 codec: vectors from the socket.io-protocol README plus edge cases. */
#include "../test.h"
#include "sio/sio_codec.h"
#include "util/names.h"
#include "util/err.h"

#include <stdlib.h>

static int dec(const char *s, sio_packet *p) { return sio_decode(s, strlen(s), p); }

/* The payload printed back (unformatted) or "" when absent; static storage. */
static const char *json_of(const sio_packet *p)
{
	static char out[512];
	out[0] = 0;
	if (p->data) {
		char *s = cJSON_PrintUnformatted(p->data);
		snprintf(out, sizeof out, "%s", s);
		free(s);
	}
	return out;
}

static int nsp_is(const sio_packet *p, const char *nsp)
{
	return p->nsp_len == strlen(nsp) && memcmp(p->nsp, nsp, p->nsp_len) == 0;
}

/* Decode, check the fields, encode again and compare with the input. */
static void vector(const char *wire, sio_type type, unsigned att, const char *nsp, int64_t id,
		   const char *json, const char *reencoded)
{
	sio_packet p;
	int rc = dec(wire, &p);
	CHECK_EQ_INT(rc, 0);
	if (rc) {
		fprintf(stderr, "  vector: %s\n", wire);
		return;
	}
	CHECK_EQ_INT(p.type, type);
	CHECK_EQ_INT(p.attachments, att);
	CHECK(nsp_is(&p, nsp));
	CHECK_EQ_INT(p.id, id);
	CHECK_STR(json_of(&p), json);

	char nspz[64];
	snprintf(nspz, sizeof nspz, "%.*s", (int)p.nsp_len, p.nsp);
	gw_buf b = {0};
	CHECK_EQ_INT(sio_encode(&b, type, nspz, id, att, json[0] ? json : NULL, strlen(json)), 0);
	CHECK_STR((char *)b.data, reencoded ? reencoded : wire);
	gw_buf_free(&b);
	sio_packet_clear(&p);
}

TEST(protocol_vectors)
{
	vector("0", SIO_CONNECT, 0, "/", SIO_NO_ID, "", NULL);
	vector("0/admin,{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}", SIO_CONNECT, 0, "/admin", SIO_NO_ID,
	       "{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}", NULL);
	vector("4{\"message\":\"Not authorized\"}", SIO_CONNECT_ERROR, 0, "/", SIO_NO_ID,
	       "{\"message\":\"Not authorized\"}", NULL);
	vector("2[\"foo\"]", SIO_EVENT, 0, "/", SIO_NO_ID, "[\"foo\"]", NULL);
	vector("2/admin,[\"bar\"]", SIO_EVENT, 0, "/admin", SIO_NO_ID, "[\"bar\"]", NULL);
	vector("51-[\"baz\",{\"_placeholder\":true,\"num\":0}]", SIO_BINARY_EVENT, 1, "/",
	       SIO_NO_ID, "[\"baz\",{\"_placeholder\":true,\"num\":0}]", NULL);
	vector("52-/admin,[\"baz\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]",
	       SIO_BINARY_EVENT, 2, "/admin", SIO_NO_ID,
	       "[\"baz\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]", NULL);
	vector("212[\"foo\"]", SIO_EVENT, 0, "/", 12, "[\"foo\"]", NULL);
	vector("3/admin,13[\"bar\"]", SIO_ACK, 0, "/admin", 13, "[\"bar\"]", NULL);
	vector("61-15[\"bar\",{\"_placeholder\":true,\"num\":0}]", SIO_BINARY_ACK, 1, "/", 15,
	       "[\"bar\",{\"_placeholder\":true,\"num\":0}]", NULL);
	vector("1", SIO_DISCONNECT, 0, "/", SIO_NO_ID, "", NULL);
	vector("1/admin,", SIO_DISCONNECT, 0, "/admin", SIO_NO_ID, "", NULL);
	/* sample session */
	vector("0/admin,", SIO_CONNECT, 0, "/admin", SIO_NO_ID, "", NULL);
	vector("0/admin,{\"sid\":\"-G5j-67EZFp-q59rADQM\"}", SIO_CONNECT, 0, "/admin", SIO_NO_ID,
	       "{\"sid\":\"-G5j-67EZFp-q59rADQM\"}", NULL);
	vector("2/admin,1[\"tellme\"]", SIO_EVENT, 0, "/admin", 1, "[\"tellme\"]", NULL);
	vector("61-/admin,1[{\"_placeholder\":true,\"num\":0}]", SIO_BINARY_ACK, 1, "/admin", 1,
	       "[{\"_placeholder\":true,\"num\":0}]", NULL);
	vector("3[]", SIO_ACK, 0, "/", SIO_NO_ID, "[]", NULL);
}

TEST(lenient_but_valid)
{
	/* a namespace alone, without the comma */
	vector("0/chat", SIO_CONNECT, 0, "/chat", SIO_NO_ID, "", "0/chat,");
	vector("1/chat", SIO_DISCONNECT, 0, "/chat", SIO_NO_ID, "", "1/chat,");
	/* "/" written out; leading zeros; whitespace around JSON; largest id */
	vector("2/,[\"a\"]", SIO_EVENT, 0, "/", SIO_NO_ID, "[\"a\"]", "2[\"a\"]");
	vector("5001-[\"a\"]", SIO_BINARY_EVENT, 1, "/", SIO_NO_ID, "[\"a\"]", "51-[\"a\"]");
	vector("2[\"a\"] \n", SIO_EVENT, 0, "/", SIO_NO_ID, "[\"a\"]", "2[\"a\"]");
	vector("2 [\"a\"]", SIO_EVENT, 0, "/", SIO_NO_ID, "[\"a\"]", "2[\"a\"]");
	vector("29007199254740991[\"a\"]", SIO_EVENT, 0, "/", 9007199254740991LL, "[\"a\"]", NULL);
	vector("51000-[\"a\"]", SIO_BINARY_EVENT, 1000, "/", SIO_NO_ID, "[\"a\"]", NULL);
	vector("50-[\"a\"]", SIO_BINARY_EVENT, 0, "/", SIO_NO_ID, "[\"a\"]", NULL);
	vector("4\"boom\"", SIO_CONNECT_ERROR, 0, "/", SIO_NO_ID, "\"boom\"", NULL);
	vector("0/chat,1", SIO_CONNECT, 0, "/chat", 1, "", NULL); /* ids on any type */
	vector("41", SIO_CONNECT_ERROR, 0, "/", 1, "", NULL);
	vector("0{}", SIO_CONNECT, 0, "/", SIO_NO_ID, "{}", NULL);
	vector("2[\"a\",1,{\"x\":[null,true]}]", SIO_EVENT, 0, "/", SIO_NO_ID,
	       "[\"a\",1,{\"x\":[null,true]}]", NULL);
}

TEST(invalid_packets)
{
	static const char *bad[] = {
		"",                                 /* empty */
		"7",                                /* unknown type */
		"x",
		"/",
		"2",                                /* EVENT needs a payload */
		"2/chat",
		"2/chat,",
		"2[]",                              /* ... a non-empty array */
		"2{\"a\":1}",                       /* non-array event payload */
		"2\"a\"",
		"2[1]",                             /* event name not a string */
		"2[null]",
		"2[[\"a\"]]",
		"2[\"connect\"]",                   /* reserved */
		"2[\"disconnect\",1]",
		"2[\"removeListener\"]",
		"3",                                /* ACK needs an array */
		"3{}",
		"31",
		"0[]",                              /* CONNECT payload not an object */
		"0\"x\"",
		"0null",
		"1{}",                              /* DISCONNECT takes no payload */
		"1/chat,[]",
		"4[]",                              /* CONNECT_ERROR: object or string */
		"4true",
		"5[\"a\"]",                         /* attachments: digits then '-' */
		"5-[\"a\"]",
		"5a-[\"a\"]",
		"51[\"a\"]",
		"51",
		"51-",                              /* no payload */
		"51001-[\"a\"]",                    /* over SIO_MAX_ATTACHMENTS */
		"599999999999999999999-[\"a\"]",
		"29007199254740992[\"a\"]",         /* id over 2^53 - 1 */
		"2123456789012345678901234567890[\"a\"]",
		"2[\"a\"]x",                        /* trailing garbage */
		"2[\"a\"][]",
		"2[\"a\"",                          /* truncated */
		"2,[\"a\"]",                        /* comma without namespace */
		"2/chat,x[\"a\"]",
		"2\xEF\xBB\xBF[\"a\"]",             /* byte order mark */
		"2[\"a\"]\x01",
		"2\x01[\"a\"]",
		"2 ",                               /* whitespace only */
		"3[]\x0b",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		sio_packet p;
		int rc = dec(bad[i], &p);
		if (rc != -GW_EINVAL)
			fprintf(stderr, "  accepted: %s\n", bad[i]);
		CHECK_EQ_INT(rc, -GW_EINVAL);
		CHECK(p.data == NULL);
		sio_packet_clear(&p);
	}
	/* not NUL-terminated: the length bounds everything */
	sio_packet p;
	CHECK_EQ_INT(sio_decode("2[\"a\"]garbage", 6, &p), 0);
	CHECK_STR(json_of(&p), "[\"a\"]");
	sio_packet_clear(&p);
	CHECK_EQ_INT(sio_decode("0/chat,{}", 6, &p), 0);
	CHECK(nsp_is(&p, "/chat"));
	sio_packet_clear(&p);
}

TEST(encode_rules)
{
	gw_buf b = {0};
	CHECK_EQ_INT(sio_encode(&b, SIO_EVENT, NULL, SIO_NO_ID, 0, "[\"a\"]", 5), 0);
	CHECK_STR((char *)b.data, "2[\"a\"]");
	gw_buf_reset(&b);
	CHECK_EQ_INT(sio_encode(&b, SIO_BINARY_ACK, "/x", 0, 3, NULL, 0), 0);
	CHECK_STR((char *)b.data, "63-/x,0");
	gw_buf_reset(&b);
	CHECK_EQ_INT(sio_encode(&b, SIO_EVENT, "chat", SIO_NO_ID, 0, NULL, 0), -GW_EINVAL);
	CHECK_EQ_INT(sio_encode(&b, SIO_EVENT, "/a,b", SIO_NO_ID, 0, NULL, 0), -GW_EINVAL);
	CHECK_EQ_INT(sio_encode(&b, SIO_EVENT, "/", -5, 0, NULL, 0), -GW_EINVAL);
	CHECK_EQ_INT(sio_encode(&b, SIO_EVENT, "/", 9007199254740992LL, 0, NULL, 0), -GW_EINVAL);
	CHECK_EQ_INT(sio_encode(&b, (sio_type)7, "/", SIO_NO_ID, 0, NULL, 0), -GW_EINVAL);
	CHECK_EQ_INT(b.len, 0);
	gw_buf_free(&b);
	CHECK(gw_event_reserved("connect"));
	CHECK(gw_event_reserved("newListener"));
	CHECK(!gw_event_reserved("Connect"));
	CHECK(!gw_event_reserved("message"));
}

static cJSON *parse(const char *s) { return cJSON_Parse(s); }
static char *print(const cJSON *j) { return cJSON_PrintUnformatted(j); }

TEST(placeholders_to_binary)
{
	static const uint8_t a0[] = {1, 2, 3, 4}, a1[] = {3, 4};
	const uint8_t *att[] = {a0, a1};
	size_t len[] = {4, 2};
	cJSON *d = parse("[\"baz\",{\"_placeholder\":true,\"num\":0},"
			 "{\"x\":[1,{\"_placeholder\":true,\"num\":1,\"extra\":2}]},"
			 "{\"_placeholder\":false,\"num\":0},{\"_placeholder\":true,\"num\":0}]");
	CHECK_EQ_INT(sio_placeholders_to_binary(d, att, len, 2), 0);
	char *s = print(d);
	CHECK_STR(s, "[\"baz\",{\"$binary\":\"AQIDBA==\"},{\"x\":[1,{\"$binary\":\"AwQ=\"}]},"
		     "{\"_placeholder\":false,\"num\":0},{\"$binary\":\"AQIDBA==\"}]");
	free(s);
	cJSON_Delete(d);

	/* the root itself may be a placeholder */
	d = parse("{\"_placeholder\":true,\"num\":1}");
	CHECK_EQ_INT(sio_placeholders_to_binary(d, att, len, 2), 0);
	s = print(d);
	CHECK_STR(s, "{\"$binary\":\"AwQ=\"}");
	free(s);
	cJSON_Delete(d);
	CHECK_EQ_INT(sio_placeholders_to_binary(NULL, att, len, 2), 0);

	static const char *bad[] = {
		"[{\"_placeholder\":true,\"num\":2}]", "[{\"_placeholder\":true,\"num\":-1}]",
		"[{\"_placeholder\":true,\"num\":0.5}]", "[{\"_placeholder\":true,\"num\":\"0\"}]",
		"[{\"_placeholder\":true}]", "{\"a\":{\"b\":[{\"_placeholder\":true,\"num\":1e9}]}}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		d = parse(bad[i]);
		CHECK_EQ_INT(sio_placeholders_to_binary(d, att, len, 2), -GW_EINVAL);
		cJSON_Delete(d);
	}
	/* no attachments at all: every placeholder is out of range */
	d = parse("[\"a\",{\"_placeholder\":true,\"num\":0}]");
	CHECK_EQ_INT(sio_placeholders_to_binary(d, NULL, NULL, 0), -GW_EINVAL);
	cJSON_Delete(d);
}

TEST(binary_to_placeholders)
{
	cJSON *d = parse("[\"evt\",{\"$binary\":\"AQIDBA==\"},{\"a\":{\"b\":[{\"$binary\":\"\"}]}},"
			 "{\"$binary\":\"AQ==\",\"x\":1},{\"$binary\":5},{\"$Binary\":\"AQ==\"}]");
	uint8_t **att;
	size_t *len;
	int n = sio_binary_to_placeholders(d, &att, &len);
	CHECK_EQ_INT(n, 2);
	if (n == 2) {
		CHECK_EQ_INT(len[0], 4);
		CHECK(memcmp(att[0], "\x01\x02\x03\x04", 4) == 0);
		CHECK_EQ_INT(len[1], 0);
	}
	char *s = print(d);
	CHECK_STR(s, "[\"evt\",{\"_placeholder\":true,\"num\":0},"
		     "{\"a\":{\"b\":[{\"_placeholder\":true,\"num\":1}]}},"
		     "{\"$binary\":\"AQ==\",\"x\":1},{\"$binary\":5},{\"$Binary\":\"AQ==\"}]");
	free(s);

	/* and back */
	CHECK_EQ_INT(sio_placeholders_to_binary(d, (const uint8_t *const *)att, len, 2), 0);
	s = print(d);
	CHECK_STR(s, "[\"evt\",{\"$binary\":\"AQIDBA==\"},{\"a\":{\"b\":[{\"$binary\":\"\"}]}},"
		     "{\"$binary\":\"AQ==\",\"x\":1},{\"$binary\":5},{\"$Binary\":\"AQ==\"}]");
	free(s);
	for (int i = 0; i < n; i++)
		free(att[i]);
	free(att);
	free(len);
	cJSON_Delete(d);

	d = parse("[\"a\",1]");
	CHECK_EQ_INT(sio_binary_to_placeholders(d, &att, &len), 0);
	CHECK(att == NULL && len == NULL);
	cJSON_Delete(d);

	d = parse("[\"a\",{\"$binary\":\"AQ==\"},{\"$binary\":\"A\"}]"); /* 2nd is bad base64 */
	CHECK_EQ_INT(sio_binary_to_placeholders(d, &att, &len), -GW_EINVAL);
	CHECK(att == NULL && len == NULL);
	cJSON_Delete(d);
	d = parse("[{\"$binary\":\"!!!!\"}]");
	CHECK_EQ_INT(sio_binary_to_placeholders(d, &att, &len), -GW_EINVAL);
	cJSON_Delete(d);

	/* many attachments: the arrays grow */
	gw_buf b = {0};
	gw_buf_puts(&b, "[\"e\"");
	for (int i = 0; i < 100; i++)
		gw_buf_puts(&b, ",{\"$binary\":\"AQID\"}");
	gw_buf_puts(&b, "]");
	d = parse((char *)b.data);
	n = sio_binary_to_placeholders(d, &att, &len);
	CHECK_EQ_INT(n, 100);
	for (int i = 0; i < n; i++) {
		CHECK_EQ_INT(len[i], 3);
		free(att[i]);
	}
	free(att);
	free(len);
	cJSON *last = cJSON_GetArrayItem(d, 100);
	CHECK_EQ_INT(cJSON_GetObjectItemCaseSensitive(last, "num")->valueint, 99);
	cJSON_Delete(d);
	gw_buf_free(&b);
}

int main(void)
{
	RUN(protocol_vectors);
	RUN(lenient_but_valid);
	RUN(invalid_packets);
	RUN(encode_rules);
	RUN(placeholders_to_binary);
	RUN(binary_to_placeholders);
	return TEST_END();
}
