/*
 * acks.h — bookkeeping for emit-with-ack: which targets still owe an answer.
 *
 * A request has one entry per target reached; each target (a socket) embeds an
 * ack_owed list of the entries it still owes. A request finishes exactly once — when
 * every entry was answered, its owner left, or it expired — and then calls its done
 * function and frees itself. No I/O, no timers: the caller arms a timer and calls
 * ack_req_expire. Service-thread only.
 */
#ifndef GW_ACKS_H
#define GW_ACKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ack_entry ack_entry;
typedef struct ack_req ack_req;

typedef struct ack_owed {
	ack_entry *head;
	size_t n;
} ack_owed;

/* Called once when the request finishes; r is freed right after it returns. */
typedef void (*ack_done_fn)(void *arg, size_t acked, size_t timed_out);

/* max_targets bounds ack_req_expect calls. NULL on allocation failure. */
ack_req *ack_req_create(size_t max_targets, ack_done_fn done, void *arg);
/* Target `o` owes an answer with `id`. -GW_EFULL when o already owes owed_limit
 * answers or the request is full (the target then counts as timed out). */
int ack_req_expect(ack_req *r, ack_owed *o, int64_t id, size_t owed_limit);
/* A target that could not be reached counts as timed out. */
void ack_req_miss(ack_req *r);
/* Every target was added: finishes now when none is pending. Returns true if the
 * request finished (r is gone). */
bool ack_req_seal(ack_req *r);
/* The target answered `id`: removes the entry and returns its request, or NULL for
 * an unknown (late, duplicate) id. Then call ack_req_answered(r). */
ack_req *ack_owed_take(ack_owed *o, int64_t id);
/* Count an answer taken with ack_owed_take; may finish (free) r. */
void ack_req_answered(ack_req *r);
/* The target leaves: each answer it owes counts as timed out. */
void ack_owed_settle(ack_owed *o);
/* The timeout passed: every pending entry times out; r finishes. */
void ack_req_expire(ack_req *r);
size_t ack_req_pending(const ack_req *r);
/* The arg given to ack_req_create. */
void *ack_req_arg(const ack_req *r);

#endif
