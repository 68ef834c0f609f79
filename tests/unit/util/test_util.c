#include "../test.h"
#include "util/base64.h"
#include "util/buf.h"
#include "util/err.h"
#include <siogw/plugin.h>
#include "util/dlist.h"
#include "util/frame.h"
#include "util/rand.h"
#include "util/sid.h"
#include "util/map.h"

#include <cjson/cJSON.h>

TEST(base64_roundtrip)
{
	const char *vec[][2] = {{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
				{"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
	for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
		char out[16] = {0};
		size_t n = gw_b64_encode((const uint8_t *)vec[i][0], strlen(vec[i][0]), out);
		CHECK_STR(out, vec[i][1]);
		CHECK_EQ_INT(n, strlen(vec[i][1]));
		uint8_t dec[16] = {0};
		long m = gw_b64_decode(out, n, dec);
		CHECK_EQ_INT(m, strlen(vec[i][0]));
		CHECK(memcmp(dec, vec[i][0], (size_t)m) == 0);
	}
}

TEST(base64_rejects_garbage)
{
	uint8_t out[8];
	CHECK_EQ_INT(gw_b64_decode("ab$d", 4, out), -1);
	CHECK_EQ_INT(gw_b64_decode("a", 1, out), -1);
}

TEST(buf_grows)
{
	gw_buf b = {0};
	for (int i = 0; i < 1000; i++)
		CHECK_EQ_INT(gw_buf_printf(&b, "%d,", i), 0);
	CHECK_EQ_INT(b.len, 3890);
	CHECK(memcmp(b.data, "0,1,2,", 6) == 0);
	gw_buf_free(&b);
}

/* Every byte value, escaped as cJSON prints it, and parsed back by cJSON to the same bytes. */
TEST(buf_json_string)
{
	char in[256];
	for (int i = 0; i < 255; i++)
		in[i] = (char)(i + 1); /* 1..255: cJSON strings end at NUL */
	in[255] = 0;
	gw_buf b = {0};
	CHECK_EQ_INT(gw_buf_put_json_string(&b, in, 255), 0);
	cJSON *ref = cJSON_CreateString(in);
	char *want = cJSON_PrintUnformatted(ref);
	CHECK_STR((char *)b.data, want);
	cJSON *back = cJSON_Parse((char *)b.data);
	CHECK(cJSON_IsString(back) && strcmp(back->valuestring, in) == 0);
	gw_buf_reset(&b);
	CHECK_EQ_INT(gw_buf_put_json_string(&b, "a\0b", 3), 0); /* n bytes, NUL included */
	CHECK_EQ_INT(b.len, 10);
	CHECK(memcmp(b.data, "\"a\\u0000b\"", 10) == 0);
	gw_buf_reset(&b);
	CHECK_EQ_INT(gw_buf_put_json_string(&b, "", 0), 0);
	CHECK_STR((char *)b.data, "\"\"");
	cJSON_Delete(back);
	cJSON_Delete(ref);
	free(want);
	gw_buf_free(&b);
}

TEST(frame_refcount)
{
	gw_frame *f = gw_frame_text('4', "hi", 2);
	CHECK_EQ_INT(f->len, 3);
	CHECK(memcmp(gw_frame_data(f), "4hi", 3) == 0);
	gw_frame_ref(f);
	gw_frame_unref(f);
	CHECK_EQ_INT(atomic_load(&f->refs), 1);
	gw_frame_ref_n(f, 1000);
	CHECK_EQ_INT(atomic_load(&f->refs), 1001);
	for (int i = 0; i < 1000; i++)
		gw_frame_unref(f);
	CHECK_EQ_INT(atomic_load(&f->refs), 1);
	gw_frame_unref(f);
}

/* the two error vocabularies meet in one place, both ways */
TEST(err_mapping)
{
	CHECK_EQ_INT(gw_err_from_siogw(0), 0);
	CHECK_EQ_INT(gw_err_from_siogw(-SIOGW_EIO), -GW_EIO);
	CHECK_EQ_INT(gw_err_from_siogw(-SIOGW_ECLOSED), -GW_ECLOSED);
	CHECK_EQ_INT(gw_err_from_siogw(-SIOGW_EAGAIN), -GW_EFULL);
	CHECK_EQ_INT(gw_err_from_siogw(-SIOGW_EINVAL), -GW_EINVAL);
	CHECK_EQ_INT(gw_err_from_siogw(-SIOGW_ENOMEM), -GW_ENOMEM);
	CHECK_EQ_INT(gw_err_from_siogw(-SIOGW_ENOTSUP), -GW_ENOTSUP);
	CHECK_EQ_INT(gw_err_from_siogw(-77), -GW_EPLUGIN);
	for (int e = 1; e <= SIOGW_ENOTSUP; e++)
		CHECK_EQ_INT(gw_err_to_siogw(gw_err_from_siogw(-e)), -e);
	CHECK_EQ_INT(gw_err_to_siogw(-GW_ECONFIG), -SIOGW_EIO);
	CHECK_STR(gw_strerror(-GW_EFULL), "queue full");
	CHECK_STR(gw_strerror(GW_ENOTSUP), "not supported");
}

TEST(rand_id_shape)
{
	char a[GW_ID_LEN + 1], b[GW_ID_LEN + 1];
	gw_rand_id(a);
	gw_rand_id(b);
	CHECK_EQ_INT(strlen(a), 20);
	CHECK(strcmp(a, b) != 0);
	for (int i = 0; i < 20; i++)
		CHECK(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", a[i]));
	/* across several refills of the per-thread pool: all distinct, all shaped */
	static char ids[100][GW_ID_LEN + 1];
	for (int i = 0; i < 100; i++) {
		gw_rand_id(ids[i]);
		CHECK_EQ_INT(strlen(ids[i]), 20);
		for (int j = 0; j < i; j++)
			CHECK(strcmp(ids[i], ids[j]) != 0);
	}
}

/* Socket ids name their node: tag, random, check (util/sid.h). */
TEST(sid_names_its_node)
{
	char t1[GW_TAG_LEN + 1], t2[GW_TAG_LEN + 1], t3[GW_TAG_LEN + 1], got[GW_TAG_LEN + 1];
	gw_node_tag("gw-1", t1);
	gw_node_tag("gw-1", t2);
	gw_node_tag("gw-2", t3);
	CHECK_STR(t1, t2); /* stable: the same node_id, the same tag, across restarts */
	CHECK(strcmp(t1, t3) != 0);
	CHECK_EQ_INT(strlen(t1), GW_TAG_LEN);
	char id[GW_ID_LEN + 1], id2[GW_ID_LEN + 1];
	gw_sid_new(id, t1);
	gw_sid_new(id2, t1);
	CHECK_EQ_INT(strlen(id), GW_ID_LEN);
	CHECK(strcmp(id, id2) != 0);
	CHECK(strncmp(id, t1, GW_TAG_LEN) == 0);
	for (int i = 0; i < GW_ID_LEN; i++)
		CHECK(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", id[i]));
	CHECK(gw_sid_tag(id, strlen(id), got));
	CHECK_STR(got, t1);
	/* an Engine.IO v3 socket id: "/nsp#<session id>" */
	char v3[64];
	snprintf(v3, sizeof v3, "/chat#%s", id);
	memset(got, 0, sizeof got);
	CHECK(gw_sid_tag(v3, strlen(v3), got));
	CHECK_STR(got, t1);
	/* one character changed, a wrong length, a character outside the alphabet, room
	 * names that look like ids: not socket ids */
	char bad[GW_ID_LEN + 1];
	for (int i = 0; i < GW_ID_LEN; i++) {
		memcpy(bad, id, sizeof bad);
		bad[i] = bad[i] == 'A' ? 'B' : 'A';
		CHECK(!gw_sid_tag(bad, GW_ID_LEN, got));
	}
	CHECK(!gw_sid_tag(id, GW_ID_LEN - 1, got));
	memcpy(bad, id, sizeof bad);
	bad[5] = '.';
	CHECK(!gw_sid_tag(bad, GW_ID_LEN, got));
	CHECK(!gw_sid_tag("conversation-1234567", 20, got));
	CHECK(!gw_sid_tag("", 0, got));
	CHECK(!gw_sid_tag("/chat#", 6, got));
	/* random 20-character names pass about 1 in 2^24 times: none of 100000 here */
	char name[GW_ID_LEN + 1];
	int passed = 0;
	for (int i = 0; i < 100000; i++) {
		gw_rand_id(name);
		passed += gw_sid_tag(name, GW_ID_LEN, got);
	}
	CHECK(passed <= 1);
}

TEST(map_put_get_del)
{
	gw_map m = {0};
	static char keys[5000][12];
	for (int i = 0; i < 5000; i++) {
		snprintf(keys[i], sizeof keys[i], "k%d", i);
		CHECK_EQ_INT(gw_map_put(&m, keys[i], strlen(keys[i]), keys[i]), 0);
	}
	CHECK_EQ_INT(m.len, 5000);
	for (int i = 0; i < 5000; i += 2)
		CHECK(gw_map_del(&m, keys[i], strlen(keys[i])) == keys[i]);
	CHECK_EQ_INT(m.len, 2500);
	for (int i = 0; i < 5000; i++) {
		void *v = gw_map_get(&m, keys[i], strlen(keys[i]));
		CHECK(i % 2 ? v == keys[i] : v == NULL);
	}
	CHECK(gw_map_del(&m, "nope", 4) == NULL);
	gw_map_free(&m);
}

typedef struct item {
	int v;
	gw_dlink link;
} item;

TEST(dlist_membership)
{
	gw_dlist d = {0};
	item a = {.v = 1}, b = {.v = 2}, c = {.v = 3};
	gw_dlist_add(&d, &a.link);
	gw_dlist_add(&d, &b.link);
	gw_dlist_add(&d, &a.link); /* already a member: no-op */
	gw_dlist_add(&d, &c.link);
	gw_dlist_del(&d, &b.link); /* from the middle */
	gw_dlist_del(&d, &b.link); /* not a member: no-op */
	gw_dlink *l = gw_dlist_pop(&d);
	CHECK(l && GW_DLIST_ITEM(l, item, link)->v == 3);
	l = gw_dlist_pop(&d);
	CHECK(l && GW_DLIST_ITEM(l, item, link)->v == 1);
	CHECK(gw_dlist_pop(&d) == NULL);
	CHECK(!a.link.on && !b.link.on && !c.link.on);
	gw_dlist_add(&d, &b.link); /* may join again */
	CHECK(d.head == &b.link);
}

int main(void)
{
	RUN(map_put_get_del);
	RUN(base64_roundtrip);
	RUN(base64_rejects_garbage);
	RUN(buf_grows);
	RUN(buf_json_string);
	RUN(frame_refcount);
	RUN(err_mapping);
	RUN(rand_id_shape);
	RUN(sid_names_its_node);
	RUN(dlist_membership);
	return TEST_END();
}
