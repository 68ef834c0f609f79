/* Bus envelopes (DESIGN §1.2): parsing, error strings, final frames, builders. */
#include "../test.h"
#include "bus/envelope.h"
#include "env_same.h"
#include "sio/sio_codec.h"
#include "util/err.h"

#include <stdlib.h>

static char err[256];

static env_in *parse_ok(const char *json)
{
	env_in *e = NULL;
	int rc = env_parse(json, strlen(json), 0, &e, err, sizeof err);
	if (rc)
		fprintf(stderr, "  env_parse(%s) = %d: %s\n", json, rc, err);
	CHECK_EQ_INT(rc, 0);
	return e;
}

/* Expects a failure with exactly this message. */
static void parse_bad(const char *json, int want_rc, const char *want_err)
{
	env_in *e = (env_in *)1;
	int rc = env_parse(json, strlen(json), 100, &e, err, sizeof err);
	CHECK_EQ_INT(rc, want_rc);
	CHECK(e == NULL);
	CHECK_STR(err, want_err);
}

static const char *frame_text(gw_frame *f)
{
	CHECK(!f->binary);
	return (const char *)gw_frame_data(f);
}

TEST(emit_plain)
{
	env_in *e = parse_ok("{\"type\":\"emit\",\"nsp\":\"/chat\",\"rooms\":[\"lobby\",\"r2\"],"
			     "\"except\":[\"muted\"],\"event\":\"message\",\"data\":[1,\"a\",{\"b\":null}],"
			     "\"volatile\":true}");
	if (!e)
		return;
	CHECK_EQ_INT(e->type, ENV_EMIT);
	CHECK_STR(e->target.nsp, "/chat");
	CHECK_EQ_INT(e->target.n_rooms, 2);
	CHECK_STR(e->target.rooms[0], "lobby");
	CHECK_STR(e->target.rooms[1], "r2");
	CHECK_EQ_INT(e->target.n_except, 1);
	CHECK_STR(e->target.except[0], "muted");
	CHECK_STR(e->event, "message");
	CHECK(e->volatile_);
	CHECK(!e->has_ack);
	CHECK_STR(e->body.json, "[\"message\",1,\"a\",{\"b\":null}]");
	CHECK_EQ_INT(e->body.json_len, strlen(e->body.json));
	CHECK_EQ_INT(e->body.n_att, 0);
	CHECK_EQ_INT(e->n_frames, 1);
	CHECK_STR(frame_text(e->frames[0]), "42/chat,[\"message\",1,\"a\",{\"b\":null}]");
	CHECK_EQ_INT(e->frames[0]->len, strlen(frame_text(e->frames[0])));
	env_in_free(e);
}

/* data is spliced as sent: numbers are not printed again from doubles */
TEST(emit_data_verbatim)
{
	env_in *e = parse_ok("{\"d\\u0061\":1, \"type\":\"emit\",\"event\":\"n\",\"data\": [ 1764763262123456,"
			     " 9007199254740993, 1.5e3, \"x\\\"]\" ] ,\"rooms\":[]}");
	if (!e)
		return;
	/* an escaped key before "data": the tree is printed instead (valid, but doubles) */
	CHECK_STR(e->body.json, "[\"n\",1764763262123456,9.00719925474099e+15,1500,\"x\\\"]\"]");
	env_in_free(e);
	e = parse_ok("{\"type\":\"emit\",\"event\":\"n\",\"data\": [ 1764763262123456, 9007199254740993,"
		     " 1.5e3, \"x\\\"]\", {\"a\":[1,{}]} ] ,\"rooms\":[]}");
	if (!e)
		return;
	CHECK_STR(e->body.json, "[\"n\",1764763262123456, 9007199254740993, 1.5e3, \"x\\\"]\", {\"a\":[1,{}]} ]");
	CHECK_STR(frame_text(e->frames[0]), "42[\"n\",1764763262123456, 9007199254740993, 1.5e3, \"x\\\"]\", {\"a\":[1,{}]} ]");
	env_in_free(e);
	e = parse_ok("{\"type\":\"ack\",\"id\":\"7\",\"data\":[123456789012345678]}");
	if (!e)
		return;
	CHECK_STR(e->body.json, "[123456789012345678]");
	env_in_free(e);
	/* not UTF-8: refused */
	parse_bad("{\"type\":\"emit\",\"event\":\"n\",\"data\":[\"\xff\"]}", -GW_EINVAL,
		  "envelope is not valid UTF-8");
}

TEST(emit_defaults)
{
	env_in *e = parse_ok(" {\"type\":\"emit\",\"event\":\"x\",\"nsp\":null,\"ack\":null} \n");
	if (!e)
		return;
	CHECK_STR(e->target.nsp, "/");
	CHECK_EQ_INT(e->target.n_rooms, 0);
	CHECK_EQ_INT(e->target.n_except, 0);
	CHECK(!e->volatile_);
	CHECK(!e->has_ack);
	CHECK_STR(e->body.json, "[\"x\"]");
	CHECK_EQ_INT(e->n_frames, 1);
	CHECK_STR(frame_text(e->frames[0]), "42[\"x\"]");
	env_in_free(e);

	e = parse_ok("{\"type\":\"emit\",\"event\":\"x\",\"rooms\":\"solo\",\"except\":[],\"data\":[]}");
	if (!e)
		return;
	CHECK_EQ_INT(e->target.n_rooms, 1);
	CHECK_STR(e->target.rooms[0], "solo");
	CHECK_EQ_INT(e->target.n_except, 0);
	env_in_free(e);
}

TEST(emit_binary)
{
	env_in *e = parse_ok("{\"type\":\"emit\",\"nsp\":\"/b\",\"event\":\"file\",\"data\":"
			     "[{\"$binary\":\"AQIDBA==\"},{\"k\":[{\"$binary\":\"AQ==\"}]},{\"$binary\":\"\"}]}");
	if (!e)
		return;
	CHECK_EQ_INT(e->body.n_att, 3);
	CHECK_STR(e->body.json, "[\"file\",{\"_placeholder\":true,\"num\":0},"
				"{\"k\":[{\"_placeholder\":true,\"num\":1}]},{\"_placeholder\":true,\"num\":2}]");
	CHECK_EQ_INT(e->n_frames, 4);
	CHECK_STR(frame_text(e->frames[0]), "453-/b,[\"file\",{\"_placeholder\":true,\"num\":0},"
					    "{\"k\":[{\"_placeholder\":true,\"num\":1}]},"
					    "{\"_placeholder\":true,\"num\":2}]");
	for (size_t i = 0; i < 3; i++) {
		CHECK(e->frames[1 + i] == e->body.att[i]); /* shared, refcounted */
		CHECK(e->frames[1 + i]->binary);
		CHECK_EQ_INT(atomic_load(&e->frames[1 + i]->refs), 2);
	}
	CHECK_EQ_INT(e->frames[1]->len, 4);
	CHECK(memcmp(gw_frame_data(e->frames[1]), "\x01\x02\x03\x04", 4) == 0);
	CHECK_EQ_INT(e->frames[2]->len, 1);
	CHECK_EQ_INT(e->frames[3]->len, 0);
	/* the first frame decodes back as the same packet */
	sio_packet p;
	CHECK_EQ_INT(sio_decode(frame_text(e->frames[0]) + 1, e->frames[0]->len - 1, &p), 0);
	CHECK_EQ_INT(p.type, SIO_BINARY_EVENT);
	CHECK_EQ_INT(p.attachments, 3);
	sio_packet_clear(&p);
	env_in_free(e);
}

TEST(emit_ack)
{
	env_in *e = parse_ok("{\"type\":\"emit\",\"event\":\"q\",\"data\":[1],"
			     "\"ack\":{\"reply_to\":\"billing.replies\",\"id\":\"q7\"}}");
	if (!e)
		return;
	CHECK(e->has_ack);
	CHECK_STR(e->reply_to, "billing.replies");
	CHECK_STR(e->id, "q7");
	CHECK_EQ_INT(e->timeout_ms, 5000);
	CHECK(e->frames == NULL);
	CHECK_EQ_INT(e->n_frames, 0);
	CHECK_STR(e->body.json, "[\"q\",1]");
	env_in_free(e);

	e = parse_ok("{\"type\":\"emit\",\"event\":\"q\","
		     "\"ack\":{\"reply_to\":\"r\",\"id\":42,\"timeout_ms\":250}}");
	if (!e)
		return;
	CHECK_STR(e->id, "42");
	CHECK_EQ_INT(e->timeout_ms, 250);
	env_in_free(e);
}

TEST(emit_errors)
{
	parse_bad("not json", -GW_EINVAL, "invalid JSON at byte 0");
	parse_bad("", -GW_EINVAL, "invalid JSON at byte 0");
	parse_bad("[]", -GW_EINVAL, "envelope must be a JSON object");
	parse_bad("{} x", -GW_EINVAL, "trailing data after the JSON value at byte 3");
	parse_bad("{}{}", -GW_EINVAL, "trailing data after the JSON value at byte 2");
	parse_bad("{}", -GW_EINVAL, "missing \"type\"");
	parse_bad("{\"Type\":\"emit\"}", -GW_EINVAL, "missing \"type\"");
	parse_bad("{\"type\":1}", -GW_EINVAL, "\"type\" must be a string");
	parse_bad("{\"type\":\"Emit\"}", -GW_EINVAL, "unknown type \"Emit\"");
	parse_bad("{\"type\":\"emit\"}", -GW_EINVAL, "emit: missing \"event\"");
	parse_bad("{\"type\":\"emit\",\"event\":5}", -GW_EINVAL, "emit: \"event\" must be a string");
	parse_bad("{\"type\":\"emit\",\"event\":\"disconnect\"}", -GW_EINVAL,
		  "emit: \"event\" \"disconnect\" is a reserved name");
	parse_bad("{\"type\":\"emit\",\"event\":\"e\",\"data\":{}}", -GW_EINVAL,
		  "emit: \"data\" must be an array");
	parse_bad("{\"type\":\"emit\",\"event\":\"e\",\"data\":\"x\"}", -GW_EINVAL,
		  "emit: \"data\" must be an array");
	parse_bad("{\"type\":\"emit\",\"event\":\"e\",\"rooms\":5}", -GW_EINVAL,
		  "emit: \"rooms\" must be a string or an array of strings");
	parse_bad("{\"type\":\"emit\",\"event\":\"e\",\"rooms\":[\"a\",1]}", -GW_EINVAL,
		  "emit: \"rooms\" must be a string or an array of strings");
	parse_bad("{\"type\":\"emit\",\"event\":\"e\",\"except\":{}}", -GW_EINVAL,
		  "emit: \"except\" must be a string or an array of strings");
	parse_bad("{\"type\":\"emit\",\"event\":\"e\",\"nsp\":\"chat\"}", -GW_EINVAL,
		  "emit: \"nsp\" must be a string starting with '/'");
	parse_bad("{\"type\":\"emit\",\"event\":\"e\",\"nsp\":7}", -GW_EINVAL,
		  "emit: \"nsp\" must be a string starting with '/'");
	parse_bad("{\"type\":\"emit\",\"event\":\"e\",\"nsp\":\"/a,b\"}", -GW_EINVAL,
		  "emit: \"nsp\" must not contain ','");
	parse_bad("{\"type\":\"emit\",\"event\":\"e\",\"volatile\":\"yes\"}", -GW_EINVAL,
		  "emit: \"volatile\" must be a boolean");
	parse_bad("{\"type\":\"emit\",\"event\":\"e\",\"ack\":\"x\"}", -GW_EINVAL,
		  "emit: \"ack\" must be an object");
	parse_bad("{\"type\":\"emit\",\"event\":\"e\",\"ack\":{}}", -GW_EINVAL,
		  "emit: ack: missing \"reply_to\"");
	parse_bad("{\"type\":\"emit\",\"event\":\"e\",\"ack\":{\"reply_to\":\"\"}}", -GW_EINVAL,
		  "emit: ack: \"reply_to\" must not be empty");
	parse_bad("{\"type\":\"emit\",\"event\":\"e\",\"ack\":{\"reply_to\":\"r\"}}", -GW_EINVAL,
		  "emit: ack: missing \"id\"");
	parse_bad("{\"type\":\"emit\",\"event\":\"e\",\"ack\":{\"reply_to\":\"r\",\"id\":1.5}}",
		  -GW_EINVAL, "emit: ack: \"id\" must be a string or an integer");
	parse_bad("{\"type\":\"emit\",\"event\":\"e\",\"ack\":{\"reply_to\":\"r\",\"id\":true}}",
		  -GW_EINVAL, "emit: ack: \"id\" must be a string or an integer");
	parse_bad("{\"type\":\"emit\",\"event\":\"e\",\"ack\":{\"reply_to\":\"r\",\"id\":\"q\","
		  "\"timeout_ms\":0}}",
		  -GW_EINVAL, "emit: ack: \"timeout_ms\" must be an integer from 1 to 2147483647");
	parse_bad("{\"type\":\"emit\",\"event\":\"e\",\"ack\":{\"reply_to\":\"r\",\"id\":\"q\","
		  "\"timeout_ms\":\"5\"}}",
		  -GW_EINVAL, "emit: ack: \"timeout_ms\" must be an integer from 1 to 2147483647");
	parse_bad("{\"type\":\"emit\",\"event\":\"e\",\"data\":[{\"$binary\":\"!!\"}]}", -GW_EINVAL,
		  "emit: \"data\": invalid base64 in a \"$binary\" value");
	/* max_payload is 100 in parse_bad */
	parse_bad("{\"type\":\"emit\",\"event\":\"e\",\"data\":[\"0123456789012345678901234567890"
		  "12345678901234567890123456789012345678901234567890123456789abc\"]}",
		  -GW_ETOOBIG, "emit: payload of 101 bytes exceeds the limit of 100");
	parse_bad("{\"type\":\"emit\",\"event\":\"e\",\"data\":[{\"$binary\":\""
		  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}]}",
		  -GW_ETOOBIG, "emit: payload of 137 bytes exceeds the limit of 100");

	/* no error buffer is fine */
	env_in *e;
	CHECK_EQ_INT(env_parse("{}", 2, 0, &e, NULL, 0), -GW_EINVAL);
	CHECK_EQ_INT(env_parse("{}", 2, 0, &e, err, 1), -GW_EINVAL);
	CHECK_STR(err, "");
}

TEST(join_leave_disconnect_fetch)
{
	env_in *e = parse_ok("{\"type\":\"join\",\"nsp\":\"/chat\",\"rooms\":[\"a\"],"
			     "\"join\":[\"r1\",\"r2\"]}");
	if (e) {
		CHECK_EQ_INT(e->type, ENV_JOIN);
		CHECK_STR(e->target.nsp, "/chat");
		CHECK_EQ_INT(e->target.n_rooms, 1);
		CHECK_EQ_INT(e->n_change, 2);
		CHECK_STR(e->change[0], "r1");
		CHECK_STR(e->change[1], "r2");
		env_in_free(e);
	}
	e = parse_ok("{\"type\":\"leave\",\"leave\":\"r1\",\"except\":\"x\"}");
	if (e) {
		CHECK_EQ_INT(e->type, ENV_LEAVE);
		CHECK_STR(e->target.nsp, "/");
		CHECK_EQ_INT(e->n_change, 1);
		CHECK_STR(e->change[0], "r1");
		CHECK_STR(e->target.except[0], "x");
		env_in_free(e);
	}
	parse_bad("{\"type\":\"join\"}", -GW_EINVAL, "join: missing \"join\"");
	parse_bad("{\"type\":\"leave\",\"leave\":[1]}", -GW_EINVAL,
		  "leave: \"leave\" must be a string or an array of strings");

	e = parse_ok("{\"type\":\"disconnect\",\"rooms\":[\"a\"],\"close\":true}");
	if (e) {
		CHECK_EQ_INT(e->type, ENV_DISCONNECT);
		CHECK(e->close);
		env_in_free(e);
	}
	e = parse_ok("{\"type\":\"disconnect\"}");
	if (e) {
		CHECK(!e->close);
		env_in_free(e);
	}
	parse_bad("{\"type\":\"disconnect\",\"close\":1}", -GW_EINVAL,
		  "disconnect: \"close\" must be a boolean");

	e = parse_ok("{\"type\":\"fetch\",\"nsp\":\"/chat\",\"reply_to\":\"svc.replies\",\"id\":\"f1\"}");
	if (e) {
		CHECK_EQ_INT(e->type, ENV_FETCH);
		CHECK_STR(e->reply_to, "svc.replies");
		CHECK_STR(e->id, "f1");
		env_in_free(e);
	}
	parse_bad("{\"type\":\"fetch\",\"id\":\"f1\"}", -GW_EINVAL, "fetch: missing \"reply_to\"");
	parse_bad("{\"type\":\"fetch\",\"reply_to\":\"r\"}", -GW_EINVAL, "fetch: missing \"id\"");
	parse_bad("{\"type\":\"fetch\",\"reply_to\":\"r\",\"id\":\"\"}", -GW_EINVAL,
		  "fetch: \"id\" must not be empty");
}

TEST(ack)
{
	env_in *e = parse_ok("{\"type\":\"ack\",\"id\":\"a1\",\"data\":[1,{\"$binary\":\"AQ==\"}]}");
	if (e) {
		CHECK_EQ_INT(e->type, ENV_ACK);
		CHECK_STR(e->id, "a1");
		CHECK_STR(e->body.json, "[1,{\"_placeholder\":true,\"num\":0}]");
		CHECK_EQ_INT(e->body.n_att, 1);
		CHECK_EQ_INT(e->body.att[0]->len, 1);
		CHECK(e->frames == NULL);
		env_in_free(e);
	}
	e = parse_ok("{\"type\":\"ack\",\"id\":7}");
	if (e) {
		CHECK_STR(e->id, "7");
		CHECK_STR(e->body.json, "[]");
		env_in_free(e);
	}
	e = parse_ok("{\"type\":\"ack\",\"id\":-0}");
	if (e) {
		CHECK_STR(e->id, "0");
		env_in_free(e);
	}
	e = parse_ok("{\"type\":\"ack\",\"id\":9007199254740991}"); /* 2^53 - 1: exact */
	if (e) {
		CHECK_STR(e->id, "9007199254740991");
		env_in_free(e);
	}
	/* 2^53 + 1 reads as 2^53 already: refused rather than silently changed */
	parse_bad("{\"type\":\"ack\",\"id\":9007199254740993}", -GW_EINVAL,
		  "ack: \"id\" must be a string or an integer");
	/* beyond 2^53 a number cannot be trusted: ids should be strings */
	parse_bad("{\"type\":\"ack\",\"id\":12345678901234567890}", -GW_EINVAL,
		  "ack: \"id\" must be a string or an integer");
	parse_bad("{\"type\":\"ack\"}", -GW_EINVAL, "ack: missing \"id\"");
	parse_bad("{\"type\":\"ack\",\"id\":\"a\",\"data\":{}}", -GW_EINVAL,
		  "ack: \"data\" must be an array");
}

TEST(connect_result)
{
	env_in *e = parse_ok("{\"type\":\"connect_result\",\"id\":\"c1\",\"ok\":true,"
			     "\"data\":{\"user\":\"u\"}}");
	if (e) {
		CHECK_EQ_INT(e->type, ENV_CONNECT_RESULT);
		CHECK(e->ok);
		CHECK_STR(e->data_json, "{\"user\":\"u\"}");
		CHECK(e->error_json == NULL);
		env_in_free(e);
	}
	e = parse_ok("{\"type\":\"connect_result\",\"id\":\"c1\",\"ok\":true,\"data\":[1]}");
	if (e) {
		CHECK_STR(e->data_json, "[1]");
		env_in_free(e);
	}
	e = parse_ok("{\"type\":\"connect_result\",\"id\":\"c1\",\"ok\":true}");
	if (e) {
		CHECK(e->data_json == NULL);
		env_in_free(e);
	}
	e = parse_ok("{\"type\":\"connect_result\",\"id\":\"c1\",\"ok\":false,"
		     "\"error\":{\"message\":\"nope\",\"data\":{\"code\":1}}}");
	if (e) {
		CHECK(!e->ok);
		CHECK_STR(e->error_json, "{\"message\":\"nope\",\"data\":{\"code\":1}}");
		env_in_free(e);
	}
	e = parse_ok("{\"type\":\"connect_result\",\"id\":\"c1\",\"ok\":false}");
	if (e) {
		CHECK_STR(e->error_json, "{\"message\":\"Not authorized\"}");
		env_in_free(e);
	}
	e = parse_ok("{\"type\":\"connect_result\",\"id\":\"c1\",\"ok\":false,\"error\":\"banned\"}");
	if (e) {
		CHECK_STR(e->error_json, "{\"message\":\"banned\"}");
		env_in_free(e);
	}
	e = parse_ok("{\"type\":\"connect_result\",\"id\":\"c1\",\"ok\":false,\"error\":{\"data\":5}}");
	if (e) {
		CHECK_STR(e->error_json, "{\"message\":\"Not authorized\",\"data\":5}");
		env_in_free(e);
	}
	parse_bad("{\"type\":\"connect_result\",\"id\":\"c1\"}", -GW_EINVAL,
		  "connect_result: missing \"ok\"");
	parse_bad("{\"type\":\"connect_result\",\"ok\":true}", -GW_EINVAL,
		  "connect_result: missing \"id\"");
	parse_bad("{\"type\":\"connect_result\",\"id\":\"c\",\"ok\":\"true\"}", -GW_EINVAL,
		  "connect_result: \"ok\" must be a boolean");
	parse_bad("{\"type\":\"connect_result\",\"id\":\"c\",\"ok\":false,\"error\":5}", -GW_EINVAL,
		  "connect_result: \"error\" must be an object or a string");
	parse_bad("{\"type\":\"connect_result\",\"id\":\"c\",\"ok\":false,\"error\":{\"message\":1}}",
		  -GW_EINVAL, "connect_result: \"error.message\" must be a string");
}

TEST(build_outbound)
{
	const char *hs = "{\"headers\":{\"host\":\"x\"},\"query\":{},\"auth\":{\"t\":1}}";
	char *s = env_build_connect("/chat", "s1", "gw-1", hs, NULL, NULL, NULL, false, NULL);
	CHECK_STR(s, "{\"type\":\"connect\",\"nsp\":\"/chat\",\"sid\":\"s1\",\"node\":\"gw-1\","
		     "\"handshake\":{\"headers\":{\"host\":\"x\"},\"query\":{},\"auth\":{\"t\":1}}}");
	free(s);
	s = env_build_connect("/", "s1", "gw-1", NULL, NULL, "c9", "sio.reply.gw-1", false, NULL);
	CHECK_STR(s, "{\"type\":\"connect\",\"nsp\":\"/\",\"sid\":\"s1\",\"node\":\"gw-1\","
		     "\"handshake\":{},\"id\":\"c9\",\"reply_to\":\"sio.reply.gw-1\"}");
	free(s);
	s = env_build_connect("/", "s1", "gw-1", "{}", "{\"sub\":\"u1\",\"exp\":1}", NULL, NULL, false, NULL);
	CHECK_STR(s, "{\"type\":\"connect\",\"nsp\":\"/\",\"sid\":\"s1\",\"node\":\"gw-1\","
		     "\"handshake\":{},\"claims\":{\"sub\":\"u1\",\"exp\":1}}");
	free(s);
	CHECK(env_build_connect(NULL, "s1", "gw-1", NULL, NULL, NULL, NULL, false, NULL) == NULL);
	s = env_build_connect("/", "s1", "gw-1", "{}", NULL, NULL, NULL, true, "{\"user\":7}");
	CHECK_STR(s, "{\"type\":\"connect\",\"nsp\":\"/\",\"sid\":\"s1\",\"node\":\"gw-1\","
		     "\"handshake\":{},\"recovered\":true,\"data\":{\"user\":7}}");
	free(s);

	const char *rooms[] = {"s1", "lobby"};
	s = env_build_disconnect("/chat", "s1", "gw-1", "transport close", rooms, 2, false);
	CHECK_STR(s, "{\"type\":\"disconnect\",\"nsp\":\"/chat\",\"sid\":\"s1\",\"node\":\"gw-1\","
		     "\"reason\":\"transport close\",\"rooms\":[\"s1\",\"lobby\"]}");
	free(s);
	s = env_build_disconnect("/chat", "s1", "gw-1", "ping timeout", rooms, 1, true);
	CHECK_STR(s, "{\"type\":\"disconnect\",\"nsp\":\"/chat\",\"sid\":\"s1\",\"node\":\"gw-1\","
		     "\"reason\":\"ping timeout\",\"recoverable\":true,\"rooms\":[\"s1\"]}");
	free(s);
	s = env_build_disconnect("/", "s1", "gw-1", "x", NULL, 0, false);
	CHECK_CONTAINS(s, "\"rooms\":[]");
	free(s);

	cJSON *args = cJSON_Parse("[\"order\",{\"_placeholder\":true,\"num\":0},2]");
	static const uint8_t a0[] = {1, 2, 3, 4};
	const uint8_t *att[] = {a0};
	size_t len[] = {4};
	s = env_build_event("/chat", "s1", "gw-1", args, NULL, 0, att, len, 1, "5", "sio.reply.gw-1");
	CHECK_STR(s, "{\"type\":\"event\",\"nsp\":\"/chat\",\"sid\":\"s1\",\"node\":\"gw-1\","
		     "\"event\":\"order\",\"data\":[{\"$binary\":\"AQIDBA==\"},2],"
		     "\"ack\":{\"id\":\"5\",\"reply_to\":\"sio.reply.gw-1\"}}");
	free(s);
	s = env_build_event("/", "s1", "gw-1", args, NULL, 0, att, len, 1, NULL, NULL);
	CHECK_STR(s, "{\"type\":\"event\",\"nsp\":\"/\",\"sid\":\"s1\",\"node\":\"gw-1\","
		     "\"event\":\"order\",\"data\":[{\"$binary\":\"AQIDBA==\"},2]}");
	free(s);
	/* placeholder out of range, args not an event array */
	CHECK(env_build_event("/", "s1", "gw-1", args, NULL, 0, att, len, 0, NULL, NULL) == NULL);
	cJSON_Delete(args);
	args = cJSON_Parse("[1]");
	CHECK(env_build_event("/", "s1", "gw-1", args, NULL, 0, NULL, NULL, 0, NULL, NULL) == NULL);
	cJSON_Delete(args);
	args = cJSON_Parse("[\"only\"]");
	s = env_build_event("/", "s1", "gw-1", args, NULL, 0, NULL, NULL, 0, NULL, NULL);
	CHECK_CONTAINS(s, "\"event\":\"only\",\"data\":[]}");
	free(s);
	/* with the client's text the data goes on verbatim, numbers with every digit */
	static const char only[] = "[\"only\"]";
	s = env_build_event("/", "s1", "gw-1", args, only, sizeof only - 1, NULL, NULL, 0, NULL, NULL);
	CHECK_STR(s, "{\"type\":\"event\",\"nsp\":\"/\",\"sid\":\"s1\",\"node\":\"gw-1\",\"event\":\"only\",\"data\":[]}");
	free(s);
	cJSON_Delete(args);
	static const char big[] = "[\"n\", 9007199254740993,{\"a\":[1.50]} ]";
	args = cJSON_Parse(big);
	s = env_build_event("/", "s1", "gw-1", args, big, sizeof big - 1, NULL, NULL, 0, "7", "r");
	CHECK_STR(s, "{\"type\":\"event\",\"nsp\":\"/\",\"sid\":\"s1\",\"node\":\"gw-1\",\"event\":\"n\","
		     "\"ack\":{\"id\":\"7\",\"reply_to\":\"r\"},\"data\":[ 9007199254740993,{\"a\":[1.50]} ]}");
	free(s);
	cJSON_Delete(args);
	static const char ack[] = "[12345678901234567890]";
	args = cJSON_Parse(ack);
	s = env_build_client_ack("q1", "s1", args, ack, sizeof ack - 1, NULL, NULL, 0);
	CHECK_STR(s, "{\"type\":\"ack\",\"id\":\"q1\",\"sid\":\"s1\",\"data\":[12345678901234567890]}");
	free(s);
	cJSON_Delete(args);

	s = env_build_room("join-room", "/chat", "s1", "gw-1", "lobby");
	CHECK_STR(s, "{\"type\":\"join-room\",\"nsp\":\"/chat\",\"sid\":\"s1\",\"node\":\"gw-1\",\"room\":\"lobby\"}");
	free(s);
	s = env_build_room("create-room", "/chat", NULL, "gw-1", "lobby");
	CHECK_STR(s, "{\"type\":\"create-room\",\"nsp\":\"/chat\",\"node\":\"gw-1\",\"room\":\"lobby\"}");
	free(s);
}

/* The fast path takes plain emits, and says exactly what the tree says; everything it
 * leaves to the tree parses as before. */
TEST(fast_path_matches_the_tree)
{
	static const struct {
		const char *json;
		bool fast; /* the fast path takes it */
	} v[] = {
		{"{\"type\":\"emit\",\"nsp\":\"/\",\"rooms\":[\"room-1\"],\"event\":\"m\",\"data\":[{\"text\":\"hi\",\"n\":1.50}]}", true},
		{" { \"type\" : \"emit\" , \"event\" : \"m\" } ", true},
		{"{\"type\":\"emit\",\"event\":\"m\",\"data\":[]}", true},
		{"{\"type\":\"emit\",\"event\":\"m\",\"data\":[1, \"a\\n\\\"b\", null, true, {\"x\":[-0.5e+3]}]}", true},
		{"{\"event\":\"m\",\"rooms\":\"r\",\"except\":[\"a\",\"b\"],\"volatile\":true,\"type\":\"emit\",\"extra\":{\"k\":[1]}}", true},
		{"{\"type\":\"emit\",\"nsp\":null,\"rooms\":null,\"event\":\"m\",\"volatile\":null,\"data\":null}", true},
		{"{\"type\":\"emit\",\"event\":\"first\",\"event\":\"second\"}", true},   /* the first wins, as in cJSON */
		{"{\"type\":\"emit\",\"event\":\"m\",\"rooms\":[]}", true},
		{"{\"type\":\"emit\",\"nsp\":\"/chat\",\"event\":\"m\",\"data\":[\"é ✓\"]}", true},
		/* left to the tree */
		{"{\"type\":\"emit\",\"event\":\"m\",\"data\":[{\"$binary\":\"AAE=\"}]}", false},
		{"{\"type\":\"emit\",\"event\":\"m\",\"data\":[\"\\u0024binary\"]}", false},
		{"{\"type\":\"emit\",\"event\":\"m\",\"ack\":{\"reply_to\":\"t\",\"id\":\"1\"}}", false},
		{"{\"type\":\"emit\",\"event\":\"m\\u0041\"}", false},
		{"{\"type\":\"emit\",\"rooms\":[\"a\\\"b\"],\"event\":\"m\"}", false},
		{"{\"ty\\u0070e\":\"emit\",\"event\":\"m\"}", false},
		{"{\"type\":\"join\",\"rooms\":[\"a\"],\"join\":\"r\"}", false},
		/* errors: the tree's message */
		{"{\"type\":\"emit\",\"event\":\"connect\"}", false},
		{"{\"type\":\"emit\",\"event\":1}", false},
		{"{\"type\":\"emit\"}", false},
		{"{\"type\":\"emit\",\"event\":\"m\",\"volatile\":1}", false},
		{"{\"type\":\"emit\",\"event\":\"m\",\"rooms\":[1]}", false},
		{"{\"type\":\"emit\",\"event\":\"m\",\"data\":{}}", false},
		{"{\"type\":\"emit\",\"nsp\":\"chat\",\"event\":\"m\"}", false},
		{"{\"type\":\"emit\",\"nsp\":\"/a,b\",\"event\":\"m\"}", false},
		{"{\"type\":\"emit\",\"event\":\"m\",}", false},
		{"{\"type\":\"emit\",\"event\":\"m\"\"volatile\":false}", false}, /* no comma */
		{"{\"type\":\"emit\",\"event\":\"m\"} x", false},
		{"{\"type\":\"emit\",\"event\":\"m\",\"data\":[01]}", false},
		{"{\"type\":\"emit\",\"event\":\"m\",\"data\":[\"\x01\"]}", false},
		{"[\"emit\"]", false},
	};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		const char *j = v[i].json;
		env_in *f = NULL, *a = NULL, *t = NULL;
		char ea[256] = "", et[256] = "";
		int fr = env_parse_fast(j, strlen(j), 1 << 16, &f);
		int ra = env_parse(j, strlen(j), 1 << 16, &a, ea, sizeof ea);
		int rt = env_parse_tree(j, strlen(j), 1 << 16, &t, et, sizeof et);
		if (fr != (v[i].fast ? 0 : 1))
			fprintf(stderr, "  fast path %s: %s\n", fr ? "declined" : "took", j);
		CHECK_EQ_INT(fr, v[i].fast ? 0 : 1);
		CHECK_EQ_INT(ra, rt);
		CHECK_STR(ea, et);
		if (!ra && !rt && !env_same(a, t)) {
			fprintf(stderr, "  differs: %s\n  fast %s\n  tree %s\n", j, a->body.json, t->body.json);
			CHECK(0);
		}
		if (!fr)
			CHECK(t && env_same(f, t));
		env_in_free(f);
		env_in_free(a);
		env_in_free(t);
	}
}

int main(void)
{
	RUN(emit_plain);
	RUN(emit_defaults);
	RUN(emit_data_verbatim);
	RUN(emit_binary);
	RUN(emit_ack);
	RUN(emit_errors);
	RUN(join_leave_disconnect_fetch);
	RUN(ack);
	RUN(connect_result);
	RUN(build_outbound);
	RUN(fast_path_matches_the_tree);
	return TEST_END();
}
