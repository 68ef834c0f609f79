/* path.c — see path.h. */
#include "util/path.h"

#include <string.h>
#include <unistd.h>

int gw_exe_dir(char *out, size_t n)
{
	if (n < 2)
		return -1;
	ssize_t len = readlink("/proc/self/exe", out, n - 1);
	if (len <= 0 || (size_t)len >= n - 1)
		return -1;
	out[len] = '\0';
	char *slash = strrchr(out, '/');
	if (!slash)
		return -1;
	*slash = '\0';
	return 0;
}
