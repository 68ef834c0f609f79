/*
 * nng.c — the NNG bus plugin: sockets and endpoints, pipes, the receive FIFO, the
 * delivery thread, subscriptions, publish, lifecycle, health, stats and the descriptor,
 * the one exported symbol. The implementer's notes (framing, threads, locks, shutdown)
 * are at the top of nng_int.h; docs/nng.md is the user's side.
 */
#include "nng_int.h"

const char *const plug_sock_role[2] = {"publish", "receive"};

/* ---- small helpers ---------------------------------------------------------------- */

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

/* ---- pipes (nng threads) ------------------------------------------------------------ */

static int64_t plug_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pipe_event(gate *g, int which, nng_pipe pipe, nng_pipe_ev ev)
{
	pthread_mutex_lock(&g->lock);
	plug *p = g->p;
	if (!p) {
		pthread_mutex_unlock(&g->lock);
		return;
	}
	long n;
	bool add = ev == NNG_PIPE_EV_ADD_PRE; /* REM_POST pairs with ADD_PRE in nng */
	if (add) {
		n = atomic_fetch_add(&p->peers[which], 1) + 1;
		atomic_fetch_add(&p->connects[which], 1);
	} else {
		n = atomic_fetch_sub(&p->peers[which], 1) - 1;
		atomic_fetch_add(&p->disconnects[which], 1);
	}
	/* the pipe's dialer (still set at REM_POST: nng runs it before removing the pipe);
	 * a pipe of a dialer the watchdog replaced matches none */
	int did = nng_dialer_id(nng_pipe_dialer(pipe));
	for (size_t i = 0; did > 0 && i < p->n_ep; i++) {
		endpoint *e = &p->ep[i];
		if (e->listen || e->w != which || nng_dialer_id(e->d) != did)
			continue;
		e->pipes += add ? 1 : -1;
		if (add)
			e->warned = false;
		else if (e->pipes == 0)
			e->idle_since = plug_now_ms();
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
		plog(p, SIOGW_LOG_INFO, "%s socket: peer %s on %s%s (%ld connected)", plug_sock_role[which],
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

static void deliver_locked(plug *p, nng_msg *m);

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
		if (p->c.inline_rx) {
			deliver_locked(p, m);
			nng_msg_free(m);
		} else if (!q_push(p, m)) {
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
	spu_tally n = spu_deliver_all(p->host, &p->sub_lock, &p->subs, &p->fl, &p->match, &p->cap_match, f.topic,
				      f.key, f.key_len, f.data, f.len);
	pthread_mutex_unlock(&p->sub_lock);
	atomic_fetch_add(&p->delivered, n.delivered);
	atomic_fetch_add(&p->dropped_refused, n.refused); /* -SIOGW_EAGAIN: the host dropped it */
	atomic_fetch_add(&p->dropped_queue, n.lost);      /* no memory for the snapshot */
}

/* deliver_one from either path (delivery: inline): the receive callback and the delivery
 * thread's loopback copies share the match scratch and the in-flight record. */
static void deliver_locked(plug *p, nng_msg *m)
{
	pthread_mutex_lock(&p->deliver_lock);
	deliver_one(p, m);
	pthread_mutex_unlock(&p->deliver_lock);
}

/* ---- the redial watchdog (nng_int.h: Sockets) ---------------------------------------- */

/* Close dialer e and dial again with a new one. Caller holds pub_lock (running). */
static void redial(plug *p, endpoint *e, int64_t idle_ms, bool say)
{
	nng_dialer old = e->d, d;
	int rv = nng_dialer_create(&d, p->s[e->w], e->url);
	bool tcp = strncmp(e->url, "tcp", 3) == 0;
	if (!rv && tcp && !(rv = nng_dialer_set_bool(d, NNG_OPT_TCP_NODELAY, true)))
		rv = nng_dialer_set_bool(d, NNG_OPT_TCP_KEEPALIVE, p->c.tcp_keepalive);
	if (rv) {
		if (say)
			plog(p, SIOGW_LOG_WARN, "%s socket: no peer on %s for %lld ms; cannot recreate its dialer: %s",
			     plug_sock_role[e->w], e->url, (long long)idle_ms, nng_strerror(rv));
		return;
	}
	pthread_mutex_lock(&p->g->lock);
	e->d = d; /* from here the old dialer's pipes match no endpoint */
	e->pipes = 0;
	e->idle_since = plug_now_ms();
	pthread_mutex_unlock(&p->g->lock);
	nng_dialer_close(old);
	rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
	atomic_fetch_add(&p->dialer_restarts, 1);
	if (say)
		plog(p, rv ? SIOGW_LOG_WARN : SIOGW_LOG_INFO,
		     "%s socket: no peer on %s for %lld ms; dialer recreated%s%s (logged once per outage)",
		     plug_sock_role[e->w], e->url, (long long)idle_ms, rv ? ": " : "", rv ? nng_strerror(rv) : "");
}

/* Every dialer without a pipe for stall_ms gets a new one. Delivery thread. */
static void watch_dialers(plug *p)
{
	pthread_mutex_lock(&p->pub_lock);
	if (p->state != ST_RUNNING) {
		pthread_mutex_unlock(&p->pub_lock);
		return;
	}
	int64_t now = plug_now_ms();
	for (size_t i = 0; i < p->n_ep; i++) {
		endpoint *e = &p->ep[i];
		pthread_mutex_lock(&p->g->lock);
		bool stalled = !e->listen && e->armed && e->pipes <= 0 && now - e->idle_since >= p->stall_ms;
		bool say = stalled && !e->warned;
		if (say)
			e->warned = true;
		int64_t idle = now - e->idle_since;
		pthread_mutex_unlock(&p->g->lock);
		if (stalled)
			redial(p, e, idle, say);
	}
	pthread_mutex_unlock(&p->pub_lock);
}

static void *deliver_main(void *arg)
{
	plug *p = arg;
	int64_t next_watch = plug_now_ms() + 500;
	pthread_mutex_lock(&p->q_lock);
	for (;;) {
		while (!p->q_stop && p->len == 0) {
			int64_t now = plug_now_ms();
			if (now >= next_watch) {
				pthread_mutex_unlock(&p->q_lock);
				watch_dialers(p);
				pthread_mutex_lock(&p->q_lock);
				next_watch = plug_now_ms() + 500;
				continue;
			}
			struct timespec dl;
			clock_gettime(CLOCK_MONOTONIC, &dl);
			int64_t ns = dl.tv_nsec + (next_watch - now) * 1000000;
			dl.tv_sec += ns / 1000000000;
			dl.tv_nsec = ns % 1000000000;
			pthread_cond_timedwait(&p->wake, &p->q_lock, &dl);
		}
		if (p->q_stop)
			break; /* stop() frees what is still queued */
		nng_msg *m = p->ring[p->head];
		p->head = (p->head + 1) % p->cap;
		p->len--;
		p->bytes -= nng_msg_len(m);
		pthread_mutex_unlock(&p->q_lock);
		if (p->c.inline_rx)
			deliver_locked(p, m);
		else
			deliver_one(p, m);
		nng_msg_free(m);
		if (plug_now_ms() >= next_watch) { /* a steady stream never waits */
			watch_dialers(p);
			next_watch = plug_now_ms() + 500;
		}
		pthread_mutex_lock(&p->q_lock);
	}
	pthread_mutex_unlock(&p->q_lock);
	return NULL;
}

/* ---- lifecycle ----------------------------------------------------------------------- */

static void plug_free(void *self)
{
	plug *p = self;
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
	pthread_mutex_destroy(&p->deliver_lock);
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
		spu_seterr(err, err_len, "nng: %s socket: %s", plug_sock_role[w], nng_strerror(rv));
		return map_nng(rv);
	}
	if (w == S_PUB)
		rv = nng_socket_set_int(s, NNG_OPT_SENDBUF, (int)p->c.send_buffer);
	else
		rv = nng_socket_set_int(s, NNG_OPT_RECVBUF, (int)p->c.recv_buffer);
	if (rv) {
		spu_seterr(err, err_len, "nng: %s socket buffer: %s", plug_sock_role[w], nng_strerror(rv));
		return map_nng(rv);
	}
	rv = nng_pipe_notify(s, NNG_PIPE_EV_ADD_PRE, w == S_PUB ? pub_pipe_cb : sub_pipe_cb, p->g);
	if (!rv)
		rv = nng_pipe_notify(s, NNG_PIPE_EV_REM_POST, w == S_PUB ? pub_pipe_cb : sub_pipe_cb, p->g);
	if (rv) {
		spu_seterr(err, err_len, "nng: %s socket: %s", plug_sock_role[w], nng_strerror(rv));
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
static void *plug_new(const siogw_host *host)
{
	plug *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->host = host;
	pthread_mutex_init(&p->pub_lock, NULL);
	pthread_mutex_init(&p->sub_lock, NULL);
	pthread_mutex_init(&p->q_lock, NULL);
	pthread_mutex_init(&p->deliver_lock, NULL);
	pthread_cond_init(&p->fl.idle, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the watchdog's timed waits */
	pthread_cond_init(&p->wake, &ca);
	pthread_condattr_destroy(&ca);
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
 * is the index of the option to plug_blame, if any; the caller frees p.
 */
static int plug_configure(void *self, const siogw_optval *opts, size_t n_opts, size_t *bad, char *err,
			  size_t err_len)
{
	plug *p = self;
	const char *lists[4];
	int rc = plug_parse_options(p, opts, n_opts, lists, bad, err, err_len);
	if (rc)
		return rc;
	/* endpoints in a fixed order: publish listen, publish dial, receive listen, receive dial */
	static const char *const names[4] = {"publish_listen", "publish_dial", "receive_listen", "receive_dial"};
	size_t first[5];
	for (int k = 0; k < 4; k++) {
		first[k] = p->n_ep;
		if ((rc = plug_add_endpoints(p, lists[k], k % 2 == 0, k / 2))) {
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
		return plug_blame(bad, opts, n_opts, "loopback", -SIOGW_EINVAL);
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
				return plug_blame(bad, opts, n_opts, names[k], rc);
	return 0;
}

static const spu_ctor plug_ctor = {plug_new, plug_configure, plug_free};

/* check() is create() and destroy() back to back: nng judges the URLs; nothing listens
 * or dials. Opening the sockets starts nng's process-wide worker threads (they stay:
 * -z nodelete). */
SPU_CTOR_OPS(plug, PLUGIN_NAME, plug_ctor)

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

	/* A fully blocked signal mask: signals belong to the gateway. */
	int rc = spu_thread_start(&p->thread, deliver_main, p, "siogw-nng");
	if (rc) {
		spu_seterr(err, err_len, "nng: cannot start the delivery thread: %s", strerror(rc));
		return rc == EAGAIN ? -SIOGW_ENOMEM : -SIOGW_EIO;
	}
	p->thread_started = true;

	p->stall_ms = 2 * p->c.reconnect_max + 2000;
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
				spu_seterr(err, err_len, "nng: %s socket: cannot %s %s: %s", plug_sock_role[e->w],
					   e->listen ? "listen on" : "dial", e->url, nng_strerror(rv));
				return map_nng(rv);
			}
			plog(p, SIOGW_LOG_INFO, "%s socket %s %s", plug_sock_role[e->w],
			     e->listen ? "listening on" : "dialing", e->url);
			if (!e->listen) {
				pthread_mutex_lock(&p->g->lock);
				e->armed = true;
				if (e->pipes <= 0)
					e->idle_since = plug_now_ms();
				pthread_mutex_unlock(&p->g->lock);
			}
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

	plug_close_sockets(p);

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
	if (!spu_sub_args_ok(pattern, kind) || strchr(pattern, ' '))
		return -SIOGW_EINVAL; /* a space would reach into the payload */
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

/* Under sub_lock: one subscription fewer needs gone's filter; nng drops the last. */
static void filter_forget(void *arg, const spu_sub *gone)
{
	plug *p = arg;
	size_t flen;
	char *ftext = filter_text(gone->pattern, gone->kind, &flen);
	filter *f = ftext ? find_filter(p, ftext, flen) : NULL;
	if (f && --f->refs == 0) {
		if (!p->sub_closed)
			nng_socket_set(p->s[S_SUB], NNG_OPT_SUB_UNSUBSCRIBE, f->text, f->len);
		free(f->text);
		*f = p->filters[--p->n_filters];
	}
	free(ftext);
}

static int plug_unsubscribe(void *self, uint64_t sub_id)
{
	plug *p = self;
	/* waits out a deliver() for this id already in progress (not from inside it) */
	return spu_unsubscribe(&p->sub_lock, &p->subs, &p->fl, sub_id, filter_forget, p);
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
	if (st != ST_RUNNING)
		return spu_health_down(buf, buf_len, st != ST_CREATED);
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
			 "sio_nng_received_total %llu\n"
			 "sio_nng_delivered_total %llu\n"
			 "sio_nng_dropped_total %llu\n"
			 "sio_nng_dropped_queue_full_total %llu\n"
			 "sio_nng_dropped_refused_total %llu\n"
			 "sio_nng_dropped_malformed_total %llu\n"
			 "sio_nng_published_total %llu\n"
			 "sio_nng_publish_failed_total %llu\n"
			 "sio_nng_loopback_total %llu\n"
			 "sio_nng_subscriptions %zu\n"
			 "sio_nng_filters %zu\n"
			 "sio_nng_queue_messages %zu\n"
			 "sio_nng_queue_bytes %zu\n"
			 "sio_nng_publish_peers %ld\n"
			 "sio_nng_receive_peers %ld\n"
			 "sio_nng_publish_connects_total %llu\n"
			 "sio_nng_receive_connects_total %llu\n"
			 "sio_nng_publish_disconnects_total %llu\n"
			 "sio_nng_receive_disconnects_total %llu\n"
			 "# HELP sio_nng_dialer_restarts_total Dialers recreated after 2 x reconnect_max + 2 s without a peer.\n"
			 "sio_nng_dialer_restarts_total %llu\n",
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
			 (unsigned long long)atomic_load(&p->disconnects[S_SUB]),
			 (unsigned long long)atomic_load(&p->dialer_restarts));
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

SPU_PLUGIN_V1(plug, PLUGIN_NAME, "0.1.0", plug_options, PLUG_N_OPTIONS,
	      "NNG pub/sub bus: brokerless, frames 'topic payload'; backends in any language with "
	      "an nng/nanomsg binding, or nngcat");
