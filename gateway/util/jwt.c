/* jwt.c — see jwt.h. */
#include "util/jwt.h"

#include "util/base64.h"
#include "util/utf8.h"

#include <cjson/cJSON.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gw_jwt {
	unsigned algs;
	uint8_t *secret;
	size_t secret_len;
	EVP_PKEY *key;      /* RSA (RS256) or EC P-256 (ES256), or NULL */
	char *issuer, *audience;
	int64_t leeway_ms;
	bool require_exp;
};

unsigned gw_jwt_alg(const char *name)
{
	if (strcmp(name, "HS256") == 0)
		return GW_JWT_HS256;
	if (strcmp(name, "RS256") == 0)
		return GW_JWT_RS256;
	if (strcmp(name, "ES256") == 0)
		return GW_JWT_ES256;
	return 0;
}

const char *gw_jwt_reason(gw_jwt_status st)
{
	static const char *const names[] = {
		[GW_JWT_OK] = "ok", [GW_JWT_MISSING] = "missing", [GW_JWT_MALFORMED] = "malformed",
		[GW_JWT_ALGORITHM] = "algorithm", [GW_JWT_SIGNATURE] = "signature",
		[GW_JWT_EXPIRED] = "expired", [GW_JWT_NOT_ACTIVE] = "not_active",
		[GW_JWT_ISSUER] = "issuer", [GW_JWT_AUDIENCE] = "audience",
		[GW_JWT_EXP_REQUIRED] = "exp_required",
	};
	return (unsigned)st < sizeof names / sizeof names[0] ? names[st] : "malformed";
}

/* ---- building ---- */

static gw_jwt *fail(gw_jwt *j, char *err, size_t err_len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static gw_jwt *fail(gw_jwt *j, char *err, size_t err_len, const char *fmt, ...)
{
	if (err && err_len) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, err_len, fmt, ap);
		va_end(ap);
	}
	ERR_clear_error();
	gw_jwt_free(j);
	return NULL;
}

/* A PEM "PUBLIC KEY" (SubjectPublicKeyInfo), or the key of a "CERTIFICATE". */
static EVP_PKEY *read_key(const char *pem, size_t len)
{
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	if (!b)
		return NULL;
	EVP_PKEY *k = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
	if (!k) {
		(void)BIO_reset(b);
		X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
		if (x) {
			k = X509_get_pubkey(x);
			X509_free(x);
		}
	}
	BIO_free(b);
	return k;
}

gw_jwt *gw_jwt_new(const gw_jwt_opts *o, char *err, size_t err_len)
{
	if (!o->algs || (o->algs & ~(unsigned)(GW_JWT_HS256 | GW_JWT_RS256 | GW_JWT_ES256)))
		return fail(NULL, err, err_len, "no algorithm (HS256, RS256, ES256)");
	gw_jwt *j = calloc(1, sizeof *j);
	if (!j)
		return fail(NULL, err, err_len, "out of memory");
	j->algs = o->algs;
	j->leeway_ms = o->leeway_ms;
	j->require_exp = o->require_exp;
	if ((o->issuer && !(j->issuer = strdup(o->issuer))) || (o->audience && !(j->audience = strdup(o->audience))))
		return fail(j, err, err_len, "out of memory");

	if (o->algs & GW_JWT_HS256) {
		if (!o->secret)
			return fail(j, err, err_len, "HS256 needs a secret");
		if (o->secret_len < 32)
			return fail(j, err, err_len, "an HS256 secret needs at least 32 bytes (RFC 7518 §3.2), got %zu",
				    o->secret_len);
		if (!(j->secret = malloc(o->secret_len)))
			return fail(j, err, err_len, "out of memory");
		memcpy(j->secret, o->secret, o->secret_len);
		j->secret_len = o->secret_len;
	} else if (o->secret) {
		return fail(j, err, err_len, "a secret is only used by HS256, which is not in algorithms");
	}

	unsigned asym = o->algs & (GW_JWT_RS256 | GW_JWT_ES256);
	if (asym == (GW_JWT_RS256 | GW_JWT_ES256))
		return fail(j, err, err_len, "RS256 and ES256 need different keys: list one of them");
	if (!asym) {
		if (o->pem)
			return fail(j, err, err_len, "a public key is only used by RS256 or ES256, neither is in algorithms");
		return j;
	}
	const char *alg = asym == GW_JWT_RS256 ? "RS256" : "ES256";
	if (!o->pem)
		return fail(j, err, err_len, "%s needs a public key", alg);
	if (!(j->key = read_key(o->pem, o->pem_len)))
		return fail(j, err, err_len, "not a PEM public key or certificate");
	if (asym == GW_JWT_RS256) {
		if (EVP_PKEY_get_base_id(j->key) != EVP_PKEY_RSA)
			return fail(j, err, err_len, "RS256 needs an RSA key");
		if (EVP_PKEY_get_bits(j->key) < 2048)
			return fail(j, err, err_len, "an RS256 key needs at least 2048 bits (RFC 7518 §3.3), got %d",
				    EVP_PKEY_get_bits(j->key));
	} else {
		char group[64] = "";
		if (EVP_PKEY_get_base_id(j->key) != EVP_PKEY_EC ||
		    !EVP_PKEY_get_group_name(j->key, group, sizeof group, NULL) ||
		    (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0))
			return fail(j, err, err_len, "ES256 needs an EC key on P-256");
	}
	return j;
}

void gw_jwt_free(gw_jwt *j)
{
	if (!j)
		return;
	if (j->secret)
		OPENSSL_cleanse(j->secret, j->secret_len);
	free(j->secret);
	EVP_PKEY_free(j->key);
	free(j->issuer);
	free(j->audience);
	free(j);
}

/* ---- verifying ---- */

/* base64url (RFC 4648 §5) without padding, as JWS requires (RFC 7515 §2). */
static uint8_t *b64url_decode(const char *in, size_t n, size_t *out_len)
{
	if (n % 4 == 1)
		return NULL;
	char *t = malloc(n + 1);
	uint8_t *out = malloc(n / 4 * 3 + 3);
	if (!t || !out)
		goto bad;
	for (size_t i = 0; i < n; i++) {
		char c = in[i];
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			t[i] = c;
		else if (c == '-')
			t[i] = '+';
		else if (c == '_')
			t[i] = '/';
		else
			goto bad;
	}
	long m = gw_b64_decode(t, n, out);
	if (m < 0)
		goto bad;
	free(t);
	*out_len = (size_t)m;
	return out;
bad:
	free(t);
	free(out);
	return NULL;
}

/* Member names must be unique (RFC 7515 §4, RFC 7519 §4): cJSON would read the first of
 * two, another library the last. */
static bool unique_names(const cJSON *o)
{
	for (const cJSON *x = o->child; x; x = x->next)
		for (const cJSON *y = x->next; y; y = y->next)
			if (strcmp(x->string, y->string) == 0)
				return false;
	return true;
}

/* A JSON object in valid UTF-8 with unique member names, or NULL. */
static cJSON *json_object(const char *seg, size_t n)
{
	size_t len;
	uint8_t *raw = b64url_decode(seg, n, &len);
	if (!raw)
		return NULL;
	cJSON *o = NULL;
	if (gw_utf8_valid(raw, len) && !memchr(raw, 0, len)) {
		const char *end = NULL, *stop = (const char *)raw + len;
		o = cJSON_ParseWithLengthOpts((const char *)raw, len, &end, false);
		while (o && end < stop && strchr(" \t\r\n", *end))
			end++;
		if (o && (!cJSON_IsObject(o) || end != stop || !unique_names(o))) {
			cJSON_Delete(o);
			o = NULL;
		}
	}
	free(raw);
	return o;
}

static bool verify_hs256(const gw_jwt *j, const char *input, size_t n, const uint8_t *sig, size_t sig_len)
{
	uint8_t mac[EVP_MAX_MD_SIZE];
	unsigned mac_len = 0;
	if (!HMAC(EVP_sha256(), j->secret, (int)j->secret_len, (const uint8_t *)input, n, mac, &mac_len))
		return false;
	return sig_len == mac_len && CRYPTO_memcmp(mac, sig, mac_len) == 0;
}

static bool verify_pkey(const gw_jwt *j, const char *input, size_t n, const uint8_t *sig, size_t sig_len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = ctx && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, j->key) == 1 &&
		  EVP_DigestVerify(ctx, sig, sig_len, (const uint8_t *)input, n) == 1;
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return ok;
}

/* ES256 signs as R || S, 32 bytes each (RFC 7518 §3.4); OpenSSL takes DER. */
static bool verify_es256(const gw_jwt *j, const char *input, size_t n, const uint8_t *sig, size_t sig_len)
{
	if (sig_len != 64)
		return false;
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
	if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
		BN_free(r);
		BN_free(s);
		ECDSA_SIG_free(es);
		return false;
	}
	uint8_t *der = NULL;
	int der_len = i2d_ECDSA_SIG(es, &der);
	ECDSA_SIG_free(es);
	bool ok = der_len > 0 && verify_pkey(j, input, n, der, (size_t)der_len);
	OPENSSL_free(der);
	return ok;
}

/* A NumericDate (RFC 7519 §2): seconds since the epoch, maybe fractional, in ms. */
static bool numeric_date(const cJSON *v, double *ms)
{
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
		return false;
	*ms = v->valuedouble * 1000.0;
	return true;
}

static gw_jwt_status check_claims(const gw_jwt *j, const cJSON *p, int64_t now_ms)
{
	double now = (double)now_ms, leeway = (double)j->leeway_ms, t;
	const cJSON *exp = cJSON_GetObjectItemCaseSensitive(p, "exp");
	const cJSON *nbf = cJSON_GetObjectItemCaseSensitive(p, "nbf");
	if (exp) {
		if (!numeric_date(exp, &t))
			return GW_JWT_MALFORMED;
		if (now >= t + leeway)
			return GW_JWT_EXPIRED;
	} else if (j->require_exp) {
		return GW_JWT_EXP_REQUIRED;
	}
	if (nbf) {
		if (!numeric_date(nbf, &t))
			return GW_JWT_MALFORMED;
		if (now + leeway < t)
			return GW_JWT_NOT_ACTIVE;
	}
	if (j->issuer) {
		const cJSON *iss = cJSON_GetObjectItemCaseSensitive(p, "iss");
		if (!cJSON_IsString(iss) || strcmp(iss->valuestring, j->issuer) != 0)
			return GW_JWT_ISSUER;
	}
	if (j->audience) {
		const cJSON *aud = cJSON_GetObjectItemCaseSensitive(p, "aud"), *a;
		bool found = cJSON_IsString(aud) && strcmp(aud->valuestring, j->audience) == 0;
		if (cJSON_IsArray(aud))
			cJSON_ArrayForEach(a, aud) found |= cJSON_IsString(a) && strcmp(a->valuestring, j->audience) == 0;
		if (!found)
			return GW_JWT_AUDIENCE;
	}
	return GW_JWT_OK;
}

gw_jwt_status gw_jwt_verify(const gw_jwt *j, const char *tok, size_t len, int64_t now_ms, char **claims)
{
	*claims = NULL;
	if (!tok || len == 0)
		return GW_JWT_MISSING;
	if (len > GW_JWT_MAX_LEN)
		return GW_JWT_MALFORMED;
	const char *d1 = memchr(tok, '.', len);
	const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok)) : NULL;
	if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)) || d1 == tok || d2 == d1 + 1)
		return GW_JWT_MALFORMED;

	cJSON *hdr = json_object(tok, (size_t)(d1 - tok));
	if (!hdr)
		return GW_JWT_MALFORMED;
	const cJSON *alg = cJSON_GetObjectItemCaseSensitive(hdr, "alg");
	unsigned a = cJSON_IsString(alg) ? gw_jwt_alg(alg->valuestring) : 0;
	bool crit = cJSON_GetObjectItemCaseSensitive(hdr, "crit") != NULL;
	bool has_alg = cJSON_IsString(alg);
	cJSON_Delete(hdr);
	if (!has_alg || crit)
		return GW_JWT_MALFORMED;
	if (!(a & j->algs))
		return GW_JWT_ALGORITHM;

	size_t sig_len;
	const char *sig_text = d2 + 1;
	uint8_t *sig = b64url_decode(sig_text, len - (size_t)(sig_text - tok), &sig_len);
	if (!sig)
		return GW_JWT_MALFORMED;
	size_t input_len = (size_t)(d2 - tok); /* header.payload, as sent */
	bool ok = a == GW_JWT_HS256   ? verify_hs256(j, tok, input_len, sig, sig_len)
		  : a == GW_JWT_RS256 ? verify_pkey(j, tok, input_len, sig, sig_len)
				      : verify_es256(j, tok, input_len, sig, sig_len);
	free(sig);
	if (!ok)
		return GW_JWT_SIGNATURE;

	cJSON *payload = json_object(d1 + 1, (size_t)(d2 - d1 - 1));
	if (!payload)
		return GW_JWT_MALFORMED;
	gw_jwt_status st = check_claims(j, payload, now_ms);
	if (st == GW_JWT_OK && !(*claims = cJSON_PrintUnformatted(payload)))
		st = GW_JWT_MALFORMED; /* out of memory: refused, never admitted unchecked */
	cJSON_Delete(payload);
	return st;
}
