/*
 * jwt.h — JSON Web Token verification for a namespace's `auth: jwt`: the JWS compact
 * form (RFC 7515) of a JWT (RFC 7519), signed HS256, RS256 or ES256 (RFC 7518), checked
 * with OpenSSL.
 *
 * A verifier is built once from the configuration and is read-only afterwards, so any
 * thread may use it. What it refuses, and why:
 *   - "none" and every algorithm the configuration does not list (the header's alg is
 *     only a claim: a key is used with the one family it is for, so an HS256 token MACed
 *     with an RSA public key's text fails as "algorithm" unless HS256 is listed, and even
 *     then it is checked against the configured secret, never the key file);
 *   - a `crit` header (no extension is understood);
 *   - anything that is not three base64url segments without padding, a header and a
 *     payload that are JSON objects in valid UTF-8;
 *   - exp reached (now >= exp + leeway), nbf not reached (now + leeway < nbf), a
 *     missing exp unless allowed, iss or aud other than configured.
 */
#ifndef GW_JWT_H
#define GW_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { GW_JWT_HS256 = 1, GW_JWT_RS256 = 2, GW_JWT_ES256 = 4 };

typedef enum gw_jwt_status {
	GW_JWT_OK = 0,
	GW_JWT_MISSING,      /* no token where the namespace takes it from */
	GW_JWT_MALFORMED,
	GW_JWT_ALGORITHM,    /* alg not among the configured ones ("none" never is) */
	GW_JWT_SIGNATURE,
	GW_JWT_EXPIRED,
	GW_JWT_NOT_ACTIVE,   /* nbf in the future */
	GW_JWT_ISSUER,
	GW_JWT_AUDIENCE,
	GW_JWT_EXP_REQUIRED, /* no exp, and the namespace requires one */
} gw_jwt_status;

/* Tokens longer than this are malformed (headers are at most a few KiB anyway). */
#define GW_JWT_MAX_LEN 16384

typedef struct gw_jwt_opts {
	unsigned algs;            /* GW_JWT_* bits, at least one */
	const uint8_t *secret;    /* HS256: at least 32 bytes (RFC 7518 §3.2) */
	size_t secret_len;
	const char *pem;          /* RS256 / ES256: a PEM public key or certificate */
	size_t pem_len;
	const char *issuer;       /* NULL: iss is not checked */
	const char *audience;     /* NULL: aud is not checked */
	int64_t leeway_ms;
	bool require_exp;
} gw_jwt_opts;

typedef struct gw_jwt gw_jwt;

/* The GW_JWT_* bit of an algorithm name ("HS256"), 0 for any other. */
unsigned gw_jwt_alg(const char *name);
/* NULL with a message in err (no key for an algorithm, a key of the wrong type or size,
 * a PEM that does not parse, out of memory). */
gw_jwt *gw_jwt_new(const gw_jwt_opts *o, char *err, size_t err_len);
void gw_jwt_free(gw_jwt *j);
/* Verify tok[0..len) at now_ms (ms since the epoch). GW_JWT_OK sets *claims to the
 * payload as compact JSON text (the caller frees it). */
gw_jwt_status gw_jwt_verify(const gw_jwt *j, const char *tok, size_t len, int64_t now_ms, char **claims);
/* "missing", "malformed", "algorithm", "signature", "expired", "not_active", "issuer",
 * "audience", "exp_required" (and "ok"). */
const char *gw_jwt_reason(gw_jwt_status st);

#endif
