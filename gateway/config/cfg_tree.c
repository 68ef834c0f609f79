/* cfg_tree.c — libyaml events → cfg_node tree; see cfg_tree.h for the contract. */
#include "config/cfg_tree.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "util/buf.h"
#include "util/err.h"

#define CFG_MAX_DEPTH 64

/* ---- paths and errors ---------------------------------------------------------- */

static size_t path_append(cfg_path *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t path_append(cfg_path *p, const char *fmt, ...)
{
	size_t mark = p->len;
	size_t room = sizeof p->buf - p->len;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(p->buf + p->len, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		p->len += (size_t)n < room ? (size_t)n : room - 1;
	return mark;
}

/* s with control characters as \xNN, so that an error quoting it stays one line; cut
 * to what out holds. */
static const char *escape_ctl(const char *s, char *out, size_t n)
{
	size_t o = 0;
	for (const unsigned char *c = (const unsigned char *)s; *c && o + 5 < n; c++) {
		if (*c < 0x20 || *c == 0x7f)
			o += (size_t)snprintf(out + o, n - o, "\\x%02x", *c);
		else
			out[o++] = (char)*c;
	}
	out[o] = '\0';
	return out;
}

size_t cfg_path_key(cfg_path *p, const char *key)
{
	/* a quoted key may hold control characters; longer than the path could hold is
	 * cut anyway */
	char safe[CFG_PATH_MAX];
	return path_append(p, "%s%s", p->len ? "." : "", escape_ctl(key, safe, sizeof safe));
}

size_t cfg_path_index(cfg_path *p, size_t i)
{
	return path_append(p, "[%zu]", i);
}

void cfg_path_pop(cfg_path *p, size_t mark)
{
	if (mark < sizeof p->buf) {
		p->len = mark;
		p->buf[mark] = '\0';
	}
}

/* snprintf that tells how far we got, clamped to the buffer. */
static size_t clamp_add(size_t at, int n, size_t len)
{
	if (n < 0)
		return at;
	at += (size_t)n;
	return at < len ? at : len - 1;
}

void cfg_verror(char *err, size_t err_len, const char *file, int line, int col,
		const char *path, const char *fmt, va_list ap)
{
	if (!err || err_len == 0)
		return;
	size_t at = 0;
	if (line > 0)
		at = clamp_add(at, snprintf(err, err_len, "%s:%d:%d: ", file, line, col), err_len);
	else
		at = clamp_add(at, snprintf(err, err_len, "%s: ", file), err_len);
	if (path && *path)
		at = clamp_add(at, snprintf(err + at, err_len - at, "%s: ", path), err_len);
	vsnprintf(err + at, err_len - at, fmt, ap);
}

void cfg_error(char *err, size_t err_len, const cfg_node *at, const char *path,
	       const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (at)
		cfg_verror(err, err_len, at->file, at->line, at->col, path, fmt, ap);
	else
		cfg_verror(err, err_len, "?", 0, 0, path, fmt, ap);
	va_end(ap);
}

const char *cfg_describe(const cfg_node *n, char *buf, size_t len)
{
	if (!n || (n->kind == CFG_SCALAR && n->is_null)) {
		snprintf(buf, len, "null");
		return buf;
	}
	if (n->kind != CFG_SCALAR) {
		snprintf(buf, len, "%s", n->kind == CFG_MAP ? "a map" : "a list");
		return buf;
	}
	/* Quote and escape so that control characters cannot garble the one-line error. */
	size_t o = 0, max = len < 70 ? len : 70;
	if (max < 8) { /* too small to say anything useful */
		if (len)
			buf[0] = '\0';
		return buf;
	}
	buf[o++] = '"';
	for (size_t i = 0; i < n->len; i++) {
		unsigned char ch = (unsigned char)n->str[i];
		char tmp[8];
		if (ch == '"' || ch == '\\')
			snprintf(tmp, sizeof tmp, "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			snprintf(tmp, sizeof tmp, "\\x%02x", ch);
		else
			tmp[0] = (char)ch, tmp[1] = '\0';
		size_t t = strlen(tmp);
		if (o + t + 5 > max) { /* room for ...", NUL */
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(buf + o, tmp, t);
		o += t;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

/* ---- scalar typing --------------------------------------------------------------- */

int cfg_parse_int(const char *s, int64_t *v)
{
	const char *p = s;
	if (*p == '-' || *p == '+')
		p++;
	if (!isdigit((unsigned char)*p))
		return -1;
	for (const char *q = p; *q; q++)
		if (!isdigit((unsigned char)*q))
			return -1;
	errno = 0;
	long long x = strtoll(s, NULL, 10);
	if (errno == ERANGE)
		return -1;
	*v = (int64_t)x;
	return 0;
}

int cfg_parse_bool(const char *s, bool *v)
{
	static const char *yes[] = {"true", "yes", "on"}, *no[] = {"false", "no", "off"};
	for (size_t i = 0; i < 3; i++) {
		if (strcasecmp(s, yes[i]) == 0)
			return *v = true, 0;
		if (strcasecmp(s, no[i]) == 0)
			return *v = false, 0;
	}
	return -1;
}

/* Leading unsigned decimal; *end points after it. -1 if none or it overflows. */
static int leading_u64(const char *s, uint64_t *v, const char **end)
{
	if (!isdigit((unsigned char)*s))
		return -1;
	uint64_t x = 0;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned d = (unsigned)(*s - '0');
		if (x > (UINT64_MAX - d) / 10)
			return -1;
		x = x * 10 + d;
	}
	*v = x;
	*end = s;
	return 0;
}

static int scaled(uint64_t x, uint64_t mul, int64_t *v)
{
	if (x > (uint64_t)INT64_MAX / mul)
		return -1;
	*v = (int64_t)(x * mul);
	return 0;
}

int cfg_parse_size(const char *s, int64_t *v)
{
	uint64_t x;
	const char *u;
	if (leading_u64(s, &x, &u) < 0)
		return -1;
	uint64_t mul = 1;
	switch (tolower((unsigned char)*u)) {
	case '\0': break;
	case 'k': mul = 1ull << 10, u++; break;
	case 'm': mul = 1ull << 20, u++; break;
	case 'g': mul = 1ull << 30, u++; break;
	case 'b': break;
	default: return -1;
	}
	if (tolower((unsigned char)*u) == 'b')
		u++;
	if (*u)
		return -1;
	return scaled(x, mul, v);
}

int cfg_parse_duration(const char *s, int64_t *v)
{
	uint64_t x;
	const char *u;
	if (leading_u64(s, &x, &u) < 0)
		return -1;
	static const struct { const char *unit; uint64_t ms; } units[] = {
		{"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000},
	};
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
		if (strcmp(u, units[i].unit) == 0)
			return scaled(x, units[i].ms, v);
	return -1;
}

/* "a|b|c" → "a, b, c" for messages. */
static void list_choices(const char *choices, char *buf, size_t len)
{
	size_t o = 0;
	buf[0] = '\0';
	for (const char *c = choices; *c && o + 3 < len; c++) {
		if (*c == '|') {
			buf[o++] = ',';
			buf[o++] = ' ';
		} else {
			buf[o++] = *c;
		}
	}
	buf[o] = '\0';
}

/* Index of `s` in "a|b|c", -1 if absent. */
static int find_choice(const char *choices, const char *s)
{
	size_t sl = strlen(s);
	int idx = 0;
	for (const char *c = choices; c;) {
		const char *bar = strchr(c, '|');
		size_t cl = bar ? (size_t)(bar - c) : strlen(c);
		if (cl == sl && memcmp(c, s, sl) == 0)
			return idx;
		idx++;
		c = bar ? bar + 1 : NULL;
	}
	return -1;
}

int cfg_scalar_check(const cfg_node *v, siogw_opt_type type, int64_t min, int64_t max,
		     const char *choices, int64_t *num, char *msg, size_t msg_len)
{
	char got[80], opts[256];
	const char *want;
	switch (type) {
	case SIOGW_OPT_INT: want = "an integer"; break;
	case SIOGW_OPT_BOOL: want = "true or false"; break;
	case SIOGW_OPT_SIZE: want = "a size (bytes, or with k/m/g: 64k)"; break;
	case SIOGW_OPT_DURATION: want = "a duration (ms, or with ms/s/m/h: 5s)"; break;
	case SIOGW_OPT_ENUM:
		list_choices(choices ? choices : "", opts, sizeof opts);
		want = NULL;
		break;
	default: want = "a string"; break;
	}
	bool ok = v && v->kind == CFG_SCALAR && !v->is_null;
	bool bv = false;
	int64_t x = 0;
	if (ok) {
		switch (type) {
		case SIOGW_OPT_INT: ok = cfg_parse_int(v->str, &x) == 0; break;
		case SIOGW_OPT_SIZE: ok = cfg_parse_size(v->str, &x) == 0; break;
		case SIOGW_OPT_DURATION: ok = cfg_parse_duration(v->str, &x) == 0; break;
		case SIOGW_OPT_BOOL: ok = cfg_parse_bool(v->str, &bv) == 0, x = bv; break;
		case SIOGW_OPT_ENUM: x = find_choice(choices ? choices : "", v->str), ok = x >= 0; break;
		default: break;
		}
	}
	if (!ok) {
		cfg_describe(v, got, sizeof got);
		if (want)
			snprintf(msg, msg_len, "expected %s, got %s", want, got);
		else
			snprintf(msg, msg_len, "expected one of %s, got %s", opts, got);
		return -1;
	}
	bool ranged = type == SIOGW_OPT_INT || type == SIOGW_OPT_SIZE || type == SIOGW_OPT_DURATION;
	if (ranged && min <= max && (x < min || x > max)) {
		const char *unit = type == SIOGW_OPT_SIZE ? " bytes" : type == SIOGW_OPT_DURATION ? " ms" : "";
		snprintf(msg, msg_len, "%s is out of range (%" PRId64 "..%" PRId64 "%s)",
			 v->str, min, max, unit); /* it parsed as a number: safe to print raw */
		return -1;
	}
	*num = x;
	return 0;
}

/* ---- the parser ----------------------------------------------------------------- */

typedef struct parser {
	yaml_parser_t yp;
	const char *file;
	const char *text;
	size_t len;
	char *err;
	size_t err_len;
	cfg_path path;
} parser;

static int perr(parser *p, const yaml_mark_t *m, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int perr(parser *p, const yaml_mark_t *m, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cfg_verror(p->err, p->err_len, p->file, (int)m->line + 1, (int)m->column + 1,
		   p->path.buf, fmt, ap);
	va_end(ap);
	return -GW_ECONFIG;
}

static int oom(parser *p)
{
	if (p->err && p->err_len)
		snprintf(p->err, p->err_len, "%s: out of memory", p->file);
	return -GW_ENOMEM;
}

/* libyaml's own message, positioned; reader errors only carry a byte offset. */
static int syntax_error(parser *p)
{
	yaml_parser_t *y = &p->yp;
	if (y->error == YAML_MEMORY_ERROR)
		return oom(p);
	yaml_mark_t m = y->problem_mark;
	if (y->error == YAML_READER_ERROR) {
		memset(&m, 0, sizeof m);
		for (size_t i = 0; i < y->problem_offset && i < p->len; i++) {
			if (p->text[i] == '\n')
				m.line++, m.column = 0;
			else
				m.column++;
		}
	}
	const char *problem = y->problem ? y->problem : "unknown error";
	p->path.buf[0] = '\0', p->path.len = 0; /* libyaml does not know the key */
	if (y->context)
		return perr(p, &m, "syntax error: %s (%s at %zu:%zu)", problem, y->context,
			    y->context_mark.line + 1, y->context_mark.column + 1);
	return perr(p, &m, "syntax error: %s", problem);
}

static int next_event(parser *p, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&p->yp, ev))
		return syntax_error(p);
	return 0;
}

static cfg_node *node_new(parser *p, cfg_kind kind, const yaml_mark_t *m)
{
	cfg_node *n = calloc(1, sizeof *n);
	if (!n)
		return NULL;
	n->kind = kind;
	n->file = p->file;
	n->line = (int)m->line + 1;
	n->col = (int)m->column + 1;
	return n;
}

static void node_free(cfg_node *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++) {
		node_free(n->items[i]);
		if (n->keys)
			node_free(n->keys[i]);
	}
	free(n->items);
	free(n->keys);
	free(n->str);
	free(n->owned_file);
	free(n);
}

void cfg_tree_free(cfg_node *root)
{
	node_free(root);
}

const cfg_node *cfg_map_get(const cfg_node *map, const char *key)
{
	if (!map || map->kind != CFG_MAP)
		return NULL;
	for (size_t i = 0; i < map->n; i++)
		if (strcmp(map->keys[i]->str, key) == 0)
			return map->items[i];
	return NULL;
}

/* Append a child (and its key for maps); arrays grow by doubling. */
static int node_add(cfg_node *n, cfg_node *key, cfg_node *val, size_t *cap)
{
	if (n->n == *cap) {
		size_t nc = *cap ? *cap * 2 : 4;
		cfg_node **items = realloc(n->items, nc * sizeof *items);
		if (!items)
			return -GW_ENOMEM;
		n->items = items;
		if (n->kind == CFG_MAP) {
			cfg_node **keys = realloc(n->keys, nc * sizeof *keys);
			if (!keys)
				return -GW_ENOMEM;
			n->keys = keys;
		}
		*cap = nc;
	}
	n->items[n->n] = val;
	if (key)
		n->keys[n->n] = key;
	n->n++;
	return 0;
}

static bool is_var_start(char c) { return isalpha((unsigned char)c) || c == '_'; }
static bool is_var_char(char c) { return isalnum((unsigned char)c) || c == '_'; }

/*
 * `${VAR}` must also work unquoted inside flow collections (DESIGN's own example says
 * `http_api: {enabled: true, token: ${SIO_API_TOKEN:-}}`), but YAML ends a plain scalar
 * at '{' and '}' there. So before libyaml sees the text, the braces of every
 * well-formed `${NAME}` / `${NAME:-default}` become the private-use characters U+E000
 * and U+E001, which libyaml treats as ordinary characters of one column each (so no
 * position moves); scalars map them back before substitution. A default containing
 * ',' (or ": ") still has to be quoted inside a flow collection.
 */
#define MASK_OPEN "\xee\x80\x80"  /* U+E000 */
#define MASK_CLOSE "\xee\x80\x81" /* U+E001 */

/* Length of the well-formed ${...} starting at s[0] == '$', else 0. */
static size_t var_ref_len(const char *s, size_t len)
{
	if (len < 4 || s[1] != '{' || !is_var_start(s[2]))
		return 0;
	size_t i = 3;
	while (i < len && is_var_char(s[i]))
		i++;
	if (i + 1 < len && s[i] == ':' && s[i + 1] == '-')
		for (i += 2; i < len && s[i] != '}' && s[i] != '\n' && s[i] != '{'; i++)
			;
	return i < len && s[i] == '}' ? i + 1 : 0;
}

/* *out = masked copy of text, or NULL when there is nothing to mask. -1 on OOM. */
static int mask_refs(const char *text, size_t len, char **out, size_t *out_len)
{
	*out = NULL;
	size_t refs = 0;
	for (size_t i = 0; i < len; i++) {
		size_t n = text[i] == '$' ? var_ref_len(text + i, len - i) : 0;
		if (n) {
			refs++;
			i += n - 1;
		}
	}
	if (refs == 0)
		return 0;
	char *m = malloc(len + refs * 4 + 1);
	if (!m)
		return -1;
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		size_t n = text[i] == '$' ? var_ref_len(text + i, len - i) : 0;
		if (!n) {
			m[o++] = text[i];
			continue;
		}
		m[o++] = '$';
		memcpy(m + o, MASK_OPEN, 3), o += 3;
		memcpy(m + o, text + i + 2, n - 3), o += n - 3;
		memcpy(m + o, MASK_CLOSE, 3), o += 3;
		i += n - 1;
	}
	m[o] = '\0';
	*out = m;
	*out_len = o;
	return 0;
}

/* Undo mask_refs in a scalar, in place. */
static void unmask(char *s, size_t *len)
{
	size_t o = 0;
	for (size_t i = 0; i < *len; i++) {
		if (i + 2 < *len && (unsigned char)s[i] == 0xee && (unsigned char)s[i + 1] == 0x80 &&
		    ((unsigned char)s[i + 2] == 0x80 || (unsigned char)s[i + 2] == 0x81)) {
			s[o++] = (unsigned char)s[i + 2] == 0x80 ? '{' : '}';
			i += 2;
		} else {
			s[o++] = s[i];
		}
	}
	s[o] = '\0';
	*len = o;
}

/* ${VAR} / ${VAR:-default} → *out (malloc'ed). Positions point at the scalar: libyaml
 * gives no per-character marks inside quoted scalars, so finer would be a guess. */
static int substitute(parser *p, const yaml_mark_t *m, const char *in, size_t len,
		      char **out, size_t *out_len)
{
	gw_buf b = {0};
	size_t i = 0;
	while (i < len) {
		const char *d = memchr(in + i, '$', len - i);
		size_t lit = d ? (size_t)(d - (in + i)) : len - i;
		if (gw_buf_append(&b, in + i, lit) < 0)
			goto nomem;
		i += lit;
		if (i >= len)
			break;
		if (i + 1 >= len || in[i + 1] != '{') { /* a lone '$' is literal */
			if (gw_buf_putc(&b, '$') < 0)
				goto nomem;
			i++;
			continue;
		}
		size_t name = i + 2, e = name;
		if (e < len && is_var_start(in[e]))
			for (e++; e < len && is_var_char(in[e]); e++)
				;
		if (e == name) {
			gw_buf_free(&b);
			return perr(p, m, "bad variable name after \"${\" (expected [A-Za-z_][A-Za-z0-9_]*)");
		}
		const char *def = NULL;
		size_t def_len = 0, close = e;
		if (close + 1 < len && in[close] == ':' && in[close + 1] == '-') {
			def = in + close + 2;
			const char *c = memchr(def, '}', len - (close + 2));
			if (!c) {
				gw_buf_free(&b);
				return perr(p, m, "unterminated \"${%.*s:-\" (missing '}')", (int)(e - name), in + name);
			}
			def_len = (size_t)(c - def);
			close = (size_t)(c - in);
		}
		if (close >= len || in[close] != '}') {
			gw_buf_free(&b);
			return perr(p, m, "unterminated \"${%.*s\" (expected '}' or ':-default}')",
				    (int)(e - name), in + name);
		}
		char var[128];
		size_t vl = e - name;
		if (vl >= sizeof var) {
			gw_buf_free(&b);
			return perr(p, m, "variable name longer than %zu characters", sizeof var - 1);
		}
		memcpy(var, in + name, vl);
		var[vl] = '\0';
		const char *val = getenv(var);
		int rc;
		if ((!val || !*val) && def)
			rc = gw_buf_append(&b, def, def_len);
		else
			rc = gw_buf_puts(&b, val ? val : "");
		if (rc < 0)
			goto nomem;
		i = close + 1;
	}
	if (gw_buf_reserve(&b, 1) < 0) /* an empty result still needs its NUL */
		goto nomem;
	b.data[b.len] = 0;
	*out = (char *)gw_buf_steal(&b, out_len);
	return 0;
nomem:
	gw_buf_free(&b);
	return oom(p);
}

/* Anchors and tags are refused on every node kind, with the same words. */
static int check_props(parser *p, const yaml_mark_t *m, const yaml_char_t *anchor,
		       const yaml_char_t *tag)
{
	char safe[128]; /* a tag's %-escapes may decode to control characters */
	if (anchor)
		return perr(p, m, "anchors (&%s) are not supported: write the value out",
			    escape_ctl((const char *)anchor, safe, sizeof safe));
	if (tag)
		return perr(p, m, "tags (%s) are not supported", escape_ctl((const char *)tag, safe, sizeof safe));
	return 0;
}

/* Build a scalar from a SCALAR event; `subst` is false for keys. */
static int make_scalar(parser *p, const yaml_event_t *ev, bool subst, cfg_node **out)
{
	const yaml_mark_t *m = &ev->start_mark;
	int rc = check_props(p, m, ev->data.scalar.anchor, ev->data.scalar.tag);
	if (rc < 0)
		return rc;
	const char *v = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	if (memchr(v, '\0', len))
		return perr(p, m, "NUL character in value");
	cfg_node *n = node_new(p, CFG_SCALAR, m);
	char *raw = strndup(v, len);
	if (!n || !raw) {
		free(n);
		free(raw);
		return oom(p);
	}
	unmask(raw, &len);
	n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
	n->is_null = !n->quoted && (len == 0 || strcmp(raw, "~") == 0 || strcmp(raw, "null") == 0 ||
				    strcmp(raw, "Null") == 0 || strcmp(raw, "NULL") == 0);
	if (n->is_null)
		raw[0] = '\0', len = 0;
	if (subst && !n->is_null) {
		rc = substitute(p, m, raw, len, &n->str, &n->len);
		free(raw);
		if (rc < 0) {
			node_free(n);
			return rc;
		}
	} else {
		n->str = raw;
		n->len = len;
	}
	*out = n;
	return 0;
}

static int parse_node(parser *p, yaml_event_t *ev, int depth, cfg_node **out);

static int parse_seq(parser *p, cfg_node *seq, int depth)
{
	size_t cap = 0;
	for (;;) {
		yaml_event_t ev;
		int rc = next_event(p, &ev);
		if (rc < 0)
			return rc;
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			return 0;
		}
		size_t mark = cfg_path_index(&p->path, seq->n);
		cfg_node *child = NULL;
		rc = parse_node(p, &ev, depth + 1, &child);
		if (rc < 0)
			return rc;
		cfg_path_pop(&p->path, mark);
		if (node_add(seq, NULL, child, &cap) < 0) {
			node_free(child);
			return oom(p);
		}
	}
}

static int parse_map(parser *p, cfg_node *map, int depth)
{
	size_t cap = 0;
	for (;;) {
		yaml_event_t ev;
		int rc = next_event(p, &ev);
		if (rc < 0)
			return rc;
		if (ev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&ev);
			return 0;
		}
		cfg_node *key = NULL;
		if (ev.type != YAML_SCALAR_EVENT)
			rc = ev.type == YAML_ALIAS_EVENT
				? perr(p, &ev.start_mark, "aliases (*%s) are not supported: write the value out",
				       (const char *)ev.data.alias.anchor)
				: perr(p, &ev.start_mark, "keys must be strings, not %s",
				       ev.type == YAML_MAPPING_START_EVENT ? "maps" : "lists");
		else
			rc = make_scalar(p, &ev, false, &key);
		yaml_event_delete(&ev);
		if (rc < 0)
			return rc;

		size_t mark = cfg_path_key(&p->path, key->str);
		if (!key->quoted && strcmp(key->str, "<<") == 0) {
			rc = perr(p, &(yaml_mark_t){.line = (size_t)key->line - 1, .column = (size_t)key->col - 1},
				  "merge keys (<<) are not supported: write the keys out");
			node_free(key);
			return rc;
		}
		for (size_t i = 0; i < map->n; i++) {
			if (strcmp(map->keys[i]->str, key->str) == 0) {
				rc = perr(p, &(yaml_mark_t){.line = (size_t)key->line - 1, .column = (size_t)key->col - 1},
					  "duplicate key (first at %d:%d)", map->keys[i]->line, map->keys[i]->col);
				node_free(key);
				return rc;
			}
		}

		cfg_node *val = NULL;
		rc = next_event(p, &ev);
		if (rc == 0)
			rc = parse_node(p, &ev, depth + 1, &val);
		if (rc < 0) {
			node_free(key);
			return rc;
		}
		cfg_path_pop(&p->path, mark);
		if (node_add(map, key, val, &cap) < 0) {
			node_free(key);
			node_free(val);
			return oom(p);
		}
	}
}

/* Build the node that starts with *ev; always consumes (deletes) *ev. */
static int parse_node(parser *p, yaml_event_t *ev, int depth, cfg_node **out)
{
	int rc = 0;
	yaml_mark_t m = ev->start_mark;
	cfg_node *n = NULL;
	if (depth > CFG_MAX_DEPTH) {
		rc = perr(p, &m, "nesting deeper than %d levels", CFG_MAX_DEPTH);
		yaml_event_delete(ev);
		return rc;
	}
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		rc = make_scalar(p, ev, true, &n);
		yaml_event_delete(ev);
		break;
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT: {
		bool is_map = ev->type == YAML_MAPPING_START_EVENT;
		rc = is_map ? check_props(p, &m, ev->data.mapping_start.anchor, ev->data.mapping_start.tag)
			    : check_props(p, &m, ev->data.sequence_start.anchor, ev->data.sequence_start.tag);
		yaml_event_delete(ev);
		if (rc < 0)
			break;
		n = node_new(p, is_map ? CFG_MAP : CFG_SEQ, &m);
		if (!n) {
			rc = oom(p);
			break;
		}
		rc = is_map ? parse_map(p, n, depth) : parse_seq(p, n, depth);
		break;
	}
	case YAML_ALIAS_EVENT:
		rc = perr(p, &m, "aliases (*%s) are not supported: write the value out",
			  (const char *)ev->data.alias.anchor);
		yaml_event_delete(ev);
		break;
	default:
		rc = perr(p, &m, "unexpected YAML event %d", (int)ev->type);
		yaml_event_delete(ev);
		break;
	}
	if (rc < 0) {
		node_free(n);
		return rc;
	}
	*out = n;
	return 0;
}

/* Expect an event of `type` (stream/document framing) and drop it. */
static int expect(parser *p, yaml_event_type_t type, yaml_event_t *ev)
{
	int rc = next_event(p, ev);
	if (rc < 0)
		return rc;
	if (ev->type != type) {
		rc = perr(p, &ev->start_mark, "unexpected YAML event %d", (int)ev->type);
		yaml_event_delete(ev);
		return rc;
	}
	return 0;
}

static int parse_stream(parser *p, cfg_node **out)
{
	yaml_event_t ev;
	int rc = expect(p, YAML_STREAM_START_EVENT, &ev);
	if (rc < 0)
		return rc;
	yaml_event_delete(&ev);

	if ((rc = next_event(p, &ev)) < 0)
		return rc;
	if (ev.type == YAML_STREAM_END_EVENT) { /* empty text or only comments */
		yaml_event_delete(&ev);
		static const yaml_mark_t origin;
		cfg_node *n = node_new(p, CFG_SCALAR, &origin);
		if (!n || !(n->str = strdup(""))) {
			node_free(n);
			return oom(p);
		}
		n->is_null = true;
		*out = n;
		return 0;
	}
	if (ev.type != YAML_DOCUMENT_START_EVENT) {
		rc = perr(p, &ev.start_mark, "unexpected YAML event %d", (int)ev.type);
		yaml_event_delete(&ev);
		return rc;
	}
	yaml_event_delete(&ev);

	cfg_node *root = NULL;
	if ((rc = next_event(p, &ev)) < 0 || (rc = parse_node(p, &ev, 0, &root)) < 0)
		return rc;
	if ((rc = expect(p, YAML_DOCUMENT_END_EVENT, &ev)) < 0)
		goto fail;
	yaml_event_delete(&ev);
	if ((rc = next_event(p, &ev)) < 0)
		goto fail;
	if (ev.type == YAML_DOCUMENT_START_EVENT) {
		rc = perr(p, &ev.start_mark, "multiple documents are not supported (one config per file)");
		yaml_event_delete(&ev);
		goto fail;
	}
	yaml_event_delete(&ev); /* STREAM_END */
	*out = root;
	return 0;
fail:
	node_free(root);
	return rc;
}

int cfg_tree_parse(const char *name, const char *text, size_t len, cfg_node **out,
		   char *err, size_t err_len)
{
	parser p = {.text = text, .len = len, .err = err, .err_len = err_len};
	char *file = strdup(name ? name : "<string>");
	*out = NULL;
	if (!file) {
		if (err && err_len)
			snprintf(err, err_len, "out of memory");
		return -GW_ENOMEM;
	}
	p.file = file;
	if (!yaml_parser_initialize(&p.yp)) {
		int rc = oom(&p);
		free(file);
		return rc;
	}
	char *masked = NULL;
	if (mask_refs(text, len, &masked, &p.len) < 0) {
		int rc = oom(&p);
		yaml_parser_delete(&p.yp);
		free(file);
		return rc;
	}
	if (masked)
		p.text = masked;
	yaml_parser_set_input_string(&p.yp, (const unsigned char *)p.text, p.len);
	cfg_node *root = NULL;
	int rc = parse_stream(&p, &root);
	yaml_parser_delete(&p.yp);
	free(masked);
	if (rc < 0) {
		free(file);
		return rc;
	}
	root->owned_file = file;
	*out = root;
	return 0;
}
