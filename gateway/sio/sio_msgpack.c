/* sio_msgpack.c — see sio_msgpack.h. MessagePack: https://github.com/msgpack/msgpack/blob/master/spec.md */
#include "sio/sio_msgpack.h"

#include "util/err.h"
#include "util/names.h"
#include "util/utf8.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MP_MAX_DEPTH 32
#define MAX_SAFE_INT 9007199254740991LL /* 2^53 - 1 */

/* ---- decoding ---- */

typedef struct rd {
	const uint8_t *p, *end;
	sio_mp_att *att;
	unsigned max_att;
	int depth;
	int err;      /* -GW_EINVAL / -GW_ENOMEM once something failed */
} rd;

static bool take(rd *r, size_t n, const uint8_t **out)
{
	if ((size_t)(r->end - r->p) < n) {
		r->err = -GW_EINVAL;
		return false;
	}
	*out = r->p;
	r->p += n;
	return true;
}

static uint64_t be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static cJSON *fail(rd *r, int err)
{
	if (!r->err)
		r->err = err;
	return NULL;
}

static cJSON *placeholder(rd *r, const uint8_t *b, size_t n)
{
	sio_mp_att *a = r->att;
	if (a->n >= r->max_att)
		return fail(r, -GW_EINVAL);
	uint8_t **d = realloc(a->data, (a->n + 1) * sizeof *d);
	if (d)
		a->data = d;
	size_t *l = d ? realloc(a->len, (a->n + 1) * sizeof *l) : NULL;
	if (l)
		a->len = l;
	uint8_t *copy = l ? malloc(n ? n : 1) : NULL;
	cJSON *o = copy ? cJSON_CreateObject() : NULL;
	if (!o || !cJSON_AddTrueToObject(o, "_placeholder") || !cJSON_AddNumberToObject(o, "num", a->n)) {
		free(copy);
		cJSON_Delete(o);
		return fail(r, -GW_ENOMEM);
	}
	memcpy(copy, b, n);
	a->data[a->n] = copy;
	a->len[a->n] = n;
	a->n++;
	return o;
}

/* A Date as JSON.stringify writes it: toISOString(), or null when invalid. */
static cJSON *date(rd *r, double ms)
{
	if (!isfinite(ms) || fabs(ms) > 8.64e15)
		return cJSON_CreateNull();
	ms = trunc(ms);
	double secs = floor(ms / 1000.0);
	int milli = (int)(ms - secs * 1000.0);
	time_t t = (time_t)secs;
	struct tm tm;
	if (!gmtime_r(&t, &tm))
		return cJSON_CreateNull();
	long year = tm.tm_year + 1900L;
	char buf[48];
	if (year >= 0 && year <= 9999)
		snprintf(buf, sizeof buf, "%04ld-%02d-%02dT%02d:%02d:%02d.%03dZ", year, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec, milli);
	else
		snprintf(buf, sizeof buf, "%c%06ld-%02d-%02dT%02d:%02d:%02d.%03dZ", year < 0 ? '-' : '+',
			 year < 0 ? -year : year, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, milli);
	cJSON *s = cJSON_CreateString(buf);
	return s ? s : fail(r, -GW_ENOMEM);
}

/* ext / fixext: timestamps (-1) and notepack's type 0 forms. *undef: an undefined. */
static cJSON *ext(rd *r, int8_t type, size_t n, bool *undef)
{
	const uint8_t *b;
	if (!take(r, n, &b))
		return NULL;
	if (type == -1) {
		if (n == 4)
			return date(r, (double)be(b, 4) * 1000.0);
		if (n == 8) {
			uint64_t v = be(b, 8);
			return date(r, (double)(v & 0x3ffffffffULL) * 1000.0 + (double)(v >> 34) / 1e6);
		}
		if (n == 12)
			return date(r, (double)(int64_t)be(b + 4, 8) * 1000.0 + (double)be(b, 4) / 1e6);
	} else if (type == 0) {
		if (n == 1) { /* notepack: undefined */
			*undef = true;
			return NULL;
		}
		if (n == 8) /* notepack's older Date: ms as int32 hi, uint32 lo */
			return date(r, (double)(int32_t)be(b, 4) * 4294967296.0 + (double)be(b + 4, 4));
	}
	return fail(r, -GW_EINVAL);
}

static cJSON *value(rd *r, bool *undef);

static cJSON *str(rd *r, size_t n)
{
	const uint8_t *b;
	if (!take(r, n, &b))
		return NULL;
	if (!gw_utf8_valid(b, n) || memchr(b, 0, n))
		return fail(r, -GW_EINVAL); /* cJSON strings are C strings */
	char *s = malloc(n + 1);
	cJSON *o = s ? cJSON_CreateString("") : NULL;
	if (!o) {
		free(s);
		return fail(r, -GW_ENOMEM);
	}
	memcpy(s, b, n);
	s[n] = 0;
	cJSON_free(o->valuestring);
	o->valuestring = s;
	return o;
}

static cJSON *array(rd *r, size_t n)
{
	if (n > (size_t)(r->end - r->p)) /* each element takes a byte at least */
		return fail(r, -GW_EINVAL);
	cJSON *a = cJSON_CreateArray();
	if (!a)
		return fail(r, -GW_ENOMEM);
	for (size_t i = 0; i < n; i++) {
		bool u = false;
		cJSON *v = value(r, &u);
		if (u)
			v = cJSON_CreateNull(); /* JSON.stringify([undefined]) is [null] */
		if (!v || !cJSON_AddItemToArray(a, v)) {
			cJSON_Delete(v);
			cJSON_Delete(a);
			return fail(r, -GW_ENOMEM);
		}
	}
	return a;
}

static cJSON *map(rd *r, size_t n)
{
	if (n > (size_t)(r->end - r->p) / 2)
		return fail(r, -GW_EINVAL);
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return fail(r, -GW_ENOMEM);
	for (size_t i = 0; i < n; i++) {
		bool u = false;
		cJSON *k = value(r, &u);
		if (!cJSON_IsString(k)) { /* keys are strings (JSON has no others) */
			cJSON_Delete(k);
			cJSON_Delete(o);
			return fail(r, -GW_EINVAL);
		}
		cJSON *v = value(r, &u);
		if (u) { /* undefined: the key is left out, as JSON.stringify does */
			cJSON_Delete(k);
			continue;
		}
		if (!v) {
			cJSON_Delete(k);
			cJSON_Delete(o);
			return NULL;
		}
		/* a later duplicate replaces, as in a JS object */
		cJSON_DeleteItemFromObjectCaseSensitive(o, k->valuestring);
		bool ok = cJSON_AddItemToObject(o, k->valuestring, v);
		cJSON_Delete(k);
		if (!ok) {
			cJSON_Delete(v);
			cJSON_Delete(o);
			return fail(r, -GW_ENOMEM);
		}
	}
	return o;
}

static cJSON *number(rd *r, double v)
{
	cJSON *n = isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
	return n ? n : fail(r, -GW_ENOMEM);
}

static cJSON *value(rd *r, bool *undef)
{
	const uint8_t *b;
	*undef = false;
	if (r->err || !take(r, 1, &b))
		return NULL;
	uint8_t t = *b;
	if (t <= 0x7f)
		return number(r, t);
	if (t >= 0xe0)
		return number(r, (int8_t)t);
	if (t >= 0xa0 && t <= 0xbf)
		return str(r, t & 0x1f);
	if ((t >= 0x80 && t <= 0x9f) || t == 0xdc || t == 0xdd || t == 0xde || t == 0xdf) {
		if (++r->depth > MP_MAX_DEPTH)
			return fail(r, -GW_EINVAL);
		size_t n = 0;
		bool is_map = (t >= 0x80 && t <= 0x8f) || t == 0xde || t == 0xdf;
		if (t <= 0x9f)
			n = t & 0x0f;
		else if (take(r, t == 0xdc || t == 0xde ? 2 : 4, &b))
			n = (size_t)be(b, t == 0xdc || t == 0xde ? 2 : 4);
		else
			return NULL;
		cJSON *v = is_map ? map(r, n) : array(r, n);
		r->depth--;
		return v;
	}
	size_t w;
	switch (t) {
	case 0xc0: {
		cJSON *n = cJSON_CreateNull();
		return n ? n : fail(r, -GW_ENOMEM);
	}
	case 0xc2:
	case 0xc3: {
		cJSON *v = cJSON_CreateBool(t == 0xc3);
		return v ? v : fail(r, -GW_ENOMEM);
	}
	case 0xc4:
	case 0xc5:
	case 0xc6:
		w = (size_t)1 << (t - 0xc4);
		if (!take(r, w, &b))
			return NULL;
		{
			size_t n = (size_t)be(b, w);
			if (!take(r, n, &b))
				return NULL;
			return placeholder(r, b, n);
		}
	case 0xc7:
	case 0xc8:
	case 0xc9: {
		w = (size_t)1 << (t - 0xc7);
		if (!take(r, w + 1, &b))
			return NULL;
		size_t n = (size_t)be(b, w);
		int8_t type = (int8_t)b[w];
		if (type == 0 && n != 1 && n != 8) { /* notepack: an ArrayBuffer */
			if (!take(r, n, &b))
				return NULL;
			return placeholder(r, b, n);
		}
		return ext(r, type, n, undef);
	}
	case 0xca:
		if (!take(r, 4, &b))
			return NULL;
		{
			uint32_t u = (uint32_t)be(b, 4);
			float f;
			memcpy(&f, &u, 4);
			return number(r, f);
		}
	case 0xcb:
		if (!take(r, 8, &b))
			return NULL;
		{
			uint64_t u = be(b, 8);
			double d;
			memcpy(&d, &u, 8);
			return number(r, d);
		}
	case 0xcc:
	case 0xcd:
	case 0xce:
	case 0xcf:
		w = (size_t)1 << (t - 0xcc);
		return take(r, w, &b) ? number(r, (double)be(b, w)) : NULL;
	case 0xd0:
	case 0xd1:
	case 0xd2:
	case 0xd3: {
		w = (size_t)1 << (t - 0xd0);
		if (!take(r, w, &b))
			return NULL;
		uint64_t u = be(b, w);
		int64_t v = w == 8 ? (int64_t)u : (int64_t)(u << (64 - 8 * w)) >> (64 - 8 * w);
		return number(r, (double)v);
	}
	case 0xd4:
	case 0xd5:
	case 0xd6:
	case 0xd7:
	case 0xd8:
		if (!take(r, 1, &b))
			return NULL;
		return ext(r, (int8_t)*b, (size_t)1 << (t - 0xd4), undef);
	case 0xd9:
	case 0xda:
	case 0xdb:
		w = (size_t)1 << (t - 0xd9);
		return take(r, w, &b) ? str(r, (size_t)be(b, w)) : NULL;
	default: /* 0xc1: never used */
		return fail(r, -GW_EINVAL);
	}
}

static bool is_int(const cJSON *v, int64_t lo, int64_t hi)
{
	return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && v->valuedouble >= (double)lo &&
	       v->valuedouble <= (double)hi;
}

int sio_mp_decode(const uint8_t *buf, size_t len, unsigned max_att, sio_packet *p, sio_mp_att *att)
{
	memset(p, 0, sizeof *p);
	memset(att, 0, sizeof *att);
	p->id = SIO_NO_ID;
	if (len == 0 || !((buf[0] >= 0x80 && buf[0] <= 0x8f) || buf[0] == 0xde || buf[0] == 0xdf))
		return -GW_EINVAL;
	/* the top map is read here, member by member, so nsp can point into buf */
	rd r = {.p = buf, .end = buf + len, .att = att, .max_att = max_att};
	const uint8_t *b;
	size_t n;
	take(&r, 1, &b);
	if (buf[0] <= 0x8f)
		n = buf[0] & 0x0f;
	else if (take(&r, buf[0] == 0xde ? 2 : 4, &b))
		n = (size_t)be(b, buf[0] == 0xde ? 2 : 4);
	else
		return -GW_EINVAL;
	cJSON *type = NULL, *id = NULL;
	bool has_nsp = false, has_data = false;
	int err = 0;
	for (size_t i = 0; i < n && !err; i++) {
		bool u = false;
		cJSON *k = value(&r, &u);
		if (!cJSON_IsString(k)) {
			cJSON_Delete(k);
			err = r.err ? r.err : -GW_EINVAL;
			break;
		}
		const char *key = k->valuestring;
		if (strcmp(key, "nsp") == 0) {
			/* a str, read in place */
			size_t sl = 0;
			uint8_t t = r.p < r.end ? *r.p : 0;
			if (t >= 0xa0 && t <= 0xbf)
				take(&r, 1, &b), sl = t & 0x1f;
			else if (t >= 0xd9 && t <= 0xdb && take(&r, 1, &b) && take(&r, (size_t)1 << (t - 0xd9), &b))
				sl = (size_t)be(b, (size_t)1 << (t - 0xd9));
			else
				r.err = -GW_EINVAL;
			if (!r.err && take(&r, sl, &b) && gw_utf8_valid(b, sl) && sl && b[0] == '/' && !memchr(b, 0, sl)) {
				p->nsp = (const char *)b;
				p->nsp_len = sl;
				has_nsp = true;
			} else {
				err = -GW_EINVAL;
			}
		} else {
			cJSON *v = value(&r, &u);
			if (!v && !u) {
				err = r.err ? r.err : -GW_EINVAL;
			} else if (strcmp(key, "type") == 0) {
				cJSON_Delete(type);
				type = v;
			} else if (strcmp(key, "data") == 0) {
				cJSON_Delete(p->data);
				p->data = v;
				has_data = !u;
			} else if (strcmp(key, "id") == 0) {
				cJSON_Delete(id);
				id = v; /* undefined: absent */
			} else {
				cJSON_Delete(v); /* other members are ignored, as by the parser */
			}
		}
		cJSON_Delete(k);
	}
	if (!err && (r.err || r.p != r.end))
		err = -GW_EINVAL; /* one packet per message */
	if (!err && (!is_int(type, 0, 4) || !has_nsp))
		err = -GW_EINVAL;
	if (!err && id) {
		if (is_int(id, 0, MAX_SAFE_INT))
			p->id = (int64_t)id->valuedouble;
		else
			err = -GW_EINVAL;
	}
	if (!err) {
		p->type = (sio_type)(int)type->valuedouble;
		if ((p->type == SIO_CONNECT || p->type == SIO_DISCONNECT) && cJSON_IsNull(p->data)) {
			/* python-socketio's msgpack serializer sends "data": nil for "no payload" */
			cJSON_Delete(p->data);
			p->data = NULL;
			has_data = false;
		}
		const cJSON *d = has_data ? p->data : NULL;
		switch (p->type) {
		case SIO_CONNECT:
			err = !d || cJSON_IsObject(d) ? 0 : -GW_EINVAL;
			break;
		case SIO_DISCONNECT:
			err = d ? -GW_EINVAL : 0;
			break;
		case SIO_CONNECT_ERROR:
			err = cJSON_IsObject(d) || cJSON_IsString(d) ? 0 : -GW_EINVAL;
			break;
		case SIO_EVENT:
			err = cJSON_IsArray(d) && cJSON_IsString(d->child) && !gw_event_reserved(d->child->valuestring)
				      ? 0
				      : -GW_EINVAL;
			break;
		default: /* ACK */
			err = cJSON_IsArray(d) ? 0 : -GW_EINVAL;
			break;
		}
	}
	cJSON_Delete(type);
	cJSON_Delete(id);
	if (!err && att->n) {
		p->type = p->type == SIO_EVENT ? SIO_BINARY_EVENT : p->type == SIO_ACK ? SIO_BINARY_ACK : p->type;
		if (p->type != SIO_BINARY_EVENT && p->type != SIO_BINARY_ACK)
			err = -GW_EINVAL; /* bytes only where the JSON parser allows attachments */
		p->attachments = att->n;
	} else if (!err && p->data) {
		char *text = cJSON_PrintUnformatted(p->data);
		if (!text)
			err = -GW_ENOMEM;
		p->json = text;
		p->json_len = text ? strlen(text) : 0;
	}
	if (err)
		sio_mp_clear(p, att);
	return err;
}

void sio_mp_clear(sio_packet *p, sio_mp_att *att)
{
	cJSON_Delete(p->data);
	p->data = NULL;
	free((char *)p->json);
	p->json = NULL;
	for (unsigned i = 0; i < att->n; i++)
		free(att->data[i]);
	free(att->data);
	free(att->len);
	memset(att, 0, sizeof *att);
}

/* ---- encoding ---- */

static int put_be(gw_buf *o, uint8_t tag, uint64_t v, size_t n)
{
	uint8_t b[9];
	b[0] = tag;
	for (size_t i = 0; i < n; i++)
		b[1 + i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	return gw_buf_append(o, b, n + 1);
}

/* a length-prefixed header: fix form under fix_max, else the 8/16/32-bit tags */
static int put_len(gw_buf *o, size_t n, uint8_t fix, size_t fix_max, int t8, uint8_t t16, uint8_t t32)
{
	if (n < fix_max)
		return gw_buf_putc(o, (char)(fix | n));
	if (t8 >= 0 && n < 0x100)
		return put_be(o, (uint8_t)t8, n, 1);
	if (n < 0x10000)
		return put_be(o, t16, n, 2);
	return n <= 0xffffffffu ? put_be(o, t32, n, 4) : -GW_EINVAL;
}

static int put_str(gw_buf *o, const char *s, size_t n)
{
	return put_len(o, n, 0xa0, 32, 0xd9, 0xda, 0xdb) | gw_buf_append(o, s, n);
}

/* integers in their shortest form, as notepack writes them */
static int put_int(gw_buf *o, int64_t v)
{
	if (v >= 0) {
		if (v < 0x80)
			return gw_buf_putc(o, (char)v);
		if (v < 0x100)
			return put_be(o, 0xcc, (uint64_t)v, 1);
		if (v < 0x10000)
			return put_be(o, 0xcd, (uint64_t)v, 2);
		if (v < 0x100000000LL)
			return put_be(o, 0xce, (uint64_t)v, 4);
		return put_be(o, 0xcf, (uint64_t)v, 8);
	}
	if (v >= -0x20)
		return gw_buf_putc(o, (char)(uint8_t)v);
	if (v >= -0x80)
		return put_be(o, 0xd0, (uint64_t)v, 1);
	if (v >= -0x8000)
		return put_be(o, 0xd1, (uint64_t)v, 2);
	if (v >= -0x80000000LL)
		return put_be(o, 0xd2, (uint64_t)v, 4);
	return put_be(o, 0xd3, (uint64_t)v, 8);
}

static int put_value(gw_buf *o, const cJSON *v, gw_frame *const *att, size_t n_att, int depth)
{
	if (depth > 64)
		return -GW_EINVAL;
	if (cJSON_IsNull(v) || cJSON_IsInvalid(v))
		return gw_buf_putc(o, (char)0xc0);
	if (cJSON_IsBool(v))
		return gw_buf_putc(o, (char)(cJSON_IsTrue(v) ? 0xc3 : 0xc2));
	if (cJSON_IsString(v))
		return put_str(o, v->valuestring, strlen(v->valuestring));
	if (cJSON_IsRaw(v))
		return -GW_EINVAL;
	if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;
		if (d == floor(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0)
			return put_int(o, (int64_t)d);
		uint64_t u;
		memcpy(&u, &d, 8);
		return put_be(o, 0xcb, u, 8);
	}
	if (cJSON_IsObject(v) && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v, "_placeholder"))) {
		const cJSON *num = cJSON_GetObjectItemCaseSensitive(v, "num");
		if (!cJSON_IsNumber(num) || num->valuedouble < 0 || num->valuedouble >= (double)n_att ||
		    num->valuedouble != floor(num->valuedouble))
			return -GW_EINVAL;
		gw_frame *f = att[(size_t)num->valuedouble];
		return put_len(o, f->len, 0, 0, 0xc4, 0xc5, 0xc6) | gw_buf_append(o, gw_frame_data(f), f->len);
	}
	int n = cJSON_GetArraySize(v), err;
	if (cJSON_IsArray(v))
		err = put_len(o, (size_t)n, 0x90, 16, -1, 0xdc, 0xdd);
	else
		err = put_len(o, (size_t)n, 0x80, 16, -1, 0xde, 0xdf);
	for (const cJSON *c = v->child; c && !err; c = c->next) {
		if (cJSON_IsObject(v))
			err = put_str(o, c->string, strlen(c->string));
		if (!err)
			err = put_value(o, c, att, n_att, depth + 1);
	}
	return err;
}

int sio_mp_encode(gw_buf *out, sio_type type, const char *nsp, size_t nsp_len, int64_t id, const cJSON *data,
		  gw_frame *const *att, size_t n_att)
{
	if ((unsigned)type > SIO_BINARY_ACK)
		return -GW_EINVAL;
	int t = type == SIO_BINARY_EVENT ? SIO_EVENT : type == SIO_BINARY_ACK ? SIO_ACK : (int)type;
	size_t keys = 2 + (data != NULL) + (id != SIO_NO_ID);
	size_t mark = out->len;
	int err = gw_buf_putc(out, (char)(0x80 | keys)) | put_str(out, "type", 4) | put_int(out, t);
	if (!err && data)
		err = put_str(out, "data", 4) | put_value(out, data, att, n_att, 0);
	if (!err)
		err = put_str(out, "nsp", 3) | put_str(out, nsp, nsp_len);
	if (!err && id != SIO_NO_ID)
		err = put_str(out, "id", 2) | put_int(out, id);
	if (err)
		out->len = mark;
	return err ? (err == -GW_EINVAL ? -GW_EINVAL : -GW_ENOMEM) : 0;
}

gw_frame *sio_mp_from_frames(gw_frame *const *frames, size_t n)
{
	gw_frame *f = frames[0];
	const char *t = (const char *)gw_frame_data(f);
	if (f->binary || f->len < 1 || t[0] != '4')
		return NULL;
	sio_packet p;
	if (sio_decode(t + 1, f->len - 1, &p))
		return NULL;
	gw_buf b = {0};
	gw_frame *out = NULL;
	if (sio_mp_encode(&b, p.type, p.nsp, p.nsp_len, p.id, p.data, frames + 1, n - 1) == 0)
		out = gw_frame_from(b.data, b.len, true);
	gw_buf_free(&b);
	sio_packet_clear(&p);
	return out;
}
