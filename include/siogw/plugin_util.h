/*
 * siogw/plugin_util.h — helpers a bus plugin would otherwise write again: error text,
 * logging through the host table, option look-ups, a subscription table with its
 * matching, and the "wait out the in-flight deliver()" handshake behind the ABI's
 * unsubscribe() promise.
 *
 * Header only: everything is static inline, so a plugin that includes it still links
 * nothing of the gateway (plugin.h's rule). It includes plugin.h and libc headers
 * only; the in-flight helpers use pthreads (part of libc on glibc >= 2.34, else the
 * plugin links -pthread as it already does for its own threads). Nothing here is
 * part of the ABI: the host never sees these types, and a plugin may copy or ignore
 * any of it.
 *
 * Threads. Unless a comment says otherwise a helper touches only its arguments and is
 * safe from any thread; the subscription table and the in-flight record are guarded by
 * a lock the plugin owns (the same lock for both), and every helper on them expects
 * that lock held by the caller, except spu_unsubscribe, which takes it itself.
 */
#ifndef SIOGW_PLUGIN_UTIL_H
#define SIOGW_PLUGIN_UTIL_H

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "siogw/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define SPU_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define SPU_PRINTF(f, a)
#endif

/* ---- error text and logging ---------------------------------------------------- */

/* Format into err (an op's err/err_len, or health()'s buf); NULL or 0 length: nothing.
 * Always NUL-terminated, truncated to err_len. */
static inline void spu_vseterr(char *err, size_t err_len, const char *fmt, va_list ap)
{
	if (!err || err_len == 0)
		return;
	vsnprintf(err, err_len, fmt, ap);
}

static inline void spu_seterr(char *err, size_t err_len, const char *fmt, ...) SPU_PRINTF(3, 4);
static inline void spu_seterr(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	spu_vseterr(err, err_len, fmt, ap);
	va_end(ap);
}

/* Longest log line a plugin sends (longer ones are cut); librdkafka's lines need room. */
#define SPU_LOG_LINE 768

/*
 * One line through host->log under the plugin's name. Any thread (host->log is). A NULL
 * host (check() has none) or a host without log: nothing. The line is formatted here
 * and passed as "%s", so the host never sees the plugin's format string.
 */
static inline void spu_vlog(const siogw_host *host, const char *plugin, int level, const char *fmt,
			    va_list ap)
{
	if (!host || !host->log)
		return;
	char line[SPU_LOG_LINE];
	vsnprintf(line, sizeof line, fmt, ap);
	host->log(host->ctx, level, plugin, "%s", line);
}

static inline void spu_log(const siogw_host *host, const char *plugin, int level, const char *fmt, ...)
	SPU_PRINTF(4, 5);
static inline void spu_log(const siogw_host *host, const char *plugin, int level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	spu_vlog(host, plugin, level, fmt, ap);
	va_end(ap);
}

/* create()'s first test: a host table that has deliver(). 0, or -SIOGW_EINVAL with
 * "<plugin>: host services table too small or without deliver" in err. */
static inline int spu_host_check(const siogw_host *host, const char *plugin, char *err, size_t err_len)
{
	if (!host || host->size < offsetof(siogw_host, deliver) + sizeof host->deliver || !host->deliver) {
		spu_seterr(err, err_len, "%s: host services table too small or without deliver", plugin);
		return -SIOGW_EINVAL;
	}
	return 0;
}

/* ---- options ------------------------------------------------------------------- */

/* The entry named `name` in create()'s or check()'s option values, or NULL. The
 * pointers stay the host's (valid until destroy() for create()'s). */
static inline const siogw_optval *spu_opt_find(const siogw_optval *opts, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (opts[i].name && strcmp(opts[i].name, name) == 0)
			return &opts[i];
	return NULL;
}

/* Its index (what check() reports in *bad), or SIZE_MAX. */
static inline size_t spu_opt_index(const siogw_optval *opts, size_t n, const char *name)
{
	const siogw_optval *o = spu_opt_find(opts, n, name);
	return o ? (size_t)(o - opts) : SIZE_MAX;
}

/* Its text, or def when absent (a host may pass fewer entries than declared). */
static inline const char *spu_opt_str(const siogw_optval *opts, size_t n, const char *name, const char *def)
{
	const siogw_optval *o = spu_opt_find(opts, n, name);
	return o ? o->str : def;
}

/* Its number (INT/SIZE/DURATION; BOOL as 1/0; ENUM as the choice's index), or def. */
static inline int64_t spu_opt_num(const siogw_optval *opts, size_t n, const char *name, int64_t def)
{
	const siogw_optval *o = spu_opt_find(opts, n, name);
	return o ? o->num : def;
}

/* The declaration governing key `name`: same name first, then the first PREFIX option
 * that starts it and is shorter (the host's rule); *is_prefix says which. NULL: none. */
static inline const siogw_option *spu_decl_find(const siogw_option *table, size_t n, const char *name,
						 bool *is_prefix)
{
	*is_prefix = false;
	if (!name)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (table[i].type != SIOGW_OPT_PREFIX && strcmp(table[i].name, name) == 0)
			return &table[i];
	size_t nl = strlen(name);
	for (size_t i = 0; i < n; i++) {
		size_t pl = strlen(table[i].name);
		if (table[i].type == SIOGW_OPT_PREFIX && nl > pl && memcmp(name, table[i].name, pl) == 0) {
			*is_prefix = true;
			return &table[i];
		}
	}
	return NULL;
}

/* How many choices an ENUM's "a|b|c" holds. */
static inline int64_t spu_choice_count(const char *choices)
{
	int64_t n = 1;
	if (!choices || !*choices)
		return 0;
	for (const char *p = choices; *p; p++)
		n += *p == '|';
	return n;
}

/* The index of `s` among an ENUM's choices ("a|b|c": "b" is 1), or -1. What the host
 * puts in optval.num; a plugin needs it only to judge a text of its own. */
static inline int64_t spu_choice_index(const char *choices, const char *s)
{
	int64_t idx = 0;
	size_t sl = strlen(s);
	for (const char *p = choices ? choices : ""; *p; idx++) {
		const char *bar = strchr(p, '|');
		size_t l = bar ? (size_t)(bar - p) : strlen(p);
		if (l == sl && memcmp(p, s, l) == 0)
			return idx;
		if (!bar)
			break;
		p = bar + 1;
	}
	return -1;
}

/*
 * Judge one value against its declaration as the host does (a plugin may be driven by
 * another host): INT/SIZE/DURATION within [min, max] when min <= max, an ENUM's index
 * (optval.num, ABI 1.1) one of the choices. 0, or -SIOGW_EINVAL with
 * "<plugin>: option <name> = <n> out of range [min, max]" or
 * "<plugin>: option <name>: '<text>' is not one of <choices>" in err.
 */
static inline int spu_opt_judge(const char *plugin, const siogw_option *d, const siogw_optval *o, char *err,
				size_t err_len)
{
	bool ranged = d->type == SIOGW_OPT_INT || d->type == SIOGW_OPT_SIZE || d->type == SIOGW_OPT_DURATION;
	if (ranged && d->min <= d->max && (o->num < d->min || o->num > d->max)) {
		spu_seterr(err, err_len, "%s: option %s = %lld out of range [%lld, %lld]", plugin, d->name,
			   (long long)o->num, (long long)d->min, (long long)d->max);
		return -SIOGW_EINVAL;
	}
	if (d->type == SIOGW_OPT_ENUM && (o->num < 0 || o->num >= spu_choice_count(d->choices))) {
		spu_seterr(err, err_len, "%s: option %s: '%s' is not one of %s", plugin, d->name,
			   o->str ? o->str : "(null)", d->choices ? d->choices : "");
		return -SIOGW_EINVAL;
	}
	return 0;
}

/* ---- create() and check() -------------------------------------------------------- */

/*
 * An instance built in three steps. alloc: the instance with its locks, `host` stored
 * (NULL for check()), nothing configured; NULL when out of memory. configure: judge
 * the options and build what create() promises; on failure a -SIOGW_E* with err set
 * and *bad (when non-NULL) the index of the option to blame, if any. free: undo any
 * part of both (and destroy()'s last step).
 */
typedef struct spu_ctor {
	void *(*alloc)(const siogw_host *host);
	int (*configure)(void *self, const siogw_optval *opts, size_t n_opts, size_t *bad, char *err,
			 size_t err_len);
	void (*free)(void *self);
} spu_ctor;

/* create() from the three steps: spu_host_check, alloc, configure; a failed configure
 * frees the instance. "<plugin>: out of memory" when alloc fails. */
static inline int spu_create(const char *plugin, const spu_ctor *c, const siogw_host *host,
			     const siogw_optval *opts, size_t n_opts, void **self, char *err, size_t err_len)
{
	*self = NULL;
	if (spu_host_check(host, plugin, err, err_len))
		return -SIOGW_EINVAL;
	void *s = c->alloc(host);
	if (!s) {
		spu_seterr(err, err_len, "%s: out of memory", plugin);
		return -SIOGW_ENOMEM;
	}
	int rc = c->configure(s, opts, n_opts, NULL, err, err_len);
	if (rc) {
		c->free(s);
		return rc;
	}
	*self = s;
	return 0;
}

/* check(): create() without a host, and the instance freed at once. */
static inline int spu_check(const char *plugin, const spu_ctor *c, const siogw_optval *opts, size_t n_opts,
			    size_t *bad, char *err, size_t err_len)
{
	void *s = c->alloc(NULL);
	if (!s) {
		spu_seterr(err, err_len, "%s: out of memory", plugin);
		return -SIOGW_ENOMEM;
	}
	int rc = c->configure(s, opts, n_opts, bad, err, err_len);
	c->free(s);
	return rc;
}

/*
 * The two ops themselves, static, for a plugin built from `ctor` (a spu_ctor):
 *
 *   static const spu_ctor kafka_ctor = {kafka_new, kafka_configure, kafka_free};
 *   SPU_CTOR_OPS(kafka, PLUGIN_NAME, kafka_ctor)
 *
 * defines kafka_create and kafka_check, as SPU_PLUGIN_V1 names them.
 */
#define SPU_CTOR_OPS(pfx, plugin, ctor)                                                                 \
	static int pfx##_create(const siogw_host *host, const siogw_optval *opts, size_t n_opts, void **self, \
				char *err, size_t err_len)                                                    \
	{                                                                                               \
		return spu_create(plugin, &(ctor), host, opts, n_opts, self, err, err_len);             \
	}                                                                                               \
	static int pfx##_check(const siogw_optval *opts, size_t n_opts, size_t *bad, char *err, size_t err_len) \
	{                                                                                               \
		return spu_check(plugin, &(ctor), opts, n_opts, bad, err, err_len);                     \
	}

/* ---- subscriptions ------------------------------------------------------------- */

/* One subscription: its id, SIOGW_SUB_EXACT or _PREFIX, and its own copy of the pattern. */
typedef struct spu_sub {
	uint64_t id;
	int kind;
	size_t plen;
	char *pattern;
} spu_sub;

/* Does `topic` match (EXACT: equal; PREFIX: starts with the pattern)? */
static inline bool spu_match(const char *pattern, size_t plen, int kind, const char *topic)
{
	if (kind == SIOGW_SUB_EXACT)
		return strcmp(topic, pattern) == 0;
	return strncmp(topic, pattern, plen) == 0;
}

static inline bool spu_sub_matches(const spu_sub *s, const char *topic)
{
	return spu_match(s->pattern, s->plen, s->kind, topic);
}

/* subscribe()'s first test: a pattern, a known kind, and an EXACT pattern not empty.
 * A plugin adds its own rules (kafka's topic names, nng's spaces). */
static inline bool spu_sub_args_ok(const char *pattern, int kind)
{
	if (!pattern || (kind != SIOGW_SUB_EXACT && kind != SIOGW_SUB_PREFIX))
		return false;
	return kind != SIOGW_SUB_EXACT || pattern[0];
}

/*
 * The subscriptions in subscription order (deliveries follow it). Zero-initialized is
 * empty. `gen` is bumped by every removal, so that a delivery loop that snapshotted the
 * matching ids under the lock and dropped it can tell cheaply whether one may have
 * gone (spu_subs_still). Guarded by the plugin's lock.
 */
typedef struct spu_subs {
	spu_sub *v;
	size_t n, cap;
	uint64_t gen;
} spu_subs;

static inline spu_sub *spu_subs_find(const spu_subs *t, uint64_t id)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i].id == id)
			return &t->v[i];
	return NULL;
}

/* Is any subscription matching `topic`? */
static inline bool spu_subs_any(const spu_subs *t, const char *topic)
{
	for (size_t i = 0; i < t->n; i++)
		if (spu_sub_matches(&t->v[i], topic))
			return true;
	return false;
}

/* Is `id`, matched when the table was at generation `gen`, still subscribed? */
static inline bool spu_subs_still(const spu_subs *t, uint64_t id, uint64_t gen)
{
	return t->gen == gen || spu_subs_find(t, id) != NULL;
}

/* Room for one more entry, so that a following spu_subs_add cannot fail: 0 or
 * -SIOGW_ENOMEM (the table unchanged). */
static inline int spu_subs_reserve(spu_subs *t)
{
	if (t->n < t->cap)
		return 0;
	size_t cap = t->cap ? t->cap * 2 : 8;
	spu_sub *nv = realloc(t->v, cap * sizeof *nv);
	if (!nv)
		return -SIOGW_ENOMEM;
	t->v = nv;
	t->cap = cap;
	return 0;
}

/* Append; the table owns `pattern` (malloc'd) on success, the caller keeps it on
 * failure (-SIOGW_ENOMEM). The caller checks the id is new (spu_subs_find). */
static inline int spu_subs_add(spu_subs *t, uint64_t id, int kind, char *pattern)
{
	if (spu_subs_reserve(t))
		return -SIOGW_ENOMEM;
	t->v[t->n++] = (spu_sub){.id = id, .kind = kind, .plen = strlen(pattern), .pattern = pattern};
	return 0;
}

/* Remove subscription `id`, keeping the order of the others; bumps gen. 0 with the
 * entry copied to *gone (its pattern now the caller's to free, after dropping the lock
 * if it likes), or -SIOGW_EINVAL when there is no such id (unsubscribe()'s answer). */
static inline int spu_subs_drop(spu_subs *t, uint64_t id, spu_sub *gone)
{
	spu_sub *s = spu_subs_find(t, id);
	if (!s)
		return -SIOGW_EINVAL;
	*gone = *s;
	size_t i = (size_t)(s - t->v);
	memmove(&t->v[i], &t->v[i + 1], (t->n - i - 1) * sizeof *t->v);
	t->n--;
	t->gen++;
	return 0;
}

/* Free every pattern and the array; the table is empty again. No lock: destroy(). */
static inline void spu_subs_free(spu_subs *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].pattern);
	free(t->v);
	*t = (spu_subs){0};
}

/* Grow the id buffer *ids (capacity *cap) to hold `want` ids; returns how many it holds
 * now, fewer than `want` only when out of memory. The buffer belongs to one thread. */
static inline size_t spu_ids_fit(uint64_t **ids, size_t *cap, size_t want)
{
	if (*cap < want) {
		uint64_t *nv = realloc(*ids, want * sizeof *nv);
		if (nv) {
			*ids = nv;
			*cap = want;
		}
	}
	return *cap < want ? *cap : want;
}

/*
 * Snapshot the ids of the subscriptions matching `topic`, in subscription order, into
 * the caller's buffer (grown with spu_ids_fit), so that the caller can drop the lock
 * while it delivers. Returns the count; *lost (when non-NULL) grows by the matches that
 * did not fit for want of memory: copies the caller should count as dropped.
 */
static inline size_t spu_subs_collect(const spu_subs *t, const char *topic, uint64_t **ids, size_t *cap,
				      uint64_t *lost)
{
	size_t room = spu_ids_fit(ids, cap, t->n), n = 0;
	for (size_t i = 0; i < t->n; i++) {
		if (!spu_sub_matches(&t->v[i], topic))
			continue;
		if (n == room) {
			if (lost)
				(*lost)++;
			continue;
		}
		(*ids)[n++] = t->v[i].id;
	}
	return n;
}

/* ---- the in-flight deliver() ----------------------------------------------------- */
/*
 * Who is inside host->deliver() for which subscription. The ABI says that after
 * unsubscribe() returns no new deliver() for its id starts; since plugins call
 * deliver() with their lock dropped, unsubscribe() waits while a deliver() for that
 * very id is running (at most one call long), except on the delivering thread itself
 * (unsubscribe from inside deliver(): waiting would deadlock). Guarded by the lock
 * that guards the subscription table. The plugin initializes and destroys `idle`
 * (pthread_cond_init) with its other condition variables.
 */
typedef struct spu_inflight {
	pthread_cond_t idle; /* broadcast whenever a deliver() returns */
	bool busy;           /* `by` is inside deliver() for `id` */
	uint64_t id;
	pthread_t by;
} spu_inflight;

/* What spu_inflight_enter replaced: a deliver() of the same thread further out (a
 * publish from inside deliver() that delivers inline), restored by leave. */
typedef struct spu_inflight_outer {
	bool busy;
	uint64_t id;
} spu_inflight_outer;

/* Lock held: the calling thread is about to call deliver() for `id`. */
static inline spu_inflight_outer spu_inflight_enter(spu_inflight *f, uint64_t id)
{
	spu_inflight_outer o = {f->busy, f->id};
	f->busy = true;
	f->id = id;
	f->by = pthread_self();
	return o;
}

/* Lock held: deliver() returned; wake the waiters. */
static inline void spu_inflight_leave(spu_inflight *f, spu_inflight_outer o)
{
	f->busy = o.busy;
	f->id = o.id;
	pthread_cond_broadcast(&f->idle);
}

/* Lock held (and released while waiting): wait until no deliver() for `id` runs on
 * another thread. unsubscribe() calls it after removing the id from the table. */
static inline void spu_inflight_wait(spu_inflight *f, pthread_mutex_t *lock, uint64_t id)
{
	while (f->busy && f->id == id && !pthread_equal(pthread_self(), f->by))
		pthread_cond_wait(&f->idle, lock);
}

/*
 * Lock held on entry and on return, dropped around the call: host->deliver() one
 * message for `id`, the in-flight record kept. Returns deliver()'s result. The caller
 * checks first that `id` is still subscribed (spu_subs_still).
 */
static inline int spu_deliver_unlocked(const siogw_host *host, pthread_mutex_t *lock, spu_inflight *f,
				       uint64_t id, const char *topic, const void *key, size_t key_len,
				       const void *data, size_t len)
{
	spu_inflight_outer o = spu_inflight_enter(f, id);
	pthread_mutex_unlock(lock);
	int rc = host->deliver(host->ctx, id, topic, key, key_len, data, len);
	pthread_mutex_lock(lock);
	spu_inflight_leave(f, o);
	return rc;
}


/* ---- unsubscribe() and delivering ------------------------------------------------ */

/*
 * unsubscribe() for a table guarded by `lock` (not held on entry): remove `id`, let
 * forget (when non-NULL) update the plugin's own indexes under the lock, wait out a
 * deliver() for the id on another thread (spu_inflight_wait), free the pattern.
 * 0, or -SIOGW_EINVAL when there is no such id (forget is then not called).
 */
static inline int spu_unsubscribe(pthread_mutex_t *lock, spu_subs *t, spu_inflight *f, uint64_t id,
				  void (*forget)(void *arg, const spu_sub *gone), void *arg)
{
	pthread_mutex_lock(lock);
	spu_sub gone;
	int rc = spu_subs_drop(t, id, &gone);
	if (rc == 0) {
		if (forget)
			forget(arg, &gone);
		spu_inflight_wait(f, lock, id);
	}
	pthread_mutex_unlock(lock);
	if (rc == 0)
		free(gone.pattern);
	return rc;
}

/* What spu_deliver_all did with one message's copies. */
typedef struct spu_tally {
	uint64_t delivered; /* deliver() returned 0 */
	uint64_t refused;   /* deliver() returned an error (-SIOGW_EAGAIN: the host dropped it) */
	uint64_t lost;      /* no room in the id buffer (out of memory): never offered */
} spu_tally;

/*
 * Lock held on entry and on return, dropped around each host->deliver(): one message to
 * every subscription matching `topic`, in subscription order, skipping an id
 * unsubscribed meanwhile (spu_subs_collect into the caller's buffer *ids of capacity
 * *cap, then spu_deliver_unlocked per id). No retry: a refused copy is only counted.
 * The buffer belongs to the one thread that delivers.
 */
static inline spu_tally spu_deliver_all(const siogw_host *host, pthread_mutex_t *lock, const spu_subs *t,
					spu_inflight *f, uint64_t **ids, size_t *cap, const char *topic,
					const void *key, size_t key_len, const void *data, size_t len)
{
	spu_tally n = {0};
	size_t k = spu_subs_collect(t, topic, ids, cap, &n.lost);
	uint64_t gen = t->gen;
	for (size_t i = 0; i < k; i++) {
		uint64_t id = (*ids)[i];
		if (!spu_subs_still(t, id, gen))
			continue; /* unsubscribed since the snapshot */
		if (spu_deliver_unlocked(host, lock, f, id, topic, key, key_len, data, len) == 0)
			n.delivered++;
		else
			n.refused++;
	}
	return n;
}

/* ---- threads --------------------------------------------------------------------- */

/* Block every signal in the calling thread (the old mask in *old), so that threads
 * created meanwhile, a library's included, inherit it: signals belong to the gateway. */
static inline void spu_sigblock(sigset_t *old)
{
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, old);
}

static inline void spu_sigrestore(const sigset_t *old)
{
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

/*
 * pthread_create (default attributes) of a thread that takes no signal, then named
 * `name` (at most 15 characters) when the plugin is built with _GNU_SOURCE on glibc,
 * as the gateway's build is. Returns pthread_create's result (0 or an errno value).
 */
static inline int spu_thread_start(pthread_t *t, void *(*fn)(void *), void *arg, const char *name)
{
	sigset_t old;
	spu_sigblock(&old);
	int rc = pthread_create(t, NULL, fn, arg);
	spu_sigrestore(&old);
#if defined(_GNU_SOURCE) && defined(__GLIBC__)
	if (rc == 0 && name)
		pthread_setname_np(*t, name);
#else
	(void)name;
#endif
	return rc;
}

/* ---- health, stats and the descriptor ------------------------------------------------ */

/* health()'s answer while the instance is not running: "not started" before start(),
 * else "stopped", in buf; returns -SIOGW_EIO. */
static inline int spu_health_down(char *buf, size_t buf_len, bool started)
{
	spu_seterr(buf, buf_len, "%s", started ? "stopped" : "not started");
	return -SIOGW_EIO;
}

/* stats()'s return value from snprintf's `n` into buf (buf_len > 0): the bytes in buf,
 * cut like snprintf cut them; an encoding error leaves buf empty and returns 0. */
static inline size_t spu_stats_len(char *buf, size_t buf_len, int n)
{
	if (n < 0) {
		buf[0] = '\0';
		return 0;
	}
	return (size_t)n < buf_len ? (size_t)n : buf_len - 1;
}

/*
 * The descriptor, the plugin's one exported symbol, for a plugin whose ten ops are
 * named <pfx>_create, _start, _subscribe, _unsubscribe, _publish, _health, _stats,
 * _stop, _destroy and _check (a plugin without one of them writes the table itself):
 *
 *   SPU_PLUGIN_V1(mem, "memory", "0.1.0", mem_options, N_OPTIONS, "in-process bus ...");
 *
 * magic, ABI version and size come from the plugin.h the plugin is built against, as
 * the host checks them. The ops may be hidden (-fvisibility=hidden); the descriptor is
 * made visible here.
 */
#define SPU_PLUGIN_V1(pfx, name_, version_, options_, n_options_, description_)   \
	__attribute__((visibility("default"))) const siogw_plugin siogw_plugin_v1 = { \
		.magic = SIOGW_PLUGIN_MAGIC,                                           \
		.abi_major = SIOGW_ABI_MAJOR,                                          \
		.abi_minor = SIOGW_ABI_MINOR,                                          \
		.size = sizeof(siogw_plugin),                                          \
		.name = name_,                                                         \
		.version = version_,                                                   \
		.description = description_,                                           \
		.options = options_,                                                   \
		.n_options = n_options_,                                               \
		.create = pfx##_create,                                                \
		.start = pfx##_start,                                                  \
		.subscribe = pfx##_subscribe,                                          \
		.unsubscribe = pfx##_unsubscribe,                                      \
		.publish = pfx##_publish,                                              \
		.health = pfx##_health,                                                \
		.stats = pfx##_stats,                                                  \
		.stop = pfx##_stop,                                                    \
		.destroy = pfx##_destroy,                                              \
		.check = pfx##_check,                                                  \
	}

#ifdef __cplusplus
}
#endif
#endif /* SIOGW_PLUGIN_UTIL_H */
