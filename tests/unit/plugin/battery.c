/* battery.c — the shared bus-plugin battery and its fake host. Contract in battery.h.
 *
 * Built twice: linked into test_memory (and later the nng/kafka tests), and with
 * -DBATTERY_MAIN as the stand-alone runner `siogw-plugin-battery <plugin.so> [key=value…]`
 * (installed with the plugin SDK). */
#include "battery.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "../test.h"
#include "bus/loader.h"
#include "siogw/plugin_util.h"

/* ---- small helpers ------------------------------------------------------------ */

int64_t bt_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "battery: out of memory\n");
		abort();
	}
	return p;
}

static void *xmemdup(const void *src, size_t n)
{
	void *p = xmalloc(n);
	if (n)
		memcpy(p, src, n);
	return p;
}

/* ---- fake host ---------------------------------------------------------------- */

typedef struct fh_subcount {
	uint64_t sub_id;
	size_t count, probes;
} fh_subcount;

struct fake_host {
	siogw_host host;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* broadcast on every event and on fh_hold(false) */
	fh_rec **recs;       /* pointers stay valid while the array grows */
	size_t n_recs, cap_recs;
	fh_subcount *subs;   /* per-sub counters (few subs: linear) */
	size_t n_subs, cap_subs;
	size_t count, probes, refused, total, dr_total;
	uint64_t events;
	size_t eagain;
	bool hold;
	size_t held;
	fh_hook_fn hook;
	void *hook_arg;
	char last_log[512];
};

static fh_subcount *fh_sub(fake_host *h, uint64_t sub_id)
{
	for (size_t i = 0; i < h->n_subs; i++)
		if (h->subs[i].sub_id == sub_id)
			return &h->subs[i];
	if (h->n_subs == h->cap_subs) {
		size_t cap = h->cap_subs ? h->cap_subs * 2 : 16;
		fh_subcount *ns = realloc(h->subs, cap * sizeof *ns);
		if (!ns)
			abort();
		h->subs = ns;
		h->cap_subs = cap;
	}
	h->subs[h->n_subs] = (fh_subcount){.sub_id = sub_id};
	return &h->subs[h->n_subs++];
}

static void fh_log(void *ctx, int level, const char *plugin, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void fh_log(void *ctx, int level, const char *plugin, const char *fmt, ...)
{
	fake_host *h = ctx;
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&h->lock);
	snprintf(h->last_log, sizeof h->last_log, "%s", line);
	pthread_mutex_unlock(&h->lock);
	if (getenv("BATTERY_VERBOSE"))
		fprintf(stderr, "  [%s] %d %s\n", plugin, level, line);
}

static int fh_deliver(void *ctx, uint64_t sub_id, const char *topic, const void *key, size_t key_len,
		      const void *data, size_t len)
{
	fake_host *h = ctx;
	bool probe = len >= FH_PROBE_LEN && memcmp(data, FH_PROBE, FH_PROBE_LEN) == 0;

	pthread_mutex_lock(&h->lock);
	fh_hook_fn hook = h->hook;
	void *hook_arg = h->hook_arg;
	h->held++;
	pthread_cond_broadcast(&h->cond);
	while (h->hold)
		pthread_cond_wait(&h->cond, &h->lock);
	h->held--;
	h->total++;
	if (!probe && h->eagain > 0) {
		h->eagain--;
		h->refused++;
		h->events++;
		pthread_cond_broadcast(&h->cond);
		pthread_mutex_unlock(&h->lock);
		return -SIOGW_EAGAIN;
	}
	pthread_mutex_unlock(&h->lock);

	/* The host copies before returning (ABI): copy outside the lock. */
	fh_rec *r = NULL;
	if (!probe) {
		r = xmalloc(sizeof *r);
		r->sub_id = sub_id;
		r->topic = xmemdup(topic, strlen(topic) + 1);
		r->key = key ? xmemdup(key, key_len) : NULL;
		r->key_len = key_len;
		r->data = xmemdup(data, len);
		r->len = len;
	}
	if (hook)
		hook(hook_arg, sub_id);

	pthread_mutex_lock(&h->lock);
	fh_subcount *sc = fh_sub(h, sub_id);
	if (probe) {
		sc->probes++;
		h->probes++;
	} else {
		if (h->n_recs == h->cap_recs) {
			size_t cap = h->cap_recs ? h->cap_recs * 2 : 256;
			fh_rec **nr = realloc(h->recs, cap * sizeof *nr);
			if (!nr)
				abort();
			h->recs = nr;
			h->cap_recs = cap;
		}
		h->recs[h->n_recs++] = r;
		sc->count++;
		h->count++;
	}
	h->events++;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	return 0;
}

fake_host *fh_new(void)
{
	fake_host *h = calloc(1, sizeof *h);
	if (!h)
		abort();
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_mutex_init(&h->lock, NULL) != 0 || pthread_cond_init(&h->cond, &ca) != 0)
		abort();
	pthread_condattr_destroy(&ca);
	h->host.size = sizeof h->host;
	h->host.abi_minor = SIOGW_ABI_MINOR;
	h->host.ctx = h;
	h->host.log = fh_log;
	h->host.deliver = fh_deliver;
	return h;
}

void fh_clear(fake_host *h)
{
	pthread_mutex_lock(&h->lock);
	for (size_t i = 0; i < h->n_recs; i++) {
		free(h->recs[i]->topic);
		free(h->recs[i]->key);
		free(h->recs[i]->data);
		free(h->recs[i]);
	}
	h->n_recs = 0;
	h->n_subs = 0;
	h->count = h->probes = h->refused = h->total = h->dr_total = 0;
	pthread_mutex_unlock(&h->lock);
}

void fh_free(fake_host *h)
{
	if (!h)
		return;
	fh_clear(h);
	free(h->recs);
	free(h->subs);
	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

const siogw_host *fh_host(fake_host *h)
{
	return &h->host;
}

size_t fh_count(fake_host *h, uint64_t sub_id)
{
	pthread_mutex_lock(&h->lock);
	size_t n = sub_id == FH_ANY ? h->count : fh_sub(h, sub_id)->count;
	pthread_mutex_unlock(&h->lock);
	return n;
}

size_t fh_probes(fake_host *h, uint64_t sub_id)
{
	pthread_mutex_lock(&h->lock);
	size_t n = sub_id == FH_ANY ? h->probes : fh_sub(h, sub_id)->probes;
	pthread_mutex_unlock(&h->lock);
	return n;
}

#define FH_GETTER(name, field)                     \
	size_t name(fake_host *h)                  \
	{                                          \
		pthread_mutex_lock(&h->lock);      \
		size_t n = h->field;               \
		pthread_mutex_unlock(&h->lock);    \
		return n;                          \
	}
FH_GETTER(fh_refused, refused)
FH_GETTER(fh_total, total)
FH_GETTER(fh_dr_total, dr_total)

uint64_t fh_events(fake_host *h)
{
	pthread_mutex_lock(&h->lock);
	uint64_t n = h->events;
	pthread_mutex_unlock(&h->lock);
	return n;
}

size_t fh_collect(fake_host *h, uint64_t sub_id, const fh_rec **out, size_t max)
{
	size_t n = 0;
	pthread_mutex_lock(&h->lock);
	for (size_t i = 0; i < h->n_recs && n < max; i++)
		if (sub_id == FH_ANY || h->recs[i]->sub_id == sub_id)
			out[n++] = h->recs[i];
	pthread_mutex_unlock(&h->lock);
	return n;
}

/* Wait under h->lock until pred() holds or ms pass. */
typedef bool (*fh_pred)(fake_host *h, uint64_t a, size_t b);

static bool fh_wait(fake_host *h, fh_pred pred, uint64_t a, size_t b, int ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&h->lock);
	bool ok;
	while (!(ok = pred(h, a, b)))
		if (pthread_cond_timedwait(&h->cond, &h->lock, &ts) == ETIMEDOUT) {
			ok = pred(h, a, b);
			break;
		}
	pthread_mutex_unlock(&h->lock);
	return ok;
}

static bool p_count(fake_host *h, uint64_t sub, size_t n)
{
	return (sub == FH_ANY ? h->count : fh_sub(h, sub)->count) >= n;
}
static bool p_probes(fake_host *h, uint64_t sub, size_t n)
{
	return (sub == FH_ANY ? h->probes : fh_sub(h, sub)->probes) >= n;
}
static bool p_dr(fake_host *h, uint64_t unused, size_t n)
{
	return h->dr_total >= n;
}
static bool p_held(fake_host *h, uint64_t unused, size_t n)
{
	return h->held >= n;
}
static bool p_events(fake_host *h, uint64_t since, size_t unused)
{
	return h->events != since;
}

bool fh_wait_count(fake_host *h, uint64_t sub_id, size_t n, int ms)
{
	return fh_wait(h, p_count, sub_id, n, ms);
}
bool fh_wait_probes(fake_host *h, uint64_t sub_id, size_t n, int ms)
{
	return fh_wait(h, p_probes, sub_id, n, ms);
}
bool fh_wait_dr(fake_host *h, size_t n, int ms)
{
	return fh_wait(h, p_dr, 0, n, ms);
}
bool fh_wait_held(fake_host *h, size_t n, int ms)
{
	return fh_wait(h, p_held, 0, n, ms);
}
bool fh_wait_events(fake_host *h, uint64_t since, int ms)
{
	return fh_wait(h, p_events, since, 0, ms);
}

void fh_eagain(fake_host *h, size_t n)
{
	pthread_mutex_lock(&h->lock);
	h->eagain = n;
	pthread_mutex_unlock(&h->lock);
}

void fh_hold(fake_host *h, bool on)
{
	pthread_mutex_lock(&h->lock);
	h->hold = on;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
}

void fh_set_hook(fake_host *h, fh_hook_fn fn, void *arg)
{
	pthread_mutex_lock(&h->lock);
	h->hook = fn;
	h->hook_arg = arg;
	pthread_mutex_unlock(&h->lock);
}

void fh_dr(void *arg, int status)
{
	fh_slot *s = arg;
	fake_host *h = s->h;
	pthread_mutex_lock(&h->lock);
	s->count++;
	s->status = status;
	h->dr_total++;
	h->events++;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
}

void fh_last_log(fake_host *h, char *buf, size_t len)
{
	pthread_mutex_lock(&h->lock);
	snprintf(buf, len, "%s", h->last_log);
	pthread_mutex_unlock(&h->lock);
}

/* ---- option resolution (what the gateway's config layer does) ----------------- */

static int parse_num(const siogw_option *o, const char *s, int64_t *out)
{
	if (o->type == SIOGW_OPT_BOOL) {
		if (strcmp(s, "true") == 0)
			return *out = 1, 0;
		if (strcmp(s, "false") == 0)
			return *out = 0, 0;
		return -1;
	}
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || v < 0)
		return -1;
	int64_t mul = 1;
	if (o->type == SIOGW_OPT_SIZE) {
		if (*end == 'k' || *end == 'K')
			mul = 1024, end++;
		else if (*end == 'm' || *end == 'M')
			mul = 1024 * 1024, end++;
		else if (*end == 'g' || *end == 'G')
			mul = 1024 * 1024 * 1024, end++;
	} else if (o->type == SIOGW_OPT_DURATION) {
		if (strcmp(end, "ms") == 0)
			end += 2;
		else if (*end == 's')
			mul = 1000, end++;
		else if (*end == 'm')
			mul = 60000, end++;
		else if (*end == 'h')
			mul = 3600000, end++;
	}
	if (*end || v > INT64_MAX / mul)
		return -1;
	v *= mul;
	if (o->min <= o->max && (v < o->min || v > o->max))
		return -1;
	*out = v;
	return 0;
}

static bool is_numeric(siogw_opt_type t)
{
	return t == SIOGW_OPT_INT || t == SIOGW_OPT_SIZE || t == SIOGW_OPT_DURATION || t == SIOGW_OPT_BOOL;
}

static int add_opt(siogw_optval *v, size_t *n, const siogw_option *o, const char *key, const char *val,
		   char *err, size_t err_len)
{
	int64_t num = 0;
	char norm[32];
	const char *str = val;
	if (o->type == SIOGW_OPT_ENUM) { /* ABI 1.1: num is the choice's index, as the host sets it */
		num = spu_choice_index(o->choices, val);
		if (num < 0) {
			snprintf(err, err_len, "option %s: '%s' is not one of %s", key, val, o->choices);
			return -1;
		}
	} else if (is_numeric(o->type)) {
		if (parse_num(o, val, &num) < 0) {
			snprintf(err, err_len, "option %s: bad value '%s'", key, val);
			return -1;
		}
		if (o->type == SIOGW_OPT_BOOL)
			str = num ? "true" : "false";
		else
			snprintf(norm, sizeof norm, "%" PRId64, num), str = norm;
	}
	v[*n].name = xmemdup(key, strlen(key) + 1);
	v[*n].str = xmemdup(str, strlen(str) + 1);
	v[*n].num = num;
	(*n)++;
	return 0;
}

int battery_resolve_options(const siogw_plugin *d, const char *const *kv, size_t n, siogw_optval **out,
			    size_t *n_out, char *err, size_t err_len)
{
	siogw_optval *v = xmalloc((d->n_options + n) * sizeof *v);
	size_t nv = 0;
	bool *used = calloc(n ? n : 1, sizeof *used);
	if (!used)
		abort();
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(kv[i], '=');
		if (!eq) {
			snprintf(err, err_len, "option '%s': expected key=value", kv[i]);
			goto fail;
		}
	}
	for (size_t j = 0; j < d->n_options; j++) {
		const siogw_option *o = &d->options[j];
		const char *given = NULL;
		for (size_t i = 0; i < n; i++) {
			const char *eq = strchr(kv[i], '=');
			size_t kl = (size_t)(eq - kv[i]);
			char key[256];
			snprintf(key, sizeof key, "%.*s", (int)kl, kv[i]);
			if (o->type == SIOGW_OPT_PREFIX) {
				if (strncmp(key, o->name, strlen(o->name)) == 0) {
					used[i] = true;
					if (add_opt(v, &nv, o, key, eq + 1, err, err_len) < 0)
						goto fail;
				}
			} else if (strcmp(key, o->name) == 0) {
				used[i] = true;
				given = eq + 1;
			}
		}
		if (o->type != SIOGW_OPT_PREFIX && (given || o->def))
			if (add_opt(v, &nv, o, o->name, given ? given : o->def, err, err_len) < 0)
				goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		if (!used[i]) {
			snprintf(err, err_len, "unknown option '%s'", kv[i]);
			goto fail;
		}
	}
	free(used);
	*out = v;
	*n_out = nv;
	return 0;
fail:
	free(used);
	battery_free_options(v, nv);
	return -1;
}

void battery_free_options(siogw_optval *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free((char *)v[i].name);
		free((char *)v[i].str);
	}
	free(v);
}

/* ---- the battery ---------------------------------------------------------------- */

static struct {
	const siogw_plugin *d;
	siogw_optval *opts;
	size_t n_opts;
	siogw_optval *peer_opts; /* pair mode */
	size_t n_peer_opts;
	battery_params p;
	char prefix[64];
} B;

typedef struct inst {
	fake_host *h;
	void *self;
	bool stopped;
	fake_host *peer_h; /* pair mode: the instance that publishes what self must receive */
	void *peer;
} inst;

/* create + start one instance on a new fake host. */
static bool one_up(const siogw_optval *opts, size_t n_opts, fake_host **h, void **self, const char *what)
{
	char err[256] = "";
	*h = fh_new();
	*self = NULL;
	int rc = B.d->create(fh_host(*h), opts, n_opts, self, err, sizeof err);
	if (rc != 0) {
		fprintf(stderr, "  %screate: %d %s\n", what, rc, err);
		CHECK_EQ_INT(rc, 0);
		fh_free(*h);
		return false;
	}
	rc = B.d->start(*self, err, sizeof err);
	if (rc != 0) {
		fprintf(stderr, "  %sstart: %d %s\n", what, rc, err);
		CHECK_EQ_INT(rc, 0);
		B.d->stop(*self);
		B.d->destroy(*self);
		fh_free(*h);
		return false;
	}
	return true;
}

static void inst_down(inst *in);

static bool inst_up(inst *in)
{
	*in = (inst){0};
	if (!one_up(B.opts, B.n_opts, &in->h, &in->self, ""))
		return false;
	if (B.p.pair && !one_up(B.peer_opts, B.n_peer_opts, &in->peer_h, &in->peer, "peer ")) {
		inst_down(in);
		return false;
	}
	return true;
}

static void inst_down(inst *in)
{
	if (!in->stopped)
		B.d->stop(in->self);
	B.d->destroy(in->self);
	fh_free(in->h);
	if (in->peer) {
		B.d->stop(in->peer);
		B.d->destroy(in->peer);
		fh_free(in->peer_h);
	}
}

/* Where a message that `in` must receive is published: itself, or its peer. */
static void *pub_self(const inst *in) { return in->peer ? in->peer : in->self; }

static const char *topic(char *buf, size_t n, const char *suffix)
{
	snprintf(buf, n, "%s%s", B.prefix, suffix);
	return buf;
}

/* publish, retrying on -SIOGW_EAGAIN until the deadline (waiting for progress). */
static int pub(inst *in, const char *t, const char *key, const void *data, size_t len, siogw_dr_cb dr,
	       void *arg)
{
	int64_t end = bt_now_ms() + B.p.deadline_ms;
	for (;;) {
		uint64_t ev = fh_events(in->h);
		int rc = B.d->publish(pub_self(in), t, key, key ? strlen(key) : 0, data, len, dr, arg);
		if (rc != -SIOGW_EAGAIN || bt_now_ms() >= end)
			return rc;
		fh_wait_events(in->h, ev, 10);
	}
}

static int pub_str(inst *in, const char *t, const char *key, const char *s)
{
	return pub(in, t, key, s, strlen(s), NULL, NULL);
}

/* Subscribe and wait until the subscription provably receives (probe messages). */
static bool sub_live(inst *in, uint64_t id, const char *pattern, int kind, const char *probe_topic)
{
	int rc = B.d->subscribe(in->self, id, pattern, kind);
	CHECK_EQ_INT(rc, 0);
	if (rc != 0)
		return false;
	size_t before = fh_probes(in->h, id);
	int64_t end = bt_now_ms() + B.p.deadline_ms;
	while (bt_now_ms() < end) {
		if (pub(in, probe_topic, NULL, FH_PROBE, FH_PROBE_LEN, NULL, NULL) != 0)
			break;
		if (fh_wait_probes(in->h, id, before + 1, 100))
			return true;
	}
	fprintf(stderr, "  subscription %s never became live\n", pattern);
	CHECK(!"subscription live");
	return false;
}

/* Nothing more than `n` arrives for sub within settle_ms. */
static bool stays_at(inst *in, uint64_t sub, size_t n)
{
	return !fh_wait_count(in->h, sub, n + 1, B.p.settle_ms) && fh_count(in->h, sub) == n;
}

static bool rec_is(const fh_rec *r, const char *t, const char *key, const char *data)
{
	return r && strcmp(r->topic, t) == 0 && r->len == strlen(data) && memcmp(r->data, data, r->len) == 0 &&
	       (key ? (r->key_len == strlen(key) && memcmp(r->key, key, r->key_len) == 0) : r->key_len == 0);
}

static uint64_t stat_value(inst *in, const char *name)
{
	char buf[4096];
	if (!B.d->stats)
		return UINT64_MAX;
	B.d->stats(in->self, buf, sizeof buf);
	size_t nl = strlen(name);
	for (const char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (strncmp(l, name, nl) == 0 && l[nl] == ' ')
			return strtoull(l + nl + 1, NULL, 10);
	return UINT64_MAX;
}

TEST(bt_lifecycle)
{
	char err[256] = "";
	fake_host *h = fh_new();
	void *self = NULL;
	/* create → stop → destroy without start */
	CHECK_EQ_INT(B.d->create(fh_host(h), B.opts, B.n_opts, &self, err, sizeof err), 0);
	if (self) {
		B.d->stop(self);
		B.d->destroy(self);
	}
	fh_free(h);

	inst in;
	if (!inst_up(&in))
		return;
	int64_t end = bt_now_ms() + B.p.deadline_ms;
	int hrc;
	while ((hrc = B.d->health(in.self, err, sizeof err)) != 0 && bt_now_ms() < end)
		fh_wait_events(in.h, fh_events(in.h), 20); /* poll health with a deadline */
	CHECK_EQ_INT(hrc, 0);
	if (B.d->stats) {
		char buf[4096];
		size_t n = B.d->stats(in.self, buf, sizeof buf);
		CHECK(n > 0 && n < sizeof buf && strlen(buf) == n && buf[n - 1] == '\n');
		char tiny[8];
		n = B.d->stats(in.self, tiny, sizeof tiny); /* truncates, stays NUL-terminated */
		CHECK(n < sizeof tiny && strlen(tiny) == n);
	}
	char t[128];
	CHECK_EQ_INT(pub_str(&in, topic(t, sizeof t, "life"), NULL, "x"), 0);
	B.d->stop(in.self);
	B.d->stop(in.self); /* idempotent */
	in.stopped = true;
	CHECK_EQ_INT(B.d->publish(in.self, t, NULL, 0, "y", 1, NULL, NULL), -SIOGW_ECLOSED);
	inst_down(&in);
}

TEST(bt_exact)
{
	inst in;
	if (!inst_up(&in))
		return;
	char t[128], t_ab[128], t_a[128], all[128];
	topic(t, sizeof t, "exact.a");
	topic(t_ab, sizeof t_ab, "exact.ab");
	topic(t_a, sizeof t_a, "exact.");
	topic(all, sizeof all, "exact.");
	if (sub_live(&in, 1, t, SIOGW_SUB_EXACT, t) && sub_live(&in, 2, all, SIOGW_SUB_PREFIX, t)) {
		CHECK_EQ_INT(pub_str(&in, t_ab, "k", "no-1"), 0);
		CHECK_EQ_INT(pub_str(&in, t_a, "k", "no-2"), 0);
		CHECK_EQ_INT(pub_str(&in, t, "k1", "hello"), 0);
		CHECK(fh_wait_count(in.h, 2, 3, B.p.deadline_ms)); /* all three published */
		CHECK(fh_wait_count(in.h, 1, 1, B.p.deadline_ms));
		CHECK(stays_at(&in, 1, 1));
		const fh_rec *r[2] = {0};
		CHECK_EQ_INT(fh_collect(in.h, 1, r, 2), 1);
		CHECK(rec_is(r[0], t, "k1", "hello"));
	}
	inst_down(&in);
}

TEST(bt_prefix)
{
	inst in;
	if (!inst_up(&in))
		return;
	char p[128], x[128], yz[128], foo[128], pr[128], all[128];
	topic(p, sizeof p, "pre.");
	topic(x, sizeof x, "pre.x");
	topic(yz, sizeof yz, "pre.y.z");
	topic(foo, sizeof foo, "prefoo");
	topic(pr, sizeof pr, "pr");
	topic(all, sizeof all, "pr");
	if (sub_live(&in, 1, p, SIOGW_SUB_PREFIX, x) && sub_live(&in, 2, all, SIOGW_SUB_PREFIX, pr)) {
		CHECK_EQ_INT(pub_str(&in, foo, NULL, "no-1"), 0);
		CHECK_EQ_INT(pub_str(&in, pr, NULL, "no-2"), 0);
		CHECK_EQ_INT(pub_str(&in, x, NULL, "x"), 0);
		CHECK_EQ_INT(pub_str(&in, yz, NULL, "yz"), 0);
		CHECK(fh_wait_count(in.h, 2, 4, B.p.deadline_ms));
		CHECK(fh_wait_count(in.h, 1, 2, B.p.deadline_ms));
		CHECK(stays_at(&in, 1, 2));
		const fh_rec *r[3] = {0};
		size_t n = fh_collect(in.h, 1, r, 3);
		CHECK_EQ_INT(n, 2);
		/* two topics: a remote bus need not order them against each other */
		bool got_x = false, got_yz = false;
		for (size_t i = 0; i < n; i++) {
			got_x |= rec_is(r[i], x, NULL, "x");
			got_yz |= rec_is(r[i], yz, NULL, "yz");
		}
		CHECK(got_x && got_yz);
	}
	inst_down(&in);
}

TEST(bt_unsubscribe)
{
	inst in;
	if (!inst_up(&in))
		return;
	char t[128];
	topic(t, sizeof t, "unsub");
	if (sub_live(&in, 1, t, SIOGW_SUB_EXACT, t) && sub_live(&in, 2, t, SIOGW_SUB_EXACT, t)) {
		CHECK_EQ_INT(pub_str(&in, t, NULL, "m1"), 0);
		CHECK(fh_wait_count(in.h, 1, 1, B.p.deadline_ms));
		CHECK(fh_wait_count(in.h, 2, 1, B.p.deadline_ms));
		CHECK_EQ_INT(B.d->unsubscribe(in.self, 1), 0);
		CHECK_EQ_INT(pub_str(&in, t, NULL, "m2"), 0);
		CHECK(fh_wait_count(in.h, 2, 2, B.p.deadline_ms));
		CHECK(stays_at(&in, 1, 1));
	}
	inst_down(&in);
}

TEST(bt_multi)
{
	inst in;
	if (!inst_up(&in))
		return;
	char t[128], p[128];
	topic(t, sizeof t, "multi.t");
	topic(p, sizeof p, "multi.");
	if (sub_live(&in, 1, t, SIOGW_SUB_EXACT, t) && sub_live(&in, 2, t, SIOGW_SUB_EXACT, t) &&
	    sub_live(&in, 3, p, SIOGW_SUB_PREFIX, t)) {
		CHECK_EQ_INT(pub_str(&in, t, "k", "one"), 0);
		for (uint64_t id = 1; id <= 3; id++) {
			CHECK(fh_wait_count(in.h, id, 1, B.p.deadline_ms));
			const fh_rec *r[1] = {0};
			CHECK_EQ_INT(fh_collect(in.h, id, r, 1), 1);
			CHECK(rec_is(r[0], t, "k", "one"));
		}
		CHECK(stays_at(&in, FH_ANY, 3));
	}
	inst_down(&in);
}

TEST(bt_large)
{
	if (B.p.large_size == SIZE_MAX)
		return;
	inst in;
	if (!inst_up(&in))
		return;
	char t[128];
	topic(t, sizeof t, "large");
	size_t n = B.p.large_size;
	unsigned char *big = xmalloc(n);
	uint32_t x = 2463534242u;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		big[i] = (unsigned char)x;
	}
	if (sub_live(&in, 1, t, SIOGW_SUB_EXACT, t)) {
		fh_slot slot = {.h = in.h};
		CHECK_EQ_INT(pub(&in, t, "big", big, n, fh_dr, &slot), 0);
		CHECK(fh_wait_count(in.h, 1, 1, B.p.deadline_ms));
		CHECK(fh_wait_dr(in.h, 1, B.p.deadline_ms));
		const fh_rec *r[1] = {0};
		CHECK_EQ_INT(fh_collect(in.h, 1, r, 1), 1);
		CHECK(r[0] && r[0]->len == n && memcmp(r[0]->data, big, n) == 0);
		CHECK_EQ_INT(slot.status, 0);
	}
	free(big);
	inst_down(&in);
}

TEST(bt_order)
{
	inst in;
	if (!inst_up(&in))
		return;
	char t[128];
	topic(t, sizeof t, "order");
	size_t n = B.p.order_count;
	if (sub_live(&in, 1, t, SIOGW_SUB_EXACT, t)) {
		size_t sent = 0;
		for (size_t i = 0; i < n; i++) {
			char data[32];
			snprintf(data, sizeof data, "%zu", i);
			if (pub_str(&in, t, "one-key", data) != 0)
				break;
			sent++;
		}
		CHECK_EQ_INT(sent, n);
		if (!B.p.lossy)
			CHECK(fh_wait_count(in.h, 1, sent, B.p.deadline_ms + (int)(sent / 10)));
		else
			fh_wait_count(in.h, 1, sent, B.p.deadline_ms);
		const fh_rec **r = xmalloc(sent * sizeof *r);
		size_t got = fh_collect(in.h, 1, r, sent);
		if (!B.p.lossy)
			CHECK_EQ_INT(got, sent);
		long prev = -1;
		bool ordered = true;
		for (size_t i = 0; i < got; i++) {
			char s[32];
			snprintf(s, sizeof s, "%.*s", (int)(r[i]->len < 31 ? r[i]->len : 31), (const char *)r[i]->data);
			long v = strtol(s, NULL, 10);
			if (v <= prev || (!B.p.lossy && v != prev + 1))
				ordered = false;
			prev = v;
		}
		CHECK(ordered);
		free(r);
	}
	inst_down(&in);
}

TEST(bt_delivery_reports)
{
	inst in;
	if (!inst_up(&in))
		return;
	char t[128], none[128];
	topic(t, sizeof t, "dr");
	topic(none, sizeof none, "dr.nobody");
	enum { N = 100 };
	fh_slot slots[N];
	if (sub_live(&in, 1, t, SIOGW_SUB_EXACT, t)) {
		size_t ok = 0;
		for (int i = 0; i < N; i++) {
			slots[i] = (fh_slot){.h = in.h};
			/* half to a topic nobody subscribes: a report fires anyway */
			if (pub(&in, i % 2 ? none : t, NULL, "m", 1, fh_dr, &slots[i]) == 0)
				ok++;
		}
		CHECK_EQ_INT(ok, N);
		CHECK_EQ_INT(pub(&in, t, NULL, "no-report", 9, NULL, NULL), 0);
		CHECK(fh_wait_dr(in.h, N, B.p.deadline_ms));
		CHECK(fh_wait_count(in.h, 1, N / 2 + 1, B.p.deadline_ms));
		CHECK(!fh_wait_dr(in.h, N + 1, B.p.settle_ms));
		bool once = true, status_ok = true;
		for (int i = 0; i < N; i++) {
			once &= slots[i].count == 1;
			status_ok &= slots[i].status == 0;
		}
		CHECK(once);
		CHECK(status_ok);
	}
	inst_down(&in);
}

TEST(bt_stop)
{
	inst in;
	if (!inst_up(&in))
		return;
	char t[128];
	topic(t, sizeof t, "stop");
	enum { N = 200 };
	fh_slot slots[N];
	size_t ok = 0;
	if (sub_live(&in, 1, t, SIOGW_SUB_EXACT, t)) {
		for (int i = 0; i < N; i++) {
			slots[i] = (fh_slot){.h = in.h, .status = 1};
			if (B.d->publish(in.self, t, NULL, 0, "m", 1, fh_dr, &slots[i]) == 0)
				ok++;
		}
		B.d->stop(in.self); /* straight away: some are likely still queued */
		in.stopped = true;
		/* every accepted publish got exactly one report by the time stop returned */
		CHECK_EQ_INT(fh_dr_total(in.h), ok);
		bool once = true, status_ok = true;
		for (size_t i = 0; i < ok; i++) {
			once &= slots[i].count == 1;
			status_ok &= slots[i].status == 0 || slots[i].status == -SIOGW_ECLOSED;
		}
		CHECK(once);
		CHECK(status_ok);
		/* after stop returns no host service is called again */
		size_t total = fh_total(in.h);
		CHECK(!fh_wait_events(in.h, fh_events(in.h), B.p.settle_ms));
		CHECK_EQ_INT(fh_total(in.h), total);
		CHECK_EQ_INT(B.d->publish(in.self, t, NULL, 0, "late", 4, fh_dr, &slots[0]), -SIOGW_ECLOSED);
		B.d->stop(in.self);
		CHECK_EQ_INT(fh_dr_total(in.h), ok); /* no report for a failed publish */
	}
	inst_down(&in);
}

TEST(bt_deliver_eagain)
{
	inst in;
	if (!inst_up(&in))
		return;
	char t[128];
	topic(t, sizeof t, "eagain");
	enum { K = 5 };
	fh_slot slots[K + 1];
	if (sub_live(&in, 1, t, SIOGW_SUB_EXACT, t)) {
		fh_eagain(in.h, K);
		for (int i = 0; i <= K; i++) {
			slots[i] = (fh_slot){.h = in.h};
			char data[16];
			snprintf(data, sizeof data, "%d", i);
			CHECK_EQ_INT(pub(&in, t, "k", data, strlen(data), fh_dr, &slots[i]), 0);
		}
		/* the host refused K copies; the plugin keeps going and delivers the rest */
		CHECK(fh_wait_dr(in.h, K + 1, B.p.deadline_ms));
		CHECK(fh_wait_count(in.h, 1, 1, B.p.deadline_ms));
		CHECK_EQ_INT(fh_refused(in.h), K);
		const fh_rec *r[1] = {0};
		CHECK_EQ_INT(fh_collect(in.h, 1, r, 1), 1);
		CHECK(rec_is(r[0], t, "k", "5"));
		if (B.p.dropped_stat)
			CHECK(stat_value(&in, B.p.dropped_stat) == K);
	}
	inst_down(&in);
}

/* Concurrency: two publisher threads while the main thread churns subscriptions. */
typedef struct conc_pub {
	inst *in;
	int idx;
	size_t n, ok;
	fh_slot *slots;
	bool *used;
	atomic_bool done;
} conc_pub;

enum { CONC_N = 2000 };

static void *conc_publisher(void *arg)
{
	conc_pub *c = arg;
	for (size_t i = 0; i < c->n; i++) {
		char t[128], suffix[32], key[16], data[32];
		snprintf(suffix, sizeof suffix, "conc.%zu", i % 4);
		snprintf(key, sizeof key, "p%d", c->idx);
		snprintf(data, sizeof data, "%zu", i);
		c->slots[i] = (fh_slot){.h = c->in->h};
		int rc = B.d->publish(pub_self(c->in), topic(t, sizeof t, suffix), key, strlen(key), data, strlen(data),
				      fh_dr, &c->slots[i]);
		c->used[i] = rc == 0;
		if (rc == 0)
			c->ok++;
		else if (rc != -SIOGW_EAGAIN)
			break;
	}
	atomic_store(&c->done, true);
	return NULL;
}

TEST(bt_concurrent)
{
	if (B.p.skip_concurrent)
		return;
	inst in;
	if (!inst_up(&in))
		return;
	char p[128], t0[128];
	topic(p, sizeof p, "conc.");
	topic(t0, sizeof t0, "conc.0");
	if (sub_live(&in, 1, p, SIOGW_SUB_PREFIX, t0)) {
		conc_pub c[2];
		pthread_t th[2];
		for (int i = 0; i < 2; i++) {
			c[i] = (conc_pub){.in = &in, .idx = i, .n = CONC_N};
			atomic_init(&c[i].done, false);
			c[i].slots = xmalloc(CONC_N * sizeof *c[i].slots);
			c[i].used = calloc(CONC_N, sizeof *c[i].used);
			if (!c[i].used)
				abort();
		}
		for (int i = 0; i < 2; i++)
			CHECK_EQ_INT(pthread_create(&th[i], NULL, conc_publisher, &c[i]), 0);
		/* churn subscriptions (exact and prefix) until both publishers are done: two in
		 * three are removed at once, the others 30 ids later (at most 10 extra live) */
		uint64_t id = 100;
		while (!atomic_load(&c[0].done) || !atomic_load(&c[1].done)) {
			char t[128], suffix[32];
			snprintf(suffix, sizeof suffix, "conc.%" PRIu64, id % 4);
			int kind = id % 2 ? SIOGW_SUB_EXACT : SIOGW_SUB_PREFIX;
			const char *pattern = kind == SIOGW_SUB_EXACT ? topic(t, sizeof t, suffix) : p;
			int rc = B.d->subscribe(in.self, id, pattern, kind);
			if (rc == 0 && id % 3)
				rc = B.d->unsubscribe(in.self, id);
			else if (rc == 0 && id >= 130)
				rc = B.d->unsubscribe(in.self, id - 30);
			if (rc != 0) {
				CHECK_EQ_INT(rc, 0);
				break;
			}
			id++;
			fh_wait_events(in.h, fh_events(in.h), 1);
		}
		for (int i = 0; i < 2; i++)
			pthread_join(th[i], NULL);
		size_t ok = c[0].ok + c[1].ok;
		CHECK(ok > 0);
		CHECK(fh_wait_dr(in.h, ok, B.p.deadline_ms));
		CHECK(!fh_wait_dr(in.h, ok + 1, B.p.settle_ms));
		bool once = true;
		for (int i = 0; i < 2; i++)
			for (size_t j = 0; j < CONC_N; j++)
				if (c[i].used[j])
					once &= c[i].slots[j].count == 1;
		CHECK(once);
		if (!B.p.lossy)
			CHECK(fh_wait_count(in.h, 1, ok, B.p.deadline_ms));
		/* the long-lived subscription saw each publisher's (key's) messages in order */
		const fh_rec **r = xmalloc((ok ? ok : 1) * sizeof *r);
		size_t got = fh_collect(in.h, 1, r, ok);
		long last[2] = {-1, -1};
		bool ordered = got > 0;
		for (size_t i = 0; i < got; i++) {
			char s[32];
			snprintf(s, sizeof s, "%.*s", (int)(r[i]->len < 31 ? r[i]->len : 31), (const char *)r[i]->data);
			int who = r[i]->key_len == 2 && ((const char *)r[i]->key)[1] == '1';
			long v = strtol(s, NULL, 10);
			if (v <= last[who])
				ordered = false;
			last[who] = v;
		}
		CHECK(ordered);
		free(r);
		B.d->stop(in.self); /* before freeing the slots the reports point at */
		in.stopped = true;
		for (int i = 0; i < 2; i++) {
			free(c[i].slots);
			free(c[i].used);
		}
	}
	inst_down(&in);
}

int battery_run(const char *plugin_path, const char *const *options, size_t n_options,
		const battery_params *params)
{
	char err[512] = "";
	gw_plugin *pl = NULL;
	memset(&B, 0, sizeof B);
	if (params)
		B.p = *params;
	if (!B.p.deadline_ms)
		B.p.deadline_ms = 10000;
	if (!B.p.settle_ms)
		B.p.settle_ms = 50;
	if (!B.p.large_size)
		B.p.large_size = 4u << 20;
	if (!B.p.order_count)
		B.p.order_count = 10000;
	if (B.p.topic_prefix)
		snprintf(B.prefix, sizeof B.prefix, "%s", B.p.topic_prefix);
	else
		snprintf(B.prefix, sizeof B.prefix, "bt%ld.", (long)getpid());

	if (gw_plugin_open(plugin_path, NULL, &pl, err, sizeof err) != 0) {
		fprintf(stderr, "FAIL battery: %s\n", err);
		return 1;
	}
	B.d = gw_plugin_desc(pl);
	if (battery_resolve_options(B.d, options, n_options, &B.opts, &B.n_opts, err, sizeof err) != 0) {
		fprintf(stderr, "FAIL battery: plugin %s: %s\n", B.d->name, err);
		gw_plugin_close(pl);
		return 1;
	}
	if (B.p.pair && battery_resolve_options(B.d, B.p.peer_options, B.p.n_peer_options, &B.peer_opts,
						  &B.n_peer_opts, err, sizeof err) != 0) {
		fprintf(stderr, "FAIL battery: plugin %s: peer: %s\n", B.d->name, err);
		battery_free_options(B.opts, B.n_opts);
		gw_plugin_close(pl);
		return 1;
	}
	fprintf(stderr, "battery: plugin %s %s (%s)%s\n", B.d->name, B.d->version ? B.d->version : "?",
		gw_plugin_path(pl), B.p.pair ? ", pair mode: a peer instance publishes" : "");

	int failed_before = t_failed, run_before = t_run;
	RUN(bt_lifecycle);
	RUN(bt_exact);
	RUN(bt_prefix);
	RUN(bt_unsubscribe);
	RUN(bt_multi);
	RUN(bt_large);
	RUN(bt_order);
	RUN(bt_delivery_reports);
	RUN(bt_stop);
	RUN(bt_deliver_eagain);
	RUN(bt_concurrent);
	int failed = t_failed - failed_before;
	fprintf(stderr, "battery: %d/%d passed\n", (t_run - run_before) - failed, t_run - run_before);

	battery_free_options(B.opts, B.n_opts);
	battery_free_options(B.peer_opts, B.n_peer_opts);
	gw_plugin_close(pl);
	memset(&B, 0, sizeof B);
	return failed;
}

#ifdef BATTERY_MAIN
/* siogw-plugin-battery <plugin.so|name> [--lossy] [--no-concurrent] [--large=BYTES] [--count=N]
 *                [--deadline-ms=N] [--settle-ms=N] [--dropped-stat=NAME] [--pair]
 *                [key=value ...] [peer.key=value ...]
 * peer.key=value options (or --pair alone) run the battery in pair mode. */
int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s <plugin.so> [--lossy] [--no-concurrent] [--large=BYTES|skip] "
				"[--count=N] [--deadline-ms=N] [--settle-ms=N] [--dropped-stat=NAME] [--pair] "
				"[key=value ...] [peer.key=value ...]\n",
			argv[0]);
		return 2;
	}
	battery_params p = {0};
	const char **kv = calloc((size_t)argc, sizeof *kv), **peer = calloc((size_t)argc, sizeof *peer);
	size_t n = 0, n_peer = 0;
	if (!kv || !peer)
		return 2;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--lossy") == 0)
			p.lossy = true;
		else if (strcmp(a, "--no-concurrent") == 0)
			p.skip_concurrent = true;
		else if (strcmp(a, "--large=skip") == 0)
			p.large_size = SIZE_MAX;
		else if (strncmp(a, "--large=", 8) == 0)
			p.large_size = strtoull(a + 8, NULL, 10);
		else if (strncmp(a, "--count=", 8) == 0)
			p.order_count = strtoull(a + 8, NULL, 10);
		else if (strncmp(a, "--deadline-ms=", 14) == 0)
			p.deadline_ms = atoi(a + 14);
		else if (strncmp(a, "--settle-ms=", 12) == 0)
			p.settle_ms = atoi(a + 12);
		else if (strncmp(a, "--dropped-stat=", 15) == 0)
			p.dropped_stat = a + 15;
		else if (strcmp(a, "--pair") == 0)
			p.pair = true;
		else if (strncmp(a, "--", 2) == 0) {
			fprintf(stderr, "%s: unknown flag %s\n", argv[0], a);
			free(kv);
			free(peer);
			return 2;
		} else if (strncmp(a, "peer.", 5) == 0) {
			p.pair = true;
			peer[n_peer++] = a + 5;
		} else {
			kv[n++] = a;
		}
	}
	p.peer_options = peer;
	p.n_peer_options = n_peer;
	int failed = battery_run(argv[1], kv, n, &p);
	free(kv);
	free(peer);
	return failed ? 1 : 0;
}
#endif
