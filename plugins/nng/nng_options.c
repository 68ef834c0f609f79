/*
 * nng_options.c — the NNG plugin's option table, and judging the options into the
 * instance (create() and check()).
 */
#include "nng_int.h"

const siogw_option plug_options[] = {
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
	{"delivery", SIOGW_OPT_ENUM, "inline", 1, 0, "thread|inline",
	 "inline: nng's receive callback hands each message to the gateway (no thread hop); "
	 "thread: through a bounded queue (queue, queue_bytes) and a delivery thread of its own"},
};
#define N_OPTIONS (sizeof plug_options / sizeof plug_options[0])
_Static_assert(N_OPTIONS == PLUG_N_OPTIONS, "PLUG_N_OPTIONS (nng_int.h) is the table's length");

/* Append each item of a comma-joined list as an endpoint of socket w. */
int plug_add_endpoints(plug *p, const char *list, bool listen, int w)
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

/* The option to plug_blame, for check(): the index of `name` in opts, else nothing. */
int plug_blame(size_t *bad, const siogw_optval *opts, size_t n, const char *name, int rc)
{
	size_t i = spu_opt_index(opts, n, name);
	if (bad && i != SIZE_MAX)
		*bad = i;
	return rc;
}

int plug_parse_options(plug *p, const siogw_optval *opts, size_t n_opts, const char *lists[4], size_t *bad,
		       char *err, size_t err_len)
{
	conf *c = &p->c;
	*c = (conf){.loopback = true,
		    .inline_rx = true,
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
		lists[k] = plug_options[k].def ? plug_options[k].def : "";
	for (size_t i = 0; i < n_opts; i++) {
		const siogw_optval *o = &opts[i];
		bool prefix; /* nng declares no PREFIX option */
		const siogw_option *d = spu_decl_find(plug_options, N_OPTIONS, o->name, &prefix);
		if (bad)
			*bad = i; /* every failure inside the loop is this option's */
		if (!d) {
			spu_seterr(err, err_len,
				   "nng: unknown option '%s' (valid: publish_listen, publish_dial, receive_listen, "
				   "receive_dial, loopback, keys, reconnect_min, reconnect_max, send_buffer, "
				   "recv_buffer, queue, queue_bytes, max_message, tcp_keepalive, ipc_permissions, "
				   "require_peers, delivery)",
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
		else if (!strcmp(nm, "delivery"))
			c->inline_rx = o->num == 1; /* the choice's index: thread|inline */
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
		return plug_blame(bad, opts, n_opts, "max_message", -SIOGW_EINVAL);
	}
	return 0;
}
