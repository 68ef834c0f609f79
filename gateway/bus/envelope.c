/*
 * envelope.c — bus envelopes (see envelope.h, DESIGN §1.2).
 *
 * Field rules common to every inbound type:
 *  - unknown members are ignored (backends may add their own); a member that is JSON
 *    null counts as absent;
 *  - "id" is a non-empty string, or an integer (then normalized to its decimal text;
 *    beyond 2^53 cJSON has already rounded it, so backends should send strings);
 *  - "nsp" defaults to "/", must start with '/' and hold no ',';
 *  - "rooms", "except", "join", "leave": a string or an array of strings.
 * Error strings read "<type>: <what is wrong>" so one log line names the problem.
 *
 * Strings handed out (body.json, data_json, error_json, env_build_*) come from
 * cJSON_Print*, i.e. malloc while cJSON's default hooks are in place (nobody in the
 * gateway calls cJSON_InitHooks): free them with free().
 */
#include "bus/envelope.h"

#include <limits.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sio/sio_codec.h"
#include "util/base64.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/json_scan.h"
#include "util/names.h"
#include "util/utf8.h"

#define ACK_TIMEOUT_DEFAULT_MS 5000
#define MAX_EXACT_INT 9007199254740991.0 /* 2^53 - 1: beyond, doubles have rounded already */

typedef struct ctx {
	const char *src;  /* the envelope's text (valid JSON), for spans spliced verbatim */
	size_t src_len;
	const char *what; /* the envelope type, prefixes every error */
	char *err;
	size_t err_len;
	size_t max_payload;
} ctx;

static int fail(ctx *c, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(ctx *c, int rc, const char *fmt, ...)
{
	if (!c->err || !c->err_len)
		return rc;
	int n = c->what ? snprintf(c->err, c->err_len, "%s: ", c->what) : 0;
	if (n < 0 || (size_t)n >= c->err_len)
		return rc;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err + n, c->err_len - (size_t)n, fmt, ap);
	va_end(ap);
	return rc;
}

/* No libm: core_dep does not link it. The range check makes the cast defined (and
 * rejects NaN). */
static bool is_int(double d, double lo, double hi)
{
	return d >= lo && d <= hi && (double)(int64_t)d == d;
}

static int nomem(ctx *c) { return fail(c, -GW_ENOMEM, "out of memory"); }

/* The member, or NULL when absent or null. Lookups are case-sensitive. */
static cJSON *opt(const cJSON *obj, const char *key)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	return cJSON_IsNull(v) ? NULL : v;
}

static int get_string(ctx *c, const cJSON *obj, const char *key, bool required, char **out)
{
	const cJSON *v = opt(obj, key);
	if (!v)
		return required ? fail(c, -GW_EINVAL, "missing \"%s\"", key) : 0;
	if (!cJSON_IsString(v))
		return fail(c, -GW_EINVAL, "\"%s\" must be a string", key);
	if (required && !v->valuestring[0])
		return fail(c, -GW_EINVAL, "\"%s\" must not be empty", key);
	*out = strdup(v->valuestring);
	return *out ? 0 : nomem(c);
}

static int get_bool(ctx *c, const cJSON *obj, const char *key, bool required, bool *out)
{
	const cJSON *v = opt(obj, key);
	if (!v)
		return required ? fail(c, -GW_EINVAL, "missing \"%s\"", key) : 0;
	if (!cJSON_IsBool(v))
		return fail(c, -GW_EINVAL, "\"%s\" must be a boolean", key);
	*out = cJSON_IsTrue(v);
	return 0;
}

static int get_id(ctx *c, const cJSON *obj, const char *key, char **out)
{
	const cJSON *v = opt(obj, key);
	if (!v)
		return fail(c, -GW_EINVAL, "missing \"%s\"", key);
	if (cJSON_IsString(v))
		return get_string(c, obj, key, true, out);
	if (!cJSON_IsNumber(v) || !is_int(v->valuedouble, -MAX_EXACT_INT, MAX_EXACT_INT))
		return fail(c, -GW_EINVAL, "\"%s\" must be a string or an integer", key);
	double d = v->valuedouble;
	char tmp[32];
	snprintf(tmp, sizeof tmp, "%.0f", d == 0 ? 0.0 : d); /* no "-0" */
	*out = strdup(tmp);
	return *out ? 0 : nomem(c);
}

static void free_list(char **l, size_t n)
{
	for (size_t i = 0; l && i < n; i++)
		free(l[i]);
	free(l);
}

/* A string or an array of strings; absent gives an empty list (or an error). */
static int get_list(ctx *c, const cJSON *obj, const char *key, bool required, char ***out,
		    size_t *n_out)
{
	const cJSON *v = opt(obj, key);
	if (!v)
		return required ? fail(c, -GW_EINVAL, "missing \"%s\"", key) : 0;
	size_t n = 0;
	if (cJSON_IsString(v)) {
		n = 1;
	} else if (cJSON_IsArray(v)) {
		for (const cJSON *s = v->child; s; s = s->next, n++)
			if (!cJSON_IsString(s))
				return fail(c, -GW_EINVAL,
					    "\"%s\" must be a string or an array of strings", key);
	} else {
		return fail(c, -GW_EINVAL, "\"%s\" must be a string or an array of strings", key);
	}
	if (n == 0)
		return 0;
	char **l = calloc(n, sizeof *l);
	if (!l)
		return nomem(c);
	const cJSON *s = cJSON_IsString(v) ? v : v->child;
	for (size_t i = 0; i < n; i++, s = s->next) {
		l[i] = strdup(s->valuestring);
		if (!l[i]) {
			free_list(l, i);
			return nomem(c);
		}
	}
	*out = l;
	*n_out = n;
	return 0;
}

static int get_target(ctx *c, const cJSON *root, env_target *t)
{
	const cJSON *nsp = opt(root, "nsp");
	if (nsp && (!cJSON_IsString(nsp) || nsp->valuestring[0] != '/'))
		return fail(c, -GW_EINVAL, "\"nsp\" must be a string starting with '/'");
	if (nsp && strchr(nsp->valuestring, ','))
		return fail(c, -GW_EINVAL, "\"nsp\" must not contain ','");
	t->nsp = strdup(nsp ? nsp->valuestring : "/");
	if (!t->nsp)
		return nomem(c);
	int rc = get_list(c, root, "rooms", false, &t->rooms, &t->n_rooms);
	if (!rc)
		rc = get_list(c, root, "except", false, &t->except, &t->n_except);
	return rc;
}

/* ---- spans of the envelope's own text ----
 * "data" travels verbatim: its text is spliced into the Socket.IO packet instead of
 * printed again from cJSON's tree, whose numbers are doubles (an integer id of 16 digits
 * would come out as 1.76476326212346e+15). The text was already validated by cJSON, so
 * these only skip over it. */

/* s[i] is '"': the index after the closing quote; *esc says whether it held escapes. */
static size_t skip_string(const char *s, size_t i, size_t n, bool *esc)
{
	for (i++; i < n && s[i] != '"'; i++)
		if (s[i] == '\\') {
			*esc = true;
			i++;
		}
	return i + 1;
}

/* The index after the value starting at s[i]. */
static size_t skip_value(const char *s, size_t i, size_t n)
{
	int depth = 0;
	bool esc;
	do {
		if (s[i] == '"') {
			i = skip_string(s, i, n, &esc);
			continue;
		}
		if (s[i] == '{' || s[i] == '[')
			depth++;
		else if (s[i] == '}' || s[i] == ']')
			depth--;
		else if (depth == 0 && (s[i] == ',' || s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
			return i;
		i++;
	} while (i < n && (depth > 0 || (s[i] != ',' && s[i] != '}' && s[i] != ']')));
	return i;
}

/* The text of the top-level member `key` of the object in c->src (the first one, as
 * cJSON finds it). false when absent, or when a key before it was escaped (then a match
 * could hide behind the escape: the caller prints the tree instead). */
static bool raw_member(const ctx *c, const char *key, const char **v, size_t *vl)
{
	const char *s = c->src;
	size_t n = c->src_len, i = s ? gw_json_ws(s, 0, n) : 0, kl = strlen(key);
	if (!s || i >= n || s[i] != '{')
		return false;
	for (i = gw_json_ws(s, i + 1, n); i < n && s[i] == '"';) {
		bool esc = false;
		size_t k0 = i + 1, k1 = skip_string(s, i, n, &esc) - 1;
		if (esc)
			return false;
		i = gw_json_ws(s, k1 + 1, n);
		if (i >= n || s[i] != ':')
			return false;
		i = gw_json_ws(s, i + 1, n);
		size_t v0 = i;
		i = skip_value(s, i, n);
		if (k1 - k0 == kl && memcmp(s + k0, key, kl) == 0) {
			*v = s + v0;
			*vl = i - v0;
			return true;
		}
		i = gw_json_ws(s, i, n);
		if (i < n && s[i] == ',')
			i = gw_json_ws(s, i + 1, n);
	}
	return false;
}

/* Whether the JSON text s[0..n) has no raw control byte but JSON whitespace outside
 * strings, and none inside: cJSON accepts them (it skips any byte ≤ 32 between tokens),
 * JSON — and so every client's and backend's parser — does not. Such text is not
 * spliced; the tree is printed instead, with the bytes escaped. */
static bool splice_ok(const char *s, size_t n)
{
	bool in = false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x20 && (in || (ch != '\t' && ch != '\n' && ch != '\r')))
			return false;
		if (in && ch == '\\')
			i++;
		else if (ch == '"')
			in = !in;
	}
	return true;
}

/* [event, ...data] into o: the data array's inside (v[0..vl), "[...]" or absent when v
 * is NULL) spliced after the event name. */
static int put_args(gw_buf *o, const char *event, const char *v, size_t vl)
{
	int err = gw_buf_putc(o, '[') | gw_buf_put_json_string(o, event, strlen(event));
	if (v) {
		size_t a = gw_json_ws(v, 1, vl), z = vl - 1;
		if (a < z)
			err |= gw_buf_putc(o, ',') | gw_buf_append(o, v + a, z - a);
	}
	return err | gw_buf_putc(o, ']');
}

/* The packet's argument array as text: [event, ...data] (event NULL: data itself),
 * data spliced from the envelope's own text. NULL when there is no such text. */
static char *raw_args(const ctx *c, const char *event)
{
	const char *v;
	size_t vl;
	if (!raw_member(c, "data", &v, &vl) || !vl || v[0] != '[' || !splice_ok(v, vl))
		return NULL;
	gw_buf o = {0};
	int err = event ? put_args(&o, event, v, vl) : gw_buf_append(&o, v, vl);
	if (err) {
		gw_buf_free(&o);
		return NULL;
	}
	size_t len;
	return (char *)gw_buf_steal(&o, &len);
}

/* args (consumed): the JSON array of a packet with $binary values. Fills the body with
 * its placeholder form and one binary frame per attachment. Without binary values the
 * text is the envelope's own (raw_args: event is the name in front, NULL for an ack). */
static int make_body(ctx *c, cJSON *args, env_body *b, const char *event)
{
	uint8_t **att = NULL;
	size_t *att_len = NULL;
	int n = sio_binary_to_placeholders(args, &att, &att_len);
	int rc = 0;
	if (n < 0) {
		rc = n == -GW_EINVAL ? fail(c, n, "\"data\": invalid base64 in a \"$binary\" value")
				     : nomem(c);
		goto out;
	}
	if (n > SIO_MAX_ATTACHMENTS) {
		rc = fail(c, -GW_ETOOBIG, "\"data\": %d binary values (at most %d)", n,
			  SIO_MAX_ATTACHMENTS);
		goto out;
	}
	size_t total = 0;
	for (int i = 0; i < n; i++)
		total += att_len[i];
	b->json = n == 0 && c->src ? raw_args(c, event) : NULL;
	if (!b->json)
		b->json = cJSON_PrintUnformatted(args);
	if (!b->json) {
		rc = nomem(c);
		goto out;
	}
	b->json_len = strlen(b->json);
	total += b->json_len;
	if (c->max_payload && total > c->max_payload) {
		rc = fail(c, -GW_ETOOBIG, "payload of %zu bytes exceeds the limit of %zu", total,
			  c->max_payload);
		goto out;
	}
	if (n) {
		b->att = calloc((size_t)n, sizeof *b->att);
		if (!b->att) {
			rc = nomem(c);
			goto out;
		}
		for (int i = 0; i < n; i++, b->n_att++) {
			b->att[i] = gw_frame_from(att[i], att_len[i], true);
			if (!b->att[i]) {
				rc = nomem(c);
				goto out;
			}
		}
	}
out:
	for (int i = 0; i < n; i++)
		free(att[i]);
	free(att);
	free(att_len);
	cJSON_Delete(args);
	return rc;
}

/* The "data" array of root, detached (absent: a new empty array). */
static int take_data(ctx *c, cJSON *root, cJSON **out)
{
	cJSON *d = opt(root, "data");
	if (d && !cJSON_IsArray(d))
		return fail(c, -GW_EINVAL, "\"data\" must be an array");
	*out = d ? cJSON_DetachItemViaPointer(root, d) : cJSON_CreateArray();
	return *out ? 0 : nomem(c);
}

/* frames[0] = "4" + the EVENT / BINARY_EVENT packet, frames[1..] = the attachments. */
static int make_frames(ctx *c, env_in *e)
{
	unsigned n_att = (unsigned)e->body.n_att;
	gw_buf hdr = {0};
	int rc = sio_encode(&hdr, n_att ? SIO_BINARY_EVENT : SIO_EVENT, e->target.nsp, SIO_NO_ID,
			    n_att, NULL, 0);
	if (rc) {
		gw_buf_free(&hdr);
		return rc == -GW_ENOMEM ? nomem(c) : fail(c, rc, "cannot encode the packet");
	}
	e->frames = calloc(1 + e->body.n_att, sizeof *e->frames);
	gw_frame *f = e->frames ? gw_frame_new(1 + hdr.len + e->body.json_len, false) : NULL;
	if (!f) {
		gw_buf_free(&hdr);
		return nomem(c);
	}
	uint8_t *p = gw_frame_data(f);
	p[0] = '4';
	memcpy(p + 1, hdr.data, hdr.len);
	memcpy(p + 1 + hdr.len, e->body.json, e->body.json_len);
	gw_buf_free(&hdr);
	e->frames[0] = f;
	for (size_t i = 0; i < e->body.n_att; i++)
		e->frames[1 + i] = gw_frame_ref(e->body.att[i]);
	e->n_frames = 1 + e->body.n_att;
	return 0;
}

static int parse_emit(ctx *c, cJSON *root, env_in *e)
{
	int rc = get_target(c, root, &e->target);
	if (rc)
		return rc;
	const cJSON *ev = opt(root, "event");
	if (!ev)
		return fail(c, -GW_EINVAL, "missing \"event\"");
	if (!cJSON_IsString(ev))
		return fail(c, -GW_EINVAL, "\"event\" must be a string");
	if (gw_event_reserved(ev->valuestring))
		return fail(c, -GW_EINVAL, "\"event\" \"%s\" is a reserved name", ev->valuestring);
	e->event = strdup(ev->valuestring);
	if (!e->event)
		return nomem(c);
	if ((rc = get_bool(c, root, "volatile", false, &e->volatile_)))
		return rc;

	const cJSON *ack = opt(root, "ack");
	if (ack) {
		if (!cJSON_IsObject(ack))
			return fail(c, -GW_EINVAL, "\"ack\" must be an object");
		ctx ac = *c;
		ac.what = "emit: ack";
		if ((rc = get_string(&ac, ack, "reply_to", true, &e->reply_to)) ||
		    (rc = get_id(&ac, ack, "id", &e->id)))
			return rc;
		e->timeout_ms = ACK_TIMEOUT_DEFAULT_MS;
		const cJSON *t = opt(ack, "timeout_ms");
		if (t) {
			if (!cJSON_IsNumber(t) || !is_int(t->valuedouble, 1, INT_MAX))
				return fail(&ac, -GW_EINVAL,
					    "\"timeout_ms\" must be an integer from 1 to %d", INT_MAX);
			e->timeout_ms = (int)t->valuedouble;
		}
		e->has_ack = true;
	}

	cJSON *args;
	if ((rc = take_data(c, root, &args)))
		return rc;
	cJSON *name = cJSON_CreateString(e->event);
	if (!name || !cJSON_InsertItemInArray(args, 0, name)) {
		cJSON_Delete(name);
		cJSON_Delete(args);
		return nomem(c);
	}
	if ((rc = make_body(c, args, &e->body, e->event)))
		return rc;
	return e->has_ack ? 0 : make_frames(c, e);
}

static int parse_join_leave(ctx *c, cJSON *root, env_in *e, const char *key)
{
	int rc = get_target(c, root, &e->target);
	return rc ? rc : get_list(c, root, key, true, &e->change, &e->n_change);
}

static int parse_disconnect(ctx *c, cJSON *root, env_in *e)
{
	int rc = get_target(c, root, &e->target);
	return rc ? rc : get_bool(c, root, "close", false, &e->close);
}

static int parse_fetch(ctx *c, cJSON *root, env_in *e)
{
	int rc = get_target(c, root, &e->target);
	if (!rc)
		rc = get_string(c, root, "reply_to", true, &e->reply_to);
	return rc ? rc : get_id(c, root, "id", &e->id);
}

static int parse_ack(ctx *c, cJSON *root, env_in *e)
{
	int rc = get_id(c, root, "id", &e->id);
	cJSON *args;
	if (rc || (rc = take_data(c, root, &args)))
		return rc;
	return make_body(c, args, &e->body, NULL);
}

static int print_json(ctx *c, const cJSON *v, char **out)
{
	*out = cJSON_PrintUnformatted(v);
	return *out ? 0 : nomem(c);
}

static int parse_connect_result(ctx *c, cJSON *root, env_in *e)
{
	int rc = get_id(c, root, "id", &e->id);
	if (rc || (rc = get_bool(c, root, "ok", true, &e->ok)))
		return rc;
	if (e->ok) {
		const cJSON *data = opt(root, "data");
		return data ? print_json(c, data, &e->data_json) : 0;
	}
	/* error: {"message"?: string, "data"?: any} or a bare message string */
	const cJSON *err = opt(root, "error");
	const cJSON *msg = NULL, *data = NULL;
	if (cJSON_IsString(err)) {
		msg = err;
	} else if (cJSON_IsObject(err)) {
		msg = opt(err, "message");
		data = opt(err, "data");
		if (msg && !cJSON_IsString(msg))
			return fail(c, -GW_EINVAL, "\"error.message\" must be a string");
	} else if (err) {
		return fail(c, -GW_EINVAL, "\"error\" must be an object or a string");
	}
	cJSON *o = cJSON_CreateObject();
	if (!o || !cJSON_AddStringToObject(o, "message", msg ? msg->valuestring : "Not authorized"))
		goto oom;
	if (data) {
		cJSON *dup = cJSON_Duplicate(data, 1);
		if (!dup || !cJSON_AddItemToObject(o, "data", dup)) {
			cJSON_Delete(dup);
			goto oom;
		}
	}
	rc = print_json(c, o, &e->error_json);
	cJSON_Delete(o);
	return rc;
oom:
	cJSON_Delete(o);
	return nomem(c);
}


/* ---- the fast path: a plain emit, without a tree ----
 * Most envelopes are emits of plain data to a room: they are validated by a strict scan
 * (util/json_scan.h), their few fields read from the text and their data spliced as it
 * is, with no cJSON tree built and freed. Anything else — another type, an emit with
 * "ack", an escaped key or string, data that could hold a $binary value, text the strict
 * scan refuses, a field of the wrong kind — answers 1, and the tree's way decides,
 * error messages included: the fast path changes no outcome, only its cost. */

typedef struct span {
	const char *p; /* NULL: absent (or null) */
	size_t n;
	unsigned flags;
} span;

static bool span_is(const span *v, const char *lit)
{
	size_t n = strlen(lit);
	return v->p && v->n == n && memcmp(v->p, lit, n) == 0;
}

/* A string value without escapes, as a new C string; NULL when it is not one. */
static char *span_str(const span *v)
{
	if (!v->p || v->n < 2 || v->p[0] != '"' || (v->flags & GW_JSON_ESCAPED))
		return NULL;
	char *r = malloc(v->n - 1);
	if (r) {
		memcpy(r, v->p + 1, v->n - 2);
		r[v->n - 2] = 0;
	}
	return r;
}

/* A string or an array of strings (none escaped) into *out; 1: not one (or no memory). */
static int span_list(const span *v, char ***out, size_t *n_out)
{
	if (!v->p)
		return 0;
	if (v->flags & GW_JSON_ESCAPED)
		return 1;
	const char *s = v->p;
	size_t n = v->n, i = 0, cnt = 0;
	if (s[0] == '"') {
		cnt = 1;
	} else if (s[0] == '[') {
		for (i = gw_json_ws(s, 1, n); i < n && s[i] == '"';) {
			unsigned f = 0;
			i = gw_json_value(s, i, n, 1, &f);
			cnt++;
			i = gw_json_ws(s, i, n);
			if (i < n && s[i] == ',')
				i = gw_json_ws(s, i + 1, n);
		}
		if (i + 1 != n)
			return 1; /* something else than a string in it */
	} else {
		return 1;
	}
	if (!cnt)
		return 0;
	char **l = calloc(cnt, sizeof *l);
	if (!l)
		return 1;
	size_t k = 0;
	for (i = s[0] == '[' ? 1 : 0; k < cnt; k++) {
		while (s[i] != '"')
			i++;
		unsigned f = 0;
		size_t e = gw_json_value(s, i, n, 1, &f);
		span one = {.p = s + i, .n = e - i};
		if (!(l[k] = span_str(&one))) {
			free_list(l, k);
			return 1;
		}
		i = e;
	}
	*out = l;
	*n_out = cnt;
	return 0;
}

/* The members of the top-level object that an emit reads (the first of each, as
 * cJSON's lookup finds); 1 when the text is not a plain object of them. */
typedef struct emit_spans {
	span type, nsp, rooms, except, event, vol, ack, data;
} emit_spans;

static int scan_emit(const char *s, size_t n, emit_spans *m)
{
	static const struct {
		const char *key;
		size_t off;
	} keys[] = {
		{"type", offsetof(emit_spans, type)},   {"nsp", offsetof(emit_spans, nsp)},
		{"rooms", offsetof(emit_spans, rooms)}, {"except", offsetof(emit_spans, except)},
		{"event", offsetof(emit_spans, event)}, {"volatile", offsetof(emit_spans, vol)},
		{"ack", offsetof(emit_spans, ack)},     {"data", offsetof(emit_spans, data)},
	};
	size_t i = gw_json_ws(s, 0, n);
	if (i >= n || s[i] != '{')
		return 1;
	i = gw_json_ws(s, i + 1, n);
	while (i < n && s[i] == '"') {
		unsigned kf = 0, vf = 0;
		size_t k0 = i + 1, ke = gw_json_value(s, i, n, 1, &kf);
		if (ke == GW_JSON_BAD || kf)
			return 1;
		i = gw_json_ws(s, ke, n);
		if (i >= n || s[i] != ':')
			return 1;
		size_t v0 = gw_json_ws(s, i + 1, n), ve = gw_json_value(s, v0, n, 64, &vf);
		if (ve == GW_JSON_BAD)
			return 1;
		for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
			span *d = (span *)((char *)m + keys[k].off);
			if (strlen(keys[k].key) == ke - 1 - k0 && memcmp(keys[k].key, s + k0, ke - 1 - k0) == 0) {
				bool null = ve - v0 == 4 && memcmp(s + v0, "null", 4) == 0;
				if (!d->p && !d->n && !null)
					*d = (span){.p = s + v0, .n = ve - v0, .flags = vf};
				d->n = d->n ? d->n : 1; /* seen: a later duplicate is ignored */
				break;
			}
		}
		i = gw_json_ws(s, ve, n);
		if (i >= n || s[i] != ',')
			break; /* the end of the object, or not JSON */
		i = gw_json_ws(s, i + 1, n);
		if (i >= n || s[i] != '"')
			return 1;
	}
	if (i >= n || s[i] != '}' || gw_json_ws(s, i + 1, n) != n)
		return 1;
	return 0;
}

/* 0 with *out, or 1: the tree decides. */
static int fast_emit(ctx *c, env_in **out)
{
	emit_spans m = {0};
	if (scan_emit(c->src, c->src_len, &m) || !span_is(&m.type, "\"emit\"") || m.ack.p)
		return 1;
	const span *d = &m.data;
	/* data: an array that cannot hold a $binary value (nor spell one with escapes) */
	if (d->p && (d->p[0] != '[' || (d->flags & GW_JSON_UESCAPE) || memmem(d->p, d->n, "$binary", 7)))
		return 1;
	if (m.vol.p && !span_is(&m.vol, "true") && !span_is(&m.vol, "false"))
		return 1;
	env_in *e = calloc(1, sizeof *e);
	if (!e)
		return 1;
	e->type = ENV_EMIT;
	e->volatile_ = span_is(&m.vol, "true");
	e->target.nsp = m.nsp.p ? span_str(&m.nsp) : strdup("/");
	e->event = span_str(&m.event);
	if (!e->target.nsp || e->target.nsp[0] != '/' || strchr(e->target.nsp, ',') || !e->event ||
	    gw_event_reserved(e->event) || span_list(&m.rooms, &e->target.rooms, &e->target.n_rooms) ||
	    span_list(&m.except, &e->target.except, &e->target.n_except))
		goto slow;
	/* ["event", ...data] */
	gw_buf o = {0};
	int err = put_args(&o, e->event, d->p, d->n);
	if (err || (c->max_payload && o.len > c->max_payload)) {
		gw_buf_free(&o);
		goto slow;
	}
	e->body.json = (char *)gw_buf_steal(&o, &e->body.json_len);
	if (make_frames(c, e))
		goto slow;
	*out = e;
	return 0;
slow:
	env_in_free(e);
	return 1;
}

static int parse(const void *buf, size_t len, size_t max_payload, env_in **out, char *err,
		 size_t err_len, bool fast)
{
	ctx c = {.src = buf, .src_len = len, .what = NULL, .err = err, .err_len = err_len, .max_payload = max_payload};
	*out = NULL;
	if (err && err_len)
		err[0] = 0;
	/* what reaches clients in text frames must be UTF-8 (RFC 6455 §8.1) */
	if (!gw_utf8_valid(buf, len))
		return fail(&c, -GW_EINVAL, "envelope is not valid UTF-8");
	if (fast && fast_emit(&c, out) == 0)
		return 0;
	const char *end = NULL;
	cJSON *root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
	if (!root)
		return fail(&c, -GW_EINVAL, "invalid JSON at byte %zu",
			    end ? (size_t)(end - (const char *)buf) : 0);
	size_t used = (size_t)(end - (const char *)buf);
	const char *s = buf;
	while (used < len && (s[used] == ' ' || s[used] == '\t' || s[used] == '\n' || s[used] == '\r'))
		used++;
	int rc;
	env_in *e = NULL;
	if (used != len) {
		rc = fail(&c, -GW_EINVAL, "trailing data after the JSON value at byte %zu", used);
		goto done;
	}
	if (!cJSON_IsObject(root)) {
		rc = fail(&c, -GW_EINVAL, "envelope must be a JSON object");
		goto done;
	}
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "type");
	if (!type) {
		rc = fail(&c, -GW_EINVAL, "missing \"type\"");
		goto done;
	}
	if (!cJSON_IsString(type)) {
		rc = fail(&c, -GW_EINVAL, "\"type\" must be a string");
		goto done;
	}
	e = calloc(1, sizeof *e);
	if (!e) {
		rc = nomem(&c);
		goto done;
	}
	const char *t = type->valuestring;
	c.what = t;
	if (strcmp(t, "emit") == 0) {
		e->type = ENV_EMIT;
		rc = parse_emit(&c, root, e);
	} else if (strcmp(t, "join") == 0) {
		e->type = ENV_JOIN;
		rc = parse_join_leave(&c, root, e, "join");
	} else if (strcmp(t, "leave") == 0) {
		e->type = ENV_LEAVE;
		rc = parse_join_leave(&c, root, e, "leave");
	} else if (strcmp(t, "disconnect") == 0) {
		e->type = ENV_DISCONNECT;
		rc = parse_disconnect(&c, root, e);
	} else if (strcmp(t, "fetch") == 0) {
		e->type = ENV_FETCH;
		rc = parse_fetch(&c, root, e);
	} else if (strcmp(t, "ack") == 0) {
		e->type = ENV_ACK;
		rc = parse_ack(&c, root, e);
	} else if (strcmp(t, "connect_result") == 0) {
		e->type = ENV_CONNECT_RESULT;
		rc = parse_connect_result(&c, root, e);
	} else {
		c.what = NULL;
		rc = fail(&c, -GW_EINVAL, "unknown type \"%.40s\"", t);
	}
done:
	cJSON_Delete(root);
	if (rc) {
		env_in_free(e);
		return rc;
	}
	*out = e;
	return 0;
}

int env_parse(const void *buf, size_t len, size_t max_payload, env_in **out, char *err, size_t err_len)
{
	return parse(buf, len, max_payload, out, err, err_len, true);
}

int env_parse_tree(const void *buf, size_t len, size_t max_payload, env_in **out, char *err,
		   size_t err_len)
{
	return parse(buf, len, max_payload, out, err, err_len, false);
}

int env_parse_fast(const void *buf, size_t len, size_t max_payload, env_in **out)
{
	ctx c = {.src = buf, .src_len = len, .max_payload = max_payload};
	*out = NULL;
	return gw_utf8_valid(buf, len) ? fast_emit(&c, out) : 1;
}

env_in *env_in_ref(env_in *e)
{
	atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
	return e;
}

void env_in_free(env_in *e)
{
	if (!e || atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) > 0)
		return;
	free(e->target.nsp);
	free_list(e->target.rooms, e->target.n_rooms);
	free_list(e->target.except, e->target.n_except);
	free(e->event);
	free(e->body.json);
	for (size_t i = 0; i < e->body.n_att; i++)
		gw_frame_unref(e->body.att[i]);
	free(e->body.att);
	for (size_t i = 0; e->frames && i < e->n_frames; i++)
		gw_frame_unref(e->frames[i]);
	free(e->frames);
	free_list(e->change, e->n_change);
	free(e->reply_to);
	free(e->id);
	free(e->data_json);
	free(e->error_json);
	free(e);
}

/* ---- outbound ---- */

/* Adds key: s (a NULL s fails, which the builders turn into a NULL result). */
static bool add_str(cJSON *o, const char *key, const char *s)
{
	return s && cJSON_AddStringToObject(o, key, s);
}

static char *finish(cJSON *o, bool ok)
{
	char *s = ok ? cJSON_PrintUnformatted(o) : NULL;
	cJSON_Delete(o);
	return s;
}

static cJSON *head(const char *type, const char *nsp, const char *sid, const char *node)
{
	cJSON *o = cJSON_CreateObject();
	if (o && add_str(o, "type", type) && add_str(o, "nsp", nsp) && (!sid || add_str(o, "sid", sid)) &&
	    (!node || add_str(o, "node", node)))
		return o;
	cJSON_Delete(o);
	return NULL;
}

char *env_build_connect(const char *nsp, const char *sid, const char *node,
			const char *handshake_json, const char *claims_json, const char *id,
			const char *reply_to, bool recovered, const char *data_json)
{
	cJSON *o = head("connect", nsp, sid, node);
	if (!o || !node)
		return finish(o, false);
	/* raw: the text is already JSON (built by the gateway), no parse and print again */
	bool ok = cJSON_AddRawToObject(o, "handshake", handshake_json ? handshake_json : "{}") != NULL;
	if (ok && claims_json)
		ok = cJSON_AddRawToObject(o, "claims", claims_json) != NULL;
	if (ok && id)
		ok = add_str(o, "id", id);
	if (ok && reply_to)
		ok = add_str(o, "reply_to", reply_to);
	if (ok && recovered)
		ok = cJSON_AddTrueToObject(o, "recovered") != NULL &&
		     (!data_json || cJSON_AddRawToObject(o, "data", data_json) != NULL);
	return finish(o, ok);
}

static cJSON *string_array(const char *const *v, size_t n)
{
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; a && i < n; i++) {
		cJSON *s = v[i] ? cJSON_CreateString(v[i]) : NULL;
		if (!s || !cJSON_AddItemToArray(a, s)) {
			cJSON_Delete(s);
			cJSON_Delete(a);
			return NULL;
		}
	}
	return a;
}

char *env_build_disconnect(const char *nsp, const char *sid, const char *node,
			   const char *reason, const char *const *rooms, size_t n_rooms, bool recoverable)
{
	cJSON *o = head("disconnect", nsp, sid, node);
	if (!o || !node || !add_str(o, "reason", reason) || (recoverable && !cJSON_AddTrueToObject(o, "recoverable")))
		return finish(o, false);
	cJSON *a = string_array(rooms, n_rooms);
	if (!a || !cJSON_AddItemToObject(o, "rooms", a)) {
		cJSON_Delete(a);
		return finish(o, false);
	}
	return finish(o, true);
}

/* finish() with a "data" member spliced in as text (a JSON array, no tree printed). */
static char *finish_with_data(cJSON *o, bool ok, const char *data, size_t len)
{
	char *s = finish(o, ok);
	if (!s)
		return NULL;
	gw_buf b = {0};
	size_t n = strlen(s); /* ends with '}' */
	int err = gw_buf_append(&b, s, n - 1) | gw_buf_puts(&b, n > 2 ? ",\"data\":" : "\"data\":") |
		  gw_buf_append(&b, data, len) | gw_buf_putc(&b, '}');
	free(s);
	if (err) {
		gw_buf_free(&b);
		return NULL;
	}
	return (char *)gw_buf_steal(&b, &n);
}

char *env_build_event(const char *nsp, const char *sid, const char *node, const cJSON *args,
		      const char *text, size_t text_len, const uint8_t *const *att, const size_t *att_len,
		      unsigned n_att, const char *ack_id, const char *reply_to)
{
	if (!cJSON_IsArray(args) || !cJSON_IsString(args->child))
		return NULL;
	cJSON *o = head("event", nsp, sid, node);
	if (!o || !node)
		return finish(o, false);
	if (text && text_len >= 2 && text[0] == '[' && splice_ok(text, text_len)) {
		/* data verbatim: the client's array after its first element, the name */
		size_t i = skip_value(text, gw_json_ws(text, 1, text_len), text_len);
		i = gw_json_ws(text, i, text_len);
		if (i < text_len && text[i] == ',')
			i++;
		gw_buf d = {0};
		int err = gw_buf_putc(&d, '[') | gw_buf_append(&d, text + i, text_len - 1 - i) | gw_buf_putc(&d, ']');
		bool ok = !err && add_str(o, "event", args->child->valuestring);
		if (ok && ack_id) {
			cJSON *a = cJSON_AddObjectToObject(o, "ack");
			ok = a && add_str(a, "id", ack_id) && (!reply_to || add_str(a, "reply_to", reply_to));
		}
		char *s = finish_with_data(o, ok, (const char *)d.data, d.len);
		gw_buf_free(&d);
		return s;
	}
	/* Copy: the placeholders are rewritten, and args belongs to the caller. */
	cJSON *data = cJSON_Duplicate(args, 1);
	if (!data || sio_placeholders_to_binary(data, att, att_len, n_att)) {
		cJSON_Delete(data);
		return finish(o, false);
	}
	cJSON *name = cJSON_DetachItemFromArray(data, 0);
	if (!cJSON_AddItemToObject(o, "event", name)) {
		cJSON_Delete(name);
		cJSON_Delete(data);
		return finish(o, false);
	}
	if (!cJSON_AddItemToObject(o, "data", data)) {
		cJSON_Delete(data);
		return finish(o, false);
	}
	if (ack_id) {
		cJSON *a = cJSON_AddObjectToObject(o, "ack");
		if (!a || !add_str(a, "id", ack_id) || (reply_to && !add_str(a, "reply_to", reply_to)))
			return finish(o, false);
	}
	return finish(o, true);
}

char *env_build_room(const char *type, const char *nsp, const char *sid, const char *node,
		     const char *room)
{
	cJSON *o = head(type, nsp, sid, node);
	return finish(o, o && add_str(o, "room", room));
}

char *env_build_client_ack(const char *id, const char *sid, const cJSON *args, const char *text,
			   size_t text_len, const uint8_t *const *att, const size_t *att_len, unsigned n_att)
{
	cJSON *o = cJSON_CreateObject();
	if (!o || !add_str(o, "type", "ack") || !add_str(o, "id", id) || !add_str(o, "sid", sid))
		return finish(o, false);
	if (text && text_len && splice_ok(text, text_len))
		return finish_with_data(o, true, text, text_len); /* verbatim */
	cJSON *data = args ? cJSON_Duplicate(args, 1) : cJSON_CreateArray();
	if (!data || sio_placeholders_to_binary(data, att, att_len, n_att) ||
	    !cJSON_AddItemToObject(o, "data", data)) {
		cJSON_Delete(data);
		return finish(o, false);
	}
	return finish(o, true);
}

char *env_build_ack_done(const char *id, const char *node, size_t acked, size_t timed_out)
{
	cJSON *o = cJSON_CreateObject();
	bool ok = o && add_str(o, "type", "ack_done") && add_str(o, "id", id) &&
		  add_str(o, "node", node) && cJSON_AddNumberToObject(o, "acked", (double)acked) &&
		  cJSON_AddNumberToObject(o, "timed_out", (double)timed_out);
	return finish(o, ok);
}

char *env_build_sockets(const char *id, const char *node, cJSON *sockets)
{
	cJSON *o = cJSON_CreateObject();
	bool ok = o && add_str(o, "type", "sockets") && add_str(o, "id", id) &&
		  add_str(o, "node", node);
	if (ok && cJSON_AddItemToObject(o, "sockets", sockets))
		return finish(o, true);
	cJSON_Delete(sockets);
	return finish(o, false);
}

int env_from_route(const char *nsp, const char *event, const char *room, const void *body,
		   size_t len, size_t max_payload, env_in **out)
{
	ctx c = {.what = "route", .max_payload = max_payload};
	gw_buf src = {0}; /* a JSON body as an envelope's text, for make_body */
	*out = NULL;
	env_in *e = calloc(1, sizeof *e);
	if (!e)
		return -GW_ENOMEM;
	e->type = ENV_EMIT;
	int rc = -GW_ENOMEM;
	e->target.nsp = strdup(nsp);
	e->event = strdup(event);
	if (!e->target.nsp || !e->event)
		goto fail;
	if (room) {
		e->target.rooms = calloc(1, sizeof *e->target.rooms);
		if (!e->target.rooms || !(e->target.rooms[0] = strdup(room)))
			goto fail;
		e->target.n_rooms = 1;
	}
	/* the body is the single argument: JSON if it parses, else a string, else bytes */
	cJSON *arg = NULL;
	const char *end = NULL;
	bool utf8 = gw_utf8_valid(body, len);
	if (len && utf8)
		arg = cJSON_ParseWithLengthOpts(body, len, &end, 0);
	if (arg && (size_t)(end - (const char *)body) != len) {
		size_t used = (size_t)(end - (const char *)body);
		const char *s = body;
		while (used < len && (s[used] == ' ' || s[used] == '\t' || s[used] == '\n' || s[used] == '\r'))
			used++;
		if (used != len) {
			cJSON_Delete(arg);
			arg = NULL;
		}
	}
	/* JSON: spliced as it came (make_body reads "data" from this text) */
	if (arg && !(gw_buf_puts(&src, "{\"data\":[") | gw_buf_append(&src, body, len) | gw_buf_puts(&src, "]}"))) {
		c.src = (const char *)src.data;
		c.src_len = src.len;
	}
	if (!arg && utf8) {
		char *str = malloc(len + 1);
		if (!str)
			goto fail;
		memcpy(str, body, len);
		str[len] = 0;
		/* a NUL inside cannot travel as a C string: send such bodies as bytes */
		if (strlen(str) == len)
			arg = cJSON_CreateString(str);
		free(str);
	}
	if (!arg) {
		size_t b64 = (len + 2) / 3 * 4;
		char *enc = malloc(b64 + 1);
		if (!enc)
			goto fail;
		gw_b64_encode(body, len, enc);
		enc[b64] = 0;
		arg = cJSON_CreateObject();
		if (arg && !cJSON_AddStringToObject(arg, "$binary", enc)) {
			cJSON_Delete(arg);
			arg = NULL;
		}
		free(enc);
	}
	cJSON *args = cJSON_CreateArray();
	cJSON *name = cJSON_CreateString(event);
	if (!args || !arg || !name || !cJSON_AddItemToArray(args, name)) {
		cJSON_Delete(args);
		cJSON_Delete(arg);
		cJSON_Delete(name);
		goto fail;
	}
	cJSON_AddItemToArray(args, arg);
	if ((rc = make_body(&c, args, &e->body, event)) || (rc = make_frames(&c, e)))
		goto fail;
	gw_buf_free(&src);
	*out = e;
	return 0;
fail:
	gw_buf_free(&src);
	env_in_free(e);
	return rc;
}
