/* http/client: If-None-Match against an entity tag (RFC 9110 §13.1.2: weak comparison). */
#include "../test.h"
#include "http/client.h"

TEST(if_none_match)
{
	const char *e = "\"abc\"";
	CHECK(gw_client_etag_matches("\"abc\"", e));
	CHECK(gw_client_etag_matches("W/\"abc\"", e));
	CHECK(gw_client_etag_matches("\"x\", \"abc\"", e));
	CHECK(gw_client_etag_matches("\"x\",W/\"abc\"", e));
	CHECK(gw_client_etag_matches("*", e));
	CHECK(!gw_client_etag_matches("\"abcd\"", e));
	CHECK(!gw_client_etag_matches("\"ab\"", e));
	CHECK(!gw_client_etag_matches("abc", e));
	CHECK(!gw_client_etag_matches("", e));
	CHECK(!gw_client_etag_matches(NULL, e));
	CHECK(!gw_client_etag_matches("\"abc", e));
	CHECK(!gw_client_etag_matches("\"x\" \"y\"", e));
}

int main(void)
{
	RUN(if_none_match);
	return TEST_END();
}
