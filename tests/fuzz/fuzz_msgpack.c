/* libFuzzer target: socket.io-msgpack-parser packets (sio/sio_msgpack.h). What decodes
 * encodes again, and that encoding decodes to the same packet. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "sio/sio_msgpack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sio_packet p, q;
	sio_mp_att a, b;
	if (sio_mp_decode(data, size, 10, &p, &a))
		return 0;
	gw_frame *fr[10];
	for (unsigned i = 0; i < a.n; i++)
		fr[i] = gw_frame_from(a.data[i], a.len[i], true);
	gw_buf out = {0};
	assert(sio_mp_encode(&out, p.type, p.nsp, p.nsp_len, p.id, p.data, fr, a.n) == 0);
	assert(sio_mp_decode(out.data, out.len, 10, &q, &b) == 0);
	assert(q.type == p.type && q.id == p.id && q.nsp_len == p.nsp_len && memcmp(q.nsp, p.nsp, p.nsp_len) == 0);
	assert(b.n == a.n);
	for (unsigned i = 0; i < a.n; i++)
		assert(b.len[i] == a.len[i] && memcmp(b.data[i], a.data[i], a.len[i]) == 0);
	char *t1 = p.data ? cJSON_PrintUnformatted(p.data) : NULL, *t2 = q.data ? cJSON_PrintUnformatted(q.data) : NULL;
	assert(!t1 == !t2 && (!t1 || strcmp(t1, t2) == 0));
	free(t1);
	free(t2);
	sio_mp_clear(&q, &b);
	gw_buf_free(&out);
	for (unsigned i = 0; i < a.n; i++)
		gw_frame_unref(fr[i]);
	sio_mp_clear(&p, &a);
	return 0;
}
