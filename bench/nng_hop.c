/*
 * nng_hop.c — the bare nng bus hop, for reference next to the gateway's nng plugin: one
 * SUB socket subscribed to "sio.out " that only counts what arrives. Run
 * `loadgen rooms --via nng --hop` against it to see what the hop alone carries (and
 * whether the publisher or the hop is the limit); compare.sh does.
 *
 *   nng_hop --port P [--listen tcp://127.0.0.1:5561]... [--dial URL]... [--recv-buffer N]
 *
 * HTTP on 127.0.0.1:P (one request per connection):
 *   GET /healthz           200 once every listener is bound
 *   GET /stats             {"received":N,"duplicates":D,"first_ns":T,"last_ns":T,"p50_ns":..,
 *                          "p99_ns":..,"p999_ns":..,"max_ns":..,"bytes":B}
 *   GET /stats?reset=1     the same, then every counter back to zero
 * Times are CLOCK_MONOTONIC ns (comparable with the loadgen's); the latency is receipt
 * time minus the "t":"<ns>" a frame's payload carries (frames without one are counted,
 * not timed). duplicates: frames whose "s":<seq> equals the one before (a cheap check).
 * On SIGINT/SIGTERM it prints its totals to stderr and exits 0.
 */
#include "benchlib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>

static nng_socket g_sub;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	uint64_t received, bytes, dups, first_ns, last_ns, last_seq, total;
	bool have_seq;
	bl_hist lat;
} G;
static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static uint64_t num_after(const char *p, size_t n, const char *key, bool *ok)
{
	size_t kl = strlen(key);
	const char *q = n >= kl ? memmem(p, n, key, kl) : NULL;
	uint64_t v = 0;
	*ok = false;
	if (!q)
		return 0;
	for (q += kl; q < p + n && *q >= '0' && *q <= '9'; q++) {
		v = v * 10 + (uint64_t)(*q - '0');
		*ok = true;
	}
	return v;
}

static void *recv_main(void *arg)
{
	(void)arg;
	for (;;) {
		nng_msg *m;
		int rv = nng_recvmsg(g_sub, &m, 0);
		if (rv == NNG_ECLOSED)
			return NULL;
		if (rv)
			continue;
		uint64_t now = bl_now_ns();
		const char *b = nng_msg_body(m);
		size_t n = nng_msg_len(m);
		bool tok, sok;
		uint64_t t = num_after(b, n, "\"t\":\"", &tok);
		uint64_t s = num_after(b, n, "\"s\":", &sok);
		pthread_mutex_lock(&g_lock);
		if (!G.received)
			G.first_ns = now;
		G.received++;
		G.total++;
		G.bytes += n;
		G.last_ns = now;
		if (tok)
			bl_hist_add(&G.lat, now > t ? now - t : 0);
		if (sok) {
			if (G.have_seq && s == G.last_seq)
				G.dups++;
			G.last_seq = s;
			G.have_seq = true;
		}
		pthread_mutex_unlock(&g_lock);
		nng_msg_free(m);
	}
}

static void reply(int fd, int status, const char *body)
{
	char buf[2048];
	int n = snprintf(buf, sizeof buf,
			 "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n%s",
			 status, status == 200 ? "OK" : "Not Found", strlen(body), body);
	ssize_t w = write(fd, buf, (size_t)n);
	(void)w;
}

static void serve(int fd)
{
	char req[2048];
	ssize_t n = read(fd, req, sizeof req - 1);
	if (n <= 0)
		return;
	req[n] = 0;
	if (!strncmp(req, "GET /healthz", 12)) {
		reply(fd, 200, "{\"ok\":true}");
		return;
	}
	if (strncmp(req, "GET /stats", 10) != 0) {
		reply(fd, 404, "{\"error\":\"not found\"}");
		return;
	}
	char body[1024];
	pthread_mutex_lock(&g_lock);
	snprintf(body, sizeof body,
		 "{\"received\":%llu,\"duplicates\":%llu,\"bytes\":%llu,\"first_ns\":%llu,\"last_ns\":%llu,"
		 "\"p50_ns\":%llu,\"p99_ns\":%llu,\"p999_ns\":%llu,\"max_ns\":%llu}",
		 (unsigned long long)G.received, (unsigned long long)G.dups, (unsigned long long)G.bytes,
		 (unsigned long long)G.first_ns, (unsigned long long)G.last_ns,
		 (unsigned long long)bl_hist_quantile(&G.lat, 0.5), (unsigned long long)bl_hist_quantile(&G.lat, 0.99),
		 (unsigned long long)bl_hist_quantile(&G.lat, 0.999), (unsigned long long)G.lat.max);
	if (strstr(req, "reset=1")) {
		uint64_t total = G.total;
		memset(&G, 0, sizeof G);
		G.total = total;
	}
	pthread_mutex_unlock(&g_lock);
	reply(fd, 200, body);
}

int main(int argc, char **argv)
{
	int port = 0, rv, recv_buffer = 8192;
	const char *listen_urls[8], *dial_urls[8];
	int nl = 0, nd = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v) {
			fprintf(stderr, "nng_hop: %s needs a value\n", a);
			return 2;
		}
		i++;
		if (!strcmp(a, "--port"))
			port = atoi(v);
		else if (!strcmp(a, "--listen") && nl < 8)
			listen_urls[nl++] = v;
		else if (!strcmp(a, "--dial") && nd < 8)
			dial_urls[nd++] = v;
		else if (!strcmp(a, "--recv-buffer"))
			recv_buffer = atoi(v);
		else {
			fprintf(stderr, "usage: nng_hop --port P [--listen URL]... [--dial URL]... [--recv-buffer N]\n");
			return 2;
		}
	}
	if (port <= 0 || port > 65535) {
		fprintf(stderr, "nng_hop: --port is required\n");
		return 2;
	}
	if (!nl && !nd)
		listen_urls[nl++] = "tcp://127.0.0.1:5561";
	if ((rv = nng_sub0_open(&g_sub))) {
		fprintf(stderr, "nng_hop: nng_sub0_open: %s\n", nng_strerror(rv));
		return 1;
	}
	nng_socket_set_int(g_sub, NNG_OPT_RECVBUF, recv_buffer);
	nng_socket_set_size(g_sub, NNG_OPT_RECVMAXSZ, 64u << 20);
	nng_socket_set(g_sub, NNG_OPT_SUB_SUBSCRIBE, "sio.out ", 8);
	for (int i = 0; i < nl; i++)
		if ((rv = nng_listen(g_sub, listen_urls[i], NULL, 0))) {
			fprintf(stderr, "nng_hop: listen %s: %s\n", listen_urls[i], nng_strerror(rv));
			return 1;
		}
	for (int i = 0; i < nd; i++)
		if ((rv = nng_dial(g_sub, dial_urls[i], NULL, NNG_FLAG_NONBLOCK))) {
			fprintf(stderr, "nng_hop: dial %s: %s\n", dial_urls[i], nng_strerror(rv));
			return 1;
		}

	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) || listen(lfd, 16)) {
		fprintf(stderr, "nng_hop: 127.0.0.1:%d: %s\n", port, strerror(errno));
		return 1;
	}
	struct sigaction sig;
	memset(&sig, 0, sizeof sig);
	sig.sa_handler = on_signal; /* no SA_RESTART: accept() returns EINTR */
	sigaction(SIGINT, &sig, NULL);
	sigaction(SIGTERM, &sig, NULL);
	signal(SIGPIPE, SIG_IGN);
	pthread_t th;
	pthread_create(&th, NULL, recv_main, NULL);
	pthread_detach(th);
	fprintf(stderr, "nng_hop: SUB \"sio.out \" on %s%s, stats on http://127.0.0.1:%d/stats\n",
		nl ? listen_urls[0] : dial_urls[0], nl + nd > 1 ? " (and more)" : "", port);

	while (!g_stop) {
		int fd = accept(lfd, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		struct timeval tv = {2, 0};
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		serve(fd);
		close(fd);
	}
	pthread_mutex_lock(&g_lock);
	fprintf(stderr, "nng_hop: %llu frames received in all\n", (unsigned long long)G.total);
	pthread_mutex_unlock(&g_lock);
	close(lfd);
	/* exit without nng_close: closing a SUB socket while a peer still sends can wedge
	 * nng 1.5.2 (nanomsg/nng#1543; docs/nng.md §8) */
	return 0;
}
