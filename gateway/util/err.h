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
};

const char *gw_strerror(int err); /* accepts err or -err */

#endif
