#include "rand.h"

#include <stdint.h>
#include <string.h>
#include <sys/random.h>

void gw_rand_bytes(void *out, size_t n)
{
	uint8_t *p = out;
	while (n) {
		ssize_t r = getrandom(p, n, 0);
		if (r <= 0)
			continue; /* EINTR; the kernel pool is initialized after boot */
		p += r;
		n -= (size_t)r;
	}
}

void gw_rand_id(char *out)
{
	static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	/* the kernel's bytes fetched for 24 ids at a time (two ids per connection: one
	 * getrandom() each was ~1 % of a connect); per thread, each byte used once */
	static _Thread_local uint8_t pool[24 * GW_ID_LEN];
	static _Thread_local size_t left;
	if (left < GW_ID_LEN) {
		gw_rand_bytes(pool, sizeof pool);
		left = sizeof pool;
	}
	uint8_t *raw = pool + sizeof pool - left;
	for (int i = 0; i < GW_ID_LEN; i++)
		out[i] = A[raw[i] & 63];
	out[GW_ID_LEN] = 0;
	memset(raw, 0, GW_ID_LEN);
	left -= GW_ID_LEN;
}
