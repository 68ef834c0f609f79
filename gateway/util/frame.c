#include "frame.h"

#include <stdlib.h>
#include <string.h>

gw_frame *gw_frame_new(size_t len, bool binary)
{
	gw_frame *f = malloc(sizeof *f + GW_FRAME_HEADROOM + len + 1);
	if (!f)
		return NULL;
	atomic_init(&f->refs, 1);
	f->binary = binary;
	f->len = len;
	f->mem[GW_FRAME_HEADROOM + len] = 0;
	return f;
}

gw_frame *gw_frame_from(const void *p, size_t len, bool binary)
{
	gw_frame *f = gw_frame_new(len, binary);
	if (f && len)
		memcpy(gw_frame_data(f), p, len);
	return f;
}

gw_frame *gw_frame_text(char eio_type, const void *p, size_t len)
{
	gw_frame *f = gw_frame_new(len + 1, false);
	if (!f)
		return NULL;
	gw_frame_data(f)[0] = (uint8_t)eio_type;
	if (len)
		memcpy(gw_frame_data(f) + 1, p, len);
	return f;
}

gw_frame *gw_frame_ref(gw_frame *f)
{
	atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
	return f;
}

void gw_frame_ref_n(gw_frame *f, size_t n)
{
	atomic_fetch_add_explicit(&f->refs, (int)n, memory_order_relaxed);
}

void gw_frame_unref(gw_frame *f)
{
	if (f && atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1)
		free(f);
}
