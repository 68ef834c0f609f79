/* test_config.c — gateway/config: tree, validation, defaults, plugin options.
 * argv[1] is the source root (every config/NAME.yaml there must load). */
#include "../test.h"

#include <glob.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <unistd.h>

#include "config/cfg_tree.h"
#include "config/config.h"
#include "util/err.h"
#include "util/log.h"

static const char *src_root = ".";

/* Load `yaml` as "gw.yaml"; expect failure with exactly `want`. */
static void expect_error(const char *yaml, const char *want, int line)
{
	gw_config cfg;
	char err[1024] = "";
	int rc = gw_config_load_string("gw.yaml", yaml, strlen(yaml), &cfg, err, sizeof err);
	if (rc != -GW_ECONFIG || strcmp(err, want) != 0) {
		fprintf(stderr, "%s:%d: rc %d, error\n  got:  %s\n  want: %s\n", __FILE__, line, rc, err, want);
		t_cur_failed = 1;
	}
	if (rc == 0)
		gw_config_free(&cfg);
}
#define EXPECT_ERROR(yaml, want) expect_error(yaml, want, __LINE__)

static int load(const char *yaml, gw_config *cfg)
{
	char err[1024] = "";
	int rc = gw_config_load_string("gw.yaml", yaml, strlen(yaml), cfg, err, sizeof err);
	if (rc != 0)
		fprintf(stderr, "unexpected error: %s\n", err);
	return rc;
}

TEST(default_yaml_has_design_defaults)
{
	unsetenv("HOSTNAME");
	unsetenv("SIO_API_TOKEN");
	gw_config c;
	char err[512];
	int rc = gw_config_load_string("<embedded>", gw_config_default_yaml, strlen(gw_config_default_yaml),
				       &c, err, sizeof err);
	CHECK_EQ_INT(rc, 0);
	if (rc)
		return;
	CHECK_STR(c.path, "<embedded>");
	CHECK_STR(c.node_id, "gw-1");
	CHECK_STR(c.listen_host, "0.0.0.0");
	CHECK_EQ_INT(c.listen_port, 3000);
	CHECK(c.tls_cert == NULL && c.tls_key == NULL);
	CHECK_STR(c.engine.path, "/socket.io/");
	CHECK(c.engine.polling && c.engine.websocket);
	CHECK_EQ_INT(c.engine.ping_interval_ms, 25000);
	CHECK_EQ_INT(c.engine.ping_timeout_ms, 20000);
	CHECK_EQ_INT(c.engine.max_payload, 1000000);
	CHECK_EQ_INT(c.engine.connect_timeout_ms, 45000);
	CHECK_EQ_INT(c.engine.upgrade_timeout_ms, 10000);
	CHECK_EQ_INT(c.engine.n_cors_origins, 1);
	CHECK_STR(c.engine.cors_origins[0], "*");
	CHECK(!c.engine.cors_credentials);
	CHECK(!c.engine.cookie);
	CHECK_STR(c.engine.cookie_name, "io");
	CHECK_STR(c.engine.echo_path, "");
	CHECK_EQ_INT(c.engine.n_headers, 0);
	CHECK_EQ_INT(c.engine.send_queue, 1024);
	CHECK(!c.engine.per_message_deflate);
	CHECK(!c.engine.allow_eio3);
	CHECK_EQ_INT(c.engine.busy_poll_us, 0);
	CHECK_STR(c.adapter.plugin, "memory");
	CHECK(c.adapter.plugin_dir == NULL);
	CHECK_EQ_INT(c.adapter.inbound_queue, 65536);
	CHECK(c.adapter.options != NULL && c.adapter.options->kind == CFG_MAP && c.adapter.options->n == 0);
	CHECK_STR(c.topics.prefix, "sio");
	CHECK_STR(c.topics.in, "sio.in");
	CHECK_STR(c.topics.out, "sio.out");
	CHECK_STR(c.topics.reply, "sio.reply.gw-1");
	CHECK_EQ_INT(strlen(c.node_tag), 4);
	{
		char want[64], other[64];
		snprintf(want, sizeof want, "sio.node.%s", c.node_tag);
		CHECK_STR(c.topics.node, want);
		CHECK(gw_config_node_topic(&c, "AbC_", other, sizeof other));
		CHECK_STR(other, "sio.node.AbC_");
		CHECK(!gw_config_node_topic(&c, "AbC_", other, 8)); /* too short */
	}
	CHECK_EQ_INT(c.n_nsps, 2);
	CHECK_STR(c.nsps[0].name, "/");
	CHECK_STR(c.nsps[1].name, "/chat");
	CHECK_EQ_INT(c.nsps[1].auth, GW_AUTH_NONE);
	CHECK_EQ_INT(c.nsps[1].auth_timeout_ms, 5000);
	CHECK_EQ_INT(c.nsps[1].n_events, 1);
	CHECK_STR(c.nsps[1].events[0], "*");
	CHECK_EQ_INT(c.nsps[1].n_routes, 0);
	CHECK(!c.nsps[1].room_events);
	CHECK(c.http_api.enabled);
	CHECK_STR(c.http_api.token, "");
	CHECK_EQ_INT(c.http_api.max_body, 1 << 20);
	CHECK_EQ_INT(c.http_api.sse_queue, 1024);
	CHECK(c.metrics.enabled);
	CHECK_EQ_INT(c.log.level, GW_LOG_INFO);
	CHECK(gw_config_nsp(&c, "/chat", 5) == &c.nsps[1]);
	CHECK(gw_config_nsp(&c, "/chatx", 5) == &c.nsps[1]); /* length-bounded */
	CHECK(gw_config_nsp(&c, "/cha", 4) == NULL);
	gw_config_free(&c);
	CHECK(c.root == NULL && c.nsps == NULL);
	gw_config_free(&c); /* idempotent after free */
}

TEST(empty_map_gets_every_default)
{
	gw_config c;
	if (load("{}", &c) != 0) {
		CHECK(0);
		return;
	}
	CHECK_STR(c.node_id, "gw-1");
	CHECK_EQ_INT(c.n_nsps, 1);
	CHECK_STR(c.nsps[0].name, "/");
	CHECK_EQ_INT(c.nsps[0].n_events, 1);
	CHECK_STR(c.nsps[0].events[0], "*");
	CHECK(c.adapter.options == NULL);
	CHECK_STR(c.topics.reply, "sio.reply.gw-1");
	CHECK_EQ_INT(c.engine.max_payload, 1000000);
	gw_config_free(&c);
}

TEST(every_key_set)
{
	const char *y =
		"node_id: n7\n"
		"listen: {host: 127.0.0.1, port: 8443, tls: {cert: c.pem, key: k.pem}}\n"
		"engine:\n"
		"  path: io\n"
		"  transports: [websocket]\n"
		"  ping_interval_ms: 100\n"
		"  ping_timeout_ms: 200\n"
		"  max_payload: 64k\n"
		"  connect_timeout_ms: 300\n"
		"  upgrade_timeout_ms: 400\n"
		"  cors: {origins: [\"https://a.example\", \"https://b.example\"], credentials: yes}\n"
		"  cookie: true\n"
		"  cookie_name: sticky\n"
		"  echo_path: /engine.io\n"
		"  headers: {X-Frame-Options: DENY, Cache-Control: no-store}\n"
		"  send_queue: 10\n"
		"  per_message_deflate: on\n"
		"  allow_eio3: true\n"
		"adapter: {plugin: ./libx.so, plugin_dir: /opt/p, inbound_queue: 99, options: {a: 1}}\n"
		"topics: {prefix: app, in: \"{prefix}.events\", out: fixed.out, reply: \"r.{node_id}.{prefix}\"}\n"
		"namespaces:\n"
		"  - name: /a\n"
		"    auth: backend\n"
		"    auth_timeout_ms: 700\n"
		"    events: [order, chat]\n"
		"    room_events: true\n"
		"    routes:\n"
		"      - {topic: \"chat.room.{room}\", event: message}\n"
		"      - {topic: chat.all, event: news, room: lobby}\n"
		"      - {topic: \"{x\", event: news}\n"
		"http_api: {enabled: false, token: s3cret, max_body: 2m, sse_queue: 5}\n"
		"metrics: {enabled: false}\n"
		"log: {level: debug}\n";
	gw_config c;
	/* the third route is bad: checked first that the error is positioned */
	EXPECT_ERROR(y, "gw.yaml:30:17: namespaces[0].routes[2].topic: unknown placeholder "
			"(only {room} is supported), got \"{x\"");
	char *ok = strdup(y);
	*strstr(ok, "      - {topic: \"{x\"") = '\0';
	strcat(ok, "http_api: {enabled: false, token: s3cret, max_body: 2m, sse_queue: 5}\n"
		   "metrics: {enabled: false}\nlog: {level: debug}\n");
	int rc = load(ok, &c);
	free(ok);
	CHECK_EQ_INT(rc, 0);
	if (rc)
		return;
	CHECK_STR(c.node_id, "n7");
	CHECK_STR(c.listen_host, "127.0.0.1");
	CHECK_EQ_INT(c.listen_port, 8443);
	CHECK_STR(c.tls_cert, "c.pem");
	CHECK_STR(c.tls_key, "k.pem");
	CHECK_STR(c.engine.path, "/io/");
	CHECK(!c.engine.polling && c.engine.websocket);
	CHECK_EQ_INT(c.engine.ping_interval_ms, 100);
	CHECK_EQ_INT(c.engine.ping_timeout_ms, 200);
	CHECK_EQ_INT(c.engine.max_payload, 65536);
	CHECK_EQ_INT(c.engine.connect_timeout_ms, 300);
	CHECK_EQ_INT(c.engine.upgrade_timeout_ms, 400);
	CHECK_EQ_INT(c.engine.n_cors_origins, 2);
	CHECK_STR(c.engine.cors_origins[1], "https://b.example");
	CHECK(c.engine.cors_credentials);
	CHECK(c.engine.cookie);
	CHECK_STR(c.engine.cookie_name, "sticky");
	CHECK_STR(c.engine.echo_path, "/engine.io/");
	CHECK_EQ_INT(c.engine.n_headers, 2);
	CHECK_STR(c.engine.headers[0].key, "X-Frame-Options");
	CHECK_STR(c.engine.headers[0].value, "DENY");
	CHECK_STR(c.engine.headers[1].key, "Cache-Control");
	CHECK_EQ_INT(c.engine.send_queue, 10);
	CHECK(c.engine.per_message_deflate);
	CHECK(c.engine.allow_eio3);
	CHECK_STR(c.adapter.plugin, "./libx.so");
	CHECK_STR(c.adapter.plugin_dir, "/opt/p");
	CHECK_EQ_INT(c.adapter.inbound_queue, 99);
	CHECK(c.adapter.options && c.adapter.options->n == 1);
	CHECK_STR(c.topics.in, "app.events");
	CHECK_STR(c.topics.out, "fixed.out");
	CHECK_STR(c.topics.reply, "r.n7.app");
	CHECK_EQ_INT(c.n_nsps, 1);
	CHECK_EQ_INT(c.nsps[0].auth, GW_AUTH_BACKEND);
	CHECK_EQ_INT(c.nsps[0].auth_timeout_ms, 700);
	CHECK_EQ_INT(c.nsps[0].n_events, 2);
	CHECK_STR(c.nsps[0].events[1], "chat");
	CHECK(c.nsps[0].room_events);
	CHECK_EQ_INT(c.nsps[0].n_routes, 2);
	CHECK_STR(c.nsps[0].routes[0].topic, "chat.room.{room}");
	CHECK_STR(c.nsps[0].routes[0].event, "message");
	CHECK(c.nsps[0].routes[0].room == NULL);
	CHECK_STR(c.nsps[0].routes[1].room, "lobby");
	CHECK(!c.http_api.enabled);
	CHECK_STR(c.http_api.token, "s3cret");
	CHECK_EQ_INT(c.http_api.max_body, 2 << 20);
	CHECK_EQ_INT(c.http_api.sse_queue, 5);
	CHECK(!c.metrics.enabled);
	CHECK_EQ_INT(c.log.level, GW_LOG_DEBUG);
	gw_config_free(&c);
}

TEST(repo_configs_load)
{
	char pat[4096];
	snprintf(pat, sizeof pat, "%s/config/*.yaml", src_root);
	glob_t g;
	int found = glob(pat, 0, NULL, &g) == 0 ? (int)g.gl_pathc : 0;
	CHECK(found >= 2); /* gateway.yaml and memory.yaml at least */
	for (int i = 0; i < found; i++) {
		gw_config c;
		char err[1024] = "";
		int rc = gw_config_load_file(g.gl_pathv[i], &c, err, sizeof err);
		if (rc != 0) {
			fprintf(stderr, "  %s: %s\n", g.gl_pathv[i], err);
			CHECK_EQ_INT(rc, 0);
		} else {
			CHECK_STR(c.path, g.gl_pathv[i]);
			gw_config_free(&c);
		}
	}
	if (found)
		globfree(&g);

	/* the DESIGN.md §1.3 example, verbatim */
	gw_config c;
	char err[1024] = "";
	int rc = gw_config_load_file("design.yaml", &c, err, sizeof err);
	CHECK_EQ_INT(rc, 0);
	if (rc == 0) {
		CHECK_EQ_INT(c.n_nsps, 2);
		CHECK_EQ_INT(c.nsps[1].auth, GW_AUTH_BACKEND);
		CHECK_EQ_INT(c.nsps[1].n_routes, 1);
		CHECK_STR(c.nsps[1].routes[0].topic, "chat.room.{room}");
		gw_config_free(&c);
	}
	rc = gw_config_load_file("bad.yaml", &c, err, sizeof err);
	CHECK_EQ_INT(rc, -GW_ECONFIG);
	CHECK_STR(err, "bad.yaml:3:21: engine.ping_interval_ms: expected an integer, got \"25s\"");
	CHECK(c.root == NULL && c.path == NULL);
	rc = gw_config_load_file("no-such-file.yaml", &c, err, sizeof err);
	CHECK_EQ_INT(rc, -GW_ECONFIG);
	CHECK_STR(err, "no-such-file.yaml: cannot open: No such file or directory");
}

TEST(env_substitution)
{
	gw_config c;
	setenv("GWT_PORT", "4000", 1);
	setenv("GWT_EMPTY", "", 1);
	setenv("GWT_NODE", "edge-3", 1);
	unsetenv("GWT_UNSET");
	const char *y =
		"node_id: ${GWT_NODE:-ignored}\n"
		"listen: {port: ${GWT_PORT}}\n"
		"engine: {send_queue: \"${GWT_UNSET:-77}\", cookie_name: ${GWT_EMPTY:-fallback}}\n"
		"http_api: {token: \"a${GWT_UNSET}b$HOME$\"}\n"
		"topics: {prefix: \"${GWT_NODE}.${GWT_UNSET:-x}\"}\n";
	if (load(y, &c) == 0) {
		CHECK_STR(c.node_id, "edge-3");
		CHECK_EQ_INT(c.listen_port, 4000);
		CHECK_EQ_INT(c.engine.send_queue, 77);
		CHECK_STR(c.engine.cookie_name, "fallback"); /* empty counts as unset for :- */
		CHECK_STR(c.http_api.token, "ab$HOME$");   /* unset, no default → "" */
		CHECK_STR(c.topics.prefix, "edge-3.x");
		CHECK_STR(c.topics.in, "edge-3.x.in");
		gw_config_free(&c);
	} else {
		CHECK(0);
	}
	/* ${VAR:-default} works unquoted inside flow collections too (DESIGN's example) */
	if (load("listen: {port: ${GWT_UNSET:-3100}, host: ${GWT_NODE}}\nengine: {transports: [${GWT_UNSET:-polling}]}\n",
		 &c) == 0) {
		CHECK_EQ_INT(c.listen_port, 3100);
		CHECK_STR(c.listen_host, "edge-3");
		CHECK(c.engine.polling && !c.engine.websocket);
		gw_config_free(&c);
	} else {
		CHECK(0);
	}
	/* keys are not substituted; an unset variable in a number is an empty string */
	EXPECT_ERROR("listen: {port: ${GWT_UNSET}}\n",
		     "gw.yaml:1:16: listen.port: expected an integer, got \"\"");
	EXPECT_ERROR("${GWT_NODE}: 1\n",
		     "gw.yaml:1:1: ${GWT_NODE}: unknown key (valid keys: node_id, listen, engine, adapter, "
		     "topics, namespaces, http_api, metrics, admin_ui, recovery, shutdown, log)");
	EXPECT_ERROR("node_id: ${1X}\n",
		     "gw.yaml:1:10: node_id: bad variable name after \"${\" (expected [A-Za-z_][A-Za-z0-9_]*)");
	EXPECT_ERROR("node_id: \"${GWT_NODE\"\n",
		     "gw.yaml:1:10: node_id: unterminated \"${GWT_NODE\" (expected '}' or ':-default}')");
	EXPECT_ERROR("node_id: \"${GWT_NODE:-abc\"\n",
		     "gw.yaml:1:10: node_id: unterminated \"${GWT_NODE:-\" (missing '}')");
	EXPECT_ERROR("node_id: ${GWT_EMPTY}\n", "gw.yaml:1:10: node_id: must not be empty");
}

TEST(errors_unknown_keys)
{
	EXPECT_ERROR("node_id: a\nengine:\n  pingInterval: 5\n",
		     "gw.yaml:3:3: engine.pingInterval: unknown key (valid keys: path, transports, "
		     "ping_interval_ms, ping_timeout_ms, max_payload, connect_timeout_ms, upgrade_timeout_ms, "
		     "cors, cookie, cookie_name, echo_path, headers, send_queue, serve_client, client_dir, parser, allow_eio3, per_message_deflate, busy_poll_us, workers)");
	/* a control character in a quoted key is escaped: the error stays one line */
	EXPECT_ERROR("\"a\\nb\": 1\n",
		     "gw.yaml:1:1: a\\x0ab: unknown key (valid keys: node_id, listen, engine, adapter, "
		     "topics, namespaces, http_api, metrics, admin_ui, recovery, shutdown, log)");
	EXPECT_ERROR("engine: {cors: {origin: [a]}}\n",
		     "gw.yaml:1:17: engine.cors.origin: unknown key (valid keys: origins, credentials)");
	EXPECT_ERROR("namespaces:\n  - name: /\n  - {name: /x, rooms: 1}\n",
		     "gw.yaml:3:16: namespaces[1].rooms: unknown key (valid keys: name, match, auth, auth_timeout_ms, "
		     "ack, events, routes, room_events, topic_in, event_topics, limits, jwt, recovery)");
	EXPECT_ERROR("namespaces: [{name: /, routes: [{topic: t, event: e, to: r}]}]\n",
		     "gw.yaml:1:54: namespaces[0].routes[0].to: unknown key (valid keys: topic, event, room)");
	EXPECT_ERROR("log: {level: info, file: x}\n",
		     "gw.yaml:1:20: log.file: unknown key (valid keys: level)");
	EXPECT_ERROR("listen: {tls: {cert: a, key: b, ca: c}}\n",
		     "gw.yaml:1:33: listen.tls.ca: unknown key (valid keys: cert, key)");
}

TEST(errors_types)
{
	EXPECT_ERROR("engine:\n  ping_interval_ms: abc\n",
		     "gw.yaml:2:21: engine.ping_interval_ms: expected an integer, got \"abc\"");
	EXPECT_ERROR("engine:\n  ping_interval_ms: 2.5\n",
		     "gw.yaml:2:21: engine.ping_interval_ms: expected an integer, got \"2.5\"");
	EXPECT_ERROR("namespaces:\n  - name: /\n  - name: /chat\n    events: order\n",
		     "gw.yaml:4:13: namespaces[1].events: expected a list, got \"order\"");
	EXPECT_ERROR("engine: [a]\n", "gw.yaml:1:9: engine: expected a map, got a list");
	EXPECT_ERROR("engine: {cookie: maybe}\n",
		     "gw.yaml:1:18: engine.cookie: expected true or false, got \"maybe\"");
	EXPECT_ERROR("engine: {max_payload: 12q}\n",
		     "gw.yaml:1:23: engine.max_payload: expected a size (bytes, or with k/m/g: 64k), got \"12q\"");
	EXPECT_ERROR("node_id: {a: 1}\n", "gw.yaml:1:10: node_id: expected a string, got a map");
	EXPECT_ERROR("log: {level: verbose}\n",
		     "gw.yaml:1:14: log.level: expected one of error, warn, info, debug, got \"verbose\"");
	EXPECT_ERROR("namespaces: [{name: /, auth: token}]\n",
		     "gw.yaml:1:30: namespaces[0].auth: expected one of none, backend, jwt, got \"token\"");
	EXPECT_ERROR("engine: {transports: []}\n",
		     "gw.yaml:1:22: engine.transports: needs at least one of polling, websocket");
	EXPECT_ERROR("engine: {transports: [polling, ws]}\n",
		     "gw.yaml:1:32: engine.transports[1]: expected one of polling, websocket, got \"ws\"");
	EXPECT_ERROR("engine: {cors: {origins: [a, ~]}}\n",
		     "gw.yaml:1:30: engine.cors.origins[1]: expected a string, got null");
	EXPECT_ERROR("engine: {headers: {\"Bad Name\": x}}\n",
		     "gw.yaml:1:20: engine.headers.Bad Name: not a valid HTTP header name");
	EXPECT_ERROR("engine: {headers: {X-A: 1, x-a: 2}}\n",
		     "gw.yaml:1:28: engine.headers.x-a: duplicate header (header names ignore case)");
	EXPECT_ERROR("engine: {path: \"/a?b\"}\n",
		     "gw.yaml:1:16: engine.path: must be a plain URL path (no '?', '#' or spaces)");
	EXPECT_ERROR("engine: {path: \"\"}\n", "gw.yaml:1:16: engine.path: must not be empty");
	EXPECT_ERROR("adapter: {options: [a]}\n",
		     "gw.yaml:1:20: adapter.options: expected a map, got a list");
	EXPECT_ERROR("topics: {in: \"{prefix}.{nodeid}\"}\n",
		     "gw.yaml:1:14: topics.in: unknown placeholder (valid: {prefix}, {node_id}), got "
		     "\"{prefix}.{nodeid}\"");
	EXPECT_ERROR("topics: {node: \"{prefix}.node\"}\n",
		     "gw.yaml:1:16: topics.node: must hold {node_tag}: a socket id names its node's topic by it "
		     "(\"\" turns node topics off)");
	EXPECT_ERROR("topics: {node: \"n.{node_tag}.{node_tag}\"}\n",
		     "gw.yaml:1:16: topics.node: {node_tag} more than once");
	EXPECT_ERROR("topics: {in: \"i.{node_tag}\"}\n", "gw.yaml:1:14: topics.in: {node_tag} is for topics.node only");
	EXPECT_ERROR("topics: {node: \"{prefix}.out\", out: \"{prefix}.out{node_tag}\"}\n",
		     "gw.yaml:1:37: topics.out: {node_tag} is for topics.node only");
	EXPECT_ERROR("topics:\n  reply: \"r}.{node_id}\"\n",
		     "gw.yaml:2:10: topics.reply: unbalanced '}' in topic template");
	/* a null value means "use the default"; quoted numbers are numbers */
	gw_config c;
	if (load("listen: {port: \"8080\", host: ~}\nengine: {path: /}\nnamespaces:\n", &c) == 0) {
		CHECK_EQ_INT(c.listen_port, 8080);
		CHECK_STR(c.listen_host, "0.0.0.0");
		CHECK_STR(c.engine.path, "/");
		CHECK_EQ_INT(c.n_nsps, 1);
		gw_config_free(&c);
	} else {
		CHECK(0);
	}
}

TEST(errors_ranges)
{
	EXPECT_ERROR("listen: {port: 70000}\n", "gw.yaml:1:16: listen.port: 70000 is out of range (1..65535)");
	EXPECT_ERROR("listen: {port: 0}\n", "gw.yaml:1:16: listen.port: 0 is out of range (1..65535)");
	EXPECT_ERROR("engine: {max_payload: 2g}\n",
		     "gw.yaml:1:23: engine.max_payload: 2g is out of range (1..1073741824 bytes)");
	EXPECT_ERROR("engine: {ping_timeout_ms: -5}\n",
		     "gw.yaml:1:27: engine.ping_timeout_ms: -5 is out of range (1..86400000)");
	EXPECT_ERROR("listen: {port: 99999999999999999999}\n",
		     "gw.yaml:1:16: listen.port: expected an integer, got \"99999999999999999999\"");
}

TEST(errors_tree)
{
	EXPECT_ERROR("engine:\n  path: /a/\n  cookie: true\n  path: /b/\n",
		     "gw.yaml:4:3: engine.path: duplicate key (first at 2:3)");
	EXPECT_ERROR("- a\n- b\n", "gw.yaml:1:1: expected a map at the top level, got a list");
	EXPECT_ERROR("just text\n", "gw.yaml:1:1: expected a map at the top level, got \"just text\"");
	EXPECT_ERROR("", "gw.yaml:1:1: the configuration is empty (expected a map of settings)");
	EXPECT_ERROR("# only a comment\n", "gw.yaml:1:1: the configuration is empty (expected a map of settings)");
	EXPECT_ERROR("engine:\n  path: /a/\n   cookie: true\n",
		     "gw.yaml:3:10: syntax error: mapping values are not allowed in this context");
	EXPECT_ERROR("engine: {path: /a/\nlog: {}\n",
		     "gw.yaml:2:4: syntax error: did not find expected ',' or '}' "
		     "(while parsing a flow mapping at 1:9)");
	EXPECT_ERROR("base: &b {port: 1}\n", "gw.yaml:1:7: base: anchors (&b) are not supported: write the value out");
	EXPECT_ERROR("listen: *b\n", "gw.yaml:1:9: listen: aliases (*b) are not supported: write the value out");
	EXPECT_ERROR("listen:\n  <<: {port: 1}\n",
		     "gw.yaml:2:3: listen.<<: merge keys (<<) are not supported: write the keys out");
	EXPECT_ERROR("node_id: a\n---\nnode_id: b\n",
		     "gw.yaml:2:1: multiple documents are not supported (one config per file)");
	EXPECT_ERROR("listen: {port: !!int 3}\n", "gw.yaml:1:16: listen.port: tags (tag:yaml.org,2002:int) are not supported");
	EXPECT_ERROR("!%0A\n[", "gw.yaml:1:1: tags (!\\x0a) are not supported"); /* a tag decoding to a newline stays one line */
	EXPECT_ERROR("? [a]\n: 1\n", "gw.yaml:1:3: keys must be strings, not lists");
	EXPECT_ERROR("node_id: \"a\\0b\"\n", "gw.yaml:1:10: node_id: NUL character in value");
	EXPECT_ERROR("node_id: \"\xff\"\n", "gw.yaml:1:11: syntax error: invalid leading UTF-8 octet");

	/* 70 nested lists: the 65th level is refused, 64 indexes into the path */
	char deep[400] = "a: ", want[600] = "gw.yaml:1:68: a";
	for (int i = 0; i < 70; i++)
		strcat(deep, "[");
	for (int i = 0; i < 64; i++)
		strcat(want, "[0]");
	strcat(want, ": nesting deeper than 64 levels");
	EXPECT_ERROR(deep, want);
}

TEST(errors_namespaces_and_routes)
{
	EXPECT_ERROR("namespaces:\n  - name: chat\n",
		     "gw.yaml:2:11: namespaces[0].name: must start with '/', got \"chat\"");
	EXPECT_ERROR("namespaces:\n  - name: /chat\n  - name: /\n  - name: /chat\n",
		     "gw.yaml:4:11: namespaces[2].name: duplicate namespace \"/chat\" (first at 2:11)");
	EXPECT_ERROR("namespaces: []\n", "gw.yaml:1:13: namespaces: needs at least one entry");
	EXPECT_ERROR("namespaces:\n  - auth: backend\n", "gw.yaml:2:5: namespaces[0].name: required key missing (or match, for dynamic namespaces)");
	EXPECT_ERROR("namespaces:\n  - name:\n", "gw.yaml:2:10: namespaces[0].name: required key missing (or match, for dynamic namespaces)");
	EXPECT_ERROR("namespaces:\n  - /chat\n", "gw.yaml:2:5: namespaces[0]: expected a map, got \"/chat\"");
	EXPECT_ERROR("namespaces:\n  - name: /\n    routes:\n      - {topic: \"a.{room}.{room}\", event: m}\n",
		     "gw.yaml:4:17: namespaces[0].routes[0].topic: at most one {room} placeholder, got "
		     "\"a.{room}.{room}\"");
	EXPECT_ERROR("namespaces:\n  - name: /\n    routes:\n      - {topic: \"a.{room}.x\", event: m}\n",
		     "gw.yaml:4:17: namespaces[0].routes[0].topic: {room} must end the topic, got \"a.{room}.x\"");
	EXPECT_ERROR("namespaces:\n  - name: /\n    routes:\n      - {topic: \"{room}\", event: m}\n",
		     "gw.yaml:4:17: namespaces[0].routes[0].topic: needs a fixed prefix before {room}, got \"{room}\"");
	EXPECT_ERROR("namespaces:\n  - name: /\n    routes:\n      - {topic: \"a.{rooms}\", event: m}\n",
		     "gw.yaml:4:17: namespaces[0].routes[0].topic: unknown placeholder (only {room} is "
		     "supported), got \"a.{rooms}\"");
	EXPECT_ERROR("namespaces:\n  - name: /\n    routes:\n      - {topic: bad.all, event: disconnect}\n",
		     "gw.yaml:4:33: namespaces[0].routes[0].event: \"disconnect\" is a reserved event name");
	EXPECT_ERROR("namespaces:\n  - name: /\n    routes:\n      - {topic: \"a.{room}\", event: m, room: r}\n",
		     "gw.yaml:4:45: namespaces[0].routes[0].room: not allowed when the topic has a {room} placeholder");
	EXPECT_ERROR("namespaces:\n  - name: /\n    routes:\n      - {topic: a}\n",
		     "gw.yaml:4:9: namespaces[0].routes[0].event: required key missing");
	EXPECT_ERROR("namespaces:\n  - name: /\n    events: [\"\"]\n",
		     "gw.yaml:3:14: namespaces[0].events[0]: must not be empty");
}

/* namespaces[].topic_in and event_topics choose where client envelopes go */
TEST(inbound_topics)
{
	gw_config cfg;
	if (load("topics: {prefix: app}\n"
		 "namespaces:\n"
		 "  - name: /\n"
		 "  - name: /orders\n"
		 "    topic_in: orders.in\n"
		 "    event_topics:\n"
		 "      - {event: \"payment.*\", topic: payments.in}\n"
		 "      - {event: refund, topic: refunds.in}\n"
		 "      - {event: \"*\", topic: catchall.in}\n"
		 "  - name: /pay\n"
		 "    event_topics: [{event: charge, topic: charges.in}]\n",
		 &cfg))
		return;
	const gw_nsp_config *root = gw_config_nsp(&cfg, "/", 1), *orders = gw_config_nsp(&cfg, "/orders", 7),
			    *pay = gw_config_nsp(&cfg, "/pay", 4);
	CHECK_STR(gw_config_in_topic(&cfg, root, "x"), "app.in");
	CHECK_STR(gw_config_in_topic(&cfg, NULL, "x"), "app.in");
	CHECK_STR(gw_config_in_topic(&cfg, orders, NULL), "orders.in");       /* connect, disconnect */
	CHECK_STR(gw_config_in_topic(&cfg, orders, "payment.card"), "payments.in");
	CHECK_STR(gw_config_in_topic(&cfg, orders, "payment."), "payments.in");
	CHECK_STR(gw_config_in_topic(&cfg, orders, "refund"), "refunds.in");
	CHECK_STR(gw_config_in_topic(&cfg, orders, "refunds"), "catchall.in"); /* names match exactly */
	CHECK_STR(gw_config_in_topic(&cfg, pay, "charge"), "charges.in");
	CHECK_STR(gw_config_in_topic(&cfg, pay, "other"), "app.in");
	CHECK_STR(gw_config_in_topic(&cfg, pay, NULL), "app.in");
	gw_config_free(&cfg);
	EXPECT_ERROR("namespaces:\n  - name: /\n    event_topics: [{event: \"pay*ment\", topic: t}]\n",
		     "gw.yaml:3:28: namespaces[0].event_topics[0].event: '*' only at the end (a prefix: \"payment.*\"), "
		     "got \"pay*ment\"");
	EXPECT_ERROR("namespaces:\n  - name: /\n    event_topics: [{event: a}]\n",
		     "gw.yaml:3:20: namespaces[0].event_topics[0].topic: required key missing");
	EXPECT_ERROR("namespaces:\n  - name: /\n    topic_in: sio.out\n",
		     "gw.yaml:3:15: namespaces[0].topic_in: \"sio.out\" is a topic the gateway consumes (topics.out): "
		     "client envelopes would come back as commands");
	EXPECT_ERROR("node_id: n1\nnamespaces:\n  - name: /\n    event_topics: [{event: a, topic: sio.reply.n1}]\n",
		     "gw.yaml:4:38: namespaces[0].event_topics[0].topic: \"sio.reply.n1\" is a topic the gateway consumes "
		     "(topics.reply): client envelopes would come back as commands");
	EXPECT_ERROR("namespaces:\n  - name: /\n    topic_in: \"{prefix}.x\"\n",
		     "gw.yaml:3:15: namespaces[0].topic_in: no placeholders here (write the topic out), got \"{prefix}.x\"");
	EXPECT_ERROR("namespaces:\n  - name: /\n    topic_in: \"\"\n",
		     "gw.yaml:3:15: namespaces[0].topic_in: must not be empty");
}

/* auth: jwt — the verifier is built at load, so --check sees bad keys */
TEST(jwt_namespaces)
{
	static const char sec[] = "secret: 0123456789abcdef0123456789abcdef";
	char yaml[1024];
	gw_config cfg;
	snprintf(yaml, sizeof yaml,
		 "namespaces:\n  - name: /\n  - name: /secure\n    auth: jwt\n    jwt: {algorithms: [HS256], %s}\n", sec);
	if (load(yaml, &cfg) == 0) {
		const gw_nsp_config *n = gw_config_nsp(&cfg, "/secure", 7);
		CHECK(n && n->auth == GW_AUTH_JWT && n->verifier);
		CHECK(n && n->jwt.require_exp && n->jwt.leeway_ms == 0 && n->jwt.token_from == GW_TOKEN_AUTH);
		CHECK(gw_config_nsp(&cfg, "/", 1)->verifier == NULL);
		gw_config_free(&cfg);
	} else {
		CHECK(0);
	}
	/* an RSA key file, for RS256 and against ES256 */
	char path[] = "/tmp/siogw-jwt-XXXXXX";
	int fd = mkstemp(path);
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	CHECK(f && k && PEM_write_PUBKEY(f, k));
	if (f)
		fclose(f);
	EVP_PKEY_free(k);
	snprintf(yaml, sizeof yaml,
		 "namespaces:\n  - name: /\n    auth: jwt\n    jwt:\n      algorithms: [RS256]\n      public_key_file: %s\n"
		 "      token_from: header.authorization\n      leeway_ms: 1500\n      require_exp: false\n",
		 path);
	if (load(yaml, &cfg) == 0) {
		const gw_nsp_config *n = &cfg.nsps[0];
		CHECK(n->verifier && n->jwt.token_from == GW_TOKEN_HEADER && n->jwt.leeway_ms == 1500 && !n->jwt.require_exp);
		gw_config_free(&cfg);
	} else {
		CHECK(0);
	}
	char want[512];
	snprintf(yaml, sizeof yaml, "namespaces:\n  - name: /\n    auth: jwt\n    jwt:\n      algorithms: [ES256]\n"
		 "      public_key_file: %s\n", path);
	EXPECT_ERROR(yaml, "gw.yaml:6:24: namespaces[0].jwt.public_key_file: ES256 needs an EC key on P-256");
	unlink(path);
	snprintf(want, sizeof want, "gw.yaml:6:24: namespaces[0].jwt.public_key_file: cannot read %s: No such file or directory", path);
	expect_error(yaml, want, __LINE__);

	EXPECT_ERROR("namespaces:\n  - name: /\n    auth: jwt\n",
		     "gw.yaml:3:11: namespaces[0].jwt: auth: jwt needs a jwt map (algorithms, and secret or public_key_file)");
	EXPECT_ERROR("namespaces:\n  - name: /\n    jwt: {algorithms: [HS256]}\n",
		     "gw.yaml:3:10: namespaces[0].jwt: only used with auth: jwt");
	EXPECT_ERROR("namespaces:\n  - name: /\n    auth: jwt\n    jwt: {secret: x}\n",
		     "gw.yaml:4:10: namespaces[0].jwt: needs at least one algorithm (HS256, RS256, ES256)");
	EXPECT_ERROR("namespaces:\n  - name: /\n    auth: jwt\n    jwt: {algorithms: [HS256, none], secret: x}\n",
		     "gw.yaml:4:31: namespaces[0].jwt.algorithms[1]: unknown algorithm \"none\" (HS256, RS256, ES256)");
	EXPECT_ERROR("namespaces:\n  - name: /\n    auth: jwt\n    jwt: {algorithms: [HS256], secret: short}\n",
		     "gw.yaml:4:40: namespaces[0].jwt.secret: an HS256 secret needs at least 32 bytes (RFC 7518 §3.2), got 5");
	EXPECT_ERROR("namespaces:\n  - name: /\n    auth: jwt\n    jwt: {algorithms: [RS256]}\n",
		     "gw.yaml:4:10: namespaces[0].jwt: RS256 needs a public key");
	EXPECT_ERROR("namespaces:\n  - name: /\n    auth: jwt\n    jwt: {algorithms: [HS256], token_from: cookie}\n",
		     "gw.yaml:4:44: namespaces[0].jwt.token_from: expected one of auth.token, query.token, "
		     "header.authorization, got \"cookie\"");
}

/* namespaces[].match: dynamic namespaces; a listed name wins over any match */
TEST(dynamic_namespaces)
{
	gw_config cfg;
	if (load("namespaces:\n"
		 "  - match: \"^/tenant-[a-z0-9]+$\"\n"
		 "    auth: backend\n"
		 "  - name: /tenant-vip\n"
		 "  - match: '^/q\\.x\"?$'\n"
		 "  - match: \"^/\"\n",
		 &cfg) == 0) {
		const gw_nsp_config *t = gw_config_nsp(&cfg, "/tenant-a1", 10);
		CHECK(t == &cfg.nsps[0] && t->auth == GW_AUTH_BACKEND && t->name == NULL);
		CHECK(gw_config_nsp(&cfg, "/tenant-vip", 11) == &cfg.nsps[1]); /* listed first, and wins */
		CHECK(gw_config_nsp(&cfg, "/tenant-A1", 10) == &cfg.nsps[3]);  /* as written: case matters */
		CHECK(gw_config_nsp(&cfg, "/tenant-a1/x", 12) == &cfg.nsps[3]);
		CHECK(gw_config_nsp(&cfg, "/q.x\"", 5) == &cfg.nsps[2]);
		CHECK(gw_config_nsp(&cfg, "/qax", 4) == &cfg.nsps[3]);
		CHECK(gw_config_nsp(&cfg, "x/tenant-a1", 11) == NULL);
		CHECK(gw_config_nsp(&cfg, "/tenant-a1\0", 11) == NULL); /* a NUL never matches */
		CHECK_STR(cfg.nsps[0].label, "^/tenant-[a-z0-9]+$");
		CHECK_STR(cfg.nsps[2].label, "^/q\\\\.x\\\"?$");           /* escaped for a metric label */
		gw_config_free(&cfg);
	} else {
		CHECK(0);
	}
	EXPECT_ERROR("namespaces:\n  - name: /a\n    match: \"^/a\"\n",
		     "gw.yaml:3:12: namespaces[0].match: an entry has a name or a match, not both");
	EXPECT_ERROR("namespaces:\n  - match: \"^/(a\"\n",
		     "gw.yaml:2:12: namespaces[0].match: not a POSIX extended regular expression: Unmatched ( or \\(");
	EXPECT_ERROR("namespaces:\n  - match: \"^/a\"\n    routes: [{topic: t, event: e}]\n",
		     "gw.yaml:3:13: namespaces[0].routes: not allowed beside match (a dynamic namespace has no routes)");
	EXPECT_ERROR("namespaces:\n  - match: \"\"\n", "gw.yaml:2:12: namespaces[0].match: must not be empty");
}

/* admin_ui: its namespace joins the list (served by the gateway), auth is explicit */
TEST(admin_ui)
{
	static const char hash[] = "$2a$10$D/RqjTJAuUdplOosbfvAMOuqrMo8AZ5K2QZ0ZwCGXUo7gfH2lehrC";
	gw_config cfg;
	char yaml[512];
	snprintf(yaml, sizeof yaml,
		 "namespaces: [{name: /}, {match: \"^/\"}]\n"
		 "admin_ui:\n  enabled: true\n  auth: {username: admin, password_hash: \"%s\"}\n", hash);
	if (load(yaml, &cfg) == 0) {
		CHECK_EQ_INT(cfg.n_nsps, 3);
		const gw_nsp_config *a = gw_config_nsp(&cfg, "/admin", 6); /* the name wins over the match */
		CHECK(a == &cfg.nsps[2] && a->admin && a->auth == GW_AUTH_BACKEND && !cfg.nsps[0].admin);
		CHECK(a->n_events == 1 && !strcmp(a->events[0], "*"));
		CHECK_STR(cfg.admin_ui.username, "admin");
		CHECK_STR(cfg.admin_ui.password_hash, hash);
		CHECK(cfg.admin_ui.auth == GW_ADMIN_AUTH_BASIC && !cfg.admin_ui.read_only);
		CHECK(cfg.admin_ui.mode == GW_ADMIN_DEVELOPMENT && cfg.admin_ui.server_id == NULL);
		gw_config_free(&cfg);
	} else {
		CHECK(0);
	}
	if (load("admin_ui: {enabled: true, namespace: /ops, auth: false, read_only: true, mode: production, "
		 "server_id: eu-1}\n", &cfg) == 0) {
		const gw_nsp_config *a = gw_config_nsp(&cfg, "/ops", 4);
		CHECK(a && a->admin && a->auth == GW_AUTH_NONE && cfg.admin_ui.auth == GW_ADMIN_AUTH_NONE);
		CHECK(cfg.admin_ui.read_only && cfg.admin_ui.mode == GW_ADMIN_PRODUCTION);
		CHECK_STR(cfg.admin_ui.server_id, "eu-1");
		gw_config_free(&cfg);
	} else {
		CHECK(0);
	}
	/* off: nothing added, auth not needed */
	if (load("admin_ui: {enabled: false}\n", &cfg) == 0) {
		CHECK(cfg.n_nsps == 1 && !gw_config_nsp(&cfg, "/admin", 6));
		gw_config_free(&cfg);
	} else {
		CHECK(0);
	}
	EXPECT_ERROR("admin_ui: {enabled: true}\n",
		     "gw.yaml:1:11: admin_ui.auth: required when enabled: {username, password_hash}, or false to let "
		     "anyone in");
	EXPECT_ERROR("admin_ui: {enabled: true, auth: true}\n",
		     "gw.yaml:1:33: admin_ui.auth: expected {username, password_hash}, or false to let anyone in, got \"true\"");
	EXPECT_ERROR("admin_ui: {enabled: true, auth: {username: a, password_hash: secret}}\n",
		     "gw.yaml:1:62: admin_ui.auth.password_hash: not a bcrypt hash ($2b$10$ and 53 characters, as "
		     "bcrypt/bcryptjs hash() makes)");
	EXPECT_ERROR("admin_ui: {enabled: true, auth: {password_hash: x}}\n",
		     "gw.yaml:1:33: admin_ui.auth.username: required key missing");
	EXPECT_ERROR("admin_ui: {enabled: true, auth: false, namespace: admin}\n",
		     "gw.yaml:1:51: admin_ui.namespace: must start with '/', got \"admin\"");
	EXPECT_ERROR("namespaces: [{name: /}, {name: /admin}]\nadmin_ui: {enabled: true, auth: false}\n",
		     "gw.yaml:2:11: admin_ui.namespace: \"/admin\" is also namespaces[1]: the admin namespace is the "
		     "gateway's own");
	EXPECT_ERROR("admin_ui: {enabled: true, auth: false, mode: dev}\n",
		     "gw.yaml:1:46: admin_ui.mode: expected one of development, production, got \"dev\"");
}

/* docs/configuration.md names every key (its last part, in backticks) */
static void doc_count(const char *path, void *arg)
{
	(void)path;
	(*(int *)arg)++;
}

typedef struct doc_check {
	char *doc;
	int missing;
} doc_check;

static void doc_has(const char *path, void *arg)
{
	doc_check *d = arg;
	const char *last = strrchr(path, '.');
	last = last ? last + 1 : path;
	char want[128], want2[160] = "";
	snprintf(want, sizeof want, "`%s`", last);
	/* or its last two parts, as the doc writes cors.origins */
	const char *prev = last - 1;
	while (prev > path && prev[-1] != '.')
		prev--;
	if (last > path)
		snprintf(want2, sizeof want2, "`%s`", prev);
	if (!strstr(d->doc, want) && !(want2[0] && strstr(d->doc, want2))) {
		fprintf(stderr, "docs/configuration.md does not mention %s (%s)\n", path, want);
		d->missing++;
	}
}

TEST(configuration_doc_names_every_key)
{
	char p[1024];
	snprintf(p, sizeof p, "%s/docs/configuration.md", src_root);
	FILE *f = fopen(p, "rb");
	CHECK(f);
	if (!f)
		return;
	doc_check d = {.doc = calloc(1, 1 << 20)};
	size_t n = fread(d.doc, 1, (1 << 20) - 1, f);
	fclose(f);
	CHECK(n > 0);
	int keys = 0;
	gw_config_foreach_key(doc_count, &keys);
	CHECK(keys > 60);
	gw_config_foreach_key(doc_has, &d);
	CHECK_EQ_INT(d.missing, 0);
	free(d.doc);
}

TEST(errors_tls)
{
	/* (and the one cross-check of engine keys) */
	EXPECT_ERROR("engine:\n  parser: msgpack\n  allow_eio3: true\n",
		     "gw.yaml:3:15: engine.allow_eio3: Engine.IO v3 clients are served with engine.parser: json only");
	EXPECT_ERROR("listen:\n  tls: {cert: a.pem}\n",
		     "gw.yaml:2:8: listen.tls: needs both cert and key (key is missing)");
	EXPECT_ERROR("listen:\n  tls:\n    key: k.pem\n",
		     "gw.yaml:3:5: listen.tls: needs both cert and key (cert is missing)");
	gw_config c;
	if (load("listen: {tls: ~}\n", &c) == 0) { /* null tls = plain */
		CHECK(c.tls_cert == NULL);
		gw_config_free(&c);
	} else {
		CHECK(0);
	}
}

TEST(tree_positions_and_quoting)
{
	cfg_node *t = NULL;
	char err[256];
	const char *y = "a: 0x1F\nb: \"0x1F\"\nc:\nd: ~\ne: [x, {f: 1}]\n";
	CHECK_EQ_INT(cfg_tree_parse("t.yaml", y, strlen(y), &t, err, sizeof err), 0);
	if (!t)
		return;
	CHECK(t->kind == CFG_MAP && t->n == 5);
	const cfg_node *a = cfg_map_get(t, "a"), *b = cfg_map_get(t, "b");
	CHECK_STR(a->str, "0x1F");
	CHECK(!a->quoted && b->quoted);
	CHECK_EQ_INT(b->line, 2);
	CHECK_EQ_INT(b->col, 4);
	CHECK(cfg_map_get(t, "c")->is_null && cfg_map_get(t, "d")->is_null);
	const cfg_node *e = cfg_map_get(t, "e");
	CHECK(e->kind == CFG_SEQ && e->n == 2);
	CHECK_EQ_INT(e->items[1]->line, 5);
	CHECK_EQ_INT(e->items[1]->col, 8);
	CHECK_STR(cfg_map_get(e->items[1], "f")->str, "1");
	CHECK_STR(t->keys[4]->file, "t.yaml");
	CHECK(cfg_map_get(t, "zz") == NULL);
	cfg_tree_free(t);

	int64_t v;
	bool bv;
	CHECK(cfg_parse_size("64k", &v) == 0 && v == 65536);
	CHECK(cfg_parse_size("1MB", &v) == 0 && v == 1048576);
	CHECK(cfg_parse_size("2g", &v) == 0 && v == 2147483648LL);
	CHECK(cfg_parse_size("12", &v) == 0 && v == 12);
	CHECK(cfg_parse_size("k", &v) < 0 && cfg_parse_size("1kk", &v) < 0 && cfg_parse_size("-1", &v) < 0);
	CHECK(cfg_parse_size("99999999999999999g", &v) < 0);
	CHECK(cfg_parse_duration("250ms", &v) == 0 && v == 250);
	CHECK(cfg_parse_duration("5s", &v) == 0 && v == 5000);
	CHECK(cfg_parse_duration("2m", &v) == 0 && v == 120000);
	CHECK(cfg_parse_duration("1h", &v) == 0 && v == 3600000);
	CHECK(cfg_parse_duration("40", &v) == 0 && v == 40);
	CHECK(cfg_parse_duration("5 s", &v) < 0 && cfg_parse_duration("1d", &v) < 0);
	CHECK(cfg_parse_bool("Yes", &bv) == 0 && bv);
	CHECK(cfg_parse_bool("off", &bv) == 0 && !bv);
	CHECK(cfg_parse_bool("1", &bv) < 0);
	CHECK(cfg_parse_int("-12", &v) == 0 && v == -12);
	CHECK(cfg_parse_int("1e3", &v) < 0 && cfg_parse_int("", &v) < 0 && cfg_parse_int("-", &v) < 0);
}

/* ---- plugin options ------------------------------------------------------------- */

static const siogw_option opts[] = {
	{"name", SIOGW_OPT_STRING, "bus", 1, 0, NULL, "a string"},
	{"count", SIOGW_OPT_INT, "3", 1, 10, NULL, "an int"},
	{"flag", SIOGW_OPT_BOOL, "false", 1, 0, NULL, "a bool"},
	{"buf", SIOGW_OPT_SIZE, "64k", 1024, 1 << 30, NULL, "a size"},
	{"wait", SIOGW_OPT_DURATION, "5s", 0, 60000, NULL, "a duration"},
	{"mode", SIOGW_OPT_ENUM, "fast", 1, 0, "fast|safe", "an enum"},
	{"peers", SIOGW_OPT_LIST, NULL, 1, 0, NULL, "a list"},
	{"rdkafka.", SIOGW_OPT_PREFIX, NULL, 1, 0, NULL, "passed through"},
};
#define NOPTS (sizeof opts / sizeof opts[0])

static const siogw_optval *find_val(const siogw_optval *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].name, name) == 0)
			return &v[i];
	return NULL;
}

/* Load a config whose adapter.options is `options_yaml`, resolve against opts. */
static int plugin_opts(const char *options_yaml, siogw_optval **v, size_t *n, char *err, size_t len)
{
	char y[1024];
	snprintf(y, sizeof y, "adapter:\n  plugin: x\n  options:\n%s", options_yaml);
	gw_config c;
	int rc = gw_config_load_string("gw.yaml", y, strlen(y), &c, err, len);
	if (rc)
		return rc;
	rc = gw_config_plugin_options(&c, opts, NOPTS, v, n, err, len);
	gw_config_free(&c); /* the values are owned by the caller: they outlive cfg */
	return rc;
}

TEST(plugin_options_types)
{
	siogw_optval *v = NULL;
	size_t n = 0;
	char err[512] = "";
	int rc = plugin_opts("    count: 7\n    flag: yes\n    buf: 1m\n    wait: 250ms\n    mode: safe\n"
			     "    peers: [a:1, b:2]\n    rdkafka.bootstrap.servers: \"k:9092\"\n"
			     "    rdkafka.acks: 1\n",
			     &v, &n, err, sizeof err);
	CHECK_EQ_INT(rc, 0);
	if (rc) {
		fprintf(stderr, "%s\n", err);
		return;
	}
	CHECK_EQ_INT(n, 9);
	CHECK_STR(v[0].name, "name"); /* table order */
	CHECK_STR(v[0].str, "bus");
	const siogw_optval *o = find_val(v, n, "count");
	CHECK(o && o->num == 7 && strcmp(o->str, "7") == 0);
	o = find_val(v, n, "flag");
	CHECK(o && o->num == 1 && strcmp(o->str, "true") == 0);
	o = find_val(v, n, "buf");
	CHECK(o && o->num == 1048576 && strcmp(o->str, "1048576") == 0);
	o = find_val(v, n, "wait");
	CHECK(o && o->num == 250 && strcmp(o->str, "250") == 0);
	o = find_val(v, n, "mode");
	CHECK(o && o->num == 1 && strcmp(o->str, "safe") == 0);
	o = find_val(v, n, "peers");
	CHECK(o && strcmp(o->str, "a:1,b:2") == 0);
	CHECK_STR(v[7].name, "rdkafka.bootstrap.servers");
	CHECK_STR(v[7].str, "k:9092");
	CHECK_STR(v[8].name, "rdkafka.acks");
	CHECK_STR(v[8].str, "1");
	gw_config_optvals_free(v, n);

	/* defaults only: size 64k → 65536, duration 5s → 5000; no entry for peers */
	rc = plugin_opts("    {}\n", &v, &n, err, sizeof err);
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(n, 6);
	o = find_val(v, n, "buf");
	CHECK(o && o->num == 65536 && strcmp(o->str, "65536") == 0);
	o = find_val(v, n, "wait");
	CHECK(o && o->num == 5000);
	o = find_val(v, n, "flag");
	CHECK(o && o->num == 0 && strcmp(o->str, "false") == 0);
	CHECK(find_val(v, n, "peers") == NULL);
	gw_config_optvals_free(v, n);

	/* a scalar list is taken as already comma-joined (handy with ${VAR}) */
	rc = plugin_opts("    peers: \"a,b\"\n    count: ~\n", &v, &n, err, sizeof err);
	CHECK_EQ_INT(rc, 0);
	o = find_val(v, n, "peers");
	CHECK(o && strcmp(o->str, "a,b") == 0);
	o = find_val(v, n, "count");
	CHECK(o && o->num == 3);
	gw_config_optvals_free(v, n);

	/* no adapter.options at all: defaults */
	gw_config c;
	if (load("adapter: {plugin: x}\n", &c) == 0) {
		rc = gw_config_plugin_options(&c, opts, NOPTS, &v, &n, err, sizeof err);
		CHECK_EQ_INT(rc, 0);
		CHECK_EQ_INT(n, 6);
		gw_config_optvals_free(v, n);
		gw_config_free(&c);
	}
}

static void expect_opt_error(const char *options_yaml, const char *want, int line)
{
	siogw_optval *v = (siogw_optval *)1;
	size_t n = 99;
	char err[1024] = "";
	int rc = plugin_opts(options_yaml, &v, &n, err, sizeof err);
	if (rc != -GW_ECONFIG || strcmp(err, want) != 0 || v != NULL || n != 0) {
		fprintf(stderr, "%s:%d: rc %d\n  got:  %s\n  want: %s\n", __FILE__, line, rc, err, want);
		t_cur_failed = 1;
	}
}
#define EXPECT_OPT_ERROR(y, want) expect_opt_error(y, want, __LINE__)

TEST(plugin_options_errors)
{
	EXPECT_OPT_ERROR("    count: 3\n    bogus: 1\n",
			 "gw.yaml:5:5: adapter.options.bogus: unknown key (valid keys: name, count, flag, buf, "
			 "wait, mode, peers, rdkafka.*)");
	EXPECT_OPT_ERROR("    rdkafka.: 1\n",
			 "gw.yaml:4:5: adapter.options.rdkafka.: unknown key (valid keys: name, count, flag, buf, "
			 "wait, mode, peers, rdkafka.*)");
	EXPECT_OPT_ERROR("    count: 11\n", "gw.yaml:4:12: adapter.options.count: 11 is out of range (1..10)");
	EXPECT_OPT_ERROR("    count: x\n", "gw.yaml:4:12: adapter.options.count: expected an integer, got \"x\"");
	EXPECT_OPT_ERROR("    flag: 2\n", "gw.yaml:4:11: adapter.options.flag: expected true or false, got \"2\"");
	EXPECT_OPT_ERROR("    buf: 512\n", "gw.yaml:4:10: adapter.options.buf: 512 is out of range (1024..1073741824 bytes)");
	EXPECT_OPT_ERROR("    wait: 5x\n",
			 "gw.yaml:4:11: adapter.options.wait: expected a duration (ms, or with ms/s/m/h: 5s), got \"5x\"");
	EXPECT_OPT_ERROR("    wait: 2m\n", "gw.yaml:4:11: adapter.options.wait: 2m is out of range (0..60000 ms)");
	EXPECT_OPT_ERROR("    mode: turbo\n",
			 "gw.yaml:4:11: adapter.options.mode: expected one of fast, safe, got \"turbo\"");
	EXPECT_OPT_ERROR("    peers: {a: 1}\n", "gw.yaml:4:12: adapter.options.peers: expected a list, got a map");
	EXPECT_OPT_ERROR("    peers: [a, \"b,c\"]\n",
			 "gw.yaml:4:16: adapter.options.peers[1]: list items may not contain ',' (items are passed "
			 "comma-joined)");
	EXPECT_OPT_ERROR("    rdkafka.x: [1]\n",
			 "gw.yaml:4:16: adapter.options.rdkafka.x: expected a string, got a list");
	EXPECT_OPT_ERROR("    name: {}\n", "gw.yaml:4:11: adapter.options.name: expected a string, got a map");

	/* a broken default is reported as the plugin's */
	static const siogw_option bad[] = {{"n", SIOGW_OPT_INT, "many", 1, 0, NULL, "x"}};
	gw_config c;
	siogw_optval *v;
	size_t n;
	char err[256];
	if (load("{}", &c) == 0) {
		CHECK_EQ_INT(gw_config_plugin_options(&c, bad, 1, &v, &n, err, sizeof err), -GW_ECONFIG);
		CHECK_STR(err, "<plugin default>:1:1: adapter.options.n: expected an integer, got \"many\"");
		CHECK_EQ_INT(gw_config_plugin_options(&c, NULL, 0, &v, &n, err, sizeof err), 0);
		CHECK_EQ_INT(n, 0);
		gw_config_optvals_free(v, n);
		gw_config_free(&c);
	}
	if (load("adapter: {options: {x: 1}}", &c) == 0) {
		CHECK_EQ_INT(gw_config_plugin_options(&c, NULL, 0, &v, &n, err, sizeof err), -GW_ECONFIG);
		CHECK_STR(err, "gw.yaml:1:21: adapter.options.x: unknown key (this plugin takes no options)");
		gw_config_free(&c);
	}
}

TEST(print_options_table)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	gw_config_print_options(opts, NOPTS, f);
	fclose(f);
	CHECK_STR(text,
		  "OPTION     TYPE      DEFAULT  RANGE                   DESCRIPTION\n"
		  "name       string    bus                              a string\n"
		  "count      int       3        1..10                   an int\n"
		  "flag       bool      false    true|false              a bool\n"
		  "buf        size      64k      1024..1073741824 bytes  a size\n"
		  "wait       duration  5s       0..60000 ms             a duration\n"
		  "mode       enum      fast     fast|safe               an enum\n"
		  "peers      list      -                                a list\n"
		  "rdkafka.*  prefix    -        any rdkafka.<key>       passed through\n");
	free(text);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		src_root = argv[1];
	RUN(default_yaml_has_design_defaults);
	RUN(empty_map_gets_every_default);
	RUN(every_key_set);
	RUN(repo_configs_load);
	RUN(env_substitution);
	RUN(errors_unknown_keys);
	RUN(errors_types);
	RUN(errors_ranges);
	RUN(errors_tree);
	RUN(errors_namespaces_and_routes);
	RUN(inbound_topics);
	RUN(errors_tls);
	RUN(jwt_namespaces);
	RUN(dynamic_namespaces);
	RUN(admin_ui);
	RUN(configuration_doc_names_every_key);
	RUN(tree_positions_and_quoting);
	RUN(plugin_options_types);
	RUN(plugin_options_errors);
	RUN(print_options_table);
	return TEST_END();
}
