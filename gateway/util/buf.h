/* buf.h — growable byte buffer. Not thread-safe; owner frees with gw_buf_free. */
#ifndef GW_BUF_H
#define GW_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct gw_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
} gw_buf;

/* All return 0 or -GW_ENOMEM. data is always NUL-terminated after a successful append
 * (the NUL is not counted in len). */
int gw_buf_reserve(gw_buf *b, size_t extra);
int gw_buf_append(gw_buf *b, const void *p, size_t n);
int gw_buf_putc(gw_buf *b, char c);
int gw_buf_puts(gw_buf *b, const char *s);
int gw_buf_printf(gw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s[0..n) as a JSON string literal, quotes included: '"', '\\' and control characters
 * escaped, every other byte as it is (as cJSON prints). */
int gw_buf_put_json_string(gw_buf *b, const char *s, size_t n);
void gw_buf_reset(gw_buf *b);   /* len = 0, keeps memory */
void gw_buf_free(gw_buf *b);
/* Detach the storage (caller frees with free()); b becomes empty. */
uint8_t *gw_buf_steal(gw_buf *b, size_t *len);

#endif
