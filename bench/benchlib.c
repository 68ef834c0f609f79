/* benchlib.c — see benchlib.h. */
#include "benchlib.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

uint64_t bl_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- SHA-1 (RFC 3174) */

static uint32_t rol(uint32_t x, int n)
{
	return (x << n) | (x >> (32 - n));
}

static void sha1_block(uint32_t h[5], const uint8_t *p)
{
	uint32_t w[80];
	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		       (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (int i = 16; i < 80; i++)
		w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
	uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
	for (int i = 0; i < 80; i++) {
		uint32_t f, k;
		if (i < 20) {
			f = (b & c) | (~b & d);
			k = 0x5A827999;
		} else if (i < 40) {
			f = b ^ c ^ d;
			k = 0x6ED9EBA1;
		} else if (i < 60) {
			f = (b & c) | (b & d) | (c & d);
			k = 0x8F1BBCDC;
		} else {
			f = b ^ c ^ d;
			k = 0xCA62C1D6;
		}
		uint32_t t = rol(a, 5) + f + e + k + w[i];
		e = d;
		d = c;
		c = rol(b, 30);
		b = a;
		a = t;
	}
	h[0] += a;
	h[1] += b;
	h[2] += c;
	h[3] += d;
	h[4] += e;
}

void bl_sha1(const void *data, size_t len, uint8_t out[20])
{
	uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
	const uint8_t *p = data;
	size_t left = len;
	while (left >= 64) {
		sha1_block(h, p);
		p += 64;
		left -= 64;
	}
	uint8_t tail[128];
	memset(tail, 0, sizeof tail);
	memcpy(tail, p, left);
	tail[left] = 0x80;
	size_t tl = left + 1 + 8 <= 64 ? 64 : 128;
	uint64_t bits = (uint64_t)len * 8;
	for (int i = 0; i < 8; i++)
		tail[tl - 1 - i] = (uint8_t)(bits >> (8 * i));
	sha1_block(h, tail);
	if (tl == 128)
		sha1_block(h, tail + 64);
	for (int i = 0; i < 5; i++) {
		out[4 * i] = (uint8_t)(h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(h[i] >> 8);
		out[4 * i + 3] = (uint8_t)h[i];
	}
}

size_t bl_base64(const uint8_t *in, size_t len, char *out)
{
	static const char tb[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[o++] = tb[(v >> 18) & 63];
		out[o++] = tb[(v >> 12) & 63];
		out[o++] = i + 1 < len ? tb[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? tb[v & 63] : '=';
	}
	out[o] = '\0';
	return o;
}

void bl_ws_accept(const char *key, size_t key_len, char out[29])
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	char buf[128];
	if (key_len > sizeof buf - sizeof guid)
		key_len = sizeof buf - sizeof guid;
	memcpy(buf, key, key_len);
	memcpy(buf + key_len, guid, sizeof guid - 1);
	uint8_t d[20];
	bl_sha1(buf, key_len + sizeof guid - 1, d);
	bl_base64(d, 20, out);
}

uint64_t bl_raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 1024;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	return (uint64_t)rl.rlim_cur;
}

long bl_proc_rss_kb(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long kb = -1;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "VmRSS:", 6)) {
			kb = strtol(line + 6, NULL, 10);
			break;
		}
	fclose(f);
	return kb;
}

int64_t bl_proc_cpu_ns(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* the command name may contain spaces: fields are counted after its ')' */
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	p += 2; /* field 3 (state) */
	unsigned long long ut = 0, st = 0;
	for (int field = 3; field <= 15 && *p; field++) {
		char *end;
		unsigned long long v = strtoull(p, &end, 10);
		if (field == 14)
			ut = v;
		if (field == 15)
			st = v;
		p = strchr(p, ' ');
		if (!p)
			break;
		p++;
	}
	long hz = sysconf(_SC_CLK_TCK);
	if (hz <= 0)
		hz = 100;
	return (int64_t)((ut + st) * (1000000000ull / (unsigned long long)hz));
}

int64_t bl_self_cpu_ns(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
	       ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

int bl_system_cpu_ns(int64_t *busy, int64_t *irq)
{
	*busy = *irq = 0;
	FILE *f = fopen("/proc/stat", "r");
	if (!f)
		return -1;
	unsigned long long v[8] = {0};
	int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
		       &v[6], &v[7]);
	fclose(f);
	if (n < 8)
		return -1;
	long hz = sysconf(_SC_CLK_TCK);
	unsigned long long tick = 1000000000ull / (unsigned long long)(hz > 0 ? hz : 100);
	/* user nice system idle iowait irq softirq steal */
	*busy = (int64_t)((v[0] + v[1] + v[2] + v[7]) * tick);
	*irq = (int64_t)((v[5] + v[6]) * tick);
	return 0;
}

double bl_loadavg1(void)
{
	double l[1];
	return getloadavg(l, 1) == 1 ? l[0] : -1;
}

/* ---- histogram: values < 128 exactly, above that 128 sub-buckets per power of two */

static unsigned hist_index(uint64_t v)
{
	if (v < BL_HIST_SUB)
		return (unsigned)v;
	int e = 63 - __builtin_clzll(v); /* >= 7 */
	unsigned sub = (unsigned)(v >> (e - 7)) & (BL_HIST_SUB - 1);
	return BL_HIST_SUB + (unsigned)(e - 7) * BL_HIST_SUB + sub;
}

static uint64_t hist_value(unsigned i)
{
	if (i < BL_HIST_SUB)
		return i;
	unsigned e = (i - BL_HIST_SUB) / BL_HIST_SUB + 7, sub = (i - BL_HIST_SUB) % BL_HIST_SUB;
	uint64_t lo = (uint64_t)(BL_HIST_SUB + sub) << (e - 7);
	return lo + ((1ull << (e - 7)) >> 1); /* the middle of the bucket */
}

void bl_hist_add(bl_hist *h, uint64_t v)
{
	h->counts[hist_index(v)]++;
	if (!h->n || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->n++;
	h->sum += (double)v;
}

uint64_t bl_hist_quantile(const bl_hist *h, double q)
{
	if (!h->n)
		return 0;
	uint64_t want = (uint64_t)(q * (double)h->n + 0.999999);
	if (want < 1)
		want = 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < BL_HIST_BUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= want) {
			uint64_t v = hist_value(i);
			return v > h->max ? h->max : v < h->min ? h->min : v;
		}
	}
	return h->max;
}

const char *bl_http_header(const char *hdrs, size_t hlen, const char *name, size_t *len)
{
	size_t nl = strlen(name);
	const char *p = hdrs, *end = hdrs + hlen;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		if ((size_t)(eol - p) > nl && !strncasecmp(p, name, nl) && p[nl] == ':') {
			const char *v = p + nl + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			const char *ve = eol;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
				ve--;
			*len = (size_t)(ve - v);
			return v;
		}
		p = eol + 1;
	}
	return NULL;
}

size_t bl_parse_list(const char *s, uint64_t *out, size_t max)
{
	size_t n = 0;
	while (s && *s && n < max) {
		while (*s == ',' || isspace((unsigned char)*s))
			s++;
		if (!*s)
			break;
		char *end;
		unsigned long long v = strtoull(s, &end, 10);
		if (end == s)
			break;
		out[n++] = v;
		s = end;
	}
	return n;
}
