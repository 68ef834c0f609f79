/*
 * eio_codec.c — Engine.IO v4 packets and polling payloads (see eio_codec.h).
 *
 * Strictness: engine.io-parser is lenient (an empty packet decodes as "open",
 * Buffer.from ignores bad base64); we reject those, because a well-behaved client
 * never sends them and the caller closes the session on -GW_EINVAL.
 */
#include "eio/eio_codec.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "util/base64.h"
#include "util/err.h"

static bool valid_type(uint8_t c) { return c >= EIO_OPEN && c <= EIO_NOOP; }

int eio_decode_frame(const uint8_t *buf, size_t len, bool binary_frame, eio_packet *out)
{
	if (binary_frame) {
		/* A binary websocket frame has no type byte: it is always a message. */
		*out = (eio_packet){.type = EIO_MESSAGE, .binary = true, .data = buf, .len = len};
		return 0;
	}
	if (len == 0 || !valid_type(buf[0]))
		return -GW_EINVAL;
	*out = (eio_packet){.type = (eio_type)buf[0], .binary = false, .data = buf + 1,
			    .len = len - 1};
	return 0;
}

void eio_payload_iter_init(eio_payload_iter *it, uint8_t *buf, size_t len)
{
	it->p = buf;
	it->end = buf + len;
}

/*
 * Stateless over (p, end): p is always the start of the next packet. A separator
 * that ends the buffer, a doubled one and a leading one all produce an empty packet,
 * which is an error; so a trailing separator is detected together with the packet
 * before it (that packet is not returned). An empty body has no packets.
 */
int eio_payload_next(eio_payload_iter *it, eio_packet *out)
{
	if (it->p >= it->end)
		return 0;
	uint8_t *start = it->p;
	uint8_t *sep = memchr(start, EIO_SEPARATOR, (size_t)(it->end - start));
	uint8_t *stop = sep ? sep : it->end;
	if (stop == start || (sep && sep + 1 == it->end))
		goto bad;
	it->p = sep ? sep + 1 : it->end;

	if (start[0] == 'b') {
		/* base64 never grows when decoded, so the bytes fit in place */
		long n = gw_b64_decode((const char *)start + 1, (size_t)(stop - start - 1), start + 1);
		if (n < 0)
			goto bad;
		*out = (eio_packet){.type = EIO_MESSAGE, .binary = true, .data = start + 1,
				    .len = (size_t)n};
		return 1;
	}
	if (!valid_type(start[0]))
		goto bad;
	*out = (eio_packet){.type = (eio_type)start[0], .binary = false, .data = start + 1,
			    .len = (size_t)(stop - start - 1)};
	return 1;
bad:
	it->p = it->end; /* further calls report the end, not the same error again */
	return -GW_EINVAL;
}

int eio_payload_append(gw_buf *out, const uint8_t *ws_payload, size_t len, bool binary)
{
	size_t need = (out->len ? 1 : 0) + (binary ? 1 + gw_b64_enc_len(len) : len);
	if (gw_buf_reserve(out, need))
		return -GW_ENOMEM;
	if (out->len)
		out->data[out->len++] = EIO_SEPARATOR;
	if (binary) {
		out->data[out->len++] = 'b';
		out->len += gw_b64_encode(ws_payload, len, (char *)out->data + out->len);
	} else if (len) {
		memcpy(out->data + out->len, ws_payload, len);
		out->len += len;
	}
	out->data[out->len] = 0;
	return 0;
}

/* ---- Engine.IO v3 ---- */

void eio3_payload_iter_init(eio3_payload_iter *it, uint8_t *buf, size_t len, bool binary_form)
{
	it->p = buf;
	it->end = buf + len;
	it->binary_form = binary_form;
}

/* Bytes of the UTF-8 sequence led by b, and the UTF-16 units it makes; 0 if b cannot
 * lead one. */
static int utf8_seq(uint8_t b, int *units)
{
	*units = 1;
	if (b < 0x80)
		return 1;
	if (b >= 0xC2 && b <= 0xDF)
		return 2;
	if (b >= 0xE0 && b <= 0xEF)
		return 3;
	if (b >= 0xF0 && b <= 0xF4) {
		*units = 2;
		return 4;
	}
	return 0;
}

/* Walk UTF-8 s[0..n) until `stop` UTF-16 units or the end: the bytes walked (-1 when
 * not UTF-8 in structure, or a character would pass stop); *units gets the units. */
static long utf8_walk(const uint8_t *s, size_t n, size_t stop, size_t *units)
{
	size_t i = 0, u = 0;
	while (u < stop && i < n) {
		int k, w;
		if (!(k = utf8_seq(s[i], &w)) || (size_t)k > n - i || u + (size_t)w > stop)
			return -1;
		for (int j = 1; j < k; j++)
			if ((s[i + j] & 0xC0) != 0x80)
				return -1;
		i += (size_t)k;
		u += (size_t)w;
	}
	*units = u;
	return (long)i;
}

long eio3_js_length(const uint8_t *s, size_t n)
{
	size_t u;
	return utf8_walk(s, n, SIZE_MAX, &u) < 0 ? -1 : (long)u;
}

/* A v3 packet of len bytes at start (text: type char first; "b4<base64>" in the text
 * form; binary: type byte 4 first). */
static int v3_packet(uint8_t *start, size_t len, bool binary, bool text_form, eio_packet *out)
{
	if (binary) {
		if (len < 1 || start[0] != 4)
			return -GW_EINVAL;
		*out = (eio_packet){.type = EIO_MESSAGE, .binary = true, .data = start + 1, .len = len - 1};
		return 1;
	}
	if (text_form && start[0] == 'b') {
		if (len < 2 || start[1] != '4')
			return -GW_EINVAL;
		long n = gw_b64_decode((const char *)start + 2, len - 2, start + 2);
		if (n < 0)
			return -GW_EINVAL;
		*out = (eio_packet){.type = EIO_MESSAGE, .binary = true, .data = start + 2, .len = (size_t)n};
		return 1;
	}
	if (!valid_type(start[0]))
		return -GW_EINVAL;
	*out = (eio_packet){.type = (eio_type)start[0], .data = start + 1, .len = len - 1};
	return 1;
}

#define V3_MAX_DIGITS 10 /* lengths up to 9,999,999,999: far beyond any max_payload */

int eio3_payload_next(eio3_payload_iter *it, eio_packet *out)
{
	for (;;) {
		if (it->p >= it->end)
			return 0;
		uint8_t *p = it->p;
		size_t avail = (size_t)(it->end - p), len = 0, i = 0;
		bool binary = false;
		if (it->binary_form) {
			if (p[0] > 1)
				goto bad;
			binary = p[0] == 1;
			for (i = 1; i < avail && p[i] != 0xFF; i++) {
				if (p[i] > 9 || i > V3_MAX_DIGITS)
					goto bad;
				len = len * 10 + p[i];
			}
			if (i == 1 || i >= avail || len > avail - i - 1)
				goto bad;
			p += i + 1;
		} else {
			for (; i < avail && p[i] != ':'; i++) {
				if (p[i] < '0' || p[i] > '9' || i >= V3_MAX_DIGITS)
					goto bad;
				len = len * 10 + (size_t)(p[i] - '0');
			}
			if (i == 0 || i >= avail)
				goto bad;
			p += i + 1;
			size_t units;
			long bytes = utf8_walk(p, (size_t)(it->end - p), len, &units);
			if (bytes < 0 || units != len)
				goto bad;
			len = (size_t)bytes;
		}
		it->p = p + len;
		if (len == 0)
			continue; /* parser-v3 skips an empty packet */
		int rc = v3_packet(p, len, binary, !it->binary_form, out);
		if (rc < 0)
			goto bad;
		return rc;
	}
bad:
	it->p = it->end;
	return -GW_EINVAL;
}

int eio3_payload_append(gw_buf *out, const uint8_t *ws_payload, size_t len, bool binary, bool binary_form)
{
	char digits[24];
	if (binary_form) {
		size_t plen = binary ? len + 1 : len;
		int nd = snprintf(digits, sizeof digits, "%zu", plen);
		if (gw_buf_reserve(out, (size_t)nd + 2 + plen))
			return -GW_ENOMEM;
		out->data[out->len++] = binary ? 1 : 0;
		for (int i = 0; i < nd; i++)
			out->data[out->len++] = (uint8_t)(digits[i] - '0');
		out->data[out->len++] = 0xFF;
		if (binary)
			out->data[out->len++] = 4;
		if (len)
			memcpy(out->data + out->len, ws_payload, len);
		out->len += len;
		out->data[out->len] = 0;
		return 0;
	}
	size_t body = binary ? 2 + gw_b64_enc_len(len) : len;
	long units = binary ? (long)body : eio3_js_length(ws_payload, len);
	if (units < 0)
		return -GW_EINVAL;
	int nd = snprintf(digits, sizeof digits, "%ld:", units);
	if (gw_buf_reserve(out, (size_t)nd + body))
		return -GW_ENOMEM;
	memcpy(out->data + out->len, digits, (size_t)nd);
	out->len += (size_t)nd;
	if (binary) {
		out->data[out->len++] = 'b';
		out->data[out->len++] = '4';
		out->len += gw_b64_encode(ws_payload, len, (char *)out->data + out->len);
	} else if (len) {
		memcpy(out->data + out->len, ws_payload, len);
		out->len += len;
	}
	out->data[out->len] = 0;
	return 0;
}

int eio3_decode_frame(uint8_t *buf, size_t len, bool binary_frame, eio_packet *out)
{
	if (!binary_frame && len && buf[0] == 'b') {
		/* a client that forces base64 (b64=1) sends its binary as "b4<base64>" */
		eio_packet p;
		if (v3_packet(buf, len, false, true, &p) < 0)
			return -GW_EINVAL;
		*out = p;
		return 0;
	}
	if (!binary_frame)
		return eio_decode_frame(buf, len, false, out);
	if (len < 1 || buf[0] != 4)
		return -GW_EINVAL;
	*out = (eio_packet){.type = EIO_MESSAGE, .binary = true, .data = buf + 1, .len = len - 1};
	return 0;
}

int eio_encode_open(gw_buf *out, const char *sid, bool upgrade_websocket, int ping_interval_ms,
		    int ping_timeout_ms, size_t max_payload)
{
	/* sids are URL-safe already; escaping keeps the packet valid whatever is passed */
	if (gw_buf_puts(out, "0{\"sid\":") || gw_buf_put_json_string(out, sid, strlen(sid)) ||
	    gw_buf_printf(out, ",\"upgrades\":[%s],\"pingInterval\":%d,\"pingTimeout\":%d,"
			       "\"maxPayload\":%zu}",
			  upgrade_websocket ? "\"websocket\"" : "", ping_interval_ms,
			  ping_timeout_ms, max_payload))
		return -GW_ENOMEM;
	return 0;
}

static const char *const ERR_MSG[] = {
	[EIO_ERR_TRANSPORT_UNKNOWN] = "Transport unknown",
	[EIO_ERR_UNKNOWN_SID] = "Session ID unknown",
	[EIO_ERR_BAD_HANDSHAKE_METHOD] = "Bad handshake method",
	[EIO_ERR_BAD_REQUEST] = "Bad request",
	[EIO_ERR_FORBIDDEN] = "Forbidden",
	[EIO_ERR_UNSUPPORTED_PROTOCOL_VERSION] = "Unsupported protocol version",
};

const char *eio_error_message(int code)
{
	if (code < 0 || (size_t)code >= sizeof ERR_MSG / sizeof ERR_MSG[0])
		return "Bad request";
	return ERR_MSG[code];
}

int eio_error_status(int code) { return code == EIO_ERR_FORBIDDEN ? 403 : 400; }

int eio_error_body(int code, char *body, size_t len)
{
	/* An unknown code is reported as "Bad request" rather than invented. */
	if (code < 0 || (size_t)code >= sizeof ERR_MSG / sizeof ERR_MSG[0])
		code = EIO_ERR_BAD_REQUEST;
	int n = snprintf(body, len, "{\"code\":%d,\"message\":\"%s\"}", code, ERR_MSG[code]);
	if (n < 0 || (size_t)n >= len)
		return -GW_EINVAL;
	return n;
}
