/* libFuzzer target: Socket.IO packets and placeholder conversions (sio_codec.h). */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "sio/sio_codec.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *print(const cJSON *j) { return j ? cJSON_PrintUnformatted(j) : NULL; }

/* Decoded packets re-encode to an equivalent packet. */
static void roundtrip(const sio_packet *p)
{
	if (memchr(p->nsp, 0, p->nsp_len))
		return; /* a C-string namespace cannot carry a NUL */
	char *nsp = strndup(p->nsp, p->nsp_len);
	char *json = print(p->data);
	assert(nsp && (json || !p->data));
	gw_buf b = {0};
	assert(sio_encode(&b, p->type, nsp, p->id, p->attachments, json, json ? strlen(json) : 0) == 0);
	sio_packet q;
	assert(sio_decode((const char *)b.data, b.len, &q) == 0);
	assert(q.type == p->type && q.attachments == p->attachments && q.id == p->id);
	assert(q.nsp_len == p->nsp_len && memcmp(q.nsp, p->nsp, p->nsp_len) == 0);
	char *json2 = print(q.data);
	assert((!json && !json2) || (json && json2 && strcmp(json, json2) == 0));
	free(json2);
	sio_packet_clear(&q);
	gw_buf_free(&b);
	free(json);
	free(nsp);
}

/* Placeholders → $binary with fake attachments (slices of the input), then back. */
static void conversions(const sio_packet *p, const uint8_t *data, size_t size)
{
	unsigned n = p->attachments;
	const uint8_t **att = calloc(n + 1, sizeof *att);
	size_t *len = calloc(n + 1, sizeof *len);
	assert(att && len);
	for (unsigned i = 0; i < n; i++) {
		att[i] = data + (i % (size + 1)) / 2;
		len[i] = (size - (size_t)(att[i] - data)) % 7;
	}
	cJSON *d = cJSON_Duplicate(p->data, 1);
	if (d && sio_placeholders_to_binary(d, att, len, n) == 0) {
		uint8_t **back;
		size_t *back_len;
		/* the client's own literal {"$binary":..} objects may hold bad base64 */
		int m = sio_binary_to_placeholders(d, &back, &back_len);
		assert(m >= 0 || m == -GW_EINVAL);
		for (int i = 0; i < m; i++)
			free(back[i]);
		free(back);
		free(back_len);
	}
	cJSON_Delete(d);
	free(att);
	free(len);

	/* client data may hold literal {"$binary":..} objects too */
	d = cJSON_Duplicate(p->data, 1);
	uint8_t **b;
	size_t *bl;
	int m = d ? sio_binary_to_placeholders(d, &b, &bl) : 0;
	assert(m >= 0 || m == -GW_EINVAL);
	for (int i = 0; i < m; i++)
		free(b[i]);
	if (m > 0) {
		free(b);
		free(bl);
	}
	cJSON_Delete(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* exact-size copy, so ASan sees any read past the end */
	char *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	if (size)
		memcpy(buf, data, size);
	sio_packet p;
	if (sio_decode(buf, size, &p) == 0) {
		assert(p.nsp_len >= 1 && p.nsp[0] == '/');
		assert(p.attachments <= SIO_MAX_ATTACHMENTS);
		roundtrip(&p);
		conversions(&p, data, size);
		sio_packet_clear(&p);
	} else {
		assert(p.data == NULL);
	}
	free(buf);
	return 0;
}
