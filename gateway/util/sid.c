#include "util/sid.h"

#include <stdint.h>
#include <string.h>

#include "util/rand.h"

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* FNV-1a, 32 bits, from a given basis (two bases: the tag's and the check's). */
static uint32_t fnv1a(uint32_t h, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= (uint8_t)s[i];
		h *= 16777619u;
	}
	return h;
}

/* 24 bits as 4 characters. */
static void put24(char *out, uint32_t h)
{
	h ^= h >> 24; /* fold the top byte in */
	for (int i = 0; i < 4; i++)
		out[i] = B64[(h >> (6 * i)) & 63];
}

#define TAG_BASIS 2166136261u
#define CHECK_BASIS 0x5109c0deu
#define BODY_LEN (GW_ID_LEN - 4) /* tag + random: what the check covers */

void gw_node_tag(const char *node_id, char tag[GW_TAG_LEN + 1])
{
	put24(tag, fnv1a(TAG_BASIS, node_id, strlen(node_id)));
	tag[GW_TAG_LEN] = 0;
}

void gw_sid_new(char *out, const char *tag)
{
	gw_rand_id(out); /* 20 random characters; the first 4 and the last 4 are replaced */
	memcpy(out, tag, GW_TAG_LEN);
	put24(out + BODY_LEN, fnv1a(CHECK_BASIS, out, BODY_LEN));
	out[GW_ID_LEN] = 0;
}

bool gw_sid_tag(const char *id, size_t len, char tag[GW_TAG_LEN + 1])
{
	for (size_t i = len; i > 0; i--)
		if (id[i - 1] == '#') { /* "/nsp#<id>": after the last '#' */
			id += i;
			len -= i;
			break;
		}
	if (len != GW_ID_LEN)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = id[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	char check[4];
	put24(check, fnv1a(CHECK_BASIS, id, BODY_LEN));
	if (memcmp(check, id + BODY_LEN, 4) != 0)
		return false;
	memcpy(tag, id, GW_TAG_LEN);
	tag[GW_TAG_LEN] = 0;
	return true;
}
