/*
 * ws.c — RFC 6455 server side as bytes, and permessage-deflate (RFC 7692) without
 * context takeover (see ws.h).
 *
 * The reader is a state machine over (header bytes so far, payload bytes still due);
 * the caller's buffer is unmasked in place. A frame that is a whole message or a whole
 * control frame and lies entirely in the buffer is returned in place (no copy), which
 * is the common case of Socket.IO traffic; everything else goes through r->msg (data
 * fragments) or r->ctl (a control frame split across reads).
 *
 * After WS_EV_ERROR or WS_EV_CLOSE, ws_read returns 0 with WS_EV_NONE: the event is
 * reported once, and nothing after it is read.
 *
 * The zlib streams live in a ws_zlib, one per service loop: a message is compressed or
 * inflated whole, so the streams are reset between messages and shared by every
 * connection of the loop.
 */
#include "net/ws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <zlib.h>

#include "util/base64.h"
#include "util/err.h"
#include "util/utf8.h"

static const char WS_GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
static const uint8_t DEFLATE_TAIL[4] = {0x00, 0x00, 0xff, 0xff};

/* ---- handshake ---- */

void ws_accept_key(const char *key, char out[29])
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned md_len = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	out[0] = 0;
	if (!c)
		return;
	if (EVP_DigestInit_ex(c, EVP_sha1(), NULL) && EVP_DigestUpdate(c, key, strlen(key)) &&
	    EVP_DigestUpdate(c, WS_GUID, sizeof WS_GUID - 1) && EVP_DigestFinal_ex(c, md, &md_len) &&
	    md_len == 20)
		out[gw_b64_encode(md, 20, out)] = 0;
	EVP_MD_CTX_free(c);
}

static bool b64_std_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

/* 16 bytes are 22 characters and "==". The pad bits of the 22nd are not checked: a
 * sloppy encoder still sent 16 random bytes. */
bool ws_key_valid(const char *key)
{
	if (!key || strlen(key) != 24 || key[22] != '=' || key[23] != '=')
		return false;
	for (int i = 0; i < 22; i++)
		if (!b64_std_char(key[i]))
			return false;
	return true;
}

/* ---- what the server writes ---- */

size_t ws_frame_header(uint8_t out[10], int opcode, size_t len, bool rsv1)
{
	out[0] = (uint8_t)(0x80 | (rsv1 ? 0x40 : 0) | (opcode & 0x0f));
	if (len < 126) {
		out[1] = (uint8_t)len;
		return 2;
	}
	if (len <= 0xffff) {
		out[1] = 126;
		out[2] = (uint8_t)(len >> 8);
		out[3] = (uint8_t)len;
		return 4;
	}
	out[1] = 127;
	uint64_t l = len;
	for (int i = 0; i < 8; i++)
		out[2 + i] = (uint8_t)(l >> (56 - 8 * i));
	return 10;
}

/* The reason is cut at a character boundary, so that the peer's UTF-8 check passes. */
size_t ws_close_frame(uint8_t *out, uint16_t code, const char *reason)
{
	if (!code)
		return ws_frame_header(out, WS_OP_CLOSE, 0, false);
	size_t n = reason ? strlen(reason) : 0;
	if (n > 123) {
		n = 123;
		while (n && ((uint8_t)reason[n] & 0xc0) == 0x80)
			n--;
	}
	size_t h = ws_frame_header(out, WS_OP_CLOSE, 2 + n, false);
	out[h] = (uint8_t)(code >> 8);
	out[h + 1] = (uint8_t)code;
	if (n)
		memcpy(out + h + 2, reason, n);
	return h + 2 + n;
}

bool ws_close_code_valid(unsigned code)
{
	return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
	       (code >= 3000 && code <= 4999);
}

/* ---- the reader ---- */

void ws_reader_init(ws_reader *r, size_t max_message, ws_zlib *z)
{
	*r = (ws_reader){.max_message = max_message, .z = z};
}

void ws_reader_fini(ws_reader *r)
{
	gw_buf_free(&r->msg);
	gw_buf_free(&r->ctl);
}

/* Fails the connection; returns true, "an event was made", for the callers' returns. */
static bool error_ev(ws_reader *r, ws_event *ev, uint16_t code, const char *why)
{
	r->failed = true;
	*ev = (ws_event){.type = WS_EV_ERROR, .code = code, .reason = why};
	return true;
}

/* Header length from its first two bytes: 2, the extended length, the mask. */
static size_t hdr_need(const uint8_t *h)
{
	uint8_t l = h[1] & 0x7f;
	return 2 + (l == 126 ? 2 : l == 127 ? 8 : 0) + (h[1] & 0x80 ? 4 : 0);
}

static bool is_control(int op) { return op & 0x8; }

/* The checks the first two bytes allow, so that garbage fails before its length. */
static const char *check_start(const ws_reader *r, const uint8_t *h)
{
	int op = h[0] & 0x0f;
	bool fin = h[0] & 0x80;
	if (!(h[1] & 0x80))
		return "unmasked client frame";
	if (h[0] & 0x30)
		return "reserved bits set";
	if (op > WS_OP_BINARY && op != WS_OP_CLOSE && op != WS_OP_PING && op != WS_OP_PONG)
		return "unknown opcode";
	if (h[0] & 0x40) {
		if (!r->z)
			return "RSV1 without permessage-deflate";
		if (op != WS_OP_TEXT && op != WS_OP_BINARY)
			return "RSV1 on a continuation or control frame";
	}
	if (is_control(op) && !fin)
		return "fragmented control frame";
	if (is_control(op) && (h[1] & 0x7f) > 125)
		return "control frame over 125 bytes";
	if (op == WS_OP_CONT && !r->msg_op)
		return "continuation without a message";
	if ((op == WS_OP_TEXT || op == WS_OP_BINARY) && r->msg_op)
		return "new message inside a fragmented one";
	return NULL;
}

/* Deflate may grow incompressible data a little (5 bytes per 64 KiB stored block);
 * the compressed message gets that slack over max_message. */
static size_t compressed_limit(size_t max)
{
	size_t slack = max / 1024 + 64;
	return max > SIZE_MAX - slack ? SIZE_MAX : max + slack;
}

/* A complete header at h: sets up the frame. Returns the 1002/1009 reason or NULL. */
static const char *start_frame(ws_reader *r, const uint8_t *h, uint16_t *code)
{
	*code = WS_CLOSE_PROTOCOL_ERROR;
	const char *bad = check_start(r, h);
	if (bad)
		return bad;
	uint64_t plen = h[1] & 0x7f;
	const uint8_t *p = h + 2;
	if (plen == 126) {
		plen = (uint64_t)p[0] << 8 | p[1];
		p += 2;
	} else if (plen == 127) {
		plen = 0;
		for (int i = 0; i < 8; i++)
			plen = plen << 8 | p[i];
		p += 8;
		if (plen >> 63)
			return "64-bit length with the high bit set";
	}
	memcpy(r->mask, p, 4);
	r->mask_pos = 0;
	r->op = h[0] & 0x0f;
	r->fin = h[0] & 0x80;
	r->remaining = plen;
	r->in_frame = true;
	if (is_control(r->op)) {
		gw_buf_reset(&r->ctl);
		return NULL;
	}
	if (r->op != WS_OP_CONT) {
		r->msg_op = r->op;
		r->msg_compressed = h[0] & 0x40;
		r->utf8_state = 0;
		gw_buf_reset(&r->msg);
	}
	size_t limit = r->msg_compressed ? compressed_limit(r->max_message) : r->max_message;
	if (plen > limit - r->msg.len) {
		*code = WS_CLOSE_TOO_BIG;
		return "message over max_message";
	}
	return NULL;
}

/* Reads header bytes at data[*pos..len). 1: a frame started; 0: need more (all of the
 * input consumed); -1: *ev is the error. */
static int read_header(ws_reader *r, const uint8_t *data, size_t len, size_t *pos, ws_event *ev)
{
	const uint8_t *h;
	size_t avail = len - *pos;
	if (r->hdr_len == 0 && avail >= 2 && avail >= hdr_need(data + *pos)) {
		h = data + *pos;
		*pos += hdr_need(h);
	} else {
		while (r->hdr_len < 2 && *pos < len)
			r->hdr[r->hdr_len++] = data[(*pos)++];
		if (r->hdr_len < 2)
			return 0;
		const char *bad = check_start(r, r->hdr);
		if (bad) {
			error_ev(r, ev, WS_CLOSE_PROTOCOL_ERROR, bad);
			return -1;
		}
		size_t need = hdr_need(r->hdr), take = need - r->hdr_len;
		if (take > len - *pos)
			take = len - *pos;
		memcpy(r->hdr + r->hdr_len, data + *pos, take);
		r->hdr_len += take;
		*pos += take;
		if (r->hdr_len < need)
			return 0;
		h = r->hdr;
		r->hdr_len = 0;
	}
	uint16_t code;
	const char *bad = start_frame(r, h, &code);
	if (bad) {
		error_ev(r, ev, code, bad);
		return -1;
	}
	return 1;
}

/* XOR with the mask, 8 bytes at a time (8 is a multiple of 4: the phase holds). */
static void unmask(ws_reader *r, uint8_t *p, size_t n)
{
	size_t i = 0;
	if (n >= 16) {
		uint8_t m8[8];
		for (int k = 0; k < 8; k++)
			m8[k] = r->mask[(r->mask_pos + (size_t)k) & 3];
		uint64_t m, w;
		memcpy(&m, m8, 8);
		for (; i + 8 <= n; i += 8) {
			memcpy(&w, p + i, 8);
			w ^= m;
			memcpy(p + i, &w, 8);
		}
	}
	for (; i < n; i++)
		p[i] ^= r->mask[(r->mask_pos + i) & 3];
	r->mask_pos = (r->mask_pos + n) & 3;
}

static bool control_event(ws_reader *r, const uint8_t *p, size_t n, ws_event *ev)
{
	if (r->op == WS_OP_PING || r->op == WS_OP_PONG) {
		*ev = (ws_event){.type = r->op == WS_OP_PING ? WS_EV_PING : WS_EV_PONG, .data = p, .len = n};
		return true;
	}
	if (n == 1)
		return error_ev(r, ev, WS_CLOSE_PROTOCOL_ERROR, "close payload of 1 byte");
	uint16_t code = WS_CLOSE_NO_STATUS;
	if (n >= 2) {
		code = (uint16_t)(p[0] << 8 | p[1]);
		if (!ws_close_code_valid(code))
			return error_ev(r, ev, WS_CLOSE_PROTOCOL_ERROR, "invalid close code");
		if (!gw_utf8_valid(p + 2, n - 2))
			return error_ev(r, ev, WS_CLOSE_INVALID_DATA, "close reason not UTF-8");
	}
	r->failed = true; /* nothing is read after the peer's close */
	*ev = (ws_event){.type = WS_EV_CLOSE, .code = code, .data = n > 2 ? p + 2 : NULL,
			 .len = n > 2 ? n - 2 : 0};
	return true;
}

/* Inflates p[0..n) into r->msg (through r->ctl, which is free between control frames).
 * Returns whether it failed the connection. */
static bool inflate_message(ws_reader *r, const uint8_t *p, size_t n, ws_event *ev)
{
	gw_buf_reset(&r->ctl);
	int rc = ws_inflate(r->z, p, n, &r->ctl, r->max_message);
	if (rc == -1)
		return error_ev(r, ev, WS_CLOSE_TOO_BIG, "inflated message over max_message");
	if (rc == -2)
		return error_ev(r, ev, WS_CLOSE_INVALID_DATA, "corrupt deflate data");
	if (rc)
		return error_ev(r, ev, WS_CLOSE_INTERNAL, "out of memory");
	gw_buf t = r->msg;
	r->msg = r->ctl;
	r->ctl = t;
	return false;
}

/* The message whose payload (all fragments, still compressed if it was) is p[0..n).
 * Uncompressed text went through gw_utf8_feed already. */
static void message_event(ws_reader *r, const uint8_t *p, size_t n, ws_event *ev)
{
	bool text = r->msg_op == WS_OP_TEXT;
	r->msg_op = 0;
	if (r->msg_compressed) {
		if (inflate_message(r, p, n, ev))
			return;
		p = r->msg.data;
		n = r->msg.len;
		if (text && !gw_utf8_valid(p, n)) {
			error_ev(r, ev, WS_CLOSE_INVALID_DATA, "text message not UTF-8");
			return;
		}
	} else if (text && r->utf8_state) {
		error_ev(r, ev, WS_CLOSE_INVALID_DATA, "text message not UTF-8");
		return;
	}
	*ev = (ws_event){.type = WS_EV_MESSAGE, .data = p, .len = n, .binary = !text};
}

/* The current frame's payload is complete. Returns whether that made an event;
 * whole is the payload when it was read in place, else NULL. */
static bool frame_end(ws_reader *r, const uint8_t *whole, size_t n, ws_event *ev)
{
	r->in_frame = false;
	if (is_control(r->op))
		return whole ? control_event(r, whole, n, ev) : control_event(r, r->ctl.data, r->ctl.len, ev);
	if (!r->fin)
		return false;
	if (whole)
		message_event(r, whole, n, ev);
	else
		message_event(r, r->msg.data, r->msg.len, ev);
	return true;
}

/* A piece of the current frame's payload, unmasked, into r->ctl or r->msg. Returns
 * whether it failed the connection. */
static bool payload_piece(ws_reader *r, const uint8_t *p, size_t n, ws_event *ev)
{
	gw_buf *b = is_control(r->op) ? &r->ctl : &r->msg;
	if (b == &r->msg && r->msg_op == WS_OP_TEXT && !r->msg_compressed &&
	    !gw_utf8_feed(&r->utf8_state, p, n))
		return error_ev(r, ev, WS_CLOSE_INVALID_DATA, "text message not UTF-8");
	if (gw_buf_append(b, p, n))
		return error_ev(r, ev, WS_CLOSE_INTERNAL, "out of memory");
	return false;
}

/* Buffers a big message grew are not kept for the connection's life; the last event's
 * data is dead once ws_read is called again. */
#define TRIM_CAP ((size_t)64 << 10)

static void trim(ws_reader *r)
{
	if (!r->msg_op && r->msg.cap > TRIM_CAP)
		gw_buf_free(&r->msg);
	if (!(r->in_frame && is_control(r->op)) && r->ctl.cap > TRIM_CAP)
		gw_buf_free(&r->ctl);
}

size_t ws_read(ws_reader *r, uint8_t *data, size_t len, ws_event *ev)
{
	*ev = (ws_event){.type = WS_EV_NONE};
	if (r->failed)
		return 0;
	trim(r);
	size_t pos = 0;
	while (pos < len) {
		if (!r->in_frame) {
			int st = read_header(r, data, len, &pos, ev);
			if (st <= 0)
				return pos;
			/* in place: a whole control frame, or a whole unfragmented message */
			bool single = is_control(r->op) || (r->fin && r->op != WS_OP_CONT);
			if (single && r->remaining <= len - pos) {
				size_t n = (size_t)r->remaining;
				uint8_t *p = data + pos;
				unmask(r, p, n);
				pos += n;
				r->remaining = 0;
				if (r->op == WS_OP_TEXT && !r->msg_compressed &&
				    !gw_utf8_feed(&r->utf8_state, p, n))
					error_ev(r, ev, WS_CLOSE_INVALID_DATA, "text message not UTF-8");
				else
					frame_end(r, p, n, ev);
				return pos;
			}
		}
		size_t n = len - pos;
		if (n > r->remaining)
			n = (size_t)r->remaining;
		unmask(r, data + pos, n);
		bool failed = payload_piece(r, data + pos, n, ev);
		pos += n;
		r->remaining -= n;
		if (failed)
			return pos;
		if (r->remaining == 0 && frame_end(r, NULL, 0, ev))
			return pos;
	}
	return pos;
}

/* ---- permessage-deflate ---- */

static bool tchar(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static const char *skip_ows(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

static const char *skip_token(const char *p, const char *end)
{
	while (p < end && tchar(*p))
		p++;
	return p;
}

static bool token_is(const char *p, const char *end, const char *word)
{
	size_t n = strlen(word);
	return (size_t)(end - p) == n && strncasecmp(p, word, n) == 0;
}

/* A parameter value, token or quoted-string, unquoted into val (short: the only values
 * we accept are window bits). Returns the position after it, or NULL. */
static const char *param_value(const char *p, const char *end, char val[8])
{
	size_t n = 0;
	if (p < end && *p == '"') {
		for (p++; p < end && *p != '"'; p++) {
			if (*p == '\\' && ++p == end)
				return NULL;
			if (n == 7)
				return NULL;
			val[n++] = *p;
		}
		if (p == end)
			return NULL;
		p++;
	} else {
		const char *s = p;
		p = skip_token(p, end);
		if (p == s || (size_t)(p - s) > 7)
			return NULL;
		n = (size_t)(p - s);
		memcpy(val, s, n);
	}
	val[n] = 0;
	return p;
}

/* RFC 7692 §7.1.2: 8..15, no leading zeros. */
static int window_bits(const char *v)
{
	static const char *ok[] = {"8", "9", "10", "11", "12", "13", "14", "15"};
	for (int i = 0; i < 8; i++)
		if (strcmp(v, ok[i]) == 0)
			return 8 + i;
	return -1;
}

enum { P_SNCT, P_CNCT, P_SMWB, P_CMWB };

static int param_id(const char *p, const char *end)
{
	static const char *names[] = {"server_no_context_takeover", "client_no_context_takeover",
				      "server_max_window_bits", "client_max_window_bits"};
	for (int i = 0; i < 4; i++)
		if (token_is(p, end, names[i]))
			return i;
	return -1;
}

static bool param_ok(int id, bool has_val, const char *val)
{
	switch (id) {
	case P_SNCT:
	case P_CNCT:
		return !has_val;
	case P_SMWB: /* our deflater's window is 15 */
		return has_val && window_bits(val) == 15;
	case P_CMWB: /* the client's window does not matter without context takeover */
		return !has_val || window_bits(val) > 0;
	}
	return false;
}

/* One offer, p[0..end) between commas: permessage-deflate and parameters we accept,
 * each at most once (§7: a duplicate declines the offer). */
static bool offer_ok(const char *p, const char *end)
{
	p = skip_ows(p, end);
	const char *name = p;
	p = skip_token(p, end);
	if (!token_is(name, p, "permessage-deflate"))
		return false;
	unsigned seen = 0;
	for (;;) {
		p = skip_ows(p, end);
		if (p == end)
			return true;
		if (*p != ';')
			return false;
		p = skip_ows(p + 1, end);
		const char *pn = p;
		p = skip_token(p, end);
		int id = param_id(pn, p);
		if (id < 0 || (seen & 1u << id))
			return false;
		seen |= 1u << id;
		char val[8] = "";
		bool has_val = false;
		p = skip_ows(p, end);
		if (p < end && *p == '=') {
			p = param_value(skip_ows(p + 1, end), end, val);
			if (!p)
				return false;
			has_val = true;
		}
		if (!param_ok(id, has_val, val))
			return false;
	}
}

/* The end of the offer at p: the next comma outside a quoted string. */
static const char *offer_end(const char *p)
{
	bool quoted = false;
	for (; *p; p++) {
		if (quoted && *p == '\\' && p[1])
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (*p == ',' && !quoted)
			break;
	}
	return p;
}

bool ws_deflate_negotiate(const char *offer, char *resp, size_t resp_len)
{
	static const char answer[] =
		"permessage-deflate; server_no_context_takeover; client_no_context_takeover";
	if (!offer)
		return false;
	for (const char *p = offer;; p++) {
		const char *end = offer_end(p);
		if (offer_ok(p, end)) {
			if (resp_len < sizeof answer)
				return false;
			memcpy(resp, answer, sizeof answer);
			return true;
		}
		if (!*end)
			return false;
		p = end;
	}
}

struct ws_zlib {
	z_stream def, inf;
	bool def_ready, inf_ready;
};

ws_zlib *ws_zlib_create(void) { return calloc(1, sizeof(ws_zlib)); }

void ws_zlib_destroy(ws_zlib *z)
{
	if (!z)
		return;
	if (z->def_ready)
		deflateEnd(&z->def);
	if (z->inf_ready)
		inflateEnd(&z->inf);
	free(z);
}

/* zlib counts in uInt: bigger inputs go in pieces of this. */
#define Z_PIECE ((size_t)1 << 30)

int ws_deflate(ws_zlib *z, const uint8_t *in, size_t len, gw_buf *out)
{
	if (!z->def_ready) {
		if (deflateInit2(&z->def, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8,
				 Z_DEFAULT_STRATEGY) != Z_OK)
			return -GW_ENOMEM;
		z->def_ready = true;
	} else if (deflateReset(&z->def) != Z_OK) {
		return -GW_EINVAL;
	}
	size_t start = out->len, left = len;
	const uint8_t *p = in;
	do {
		size_t n = left < Z_PIECE ? left : Z_PIECE;
		z->def.next_in = (Bytef *)(uintptr_t)p;
		z->def.avail_in = (uInt)n;
		p += n;
		left -= n;
		int flush = left ? Z_NO_FLUSH : Z_SYNC_FLUSH;
		do { /* until deflate leaves room: then it has taken all input and flushed */
			size_t room = n / 2 + 64 < 65536 ? n / 2 + 64 : 65536;
			if (gw_buf_reserve(out, room))
				return -GW_ENOMEM;
			z->def.next_out = out->data + out->len;
			z->def.avail_out = (uInt)room;
			if (deflate(&z->def, flush) == Z_STREAM_ERROR)
				return -GW_EINVAL;
			out->len += room - z->def.avail_out;
		} while (z->def.avail_out == 0);
	} while (left);
	/* a sync flush ends with an empty stored block, 00 00 ff ff, which RFC 7692 drops */
	if (out->len - start >= 4 && memcmp(out->data + out->len - 4, DEFLATE_TAIL, 4) == 0)
		out->len -= 4;
	out->data[out->len] = 0;
	return 0;
}

/* Inflates in[0..n) (n fits a uInt) onto out, whose bytes from base on count toward
 * max. 0: all input taken; 1: the deflate stream ended (BFINAL), the rest is ignored;
 * -1 over max; -2 corrupt; -3 out of memory. */
static int inflate_piece(z_stream *zs, const uint8_t *in, size_t n, gw_buf *out, size_t base, size_t max)
{
	zs->next_in = (Bytef *)(uintptr_t)in;
	zs->avail_in = (uInt)n;
	for (;;) {
		size_t done = out->len - base;
		/* one byte past max is enough to know it is over, and bounds a bomb's work */
		size_t want = max - done == SIZE_MAX ? SIZE_MAX : max - done + 1;
		size_t room = want < 65536 ? want : 65536;
		if (gw_buf_reserve(out, room))
			return -3;
		zs->next_out = out->data + out->len;
		zs->avail_out = (uInt)room;
		int rc = inflate(zs, Z_SYNC_FLUSH);
		out->len += room - zs->avail_out;
		out->data[out->len] = 0;
		if (out->len - base > max)
			return -1;
		if (rc == Z_STREAM_END)
			return 1;
		if (rc == Z_MEM_ERROR)
			return -3;
		if (rc != Z_OK && rc != Z_BUF_ERROR)
			return -2;
		if (zs->avail_in == 0 && zs->avail_out != 0)
			return 0;
	}
}

/* Appends to out; max counts only what this call appends. A message that ends inside
 * a deflate block is not detected as corrupt: what it inflated to is returned. */
int ws_inflate(ws_zlib *z, const uint8_t *in, size_t len, gw_buf *out, size_t max)
{
	if (!z->inf_ready) {
		if (inflateInit2(&z->inf, -15) != Z_OK)
			return -3;
		z->inf_ready = true;
	} else if (inflateReset(&z->inf) != Z_OK) {
		return -2;
	}
	size_t base = out->len;
	if (gw_buf_reserve(out, 0))
		return -3;
	out->data[out->len] = 0;
	for (size_t off = 0; off < len;) {
		size_t n = len - off < Z_PIECE ? len - off : Z_PIECE;
		int rc = inflate_piece(&z->inf, in + off, n, out, base, max);
		if (rc)
			return rc > 0 ? 0 : rc;
		off += n;
	}
	int rc = inflate_piece(&z->inf, DEFLATE_TAIL, 4, out, base, max);
	return rc > 0 ? 0 : rc;
}
