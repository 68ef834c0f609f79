/* libFuzzer target: bus envelopes (envelope.h). */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/bus/env_same.h"
#include "bus/envelope.h"
#include "sio/sio_codec.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The final frames of a plain emit decode as the packet they claim to be. */
static void check_frames(const env_in *e)
{
	assert(e->n_frames == 1 + e->body.n_att);
	gw_frame *f = e->frames[0];
	const char *t = (const char *)gw_frame_data(f);
	assert(!f->binary && f->len >= 1 && t[0] == '4');
	sio_packet p;
	assert(sio_decode(t + 1, f->len - 1, &p) == 0);
	assert(p.type == (e->body.n_att ? SIO_BINARY_EVENT : SIO_EVENT));
	assert(p.attachments == e->body.n_att);
	assert(p.nsp_len == strlen(e->target.nsp) && memcmp(p.nsp, e->target.nsp, p.nsp_len) == 0);
	assert(strcmp(cJSON_GetArrayItem(p.data, 0)->valuestring, e->event) == 0);

	/* and back to a bus event, as the gateway does for client events */
	const uint8_t **att = calloc(e->body.n_att + 1, sizeof *att);
	size_t *len = calloc(e->body.n_att + 1, sizeof *len);
	assert(att && len);
	for (size_t i = 0; i < e->body.n_att; i++) {
		assert(e->frames[1 + i] == e->body.att[i] && e->body.att[i]->binary);
		att[i] = gw_frame_data(e->body.att[i]);
		len[i] = e->body.att[i]->len;
	}
	/* without attachments "data" is spliced from the packet's text: still one valid
	 * JSON object */
	char *s = env_build_event(e->target.nsp, "sid", "node", p.data, e->body.n_att ? NULL : p.json, p.json_len,
				  att, len, (unsigned)e->body.n_att, NULL, NULL);
	assert(s);
	cJSON *back = cJSON_Parse(s);
	assert(back && cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(back, "data")));
	cJSON_Delete(back);
	free(s);
	free(att);
	free(len);
	sio_packet_clear(&p);
}

static void check_json(const char *s)
{
	if (!s)
		return;
	cJSON *j = cJSON_Parse(s);
	assert(j);
	cJSON_Delete(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* exact-size copy, so ASan sees any read past the end */
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	if (size)
		memcpy(buf, data, size);
	env_in *e = NULL;
	char err[128] = "";
	int rc = env_parse(buf, size, 1 << 16, &e, err, sizeof err);
	/* the fast path (a plain emit, no tree) says what the tree says */
	env_in *t = NULL;
	char terr[128] = "";
	int trc = env_parse_tree(buf, size, 1 << 16, &t, terr, sizeof terr);
	assert(rc == trc && strcmp(err, terr) == 0);
	assert(rc || env_same(e, t));
	env_in_free(t);
	if (rc == 0) {
		assert(e);
		if (e->type == ENV_EMIT && !e->has_ack)
			check_frames(e);
		else
			assert(!e->frames && !e->n_frames);
		if (e->type == ENV_EMIT || e->type == ENV_ACK) {
			cJSON *j = cJSON_Parse(e->body.json);
			assert(cJSON_IsArray(j) && strlen(e->body.json) == e->body.json_len);
			cJSON_Delete(j);
		}
		check_json(e->data_json);
		check_json(e->error_json);
		assert(e->type != ENV_CONNECT_RESULT || e->ok || e->error_json);
		env_in_free(e);
	} else {
		/* every refusal says why */
		assert(!e && (rc == -GW_EINVAL || rc == -GW_ETOOBIG || rc == -GW_ENOMEM) && err[0]);
	}
	free(buf);
	return 0;
}
