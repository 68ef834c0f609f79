/*
 * cfg_tree.h — YAML text → a small neutral tree whose every node remembers where it
 * was written, plus the scalar typing and error helpers the validators share.
 *
 * The tree is deliberately dumber than YAML: maps, lists (sequences) and scalars,
 * nothing else. cfg_tree_parse() refuses what would make a config hard to read or
 * ambiguous, each with file:line:col:
 *   - duplicate keys in one map (libyaml accepts them silently),
 *   - anchors, aliases and merge keys `<<` (libyaml does not apply merges),
 *   - explicit tags (`!!str`, `!foo`) and non-scalar keys,
 *   - more than one document, NUL characters in values, nesting deeper than 64.
 *
 * Environment substitution happens here, in scalar VALUES only (never in keys):
 *   ${VAR}           the value of VAR; an unset VAR becomes "" (no error: optional
 *                    settings such as a token are naturally written this way)
 *   ${VAR:-default}  the value of VAR, or `default` when VAR is unset or empty
 * VAR matches [A-Za-z_][A-Za-z0-9_]*; `default` runs to the first '}' and is not
 * itself substituted. A `$` not followed by `{` is literal. A malformed `${` is an error.
 *
 * Null. A plain scalar written as nothing, `~` or `null` (before substitution) is
 * YAML's null: is_null is set and str is "". Validators treat a null map value as if
 * the key were absent. `${X:-}` is never null: it is the empty string.
 *
 * Not thread-safe; the whole tree is owned by its root and freed by cfg_tree_free().
 */
#ifndef GW_CFG_TREE_H
#define GW_CFG_TREE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "siogw/plugin.h"

typedef enum cfg_kind { CFG_SCALAR = 0, CFG_MAP, CFG_SEQ } cfg_kind;

typedef struct cfg_node cfg_node;
struct cfg_node {
	cfg_kind kind;
	const char *file;  /* the name given to cfg_tree_parse (shared; owned by the root) */
	int line, col;     /* 1-based position of the node's first character */

	/* CFG_SCALAR */
	char *str;         /* value after ${VAR} substitution, NUL-terminated, never NULL */
	size_t len;
	bool quoted;       /* written '...', "..." or as a block scalar (| >), not plain */
	bool is_null;      /* plain empty, ~ or null: see "Null" above */

	/* CFG_MAP and CFG_SEQ */
	size_t n;
	cfg_node **items;  /* SEQ: the elements; MAP: the values, in document order */
	cfg_node **keys;   /* MAP only: the key scalars (not substituted), parallel to items */

	char *owned_file;  /* root only: storage behind `file` */
};

/*
 * Parse `len` bytes of YAML named `name` (used in every message). On success *out is
 * the root, which may be any kind (an empty document gives a null scalar at 1:1): the
 * caller checks the shape. Returns 0, -GW_ECONFIG with one line
 * "name:line:col: [key.path: ]message" in err, or -GW_ENOMEM.
 */
int cfg_tree_parse(const char *name, const char *text, size_t len, cfg_node **out,
		   char *err, size_t err_len);
void cfg_tree_free(cfg_node *root);

/* The value under `key` in a map, NULL if map is NULL, not a map, or has no such key. */
const cfg_node *cfg_map_get(const cfg_node *map, const char *key);

/* ---- key paths: "engine.cors.origins", "namespaces[1].routes[0].topic" ---------- */

#define CFG_PATH_MAX 512
typedef struct cfg_path {
	char buf[CFG_PATH_MAX]; /* always NUL-terminated; silently truncated when full */
	size_t len;
} cfg_path;

/* Append ".key" (or "key" at the top) / "[i]"; return the mark to pop back to. */
size_t cfg_path_key(cfg_path *p, const char *key);
size_t cfg_path_index(cfg_path *p, size_t i);
void cfg_path_pop(cfg_path *p, size_t mark);

/* ---- errors -------------------------------------------------------------------- */

/* Write "file:line:col: path: message" into err (the "path: " part only when path is
 * non-empty; the "line:col" part only when at is non-NULL, else "file: "). */
void cfg_error(char *err, size_t err_len, const cfg_node *at, const char *path,
	       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void cfg_verror(char *err, size_t err_len, const char *file, int line, int col,
		const char *path, const char *fmt, va_list ap);

/* Describe a node for "got ..." in messages: "\"abc\"" (escaped, cut at ~60 chars),
 * "null", "a map" or "a list". Returns buf. */
const char *cfg_describe(const cfg_node *n, char *buf, size_t len);

/* ---- scalar typing: 0 on success, -1 if the text does not have the shape -------- */

int cfg_parse_int(const char *s, int64_t *v);      /* decimal, optional sign */
int cfg_parse_bool(const char *s, bool *v);        /* true/false, yes/no, on/off (any case) */
int cfg_parse_size(const char *s, int64_t *v);     /* bytes: 512, 64k, 1m, 2g (1024-based; "kb" ok) */
int cfg_parse_duration(const char *s, int64_t *v); /* → ms: 250, 250ms, 5s, 2m, 1h */

/*
 * Type-check one value as a scalar option of `type`: SIOGW_OPT_STRING, INT, BOOL, SIZE,
 * DURATION or ENUM (the others are not scalars). Bounds apply to INT/SIZE/DURATION
 * when min <= max; `choices` ("a|b|c") to ENUM. Quoted and plain scalars are typed
 * alike, so `port: "${PORT:-3000}"` works. On success *num holds the number (BOOL 0/1,
 * ENUM the choice's index, STRING 0) and 0 is returned. Otherwise -1, and msg holds
 * the message part of the error, e.g. `expected an integer, got "abc"`.
 */
int cfg_scalar_check(const cfg_node *v, siogw_opt_type type, int64_t min, int64_t max,
		     const char *choices, int64_t *num, char *msg, size_t msg_len);

#endif
