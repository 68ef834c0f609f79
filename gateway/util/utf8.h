/*
 * utf8.h — strict UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing past
 * U+10FFFF), as RFC 6455 §8.1 requires of text frames and close reasons.
 */
#ifndef GW_UTF8_H
#define GW_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

bool gw_utf8_valid(const uint8_t *s, size_t len);

/* Incremental form, for a message validated fragment by fragment: state starts at 0;
 * returns false as soon as the bytes so far cannot begin valid UTF-8. The whole text is
 * valid when the last call returned true and *state is 0 again. */
bool gw_utf8_feed(uint32_t *state, const uint8_t *s, size_t len);

#endif
