/* libFuzzer target: the NNG plugin's wire frame (plugins/nng/nng_frame.h), compiled in
 * here (the plugin is a shared module, not part of fuzz_core).
 *
 * Input: byte 0 = flags (bit 0: keys), then the frame as received. Parse it and check
 * what nf_parse promises; then, read as "topic \0 key \0 payload", encode a publication
 * and check it parses back to the same topic, key and payload. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/nng/nng_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_parsed(const char *buf, size_t n, bool keys, const nf_frame *f)
{
	assert(f->topic == buf && f->topic_len > 0 && f->topic_len < n);
	assert(strlen(f->topic) == f->topic_len && !memchr(f->topic, ' ', f->topic_len));
	const char *end = buf + n, *d = f->data;
	assert(d >= buf + f->topic_len + 1 && d <= end && (size_t)(end - d) == f->len);
	if (f->key) {
		const char *k = f->key;
		assert(keys && f->key_len > 0 && k == buf + f->topic_len + 1);
		assert(!memchr(k, ' ', f->key_len) && k + f->key_len + 1 == d && k[f->key_len] == ' ');
	} else {
		assert(f->key_len == 0);
		assert(d == buf + f->topic_len + 1 + (keys ? 1 : 0));
	}
}

static void round_trip(const uint8_t *in, size_t n, bool keys)
{
	/* topic up to the first NUL, key up to the next, the rest is the payload */
	const uint8_t *z1 = memchr(in, 0, n);
	if (!z1)
		return;
	const char *topic = (const char *)in;
	const uint8_t *k = z1 + 1, *z2 = memchr(k, 0, (size_t)(in + n - k));
	if (!z2)
		return;
	size_t key_len = (size_t)(z2 - k);
	const uint8_t *payload = z2 + 1;
	size_t len = (size_t)(in + n - payload);
	size_t total = nf_size(topic, key_len ? k : NULL, key_len, len, keys);
	if (total == 0) {
		size_t tlen = strlen(topic);
		assert(!tlen || strchr(topic, ' ') || tlen > NF_MAX_FIELD ||
		       (keys && (memchr(k, ' ', key_len) || key_len > NF_MAX_FIELD)));
		return;
	}
	char *out = malloc(total);
	assert(out);
	nf_encode(out, topic, k, key_len, payload, len, keys);
	nf_frame f;
	assert(nf_parse(out, total, keys, &f));
	check_parsed(out, total, keys, &f);
	assert(strcmp(f.topic, topic) == 0);
	if (keys)
		assert(f.key_len == key_len && (!key_len || memcmp(f.key, k, key_len) == 0));
	else
		assert(!f.key);
	assert(f.len == len && (!len || memcmp(f.data, payload, len) == 0));
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	bool keys = data[0] & 1;
	size_t n = size - 1;
	/* exact-size copy, so ASan sees any read past the end */
	char *buf = malloc(n ? n : 1);
	if (!buf)
		return 0;
	if (n)
		memcpy(buf, data + 1, n);
	nf_frame f;
	if (nf_parse(buf, n, keys, &f))
		check_parsed(buf, n, keys, &f);
	free(buf);
	round_trip(data + 1, n, keys);
	return 0;
}
