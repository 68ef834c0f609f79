/* http1.c — placeholder until the parser lands (see http1.h). */
#include "net/http1.h"

h1_parser *h1_create(const h1_limits *lim) { (void)lim; return NULL; }
