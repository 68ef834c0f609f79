/* path.h — where the running binary is, for finding what the build tree puts beside it
 * (plugins, the client bundle) before the install directories. */
#ifndef GW_PATH_H
#define GW_PATH_H

#include <stddef.h>

/* The directory of /proc/self/exe into out: 0, or -1 when unknown or too long. */
int gw_exe_dir(char *out, size_t n);

#endif
