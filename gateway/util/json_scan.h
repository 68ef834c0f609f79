/*
 * json_scan.h — a strict RFC 8259 scanner: finds where a JSON value ends without
 * building a tree, so hot paths can validate text and splice spans of it verbatim.
 *
 * Stricter than cJSON on purpose (no raw control bytes, whitespace only SP HT LF CR,
 * numbers by the grammar, bounded depth): text it accepts every JSON parser accepts,
 * and a caller that falls back to a full parser on failure changes no outcome.
 */
#ifndef GW_JSON_SCAN_H
#define GW_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>

#define GW_JSON_BAD ((size_t)-1)

enum {
	GW_JSON_ESCAPED = 1, /* a string holds a backslash escape */
	GW_JSON_UESCAPE = 2, /* ... a \uXXXX one */
};

/* Index after the JSON whitespace starting at s[i]. */
size_t gw_json_ws(const char *s, size_t i, size_t n);
/* The value starting at s[i] (no leading whitespace): the index after it, or
 * GW_JSON_BAD. Nesting beyond max_depth is GW_JSON_BAD. *flags collects GW_JSON_*. */
size_t gw_json_value(const char *s, size_t i, size_t n, int max_depth, unsigned *flags);

#endif
