/* err.c — the gateway's error vocabulary, and the one place it meets the plugin ABI's. */
#include "util/err.h"

#include <siogw/plugin.h>

const char *gw_strerror(int err)
{
	if (err < 0)
		err = -err;
	switch (err) {
	case GW_OK: return "ok";
	case GW_EINVAL: return "invalid input";
	case GW_ENOMEM: return "out of memory";
	case GW_ETOOBIG: return "too big";
	case GW_EFULL: return "queue full";
	case GW_ENOENT: return "not found";
	case GW_EIO: return "i/o error";
	case GW_ECONFIG: return "configuration error";
	case GW_EPLUGIN: return "plugin error";
	case GW_ECLOSED: return "closed";
	case GW_ENOTSUP: return "not supported";
	default: return "unknown error";
	}
}

int gw_err_from_siogw(int rc)
{
	switch (rc < 0 ? -rc : rc) {
	case 0: return 0;
	case SIOGW_EINVAL: return -GW_EINVAL;
	case SIOGW_ENOMEM: return -GW_ENOMEM;
	case SIOGW_EAGAIN: return -GW_EFULL;
	case SIOGW_ECLOSED: return -GW_ECLOSED;
	case SIOGW_EIO: return -GW_EIO;
	case SIOGW_ENOTSUP: return -GW_ENOTSUP;
	default: return -GW_EPLUGIN; /* a code the ABI does not define */
	}
}

int gw_err_to_siogw(int rc)
{
	switch (rc < 0 ? -rc : rc) {
	case 0: return 0;
	case GW_EINVAL: return -SIOGW_EINVAL;
	case GW_ENOMEM: return -SIOGW_ENOMEM;
	case GW_EFULL: return -SIOGW_EAGAIN;
	case GW_ECLOSED: return -SIOGW_ECLOSED;
	case GW_ENOTSUP: return -SIOGW_ENOTSUP;
	default: return -SIOGW_EIO;
	}
}
