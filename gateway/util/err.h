/* err.h — the one error enum of the gateway. 0 is success; functions return -GW_E*. */
#ifndef GW_ERR_H
#define GW_ERR_H

enum {
	GW_OK = 0,
	GW_EINVAL = 1,    /* malformed input */
	GW_ENOMEM = 2,
	GW_ETOOBIG = 3,   /* exceeds a configured limit */
	GW_EFULL = 4,     /* bounded queue full */
	GW_ENOENT = 5,    /* not found */
	GW_EIO = 6,
	GW_ECONFIG = 7,
	GW_EPLUGIN = 8,
	GW_ECLOSED = 9,
	GW_ENOTSUP = 10,  /* not supported (by a plugin) */
};

const char *gw_strerror(int err); /* accepts err or -err */

/* The plugin ABI has error codes of its own (include/siogw/plugin.h: SIOGW_EIO is 5 where
 * GW_EIO is 6): they meet here only. -SIOGW_E* → -GW_E* (an unknown code →
 * -GW_EPLUGIN), and back for what the host returns to a plugin (→ -SIOGW_EIO when the
 * ABI has no match). 0 stays 0. */
int gw_err_from_siogw(int rc);
int gw_err_to_siogw(int rc);

#endif
