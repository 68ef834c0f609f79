#include "eio_fake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

static unsigned fake_seq;

eio_session *fake_open(const eio_handler *h, const char *handshake_json)
{
	return fake_open_protocol(h, handshake_json, 4);
}

eio_session *fake_open_protocol(const eio_handler *h, const char *handshake_json, int protocol)
{
	eio_session *s = calloc(1, sizeof *s);
	if (!s)
		abort();
	s->h = *h;
	s->protocol = protocol;
	s->queue_limit = 1000;
	/* 20 characters, like a real sid, different for each session */
	snprintf(s->sid, sizeof s->sid, "fakesid%013u", ++fake_seq);
	s->handshake = strdup(handshake_json ? handshake_json
					     : "{\"headers\":{},\"query\":{},\"address\":\"127.0.0.1\"}");
	if (s->h.on_open)
		s->h.on_open(s->h.ctx, s);
	return s;
}

void fake_recv(eio_session *s, const char *text)
{
	if (text[0] != '4')
		abort(); /* only message packets reach the layer above */
	if (!s->closed && s->h.on_message)
		s->h.on_message(s->h.ctx, s, (const uint8_t *)text + 1, strlen(text) - 1, false);
}

void fake_recv_binary(eio_session *s, const void *data, size_t len)
{
	if (!s->closed && s->h.on_message)
		s->h.on_message(s->h.ctx, s, data, len, true);
}

const char *fake_next(eio_session *s)
{
	if (s->n_read == s->n_out)
		return NULL;
	s->queued--;
	return s->out[s->n_read++];
}

size_t fake_unread(const eio_session *s) { return s->n_out - s->n_read; }

void fake_drop(eio_session *s, gw_close_reason reason) { eio_session_close(s, reason); }

void fake_free(eio_session *s)
{
	for (size_t i = 0; i < s->n_out; i++)
		free(s->out[i]);
	free(s->handshake);
	free(s);
}

/* ---- what eio.h promises the layers above ---- */

int eio_session_send(eio_session *s, gw_frame *const *frames, size_t n, bool volatile_)
{
	if (s->closed)
		return -GW_ECLOSED;
	if (volatile_ && s->queued)
		return -GW_EFULL;
	if (s->queued + n > s->queue_limit || s->n_out + n > FAKE_MAX_OUT) {
		eio_session_close(s, GW_CLOSE_QUEUE_OVERFLOW);
		return -GW_EFULL;
	}
	for (size_t i = 0; i < n; i++) {
		char *t = malloc(frames[i]->len + 1);
		if (!t)
			abort();
		memcpy(t, gw_frame_data(frames[i]), frames[i]->len);
		t[frames[i]->len] = 0;
		s->out_binary[s->n_out] = frames[i]->binary;
		s->out[s->n_out++] = t;
		s->queued++;
	}
	return 0;
}

size_t eio_send_many(eio_session *const *ss, size_t n, gw_frame *const *frames, size_t n_frames, bool volatile_)
{
	size_t ok = 0;
	for (size_t i = 0; i < n; i++)
		ok += eio_session_send(ss[i], frames, n_frames, volatile_) == 0;
	return ok;
}

void eio_session_close(eio_session *s, gw_close_reason reason)
{
	if (s->closed)
		return;
	s->closed = true;
	s->reason = reason;
	if (s->h.on_close)
		s->h.on_close(s->h.ctx, s, reason);
}

const char *eio_session_sid(const eio_session *s) { return s->sid; }
void *eio_session_user(const eio_session *s) { return s->user; }
void eio_session_set_user(eio_session *s, void *user) { s->user = user; }
const char *eio_session_handshake(const eio_session *s) { return s->handshake; }
bool eio_session_is_websocket(const eio_session *s) { (void)s; return true; }
int eio_session_protocol(const eio_session *s) { return s->protocol; }
