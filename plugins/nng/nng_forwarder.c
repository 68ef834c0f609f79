/*
 * siogw-nng-forwarder — the hub of the forwarder topology (docs/nng.md): every
 * publisher (backends' PUB, gateways' publish socket) dials --in, every subscriber
 * (backends' SUB, gateways' receive socket) dials --out, and each message that comes
 * in goes out to every subscriber once. Nobody needs to know anybody else's address,
 * and processes may come and go in any order.
 *
 *   siogw-nng-forwarder --in URL [--in URL]... --out URL [--out URL]...
 *                       [--buffer N]
 *
 * A raw SUB socket (no filtering) and a raw PUB socket joined by nng_device(): the
 * subscribers filter by topic themselves, as nng SUB sockets always do. Pub/sub
 * semantics: at most once; a subscriber that cannot keep up loses its oldest queued
 * messages beyond --buffer (default 8192). Prints "ready" on stdout once it listens;
 * runs until killed (SIGINT/SIGTERM end it; there is nothing to flush).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>

static void usage(FILE *f)
{
	fprintf(f, "usage: siogw-nng-forwarder --in URL [--in URL]... --out URL [--out URL]... [--buffer N]\n"
		   "  --in URL     listen here for publishers (backends' PUB, gateways' publish socket)\n"
		   "  --out URL    listen here for subscribers (backends' SUB, gateways' receive socket)\n"
		   "  --buffer N   messages queued per subscriber (1..8192, default 8192)\n");
}

int main(int argc, char **argv)
{
	nng_socket in, out;
	int rv, buffer = 8192, n_in = 0, n_out = 0;
	if ((rv = nng_sub0_open_raw(&in)) || (rv = nng_pub0_open_raw(&out))) {
		fprintf(stderr, "siogw-nng-forwarder: %s\n", nng_strerror(rv));
		return 1;
	}
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--buffer") && i + 1 < argc)
			buffer = atoi(argv[++i]);
	if (buffer < 1 || buffer > 8192) {
		usage(stderr);
		return 2;
	}
	nng_socket_set_int(in, NNG_OPT_RECVBUF, buffer);
	nng_socket_set_int(out, NNG_OPT_SENDBUF, buffer);
	nng_socket_set_size(in, NNG_OPT_RECVMAXSZ, 0); /* no limit: the subscribers set theirs */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		}
		if (i + 1 >= argc) {
			usage(stderr);
			return 2;
		}
		const char *v = argv[++i];
		if (!strcmp(a, "--in"))
			rv = nng_listen(in, v, NULL, 0), n_in++;
		else if (!strcmp(a, "--out"))
			rv = nng_listen(out, v, NULL, 0), n_out++;
		else if (!strcmp(a, "--buffer"))
			rv = 0;
		else {
			usage(stderr);
			return 2;
		}
		if (rv) {
			fprintf(stderr, "siogw-nng-forwarder: cannot listen on %s: %s\n", v, nng_strerror(rv));
			return 1;
		}
	}
	if (!n_in || !n_out) {
		usage(stderr);
		return 2;
	}
	printf("ready\n");
	fflush(stdout);
	rv = nng_device(in, out); /* returns only when a socket is closed */
	fprintf(stderr, "siogw-nng-forwarder: %s\n", nng_strerror(rv));
	return 1;
}
