#include "util/names.h"

#include <stddef.h>
#include <string.h>

static const char *const RESERVED_EVENTS[] = {
	"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener",
};

bool gw_event_reserved(const char *name)
{
	for (size_t i = 0; i < sizeof RESERVED_EVENTS / sizeof RESERVED_EVENTS[0]; i++)
		if (strcmp(name, RESERVED_EVENTS[i]) == 0)
			return true;
	return false;
}
