/* test.h — a tiny unit-test harness: TEST(name) { CHECK(...); } and RUN(name) in main. */
#ifndef GW_TEST_H
#define GW_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_failed, t_run, t_cur_failed;

#define TEST(name) static void name(void)
#define CHECK(cond)                                                                  \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			t_cur_failed = 1;                                            \
		}                                                                    \
	} while (0)
#define CHECK_EQ_INT(a, b)                                                           \
	do {                                                                         \
		long long _a = (long long)(a), _b = (long long)(b);                  \
		if (_a != _b) {                                                      \
			fprintf(stderr, "%s:%d: %s == %lld, expected %lld\n", __FILE__, __LINE__, #a, _a, _b); \
			t_cur_failed = 1;                                            \
		}                                                                    \
	} while (0)
#define CHECK_STR(a, b)                                                              \
	do {                                                                         \
		const char *_a = (a), *_b = (b);                                     \
		if (!_a || !_b || strcmp(_a, _b) != 0) {                             \
			fprintf(stderr, "%s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #a, _a ? _a : "(null)", _b ? _b : "(null)"); \
			t_cur_failed = 1;                                            \
		}                                                                    \
	} while (0)
#define CHECK_CONTAINS(hay, needle)                                                  \
	do {                                                                         \
		const char *_h = (hay), *_n = (needle);                              \
		if (!_h || !strstr(_h, _n)) {                                        \
			fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__, _h ? _h : "(null)", _n); \
			t_cur_failed = 1;                                            \
		}                                                                    \
	} while (0)
#define RUN(name)                                                                    \
	do {                                                                         \
		t_cur_failed = 0;                                                    \
		t_run++;                                                             \
		name();                                                              \
		if (t_cur_failed) {                                                  \
			t_failed++;                                                  \
			fprintf(stderr, "FAIL %s\n", #name);                         \
		} else {                                                             \
			fprintf(stderr, "ok   %s\n", #name);                         \
		}                                                                    \
	} while (0)
#define TEST_END() (fprintf(stderr, "%d/%d passed\n", t_run - t_failed, t_run), t_failed ? 1 : 0)

#endif
