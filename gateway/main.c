/*
 * main.c — command line, startup and orderly shutdown.
 *
 *   sio-gateway [-c FILE] [--check] [--plugin-help NAME] [--version] [--help]
 *
 * Without -c the embedded default configuration (config/gateway.yaml) is used.
 */
#include "admin/admin.h"
#include "bus/bus.h"
#include "bus/check.h"
#include "bus/loader.h"
#include "bus/relay.h"
#include "eio/eio.h"
#include "http/api.h"
#include "http/client.h"
#include "http/metrics.h"
#include "net/net.h"
#include "sio/sio.h"
#include "siogw_build.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timer.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sio-gateway [options]\n"
		"  -c, --config FILE       configuration file (default: the embedded config/gateway.yaml)\n"
		"      --check             validate the configuration (and the plugin's options) and exit\n"
		"      --plugin-help NAME  print a bus plugin's options (NAME or path to a .so) and exit\n"
		"  -v, --version           print the version and exit\n"
		"  -h, --help              this help\n");
}

/* The running gateway: every module instance, owned here and nowhere else. */
typedef struct gw_app {
	gw_config *cfg;
	net_loop *net;
	eio_server *eio;   /* the Socket.IO engine at engine.path */
	eio_server *echo;  /* raw Engine.IO echo at engine.echo_path, or NULL */
	gw_client *client; /* engine.serve_client's bundle, or NULL */
	sio_server *sio;
	gw_admin *admin;   /* admin_ui, or NULL */
	gw_bus *bus;
	gw_relay *relay;   /* sessions of other nodes (no sticky sessions), or NULL */
	gw_api *api;
	gw_metrics *metrics;
} gw_app;

/* What the signal handler stops; set before the signals are unblocked. */
static net_loop *volatile stop_target;
static volatile sig_atomic_t last_signal;

static void on_signal(int sig)
{
	last_signal = sig;
	net_loop *L = stop_target;
	if (L)
		net_stop_signal(L);
}

/*
 * Graceful drain (shutdown.drain_ms), on SIGTERM or POST /api/drain: /healthz says
 * "draining" and new sessions get 503 at once, so the load balancer and the clients go
 * elsewhere; the open sessions are closed a few every DRAIN_TICK_MS, evenly over
 * drain_ms (a close packet, a close frame, held polls answered), so their
 * reconnects do not all land in the same instant; then the shutdown goes on as a fast
 * stop does. SIGINT and SIGHUP stop at once, during a drain too.
 */
#define DRAIN_TICK_MS 50
#define FENCE_MS 1000

typedef struct drain {
	gw_app *app;
	gw_timer timer;
	uint64_t start_ms, end_ms;
	size_t n0;             /* sessions when it began (no new ones come) */
	bool on, done;
	bool fencing;          /* closed: waiting for the bus (gw_bus_fence) */
} drain;

static void drain_stop(drain *d)
{
	d->done = true;
	net_stop(d->app->net);
}

static void drain_fenced(void *ctx)
{
	drain *d = ctx;
	if (!d->fencing)
		return;
	d->fencing = false;
	gw_timer_stop(net_timers(d->app->net), &d->timer);
	drain_stop(d);
}

static void drain_fence_timeout(gw_timer *t)
{
	drain *d = t->ctx;
	d->fencing = false;
	drain_stop(d);
}

static void drain_tick(gw_timer *t)
{
	drain *d = t->ctx;
	uint64_t now = gw_now_ms();
	size_t left = eio_server_sessions(d->app->eio);
	if (left && now < d->end_ms) {
		/* by now n0 · elapsed / drain_ms should be gone (those that left by themselves
		 * count): an even spread whatever n0 is */
		uint64_t span = d->end_ms - d->start_ms, due = (d->n0 * (now - d->start_ms) + span - 1) / span;
		size_t gone = d->n0 > left ? d->n0 - left : 0;
		if (due > gone)
			left = eio_server_close_some(d->app->eio, (size_t)(due - gone), GW_CLOSE_SHUTDOWN);
	}
	if (!left || now >= d->end_ms) {
		gw_info("drained%s", left ? " (time is up: the rest close now)" : "");
		/* what the closes published (disconnects, ack_done) reaches this node's own
		 * subscribers (the HTTP API's SSE) before it stops: the bus's fence, at most
		 * FENCE_MS */
		d->fencing = gw_bus_fence(d->app->bus, drain_fenced, d) == 0;
		if (!d->fencing) {
			drain_stop(d);
			return;
		}
		gw_timer_start(net_timers(d->app->net), &d->timer, FENCE_MS, drain_fence_timeout);
		return;
	}
	gw_timer_start(net_timers(d->app->net), &d->timer, DRAIN_TICK_MS, drain_tick);
}

static void drain_start(void *ctx)
{
	drain *d = ctx;
	const gw_config *cfg = d->app->cfg;
	if (d->on)
		return;
	d->on = true;
	if (cfg->shutdown.drain_ms == 0) { /* a fast stop */
		d->done = true;
		net_stop(d->app->net);
		return;
	}
	eio_server_drain(d->app->eio);
	gw_info("draining: %zu sessions closed over %d ms, new sessions refused", eio_server_sessions(d->app->eio),
		cfg->shutdown.drain_ms);
	d->n0 = eio_server_sessions(d->app->eio);
	d->start_ms = gw_now_ms();
	d->end_ms = d->start_ms + (uint64_t)cfg->shutdown.drain_ms;
	d->timer.ctx = d;
	gw_timer_start(net_timers(d->app->net), &d->timer, 0, drain_tick);
}

static int plugin_help(const char *name, const char *plugin_dir)
{
	gw_plugin *p;
	char err[512];
	if (gw_plugin_open(name, plugin_dir, &p, err, sizeof err)) {
		fprintf(stderr, "sio-gateway: %s\n", err);
		return 1;
	}
	const siogw_plugin *d = gw_plugin_desc(p);
	printf("plugin %s %s (%s)\n%s\n\noptions (under adapter.options):\n", d->name, d->version,
	       gw_plugin_path(p), d->description ? d->description : "");
	gw_config_print_options(d->options, d->n_options, stdout);
	gw_plugin_close(p);
	return 0;
}

static int load_config(const char *path, gw_config *cfg)
{
	char err[1024];
	int rc = path ? gw_config_load_file(path, cfg, err, sizeof err)
		      : gw_config_load_string("<embedded>", gw_config_default_yaml,
					      strlen(gw_config_default_yaml), cfg, err, sizeof err);
	if (rc)
		fprintf(stderr, "sio-gateway: %s\n", err);
	return rc;
}

/* engine.serve_client: the bundle, read before anything listens. Logs why not. */
static int load_client(const gw_config *cfg, gw_client **out)
{
	char err[PATH_MAX + 256], where[PATH_MAX + 32];
	int rc = gw_client_load(cfg, out, err, sizeof err);
	if (rc)
		fprintf(stderr, "sio-gateway: %s: %s\n", gw_config_where(cfg, "engine", "serve_client", where, sizeof where),
			err);
	return rc;
}

/* --check: the config, the client bundle when served, then the plugin and its options
 * (as the plugin judges them too), without listening. */
static int check(gw_config *cfg)
{
	gw_client *cl;
	if (load_client(cfg, &cl))
		return 1;
	gw_client_destroy(cl);
	gw_plugin *p;
	char err[1024];
	if (gw_plugin_open(cfg->adapter.plugin, cfg->adapter.plugin_dir, &p, err, sizeof err)) {
		fprintf(stderr, "sio-gateway: %s\n", err);
		return 1;
	}
	const siogw_plugin *d = gw_plugin_desc(p);
	bool checked;
	int rc = gw_bus_check_options(cfg, p, &checked, err, sizeof err);
	if (rc)
		fprintf(stderr, "sio-gateway: %s\n", err);
	else
		printf("%s: configuration ok (plugin %s, %zu namespace%s)%s\n", cfg->path, d->name,
		       cfg->n_nsps, cfg->n_nsps == 1 ? "" : "s",
		       checked ? "" : "; the plugin has no check op (ABI 1.0): create() may still refuse its options");
	gw_plugin_close(p);
	return rc ? 1 : 0;
}

static void bus_drain(void *bus) { gw_bus_drain(bus); }
static bool bus_pending(void *bus) { return gw_bus_pending(bus); }

int main(int argc, char **argv)
{
	const char *config_path = NULL, *help_plugin = NULL;
	bool only_check = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if ((!strcmp(a, "-c") || !strcmp(a, "--config")) && i + 1 < argc) {
			config_path = argv[++i];
		} else if (!strcmp(a, "--check")) {
			only_check = true;
		} else if (!strcmp(a, "--plugin-help") && i + 1 < argc) {
			help_plugin = argv[++i];
		} else if (!strcmp(a, "-v") || !strcmp(a, "--version")) {
			printf("sio-gateway %s (plugin ABI %d.%d)\n", SIOGW_VERSION, SIOGW_ABI_MAJOR,
			       SIOGW_ABI_MINOR);
			return 0;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "sio-gateway: unknown or incomplete option '%s'\n", a);
			usage(stderr);
			return 2;
		}
	}
	if (help_plugin)
		return plugin_help(help_plugin, NULL);

	gw_config cfg;
	memset(&cfg, 0, sizeof cfg);
	if (load_config(config_path, &cfg))
		return 1;
	gw_log_set_level(cfg.log.level);
	if (only_check) {
		int rc = check(&cfg);
		gw_config_free(&cfg);
		return rc;
	}

	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL); /* no reload: a hang-up stops as cleanly as TERM */

	/* Plugin threads inherit this mask: SIGINT/SIGTERM then reach the service thread,
	 * whose poll they interrupt. Unblocked below once the plugin has started. */
	sigset_t stopsigs;
	sigemptyset(&stopsigs);
	sigaddset(&stopsigs, SIGINT);
	sigaddset(&stopsigs, SIGTERM);
	sigaddset(&stopsigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stopsigs, NULL);

	gw_app app;
	memset(&app, 0, sizeof app);
	app.cfg = &cfg;
	char err[1024];
	int rc = 1;
	/* the loop first (it listens; nothing is served before net_run), then the layers
	 * from the bottom up; the bus before socket.io, whose handler it is */
	if (load_client(&cfg, &app.client))
		goto out;
	app.net = net_create(&cfg);
	if (!app.net)
		goto out;
	app.bus = gw_bus_create(&cfg, app.net, err, sizeof err);
	if (!app.bus) {
		gw_err("%s", err);
		goto out;
	}
	/* the admin UI, when on, stands in front of the bus: it serves its namespace and
	 * watches the others' sockets on their way to the bus */
	sio_handler sh = gw_bus_sio_handler(app.bus);
	if (cfg.admin_ui.enabled) {
		if (!(app.admin = gw_admin_create(&cfg, app.net, &sh))) {
			gw_err("out of memory at startup");
			goto out;
		}
		sh = gw_admin_sio_handler(app.admin);
	}
	app.sio = sio_server_create(&cfg, net_timers(app.net), &sh);
	if (app.sio)
		gw_bus_set_sio(app.bus, app.sio);
	eio_handler eh = app.sio ? sio_server_eio_handler(app.sio) : (eio_handler){0};
	app.eio = app.sio ? eio_server_create(app.net, &cfg, cfg.engine.path, &eh) : NULL;
	app.metrics = gw_metrics_create();
	app.api = app.eio && app.metrics ? gw_api_create(&cfg, app.net, app.bus, app.eio, app.metrics) : NULL;
	if (!app.sio || !app.eio || !app.api || (app.admin && gw_admin_start(app.admin, app.sio, app.eio))) {
		gw_err("out of memory at startup");
		goto out;
	}
	/* requests for other nodes' sessions go there over the bus: no sticky sessions
	 * (the memory bus has no other node) */
	if (cfg.topics.node[0] && strcmp(gw_bus_plugin_name(app.bus), "memory") != 0) {
		if (!(app.relay = gw_relay_create(app.bus, app.net, &cfg))) {
			gw_err("out of memory at startup");
			goto out;
		}
		eio_server_set_relay(app.eio, gw_relay_request, app.relay);
		gw_bus_set_relay(app.bus, gw_relay_deliver, app.relay);
	}
	if (cfg.engine.echo_path && cfg.engine.echo_path[0]) {
		eio_handler echo = eio_echo_handler();
		app.echo = eio_server_create(app.net, &cfg, cfg.engine.echo_path, &echo);
		if (!app.echo)
			goto out;
	}
	/* routes: the echo endpoint and the engine by prefix, the API for the rest; each
	 * turn: the bus's deliveries, then the engine's and the SSE streams' writes */
	/* /metrics: each layer's counters; the echo server's sum with the engine's */
	if ((app.echo && eio_server_listen(app.echo)) || gw_client_listen(app.client, app.net) ||
	    eio_server_listen(app.eio) || gw_api_listen(app.api) ||
	    gw_metrics_add(app.metrics, net_metrics, app.net) || gw_metrics_add(app.metrics, eio_metrics, app.eio) ||
	    (app.echo && gw_metrics_add(app.metrics, eio_metrics, app.echo)) ||
	    gw_metrics_add(app.metrics, sio_metrics, app.sio) || gw_metrics_add(app.metrics, gw_bus_metrics, app.bus) ||
	    gw_metrics_add(app.metrics, gw_api_metrics, app.api) ||
	    (app.relay && gw_metrics_add(app.metrics, gw_relay_metrics, app.relay)) ||
	    (app.admin && gw_metrics_add(app.metrics, gw_admin_metrics, app.admin))) {
		gw_err("out of memory at startup");
		goto out;
	}
	net_set_drain(app.net, bus_drain, bus_pending, app.bus);
	if (gw_bus_start(app.bus, err, sizeof err)) {
		gw_err("%s", err);
		goto out;
	}
	stop_target = app.net;
	pthread_sigmask(SIG_UNBLOCK, &stopsigs, NULL);
	const char *h = cfg.listen_host;
	bool loopback = !strcmp(h, "127.0.0.1") || !strcmp(h, "::1") || !strcmp(h, "localhost");
	if (cfg.http_api.enabled && !cfg.http_api.token[0] && !loopback)
		gw_warn("http_api is enabled without a token on %s: anyone who reaches port %d can "
			"publish to and subscribe from the bus; set http_api.token (SIO_API_TOKEN)",
			h, cfg.listen_port);
	gw_info("sio-gateway %s node %s listening on %s:%d, engine at %s%s%s", SIOGW_VERSION,
		cfg.node_id, cfg.listen_host, cfg.listen_port, cfg.engine.path,
		app.echo ? ", echo at " : "", app.echo ? cfg.engine.echo_path : "");
	drain dr = {.app = &app};
	gw_api_on_drain(app.api, drain_start, &dr);
	for (;;) {
		net_run(app.net);
		/* SIGTERM starts the drain (or lets it go on); anything else stops now */
		if (dr.done || last_signal != SIGTERM || cfg.shutdown.drain_ms == 0)
			break;
		last_signal = 0;
		drain_start(&dr);
		net_resume(app.net);
	}
	if (dr.on && !dr.done)
		gw_timer_stop(net_timers(app.net), &dr.timer);
	gw_info("shutting down");
	rc = 0;
out:
	/* sessions first (their disconnects still reach the bus), then their last words
	 * (close packets, close frames, answers to held polls) go out, then the bus stops
	 * (no more deliveries, no more wakes), then the rest; the loop (with the timers the
	 * others stop) last */
	stop_target = NULL;
	gw_admin_stop(app.admin);
	if (app.echo)
		eio_server_destroy(app.echo);
	if (app.eio)
		eio_server_destroy(app.eio);
	if (app.relay) { /* after the sessions: their last words to other nodes' clients went out */
		gw_bus_set_relay(app.bus, NULL, NULL);
		gw_relay_destroy(app.relay);
	}
	if (app.net)
		net_drain_output(app.net, 1000);
	gw_api_destroy(app.api);
	gw_bus_stop(app.bus);
	sio_server_destroy(app.sio);
	gw_admin_destroy(app.admin);
	gw_bus_destroy(app.bus);
	net_destroy(app.net);
	gw_metrics_destroy(app.metrics);
	gw_client_destroy(app.client);
	gw_config_free(&cfg);
	return rc;
}
