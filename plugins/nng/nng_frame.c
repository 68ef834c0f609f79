/* nng_frame.c — the NNG plugin's wire frame. Contract in nng_frame.h. */
#include "nng_frame.h"

#include <string.h>

bool nf_parse(char *buf, size_t n, bool keys, nf_frame *f)
{
	char *sp = n ? memchr(buf, ' ', n) : NULL;
	if (!sp || sp == buf || memchr(buf, '\0', (size_t)(sp - buf)))
		return false;
	*sp = '\0';
	f->topic = buf;
	f->topic_len = (size_t)(sp - buf);
	char *rest = sp + 1;
	size_t rn = n - (size_t)(rest - buf);
	f->key = NULL;
	f->key_len = 0;
	if (keys) {
		char *sp2 = rn ? memchr(rest, ' ', rn) : NULL;
		if (!sp2)
			return false;
		if (sp2 > rest) {
			f->key = rest;
			f->key_len = (size_t)(sp2 - rest);
		}
		rn -= (size_t)(sp2 + 1 - rest);
		rest = sp2 + 1;
	}
	f->data = rest;
	f->len = rn;
	return true;
}

size_t nf_size(const char *topic, const void *key, size_t key_len, size_t len, bool keys)
{
	if (!topic || !topic[0] || strchr(topic, ' '))
		return 0;
	size_t tlen = strlen(topic);
	if (tlen > NF_MAX_FIELD)
		return 0;
	if (keys && key_len && (!key || key_len > NF_MAX_FIELD || memchr(key, ' ', key_len)))
		return 0;
	size_t head = tlen + 1 + (keys ? key_len + 1 : 0);
	if (len > (size_t)-1 - head)
		return 0;
	return head + len;
}

void nf_encode(char *out, const char *topic, const void *key, size_t key_len, const void *data, size_t len,
	       bool keys)
{
	size_t tlen = strlen(topic);
	memcpy(out, topic, tlen);
	out += tlen;
	*out++ = ' ';
	if (keys) {
		if (key_len)
			memcpy(out, key, key_len);
		out += key_len;
		*out++ = ' ';
	}
	if (len)
		memcpy(out, data, len);
}
