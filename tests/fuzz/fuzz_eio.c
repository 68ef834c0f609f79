/* libFuzzer target: Engine.IO frames and polling payloads (eio_codec.h). */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "eio/eio_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Iterates buf and appends every packet, in websocket form, to out. Returns the number
 * of packets, or -1 on a decoding error. */
static int reencode(uint8_t *buf, size_t len, gw_buf *out, int *n_binary)
{
	eio_payload_iter it;
	eio_packet p;
	int n = 0, rc;
	eio_payload_iter_init(&it, buf, len);
	while ((rc = eio_payload_next(&it, &p)) == 1) {
		assert(p.data >= buf && p.data + p.len <= buf + len);
		assert(p.binary ? p.type == EIO_MESSAGE : p.type >= EIO_OPEN && p.type <= EIO_NOOP);
		/* text: the type char is the byte before the data */
		const uint8_t *ws = p.binary ? p.data : p.data - 1;
		assert(p.binary || ws[0] == (uint8_t)p.type);
		assert(eio_payload_append(out, ws, p.binary ? p.len : p.len + 1, p.binary) == 0);
		*n_binary += p.binary;
		n++;
	}
	assert(eio_payload_next(&it, &p) == 0); /* stays at the end */
	return rc == 0 ? n : -1;
}

/* The same over an Engine.IO v3 payload in either form. */
static int reencode3(uint8_t *buf, size_t len, bool binary_form, gw_buf *out)
{
	eio3_payload_iter it;
	eio_packet p;
	int n = 0, rc;
	eio3_payload_iter_init(&it, buf, len, binary_form);
	while ((rc = eio3_payload_next(&it, &p)) == 1) {
		assert(p.data >= buf && p.data + p.len <= buf + len);
		assert(p.binary ? p.type == EIO_MESSAGE : p.type >= EIO_OPEN && p.type <= EIO_NOOP);
		const uint8_t *ws = p.binary ? p.data : p.data - 1;
		assert(p.binary || ws[0] == (uint8_t)p.type);
		/* text the walk took as UTF-8 in structure re-encodes */
		assert(eio3_payload_append(out, ws, p.binary ? p.len : p.len + 1, p.binary, binary_form) == 0);
		n++;
	}
	assert(eio3_payload_next(&it, &p) == 0);
	return rc == 0 ? n : -1;
}

/* A v3 payload that decodes is rebuilt (canonical lengths and base64) into one that
 * decodes to as many packets and is a fixed point. */
static void check_v3(const uint8_t *data, size_t size, bool binary_form)
{
	uint8_t *buf = malloc(size ? size : 1);
	assert(buf);
	if (size)
		memcpy(buf, data, size);
	gw_buf out = {0}, again = {0};
	int n = reencode3(buf, size, binary_form, &out);
	if (n >= 0) {
		uint8_t *copy = malloc(out.len ? out.len : 1);
		assert(copy);
		if (out.len)
			memcpy(copy, out.data, out.len);
		assert(reencode3(copy, out.len, binary_form, &again) == n);
		assert(again.len == out.len && (out.len == 0 || memcmp(again.data, out.data, out.len) == 0));
		free(copy);
	}
	gw_buf_free(&out);
	gw_buf_free(&again);
	free(buf);
}

/* A v3 websocket frame, both kinds, decoded in place: the packet lies inside the
 * frame, and a "b4<base64>" text frame's bytes re-encode to the same base64. */
static void check_v3_frame(const uint8_t *data, size_t size)
{
	for (int binary = 0; binary < 2; binary++) {
		uint8_t *buf = malloc(size ? size : 1);
		assert(buf);
		if (size)
			memcpy(buf, data, size);
		eio_packet p;
		if (eio3_decode_frame(buf, size, binary, &p) == 0) {
			assert(p.data >= buf && p.data + p.len <= buf + size);
			if (binary)
				assert(p.binary && p.type == EIO_MESSAGE && p.len == size - 1 && data[0] == 4);
			if (!binary && data[0] == 'b') {
				assert(p.binary);
				gw_buf b = {0};
				assert(eio3_payload_append(&b, p.data, p.len, true, false) == 0);
				/* "<len>:b4<base64>": that frame decodes to the same bytes */
				uint8_t *colon = memchr(b.data, ':', b.len);
				assert(colon && colon[1] == 'b' && colon[2] == '4');
				size_t fl = b.len - (size_t)(colon + 1 - b.data);
				uint8_t *again = malloc(fl);
				assert(again);
				memcpy(again, colon + 1, fl);
				eio_packet q;
				assert(eio3_decode_frame(again, fl, false, &q) == 0 && q.binary && q.len == p.len &&
				       (p.len == 0 || memcmp(q.data, p.data, p.len) == 0));
				free(again);
				gw_buf_free(&b);
			}
		}
		free(buf);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_v3(data, size, false);
	check_v3(data, size, true);
	check_v3_frame(data, size);
	eio_packet p;
	if (eio_decode_frame(data, size, false, &p) == 0)
		assert(size >= 1 && p.data == data + 1 && p.len == size - 1);
	assert(eio_decode_frame(data, size, true, &p) == 0 && p.len == size);

	/* exact-size copy, so ASan sees any read past the end */
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	if (size)
		memcpy(buf, data, size);
	gw_buf out = {0}, again = {0};
	int n_bin = 0, n_bin2 = 0;
	int n = reencode(buf, size, &out, &n_bin);
	if (n >= 0) {
		/* without binary packets the payload is rebuilt byte for byte */
		if (n_bin == 0)
			assert(out.len == size && (size == 0 || memcmp(out.data, data, size) == 0));
		/* and a rebuilt payload is a fixed point */
		uint8_t *copy = malloc(out.len ? out.len : 1);
		assert(copy);
		if (out.len)
			memcpy(copy, out.data, out.len);
		assert(reencode(copy, out.len, &again, &n_bin2) == n && n_bin2 == n_bin);
		assert(again.len == out.len && (out.len == 0 || memcmp(again.data, out.data, out.len) == 0));
		free(copy);
	}
	gw_buf_free(&out);
	gw_buf_free(&again);

	/* the open packet stays valid JSON whatever the sid holds */
	char *sid = malloc(size + 1);
	assert(sid);
	if (size)
		memcpy(sid, data, size);
	sid[size] = 0;
	gw_buf open = {0};
	assert(eio_encode_open(&open, sid, size & 1, 25000, 20000, 1000000) == 0);
	cJSON *j = cJSON_Parse((const char *)open.data + 1);
	assert(j);
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "sid");
	assert(cJSON_IsString(s) && strcmp(s->valuestring, sid) == 0);
	cJSON_Delete(j);
	gw_buf_free(&open);
	free(sid);

	char body[64];
	assert(eio_error_body(size ? (signed char)data[0] : 0, body, sizeof body) > 0);
	free(buf);
	return 0;
}
