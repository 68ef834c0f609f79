/*
 * battery.h — one test battery for every bus plugin (STYLE.md "Tests").
 *
 * battery_run() loads a plugin .so through the gateway's loader, resolves options the
 * way the gateway does (declared defaults + "key=value" overrides), and drives the
 * plugin only through include/siogw/plugin.h against a fake host with real threads.
 * Each test gets a fresh instance (create → start → … → stop → destroy).
 *
 * Deliveries are treated as asynchronous: every wait polls a condition with a
 * deadline (never a bare sleep), and a new subscription is first proven live by
 * publishing probe messages until one arrives (remote buses take time to subscribe).
 * Checks that something did NOT arrive watch for `settle_ms` after the expected
 * messages have arrived.
 *
 * The fake host (fh_*) is exported so plugin-specific tests can reuse it.
 */
#ifndef GW_TEST_BATTERY_H
#define GW_TEST_BATTERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "siogw/plugin.h"

typedef struct battery_params {
	int deadline_ms;          /* max wait for an expected delivery/report; 0 → 10000 */
	int settle_ms;            /* how long "nothing more arrives" is watched; 0 → 50 */
	size_t large_size;        /* payload of the large-message test; 0 → 4 MiB, SIZE_MAX skips */
	size_t order_count;       /* messages in the ordering test; 0 → 10000 */
	bool lossy;               /* plugin may drop under load: check order, not completeness */
	bool skip_concurrent;     /* don't call ops from several threads at once */
	const char *dropped_stat; /* stats line counting deliver() → EAGAIN drops; NULL skips */
	const char *topic_prefix; /* NULL → "bt<pid>." so runs on a shared broker don't mix */
	/* Pair mode, for a plugin whose publishes do not come back to its own subscriptions
	 * (a bridge to a remote bus): each test also starts a peer instance with these
	 * options and publishes through it what the instance under test must receive. What
	 * concerns the instance's own publishing (reports, stop) is still tested on it. */
	bool pair;
	const char *const *peer_options; /* "key=value", n_peer_options of them */
	size_t n_peer_options;
} battery_params;

/* Run the whole battery. `options` are "key=value" strings (n_options of them).
 * Prints one line per test to stderr; returns the number of failed tests (a load or
 * option error counts as one failure). */
int battery_run(const char *plugin_path, const char *const *options, size_t n_options,
		const battery_params *params);

/* Resolve "key=value" strings against a plugin's option table like the gateway:
 * every declared option with a value (given or default) gets one entry, numbers and
 * sizes ("64k", "4m") and durations ("250ms", "5s") normalized. Unknown key → error.
 * Free with battery_free_options. Returns 0 or -1 with err filled. */
int battery_resolve_options(const siogw_plugin *d, const char *const *kv, size_t n,
			    siogw_optval **out, size_t *n_out, char *err, size_t err_len);
void battery_free_options(siogw_optval *v, size_t n);

/* ---- fake host ---------------------------------------------------------------- */

#define FH_ANY UINT64_MAX /* sub_id wildcard for counts */
/* Probe messages (data starting with FH_PROBE) are counted apart and never returned
 * by fh_count/fh_collect, nor refused by fh_eagain. */
#define FH_PROBE "\001probe"
#define FH_PROBE_LEN 6

typedef struct fake_host fake_host;

/* One recorded delivery (copies; valid until fh_clear/fh_free). */
typedef struct fh_rec {
	uint64_t sub_id;
	char *topic;
	void *key;
	size_t key_len;
	void *data;
	size_t len;
} fh_rec;

/* Delivery report slot: pass &slot as dr_arg with fh_dr as the callback. */
typedef struct fh_slot {
	fake_host *h;
	int count;  /* reports received for this publish (must end at 1) */
	int status; /* status of the last report */
} fh_slot;

fake_host *fh_new(void);
void fh_free(fake_host *h);
const siogw_host *fh_host(fake_host *h);
void fh_clear(fake_host *h); /* forget records and counts (not eagain/hold/hook) */

/* Counts of recorded (accepted, non-probe) deliveries for sub_id or FH_ANY. */
size_t fh_count(fake_host *h, uint64_t sub_id);
size_t fh_probes(fake_host *h, uint64_t sub_id);
size_t fh_refused(fake_host *h); /* deliveries answered with -SIOGW_EAGAIN */
size_t fh_total(fake_host *h);   /* every deliver() call, probes and refused included */
size_t fh_dr_total(fake_host *h);
/* Fill out[] with up to max records for sub_id (FH_ANY: all) in arrival order. */
size_t fh_collect(fake_host *h, uint64_t sub_id, const fh_rec **out, size_t max);

/* Waits: true when the condition held before the deadline. */
bool fh_wait_count(fake_host *h, uint64_t sub_id, size_t n, int ms);
bool fh_wait_probes(fake_host *h, uint64_t sub_id, size_t n, int ms);
bool fh_wait_dr(fake_host *h, size_t n, int ms);
bool fh_wait_held(fake_host *h, size_t n, int ms); /* n deliver() calls blocked by fh_hold */
/* Wait until anything (delivery, refusal, report) happens after `since` = fh_events(). */
uint64_t fh_events(fake_host *h);
bool fh_wait_events(fake_host *h, uint64_t since, int ms);

/* Behaviour knobs. */
void fh_eagain(fake_host *h, size_t n);  /* refuse the next n non-probe deliveries */
void fh_hold(fake_host *h, bool on);     /* while on, deliver() blocks */
typedef void (*fh_hook_fn)(void *arg, uint64_t sub_id);
void fh_set_hook(fake_host *h, fh_hook_fn fn, void *arg); /* called inside deliver() */
void fh_dr(void *slot, int status);      /* siogw_dr_cb for fh_slot */
void fh_last_log(fake_host *h, char *buf, size_t len); /* copy of the last host->log line */

/* Milliseconds on the monotonic clock. */
int64_t bt_now_ms(void);

#endif
