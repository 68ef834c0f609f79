#include "buf.h"
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int gw_buf_reserve(gw_buf *b, size_t extra)
{
	if (b->len + extra + 1 <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < b->len + extra + 1) {
		if (cap > SIZE_MAX / 2)
			return -GW_ENOMEM;
		cap *= 2;
	}
	uint8_t *p = realloc(b->data, cap);
	if (!p)
		return -GW_ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int gw_buf_append(gw_buf *b, const void *p, size_t n)
{
	if (gw_buf_reserve(b, n))
		return -GW_ENOMEM;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = 0;
	return 0;
}

int gw_buf_putc(gw_buf *b, char c) { return gw_buf_append(b, &c, 1); }
int gw_buf_puts(gw_buf *b, const char *s) { return gw_buf_append(b, s, strlen(s)); }

int gw_buf_printf(gw_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -GW_EINVAL;
	if (gw_buf_reserve(b, (size_t)n))
		return -GW_ENOMEM;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

int gw_buf_put_json_string(gw_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	/* worst case every byte as \u00XX */
	if (n > (SIZE_MAX - 2) / 6 || gw_buf_reserve(b, 6 * n + 2))
		return -GW_ENOMEM;
	uint8_t *o = b->data + b->len;
	*o++ = '"';
	for (size_t i = 0; i < n; i++) {
		uint8_t c = (uint8_t)s[i];
		if (c == '"' || c == '\\') {
			*o++ = '\\';
			*o++ = c;
		} else if (c >= 0x20) {
			*o++ = c;
		} else {
			*o++ = '\\';
			switch (c) {
			case '\b': *o++ = 'b'; break;
			case '\f': *o++ = 'f'; break;
			case '\n': *o++ = 'n'; break;
			case '\r': *o++ = 'r'; break;
			case '\t': *o++ = 't'; break;
			default:
				*o++ = 'u';
				*o++ = '0';
				*o++ = '0';
				*o++ = (uint8_t)hex[c >> 4];
				*o++ = (uint8_t)hex[c & 15];
			}
		}
	}
	*o++ = '"';
	b->len = (size_t)(o - b->data);
	b->data[b->len] = 0;
	return 0;
}

void gw_buf_reset(gw_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = 0;
}

void gw_buf_free(gw_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

uint8_t *gw_buf_steal(gw_buf *b, size_t *len)
{
	uint8_t *p = b->data;
	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}
