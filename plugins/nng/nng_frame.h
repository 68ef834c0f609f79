/*
 * nng_frame.h — the NNG plugin's wire frame: one nng message per bus message,
 *
 *   topic SP payload              (keys: false, the default)
 *   topic SP key SP payload       (keys: true; the key may be empty)
 *
 * so that an nng SUB filter is a topic prefix and `nngcat --data 'sio.out {...}'` is a
 * backend. docs/nng.md is the user's side. Pure functions on bytes: no nng, no
 * allocation, no threads (the fuzz target links this file alone). Any thread.
 */
#ifndef SIOGW_NNG_FRAME_H
#define SIOGW_NNG_FRAME_H

#include <stdbool.h>
#include <stddef.h>

/* Longest topic, and longest key: half each of the slack a receive socket allows on top
 * of max_message for them (NF_SLACK). */
#define NF_SLACK (64u * 1024u)
#define NF_MAX_FIELD (NF_SLACK / 2)

typedef struct nf_frame {
	const char *topic; /* NUL-terminated (see nf_parse), never empty, no SP or NUL inside */
	size_t topic_len;
	const void *key;   /* NULL when there is none or it is empty */
	size_t key_len;
	const void *data;  /* the payload: any bytes, possibly empty */
	size_t len;
} nf_frame;

/*
 * Split `n` bytes of a received frame in place: the space after the topic becomes a
 * NUL, so f->topic is a C string; every pointer in *f points into buf. false (buf may
 * then be modified) when there is no space, the topic is empty or holds a NUL, or, with
 * keys, the space after the key is missing: such a frame is dropped and counted.
 */
bool nf_parse(char *buf, size_t n, bool keys, nf_frame *f);

/*
 * The size of the frame for a publication, or 0 when it cannot be framed: an empty
 * topic, a topic with a space or longer than NF_MAX_FIELD; with keys, a key with a space
 * or longer than NF_MAX_FIELD (without keys the key is not sent and not judged).
 * key may be NULL when key_len is 0.
 */
size_t nf_size(const char *topic, const void *key, size_t key_len, size_t len, bool keys);

/* Write the frame (nf_size() bytes, which must be non-zero) into out. */
void nf_encode(char *out, const char *topic, const void *key, size_t key_len, const void *data, size_t len,
	       bool keys);

#endif
