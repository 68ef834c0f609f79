/*
 * nng.c — the NNG bus plugin: topics carried over nng pub/sub, no broker.
 *
 * Links against nng and include/siogw/plugin.h only (+ pthreads; plugin_util.h is header-only). docs/nng.md is the
 * user's side of this file: framing, options, topologies.
 *
 * Wire framing (nng_frame.h: the codec). One nng message per bus message: the topic, one
 * space (0x20), the payload — so `nngcat --pub --dial URL --data 'sio.out {...}'` is a
 * backend, and an nng SUB filter is a topic prefix. With `keys: true` the frame is
 * "topic SP key SP payload" (key possibly empty) so publish keys cross the wire; every
 * peer must then agree. Topics (and, with keys, keys) cannot contain a space; publish
 * refuses them.
 *
 * Sockets. One PUB socket (publish) and one SUB socket (receive), each with any number
 * of listeners and dialers. Dialers redial by themselves (reconnect_min/max), so a peer
 * that goes away and comes back is reconnected without restarting anything.
 *
 * Subscriptions. An ABI subscription becomes an nng SUB filter: EXACT "t" → "t " (the
 * trailing space keeps "t" from matching "tx"), PREFIX "p" → "p". Filters are
 * reference-counted (nng keeps a set). nng only filters coarsely (by prefix, for the
 * whole socket); the delivery thread matches each message against the subscription
 * table again and delivers one copy per matching subscription.
 *
 * Threads. The receive aio callback runs on nng's threads: it takes the message, puts
 * it on a bounded FIFO and re-arms at once, so nng's own receive buffer stays short and
 * overload lands in a queue that is counted (nng's pub/sub queues drop silently). One
 * delivery thread ("siogw-nng") pops messages, parses the frame, and calls
 * host->deliver(): the envelope parsing the host does there runs off the service loop.
 * publish() copies into an nng message and hands it to nng_sendmsg (non-blocking on
 * PUB: nng queues it per peer, dropping a slow peer's oldest beyond send_buffer); its
 * delivery report fires inside publish() with 0 ("handed to nng"), since pub/sub gives
 * no acknowledgement. With `loopback`, publish() also queues a copy for this node's own
 * matching subscriptions (the same FIFO, so the order is the wire order).
 *
 * Ordering. Per publisher socket, messages arrive in publish order (one pipe is FIFO;
 * nng may drop but never reorders); across publishers there is no order. Inside the
 * plugin one queue and one thread keep the arrival order; per message, subscriptions
 * receive it in subscription order.
 *
 * Flow control: at-most-once, like nng pub/sub. Beyond `queue` messages / `queue_bytes`
 * bytes the receive callback drops the new message (counted); a deliver() answered with
 * -SIOGW_EAGAIN is dropped (counted); frames without a topic are dropped (counted).
 *
 * Locks (never held while calling a host service or a delivery report):
 *   pub_lock  publish state + nng_sendmsg, so the loopback copy is queued in wire order;
 *   sub_lock  subscription table, nng filters, in-flight deliver() bookkeeping;
 *   q_lock    the receive FIFO.
 * Order when nested: pub_lock → sub_lock → q_lock. unsubscribe() waits while the
 * delivery thread is inside deliver() for that very id (at most one call), except when
 * called from inside deliver(). stop()/destroy() must not be called from deliver().
 * The one exception to the first line: nng's pipe callbacks hold their gate's lock
 * around host->log(), so that stop() can silence them; nothing else is taken under it.
 *
 * Shutdown. stop() closes the publish socket, then the receive socket, each with a
 * deadline (close_bounded: nng 1.5.2 can wedge in close while a peer is sending); what
 * nng may still call back after that only reaches the gate, never the host.
 *
 * Lifetime. nng keeps process-wide worker threads running its code until the process
 * exits, so this module is linked with -z nodelete: dlclose() must not unmap libnng
 * under them. Ops are safe from any thread.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/transport/ipc/ipc.h>
#include <nng/transport/tcp/tcp.h>
#include <nng/supplemental/util/platform.h>

#include "nng_frame.h"
#include "siogw/plugin.h"
#include "siogw/plugin_util.h"

#define PLUGIN_NAME "nng"
#define EXPORT __attribute__((visibility("default")))


static const siogw_option nng_options[] = {
	{"publish_listen", SIOGW_OPT_LIST, "tcp://127.0.0.1:5560", 0, -1, NULL,
	 "URLs the publish (PUB) socket listens on; backends dial here with SUB to read sio.in and replies"},
	{"publish_dial", SIOGW_OPT_LIST, NULL, 0, -1, NULL,
	 "URLs the publish socket dials: a backend's or a forwarder's SUB listener"},
	{"receive_listen", SIOGW_OPT_LIST, "tcp://127.0.0.1:5561", 0, -1, NULL,
	 "URLs the receive (SUB) socket listens on; backends dial here with PUB to send sio.out and replies"},
	{"receive_dial", SIOGW_OPT_LIST, NULL, 0, -1, NULL,
	 "URLs the receive socket dials: a backend's or a forwarder's PUB listener"},
	{"loopback", SIOGW_OPT_BOOL, "true", 0, -1, NULL,
	 "also hand this node's own publications to its own matching subscriptions; false when the "
	 "receive path already brings them back (forwarder, receive dialing the own publish URL)"},
	{"keys", SIOGW_OPT_BOOL, "false", 0, -1, NULL,
	 "frame 'topic key payload' so publish keys cross the wire (all peers must agree); "
	 "false: 'topic payload', keys stay local"},
	{"reconnect_min", SIOGW_OPT_DURATION, "100ms", 1, 3600000, NULL,
	 "first redial delay after a failed or lost connection"},
	{"reconnect_max", SIOGW_OPT_DURATION, "5s", 0, 3600000, NULL,
	 "cap of the doubling redial delay (0: always reconnect_min)"},
	{"send_buffer", SIOGW_OPT_INT, "1024", 1, 8192, NULL,
	 "messages queued per peer on the publish socket; beyond, nng drops that peer's oldest"},
	{"recv_buffer", SIOGW_OPT_INT, "1024", 1, 8192, NULL,
	 "messages nng buffers on the receive socket before the plugin takes them"},
	{"queue", SIOGW_OPT_INT, "65536", 1, 1 << 24, NULL,
	 "received messages waiting for the delivery thread; beyond, dropped and counted"},
	{"queue_bytes", SIOGW_OPT_SIZE, "64m", 1024, 1ll << 40, NULL,
	 "bytes of received messages waiting for the delivery thread; beyond, dropped and counted"},
	{"max_message", SIOGW_OPT_SIZE, "8m", 1, 1ll << 31, NULL,
	 "largest payload: publish refuses more (EINVAL); a larger incoming frame makes nng drop that connection"},
	{"tcp_keepalive", SIOGW_OPT_BOOL, "false", 0, -1, NULL, "TCP keepalive on tcp:// connections"},
	{"ipc_permissions", SIOGW_OPT_STRING, NULL, 0, -1, NULL,
	 "octal file mode of ipc:// listener sockets, e.g. 0660 (default: the umask decides)"},
	{"require_peers", SIOGW_OPT_BOOL, "false", 0, -1, NULL,
	 "health fails while the receive socket has no connected peer (readiness probes)"},
};
#define N_OPTIONS (sizeof nng_options / sizeof nng_options[0])

enum { ST_CREATED = 0, ST_RUNNING, ST_STOPPED };
enum { S_PUB = 0, S_SUB = 1 };
static const char *const sock_role[] = {"publish", "receive"};

typedef struct endpoint {
	bool listen;
	int w; /* S_PUB or S_SUB */
	char *url;
	nng_listener l;
	nng_dialer d;
} endpoint;

typedef struct filter { /* one nng SUB filter and how many subscriptions need it */
	char *text;
	size_t len;
	size_t refs;
} filter;

typedef struct conf {
	bool loopback, keys, tcp_keepalive, require_peers;
	int64_t reconnect_min, reconnect_max, send_buffer, recv_buffer, queue, queue_bytes, max_message;
	int ipc_mode; /* -1: not set */
} conf;

/*
 * What nng's pipe callbacks may reach. They run on nng threads, also while stop() closes
 * the sockets; `quiet` (set by stop) ends their host->log calls, `p` (cleared by destroy)
 * ends everything. Freed by destroy only when both sockets closed: a socket whose close
 * got stuck (see close_bounded) keeps nng able to call back, so its gate stays.
 */
typedef struct gate {
	pthread_mutex_t lock;
	struct plug *p;
	bool quiet;
} gate;

typedef struct plug {
	const siogw_host *host;
	conf c;
	gate *g;
	bool self_loop; /* a receive_dial URL is one of our publish_listen URLs */
	nng_socket s[2];
	bool opened[2];
	bool stuck[2]; /* close_bounded gave up on this socket */
	endpoint *ep;
	size_t n_ep;
	nng_aio *rx;

	pthread_mutex_t pub_lock;
	int state; /* guarded by pub_lock; mirrored in astate */

	pthread_mutex_t sub_lock;
	spu_subs subs;   /* subs.gen: bumped by every unsubscribe */
	spu_inflight fl; /* the delivery thread inside deliver(); fl.idle: it returned */
	filter *filters;
	size_t n_filters, cap_filters;
	bool sub_closed; /* no nng filter calls any more (socket closed) */

	pthread_mutex_t q_lock;
	pthread_cond_t wake;
	nng_msg **ring;
	size_t cap, head, len, bytes;
	bool q_stop;

	pthread_t thread;
	bool thread_started;
	uint64_t *match; /* delivery thread only */
	size_t cap_match;

	_Atomic int astate;
	_Atomic long peers[2];
	_Atomic uint64_t received, delivered, dropped_queue, dropped_refused, dropped_malformed, published,
		publish_failed, loopback_queued, connects[2], disconnects[2];
} plug;

/* ---- small helpers ---------------------------------------------------------------- */

/* check() has no host: spu_log says nothing then. */
#define plog(p, level, ...) spu_log((p)->host, PLUGIN_NAME, level, __VA_ARGS__)

static int map_nng(int rv)
{
	switch (rv) {
	case 0:
		return 0;
	case NNG_ENOMEM:
		return -SIOGW_ENOMEM;
	case NNG_ECLOSED:
		return -SIOGW_ECLOSED;
	case NNG_EAGAIN:
		return -SIOGW_EAGAIN;
	case NNG_EINVAL:
	case NNG_EADDRINVAL:
	case NNG_ENOTSUP:
	case NNG_EMSGSIZE:
		return -SIOGW_EINVAL;
	default:
		return -SIOGW_EIO;
	}
}

/* ---- options ---------------------------------------------------------------------- */

/* Append each item of a comma-joined list as an endpoint of socket w. */
static int add_endpoints(plug *p, const char *list, bool listen, int w)
{
	const char *s = list;
	while (s && *s) {
		const char *end = strchr(s, ',');
		size_t n = end ? (size_t)(end - s) : strlen(s);
		while (n && (*s == ' ' || *s == '\t'))
			s++, n--;
		while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
			n--;
		if (n) {
			endpoint *ne = realloc(p->ep, (p->n_ep + 1) * sizeof *ne);
			if (!ne)
				return -SIOGW_ENOMEM;
			p->ep = ne;
			endpoint *e = &p->ep[p->n_ep];
			memset(e, 0, sizeof *e);
			e->listen = listen;
			e->w = w;
			e->url = strndup(s, n);
			if (!e->url)
				return -SIOGW_ENOMEM;
			p->n_ep++;
		}
		s = end ? end + 1 : NULL;
	}
	return 0;
}

/* The option to blame, for check(): the index of `name` in opts, else nothing. */
static int blame(size_t *bad, const siogw_optval *opts, size_t n, const char *name, int rc)
{
	size_t i = spu_opt_index(opts, n, name);
	if (bad && i != SIZE_MAX)
		*bad = i;
	return rc;
}

static int parse_options(plug *p, const siogw_optval *opts, size_t n_opts, const char *lists[4],
			 size_t *bad, char *err, size_t err_len)
{
	conf *c = &p->c;
	*c = (conf){.loopback = true,
		    .reconnect_min = 100,
		    .reconnect_max = 5000,
		    .send_buffer = 1024,
		    .recv_buffer = 1024,
		    .queue = 65536,
		    .queue_bytes = 64ll << 20,
		    .max_message = 8ll << 20,
		    .ipc_mode = -1};
	/* a host that passes nothing gets the table's defaults (the numbers above repeat
	 * the table's text, as the host normally passes them anyway) */
	for (int k = 0; k < 4; k++)
		lists[k] = nng_options[k].def ? nng_options[k].def : "";
	for (size_t i = 0; i < n_opts; i++) {
		const siogw_optval *o = &opts[i];
		bool prefix; /* nng declares no PREFIX option */
		const siogw_option *d = spu_decl_find(nng_options, N_OPTIONS, o->name, &prefix);
		if (bad)
			*bad = i; /* every failure inside the loop is this option's */
		if (!d) {
			spu_seterr(err, err_len,
				   "nng: unknown option '%s' (valid: publish_listen, publish_dial, receive_listen, "
				   "receive_dial, loopback, keys, reconnect_min, reconnect_max, send_buffer, "
				   "recv_buffer, queue, queue_bytes, max_message, tcp_keepalive, ipc_permissions, "
				   "require_peers)",
				   o->name ? o->name : "(null)");
			return -SIOGW_EINVAL;
		}
		const char *str = o->str ? o->str : "";
		int rc = spu_opt_judge(PLUGIN_NAME, d, o, err, err_len);
		if (rc)
			return rc;
		const char *nm = d->name;
		if (!strcmp(nm, "publish_listen"))
			lists[0] = str;
		else if (!strcmp(nm, "publish_dial"))
			lists[1] = str;
		else if (!strcmp(nm, "receive_listen"))
			lists[2] = str;
		else if (!strcmp(nm, "receive_dial"))
			lists[3] = str;
		else if (!strcmp(nm, "loopback"))
			c->loopback = o->num != 0;
		else if (!strcmp(nm, "keys"))
			c->keys = o->num != 0;
		else if (!strcmp(nm, "tcp_keepalive"))
			c->tcp_keepalive = o->num != 0;
		else if (!strcmp(nm, "require_peers"))
			c->require_peers = o->num != 0;
		else if (!strcmp(nm, "reconnect_min"))
			c->reconnect_min = o->num;
		else if (!strcmp(nm, "reconnect_max"))
			c->reconnect_max = o->num;
		else if (!strcmp(nm, "send_buffer"))
			c->send_buffer = o->num;
		else if (!strcmp(nm, "recv_buffer"))
			c->recv_buffer = o->num;
		else if (!strcmp(nm, "queue"))
			c->queue = o->num;
		else if (!strcmp(nm, "queue_bytes"))
			c->queue_bytes = o->num;
		else if (!strcmp(nm, "max_message"))
			c->max_message = o->num;
		else if (!strcmp(nm, "ipc_permissions")) {
			if (!*str)
				continue;
			char *end;
			errno = 0;
			long mode = strtol(str, &end, 8);
			if (errno || *end || mode < 0 || mode > 0777) {
				spu_seterr(err, err_len, "nng: ipc_permissions '%s': expected an octal file mode such as 0660",
					   str);
				return -SIOGW_EINVAL;
			}
			c->ipc_mode = (int)mode;
		}
	}
	if (bad)
		*bad = SIZE_MAX;
	if (c->max_message > c->queue_bytes) {
		spu_seterr(err, err_len, "nng: max_message (%lld) must not exceed queue_bytes (%lld)",
			   (long long)c->max_message, (long long)c->queue_bytes);
		return blame(bad, opts, n_opts, "max_message", -SIOGW_EINVAL);
	}
	return 0;
}

/* ---- pipes (nng threads) ------------------------------------------------------------ */

static void pipe_event(gate *g, int which, nng_pipe pipe, nng_pipe_ev ev)
{
	pthread_mutex_lock(&g->lock);
	plug *p = g->p;
	if (!p) {
		pthread_mutex_unlock(&g->lock);
		return;
	}
	long n;
	if (ev == NNG_PIPE_EV_ADD_PRE) { /* REM_POST pairs with ADD_PRE in nng */
		n = atomic_fetch_add(&p->peers[which], 1) + 1;
		atomic_fetch_add(&p->connects[which], 1);
	} else {
		n = atomic_fetch_sub(&p->peers[which], 1) - 1;
		atomic_fetch_add(&p->disconnects[which], 1);
	}
	if (!g->quiet) { /* quiet from stop() on: it closes every pipe, and then the host is gone */
		char *url = NULL, from[64] = "";
		if (nng_pipe_get_string(pipe, NNG_OPT_URL, &url) != 0)
			url = NULL;
		nng_sockaddr sa;
		if (nng_pipe_get_addr(pipe, NNG_OPT_REMADDR, &sa) == 0 && sa.s_family == NNG_AF_INET) {
			const uint8_t *a = (const uint8_t *)&sa.s_in.sa_addr, *pt = (const uint8_t *)&sa.s_in.sa_port;
			snprintf(from, sizeof from, " from %u.%u.%u.%u:%u", a[0], a[1], a[2], a[3],
				 (unsigned)(pt[0] << 8 | pt[1]));
		}
		plog(p, SIOGW_LOG_INFO, "%s socket: peer %s on %s%s (%ld connected)", sock_role[which],
		     ev == NNG_PIPE_EV_ADD_PRE ? "connected" : "gone", url ? url : "?", from, n);
		if (url)
			nng_strfree(url);
	}
	pthread_mutex_unlock(&g->lock);
}

static void pub_pipe_cb(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	pipe_event(arg, S_PUB, pipe, ev);
}

static void sub_pipe_cb(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	pipe_event(arg, S_SUB, pipe, ev);
}

/* ---- the receive FIFO ------------------------------------------------------------------ */

/* Queue m (ownership passes on success). false: full (the caller frees and counts). */
static bool q_push(plug *p, nng_msg *m)
{
	size_t sz = nng_msg_len(m);
	bool ok = false;
	pthread_mutex_lock(&p->q_lock);
	if (p->q_stop || p->len >= (size_t)p->c.queue ||
	    (p->len > 0 && p->bytes + sz > (size_t)p->c.queue_bytes))
		goto out;
	if (p->len == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 256;
		if (ncap > (size_t)p->c.queue)
			ncap = (size_t)p->c.queue;
		nng_msg **nr = malloc(ncap * sizeof *nr);
		if (!nr)
			goto out;
		for (size_t i = 0; i < p->len; i++)
			nr[i] = p->ring[(p->head + i) % p->cap];
		free(p->ring);
		p->ring = nr;
		p->cap = ncap;
		p->head = 0;
	}
	p->ring[(p->head + p->len) % p->cap] = m;
	p->len++;
	p->bytes += sz;
	ok = true;
	if (p->len == 1)
		pthread_cond_signal(&p->wake); /* the thread sleeps only on an empty queue */
out:
	pthread_mutex_unlock(&p->q_lock);
	return ok;
}

/* The receive aio: runs on nng's threads; one receive outstanding at a time. */
static void rx_cb(void *arg)
{
	plug *p = arg;
	int rv = nng_aio_result(p->rx);
	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
		return; /* stop(): the socket is closed */
	if (rv == 0) {
		nng_msg *m = nng_aio_get_msg(p->rx);
		nng_aio_set_msg(p->rx, NULL);
		atomic_fetch_add(&p->received, 1);
		if (!q_push(p, m)) {
			atomic_fetch_add(&p->dropped_queue, 1);
			nng_msg_free(m);
		}
	}
	/* any other error is transient (a pipe went away): keep receiving */
	nng_recv_aio(p->s[S_SUB], p->rx);
}

/* ---- delivery thread ------------------------------------------------------------------- */

static void deliver_one(plug *p, nng_msg *m)
{
	nf_frame f;
	if (!nf_parse(nng_msg_body(m), nng_msg_len(m), p->c.keys, &f)) {
		atomic_fetch_add(&p->dropped_malformed, 1);
		return;
	}
	pthread_mutex_lock(&p->sub_lock);
	uint64_t lost = 0; /* no memory for the snapshot: these copies are lost */
	size_t n = spu_subs_collect(&p->subs, f.topic, &p->match, &p->cap_match, &lost);
	if (lost)
		atomic_fetch_add(&p->dropped_queue, lost);
	uint64_t gen = p->subs.gen;
	for (size_t i = 0; i < n; i++) {
		uint64_t id = p->match[i];
		if (!spu_subs_still(&p->subs, id, gen))
			continue; /* unsubscribed since the snapshot */
		int rc = spu_deliver_unlocked(p->host, &p->sub_lock, &p->fl, id, f.topic, f.key, f.key_len, f.data,
					      f.len);
		if (rc == 0)
			atomic_fetch_add(&p->delivered, 1);
		else
			atomic_fetch_add(&p->dropped_refused, 1); /* -SIOGW_EAGAIN: the host dropped it */
	}
	pthread_mutex_unlock(&p->sub_lock);
}

static void *deliver_main(void *arg)
{
	plug *p = arg;
	pthread_mutex_lock(&p->q_lock);
	for (;;) {
		while (!p->q_stop && p->len == 0)
			pthread_cond_wait(&p->wake, &p->q_lock);
		if (p->q_stop)
			break; /* stop() frees what is still queued */
		nng_msg *m = p->ring[p->head];
		p->head = (p->head + 1) % p->cap;
		p->len--;
		p->bytes -= nng_msg_len(m);
		pthread_mutex_unlock(&p->q_lock);
		deliver_one(p, m);
		nng_msg_free(m);
		pthread_mutex_lock(&p->q_lock);
	}
	pthread_mutex_unlock(&p->q_lock);
	return NULL;
}

/* ---- lifecycle ----------------------------------------------------------------------- */

/*
 * nng_close() with a deadline. nng 1.5.2 can wedge in close (nanomsg/nng#1543, fixed
 * after 1.5.2): closing a SUB socket while a peer is still sending into it sometimes
 * leaves nng's reaper waiting forever. The close runs on a helper thread; after
 * `ms` we give up on it, so the gateway still shuts down (the stuck thread ends with
 * the process). true: the socket is closed.
 */
typedef struct closer {
	nng_socket s;
	pthread_mutex_t lock;
	pthread_cond_t done_cv;
	bool done;
	int refs; /* the helper and the waiter: the last one frees */
} closer;

static void closer_put(closer *c)
{
	pthread_mutex_lock(&c->lock);
	bool last = --c->refs == 0;
	pthread_mutex_unlock(&c->lock);
	if (last) {
		pthread_cond_destroy(&c->done_cv);
		pthread_mutex_destroy(&c->lock);
		free(c);
	}
}

static void *closer_main(void *arg)
{
	closer *c = arg;
	nng_close(c->s);
	pthread_mutex_lock(&c->lock);
	c->done = true;
	pthread_cond_signal(&c->done_cv);
	pthread_mutex_unlock(&c->lock);
	closer_put(c);
	return NULL;
}

static bool close_bounded(nng_socket s, int ms)
{
	closer *c = calloc(1, sizeof *c);
	pthread_condattr_t ca;
	if (!c || pthread_condattr_init(&ca) != 0) {
		free(c);
		nng_close(s); /* no memory for a helper: close inline */
		return true;
	}
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->done_cv, &ca);
	pthread_condattr_destroy(&ca);
	c->s = s;
	c->refs = 2;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_t th;
	int rc = pthread_create(&th, &at, closer_main, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&at);
	if (rc != 0) {
		c->refs = 1;
		closer_put(c);
		nng_close(s);
		return true;
	}
	struct timespec dl;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += ms / 1000;
	dl.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&c->lock);
	while (!c->done && pthread_cond_timedwait(&c->done_cv, &c->lock, &dl) != ETIMEDOUT)
		;
	bool done = c->done;
	pthread_mutex_unlock(&c->lock);
	closer_put(c);
	return done;
}

static void plug_free(plug *p)
{
	bool clean = true;
	for (int w = 0; w < 2; w++)
		if (p->opened[w]) /* create() failed half way: nothing ran on these yet */
			nng_close(p->s[w]);
	if (p->rx) {
		nng_aio_stop(p->rx);
		nng_aio_free(p->rx);
	}
	for (int w = 0; w < 2; w++)
		clean &= !p->stuck[w];
	if (p->g) {
		pthread_mutex_lock(&p->g->lock);
		p->g->p = NULL;
		pthread_mutex_unlock(&p->g->lock);
		if (clean) {
			pthread_mutex_destroy(&p->g->lock);
			free(p->g);
		}
	}
	for (size_t i = 0; i < p->n_ep; i++)
		free(p->ep[i].url);
	free(p->ep);
	spu_subs_free(&p->subs);
	for (size_t i = 0; i < p->n_filters; i++)
		free(p->filters[i].text);
	free(p->filters);
	for (size_t i = 0; i < p->len; i++)
		nng_msg_free(p->ring[(p->head + i) % p->cap]);
	free(p->ring);
	free(p->match);
	pthread_cond_destroy(&p->wake);
	pthread_cond_destroy(&p->fl.idle);
	pthread_mutex_destroy(&p->q_lock);
	pthread_mutex_destroy(&p->sub_lock);
	pthread_mutex_destroy(&p->pub_lock);
	free(p);
}

/* Socket-wide options; endpoints created afterwards inherit them. */
static int setup_socket(plug *p, int w, char *err, size_t err_len)
{
	nng_socket s = p->s[w];
	int rv;
	if ((rv = nng_socket_set_ms(s, NNG_OPT_RECONNMINT, (nng_duration)p->c.reconnect_min)) ||
	    (rv = nng_socket_set_ms(s, NNG_OPT_RECONNMAXT, (nng_duration)p->c.reconnect_max)) ||
	    (rv = nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, (size_t)p->c.max_message + NF_SLACK))) {
		spu_seterr(err, err_len, "nng: %s socket: %s", sock_role[w], nng_strerror(rv));
		return map_nng(rv);
	}
	if (w == S_PUB)
		rv = nng_socket_set_int(s, NNG_OPT_SENDBUF, (int)p->c.send_buffer);
	else
		rv = nng_socket_set_int(s, NNG_OPT_RECVBUF, (int)p->c.recv_buffer);
	if (rv) {
		spu_seterr(err, err_len, "nng: %s socket buffer: %s", sock_role[w], nng_strerror(rv));
		return map_nng(rv);
	}
	rv = nng_pipe_notify(s, NNG_PIPE_EV_ADD_PRE, w == S_PUB ? pub_pipe_cb : sub_pipe_cb, p->g);
	if (!rv)
		rv = nng_pipe_notify(s, NNG_PIPE_EV_REM_POST, w == S_PUB ? pub_pipe_cb : sub_pipe_cb, p->g);
	if (rv) {
		spu_seterr(err, err_len, "nng: %s socket: %s", sock_role[w], nng_strerror(rv));
		return map_nng(rv);
	}
	return 0;
}

/* Create (not start) one endpoint: parses the URL, so a bad one fails create(). */
static int setup_endpoint(plug *p, endpoint *e, const char *opt, char *err, size_t err_len)
{
	int rv = e->listen ? nng_listener_create(&e->l, p->s[e->w], e->url)
			   : nng_dialer_create(&e->d, p->s[e->w], e->url);
	if (rv) {
		spu_seterr(err, err_len, "nng: %s '%s': %s", opt, e->url, nng_strerror(rv));
		return rv == NNG_ENOMEM ? -SIOGW_ENOMEM : -SIOGW_EINVAL;
	}
	bool tcp = strncmp(e->url, "tcp", 3) == 0;
	if (tcp) {
		rv = e->listen ? nng_listener_set_bool(e->l, NNG_OPT_TCP_NODELAY, true)
			       : nng_dialer_set_bool(e->d, NNG_OPT_TCP_NODELAY, true);
		if (!rv)
			rv = e->listen ? nng_listener_set_bool(e->l, NNG_OPT_TCP_KEEPALIVE, p->c.tcp_keepalive)
				       : nng_dialer_set_bool(e->d, NNG_OPT_TCP_KEEPALIVE, p->c.tcp_keepalive);
		if (rv && rv != NNG_ENOTSUP) {
			spu_seterr(err, err_len, "nng: %s '%s': %s", opt, e->url, nng_strerror(rv));
			return map_nng(rv);
		}
	}
	if (e->listen && p->c.ipc_mode >= 0 && strncmp(e->url, "ipc://", 6) == 0) {
		rv = nng_listener_set_int(e->l, NNG_OPT_IPC_PERMISSIONS, p->c.ipc_mode);
		if (rv) {
			spu_seterr(err, err_len, "nng: %s '%s': ipc_permissions: %s", opt, e->url, nng_strerror(rv));
			return map_nng(rv);
		}
	}
	return 0;
}

/* An instance with its locks and gate, nothing configured. NULL: no memory. */
static plug *plug_new(void)
{
	plug *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	pthread_mutex_init(&p->pub_lock, NULL);
	pthread_mutex_init(&p->sub_lock, NULL);
	pthread_mutex_init(&p->q_lock, NULL);
	pthread_cond_init(&p->fl.idle, NULL);
	pthread_cond_init(&p->wake, NULL);
	atomic_init(&p->astate, ST_CREATED);
	p->g = calloc(1, sizeof *p->g);
	if (!p->g) {
		plug_free(p);
		return NULL;
	}
	pthread_mutex_init(&p->g->lock, NULL);
	p->g->p = p;
	return p;
}

/*
 * Everything create() judges: the options, then the sockets and every endpoint created
 * (not started), so nng itself parses each URL and refuses an unknown transport. No
 * listening, dialing or thread of ours. On failure err says why and *bad (when non-NULL)
 * is the index of the option to blame, if any; the caller frees p.
 */
static int plug_configure(plug *p, const siogw_optval *opts, size_t n_opts, size_t *bad, char *err,
			  size_t err_len)
{
	const char *lists[4];
	int rc = parse_options(p, opts, n_opts, lists, bad, err, err_len);
	if (rc)
		return rc;
	/* endpoints in a fixed order: publish listen, publish dial, receive listen, receive dial */
	static const char *const names[4] = {"publish_listen", "publish_dial", "receive_listen", "receive_dial"};
	size_t first[5];
	for (int k = 0; k < 4; k++) {
		first[k] = p->n_ep;
		if ((rc = add_endpoints(p, lists[k], k % 2 == 0, k / 2))) {
			spu_seterr(err, err_len, "nng: out of memory");
			return rc;
		}
	}
	first[4] = p->n_ep;
	for (size_t i = first[3]; i < first[4]; i++)
		for (size_t j = first[0]; j < first[1]; j++)
			p->self_loop |= strcmp(p->ep[i].url, p->ep[j].url) == 0;
	size_t n_pub = first[2] - first[0], n_sub = first[4] - first[2];
	if (!p->c.loopback && (n_pub == 0 || n_sub == 0)) {
		spu_seterr(err, err_len,
			   "nng: nothing to %s: set %s (or loopback: true for a bus inside this process)",
			   n_sub == 0 ? "receive from" : "publish to",
			   n_sub == 0 ? "receive_listen or receive_dial" : "publish_listen or publish_dial");
		return blame(bad, opts, n_opts, "loopback", -SIOGW_EINVAL);
	}

	int rv = nng_pub0_open(&p->s[S_PUB]);
	if (!rv) {
		p->opened[S_PUB] = true;
		rv = nng_sub0_open(&p->s[S_SUB]);
		p->opened[S_SUB] = rv == 0;
	}
	if (!rv)
		rv = nng_aio_alloc(&p->rx, rx_cb, p);
	if (rv) {
		spu_seterr(err, err_len, "nng: cannot open sockets: %s", nng_strerror(rv));
		return map_nng(rv);
	}
	for (int w = 0; w < 2; w++)
		if ((rc = setup_socket(p, w, err, err_len)))
			return rc;
	for (int k = 0; k < 4; k++)
		for (size_t i = first[k]; i < first[k + 1]; i++)
			if ((rc = setup_endpoint(p, &p->ep[i], names[k], err, err_len)))
				return blame(bad, opts, n_opts, names[k], rc);
	return 0;
}

static int plug_create(const siogw_host *host, const siogw_optval *opts, size_t n_opts, void **self,
		       char *err, size_t err_len)
{
	*self = NULL;
	if (spu_host_check(host, PLUGIN_NAME, err, err_len))
		return -SIOGW_EINVAL;
	plug *p = plug_new();
	if (!p) {
		spu_seterr(err, err_len, "nng: out of memory");
		return -SIOGW_ENOMEM;
	}
	p->host = host;
	int rc = plug_configure(p, opts, n_opts, NULL, err, err_len);
	if (rc) {
		plug_free(p);
		return rc;
	}
	*self = p;
	return 0;
}

/* create() and destroy() back to back: nng judges the URLs; nothing listens or dials.
 * Opening the sockets starts nng's process-wide worker threads (they stay: -z nodelete). */
static int plug_check(const siogw_optval *opts, size_t n_opts, size_t *bad, char *err, size_t err_len)
{
	plug *p = plug_new();
	if (!p) {
		spu_seterr(err, err_len, "nng: out of memory");
		return -SIOGW_ENOMEM;
	}
	int rc = plug_configure(p, opts, n_opts, bad, err, err_len);
	plug_free(p);
	return rc;
}

static int plug_start(void *self, char *err, size_t err_len)
{
	plug *p = self;
	pthread_mutex_lock(&p->pub_lock);
	int st = p->state;
	pthread_mutex_unlock(&p->pub_lock);
	if (st == ST_RUNNING)
		return 0;
	if (st == ST_STOPPED) {
		spu_seterr(err, err_len, "nng: already stopped");
		return -SIOGW_ECLOSED;
	}

	/* The thread inherits a fully blocked signal mask: signals belong to the gateway. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&p->thread, NULL, deliver_main, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		spu_seterr(err, err_len, "nng: cannot start the delivery thread: %s", strerror(rc));
		return rc == EAGAIN ? -SIOGW_ENOMEM : -SIOGW_EIO;
	}
	pthread_setname_np(p->thread, "siogw-nng");
	p->thread_started = true;

	pthread_mutex_lock(&p->pub_lock);
	p->state = ST_RUNNING;
	atomic_store(&p->astate, ST_RUNNING);
	pthread_mutex_unlock(&p->pub_lock);

	nng_recv_aio(p->s[S_SUB], p->rx);
	/* listeners first: with a receive socket dialing the own publish URL, it is there */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < p->n_ep; i++) {
			endpoint *e = &p->ep[i];
			if (e->listen != (pass == 0))
				continue;
			int rv = e->listen ? nng_listener_start(e->l, 0) : nng_dialer_start(e->d, NNG_FLAG_NONBLOCK);
			if (rv) {
				spu_seterr(err, err_len, "nng: %s socket: cannot %s %s: %s", sock_role[e->w],
					   e->listen ? "listen on" : "dial", e->url, nng_strerror(rv));
				return map_nng(rv);
			}
			plog(p, SIOGW_LOG_INFO, "%s socket %s %s", sock_role[e->w],
			     e->listen ? "listening on" : "dialing", e->url);
		}
	plog(p, SIOGW_LOG_DEBUG, "started (loopback %s, keys %s, queue %lld messages / %lld bytes)",
	     p->c.loopback ? "on" : "off", p->c.keys ? "on" : "off", (long long)p->c.queue,
	     (long long)p->c.queue_bytes);
	return 0;
}

static void plug_stop(void *self)
{
	plug *p = self;
	if (p->thread_started && pthread_equal(pthread_self(), p->thread)) {
		plog(p, SIOGW_LOG_ERROR, "stop() called from the delivery thread; ignored");
		return;
	}
	pthread_mutex_lock(&p->pub_lock);
	if (p->state == ST_STOPPED) {
		pthread_mutex_unlock(&p->pub_lock);
		return;
	}
	p->state = ST_STOPPED;
	atomic_store(&p->astate, ST_STOPPED);
	pthread_mutex_unlock(&p->pub_lock);

	/* From here no pipe callback calls host->log (they still count). */
	pthread_mutex_lock(&p->g->lock);
	p->g->quiet = true;
	pthread_mutex_unlock(&p->g->lock);
	/* No filter calls on a socket being closed. */
	pthread_mutex_lock(&p->sub_lock);
	p->sub_closed = true;
	pthread_mutex_unlock(&p->sub_lock);

	/* The receive aio first: nng_aio_stop waits for rx_cb and refuses new receives. Then
	 * the publish socket, so that a receive socket fed by it (self loop) goes quiet before
	 * it is closed: closing a SUB that is still being sent to can wedge nng 1.5.2. */
	nng_aio_stop(p->rx);
	if (p->opened[S_PUB]) {
		p->stuck[S_PUB] = !close_bounded(p->s[S_PUB], 1000);
		p->opened[S_PUB] = false;
	}
	for (int i = 0; p->self_loop && i < 100 && atomic_load(&p->peers[S_SUB]) > 0; i++)
		nng_msleep(5); /* bounded: the loop's pipes see the PUB side gone within ms */
	if (p->opened[S_SUB]) {
		p->stuck[S_SUB] = !close_bounded(p->s[S_SUB], 1000);
		p->opened[S_SUB] = false;
	}
	for (int w = 0; w < 2; w++)
		if (p->stuck[w])
			plog(p, SIOGW_LOG_WARN,
			     "%s socket: nng_close did not finish within 1 s (an nng 1.5.2 bug when a peer "
			     "is still sending); leaving it to the process exit",
			     sock_role[w]);

	pthread_mutex_lock(&p->q_lock);
	p->q_stop = true;
	pthread_cond_broadcast(&p->wake);
	size_t pending = p->len;
	pthread_mutex_unlock(&p->q_lock);
	if (p->thread_started)
		pthread_join(p->thread, NULL); /* once: a second stop() returns above */
	pthread_mutex_lock(&p->q_lock);
	for (size_t i = 0; i < p->len; i++)
		nng_msg_free(p->ring[(p->head + i) % p->cap]);
	p->len = p->bytes = 0;
	pthread_mutex_unlock(&p->q_lock);
	plog(p, SIOGW_LOG_DEBUG, "stopped (%zu received messages discarded)", pending);
}

static void plug_destroy(void *self)
{
	plug *p = self;
	if (!p)
		return;
	plug_stop(p);
	plug_free(p);
}

/* ---- subscriptions ------------------------------------------------------------------- */

/* nng filter for a pattern: EXACT gets the separator so "t" does not match "tx". */
static char *filter_text(const char *pattern, int kind, size_t *len)
{
	size_t n = strlen(pattern);
	char *f = malloc(n + 2);
	if (!f)
		return NULL;
	memcpy(f, pattern, n);
	if (kind == SIOGW_SUB_EXACT)
		f[n++] = ' ';
	f[n] = '\0';
	*len = n;
	return f;
}

static filter *find_filter(plug *p, const char *text, size_t len)
{
	for (size_t i = 0; i < p->n_filters; i++)
		if (p->filters[i].len == len && memcmp(p->filters[i].text, text, len) == 0)
			return &p->filters[i];
	return NULL;
}

static int plug_subscribe(void *self, uint64_t sub_id, const char *pattern, int kind)
{
	plug *p = self;
	if (!pattern || (kind != SIOGW_SUB_EXACT && kind != SIOGW_SUB_PREFIX) || strchr(pattern, ' '))
		return -SIOGW_EINVAL; /* a space would reach into the payload */
	if (kind == SIOGW_SUB_EXACT && !pattern[0])
		return -SIOGW_EINVAL;
	size_t flen;
	char *copy = strdup(pattern), *ftext = filter_text(pattern, kind, &flen);
	if (!copy || !ftext) {
		free(copy);
		free(ftext);
		return -SIOGW_ENOMEM;
	}
	int rc = 0;
	pthread_mutex_lock(&p->sub_lock);
	filter *f = NULL;
	if (p->sub_closed || atomic_load(&p->astate) == ST_STOPPED) {
		rc = -SIOGW_ECLOSED;
		goto out;
	}
	if (spu_subs_find(&p->subs, sub_id)) {
		rc = -SIOGW_EINVAL; /* ids are unique per subscribe call */
		goto out;
	}
	if ((rc = spu_subs_reserve(&p->subs))) /* so that adding it below cannot fail */
		goto out;
	f = find_filter(p, ftext, flen);
	if (!f) {
		if (p->n_filters == p->cap_filters) {
			size_t cap = p->cap_filters ? p->cap_filters * 2 : 8;
			filter *nf = realloc(p->filters, cap * sizeof *nf);
			if (!nf) {
				rc = -SIOGW_ENOMEM;
				goto out;
			}
			p->filters = nf;
			p->cap_filters = cap;
		}
		int rv = nng_socket_set(p->s[S_SUB], NNG_OPT_SUB_SUBSCRIBE, ftext, flen);
		if (rv) {
			rc = map_nng(rv);
			goto out;
		}
		f = &p->filters[p->n_filters++];
		*f = (filter){.text = ftext, .len = flen, .refs = 0};
		ftext = NULL;
	}
	f->refs++;
	spu_subs_add(&p->subs, sub_id, kind, copy); /* reserved above */
	copy = NULL;
out:
	pthread_mutex_unlock(&p->sub_lock);
	free(copy);
	free(ftext);
	return rc;
}

static int plug_unsubscribe(void *self, uint64_t sub_id)
{
	plug *p = self;
	pthread_mutex_lock(&p->sub_lock);
	spu_sub gone;
	if (spu_subs_drop(&p->subs, sub_id, &gone)) {
		pthread_mutex_unlock(&p->sub_lock);
		return -SIOGW_EINVAL;
	}
	size_t flen;
	char *ftext = filter_text(gone.pattern, gone.kind, &flen);
	char *pattern = gone.pattern;
	filter *f = ftext ? find_filter(p, ftext, flen) : NULL;
	if (f && --f->refs == 0) {
		if (!p->sub_closed)
			nng_socket_set(p->s[S_SUB], NNG_OPT_SUB_UNSUBSCRIBE, f->text, f->len);
		free(f->text);
		*f = p->filters[--p->n_filters];
	}
	/* Wait out a deliver() for this id already in progress (not from inside it). */
	spu_inflight_wait(&p->fl, &p->sub_lock, sub_id);
	pthread_mutex_unlock(&p->sub_lock);
	free(ftext);
	free(pattern);
	return 0;
}

/* ---- publish ------------------------------------------------------------------------- */

/* Any local subscription for topic? (loopback copies only when someone reads them) */
static bool local_reader(plug *p, const char *topic)
{
	pthread_mutex_lock(&p->sub_lock);
	bool any = spu_subs_any(&p->subs, topic);
	pthread_mutex_unlock(&p->sub_lock);
	return any;
}

static int plug_publish(void *self, const char *topic, const void *key, size_t key_len, const void *data,
			size_t len, siogw_dr_cb dr, void *dr_arg)
{
	plug *p = self;
	if (!topic || !topic[0] || strchr(topic, ' ') || (len && !data) || (key_len && !key))
		return -SIOGW_EINVAL;
	if (len > (size_t)p->c.max_message)
		return -SIOGW_EINVAL;
	size_t total = nf_size(topic, key, key_len, len, p->c.keys);
	if (total == 0)
		return -SIOGW_EINVAL;

	nng_msg *m;
	if (nng_msg_alloc(&m, total) != 0)
		return -SIOGW_ENOMEM;
	nf_encode(nng_msg_body(m), topic, key, key_len, data, len, p->c.keys);

	int rc = 0;
	pthread_mutex_lock(&p->pub_lock);
	if (p->state != ST_RUNNING) {
		rc = -SIOGW_ECLOSED;
		goto fail;
	}
	nng_msg *copy = NULL;
	if (p->c.loopback && local_reader(p, topic) && nng_msg_dup(&copy, m) != 0)
		copy = NULL;
	int rv = nng_sendmsg(p->s[S_PUB], m, NNG_FLAG_NONBLOCK);
	if (rv) {
		/* on failure nng_sendmsg leaves m with us */
		if (copy)
			nng_msg_free(copy);
		rc = map_nng(rv);
		goto fail;
	}
	if (copy) {
		atomic_fetch_add(&p->loopback_queued, 1);
		if (!q_push(p, copy)) {
			atomic_fetch_add(&p->dropped_queue, 1);
			nng_msg_free(copy);
		}
	}
	pthread_mutex_unlock(&p->pub_lock);
	atomic_fetch_add(&p->published, 1);
	if (dr)
		dr(dr_arg, 0); /* handed to nng: pub/sub has no acknowledgement */
	return 0;
fail:
	pthread_mutex_unlock(&p->pub_lock);
	nng_msg_free(m);
	atomic_fetch_add(&p->publish_failed, 1);
	return rc;
}

/* ---- health and stats ------------------------------------------------------------------ */

static int plug_health(void *self, char *buf, size_t buf_len)
{
	plug *p = self;
	int st = atomic_load(&p->astate);
	if (st != ST_RUNNING) {
		spu_seterr(buf, buf_len, "%s", st == ST_CREATED ? "not started" : "stopped");
		return -SIOGW_EIO;
	}
	if (p->c.require_peers && atomic_load(&p->peers[S_SUB]) <= 0) {
		spu_seterr(buf, buf_len, "no peer connected to the receive socket");
		return -SIOGW_EIO;
	}
	return 0;
}

static size_t plug_stats(void *self, char *buf, size_t buf_len)
{
	plug *p = self;
	if (!buf || buf_len == 0)
		return 0;
	pthread_mutex_lock(&p->sub_lock);
	size_t subs = p->subs.n, filters = p->n_filters;
	pthread_mutex_unlock(&p->sub_lock);
	pthread_mutex_lock(&p->q_lock);
	size_t q_len = p->len, q_bytes = p->bytes;
	pthread_mutex_unlock(&p->q_lock);
	uint64_t dq = atomic_load(&p->dropped_queue), dr = atomic_load(&p->dropped_refused),
		 dm = atomic_load(&p->dropped_malformed);
	int n = snprintf(buf, buf_len,
			 "siogw_nng_received_total %llu\n"
			 "siogw_nng_delivered_total %llu\n"
			 "siogw_nng_dropped_total %llu\n"
			 "siogw_nng_dropped_queue_full_total %llu\n"
			 "siogw_nng_dropped_refused_total %llu\n"
			 "siogw_nng_dropped_malformed_total %llu\n"
			 "siogw_nng_published_total %llu\n"
			 "siogw_nng_publish_failed_total %llu\n"
			 "siogw_nng_loopback_total %llu\n"
			 "siogw_nng_subscriptions %zu\n"
			 "siogw_nng_filters %zu\n"
			 "siogw_nng_queue_messages %zu\n"
			 "siogw_nng_queue_bytes %zu\n"
			 "siogw_nng_publish_peers %ld\n"
			 "siogw_nng_receive_peers %ld\n"
			 "siogw_nng_publish_connects_total %llu\n"
			 "siogw_nng_receive_connects_total %llu\n"
			 "siogw_nng_publish_disconnects_total %llu\n"
			 "siogw_nng_receive_disconnects_total %llu\n",
			 (unsigned long long)atomic_load(&p->received),
			 (unsigned long long)atomic_load(&p->delivered), (unsigned long long)(dq + dr + dm),
			 (unsigned long long)dq, (unsigned long long)dr, (unsigned long long)dm,
			 (unsigned long long)atomic_load(&p->published),
			 (unsigned long long)atomic_load(&p->publish_failed),
			 (unsigned long long)atomic_load(&p->loopback_queued), subs, filters, q_len, q_bytes,
			 atomic_load(&p->peers[S_PUB]), atomic_load(&p->peers[S_SUB]),
			 (unsigned long long)atomic_load(&p->connects[S_PUB]),
			 (unsigned long long)atomic_load(&p->connects[S_SUB]),
			 (unsigned long long)atomic_load(&p->disconnects[S_PUB]),
			 (unsigned long long)atomic_load(&p->disconnects[S_SUB]));
	if (n < 0) {
		buf[0] = '\0';
		return 0;
	}
	if ((size_t)n >= buf_len) { /* truncated: end at the last complete line */
		char *nl = NULL;
		for (char *q = buf; *q; q++)
			if (*q == '\n')
				nl = q;
		if (nl)
			nl[1] = '\0';
		return strlen(buf);
	}
	return (size_t)n;
}

EXPORT const siogw_plugin siogw_plugin_v1 = {
	.magic = SIOGW_PLUGIN_MAGIC,
	.abi_major = SIOGW_ABI_MAJOR,
	.abi_minor = SIOGW_ABI_MINOR,
	.size = sizeof(siogw_plugin),
	.name = PLUGIN_NAME,
	.version = "0.1.0",
	.description = "NNG pub/sub bus: brokerless, frames 'topic payload'; backends in any language with "
		       "an nng/nanomsg binding, or nngcat",
	.options = nng_options,
	.n_options = N_OPTIONS,
	.create = plug_create,
	.start = plug_start,
	.subscribe = plug_subscribe,
	.unsubscribe = plug_unsubscribe,
	.publish = plug_publish,
	.health = plug_health,
	.stats = plug_stats,
	.stop = plug_stop,
	.destroy = plug_destroy,
	.check = plug_check,
};
