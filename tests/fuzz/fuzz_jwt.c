/* libFuzzer target: JWT verification (util/jwt.h). Each input is tried twice: as a
 * token as it is, and as "header\npayload" signed here with the verifier's HS256 key, so
 * the claim checks behind the signature are reached too. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "util/base64.h"
#include "util/jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char KEY[] = "fuzz-secret-fuzz-secret-fuzz-secret!";

static void check(const gw_jwt *j, const char *tok, size_t len)
{
	char *claims = (char *)1;
	gw_jwt_status st = gw_jwt_verify(j, tok, len, 1700000000000LL, &claims);
	assert(gw_jwt_reason(st) != NULL);
	if (st == GW_JWT_OK) {
		cJSON *o = cJSON_Parse(claims);
		assert(cJSON_IsObject(o));
		cJSON_Delete(o);
	} else {
		assert(claims == NULL);
	}
	free(claims);
}

/* base64url, no padding, at out; returns its length */
static size_t b64u(const uint8_t *in, size_t n, char *out)
{
	size_t m = gw_b64_encode(in, n, out);
	while (m && out[m - 1] == '=')
		m--;
	for (size_t i = 0; i < m; i++)
		out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
	return m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static gw_jwt *j;
	if (!j) {
		gw_jwt_opts o = {.algs = GW_JWT_HS256, .secret = (const uint8_t *)KEY, .secret_len = sizeof KEY - 1,
				 .issuer = "iss", .audience = "aud", .leeway_ms = 1000, .require_exp = false};
		j = gw_jwt_new(&o, NULL, 0);
		assert(j);
	}
	check(j, (const char *)data, size);

	const uint8_t *nl = memchr(data, '\n', size);
	if (!nl || size > 4096)
		return 0;
	size_t hl = (size_t)(nl - data), pl = size - hl - 1;
	char *tok = malloc(gw_b64_enc_len(hl) + gw_b64_enc_len(pl) + gw_b64_enc_len(32) + 3);
	size_t n = b64u(data, hl, tok);
	tok[n++] = '.';
	n += b64u(nl + 1, pl, tok + n);
	uint8_t mac[EVP_MAX_MD_SIZE];
	unsigned ml = 0;
	HMAC(EVP_sha256(), KEY, (int)sizeof KEY - 1, (const uint8_t *)tok, n, mac, &ml);
	tok[n++] = '.';
	n += b64u(mac, ml, tok + n);
	check(j, tok, n);
	free(tok);
	return 0;
}
