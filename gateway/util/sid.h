/*
 * sid.h — socket ids that name their node (DESIGN §1.5: an emit addressed only to
 * socket ids is read only by the nodes holding them; docs/bus-protocol.md, "Node topics").
 *
 * An id is GW_ID_LEN (20) URL-safe base64 characters: the node's tag (4, a hash of its
 * node_id), 12 random (72 bits), and 4 check characters (a hash of the first 16). The tag
 * names the node's topic ({prefix}.node.{node_tag}); the check tells a socket id from a
 * room name that merely looks like one (a random 20-character name passes 1 time in
 * 16.7 million). Engine.IO session ids and Socket.IO socket ids both have this form;
 * Engine.IO v3 socket ids are "/nsp#<session id>".
 */
#ifndef GW_SID_H
#define GW_SID_H

#include <stdbool.h>
#include <stddef.h>

#define GW_TAG_LEN 4

/* node_id's tag: GW_TAG_LEN URL-safe base64 characters and a NUL. */
void gw_node_tag(const char *node_id, char tag[GW_TAG_LEN + 1]);
/* A fresh id of the node with this tag into out (GW_ID_LEN characters and a NUL). */
void gw_sid_new(char *out, const char *tag);
/* Whether id (len bytes; "/nsp#<id>" taken after its last '#') is a socket id of this
 * form; its node's tag into tag when it is. */
bool gw_sid_tag(const char *id, size_t len, char tag[GW_TAG_LEN + 1]);

#endif
