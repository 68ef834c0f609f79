/*
 * utf8.c — strict UTF-8 validation as a DFA (see utf8.h), in the style of Bjoern
 * Hoehrmann's decoder but without decoding: each byte maps to a class, each (state,
 * class) to the next state. The states say how many continuation bytes are still due
 * and which range the next one must fall in, which is how overlongs (E0 80..9F,
 * F0 80..8F), surrogates (ED A0..BF) and code points past U+10FFFF (F4 90..BF) are
 * refused at the byte where they become certain.
 */
#include "util/utf8.h"

#include <string.h>

/* Byte classes:
 * 0 00..7F  1 80..8F  2 90..9F  3 A0..BF  4 C0..C1, F5..FF (never valid)
 * 5 C2..DF  6 E0  7 E1..EC, EE..EF  8 ED  9 F0  10 F1..F3  11 F4 */
static const uint8_t byte_class[256] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 00 */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 40 */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 80 */
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
	3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
	4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, /* C0 */
	5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,
	6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 7, /* E0 */
	9, 10, 10, 10, 11, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
};

/* States: 0 accept; 1/2/3: 1/2/3 continuation bytes due, next in 80..BF; 4: after E0
 * (next A0..BF); 5: after ED (next 80..9F); 6: after F0 (next 90..BF); 7: after F4
 * (next 80..8F); 8 reject, which no byte leaves. */
enum { REJECT = 8 };

static const uint8_t next_state[9][12] = {
	/*        0  1  2  3  4  5  6  7  8  9 10 11 */
	/* 0 */ { 0, 8, 8, 8, 8, 1, 4, 2, 5, 6, 3, 7 },
	/* 1 */ { 8, 0, 0, 0, 8, 8, 8, 8, 8, 8, 8, 8 },
	/* 2 */ { 8, 1, 1, 1, 8, 8, 8, 8, 8, 8, 8, 8 },
	/* 3 */ { 8, 2, 2, 2, 8, 8, 8, 8, 8, 8, 8, 8 },
	/* 4 */ { 8, 8, 8, 1, 8, 8, 8, 8, 8, 8, 8, 8 },
	/* 5 */ { 8, 1, 1, 8, 8, 8, 8, 8, 8, 8, 8, 8 },
	/* 6 */ { 8, 8, 2, 2, 8, 8, 8, 8, 8, 8, 8, 8 },
	/* 7 */ { 8, 2, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8 },
	/* 8 */ { 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8 },
};

#define HIGH_BITS 0x8080808080808080ull

/* Once rejected, *state stays rejected: later calls return false too. */
bool gw_utf8_feed(uint32_t *state, const uint8_t *s, size_t len)
{
	uint32_t st = *state;
	if (st >= REJECT)
		return false;
	size_t i = 0;
	while (i < len) {
		if (st == 0) {
			/* ASCII runs, the common case of JSON text, 8 bytes per step */
			uint64_t w;
			while (i + 8 <= len && (memcpy(&w, s + i, 8), !(w & HIGH_BITS)))
				i += 8;
			while (i < len && s[i] < 0x80)
				i++;
			if (i == len)
				break;
		}
		st = next_state[st][byte_class[s[i++]]];
		if (st == REJECT) {
			*state = st;
			return false;
		}
	}
	*state = st;
	return true;
}

bool gw_utf8_valid(const uint8_t *s, size_t len)
{
	uint32_t st = 0;
	return gw_utf8_feed(&st, s, len) && st == 0;
}
