/*
 * siogw/plugin.h — the bus plugin ABI of sio-gateway. This is the only public API.
 *
 * A bus plugin is a shared object that exports one symbol, SIOGW_PLUGIN_SYMBOL
 * ("siogw_plugin_v1"), a `const siogw_plugin` descriptor. The gateway dlopen()s the
 * object, checks magic, ABI major, minor and table size, validates the operator's
 * options against the plugin's declared option table, then drives the lifecycle:
 *
 *   create → start → subscribe/unsubscribe/publish (any order, repeated) → stop → destroy
 *
 * Apart from that lifecycle, `sio-gateway --check` calls check() (ABI 1.1, optional):
 * it judges the resolved options as create() would, without creating an instance.
 *
 * Threads. The gateway makes every ops call from its service thread unless stated
 * otherwise (a plugin should still tolerate calls from several threads: the test
 * battery and future multi-loop gateways do that), and ops must not block (no
 * network round trips, no waiting on locks held by plugin threads for long). A plugin runs its own threads for I/O and hands received
 * messages back through host->deliver(), which is safe to call from any thread.
 * create(), start(), stop() and destroy() may block (they run at startup/shutdown);
 * so may check(), which runs on the main thread of `--check` only.
 *
 * Compatibility. The ops table only grows at its end. A plugin built against an older
 * minor keeps working: the host reads `size` and never calls a member beyond it. The
 * host refuses a plugin whose abi_major differs from SIOGW_ABI_MAJOR.
 *
 * Ownership. Every pointer the host passes into an op is borrowed for the duration of
 * that call only; a plugin copies what it keeps. Every pointer a plugin passes to a
 * host service is borrowed for the duration of that call; the host copies what it keeps.
 * Option values passed to create() stay valid until destroy() returns.
 *
 * Errors. Ops return 0 on success or a negative SIOGW_E* code.
 *
 * siogw/plugin_util.h (optional, header-only, not part of the ABI) holds the helpers
 * most plugins need: error text, logging, option look-ups, a subscription table and the
 * in-flight deliver() handshake behind unsubscribe().
 */
#ifndef SIOGW_PLUGIN_H
#define SIOGW_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SIOGW_PLUGIN_MAGIC 0x53494f47u /* "SIOG" */
#define SIOGW_ABI_MAJOR 1
#define SIOGW_ABI_MINOR 2 /* 1.1: check(); optval.num of an ENUM is its choice's index;
			   * 1.2: host->deliver_at() */
#define SIOGW_PLUGIN_SYMBOL "siogw_plugin_v1"

/* Error codes returned (negated) by ops. */
enum {
	SIOGW_OK = 0,
	SIOGW_EINVAL = 1,   /* bad argument (topic, option) */
	SIOGW_ENOMEM = 2,   /* out of memory */
	SIOGW_EAGAIN = 3,   /* a bounded queue is full: try later or drop */
	SIOGW_ECLOSED = 4,  /* the plugin is stopped or stopping */
	SIOGW_EIO = 5,      /* transport/broker failure */
	SIOGW_ENOTSUP = 6,  /* operation not supported by this plugin */
};

/* Log levels for host->log. */
enum { SIOGW_LOG_ERROR = 0, SIOGW_LOG_WARN = 1, SIOGW_LOG_INFO = 2, SIOGW_LOG_DEBUG = 3 };

/* ---- options ---------------------------------------------------------------- */

typedef enum siogw_opt_type {
	SIOGW_OPT_STRING = 0,
	SIOGW_OPT_INT,      /* integer within [min, max] */
	SIOGW_OPT_BOOL,     /* true/false */
	SIOGW_OPT_SIZE,     /* bytes; YAML may say 64k, 1m, 2g */
	SIOGW_OPT_DURATION, /* milliseconds; YAML may say 250ms, 5s, 2m */
	SIOGW_OPT_ENUM,     /* one of `choices` ("a|b|c") */
	SIOGW_OPT_LIST,     /* list of strings; value is the items joined by ',' */
	SIOGW_OPT_PREFIX,   /* any key starting with `name` (e.g. "rdkafka."), string value, passed through */
} siogw_opt_type;

typedef struct siogw_option {
	const char *name;     /* key under adapter.options */
	siogw_opt_type type;
	const char *def;      /* default as text, NULL = no default (optional, absent) */
	int64_t min, max;     /* bounds for INT/SIZE/DURATION; ignored when min > max */
	const char *choices;  /* ENUM: "a|b|c" */
	const char *help;     /* one line */
} siogw_option;

/*
 * One resolved option handed to create(). For every declared option that has a value
 * (given or default) there is one entry; PREFIX options produce one entry per key
 * given (name is the full key). `str` is the normalized text (INT/SIZE/DURATION as
 * decimal, BOOL as "true"/"false", LIST comma-joined); `num` holds the number for
 * INT/SIZE/DURATION/BOOL, and for ENUM (since ABI 1.1) the 0-based index of the chosen
 * value in the declaration's `choices` ("latest|earliest": "earliest" is 1), so a plugin
 * need not parse `str` again.
 */
typedef struct siogw_optval {
	const char *name;
	const char *str;
	int64_t num;
} siogw_optval;

/* ---- host services ---------------------------------------------------------- */

/* Subscription kinds. */
enum {
	SIOGW_SUB_EXACT = 0,  /* topic equals the pattern */
	SIOGW_SUB_PREFIX = 1, /* topic starts with the pattern */
};

typedef struct siogw_host siogw_host;
struct siogw_host {
	uint32_t size;       /* sizeof(siogw_host) as the host knows it */
	uint32_t abi_minor;  /* host's SIOGW_ABI_MINOR */
	void *ctx;           /* pass back as first argument of every service */

	/* Log one line (no trailing newline needed). Any thread. */
	void (*log)(void *ctx, int level, const char *plugin, const char *fmt, ...)
#if defined(__GNUC__)
		__attribute__((format(printf, 4, 5)))
#endif
		;

	/*
	 * Hand one received message to the gateway. Any thread, never blocks for long.
	 * `sub_id` is the id given to subscribe() whose pattern matched; a message that
	 * matches several subscriptions is delivered once per subscription. The host
	 * copies topic/key/data before returning. Returns 0, or -SIOGW_EAGAIN when the
	 * gateway's inbound queue is full (the message was dropped and counted by the
	 * host; a plugin with flow control may pause its source until deliveries succeed).
	 */
	int (*deliver)(void *ctx, uint64_t sub_id, const char *topic,
		       const void *key, size_t key_len, const void *data, size_t len);

	/*
	 * ABI 1.2. deliver() with the message's position on a bus that keeps one (Kafka:
	 * its partition and offset in the topic), the same on every node that reads the
	 * message: the host names replayable packets by it (connection state recovery
	 * across nodes). Same rules and return values as deliver(). A plugin calls it only
	 * when the host has it: host->size covers it and it is not NULL (a 1.1 host has
	 * neither); otherwise deliver().
	 */
	int (*deliver_at)(void *ctx, uint64_t sub_id, const char *topic, const void *key, size_t key_len,
			  const void *data, size_t len, int32_t partition, int64_t offset);
};

/* Whether host offers deliver_at (ABI 1.2). */
#define SIOGW_HOST_HAS_DELIVER_AT(h)                                                             \
	((h)->size >= offsetof(siogw_host, deliver_at) + sizeof(void *) && (h)->deliver_at != NULL)

/* Delivery report for publish(): status 0 = stored/sent, else -SIOGW_E*. Called
 * exactly once per successful publish() call, from any thread (possibly from inside
 * publish() itself). */
typedef void (*siogw_dr_cb)(void *arg, int status);

/* ---- the descriptor --------------------------------------------------------- */

typedef struct siogw_plugin {
	uint32_t magic;       /* SIOGW_PLUGIN_MAGIC */
	uint16_t abi_major;   /* SIOGW_ABI_MAJOR */
	uint16_t abi_minor;   /* SIOGW_ABI_MINOR */
	uint32_t size;        /* sizeof(siogw_plugin) as the plugin was built */
	const char *name;     /* short unique name, e.g. "memory" */
	const char *version;  /* plugin's own version */
	const char *description;
	const siogw_option *options;
	size_t n_options;

	/* Allocate the instance; no threads or network yet is fine either way. On
	 * failure return -SIOGW_E*, write a message into err, and leave nothing behind. */
	int (*create)(const siogw_host *host, const siogw_optval *opts, size_t n_opts,
		      void **self, char *err, size_t err_len);
	/* Start threads, connect. May block. */
	int (*start)(void *self, char *err, size_t err_len);

	/* Subscribe `pattern` (EXACT or PREFIX) under `sub_id`, unique per call. Messages
	 * published after the call returns are delivered (a plugin documents how soon for
	 * remote sources). Non-blocking. */
	int (*subscribe)(void *self, uint64_t sub_id, const char *pattern, int kind);
	/* Remove a subscription; after return no new deliver() for sub_id starts. */
	int (*unsubscribe)(void *self, uint64_t sub_id);

	/* Publish `data` on `topic`. `key` (may be NULL) orders messages of one key.
	 * Non-blocking: a full buffer returns -SIOGW_EAGAIN. On success (0) the plugin has
	 * copied what it needs and calls dr(dr_arg, status) exactly once if dr is non-NULL,
	 * from any thread (a plugin may call it before publish() returns); on failure dr is
	 * never called. */
	int (*publish)(void *self, const char *topic, const void *key, size_t key_len,
		       const void *data, size_t len, siogw_dr_cb dr, void *dr_arg);

	/* Health: 0 healthy, else -SIOGW_EIO with a reason in buf. Any thread. */
	int (*health)(void *self, char *buf, size_t buf_len);

	/* Write Prometheus-style "name value\n" lines of the plugin's counters into buf
	 * (NUL-terminated, truncated to buf_len); return bytes written. Service thread.
	 * May be NULL. */
	size_t (*stats)(void *self, char *buf, size_t buf_len);

	/* Stop threads; pending delivery reports fire with -SIOGW_ECLOSED. Idempotent.
	 * After return no host service is called again. May block. */
	void (*stop)(void *self);
	/* Free everything. Called once, after stop(). */
	void (*destroy)(void *self);

	/* ---- ABI 1.1. The host calls these only when `size` covers them. ---------- */

	/*
	 * Judge options as create() would, without creating anything: no instance, no
	 * listening, no connection, no host service (there is no host table), nothing
	 * left behind on return (a library's process-wide worker threads aside).
	 * `sio-gateway --check` calls it on its main thread once the options passed the
	 * declared table. May block (a library may resolve a host name), but briefly.
	 * opts/n_opts are what create() would get, borrowed for the call.
	 * Returns 0 when create() would accept them. Otherwise -SIOGW_E* with one line in
	 * err (where a library refused, its own message, e.g. librdkafka's), and
	 * *bad_opt set to the index in opts of the option to blame, so that the host
	 * prints where that option is written; *bad_opt is left alone (the host sets it to
	 * SIZE_MAX first) when no single option is at fault.
	 * NULL: the plugin judges nothing beyond its option table.
	 */
	int (*check)(const siogw_optval *opts, size_t n_opts, size_t *bad_opt, char *err,
		     size_t err_len);
} siogw_plugin;

#ifdef __cplusplus
}
#endif
#endif /* SIOGW_PLUGIN_H */
