/*
 * nng_peer — a backend stand-in on an NNG bus, driven over stdin/stdout by the
 * integration tests (tests/integration/nng.test.js) and bench/nng_bench.js.
 *
 *   nng_peer [--pub-listen URL]... [--pub-dial URL]... [--sub-listen URL]...
 *            [--sub-dial URL]... [--subscribe PREFIX]... [--reconnect-ms N]
 *
 * One PUB and one SUB socket, as a backend in any language would have. Without
 * --subscribe the SUB socket takes everything. Frames are the gateway's NNG framing,
 * "topic SP payload", written and read whole: this program knows nothing of topics.
 *
 * stdin, one command per line:
 *   pub <frame>                    publish the rest of the line as one message
 *   flood <count> <rate> <frame>   publish it count times, rate per second (0: as fast
 *                                  as nng takes them); answers "flooded <count> <ms>"
 *   quit                           exit (so does end of input)
 * stdout, one line each, flushed:
 *   ready                          every listener is bound, every dialer started
 *   pipes pub=<n> sub=<m>          after each connect/disconnect
 *   msg <base64 of the frame>      one received message
 *   error <text>                   a command failed
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static nng_socket pub, sub;
static atomic_int pipes[2];

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	pthread_mutex_lock(&out_lock);
	vfprintf(stdout, fmt, ap);
	fputc('\n', stdout);
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
	va_end(ap);
}

static void die(const char *what, int rv)
{
	fprintf(stderr, "nng_peer: %s: %s\n", what, nng_strerror(rv));
	exit(1);
}

static void pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	int which = (int)(intptr_t)arg;
	atomic_fetch_add(&pipes[which], ev == NNG_PIPE_EV_ADD_POST ? 1 : -1);
	say("pipes pub=%d sub=%d", atomic_load(&pipes[0]), atomic_load(&pipes[1]));
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void *recv_main(void *arg)
{
	(void)arg;
	for (;;) {
		nng_msg *m;
		int rv = nng_recvmsg(sub, &m, 0);
		if (rv == NNG_ECLOSED)
			return NULL;
		if (rv)
			continue;
		const unsigned char *s = nng_msg_body(m);
		size_t n = nng_msg_len(m);
		char *line = malloc(4 * (n / 3 + 1) + 8);
		if (!line) {
			nng_msg_free(m);
			continue;
		}
		char *o = line;
		o += sprintf(o, "msg ");
		for (size_t i = 0; i < n; i += 3) {
			unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) |
				     (i + 2 < n ? s[i + 2] : 0);
			*o++ = b64[v >> 18 & 63];
			*o++ = b64[v >> 12 & 63];
			*o++ = i + 1 < n ? b64[v >> 6 & 63] : '=';
			*o++ = i + 2 < n ? b64[v & 63] : '=';
		}
		*o = 0;
		say("%s", line);
		free(line);
		nng_msg_free(m);
	}
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void flood(long count, long rate, const char *frame)
{
	size_t len = strlen(frame);
	int64_t t0 = now_ms();
	for (long i = 0; i < count; i++) {
		int rv = nng_send(pub, (void *)frame, len, NNG_FLAG_NONBLOCK);
		if (rv) {
			say("error flood: %s", nng_strerror(rv));
			return;
		}
		if (rate > 0 && (i + 1) % 100 == 0) { /* pace in steps of 100 messages */
			int64_t due = t0 + (int64_t)((i + 1) * 1000 / rate);
			int64_t wait = due - now_ms();
			if (wait > 0) {
				struct timespec ts = {.tv_sec = wait / 1000, .tv_nsec = (wait % 1000) * 1000000};
				nanosleep(&ts, NULL);
			}
		}
	}
	say("flooded %ld %lld", count, (long long)(now_ms() - t0));
}

int main(int argc, char **argv)
{
	int rv;
	if ((rv = nng_pub0_open(&pub)) || (rv = nng_sub0_open(&sub)))
		die("open", rv);
	nng_socket_set_int(pub, NNG_OPT_SENDBUF, 8192);
	nng_socket_set_int(sub, NNG_OPT_RECVBUF, 8192);
	nng_socket_set_size(sub, NNG_OPT_RECVMAXSZ, 64u << 20);
	nng_pipe_notify(pub, NNG_PIPE_EV_ADD_POST, pipe_cb, (void *)0);
	nng_pipe_notify(pub, NNG_PIPE_EV_REM_POST, pipe_cb, (void *)0);
	nng_pipe_notify(sub, NNG_PIPE_EV_ADD_POST, pipe_cb, (void *)1);
	nng_pipe_notify(sub, NNG_PIPE_EV_REM_POST, pipe_cb, (void *)1);
	int reconnect = 50;
	bool subscribed = false;
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--reconnect-ms") && i + 1 < argc)
			reconnect = atoi(argv[++i]);
	nng_socket_set_ms(pub, NNG_OPT_RECONNMINT, reconnect);
	nng_socket_set_ms(sub, NNG_OPT_RECONNMINT, reconnect);
	nng_socket_set_ms(pub, NNG_OPT_RECONNMAXT, reconnect * 4);
	nng_socket_set_ms(sub, NNG_OPT_RECONNMAXT, reconnect * 4);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v) {
			fprintf(stderr, "nng_peer: %s needs a value\n", a);
			return 2;
		}
		i++;
		if (!strcmp(a, "--pub-listen"))
			rv = nng_listen(pub, v, NULL, 0);
		else if (!strcmp(a, "--pub-dial"))
			rv = nng_dial(pub, v, NULL, NNG_FLAG_NONBLOCK);
		else if (!strcmp(a, "--sub-listen"))
			rv = nng_listen(sub, v, NULL, 0);
		else if (!strcmp(a, "--sub-dial"))
			rv = nng_dial(sub, v, NULL, NNG_FLAG_NONBLOCK);
		else if (!strcmp(a, "--subscribe")) {
			rv = nng_socket_set(sub, NNG_OPT_SUB_SUBSCRIBE, v, strlen(v));
			subscribed = true;
		} else if (!strcmp(a, "--reconnect-ms"))
			rv = 0;
		else {
			fprintf(stderr, "nng_peer: unknown argument %s\n", a);
			return 2;
		}
		if (rv)
			die(v, rv);
	}
	if (!subscribed && (rv = nng_socket_set(sub, NNG_OPT_SUB_SUBSCRIBE, "", 0)))
		die("subscribe", rv);
	pthread_t th;
	pthread_create(&th, NULL, recv_main, NULL);
	pthread_detach(th);
	say("ready");

	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, stdin)) > 0) {
		if (line[n - 1] == '\n')
			line[--n] = 0;
		if (!strncmp(line, "pub ", 4)) {
			if ((rv = nng_send(pub, line + 4, (size_t)n - 4, NNG_FLAG_NONBLOCK)))
				say("error pub: %s", nng_strerror(rv));
		} else if (!strncmp(line, "flood ", 6)) {
			char *end;
			long count = strtol(line + 6, &end, 10);
			long rate = strtol(end, &end, 10);
			if (*end == ' ')
				flood(count, rate, end + 1);
			else
				say("error flood: usage flood <count> <rate> <frame>");
		} else if (!strcmp(line, "quit")) {
			break;
		} else if (n) {
			say("error unknown command");
		}
	}
	free(line);
	/* exit without nng_close: nothing to flush on pub/sub, and closing a socket that is
	 * still being sent to can wedge nng 1.5.2 */
	return 0;
}
