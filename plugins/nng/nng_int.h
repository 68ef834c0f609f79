/*
 * nng_int.h — the NNG bus plugin's private header: topics carried over nng pub/sub, no
 * broker. The instance, and the functions its files call across; nothing here is
 * exported (hidden visibility: only nng.c's siogw_plugin_v1 is default). docs/nng.md is
 * the user's side of the plugin: framing, options, topologies.
 *
 * Files.
 *   nng.c          sockets and endpoints, pipes, the receive FIFO, the delivery thread,
 *                  subscriptions, publish, lifecycle, health, stats, the descriptor;
 *   plug_options.c  the option table, and judging the options into the instance;
 *   nng_close.c    closing the sockets at stop(), each with a deadline (the nng 1.5.2
 *                  close workaround);
 *   nng_frame.c    the wire frame (nng_frame.h; pure, the fuzz target links it alone).
 *
 * Links against nng and include/siogw/plugin.h only (+ pthreads; plugin_util.h is
 * header-only).
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
 * that goes away and comes back is reconnected without restarting anything. A dialer
 * that has had no pipe for 2 × reconnect_max + 2 s is closed and created again (the
 * delivery thread's watchdog): nng 1.5.2 was seen leaving an ipc dialer idle for over
 * 15 s after its peer restarted (a redial waits for the old pipe's reap, and a stalled
 * handshake for nng's 10 s timeout). A peer that is simply down costs one recreate per
 * period, logged once per outage.
 *
 * Subscriptions. An ABI subscription becomes an nng SUB filter: EXACT "t" → "t " (the
 * trailing space keeps "t" from matching "tx"), PREFIX "p" → "p". Filters are
 * reference-counted (nng keeps a set). nng only filters coarsely (by prefix, for the
 * whole socket); the delivery thread matches each message against the subscription
 * table again and delivers one copy per matching subscription.
 *
 * Threads. The receive aio callback runs on nng's threads. With `delivery: inline` (the
 * default) it parses the frame and calls host->deliver() itself, then re-arms: the
 * message reaches the gateway's queue without another thread hop (on a busy core each
 * hop is a context switch per message; the profile of issue 12 showed them as a third
 * of the CPU). With `delivery: thread` it puts the message on a bounded FIFO and
 * re-arms at once, so nng's own receive buffer stays short and overload lands in a
 * queue that is counted (nng's pub/sub queues drop silently), and one delivery thread
 * ("siogw-nng") pops messages and calls host->deliver(). Either way the envelope parsing
 * the host does in deliver() runs off the service loop. The delivery thread also
 * carries the loopback copies in both modes; inline, deliver_lock keeps the two paths
 * to one deliver() at a time.
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
 * deadline (close_bounded in nng_close.c: nng 1.5.2 can wedge in close while a
 * peer is sending); what nng may still call back after that only reaches the gate,
 * never the host.
 *
 * Lifetime. nng keeps process-wide worker threads running its code until the process
 * exits, so this module is linked with -z nodelete: dlclose() must not unmap libnng
 * under them. Ops are safe from any thread.
 */
#ifndef SIOGW_NNG_INT_H
#define SIOGW_NNG_INT_H

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

enum { ST_CREATED = 0, ST_RUNNING, ST_STOPPED };
enum { S_PUB = 0, S_SUB = 1 };

typedef struct endpoint {
	bool listen;
	int w; /* S_PUB or S_SUB */
	char *url;
	nng_listener l;
	nng_dialer d;
	/* dialers, under the gate's lock: the redial watchdog (nng.c) */
	bool armed;          /* started */
	bool warned;         /* this outage was logged */
	long pipes;          /* connected through this dialer */
	int64_t idle_since;  /* ms (monotonic) since it has none */
} endpoint;

typedef struct filter { /* one nng SUB filter and how many subscriptions need it */
	char *text;
	size_t len;
	size_t refs;
} filter;

typedef struct conf {
	bool loopback, keys, tcp_keepalive, require_peers;
	bool inline_rx; /* delivery: inline — the receive callback calls deliver() itself */
	int64_t reconnect_min, reconnect_max, send_buffer, recv_buffer, queue, queue_bytes, max_message;
	int ipc_mode; /* -1: not set */
} conf;

/*
 * What nng's pipe callbacks may reach. They run on nng threads, also while stop() closes
 * the sockets; `quiet` (set by stop) ends their host->log calls, `p` (cleared by destroy)
 * ends everything. Freed by destroy only when both sockets closed: a socket whose close
 * got stuck (see nng_close.c) keeps nng able to call back, so its gate stays.
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
	bool stuck[2]; /* close_bounded (nng_close.c) gave up on this socket */
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
	pthread_mutex_t deliver_lock; /* delivery: inline — one deliver_one() at a time */
	uint64_t *match; /* under deliver_lock (inline), else the delivery thread's */
	size_t cap_match;

	_Atomic int astate;
	int64_t stall_ms; /* a dialer without a pipe this long is recreated */
	_Atomic uint64_t dialer_restarts;
	_Atomic long peers[2];
	_Atomic uint64_t received, delivered, dropped_queue, dropped_refused, dropped_malformed, published,
		publish_failed, loopback_queued, connects[2], disconnects[2];
} plug;

/* check() has no host: spu_log says nothing then. */
#define plog(p, level, ...) spu_log((p)->host, PLUGIN_NAME, level, __VA_ARGS__)

/* ---- plug_options.c ----------------------------------------------------------------- */

#define PLUG_N_OPTIONS 17 /* checked against the table in plug_options.c */
extern const siogw_option plug_options[];
/* Judge the options into p->c; lists[] gets the four endpoint lists, in the order
 * publish_listen, publish_dial, receive_listen, receive_dial. */
int plug_parse_options(plug *p, const siogw_optval *opts, size_t n_opts, const char *lists[4], size_t *bad,
		       char *err, size_t err_len);
/* Append each item of a comma-joined list as an endpoint of socket w. */
int plug_add_endpoints(plug *p, const char *list, bool listen, int w);
/* The option to plug_blame, for check(): the index of `name` in opts, else nothing. */
int plug_blame(size_t *bad, const siogw_optval *opts, size_t n, const char *name, int rc);

/* ---- nng_close.c ------------------------------------------------------------------- */

/* stop(): the receive aio, the publish socket, then the receive socket, each bounded. */
void plug_close_sockets(plug *p);

/* ---- nng.c ------------------------------------------------------------------------- */

extern const char *const plug_sock_role[2]; /* "publish", "receive": by S_PUB, S_SUB */

#endif /* SIOGW_NNG_INT_H */
