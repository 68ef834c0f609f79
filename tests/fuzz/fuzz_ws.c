/*
 * libFuzzer target for net/ws.c. The first two bytes choose the reader (bit 0:
 * permessage-deflate; the second byte: max_message) and seed the split; the rest is
 * the client's byte stream, read once whole and once in pieces. Asserted: consumed ≤
 * what was offered, event data inside the input or the reader's buffers, text
 * messages and close reasons valid UTF-8, the bounds of the RFC, nothing read after
 * an ERROR or CLOSE, and the same events however the stream was split.
 */
#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/ws.h"
#include "util/utf8.h"

/* One set of zlib streams for the whole run, as a loop has. */
static ws_zlib *zlib(void)
{
	static ws_zlib *z;
	if (!z)
		z = ws_zlib_create();
	return z;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool within(const uint8_t *p, size_t n, const uint8_t *base, size_t len)
{
	return base && p >= base && n <= len && (size_t)(p - base) <= len - n;
}

static void check_event(const ws_reader *r, const ws_event *ev, const uint8_t *buf, size_t len)
{
	if (ev->len)
		assert(within(ev->data, ev->len, buf, len) ||
		       within(ev->data, ev->len, r->msg.data, r->msg.len) ||
		       within(ev->data, ev->len, r->ctl.data, r->ctl.len));
	switch (ev->type) {
	case WS_EV_MESSAGE:
		assert(ev->len <= r->max_message);
		if (!ev->binary)
			assert(gw_utf8_valid(ev->data, ev->len));
		break;
	case WS_EV_PING:
	case WS_EV_PONG:
		assert(ev->len <= 125);
		break;
	case WS_EV_CLOSE:
		assert(ev->code == WS_CLOSE_NO_STATUS || ws_close_code_valid(ev->code));
		assert(ev->len <= 123 && gw_utf8_valid(ev->data, ev->len));
		break;
	case WS_EV_ERROR:
		assert(ev->code == 1002 || ev->code == 1007 || ev->code == 1009 || ev->code == 1011);
		assert(ev->reason && *ev->reason);
		break;
	case WS_EV_NONE:
		assert(0);
	}
}

/* FNV-1a over the events, to compare two ways of reading the same stream. */
static uint64_t mix(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

static uint64_t hash_event(uint64_t h, const ws_event *ev)
{
	uint32_t head[4] = {ev->type, ev->code, ev->binary, (uint32_t)ev->len};
	h = mix(h, head, sizeof head);
	return ev->len ? mix(h, ev->data, ev->len) : h;
}

static uint32_t next_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* Reads buf in pieces (whole when seed is 0). Returns the hash of its events. */
static uint64_t read_stream(const uint8_t *in, size_t len, size_t max, bool deflate, uint32_t seed)
{
	uint8_t *buf = malloc(len ? len : 1);
	memcpy(buf, in, len);
	ws_reader r;
	ws_reader_init(&r, max, deflate ? zlib() : NULL);
	uint64_t h = 0xcbf29ce484222325ull;
	bool stopped = false;
	for (size_t off = 0; off < len && !stopped;) {
		size_t n = len - off;
		if (seed) {
			uint32_t x = next_rand(&seed);
			size_t piece = x & 0x100 ? 1 + (x & 3) : 1 + (x & 0x3f);
			n = piece < n ? piece : n;
		}
		size_t pos = 0;
		while (pos < n) {
			ws_event ev;
			size_t c = ws_read(&r, buf + off + pos, n - pos, &ev);
			assert(c <= n - pos);
			pos += c;
			if (ev.type == WS_EV_NONE) {
				assert(pos == n);
				break;
			}
			check_event(&r, &ev, buf, len);
			h = hash_event(h, &ev);
			if (ev.type == WS_EV_ERROR || ev.type == WS_EV_CLOSE) {
				ws_event again;
				assert(ws_read(&r, buf + off + pos, n - pos, &again) == 0);
				assert(again.type == WS_EV_NONE);
				stopped = true;
				break;
			}
		}
		off += n;
	}
	ws_reader_fini(&r);
	free(buf);
	return h;
}

static void roundtrip(const uint8_t *in, size_t len)
{
	gw_buf z = {0}, out = {0};
	assert(ws_deflate(zlib(), in, len, &z) == 0);
	assert(ws_inflate(zlib(), z.data, z.len, &out, len) == 0);
	assert(out.len == len && (len == 0 || memcmp(out.data, in, len) == 0));
	if (len) {
		gw_buf_reset(&out);
		assert(ws_inflate(zlib(), z.data, z.len, &out, len - 1) == -1);
	}
	gw_buf_free(&z);
	gw_buf_free(&out);
}

static void negotiate(const uint8_t *in, size_t len)
{
	char *s = malloc(len + 1), resp[128];
	memcpy(s, in, len);
	s[len] = 0;
	if (ws_deflate_negotiate(s, resp, sizeof resp))
		assert(strcmp(resp, "permessage-deflate; server_no_context_takeover; "
				    "client_no_context_takeover") == 0);
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	bool deflate = data[0] & 1;
	size_t max = data[1] == 0xff ? (size_t)1 << 20 : (size_t)data[1] * 16;
	uint32_t seed = (uint32_t)data[0] << 8 | data[1] | 1u << 31;
	const uint8_t *in = data + 2;
	size_t len = size - 2;

	uint64_t whole = read_stream(in, len, max, deflate, 0);
	uint64_t split = read_stream(in, len, max, deflate, seed);
	assert(whole == split);
	if (data[0] & 2)
		roundtrip(in, len);
	if (data[0] & 4)
		negotiate(in, len);
	return 0;
}
