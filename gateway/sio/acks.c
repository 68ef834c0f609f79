#include "sio/acks.h"
#include "util/err.h"

#include <stdlib.h>

struct ack_entry {
	ack_entry *next; /* in the owner's list */
	ack_owed *owner;
	int64_t id;
	ack_req *req;
	bool active;
};

struct ack_req {
	ack_done_fn done;
	void *arg;
	size_t pending, acked, timed_out;
	ack_entry *entries;
	size_t n_entries, cap;
};

ack_req *ack_req_create(size_t max_targets, ack_done_fn done, void *arg)
{
	ack_req *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	if (max_targets && !(r->entries = calloc(max_targets, sizeof *r->entries))) {
		free(r);
		return NULL;
	}
	r->cap = max_targets;
	r->done = done;
	r->arg = arg;
	return r;
}

static void unlink_entry(ack_entry *e)
{
	ack_owed *o = e->owner;
	for (ack_entry **pp = &o->head; *pp; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			o->n--;
			break;
		}
	}
	e->active = false;
}

static void finish(ack_req *r)
{
	for (size_t i = 0; i < r->n_entries; i++)
		if (r->entries[i].active)
			unlink_entry(&r->entries[i]);
	if (r->done)
		r->done(r->arg, r->acked, r->timed_out);
	free(r->entries);
	free(r);
}

int ack_req_expect(ack_req *r, ack_owed *o, int64_t id, size_t owed_limit)
{
	if (o->n >= owed_limit || r->n_entries >= r->cap) {
		r->timed_out++;
		return -GW_EFULL;
	}
	ack_entry *e = &r->entries[r->n_entries++];
	e->owner = o;
	e->id = id;
	e->req = r;
	e->active = true;
	e->next = o->head;
	o->head = e;
	o->n++;
	r->pending++;
	return 0;
}

void ack_req_miss(ack_req *r) { r->timed_out++; }
size_t ack_req_pending(const ack_req *r) { return r->pending; }
void *ack_req_arg(const ack_req *r) { return r->arg; }

bool ack_req_seal(ack_req *r)
{
	if (r->pending)
		return false;
	finish(r);
	return true;
}

ack_req *ack_owed_take(ack_owed *o, int64_t id)
{
	for (ack_entry *e = o->head; e; e = e->next) {
		if (e->id == id) {
			ack_req *r = e->req;
			unlink_entry(e);
			return r;
		}
	}
	return NULL;
}

void ack_req_answered(ack_req *r)
{
	r->pending--;
	r->acked++;
	if (!r->pending)
		finish(r);
}

void ack_owed_settle(ack_owed *o)
{
	ack_entry *e = o->head;
	o->head = NULL;
	o->n = 0;
	while (e) {
		/* the next entry belongs to another request: it survives this finish */
		ack_entry *next = e->next;
		ack_req *r = e->req;
		e->active = false;
		r->pending--;
		r->timed_out++;
		if (!r->pending)
			finish(r);
		e = next;
	}
}

void ack_req_expire(ack_req *r)
{
	r->timed_out += r->pending;
	r->pending = 0;
	finish(r);
}
