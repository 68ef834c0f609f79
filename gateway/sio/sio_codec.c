/*
 * sio_codec.c — Socket.IO v5 packets (see sio_codec.h), following socket.io-parser
 * v4's decodeString()/isPayloadValid(), but strict where JavaScript's coercions are
 * accidental: attachments and ids are plain decimal digits, the JSON must be the whole
 * rest of the packet, and EVENT/ACK packets must carry their (mandatory) payload.
 */
#include "sio/sio_codec.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "util/base64.h"
#include "util/err.h"
#include "util/names.h"

/* Largest ack id: socket.io ids are JavaScript numbers, exact up to 2^53 - 1. */
#define SIO_MAX_ID 9007199254740991LL

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_json_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static bool payload_valid(sio_type type, const cJSON *d)
{
	switch (type) {
	case SIO_CONNECT:
		return !d || cJSON_IsObject(d);
	case SIO_DISCONNECT:
		return !d;
	case SIO_EVENT:
	case SIO_BINARY_EVENT: {
		const cJSON *name = cJSON_IsArray(d) ? d->child : NULL;
		return cJSON_IsString(name) && !gw_event_reserved(name->valuestring);
	}
	case SIO_ACK:
	case SIO_BINARY_ACK:
		return cJSON_IsArray(d);
	case SIO_CONNECT_ERROR:
		return !d || cJSON_IsString(d) || cJSON_IsObject(d);
	}
	return false;
}

int sio_decode(const char *buf, size_t len, sio_packet *out)
{
	*out = (sio_packet){.nsp = "/", .nsp_len = 1, .id = SIO_NO_ID};
	if (len == 0 || buf[0] < '0' || buf[0] > '6')
		return -GW_EINVAL;
	out->type = (sio_type)(buf[0] - '0');
	size_t i = 1;

	if (out->type == SIO_BINARY_EVENT || out->type == SIO_BINARY_ACK) {
		size_t start = i;
		unsigned n = 0;
		for (; i < len && is_digit(buf[i]); i++) {
			n = n * 10 + (unsigned)(buf[i] - '0');
			if (n > SIO_MAX_ATTACHMENTS)
				return -GW_EINVAL;
		}
		if (i == start || i >= len || buf[i] != '-')
			return -GW_EINVAL;
		out->attachments = n;
		i++;
	}

	if (i < len && buf[i] == '/') {
		/* The namespace runs to the first comma, or to the end ("0/chat"). */
		const char *comma = memchr(buf + i, ',', len - i);
		size_t end = comma ? (size_t)(comma - buf) : len;
		out->nsp = buf + i;
		out->nsp_len = end - i;
		i = comma ? end + 1 : len;
	}

	if (i < len && is_digit(buf[i])) {
		int64_t id = 0;
		for (; i < len && is_digit(buf[i]); i++) {
			id = id * 10 + (buf[i] - '0');
			if (id > SIO_MAX_ID)
				return -GW_EINVAL;
		}
		out->id = id;
	}

	if (i < len) {
		const char *end = NULL;
		/* cJSON skips a byte order mark and any control byte before the value;
		 * JSON.parse only skips JSON whitespace. */
		while (i < len && is_json_ws(buf[i]))
			i++;
		if (i == len || (unsigned char)buf[i] <= 32 ||
		    (len - i >= 3 && memcmp(buf + i, "\xEF\xBB\xBF", 3) == 0))
			return -GW_EINVAL;
		out->data = cJSON_ParseWithLengthOpts(buf + i, len - i, &end, 0);
		if (!out->data)
			return -GW_EINVAL;
		size_t used = (size_t)(end - buf);
		out->json = buf + i;
		out->json_len = used - i;
		while (used < len && is_json_ws(buf[used]))
			used++;
		if (used != len)
			goto bad;
	}
	if (!payload_valid(out->type, out->data))
		goto bad;
	return 0;
bad:
	sio_packet_clear(out);
	return -GW_EINVAL;
}

void sio_packet_clear(sio_packet *p)
{
	cJSON_Delete(p->data);
	p->data = NULL;
}

int sio_encode(gw_buf *out, sio_type type, const char *nsp, int64_t id, unsigned attachments,
	       const char *json, size_t json_len)
{
	if ((unsigned)type > SIO_BINARY_ACK || (id < 0 && id != SIO_NO_ID) || id > SIO_MAX_ID)
		return -GW_EINVAL;
	/* A namespace must start with '/' and cannot hold the comma that ends it. */
	bool with_nsp = nsp && strcmp(nsp, "/") != 0;
	if (with_nsp && (nsp[0] != '/' || strchr(nsp, ',')))
		return -GW_EINVAL;
	int rc = gw_buf_putc(out, (char)('0' + type));
	if (!rc && (type == SIO_BINARY_EVENT || type == SIO_BINARY_ACK))
		rc = gw_buf_printf(out, "%u-", attachments);
	if (!rc && with_nsp)
		rc = gw_buf_printf(out, "%s,", nsp);
	if (!rc && id != SIO_NO_ID)
		rc = gw_buf_printf(out, "%lld", (long long)id);
	if (!rc && json)
		rc = gw_buf_append(out, json, json_len);
	return rc ? -GW_ENOMEM : 0;
}

/* Turns obj's members into exactly one string member `key` (in place, so it works for
 * the root and for nested items alike). */
static int replace_members(cJSON *obj, const char *key, const char *val)
{
	cJSON *s = cJSON_CreateString(val);
	if (!s)
		return -GW_ENOMEM;
	cJSON_Delete(obj->child);
	obj->child = NULL;
	if (!cJSON_AddItemToObject(obj, key, s)) {
		cJSON_Delete(s);
		return -GW_ENOMEM;
	}
	return 0;
}

/* socket.io's test: `_placeholder === true`; then num must index an attachment. */
static bool placeholder_num_ok(const cJSON *d, unsigned n_att)
{
	const cJSON *num = cJSON_GetObjectItemCaseSensitive(d, "num");
	/* range first, so the cast is defined; NaN fails the range */
	double v = cJSON_IsNumber(num) ? num->valuedouble : -1;
	return v >= 0 && v < (double)n_att && (double)(unsigned)v == v;
}

bool sio_placeholders_valid(const cJSON *d, unsigned n_att)
{
	if (cJSON_IsObject(d) && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "_placeholder")))
		return placeholder_num_ok(d, n_att);
	if (cJSON_IsArray(d) || cJSON_IsObject(d))
		for (const cJSON *c = d->child; c; c = c->next)
			if (!sio_placeholders_valid(c, n_att))
				return false;
	return true;
}

static int to_binary(cJSON *d, const uint8_t *const *att, const size_t *att_len, unsigned n_att)
{
	if (cJSON_IsObject(d) && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "_placeholder"))) {
		if (!placeholder_num_ok(d, n_att))
			return -GW_EINVAL;
		unsigned k = (unsigned)cJSON_GetObjectItemCaseSensitive(d, "num")->valuedouble;
		char *b64 = malloc(gw_b64_enc_len(att_len[k]) + 1);
		if (!b64)
			return -GW_ENOMEM;
		b64[gw_b64_encode(att[k], att_len[k], b64)] = 0;
		int rc = replace_members(d, "$binary", b64);
		free(b64);
		return rc;
	}
	if (cJSON_IsArray(d) || cJSON_IsObject(d))
		for (cJSON *c = d->child; c; c = c->next) {
			int rc = to_binary(c, att, att_len, n_att);
			if (rc)
				return rc;
		}
	return 0;
}

int sio_placeholders_to_binary(cJSON *data, const uint8_t *const *att, const size_t *att_len,
			       unsigned n_att)
{
	return data ? to_binary(data, att, att_len, n_att) : 0;
}

typedef struct att_list {
	uint8_t **buf;
	size_t *len;
	size_t n, cap;
} att_list;

/* {"$binary":"<base64>"} and nothing else: an object with more members is data. */
static const cJSON *binary_value(const cJSON *d)
{
	if (!cJSON_IsObject(d) || !d->child || d->child->next)
		return NULL;
	const cJSON *v = d->child;
	return v->string && strcmp(v->string, "$binary") == 0 && cJSON_IsString(v) ? v : NULL;
}

static int add_att(att_list *l, const cJSON *v)
{
	if (l->n >= INT_MAX)
		return -GW_ETOOBIG; /* the count is returned as an int */
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4;
		uint8_t **b = realloc(l->buf, cap * sizeof *b);
		if (!b)
			return -GW_ENOMEM;
		l->buf = b;
		size_t *n = realloc(l->len, cap * sizeof *n);
		if (!n)
			return -GW_ENOMEM;
		l->len = n;
		l->cap = cap;
	}
	size_t slen = strlen(v->valuestring);
	uint8_t *bytes = malloc(slen / 4 * 3 + 3); /* ≥ decoded size, never 0 */
	if (!bytes)
		return -GW_ENOMEM;
	long n = gw_b64_decode(v->valuestring, slen, bytes);
	if (n < 0) {
		free(bytes);
		return -GW_EINVAL;
	}
	l->buf[l->n] = bytes;
	l->len[l->n] = (size_t)n;
	l->n++;
	return 0;
}

/* Depth first in document order, the order socket.io's deconstructPacket numbers. */
static int to_placeholders(cJSON *d, att_list *l)
{
	const cJSON *v = binary_value(d);
	if (v) {
		int rc = add_att(l, v);
		if (rc)
			return rc;
		cJSON *t = cJSON_CreateTrue(), *num = cJSON_CreateNumber((double)(l->n - 1));
		if (!t || !num) {
			cJSON_Delete(t);
			cJSON_Delete(num);
			return -GW_ENOMEM;
		}
		cJSON_Delete(d->child);
		d->child = NULL;
		if (!cJSON_AddItemToObject(d, "_placeholder", t)) {
			cJSON_Delete(t);
			cJSON_Delete(num);
			return -GW_ENOMEM;
		}
		if (!cJSON_AddItemToObject(d, "num", num)) {
			cJSON_Delete(num);
			return -GW_ENOMEM;
		}
		return 0;
	}
	if (cJSON_IsArray(d) || cJSON_IsObject(d))
		for (cJSON *c = d->child; c; c = c->next) {
			int rc = to_placeholders(c, l);
			if (rc)
				return rc;
		}
	return 0;
}

int sio_binary_to_placeholders(cJSON *data, uint8_t ***att, size_t **att_len)
{
	att_list l = {0};
	*att = NULL;
	*att_len = NULL;
	int rc = data ? to_placeholders(data, &l) : 0;
	if (rc) {
		for (size_t i = 0; i < l.n; i++)
			free(l.buf[i]);
		free(l.buf);
		free(l.len);
		return rc;
	}
	*att = l.buf;
	*att_len = l.len;
	return (int)l.n;
}
