/* bus/rate: the token buckets of namespaces[].limits, with the time passed in. */
#include "../test.h"
#include "bus/rate.h"

static gw_limits lim(int eps, int burst)
{
	return (gw_limits){.events_per_s = eps, .burst = burst};
}

TEST(off_when_nothing_is_set)
{
	gw_limits l = {0};
	CHECK(!gw_limits_on(&l));
	gw_rate_override o = {.event = "x", .events_per_s = 0};
	l.events = &o;
	l.n_events = 1;
	CHECK(!gw_limits_on(&l));
	o.events_per_s = 1;
	CHECK(gw_limits_on(&l));
}

TEST(burst_then_the_rate)
{
	gw_limits l = lim(10, 5);
	gw_rate *r = NULL;
	uint64_t t = 1000000;
	int passed = 0;
	for (int i = 0; i < 20; i++)
		passed += gw_rate_allow(&r, &l, "e", 10, t);
	CHECK_EQ_INT(passed, 5); /* a full bucket of 5 */
	/* 10/s: one more every 100 ms */
	CHECK(!gw_rate_allow(&r, &l, "e", 10, t + 99000));
	CHECK(gw_rate_allow(&r, &l, "e", 10, t + 100000));
	CHECK(!gw_rate_allow(&r, &l, "e", 10, t + 100000));
	/* a long idle time fills it to the burst, not beyond */
	passed = 0;
	for (int i = 0; i < 20; i++)
		passed += gw_rate_allow(&r, &l, "e", 10, t + 3600ull * 1000000);
	CHECK_EQ_INT(passed, 5);
	gw_rate_free(r);
}

TEST(burst_defaults_to_the_rate)
{
	gw_limits l = lim(3, 0);
	gw_rate *r = NULL;
	int passed = 0;
	for (int i = 0; i < 10; i++)
		passed += gw_rate_allow(&r, &l, "e", 1, 5);
	CHECK_EQ_INT(passed, 3);
	gw_rate_free(r);
}

TEST(bytes_bucket)
{
	gw_limits l = {.bytes_per_s = 1000, .bytes_burst = 1500};
	gw_rate *r = NULL;
	CHECK(gw_rate_allow(&r, &l, "e", 1000, 0));
	CHECK(!gw_rate_allow(&r, &l, "e", 600, 0)); /* 500 left */
	CHECK(gw_rate_allow(&r, &l, "e", 500, 0));
	CHECK(!gw_rate_allow(&r, &l, "e", 1, 0));
	CHECK(gw_rate_allow(&r, &l, "e", 100, 100000)); /* 100 ms: 100 bytes */
	CHECK(!gw_rate_allow(&r, &l, "e", 2000, 10000000)); /* bigger than the burst: never */
	gw_rate_free(r);
}

TEST(per_event_override_has_its_own_bucket)
{
	gw_rate_override o = {.event = "typing", .events_per_s = 1, .burst = 2};
	gw_limits l = lim(100, 100);
	l.events = &o;
	l.n_events = 1;
	gw_rate *r = NULL;
	CHECK(gw_rate_allow(&r, &l, "typing", 1, 0));
	CHECK(gw_rate_allow(&r, &l, "typing", 1, 0));
	CHECK(!gw_rate_allow(&r, &l, "typing", 1, 0)); /* its own, small bucket */
	int passed = 0;
	for (int i = 0; i < 100; i++)
		passed += gw_rate_allow(&r, &l, "message", 1, 0);
	CHECK_EQ_INT(passed, 100); /* the namespace's is untouched by "typing" */
	CHECK(!gw_rate_allow(&r, &l, "message", 1, 0));
	gw_rate_free(r);
}

TEST(sockets_do_not_share)
{
	gw_limits l = lim(1, 1);
	gw_rate *a = NULL, *b = NULL;
	CHECK(gw_rate_allow(&a, &l, "e", 1, 0));
	CHECK(!gw_rate_allow(&a, &l, "e", 1, 0));
	CHECK(gw_rate_allow(&b, &l, "e", 1, 0));
	gw_rate_free(a);
	gw_rate_free(b);
}

int main(void)
{
	RUN(off_when_nothing_is_set);
	RUN(burst_then_the_rate);
	RUN(burst_defaults_to_the_rate);
	RUN(bytes_bucket);
	RUN(per_event_override_has_its_own_bucket);
	RUN(sockets_do_not_share);
	return TEST_END();
}
