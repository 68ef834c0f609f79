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
	uint8_t raw[GW_ID_LEN];
	gw_rand_bytes(raw, sizeof raw);
	for (int i = 0; i < GW_ID_LEN; i++)
		out[i] = A[raw[i] & 63];
	out[GW_ID_LEN] = 0;
}
