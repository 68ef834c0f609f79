/* rand.h — ids from the kernel's CSPRNG (fetched a few ids ahead, per thread). Thread-safe. */
#ifndef GW_RAND_H
#define GW_RAND_H

#include <stddef.h>

#define GW_ID_LEN 20
/* Fill out with GW_ID_LEN URL-safe base64 chars and a NUL (out needs GW_ID_LEN+1). */
void gw_rand_id(char *out);
void gw_rand_bytes(void *out, size_t n);

#endif
