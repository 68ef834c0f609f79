#include "../test.h"
#include "sio/acks.h"

typedef struct result {
	int calls;
	size_t acked, timed_out;
} result;

static void done(void *arg, size_t acked, size_t timed_out)
{
	result *r = arg;
	r->calls++;
	r->acked = acked;
	r->timed_out = timed_out;
}

TEST(all_answer)
{
	result res = {0};
	ack_owed a = {0}, b = {0};
	ack_req *r = ack_req_create(2, done, &res);
	CHECK_EQ_INT(ack_req_expect(r, &a, 7, 10), 0);
	CHECK_EQ_INT(ack_req_expect(r, &b, 3, 10), 0);
	CHECK(!ack_req_seal(r));
	CHECK(ack_owed_take(&a, 8) == NULL); /* unknown id */
	ack_req *got = ack_owed_take(&a, 7);
	CHECK(got == r);
	CHECK(ack_owed_take(&a, 7) == NULL); /* a duplicate answer is ignored */
	ack_req_answered(got);
	CHECK_EQ_INT(res.calls, 0);
	ack_req_answered(ack_owed_take(&b, 3));
	CHECK_EQ_INT(res.calls, 1);
	CHECK_EQ_INT(res.acked, 2);
	CHECK_EQ_INT(res.timed_out, 0);
	CHECK(a.head == NULL && b.head == NULL && a.n == 0 && b.n == 0);
}

TEST(no_targets_finishes_at_seal)
{
	result res = {0};
	ack_req *r = ack_req_create(0, done, &res);
	CHECK(ack_req_seal(r));
	CHECK_EQ_INT(res.calls, 1);
	CHECK_EQ_INT(res.acked + res.timed_out, 0);
}

TEST(expire_counts_pending_and_unlinks)
{
	result res = {0};
	ack_owed a = {0}, b = {0}, c = {0};
	ack_req *r = ack_req_create(3, done, &res);
	ack_req_expect(r, &a, 1, 10);
	ack_req_expect(r, &b, 1, 10);
	ack_req_expect(r, &c, 1, 10);
	ack_req_seal(r);
	ack_req_answered(ack_owed_take(&b, 1));
	ack_req_expire(r);
	CHECK_EQ_INT(res.calls, 1);
	CHECK_EQ_INT(res.acked, 1);
	CHECK_EQ_INT(res.timed_out, 2);
	CHECK(a.head == NULL && c.head == NULL && a.n == 0);
}

TEST(owner_leaving_times_out_its_entries)
{
	result r1 = {0}, r2 = {0};
	ack_owed a = {0}, b = {0};
	ack_req *x = ack_req_create(2, done, &r1);
	ack_req *y = ack_req_create(1, done, &r2);
	ack_req_expect(x, &a, 0, 10);
	ack_req_expect(x, &b, 0, 10);
	ack_req_expect(y, &a, 1, 10);
	ack_req_seal(x);
	ack_req_seal(y);
	CHECK_EQ_INT(a.n, 2);
	ack_owed_settle(&a); /* finishes y (its only target), x still waits for b */
	CHECK_EQ_INT(r2.calls, 1);
	CHECK_EQ_INT(r2.timed_out, 1);
	CHECK_EQ_INT(r1.calls, 0);
	CHECK_EQ_INT(ack_req_pending(x), 1);
	ack_req_answered(ack_owed_take(&b, 0));
	CHECK_EQ_INT(r1.calls, 1);
	CHECK_EQ_INT(r1.acked, 1);
	CHECK_EQ_INT(r1.timed_out, 1);
}

TEST(bounds_and_misses)
{
	result res = {0};
	ack_owed a = {0}, b = {0};
	ack_req *r = ack_req_create(2, done, &res);
	CHECK_EQ_INT(ack_req_expect(r, &a, 0, 0), -4 /* -GW_EFULL: owner limit */);
	ack_req_miss(r); /* e.g. the connection's queue was full */
	CHECK_EQ_INT(ack_req_expect(r, &b, 0, 5), 0);
	CHECK(!ack_req_seal(r));
	ack_req_answered(ack_owed_take(&b, 0));
	CHECK_EQ_INT(res.calls, 1);
	CHECK_EQ_INT(res.acked, 1);
	CHECK_EQ_INT(res.timed_out, 2);
}

TEST(many_requests_one_owner)
{
	enum { N = 500 };
	static result res[N];
	ack_owed a = {0};
	ack_req *r[N];
	for (int i = 0; i < N; i++) {
		r[i] = ack_req_create(1, done, &res[i]);
		ack_req_expect(r[i], &a, i, 1000);
		ack_req_seal(r[i]);
	}
	CHECK_EQ_INT(a.n, N);
	for (int i = 0; i < N; i += 2)
		ack_req_answered(ack_owed_take(&a, i));
	ack_owed_settle(&a);
	int acked = 0, timed = 0;
	for (int i = 0; i < N; i++) {
		CHECK_EQ_INT(res[i].calls, 1);
		acked += (int)res[i].acked;
		timed += (int)res[i].timed_out;
	}
	CHECK_EQ_INT(acked, N / 2);
	CHECK_EQ_INT(timed, N / 2);
}

int main(void)
{
	RUN(all_answer);
	RUN(no_targets_finishes_at_seal);
	RUN(expire_counts_pending_and_unlinks);
	RUN(owner_leaving_times_out_its_entries);
	RUN(bounds_and_misses);
	RUN(many_requests_one_owner);
	return TEST_END();
}
