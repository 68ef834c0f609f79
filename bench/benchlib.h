/*
 * benchlib.h — small helpers shared by the bench tools (loadgen, ceiling).
 *
 * Nothing here comes from gateway/: the bench measures the gateway from the
 * outside, so a bug in the gateway's codecs cannot hide behind the same bug in
 * the tools that check it. Single-threaded callers only.
 */
#ifndef BENCHLIB_H
#define BENCHLIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* CLOCK_MONOTONIC in ns: system-wide, so comparable between processes on one host. */
uint64_t bl_now_ns(void);

/* SHA-1 of len bytes (RFC 3174), for Sec-WebSocket-Accept. */
void bl_sha1(const void *data, size_t len, uint8_t out[20]);
/* Standard base64 with padding; out needs 4*ceil(len/3)+1 bytes; returns the length. */
size_t bl_base64(const uint8_t *in, size_t len, char *out);
/* Sec-WebSocket-Accept for a key: base64(sha1(key + GUID)), 28 chars + NUL. */
void bl_ws_accept(const char *key, size_t key_len, char out[29]);

/* Raise RLIMIT_NOFILE's soft limit to the hard limit; returns the new soft limit. */
uint64_t bl_raise_nofile(void);

/* VmRSS of a process in KiB, or -1. */
long bl_proc_rss_kb(pid_t pid);
/* utime+stime of a process (all threads) in ns, or -1. */
int64_t bl_proc_cpu_ns(pid_t pid);
/* user+system CPU time of this process in ns. */
int64_t bl_self_cpu_ns(void);
/* CPU time of all CPUs from /proc/stat in ns: *busy = user + nice + system + steal,
 * *irq = irq + softirq (with IRQ time accounting, softirq work such as loopback TCP
 * receive is charged to no process). Returns 0, or -1 when unreadable. */
int bl_system_cpu_ns(int64_t *busy, int64_t *irq);
/* the 1-minute load average, or -1. */
double bl_loadavg1(void);

/* A log-linear latency histogram in ns: <1 % relative error, values up to 2^63. */
#define BL_HIST_SUB 128
#define BL_HIST_BUCKETS (BL_HIST_SUB + 57 * BL_HIST_SUB)
typedef struct {
	uint64_t counts[BL_HIST_BUCKETS];
	uint64_t n, min, max;
	double sum;
} bl_hist;

void bl_hist_add(bl_hist *h, uint64_t v);
/* The value at quantile q (0..1) in ns; 0 when empty. */
uint64_t bl_hist_quantile(const bl_hist *h, double q);

/* Case-insensitive search of an HTTP header in a header block; returns a pointer to its
 * value (after ':' and spaces) and its length through *len, or NULL. */
const char *bl_http_header(const char *hdrs, size_t hlen, const char *name, size_t *len);

/* Parse "a,b,c" unsigned integers; returns how many were stored (at most max). */
size_t bl_parse_list(const char *s, uint64_t *out, size_t max);

#endif
