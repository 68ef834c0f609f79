/* ws.c — placeholder until the codec lands (see ws.h). */
#include "net/ws.h"

bool ws_key_valid(const char *key) { (void)key; return false; }
