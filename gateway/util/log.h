/* log.h — leveled logging to stderr. Thread-safe (one fprintf per line). */
#ifndef GW_LOG_H
#define GW_LOG_H

enum { GW_LOG_ERROR = 0, GW_LOG_WARN = 1, GW_LOG_INFO = 2, GW_LOG_DEBUG = 3 };

void gw_log_set_level(int level);
int gw_log_get_level(void);
int gw_log_level_parse(const char *s); /* "error".."debug" → level, -1 if unknown */
void gw_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define gw_err(...) gw_log(GW_LOG_ERROR, __VA_ARGS__)
#define gw_warn(...) gw_log(GW_LOG_WARN, __VA_ARGS__)
#define gw_info(...) gw_log(GW_LOG_INFO, __VA_ARGS__)
#define gw_debug(...) do { if (gw_log_get_level() >= GW_LOG_DEBUG) gw_log(GW_LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
