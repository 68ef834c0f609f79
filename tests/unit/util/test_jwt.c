/*
 * util/jwt: the RFC 7515 A.1 vector, then tokens signed here with OpenSSL (the integration
 * test signs them with Node's crypto instead).
 */
#include "../test.h"
#include "util/base64.h"
#include "util/jwt.h"

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#define NOW 1700000000000LL /* ms: "now" for the tokens below */

static const char secret[] = "0123456789abcdef0123456789abcdef-test-secret";

/* base64url without padding */
static char *b64u(const void *p, size_t n)
{
	char *s = malloc(gw_b64_enc_len(n) + 1);
	size_t m = gw_b64_encode(p, n, s);
	while (m && s[m - 1] == '=')
		m--;
	s[m] = 0;
	for (char *c = s; *c; c++)
		*c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
	return s;
}

/* header.payload.signature; alg picks how: "HS256" (key NULL: the test secret, else the
 * key's PEM text as the HMAC key), "RS256", "ES256" (R||S), "ES256-DER", "none". */
static char *sign(const char *alg, EVP_PKEY *k, const char *header, const char *payload, const char *mac_key)
{
	char *h = b64u(header, strlen(header)), *p = b64u(payload, strlen(payload));
	size_t n = strlen(h) + 1 + strlen(p);
	char *input = malloc(n + 1);
	snprintf(input, n + 1, "%s.%s", h, p);
	uint8_t sig[512];
	size_t sig_len = 0;
	if (strcmp(alg, "HS256") == 0) {
		const char *key = mac_key ? mac_key : secret;
		unsigned l = 0;
		HMAC(EVP_sha256(), key, (int)strlen(key), (uint8_t *)input, n, sig, &l);
		sig_len = l;
	} else if (strcmp(alg, "none") != 0) {
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		uint8_t der[512];
		size_t der_len = sizeof der;
		EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k);
		EVP_DigestSign(ctx, der, &der_len, (uint8_t *)input, n);
		EVP_MD_CTX_free(ctx);
		if (strcmp(alg, "ES256") == 0) {
			const uint8_t *q = der;
			ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &q, (long)der_len);
			BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32);
			BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32);
			ECDSA_SIG_free(es);
			sig_len = 64;
		} else {
			memcpy(sig, der, der_len);
			sig_len = der_len;
		}
	}
	char *s = b64u(sig, sig_len);
	size_t tl = n + 1 + strlen(s);
	char *tok = malloc(tl + 1);
	snprintf(tok, tl + 1, "%s.%s", input, s);
	free(h);
	free(p);
	free(input);
	free(s);
	return tok;
}

static char *pem_of(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	PEM_write_bio_PUBKEY(b, k);
	char *data;
	long n = BIO_get_mem_data(b, &data);
	char *s = strndup(data, (size_t)n);
	BIO_free(b);
	return s;
}

static gw_jwt *verifier(unsigned algs, EVP_PKEY *k, const char *iss, const char *aud, int64_t leeway, bool req_exp)
{
	char *pem = k ? pem_of(k) : NULL;
	gw_jwt_opts o = {.algs = algs, .issuer = iss, .audience = aud, .leeway_ms = leeway, .require_exp = req_exp};
	if (algs & GW_JWT_HS256) {
		o.secret = (const uint8_t *)secret;
		o.secret_len = strlen(secret);
	}
	if (pem) {
		o.pem = pem;
		o.pem_len = strlen(pem);
	}
	char err[256] = "";
	gw_jwt *j = gw_jwt_new(&o, err, sizeof err);
	if (!j)
		fprintf(stderr, "gw_jwt_new: %s\n", err);
	free(pem);
	return j;
}

static gw_jwt_status verify(const gw_jwt *j, const char *tok, char **claims)
{
	char *c = NULL;
	gw_jwt_status st = gw_jwt_verify(j, tok, strlen(tok), NOW, &c);
	if (claims)
		*claims = c;
	else
		free(c);
	return st;
}

static EVP_PKEY *rsa, *ec;

TEST(rfc7515_a1_vector)
{
	/* RFC 7515 appendix A.1: the JWK "k" below, HMAC SHA-256, exp 1300819380 */
	static const char k64[] = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ+EstJQLr/T+1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
	static const char tok[] = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
				  ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
				  ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
	uint8_t key[64];
	CHECK_EQ_INT(gw_b64_decode(k64, strlen(k64), key), 64);
	gw_jwt_opts o = {.algs = GW_JWT_HS256, .secret = key, .secret_len = 64, .issuer = "joe", .require_exp = true};
	gw_jwt *j = gw_jwt_new(&o, NULL, 0);
	CHECK(j);
	char *claims = NULL;
	CHECK_EQ_INT(gw_jwt_verify(j, tok, strlen(tok), 1300819379000LL, &claims), GW_JWT_OK);
	CHECK_STR(claims, "{\"iss\":\"joe\",\"exp\":1300819380,\"http://example.com/is_root\":true}");
	free(claims);
	CHECK_EQ_INT(gw_jwt_verify(j, tok, strlen(tok), 1300819380000LL, &claims), GW_JWT_EXPIRED);
	CHECK(!claims);
	gw_jwt_free(j);
	/* the same token under another issuer */
	o.issuer = "jane";
	j = gw_jwt_new(&o, NULL, 0);
	CHECK_EQ_INT(gw_jwt_verify(j, tok, strlen(tok), 1300819379000LL, &claims), GW_JWT_ISSUER);
	gw_jwt_free(j);
}

TEST(each_algorithm_verifies_and_detects_tampering)
{
	static const char pl[] = "{\"sub\":\"u1\",\"exp\":1700000100}";
	struct {
		const char *alg;
		unsigned bit;
		EVP_PKEY *k;
	} cases[] = {{"HS256", GW_JWT_HS256, NULL}, {"RS256", GW_JWT_RS256, rsa}, {"ES256", GW_JWT_ES256, ec}};
	for (size_t i = 0; i < 3; i++) {
		gw_jwt *j = verifier(cases[i].bit, cases[i].k, NULL, NULL, 0, true);
		CHECK(j);
		char hdr[64];
		snprintf(hdr, sizeof hdr, "{\"alg\":\"%s\",\"typ\":\"JWT\"}", cases[i].alg);
		char *tok = sign(cases[i].alg, cases[i].k, hdr, pl, NULL), *claims = NULL;
		CHECK_EQ_INT(verify(j, tok, &claims), GW_JWT_OK);
		CHECK_STR(claims, "{\"sub\":\"u1\",\"exp\":1700000100}");
		free(claims);
		/* a payload swapped under the same signature */
		char *other = sign(cases[i].alg, cases[i].k, hdr, "{\"sub\":\"admin\",\"exp\":1700000100}", NULL);
		char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.'), *o1 = strchr(other, '.'), *o2 = strrchr(other, '.');
		char forged[4096];
		snprintf(forged, sizeof forged, "%.*s%.*s%s", (int)(d1 - tok), tok, (int)(o2 - o1), o1, d2);
		CHECK_EQ_INT(verify(j, forged, NULL), GW_JWT_SIGNATURE);
		/* one bit of the signature flipped */
		size_t last = strlen(tok) - 2;
		tok[last] = tok[last] == 'A' ? 'B' : 'A';
		CHECK_EQ_INT(verify(j, tok, NULL), GW_JWT_SIGNATURE);
		free(tok);
		free(other);
		gw_jwt_free(j);
	}
	/* ES256 as DER (what OpenSSL makes, not what JWS sends) is refused */
	gw_jwt *j = verifier(GW_JWT_ES256, ec, NULL, NULL, 0, true);
	char *tok = sign("ES256-DER", ec, "{\"alg\":\"ES256\"}", pl, NULL);
	CHECK_EQ_INT(verify(j, tok, NULL), GW_JWT_SIGNATURE);
	free(tok);
	gw_jwt_free(j);
}

TEST(none_and_algorithm_confusion_are_refused)
{
	static const char pl[] = "{\"exp\":1700000100}";
	gw_jwt *rs = verifier(GW_JWT_RS256, rsa, NULL, NULL, 0, true);
	char *pem = pem_of(rsa);
	/* alg none, empty signature */
	char *tok = sign("none", NULL, "{\"alg\":\"none\"}", pl, NULL);
	CHECK_EQ_INT(verify(rs, tok, NULL), GW_JWT_ALGORITHM);
	free(tok);
	tok = sign("none", NULL, "{\"alg\":\"None\"}", pl, NULL);
	CHECK_EQ_INT(verify(rs, tok, NULL), GW_JWT_ALGORITHM);
	free(tok);
	/* HS256 MACed with the RSA public key's PEM: HS256 is not configured */
	tok = sign("HS256", NULL, "{\"alg\":\"HS256\"}", pl, pem);
	CHECK_EQ_INT(verify(rs, tok, NULL), GW_JWT_ALGORITHM);
	/* ... and where HS256 is, it is checked against the secret, never the key file */
	gw_jwt *both = verifier(GW_JWT_HS256 | GW_JWT_RS256, rsa, NULL, NULL, 0, true);
	CHECK(both);
	CHECK_EQ_INT(verify(both, tok, NULL), GW_JWT_SIGNATURE);
	free(tok);
	/* an RS256 token on an ES256 verifier */
	gw_jwt *es = verifier(GW_JWT_ES256, ec, NULL, NULL, 0, true);
	tok = sign("RS256", rsa, "{\"alg\":\"RS256\"}", pl, NULL);
	CHECK_EQ_INT(verify(es, tok, NULL), GW_JWT_ALGORITHM);
	CHECK_EQ_INT(verify(both, tok, NULL), GW_JWT_OK);
	free(tok);
	/* alg missing, or not a string */
	tok = sign("HS256", NULL, "{\"typ\":\"JWT\"}", pl, NULL);
	CHECK_EQ_INT(verify(both, tok, NULL), GW_JWT_MALFORMED);
	free(tok);
	tok = sign("HS256", NULL, "{\"alg\":256}", pl, NULL);
	CHECK_EQ_INT(verify(both, tok, NULL), GW_JWT_MALFORMED);
	free(tok);
	/* a crit header: no extension is understood */
	tok = sign("HS256", NULL, "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", pl, NULL);
	CHECK_EQ_INT(verify(both, tok, NULL), GW_JWT_MALFORMED);
	free(tok);
	free(pem);
	gw_jwt_free(rs);
	gw_jwt_free(both);
	gw_jwt_free(es);
}

TEST(time_issuer_and_audience_claims)
{
	gw_jwt *j = verifier(GW_JWT_HS256, NULL, "https://idp", "chat", 0, true);
	struct {
		const char *payload;
		gw_jwt_status want;
	} cases[] = {
		{"{\"iss\":\"https://idp\",\"aud\":\"chat\",\"exp\":1700000001}", GW_JWT_OK},
		{"{\"iss\":\"https://idp\",\"aud\":\"chat\",\"exp\":1700000000}", GW_JWT_EXPIRED}, /* now == exp */
		{"{\"iss\":\"https://idp\",\"aud\":\"chat\",\"exp\":1699999999.5}", GW_JWT_EXPIRED},
		{"{\"iss\":\"https://idp\",\"aud\":\"chat\"}", GW_JWT_EXP_REQUIRED},
		{"{\"iss\":\"https://idp\",\"aud\":\"chat\",\"exp\":\"1700000100\"}", GW_JWT_MALFORMED},
		{"{\"iss\":\"https://idp\",\"aud\":\"chat\",\"exp\":1700000100,\"nbf\":1700000001}", GW_JWT_NOT_ACTIVE},
		{"{\"iss\":\"https://idp\",\"aud\":\"chat\",\"exp\":1700000100,\"nbf\":1700000000}", GW_JWT_OK},
		{"{\"iss\":\"https://idp\",\"aud\":\"chat\",\"exp\":1700000100,\"nbf\":null}", GW_JWT_MALFORMED},
		{"{\"iss\":\"https://other\",\"aud\":\"chat\",\"exp\":1700000100}", GW_JWT_ISSUER},
		{"{\"aud\":\"chat\",\"exp\":1700000100}", GW_JWT_ISSUER},
		{"{\"iss\":\"https://idp\",\"aud\":\"mail\",\"exp\":1700000100}", GW_JWT_AUDIENCE},
		{"{\"iss\":\"https://idp\",\"aud\":[\"mail\",\"chat\"],\"exp\":1700000100}", GW_JWT_OK},
		{"{\"iss\":\"https://idp\",\"aud\":[\"mail\"],\"exp\":1700000100}", GW_JWT_AUDIENCE},
		{"{\"iss\":\"https://idp\",\"exp\":1700000100}", GW_JWT_AUDIENCE},
		/* a claim twice: cJSON would read the first, others the last */
		{"{\"iss\":\"https://idp\",\"aud\":\"chat\",\"exp\":1,\"exp\":1700000100}", GW_JWT_MALFORMED},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *tok = sign("HS256", NULL, "{\"alg\":\"HS256\"}", cases[i].payload, NULL);
		gw_jwt_status st = verify(j, tok, NULL);
		if (st != cases[i].want)
			fprintf(stderr, "case %zu: %s\n", i, cases[i].payload);
		CHECK_STR(gw_jwt_reason(st), gw_jwt_reason(cases[i].want));
		free(tok);
	}
	gw_jwt_free(j);
	/* leeway on both sides; exp optional */
	j = verifier(GW_JWT_HS256, NULL, NULL, NULL, 5000, false);
	const char *ok[] = {"{\"exp\":1699999996}", "{\"nbf\":1700000004}", "{}"};
	const char *bad[] = {"{\"exp\":1699999995}", "{\"nbf\":1700000006}"};
	for (size_t i = 0; i < 3; i++) {
		char *tok = sign("HS256", NULL, "{\"alg\":\"HS256\"}", ok[i], NULL);
		CHECK_EQ_INT(verify(j, tok, NULL), GW_JWT_OK);
		free(tok);
	}
	for (size_t i = 0; i < 2; i++) {
		char *tok = sign("HS256", NULL, "{\"alg\":\"HS256\"}", bad[i], NULL);
		CHECK(verify(j, tok, NULL) != GW_JWT_OK);
		free(tok);
	}
	gw_jwt_free(j);
}

TEST(malformed_tokens)
{
	gw_jwt *j = verifier(GW_JWT_HS256, NULL, NULL, NULL, 0, false);
	char *good = sign("HS256", NULL, "{\"alg\":\"HS256\"}", "{\"a\":1}", NULL);
	CHECK_EQ_INT(verify(j, good, NULL), GW_JWT_OK);
	CHECK_EQ_INT(verify(j, "", NULL), GW_JWT_MISSING);
	CHECK_EQ_INT(gw_jwt_verify(j, NULL, 0, NOW, &(char *){NULL}), GW_JWT_MISSING);
	char buf[2048];
	const char *bad[] = {"abc", "a.b", "a.b.c.d", "..", ".e30.", "e30..x"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK_EQ_INT(verify(j, bad[i], NULL), GW_JWT_MALFORMED);
	snprintf(buf, sizeof buf, "%s=", good); /* padding */
	CHECK_EQ_INT(verify(j, buf, NULL), GW_JWT_MALFORMED);
	snprintf(buf, sizeof buf, "%s.", good); /* a fourth segment */
	CHECK_EQ_INT(verify(j, buf, NULL), GW_JWT_MALFORMED);
	snprintf(buf, sizeof buf, " %s", good);
	CHECK_EQ_INT(verify(j, buf, NULL), GW_JWT_MALFORMED);
	const char *payloads[] = {"[1]", "\"x\"", "{\"a\":", "{} {}", "{\"a\":\"\xc3\x28\"}"};
	for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
		char *tok = sign("HS256", NULL, "{\"alg\":\"HS256\"}", payloads[i], NULL);
		CHECK_EQ_INT(verify(j, tok, NULL), GW_JWT_MALFORMED);
		free(tok);
	}
	/* trailing whitespace after the object is still one JSON text */
	char *tok = sign("HS256", NULL, "{\"alg\":\"HS256\"}\r\n", "{\"a\":1} ", NULL);
	CHECK_EQ_INT(verify(j, tok, NULL), GW_JWT_OK);
	free(tok);
	/* too long */
	size_t n = GW_JWT_MAX_LEN + 1;
	char *big = malloc(n + 1);
	memset(big, 'A', n);
	big[10] = big[20] = '.';
	big[n] = 0;
	CHECK_EQ_INT(verify(j, big, NULL), GW_JWT_MALFORMED);
	free(big);
	free(good);
	gw_jwt_free(j);
}

static int new_fails(const gw_jwt_opts *o, const char *want)
{
	char err[256] = "";
	gw_jwt *j = gw_jwt_new(o, err, sizeof err);
	gw_jwt_free(j);
	if (j || !strstr(err, want)) {
		fprintf(stderr, "expected an error with \"%s\", got \"%s\"\n", want, j ? "(success)" : err);
		return 0;
	}
	return 1;
}

TEST(keys_that_do_not_fit_are_refused)
{
	char *rsa_pem = pem_of(rsa), *ec_pem = pem_of(ec);
	EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	char *small_pem = pem_of(small), *p384_pem = pem_of(p384);
	gw_jwt_opts o = {.algs = GW_JWT_HS256, .secret = (const uint8_t *)"short", .secret_len = 5};
	CHECK(new_fails(&o, "at least 32 bytes"));
	o = (gw_jwt_opts){.algs = GW_JWT_HS256};
	CHECK(new_fails(&o, "HS256 needs a secret"));
	o = (gw_jwt_opts){.algs = GW_JWT_RS256, .secret = (const uint8_t *)secret, .secret_len = strlen(secret)};
	CHECK(new_fails(&o, "only used by HS256"));
	o = (gw_jwt_opts){.algs = GW_JWT_RS256};
	CHECK(new_fails(&o, "needs a public key"));
	o = (gw_jwt_opts){.algs = GW_JWT_RS256 | GW_JWT_ES256, .pem = rsa_pem, .pem_len = strlen(rsa_pem)};
	CHECK(new_fails(&o, "different keys"));
	o = (gw_jwt_opts){.algs = GW_JWT_ES256, .pem = rsa_pem, .pem_len = strlen(rsa_pem)};
	CHECK(new_fails(&o, "EC key on P-256"));
	o = (gw_jwt_opts){.algs = GW_JWT_ES256, .pem = p384_pem, .pem_len = strlen(p384_pem)};
	CHECK(new_fails(&o, "EC key on P-256"));
	o = (gw_jwt_opts){.algs = GW_JWT_RS256, .pem = ec_pem, .pem_len = strlen(ec_pem)};
	CHECK(new_fails(&o, "needs an RSA key"));
	o = (gw_jwt_opts){.algs = GW_JWT_RS256, .pem = small_pem, .pem_len = strlen(small_pem)};
	CHECK(new_fails(&o, "at least 2048 bits"));
	o = (gw_jwt_opts){.algs = GW_JWT_RS256, .pem = "garbage", .pem_len = 7};
	CHECK(new_fails(&o, "not a PEM"));
	o = (gw_jwt_opts){.algs = GW_JWT_HS256, .secret = (const uint8_t *)secret, .secret_len = strlen(secret),
			  .pem = ec_pem, .pem_len = strlen(ec_pem)};
	CHECK(new_fails(&o, "only used by RS256 or ES256"));
	o = (gw_jwt_opts){0};
	CHECK(new_fails(&o, "no algorithm"));
	CHECK_EQ_INT(gw_jwt_alg("RS256"), GW_JWT_RS256);
	CHECK_EQ_INT(gw_jwt_alg("none"), 0);
	CHECK_EQ_INT(gw_jwt_alg("hs256"), 0);
	free(rsa_pem);
	free(ec_pem);
	free(small_pem);
	free(p384_pem);
	EVP_PKEY_free(small);
	EVP_PKEY_free(p384);
}

int main(void)
{
	rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (!rsa || !ec)
		return 1;
	RUN(rfc7515_a1_vector);
	RUN(each_algorithm_verifies_and_detects_tampering);
	RUN(none_and_algorithm_confusion_are_refused);
	RUN(time_issuer_and_audience_claims);
	RUN(malformed_tokens);
	RUN(keys_that_do_not_fit_are_refused);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
	return TEST_END();
}
