/*
 * nng_close.c — the NNG plugin's close workaround: nng_close() with a deadline.
 *
 * nng 1.5.2 can wedge in close (nanomsg/nng#1543, fixed after 1.5.2): closing a SUB
 * socket while a peer is still sending into it sometimes leaves nng's reaper waiting
 * forever. The close runs on a helper thread; after `ms` we give up on it, so the
 * gateway still shuts down (the stuck thread ends with the process). stop() calls it,
 * once per socket; what nng may call back afterwards reaches only the gate (nng_int.h).
 */
#include "nng_int.h"

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

/* true: closed; false: given up after `ms` (the helper goes on trying, detached). */
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
	sigset_t old;
	spu_sigblock(&old);
	pthread_t th;
	int rc = pthread_create(&th, &at, closer_main, c);
	spu_sigrestore(&old);
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

/*
 * stop()'s close of both sockets. The receive aio first: nng_aio_stop waits for rx_cb
 * and refuses new receives. Then the publish socket, so that a receive socket fed by it
 * (self loop) goes quiet before it is closed: closing a SUB that is still being sent to
 * can wedge nng 1.5.2. A socket given up on is marked stuck (its gate then outlives the
 * instance, plug_free) and said once in the log.
 */
void plug_close_sockets(plug *p)
{
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
			     plug_sock_role[w]);
}
