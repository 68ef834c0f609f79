#include "util/json_scan.h"

size_t gw_json_ws(const char *s, size_t i, size_t n)
{
	while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
		i++;
	return i;
}

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static size_t scan_string(const char *s, size_t i, size_t n, unsigned *flags)
{
	for (i++; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"')
			return i + 1;
		if (c < 0x20)
			return GW_JSON_BAD;
		if (c != '\\')
			continue;
		*flags |= GW_JSON_ESCAPED;
		if (++i >= n)
			return GW_JSON_BAD;
		switch (s[i]) {
		case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
			break;
		case 'u':
			*flags |= GW_JSON_UESCAPE;
			if (i + 4 >= n || !is_hex(s[i + 1]) || !is_hex(s[i + 2]) || !is_hex(s[i + 3]) ||
			    !is_hex(s[i + 4]))
				return GW_JSON_BAD;
			i += 4;
			break;
		default:
			return GW_JSON_BAD;
		}
	}
	return GW_JSON_BAD;
}

static size_t digits(const char *s, size_t i, size_t n)
{
	size_t j = i;
	while (j < n && s[j] >= '0' && s[j] <= '9')
		j++;
	return j;
}

/* -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
static size_t scan_number(const char *s, size_t i, size_t n)
{
	if (i < n && s[i] == '-')
		i++;
	if (i >= n)
		return GW_JSON_BAD;
	if (s[i] == '0')
		i++;
	else if (s[i] >= '1' && s[i] <= '9')
		i = digits(s, i, n);
	else
		return GW_JSON_BAD;
	if (i < n && s[i] == '.') {
		size_t j = digits(s, i + 1, n);
		if (j == i + 1)
			return GW_JSON_BAD;
		i = j;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		size_t j = digits(s, i, n);
		if (j == i)
			return GW_JSON_BAD;
		i = j;
	}
	return i;
}

static size_t literal(const char *s, size_t i, size_t n, const char *lit, size_t len)
{
	for (size_t k = 0; k < len; k++)
		if (i + k >= n || s[i + k] != lit[k])
			return GW_JSON_BAD;
	return i + len;
}

size_t gw_json_value(const char *s, size_t i, size_t n, int max_depth, unsigned *flags)
{
	if (i >= n)
		return GW_JSON_BAD;
	switch (s[i]) {
	case '"':
		return scan_string(s, i, n, flags);
	case 't':
		return literal(s, i, n, "true", 4);
	case 'f':
		return literal(s, i, n, "false", 5);
	case 'n':
		return literal(s, i, n, "null", 4);
	case '[':
	case '{': {
		if (max_depth <= 0)
			return GW_JSON_BAD;
		bool obj = s[i] == '{';
		char close = obj ? '}' : ']';
		i = gw_json_ws(s, i + 1, n);
		if (i < n && s[i] == close)
			return i + 1;
		for (;;) {
			if (obj) {
				if (i >= n || s[i] != '"' || (i = scan_string(s, i, n, flags)) == GW_JSON_BAD)
					return GW_JSON_BAD;
				i = gw_json_ws(s, i, n);
				if (i >= n || s[i] != ':')
					return GW_JSON_BAD;
				i = gw_json_ws(s, i + 1, n);
			}
			i = gw_json_value(s, i, n, max_depth - 1, flags);
			if (i == GW_JSON_BAD)
				return GW_JSON_BAD;
			i = gw_json_ws(s, i, n);
			if (i < n && s[i] == close)
				return i + 1;
			if (i >= n || s[i] != ',')
				return GW_JSON_BAD;
			i = gw_json_ws(s, i + 1, n);
		}
	}
	default:
		return scan_number(s, i, n);
	}
}
