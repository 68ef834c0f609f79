/* base64.h — standard base64 (RFC 4648, with padding), as Engine.IO and $binary use. */
#ifndef GW_BASE64_H
#define GW_BASE64_H

#include <stddef.h>
#include <stdint.h>

static inline size_t gw_b64_enc_len(size_t n) { return (n + 2) / 3 * 4; }
/* Writes gw_b64_enc_len(n) chars (no NUL). Returns chars written. */
size_t gw_b64_encode(const uint8_t *in, size_t n, char *out);
/* Decodes into out (at most n*3/4 bytes; out may equal in for in-place decoding).
 * Accepts missing padding. Returns bytes written, or -1 on invalid input. */
long gw_b64_decode(const char *in, size_t n, uint8_t *out);

#endif
