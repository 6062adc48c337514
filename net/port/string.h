/* lwIP includes <string.h>; the kernel's own routines stand in for libc. */
#ifndef NET_PORT_STRING_H
#define NET_PORT_STRING_H
#include "kernel/kstring.h"
#endif
