/* env_same.h — whether two parsed envelopes say the same: the fast path of env_parse
 * against env_parse_tree (tests/unit/bus/test_envelope.c, tests/fuzz/fuzz_envelope.c). */
#ifndef ENV_SAME_H
#define ENV_SAME_H

#include <stdbool.h>
#include <string.h>

#include "bus/envelope.h"

static inline bool env_same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static inline bool env_same_list(char **a, size_t na, char **b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (!env_same_str(a[i], b[i]))
			return false;
	return true;
}

static inline bool env_same(const env_in *a, const env_in *b)
{
	if (a->type != b->type || a->volatile_ != b->volatile_ || a->has_ack != b->has_ack ||
	    !env_same_str(a->target.nsp, b->target.nsp) || !env_same_str(a->event, b->event) ||
	    !env_same_list(a->target.rooms, a->target.n_rooms, b->target.rooms, b->target.n_rooms) ||
	    !env_same_list(a->target.except, a->target.n_except, b->target.except, b->target.n_except) ||
	    a->body.json_len != b->body.json_len || !env_same_str(a->body.json, b->body.json) ||
	    a->body.n_att != b->body.n_att || a->n_frames != b->n_frames)
		return false;
	for (size_t i = 0; i < a->n_frames; i++)
		if (a->frames[i]->len != b->frames[i]->len ||
		    memcmp(gw_frame_data(a->frames[i]), gw_frame_data(b->frames[i]), a->frames[i]->len) != 0)
			return false;
	return true;
}

#endif
