/*
 * client.h — engine.serve_client: the socket.io-client bundle at {engine.path}socket.io.js,
 * socket.io.min.js, socket.io.esm.min.js, socket.io.msgpack.min.js and their .map files,
 * as the socket.io server's serveClient does: byte for byte the dist/ files of the
 * shipped version (gateway/client/meson.build), an ETag of their content, 304 for a
 * matching If-None-Match, `Cache-Control: public, max-age=0` (caches revalidate, so an
 * upgraded gateway is seen at once), GET and HEAD.
 *
 * The files are read once at startup and served from memory.
 */
#ifndef GW_HTTP_CLIENT_H
#define GW_HTTP_CLIENT_H

#include <stddef.h>

#include "config/config.h"
#include "net/net.h"

typedef struct gw_client gw_client;

/* Read the bundle when engine.serve_client is on: from engine.client_dir, else the
 * build tree's (beside the binary), else the installed one. 0 with *out NULL when the
 * option is off; -GW_ENOENT (or -GW_ENOMEM) with a message naming the missing file. */
int gw_client_load(const gw_config *cfg, gw_client **out, char *err, size_t err_len);
/* Add its routes; before the engine's own route, which they sit under. */
int gw_client_listen(gw_client *cl, net_loop *net);
void gw_client_destroy(gw_client *cl);

/* If-None-Match (RFC 9110 §13.1.2) against etag ("\"...\""): "*", or a list of entity
 * tags compared weakly (W/ ignored). */
int gw_client_etag_matches(const char *if_none_match, const char *etag);

#endif
