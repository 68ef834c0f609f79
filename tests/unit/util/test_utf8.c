#include "../test.h"
#include "util/utf8.h"

#define V(s) gw_utf8_valid((const uint8_t *)(s), sizeof(s) - 1)

TEST(utf8_accepts)
{
	CHECK(V(""));
	CHECK(V("hello, world"));
	CHECK(V("\x00"));
	CHECK(V("\x7f"));
	CHECK(V("\xc2\x80"));                  /* U+0080, the first 2-byte */
	CHECK(V("\xdf\xbf"));                  /* U+07FF */
	CHECK(V("\xe0\xa0\x80"));              /* U+0800, the first 3-byte */
	CHECK(V("\xed\x9f\xbf"));              /* U+D7FF, just below the surrogates */
	CHECK(V("\xee\x80\x80"));              /* U+E000, just above */
	CHECK(V("\xef\xbf\xbf"));              /* U+FFFF */
	CHECK(V("\xf0\x90\x80\x80"));          /* U+10000 */
	CHECK(V("\xf4\x8f\xbf\xbf"));          /* U+10FFFF, the last */
	CHECK(V("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5")); /* κόσμε */
	CHECK(V("0123456789abcdef\xe2\x82\xac" "0123456789abcdef")); /* € between ASCII runs */
}

TEST(utf8_rejects)
{
	CHECK(!V("\x80"));                     /* lone continuation */
	CHECK(!V("\xbf"));
	CHECK(!V("\xc0\x80"));                 /* overlong NUL */
	CHECK(!V("\xc1\xbf"));                 /* overlong 2-byte */
	CHECK(!V("\xe0\x80\xaf"));             /* overlong '/' */
	CHECK(!V("\xe0\x9f\xbf"));             /* overlong U+07FF */
	CHECK(!V("\xf0\x80\x80\xaf"));         /* overlong 4-byte */
	CHECK(!V("\xf0\x8f\xbf\xbf"));         /* overlong U+FFFF */
	CHECK(!V("\xed\xa0\x80"));             /* U+D800 */
	CHECK(!V("\xed\xbf\xbf"));             /* U+DFFF */
	CHECK(!V("\xed\xa0\x80\xed\xb0\x80")); /* a surrogate pair, CESU-8 */
	CHECK(!V("\xf4\x90\x80\x80"));         /* U+110000 */
	CHECK(!V("\xf5\x80\x80\x80"));
	CHECK(!V("\xff"));
	CHECK(!V("\xfe"));
	CHECK(!V("\xc2"));                     /* truncated */
	CHECK(!V("\xe2\x82"));
	CHECK(!V("\xf0\x90\x80"));
	CHECK(!V("\xc2\x41"));                 /* bad continuation */
	CHECK(!V("\xe2\x28\xa1"));
	CHECK(!V("abcdefgh\x80" "abcdefgh"));   /* after an 8-byte ASCII run */
	CHECK(!V("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80" "edited"));
}

/* Fed one byte at a time: false exactly at the first byte that cannot continue valid
 * UTF-8, and an unfinished sequence leaves state != 0. */
TEST(utf8_incremental)
{
	const uint8_t ok[] = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf0\x9f\x98\x80";
	uint32_t st = 0;
	for (size_t i = 0; i < sizeof ok - 1; i++)
		CHECK(gw_utf8_feed(&st, ok + i, 1));
	CHECK_EQ_INT(st, 0);

	const uint8_t bad[] = "ab\xed\xa0\x80";
	st = 0;
	CHECK(gw_utf8_feed(&st, bad, 3));     /* ED could still be U+D000..D7FF */
	CHECK(st != 0);
	CHECK(!gw_utf8_feed(&st, bad + 3, 1)); /* A0: a surrogate, known now */
	CHECK(!gw_utf8_feed(&st, (const uint8_t *)"a", 1)); /* rejection sticks */

	st = 0;
	CHECK(gw_utf8_feed(&st, (const uint8_t *)"\xf4", 1));
	CHECK(!gw_utf8_feed(&st, (const uint8_t *)"\x90", 1));

	st = 0;
	CHECK(gw_utf8_feed(&st, (const uint8_t *)"x\xe2\x82", 3)); /* truncated: true but */
	CHECK(st != 0);                                           /* not finished */
}

/* Every 1- to 3-byte sequence against a decoder written from the RFC 3629 table. */
static bool ref_valid(const uint8_t *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint8_t c = s[i];
		size_t k = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
			 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
		if (!k || i + k > n)
			return false;
		uint32_t cp = k == 1 ? c : c & (0x7f >> k);
		for (size_t j = 1; j < k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		static const uint32_t minimum[5] = {0, 0, 0x80, 0x800, 0x10000};
		if (cp < minimum[k] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k;
	}
	return true;
}

TEST(utf8_exhaustive_3byte)
{
	uint8_t s[4];
	long mismatches = 0;
	for (unsigned a = 0; a < 256; a++) {
		s[0] = (uint8_t)a;
		mismatches += gw_utf8_valid(s, 1) != ref_valid(s, 1);
		for (unsigned b = 0; b < 256; b++) {
			s[1] = (uint8_t)b;
			mismatches += gw_utf8_valid(s, 2) != ref_valid(s, 2);
			for (unsigned c = 0; c < 256; c++) {
				s[2] = (uint8_t)c;
				mismatches += gw_utf8_valid(s, 3) != ref_valid(s, 3);
			}
		}
	}
	CHECK_EQ_INT(mismatches, 0);
}

/* All 4-byte sequences that start F0..F4 with continuation-range bytes after. */
TEST(utf8_exhaustive_4byte)
{
	uint8_t s[4];
	long mismatches = 0;
	for (unsigned a = 0xf0; a <= 0xf7; a++)
		for (unsigned b = 0x80; b < 0xc0; b++)
			for (unsigned c = 0x7f; c <= 0xc0; c++)
				for (unsigned d = 0x7f; d <= 0xc0; d++) {
					s[0] = (uint8_t)a, s[1] = (uint8_t)b, s[2] = (uint8_t)c, s[3] = (uint8_t)d;
					mismatches += gw_utf8_valid(s, 4) != ref_valid(s, 4);
				}
	CHECK_EQ_INT(mismatches, 0);
}

int main(void)
{
	RUN(utf8_accepts);
	RUN(utf8_rejects);
	RUN(utf8_incremental);
	RUN(utf8_exhaustive_3byte);
	RUN(utf8_exhaustive_4byte);
	return TEST_END();
}
