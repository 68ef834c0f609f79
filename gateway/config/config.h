/*
 * config.h — the gateway's configuration: YAML file → validated gw_config.
 *
 * Loading is two passes: libyaml builds a neutral tree (cfg_tree.h) whose every node
 * remembers file:line:col, with ${VAR} and ${VAR:-default} substituted in scalars; then
 * validation walks the tree against option tables and fills gw_config, applying
 * defaults in one place. Errors read "gateway.yaml:42:7: namespaces[2].events: expected
 * a list". Plugin options (adapter.options) are kept as a tree and validated later
 * against the plugin's own table, once the plugin is loaded.
 *
 * Not thread-safe; load once at startup. The gw_config owns all its strings.
 */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

/* engine.workers: at most this many service loops (a socket id names its loop). */
#define GW_MAX_WORKERS 256

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <regex.h>

#include "siogw/plugin.h"
#include "util/sid.h"

typedef struct cfg_node cfg_node; /* see cfg_tree.h */
typedef struct gw_jwt gw_jwt;     /* see util/jwt.h */

typedef struct gw_kv {
	char *key;
	char *value;
} gw_kv;

enum { GW_PARSER_JSON = 0, GW_PARSER_MSGPACK = 1 };
enum { GW_AUTH_NONE = 0, GW_AUTH_BACKEND = 1, GW_AUTH_JWT = 2 };
/* Where a namespace with auth: jwt finds the token. */
enum { GW_TOKEN_AUTH = 0, GW_TOKEN_QUERY = 1, GW_TOKEN_HEADER = 2 };
/* Who answers a client's ack: a backend (ack.id/reply_to in the event envelope), or
 * the bus itself once the event is stored (the publish's delivery report). */
enum { GW_ACK_BACKEND = 0, GW_ACK_BROKER = 1 };
/* admin_ui.auth: not given (refused when enabled), false, or {username, password_hash} */
enum { GW_ADMIN_AUTH_UNSET = 0, GW_ADMIN_AUTH_NONE, GW_ADMIN_AUTH_BASIC };
enum { GW_ADMIN_DEVELOPMENT = 0, GW_ADMIN_PRODUCTION = 1 };

typedef struct gw_route {
	char *topic;  /* e.g. "chat.room.{room}" or "chat.all"; {room} at most once, only at the
		       * end, after a non-empty prefix (validated) */
	char *event;  /* event name sent to clients */
	char *room;   /* fixed target room for topics without {room}; NULL = whole namespace
		       * (never set together with a {room} topic: rejected at load) */
} gw_route;

/* namespaces[].event_topics[]: client events by name to their own topic. */
typedef struct gw_event_topic {
	char *event;  /* an event name, or a prefix ending in '*' ("payment.*"), or "*" */
	char *topic;
} gw_event_topic;

/* A per-event override of a namespace's event rate (limits.events). */
typedef struct gw_rate_override {
	char *event;            /* an event name */
	int events_per_s;       /* its own bucket: rate, 0 = unlimited */
	int burst;              /* capacity, default = events_per_s */
} gw_rate_override;

enum { GW_LIMIT_DROP = 0, GW_LIMIT_DISCONNECT };

/* namespaces[].limits: token buckets per socket over its client events (those the
 * events allowlist lets through). 0 = no limit. */
typedef struct gw_limits {
	int events_per_s;       /* refill of the event bucket */
	int burst;              /* its capacity (default: events_per_s) */
	size_t bytes_per_s;     /* refill of the byte bucket (event text + attachments) */
	size_t bytes_burst;     /* its capacity (default: bytes_per_s) */
	int on_exceed;          /* GW_LIMIT_DROP | GW_LIMIT_DISCONNECT */
	gw_rate_override *events;
	size_t n_events;
} gw_limits;

typedef struct gw_nsp_config {
	char *name;             /* "/chat"; NULL for a dynamic entry (match) */
	char *match;            /* a dynamic entry: POSIX extended regex on the namespace
				 * name; every namespace it matches gets these options */
	regex_t *match_re;      /* match, compiled at load */
	char *label;            /* name or match, escaped for a metric label value */
	int auth;               /* GW_AUTH_* */
	int auth_timeout_ms;    /* default 5000 */
	int ack;                /* GW_ACK_*, default backend */
	char **events;          /* allowed client events; default ["*"] */
	size_t n_events;
	gw_route *routes;
	size_t n_routes;
	bool room_events;       /* publish join-room/leave-room to the in topic; default false */
	char *topic_in;         /* this namespace's inbound topic; NULL = topics.in */
	gw_event_topic *event_topics; /* first match wins; else topic_in */
	size_t n_event_topics;
	gw_limits limits;
	bool recovery;          /* false: no connection state recovery here (default true:
				 * as the top-level recovery says) */
	struct {                /* namespaces[].jwt, for auth: jwt */
		char **algorithms;      /* HS256, RS256, ES256 */
		size_t n_algorithms;
		char *secret;           /* HS256 */
		char *public_key_file;  /* RS256 / ES256: PEM public key or certificate */
		char *issuer, *audience;/* NULL: not checked */
		int leeway_ms;          /* 0 */
		bool require_exp;       /* true */
		int token_from;         /* GW_TOKEN_*, default auth.token */
	} jwt;
	gw_jwt *verifier;       /* auth: jwt — built from jwt at load, freed with the config */
	bool admin;             /* the admin UI's namespace (admin_ui.namespace), added at
				 * load: served by the gateway itself, never bridged to the bus */
} gw_nsp_config;


typedef struct gw_config {
	char *path;             /* file it was loaded from ("<embedded>" for the default) */
	char *node_id;          /* default "gw-1" */
	char node_tag[5];       /* its tag (util/sid.h): the first 4 characters of its socket ids */
	int loop;               /* engine.workers: the loop of this copy (gw_config_loop), 0 */

	char *listen_host;      /* default "0.0.0.0" */
	int listen_port;        /* default 3000 */
	int max_connections;    /* listen.max_connections; 0 = from the fd limit */
	size_t max_header_bytes; /* listen.max_header_bytes, default 16 KiB */
	int request_timeout_ms; /* listen.request_timeout_ms, default 30000 */
	char *tls_cert, *tls_key; /* both or neither; NULL = plain */

	struct {
		char *path;             /* default "/socket.io/" (always begins and ends with '/') */
		bool polling, websocket;/* from transports, default both */
		int ping_interval_ms;   /* 25000 */
		int ping_timeout_ms;    /* 20000 */
		size_t max_payload;     /* 1000000 */
		int connect_timeout_ms; /* 45000 */
		int upgrade_timeout_ms; /* 10000 */
		char **cors_origins;    /* default ["*"] */
		size_t n_cors_origins;
		bool cors_credentials;  /* false */
		bool cookie;            /* false: no io cookie */
		char *cookie_name;      /* "io" */
		char *echo_path;        /* "" = off; else normalized like path */
		gw_kv *headers;         /* extra response headers (names are RFC 9110 tokens,
					 * unique ignoring case; values one line) */
		size_t n_headers;
		size_t send_queue;      /* max queued packets per connection, default 1024 */
		bool per_message_deflate; /* default false */
		int parser;             /* GW_PARSER_*: the Socket.IO packet format, default json */
		bool allow_eio3;        /* also serve Engine.IO v3 / Socket.IO v4 clients
					 * (socket.io-client 2.x), default false */
		bool serve_client;      /* serve the socket.io-client bundle at {path}socket.io.js ... */
		char *client_dir;       /* where its files are; NULL = the build tree's, then the installed */
		int busy_poll_us;       /* service loop: spin this long after activity, 0 = off */
		int workers;            /* service loops, 1..GW_MAX_WORKERS (0 while unset: 1) */
	} engine;

	struct {
		char *plugin;           /* "memory" or path to .so */
		char *plugin_dir;       /* optional override of the plugin search dir, NULL */
		size_t inbound_queue;   /* max messages waiting for the service loop, 65536 */
		const cfg_node *options;/* adapter.options map (NULL when absent or null); points
					 * into root, valid until gw_config_free */
	} adapter;

	struct {
		char *prefix;           /* "sio" */
		/* Templates with {prefix}, {node_id} and {node_tag}, resolved at load. */
		char *in;               /* "{prefix}.in"  → resolved, e.g. "sio.in" */
		char *out;              /* "{prefix}.out" */
		char *reply;            /* "{prefix}.reply.{node_id}" */
		char *sessions;         /* "{prefix}.sessions": recovery snapshots, every node */
		char *node;             /* "{prefix}.node.{node_tag}": envelopes for this node's
					 * sockets only; "" = none. Another node's: gw_config_node_topic */
		size_t node_tag_at;     /* where {node_tag} stands in node */
	} topics;

	gw_nsp_config *nsps;      /* default: one namespace "/" */
	size_t n_nsps;

	struct {
		bool enabled;           /* true */
		char *token;            /* "" = no auth */
		size_t max_body;        /* max POST body, default 1 MiB */
		size_t sse_queue;       /* max queued messages per SSE client, default 1024 */
	} http_api;

	struct {
		bool enabled;           /* true */
	} metrics;

	struct {                  /* what SIGTERM and POST /api/drain do */
		int drain_ms;           /* close the sessions spread over this long; 0 = at once */
	} shutdown;

	struct {                  /* connection state recovery (socket.io's connectionStateRecovery) */
		int max_disconnection_ms; /* 0 = off (the default) */
		bool skip_auth;         /* true: a recovered socket is not authenticated again */
		size_t max_log_bytes;   /* the packets kept for replay, per node; default 64m */
	} recovery;

	struct {                  /* admin_ui: @socket.io/admin-ui's server side */
		bool enabled;           /* false */
		char *nsp;              /* "/admin"; also added to nsps (admin = true) */
		int auth;               /* GW_ADMIN_AUTH_* */
		char *username;         /* GW_ADMIN_AUTH_BASIC */
		char *password_hash;    /* bcrypt ($2a$/$2b$/$2y$), checked with crypt(3) */
		bool read_only;         /* false: the UI's join/leave/disconnect/emit work */
		int mode;               /* GW_ADMIN_*: production sends no socket lists or
					 * socket events, only server stats */
		char *server_id;        /* NULL: node_id */
	} admin_ui;

	struct {
		int level;              /* GW_LOG_*, default info */
	} log;

	cfg_node *root;           /* the whole tree, kept for plugin option validation */
} gw_config;

/* Load and validate a file. On error returns -GW_ECONFIG and writes one line
 * "file:line:col: key.path: message" into err ("file: message" when the file cannot
 * be read), or -GW_ENOMEM. On any error *out is left zeroed (gw_config_free on it is
 * a no-op). Nothing is logged. docs/configuration.md lists every key. */
int gw_config_load_file(const char *path, gw_config *out, char *err, size_t err_len);
/* Same, from a string (name is used in messages). */
int gw_config_load_string(const char *name, const char *yaml, size_t len, gw_config *out,
			  char *err, size_t err_len);
void gw_config_free(gw_config *cfg); /* frees everything and zeroes *cfg; NULL-safe */
/* Every key the gateway takes, as "engine.cors.origins" / "namespaces[].jwt.secret"
 * (maps and lists are walked, not listed themselves). */
void gw_config_foreach_key(void (*cb)(const char *path, void *arg), void *arg);

/* Find a namespace by name (name need not be NUL-terminated), NULL if not configured. */
/* The topic a client envelope of namespace nc goes to: the first event_topics entry
 * whose pattern matches event (events only; NULL for connect, disconnect, room events),
 * else nc's topic_in, else topics.in. nc may be NULL. */
const char *gw_config_in_topic(const gw_config *cfg, const gw_nsp_config *nc, const char *event);
/* The node topic of the node whose tag is tag (util/sid.h) into buf: false when node
 * topics are off or buf is too short. */
bool gw_config_node_topic(const gw_config *cfg, const char *tag, char *buf, size_t n);
/*
 * engine.workers: loop k's configuration into out, a shallow copy of base that differs
 * in its node tag (loop 0 keeps the node's; loop k another, none of taken[0..k-1]) and
 * so in topics.node: each loop is a node of its own on the node topics (util/sid.h).
 * 0 or -GW_ENOMEM. Free with gw_config_loop_free; base outlives it.
 */
int gw_config_loop(const gw_config *base, int k, const char (*taken)[GW_TAG_LEN + 1], gw_config *out);
void gw_config_loop_free(const gw_config *base, gw_config *loop);
/* "file:line:col" of the value of section.key (e.g. "engine", "serve_client") in the
 * loaded file, for errors found after loading; the file's name alone when absent. */
const char *gw_config_where(const gw_config *cfg, const char *section, const char *key, char *buf, size_t n);

/* The configuration of namespace `name`: the entry listing that name, else the first
 * `match` entry whose regex matches it, else NULL. */
const gw_nsp_config *gw_config_nsp(const gw_config *cfg, const char *name, size_t len);

/*
 * Validate adapter.options against a plugin's option table and resolve them into an
 * array of siogw_optval (defaults applied, values normalized). Unknown key → error
 * listing valid keys. *out and its strings are owned by the caller: free with
 * gw_config_optvals_free. Returns 0 or -GW_ECONFIG with err filled (file:line:col).
 */
int gw_config_plugin_options(const gw_config *cfg, const siogw_option *table, size_t n,
			     siogw_optval **out, size_t *n_out, char *err, size_t err_len);
void gw_config_optvals_free(siogw_optval *v, size_t n);

/*
 * A plugin refused resolved options (its check op): write `msg` as a config error,
 * "file:line:col: adapter.options.KEY: msg", at the key as written when vals[bad] was
 * given in adapter.options; at adapter.options (or adapter) when it was a default,
 * with " (the default)" appended; "file:line:col: adapter.options: msg" when bad is
 * SIZE_MAX. msg and err must not overlap. Returns -GW_ECONFIG.
 */
int gw_config_plugin_refused(const gw_config *cfg, const siogw_optval *vals, size_t n, size_t bad,
			     const char *msg, char *err, size_t err_len);

/* Print the option table as help text (for --plugin-help). */
void gw_config_print_options(const siogw_option *table, size_t n, void *file /* FILE* */);

/* The embedded default configuration (config/gateway.yaml compiled in). */
extern const char gw_config_default_yaml[];

#endif
