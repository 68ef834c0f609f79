/*
 * frame.h — one encoded Engine.IO packet, refcounted, shared by every connection it
 * is queued to (a broadcast is encoded once). The payload is exactly what a websocket
 * frame carries: "4<socket.io packet>" for a text message, raw bytes for a binary
 * message, "2"/"3"/"6"... for control packets. GW_FRAME_HEADROOM bytes precede the
 * payload so the websocket layer can write its header in place (LWS_PRE).
 *
 * Threads: created on any thread, then handed over; ref/unref are atomic.
 */
#ifndef GW_FRAME_H
#define GW_FRAME_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_FRAME_HEADROOM 16

typedef struct gw_frame {
	atomic_int refs;
	bool binary;   /* binary message (attachment), else text */
	size_t len;    /* payload length */
	uint8_t mem[]; /* GW_FRAME_HEADROOM + len + 1 (NUL after payload) */
} gw_frame;

/* New frame with refs = 1 and room for len payload bytes (uninitialized). */
gw_frame *gw_frame_new(size_t len, bool binary);
/* New frame holding a copy of p. */
gw_frame *gw_frame_from(const void *p, size_t len, bool binary);
/* New text frame: the one-char Engine.IO type followed by p. */
gw_frame *gw_frame_text(char eio_type, const void *p, size_t len);
static inline uint8_t *gw_frame_data(gw_frame *f) { return f->mem + GW_FRAME_HEADROOM; }
gw_frame *gw_frame_ref(gw_frame *f);
void gw_frame_ref_n(gw_frame *f, size_t n); /* n references at once (n < INT_MAX) */
void gw_frame_unref(gw_frame *f);

#endif
