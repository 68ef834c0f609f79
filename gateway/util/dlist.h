/*
 * dlist.h — an intrusive doubly linked list of "pending" items: a struct embeds a
 * gw_dlink, joins a list at most once (gw_dlist_add is a no-op for a member), and
 * leaves it in O(1) from anywhere (gw_dlist_del, a no-op for a non-member). Used for
 * the connections to write before the loop waits. Single-threaded.
 */
#ifndef GW_DLIST_H
#define GW_DLIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct gw_dlink {
	struct gw_dlink *prev, *next;
	bool on;
} gw_dlink;

typedef struct gw_dlist {
	gw_dlink *head;
} gw_dlist;

/* The struct of type T whose member M is the link l. */
#define GW_DLIST_ITEM(l, T, M) ((T *)(void *)((char *)(l) - offsetof(T, M)))

static inline void gw_dlist_add(gw_dlist *d, gw_dlink *l)
{
	if (l->on)
		return;
	l->on = true;
	l->prev = NULL;
	l->next = d->head;
	if (d->head)
		d->head->prev = l;
	d->head = l;
}

static inline void gw_dlist_del(gw_dlist *d, gw_dlink *l)
{
	if (!l->on)
		return;
	l->on = false;
	if (l->prev)
		l->prev->next = l->next;
	else
		d->head = l->next;
	if (l->next)
		l->next->prev = l->prev;
}

/* Take the first link off the list; NULL when empty. */
static inline gw_dlink *gw_dlist_pop(gw_dlist *d)
{
	gw_dlink *l = d->head;
	if (l)
		gw_dlist_del(d, l);
	return l;
}

#endif
