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
#include "util/query.h"
#include "util/sid.h"
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

/*
 * The running gateway: every module instance, owned here and nowhere else. One
 * gw_loop per service loop (engine.workers): its thread, its connections and the layers
 * on them; the first loop's bus holds the plugin, which every loop's bus shares.
 */
typedef struct gw_app gw_app;

/*
 * Graceful drain (shutdown.drain_ms), on SIGTERM or POST /api/drain: /healthz says
 * "draining" and new sessions get 503 at once, so the load balancer and the clients go
 * elsewhere; the open sessions are closed a few every DRAIN_TICK_MS, evenly over
 * drain_ms (a close packet, a close frame, held polls answered), so their
 * reconnects do not all land in the same instant; then the shutdown goes on as a fast
 * stop does. SIGINT and SIGHUP stop at once, during a drain too. Each loop drains its
 * own sessions; a loop done first keeps answering (503) until the last is done.
 */
#define DRAIN_TICK_MS 50
#define FENCE_MS 1000

typedef struct gw_loop gw_loop;

typedef struct drain {
	gw_loop *w;
	gw_timer timer;
	uint64_t start_ms, end_ms;
	size_t n0;             /* sessions when it began (no new ones come) */
	bool on, done;
	bool fencing;          /* closed: waiting for the bus (gw_bus_fence) */
} drain;

struct gw_loop {
	gw_app *app;
	gw_config cfg;     /* this loop's (gw_config_loop): its own node tag and topic */
	net_loop *net;
	eio_server *eio;   /* the Socket.IO engine at engine.path */
	eio_server *echo;  /* raw Engine.IO echo at engine.echo_path, or NULL */
	sio_server *sio;
	gw_admin *admin;   /* admin_ui, or NULL */
	gw_bus *bus;       /* the first loop's holds the plugin */
	gw_relay *relay;   /* sessions of other nodes and loops (no sticky sessions), or NULL */
	gw_api *api;
	gw_metrics *metrics; /* this loop's counters */
	gw_metrics *page;    /* /metrics: this loop's and the others' (engine.workers) */
	drain dr;
	atomic_bool drain_asked; /* POST /api/drain on some loop */
	pthread_t thread;
	bool threaded;
};

struct gw_app {
	gw_config *cfg;
	gw_client *client; /* engine.serve_client's bundle, or NULL */
	gw_loop loops[GW_MAX_WORKERS];
	net_loop *nets[GW_MAX_WORKERS];
	size_t n;
	atomic_size_t draining; /* loops whose drain is not done */
};

/* What the signal handler stops; set before the signals are unblocked. */
static gw_app *volatile stop_target;
static volatile sig_atomic_t last_signal;

static void on_signal(int sig)
{
	last_signal = sig;
	gw_app *app = stop_target;
	for (size_t i = 0; app && i < app->n; i++)
		net_stop_signal(app->nets[i]);
}

static void drain_stop(drain *d)
{
	d->done = true;
	gw_app *app = d->w->app;
	if (atomic_fetch_sub(&app->draining, 1) == 1) /* the last loop: every loop stops */
		for (size_t i = 0; i < app->n; i++)
			net_stop_signal(app->nets[i]);
}

static void drain_fenced(void *ctx)
{
	drain *d = ctx;
	if (!d->fencing)
		return;
	d->fencing = false;
	gw_timer_stop(net_timers(d->w->net), &d->timer);
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
	gw_loop *w = d->w;
	uint64_t now = gw_now_ms();
	size_t left = eio_server_sessions(w->eio);
	if (left && now < d->end_ms) {
		/* by now n0 · elapsed / drain_ms should be gone (those that left by themselves
		 * count): an even spread whatever n0 is */
		uint64_t span = d->end_ms - d->start_ms, due = (d->n0 * (now - d->start_ms) + span - 1) / span;
		size_t gone = d->n0 > left ? d->n0 - left : 0;
		if (due > gone)
			left = eio_server_close_some(w->eio, (size_t)(due - gone), GW_CLOSE_SHUTDOWN);
	}
	if (!left || now >= d->end_ms) {
		gw_info("drained%s%s", w->app->n > 1 ? " a loop" : "", left ? " (time is up: the rest close now)" : "");
		/* what the closes published (disconnects, ack_done) reaches this node's own
		 * subscribers (the HTTP API's SSE) before it stops: the bus's fence, at most
		 * FENCE_MS */
		d->fencing = gw_bus_fence(w->bus, drain_fenced, d) == 0;
		if (!d->fencing) {
			drain_stop(d);
			return;
		}
		gw_timer_start(net_timers(w->net), &d->timer, FENCE_MS, drain_fence_timeout);
		return;
	}
	gw_timer_start(net_timers(w->net), &d->timer, DRAIN_TICK_MS, drain_tick);
}

static size_t all_sessions(void *ctx);

/* On the loop's own thread. */
static void drain_start(drain *d)
{
	gw_loop *w = d->w;
	const gw_config *cfg = &w->cfg;
	if (d->on)
		return;
	d->on = true;
	if (cfg->shutdown.drain_ms == 0) /* a fast stop */
		return;
	eio_server_drain(w->eio);
	if (w == &w->app->loops[0]) /* (every loop's sessions: each closes its own) */
		gw_info("draining: %zu sessions closed over %d ms, new sessions refused",
			w->app->n > 1 ? all_sessions(w) : eio_server_sessions(w->eio), cfg->shutdown.drain_ms);
	d->n0 = eio_server_sessions(w->eio);
	d->start_ms = gw_now_ms();
	d->end_ms = d->start_ms + (uint64_t)cfg->shutdown.drain_ms;
	d->timer.ctx = d;
	gw_timer_start(net_timers(w->net), &d->timer, 0, drain_tick);
}

/* POST /api/drain (on any loop): every loop drains. */
static void drain_all(void *ctx)
{
	gw_app *app = ctx;
	for (size_t i = 0; i < app->n; i++) {
		if (app->cfg->shutdown.drain_ms) /* at once: /healthz and new sessions on every loop */
			eio_server_drain(app->loops[i].eio);
		atomic_store(&app->loops[i].drain_asked, true);
		net_stop_signal(app->nets[i]); /* its net_run returns: it starts its drain */
	}
}

/* A loop's thread (the main thread runs the first): until its stop. */
static void *run_loop(void *arg)
{
	gw_loop *w = arg;
	bool fast = w->cfg.shutdown.drain_ms == 0;
	net_hold(w->net);
	for (;;) {
		net_run(w->net);
		/* SIGTERM or /api/drain starts the drain (or lets it go on); anything else
		 * stops now */
		bool asked = atomic_exchange(&w->drain_asked, false);
		int sig = last_signal;
		if (fast || w->dr.done || !(asked || sig == SIGTERM) || (sig && sig != SIGTERM))
			break;
		drain_start(&w->dr);
		net_resume(w->net);
	}
	if (w->dr.on && !w->dr.done)
		gw_timer_stop(net_timers(w->net), &w->dr.timer);
	net_unhold(w->net);
	return NULL;
}

/* ---- engine.workers: what one loop reads of the others ---- */

typedef struct visit_metrics {
	gw_loop *w;
	gw_metric_sink *sink;
} visit_metrics;

static void visit_metrics_one(void *ctx, size_t i)
{
	visit_metrics *v = ctx;
	gw_loop *o = &v->w->app->loops[i];
	if (o != v->w)
		gw_metrics_collect(o->metrics, v->sink);
}

/* The other loops' samples, summed with this loop's by the metrics page. */
static void other_loops_metrics(void *ctx, gw_metric_sink *sink)
{
	gw_loop *w = ctx;
	visit_metrics v = {.w = w, .sink = sink};
	net_visit(w->net, w->app->nets, w->app->n, visit_metrics_one, &v);
}

typedef struct visit_count {
	gw_app *app;
	size_t n;
} visit_count;

static void visit_sessions_one(void *ctx, size_t i)
{
	visit_count *v = ctx;
	v->n += eio_server_sessions(v->app->loops[i].eio);
}

static size_t all_sessions(void *ctx)
{
	gw_loop *w = ctx;
	visit_count v = {.app = w->app};
	net_visit(w->net, w->app->nets, w->app->n, visit_sessions_one, &v);
	return v.n;
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

/* net_set_steer: a request naming a session (?sid=) of one of our loops goes to that
 * loop (the loops' tags are fixed before they run). */
static net_loop *steer_to_session(void *ctx, const char *target, size_t len)
{
	const gw_app *app = ctx;
	const char *q = memchr(target, '?', len);
	char sid[64], tag[GW_TAG_LEN + 1];
	if (!q || gw_query_arg(q + 1, len - (size_t)(q + 1 - target), "sid", sid, sizeof sid) != 1 ||
	    !gw_sid_tag(sid, strlen(sid), tag))
		return NULL;
	for (size_t i = 0; i < app->n; i++)
		if (!strcmp(app->loops[i].cfg.node_tag, tag))
			return app->nets[i];
	return NULL;
}

static void bus_drain(void *bus) { gw_bus_drain(bus); }
static bool bus_pending(void *bus) { return gw_bus_pending(bus); }

/*
 * Loop i and the layers on it: its own configuration (node tag and topic), the loop
 * (it listens; nothing is served before net_run), then the layers from the bottom up;
 * the bus before socket.io, whose handler it is. Logs why not.
 */
static int loop_create(gw_app *app, size_t i)
{
	gw_loop *w = &app->loops[i];
	const gw_config *base = app->cfg;
	char taken[GW_MAX_WORKERS][GW_TAG_LEN + 1];
	for (size_t k = 0; k < i; k++)
		memcpy(taken[k], app->loops[k].cfg.node_tag, sizeof taken[k]);
	w->app = app;
	w->dr.w = w;
	if (gw_config_loop(base, (int)i, (const char(*)[GW_TAG_LEN + 1])taken, &w->cfg))
		goto oom;
	const gw_config *cfg = &w->cfg;
	if (!(w->net = app->nets[i] = net_create(cfg)))
		return -1;
	char err[1024];
	w->bus = i == 0 ? gw_bus_create(cfg, w->net, err, sizeof err) : gw_bus_add_loop(app->loops[0].bus, cfg, w->net);
	if (!w->bus) {
		gw_err("%s", i == 0 ? err : "out of memory at startup");
		return -1;
	}
	/* the admin UI, when on, stands in front of the bus: it serves its namespace and
	 * watches the others' sockets on their way to the bus (every loop's: gw_admin_link) */
	sio_handler sh = gw_bus_sio_handler(w->bus);
	if (cfg->admin_ui.enabled) {
		if (!(w->admin = gw_admin_create(cfg, w->net, &sh)))
			goto oom;
		sh = gw_admin_sio_handler(w->admin);
	}
	w->sio = sio_server_create(cfg, net_timers(w->net), &sh);
	if (w->sio)
		gw_bus_set_sio(w->bus, w->sio);
	eio_handler eh = w->sio ? sio_server_eio_handler(w->sio) : (eio_handler){0};
	w->eio = w->sio ? eio_server_create(w->net, cfg, cfg->engine.path, &eh) : NULL;
	w->metrics = gw_metrics_create();
	w->page = gw_metrics_create();
	w->api = w->eio && w->page ? gw_api_create(cfg, w->net, w->bus, w->eio, w->page) : NULL;
	if (!w->sio || !w->eio || !w->api || !w->metrics || (w->admin && gw_admin_start(w->admin, w->sio, w->eio)))
		goto oom;
	/* requests for sessions of other nodes go there over the bus, and for those of
	 * other loops to their queues: no sticky sessions (the memory bus has no other
	 * node, but may have other loops) */
	if (cfg->topics.node[0] && (strcmp(gw_bus_plugin_name(w->bus), "memory") != 0 || app->n > 1)) {
		if (!(w->relay = gw_relay_create(w->bus, w->net, cfg)))
			goto oom;
		eio_server_set_relay(w->eio, gw_relay_request, w->relay);
		gw_bus_set_relay(w->bus, gw_relay_deliver, w->relay);
	}
	if (cfg->engine.echo_path && cfg->engine.echo_path[0]) {
		eio_handler echo = eio_echo_handler();
		if (!(w->echo = eio_server_create(w->net, cfg, cfg->engine.echo_path, &echo)))
			goto oom;
		if (w->relay) /* (its sessions are named as the engine's) */
			eio_server_set_relay(w->echo, gw_relay_request, w->relay);
	}
	/* routes: the echo endpoint and the engine by prefix, the API for the rest; each
	 * turn: the bus's deliveries, then the engine's and the SSE streams' writes.
	 * /metrics: each layer's counters (the echo server's sum with the engine's), and
	 * with several loops every loop's */
	gw_metrics *m = w->metrics;
	if ((w->echo && eio_server_listen(w->echo)) || gw_client_listen(app->client, w->net) ||
	    eio_server_listen(w->eio) || gw_api_listen(w->api) || gw_metrics_add(m, net_metrics, w->net) ||
	    gw_metrics_add(m, eio_metrics, w->eio) || (w->echo && gw_metrics_add(m, eio_metrics, w->echo)) ||
	    gw_metrics_add(m, sio_metrics, w->sio) || gw_metrics_add(m, gw_bus_metrics, w->bus) ||
	    gw_metrics_add(m, gw_api_metrics, w->api) || (w->relay && gw_metrics_add(m, gw_relay_metrics, w->relay)) ||
	    (w->admin && gw_metrics_add(m, gw_admin_metrics, w->admin)) || gw_metrics_add(w->page, gw_metrics_collect, m) ||
	    (app->n > 1 && gw_metrics_add(w->page, other_loops_metrics, w)))
		goto oom;
	net_set_drain(w->net, bus_drain, bus_pending, w->bus);
	gw_api_on_drain(w->api, drain_all, app);
	if (app->n > 1)
		gw_api_on_sessions(w->api, all_sessions, w);
	return 0;
oom:
	gw_err("out of memory at startup");
	return -1;
}

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

	/* (large: a loop's state for GW_MAX_WORKERS loops) */
	gw_app *app = calloc(1, sizeof *app);
	if (!app) {
		gw_config_free(&cfg);
		return 1;
	}
	app->cfg = &cfg;
	app->n = (size_t)cfg.engine.workers;
	atomic_init(&app->draining, app->n);
	int rc = 1;
	size_t made = 0;
	/* the client bundle first (read before anything listens), then each loop, then
	 * the bus starts */
	if (load_client(&cfg, &app->client))
		goto out;
	for (; made < app->n; made++)
		if (loop_create(app, made)) {
			made++; /* what it made is torn down below */
			goto out;
		}
	if (cfg.admin_ui.enabled && app->n > 1) { /* the UI sees every loop */
		gw_admin *all[GW_MAX_WORKERS];
		for (size_t i = 0; i < app->n; i++)
			all[i] = app->loops[i].admin;
		if (gw_admin_link(all, app->nets, app->n)) {
			gw_err("out of memory at startup");
			goto out;
		}
	}
	net_link(app->nets, app->n);
	sio_server *sios[GW_MAX_WORKERS];
	for (size_t i = 0; i < app->n; i++)
		sios[i] = app->loops[i].sio;
	if (sio_link(sios, app->n)) {
		gw_err("out of memory at startup");
		goto out;
	}
	for (size_t i = 0; app->n > 1 && i < app->n; i++)
		net_set_steer(app->nets[i], steer_to_session, app);
	char err[1024];
	if (gw_bus_start(app->loops[0].bus, err, sizeof err)) {
		gw_err("%s", err);
		goto out;
	}
	stop_target = app;
	/* the other loops' threads keep the signals blocked: they reach this one */
	for (size_t i = 1; i < app->n; i++) {
		if (pthread_create(&app->loops[i].thread, NULL, run_loop, &app->loops[i])) {
			gw_err("cannot start service loop %zu", i);
			for (size_t k = 0; k < app->n; k++)
				net_stop(app->nets[k]);
			break;
		}
		app->loops[i].threaded = true;
	}
	pthread_sigmask(SIG_UNBLOCK, &stopsigs, NULL);
	const char *h = cfg.listen_host;
	bool loopback = !strcmp(h, "127.0.0.1") || !strcmp(h, "::1") || !strcmp(h, "localhost");
	if (cfg.http_api.enabled && !cfg.http_api.token[0] && !loopback)
		gw_warn("http_api is enabled without a token on %s: anyone who reaches port %d can "
			"publish to and subscribe from the bus; set http_api.token (SIO_API_TOKEN)",
			h, cfg.listen_port);
	gw_info("sio-gateway %s node %s listening on %s:%d, engine at %s%s%s", SIOGW_VERSION, cfg.node_id,
		cfg.listen_host, cfg.listen_port, cfg.engine.path, app->loops[0].echo ? ", echo at " : "",
		app->loops[0].echo ? cfg.engine.echo_path : "");
	if (app->n > 1)
		gw_info("%zu service loops (engine.workers), one thread each", app->n);
	run_loop(&app->loops[0]);
	for (size_t i = 1; i < app->n; i++)
		if (app->loops[i].threaded)
			pthread_join(app->loops[i].thread, NULL);
	gw_info("shutting down");
	rc = 0;
out:
	/* sessions first (their disconnects still reach the bus), then their last words
	 * (close packets, close frames, answers to held polls) go out, then the bus stops
	 * (no more deliveries, no more wakes), then the rest; the loops (with the timers
	 * the others stop) last. Every loop's thread has ended: this one tears down all. */
	stop_target = NULL;
	for (size_t i = 0; i < made; i++) {
		gw_loop *w = &app->loops[i];
		gw_admin_stop(w->admin);
		if (w->echo)
			eio_server_destroy(w->echo);
		if (w->eio)
			eio_server_destroy(w->eio);
		w->echo = w->eio = NULL;
	}
	for (size_t i = 0; i < made; i++) {
		gw_loop *w = &app->loops[i];
		if (w->relay) { /* after the sessions: their last words to other nodes' clients went out */
			gw_bus_set_relay(w->bus, NULL, NULL);
			gw_relay_destroy(w->relay);
		}
	}
	for (size_t i = 0; i < made; i++)
		if (app->loops[i].net)
			net_drain_output(app->loops[i].net, 1000);
	for (size_t i = 0; i < made; i++)
		gw_api_destroy(app->loops[i].api);
	if (made)
		gw_bus_stop(app->loops[0].bus);
	for (size_t i = made; i-- > 0;) { /* the first loop's bus (the plugin's) last */
		gw_loop *w = &app->loops[i];
		sio_server_destroy(w->sio);
		gw_admin_destroy(w->admin);
		gw_bus_destroy(w->bus);
	}
	for (size_t i = 0; i < made; i++) {
		gw_loop *w = &app->loops[i];
		net_destroy(w->net);
		gw_metrics_destroy(w->page);
		gw_metrics_destroy(w->metrics);
		gw_config_loop_free(&cfg, &w->cfg);
	}
	gw_client_destroy(app->client);
	free(app);
	gw_config_free(&cfg);
	return rc;
}
